//! What a run found, measured against the scenario's ground truth, as JSON and as text.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use ashiato_api::federation::{AttackGraph, PathEnd, Watch};
use ashiato_trace::topology::Asn;
use serde::Serialize;

use crate::controllers::BEYOND_DEPTH;
use crate::run::{GraphFiles, ReportInputs, Throughput};
use crate::scenario::{Scenario, Tap};

/// One `seen` answer on the sample packet's path.
#[derive(Clone, Debug, Serialize)]
pub struct Evidence {
    /// The domain.
    pub domain: Asn,
    /// Its probe.
    pub probe: String,
    /// The domain's conclusion.
    pub outcome: String,
    /// Start of the epoch that holds the digest, ns.
    pub epoch_start_ns: u64,
    /// That epoch's false-positive rate.
    pub fpr: f64,
}

/// One origin's branch of the attack tree.
#[derive(Clone, Debug, Serialize)]
pub struct Branch {
    /// Where the packets were attributed.
    pub origin: Asn,
    /// Packets attributed to it.
    pub packets: u32,
    /// Whether it is a true origin.
    pub true_origin: bool,
    /// The path, victim first, as text (`AS1 ← AS2 ⇠(AS3)⇠ AS4`).
    pub path: String,
}

/// A gap of the attack tree.
#[derive(Clone, Debug, Serialize)]
pub struct GapLine {
    /// The last domain that saw the packets.
    pub last: Asn,
    /// Domains behind it that could not say.
    pub behind: Vec<Asn>,
    /// Why the trace ends there.
    pub reason: String,
    /// Packets.
    pub packets: u32,
}

/// A lab run's results.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// `recursive` or `mesh`.
    pub mode: String,
    /// The topology's label.
    pub topology: String,
    /// Domains in it.
    pub domains: usize,
    /// Links in it.
    pub links: usize,
    /// Domains running ashiato.
    pub participants: usize,
    /// Share asked for.
    pub participation: f64,
    /// The victim.
    pub victim: Asn,
    /// The true origins.
    pub origins: Vec<Asn>,
    /// Packets sent (attack and background).
    pub packets: usize,
    /// Attack packets sent.
    pub attack_packets: usize,
    /// Packets the victim's detector flagged (and traced).
    pub detected: usize,
    /// Traced packets attributed to some origin.
    pub attributed: usize,
    /// Traced packets attributed to their true origin.
    pub correct: usize,
    /// Traced packets attributed to a domain that is not their origin.
    pub wrong: usize,
    /// Of those, the ones stated with confidence: the packet's own chance of being false
    /// within the federation's bound per hop. Must be 0 under every condition; the others
    /// say how unsure they are (a packet seen at a probe sized at 10⁻³ says about 10⁻³).
    pub wrong_confident: usize,
    /// Attributed packets stated with confidence.
    pub attributed_confident: usize,
    /// Traced packets whose trace ends in a gap.
    pub gap_packets: usize,
    /// `correct / detected`.
    pub accuracy: f64,
    /// True origins with at least one packet attributed to them.
    pub origins_found: usize,
    /// True origins.
    pub origins_total: usize,
    /// Edges of the graph that skip non-participants.
    pub skip_edges: usize,
    /// Attributed packets whose path used a skip edge.
    pub packets_via_skip: usize,
    /// Traced hops (domains confirmed past the victim) over true hops, averaged over
    /// detected packets.
    pub mean_path_fraction: f64,
    /// Expected false nodes of the merged graph.
    pub expected_false_nodes: f64,
    /// Single-packet traces timed.
    pub traces: usize,
    /// Connections were reused between requests (else one TLS handshake per request).
    pub reuse_connections: bool,
    /// Median single-packet trace time, ms (wall time of `POST /v1/trace` over mutual TLS,
    /// measured by the lab's client).
    pub median_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Slowest, ms.
    pub max_ms: f64,
    /// Services served (probes and controllers), one port each.
    pub services: usize,
    /// Probes among them.
    pub probes: usize,
    /// Time from start to every service up, ms.
    pub setup_ms: f64,
    /// Resident memory at the end, bytes (/proc/self/statm).
    pub rss_bytes: u64,
    /// Threads at the end (/proc/self/status).
    pub threads: u64,
    /// Digest-table memory over all probes, bytes.
    pub table_bytes: u64,
    /// The attack tree, per attributed origin.
    pub tree: Vec<Branch>,
    /// Its gaps.
    pub gaps: Vec<GapLine>,
    /// Per-hop evidence of one sample packet.
    pub sample: Vec<Evidence>,
    /// One detected packet as the victim's detector reported it: digest and time (ns), to
    /// trace by hand while `--serve` runs.
    pub sample_packet: Option<(String, u64)>,
    /// Throughput run, when asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throughput: Option<Throughput>,
    /// Graph files.
    pub files: GraphFiles,
    /// The results store the victim's controller wrote its traces to.
    pub store: String,
    /// Traces of the detected packets stored there.
    pub stored_traces: usize,
    /// Where everything went.
    pub out_dir: String,
    /// The conditions the run was held under.
    pub conditions: ConditionsReport,
    /// The share of detected packets whose origin the federation could find at all: the
    /// origin participates, every participant on the packet's path has all its probes up,
    /// and every run of non-participants on it is within the peering skip's reach (the
    /// participant past it is in the beyond list of the one before it).
    pub accuracy_bound: f64,
    /// An upper bound on the packets expected to be attributed wrongly, from the stated
    /// probabilities: the sum, over attributed packets, of the chance that the packet's own
    /// sightings of its chain were false matches.
    pub false_attribution_bound: f64,
    /// The sum of the named origins' false probabilities: the expected number of domains
    /// named an origin of the attack that are none.
    pub false_origin_bound: f64,
    /// The share of detected packets attributed to a true origin, or ending in a gap whose
    /// candidate origins (valley-free, participants excluded) are at most 2 and hold the
    /// true origin.
    pub localized: f64,
    /// The mean number of candidate origins per detected packet whose trace ends at an
    /// origin (1) or in a gap with candidates (their number).
    pub mean_candidates: f64,
    /// Reports were dropped on the way (an answer over its size limit).
    pub truncated: bool,
    /// Non-participating neighbours whose beyond list was cut at its cap.
    pub capped: usize,
    /// The first wrongly attributed packets (at most 20), to look into.
    pub wrong_packets: Vec<WrongPacket>,
}

