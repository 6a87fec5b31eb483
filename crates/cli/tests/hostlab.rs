//! Host-based bot and C&C tracing end to end, as CI runs it (root: `ashiato hostlab` builds
//! network namespaces and removes them): bots on a real ngircd C&C download an executable
//! and flood the victim partly spoofed, the victim's claim from its capture is accepted,
//! each host's `ashiato agent` audits its history and reports, and the center ranks the C&C
//! first and the download server second, with only the bot process behind them. The same
//! by the forensic path (tcpdump, /proc samples, `hostcheck`). Then the failure path: an
//! operator allow list that names the C&C makes the lab exit 3 with the reason, and the
//! namespaces are gone either way.

mod common;

use std::process::{Output, Stdio};

use common::{bin, stderr, stdout};
use serde_json::Value;

/// Runs the lab; returns its output and the namespaces of its pid still present after it.
fn lab(args: &[&str]) -> (Output, Vec<String>) {
    let child = bin()
        .arg("hostlab")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ashiato hostlab");
    let tag = format!("{}x", child.id() % 100_000);
    let out = child.wait_with_output().unwrap();
    let list = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    let left = String::from_utf8_lossy(&list.stdout)
        .lines()
        .filter(|l| l.starts_with("hl") && l.get(3..).is_some_and(|r| r.starts_with(&tag)))
        .map(str::to_string)
        .collect();
    (out, left)
}

#[test]
fn the_cc_is_ranked_first_and_only_the_bot_process_is_reported() {
    let keep = tempfile::tempdir().unwrap();
    let dir = keep.path().join("run");
    let (out, left) = lab(&[
        "--bots",
        "2",
        "--benign",
        "2",
        "--seed",
        "5",
        "--json",
        "--keep",
        dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(left.is_empty(), "namespaces left behind: {left:?}");
    let v: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    let r = v["ranking"].as_array().unwrap();
    assert_eq!(r.len(), 2, "only the two malicious servers are ranked: {v}");
    assert_eq!(
        (r[0]["rank"].as_u64(), r[0]["server"].as_str()),
        (Some(1), Some("198.51.100.10"))
    );
    assert_eq!(r[0]["fqdns"][0], "cc.botnet.lab");
    assert_eq!(r[0]["features"][0], "irc");
    assert_eq!(r[0]["ports"][0], 6667);
    assert_eq!(
        (r[1]["rank"].as_u64(), r[1]["server"].as_str()),
        (Some(2), Some("203.0.113.80"))
    );
    assert_eq!(r[1]["fqdns"][0], "dl.botnet.lab");
    assert_eq!(r[1]["features"][0], "http-exe");
    for s in r {
        assert_eq!(s["reporters"], 2, "{s}");
        assert_eq!(s["processes"], serde_json::json!(["ircbot"]), "{s}");
    }
    let hosts = v["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 4);
    let mut curl_seen = false;
    for h in hosts {
        let procs: Vec<&str> = h["processes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        curl_seen |= procs.contains(&"curl");
        if h["bot"] == true {
            assert_eq!(h["reported"], true, "{h}");
            assert!(procs.contains(&"ircbot"), "{h}");
            // "got N bytes (elf); flooded N (M spoofed)": about half of the SYNs spoofed.
            let said = h["bot_said"].as_str().unwrap();
            assert!(
                said.starts_with("got ") && said.contains("(elf); flooded "),
                "{h}"
            );
            let (sent, spoofed) = said
                .split("flooded ")
                .nth(1)
                .and_then(|t| t.strip_suffix(" spoofed)"))
                .and_then(|t| t.split_once(" ("))
                .map(|(a, b)| (a.parse::<u64>().unwrap(), b.parse::<u64>().unwrap()))
                .unwrap();
            assert!(spoofed * 3 > sent && spoofed * 3 < 2 * sent, "{h}");
            // A few hundred SYNs a second for 3 s, spoofed or not, all in the history.
            assert!(h["attack_packets"].as_u64().unwrap() > 500, "{h}");
        } else {
            // The benign hosts visited the victim's shop: they match the claim with a few
            // packets, have no suspicious process, and report no process records (the agent
            // may report the packet count alone).
            assert!(h["attack_packets"].as_u64().unwrap() > 0, "{h}");
            assert!(h["attack_packets"].as_u64().unwrap() < 200, "{h}");
            assert_eq!(h["records"], serde_json::json!([]), "{h}");
            assert!(!procs.contains(&"ircbot"), "{h}");
        }
    }
    // The benign processes were attributed (the audit knew them) and still not reported.
    assert!(curl_seen, "{v}");
    // The victim's claim: accepted, and naming no source address (half were spoofed).
    let report = std::fs::read_to_string(dir.join("victim-report.txt")).unwrap();
    assert!(report.contains("claim incident-1 accepted"), "{report}");
    let claim: Value = report
        .lines()
        .find_map(|l| serde_json::from_str(l.trim().split("  (").next()?).ok())
        .unwrap();
    let keys: Vec<&str> = claim
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["fqdn", "from", "id", "port", "protocol", "to", "victim"],
        "{claim}"
    );
    assert_eq!(
        (claim["victim"].as_str(), claim["port"].as_u64()),
        (Some("198.18.0.5"), Some(80))
    );
    // The center's audit log holds the accepted claim and every bot host's report.
    let audit = std::fs::read_to_string(dir.join("center-audit.log")).unwrap();
    assert!(
        audit.contains("victim claim incident-1: accepted as version 1"),
        "{audit}"
    );
    for h in hosts.iter().filter(|h| h["bot"] == true) {
        let name = h["name"].as_str().unwrap();
        assert!(
            audit
                .lines()
                .any(|l| l.contains(&format!(" {name} report "))
                    && l.ends_with(" for incident-1: accepted")),
            "{name}: {audit}"
        );
    }
}

#[test]
fn an_allow_list_naming_the_cc_fails_the_lab_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let allow = dir.path().join("allow.txt");
    std::fs::write(&allow, "# the operator's servers\n198.51.100.10\n").unwrap();
    let (out, left) = lab(&[
        "--bots",
        "1",
        "--benign",
        "1",
        "--center-allow",
        allow.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("the C&C 198.51.100.10 is not ranked"),
        "{}",
        stderr(&out)
    );
    assert!(left.is_empty(), "namespaces left behind: {left:?}");
}

#[test]
fn the_forensic_path_ranks_the_cc_first_too() {
    let (out, left) = lab(&[
        "--bots",
        "2",
        "--benign",
        "1",
        "--seed",
        "3",
        "--json",
        "--forensic",
    ]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(left.is_empty(), "namespaces left behind: {left:?}");
    let v: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v["ranking"][0]["server"], "198.51.100.10", "{v}");
    assert_eq!(
        v["ranking"][0]["processes"],
        serde_json::json!(["ircbot"]),
        "{v}"
    );
    assert_eq!(v["ranking"][1]["server"], "203.0.113.80", "{v}");
    for h in v["hosts"].as_array().unwrap() {
        // Here the lab posts only reports with records: exactly the bots report.
        assert_eq!(h["reported"], h["bot"], "{h}");
    }
}
