//! `ashiato hostcheck`: the host audit (`ashiato-hosttrace`) over captured history files, for
//! forensics. Reads the claim list and the optional process snapshot, feeds every frame of
//! every file (in the order given, frames numbered per file like Wireshark) to the audit, and
//! prints the claims matched and the findings. Exit 3 when a claim matched.
//!
//! A file that ends inside a record (a history cut by a crash or a full disk) is audited up to
//! the damage and named in a warning: the frames before it are still evidence.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use ashiato_agent::scan::{OwnedFlow, audit_files, flow_owners, proto_name};
use ashiato_hosttrace::claim::parse_claims;
use ashiato_hosttrace::claimlist::{AgentList, SignedDelta};
use ashiato_hosttrace::procs::ProcMap;
use ashiato_hosttrace::{Audit, AuditConfig, Evidence};
use ashiato_wire::time::rfc3339;
use serde_json::{Value, json};

use crate::CheckFailed;
use crate::args::HostcheckArgs;

/// Runs the audit and prints its results.
pub fn run(a: &HostcheckArgs) -> anyhow::Result<()> {
    let procs = match &a.procs {
        Some(p) => {
            let t = std::fs::read_to_string(p)
                .with_context(|| format!("reading process snapshot {}", p.display()))?;
            ProcMap::parse(&t).with_context(|| format!("process snapshot {}", p.display()))?
        }
        None => ProcMap::default(),
    };
    let cfg = AuditConfig {
        skew_ns: a.skew.saturating_mul(1_000_000_000),
        ..AuditConfig::default()
    };
    let started = std::time::Instant::now();
    let (mut audit, hashed) = match (&a.claims, &a.list) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading claims {}", path.display()))?;
            let claims =
                parse_claims(&text).with_context(|| format!("claims {}", path.display()))?;
            (Audit::new(claims, cfg), false)
        }
        (None, Some(path)) => (Audit::hashed(published_list(a, path)?, cfg), true),
        (None, None) => unreachable!("clap requires --claims or --list"),
    };
    let claims = audit.claims().to_vec();
    let damaged: Vec<String> = audit_files(&mut audit, &a.pcap)?
        .files
        .into_iter()
        .map(|(path, why)| {
            eprintln!("ashiato: warning: {why}");
            path.display().to_string()
        })
        .collect();
    let report = audit.finish();
    let out = Out {
        files: &a.pcap,
        procs: &procs,
    };
    for m in &report.matches {
        let c = &claims[m.claim];
        let kinds: serde_json::Map<String, Value> = m
            .kinds
            .iter()
            .map(|(k, v)| ((*k).to_string(), json!(v)))
            .collect();
        let flows = out.flows(&m.evidence, None);
        if a.json {
            let mut v = json!({
                "event": "claim_match",
                "claim": c.id,
                "victim": (!hashed).then(|| c.victim.to_string()),
                "port": c.port,
                "kinds": kinds,
            });
            out.evidence(&mut v, &m.evidence, flows);
            println!("{v}");
        } else {
            let k: Vec<String> = m.kinds.iter().map(|(k, v)| format!("{k} {v}")).collect();
            println!(
                "claim {} MATCHED: {} packets ({}) from {} to {}, frames {}",
                c.id,
                m.evidence.packets,
                k.join(", "),
                rfc3339(m.evidence.first_ns),
                rfc3339(m.evidence.last_ns),
                out.frames_text(&m.evidence)
            );
            print_flows(&flows);
        }
    }
    for f in &report.findings {
        let flows = out.flows(&f.evidence, Some(f.peer));
        let first_proc = flows.iter().find_map(|x| x.process.clone());
        let near: Vec<&str> = f
            .near_claims
            .iter()
            .map(|&i| claims[i].id.as_str())
            .collect();
        if a.json {
            let mut v = json!({
                "event": "finding",
                "feature": f.feature.name(),
                "peer": f.peer.ip().to_string(),
                "port": f.peer.port(),
                "fqdn": f.fqdn,
                "process": first_proc.as_ref().map(|p| &p.0),
                "pid": first_proc.as_ref().and_then(|p| p.1),
                "details": f.details,
                "near_claims": near,
            });
            out.evidence(&mut v, &f.evidence, flows);
            println!("{v}");
        } else {
            println!(
                "finding {} {} ({}) process {}: {}; {} packets from {}, frames {}{}",
                f.feature.name(),
                f.peer,
                f.fqdn.as_deref().unwrap_or("no name"),
                first_proc.as_ref().map_or("unattributed", |p| p.0.as_str()),
                f.details.join("; "),
                f.evidence.packets,
                rfc3339(f.evidence.first_ns),
                out.frames_text(&f.evidence),
                if near.is_empty() {
                    String::new()
                } else {
                    format!(", near claims {}", near.join(","))
                }
            );
        }
    }
    let s = &report.stats;
    if a.json {
        println!(
            "{}",
            json!({
                "event": "summary",
                "files": a.pcap.len(),
                "frames": s.frames,
                "unparsed": s.unparsed,
                "claims": claims.len(),
                "claims_matched": report.matches.len(),
                "findings": report.findings.len(),
                "damaged_files": damaged,
                "seconds": started.elapsed().as_secs_f64(),
            })
        );
    } else {
        println!(
            "{} frames in {} files ({} not IP), {} of {} claims matched, {} findings",
            s.frames,
            a.pcap.len(),
            s.unparsed,
            report.matches.len(),
            claims.len(),
            report.findings.len()
        );
    }
    if report.matches.is_empty() {
        Ok(())
    } else {
        Err(CheckFailed(format!(
            "the history matches {} claim(s): this host took part in an attack",
            report.matches.len()
        ))
        .into())
    }
}

