//! The summary under hostile timestamps: a corrupt capture can stamp a packet anywhere in
//! `0..=u64::MAX`, and neither the summary nor the report may grow without bound.

use proptest::prelude::*;

use super::{MAX_DENSE_INTERVALS, MAX_INTERVALS, Summary, SummaryConfig};
use crate::detector::{Config, Counters, Detector, Event, NS, Segment};
use crate::flow::Tuple;
use crate::report::{Meta, render_in_memory, write_report};
use ashiato_wire::packet::TcpFlags;

/// The most intervals a report can list.
const MAX_LISTED: usize = if MAX_INTERVALS as u64 > MAX_DENSE_INTERVALS {
    MAX_INTERVALS + 1
} else {
    MAX_DENSE_INTERVALS as usize + 1
};

fn meta() -> Meta {
    Meta {
        title: "t".into(),
        inputs: vec!["x.pcap".into()],
        timeout_ns: 5 * NS,
        generated_by: "test".into(),
    }
}

/// One SYN stamped at the largest time: the dense series used to step past `u64::MAX` and
/// wrap around, filling memory.
#[test]
fn one_event_at_the_largest_time() {
    for ts in [u64::MAX, u64::MAX - 1, u64::MAX - 10 * NS, 0] {
        let mut s = Summary::new(SummaryConfig::default());
        s.observe(&Event::Queued { ts });
        let r = s.report(Counters::default());
        assert_eq!(r.intervals.len(), 1, "{ts}");
        assert_eq!(r.intervals[0].adds, 1);
        let files = render_in_memory(&r, &meta()).unwrap();
        assert!(files.iter().all(|(_, b)| b.len() < 100_000), "{ts}");
    }
}

/// Both ends of time in one run: the series is sparse, not 58 billion years of intervals.
#[test]
fn first_and_last_time_together() {
    let mut s = Summary::new(SummaryConfig::default());
    s.observe(&Event::Queued { ts: 0 });
    s.observe(&Event::Queued { ts: u64::MAX });
    let r = s.report(Counters::default());
    assert_eq!(r.intervals.len(), 2);
}

/// More distinct intervals than the summary holds: the width doubles and no event is lost.
#[test]
fn too_many_intervals_coarsen_without_losing_events() {
    let cfg = SummaryConfig {
        interval_ns: 1,
        ..SummaryConfig::default()
    };
    let mut s = Summary::new(cfg);
    let n = MAX_INTERVALS as u64 * 2;
    for i in 0..n {
        // Spread out so that the dense series would be far too long.
        s.observe(&Event::Queued {
            ts: i.wrapping_mul(0x9e37_79b9_7f4a_7c15),
        });
        assert!(s.intervals_held() <= MAX_INTERVALS);
    }
    let r = s.report(Counters::default());
    assert!(r.interval_ns > 1);
    assert!(r.intervals.len() <= MAX_LISTED);
    assert_eq!(r.intervals.iter().map(|i| i.adds).sum::<u64>(), n);
}

