//! The trace planner against a model federation: random domain graphs, random paths, random
//! participation and dead probes, perfect or faulty evidence.
//!
//! Properties: no path repeats a domain (no loops); no path is longer than the hop budget;
//! `unknown` is never turned into `not on path` or `origin`; with truthful probes a packet is
//! attributed only to its true origin, and at full participation with every probe alive it
//! always is.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use ashiato_api::federation::{
    DomainId, DomainView, HopReport, NeighbourView, Outcome, PathEnd, ProbeEvidence, ProbeVerdict,
    SkipTarget, Via, Watch,
};

/// The federation's per-hop false-match bound in these tests.
const BOUND: f64 = 1e-6;
use ashiato_trace::decide::{decide, next_asks, report};
use ashiato_trace::graph::{assemble, merge, to_dot};
use ashiato_trace::walk::{Observation, mesh_reports};
use proptest::prelude::*;

/// A model federation.
#[derive(Clone, Debug)]
struct Model {
    adj: BTreeMap<DomainId, BTreeSet<DomainId>>,
    participates: BTreeSet<DomainId>,
    /// Probes that do not answer: (domain, watched neighbour).
    dead: BTreeSet<(DomainId, DomainId)>,
    /// Links with no probe at all: (domain, neighbour).
    unwatched: BTreeSet<(DomainId, DomainId)>,
    /// Probes per watched link (several probes tap a busy link).
    probes_per_link: usize,
    /// False matches: (domain, watched neighbour — 0 for the edge —, packet).
    false_hits: BTreeSet<(DomainId, DomainId, u32)>,
    /// The false-match probability a false match is reported with (true sightings: 1e-7).
    false_hit_fp: f64,
}

fn id(i: usize) -> DomainId {
    64500 + i as DomainId
}

impl Model {
    fn build(n: usize, extra: &[(usize, usize)], parent: &[usize]) -> Model {
        let mut adj: BTreeMap<DomainId, BTreeSet<DomainId>> = BTreeMap::new();
        for i in 0..n {
            adj.entry(id(i)).or_default();
        }
        let mut link = |a: usize, b: usize| {
            if a != b {
                adj.entry(id(a)).or_default().insert(id(b));
                adj.entry(id(b)).or_default().insert(id(a));
            }
        };
        for i in 1..n {
            link(i, parent[i - 1] % i);
        }
        for &(a, b) in extra {
            link(a % n, b % n);
        }
        Model {
            adj,
            participates: BTreeSet::new(),
            dead: BTreeSet::new(),
            unwatched: BTreeSet::new(),
            probes_per_link: 1,
            false_hits: BTreeSet::new(),
            false_hit_fp: 0.5,
        }
    }

    fn shortest_path(&self, from: DomainId, to: DomainId) -> Vec<DomainId> {
        let mut prev: BTreeMap<DomainId, DomainId> = BTreeMap::new();
        let mut q = VecDeque::from([from]);
        let mut seen = BTreeSet::from([from]);
        while let Some(x) = q.pop_front() {
            if x == to {
                break;
            }
            for &y in &self.adj[&x] {
                if seen.insert(y) {
                    prev.insert(y, x);
                    q.push_back(y);
                }
            }
        }
        let mut path = vec![to];
        let mut cur = to;
        while cur != from {
            cur = prev[&cur];
            path.push(cur);
        }
        path.reverse();
        path
    }

    /// Participating domains reached from `d`'s non-participating neighbour `n` through
    /// non-participants (depth ≤ 2), with the chain skipped.
    fn beyond(&self, d: DomainId, n: DomainId) -> Vec<SkipTarget> {
        let mut out = Vec::new();
        for &x in &self.adj[&n] {
            if x == d {
                continue;
            }
            if self.participates.contains(&x) {
                out.push(SkipTarget {
                    domain: x,
                    skipped: vec![n],
                });
            } else {
                for &y in &self.adj[&x] {
                    if y != n && y != d && self.participates.contains(&y) {
                        out.push(SkipTarget {
                            domain: y,
                            skipped: vec![n, x],
                        });
                    }
                }
            }
        }
        out.sort_by_key(|t| (t.domain, t.skipped.clone()));
        out.dedup_by_key(|t| t.domain);
        out
    }

