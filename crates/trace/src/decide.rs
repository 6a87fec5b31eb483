//! One domain's decision about one packet, and whom to ask next.
//!
//! # The decision ([`decide`])
//!
//! A domain is asked about a packet for a reason ([`Via`]): it was detected at the domain's
//! own edge, or it entered a downstream neighbour over their shared link (so it must have
//! *left* this domain over that link), or it reached a participating domain through
//! non-participants that border this one (peering skip). Each border probe taps one link in
//! both directions and answers `seen`, `not_seen`, `unknown` or `unreachable`
//! ([`ProbeVerdict`]). Several probes on one link combine: `seen` if any saw it, `not_seen`
//! only if all answered `not_seen`, otherwise the link *could not say*. A neighbour with no
//! probe on its link could not say either.
//!
//! 1. The exit link (the one the packet should have left by) held the whole window and did
//!    not see it: **not on path**. This prunes false branches: a downstream probe's false
//!    positive sends the question here, and this domain's own tap of the same link refutes it.
//!    At the victim (the exit is its own edge) every probe held the window and none saw it:
//!    also **not on path** — the packet was not seen anywhere (a digest of another key, a
//!    packet never sent), and the graph says `not_seen_anywhere`, never "origin".
//! 2. Some other link saw it: **transit**, entered from those neighbours.
//! 3. No other link saw it, and some could not say: **unknown**, listing those links. Never
//!    "origin" and never "not on path": the packet may have come in where we cannot see.
//! 4. Every other link answered `not_seen`, and a probe of this domain *saw* it: **origin**.
//!    The positive evidence is the customer edge's `seen`; a domain without an edge probe
//!    may rest it on the exit link's `seen` instead. An edge probe that held the window and
//!    did not see it says the packet never entered: **not on path** (the exit link's `seen`
//!    was a false match, which the neighbour's tap of the same link repeats); an edge that
//!    could not say leaves it **unknown**. The trace starting here is never evidence by
//!    itself.
//! 5. Otherwise (the exit link could not say, nothing else saw it): **unknown**.
//!
//! A `seen` counts here whatever its false-match probability, so the trace goes on and
//! gathers the evidence of every packet; whether a hop's sightings are evidence is judged
//! when the graph is assembled, over all the packets that crossed it
//! ([`crate::graph::assemble`]).
//!
//! Evidence is summarised per watch point before it is decided on or sent ([`summarise`]):
//! the decision depends only on each point's combined answer, so a domain with a thousand
//! border probes sends one entry per link, and a mesh initiator decides exactly as the
//! domain itself would.
//!
//! # Whom to ask next ([`next_asks`])
//!
//! A transit packet continues to the neighbours it entered from; an unknown one to the links
//! that could not say. A participating neighbour is asked with `Via::Link`; a neighbour that
//! runs no controller gets a `not_participating` report and its configured beyond-domains are
//! asked with `Via::Skip`. Nobody on the branch is asked twice (loops end in a `stopped`
//! report), and nobody is asked once the hop budget is spent.
//!
//! Pure: the evidence comes in, a [`Decision`] goes out. The controller and the mesh walk
//! ([`crate::walk`]) both use it, so both modes decide the same way.

use std::collections::BTreeMap;

use ashiato_api::federation::{
    DomainId, DomainView, HopReport, Outcome, ProbeEvidence, ProbeVerdict, Via, Watch,
};

/// What one domain concluded about one packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The conclusion.
    pub outcome: Outcome,
    /// Neighbours the packet entered from, ascending.
    pub entered_from: Vec<DomainId>,
    /// Neighbours whose link could not say, ascending.
    pub unknown_links: Vec<DomainId>,
    /// Why, in words.
    pub reason: Option<String>,
}

/// What the probes of one watch point said, combined.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seen {
    Yes,
    No,
    CannotSay(String),
}

