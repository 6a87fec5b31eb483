//! `ashiato report --pcap`: a victim without an IDS builds its claim from its own capture. A
//! real spoofed SYN flood gives one claim on the attacked port naming no source; browsing
//! gives none, and says why (exit 1).

mod common;

use common::{data, run, stderr, stdout};

fn report(capture: &str) -> std::process::Output {
    let path = data(capture);
    run(&[
        "report",
        "--pcap",
        path.to_str().unwrap(),
        "--center",
        "center.example:8443",
        "--tls-dir",
        "no-such-dir",
        "--id-prefix",
        "flood",
        "--dry-run",
    ])
}

#[test]
fn a_capture_of_a_spoofed_flood_becomes_one_claim_without_sources() {
    let out = report("hosttrace/stopddos-pkt.TCP.synflood.spoofed-first1000.pcap");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let claim: serde_json::Value = text
        .lines()
        .find_map(|l| serde_json::from_str(l.trim().split("  (").next()?).ok())
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(claim["id"], "flood-1");
    assert_eq!(claim["victim"], "10.10.10.10");
    assert_eq!(claim["protocol"], "tcp");
    assert_eq!(claim["port"], 25565);
    assert!(claim.get("reflectors").is_none(), "{claim}");
    assert!(text.contains("(1 alerts attached as evidence"), "{text}");
    // The first spoofed source of the capture is nowhere in what would be sent.
    assert!(!text.contains("160.161.74.108"), "{text}");
    assert!(
        stderr(&out).contains("1000 SYNs, 1 flooded address(es)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn browsing_is_no_flood_and_says_so() {
    let out = report("hosttrace/zeek-wikipedia.pcap");
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stderr(&out).contains("no SYN flood"), "{}", stderr(&out));
}

#[test]
fn a_file_that_is_no_capture_is_an_error_not_an_empty_search() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.pcap");
    std::fs::write(&path, "root:x:0:0:root:/root:/bin/bash\n".repeat(4)).unwrap();
    let out = run(&[
        "report",
        "--pcap",
        path.to_str().unwrap(),
        "--center",
        "center.example:8443",
        "--tls-dir",
        "no-such-dir",
        "--dry-run",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("not a pcap or pcapng file"), "{err}");
    assert!(!err.contains("no SYN flood"), "{err}");
}