/// A packet attributed to a domain that did not send it.
#[derive(Clone, Debug, Serialize)]
pub struct WrongPacket {
    /// Its index in the trace.
    pub packet: u32,
    /// Its digest.
    pub digest: String,
    /// The path the trace gave it, victim first.
    pub path: Vec<Asn>,
    /// The origins named for it.
    pub named: Vec<Asn>,
    /// The domains that really sent it, each with its route (origin first).
    pub sent_by: Vec<Vec<Asn>>,
    /// The chance the trace stated that this attribution is false.
    pub false_probability: Option<f64>,
}

/// The conditions of the run, as asked.
#[derive(Clone, Debug, Serialize)]
pub struct ConditionsReport {
    /// Tables sized for this false-positive rate at each probe's busiest epoch.
    pub probe_fpr: f64,
    /// Background packets in the scenario.
    pub background_packets: usize,
    /// Background packets per link per second, measured over the scenario.
    pub background_pps_per_link: f64,
    /// Share of attack packets sent identically by two origins, asked.
    pub duplicates: f64,
    /// Attack packets that have an identical twin from another origin.
    pub duplicated_packets: usize,
    /// Share of domains splitting traffic over two upstreams, asked.
    pub multipath: f64,
    /// Probes down, of all.
    pub probes_down: usize,
    /// One-way delay between domains, ms.
    pub link_delay_ms: f64,
    /// `core` or `random`.
    pub participants: String,
}

/// The `q` quantile (nearest rank) of `v` (sorted in place); 0 when empty.
pub fn percentile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// `/proc/self/statm` resident pages × page size, and `Threads:` of `/proc/self/status`.
fn rss_and_threads() -> (u64, u64) {
    let page = 4096u64;
    let rss = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |p| p * page);
    let threads = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0);
    (rss, threads)
}