/// Combines the probes of each watch point.
fn combine(evidence: &[ProbeEvidence]) -> BTreeMap<Watch, Seen> {
    let mut out: BTreeMap<Watch, Seen> = BTreeMap::new();
    for e in evidence {
        let this = match e.verdict {
            ProbeVerdict::Seen => Seen::Yes,
            ProbeVerdict::NotSeen => Seen::No,
            ProbeVerdict::Unknown | ProbeVerdict::Unreachable => Seen::CannotSay(format!(
                "probe {} {}{}",
                e.probe,
                e.verdict.as_str(),
                e.reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            )),
        };
        let merged = match (out.remove(&e.watches), this) {
            (None, t) => t,
            (Some(Seen::Yes), _) | (_, Seen::Yes) => Seen::Yes,
            (Some(Seen::CannotSay(r)), _) | (_, Seen::CannotSay(r)) => Seen::CannotSay(r),
            (Some(Seen::No), Seen::No) => Seen::No,
        };
        out.insert(e.watches.clone(), merged);
    }
    out
}

/// The watch point the packet should have left by, for a `via`.
fn exit_of(via: &Via) -> Option<Watch> {
    match via {
        Via::Edge => Some(Watch::Edge),
        Via::Link { neighbour } => Some(Watch::Link {
            neighbour: *neighbour,
        }),
        Via::Skip { toward, skipped } => Some(Watch::Link {
            neighbour: *skipped.last().unwrap_or(toward),
        }),
        Via::Any => None,
    }
}

/// Decides what `view`'s domain can say about a packet it was asked about for `via`, from
/// its probes' `evidence` (see the module docs for the rules).
pub fn decide(view: &DomainView, via: &Via, evidence: &[ProbeEvidence]) -> Decision {
    let links = combine(evidence);
    let Some(exit) = exit_of(via) else {
        return Decision {
            outcome: Outcome::Observed,
            entered_from: Vec::new(),
            unknown_links: Vec::new(),
            reason: None,
        };
    };
    let is_neighbour = |d: DomainId| view.neighbours.iter().any(|n| n.domain == d);
    let decision = |outcome, entered_from, unknown_links, reason: String| Decision {
        outcome,
        entered_from,
        unknown_links,
        reason: Some(reason),
    };
    if let Watch::Link { neighbour } = exit
        && !is_neighbour(neighbour)
    {
        return decision(
            Outcome::Unknown,
            Vec::new(),
            Vec::new(),
            format!(
                "AS{neighbour} is not a neighbour of AS{} in its configuration",
                view.domain
            ),
        );
    }
    if let (Some(Seen::No), Watch::Link { neighbour }) = (links.get(&exit), &exit) {
        return decision(
            Outcome::NotOnPath,
            Vec::new(),
            Vec::new(),
            format!("the link to AS{neighbour} holds the whole window and did not see it"),
        );
    }
    let mut entered_from = Vec::new();
    let mut unknown_links = Vec::new();
    let mut why_unknown = Vec::new();
    for n in &view.neighbours {
        let w = Watch::Link {
            neighbour: n.domain,
        };
        if w == exit {
            continue;
        }
        match links.get(&w) {
            Some(Seen::Yes) => entered_from.push(n.domain),
            Some(Seen::No) => {}
            Some(Seen::CannotSay(r)) => {
                unknown_links.push(n.domain);
                why_unknown.push(format!("AS{}: {r}", n.domain));
            }
            None => {
                unknown_links.push(n.domain);
                why_unknown.push(format!("AS{}: link not watched", n.domain));
            }
        }
    }
    entered_from.sort_unstable();
    entered_from.dedup();
    unknown_links.sort_unstable();
    unknown_links.dedup();
    if !entered_from.is_empty() {
        return Decision {
            outcome: Outcome::Transit,
            entered_from,
            unknown_links,
            reason: None,
        };
    }
    if !unknown_links.is_empty() {
        return decision(
            Outcome::Unknown,
            entered_from,
            unknown_links,
            format!(
                "not seen on any link that answered; could not say: {}",
                why_unknown.join("; ")
            ),
        );
    }
    // Every border link but the exit answered `not_seen`. What did the edge and the exit say?
    let edge = links.get(&Watch::Edge);
    let exit_said = links.get(&exit);
    match (edge, &exit) {
        (Some(Seen::Yes), _) => decision(
            Outcome::Origin,
            entered_from,
            unknown_links,
            match exit {
                Watch::Edge => "seen at the customer edge; entered over no border link, and every border link answered".to_string(),
                Watch::Link { neighbour } => format!(
                    "seen at the customer edge (leaving toward AS{neighbour}); entered over no border link, and every border link answered"
                ),
            },
        ),
        (Some(Seen::No), Watch::Edge) => decision(
            Outcome::NotOnPath,
            entered_from,
            unknown_links,
            "no probe of this domain saw it, and every one holds the whole window: not seen anywhere".to_string(),
        ),
        (None, Watch::Edge) => decision(
            Outcome::NotOnPath,
            entered_from,
            unknown_links,
            "no border probe saw it, every one holds the whole window, and the customer edge is not watched: not seen anywhere".to_string(),
        ),
        (Some(Seen::CannotSay(r)), _) => decision(
            Outcome::Unknown,
            entered_from,
            unknown_links,
            format!("entered over no border link, and the customer edge could not say ({r})"),
        ),
        // The edge and every other border link held the window and did not see it: it never
        // entered this domain, whatever the exit link says (a false match there, which the
        // neighbour's tap of the same link repeats: both hold the same traffic). Only a
        // source inside the network's own infrastructure is lost this way — to a gap, never
        // to a wrong origin.
        (Some(Seen::No), Watch::Link { neighbour }) => decision(
            Outcome::NotOnPath,
            entered_from,
            unknown_links,
            if exit_said == Some(&Seen::Yes) {
                format!(
                    "seen leaving toward AS{neighbour} but neither at the customer edge nor entering over any border link, all of which hold the window: a false match on that link"
                )
            } else {
                format!(
                    "seen neither at the customer edge nor on any border link, all of which hold the window (the link to AS{neighbour} could not say)"
                )
            },
        ),
        (None, Watch::Link { neighbour }) => match exit_said {
            Some(Seen::Yes) => decision(
                Outcome::Origin,
                entered_from,
                unknown_links,
                format!(
                    "seen leaving over the link to AS{neighbour} (the customer edge is not watched); entered over no border link, and every border link answered"
                ),
            ),
            Some(Seen::CannotSay(r)) => decision(
                Outcome::Unknown,
                entered_from,
                unknown_links,
                format!(
                    "not seen on any border link, and the link it should have left by could not say ({r})"
                ),
            ),
            _ => decision(
                Outcome::Unknown,
                entered_from,
                unknown_links,
                "not seen on any border link, and the link it should have left by is not watched".to_string(),
            ),
        },
    }
}

