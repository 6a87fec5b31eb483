//! The relay lab's network (`ashiato stepstone lab`): namespaces, the clients that connect
//! through them, the userspace delay lines and one responder run. The tallies and the report
//! are in `stepstone_lab.rs`.
//!
//! ```text
//! sensor ── router ─┬─ nat-attacker            (the router NATs it: a NAT relay)
//!                   ├─ direct                  (routed; an SSH-scanner-like banner client)
//!                   ├─ nmap-syn                (routed; nmap -sS)
//!                   ├─ nmap-connect            (routed; nmap -sT)
//!                   ├─ hider                   (NATed to 10.211.0.3, TTL restored, 1-2 ms)
//!                   ├─ stack-relay ── attacker (NATs it; its own TTL is 128: another stack)
//!                   └─ socat-relay ── client   (socat ends TCP; the client's packets to it
//!                                              wait in a delay line)
//! ```

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ashiato_capture::netns::{Netns, in_netns, spawn_in_netns, unique_name, veth_pair};

/// The darknet address and port every client aims at (directly or through its relay).
pub const DARK: &str = "203.0.113.9:22";
/// What the sensor sees as the source, per source kind.
pub const NAT_SRC: &str = "10.211.0.1";
pub const HIDER_SRC: &str = "10.211.0.3";
pub const STACK_SRC: &str = "10.214.0.2";
pub const SOCAT_SRC: &str = "10.215.0.2";
pub const DIRECT_SRC: &str = "10.213.0.2";
pub const NMAP_SYN_SRC: &str = "10.218.0.2";
pub const NMAP_CONNECT_SRC: &str = "10.219.0.2";
/// NFQUEUE numbers of the delay lines: NAT attacker (router), socat client (socat relay),
/// hop-hiding relay (router).
pub const Q_NAT: u16 = 7;
pub const Q_SOCAT: u16 = 8;
pub const Q_HIDER: u16 = 9;

/// The namespaces (removed on drop).
pub struct Lab {
    pub s: Netns,
    pub r: Netns,
    pub a: Netns,
    pub d: Netns,
    pub x: Netns,
    pub b: Netns,
    pub t: Netns,
    pub c: Netns,
    pub n: Netns,
    pub k: Netns,
    pub h: Netns,
    s_if: String,
}

/// How a client connects.
#[derive(Clone, Copy)]
pub enum Client {
    /// Connects, waits for the banner, answers it (like an SSH scanner), waits for the end.
    Banner(SocketAddr),
    /// `nmap -sS`: its crafted SYN; its kernel resets our SYN/ACK.
    NmapSyn,
    /// `nmap -sT`: a plain connect() and close.
    NmapConnect,
}

