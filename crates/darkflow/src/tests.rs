//! Tests of the detector against hand-made cases, a naive model, and the synthetic truth.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ashiato_wire::packet::{self, TcpFlags};
use proptest::prelude::*;

use crate::detector::{CloseReason, Config, Detector, Event, NS, Segment};
use crate::flow::{FlowId, Tuple};
use crate::summary::{Summary, SummaryConfig};
use crate::synth::{SynthConfig, generate};

const SYN: TcpFlags = TcpFlags::SYN;
const SYNACK: TcpFlags = TcpFlags(TcpFlags::SYN.0 | TcpFlags::ACK.0);
const RST: TcpFlags = TcpFlags::RST;
const RSTACK: TcpFlags = TcpFlags(TcpFlags::RST.0 | TcpFlags::ACK.0);
const ACK: TcpFlags = TcpFlags::ACK;

fn cli(n: u8) -> u32 {
    u32::from(Ipv4Addr::new(10, 0, 0, n))
}
const SRV: u32 = 0xc000_0201; // 192.0.2.1

fn fwd(c: u8, sport: u16, dport: u16) -> Tuple<u32> {
    Tuple {
        src: cli(c),
        dst: SRV,
        sport,
        dport,
    }
}

/// Runs segments (ts in ms) and collects every event.
struct Run {
    det: Detector,
    events: Vec<Event>,
}

impl Run {
    fn new(cfg: Config) -> Self {
        Self {
            det: Detector::new(cfg),
            events: Vec::new(),
        }
    }
    fn seg(&mut self, ms: u64, t: Tuple<u32>, flags: TcpFlags) {
        let ev = &mut self.events;
        self.det.segment_v4(
            Segment {
                ts: ms * 1_000_000,
                tuple: t,
                flags,
            },
            &mut |e| ev.push(e),
        );
    }
    fn finish(&mut self, ms: u64) {
        let ev = &mut self.events;
        self.det.finish(ms * 1_000_000, &mut |e| ev.push(e));
    }
    fn dark(&self) -> Vec<(FlowId, u32, bool)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Dark { record, .. } => {
                    Some((record.flow, record.syns_at_dark, record.complete))
                }
                _ => None,
            })
            .collect()
    }
    fn closed(&self) -> Vec<(FlowId, CloseReason, u64, u32, bool)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Closed { ts, record, reason } => Some((
                    record.flow,
                    *reason,
                    *ts,
                    record.syns,
                    record.late.is_some(),
                )),
                _ => None,
            })
            .collect()
    }
}

#[test]
fn answered_by_synack_or_rst_is_not_dark() {
    let mut r = Run::new(Config::default());
    r.seg(0, fwd(1, 1000, 80), SYN);
    r.seg(3, fwd(1, 1000, 80).reversed(), SYNACK);
    r.seg(10, fwd(2, 1000, 81), SYN);
    r.seg(12, fwd(2, 1000, 81).reversed(), RSTACK);
    r.seg(20, fwd(3, 1000, 82), SYN);
    r.seg(21, fwd(3, 1000, 82).reversed(), RST);
    r.finish(60_000);
    assert!(r.dark().is_empty(), "{:?}", r.events);
    let c = r.det.counters();
    assert_eq!((c.answered_synack, c.answered_rst, c.queued), (1, 2, 3));
}

#[test]
fn answer_before_syn_at_the_same_timestamp_cancels() {
    for answer in [SYNACK, RSTACK] {
        let mut r = Run::new(Config::default());
        r.seg(100, fwd(1, 1000, 80).reversed(), answer);
        r.seg(100, fwd(1, 1000, 80), SYN);
        r.finish(60_000);
        assert!(r.dark().is_empty(), "{:?}", r.events);
        assert_eq!(r.det.counters().unsolicited, 0);
    }
}

