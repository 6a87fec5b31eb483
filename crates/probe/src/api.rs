//! The probe's HTTP/JSON API: what crosses the network, and the router that serves it.
//!
//! | method | path          | body / answer                                             |
//! |--------|---------------|-----------------------------------------------------------|
//! | POST   | `/v1/query`   | [`QueryRequest`] → [`QueryResponse`]                      |
//! | GET    | `/v1/status`  | [`StatusResponse`]                                        |
//! | GET    | `/metrics`    | Prometheus text exposition (format 0.0.4)                 |
//! | GET    | `/healthz`    | `ok`, or `503` once capture stopped on an error           |
//!
//! A query carries digests and a time window, never packet bytes; an answer carries epochs
//! and false-positive rates, never packet bytes. Every field is validated: at most
//! [`MAX_BATCH`] digests, each exactly 32 hex digits, `from_ns <= to_ns`, no unknown fields,
//! and the body is capped at [`MAX_BODY_BYTES`] before it is parsed.

use std::sync::Arc;
use std::time::Instant;

use ashiato_digest::Digest;
use ashiato_tables::{DigestTables, EpochMatch};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::metrics::{IngestCounters, render_metrics};

/// Most digests in one query.
pub const MAX_BATCH: usize = 4096;

/// Largest request body accepted (a full batch is about 150 KB).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Most digest-epoch tests one query may cost (digests × epochs in the window): a full
/// batch over about an hour of 1 s epochs. Wider searches must narrow the window or batch.
pub const MAX_WORK: u64 = 16 * 1024 * 1024;

/// Most epochs listed in one digest's answer (a digest seen in more is marked truncated).
pub const MAX_EPOCHS_PER_ANSWER: usize = 256;

/// A question to a probe: did you see these digests between `from_ns` and `to_ns`?
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct QueryRequest {
    /// Digests as 32 hexadecimal digits (docs/digest.md).
    pub digests: Vec<String>,
    /// Start of the window, nanoseconds since the Unix epoch; absent = oldest epoch held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_ns: Option<u64>,
    /// End of the window; absent = now / newest epoch held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_ns: Option<u64>,
}

/// One epoch of the digest tables that holds a digest.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EpochHit {
    /// Epoch start, ns since the Unix epoch.
    pub start_ns: u64,
    /// Epoch end (exclusive).
    pub end_ns: u64,
    /// Packets recorded in that epoch.
    pub inserted: u64,
    /// False-positive rate of that epoch's table: the chance that this hit is a coincidence.
    pub fpr: f64,
    /// Served from a spilled (on-disk) epoch.
    pub on_disk: bool,
}

impl From<&EpochMatch> for EpochHit {
    fn from(m: &EpochMatch) -> Self {
        EpochHit {
            start_ns: m.epoch_start_ns,
            end_ns: m.epoch_end_ns,
            inserted: m.inserted,
            fpr: m.fpr,
            on_disk: m.on_disk,
        }
    }
}

/// The answer for one digest.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DigestAnswer {
    /// The digest asked about.
    pub digest: String,
    /// True when at least one epoch in the window holds it.
    pub seen: bool,
    /// The epochs that hold it (at most [`MAX_EPOCHS_PER_ANSWER`], oldest first).
    pub epochs: Vec<EpochHit>,
    /// True when more epochs held it than are listed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// A probe's answer to a [`QueryRequest`].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct QueryResponse {
    /// The probe's name.
    pub probe: String,
    /// Digest specification version the tables were built with.
    pub digest_version: u8,
    /// Public identifier of key + version; differs if the probe uses another federation key.
    pub table_id: String,
    /// Window actually searched (clamped to what the probe holds).
    pub from_ns: u64,
    /// End of the searched window.
    pub to_ns: u64,
    /// Epochs searched.
    pub epochs_searched: usize,
    /// Chance that a digest the probe never saw is reported seen in this window:
    /// 1 − Π(1 − fpr) over the searched epochs.
    pub false_match_probability: f64,
    /// One answer per digest, in request order.
    pub answers: Vec<DigestAnswer>,
}

