//! Synthetic TCP traffic whose DarkFlow set is known by construction.
//!
//! Each flow is drawn from a list of scenarios that covers every rule of the definition
//! (answered quickly, by RST, after retransmissions, at exactly T, with the answer written
//! before the SYN at the same timestamp; unanswered with retransmissions before and after T,
//! answered late, application retries on a new port, scanners that reset their own SYN;
//! unsolicited SYN/ACKs; UDP noise), over IPv4 and IPv6. The generator knows which flows are
//! DarkFlows without running the detector, so the detector can be checked against it.
//!
//! With [`SynthConfig::answered_percent`] the same scenarios are drawn in a gateway-like
//! mix instead: mostly answered sessions carrying [`SynthConfig::data_packets`] data packets,
//! and a chosen share of unanswered SYNs. The truth is known the same way.
//!
//! Output is streamed in time order through a callback, so a capture of any size needs only
//! the packets of the flows in flight.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::net::{Ipv4Addr, Ipv6Addr};

use ashiato_rng::Xoshiro256pp;
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
    /// Gateway-like mix: this percent of flows is drawn from the answered scenarios (mostly
    /// sessions with data and FINs; also RSTs, retransmitted and reordered answers), the rest
    /// from the unanswered ones (DarkFlows, late answers, application retries, self-reset
    /// scans, backscatter, UDP). `None`: the rule-coverage mix, 57 % answered.
    pub answered_percent: Option<u8>,
    /// Data packets per answered session, alternating client and server (default 2: a
    /// request and its response).
    pub data_packets: u32,
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
            answered_percent: None,
            data_packets: 2,
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
        // Scenarios 0..=56 are answered, 57..=99 are not.
        let scenario = match cfg.answered_percent {
            None => rng.next_u64() % 100,
            Some(p) if rng.next_u64() % 100 < u64::from(p) => rng.next_u64() % 57,
            Some(_) => 57 + rng.next_u64() % 43,
        };
        let dark = |truth: &mut Truth, f: FlowId| {
            truth.dark.insert(f);
        };
        match scenario {
            // Answered quickly, then a session: data both ways, FINs.
            0..=39 => {
                g.tcp(now, a, false, sport, dport, syn, &[]);
                g.tcp(now + quick, a, true, sport, dport, synack, &[]);
                g.tcp(now + 2 * quick, a, false, sport, dport, ack, &[]);
                // Requests and responses in turn between 2q + 1 µs and 3q.
                let n = u64::from(cfg.data_packets);
                for k in 0..n {
                    let at = now + 2 * quick + 1000 + k * (quick - 1000) / (n - 1).max(1);
                    let (server, payload): (bool, &[u8]) = if k % 2 == 0 {
                        (false, b"GET / HTTP/1.0\r\n\r\n")
                    } else {
                        (true, b"HTTP/1.0 200 OK\r\n\r\n")
                    };
                    g.tcp(at, a, server, sport, dport, psh, payload);
                }
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

/// Generates `cfg`'s traffic straight into `det` (parsed as Ethernet frames, by their own
/// timestamps) and finishes it at the last packet, handing every event to `on_event`: the
/// synthetic capture without a file, for tests and benchmarks. Returns the known answer.
pub fn replay(
    cfg: &SynthConfig,
    det: &mut crate::Detector,
    on_event: &mut impl FnMut(crate::Event),
) -> Truth {
    let mut last = 0;
    let truth = generate::<std::convert::Infallible>(cfg, |ts, frame| {
        // The generator builds well-formed frames only; one that did not parse would be
        // skipped here just as the shells skip it.
        if let Ok(p) = ashiato_wire::packet::parse(ashiato_wire::LinkType::Ethernet, frame) {
            last = ts;
            det.packet(ts, &p, &mut *on_event);
        }
        Ok(())
    });
    det.finish(last, &mut *on_event);
    match truth {
        Ok(t) => t,
        Err(never) => match never {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::{Config, Detector, Event};
    use ashiato_wire::packet;
    use proptest::prelude::*;

    /// (truth, DarkFlows found, late answers found, answered in time) through the real parser
    /// and detector.
    fn detect(cfg: &SynthConfig) -> (Truth, BTreeSet<FlowId>, BTreeSet<FlowId>, u64) {
        let mut det = Detector::new(Config {
            timeout_ns: cfg.timeout_ns,
            ..Config::default()
        });
        let (mut dark, mut late) = (BTreeSet::new(), BTreeSet::new());
        let mut handle = |e: Event| match e {
            Event::Dark { record, .. } => assert!(dark.insert(record.flow)),
            Event::LateAnswer { record, .. } => assert!(late.insert(record.flow)),
            _ => {}
        };
        let mut last = 0;
        let truth = generate::<()>(cfg, |ts, frame| {
            let p = packet::parse(ashiato_wire::LinkType::Ethernet, frame).expect("parses");
            last = ts;
            det.packet(ts, &p, &mut handle);
            Ok(())
        })
        .expect("no write error");
        det.finish(last, &mut handle);
        let c = det.counters();
        (truth, dark, late, c.answered_synack + c.answered_rst)
    }

    #[test]
    fn gateway_mix_is_mostly_answered_sessions() {
        let cfg = SynthConfig {
            flows: 4_000,
            answered_percent: Some(70),
            data_packets: 6,
            ..SynthConfig::default()
        };
        let (truth, dark, late, answered) = detect(&cfg);
        assert_eq!(dark, truth.dark);
        assert_eq!(late, truth.late);
        assert_eq!(answered, truth.answered);
        // About 70 % answered, about 26 % DarkFlows (38 of the 43 unanswered scenarios).
        assert!(
            (2_600..3_000).contains(&truth.answered),
            "{}",
            truth.answered
        );
        assert!(
            (900..1_200).contains(&truth.dark.len()),
            "{}",
            truth.dark.len()
        );
        // Sessions carry their data: well over the rule-coverage mix's 3.5 packets a flow.
        assert!(truth.packets > 6 * cfg.flows, "{}", truth.packets);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]
        /// Any mix, any amount of data, any seed: still exactly the known answer.
        #[test]
        fn gateway_mix_known_answer(
            seed in any::<u64>(),
            answered in 0u8..=100,
            data in 0u32..12,
            t_s in 2u64..10,
            rate in 10u64..5000,
        ) {
            let cfg = SynthConfig {
                flows: 600,
                seed,
                timeout_ns: t_s * NS,
                flows_per_sec: rate,
                answered_percent: Some(answered),
                data_packets: data,
                ..SynthConfig::default()
            };
            let (truth, dark, late, answered) = detect(&cfg);
            prop_assert_eq!(dark, truth.dark);
            prop_assert_eq!(late, truth.late);
            prop_assert_eq!(answered, truth.answered);
        }
    }
}
