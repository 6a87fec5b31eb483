//! The ashiato probe service: records a digest of every packet and answers "did you see H(P)
//! around time t?" over HTTP/JSON with mutual TLS.
//!
//! ```text
//!  capture source ──frames──▶ Ingestor ──digest──▶ DigestTables ◀──query── api::router ◀── mTLS ── controller
//!  (files / AF_PACKET)        (pipeline)           (tables crate)        (server::serve)
//!                                 │ counters                                  │
//!                                 └──────────────▶ IngestCounters ──▶ /metrics, /v1/status
//! ```
//!
//! - [`pipeline`]: the per-packet core ([`pipeline::Ingestor`]) and the loops that feed it.
//! - [`api`]: request and answer types, validation, the router.
//! - [`server`]: the accept loop (mutual TLS, bounded connections, deadlines).
//! - [`client`]: the client side, used by `ashiato probe query` and later by controllers.
//! - [`tls`]: certificates: loading, verifying, generating a lab PKI.
//! - [`metrics`]: counters and their Prometheus rendering.
//!
//! [`Probe`] ties a capture thread, the tables' maintenance thread and the shared state
//! together; the CLI adds the listener.

pub mod api;
pub mod client;
pub mod metrics;
pub mod pipeline;
pub mod server;
pub mod tls;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ashiato_capture::CaptureError;
use ashiato_capture::file::MultiFileSource;
use ashiato_capture::live::{FanoutMode, LiveConfig, LiveSource};
use ashiato_digest::Key;
use ashiato_tables::{DigestTables, MaintenanceHandle, TableError, TablesConfig};

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

/// Errors starting a probe.
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
    #[error("cannot record: {0}")]
    Capture(#[from] CaptureError),
}

/// An error and its causes on one line (`a: b: c`), for status pages and logs.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        // Errors that still repeat their cause in their own message are not printed twice.
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

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

/// A running probe: capture threads, maintenance thread and shared state.
pub struct Probe {
    state: Arc<ProbeState>,
    stop: Arc<AtomicBool>,
    ingest: Vec<JoinHandle<Result<(), CaptureError>>>,
    _maintenance: MaintenanceHandle,
}

impl Probe {
    /// Builds the tables and starts capturing.
    pub fn start(cfg: ProbeConfig) -> Result<Probe, ProbeError> {
        let mut tcfg = cfg.tables.clone();
        tcfg.table_id = cfg.key.table_id();
        let tables = DigestTables::new(tcfg)?;
        let maintenance = tables.spawn_maintenance();
        let counters = Arc::new(IngestCounters::default());
        let state = Arc::new(ProbeState {
            name: cfg.name.clone(),
            source: cfg.input.describe(),
            table_id: cfg.key.table_id(),
            tables: tables.clone(),
            counters: counters.clone(),
            started: Instant::now(),
        });
        let stop = Arc::new(AtomicBool::new(false));
        // Every source is opened here, before any thread starts: a probe that cannot record
        // (no such interface, no permission, a missing, unreadable or garbage capture file)
        // fails to start instead of serving empty tables.
        let sources = open_sources(&cfg.input)?;
        let workers = sources.len();
        let mut ingest = Vec::with_capacity(workers);
        for (worker, source) in sources.into_iter().enumerate() {
            let (stop, counters, tables) = (stop.clone(), counters.clone(), tables.clone());
            let key = cfg.key;
            let is_files = matches!(source, Source::Files(_));
            let handle = std::thread::Builder::new()
                .name(format!("ashiato-ingest-{worker}"))
                .spawn(move || {
                    let mut ing = Ingestor::new(key, &tables);
                    ing.set_worker(worker);
                    ing.set_concurrent(workers > 1);
                    let r = match source {
                        Source::Files(src) => {
                            pipeline::run_file_source(src, &mut ing, &counters, &stop)
                        }
                        Source::Live(src) => {
                            pipeline::run_live_source(src, &mut ing, &counters, &stop)
                        }
                    };
                    match &r {
                        Err(e) => {
                            tracing::error!(worker, error = %e, "capture stopped; still answering for what was recorded");
                            counters.set_capture_error(error_chain(e));
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
                    r
                })
                .map_err(ProbeError::Thread)?;
            ingest.push(handle);
        }
        Ok(Probe {
            state,
            stop,
            ingest,
            _maintenance: maintenance,
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
        while Instant::now() < deadline {
            if self.input_done() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.input_done()
    }

    /// If a capture thread has ended with an error, takes it.
    pub fn capture_error(&mut self) -> Option<CaptureError> {
        let done = self.ingest.iter().position(|h| h.is_finished())?;
        let h = self.ingest.swap_remove(done);
        h.join().ok().and_then(|r| r.err())
    }

    /// Stops capturing, retires every epoch still in memory (so with spilling configured the
    /// newest epochs reach the disk and survive a restart), and returns the first capture
    /// error, if any.
    pub fn stop(mut self) -> Result<(), CaptureError> {
        self.stop.store(true, Ordering::Relaxed);
        let mut first = Ok(());
        for h in self.ingest.drain(..) {
            if let Ok(Err(e)) = h.join()
                && first.is_ok()
            {
                first = Err(e);
            }
        }
        match self.state.tables.retire_all() {
            Ok(r) if r.spilled > 0 => {
                tracing::info!(spilled = r.spilled, "in-memory epochs written to disk")
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "could not retire the in-memory epochs"),
        }
        first
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
