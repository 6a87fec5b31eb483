//! The data files of a fixed synthetic capture's report, pinned by length and hash: the
//! report as the CLI writes it (streamed per-flow CSV, then the rest).
//!
//! CSV and JSON are read by other programs, so any change to their bytes must be a decision,
//! not a side effect of work on the page. The page itself is not pinned: its markup may
//! change while it says the same thing. When a change to a data file is intended, the
//! failure message prints the new table to paste here.

use std::fs;

use ashiato_darkflow::detector::{Config, Detector, Event, NS};
use ashiato_darkflow::report::{Meta, render_in_memory};
use ashiato_darkflow::summary::{Report, Summary, SummaryConfig};
use ashiato_darkflow::synth::{SynthConfig, replay};
use ashiato_darkflow_shells::report_dir::ReportDir;

/// (file, bytes, FNV-1a 64 of the bytes) of every data file.
const PINNED: [(&str, usize, u64); 8] = [
    ("answer_delays.csv", 179, 0x494dbbd186a7a74c),
    ("darkflows.csv", 130645, 0xd076d3ddee4bd29f),
    ("destinations.csv", 6877, 0x264b3ed9484b6b69),
    ("intervals.csv", 816, 0x2bb67e9834de026a),
    ("ports.csv", 195, 0xbf4524595433077c),
    ("sources.csv", 17132, 0xa1d2c8580149eb29),
    ("summary.json", 28313, 0x426f01ebb249f556),
    ("unsolicited.csv", 1136, 0xd10fcaae11fdcc12),
];

/// FNV-1a, 64 bits: a hash whose value is fixed by its definition, not by a library version.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn meta() -> Meta {
    Meta {
        title: "Synthetic capture".into(),
        inputs: vec!["synth.pcap".into()],
        timeout_ns: 5 * NS,
        generated_by: "ashiato test".into(),
    }
}

/// Runs a seeded synthetic capture through parser, detector and summary, streaming the
/// DarkFlows into a report directory the way the CLI does.
fn synth_report(dir: &std::path::Path) -> Report {
    let cfg = SynthConfig {
        flows: 3_000,
        seed: 11,
        // Slow enough to span several summary intervals.
        flows_per_sec: 20,
        ..SynthConfig::default()
    };
    let mut det = Detector::new(Config::default());
    let mut sum = Summary::new(SummaryConfig::default());
    let mut rd = ReportDir::create(dir).unwrap();
    replay(&cfg, &mut det, &mut |e: Event| {
        sum.observe(&e);
        rd.observe(&e);
    });
    let report = sum.report(det.counters());
    rd.finish(&report, &meta()).unwrap();
    report
}

#[test]
fn data_files_are_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let report = synth_report(dir.path());
    let mut got: Vec<(String, usize, u64)> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let bytes = fs::read(e.path()).unwrap();
            let name = e.file_name().into_string().unwrap();
            (name, bytes.len(), fnv1a(&bytes))
        })
        .filter(|(name, _, _)| name != "index.html")
        .collect();
    got.sort();
    let table: String = got
        .iter()
        .map(|(n, len, h)| format!("    ({n:?}, {len}, 0x{h:016x}),\n"))
        .collect();
    let want: Vec<(String, usize, u64)> = PINNED
        .iter()
        .map(|&(n, len, h)| (n.to_owned(), len, h))
        .collect();
    assert_eq!(got, want, "data files changed; now:\n{table}");

    // The in-memory rendering (tests, fuzzing) writes the same bytes as the files.
    for (name, bytes) in render_in_memory(&report, &meta()).unwrap() {
        if name != "index.html" {
            assert_eq!(
                bytes,
                fs::read(dir.path().join(&name)).unwrap(),
                "{name} in memory"
            );
        }
    }
}
