//! Prometheus text exposition of the detector's counters (pure; the shells serve it).

use std::fmt::Write;

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
    let mut o = String::with_capacity(2048);
    let counters: [(&str, u64, &str); 15] = [
        ("segments_total", c.segments, "TCP segments seen"),
        ("syns_total", c.syns, "SYNs seen, retransmissions included"),
        ("queued_total", c.queued, "SYNs added to the delay queue"),
        (
            "retransmissions_total",
            c.retransmissions,
            "SYNs on a pending flow",
        ),
        (
            "answered_synack_total",
            c.answered_synack,
            "pending SYNs answered by SYN/ACK within T",
        ),
        (
            "answered_rst_total",
            c.answered_rst,
            "pending SYNs answered by RST within T",
        ),
        (
            "darkflows_total",
            c.darkflows,
            "flows whose SYN got no answer within T",
        ),
        (
            "late_answers_total",
            c.late_answers,
            "DarkFlows answered after T",
        ),
        (
            "expired_total",
            c.expired,
            "DarkFlows expired from the table",
        ),
        (
            "evicted_total",
            c.evicted,
            "DarkFlows closed early because the table was full",
        ),
        (
            "untracked_total",
            c.untracked,
            "SYNs not tracked because the delay queue was full",
        ),
        (
            "unsolicited_total",
            c.unsolicited,
            "SYN/ACKs or RSTs that answered no SYN",
        ),
        (
            "out_of_order_total",
            c.out_of_order,
            "segments older than the detector clock",
        ),
        (
            "kernel_packets_total",
            s.kernel_packets,
            "packets the kernel handed to the capture socket, dropped ones included",
        ),
        (
            "kernel_drops_total",
            s.kernel_drops,
            "packets the kernel dropped: ring full",
        ),
    ];
    for (name, v, help) in counters {
        let _ = writeln!(
            o,
            "# HELP {prefix}_{name} {help}\n# TYPE {prefix}_{name} counter\n{prefix}_{name} {v}"
        );
    }
    let inline: [(&str, u64, &str); 3] = [
        (
            "verdicts_total",
            s.verdicts,
            "packets given an NFQUEUE verdict",
        ),
        (
            "handed_over_total",
            s.handed_over,
            "SYNs handed to the honeypot",
        ),
        (
            "cut_off_total",
            s.cut_off,
            "flows cut off from the honeypot after a late answer",
        ),
    ];
    for (name, v, help) in inline {
        let _ = writeln!(
            o,
            "# HELP {prefix}_{name} {help}\n# TYPE {prefix}_{name} counter\n{prefix}_{name} {v}"
        );
    }
    let gauges: [(&str, u64, &str); 5] = [
        ("pending", c.pending, "SYNs waiting in the delay queue"),
        ("pending_peak", c.pending_peak, "most SYNs waiting at once"),
        ("flows", c.flows, "DarkFlows in the table"),
        (
            "table_bytes",
            s.table_bytes,
            "heap bytes of the detector tables",
        ),
        (
            "table_bytes_bound",
            s.table_bytes_bound,
            "upper bound of the detector tables' heap bytes",
        ),
    ];
    for (name, v, help) in gauges {
        let _ = writeln!(
            o,
            "# HELP {prefix}_{name} {help}\n# TYPE {prefix}_{name} gauge\n{prefix}_{name} {v}"
        );
    }
    o
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
