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
//!
//! An answer means what it says: a digest is `not_seen` only if every part of the window was
//! recorded and is still held, and at least one epoch of it was searched; otherwise it is
//! `unknown`, and the answer lists the
//! [`GapAnswer`]s — the parts it cannot answer for, and why (see
//! [`ashiato_tables::coverage`]).
//!
//! Answers are bounded: one is at most [`MAX_ANSWER_BYTES`] (at most [`MAX_EPOCH_ENTRIES`]
//! epochs listed in all, [`MAX_GAPS`] gaps), and all answers being computed or sent, over every
//! connection, hold at most [`ANSWER_BUDGET_BYTES`]: a query that would exceed it gets `503`
//! with `Retry-After` (see [`crate::api::answer_body`]). Slow readers can no longer pile up
//! answers in memory.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use ashiato_digest::Digest;
use ashiato_tables::theory::union_fpr;
use ashiato_tables::{DigestTables, EpochMatch, Gap, GapReason, gaps};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::metrics::{IngestCounters, render_metrics};

pub use ashiato_api::probe::{
    ANSWER_BUDGET_BYTES, DigestAnswer, EpochHit, EpochStatus, GapAnswer, MAX_ANSWER_BYTES,
    MAX_BATCH, MAX_BODY_BYTES, MAX_EPOCH_ENTRIES, MAX_EPOCHS_PER_ANSWER, MAX_GAPS, MAX_WORK,
    QueryRequest, QueryResponse, RETRY_AFTER_SECS, StatusResponse, Verdict,
};

/// The answer entry of a matching epoch.
fn epoch_hit(m: &EpochMatch) -> EpochHit {
    EpochHit {
        start_ns: m.epoch_start_ns,
        end_ns: m.epoch_end_ns,
        inserted: m.inserted,
        fpr: m.fpr,
        on_disk: m.on_disk,
    }
}

/// The answer entry of a part of the window the probe does not hold.
fn gap_answer(g: &Gap) -> GapAnswer {
    GapAnswer {
        from_ns: g.from_ns,
        to_ns: g.to_ns,
        reason: g.reason.as_str().into(),
        detail: g.reason.detail().map(str::to_string),
    }
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
    /// Bytes of answers in flight over all connections; starts at [`ANSWER_BUDGET_BYTES`].
    pub answer_budget: Arc<Semaphore>,
}

