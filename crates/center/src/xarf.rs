//! X-ARF version 4 notices for the ranked servers, one report per server, grouped by origin
//! AS so each network's abuse desk gets its own list. Pure: the ranking in, JSON out.
//!
//! # Which X-ARF type
//! The X-ARF 4 schema (`xarf-spec`, `schemas/v4/xarf-core.json` and
//! `schemas/v4/types/infrastructure-botnet.json`, version 4.2.0) files command-and-control
//! findings under category `infrastructure`, type `botnet`, whose one type-specific required
//! field is `compromise_evidence`; `c2_server`, `c2_protocol` (`irc`, `http`, `tcp`, `udp`,
//! ...), `bot_capabilities`, `first_seen` and `last_seen` carry the rest. The core requires
//! `xarf_version`, `report_id` (a UUID), `timestamp`, `reporter` and `sender` (each `org`,
//! `contact` e-mail, `domain`), `source_identifier` (here the server's address), `category`
//! and `type`; evidence items need `content_type` and a base64 `payload`.
//!
//! - `report_id` is a UUID in version-4 layout whose bits are the SHA-256 of the incident
//!   and the server, so exporting the same finding twice gives the same id and a desk can
//!   de-duplicate.
//! - `timestamp` and `first_seen` are the first record of a bot reaching the server inside
//!   the incident, `last_seen` the last.
//! - The evidence item is the rank itself as JSON (score, reporters, ports, names, processes,
//!   features), with its SHA-256.

use ashiato_hosttrace::claimlist::rfc3339;
use ashiato_hosttrace::rank::BotReport;
use base64::Engine;

use crate::views::{ServerView, by_origin, group_header};

/// The X-ARF version the notices follow.
pub const XARF_VERSION: &str = "4.2.0";

/// Who sends the notices: X-ARF's `contact_info` (`org`, `contact`, `domain`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Contact {
    /// Organisation name.
    pub org: String,
    /// Abuse contact e-mail.
    pub contact: String,
    /// The organisation's domain (the e-mail's).
    pub domain: String,
}

impl Contact {
    /// Parses `Org Name <abuse@example.net>`.
    pub fn parse(s: &str) -> Result<Contact, String> {
        let bad = || format!("{s:?}: expected \"Organisation <abuse@example.net>\"");
        let (org, rest) = s.split_once('<').ok_or_else(bad)?;
        let email = rest.strip_suffix('>').ok_or_else(bad)?.trim();
        let org = org.trim();
        let (local, domain) = email.split_once('@').ok_or_else(bad)?;
        let host_ok = |d: &str| {
            d.contains('.')
                && d.len() <= 253
                && d.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && !l.starts_with('-')
                        && !l.ends_with('-')
                        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                })
        };
        if org.is_empty() || org.len() > 200 || local.is_empty() || !host_ok(domain) {
            return Err(bad());
        }
        if local.bytes().any(|b| !b.is_ascii_graphic() || b == b'@') {
            return Err(bad());
        }
        Ok(Contact {
            org: org.into(),
            contact: email.into(),
            domain: domain.to_ascii_lowercase(),
        })
    }
}

/// A UUID in version-4 layout from the SHA-256 of `name` (stable across exports).
fn report_uuid(name: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, name.as_bytes());
    ashiato_hosttrace::rank::uuid_text(d.as_ref(), 4)
}

