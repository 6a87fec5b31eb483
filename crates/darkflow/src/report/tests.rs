//! The whole report: every file written, the page's content, its escaping and its bounds.

use std::fs;
use std::net::IpAddr;
use std::path::Path;

use super::{DATA_FILES, Meta, render_html, write_report};
use crate::detector::{Counters, NS};
use crate::summary::{AddrStat, DELAY_EDGES_NS, Interval, PortStat, Report};

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

fn addr(a: &str, darkflows: u64, syns: u64) -> AddrStat {
    AddrStat {
        addr: ip(a),
        darkflows,
        syns,
    }
}

fn tiny() -> Report {
    let t0 = 1_767_225_600 * NS;
    Report {
        counters: Counters {
            segments: 40,
            syns: 30,
            queued: 20,
            retransmissions: 10,
            answered_synack: 8,
            answered_rst: 2,
            darkflows: 10,
            late_answers: 1,
            unsolicited: 3,
            ..Counters::default()
        },
        span: Some((t0, t0 + 25 * NS)),
        ports: vec![
            PortStat {
                port: 23,
                darkflows: 6,
                syns: 12,
                unique_sources: 4,
            },
            PortStat {
                port: 445,
                darkflows: 4,
                syns: 8,
                unique_sources: 2,
            },
        ],
        sources: vec![
            addr("192.0.2.1", 5, 10),
            addr("192.0.2.2", 3, 6),
            addr("2001:db8::1", 2, 4),
        ],
        destinations: vec![addr("198.51.100.7", 10, 20)],
        intervals: vec![
            Interval {
                start: t0,
                adds: 12,
                deletes: 6,
                ..Interval::default()
            },
            Interval {
                start: t0 + 10 * NS,
                adds: 8,
                forwards: 7,
                deletes: 4,
                late: 1,
                untracked: 0,
            },
            Interval {
                start: t0 + 20 * NS,
                forwards: 3,
                ..Interval::default()
            },
        ],
        answer_delays: vec![1, 2, 3, 0, 4, 0, 0],
        unsolicited: vec![addr("203.0.113.9", 0, 3)],
        dropped_keys: 0,
        interval_ns: 10 * NS,
    }
}

fn empty() -> Report {
    Report {
        counters: Counters::default(),
        span: None,
        ports: vec![],
        sources: vec![],
        destinations: vec![],
        intervals: vec![],
        answer_delays: vec![0; DELAY_EDGES_NS.len() + 1],
        unsolicited: vec![],
        dropped_keys: 0,
        interval_ns: 10 * NS,
    }
}

fn meta(title: &str) -> Meta {
    Meta {
        title: title.into(),
        inputs: vec!["a.pcap".into(), "<img src=x onerror=alert(1)>.pcap".into()],
        timeout_ns: 5 * NS,
        generated_by: "ashiato test".into(),
    }
}

/// No NaN or infinite number made it into a coordinate.
fn assert_finite(s: &str) {
    for bad in ["NaN", "\"inf", "\"-inf", "inf\"", "inf,", ",inf", ",-inf"] {
        assert!(!s.contains(bad), "{bad} in output");
    }
}

fn lines(p: &Path) -> usize {
    fs::read_to_string(p).unwrap().lines().count()
}

#[test]
fn hostile_strings_are_escaped() {
    let html = render_html(&tiny(), &meta("<script>alert('x')</script> & co"));
    assert!(!html.contains("<script"));
    assert!(!html.contains("<img"));
    // `'` needs no escape in text or in double-quoted attributes, which is all the page has.
    assert!(html.contains("&lt;script&gt;alert('x')&lt;/script&gt; &amp; co"));
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;.pcap"));
}

/// A capture file named like markup, as title and input, is text in `index.html` wherever
/// it appears (the page title, the heading, the inputs), and never markup.
#[test]
fn markup_in_a_file_name_is_escaped_in_index_html() {
    let name = "<script>alert(1)</script>.pcap";
    let m = Meta {
        title: format!("DarkFlow report for {name}"),
        inputs: vec![name.into(), "\"quoted\" & <b>bold</b>.pcap".into()],
        timeout_ns: 5 * NS,
        generated_by: "ashiato <test>".into(),
    };
    let dir = tempfile::tempdir().unwrap();
    write_report(dir.path(), &tiny(), &m).unwrap();
    let html = fs::read_to_string(dir.path().join("index.html")).unwrap();
    for raw in [name, "<script", "</script>", "<b>", "\"quoted\"", "<test>"] {
        assert!(!html.contains(raw), "{raw} unescaped in the page");
    }
    let escaped = "&lt;script&gt;alert(1)&lt;/script&gt;.pcap";
    assert!(html.contains(&format!("<title>DarkFlow report for {escaped}</title>")));
    assert!(html.contains(&format!("<h1>DarkFlow report for {escaped}</h1>")));
    assert!(html.contains(&format!("<code>{escaped}</code>")));
    assert!(html.contains("<code>&quot;quoted&quot; &amp; &lt;b&gt;bold&lt;/b&gt;.pcap</code>"));
    assert!(html.contains("ashiato &lt;test&gt;"));
}

