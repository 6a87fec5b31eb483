//! `ashiato lab`: a federation of real controllers and probes in one process, scored against
//! the scenario's ground truth.

mod common;

use common::{repo, run, stderr, stdout};

fn lab_json(args: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap().to_string();
    let mut all = vec!["lab", "--json", "--traces", "3", "--out", &out];
    all.extend_from_slice(args);
    let o = run(&all);
    assert!(o.status.success(), "lab {args:?} failed: {}", stderr(&o));
    serde_json::from_str(&stdout(&o)).expect("one JSON object")
}

fn num(v: &serde_json::Value, k: &str) -> f64 {
    v[k].as_f64()
        .unwrap_or_else(|| panic!("{k} missing in {v}"))
}

#[test]
fn default_lab_finds_every_origin() {
    let v = lab_json(&[]);
    assert_eq!(num(&v, "accuracy"), 1.0);
    assert_eq!(num(&v, "wrong"), 0.0);
    assert_eq!(num(&v, "origins_found"), num(&v, "origins_total"));
    assert!(num(&v, "origins_total") >= 4.0);
    assert_eq!(num(&v, "detected"), num(&v, "attributed"));
    assert!(num(&v, "median_ms") > 0.0 && num(&v, "p99_ms") >= num(&v, "median_ms"));
    assert_eq!(v["mode"], "recursive");
    assert_eq!(num(&v, "domains"), 13.0);
    assert!(num(&v, "rss_bytes") > 0.0);
    assert_eq!(v["reuse_connections"], true);
    // The victim's controller stored the traces of the detected packets in the store.
    assert!(num(&v, "stored_traces") >= 1.0, "{v}");
    assert!(v["store"].as_str().unwrap().ends_with("traces.db"), "{v}");
}

#[test]
fn trial_chain_recursive_and_mesh_are_exact() {
    let v = lab_json(&[
        "--topology",
        "chain",
        "--domains",
        "13",
        "--mode",
        "recursive",
    ]);
    assert_eq!(num(&v, "accuracy"), 1.0);
    assert_eq!(num(&v, "wrong"), 0.0);
    assert_eq!(num(&v, "mean_path_fraction"), 1.0);
    let v = lab_json(&["--topology", "mesh", "--domains", "15", "--mode", "mesh"]);
    assert_eq!(num(&v, "accuracy"), 1.0);
    assert_eq!(num(&v, "wrong"), 0.0);
    assert_eq!(v["mode"], "mesh");
    // The same with connections reused between services.
    let v = lab_json(&[
        "--topology",
        "mesh",
        "--domains",
        "15",
        "--mode",
        "mesh",
        "--handshake-per-request",
    ]);
    assert_eq!(num(&v, "accuracy"), 1.0);
    assert_eq!(v["reuse_connections"], false);
}

#[test]
fn half_participation_never_blames_the_wrong_domain() {
    let file = repo("crates/trace/tests/data/snap-excerpt-as2500.txt");
    let v = lab_json(&[
        "--topology",
        file.to_str().unwrap(),
        "--domains",
        "120",
        "--participation",
        "0.5",
    ]);
    assert_eq!(num(&v, "wrong"), 0.0);
    assert_eq!(
        num(&v, "gap_packets") + num(&v, "attributed"),
        num(&v, "detected")
    );
    assert_eq!(num(&v, "participants"), 60.0);
}

/// The conditions of a real federation together: probes sized at 10⁻³ for their load,
/// background, duplicated packets, multipath, dead probes, half participation, delay
/// between domains. Gaps may grow; a wrong origin never appears, and no more packets are
/// attributed than the federation could find.
#[test]
fn hard_conditions_never_blame_the_wrong_domain() {
    let file = repo("crates/trace/tests/data/snap-excerpt-as2500.txt");
    for mode in ["recursive", "mesh"] {
        let v = lab_json(&[
            "--topology",
            file.to_str().unwrap(),
            "--domains",
            "60",
            "--participation",
            "0.6",
            "--mode",
            mode,
            "--probe-fpr",
            "1e-3",
            "--background",
            "50",
            "--duplicates",
            "0.2",
            "--multipath",
            "0.3",
            "--probe-failures",
            "0.05",
            "--link-delay-ms",
            "2",
            "--seed",
            "3",
        ]);
        // A packet seen through probes sized at 10⁻³ may ride on its origin's evidence and
        // say so (its own chance of being false, about 10⁻³); none is wrong with confidence.
        assert_eq!(num(&v, "wrong_confident"), 0.0, "{mode}: {v}");
        assert!(
            num(&v, "wrong") <= 0.01 * num(&v, "detected"),
            "{mode}: {v}"
        );
        assert!(
            num(&v, "accuracy") <= num(&v, "accuracy_bound") + 1e-9,
            "{mode}: {v}"
        );
        let c = &v["conditions"];
        assert!(num(c, "duplicated_packets") > 0.0, "{c}");
        assert!(num(c, "probes_down") > 0.0, "{c}");
        assert_eq!(num(c, "probe_fpr"), 1e-3);
        assert_eq!(num(c, "link_delay_ms"), 2.0);
        assert!(v["truncated"].is_boolean() && v["capped"].is_number());
        assert!(num(&v, "localized") >= num(&v, "accuracy"));
    }
}

