//! The per-ISP domain controller: the IO shell around `ashiato_trace`'s pure core.
//!
//! ```text
//!  IDS (EVE) ─┐                          ┌──▶ own probes  (/v1/query, mutual TLS)
//!  CLI ───────┼─▶ POST /v1/trace ─▶ Controller::trace ─┤
//!  lab ───────┘                          └──▶ other domains' controllers (/v1/hop)
//!                 POST /v1/hop  ◀── other domains' controllers
//! ```
//!
//! - [`config`]: the domain file (who we are, our probes, neighbours, peers, limits).
//! - [`Controller`]: the service; [`Controller::router`] serves it, [`Controller::trace`] runs
//!   a trace in-process (a lab calls it directly).
//! - [`eve`]: Suricata EVE alerts as triggers (posted, or a followed file).
//!
//! # One hop
//!
//! A controller is asked about packets, each with a reason ([`Via`]): seen at our own edge
//! (the trace starts here), seen entering a downstream neighbour over our shared link, or
//! reached around non-participants (peering skip). It then:
//!
//! 1. **asks its own probes**, all in parallel under `probe_timeout_ms`: one `/v1/query` per
//!    probe and per *time group* — packets whose windows `[t − u − skew, t + u + skew]`
//!    overlap share one request — through `query_expecting`, so a probe keyed for another
//!    federation is an error, never a "not seen". A probe that fails gives `unreachable`
//!    evidence with the error chain as its reason; it is never read as "not seen".
//! 2. **decides** per packet with `ashiato_trace::decide::report`, then asks
//!    `ashiato_trace::decide::next_asks` whom to ask next, with itself added to `visited`
//!    and one domain less of hop budget.
//! 3. **batches**: all packets for one next domain travel in one [`HopRequest`]; requests go
//!    out in parallel, at most `max_fanout` at once, each with a fresh `request_id`.
//! 4. **answers** with its own reports and every report from upstream, at most
//!    [`MAX_REPORTS`] (`truncated` beyond).
//!
//! A callee that fails, times out, or answers something unusable (another version, another
//! request id or domain, reports about packets it was not asked, too many reports, not our
//! JSON) gets an `unreachable` report for every packet it was asked about, with the reason
//! logged: the trace continues around it and the graph shows the gap.
//!
//! In **mesh** mode the initiator asks every participant at once with [`HopMode::Observe`]
//! (probe evidence only, plus the participant's [`DomainView`]) and runs
//! `ashiato_trace::walk::mesh_reports` over the observations: the same decisions as the
//! recursive walk, one round trip instead of one per hop.
//!
//! # Deadlines
//!
//! A trace has `deadline_ms`; each request carries the time its answer may take, counted
//! from its arrival. A controller never waits for a callee longer than its own remaining
//! time minus a margin (10 % + 20 ms) and passes that shorter time on, so answers arrive
//! before their askers give up, hop after hop. A callee silent past it is reported
//! `unreachable` with reason `deadline`; one that cannot be asked any more is `stopped`.
//! A connection that fails outright is retried once, with the same `request_id`, if the time
//! left allows.
//!
//! # Idempotency
//!
//! Answers are cached by (asking domain, `request_id`) for 60 s, at most 4,096 entries: a
//! retry gets the identical answer, and a retry that arrives while the first is still being
//! computed waits for that same answer instead of starting a second trace.
//!
//! # Bounds and authentication
//!
//! Request bodies are bounded by the accept loop; packets per request by
//! `limits.max_packets_per_trace` and [`MAX_PACKETS`]; traces at once by
//! `max_concurrent_traces` (503 beyond); each peer domain by a token bucket (429 with
//! `Retry-After`). With mutual TLS a hop's `from` must match the client certificate's name
//! (`as<ASN>`), and `/v1/trace` refuses certificates named for another domain. A hop of
//! another protocol version or federation key (`table_id`) is refused (400), one whose
//! `visited` already lists us is a loop (409), one with no hop budget left is refused (400).
//! Only digests, times, AS numbers, probe names and probe evidence cross organisations.
//!
//! [`Via`]: ashiato_api::federation::Via
//! [`HopRequest`]: ashiato_api::federation::HopRequest
//! [`HopMode::Observe`]: ashiato_api::federation::HopMode
//! [`DomainView`]: ashiato_api::federation::DomainView
//! [`MAX_REPORTS`]: ashiato_api::federation::MAX_REPORTS
//! [`MAX_PACKETS`]: ashiato_api::federation::MAX_PACKETS

pub mod config;
pub mod eve;
mod http;
mod metrics;
mod peer;
mod probes;
mod run;
pub mod store_sink;

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ashiato_api::federation::{
    DomainView, MAX_DEADLINE_MS, MAX_UNCERTAINTY_NS, TraceMode, TracePacket, TraceResult,
    TraceStart,
};

pub use crate::config::DomainConfig;
use crate::metrics::Metrics;

