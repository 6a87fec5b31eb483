//! The probe service end to end on loopback: capture file → tables → mutual-TLS queries, and
//! the bad requests a hostile peer can send. Live capture across network namespaces is in
//! `netns.rs`.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ashiato_digest::{DEMO_KEY, Key};
use ashiato_net::client::{ClientError, ServiceClient};
use ashiato_net::server::{ServerLimits, check_insecure_listen, serve};
use ashiato_net::tls::{
    TlsFiles, anonymous_client_config, client_config, generate_pki, server_config,
};
use ashiato_probe::api::{MAX_BATCH, QueryRequest, router};
use ashiato_probe::{Input, Probe, ProbeConfig};
use ashiato_tables::{FilterKind, TablesConfig, theory};
use ashiato_wire::capfile::PcapWriter;
use ashiato_wire::packet::TcpFlags;
use ashiato_wire::{LinkType, build};

const T0: u64 = 1_600_000_000_000_000_000;

/// Writes `n` distinct TCP SYN frames, 1,000 per second of capture time, and returns their
/// digests and timestamps.
fn synthetic_capture(path: &Path, n: u32, seed: u32) -> Vec<(u64, String)> {
    let f = std::fs::File::create(path).unwrap();
    let mut w = PcapWriter::new(f, LinkType::Ethernet, 65535).unwrap();
    let mut out = Vec::new();
    for i in 0..n {
        let src = Ipv4Addr::from(0x0a00_0000u32 + i + seed * 1_000_000);
        let frame = build::ipv4_tcp_frame(
            src,
            Ipv4Addr::new(192, 0, 2, 1),
            40000 + (i % 1000) as u16,
            445,
            i,
            0,
            TcpFlags::SYN,
            i as u16,
            &[],
        );
        let ts = T0 + u64::from(i) * 1_000_000;
        w.write(ts, &frame).unwrap();
        let d = DEMO_KEY.digest_frame(LinkType::Ethernet, &frame).unwrap();
        out.push((ts, d.to_string()));
    }
    out
}

fn small_tables() -> TablesConfig {
    TablesConfig {
        epoch_ns: 1_000_000_000,
        retention_epochs: 60,
        params: theory::plan(FilterKind::Blocked, 2_000, 1e-4),
        table_id: 0,
        spill: None,
        prefault: false,
    }
}

struct Lab {
    _dir: tempfile::TempDir,
    tls: PathBuf,
    addr: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _probe: Probe,
    packets: Vec<(u64, String)>,
}

async fn lab(n: u32) -> Lab {
    lab_with(n, ServerLimits::default()).await
}

