//! Socket → process attribution from a snapshot file (`hostcheck --procs`).
//!
//! The live agent asks the kernel (netlink sock_diag plus /proc); offline, a snapshot that an
//! agent or a script wrote stands in for it. One JSON object a line:
//!
//! ```json
//! {"proto":"tcp","local":"10.0.0.5:49165","remote":"144.91.69.195:80","pid":4242,"process":"bot.exe",
//!  "from":"2026-01-01T10:00:00Z","to":"2026-01-01T10:30:00Z"}
//! {"proto":"udp","local":"0.0.0.0:5353","pid":77,"process":"resolver"}
//! ```
//!
//! `remote`, `from` and `to` are optional. A flow is attributed to the record with the same
//! protocol, local and remote endpoints; failing that, to a record with the same protocol and
//! local port whose local address is the flow's or unspecified (an unconnected UDP socket, a
//! listener). With `from`/`to`, a record only covers packets in that interval. Flows that match
//! no record are reported as unattributed (`"process": null`), never guessed.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use serde::Deserialize;

use crate::HostTraceError;
use crate::claim::{Protocol, parse_rfc3339};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProcLine {
    proto: Protocol,
    local: SocketAddr,
    #[serde(default)]
    remote: Option<SocketAddr>,
    #[serde(default)]
    pid: Option<u32>,
    process: String,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
}

/// A process that owned a socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcRecord {
    /// Process id, if known.
    pub pid: Option<u32>,
    /// Process name (or command line).
    pub process: String,
    from_ns: u64,
    to_ns: u64,
}

impl ProcRecord {
    /// Start of the interval the record covers, ns (0 without `from`).
    pub fn from_ns(&self) -> u64 {
        self.from_ns
    }

    /// End of the interval, ns (`u64::MAX` without `to`).
    pub fn to_ns(&self) -> u64 {
        self.to_ns
    }
}

/// The snapshot, indexed for lookups.
#[derive(Clone, Debug, Default)]
pub struct ProcMap {
    exact: HashMap<(u8, SocketAddr, SocketAddr), Vec<ProcRecord>>,
    by_port: HashMap<(u8, u16), Vec<(IpAddr, ProcRecord)>>,
}

fn proto_number(p: Protocol) -> u8 {
    match p {
        Protocol::Tcp => 6,
        Protocol::Udp => 17,
        Protocol::Icmp => 1,
        Protocol::Any => 0,
    }
}

impl ProcMap {
    /// Parses a snapshot (JSON lines; blank and `#` lines skipped).
    pub fn parse(text: &str) -> Result<ProcMap, HostTraceError> {
        let mut m = ProcMap::default();
        for (i, line) in text.lines().enumerate() {
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let err = |reason: String| HostTraceError::Proc {
                line: i + 1,
                reason,
            };
            let p: ProcLine = serde_json::from_str(l).map_err(|e| err(e.to_string()))?;
            let from_ns = match &p.from {
                Some(t) => parse_rfc3339(t).map_err(|e| err(e.to_string()))?,
                None => 0,
            };
            let to_ns = match &p.to {
                Some(t) => parse_rfc3339(t).map_err(|e| err(e.to_string()))?,
                None => u64::MAX,
            };
            let rec = ProcRecord {
                pid: p.pid,
                process: p.process,
                from_ns,
                to_ns,
            };
            let proto = proto_number(p.proto);
            match p.remote {
                Some(r) => m.exact.entry((proto, p.local, r)).or_default().push(rec),
                None => m
                    .by_port
                    .entry((proto, p.local.port()))
                    .or_default()
                    .push((p.local.ip(), rec)),
            }
        }
        Ok(m)
    }

    /// The records with both endpoints (connected sockets): protocol number, local,
    /// remote, record.
    pub fn connections(&self) -> impl Iterator<Item = (u8, SocketAddr, SocketAddr, &ProcRecord)> {
        self.exact
            .iter()
            .flat_map(|(&(p, l, r), v)| v.iter().map(move |rec| (p, l, r, rec)))
    }

