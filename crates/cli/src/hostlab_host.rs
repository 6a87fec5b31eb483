//! The hosts' side of `ashiato hostlab`. By default each host runs `ashiato agent --once`
//! ([`start_agent`]): it records its interface with its own attribution, and when stopped
//! polls the claim list, audits and reports; the lab reads back what it printed.
//!
//! With `--forensic`, the path without an agent: each host's history is a `tcpdump` capture
//! of its interface, its socket → process attribution comes from `/proc` samples taken
//! every [`SAMPLE_EVERY`] (the `procsnap` scan, merged into records with validity
//! intervals), and after the claim is published each host audits its history with
//! `ashiato hostcheck --list` against the center's signed list; the lab posts the suspicious
//! processes' destinations for it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use ashiato_hosttrace::procs::parse_proc_net;
use ashiato_hosttrace::rank::{BotReport, ReportRecord};
use ashiato_wire::time::rfc3339;
use serde_json::{Value, json};

use crate::hostlab_proc::{Proc, spawn_split, wait_log};

/// How often the process sampler looks at `/proc`.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(100);

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// A socket seen owned by a process: (proto, local, remote or none, pid, command).
type SockKey = (&'static str, String, Option<String>, u32, String);

/// Sockets per host with the sample times they were first and last seen at, and the sample
/// times before and after (the interval the socket may have existed in).
#[derive(Default)]
pub struct Samples {
    /// Per host: socket → (valid from, valid to), ns.
    hosts: Vec<HashMap<SockKey, (u64, u64)>>,
}

/// Samples `/proc` for the hosts until `stop`. `anchors[i]` is a process living in host i's
/// network namespace (its capture): `/proc/PID/net/*` are that namespace's socket tables.
pub fn sampler(anchors: Vec<u32>, stop: Arc<AtomicBool>) -> Arc<Mutex<Samples>> {
    let out = Arc::new(Mutex::new(Samples {
        hosts: vec![HashMap::new(); anchors.len()],
    }));
    let o = out.clone();
    std::thread::spawn(move || {
        let mut prev = now_ns();
        while !stop.load(Ordering::Relaxed) {
            let owners = ashiato_agent::procfs::scan(Path::new("/proc"));
            let t = now_ns();
            let mut s = o.lock().unwrap_or_else(|e| e.into_inner());
            for (h, pid) in anchors.iter().enumerate() {
                for (proto, file) in [("tcp", "tcp"), ("udp", "udp")] {
                    let text = std::fs::read_to_string(format!("/proc/{pid}/net/{file}"))
                        .unwrap_or_default();
                    for sock in parse_proc_net(&text) {
                        let Some(o) = owners.get(&sock.inode) else {
                            continue;
                        };
                        let remote =
                            (!sock.remote.ip().is_unspecified()).then(|| sock.remote.to_string());
                        let key = (proto, sock.local.to_string(), remote, o.pid, o.comm.clone());
                        // It did not exist at the previous sample (or was not seen): it may
                        // have been opened right after it. Valid until the next sample.
                        let e = s.hosts[h].entry(key).or_insert((prev, 0));
                        e.1 = t + SAMPLE_EVERY.as_nanos() as u64;
                    }
                }
            }
            drop(s);
            prev = t;
            std::thread::sleep(SAMPLE_EVERY);
        }
    });
    out
}

impl Samples {
    /// Host `h`'s records in the `hostcheck --procs` format.
    pub fn procs_file(&self, h: usize) -> String {
        let mut lines: Vec<String> = self.hosts[h]
            .iter()
            .map(|((proto, local, remote, pid, comm), (from, to))| {
                let mut v = json!({
                    "proto": proto, "local": local, "pid": pid, "process": comm,
                    "from": rfc3339(*from), "to": rfc3339(*to),
                });
                if let Some(r) = remote {
                    v["remote"] = json!(r);
                }
                v.to_string()
            })
            .collect();
        lines.sort();
        lines.join("\n") + "\n"
    }
}

/// What one host's audit found.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct HostAudit {
    /// Attack packets the history holds for the incident (0: no match).
    pub attack_packets: u64,
    /// How the packets matched (`direct`, `spoofed-source`, ...).
    pub kinds: BTreeMap<String, u64>,
    /// Findings by feature, as `feature peer (process)`.
    pub findings: Vec<String>,
    /// The records the host reports (the suspicious processes' destinations).
    pub records: Vec<ReportRecord>,
    /// Flows of the findings no process could be found for (not reported).
    pub unattributed: usize,
}

