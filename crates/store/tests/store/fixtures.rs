//! Records for the tests, made from a seed so a reader can rebuild them from an id.

use ashiato_store::{GapRow, Incident, ObservationRow, OriginRow, TraceRecord};

pub fn incident(id: &str, created_ns: u64) -> Incident {
    Incident {
        id: id.into(),
        created_ns,
        victim_domain: 64500,
        source: "lab".into(),
        summary: format!("SYN flood against AS64500 ({id})"),
    }
}

/// A trace with `observations` rows, two origins and one gap; `n` varies the values.
pub fn trace(
    id: &str,
    incident: Option<&str>,
    started_ns: u64,
    n: u32,
    observations: usize,
) -> TraceRecord {
    TraceRecord {
        id: id.into(),
        incident_id: incident.map(Into::into),
        initiator_domain: 64500,
        victim_domain: 64500,
        mode: if n.is_multiple_of(2) {
            "recursive"
        } else {
            "mesh"
        }
        .into(),
        started_ns,
        duration_us: 1000 + u64::from(n),
        packets: 10 + n,
        status: "partial".into(),
        graph_json: format!("{{\"nodes\":[64500,{}],\"n\":{n}}}", 64501 + n),
        observations: (0..observations)
            .map(|i| ObservationRow {
                domain: 64500 + (i as u32 % 7),
                packet: i as u32 / 7,
                probe: format!("probe-{i}"),
                watches: if i % 3 == 0 {
                    "edge".into()
                } else {
                    format!("link:AS{}", 64600 + i)
                },
                verdict: ["seen", "not_seen", "unknown", "unreachable"][i % 4].into(),
                epoch_start_ns: (i % 2 == 0).then_some(started_ns),
                epoch_end_ns: (i % 2 == 0).then_some(started_ns + 4_000_000_000),
                fpr: (i % 5 != 0).then_some(0.083 / (i as f64 + 1.0)),
                reason: (i % 4 == 3).then(|| format!("probe {i} did not answer in 250 ms")),
            })
            .collect(),
        origins: vec![
            OriginRow {
                domain: 64501 + n,
                packets: 7,
            },
            OriginRow {
                domain: 65000,
                packets: 3 + n,
            },
        ],
        gaps: vec![GapRow {
            last_domain: 64510,
            behind: vec![64511, 64512 + n, u32::MAX],
            packets: 2,
            reason: "AS64511 has no traceback".into(),
        }],
    }
}
