//! The read side through the routes: origins and the grouped ranking, X-ARF notices, the
//! graph's evidence and the HTML page.

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::asn::AsnTable;
use crate::tests::{call, center, claim};
use crate::xarf::Contact;
use crate::{Center, CenterConfig};

const TABLE: &str = "45.33.0.0\t16\t63949\n45.33.32.0\t24\t63949\n8.8.8.0\t24\t15169_15170\n";

/// A report reaching the IRC C&C, a resolver, and a server no prefix holds.
fn report3(host: &str) -> Value {
    json!({"report_id": "r1", "report": {
    "reporter": host, "incident": "c1", "attack_packets": 2000, "attacked_port": 80,
    "records": [
        {"time_ns": 1_767_261_650_000_000_000u64, "proto": "tcp", "dst": "45.33.32.156", "port": 6667,
         "fqdn": "irc.example.org", "process": "bot", "features": ["irc"]},
        {"time_ns": 1_767_261_660_000_000_000u64, "proto": "tcp", "dst": "45.33.40.1", "port": 80,
         "process": "bot", "features": ["http-exe"]},
        {"time_ns": 1_767_261_700_000_000_000u64, "proto": "udp", "dst": "8.8.8.8", "port": 53,
         "process": "bot", "features": ["dns-error"]},
        {"time_ns": 1_767_261_710_000_000_000u64, "proto": "tcp", "dst": "192.0.2.77", "port": 443,
         "process": "bot<script>", "features": []}
    ]}})
}

async fn populated(cfg: CenterConfig) -> (Arc<Center>, tempfile::TempDir) {
    let (c, _, dir) = center(cfg).await;
    let (s, _) = call(&c, "POST", "/v1/claims", Some("victim-a"), claim("c1")).await;
    assert_eq!(s, StatusCode::CREATED);
    for h in ["host-1", "host-2", "host-3"] {
        let (s, _) = call(&c, "POST", "/v1/reports", Some(h), report3(h)).await;
        assert_eq!(s, StatusCode::ACCEPTED);
    }
    (c, dir)
}

fn with_table() -> CenterConfig {
    CenterConfig {
        asn: Some(Arc::new(AsnTable::parse(TABLE).unwrap())),
        abuse_contact: Some(Contact::parse("Example CSIRT <abuse@csirt.example.net>").unwrap()),
        ..CenterConfig::default()
    }
}

async fn get(c: &Arc<Center>, path: &str) -> (StatusCode, Value) {
    call(c, "GET", path, Some("operator"), Value::Null).await
}

#[tokio::test]
async fn servers_carry_their_origin_and_group_by_as() {
    let (c, _dir) = populated(with_table()).await;
    let (s, v) = get(&c, "/v1/ranking/c1").await;
    assert_eq!(s, StatusCode::OK);
    let by: std::collections::HashMap<&str, &Value> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["server"].as_str().unwrap(), x))
        .collect();
    assert_eq!(by["45.33.32.156"]["asn"], 63949);
    assert_eq!(by["45.33.32.156"]["prefix"], "45.33.32.0/24");
    assert_eq!(by["45.33.40.1"]["prefix"], "45.33.0.0/16");
    assert_eq!(by["8.8.8.8"]["asns"], json!([15169, 15170]));
    assert_eq!(by["192.0.2.77"]["asn"], Value::Null);
    assert!(
        by["192.0.2.77"]["asn_note"]
            .as_str()
            .unwrap()
            .starts_with("not routed")
    );
    assert_eq!(v[0]["server"], "45.33.32.156", "the IRC C&C first");

    let (_, g) = get(&c, "/v1/ranking/c1?group=asn").await;
    let g = g.as_array().unwrap();
    assert_eq!(g[0]["asn"], 63949);
    assert_eq!(g[0]["bots"], 3);
    assert_eq!(g[0]["prefixes"], json!(["45.33.0.0/16", "45.33.32.0/24"]));
    assert_eq!(g[0]["servers"].as_array().unwrap().len(), 2);
    assert_eq!(g.last().unwrap()["asn"], Value::Null, "unknown origin last");
    // Filters apply before grouping.
    let (_, g) = get(&c, "/v1/ranking/c1?group=asn&feature=dns-error").await;
    assert_eq!(g.as_array().unwrap().len(), 1);
    assert_eq!(g[0]["asn"], 15169);
    let (s, _) = get(&c, "/v1/ranking/c1?group=prefix").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // Without a table the origin is unknown, and says so.
    let (c, _dir) = populated(CenterConfig::default()).await;
    let (_, v) = get(&c, "/v1/ranking/c1").await;
    assert_eq!(v[0]["asn"], Value::Null);
    assert_eq!(v[0]["asn_note"], "unknown: no --asn-file loaded");
}

#[tokio::test]
async fn unknown_claims_and_bad_times_are_errors_not_empty_answers() {
    let (c, _dir) = populated(CenterConfig::default()).await;
    let (s, _) = get(&c, "/v1/ranking/nope").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = get(&c, "/v1/ranking/c1?from=yesterday").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    // The time window keeps only the records inside it.
    let (_, v) = get(&c, "/v1/ranking/c1?from=2026-01-01T10:01:30Z").await;
    let servers: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["server"].as_str().unwrap())
        .collect();
    assert!(
        !servers.contains(&"45.33.32.156") && servers.contains(&"8.8.8.8"),
        "{servers:?}"
    );
}

