//! The federation's types: what a domain controller is asked and answers — by the operator's
//! tools (`POST /v1/trace`), and by other domains' controllers (`POST /v1/hop`).
//!
//! docs/protocol.md ("Inter-domain traceback") is the specification; every type here is one
//! of its JSON objects. Only digests, times, domain ids (AS numbers), probe names and probe
//! evidence (epochs, false-positive rates, verdicts) travel; never packet bytes, never
//! addresses from inside a packet.
//!
//! # One hop
//!
//! A controller asked about a packet that *left* its domain toward a neighbour ([`Via::Link`])
//! asks its probes, then decides, from what each border probe saw ([`ProbeEvidence`]):
//!
//! - the packet did not cross the link it should have left by: [`Outcome::NotOnPath`];
//! - it entered over the links to some neighbours: [`Outcome::Transit`], and in recursive
//!   mode it asks those neighbours in turn ([`HopRequest`] with [`Via::Link`]);
//! - it entered over no border link and every border link answered: [`Outcome::Origin`];
//! - some border links could not answer and none saw it: [`Outcome::Unknown`] — never "not
//!   seen", and the trace goes on through the links that could not answer.
//!
//! A neighbour that runs no controller is skipped by asking the participating domains beyond
//! it ([`Via::Skip`], InterTrack's peering skip); what lies between stays a marked gap.
//!
//! # Two modes
//!
//! - **recursive**: each controller answers for itself and everything upstream of it; the
//!   answer ([`HopResponse`]) carries every domain's [`HopReport`]s back down the path.
//! - **mesh**: the first controller asks every participant at once with [`HopMode::Observe`]
//!   (report what your probes saw, decide nothing), then runs the same per-hop decision on
//!   those observations itself (`ashiato_trace`).
//!
//! Either way the result is an [`AttackGraph`] built from the reports.

use serde::{Deserialize, Serialize};

use crate::probe::Verdict;

/// A domain's id: its AS number.
pub type DomainId = u32;

/// Version of this protocol; a controller refuses requests of another version.
pub const PROTOCOL_VERSION: u32 = 1;

/// Most packets in one trace or hop request (one DDoS's packets travel as batches).
pub const MAX_PACKETS: usize = 1024;

/// Largest request body a controller accepts, before parsing.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Most hop reports in one answer (all packets × all domains upstream); more are dropped and
/// the answer is marked `truncated`.
pub const MAX_REPORTS: usize = 64 * 1024;

/// Most probe evidence entries kept on one edge of an attack graph (a sample of the probes
/// that saw packets cross; the edge's `false_match` is computed from all of them). A hop
/// report is never cut: its evidence is summarised to one entry per watch point instead
/// (`ashiato_trace::decide::summarise`), so it grows with the domain's links, not its probes.
pub const MAX_EVIDENCE: usize = 64;

/// Default bound on the chance that a hop's evidence is a false match (per hop, over the
/// packets of one attack that crossed it): above it the hop is `unreliable`, never evidence.
pub const DEFAULT_FPR_BOUND: f64 = 1e-6;

/// Largest answer body a controller reads from another.
pub const MAX_ANSWER_BYTES: usize = 32 * 1024 * 1024;

/// Hop budget ceiling, and the budget a trace starts with when none is given.
pub const MAX_HOP_BUDGET: u8 = 64;
/// Default hop budget of a new trace: longer than any AS path seen in practice.
pub const DEFAULT_HOP_BUDGET: u8 = 32;

/// Most domains on a branch (`visited`).
pub const MAX_VISITED: usize = MAX_HOP_BUDGET as usize + 1;

/// Longest deadline a request may carry, ms.
pub const MAX_DEADLINE_MS: u32 = 60_000;

/// Longest clock uncertainty a packet may carry, ns (10 minutes).
pub const MAX_UNCERTAINTY_NS: u64 = 600 * 1_000_000_000;

/// One attack packet to trace: its digest and when it was seen, with the uncertainty of that
/// time (the observer's clock and the time the packet took to get there).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TracePacket {
    /// Digest as 32 hexadecimal digits (docs/digest.md).
    pub digest: String,
    /// When it was seen, ns since the Unix epoch.
    pub time_ns: u64,
    /// How far the true time may be from `time_ns`, either way, ns.
    pub uncertainty_ns: u64,
}

/// How a trace is run.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum TraceMode {
    /// Hop by hop: each domain asks the next.
    #[default]
    Recursive,
    /// The first controller asks every participant at once and assembles the path.
    Mesh,
}

