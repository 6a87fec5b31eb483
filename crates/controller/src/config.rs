//! The domain file (`ashiato controller --config domain.toml`): who this domain is, its
//! probes, its neighbours and peers, and the bounds it serves under.
//!
//! Every error names the file, the line and the key: syntax errors and unknown keys from
//! toml's spans, semantic ones (duplicate probe names, a probe on a link to a domain that is
//! not a neighbour, ...) from a second, span-only reading of the same text. The format is
//! documented with a full example in `docs/operations.md` (`docs/domain.example.toml`).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};

use ashiato_api::federation::{
    DomainId, DomainView, MAX_DEADLINE_MS, MAX_HOP_BUDGET, MAX_PACKETS, NeighbourView, SkipTarget,
    TraceMode, Watch,
};
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};
use toml::Spanned;

/// A parsed and checked domain file.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DomainConfig {
    /// `[domain]`: this domain's id and where it listens.
    pub domain: DomainSection,
    /// `[tls]`: mutual TLS; absent only with `dev_insecure`.
    #[serde(default)]
    pub tls: Option<TlsSection>,
    /// `[trace]`: how traces run.
    #[serde(default)]
    pub trace: TraceSection,
    /// `[limits]`: bounds.
    #[serde(default)]
    pub limits: LimitsSection,
    /// `[[probe]]`: this domain's probes.
    #[serde(default, rename = "probe")]
    pub probes: Vec<ProbeEntry>,
    /// `[[neighbour]]`: adjacent domains.
    #[serde(default, rename = "neighbour")]
    pub neighbours: Vec<NeighbourEntry>,
    /// `[[peer]]`: other participants (asked in mesh mode).
    #[serde(default, rename = "peer")]
    pub peers: Vec<PeerEntry>,
    /// `[triggers]`: files to follow.
    #[serde(default)]
    pub triggers: TriggersSection,
    /// `[store]`: where finished traces are kept.
    #[serde(default)]
    pub store: StoreSection,
}

/// `[store]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// A SQLite file (relative to the domain file's directory), `sqlite:PATH`, or a
    /// `postgres://` URL (`ashiato_store::Store::open`); `none` keeps traces in memory only
    /// (the most recent `limits.recent_traces`).
    #[serde(default = "default_store_url")]
    pub url: String,
}

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection {
            url: default_store_url(),
        }
    }
}

fn default_store_url() -> String {
    "traces.db".into()
}

impl StoreSection {
    /// True when traces are to be stored.
    pub fn enabled(&self) -> bool {
        self.url != "none"
    }
}

/// `[domain]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DomainSection {
    /// This domain's id (its AS number).
    pub asn: DomainId,
    /// A name for logs and status.
    #[serde(default)]
    pub name: String,
    /// Where the controller serves (`/v1/trace`, `/v1/hop`, ...).
    pub listen: SocketAddr,
    /// The federation key file (the probes' key).
    pub key_file: PathBuf,
    /// Plaintext on loopback only, for tests and labs.
    #[serde(default)]
    pub dev_insecure: bool,
}

/// `[tls]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// Directory with `ca.pem`, `<name>.pem`, `<name>-key.pem`.
    pub dir: PathBuf,
    /// This controller's identity: `as<ASN>`.
    pub name: String,
}

/// `[trace]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TraceSection {
    /// Default mode of a trace.
    pub mode: TraceMode,
    /// Time a whole trace may take, ms.
    pub deadline_ms: u32,
    /// Time a probe may take to answer, ms.
    pub probe_timeout_ms: u32,
    /// Domains a trace may reach, this one included.
    pub hop_budget: u8,
    /// Clock uncertainty of a trigger that gives none, ms.
    pub uncertainty_ms: u64,
    /// This domain's own clock skew, added to every probe window, ms.
    pub clock_skew_ms: u64,
    /// The federation's bound on a hop's false-match probability: a hop whose sightings
    /// could all be false matches with a higher probability is `unreliable`, never evidence
    /// (docs/operations.md, "Sizing probes"). Every domain of a federation should use the
    /// same value; it is applied by the domain that starts a trace.
    pub fpr_bound: f64,
    /// An AS relationships file (CAIDA serial-1 or SNAP), optional: with it, a trace that
    /// ends behind a domain running no controller lists the ASes the packets can have come
    /// from.
    pub topology: Option<PathBuf>,
}

