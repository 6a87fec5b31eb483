//! The recording shell: one thread captures on an interface (AF_PACKET ring of
//! `ashiato-capture`) into the [`Recorder`]; another polls sock_diag and `/proc` every
//! interval into the [`Tracker`] and the process log. Both open their sockets in
//! [`Live::start`], so an agent that cannot record fails at start, not later.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ashiato_capture::live::{LiveConfig, LiveSource};

use crate::attrib::{AttribStats, ProcLog, Record, Tracker};
use crate::history::{HistoryConfig, Recorder, RecorderStats};
use crate::procfs::OwnerCache;
use crate::sockdiag::SockDiag;
use crate::{AgentError, now_ns};

/// What the recording does.
#[derive(Clone, Debug)]
pub struct LiveSettings {
    /// The interface.
    pub iface: String,
    /// The history's bounds.
    pub history: HistoryConfig,
    /// The attribution poll interval.
    pub attrib_interval: Duration,
    /// The process log's bound (it holds up to twice this).
    pub proc_log_bytes: u64,
}

/// Counters of a recording, for the status line and the figures.
#[derive(Clone, Debug, Default)]
pub struct LiveStatus {
    /// The recorder's.
    pub recorder: RecorderStats,
    /// The attribution's.
    pub attrib: AttribStats,
    /// Packets the kernel dropped (ring full).
    pub kernel_drops: u64,
    /// Longest attribution poll, µs.
    pub max_poll_us: u64,
    /// Total time spent polling, µs.
    pub poll_us: u64,
    /// Full `/proc` scans.
    pub proc_scans: u64,
    /// Process-log lines that could not be written.
    pub proc_log_lost: u64,
    /// Errors not yet shown (oldest first, at most 100).
    pub errors: Vec<String>,
}

impl LiveStatus {
    fn error(&mut self, e: String) {
        if self.errors.len() < 100 {
            self.errors.push(e);
        }
    }
}

/// A running recording.
pub struct Live {
    stop: Arc<AtomicBool>,
    tracker: Arc<Mutex<Tracker>>,
    status: Arc<Mutex<LiveStatus>>,
    threads: Vec<JoinHandle<()>>,
    /// The history directory.
    pub dir: PathBuf,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Live {
    /// Opens the capture, the netlink socket and the process log, and starts both threads.
    pub fn start(s: LiveSettings) -> Result<Live, AgentError> {
        let cfg = LiveConfig {
            snaplen: s.history.snaplen,
            promiscuous: false,
            block_count: 16,
            ..LiveConfig::default()
        };
        let mut src =
            LiveSource::open(&s.iface, &cfg).map_err(|e| AgentError::Invalid(e.to_string()))?;
        let mut recorder = Recorder::new(s.history.clone(), src.link_type())?;
        let mut diag = SockDiag::open()?;
        let mut log = ProcLog::open(&s.history.dir, s.proc_log_bytes)?;
        let stop = Arc::new(AtomicBool::new(false));
        let tracker = Arc::new(Mutex::new(Tracker::new()));
        let status = Arc::new(Mutex::new(LiveStatus::default()));
        let interval = s.attrib_interval;
        let cap = {
            let (stop, status) = (stop.clone(), status.clone());
            std::thread::Builder::new()
                .name("agent-capture".into())
                .spawn(move || {
                    let mut last_tick = Instant::now();
                    recorder.tick(now_ns());
                    while !stop.load(Ordering::Relaxed) {
                        let r = src.poll_frames(Duration::from_millis(20), |f| {
                            recorder.write(now_ns(), f.ts_nanos, f.orig_len, f.data);
                        });
                        if let Err(e) = r {
                            lock(&status).error(format!("capture: {e}"));
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        if last_tick.elapsed() >= interval {
                            last_tick = Instant::now();
                            recorder.tick(now_ns());
                            let mut st = lock(&status);
                            if let Some(e) = recorder.take_error() {
                                st.error(format!("history: {e}"));
                            }
                            st.recorder = recorder.stats();
                            if let Ok(k) = src.kernel_stats() {
                                st.kernel_drops = k.drops;
                            }
                        }
                    }
                    recorder.close(now_ns());
                    let mut st = lock(&status);
                    if let Some(e) = recorder.take_error() {
                        st.error(format!("history: {e}"));
                    }
                    st.recorder = recorder.stats();
                })
                .map_err(|e| AgentError::io("capture thread", e))?
        };
        let att = {
            let (stop, status, tracker) = (stop.clone(), status.clone(), tracker.clone());
            std::thread::Builder::new()
                .name("agent-attrib".into())
                .spawn(move || {
                    let mut cache = OwnerCache::new(std::path::Path::new("/proc"));
                    let mut n = 0u64;
                    let mut next = Instant::now();
                    loop {
                        let stopping = stop.load(Ordering::Relaxed);
                        let t = Instant::now();
                        let now = now_ns();
                        let socks = diag.dump_all();
                        let mut st_err = None;
                        let closed = match socks {
                            Ok(socks) => {
                                cache.begin_poll();
                                let mut tr = lock(&tracker);
                                let c = tr.observe(now, &socks, |i| cache.owner(i));
                                n += 1;
                                if n.is_multiple_of(100) {
                                    let live = tr.inodes();
                                    cache.retain(|i| live.contains(&i));
                                }
                                c
                            }
                            Err(e) => {
                                st_err = Some(e.to_string());
                                Vec::new()
                            }
                        };
                        let logged = log.append(&closed);
                        let us = t.elapsed().as_micros() as u64;
                        {
                            let mut st = lock(&status);
                            st.attrib = lock(&tracker).stats();
                            st.poll_us += us;
                            st.max_poll_us = st.max_poll_us.max(us);
                            st.proc_scans = cache.scans;
                            st.proc_log_lost = log.lost;
                            if let Some(e) = st_err {
                                st.error(e);
                            }
                            if let Err(e) = logged {
                                st.error(format!("process log: {e}"));
                            }
                        }
                        if stopping {
                            // The sockets still open go to the log, valid up to now.
                            let open = lock(&tracker).open_records(now_ns());
                            if let Err(e) = log.append(&open) {
                                lock(&status).error(format!("process log: {e}"));
                            }
                            break;
                        }
                        next += interval;
                        let now = Instant::now();
                        if next > now {
                            std::thread::sleep(next - now);
                        } else {
                            next = now;
                        }
                    }
                })
                .map_err(|e| AgentError::io("attribution thread", e))?
        };
        Ok(Live {
            stop,
            tracker,
            status,
            threads: vec![cap, att],
            dir: s.history.dir,
        })
    }

    /// The records of the sockets open now (valid up to now), for an audit while recording.
    pub fn open_records(&self) -> Vec<Record> {
        lock(&self.tracker).open_records(now_ns())
    }

    /// The counters so far; takes the errors not yet shown.
    pub fn status(&self) -> LiveStatus {
        let mut st = lock(&self.status);
        let out = st.clone();
        st.errors.clear();
        out
    }

    /// Stops both threads (the last segment is closed, open sockets are logged) and returns
    /// the final counters.
    pub fn stop(mut self) -> LiveStatus {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        lock(&self.status).clone()
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