/// A path, victim first, with skip edges marked: `AS1 ← AS2 ⇠(skipped AS3)⇠ AS4`.
fn path_text(g: &AttackGraph, path: &[Asn]) -> String {
    let mut s = format!("AS{}", path[0]);
    for w in path.windows(2) {
        let skipped = g
            .edges
            .iter()
            .find(|e| e.from == w[1] && e.to == w[0])
            .map(|e| e.skipped.clone())
            .unwrap_or_default();
        if skipped.is_empty() {
            let _ = write!(s, " ← AS{}", w[1]);
        } else {
            let names: Vec<String> = skipped.iter().map(|a| format!("AS{a}")).collect();
            let _ = write!(s, " ⇠(skipped {})⇠ AS{}", names.join(", "), w[1]);
        }
    }
    s
}

fn uses_skip(g: &AttackGraph, path: &[Asn]) -> bool {
    path.windows(2).any(|w| {
        g.edges
            .iter()
            .any(|e| e.from == w[1] && e.to == w[0] && !e.skipped.is_empty())
    })
}

/// Whether the federation could find the origin of a packet that took `path` (origin
/// first): see [`Report::accuracy_bound`]. The origin participates with every probe up but
/// the exit link's (its decision needs its edge's `seen` and every other border link's
/// `not_seen`); every link crossed
/// between two participants has a probe up at one end at least (a hop needs a sighting);
/// every run of non-participants is within the peering skip's reach of the participant
/// below it, and the participant past it has its probe toward the run up.
fn findable(s: &Scenario, down: &BTreeSet<Tap>, path: &[Asn]) -> bool {
    let participates = |a: Asn| s.participants.contains(&a);
    let up = |domain: Asn, watch: Watch| !down.contains(&Tap { domain, watch });
    let link = |neighbour: Asn| Watch::Link { neighbour };
    let Some(&origin) = path.first() else {
        return false;
    };
    // The origin's decision needs its edge's `seen` and every other border link's
    // `not_seen`; its exit link is judged as a crossing below.
    let exit = path.get(1).copied();
    if !participates(origin)
        || down
            .iter()
            .any(|t| t.domain == origin && Some(&t.watch) != exit.map(link).as_ref())
    {
        return false;
    }
    let mut k = path.len() - 1;
    while k > 0 {
        let (d, u) = (path[k], path[k - 1]);
        if participates(u) {
            if !up(d, link(u)) && !up(u, link(d)) {
                return false;
            }
            k -= 1;
            continue;
        }
        let Some(j) = path[..k].iter().rposition(|&x| participates(x)) else {
            return false;
        };
        // The domain past the run is asked about its link toward the gap the skip list
        // found for it (its shortest): the packet must have taken that very run.
        let reach = s.topology.beyond(u, d, &participates, BEYOND_DEPTH);
        let run: Vec<Asn> = path[j + 1..k].to_vec();
        if k - 1 - j > BEYOND_DEPTH
            || !reach
                .skips
                .iter()
                .any(|x| x.domain == path[j] && x.gap == run)
            || !up(path[j], link(path[j + 1]))
        {
            return false;
        }
        k = j;
    }
    true
}

/// Candidate origins behind a gap that ends past a non-participant: `None` for other gaps.
fn candidates(s: &Scenario, end: &PathEnd) -> Option<Vec<Asn>> {
    let PathEnd::Gap {
        last,
        behind,
        reason,
    } = end
    else {
        return None;
    };
    if reason != "not_participating" {
        return None;
    }
    let n = *behind.first()?;
    let participates = |a: Asn| s.participants.contains(&a);
    Some(s.topology.gap_candidates(n, *last, &participates, 16))
}

