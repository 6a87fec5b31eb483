//! The JSON lines of `--json`, formatted by hand into a line buffer on the stack and written
//! to the caller's buffered writer in one piece. Nothing is allocated or kept per event, so
//! output costs a small constant per line and memory does not grow with the number of
//! events.
//!
//! Every value is a number, a boolean, `null`, a fixed word, an IP address or an RFC 3339
//! time: none can hold a character JSON escapes, so strings are copied as they are. Field
//! names and order are those the lines have always had: they were first built as
//! `serde_json` maps, which sort their keys, so fields are written in alphabetical order.
//! (Measured on the gateway-like benchmark capture: typed `#[derive(Serialize)]` structs
//! through `serde_json::to_writer` cost about 6,500 instructions a line, most of them in
//! string escaping; this costs about 3,600: 1,400 for the four times, 1,100 for the numbers,
//! 900 for the addresses.)

use std::io::{self, Write};
use std::net::IpAddr;

use ashiato_darkflow::{AnswerKind, CloseReason, Event, FlowId, Record};

use super::EventFilter;

/// Longest line: the fixed text of a `closed` line with a late answer is under 330 bytes,
/// plus two IPv6 addresses (39 bytes each), four times (30) and six numbers (20).
const LINE_MAX: usize = 1024;

/// One line being formatted.
struct Line {
    buf: [u8; LINE_MAX],
    len: usize,
}

impl Line {
    fn new() -> Self {
        Self {
            buf: [0; LINE_MAX],
            len: 0,
        }
    }

    fn raw(&mut self, s: &[u8]) {
        self.buf[self.len..self.len + s.len()].copy_from_slice(s);
        self.len += s.len();
    }

