//! `ashiato hostcheck` as a user runs it: real captures from tests/data/hosttrace, claim and
//! process files written to a temporary directory, JSON lines and exit codes checked.

mod common;

use common::{repo, run, stderr, stdout};
use serde_json::Value;

fn hist(name: &str) -> String {
    repo("tests/data/hosttrace")
        .join(name)
        .display()
        .to_string()
}

fn lines(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

const TRICKBOT_CLAIM: &str = r#"{"id":"cc-7080","victim":"82.118.225.196","protocol":"tcp","port":7080,"from":"2020-12-29T18:21:00Z","to":"2020-12-29T18:22:00Z"}"#;

#[test]
fn a_matched_claim_exits_3_with_its_evidence_and_process() {
    let dir = tempfile::tempdir().unwrap();
    let claims = dir.path().join("claims.jsonl");
    std::fs::write(&claims, format!("{TRICKBOT_CLAIM}\n")).unwrap();
    let procs = dir.path().join("procs.jsonl");
    std::fs::write(
        &procs,
        r#"{"proto":"tcp","local":"10.12.29.101:61318","remote":"82.118.225.196:7080","pid":4242,"process":"rundll32.exe"}"#,
    )
    .unwrap();
    let o = run(&[
        "hostcheck",
        "--pcap",
        &hist("ndpi-trickbot.pcap"),
        "--claims",
        claims.to_str().unwrap(),
        "--procs",
        procs.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let v = lines(&stdout(&o));
    assert_eq!(v[0]["event"], "claim_match");
    assert_eq!(v[0]["claim"], "cc-7080");
    assert_eq!(v[0]["packets"], 28);
    assert_eq!(v[0]["kinds"]["direct"], 28);
    assert_eq!(v[0]["evidence"][0]["frame"], 1);
    assert_eq!(v[0]["flows"][0]["src"], "10.12.29.101:61318");
    assert_eq!(v[0]["flows"][0]["process"], "rundll32.exe");
    assert_eq!(v[0]["flows"][0]["pid"], 4242);
    assert_eq!(v[0]["first"], "2020-12-29T18:21:47.551500000Z");
    let last = v.last().unwrap();
    assert_eq!(last["event"], "summary");
    assert_eq!(last["frames"], 74);
    assert!(stderr(&o).contains("took part in an attack"));
}

#[test]
fn findings_without_a_match_exit_0_and_name_feature_peer_and_process() {
    let dir = tempfile::tempdir().unwrap();
    let claims = dir.path().join("claims.jsonl");
    std::fs::write(
        &claims,
        format!("# no attack in these files\n{TRICKBOT_CLAIM}\n"),
    )
    .unwrap();
    let procs = dir.path().join("procs.jsonl");
    std::fs::write(
        &procs,
        r#"{"proto":"tcp","local":"0.0.0.0:49165","pid":7,"process":"dropper"}"#,
    )
    .unwrap();
    let o = run(&[
        "hostcheck",
        "--pcap",
        &hist("ndpi-exe_download.pcap"),
        &hist("cs-dns_query_nonexistent.pcapng"),
        &hist("ndpi-smtp.pcap"),
        &hist("ndpi-irc.pcap"),
        "--claims",
        claims.to_str().unwrap(),
        "--procs",
        procs.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = lines(&stdout(&o));
    let got: Vec<(String, String, Value)> = v
        .iter()
        .filter(|l| l["event"] == "finding")
        .map(|l| {
            (
                l["feature"].as_str().unwrap().to_string(),
                l["peer"].as_str().unwrap().to_string(),
                l["process"].clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("http-exe".into(), "144.91.69.195".into(), "dropper".into()),
            ("irc".into(), "38.229.70.20".into(), Value::Null),
            ("dns-error".into(), "8.8.8.8".into(), Value::Null),
            ("smtp-error".into(), "172.16.114.207".into(), Value::Null),
        ]
    );
    let exe = &v[0];
    assert_eq!(exe["port"], 80);
    assert_eq!(exe["evidence"][0]["frame"], 6);
    assert!(
        exe["evidence"][0]["file"]
            .as_str()
            .unwrap()
            .ends_with("ndpi-exe_download.pcap")
    );
    let dns = v.iter().find(|l| l["feature"] == "dns-error").unwrap();
    assert!(
        dns["evidence"][0]["file"]
            .as_str()
            .unwrap()
            .ends_with("cs-dns_query_nonexistent.pcapng")
    );
}

#[test]
fn benign_history_prints_a_summary_only() {
    let dir = tempfile::tempdir().unwrap();
    let claims = dir.path().join("claims.jsonl");
    std::fs::write(&claims, "").unwrap();
    let o = run(&[
        "hostcheck",
        "--pcap",
        &hist("zeek-wikipedia.pcap"),
        &hist("cs-http_google.pcapng"),
        "--claims",
        claims.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o).trim(),
        "148 frames in 2 files (10 not IP), 0 of 0 claims matched, 0 findings"
    );
}

#[test]
fn bad_claims_and_truncated_histories_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let claims = dir.path().join("claims.jsonl");
    std::fs::write(
        &claims,
        r#"{"id":"x","victim":"1.2.3.4","protocol":"tcp","from":"soon","to":"later"}"#,
    )
    .unwrap();
    let o = run(&[
        "hostcheck",
        "--pcap",
        &hist("ndpi-trickbot.pcap"),
        "--claims",
        claims.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("claim line 1"), "{}", stderr(&o));

    // The history cut in the middle of a record: the frames before the damage are audited
    // and still match.
    std::fs::write(&claims, TRICKBOT_CLAIM).unwrap();
    let whole = std::fs::read(hist("ndpi-trickbot.pcap")).unwrap();
    let cut = dir.path().join("cut.pcap");
    std::fs::write(&cut, &whole[..whole.len() / 2]).unwrap();
    let o = run(&[
        "hostcheck",
        "--pcap",
        cut.to_str().unwrap(),
        "--claims",
        claims.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("warning"), "{}", stderr(&o));
    let v = lines(&stdout(&o));
    let last = v.last().unwrap();
    assert_eq!(last["damaged_files"][0], cut.to_str().unwrap());
    assert!(last["frames"].as_u64().unwrap() < 74);
}

#[test]
fn procsnap_names_the_process_that_owns_a_socket() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let o = run(&["procsnap"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mine = format!("127.0.0.1:{port}");
    let line = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["local"] == mine.as_str())
        .unwrap_or_else(|| panic!("no line for {mine}"));
    assert_eq!(line["proto"], "tcp");
    assert_eq!(line["pid"], std::process::id());
    // The snapshot parses as --procs input.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("procs.jsonl");
    std::fs::write(&p, stdout(&o)).unwrap();
    let claims = dir.path().join("c.jsonl");
    std::fs::write(&claims, "").unwrap();
    let o = run(&[
        "hostcheck",
        "--pcap",
        &hist("zeek-wikipedia.pcap"),
        "--claims",
        claims.to_str().unwrap(),
        "--procs",
        p.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    drop(listener);
}
