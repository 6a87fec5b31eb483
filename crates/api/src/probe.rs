//! The probe's request and answer types: what crosses the network between a probe and its
//! clients (a controller, `ashiato probe query`), and the limits both sides rely on.
//!
//! Types only — serde, no server, no tables — so a client links these, not the probe.
//! docs/protocol.md is the specification; every type here is one of its JSON objects.

use serde::{Deserialize, Serialize};

/// Most digests in one query.
pub const MAX_BATCH: usize = 4096;

/// Largest request body accepted (a full batch is about 150 KB).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Most digest-epoch tests one query may cost (digests × epochs in the window): a full
/// batch over about an hour of 1 s epochs. Wider searches must narrow the window or batch.
pub const MAX_WORK: u64 = 16 * 1024 * 1024;

/// Most epochs listed in one digest's answer (a digest seen in more is marked truncated).
pub const MAX_EPOCHS_PER_ANSWER: usize = 256;

/// Most epochs listed in one whole answer, over all its digests. A full batch where every
/// digest matched [`MAX_EPOCHS_PER_ANSWER`] epochs once made a 127 MB answer; now the
/// per-digest limit is lowered evenly (each digest keeps `min(its matches, L)` for the largest
/// `L` that fits) and the digests cut short are marked `truncated`.
pub const MAX_EPOCH_ENTRIES: usize = 16 * 1024;

/// Most gaps listed in one answer (`gaps_truncated` says when there were more; verdicts are
/// computed from all of them).
pub const MAX_GAPS: usize = 1024;

/// Upper bound of one serialised answer: [`MAX_EPOCH_ENTRIES`] epochs (≤ 140 bytes each),
/// [`MAX_BATCH`] digest entries (≤ 300 bytes each), [`MAX_GAPS`] gaps (≤ 140 bytes each) and
/// the header fit in it with room to spare (`answers_never_exceed_the_cap` checks the worst
/// case).
pub const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// Bytes of answers in flight — reserved while computed, then held until sent or dropped —
/// across all connections of a probe. 16 full-size answers, or many more small ones.
pub const ANSWER_BUDGET_BYTES: usize = 16 * MAX_ANSWER_BYTES;

/// Seconds a client is told to wait when the answer budget is exhausted.
pub const RETRY_AFTER_SECS: u32 = 1;

/// A question to a probe: did you see these digests between `from_ns` and `to_ns`?
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct QueryRequest {
    /// Digests as 32 hexadecimal digits (docs/digest.md).
    pub digests: Vec<String>,
    /// Start of the window, nanoseconds since the Unix epoch; absent = oldest epoch held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_ns: Option<u64>,
    /// End of the window; absent = now / newest epoch held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_ns: Option<u64>,
    /// The table id (16 hex digits) of the key the digests were computed with; a probe
    /// keyed otherwise refuses the query (409), naming both ids. Absent = not checked by the
    /// probe (the client must then compare the answer's `table_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_id: Option<String>,
}

/// One epoch of the digest tables that holds a digest.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EpochHit {
    /// Epoch start, ns since the Unix epoch.
    pub start_ns: u64,
    /// Epoch end (exclusive).
    pub end_ns: u64,
    /// Packets recorded in that epoch.
    pub inserted: u64,
    /// False-positive rate of that epoch's table: the chance that this hit is a coincidence.
    pub fpr: f64,
    /// Served from a spilled (on-disk) epoch.
    pub on_disk: bool,
}

/// What a probe can say about one digest over the window.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// At least one epoch in the window holds it (with that epoch's false-positive rate).
    Seen,
    /// No epoch holds it, and every part of the window was recorded and is held.
    NotSeen,
    /// No epoch held holds it, but parts of the window are not held (see `gaps`): the probe
    /// cannot say it did not see it.
    Unknown,
}

