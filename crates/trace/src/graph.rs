//! From hop reports to the attack graph, and the graph as Graphviz DOT.
//!
//! [`assemble`] follows each packet from the victim's report upstream: a transit domain's
//! branches go to the neighbours it entered from, an unknown one's to the links that could not
//! say; a `not_on_path` answer prunes its branch; a non-participant is crossed through the
//! skip reports of the domains beyond it.
//!
//! Then the evidence is weighed. Each hop of a branch is evidence only if the chance that
//! its sightings are all false matches is within the federation's bound (default 10⁻⁶): per
//! packet the best sighting of the hop (probes of one link hold the same traffic, so their
//! false matches are not independent), multiplied over the distinct packets of the trace
//! that crossed it (distinct digests' false matches are). A single packet through probes
//! sized at 10⁻³ is therefore honestly `unreliable`; fifty are not. Each packet ends:
//!
//! - at an **origin** when a reliable branch ends at an `origin` report; branches beside it
//!   that end in gaps are listed as `open`, but only a chain the packet's own sightings
//!   carry (within the bound) outranks them: a packet that rides on the combined evidence
//!   of its origin's other packets while it was also seen elsewhere is `ambiguous`.
//!   Reliable branches to several origins are the same packet sent from several places when
//!   the trace holds at least that many copies of its digest (each origin is given), and a
//!   contradiction otherwise;
//! - in a **gap** otherwise, naming the last domain that saw it and what lies behind:
//!   `not_seen_anywhere` (no probe of the victim's domain saw it), `unreliable`,
//!   `not_participating`, `unreachable`, `unknown`, `stopped`, `contradicted` (a probe saw
//!   it enter from a neighbour whose own tap of that link holds the window and did not see
//!   it), `several_gaps`, or `ambiguous` (evidence for more origins than copies, or an
//!   origin the packet's own sightings do not carry beside a branch that ends in a gap).
//!
//! A packet is never attributed to a domain that did not itself conclude `origin` on positive
//! evidence (`ashiato_trace::decide`): with partial deployment the honest answer is a gap,
//! not a guess. Every origin carries the probability that it is false, over its whole chain.
//! The graph's nodes and edges are the union of every packet's surviving branches (and the
//! unreliable hops that cut them, marked), with packet counts; [`merge`] joins the graphs of
//! several traces of one incident.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;

use ashiato_api::federation::{
    AttackGraph, DomainId, GapCount, GraphEdge, GraphNode, HopReport, MAX_CANDIDATES, MAX_EVIDENCE,
    MAX_VISITED, NodeRole, OpenBranch, OriginCount, Outcome, PacketPath, PathEnd, ProbeEvidence,
    ProbeVerdict, Via, Watch,
};

use ashiato_tables::theory::union_fpr;

use crate::topology::Topology;

/// One surviving branch of one packet's trace.
#[derive(Clone, Debug)]
struct Branch {
    /// Domains from the victim upstream.
    path: Vec<DomainId>,
    /// Hops (upstream, downstream, skipped) along it.
    hops: Vec<Hop>,
    /// How it ends.
    end: PathEnd,
    /// For an origin end: the chance its chain is false, each hop judged on the packets that
    /// lead through it to this origin; 1 otherwise.
    false_probability: f64,
    /// The same on this packet's own sightings alone.
    own_false_probability: f64,
}

type Key = (u32, DomainId, Via);

/// A hop: (upstream, downstream, non-participants skipped between).
type Hop = (DomainId, DomainId, Vec<DomainId>);

struct Index<'a> {
    by_key: HashMap<Key, &'a HopReport>,
    /// (packet, toward, first skipped) → skip reports.
    skips: HashMap<(u32, DomainId, DomainId), Vec<&'a HopReport>>,
}

impl<'a> Index<'a> {
    fn new(reports: &'a [HopReport]) -> Self {
        let mut by_key = HashMap::with_capacity(reports.len());
        let mut skips: HashMap<_, Vec<_>> = HashMap::new();
        for r in reports {
            // The first report for a key wins: a retry's duplicate answer adds nothing.
            by_key
                .entry((r.packet, r.domain, r.via.clone()))
                .or_insert(r);
            if let Via::Skip { toward, skipped } = &r.via
                && let Some(&first) = skipped.first()
            {
                skips.entry((r.packet, *toward, first)).or_default().push(r);
            }
        }
        for v in skips.values_mut() {
            v.sort_by_key(|r| r.domain);
            v.dedup_by_key(|r| r.domain);
        }
        Index { by_key, skips }
    }
}