#[test]
fn answer_a_tick_before_the_syn_is_unsolicited_without_a_reorder_window() {
    let mut r = Run::new(Config::default());
    r.seg(100, fwd(1, 1000, 80).reversed(), SYNACK);
    r.seg(101, fwd(1, 1000, 80), SYN);
    r.finish(60_000);
    assert_eq!(r.dark().len(), 1);
    assert_eq!(r.det.counters().unsolicited, 1);
    // With a 5 ms window it is matched.
    let mut r = Run::new(Config {
        reorder_ns: 5_000_000,
        ..Config::default()
    });
    r.seg(100, fwd(1, 1000, 80).reversed(), SYNACK);
    r.seg(101, fwd(1, 1000, 80), SYN);
    r.finish(60_000);
    assert!(r.dark().is_empty());
}

#[test]
fn unanswered_becomes_dark_at_t_and_answer_at_exactly_t_is_in_time() {
    let mut r = Run::new(Config::default());
    r.seg(0, fwd(1, 1000, 80), SYN);
    r.seg(1000, fwd(2, 1000, 80), SYN);
    r.seg(5000, fwd(1, 1000, 80).reversed(), SYNACK); // exactly T: in time
    r.seg(6001, fwd(9, 9, 9), ACK); // moves the clock past flow 2's deadline
    assert_eq!(
        r.dark(),
        vec![(
            FlowId {
                src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
                sport: 1000,
                dst: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
                dport: 80
            },
            1,
            true
        )]
    );
    let at = r.events.iter().find_map(|e| match e {
        Event::Dark { ts, .. } => Some(*ts),
        _ => None,
    });
    assert_eq!(at, Some(6000 * 1_000_000), "dark at first SYN + T");
}

#[test]
fn retransmissions_stay_in_the_flow_and_app_retries_are_new_flows() {
    let mut r = Run::new(Config::default());
    r.seg(0, fwd(1, 1000, 445), SYN);
    r.seg(1000, fwd(1, 1000, 445), SYN);
    r.seg(3000, fwd(1, 1000, 445), SYN);
    r.seg(3000, fwd(1, 1001, 445), SYN); // application retry: new port
    r.seg(7000, fwd(1, 1000, 445), SYN); // after T: counted on the DarkFlow
    r.finish(10_000);
    let d = r.dark();
    assert_eq!(d.len(), 2);
    assert_eq!((d[0].0.sport, d[0].1, d[0].2), (1000, 3, true));
    assert_eq!((d[1].0.sport, d[1].1, d[1].2), (1001, 1, true));
    let closed = r.closed();
    assert_eq!(closed[0].3, 4, "the SYN at 7 s is on the first flow");
    assert_eq!(r.det.counters().retransmissions, 2);
}

#[test]
fn late_answer_is_marked_once() {
    let mut r = Run::new(Config::default());
    r.seg(0, fwd(1, 1000, 80), SYN);
    r.seg(5001, fwd(1, 1000, 80).reversed(), SYNACK);
    r.seg(5002, fwd(1, 1000, 80).reversed(), SYNACK);
    r.finish(6000);
    let late: Vec<_> = r
        .events
        .iter()
        .filter(|e| matches!(e, Event::LateAnswer { .. }))
        .collect();
    assert_eq!(late.len(), 1);
    assert_eq!(r.det.counters().late_answers, 1);
    assert!(r.closed()[0].4, "closed record keeps the late answer");
}

#[test]
fn client_rst_does_not_answer() {
    let mut r = Run::new(Config::default());
    r.seg(0, fwd(1, 1000, 80), SYN);
    r.seg(1, fwd(1, 1000, 80), RSTACK);
    r.finish(10_000);
    assert_eq!(r.dark().len(), 1);
}

#[test]
fn darkflows_expire_after_their_last_packet() {
    let mut r = Run::new(Config {
        expiry_ns: 60 * NS,
        ..Config::default()
    });
    r.seg(0, fwd(1, 1000, 80), SYN);
    r.seg(20_000, fwd(1, 1000, 80), SYN); // last packet at 20 s
    r.seg(80_000, fwd(9, 9, 9), ACK); // exactly 60 s later: still there
    assert!(r.closed().is_empty());
    r.seg(80_001, fwd(9, 9, 9), ACK);
    let c = r.closed();
    assert_eq!(c.len(), 1);
    assert_eq!(
        (c[0].1, c[0].2, c[0].3),
        (CloseReason::Expired, 80_000 * 1_000_000, 2)
    );
    // A new SYN on the same ports after expiry starts a new flow.
    r.seg(80_002, fwd(1, 1000, 80), SYN);
    r.finish(200_000);
    assert_eq!(r.dark().len(), 2);
}

