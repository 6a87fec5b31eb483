//! Controllers federated over real mutual TLS on loopback, with real probes: the chain
//! A ← B ← C, both modes, and the faults a federation meets (dead, slow, lying and foreign
//! peers, loops, floods, retries), and the peering skip around a non-participant.

mod lab;

use std::time::{Duration, Instant};

use ashiato_api::federation::{
    HopMode, HopPacket, HopRequest, HopResponse, NodeRole, Outcome, PROTOCOL_VERSION, PathEnd,
    ProbeVerdict, TraceMode, TraceResult, Via,
};
use ashiato_controller::new_id;
use ashiato_net::client::{ClientError, ServiceClient};
use axum::routing::post;
use tokio::net::TcpListener;

use lab::{A, B, C, DomainSpec, Lab, a_facing, chain, overloaded_probe, packet, probe, start};

fn path_of(r: &TraceResult, packet: u32) -> (&[u32], &PathEnd) {
    let p = r.graph.paths.iter().find(|p| p.packet == packet).unwrap();
    (&p.path, &p.end)
}

fn assert_chain_result(r: &TraceResult) {
    let (path, end) = path_of(r, 0);
    assert_eq!(path, &[A, B, C], "{:#?}", r.graph.reports);
    assert_eq!(end, &PathEnd::Origin { domain: C });
    // Packet 2 was seen at A's edge and on none of A's border links: it started in A.
    let (path, end) = path_of(r, 1);
    assert_eq!(path, &[A]);
    assert_eq!(end, &PathEnd::Origin { domain: A });
    assert!(r.graph.gaps.is_empty(), "{:?}", r.graph.gaps);
    let origin = r.graph.nodes.iter().find(|n| n.domain == C).unwrap();
    assert_eq!(origin.role, NodeRole::Origin);
    let edge = r
        .graph
        .edges
        .iter()
        .find(|e| e.from == C && e.to == B)
        .unwrap();
    assert!(
        edge.evidence
            .iter()
            .any(|e| e.probe == "b-to-c" || e.probe == "c-to-b"),
        "{:?}",
        edge.evidence
    );
    assert!(r.graph.expected_false_nodes < 0.01);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recursive_trace_finds_the_origin_two_domains_up() {
    let lab = chain("").await;
    let a = &lab.controllers[&A];
    let r = a.trace(start(&[1, 2])).await.unwrap();
    assert_eq!(r.mode, TraceMode::Recursive);
    assert_chain_result(&r);
    // B and C reported for themselves, over the wire.
    let c = r
        .graph
        .reports
        .iter()
        .find(|x| x.domain == C && x.packet == 0)
        .unwrap();
    assert_eq!(c.outcome, Outcome::Origin);
    assert_eq!(c.via, Via::Link { neighbour: B });
    // The result is kept, and served as JSON and DOT.
    let client = ServiceClient::new(&lab.addrs[&A], Some(lab.client_tls("operator")));
    let got: TraceResult = client
        .call::<(), _>("GET", &format!("/v1/traces/{}", r.trace_id), None)
        .await
        .unwrap();
    // (Floats pass through JSON text, so compare what they decide.)
    assert_eq!(got.trace_id, r.trace_id);
    assert_eq!(got.graph.paths, r.graph.paths);
    assert_eq!(got.graph.reports.len(), r.graph.reports.len());
    let dot = client
        .get_text(&format!("/v1/traces/{}/dot", r.trace_id))
        .await
        .unwrap();
    assert!(dot.starts_with("digraph") && dot.contains("64503"), "{dot}");
    let m = client.get_text("/metrics").await.unwrap();
    assert!(
        m.contains("ashiato_controller_traces_total{mode=\"recursive\",result=\"complete\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("ashiato_controller_hop_requests_out_total{outcome=\"answered\"} 1"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesh_trace_finds_the_same_paths() {
    let lab = chain("").await;
    let a = &lab.controllers[&A];
    let mut s = start(&[1, 2]);
    s.mode = Some(TraceMode::Mesh);
    let r = a.trace(s).await.unwrap();
    assert_eq!(r.mode, TraceMode::Mesh);
    assert_chain_result(&r);
    let mut s = start(&[1, 2]);
    s.mode = Some(TraceMode::Recursive);
    let rec = a.trace(s).await.unwrap();
    assert_eq!(r.graph.paths, rec.graph.paths);
    assert_eq!(r.graph.origins, rec.graph.origins);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trace_api_over_tls_runs_a_trace_and_refuses_other_domains() {
    let lab = chain("").await;
    let op = ServiceClient::new(&lab.addrs[&A], Some(lab.client_tls("operator")));
    let r: TraceResult = op
        .call("POST", "/v1/trace", Some(&start(&[1])))
        .await
        .unwrap();
    assert_eq!(r.graph.origins[0].domain, C);
    // Another domain's controller may not start traces here.
    let other = ServiceClient::new(&lab.addrs[&A], Some(lab.client_tls("as64502")));
    let e = other
        .call::<_, TraceResult>("POST", "/v1/trace", Some(&start(&[1])))
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Status { status: 403, .. }), "{e}");
    // A malformed request is a 400 with the reason.
    let e = op
        .call::<_, TraceResult>(
            "POST",
            "/v1/trace",
            Some(&serde_json::json!({"packets": 3})),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Status { status: 400, .. }), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_neighbour_is_an_unreachable_gap_and_the_trace_returns_in_time() {
    // A port nobody listens on.
    let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = dead.local_addr().unwrap().to_string();
    drop(dead);
    let lab = a_facing(
        &addr,
        "[trace]\ndeadline_ms = 1500\nprobe_timeout_ms = 300\n",
    )
    .await;
    let t = Instant::now();
    let r = lab.controllers[&A].trace(start(&[1])).await.unwrap();
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
    let b = r.graph.reports.iter().find(|x| x.domain == B).unwrap();
    assert_eq!(b.outcome, Outcome::Unreachable);
    assert!(
        b.reason.as_deref().unwrap().contains("cannot connect"),
        "{b:?}"
    );
    assert_eq!(r.graph.gaps.len(), 1);
    assert_eq!(r.graph.gaps[0].reason, "unreachable");
    assert!(r.graph.origins.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_neighbour_slower_than_the_deadline_is_cut_off_at_the_deadline() {
    // Accepts connections and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let lab = a_facing(
        &addr,
        "[trace]\ndeadline_ms = 800\nprobe_timeout_ms = 200\n",
    )
    .await;
    let t = Instant::now();
    let r = lab.controllers[&A].trace(start(&[1])).await.unwrap();
    let took = t.elapsed();
    assert!(took <= Duration::from_millis(800 + 150), "{took:?}");
    assert!(
        took >= Duration::from_millis(500),
        "it did wait for the neighbour: {took:?}"
    );
    let b = r.graph.reports.iter().find(|x| x.domain == B).unwrap();
    assert_eq!(b.outcome, Outcome::Unreachable);
    assert!(
        b.reason.as_deref().unwrap().starts_with("deadline"),
        "{b:?}"
    );
    hold.abort();
}

/// What a lying peer answers to a hop request.
type Answer = fn(HopRequest) -> serde_json::Value;

async fn liar(lab: &mut Lab, answer: Answer) -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let app = axum::Router::new().route(
        "/v1/hop",
        post(move |axum::Json(req): axum::Json<HopRequest>| async move { axum::Json(answer(req)) }),
    );
    lab.serve_on(l, app, "as64502");
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_answers_are_rejected_as_unreachable() {
    let cases: [(Answer, &str); 4] = [
        (|_| serde_json::json!({"junk": 1}), "malformed answer"),
        (
            |req| {
                serde_json::json!({"version": PROTOCOL_VERSION, "request_id": new_id(),
                    "domain": B, "reports": [], "x": req.trace_id})
            },
            "malformed answer",
        ),
        (
            |_| serde_json::json!({"version": PROTOCOL_VERSION, "request_id": new_id(), "domain": B, "reports": []}),
            "another request id",
        ),
        (
            |req| {
                serde_json::json!({"version": PROTOCOL_VERSION, "request_id": req.request_id,
                "domain": B, "reports": [{"domain": B, "packet": 7, "via": {"kind": "link", "neighbour": A},
                "outcome": "origin"}]})
            },
            "packet 7, which was not asked",
        ),
    ];
    for (answer, want) in cases {
        // The liar needs the lab's PKI: build the lab around a placeholder, then point B at it.
        let mut pki = Lab::new(&[]);
        let addr = liar(&mut pki, answer).await;
        let lab = a_facing_in(pki, &addr).await;
        let r = lab.controllers[&A].trace(start(&[1])).await.unwrap();
        let b = r.graph.reports.iter().find(|x| x.domain == B).unwrap();
        assert_eq!(b.outcome, Outcome::Unreachable);
        assert!(b.reason.as_deref().unwrap().contains(want), "{want}: {b:?}");
        assert_eq!(r.graph.gaps[0].reason, "unreachable");
    }
}

/// [`a_facing`] inside an existing lab (whose PKI the fault server already uses).
async fn a_facing_in(mut lab: Lab, b_addr: &str) -> Lab {
    let la = lab.reserve(A).await;
    lab.addrs.insert(B, b_addr.to_string());
    lab.start_domain(
        la,
        DomainSpec {
            asn: A,
            probes: vec![probe("a-to-b", &format!("link:{B}"), &[1])],
            toml: format!("[[neighbour]]\nasn = {B}\ncontroller = \"{{{B}}}\"\n"),
        },
    )
    .await;
    lab
}

fn hop_request(from: u32, visited: Vec<u32>, table_id: &str) -> HopRequest {
    HopRequest {
        version: PROTOCOL_VERSION,
        request_id: new_id(),
        trace_id: new_id(),
        initiator: from,
        from,
        table_id: table_id.into(),
        mode: HopMode::Recursive,
        hop_budget: 8,
        deadline_ms: 1500,
        visited,
        packets: vec![HopPacket {
            index: 0,
            packet: packet(1),
            via: Via::Link { neighbour: from },
        }],
    }
}

fn demo_table() -> String {
    format!("{:016x}", ashiato_digest::DEMO_KEY.table_id())
}

async fn status_of(c: &ServiceClient, req: &HopRequest) -> u16 {
    match c.call::<_, HopResponse>("POST", "/v1/hop", Some(req)).await {
        Ok(_) => 200,
        Err(ClientError::Status { status, .. }) => status,
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_are_checked_loops_refused_and_retries_answered_identically() {
    let lab = chain("").await;
    let as_a = ServiceClient::new(&lab.addrs[&B], Some(lab.client_tls("as64501")));
    // A retry of one request id gets the identical answer.
    let req = hop_request(A, vec![A], &demo_table());
    let first: HopResponse = as_a.call("POST", "/v1/hop", Some(&req)).await.unwrap();
    let again: HopResponse = as_a.call("POST", "/v1/hop", Some(&req)).await.unwrap();
    assert_eq!(first, again);
    assert!(
        first
            .reports
            .iter()
            .any(|r| r.domain == C && r.outcome == Outcome::Origin)
    );
    // Two at once: the second waits for the first's answer.
    let req2 = hop_request(A, vec![A], &demo_table());
    let (x, y) = tokio::join!(
        as_a.call::<_, HopResponse>("POST", "/v1/hop", Some(&req2)),
        as_a.call::<_, HopResponse>("POST", "/v1/hop", Some(&req2))
    );
    assert_eq!(x.unwrap(), y.unwrap());
    // Answers are deterministic anyway: the metrics prove the retries were not recomputed.
    // B answered two requests and served two retries; C was asked twice, not four times.
    let metrics = |asn: u32| {
        let c = ServiceClient::new(&lab.addrs[&asn], Some(lab.client_tls("operator")));
        async move { c.get_text("/metrics").await.unwrap() }
    };
    let mb = metrics(B).await;
    assert!(
        mb.contains("ashiato_controller_hop_requests_in_total{outcome=\"retry\"} 2"),
        "{mb}"
    );
    assert!(
        mb.contains("ashiato_controller_hop_requests_in_total{outcome=\"answered\"} 2"),
        "{mb}"
    );
    let mc = metrics(C).await;
    assert!(
        mc.contains("ashiato_controller_hop_requests_in_total{outcome=\"answered\"} 2"),
        "{mc}"
    );
    // A loop: B already on the branch.
    assert_eq!(
        status_of(&as_a, &hop_request(A, vec![A, B], &demo_table())).await,
        409
    );
    // Another federation key.
    assert_eq!(
        status_of(&as_a, &hop_request(A, vec![A], "0123456789abcdef")).await,
        400
    );
    // Another protocol version.
    let mut v = hop_request(A, vec![A], &demo_table());
    v.version = 2;
    assert_eq!(status_of(&as_a, &v).await, 400);
    // No hop budget left.
    let mut z = hop_request(A, vec![A], &demo_table());
    z.hop_budget = 0;
    assert_eq!(status_of(&as_a, &z).await, 400);
    // A says it is C: the certificate says otherwise.
    assert_eq!(
        status_of(&as_a, &hop_request(C, vec![C], &demo_table())).await,
        403
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_peer_gets_429() {
    let mut lab = Lab::new(&[]);
    let lb = lab.reserve(B).await;
    lab.start_domain(
        lb,
        DomainSpec {
            asn: B,
            probes: vec![probe("b-to-a", &format!("link:{A}"), &[])],
            toml: format!(
                "[limits]\npeer_requests_per_second = 0.1\npeer_burst = 3\n[[neighbour]]\nasn = {A}\ncontroller = \"127.0.0.1:1\"\n"
            ),
        },
    )
    .await;
    let as_a = ServiceClient::new(&lab.addrs[&B], Some(lab.client_tls("as64501")));
    for _ in 0..3 {
        assert_eq!(
            status_of(&as_a, &hop_request(A, vec![A], &demo_table())).await,
            200
        );
    }
    let e = as_a
        .call::<_, HopResponse>(
            "POST",
            "/v1/hop",
            Some(&hop_request(A, vec![A], &demo_table())),
        )
        .await
        .unwrap_err();
    match e {
        ClientError::Status {
            status: 429, body, ..
        } => assert!(body.contains("retry in"), "{body}"),
        e => panic!("{e}"),
    }
    // Another peer has its own bucket.
    let as_c = ServiceClient::new(&lab.addrs[&B], Some(lab.client_tls("as64503")));
    let mut r = hop_request(C, vec![C], &demo_table());
    r.packets[0].via = Via::Link { neighbour: A }; // C asks about the link to A: not ours, but answered
    assert_eq!(status_of(&as_c, &r).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_and_expired_certificates_are_refused() {
    let lab = chain("").await;
    // A certificate from another federation's CA.
    let foreign = tempfile::tempdir().unwrap();
    ashiato_net::tls::generate_pki(foreign.path(), &["as64501".into()], &[]).unwrap();
    let tls = ashiato_net::tls::client_config(&ashiato_net::tls::TlsFiles {
        ca: lab.pki().join("ca.pem"),
        cert: foreign.path().join("as64501.pem"),
        key: foreign.path().join("as64501-key.pem"),
    })
    .unwrap();
    let c = ServiceClient::new(&lab.addrs[&B], Some(tls));
    let e = c
        .call::<_, HopResponse>(
            "POST",
            "/v1/hop",
            Some(&hop_request(A, vec![A], &demo_table())),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::ForeignClient { .. } | ClientError::Tls { .. } | ClientError::Http { .. }
        ),
        "{e}"
    );
    // A certificate of our CA that expired 19 days ago (the loader refuses it, so the client
    // configuration is built by hand).
    let now = std::time::SystemTime::now() - Duration::from_secs(20 * 86_400);
    ashiato_net::tls::issue_identity(&lab.pki(), "old", &[], 1, false, now).unwrap();
    use rustls::pki_types::pem::PemObject;
    let certs: Vec<_> = rustls::pki_types::CertificateDer::pem_file_iter(lab.pki().join("old.pem"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key =
        rustls::pki_types::PrivateKeyDer::from_pem_file(lab.pki().join("old-key.pem")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(lab.pki().join("ca.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let mut cfg = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .unwrap();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let c = ServiceClient::new(&lab.addrs[&B], Some(std::sync::Arc::new(cfg)));
    let e = c
        .call::<_, HopResponse>(
            "POST",
            "/v1/hop",
            Some(&hop_request(A, vec![A], &demo_table())),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, ClientError::Tls { .. } | ClientError::Http { .. }),
        "expired certificate accepted? {e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_peering_skip_finds_the_origin_beyond_a_non_participant() {
    // A ← X (64502, no controller) ← C: C's link to X and A's link to X saw packet 1.
    let mut lab = Lab::new(&[]);
    let (la, lc) = (lab.reserve(A).await, lab.reserve(C).await);
    lab.start_domain(
        lc,
        DomainSpec {
            asn: C,
            probes: vec![probe("c-to-x", &format!("link:{B}"), &[1])],
            toml: format!("[[neighbour]]\nasn = {B}\n"),
        },
    )
    .await;
    lab.start_domain(
        la,
        DomainSpec {
            asn: A,
            probes: vec![probe("a-to-x", &format!("link:{B}"), &[1])],
            toml: format!(
                "[[neighbour]]\nasn = {B}\nbeyond = [{{ asn = {C}, via = [{B}], controller = \"{{{C}}}\" }}]\n"
            ),
        },
    )
    .await;
    let r = lab.controllers[&A].trace(start(&[1])).await.unwrap();
    let (path, end) = path_of(&r, 0);
    assert_eq!(
        end,
        &PathEnd::Origin { domain: C },
        "{:#?}",
        r.graph.reports
    );
    assert_eq!(path.first(), Some(&A));
    assert_eq!(path.last(), Some(&C));
    let e = r
        .graph
        .edges
        .iter()
        .find(|e| e.from == C && e.to == A)
        .unwrap();
    assert_eq!(e.skipped, vec![B]);
    let x = r.graph.reports.iter().find(|x| x.domain == B).unwrap();
    assert_eq!(x.outcome, Outcome::NotParticipating);
}

/// A store that keeps traces in memory, or fails every write.
struct MemorySink {
    fail: bool,
    kept: std::sync::Mutex<Vec<TraceResult>>,
}

impl ashiato_controller::TraceSink for MemorySink {
    fn store<'a>(
        &'a self,
        t: &'a TraceResult,
    ) -> ashiato_controller::BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            if self.fail {
                return Err("disk full".into());
            }
            self.kept.lock().unwrap().push(t.clone());
            Ok(())
        })
    }

    fn load<'a>(
        &'a self,
        trace_id: &'a str,
    ) -> ashiato_controller::BoxFuture<'a, Result<Option<TraceResult>, String>> {
        Box::pin(async move {
            Ok(self
                .kept
                .lock()
                .unwrap()
                .iter()
                .find(|t| t.trace_id == trace_id)
                .cloned())
        })
    }
}

fn dev_controller(
    sink: Option<std::sync::Arc<dyn ashiato_controller::TraceSink>>,
    extra: &str,
) -> std::sync::Arc<ashiato_controller::Controller> {
    let text = format!(
        "[domain]\nasn = {A}\nlisten = \"127.0.0.1:0\"\nkey_file = \"k\"\ndev_insecure = true\n{extra}"
    );
    let cfg =
        ashiato_controller::DomainConfig::parse(&text, std::path::Path::new("t.toml")).unwrap();
    ashiato_controller::Controller::new(
        cfg,
        ashiato_controller::Deps {
            key: ashiato_digest::DEMO_KEY,
            probe_tls: None,
            peer_tls: None,
            sink,
            topology: None,
        },
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_traces_go_to_the_sink_and_a_failing_sink_never_fails_the_trace() {
    let sink = std::sync::Arc::new(MemorySink {
        fail: false,
        kept: Default::default(),
    });
    // Only the newest trace stays in memory: older ones come back from the sink.
    let c = dev_controller(Some(sink.clone()), "[limits]\nrecent_traces = 1\n");
    let first = c.trace(start(&[1])).await.unwrap();
    assert!(first.stored && first.store_error.is_none());
    let second = c.trace(start(&[2])).await.unwrap();
    assert_eq!(sink.kept.lock().unwrap().len(), 2);
    sink.kept
        .lock()
        .unwrap()
        .retain(|t| t.trace_id != second.trace_id);
    assert_eq!(
        c.get_trace(&first.trace_id)
            .await
            .unwrap()
            .unwrap()
            .trace_id,
        first.trace_id,
        "evicted from memory, loaded from the sink"
    );
    assert!(
        c.get_trace(&second.trace_id).await.unwrap().is_some(),
        "in memory"
    );
    let failing = dev_controller(
        Some(std::sync::Arc::new(MemorySink {
            fail: true,
            kept: Default::default(),
        })),
        "",
    );
    let r = failing.trace(start(&[1])).await.unwrap();
    assert!(!r.stored);
    assert_eq!(r.store_error.as_deref(), Some("disk full"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eve_alerts_with_packets_are_traced_per_victim_and_others_skipped_with_a_reason() {
    use base64::Engine;
    let lab = chain("").await;
    let b64 = |n: u32| base64::engine::general_purpose::STANDARD.encode(lab::frame(n));
    // T0 in Suricata's format.
    let ts = "2020-09-13T12:26:40.000000+0000";
    let body = [
        format!(r#"{{"timestamp":"{ts}","event_type":"alert","dest_ip":"192.0.2.1","packet":"{}","packet_info":{{"linktype":1}}}}"#, b64(1)),
        format!(r#"{{"timestamp":"{ts}","event_type":"alert","dest_ip":"192.0.2.1","packet":"{}","packet_info":{{"linktype":1}}}}"#, b64(2)),
        format!(r#"{{"timestamp":"{ts}","event_type":"alert","dest_ip":"192.0.2.1"}}"#),
        "not json".to_string(),
    ]
    .join("\n");
    // ServiceClient sends JSON bodies; EVE lines go through the router in process.
    let resp = tower_post(&lab, "/v1/eve", body).await;
    assert_eq!(resp["records"], 4, "{resp}");
    assert_eq!(resp["traced"], 2, "{resp}");
    assert_eq!(resp["skipped_count"], 2, "{resp}");
    assert!(
        resp["skipped"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("no packet"),
        "{resp}"
    );
    assert_eq!(resp["skipped"][1]["line"], 4);
    // One victim, one trace of both packets: packet 1 from C, packet 2 from A itself.
    assert_eq!(resp["traces"].as_array().unwrap().len(), 1, "{resp}");
    let mut origins: Vec<u64> = resp["traces"][0]["origins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_u64().unwrap())
        .collect();
    origins.sort();
    assert_eq!(origins, vec![u64::from(A), u64::from(C)], "{resp}");
}

/// POSTs a raw body to A's router in process, as an authenticated operator would.
async fn tower_post(lab: &Lab, path: &str, body: String) -> serde_json::Value {
    let mut req = axum::http::Request::builder()
        .method("POST")
        .uri(path)
        .body(axum::body::Body::from(body))
        .unwrap();
    req.extensions_mut().insert(ashiato_net::server::Peer {
        addr: "127.0.0.1:1".parse().unwrap(),
        authenticated: true,
        common_name: Some("operator".into()),
    });
    let resp = tower::ServiceExt::oneshot(lab.controllers[&A].router(), req)
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

/// A trace whose digests were computed with another key is refused, naming both table ids
/// (409 over HTTP), instead of matching nothing and blaming the victim.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_of_another_key_is_refused_naming_both_ids() {
    let lab = chain("").await;
    let other = ashiato_digest::Key::from_bytes([7; 16]).table_id_hex();
    let mut s = start(&[1]);
    s.table_id = other.clone();
    let e = lab.controllers[&A].trace(s.clone()).await.unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains(&other) && msg.contains(&ashiato_digest::DEMO_KEY.table_id_hex()),
        "{msg}"
    );
    let op = ServiceClient::new(&lab.addrs[&A], Some(lab.client_tls("operator")));
    let e = op
        .call::<_, TraceResult>("POST", "/v1/trace", Some(&s))
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Status { status: 409, .. }), "{e}");
    assert!(e.to_string().contains(&other), "{e}");
}

/// A packet that no probe saw — every probe holds the window — is not seen anywhere: a gap
/// of that name, never the victim as its own origin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_packet_never_sent_is_not_seen_anywhere() {
    let lab = chain("").await;
    let r = lab.controllers[&A].trace(start(&[99])).await.unwrap();
    assert!(r.graph.origins.is_empty(), "{:?}", r.graph.origins);
    let (path, end) = path_of(&r, 0);
    assert_eq!(path, &[A]);
    assert_eq!(
        end,
        &PathEnd::Gap {
            last: A,
            behind: Vec::new(),
            reason: "not_seen_anywhere".into()
        }
    );
}

/// A ← X (no ashiato) ← C, where C's only probe, on its link to X, is sized for 50 packets a
/// second and holds 2,000: it "sees" packets it never saw. Nobody across the skip can refute
/// it, so only the false-match probability can: the hop is `unreliable`, C is no origin,
/// and the skip edge shows the evidence it was judged on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_false_match_across_a_peering_skip_is_unreliable_not_an_origin() {
    let mut lab = Lab::new(&[]);
    let (la, lc) = (lab.reserve(A).await, lab.reserve(C).await);
    lab.start_domain(
        lc,
        DomainSpec {
            asn: C,
            probes: vec![overloaded_probe("c-to-x", &format!("link:{B}"), &[])],
            toml: format!("[[neighbour]]\nasn = {B}\n"),
        },
    )
    .await;
    lab.start_domain(
        la,
        DomainSpec {
            asn: A,
            probes: vec![
                probe("a-edge", "edge", &[1, 2, 3]),
                probe("a-to-x", &format!("link:{B}"), &[1, 2, 3]),
            ],
            toml: format!(
                "[[neighbour]]\nasn = {B}\nbeyond = [{{ asn = {C}, via = [{B}], controller = \"{{{C}}}\" }}]\n"
            ),
        },
    )
    .await;
    let r = lab.controllers[&A].trace(start(&[1, 2, 3])).await.unwrap();
    // The overloaded probe did answer `seen`, with its (high) false-match probability.
    let c_seen: Vec<f64> = r
        .graph
        .reports
        .iter()
        .filter(|x| x.domain == C)
        .flat_map(|x| x.evidence.iter())
        .filter(|e| e.verdict == ProbeVerdict::Seen)
        .map(|e| e.seen_false_match())
        .collect();
    assert!(!c_seen.is_empty(), "{:#?}", r.graph.reports);
    assert!(c_seen.iter().all(|&f| f > 0.01), "{c_seen:?}");
    assert!(r.graph.origins.is_empty(), "{:?}", r.graph.origins);
    for p in &r.graph.paths {
        match &p.end {
            PathEnd::Gap {
                last,
                behind,
                reason,
            } => {
                assert_eq!(*last, A);
                assert_eq!(reason, "unreliable");
                assert_eq!(behind, &vec![B, C]);
            }
            other => panic!("packet {} ends {other:?}", p.packet),
        }
    }
    let e = r
        .graph
        .edges
        .iter()
        .find(|e| e.from == C && e.to == A)
        .unwrap();
    assert_eq!(e.skipped, vec![B]);
    assert!(!e.reliable);
    assert!(e.false_match > r.graph.fpr_bound);
    assert!(e.evidence.iter().any(|x| x.probe == "c-to-x"), "{e:?}");
}