/// One entry per watch point, deciding exactly as the whole list would: the `seen` with the
/// smallest false-match probability if any probe saw it; else the first answer that could
/// not say; else one `not_seen`. Ordered by watch point.
pub fn summarise(evidence: &[ProbeEvidence]) -> Vec<ProbeEvidence> {
    let mut best: BTreeMap<&Watch, &ProbeEvidence> = BTreeMap::new();
    let rank = |e: &ProbeEvidence| match e.verdict {
        ProbeVerdict::Seen => 0,
        ProbeVerdict::Unknown | ProbeVerdict::Unreachable => 1,
        ProbeVerdict::NotSeen => 2,
    };
    for e in evidence {
        match best.get(&e.watches) {
            None => {
                best.insert(&e.watches, e);
            }
            Some(b) => {
                let better = match rank(e).cmp(&rank(b)) {
                    std::cmp::Ordering::Less => true,
                    std::cmp::Ordering::Greater => false,
                    std::cmp::Ordering::Equal => {
                        e.verdict == ProbeVerdict::Seen
                            && e.seen_false_match() < b.seen_false_match()
                    }
                };
                if better {
                    best.insert(&e.watches, e);
                }
            }
        }
    }
    best.into_values().cloned().collect()
}

/// [`decide`], packaged as the report a controller sends: its evidence summarised per watch
/// point ([`summarise`]), without the points that answered `not_seen` ([`expand`] puts them
/// back from the domain's `watched` list).
pub fn report(view: &DomainView, packet: u32, via: &Via, evidence: &[ProbeEvidence]) -> HopReport {
    let d = decide(view, via, evidence);
    HopReport {
        domain: view.domain,
        packet,
        via: via.clone(),
        outcome: d.outcome,
        entered_from: d.entered_from,
        unknown_links: d.unknown_links,
        evidence: summarise(evidence)
            .into_iter()
            .filter(|e| e.verdict != ProbeVerdict::NotSeen)
            .collect(),
        reason: d.reason,
    }
}