impl Default for TraceSection {
    fn default() -> Self {
        TraceSection {
            mode: TraceMode::Recursive,
            deadline_ms: 2000,
            probe_timeout_ms: 500,
            hop_budget: ashiato_api::federation::DEFAULT_HOP_BUDGET,
            uncertainty_ms: 1000,
            clock_skew_ms: 100,
            fpr_bound: ashiato_api::federation::DEFAULT_FPR_BOUND,
            topology: None,
        }
    }
}

/// `[limits]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// Most packets in one trace or hop request.
    pub max_packets_per_trace: usize,
    /// Hop requests per second one peer domain may send (token bucket rate).
    pub peer_requests_per_second: f64,
    /// Token bucket size per peer domain.
    pub peer_burst: u32,
    /// Outgoing requests in flight per trace.
    pub max_fanout: usize,
    /// Traces (own and peers') running at once.
    pub max_concurrent_traces: usize,
    /// Finished traces kept in memory for `GET /v1/traces/{id}`.
    pub recent_traces: usize,
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            max_packets_per_trace: MAX_PACKETS,
            peer_requests_per_second: 50.0,
            peer_burst: 100,
            max_fanout: 64,
            max_concurrent_traces: 64,
            recent_traces: 1024,
        }
    }
}

/// `[[probe]]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProbeEntry {
    /// Its name (unique in the domain).
    pub name: String,
    /// `host:port` of its query API.
    pub address: String,
    /// `link:<ASN>` or `edge`.
    #[serde(deserialize_with = "watch_from_str")]
    pub watches: Watch,
}

/// `[[neighbour]]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NeighbourEntry {
    /// The neighbour's AS number.
    pub asn: DomainId,
    /// `host:port` of its controller; absent = it runs no ashiato.
    #[serde(default)]
    pub controller: Option<String>,
    /// Participating domains beyond a non-participant (peering skip).
    #[serde(default)]
    pub beyond: Vec<BeyondEntry>,
}

/// A participating domain beyond a non-participating neighbour.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BeyondEntry {
    /// Its AS number.
    pub asn: DomainId,
    /// The non-participants between, nearest to us first (the neighbour first).
    pub via: Vec<DomainId>,
    /// `host:port` of its controller.
    pub controller: String,
}

/// `[[peer]]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PeerEntry {
    /// Its AS number.
    pub asn: DomainId,
    /// `host:port` of its controller.
    pub controller: String,
}

/// `[triggers]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TriggersSection {
    /// A Suricata EVE JSON file to follow (tail -F).
    #[serde(default)]
    pub eve_file: Option<PathBuf>,
    /// `ashiato darkflow --json --key-file F` events to follow (tail -F): each `darkflow`
    /// line's `digest` (of the flow's first SYN) is traced; lines without one are skipped
    /// with a reason (the DarkFlow detector ran without the federation key).
    #[serde(default)]
    pub darkflow_events: Option<PathBuf>,
}

/// `link:<ASN>` or `edge`.
pub fn parse_watch(s: &str) -> Result<Watch, String> {
    if s == "edge" {
        return Ok(Watch::Edge);
    }
    match s.strip_prefix("link:").map(str::parse::<DomainId>) {
        Some(Ok(neighbour)) => Ok(Watch::Link { neighbour }),
        _ => Err(format!(
            "watches = {s:?}: expected \"edge\" or \"link:<ASN>\" (e.g. \"link:64502\")"
        )),
    }
}

