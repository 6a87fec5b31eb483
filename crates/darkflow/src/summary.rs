//! What the detector's events add up to: the tables and figures of the DarkFlow paper.
//!
//! * per destination port: DarkFlows, SYN packets and unique sources (the seed's Table 2);
//! * per source and per destination address: DarkFlows and SYN packets, whose distributions
//!   are the seed's Figures 10 and 11;
//! * per interval (10 s by default): delay-queue adds, forwards (became DarkFlow) and deletes
//!   (answered in time), the seed's Figure 8;
//! * how long answered SYNs waited for their answer.
//!
//! Pure: events in, numbers out. Memory is bounded by [`SummaryConfig::max_keys`] distinct
//! addresses (and port/source pairs); beyond that new keys are counted in
//! [`Summary::dropped_keys`] and the per-key tables say so. The interval series holds only
//! intervals that saw an event, and at most [`MAX_INTERVALS`] of them: past that the interval
//! width doubles (neighbouring intervals merge) until the series fits again, so timestamps
//! years apart, or a corrupt one near `u64::MAX`, cost a bounded number of intervals and
//! nothing is lost but resolution. The report says which width it ended with.

use std::collections::BTreeMap;
use std::net::IpAddr;

use foldhash::fast::RandomState;

use serde::Serialize;

use crate::detector::{Counters, Event, NS};

mod json;
pub use json::{
    AnswerStat, CDF_AT, CdfPoint, DelayBucket, JSON_INTERVALS, JSON_TOP, ReportJson, delay_buckets,
};

/// Summary settings.
#[derive(Clone, Copy, Debug)]
pub struct SummaryConfig {
    /// Width of one interval of the delay-queue series, in ns.
    pub interval_ns: u64,
    /// Most distinct keys kept in each per-address table.
    pub max_keys: usize,
}

impl Default for SummaryConfig {
    fn default() -> Self {
        Self {
            interval_ns: 10 * NS,
            max_keys: 1 << 20,
        }
    }
}

/// One destination port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PortStat {
    /// Destination port.
    pub port: u16,
    /// DarkFlows to it.
    pub darkflows: u64,
    /// SYN packets of those DarkFlows (retransmissions included).
    pub syns: u64,
    /// Distinct source addresses of those DarkFlows.
    pub unique_sources: u64,
}

/// One address (as a source, or as a destination).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AddrStat {
    /// The address.
    pub addr: Option<IpAddr>,
    /// DarkFlows from (or to) it.
    pub darkflows: u64,
    /// SYN packets of those DarkFlows.
    pub syns: u64,
}

/// One interval of the delay-queue series.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Interval {
    /// Interval start (ns).
    pub start: u64,
    /// SYNs added to the delay queue.
    pub adds: u64,
    /// Entries forwarded: they became DarkFlows.
    pub forwards: u64,
    /// Entries deleted: answered in time.
    pub deletes: u64,
    /// DarkFlows answered late.
    pub late: u64,
    /// SYNs the full delay queue could not take.
    pub untracked: u64,
}

/// Longest series filled with empty intervals; sparser spans list only non-empty ones.
pub const MAX_DENSE_INTERVALS: u64 = 100_000;

/// Most non-empty intervals the summary holds; past it the width doubles (see the module
/// docs). A report therefore lists at most `MAX_DENSE_INTERVALS.max(MAX_INTERVALS)`
/// intervals.
pub const MAX_INTERVALS: usize = 100_000;

/// Upper edges (ns) of the answer-delay histogram buckets; the last bucket is "up to T".
pub const DELAY_EDGES_NS: [u64; 6] = [
    1_000_000,
    10_000_000,
    30_000_000,
    100_000_000,
    1_000_000_000,
    3_000_000_000,
];

/// The per-key tables: hashbrown with foldhash rather than std's SipHash maps, which were a
/// sixth of the offline run's instructions on the mixed capture (docs/benchmarks.md section
/// 6). The keys are addresses
/// that senders choose (spoofed sources), so the hash stays keyed with a per-process seed;
/// no output depends on the maps' order (the report sorts on a total order).
type HashMap<K, V> = hashbrown::HashMap<K, V, RandomState>;
type HashSet<K> = hashbrown::HashSet<K, RandomState>;

/// Aggregates detector events.
#[derive(Debug)]
pub struct Summary {
    cfg: SummaryConfig,
    ports: BTreeMap<u16, PortStat>,
    port_sources: HashSet<(u16, IpAddr)>,
    sources: HashMap<IpAddr, AddrStat>,
    destinations: HashMap<IpAddr, AddrStat>,
    intervals: BTreeMap<u64, Interval>,
    delays: [u64; DELAY_EDGES_NS.len() + 1],
    /// Distinct keys not kept because a per-address table was full.
    pub dropped_keys: u64,
    /// First and last event times (ns).
    pub span: Option<(u64, u64)>,
    /// Unsolicited answers (backscatter) per answering address.
    unsolicited: HashMap<IpAddr, u64>,
}