    fn view(&self, d: DomainId) -> DomainView {
        DomainView {
            domain: d,
            neighbours: self.adj[&d]
                .iter()
                .map(|&n| NeighbourView {
                    domain: n,
                    participates: self.participates.contains(&n),
                    beyond: if self.participates.contains(&n) {
                        Vec::new()
                    } else {
                        self.beyond(d, n)
                    },
                })
                .collect(),
            watched: std::iter::once(Watch::Edge)
                .chain(
                    self.adj[&d]
                        .iter()
                        .filter(|&&n| !self.unwatched.contains(&(d, n)))
                        .map(|&n| Watch::Link { neighbour: n }),
                )
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
        }
    }

    /// What `d`'s probes say about packet `packet`, which took `path` (origin first): one
    /// edge probe (it saw the packet leave its origin or reach its victim) and
    /// `probes_per_link` probes per watched link.
    fn evidence(&self, d: DomainId, path: &[DomainId], packet: u32) -> Vec<ProbeEvidence> {
        let pos = path.iter().position(|&x| x == d);
        let mut ev = Vec::new();
        let mut add = |watches: Watch, n: DomainId, truly: bool, dead: bool, k: usize| {
            let falsely = self.false_hits.contains(&(d, n, packet));
            let verdict = if dead {
                ProbeVerdict::Unreachable
            } else if truly || falsely {
                ProbeVerdict::Seen
            } else {
                ProbeVerdict::NotSeen
            };
            let fp = if truly { 1e-7 } else { self.false_hit_fp };
            ev.push(ProbeEvidence {
                probe: format!("p{d}-{n}-{k}"),
                watches,
                verdict,
                epoch_start_ns: None,
                epoch_end_ns: None,
                fpr: None,
                false_match: if verdict == ProbeVerdict::Seen {
                    fp
                } else {
                    1e-7
                },
                reason: dead.then(|| "dead".to_string()),
            });
        };
        let at_edge = pos.is_some_and(|i| i == 0 || i + 1 == path.len());
        add(Watch::Edge, 0, at_edge, false, 0);
        for &n in &self.adj[&d] {
            if self.unwatched.contains(&(d, n)) {
                continue;
            }
            let crossed = pos.is_some_and(|i| {
                (i > 0 && path[i - 1] == n) || (i + 1 < path.len() && path[i + 1] == n)
            });
            for k in 0..self.probes_per_link.max(1) {
                // Of several probes on one link, only the first may be dead.
                let dead = k == 0 && self.dead.contains(&(d, n));
                add(Watch::Link { neighbour: n }, n, crossed, dead, k);
            }
        }
        ev
    }

    /// Every participant's summarised observations, as a mesh initiator receives them.
    fn observations(&self, paths: &[Vec<DomainId>]) -> BTreeMap<DomainId, Observation> {
        self.participates
            .iter()
            .map(|&d| {
                let view = self.view(d);
                let evidence = paths
                    .iter()
                    .enumerate()
                    .map(|(p, path)| {
                        let full = self.evidence(d, path, p as u32);
                        (p as u32, report(&view, p as u32, &Via::Any, &full).evidence)
                    })
                    .collect();
                (d, Observation::Observed { view, evidence })
            })
            .collect()
    }

    /// The reports of a recursive trace, each domain deciding on its full, unsummarised
    /// evidence (as the controller does) — the reference for mesh mode.
    fn recursive_reports(
        &self,
        victim: DomainId,
        paths: &[Vec<DomainId>],
        budget: u8,
    ) -> Vec<HopReport> {
        let mut out = Vec::new();
        for (p, path) in paths.iter().enumerate() {
            let p = p as u32;
            let mut done = BTreeSet::new();
            let mut stack = vec![(victim, Via::Edge, Vec::<DomainId>::new(), budget)];
            while let Some((d, via, mut visited, budget)) = stack.pop() {
                if !done.insert((d, via.clone())) {
                    continue;
                }
                if !self.participates.contains(&d) {
                    out.push(ashiato_trace::decide::bare_report(
                        d,
                        p,
                        via,
                        Outcome::Unreachable,
                        format!("AS{d} is not in this controller's participant list"),
                    ));
                    continue;
                }
                let view = self.view(d);
                let r = report(&view, p, &via, &self.evidence(d, path, p));
                visited.push(d);
                let next = next_asks(&view, &r, &visited, budget.saturating_sub(1));
                out.extend(next.reports);
                for a in next.asks.into_iter().rev() {
                    stack.push((a.domain, a.via, visited.clone(), budget.saturating_sub(1)));
                }
                out.push(r);
            }
        }
        out
    }
}