fn watch_from_str<'de, D: Deserializer<'de>>(d: D) -> Result<Watch, D::Error> {
    let s = String::deserialize(d)?;
    parse_watch(&s).map_err(serde::de::Error::custom)
}

/// Why a domain file was refused.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read", path = .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// Not valid TOML, an unknown key, a missing key or a value of the wrong type.
    #[error("{path}:{line}: {msg}", path = .path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line (0 when toml gave no position).
        line: usize,
        /// toml's message (it names the key).
        msg: String,
    },
    /// Well-formed, but inconsistent or unusable.
    #[error("{path}:{line}: {key}: {msg}", path = .path.display(), line = line_text(*.line))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line, when known.
        line: Option<usize>,
        /// The key, e.g. `probe[1].watches`.
        key: String,
        /// What is wrong.
        msg: String,
    },
}

fn line_text(line: Option<usize>) -> String {
    line.map(|l| l.to_string()).unwrap_or_else(|| "?".into())
}

/// A semantic error before it is placed in a file: the key and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The key, e.g. `neighbour[0].asn`.
    pub key: String,
    /// What is wrong.
    pub msg: String,
}

/// Only the positions of the keys semantic checks name.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Spans {
    domain: Option<DomainSpans>,
    tls: Option<TlsSpans>,
    probe: Vec<ProbeSpans>,
    neighbour: Vec<NeighbourSpans>,
    peer: Vec<PeerSpans>,
    limits: Option<Spanned<IgnoredAny>>,
    trace: Option<Spanned<IgnoredAny>>,
    triggers: Option<TriggerSpans>,
}

type At = Option<Spanned<IgnoredAny>>;

#[derive(Deserialize, Default)]
#[serde(default)]
struct DomainSpans {
    asn: At,
    listen: At,
    key_file: At,
    dev_insecure: At,
}
#[derive(Deserialize, Default)]
#[serde(default)]
struct TlsSpans {
    name: At,
}
#[derive(Deserialize, Default)]
#[serde(default)]
struct ProbeSpans {
    name: At,
    address: At,
    watches: At,
}
#[derive(Deserialize, Default)]
#[serde(default)]
struct NeighbourSpans {
    asn: At,
    controller: At,
    beyond: Vec<BeyondSpans>,
}
#[derive(Deserialize, Default)]
#[serde(default)]
struct BeyondSpans {
    asn: At,
    via: At,
    controller: At,
}
#[derive(Deserialize, Default)]
#[serde(default)]
struct PeerSpans {
    asn: At,
    controller: At,
}
#[derive(Deserialize, Default)]
#[serde(default)]
struct TriggerSpans {
    darkflow_events: At,
}

