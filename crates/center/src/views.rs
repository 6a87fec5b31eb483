//! The read side: the ranking, the three-layer graph and the exports, over the ledger.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use ashiato_hosttrace::claim::parse_rfc3339;
use ashiato_hosttrace::rank::{BotReport, Ranked, dot, rank};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::ledger::Ledger;
use crate::{Center, error};

/// Filters of the ranking and the graph: `feature`, `port` (the server's), `min_bots`, `top`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RankFilter {
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

/// The ranked servers of `incident` under the filters, over the ledger's reports.
pub fn ranked(
    l: &Ledger,
    allow: &HashSet<IpAddr>,
    incident: &str,
    f: &RankFilter,
) -> Result<Vec<Ranked>, String> {
    let t = |what: &str, s: &Option<String>| {
        s.as_deref()
            .map(|s| parse_rfc3339(s).map_err(|e| format!("{what}: {e}")))
            .transpose()
    };
    let (from, to) = (
        t("from", &f.from)?.unwrap_or(0),
        t("to", &f.to)?.unwrap_or(u64::MAX),
    );
    let timed: Vec<BotReport>;
    let reports = if from > 0 || to < u64::MAX {
        timed = l
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
        &l.reports
    };
    let mut r: Vec<Ranked> = rank(incident, reports, &l.popularity, allow)
        .into_iter()
        .filter(|x| f.feature.as_ref().is_none_or(|ft| x.features.contains(ft)))
        .filter(|x| f.port.is_none_or(|p| x.ports.contains(&p)))
        .filter(|x| f.min_bots.is_none_or(|m| x.reporters >= m))
        .collect();
    r.truncate(f.top.unwrap_or(50).min(1000));
    Ok(r)
}

pub(crate) async fn get_ranking(
    State(c): State<Arc<Center>>,
    Path(incident): Path<String>,
    Query(f): Query<RankFilter>,
) -> Response {
    let inner = c.lock();
    match ranked(&inner.ledger, &c.cfg.allow, &incident, &f) {
        Ok(r) => axum::Json(r).into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, &e),
    }
}

pub(crate) async fn get_graph(
    State(c): State<Arc<Center>>,
    Path(incident): Path<String>,
    Query(mut f): Query<RankFilter>,
) -> Response {
    let inner = c.lock();
    f.top = Some(f.top.unwrap_or(10));
    let r = match ranked(&inner.ledger, &c.cfg.allow, &incident, &f) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    match f.format.as_deref() {
        None | Some("dot") => {
            let d = dot(&incident, &inner.ledger.reports, &r, r.len());
            ([(header::CONTENT_TYPE, "text/vnd.graphviz")], d).into_response()
        }
        Some("json") => axum::Json(graph(&incident, &inner.ledger.reports, &r)).into_response(),
        Some(other) => error(
            StatusCode::BAD_REQUEST,
            &format!("format {other:?}: dot or json"),
        ),
    }
}

pub(crate) async fn get_stix(
    State(c): State<Arc<Center>>,
    Path(incident): Path<String>,
    Query(f): Query<RankFilter>,
) -> Response {
    let inner = c.lock();
    let r = match ranked(&inner.ledger, &c.cfg.allow, &incident, &f) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
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
