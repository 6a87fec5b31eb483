//! The ashiato probe service: records a digest of every packet and answers "did you see H(P)
//! around time t?" over HTTP/JSON with mutual TLS.
//!
//! ```text
//!  capture source ──frames──▶ Ingestor ──digest──▶ DigestTables ◀──query── api::router ◀── mTLS ── controller
//!  (files / AF_PACKET)        (pipeline)           (tables crate)     (ashiato_net::server::serve)
//!                                 │ counters                                  │
//!                                 └──────────────▶ IngestCounters ──▶ /metrics, /v1/status
//! ```
//!
//! - [`pipeline`]: the per-packet core ([`pipeline::Ingestor`]) and the loops that feed it.
//! - [`api`]: the router, request validation and answers (the types are `ashiato-api`'s).
//! - [`metrics`]: counters and their Prometheus rendering.
//!
//! The service stack — the bounded mutual-TLS accept loop, certificates and the lab PKI, the
//! HTTP/JSON client — is `ashiato-net`, shared with every other ashiato service.
//!
//! [`Probe`] ties a capture thread, the tables' maintenance thread and the shared state
//! together; the CLI adds the listener.

pub mod api;
pub mod metrics;
pub mod pipeline;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ashiato_capture::CaptureError;
use ashiato_capture::file::MultiFileSource;
use ashiato_capture::live::{FanoutMode, LiveConfig, LiveSource};
use ashiato_digest::Key;
use ashiato_tables::{
    DigestTables, EventSink, MaintenanceHandle, TableError, TableEvent, TablesConfig,
};

use crate::api::ProbeState;
use crate::metrics::IngestCounters;
use crate::pipeline::Ingestor;

/// Where a probe's packets come from.
#[derive(Clone, Debug)]
pub enum Input {
    /// Capture files, read once, merged in time order; the tables keep answering afterwards.
    Files(Vec<PathBuf>),
    /// A live interface.
    Live {
        /// Interface name.
        iface: String,
        /// Ring settings (per capture thread).
        cfg: LiveConfig,
        /// Capture threads. With more than one, each has its own ring in one PACKET_FANOUT
        /// group (flow hash), its own ingestor, and they share the tables with atomic inserts.
        threads: usize,
    },
}

impl Input {
    /// A one-line description for logs and the status page.
    pub fn describe(&self) -> String {
        match self {
            Input::Files(p) => p
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(","),
            Input::Live { iface, threads, .. } => format!("iface:{iface} ({threads} threads)"),
        }
    }
}

/// Everything a probe needs to start.
#[derive(Clone, Debug)]
pub struct ProbeConfig {
    /// The probe's name in answers and metrics.
    pub name: String,
    /// Packet source.
    pub input: Input,
    /// Federation key.
    pub key: Key,
    /// Digest table sizing and retention.
    pub tables: TablesConfig,
}

