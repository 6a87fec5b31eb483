//! The detector's results as files: CSV tables, the [`Report`] as JSON, and one
//! self-contained HTML page with SVG plots (the DarkFlow paper's Table 2 and Figures 8, 10
//! and 11).
//!
//! Pure rendering plus file writing: every plot is a small function from numbers to an SVG
//! string, and the page is a function from a [`Report`] and its [`Meta`] to HTML. The page
//! loads nothing: inline CSS, inline SVG, no JavaScript (a Content-Security-Policy says so),
//! and every string from outside (titles, input names) is escaped.
//!
//! Times are written as RFC 3339 UTC with nanoseconds ([`rfc3339`]).

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::detector::{AnswerKind, NS, Record};
use crate::summary::{AddrStat, DELAY_EDGES_NS, Interval, PortStat, Report, delay_buckets};

/// Rows in each "top" table and bars in the port chart.
const TOP: usize = 20;
/// Most x buckets of a CDF plot (each keeps its last point; a step line has twice as many
/// vertices).
const CDF_BUCKETS: usize = 150;
/// Most points of a series plot; longer series are downsampled to the maximum per bucket.
const SERIES_POINTS: usize = 150;
/// Width of every plot (SVG user units; the page scales them down on narrow screens).
const PLOT_W: f64 = 640.0;

// Series colours (adds, forwards, deletes) and the bar colour.
const COLOURS: [&str; 3] = ["#1f77b4", "#d62728", "#2ca02c"];
const BAR: &str = "#4c72b0";
const GRID: &str = "#e0e0e0";
const AXIS: &str = "#555";

/// What the report says about its run, besides the numbers.
#[derive(Clone, Debug, Default)]
pub struct Meta {
    /// Page title.
    pub title: String,
    /// Inputs (capture files, interfaces), as the user named them.
    pub inputs: Vec<String>,
    /// T: how long a SYN waited for an answer, in ns.
    pub timeout_ns: u64,
    /// Program and version that wrote the report.
    pub generated_by: String,
}

// ---------------------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------------------

pub use ashiato_wire::time::rfc3339;

/// A duration for people: `5 s`, `250 ms`, `1.5 s`, `12 min 30 s`, `2 h 5 min`.
fn fmt_duration(ns: u64) -> String {
    let s = ns / NS;
    if s >= 86_400 {
        format!("{} d {} h", s / 86_400, s % 86_400 / 3600)
    } else if s >= 3600 {
        format!("{} h {} min", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{} min {} s", s / 60, s % 60)
    } else if ns >= NS {
        format!("{} s", trim_decimals(ns as f64 / 1e9))
    } else if ns >= 1_000_000 {
        format!("{} ms", trim_decimals(ns as f64 / 1e6))
    } else if ns >= 1000 {
        format!("{} µs", trim_decimals(ns as f64 / 1e3))
    } else {
        format!("{ns} ns")
    }
}

/// `x` with at most three decimals and no trailing zeros.
fn trim_decimals(x: f64) -> String {
    let s = format!("{x:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

// ---------------------------------------------------------------------------------------
// Numbers and text
// ---------------------------------------------------------------------------------------

/// `384803` as `384,803`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Short axis label: `950`, `2.5k`, `10M`.
fn compact(n: u64) -> String {
    const UNITS: [(u64, &str); 6] = [
        (1_000_000_000_000_000_000, "E"),
        (1_000_000_000_000_000, "P"),
        (1_000_000_000_000, "T"),
        (1_000_000_000, "G"),
        (1_000_000, "M"),
        (1_000, "k"),
    ];
    for (div, unit) in UNITS {
        if n >= div {
            let v = n as f64 / div as f64;
            let s = format!("{v:.1}");
            return format!("{}{unit}", s.trim_end_matches(".0"));
        }
    }
    n.to_string()
}

/// `part` as a percentage of `whole`, or a dash when `whole` is zero.
fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        "–".to_owned()
    } else {
        format!("{:.1} %", 100.0 * part as f64 / whole as f64)
    }
}

/// `word` or `words`.
fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 { one } else { many }.to_owned()
}

/// Escapes text for HTML and SVG, in element content and in quoted attributes alike.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An address for a CSV cell (empty when unknown).
fn addr_csv(a: Option<IpAddr>) -> String {
    a.map(|a| a.to_string()).unwrap_or_default()
}

/// An address for the page.
fn addr_html(a: Option<IpAddr>) -> String {
    a.map_or_else(|| "(unknown)".to_owned(), |a| esc(&a.to_string()))
}

/// Label of answer-delay bucket `i`: its upper edge, or T for the last one.
fn delay_label(i: usize, timeout_ns: u64) -> String {
    match DELAY_EDGES_NS.get(i) {
        Some(&edge) => format!("≤ {}", fmt_duration(edge)),
        None => format!("≤ T ({})", fmt_duration(timeout_ns)),
    }
}

// ---------------------------------------------------------------------------------------
// The DarkFlow CSV
// ---------------------------------------------------------------------------------------

