//! Passive response times from a capture that holds both directions: for each handshake, Tp
//! = t(the client's ACK or RST) − t(the server's SYN/ACK), with the client's SYN fingerprint
//! Fp, gathered per client address. This is what the darknet responder measures live, done
//! offline (`ashiato stepstone --pcap`), in packet time.
//!
//! Only an ACK or RST from the client that acknowledges the SYN/ACK (ack = its seq + 1; a
//! bare RST, as a SYN scanner's kernel sends, carries the SYN/ACK's ack as its seq) counts, so a spoofed ACK with a guessed number does not make a sample; a retransmitted
//! SYN/ACK restarts the clock (the first ACK answers the latest copy). Handshakes and sources
//! are bounded; past the bounds the oldest are dropped and counted.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use ashiato_wire::packet::{L4, Packet};

use crate::db::Database;
use crate::extract::observe;
use crate::matcher::find;
use crate::sig::{Kind, Observed};

/// Default bound on open handshakes.
pub const DEFAULT_MAX_PENDING: usize = 100_000;
/// Default bound on sources.
pub const DEFAULT_MAX_SOURCES: usize = 100_000;
/// Tp samples kept per source (the first ones).
pub const MAX_SAMPLES: usize = 64;

/// What was seen of one client address.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Source {
    /// Its first SYN's signature.
    pub fp: Option<Observed>,
    /// The label of that SYN (`???` without a match).
    pub fp_label: Option<String>,
    /// The SYN matched an application (scanner) signature.
    pub fp_is_tool: bool,
    /// Tp samples, µs.
    pub tp_us: Vec<u64>,
    /// SYNs seen.
    pub syns: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    cli: IpAddr,
    cport: u16,
    srv: IpAddr,
    sport: u16,
}

#[derive(Clone, Copy)]
struct Pending {
    synack_at: Option<(u64, u32, u32)>,
}

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PassiveStats {
    /// Tp samples taken.
    pub samples: u64,
    /// ACKs or RSTs that did not acknowledge the SYN/ACK (spoofed or stray).
    pub unmatched_acks: u64,
    /// Handshakes dropped to keep the bound.
    pub evicted: u64,
    /// Sources dropped to keep the bound.
    pub sources_evicted: u64,
}

/// The per-source table.
pub struct PassiveTiming {
    pending: HashMap<Key, Pending>,
    order: VecDeque<Key>,
    sources: HashMap<IpAddr, Source>,
    source_order: VecDeque<IpAddr>,
    max_pending: usize,
    max_sources: usize,
    stats: PassiveStats,
}

impl Default for PassiveTiming {
    fn default() -> Self {
        PassiveTiming::new(DEFAULT_MAX_PENDING, DEFAULT_MAX_SOURCES)
    }
}

