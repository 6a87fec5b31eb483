//! The inline DarkFlow gateway end to end, in network namespaces (needs root; CI runs as
//! root, so these tests fail rather than skip when namespaces or NFQUEUE are missing).
//!
//! ```text
//!  client 10.x.1.2 ── gw (ashiato darkflow inline) ── server 10.x.2.2 (answers)
//!                        │                                  10.x.2.3 (silent: SYNs dropped)
//!                        │                                  10.x.2.4 (answers after 2 s:
//!                        │                                   a userspace delay line on NFQUEUE)
//!                        └── honeypot 10.x.3.2 (AnyIP for 10.x.2.0/24: answers as anyone there)
//! ```

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ashiato_capture::netns::{Netns, in_netns, spawn_in_netns, unique_name, veth_pair};

const T: &str = "1s";

struct Lab {
    client: Netns,
    gw: Netns,
    server: Netns,
    honeypot: Netns,
    net: u8,
    hp_if: String,
}

fn sh(ns: &Netns, cmd: &str) {
    let args: Vec<&str> = cmd.split_whitespace().collect();
    ns.exec(&args).unwrap_or_else(|e| panic!("{cmd}: {e}"));
}

impl Lab {
    fn new(net: u8) -> Lab {
        let client = Netns::new(&unique_name("dfc")).expect("ip netns add (root needed)");
        let gw = Netns::new(&unique_name("dfg")).unwrap();
        let server = Netns::new(&unique_name("dfs")).unwrap();
        let honeypot = Netns::new(&unique_name("dfh")).unwrap();
        let tag = unique_name("");
        let (g1, g2, g3) = (format!("g1{tag}"), format!("g2{tag}"), format!("g3{tag}"));
        let n = net;
        veth_pair(
            &client,
            "c0",
            &gw,
            &g1,
            Some((&format!("10.{n}.1.2/24"), &format!("10.{n}.1.1/24"))),
        )
        .unwrap();
        veth_pair(
            &server,
            "s0",
            &gw,
            &g2,
            Some((&format!("10.{n}.2.2/24"), &format!("10.{n}.2.1/24"))),
        )
        .unwrap();
        veth_pair(
            &honeypot,
            "h0",
            &gw,
            &g3,
            Some((&format!("10.{n}.3.2/24"), &format!("10.{n}.3.1/24"))),
        )
        .unwrap();
        sh(&client, &format!("ip route add default via 10.{n}.1.1"));
        sh(&server, &format!("ip route add default via 10.{n}.2.1"));
        sh(&server, &format!("ip addr add 10.{n}.2.3/24 dev s0"));
        sh(&server, &format!("ip addr add 10.{n}.2.4/24 dev s0"));
        sh(&honeypot, &format!("ip route add default via 10.{n}.3.1"));
        // AnyIP: the honeypot takes connections to any address of the protected prefix.
        sh(
            &honeypot,
            &format!("ip route add local 10.{n}.2.0/24 dev lo table local"),
        );
        sh(&gw, "sysctl -qw net.ipv4.ip_forward=1");
        // The silent address drops SYNs; the late one delays them in a queue (see below).
        sh(
            &server,
            &format!("iptables -w -A INPUT -d 10.{n}.2.3 -p tcp --dport 80 -j DROP"),
        );
        sh(
            &server,
            &format!(
                "iptables -w -A INPUT -d 10.{n}.2.4 -p tcp --dport 80 --tcp-flags SYN,ACK SYN -j NFQUEUE --queue-num 7"
            ),
        );
        Lab {
            client,
            gw,
            server,
            honeypot,
            net,
            hp_if: g3,
        }
    }

    fn addr(&self, host: u8) -> SocketAddr {
        format!("10.{}.2.{host}:80", self.net).parse().unwrap()
    }

    fn start_gateway(&self) -> (Child, Arc<Mutex<Vec<String>>>) {
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                self.gw.name(),
                env!("CARGO_BIN_EXE_ashiato"),
                "darkflow",
                "inline",
                "--setup",
            ])
            .args([
                "--honeypot",
                &format!("10.{}.3.2", self.net),
                "--honeypot-iface",
                &self.hp_if,
            ])
            .args(["--timeout", T, "--json", "--duration", "60s"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ashiato darkflow inline");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().unwrap();
        let l = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                l.lock().unwrap().push(line);
            }
        });
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut first = String::new();
        err.read_line(&mut first).unwrap();
        assert!(
            first.contains("inline gateway on NFQUEUE"),
            "gateway did not start: {first}"
        );
        std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::stderr()));
        (child, lines)
    }
}