/// The center's list: deltas verified with the center's public key and applied in order.
fn published_list(a: &HostcheckArgs, path: &std::path::Path) -> anyhow::Result<AgentList> {
    let (Some(pub_path), Some(key_path)) = (&a.list_pub, &a.list_key) else {
        anyhow::bail!("--list needs --list-pub and --list-key");
    };
    let hex = std::fs::read_to_string(pub_path)
        .with_context(|| format!("reading {}", pub_path.display()))?;
    let public = ashiato_agent::center::public_key_hex(hex.trim())
        .with_context(|| format!("{}", pub_path.display()))?;
    let secret: [u8; 32] = std::fs::read(key_path)
        .with_context(|| format!("reading {}", key_path.display()))?
        .try_into()
        .map_err(|_| anyhow::anyhow!("{}: not 32 bytes", key_path.display()))?;
    let mut list = AgentList::new(&public, &secret);
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    for (i, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let d: SignedDelta = serde_json::from_str(line)
            .with_context(|| format!("{} delta {}", path.display(), i + 1))?;
        list.apply(&d)
            .with_context(|| format!("{} delta {}", path.display(), i + 1))?;
    }
    Ok(list)
}

fn print_flows(flows: &[OwnedFlow]) {
    for f in flows {
        println!(
            "  {} {} -> {} process {}",
            proto_name(f.flow.proto),
            f.flow.src,
            f.flow.dst,
            f.process
                .as_ref()
                .map_or("unattributed".to_string(), |(n, pid)| match pid {
                    Some(p) => format!("{n} (pid {p})"),
                    None => n.clone(),
                })
        );
    }
}

struct Out<'a> {
    files: &'a [PathBuf],
    procs: &'a ProcMap,
}

impl Out<'_> {
    /// The evidence's flows with their processes (see [`flow_owners`]).
    fn flows(&self, e: &Evidence, peer: Option<SocketAddr>) -> Vec<OwnedFlow> {
        flow_owners(self.procs, e, peer)
    }

    fn frames_text(&self, e: &Evidence) -> String {
        let v: Vec<String> = e
            .frames
            .iter()
            .map(|p| format!("{}#{}", self.file_name(p.file), p.frame))
            .collect();
        v.join(" ")
    }

    fn file_name(&self, i: u32) -> String {
        self.files
            .get(i as usize)
            .map_or_else(|| "?".into(), |p| p.display().to_string())
    }

    /// Adds the common evidence fields to a JSON line.
    fn evidence(&self, v: &mut Value, e: &Evidence, flows: Vec<OwnedFlow>) {
        let frames: Vec<Value> = e
            .frames
            .iter()
            .map(|p| json!({"file": self.file_name(p.file), "frame": p.frame}))
            .collect();
        let flows: Vec<Value> = flows
            .into_iter()
            .map(|f| {
                json!({
                    "proto": proto_name(f.flow.proto),
                    "src": f.flow.src.to_string(),
                    "dst": f.flow.dst.to_string(),
                    "first": rfc3339(f.first_ns),
                    "process": f.process.as_ref().map(|p| &p.0),
                    "pid": f.process.as_ref().and_then(|p| p.1),
                })
            })
            .collect();
        let o = v.as_object_mut().expect("an object");
        o.insert("packets".into(), json!(e.packets));
        o.insert("bytes".into(), json!(e.bytes));
        o.insert("first".into(), json!(rfc3339(e.first_ns)));
        o.insert("last".into(), json!(rfc3339(e.last_ns)));
        o.insert("evidence".into(), Value::Array(frames));
        o.insert("flows".into(), Value::Array(flows));
    }
}