fn gap(
    path: &[DomainId],
    hops: &[Hop],
    last: DomainId,
    behind: Vec<DomainId>,
    reason: &str,
) -> Branch {
    Branch {
        path: path.to_vec(),
        hops: hops.to_vec(),
        end: PathEnd::Gap {
            last,
            behind,
            reason: reason.to_string(),
        },
        false_probability: 1.0,
        own_false_probability: 1.0,
    }
}

struct Walker<'a, 'b> {
    ix: &'b Index<'a>,
    packet: u32,
    steps: usize,
}

/// Bound on the work spent per packet (reports visited), against hostile report sets.
const MAX_STEPS_PER_PACKET: usize = 4096;

/// Bound on the branches kept per packet: a hostile report listing millions of neighbours
/// must not turn into millions of branches to weigh.
const MAX_BRANCHES_PER_PACKET: usize = 256;

impl Walker<'_, '_> {
    /// Branches from `r`, the report of the last domain of `path`.
    fn follow(
        &mut self,
        r: &HopReport,
        path: &mut Vec<DomainId>,
        hops: &mut Vec<Hop>,
    ) -> Vec<Branch> {
        self.steps += 1;
        let d = r.domain;
        if self.steps > MAX_STEPS_PER_PACKET {
            return vec![gap(path, hops, d, Vec::new(), "stopped")];
        }
        match r.outcome {
            Outcome::Origin => vec![Branch {
                path: path.clone(),
                hops: hops.clone(),
                end: PathEnd::Origin { domain: d },
                false_probability: 1.0,
                own_false_probability: 1.0,
            }],
            Outcome::NotOnPath => Vec::new(),
            Outcome::Transit | Outcome::Unknown => {
                let transit = r.outcome == Outcome::Transit;
                let targets = if transit {
                    &r.entered_from
                } else {
                    &r.unknown_links
                };
                let mut ends = Vec::new();
                for &n in targets {
                    if ends.len() >= MAX_BRANCHES_PER_PACKET
                        || self.steps > MAX_STEPS_PER_PACKET
                        || path.len() > MAX_VISITED
                    {
                        ends.push(gap(path, hops, d, vec![n], "stopped"));
                        break;
                    }
                    ends.extend(self.child(d, n, path, hops));
                }
                if ends.is_empty() {
                    if transit {
                        ends.push(gap(path, hops, d, r.entered_from.clone(), "contradicted"));
                    } else {
                        ends.push(gap(path, hops, d, r.unknown_links.clone(), "unknown"));
                    }
                } else if transit && !r.unknown_links.is_empty() {
                    // Seen entering from some neighbours while others could not say: if those
                    // sightings were false matches, it came in where nobody could see.
                    ends.push(gap(path, hops, d, r.unknown_links.clone(), "unknown"));
                } else if transit
                    && r.via != Via::Edge
                    && r.evidence
                        .iter()
                        .any(|e| e.watches == Watch::Edge && e.verdict == ProbeVerdict::Seen)
                {
                    // Seen at its own customer edge too: if the sightings of its entry were
                    // false matches, it started here.
                    ends.push(gap(path, hops, d, Vec::new(), "unknown"));
                }
                ends
            }
            Outcome::Observed
            | Outcome::Unreachable
            | Outcome::Stopped
            | Outcome::NotParticipating => {
                let reason = match r.outcome {
                    Outcome::Unreachable => "unreachable",
                    Outcome::Stopped => "stopped",
                    Outcome::NotParticipating => "not_participating",
                    _ => "unknown",
                };
                vec![gap(path, hops, d, Vec::new(), reason)]
            }
        }
    }

    /// Branches through neighbour `n` of `d` (the last domain of `path`).
    fn child(
        &mut self,
        d: DomainId,
        n: DomainId,
        path: &mut Vec<DomainId>,
        hops: &mut Vec<Hop>,
    ) -> Vec<Branch> {
        self.steps += 1;
        let key = (self.packet, n, Via::Link { neighbour: d });
        let Some(r) = self.ix.by_key.get(&key).copied() else {
            return vec![gap(path, hops, d, vec![n], "unreachable")];
        };
        match r.outcome {
            Outcome::Unreachable => vec![gap(path, hops, d, vec![n], "unreachable")],
            Outcome::Stopped => vec![gap(path, hops, d, vec![n], "stopped")],
            Outcome::Observed => vec![gap(path, hops, d, vec![n], "unknown")],
            Outcome::NotParticipating => {
                let mut ends = Vec::new();
                let skips = self
                    .ix
                    .skips
                    .get(&(self.packet, d, n))
                    .cloned()
                    .unwrap_or_default();
                for s in skips {
                    let Via::Skip { skipped, .. } = &s.via else {
                        continue;
                    };
                    match s.outcome {
                        Outcome::NotOnPath => {}
                        Outcome::Unreachable | Outcome::Stopped | Outcome::Observed => {
                            let mut behind = skipped.clone();
                            behind.push(s.domain);
                            let reason = match s.outcome {
                                Outcome::Unreachable => "unreachable",
                                Outcome::Stopped => "stopped",
                                _ => "unknown",
                            };
                            ends.push(gap(path, hops, d, behind, reason));
                        }
                        _ => {
                            if path.contains(&s.domain) {
                                ends.push(gap(path, hops, d, vec![s.domain], "stopped"));
                                continue;
                            }
                            path.push(s.domain);
                            hops.push((s.domain, d, skipped.clone()));
                            ends.extend(self.follow(s, path, hops));
                            hops.pop();
                            path.pop();
                        }
                    }
                }
                if ends.is_empty() {
                    ends.push(gap(path, hops, d, vec![n], "not_participating"));
                }
                ends
            }
            _ => {
                if path.contains(&n) {
                    return vec![gap(path, hops, d, vec![n], "stopped")];
                }
                path.push(n);
                hops.push((n, d, Vec::new()));
                let ends = self.follow(r, path, hops);
                hops.pop();
                path.pop();
                ends
            }
        }
    }
}

