//! The host-tracing center's service (BRIEF §4 (iii)): the HTTP/JSON routes behind the
//! mutual-TLS accept loop of `ashiato-net`. The logic lives in `ashiato-hosttrace` (the signed
//! claim list, the ranking); this crate checks who may say what, bounds it, and keeps the
//! audit log.
//!
//! Routes ([`router`]):
//!
//! - `POST /v1/claims` — a victim's claim with its IDS evidence (Suricata EVE alert records):
//!   accepted only from an authenticated peer, only if an alert names the victim as
//!   destination inside the window (± skew) with the claimed protocol, at most
//!   [`CenterConfig::claims_per_hour`] per reporter; answers the claim's list version.
//! - `GET /v1/claims?since=N` — the signed delta of the claim list after version `N`.
//! - `GET /v1/enroll` — to an authenticated peer only (its certificate name is audited): what
//!   an agent needs to match the list, `{"list_key", "sign_public_key", "skew_ns",
//!   "version"}` (the keyed-hash secret and the Ed25519 public key in lowercase hex).
//! - `POST /v1/reports` — a bot report (`{"report_id", "report"}`): the reporter must be the
//!   peer's certificate name, the incident a published claim, the id new (replays refused),
//!   at most [`CenterConfig::max_records`] records.
//! - `GET /v1/ranking/{incident}` — the ranked servers with their evidence and origin AS and
//!   prefix (`?group=asn`: one group per origin AS with its distinct bots);
//!   `GET /v1/graph/{incident}` — the three-layer graph as Graphviz DOT (`?format=json`:
//!   ports, bots, servers and edges with the records behind them; `?format=html`: the
//!   interactive page, drawn by `/static/graph.js`). All views filter by `feature`, the
//!   server's `port`, `min_bots`, `top` and the records' time (`from`, `to`, RFC 3339).
//! - `GET /v1/stix/{incident}` — the same servers as a STIX 2.1 bundle (indicator and
//!   sighting per server); `GET /v1/xarf/{incident}` — one X-ARF 4 notice per server,
//!   grouped by origin AS ([`xarf`]).
//!
//! # Modules
//!
//! - [`ledger`]: the claims and reports in memory, and their store rows.
//! - [`views`]: every read view from a ledger, shared with `ashiato center export`.
//! - [`asn`]: the prefix-to-AS table (pure). [`xarf`]: the notices (pure). `html`: the page.
//!
//! # Durability
//!
//! The center writes to an `ashiato-store` database (SQLite file or PostgreSQL, schema
//! version 3) before it acknowledges: a claim is answered `201` and published only after
//! its row is committed, a report `202` only after its rows are. A store failure answers
//! `503` with the reason (disk full, database unavailable), publishes nothing, and the service
//! keeps running. Writes go one at a time, so the version a claim gets is the one stored.
//! [`Center::new`] reloads the store: claims are republished in their stored version order
//! (the same secret and signing key give the same hashes and signatures, so an agent that
//! polled before a restart sees the same versions with the same meaning), reports are
//! counted again (the ranking survives) and their ids refuse replays; each reporter's claims
//! of the current hour count against its rate again.
//!
//! Bodies are capped at [`CenterConfig::max_body`]. Every decision (accepted or refused, and
//! why) is an audit record: a `tracing` event with target `audit`, a bounded in-memory log,
//! and a line appended to [`CenterConfig::audit_file`] when set.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use ashiato_hosttrace::claim::{Claim, ClaimRecord, Protocol};
use ashiato_hosttrace::claimlist::CenterList;
use ashiato_hosttrace::rank::BotReport;
use ashiato_net::server::Peer;
use ashiato_store::{HostClaim, Store, StoreError};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

pub mod asn;
mod html;
pub mod ledger;
pub mod views;
pub mod xarf;

use ledger::{Accepted, Ledger};

