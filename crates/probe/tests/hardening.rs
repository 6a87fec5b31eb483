//! What a hostile or mistaken peer can do to a probe service, on real sockets on loopback:
//! dribble a body, announce a huge one, open every slot, or answer from another federation's
//! tables.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ashiato_digest::{DEMO_KEY, Key};
use ashiato_net::client::{ClientError, ServiceClient};
use ashiato_net::server::{ServerLimits, serve};
use ashiato_net::tls::{TlsFiles, client_config, generate_pki, server_config, server_name};
use ashiato_probe::api::{ProbeState, QueryRequest, router};
use ashiato_probe::metrics::IngestCounters;
use ashiato_tables::{DigestTables, FilterKind, TablesConfig, theory};
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// How long a test waits for something the server must do promptly; far above the limits
/// the tests set, far below the defaults they replace.
const PATIENCE: Duration = Duration::from_secs(5);

/// Empty tables of `key`: enough to answer queries and status.
fn state(key: Key) -> Arc<ProbeState> {
    let tables = DigestTables::new(TablesConfig {
        epoch_ns: 1_000_000_000,
        retention_epochs: 4,
        params: theory::plan(FilterKind::Blocked, 1_000, 1e-3),
        table_id: key.table_id(),
        spill: None,
        prefault: false,
    })
    .unwrap();
    Arc::new(ProbeState {
        name: "hardening".into(),
        source: "none".into(),
        table_id: key.table_id(),
        tables,
        counters: Arc::new(IngestCounters::default()),
        started: Instant::now(),
        answer_budget: Arc::new(tokio::sync::Semaphore::new(
            ashiato_probe::api::ANSWER_BUDGET_BYTES,
        )),
    })
}