/// A report's evidence with a `not_seen` entry put back for every watch point of `view`
/// that has none: what [`decide`] needs to decide as the domain itself did.
pub fn expand(view: &DomainView, evidence: &[ProbeEvidence]) -> Vec<ProbeEvidence> {
    let mut out = evidence.to_vec();
    let present: std::collections::BTreeSet<&Watch> = evidence.iter().map(|e| &e.watches).collect();
    // A view lists at most its links and its edge; a longer list is not a domain's.
    let most = view.neighbours.len() + 1;
    for w in view.watched.iter().take(most) {
        if !present.contains(w) {
            out.push(ProbeEvidence {
                probe: String::new(),
                watches: w.clone(),
                verdict: ProbeVerdict::NotSeen,
                epoch_start_ns: None,
                epoch_end_ns: None,
                fpr: None,
                false_match: 0.0,
                reason: None,
            });
        }
    }
    out
}

/// A report with no evidence, written on behalf of a domain that could not be asked or did
/// not answer (`unreachable`, `not_participating`, `stopped`).
pub fn bare_report(
    domain: DomainId,
    packet: u32,
    via: Via,
    outcome: Outcome,
    reason: impl Into<String>,
) -> HopReport {
    HopReport {
        domain,
        packet,
        via,
        outcome,
        entered_from: Vec::new(),
        unknown_links: Vec::new(),
        evidence: Vec::new(),
        reason: Some(reason.into()),
    }
}

/// A domain to ask about a packet, and why.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ask {
    /// The domain to ask.
    pub domain: DomainId,
    /// Why it is asked.
    pub via: Via,
}

/// What follows one report: the domains to ask, and reports for those that cannot be asked.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Next {
    /// Domains to ask, in a deterministic order.
    pub asks: Vec<Ask>,
    /// Reports written on behalf of domains that cannot be asked: `not_participating` for a
    /// neighbour without a controller, `stopped` for a loop or a spent hop budget.
    pub reports: Vec<HopReport>,
}

/// Whom to ask after `report` (this domain's report about a packet), given `visited` (the
/// domains on this branch, this one included) and `budget` (domains the next requests may
/// still reach).
pub fn next_asks(view: &DomainView, report: &HopReport, visited: &[DomainId], budget: u8) -> Next {
    let mut next = Next::default();
    let targets: &[DomainId] = match report.outcome {
        Outcome::Transit => &report.entered_from,
        Outcome::Unknown => &report.unknown_links,
        _ => &[],
    };
    let me = view.domain;
    let stopped = |domain: DomainId, via: Via, reason: String| {
        bare_report(domain, report.packet, via, Outcome::Stopped, reason)
    };
    for &n in targets {
        let link = Via::Link { neighbour: me };
        let Some(nv) = view.neighbours.iter().find(|x| x.domain == n) else {
            continue;
        };
        if nv.participates {
            if visited.contains(&n) {
                next.reports.push(stopped(
                    n,
                    link,
                    format!("AS{n} is already on this branch (a routing loop or a false match)"),
                ));
            } else if budget == 0 {
                next.reports
                    .push(stopped(n, link, "the hop budget is spent".to_string()));
            } else {
                next.asks.push(Ask {
                    domain: n,
                    via: link,
                });
            }
            continue;
        }
        next.reports.push(bare_report(
            n,
            report.packet,
            link,
            Outcome::NotParticipating,
            if nv.beyond.is_empty() {
                format!("AS{n} runs no controller, and no participating domain beyond it is known")
            } else {
                format!("AS{n} runs no controller; asking the participating domains beyond it")
            },
        ));
        for t in &nv.beyond {
            let skipped = if t.skipped.first() == Some(&n) {
                t.skipped.clone()
            } else {
                let mut s = vec![n];
                s.extend(t.skipped.iter().copied().filter(|&x| x != n));
                s
            };
            let via = Via::Skip {
                toward: me,
                skipped,
            };
            if visited.contains(&t.domain) || t.domain == me {
                continue;
            }
            if budget == 0 {
                next.reports.push(stopped(
                    t.domain,
                    via,
                    "the hop budget is spent".to_string(),
                ));
            } else {
                next.asks.push(Ask {
                    domain: t.domain,
                    via,
                });
            }
        }
    }
    next.asks.sort();
    next.asks.dedup();
    next
}