/// At most `n` characters of `s`.
fn cut(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// A tag value in X-ARF's pattern `[a-z0-9][a-z0-9_+-]*`, or `None`.
fn tag_value(s: &str) -> Option<String> {
    let v: String = s
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_+-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    v.starts_with(|c: char| c.is_ascii_alphanumeric())
        .then_some(v)
}

/// One notice for one server.
pub fn notice(
    incident: &str,
    reports: &[BotReport],
    s: &ServerView<'_>,
    contact: &Contact,
    now_ns: u64,
) -> serde_json::Value {
    let r = s.ranked;
    let times: Vec<u64> = reports
        .iter()
        .filter(|b| b.incident == incident && r.reporter_ids.contains(&b.reporter))
        .flat_map(|b| b.records.iter())
        .filter(|x| x.dst == r.server)
        .map(|x| x.time_ns)
        .collect();
    let first = times.iter().min().copied().unwrap_or(now_ns);
    let last = times.iter().max().copied().unwrap_or(now_ns);
    let f = &r.features;
    let c2_protocol = if f.contains("irc") {
        "irc"
    } else if f.contains("http-exe") {
        "http"
    } else {
        "tcp"
    };
    let mut capabilities = vec!["ddos"];
    if f.contains("http-exe") {
        capabilities.push("file_download");
    }
    if f.contains("smtp-error") {
        capabilities.push("spam");
    }
    let names: Vec<&str> = r.fqdns.iter().map(String::as_str).collect();
    let evidence_text = format!(
        "{} distinct hosts that took part in attack {incident} found, by auditing their own \
         traffic, that the process behind the attack reached {}{} (ports {:?}, features {:?}, \
         processes {:?}); ranked #{} with score {:.3}",
        r.reporters,
        r.server,
        if names.is_empty() {
            String::new()
        } else {
            format!(" ({})", names.join(", "))
        },
        r.ports,
        f,
        r.processes,
        r.rank,
        r.score
    );
    let evidence = serde_json::to_vec(s).expect("plain data");
    let digest = ring::digest::digest(&ring::digest::SHA256, &evidence);
    let mut tags = vec!["botnet:command-and-control".to_string()];
    tags.extend(
        f.iter()
            .filter_map(|x| tag_value(x))
            .map(|v| format!("feature:{v}"))
            .take(10),
    );
    let mut n = serde_json::json!({
        "xarf_version": XARF_VERSION,
        "report_id": report_uuid(&format!("ashiato/xarf/{incident}/{}", r.server)),
        "timestamp": rfc3339(first),
        "reporter": contact,
        "sender": contact,
        "source_identifier": r.server.to_string(),
        "category": "infrastructure",
        "type": "botnet",
        "c2_server": r.server.to_string(),
        "c2_protocol": c2_protocol,
        "bot_capabilities": capabilities,
        "compromise_evidence": evidence_text,
        "first_seen": rfc3339(first),
        "last_seen": rfc3339(last),
        "evidence_source": "traffic_analysis",
        "evidence": [{
            "content_type": "application/json",
            "description": cut(&format!("ashiato ranking of {} in incident {incident}", r.server), 500),
            "payload": base64::engine::general_purpose::STANDARD.encode(&evidence),
            "hash": format!("sha256:{}", crate::hex(digest.as_ref())),
            "size": evidence.len(),
        }],
        "tags": tags,
        "description": cut(
            &format!(
                "Probable command-and-control or download server of the bots in attack \
                 {incident}: reached by {} reporting bots{}.",
                r.reporters,
                s.asn.map_or(String::new(), |a| format!(", origin AS{a}"))
            ),
            1000,
        ),
    });
    if let Some(p) = r.ports.iter().find(|p| **p > 0) {
        n["source_port"] = (*p).into();
    }
    n
}

/// Every server's notice, grouped by origin AS: `{"incident", "xarf_version", "groups":
/// [{"asn", "prefixes", "notices": [...]}]}`, groups in the order of their best server and
/// servers of unknown origin last (`asn: null`, with the reason).
pub fn notices(
    incident: &str,
    reports: &[BotReport],
    servers: &[ServerView<'_>],
    contact: &Contact,
    now_ns: u64,
) -> serde_json::Value {
    let groups: Vec<serde_json::Value> = by_origin(servers)
        .into_iter()
        .map(|(a, members)| {
            let mut g = group_header(a, &members);
            g["notices"] = members
                .iter()
                .map(|s| notice(incident, reports, s, contact, now_ns))
                .collect();
            g
        })
        .collect();
    serde_json::json!({
        "incident": incident,
        "xarf_version": XARF_VERSION,
        "groups": groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_parse_or_say_what_is_expected() {
        let c = Contact::parse("Example ISP CSIRT <abuse@Example.NET>").unwrap();
        assert_eq!(c.org, "Example ISP CSIRT");
        assert_eq!(c.contact, "abuse@Example.NET");
        assert_eq!(c.domain, "example.net");
        for bad in [
            "abuse@example.net",
            "<abuse@example.net>",
            "X <abuse>",
            "X <abuse@localhost>",
            "X <@example.net>",
            "X <a b@example.net>",
            "X <abuse@exa_mple.net>",
        ] {
            assert!(Contact::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn report_ids_are_uuids_stable_per_finding() {
        let a = report_uuid("ashiato/xarf/c1/45.33.32.156");
        assert_eq!(a, report_uuid("ashiato/xarf/c1/45.33.32.156"));
        assert_ne!(a, report_uuid("ashiato/xarf/c2/45.33.32.156"));
        let parts: Vec<&str> = a.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'));
        assert!("89ab".contains(&parts[3][..1]));
    }

    #[test]
    fn tags_follow_the_schema_pattern() {
        assert_eq!(tag_value("http-exe").as_deref(), Some("http-exe"));
        assert_eq!(tag_value("Dns Error").as_deref(), Some("dns-error"));
        assert_eq!(tag_value("-x"), None);
    }
}
