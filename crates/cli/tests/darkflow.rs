//! `ashiato darkflow` as a user runs it: real captures against independently computed
//! answers and against argus, synthetic traffic with a known answer, the report, bad input.

use std::collections::BTreeSet;
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{bin, data, repo, run, stderr};

/// A set file: `src sport dst dport` per line, compared as a set of normalised lines.
fn read_set(p: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

const CAPTURES: [&str; 4] = [
    "cs-synscan.pcapng",
    "esnet-masscan-tcp_0_1000_20190821.pcap",
    "zeek-web.pcap",
    "stopddos-amp.dns.RRSIG.fragmented-first120.pcap",
];

fn darkflow_set(files: &[PathBuf], dir: &Path, extra: &[&str]) -> (Output, BTreeSet<String>) {
    let set = dir.join("set.txt");
    let mut args = vec!["darkflow".to_string(), "--pcap".into()];
    args.extend(files.iter().map(|f| f.display().to_string()));
    args.extend([
        "--set-out".into(),
        set.display().to_string(),
        "--json".into(),
    ]);
    args.extend(extra.iter().map(|s| s.to_string()));
    let o = bin().args(&args).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    (o, read_set(&set))
}

/// The expected sets were computed by scripts/darkflow-truth.py, an implementation that
/// shares no code with ashiato.
#[test]
fn real_captures_give_exactly_the_reference_set() {
    let dir = tempfile::tempdir().unwrap();
    for c in CAPTURES {
        let (o, got) = darkflow_set(&[data(c)], dir.path(), &[]);
        let want = read_set(&data(&format!("darkflow/{c}.darkflows")));
        assert_eq!(got, want, "{c}");
        // The JSON lines carry one darkflow event per flow and a final summary.
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        let events: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let dark = events.iter().filter(|e| e["event"] == "darkflow").count();
        assert_eq!(dark, want.len(), "{c}");
        let summary = events.last().unwrap();
        assert_eq!(summary["event"], "summary");
        assert_eq!(
            summary["report"]["counters"]["darkflows"],
            want.len() as u64
        );
    }
}

#[test]
fn the_nmap_scan_in_numbers() {
    let o = run(&["darkflow", "--pcap", data(CAPTURES[0]).to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    // 1994 SYNs to 1994 ports: 3 answered by SYN/ACK, 5 by RST, 1986 DarkFlows.
    assert!(out.contains("SYNs 1994"), "{out}");
    assert!(
        out.contains("DarkFlows (no SYN/ACK or RST within 5 s): 1986"),
        "{out}"
    );
    assert!(out.contains("3 by SYN/ACK, 5 by RST"), "{out}");
}

/// Several files are read in time order: the answer is the union.
#[test]
fn several_files_merge_in_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let files = [data(CAPTURES[1]), data(CAPTURES[0])];
    let (_, got) = darkflow_set(&files, dir.path(), &[]);
    let mut want = read_set(&data(&format!("darkflow/{}.darkflows", CAPTURES[0])));
    want.extend(read_set(&data(&format!(
        "darkflow/{}.darkflows",
        CAPTURES[1]
    ))));
    assert_eq!(got, want);
}

/// argus's REQ set against ours (docs/argus-notes.md explains each difference): on the nmap
/// scan they agree; on masscan, argus drops the two flows whose scanner reset its own SYN
/// (argus calls them RST; no answer came from the target, so they are DarkFlows).
#[test]
fn argus_req_differs_only_where_explained() {
    let dir = tempfile::tempdir().unwrap();
    for (c, only_ours) in [
        (CAPTURES[0], vec![]),
        (
            CAPTURES[1],
            vec![
                "172.31.15.102 51406 198.124.152.15 443",
                "172.31.15.102 51406 198.124.152.15 80",
            ],
        ),
    ] {
        let (_, ours) = darkflow_set(&[data(c)], dir.path(), &[]);
        let o = Command::new(repo("scripts/argus-req.sh"))
            .arg(data(c))
            .output()
            .expect("scripts/argus-req.sh (needs argus-server and argus-client)");
        assert!(o.status.success(), "argus-req.sh: {}", stderr(&o));
        let argus: BTreeSet<String> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        let mine: BTreeSet<&str> = ours
            .iter()
            .map(String::as_str)
            .filter(|f| !argus.contains(*f))
            .collect();
        let theirs: Vec<&String> = argus.iter().filter(|f| !ours.contains(*f)).collect();
        assert!(
            theirs.is_empty(),
            "{c}: argus REQ but not DarkFlow: {theirs:?}"
        );
        assert_eq!(mine, only_ours.into_iter().collect::<BTreeSet<_>>(), "{c}");
    }
}

/// The synthetic capture's known answer, through the binary, with the report.
#[test]
fn synthetic_capture_known_answer_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("synth.pcap");
    let truth = dir.path().join("truth.txt");
    let o = run(&[
        "darkflow",
        "synth",
        "--out",
        pcap.to_str().unwrap(),
        "--truth",
        truth.to_str().unwrap(),
        "--flows",
        "20000",
        "--seed",
        "42",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report = dir.path().join("report");
    let (_, got) = darkflow_set(&[pcap], dir.path(), &["--report", report.to_str().unwrap()]);
    let want = read_set(&truth);
    assert!(want.len() > 5000, "{}", want.len());
    assert_eq!(got, want);
    let html = std::fs::read_to_string(report.join("index.html")).unwrap();
    assert!(html.matches("<svg").count() >= 4, "plots in the report");
    assert!(html.contains("445"), "top ports in the report");
    let csv = std::fs::read_to_string(report.join("darkflows.csv")).unwrap();
    assert_eq!(
        csv.lines().count(),
        want.len() + 1,
        "one row per DarkFlow and a header"
    );
    for f in [
        "ports.csv",
        "sources.csv",
        "destinations.csv",
        "intervals.csv",
        "summary.json",
    ] {
        assert!(std::fs::metadata(report.join(f)).unwrap().len() > 0, "{f}");
    }
}

/// A capture cut in the middle of a record: a precise error, a non-zero exit, and the
/// DarkFlows of everything before the cut still reported.
#[test]
fn truncated_capture_reports_what_was_read_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let full = std::fs::read(data(CAPTURES[1])).unwrap();
    let cut = dir.path().join("cut.pcap");
    std::fs::write(&cut, &full[..full.len() / 2 + 7]).unwrap();
    let set = dir.path().join("set.txt");
    let o = run(&[
        "darkflow",
        "--pcap",
        cut.to_str().unwrap(),
        "--set-out",
        set.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("cut.pcap") && err.contains("offset"), "{err}");
    let got = read_set(&set);
    let want = read_set(&data(&format!("darkflow/{}.darkflows", CAPTURES[1])));
    assert!(
        got.len() > 400 && got.is_subset(&want),
        "{} flows before the cut",
        got.len()
    );
}

/// Inputs that cannot be read are refused before anything is printed: exit 1, the file
/// named on stderr, nothing on stdout, no report directory.
#[test]
fn unreadable_inputs_fail_before_any_output() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pcap");
    std::fs::write(&junk, b"this is not a capture file at all").unwrap();
    let missing = dir.path().join("nonexistent.pcap");
    let good = data(CAPTURES[0]);
    let report = dir.path().join("report");
    for (files, bad) in [
        (vec![&missing], &missing),
        (vec![&junk], &junk),
        (vec![&good, &missing], &missing),
        (vec![&good, &junk], &junk),
    ] {
        for json in [false, true] {
            let mut args = vec!["darkflow".to_string(), "--pcap".into()];
            args.extend(files.iter().map(|f| f.display().to_string()));
            args.extend(["--report".into(), report.display().to_string()]);
            if json {
                args.push("--json".into());
            }
            let o = bin().args(&args).output().unwrap();
            let err = stderr(&o);
            assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
            assert!(err.contains(&bad.display().to_string()), "{err}");
            assert!(o.stdout.is_empty(), "{args:?} printed {:?}", o.stdout);
            assert!(!report.exists(), "{args:?} created the report directory");
        }
    }
}

/// Bad flag values and a missing input are usage errors: clap refuses them at parse time
/// with exit code 2, naming the flag.
#[test]
fn usage_errors_exit_2() {
    let scan = data(CAPTURES[0]);
    let scan = scan.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["darkflow"], "--pcap"),
        (&["darkflow", "--json"], "--pcap"),
        (&["darkflow", "--pcap", scan, "--events", "bogus"], "bogus"),
        (
            &["darkflow", "--pcap", scan, "--events", "darkflow,nope"],
            "nope",
        ),
        (
            &["darkflow", "--pcap", scan, "--timeout", "0s"],
            "--timeout",
        ),
        (
            &["darkflow", "--pcap", scan, "--timeout", "2h"],
            "--timeout",
        ),
        (
            &["darkflow", "--pcap", scan, "--timeout", "soon"],
            "--timeout",
        ),
        (
            &["darkflow", "--pcap", scan, "--expiry", "5 parsecs"],
            "--expiry",
        ),
        (
            &["darkflow", "--pcap", scan, "--interval", "0"],
            "--interval",
        ),
        (
            &["darkflow", "--pcap", scan, "--max-pending", "0"],
            "--max-pending",
        ),
        (
            &["darkflow", "--pcap", scan, "--max-flows", "4294967295"],
            "--max-flows",
        ),
        (
            &["darkflow", "--iface", "lo", "--metrics-listen", "here"],
            "--metrics-listen",
        ),
        (
            &["darkflow", "--iface", "lo", "--duration", "forever"],
            "--duration",
        ),
        (
            &["darkflow", "--iface", "lo", "--summary-every", "0s"],
            "--summary-every",
        ),
        (
            &["darkflow", "synth", "--out", "x.pcap", "--rate", "0"],
            "--rate",
        ),
        (
            &[
                "darkflow",
                "synth",
                "--out",
                "x.pcap",
                "--ipv6-percent",
                "101",
            ],
            "--ipv6-percent",
        ),
        (
            &["darkflow", "synth", "--out", "x.pcap", "--timeout", "0"],
            "--timeout",
        ),
        (&["darkflow", "inline", "--honeypot", "::1"], "--honeypot"),
        (
            &["darkflow", "inline", "--honeypot6", "192.0.2.1"],
            "--honeypot6",
        ),
        (&["darkflow", "inline", "--mark", "0"], "--mark"),
    ];
    for (args, flag) in cases {
        let o = run(args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(flag), "{args:?}: {err}");
        assert!(o.stdout.is_empty(), "{args:?}");
    }
}

