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

/// A handshake's two endpoints in a fixed order (lower address and port first), so that one
/// lookup finds it from either direction; [`Flow::client_lo`] says which side sent the SYN.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    /// The lower endpoint's address (IPv4 in the low 32 bits).
    lo: u128,
    /// The higher endpoint's address.
    hi: u128,
    /// The lower endpoint's port, the higher one's, and bit 32 for IPv6 (so an IPv4 address
    /// never equals an IPv6 one with the same bits).
    ports: u64,
}

impl Key {
    /// The key of a packet from `src` to `dst`, and whether `src` is the lower endpoint.
    fn of(src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> (Key, bool) {
        let bits = |a: IpAddr| match a {
            IpAddr::V4(a) => u128::from(u32::from(a)),
            IpAddr::V6(a) => u128::from(a),
        };
        let (s, d) = ((bits(src), sport), (bits(dst), dport));
        let src_lo = s <= d;
        let ((lo, lp), (hi, hp)) = if src_lo { (s, d) } else { (d, s) };
        let v6 = u64::from(src.is_ipv6()) << 32;
        let key = Key {
            lo,
            hi,
            ports: (u64::from(lp) << 16) | u64::from(hp) | v6,
        };
        (key, src_lo)
    }

    /// Both endpoints are the same (a LAND-style packet): either direction is the other.
    fn self_loop(&self) -> bool {
        self.lo == self.hi && (self.ports >> 16) & 0xffff == self.ports & 0xffff
    }
}

#[derive(Clone, Copy)]
struct Flow {
    /// The SYN's sender is the key's lower endpoint.
    client_lo: bool,
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
        let (key, src_lo) = Key::of(src, tcp.src_port, dst, tcp.dst_port);
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
                // A SYN repeating the handshake's SYN is a retransmission; any other SYN
                // between the same endpoints (new sequence number, or the other way round)
                // ends the handshake, as in p0f.
                match self.flows.entry(key) {
                    Entry::Occupied(f)
                        if f.get().client_lo == src_lo && f.get().syn_seq == o.seq =>
                    {
                        self.stats.dup_syns += 1;
                        return None;
                    }
                    Entry::Occupied(f) => {
                        f.remove();
                    }
                    Entry::Vacant(_) => {}
                }
                let m = self.matches.find(db, &o, 0);
                let app = m.record.is_some_and(|r| db.label(r).is_app());
                if !app {
                    self.insert(
                        key,
                        Flow {
                            client_lo: src_lo,
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
                // It answers a SYN sent the other way.
                let answers = |f: &&mut Flow| f.client_lo != src_lo || key.self_loop();
                let Some(f) = self.flows.get_mut(&key).filter(answers) else {
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
                    self.flows.remove(&key);
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
