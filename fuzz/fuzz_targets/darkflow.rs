//! The DarkFlow detector, summary and report under arbitrary segment sequences with tiny
//! bounds (so every full-table path runs) and arbitrary timestamps: forwards, backwards,
//! zero and near `u64::MAX` (a corrupt capture can stamp a packet anywhere). Nothing may
//! panic, every queued SYN must end answered or dark, and the report stays small.
#![no_main]

use ashiato_darkflow::detector::{Config, Detector, Event, Segment};
use ashiato_darkflow::flow::Tuple;
use ashiato_darkflow::report::{Meta, render_in_memory};
use ashiato_darkflow::summary::{MAX_DENSE_INTERVALS, MAX_INTERVALS, Summary, SummaryConfig};
use ashiato_wire::packet::TcpFlags;
use libfuzzer_sys::fuzz_target;

/// Bytes per segment: time step, flags, client, ports, direction and family, time mode.
const CHUNK: usize = 7;

fuzz_target!(|data: &[u8]| {
    let mut det = Detector::new(Config {
        timeout_ns: 5_000,
        expiry_ns: 20_000,
        reorder_ns: u64::from(data.first().copied().unwrap_or(0) % 3) * 100,
        max_pending: 4,
        max_flows: 3,
        max_orphans: 2,
        hash_seed: 1,
    });
    let interval_ns = 1 + u64::from(data.get(1).copied().unwrap_or(0)) * 1000;
    let mut sum = Summary::new(SummaryConfig {
        interval_ns,
        max_keys: 8,
    });
    let mut ts = 0u64;
    let mut sink = |e: Event| sum.observe(&e);
    for c in data.chunks_exact(CHUNK) {
        let step = u64::from(c[0] & 0x7f);
        ts = match c[6] % 8 {
            // Near the end of time, and the very ends.
            4 => u64::MAX - step * 1_000_000_007,
            5 => 0,
            6 => u64::MAX,
            // Anywhere: the step bytes spread over all 64 bits.
            7 => u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[0] ^ c[5], c[1] ^ c[4]]),
            // Mostly small steps, sometimes backwards (out-of-order input).
            _ if c[0] & 0x80 != 0 => ts.saturating_sub(step * 97),
            _ => ts.saturating_add(u64::from(c[0]) * 131),
        };
        let client = u32::from(c[2] & 7);
        let fwd = (
            client,
            99u32,
            1000 + u16::from(c[3] & 3),
            80 + u16::from(c[4] & 3),
        );
        let (src, dst, sport, dport) = if c[5] & 1 == 0 {
            fwd
        } else {
            (fwd.1, fwd.0, fwd.3, fwd.2)
        };
        let flags = TcpFlags(u16::from(c[1]));
        if c[5] & 2 == 0 {
            det.segment_v4(
                Segment {
                    ts,
                    tuple: Tuple {
                        src,
                        dst,
                        sport,
                        dport,
                    },
                    flags,
                },
                &mut sink,
            );
        } else {
            let v6 = |a: u32| {
                let mut b = [0u8; 16];
                b[12..].copy_from_slice(&a.to_be_bytes());
                b
            };
            det.segment_v6(
                Segment {
                    ts,
                    tuple: Tuple {
                        src: v6(src),
                        dst: v6(dst),
                        sport,
                        dport,
                    },
                    flags,
                },
                &mut sink,
            );
        }
    }
    det.finish(ts, &mut sink);
    let c = det.counters();
    assert_eq!(c.pending, 0);
    assert_eq!(c.flows, 0);
    assert_eq!(c.queued, c.answered_synack + c.answered_rst + c.darkflows);

    let report = sum.report(c);
    let most = (MAX_DENSE_INTERVALS as usize).max(MAX_INTERVALS) + 1;
    assert!(
        report.intervals.len() <= most,
        "{} intervals",
        report.intervals.len()
    );
    let meta = Meta {
        title: "fuzz".into(),
        inputs: vec!["fuzz".into()],
        timeout_ns: 5_000,
        generated_by: "fuzz".into(),
    };
    let files = render_in_memory(&report, &meta).expect("in-memory writers do not fail");
    for (name, bytes) in files {
        // A few thousand segments at most: every file is small whatever the timestamps.
        assert!(bytes.len() < 32 << 20, "{name}: {} bytes", bytes.len());
    }
});