/// Server: a banner on every address of the server namespace.
fn serve_banner(lab: &Lab, stop: Arc<AtomicBool>) {
    let l = in_netns(lab.server.name(), || TcpListener::bind("0.0.0.0:80"))
        .unwrap()
        .unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            if let Ok(mut s) = s {
                let _ = s.write_all(b"server\n");
            }
        }
    });
}

/// Honeypot: says who it pretends to be, then again 3 s later.
fn serve_honeypot(lab: &Lab) {
    let l = in_netns(lab.honeypot.name(), || TcpListener::bind("0.0.0.0:80"))
        .unwrap()
        .unwrap();
    std::thread::spawn(move || {
        for mut s in l.incoming().map_while(Result::ok) {
            std::thread::spawn(move || {
                let me = s.local_addr().unwrap();
                let _ = s.write_all(format!("honeypot {me}\n").as_bytes());
                std::thread::sleep(Duration::from_secs(3));
                let _ = s.write_all(b"again\n");
            });
        }
    });
}

/// A userspace delay line in the server namespace: SYNs in queue 7 wait 2 s, then pass.
fn delay_line(lab: &Lab, stop: Arc<AtomicBool>) {
    let ready = Arc::new(AtomicBool::new(false));
    let r = ready.clone();
    spawn_in_netns(lab.server.name(), move || {
        let mut q = nfq::Queue::open().expect("NFQUEUE");
        q.bind(7).expect("bind queue 7");
        q.set_nonblocking(true);
        r.store(true, Ordering::Relaxed);
        let mut held: VecDeque<(Instant, nfq::Message)> = VecDeque::new();
        while !stop.load(Ordering::Relaxed) {
            match q.recv() {
                Ok(m) => held.push_back((Instant::now() + Duration::from_secs(2), m)),
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
            while held.front().is_some_and(|(t, _)| *t <= Instant::now()) {
                let (_, mut m) = held.pop_front().unwrap();
                m.set_verdict(nfq::Verdict::Accept);
                q.verdict(m).unwrap();
            }
        }
    })
    .unwrap();
    while !ready.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Connects from the client namespace and reads lines for `secs`.
fn talk(lab: &Lab, to: SocketAddr, secs: u64) -> (Duration, Vec<String>) {
    in_netns(lab.client.name(), move || {
        let start = Instant::now();
        let s = TcpStream::connect_timeout(&to, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("connect {to}: {e}"));
        let connected = start.elapsed();
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut r = BufReader::new(s);
        let mut lines = Vec::new();
        while start.elapsed() < Duration::from_secs(secs) {
            let mut l = String::new();
            match r.read_line(&mut l) {
                Ok(0) => break,
                Ok(_) => lines.push(l.trim().to_string()),
                Err(_) => {}
            }
        }
        (connected, lines)
    })
    .unwrap()
}

fn stop_gateway(mut child: Child) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("gateway did not stop on SIGINT");
}

#[test]
fn inline_gateway_hands_silent_flows_to_the_honeypot_and_cuts_it_off_on_a_late_answer() {
    let lab = Lab::new(171);
    let stop = Arc::new(AtomicBool::new(false));
    serve_banner(&lab, stop.clone());
    serve_honeypot(&lab);
    delay_line(&lab, stop.clone());
    let (gw, lines) = lab.start_gateway();

    // A live server: answered at once, untouched.
    let (t, got) = talk(&lab, lab.addr(2), 1);
    assert_eq!(got, vec!["server"], "live server");
    assert!(
        t < Duration::from_millis(900),
        "connect to the live server took {t:?}"
    );

    // A silent address: after T the honeypot answers, as that address, and keeps talking.
    let (t, got) = talk(&lab, lab.addr(3), 5);
    assert!(
        t >= Duration::from_millis(900),
        "connected after {t:?}, before T"
    );
    assert_eq!(
        got,
        vec![format!("honeypot {}", lab.addr(3)), "again".to_string()],
        "silent address"
    );

    // An address that answers after 2 s: the honeypot takes it at T, the late SYN/ACK cuts the
    // honeypot off, so its second line never arrives.
    let start = Instant::now();
    let (_, got) = talk(&lab, lab.addr(4), 6);
    assert_eq!(
        got,
        vec![format!("honeypot {}", lab.addr(4))],
        "late server"
    );
    // The client's connection ends with the cut (the real server resets it); the honeypot
    // still sends its second line at about 4 s, and the gateway must drop it.
    std::thread::sleep(Duration::from_secs(5).saturating_sub(start.elapsed()));

    stop_gateway(gw);
    stop.store(true, Ordering::Relaxed);
    let lines = lines.lock().unwrap().clone();
    let events: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let dark: Vec<String> = events
        .iter()
        .filter(|e| e["event"] == "darkflow")
        .map(|e| e["dst"].as_str().unwrap().to_string())
        .collect();
    let n = lab.net;
    assert!(
        dark.contains(&format!("10.{n}.2.3")) && dark.contains(&format!("10.{n}.2.4")),
        "{lines:#?}"
    );
    assert!(
        !dark.contains(&format!("10.{n}.2.2")),
        "the answered flow is not a DarkFlow: {lines:#?}"
    );
    let late: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["event"] == "late_answer")
        .collect();
    assert_eq!(late.len(), 1, "{lines:#?}");
    assert_eq!(late[0]["dst"], format!("10.{n}.2.4"));
    let summary = events
        .iter()
        .find(|e| e["event"] == "inline_summary")
        .expect("summary line");
    assert_eq!(summary["handed_over"], 2, "{summary}");
    assert_eq!(summary["cut_off"], 1, "{summary}");
    assert!(
        summary["honeypot_packets_dropped"].as_u64().unwrap() >= 1,
        "{summary}"
    );
    // --setup removed its rules.
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            lab.gw.name(),
            "iptables",
            "-t",
            "mangle",
            "-S",
        ])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("ASHIATO_DF"));
    drop(lab.server);
    drop(lab.honeypot);
}