/// A part of the window the probe cannot answer for.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct GapAnswer {
    /// Start, ns since the Unix epoch.
    pub from_ns: u64,
    /// End (exclusive at epoch boundaries; the window's end otherwise).
    pub to_ns: u64,
    /// `lost`, `expired`, `not_recorded` or `not_yet_recorded`.
    pub reason: String,
    /// For `lost`: `spill_write_failed`, `spill_file_rejected`, `spill_file_unreadable` or
    /// `several`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The answer for one digest.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DigestAnswer {
    /// The digest asked about.
    pub digest: String,
    /// True when at least one epoch in the window holds it (`verdict == seen`; kept for
    /// clients that predate `verdict`).
    pub seen: bool,
    /// `seen`, `not_seen` or `unknown`. Absent in answers of older probes: use
    /// [`DigestAnswer::verdict`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// Why the verdict is `unknown`: the reasons of the window's gaps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The epochs that hold it (at most [`MAX_EPOCHS_PER_ANSWER`], oldest first).
    pub epochs: Vec<EpochHit>,
    /// True when more epochs held it than are listed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

impl DigestAnswer {
    /// The verdict, for answers of probes that predate the field too (`seen` or `not_seen`).
    pub fn verdict(&self) -> Verdict {
        self.verdict.unwrap_or(if self.seen {
            Verdict::Seen
        } else {
            Verdict::NotSeen
        })
    }
}

/// A probe's answer to a [`QueryRequest`].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct QueryResponse {
    /// The probe's name.
    pub probe: String,
    /// Digest specification version the tables were built with.
    pub digest_version: u8,
    /// Public identifier of key + version; differs if the probe uses another federation key.
    pub table_id: String,
    /// Start of the window the answer speaks for: the requested window without the parts at
    /// its ends that the probe does not hold (those are in `gaps`). Epochs inside it that
    /// hold no packets were recorded empty, and count as searched ground.
    pub from_ns: u64,
    /// End of that window.
    pub to_ns: u64,
    /// Epochs searched (read from memory or disk).
    pub epochs_searched: usize,
    /// Chance that a digest the probe never saw is reported seen in this window:
    /// 1 − Π(1 − fpr) over the epochs actually searched (computed so that tiny rates do not
    /// round to 0).
    pub false_match_probability: f64,
    /// One answer per digest, in request order.
    pub answers: Vec<DigestAnswer>,
    /// Parts of the requested window the probe cannot answer for, oldest first (at most
    /// [`MAX_GAPS`]). Empty when the whole window is held.
    #[serde(default)]
    pub gaps: Vec<GapAnswer>,
    /// More gaps existed than are listed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gaps_truncated: bool,
    /// Some digests list fewer epochs than matched, to keep the answer within
    /// [`MAX_EPOCH_ENTRIES`] (those digests are marked `truncated`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// Summary of one epoch for the status page.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EpochStatus {
    /// Epoch start, ns since the Unix epoch.
    pub start_ns: u64,
    /// Epoch end (exclusive).
    pub end_ns: u64,
    /// Packets recorded.
    pub inserted: u64,
    /// Fraction of bits set, when known (sealed epochs).
    pub fill: Option<f64>,
    /// Current false-positive rate.
    pub fpr: f64,
    /// Spilled to disk.
    pub on_disk: bool,
    /// The epoch being written.
    pub current: bool,
}

/// `GET /v1/status`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct StatusResponse {
    /// Probe name.
    pub probe: String,
    /// Where packets come from (file names or interface).
    pub source: String,
    /// Digest specification version.
    pub digest_version: u8,
    /// Public identifier of key + version.
    pub table_id: String,
    /// Filter kind.
    pub filter: String,
    /// Bits per epoch table.
    pub m_bits: u64,
    /// Hash functions per digest.
    pub k: u32,
    /// Epoch length.
    pub epoch_ns: u64,
    /// Epochs kept in memory.
    pub retention_epochs: u32,
    /// RAM held by the tables.
    pub memory_bytes: u64,
    /// Frames seen by the probe.
    pub frames_seen: u64,
    /// Frames digested and recorded.
    pub digested: u64,
    /// Frames the kernel dropped before we saw them.
    pub kernel_drops: u64,
    /// Frames we skipped, by reason.
    pub skipped: Vec<(String, u64)>,
    /// True once a finite input (capture files) is fully read.
    pub input_done: bool,
    /// Why capture stopped, if it stopped on an error: the probe answers for what it recorded
    /// before and records nothing more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_error: Option<String>,
    /// Every answerable epoch, oldest first.
    pub epochs: Vec<EpochStatus>,
}
