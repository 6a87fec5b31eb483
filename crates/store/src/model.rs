//! The records the store keeps, and the bounds every record must meet before it reaches a
//! database.
//!
//! Validation happens here, before any connection is taken, so a refused record never leaves
//! half a write behind and an operator gets a message naming the field that was wrong.

use crate::error::StoreError;

/// The most observations one trace may carry.
pub const MAX_OBSERVATIONS: usize = 1_000_000;
/// The most origin rows one trace may carry.
pub const MAX_ORIGINS: usize = 100_000;
/// The most gap rows one trace may carry.
pub const MAX_GAPS: usize = 100_000;
/// The most domains one gap may list behind its last answering domain.
pub const MAX_BEHIND: usize = 10_000;
/// The longest id, in bytes.
pub const MAX_ID_LEN: usize = 128;
/// The longest short label (probe name, watched link, incident source), in bytes.
pub const MAX_LABEL_LEN: usize = 256;
/// The longest free text (a reason, an incident summary), in bytes.
pub const MAX_TEXT_LEN: usize = 4 * 1024;
/// The largest attack graph JSON, in bytes.
pub const MAX_GRAPH_JSON_LEN: usize = 64 * 1024 * 1024;
/// The most summaries one [`TraceFilter`] may ask for.
pub const MAX_LIMIT: u32 = 10_000;

/// Where an incident came from.
pub const INCIDENT_SOURCES: &[&str] = &["cli", "eve", "darkflow", "peer", "lab"];
/// How a trace asked the other domains.
pub const TRACE_MODES: &[&str] = &["recursive", "mesh"];
/// How a trace ended.
pub const TRACE_STATUSES: &[&str] = &["complete", "partial", "failed"];
/// What a probe answered about one packet.
pub const VERDICTS: &[&str] = &["seen", "not_seen", "unknown", "unreachable"];

/// One attack as an operator sees it: the reason one or more traces ran.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    /// Printable ASCII without spaces, at most [`MAX_ID_LEN`] bytes.
    pub id: String,
    /// When the incident was opened, nanoseconds since the Unix epoch.
    pub created_ns: u64,
    /// The attacked domain (AS number).
    pub victim_domain: u32,
    /// What raised it: one of [`INCIDENT_SOURCES`].
    pub source: String,
    /// A human summary, at most [`MAX_TEXT_LEN`] bytes.
    pub summary: String,
}

/// The result of one traceback: its row, what every probe answered, where the packets came
/// from and where the trail was lost.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceRecord {
    /// Printable ASCII without spaces, at most [`MAX_ID_LEN`] bytes.
    pub id: String,
    /// The incident this trace belongs to; the incident must be stored first.
    pub incident_id: Option<String>,
    /// The domain whose controller ran the trace.
    pub initiator_domain: u32,
    /// The attacked domain.
    pub victim_domain: u32,
    /// One of [`TRACE_MODES`].
    pub mode: String,
    /// When the trace started, nanoseconds since the Unix epoch.
    pub started_ns: u64,
    /// How long it ran, microseconds.
    pub duration_us: u64,
    /// How many attack packets it followed.
    pub packets: u32,
    /// One of [`TRACE_STATUSES`].
    pub status: String,
    /// The whole attack graph as JSON; the store keeps it as text and never parses it.
    pub graph_json: String,
    /// Every answer of every probe asked, in the order given.
    pub observations: Vec<ObservationRow>,
    /// Per origin domain, how many of the packets started there.
    pub origins: Vec<OriginRow>,
    /// Where the trail was lost.
    pub gaps: Vec<GapRow>,
}

/// One probe's answer about one packet.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservationRow {
    /// The domain the probe belongs to.
    pub domain: u32,
    /// The packet's index within the trace.
    pub packet: u32,
    /// The probe's name.
    pub probe: String,
    /// What the probe watches: `link:AS64501` or `edge`.
    pub watches: String,
    /// One of [`VERDICTS`].
    pub verdict: String,
    /// Start of the digest-table epoch that answered, nanoseconds since the Unix epoch.
    pub epoch_start_ns: Option<u64>,
    /// End of that epoch.
    pub epoch_end_ns: Option<u64>,
    /// The table's false-positive rate at the time, in [0, 1].
    pub fpr: Option<f64>,
    /// Why the answer is not a plain yes or no, at most [`MAX_TEXT_LEN`] bytes.
    pub reason: Option<String>,
}

