//! Numbers, durations and times as the page writes them. CSV and JSON keep raw integers and
//! [`rfc3339`] times so programs can read them back; these forms are for people.

pub use ashiato_wire::time::rfc3339;

use crate::detector::NS;
use crate::summary::DELAY_EDGES_NS;

/// A duration for people: `5 s`, `250 ms`, `1.5 s`, `12 min 30 s`, `2 h 5 min`.
pub(super) fn fmt_duration(ns: u64) -> String {
    let s = ns / NS;
    if s >= 86_400 {
        format!("{} d {} h", s / 86_400, s % 86_400 / 3600)
    } else if s >= 3600 {
        format!("{} h {} min", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{} min {} s", s / 60, s % 60)
    } else if ns >= NS {
        format!("{} s", trim_decimals(ns as f64 / 1e9))
    } else if ns >= 1_000_000 {
        format!("{} ms", trim_decimals(ns as f64 / 1e6))
    } else if ns >= 1000 {
        format!("{} µs", trim_decimals(ns as f64 / 1e3))
    } else {
        format!("{ns} ns")
    }
}

/// `x` with at most three decimals and no trailing zeros.
fn trim_decimals(x: f64) -> String {
    let s = format!("{x:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// `384803` as `384,803`.
pub(super) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Short axis label: `950`, `2.5k`, `10M`.
pub(super) fn compact(n: u64) -> String {
    const UNITS: [(u64, &str); 6] = [
        (1_000_000_000_000_000_000, "E"),
        (1_000_000_000_000_000, "P"),
        (1_000_000_000_000, "T"),
        (1_000_000_000, "G"),
        (1_000_000, "M"),
        (1_000, "k"),
    ];
    for (div, unit) in UNITS {
        if n >= div {
            let v = n as f64 / div as f64;
            let s = format!("{v:.1}");
            return format!("{}{unit}", s.trim_end_matches(".0"));
        }
    }
    n.to_string()
}

/// `part` as a percentage of `whole`, or a dash when `whole` is zero.
pub(super) fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        "–".to_owned()
    } else {
        format!("{:.1} %", 100.0 * part as f64 / whole as f64)
    }
}

/// `word` or `words`.
pub(super) fn plural<'a>(n: u64, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// Label of answer-delay bucket `i`: its upper edge, or T for the last one.
pub(super) fn delay_label(i: usize, timeout_ns: u64) -> String {
    match DELAY_EDGES_NS.get(i) {
        Some(&edge) => format!("≤ {}", fmt_duration(edge)),
        None => format!("≤ T ({})", fmt_duration(timeout_ns)),
    }
}

/// A time-axis label for a tick at `t` with tick step `step` over a span of `span` ns: the
/// part of its [`rfc3339`] form that changes from tick to tick.
pub(super) fn time_label(t: u64, step: u64, span: u64) -> String {
    let s = rfc3339(t);
    if step < NS {
        s[11..23].to_owned()
    } else if step < 60 * NS {
        s[11..19].to_owned()
    } else if step >= 86_400 * NS {
        s[..10].to_owned()
    } else if span >= 86_400 * NS {
        format!("{} {}", &s[5..10], &s[11..16])
    } else {
        s[11..16].to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::{compact, fmt_duration, thousands, time_label};
    use crate::detector::NS;

    #[test]
    fn formatting_helpers() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(384_803), "384,803");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(compact(950), "950");
        assert_eq!(compact(2500), "2.5k");
        assert_eq!(compact(10_000_000), "10M");
        assert_eq!(fmt_duration(5 * NS), "5 s");
        assert_eq!(fmt_duration(1_500_000_000), "1.5 s");
        assert_eq!(fmt_duration(30_000_000), "30 ms");
        assert_eq!(fmt_duration(750 * NS), "12 min 30 s");
    }

    #[test]
    fn time_labels_keep_what_changes() {
        let t = 1_767_225_600 * NS + 90 * NS + 250_000_000; // 2026-01-01T00:01:30.25Z
        assert_eq!(time_label(t, 100_000_000, 10 * NS), "00:01:30.250");
        assert_eq!(time_label(t, 10 * NS, 60 * NS), "00:01:30");
        assert_eq!(time_label(t, 600 * NS, 3600 * NS), "00:01");
        assert_eq!(time_label(t, 3600 * NS, 2 * 86_400 * NS), "01-01 00:01");
        assert_eq!(time_label(t, 86_400 * NS, 9 * 86_400 * NS), "2026-01-01");
    }
}