impl TraceMode {
    /// `recursive` or `mesh`.
    pub fn as_str(self) -> &'static str {
        match self {
            TraceMode::Recursive => "recursive",
            TraceMode::Mesh => "mesh",
        }
    }
}

/// `POST /v1/trace`: an operator, an IDS bridge or the CLI asks its own domain's controller
/// to trace packets seen at this domain's edge.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TraceStart {
    /// The packets (1 to [`MAX_PACKETS`]).
    pub packets: Vec<TracePacket>,
    /// Recursive or mesh; absent = the controller's configured default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<TraceMode>,
    /// Time the whole trace may take, ms; absent = the configured default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u32>,
    /// The incident these packets belong to (one DDoS = one incident); absent = a new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
    /// Where the trigger came from: `cli`, `eve`, `darkflow`, `lab`, ... (free text, ≤ 64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The public table id (16 hex digits, docs/digest.md) of the federation key the
    /// digests were computed with. A controller keyed otherwise refuses the trace, naming
    /// both ids: digests of another key match nothing, and "nothing matched" must never
    /// become an answer.
    pub table_id: String,
}

/// The answer to [`TraceStart`].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TraceResult {
    /// Id of this trace (32 hex digits).
    pub trace_id: String,
    /// The incident it was stored under.
    pub incident: String,
    /// How it was run.
    pub mode: TraceMode,
    /// Wall time from request to answer, µs.
    pub duration_us: u64,
    /// The attack graph.
    pub graph: AttackGraph,
    /// True when the trace was written to the store.
    pub stored: bool,
    /// Why it was not stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_error: Option<String>,
}

/// Whether a hop decides and continues, or only reports what its probes saw.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum HopMode {
    /// Decide, ask upstream, and answer for everything upstream.
    Recursive,
    /// Only ask the probes and report their evidence (mesh mode).
    Observe,
}

/// Why a domain is asked about a packet.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Via {
    /// The trace starts here: the packet was seen at this domain's own edge (its IDS).
    Edge,
    /// The packet left this domain toward `neighbour`, which saw it enter over their link.
    Link {
        /// The downstream neighbour (the asking domain).
        neighbour: DomainId,
    },
    /// Peering skip: the packet reached `toward` from domains that run no controller,
    /// `skipped` (nearest to `toward` first). Did it leave this domain toward the last one?
    Skip {
        /// The participating domain the packet reached.
        toward: DomainId,
        /// The non-participating domains between this one and `toward`.
        skipped: Vec<DomainId>,
    },
    /// Mesh mode: report what every probe saw; no exit is assumed.
    Any,
}

/// One packet of a [`HopRequest`].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HopPacket {
    /// The packet's index in the trace (reports name packets by it).
    pub index: u32,
    /// Digest, time and uncertainty.
    #[serde(flatten)]
    pub packet: TracePacket,
    /// Why this domain is asked about it.
    pub via: Via,
}

/// `POST /v1/hop`: one controller asks another.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HopRequest {
    /// [`PROTOCOL_VERSION`].
    pub version: u32,
    /// 32 hex digits, unique per request; a retry reuses it and gets the same answer.
    pub request_id: String,
    /// The trace this request belongs to (32 hex digits).
    pub trace_id: String,
    /// The domain that started the trace.
    pub initiator: DomainId,
    /// The asking domain (must match the certificate it presented).
    pub from: DomainId,
    /// The federation key's public table id (docs/digest.md): digests from another key mean
    /// nothing here, and the request is refused.
    pub table_id: String,
    /// Decide and continue, or only observe.
    pub mode: HopMode,
    /// Domains this request may still reach, this one included (≥ 1).
    pub hop_budget: u8,
    /// Time left for the whole answer, ms, counted from when the request arrives: each hop
    /// passes on less, so an answer always returns before its asker gives up.
    pub deadline_ms: u32,
    /// Domains already on this branch of the trace: a controller never asks one of them, and
    /// refuses a request that lists itself.
    pub visited: Vec<DomainId>,
    /// The packets (1 to [`MAX_PACKETS`]).
    pub packets: Vec<HopPacket>,
}

/// What one border or edge probe watches.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Watch {
    /// The link to a neighbouring domain (both directions).
    Link {
        /// The neighbour at the other end.
        neighbour: DomainId,
    },
    /// This domain's own customer edge (where its customers' traffic enters).
    Edge,
}

