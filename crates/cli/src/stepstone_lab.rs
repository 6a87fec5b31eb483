//! `ashiato stepstone lab`: relays and direct sources in network namespaces, the live
//! responder in a sensor namespace, and the count of who is flagged (docs/stepping-stones.md).
//!
//! ```text
//! sensor ── router ─┬─ nat-attacker          (the router NATs it: a NAT relay)
//!                   ├─ direct                (routed: keeps its own address)
//!                   ├─ stack-relay ── attacker (NATs it; its own TTL is 128: another stack)
//!                   └─ socat-relay ── client  (ends TCP and opens its own connection)
//! ```
//!
//! Per trial each source opens a seeded number (3 to 5) of connections to a darknet address.
//! Accepted when every NAT and other-stack relay connection is flagged, no direct one is, and
//! the TCP-terminating relay is reported with its own count (a blind spot of Tp and Fp, since
//! its own kernel answers everything).
//!
//! The curve: a userspace delay line (NFQUEUE in the router) holds the NAT attacker's packets
//! for D ms on their way out; per D, how often the timing test (and the seed's rule) fires on
//! the relay's connections, and on the direct host's (false alarms).

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ashiato_capture::netns::{Netns, in_netns, spawn_in_netns, unique_name, veth_pair};
use ashiato_rng::SplitMix64;

use crate::CheckFailed;
use crate::args::StepstoneLabArgs;

/// One configuration's tally.
#[derive(Default, serde::Serialize)]
struct Tally {
    config: &'static str,
    relays_total: u32,
    relays_flagged: u32,
    direct_total: u32,
    direct_flagged: u32,
    signals: BTreeMap<String, u32>,
    /// Relays of this kind that passed unflagged are a known blind spot, reported, not hidden.
    blind_spot: bool,
}

struct Lab {
    s: Netns,
    r: Netns,
    a: Netns,
    d: Netns,
    x: Netns,
    b: Netns,
    t: Netns,
    c: Netns,
    s_if: String,
}

fn build() -> Result<Lab> {
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
        s_if: format!("ls{}", unique_name("")),
    };
    let (s, r, a, d, x, b, t, c) = (
        &lab.s, &lab.r, &lab.a, &lab.d, &lab.x, &lab.b, &lab.t, &lab.c,
    );
    veth_pair(
        s,
        &lab.s_if,
        r,
        "r0",
        Some(("10.211.0.2/24", "10.211.0.1/24")),
    )?;
    veth_pair(a, "a0", r, "r1", Some(("10.212.0.2/24", "10.212.0.1/24")))?;
    veth_pair(d, "d0", r, "r2", Some(("10.213.0.2/24", "10.213.0.1/24")))?;
    veth_pair(x, "x0", r, "r3", Some(("10.214.0.2/24", "10.214.0.1/24")))?;
    veth_pair(t, "t0", r, "r4", Some(("10.215.0.2/24", "10.215.0.1/24")))?;
    veth_pair(b, "b0", x, "x1", Some(("10.216.0.2/24", "10.216.0.1/24")))?;
    veth_pair(c, "c0", t, "t1", Some(("10.217.0.2/24", "10.217.0.1/24")))?;
    for (n, gw) in [
        (s, "10.211.0.1"),
        (a, "10.212.0.1"),
        (d, "10.213.0.1"),
        (x, "10.214.0.1"),
        (t, "10.215.0.1"),
        (b, "10.216.0.1"),
        (c, "10.217.0.1"),
    ] {
        n.exec(&["ip", "route", "add", "default", "via", gw])?;
    }
    for n in [r, x] {
        n.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
    }
    r.exec(&["ip", "route", "add", "203.0.113.0/24", "via", "10.211.0.2"])?;
    r.exec(&[
        "iptables",
        "-w",
        "-t",
        "nat",
        "-A",
        "POSTROUTING",
        "-s",
        "10.212.0.0/24",
        "-o",
        "r0",
        "-j",
        "MASQUERADE",
    ])?;
    x.exec(&[
        "iptables",
        "-w",
        "-t",
        "nat",
        "-A",
        "POSTROUTING",
        "-s",
        "10.216.0.0/24",
        "-o",
        "x0",
        "-j",
        "MASQUERADE",
    ])?;
    // The other stack: the relay's own packets leave with TTL 128 (a Windows-like host).
    x.exec(&["sysctl", "-qw", "net.ipv4.ip_default_ttl=128"])?;
    Ok(lab)
}

fn connect(ns: &Netns, to: SocketAddr, n: u32) -> Result<()> {
    in_netns(ns.name(), move || -> Result<()> {
        for _ in 0..n {
            // Long enough for two SYN retransmissions (1 s, then 2 s later).
            let s = TcpStream::connect_timeout(&to, Duration::from_secs(7))
                .with_context(|| format!("connecting to {to}"))?;
            std::thread::sleep(Duration::from_millis(150));
            drop(s);
        }
        Ok(())
    })?
}

