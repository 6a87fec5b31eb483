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
//! - `GET /v1/ranking/{incident}` — the ranked servers with their evidence;
//!   `GET /v1/graph/{incident}` — the three-layer graph as Graphviz DOT (`?format=json`:
//!   ports, bots, servers and edges). Both filter by `feature`, the server's `port`,
//!   `min_bots`, `top` and the records' time (`from`, `to`, RFC 3339).
//! - `GET /v1/stix/{incident}` — the same servers as a STIX 2.1 bundle (indicator and
//!   sighting per server).
//!
//! Bodies are capped at [`CenterConfig::max_body`]. Every decision (accepted or refused, and
//! why) is an audit record: a `tracing` event with target `audit`, a bounded in-memory log,
//! and a line appended to [`CenterConfig::audit_file`] when set.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use ashiato_hosttrace::claim::{Claim, ClaimRecord, Protocol, parse_rfc3339};
use ashiato_hosttrace::claimlist::CenterList;
use ashiato_hosttrace::rank::{BotReport, Popularity, Ranked, dot, rank};
use ashiato_net::server::Peer;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

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
        }
    }
}

struct Inner {
    list: CenterList,
    /// The list's keyed-hash secret, handed to enrolled agents.
    secret: [u8; 32],
    claims: HashMap<String, Claim>,
    rate: HashMap<String, (u64, u32)>,
    reports: Vec<BotReport>,
    report_ids: HashSet<(String, String)>,
    popularity: Popularity,
    audit: VecDeque<String>,
}

/// The center's state.
pub struct Center {
    cfg: CenterConfig,
    now_ns: Box<dyn Fn() -> u64 + Send + Sync>,
    inner: Mutex<Inner>,
    audit_out: Option<Mutex<std::fs::File>>,
}

impl Center {
    /// A center publishing with `list`, whose keyed-hash secret is `secret` (the one `list`
    /// was made with: enrolled agents get it); `now_ns` is its clock (tests pass a fixed
    /// one). Fails only when the audit file cannot be opened for appending.
    pub fn new(
        cfg: CenterConfig,
        list: CenterList,
        secret: [u8; 32],
        now_ns: Box<dyn Fn() -> u64 + Send + Sync>,
    ) -> std::io::Result<Arc<Center>> {
        let audit_out = match &cfg.audit_file {
            Some(p) => Some(Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)?,
            )),
            None => None,
        };
        Ok(Arc::new(Center {
            audit_out,
            cfg,
            now_ns,
            inner: Mutex::new(Inner {
                list,
                secret,
                claims: HashMap::new(),
                rate: HashMap::new(),
                reports: Vec::new(),
                report_ids: HashSet::new(),
                popularity: Popularity::default(),
                audit: VecDeque::new(),
            }),
        }))
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
        .route("/v1/ranking/{incident}", get(get_ranking))
        .route("/v1/graph/{incident}", get(get_graph))
        .route("/v1/stix/{incident}", get(get_stix))
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
    let mut inner = c.lock();
    let claim = match Claim::from_record(sub.claim) {
        Ok(cl) => cl,
        Err(e) => {
            c.audit(&mut inner, &who, "claim", "refused: invalid");
            return error(StatusCode::BAD_REQUEST, &format!("claim: {e}"));
        }
    };
    if inner.claims.contains_key(&claim.id) {
        c.audit(
            &mut inner,
            &who,
            &format!("claim {}", claim.id),
            "refused: id taken",
        );
        return error(StatusCode::CONFLICT, "a claim with this id exists");
    }
    if !evidence_supports(&claim, &sub.evidence, c.cfg.skew_ns) {
        c.audit(
            &mut inner,
            &who,
            &format!("claim {}", claim.id),
            "refused: no IDS evidence",
        );
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no EVE alert names the victim as destination with the claimed protocol inside the window",
        );
    }
    let hour = (c.now_ns)() / 3_600_000_000_000;
    let slot = inner.rate.entry(who.clone()).or_insert((hour, 0));
    if slot.0 != hour {
        *slot = (hour, 0);
    }
    if slot.1 >= c.cfg.claims_per_hour {
        c.audit(
            &mut inner,
            &who,
            &format!("claim {}", claim.id),
            "refused: rate",
        );
        return error(StatusCode::TOO_MANY_REQUESTS, "too many claims this hour");
    }
    slot.1 += 1;
    let version = inner.list.publish(&claim);
    let what = format!("claim {}", claim.id);
    inner.claims.insert(claim.id.clone(), claim);
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

fn hex(bytes: &[u8]) -> String {
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
    let mut inner = c.lock();
    let r = sub.report;
    let what = format!("report {} for {}", sub.report_id, r.incident);
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
    if r.records.len() > c.cfg.max_records || sub.report_id.len() > 128 {
        return refuse(
            &mut inner,
            StatusCode::PAYLOAD_TOO_LARGE,
            "too many records",
        );
    }
    if !inner.claims.contains_key(&r.incident) {
        return refuse(&mut inner, StatusCode::NOT_FOUND, "no such claim");
    }
    if !inner
        .report_ids
        .insert((who.clone(), sub.report_id.clone()))
    {
        return refuse(&mut inner, StatusCode::CONFLICT, "replayed report id");
    }
    inner.popularity.add(&r);
    inner.reports.push(r);
    c.audit(&mut inner, &who, &what, "accepted");
    StatusCode::ACCEPTED.into_response()
}