/// What a probe said about one packet, or why it said nothing.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ProbeVerdict {
    /// Its tables hold the digest in the window.
    Seen,
    /// Its tables cover the whole window and do not hold the digest.
    NotSeen,
    /// It answered, but does not hold all of the window (see `reason`).
    Unknown,
    /// It did not answer in time, refused, or answered something unusable (see `reason`).
    Unreachable,
}

impl From<Verdict> for ProbeVerdict {
    fn from(v: Verdict) -> Self {
        match v {
            Verdict::Seen => ProbeVerdict::Seen,
            Verdict::NotSeen => ProbeVerdict::NotSeen,
            Verdict::Unknown => ProbeVerdict::Unknown,
        }
    }
}

impl ProbeVerdict {
    /// `seen`, `not_seen`, `unknown` or `unreachable`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeVerdict::Seen => "seen",
            ProbeVerdict::NotSeen => "not_seen",
            ProbeVerdict::Unknown => "unknown",
            ProbeVerdict::Unreachable => "unreachable",
        }
    }
}

/// One probe's evidence about one packet.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProbeEvidence {
    /// The probe's name in its domain's configuration.
    pub probe: String,
    /// What it watches.
    pub watches: Watch,
    /// What it said.
    pub verdict: ProbeVerdict,
    /// First epoch that holds the digest (seen only), ns since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch_start_ns: Option<u64>,
    /// End of that epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch_end_ns: Option<u64>,
    /// False-positive rate of that epoch's table: the chance this `seen` is a coincidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fpr: Option<f64>,
    /// Chance that the probe reports `seen` for a packet it never saw, over the whole window
    /// it searched (its answer's `false_match_probability`); 0 when it did not answer.
    #[serde(default)]
    pub false_match: f64,
    /// Why the verdict is `unknown` or `unreachable`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ProbeEvidence {
    /// The chance that this `seen` is a false match: the probe's false-match probability
    /// over the window it searched (at least the matching epoch's rate). Missing, negative
    /// or non-finite values count as 1 (no evidence at all); only `seen` answers have one.
    pub fn seen_false_match(&self) -> f64 {
        let w = if self.false_match.is_finite() && self.false_match > 0.0 {
            self.false_match
        } else {
            0.0
        };
        let e = self.fpr.filter(|f| f.is_finite() && *f >= 0.0);
        let p = match e {
            Some(e) => w.max(e),
            None if w > 0.0 => w,
            None => 1.0,
        };
        p.clamp(0.0, 1.0)
    }
}

/// What a domain concluded about one packet.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It passed through: it entered from the neighbours in `entered_from`.
    Transit,
    /// It started here: it left (or was seen at the edge) and entered over no border link,
    /// while every border link answered.
    Origin,
    /// It did not pass here: the link it should have left by holds the whole window and did
    /// not see it, or every way in (the customer edge and every other border link) holds the
    /// window and none saw it. At the victim: no probe saw it (`not_seen_anywhere`).
    NotOnPath,
    /// Nothing seen, but parts of the domain could not answer (`unknown_links`, `reason`):
    /// neither "origin" nor "not on path" can be said.
    Unknown,
    /// Mesh mode: evidence only, no decision.
    Observed,
    /// The domain's controller did not answer in time, refused, or answered something
    /// unusable (written by the domain that asked, with the reason).
    Unreachable,
    /// The domain runs no controller (written by the domain that skipped it).
    NotParticipating,
    /// The hop budget or the deadline ran out before this domain could be asked (written by
    /// the domain that stopped).
    Stopped,
}

impl Outcome {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Transit => "transit",
            Outcome::Origin => "origin",
            Outcome::NotOnPath => "not_on_path",
            Outcome::Unknown => "unknown",
            Outcome::Observed => "observed",
            Outcome::Unreachable => "unreachable",
            Outcome::NotParticipating => "not_participating",
            Outcome::Stopped => "stopped",
        }
    }
}