/// Summary of one epoch for the status page.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EpochStatus {
    /// Epoch start, ns since the Unix epoch.
    pub start_ns: u64,
    /// Epoch end (exclusive).
    pub end_ns: u64,
    /// Packets recorded.
    pub inserted: u64,
    /// Fraction of bits set, when known (sealed epochs).
    pub fill: Option<f64>,
    /// Current false-positive rate.
    pub fpr: f64,
    /// Spilled to disk.
    pub on_disk: bool,
    /// The epoch being written.
    pub current: bool,
}

/// `GET /v1/status`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct StatusResponse {
    /// Probe name.
    pub probe: String,
    /// Where packets come from (file names or interface).
    pub source: String,
    /// Digest specification version.
    pub digest_version: u8,
    /// Public identifier of key + version.
    pub table_id: String,
    /// Filter kind.
    pub filter: String,
    /// Bits per epoch table.
    pub m_bits: u64,
    /// Hash functions per digest.
    pub k: u32,
    /// Epoch length.
    pub epoch_ns: u64,
    /// Epochs kept in memory.
    pub retention_epochs: u32,
    /// RAM held by the tables.
    pub memory_bytes: u64,
    /// Frames seen by the probe.
    pub frames_seen: u64,
    /// Frames digested and recorded.
    pub digested: u64,
    /// Frames the kernel dropped before we saw them.
    pub kernel_drops: u64,
    /// Frames we skipped, by reason.
    pub skipped: Vec<(String, u64)>,
    /// True once a finite input (capture files) is fully read.
    pub input_done: bool,
    /// Why capture stopped, if it stopped on an error: the probe answers for what it recorded
    /// before and records nothing more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_error: Option<String>,
    /// Every answerable epoch, oldest first.
    pub epochs: Vec<EpochStatus>,
}

/// What the handlers share.
pub struct ProbeState {
    /// Probe name (from its certificate or `--name`).
    pub name: String,
    /// Description of the input.
    pub source: String,
    /// Public identifier of key + digest version.
    pub table_id: u64,
    /// The digest tables.
    pub tables: Arc<DigestTables>,
    /// Ingest counters.
    pub counters: Arc<IngestCounters>,
    /// Start of the process, for uptime.
    pub started: Instant,
}

/// An error answer: a status code and a one-line JSON `{"error": ...}`.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