/// Runs `ashiato hostcheck` in host namespace `ns` on its history and turns its JSON lines
/// into the host's audit for `incident`.
pub fn audit(
    exe: &Path,
    ns: &str,
    dir: &Path,
    keys: &Path,
    list: &Path,
    incident: &str,
) -> Result<HostAudit> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(exe)
        .args(["hostcheck", "--json", "--pcap"])
        .arg(dir.join("history.pcap"))
        .arg("--list")
        .arg(list)
        .arg("--list-pub")
        .arg(keys.join("sign.pub"))
        .arg("--list-key")
        .arg(keys.join("list.key"))
        .arg("--procs")
        .arg(dir.join("procs.jsonl"))
        .output()
        .context("running ashiato hostcheck")?;
    std::fs::write(dir.join("hostcheck.jsonl"), &out.stdout)?;
    // 0: no claim matched; 3: a claim matched (this host took part).
    if !matches!(out.status.code(), Some(0 | 3)) {
        bail!(
            "hostcheck on {ns} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let mut a = HostAudit::default();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: Value = serde_json::from_str(line).context("hostcheck output")?;
        match v["event"].as_str() {
            Some("claim_match") if v["claim"] == incident => {
                a.attack_packets += v["packets"].as_u64().unwrap_or(0);
                for (k, n) in v["kinds"].as_object().into_iter().flatten() {
                    *a.kinds.entry(k.clone()).or_default() += n.as_u64().unwrap_or(0);
                }
            }
            Some("finding") => finding(&mut a, &v, incident)?,
            _ => {}
        }
    }
    Ok(a)
}