/// One responder run: `plan` = (namespace, target, connections), in order; returns the JSON
/// lines.
fn responder_run(
    lab: &Lab,
    exe: &std::path::Path,
    seed_rule: bool,
    plan: &[(&Netns, SocketAddr, u32)],
) -> Result<Vec<serde_json::Value>> {
    let total: u32 = plan.iter().map(|p| p.2).sum();
    let secs = 3 + u64::from(total) / 4;
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", lab.s.name()])
        .arg(exe)
        .args([
            "stepstone",
            "--iface",
            &lab.s_if,
            "--darknet",
            "203.0.113.0/24",
        ])
        .args([
            "--local",
            "10.211.0.2",
            "--pings",
            "10",
            "--per-source-rate",
            "100",
        ])
        .args(["--duration", &format!("{secs}s")]);
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
    rx.recv_timeout(Duration::from_secs(10))
        .context("the responder did not start")?;
    for (ns, to, n) in plan {
        connect(ns, *to, *n)?;
    }
    let out = resp.stdout.take().context("responder output")?;
    let lines: Vec<serde_json::Value> = BufReader::new(out)
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str(&l).ok())
        .collect();
    let status = resp.wait()?;
    if !status.success() {
        bail!("the responder failed ({status})");
    }
    Ok(lines)
}

