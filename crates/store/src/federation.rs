//! The federation's results as store records: a finished trace (`TraceResult` of
//! `ashiato_api::federation`) becomes one [`TraceRecord`] — its whole JSON, plus a row per
//! probe answer, per origin and per gap, so that operators can query "which traces saw AS X
//! as an origin" without parsing graphs — and its incident becomes an [`Incident`].
//!
//! A domain that could not be asked (dead, slow, refused, no controller, hop budget) has no
//! probe answers; it is recorded as one observation with probe `controller`, watches
//! `domain` and verdict `unreachable`, with the reason, so that "not seen" is never inferred
//! from a missing row.

use ashiato_api::federation::{Outcome, TraceResult, Watch};

use crate::error::StoreError;
use crate::model::{GapRow, INCIDENT_SOURCES, Incident, ObservationRow, OriginRow, TraceRecord};

/// The record of a finished trace run by `initiator`, started at `started_ns`.
pub fn trace_record(
    t: &TraceResult,
    initiator: u32,
    started_ns: u64,
) -> Result<TraceRecord, StoreError> {
    let g = &t.graph;
    let mut observations = Vec::new();
    for r in &g.reports {
        if r.evidence.is_empty() {
            if matches!(
                r.outcome,
                Outcome::Unreachable | Outcome::NotParticipating | Outcome::Stopped
            ) {
                observations.push(ObservationRow {
                    domain: r.domain,
                    packet: r.packet,
                    probe: "controller".into(),
                    watches: "domain".into(),
                    verdict: "unreachable".into(),
                    epoch_start_ns: None,
                    epoch_end_ns: None,
                    fpr: None,
                    reason: Some(format!(
                        "{}: {}",
                        r.outcome.as_str(),
                        r.reason.as_deref().unwrap_or("")
                    )),
                });
            }
            continue;
        }
        for e in &r.evidence {
            observations.push(ObservationRow {
                domain: r.domain,
                packet: r.packet,
                probe: e.probe.clone(),
                watches: match e.watches {
                    Watch::Link { neighbour } => format!("link:AS{neighbour}"),
                    Watch::Edge => "edge".into(),
                },
                verdict: e.verdict.as_str().into(),
                epoch_start_ns: e.epoch_start_ns,
                epoch_end_ns: e.epoch_end_ns,
                fpr: e.fpr.filter(|x| (0.0..=1.0).contains(x)),
                reason: e.reason.clone(),
            });
        }
    }
    let gap_packets: u64 = g.gaps.iter().map(|x| x.packets as u64).sum();
    let status = if gap_packets == 0 {
        "complete"
    } else if g.origins.is_empty() {
        "failed"
    } else {
        "partial"
    };
    let graph_json = serde_json::to_string(t).map_err(|e| {
        StoreError::Invalid(format!("trace {} does not serialise: {e}", t.trace_id))
    })?;
    Ok(TraceRecord {
        id: t.trace_id.clone(),
        incident_id: Some(t.incident.clone()),
        initiator_domain: initiator,
        victim_domain: g.victim,
        mode: t.mode.as_str().into(),
        started_ns,
        duration_us: t.duration_us,
        packets: g.packets,
        status: status.into(),
        graph_json,
        observations,
        origins: g
            .origins
            .iter()
            .map(|o| OriginRow {
                domain: o.domain,
                packets: o.packets,
            })
            .collect(),
        gaps: g
            .gaps
            .iter()
            .map(|x| GapRow {
                last_domain: x.last,
                behind: x.behind.clone(),
                packets: x.packets,
                reason: x.reason.clone(),
            })
            .collect(),
    })
}

