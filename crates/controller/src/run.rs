//! How a trace runs: own probes, the pure core's decision, batched hop requests to the next
//! domains under a shrinking deadline (recursive), or one round of observations (mesh).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ashiato_api::federation::{
    DomainId, HopMode, HopPacket, HopReport, HopRequest, HopResponse, MAX_REPORTS, Outcome,
    PROTOCOL_VERSION, TracePacket, Via,
};
use ashiato_net::client::{ClientError, ServiceClient};
use ashiato_net::error_chain;
use ashiato_trace::decide::{bare_report, next_asks, report};
use ashiato_trace::walk::{Observation, mesh_reports};

use crate::{Controller, new_id};

/// Time kept back from a callee: 10 % of what is left, plus 20 ms for the network and our
/// own assembly.
pub(crate) fn margin(left: Duration) -> Duration {
    left / 10 + Duration::from_millis(20)
}

/// Below this, a callee is not asked at all (it could not ask its probes in time).
const MIN_CALLEE: Duration = Duration::from_millis(20);

/// A branch of a trace, as far as this controller continues it.
pub(crate) struct Branch {
    pub trace_id: String,
    pub initiator: DomainId,
    /// Domains on this branch before us (we are added here).
    pub visited: Vec<DomainId>,
    /// Domains this hop may still reach, us included.
    pub hop_budget: u8,
    pub deadline: Instant,
}

fn unreachable_report(domain: DomainId, packet: u32, via: Via, reason: &str) -> HopReport {
    bare_report(domain, packet, via, Outcome::Unreachable, reason)
}

fn stopped_report(domain: DomainId, packet: u32, via: Via, reason: &str) -> HopReport {
    bare_report(domain, packet, via, Outcome::Stopped, reason)
}

/// Whether a report adds anything to an attack graph: a domain asked across a peering skip
/// that the packet did not leave toward the gap (`not_on_path`) adds nothing — the graph
/// only follows skip reports that saw it — and a big attack produces thousands of them.
fn adds_to_the_graph(r: &HopReport) -> bool {
    !(r.outcome == Outcome::NotOnPath && matches!(r.via, Via::Skip { .. }))
}

/// Keeps at most [`MAX_REPORTS`] (what an answer may carry over the wire); says whether any
/// were dropped.
pub(crate) fn cap(reports: &mut Vec<HopReport>) -> bool {
    if reports.len() > MAX_REPORTS {
        reports.truncate(MAX_REPORTS);
        true
    } else {
        false
    }
}

impl Controller {
    /// A recursive trace that starts at our edge.
    pub(crate) async fn recursive_from_edge(
        self: &Arc<Self>,
        trace_id: &str,
        packets: &[TracePacket],
        deadline: Instant,
    ) -> (Vec<HopReport>, bool) {
        let hop_packets: Vec<HopPacket> = packets
            .iter()
            .enumerate()
            .map(|(i, p)| HopPacket {
                index: i as u32,
                packet: p.clone(),
                via: Via::Edge,
            })
            .collect();
        let branch = Branch {
            trace_id: trace_id.to_string(),
            initiator: self.cfg.domain.asn,
            visited: Vec::new(),
            hop_budget: self.cfg.trace.hop_budget,
            deadline,
        };
        self.recursive_hop(&branch, &hop_packets).await
    }

    /// One recursive hop: ask our probes, decide, ask the next domains, and return our
    /// reports with every upstream one.
    pub(crate) async fn recursive_hop(
        self: &Arc<Self>,
        branch: &Branch,
        packets: &[HopPacket],
    ) -> (Vec<HopReport>, bool) {
        let me = self.cfg.domain.asn;
        let indexed: Vec<(u32, TracePacket)> = packets
            .iter()
            .map(|p| (p.index, p.packet.clone()))
            .collect();
        let evidence = self.probe_evidence(&indexed, branch.deadline).await;
        let mut visited = branch.visited.clone();
        visited.push(me);
        let budget = branch.hop_budget.saturating_sub(1);
        let mut reports = Vec::new();
        // Next domain → the packets to ask it about.
        let mut asks: BTreeMap<DomainId, Vec<HopPacket>> = BTreeMap::new();
        for p in packets {
            let ev = evidence.get(&p.index).map(Vec::as_slice).unwrap_or(&[]);
            let r = report(&self.view, p.index, &p.via, ev);
            let next = next_asks(&self.view, &r, &visited, budget);
            reports.push(r);
            reports.extend(next.reports);
            for a in next.asks {
                asks.entry(a.domain).or_default().push(HopPacket {
                    index: p.index,
                    packet: p.packet.clone(),
                    via: a.via,
                });
            }
        }
        let targets: Vec<(DomainId, HopRequest)> = asks
            .into_iter()
            .map(|(domain, packets)| {
                let req = HopRequest {
                    version: PROTOCOL_VERSION,
                    request_id: new_id(),
                    trace_id: branch.trace_id.clone(),
                    initiator: branch.initiator,
                    from: me,
                    table_id: self.table_hex.clone(),
                    mode: HopMode::Recursive,
                    hop_budget: budget,
                    deadline_ms: 0, // set when sent
                    visited: visited.clone(),
                    packets,
                };
                (domain, req)
            })
            .collect();
        let mut truncated = false;
        for (domain, req, answer) in self.send_all(targets, branch.deadline).await {
            match answer {
                Ok(resp) => {
                    truncated |= resp.truncated;
                    reports.extend(resp.reports.into_iter().filter(adds_to_the_graph));
                }
                Err(Failure::Stopped(why)) => {
                    for p in &req.packets {
                        reports.push(stopped_report(domain, p.index, p.via.clone(), &why));
                    }
                }
                Err(Failure::Unreachable(why)) => {
                    for p in &req.packets {
                        reports.push(unreachable_report(domain, p.index, p.via.clone(), &why));
                    }
                }
            }
        }
        reports.retain(adds_to_the_graph);
        (reports, truncated)
    }

