//! `ashiato procsnap`: writes the socket → process snapshot `hostcheck --procs` reads, from
//! `/proc/net/{tcp,udp,tcp6,udp6}` and each process's `/proc/PID/fd` links (the /proc half of
//! the agent's attribution; sockets of processes we may not read are listed as unattributed).

use std::collections::HashMap;
use std::io::Write;

use anyhow::Result;
use ashiato_hosttrace::procs::parse_proc_net;
use ashiato_wire::time::rfc3339;

use crate::args::ProcsnapArgs;

/// Socket inode → (pid, command name) of every process whose `/proc/PID/fd` we may read.
/// Inodes are unique across network namespaces, so one scan serves every namespace.
pub(crate) fn socket_owners() -> std::io::Result<HashMap<u64, (u32, String)>> {
    let mut owner: HashMap<u64, (u32, String)> = HashMap::new();
    for e in std::fs::read_dir("/proc")?.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        let Ok(fds) = std::fs::read_dir(e.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(t) = std::fs::read_link(fd.path())
                && let Some(n) = t
                    .to_str()
                    .and_then(|s| s.strip_prefix("socket:["))
                    .and_then(|s| s.strip_suffix(']'))
                    .and_then(|s| s.parse::<u64>().ok())
            {
                owner.entry(n).or_insert((pid, comm.trim().to_string()));
            }
        }
    }
    Ok(owner)
}

/// Takes the snapshot and writes it as JSON lines.
pub fn run(a: &ProcsnapArgs) -> Result<()> {
    let owner = socket_owners()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut out: Box<dyn Write> = match &a.out {
        Some(p) => Box::new(std::io::BufWriter::new(std::fs::File::create(p)?)),
        None => Box::new(std::io::stdout().lock()),
    };
    let (mut n, mut unattributed) = (0, 0);
    for (proto, file) in [
        ("tcp", "tcp"),
        ("tcp", "tcp6"),
        ("udp", "udp"),
        ("udp", "udp6"),
    ] {
        let text = std::fs::read_to_string(format!("/proc/net/{file}")).unwrap_or_default();
        for s in parse_proc_net(&text) {
            let Some((pid, comm)) = owner.get(&s.inode) else {
                unattributed += 1;
                continue;
            };
            let mut v = serde_json::json!({
                "proto": proto,
                "local": s.local.to_string(),
                "pid": pid,
                "process": comm,
                "from": rfc3339(now),
            });
            if !s.remote.ip().is_unspecified() {
                v["remote"] = serde_json::json!(s.remote.to_string());
            }
            writeln!(out, "{v}")?;
            n += 1;
        }
    }
    out.flush()?;
    eprintln!("{n} sockets attributed, {unattributed} not (no readable owner)");
    Ok(())
}