/// The evidence that a packet crossed from `from` into `to` (through the non-participants
/// `skipped`, nearest to `to` first): `to`'s probes on its link toward `from`'s side, and
/// `from`'s probes on its link toward `to`'s side, that saw it. Returns (the sightings that
/// are evidence of this hop, the rest): across a skip, `to`'s sighting shows only that the
/// packet came from the skipped domain, not that it came from `from`.
fn hop_evidence(
    ix: &Index<'_>,
    packet: u32,
    (from, to, skipped): &Hop,
    to_via: &Via,
) -> (Vec<ProbeEvidence>, Vec<ProbeEvidence>) {
    let seen = |r: Option<&&HopReport>, neighbour: DomainId| -> Vec<ProbeEvidence> {
        r.map(|r| {
            r.evidence
                .iter()
                .filter(|e| {
                    e.verdict == ProbeVerdict::Seen && e.watches == Watch::Link { neighbour }
                })
                .cloned()
                .collect()
        })
        .unwrap_or_default()
    };
    let to_side = seen(
        ix.by_key.get(&(packet, *to, to_via.clone())),
        skipped.first().copied().unwrap_or(*from),
    );
    let mut from_side = seen(
        ix.by_key.get(&(packet, *from, via_into(*to, skipped))),
        skipped.last().copied().unwrap_or(*to),
    );
    if skipped.is_empty() {
        from_side.extend(to_side);
        (from_side, Vec::new())
    } else {
        (from_side, to_side)
    }
}

/// The chance that a packet's sightings of one hop are all false matches: its best sighting
/// (probes of one link hold the same traffic, so their false matches go together); 1 when
/// there is none.
fn sighting_false_match(ev: &[ProbeEvidence]) -> f64 {
    ev.iter()
        .map(ProbeEvidence::seen_false_match)
        .fold(1.0, f64::min)
}

/// How the downstream domain of hop `k` of `hops` was asked.
fn to_via_of(hops: &[Hop], k: usize) -> Via {
    if k == 0 {
        Via::Edge
    } else {
        let (_, next_to, next_skipped) = &hops[k - 1];
        via_into(*next_to, next_skipped)
    }
}

/// A hop as judged for the packets that lead through it to one end (an index of ends).
type Judged = (usize, Hop);

/// The false-match probability per judged hop, combined over distinct digests: a digest's
/// best sighting, multiplied over the digests (their table entries are independent).
#[derive(Default)]
struct HopOdds {
    /// judged hop → digest class → that class's best sighting.
    by_class: BTreeMap<Judged, BTreeMap<usize, f64>>,
}

impl HopOdds {
    fn add(&mut self, hop: &Judged, class: usize, p: f64) {
        let e = self
            .by_class
            .entry(hop.clone())
            .or_default()
            .entry(class)
            .or_insert(1.0);
        *e = e.min(p);
    }

    fn combined(&self, hop: &Judged) -> f64 {
        self.by_class
            .get(hop)
            .map_or(1.0, |m| m.values().product::<f64>())
    }
}

