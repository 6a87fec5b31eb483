//! What `ashiato hostlab` prints and checks: the hosts with their audits, the center's
//! ranking with its evidence, and the problems that fail the lab.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::Duration;

use anyhow::Result;
use serde_json::{Value, json};

use crate::hostlab::{CC, CENTER, DL, HostlabArgs, VICTIM, WEB, gateway, host_addr};
use crate::hostlab_host::HostAudit;

/// One host's role and outcome.
#[derive(serde::Serialize)]
pub(crate) struct HostOut {
    pub(crate) name: String,
    pub(crate) address: String,
    pub(crate) bot: bool,
    /// What the host's bot answered in the channel (`got ...; flooded N (M spoofed)`).
    pub(crate) bot_said: Option<String>,
    /// Processes the samples saw owning this host's sockets.
    pub(crate) processes: BTreeSet<String>,
    #[serde(flatten)]
    pub(crate) audit: HostAudit,
    pub(crate) reported: bool,
}

/// The checks; each problem as one sentence.
pub(crate) fn check(ranking: &Value, hosts: &[HostOut]) -> Vec<String> {
    let mut bad = Vec::new();
    let servers: Vec<&Value> = ranking
        .as_array()
        .map(|v| v.iter().collect())
        .unwrap_or_default();
    let rank_of = |ip: Ipv4Addr| {
        servers
            .iter()
            .find(|s| s["server"] == ip.to_string())
            .and_then(|s| s["rank"].as_u64())
    };
    match rank_of(CC) {
        Some(1) => {}
        Some(r) => bad.push(format!("the C&C {CC} is ranked {r}, not first")),
        None => bad.push(format!("the C&C {CC} is not ranked")),
    }
    match rank_of(DL) {
        Some(1 | 2) => {}
        Some(r) => bad.push(format!(
            "the download server {DL} is ranked {r}, not in the top 2"
        )),
        None => bad.push(format!("the download server {DL} is not ranked")),
    }
    let benign_dst: Vec<String> = [WEB, VICTIM, CENTER]
        .into_iter()
        .map(|a| a.to_string())
        .chain((0..hosts.len()).map(|k| gateway(host_addr(k)).to_string()))
        .collect();
    for s in &servers {
        let ip = s["server"].as_str().unwrap_or("");
        if benign_dst.iter().any(|b| b == ip) {
            bad.push(format!("benign destination {ip} is ranked"));
        }
        for p in s["processes"].as_array().into_iter().flatten() {
            if p != "ircbot" {
                bad.push(format!("process {p} is reported for {ip}"));
            }
        }
    }
    for h in hosts {
        if h.bot
            && !h
                .bot_said
                .as_ref()
                .is_some_and(|t| t.contains(" spoofed)") && !t.contains("(0 spoofed)"))
        {
            bad.push(format!("bot host {} sent no spoofed SYN", h.name));
        }
        if h.bot && (!h.reported || h.audit.records.is_empty()) {
            bad.push(format!(
                "bot host {} did not report its bot process",
                h.name
            ));
        }
        // A benign host that visited the victim matches the claim and may say so (the
        // agent reports the packet count), but never with process records.
        if !h.bot && !h.audit.records.is_empty() {
            bad.push(format!("benign host {} reported process records", h.name));
        }
    }
    bad
}

#[allow(
    clippy::too_many_arguments,
    reason = "one printer for both output forms"
)]
pub(crate) fn print(
    a: &HostlabArgs,
    incident: &str,
    ranking: &Value,
    hosts: &[HostOut],
    problems: &[String],
    rate: u64,
    attack: Duration,
    total: Duration,
) -> Result<()> {
    if a.json {
        let v = json!({
            "incident": incident,
            "cc": CC.to_string(),
            "download": DL.to_string(),
            "seed": a.seed,
            "flood_rate_per_bot": rate,
            "hosts": hosts,
            "ranking": ranking,
            "ok": problems.is_empty(),
            "problems": problems,
            "seconds": total.as_secs_f64(),
        });
        println!("{v}");
        return Ok(());
    }
    println!(
        "incident {incident}: {} bots flooded {VICTIM}:80 at {rate} SYNs/s each, half spoofed (attack over after {:.1} s)",
        hosts.iter().filter(|h| h.bot).count(),
        attack.as_secs_f64()
    );
    println!("hosts:");
    for h in hosts {
        println!(
            "  {:<7} {:<12} {:<6} processes {:<13} attack packets {:>5} {:?}; findings {}; {}{}",
            h.name,
            h.address,
            if h.bot { "bot" } else { "benign" },
            h.processes.iter().cloned().collect::<Vec<_>>().join(","),
            h.audit.attack_packets,
            h.audit.kinds,
            if h.audit.findings.is_empty() {
                "none".into()
            } else {
                h.audit.findings.join(", ")
            },
            match (h.reported, h.audit.records.len(), h.audit.attack_packets) {
                (true, 0, _) => "matched, no suspicious process: reported the count only".into(),
                (true, r, _) => format!("reported {r} records"),
                (false, _, 0) => "no match: nothing reported".into(),
                (false, _, _) => "matched, no suspicious process: nothing reported".into(),
            },
            h.bot_said
                .as_ref()
                .map_or(String::new(), |t| format!(" (the bot said: {t})"))
        );
    }
    println!("C&C ranking (GET /v1/ranking/{incident}):");
    for s in ranking.as_array().into_iter().flatten() {
        let list = |k: &str| {
            s[k].as_array()
                .map(|v| {
                    v.iter()
                        .map(|x| x.to_string().trim_matches('"').to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default()
        };
        println!(
            "  #{} {} ({}) score {:.3}: {} bots [{}], features {}, ports {}, processes {}",
            s["rank"],
            s["server"].as_str().unwrap_or("?"),
            list("fqdns"),
            s["score"].as_f64().unwrap_or(0.0),
            s["reporters"],
            list("reporter_ids"),
            list("features"),
            list("ports"),
            list("processes"),
        );
    }
    if problems.is_empty() {
        let dl_rank = ranking
            .as_array()
            .and_then(|v| v.iter().find(|s| s["server"] == DL.to_string()))
            .map_or(Value::Null, |s| s["rank"].clone());
        println!(
            "ok: the C&C {CC} is ranked first, the download server {DL} #{dl_rank}, only ircbot is reported ({:.1} s)",
            total.as_secs_f64()
        );
    }
    Ok(())
}
