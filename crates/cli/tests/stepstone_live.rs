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
//! Port 22 gets a banner (`--app-banner 22`): the direct host answers it like an SSH scanner
//! and its application-level time is measured; the attacker closes at once and is not timed.
//! Its Prometheus endpoint (`--metrics-listen` on the sensor's loopback) is scraped before and
//! after the connections: the counters move.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use ashiato_capture::netns::{Netns, in_netns, unique_name, veth_pair};

const DARK4: &str = "203.0.113.9:22";
const DARK6: &str = "[2001:db8:dead::9]:22";

fn connect_n(ns: &Netns, to: &str, n: usize) {
    let to: SocketAddr = to.parse().unwrap();
    in_netns(ns.name(), move || {
        for _ in 0..n {
            let s = TcpStream::connect_timeout(&to, Duration::from_secs(7)).expect("handshake");
            drop(s);
            std::thread::sleep(Duration::from_millis(200));
        }
    })
    .unwrap();
}

/// Connects, reads the banner line, answers it, waits for the responder's RST.
fn answer_banners(ns: &Netns, to: &str, n: usize) {
    let to: SocketAddr = to.parse().unwrap();
    in_netns(ns.name(), move || {
        for _ in 0..n {
            let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(7)).expect("handshake");
            s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 128];
            while !got.contains(&b'\n') {
                let k = s.read(&mut buf).expect("the banner");
                assert!(k > 0, "closed before the banner");
                got.extend_from_slice(&buf[..k]);
            }
            assert!(got.starts_with(b"SSH-2.0-"), "{got:?}");
            s.write_all(b"SSH-2.0-test\r\n").unwrap();
            // The responder ends the exchange with a RST.
            assert!(matches!(s.read(&mut buf), Ok(0) | Err(_)));
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
        .args(["--app-banner", "22"])
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
    connect_n(&a, DARK4, 3);
    answer_banners(&d, DARK4, 3);
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
        "ashiato_stepstone_ring_drops_total 0\n",
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
        // It closed without answering the banner: no application-level time.
        assert!(l["tapp_us"].is_null(), "{l}");
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
        assert_eq!(l["app"], "timed", "{l}");
        assert!(l["tapp_us"].as_u64().is_some(), "{l}");
        assert_ne!(l["verdict"]["decision"], "relay", "{l}");
    }
    let m = std::fs::read_to_string(&metrics).unwrap();
    for want in [
        "ashiato_stepstone_syn_acks_total 6",
        "ashiato_stepstone_measured_total 6",
        "ashiato_stepstone_verdicts_total{decision=\"relay\"} 3",
        "ashiato_stepstone_app_sent_total 6",
        "ashiato_stepstone_app_timed_total 3",
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
        let relayed = s
            .stepstone_connections(Some("10.201.0.1"), None, 100)
            .await
            .unwrap();
        let direct = s
            .stepstone_connections(Some("10.203.0.2"), None, 100)
            .await
            .unwrap();
        (relayed, direct)
    });
    let (records, direct_records) = records;
    // The direct host answered the banner: its application-level times are kept too.
    assert_eq!(direct_records.len(), 3);
    assert!(
        direct_records
            .iter()
            .all(|r| r.tapp_us.is_some() && r.app.as_deref() == Some("timed")),
        "{direct_records:?}"
    );
    assert_eq!(records.len(), 3);
    assert!(
        records
            .iter()
            .all(|r| r.verdict == "relay" && r.signals.contains("hops"))
    );
}