/// Builds the attack graph of a trace from every hop report it produced.
///
/// `digests` holds each packet's digest, in packet order (its length is the number of
/// packets): identical digests share their false matches, distinct ones do not. `truncated`
/// says reports were dropped on the way; `fpr_bound` is the federation's per-hop bound.
///
/// 1. Each packet's branches are followed from the victim's report, as the module docs say.
/// 2. Every hop of every branch gets its false-match probability: per packet its best
///    sighting on the hop, multiplied over the distinct digests that crossed it. A hop above
///    `fpr_bound` is `unreliable`: the branch ends there in a gap of that name.
/// 3. A packet ends at an origin when a reliable branch ends there and either no other
///    branch exists or the packet's own sightings of that chain are within the bound;
///    branches that end in gaps beside it are listed as `open`. A packet that rides on its
///    origin's combined evidence while it was also seen elsewhere ends `ambiguous` (its own
///    sighting may be the false one). Reliable branches to several origins are the same
///    packet sent from several places when the trace holds at least that many copies of the
///    digest (all are given, in `also`), and `ambiguous` otherwise.
/// 4. Each origin's false probability is its chain's, each hop combined over the packets
///    that lead through it to that origin: the chance that this domain is no origin of the
///    attack at all. Each packet's is its chain's on its own sightings alone: the chance
///    that this packet did not come from there (a packet whose sighting of a hop was a false
///    match can ride on the real attack's evidence of that hop; the graph's verdict on the
///    hop does not make its own sighting true).
pub fn assemble(
    victim: DomainId,
    digests: &[String],
    reports: Vec<HopReport>,
    truncated: bool,
    fpr_bound: f64,
) -> AttackGraph {
    let packets = u32::try_from(digests.len()).unwrap_or(u32::MAX);
    // A bound that is no probability (NaN from a stored graph, 0, above 1) would mark every
    // hop reliable or none: use the federation's default instead.
    let fpr_bound = if fpr_bound > 0.0 && fpr_bound <= 1.0 {
        fpr_bound
    } else {
        ashiato_api::federation::DEFAULT_FPR_BOUND
    };
    let ix = Index::new(&reports);
    // Digest classes: packets with one digest share one.
    let mut class_of_digest: HashMap<&str, usize> = HashMap::new();
    let classes: Vec<usize> = digests
        .iter()
        .enumerate()
        .map(|(i, d)| {
            if d.is_empty() {
                usize::MAX - i
            } else {
                let n = class_of_digest.len();
                *class_of_digest.entry(d.as_str()).or_insert(n)
            }
        })
        .collect();
    let mut copies: HashMap<usize, usize> = HashMap::new();
    for &c in &classes {
        *copies.entry(c).or_default() += 1;
    }

    // 1. Raw branches.
    let raw: Vec<Vec<Branch>> = (0..packets)
        .map(|p| match ix.by_key.get(&(p, victim, Via::Edge)).copied() {
            None => vec![gap(&[victim], &[], victim, Vec::new(), "unknown")],
            Some(r) if r.outcome == Outcome::NotOnPath => {
                vec![gap(&[victim], &[], victim, Vec::new(), "not_seen_anywhere")]
            }
            Some(r) => {
                let mut w = Walker {
                    ix: &ix,
                    packet: p,
                    steps: 0,
                };
                let mut path = vec![victim];
                let mut hops = Vec::new();
                let mut b = w.follow(r, &mut path, &mut hops);
                if b.is_empty() {
                    b.push(gap(&[victim], &[], victim, Vec::new(), "contradicted"));
                }
                b
            }
        })
        .collect();

    // 2. Every hop's odds, judged per end: the packets whose evidence leads through the hop
    //    to the same end (an origin, or one gap) combine; a packet's best sighting of the hop
    //    is its share.
    let mut ends: HashMap<PathEnd, usize> = HashMap::new();
    let mut end_id = |e: &PathEnd| {
        let n = ends.len();
        *ends.entry(e.clone()).or_insert(n)
    };
    let mut odds = HopOdds::default();
    let mut sightings: HashMap<(u32, Hop), f64> = HashMap::new();
    let mut samples: BTreeMap<Hop, Vec<ProbeEvidence>> = BTreeMap::new();
    let mut raw_ends: Vec<Vec<usize>> = Vec::with_capacity(raw.len());
    for (p, branches) in raw.iter().enumerate() {
        let p = p as u32;
        let mut ids = Vec::with_capacity(branches.len());
        for b in branches {
            let end = end_id(&b.end);
            ids.push(end);
            for (k, hop) in b.hops.iter().enumerate() {
                let fm = match sightings.get(&(p, hop.clone())) {
                    Some(&fm) => fm,
                    None => {
                        let (ev, beside) = hop_evidence(&ix, p, hop, &to_via_of(&b.hops, k));
                        let fm = sighting_false_match(&ev);
                        sightings.insert((p, hop.clone()), fm);
                        let sample = samples.entry(hop.clone()).or_default();
                        let room = MAX_EVIDENCE.saturating_sub(sample.len());
                        sample.extend(ev.into_iter().chain(beside).take(room));
                        fm
                    }
                };
                odds.add(&(end, hop.clone()), classes[p as usize], fm);
            }
        }
        raw_ends.push(ids);
    }
    // Per hop, the best of its groups: what the graph shows on the edge.
    let mut edge_odds: BTreeMap<Hop, f64> = BTreeMap::new();
    for (end, hop) in odds.by_class.keys() {
        let c = odds.combined(&(*end, hop.clone()));
        let e = edge_odds.entry(hop.clone()).or_insert(1.0);
        *e = e.min(c);
    }

    // Branches cut at their first unreliable hop.
    let mut cut_hops: BTreeMap<Hop, BTreeSet<u32>> = BTreeMap::new();
    let cut: Vec<Vec<Branch>> = raw
        .into_iter()
        .zip(raw_ends)
        .enumerate()
        .map(|(p, (branches, ids))| {
            let mut out: Vec<Branch> = Vec::new();
            let mut kept: HashSet<(Vec<DomainId>, PathEnd, Vec<Hop>)> = HashSet::new();
            for (b, end) in branches.into_iter().zip(ids) {
                let first_bad = b
                    .hops
                    .iter()
                    .position(|h| odds.combined(&(end, h.clone())) > fpr_bound);
                let nb = match first_bad {
                    None => b,
                    Some(k) => {
                        let (from, to, skipped) = b.hops[k].clone();
                        cut_hops
                            .entry(b.hops[k].clone())
                            .or_default()
                            .insert(p as u32);
                        let mut behind = skipped;
                        behind.push(from);
                        gap(&b.path[..=k], &b.hops[..k], to, behind, "unreliable")
                    }
                };
                let (chain, own) = match &nb.end {
                    PathEnd::Origin { .. } => (
                        union_fpr(nb.hops.iter().map(|h| odds.combined(&(end, h.clone())))),
                        union_fpr(nb.hops.iter().map(|h| {
                            sightings
                                .get(&(p as u32, h.clone()))
                                .copied()
                                .unwrap_or(1.0)
                        })),
                    ),
                    PathEnd::Gap { .. } => (1.0, 1.0),
                };
                if kept.insert((nb.path.clone(), nb.end.clone(), nb.hops.clone())) {
                    out.push(Branch {
                        false_probability: chain,
                        own_false_probability: own,
                        ..nb
                    });
                }
            }
            out
        })
        .collect();

    // 3. Settle each packet (each origin on its shortest reliable chain); an origin's chance
    //    of being false is the worst over its packets.
    let settled: Vec<Settled> = cut
        .into_iter()
        .enumerate()
        .map(|(p, branches)| settle(victim, branches, copies[&classes[p]], fpr_bound))
        .collect();
    let mut origin_false: BTreeMap<DomainId, f64> = BTreeMap::new();
    let mut origins: BTreeMap<DomainId, u32> = BTreeMap::new();
    for st in &settled {
        for (o, pf, _) in &st.chains {
            let e = origin_false.entry(*o).or_insert(0.0);
            *e = e.max(*pf);
            *origins.entry(*o).or_default() += 1;
        }
    }

    // Nodes, edges and gaps from what survives.
    let mut node_packets: BTreeMap<DomainId, (NodeRole, BTreeSet<u32>)> = BTreeMap::new();
    let mut edge_packets: BTreeMap<Hop, BTreeSet<u32>> = BTreeMap::new();
    let mut gaps: BTreeMap<(DomainId, Vec<DomainId>, String), u32> = BTreeMap::new();
    let bump = |m: &mut BTreeMap<DomainId, (NodeRole, BTreeSet<u32>)>,
                d: DomainId,
                role: NodeRole,
                p: u32| {
        let e = m.entry(d).or_insert((role, BTreeSet::new()));
        e.0 = stronger(e.0, role);
        e.1.insert(p);
    };
    let mut paths = Vec::with_capacity(settled.len());
    for (p, st) in settled.into_iter().enumerate() {
        let p = p as u32;
        bump(&mut node_packets, victim, NodeRole::Victim, p);
        for b in &st.branches {
            for (i, &d) in b.path.iter().enumerate().skip(1) {
                let role = match &b.end {
                    PathEnd::Origin { domain } if *domain == d && i + 1 == b.path.len() => {
                        NodeRole::Origin
                    }
                    _ => NodeRole::Transit,
                };
                bump(&mut node_packets, d, role, p);
            }
            if let PathEnd::Gap { behind, reason, .. } = &b.end {
                let role = match reason.as_str() {
                    "not_participating" => NodeRole::NotParticipating,
                    "unreachable" => NodeRole::Unreachable,
                    "stopped" => NodeRole::Stopped,
                    _ => NodeRole::Unknown,
                };
                for &d in behind {
                    if !b.path.contains(&d) {
                        bump(&mut node_packets, d, role, p);
                    }
                }
            }
            for h in &b.hops {
                edge_packets.entry(h.clone()).or_default().insert(p);
                for s in &h.2 {
                    bump(&mut node_packets, *s, NodeRole::NotParticipating, p);
                }
            }
        }
        if let PathEnd::Gap {
            last,
            behind,
            reason,
        } = &st.end
        {
            *gaps
                .entry((*last, behind.clone(), reason.clone()))
                .or_default() += 1;
        }
        paths.push(PacketPath {
            packet: p,
            path: st.path,
            end: st.end,
            digest: digests.get(p as usize).cloned().unwrap_or_default(),
            also: st.also,
            false_probability: st.chains.iter().map(|c| c.2).reduce(f64::max),
            open: st.open,
        });
    }
    for (hop, ps) in cut_hops {
        edge_packets.entry(hop).or_default().extend(ps);
    }
    let expected_false_nodes = reports
        .iter()
        .flat_map(|r| r.evidence.iter())
        .filter(|e| matches!(e.verdict, ProbeVerdict::Seen | ProbeVerdict::NotSeen))
        .map(|e| e.false_match)
        .filter(|x| x.is_finite() && *x >= 0.0)
        .sum();
    let nodes = node_packets
        .into_iter()
        .map(|(domain, (role, ps))| GraphNode {
            domain,
            role: if domain == victim {
                NodeRole::Victim
            } else {
                role
            },
            packets: ps.len() as u32,
            origin_packets: origins.get(&domain).copied().unwrap_or(0),
        })
        .collect();
    let edges = edge_packets
        .into_iter()
        .map(|(hop, ps)| {
            let fm = edge_odds.get(&hop).copied().unwrap_or(1.0);
            let evidence = samples.remove(&hop).unwrap_or_default();
            let (from, to, skipped) = hop;
            GraphEdge {
                from,
                to,
                packets: ps.len() as u32,
                skipped,
                evidence,
                false_match: fm,
                reliable: fm <= fpr_bound,
            }
        })
        .collect();
    let mut origins: Vec<OriginCount> = origins
        .into_iter()
        .map(|(domain, packets)| OriginCount {
            domain,
            packets,
            false_probability: origin_false.get(&domain).copied().unwrap_or(1.0),
        })
        .collect();
    origins.sort_by(|a, b| b.packets.cmp(&a.packets).then(a.domain.cmp(&b.domain)));
    let mut gaps: Vec<GapCount> = gaps
        .into_iter()
        .map(|((last, behind, reason), packets)| GapCount {
            last,
            behind,
            reason,
            packets,
            candidates: Vec::new(),
            candidates_truncated: false,
        })
        .collect();
    gaps.sort_by(|a, b| b.packets.cmp(&a.packets).then(a.last.cmp(&b.last)));
    AttackGraph {
        victim,
        packets,
        nodes,
        edges,
        origins,
        gaps,
        paths,
        expected_false_nodes,
        reports,
        truncated,
        fpr_bound,
    }
}

