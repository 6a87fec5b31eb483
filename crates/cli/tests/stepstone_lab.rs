//! The relay lab as CI runs it (root: it builds network namespaces and removes them): over
//! five seeded trials, every NAT relay and other-stack relay connection is flagged, no direct
//! one is, and the TCP-terminating relay is reported with its count as a blind spot.

mod common;

use common::{run, stderr, stdout};

#[test]
fn relay_lab_meets_the_acceptance_criteria() {
    let out = run(&["stepstone", "lab", "--trials", "5", "--seed", "7", "--json"]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let rows: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let row = |c: &str| rows.iter().find(|r| r["config"] == c).unwrap().clone();
    for c in ["nat_relay", "other_stack_relay"] {
        let r = row(c);
        assert!(r["relays_total"].as_u64().unwrap() >= 15, "{r}");
        assert_eq!(r["relays_flagged"], r["relays_total"], "{r}");
    }
    assert_eq!(
        row("nat_relay")["signals"]["hops"],
        row("nat_relay")["relays_total"]
    );
    assert!(
        row("other_stack_relay")["signals"]["ttl_class"]
            .as_u64()
            .unwrap()
            > 0
    );
    let d = row("direct");
    assert!(d["direct_total"].as_u64().unwrap() >= 15, "{d}");
    assert_eq!(d["direct_flagged"], 0, "{d}");
    let t = row("tcp_terminating_relay");
    assert!(t["relays_total"].as_u64().unwrap() >= 15, "{t}");
    assert_eq!(t["blind_spot"], true, "{t}");
    assert!(stderr(&out).contains("blind spot"));
}
