//! `ashiato ca`, `ashiato controller` and `ashiato trace` as an operator runs them: two
//! domains as processes over mutual TLS, probes over the bundled masscan capture.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::{MASSCAN, Server, bin, data, run, stderr, stdout, wait_for};

/// Starts `ashiato controller --config FILE --print-addr` and waits for its address.
fn spawn_controller(config: &Path) -> Server {
    let mut cmd = bin();
    cmd.args(["controller", "--print-addr", "--config"])
        .arg(config)
        .stderr(Stdio::null());
    common::spawn_listening(cmd)
}

fn probe(dir: &Path, key: &Path) -> Server {
    let s = common::spawn_probe(
        &[
            "--pcap",
            data(MASSCAN).to_str().unwrap(),
            "--tls-dir",
            dir.join("pki").to_str().unwrap(),
            "--identity",
            "probe",
            "--key-file",
            key.to_str().unwrap(),
        ],
        Stdio::null(),
    );
    // Wait until the capture is read: the packet traced below is found.
    wait_for(
        "the probe to read its capture",
        Duration::from_secs(30),
        || {
            let o = run(&[
                "probe",
                "query",
                "--probe",
                &s.1,
                "--pcap",
                data(MASSCAN).to_str().unwrap(),
                "--index",
                "501",
                "--key-file",
                key.to_str().unwrap(),
                "--tls-dir",
                dir.join("pki").to_str().unwrap(),
                "--identity",
                "operator",
            ]);
            (o.status.success() && stdout(&o).contains(" SEEN ")).then_some(())
        },
    );
    s
}