/// Why the center could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CenterError {
    /// The audit file cannot be opened for appending.
    #[error("audit log {path}: {source}")]
    Audit {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The store failed while the center read it back.
    #[error("reading the center's store: {0}")]
    Store(#[source] StoreError),
    /// The store holds what this center cannot have written.
    #[error("the center's store cannot be reloaded: {0}")]
    Reload(String),
}

/// Bounds and policy.
#[derive(Clone, Debug)]
pub struct CenterConfig {
    /// Largest request body, bytes.
    pub max_body: usize,
    /// Claims one reporter may file per hour.
    pub claims_per_hour: u32,
    /// Records in one bot report.
    pub max_records: usize,
    /// Clock-skew allowance for evidence times, ns.
    pub skew_ns: u64,
    /// Servers never ranked (update sites, public IRC networks, resolvers).
    pub allow: HashSet<IpAddr>,
    /// Audit records kept in memory.
    pub audit_keep: usize,
    /// A file the audit records are appended to, one line each (opened by [`Center::new`]).
    pub audit_file: Option<std::path::PathBuf>,
    /// Prefix-to-AS table for the servers' origins (`--asn-file`).
    pub asn: Option<Arc<asn::AsnTable>>,
    /// The sender of X-ARF notices (`--abuse-contact`); without it they are refused.
    pub abuse_contact: Option<xarf::Contact>,
}

impl Default for CenterConfig {
    fn default() -> Self {
        CenterConfig {
            max_body: 256 * 1024,
            claims_per_hour: 20,
            max_records: 1000,
            skew_ns: 300 * 1_000_000_000,
            allow: HashSet::new(),
            audit_keep: 10_000,
            audit_file: None,
            asn: None,
            abuse_contact: None,
        }
    }
}

struct Inner {
    list: CenterList,
    /// The list's keyed-hash secret, handed to enrolled agents.
    secret: [u8; 32],
    ledger: Ledger,
    rate: HashMap<String, (u64, u32)>,
    audit: VecDeque<String>,
}

/// The center's state.
pub struct Center {
    cfg: CenterConfig,
    now_ns: Box<dyn Fn() -> u64 + Send + Sync>,
    inner: Mutex<Inner>,
    /// Held from a submission's checks to its store write and publication, so writes go one
    /// at a time and the version checked is the version stored.
    writer: tokio::sync::Mutex<()>,
    store: Store,
    audit_out: Option<Mutex<std::fs::File>>,
}

impl Center {
    /// A center publishing with `list`, whose keyed-hash secret is `secret` (the one `list`
    /// was made with: enrolled agents get it), writing to `store`; `now_ns` is its clock
    /// (tests pass a fixed one). Reloads the claims and reports `store` holds (`list` must be
    /// empty). Fails when the audit file cannot be opened or the store cannot be read back.
    pub async fn new(
        cfg: CenterConfig,
        mut list: CenterList,
        secret: [u8; 32],
        store: Store,
        now_ns: Box<dyn Fn() -> u64 + Send + Sync>,
    ) -> Result<Arc<Center>, CenterError> {
        let audit_out = match &cfg.audit_file {
            Some(p) => Some(Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|source| CenterError::Audit {
                        path: p.clone(),
                        source,
                    })?,
            )),
            None => None,
        };
        let ledger = Ledger::load(&store).await?;
        for a in &ledger.claims {
            let v = list.publish(&a.claim);
            if v != a.row.list_version {
                return Err(CenterError::Reload(format!(
                    "claim {} republished as version {v}, stored as {}: the list was not empty",
                    a.row.id, a.row.list_version
                )));
            }
        }
        let rate = ledger::claims_this_hour(&ledger, now_ns());
        Ok(Arc::new(Center {
            audit_out,
            cfg,
            now_ns,
            writer: tokio::sync::Mutex::new(()),
            store,
            inner: Mutex::new(Inner {
                list,
                secret,
                ledger,
                rate,
                audit: VecDeque::new(),
            }),
        }))
    }

    /// Closes the store's connections (a SQLite file is checkpointed) once nothing else holds
    /// the center; returns false, closing nothing, while another reference lives (a
    /// connection still being answered).
    pub async fn close(self: Arc<Self>) -> bool {
        match Arc::try_unwrap(self) {
            Ok(c) => {
                c.store.close().await;
                true
            }
            Err(_) => false,
        }
    }

    /// The audit records kept in memory, oldest first.
    pub fn audit_log(&self) -> Vec<String> {
        self.lock().audit.iter().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn audit(&self, inner: &mut Inner, who: &str, what: &str, outcome: &str) {
        tracing::info!(target: "audit", who, what, outcome);
        if inner.audit.len() >= self.cfg.audit_keep {
            inner.audit.pop_front();
        }
        let line = format!(
            "{} {who} {what}: {outcome}",
            ashiato_hosttrace::claimlist::rfc3339((self.now_ns)())
        );
        if let Some(f) = &self.audit_out {
            use std::io::Write;
            let mut f = f.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = writeln!(f, "{line}") {
                tracing::error!(error = %e, "audit file write failed");
            }
        }
        inner.audit.push_back(line);
    }
}