impl Spans {
    /// The byte range of `key` (as [`Problem::key`] spells it).
    fn find(&self, key: &str) -> Option<Range<usize>> {
        fn idx(part: &str, name: &str) -> Option<usize> {
            part.strip_prefix(name)?
                .strip_prefix('[')?
                .strip_suffix(']')?
                .parse()
                .ok()
        }
        let sp = |a: &At| a.as_ref().map(Spanned::span);
        let parts: Vec<&str> = key.split('.').collect();
        match parts.as_slice() {
            ["domain", f] => {
                let d = self.domain.as_ref()?;
                match *f {
                    "asn" => sp(&d.asn),
                    "listen" => sp(&d.listen),
                    "key_file" => sp(&d.key_file),
                    "dev_insecure" => sp(&d.dev_insecure),
                    _ => None,
                }
            }
            ["tls", "name"] => sp(&self.tls.as_ref()?.name),
            ["limits", ..] => self.limits.as_ref().map(Spanned::span),
            ["trace", ..] => self.trace.as_ref().map(Spanned::span),
            ["triggers", "darkflow_events"] => sp(&self.triggers.as_ref()?.darkflow_events),
            [p, f] if p.starts_with("probe[") => {
                let e = self.probe.get(idx(p, "probe")?)?;
                match *f {
                    "name" => sp(&e.name),
                    "address" => sp(&e.address),
                    "watches" => sp(&e.watches),
                    _ => None,
                }
            }
            [p, f] if p.starts_with("peer[") => {
                let e = self.peer.get(idx(p, "peer")?)?;
                match *f {
                    "asn" => sp(&e.asn),
                    "controller" => sp(&e.controller),
                    _ => None,
                }
            }
            [n, f] if n.starts_with("neighbour[") => {
                let e = self.neighbour.get(idx(n, "neighbour")?)?;
                match *f {
                    "asn" => sp(&e.asn),
                    "controller" => sp(&e.controller),
                    _ => None,
                }
            }
            [n, b, f] if n.starts_with("neighbour[") => {
                let e = self.neighbour.get(idx(n, "neighbour")?)?;
                let b = e.beyond.get(idx(b, "beyond")?)?;
                match *f {
                    "asn" => sp(&b.asn),
                    "via" => sp(&b.via),
                    "controller" => sp(&b.controller),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

/// 1-based line of byte offset `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// `host:port` with a non-empty host and a port (not resolved here).
fn check_address(a: &str) -> Result<(), String> {
    if a.parse::<SocketAddr>().is_ok() {
        return Ok(());
    }
    match a.rsplit_once(':') {
        Some((host, port))
            if !host.is_empty()
                && !host.contains(['/', ' ', '[', ']'])
                && port.parse::<u16>().is_ok_and(|p| p > 0) =>
        {
            Ok(())
        }
        _ => Err(format!("{a:?} is not host:port")),
    }
}

impl DomainConfig {
    /// Reads and checks a domain file; relative paths in it are taken from its directory.
    pub fn load(path: &Path) -> Result<DomainConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut cfg = DomainConfig::parse(&text, path)?;
        if let Some(base) = path.parent() {
            cfg.resolve_paths(base);
        }
        Ok(cfg)
    }

    /// Parses and checks the text of a domain file (`path` only names it in errors).
    pub fn parse(text: &str, path: &Path) -> Result<DomainConfig, ConfigError> {
        let cfg: DomainConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_owned(),
            line: e.span().map(|s| line_of(text, s.start)).unwrap_or(0),
            msg: e.message().trim().to_string(),
        })?;
        if let Err(p) = cfg.validate() {
            let spans: Spans = toml::from_str(text).unwrap_or_default();
            return Err(ConfigError::Invalid {
                path: path.to_owned(),
                line: spans.find(&p.key).map(|s| line_of(text, s.start)),
                key: p.key,
                msg: p.msg,
            });
        }
        Ok(cfg)
    }

    /// Makes relative file names relative to `base` (the file's directory).
    pub fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.domain.key_file);
        if let Some(t) = &mut self.tls {
            fix(&mut t.dir);
        }
        if let Some(p) = &mut self.triggers.eve_file {
            fix(p);
        }
        if let Some(p) = &mut self.triggers.darkflow_events {
            fix(p);
        }
        if let Some(p) = &mut self.trace.topology {
            fix(p);
        }
        let url = &mut self.store.url;
        if url != "none" && !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
            let (prefix, path) = match url.strip_prefix("sqlite:") {
                Some(p) => ("sqlite:", p.trim_start_matches("//")),
                None => ("", url.as_str()),
            };
            if Path::new(path).is_relative() {
                *url = format!("{prefix}{}", base.join(path).display());
            }
        }
    }

    /// The semantic checks: the first problem found, naming its key.
    pub fn validate(&self) -> Result<(), Problem> {
        let bad = |key: String, msg: String| Err(Problem { key, msg });
        let me = self.domain.asn;
        if me == 0 {
            return bad("domain.asn".into(), "AS 0 is reserved".into());
        }
        if self.domain.dev_insecure {
            if let Err(e) = ashiato_net::server::check_insecure_listen(&self.domain.listen) {
                return bad("domain.listen".into(), e);
            }
        } else {
            match &self.tls {
                None => {
                    return bad(
                        "tls".into(),
                        "a [tls] section (dir, name) is required unless dev_insecure = true".into(),
                    );
                }
                Some(t) if t.name != format!("as{me}") => {
                    return bad(
                        "tls.name".into(),
                        format!(
                            "{:?}: a controller's identity is as<ASN>, here \"as{me}\" (peers check it)",
                            t.name
                        ),
                    );
                }
                Some(_) => {}
            }
        }
        let t = &self.trace;
        if t.deadline_ms == 0 || t.deadline_ms > MAX_DEADLINE_MS {
            return bad(
                "trace.deadline_ms".into(),
                format!("{} ms: 1 to {MAX_DEADLINE_MS}", t.deadline_ms),
            );
        }
        if t.probe_timeout_ms == 0 || t.probe_timeout_ms >= t.deadline_ms {
            return bad(
                "trace.probe_timeout_ms".into(),
                format!(
                    "{} ms: above 0 and below deadline_ms ({})",
                    t.probe_timeout_ms, t.deadline_ms
                ),
            );
        }
        if t.hop_budget == 0 || t.hop_budget > MAX_HOP_BUDGET {
            return bad(
                "trace.hop_budget".into(),
                format!("{}: 1 to {MAX_HOP_BUDGET}", t.hop_budget),
            );
        }
        let max_unc_ms = ashiato_api::federation::MAX_UNCERTAINTY_NS / 1_000_000;
        if t.uncertainty_ms > max_unc_ms || t.clock_skew_ms > max_unc_ms {
            return bad(
                "trace.uncertainty_ms".into(),
                format!("uncertainty_ms and clock_skew_ms are at most {max_unc_ms}"),
            );
        }
        if !(t.fpr_bound > 0.0 && t.fpr_bound <= 0.01) {
            return bad(
                "trace.fpr_bound".into(),
                format!(
                    "{}: above 0 and at most 0.01 (a hop that may be false one time in a hundred is no evidence)",
                    t.fpr_bound
                ),
            );
        }
        let l = &self.limits;
        if l.max_packets_per_trace == 0 || l.max_packets_per_trace > MAX_PACKETS {
            return bad(
                "limits.max_packets_per_trace".into(),
                format!("{}: 1 to {MAX_PACKETS}", l.max_packets_per_trace),
            );
        }
        if !(l.peer_requests_per_second > 0.0 && l.peer_requests_per_second.is_finite())
            || l.peer_burst == 0
            || l.max_fanout == 0
            || l.max_concurrent_traces == 0
            || l.recent_traces == 0
        {
            return bad(
                "limits".into(),
                "every limit must be greater than zero".into(),
            );
        }
        let neighbours: BTreeSet<DomainId> = self.neighbours.iter().map(|n| n.asn).collect();
        let mut names = BTreeSet::new();
        for (i, p) in self.probes.iter().enumerate() {
            if p.name.is_empty() || !names.insert(p.name.as_str()) {
                return bad(
                    format!("probe[{i}].name"),
                    format!("{:?}: probe names must be unique and not empty", p.name),
                );
            }
            if let Err(e) = check_address(&p.address) {
                return bad(format!("probe[{i}].address"), e);
            }
            if let Watch::Link { neighbour } = p.watches
                && !neighbours.contains(&neighbour)
            {
                return bad(
                    format!("probe[{i}].watches"),
                    format!("link:{neighbour}: AS{neighbour} is not a listed [[neighbour]]"),
                );
            }
        }
        let mut seen = BTreeSet::new();
        for (i, n) in self.neighbours.iter().enumerate() {
            if n.asn == me || n.asn == 0 {
                return bad(
                    format!("neighbour[{i}].asn"),
                    format!("AS{}: a neighbour cannot be this domain (or AS 0)", n.asn),
                );
            }
            if !seen.insert(n.asn) {
                return bad(
                    format!("neighbour[{i}].asn"),
                    format!("AS{} is listed twice", n.asn),
                );
            }
            if let Some(c) = &n.controller {
                if let Err(e) = check_address(c) {
                    return bad(format!("neighbour[{i}].controller"), e);
                }
                if !n.beyond.is_empty() {
                    return bad(
                        format!("neighbour[{i}].controller"),
                        "a neighbour with a controller is asked itself; `beyond` is only for neighbours without one".into(),
                    );
                }
            }
            for (j, b) in n.beyond.iter().enumerate() {
                let key = |f: &str| format!("neighbour[{i}].beyond[{j}].{f}");
                if b.asn == me || b.asn == n.asn || b.asn == 0 {
                    return bad(
                        key("asn"),
                        format!("AS{}: not a domain beyond AS{}", b.asn, n.asn),
                    );
                }
                if b.via.first() != Some(&n.asn) || b.via.contains(&me) || b.via.contains(&b.asn) {
                    return bad(
                        key("via"),
                        format!(
                            "{:?}: the non-participants between, starting with the neighbour AS{}",
                            b.via, n.asn
                        ),
                    );
                }
                if let Err(e) = check_address(&b.controller) {
                    return bad(key("controller"), e);
                }
            }
        }
        for (i, p) in self.peers.iter().enumerate() {
            if p.asn == me || p.asn == 0 {
                return bad(
                    format!("peer[{i}].asn"),
                    format!("AS{}: a peer cannot be this domain (or AS 0)", p.asn),
                );
            }
            if let Err(e) = check_address(&p.controller) {
                return bad(format!("peer[{i}].controller"), e);
            }
        }
        Ok(())
    }

    /// This domain as the pure core sees it: its neighbours, whether each runs a controller,
    /// and the domains beyond those that do not.
    pub fn view(&self) -> DomainView {
        let mut neighbours: Vec<NeighbourView> = self
            .neighbours
            .iter()
            .map(|n| NeighbourView {
                domain: n.asn,
                participates: n.controller.is_some(),
                beyond: n
                    .beyond
                    .iter()
                    .map(|b| SkipTarget {
                        domain: b.asn,
                        skipped: b.via.clone(),
                    })
                    .collect(),
            })
            .collect();
        neighbours.sort_by_key(|n| n.domain);
        let mut watched: Vec<Watch> = self.probes.iter().map(|p| p.watches.clone()).collect();
        watched.sort();
        watched.dedup();
        DomainView {
            domain: self.domain.asn,
            neighbours,
            watched,
        }
    }

    /// The controller address of a domain this one may ask: a neighbour, a domain beyond
    /// one, or a peer.
    pub fn controller_of(&self, domain: DomainId) -> Option<&str> {
        for n in &self.neighbours {
            if n.asn == domain
                && let Some(c) = &n.controller
            {
                return Some(c);
            }
            for b in &n.beyond {
                if b.asn == domain {
                    return Some(&b.controller);
                }
            }
        }
        self.peers
            .iter()
            .find(|p| p.asn == domain)
            .map(|p| p.controller.as_str())
    }

    /// Every participating domain this one knows (mesh mode asks them all), ascending.
    pub fn participants(&self) -> Vec<(DomainId, String)> {
        let mut out = std::collections::BTreeMap::new();
        for n in &self.neighbours {
            if let Some(c) = &n.controller {
                out.entry(n.asn).or_insert_with(|| c.clone());
            }
            for b in &n.beyond {
                out.entry(b.asn).or_insert_with(|| b.controller.clone());
            }
        }
        for p in &self.peers {
            out.entry(p.asn).or_insert_with(|| p.controller.clone());
        }
        out.remove(&self.domain.asn);
        out.into_iter().collect()
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
