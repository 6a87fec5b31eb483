//! The routes called directly (no network), with the peer identity the accept loop would set.

use std::sync::Arc;

use ashiato_hosttrace::claimlist::{AgentList, CenterList};
use ashiato_net::server::Peer;
use ashiato_store::Store;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use ring::signature::Ed25519KeyPair;
use serde_json::{Value, json};

use super::{Center, CenterConfig, router};

const SECRET: [u8; 32] = [3; 32];
/// 2026-01-01T10:02:00Z.
const NOW: u64 = 1_767_261_720_000_000_000;

/// The signing key every test center uses (the same one across a restart).
fn signing_key() -> Vec<u8> {
    use std::sync::OnceLock;
    static KEY: OnceLock<Vec<u8>> = OnceLock::new();
    KEY.get_or_init(|| {
        let rng = ring::rand::SystemRandom::new();
        Ed25519KeyPair::generate_pkcs8(&rng)
            .unwrap()
            .as_ref()
            .to_vec()
    })
    .clone()
}

/// A center on the SQLite store `db` (made if missing).
async fn center_on(cfg: CenterConfig, db: &std::path::Path) -> (Arc<Center>, Vec<u8>) {
    let list = CenterList::new(&SECRET, &signing_key(), cfg.skew_ns).unwrap();
    let public = list.public_key();
    let store = Store::open(db.to_str().unwrap()).await.unwrap();
    (
        Center::new(cfg, list, SECRET, store, Box::new(|| NOW))
            .await
            .unwrap(),
        public,
    )
}

/// A center on a fresh store in a temporary directory (kept while the guard lives).
async fn center(cfg: CenterConfig) -> (Arc<Center>, Vec<u8>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let (c, public) = center_on(cfg, &dir.path().join("center.db")).await;
    (c, public, dir)
}

async fn call(
    c: &Arc<Center>,
    method: &str,
    path: &str,
    who: Option<&str>,
    body: Value,
) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .body(Body::from(if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        }))
        .unwrap();
    if let Some(name) = who {
        req.extensions_mut().insert(Peer {
            addr: "127.0.0.1:1".parse().unwrap(),
            authenticated: true,
            common_name: Some(name.into()),
        });
    }
    let resp = tower::ServiceExt::oneshot(router(c.clone()), req)
        .await
        .unwrap();
    let status = resp.status();
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, v)
}

fn claim(id: &str) -> Value {
    json!({
        "claim": {"id": id, "victim": "203.0.113.5", "protocol": "tcp", "port": 80,
                  "from": "2026-01-01T10:00:00Z", "to": "2026-01-01T10:05:00Z"},
        "evidence": [{"timestamp": "2026-01-01T10:01:02.123456+0000", "event_type": "alert",
                      "src_ip": "198.51.100.9", "src_port": 40000, "dest_ip": "203.0.113.5",
                      "dest_port": 80, "proto": "TCP", "alert": {"signature": "SYN flood"}}]
    })
}

fn report(reporter: &str, incident: &str, id: &str) -> Value {
    json!({"report_id": id, "report": {
    "reporter": reporter, "incident": incident, "attack_packets": 2000, "attacked_port": 80,
    "records": [
        {"time_ns": 1, "proto": "tcp", "dst": "45.33.32.156", "port": 6667, "process": "bot", "features": ["irc"]},
        {"time_ns": 2, "proto": "udp", "dst": "8.8.8.8", "port": 53, "process": "bot", "features": ["dns-error"]}
    ]}})
}

