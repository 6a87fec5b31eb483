//! `POST /v1/hop`: another domain's controller asks us. Authentication, refusals, the
//! per-peer token bucket and the idempotency cache.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ashiato_api::federation::{
    DomainId, HopMode, HopRequest, HopResponse, MAX_DEADLINE_MS, MAX_HOP_BUDGET, MAX_PACKETS,
    MAX_UNCERTAINTY_NS, MAX_VISITED, PROTOCOL_VERSION,
};
use axum::http::StatusCode;

use crate::config::LimitsSection;
use crate::run::Branch;
use crate::{Controller, is_hex32};

/// Answers kept for retries.
pub(crate) const IDEMPOTENCY_ENTRIES: usize = 4096;
/// How long an answer is kept for retries.
pub(crate) const IDEMPOTENCY_TTL: Duration = Duration::from_secs(60);

/// A refusal: the status, the reason (sent as `{"error": reason}`), the metrics label, and
/// for 429 the seconds to wait.
#[derive(Clone, Debug)]
pub(crate) struct Refusal {
    pub status: StatusCode,
    pub reason: String,
    pub label: &'static str,
    pub retry_after: Option<u64>,
}

fn refuse(status: StatusCode, label: &'static str, reason: String) -> Refusal {
    Refusal {
        status,
        reason,
        label,
        retry_after: None,
    }
}

/// A hop's outcome, as cached.
pub(crate) type HopOutcome = Result<HopResponse, Refusal>;

struct Bucket {
    tokens: f64,
    at: Instant,
}

struct Cached {
    at: Instant,
    rx: tokio::sync::watch::Receiver<Option<HopOutcome>>,
}

#[derive(Default)]
struct Idem {
    order: VecDeque<((DomainId, String), Instant)>,
    map: HashMap<(DomainId, String), Cached>,
}

/// Per-peer state: token buckets and the idempotency cache.
pub(crate) struct PeerState {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<DomainId, Bucket>>,
    idem: Mutex<Idem>,
}

impl PeerState {
    pub(crate) fn new(l: &LimitsSection) -> Self {
        PeerState {
            rate: l.peer_requests_per_second,
            burst: f64::from(l.peer_burst),
            buckets: Mutex::new(HashMap::new()),
            idem: Mutex::new(Idem::default()),
        }
    }

    /// Takes a token of `from`'s bucket, or says how long to wait for one.
    fn admit(&self, from: DomainId, now: Instant) -> Result<(), u64> {
        let mut g = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if g.len() > 65_536 {
            // Only authenticated domains reach here; still, never grow without bound.
            g.retain(|_, b| now.duration_since(b.at) < Duration::from_secs(60));
        }
        let b = g.entry(from).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let dt = now.duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + dt * self.rate).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - b.tokens) / self.rate).ceil().max(1.0) as u64)
        }
    }
}

/// What a cache lookup found.
enum Slot {
    /// A first request: compute, then publish through this sender.
    New(tokio::sync::watch::Sender<Option<HopOutcome>>),
    /// A retry: wait on this.
    Wait(tokio::sync::watch::Receiver<Option<HopOutcome>>),
}

impl PeerState {
    fn slot(&self, key: (DomainId, String), now: Instant) -> Slot {
        let mut g = self.idem.lock().unwrap_or_else(|e| e.into_inner());
        // An entry whose computation vanished without an answer (it cannot: it runs in its
        // own task; but never wait on a closed channel) is replaced.
        if let Some(c) = g.map.get(&key)
            && now.duration_since(c.at) < IDEMPOTENCY_TTL
            && !(c.rx.has_changed().is_err() && c.rx.borrow().is_none())
        {
            return Slot::Wait(c.rx.clone());
        }
        // Entries leave from the front (insertion order = age order) when expired, or when
        // the cache is full; an entry re-inserted since keeps its newer self.
        while let Some((key0, at0)) = g.order.front().cloned() {
            let expired = now.duration_since(at0) >= IDEMPOTENCY_TTL;
            if !expired && g.order.len() < IDEMPOTENCY_ENTRIES {
                break;
            }
            g.order.pop_front();
            if g.map.get(&key0).is_some_and(|c| c.at == at0) {
                g.map.remove(&key0);
            }
        }
        let (tx, rx) = tokio::sync::watch::channel(None);
        g.map.insert(key.clone(), Cached { at: now, rx });
        g.order.push_back((key, now));
        Slot::New(tx)
    }
}