#[test]
fn ipv6_flows() {
    let c6 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).octets();
    let s6 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2).octets();
    let mut det = Detector::new(Config::default());
    let mut ev = Vec::new();
    let t = Tuple {
        src: c6,
        dst: s6,
        sport: 5000,
        dport: 22,
    };
    let u = Tuple {
        src: c6,
        dst: s6,
        sport: 5001,
        dport: 22,
    };
    det.segment_v6(
        Segment {
            ts: 0,
            tuple: t,
            flags: SYN,
        },
        &mut |e| ev.push(e),
    );
    det.segment_v6(
        Segment {
            ts: 1,
            tuple: u,
            flags: SYN,
        },
        &mut |e| ev.push(e),
    );
    det.segment_v6(
        Segment {
            ts: 2,
            tuple: u.reversed(),
            flags: SYNACK,
        },
        &mut |e| ev.push(e),
    );
    det.finish(10 * NS, &mut |e| ev.push(e));
    let dark: Vec<_> = ev
        .iter()
        .filter_map(|e| {
            if let Event::Dark { record, .. } = e {
                Some(record.flow)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(dark.len(), 1);
    assert_eq!(dark[0].to_string(), "2001:db8::1 5000 2001:db8::2 22");
}

#[test]
fn out_of_order_timestamps_are_clamped_and_counted() {
    let mut r = Run::new(Config::default());
    r.seg(10_000, fwd(1, 1000, 80), SYN);
    r.seg(9_000, fwd(1, 1000, 80).reversed(), SYNACK); // older than the clock
    r.seg(1, fwd(2, 1000, 80), SYN); // much older: handled at 10 s
    r.finish(30_000);
    assert_eq!(r.det.counters().out_of_order, 2);
    let d = r.dark();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].0.src, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));
    let first = r.events.iter().find_map(|e| {
        if let Event::Dark { record, .. } = e {
            Some(record.first_syn)
        } else {
            None
        }
    });
    assert_eq!(first, Some(10_000 * 1_000_000));
}

#[test]
fn full_delay_queue_counts_untracked_syns_and_keeps_the_tracked_ones_exact() {
    let mut r = Run::new(Config {
        max_pending: 2,
        ..Config::default()
    });
    r.seg(0, fwd(1, 1, 80), SYN);
    r.seg(0, fwd(2, 1, 80), SYN);
    r.seg(0, fwd(3, 1, 80), SYN); // no room
    r.seg(1, fwd(1, 1, 80).reversed(), SYNACK);
    r.seg(2, fwd(4, 1, 80), SYN); // room again
    r.finish(10_000);
    let c = r.det.counters();
    assert_eq!((c.untracked, c.queued, c.darkflows), (1, 3, 2));
    assert!(r.events.iter().any(|e| matches!(e, Event::Untracked { flow, .. } if flow.src == IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3)))));
}

#[test]
fn full_flow_table_evicts_the_least_recently_active() {
    let mut r = Run::new(Config {
        max_flows: 2,
        ..Config::default()
    });
    r.seg(0, fwd(1, 1, 80), SYN);
    r.seg(1, fwd(2, 1, 80), SYN);
    r.seg(2_000, fwd(3, 1, 80), SYN);
    r.seg(5_500, fwd(1, 1, 80), SYN); // flows 1 and 2 are dark; flow 1 is active again
    r.seg(9_000, fwd(9, 9, 9), ACK); // flow 3 turns dark: the table is full
    let c = r.closed();
    assert_eq!(c.len(), 1);
    assert_eq!(
        (c[0].0.src, c[0].1),
        (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), CloseReason::Evicted)
    );
    assert_eq!(r.det.counters().evicted, 1);
}