impl PassiveTiming {
    /// A table with these bounds (at least 1 each).
    pub fn new(max_pending: usize, max_sources: usize) -> Self {
        PassiveTiming {
            pending: HashMap::new(),
            order: VecDeque::new(),
            sources: HashMap::new(),
            source_order: VecDeque::new(),
            max_pending: max_pending.max(1),
            max_sources: max_sources.max(1),
            stats: PassiveStats::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> PassiveStats {
        self.stats
    }

    /// The sources, in first-seen order.
    pub fn sources(&self) -> impl Iterator<Item = (IpAddr, &Source)> {
        self.source_order
            .iter()
            .filter_map(|a| self.sources.get(a).map(|s| (*a, s)))
    }

    /// Feeds one packet seen at `ts_nanos`.
    pub fn packet(&mut self, db: &Database, ts_nanos: u64, pkt: &Packet<'_>) {
        let L4::Tcp(tcp) = pkt.l4 else {
            return;
        };
        let (src, dst) = (pkt.ip.src(), pkt.ip.dst());
        let f = tcp.flags;
        if f.is_syn_only() {
            let k = Key {
                cli: src,
                cport: tcp.src_port,
                srv: dst,
                sport: tcp.dst_port,
            };
            if !self.pending.contains_key(&k) {
                if self.pending.len() >= self.max_pending {
                    // The queue may hold keys whose handshakes are already gone (answered):
                    // skip those, evict the oldest one still pending.
                    while let Some(old) = self.order.pop_front() {
                        if self.pending.remove(&old).is_some() {
                            self.stats.evicted += 1;
                            break;
                        }
                    }
                }
                self.order.push_back(k);
                if self.order.len() > 2 * self.max_pending {
                    let pending = &self.pending;
                    self.order.retain(|k| pending.contains_key(k));
                }
            }
            self.pending.insert(k, Pending { synack_at: None });
            let s = self.source(src);
            s.syns += 1;
            if s.fp.is_none()
                && let Ok(o) = observe(pkt)
                && o.kind == Kind::Syn
            {
                let m = find(db, &o, 0);
                let label = m.record.map(|r| db.label(r));
                s.fp = Some(o);
                s.fp_label = Some(label.map_or_else(|| "???".to_string(), |l| l.text()));
                s.fp_is_tool = label.is_some_and(|l| l.is_app());
            }
        } else if f.is_syn_ack() {
            let k = Key {
                cli: dst,
                cport: tcp.dst_port,
                srv: src,
                sport: tcp.src_port,
            };
            if let Some(p) = self.pending.get_mut(&k) {
                p.synack_at = Some((ts_nanos, tcp.seq, tcp.ack));
            }
        } else if f.contains(ashiato_wire::packet::TcpFlags::ACK) || f.is_rst() {
            let k = Key {
                cli: src,
                cport: tcp.src_port,
                srv: dst,
                sport: tcp.dst_port,
            };
            let Some(Pending {
                synack_at: Some((t0, seq, synack_ack)),
            }) = self.pending.get(&k).copied()
            else {
                return;
            };
            // The ACK (or a RST with ACK) acknowledges the SYN/ACK; a bare RST takes its
            // sequence number from the SYN/ACK's acknowledgement field (RFC 9293 3.10.7.1).
            let acked = if f.contains(ashiato_wire::packet::TcpFlags::ACK) {
                tcp.ack == seq.wrapping_add(1)
            } else {
                tcp.seq == synack_ack
            };
            if !acked {
                self.stats.unmatched_acks += 1;
                return;
            }
            self.pending.remove(&k);
            let tp = ts_nanos.saturating_sub(t0) / 1000;
            self.stats.samples += 1;
            let s = self.source(src);
            if s.tp_us.len() < MAX_SAMPLES {
                s.tp_us.push(tp);
            }
        }
    }

    fn source(&mut self, a: IpAddr) -> &mut Source {
        if !self.sources.contains_key(&a) {
            if self.sources.len() >= self.max_sources
                && let Some(old) = self.source_order.pop_front()
            {
                self.sources.remove(&old);
                self.stats.sources_evicted += 1;
            }
            self.source_order.push_back(a);
        }
        self.sources.entry(a).or_default()
    }
}

#[cfg(test)]
mod tests {
    use ashiato_wire::build::{ipv4, tcp};
    use ashiato_wire::packet::{TcpFlags, parse_ip};
    use std::net::Ipv4Addr;

    use super::PassiveTiming;
    use crate::db::Database;

    fn seg(
        src: [u8; 4],
        dst: [u8; 4],
        sp: u16,
        dp: u16,
        seq: u32,
        ack: u32,
        f: TcpFlags,
    ) -> Vec<u8> {
        let (s, d) = (Ipv4Addr::from(src), Ipv4Addr::from(dst));
        ipv4(
            s,
            d,
            6,
            64,
            0,
            1,
            &tcp(s.into(), d.into(), sp, dp, seq, ack, f, 1000, &[]),
        )
    }

    /// An answered handshake leaves its key in the eviction queue; a full table must skip it
    /// and evict the oldest handshake still pending, so the bound holds.
    #[test]
    fn eviction_skips_answered_handshakes() {
        let db = Database::default();
        let mut t = PassiveTiming::new(2, 16);
        let (c, s) = ([10, 0, 0, 1], [10, 0, 0, 2]);
        let mut feed = |ts: u64, b: Vec<u8>| t.packet(&db, ts, &parse_ip(&b).unwrap());
        let sa = TcpFlags::SYN | TcpFlags::ACK;
        feed(0, seg(c, s, 1000, 80, 100, 0, TcpFlags::SYN));
        feed(1_000, seg(s, c, 80, 1000, 5000, 101, sa));
        feed(2_000, seg(c, s, 1000, 80, 101, 5001, TcpFlags::ACK));
        for p in [1001, 1002, 1003] {
            feed(3_000, seg(c, s, p, 80, 100, 0, TcpFlags::SYN));
        }
        // 1001 was the oldest pending handshake: evicted, so its answer no longer counts.
        feed(4_000, seg(s, c, 80, 1001, 7000, 101, sa));
        feed(5_000, seg(c, s, 1001, 80, 101, 7001, TcpFlags::ACK));
        assert_eq!(t.stats().evicted, 1);
        assert_eq!(t.stats().samples, 1);
    }

    #[test]
    fn tp_from_synack_to_ack_and_spoofed_acks_do_not_count() {
        let db = Database::default();
        let mut t = PassiveTiming::default();
        let (c, s) = ([10, 0, 0, 1], [10, 0, 0, 2]);
        let mut feed = |ts: u64, b: Vec<u8>| t.packet(&db, ts, &parse_ip(&b).unwrap());
        feed(0, seg(c, s, 1000, 80, 100, 0, TcpFlags::SYN));
        feed(
            1_000_000,
            seg(s, c, 80, 1000, 5000, 101, TcpFlags::SYN | TcpFlags::ACK),
        );
        // A spoofed ACK with a guessed number, then the real one 7 ms after the SYN/ACK.
        feed(2_000_000, seg(c, s, 1000, 80, 101, 1234, TcpFlags::ACK));
        feed(8_000_000, seg(c, s, 1000, 80, 101, 5001, TcpFlags::ACK));
        let (_, src) = t.sources().next().unwrap();
        assert_eq!(src.tp_us, [7000]);
        assert_eq!(t.stats().unmatched_acks, 1);
    }

    #[test]
    fn a_scanners_bare_rst_gives_tp() {
        // nmap -sS: the scanner's kernel resets the SYN/ACK, seq = the SYN/ACK's ack field.
        let db = Database::default();
        let mut t = PassiveTiming::default();
        let (c, s) = ([10, 0, 0, 1], [10, 0, 0, 2]);
        let mut feed = |ts: u64, b: Vec<u8>| t.packet(&db, ts, &parse_ip(&b).unwrap());
        feed(0, seg(c, s, 1000, 80, 100, 0, TcpFlags::SYN));
        feed(
            1_000_000,
            seg(s, c, 80, 1000, 5000, 101, TcpFlags::SYN | TcpFlags::ACK),
        );
        // Numbered after the server's sequence: not an answer to this SYN/ACK.
        feed(2_000_000, seg(c, s, 1000, 80, 5001, 0, TcpFlags::RST));
        feed(3_000_000, seg(c, s, 1000, 80, 101, 0, TcpFlags::RST));
        let (_, src) = t.sources().next().unwrap();
        assert_eq!(src.tp_us, [2000]);
        assert_eq!(t.stats().unmatched_acks, 1);
    }

    #[test]
    fn bounded_under_a_syn_flood() {
        let db = Database::default();
        let mut t = PassiveTiming::new(50, 50);
        for i in 0..5000u32 {
            let b = seg(
                i.to_be_bytes(),
                [10, 0, 0, 2],
                1000,
                80,
                i,
                0,
                TcpFlags::SYN,
            );
            t.packet(&db, u64::from(i), &parse_ip(&b).unwrap());
        }
        assert!(t.sources().count() <= 50);
        assert!(t.pending.len() <= 50 && t.order.len() <= 101);
    }
}
