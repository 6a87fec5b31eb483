//! The victim's side (`ashiato report`): a claim built from Suricata EVE alerts. Pure: lines
//! in, a claim and the alerts that back it out.
//!
//! Alerts are grouped by destination (the victim). The window is the first to the last alert;
//! the protocol and port are the alerts' when they agree (no port otherwise). When the alerts
//! are DNS responses (an EVE `dns` object of version 2 — `"type": "answer"` or an `answers`
//! list — or version 3 — `"version": 3` with `answers` or `"type": "response"` — or UDP from
//! port 53), the attack is a reflection: the alerts' sources are the reflectors, i.e. the
//! bots' destinations, and are listed. Otherwise the sources are left out: a direct attack's
//! source address is spoofed or NATed and blames the wrong host.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde_json::Value;

use crate::claim::{ClaimRecord, MAX_REFLECTORS, Protocol, parse_rfc3339};

/// Alerts attached as evidence to one claim, at most.
pub const MAX_EVIDENCE: usize = 100;

/// A claim and its evidence.
#[derive(Clone, Debug, PartialEq)]
pub struct VictimClaim {
    /// The claim.
    pub claim: ClaimRecord,
    /// The EVE alerts behind it (at most [`MAX_EVIDENCE`]).
    pub evidence: Vec<Value>,
    /// Alerts it summarises.
    pub alerts: usize,
}

/// Suricata's `2026-01-01T10:00:01.123456+0000` (no colon in the offset) or RFC 3339, in ns.
pub fn eve_time(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let fixed = if b.len() > 5 && !s.ends_with('Z') && b[b.len() - 3] != b':' {
        format!("{}:{}", &s[..s.len() - 2], &s[s.len() - 2..])
    } else {
        s.to_string()
    };
    parse_rfc3339(&fixed).ok()
}

fn is_dns_response(e: &Value) -> bool {
    let src53 = e.get("src_port").and_then(Value::as_u64) == Some(53);
    let udp = e
        .get("proto")
        .and_then(Value::as_str)
        .is_some_and(|p| p.eq_ignore_ascii_case("udp"));
    let Some(d) = e.get("dns") else {
        return src53 && udp;
    };
    let ty = d.get("type").and_then(Value::as_str).unwrap_or("");
    ty == "answer"
        || ty == "response"
        || d.get("answers").is_some()
        || d.get("answer").is_some()
        || (src53 && udp)
}

/// Builds one claim per attacked address from EVE lines (non-alert records and bad lines are
/// skipped and counted). `id_prefix` names the claims `PREFIX-1`, `PREFIX-2`, ...
pub fn claims_from_eve(text: &str, id_prefix: &str) -> (Vec<VictimClaim>, usize) {
    struct Acc {
        first: u64,
        last: u64,
        first_s: String,
        last_s: String,
        protos: BTreeSet<String>,
        ports: BTreeSet<u64>,
        reflectors: BTreeSet<IpAddr>,
        dns: usize,
        alerts: usize,
        evidence: Vec<Value>,
    }
    let mut by_victim: BTreeMap<IpAddr, Acc> = BTreeMap::new();
    let mut skipped = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(e) = serde_json::from_str::<Value>(line) else {
            skipped += 1;
            continue;
        };
        let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let (Some(victim), Some(t)) = (
            s("dest_ip").parse::<IpAddr>().ok(),
            eve_time(&s("timestamp")),
        ) else {
            skipped += 1;
            continue;
        };
        if s("event_type") != "alert" {
            skipped += 1;
            continue;
        }
        let a = by_victim.entry(victim).or_insert_with(|| Acc {
            first: t,
            last: t,
            first_s: s("timestamp"),
            last_s: s("timestamp"),
            protos: BTreeSet::new(),
            ports: BTreeSet::new(),
            reflectors: BTreeSet::new(),
            dns: 0,
            alerts: 0,
            evidence: Vec::new(),
        });
        if t < a.first {
            (a.first, a.first_s) = (t, s("timestamp"));
        }
        if t > a.last {
            (a.last, a.last_s) = (t, s("timestamp"));
        }
        a.protos.insert(s("proto").to_ascii_lowercase());
        if let Some(p) = e.get("dest_port").and_then(Value::as_u64) {
            a.ports.insert(p);
        }
        if is_dns_response(&e) {
            a.dns += 1;
            if let Ok(r) = s("src_ip").parse::<IpAddr>()
                && a.reflectors.len() < MAX_REFLECTORS
            {
                a.reflectors.insert(r);
            }
        }
        a.alerts += 1;
        if a.evidence.len() < MAX_EVIDENCE {
            a.evidence.push(e);
        }
    }
    let out = by_victim
        .into_iter()
        .enumerate()
        .map(|(i, (victim, a))| {
            let protocol = match (a.protos.len(), a.protos.iter().next().map(String::as_str)) {
                (1, Some("tcp")) => Protocol::Tcp,
                (1, Some("udp")) => Protocol::Udp,
                (1, Some("icmp" | "ipv6-icmp")) => Protocol::Icmp,
                _ => Protocol::Any,
            };
            let reflection = a.dns * 2 > a.alerts;
            let port = if a.ports.len() == 1 {
                a.ports.iter().next().and_then(|&p| u16::try_from(p).ok())
            } else {
                None
            };
            VictimClaim {
                claim: ClaimRecord {
                    id: format!("{id_prefix}-{}", i + 1),
                    victim,
                    protocol,
                    port,
                    from: normalise(&a.first_s),
                    to: normalise(&a.last_s),
                    reflectors: if reflection {
                        a.reflectors.into_iter().collect()
                    } else {
                        Vec::new()
                    },
                    fqdn: None,
                },
                evidence: a.evidence,
                alerts: a.alerts,
            }
        })
        .collect();
    (out, skipped)
}

