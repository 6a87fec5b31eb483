//! Socket → process attribution over time (pure), and the bounded process log (IO).
//!
//! [`Tracker::observe`] takes one poll's sockets (from [`crate::sockdiag`]) and an owner
//! lookup (from [`crate::procfs`]). A socket first seen at poll `t_k` existed after poll
//! `t_{k-1}` (it was not listed then), so its record is valid from `t_{k-1}`; it ends at the
//! first poll that no longer lists it. The first poll of a run starts the records at its own
//! time (packets from before the agent ran are not attributed to sockets it never saw). A
//! socket that lives less than one interval may be missed altogether: its packets stay
//! unattributed, and the audit counts them.
//!
//! The records are lines of the `ashiato_hosttrace::procs` format (`proto`, `local`,
//! `remote`, `pid`, `process`, `from`, `to`), so `ashiato hostcheck --procs` reads the log.
//! Sockets whose owner is not found within [`OWNER_TRIES`] polls are counted as
//! unattributed, never guessed.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ashiato_wire::time::rfc3339;

use crate::AgentError;
use crate::procfs::Owner;
use crate::sockdiag::Socket;

/// Polls that look for a socket's owner before it is counted as unattributed.
pub const OWNER_TRIES: u32 = 3;

/// A socket's lifetime and owner, as written to the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The socket.
    pub socket: Socket,
    /// Its owner.
    pub owner: Owner,
    /// Valid from, ns.
    pub from_ns: u64,
    /// Valid to, ns.
    pub to_ns: u64,
}

impl Record {
    /// One line of the `hostcheck --procs` format (without the newline).
    pub fn line(&self) -> String {
        line(
            self.socket.proto,
            self.socket.local,
            self.socket.remote,
            self.owner.pid,
            &self.owner.comm,
            self.from_ns,
            Some(self.to_ns),
        )
    }
}

/// One process-log line: `to_ns: None` leaves the record open-ended.
pub fn line(
    proto: u8,
    local: SocketAddr,
    remote: SocketAddr,
    pid: u32,
    process: &str,
    from_ns: u64,
    to_ns: Option<u64>,
) -> String {
    let mut v = serde_json::json!({
        "proto": if proto == 6 { "tcp" } else { "udp" },
        "local": local.to_string(),
        "pid": pid,
        "process": process,
        "from": rfc3339(from_ns),
    });
    if !remote.ip().is_unspecified() {
        v["remote"] = serde_json::json!(remote.to_string());
    }
    if let Some(t) = to_ns {
        v["to"] = serde_json::json!(rfc3339(t));
    }
    v.to_string()
}

struct Open {
    from_ns: u64,
    owner: Option<Owner>,
    tries: u32,
}

/// Counters of the attribution.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AttribStats {
    /// Polls made.
    pub polls: u64,
    /// Distinct sockets seen.
    pub sockets: u64,
    /// Of those, attributed to a process.
    pub attributed: u64,
    /// Sockets whose owner was never found (gone, or a process we may not read).
    pub unattributed: u64,
}

/// The open sockets between polls; see the [module documentation](self).
#[derive(Default)]
pub struct Tracker {
    open: HashMap<Socket, Open>,
    last_poll_ns: Option<u64>,
    stats: AttribStats,
}

impl Tracker {
    /// A tracker that has not polled yet.
    pub fn new() -> Tracker {
        Tracker::default()
    }

    /// The counters.
    pub fn stats(&self) -> AttribStats {
        self.stats
    }

