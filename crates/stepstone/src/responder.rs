//! The darknet responder's core, sans IO: SYNs to darknet addresses in, SYN/ACKs to send and
//! measured connections (Tp, Fp) out. The shell owns the sockets and the clock; it hands every
//! packet and `now` to [`Responder::on_packet`] and calls [`Responder::poll`] now and then.
//!
//! - **Answers** a SYN (IPv4 or IPv6, no payload) to an address inside a darknet prefix
//!   with a SYN/ACK carrying one MSS option (IPv4: DF, TTL 64; IPv6: hop limit 64). The initial sequence number is a keyed
//!   hash of the four-tuple (a SYN cookie), so an ACK is recognised without trusting it, and
//!   a spoofed ACK that does not acknowledge it is counted and ignored.
//! - **Measures** Tp = arrival of the ACK or RST acknowledging our SYN/ACK − our send time.
//! - **Never a reflector.** One SYN/ACK per SYN, no larger than the SYN (no amplification);
//!   a token bucket caps SYN/ACKs per second overall and a second bucket per source caps what
//!   any one (possibly spoofed) victim can receive; the table of pending handshakes is bounded
//!   and expires. Refusals are counted ([`ResponderStats`]).
//! - Sources inside the darknet, multicast, broadcast and unspecified addresses are never
//!   answered.
//! - **Application exchange** (optional, [`ResponderConfig::app_ports`]): on listed ports the
//!   connection stays open after the handshake and Tapp is timed ([`crate::app`]); the
//!   connection comes out when the exchange ends.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use ashiato_wire::build;
use ashiato_wire::packet::{Ip, L4, Packet, TcpFlags};

use crate::app::{AppOutcome, AppPort, Exchanges};
use crate::extract::observe;
use crate::sig::Observed;

/// Settings.
#[derive(Clone, Debug, PartialEq)]
pub struct ResponderConfig {
    /// Darknet prefixes (address, prefix length), IPv4 or IPv6.
    pub darknets: Vec<(IpAddr, u8)>,
    /// SYN/ACKs per second, all sources together (bucket depth: one second's worth).
    pub max_per_sec: u32,
    /// SYN/ACKs per second to any one source (bucket depth: one second's worth).
    pub max_per_source_per_sec: u32,
    /// Pending handshakes kept at most.
    pub max_pending: usize,
    /// A handshake with no ACK after this long is reported without Tp.
    pub tp_timeout_ns: u64,
    /// Key of the sequence-number hash (from the shell's random source).
    pub secret: u64,
    /// MSS we announce.
    pub mss: u16,
    /// Ports whose connections get an application exchange (Tapp).
    pub app_ports: Vec<AppPort>,
    /// Open application exchanges kept at most.
    pub max_open: usize,
    /// An application exchange still open after this long ends without Tapp.
    pub app_timeout_ns: u64,
}

impl Default for ResponderConfig {
    fn default() -> Self {
        ResponderConfig {
            darknets: Vec::new(),
            max_per_sec: 1000,
            max_per_source_per_sec: 10,
            max_pending: 65_536,
            tp_timeout_ns: 3_000_000_000,
            secret: 0,
            mss: 1460,
            app_ports: Vec::new(),
            max_open: 4096,
            app_timeout_ns: 2_000_000_000,
        }
    }
}

/// One answered connection.
#[derive(Clone, Debug, PartialEq)]
pub struct Connection {
    /// When the SYN arrived (the shell's clock, ns).
    pub syn_ns: u64,
    /// Source.
    pub src: IpAddr,
    /// Source port.
    pub sport: u16,
    /// Darknet address.
    pub dst: IpAddr,
    /// Darknet port.
    pub dport: u16,
    /// The SYN's signature.
    pub fp: Option<Observed>,
    /// Tp in µs, `None` when no acknowledging ACK or RST came in time.
    pub tp_us: Option<u64>,
    /// The answer was a RST (a closed or reset connection) rather than an ACK.
    pub rst: bool,
    /// Application-level time in µs: our banner or reply to the source's answer to it.
    pub tapp_us: Option<u64>,
    /// How the application exchange ended (`None`: the port has none).
    pub app: Option<AppOutcome>,
}

