//! Bad flag values are usage errors: exit code 2 and clap's message naming the flag, before
//! any work starts (no capture is opened, no port bound, no table allocated).

mod common;

use common::{run, stderr};

/// The arguments of a `probe run` that would work, with `flag value` in place of its own.
fn probe_run_with(flag: &str, value: &str) -> Vec<String> {
    let mut args: Vec<String> = [
        "probe",
        "run",
        "--pcap",
        "does-not-exist.pcap",
        "--dev-insecure",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if flag != "--listen" {
        args.extend(["--listen".into(), "127.0.0.1:0".into()]);
    }
    args.extend([flag.to_string(), value.to_string()]);
    args
}

/// Runs `args` and checks that it is refused as bad usage with `flag` named on stderr.
fn assert_usage_error(args: &[String], flag: &str) {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run(&refs);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    assert!(
        err.contains(flag),
        "{args:?}: the message should name {flag}: {err}"
    );
    assert!(
        err.contains("invalid value"),
        "{args:?}: clap's message: {err}"
    );
}

#[test]
fn probe_run_refuses_bad_table_values_at_parse_time() {
    for (flag, value) in [
        ("--epoch", "5parsecs"),
        ("--epoch", "100us"),
        ("--retention", "0s"),
        ("--filter", "bloomy"),
        ("--rate", "fast"),
        ("--rate", "0pps"),
        ("--mean-packet-size", "0"),
        ("--mean-packet-size", "huge"),
        ("--fpr", "2"),
        ("--fpr", "0"),
        ("--spill-budget", "3 bananas"),
        ("--listen", "nowhere"),
        ("--listen", "localhost:7443"),
    ] {
        assert_usage_error(&probe_run_with(flag, value), flag);
    }
}

#[test]
fn filter_error_lists_the_kinds() {
    let o = run(&probe_run_with("--filter", "bloomy")
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>());
    let err = stderr(&o);
    assert!(err.contains("blocked") && err.contains("standard"), "{err}");
}

#[test]
fn probe_plan_refuses_bad_values_at_parse_time() {
    // A plan that works, with `flag value` in place of its own.
    let plan = |extra: &[&str]| -> Vec<String> {
        let mut args = vec!["probe".to_string(), "plan".to_string()];
        for (flag, value) in [("--rate", "1Mpps"), ("--retention", "60s")] {
            if extra[0] != flag {
                args.extend([flag.to_string(), value.to_string()]);
            }
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    assert_usage_error(&plan(&["--retention", "x"]), "--retention");
    assert_usage_error(&plan(&["--rate", "lots"]), "--rate");
    assert_usage_error(&plan(&["--epoch", "never"]), "--epoch");
    assert_usage_error(&plan(&["--fpr", "1.5"]), "--fpr");
    assert_usage_error(&plan(&["--mean-packet-size", "0"]), "--mean-packet-size");
}

#[test]
fn fpr_and_bench_refuse_bad_values_at_parse_time() {
    let owned = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_usage_error(&owned(&["probe", "fpr", "--m-bits", "0"]), "--m-bits");
    assert_usage_error(&owned(&["probe", "fpr", "--queries", "0"]), "--queries");
    assert_usage_error(&owned(&["probe", "bench", "--threads", "0"]), "--threads");
    assert_usage_error(&owned(&["probe", "bench", "--inserts", "0"]), "--inserts");
    assert_usage_error(
        &owned(&["probe", "bench", "--live-rates", "1Mpps,1Gb/s"]),
        "--live-rates",
    );
}

#[test]
fn a_bit_rate_without_a_packet_size_is_an_error_before_any_work() {
    // Two flags together: checked after parsing, still before anything is opened, and still
    // bad usage (exit 2).
    let o = run(&["probe", "plan", "--rate", "10Gb/s", "--retention", "60s"]);
    assert_eq!(o.status.code(), Some(2));
    let o2 = run(&[
        "probe",
        "run",
        "--pcap",
        "/nonexistent.pcap",
        "--listen",
        "127.0.0.1:0",
        "--dev-insecure",
        "--epoch",
        "2s",
        "--retention",
        "1s",
    ]);
    assert_eq!(o2.status.code(), Some(2), "{}", stderr(&o2));
    assert!(stderr(&o).contains("--mean-packet-size"), "{}", stderr(&o));
    let o = run(&[
        "probe",
        "plan",
        "--rate",
        "10Gb/s",
        "--mean-packet-size",
        "84",
        "--retention",
        "60s",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let pps = v["rate_pps"].as_f64().unwrap();
    assert!((pps - 14_880_952.0).abs() < 1.0, "{pps}");
}
