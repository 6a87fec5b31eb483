//! The controller's counters and their Prometheus page.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use ashiato_api::federation::{ProbeVerdict, TraceMode};
use ashiato_api::metrics::{Exposition, Kind};

/// (family, labels) → value.
type Key = (&'static str, Vec<(&'static str, String)>);

/// Counters, by family and one label.
#[derive(Default)]
pub(crate) struct Metrics {
    values: Mutex<BTreeMap<Key, f64>>,
}

/// Family, help, kind.
const FAMILIES: &[(&str, &str, Kind)] = &[
    (
        "ashiato_controller_traces_total",
        "Traces started here, by mode and whether every packet reached an origin.",
        Kind::Counter,
    ),
    (
        "ashiato_controller_trace_seconds_sum",
        "Total wall time of traces started here.",
        Kind::Counter,
    ),
    (
        "ashiato_controller_trace_seconds_count",
        "Traces timed.",
        Kind::Counter,
    ),
    (
        "ashiato_controller_hop_requests_in_total",
        "Hop requests from other domains, by outcome.",
        Kind::Counter,
    ),
    (
        "ashiato_controller_hop_requests_out_total",
        "Hop requests to other domains, by outcome.",
        Kind::Counter,
    ),
    (
        "ashiato_controller_hop_out_seconds_sum",
        "Total wall time of hop requests to other domains.",
        Kind::Counter,
    ),
    (
        "ashiato_controller_hop_out_seconds_count",
        "Hop requests to other domains timed.",
        Kind::Counter,
    ),
    (
        "ashiato_controller_probe_answers_total",
        "Per-packet probe evidence, by verdict.",
        Kind::Counter,
    ),
    (
        "ashiato_controller_refusals_total",
        "Requests refused, by reason.",
        Kind::Counter,
    ),
    (
        "ashiato_controller_eve_records_total",
        "EVE records received, by outcome.",
        Kind::Counter,
    ),
];

impl Metrics {
    fn add(&self, family: &'static str, label: &'static str, value: &str, v: f64) {
        let labels = if label.is_empty() {
            Vec::new()
        } else {
            vec![(label, value.to_string())]
        };
        self.add_labels(family, labels, v);
    }

    fn add_labels(&self, family: &'static str, labels: Vec<(&'static str, String)>, v: f64) {
        let mut g = self.values.lock().unwrap_or_else(|e| e.into_inner());
        *g.entry((family, labels)).or_insert(0.0) += v;
    }

    pub(crate) fn trace_done(&self, mode: TraceMode, complete: bool, took: Duration) {
        let result = if complete { "complete" } else { "gaps" };
        self.add_labels(
            "ashiato_controller_traces_total",
            vec![
                ("mode", mode.as_str().to_string()),
                ("result", result.to_string()),
            ],
            1.0,
        );
        self.add(
            "ashiato_controller_trace_seconds_sum",
            "",
            "",
            took.as_secs_f64(),
        );
        self.add("ashiato_controller_trace_seconds_count", "", "", 1.0);
    }

    pub(crate) fn hop_in(&self, outcome: &str) {
        self.add(
            "ashiato_controller_hop_requests_in_total",
            "outcome",
            outcome,
            1.0,
        );
    }

    pub(crate) fn hop_out(&self, outcome: &str, took: Duration) {
        self.add(
            "ashiato_controller_hop_requests_out_total",
            "outcome",
            outcome,
            1.0,
        );
        self.add(
            "ashiato_controller_hop_out_seconds_sum",
            "",
            "",
            took.as_secs_f64(),
        );
        self.add("ashiato_controller_hop_out_seconds_count", "", "", 1.0);
    }

    pub(crate) fn probe_verdict(&self, v: ProbeVerdict) {
        self.add(
            "ashiato_controller_probe_answers_total",
            "verdict",
            v.as_str(),
            1.0,
        );
    }

    pub(crate) fn refused(&self, reason: &str) {
        self.add("ashiato_controller_refusals_total", "reason", reason, 1.0);
    }

    pub(crate) fn eve(&self, outcome: &str) {
        self.add(
            "ashiato_controller_eve_records_total",
            "outcome",
            outcome,
            1.0,
        );
    }

    /// The Prometheus page.
    pub(crate) fn render(&self) -> String {
        let g = self.values.lock().unwrap_or_else(|e| e.into_inner());
        let mut e = Exposition::new();
        for &(family, help, kind) in FAMILIES {
            e.family(family, kind, help);
            let mut any = false;
            for ((f, labels), v) in g.iter() {
                if *f != family {
                    continue;
                }
                any = true;
                let l: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
                e.sample(family, &l, *v);
            }
            if !any && !family.ends_with("_total") {
                e.sample(family, &[], 0.0);
            }
        }
        e.finish()
    }
}
