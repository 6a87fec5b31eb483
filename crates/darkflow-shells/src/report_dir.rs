//! A report directory written as the detector runs: `darkflows.csv` is streamed from the
//! [`Event::Closed`] records (one row per DarkFlow, never held in memory), and the summary
//! files and page are written by [`ReportDir::finish`]. This is the way to write a complete
//! report; [`write_report`] alone has no per-flow records.

use std::fs::{self, File};
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

use ashiato_darkflow::detector::Event;
use ashiato_darkflow::report::{DarkflowCsv, Meta, write_report};
use ashiato_darkflow::summary::Report;

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

#[cfg(test)]
mod tests {
    use ashiato_darkflow::report::{Meta, write_report};
    use ashiato_darkflow::synth::{SynthConfig, replay};
    use ashiato_darkflow::{Config, Detector, Event, Summary, SummaryConfig};

    use super::ReportDir;

    /// A report always has darkflows.csv: streamed through ReportDir it has one row per
    /// DarkFlow; written by write_report alone it has the header.
    #[test]
    fn report_always_has_darkflows_csv() {
        let meta = Meta {
            title: "test".into(),
            inputs: vec!["synthetic".into()],
            timeout_ns: Config::default().timeout_ns,
            generated_by: "test".into(),
        };
        let dir = tempfile::tempdir().unwrap();
        let cfg = SynthConfig {
            flows: 2_000,
            seed: 7,
            ..SynthConfig::default()
        };
        let mut det = Detector::new(Config::default());
        let mut sum = Summary::new(SummaryConfig::default());
        let mut rd = ReportDir::create(dir.path()).unwrap();
        replay(&cfg, &mut det, &mut |e: Event| {
            sum.observe(&e);
            rd.observe(&e);
        });
        let r = sum.report(det.counters());
        let rows = rd.rows();
        let paths = rd.finish(&r, &meta).unwrap();
        assert!(paths[0].ends_with("darkflows.csv"));
        let csv = std::fs::read_to_string(dir.path().join("darkflows.csv")).unwrap();
        assert_eq!(rows, r.counters.darkflows);
        assert_eq!(csv.lines().count() as u64, r.counters.darkflows + 1);
        let bare = tempfile::tempdir().unwrap();
        let paths = write_report(bare.path(), &r, &meta).unwrap();
        assert!(paths.iter().any(|p| p.ends_with("darkflows.csv")));
        let csv = std::fs::read_to_string(bare.path().join("darkflows.csv")).unwrap();
        assert_eq!(csv.lines().count(), 1);
        let html = std::fs::read_to_string(bare.path().join("index.html")).unwrap();
        assert!(html.contains("darkflows.csv"));
    }
}