#[test]
fn incomplete_windows_at_the_end_are_flagged() {
    let mut r = Run::new(Config::default());
    r.seg(0, fwd(1, 1, 80), SYN);
    r.seg(8_000, fwd(2, 1, 80), SYN);
    r.finish(9_000);
    let d = r.dark();
    assert_eq!(d.iter().map(|x| x.2).collect::<Vec<_>>(), vec![true, false]);
    assert_eq!(r.det.counters().incomplete, 1);
}

#[test]
fn memory_statement_matches_the_layout() {
    let s = Detector::entry_sizes();
    assert!(
        s.pending_v4 < 48.0,
        "pending IPv4 entry is {} bytes",
        s.pending_v4
    );
    assert!(s.pending_v6 < s.flow_v6);
    let det = Detector::new(Config {
        max_pending: 1000,
        max_flows: 1000,
        max_orphans: 10,
        ..Config::default()
    });
    assert!(det.memory_bound() > 1000 * 2 * 40);
    assert_eq!(
        det.heap_bytes(),
        0,
        "nothing is allocated before it is needed"
    );
}

/// The naive model: maps and full scans, no time-ordered list, expiry off.
fn model(
    segs: &[(u64, Tuple<u32>, TcpFlags)],
    t: u64,
) -> (BTreeSet<(FlowId, u64)>, BTreeSet<FlowId>) {
    let mut pending: BTreeMap<Tuple<u32>, u64> = BTreeMap::new();
    let mut dark: BTreeSet<Tuple<u32>> = BTreeSet::new();
    let mut orphans: BTreeMap<Tuple<u32>, u64> = BTreeMap::new();
    let mut out = BTreeSet::new();
    let mut late = BTreeSet::new();
    for &(ts, tup, flags) in segs {
        let due: Vec<_> = pending
            .iter()
            .filter(|(_, t0)| **t0 + t < ts)
            .map(|(k, v)| (*k, *v))
            .collect();
        for (k, t0) in due {
            pending.remove(&k);
            dark.insert(k);
            out.insert((k.id(), t0));
        }
        orphans.retain(|_, o| *o >= ts);
        if flags.is_syn_only() {
            if pending.contains_key(&tup) || dark.contains(&tup) {
                continue;
            }
            if orphans.remove(&tup).is_some() {
                continue;
            }
            pending.insert(tup, ts);
        } else if flags.is_rst() || flags.is_syn_ack() {
            let b = tup.reversed();
            if pending.remove(&b).is_some() {
                continue;
            }
            if dark.contains(&b) {
                late.insert(b.id());
                continue;
            }
            orphans.entry(b).or_insert(ts);
        }
    }
    for (k, t0) in pending {
        out.insert((k.id(), t0));
    }
    (out, late)
}

