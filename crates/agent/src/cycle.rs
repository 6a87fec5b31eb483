//! One round of the agent: the claim list brought up to date (every delta verified), the held
//! history audited against it, and an answer per claim that means what it says:
//!
//! - **matched**: the history holds packets this host sent that match the claim (with the
//!   report that would be sent, see [`crate::plan`]);
//! - **no match**: the history covers the claim's whole window and holds none;
//! - **unknown**: the history does not cover the window (named: where the gap is), so the
//!   absence of a match says nothing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ashiato_hosttrace::claimlist::{AgentList, SignedDelta};
use ashiato_hosttrace::procs::ProcMap;
use ashiato_hosttrace::{Audit, AuditConfig};

use crate::AgentError;
use crate::attrib::{Record, log_files};
use crate::center::Keys;
use crate::history::{Coverage, Segment, coverage, list_segments};
use crate::plan::{Context, Planned, plan};
use crate::scan::{Damage, audit_files};

/// Gaps between segments up to this long count as covered (a rotation), ns.
pub const COVERAGE_SLACK_NS: u64 = 1_000_000_000;

/// The claim list as fetched: the verified deltas, so that a fresh [`AgentList`] can be built
/// for every audit (the audit consumes its list).
pub struct ClaimList {
    keys: Keys,
    deltas: Vec<SignedDelta>,
    version: u64,
    max_claims: usize,
}

impl ClaimList {
    /// An empty list read with `keys`, holding at most `max_claims` claims.
    pub fn new(keys: Keys, max_claims: usize) -> ClaimList {
        ClaimList {
            keys,
            deltas: Vec::new(),
            version: 0,
            max_claims,
        }
    }

    /// The version held.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Whether the bound on claims is reached (further claims are not fetched).
    pub fn full(&self) -> bool {
        self.version as usize >= self.max_claims
    }

    /// A verified list of everything held.
    pub fn list(&self) -> Result<AgentList, AgentError> {
        let mut l = AgentList::new(&self.keys.sign_public_key, &self.keys.list_key);
        for d in &self.deltas {
            l.apply(d)
                .map_err(|e| AgentError::Invalid(format!("held claim list: {e}")))?;
        }
        Ok(l)
    }

    /// Fetches deltas after the held version with `fetch(since)` until one is empty (or the
    /// bound is reached). A delta that fails its signature, leaves a gap or is inconsistent
    /// is refused, not applied, and ends the update with an error naming it; deltas applied
    /// before it stay. Returns the number of claims added.
    pub fn update(
        &mut self,
        mut fetch: impl FnMut(u64) -> Result<SignedDelta, AgentError>,
    ) -> Result<u64, AgentError> {
        let start = self.version;
        let mut list = self.list()?;
        while !self.full() {
            let d = fetch(self.version)?;
            if d.claims.is_empty() {
                break;
            }
            list.apply(&d).map_err(|e| {
                AgentError::Invalid(format!("refused claim list delta: {e}; not applied"))
            })?;
            self.version = list.version();
            self.deltas.push(d);
        }
        Ok(self.version - start)
    }
}

/// The answer for one claim.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// Matched; the report that would be sent.
    Matched(Box<Planned>),
    /// The history covers the window and holds no match.
    NoMatch,
    /// The history does not cover the window: the first gap, ns.
    Unknown {
        /// Start of the gap.
        from_ns: u64,
        /// End of the gap.
        to_ns: u64,
    },
}

/// One claim's answer.
#[derive(Clone, Debug, PartialEq)]
pub struct ClaimAnswer {
    /// The claim's id.
    pub id: String,
    /// Its window, ns.
    pub window: (u64, u64),
    /// The answer.
    pub answer: Answer,
}

/// What an audit of the history found.
#[derive(Clone, Debug)]
pub struct Round {
    /// One answer per claim, in list order.
    pub answers: Vec<ClaimAnswer>,
    /// The segments searched.
    pub segments: Vec<Segment>,
    /// Segments that ended inside a record (the one being written, or damaged).
    pub damage: Damage,
    /// Frames audited.
    pub frames: u64,
    /// Of those, not IP (or not parsed).
    pub unparsed: u64,
    /// Findings (any feature, any time) in the history.
    pub findings: usize,
}

impl Round {
    /// The span the history holds, ns (first segment's start, last segment's end).
    pub fn span(&self) -> Option<(u64, u64)> {
        Some((
            self.segments.first()?.start_ns,
            self.segments.last()?.end_ns,
        ))
    }
}