/// Distinct digests for `n` packets.
fn digests(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{:032x}", i + 1)).collect()
}

/// A random model: n domains, a random spanning tree plus extra links.
fn model() -> impl Strategy<Value = (Model, usize, u64)> {
    (3usize..24)
        .prop_flat_map(|n| {
            (
                Just(n),
                proptest::collection::vec(0usize..1000, n - 1),
                proptest::collection::vec((0usize..1000, 0usize..1000), 0..n),
                any::<u64>(),
            )
        })
        .prop_map(|(n, parent, extra, seed)| (Model::build(n, &extra, &parent), n, seed))
}

fn pick(seed: u64, salt: u64, n: usize) -> usize {
    (ashiato_rng::mix64(seed ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15)) % n as u64) as usize
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Truthful probes: an origin is only ever the true one; no loops; the budget holds;
    /// at full participation with live probes every packet reaches its origin.
    #[test]
    fn attributions_are_never_wrong((mut m, n, seed) in model(), share in 0u32..=100, dead_share in 0u32..30, budget in 1u8..12) {
        let victim = id(pick(seed, 1, n));
        for i in 0..n {
            if i as u64 * 100 / n as u64 <= share as u64 || pick(seed, 100 + i as u64, 100) < share as usize {
                m.participates.insert(id(i));
            }
        }
        m.participates.insert(victim);
        let links: Vec<(DomainId, DomainId)> = m.adj.iter().flat_map(|(&a, ns)| ns.iter().map(move |&b| (a, b))).collect();
        for (k, &l) in links.iter().enumerate() {
            if pick(seed, 5000 + k as u64, 100) < dead_share as usize {
                m.dead.insert(l);
            }
        }
        let origins: Vec<DomainId> = (0..4).map(|k| id(pick(seed, 10 + k, n))).collect();
        let paths: Vec<Vec<DomainId>> = origins.iter().map(|&o| m.shortest_path(o, victim)).collect();
        let obs = m.observations(&paths);
        let idx: Vec<u32> = (0..paths.len() as u32).collect();
        let reports = mesh_reports(victim, &idx, &obs, budget);
        let g = assemble(victim, &digests(paths.len()), reports, false, BOUND);
        for pp in &g.paths {
            let uniq: BTreeSet<_> = pp.path.iter().collect();
            prop_assert_eq!(uniq.len(), pp.path.len(), "loop in {:?}", pp.path);
            prop_assert!(pp.path.len() <= budget as usize, "path {:?} longer than budget {}", pp.path, budget);
            prop_assert_eq!(pp.path[0], victim);
            if let PathEnd::Origin { domain } = pp.end {
                prop_assert_eq!(domain, origins[pp.packet as usize], "packet {} attributed to AS{} but came from AS{}", pp.packet, domain, origins[pp.packet as usize]);
            }
        }
        let full = m.participates.len() == n && m.dead.is_empty();
        if full {
            for pp in &g.paths {
                let truth = &paths[pp.packet as usize];
                if truth.len() <= budget as usize {
                    prop_assert_eq!(&pp.end, &PathEnd::Origin { domain: origins[pp.packet as usize] });
                    let mut expect = truth.clone();
                    expect.reverse();
                    prop_assert_eq!(&pp.path, &expect);
                }
            }
        }
        for r in &g.reports {
            prop_assert!(r.outcome != Outcome::Observed);
        }
    }

    /// `decide` on arbitrary evidence: not-on-path only when every probe on the exit link
    /// answered not_seen; origin only when every other link answered not_seen; never either
    /// when a link that could have carried the packet could not say.
    #[test]
    fn unknown_is_never_reported_as_absent(
        neighbours in proptest::collection::btree_set(1u32..12, 1..8),
        verdicts in proptest::collection::vec((1u32..12, 0u8..4), 0..24),
        exit in prop_oneof![Just(None), (1u32..12).prop_map(Some)],
    ) {
        let view = DomainView {
            domain: 100,
            neighbours: neighbours.iter().map(|&d| NeighbourView { domain: d, participates: true, beyond: Vec::new() }).collect(),
            watched: Vec::new(),
        };
        let evidence: Vec<ProbeEvidence> = verdicts.iter().enumerate().map(|(i, &(n, v))| ProbeEvidence {
            probe: format!("p{i}"),
            watches: Watch::Link { neighbour: n },
            verdict: [ProbeVerdict::Seen, ProbeVerdict::NotSeen, ProbeVerdict::Unknown, ProbeVerdict::Unreachable][v as usize],
            epoch_start_ns: None, epoch_end_ns: None, fpr: None, false_match: 0.0, reason: None,
        }).collect();
        let via = match exit { None => Via::Edge, Some(n) => Via::Link { neighbour: n } };
        let d = decide(&view, &via, &evidence);
        let on = |n: u32| evidence.iter().filter(move |e| e.watches == Watch::Link { neighbour: n });
        let all_not_seen = |n: u32| on(n).count() > 0 && on(n).all(|e| e.verdict == ProbeVerdict::NotSeen);
        match d.outcome {
            Outcome::NotOnPath => match exit {
                Some(x) => prop_assert!(all_not_seen(x)),
                // At the victim: every link held the window and none saw it.
                None => {
                    for &n in &neighbours {
                        prop_assert!(all_not_seen(n), "not seen anywhere although the link to {} did not answer not_seen", n);
                    }
                }
            },
            Outcome::Origin => {
                // No edge probe here: only a `seen` on the exit link is positive evidence.
                let x = exit.expect("the victim without an edge probe is never the origin");
                prop_assert!(on(x).any(|e| e.verdict == ProbeVerdict::Seen));
                for &n in &neighbours {
                    if Some(n) != exit {
                        prop_assert!(all_not_seen(n), "origin although the link to {} did not answer not_seen", n);
                    }
                }
            }
            Outcome::Transit => {
                for &n in &d.entered_from {
                    prop_assert!(on(n).any(|e| e.verdict == ProbeVerdict::Seen));
                }
            }
            Outcome::Unknown => {}
            other => prop_assert!(false, "unexpected outcome {other:?}"),
        }
    }

    /// The hard cases together: false matches, each reported with a false-match probability
    /// at least as high as the rate they are injected at,
    /// identical packets sent from two origins, several probes per link (more than a report
    /// used to carry), dead probes, partial participation. No origin is ever wrong; none is
    /// stated above the bound; mesh mode (summarised evidence, decided by the initiator)
    /// gives exactly the graph of recursive mode (each domain on its full evidence).
    #[test]
    fn no_wrong_origin_under_false_matches_and_mesh_equals_recursive(
        (mut m, n, seed) in model(),
        share in 30u32..=100,
        dead_share in 0u32..15,
        false_share in 0u32..40,
        probes_per_link in prop_oneof![Just(1usize), Just(3), Just(70)],
        duplicate in any::<bool>(),
        npk in 1usize..7,
    ) {
        let victim = id(pick(seed, 1, n));
        for i in 0..n {
            if pick(seed, 100 + i as u64, 100) < share as usize {
                m.participates.insert(id(i));
            }
        }
        m.participates.insert(victim);
        m.probes_per_link = probes_per_link;
        let links: Vec<(DomainId, DomainId)> = m.adj.iter().flat_map(|(&a, ns)| ns.iter().map(move |&b| (a, b))).collect();
        for (k, &l) in links.iter().enumerate() {
            if pick(seed, 5000 + k as u64, 100) < dead_share as usize {
                m.dead.insert(l);
            }
        }
        // Each origin sends npk packets; with `duplicate`, the last packet of origin 1 is
        // sent identically by origin 0 too (same digest).
        let origins: Vec<DomainId> = (0..3).map(|k| id(pick(seed, 10 + k, n))).collect();
        let mut paths = Vec::new();
        let mut truth: Vec<DomainId> = Vec::new();
        let mut ds = Vec::new();
        for (k, &o) in origins.iter().enumerate() {
            for j in 0..npk {
                paths.push(m.shortest_path(o, victim));
                truth.push(o);
                ds.push(format!("{:030x}{k:01x}{j:01x}", 7));
            }
        }
        if duplicate {
            paths.push(m.shortest_path(origins[0], victim));
            truth.push(origins[0]);
            let twin = ds[2 * npk - 1].clone();
            ds.push(twin);
        }
        // False matches at either end of links (and at edges), reported at 0.2 or more.
        // Reported at least as likely as they are injected (at most 39 %).
        m.false_hit_fp = 0.4 + (pick(seed, 77, 60) as f64) / 100.0;
        for p in 0..paths.len() as u32 {
            for (k, &(a, b)) in links.iter().enumerate() {
                if pick(seed, 9000 + k as u64 * 131 + u64::from(p) * 7919, 100) < false_share as usize {
                    m.false_hits.insert((a, b, p));
                    // Probes at both ends of a link hold the same traffic: often both match.
                    if pick(seed, 3 + k as u64 + u64::from(p), 2) == 0 {
                        m.false_hits.insert((b, a, p));
                    }
                }
            }
            for i in 0..n {
                if pick(seed, 40_000 + i as u64 * 37 + u64::from(p), 100) < false_share as usize / 2 {
                    m.false_hits.insert((id(i), 0, p));
                }
            }
        }
        let budget = 16;
        let idx: Vec<u32> = (0..paths.len() as u32).collect();
        let mesh = assemble(victim, &ds, mesh_reports(victim, &idx, &m.observations(&paths), budget), false, BOUND);
        let rec = assemble(victim, &ds, m.recursive_reports(victim, &paths, budget), false, BOUND);
        prop_assert_eq!(&mesh.paths, &rec.paths);
        prop_assert_eq!(&mesh.origins, &rec.origins);
        prop_assert_eq!(&mesh.gaps, &rec.gaps);
        for pp in &mesh.paths {
            if let PathEnd::Origin { domain } = pp.end {
                let own = pp.false_probability.expect("an attribution says how sure it is");
                if own > BOUND * pp.path.len() as f64 {
                    // Not stated with confidence: the packet's own sightings may be false
                    // matches (it rides on its origin's combined evidence), and it says so.
                    continue;
                }
                // The digest's true origins: every packet that shares it.
                let senders: BTreeSet<DomainId> = ds.iter().enumerate().filter(|(_, d)| **d == ds[pp.packet as usize]).map(|(i, _)| truth[i]).collect();
                prop_assert!(senders.contains(&domain), "packet {} attributed to AS{} but sent by {:?}", pp.packet, domain, senders);
                for a in &pp.also {
                    prop_assert!(senders.contains(a), "packet {} also attributed to AS{} but sent by {:?}", pp.packet, a, senders);
                }
            }
        }
        // Every origin named is a true origin, and none is stated above the bound per hop.
        for o in &mesh.origins {
            prop_assert!(truth.contains(&o.domain), "AS{} named an origin; truth {:?}", o.domain, truth);
            prop_assert!(o.false_probability <= BOUND * n as f64, "AS{} stated at {}", o.domain, o.false_probability);
        }
    }

    /// The next asks respect the budget and never revisit the branch.
    #[test]
    fn next_asks_respect_budget_and_visited(
        entered in proptest::collection::btree_set(1u32..10, 0..6),
        visited in proptest::collection::vec(1u32..10, 0..5),
        participates in proptest::collection::vec(any::<bool>(), 10),
        budget in 0u8..3,
    ) {
        let view = DomainView {
            domain: 100,
            neighbours: (1u32..10).map(|d| NeighbourView {
                domain: d,
                participates: participates[d as usize],
                beyond: vec![SkipTarget { domain: 200 + d, skipped: vec![d] }],
            }).collect(),
            watched: Vec::new(),
        };
        let r = ashiato_api::federation::HopReport {
            domain: 100, packet: 0, via: Via::Edge, outcome: Outcome::Transit,
            entered_from: entered.iter().copied().collect(), unknown_links: Vec::new(),
            evidence: Vec::new(), reason: None,
        };
        let mut v = visited.clone();
        v.push(100);
        let next = next_asks(&view, &r, &v, budget);
        if budget == 0 {
            prop_assert!(next.asks.is_empty());
        }
        for a in &next.asks {
            prop_assert!(!v.contains(&a.domain));
            prop_assert!(a.domain != 100);
        }
    }
}