/// Counters for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResponderStats {
    /// SYNs to darknet addresses.
    pub syns: u64,
    /// SYN/ACKs sent.
    pub syn_acks: u64,
    /// SYNs refused by the overall rate limit.
    pub limited_global: u64,
    /// SYNs refused by the per-source rate limit.
    pub limited_source: u64,
    /// SYNs from addresses never answered (darknet-internal, multicast, ...).
    pub refused_source: u64,
    /// ACKs or RSTs that did not acknowledge our SYN/ACK.
    pub bad_acks: u64,
    /// Tp measured.
    pub measured: u64,
    /// Handshakes that timed out without an answer.
    pub timeouts: u64,
    /// Handshakes dropped to keep the bound.
    pub evicted: u64,
    /// Banners and replies sent (one data segment each).
    pub app_sent: u64,
    /// Tapp measured.
    pub app_timed: u64,
    /// Application exchanges skipped because the table was full.
    pub app_skipped: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub(crate) src: IpAddr,
    pub(crate) sport: u16,
    pub(crate) dst: IpAddr,
    pub(crate) dport: u16,
}

struct Pending {
    syn_ns: u64,
    sent_ns: u64,
    isn: u32,
    /// The source's SYN sequence number + 1 (what our SYN/ACK acknowledges).
    their_next: u32,
    fp: Option<Observed>,
}

/// A token bucket in ns of credit (rate per second, depth one second).
#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    last_ns: u64,
}

