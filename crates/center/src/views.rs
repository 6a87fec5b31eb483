//! The read side: the ranking, the three-layer graph and the exports, computed from a
//! [`Ledger`] alone, so the service's routes and the offline `ashiato center export` give the
//! same answers. [`render`] is the one entry point for every format.

use std::collections::{BTreeSet, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use ashiato_hosttrace::claim::parse_rfc3339;
use ashiato_hosttrace::claimlist::rfc3339;
use ashiato_hosttrace::rank::{BotReport, Ranked, dot, rank};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::asn::AsnTable;
use crate::ledger::Ledger;
use crate::xarf::Contact;
use crate::{Center, error};

/// Records of one bot→server edge kept as evidence in the graph.
const EDGE_RECORDS: usize = 20;

/// Filters of the ranking and the graph, and the output format.
#[derive(Deserialize, Default, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct RankFilter {
    /// Only servers with this feature (`irc`, `http-exe`, ...).
    #[serde(default)]
    pub feature: Option<String>,
    /// Only servers reached on this port.
    #[serde(default)]
    pub port: Option<u16>,
    /// Only servers reached by at least this many bots.
    #[serde(default)]
    pub min_bots: Option<usize>,
    /// At most this many servers (default 50 for the ranking, 10 for the graph; ≤ 1000).
    #[serde(default)]
    pub top: Option<usize>,
    /// Only records at or after this time (RFC 3339).
    #[serde(default)]
    pub from: Option<String>,
    /// Only records at or before this time (RFC 3339).
    #[serde(default)]
    pub to: Option<String>,
    /// The graph's format: `dot` (default), `json` or `html`.
    #[serde(default)]
    pub format: Option<String>,
    /// `asn`: the ranking grouped by origin AS.
    #[serde(default)]
    pub group: Option<String>,
}

/// What a view needs besides the filters.
pub struct ViewCtx<'a> {
    /// Claims and reports.
    pub ledger: &'a Ledger,
    /// Servers never ranked.
    pub allow: &'a HashSet<IpAddr>,
    /// Prefix-to-AS table, if the operator gave one.
    pub asn: Option<&'a AsnTable>,
    /// Who the X-ARF notices come from, if configured.
    pub contact: Option<&'a Contact>,
    /// Now, ns since the Unix epoch (export timestamps).
    pub now_ns: u64,
}

/// Why a view cannot be given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViewError {
    /// A filter or format is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// No claim has this id.
    #[error("no claim {0:?}")]
    NoClaim(String),
    /// The view needs configuration the center does not have.
    #[error("{0}")]
    NotConfigured(String),
}

impl ViewError {
    fn status(&self) -> StatusCode {
        match self {
            ViewError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ViewError::NoClaim(_) => StatusCode::NOT_FOUND,
            ViewError::NotConfigured(_) => StatusCode::CONFLICT,
        }
    }
}

/// One ranked server with where it is routed.
#[derive(Serialize, Clone, Debug)]
pub struct ServerView<'a> {
    /// The rank and its evidence.
    #[serde(flatten)]
    pub ranked: &'a Ranked,
    /// Its origin AS (the first, for multi-origin prefixes), `null` when unknown.
    pub asn: Option<u32>,
    /// Every origin AS of its prefix, when there are several.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub asns: Vec<u32>,
    /// The longest prefix holding it, `null` when unknown.
    pub prefix: Option<String>,
    /// Why `asn` is `null`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asn_note: Option<&'static str>,
}

/// The ranked servers with their origins.
pub fn with_origins<'a>(asn: Option<&AsnTable>, ranked: &'a [Ranked]) -> Vec<ServerView<'a>> {
    ranked
        .iter()
        .map(|r| {
            let o = asn.and_then(|t| t.lookup(r.server));
            let note = match (asn, &o) {
                (None, _) => Some("unknown: no --asn-file loaded"),
                (Some(_), None) => Some("not routed: no prefix of the --asn-file holds it"),
                _ => None,
            };
            ServerView {
                ranked: r,
                asn: o.as_ref().map(|o| o.asn()),
                asns: o
                    .as_ref()
                    .filter(|o| o.asns.len() > 1)
                    .map_or_else(Vec::new, |o| o.asns.clone()),
                prefix: o.map(|o| o.prefix),
                asn_note: note,
            }
        })
        .collect()
}

