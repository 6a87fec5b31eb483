//! `ashiato center` as a process over mutual TLS: a victim files a claim from its Suricata
//! alerts with `ashiato report`, a client without a certificate is refused, bots report (curl
//! with their certificates), and the ranking and graph name the C&C.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use common::{Server, bin};
use serde_json::Value;

/// curl with the identity `who` (or none); returns the HTTP status and body.
fn curl(
    dir: &Path,
    addr: &str,
    who: Option<&str>,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, String) {
    let mut c = Command::new("curl");
    c.args(["-s", "-w", "\n%{http_code}", "--cacert"])
        .arg(dir.join("ca.pem"))
        .args(["-X", method, "-H", "content-type: application/json"]);
    if let Some(w) = who {
        c.arg("--cert").arg(dir.join(format!("{w}.pem")));
        c.arg("--key").arg(dir.join(format!("{w}-key.pem")));
    }
    if !body.is_empty() {
        c.args(["--data-binary", body]);
    }
    let o = c
        .arg(format!("https://{addr}{path}"))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let (b, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), b.to_string())
}

/// Starts `ashiato center` on 127.0.0.1 port 0 with `extra` flags; returns it and its address.
fn start_center(tls: &Path, keys: &Path, extra: &[&str]) -> Server {
    let mut child = bin()
        .args([
            "center",
            "--listen",
            "127.0.0.1:0",
            "--print-addr",
            "--tls-dir",
        ])
        .arg(tls)
        .arg("--key-dir")
        .arg(keys)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("center did not start: {line:?}"))
        .to_string();
    Server(child, addr)
}

fn pki(tls: &Path, names: &[&str]) {
    let mut c = bin();
    c.args(["pki", "init", "--dir"]).arg(tls);
    for n in names {
        c.args(["--name", n]);
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

const CLAIM: &str = r#"{"claim":{"id":"c1","victim":"203.0.113.5","protocol":"tcp","port":80,"from":"2026-01-01T10:00:00Z","to":"2026-01-01T10:05:00Z"},
    "evidence":[{"timestamp":"2026-01-01T10:01:02.123456+0000","event_type":"alert","src_ip":"198.51.100.9","dest_ip":"203.0.113.5","dest_port":80,"proto":"TCP"}]}"#;

fn bot_report(host: &str, claim: &str) -> String {
    format!(
        r#"{{"report_id":"r1","report":{{"reporter":"{host}","incident":"{claim}","attack_packets":2000,"attacked_port":80,
        "records":[{{"time_ns":1,"proto":"tcp","dst":"45.33.32.156","port":6667,"process":"bot","features":["irc"]}}]}}}}"#
    )
}