/// The routes; see the [crate documentation](crate).
pub fn router(c: Arc<Center>) -> Router {
    Router::new()
        .route("/v1/claims", post(post_claim).get(get_claims))
        .route("/v1/enroll", get(get_enroll))
        .route("/v1/reports", post(post_report))
        .route("/v1/ranking/{incident}", get(views::get_ranking))
        .route("/v1/graph/{incident}", get(views::get_graph))
        .route("/v1/stix/{incident}", get(views::get_stix))
        .route("/v1/xarf/{incident}", get(views::get_xarf))
        .route("/static/graph.js", get(views::get_graph_js))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(c)
}

fn error(status: StatusCode, msg: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": msg }))).into_response()
}

/// The authenticated peer's certificate name.
fn identity(peer: Option<&Peer>) -> Option<String> {
    let p = peer?;
    if !p.authenticated {
        return None;
    }
    p.common_name.clone()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClaimSubmission {
    claim: ClaimRecord,
    /// Suricata EVE records (objects) backing the claim.
    evidence: Vec<serde_json::Value>,
}

/// What every submission goes through first, each refusal audited: an authenticated
/// certificate (its name is returned), a body within bounds, and JSON of the expected shape.
fn admit<T: serde::de::DeserializeOwned>(
    c: &Center,
    peer: Option<&Peer>,
    body: &[u8],
    kind: &str,
) -> Result<(String, T), Box<Response>> {
    let Some(who) = identity(peer) else {
        let mut inner = c.lock();
        c.audit(
            &mut inner,
            "-",
            kind,
            "refused: no authenticated certificate",
        );
        return Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            &format!("{kind}s need a client certificate"),
        )));
    };
    if body.len() > c.cfg.max_body {
        let mut inner = c.lock();
        c.audit(&mut inner, &who, kind, "refused: body too large");
        return Err(Box::new(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("{kind} body too large"),
        )));
    }
    match serde_json::from_slice(body) {
        Ok(s) => Ok((who, s)),
        Err(e) => {
            let mut inner = c.lock();
            c.audit(&mut inner, &who, kind, "refused: malformed");
            Err(Box::new(error(
                StatusCode::BAD_REQUEST,
                &format!("{kind}: {e}"),
            )))
        }
    }
}

