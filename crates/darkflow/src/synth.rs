//! Synthetic TCP traffic whose DarkFlow set is known by construction.
//!
//! Each flow is drawn from a list of scenarios that covers every rule of the definition
//! (answered quickly, by RST, after retransmissions, at exactly T, with the answer written
//! before the SYN at the same timestamp; unanswered with retransmissions before and after T,
//! answered late, application retries on a new port, scanners that reset their own SYN;
//! unsolicited SYN/ACKs; UDP noise), over IPv4 and IPv6. The generator knows which flows are
//! DarkFlows without running the detector, so the detector can be checked against it.
//!
//! Output is streamed in time order through a callback, so a capture of any size needs only
//! the packets of the flows in flight.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::rng::Xoshiro256pp;
use ashiato_wire::build;
use ashiato_wire::packet::TcpFlags;

use crate::detector::NS;
use crate::flow::FlowId;

/// Generator settings.
#[derive(Clone, Copy, Debug)]
pub struct SynthConfig {
    /// Number of flows (scenarios) to generate.
    pub flows: u64,
    /// Flow arrivals per second (uniform spacing with jitter).
    pub flows_per_sec: u64,
    /// T the truth is computed for (ns).
    pub timeout_ns: u64,
    /// Seed: the same seed gives the same capture.
    pub seed: u64,
    /// Time of the first packet (ns since the Unix epoch).
    pub start_ns: u64,
    /// Fraction of flows over IPv6, in percent.
    pub ipv6_percent: u8,
}

impl Default for SynthConfig {
    fn default() -> Self {
        Self {
            flows: 10_000,
            flows_per_sec: 1_000,
            timeout_ns: 5 * NS,
            seed: 1,
            start_ns: 1_767_225_600 * NS, // 2026-01-01T00:00:00Z
            ipv6_percent: 15,
        }
    }
}

/// What the generator knows about its output.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Truth {
    /// Every DarkFlow.
    pub dark: BTreeSet<FlowId>,
    /// The DarkFlows that get a late answer.
    pub late: BTreeSet<FlowId>,
    /// Flows answered in time.
    pub answered: u64,
    /// Unsolicited SYN/ACKs written.
    pub unsolicited: u64,
    /// Packets written.
    pub packets: u64,
}

const PORTS: [u16; 10] = [445, 22, 80, 443, 3389, 1433, 23, 8080, 25, 3306];

#[derive(Clone, Copy)]
enum Addr2 {
    V4(Ipv4Addr, Ipv4Addr),
    V6(Ipv6Addr, Ipv6Addr),
}

/// One packet waiting in the time-ordered output heap.
struct Pending {
    ts: u64,
    seq: u64,
    frame: Vec<u8>,
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        (self.ts, self.seq) == (o.ts, o.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    fn cmp(&self, o: &Self) -> core::cmp::Ordering {
        (self.ts, self.seq).cmp(&(o.ts, o.seq))
    }
}

struct Gen {
    heap: BinaryHeap<Reverse<Pending>>,
    seq: u64,
}

impl Gen {
    #[allow(clippy::too_many_arguments, reason = "one argument per header field")]
    fn tcp(
        &mut self,
        ts: u64,
        a: Addr2,
        reverse: bool,
        sport: u16,
        dport: u16,
        flags: TcpFlags,
        payload: &[u8],
    ) {
        let (s, d) = if reverse {
            (dport, sport)
        } else {
            (sport, dport)
        };
        let frame = match a {
            Addr2::V4(c, srv) => {
                let (x, y) = if reverse { (srv, c) } else { (c, srv) };
                build::ipv4_tcp_frame(
                    x,
                    y,
                    s,
                    d,
                    1000,
                    if flags.contains(TcpFlags::ACK) {
                        2000
                    } else {
                        0
                    },
                    flags,
                    self.seq as u16,
                    payload,
                )
            }
            Addr2::V6(c, srv) => {
                let (x, y) = if reverse { (srv, c) } else { (c, srv) };
                build::ipv6_tcp_frame(
                    x,
                    y,
                    s,
                    d,
                    1000,
                    if flags.contains(TcpFlags::ACK) {
                        2000
                    } else {
                        0
                    },
                    flags,
                    payload,
                )
            }
        };
        self.push(ts, frame);
    }