/// What a controller needs besides its configuration.
pub struct Deps {
    /// The federation digest key (its table id goes into every hop request and is checked
    /// on every probe answer).
    pub key: ashiato_digest::Key,
    /// TLS for calling our probes; `None` = plaintext (dev_insecure).
    pub probe_tls: Option<Arc<rustls::ClientConfig>>,
    /// TLS for calling other domains' controllers; `None` = plaintext (dev_insecure).
    pub peer_tls: Option<Arc<rustls::ClientConfig>>,
    /// Where finished traces go (a store).
    pub sink: Option<Arc<dyn TraceSink>>,
    /// The AS topology (`[trace] topology`, loaded by the caller): candidate origins behind
    /// the gaps of a trace.
    pub topology: Option<Arc<ashiato_trace::topology::Topology>>,
}

/// A boxed future, as [`TraceSink`]'s methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Persists finished traces; implemented over the SQLite/PostgreSQL store.
pub trait TraceSink: Send + Sync {
    /// Stores a finished trace.
    fn store<'a>(&'a self, t: &'a TraceResult) -> BoxFuture<'a, Result<(), String>>;
    /// Loads a trace by id.
    fn load<'a>(&'a self, trace_id: &'a str) -> BoxFuture<'a, Result<Option<TraceResult>, String>>;
}

/// Why a controller could not be built.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// The configuration does not pass [`DomainConfig::validate`].
    #[error("configuration: {}: {}", .0.key, .0.msg)]
    Config(config::Problem),
    /// Plaintext was configured for probes or peers without `dev_insecure`, or TLS with it.
    #[error("{0}")]
    Tls(String),
}

/// Why a trace could not run.
#[non_exhaustive]
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum TraceError {
    /// The request is malformed or over a limit.
    #[error("invalid trace request: {0}")]
    Invalid(String),
    /// `max_concurrent_traces` traces are running.
    #[error("too many traces running at once ({0}); try again")]
    Busy(usize),
    /// The digests were computed with another federation key than this controller's.
    #[error(
        "the digests were computed with another federation key (table id {theirs}) than this controller's (table id {ours}): pass the federation's key (--key-file or ASHIATO_KEY_FILE)"
    )]
    Key {
        /// This controller's table id.
        ours: String,
        /// The request's.
        theirs: String,
    },
}

/// The domain controller.
pub struct Controller {
    cfg: DomainConfig,
    view: DomainView,
    deps: Deps,
    table_hex: String,
    metrics: Metrics,
    recent: Mutex<Recent>,
    peers: peer::PeerState,
    running: Arc<tokio::sync::Semaphore>,
}

/// The most recent finished traces, for `GET /v1/traces/{id}`.
#[derive(Default)]
struct Recent {
    order: VecDeque<String>,
    by_id: HashMap<String, Arc<TraceResult>>,
}

