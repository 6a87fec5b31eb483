//! The center's C&C ranking (BRIEF §4 (iii)): servers ranked by the distinct bots that
//! reached them, with popular destinations down-weighted and an operator allow list. Pure:
//! reports in, ranking and the three-layer graph out.
//!
//! # Score
//! For one incident (the reports of hosts that matched one claim), a server's score is
//!
//! ```text
//! score(s) = idf(s) × Σ_{reporters h that reached s} w(h)
//! idf(s)   = ln((2 + I) / (1 + I_s))
//! w(h)     = min(1, attack packets h sent in the claim window / 100)
//! ```
//!
//! - `I` is the number of earlier incidents the center has seen and `I_s` how many of them
//!   reported `s`: resolvers, CDNs, update sites and public IRC networks show up in many
//!   unrelated incidents, a botnet's C&C only in its own (inverse document frequency). A
//!   server seen in every earlier incident gets almost nothing; with no history (`I = 0`)
//!   every server gets the same factor, ln 2, and the distinct bots decide.
//! - `w(h)` weights a reporter by how much of the attack it carried: a bot in a flood sent
//!   thousands of packets; a legitimate visitor of the attacked service who matched the claim
//!   by coincidence sent a few. Reflection and spoofed packets count like direct ones.
//! - Allow-listed servers are dropped before ranking.
//!
//! Ties break on distinct reporters, then on the evidence (a command channel before a
//! download), then on the address. Every rank keeps its evidence: the
//! reporters, features, ports, names and processes behind it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// Reporter weight saturates at this many attack packets.
pub const FULL_WEIGHT_PACKETS: u64 = 100;

/// One record of a bot report: a suspicious process's connection (never packet contents).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportRecord {
    /// Time of the first packet, ns since the Unix epoch.
    pub time_ns: u64,
    /// `tcp`, `udp`, ...
    pub proto: String,
    /// The destination address.
    pub dst: IpAddr,
    /// The destination port.
    pub port: u16,
    /// The destination's name from the host's DNS answers.
    #[serde(default)]
    pub fqdn: Option<String>,
    /// The process.
    #[serde(default)]
    pub process: Option<String>,
    /// Features the process showed with this destination (`irc`, `http-exe`, ...).
    #[serde(default)]
    pub features: Vec<String>,
}

/// One host's report for one incident.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BotReport {
    /// The reporting host (its certificate's name at the center).
    pub reporter: String,
    /// The incident (claim) it matched.
    pub incident: String,
    /// Attack packets it sent inside the claim window (its match evidence).
    pub attack_packets: u64,
    /// The attacked port of the claim.
    #[serde(default)]
    pub attacked_port: Option<u16>,
    /// The suspicious processes' records.
    pub records: Vec<ReportRecord>,
}

/// Popularity across incidents: in how many distinct incidents each server was reported.
#[derive(Clone, Debug, Default)]
pub struct Popularity {
    incidents: HashSet<String>,
    per_server: HashMap<IpAddr, HashSet<String>>,
}

impl Popularity {
    /// Counts a report's servers for its incident.
    pub fn add(&mut self, r: &BotReport) {
        self.incidents.insert(r.incident.clone());
        for rec in &r.records {
            let s = self.per_server.entry(rec.dst).or_default();
            if s.len() < 1 << 16 {
                s.insert(r.incident.clone());
            }
        }
    }

    /// Incidents seen, other than `except`.
    fn incidents_except(&self, except: &str) -> usize {
        self.incidents.len() - usize::from(self.incidents.contains(except))
    }

    /// Incidents other than `except` that reported `s`.
    fn server_incidents_except(&self, s: IpAddr, except: &str) -> usize {
        self.per_server
            .get(&s)
            .map_or(0, |v| v.len() - usize::from(v.contains(except)))
    }
}

/// A ranked server with its evidence.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Ranked {
    /// 1-based rank.
    pub rank: usize,
    /// The server.
    pub server: IpAddr,
    /// The score.
    pub score: f64,
    /// Distinct reporters that reached it.
    pub reporters: usize,
    /// Sum of their weights.
    pub weight: f64,
    /// The popularity factor.
    pub idf: f64,
    /// Earlier incidents that reported it.
    pub other_incidents: usize,
    /// Ports, names, processes and features seen.
    pub ports: BTreeSet<u16>,
    /// Names.
    pub fqdns: BTreeSet<String>,
    /// Processes.
    pub processes: BTreeSet<String>,
    /// Features.
    pub features: BTreeSet<String>,
    /// The reporters (for the graph and the evidence).
    pub reporter_ids: BTreeSet<String>,
}

