//! Prometheus text exposition of the detector's counters (pure; the shells serve it),
//! written with `ashiato_api::metrics` like every service's.

use ashiato_api::metrics::{Exposition, Kind};

use crate::detector::Counters;

/// Extra gauges a shell knows about.
#[derive(Clone, Copy, Debug, Default)]
pub struct ShellStats {
    /// Packets the kernel delivered to the capture ring.
    pub kernel_packets: u64,
    /// Packets the kernel dropped because the ring was full.
    pub kernel_drops: u64,
    /// Heap bytes of the detector's tables.
    pub table_bytes: u64,
    /// Upper bound of those bytes.
    pub table_bytes_bound: u64,
    /// Packets given a verdict (inline mode).
    pub verdicts: u64,
    /// SYNs handed to the honeypot (inline mode).
    pub handed_over: u64,
    /// Flows cut off from the honeypot after a late answer (inline mode).
    pub cut_off: u64,
}

/// The metrics page, `prefix` being e.g. `ashiato_darkflow`.
pub fn render(prefix: &str, c: &Counters, s: &ShellStats) -> String {
    const COUNTER: Kind = Kind::Counter;
    const GAUGE: Kind = Kind::Gauge;
    let samples: [(&str, Kind, u64, &str); 23] = [
        ("segments_total", COUNTER, c.segments, "TCP segments seen"),
        (
            "syns_total",
            COUNTER,
            c.syns,
            "SYNs seen, retransmissions included",
        ),
        (
            "queued_total",
            COUNTER,
            c.queued,
            "SYNs added to the delay queue",
        ),
        (
            "retransmissions_total",
            COUNTER,
            c.retransmissions,
            "SYNs on a pending flow",
        ),
        (
            "answered_synack_total",
            COUNTER,
            c.answered_synack,
            "pending SYNs answered by SYN/ACK within T",
        ),
        (
            "answered_rst_total",
            COUNTER,
            c.answered_rst,
            "pending SYNs answered by RST within T",
        ),
        (
            "darkflows_total",
            COUNTER,
            c.darkflows,
            "flows whose SYN got no answer within T",
        ),
        (
            "late_answers_total",
            COUNTER,
            c.late_answers,
            "DarkFlows answered after T",
        ),
        (
            "expired_total",
            COUNTER,
            c.expired,
            "DarkFlows expired from the table",
        ),
        (
            "evicted_total",
            COUNTER,
            c.evicted,
            "DarkFlows closed early because the table was full",
        ),
        (
            "untracked_total",
            COUNTER,
            c.untracked,
            "SYNs not tracked because the delay queue was full",
        ),
        (
            "unsolicited_total",
            COUNTER,
            c.unsolicited,
            "SYN/ACKs or RSTs that answered no SYN",
        ),
        (
            "out_of_order_total",
            COUNTER,
            c.out_of_order,
            "segments older than the detector clock",
        ),
        (
            "kernel_packets_total",
            COUNTER,
            s.kernel_packets,
            "packets the kernel handed to the capture socket, dropped ones included",
        ),
        (
            "kernel_drops_total",
            COUNTER,
            s.kernel_drops,
            "packets the kernel dropped: ring full",
        ),
        (
            "verdicts_total",
            COUNTER,
            s.verdicts,
            "packets given an NFQUEUE verdict",
        ),
        (
            "handed_over_total",
            COUNTER,
            s.handed_over,
            "SYNs handed to the honeypot",
        ),
        (
            "cut_off_total",
            COUNTER,
            s.cut_off,
            "flows cut off from the honeypot after a late answer",
        ),
        (
            "pending",
            GAUGE,
            c.pending,
            "SYNs waiting in the delay queue",
        ),
        (
            "pending_peak",
            GAUGE,
            c.pending_peak,
            "most SYNs waiting at once",
        ),
        ("flows", GAUGE, c.flows, "DarkFlows in the table"),
        (
            "table_bytes",
            GAUGE,
            s.table_bytes,
            "heap bytes of the detector tables",
        ),
        (
            "table_bytes_bound",
            GAUGE,
            s.table_bytes_bound,
            "upper bound of the detector tables' heap bytes",
        ),
    ];
    let mut o = Exposition::new();
    for (name, kind, v, help) in samples {
        o.single(&format!("{prefix}_{name}"), kind, help, &[], v as f64);
    }
    o.finish()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_sample_has_help_and_type() {
        let c = crate::Counters {
            darkflows: 7,
            ..Default::default()
        };
        let page = super::render("x", &c, &super::ShellStats::default());
        assert!(page.contains("\nx_darkflows_total 7\n"));
        let samples = page.lines().filter(|l| !l.starts_with('#')).count();
        assert_eq!(
            page.lines().filter(|l| l.starts_with("# TYPE")).count(),
            samples
        );
    }
}
