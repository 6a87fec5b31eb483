//! The CSV files: one row per DarkFlow ([`DarkflowCsv`], streamed) and one per port, address,
//! interval and answer-delay bucket of a [`Report`]. Plain integers and [`rfc3339`] times,
//! a header line first, no quoting needed (no field holds a comma).

use std::io::{self, Write};
use std::net::IpAddr;

use super::format::rfc3339;
use crate::detector::{AnswerKind, Record};
use crate::summary::{AddrStat, Report, delay_buckets};

/// Streams DarkFlow [`Record`]s as CSV, one row per flow.
///
/// Columns: `first_syn,src,sport,dst,dport,syns,retransmissions,packets,last_packet,`
/// `late_answer,late_kind,late_at,complete`; times are [`rfc3339`], `late_kind` is
/// `syn_ack` or `rst`, and the late columns are empty (`late_answer` false) when no answer
/// came. The writer does not buffer: hand it a [`BufWriter`](std::io::BufWriter) for files.
#[derive(Debug)]
pub struct DarkflowCsv<W: Write> {
    w: W,
    rows: u64,
}

impl<W: Write> DarkflowCsv<W> {
    /// The CSV header line, without its newline.
    pub const HEADER: &'static str = "first_syn,src,sport,dst,dport,syns,retransmissions,packets,\
                                      last_packet,late_answer,late_kind,late_at,complete";

    /// Writes the header.
    pub fn new(mut w: W) -> io::Result<Self> {
        writeln!(w, "{}", Self::HEADER)?;
        Ok(Self { w, rows: 0 })
    }

    /// Writes one DarkFlow.
    pub fn write(&mut self, r: &Record) -> io::Result<()> {
        let f = r.flow;
        let (late_kind, late_at) = match r.late {
            Some(l) => (
                match l.kind {
                    AnswerKind::SynAck => "syn_ack",
                    AnswerKind::Rst => "rst",
                },
                rfc3339(l.ts),
            ),
            None => ("", String::new()),
        };
        writeln!(
            self.w,
            "{},{},{},{},{},{},{},{},{},{},{},{},{}",
            rfc3339(r.first_syn),
            f.src,
            f.sport,
            f.dst,
            f.dport,
            r.syns,
            r.syns.saturating_sub(1),
            r.packets,
            rfc3339(r.last_packet),
            r.late.is_some(),
            late_kind,
            late_at,
            r.complete
        )?;
        self.rows += 1;
        Ok(())
    }

    /// Rows written so far (header excluded).
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Flushes and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.w.flush()?;
        Ok(self.w)
    }
}

/// An address for a CSV cell (empty when unknown).
fn addr_csv(a: Option<IpAddr>) -> String {
    a.map(|a| a.to_string()).unwrap_or_default()
}

/// `ports.csv`: every port with DarkFlows, most first.
pub(super) fn ports(w: &mut dyn Write, report: &Report) -> io::Result<()> {
    writeln!(w, "port,darkflows,syns,unique_sources")?;
    for p in &report.ports {
        writeln!(
            w,
            "{},{},{},{}",
            p.port, p.darkflows, p.syns, p.unique_sources
        )?;
    }
    Ok(())
}

/// `sources.csv` and `destinations.csv`: every address kept, most DarkFlow SYNs first.
pub(super) fn addrs(w: &mut dyn Write, rows: &[AddrStat]) -> io::Result<()> {
    writeln!(w, "addr,darkflows,syns")?;
    for a in rows {
        writeln!(w, "{},{},{}", addr_csv(a.addr), a.darkflows, a.syns)?;
    }
    Ok(())
}

/// `intervals.csv`: the delay-queue series and the late and untracked counts.
pub(super) fn intervals(w: &mut dyn Write, report: &Report) -> io::Result<()> {
    writeln!(w, "start,adds,forwards,deletes,late,untracked")?;
    for i in &report.intervals {
        writeln!(
            w,
            "{},{},{},{},{},{}",
            rfc3339(i.start),
            i.adds,
            i.forwards,
            i.deletes,
            i.late,
            i.untracked
        )?;
    }
    Ok(())
}

/// `answer_delays.csv`: the histogram with its bucket edges.
pub(super) fn answer_delays(w: &mut dyn Write, report: &Report, timeout_ns: u64) -> io::Result<()> {
    // Delay d in lower_ns < d <= upper_ns (the first bucket includes 0); the last ends at T.
    writeln!(w, "lower_ns,upper_ns,answered")?;
    for b in delay_buckets(&report.answer_delays, timeout_ns) {
        writeln!(w, "{},{},{}", b.lower_ns, b.upper_ns, b.answered)?;
    }
    Ok(())
}

/// `unsolicited.csv`: addresses that sent answers to no SYN (their count is in `syns`).
pub(super) fn unsolicited(w: &mut dyn Write, report: &Report) -> io::Result<()> {
    writeln!(w, "addr,answers")?;
    for a in &report.unsolicited {
        writeln!(w, "{},{}", addr_csv(a.addr), a.syns)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::DarkflowCsv;
    use crate::detector::{AnswerKind, Late, NS, Record};
    use crate::flow::FlowId;

    #[test]
    fn darkflow_csv_rows() {
        let flow = FlowId {
            src: "192.0.2.1".parse().unwrap(),
            sport: 40000,
            dst: "2001:db8::2".parse().unwrap(),
            dport: 23,
        };
        let t0 = 1_767_225_600 * NS;
        let r = Record {
            flow,
            first_syn: t0,
            last_packet: t0 + 3 * NS,
            syns_at_dark: 2,
            syns: 3,
            packets: 4,
            late: Some(Late {
                kind: AnswerKind::Rst,
                ts: t0 + 6 * NS,
            }),
            complete: true,
        };
        let mut csv = DarkflowCsv::new(Vec::new()).unwrap();
        csv.write(&r).unwrap();
        csv.write(&Record {
            late: None,
            complete: false,
            syns: 1,
            ..r
        })
        .unwrap();
        assert_eq!(csv.rows(), 2);
        let out = String::from_utf8(csv.finish().unwrap()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[0],
            "first_syn,src,sport,dst,dport,syns,retransmissions,packets,last_packet,\
             late_answer,late_kind,late_at,complete"
        );
        assert_eq!(
            lines[1],
            "2026-01-01T00:00:00.000000000Z,192.0.2.1,40000,2001:db8::2,23,3,2,4,\
             2026-01-01T00:00:03.000000000Z,true,rst,2026-01-01T00:00:06.000000000Z,true"
        );
        assert_eq!(
            lines[2],
            "2026-01-01T00:00:00.000000000Z,192.0.2.1,40000,2001:db8::2,23,1,0,4,\
             2026-01-01T00:00:03.000000000Z,false,,,false"
        );
    }
}