#[tokio::test]
async fn claims_need_a_certificate_and_evidence_and_are_published_signed() {
    let (c, public, _dir) = center(CenterConfig::default()).await;
    let (s, _) = call(&c, "POST", "/v1/claims", None, claim("c1")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let mut no_evidence = claim("c1");
    no_evidence["evidence"][0]["dest_ip"] = json!("203.0.113.6");
    let (s, _) = call(&c, "POST", "/v1/claims", Some("victim-a"), no_evidence).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let mut late = claim("c1");
    late["evidence"][0]["timestamp"] = json!("2026-01-01T12:00:00.000000+0000");
    let (s, _) = call(&c, "POST", "/v1/claims", Some("victim-a"), late).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, v) = call(&c, "POST", "/v1/claims", Some("victim-a"), claim("c1")).await;
    assert_eq!((s, v["version"].as_u64()), (StatusCode::CREATED, Some(1)));
    let (s, _) = call(&c, "POST", "/v1/claims", Some("victim-a"), claim("c1")).await;
    assert_eq!(s, StatusCode::CONFLICT);

    // An agent applies the signed list and finds the claim for the victim it flooded.
    let (s, delta) = call(&c, "GET", "/v1/claims?since=0", Some("host-1"), Value::Null).await;
    assert_eq!(s, StatusCode::OK);
    assert!(!delta.to_string().contains("203.0.113.5"));
    let mut agent = AgentList::new(&public, &SECRET);
    agent
        .apply(&serde_json::from_value(delta.clone()).unwrap())
        .unwrap();
    assert_eq!(
        agent.candidates("203.0.113.5".parse().unwrap(), 80, NOW)[0].id,
        "c1"
    );
    // Altered in transit: refused.
    let mut bad: ashiato_hosttrace::claimlist::SignedDelta = serde_json::from_value(delta).unwrap();
    bad.claims[0].from_ns -= 1;
    assert!(AgentList::new(&public, &SECRET).apply(&bad).is_err());
    let log = c.audit_log();
    assert_eq!(log.len(), 5, "{log:?}");
    assert!(log[0].contains("no authenticated certificate"));
    assert!(log[3].contains("victim-a claim c1: accepted as version 1"));
    assert!(
        log[3].starts_with("2026-01-01T10:02:00.000000000Z "),
        "{}",
        log[3]
    );
}