/// A timestamp: mostly extreme ones, some ordinary.
fn ts() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        Just(0u64),
        Just(u64::MAX),
        (0u64..100 * NS).prop_map(|d| u64::MAX - d),
        0u64..100 * NS,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Arbitrary (also backwards, also extreme) timestamps through detector, summary and the
    /// report written to a directory: nothing panics and every size stays bounded.
    #[test]
    fn arbitrary_times_stay_bounded(
        segs in proptest::collection::vec((ts(), 0u8..4, 0u8..8, 0u8..4), 0..60),
        end in ts(),
    ) {
        let mut det = Detector::new(Config {
            timeout_ns: 5 * NS,
            max_pending: 16,
            max_flows: 8,
            max_orphans: 4,
            ..Config::default()
        });
        let mut sum = Summary::new(SummaryConfig { interval_ns: NS, max_keys: 32 });
        let mut events = 0u64;
        let mut out = |e: Event| {
            sum.observe(&e);
            events += 1;
        };
        for &(ts, kind, client, port) in &segs {
            let flags = [
                TcpFlags::SYN,
                TcpFlags(TcpFlags::SYN.0 | TcpFlags::ACK.0),
                TcpFlags::RST,
                TcpFlags::ACK,
            ][usize::from(kind)];
            let fwd = Tuple { src: u32::from(client), dst: 99, sport: 1000, dport: 80 + u16::from(port) };
            let tuple = if kind == 0 { fwd } else { fwd.reversed() };
            det.segment_v4(Segment { ts, tuple, flags }, &mut out);
        }
        det.finish(end, &mut out);
        prop_assert!(events <= 4 * segs.len() as u64 + 4);
        let r = sum.report(det.counters());
        prop_assert!(r.intervals.len() <= MAX_LISTED);
        let dir = tempfile::tempdir().unwrap();
        let paths = write_report(dir.path(), &r, &meta()).unwrap();
        for p in paths {
            let len = std::fs::metadata(&p).unwrap().len();
            // A few dozen flows: every file is small, however far apart their times are.
            prop_assert!(len < 20_000_000, "{}: {len}", p.display());
        }
    }
}

/// Runs a synthetic capture through parser, detector and summary; returns the report, whose
/// files are written to `dir`.
fn synth_report(flows: u64, dir: &std::path::Path) -> crate::Report {
    use crate::synth::{SynthConfig, replay};
    let cfg = SynthConfig {
        flows,
        seed: 7,
        ..SynthConfig::default()
    };
    let mut det = Detector::new(Config::default());
    let mut sum = Summary::new(SummaryConfig::default());
    replay(&cfg, &mut det, &mut |e: Event| sum.observe(&e));
    let report = sum.report(det.counters());
    write_report(dir, &report, &meta()).unwrap();
    report
}

/// Many sources: summary.json lists the top ones with their totals and stays small; the full
/// lists are in the CSV files.
#[test]
fn summary_json_stays_small_for_many_sources() {
    let dir = tempfile::tempdir().unwrap();
    let r = synth_report(20_000, dir.path());
    assert!(r.sources.len() > 5_000, "{} sources", r.sources.len());
    let json = std::fs::read_to_string(dir.path().join("summary.json")).unwrap();
    assert!(
        json.len() < 96 * 1024,
        "summary.json is {} bytes",
        json.len()
    );
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["sources_listed"], 100);
    assert_eq!(v["sources_total"], r.sources.len());
    assert_eq!(v["sources"].as_array().unwrap().len(), 100);
    assert_eq!(v["destinations_total"], r.destinations.len());
    assert!(v["source_syns_cdf"].as_array().unwrap().len() > 5);
    let csv = std::fs::read_to_string(dir.path().join("sources.csv")).unwrap();
    assert_eq!(csv.lines().count(), r.sources.len() + 1);
}

fn addr_stat() -> impl Strategy<Value = super::AddrStat> {
    (
        0u8..3,
        any::<u128>(),
        0u64..4,
        prop::sample::select(vec![0u128, 1, u128::MAX]),
    )
        .prop_map(|(family, bits, syns, low)| {
            let bits = if bits % 2 == 0 { low } else { bits };
            let addr = match family {
                0 => None,
                1 => Some(std::net::IpAddr::V4(std::net::Ipv4Addr::from_bits(
                    bits as u32,
                ))),
                _ => Some(std::net::IpAddr::V6(std::net::Ipv6Addr::from_bits(bits))),
            };
            super::AddrStat {
                addr,
                darkflows: 0,
                syns,
            }
        })
}

proptest! {
    /// The report's integer sort key orders addresses exactly as comparing
    /// (SYNs descending, `Option<IpAddr>`) does.
    #[test]
    fn address_sort_key_is_the_plain_order(a in addr_stat(), b in addr_stat()) {
        let plain = b.syns.cmp(&a.syns).then(a.addr.cmp(&b.addr));
        prop_assert_eq!(super::by_syns(&a).cmp(&super::by_syns(&b)), plain);
    }
}
