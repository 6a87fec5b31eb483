//! Host-tracing records (schema version 3, BRIEF §4): the claims a center accepted, and the
//! bot reports with their records. Only what the ranking needs is kept: never packet
//! contents, and of a claim's IDS evidence only a count and a short summary.

use std::net::IpAddr;

use crate::error::StoreError;
use crate::model::{
    MAX_LABEL_LEN, MAX_TEXT_LEN, check_count, check_id, check_one_of, check_text, to_db_i64,
};

/// Claim protocols, as the center's claims name them.
pub const HOST_CLAIM_PROTOCOLS: &[&str] = &["tcp", "udp", "icmp", "any"];
/// Reflectors one claim may list.
pub const MAX_REFLECTORS: usize = 4096;
/// Records one bot report may hold.
pub const MAX_BOT_RECORDS: usize = 10_000;
/// Features one record may name.
pub const MAX_FEATURES: usize = 16;

/// A claim the center accepted and published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostClaim {
    /// The claim's id (the incident the bots report against).
    pub id: String,
    /// The incident it belongs to, if any (must be stored first).
    pub incident_id: Option<String>,
    /// The reporter's certificate name.
    pub reporter: String,
    /// When the center accepted it, ns since the Unix epoch.
    pub received_ns: u64,
    /// Its position in the published list (from 1; unique).
    pub list_version: u64,
    /// The attacked address.
    pub victim: IpAddr,
    /// The victim's name, informational.
    pub fqdn: Option<String>,
    /// `tcp`, `udp`, `icmp` or `any`.
    pub protocol: String,
    /// The attacked port, if the claim names one.
    pub port: Option<u16>,
    /// Window start, ns.
    pub from_ns: u64,
    /// Window end, ns.
    pub to_ns: u64,
    /// Reflection/Smurf: the bots' destinations.
    pub reflectors: Vec<IpAddr>,
    /// IDS records that came with it.
    pub evidence_count: u32,
    /// What the evidence showed (signatures, times), at most [`MAX_TEXT_LEN`] bytes.
    pub evidence_summary: String,
}

impl HostClaim {
    /// Checks every bound; [`crate::Store::put_host_claim`] calls it first.
    pub fn validate(&self) -> Result<(), StoreError> {
        check_id("host claim id", &self.id)?;
        if let Some(i) = &self.incident_id {
            check_id("incident id", i)?;
        }
        check_id("host claim reporter", &self.reporter)?;
        to_db_i64("host claim received_ns", self.received_ns)?;
        if self.list_version == 0 {
            return Err(StoreError::Invalid(
                "host claim list_version counts from 1".into(),
            ));
        }
        to_db_i64("host claim list_version", self.list_version)?;
        if let Some(f) = &self.fqdn {
            check_text("host claim fqdn", f, MAX_LABEL_LEN)?;
        }
        check_one_of("host claim protocol", &self.protocol, HOST_CLAIM_PROTOCOLS)?;
        to_db_i64("host claim to_ns", self.to_ns)?;
        if self.from_ns > self.to_ns {
            return Err(StoreError::Invalid(format!(
                "host claim {}: window starts ({}) after it ends ({})",
                self.id, self.from_ns, self.to_ns
            )));
        }
        check_count("reflectors", self.reflectors.len(), MAX_REFLECTORS)?;
        check_text(
            "host claim evidence summary",
            &self.evidence_summary,
            MAX_TEXT_LEN,
        )
    }
}

/// One record of a bot report: a suspicious process's contact with a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotRecordRow {
    /// Time of the first packet, ns.
    pub time_ns: u64,
    /// `tcp`, `udp`, ...
    pub proto: String,
    /// The destination address.
    pub dst: IpAddr,
    /// The destination port.
    pub port: u16,
    /// The destination's name from the host's DNS answers.
    pub fqdn: Option<String>,
    /// The process.
    pub process: Option<String>,
    /// Features (`irc`, `http-exe`, ...); no commas inside one.
    pub features: Vec<String>,
}

/// A bot report as the center accepted it. `(reporter, report_id)` is its key: the database
/// refuses the same pair twice ([`StoreError::Duplicate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotReportRow {
    /// The reporting host's certificate name.
    pub reporter: String,
    /// The id the host chose.
    pub report_id: String,
    /// The claim it matched (must be stored).
    pub claim_id: String,
    /// The incident, if any (must be stored).
    pub incident_id: Option<String>,
    /// When the center accepted it, ns.
    pub received_ns: u64,
    /// Attack packets the host sent inside the claim window.
    pub attack_packets: u64,
    /// The claim's attacked port.
    pub attacked_port: Option<u16>,
    /// The records, in the order the host sent them.
    pub records: Vec<BotRecordRow>,
}

impl BotReportRow {
    /// Checks every bound; [`crate::Store::put_bot_report`] calls it first.
    pub fn validate(&self) -> Result<(), StoreError> {
        check_id("bot report reporter", &self.reporter)?;
        check_id("bot report id", &self.report_id)?;
        check_id("bot report claim id", &self.claim_id)?;
        if let Some(i) = &self.incident_id {
            check_id("incident id", i)?;
        }
        to_db_i64("bot report received_ns", self.received_ns)?;
        to_db_i64("bot report attack_packets", self.attack_packets)?;
        check_count("bot report records", self.records.len(), MAX_BOT_RECORDS)?;
        for (i, r) in self.records.iter().enumerate() {
            to_db_i64("bot record time_ns", r.time_ns)?;
            check_text(&format!("bot record {i} proto"), &r.proto, 16)?;
            for (what, v) in [("fqdn", &r.fqdn), ("process", &r.process)] {
                if let Some(v) = v {
                    check_text(&format!("bot record {i} {what}"), v, MAX_LABEL_LEN)?;
                }
            }
            check_count("features of one record", r.features.len(), MAX_FEATURES)?;
            for f in &r.features {
                if f.is_empty() || f.contains(',') {
                    return Err(StoreError::Invalid(format!(
                        "bot record {i} feature {:?}: features are non-empty and hold no comma",
                        f.escape_debug().to_string()
                    )));
                }
                check_text(&format!("bot record {i} feature"), f, 64)?;
            }
        }
        Ok(())
    }
}

/// Addresses as stored: comma-separated, in order.
pub(crate) fn addrs_to_text(a: &[IpAddr]) -> String {
    a.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// The inverse of [`addrs_to_text`]; `None` for text no version wrote.
pub(crate) fn addrs_from_text(s: &str) -> Option<Vec<IpAddr>> {
    if s.is_empty() {
        return Some(Vec::new());
    }
    s.split(',').map(|x| x.parse().ok()).collect()
}