/// One domain's finding about one packet.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HopReport {
    /// The domain the report is about.
    pub domain: DomainId,
    /// The packet's index in the trace.
    pub packet: u32,
    /// Why the domain was asked.
    pub via: Via,
    /// What it concluded.
    pub outcome: Outcome,
    /// Neighbours the packet entered from (their link's probe saw it), ascending.
    #[serde(default)]
    pub entered_from: Vec<DomainId>,
    /// Neighbours whose link could not answer (probe unknown, unreachable or absent),
    /// ascending: the packet may have entered there.
    #[serde(default)]
    pub unknown_links: Vec<DomainId>,
    /// What its probes said, one entry per watch point that saw the packet or could not
    /// say (`ashiato_trace::decide::summarise`); points that answered `not_seen` are left
    /// out (see [`DomainView::watched`]), so a report grows with what was seen, not with the
    /// domain's links.
    #[serde(default)]
    pub evidence: Vec<ProbeEvidence>,
    /// Why, in words, for `unknown`, `not_on_path`, `unreachable`, `stopped`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What a domain is, as far as a mesh initiator needs to know to decide for it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DomainView {
    /// The domain.
    pub domain: DomainId,
    /// Its neighbouring domains, ascending.
    pub neighbours: Vec<NeighbourView>,
    /// The watch points its probes cover, ascending. Reports leave out the points that
    /// answered `not_seen`: a point listed here without an entry answered `not_seen`, one
    /// absent from both is not watched.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub watched: Vec<Watch>,
}

/// One neighbour of a [`DomainView`].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NeighbourView {
    /// The neighbour.
    pub domain: DomainId,
    /// True when it runs a controller this domain can ask.
    pub participates: bool,
    /// For a non-participant: the participating domains beyond it to ask instead (peering
    /// skip), each with the non-participants between (nearest to this domain first, the
    /// neighbour itself included).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub beyond: Vec<SkipTarget>,
}

/// A participating domain reached around non-participants.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SkipTarget {
    /// The participating domain.
    pub domain: DomainId,
    /// The non-participating domains between, nearest to the asking domain first.
    pub skipped: Vec<DomainId>,
}

/// The answer to a [`HopRequest`].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HopResponse {
    /// [`PROTOCOL_VERSION`].
    pub version: u32,
    /// The request's id.
    pub request_id: String,
    /// The answering domain.
    pub domain: DomainId,
    /// Its reports and, in recursive mode, those of every domain upstream of it.
    pub reports: Vec<HopReport>,
    /// Observe mode: the answering domain's neighbours, so the initiator can decide for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<DomainView>,
    /// More than [`MAX_REPORTS`] reports existed; some were dropped.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// The role of a domain in an attack graph.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum NodeRole {
    /// Where the packets were detected.
    Victim,
    /// Packets passed through.
    Transit,
    /// Packets started here.
    Origin,
    /// Asked, could not say.
    Unknown,
    /// Could not be asked (dead, slow, garbage, refused).
    Unreachable,
    /// Runs no controller: a gap in the path.
    NotParticipating,
    /// Where the hop budget or deadline stopped the trace.
    Stopped,
}

/// A domain in an attack graph.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct GraphNode {
    /// The domain.
    pub domain: DomainId,
    /// Its role (the strongest over all packets: origin > transit > victim > others).
    pub role: NodeRole,
    /// Packets that reached it on their path (victim included).
    pub packets: u32,
    /// Packets that started here.
    #[serde(default)]
    pub origin_packets: u32,
}

/// A hop of the attack graph: packets went from `from` (upstream) to `to`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct GraphEdge {
    /// Upstream domain.
    pub from: DomainId,
    /// Downstream domain.
    pub to: DomainId,
    /// Packets that took this hop.
    pub packets: u32,
    /// Non-participating domains between them (peering skip), nearest to `to` first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<DomainId>,
    /// The probes that saw the packets cross (a sample: at most [`MAX_EVIDENCE`]).
    #[serde(default)]
    pub evidence: Vec<ProbeEvidence>,
    /// The chance that every sighting of this hop is a false match: the product, over the
    /// distinct packets (digests) that crossed it, of each one's best sighting on it (two
    /// probes of one link hold the same traffic, so their matches are not independent; two
    /// distinct digests' matches are). A hop above the trace's `fpr_bound` is `unreliable`
    /// and carries no branch past it.
    #[serde(default = "one")]
    pub false_match: f64,
    /// True when `false_match` is within the trace's `fpr_bound`.
    #[serde(default)]
    pub reliable: bool,
}

fn one() -> f64 {
    1.0
}

/// Packets attributed to an origin domain.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct OriginCount {
    /// The origin domain.
    pub domain: DomainId,
    /// Packets attributed to it (a packet sent identically from several origins counts at
    /// each of them).
    pub packets: u32,
    /// The chance that this attribution is false — that this domain is no origin of the
    /// attack at all: that some hop of the chain from the victim to it is made of false
    /// matches only (1 − Π(1 − hop), each hop combined over the distinct packets that lead
    /// through it to this origin; the worst of its chains).
    #[serde(default = "one")]
    pub false_probability: f64,
}

