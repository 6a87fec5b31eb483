//! The DarkFlow detector under arbitrary segment sequences with tiny bounds (so every full
//! table path runs): it must not panic, and every queued SYN must end answered or dark.
#![no_main]

use ashiato_darkflow::detector::{Config, Detector, Segment};
use ashiato_darkflow::flow::Tuple;
use ashiato_wire::packet::TcpFlags;
use libfuzzer_sys::fuzz_target;

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
    let mut ts = 0u64;
    let mut sink = |_e| {};
    for c in data.chunks_exact(6) {
        // Time may also go backwards (out-of-order input).
        ts = if c[0] & 0x80 != 0 { ts.saturating_sub(u64::from(c[0] & 0x7f) * 97) } else { ts + u64::from(c[0]) * 131 };
        let client = u32::from(c[2] & 7);
        let fwd = (client, 99u32, 1000 + u16::from(c[3] & 3), 80 + u16::from(c[4] & 3));
        let (src, dst, sport, dport) = if c[5] & 1 == 0 { fwd } else { (fwd.1, fwd.0, fwd.3, fwd.2) };
        let flags = TcpFlags(u16::from(c[1]));
        if c[5] & 2 == 0 {
            det.segment_v4(Segment { ts, tuple: Tuple { src, dst, sport, dport }, flags }, &mut sink);
        } else {
            let v6 = |a: u32| {
                let mut b = [0u8; 16];
                b[12..].copy_from_slice(&a.to_be_bytes());
                b
            };
            det.segment_v6(Segment { ts, tuple: Tuple { src: v6(src), dst: v6(dst), sport, dport }, flags }, &mut sink);
        }
    }
    det.finish(ts, &mut sink);
    let c = det.counters();
    assert_eq!(c.pending, 0);
    assert_eq!(c.flows, 0);
    assert_eq!(c.queued, c.answered_synack + c.answered_rst + c.darkflows);
});
