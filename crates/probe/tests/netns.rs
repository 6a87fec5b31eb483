//! End to end across network namespaces (needs root; CI runs as root, so this test fails
//! rather than skips when namespaces cannot be made).
//!
//! Host A sends IPv4 packets with a raw socket over a veth link to host B. The probe runs in
//! B, capturing live from its end of the link, and serves queries over mutual TLS on B's
//! address. A queries it from its own namespace: every packet it sent is found, packets it
//! never sent are not found beyond the false-positive rate the probe states.

use std::net::Ipv4Addr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ashiato_capture::live::LiveConfig;
use ashiato_capture::netns::{Netns, spawn_in_netns, unique_name, veth_pair};
use ashiato_digest::DEMO_KEY;
use ashiato_net::client::ServiceClient;
use ashiato_net::server::{ServerLimits, serve};
use ashiato_net::tls::{TlsFiles, client_config, generate_pki, server_config};
use ashiato_probe::api::{QueryRequest, router};
use ashiato_probe::{Input, Probe, ProbeConfig};
use ashiato_tables::{FilterKind, TablesConfig, theory};
use ashiato_wire::LinkType;
use ashiato_wire::build;

const A_ADDR: Ipv4Addr = Ipv4Addr::new(10, 231, 0, 1);
const B_ADDR: Ipv4Addr = Ipv4Addr::new(10, 231, 0, 2);
const SENT: u16 = 3000;

fn packet(i: u16, port: u16) -> Vec<u8> {
    let dg = build::udp(
        A_ADDR.into(),
        B_ADDR.into(),
        30000 + i % 500,
        port,
        &i.to_be_bytes(),
    );
    build::ipv4(A_ADDR, B_ADDR, 17, 64, 0, i.wrapping_add(1), &dg)
}

/// Sends IPv4 packets (header included) with a raw socket.
fn send_raw(packets: &[Vec<u8>]) -> std::io::Result<()> {
    // SAFETY: plain socket calls on a descriptor we own and close.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut sa: libc::sockaddr_in = std::mem::zeroed();
        sa.sin_family = libc::AF_INET as libc::sa_family_t;
        sa.sin_addr.s_addr = u32::from(B_ADDR).to_be();
        for (i, p) in packets.iter().enumerate() {
            let r = libc::sendto(
                fd,
                p.as_ptr().cast(),
                p.len(),
                0,
                (&sa as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as u32,
            );
            if r < 0 {
                let e = std::io::Error::last_os_error();
                libc::close(fd);
                return Err(e);
            }
            if i % 200 == 199 {
                // Pacing, not waiting for anything: stay far below the ring's capacity, since
                // this test is about correctness.
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        libc::close(fd);
    }
    Ok(())
}

#[test]
fn live_probe_in_one_namespace_answers_for_packets_sent_from_another() {
    let a = Netns::new(&unique_name("asha")).expect("creating a network namespace (root needed)");
    let b = Netns::new(&unique_name("ashb")).expect("creating a network namespace");
    let (ia, ib) = (unique_name("va"), unique_name("vb"));
    veth_pair(&a, &ia, &b, &ib, Some(("10.231.0.1/24", "10.231.0.2/24"))).expect("veth pair");
    let tls = tempfile::tempdir().unwrap();
    generate_pki(
        tls.path(),
        &["probe".into(), "client".into()],
        &[B_ADDR.to_string()],
    )
    .unwrap();

    // Host B: the probe and its API.
    let (addr_tx, addr_rx) = mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let tls_dir = tls.path().to_owned();
    let ib2 = ib.clone();
    let host_b = spawn_in_netns(b.name(), move || {
        let probe = Probe::start(ProbeConfig {
            name: "probe-b".into(),
            input: Input::Live {
                iface: ib2,
                cfg: LiveConfig::default(),
                // Two rings in one fanout group: every packet must still be found.
                threads: 2,
            },
            key: DEMO_KEY,
            tables: TablesConfig {
                epoch_ns: 1_000_000_000,
                retention_epochs: 30,
                params: theory::plan(FilterKind::Blocked, 10_000, 1e-4),
                table_id: 0,
                spill: None,
                prefault: false,
            },
        })
        .unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::bind((B_ADDR, 0)).await.unwrap();
            addr_tx.send(l.local_addr().unwrap()).unwrap();
            let cfg = server_config(&TlsFiles::in_dir(&tls_dir, "probe")).unwrap();
            serve(
                l,
                router(probe.state()),
                Some(cfg),
                ServerLimits::default(),
                async {
                    let _ = stop_rx.await;
                },
            )
            .await
            .unwrap();
            drop(probe);
        });
    })
    .unwrap();
    // The address is sent once `Probe::start` returned, and it opens every capture ring (bound
    // to the interface) before it returns: from then on the kernel queues each frame in a
    // ring, whether or not a capture thread is reading yet. No wait is needed before sending.
    let addr = addr_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("probe started");

    // Host A: send, then ask.
    let sent: Vec<Vec<u8>> = (0..SENT).map(|i| packet(i, 53)).collect();
    let unsent: Vec<Vec<u8>> = (0..SENT).map(|i| packet(i, 54)).collect();
    let tls_dir = tls.path().to_owned();
    let host_a = spawn_in_netns(a.name(), move || {
        send_raw(&sent).expect("raw socket send");
        let client = ServiceClient::new(
            &addr.to_string(),
            Some(client_config(&TlsFiles::in_dir(&tls_dir, "client")).unwrap()),
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            // Wait until the probe has recorded everything; past the deadline, ask anyway and
            // let the assertions below say what is missing.
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut pause = Duration::from_millis(1);
            while client.status().await.unwrap().digested < u64::from(SENT)
                && Instant::now() < deadline
            {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            let digests = |ps: &[Vec<u8>]| -> Vec<String> {
                ps.iter()
                    .map(|p| DEMO_KEY.digest_frame(LinkType::Raw, p).unwrap().to_string())
                    .collect()
            };
            let found = client
                .query(&QueryRequest {
                    digests: digests(&sent),
                    from_ns: None,
                    to_ns: None,
                    table_id: None,
                })
                .await
                .unwrap();
            let strangers = client
                .query(&QueryRequest {
                    digests: digests(&unsent),
                    from_ns: None,
                    to_ns: None,
                    table_id: None,
                })
                .await
                .unwrap();
            let status = client.status().await.unwrap();
            (found, strangers, status)
        })
    })
    .unwrap();
    let (found, strangers, status) = host_a.join().unwrap().unwrap();
    let _ = stop_tx.send(());
    host_b.join().unwrap().unwrap();

    let missing: Vec<_> = found
        .answers
        .iter()
        .filter(|x| !x.seen)
        .map(|x| &x.digest)
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {SENT} sent packets not found",
        missing.len()
    );
    let false_hits = strangers.answers.iter().filter(|x| x.seen).count() as f64;
    let expected = f64::from(SENT) * strangers.false_match_probability;
    assert!(
        false_hits <= expected + 4.0 * expected.sqrt() + 2.0,
        "{false_hits} unsent packets reported seen; {expected:.3} expected"
    );
    assert_eq!(status.kernel_drops, 0, "no kernel drops at this rate");
    assert!(status.frames_seen >= u64::from(SENT));
}