/// Packets whose trace ends in a gap instead of an origin.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct GapCount {
    /// The last domain that saw them.
    pub last: DomainId,
    /// The domains behind it that could not answer or run no controller, nearest first.
    pub behind: Vec<DomainId>,
    /// Why the trace ends there: `not_seen_anywhere` (no probe of the victim's domain saw
    /// it, though all held the window), `unreliable` (the only sighting of the next hop is
    /// above the false-match bound), `not_participating`, `unreachable`, `unknown`,
    /// `stopped`, `contradicted`, `several_gaps` or `ambiguous` (evidence for more origins
    /// than copies, or an origin the packet's own sightings do not carry beside a gap).
    pub reason: String,
    /// Packets.
    pub packets: u32,
    /// Where the packets can have come from, when the gap is behind a domain that runs no
    /// controller and the controller knows the AS topology: that domain and every
    /// non-participant behind it with a valley-free path through non-participants only,
    /// ascending (at most [`MAX_CANDIDATES`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<DomainId>,
    /// More candidates existed than are listed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub candidates_truncated: bool,
}

/// Most candidate origins listed behind one gap.
pub const MAX_CANDIDATES: usize = 1024;

/// Where one packet's trace ends.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PathEnd {
    /// At its origin domain.
    Origin {
        /// The origin.
        domain: DomainId,
    },
    /// At a gap: it came from behind `last`, through domains that could not say.
    Gap {
        /// The last domain that saw it.
        last: DomainId,
        /// The domains behind, nearest first.
        behind: Vec<DomainId>,
        /// One of [`GapCount::reason`]'s reasons.
        reason: String,
    },
}

/// A branch of a packet's trace beside its end: a gap beside an attributed origin, or, for
/// an `ambiguous` end, each branch that could not be told apart (origins included).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct OpenBranch {
    /// Domains from the victim upstream to the last that saw it.
    pub path: Vec<DomainId>,
    /// Where it ends.
    pub end: PathEnd,
}

/// One packet's traced path.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PacketPath {
    /// The packet's index.
    pub packet: u32,
    /// Domains from the victim upstream to the end (the origin, or the last that saw it).
    pub path: Vec<DomainId>,
    /// Where it ends. A chain of reliable evidence to an origin outranks branches that end
    /// in gaps (those are listed in `open`); evidence for more origins than the trace has
    /// packets with this digest ends `ambiguous`.
    pub end: PathEnd,
    /// The packet's digest (identical packets share it, and their false matches with it).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub digest: String,
    /// Further origins of the same digest, each with its own reliable chain: the packet was
    /// sent identically from several origins (the trace holds at least that many copies).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<DomainId>,
    /// For an origin end: the chance that this packet did not come from there, on its own
    /// sightings alone (1 − Π(1 − p) over its chain's hops). A packet rides on the attack's
    /// combined evidence to be attributed at all, but one whose own sighting of a hop was a
    /// false match would not have crossed it: this says how likely that is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub false_probability: Option<f64>,
    /// Branches that end in gaps beside the attributed origin(s).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub open: Vec<OpenBranch>,
}

/// The result of a trace: the domains the packets crossed, with evidence per hop.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AttackGraph {
    /// Where the packets were detected.
    pub victim: DomainId,
    /// Packets traced.
    pub packets: u32,
    /// Domains, ascending by id.
    pub nodes: Vec<GraphNode>,
    /// Hops, ascending by (from, to).
    pub edges: Vec<GraphEdge>,
    /// Packets per origin domain, most first.
    pub origins: Vec<OriginCount>,
    /// Packets whose trace ends in a gap, most first.
    pub gaps: Vec<GapCount>,
    /// Every packet's path (at most [`MAX_PACKETS`] per trace).
    pub paths: Vec<PacketPath>,
    /// Expected number of false nodes in the graph: the sum of the false-match probabilities
    /// of every probe answer the trace relied on.
    pub expected_false_nodes: f64,
    /// Every hop report the graph was built from (bounded by [`MAX_REPORTS`]).
    pub reports: Vec<HopReport>,
    /// True when reports were dropped on the way (an answer was truncated).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// The per-hop false-match bound the graph was judged with.
    #[serde(default = "default_bound")]
    pub fpr_bound: f64,
}

fn default_bound() -> f64 {
    DEFAULT_FPR_BOUND
}
