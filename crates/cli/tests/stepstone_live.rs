//! The live darknet responder between network namespaces (needs root; CI runs as root, so
//! this fails rather than skips without it).
//!
//! sensor ── relay ─┬─ attacker (NATed by the relay: MASQUERADE)
//!                  └─ direct   (routed, keeps its own address)
//!
//! The darknet 203.0.113.0/24 is routed to the sensor, which has no address in it (its stack
//! stays silent). `ashiato stepstone --iface` answers the SYNs, pings and SYN-probes each
//! source. The attacker's connections come from the relay's address with one more hop than
//! the relay's own answers: flagged (signal `hops`). The direct host's connections are not.
//! Its Prometheus endpoint (`--metrics-listen` on the sensor's loopback) is scraped before and
//! after the connections: the counters move.

mod common;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use ashiato_capture::netns::{Netns, in_netns, unique_name, veth_pair};

fn connect_n(ns: &Netns, n: usize) {
    in_netns(ns.name(), move || {
        let to: SocketAddr = "203.0.113.9:22".parse().unwrap();
        for _ in 0..n {
            let s = TcpStream::connect_timeout(&to, Duration::from_secs(7)).expect("handshake");
            drop(s);
            std::thread::sleep(Duration::from_millis(200));
        }
    })
    .unwrap();
}

#[test]
fn nat_relay_is_flagged_and_a_routed_direct_source_is_not() {
    let s = Netns::new(&unique_name("sss")).expect("ip netns add (root needed)");
    let r = Netns::new(&unique_name("ssr")).unwrap();
    let a = Netns::new(&unique_name("ssa")).unwrap();
    let d = Netns::new(&unique_name("ssd")).unwrap();
    let tag = unique_name("");
    let s_if = format!("ss{tag}");
    veth_pair(
        &s,
        &s_if,
        &r,
        "r0",
        Some(("10.201.0.2/24", "10.201.0.1/24")),
    )
    .unwrap();
    veth_pair(&a, "a0", &r, "r1", Some(("10.202.0.2/24", "10.202.0.1/24"))).unwrap();
    veth_pair(&d, "d0", &r, "r2", Some(("10.203.0.2/24", "10.203.0.1/24"))).unwrap();
    s.exec(&["ip", "route", "add", "default", "via", "10.201.0.1"])
        .unwrap();
    a.exec(&["ip", "route", "add", "default", "via", "10.202.0.1"])
        .unwrap();
    d.exec(&["ip", "route", "add", "default", "via", "10.203.0.1"])
        .unwrap();
    r.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]).unwrap();
    r.exec(&["ip", "route", "add", "203.0.113.0/24", "via", "10.201.0.2"])
        .unwrap();
    r.exec(&[
        "iptables",
        "-w",
        "-t",
        "nat",
        "-A",
        "POSTROUTING",
        "-s",
        "10.202.0.0/24",
        "-o",
        "r0",
        "-j",
        "MASQUERADE",
    ])
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let metrics = dir.path().join("stepstone.prom");
    let store = dir.path().join("results.db");
    let mut child = Command::new("ip")
        .args(["netns", "exec", s.name(), env!("CARGO_BIN_EXE_ashiato")])
        .args(["stepstone", "--iface", &s_if, "--darknet", "203.0.113.0/24"])
        .args(["--local", "10.201.0.2", "--pings", "10", "--duration", "6s"])
        .arg("--metrics-file")
        .arg(&metrics)
        .args(["--metrics-listen", "127.0.0.1:0", "--dev-insecure"])
        .arg("--store")
        .arg(&store)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the responder's ready line, then keep draining its stderr.
    let err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let drain = std::thread::spawn(move || {
        let mut all = String::new();
        for l in BufReader::new(err).lines().map_while(Result::ok) {
            if let Some(a) = l.strip_prefix("metrics on ") {
                let _ = addr_tx.send(a.to_string());
            }
            if l.contains("answering SYNs") {
                let _ = tx.send(());
            }
            all.push_str(&l);
            all.push('\n');
        }
        all
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("responder ready");
    let maddr = addr_rx
        .recv_timeout(Duration::ZERO)
        .expect("metrics address");
    let scrape = |what: &str| -> String {
        let maddr = maddr.clone();
        let (status, page) =
            in_netns(s.name(), move || common::http_get(&maddr, "/metrics")).unwrap();
        assert_eq!(status, 200, "{what}: {page}");
        page
    };
    let before = scrape("before");
    assert!(
        before.contains("ashiato_stepstone_syns_total 0\n"),
        "{before}"
    );
    connect_n(&a, 3);
    connect_n(&d, 3);
    // The last connection is decided after its echoes and the grace second.
    let during = common::wait_for("six verdicts on /metrics", Duration::from_secs(4), || {
        let page = scrape("after the connections");
        let decided: u64 = page
            .lines()
            .filter_map(|l| l.strip_prefix("ashiato_stepstone_verdicts_total{"))
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<u64>().ok())
            .sum();
        (decided == 6).then_some(page)
    });
    for want in [
        "ashiato_stepstone_syn_acks_total 6\n",
        "ashiato_stepstone_measured_total 6\n",
        "ashiato_stepstone_syn_probes_total 6\n",
        "ashiato_stepstone_verdicts_total{decision=\"relay\"} 3\n",
        "ashiato_stepstone_signals_total{signal=\"hops\"} 3\n",
        "ashiato_stepstone_pending 0\n",
    ] {
        assert!(during.contains(want), "{want} not in\n{during}");
    }
    let echoes = |page: &str| -> u64 {
        page.lines()
            .find_map(|l| l.strip_prefix("ashiato_stepstone_echoes_sent_total "))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    assert!(echoes(&during) >= 6 * 5, "{during}");
    let out = child.wait_with_output().unwrap();
    let err = drain.join().unwrap();
    assert!(out.status.success(), "{err}");
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of = |src: &str| -> Vec<&serde_json::Value> {
        lines.iter().filter(|l| l["src"] == src).collect()
    };
    let relayed = of("10.201.0.1");
    let direct = of("10.203.0.2");
    assert_eq!(relayed.len(), 3, "{lines:#?}");
    assert_eq!(direct.len(), 3, "{lines:#?}");
    for l in &relayed {
        assert!(l["tp_us"].as_u64().is_some(), "{l}");
        assert!(l["ta_us"]["n"].as_u64().unwrap() >= 5, "{l}");
        assert_eq!(l["verdict"]["decision"], "relay", "{l}");
        let sig: Vec<&str> = l["verdict"]["signals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["signal"].as_str().unwrap())
            .collect();
        assert!(sig.contains(&"hops"), "{l}");
    }
    for l in &direct {
        assert!(l["tp_us"].as_u64().is_some(), "{l}");
        assert_ne!(l["verdict"]["decision"], "relay", "{l}");
    }
    let m = std::fs::read_to_string(&metrics).unwrap();
    for want in [
        "ashiato_stepstone_syn_acks_total 6",
        "ashiato_stepstone_measured_total 6",
        "ashiato_stepstone_verdicts_total{decision=\"relay\"} 3",
    ] {
        assert!(m.contains(want), "{want} not in\n{m}");
    }
    // The records are in the store, one per connection.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let records = rt.block_on(async {
        let s = ashiato_store::Store::open(store.to_str().unwrap())
            .await
            .unwrap();
        s.stepstone_connections(Some("10.201.0.1"), None, 100)
            .await
            .unwrap()
    });
    assert_eq!(records.len(), 3);
    assert!(
        records
            .iter()
            .all(|r| r.verdict == "relay" && r.signals.contains("hops"))
    );
}