/// Added latency and throughput of answered flows through the gateway, with and without the
/// inline DarkFlow process (figures for docs/benchmarks.md; run with --nocapture --release).
#[test]
fn inline_gateway_overhead_on_answered_flows() {
    let lab = Lab::new(172);
    let stop = Arc::new(AtomicBool::new(false));
    // Bulk sink and banner on the server.
    let sink = in_netns(lab.server.name(), || TcpListener::bind("0.0.0.0:9000"))
        .unwrap()
        .unwrap();
    std::thread::spawn(move || {
        for s in sink.incoming().map_while(Result::ok) {
            std::thread::spawn(move || {
                let mut s = s;
                let mut buf = vec![0u8; 1 << 16];
                let mut n = 0u64;
                while let Ok(k) = s.read(&mut buf) {
                    if k == 0 {
                        break;
                    }
                    n += k as u64;
                }
                let _ = s.write_all(&n.to_be_bytes());
            });
        }
    });
    serve_banner(&lab, stop.clone());
    let to = lab.addr(2);
    let bulk: SocketAddr = format!("10.{}.2.2:9000", lab.net).parse().unwrap();
    let measure = |label: &str| -> (f64, f64) {
        in_netns(lab.client.name(), move || {
            let mut times = Vec::new();
            for _ in 0..300 {
                let start = Instant::now();
                let mut s = TcpStream::connect(to).unwrap();
                let mut b = [0u8; 7];
                s.read_exact(&mut b).unwrap();
                assert_eq!(&b, b"server\n");
                times.push(start.elapsed().as_secs_f64() * 1e6);
            }
            times.sort_by(f64::total_cmp);
            let median = times[times.len() / 2];
            let total: u64 = 256 << 20;
            let start = Instant::now();
            let mut s = TcpStream::connect(bulk).unwrap();
            let chunk = vec![7u8; 1 << 16];
            let mut sent = 0u64;
            while sent < total {
                s.write_all(&chunk).unwrap();
                sent += chunk.len() as u64;
            }
            s.shutdown(std::net::Shutdown::Write).unwrap();
            let mut n = [0u8; 8];
            s.read_exact(&mut n).unwrap();
            assert_eq!(u64::from_be_bytes(n), total, "every byte arrived");
            let gbps = total as f64 * 8.0 / start.elapsed().as_secs_f64() / 1e9;
            eprintln!("{label}: connect + first byte median {median:.0} us; bulk {gbps:.2} Gb/s");
            (median, gbps)
        })
        .unwrap()
    };
    let (m0, g0) = measure("plain gateway");
    let (gw, _lines) = lab.start_gateway();
    let (m1, g1) = measure("inline DarkFlow gateway");
    stop_gateway(gw);
    stop.store(true, Ordering::Relaxed);
    eprintln!(
        "added latency per answered connection {:.0} us ({:.2} x); bulk throughput {:.2} x the plain gateway",
        m1 - m0,
        m1 / m0,
        g1 / g0
    );
    assert!(g1 > 0.0 && m1 > 0.0);
}