/// A core-only federation (the 8 % with the most customers) localizes packets it cannot
/// attribute to small candidate sets behind its gaps.
#[test]
fn a_core_federation_reports_candidates_behind_its_gaps() {
    let file = repo("crates/trace/tests/data/snap-excerpt-as2500.txt");
    let v = lab_json(&[
        "--topology",
        file.to_str().unwrap(),
        "--domains",
        "100",
        "--participation",
        "0.08",
        "--participants",
        "core",
    ]);
    assert_eq!(num(&v, "wrong"), 0.0, "{v}");
    assert_eq!(v["conditions"]["participants"], "core");
    assert!(num(&v, "mean_candidates") >= 1.0, "{v}");
    assert!(num(&v, "localized") >= num(&v, "accuracy"), "{v}");
}

#[test]
fn federation_beyond_lists_the_skip_targets_from_a_topology() {
    let dir = tempfile::tempdir().unwrap();
    // 1 provider of 2 provider of 3; 4 another provider of 2; 1 and 3 and 4 participate.
    let topo = dir.path().join("t.txt");
    std::fs::write(&topo, "1|2|-1\n2|3|-1\n4|2|-1\n").unwrap();
    let parts = dir.path().join("p.txt");
    std::fs::write(&parts, "1 10.0.0.1:7443\n3\n4 10.0.0.4:7443\n").unwrap();
    let o = run(&[
        "federation",
        "beyond",
        "--topology",
        topo.to_str().unwrap(),
        "--participants",
        parts.to_str().unwrap(),
        "--domain",
        "3",
    ]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    assert!(out.contains("[[neighbour]]\nasn = 2\n"), "{out}");
    assert!(
        out.contains("{ asn = 1, via = [2], controller = \"10.0.0.1:7443\" }"),
        "{out}"
    );
    assert!(
        out.contains("{ asn = 4, via = [2], controller = \"10.0.0.4:7443\" }"),
        "{out}"
    );
    let o = run(&[
        "federation",
        "beyond",
        "--topology",
        topo.to_str().unwrap(),
        "--participants",
        parts.to_str().unwrap(),
        "--json",
    ]);
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines.iter().all(|l| l["capped"] == false));
    // An empty participants file says so instead of printing nothing.
    std::fs::write(&parts, "# nobody yet\n").unwrap();
    let o = run(&[
        "federation",
        "beyond",
        "--topology",
        topo.to_str().unwrap(),
        "--participants",
        parts.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no participating domain"),
        "{}",
        stderr(&o)
    );
    // A participant the topology does not know is bad usage.
    std::fs::write(&parts, "99\n").unwrap();
    let o = run(&[
        "federation",
        "beyond",
        "--topology",
        topo.to_str().unwrap(),
        "--participants",
        parts.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn a_bad_topology_file_is_bad_usage_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, "# caida\n1|2|-1\n3|4|7\n").unwrap();
    let o = run(&["lab", "--topology", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("bad.txt") && e.contains("line 3"), "{e}");
    let o = run(&["lab", "--topology", "chain", "--domains", "9999"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("at most 5000"));
}

#[test]
fn text_output_shows_the_attack_tree() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(&[
        "lab",
        "--traces",
        "2",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let t = stdout(&o);
    assert!(t.contains("attack tree (recursive mode)"), "{t}");
    // 64532 reaches the victim over both tier-1s (default_lab's docs).
    assert!(
        t.contains("AS64530 ← AS64520 ← AS64512 ← AS64514 ← AS64523 ← AS64532"),
        "{t}"
    );
    assert!(t.contains("accuracy    1.000"), "{t}");
    assert!(t.contains("evidence for one packet"), "{t}");
    assert!(dir.path().join("graph.json").exists() && dir.path().join("graph.dot").exists());
    assert!(stderr(&o).contains("starting"));
}

#[test]
fn peering_skip_is_marked_in_the_tree() {
    // Seed 5: the victim's provider AS701 runs no ashiato; one origin is reached around it.
    let file = repo("crates/trace/tests/data/snap-excerpt-as2500.txt");
    let dir = tempfile::tempdir().unwrap();
    let o = run(&[
        "lab",
        "--topology",
        file.to_str().unwrap(),
        "--domains",
        "40",
        "--participation",
        "50%",
        "--seed",
        "5",
        "--traces",
        "1",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let t = stdout(&o);
    assert!(t.contains("⇠(skipped AS701)⇠"), "{t}");
    assert!(t.contains("gap after"), "{t}");
    assert!(t.contains(" 0 wrong"), "{t}");
    assert!(!t.contains("NOT a true origin"), "{t}");
}