/// Lists, for every gap behind a domain that runs no controller, the ASes its packets can
/// have come from ([`Topology::gap_candidates`]: that domain and the non-participants behind
/// it, valley-free, at most 16 deep), so that a trace that must stop still says where the
/// origin can be. `participates` says who runs ashiato (they were asked, or can be).
pub fn add_candidates(
    g: &mut AttackGraph,
    topology: &Topology,
    participates: &dyn Fn(DomainId) -> bool,
) {
    for gap in &mut g.gaps {
        if gap.reason != "not_participating" {
            continue;
        }
        let Some(&n) = gap.behind.first() else {
            continue;
        };
        let mut c = topology.gap_candidates(n, gap.last, participates, 16);
        gap.candidates_truncated = c.len() > MAX_CANDIDATES;
        c.truncate(MAX_CANDIDATES);
        gap.candidates = c;
    }
}

/// How a domain was asked when the packet left it toward `to` (through `skipped`).
fn via_into(to: DomainId, skipped: &[DomainId]) -> Via {
    if skipped.is_empty() {
        Via::Link { neighbour: to }
    } else {
        Via::Skip {
            toward: to,
            skipped: skipped.to_vec(),
        }
    }
}

/// The stronger of two roles a domain plays for different packets.
fn stronger(a: NodeRole, b: NodeRole) -> NodeRole {
    let rank = |r: NodeRole| match r {
        NodeRole::Origin => 6,
        NodeRole::Transit => 5,
        NodeRole::Victim => 4,
        NodeRole::Unknown => 3,
        NodeRole::Unreachable => 2,
        NodeRole::Stopped => 1,
        NodeRole::NotParticipating => 0,
    };
    if rank(b) > rank(a) { b } else { a }
}

