//! The detector's results as files: CSV tables, the [`Report`] as JSON, and one
//! self-contained HTML page with SVG plots (the DarkFlow paper's Table 2 and Figures 8, 10
//! and 11).
//!
//! # Files of this module
//! * `mod.rs` — the entry points: [`write_report`] writes a report directory,
//!   [`render_in_memory`] returns the same files as bytes, [`render_html`] the page alone.
//! * `csv` — [`DarkflowCsv`], the per-flow rows streamed while the detector runs, and the
//!   per-port, per-address, per-interval and answer-delay tables.
//! * `json` — `summary.json`, the bounded JSON form of the report
//!   ([`crate::summary::ReportJson`]).
//! * `html` — the page, written with the `maud` template macro, which escapes every value
//!   spliced into it: titles, input names and addresses are always text, never markup.
//! * `plot/` — the SVG plotting kit (frame and axes, bar chart, CDF, time series), built
//!   with the same template and escaping; the page embeds its output as it is.
//! * `format` — numbers, durations and times for people (`384,803`, `1.5 s`, axis labels);
//!   timestamps in every file are RFC 3339 UTC with nanoseconds ([`rfc3339`]).
//!
//! # Data flow
//! A [`Report`] (from [`crate::summary::Summary::report`]) and its [`Meta`] go in; one
//! internal function names every file with the function that writes it, and
//! [`write_report`] and [`render_in_memory`] differ only in where the bytes go. CSV and JSON
//! are written straight from the report; the page is a pure function of report and meta,
//! the plots pure functions from numbers to SVG. Nothing here reads a clock.

mod csv;
mod format;
mod html;
mod json;
mod plot;

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

pub use csv::DarkflowCsv;
pub use format::rfc3339;

use crate::summary::Report;

/// Rows in each "top" table and bars in the port chart.
const TOP: usize = 20;

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

/// Writes the report into `dir` (created if needed) and returns the paths written:
/// `ports.csv`, `sources.csv`, `destinations.csv`, `intervals.csv`, `answer_delays.csv`,
/// `unsolicited.csv`, `summary.json` and `index.html` (see [`render_html`]). The page links
/// `darkflows.csv`, the per-flow rows streamed by `ReportDir` (in `ashiato-darkflow-shells`);
/// when none is in `dir` one with the header only is written (and returned), so a report
/// always has the same files.
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
    let t = meta.timeout_ns;
    file("ports.csv", &|w| csv::ports(w, report))?;
    file("sources.csv", &|w| csv::addrs(w, &report.sources))?;
    file("destinations.csv", &|w| csv::addrs(w, &report.destinations))?;
    file("intervals.csv", &|w| csv::intervals(w, report))?;
    file("answer_delays.csv", &|w| csv::answer_delays(w, report, t))?;
    file("unsolicited.csv", &|w| csv::unsolicited(w, report))?;
    file("summary.json", &|w| json::summary(w, report, t))?;
    let mut data: Vec<&str> = Vec::new();
    if with_darkflows {
        data.push("darkflows.csv");
    }
    data.extend(DATA_FILES);
    let page = html::render_page(report, meta, &data);
    file("index.html", &|w| w.write_all(page.as_bytes()))
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
/// Every string from outside (title, inputs, addresses) is escaped; the page loads nothing.
pub fn render_html(report: &Report, meta: &Meta) -> String {
    html::render_page(report, meta, &DATA_FILES)
}

#[cfg(test)]
mod tests;
