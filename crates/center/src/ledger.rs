//! What the center knows, in memory, and how it maps onto the store's rows: the accepted
//! claims (in list order) and the bot reports. The service keeps one [`Ledger`] and writes
//! every change to the store first; at start, and for the offline export, [`Ledger::load`]
//! rebuilds it from the store alone.

use std::collections::{HashMap, HashSet};

use ashiato_hosttrace::claim::{Claim, Protocol};
use ashiato_hosttrace::rank::{BotReport, Popularity, ReportRecord};
use ashiato_store::{BotRecordRow, BotReportRow, HostClaim, Store, StoreError};

use crate::CenterError;

/// Rows read per store call while loading.
const PAGE: u32 = 1000;

/// A claim as the center accepted it.
#[derive(Clone, Debug)]
pub struct Accepted {
    /// The claim.
    pub claim: Claim,
    /// Who filed it and when, its version, its name and evidence summary.
    pub row: HostClaim,
}

/// Claims and reports.
#[derive(Default)]
pub struct Ledger {
    /// Accepted claims in list order (index = version − 1).
    pub claims: Vec<Accepted>,
    /// Claim id → index in `claims`.
    pub by_id: HashMap<String, usize>,
    /// Bot reports in the order they were accepted.
    pub reports: Vec<BotReport>,
    /// (reporter, report id) of every accepted report.
    pub report_ids: HashSet<(String, String)>,
    /// Servers per incident, for the ranking's popularity factor.
    pub popularity: Popularity,
}

impl Ledger {
    /// Adds an accepted claim; its version must be the next one.
    pub fn add_claim(&mut self, a: Accepted) -> Result<(), CenterError> {
        let want = self.claims.len() as u64 + 1;
        if a.row.list_version != want {
            return Err(CenterError::Reload(format!(
                "claim {} has list version {}, expected {want}: the stored list has a gap",
                a.row.id, a.row.list_version
            )));
        }
        self.by_id.insert(a.claim.id.clone(), self.claims.len());
        self.claims.push(a);
        Ok(())
    }

    /// Adds an accepted report.
    pub fn add_report(&mut self, report_id: String, r: BotReport) {
        self.report_ids.insert((r.reporter.clone(), report_id));
        self.popularity.add(&r);
        self.reports.push(r);
    }

    /// Reads everything back from the store: claims in version order, reports in the order
    /// they were received.
    pub async fn load(store: &Store) -> Result<Ledger, CenterError> {
        let mut l = Ledger::default();
        loop {
            let page = store
                .host_claims(l.claims.len() as u64, PAGE)
                .await
                .map_err(CenterError::Store)?;
            if page.is_empty() {
                break;
            }
            for row in page {
                l.add_claim(Accepted {
                    claim: claim_of(&row)?,
                    row,
                })?;
            }
        }
        let mut cursor: Option<(u64, String, String)> = None;
        loop {
            let after = cursor
                .as_ref()
                .map(|(t, r, i)| (*t, r.as_str(), i.as_str()));
            let page = store
                .bot_reports(None, after, PAGE)
                .await
                .map_err(CenterError::Store)?;
            let Some(last) = page.last() else { break };
            cursor = Some((
                last.received_ns,
                last.reporter.clone(),
                last.report_id.clone(),
            ));
            for row in page {
                if !l.by_id.contains_key(&row.claim_id) {
                    return Err(CenterError::Reload(format!(
                        "report {} of {} names claim {}, which is not stored",
                        row.report_id, row.reporter, row.claim_id
                    )));
                }
                let id = row.report_id.clone();
                l.add_report(id, report_of(row));
            }
        }
        Ok(l)
    }
}

/// The store's name of a protocol.
pub fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Icmp => "icmp",
        Protocol::Any => "any",
    }
}