impl Report {
    pub(crate) fn build(i: ReportInputs<'_>) -> Report {
        let (s, g) = (i.s, i.graph);
        let (mut attributed, mut correct, mut wrong, mut gap_packets, mut via_skip) =
            (0, 0, 0, 0, 0);
        let (mut findable_n, mut localized, mut cand_n, mut cand_sum) = (0, 0, 0, 0usize);
        let mut false_attribution_bound = 0.0;
        let mut wrong_packets = Vec::new();
        let (mut wrong_confident, mut attributed_confident) = (0, 0);
        let mut fraction = 0.0;
        let mut by_digest: std::collections::HashMap<u128, Vec<usize>> =
            std::collections::HashMap::new();
        for (k, x) in s.sent.iter().enumerate() {
            by_digest.entry(x.digest).or_default().push(k);
        }
        let copies = |d: u128| by_digest.get(&d).map(Vec::as_slice).unwrap_or(&[]);
        let mut found = BTreeSet::new();
        for p in &g.paths {
            let Some(&si) = i.detected.get(p.packet as usize) else {
                continue;
            };
            let truth = &s.sent[si as usize];
            let senders: BTreeSet<Asn> = copies(truth.digest)
                .iter()
                .map(|&k| s.sent[k].origin())
                .collect();
            if copies(truth.digest)
                .iter()
                .any(|&k| findable(s, i.down, &s.sent[k].path))
            {
                findable_n += 1;
            }
            let true_hops = truth.path.len().saturating_sub(1).max(1);
            fraction += (p.path.len().saturating_sub(1) as f64 / true_hops as f64).min(1.0);
            match &p.end {
                PathEnd::Origin { domain } => {
                    attributed += 1;
                    let confident = p.false_probability.is_some_and(|f| {
                        f <= g.fpr_bound * p.path.len().saturating_sub(1).max(1) as f64
                    });
                    attributed_confident += usize::from(confident);
                    false_attribution_bound += p.false_probability.unwrap_or(1.0);
                    cand_n += 1;
                    cand_sum += 1;
                    if senders.contains(domain) && p.also.iter().all(|a| senders.contains(a)) {
                        correct += 1;
                        localized += 1;
                        found.insert(*domain);
                        found.extend(p.also.iter().copied());
                    } else {
                        wrong += 1;
                        wrong_confident += usize::from(confident);
                        if wrong_packets.len() < 20 {
                            wrong_packets.push(WrongPacket {
                                packet: p.packet,
                                digest: p.digest.clone(),
                                path: p.path.clone(),
                                named: std::iter::once(*domain)
                                    .chain(p.also.iter().copied())
                                    .collect(),
                                sent_by: copies(truth.digest)
                                    .iter()
                                    .map(|&k| s.sent[k].path.clone())
                                    .collect(),
                                false_probability: p.false_probability,
                            });
                        }
                    }
                    if uses_skip(g, &p.path) {
                        via_skip += 1;
                    }
                }
                PathEnd::Gap { .. } => {
                    gap_packets += 1;
                    if let Some(c) = candidates(s, &p.end) {
                        cand_n += 1;
                        cand_sum += c.len();
                        if c.len() <= 2 && senders.iter().any(|o| c.contains(o)) {
                            localized += 1;
                        }
                    }
                }
            }
        }
        let share = |n: usize| {
            if i.detected.is_empty() {
                0.0
            } else {
                n as f64 / i.detected.len() as f64
            }
        };
        let cond = &i.cfg.conditions;
        let background: Vec<&crate::scenario::Sent> = s.sent.iter().filter(|x| !x.attack).collect();
        let crossings: usize = background
            .iter()
            .map(|x| x.path.len().saturating_sub(1))
            .sum();
        let seconds = (s.end_ns - s.start_ns) as f64 / 1e9;
        let conditions = ConditionsReport {
            probe_fpr: cond.probe_fpr,
            background_packets: background.len(),
            background_pps_per_link: crossings as f64
                / (s.topology.link_count().max(1) as f64 * seconds.max(1e-9)),
            duplicates: cond.duplicates,
            duplicated_packets: s
                .sent
                .iter()
                .filter(|x| x.attack && copies(x.digest).len() > 1)
                .count(),
            multipath: cond.multipath,
            probes_down: i.down.len(),
            link_delay_ms: cond.link_delay.as_secs_f64() * 1e3,
            participants: if cond.core { "core" } else { "random" }.into(),
        };
        let detected = i.detected.len();
        let mut tree = Vec::new();
        let mut shown: BTreeMap<Asn, ()> = BTreeMap::new();
        for o in &g.origins {
            if shown.insert(o.domain, ()).is_some() {
                continue;
            }
            let path = g
                .paths
                .iter()
                .find(|p| p.end == PathEnd::Origin { domain: o.domain })
                .map(|p| path_text(g, &p.path))
                .unwrap_or_default();
            tree.push(Branch {
                origin: o.domain,
                packets: o.packets,
                true_origin: s.origins.contains(&o.domain),
                path,
            });
        }
        let gaps = g
            .gaps
            .iter()
            .map(|x| GapLine {
                last: x.last,
                behind: x.behind.clone(),
                reason: x.reason.clone(),
                packets: x.packets,
            })
            .collect();
        let mut t = i.times_ms.clone();
        let (median_ms, p99_ms, max_ms) = (
            percentile(&mut t, 0.5),
            percentile(&mut t, 0.99),
            t.last().copied().unwrap_or(0.0),
        );
        let (rss_bytes, threads) = rss_and_threads();
        Report {
            mode: i.cfg.mode.as_str().into(),
            topology: i.label.into(),
            domains: s.topology.len(),
            links: s.topology.link_count(),
            participants: s.participants.len(),
            participation: i.cfg.participation,
            victim: s.victim,
            origins: s.origins.clone(),
            packets: s.sent.len(),
            attack_packets: s.sent.iter().filter(|p| p.attack).count(),
            detected,
            attributed,
            correct,
            wrong,
            wrong_confident,
            attributed_confident,
            gap_packets,
            accuracy: if detected == 0 {
                0.0
            } else {
                correct as f64 / detected as f64
            },
            origins_found: found.len(),
            origins_total: s.origins.len(),
            skip_edges: g.edges.iter().filter(|e| !e.skipped.is_empty()).count(),
            packets_via_skip: via_skip,
            mean_path_fraction: if detected == 0 {
                0.0
            } else {
                fraction / detected as f64
            },
            expected_false_nodes: g.expected_false_nodes,
            traces: i.times_ms.len(),
            reuse_connections: i.cfg.reuse_connections,
            median_ms,
            p99_ms,
            max_ms,
            services: i.services,
            probes: s.taps.len(),
            setup_ms: i.setup.as_secs_f64() * 1e3,
            rss_bytes,
            threads,
            table_bytes: i.table_bytes,
            tree,
            gaps,
            sample: i.sample,
            sample_packet: i.sample_packet,
            throughput: i.throughput,
            files: i.files,
            store: i.store,
            stored_traces: i.stored_traces,
            out_dir: i.cfg.out_dir.display().to_string(),
            conditions,
            accuracy_bound: share(findable_n),
            false_attribution_bound,
            false_origin_bound: g.origins.iter().map(|o| o.false_probability).sum(),
            localized: share(localized),
            mean_candidates: if cand_n == 0 {
                0.0
            } else {
                cand_sum as f64 / cand_n as f64
            },
            truncated: g.truncated,
            capped: i.capped,
            wrong_packets,
        }
    }