/// Packets traced back to one origin domain.
#[derive(Debug, Clone, PartialEq)]
pub struct OriginRow {
    /// The origin domain.
    pub domain: u32,
    /// How many packets started there.
    pub packets: u32,
}

/// A place where the trail was lost: the last domain that saw the packets, and the
/// neighbours behind it that could not be asked.
#[derive(Debug, Clone, PartialEq)]
pub struct GapRow {
    /// The last domain that saw the packets.
    pub last_domain: u32,
    /// The domains behind it that did not answer (at most [`MAX_BEHIND`]).
    pub behind: Vec<u32>,
    /// How many packets were lost there.
    pub packets: u32,
    /// Why, at most [`MAX_TEXT_LEN`] bytes.
    pub reason: String,
}

/// Which traces [`crate::Store::traces`] lists.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceFilter {
    /// Only the traces of this incident.
    pub incident_id: Option<String>,
    /// Only traces started at or after this time, nanoseconds since the Unix epoch.
    pub since_ns: Option<u64>,
    /// At most this many, 1 to [`MAX_LIMIT`].
    pub limit: u32,
}

impl Default for TraceFilter {
    fn default() -> Self {
        TraceFilter {
            incident_id: None,
            since_ns: None,
            limit: 100,
        }
    }
}

/// One line of a trace listing: the trace row without its details.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSummary {
    /// The trace id.
    pub id: String,
    /// Its incident, if any.
    pub incident_id: Option<String>,
    /// The attacked domain.
    pub victim_domain: u32,
    /// `recursive` or `mesh`.
    pub mode: String,
    /// When it started, nanoseconds since the Unix epoch.
    pub started_ns: u64,
    /// How long it ran, microseconds.
    pub duration_us: u64,
    /// How many packets it followed.
    pub packets: u32,
    /// `complete`, `partial` or `failed`.
    pub status: String,
    /// How many origin domains it found.
    pub origins: u32,
}

/// One origin domain of an incident, summed over all its traces: a branch of the DDoS
/// attack tree.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentOrigin {
    /// The origin domain.
    pub domain: u32,
    /// Packets traced to it, over all traces of the incident (a sum of `u32`s, so `u64`).
    pub packets: u64,
    /// How many traces found it.
    pub traces: u32,
}

/// Checks an id: 1 to [`MAX_ID_LEN`] bytes of printable ASCII without spaces.
pub fn check_id(what: &str, id: &str) -> Result<(), StoreError> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(StoreError::Invalid(format!(
            "{what} must be 1 to {MAX_ID_LEN} bytes long, got {} bytes",
            id.len()
        )));
    }
    if let Some(b) = id.bytes().find(|b| !(0x21..=0x7e).contains(b)) {
        return Err(StoreError::Invalid(format!(
            "{what} {:?} holds byte 0x{b:02x}: ids are printable ASCII without spaces",
            id.escape_debug().to_string()
        )));
    }
    Ok(())
}

pub(crate) fn check_text(what: &str, s: &str, max: usize) -> Result<(), StoreError> {
    if s.len() > max {
        return Err(StoreError::Invalid(format!(
            "{what} is {} bytes long, the limit is {max}",
            s.len()
        )));
    }
    // PostgreSQL refuses NUL in text; refuse it on both backends so they store the same.
    if s.contains('\0') {
        return Err(StoreError::Invalid(format!(
            "{what} contains a NUL character"
        )));
    }
    Ok(())
}

pub(crate) fn check_one_of(what: &str, s: &str, allowed: &[&str]) -> Result<(), StoreError> {
    if allowed.contains(&s) {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "{what} {:?} is not one of {}",
            s.escape_debug().to_string(),
            allowed.join(", ")
        )))
    }
}

pub(crate) fn check_count(what: &str, n: usize, max: usize) -> Result<(), StoreError> {
    if n > max {
        return Err(StoreError::Invalid(format!(
            "{n} {what}: the limit is {max}"
        )));
    }
    Ok(())
}

/// Converts a time or duration to the `BIGINT` the database keeps.
pub fn to_db_i64(what: &str, v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| {
        StoreError::Invalid(format!(
            "{what} = {v} is past {} (year 2262 in nanoseconds): the store keeps signed 64-bit values",
            i64::MAX
        ))
    })
}