/// An EVE timestamp as RFC 3339 text.
fn normalise(s: &str) -> String {
    eve_time(s).map_or_else(|| s.to_string(), crate::rfc3339_ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_gives_a_direct_claim_without_sources() {
        let eve = r#"{"timestamp":"2026-01-01T10:00:01.000000+0000","event_type":"alert","src_ip":"198.51.100.9","src_port":40000,"dest_ip":"203.0.113.5","dest_port":80,"proto":"TCP"}
{"timestamp":"2026-01-01T10:04:59.500000+0000","event_type":"alert","src_ip":"198.51.100.10","src_port":40001,"dest_ip":"203.0.113.5","dest_port":80,"proto":"TCP"}
{"timestamp":"2026-01-01T10:02:00.000000+0000","event_type":"flow","dest_ip":"203.0.113.5"}
not json"#;
        let (c, skipped) = claims_from_eve(eve, "v");
        assert_eq!(skipped, 2);
        assert_eq!(c.len(), 1);
        let k = &c[0].claim;
        assert_eq!(
            (k.id.as_str(), k.protocol, k.port),
            ("v-1", Protocol::Tcp, Some(80))
        );
        assert_eq!(k.from, "2026-01-01T10:00:01.000000000Z");
        assert_eq!(k.to, "2026-01-01T10:04:59.500000000Z");
        assert!(k.reflectors.is_empty());
        assert!(!serde_json::to_string(k).unwrap().contains("198.51.100"));
        assert_eq!(c[0].evidence.len(), 2);
    }

    #[test]
    fn dns_reflection_in_eve_v2_and_v3_lists_the_resolvers() {
        let v2 = r#"{"timestamp":"2026-01-01T10:00:01.000000+0000","event_type":"alert","src_ip":"192.0.2.53","src_port":53,"dest_ip":"198.51.100.7","dest_port":4444,"proto":"UDP","dns":{"type":"answer","id":1,"rrname":"example.org","rrtype":"ANY"}}
{"timestamp":"2026-01-01T10:00:02.000000+0000","event_type":"alert","src_ip":"192.0.2.54","src_port":53,"dest_ip":"198.51.100.7","dest_port":4444,"proto":"UDP","dns":{"type":"answer","id":2,"rrname":"example.org","rrtype":"ANY"}}"#;
        let v3 = r#"{"timestamp":"2026-01-01T10:00:03.000000+0000","event_type":"alert","src_ip":"192.0.2.55","src_port":53,"dest_ip":"198.51.100.7","dest_port":4444,"proto":"UDP","dns":{"version":3,"type":"response","queries":[{"rrname":"example.org","rrtype":"ANY"}],"answers":[{"rrname":"example.org","rrtype":"RRSIG"}]}}"#;
        for (text, n) in [(v2, 2), (v3, 1)] {
            let (c, _) = claims_from_eve(text, "r");
            let k = &c[0].claim;
            assert_eq!(k.protocol, Protocol::Udp);
            assert_eq!(k.port, Some(4444));
            assert_eq!(k.reflectors.len(), n, "{k:?}");
            assert_eq!(k.reflectors[0].to_string().get(..9), Some("192.0.2.5"));
        }
    }
}