/// Runs the responder in `s` with `args` while `clients` runs; returns its JSON lines.
fn responder_lines(s: &Netns, args: &[&str], clients: impl FnOnce()) -> Vec<serde_json::Value> {
    let mut child = Command::new("ip")
        .args([
            "netns",
            "exec",
            s.name(),
            env!("CARGO_BIN_EXE_ashiato"),
            "stepstone",
        ])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let drain = std::thread::spawn(move || {
        let mut all = String::new();
        for l in BufReader::new(err).lines().map_while(Result::ok) {
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
    clients();
    let out = child.wait_with_output().unwrap();
    let err = drain.join().unwrap();
    assert!(out.status.success(), "{err}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Adds an IPv6 address (no duplicate detection, so it is usable at once) and turns IPv6 back
/// on for the interface (`veth_pair` turns it off).
fn v6(ns: &Netns, ifname: &str, addr: &str) {
    ns.exec(&[
        "sysctl",
        "-qw",
        &format!("net.ipv6.conf.{ifname}.disable_ipv6=0"),
    ])
    .unwrap();
    ns.exec(&["ip", "-6", "addr", "add", addr, "dev", ifname, "nodad"])
        .unwrap();
}

/// The same over IPv6: a NAT66 relay and a routed direct host, the darknet 2001:db8:dead::/48
/// routed to the sensor. Tp, ICMPv6 echoes (Ta), the SYN probe's RST (Fa) and the banner
/// exchange (Tapp) all work; the NATed attacker's extra hop is seen.
#[test]
fn ipv6_nat_relay_is_flagged_and_a_routed_direct_source_is_not() {
    let s = Netns::new(&unique_name("s6s")).expect("ip netns add (root needed)");
    let r = Netns::new(&unique_name("s6r")).unwrap();
    let a = Netns::new(&unique_name("s6a")).unwrap();
    let d = Netns::new(&unique_name("s6d")).unwrap();
    let s_if = format!("s6{}", unique_name(""));
    veth_pair(
        &s,
        &s_if,
        &r,
        "r0",
        Some(("10.204.0.2/24", "10.204.0.1/24")),
    )
    .unwrap();
    veth_pair(&a, "a0", &r, "r1", None).unwrap();
    veth_pair(&d, "d0", &r, "r2", None).unwrap();
    for (ns, ifname, addr) in [
        (&s, s_if.as_str(), "fd00:1::2/64"),
        (&r, "r0", "fd00:1::1/64"),
        (&a, "a0", "fd00:2::2/64"),
        (&r, "r1", "fd00:2::1/64"),
        (&d, "d0", "fd00:3::2/64"),
        (&r, "r2", "fd00:3::1/64"),
    ] {
        v6(ns, ifname, addr);
    }
    for (ns, gw) in [(&s, "fd00:1::1"), (&a, "fd00:2::1"), (&d, "fd00:3::1")] {
        ns.exec(&["ip", "-6", "route", "add", "default", "via", gw])
            .unwrap();
    }
    r.exec(&["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"])
        .unwrap();
    r.exec(&[
        "ip",
        "-6",
        "route",
        "add",
        "2001:db8:dead::/48",
        "via",
        "fd00:1::2",
    ])
    .unwrap();
    r.exec(&[
        "ip6tables",
        "-w",
        "-t",
        "nat",
        "-A",
        "POSTROUTING",
        "-s",
        "fd00:2::/64",
        "-o",
        "r0",
        "-j",
        "MASQUERADE",
    ])
    .unwrap();
    let args = [
        "--iface",
        &s_if,
        "--darknet",
        "2001:db8:dead::/48",
        "--local",
        "10.204.0.2",
        "--local6",
        "fd00:1::2",
        "--pings",
        "10",
        "--duration",
        "6s",
        "--app-banner",
        "22",
    ];
    let lines = responder_lines(&s, &args, || {
        connect_n(&a, DARK6, 3);
        answer_banners(&d, DARK6, 3);
    });
    let of = |src: &str| -> Vec<&serde_json::Value> {
        lines.iter().filter(|l| l["src"] == src).collect()
    };
    let relayed = of("fd00:1::1");
    let direct = of("fd00:3::2");
    assert_eq!(relayed.len(), 3, "{lines:#?}");
    assert_eq!(direct.len(), 3, "{lines:#?}");
    for l in relayed.iter().chain(&direct) {
        assert_eq!(l["dst"], "2001:db8:dead::9", "{l}");
        assert!(l["tp_us"].as_u64().is_some(), "{l}");
        // ICMPv6 echoes answered, and the SYN probe answered (no listener: a RST).
        assert!(l["ta_us"]["n"].as_u64().unwrap() >= 5, "{l}");
        assert!(l["fa"].is_string() || l["fa_rst_ttl"].is_u64(), "{l}");
        assert!(l["fp"].as_str().unwrap().starts_with("6:"), "{l}");
    }
    for l in &relayed {
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
        assert_eq!(l["app"], "timed", "{l}");
        assert!(l["tapp_us"].as_u64().is_some(), "{l}");
        assert_ne!(l["verdict"]["decision"], "relay", "{l}");
    }
}

/// An IPv6 darknet without an IPv6 probe source is refused at start, by name.
#[test]
fn ipv6_darknet_without_local6_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_ashiato"))
        .args(["stepstone", "--iface", "lo", "--darknet", "2001:db8::/32"])
        .args(["--local", "127.0.0.1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--local6"), "{err}");
}

/// A client-speaks-first port (`--app-reply 8080`): the responder answers the first request
/// with the built-in HTTP reply and times the client's next request.
#[test]
fn reply_port_times_the_next_request() {
    let s = Netns::new(&unique_name("srs")).expect("ip netns add (root needed)");
    let c = Netns::new(&unique_name("src")).unwrap();
    let s_if = format!("sr{}", unique_name(""));
    veth_pair(
        &s,
        &s_if,
        &c,
        "c0",
        Some(("10.205.0.2/24", "10.205.0.1/24")),
    )
    .unwrap();
    c.exec(&["ip", "route", "add", "203.0.113.0/24", "via", "10.205.0.2"])
        .unwrap();
    let args = [
        "--iface",
        &s_if,
        "--darknet",
        "203.0.113.0/24",
        "--local",
        "10.205.0.2",
        "--duration",
        "5s",
        "--app-reply",
        "8080",
    ];
    let lines = responder_lines(&s, &args, || {
        in_netns(c.name(), || {
            for _ in 0..3 {
                let to: SocketAddr = "203.0.113.9:8080".parse().unwrap();
                let mut t = TcpStream::connect_timeout(&to, Duration::from_secs(7)).unwrap();
                t.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
                t.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
                let mut buf = [0u8; 256];
                let k = t.read(&mut buf).expect("the reply");
                assert!(buf[..k].starts_with(b"HTTP/1.1 200 OK"), "{:?}", &buf[..k]);
                t.write_all(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
                    .unwrap();
                assert!(matches!(t.read(&mut buf), Ok(0) | Err(_)));
                std::thread::sleep(Duration::from_millis(100));
            }
        })
        .unwrap();
    });
    assert_eq!(lines.len(), 3, "{lines:#?}");
    for l in &lines {
        assert_eq!(l["dport"], 8080, "{l}");
        assert_eq!(l["app"], "timed", "{l}");
        assert!(l["tapp_us"].as_u64().is_some(), "{l}");
    }
}
