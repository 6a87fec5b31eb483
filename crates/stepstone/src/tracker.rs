//! Which SYNs and SYN/ACKs get a fingerprint, as p0f decides it: a bounded table of
//! handshakes (p0f's flows) in packet time.
//!
//! - A SYN opens a handshake. A repeated SYN of the same handshake with the same sequence
//!   number (a retransmission) gives nothing; a SYN with another sequence number starts over.
//! - A SYN/ACK is fingerprinted only in answer to a SYN seen in the same table (p0f drops
//!   "stray" SYN/ACKs, e.g. backscatter), once per handshake; its window test may use the
//!   SYN's MSS.
//! - When the SYN or SYN/ACK matches an application signature (a scanner), the handshake is
//!   forgotten, so a scanner's answers are not fingerprinted (p0f does the same).
//!
//! The table holds about `max_flows` handshakes (past the bound the oldest tenth is dropped at
//! once, as p0f does; p0f's default is 1000) and forgets a handshake `max_age_ns` after its SYN (p0f: 30 s), so a flood of SYNs
//! costs bounded memory.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use foldhash::fast::RandomState;

use ashiato_wire::packet::{L4, Packet};

use crate::db::Database;
use crate::extract::observe;
use crate::matcher::{Match, MatchCache};
use crate::sig::{Kind, Observed};

/// Default bound on open handshakes (p0f's default connection limit).
pub const DEFAULT_MAX_FLOWS: usize = 1000;
/// Default handshake lifetime in ns (p0f's 30 s).
pub const DEFAULT_MAX_AGE_NS: u64 = 30_000_000_000;

/// One fingerprinted SYN or SYN/ACK.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fingerprint<'d> {
    /// Packet time, ns since the Unix epoch.
    pub ts_nanos: u64,
    /// Sender.
    pub src: IpAddr,
    /// Sender's port.
    pub sport: u16,
    /// Receiver.
    pub dst: IpAddr,
    /// Receiver's port.
    pub dport: u16,
    /// The raw signature.
    pub observed: Observed,
    /// For a SYN/ACK: the MSS of the SYN it answers (0 for a SYN).
    pub syn_mss: u16,
    /// The signature that matched.
    pub matched: Match<'d>,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    /// Client address (IPv4 in the low 32 bits).
    cli: u128,
    /// Server address.
    srv: u128,
    /// Client port, server port, and bit 32 for IPv6 (so an IPv4 address never equals an
    /// IPv6 one with the same bits).
    ports: u64,
}

impl Key {
    fn new(cli: IpAddr, cport: u16, srv: IpAddr, sport: u16) -> Key {
        let bits = |a: IpAddr| match a {
            IpAddr::V4(a) => u128::from(u32::from(a)),
            IpAddr::V6(a) => u128::from(a),
        };
        Key {
            cli: bits(cli),
            srv: bits(srv),
            ports: u64::from(cport) << 16 | u64::from(sport) | u64::from(cli.is_ipv6()) << 32,
        }
    }
}

#[derive(Clone, Copy)]
struct Flow {
    syn_seq: u32,
    syn_mss: u16,
    acked: bool,
    born: u64,
    /// Insertion number: tells a queue entry of this handshake from one of an earlier
    /// handshake with the same addresses and ports.
    serial: u64,
}

/// What the tracker did with packets, for reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrackerStats {
    /// SYNs seen.
    pub syns: u64,
    /// SYN/ACKs seen.
    pub syn_acks: u64,
    /// Retransmitted SYNs skipped.
    pub dup_syns: u64,
    /// SYN/ACKs with no SYN in the table.
    pub stray_syn_acks: u64,
    /// Handshakes dropped to keep the bound.
    pub evicted: u64,
}

/// The handshake table.
pub struct Tracker {
    /// Keyed per process: the keys are what senders (spoofed floods) choose.
    flows: HashMap<Key, Flow, RandomState>,
    matches: MatchCache,
    order: VecDeque<(Key, u64, u64)>,
    serial: u64,
    max_flows: usize,
    max_age_ns: u64,
    stats: TrackerStats,
}

impl Default for Tracker {
    fn default() -> Self {
        Tracker::new(DEFAULT_MAX_FLOWS, DEFAULT_MAX_AGE_NS)
    }
}

