//! Claims: what a victim says hit it, and when (BRIEF §4 (i)).
//!
//! A claim names the attack window, the victim's address, the protocol and the attacked port;
//! never the attack's source address, which is spoofed or NATed. For reflection and Smurf
//! attacks it also names the reflectors (the attack packets' sources at the victim, i.e. the
//! bots' destinations). One JSON object a line:
//!
//! ```json
//! {"id":"c1","victim":"203.0.113.5","protocol":"tcp","port":80,
//!  "from":"2026-01-01T10:00:00Z","to":"2026-01-01T10:05:00Z"}
//! {"id":"c2","victim":"203.0.113.9","protocol":"udp","port":4444,"reflectors":["198.51.100.53"],
//!  "from":"2026-01-01T11:00:00Z","to":"2026-01-01T11:02:00Z"}
//! ```
//!
//! `protocol` is `tcp`, `udp`, `icmp` or `any`; `port` is optional (absent for ICMP or when the
//! victim saw many ports). Blank lines and lines starting with `#` are skipped.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::HostTraceError;

/// Most reflectors one claim may list.
pub const MAX_REFLECTORS: usize = 4096;

/// The transport a claim names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP (6).
    Tcp,
    /// UDP (17).
    Udp,
    /// ICMP or ICMPv6 (1, 58).
    Icmp,
    /// Any protocol.
    Any,
}

impl Protocol {
    /// Whether an IP protocol number is this one.
    pub fn matches(self, ip_proto: u8) -> bool {
        match self {
            Protocol::Tcp => ip_proto == 6,
            Protocol::Udp => ip_proto == 17,
            Protocol::Icmp => ip_proto == 1 || ip_proto == 58,
            Protocol::Any => true,
        }
    }
}

/// One claim, as the file holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimRecord {
    /// The center's identifier of the claim.
    pub id: String,
    /// The victim's address.
    pub victim: IpAddr,
    /// The attack's transport.
    pub protocol: Protocol,
    /// The attacked port at the victim, if one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Start of the attack, RFC 3339.
    pub from: String,
    /// End of the attack, RFC 3339.
    pub to: String,
    /// Reflection/Smurf: the sources of the attack packets at the victim (the bots sent to
    /// them with the victim's address as source).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reflectors: Vec<IpAddr>,
    /// The victim's name, informational.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fqdn: Option<String>,
}

/// A claim ready for matching: times in ns since the Unix epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// Identifier.
    pub id: String,
    /// Victim address.
    pub victim: IpAddr,
    /// Transport.
    pub protocol: Protocol,
    /// Attacked port.
    pub port: Option<u16>,
    /// Window start, ns.
    pub from_ns: u64,
    /// Window end, ns (≥ `from_ns`).
    pub to_ns: u64,
    /// Reflectors.
    pub reflectors: Vec<IpAddr>,
}

impl Claim {
    /// Checks a record and converts its times.
    pub fn from_record(r: ClaimRecord) -> Result<Claim, String> {
        if r.id.is_empty() || r.id.len() > 128 {
            return Err("id must be 1 to 128 characters".into());
        }
        let from_ns = parse_rfc3339(&r.from).map_err(|e| e.to_string())?;
        let to_ns = parse_rfc3339(&r.to).map_err(|e| e.to_string())?;
        if to_ns < from_ns {
            return Err(format!("\"to\" {} is before \"from\" {}", r.to, r.from));
        }
        if r.reflectors.len() > MAX_REFLECTORS {
            return Err(format!("more than {MAX_REFLECTORS} reflectors"));
        }
        Ok(Claim {
            id: r.id,
            victim: r.victim,
            protocol: r.protocol,
            port: r.port,
            from_ns,
            to_ns,
            reflectors: r.reflectors,
        })
    }
}

/// Parses a claim list (one JSON object a line, or a JSON array of objects).
pub fn parse_claims(text: &str) -> Result<Vec<Claim>, HostTraceError> {
    let t = text.trim_start();
    if t.starts_with('[') {
        let recs: Vec<ClaimRecord> =
            serde_json::from_str(t).map_err(|e| HostTraceError::Claim {
                line: e.line(),
                reason: e.to_string(),
            })?;
        return recs
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                Claim::from_record(r).map_err(|reason| HostTraceError::Claim {
                    line: i + 1,
                    reason,
                })
            })
            .collect();
    }
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let err = |reason: String| HostTraceError::Claim {
            line: i + 1,
            reason,
        };
        let r: ClaimRecord = serde_json::from_str(l).map_err(|e| err(e.to_string()))?;
        out.push(Claim::from_record(r).map_err(err)?);
    }
    Ok(out)
}

/// An RFC 3339 time (any offset) as ns since the Unix epoch; times before 1970 are refused.
pub fn parse_rfc3339(s: &str) -> Result<u64, HostTraceError> {
    let bad = || HostTraceError::Time {
        value: s.chars().take(64).collect(),
    };
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|_| bad())?;
    u64::try_from(t.unix_timestamp_nanos()).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_list_parses_with_its_times_and_reflectors() {
        let text = r#"
# two claims
{"id":"c1","victim":"203.0.113.5","protocol":"tcp","port":80,"from":"2026-01-01T10:00:00Z","to":"2026-01-01T10:05:00Z"}
{"id":"c2","victim":"2001:db8::1","protocol":"udp","reflectors":["198.51.100.53"],"from":"2026-01-01T11:00:00+09:00","to":"2026-01-01T11:00:00+09:00"}
"#;
        let c = parse_claims(text).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].port, Some(80));
        assert_eq!(c[0].to_ns - c[0].from_ns, 300_000_000_000);
        assert_eq!(c[1].from_ns, 1_767_232_800_000_000_000);
        assert_eq!(c[1].reflectors.len(), 1);
        let arr = parse_claims(r#"[{"id":"x","victim":"1.2.3.4","protocol":"any","from":"2026-01-01T00:00:00Z","to":"2026-01-01T00:00:01Z"}]"#).unwrap();
        assert_eq!(arr[0].protocol, Protocol::Any);
    }

    #[test]
    fn bad_claims_name_their_line_and_cause() {
        let e = parse_claims("\n{\"id\":\"a\"}").unwrap_err().to_string();
        assert!(e.starts_with("claim line 2:"), "{e}");
        let e = parse_claims(r#"{"id":"a","victim":"1.2.3.4","protocol":"tcp","from":"2026-01-01T10:00:00Z","to":"2026-01-01T09:00:00Z"}"#).unwrap_err().to_string();
        assert!(e.contains("before"), "{e}");
        let e = parse_claims(r#"{"id":"a","victim":"1.2.3.4","protocol":"tcp","from":"yesterday","to":"2026-01-01T09:00:00Z"}"#).unwrap_err().to_string();
        assert!(e.contains("RFC 3339"), "{e}");
        let e = parse_claims(r#"{"id":"a","victim":"1.2.3.4","protocol":"tcp","from":"2026-01-01T10:00:00Z","to":"2026-01-01T10:00:00Z","source":"6.6.6.6"}"#).unwrap_err().to_string();
        assert!(e.contains("unknown field"), "{e}");
    }
}