async fn post_claim(
    State(c): State<Arc<Center>>,
    peer: Option<Extension<Peer>>,
    body: Bytes,
) -> Response {
    let (who, sub): (String, ClaimSubmission) =
        match admit(&c, peer.as_ref().map(|p| &p.0), &body, "claim") {
            Ok(x) => x,
            Err(r) => return *r,
        };
    let _writer = c.writer.lock().await;
    let now = (c.now_ns)();
    let fqdn = sub.claim.fqdn.clone();
    let accepted = {
        let mut inner = c.lock();
        let claim = match Claim::from_record(sub.claim) {
            Ok(cl) => cl,
            Err(e) => {
                c.audit(&mut inner, &who, "claim", "refused: invalid");
                return error(StatusCode::BAD_REQUEST, &format!("claim: {e}"));
            }
        };
        let what = format!("claim {}", claim.id);
        if inner.ledger.by_id.contains_key(&claim.id) {
            c.audit(&mut inner, &who, &what, "refused: id taken");
            return error(StatusCode::CONFLICT, "a claim with this id exists");
        }
        if !evidence_supports(&claim, &sub.evidence, c.cfg.skew_ns) {
            c.audit(&mut inner, &who, &what, "refused: no IDS evidence");
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "no EVE alert names the victim as destination with the claimed protocol inside the window",
            );
        }
        let hour = now / 3_600_000_000_000;
        let slot = inner.rate.get(&who).copied().unwrap_or((hour, 0));
        if slot.0 == hour && slot.1 >= c.cfg.claims_per_hour {
            c.audit(&mut inner, &who, &what, "refused: rate");
            return error(StatusCode::TOO_MANY_REQUESTS, "too many claims this hour");
        }
        let row = HostClaim {
            id: claim.id.clone(),
            incident_id: None,
            reporter: who.clone(),
            received_ns: now,
            list_version: inner.list.version() + 1,
            victim: claim.victim,
            fqdn,
            protocol: ledger::protocol_name(claim.protocol).into(),
            port: claim.port,
            from_ns: claim.from_ns,
            to_ns: claim.to_ns,
            reflectors: claim.reflectors.clone(),
            evidence_count: u32::try_from(sub.evidence.len()).unwrap_or(u32::MAX),
            evidence_summary: ledger::evidence_summary(&sub.evidence),
        };
        Accepted { claim, row }
    };
    let what = format!("claim {}", accepted.claim.id);
    if let Err(e) = c.store.put_host_claim(&accepted.row).await {
        return c.store_refusal(&who, &what, &e);
    }
    let mut inner = c.lock();
    let version = inner.list.publish(&accepted.claim);
    let hour = now / 3_600_000_000_000;
    let slot = inner.rate.entry(who.clone()).or_insert((hour, 0));
    if slot.0 != hour {
        *slot = (hour, 0);
    }
    slot.1 += 1;
    if let Err(e) = inner.ledger.add_claim(accepted) {
        // Cannot happen while writes are serialised; say so loudly if it does.
        tracing::error!(error = %e, "claim list and ledger disagree");
    }
    c.audit(
        &mut inner,
        &who,
        &what,
        &format!("accepted as version {version}"),
    );
    (
        StatusCode::CREATED,
        axum::Json(serde_json::json!({ "version": version })),
    )
        .into_response()
}

impl Center {
    /// The answer to a submission the store did not take: audited with the full error,
    /// answered with a reason that does not name the database.
    fn store_refusal(&self, who: &str, what: &str, e: &StoreError) -> Response {
        let mut inner = self.lock();
        self.audit(&mut inner, who, what, &format!("refused: not stored: {e}"));
        tracing::error!(error = %e, what, "store write failed");
        let reason = ledger::store_reason(e);
        match e {
            StoreError::Duplicate { .. } => error(StatusCode::CONFLICT, reason),
            StoreError::Invalid(detail) => {
                error(StatusCode::BAD_REQUEST, &format!("{reason}: {detail}"))
            }
            _ => error(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("{reason}; nothing was stored, try again later"),
            ),
        }
    }
}