/// A 32-hex-digit random id (trace, request, incident).
pub fn new_id() -> String {
    use std::io::Read;
    let mut b = [0u8; 16];
    let ok = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok();
    if !ok {
        // Unique rather than secret: time and a counter.
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        b[..8].copy_from_slice(&t.to_le_bytes());
        b[8..].copy_from_slice(&N.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// True for exactly 32 hexadecimal digits.
pub fn is_hex32(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Controller {
    /// Builds a controller. Refuses a configuration that does not validate, and TLS settings
    /// that do not match `dev_insecure` (plaintext only in dev mode, TLS always otherwise).
    pub fn new(cfg: DomainConfig, deps: Deps) -> Result<Arc<Controller>, ControllerError> {
        cfg.validate().map_err(ControllerError::Config)?;
        let insecure = cfg.domain.dev_insecure;
        if !insecure && (deps.probe_tls.is_none() || deps.peer_tls.is_none()) {
            return Err(ControllerError::Tls(
                "TLS client configurations for probes and peers are required unless dev_insecure = true".into(),
            ));
        }
        let view = cfg.view();
        let table_hex = format!("{:016x}", deps.key.table_id());
        let peers = peer::PeerState::new(&cfg.limits);
        let running = Arc::new(tokio::sync::Semaphore::new(
            cfg.limits.max_concurrent_traces,
        ));
        Ok(Arc::new(Controller {
            cfg,
            view,
            deps,
            table_hex,
            metrics: Metrics::default(),
            recent: Mutex::new(Recent::default()),
            peers,
            running,
        }))
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &DomainConfig {
        &self.cfg
    }

    /// The public table id of its federation key (16 hex digits): what every trace request
    /// must carry.
    pub fn table_id(&self) -> &str {
        &self.table_hex
    }

    /// The HTTP API: `/v1/trace`, `/v1/hop`, `/v1/eve`, `/v1/traces/{id}`,
    /// `/v1/traces/{id}/dot`, `/metrics`, `/healthz`.
    pub fn router(self: &Arc<Self>) -> axum::Router {
        http::router(self.clone())
    }

    /// Runs a trace from this domain (the packets were seen at our edge) and returns its
    /// attack graph; the result is kept for `GET /v1/traces/{id}` and handed to the sink.
    pub async fn trace(self: &Arc<Self>, start: TraceStart) -> Result<TraceResult, TraceError> {
        let began = Instant::now();
        let packets = self.check_start(&start)?;
        let deadline_ms = start.deadline_ms.unwrap_or(self.cfg.trace.deadline_ms);
        let mode = start.mode.unwrap_or(self.cfg.trace.mode);
        let _permit = self.running.clone().try_acquire_owned().map_err(|_| {
            self.metrics.refused("busy");
            TraceError::Busy(self.cfg.limits.max_concurrent_traces)
        })?;
        let trace_id = new_id();
        let deadline = began + Duration::from_millis(u64::from(deadline_ms));
        let (reports, truncated) = match mode {
            TraceMode::Recursive => {
                self.recursive_from_edge(&trace_id, &packets, deadline)
                    .await
            }
            TraceMode::Mesh => self.mesh(&trace_id, &packets, deadline).await,
        };
        let digests: Vec<String> = packets.iter().map(|p| p.digest.clone()).collect();
        let graph = ashiato_trace::graph::assemble(
            self.cfg.domain.asn,
            &digests,
            reports,
            truncated,
            self.cfg.trace.fpr_bound,
        );
        let mut graph = graph;
        if let Some(t) = &self.deps.topology {
            let known: std::collections::BTreeSet<u32> = self
                .cfg
                .participants()
                .into_iter()
                .map(|(d, _)| d)
                .chain([self.cfg.domain.asn])
                .collect();
            ashiato_trace::graph::add_candidates(&mut graph, t, &|d| known.contains(&d));
        }
        let mut result = TraceResult {
            trace_id,
            incident: start.incident.clone().unwrap_or_else(new_id),
            mode,
            duration_us: began.elapsed().as_micros() as u64,
            graph,
            stored: false,
            store_error: None,
        };
        if let Some(sink) = &self.deps.sink {
            match sink.store(&result).await {
                Ok(()) => result.stored = true,
                Err(e) => {
                    tracing::warn!(trace = %result.trace_id, error = %e, "trace not stored");
                    result.store_error = Some(e);
                }
            }
        }
        let gaps: u32 = result.graph.gaps.iter().map(|g| g.packets).sum();
        self.metrics.trace_done(mode, gaps == 0, began.elapsed());
        tracing::info!(
            trace = %result.trace_id,
            mode = mode.as_str(),
            packets = result.graph.packets,
            origins = result.graph.origins.len(),
            gap_packets = gaps,
            ms = began.elapsed().as_millis() as u64,
            source = start.source.as_deref().unwrap_or("-"),
            "trace finished"
        );
        self.remember(&result);
        Ok(result)
    }

    fn check_start(&self, s: &TraceStart) -> Result<Vec<TracePacket>, TraceError> {
        let bad = |m: String| Err(TraceError::Invalid(m));
        if !s.table_id.eq_ignore_ascii_case(&self.table_hex) {
            return Err(TraceError::Key {
                ours: self.table_hex.clone(),
                theirs: s.table_id.chars().take(32).collect(),
            });
        }
        let max = self.cfg.limits.max_packets_per_trace;
        if s.packets.is_empty() || s.packets.len() > max {
            return bad(format!("{} packets: 1 to {max}", s.packets.len()));
        }
        if let Some(d) = s.deadline_ms
            && (d == 0 || d > MAX_DEADLINE_MS)
        {
            return bad(format!("deadline_ms {d}: 1 to {MAX_DEADLINE_MS}"));
        }
        for (what, v) in [("incident", &s.incident), ("source", &s.source)] {
            if let Some(v) = v
                && (v.is_empty() || v.len() > 64 || v.chars().any(char::is_control))
            {
                return bad(format!("{what}: 1 to 64 printable characters"));
            }
        }
        let default_u = self.cfg.trace.uncertainty_ms * 1_000_000;
        let mut out = Vec::with_capacity(s.packets.len());
        for (i, p) in s.packets.iter().enumerate() {
            if !is_hex32(&p.digest) {
                return bad(format!("packet {i}: digest must be 32 hex digits"));
            }
            if p.uncertainty_ns > MAX_UNCERTAINTY_NS {
                return bad(format!(
                    "packet {i}: uncertainty_ns above {MAX_UNCERTAINTY_NS}"
                ));
            }
            let mut p = p.clone();
            p.digest.make_ascii_lowercase();
            if p.uncertainty_ns == 0 {
                p.uncertainty_ns = default_u;
            }
            out.push(p);
        }
        Ok(out)
    }

    fn remember(&self, r: &TraceResult) {
        let mut g = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        g.order.push_back(r.trace_id.clone());
        g.by_id.insert(r.trace_id.clone(), Arc::new(r.clone()));
        while g.order.len() > self.cfg.limits.recent_traces {
            if let Some(old) = g.order.pop_front() {
                g.by_id.remove(&old);
            }
        }
    }

    /// A finished trace: from memory, else from the sink.
    pub async fn get_trace(&self, id: &str) -> Result<Option<TraceResult>, String> {
        let hit = {
            let g = self.recent.lock().unwrap_or_else(|e| e.into_inner());
            g.by_id.get(id).cloned()
        };
        if let Some(r) = hit {
            return Ok(Some((*r).clone()));
        }
        match &self.deps.sink {
            Some(s) => s.load(id).await,
            None => Ok(None),
        }
    }
}