impl Bucket {
    fn take(&mut self, now: u64, rate: u32) -> bool {
        let rate = f64::from(rate);
        let dt = now.saturating_sub(self.last_ns) as f64 / 1e9;
        self.tokens = (self.tokens + dt * rate).min(rate);
        self.last_ns = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The responder's state.
pub struct Responder {
    cfg: ResponderConfig,
    pending: HashMap<Key, Pending>,
    order: VecDeque<(Key, u64)>,
    global: Bucket,
    per_source: HashMap<IpAddr, Bucket>,
    /// When idle per-source buckets were last swept (at most once a second).
    swept_ns: u64,
    done: Vec<Connection>,
    last: Option<Key>,
    stats: ResponderStats,
    exchanges: Exchanges,
}

impl Responder {
    /// A responder with full buckets at time `now`.
    pub fn new(cfg: ResponderConfig, now: u64) -> Self {
        let global = Bucket {
            tokens: f64::from(cfg.max_per_sec),
            last_ns: now,
        };
        let exchanges = Exchanges::new(cfg.max_open.max(1), cfg.app_timeout_ns);
        Responder {
            exchanges,
            cfg,
            pending: HashMap::new(),
            order: VecDeque::new(),
            global,
            per_source: HashMap::new(),
            swept_ns: 0,
            done: Vec::new(),
            last: None,
            stats: ResponderStats::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> ResponderStats {
        self.stats
    }

    /// Pending handshakes and open application exchanges.
    pub fn pending(&self) -> usize {
        self.pending.len() + self.exchanges.len()
    }

    /// The address is in a darknet prefix (of its family).
    pub fn in_darknet(&self, a: IpAddr) -> bool {
        self.cfg.darknets.iter().any(|&(net, len)| match (a, net) {
            (IpAddr::V4(a), IpAddr::V4(n)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(len.min(32)))
                    .unwrap_or(0);
                u32::from(a) & mask == u32::from(n) & mask
            }
            (IpAddr::V6(a), IpAddr::V6(n)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(len.min(128)))
                    .unwrap_or(0);
                u128::from(a) & mask == u128::from(n) & mask
            }
            _ => false,
        })
    }

    fn isn(&self, k: &Key) -> u32 {
        // SplitMix64 rounds over the key and secret: cheap, keyed, not invertible without the
        // key.
        let mix = |mut x: u64| {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            x ^ (x >> 31)
        };
        let ports = u64::from(k.sport) << 16 | u64::from(k.dport);
        if let (IpAddr::V4(s), IpAddr::V4(d)) = (k.src, k.dst) {
            // IPv4: the whole four-tuple fits one round.
            let a = u64::from(u32::from(s)) << 32 | u64::from(u32::from(d));
            return mix(self.cfg.secret ^ a ^ ports.rotate_left(40)) as u32;
        }
        let wide = |a: IpAddr| match a {
            IpAddr::V4(a) => u128::from(u32::from(a)),
            IpAddr::V6(a) => u128::from(a),
        };
        let mut x = self.cfg.secret ^ ports;
        for a in [wide(k.src), wide(k.dst)] {
            x = mix(x ^ (a as u64));
            x = mix(x ^ ((a >> 64) as u64));
        }
        x as u32
    }

    /// Feeds one received packet. Returns the IPv4 packet to send, if any (a SYN/ACK, a
    /// banner or reply, a RST ending an exchange); a finished measurement comes out of
    /// [`Responder::take_measured`].
    pub fn on_packet(&mut self, now: u64, pkt: &Packet<'_>) -> Option<Vec<u8>> {
        self.last = None;
        let L4::Tcp(tcp) = pkt.l4 else {
            return None;
        };
        let (src, dst) = match pkt.ip {
            Ip::V4(ip) => (IpAddr::V4(ip.src), IpAddr::V4(ip.dst)),
            Ip::V6(ip) => (IpAddr::V6(ip.src), IpAddr::V6(ip.dst)),
        };
        if !self.in_darknet(dst) {
            return None;
        }
        let key = Key {
            src,
            sport: tcp.src_port,
            dst,
            dport: tcp.dst_port,
        };
        let f = tcp.flags;
        if f.is_syn_only() {
            self.stats.syns += 1;
            let s = src;
            if self.in_darknet(s)
                || s.is_multicast()
                || matches!(s, IpAddr::V4(a) if a.is_broadcast())
                || s.is_unspecified()
                || s.is_loopback()
                || tcp.payload_len > 0
            {
                self.stats.refused_source += 1;
                return None;
            }
            let rate = self.cfg.max_per_source_per_sec;
            let mut b = self.per_source.get(&s).copied().unwrap_or(Bucket {
                tokens: f64::from(rate),
                last_ns: now,
            });
            let allowed = b.take(now, rate);
            self.per_source.insert(s, b);
            // Bound the per-source buckets with the pending table: forget idle sources. At
            // most once a second, so a spoofed flood does not sweep the table per SYN.
            if self.per_source.len() > self.cfg.max_pending
                && now.saturating_sub(self.swept_ns) >= 1_000_000_000
            {
                self.swept_ns = now;
                let horizon = now.saturating_sub(1_000_000_000);
                self.per_source.retain(|_, b| b.last_ns >= horizon);
            }
            if !allowed {
                self.stats.limited_source += 1;
                return None;
            }
            if !self.global.take(now, self.cfg.max_per_sec) {
                self.stats.limited_global += 1;
                return None;
            }
            let isn = self.isn(&key);
            if self.pending.len() >= self.cfg.max_pending.max(1) {
                while let Some((old, _)) = self.order.pop_front() {
                    if self.pending.remove(&old).is_some() {
                        self.stats.evicted += 1;
                        break;
                    }
                }
            }
            self.order.push_back((key, now));
            self.pending.insert(
                key,
                Pending {
                    syn_ns: now,
                    sent_ns: now,
                    isn,
                    their_next: tcp.seq.wrapping_add(1),
                    fp: observe(pkt).ok(),
                },
            );
            self.stats.syn_acks += 1;
            self.last = Some(key);
            return Some(syn_ack(
                dst,
                src,
                tcp.dst_port,
                tcp.src_port,
                isn,
                tcp.seq.wrapping_add(1),
                self.cfg.mss,
            ));
        }
        if self.exchanges.contains(&key) {
            let text = self.app_port(key.dport).map(|p| p.text.clone())?;
            let step = self.exchanges.segment(now, key, &tcp, &text);
            return self.step(key, step);
        }
        let ack = f.contains(ashiato_wire::packet::TcpFlags::ACK);
        if !(ack || f.is_rst()) {
            return None;
        }
        let p = self.pending.get(&key)?;
        // An ACK (or RST|ACK) acknowledges our sequence number + 1. A bare RST (a kernel that
        // did not open the connection: nmap -sS) takes its sequence number from our SYN/ACK's
        // acknowledgement field (RFC 9293 3.10.7.1), i.e. the source's own SYN + 1: weaker
        // proof, since a spoofer knows its own number, but that is all a RST can carry.
        let ok = if ack {
            tcp.ack == p.isn.wrapping_add(1)
        } else {
            tcp.seq == p.their_next
        };
        if !ok {
            self.stats.bad_acks += 1;
            return None;
        }
        let p = self.pending.remove(&key)?;
        self.stats.measured += 1;
        let conn = Connection {
            syn_ns: p.syn_ns,
            src: key.src,
            sport: key.sport,
            dst: key.dst,
            dport: key.dport,
            fp: p.fp,
            tp_us: Some(now.saturating_sub(p.sent_ns) / 1000),
            rst: f.is_rst(),
            tapp_us: None,
            app: None,
        };
        let port = match self.app_port(key.dport) {
            Some(port) if !f.is_rst() => port.clone(),
            _ => {
                self.done.push(conn);
                return None;
            }
        };
        let step = self.exchanges.start(now, key, p.isn, conn, &port, &tcp);
        self.step(key, step)
    }

    fn app_port(&self, port: u16) -> Option<&AppPort> {
        self.cfg.app_ports.iter().find(|p| p.port == port)
    }

    fn step(&mut self, key: Key, step: crate::app::Step) -> Option<Vec<u8>> {
        if step.bad_ack {
            self.stats.bad_acks += 1;
        }
        if step.text_sent {
            self.stats.app_sent += 1;
            self.last = Some(key);
        }
        if let Some(c) = step.done {
            self.stats.app_timed += u64::from(c.tapp_us.is_some());
            self.stats.app_skipped += u64::from(c.app == Some(AppOutcome::TableFull));
            self.done.push(c);
        }
        step.send
    }
}

impl Responder {
    /// Tells the core when the SYN/ACK it returned last actually left (Tp starts there; by
    /// default it starts when the SYN was handed in).
    pub fn sent(&mut self, now: u64) {
        if let Some(k) = self.last.take() {
            if let Some(p) = self.pending.get_mut(&k) {
                p.sent_ns = now;
            } else {
                self.exchanges.sent(&k, now);
            }
        }
    }

    /// Connections finished since the last call (measured, or timed out without Tp).
    pub fn take_measured(&mut self) -> Vec<Connection> {
        std::mem::take(&mut self.done)
    }

    /// Expires handshakes older than the timeout at `now` (they come out of
    /// [`Responder::take_measured`] without Tp) and application exchanges older than theirs
    /// (without Tapp); returns the RSTs that end those exchanges, to send.
    pub fn poll(&mut self, now: u64) -> Vec<Vec<u8>> {
        let (done, rsts) = self.exchanges.expire(now);
        self.done.extend(done);
        while let Some(&(k, t)) = self.order.front() {
            if now.saturating_sub(t) < self.cfg.tp_timeout_ns {
                break;
            }
            self.order.pop_front();
            if let Some(p) = self.pending.get(&k)
                && p.syn_ns == t
            {
                let p = self.pending.remove(&k).expect("present");
                self.stats.timeouts += 1;
                self.done.push(Connection {
                    syn_ns: p.syn_ns,
                    src: k.src,
                    sport: k.sport,
                    dst: k.dst,
                    dport: k.dport,
                    fp: p.fp,
                    tp_us: None,
                    rst: false,
                    tapp_us: None,
                    app: None,
                });
            }
        }
        rsts
    }
}

/// An IP packet around `segment` (TCP) from `src` to `dst`: IPv4 with DF and TTL 64, or
/// IPv6 with hop limit 64. Mixed families are a caller's error; the IPv4 form is then used
/// with unspecified addresses, and nothing valid comes out.
pub fn ip_packet(src: IpAddr, dst: IpAddr, protocol: u8, id: u16, segment: &[u8]) -> Vec<u8> {
    match (src, dst) {
        (IpAddr::V6(s), IpAddr::V6(d)) => build::ipv6(s, d, protocol, 64, 0, 0, segment),
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            build::ipv4_with_flags(s, d, protocol, 64, 0, id, true, segment)
        }
        _ => build::ipv4_with_flags(
            std::net::Ipv4Addr::UNSPECIFIED,
            std::net::Ipv4Addr::UNSPECIFIED,
            protocol,
            64,
            0,
            id,
            true,
            segment,
        ),
    }
}

/// A SYN/ACK with one MSS option, checksums filled in: 44 bytes in IPv4 (64 in IPv6), never
/// more than the SYN it answers plus its MSS option.
pub fn syn_ack(
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    mss: u16,
) -> Vec<u8> {
    let [m0, m1] = mss.to_be_bytes();
    let t = build::tcp_with_options(
        src,
        dst,
        sport,
        dport,
        seq,
        ack,
        TcpFlags(TcpFlags::SYN.0 | TcpFlags::ACK.0),
        64240,
        &[2, 4, m0, m1],
        &[],
    );
    ip_packet(src, dst, 6, 0, &t)
}

/// Our active SYN probe (IPv4: DF, TTL 64; IPv6: hop limit 64), offering every common option
/// (MSS 1460, SACK, timestamps, window scale 7) so the SYN/ACK's option order shows the
/// stack's.
pub fn syn_probe(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, seq: u32) -> Vec<u8> {
    let t = build::tcp_with_options(
        src,
        dst,
        sport,
        dport,
        seq,
        0,
        TcpFlags::SYN,
        64240,
        &[
            2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
        ],
        &[],
    );
    ip_packet(src, dst, 6, 1, &t)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use ashiato_wire::build::{ipv4, tcp};
    use ashiato_wire::packet::{L4, TcpFlags, parse_ip};

    use super::{Responder, ResponderConfig};

    const DARK: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 9);