/// The delay line: packets in NFQUEUE 7 of the router wait `delay_us`, then pass. Runs until
/// `stop`.
fn delay_line(lab: &Lab, delay_us: Arc<AtomicU64>, stop: Arc<AtomicBool>) -> Result<()> {
    let ready = Arc::new(AtomicBool::new(false));
    let r = ready.clone();
    spawn_in_netns(lab.r.name(), move || -> Result<()> {
        let mut q = nfq::Queue::open().context("NFQUEUE")?;
        q.bind(7).context("NFQUEUE 7")?;
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
    })?;
    while !ready.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// One point of the curve.
#[derive(serde::Serialize)]
struct CurvePoint {
    delay_ms: u64,
    relays_total: u32,
    timing_fired: u32,
    seed_rule_fired: u32,
    direct_total: u32,
    timing_false_alarms: u32,
    seed_rule_false_alarms: u32,
}

fn has(l: &serde_json::Value, name: &str) -> bool {
    l["verdict"]["signals"]
        .as_array()
        .is_some_and(|v| v.iter().any(|s| s["signal"] == name))
}

fn kill(mut c: Child) {
    let _ = c.kill();
    let _ = c.wait();
}

/// Runs the lab.
pub fn run(a: &StepstoneLabArgs) -> Result<()> {
    if a.trials == 0 {
        bail!("--trials must be at least 1");
    }
    let lab = build()?;
    let exe = std::env::current_exe()?;
    let socat = Command::new("ip")
        .args(["netns", "exec", lab.t.name(), "socat"])
        .args(["TCP-LISTEN:2222,fork,reuseaddr", "TCP:203.0.113.9:22"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("socat (apt-get install socat)")?;
    let mut rng = SplitMix64::new(a.seed);
    // (config, source address the sensor sees, is a relay)
    let configs: [(&str, &str, bool); 4] = [
        ("nat_relay", "10.211.0.1", true),
        ("other_stack_relay", "10.214.0.2", true),
        ("tcp_terminating_relay", "10.215.0.2", true),
        ("direct", "10.213.0.2", false),
    ];
    let mut tallies: Vec<Tally> = configs
        .iter()
        .map(|(c, _, _)| Tally {
            config: c,
            ..Tally::default()
        })
        .collect();
    let mut curve: Vec<CurvePoint> = Vec::new();
    let result = (|| -> Result<()> {
        for trial in 0..a.trials {
            let counts: Vec<u32> = (0..4).map(|_| 3 + (rng.next_u64() % 3) as u32).collect();
            let dark: SocketAddr = "203.0.113.9:22".parse()?;
            let lines = responder_run(
                &lab,
                &exe,
                false,
                &[
                    (&lab.a, dark, counts[0]),
                    (&lab.b, dark, counts[1]),
                    (&lab.c, "10.217.0.1:2222".parse()?, counts[2]),
                    (&lab.d, dark, counts[3]),
                ],
            )
            .with_context(|| format!("trial {trial}"))?;
            for l in &lines {
                let Some(i) = configs.iter().position(|(_, src, _)| l["src"] == *src) else {
                    continue;
                };
                let flagged = l["verdict"]["decision"] == "relay";
                let t = &mut tallies[i];
                if configs[i].2 {
                    t.relays_total += 1;
                    t.relays_flagged += u32::from(flagged);
                } else {
                    t.direct_total += 1;
                    t.direct_flagged += u32::from(flagged);
                }
                for s in l["verdict"]["signals"].as_array().into_iter().flatten() {
                    if let Some(n) = s["signal"].as_str() {
                        *t.signals.entry(n.to_string()).or_default() += 1;
                    }
                }
            }
        }
        // The curve: the NAT attacker's packets delayed in the router on their way out.
        if !a.delays_ms.is_empty() {
            let delay = Arc::new(AtomicU64::new(0));
            let stop = Arc::new(AtomicBool::new(false));
            delay_line(&lab, delay.clone(), stop.clone())?;
            lab.r.exec(&[
                "iptables",
                "-w",
                "-A",
                "FORWARD",
                "-s",
                "10.212.0.0/24",
                "-j",
                "NFQUEUE",
                "--queue-num",
                "7",
            ])?;
            let dark: SocketAddr = "203.0.113.9:22".parse()?;
            let mut run_curve = || -> Result<()> {
                for &d in &a.delays_ms {
                    delay.store(d * 1000, Ordering::Relaxed);
                    let mut p = CurvePoint {
                        delay_ms: d,
                        relays_total: 0,
                        timing_fired: 0,
                        seed_rule_fired: 0,
                        direct_total: 0,
                        timing_false_alarms: 0,
                        seed_rule_false_alarms: 0,
                    };
                    for _ in 0..a.curve_trials {
                        let n = 3 + (rng.next_u64() % 3) as u32;
                        let lines = responder_run(
                            &lab,
                            &exe,
                            true,
                            &[(&lab.a, dark, n), (&lab.d, dark, n)],
                        )?;
                        for l in &lines {
                            if l["src"] == "10.211.0.1" {
                                p.relays_total += 1;
                                p.timing_fired += u32::from(has(l, "timing"));
                                p.seed_rule_fired += u32::from(has(l, "seed_rule"));
                            } else if l["src"] == "10.213.0.2" {
                                p.direct_total += 1;
                                p.timing_false_alarms += u32::from(has(l, "timing"));
                                p.seed_rule_false_alarms += u32::from(has(l, "seed_rule"));
                            }
                        }
                    }
                    curve.push(p);
                }
                Ok(())
            };
            let r = run_curve();
            stop.store(true, Ordering::Relaxed);
            r?;
        }
        Ok(())
    })();
    kill(socat);
    drop(lab);
    result?;
    let term = &mut tallies[2];
    term.blind_spot = term.relays_flagged < term.relays_total;
    let mut out = std::io::stdout().lock();
    for t in &tallies {
        if a.json {
            serde_json::to_writer(&mut out, t)?;
            writeln!(out)?;
        } else {
            writeln!(
                out,
                "{:<22} relays {}/{} flagged, direct {}/{} flagged, signals {:?}",
                t.config,
                t.relays_flagged,
                t.relays_total,
                t.direct_flagged,
                t.direct_total,
                t.signals
            )?;
        }
    }
    for p in &curve {
        if a.json {
            serde_json::to_writer(&mut out, p)?;
            writeln!(out)?;
        } else {
            writeln!(
                out,
                "delay {:>3} ms: timing fired {}/{}, seed rule {}/{}; false alarms on direct: timing {}/{}, seed rule {}/{}",
                p.delay_ms,
                p.timing_fired,
                p.relays_total,
                p.seed_rule_fired,
                p.relays_total,
                p.timing_false_alarms,
                p.direct_total,
                p.seed_rule_false_alarms,
                p.direct_total
            )?;
        }
    }
    let nat = &tallies[0];
    let stack = &tallies[1];
    let term = &tallies[2];
    let direct = &tallies[3];
    let mut bad = Vec::new();
    if nat.relays_total == 0 || nat.relays_flagged != nat.relays_total {
        bad.push(format!(
            "NAT relay {}/{} flagged",
            nat.relays_flagged, nat.relays_total
        ));
    }
    if stack.relays_total == 0 || stack.relays_flagged != stack.relays_total {
        bad.push(format!(
            "other-stack relay {}/{} flagged",
            stack.relays_flagged, stack.relays_total
        ));
    }
    if direct.direct_total == 0 || direct.direct_flagged != 0 {
        bad.push(format!(
            "direct {}/{} flagged",
            direct.direct_flagged, direct.direct_total
        ));
    }
    if term.relays_total == 0 {
        bad.push("the TCP-terminating relay was not measured".into());
    }
    eprintln!(
        "tcp_terminating_relay: {}/{} flagged (a blind spot of Tp and Fp: its own kernel answers)",
        term.relays_flagged, term.relays_total
    );
    if bad.is_empty() {
        Ok(())
    } else {
        Err(CheckFailed(format!("stepstone lab: {}", bad.join("; "))).into())
    }
}
