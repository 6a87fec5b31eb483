//! Socket owners from `/proc`: every `/proc/PID/fd/*` link `socket:[INODE]` gives the
//! process that holds socket INODE, with its `comm` and `exe`. [`OwnerCache`] keeps what it
//! found and scans `/proc` again only when asked about an inode it does not know, at most
//! once per [`OwnerCache::begin_poll`]; `ashiato procsnap` takes one scan.
//!
//! Reading another user's `/proc/PID/fd` needs `CAP_SYS_PTRACE` (or the same user); such
//! processes are skipped and their sockets stay unattributed.

use std::collections::HashMap;
use std::path::Path;

/// A process holding a socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    /// Process id.
    pub pid: u32,
    /// Its `comm` (the kernel's 15-character name).
    pub comm: String,
    /// Its executable, when readable.
    pub exe: Option<String>,
}

/// The inode in a `socket:[INODE]` link target.
pub fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// Scans `root` (normally `/proc`): socket inode → first process found holding it.
pub fn scan(root: &Path) -> HashMap<u64, Owner> {
    let mut owner: HashMap<u64, Owner> = HashMap::new();
    let Ok(rd) = std::fs::read_dir(root) else {
        return owner;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(e.path().join("fd")) else {
            continue;
        };
        let mut who: Option<Owner> = None;
        for fd in fds.flatten() {
            let Some(n) = std::fs::read_link(fd.path())
                .ok()
                .and_then(|t| t.to_str().and_then(socket_inode))
            else {
                continue;
            };
            let o = who.get_or_insert_with(|| Owner {
                pid,
                comm: std::fs::read_to_string(e.path().join("comm"))
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
                exe: std::fs::read_link(e.path().join("exe"))
                    .ok()
                    .map(|p| p.display().to_string()),
            });
            owner.entry(n).or_insert_with(|| o.clone());
        }
    }
    owner
}

/// Owners found so far; see the [module documentation](self).
#[derive(Debug)]
pub struct OwnerCache {
    root: std::path::PathBuf,
    map: HashMap<u64, Owner>,
    scanned_this_poll: bool,
    /// Full scans made.
    pub scans: u64,
}

impl OwnerCache {
    /// A cache over `root` (normally `/proc`).
    pub fn new(root: &Path) -> OwnerCache {
        OwnerCache {
            root: root.to_path_buf(),
            map: HashMap::new(),
            scanned_this_poll: false,
            scans: 0,
        }
    }

    /// Starts a poll: allows one more scan.
    pub fn begin_poll(&mut self) {
        self.scanned_this_poll = false;
    }

    /// The owner of `inode`, scanning `/proc` once per poll when it is unknown.
    pub fn owner(&mut self, inode: u64) -> Option<Owner> {
        if let Some(o) = self.map.get(&inode) {
            return Some(o.clone());
        }
        if self.scanned_this_poll {
            return None;
        }
        self.scanned_this_poll = true;
        self.scans += 1;
        self.map = scan(&self.root);
        self.map.get(&inode).cloned()
    }

    /// Forgets inodes no longer in use, so the cache stays the size of the socket table.
    pub fn retain(&mut self, live: impl Fn(u64) -> bool) {
        self.map.retain(|k, _| live(*k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_socket_is_found_with_our_name() {
        assert_eq!(socket_inode("socket:[12345]"), Some(12345));
        assert_eq!(socket_inode("pipe:[1]"), None);
        assert_eq!(socket_inode("socket:[x]"), None);
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let mut d = crate::sockdiag::SockDiag::open().unwrap();
        let s = d
            .dump_all()
            .unwrap()
            .into_iter()
            .find(|s| s.local.port() == port)
            .unwrap();
        let mut c = OwnerCache::new(Path::new("/proc"));
        c.begin_poll();
        let o = c.owner(s.inode).unwrap();
        assert_eq!(o.pid, std::process::id());
        assert_eq!(c.scans, 1);
        // Cached: no second scan.
        c.begin_poll();
        assert!(c.owner(s.inode).is_some());
        assert_eq!(c.scans, 1);
        // Unknown inodes scan at most once per poll.
        assert!(c.owner(1).is_none());
        assert!(c.owner(2).is_none());
        assert_eq!(c.scans, 2);
    }
}
