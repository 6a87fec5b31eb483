//! Asking this domain's own probes: one `/v1/query` per probe and time group, in parallel,
//! turned into [`ProbeEvidence`] per packet.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ashiato_api::federation::{ProbeEvidence, ProbeVerdict, TracePacket};
use ashiato_api::probe::{QueryRequest, QueryResponse, Verdict};
use ashiato_net::client::ServiceClient;
use ashiato_net::error_chain;

use crate::Controller;

/// Packets whose windows overlap, asked in one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TimeGroup {
    /// Packet indices (into the caller's slice).
    pub members: Vec<usize>,
    /// Start of the merged window, ns.
    pub from_ns: u64,
    /// End of the merged window, ns.
    pub to_ns: u64,
}

/// One packet's window: `[t − u − skew, t + u + skew]`.
pub(crate) fn window(p: &TracePacket, skew_ns: u64) -> (u64, u64) {
    let w = p.uncertainty_ns.saturating_add(skew_ns);
    (p.time_ns.saturating_sub(w), p.time_ns.saturating_add(w))
}

/// Groups packets whose windows overlap (sorted by start; a group grows while the next
/// window starts before its end).
pub(crate) fn time_groups(packets: &[&TracePacket], skew_ns: u64) -> Vec<TimeGroup> {
    let mut order: Vec<usize> = (0..packets.len()).collect();
    order.sort_by_key(|&i| window(packets[i], skew_ns).0);
    let mut out: Vec<TimeGroup> = Vec::new();
    for i in order {
        let (from, to) = window(packets[i], skew_ns);
        match out.last_mut() {
            Some(g) if from <= g.to_ns => {
                g.members.push(i);
                g.to_ns = g.to_ns.max(to);
            }
            _ => out.push(TimeGroup {
                members: vec![i],
                from_ns: from,
                to_ns: to,
            }),
        }
    }
    out
}

/// What one probe's answer says about one packet, judged on the packet's own window (the
/// request's window may be wider, when several packets share it).
fn judge(
    resp: &QueryResponse,
    digest: &str,
    from: u64,
    to: u64,
) -> (ProbeVerdict, Option<(u64, u64, f64)>, Option<String>) {
    let Some(a) = resp.answers.iter().find(|a| a.digest == digest) else {
        return (
            ProbeVerdict::Unreachable,
            None,
            Some("the probe's answer leaves this digest out".into()),
        );
    };
    let gap_here = resp
        .gaps
        .iter()
        .find(|g| g.from_ns <= to && g.to_ns >= from)
        .map(|g| format!("window not held ({})", g.reason));
    let hit = a
        .epochs
        .iter()
        .find(|e| e.start_ns <= to && e.end_ns > from)
        .map(|e| (e.start_ns, e.end_ns, e.fpr));
    match (a.verdict(), hit) {
        (Verdict::Seen, Some(h)) => (ProbeVerdict::Seen, Some(h), None),
        // Seen only outside this packet's window (or listed epochs cut short).
        (Verdict::Seen, None) if a.truncated => (
            ProbeVerdict::Unknown,
            None,
            Some("epochs list truncated".into()),
        ),
        _ => match gap_here {
            // The probe listed only its first gaps: this window may be in one it left out.
            None if resp.gaps_truncated => (
                ProbeVerdict::Unknown,
                None,
                Some("the probe's list of gaps was truncated".into()),
            ),
            Some(r) => (
                ProbeVerdict::Unknown,
                None,
                Some(a.reason.clone().unwrap_or(r)),
            ),
            // A probe that searched nothing holds nothing: never "not seen" (older probes
            // said so for the time after a finished capture).
            None if resp.epochs_searched == 0 => (
                ProbeVerdict::Unknown,
                None,
                Some(
                    a.reason
                        .clone()
                        .unwrap_or_else(|| "the probe searched no epoch of the window".into()),
                ),
            ),
            None => (ProbeVerdict::NotSeen, None, None),
        },
    }
}

/// A probe's evidence when it gave no usable answer, with the reason.
fn unreachable(probe: &crate::config::ProbeEntry, reason: String) -> ProbeEvidence {
    ProbeEvidence {
        probe: probe.name.clone(),
        watches: probe.watches.clone(),
        verdict: ProbeVerdict::Unreachable,
        epoch_start_ns: None,
        epoch_end_ns: None,
        fpr: None,
        false_match: 0.0,
        reason: Some(reason),
    }
}