pub fn build() -> Result<Lab> {
    let ns = |p: &str| Netns::new(&unique_name(p)).context("ip netns add (root needed)");
    let lab = Lab {
        s: ns("lbs")?,
        r: ns("lbr")?,
        a: ns("lba")?,
        d: ns("lbd")?,
        x: ns("lbx")?,
        b: ns("lbb")?,
        t: ns("lbt")?,
        c: ns("lbc")?,
        n: ns("lbn")?,
        k: ns("lbk")?,
        h: ns("lbh")?,
        s_if: format!("ls{}", unique_name("")),
    };
    let l = &lab;
    veth_pair(
        &l.s,
        &l.s_if,
        &l.r,
        "r0",
        Some(("10.211.0.2/24", "10.211.0.1/24")),
    )?;
    for (n, a_if, b, b_if, net) in [
        (&l.a, "a0", &l.r, "r1", 212),
        (&l.d, "d0", &l.r, "r2", 213),
        (&l.x, "x0", &l.r, "r3", 214),
        (&l.t, "t0", &l.r, "r4", 215),
        (&l.b, "b0", &l.x, "x1", 216),
        (&l.c, "c0", &l.t, "t1", 217),
        (&l.n, "n0", &l.r, "r5", 218),
        (&l.k, "k0", &l.r, "r6", 219),
        (&l.h, "h0", &l.r, "r7", 220),
    ] {
        let (ours, gw) = (format!("10.{net}.0.2/24"), format!("10.{net}.0.1/24"));
        veth_pair(n, a_if, b, b_if, Some((&ours, &gw)))?;
        n.exec(&[
            "ip",
            "route",
            "add",
            "default",
            "via",
            &format!("10.{net}.0.1"),
        ])?;
    }
    l.s.exec(&["ip", "route", "add", "default", "via", "10.211.0.1"])?;
    for n in [&l.r, &l.x] {
        n.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
    }
    let r = &l.r;
    r.exec(&["ip", "route", "add", "203.0.113.0/24", "via", "10.211.0.2"])?;
    r.exec(&["ip", "addr", "add", "10.211.0.3/24", "dev", "r0"])?;
    let nat = |n: &Netns, src: &str, out: &str, to: &[&str]| -> Result<()> {
        let mut v = vec![
            "iptables",
            "-w",
            "-t",
            "nat",
            "-A",
            "POSTROUTING",
            "-s",
            src,
            "-o",
            out,
            "-j",
        ];
        v.extend_from_slice(to);
        n.exec(&v)?;
        Ok(())
    };
    nat(r, "10.212.0.0/24", "r0", &["MASQUERADE"])?;
    nat(
        r,
        "10.220.0.0/24",
        "r0",
        &["SNAT", "--to-source", "10.211.0.3"],
    )?;
    nat(&l.x, "10.216.0.0/24", "x0", &["MASQUERADE"])?;
    // The hop-hiding relay gives back the hop it takes (TTL target), so its attacker's SYN
    // arrives with the TTL of the router's own packets.
    r.exec(&[
        "iptables",
        "-w",
        "-t",
        "mangle",
        "-A",
        "FORWARD",
        "-s",
        "10.220.0.0/24",
        "-j",
        "TTL",
        "--ttl-inc",
        "1",
    ])?;
    // The other stack: the relay's own packets leave with TTL 128 (a Windows-like host).
    l.x.exec(&["sysctl", "-qw", "net.ipv4.ip_default_ttl=128"])?;
    Ok(lab)
}

/// Sends the packets matching `rule` (an iptables chain and match) to NFQUEUE `queue`.
pub fn queue_rule(ns: &Netns, chain: &str, src: &str, queue: u16) -> Result<()> {
    let q = queue.to_string();
    ns.exec(&[
        "iptables",
        "-w",
        "-A",
        chain,
        "-s",
        src,
        "-j",
        "NFQUEUE",
        "--queue-num",
        &q,
    ])?;
    Ok(())
}

fn banner_client(ns: &Netns, to: SocketAddr, n: u32) -> Result<()> {
    in_netns(ns.name(), move || -> Result<()> {
        for _ in 0..n {
            // Long enough for two SYN retransmissions (1 s, then 2 s later).
            let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(7))
                .with_context(|| format!("connecting to {to}"))?;
            s.set_read_timeout(Some(Duration::from_secs(3)))?;
            let (mut buf, mut got) = ([0u8; 256], Vec::new());
            while !got.contains(&b'\n') {
                match s.read(&mut buf) {
                    Ok(k) if k > 0 => got.extend_from_slice(&buf[..k]),
                    _ => break,
                }
            }
            if got.contains(&b'\n') {
                // An automated client answers at once; then the responder resets.
                s.write_all(b"SSH-2.0-ashiato-lab-client\r\n")?;
                let _ = s.read(&mut buf);
            }
            drop(s);
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    })?
}