fn claim_of(row: &HostClaim) -> Result<Claim, CenterError> {
    let protocol = match row.protocol.as_str() {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        "icmp" => Protocol::Icmp,
        "any" => Protocol::Any,
        other => {
            return Err(CenterError::Reload(format!(
                "claim {}: protocol {other:?}",
                row.id
            )));
        }
    };
    Ok(Claim {
        id: row.id.clone(),
        victim: row.victim,
        protocol,
        port: row.port,
        from_ns: row.from_ns,
        to_ns: row.to_ns,
        reflectors: row.reflectors.clone(),
    })
}

/// A stored report as the ranking reads it.
pub fn report_of(row: BotReportRow) -> BotReport {
    BotReport {
        reporter: row.reporter,
        incident: row.claim_id,
        attack_packets: row.attack_packets,
        attacked_port: row.attacked_port,
        records: row
            .records
            .into_iter()
            .map(|x| ReportRecord {
                time_ns: x.time_ns,
                proto: x.proto,
                dst: x.dst,
                port: x.port,
                fqdn: x.fqdn,
                process: x.process,
                features: x.features,
            })
            .collect(),
    }
}

/// A report as the store keeps it.
pub fn row_of(report_id: &str, received_ns: u64, r: &BotReport) -> BotReportRow {
    BotReportRow {
        reporter: r.reporter.clone(),
        report_id: report_id.to_string(),
        claim_id: r.incident.clone(),
        incident_id: None,
        received_ns,
        attack_packets: r.attack_packets,
        attacked_port: r.attacked_port,
        records: r
            .records
            .iter()
            .map(|x| BotRecordRow {
                time_ns: x.time_ns,
                proto: x.proto.clone(),
                dst: x.dst,
                port: x.port,
                fqdn: x.fqdn.clone(),
                process: x.process.clone(),
                features: x.features.clone(),
            })
            .collect(),
    }
}

/// What the evidence of a claim showed, for the store: how many records, the alert
/// signatures (at most ten) and the first and last alert time as the IDS wrote them.
pub fn evidence_summary(evidence: &[serde_json::Value]) -> String {
    let s = |e: &serde_json::Value, k: &str| e.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    let mut sigs: Vec<String> = Vec::new();
    let mut times: Vec<String> = Vec::new();
    for e in evidence {
        if let Some(t) = s(e, "timestamp") {
            times.push(t.chars().take(40).collect());
        }
        let sig = e
            .get("alert")
            .and_then(|a| a.get("signature"))
            .and_then(|v| v.as_str());
        if let Some(sig) = sig {
            let sig: String = sig.chars().take(120).collect();
            if sigs.len() < 10 && !sigs.contains(&sig) {
                sigs.push(sig);
            }
        }
    }
    times.sort();
    let mut out = format!("{} EVE records", evidence.len());
    if let (Some(a), Some(b)) = (times.first(), times.last()) {
        out.push_str(&format!(", {a} to {b}"));
    }
    if !sigs.is_empty() {
        out.push_str(&format!(", signatures: {}", sigs.join("; ")));
    }
    out
}

/// An operator-facing reason for a store failure, without the database's name.
pub fn store_reason(e: &StoreError) -> &'static str {
    match e {
        StoreError::DiskFull { .. } => "the center's database disk is full",
        StoreError::Unavailable { .. } => "the center's database is unavailable",
        StoreError::Invalid(_) => "the record breaks a storage bound",
        StoreError::Duplicate { .. } => "stored already",
        _ => "the center's database failed",
    }
}

/// Claims per reporter accepted in the hour containing `now_ns`, to restore the rate bound.
pub fn claims_this_hour(l: &Ledger, now_ns: u64) -> HashMap<String, (u64, u32)> {
    let hour = now_ns / 3_600_000_000_000;
    let mut m: HashMap<String, (u64, u32)> = HashMap::new();
    for a in &l.claims {
        if a.row.received_ns / 3_600_000_000_000 == hour {
            m.entry(a.row.reporter.clone()).or_insert((hour, 0)).1 += 1;
        }
    }
    m
}
