//! `ashiato probe` as an operator relies on it: every packet searched around its own time,
//! answers from another federation refused, a probe that cannot record refusing to start, a
//! dead capture visible in `/healthz`, plans beyond the machine refused, quiet plain logs.

mod common;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{
    MASSCAN, bin, data, http_get, run, spawn_probe, start_probe, wait_exit, wait_input_done,
};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `probe run` over plaintext loopback, with its logs discarded.
fn start_plain(extra: &[&str]) -> common::Server {
    let mut args = vec!["--dev-insecure"];
    args.extend_from_slice(extra);
    start_probe(&args)
}

#[test]
fn packets_far_apart_are_each_searched_around_their_own_time() {
    // Packets 0 and 1004 of the masscan capture lie about 10 s apart: one window of ±5 s
    // around the earliest would miss the second.
    let f = data(MASSCAN);
    let s = start_plain(&["--pcap", f.to_str().unwrap()]);
    wait_input_done(&s.1);
    let o = run(&[
        "probe",
        "query",
        "--probe",
        &s.1,
        "--dev-insecure",
        "--pcap",
        f.to_str().unwrap(),
        "--index",
        "0",
        "--index",
        "1004",
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let answers: Vec<serde_json::Value> = text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON answer a line"))
        .collect();
    assert_eq!(answers.len(), 2, "two requests, one per time group");
    for a in &answers {
        assert_eq!(a["answers"][0]["seen"], true, "{a}");
        let (from, to) = (a["from_ns"].as_u64().unwrap(), a["to_ns"].as_u64().unwrap());
        assert!(
            to - from <= 11_000_000_000,
            "each window is the packet's own: {a}"
        );
    }
}

#[test]
fn an_answer_from_another_federation_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("other.key");
    assert!(
        run(&["key", "generate", "--out", key.to_str().unwrap()])
            .status
            .success()
    );
    let f = data(MASSCAN);
    // The probe runs with the demo key; the query digests with another one.
    let s = start_plain(&["--pcap", f.to_str().unwrap()]);
    wait_input_done(&s.1);
    for how in [
        vec!["--pcap", f.to_str().unwrap(), "--index", "3"],
        vec!["--digest", "0123456789abcdef0123456789abcdef"],
    ] {
        let mut args = vec![
            "probe",
            "query",
            "--probe",
            &s.1,
            "--dev-insecure",
            "--key-file",
            key.to_str().unwrap(),
        ];
        args.extend(how);
        let o = run(&args);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
        assert!(
            text(&o.stderr).contains("another federation key"),
            "{}",
            text(&o.stderr)
        );
        assert!(!text(&o.stdout).contains("not seen"), "{}", text(&o.stdout));
    }
}

/// Runs `probe run` with `input` and expects it to exit 1 quickly, naming `what`.
fn refuses_to_start(input: &[&str], what: &str) {
    let mut c = bin()
        .args(["probe", "run", "--listen", "127.0.0.1:0", "--dev-insecure"])
        .args(input)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_exit(
        &mut c,
        &format!("`probe run {input:?}` to exit: it cannot record"),
        Duration::from_secs(20),
    );
    let mut err = String::new();
    c.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains(what), "{what} not named in {err}");
    assert!(err.contains("cannot record"), "{err}");
}

#[test]
fn a_probe_that_cannot_record_exits_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pcap");
    std::fs::write(&junk, b"this is not a capture file at all").unwrap();
    refuses_to_start(&["--pcap", "/nonexistent/x.pcap"], "x.pcap");
    refuses_to_start(
        &["--pcap", dir.path().to_str().unwrap()],
        dir.path().to_str().unwrap(),
    );
    refuses_to_start(&["--pcap", junk.to_str().unwrap()], "junk.pcap");
    refuses_to_start(&["--iface", "nonexist0"], "nonexist0");
}