fn nmap(ns: &Netns, scan: &str, n: u32) -> Result<()> {
    let (ip, port) = DARK.split_once(':').expect("host:port");
    for _ in 0..n {
        let st = Command::new("ip")
            .args(["netns", "exec", ns.name(), "nmap", scan, "-Pn", "-n"])
            .args(["-p", port, "--max-retries", "0", ip])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("nmap (apt-get install nmap)")?;
        if !st.success() {
            bail!("nmap {scan} failed ({st})");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// One responder run: `plan` = (namespace, client, connections), in order; returns the JSON
/// lines once every planned connection has one (or 4 s after the last client finished).
pub fn responder_run(
    lab: &Lab,
    exe: &std::path::Path,
    seed_rule: bool,
    plan: &[(&Netns, Client, u32)],
) -> Result<Vec<serde_json::Value>> {
    let total: usize = plan.iter().map(|p| p.2 as usize).sum();
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", lab.s.name()])
        .arg(exe)
        .args(["stepstone", "--iface", &lab.s_if])
        .args(["--darknet", "203.0.113.0/24", "--local", "10.211.0.2"])
        .args(["--pings", "10", "--per-source-rate", "100"])
        .args(["--app-banner", "22", "--duration", "120s"]);
    if seed_rule {
        cmd.arg("--seed-rule");
    }
    let mut resp = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    // Wait until the ring is open, then keep draining stderr so the child never blocks.
    let err = resp.stderr.take().context("responder stderr")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(err).lines().map_while(Result::ok) {
            if l.contains("answering SYNs") {
                let _ = tx.send(());
            }
        }
    });
    let out = resp.stdout.take().context("responder output")?;
    let (ltx, lrx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&l)
                && ltx.send(v).is_err()
            {
                break;
            }
        }
    });
    let clients = (|| -> Result<()> {
        rx.recv_timeout(Duration::from_secs(10))
            .context("the responder did not start")?;
        for (ns, client, n) in plan {
            match *client {
                Client::Banner(to) => banner_client(ns, to, *n)?,
                Client::NmapSyn => nmap(ns, "-sS", *n)?,
                Client::NmapConnect => nmap(ns, "-sT", *n)?,
            }
        }
        Ok(())
    })();
    let mut lines = Vec::new();
    if clients.is_ok() {
        // A verdict comes about 1.2 s after its connection; allow for stragglers.
        let deadline = Instant::now() + Duration::from_secs(4);
        while lines.len() < total {
            let left = deadline.saturating_duration_since(Instant::now());
            match lrx.recv_timeout(left) {
                Ok(v) => lines.push(v),
                Err(_) => break,
            }
        }
    }
    // The responder runs until stopped: an early exit is a failure.
    let early = resp.try_wait()?;
    let _ = resp.kill();
    let _ = resp.wait();
    clients?;
    if let Some(st) = early {
        bail!("the responder exited early ({st})");
    }
    Ok(lines)
}

/// A delay line: packets in NFQUEUE `queue` of `ns` wait `delay_us`, then pass. Runs until
/// `stop`.
pub fn delay_line(
    ns: &Netns,
    queue: u16,
    delay_us: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> Result<()> {
    let ready = Arc::new(AtomicBool::new(false));
    let r = ready.clone();
    let failed = Arc::new(AtomicBool::new(false));
    let f = failed.clone();
    spawn_in_netns(ns.name(), move || -> Result<()> {
        let run = || -> Result<()> {
            let mut q = nfq::Queue::open().context("NFQUEUE")?;
            q.bind(queue).with_context(|| format!("NFQUEUE {queue}"))?;
            q.set_nonblocking(true);
            r.store(true, Ordering::Relaxed);
            let mut held: VecDeque<(Instant, nfq::Message)> = VecDeque::new();
            while !stop.load(Ordering::Relaxed) {
                let mut got = false;
                while let Ok(m) = q.recv() {
                    let d = Duration::from_micros(delay_us.load(Ordering::Relaxed));
                    held.push_back((Instant::now() + d, m));
                    got = true;
                }
                while held.front().is_some_and(|(t, _)| *t <= Instant::now()) {
                    let (_, mut m) = held.pop_front().expect("present");
                    m.set_verdict(nfq::Verdict::Accept);
                    q.verdict(m)?;
                }
                if !got {
                    std::thread::sleep(Duration::from_micros(100));
                }
            }
            for (_, mut m) in held {
                m.set_verdict(nfq::Verdict::Accept);
                let _ = q.verdict(m);
            }
            Ok(())
        };
        let res = run();
        if res.is_err() {
            f.store(true, Ordering::Relaxed);
        }
        res
    })?;
    while !ready.load(Ordering::Relaxed) {
        if failed.load(Ordering::Relaxed) {
            bail!("the delay line could not open NFQUEUE {queue}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}