/// A one-SYN pcapng; `tsresol` is the `if_tsresol` option (none: microseconds).
fn one_syn_pcapng(ts_units: u64, tsresol: Option<u8>) -> Vec<u8> {
    let mut f = Vec::new();
    // Section header: type, length, byte-order magic, version 1.0, section length unknown.
    for v in [0x0a0d_0d0a_u32, 28, 0x1a2b_3c4d] {
        f.extend(v.to_le_bytes());
    }
    f.extend([1, 0, 0, 0]);
    f.extend(u64::MAX.to_le_bytes());
    f.extend(28u32.to_le_bytes());
    // Interface description: Ethernet, snaplen 0, optional if_tsresol.
    let opts: Vec<u8> = match tsresol {
        Some(r) => [9u16.to_le_bytes(), 1u16.to_le_bytes()]
            .concat()
            .into_iter()
            .chain([r, 0, 0, 0, 0, 0, 0, 0])
            .collect(),
        None => Vec::new(),
    };
    let len = 20 + opts.len() as u32;
    f.extend(1u32.to_le_bytes());
    f.extend(len.to_le_bytes());
    f.extend([1, 0, 0, 0, 0, 0, 0, 0]);
    f.extend(&opts);
    f.extend(len.to_le_bytes());
    // Ethernet, IPv4 192.0.2.1 -> 198.51.100.1, TCP 40000 -> 80, SYN.
    let mut pkt = vec![0u8; 12];
    pkt.extend([0x08, 0x00]);
    pkt.extend([
        0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0, 192, 0, 2, 1, 198, 51, 100, 1,
    ]);
    pkt.extend(40000u16.to_be_bytes());
    pkt.extend(80u16.to_be_bytes());
    pkt.extend([0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
    while !pkt.len().is_multiple_of(4) {
        pkt.push(0);
    }
    let len = 32 + pkt.len() as u32;
    f.extend(6u32.to_le_bytes());
    f.extend(len.to_le_bytes());
    f.extend(0u32.to_le_bytes());
    f.extend(((ts_units >> 32) as u32).to_le_bytes());
    f.extend((ts_units as u32).to_le_bytes());
    f.extend(54u32.to_le_bytes());
    f.extend(54u32.to_le_bytes());
    f.extend(&pkt);
    f.extend(len.to_le_bytes());
    f
}

/// A SYN stamped at (or saturating to) the largest time, as a one-byte corruption of a
/// timestamp can make: one DarkFlow, a small report, no runaway memory.
#[test]
fn a_syn_at_the_end_of_time() {
    let dir = tempfile::tempdir().unwrap();
    for (name, ts, res) in [
        ("max-us.pcapng", u64::MAX, None),
        ("max-ns.pcapng", u64::MAX - 1, Some(9)),
        ("zero.pcapng", 0, Some(9)),
    ] {
        let p = dir.path().join(name);
        std::fs::write(&p, one_syn_pcapng(ts, res)).unwrap();
        let report = dir.path().join(format!("{name}.report"));
        let o = run(&[
            "darkflow",
            "--pcap",
            p.to_str().unwrap(),
            "--json",
            "--report",
            report.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        let last: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
        assert_eq!(last["report"]["counters"]["darkflows"], 1, "{name}");
        for e in std::fs::read_dir(&report).unwrap() {
            let e = e.unwrap();
            let len = e.metadata().unwrap().len();
            assert!(len < 1 << 20, "{name}: {:?} is {len} bytes", e.file_name());
        }
    }
}

/// A SYN flood larger than the delay queue: the bound holds and the overflow is counted.
#[test]
fn flood_beyond_the_bound_is_counted_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(&[
        "darkflow",
        "--pcap",
        data(CAPTURES[0]).to_str().unwrap(),
        "--max-pending",
        "100",
        "--json",
        "--events",
        "untracked",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let last: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let c = &last["report"]["counters"];
    let untracked = c["untracked"].as_u64().unwrap();
    assert!(untracked > 1000, "{c}");
    assert_eq!(c["pending_peak"], 100);
    let lines = out
        .lines()
        .filter(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["event"] == "untracked");
    assert_eq!(lines.count() as u64, untracked);
    assert_eq!(
        c["darkflows"].as_u64().unwrap()
            + c["answered_synack"].as_u64().unwrap()
            + c["answered_rst"].as_u64().unwrap(),
        c["queued"].as_u64().unwrap()
    );
    drop(dir);
}