/// The process records: the log files in `dir` and the sockets still open.
pub fn proc_map(dir: &Path, open: &[Record]) -> Result<ProcMap, AgentError> {
    let mut text = String::new();
    for p in log_files(dir) {
        text.push_str(&std::fs::read_to_string(&p).map_err(|e| AgentError::io(&p, e))?);
    }
    for r in open {
        text.push_str(&r.line());
        text.push('\n');
    }
    ProcMap::parse(&text).map_err(|e| AgentError::Invalid(format!("process log: {e}")))
}

/// Audits the history in `dir` against `claims`. `open` are the records of sockets still
/// open (empty when not recording); `reporter` names this host in reports.
pub fn audit_history(
    dir: &Path,
    claims: &ClaimList,
    skew_ns: u64,
    open: &[Record],
    reporter: &str,
    max_records: usize,
) -> Result<Round, AgentError> {
    let mut segments = list_segments(dir)?;
    let procs = proc_map(dir, open)?;
    let cfg = AuditConfig {
        skew_ns,
        ..AuditConfig::default()
    };
    let (list, lookup) = (claims.list()?, claims.list()?);
    let published: Vec<(String, u64, u64)> = list
        .claims()
        .iter()
        .map(|c| (c.id.clone(), c.from_ns, c.to_ns))
        .collect();
    let mut audit = Audit::hashed(list, cfg);
    let files: Vec<PathBuf> = segments.iter().map(|s| s.path.clone()).collect();
    let damage = audit_files(&mut audit, &files)?;
    // A damaged segment was searched only up to its last whole frame: past it, "no match"
    // would claim more than was read, so its coverage ends there.
    for (path, last) in &damage.read_to {
        if let Some(s) = segments.iter_mut().find(|s| &s.path == path) {
            s.end_ns = last.unwrap_or(s.start_ns).clamp(s.start_ns, s.end_ns);
        }
    }
    let claims = audit.claims().to_vec();
    // Names of the processes' peers, from the history's DNS answers (before the audit ends).
    let names: HashMap<IpAddr, String> = procs
        .connections()
        .filter_map(|(_, _, r, _)| Some((r.ip(), audit.name_of(r.ip())?.to_string())))
        .collect();
    let report = audit.finish();
    let in_claim = |a: IpAddr, port: u16, t: u64| !lookup.candidates(a, port, t).is_empty();
    let cx = Context {
        procs: &procs,
        names: &names,
        in_claim: &in_claim,
        around_ns: cfg.around_ns,
        max_records,
    };
    let mut planned = plan(reporter, &claims, &report, &cx);
    let answers = published
        .into_iter()
        .map(|(id, from, to)| {
            let answer = match planned.iter().position(|p| p.claim_id == id) {
                Some(i) => Answer::Matched(Box::new(planned.swap_remove(i))),
                None => match coverage(&segments, from, to, COVERAGE_SLACK_NS) {
                    Coverage::Full => Answer::NoMatch,
                    Coverage::Gap { from_ns, to_ns } => Answer::Unknown { from_ns, to_ns },
                },
            };
            ClaimAnswer {
                id,
                window: (from, to),
                answer,
            }
        })
        .collect();
    Ok(Round {
        answers,
        segments,
        damage,
        frames: report.stats.frames,
        unparsed: report.stats.unparsed,
        findings: report.findings.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ashiato_hosttrace::claim::parse_claims;
    use ashiato_hosttrace::claimlist::CenterList;

    fn center() -> (CenterList, [u8; 32]) {
        let rng = ring::rand::SystemRandom::new();
        let pk8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let secret = [7u8; 32];
        (
            CenterList::new(&secret, pk8.as_ref(), 300_000_000_000).unwrap(),
            secret,
        )
    }

    #[test]
    fn deltas_are_verified_and_a_forged_one_is_refused_and_not_applied() {
        let (mut c, secret) = center();
        let claims = parse_claims(concat!(
            r#"{"id":"a","victim":"203.0.113.5","protocol":"tcp","port":80,"from":"2026-01-01T10:00:00Z","to":"2026-01-01T10:05:00Z"}"#,
            "\n",
            r#"{"id":"b","victim":"203.0.113.6","protocol":"udp","from":"2026-01-01T10:00:00Z","to":"2026-01-01T10:05:00Z"}"#,
        ))
        .unwrap();
        c.publish(&claims[0]);
        let keys = Keys {
            list_key: secret,
            sign_public_key: c.public_key(),
            skew_ns: None,
        };
        let mut l = ClaimList::new(keys, 100);
        assert_eq!(l.update(|since| Ok(c.delta(since, 1000))).unwrap(), 1);
        c.publish(&claims[1]);
        let mut forged = c.delta(1, 1000);
        forged.claims[0].id = "planted".into();
        let e = l.update(|_| Ok(forged.clone())).unwrap_err().to_string();
        assert!(
            e.contains("bad signature") && e.contains("not applied"),
            "{e}"
        );
        assert_eq!(l.version(), 1);
        assert_eq!(l.update(|since| Ok(c.delta(since, 1000))).unwrap(), 1);
        let ids: Vec<String> = l
            .list()
            .unwrap()
            .claims()
            .iter()
            .map(|c| c.id.clone())
            .collect();
        assert_eq!(ids, ["a", "b"]);
        // The bound on claims stops fetching.
        let mut small = ClaimList::new(
            Keys {
                list_key: secret,
                sign_public_key: c.public_key(),
                skew_ns: None,
            },
            1,
        );
        assert_eq!(small.update(|since| Ok(c.delta(since, 1))).unwrap(), 1);
        assert!(small.full());
    }

    #[test]
    fn an_empty_history_answers_unknown_not_no_match() {
        let (mut c, secret) = center();
        let claims = parse_claims(
            r#"{"id":"a","victim":"203.0.113.5","protocol":"tcp","port":80,"from":"2026-01-01T10:00:00Z","to":"2026-01-01T10:05:00Z"}"#,
        )
        .unwrap();
        c.publish(&claims[0]);
        let mut l = ClaimList::new(
            Keys {
                list_key: secret,
                sign_public_key: c.public_key(),
                skew_ns: None,
            },
            10,
        );
        l.update(|since| Ok(c.delta(since, 10))).unwrap();
        let d = tempfile::tempdir().unwrap();
        let r = audit_history(d.path(), &l, 300_000_000_000, &[], "h", 10).unwrap();
        assert!(
            matches!(r.answers[0].answer, Answer::Unknown { .. }),
            "{:?}",
            r.answers
        );
        assert_eq!(r.span(), None);
    }

    /// A segment cut short by damage was searched only up to its last whole frame: a claim
    /// after that point is "unknown", even though the file's time says it was recording.
    #[test]
    fn a_damaged_segment_covers_only_what_was_read() {
        let (mut c, secret) = center();
        let claims = parse_claims(
            r#"{"id":"a","victim":"203.0.113.5","protocol":"tcp","port":80,"from":"2026-01-01T10:00:00Z","to":"2026-01-01T10:05:00Z"}"#,
        )
        .unwrap();
        c.publish(&claims[0]);
        let mut l = ClaimList::new(
            Keys {
                list_key: secret,
                sign_public_key: c.public_key(),
                skew_ns: None,
            },
            10,
        );
        l.update(|since| Ok(c.delta(since, 10))).unwrap();
        let d = tempfile::tempdir().unwrap();
        // Recording from an hour before the window; one whole frame at its start, then a
        // record cut in the middle; the file's time says it ran until after the window.
        let start_s: u32 = 1_767_261_600 - 3600;
        let mut b = Vec::new();
        for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65_535, 1] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.truncate(24);
        let hdr = |b: &mut Vec<u8>, ts: u32| {
            for v in [ts, 0, 60, 60] {
                b.extend_from_slice(&v.to_le_bytes());
            }
        };
        hdr(&mut b, start_s + 1);
        b.extend_from_slice(&[0u8; 60]);
        hdr(&mut b, start_s + 2);
        b.extend_from_slice(&[0u8; 10]);
        let path = d
            .path()
            .join(format!("seg-{}.pcap", u64::from(start_s) * 1_000_000_000));
        std::fs::write(&path, &b).unwrap();
        let after = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_767_261_600 + 3600);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(after)
            .unwrap();
        let r = audit_history(d.path(), &l, 300_000_000_000, &[], "h", 10).unwrap();
        assert!(
            matches!(r.answers[0].answer, Answer::Unknown { .. }),
            "{:?}",
            r.answers
        );
    }
}