#[test]
fn page_is_self_contained() {
    let mut m = meta("t");
    m.inputs = vec!["a.pcap".into()];
    let html = render_html(&tiny(), &m);
    for bad in ["<script", "http://", "https://", "src=", "<link", "@import"] {
        let hits: Vec<_> = html
            .match_indices(bad)
            .filter(|(i, _)| !html[*i..].starts_with("http://www.w3.org/2000/svg"))
            .collect();
        assert!(hits.is_empty(), "{bad} in page");
    }
}

#[test]
fn tiny_report_renders_every_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let r = tiny();
    let paths = write_report(&out, &r, &meta("tiny")).unwrap();
    let mut names: Vec<_> = paths
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_owned())
        .collect();
    names.sort();
    let mut want: Vec<String> = DATA_FILES.iter().map(|s| s.to_string()).collect();
    want.push("index.html".into());
    want.push("darkflows.csv".into());
    want.sort();
    assert_eq!(names, want);
    for p in &paths {
        assert!(
            fs::metadata(p).unwrap().len() > 0,
            "{} is empty",
            p.display()
        );
    }

    let html = fs::read_to_string(out.join("index.html")).unwrap();
    // Port bars, two CDFs, the series, the delay bars.
    assert!(html.matches("<svg").count() >= 5);
    assert!(html.contains("<td class=\"n\">23</td>"));
    assert!(html.contains(">23</text>"));
    assert!(html.contains("Figure 8"));
    assert!(html.contains("Figure 10"));
    assert!(html.contains("Figure 11"));
    assert!(html.contains("192.0.2.1"));
    assert!(html.contains("203.0.113.9"));
    assert!(!html.contains("no data"));
    assert_finite(&html);
    // Two CDF lines, three series lines.
    assert_eq!(html.matches("<polyline points=").count(), 2 + 3);

    // CSV rows: one per datum plus the header.
    assert_eq!(lines(&out.join("ports.csv")), 1 + r.ports.len());
    assert_eq!(lines(&out.join("sources.csv")), 1 + r.sources.len());
    assert_eq!(
        lines(&out.join("destinations.csv")),
        1 + r.destinations.len()
    );
    assert_eq!(lines(&out.join("intervals.csv")), 1 + r.intervals.len());
    assert_eq!(
        lines(&out.join("answer_delays.csv")),
        1 + r.answer_delays.len()
    );
    assert_eq!(lines(&out.join("unsolicited.csv")), 1 + r.unsolicited.len());
    let delays = fs::read_to_string(out.join("answer_delays.csv")).unwrap();
    assert!(delays.starts_with(
        "lower_ns,upper_ns,answered\n0,1000000,1\n1000000,10000000,2\n10000000,30000000,3\n"
    ));
    assert!(delays.ends_with("\n3000000000,5000000000,0\n"), "{delays}");
    let intervals = fs::read_to_string(out.join("intervals.csv")).unwrap();
    assert!(intervals.contains("\n2026-01-01T00:00:10.000000000Z,8,7,4,1,0\n"));
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(json["ports"][0]["port"], 23);
    // One name per quantity, the same as in the CSV files.
    assert!(json["ports"][0]["unique_sources"].is_u64(), "{json}");
    assert!(json["ports"][0].get("sources").is_none());
    assert_eq!(json["sources_total"], r.sources.len());
    assert_eq!(json["answer_delays"][0]["lower_ns"], 0);
    assert_eq!(json["answer_delays"][0]["upper_ns"], 1_000_000);
    assert_eq!(json["answer_delays"][6]["upper_ns"], 5_000_000_000u64);
    if let Some(u) = json["unsolicited"].get(0) {
        assert!(u["answers"].is_u64() && u.get("syns").is_none(), "{u}");
    }
}

#[test]
fn empty_report_says_no_data() {
    let dir = tempfile::tempdir().unwrap();
    let paths = write_report(dir.path(), &empty(), &meta("")).unwrap();
    assert_eq!(paths.len(), 9);
    let html = fs::read_to_string(dir.path().join("index.html")).unwrap();
    assert!(html.contains("no data"));
    assert!(html.contains("no events"));
    assert!(html.contains("<title>DarkFlow report</title>"));
    assert_finite(&html);
    assert_eq!(lines(&dir.path().join("ports.csv")), 1);
    assert_eq!(lines(&dir.path().join("sources.csv")), 1);
}

#[test]
fn degenerate_data_has_no_nan() {
    let mut r = empty();
    // One interval with zero counts, one source with one SYN, one port.
    r.intervals = vec![Interval {
        start: 7 * NS,
        ..Interval::default()
    }];
    r.span = Some((7 * NS, 7 * NS));
    r.sources = vec![addr("192.0.2.1", 1, 1)];
    r.destinations = vec![addr("192.0.2.9", 1, 0)];
    r.ports = vec![PortStat {
        port: 80,
        darkflows: 1,
        syns: 1,
        unique_sources: 1,
    }];
    r.interval_ns = 0;
    let html = render_html(&r, &meta("x"));
    assert_finite(&html);
    // Series and CDFs plot; only the answer delays have no data.
    assert_eq!(html.matches(">no data</text>").count(), 1);
}