/// Ranks the servers of one incident's reports.
pub fn rank(
    incident: &str,
    reports: &[BotReport],
    popularity: &Popularity,
    allow: &HashSet<IpAddr>,
) -> Vec<Ranked> {
    let total = popularity.incidents_except(incident);
    let mut acc: BTreeMap<IpAddr, Ranked> = BTreeMap::new();
    let mut seen: HashSet<(IpAddr, &str)> = HashSet::new();
    for r in reports.iter().filter(|r| r.incident == incident) {
        let w = (r.attack_packets.min(FULL_WEIGHT_PACKETS) as f64) / FULL_WEIGHT_PACKETS as f64;
        for rec in &r.records {
            if allow.contains(&rec.dst) {
                continue;
            }
            let e = acc.entry(rec.dst).or_insert_with(|| Ranked {
                rank: 0,
                server: rec.dst,
                score: 0.0,
                reporters: 0,
                weight: 0.0,
                idf: 0.0,
                other_incidents: 0,
                ports: BTreeSet::new(),
                fqdns: BTreeSet::new(),
                processes: BTreeSet::new(),
                features: BTreeSet::new(),
                reporter_ids: BTreeSet::new(),
            });
            if seen.insert((rec.dst, r.reporter.as_str())) {
                e.reporters += 1;
                e.weight += w;
                e.reporter_ids.insert(r.reporter.clone());
            }
            e.ports.insert(rec.port);
            e.fqdns.extend(rec.fqdn.iter().cloned());
            e.processes.extend(rec.process.iter().cloned());
            e.features.extend(rec.features.iter().cloned());
        }
    }
    let mut out: Vec<Ranked> = acc
        .into_values()
        .map(|mut e| {
            e.other_incidents = popularity.server_incidents_except(e.server, incident);
            e.idf = ((2.0 + total as f64) / (1.0 + e.other_incidents as f64)).ln();
            e.score = e.idf * e.weight;
            e
        })
        .collect();
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(b.reporters.cmp(&a.reporters))
            .then(evidence_class(a).cmp(&evidence_class(b)))
            .then(a.server.cmp(&b.server))
    });
    for (i, e) in out.iter_mut().enumerate() {
        e.rank = i + 1;
    }
    out
}

/// Tie-break between servers the same bots reached: a command channel (IRC) before a
/// download, before the rest. A C&C and its download server are often reached by exactly the
/// same bots; the one that commands them is the one to name first.
fn evidence_class(r: &Ranked) -> u8 {
    if r.features.contains("irc") {
        0
    } else if r.features.contains("http-exe") {
        1
    } else {
        2
    }
}

/// The three-layer graph (attacked ports → bots → servers) of the top `top` servers, as
/// Graphviz DOT.
pub fn dot(incident: &str, reports: &[BotReport], ranked: &[Ranked], top: usize) -> String {
    let mut s = String::from("digraph botnet {\n  rankdir=LR;\n  node [shape=box];\n");
    let shown: Vec<&Ranked> = ranked.iter().take(top).collect();
    let bots: BTreeSet<&str> = shown
        .iter()
        .flat_map(|r| r.reporter_ids.iter().map(String::as_str))
        .collect();
    let mut ports = BTreeSet::new();
    for r in reports
        .iter()
        .filter(|r| r.incident == incident && bots.contains(r.reporter.as_str()))
    {
        let p = r
            .attacked_port
            .map_or_else(|| "any".to_string(), |p| p.to_string());
        ports.insert(p.clone());
        s.push_str(&format!("  \"port {p}\" -> \"{}\";\n", esc(&r.reporter)));
    }
    for p in &ports {
        s.push_str(&format!("  \"port {p}\" [shape=ellipse];\n"));
    }
    for r in &shown {
        let label = match r.fqdns.iter().next() {
            Some(n) => format!(
                "#{} {} ({})\\nscore {:.2}, {} bots",
                r.rank,
                r.server,
                esc(n),
                r.score,
                r.reporters
            ),
            None => format!(
                "#{} {}\\nscore {:.2}, {} bots",
                r.rank, r.server, r.score, r.reporters
            ),
        };
        s.push_str(&format!(
            "  \"{}\" [shape=doubleoctagon, label=\"{label}\"];\n",
            r.server
        ));
        for b in &r.reporter_ids {
            s.push_str(&format!("  \"{}\" -> \"{}\";\n", esc(b), r.server));
        }
    }
    s.push_str("}\n");
    s
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// A deterministic UUID (version 5 layout, SHA-1 of `name`) for STIX identifiers, so that
/// exporting the same finding twice gives the same objects.
fn uuid5(name: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, name.as_bytes());
    uuid_text(d.as_ref(), 5)
}