fn domain_file(
    dir: &Path,
    asn: u32,
    probe: (&str, &str),
    neighbour: (u32, &str),
) -> std::path::PathBuf {
    let text = format!(
        "[domain]\nasn = {asn}\nlisten = \"127.0.0.1:0\"\nkey_file = \"fed.key\"\n\n[tls]\ndir = \"pki\"\nname = \"as{asn}\"\n\n[trace]\ndeadline_ms = 3000\n\n[[probe]]\nname = \"p{asn}\"\naddress = \"{}\"\nwatches = \"{}\"\n\n[[neighbour]]\nasn = {}\ncontroller = \"{}\"\n",
        probe.0, probe.1, neighbour.0, neighbour.1
    );
    let p = dir.join(format!("as{asn}.toml"));
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn two_domains_trace_a_packet_to_its_origin_and_a_dead_one_is_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pki = d.join("pki");
    let o = run(&[
        "ca",
        "init",
        "--dir",
        pki.to_str().unwrap(),
        "--federation",
        "lab",
        "--asn",
        "64501",
        "--name",
        "operator",
        "--name",
        "probe",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("as64501.pem (server and client)"),
        "{}",
        stdout(&o)
    );
    let o = run(&[
        "ca",
        "issue",
        "--dir",
        pki.to_str().unwrap(),
        "--asn",
        "64502",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(pki.join("as64502.pem").exists() && pki.join("as64502-key.pem").exists());
    let key = d.join("fed.key");
    let o = run(&["key", "generate", "--out", key.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));

    // B (64502): its edge saw the masscan SYNs. A (64501): its link to B saw them.
    let pb = probe(d, &key);
    let pa = probe(d, &key);
    let b_cfg = domain_file(d, 64502, (&pb.1, "edge"), (64501, "127.0.0.1:9"));
    let b = spawn_controller(&b_cfg);
    let a_cfg = domain_file(d, 64501, (&pa.1, "link:64502"), (64502, &b.1));
    // A follows DarkFlow events (written later) as trace triggers.
    let mut text = std::fs::read_to_string(&a_cfg).unwrap();
    text.push_str("\n[triggers]\ndarkflow_events = \"events.jsonl\"\n");
    std::fs::write(&a_cfg, text).unwrap();
    let a = spawn_controller(&a_cfg);

    let trace = |extra: &[&str]| {
        let mut args = vec![
            "trace",
            "--controller",
            &a.1,
            "--pcap",
            data(MASSCAN).to_str().unwrap(),
            "--index",
            "500",
            "--index",
            "501",
            "--uncertainty-ms",
            "100",
            "--key-file",
            key.to_str().unwrap(),
            "--tls-dir",
            pki.to_str().unwrap(),
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
        args.extend(extra.iter().map(|s| s.to_string()));
        bin().args(&args).output().unwrap()
    };
    let o = trace(&[]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("origin AS64502: 2 packets"), "{out}");
    assert!(
        out.contains("packet 0: AS64501 → AS64502  [origin AS64502, chance false "),
        "{out}"
    );
    assert!(out.contains("AS64502 → AS64501: 2 packets"), "{out}");
    let dot = d.join("g.dot");
    let o = trace(&["--json", "--mode", "mesh", "--dot", dot.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["mode"], "mesh");
    assert_eq!(v["graph"]["origins"][0]["domain"], 64502);
    // The victim's controller stored it in its default SQLite store, next to its domain file.
    assert_eq!(v["stored"], true, "{v}");
    let id = v["trace_id"].as_str().unwrap().to_string();
    let db = d.join("traces.db");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let rec = rt.block_on(async {
        let s = ashiato_store::Store::open(db.to_str().unwrap())
            .await
            .unwrap();
        s.trace(&id).await.unwrap()
    });
    let rec = rec.expect("the trace is in traces.db");
    assert_eq!(rec.mode, "mesh");
    assert_eq!(rec.origins[0].domain, 64502);
    assert!(rec.observations.iter().any(|o| o.verdict == "seen"));
    assert!(
        std::fs::read_to_string(&dot)
            .unwrap()
            .starts_with("digraph")
    );

    // DarkFlow as a trigger: with the federation key every DarkFlow line names its first
    // SYN's digest; A follows the file and traces them as one incident, to B.
    let o = run(&[
        "darkflow",
        "--pcap",
        data(MASSCAN).to_str().unwrap(),
        "--json",
        "--key-file",
        key.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let digests = run(&[
        "digest",
        "--pcap",
        data(MASSCAN).to_str().unwrap(),
        "--json",
        "--key-file",
        key.to_str().unwrap(),
    ]);
    let sent: std::collections::BTreeSet<String> = stdout(&digests)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["digest"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let dark: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["event"] == "darkflow")
        .collect();
    assert_eq!(dark.len(), 1001);
    for v in &dark {
        let dg = v["digest"]
            .as_str()
            .expect("every DarkFlow names its SYN's digest");
        assert!(
            sent.contains(dg),
            "{dg} is not the digest of a packet of the capture"
        );
    }
    std::fs::write(d.join("events.jsonl"), stdout(&o)).unwrap();
    let rt2 = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let traced = wait_for(
        "the DarkFlow trace in the store",
        Duration::from_secs(30),
        || {
            rt2.block_on(async {
                let s = ashiato_store::Store::open(db.to_str().unwrap())
                    .await
                    .ok()?;
                let list = s
                    .traces(&ashiato_store::TraceFilter::default())
                    .await
                    .ok()?;
                let t = list.into_iter().find(|t| t.packets == 1001)?;
                s.trace(&t.id).await.ok()?
            })
        },
    );
    assert_eq!(traced.origins[0].domain, 64502);
    assert_eq!(traced.origins[0].packets, 1001);

    // B gone: the trace still answers, with a gap, and exits 4.
    drop(b);
    let o = trace(&[]);
    assert_eq!(o.status.code(), Some(4), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("unreachable"), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("2 of 2 packets end in a gap"),
        "{}",
        stderr(&o)
    );
    drop(a);
}

#[test]
fn a_bad_domain_file_is_refused_naming_the_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("d.toml");
    std::fs::write(
        &p,
        "[domain]\nasn = 64501\nlisten = \"127.0.0.1:0\"\nkey_file = \"k\"\ndev_insecure = true\n\n[[probe]]\nname = \"x\"\naddress = \"127.0.0.1:1\"\nwatches = \"link:64999\"\n",
    )
    .unwrap();
    let o = run(&["controller", "--config", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("d.toml:10: probe[0].watches"), "{e}");
    // A missing key file is named before anything is served.
    std::fs::write(
        &p,
        "[domain]\nasn = 64501\nlisten = \"127.0.0.1:0\"\nkey_file = \"absent.key\"\ndev_insecure = true\n",
    )
    .unwrap();
    let o = run(&["controller", "--config", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("absent.key"), "{}", stderr(&o));
    // An address that cannot be bound: one already in use.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    std::fs::write(dir.path().join("k"), "00112233445566778899aabbccddeeff\n").unwrap();
    std::fs::write(
        &p,
        format!(
            "[domain]\nasn = 64501\nlisten = \"{addr}\"\nkey_file = \"k\"\ndev_insecure = true\n"
        ),
    )
    .unwrap();
    let o = run(&["controller", "--config", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(&format!("listen = {addr}")),
        "{}",
        stderr(&o)
    );
}
