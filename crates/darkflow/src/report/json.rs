//! `summary.json`: the bounded JSON form of a [`Report`] (what it keeps and why is in
//! [`crate::summary::ReportJson`]), pretty-printed with a final newline.

use std::io::{self, Write};

use crate::summary::Report;

/// Writes `summary.json`.
pub(super) fn summary(w: &mut dyn Write, report: &Report, timeout_ns: u64) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *w, &report.json(timeout_ns))?;
    writeln!(w)
}
