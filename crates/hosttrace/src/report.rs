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
//!
//! Without an IDS, [`SynFloodDetector`] reads the victim's own capture: TCP SYNs (without ACK)
//! are counted per destination address and port in each second of capture time; a second
//! with at least [`FloodConfig::min_syns_per_sec`] SYNs to one (address, port) is a flooded
//! second. Each flooded second becomes one EVE `alert` record (`alert.signature` names this
//! detector, [`FLOOD_SIGNATURE`]), and the alerts of one address become its claim: the window
//! from the first SYN of the first flooded second to the last SYN of the last one, TCP, the
//! port when only one was flooded. A scan (many ports, a few SYNs each) or ordinary browsing
//! is no flood. Memory is bounded: at most [`MAX_FLOOD_KEYS`] (address, port) pairs are
//! followed; SYNs to others are counted as untracked.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde_json::Value;

use ashiato_wire::LinkType;
use ashiato_wire::packet::{self, L4};

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
    let fixed = if s.is_ascii() && b.len() > 5 && !s.ends_with('Z') && b[b.len() - 3] != b':' {
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

/// The `alert.signature` of the flood detector's EVE records.
pub const FLOOD_SIGNATURE: &str = "ashiato report: TCP SYN flood";

/// The `alert.signature_id` of those records (from the range Suricata leaves to local rules).
pub const FLOOD_SIGNATURE_ID: u64 = 9_100_001;

/// (address, port) pairs the flood detector follows at most.
pub const MAX_FLOOD_KEYS: usize = 1 << 18;

/// The flood detector's threshold.
#[derive(Clone, Copy, Debug)]
pub struct FloodConfig {
    /// SYNs to one (address, port) within one second of capture time that make a flood.
    pub min_syns_per_sec: u64,
}

impl Default for FloodConfig {
    fn default() -> Self {
        FloodConfig {
            min_syns_per_sec: 100,
        }
    }
}

/// One (address, port)'s count in the current second and its flooded seconds so far.
#[derive(Default)]
struct PortState {
    sec: u64,
    syns: u64,
    first_ns: u64,
    last_ns: u64,
    /// The SYN that reached the threshold this second (its source is what an IDS would show).
    sample: Option<(IpAddr, u16)>,
    flooded: Vec<FloodedSecond>,
    flooded_secs: u64,
    flood_syns: u64,
}

struct FloodedSecond {
    first_ns: u64,
    last_ns: u64,
    syns: u64,
    sample: (IpAddr, u16),
}

/// What the flood detector saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FloodStats {
    /// Frames read.
    pub frames: u64,
    /// Frames that were not IP (or not parseable).
    pub unparsed: u64,
    /// TCP SYNs without ACK.
    pub syns: u64,
    /// SYNs to (address, port) pairs beyond [`MAX_FLOOD_KEYS`], not counted per pair.
    pub untracked_syns: u64,
}

/// The victim-side SYN-flood detector: frames in ([`SynFloodDetector::frame`]), claims with
/// EVE alerts out ([`SynFloodDetector::finish`]). Frames are expected in capture order; a
/// frame older than the current second of its pair counts in that second.
pub struct SynFloodDetector {
    cfg: FloodConfig,
    ports: BTreeMap<(IpAddr, u16), PortState>,
    stats: FloodStats,
}

impl SynFloodDetector {
    /// A detector with threshold `cfg`.
    pub fn new(cfg: FloodConfig) -> Self {
        SynFloodDetector {
            cfg,
            ports: BTreeMap::new(),
            stats: FloodStats::default(),
        }
    }

    /// Counts one captured frame.
    pub fn frame(&mut self, ts_ns: u64, link: LinkType, data: &[u8]) {
        self.stats.frames += 1;
        let Ok(p) = packet::parse(link, data) else {
            self.stats.unparsed += 1;
            return;
        };
        let L4::Tcp(t) = p.l4 else { return };
        if !t.flags.is_syn_only() {
            return;
        }
        self.stats.syns += 1;
        let key = (p.ip.dst(), t.dst_port);
        if !self.ports.contains_key(&key) && self.ports.len() >= MAX_FLOOD_KEYS {
            self.stats.untracked_syns += 1;
            return;
        }
        let min = self.cfg.min_syns_per_sec;
        let s = self.ports.entry(key).or_default();
        let sec = ts_ns / 1_000_000_000;
        if s.syns > 0 && sec > s.sec {
            close_second(s, min);
        }
        if s.syns == 0 {
            (s.sec, s.first_ns) = (sec, ts_ns);
        }
        s.syns += 1;
        s.last_ns = s.last_ns.max(ts_ns);
        if s.syns == min.max(1) {
            s.sample = Some((p.ip.src(), t.src_port));
        }
    }

    /// The claims (one per flooded address, ids `PREFIX-1`, ...) and the counts.
    pub fn finish(mut self, id_prefix: &str) -> (Vec<VictimClaim>, FloodStats) {
        let min = self.cfg.min_syns_per_sec;
        let mut by_victim: BTreeMap<IpAddr, Vec<(u16, PortState)>> = BTreeMap::new();
        for ((dst, port), mut s) in std::mem::take(&mut self.ports) {
            close_second(&mut s, min);
            if s.flooded_secs > 0 {
                by_victim.entry(dst).or_default().push((port, s));
            }
        }
        let claims = by_victim
            .into_iter()
            .enumerate()
            .map(|(i, (victim, ports))| {
                flood_claim(format!("{id_prefix}-{}", i + 1), victim, &ports, min)
            })
            .collect();
        (claims, self.stats)
    }
}