impl Tracker {
    /// A table of at most `max_flows` (at least 1) handshakes living `max_age_ns`.
    pub fn new(max_flows: usize, max_age_ns: u64) -> Self {
        let max_flows = max_flows.max(1);
        Tracker {
            flows: HashMap::with_capacity_and_hasher(
                max_flows.min(1 << 16),
                RandomState::default(),
            ),
            matches: MatchCache::default(),
            order: VecDeque::new(),
            serial: 0,
            max_flows,
            max_age_ns,
            stats: TrackerStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> TrackerStats {
        self.stats
    }

    /// Open handshakes.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    /// No open handshake.
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// Feeds one parsed packet; returns its fingerprint when p0f would print one.
    pub fn packet<'d>(
        &mut self,
        db: &'d Database,
        ts_nanos: u64,
        pkt: &Packet<'_>,
    ) -> Option<Fingerprint<'d>> {
        let L4::Tcp(tcp) = pkt.l4 else {
            return None;
        };
        let o = observe(pkt).ok()?;
        let (src, dst) = (pkt.ip.src(), pkt.ip.dst());
        let fwd = Key::new(src, tcp.src_port, dst, tcp.dst_port);
        let rev = Key::new(dst, tcp.dst_port, src, tcp.src_port);
        self.expire(ts_nanos);
        let fp = |syn_mss, matched| Fingerprint {
            ts_nanos,
            src,
            sport: tcp.src_port,
            dst,
            dport: tcp.dst_port,
            observed: o,
            syn_mss,
            matched,
        };
        match o.kind {
            Kind::Syn => {
                self.stats.syns += 1;
                match self.flows.entry(fwd) {
                    Entry::Occupied(f) if f.get().syn_seq == o.seq => {
                        self.stats.dup_syns += 1;
                        return None;
                    }
                    Entry::Occupied(f) => {
                        f.remove();
                    }
                    Entry::Vacant(_) => {
                        if !self.flows.is_empty() {
                            self.flows.remove(&rev);
                        }
                    }
                }
                let m = self.matches.find(db, &o, 0);
                let app = m.record.is_some_and(|r| db.label(r).is_app());
                if !app {
                    self.insert(
                        fwd,
                        Flow {
                            syn_seq: o.seq,
                            syn_mss: o.mss,
                            acked: false,
                            born: ts_nanos,
                            serial: 0,
                        },
                    );
                }
                Some(fp(0, m))
            }
            Kind::SynAck => {
                self.stats.syn_acks += 1;
                let Some(f) = self.flows.get_mut(&rev) else {
                    self.stats.stray_syn_acks += 1;
                    return None;
                };
                if f.acked {
                    return None;
                }
                f.acked = true;
                let syn_mss = f.syn_mss;
                let m = self.matches.find(db, &o, syn_mss);
                if m.record.is_some_and(|r| db.label(r).is_app()) {
                    self.flows.remove(&rev);
                }
                Some(fp(syn_mss, m))
            }
        }
    }

    fn insert(&mut self, k: Key, mut f: Flow) {
        self.serial += 1;
        f.serial = self.serial;
        // p0f's `nuke_flows`: past the bound, drop the oldest tenth (and one more) at once.
        if self.flows.len() > self.max_flows {
            let mut kill = 1 + self.flows.len() / 10;
            while kill > 0 {
                let Some((old, serial, _)) = self.order.pop_front() else {
                    break;
                };
                if remove_if_serial(&mut self.flows, old, serial) {
                    self.stats.evicted += 1;
                    kill -= 1;
                }
            }
        }
        self.order.push_back((k, f.serial, f.born));
        self.flows.insert(k, f);
        // Keep the queue from growing without bound under churn of replaced handshakes.
        if self.order.len() > 4 * self.max_flows {
            let flows = &self.flows;
            self.order
                .retain(|(k, serial, _)| flows.get(k).is_some_and(|x| x.serial == *serial));
        }
    }

    fn expire(&mut self, now: u64) {
        while let Some(&(k, serial, born)) = self.order.front() {
            if now.saturating_sub(born) <= self.max_age_ns {
                break;
            }
            self.order.pop_front();
            remove_if_serial(&mut self.flows, k, serial);
        }
    }
}

/// Removes the handshake at `k` if it is the one with `serial` (one hash lookup).
fn remove_if_serial(flows: &mut HashMap<Key, Flow, RandomState>, k: Key, serial: u64) -> bool {
    match flows.entry(k) {
        Entry::Occupied(e) if e.get().serial == serial => {
            e.remove();
            true
        }
        _ => false,
    }
}
