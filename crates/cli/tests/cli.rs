//! The `ashiato` binary as a user runs it: real captures, bad files, the probe over HTTP.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::{MASSCAN, data, run, start_probe, stderr, stdout, wait_for, wait_input_done};

#[test]
fn digest_prints_one_line_per_packet_in_file_order() {
    let f = data(MASSCAN);
    let o = run(&["digest", "--pcap", f.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    // 1001 SYNs + 4 RSTs (tests/data/README.md).
    assert_eq!(lines.len(), 1005);
    let mut digests = std::collections::HashSet::new();
    for (i, l) in lines.iter().enumerate() {
        let cols: Vec<&str> = l.split(' ').collect();
        assert_eq!(cols.len(), 3, "{l}");
        assert_eq!(cols[0], i.to_string());
        assert!(cols[1].starts_with("2019-08-21T"), "{l}");
        assert_eq!(cols[2].len(), 32, "{l}");
        digests.insert(cols[2].to_string());
    }
    assert_eq!(digests.len(), 1005, "distinct packets, distinct digests");
    // The same count as tcpdump reads from the file.
    if let Ok(t) = Command::new("tcpdump")
        .args(["-nr", f.to_str().unwrap()])
        .output()
    {
        assert_eq!(String::from_utf8_lossy(&t.stdout).lines().count(), 1005);
    }
}

#[test]
fn digest_json_and_keys() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("fed.key");
    let o = run(&["key", "generate", "--out", key.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&key).unwrap();
    assert_eq!(text.trim().len(), 32);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Refuses to overwrite a key.
    assert!(
        !run(&["key", "generate", "--out", key.to_str().unwrap()])
            .status
            .success()
    );
    let f = data("zeek-web.pcap");
    let demo = run(&["digest", "--pcap", f.to_str().unwrap(), "--json"]);
    let keyed = run(&[
        "digest",
        "--pcap",
        f.to_str().unwrap(),
        "--json",
        "--key-file",
        key.to_str().unwrap(),
    ]);
    assert!(demo.status.success() && keyed.status.success());
    let parse = |o: &Output| -> Vec<serde_json::Value> {
        stdout(o)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let (a, b) = (parse(&demo), parse(&keyed));
    assert_eq!(a.len(), 24);
    assert_eq!(a[3]["index"], 3);
    assert!(a[3]["ts_ns"].as_u64().unwrap() > 1_000_000_000_000_000_000);
    assert_ne!(
        a[3]["digest"], b[3]["digest"],
        "the key changes every digest"
    );
}

#[test]
fn truncated_capture_gives_one_line_naming_file_and_offset_and_keeps_earlier_packets() {
    let dir = tempfile::tempdir().unwrap();
    let src = std::fs::read(data(MASSCAN)).unwrap();
    let cut = dir.path().join("cut.pcap");
    std::fs::write(&cut, &src[..src.len() / 2 + 7]).unwrap();
    let o = run(&["digest", "--pcap", cut.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    let last = err.lines().last().unwrap();
    assert!(last.contains("cut.pcap"), "{err}");
    assert!(last.contains("offset"), "{err}");
    assert!(last.contains("truncated"), "{err}");
    let printed = stdout(&o).lines().count();
    assert!(
        printed > 400 && printed < 1005,
        "{printed} packets printed before the cut"
    );

    let empty = dir.path().join("empty.pcap");
    std::fs::write(&empty, b"").unwrap();
    let o = run(&["digest", "--pcap", empty.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("empty"), "{}", stderr(&o));

    let junk = dir.path().join("junk.pcap");
    std::fs::write(&junk, b"this is not a capture file at all").unwrap();
    let o = run(&["digest", "--pcap", junk.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("junk.pcap"));

    let missing = run(&["digest", "--pcap", "/nonexistent/x.pcap"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("x.pcap"));
}

#[test]
fn plan_sizes_tables() {
    let o = run(&[
        "probe",
        "plan",
        "--rate",
        "10Gb/s",
        "--mean-packet-size",
        "84",
        "--retention",
        "4s",
        "--fpr",
        "1e-3",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let plans = v["plans"].as_array().unwrap();
    assert_eq!(plans.len(), 2);
    for p in plans {
        let bpp = p["bits_per_packet"].as_f64().unwrap();
        // 1e-3 needs 14.4 bits per item in a standard filter; blocked costs a little more.
        assert!((14.0..20.0).contains(&bpp), "{p}");
        assert!(p["fpr"].as_f64().unwrap() <= 1e-3);
        assert_eq!(p["packets_per_epoch"].as_u64().unwrap(), 14_880_953);
    }
    let bad = run(&["probe", "plan", "--rate", "10Gb/s", "--retention", "4s"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("mean-packet-size"));
}

#[test]
fn fpr_command_agrees_with_theory() {
    let o = run(&[
        "probe",
        "fpr",
        "--m-bits",
        "131072",
        "--queries",
        "20000",
        "--json",
    ]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(v["worst_relative_error"].as_f64().unwrap() <= 0.10);
    assert_eq!(v["points"].as_array().unwrap().len(), 12);
}

/// Runs a `probe query --json` until the probe reports the packet seen: the capture is read
/// in the background (a TLS probe's status is not reachable over plain HTTP to wait on).
fn query_json(args: &[&str]) -> serde_json::Value {
    wait_for(
        "the probe to report the packet seen",
        Duration::from_secs(20),
        || {
            let o = run(args);
            assert!(o.status.success(), "{}", stderr(&o));
            let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
            (v["answers"][0]["seen"].as_bool() == Some(true)).then_some(v)
        },
    )
}

/// Asks a plaintext probe about packet `index` of `pcap` until it answers "seen".
fn query_plaintext(addr: &str, pcap: &Path, index: u64) -> serde_json::Value {
    wait_input_done(addr);
    query_json(&[
        "probe",
        "query",
        "--probe",
        addr,
        "--dev-insecure",
        "--pcap",
        pcap.to_str().unwrap(),
        "--index",
        &index.to_string(),
        "--json",
    ])
}

#[test]
fn probe_run_and_query_over_loopback_plaintext() {
    let f = data(MASSCAN);
    let s = start_probe(&["--pcap", f.to_str().unwrap(), "--dev-insecure"]);
    let v = query_plaintext(&s.1, &f, 500);
    assert_eq!(v["answers"].as_array().unwrap().len(), 1);
    assert!(v["answers"][0]["epochs"][0]["fpr"].as_f64().unwrap() < 1e-3);
    // A digest nobody recorded.
    let o = run(&[
        "probe",
        "query",
        "--probe",
        &s.1,
        "--dev-insecure",
        "--digest",
        "0123456789abcdef0123456789abcdef",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["answers"][0]["seen"], false);
    // Plaintext is refused on a non-loopback address.
    let o = run(&[
        "probe",
        "run",
        "--pcap",
        f.to_str().unwrap(),
        "--listen",
        "0.0.0.0:0",
        "--dev-insecure",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("loopback"));
    // And a plaintext query to a non-loopback address is refused before anything is sent.
    let o = run(&[
        "probe",
        "query",
        "--probe",
        "192.0.2.10:7443",
        "--dev-insecure",
        "--digest",
        &"0".repeat(32),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("loopback"), "{}", stderr(&o));
}

#[test]
fn probe_run_and_query_over_mutual_tls() {
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("tls");
    let o = run(&["pki", "init", "--dir", tls.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    // A second init would replace the CA and orphan every certificate: refused.
    let again = run(&["pki", "init", "--dir", tls.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("already holds"),
        "{}",
        stderr(&again)
    );
    let f = data("cs-synscan.pcapng");
    let s = start_probe(&[
        "--pcap",
        f.to_str().unwrap(),
        "--tls-dir",
        tls.to_str().unwrap(),
    ]);
    let v = query_json(&[
        "probe",
        "query",
        "--probe",
        &s.1,
        "--tls-dir",
        tls.to_str().unwrap(),
        "--pcap",
        f.to_str().unwrap(),
        "--index",
        "1500",
        "--json",
    ]);
    assert_eq!(v["probe"], "probe");
    // Without any TLS flags the query is refused before it is sent.
    let o = run(&[
        "probe",
        "query",
        "--probe",
        &s.1,
        "--digest",
        &"0".repeat(32),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--tls-dir"), "{}", stderr(&o));
}

#[test]
fn demo_runs() {
    let o = run(&["demo"]);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("demo passed"), "{}", stdout(&o));
}

#[test]
fn expired_epochs_spill_to_disk_and_stay_queryable() {
    // The masscan capture spans 10 s; keep 2 s in memory and the rest on disk.
    let dir = tempfile::tempdir().unwrap();
    let spill = dir.path().join("spill");
    std::fs::create_dir(&spill).unwrap();
    let f = data(MASSCAN);
    let s = start_probe(&[
        "--pcap",
        f.to_str().unwrap(),
        "--dev-insecure",
        "--retention",
        "2s",
        "--spill-dir",
        spill.to_str().unwrap(),
        "--spill-budget",
        "64MiB",
    ]);
    // Epochs are spilled by the maintenance thread, up to half an epoch after the clock
    // passes them: under load that can come after the packet is first reported seen.
    let spilled = || std::fs::read_dir(&spill).unwrap().count();
    wait_for(
        "the first epoch to be answered from disk, with 5 spill files",
        Duration::from_secs(20),
        || {
            let v = query_plaintext(&s.1, &f, 0);
            (v["answers"][0]["epochs"][0]["on_disk"] == true && spilled() >= 5).then_some(())
        },
    );
    let files = spilled();
    assert!(
        files >= 5,
        "{files} spill files for a 10 s capture kept 2 s in memory"
    );
    // The newest packet is still in memory.
    let v = query_plaintext(&s.1, &f, 1004);
    assert_eq!(v["answers"][0]["epochs"][0]["on_disk"], false, "{v}");
}

#[test]
fn pki_init_with_days_then_issue_from_the_same_ca() {
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("tls");
    let d = tls.to_str().unwrap();
    let o = run(&[
        "pki",
        "init",
        "--dir",
        d,
        "--days",
        "30",
        "--federation",
        "lab",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("ashiato federation CA lab "),
        "{}",
        stdout(&o)
    );
    let o = run(&[
        "pki",
        "issue",
        "--dir",
        d,
        "--name",
        "probe-2",
        "--san",
        "192.0.2.9",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(tls.join("probe-2.pem").exists() && tls.join("probe-2-key.pem").exists());
    // No silent overwrite; --force replaces.
    let o = run(&["pki", "issue", "--dir", d, "--name", "probe-2"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));
    let o = run(&["pki", "issue", "--dir", d, "--name", "probe-2", "--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Bad names and lifetimes are refused with one line; a missing CA names its file once.
    let o = run(&["pki", "issue", "--dir", d, "--name", "../x"]);
    assert_eq!(o.status.code(), Some(1));
    let o = run(&[
        "pki",
        "init",
        "--dir",
        dir.path().join("t2").to_str().unwrap(),
        "--days",
        "0",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let none = dir.path().join("none");
    let o = run(&[
        "pki",
        "issue",
        "--dir",
        none.to_str().unwrap(),
        "--name",
        "x",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("ca.pem"), "{err}");
    assert_eq!(err.matches("os error").count(), 1, "{err}");
}
