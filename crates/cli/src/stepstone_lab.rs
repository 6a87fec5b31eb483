//! `ashiato stepstone lab`: relays, direct sources and scanners in network namespaces
//! (`stepstone_lab_net.rs`), the live responder in a sensor namespace, and the count of who is
//! flagged (docs/stepping-stones.md §5).
//!
//! Per trial each source opens a seeded number (3 to 5) of connections to a darknet address
//! whose port gets a banner (`--app-banner 22`); the banner clients answer it. Accepted when
//! every NAT and other-stack relay connection is flagged, no direct source or scanner is, and
//! the TCP-terminating relay was measured; it is reported with its own count and as a blind
//! spot of Tp and the fingerprints (its own kernel answers everything), whatever the
//! application-level timing caught. The hop-hiding relay (1-2 ms, no extra hop) is measured and
//! reported, not required.
//!
//! The curve: delay lines hold the NAT attacker's packets (router) and the socat client's
//! (socat relay) for D ms on their way out; per D, how often the timing test (and the seed's
//! rule) fires on the NAT relay's connections, the application-level timing on the socat
//! relay's, and either on the direct host's (false alarms).

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use anyhow::{Context, Result, bail};
use ashiato_rng::SplitMix64;

use crate::CheckFailed;
use crate::args::StepstoneLabArgs;
use crate::stepstone_lab_net::{
    Client, DARK, DIRECT_SRC, HIDER_SRC, NAT_SRC, NMAP_CONNECT_SRC, NMAP_SYN_SRC, Q_HIDER, Q_NAT,
    Q_SOCAT, SOCAT_SRC, STACK_SRC, build, delay_line, queue_rule, responder_run,
};

/// Signals that come from Tp or the fingerprints (not from the application exchange).
const TP_FP_SIGNALS: [&str; 5] = ["ttl_class", "option_order", "os_name", "hops", "timing"];

/// One configuration's tally.
#[derive(Default, serde::Serialize)]
struct Tally {
    config: String,
    relays_total: u32,
    relays_flagged: u32,
    direct_total: u32,
    direct_flagged: u32,
    /// Connections left undecided (too little evidence), of either kind.
    undecided: u32,
    /// Connections with Tp measured (from the source's ACK or RST).
    tp_measured: u32,
    /// Connections with Tapp measured.
    tapp_measured: u32,
    /// Connections whose SYN matched a scanner's signature (fingerprints not compared).
    tool_syn: u32,
    signals: BTreeMap<String, u32>,
    /// A relay kind on which no Tp or fingerprint signal fired: a blind spot of those, reported
    /// even when the application-level timing flagged it.
    blind_spot: bool,
}

impl Tally {
    fn add(&mut self, l: &serde_json::Value, relay: bool) {
        let flagged = l["verdict"]["decision"] == "relay";
        self.undecided += u32::from(l["verdict"]["decision"] == "undecided");
        self.tp_measured += u32::from(l["tp_us"].is_u64());
        self.tapp_measured += u32::from(l["tapp_us"].is_u64());
        self.tool_syn += u32::from(l["verdict"]["missing"].as_array().is_some_and(|m| {
            m.iter()
                .any(|x| x.as_str().is_some_and(|x| x.contains("scanner")))
        }));
        if relay {
            self.relays_total += 1;
            self.relays_flagged += u32::from(flagged);
        } else {
            self.direct_total += 1;
            self.direct_flagged += u32::from(flagged);
        }
        for s in l["verdict"]["signals"].as_array().into_iter().flatten() {
            if let Some(n) = s["signal"].as_str() {
                *self.signals.entry(n.to_string()).or_default() += 1;
            }
        }
    }
}