impl ProbeState {
    /// The state of a probe serving `tables` (built with the federation key whose public id
    /// they carry), with fresh counters and a full answer budget. The ingest side is the
    /// caller's: [`crate::Probe::start`] runs capture threads; a lab or a test inserts with
    /// the tables' writer and marks a finished input with
    /// [`IngestCounters::set_input_done`].
    pub fn new(name: &str, source: &str, tables: Arc<DigestTables>) -> ProbeState {
        ProbeState {
            name: name.to_string(),
            source: source.to_string(),
            table_id: tables.config().table_id,
            tables,
            counters: Arc::new(IngestCounters::default()),
            started: Instant::now(),
            answer_budget: Arc::new(Semaphore::new(ANSWER_BUDGET_BYTES)),
        }
    }
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

/// Answers a validated query from the tables; refuses one that would cost more than
/// [`MAX_WORK`] tests. Reads the clock and the input state, then calls [`answer_at`].
pub fn answer(
    state: &ProbeState,
    req: &QueryRequest,
    digests: &[u128],
) -> Result<QueryResponse, ApiError> {
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    let input_done = state.counters.snapshot().input_done;
    answer_at(state, req, digests, now_ns, input_done)
}

/// [`answer`] at time `now_ns` (used only when nothing was recorded yet), with the fact that
/// a finite input was read to its end (`input_done`: the time after its last epoch is then
/// `not_recorded` — the capture ended — rather than `not_yet_recorded`).
///
/// An absent `from_ns` / `to_ns` means the oldest / newest epoch held, so a query without a
/// window asks about everything held and meets no gap at its ends.
pub fn answer_at(
    state: &ProbeState,
    req: &QueryRequest,
    digests: &[u128],
    now_ns: u64,
    input_done: bool,
) -> Result<QueryResponse, ApiError> {
    let ours = format!("{:016x}", state.table_id);
    if let Some(theirs) = &req.table_id
        && !theirs.eq_ignore_ascii_case(&ours)
    {
        return Err(ApiError(
            StatusCode::CONFLICT,
            format!(
                "the digests were computed with another federation key (table id {}) than this probe's (table id {ours}): digests of another key match nothing here",
                theirs.chars().take(32).collect::<String>()
            ),
        ));
    }
    let held = state.tables.epochs();
    let from = req
        .from_ns
        .unwrap_or_else(|| held.first().map_or(now_ns, |e| e.epoch_start_ns));
    let to = req.to_ns.unwrap_or_else(|| {
        held.last()
            .map_or(now_ns, |e| e.epoch_end_ns.saturating_sub(1))
            .max(from)
    });
    let in_window = held
        .iter()
        .filter(|e| e.epoch_end_ns > from && e.epoch_start_ns <= to)
        .count();
    let work = in_window as u64 * digests.len() as u64;
    if work > MAX_WORK {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!(
                "{} digests over {in_window} epochs is {work} tests, at most {MAX_WORK}: narrow the window (from_ns, to_ns) or split the batch",
                digests.len(),
            ),
        ));
    }
    let search = state.tables.search(digests, from, to);
    // After the search: an epoch lost or deleted meanwhile shows as a gap (see
    // `DigestTables::coverage`).
    let mut coverage = state.tables.coverage(from, to);
    coverage.add_unreadable(search.unreadable.iter().copied());
    let all_gaps = gaps(&coverage, from, to, input_done, now_ns);
    // A window in which no epoch was searched is not held, whatever the coverage says (the
    // time after a finished capture file, a probe that recorded nothing): never `not_seen`.
    let unknown_reason = gap_reasons(&all_gaps).or_else(|| {
        search
            .searched
            .is_empty()
            .then(|| "no epoch of the window is held: the probe searched none".to_string())
    });
    let limit = per_digest_limit(&search.matches);
    let mut truncated_any = false;
    let answers = req
        .digests
        .iter()
        .zip(&search.matches)
        .map(|(d, hits)| {
            let verdict = if !hits.is_empty() {
                Verdict::Seen
            } else if unknown_reason.is_some() {
                Verdict::Unknown
            } else {
                Verdict::NotSeen
            };
            let truncated = hits.len() > limit;
            truncated_any |= truncated && limit < MAX_EPOCHS_PER_ANSWER.min(hits.len());
            DigestAnswer {
                digest: d.trim().to_ascii_lowercase(),
                seen: verdict == Verdict::Seen,
                verdict: Some(verdict),
                reason: (verdict == Verdict::Unknown)
                    .then(|| unknown_reason.clone())
                    .flatten(),
                truncated,
                epochs: hits.iter().take(limit).map(epoch_hit).collect(),
            }
        })
        .collect();
    let searched = &search.searched;
    let epoch_ns = state.tables.config().epoch_ns;
    let held = held_window(from, to, &all_gaps).unwrap_or_else(|| {
        // Nothing of the window is held: the epochs searched (if any) bound it.
        (
            searched
                .first()
                .map_or(from, |e| e.epoch_start_ns.max(from)),
            searched
                .last()
                .map_or(to, |e| e.epoch_start_ns.saturating_add(epoch_ns).min(to)),
        )
    });
    Ok(QueryResponse {
        probe: state.name.clone(),
        digest_version: ashiato_digest::DIGEST_VERSION,
        table_id: ours,
        from_ns: held.0,
        to_ns: held.1,
        epochs_searched: searched.len(),
        false_match_probability: union_fpr(searched.iter().map(|e| e.fpr)),
        answers,
        gaps_truncated: all_gaps.len() > MAX_GAPS,
        gaps: all_gaps.iter().take(MAX_GAPS).map(gap_answer).collect(),
        truncated: truncated_any,
    })
}

/// The window `[from, to]` without the gaps at its ends: the part the answer speaks for,
/// epochs without packets included (the probe was recording then). `None` when gaps cover
/// all of it. Gaps in the middle stay inside (they are listed in the answer's `gaps`).
fn held_window(from: u64, to: u64, gaps: &[Gap]) -> Option<(u64, u64)> {
    let (mut lo, mut hi) = (from, to);
    for g in gaps {
        if g.from_ns <= lo && g.to_ns > lo {
            lo = g.to_ns;
        }
    }
    for g in gaps.iter().rev() {
        if g.to_ns >= hi && g.from_ns <= hi {
            hi = g.from_ns;
        }
    }
    (lo < hi).then_some((lo, hi))
}

/// The distinct reasons of `gaps`, e.g. `expired, lost (spill_write_failed)`, or `None` when
/// the window is fully held.
fn gap_reasons(gaps: &[Gap]) -> Option<String> {
    let mut reasons: Vec<GapReason> = gaps.iter().map(|g| g.reason).collect();
    reasons.sort_unstable();
    reasons.dedup();
    let parts: Vec<String> = reasons
        .iter()
        .map(|r| match r.detail() {
            Some(d) => format!("{} ({d})", r.as_str()),
            None => r.as_str().to_string(),
        })
        .collect();
    (!parts.is_empty()).then(|| format!("window not fully held: {}", parts.join(", ")))
}