/// Filters of the ranking and the graph: `feature`, `port` (the server's), `min_bots`, `top`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RankFilter {
    #[serde(default)]
    feature: Option<String>,
    #[serde(default)]
    port: Option<u16>,
    #[serde(default)]
    min_bots: Option<usize>,
    #[serde(default)]
    top: Option<usize>,
    /// Only records at or after this time (RFC 3339).
    #[serde(default)]
    from: Option<String>,
    /// Only records at or before this time (RFC 3339).
    #[serde(default)]
    to: Option<String>,
    /// `dot` (default) or `json`, for the graph.
    #[serde(default)]
    format: Option<String>,
}

fn ranked(c: &Center, inner: &Inner, incident: &str, f: &RankFilter) -> Vec<Ranked> {
    let t = |s: &Option<String>| s.as_deref().and_then(|s| parse_rfc3339(s).ok());
    let (from, to) = (t(&f.from).unwrap_or(0), t(&f.to).unwrap_or(u64::MAX));
    let timed: Vec<BotReport>;
    let reports = if from > 0 || to < u64::MAX {
        timed = inner
            .reports
            .iter()
            .filter(|r| r.incident == incident)
            .map(|r| {
                let mut r = r.clone();
                r.records.retain(|x| (from..=to).contains(&x.time_ns));
                r
            })
            .collect();
        &timed
    } else {
        &inner.reports
    };
    let mut r: Vec<Ranked> = rank(incident, reports, &inner.popularity, &c.cfg.allow)
        .into_iter()
        .filter(|x| f.feature.as_ref().is_none_or(|ft| x.features.contains(ft)))
        .filter(|x| f.port.is_none_or(|p| x.ports.contains(&p)))
        .filter(|x| f.min_bots.is_none_or(|m| x.reporters >= m))
        .collect();
    r.truncate(f.top.unwrap_or(50).min(1000));
    r
}

async fn get_ranking(
    State(c): State<Arc<Center>>,
    Path(incident): Path<String>,
    Query(f): Query<RankFilter>,
) -> Response {
    let inner = c.lock();
    axum::Json(ranked(&c, &inner, &incident, &f)).into_response()
}

async fn get_graph(
    State(c): State<Arc<Center>>,
    Path(incident): Path<String>,
    Query(mut f): Query<RankFilter>,
) -> Response {
    let inner = c.lock();
    f.top = Some(f.top.unwrap_or(10));
    let r = ranked(&c, &inner, &incident, &f);
    match f.format.as_deref() {
        None | Some("dot") => {
            let d = dot(&incident, &inner.reports, &r, r.len());
            ([(header::CONTENT_TYPE, "text/vnd.graphviz")], d).into_response()
        }
        Some("json") => axum::Json(graph(&incident, &inner.reports, &r)).into_response(),
        Some(other) => error(
            StatusCode::BAD_REQUEST,
            &format!("format {other:?}: dot or json"),
        ),
    }
}

async fn get_stix(
    State(c): State<Arc<Center>>,
    Path(incident): Path<String>,
    Query(f): Query<RankFilter>,
) -> Response {
    let inner = c.lock();
    let r = ranked(&c, &inner, &incident, &f);
    let now = ashiato_hosttrace::claimlist::rfc3339((c.now_ns)());
    axum::Json(ashiato_hosttrace::rank::stix_bundle(&incident, &r, &now)).into_response()
}

/// The three-layer graph as JSON: attacked ports, bots, servers and the edges between them.
fn graph(incident: &str, reports: &[BotReport], ranked: &[Ranked]) -> serde_json::Value {
    let bots: HashSet<&str> = ranked
        .iter()
        .flat_map(|r| r.reporter_ids.iter().map(String::as_str))
        .collect();
    let mut port_edges = Vec::new();
    let mut ports = std::collections::BTreeSet::new();
    for r in reports
        .iter()
        .filter(|r| r.incident == incident && bots.contains(r.reporter.as_str()))
    {
        ports.insert(r.attacked_port);
        port_edges.push(serde_json::json!({"port": r.attacked_port, "bot": r.reporter}));
    }
    let server_edges: Vec<serde_json::Value> = ranked
        .iter()
        .flat_map(|r| {
            r.reporter_ids
                .iter()
                .map(move |b| serde_json::json!({"bot": b, "server": r.server.to_string()}))
        })
        .collect();
    let mut bots: Vec<&str> = bots.into_iter().collect();
    bots.sort_unstable();
    serde_json::json!({
        "incident": incident,
        "ports": ports,
        "bots": bots,
        "servers": ranked,
        "port_bot": port_edges,
        "bot_server": server_edges,
    })
}

#[cfg(test)]
mod tests;