    /// Mesh mode: observe every participant at once, then walk locally.
    pub(crate) async fn mesh(
        self: &Arc<Self>,
        trace_id: &str,
        packets: &[TracePacket],
        deadline: Instant,
    ) -> (Vec<HopReport>, bool) {
        let me = self.cfg.domain.asn;
        let any: Vec<HopPacket> = packets
            .iter()
            .enumerate()
            .map(|(i, p)| HopPacket {
                index: i as u32,
                packet: p.clone(),
                via: Via::Any,
            })
            .collect();
        let targets: Vec<(DomainId, HopRequest)> = self
            .cfg
            .participants()
            .into_iter()
            .map(|(domain, _)| {
                let req = HopRequest {
                    version: PROTOCOL_VERSION,
                    request_id: new_id(),
                    trace_id: trace_id.to_string(),
                    initiator: me,
                    from: me,
                    table_id: self.table_hex.clone(),
                    mode: HopMode::Observe,
                    hop_budget: 1,
                    deadline_ms: 0,
                    visited: vec![me],
                    packets: any.clone(),
                };
                (domain, req)
            })
            .collect();
        let indexed: Vec<(u32, TracePacket)> =
            any.iter().map(|p| (p.index, p.packet.clone())).collect();
        let (own, answers) = tokio::join!(
            self.probe_evidence(&indexed, deadline),
            self.send_all(targets, deadline)
        );
        let mut obs: BTreeMap<DomainId, Observation> = BTreeMap::new();
        obs.insert(
            me,
            Observation::Observed {
                view: self.view.clone(),
                evidence: own,
            },
        );
        for (domain, _, answer) in answers {
            let o = match answer {
                Ok(resp) => match resp.view {
                    Some(view) => {
                        let mut evidence: BTreeMap<u32, Vec<_>> = BTreeMap::new();
                        for r in resp.reports {
                            if r.domain == domain {
                                evidence.entry(r.packet).or_default().extend(r.evidence);
                            }
                        }
                        Observation::Observed { view, evidence }
                    }
                    None => Observation::Unreachable("observe answer without a view".into()),
                },
                Err(Failure::Stopped(why) | Failure::Unreachable(why)) => {
                    Observation::Unreachable(why)
                }
            };
            obs.insert(domain, o);
        }
        let idx: Vec<u32> = (0..packets.len() as u32).collect();
        let mut reports = mesh_reports(me, &idx, &obs, self.cfg.trace.hop_budget);
        // Decided here from the observations: nothing crosses the wire, nothing is cut.
        reports.retain(adds_to_the_graph);
        (reports, false)
    }

    /// Observe mode (a mesh initiator asks): our probes' evidence per packet, no decision.
    pub(crate) async fn observe(
        self: &Arc<Self>,
        packets: &[HopPacket],
        deadline: Instant,
    ) -> Vec<HopReport> {
        let indexed: Vec<(u32, TracePacket)> = packets
            .iter()
            .map(|p| (p.index, p.packet.clone()))
            .collect();
        let evidence = self.probe_evidence(&indexed, deadline).await;
        let mut done = BTreeSet::new();
        packets
            .iter()
            .filter(|p| done.insert(p.index))
            .map(|p| {
                let ev = evidence.get(&p.index).map(Vec::as_slice).unwrap_or(&[]);
                report(&self.view, p.index, &Via::Any, ev)
            })
            .collect()
    }