async fn lab_with(n: u32, limits: ServerLimits) -> Lab {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("in.pcap");
    let packets = synthetic_capture(&pcap, n, 0);
    let tls = dir.path().join("tls");
    generate_pki(&tls, &["probe".into(), "client".into()], &[]).unwrap();
    let probe = Probe::start(ProbeConfig {
        name: "test-probe".into(),
        input: Input::Files(vec![pcap]),
        key: DEMO_KEY,
        tables: small_tables(),
    })
    .unwrap();
    assert!(probe.wait_input_done(Duration::from_secs(30)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = server_config(&TlsFiles::in_dir(&tls, "probe")).unwrap();
    tokio::spawn(serve(
        listener,
        router(probe.state()),
        Some(server),
        limits,
        async {
            let _ = rx.await;
        },
    ));
    Lab {
        _dir: dir,
        tls,
        addr,
        stop: Some(tx),
        _probe: probe,
        packets,
    }
}

impl Lab {
    fn client(&self) -> ServiceClient {
        ServiceClient::new(
            &self.addr,
            Some(client_config(&TlsFiles::in_dir(&self.tls, "client")).unwrap()),
        )
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_recorded_packet_is_found_and_strangers_are_not() {
    let lab = lab(5_000).await;
    let client = lab.client();
    // All 5,000 packets, in batches, each in its own ±1 s window: no false negatives.
    for chunk in lab.packets.chunks(1000) {
        let req = QueryRequest {
            digests: chunk.iter().map(|(_, d)| d.clone()).collect(),
            from_ns: Some(chunk[0].0 - 1_000_000_000),
            to_ns: Some(chunk.last().unwrap().0 + 1_000_000_000),
            table_id: None,
        };
        let resp = client.query(&req).await.unwrap();
        assert_eq!(resp.answers.len(), chunk.len());
        for (a, (ts, d)) in resp.answers.iter().zip(chunk) {
            assert_eq!(&a.digest, d);
            assert!(a.seen, "packet at {ts} not found");
            assert!(
                a.epochs.iter().any(|e| e.start_ns <= *ts && *ts < e.end_ns),
                "the packet's own epoch must be among the hits"
            );
            assert!(a.epochs.iter().all(|e| e.fpr > 0.0 && e.fpr < 1e-3));
        }
    }
    // Packets never sent: other digests (another capture's packets).
    let dir = tempfile::tempdir().unwrap();
    let others = synthetic_capture(&dir.path().join("o.pcap"), 4_000, 7);
    let req = QueryRequest {
        digests: others.iter().map(|(_, d)| d.clone()).collect::<Vec<_>>()[..MAX_BATCH.min(4000)]
            .to_vec(),
        from_ns: None,
        to_ns: None,
        table_id: None,
    };
    let resp = client.query(&req).await.unwrap();
    let false_hits = resp.answers.iter().filter(|a| a.seen).count();
    // Expected false hits: 4,000 × P(match in any of the searched epochs).
    let expected = 4000.0 * resp.false_match_probability;
    assert!(resp.epochs_searched >= 5, "{}", resp.epochs_searched);
    assert!(
        (false_hits as f64) <= expected + 4.0 * expected.sqrt() + 3.0,
        "{false_hits} false hits, {expected:.2} expected"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_window_limits_the_search() {
    let lab = lab(3_000).await;
    let (ts, d) = lab.packets[2500].clone(); // 2.5 s into the capture
    let mut req = QueryRequest {
        digests: vec![d],
        from_ns: Some(T0),
        to_ns: Some(T0 + 1_500_000_000),
        table_id: None,
    };
    let resp = lab.client().query(&req).await.unwrap();
    assert!(
        !resp.answers[0].seen,
        "outside the window it must not be found"
    );
    req.from_ns = Some(ts - 1);
    req.to_ns = Some(ts + 1);
    assert!(lab.client().query(&req).await.unwrap().answers[0].seen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_a_certificate_is_refused() {
    let lab = lab(10).await;
    let anon = ServiceClient::new(
        &lab.addr,
        Some(anonymous_client_config(&lab.tls.join("ca.pem")).unwrap()),
    );
    let err = anon.status().await.unwrap_err();
    assert!(
        matches!(err, ClientError::Tls { .. } | ClientError::Http { .. }),
        "{err}"
    );
    // A client whose certificate comes from another CA is refused as well.
    let other = tempfile::tempdir().unwrap();
    generate_pki(other.path(), &["client".into()], &[]).unwrap();
    let mut files = TlsFiles::in_dir(other.path(), "client");
    files.ca = lab.tls.join("ca.pem"); // trusts the probe, but is not trusted by it
    let stranger = ServiceClient::new(&lab.addr, Some(client_config(&files).unwrap()));
    assert!(stranger.status().await.is_err());
    // Plaintext HTTP to a TLS port gets nothing useful.
    let plain = ServiceClient::new(&lab.addr, None).with_timeout(Duration::from_secs(3));
    assert!(plain.status().await.is_err());
    // And the service still serves its members.
    let st = lab.client().status().await.unwrap();
    assert_eq!(st.digested, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_queries_get_clear_errors_and_the_service_keeps_running() {
    let lab = lab(100).await;
    let c = lab.client();
    let status_of = |r: Result<serde_json::Value, ClientError>| match r {
        Err(ClientError::Status { status, body, .. }) => (status, body),
        other => panic!("expected an error status, got {other:?}"),
    };
    // Too many digests.
    let big = QueryRequest {
        digests: vec!["00".repeat(16); MAX_BATCH + 1],
        from_ns: None,
        to_ns: None,
        table_id: None,
    };
    let (s, body) = status_of(c.call("POST", "/v1/query", Some(&big)).await);
    assert_eq!(s, 400);
    assert!(body.contains("at most"), "{body}");
    // Not hex.
    let bad = QueryRequest {
        digests: vec!["zz".repeat(16)],
        from_ns: None,
        to_ns: None,
        table_id: None,
    };
    let (s, body) = status_of(c.call("POST", "/v1/query", Some(&bad)).await);
    assert_eq!(s, 400);
    assert!(body.contains("digests[0]"), "{body}");
    // The same digest twice.
    let dup = QueryRequest {
        digests: vec![lab.packets[1].1.clone(), lab.packets[1].1.clone()],
        from_ns: None,
        to_ns: None,
        table_id: None,
    };
    let (s, body) = status_of(c.call("POST", "/v1/query", Some(&dup)).await);
    assert_eq!(s, 400);
    assert!(body.contains("repeats"), "{body}");
    // Inverted window.
    let inv = QueryRequest {
        digests: vec!["00".repeat(16)],
        from_ns: Some(10),
        to_ns: Some(5),
        table_id: None,
    };
    assert_eq!(
        status_of(c.call("POST", "/v1/query", Some(&inv)).await).0,
        400
    );
    // Unknown field (a client trying to send packet bytes, say).
    let extra =
        serde_json::json!({"digests": ["00000000000000000000000000000000"], "packet": "4500"});
    assert!(matches!(
        status_of(c.call("POST", "/v1/query", Some(&extra)).await).0,
        400 | 422
    ));
    // Oversized body: 1 MiB of digests.
    let huge = serde_json::json!({"digests": vec!["0".repeat(32); 40_000]});
    match c
        .call::<_, serde_json::Value>("POST", "/v1/query", Some(&huge))
        .await
    {
        Err(ClientError::Status { status, .. }) => assert_eq!(status, 413),
        // The server may close before the client has written the whole body.
        Err(ClientError::Http { .. }) => {}
        other => panic!("an oversized body must be refused, got {other:?}"),
    }
    // Still alive and correct.
    let ok = QueryRequest {
        digests: vec![lab.packets[3].1.clone()],
        from_ns: None,
        to_ns: None,
        table_id: None,
    };
    assert!(c.query(&ok).await.unwrap().answers[0].seen);
    let metrics = c.get_text("/metrics").await.unwrap();
    assert!(metrics.contains("ashiato_probe_packets_digested_total{probe=\"test-probe\"} 100"));
    assert!(metrics.contains("ashiato_probe_current_fpr"));
}

#[test]
fn plaintext_only_on_loopback() {
    assert!(check_insecure_listen(&"127.0.0.1:7000".parse().unwrap()).is_ok());
    assert!(check_insecure_listen(&"[::1]:7000".parse().unwrap()).is_ok());
    assert!(check_insecure_listen(&"0.0.0.0:7000".parse().unwrap()).is_err());
    assert!(check_insecure_listen(&"192.0.2.1:7000".parse().unwrap()).is_err());
}

#[test]
fn another_key_gives_another_table_id() {
    let k: Key = "00112233445566778899aabbccddeeff".parse().unwrap();
    assert_ne!(k.table_id(), DEMO_KEY.table_id());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_from_one_address_cannot_hold_the_service() {
    let limits = ServerLimits {
        per_ip: 4,
        handshake_timeout: Duration::from_millis(300),
        ..ServerLimits::default()
    };
    let lab = lab_with(10, limits).await;
    // Four silent TCP connections: the fifth connection from this address is refused.
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(tokio::net::TcpStream::connect(&lab.addr).await.unwrap());
    }
    // The accept queue is first come, first served: this is the fifth connection.
    assert!(
        lab.client().status().await.is_err(),
        "over the per-address limit"
    );
    // The silent ones are dropped at the handshake deadline; the service serves again.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let st = loop {
        match lab.client().status().await {
            Ok(st) => break st,
            Err(e) if std::time::Instant::now() > deadline => panic!("never served again: {e}"),
            Err(_) => tokio::task::yield_now().await,
        }
    };
    assert_eq!(st.digested, 10);
    drop(idle);
}
