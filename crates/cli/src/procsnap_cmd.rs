//! `ashiato procsnap`: writes the socket → process snapshot `hostcheck --procs` reads, from
//! `/proc/net/{tcp,udp,tcp6,udp6}` and each process's `/proc/PID/fd` links (the /proc half of
//! the agent's attribution; sockets of processes we may not read are listed as unattributed).

use std::io::Write;

use anyhow::Result;
use ashiato_agent::attrib::line;
use ashiato_hosttrace::procs::parse_proc_net;

use crate::args::ProcsnapArgs;

/// Takes the snapshot and writes it as JSON lines.
pub fn run(a: &ProcsnapArgs) -> Result<()> {
    let owner = ashiato_agent::procfs::scan(std::path::Path::new("/proc"));
    let now = ashiato_agent::now_ns();
    let mut out: Box<dyn Write> = match &a.out {
        Some(p) => Box::new(std::io::BufWriter::new(std::fs::File::create(p)?)),
        None => Box::new(std::io::stdout().lock()),
    };
    let (mut n, mut unattributed) = (0, 0);
    for (proto, file) in [(6, "tcp"), (6, "tcp6"), (17, "udp"), (17, "udp6")] {
        let text = std::fs::read_to_string(format!("/proc/net/{file}")).unwrap_or_default();
        for s in parse_proc_net(&text) {
            let Some(o) = owner.get(&s.inode) else {
                unattributed += 1;
                continue;
            };
            let v = line(proto, s.local, s.remote, o.pid, &o.comm, now, None);
            writeln!(out, "{v}")?;
            n += 1;
        }
    }
    out.flush()?;
    eprintln!("{n} sockets attributed, {unattributed} not (no readable owner)");
    Ok(())
}
