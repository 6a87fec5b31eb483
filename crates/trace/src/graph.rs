//! From hop reports to the attack graph, and the graph as Graphviz DOT.
//!
//! [`assemble`] follows each packet from the victim's report upstream: a transit domain's
//! branches go to the neighbours it entered from, an unknown one's to the links that could not
//! say; a `not_on_path` answer prunes its branch; a non-participant is crossed through the
//! skip reports of the domains beyond it. Each packet ends:
//!
//! - at an **origin** when exactly one branch survives and it ends at an `origin` report (or
//!   every surviving branch ends at the same origin);
//! - in a **gap** otherwise, naming the last domain that saw it and what lies behind:
//!   `not_participating`, `unreachable`, `unknown`, `stopped`, `ambiguous` (several branches
//!   survive, e.g. a false positive nobody could refute), or `contradicted` (a probe saw it
//!   enter from a neighbour whose own tap of that link holds the window and did not see it).
//!
//! A packet is never attributed to a domain that did not itself conclude `origin`: with
//! partial deployment the honest answer is a gap, not a guess. The graph's nodes and edges are
//! the union of every packet's surviving branches, with packet counts; the packets of one DDoS
//! traced together form one attack tree with per-origin counts ([`merge`] joins the graphs of
//! several traces of one incident).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use ashiato_api::federation::{
    AttackGraph, DomainId, GapCount, GraphEdge, GraphNode, HopReport, MAX_EVIDENCE, NodeRole,
    OriginCount, Outcome, PacketPath, PathEnd, ProbeEvidence, ProbeVerdict, Via, Watch,
};

/// One surviving branch of one packet's trace.
#[derive(Clone, Debug)]
struct Branch {
    /// Domains from the victim upstream.
    path: Vec<DomainId>,
    /// Hops (upstream, downstream, skipped) along it.
    hops: Vec<Hop>,
    /// How it ends.
    end: PathEnd,
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
    }
}

struct Walker<'a, 'b> {
    ix: &'b Index<'a>,
    packet: u32,
    steps: usize,
}