    /// The report as text, for a terminal.
    pub fn text(&self) -> String {
        let mut o = String::new();
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        let _ = writeln!(
            o,
            "topology    {}: {} domains, {} links",
            self.topology, self.domains, self.links
        );
        let _ = writeln!(
            o,
            "federation  {} of {} domains run ashiato ({:.0} % asked); {} services on 127.0.0.1 ({} probes, {} controllers), one port each, mutual TLS",
            self.participants,
            self.domains,
            self.participation * 100.0,
            self.services,
            self.probes,
            self.services - self.probes,
        );
        let _ = writeln!(
            o,
            "memory      {:.1} MiB resident, {:.2} MiB of digest tables; {} threads; set up in {:.0} ms",
            mib(self.rss_bytes),
            mib(self.table_bytes),
            self.threads,
            self.setup_ms
        );
        let origins: Vec<String> = self.origins.iter().map(|a| format!("AS{a}")).collect();
        let _ = writeln!(
            o,
            "attack      {} spoofed SYNs from {} to AS{} ({} packets in all with background); the victim's detector flagged {}",
            self.attack_packets,
            origins.join(", "),
            self.victim,
            self.packets,
            self.detected
        );
        let _ = writeln!(o, "\nattack tree ({} mode), victim first:", self.mode);
        for b in &self.tree {
            let _ = writeln!(
                o,
                "  {:>5} packets  {}{}",
                b.packets,
                b.path,
                if b.true_origin {
                    ""
                } else {
                    "   (NOT a true origin)"
                }
            );
        }
        for x in &self.gaps {
            let behind: Vec<String> = x.behind.iter().map(|a| format!("AS{a}")).collect();
            let _ = writeln!(
                o,
                "  {:>5} packets  gap after AS{}: {}{}",
                x.packets,
                x.last,
                x.reason,
                if behind.is_empty() {
                    String::new()
                } else {
                    format!(" (behind: {})", behind.join(", "))
                }
            );
        }
        if !self.sample.is_empty() {
            let _ = writeln!(o, "\nevidence for one packet, hop by hop:");
            for e in &self.sample {
                let _ = writeln!(
                    o,
                    "  AS{:<10} {:<14} seen in epoch {} (FPR {:.1e}) → {}",
                    e.domain,
                    e.probe,
                    ashiato_wire::time::rfc3339(e.epoch_start_ns),
                    e.fpr,
                    e.outcome
                );
            }
        }
        let _ = writeln!(
            o,
            "\nexpected false nodes {:.2e}",
            self.expected_false_nodes
        );
        let _ = writeln!(
            o,
            "trace time  median {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} single-packet traces (POST /v1/trace over mutual TLS, wall time at the client; {})",
            self.median_ms,
            self.p99_ms,
            self.max_ms,
            self.traces,
            if self.reuse_connections {
                "connections reused"
            } else {
                "a new TLS handshake per request"
            }
        );
        let _ = writeln!(
            o,
            "accuracy    {:.3}: {} of {} detected packets attributed to their true origin, {} wrong ({} of them stated with confidence), {} in gaps; origins found {}/{}; {} via peering skip; path fraction {:.2}",
            self.accuracy,
            self.correct,
            self.detected,
            self.wrong,
            self.wrong_confident,
            self.gap_packets,
            self.origins_found,
            self.origins_total,
            self.packets_via_skip,
            self.mean_path_fraction
        );
        let _ = writeln!(
            o,
            "bound       {:.3} of the detected packets could be traced at all (origin participates, probes up, gaps within the skip's reach); false-attribution bound {:.2e} packets, false-origin bound {:.2e}",
            self.accuracy_bound, self.false_attribution_bound, self.false_origin_bound
        );
        let _ = writeln!(
            o,
            "localized   {:.3} (attributed, or in a gap of at most 2 candidate ASes holding the origin); {:.2} candidates on average{}{}",
            self.localized,
            self.mean_candidates,
            if self.truncated {
                "; REPORTS TRUNCATED"
            } else {
                ""
            },
            if self.capped > 0 {
                format!("; {} beyond lists capped", self.capped)
            } else {
                String::new()
            }
        );
        let c = &self.conditions;
        let _ = writeln!(
            o,
            "conditions  probes sized for {:.0e}; {} background packets ({:.1}/link/s); {} duplicated attack packets; multipath {:.0} %; {} probes down; {:.1} ms between domains; {} participants",
            c.probe_fpr,
            c.background_packets,
            c.background_pps_per_link,
            c.duplicated_packets,
            c.multipath * 100.0,
            c.probes_down,
            c.link_delay_ms,
            c.participants
        );
        if let Some(t) = &self.throughput {
            let _ = writeln!(
                o,
                "throughput  {:.0} single-packet traces/s at the victim ({} ok, {} failed, {} concurrent, median {:.1} ms, {:.0} s)",
                t.per_second, t.ok, t.failed, t.concurrency, t.median_ms, t.seconds
            );
        }
        let _ = writeln!(o, "\ngraph       {}", self.files.json.display());
        let _ = writeln!(o, "            {}", self.files.dot.display());
        match (&self.files.svg, &self.files.svg_missing) {
            (Some(p), _) => {
                let _ = writeln!(o, "            {}", p.display());
            }
            (None, Some(why)) => {
                let _ = writeln!(o, "            (no SVG: {why})");
            }
            _ => {}
        }
        let _ = writeln!(
            o,
            "store       {} ({} traces of the detected packets)",
            self.store, self.stored_traces
        );
        o
    }
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn nearest_rank_percentiles() {
        let mut v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&mut v, 0.5), 10.0);
        assert_eq!(percentile(&mut v, 0.99), 20.0);
        assert_eq!(percentile(&mut [], 0.5), 0.0);
    }
}