/// Ends the current second of a pair: a flooded second when it reached the threshold.
fn close_second(s: &mut PortState, min: u64) {
    if s.syns >= min.max(1) {
        s.flooded_secs += 1;
        s.flood_syns += s.syns;
        if s.flooded.len() < MAX_EVIDENCE
            && let Some(sample) = s.sample
        {
            s.flooded.push(FloodedSecond {
                first_ns: s.first_ns,
                last_ns: s.last_ns,
                syns: s.syns,
                sample,
            });
        }
    }
    s.syns = 0;
    s.sample = None;
}

/// One victim's claim from its flooded ports.
fn flood_claim(id: String, victim: IpAddr, ports: &[(u16, PortState)], min: u64) -> VictimClaim {
    let mut evidence = Vec::new();
    let (mut from, mut to, mut alerts) = (u64::MAX, 0, 0usize);
    for (port, s) in ports {
        alerts += s.flooded_secs as usize;
        for f in &s.flooded {
            from = from.min(f.first_ns);
            to = to.max(f.last_ns);
            if evidence.len() < MAX_EVIDENCE {
                evidence.push(flood_alert(victim, *port, f, min));
            }
        }
    }
    VictimClaim {
        claim: ClaimRecord {
            id,
            victim,
            protocol: Protocol::Tcp,
            port: (ports.len() == 1).then(|| ports[0].0),
            from: crate::rfc3339_ns(from),
            to: crate::rfc3339_ns(to),
            reflectors: Vec::new(),
            fqdn: None,
        },
        evidence,
        alerts,
    }
}

/// A flooded second as a Suricata EVE alert: timed at its first SYN, the triggering packet's
/// addresses (as Suricata shows them; the claim never carries the source), this detector's
/// signature, and the second's count.
fn flood_alert(victim: IpAddr, port: u16, f: &FloodedSecond, min: u64) -> Value {
    serde_json::json!({
        "timestamp": suricata_time(f.first_ns),
        "event_type": "alert",
        "src_ip": f.sample.0.to_string(),
        "src_port": f.sample.1,
        "dest_ip": victim.to_string(),
        "dest_port": port,
        "proto": "TCP",
        "alert": {
            "action": "allowed",
            "gid": 1,
            "signature_id": FLOOD_SIGNATURE_ID,
            "rev": 1,
            "signature": FLOOD_SIGNATURE,
            "category": "Attempted Denial of Service",
            "severity": 2,
        },
        "ashiato": {
            "syns": f.syns,
            "threshold_per_sec": min,
            "last": crate::rfc3339_ns(f.last_ns),
        },
    })
}

/// Suricata's `2026-01-01T10:00:01.123456+0000`.
fn suricata_time(ns: u64) -> String {
    let s = crate::rfc3339_ns(ns);
    format!("{}+0000", &s[..26])
}

/// An EVE timestamp as RFC 3339 text.
fn normalise(s: &str) -> String {
    eve_time(s).map_or_else(|| s.to_string(), crate::rfc3339_ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eve_time_takes_any_text_without_panicking() {
        for t in [
            "2026-01-01x\u{20ac}",
            "\u{20ac}\u{20ac}\u{20ac}",
            "2026-01-01T10:00:01.5+00\u{e9}0",
            "",
        ] {
            assert_eq!(eve_time(t), None, "{t:?}");
        }
        assert!(eve_time("2026-01-01T10:00:01.123456+0000").is_some());
    }

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

    fn syn(src: [u8; 4], dport: u16) -> Vec<u8> {
        use ashiato_wire::build::ipv4_tcp_frame;
        use ashiato_wire::packet::TcpFlags;
        ipv4_tcp_frame(
            src.into(),
            [203, 0, 113, 5].into(),
            40000,
            dport,
            1,
            0,
            TcpFlags(0x002),
            1,
            &[],
        )
    }

    #[test]
    fn flooded_seconds_make_the_window_and_two_ports_make_no_port() {
        let s = 1_767_261_600_000_000_000u64; // 2026-01-01T10:00:00Z
        let mut d = SynFloodDetector::new(FloodConfig {
            min_syns_per_sec: 5,
        });
        // Second 0: 5 SYNs to :80 (a flood); second 1: 4 (not); second 2: 6 (a flood).
        for (sec, n) in [(0u64, 5u64), (1, 4), (2, 6)] {
            for i in 0..n {
                let f = syn([198, 51, 100, i as u8], 80);
                d.frame(s + sec * 1_000_000_000 + i * 1000, LinkType::Ethernet, &f);
            }
        }
        let (c, stats) = d.finish("f");
        assert_eq!(stats.syns, 15);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].alerts, 2);
        assert_eq!(c[0].claim.port, Some(80));
        assert_eq!(c[0].claim.from, "2026-01-01T10:00:00.000000000Z");
        assert_eq!(c[0].claim.to, "2026-01-01T10:00:02.000005000Z");
        assert_eq!(c[0].evidence[1]["ashiato"]["syns"], 6);
        assert_eq!(
            c[0].evidence[0]["timestamp"],
            "2026-01-01T10:00:00.000000+0000"
        );
        // The alert names the packet that reached the threshold, the claim no source at all.
        assert_eq!(c[0].evidence[0]["src_ip"], "198.51.100.4");

        // A second port flooded too: one claim for the address, no single port.
        let mut d = SynFloodDetector::new(FloodConfig {
            min_syns_per_sec: 3,
        });
        for (i, port) in [80, 80, 80, 443, 443, 443].into_iter().enumerate() {
            d.frame(
                s + i as u64,
                LinkType::Ethernet,
                &syn([198, 51, 100, 1], port),
            );
        }
        let (c, _) = d.finish("f");
        assert_eq!((c.len(), c[0].claim.port, c[0].alerts), (1, None, 2));
    }
}