fn ev(n: DomainId, v: ProbeVerdict) -> ProbeEvidence {
    ProbeEvidence {
        probe: format!("link-{n}"),
        watches: Watch::Link { neighbour: n },
        verdict: v,
        epoch_start_ns: Some(1),
        epoch_end_ns: Some(2),
        fpr: Some(1e-6),
        false_match: 1e-6,
        reason: None,
    }
}

fn view(d: DomainId, ns: &[(DomainId, bool)]) -> DomainView {
    DomainView {
        domain: d,
        neighbours: ns
            .iter()
            .map(|&(n, p)| NeighbourView {
                domain: n,
                participates: p,
                beyond: Vec::new(),
            })
            .collect(),
        watched: Vec::new(),
    }
}

#[test]
fn a_dead_probe_makes_unknown_not_origin() {
    let v = view(1, &[(2, true), (3, true)]);
    let via = Via::Link { neighbour: 2 };
    let d = decide(
        &v,
        &via,
        &[ev(2, ProbeVerdict::Seen), ev(3, ProbeVerdict::Unreachable)],
    );
    assert_eq!(d.outcome, Outcome::Unknown);
    assert_eq!(d.unknown_links, vec![3]);
    let d = decide(
        &v,
        &via,
        &[ev(2, ProbeVerdict::Seen), ev(3, ProbeVerdict::NotSeen)],
    );
    assert_eq!(d.outcome, Outcome::Origin);
}