/// Bound on the work spent per packet (reports visited), against hostile report sets.
const MAX_STEPS_PER_PACKET: usize = 4096;

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
                    ends.extend(self.child(d, n, path, hops));
                }
                if ends.is_empty() {
                    if transit {
                        ends.push(gap(path, hops, d, r.entered_from.clone(), "contradicted"));
                    } else {
                        ends.push(gap(path, hops, d, r.unknown_links.clone(), "unknown"));
                    }
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

/// The evidence that a packet crossed from `from` into `to`: `to`'s probes on the link to
/// `from`, and `from`'s probes on the link to `to`, that saw it.
fn hop_evidence(
    ix: &Index<'_>,
    packet: u32,
    from: DomainId,
    to: DomainId,
    to_via: Option<&Via>,
    from_via: &Via,
) -> Vec<ProbeEvidence> {
    let mut out = Vec::new();
    let mut take = |r: Option<&&HopReport>, neighbour: DomainId| {
        if let Some(r) = r {
            out.extend(
                r.evidence
                    .iter()
                    .filter(|e| {
                        e.verdict == ProbeVerdict::Seen && e.watches == Watch::Link { neighbour }
                    })
                    .cloned(),
            );
        }
    };
    if let Some(v) = to_via {
        take(ix.by_key.get(&(packet, to, v.clone())), from);
    }
    take(ix.by_key.get(&(packet, from, from_via.clone())), to);
    out
}

/// Builds the attack graph of a trace of `packets` packets detected at `victim` from every
/// hop report it produced (`truncated`: some reports were dropped on the way).
pub fn assemble(
    victim: DomainId,
    packets: u32,
    reports: Vec<HopReport>,
    truncated: bool,
) -> AttackGraph {
    let ix = Index::new(&reports);
    let mut paths = Vec::with_capacity(packets as usize);
    let mut node_packets: BTreeMap<DomainId, (NodeRole, BTreeSet<u32>)> = BTreeMap::new();
    let mut edges: BTreeMap<Hop, (BTreeSet<u32>, Vec<ProbeEvidence>)> = BTreeMap::new();
    let mut origins: BTreeMap<DomainId, u32> = BTreeMap::new();
    let mut gaps: BTreeMap<(DomainId, Vec<DomainId>, String), u32> = BTreeMap::new();
    let bump = |m: &mut BTreeMap<DomainId, (NodeRole, BTreeSet<u32>)>,
                d: DomainId,
                role: NodeRole,
                p: u32| {
        let e = m.entry(d).or_insert((role, BTreeSet::new()));
        e.0 = stronger(e.0, role);
        e.1.insert(p);
    };
    for p in 0..packets {
        let branches = match ix.by_key.get(&(p, victim, Via::Edge)).copied() {
            None => vec![gap(&[victim], &[], victim, Vec::new(), "unknown")],
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
        };
        bump(&mut node_packets, victim, NodeRole::Victim, p);
        for b in &branches {
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
            for (k, (from, to, skipped)) in b.hops.iter().enumerate() {
                let e = edges
                    .entry((*from, *to, skipped.clone()))
                    .or_insert_with(|| (BTreeSet::new(), Vec::new()));
                if e.0.insert(p) && e.1.len() < MAX_EVIDENCE {
                    // The downstream domain was asked via the hop before this one.
                    let to_via = if k == 0 {
                        Some(Via::Edge)
                    } else {
                        let (_, next_to, next_skipped) = &b.hops[k - 1];
                        Some(via_into(*next_to, next_skipped))
                    };
                    let from_via = via_into(*to, skipped);
                    let ev = hop_evidence(&ix, p, *from, *to, to_via.as_ref(), &from_via);
                    let room = MAX_EVIDENCE - e.1.len();
                    e.1.extend(ev.into_iter().take(room));
                }
            }
            for s in b.hops.iter().flat_map(|h| h.2.iter()) {
                bump(&mut node_packets, *s, NodeRole::NotParticipating, p);
            }
        }
        let (path, end) = settle(victim, branches);
        match &end {
            PathEnd::Origin { domain } => *origins.entry(*domain).or_default() += 1,
            PathEnd::Gap {
                last,
                behind,
                reason,
            } => {
                *gaps
                    .entry((*last, behind.clone(), reason.clone()))
                    .or_default() += 1
            }
        }
        paths.push(PacketPath {
            packet: p,
            path,
            end,
        });
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
    let edges = edges
        .into_iter()
        .map(|((from, to, skipped), (ps, evidence))| GraphEdge {
            from,
            to,
            packets: ps.len() as u32,
            skipped,
            evidence,
        })
        .collect();
    let mut origins: Vec<OriginCount> = origins
        .into_iter()
        .map(|(domain, packets)| OriginCount { domain, packets })
        .collect();
    origins.sort_by(|a, b| b.packets.cmp(&a.packets).then(a.domain.cmp(&b.domain)));
    let mut gaps: Vec<GapCount> = gaps
        .into_iter()
        .map(|((last, behind, reason), packets)| GapCount {
            last,
            behind,
            reason,
            packets,
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

/// One packet's path and end from its surviving branches.
fn settle(victim: DomainId, branches: Vec<Branch>) -> (Vec<DomainId>, PathEnd) {
    if branches.len() == 1 {
        let b = branches.into_iter().next().expect("one branch");
        return (b.path, b.end);
    }
    let first_origin = match branches.first().map(|b| &b.end) {
        Some(PathEnd::Origin { domain }) => Some(*domain),
        _ => None,
    };
    if let Some(o) = first_origin
        && branches
            .iter()
            .all(|b| b.end == PathEnd::Origin { domain: o })
    {
        let b = branches.into_iter().next().expect("non-empty");
        return (b.path, b.end);
    }
    // Longest common prefix of the surviving branches.
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
        .filter_map(|b| b.path.get(prefix.len()).copied())
        .collect();
    behind.sort_unstable();
    behind.dedup();
    (
        prefix,
        PathEnd::Gap {
            last,
            behind,
            reason: "ambiguous".to_string(),
        },
    )
}

/// Joins the graphs of several traces of one incident (same victim) into one attack tree:
/// packet indices are renumbered in order, counts add up.
pub fn merge(graphs: &[AttackGraph]) -> Option<AttackGraph> {
    let victim = graphs.first()?.victim;
    let mut reports = Vec::new();
    let mut offset = 0u32;
    let mut truncated = false;
    for g in graphs.iter().filter(|g| g.victim == victim) {
        for r in &g.reports {
            let mut r = r.clone();
            r.packet = r.packet.saturating_add(offset);
            reports.push(r);
        }
        offset = offset.saturating_add(g.packets);
        truncated |= g.truncated;
    }
    Some(assemble(victim, offset, reports, truncated))
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
        let extra = if n.origin_packets > 0 {
            format!("\\n{} packets start here", n.origin_packets)
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "  as{d} [label=\"AS{d}\\n{role}\\n{p} packets{extra}\", shape={shape}, style=\"{style}\"];",
            d = n.domain,
            p = n.packets,
        );
    }
    for e in &g.edges {
        if e.skipped.is_empty() {
            let _ = writeln!(
                s,
                "  as{} -> as{} [label=\"{}\", penwidth={:.1}];",
                e.from,
                e.to,
                e.packets,
                1.0 + (e.packets as f64).log10().max(0.0)
            );
        } else {
            let via: Vec<String> = e.skipped.iter().map(|x| format!("AS{x}")).collect();
            let _ = writeln!(
                s,
                "  as{} -> as{} [label=\"{} (via {})\", style=dashed];",
                e.from,
                e.to,
                e.packets,
                via.join(", ")
            );
        }
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