    fn uint(&mut self, mut v: u64) {
        let mut tmp = [0u8; 20];
        let mut i = tmp.len();
        loop {
            i -= 1;
            tmp[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.raw(&tmp[i..]);
    }

    /// `v` on exactly `width` digits (zero-padded, higher digits dropped).
    fn padded(&mut self, mut v: u64, width: usize) {
        for i in (self.len..self.len + width).rev() {
            self.buf[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
        self.len += width;
    }

    /// `"YYYY-MM-DDTHH:MM:SS.NNNNNNNNNZ"`, the text of `ashiato_wire::time::rfc3339`.
    fn time(&mut self, ns: u64) {
        const NS: u64 = 1_000_000_000;
        /// Julian day number of 1970-01-01.
        const UNIX_JULIAN_DAY: i32 = 2_440_588;
        let secs = ns / NS;
        // u64 ns span about 213,500 days, far inside both i32 and the `time` crate's range.
        let date = time::Date::from_julian_day(UNIX_JULIAN_DAY + (secs / 86_400) as i32)
            .unwrap_or(time::Date::MIN);
        let (y, m, d) = (
            date.year() as u64,
            u64::from(u8::from(date.month())),
            u64::from(date.day()),
        );
        let s = secs % 86_400;
        // u64 ns end in 2554: the year always has four digits.
        self.raw(b"\"");
        self.padded(y, 4);
        self.raw(b"-");
        self.padded(m, 2);
        self.raw(b"-");
        self.padded(d, 2);
        self.raw(b"T");
        self.padded(s / 3600, 2);
        self.raw(b":");
        self.padded(s / 60 % 60, 2);
        self.raw(b":");
        self.padded(s % 60, 2);
        self.raw(b".");
        self.padded(ns % NS, 9);
        self.raw(b"Z\"");
    }

    fn ip(&mut self, a: IpAddr) {
        self.raw(b"\"");
        match a {
            IpAddr::V4(v4) => {
                for (i, o) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        self.raw(b".");
                    }
                    self.uint(u64::from(o));
                }
            }
            IpAddr::V6(v6) => {
                // The standard (RFC 5952) text; it always fits.
                let mut rest = &mut self.buf[self.len..];
                let before = rest.len();
                let _ = write!(rest, "{v6}");
                self.len += before - rest.len();
            }
        }
        self.raw(b"\"");
    }

    fn answer(&mut self, k: AnswerKind) {
        self.raw(match k {
            AnswerKind::SynAck => b"\"syn_ack\"",
            AnswerKind::Rst => b"\"rst\"",
        });
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

fn reason(r: CloseReason) -> &'static [u8] {
    match r {
        CloseReason::Expired => b"\"expired\"",
        CloseReason::Evicted => b"\"evicted\"",
        CloseReason::End => b"\"end\"",
    }
}

/// darkflow, late_answer and closed lines.
fn record_line(
    l: &mut Line,
    event: &str,
    ts: u64,
    r: &Record,
    why: Option<CloseReason>,
    digest: Option<u128>,
) {
    l.raw(b"{\"complete\":");
    l.raw(if r.complete { b"true" } else { b"false" });
    if let Some(d) = digest {
        l.raw(b",\"digest\":\"");
        l.raw(format!("{d:032x}").as_bytes());
        l.raw(b"\"");
    }
    l.raw(b",\"dport\":");
    l.uint(u64::from(r.flow.dport));
    l.raw(b",\"dst\":");
    l.ip(r.flow.dst);
    l.raw(b",\"event\":\"");
    l.raw(event.as_bytes());
    l.raw(b"\",\"first_syn\":");
    l.time(r.first_syn);
    l.raw(b",\"last_packet\":");
    l.time(r.last_packet);
    l.raw(b",\"late_answer\":");
    match r.late {
        Some(late) => {
            l.raw(b"{\"after_ns\":");
            l.uint(late.ts.saturating_sub(r.first_syn));
            l.raw(b",\"kind\":");
            l.answer(late.kind);
            l.raw(b",\"time\":");
            l.time(late.ts);
            l.raw(b"}");
        }
        None => l.raw(b"null"),
    }
    l.raw(b",\"packets\":");
    l.uint(u64::from(r.packets));
    if let Some(why) = why {
        l.raw(b",\"reason\":");
        l.raw(reason(why));
    }
    l.raw(b",\"retransmissions\":");
    l.uint(u64::from(r.syns.saturating_sub(1)));
    l.raw(b",\"sport\":");
    l.uint(u64::from(r.flow.sport));
    l.raw(b",\"src\":");
    l.ip(r.flow.src);
    l.raw(b",\"syns\":");
    l.uint(u64::from(r.syns));
    l.raw(b",\"time\":");
    l.time(ts);
    l.raw(b",\"ts_ns\":");
    l.uint(ts);
    l.raw(b"}\n");
}

/// untracked and unsolicited lines.
fn flow_line(l: &mut Line, event: &str, ts: u64, f: &FlowId, answer: Option<AnswerKind>) {
    l.raw(b"{\"answer\":");
    match answer {
        Some(k) => l.answer(k),
        None => l.raw(b"null"),
    }
    l.raw(b",\"dport\":");
    l.uint(u64::from(f.dport));
    l.raw(b",\"dst\":");
    l.ip(f.dst);
    l.raw(b",\"event\":\"");
    l.raw(event.as_bytes());
    l.raw(b"\",\"sport\":");
    l.uint(u64::from(f.sport));
    l.raw(b",\"src\":");
    l.ip(f.src);
    l.raw(b",\"time\":");
    l.time(ts);
    l.raw(b",\"ts_ns\":");
    l.uint(ts);
    l.raw(b"}\n");
}

/// Writes the JSON line of `e` (newline included) if `f` selects it; returns whether it did.
///
/// `digest` is the digest of a DarkFlow's first SYN (`darkflow` lines only), when known.
pub fn write_event(
    out: &mut impl Write,
    e: &Event,
    f: EventFilter,
    digest: Option<u128>,
) -> io::Result<bool> {
    let selected = match e {
        Event::Dark { .. } => f.dark,
        Event::LateAnswer { .. } => f.late,
        Event::Closed { .. } => f.closed,
        Event::Untracked { .. } => f.untracked,
        Event::Unsolicited { .. } => f.unsolicited,
        Event::Queued { .. } | Event::Answered { .. } => false,
    };
    if !selected {
        return Ok(false);
    }
    let mut l = Line::new();
    match *e {
        Event::Dark { ts, ref record } => record_line(&mut l, "darkflow", ts, record, None, digest),
        Event::LateAnswer { ts, ref record } => {
            record_line(&mut l, "late_answer", ts, record, None, None)
        }
        Event::Closed {
            ts,
            ref record,
            reason,
        } => record_line(&mut l, "closed", ts, record, Some(reason), None),
        Event::Untracked { ts, ref flow } => flow_line(&mut l, "untracked", ts, flow, None),
        Event::Unsolicited { ts, ref flow, kind } => {
            flow_line(&mut l, "unsolicited", ts, flow, Some(kind))
        }
        Event::Queued { .. } | Event::Answered { .. } => return Ok(false),
    }
    out.write_all(l.bytes())?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ashiato_darkflow::detector::Late;
    use ashiato_wire::time::rfc3339;

    #[test]
    fn time_is_rfc3339() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for ns in [
            0,
            1,
            999_999_999,
            951_782_400_000_000_000,
            1_767_225_605_000_000_007,
        ]
        .into_iter()
        .chain((0..10_000).map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        })) {
            let mut l = Line::new();
            l.time(ns);
            assert_eq!(l.bytes(), format!("\"{}\"", rfc3339(ns)).as_bytes());
        }
        let mut l = Line::new();
        l.time(u64::MAX);
        assert_eq!(l.bytes(), format!("\"{}\"", rfc3339(u64::MAX)).as_bytes());
    }

