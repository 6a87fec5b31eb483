//! The relay lab as CI runs it (root: it builds network namespaces and removes them): over
//! five seeded trials, every NAT relay and other-stack relay connection is flagged, no direct
//! one is, and the TCP-terminating relay is reported with its count as a blind spot; and two
//! points of the detection-versus-delay curve.

mod common;

use common::{run, stderr, stdout};

#[test]
fn relay_lab_meets_the_acceptance_criteria() {
    let out = run(&[
        "stepstone",
        "lab",
        "--trials",
        "5",
        "--seed",
        "7",
        "--json",
        "--delays-ms",
        "0,10",
        "--curve-trials",
        "1",
    ]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let rows: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let row = |c: &str| rows.iter().find(|r| r["config"] == c).unwrap().clone();
    // The curve: with 10 ms added behind the NAT the timing test fires on every relayed
    // connection; never on the direct host's.
    let point = |d: u64| rows.iter().find(|r| r["delay_ms"] == d).unwrap().clone();
    let p10 = point(10);
    assert!(p10["relays_total"].as_u64().unwrap() >= 3, "{p10}");
    assert_eq!(p10["timing_fired"], p10["relays_total"], "{p10}");
    for d in [0, 10] {
        assert_eq!(point(d)["timing_false_alarms"], 0, "{}", point(d));
    }
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