impl Incident {
    /// Checks every bound; [`crate::Store::put_incident`] calls it first.
    pub fn validate(&self) -> Result<(), StoreError> {
        check_id("incident id", &self.id)?;
        to_db_i64("incident created_ns", self.created_ns)?;
        check_one_of("incident source", &self.source, INCIDENT_SOURCES)?;
        check_text("incident summary", &self.summary, MAX_TEXT_LEN)
    }
}

impl TraceRecord {
    /// Checks every bound; [`crate::Store::put_trace`] calls it first.
    pub fn validate(&self) -> Result<(), StoreError> {
        check_id("trace id", &self.id)?;
        if let Some(inc) = &self.incident_id {
            check_id("trace incident_id", inc)?;
        }
        check_one_of("trace mode", &self.mode, TRACE_MODES)?;
        check_one_of("trace status", &self.status, TRACE_STATUSES)?;
        to_db_i64("trace started_ns", self.started_ns)?;
        to_db_i64("trace duration_us", self.duration_us)?;
        check_text("trace graph_json", &self.graph_json, MAX_GRAPH_JSON_LEN)?;
        check_count("observations", self.observations.len(), MAX_OBSERVATIONS)?;
        check_count("origins", self.origins.len(), MAX_ORIGINS)?;
        check_count("gaps", self.gaps.len(), MAX_GAPS)?;
        for (i, o) in self.observations.iter().enumerate() {
            o.validate().map_err(|e| match e {
                StoreError::Invalid(m) => StoreError::Invalid(format!("observation {i}: {m}")),
                other => other,
            })?;
        }
        for (i, g) in self.gaps.iter().enumerate() {
            check_count(
                &format!("domains behind gap {i}"),
                g.behind.len(),
                MAX_BEHIND,
            )?;
            check_text(&format!("gap {i} reason"), &g.reason, MAX_TEXT_LEN)?;
        }
        Ok(())
    }
}

impl ObservationRow {
    fn validate(&self) -> Result<(), StoreError> {
        check_text("probe", &self.probe, MAX_LABEL_LEN)?;
        check_text("watches", &self.watches, MAX_LABEL_LEN)?;
        check_one_of("verdict", &self.verdict, VERDICTS)?;
        if let Some(t) = self.epoch_start_ns {
            to_db_i64("epoch_start_ns", t)?;
        }
        if let Some(t) = self.epoch_end_ns {
            to_db_i64("epoch_end_ns", t)?;
        }
        if let (Some(a), Some(b)) = (self.epoch_start_ns, self.epoch_end_ns)
            && a > b
        {
            return Err(StoreError::Invalid(format!(
                "epoch_start_ns {a} is after epoch_end_ns {b}"
            )));
        }
        if let Some(f) = self.fpr
            && !(0.0..=1.0).contains(&f)
        {
            return Err(StoreError::Invalid(format!(
                "fpr {f} is not a rate in [0, 1]"
            )));
        }
        if let Some(r) = &self.reason {
            check_text("reason", r, MAX_TEXT_LEN)?;
        }
        Ok(())
    }
}

/// Writes a gap's `behind` list as the text the database keeps: decimal AS numbers joined by
/// commas (portable, unlike a PostgreSQL array).
pub(crate) fn behind_to_text(behind: &[u32]) -> String {
    let mut s = String::with_capacity(behind.len() * 6);
    for (i, d) in behind.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&d.to_string());
    }
    s
}

