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
//! its own kernel answers everything). Not built: the userspace delay line and the
//! detection-versus-delay curve.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use ashiato_capture::netns::{Netns, in_netns, unique_name, veth_pair};
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
            let s = TcpStream::connect_timeout(&to, Duration::from_secs(3))
                .with_context(|| format!("connecting to {to}"))?;
            std::thread::sleep(Duration::from_millis(150));
            drop(s);
        }
        Ok(())
    })?
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
    let result = (|| -> Result<()> {
        for trial in 0..a.trials {
            let counts: Vec<u32> = (0..4).map(|_| 3 + (rng.next_u64() % 3) as u32).collect();
            let total: u32 = counts.iter().sum();
            let secs = 3 + u64::from(total) / 4;
            let mut resp = Command::new("ip")
                .args(["netns", "exec", lab.s.name()])
                .arg(&exe)
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
                .args(["--duration", &format!("{secs}s")])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()?;
            std::thread::sleep(Duration::from_millis(700));
            let dark: SocketAddr = "203.0.113.9:22".parse()?;
            connect(&lab.a, dark, counts[0])?;
            connect(&lab.b, dark, counts[1])?;
            connect(&lab.c, "10.217.0.1:2222".parse()?, counts[2])?;
            connect(&lab.d, dark, counts[3])?;
            let out = resp.stdout.take().context("responder output")?;
            let lines: Vec<serde_json::Value> = BufReader::new(out)
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| serde_json::from_str(&l).ok())
                .collect();
            let status = resp.wait()?;
            if !status.success() {
                bail!("trial {trial}: the responder failed ({status})");
            }
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