/// Streams DarkFlow [`Record`]s as CSV, one row per flow.
///
/// Columns: `first_syn,src,sport,dst,dport,syns,retransmissions,packets,last_packet,`
/// `late_answer,late_kind,late_at,complete`; times are [`rfc3339`], `late_kind` is
/// `syn_ack` or `rst`, and the late columns are empty (`late_answer` false) when no answer
/// came. The writer does not buffer: hand it a [`BufWriter`] for files.
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

// ---------------------------------------------------------------------------------------
// The report files
// ---------------------------------------------------------------------------------------

/// Writes the report into `dir` (created if needed) and returns the paths written:
/// `ports.csv`, `sources.csv`, `destinations.csv`, `intervals.csv`, `answer_delays.csv`,
/// `unsolicited.csv`, `summary.json` and `index.html` (see [`render_html`]). The page links
/// `darkflows.csv`, the per-flow rows streamed by `ReportDir` of `ashiato-darkflow-shells`; when
/// none is in `dir` one with the header only is written (and returned), so a report always
/// has the same files.
pub fn write_report(dir: &Path, report: &Report, meta: &Meta) -> io::Result<Vec<PathBuf>> {
    fs::create_dir_all(dir)?;
    let mut paths = Vec::new();
    let flows = dir.join("darkflows.csv");
    if !flows.is_file() {
        DarkflowCsv::new(File::create(&flows)?)?.finish()?;
        paths.push(flows);
    }
    emit(report, meta, true, &mut |name, body| {
        let path = dir.join(name);
        let mut w = BufWriter::new(File::create(&path)?);
        body(&mut w)?;
        w.flush()?;
        paths.push(path);
        Ok(())
    })?;
    Ok(paths)
}

/// The files [`write_report`] writes, as (name, contents) in memory: for tests and fuzzing.
pub fn render_in_memory(report: &Report, meta: &Meta) -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut files = Vec::new();
    emit(report, meta, false, &mut |name, body| {
        let mut w = Vec::new();
        body(&mut w)?;
        files.push((name.to_owned(), w));
        Ok(())
    })?;
    Ok(files)
}

/// Writes one named report file through the caller's writer.
type Body<'a> = &'a dyn Fn(&mut dyn Write) -> io::Result<()>;

