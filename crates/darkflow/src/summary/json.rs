//! The bounded JSON form of a [`Report`]: what `summary.json` and the `--json` summary line
//! hold.
//!
//! A capture of a million flows has a million sources; listing them all made `summary.json`
//! tens of megabytes. The JSON keeps the top [`JSON_TOP`] of each per-key list with its total
//! (`sources_listed` of `sources_total`), the SYNs-per-address distributions as CDF points, at
//! most [`JSON_INTERVALS`] intervals (consecutive ones summed when there are more; the count
//! merged is stated) and the answer-delay histogram with its bucket edges. The full lists are
//! in the report's CSV files.

use std::net::IpAddr;

use serde::Serialize;

use super::{AddrStat, DELAY_EDGES_NS, Interval, PortStat, Report, cdf};
use crate::detector::Counters;

/// Entries listed in each per-key list of the JSON.
pub const JSON_TOP: usize = 100;
/// Most intervals listed in the JSON.
pub const JSON_INTERVALS: usize = 1000;
/// SYN counts at which the per-address CDFs are given.
pub const CDF_AT: [u64; 19] = [
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000,
    200_000, 500_000, 1_000_000,
];

/// One point of a CDF over addresses.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct CdfPoint {
    /// SYN count.
    pub syns_at_most: u64,
    /// Fraction of addresses with at most that many SYNs.
    pub fraction: f64,
}

/// One bucket of the answer-delay histogram: answers whose delay `d` (first SYN to answer)
/// was `lower_ns < d <= upper_ns` (the first bucket includes 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct DelayBucket {
    /// Lower edge, exclusive (ns).
    pub lower_ns: u64,
    /// Upper edge, inclusive (ns); the last bucket ends at T.
    pub upper_ns: u64,
    /// Answered SYNs.
    pub answered: u64,
}

/// An address that sent unsolicited answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct AnswerStat {
    /// The address.
    pub addr: Option<IpAddr>,
    /// SYN/ACKs and RSTs from it that answered no SYN.
    pub answers: u64,
}

/// The answer-delay histogram with its edges, the last bucket ending at T (`timeout_ns`).
pub fn delay_buckets(counts: &[u64], timeout_ns: u64) -> Vec<DelayBucket> {
    counts
        .iter()
        .enumerate()
        .map(|(i, &answered)| {
            let lower_ns = if i == 0 { 0 } else { DELAY_EDGES_NS[i - 1] };
            let upper_ns = DELAY_EDGES_NS
                .get(i)
                .copied()
                .unwrap_or(timeout_ns.max(lower_ns));
            DelayBucket {
                lower_ns,
                upper_ns,
                answered,
            }
        })
        .collect()
}

/// See the module docs.
#[derive(Clone, Debug, Serialize)]
pub struct ReportJson<'a> {
    /// Detector totals.
    pub counters: &'a Counters,
    /// First and last event time (ns).
    pub span: Option<(u64, u64)>,
    /// Distinct keys not kept because a per-address table was full.
    pub dropped_keys: u64,
    /// Destination ports listed, of `ports_total`, most DarkFlows first.
    pub ports_listed: usize,
    /// Destination ports with a DarkFlow.
    pub ports_total: usize,
    /// The top ports.
    pub ports: &'a [PortStat],
    /// Sources listed, of `sources_total`, most SYNs first.
    pub sources_listed: usize,
    /// Distinct sources of DarkFlows (kept ones).
    pub sources_total: usize,
    /// The top sources.
    pub sources: &'a [AddrStat],
    /// Fraction of sources with at most so many SYNs.
    pub source_syns_cdf: Vec<CdfPoint>,
    /// Destinations listed, of `destinations_total`, most SYNs first.
    pub destinations_listed: usize,
    /// Distinct destinations of DarkFlows (kept ones).
    pub destinations_total: usize,
    /// The top destinations.
    pub destinations: &'a [AddrStat],
    /// Fraction of destinations with at most so many SYNs.
    pub destination_syns_cdf: Vec<CdfPoint>,
    /// Interval width of the summary (ns).
    pub interval_ns: u64,
    /// Intervals in the report (intervals.csv).
    pub intervals_total: usize,
    /// Consecutive intervals summed into each one listed (1: none merged).
    pub intervals_merged: usize,
    /// The delay-queue series, at most [`JSON_INTERVALS`] entries.
    pub intervals: Vec<Interval>,
    /// Answered SYNs per answer-delay bucket, edges in ns.
    pub answer_delays: Vec<DelayBucket>,
    /// Addresses listed, of `unsolicited_total`, most answers first.
    pub unsolicited_listed: usize,
    /// Distinct addresses that sent unsolicited answers.
    pub unsolicited_total: usize,
    /// The top backscatter sources.
    pub unsolicited: Vec<AnswerStat>,
}

impl Report {
    /// The bounded JSON form (see [`ReportJson`]); `timeout_ns` is T, the last delay edge.
    pub fn json(&self, timeout_ns: u64) -> ReportJson<'_> {
        let top = |n: usize| n.min(JSON_TOP);
        let syns_cdf = |v: &[AddrStat]| {
            let syns: Vec<u64> = v.iter().map(|a| a.syns).collect();
            cdf(&syns, &CDF_AT)
                .into_iter()
                .zip(CDF_AT)
                .map(|(fraction, syns_at_most)| CdfPoint {
                    syns_at_most,
                    fraction,
                })
                .collect()
        };
        let merged = self.intervals.len().div_ceil(JSON_INTERVALS).max(1);
        let intervals = self
            .intervals
            .chunks(merged)
            .map(|c| {
                c.iter().fold(
                    Interval {
                        start: c[0].start,
                        ..Interval::default()
                    },
                    |mut m, i| {
                        m.adds += i.adds;
                        m.forwards += i.forwards;
                        m.deletes += i.deletes;
                        m.late += i.late;
                        m.untracked += i.untracked;
                        m
                    },
                )
            })
            .collect();
        ReportJson {
            counters: &self.counters,
            span: self.span,
            dropped_keys: self.dropped_keys,
            ports_listed: top(self.ports.len()),
            ports_total: self.ports.len(),
            ports: &self.ports[..top(self.ports.len())],
            sources_listed: top(self.sources.len()),
            sources_total: self.sources.len(),
            sources: &self.sources[..top(self.sources.len())],
            source_syns_cdf: syns_cdf(&self.sources),
            destinations_listed: top(self.destinations.len()),
            destinations_total: self.destinations.len(),
            destinations: &self.destinations[..top(self.destinations.len())],
            destination_syns_cdf: syns_cdf(&self.destinations),
            interval_ns: self.interval_ns,
            intervals_total: self.intervals.len(),
            intervals_merged: merged,
            intervals,
            answer_delays: delay_buckets(&self.answer_delays, timeout_ns),
            unsolicited_listed: top(self.unsolicited.len()),
            unsolicited_total: self.unsolicited.len(),
            unsolicited: self.unsolicited[..top(self.unsolicited.len())]
                .iter()
                .map(|a| AnswerStat {
                    addr: a.addr,
                    answers: a.syns,
                })
                .collect(),
        }
    }
}