    /// One poll at `now_ns`: `sockets` are those listed now; `owner` finds an inode's
    /// process. Returns the records of the sockets that closed since the last poll.
    pub fn observe(
        &mut self,
        now_ns: u64,
        sockets: &[Socket],
        mut owner: impl FnMut(u64) -> Option<Owner>,
    ) -> Vec<Record> {
        let from = self.last_poll_ns.unwrap_or(now_ns);
        self.stats.polls += 1;
        let mut live: HashMap<Socket, ()> = HashMap::with_capacity(sockets.len());
        for s in sockets {
            live.insert(*s, ());
            let o = self.open.entry(*s).or_insert_with(|| {
                self.stats.sockets += 1;
                Open {
                    from_ns: from,
                    owner: None,
                    tries: 0,
                }
            });
            if o.owner.is_none() && o.tries < OWNER_TRIES {
                o.tries += 1;
                o.owner = owner(s.inode);
                if o.owner.is_some() {
                    self.stats.attributed += 1;
                } else if o.tries == OWNER_TRIES {
                    self.stats.unattributed += 1;
                }
            }
        }
        let mut closed = Vec::new();
        let stats = &mut self.stats;
        self.open.retain(|s, o| {
            if live.contains_key(s) {
                return true;
            }
            match o.owner.take() {
                Some(owner) => closed.push(Record {
                    socket: *s,
                    owner,
                    from_ns: o.from_ns,
                    to_ns: now_ns,
                }),
                None if o.tries < OWNER_TRIES => stats.unattributed += 1,
                None => {}
            }
            false
        });
        closed.sort_by_key(|r| (r.from_ns, r.socket));
        self.last_poll_ns = Some(now_ns);
        closed
    }

    /// Records of the sockets still open, valid up to `now_ns` (for an audit while running,
    /// and for the log when the agent stops).
    pub fn open_records(&self, now_ns: u64) -> Vec<Record> {
        let mut v: Vec<Record> = self
            .open
            .iter()
            .filter_map(|(s, o)| {
                Some(Record {
                    socket: *s,
                    owner: o.owner.clone()?,
                    from_ns: o.from_ns,
                    to_ns: now_ns,
                })
            })
            .collect();
        v.sort_by_key(|r| (r.from_ns, r.socket));
        v
    }

    /// Whether `inode` belongs to a socket still open (for pruning the owner cache).
    pub fn holds_inode(&self, inode: u64) -> bool {
        self.open.keys().any(|s| s.inode == inode)
    }

    /// The inodes of the open sockets.
    pub fn inodes(&self) -> std::collections::HashSet<u64> {
        self.open.keys().map(|s| s.inode).collect()
    }
}

/// The process log: `procs.jsonl` in the history directory, rotated to `procs.1.jsonl` when
/// it reaches its bound (so the log holds at most twice the bound).
pub struct ProcLog {
    path: PathBuf,
    old: PathBuf,
    max_bytes: u64,
    bytes: u64,
    file: Option<std::fs::File>,
    /// Lines that could not be written.
    pub lost: u64,
}

/// The process-log files in `dir`, older first (the ones that exist).
pub fn log_files(dir: &Path) -> Vec<PathBuf> {
    [dir.join("procs.1.jsonl"), dir.join("procs.jsonl")]
        .into_iter()
        .filter(|p| p.exists())
        .collect()
}