#[test]
fn an_unwatched_link_makes_unknown() {
    let v = view(1, &[(2, true), (3, true)]);
    let d = decide(
        &v,
        &Via::Link { neighbour: 2 },
        &[ev(2, ProbeVerdict::Seen)],
    );
    assert_eq!(d.outcome, Outcome::Unknown);
    assert!(d.reason.unwrap().contains("not watched"));
}

#[test]
fn the_exit_link_refutes_a_false_branch() {
    let v = view(1, &[(2, true), (3, true)]);
    let d = decide(
        &v,
        &Via::Link { neighbour: 2 },
        &[ev(2, ProbeVerdict::NotSeen), ev(3, ProbeVerdict::Seen)],
    );
    assert_eq!(d.outcome, Outcome::NotOnPath);
    // Two probes on one link: one saw it, so it was there.
    let d = decide(
        &v,
        &Via::Link { neighbour: 2 },
        &[
            ev(2, ProbeVerdict::NotSeen),
            ev(2, ProbeVerdict::Seen),
            ev(3, ProbeVerdict::Seen),
        ],
    );
    assert_eq!(d.outcome, Outcome::Transit);
    assert_eq!(d.entered_from, vec![3]);
}

#[test]
fn the_victim_is_the_origin_only_if_its_edge_saw_it() {
    let v = view(1, &[(2, true)]);
    let edge = |verdict| ProbeEvidence {
        watches: Watch::Edge,
        ..ev(0, verdict)
    };
    let d = decide(
        &v,
        &Via::Edge,
        &[ev(2, ProbeVerdict::NotSeen), edge(ProbeVerdict::Seen)],
    );
    assert_eq!(d.outcome, Outcome::Origin);
    // Nothing saw it, though every probe held the window: not seen anywhere, never "origin".
    for evidence in [
        vec![ev(2, ProbeVerdict::NotSeen), edge(ProbeVerdict::NotSeen)],
        vec![ev(2, ProbeVerdict::NotSeen)],
    ] {
        let d = decide(&v, &Via::Edge, &evidence);
        assert_eq!(d.outcome, Outcome::NotOnPath, "{evidence:?}");
        let r = report(&v, 0, &Via::Edge, &evidence);
        let g = assemble(1, &digests(1), vec![r], false, BOUND);
        assert!(g.origins.is_empty());
        assert_eq!(
            g.paths[0].end,
            PathEnd::Gap {
                last: 1,
                behind: Vec::new(),
                reason: "not_seen_anywhere".into()
            }
        );
    }
    // An edge that could not say: unknown.
    let d = decide(
        &v,
        &Via::Edge,
        &[ev(2, ProbeVerdict::NotSeen), edge(ProbeVerdict::Unknown)],
    );
    assert_eq!(d.outcome, Outcome::Unknown);
}

