//! The hosts' side of `ashiato hostlab`, by the forensic path: each host's communication
//! history is a `tcpdump` capture of its interface, its socket → process attribution comes
//! from `/proc` samples taken every [`SAMPLE_EVERY`] (the `procsnap` scan, merged into
//! records with validity intervals), and after the claim is published each host audits its
//! history with `ashiato hostcheck --list` against the center's signed list and reports the
//! suspicious processes' destinations, as `ashiato agent` does live.

use std::collections::{BTreeMap, HashMap};
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

use crate::procsnap_cmd::socket_owners;

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
            let owners = socket_owners().unwrap_or_default();
            let t = now_ns();
            let mut s = o.lock().unwrap_or_else(|e| e.into_inner());
            for (h, pid) in anchors.iter().enumerate() {
                for (proto, file) in [("tcp", "tcp"), ("udp", "udp")] {
                    let text = std::fs::read_to_string(format!("/proc/{pid}/net/{file}"))
                        .unwrap_or_default();
                    for sock in parse_proc_net(&text) {
                        let Some((opid, comm)) = owners.get(&sock.inode) else {
                            continue;
                        };
                        let remote =
                            (!sock.remote.ip().is_unspecified()).then(|| sock.remote.to_string());
                        let key = (proto, sock.local.to_string(), remote, *opid, comm.clone());
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
    /// The process names seen on host `h`.
    pub fn processes(&self, h: usize) -> std::collections::BTreeSet<String> {
        self.hosts[h].keys().map(|k| k.4.clone()).collect()
    }

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