impl PartialOrd for Tuple<u32> {
    fn partial_cmp(&self, o: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Tuple<u32> {
    fn cmp(&self, o: &Self) -> core::cmp::Ordering {
        (self.src, self.dst, self.sport, self.dport).cmp(&(o.src, o.dst, o.sport, o.dport))
    }
}

fn seg_strategy() -> impl Strategy<Value = (u64, u8, u16, u16, u8)> {
    (
        prop_oneof![
            Just(0u64),
            Just(1),
            Just(1_000),
            Just(3_000),
            Just(5_000),
            Just(6_000)
        ],
        0u8..3,
        0u16..2,
        0u16..2,
        0u8..6,
    )
}

proptest! {
    /// Any interleaving of SYNs, answers from either side and other segments gives the same
    /// DarkFlows (flow and first SYN) and late answers as the naive model.
    #[test]
    fn detector_matches_the_naive_model(raw in proptest::collection::vec(seg_strategy(), 0..120)) {
        let mut ts = 0u64;
        let mut segs = Vec::new();
        for (gap_ms, c, sp, dp, kind) in raw {
            ts += gap_ms * 1_000_000;
            let t = fwd(c, 1000 + sp, 80 + dp);
            let (tup, flags) = match kind {
                0 | 1 => (t, SYN),
                2 => (t.reversed(), SYNACK),
                3 => (t.reversed(), RSTACK),
                4 => (t, RSTACK),
                _ => (t, ACK),
            };
            segs.push((ts, tup, flags));
        }
        let cfg = Config { expiry_ns: u64::MAX / 4, ..Config::default() };
        let mut r = Run::new(cfg);
        for &(ts, tup, flags) in &segs {
            let ev = &mut r.events;
            r.det.segment_v4(Segment { ts, tuple: tup, flags }, &mut |e| ev.push(e));
        }
        r.finish(ts / 1_000_000);
        let got: BTreeSet<(FlowId, u64)> = r.events.iter().filter_map(|e| match e {
            Event::Dark { record, .. } => Some((record.flow, record.first_syn)),
            _ => None,
        }).collect();
        let got_late: BTreeSet<FlowId> = r.events.iter().filter_map(|e| match e {
            Event::LateAnswer { record, .. } => Some(record.flow),
            _ => None,
        }).collect();
        let (want, want_late) = model(&segs, 5 * NS);
        prop_assert_eq!(got, want);
        prop_assert_eq!(got_late, want_late);
        let c = r.det.counters();
        prop_assert_eq!(c.pending, 0);
        prop_assert_eq!(c.queued, c.answered_synack + c.answered_rst + c.darkflows);
    }
}

/// Runs a synthetic capture through the real parser and the detector.
fn synth_run(
    cfg: &SynthConfig,
) -> (
    crate::synth::Truth,
    BTreeSet<FlowId>,
    BTreeSet<FlowId>,
    Summary,
    crate::Counters,
) {
    let mut det = Detector::new(Config {
        timeout_ns: cfg.timeout_ns,
        ..Config::default()
    });
    let mut sum = Summary::new(SummaryConfig::default());
    let mut dark = BTreeSet::new();
    let mut late = BTreeSet::new();
    let mut last = 0;
    let mut handle = |e: Event| {
        sum.observe(&e);
        match e {
            Event::Dark { record, .. } => {
                assert!(dark.insert(record.flow), "{:?} twice", record.flow)
            }
            Event::LateAnswer { record, .. } => {
                late.insert(record.flow);
            }
            _ => {}
        }
    };
    let truth = generate::<()>(cfg, |ts, frame| {
        let p =
            packet::parse(ashiato_wire::LinkType::Ethernet, frame).expect("synthetic frames parse");
        last = ts;
        det.packet(ts, &p, &mut handle);
        Ok(())
    })
    .unwrap();
    det.finish(last, &mut handle);
    let c = det.counters();
    (truth, dark, late, sum, c)
}

#[test]
fn synthetic_traffic_gives_exactly_the_known_answer() {
    for seed in 1..=3 {
        let cfg = SynthConfig {
            flows: 5_000,
            seed,
            ..SynthConfig::default()
        };
        let (truth, dark, late, sum, c) = synth_run(&cfg);
        assert!(truth.dark.len() > 1_000, "{}", truth.dark.len());
        assert_eq!(dark, truth.dark, "seed {seed}");
        assert_eq!(late, truth.late, "seed {seed}");
        assert_eq!(c.answered_synack + c.answered_rst, truth.answered);
        assert_eq!(c.unsolicited, truth.unsolicited);
        let rep = sum.report(c);
        assert_eq!(
            rep.ports.iter().map(|p| p.darkflows).sum::<u64>(),
            truth.dark.len() as u64
        );
        let forwards: u64 = rep.intervals.iter().map(|i| i.forwards).sum();
        assert_eq!(forwards, truth.dark.len() as u64);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]
    /// Any seed, any T, any arrival rate: still exactly the known answer.
    #[test]
    fn synthetic_known_answer_for_any_seed(seed in any::<u64>(), t_s in 2u64..10, rate in 10u64..5000) {
        let cfg = SynthConfig { flows: 600, seed, timeout_ns: t_s * NS, flows_per_sec: rate, ..SynthConfig::default() };
        let (truth, dark, late, _, _) = synth_run(&cfg);
        prop_assert_eq!(dark, truth.dark);
        prop_assert_eq!(late, truth.late);
    }
}