/// A domain whose edge probe held the window and did not see the packet is not its origin,
/// even when its exit link saw it (a false match there, correlated with the downstream tap).
#[test]
fn an_edge_that_did_not_see_it_refutes_the_origin() {
    let v = view(1, &[(2, true), (3, true)]);
    let edge = ProbeEvidence {
        watches: Watch::Edge,
        ..ev(0, ProbeVerdict::NotSeen)
    };
    let d = decide(
        &v,
        &Via::Link { neighbour: 2 },
        &[
            ev(2, ProbeVerdict::Seen),
            ev(3, ProbeVerdict::NotSeen),
            edge,
        ],
    );
    // Every way in held the window and did not see it: it was not there.
    assert_eq!(d.outcome, Outcome::NotOnPath);
    assert!(d.reason.unwrap().contains("false match"));
}

/// Chain 1 ← 2 ← 3(no ashiato) ← 4: peering skip around 3 finds origin 4, and the edge says
/// it skipped 3; without a beyond-target the trace ends in a marked gap, never at 3.
#[test]
fn peering_skip_crosses_a_non_participant() {
    let mut m = Model::build(4, &[], &[0, 1, 2]);
    m.participates = [id(0), id(1), id(3)].into();
    let path = vec![id(3), id(2), id(1), id(0)];
    let obs = m.observations(std::slice::from_ref(&path));
    let g = assemble(
        id(0),
        &digests(1),
        mesh_reports(id(0), &[0], &obs, 16),
        false,
        BOUND,
    );
    assert_eq!(g.paths[0].end, PathEnd::Origin { domain: id(3) });
    assert_eq!(g.paths[0].path, vec![id(0), id(1), id(3)]);
    let skip = g.edges.iter().find(|e| e.from == id(3)).unwrap();
    assert_eq!(skip.skipped, vec![id(2)]);
    assert_eq!(g.origins[0].packets, 1);
    let dot = to_dot(&g);
    assert!(
        dot.contains("as64503 -> as64501") && dot.contains("via AS64502"),
        "{dot}"
    );

    // The origin is the non-participant itself: a gap behind AS64502, not an attribution.
    let path = vec![id(2), id(1), id(0)];
    let obs = m.observations(std::slice::from_ref(&path));
    let g = assemble(
        id(0),
        &digests(1),
        mesh_reports(id(0), &[0], &obs, 16),
        false,
        BOUND,
    );
    assert_eq!(
        g.paths[0].end,
        PathEnd::Gap {
            last: id(1),
            behind: vec![id(2)],
            reason: "not_participating".into()
        }
    );
    assert!(g.origins.is_empty());
}