impl Controller {
    /// Every probe's evidence for every packet (`(index, packet)`; an index listed twice is
    /// asked once), within `probe_timeout_ms` and before `deadline`.
    pub(crate) async fn probe_evidence(
        self: &Arc<Self>,
        packets: &[(u32, TracePacket)],
        deadline: Instant,
    ) -> BTreeMap<u32, Vec<ProbeEvidence>> {
        let mut seen = BTreeSet::new();
        let uniq: Vec<&(u32, TracePacket)> =
            packets.iter().filter(|(i, _)| seen.insert(*i)).collect();
        let refs: Vec<&TracePacket> = uniq.iter().map(|(_, p)| p).collect();
        let skew = self.cfg.trace.clock_skew_ms * 1_000_000;
        let groups = time_groups(&refs, skew);
        let left = deadline.saturating_duration_since(Instant::now());
        let timeout = Duration::from_millis(u64::from(self.cfg.trace.probe_timeout_ms))
            .min(left.saturating_sub(crate::run::margin(left)))
            .max(Duration::from_millis(1));
        let table_id = self.deps.key.table_id();
        let mut tasks = tokio::task::JoinSet::new();
        for (pi, probe) in self.cfg.probes.iter().enumerate() {
            for (gi, g) in groups.iter().enumerate() {
                let mut digests: Vec<String> = Vec::new();
                for &m in &g.members {
                    if !digests.contains(&refs[m].digest) {
                        digests.push(refs[m].digest.clone());
                    }
                }
                let req = QueryRequest {
                    digests,
                    from_ns: Some(g.from_ns),
                    to_ns: Some(g.to_ns),
                    table_id: Some(self.table_hex.clone()),
                };
                let client = ServiceClient::new(&probe.address, self.deps.probe_tls.clone())
                    .with_timeout(timeout);
                tasks.spawn(async move {
                    let r = client.query_expecting(&req, table_id).await;
                    (pi, gi, r)
                });
            }
        }
        let mut out: BTreeMap<u32, Vec<ProbeEvidence>> = BTreeMap::new();
        let mut answered: BTreeSet<(usize, usize)> = BTreeSet::new();
        while let Some(j) = tasks.join_next().await {
            let Ok((pi, gi, r)) = j else { continue };
            answered.insert((pi, gi));
            let probe = &self.cfg.probes[pi];
            let r = r.map_err(|e| error_chain(&e));
            if let Err(e) = &r {
                tracing::warn!(probe = %probe.name, error = %e, "probe did not answer usefully");
            }
            for &m in &groups[gi].members {
                let (idx, pkt) = uniq[m];
                let (from, to) = window(pkt, skew);
                let ev = match &r {
                    Ok(resp) => {
                        let (verdict, hit, reason) = judge(resp, &pkt.digest, from, to);
                        ProbeEvidence {
                            probe: probe.name.clone(),
                            watches: probe.watches.clone(),
                            verdict,
                            epoch_start_ns: hit.map(|h| h.0),
                            epoch_end_ns: hit.map(|h| h.1),
                            fpr: hit.map(|h| h.2),
                            false_match: resp.false_match_probability,
                            reason,
                        }
                    }
                    Err(e) => unreachable(probe, e.clone()),
                };
                self.metrics.probe_verdict(ev.verdict);
                out.entry(*idx).or_default().push(ev);
            }
        }
        // A query task that died (it cannot: but never let a probe vanish from the evidence,
        // where a mesh initiator would read its absence as `not_seen`).
        for (pi, probe) in self.cfg.probes.iter().enumerate() {
            for (gi, g) in groups.iter().enumerate() {
                if answered.contains(&(pi, gi)) {
                    continue;
                }
                for &m in &g.members {
                    out.entry(uniq[m].0).or_default().push(unreachable(
                        probe,
                        "the query task ended without an answer".into(),
                    ));
                }
            }
        }
        // Deterministic order: by probe name.
        for v in out.values_mut() {
            v.sort_by(|a, b| a.probe.cmp(&b.probe));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::{TracePacket, time_groups};

    fn p(t: u64, u: u64) -> TracePacket {
        TracePacket {
            digest: "00".repeat(16),
            time_ns: t,
            uncertainty_ns: u,
        }
    }

    #[test]
    fn overlapping_windows_share_a_request() {
        let a = p(10_000, 100);
        let b = p(10_150, 100); // overlaps a
        let c = p(50_000, 100); // far away
        let d = p(10_100, 0); // inside a, starts after b
        let g = time_groups(&[&c, &a, &b, &d], 10);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].members, vec![1, 2, 3]);
        assert_eq!((g[0].from_ns, g[0].to_ns), (10_000 - 110, 10_150 + 110));
        assert_eq!(g[1].members, vec![0]);
    }
}