/// Servers by origin AS, groups in the order of their best server, unknown origins last.
pub fn by_origin<'s, 'a>(
    servers: &'s [ServerView<'a>],
) -> Vec<(Option<u32>, Vec<&'s ServerView<'a>>)> {
    let mut groups: Vec<(Option<u32>, Vec<&ServerView<'a>>)> = Vec::new();
    for s in servers {
        match groups.iter_mut().find(|(a, _)| *a == s.asn) {
            Some((_, members)) => members.push(s),
            None => groups.push((s.asn, vec![s])),
        }
    }
    groups.sort_by_key(|(a, _)| a.is_none());
    groups
}

/// One group's header: `asn`, its `prefixes` and, for unknown origins, the `note` why.
pub fn group_header(asn: Option<u32>, members: &[&ServerView<'_>]) -> serde_json::Value {
    let prefixes: BTreeSet<&str> = members.iter().filter_map(|s| s.prefix.as_deref()).collect();
    let mut g = serde_json::json!({ "asn": asn, "prefixes": prefixes });
    if asn.is_none() {
        g["note"] = members[0].asn_note.into();
    }
    g
}

/// Servers grouped by origin AS ([`by_origin`]), each group with the distinct bots that
/// reached any of its servers.
pub fn grouped(servers: &[ServerView<'_>]) -> serde_json::Value {
    let out: Vec<serde_json::Value> = by_origin(servers)
        .into_iter()
        .map(|(a, members)| {
            let bots: BTreeSet<&str> = members
                .iter()
                .flat_map(|s| s.ranked.reporter_ids.iter().map(String::as_str))
                .collect();
            let mut g = group_header(a, &members);
            g["bots"] = bots.len().into();
            g["servers"] = serde_json::to_value(&members).expect("plain data");
            g
        })
        .collect();
    serde_json::Value::Array(out)
}

fn window(f: &RankFilter) -> Result<(u64, u64), ViewError> {
    let t = |what: &str, s: &Option<String>| {
        s.as_deref()
            .map(|s| parse_rfc3339(s).map_err(|e| ViewError::BadRequest(format!("{what}: {e}"))))
            .transpose()
    };
    Ok((
        t("from", &f.from)?.unwrap_or(0),
        t("to", &f.to)?.unwrap_or(u64::MAX),
    ))
}

/// The reports of `incident` with only the records inside the filter's time window.
fn reports_in(l: &Ledger, incident: &str, (from, to): (u64, u64)) -> Vec<BotReport> {
    l.reports
        .iter()
        .filter(|r| r.incident == incident)
        .map(|r| {
            let mut r = r.clone();
            r.records.retain(|x| (from..=to).contains(&x.time_ns));
            r
        })
        .collect()
}

/// The ranked servers of `incident` under the filters, with the reports they came from.
pub fn ranked(
    l: &Ledger,
    allow: &HashSet<IpAddr>,
    incident: &str,
    f: &RankFilter,
) -> Result<(Vec<Ranked>, Vec<BotReport>), ViewError> {
    if !l.by_id.contains_key(incident) {
        return Err(ViewError::NoClaim(incident.to_string()));
    }
    let reports = reports_in(l, incident, window(f)?);
    let mut r: Vec<Ranked> = rank(incident, &reports, &l.popularity, allow)
        .into_iter()
        .filter(|x| f.feature.as_ref().is_none_or(|ft| x.features.contains(ft)))
        .filter(|x| f.port.is_none_or(|p| x.ports.contains(&p)))
        .filter(|x| f.min_bots.is_none_or(|m| x.reporters >= m))
        .collect();
    r.truncate(f.top.unwrap_or(50).min(1000));
    Ok((r, reports))
}

/// The three-layer graph as JSON: attacked ports, bots, servers (with origins) and the
/// edges, each bot→server edge with the records behind it (at most 20, and their count).
pub fn graph(
    incident: &str,
    reports: &[BotReport],
    servers: &[ServerView<'_>],
) -> serde_json::Value {
    let bots: BTreeSet<&str> = servers
        .iter()
        .flat_map(|s| s.ranked.reporter_ids.iter().map(String::as_str))
        .collect();
    let mut port_edges = Vec::new();
    let mut ports = BTreeSet::new();
    for r in reports
        .iter()
        .filter(|r| r.incident == incident && bots.contains(r.reporter.as_str()))
    {
        ports.insert(r.attacked_port);
        port_edges.push(serde_json::json!({
            "port": r.attacked_port, "bot": r.reporter, "attack_packets": r.attack_packets,
        }));
    }
    let mut by_bot: std::collections::HashMap<&str, Vec<&BotReport>> =
        std::collections::HashMap::new();
    for r in reports.iter().filter(|r| r.incident == incident) {
        by_bot.entry(r.reporter.as_str()).or_default().push(r);
    }
    let mut server_edges = Vec::new();
    for s in servers {
        for b in &s.ranked.reporter_ids {
            let recs: Vec<_> = by_bot
                .get(b.as_str())
                .into_iter()
                .flatten()
                .flat_map(|r| r.records.iter())
                .filter(|x| x.dst == s.ranked.server)
                .collect();
            let shown: Vec<serde_json::Value> = recs
                .iter()
                .take(EDGE_RECORDS)
                .map(|x| {
                    serde_json::json!({
                        "time": rfc3339(x.time_ns), "time_ns": x.time_ns, "proto": x.proto,
                        "port": x.port, "fqdn": x.fqdn, "process": x.process,
                        "features": x.features,
                    })
                })
                .collect();
            server_edges.push(serde_json::json!({
                "bot": b, "server": s.ranked.server.to_string(),
                "record_count": recs.len(), "records": shown,
            }));
        }
    }
    serde_json::json!({
        "incident": incident,
        "ports": ports,
        "bots": bots,
        "servers": servers,
        "port_bot": port_edges,
        "bot_server": server_edges,
    })
}

/// Every output format: `ranking` (JSON), `json`, `dot`, `html`, `stix`, `xarf`.
pub const FORMATS: &[&str] = &["ranking", "json", "dot", "html", "stix", "xarf"];

/// How the HTML page gets its script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Script {
    /// `<script src="/static/graph.js">`, served by the center.
    Served,
    /// The script inside the page, for a file opened without the center.
    Inline,
}

/// One view of `incident` in `format`: its content type and body.
pub fn render(
    ctx: &ViewCtx<'_>,
    incident: &str,
    f: &RankFilter,
    format: &str,
    script: Script,
) -> Result<(&'static str, String), ViewError> {
    if !FORMATS.contains(&format) {
        return Err(ViewError::BadRequest(format!(
            "format {format:?}: one of {}",
            FORMATS.join(", ")
        )));
    }
    if f.group.as_deref().is_some_and(|g| g != "asn") {
        return Err(ViewError::BadRequest("group: only \"asn\"".into()));
    }
    let (r, reports) = ranked(ctx.ledger, ctx.allow, incident, f)?;
    let servers = with_origins(ctx.asn, &r);
    let json = |v: serde_json::Value| ("application/json", v.to_string());
    Ok(match format {
        "ranking" if f.group.is_some() => json(grouped(&servers)),
        "ranking" => json(serde_json::to_value(&servers).expect("plain data")),
        "json" => json(graph(incident, &reports, &servers)),
        "dot" => ("text/vnd.graphviz", dot(incident, &reports, &r, r.len())),
        "html" => (
            "text/html; charset=utf-8",
            crate::html::page(incident, &graph(incident, &reports, &servers), script),
        ),
        "stix" => json(ashiato_hosttrace::rank::stix_bundle(
            incident,
            &r,
            &rfc3339(ctx.now_ns),
        )),
        _ => {
            let contact = ctx.contact.ok_or_else(|| {
                ViewError::NotConfigured(
                    "X-ARF notices name their sender: start the center with --abuse-contact".into(),
                )
            })?;
            json(crate::xarf::notices(
                incident, &reports, &servers, contact, ctx.now_ns,
            ))
        }
    })
}

/// Answers one view from the running center.
fn answer(c: &Center, incident: &str, f: &RankFilter, format: &str) -> Response {
    let inner = c.lock();
    let ctx = ViewCtx {
        ledger: &inner.ledger,
        allow: &c.cfg.allow,
        asn: c.cfg.asn.as_deref(),
        contact: c.cfg.abuse_contact.as_ref(),
        now_ns: (c.now_ns)(),
    };
    match render(&ctx, incident, f, format, Script::Served) {
        Ok((ct, body)) => ([(header::CONTENT_TYPE, ct)], body).into_response(),
        Err(e) => error(e.status(), &e.to_string()),
    }
}

pub(crate) async fn get_ranking(
    State(c): State<Arc<Center>>,
    Path(incident): Path<String>,
    Query(f): Query<RankFilter>,
) -> Response {
    answer(&c, &incident, &f, "ranking")
}

pub(crate) async fn get_graph(
    State(c): State<Arc<Center>>,
    Path(incident): Path<String>,
    Query(mut f): Query<RankFilter>,
) -> Response {
    f.top = Some(f.top.unwrap_or(10));
    let format = f.format.clone().unwrap_or_else(|| "dot".into());
    if !["dot", "json", "html"].contains(&format.as_str()) {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("format {format:?}: dot, json or html"),
        );
    }
    answer(&c, &incident, &f, &format)
}

pub(crate) async fn get_stix(
    State(c): State<Arc<Center>>,
    Path(incident): Path<String>,
    Query(f): Query<RankFilter>,
) -> Response {
    answer(&c, &incident, &f, "stix")
}

pub(crate) async fn get_xarf(
    State(c): State<Arc<Center>>,
    Path(incident): Path<String>,
    Query(f): Query<RankFilter>,
) -> Response {
    answer(&c, &incident, &f, "xarf")
}

pub(crate) async fn get_graph_js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        crate::html::GRAPH_JS,
    )
        .into_response()
}