/// One point of the curve.
#[derive(serde::Serialize)]
struct CurvePoint {
    delay_ms: u64,
    relays_total: u32,
    timing_fired: u32,
    seed_rule_fired: u32,
    app_relays_total: u32,
    app_timing_fired: u32,
    direct_total: u32,
    timing_false_alarms: u32,
    seed_rule_false_alarms: u32,
    app_timing_false_alarms: u32,
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
    if a.hider_delays_ms.is_empty()
        || a.hider_delays_ms
            .iter()
            .any(|d| !d.is_finite() || !(0.0..=10_000.0).contains(d))
    {
        bail!("--hider-delays-ms needs delays between 0 and 10000 ms");
    }
    let lab = build()?;
    let exe = std::env::current_exe()?;
    let socat = Command::new("ip")
        .args(["netns", "exec", lab.t.name(), "socat"])
        .args(["TCP-LISTEN:2222,fork,reuseaddr", &format!("TCP:{DARK}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("socat (apt-get install socat)")?;
    let mut rng = SplitMix64::new(a.seed);
    let dark: SocketAddr = DARK.parse()?;
    let via_socat: SocketAddr = "10.217.0.1:2222".parse()?;
    // (config, source address the sensor sees, is a relay, namespace, client)
    let sources = [
        ("nat_relay", NAT_SRC, true, &lab.a, Client::Banner(dark)),
        (
            "other_stack_relay",
            STACK_SRC,
            true,
            &lab.b,
            Client::Banner(dark),
        ),
        (
            "tcp_terminating_relay",
            SOCAT_SRC,
            true,
            &lab.c,
            Client::Banner(via_socat),
        ),
        ("direct", DIRECT_SRC, false, &lab.d, Client::Banner(dark)),
        (
            "nmap_syn_scan",
            NMAP_SYN_SRC,
            false,
            &lab.n,
            Client::NmapSyn,
        ),
        (
            "nmap_connect_scan",
            NMAP_CONNECT_SRC,
            false,
            &lab.k,
            Client::NmapConnect,
        ),
        (
            "low_delay_relay",
            HIDER_SRC,
            true,
            &lab.h,
            Client::Banner(dark),
        ),
    ];
    let hider = sources.len() - 1;
    let mut tallies: Vec<Tally> = sources
        .iter()
        .take(hider)
        .map(|s| Tally {
            config: s.0.to_string(),
            ..Tally::default()
        })
        .collect();
    let mut hider_tallies: BTreeMap<u64, Tally> = BTreeMap::new();
    let mut curve: Vec<CurvePoint> = Vec::new();
    let stop = Arc::new(AtomicBool::new(false));
    let result = (|| -> Result<()> {
        let socat_delay = Arc::new(AtomicU64::new(a.socat_delay_ms * 1000));
        let hider_delay = Arc::new(AtomicU64::new(0));
        delay_line(&lab.t, Q_SOCAT, socat_delay.clone(), stop.clone())?;
        queue_rule(&lab.t, "INPUT", "10.217.0.0/24", Q_SOCAT)?;
        delay_line(&lab.r, Q_HIDER, hider_delay.clone(), stop.clone())?;
        queue_rule(&lab.r, "FORWARD", "10.220.0.0/24", Q_HIDER)?;
        for trial in 0..a.trials {
            let hd_ms = a.hider_delays_ms[trial as usize % a.hider_delays_ms.len()];
            let hd = (hd_ms * 1000.0).round() as u64;
            hider_delay.store(hd, Ordering::Relaxed);
            let plan: Vec<_> = sources
                .iter()
                .map(|s| (s.3, s.4, 3 + (rng.next_u64() % 3) as u32))
                .collect();
            let lines = responder_run(&lab, &exe, false, &plan)
                .with_context(|| format!("trial {trial}"))?;
            for l in &lines {
                let Some(i) = sources.iter().position(|s| l["src"] == s.1) else {
                    continue;
                };
                if i == hider {
                    hider_tallies
                        .entry(hd)
                        .or_insert_with(|| Tally {
                            config: format!("low_delay_relay_{hd_ms}ms"),
                            ..Tally::default()
                        })
                        .add(l, true);
                } else {
                    tallies[i].add(l, sources[i].2);
                }
            }
        }
        // The curve: the NAT attacker's and the socat client's packets delayed on their way.
        if !a.delays_ms.is_empty() {
            let delay = Arc::new(AtomicU64::new(0));
            delay_line(&lab.r, Q_NAT, delay.clone(), stop.clone())?;
            queue_rule(&lab.r, "FORWARD", "10.212.0.0/24", Q_NAT)?;
            for &d in &a.delays_ms {
                delay.store(d * 1000, Ordering::Relaxed);
                socat_delay.store(d * 1000, Ordering::Relaxed);
                let mut p = CurvePoint {
                    delay_ms: d,
                    relays_total: 0,
                    timing_fired: 0,
                    seed_rule_fired: 0,
                    app_relays_total: 0,
                    app_timing_fired: 0,
                    direct_total: 0,
                    timing_false_alarms: 0,
                    seed_rule_false_alarms: 0,
                    app_timing_false_alarms: 0,
                };
                for _ in 0..a.curve_trials {
                    let n = 3 + (rng.next_u64() % 3) as u32;
                    let plan = [
                        (&lab.a, Client::Banner(dark), n),
                        (&lab.c, Client::Banner(via_socat), n),
                        (&lab.d, Client::Banner(dark), n),
                    ];
                    for l in &responder_run(&lab, &exe, true, &plan)? {
                        if l["src"] == NAT_SRC {
                            p.relays_total += 1;
                            p.timing_fired += u32::from(has(l, "timing"));
                            p.seed_rule_fired += u32::from(has(l, "seed_rule"));
                        } else if l["src"] == SOCAT_SRC {
                            p.app_relays_total += 1;
                            p.app_timing_fired += u32::from(has(l, "app_timing"));
                        } else if l["src"] == DIRECT_SRC {
                            p.direct_total += 1;
                            p.timing_false_alarms += u32::from(has(l, "timing"));
                            p.seed_rule_false_alarms += u32::from(has(l, "seed_rule"));
                            p.app_timing_false_alarms += u32::from(has(l, "app_timing"));
                        }
                    }
                }
                curve.push(p);
            }
        }
        Ok(())
    })();
    stop.store(true, Ordering::Relaxed);
    kill(socat);
    drop(lab);
    result?;
    tallies.extend(hider_tallies.into_values());
    for t in tallies.iter_mut().filter(|t| t.relays_total > 0) {
        t.blind_spot = !TP_FP_SIGNALS.iter().any(|s| t.signals.contains_key(*s));
    }
    report(a, &tallies, &curve)
}

fn report(a: &StepstoneLabArgs, tallies: &[Tally], curve: &[CurvePoint]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    for t in tallies {
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
    for p in curve {
        if a.json {
            serde_json::to_writer(&mut out, p)?;
            writeln!(out)?;
        } else {
            writeln!(
                out,
                "delay {:>3} ms: timing fired {}/{}, seed rule {}/{}, app timing (socat) {}/{}; \
                 false alarms on direct: timing {}/{}, seed rule {}/{}, app timing {}/{}",
                p.delay_ms,
                p.timing_fired,
                p.relays_total,
                p.seed_rule_fired,
                p.relays_total,
                p.app_timing_fired,
                p.app_relays_total,
                p.timing_false_alarms,
                p.direct_total,
                p.seed_rule_false_alarms,
                p.direct_total,
                p.app_timing_false_alarms,
                p.direct_total
            )?;
        }
    }
    let row = |c: &str| tallies.iter().find(|t| t.config == c).expect("configured");
    let mut bad = Vec::new();
    for c in ["nat_relay", "other_stack_relay"] {
        let t = row(c);
        if t.relays_total == 0 || t.relays_flagged != t.relays_total {
            bad.push(format!(
                "{c} {}/{} flagged",
                t.relays_flagged, t.relays_total
            ));
        }
    }
    for c in ["direct", "nmap_syn_scan", "nmap_connect_scan"] {
        let t = row(c);
        if t.direct_total == 0 || t.direct_flagged != 0 {
            bad.push(format!(
                "{c} {}/{} flagged",
                t.direct_flagged, t.direct_total
            ));
        }
    }
    let term = row("tcp_terminating_relay");
    if term.relays_total == 0 {
        bad.push("the TCP-terminating relay was not measured".into());
    }
    eprintln!(
        "tcp_terminating_relay: {}/{} flagged, {} by app_timing{}",
        term.relays_flagged,
        term.relays_total,
        term.signals.get("app_timing").copied().unwrap_or(0),
        if term.blind_spot {
            "; a blind spot of Tp and the fingerprints (its own kernel answers)"
        } else {
            ""
        }
    );
    for t in tallies.iter().filter(|t| t.config.starts_with("low_delay")) {
        eprintln!(
            "{}: {}/{} flagged (hop hidden: only timing can speak)",
            t.config, t.relays_flagged, t.relays_total
        );
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(CheckFailed(format!("stepstone lab: {}", bad.join("; "))).into())
    }
}