/// A finding near the incident, attributed to a process, becomes a record; unattributed
/// ones are counted, never guessed.
fn finding(a: &mut HostAudit, v: &Value, incident: &str) -> Result<()> {
    let feature = v["feature"].as_str().unwrap_or("?").to_string();
    let process = v["process"].as_str().map(str::to_string);
    a.findings.push(format!(
        "{feature} {}:{} ({})",
        v["peer"].as_str().unwrap_or("?"),
        v["port"],
        process.as_deref().unwrap_or("unattributed")
    ));
    let near = v["near_claims"]
        .as_array()
        .is_some_and(|c| c.iter().any(|x| x == incident));
    let Some(process) = process else {
        a.unattributed += 1;
        return Ok(());
    };
    if !near {
        return Ok(());
    }
    let first = v["first"].as_str().unwrap_or("");
    a.records.push(ReportRecord {
        time_ns: ashiato_hosttrace::claim::parse_rfc3339(first)
            .with_context(|| format!("finding time {first:?}"))?,
        proto: v["flows"][0]["proto"].as_str().unwrap_or("tcp").to_string(),
        dst: v["peer"]
            .as_str()
            .unwrap_or("")
            .parse()
            .context("finding peer")?,
        port: v["port"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(0),
        fqdn: v["fqdn"].as_str().map(str::to_string),
        process: Some(process),
        features: vec![feature],
    });
    Ok(())
}

/// The host's report for the center, or `None` when it has nothing to say (no match, or a
/// match without a suspicious process: a visitor of the attacked service).
pub fn report(host: &str, incident: &str, port: Option<u16>, a: &HostAudit) -> Option<BotReport> {
    (a.attack_packets > 0 && !a.records.is_empty()).then(|| BotReport {
        reporter: host.to_string(),
        incident: incident.to_string(),
        attack_packets: a.attack_packets,
        attacked_port: port,
        records: a.records.clone(),
    })
}

/// A host's working directory.
pub fn host_dir(work: &Path, host: &str) -> Result<PathBuf> {
    let d = work.join(host);
    std::fs::create_dir_all(d.join("downloads"))?;
    Ok(d)
}

/// Starts `ashiato agent` on host namespace `ns`: it enrolls at the center, records the
/// host's interface into `dir/history` with its own socket attribution, and when told to stop
/// (SIGTERM) polls the claim list once, audits, and reports with `--yes`.
pub fn start_agent(
    exe: &Path,
    ns: &ashiato_capture::netns::Netns,
    dir: &Path,
    pki: &Path,
    name: &str,
    center: &str,
) -> Result<Proc> {
    let (out, log) = (dir.join("agent.out"), dir.join("agent.log"));
    let mut c = spawn_split(
        ns,
        &[
            exe.as_os_str(),
            "agent".as_ref(),
            "--iface".as_ref(),
            "e0".as_ref(),
            "--history-dir".as_ref(),
            dir.join("history").as_os_str(),
            "--center".as_ref(),
            center.as_ref(),
            "--tls-dir".as_ref(),
            pki.as_os_str(),
            "--name".as_ref(),
            name.as_ref(),
            "--once".as_ref(),
            // Until the lab stops it, once the claim is published.
            "--duration".as_ref(),
            "3600".as_ref(),
            "--yes".as_ref(),
        ],
        std::fs::File::create(&out)?,
        std::fs::File::create(&log)?,
    )?;
    wait_log(&log, "agent: recording", &mut c, "ashiato agent")?;
    Ok(Proc(c))
}

/// Waits for a stopped agent and reads what it printed: whether it matched the incident,
/// the packets, the records it reported, and whether the center took the report.
pub fn finish_agent(p: &mut Proc, dir: &Path, incident: &str) -> Result<(HostAudit, bool)> {
    let st = p
        .wait_for(Duration::from_secs(60))
        .context("the agent did not finish its audit within 60 s")?;
    let out = std::fs::read_to_string(dir.join("agent.out"))?;
    if !matches!(st.code(), Some(0 | 3)) {
        bail!(
            "ashiato agent failed ({st}): {}{}",
            out,
            std::fs::read_to_string(dir.join("agent.log")).unwrap_or_default()
        );
    }
    Ok(parse_agent(&out, incident))
}

/// The agent's printed round for `incident` (the consent text and the send line).
fn parse_agent(out: &str, incident: &str) -> (HostAudit, bool) {
    let mut a = HostAudit::default();
    let mut reported = false;
    let mut mine = false;
    let took = format!("This host took part in attack {incident} (");
    for line in out.lines() {
        if let Some(rest) = line.strip_prefix(&took) {
            mine = true;
            // "... it sent N matching packets (direct N, ...)."
            if let Some(t) = rest.split("it sent ").nth(1) {
                a.attack_packets = t
                    .split(' ')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                let kinds = t
                    .rsplit_once('(')
                    .map_or("", |x| x.1)
                    .trim_end_matches(").");
                for k in kinds.split(", ") {
                    if let Some((name, n)) = k.rsplit_once(' ')
                        && let Ok(n) = n.parse()
                    {
                        a.kinds.insert(name.to_string(), n);
                    }
                }
            }
        } else if line.starts_with("This host took part in attack ") {
            mine = false;
        } else if mine && let Some(r) = parse_record(line) {
            a.findings.push(format!(
                "{} {}:{} ({})",
                r.features.join(","),
                r.dst,
                r.port,
                r.process.as_deref().unwrap_or("unattributed")
            ));
            a.records.push(r);
        } else if line.starts_with("report ")
            && (line.ends_with(&format!(" for {incident} sent"))
                || line.ends_with(&format!(" for {incident} was already at the center")))
        {
            reported = true;
        }
    }
    (a, reported)
}

/// `  TIME  PROTO ADDR:PORT  fqdn NAME  process NAME  features F,G` (the agent's consent text).
fn parse_record(line: &str) -> Option<ReportRecord> {
    let f: Vec<&str> = line.trim_start().split("  ").collect();
    let [time, dst, fqdn, process, features] = f.as_slice() else {
        return None;
    };
    let (proto, addr) = dst.split_once(' ')?;
    let addr: std::net::SocketAddr = addr.parse().ok()?;
    let named = |s: &str, k: &str| s.strip_prefix(k).filter(|v| *v != "-").map(str::to_string);
    Some(ReportRecord {
        time_ns: ashiato_hosttrace::claim::parse_rfc3339(time).ok()?,
        proto: proto.to_string(),
        dst: addr.ip(),
        port: addr.port(),
        fqdn: named(fqdn, "fqdn "),
        process: named(process, "process "),
        // A connection of the process that showed no feature itself has none.
        features: features
            .strip_prefix("features")?
            .trim()
            .split(',')
            .filter(|f| !f.is_empty())
            .map(str::to_string)
            .collect(),
    })
}

/// The process names in a process log (`procs.jsonl` of the agent or of the samples).
pub fn processes_in(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["process"].as_str().map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agents_round_is_read_back() {
        let out = "audited 1 claims (list version 1) against 1 segments holding a .. b: 10 frames, 2 findings
This host took part in attack incident-1 (2026-11-30T10:00:00.000000000Z .. 2026-11-30T10:00:03.000000000Z): it sent 1289 matching packets (direct 1280, spoofed-source 9).
  sent by: no attributed process (2 flows unattributed)
Report host3-incident-1 to 10.77.250.2:8443 would send these 2 records (no packet contents):
  2026-11-30T10:00:00.100000000Z  tcp 198.51.100.10:6667  fqdn cc.botnet.lab  process ircbot  features irc
  2026-11-30T10:00:01.000000000Z  tcp 203.0.113.80:80  fqdn -  process ircbot  features http-exe
  2026-11-30T10:00:01.500000000Z  tcp 192.0.2.7:443  fqdn -  process ircbot  features 
report host3-incident-1 for incident-1 sent
";
        let (a, sent) = parse_agent(out, "incident-1");
        assert!(sent);
        assert_eq!(a.attack_packets, 1289);
        assert_eq!(a.kinds.get("spoofed-source"), Some(&9));
        assert_eq!(a.records.len(), 3);
        assert!(a.records[2].features.is_empty());
        assert_eq!(a.records[0].fqdn.as_deref(), Some("cc.botnet.lab"));
        assert_eq!(a.records[1].fqdn, None);
        assert_eq!(a.records[1].features, ["http-exe"]);
        let (b, sent) = parse_agent(out, "incident-2");
        assert!(!sent && b.records.is_empty() && b.attack_packets == 0);
    }
}