/// A running service; stops when dropped.
struct Service {
    addr: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start(host: &str, tls: Option<Arc<ServerConfig>>, limits: ServerLimits) -> Service {
    let listener = tokio::net::TcpListener::bind((host, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(
        listener,
        router(state(DEMO_KEY)),
        tls,
        limits,
        async {
            let _ = rx.await;
        },
    ));
    Service { addr, _stop: tx }
}

/// Reads until the end of the first line (or EOF), within [`PATIENCE`].
async fn first_line<S: AsyncRead + Unpin>(s: &mut S) -> String {
    let mut buf = Vec::new();
    let read = async {
        let mut b = [0u8; 1];
        while !buf.ends_with(b"\r\n") && buf.len() < 1024 {
            if s.read(&mut b).await.unwrap_or(0) == 0 {
                break;
            }
            buf.push(b[0]);
        }
    };
    tokio::time::timeout(PATIENCE, read)
        .await
        .expect("the server must answer promptly");
    String::from_utf8_lossy(&buf).trim_end().to_string()
}

/// Reads to EOF (the server closed), within [`PATIENCE`].
async fn until_closed<S: AsyncRead + Unpin>(s: &mut S) -> Vec<u8> {
    let mut rest = Vec::new();
    tokio::time::timeout(PATIENCE, async {
        let mut b = [0u8; 4096];
        loop {
            match s.read(&mut b).await {
                Ok(0) | Err(_) => break,
                Ok(n) => rest.extend_from_slice(&b[..n]),
            }
        }
    })
    .await
    .expect("the server must close the connection");
    rest
}

/// Headers of a query whose body is `len` bytes long, of which the caller sends some.
fn query_head(len: u64, extra: &str) -> String {
    format!(
        "POST /v1/query HTTP/1.1\r\nHost: probe\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n{extra}\r\n"
    )
}

/// Connects from `local` (any 127/8 address is ours on loopback) to `to`.
async fn connect_from(local: &str, to: SocketAddr) -> TcpStream {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(format!("{local}:0").parse().unwrap()).unwrap();
    s.connect(to).await.unwrap()
}

async fn healthz<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S) -> String {
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    first_line(s).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_answered_from_another_federations_tables_is_refused() {
    let svc = start("127.0.0.1", None, ServerLimits::default()).await;
    let client = ServiceClient::new(&svc.addr.to_string(), None);
    let req = QueryRequest {
        digests: vec!["00".repeat(16)],
        from_ns: None,
        to_ns: None,
        table_id: None,
    };
    let ours = client
        .query_expecting(&req, DEMO_KEY.table_id())
        .await
        .unwrap();
    assert!(!ours.answers[0].seen);
    let other: Key = "00112233445566778899aabbccddeeff".parse().unwrap();
    match client.query_expecting(&req, other.table_id()).await {
        Err(e @ ClientError::ForeignTable { .. }) => {
            let ClientError::ForeignTable {
                expected, found, ..
            } = &e
            else {
                unreachable!()
            };
            assert_eq!(expected, &format!("{:016x}", other.table_id()));
            assert_eq!(found, &format!("{:016x}", DEMO_KEY.table_id()));
            assert!(e.to_string().contains("another federation key"), "{e}");
        }
        other => panic!("a foreign table's answer must be refused, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_content_length_gets_413_before_100_continue() {
    let svc = start("127.0.0.1", None, ServerLimits::default()).await;
    let mut s = TcpStream::connect(svc.addr).await.unwrap();
    let head = query_head(1 << 40, "Expect: 100-continue\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    let line = first_line(&mut s).await;
    assert!(line.starts_with("HTTP/1.1 413"), "first line {line:?}");
    let rest = String::from_utf8_lossy(&until_closed(&mut s).await).to_string();
    assert!(rest.contains("at most 262144"), "{rest}");
    // Also without Expect: the body is never read, the connection is closed.
    let mut s = TcpStream::connect(svc.addr).await.unwrap();
    s.write_all(query_head(262_145, "").as_bytes())
        .await
        .unwrap();
    assert!(first_line(&mut s).await.starts_with("HTTP/1.1 413"));
    until_closed(&mut s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_is_cut_off_at_the_limit() {
    let limits = ServerLimits {
        max_body_bytes: 1000,
        ..ServerLimits::default()
    };
    let svc = start("127.0.0.1", None, limits).await;
    let mut s = TcpStream::connect(svc.addr).await.unwrap();
    let head = "POST /v1/query HTTP/1.1\r\nHost: probe\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    s.write_all(head.as_bytes()).await.unwrap();
    // 2,000 bytes in 100-byte chunks; the server may close before all are written.
    for _ in 0..20 {
        let chunk = format!("64\r\n{}\r\n", "a".repeat(100));
        if s.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let line = first_line(&mut s).await;
    assert!(line.starts_with("HTTP/1.1 413"), "first line {line:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dribbled_body_gets_408_in_plaintext() {
    let limits = ServerLimits {
        body_timeout: Duration::from_millis(300),
        ..ServerLimits::default()
    };
    let svc = start("127.0.0.1", None, limits).await;
    let mut s = TcpStream::connect(svc.addr).await.unwrap();
    s.write_all(query_head(100, "").as_bytes()).await.unwrap();
    s.write_all(b"{\"digests\":").await.unwrap();
    let line = first_line(&mut s).await;
    assert!(line.starts_with("HTTP/1.1 408"), "first line {line:?}");
    until_closed(&mut s).await;
    // A well-behaved client is served afterwards.
    let mut ok = TcpStream::connect(svc.addr).await.unwrap();
    assert!(healthz(&mut ok).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dribbled_body_gets_408_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    generate_pki(dir.path(), &["probe".into(), "client".into()], &[]).unwrap();
    let server = server_config(&TlsFiles::in_dir(dir.path(), "probe")).unwrap();
    let client = client_config(&TlsFiles::in_dir(dir.path(), "client")).unwrap();
    let limits = ServerLimits {
        body_timeout: Duration::from_millis(300),
        ..ServerLimits::default()
    };
    let svc = start("127.0.0.1", Some(server), limits).await;
    let tcp = TcpStream::connect(svc.addr).await.unwrap();
    let mut s = tokio_rustls::TlsConnector::from(client)
        .connect(server_name("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap();
    s.write_all(query_head(100, "").as_bytes()).await.unwrap();
    s.write_all(b"{\"digests\":").await.unwrap();
    s.flush().await.unwrap();
    let line = first_line(&mut s).await;
    assert!(line.starts_with("HTTP/1.1 408"), "first line {line:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dribbling_peers_hold_only_their_share_of_the_slots() {
    let limits = ServerLimits {
        max_connections: 8,
        per_ip: 4,
        body_timeout: Duration::from_secs(30),
        ..ServerLimits::default()
    };
    let svc = start("127.0.0.1", None, limits).await;
    // One peer opens as many dribbling uploads as it may, and one more.
    let mut held = Vec::new();
    for _ in 0..5 {
        let mut s = connect_from("127.0.0.1", svc.addr).await;
        let _ = s.write_all(query_head(100, "").as_bytes()).await;
        held.push(s);
    }
    // The fifth is closed without an answer...
    let fifth = held.last_mut().unwrap();
    assert_eq!(first_line(fifth).await, "", "over the per-peer cap");
    // ...and another peer is served while the first four still hold their slots.
    let mut other = connect_from("127.0.0.2", svc.addr).await;
    assert!(healthz(&mut other).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_that_let_one_peer_hold_every_slot_are_refused() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let limits = ServerLimits {
        max_connections: 8,
        per_ip: 8,
        ..ServerLimits::default()
    };
    let r = tokio::time::timeout(
        PATIENCE,
        serve(
            listener,
            router(state(DEMO_KEY)),
            None,
            limits,
            std::future::pending(),
        ),
    )
    .await
    .expect("refused at once");
    let e = r.unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("per_ip"), "{e}");
}

/// The full message of an error: itself and its causes.
fn full(e: &dyn std::error::Error) -> String {
    ashiato_probe::error_chain(e)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_federations_certificates_are_named_as_such() {
    let (ours, theirs) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for d in [&ours, &theirs] {
        generate_pki(d.path(), &["probe".into(), "client".into()], &[]).unwrap();
    }
    let server = server_config(&TlsFiles::in_dir(theirs.path(), "probe")).unwrap();
    let svc = start("127.0.0.1", Some(server), ServerLimits::default()).await;
    let addr = svc.addr.to_string();
    // Our client, their probe: their certificate is from an issuer we do not know.
    let client = client_config(&TlsFiles::in_dir(ours.path(), "client")).unwrap();
    let e = ServiceClient::new(&addr, Some(client))
        .status()
        .await
        .unwrap_err();
    let msg = full(&e);
    assert!(matches!(e, ClientError::ForeignServer { .. }), "{msg}");
    assert!(
        msg.contains("not from our federation CA") && msg.contains("UnknownIssuer"),
        "{msg}"
    );
    assert!(
        !msg.contains("DecryptError") && !msg.contains("BadSignature"),
        "{msg}"
    );
    // Trusting their CA but presenting our certificate: they refuse it as from an unknown CA.
    let mut files = TlsFiles::in_dir(ours.path(), "client");
    files.ca = theirs.path().join("ca.pem");
    let e = ServiceClient::new(&addr, Some(client_config(&files).unwrap()))
        .status()
        .await
        .unwrap_err();
    let msg = full(&e);
    assert!(matches!(e, ClientError::ForeignClient { .. }), "{msg}");
    assert!(!msg.contains("DecryptError"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_errors_name_their_cause_once() {
    // A port with nothing behind it: bind, note the port, close.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let e = ServiceClient::new(&format!("127.0.0.1:{port}"), None)
        .status()
        .await
        .unwrap_err();
    let msg = full(&e);
    let cause = std::error::Error::source(&e).unwrap().to_string();
    assert_eq!(msg.matches(&cause).count(), 1, "{msg}");
}