#[test]
fn a_killed_center_comes_back_with_its_claims_reports_and_versions() {
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("tls");
    pki(&tls, &["center", "victim-a", "host-1", "host-2"]);
    let keys = dir.path().join("keys");
    let db = dir.path().join("state/center.db");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let store = ["--store", db.to_str().unwrap()];
    let s = start_center(&tls, &keys, &store);
    let (code, _) = curl(&tls, &s.1, Some("victim-a"), "POST", "/v1/claims", CLAIM);
    assert_eq!(code, 201);
    let (code, _) = curl(
        &tls,
        &s.1,
        Some("host-1"),
        "POST",
        "/v1/reports",
        &bot_report("host-1", "c1"),
    );
    assert_eq!(code, 202);
    let read = |addr: &str| {
        ["/v1/claims?since=0", "/v1/ranking/c1", "/v1/enroll"].map(|p| {
            let (code, body) = curl(&tls, addr, Some("host-2"), "GET", p, "");
            assert_eq!(code, 200, "{p}: {body}");
            body
        })
    };
    let before = read(&s.1);
    assert!(before[1].contains("45.33.32.156"), "{}", before[1]);
    drop(s); // SIGKILL: no orderly shutdown.
    assert!(db.exists());

    let s = start_center(&tls, &keys, &store);
    assert_eq!(read(&s.1), before);
    let (code, _) = curl(
        &tls,
        &s.1,
        Some("host-1"),
        "POST",
        "/v1/reports",
        &bot_report("host-1", "c1"),
    );
    assert_eq!(code, 409, "a replay after the restart");
    drop(s);

    // Offline export from the store alone, every format.
    let export = |format: &str, extra: &[&str]| {
        let out = dir.path().join(format!("export.{format}"));
        let o = bin()
            .args(["center", "export", "--store", db.to_str().unwrap()])
            .args(["--incident", "c1", "--format", format, "--out"])
            .arg(&out)
            .args(extra)
            .output()
            .unwrap();
        (o, std::fs::read_to_string(&out).unwrap_or_default())
    };
    let (o, json) = export("json", &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let g: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(g["servers"][0]["server"], "45.33.32.156");
    assert_eq!(g["bot_server"][0]["records"][0]["port"], 6667);
    let (_, dot) = export("dot", &[]);
    assert!(dot.contains("\"host-1\" -> \"45.33.32.156\""), "{dot}");
    let (_, html) = export("html", &[]);
    assert!(html.contains("function draw()") && !html.contains("/static/graph.js"));
    let (_, stix) = export("stix", &[]);
    assert_eq!(
        serde_json::from_str::<Value>(&stix).unwrap()["type"],
        "bundle"
    );
    let (o, _) = export("xarf", &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--abuse-contact"));
    let asn = dir.path().join("pfx2as.txt");
    std::fs::write(&asn, "45.33.32.0\t24\t63949\n").unwrap();
    let (o, xarf) = export(
        "xarf",
        &[
            "--abuse-contact",
            "Example CSIRT <abuse@example.net>",
            "--asn-file",
            asn.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let x: Value = serde_json::from_str(&xarf).unwrap();
    assert_eq!(x["groups"][0]["asn"], 63949);
    assert_eq!(x["groups"][0]["notices"][0]["type"], "botnet");
    std::fs::write(&asn, "45.33.32.0\t24\t63949\n45.33.32.1\t24\t1\n").unwrap();
    let (o, _) = export("ranking", &["--asn-file", asn.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("line 2"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = bin()
        .args(["center", "export", "--store", db.to_str().unwrap()])
        .args(["--incident", "nope", "--format", "ranking"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no claim \"nope\""));
    // A mistyped store path is an error, and no empty store is made there.
    let missing = dir.path().join("mistyped.db");
    let o = bin()
        .args(["center", "export", "--store", missing.to_str().unwrap()])
        .args(["--incident", "c1", "--format", "ranking"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no such store file"));
    assert!(!missing.exists());
    let o = bin()
        .args(["center", "export", "--store"])
        .arg(format!("sqlite:{}", db.display()))
        .args(["--incident", "c1", "--format", "ranking"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // A store that cannot be opened stops the center at start.
    let o = bin()
        .args(["center", "--listen", "127.0.0.1:0", "--tls-dir"])
        .arg(&tls)
        .arg("--key-dir")
        .arg(&keys)
        .args([
            "--store",
            dir.path().join("missing/dir/c.db").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--store") && err.contains("missing/dir"),
        "{err}"
    );
}

#[test]
fn victims_claim_bots_report_and_the_center_ranks_the_cc() {
    assert!(
        Command::new("curl").arg("--version").output().is_ok(),
        "curl is not installed: apt-get install curl (scripts/test.sh does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("tls");
    let o = bin()
        .args(["pki", "init", "--dir", tls.to_str().unwrap()])
        .args([
            "--name", "center", "--name", "victim-a", "--name", "host-1", "--name", "host-2",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let server = start_center(&tls, &dir.path().join("keys"), &[]);
    let addr = server.1.clone();

    let claim = r#"{"claim":{"id":"c1","victim":"203.0.113.5","protocol":"tcp","port":80,"from":"2026-01-01T10:00:00Z","to":"2026-01-01T10:05:00Z"},
        "evidence":[{"timestamp":"2026-01-01T10:01:02.123456+0000","event_type":"alert","src_ip":"198.51.100.9","dest_ip":"203.0.113.5","dest_port":80,"proto":"TCP"}]}"#;
    // Without a client certificate the TLS handshake itself fails.
    let (code, _) = curl(&tls, &addr, None, "POST", "/v1/claims", claim);
    assert_eq!(code, 0);
    // The victim files the claim from its Suricata alerts: shown, then sent with --yes.
    let eve = dir.path().join("eve.json");
    std::fs::write(
        &eve,
        concat!(
            r#"{"timestamp":"2026-01-01T10:01:02.123456+0000","event_type":"alert","src_ip":"198.51.100.9","src_port":40000,"dest_ip":"203.0.113.5","dest_port":80,"proto":"TCP"}"#,
            "\n",
            r#"{"timestamp":"2026-01-01T10:04:02.000000+0000","event_type":"alert","src_ip":"198.51.100.10","src_port":40001,"dest_ip":"203.0.113.5","dest_port":80,"proto":"TCP"}"#,
            "\n"
        ),
    )
    .unwrap();
    let report = |extra: &[&str], stdin: &str| {
        let mut c = bin()
            .args([
                "report",
                "--center",
                &addr,
                "--eve",
                eve.to_str().unwrap(),
                "--id-prefix",
                "c",
            ])
            .args(["--tls-dir", tls.to_str().unwrap(), "--name", "victim-a"])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut c.stdin.take().unwrap(), stdin.as_bytes()).unwrap();
        c.wait_with_output().unwrap()
    };
    let o = report(&[], "n\n");
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success());
    assert!(
        out.contains(r#""id":"c-1","victim":"203.0.113.5","protocol":"tcp","port":80"#),
        "{out}"
    );
    assert!(!out.contains("198.51.100.9"), "{out}");
    assert!(out.contains("nothing sent"), "{out}");
    let o = report(&["--yes"], "");
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{out} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains("claim c-1 accepted as list version 1"),
        "{out}"
    );
    // Filing it again: the id is taken.
    let o = report(&["--yes"], "");
    assert_eq!(o.status.code(), Some(1));
    let (code, body) = curl(&tls, &addr, Some("host-1"), "GET", "/v1/claims?since=0", "");
    assert_eq!(code, 200);
    let delta: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(delta["to"], 1);
    assert!(!body.contains("203.0.113.5"));
    assert!(dir.path().join("keys/sign.pub").exists());
    // Enrolment over mutual TLS hands an agent the list key and the signing key.
    let (code, body) = curl(&tls, &addr, Some("host-1"), "GET", "/v1/enroll", "");
    assert_eq!(code, 200, "{body}");
    let e: Value = serde_json::from_str(&body).unwrap();
    let key_hex: String = std::fs::read(dir.path().join("keys/list.key"))
        .unwrap()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(e["list_key"], key_hex.as_str());
    let public = std::fs::read_to_string(dir.path().join("keys/sign.pub")).unwrap();
    assert_eq!(e["sign_public_key"], public.trim());
    assert_eq!(e["version"], 1);
    for h in ["host-1", "host-2"] {
        let report = format!(
            r#"{{"report_id":"r1","report":{{"reporter":"{h}","incident":"c-1","attack_packets":2000,"attacked_port":80,
            "records":[{{"time_ns":1,"proto":"tcp","dst":"45.33.32.156","port":6667,"process":"bot","features":["irc"]}}]}}}}"#
        );
        let (code, body) = curl(&tls, &addr, Some(h), "POST", "/v1/reports", &report);
        assert_eq!(code, 202, "{body}");
    }
    let (code, body) = curl(&tls, &addr, Some("victim-a"), "GET", "/v1/ranking/c-1", "");
    assert_eq!(code, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v[0]["server"], "45.33.32.156");
    assert_eq!(v[0]["reporters"], 2);
    let (code, body) = curl(&tls, &addr, Some("victim-a"), "GET", "/v1/graph/c-1", "");
    assert_eq!(code, 200);
    assert!(body.contains("\"host-2\" -> \"45.33.32.156\""), "{body}");
    // Graphviz renders it, when installed.
    if let Ok(mut d) = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
    {
        std::io::Write::write_all(&mut d.stdin.take().unwrap(), body.as_bytes()).unwrap();
        let o = d.wait_with_output().unwrap();
        assert!(o.status.success() && String::from_utf8_lossy(&o.stdout).contains("<svg"));
    }

    // The trickbot C&C as a claim, then a host audits its capture against the published,
    // signed, hashed list: it took part (exit 3), and the victim's address never travelled.
    let eve2 = dir.path().join("eve2.json");
    std::fs::write(
        &eve2,
        r#"{"timestamp":"2020-12-29T18:21:50.000000+0000","event_type":"alert","src_ip":"10.12.29.101","src_port":61318,"dest_ip":"82.118.225.196","dest_port":7080,"proto":"TCP"}"#,
    )
    .unwrap();
    let o = bin()
        .args([
            "report",
            "--center",
            &addr,
            "--eve",
            eve2.to_str().unwrap(),
            "--id-prefix",
            "cc",
        ])
        .args([
            "--tls-dir",
            tls.to_str().unwrap(),
            "--name",
            "victim-a",
            "--yes",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (code, body) = curl(&tls, &addr, Some("host-1"), "GET", "/v1/claims?since=0", "");
    assert_eq!(code, 200);
    assert!(!body.contains("82.118.225.196"));
    let list = dir.path().join("list.json");
    std::fs::write(&list, &body).unwrap();
    let keys = dir.path().join("keys");
    let hostcheck = |list: &Path| {
        bin()
            .args(["hostcheck", "--pcap"])
            .arg(common::repo("tests/data/hosttrace/ndpi-trickbot.pcap"))
            .arg("--list")
            .arg(list)
            .arg("--list-pub")
            .arg(keys.join("sign.pub"))
            .arg("--list-key")
            .arg(keys.join("list.key"))
            .arg("--json")
            .output()
            .unwrap()
    };
    let o = hostcheck(&list);
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let first: Value =
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(first["claim"], "cc-1");
    assert_eq!(first["packets"], 28);
    assert_eq!(first["victim"], Value::Null);
    // A list altered on the way fails its signature.
    let forged = dir.path().join("forged.json");
    std::fs::write(&forged, body.replacen("\"cc-1\"", "\"cc-9\"", 1)).unwrap();
    let o = hostcheck(&forged);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("bad signature"));
}