/// An EVE alert with the victim as destination, the claim's protocol, inside the window.
fn evidence_supports(c: &Claim, evidence: &[serde_json::Value], skew: u64) -> bool {
    evidence.iter().take(1000).any(|e| {
        let s = |k: &str| e.get(k).and_then(|v| v.as_str()).unwrap_or("");
        let proto = match s("proto").to_ascii_lowercase().as_str() {
            "tcp" => 6,
            "udp" => 17,
            "icmp" => 1,
            "ipv6-icmp" | "icmpv6" => 58,
            _ => 0,
        };
        let t = ashiato_hosttrace::report::eve_time(s("timestamp"));
        s("event_type") == "alert"
            && s("dest_ip").parse::<IpAddr>().ok() == Some(c.victim)
            && c.protocol.matches(proto)
            && (c.protocol == Protocol::Icmp
                || c.port.is_none()
                || e.get("dest_port").and_then(|v| v.as_u64()) == c.port.map(u64::from))
            && t.is_some_and(|t| t + skew >= c.from_ns && t <= c.to_ns + skew)
    })
}

#[derive(Deserialize)]
struct Since {
    #[serde(default)]
    since: u64,
}

async fn get_claims(State(c): State<Arc<Center>>, Query(q): Query<Since>) -> Response {
    let inner = c.lock();
    axum::Json(inner.list.delta(q.since, 1000)).into_response()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The list secret, the signing public key, the skew and the current version, to an
/// authenticated peer only.
async fn get_enroll(State(c): State<Arc<Center>>, peer: Option<Extension<Peer>>) -> Response {
    let mut inner = c.lock();
    let Some(who) = identity(peer.as_ref().map(|p| &p.0)) else {
        c.audit(
            &mut inner,
            "-",
            "enroll",
            "refused: no authenticated certificate",
        );
        return error(
            StatusCode::UNAUTHORIZED,
            "enrolling needs a client certificate",
        );
    };
    let body = serde_json::json!({
        "list_key": hex(&inner.secret),
        "sign_public_key": hex(&inner.list.public_key()),
        "skew_ns": c.cfg.skew_ns,
        "version": inner.list.version(),
    });
    c.audit(&mut inner, &who, "enroll", "list key handed out");
    axum::Json(body).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportSubmission {
    report_id: String,
    report: BotReport,
}

async fn post_report(
    State(c): State<Arc<Center>>,
    peer: Option<Extension<Peer>>,
    body: Bytes,
) -> Response {
    let (who, sub): (String, ReportSubmission) =
        match admit(&c, peer.as_ref().map(|p| &p.0), &body, "report") {
            Ok(x) => x,
            Err(r) => return *r,
        };
    let _writer = c.writer.lock().await;
    let r = sub.report;
    let what = format!("report {} for {}", sub.report_id, r.incident);
    {
        let mut inner = c.lock();
        let refuse = |inner: &mut Inner, status, why: &str| {
            c.audit(inner, &who, &what, &format!("refused: {why}"));
            error(status, why)
        };
        if r.reporter != who {
            return refuse(
                &mut inner,
                StatusCode::FORBIDDEN,
                "the reporter must be the certificate's name",
            );
        }
        if let Err(e) = ashiato_store::model::check_id("report id", &sub.report_id) {
            return refuse(&mut inner, StatusCode::BAD_REQUEST, &e.to_string());
        }
        if r.records.len() > c.cfg.max_records {
            return refuse(
                &mut inner,
                StatusCode::PAYLOAD_TOO_LARGE,
                "too many records",
            );
        }
        if !inner.ledger.by_id.contains_key(&r.incident) {
            return refuse(&mut inner, StatusCode::NOT_FOUND, "no such claim");
        }
        if inner
            .ledger
            .report_ids
            .contains(&(who.clone(), sub.report_id.clone()))
        {
            return refuse(&mut inner, StatusCode::CONFLICT, "replayed report id");
        }
    }
    let row = ledger::row_of(&sub.report_id, (c.now_ns)(), &r);
    if let Err(e) = c.store.put_bot_report(&row).await {
        return c.store_refusal(&who, &what, &e);
    }
    let mut inner = c.lock();
    inner.ledger.add_report(sub.report_id, r);
    c.audit(&mut inner, &who, &what, "accepted");
    StatusCode::ACCEPTED.into_response()
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_views;