/// The summary as numbers, complete: what the report's CSV files and page render. The JSON
/// (`summary.json`, the `--json` summary line) is its bounded form, [`Report::json`].
#[derive(Clone, Debug)]
pub struct Report {
    /// Detector totals.
    pub counters: Counters,
    /// First and last event time (ns).
    pub span: Option<(u64, u64)>,
    /// Every destination port, most DarkFlows first.
    pub ports: Vec<PortStat>,
    /// Every source, most SYNs first.
    pub sources: Vec<AddrStat>,
    /// Every destination, most SYNs first.
    pub destinations: Vec<AddrStat>,
    /// The delay-queue series: every interval from the first to the last, or only the
    /// non-empty ones when that would be more than [`MAX_DENSE_INTERVALS`].
    pub intervals: Vec<Interval>,
    /// Answered SYNs per answer-delay bucket (upper edges [`DELAY_EDGES_NS`], then T).
    pub answer_delays: Vec<u64>,
    /// Addresses that sent unsolicited SYN/ACKs or RSTs, most first (`syns` holds the number
    /// of answers; the JSON calls it `answers`).
    pub unsolicited: Vec<AddrStat>,
    /// Distinct keys not kept because a per-address table was full.
    pub dropped_keys: u64,
    /// Interval width (ns): the configured one, doubled as often as needed to hold at most
    /// [`MAX_INTERVALS`] intervals.
    pub interval_ns: u64,
}

impl Summary {
    /// An empty summary.
    pub fn new(cfg: SummaryConfig) -> Self {
        Self {
            cfg: SummaryConfig {
                interval_ns: cfg.interval_ns.max(1),
                ..cfg
            },
            ports: BTreeMap::new(),
            port_sources: HashSet::default(),
            sources: HashMap::default(),
            destinations: HashMap::default(),
            intervals: BTreeMap::new(),
            delays: [0; DELAY_EDGES_NS.len() + 1],
            dropped_keys: 0,
            span: None,
            unsolicited: HashMap::default(),
        }
    }

    fn interval(&mut self, ts: u64) -> &mut Interval {
        self.span = Some(match self.span {
            None => (ts, ts),
            Some((a, b)) => (a.min(ts), b.max(ts)),
        });
        if self.intervals.len() >= MAX_INTERVALS
            && !self
                .intervals
                .contains_key(&(ts - ts % self.cfg.interval_ns))
        {
            self.coarsen();
        }
        let start = ts - ts % self.cfg.interval_ns;
        self.intervals.entry(start).or_insert(Interval {
            start,
            ..Interval::default()
        })
    }

    /// Doubles the interval width, merging neighbours, until at most half of
    /// [`MAX_INTERVALS`] are held. Ends: at a width of `u64::MAX` at most two remain.
    fn coarsen(&mut self) {
        while self.intervals.len() > MAX_INTERVALS / 2 {
            let width = self.cfg.interval_ns.saturating_mul(2);
            self.cfg.interval_ns = width;
            let old = std::mem::take(&mut self.intervals);
            for (start, i) in old {
                let start = start - start % width;
                let m = self.intervals.entry(start).or_insert(Interval {
                    start,
                    ..Interval::default()
                });
                m.adds += i.adds;
                m.forwards += i.forwards;
                m.deletes += i.deletes;
                m.late += i.late;
                m.untracked += i.untracked;
            }
        }
    }

    /// Intervals held now (for tests of the bound).
    pub fn intervals_held(&self) -> usize {
        self.intervals.len()
    }