/// A dead controller upstream is a gap named `unreachable`, and the rest still resolves.
#[test]
fn an_unreachable_domain_is_a_gap() {
    let mut m = Model::build(4, &[], &[0, 0, 0]);
    m.participates = [id(0), id(1), id(2), id(3)].into();
    let paths = vec![vec![id(1), id(0)], vec![id(2), id(0)]];
    let mut obs = m.observations(&paths);
    obs.insert(id(2), Observation::Unreachable("deadline".into()));
    let g = assemble(
        id(0),
        &digests(2),
        mesh_reports(id(0), &[0, 1], &obs, 8),
        false,
        BOUND,
    );
    assert_eq!(g.paths[0].end, PathEnd::Origin { domain: id(1) });
    assert_eq!(
        g.paths[1].end,
        PathEnd::Gap {
            last: id(0),
            behind: vec![id(2)],
            reason: "unreachable".into()
        }
    );
    // Merging two traces of one incident adds their counts.
    let both = merge(&[g.clone(), g]).unwrap();
    assert_eq!(both.packets, 4);
    assert_eq!(both.origins[0].packets, 2);
    assert_eq!(both.gaps[0].packets, 2);
}

/// `next_asks` turns a non-participant into a report plus skips.
#[test]
fn non_participant_gets_a_report_and_its_beyond_is_asked() {
    let v = DomainView {
        domain: 1,
        neighbours: vec![NeighbourView {
            domain: 2,
            participates: false,
            beyond: vec![SkipTarget {
                domain: 5,
                skipped: vec![2],
            }],
        }],
        watched: Vec::new(),
    };
    let r = report(&v, 0, &Via::Edge, &[ev(2, ProbeVerdict::Seen)]);
    assert_eq!(r.outcome, Outcome::Transit);
    let next = next_asks(&v, &r, &[1], 4);
    assert_eq!(next.reports[0].outcome, Outcome::NotParticipating);
    assert_eq!(next.asks.len(), 1);
    assert_eq!(
        next.asks[0].via,
        Via::Skip {
            toward: 1,
            skipped: vec![2]
        }
    );
}