    fn seg(
        src: Ipv4Addr,
        dst: Ipv4Addr,
        sp: u16,
        dp: u16,
        seq: u32,
        ack: u32,
        f: TcpFlags,
    ) -> Vec<u8> {
        ipv4(
            src,
            dst,
            6,
            64,
            0,
            1,
            &tcp(src.into(), dst.into(), sp, dp, seq, ack, f, 1000, &[]),
        )
    }

    fn responder(per_sec: u32, per_source: u32) -> Responder {
        Responder::new(
            ResponderConfig {
                darknets: vec![(Ipv4Addr::new(203, 0, 113, 0).into(), 24)],
                max_per_sec: per_sec,
                max_per_source_per_sec: per_source,
                secret: 42,
                ..ResponderConfig::default()
            },
            0,
        )
    }

    #[test]
    fn answers_a_darknet_syn_and_times_the_ack() {
        let mut r = responder(100, 10);
        let src = Ipv4Addr::new(198, 51, 100, 7);
        let syn = seg(src, DARK, 40000, 22, 1000, 0, TcpFlags::SYN);
        let out = r
            .on_packet(1_000, &parse_ip(&syn).unwrap())
            .expect("a SYN/ACK");
        assert!(out.len() <= syn.len() + 4, "no amplification");
        let sa = parse_ip(&out).unwrap();
        let L4::Tcp(t) = sa.l4 else { panic!() };
        assert!(t.flags.is_syn_ack());
        assert_eq!(t.ack, 1001);
        // A spoofed ACK with a wrong number, then the real one 5 ms later.
        let bad = seg(
            src,
            DARK,
            40000,
            22,
            1001,
            t.seq.wrapping_add(7),
            TcpFlags::ACK,
        );
        r.on_packet(2_000, &parse_ip(&bad).unwrap());
        let good = seg(
            src,
            DARK,
            40000,
            22,
            1001,
            t.seq.wrapping_add(1),
            TcpFlags::ACK,
        );
        r.on_packet(5_001_000, &parse_ip(&good).unwrap());
        let m = r.take_measured();
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].tp_us, Some(5000));
        assert!(m[0].fp.is_some());
        assert_eq!(r.stats().bad_acks, 1);
    }

    #[test]
    fn a_bare_rst_gives_tp_when_it_carries_our_acknowledgement() {
        // nmap -sS: its kernel resets our SYN/ACK with seq = the SYN/ACK's ack field.
        let mut r = responder(100, 10);
        let src = Ipv4Addr::new(198, 51, 100, 8);
        let syn = seg(src, DARK, 50000, 22, 7000, 0, TcpFlags::SYN);
        let sa = r.on_packet(0, &parse_ip(&syn).unwrap()).expect("SYN/ACK");
        let L4::Tcp(t) = parse_ip(&sa).unwrap().l4 else {
            panic!()
        };
        // A RST numbered after our own sequence number is not that answer.
        let wrong = seg(
            src,
            DARK,
            50000,
            22,
            t.seq.wrapping_add(1),
            0,
            TcpFlags::RST,
        );
        assert!(r.on_packet(1_000_000, &parse_ip(&wrong).unwrap()).is_none());
        assert_eq!(r.stats().bad_acks, 1);
        let rst = seg(src, DARK, 50000, 22, t.ack, 0, TcpFlags::RST);
        assert!(r.on_packet(2_000_000, &parse_ip(&rst).unwrap()).is_none());
        let m = r.take_measured();
        assert_eq!(m.len(), 1);
        assert_eq!((m[0].tp_us, m[0].rst), (Some(2000), true));
    }

    #[test]
    fn ipv6_syns_to_a_v6_darknet_are_answered_and_timed() {
        use std::net::{IpAddr, Ipv6Addr};

        use ashiato_wire::build::ipv6;
        let net: Ipv6Addr = "2001:db8:dead::".parse().unwrap();
        let dark: Ipv6Addr = "2001:db8:dead::9".parse().unwrap();
        let src: Ipv6Addr = "2001:db8:1::7".parse().unwrap();
        let mut r = Responder::new(
            ResponderConfig {
                darknets: vec![(Ipv4Addr::new(203, 0, 113, 0).into(), 24), (net.into(), 48)],
                secret: 42,
                ..ResponderConfig::default()
            },
            0,
        );
        let seg6 = |s: Ipv6Addr, d: Ipv6Addr, seq: u32, ack: u32, f: TcpFlags| {
            ipv6(
                s,
                d,
                6,
                61,
                0,
                0,
                &tcp(s.into(), d.into(), 40000, 22, seq, ack, f, 1000, &[]),
            )
        };
        let syn = seg6(src, dark, 1000, 0, TcpFlags::SYN);
        let out = r.on_packet(0, &parse_ip(&syn).unwrap()).expect("a SYN/ACK");
        let sa = parse_ip(&out).unwrap();
        assert!(
            matches!(sa.ip, ashiato_wire::packet::Ip::V6(h) if h.src == dark && h.dst == src && h.hop_limit == 64)
        );
        let L4::Tcp(t) = sa.l4 else { panic!() };
        assert!(t.flags.is_syn_ack());
        assert_eq!(t.ack, 1001);
        let ack = seg6(src, dark, 1001, t.seq.wrapping_add(1), TcpFlags::ACK);
        r.on_packet(3_000_000, &parse_ip(&ack).unwrap());
        let m = r.take_measured();
        assert_eq!(m.len(), 1);
        assert_eq!((m[0].src, m[0].tp_us), (IpAddr::V6(src), Some(3000)));
        assert_eq!(m[0].fp.map(|o| o.ttl), Some(61));
        // Outside the v6 prefix, multicast sources and the other family's prefix: ignored.
        let other: Ipv6Addr = "2001:db8:beef::9".parse().unwrap();
        assert!(
            r.on_packet(
                1,
                &parse_ip(&seg6(src, other, 1, 0, TcpFlags::SYN)).unwrap()
            )
            .is_none()
        );
        let mc: Ipv6Addr = "ff02::1".parse().unwrap();
        assert!(
            r.on_packet(1, &parse_ip(&seg6(mc, dark, 1, 0, TcpFlags::SYN)).unwrap())
                .is_none()
        );
        assert!(!r.in_darknet("::ffff:203.0.113.9".parse().unwrap()));
    }

    #[test]
    fn never_a_reflector_rate_limits_hold() {
        // A spoofed flood claiming one victim: the victim gets at most the per-source rate.
        let mut r = responder(1000, 5);
        let victim = Ipv4Addr::new(192, 0, 2, 1);
        let mut sent = 0;
        for i in 0..10_000u32 {
            let syn = seg(victim, DARK, (i % 60000) as u16, 80, i, 0, TcpFlags::SYN);
            // 10,000 SYNs in one second.
            if r.on_packet(u64::from(i) * 100_000, &parse_ip(&syn).unwrap())
                .is_some()
            {
                sent += 1;
            }
        }
        assert!(sent <= 5 + 5, "{sent} SYN/ACKs to one victim in a second");
        // Many sources: the global bucket holds.
        let mut r = responder(100, 5);
        let mut sent = 0;
        for i in 0..10_000u32 {
            let src = Ipv4Addr::from(0x0a00_0000 + i);
            let syn = seg(src, DARK, 1234, 80, i, 0, TcpFlags::SYN);
            if r.on_packet(u64::from(i) * 10_000, &parse_ip(&syn).unwrap())
                .is_some()
            {
                sent += 1;
            }
        }
        assert!(sent <= 100 + 10, "{sent} SYN/ACKs in 0.1 s at 100/s");
        // Sources inside the darknet are never answered; non-darknet targets are ignored.
        let syn = seg(
            DARK,
            Ipv4Addr::new(203, 0, 113, 10),
            1,
            80,
            1,
            0,
            TcpFlags::SYN,
        );
        assert!(r.on_packet(1 << 40, &parse_ip(&syn).unwrap()).is_none());
        let syn = seg(
            Ipv4Addr::new(192, 0, 2, 9),
            Ipv4Addr::new(8, 8, 8, 8),
            1,
            80,
            1,
            0,
            TcpFlags::SYN,
        );
        assert!(r.on_packet(1 << 40, &parse_ip(&syn).unwrap()).is_none());
    }

    #[test]
    fn unanswered_handshakes_time_out_and_state_is_bounded() {
        let mut r = Responder::new(
            ResponderConfig {
                darknets: vec![(Ipv4Addr::new(203, 0, 113, 0).into(), 24)],
                max_per_sec: 1_000_000,
                max_per_source_per_sec: 1_000_000,
                max_pending: 100,
                ..ResponderConfig::default()
            },
            0,
        );
        for i in 0..1000u32 {
            let syn = seg(
                Ipv4Addr::from(0x0a00_0000 + i),
                DARK,
                1,
                80,
                i,
                0,
                TcpFlags::SYN,
            );
            r.on_packet(u64::from(i), &parse_ip(&syn).unwrap());
            assert!(r.pending() <= 100);
        }
        r.poll(10_000_000_000);
        assert_eq!(r.pending(), 0);
        let m = r.take_measured();
        assert_eq!(m.len(), 100);
        assert!(m.iter().all(|c| c.tp_us.is_none()));
    }
}