/// Reads a `behind` list back; `None` if the text is not such a list.
pub(crate) fn behind_from_text(s: &str) -> Option<Vec<u32>> {
    if s.is_empty() {
        return Some(Vec::new());
    }
    s.split(',').map(|d| d.parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_printable_ascii_within_bounds() {
        assert!(check_id("id", "t-1:a/b").is_ok());
        assert!(check_id("id", "").is_err());
        assert!(check_id("id", "a b").is_err());
        assert!(check_id("id", "é").is_err());
        assert!(check_id("id", &"x".repeat(MAX_ID_LEN)).is_ok());
        assert!(check_id("id", &"x".repeat(MAX_ID_LEN + 1)).is_err());
    }

    #[test]
    fn times_past_i64_are_refused() {
        assert_eq!(to_db_i64("t", i64::MAX as u64).unwrap(), i64::MAX);
        let e = to_db_i64("t", i64::MAX as u64 + 1).unwrap_err();
        assert!(e.to_string().contains("past"), "{e}");
    }

    #[test]
    fn records_past_their_bounds_are_refused() {
        let mut t = TraceRecord {
            id: "t".into(),
            incident_id: None,
            initiator_domain: 1,
            victim_domain: 1,
            mode: "mesh".into(),
            started_ns: 0,
            duration_us: 0,
            packets: 0,
            status: "complete".into(),
            graph_json: "x".repeat(MAX_GRAPH_JSON_LEN),
            observations: vec![],
            origins: vec![],
            gaps: vec![GapRow {
                last_domain: 1,
                behind: vec![2; MAX_BEHIND],
                packets: 1,
                reason: String::new(),
            }],
        };
        assert!(t.validate().is_ok());
        t.graph_json.push('x');
        let e = t.validate().unwrap_err().to_string();
        assert!(e.contains("graph_json") && e.contains("67108864"), "{e}");
        t.graph_json = "{}".into();
        t.gaps[0].behind.push(3);
        let e = t.validate().unwrap_err().to_string();
        assert!(e.contains("behind gap 0"), "{e}");
        t.gaps[0].behind.clear();
        t.gaps[0].reason = "a\0b".into();
        assert!(t.validate().is_err());
    }

    #[test]
    fn behind_lists_round_trip() {
        for v in [vec![], vec![7], vec![64501, 0, u32::MAX]] {
            assert_eq!(behind_from_text(&behind_to_text(&v)).unwrap(), v);
        }
        assert_eq!(behind_from_text("1,,2"), None);
    }
}

/// Verdicts a stepping-stone record may carry.
pub const STEPSTONE_VERDICTS: [&str; 3] = ["relay", "direct", "undecided"];

/// One connection answered by the stepping-stone responder (BRIEF §3: time, source, darknet
/// address, Tp, ping statistics, Fp, Fa, verdict and the signals that fired).
#[derive(Clone, Debug, PartialEq)]
pub struct StepstoneConnection {
    /// Caller-chosen id.
    pub id: String,
    /// The incident it belongs to, if any.
    pub incident_id: Option<String>,
    /// When the SYN arrived, ns since the Unix epoch.
    pub time_ns: u64,
    /// Source address (text).
    pub src: String,
    /// Source port.
    pub sport: u16,
    /// The darknet address it hit.
    pub dst: String,
    /// The darknet port.
    pub dport: u16,
    /// Passive response time, µs.
    pub tp_us: Option<u64>,
    /// Echo replies received.
    pub ta_n: u32,
    /// Smallest echo round trip, µs.
    pub ta_min_us: Option<u64>,
    /// Median echo round trip, µs.
    pub ta_median_us: Option<f64>,
    /// Largest echo round trip, µs.
    pub ta_max_us: Option<u64>,
    /// Variance of the echo round trips, µs².
    pub ta_variance: Option<f64>,
    /// Passive fingerprint (p0f raw signature and label).
    pub fp: Option<String>,
    /// Active fingerprint.
    pub fa: Option<String>,
    /// Application-level time (our banner or reply to the source's answer), µs (schema 4).
    pub tapp_us: Option<u64>,
    /// How the application exchange ended (`timed`, `closed`, ...), when one was tried.
    pub app: Option<String>,
    /// `relay`, `direct` or `undecided`.
    pub verdict: String,
    /// The signals that fired, comma-separated (`ttl_class,timing`), empty for none.
    pub signals: String,
}

impl StepstoneConnection {
    /// Checks ids, lengths and the verdict.
    pub fn validate(&self) -> Result<(), StoreError> {
        check_id("stepstone connection id", &self.id)?;
        if let Some(i) = &self.incident_id {
            check_id("incident id", i)?;
        }
        if !STEPSTONE_VERDICTS.contains(&self.verdict.as_str()) {
            return Err(StoreError::Invalid(format!(
                "stepstone verdict {:?} is not one of {STEPSTONE_VERDICTS:?}",
                self.verdict
            )));
        }
        for (what, v) in [
            ("src", Some(&self.src)),
            ("dst", Some(&self.dst)),
            ("fp", self.fp.as_ref()),
            ("fa", self.fa.as_ref()),
            ("app", self.app.as_ref()),
            ("signals", Some(&self.signals)),
        ] {
            if v.is_some_and(|t| t.len() > MAX_LABEL_LEN) {
                return Err(StoreError::Invalid(format!(
                    "stepstone {what} is longer than {MAX_LABEL_LEN} bytes"
                )));
            }
        }
        Ok(())
    }
}