#[test]
fn a_capture_that_dies_later_shows_in_healthz_and_status() {
    let dir = tempfile::tempdir().unwrap();
    let src = std::fs::read(data(MASSCAN)).unwrap();
    let cut = dir.path().join("cut.pcap");
    std::fs::write(&cut, &src[..src.len() / 2 + 7]).unwrap();
    let s = start_plain(&["--pcap", cut.to_str().unwrap()]);
    let status = wait_input_done(&s.1);
    let reason = status["capture_error"]
        .as_str()
        .unwrap_or_else(|| panic!("{status}"));
    assert!(
        reason.contains("cut.pcap") && reason.contains("offset"),
        "{reason}"
    );
    let (code, body) = http_get(&s.1, "/healthz");
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("cut.pcap"), "{body}");
    // It still answers for what it recorded before the cut.
    assert!(status["digested"].as_u64().unwrap() > 400, "{status}");
    // A whole capture leaves it healthy.
    let whole = start_plain(&["--pcap", data(MASSCAN).to_str().unwrap()]);
    wait_input_done(&whole.1);
    assert_eq!(http_get(&whole.1, "/healthz"), (200, "ok".to_string()));
}

#[test]
fn a_plan_larger_than_the_machine_is_refused_and_warned() {
    let f = data(MASSCAN);
    let o = run(&[
        "probe",
        "run",
        "--pcap",
        f.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--dev-insecure",
        "--rate",
        "1Gpps",
        "--retention",
        "3600s",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("this machine has"),
        "{}",
        text(&o.stderr)
    );
    let o = run(&["probe", "plan", "--rate", "1Gpps", "--retention", "3600s"]);
    assert!(o.status.success());
    assert!(
        text(&o.stdout).contains("warning: blocked"),
        "{}",
        text(&o.stdout)
    );
}

#[test]
fn logs_are_plain_in_pipes_and_quiet_by_default() {
    let f = data("zeek-web.pcap");
    let o = run(&["digest", "--pcap", f.to_str().unwrap()]);
    assert!(o.status.success());
    let err = text(&o.stderr);
    assert!(
        !err.contains('\u{1b}'),
        "no colour codes in a pipe: {err:?}"
    );
    assert!(
        err.contains("ashiato::key"),
        "the warning names the key: {err}"
    );
    assert!(!err.contains(" INFO "), "no info lines without -v: {err}");
    let o = run(&["-v", "digest", "--pcap", f.to_str().unwrap()]);
    assert!(o.status.success());
}

#[test]
fn a_bad_window_or_time_is_a_usage_error() {
    for bad in [
        ["--window", "5 parsecs"],
        ["--time", "2023-02-31T00:00:00Z"],
    ] {
        let mut args = vec!["probe", "query", "--probe", "127.0.0.1:1", "--dev-insecure"];
        args.extend(["--digest", "0123456789abcdef0123456789abcdef"]);
        args.extend(bad);
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", text(&o.stderr));
    }
}

#[test]
fn the_demo_keeps_the_report_it_points_at() {
    let o = run(&["demo"]);
    assert!(
        o.status.success(),
        "{}\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let out = text(&o.stdout);
    let report = out
        .lines()
        .find_map(|l| l.split("report in ").nth(1))
        .unwrap_or_else(|| panic!("no report path in {out}"));
    let report = Path::new(report.trim());
    assert!(report.is_file(), "{} is gone", report.display());
    let dir = report.parent().unwrap().parent().unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn sigterm_saves_the_epochs_in_memory_or_exits_1() {
    let f = data(MASSCAN);
    for lose in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let spill = dir.path().join("spill");
        let mut probe = spawn_probe(
            &[
                "--dev-insecure",
                "--pcap",
                f.to_str().unwrap(),
                "--spill-dir",
                spill.to_str().unwrap(),
            ],
            Stdio::piped(),
        );
        wait_input_done(&probe.1);
        if lose {
            // The disk "fails": the directory is gone when shutdown writes.
            std::fs::remove_dir_all(&spill).unwrap();
        }
        let c = &mut probe.0;
        let pid = c.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(killed.unwrap().success());
        let status = c.wait().unwrap();
        let mut err = String::new();
        c.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        if lose {
            assert_eq!(status.code(), Some(1), "{err}");
            assert!(err.contains("could not save"), "{err}");
        } else {
            assert_eq!(status.code(), Some(0), "{err}");
            let files = std::fs::read_dir(&spill)
                .unwrap()
                .filter(|e| {
                    let p = e.as_ref().unwrap().path();
                    p.extension().is_some_and(|x| x == "ashbloom")
                })
                .count();
            // The 10 s capture, all of it still in memory, is written at shutdown.
            assert!(files >= 10, "{files} epochs written");
        }
    }
}