    /// Sends every request in parallel (at most `max_fanout` at once), each under the time
    /// left before `deadline` minus a margin.
    async fn send_all(
        self: &Arc<Self>,
        targets: Vec<(DomainId, HopRequest)>,
        deadline: Instant,
    ) -> Vec<(DomainId, HopRequest, Result<HopResponse, Failure>)> {
        let fanout = Arc::new(tokio::sync::Semaphore::new(self.cfg.limits.max_fanout));
        let mut tasks = tokio::task::JoinSet::new();
        for (domain, req) in targets {
            let me = self.clone();
            let fanout = fanout.clone();
            tasks.spawn(async move {
                let _p = fanout.acquire_owned().await;
                let started = Instant::now();
                let (req, r) = me.send_one(domain, req, deadline).await;
                me.metrics.hop_out(
                    match &r {
                        Ok(_) => "answered",
                        Err(Failure::Stopped(_)) => "stopped",
                        Err(Failure::Unreachable(_)) => "unreachable",
                    },
                    started.elapsed(),
                );
                if let Err(Failure::Unreachable(why) | Failure::Stopped(why)) = &r {
                    tracing::warn!(domain, reason = %why, "hop request failed; the trace goes on around it");
                }
                (domain, req, r)
            });
        }
        let mut out = Vec::new();
        while let Some(j) = tasks.join_next().await {
            if let Ok(x) = j {
                out.push(x);
            }
        }
        out.sort_by_key(|x| x.0);
        out
    }

    async fn send_one(
        &self,
        domain: DomainId,
        mut req: HopRequest,
        deadline: Instant,
    ) -> (HopRequest, Result<HopResponse, Failure>) {
        let Some(addr) = self.cfg.controller_of(domain) else {
            return (
                req,
                Err(Failure::Unreachable(format!(
                    "AS{domain}: no controller address configured"
                ))),
            );
        };
        let mut tries = 0;
        loop {
            tries += 1;
            let left = deadline.saturating_duration_since(Instant::now());
            let wait = left.saturating_sub(margin(left));
            if wait < MIN_CALLEE {
                let why = if tries == 1 {
                    "deadline: no time left to ask".to_string()
                } else {
                    "deadline: no time left to retry".to_string()
                };
                return (req, Err(Failure::Stopped(why)));
            }
            req.deadline_ms = wait.as_millis().min(u128::from(u32::MAX)) as u32;
            let client = ServiceClient::new(addr, self.deps.peer_tls.clone()).with_timeout(wait);
            let r: Result<HopResponse, ClientError> =
                client.call("POST", "/v1/hop", Some(&req)).await;
            match r {
                Ok(resp) => {
                    let checked = check_answer(domain, &req, resp);
                    return (req, checked.map_err(Failure::Unreachable));
                }
                Err(ClientError::Connect { .. }) if tries == 1 => {
                    tracing::debug!(
                        domain,
                        "connection failed; retrying once with the same request id"
                    );
                    continue;
                }
                Err(ClientError::Timeout { timeout, .. }) => {
                    return (
                        req,
                        Err(Failure::Unreachable(format!(
                            "deadline: no answer within {} ms",
                            timeout.as_millis()
                        ))),
                    );
                }
                Err(e) => return (req, Err(Failure::Unreachable(error_chain(&e)))),
            }
        }
    }
}

/// Why a callee gave nothing usable.
pub(crate) enum Failure {
    /// Not asked: no time left.
    Stopped(String),
    /// Asked, and failed.
    Unreachable(String),
}

/// Refuses an answer that is not about what was asked.
fn check_answer(
    domain: DomainId,
    req: &HopRequest,
    resp: HopResponse,
) -> Result<HopResponse, String> {
    if resp.version != PROTOCOL_VERSION {
        return Err(format!(
            "answer of protocol version {}, not {PROTOCOL_VERSION}",
            resp.version
        ));
    }
    if resp.request_id != req.request_id {
        return Err("answer for another request id".into());
    }
    if resp.domain != domain {
        return Err(format!("answer from AS{}, not AS{domain}", resp.domain));
    }
    if resp.reports.len() > MAX_REPORTS {
        return Err(format!(
            "{} reports, more than {MAX_REPORTS}",
            resp.reports.len()
        ));
    }
    let asked: BTreeSet<u32> = req.packets.iter().map(|p| p.index).collect();
    if let Some(r) = resp.reports.iter().find(|r| !asked.contains(&r.packet)) {
        return Err(format!(
            "a report about packet {}, which was not asked",
            r.packet
        ));
    }
    if req.mode == HopMode::Observe {
        match &resp.view {
            Some(v) if v.domain == domain => {}
            _ => return Err("observe answer without this domain's view".into()),
        }
        if resp.reports.iter().any(|r| r.domain != domain) {
            return Err("observe answer with reports about other domains".into());
        }
    }
    Ok(resp)
}