/// The incident a trace belongs to, created at `created_ns` from trigger `source` (an
/// unknown source is recorded as `cli`).
pub fn incident_of(t: &TraceResult, source: &str, created_ns: u64) -> Incident {
    let source = if INCIDENT_SOURCES.contains(&source) {
        source
    } else {
        "cli"
    };
    Incident {
        id: t.incident.clone(),
        created_ns,
        victim_domain: t.graph.victim,
        source: source.into(),
        summary: format!(
            "{} packets to AS{}: {} origin domains, {} packets in gaps",
            t.graph.packets,
            t.graph.victim,
            t.graph.origins.len(),
            t.graph.gaps.iter().map(|x| x.packets as u64).sum::<u64>()
        ),
    }
}

/// A stored trace's result, read back from its record's JSON.
pub fn trace_result(r: &TraceRecord) -> Result<TraceResult, StoreError> {
    serde_json::from_str(&r.graph_json).map_err(|e| StoreError::Corrupt {
        target: format!("trace {}", r.id),
        detail: format!("its stored graph does not parse: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use ashiato_api::federation::{
        HopReport, ProbeEvidence, ProbeVerdict, TraceMode, TraceResult, Via, Watch,
    };

    use super::*;
    use crate::Store;

    fn result() -> TraceResult {
        let seen = |n| ProbeEvidence {
            probe: format!("border-{n}"),
            watches: Watch::Link { neighbour: n },
            verdict: ProbeVerdict::Seen,
            epoch_start_ns: Some(1_000_000_000),
            epoch_end_ns: Some(2_000_000_000),
            fpr: Some(1e-7),
            false_match: 2e-7,
            reason: None,
        };
        let reports = vec![
            HopReport {
                domain: 1,
                packet: 0,
                via: Via::Edge,
                outcome: Outcome::Transit,
                entered_from: vec![2, 3],
                unknown_links: vec![],
                evidence: vec![seen(2), seen(3)],
                reason: None,
            },
            HopReport {
                domain: 2,
                packet: 0,
                via: Via::Link { neighbour: 1 },
                outcome: Outcome::Origin,
                entered_from: vec![],
                unknown_links: vec![],
                evidence: vec![seen(1)],
                reason: Some("left over the link to AS1".into()),
            },
            HopReport {
                domain: 3,
                packet: 0,
                via: Via::Link { neighbour: 1 },
                outcome: Outcome::Unreachable,
                entered_from: vec![],
                unknown_links: vec![],
                evidence: vec![],
                reason: Some("deadline".into()),
            },
        ];
        TraceResult {
            trace_id: "0123456789abcdef0123456789abcdef".into(),
            incident: "inc-1".into(),
            mode: TraceMode::Recursive,
            duration_us: 1234,
            graph: ashiato_trace::graph::assemble(
                1,
                &["0123456789abcdef0123456789abcdef".to_string()],
                reports,
                false,
                ashiato_api::federation::DEFAULT_FPR_BOUND,
            ),
            stored: false,
            store_error: None,
        }
    }

    #[tokio::test]
    async fn a_trace_result_round_trips_through_sqlite() {
        let t = result();
        // Two branches survive: a reliable chain to AS2's origin outranks the one that
        // ends at the unreachable AS3, which is listed beside it.
        assert!(t.graph.gaps.is_empty(), "{:?}", t.graph.gaps);
        assert_eq!(t.graph.origins[0].domain, 2);
        assert_eq!(t.graph.paths[0].open.len(), 1);
        let rec = trace_record(&t, 1, 42).unwrap();
        assert_eq!(rec.status, "complete");
        assert_eq!(rec.observations.len(), 4);
        let ctl = &rec.observations[3];
        assert_eq!((ctl.domain, ctl.verdict.as_str()), (3, "unreachable"));
        assert!(ctl.reason.as_deref().unwrap().contains("deadline"));
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("t.db").to_str().unwrap())
            .await
            .unwrap();
        store
            .put_incident(&incident_of(&t, "somewhere", 41))
            .await
            .unwrap();
        store.put_trace(&rec).await.unwrap();
        let back = store.trace(&t.trace_id).await.unwrap().unwrap();
        assert_eq!(back, rec);
        assert_eq!(trace_result(&back).unwrap(), t);
        store.close().await;
    }
}