#[tokio::test]
async fn claims_are_rate_bounded_per_reporter_and_bodies_capped() {
    let cfg = CenterConfig {
        claims_per_hour: 2,
        max_body: 2048,
        ..CenterConfig::default()
    };
    let (c, _, _dir) = center(cfg).await;
    for (i, want) in [
        StatusCode::CREATED,
        StatusCode::CREATED,
        StatusCode::TOO_MANY_REQUESTS,
    ]
    .into_iter()
    .enumerate()
    {
        let (s, _) = call(
            &c,
            "POST",
            "/v1/claims",
            Some("victim-a"),
            claim(&format!("c{i}")),
        )
        .await;
        assert_eq!(s, want);
    }
    let (s, _) = call(&c, "POST", "/v1/claims", Some("victim-b"), claim("c9")).await;
    assert_eq!(s, StatusCode::CREATED);
    let mut big = claim("big");
    big["evidence"][0]["pad"] = json!("x".repeat(4096));
    let (s, _) = call(&c, "POST", "/v1/claims", Some("victim-c"), big).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn bot_reports_are_checked_then_ranked_with_a_graph() {
    let (c, _, _dir) = center(CenterConfig::default()).await;
    call(&c, "POST", "/v1/claims", Some("victim-a"), claim("c1")).await;
    let (s, _) = call(
        &c,
        "POST",
        "/v1/reports",
        None,
        report("host-1", "c1", "r1"),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = call(
        &c,
        "POST",
        "/v1/reports",
        Some("host-2"),
        report("host-1", "c1", "r1"),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = call(
        &c,
        "POST",
        "/v1/reports",
        Some("host-1"),
        report("host-1", "nope", "r1"),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    for h in ["host-1", "host-2", "host-3"] {
        let (s, _) = call(&c, "POST", "/v1/reports", Some(h), report(h, "c1", "r1")).await;
        assert_eq!(s, StatusCode::ACCEPTED);
    }
    let (s, _) = call(
        &c,
        "POST",
        "/v1/reports",
        Some("host-1"),
        report("host-1", "c1", "r1"),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "a replayed report id");
    let (s, v) = call(&c, "GET", "/v1/ranking/c1", Some("operator"), Value::Null).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v[0]["server"], "45.33.32.156");
    assert_eq!(v[0]["reporters"], 3);
    assert_eq!(v[0]["features"][0], "irc");
    let (_, v) = call(
        &c,
        "GET",
        "/v1/ranking/c1?feature=dns-error",
        Some("operator"),
        Value::Null,
    )
    .await;
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["server"], "8.8.8.8");
    let (_, v) = call(
        &c,
        "GET",
        "/v1/ranking/c1?min_bots=4",
        Some("operator"),
        Value::Null,
    )
    .await;
    assert!(v.as_array().unwrap().is_empty());
    let (_, g) = call(
        &c,
        "GET",
        "/v1/graph/c1?format=json&port=6667",
        Some("operator"),
        Value::Null,
    )
    .await;
    assert_eq!(g["bots"], json!(["host-1", "host-2", "host-3"]));
    assert_eq!(g["ports"], json!([80]));
    assert_eq!(g["bot_server"].as_array().unwrap().len(), 3);
    let (s, _) = call(
        &c,
        "GET",
        "/v1/graph/c1?format=svg",
        Some("operator"),
        Value::Null,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, d) = call(&c, "GET", "/v1/graph/c1", Some("operator"), Value::Null).await;
    assert_eq!(s, StatusCode::OK);
    let d = d.as_str().unwrap().to_string();
    assert!(d.contains("\"port 80\" -> \"host-1\""), "{d}");
    assert!(d.contains("\"host-3\" -> \"45.33.32.156\""), "{d}");
}

#[tokio::test]
async fn oversized_reports_are_refused() {
    let dir = std::env::temp_dir().join(format!("ashiato-center-audit-{}", std::process::id()));
    let cfg = CenterConfig {
        max_records: 1,
        audit_file: Some(dir.clone()),
        ..CenterConfig::default()
    };
    let (c, _, _dir) = center(cfg).await;
    call(&c, "POST", "/v1/claims", Some("victim-a"), claim("c1")).await;
    let (s, _) = call(
        &c,
        "POST",
        "/v1/reports",
        Some("host-1"),
        report("host-1", "c1", "r1"),
    )
    .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn enrolment_hands_the_list_key_to_authenticated_peers_only() {
    let (c, public, _dir) = center(CenterConfig::default()).await;
    let (s, v) = call(&c, "GET", "/v1/enroll", None, Value::Null).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(v.get("list_key").is_none(), "{v}");
    call(&c, "POST", "/v1/claims", Some("victim-a"), claim("c1")).await;
    let (s, v) = call(&c, "GET", "/v1/enroll", Some("host-7"), Value::Null).await;
    assert_eq!(s, StatusCode::OK);
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    assert_eq!(
        v,
        json!({"list_key": hex(&SECRET), "sign_public_key": hex(&public),
               "skew_ns": 300_000_000_000u64, "version": 1})
    );
    // What an agent does with it: match the published list.
    let key: [u8; 32] = (0..32)
        .map(|i| {
            u8::from_str_radix(&v["list_key"].as_str().unwrap()[2 * i..2 * i + 2], 16).unwrap()
        })
        .collect::<Vec<u8>>()
        .try_into()
        .unwrap();
    let (_, delta) = call(&c, "GET", "/v1/claims?since=0", Some("host-7"), Value::Null).await;
    let mut agent = AgentList::new(&public, &key);
    agent
        .apply(&serde_json::from_value(delta).unwrap())
        .unwrap();
    assert_eq!(
        agent
            .candidates("203.0.113.5".parse().unwrap(), 80, NOW)
            .len(),
        1
    );
    let log = c.audit_log();
    assert!(
        log[0].contains("- enroll: refused: no authenticated certificate"),
        "{log:?}"
    );
    assert!(
        log.last()
            .unwrap()
            .contains("host-7 enroll: list key handed out"),
        "{log:?}"
    );
}

/// Everything an agent or operator can read, as one value, to compare across a restart.
async fn visible(c: &Arc<Center>) -> Value {
    let mut out = Vec::new();
    for path in [
        "/v1/claims?since=0",
        "/v1/claims?since=1",
        "/v1/enroll",
        "/v1/ranking/c1",
        "/v1/graph/c1?format=json",
    ] {
        let (s, v) = call(c, "GET", path, Some("host-1"), Value::Null).await;
        assert_eq!(s, StatusCode::OK, "{path}");
        out.push(v);
    }
    Value::Array(out)
}

#[tokio::test]
async fn claims_and_reports_survive_a_restart_with_the_same_versions() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("center.db");
    let cfg = CenterConfig {
        claims_per_hour: 2,
        ..CenterConfig::default()
    };
    let (c, _) = center_on(cfg.clone(), &db).await;
    for id in ["c1", "c2"] {
        let (s, _) = call(&c, "POST", "/v1/claims", Some("victim-a"), claim(id)).await;
        assert_eq!(s, StatusCode::CREATED);
    }
    for h in ["host-1", "host-2"] {
        let (s, _) = call(&c, "POST", "/v1/reports", Some(h), report(h, "c1", "r1")).await;
        assert_eq!(s, StatusCode::ACCEPTED);
    }
    let before = visible(&c).await;
    assert_eq!(before[3][0]["reporters"], 2);
    drop(c);

    let (c, _) = center_on(cfg, &db).await;
    assert_eq!(
        visible(&c).await,
        before,
        "the list, the key and the ranking"
    );
    // A replayed report id stays refused; the rate of the hour still counts.
    let (s, _) = call(
        &c,
        "POST",
        "/v1/reports",
        Some("host-1"),
        report("host-1", "c1", "r1"),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _) = call(&c, "POST", "/v1/claims", Some("victim-a"), claim("c3")).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    let (s, v) = call(&c, "POST", "/v1/claims", Some("victim-b"), claim("c3")).await;
    assert_eq!((s, v["version"].as_u64()), (StatusCode::CREATED, Some(3)));
    let (s, _) = call(&c, "POST", "/v1/claims", Some("victim-b"), claim("c1")).await;
    assert_eq!(s, StatusCode::CONFLICT, "an id taken before the restart");
    let (s, _) = call(
        &c,
        "POST",
        "/v1/reports",
        Some("host-3"),
        report("host-3", "c1", "r1"),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (_, v) = call(&c, "GET", "/v1/ranking/c1", Some("op"), Value::Null).await;
    assert_eq!(v[0]["reporters"], 3);
}

#[tokio::test]
async fn a_store_failure_answers_503_stores_nothing_and_the_center_keeps_going() {
    let (c, _, dir) = center(CenterConfig::default()).await;
    let (s, _) = call(&c, "POST", "/v1/claims", Some("victim-a"), claim("c1")).await;
    assert_eq!(s, StatusCode::CREATED);
    // The records table goes away under the running center: the report's own row would
    // insert, its records cannot.
    let db = dir.path().join("center.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", db.display()))
        .await
        .unwrap();
    sqlx::query("ALTER TABLE bot_report_records RENAME TO moved")
        .execute(&pool)
        .await
        .unwrap();
    let (s, v) = call(
        &c,
        "POST",
        "/v1/reports",
        Some("host-1"),
        report("host-1", "c1", "r1"),
    )
    .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("nothing was stored"),
        "{v}"
    );
    assert!(!v.to_string().contains("center.db"), "{v}");
    let stored = Store::open(db.to_str().unwrap()).await.unwrap();
    assert!(
        stored.bot_reports(None, None, 10).await.unwrap().is_empty(),
        "no half-written report"
    );
    let (_, r) = call(&c, "GET", "/v1/ranking/c1", Some("op"), Value::Null).await;
    assert_eq!(r, json!([]), "nothing counted");
    // Back in place: the same report is taken (it was not recorded as seen).
    sqlx::query("ALTER TABLE moved RENAME TO bot_report_records")
        .execute(&pool)
        .await
        .unwrap();
    let (s, _) = call(
        &c,
        "POST",
        "/v1/reports",
        Some("host-1"),
        report("host-1", "c1", "r1"),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert_eq!(stored.bot_reports(None, None, 10).await.unwrap().len(), 1);
    let log = c.audit_log();
    assert!(
        log.iter().any(|l| l.contains("refused: not stored")),
        "{log:?}"
    );
}