/// Builds the router. Tests call this directly, without a network.
pub fn router(state: Arc<ProbeState>) -> Router {
    Router::new()
        .route("/v1/query", post(query))
        .route("/v1/status", get(status))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Validates a request and turns its digests into integers.
pub fn validate(req: &QueryRequest) -> Result<Vec<u128>, ApiError> {
    let bad = |m: String| ApiError(StatusCode::BAD_REQUEST, m);
    if req.digests.is_empty() {
        return Err(bad("digests: empty batch".into()));
    }
    if req.digests.len() > MAX_BATCH {
        return Err(bad(format!(
            "digests: {} in one batch, at most {MAX_BATCH}",
            req.digests.len()
        )));
    }
    if let (Some(f), Some(t)) = (req.from_ns, req.to_ns)
        && f > t
    {
        return Err(bad(format!("from_ns {f} is after to_ns {t}")));
    }
    let digests: Vec<u128> = req
        .digests
        .iter()
        .enumerate()
        .map(|(i, d)| {
            d.parse::<Digest>()
                .map(Digest::as_u128)
                .map_err(|e| bad(format!("digests[{i}]: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let mut seen = std::collections::HashMap::with_capacity(digests.len());
    for (i, d) in digests.iter().enumerate() {
        if let Some(j) = seen.insert(*d, i) {
            return Err(bad(format!("digests[{i}] repeats digests[{j}]")));
        }
    }
    Ok(digests)
}

/// Answers a validated query from the tables (the pure part of the handler); refuses one
/// that would cost more than [`MAX_WORK`] tests.
pub fn answer(
    state: &ProbeState,
    req: &QueryRequest,
    digests: &[u128],
) -> Result<QueryResponse, ApiError> {
    let from = req.from_ns.unwrap_or(0);
    let to = req.to_ns.unwrap_or(u64::MAX);
    let searched: Vec<_> = state
        .tables
        .epochs()
        .into_iter()
        .filter(|e| e.epoch_end_ns > from && e.epoch_start_ns <= to)
        .collect();
    let work = searched.len() as u64 * digests.len() as u64;
    if work > MAX_WORK {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!(
                "{} digests over {} epochs is {work} tests, at most {MAX_WORK}: narrow the window (from_ns, to_ns) or split the batch",
                digests.len(),
                searched.len()
            ),
        ));
    }
    let p_clean: f64 = searched.iter().map(|e| 1.0 - e.fpr).product();
    let results = state.tables.query_batch(digests, from, to);
    let answers = req
        .digests
        .iter()
        .zip(results)
        .map(|(d, hits)| DigestAnswer {
            digest: d.trim().to_ascii_lowercase(),
            seen: !hits.is_empty(),
            truncated: hits.len() > MAX_EPOCHS_PER_ANSWER,
            epochs: hits
                .iter()
                .take(MAX_EPOCHS_PER_ANSWER)
                .map(EpochHit::from)
                .collect(),
        })
        .collect();
    Ok(QueryResponse {
        probe: state.name.clone(),
        digest_version: ashiato_digest::DIGEST_VERSION,
        table_id: format!("{:016x}", state.table_id),
        from_ns: searched
            .first()
            .map_or(from, |e| e.epoch_start_ns.max(from)),
        to_ns: searched.last().map_or(to, |e| e.epoch_end_ns.min(to)),
        epochs_searched: searched.len(),
        false_match_probability: 1.0 - p_clean,
        answers,
    })
}

async fn query(
    State(state): State<Arc<ProbeState>>,
    body: Result<Json<QueryRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<QueryResponse>, ApiError> {
    let Json(req) = body.map_err(|e| ApiError(e.status(), e.body_text()))?;
    let digests = validate(&req)?;
    let st = state.clone();
    // Large batches touch many cache lines; keep the async workers free.
    let resp = tokio::task::spawn_blocking(move || answer(&st, &req, &digests))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    tracing::info!(
        probe = %resp.probe,
        digests = resp.answers.len(),
        seen = resp.answers.iter().filter(|a| a.seen).count(),
        "query answered"
    );
    Ok(Json(resp))
}

/// The status document (also used by the CLI after an offline run).
pub fn status_of(state: &ProbeState) -> StatusResponse {
    let cfg = state.tables.config();
    let c = state.counters.snapshot();
    StatusResponse {
        probe: state.name.clone(),
        source: state.source.clone(),
        digest_version: ashiato_digest::DIGEST_VERSION,
        table_id: format!("{:016x}", state.table_id),
        filter: cfg.params.kind.to_string(),
        m_bits: cfg.params.m_bits,
        k: cfg.params.k,
        epoch_ns: cfg.epoch_ns,
        retention_epochs: cfg.retention_epochs,
        memory_bytes: state.tables.memory_bytes(),
        frames_seen: c.frames_seen,
        digested: c.digested,
        kernel_drops: c.kernel_drops,
        skipped: c
            .skipped
            .into_iter()
            .map(|(r, n)| (r.to_string(), n))
            .collect(),
        input_done: c.input_done,
        capture_error: c.capture_error,
        epochs: state
            .tables
            .epochs()
            .into_iter()
            .map(|e| EpochStatus {
                start_ns: e.epoch_start_ns,
                end_ns: e.epoch_end_ns,
                inserted: e.inserted,
                fill: e.ones.map(|o| o as f64 / e.m_bits.max(1) as f64),
                fpr: e.fpr,
                on_disk: e.on_disk,
                current: e.current,
            })
            .collect(),
    }
}

/// `ok` while the probe records; `503` with the reason once its capture has stopped on an
/// error (it still answers queries for what it recorded, but a monitor must know).
async fn healthz(State(state): State<Arc<ProbeState>>) -> Response {
    match state.counters.capture_error() {
        None => "ok".into_response(),
        Some(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("capture stopped: {e}\n"),
        )
            .into_response(),
    }
}

async fn status(State(state): State<Arc<ProbeState>>) -> Json<StatusResponse> {
    Json(status_of(&state))
}

async fn metrics(State(state): State<Arc<ProbeState>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        render_metrics(&state),
    )
}