/// One packet, settled.
struct Settled {
    path: Vec<DomainId>,
    end: PathEnd,
    also: Vec<DomainId>,
    open: Vec<OpenBranch>,
    /// The branches drawn in the graph.
    branches: Vec<Branch>,
    /// Each attributed origin with the chance its chain is false, judged on its packets
    /// and on this packet alone.
    chains: Vec<(DomainId, f64, f64)>,
}

/// One packet's end from its branches (already cut at unreliable hops); `copies` is how
/// many packets of the trace share its digest.
fn settle(victim: DomainId, branches: Vec<Branch>, copies: usize, fpr_bound: f64) -> Settled {
    // The shortest reliable chain to each origin.
    let mut to_origin: BTreeMap<DomainId, &Branch> = BTreeMap::new();
    for b in &branches {
        if let PathEnd::Origin { domain } = b.end {
            let e = to_origin.entry(domain).or_insert(b);
            if b.path.len() < e.path.len() {
                *e = b;
            }
        }
    }
    let open = |b: &Branch| OpenBranch {
        path: b.path.clone(),
        end: b.end.clone(),
    };
    // A chain is this packet's own only if its own sightings are within the bound on every
    // hop: otherwise it rides on its origin's combined evidence, and a packet that was also
    // seen elsewhere (a branch ending in a gap) may have come that way instead — a probe
    // that holds the same traffic as the link, the origin's edge or the victim's tap of the
    // same link, repeats the false match. Seen nowhere else, it can only have come this way.
    let own = |b: &Branch| b.own_false_probability <= fpr_bound * b.hops.len().max(1) as f64;
    // Branches beyond what the copies of the digest explain: one of them is a false match.
    let gaps = branches
        .iter()
        .filter(|b| matches!(b.end, PathEnd::Gap { .. }))
        .count();
    let elsewhere = gaps > 0 && to_origin.len() + gaps > copies.max(1);
    if !to_origin.is_empty()
        && to_origin.len() <= copies.max(1)
        && (!elsewhere || to_origin.values().all(|b| own(b)))
    {
        let chains: Vec<(DomainId, f64, f64)> = to_origin
            .iter()
            .map(|(o, b)| (*o, b.false_probability, b.own_false_probability))
            .collect();
        let first = *to_origin.values().next().expect("non-empty");
        let (path, end) = (first.path.clone(), first.end.clone());
        let also = to_origin.keys().skip(1).copied().collect();
        let drawn: Vec<Branch> = branches
            .iter()
            .filter(|&b| {
                matches!(b.end, PathEnd::Gap { .. })
                    || to_origin.values().any(|&c| std::ptr::eq(c, b))
            })
            .cloned()
            .collect();
        let open = branches
            .iter()
            .filter(|b| matches!(b.end, PathEnd::Gap { .. }))
            .map(open)
            .collect();
        return Settled {
            path,
            end,
            also,
            open,
            branches: drawn,
            chains,
        };
    }
    if branches.len() == 1 {
        let b = branches.into_iter().next().expect("one branch");
        return Settled {
            path: b.path.clone(),
            end: b.end.clone(),
            also: Vec::new(),
            open: Vec::new(),
            branches: vec![b],
            chains: Vec::new(),
        };
    }
    // Several branches and no attribution: more origins than copies (a contradiction), or
    // several open branches.
    let reason = if !to_origin.is_empty() {
        "ambiguous".to_string()
    } else {
        let mut reasons: Vec<&str> = branches
            .iter()
            .filter_map(|b| match &b.end {
                PathEnd::Gap { reason, .. } => Some(reason.as_str()),
                PathEnd::Origin { .. } => None,
            })
            .collect();
        reasons.sort_unstable();
        reasons.dedup();
        if reasons.len() == 1 {
            reasons[0].to_string()
        } else {
            "several_gaps".to_string()
        }
    };
    // Longest common prefix of the branches.
    let mut prefix: Vec<DomainId> = branches.first().map(|b| b.path.clone()).unwrap_or_default();
    for b in &branches[1..] {
        let n = prefix
            .iter()
            .zip(&b.path)
            .take_while(|(x, y)| x == y)
            .count();
        prefix.truncate(n);
    }
    if prefix.is_empty() {
        prefix.push(victim);
    }
    let last = *prefix.last().expect("non-empty");
    let mut behind: Vec<DomainId> = branches
        .iter()
        .flat_map(|b| match b.path.get(prefix.len()) {
            Some(&d) => vec![d],
            None => match &b.end {
                PathEnd::Gap { behind, .. } => behind.clone(),
                PathEnd::Origin { .. } => Vec::new(),
            },
        })
        .collect();
    behind.sort_unstable();
    behind.dedup();
    // Every branch that could not be told apart, origins included.
    let open = branches.iter().map(open).collect();
    Settled {
        path: prefix,
        end: PathEnd::Gap {
            last,
            behind,
            reason,
        },
        also: Vec::new(),
        open,
        branches,
        chains: Vec::new(),
    }
}

