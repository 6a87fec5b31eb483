//! The mesh walk: the first controller, holding every participant's observations, runs the
//! hop-by-hop decision itself.
//!
//! In mesh mode every participant is asked at once for what its probes saw (no decision, no
//! recursion); this walk then starts at the victim and follows exactly the steps a recursive
//! trace would take — [`decide`](crate::decide::decide) for each domain, [`next_asks`] for the next ones — over the
//! observations in hand. Both modes therefore give the same reports for the same evidence
//! (tested), and the graph is built from them the same way ([`crate::graph::assemble`]).

use std::collections::{BTreeMap, BTreeSet};

use ashiato_api::federation::{DomainId, DomainView, HopReport, Outcome, ProbeEvidence, Via};

use crate::decide::{bare_report, expand, next_asks, report};

/// What the initiator got from one participant in mesh mode.
#[derive(Clone, Debug, PartialEq)]
pub enum Observation {
    /// Its neighbours and, per packet index, its probes' evidence as its report carried it
    /// (watch points that answered `not_seen` left out: the view's `watched` lists them).
    Observed {
        /// The participant's view of itself.
        view: DomainView,
        /// Evidence per packet index; a packet missing here has no evidence (every link
        /// could not say).
        evidence: BTreeMap<u32, Vec<ProbeEvidence>>,
    },
    /// It did not answer usefully, with the reason.
    Unreachable(String),
}

/// The reports a recursive trace would produce, computed from mesh observations.
///
/// `victim` is the initiating domain (it must be in `observations`), `packets` the packet
/// indices, `budget` the hop budget of the trace. A domain a view names as participating but
/// absent from `observations` is reported unreachable ("not in the participant list").
pub fn mesh_reports(
    victim: DomainId,
    packets: &[u32],
    observations: &BTreeMap<DomainId, Observation>,
    budget: u8,
) -> Vec<HopReport> {
    let mut out = Vec::new();
    let mut done: BTreeSet<(u32, DomainId, Via)> = BTreeSet::new();
    for &p in packets {
        // Depth-first over (domain, via, branch, budget); explicit stack, no recursion.
        let mut stack = vec![(victim, Via::Edge, Vec::<DomainId>::new(), budget)];
        while let Some((d, via, mut visited, budget)) = stack.pop() {
            if !done.insert((p, d, via.clone())) {
                continue;
            }
            let r = match observations.get(&d) {
                Some(Observation::Observed { view, evidence }) => {
                    // A packet the participant's answer left out has no evidence at all:
                    // every link could not say. Only a report it sent is expanded.
                    let ev = match evidence.get(&p) {
                        Some(ev) => expand(view, ev),
                        None => Vec::new(),
                    };
                    let r = report(view, p, &via, &ev);
                    visited.push(d);
                    let next = next_asks(view, &r, &visited, budget.saturating_sub(1));
                    out.extend(next.reports);
                    for a in next.asks.into_iter().rev() {
                        stack.push((a.domain, a.via, visited.clone(), budget.saturating_sub(1)));
                    }
                    r
                }
                Some(Observation::Unreachable(why)) => unreachable(d, p, via, why.clone()),
                None => unreachable(
                    d,
                    p,
                    via,
                    format!("AS{d} is not in this controller's participant list"),
                ),
            };
            out.push(r);
        }
    }
    out
}

fn unreachable(domain: DomainId, packet: u32, via: Via, reason: String) -> HopReport {
    bare_report(domain, packet, via, Outcome::Unreachable, reason)
}
