//! What the agent would report for each matched claim (pure): the bot report the center
//! accepts (`ashiato_hosttrace::rank::BotReport`), its deterministic id, and the text that
//! asks the user.
//!
//! A report carries only records of processes that showed one of the five features around
//! the claim (the audit's `near_claims`): per (protocol, destination, port, process) the
//! first time, the destination's name and the features. Besides the destinations where the
//! features showed, the same processes' other connections from the process log within the
//! same hour around the claim go along without features (a C&C check-in over HTTP shows
//! none of the five). Never packet contents, never a claim's victim or reflector (the attack
//! itself is the claim), never a flow no process record covers (those are counted and
//! shown, not sent).
//! The report id is a hash of (host, claim): sending again after a lost answer is the same
//! report, which the center's replay check recognises.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use ashiato_hosttrace::procs::ProcMap;
use ashiato_hosttrace::rank::{BotReport, ReportRecord};
use ashiato_hosttrace::{Claim, Report};
use ashiato_wire::time::rfc3339;

use crate::scan::{flow_owners, proto_name};

/// One matched claim and what would be sent for it.
#[derive(Clone, Debug, PartialEq)]
pub struct Planned {
    /// The claim's id.
    pub claim_id: String,
    /// Its window, ns.
    pub window: (u64, u64),
    /// The report id.
    pub report_id: String,
    /// The report.
    pub report: BotReport,
    /// How the attack packets matched (`direct`, `reflection`, `spoofed-source`).
    pub kinds: BTreeMap<&'static str, u64>,
    /// The processes that sent the attack packets (of the flows listed as evidence).
    pub attackers: BTreeSet<String>,
    /// Attack flows listed as evidence that no process record covers.
    pub attack_unattributed: usize,
    /// Flows of findings around the claim that no process record covers (not sent).
    pub findings_unattributed: usize,
    /// Records left out by the bound on records per report.
    pub truncated: usize,
}

/// The report id for `reporter` and `claim`: the first 128 bits of
/// SHA-256(`reporter` ‖ 0 ‖ `claim`), hex.
pub fn report_id(reporter: &str, claim: &str) -> String {
    let mut b = reporter.as_bytes().to_vec();
    b.push(0);
    b.extend_from_slice(claim.as_bytes());
    let d = ring::digest::digest(&ring::digest::SHA256, &b);
    d.as_ref()[..16]
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// What a plan reads besides the audit's report.
pub struct Context<'a> {
    /// The process records (log and open sockets).
    pub procs: &'a ProcMap,
    /// Names of addresses from the history's DNS answers.
    pub names: &'a HashMap<IpAddr, String>,
    /// Whether (address, port) at a time is a claim's victim or reflector.
    pub in_claim: &'a dyn Fn(IpAddr, u16, u64) -> bool,
    /// How far around a claim's window other connections are taken, ns.
    pub around_ns: u64,
    /// Records per report.
    pub max_records: usize,
}

/// The reports for every claim `report` matched. `claims` are the audit's claims (indexes
/// as in the report).
pub fn plan(reporter: &str, claims: &[Claim], report: &Report, cx: &Context<'_>) -> Vec<Planned> {
    let (procs, max_records) = (cx.procs, cx.max_records);
    let mut out = Vec::new();
    for m in &report.matches {
        let c = &claims[m.claim];
        let attack = flow_owners(procs, &m.evidence, None);
        let attackers: BTreeSet<String> = attack
            .iter()
            .filter_map(|f| f.process.clone().map(|p| p.0))
            .collect();
        let attack_unattributed = attack.iter().filter(|f| f.process.is_none()).count();
        let attacked_port = c.port.or_else(|| {
            let f = m.evidence.flows.first()?.0;
            Some(if m.kinds.contains_key("direct") {
                f.dst.port()
            } else {
                f.src.port()
            })
        });
        let mut recs: BTreeMap<(String, IpAddr, u16, String), ReportRecord> = BTreeMap::new();
        let mut findings_unattributed = 0;
        let mut suspicious: BTreeSet<(String, Option<u32>)> = BTreeSet::new();
        for f in report
            .findings
            .iter()
            .filter(|f| f.near_claims.contains(&m.claim))
        {
            for o in flow_owners(procs, &f.evidence, Some(f.peer)) {
                let Some((process, pid)) = o.process else {
                    findings_unattributed += 1;
                    continue;
                };
                suspicious.insert((process.clone(), pid));
                let proto = proto_name(o.flow.proto);
                let key = (proto.clone(), f.peer.ip(), f.peer.port(), process.clone());
                let r = recs.entry(key).or_insert_with(|| ReportRecord {
                    time_ns: o.first_ns,
                    proto,
                    dst: f.peer.ip(),
                    port: f.peer.port(),
                    fqdn: f.fqdn.clone(),
                    process: Some(process),
                    features: Vec::new(),
                });
                r.time_ns = r.time_ns.min(o.first_ns);
                let name = f.feature.name().to_string();
                if !r.features.contains(&name) {
                    r.features.push(name);
                    r.features.sort();
                }
            }
        }
        // The suspicious processes' other connections around the claim.
        let (lo, hi) = (
            c.from_ns.saturating_sub(cx.around_ns),
            c.to_ns.saturating_add(cx.around_ns),
        );
        for (proto, _local, remote, rec) in procs.connections() {
            let who = (rec.process.clone(), rec.pid);
            if !suspicious.contains(&who)
                || rec.to_ns() < lo
                || rec.from_ns() > hi
                || (cx.in_claim)(remote.ip(), remote.port(), rec.from_ns().max(c.from_ns))
            {
                continue;
            }
            let name = proto_name(proto);
            let key = (
                name.clone(),
                remote.ip(),
                remote.port(),
                rec.process.clone(),
            );
            recs.entry(key).or_insert_with(|| ReportRecord {
                time_ns: rec.from_ns().max(lo),
                proto: name,
                dst: remote.ip(),
                port: remote.port(),
                fqdn: cx.names.get(&remote.ip()).cloned(),
                process: Some(rec.process.clone()),
                features: Vec::new(),
            });
        }
        let mut records: Vec<ReportRecord> = recs.into_values().collect();
        records.sort_by_key(|a| (a.time_ns, a.dst, a.port));
        let truncated = records.len().saturating_sub(max_records);
        records.truncate(max_records);
        out.push(Planned {
            claim_id: c.id.clone(),
            window: (c.from_ns, c.to_ns),
            report_id: report_id(reporter, &c.id),
            report: BotReport {
                reporter: reporter.to_string(),
                incident: c.id.clone(),
                attack_packets: m.evidence.packets,
                attacked_port,
                records,
            },
            kinds: m.kinds.clone(),
            attackers,
            attack_unattributed,
            findings_unattributed,
            truncated,
        });
    }
    out
}