/// Joins the graphs of several traces of one incident (same victim) into one attack tree:
/// packet indices are renumbered in order, counts add up.
pub fn merge(graphs: &[AttackGraph]) -> Option<AttackGraph> {
    let victim = graphs.first()?.victim;
    let bound = graphs.first()?.fpr_bound;
    let mut reports = Vec::new();
    let mut digests = Vec::new();
    let mut offset = 0u32;
    let mut truncated = false;
    for g in graphs.iter().filter(|g| g.victim == victim) {
        for r in &g.reports {
            let mut r = r.clone();
            r.packet = r.packet.saturating_add(offset);
            reports.push(r);
        }
        let mut ds = vec![String::new(); g.packets as usize];
        for p in &g.paths {
            if let Some(d) = ds.get_mut(p.packet as usize) {
                d.clone_from(&p.digest);
            }
        }
        digests.extend(ds);
        offset = offset.saturating_add(g.packets);
        truncated |= g.truncated;
    }
    Some(assemble(victim, &digests, reports, truncated, bound))
}

/// The graph as Graphviz DOT: the victim double-circled, origins red boxes, gaps dashed grey,
/// edges labelled with packet counts (dashed through skipped non-participants).
pub fn to_dot(g: &AttackGraph) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "digraph attack {{");
    let _ = writeln!(s, "  rankdir=BT;");
    let _ = writeln!(
        s,
        "  label=\"ashiato trace: {} packets to AS{}; {} origin domains; {} packets in gaps; expected false nodes {:.2e}\";",
        g.packets,
        g.victim,
        g.origins.len(),
        g.gaps.iter().map(|x| x.packets as u64).sum::<u64>(),
        g.expected_false_nodes
    );
    let _ = writeln!(s, "  labelloc=t; fontname=\"Helvetica\";");
    let _ = writeln!(
        s,
        "  node [fontname=\"Helvetica\"]; edge [fontname=\"Helvetica\"];"
    );
    for n in &g.nodes {
        let (shape, style) = match n.role {
            NodeRole::Victim => ("doublecircle", "filled\", fillcolor=\"#9ecae1"),
            NodeRole::Origin => ("box", "filled\", fillcolor=\"#fb6a4a"),
            NodeRole::Transit => ("ellipse", "solid"),
            _ => ("ellipse", "dashed\", color=\"grey50\", fontcolor=\"grey40"),
        };
        let role = match n.role {
            NodeRole::Victim => "victim",
            NodeRole::Transit => "transit",
            NodeRole::Origin => "origin",
            NodeRole::Unknown => "unknown",
            NodeRole::Unreachable => "unreachable",
            NodeRole::NotParticipating => "no ashiato",
            NodeRole::Stopped => "stopped",
        };
        let extra = match g.origins.iter().find(|o| o.domain == n.domain) {
            Some(o) if n.origin_packets > 0 => format!(
                "\\n{} packets start here\\nchance false {:.0e}",
                n.origin_packets, o.false_probability
            ),
            _ => String::new(),
        };
        let _ = writeln!(
            s,
            "  as{d} [label=\"AS{d}\\n{role}\\n{p} packets{extra}\", shape={shape}, style=\"{style}\"];",
            d = n.domain,
            p = n.packets,
        );
    }
    for e in &g.edges {
        let odds = if e.reliable {
            format!("false match {:.0e}", e.false_match)
        } else {
            format!("UNRELIABLE, false match {:.1e}", e.false_match)
        };
        let style = match (e.reliable, e.skipped.is_empty()) {
            (false, _) => "dotted\", color=\"grey50",
            (true, true) => "solid",
            (true, false) => "dashed",
        };
        let via = if e.skipped.is_empty() {
            String::new()
        } else {
            let v: Vec<String> = e.skipped.iter().map(|x| format!("AS{x}")).collect();
            format!(" (via {})", v.join(", "))
        };
        let _ = writeln!(
            s,
            "  as{} -> as{} [label=\"{}{via}\\n{odds}\", style=\"{style}\", penwidth={:.1}];",
            e.from,
            e.to,
            e.packets,
            1.0 + (e.packets as f64).log10().max(0.0)
        );
    }
    for gp in &g.gaps {
        for b in &gp.behind {
            if g.nodes.iter().any(|n| n.domain == *b) {
                let _ = writeln!(
                    s,
                    "  as{b} -> as{} [label=\"{} ({})\", style=dotted, color=\"grey50\"];",
                    gp.last, gp.packets, gp.reason
                );
            }
        }
    }
    let _ = writeln!(s, "}}");
    s
}