/// Errors starting or stopping a probe.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The tables could not be built.
    #[error(transparent)]
    Tables(#[from] TableError),
    /// The capture thread could not start.
    #[error("cannot start the capture thread")]
    Thread(#[source] std::io::Error),
    /// The packet source could not be opened: the probe would record nothing.
    #[error("cannot record")]
    Capture(#[from] CaptureError),
    /// [`Probe::stop`] could not write every epoch held in memory to the spill directory
    /// (the source is [`TableError::EpochsNotSaved`]: how many, the first epoch, the cause).
    /// The evidence of those epochs is gone; the process must not exit as a success.
    #[error("shutdown could not save the epochs held in memory")]
    NotSaved(#[source] TableError),
}

pub use ashiato_net::error_chain;

/// An opened packet source, handed to one capture thread.
enum Source {
    Files(MultiFileSource),
    Live(LiveSource),
}

/// Opens the input: every capture file (and its first record), or one ring per capture
/// thread in one PACKET_FANOUT group.
fn open_sources(input: &Input) -> Result<Vec<Source>, CaptureError> {
    match input {
        Input::Files(paths) => Ok(vec![Source::Files(MultiFileSource::open(paths)?)]),
        Input::Live {
            iface,
            cfg,
            threads,
        } => {
            let workers = (*threads).clamp(1, 64);
            // One fanout group per probe process; the kernel scopes group ids per network
            // namespace, and the process id keeps two probes on one host apart.
            let fanout_group = (std::process::id() & 0xffff) as u16;
            (0..workers)
                .map(|_| {
                    let mut cfg = cfg.clone();
                    if workers > 1 {
                        cfg.fanout = Some((fanout_group, FanoutMode::Hash));
                    }
                    LiveSource::open(iface, &cfg).map(Source::Live)
                })
                .collect()
        }
    }
}

/// Logs an event of the tables: every one means evidence lost or at risk, so each names the
/// file (`path`), the epoch start in ns where known (`epoch`) and the cause (`error`).
fn log_table_event(event: TableEvent) {
    let path = event.path().display().to_string();
    let error = error_chain(event.error());
    match &event {
        TableEvent::SpillWriteFailed { epoch_start_ns, .. } => tracing::error!(
            path,
            epoch = epoch_start_ns,
            error,
            "spill write failed: the epoch is lost and queries over it answer unknown"
        ),
        TableEvent::SpillReadFailed { epoch_start_ns, .. } => tracing::error!(
            path,
            epoch = epoch_start_ns,
            error,
            "spill file unreadable: the epoch answers unknown"
        ),
        TableEvent::SpillFileRejected { epoch_start_ns, .. } => tracing::warn!(
            path,
            epoch = epoch_start_ns,
            error,
            "spill file rejected at start: not queried"
        ),
        TableEvent::SpillDeleteFailed { .. } => tracing::warn!(
            path,
            error,
            "spill file could not be deleted: disk use may exceed the budget"
        ),
        _ => tracing::warn!(path, error, kind = event.kind(), "digest tables event"),
    }
}

/// A running probe: capture threads, maintenance thread and shared state.
pub struct Probe {
    state: Arc<ProbeState>,
    stop: Arc<AtomicBool>,
    ingest: Vec<JoinHandle<Result<(), CaptureError>>>,
    /// Taken by [`Probe::stop`], which stops the thread before the final spill.
    maintenance: Option<MaintenanceHandle>,
    /// Notified by a file-reading ingest thread once its input is read (or failed), after the
    /// counters say so: [`Probe::wait_input_done`] sleeps on it instead of polling.
    input_ended: Arc<(Mutex<()>, Condvar)>,
}

impl Probe {
    /// Builds the tables and starts capturing.
    pub fn start(cfg: ProbeConfig) -> Result<Probe, ProbeError> {
        // Every source is opened first, before the tables are allocated or any thread starts:
        // a probe that cannot record (no such interface, no permission, a missing, unreadable
        // or garbage capture file) fails to start instead of serving empty tables.
        let sources = open_sources(&cfg.input)?;
        let mut tcfg = cfg.tables.clone();
        tcfg.table_id = cfg.key.table_id();
        let events: EventSink = Arc::new(log_table_event);
        let tables = DigestTables::with_events(tcfg, Some(events))?;
        let maintenance = tables.spawn_maintenance();
        let counters = Arc::new(IngestCounters::default());
        let mut state = ProbeState::new(&cfg.name, &cfg.input.describe(), tables.clone());
        state.counters = counters.clone();
        let state = Arc::new(state);
        let stop = Arc::new(AtomicBool::new(false));
        let workers = sources.len();
        let mut ingest = Vec::with_capacity(workers);
        let input_ended = Arc::new((Mutex::new(()), Condvar::new()));
        for (worker, source) in sources.into_iter().enumerate() {
            let (stop, counters, tables) = (stop.clone(), counters.clone(), tables.clone());
            let ended = input_ended.clone();
            let key = cfg.key;
            let is_files = matches!(source, Source::Files(_));
            let handle = std::thread::Builder::new()
                .name(format!("ashiato-ingest-{worker}"))
                .spawn(move || {
                    let mut ing = Ingestor::new(key, &tables);
                    ing.set_worker(worker);
                    ing.set_concurrent(workers > 1);
                    let r = match source {
                        Source::Files(src) => pipeline::run_source(src, &mut ing, &counters, &stop),
                        Source::Live(src) => pipeline::run_source(src, &mut ing, &counters, &stop),
                    };
                    match &r {
                        Err(e) => {
                            let error = error_chain(e);
                            tracing::error!(
                                worker,
                                error,
                                "capture stopped; still answering for what was recorded"
                            );
                            counters.set_capture_error(error);
                        }
                        Ok(()) if is_files => {
                            let c = counters.snapshot();
                            tracing::info!(
                                frames = c.frames_seen,
                                digested = c.digested,
                                skipped = c.skipped_total(),
                                "capture files read; serving what was recorded"
                            );
                        }
                        Ok(()) => {}
                    }
                    if is_files {
                        // Under the lock: a waiter checks the counters under it before sleeping.
                        let _g = ended.0.lock().unwrap_or_else(|e| e.into_inner());
                        ended.1.notify_all();
                    }
                    r
                })
                .map_err(ProbeError::Thread)?;
            ingest.push(handle);
        }
        Ok(Probe {
            state,
            stop,
            ingest,
            maintenance: Some(maintenance),
            input_ended,
        })
    }

    /// The state the API serves.
    pub fn state(&self) -> Arc<ProbeState> {
        self.state.clone()
    }

    /// True once a finite input is read (or its reading failed).
    pub fn input_done(&self) -> bool {
        self.state.counters.snapshot().input_done
    }

    /// Waits until a finite input is fully read (or `timeout`); returns whether it was.
    pub fn wait_input_done(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let (lock, ended) = &*self.input_ended;
        let mut g = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if self.input_done() {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            g = ended
                .wait_timeout(g, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// If a capture thread has ended with an error, takes it.
    pub fn capture_error(&mut self) -> Option<CaptureError> {
        let done = self.ingest.iter().position(|h| h.is_finished())?;
        let h = self.ingest.swap_remove(done);
        h.join().ok().and_then(|r| r.err())
    }

    /// Stops capturing, stops the maintenance thread, then retires every epoch still in memory
    /// (with spilling configured the newest epochs reach the disk and survive a restart).
    ///
    /// Returns `Ok(None)` on a clean stop, `Ok(Some(e))` if a capture thread had ended with
    /// an error (what it recorded was saved), and `Err(ProbeError::NotSaved(_))` if spilling
    /// is configured and some epochs held in memory could not be written: the caller must
    /// exit with a failure (`ashiato probe run` exits 1).
    ///
    /// The maintenance thread is stopped first so that every epoch still in memory is written
    /// by this call and counted in its result, not by the thread behind its back.
    pub fn stop(mut self) -> Result<Option<CaptureError>, ProbeError> {
        self.stop.store(true, Ordering::Relaxed);
        let mut first = None;
        for h in self.ingest.drain(..) {
            if let Ok(Err(e)) = h.join()
                && first.is_none()
            {
                first = Some(e);
            }
        }
        if let Some(m) = self.maintenance.take() {
            m.stop();
        }
        match self.state.tables.retire_all() {
            Ok(r) => {
                if r.spilled > 0 {
                    tracing::info!(spilled = r.spilled, "in-memory epochs written to disk");
                }
                Ok(first)
            }
            Err(e) => {
                tracing::error!(error = error_chain(&e), "in-memory epochs not saved");
                Err(ProbeError::NotSaved(e))
            }
        }
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