/// What the user is told about one match, and exactly what would be sent.
pub fn consent_text(p: &Planned, center: &str) -> String {
    let mut t = String::new();
    let kinds: Vec<String> = p.kinds.iter().map(|(k, v)| format!("{k} {v}")).collect();
    t.push_str(&format!(
        "This host took part in attack {} ({} .. {}): it sent {} matching packets ({}).\n",
        p.claim_id,
        rfc3339(p.window.0),
        rfc3339(p.window.1),
        p.report.attack_packets,
        kinds.join(", ")
    ));
    let who: Vec<&str> = p.attackers.iter().map(String::as_str).collect();
    t.push_str(&format!(
        "  sent by: {}{}\n",
        if who.is_empty() {
            "no attributed process".to_string()
        } else {
            who.join(", ")
        },
        if p.attack_unattributed > 0 {
            format!(" ({} flows unattributed)", p.attack_unattributed)
        } else {
            String::new()
        }
    ));
    if p.report.records.is_empty() {
        t.push_str(&format!(
            "Report {} to {center} would say only that: {} attack packets, no process records (no process showed a feature around the attack).\n",
            p.report_id, p.report.attack_packets
        ));
    } else {
        t.push_str(&format!(
            "Report {} to {center} would send these {} records (no packet contents):\n",
            p.report_id,
            p.report.records.len()
        ));
        for r in &p.report.records {
            t.push_str(&format!(
                "  {}  {} {}:{}  fqdn {}  process {}  features {}\n",
                rfc3339(r.time_ns),
                r.proto,
                r.dst,
                r.port,
                r.fqdn.as_deref().unwrap_or("-"),
                r.process.as_deref().unwrap_or("-"),
                r.features.join(",")
            ));
        }
    }
    if p.findings_unattributed > 0 {
        t.push_str(&format!(
            "  {} suspicious flows had no process record and are not sent.\n",
            p.findings_unattributed
        ));
    }
    if p.truncated > 0 {
        t.push_str(&format!(
            "  {} more records left out (the bound on records per report).\n",
            p.truncated
        ));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use ashiato_hosttrace::claim::parse_claims;
    use ashiato_hosttrace::{Audit, AuditConfig, FramePos};
    use ashiato_wire::LinkType;

    /// An IPv4 TCP packet (no checksum needed by the parser) with payload.
    fn tcp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, flags: u8, pl: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; 40];
        p[0] = 0x45;
        let len = (40 + pl.len()) as u16;
        p[2..4].copy_from_slice(&len.to_be_bytes());
        p[8] = 64;
        p[9] = 6;
        p[12..16].copy_from_slice(&src);
        p[16..20].copy_from_slice(&dst);
        p[20..22].copy_from_slice(&sport.to_be_bytes());
        p[22..24].copy_from_slice(&dport.to_be_bytes());
        p[32] = 0x50;
        p[33] = flags;
        p.extend_from_slice(pl);
        p
    }

    const T: u64 = 1_767_261_600_000_000_000; // 2026-01-01T10:00:00Z

    #[test]
    fn only_the_process_with_findings_is_reported_and_the_text_lists_every_record() {
        let claims = parse_claims(
            r#"{"id":"c1","victim":"203.0.113.5","protocol":"tcp","port":80,"from":"2026-01-01T10:00:00Z","to":"2026-01-01T10:05:00Z"}"#,
        )
        .unwrap();
        let mut a = Audit::new(claims, AuditConfig::default());
        let me = [10, 0, 0, 2];
        let frames = [
            // The bot joins its C&C on 6667 ...
            tcp(me, 40000, [198, 51, 100, 1], 6667, 0x02, b""),
            tcp(
                me,
                40000,
                [198, 51, 100, 1],
                6667,
                0x18,
                b"NICK bot1\r\nJOIN #cc\r\n",
            ),
            // ... and floods the victim; a browser fetches a page from the same server.
            tcp(me, 40001, [203, 0, 113, 5], 80, 0x02, b""),
            tcp(me, 40001, [203, 0, 113, 5], 80, 0x02, b""),
            tcp(me, 50000, [203, 0, 113, 5], 80, 0x02, b""),
            tcp(me, 50001, [192, 0, 2, 9], 443, 0x02, b""),
            // The bot's check-in over HTTP shows no feature.
            tcp(me, 40002, [198, 51, 100, 7], 80, 0x02, b""),
        ];
        for (i, f) in frames.iter().enumerate() {
            let pos = FramePos {
                file: 0,
                frame: i as u64 + 1,
            };
            a.frame(pos, T + i as u64 * 1000, LinkType::Raw, f.len() as u32, f);
        }
        let claims = a.claims().to_vec();
        let report = a.finish();
        let procs = ProcMap::parse(concat!(
            r#"{"proto":"tcp","local":"10.0.0.2:40000","remote":"198.51.100.1:6667","pid":7,"process":"bot"}"#,
            "\n",
            r#"{"proto":"tcp","local":"10.0.0.2:40001","remote":"203.0.113.5:80","pid":7,"process":"bot"}"#,
            "\n",
            r#"{"proto":"tcp","local":"10.0.0.2:50000","remote":"203.0.113.5:80","pid":9,"process":"firefox"}"#,
            "\n",
            r#"{"proto":"tcp","local":"10.0.0.2:40002","remote":"198.51.100.7:80","pid":7,"process":"bot"}"#,
            "\n",
            r#"{"proto":"tcp","local":"10.0.0.2:50001","remote":"192.0.2.9:443","pid":9,"process":"firefox"}"#,
            "\n",
            // Another process that happens to be called bot: not the one with the finding.
            r#"{"proto":"tcp","local":"10.0.0.2:40009","remote":"192.0.2.10:443","pid":99,"process":"bot"}"#,
            "\n",
        ))
        .unwrap();
        let names: HashMap<IpAddr, String> =
            [("198.51.100.7".parse().unwrap(), "cc.example".to_string())].into();
        let victim: IpAddr = "203.0.113.5".parse().unwrap();
        let in_claim = move |a: IpAddr, _p: u16, _t: u64| a == victim;
        let cx = |max_records| Context {
            procs: &procs,
            names: &names,
            in_claim: &in_claim,
            around_ns: 3600 * 1_000_000_000,
            max_records,
        };
        let p = plan("host-1", &claims, &report, &cx(1000));
        assert_eq!(p.len(), 1);
        let p = &p[0];
        assert_eq!(p.report.attack_packets, 3);
        assert_eq!(p.report.attacked_port, Some(80));
        // The IRC server with its feature, and the bot's check-in without one; not the
        // victim (the bot's flood), not the browser's site, not another pid named bot.
        assert_eq!(p.report.records.len(), 2, "{:?}", p.report.records);
        let rec = |dst: &str| {
            p.report
                .records
                .iter()
                .find(|r| r.dst.to_string() == dst)
                .unwrap()
        };
        let r = rec("198.51.100.1");
        assert_eq!((r.port, r.process.as_deref()), (6667, Some("bot")));
        assert_eq!(r.features, ["irc"]);
        let r = rec("198.51.100.7");
        assert_eq!(r.fqdn.as_deref(), Some("cc.example"));
        assert!(r.features.is_empty());
        assert_eq!(p.attackers.iter().collect::<Vec<_>>(), ["bot", "firefox"]);
        assert_eq!(p.report_id, report_id("host-1", "c1"));
        assert_ne!(p.report_id, report_id("host-2", "c1"));
        assert_eq!(p.report_id.len(), 32);
        let t = consent_text(p, "center:8443");
        assert!(t.contains("attack c1"), "{t}");
        assert!(
            t.contains("tcp 198.51.100.1:6667  fqdn -  process bot  features irc"),
            "{t}"
        );
        assert!(!t.contains("NICK"), "{t}");
        assert!(!t.contains("192.0.2.9"), "{t}");
        assert!(!t.contains("192.0.2.10"), "{t}");
        // Bounded: with room for no records, the cut is said.
        let p0 = &plan("host-1", &claims, &report, &cx(0))[0];
        assert_eq!(p0.truncated, 2);
        assert!(consent_text(p0, "c").contains("no process records"));
    }
}