/// A hostile report listing 200,000 neighbours it "could not say" about, each with a child
/// that could not say either: the graph stays bounded (branches and steps per packet) and
/// quick, and the packet ends in a gap.
#[test]
fn a_report_with_a_huge_fan_out_stays_bounded() {
    let many: Vec<DomainId> = (1..=200_000).collect();
    let mut reports = vec![ashiato_api::federation::HopReport {
        domain: 0,
        packet: 0,
        via: Via::Edge,
        outcome: Outcome::Unknown,
        entered_from: Vec::new(),
        unknown_links: many.clone(),
        evidence: Vec::new(),
        reason: None,
    }];
    for &n in &many[..50_000] {
        reports.push(ashiato_api::federation::HopReport {
            domain: n,
            packet: 0,
            via: Via::Link { neighbour: 0 },
            outcome: Outcome::Unknown,
            entered_from: Vec::new(),
            unknown_links: vec![n + 1],
            evidence: Vec::new(),
            reason: None,
        });
    }
    let t = std::time::Instant::now();
    let g = assemble(0, &digests(1), reports, false, BOUND);
    assert!(
        t.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        t.elapsed()
    );
    assert!(g.origins.is_empty());
    assert!(matches!(g.paths[0].end, PathEnd::Gap { .. }));
    assert!(g.paths[0].open.len() <= 300, "{}", g.paths[0].open.len());
}

/// In mesh mode a packet that a participant's answer leaves out has no evidence: its links
/// could not say. It is never read as `not_seen` on every watched link (which would make
/// that participant refute the branch, or an origin).
#[test]
fn a_packet_left_out_of_an_observation_is_unknown_not_absent() {
    let mut m = Model::build(3, &[], &[0, 1]);
    m.participates = [id(0), id(1), id(2)].into();
    let path = vec![id(2), id(1), id(0)];
    let mut obs = m.observations(std::slice::from_ref(&path));
    // AS64502 (the origin) answers without packet 0.
    if let Some(Observation::Observed { evidence, .. }) = obs.get_mut(&id(2)) {
        evidence.clear();
    }
    let g = assemble(
        id(0),
        &digests(1),
        mesh_reports(id(0), &[0], &obs, 8),
        false,
        BOUND,
    );
    assert!(g.origins.is_empty(), "{:?}", g.paths);
    let r = g
        .reports
        .iter()
        .find(|r| r.domain == id(2))
        .expect("a report for AS64502");
    assert_eq!(r.outcome, Outcome::Unknown, "{r:?}");
}