/// The fields X-ARF 4 requires (xarf-core.json `required`, contact_info and evidence_item
/// `required`, and infrastructure-botnet.json's `compromise_evidence`).
fn assert_xarf_botnet(n: &Value) {
    for f in [
        "xarf_version",
        "report_id",
        "timestamp",
        "reporter",
        "sender",
        "source_identifier",
        "category",
        "type",
        "compromise_evidence",
    ] {
        assert!(n.get(f).is_some_and(|v| !v.is_null()), "{f} missing in {n}");
    }
    assert!(n["xarf_version"].as_str().unwrap().starts_with("4."));
    assert_eq!(
        (n["category"].as_str(), n["type"].as_str()),
        (Some("infrastructure"), Some("botnet"))
    );
    for who in ["reporter", "sender"] {
        let o = n[who].as_object().unwrap();
        let mut keys: Vec<&str> = o.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["contact", "domain", "org"],
            "contact_info has no other fields"
        );
    }
    let id = n["report_id"].as_str().unwrap();
    assert_eq!(id.len(), 36);
    assert!(["irc", "http", "tcp", "udp"].contains(&n["c2_protocol"].as_str().unwrap()));
    for t in ["timestamp", "first_seen", "last_seen"] {
        ashiato_hosttrace::claim::parse_rfc3339(n[t].as_str().unwrap()).unwrap();
    }
    for e in n["evidence"].as_array().unwrap() {
        assert!(e["content_type"].is_string() && e["payload"].is_string());
        assert!(e["hash"].as_str().unwrap().starts_with("sha256:"));
    }
    for t in n["tags"].as_array().unwrap() {
        let t = t.as_str().unwrap();
        let (ns, v) = t.split_once(':').unwrap();
        for part in [ns, v] {
            assert!(
                part.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()),
                "{t}"
            );
            assert!(
                part.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_+-".contains(c)),
                "{t}"
            );
        }
    }
    assert!(n["description"].as_str().unwrap().chars().count() <= 1000);
}

#[tokio::test]
async fn xarf_notices_one_per_server_grouped_per_network() {
    let (c, _dir) = populated(with_table()).await;
    let (s, x) = get(&c, "/v1/xarf/c1").await;
    assert_eq!(s, StatusCode::OK, "{x}");
    let groups = x["groups"].as_array().unwrap();
    assert_eq!(groups[0]["asn"], 63949);
    let all: Vec<&Value> = groups
        .iter()
        .flat_map(|g| g["notices"].as_array().unwrap())
        .collect();
    assert_eq!(all.len(), 4, "one notice per ranked server");
    for n in &all {
        assert_xarf_botnet(n);
    }
    let cc = &groups[0]["notices"][0];
    assert_eq!(cc["source_identifier"], "45.33.32.156");
    assert_eq!(cc["c2_protocol"], "irc");
    assert_eq!(cc["first_seen"], "2026-01-01T10:00:50.000000000Z");
    assert_eq!(cc["reporter"]["domain"], "csirt.example.net");
    assert!(
        cc["compromise_evidence"]
            .as_str()
            .unwrap()
            .contains("3 distinct hosts")
    );
    // The evidence payload is the rank itself.
    use base64::Engine;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(cc["evidence"][0]["payload"].as_str().unwrap())
        .unwrap();
    let rank: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(rank["reporters"], 3);
    assert_eq!(rank["asn"], 63949);
    // The same export twice: the same ids.
    let (_, again) = get(&c, "/v1/xarf/c1").await;
    assert_eq!(again, x);
    // Without a sender the center refuses rather than invent one.
    let (c, _dir) = populated(CenterConfig::default()).await;
    let (s, v) = get(&c, "/v1/xarf/c1").await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(v["error"].as_str().unwrap().contains("--abuse-contact"));
}

#[tokio::test]
async fn the_graph_carries_its_evidence_and_the_page_its_script() {
    let (c, _dir) = populated(with_table()).await;
    let (_, g) = get(&c, "/v1/graph/c1?format=json").await;
    let edge = g["bot_server"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["server"] == "45.33.32.156" && e["bot"] == "host-2")
        .unwrap();
    assert_eq!(edge["record_count"], 1);
    assert_eq!(edge["records"][0]["features"], json!(["irc"]));
    assert_eq!(edge["records"][0]["fqdn"], "irc.example.org");
    assert_eq!(g["servers"][0]["asn"], 63949);
    assert_eq!(g["port_bot"][0]["attack_packets"], 2000);

    let (s, page) = get(&c, "/v1/graph/c1?format=html").await;
    assert_eq!(s, StatusCode::OK);
    let page = page.as_str().unwrap();
    assert!(page.contains("<script src=\"/static/graph.js\"></script>"));
    assert!(!page.contains("bot<script>"), "reporter text escaped");
    assert!(page.contains("bot\\u003cscript\\u003e"));
    let (s, js) = get(&c, "/static/graph.js").await;
    assert_eq!(s, StatusCode::OK);
    assert!(js.as_str().unwrap().contains("textContent"));
    let (s, _) = get(&c, "/v1/graph/c1?format=png").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}
