//! A report directory written as the detector runs: `darkflows.csv` is streamed from the
//! [`Event::Closed`] records (one row per DarkFlow, never held in memory), and the summary
//! files and page are written by [`ReportDir::finish`]. This is the way to write a complete
//! report; [`write_report`] alone has no per-flow records.

use std::fs::{self, File};
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

use crate::detector::Event;
use crate::report::{DarkflowCsv, Meta, write_report};
use crate::summary::Report;

/// See the module docs.
#[derive(Debug)]
pub struct ReportDir {
    dir: PathBuf,
    csv: DarkflowCsv<BufWriter<File>>,
    /// First write error of the CSV; detection goes on and [`Self::finish`] returns it.
    error: Option<io::Error>,
}

impl ReportDir {
    /// Creates `dir` (if needed) and its `darkflows.csv`.
    pub fn create(dir: &Path) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let f = File::create(dir.join("darkflows.csv"))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            csv: DarkflowCsv::new(BufWriter::new(f))?,
            error: None,
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Takes one event: a closed DarkFlow becomes a row of `darkflows.csv`.
    pub fn observe(&mut self, e: &Event) {
        if let Event::Closed { record, .. } = e
            && self.error.is_none()
            && let Err(err) = self.csv.write(record)
        {
            self.error = Some(err);
        }
    }

    /// Rows of `darkflows.csv` so far.
    pub fn rows(&self) -> u64 {
        self.csv.rows()
    }

    /// Finishes `darkflows.csv` and writes the other files and the page; returns every path
    /// written, `darkflows.csv` first.
    pub fn finish(self, report: &Report, meta: &Meta) -> io::Result<Vec<PathBuf>> {
        if let Some(e) = self.error {
            return Err(e);
        }
        self.csv.finish()?;
        let mut paths = vec![self.dir.join("darkflows.csv")];
        paths.extend(write_report(&self.dir, report, meta)?);
        Ok(paths)
    }
}