/// Every report file, each handed to `file` by name with the function that writes it.
fn emit(
    report: &Report,
    meta: &Meta,
    with_darkflows: bool,
    file: &mut dyn FnMut(&str, Body<'_>) -> io::Result<()>,
) -> io::Result<()> {
    file("ports.csv", &|w| {
        writeln!(w, "port,darkflows,syns,unique_sources")?;
        for p in &report.ports {
            writeln!(
                w,
                "{},{},{},{}",
                p.port, p.darkflows, p.syns, p.unique_sources
            )?;
        }
        Ok(())
    })?;
    for (name, rows) in [
        ("sources.csv", &report.sources),
        ("destinations.csv", &report.destinations),
    ] {
        file(name, &|w| {
            writeln!(w, "addr,darkflows,syns")?;
            for a in rows {
                writeln!(w, "{},{},{}", addr_csv(a.addr), a.darkflows, a.syns)?;
            }
            Ok(())
        })?;
    }
    file("intervals.csv", &|w| {
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
    })?;
    file("answer_delays.csv", &|w| {
        // Delay d in lower_ns < d <= upper_ns (the first bucket includes 0); the last ends at T.
        writeln!(w, "lower_ns,upper_ns,answered")?;
        for b in delay_buckets(&report.answer_delays, meta.timeout_ns) {
            writeln!(w, "{},{},{}", b.lower_ns, b.upper_ns, b.answered)?;
        }
        Ok(())
    })?;
    file("unsolicited.csv", &|w| {
        writeln!(w, "addr,answers")?;
        for a in &report.unsolicited {
            writeln!(w, "{},{}", addr_csv(a.addr), a.syns)?;
        }
        Ok(())
    })?;
    file("summary.json", &|w| {
        serde_json::to_writer_pretty(&mut *w, &report.json(meta.timeout_ns))?;
        writeln!(w)
    })?;
    let mut data: Vec<&str> = Vec::new();
    if with_darkflows {
        data.push("darkflows.csv");
    }
    data.extend(DATA_FILES);
    let html = render_page(report, meta, &data);
    file("index.html", &|w| w.write_all(html.as_bytes()))
}

/// The data files [`write_report`] writes next to the page.
const DATA_FILES: [&str; 7] = [
    "ports.csv",
    "sources.csv",
    "destinations.csv",
    "intervals.csv",
    "answer_delays.csv",
    "unsolicited.csv",
    "summary.json",
];

/// The report as one self-contained HTML page: run details, key figures, the top ports
/// (table and bar chart), the SYNs-per-source and per-destination CDFs, the delay-queue
/// series, the answer delays and the top source, destination and backscatter tables.
pub fn render_html(report: &Report, meta: &Meta) -> String {
    render_page(report, meta, &DATA_FILES)
}

const CSS: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;color:#222;max-width:980px;\
margin:2em auto;padding:0 1em;line-height:1.45}\
h1{margin-bottom:.2em}h2{margin-top:2em;border-bottom:1px solid #ccc;padding-bottom:.2em}\
.sub{color:#666;margin-top:0}\
table{border-collapse:collapse;margin:.6em 0}\
th,td{padding:.2em .7em;border-bottom:1px solid #e4e4e4;text-align:left;vertical-align:top}\
th{background:#f4f4f4}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}\
td.a{font-family:ui-monospace,SFMono-Regular,Menlo,monospace}\
figure{margin:1em 0}figcaption{color:#444;font-size:.92em;margin-top:.3em}\
svg{max-width:100%;height:auto}.warn{background:#fff4e0;border-left:4px solid #e8a33d;\
padding:.5em .8em}.muted{color:#777}";

fn render_page(report: &Report, meta: &Meta, data_files: &[&str]) -> String {
    let c = &report.counters;
    let title = if meta.title.is_empty() {
        "DarkFlow report"
    } else {
        meta.title.as_str()
    };
    let mut h = String::with_capacity(64 * 1024);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{t}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<h1>{t}</h1>\n\
         <p class=\"sub\">TCP flows whose SYN got neither a SYN/ACK nor an RST within \
         T = {tt}.</p>\n",
        t = esc(title),
        tt = esc(&fmt_duration(meta.timeout_ns)),
    );

    // Run details.
    h.push_str("<h2>Run</h2>\n<table>\n");
    let inputs = if meta.inputs.is_empty() {
        "<span class=\"muted\">none given</span>".to_owned()
    } else {
        meta.inputs
            .iter()
            .map(|i| format!("<code>{}</code>", esc(i)))
            .collect::<Vec<_>>()
            .join("<br>")
    };
    let span = match report.span {
        Some((a, b)) => format!(
            "{} – {} ({})",
            rfc3339(a),
            rfc3339(b),
            fmt_duration(b.saturating_sub(a))
        ),
        None => "<span class=\"muted\">no events</span>".to_owned(),
    };
    let rows = [
        ("Inputs", inputs),
        ("T (answer timeout)", esc(&fmt_duration(meta.timeout_ns))),
        ("Time span (UTC)", span),
        ("Interval", esc(&fmt_duration(report.interval_ns))),
        ("Generated by", esc(&meta.generated_by)),
    ];
    for (k, v) in rows {
        let _ = writeln!(h, "<tr><th>{k}</th><td>{v}</td></tr>");
    }
    h.push_str("</table>\n");
    if report.dropped_keys > 0 {
        let _ = writeln!(
            h,
            "<p class=\"warn\">{} distinct keys (addresses or port/source pairs) were not kept \
             because a table was full: per-address tables, unique-source counts and the CDFs \
             below are incomplete.</p>",
            thousands(report.dropped_keys)
        );
    }

    // Key figures.
    h.push_str(
        "<h2>Key figures</h2>\n<table>\n<tr><th>Figure</th><th class=\"n\">Count</th>\
         <th class=\"n\">Share</th><th>Meaning</th></tr>\n",
    );
    let figures: [(&str, u64, String, &str); 15] = [
        (
            "TCP segments",
            c.segments,
            String::new(),
            "all TCP segments seen",
        ),
        (
            "SYN packets",
            c.syns,
            String::new(),
            "retransmissions included",
        ),
        (
            "SYN retransmissions",
            c.retransmissions,
            pct(c.retransmissions, c.syns),
            "of SYN packets",
        ),
        (
            "SYNs queued",
            c.queued,
            pct(c.queued, c.syns),
            "new flows, of SYN packets",
        ),
        (
            "Answered by SYN/ACK",
            c.answered_synack,
            pct(c.answered_synack, c.queued),
            "within T, of queued",
        ),
        (
            "Answered by RST",
            c.answered_rst,
            pct(c.answered_rst, c.queued),
            "within T, of queued",
        ),
        (
            "DarkFlows",
            c.darkflows,
            pct(c.darkflows, c.queued),
            "no answer within T, of queued",
        ),
        (
            "Incomplete",
            c.incomplete,
            pct(c.incomplete, c.darkflows),
            "input ended less than T after the SYN, of DarkFlows",
        ),
        (
            "Late answers",
            c.late_answers,
            pct(c.late_answers, c.darkflows),
            "answered after T, of DarkFlows",
        ),
        (
            "Expired",
            c.expired,
            pct(c.expired, c.darkflows),
            "left the table after their idle time, of DarkFlows",
        ),
        (
            "Evicted",
            c.evicted,
            pct(c.evicted, c.darkflows),
            "closed early, DarkFlow table full, of DarkFlows",
        ),
        (
            "Untracked",
            c.untracked,
            pct(c.untracked, c.syns),
            "delay queue full, of SYN packets",
        ),
        (
            "Unsolicited answers",
            c.unsolicited,
            String::new(),
            "SYN/ACKs and RSTs that answered no SYN (backscatter)",
        ),
        (
            "Out of order",
            c.out_of_order,
            pct(c.out_of_order, c.segments),
            "timestamp older than the clock, of segments",
        ),
        (
            "Peak pending",
            c.pending_peak,
            String::new(),
            "most SYNs waiting in the delay queue at once",
        ),
    ];
    for (name, n, share, meaning) in figures {
        let _ = writeln!(
            h,
            "<tr><td>{name}</td><td class=\"n\">{}</td><td class=\"n\">{share}</td>\
             <td>{meaning}</td></tr>",
            thousands(n)
        );
    }
    h.push_str("</table>\n");

    // Ports: table and bar chart.
    h.push_str("<h2>Top destination ports</h2>\n");
    let _ = writeln!(
        h,
        "<p>{} of {} {} with DarkFlows, most DarkFlows first (the DarkFlow paper's \
         Table&nbsp;2).</p>",
        report.ports.len().min(TOP),
        thousands(report.ports.len() as u64),
        plural(report.ports.len() as u64, "port", "ports"),
    );
    port_table(
        &mut h,
        &report.ports[..report.ports.len().min(TOP)],
        c.darkflows,
    );
    let bars: Vec<(String, u64)> = report
        .ports
        .iter()
        .take(TOP)
        .map(|p| (p.port.to_string(), p.darkflows))
        .collect();
    figure(
        &mut h,
        &bar_chart("DarkFlows per destination port", &bars),
        "DarkFlows per destination port (top 20).",
    );

    // CDFs.
    h.push_str("<h2>SYN packets per address</h2>\n");
    for (fig, stats, noun, nouns, verb) in [
        ("10", &report.sources, "source", "sources", "sent"),
        (
            "11",
            &report.destinations,
            "destination",
            "destinations",
            "received",
        ),
    ] {
        let values: Vec<u64> = stats.iter().map(|s| s.syns).collect();
        let svg = cdf_plot(
            &format!("CDF of SYN packets per {noun}"),
            &values,
            &format!("DarkFlow SYN packets per {noun} (log scale)"),
        );
        let caption = format!(
            "Figure {fig}: CDF of DarkFlow SYN packets per {noun}. {}",
            cdf_caption(&values, noun, nouns, verb)
        );
        figure(&mut h, &svg, &caption);
    }

    // Delay-queue series.
    h.push_str("<h2>Delay queue over time</h2>\n");
    let k = report.intervals.len().div_ceil(SERIES_POINTS).max(1);
    let mut caption = format!(
        "Figure 8: delay-queue adds (SYNs queued), forwards (became DarkFlows) and deletes \
         (answered in time) per {} interval",
        fmt_duration(report.interval_ns)
    );
    if k > 1 {
        let _ = write!(caption, "; each step is the largest of {k} intervals");
    }
    if let Some(first) = report.intervals.first() {
        let _ = write!(caption, "; time axis in UTC from {}", rfc3339(first.start));
    }
    caption.push('.');
    let late: u64 = report.intervals.iter().map(|i| i.late).sum();
    let untracked: u64 = report.intervals.iter().map(|i| i.untracked).sum();
    if late + untracked > 0 {
        let _ = write!(
            caption,
            " Not plotted: {} late answers and {} untracked SYNs (see intervals.csv).",
            thousands(late),
            thousands(untracked)
        );
    }
    figure(
        &mut h,
        &series_plot(
            "Delay-queue adds, forwards and deletes per interval",
            &report.intervals,
            report.interval_ns,
        ),
        &caption,
    );

    // Answer delays.
    h.push_str("<h2>Answer delays</h2>\n");
    let bars: Vec<(String, u64)> = report
        .answer_delays
        .iter()
        .enumerate()
        .map(|(i, &n)| (delay_label(i, meta.timeout_ns), n))
        .collect();
    let answered: u64 = report.answer_delays.iter().sum();
    figure(
        &mut h,
        &bar_chart("SYNs answered in time, by answer delay", &bars),
        &format!(
            "{} SYNs answered within T, by the time from the first SYN to the answer.",
            thousands(answered)
        ),
    );

    // Address tables.
    for (head, stats, what) in [
        ("Top sources", &report.sources, "sources"),
        ("Top destinations", &report.destinations, "destinations"),
    ] {
        let _ = writeln!(
            h,
            "<h2>{head}</h2>\n<p>{} of {} {what}, most DarkFlow SYN packets first.</p>",
            stats.len().min(TOP),
            thousands(stats.len() as u64)
        );
        addr_table(&mut h, &stats[..stats.len().min(TOP)], false);
    }
    let _ = writeln!(
        h,
        "<h2>Unsolicited answers (backscatter)</h2>\n<p>{} of {} addresses that sent \
         SYN/ACKs or RSTs answering no SYN seen, most first: typically victims of SYN floods \
         with spoofed sources.</p>",
        report.unsolicited.len().min(TOP),
        thousands(report.unsolicited.len() as u64)
    );
    addr_table(
        &mut h,
        &report.unsolicited[..report.unsolicited.len().min(TOP)],
        true,
    );

    // Data files.
    h.push_str("<h2>Data</h2>\n<ul>\n");
    for f in data_files {
        let _ = writeln!(h, "<li><a href=\"{f}\">{f}</a></li>", f = esc(f));
    }
    h.push_str("</ul>\n</body>\n</html>\n");
    h
}

/// Appends a figure with its caption.
fn figure(h: &mut String, svg: &str, caption: &str) {
    let _ = writeln!(
        h,
        "<figure>\n{}\n<figcaption>{}</figcaption>\n</figure>",
        svg.trim_end(),
        esc(caption)
    );
}

/// Appends the ports table (the paper's Table 2).
fn port_table(h: &mut String, ports: &[PortStat], darkflows: u64) {
    if ports.is_empty() {
        h.push_str("<p class=\"muted\">no data</p>\n");
        return;
    }
    h.push_str(
        "<table>\n<tr><th class=\"n\">#</th><th class=\"n\">Port</th>\
         <th class=\"n\">DarkFlows</th><th class=\"n\">Share</th>\
         <th class=\"n\">SYN packets</th><th class=\"n\">Unique sources</th></tr>\n",
    );
    for (i, p) in ports.iter().enumerate() {
        let _ = writeln!(
            h,
            "<tr><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            i + 1,
            p.port,
            thousands(p.darkflows),
            pct(p.darkflows, darkflows),
            thousands(p.syns),
            thousands(p.unique_sources)
        );
    }
    h.push_str("</table>\n");
}

/// Appends an address table; `answers` for the backscatter table (its count is in `syns`).
fn addr_table(h: &mut String, rows: &[AddrStat], answers: bool) {
    if rows.is_empty() {
        h.push_str("<p class=\"muted\">no data</p>\n");
        return;
    }
    h.push_str("<table>\n<tr><th class=\"n\">#</th><th>Address</th>");
    if answers {
        h.push_str("<th class=\"n\">Answers</th></tr>\n");
    } else {
        h.push_str("<th class=\"n\">DarkFlows</th><th class=\"n\">SYN packets</th></tr>\n");
    }
    for (i, a) in rows.iter().enumerate() {
        let _ = write!(
            h,
            "<tr><td class=\"n\">{}</td><td class=\"a\">{}</td>",
            i + 1,
            addr_html(a.addr)
        );
        if !answers {
            let _ = write!(h, "<td class=\"n\">{}</td>", thousands(a.darkflows));
        }
        let _ = writeln!(h, "<td class=\"n\">{}</td></tr>", thousands(a.syns));
    }
    h.push_str("</table>\n");
}

/// One sentence about a distribution of SYN counts, e.g. "98.0 % of 384,803 sources sent
/// ≤ 20 SYNs; median 1, maximum 5,012." The threshold is the smallest 1-2-5 value that at
/// least 90 % of the items stay at or below.
fn cdf_caption(values: &[u64], noun: &str, nouns: &str, verb: &str) -> String {
    if values.is_empty() {
        return format!("No {nouns}.");
    }
    let mut v = values.to_vec();
    v.sort_unstable();
    let n = v.len();
    let max = v[n - 1];
    let t = round_threshold(&v, max);
    // Say "≤ max" rather than a round number above every value.
    let t = t.min(max);
    let below = v.partition_point(|&x| x <= t) as u64;
    format!(
        "{} of {} {} {verb} ≤ {} {}; median {}, maximum {}.",
        pct(below, n as u64),
        thousands(n as u64),
        plural(n as u64, noun, nouns),
        thousands(t),
        plural(t, "SYN", "SYNs"),
        thousands(v[(n - 1) / 2]),
        thousands(max)
    )
}

/// The smallest 1-2-5 value that at least 90 % of the sorted `v` stay at or below (or
/// that reaches `max`).
fn round_threshold(v: &[u64], max: u64) -> u64 {
    let mut base: u128 = 1;
    loop {
        for f in [1, 2, 5] {
            let t = base * f;
            let below = v.partition_point(|&x| u128::from(x) <= t);
            if below * 10 >= v.len() * 9 || t >= u128::from(max) {
                return u64::try_from(t).unwrap_or(u64::MAX);
            }
        }
        base *= 10;
    }
}

// ---------------------------------------------------------------------------------------
// SVG
// ---------------------------------------------------------------------------------------

/// A coordinate with one decimal.
fn c(v: f64) -> String {
    debug_assert!(v.is_finite(), "non-finite SVG coordinate");
    format!("{v:.1}")
}

/// `a / b`, or 0 when `b` is 0.
fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

/// The smallest 1-2-5 step that covers `max` in at most `ticks` steps (at least 1).
fn nice_step(max: u64, ticks: u64) -> u64 {
    let raw = u128::from(max.div_ceil(ticks.max(1)).max(1));
    let mut base: u128 = 1;
    loop {
        for f in [1, 2, 5] {
            if base * f >= raw {
                return u64::try_from(base * f).unwrap_or(u64::MAX);
            }
        }
        base *= 10;
    }
}

/// The plot area inside an SVG of `w` × `h` with the given margins.
struct Frame {
    w: f64,
    h: f64,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
}

impl Frame {
    /// x of a fraction of the plot width.
    fn x(&self, f: f64) -> f64 {
        self.left + f.clamp(0.0, 1.0) * (self.w - self.left - self.right)
    }

    /// y of a fraction of the plot height (0 at the bottom).
    fn y(&self, f: f64) -> f64 {
        self.h - self.bottom - f.clamp(0.0, 1.0) * (self.h - self.top - self.bottom)
    }

    /// The opening tag, with its title.
    fn open(&self, title: &str) -> String {
        svg_open(self.w, self.h, title)
    }

    /// The plot area's left and bottom axis lines (drawn over the grid).
    fn axes(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "<path d=\"M{},{}V{}H{}\" fill=\"none\" stroke=\"{AXIS}\"/>",
            c(self.x(0.0)),
            c(self.y(1.0)),
            c(self.y(0.0)),
            c(self.x(1.0))
        );
    }
}

fn svg_open(w: f64, h: f64, title: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
         viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{t}\" font-family=\"sans-serif\" \
         font-size=\"11\">\n<title>{t}</title>\n",
        w = c(w),
        h = c(h),
        t = esc(title)
    )
}

/// A small box saying "no data", in place of a plot.
fn no_data(title: &str) -> String {
    let mut s = svg_open(PLOT_W, 60.0, title);
    let _ = write!(
        s,
        "<rect x=\"0.5\" y=\"0.5\" width=\"{}\" height=\"59\" fill=\"#fafafa\" \
         stroke=\"{GRID}\"/>\n<text x=\"{}\" y=\"34\" text-anchor=\"middle\" fill=\"#888\" \
         font-size=\"13\">no data</text>\n</svg>",
        c(PLOT_W - 1.0),
        c(PLOT_W / 2.0)
    );
    s
}

/// Horizontal bar chart of labelled counts, in the given order, values at the bar ends.
/// "no data" when every value is 0.
fn bar_chart(title: &str, bars: &[(String, u64)]) -> String {
    let max = bars.iter().map(|b| b.1).max().unwrap_or(0);
    if max == 0 {
        return no_data(title);
    }
    let row = 20.0;
    let longest = bars.iter().map(|b| b.0.chars().count()).max().unwrap_or(0);
    let f = Frame {
        w: PLOT_W,
        h: 12.0 + row * bars.len() as f64 + 26.0,
        left: (longest as f64 * 6.5 + 14.0).clamp(40.0, 220.0),
        right: 70.0,
        top: 12.0,
        bottom: 26.0,
    };
    let step = nice_step(max, 5);
    let top = max.div_ceil(step).saturating_mul(step);
    let mut s = f.open(title);
    let mut t = 0;
    while t <= top {
        let x = f.x(ratio(t as f64, top as f64));
        let _ = writeln!(
            s,
            "<line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\" stroke=\"{GRID}\"/>\
             <text x=\"{x}\" y=\"{}\" text-anchor=\"middle\" fill=\"{AXIS}\">{}</text>",
            c(f.y(1.0)),
            c(f.y(0.0) + 4.0),
            c(f.y(0.0) + 16.0),
            compact(t),
            x = c(x)
        );
        match t.checked_add(step) {
            Some(next) => t = next,
            None => break,
        }
    }
    f.axes(&mut s);
    for (i, (label, v)) in bars.iter().enumerate() {
        let y = f.top + row * i as f64;
        let w = f.x(ratio(*v as f64, top as f64)) - f.left;
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\
             <rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{BAR}\"/>\
             <text x=\"{}\" y=\"{}\" fill=\"{AXIS}\">{}</text>",
            c(f.left - 6.0),
            c(y + 14.0),
            esc(label),
            c(f.left),
            c(y + 3.0),
            c(w),
            c(row - 6.0),
            c(f.left + w + 4.0),
            c(y + 14.0),
            thousands(*v)
        );
    }
    s.push_str("</svg>");
    s
}

/// Number of decades of a log axis from 1 that reaches `max` (at least 1).
fn decades(max: u64) -> u32 {
    let mut d = 1;
    let mut p: u128 = 10;
    while p < u128::from(max) {
        p *= 10;
        d += 1;
    }
    d
}

/// Label of 10^k: `1`, `10`, `100`, `1k`, … .
fn decade_label(k: u32) -> String {
    const UNITS: [&str; 7] = ["", "k", "M", "G", "T", "P", "E"];
    let unit = UNITS.get((k / 3) as usize).copied().unwrap_or("?");
    format!("{}{unit}", 10u32.pow(k % 3))
}

/// Empirical CDF of `values` as a step line: log-scale x from 1 (values of 0 sit at 1),
/// y from 0 to 100 %. At most [`CDF_BUCKETS`] steps; "no data" when `values` is empty.
fn cdf_plot(title: &str, values: &[u64], x_label: &str) -> String {
    if values.is_empty() {
        return no_data(title);
    }
    let mut v = values.to_vec();
    v.sort_unstable();
    let n = v.len() as f64;
    let d = decades(v[v.len() - 1].max(1));
    let xpos = |x: u64| (x.max(1) as f64).log10() / f64::from(d);
    // (x, y) fractions of each distinct value, the last of each x bucket.
    let mut pts: Vec<(f64, f64)> = Vec::new();
    let mut last_bucket = usize::MAX;
    for (i, &x) in v.iter().enumerate() {
        if v.get(i + 1) == Some(&x) {
            continue;
        }
        let p = (xpos(x), (i + 1) as f64 / n);
        let bucket = ((p.0 * CDF_BUCKETS as f64) as usize).min(CDF_BUCKETS);
        match pts.last_mut() {
            Some(last) if bucket == last_bucket => *last = p,
            _ => pts.push(p),
        }
        last_bucket = bucket;
    }
    let f = Frame {
        w: PLOT_W,
        h: 300.0,
        left: 52.0,
        right: 20.0,
        top: 14.0,
        bottom: 42.0,
    };
    let mut s = f.open(title);
    // y grid: 0–100 %.
    for k in 0..=5 {
        let y = c(f.y(f64::from(k) / 5.0));
        let _ = writeln!(
            s,
            "<line x1=\"{}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"{GRID}\"/>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"{AXIS}\">{} %</text>",
            c(f.x(0.0)),
            c(f.x(1.0)),
            c(f.x(0.0) - 6.0),
            c(f.y(f64::from(k) / 5.0) + 4.0),
            k * 20
        );
    }
    // x grid: decades, labelled at most ten times.
    let every = d.div_ceil(10);
    for k in 0..=d {
        let x = c(f.x(f64::from(k) / f64::from(d)));
        let _ = write!(
            s,
            "<line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\" stroke=\"{GRID}\"/>",
            c(f.y(1.0)),
            c(f.y(0.0) + 4.0)
        );
        if k.is_multiple_of(every) {
            let _ = write!(
                s,
                "<text x=\"{x}\" y=\"{}\" text-anchor=\"middle\" fill=\"{AXIS}\">{}</text>",
                c(f.y(0.0) + 16.0),
                decade_label(k)
            );
        }
        s.push('\n');
    }
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"{AXIS}\">{}</text>",
        c(f.x(0.5)),
        c(f.h - 6.0),
        esc(x_label)
    );
    f.axes(&mut s);
    // The step line.
    let mut line = vec![(0.0, 0.0)];
    let mut prev_y = 0.0;
    for &(x, y) in &pts {
        line.push((x, prev_y));
        line.push((x, y));
        prev_y = y;
    }
    line.push((1.0, prev_y));
    let points: Vec<String> = line
        .iter()
        .map(|&(x, y)| format!("{},{}", c(f.x(x)), c(f.y(y))))
        .collect();
    let _ = writeln!(
        s,
        "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.8\"/>\n</svg>",
        points.join(" "),
        COLOURS[0]
    );
    s
}

/// Tick step for a time axis spanning `span` ns: about six ticks at round times.
fn time_step(span: u64) -> u64 {
    const MS: u64 = 1_000_000;
    const STEPS: [u64; 30] = [
        MS,
        2 * MS,
        5 * MS,
        10 * MS,
        20 * MS,
        50 * MS,
        100 * MS,
        200 * MS,
        500 * MS,
        NS,
        2 * NS,
        5 * NS,
        10 * NS,
        15 * NS,
        30 * NS,
        60 * NS,
        120 * NS,
        300 * NS,
        600 * NS,
        900 * NS,
        1800 * NS,
        3600 * NS,
        7200 * NS,
        3 * 3600 * NS,
        6 * 3600 * NS,
        12 * 3600 * NS,
        86_400 * NS,
        2 * 86_400 * NS,
        7 * 86_400 * NS,
        30 * 86_400 * NS,
    ];
    STEPS
        .into_iter()
        .find(|&s| span / s <= 6)
        .unwrap_or_else(|| span.div_ceil(6).div_ceil(86_400 * NS).max(1) * 86_400 * NS)
}

/// A time-axis label for a tick at `t` with tick step `step` over a span of `span` ns.
fn time_label(t: u64, step: u64, span: u64) -> String {
    let s = rfc3339(t);
    if step < NS {
        s[11..23].to_owned()
    } else if step < 60 * NS {
        s[11..19].to_owned()
    } else if step >= 86_400 * NS {
        s[..10].to_owned()
    } else if span >= 86_400 * NS {
        format!("{} {}", &s[5..10], &s[11..16])
    } else {
        s[11..16].to_owned()
    }
}

/// The delay-queue series (adds, forwards, deletes per interval) as three step lines with a
/// legend and time axis. Series longer than [`SERIES_POINTS`] show the maximum of each run
/// of consecutive intervals. "no data" without intervals.
fn series_plot(title: &str, intervals: &[Interval], interval_ns: u64) -> String {
    if intervals.is_empty() {
        return no_data(title);
    }
    let width = interval_ns.max(1);
    let k = intervals.len().div_ceil(SERIES_POINTS);
    // (start, end, [adds, forwards, deletes]) per bucket of k intervals.
    let buckets: Vec<(u64, u64, [u64; 3])> = intervals
        .chunks(k)
        .map(|chunk| {
            let mut m = [0u64; 3];
            for i in chunk {
                m[0] = m[0].max(i.adds);
                m[1] = m[1].max(i.forwards);
                m[2] = m[2].max(i.deletes);
            }
            let start = chunk[0].start;
            (start, chunk[chunk.len() - 1].start.saturating_add(width), m)
        })
        .collect();
    let x0 = buckets[0].0;
    let x1 = buckets[buckets.len() - 1].1.max(x0.saturating_add(1));
    let span = x1 - x0;
    let xf = |t: u64| ratio(t.saturating_sub(x0) as f64, span as f64);
    let ymax = buckets.iter().flat_map(|b| b.2).max().unwrap_or(0);
    let ystep = nice_step(ymax, 5);
    let ytop = ymax.div_ceil(ystep).max(1).saturating_mul(ystep);

    let f = Frame {
        w: PLOT_W,
        h: 300.0,
        left: 56.0,
        right: 20.0,
        top: 30.0,
        bottom: 30.0,
    };
    let mut s = f.open(title);
    // y grid.
    let mut t = 0;
    while t <= ytop {
        let y = c(f.y(ratio(t as f64, ytop as f64)));
        let _ = writeln!(
            s,
            "<line x1=\"{}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"{GRID}\"/>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"{AXIS}\">{}</text>",
            c(f.x(0.0)),
            c(f.x(1.0)),
            c(f.x(0.0) - 6.0),
            c(f.y(ratio(t as f64, ytop as f64)) + 4.0),
            compact(t)
        );
        match t.checked_add(ystep) {
            Some(next) => t = next,
            None => break,
        }
    }
    f.axes(&mut s);
    // x ticks at round UTC times.
    let step = time_step(span);
    let mut t = x0.div_ceil(step).saturating_mul(step);
    while t <= x1 {
        let x = c(f.x(xf(t)));
        let _ = writeln!(
            s,
            "<line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\" stroke=\"{GRID}\"/>\
             <text x=\"{x}\" y=\"{}\" text-anchor=\"middle\" fill=\"{AXIS}\">{}</text>",
            c(f.y(1.0)),
            c(f.y(0.0) + 4.0),
            c(f.y(0.0) + 16.0),
            time_label(t, step, span)
        );
        match t.checked_add(step) {
            Some(next) => t = next,
            None => break,
        }
    }
    // Lines.
    for (series, colour) in COLOURS.iter().enumerate() {
        let points: Vec<String> = buckets
            .iter()
            .flat_map(|&(a, b, m)| {
                let y = c(f.y(ratio(m[series] as f64, ytop as f64)));
                [
                    format!("{},{y}", c(f.x(xf(a)))),
                    format!("{},{y}", c(f.x(xf(b)))),
                ]
            })
            .collect();
        let _ = writeln!(
            s,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\"/>",
            points.join(" ")
        );
    }
    // Legend, above the plot area.
    let names = ["adds (queued)", "forwards (DarkFlow)", "deletes (answered)"];
    let mut x = f.left;
    for (name, colour) in names.iter().zip(COLOURS) {
        let _ = writeln!(
            s,
            "<line x1=\"{}\" y1=\"14\" x2=\"{}\" y2=\"14\" stroke=\"{colour}\" \
             stroke-width=\"3\"/><text x=\"{}\" y=\"18\">{name}</text>",
            c(x),
            c(x + 18.0),
            c(x + 22.0)
        );
        x += 28.0 + name.len() as f64 * 6.0;
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::{Counters, Late};
    use crate::flow::FlowId;

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
    fn formatting_helpers() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(384_803), "384,803");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(compact(950), "950");
        assert_eq!(compact(2500), "2.5k");
        assert_eq!(compact(10_000_000), "10M");
        assert_eq!(fmt_duration(5 * NS), "5 s");
        assert_eq!(fmt_duration(1_500_000_000), "1.5 s");
        assert_eq!(fmt_duration(30_000_000), "30 ms");
        assert_eq!(fmt_duration(750 * NS), "12 min 30 s");
        assert_eq!(nice_step(0, 5), 1);
        assert_eq!(nice_step(7, 5), 2);
        assert_eq!(nice_step(1234, 5), 500);
        assert_eq!(nice_step(u64::MAX, 5), 5_000_000_000_000_000_000);
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn cdf_caption_from_data() {
        let mut v = vec![1u64; 95];
        v.extend([30, 40, 50, 60, 5000]);
        assert_eq!(
            cdf_caption(&v, "source", "sources", "sent"),
            "95.0 % of 100 sources sent ≤ 1 SYN; median 1, maximum 5,000."
        );
        assert_eq!(
            cdf_caption(&[7], "source", "sources", "sent"),
            "100.0 % of 1 source sent ≤ 7 SYNs; median 7, maximum 7."
        );
        assert_eq!(cdf_caption(&[], "source", "sources", "sent"), "No sources.");
    }

    #[test]
    fn hostile_strings_are_escaped() {
        let html = render_html(&tiny(), &meta("<script>alert('x')</script> & co"));
        assert!(!html.contains("<script"));
        assert!(!html.contains("<img"));
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co"));
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;.pcap"));
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

    #[test]
    fn plots_stay_small() {
        let values: Vec<u64> = (0..100_000u64).map(|i| i * i % 1_000_003).collect();
        let svg = cdf_plot("t", &values, "x");
        let pts = svg
            .lines()
            .find(|l| l.contains("stroke-width=\"1.8\""))
            .unwrap()
            .matches(',')
            .count();
        assert!(pts <= 2 * CDF_BUCKETS + 4, "{pts} points");

        let intervals: Vec<Interval> = (0..10_000u64)
            .map(|i| Interval {
                start: i * NS,
                adds: i % 97,
                forwards: i % 13,
                deletes: i % 7,
                ..Interval::default()
            })
            .collect();
        let svg = series_plot("t", &intervals, NS);
        assert_finite(&svg);
        for l in svg.lines().filter(|l| l.contains("stroke-width=\"1.5\"")) {
            assert!(l.matches(',').count() <= 2 * SERIES_POINTS, "{}", l.len());
        }
        // The largest value survives downsampling: 96 adds sets the axis to 100.
        assert!(svg.contains(">100</text>"));
    }

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