    /// No records at all.
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.by_port.is_empty()
    }

    /// The process that owned the flow `local → remote` of IP protocol `proto` at `ts_ns`.
    pub fn lookup(
        &self,
        proto: u8,
        local: SocketAddr,
        remote: SocketAddr,
        ts_ns: u64,
    ) -> Option<&ProcRecord> {
        let covers = |r: &&ProcRecord| r.from_ns <= ts_ns && ts_ns <= r.to_ns;
        if let Some(v) = self.exact.get(&(proto, local, remote))
            && let Some(r) = v.iter().find(covers)
        {
            return Some(r);
        }
        self.by_port
            .get(&(proto, local.port()))?
            .iter()
            .filter(|(ip, _)| *ip == local.ip() || ip.is_unspecified())
            .map(|(_, r)| r)
            .find(covers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_flows_win_over_local_ports_and_times_bound_records() {
        let m = ProcMap::parse(
            r#"{"proto":"tcp","local":"10.0.0.5:49165","remote":"1.2.3.4:80","pid":1,"process":"bot"}
{"proto":"tcp","local":"0.0.0.0:49165","process":"other"}
{"proto":"udp","local":"10.0.0.5:5000","process":"late","from":"2026-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        let l: SocketAddr = "10.0.0.5:49165".parse().unwrap();
        let r: SocketAddr = "1.2.3.4:80".parse().unwrap();
        let r2: SocketAddr = "5.6.7.8:80".parse().unwrap();
        assert_eq!(m.lookup(6, l, r, 5).unwrap().process, "bot");
        assert_eq!(m.lookup(6, l, r2, 5).unwrap().process, "other");
        let u: SocketAddr = "10.0.0.5:5000".parse().unwrap();
        assert!(m.lookup(17, u, r, 5).is_none());
        assert_eq!(
            m.lookup(17, u, r, 1_767_225_600_000_000_000)
                .unwrap()
                .process,
            "late"
        );
        let e = ProcMap::parse("{\"proto\":\"tcp\"}")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("process line 1:"), "{e}");
    }
}

/// One socket from `/proc/net/{tcp,udp,tcp6,udp6}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcNetSocket {
    /// Local address and port.
    pub local: SocketAddr,
    /// Remote address and port (unspecified for listeners and unconnected UDP).
    pub remote: SocketAddr,
    /// The socket's inode, which `/proc/PID/fd/*` links name as `socket:[INODE]`.
    pub inode: u64,
}

/// Parses the text of a `/proc/net/tcp`-style table (IPv4 or IPv6 by the address width: the
/// kernel prints addresses as host-order 32-bit words in hex). Bad lines are skipped.
pub fn parse_proc_net(text: &str) -> Vec<ProcNetSocket> {
    fn addr(s: &str) -> Option<SocketAddr> {
        let (a, p) = s.split_once(':')?;
        let port = u16::from_str_radix(p, 16).ok()?;
        let ip = match a.len() {
            8 => IpAddr::V4(std::net::Ipv4Addr::from(
                u32::from_str_radix(a, 16).ok()?.swap_bytes(),
            )),
            32 => {
                let mut b = [0u8; 16];
                for w in 0..4 {
                    let v = u32::from_str_radix(a.get(w * 8..w * 8 + 8)?, 16).ok()?;
                    b[w * 4..w * 4 + 4].copy_from_slice(&v.to_le_bytes());
                }
                IpAddr::V6(std::net::Ipv6Addr::from(b))
            }
            _ => return None,
        };
        Some(SocketAddr::new(ip, port))
    }
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some(ProcNetSocket {
                local: addr(f.get(1)?)?,
                remote: addr(f.get(2)?)?,
                inode: f.get(9)?.parse().ok()?,
            })
        })
        .collect()
}

#[cfg(test)]
mod proc_net_tests {
    use super::*;

    #[test]
    fn proc_net_lines_give_addresses_and_inodes() {
        let v4 = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1514 1 0 100 0 0 10 0\n   1: 0100007F:D086 0100007F:B1A9 01 00000000:00000000 03:00001235 00000000     0        0 4242 3 0\nbroken";
        let s = parse_proc_net(v4);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].local.to_string(), "0.0.0.0:2024");
        assert_eq!(s[0].inode, 1514);
        assert_eq!(s[1].local.to_string(), "127.0.0.1:53382");
        assert_eq!(s[1].remote.to_string(), "127.0.0.1:45481");
        let v6 = "hdr\n   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 0:0 0:0 0 0 0 777 1 0";
        let s = parse_proc_net(v6);
        assert_eq!(s[0].local.to_string(), "[::1]:8080");
        assert_eq!(s[0].inode, 777);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(t in ".{0,300}") {
            let _ = parse_proc_net(&t);
        }
    }
}