/// The largest per-digest number of listed epochs `L` (at most [`MAX_EPOCHS_PER_ANSWER`])
/// such that listing `min(matches, L)` epochs per digest stays within [`MAX_EPOCH_ENTRIES`].
/// Even rather than first come, first served: no digest loses all its epochs to another.
fn per_digest_limit(matches: &[Vec<EpochMatch>]) -> usize {
    let listed = |l: usize| -> usize { matches.iter().map(|m| m.len().min(l)).sum() };
    if listed(MAX_EPOCHS_PER_ANSWER) <= MAX_EPOCH_ENTRIES {
        return MAX_EPOCHS_PER_ANSWER;
    }
    // listed() is monotone in l: binary search for the last l that fits.
    let (mut lo, mut hi) = (0usize, MAX_EPOCHS_PER_ANSWER);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if listed(mid) <= MAX_EPOCH_ENTRIES {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

/// Bytes to reserve before answering `digests` digests: an upper bound of the answer's size
/// (see [`MAX_ANSWER_BYTES`]), so that answers being computed count against the budget too.
pub fn answer_bound(digests: usize) -> usize {
    const HEAD: usize = 2048;
    const PER_DIGEST: usize = 320;
    const PER_EPOCH: usize = 150;
    const PER_GAP: usize = 150;
    let epochs = digests
        .saturating_mul(MAX_EPOCHS_PER_ANSWER)
        .min(MAX_EPOCH_ENTRIES);
    (HEAD + digests.saturating_mul(PER_DIGEST) + epochs * PER_EPOCH + MAX_GAPS * PER_GAP)
        .min(MAX_ANSWER_BYTES)
}

/// A response body that holds its share of the answer budget until it is fully handed to
/// the connection or dropped (client gone, deadline). It yields 64 KiB frames: the server
/// asks for the next frame only when it has written the previous one, so at most one frame
/// sits outside the accounted bytes.
pub struct BudgetedBody {
    data: Vec<u8>,
    sent: usize,
    _permit: OwnedSemaphorePermit,
}

const FRAME_BYTES: usize = 64 * 1024;

impl hyper::body::Body for BudgetedBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if this.sent >= this.data.len() {
            return Poll::Ready(None);
        }
        let end = (this.sent + FRAME_BYTES).min(this.data.len());
        let chunk = Bytes::copy_from_slice(&this.data[this.sent..end]);
        this.sent = end;
        Poll::Ready(Some(Ok(hyper::body::Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.sent >= self.data.len()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact((self.data.len() - self.sent) as u64)
    }
}

/// The JSON `body` as a response that holds `permit` (shrunk to the body's length, the rest
/// returned to the budget) until the body is sent or dropped.
pub fn answer_body(body: Vec<u8>, mut permit: OwnedSemaphorePermit) -> Response {
    let excess = (permit.num_permits()).saturating_sub(body.len());
    if excess > 0 {
        drop(permit.split(excess));
    }
    let mut resp = Response::new(axum::body::Body::new(BudgetedBody {
        data: body,
        sent: 0,
        _permit: permit,
    }));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// `503` with `Retry-After`: the answer budget is exhausted.
fn busy(needed: usize) -> Response {
    let mut resp = ApiError(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "busy: answers in flight hold the budget of {ANSWER_BUDGET_BYTES} bytes and this one needs up to {needed}; retry in {RETRY_AFTER_SECS} s"
        ),
    )
    .into_response();
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    resp
}

/// Takes `bytes` of the answer budget now, or `None` if it is exhausted (never waits: a
/// waiting request would hold its connection and body anyway).
fn reserve(state: &ProbeState, bytes: usize) -> Option<OwnedSemaphorePermit> {
    let n = u32::try_from(bytes).ok()?;
    state.answer_budget.clone().try_acquire_many_owned(n).ok()
}

async fn query(
    State(state): State<Arc<ProbeState>>,
    body: Result<Json<QueryRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body.map_err(|e| ApiError(e.status(), e.body_text()))?;
    let digests = validate(&req)?;
    let needed = answer_bound(digests.len());
    let Some(mut permit) = reserve(&state, needed) else {
        tracing::warn!(needed, "answer budget exhausted; query refused with 503");
        return Ok(busy(needed));
    };
    let st = state.clone();
    // Large batches touch many cache lines and may read spill files; keep the async workers
    // free.
    let (resp, bytes) = tokio::task::spawn_blocking(move || {
        let resp = answer(&st, &req, &digests)?;
        let bytes = serde_json::to_vec(&resp)
            .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        Ok::<_, ApiError>((resp, bytes))
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    if bytes.len() > permit.num_permits() {
        // Only if `answer_bound` under-estimated: take the difference or refuse.
        let Some(more) = reserve(&state, bytes.len() - permit.num_permits()) else {
            return Ok(busy(bytes.len()));
        };
        permit.merge(more);
    }
    tracing::info!(
        probe = %resp.probe,
        digests = resp.answers.len(),
        seen = resp.answers.iter().filter(|a| a.seen).count(),
        unknown = resp
            .answers
            .iter()
            .filter(|a| a.verdict() == Verdict::Unknown)
            .count(),
        bytes = bytes.len(),
        "query answered"
    );
    Ok(answer_body(bytes, permit))
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
        [(header::CONTENT_TYPE, ashiato_api::metrics::CONTENT_TYPE)],
        render_metrics(&state),
    )
}