impl Controller {
    /// Handles a hop request from an authenticated connection whose certificate is named
    /// `cert_name` (`None` in dev_insecure mode: no identity check).
    pub(crate) async fn hop(
        self: &Arc<Self>,
        req: HopRequest,
        cert_name: Option<Option<String>>,
    ) -> HopOutcome {
        let arrived = Instant::now();
        if let Some(name) = cert_name {
            let want = format!("as{}", req.from);
            if name.as_deref() != Some(want.as_str()) {
                return Err(refuse(
                    StatusCode::FORBIDDEN,
                    "identity",
                    format!(
                        "the request says it is from AS{}, but the client certificate is named {:?}, not {want:?}",
                        req.from,
                        name.unwrap_or_default()
                    ),
                ));
            }
        }
        self.check_hop(&req)?;
        if let Err(secs) = self.peers.admit(req.from, arrived) {
            return Err(Refusal {
                status: StatusCode::TOO_MANY_REQUESTS,
                reason: format!("AS{}: over the request rate; retry in {secs} s", req.from),
                label: "rate",
                retry_after: Some(secs),
            });
        }
        let tx = match self.peers.slot((req.from, req.request_id.clone()), arrived) {
            Slot::Wait(mut rx) => {
                self.metrics.hop_in("retry");
                return match rx.wait_for(Option::is_some).await {
                    Ok(v) => v.clone().unwrap_or_else(|| Err(internal())),
                    Err(_) => Err(internal()),
                };
            }
            Slot::New(tx) => tx,
        };
        let Ok(permit) = self.running.clone().try_acquire_owned() else {
            let out = Err(refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "too many traces running; try again".into(),
            ));
            let _ = tx.send(Some(out.clone()));
            return out;
        };
        // In its own task: an asker that gives up (its connection closes) does not cancel
        // the work, and its retry finds the answer in the cache.
        let me = self.clone();
        let mut rx = tx.subscribe();
        tokio::spawn(async move {
            let _permit = permit;
            let out = Ok(me.answer_hop(&req, arrived).await);
            let _ = tx.send(Some(out));
        });
        match rx.wait_for(Option::is_some).await {
            Ok(v) => v.clone().unwrap_or_else(|| Err(internal())),
            Err(_) => Err(internal()),
        }
    }

    fn check_hop(&self, req: &HopRequest) -> Result<(), Refusal> {
        let me = self.cfg.domain.asn;
        let bad = |label, reason: String| Err(refuse(StatusCode::BAD_REQUEST, label, reason));
        if req.version != PROTOCOL_VERSION {
            return bad(
                "version",
                format!(
                    "protocol version {}, this controller speaks {PROTOCOL_VERSION}",
                    req.version
                ),
            );
        }
        if req.table_id != self.table_hex {
            return bad(
                "table_id",
                format!(
                    "table id {:?} is not this federation's ({}): digests of another key mean nothing here",
                    req.table_id.chars().take(32).collect::<String>(),
                    self.table_hex
                ),
            );
        }
        if req.visited.contains(&me) {
            return Err(refuse(
                StatusCode::CONFLICT,
                "loop",
                format!("AS{me} is already on this branch (visited): a loop"),
            ));
        }
        if req.hop_budget == 0 || req.hop_budget > MAX_HOP_BUDGET {
            return bad(
                "hop_budget",
                format!("hop_budget {}: 1 to {MAX_HOP_BUDGET}", req.hop_budget),
            );
        }
        let max = self.cfg.limits.max_packets_per_trace.min(MAX_PACKETS);
        if req.packets.is_empty() || req.packets.len() > max {
            return bad(
                "packets",
                format!("{} packets: 1 to {max}", req.packets.len()),
            );
        }
        if req.deadline_ms == 0 || req.deadline_ms > MAX_DEADLINE_MS {
            return bad(
                "deadline",
                format!("deadline_ms {}: 1 to {MAX_DEADLINE_MS}", req.deadline_ms),
            );
        }
        if req.visited.len() > MAX_VISITED {
            return bad(
                "visited",
                format!(
                    "{} visited domains, at most {MAX_VISITED}",
                    req.visited.len()
                ),
            );
        }
        if !is_hex32(&req.request_id) || !is_hex32(&req.trace_id) {
            return bad("id", "request_id and trace_id must be 32 hex digits".into());
        }
        if req.mode == HopMode::Observe
            && req
                .packets
                .iter()
                .any(|p| p.via != ashiato_api::federation::Via::Any)
        {
            return bad("via", "observe requests ask with via any".into());
        }
        for p in &req.packets {
            if !is_hex32(&p.packet.digest) {
                return bad(
                    "digest",
                    format!("packet {}: digest must be 32 hex digits", p.index),
                );
            }
            if p.packet.uncertainty_ns > MAX_UNCERTAINTY_NS {
                return bad(
                    "uncertainty",
                    format!(
                        "packet {}: uncertainty_ns above {MAX_UNCERTAINTY_NS}",
                        p.index
                    ),
                );
            }
        }
        Ok(())
    }

    async fn answer_hop(self: &Arc<Self>, req: &HopRequest, arrived: Instant) -> HopResponse {
        let deadline = arrived + Duration::from_millis(u64::from(req.deadline_ms));
        let mut packets = req.packets.clone();
        for p in &mut packets {
            p.packet.digest.make_ascii_lowercase();
        }
        let (reports, truncated, view) = match req.mode {
            HopMode::Observe => (
                self.observe(&packets, deadline).await,
                false,
                Some(self.view.clone()),
            ),
            HopMode::Recursive => {
                let branch = Branch {
                    trace_id: req.trace_id.clone(),
                    initiator: req.initiator,
                    visited: req.visited.clone(),
                    hop_budget: req.hop_budget,
                    deadline,
                };
                let (mut r, t) = self.recursive_hop(&branch, &packets).await;
                let cut = crate::run::cap(&mut r);
                if cut {
                    tracing::warn!(
                        from = req.from,
                        trace = %req.trace_id,
                        "the answer holds more than the protocol's report limit; the rest is dropped and the answer marked truncated"
                    );
                }
                (r, t || cut, None)
            }
        };
        self.metrics.hop_in("answered");
        tracing::info!(
            from = req.from,
            trace = %req.trace_id,
            packets = req.packets.len(),
            reports = reports.len(),
            ms = arrived.elapsed().as_millis() as u64,
            "hop answered"
        );
        HopResponse {
            version: PROTOCOL_VERSION,
            request_id: req.request_id.clone(),
            domain: self.cfg.domain.asn,
            reports,
            view,
            truncated,
        }
    }
}

fn internal() -> Refusal {
    refuse(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "the first request with this id did not finish".into(),
    )
}