    fn push(&mut self, ts: u64, frame: Vec<u8>) {
        self.seq += 1;
        self.heap.push(Reverse(Pending {
            ts,
            seq: self.seq,
            frame,
        }));
    }
}

/// Writes the capture through `write(ts_ns, frame)` (Ethernet frames, time order) and
/// returns the truth.
pub fn generate<E>(
    cfg: &SynthConfig,
    mut write: impl FnMut(u64, &[u8]) -> Result<(), E>,
) -> Result<Truth, E> {
    let mut rng = Xoshiro256pp::new(cfg.seed);
    let mut truth = Truth::default();
    let mut g = Gen {
        heap: BinaryHeap::new(),
        seq: 0,
    };
    let t = cfg.timeout_ns;
    let gap = NS / cfg.flows_per_sec.max(1);
    let syn = TcpFlags::SYN;
    let synack = TcpFlags(TcpFlags::SYN.0 | TcpFlags::ACK.0);
    let ack = TcpFlags::ACK;
    let rstack = TcpFlags(TcpFlags::RST.0 | TcpFlags::ACK.0);
    let finack = TcpFlags(TcpFlags::FIN.0 | TcpFlags::ACK.0);
    let psh = TcpFlags(TcpFlags::PSH.0 | TcpFlags::ACK.0);
    let mut now = cfg.start_ns;
    for i in 0..cfg.flows {
        now += gap / 2 + rng.next_u64() % gap.max(1);
        // Drain what is due before this flow starts.
        while g.heap.peek().is_some_and(|p| p.0.ts < now) {
            let Reverse(p) = g.heap.pop().expect("peeked");
            write(p.ts, &p.frame)?;
            truth.packets += 1;
        }
        let r = rng.next_u64();
        let v6 = (r % 100) < u64::from(cfg.ipv6_percent);
        let dport = PORTS[((r >> 8) % PORTS.len() as u64) as usize];
        let server = (r >> 16) as u8;
        let addr = |retry: bool| {
            let idx = (i & 0x7f_ffff) as u32;
            if v6 {
                let c = Ipv6Addr::new(
                    0x2001,
                    0xdb8,
                    u16::from(retry),
                    0,
                    0,
                    0,
                    (idx >> 16) as u16,
                    idx as u16,
                );
                Addr2::V6(
                    c,
                    Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, u16::from(server)),
                )
            } else {
                let c = Ipv4Addr::from((if retry { 11u32 } else { 10u32 }) << 24 | idx);
                Addr2::V4(c, Ipv4Addr::new(192, 0, 2, server))
            }
        };
        let a = addr(false);
        let sport = 1024 + ((i >> 23) % 60_000) as u16 + (r >> 32) as u16 % 4;
        let id = |a: Addr2, sport: u16| match a {
            Addr2::V4(c, s) => FlowId {
                src: c.into(),
                sport,
                dst: s.into(),
                dport,
            },
            Addr2::V6(c, s) => FlowId {
                src: c.into(),
                sport,
                dst: s.into(),
                dport,
            },
        };
        let quick = 100_000 + rng.next_u64() % 20_000_000; // 0.1 to 20 ms
        let scenario = rng.next_u64() % 100;
        let dark = |truth: &mut Truth, f: FlowId| {
            truth.dark.insert(f);
        };
        match scenario {
            // Answered quickly, then a short session.
            0..=39 => {
                g.tcp(now, a, false, sport, dport, syn, &[]);
                g.tcp(now + quick, a, true, sport, dport, synack, &[]);
                g.tcp(now + 2 * quick, a, false, sport, dport, ack, &[]);
                g.tcp(
                    now + 2 * quick + 1000,
                    a,
                    false,
                    sport,
                    dport,
                    psh,
                    b"GET / HTTP/1.0\r\n\r\n",
                );
                g.tcp(
                    now + 3 * quick,
                    a,
                    true,
                    sport,
                    dport,
                    psh,
                    b"HTTP/1.0 200 OK\r\n\r\n",
                );
                g.tcp(now + 4 * quick, a, false, sport, dport, finack, &[]);
                g.tcp(now + 5 * quick, a, true, sport, dport, finack, &[]);
                truth.answered += 1;
            }
            // Closed port: RST/ACK.
            40..=47 => {
                g.tcp(now, a, false, sport, dport, syn, &[]);
                g.tcp(now + quick, a, true, sport, dport, rstack, &[]);
                truth.answered += 1;
            }
            // Answered after one retransmission (first SYN lost beyond the tap).
            48..=51 => {
                g.tcp(now, a, false, sport, dport, syn, &[]);
                g.tcp(now + NS, a, false, sport, dport, syn, &[]);
                g.tcp(now + NS + quick, a, true, sport, dport, synack, &[]);
                g.tcp(now + NS + 2 * quick, a, false, sport, dport, ack, &[]);
                truth.answered += 1;
            }
            // Answered at exactly T: in time.
            52..=53 => {
                g.tcp(now, a, false, sport, dport, syn, &[]);
                g.tcp(now + t, a, true, sport, dport, rstack, &[]);
                truth.answered += 1;
            }
            // The answer is written before the SYN, same timestamp (two taps merged).
            54..=56 => {
                g.tcp(now, a, true, sport, dport, synack, &[]);
                g.tcp(now, a, false, sport, dport, syn, &[]);
                g.tcp(now + quick, a, false, sport, dport, ack, &[]);
                truth.answered += 1;
            }
            // Unanswered, 0 to 3 retransmissions at 1, 3 and 7 s (the last after T).
            57..=86 => {
                g.tcp(now, a, false, sport, dport, syn, &[]);
                for k in 0..(rng.next_u64() % 4) {
                    g.tcp(
                        now + [1, 3, 7][k as usize] * NS,
                        a,
                        false,
                        sport,
                        dport,
                        syn,
                        &[],
                    );
                }
                dark(&mut truth, id(a, sport));
            }
            // Answered late (1 ms to 10 s after T).
            87..=89 => {
                g.tcp(now, a, false, sport, dport, syn, &[]);
                g.tcp(now + 3 * NS, a, false, sport, dport, syn, &[]);
                let late = now + t + 1_000_000 + rng.next_u64() % (10 * NS);
                g.tcp(late, a, true, sport, dport, synack, &[]);
                let f = id(a, sport);
                dark(&mut truth, f);
                truth.late.insert(f);
            }
            // Application retry: a new source port after 3 s; the retry is answered.
            90..=92 => {
                g.tcp(now, a, false, sport, dport, syn, &[]);
                g.tcp(now + NS, a, false, sport, dport, syn, &[]);
                let b = addr(true);
                g.tcp(now + 3 * NS, b, false, sport + 1, dport, syn, &[]);
                g.tcp(now + 3 * NS + quick, b, true, sport + 1, dport, synack, &[]);
                dark(&mut truth, id(a, sport));
                truth.answered += 1;
            }
            // A scanner that resets its own SYN: its RST answers nothing.
            93..=94 => {
                g.tcp(now, a, false, sport, dport, syn, &[]);
                g.tcp(now + quick, a, false, sport, dport, rstack, &[]);
                dark(&mut truth, id(a, sport));
            }
            // Backscatter: a SYN/ACK nobody asked for.
            95..=97 => {
                g.tcp(now, a, true, sport, dport, synack, &[]);
                truth.unsolicited += 1;
            }
            // UDP noise.
            _ => {
                let frame = match a {
                    Addr2::V4(c, s) => build::ipv4_udp_frame(c, s, sport, 53, 1, b"noise"),
                    Addr2::V6(c, s) => build::ipv6_udp_frame(c, s, sport, 53, b"noise"),
                };
                g.push(now, frame);
            }
        }
    }
    while let Some(Reverse(p)) = g.heap.pop() {
        write(p.ts, &p.frame)?;
        truth.packets += 1;
    }
    Ok(truth)
}