    /// The lines are those the earlier `serde_json::Value` maps printed, byte for byte.
    #[test]
    fn lines_keep_their_bytes() {
        let record = Record {
            flow: FlowId {
                src: "2001:db8::1".parse().unwrap(),
                sport: 40000,
                dst: "2001:db8::2".parse().unwrap(),
                dport: 22,
            },
            first_syn: 1_767_225_600_000_000_000,
            last_packet: 1_767_225_603_000_000_000,
            syns_at_dark: 2,
            syns: 3,
            packets: 4,
            late: Some(Late {
                kind: AnswerKind::SynAck,
                ts: 1_767_225_607_500_000_000,
            }),
            complete: true,
        };
        let all = EventFilter::new(&[
            crate::args::EventKind::Darkflow,
            crate::args::EventKind::Late,
            crate::args::EventKind::Closed,
            crate::args::EventKind::Untracked,
            crate::args::EventKind::Unsolicited,
        ]);
        let ts = 1_767_225_665_000_000_000;
        let text = |e: Event| {
            let mut v = Vec::new();
            assert!(write_event(&mut v, &e, all, None).unwrap());
            String::from_utf8(v).unwrap()
        };
        assert_eq!(
            text(Event::Closed {
                ts,
                record,
                reason: CloseReason::Expired
            }),
            concat!(
                r#"{"complete":true,"dport":22,"dst":"2001:db8::2","event":"closed","#,
                r#""first_syn":"2026-01-01T00:00:00.000000000Z","#,
                r#""last_packet":"2026-01-01T00:00:03.000000000Z","late_answer":{"after_ns":7500000000,"#,
                r#""kind":"syn_ack","time":"2026-01-01T00:00:07.500000000Z"},"packets":4,"reason":"expired","#,
                r#""retransmissions":2,"sport":40000,"src":"2001:db8::1","syns":3,"#,
                r#""time":"2026-01-01T00:01:05.000000000Z","ts_ns":1767225665000000000}"#,
                "\n"
            )
        );
        let dark = text(Event::Dark {
            ts,
            record: Record {
                late: None,
                ..record
            },
        });
        assert!(dark.contains(r#""event":"darkflow","#), "{dark}");
        assert!(dark.contains(r#""late_answer":null,"#), "{dark}");
        assert!(!dark.contains("reason"), "{dark}");
        assert_eq!(
            text(Event::Unsolicited {
                ts,
                flow: FlowId {
                    src: "10.0.0.1".parse().unwrap(),
                    sport: 1,
                    dst: "192.0.2.1".parse().unwrap(),
                    dport: 80
                },
                kind: AnswerKind::Rst
            }),
            concat!(
                r#"{"answer":"rst","dport":80,"dst":"192.0.2.1","event":"unsolicited","sport":1,"#,
                r#""src":"10.0.0.1","time":"2026-01-01T00:01:05.000000000Z","ts_ns":1767225665000000000}"#,
                "\n"
            )
        );
        let quiet = EventFilter::new(&[]);
        assert!(!write_event(&mut Vec::new(), &Event::Queued { ts }, all, None).unwrap());
        assert!(!write_event(&mut Vec::new(), &Event::Dark { ts, record }, quiet, None).unwrap());
    }

    /// The longest line there can be fits the buffer and is valid JSON.
    #[test]
    fn longest_line_fits() {
        let wide: IpAddr = "1111:2222:3333:4444:5555:6666:7777:8888".parse().unwrap();
        let record = Record {
            flow: FlowId {
                src: wide,
                sport: u16::MAX,
                dst: wide,
                dport: u16::MAX,
            },
            first_syn: 0,
            last_packet: u64::MAX,
            syns_at_dark: u32::MAX,
            syns: u32::MAX,
            packets: u32::MAX,
            late: Some(Late {
                kind: AnswerKind::SynAck,
                ts: u64::MAX,
            }),
            complete: false,
        };
        let mut v = Vec::new();
        let e = Event::Closed {
            ts: u64::MAX,
            record,
            reason: CloseReason::Evicted,
        };
        let f = EventFilter::new(&[crate::args::EventKind::Closed]);
        assert!(write_event(&mut v, &e, f, None).unwrap());
        assert!(v.len() < LINE_MAX, "{}", v.len());
        let j: serde_json::Value = serde_json::from_slice(&v).unwrap();
        assert_eq!(j["ts_ns"], u64::MAX);
        assert_eq!(j["src"], wide.to_string());
    }
}