impl ProcLog {
    /// Opens (appends to) the log in `dir`.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<ProcLog, AgentError> {
        let path = dir.join("procs.jsonl");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| AgentError::io(&path, e))?;
        let bytes = file.metadata().map_or(0, |m| m.len());
        Ok(ProcLog {
            old: dir.join("procs.1.jsonl"),
            path,
            max_bytes,
            bytes,
            file: Some(file),
            lost: 0,
        })
    }

    /// Appends records; a write error is returned once and counted.
    pub fn append(&mut self, recs: &[Record]) -> Result<(), AgentError> {
        if recs.is_empty() {
            return Ok(());
        }
        let mut text = String::new();
        for r in recs {
            text.push_str(&r.line());
            text.push('\n');
        }
        if self.bytes + text.len() as u64 > self.max_bytes {
            self.file = None;
            let _ = std::fs::rename(&self.path, &self.old);
            self.bytes = 0;
        }
        if self.file.is_none() {
            match std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
            {
                Ok(f) => self.file = Some(f),
                Err(e) => {
                    self.lost += recs.len() as u64;
                    return Err(AgentError::io(&self.path, e));
                }
            }
        }
        let f = self.file.as_mut().expect("opened above");
        match f.write_all(text.as_bytes()) {
            Ok(()) => {
                self.bytes += text.len() as u64;
                Ok(())
            }
            Err(e) => {
                self.lost += recs.len() as u64;
                Err(AgentError::io(&self.path, e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ashiato_hosttrace::procs::ProcMap;

    fn sock(lport: u16, rport: u16, inode: u64) -> Socket {
        Socket {
            proto: 6,
            local: SocketAddr::from(([10, 0, 0, 2], lport)),
            remote: SocketAddr::from(([10, 0, 0, 1], rport)),
            inode,
        }
    }

    fn owner(pid: u32, comm: &str) -> Owner {
        Owner {
            pid,
            comm: comm.into(),
            exe: None,
        }
    }

    #[test]
    fn records_span_from_the_poll_before_to_the_poll_after_and_join_in_hostcheck() {
        let mut t = Tracker::new();
        let a = sock(40000, 6667, 11);
        let b = sock(40001, 80, 12);
        let ghost = sock(40002, 80, 13);
        let who = |i: u64| match i {
            11 => Some(owner(7, "bot")),
            12 => Some(owner(8, "curl")),
            _ => None,
        };
        assert!(t.observe(100, &[], who).is_empty());
        assert!(t.observe(200, &[a], who).is_empty());
        assert!(t.observe(300, &[a, b, ghost], who).is_empty());
        let closed = t.observe(400, &[b], who);
        assert_eq!(closed.len(), 1);
        assert_eq!((closed[0].from_ns, closed[0].to_ns), (100, 400));
        assert_eq!(closed[0].owner.comm, "bot");
        let open = t.open_records(450);
        assert_eq!(open.len(), 1);
        assert_eq!((open[0].from_ns, open[0].to_ns), (200, 450));
        let s = t.stats();
        assert_eq!((s.sockets, s.attributed, s.unattributed), (3, 2, 1));
        // The log lines are what hostcheck's ProcMap reads, with the same intervals.
        let text: String = closed
            .iter()
            .chain(&open)
            .map(|r| r.line() + "\n")
            .collect();
        let m = ProcMap::parse(&text).unwrap();
        assert_eq!(m.lookup(6, a.local, a.remote, 150).unwrap().process, "bot");
        assert!(m.lookup(6, a.local, a.remote, 401).is_none());
        assert!(m.lookup(6, a.local, a.remote, 99).is_none());
        assert_eq!(m.lookup(6, b.local, b.remote, 449).unwrap().pid, Some(8));
        assert!(m.lookup(6, ghost.local, ghost.remote, 350).is_none());
    }

    #[test]
    fn the_first_poll_does_not_reach_back_and_owners_are_retried_then_counted() {
        let mut t = Tracker::new();
        let a = sock(1, 2, 5);
        let mut asked = 0;
        for now in [10, 20, 30, 40, 50] {
            t.observe(now, &[a], |_| {
                asked += 1;
                None
            });
        }
        assert_eq!(asked, OWNER_TRIES);
        assert_eq!(t.stats().unattributed, 1);
        let closed = t.observe(60, &[], |_| None);
        assert!(closed.is_empty());
        assert_eq!(t.stats().unattributed, 1);
        let mut t = Tracker::new();
        t.observe(1000, &[a], |_| Some(owner(1, "x")));
        assert_eq!(t.open_records(1001)[0].from_ns, 1000);
    }

    #[test]
    fn the_log_rotates_at_its_bound() {
        let d = tempfile::tempdir().unwrap();
        let mut log = ProcLog::open(d.path(), 400).unwrap();
        let r = Record {
            socket: sock(1, 2, 3),
            owner: owner(1, "x"),
            from_ns: 1,
            to_ns: 2,
        };
        for _ in 0..10 {
            log.append(std::slice::from_ref(&r)).unwrap();
        }
        let files = log_files(d.path());
        assert_eq!(files.len(), 2);
        for f in files {
            assert!(std::fs::metadata(f).unwrap().len() <= 400);
        }
    }
}