/// The first 16 bytes of a digest as a UUID of `version` (its version and RFC 4122 variant
/// bits set), in the usual 8-4-4-4-12 text.
pub fn uuid_text(digest: &[u8], version: u8) -> String {
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | (version << 4);
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// The top servers as a STIX 2.1 bundle: one `indicator` per server (pattern on its address)
/// and one `sighting` of it counting the distinct bots that reported it. `now` is RFC 3339.
pub fn stix_bundle(incident: &str, ranked: &[Ranked], now: &str) -> serde_json::Value {
    let mut objects = Vec::new();
    for r in ranked {
        let ind = format!(
            "indicator--{}",
            uuid5(&format!("ashiato/{incident}/{}", r.server))
        );
        let kind = if r.server.is_ipv4() {
            "ipv4-addr"
        } else {
            "ipv6-addr"
        };
        objects.push(serde_json::json!({
            "type": "indicator",
            "spec_version": "2.1",
            "id": ind,
            "created": now,
            "modified": now,
            "name": format!("C&C or download server #{} of {incident}", r.rank),
            "indicator_types": ["malicious-activity"],
            "pattern": format!("[{kind}:value = '{}']", r.server),
            "pattern_type": "stix",
            "valid_from": now,
            "description": format!(
                "reached by {} reporting bots; features {:?}; ports {:?}; score {:.3}",
                r.reporters, r.features, r.ports, r.score
            ),
        }));
        objects.push(serde_json::json!({
            "type": "sighting",
            "spec_version": "2.1",
            "id": format!("sighting--{}", uuid5(&format!("ashiato/{incident}/{}/sighting", r.server))),
            "created": now,
            "modified": now,
            "sighting_of_ref": ind,
            "count": r.reporters,
        }));
    }
    serde_json::json!({
        "type": "bundle",
        "id": format!("bundle--{}", uuid5(&format!("ashiato/{incident}/{now}"))),
        "objects": objects,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stix_bundles_have_stable_ids_and_one_sighting_per_indicator() {
        let b = crate::botnet::generate(3, 0.0, 1);
        let r = rank(
            crate::botnet::INCIDENT,
            &b.reports,
            &b.popularity,
            &HashSet::new(),
        );
        let now = "2026-01-01T00:00:00Z";
        let s = stix_bundle("inc", &r[..2], now);
        let o = s["objects"].as_array().unwrap();
        assert_eq!(o.len(), 4);
        assert_eq!(o[0]["pattern"], "[ipv4-addr:value = '203.0.113.66']");
        assert_eq!(o[1]["sighting_of_ref"], o[0]["id"]);
        assert_eq!(o[1]["count"], 3);
        let id = o[0]["id"].as_str().unwrap();
        assert_eq!(id.len(), "indicator--".len() + 36);
        assert_eq!(&id[11 + 14..11 + 15], "5");
        assert_eq!(stix_bundle("inc", &r[..2], now), s);
    }

    #[test]
    fn uuid_text_sets_version_and_variant() {
        let d = [0xffu8; 32];
        for v in [4u8, 5] {
            let u = uuid_text(&d, v);
            assert_eq!(u.len(), 36);
            assert_eq!(u.matches('-').count(), 4);
            assert_eq!(&u[14..15], &v.to_string());
            assert_eq!(&u[19..20], "b");
        }
        assert_eq!(
            uuid_text(&[0u8; 16], 4),
            "00000000-0000-4000-8000-000000000000"
        );
    }
}