    fn addr<'m>(
        map: &'m mut HashMap<IpAddr, AddrStat>,
        max: usize,
        dropped: &mut u64,
        a: IpAddr,
    ) -> Option<&'m mut AddrStat> {
        if map.len() >= max && !map.contains_key(&a) {
            *dropped += 1;
            return None;
        }
        Some(map.entry(a).or_insert(AddrStat {
            addr: Some(a),
            ..AddrStat::default()
        }))
    }

    /// Adds one event.
    pub fn observe(&mut self, e: &Event) {
        match *e {
            Event::Queued { ts } => self.interval(ts).adds += 1,
            Event::Answered { ts, delay_ns, .. } => {
                self.interval(ts).deletes += 1;
                let b = DELAY_EDGES_NS.iter().position(|&edge| delay_ns <= edge);
                self.delays[b.unwrap_or(DELAY_EDGES_NS.len())] += 1;
            }
            Event::Untracked { ts, .. } => self.interval(ts).untracked += 1,
            Event::Dark { ts, record } => {
                self.interval(ts).forwards += 1;
                let f = record.flow;
                let syns = u64::from(record.syns_at_dark);
                let port = self.ports.entry(f.dport).or_insert(PortStat {
                    port: f.dport,
                    ..PortStat::default()
                });
                port.darkflows += 1;
                port.syns += syns;
                if self.port_sources.len() < self.cfg.max_keys
                    || self.port_sources.contains(&(f.dport, f.src))
                {
                    if self.port_sources.insert((f.dport, f.src)) {
                        port.unique_sources += 1;
                    }
                } else {
                    self.dropped_keys += 1;
                }
                let max = self.cfg.max_keys;
                for (map, a) in [(&mut self.sources, f.src), (&mut self.destinations, f.dst)] {
                    if let Some(s) = Self::addr(map, max, &mut self.dropped_keys, a) {
                        s.darkflows += 1;
                        s.syns += syns;
                    }
                }
            }
            Event::LateAnswer { ts, .. } => self.interval(ts).late += 1,
            Event::Closed { record, .. } => {
                // SYNs that came after the flow turned dark.
                let extra = u64::from(record.syns.saturating_sub(record.syns_at_dark));
                if extra > 0 {
                    let f = record.flow;
                    if let Some(p) = self.ports.get_mut(&f.dport) {
                        p.syns += extra;
                    }
                    if let Some(s) = self.sources.get_mut(&f.src) {
                        s.syns += extra;
                    }
                    if let Some(d) = self.destinations.get_mut(&f.dst) {
                        d.syns += extra;
                    }
                }
            }
            Event::Unsolicited { flow, .. } => {
                let max = self.cfg.max_keys;
                if self.unsolicited.len() < max || self.unsolicited.contains_key(&flow.dst) {
                    *self.unsolicited.entry(flow.dst).or_insert(0) += 1;
                } else {
                    self.dropped_keys += 1;
                }
            }
        }
    }

    /// The numbers so far.
    pub fn report(&self, counters: Counters) -> Report {
        let mut ports: Vec<PortStat> = self.ports.values().copied().collect();
        ports.sort_unstable_by(|a, b| b.darkflows.cmp(&a.darkflows).then(a.port.cmp(&b.port)));
        let sorted = |m: &HashMap<IpAddr, AddrStat>| {
            let mut v: Vec<AddrStat> = m.values().copied().collect();
            v.sort_unstable_by_key(by_syns);
            v
        };
        let mut intervals = Vec::new();
        if let (Some((&first, _)), Some((&last, _))) = (
            self.intervals.first_key_value(),
            self.intervals.last_key_value(),
        ) {
            if (last - first) / self.cfg.interval_ns < MAX_DENSE_INTERVALS {
                let mut t = first;
                while t <= last {
                    intervals.push(self.intervals.get(&t).copied().unwrap_or(Interval {
                        start: t,
                        ..Interval::default()
                    }));
                    // The last interval may start within one width of u64::MAX.
                    match t.checked_add(self.cfg.interval_ns) {
                        Some(next) => t = next,
                        None => break,
                    }
                }
            } else {
                // Captures years apart: only the intervals that saw something.
                intervals.extend(self.intervals.values().copied());
            }
        }
        let mut unsolicited: Vec<AddrStat> = self
            .unsolicited
            .iter()
            .map(|(a, n)| AddrStat {
                addr: Some(*a),
                darkflows: 0,
                syns: *n,
            })
            .collect();
        unsolicited.sort_unstable_by_key(by_syns);
        Report {
            counters,
            span: self.span,
            ports,
            sources: sorted(&self.sources),
            destinations: sorted(&self.destinations),
            intervals,
            answer_delays: self.delays.to_vec(),
            unsolicited,
            dropped_keys: self.dropped_keys,
            interval_ns: self.cfg.interval_ns,
        }
    }
}

/// The report's order of addresses: most SYNs first, then by address as `Option<IpAddr>`
/// orders them (none, then IPv4, then IPv6, each by its octets), as integers that compare in
/// a few instructions (comparing `IpAddr`s was most of the final sort's cost).
fn by_syns(s: &AddrStat) -> (std::cmp::Reverse<u64>, u8, u128) {
    let (family, bits) = match s.addr {
        None => (0, 0),
        Some(IpAddr::V4(a)) => (1, u128::from(a.to_bits())),
        Some(IpAddr::V6(a)) => (2, a.to_bits()),
    };
    (std::cmp::Reverse(s.syns), family, bits)
}

/// Fraction of items with a value at or below each of `edges`, for CDF plots.
pub fn cdf(values: &[u64], edges: &[u64]) -> Vec<f64> {
    let n = values.len().max(1) as f64;
    edges
        .iter()
        .map(|&e| values.iter().filter(|&&v| v <= e).count() as f64 / n)
        .collect()
}

#[cfg(test)]
mod tests;
