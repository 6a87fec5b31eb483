//! The audit: a communication history, packet by packet, against a claim list and the five
//! features. Sans-IO: the caller hands in frames with their position and time and takes a
//! [`Report`] at the end; reading files (or a live ring) is the shell's job.
//!
//! # Claim matching (BRIEF §4 (i))
//! Claims are indexed by victim address, so each packet costs two hash lookups whatever the
//! number of claims. A packet inside a claim's window, widened by the clock-skew allowance on
//! both sides, matches as:
//!
//! - `direct`: sent to the victim, same protocol, to the claimed port (when the packet has
//!   ports and the claim names one);
//! - `reflection`: sent with the victim's address as source to one of the claim's reflectors
//!   (DNS/NTP amplification, Smurf, SYN/ACK reflection);
//! - `spoofed-source`: sent with the victim's address as source, from the claimed port, and
//!   shaped like a request that makes its destination answer the victim (a TCP SYN, an ICMP
//!   echo request, or UDP to a port known for amplification), even to reflectors the victim
//!   did not list. The victim's own replies (SYN/ACK, RST, UDP from a non-amplifier port) are
//!   not counted: a host that legitimately talked to the victim did not spoof it.
//!
//! # Features (BRIEF §4 (ii))
//! See [`crate::features`]. TCP flow direction comes from the SYN when it was captured, else
//! the lower port is taken as the server's. A response body that starts in the segment after
//! its header is remembered per flow. Findings are aggregated per (feature, peer address,
//! peer port) with their first packets as evidence.
//!
//! # Bounds
//! The per-flow tables (direction, pending bodies, last request) are cleared when they reach
//! [`AuditConfig::max_flows`] entries; findings stop at [`AuditConfig::max_findings`] keys and
//! the IP → name map at [`AuditConfig::max_names`]; what was dropped is counted.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};

use ashiato_wire::LinkType;
use ashiato_wire::packet::{self, Ip, L4, ParseStats};

use crate::addr::is_internet;
use crate::claim::Claim;
use crate::claimlist::AgentList;
use crate::dns;
use crate::features::{self, Feature};

/// Bounds and tolerances of an audit.
#[derive(Clone, Copy, Debug)]
pub struct AuditConfig {
    /// Clock-skew allowance added to both ends of every claim window, ns.
    pub skew_ns: u64,
    /// A finding is "near" a matched claim when its packets are within this of the claim's
    /// window, ns (the seed looks for suspicious processes around the attack time).
    pub around_ns: u64,
    /// Evidence frames kept per claim match or finding.
    pub max_evidence: usize,
    /// Distinct flows kept per claim match or finding.
    pub max_flows_listed: usize,
    /// Entries of each per-flow table before it is cleared.
    pub max_flows: usize,
    /// Most distinct findings.
    pub max_findings: usize,
    /// Most IP → name entries.
    pub max_names: usize,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            skew_ns: 300 * NS,
            around_ns: 3600 * NS,
            max_evidence: 10,
            max_flows_listed: 10,
            max_flows: 1 << 20,
            max_findings: 100_000,
            max_names: 1 << 20,
        }
    }
}

const NS: u64 = 1_000_000_000;

/// Where a frame is: which input file (0-based) and its number in that file (1-based, like
/// Wireshark's `frame.number`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FramePos {
    /// Input file index.
    pub file: u32,
    /// Frame number in the file, from 1.
    pub frame: u64,
}

/// One direction of a conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Flow {
    /// IP protocol number.
    pub proto: u8,
    /// Source address and port (port 0 without ports).
    pub src: SocketAddr,
    /// Destination address and port.
    pub dst: SocketAddr,
}

/// What the packets behind a claim match or a finding have in common.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Evidence {
    /// Packets counted.
    pub packets: u64,
    /// Their length on the wire, summed.
    pub bytes: u64,
    /// Time of the first, ns.
    pub first_ns: u64,
    /// Time of the last, ns.
    pub last_ns: u64,
    /// The first few frames.
    pub frames: Vec<FramePos>,
    /// The first few distinct flows, each with the time it was first seen.
    pub flows: Vec<(Flow, u64)>,
    /// The last frame added, so that one packet that shows a feature twice counts once.
    last: Option<FramePos>,
}

impl Evidence {
    fn add(&mut self, cfg: &AuditConfig, pos: FramePos, ts: u64, len: u32, flow: Flow) {
        if self.last == Some(pos) {
            return;
        }
        self.last = Some(pos);
        if self.packets == 0 {
            self.first_ns = ts;
        }
        self.packets += 1;
        self.bytes += u64::from(len);
        self.first_ns = self.first_ns.min(ts);
        self.last_ns = self.last_ns.max(ts);
        if self.frames.len() < cfg.max_evidence {
            self.frames.push(pos);
        }
        if self.flows.len() < cfg.max_flows_listed && !self.flows.iter().any(|(f, _)| *f == flow) {
            self.flows.push((flow, ts));
        }
    }
}

/// The history matched a claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimMatch {
    /// The claim's index in the list given to [`Audit::new`].
    pub claim: usize,
    /// Packets per kind (`direct`, `reflection`, `spoofed-source`).
    pub kinds: BTreeMap<&'static str, u64>,
    /// The packets.
    pub evidence: Evidence,
}

/// A suspicious peer by one of the five features.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// Which feature.
    pub feature: Feature,
    /// The remote side (the server, resolver or scanned host).
    pub peer: SocketAddr,
    /// Its name from the DNS answers in the history, if one.
    pub fqdn: Option<String>,
    /// What was seen, distinct values (e.g. `GET /x.exe`, `NICK`, `NXDOMAIN a.example`).
    pub details: Vec<String>,
    /// Indexes of matched claims whose window (± [`AuditConfig::around_ns`]) overlaps it.
    pub near_claims: Vec<usize>,
    /// The packets.
    pub evidence: Evidence,
}

/// Counters of an audit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditStats {
    /// Frames handed in.
    pub frames: u64,
    /// Frames that did not parse to IP (by reason in `skipped`).
    pub unparsed: u64,
    /// Why frames were skipped.
    pub skipped: ParseStats,
    /// Per-flow tables cleared because they were full.
    pub flow_table_resets: u64,
    /// Findings not recorded because `max_findings` was reached.
    pub findings_dropped: u64,
    /// DNS answers not recorded because `max_names` was reached.
    pub names_dropped: u64,
}

/// The result of an audit.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Claims the history matched, in claim order.
    pub matches: Vec<ClaimMatch>,
    /// Findings, by feature then peer.
    pub findings: Vec<Finding>,
    /// Counters.
    pub stats: AuditStats,
}

#[derive(Default)]
struct FindingAcc {
    details: Vec<String>,
    evidence: Evidence,
}

/// A pending response body: the header ended at the end of a segment.
struct Pending {
    chunked: bool,
}

type FlowKey = (IpAddr, u16, IpAddr, u16);

/// The audit state; see the [module documentation](self).
pub struct Audit {
    cfg: AuditConfig,
    claims: Vec<Claim>,
    index: Index,
    matches: Vec<Option<ClaimMatch>>,
    findings: HashMap<(Feature, SocketAddr), FindingAcc>,
    names: HashMap<IpAddr, String>,
    /// Names that resolved (NOERROR), to recognise resolver search-list expansions.
    resolved: HashSet<String>,
    /// DNS errors per (resolver, name): merged into findings at the end.
    dns_errors: HashMap<(SocketAddr, String), (&'static str, Evidence)>,
    /// TCP connections whose SYN was seen: (client, cport, server, sport) → ().
    syn_seen: HashMap<FlowKey, ()>,
    /// Server → client flows whose response body has not started yet.
    pending: HashMap<FlowKey, Pending>,
    /// Client → server flows: the last request's target.
    last_uri: HashMap<FlowKey, String>,
    stats: AuditStats,
}

/// How claims are found for an address: by victim address (a plain claim list), or by keyed
/// hash (the center's published list, where the audit never learns a victim it did not talk
/// to).
enum Index {
    Plain(HashMap<IpAddr, Vec<u32>>),
    Hashed(Box<AgentList>),
}

/// UDP ports of services that answer a small request with a large reply (amplifiers): a
/// request to them with a spoofed source is a reflection attack (US-CERT TA14-017A).
const AMPLIFIER_PORTS: [u16; 18] = [
    7, 17, 19, 53, 69, 111, 123, 137, 161, 389, 520, 1900, 3283, 3702, 5353, 5683, 11211, 27015,
];

impl Audit {
    /// An audit of `claims`.
    pub fn new(mut claims: Vec<Claim>, cfg: AuditConfig) -> Audit {
        let mut by_victim: HashMap<IpAddr, Vec<u32>> = HashMap::new();
        for (i, c) in claims.iter_mut().enumerate() {
            c.reflectors.sort_unstable();
            by_victim.entry(c.victim).or_default().push(i as u32);
        }
        let n = claims.len();
        Audit {
            cfg,
            claims,
            index: Index::Plain(by_victim),
            matches: vec![None; n],
            findings: HashMap::new(),
            names: HashMap::new(),
            resolved: HashSet::new(),
            dns_errors: HashMap::new(),
            syn_seen: HashMap::new(),
            pending: HashMap::new(),
            last_uri: HashMap::new(),
            stats: AuditStats::default(),
        }
    }

    /// An audit of the center's published list (applied and verified by `list`). Claims are
    /// found by keyed hash; [`Claim::victim`] of these claims is unspecified.
    pub fn hashed(list: AgentList, cfg: AuditConfig) -> Audit {
        let claims: Vec<Claim> = list
            .claims()
            .iter()
            .map(|p| Claim {
                id: p.id.clone(),
                victim: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                protocol: p.protocol,
                port: None,
                from_ns: p.from_ns,
                to_ns: p.to_ns,
                reflectors: Vec::new(),
            })
            .collect();
        let mut a = Audit::new(claims, cfg);
        a.index = Index::Hashed(Box::new(list));
        a
    }

    /// Claims whose victim is `addr` (and port, where the claim names one).
    fn victim_claims(&self, addr: IpAddr, port: Option<u16>, ts: u64) -> Vec<u32> {
        match &self.index {
            Index::Plain(m) => m
                .get(&addr)
                .into_iter()
                .flatten()
                .copied()
                .filter(|&i| {
                    let c = &self.claims[i as usize];
                    port.is_none() || c.port.is_none_or(|p| Some(p) == port)
                })
                .collect(),
            Index::Hashed(l) => l
                .victim_of(addr, port, ts)
                .into_iter()
                .map(|i| i as u32)
                .collect(),
        }
    }

    fn is_reflector(&self, i: u32, addr: IpAddr, ts: u64) -> bool {
        match &self.index {
            Index::Plain(_) => self.claims[i as usize]
                .reflectors
                .binary_search(&addr)
                .is_ok(),
            Index::Hashed(l) => l.is_reflector(i as usize, addr, ts),
        }
    }

    /// The claims, in the order given.
    pub fn claims(&self) -> &[Claim] {
        &self.claims
    }

    /// Audits one frame. `orig_len` is its length on the wire.
    pub fn frame(&mut self, pos: FramePos, ts_ns: u64, link: LinkType, orig_len: u32, data: &[u8]) {
        self.stats.frames += 1;
        let pkt = match packet::parse(link, data) {
            Ok(p) => p,
            Err(e) => {
                self.stats.unparsed += 1;
                self.stats.skipped.record(&e);
                return;
            }
        };
        let (src, dst, proto) = (pkt.ip.src(), pkt.ip.dst(), pkt.ip.protocol());
        let l4_bytes = match pkt.ip {
            Ip::V4(h) => h.payload,
            Ip::V6(h) => h.payload.get(h.upper_offset..).unwrap_or(&[]),
        };
        let (sport, dport, payload) = match pkt.l4 {
            L4::Tcp(t) => (
                t.src_port,
                t.dst_port,
                l4_bytes
                    .get(usize::from(t.header_len).max(20)..)
                    .unwrap_or(&[]),
            ),
            L4::Udp(u) => (u.src_port, u.dst_port, l4_bytes.get(8..).unwrap_or(&[])),
            _ => (0, 0, &[][..]),
        };
        let flow = Flow {
            proto,
            src: SocketAddr::new(src, sport),
            dst: SocketAddr::new(dst, dport),
        };
        let has_ports = matches!(pkt.l4, L4::Tcp(_) | L4::Udp(_));

        if !self.claims.is_empty() {
            self.match_claims(&pkt.l4, flow, has_ports, pos, ts_ns, orig_len);
        }

        match pkt.l4 {
            L4::Tcp(t) => {
                if t.flags.is_syn_only() {
                    self.bounded_insert_syn((src, sport, dst, dport));
                }
                if features::is_smb_sql_port(dport) && is_internet(dst) && !same_subnet(src, dst) {
                    self.find(
                        Feature::SmbSqlPorts,
                        flow.dst,
                        format!("tcp/{dport}"),
                        pos,
                        ts_ns,
                        orig_len,
                        flow,
                    );
                }
                if !payload.is_empty() {
                    self.tcp_payload(flow, payload, pos, ts_ns, orig_len);
                }
            }
            L4::Udp(_) => {
                if features::is_smb_sql_port(dport) && is_internet(dst) && !same_subnet(src, dst) {
                    self.find(
                        Feature::SmbSqlPorts,
                        flow.dst,
                        format!("udp/{dport}"),
                        pos,
                        ts_ns,
                        orig_len,
                        flow,
                    );
                }
                if sport == 53 {
                    self.dns_response(flow, payload, pos, ts_ns, orig_len);
                }
            }
            _ => {}
        }
    }

    fn match_claims(
        &mut self,
        l4: &L4,
        flow: Flow,
        has_ports: bool,
        pos: FramePos,
        ts: u64,
        len: u32,
    ) {
        let skew = self.cfg.skew_ns;
        let in_window =
            |c: &Claim| ts.saturating_add(skew) >= c.from_ns && ts <= c.to_ns.saturating_add(skew);
        let port = |p: u16| has_ports.then_some(p);
        for i in self.victim_claims(flow.dst.ip(), port(flow.dst.port()), ts) {
            let c = &self.claims[i as usize];
            if c.protocol.matches(flow.proto) && in_window(c) {
                record(
                    &mut self.matches,
                    &self.cfg,
                    i as usize,
                    "direct",
                    pos,
                    ts,
                    len,
                    flow,
                );
            }
        }
        // Sent with the victim's address as source: reflection to a listed reflector (any
        // source port), or a spoofed request from the claimed port.
        let mut spoofed = self.victim_claims(flow.src.ip(), None, ts);
        let from_port = self.victim_claims(flow.src.ip(), port(flow.src.port()), ts);
        for &i in &from_port {
            if !spoofed.contains(&i) {
                spoofed.push(i);
            }
        }
        for i in spoofed {
            let c = &self.claims[i as usize];
            if !c.protocol.matches(flow.proto) || !in_window(c) || flow.dst.ip() == flow.src.ip() {
                continue;
            }
            let kind = if self.is_reflector(i, flow.dst.ip(), ts) {
                "reflection"
            } else if from_port.contains(&i) && elicits_reply(l4, flow) {
                "spoofed-source"
            } else {
                continue;
            };
            record(
                &mut self.matches,
                &self.cfg,
                i as usize,
                kind,
                pos,
                ts,
                len,
                flow,
            );
        }
    }

    fn bounded_insert_syn(&mut self, k: FlowKey) {
        if self.syn_seen.len() >= self.cfg.max_flows {
            self.syn_seen.clear();
            self.stats.flow_table_resets += 1;
        }
        self.syn_seen.insert(k, ());
    }

    /// Whether this TCP segment goes from the client to the server.
    fn client_to_server(&self, f: Flow) -> bool {
        let (s, d) = (f.src, f.dst);
        if self
            .syn_seen
            .contains_key(&(s.ip(), s.port(), d.ip(), d.port()))
        {
            return true;
        }
        if self
            .syn_seen
            .contains_key(&(d.ip(), d.port(), s.ip(), s.port()))
        {
            return false;
        }
        d.port() <= s.port()
    }

    fn tcp_payload(&mut self, flow: Flow, p: &[u8], pos: FramePos, ts: u64, len: u32) {
        let key = (
            flow.src.ip(),
            flow.src.port(),
            flow.dst.ip(),
            flow.dst.port(),
        );
        if self.client_to_server(flow) {
            let server = flow.dst;
            if let Some(r) = features::http_request(p) {
                if features::is_executable_name(&r.uri) {
                    self.find(
                        Feature::HttpExe,
                        server,
                        format!("{} {}", r.method, r.uri),
                        pos,
                        ts,
                        len,
                        flow,
                    );
                }
                if self.last_uri.len() >= self.cfg.max_flows {
                    self.last_uri.clear();
                    self.stats.flow_table_resets += 1;
                }
                self.last_uri.insert(key, format!("{} {}", r.method, r.uri));
            } else if server.port() >= 1024
                && let Some(cmd) = features::irc_command(p)
            {
                self.find(Feature::Irc, server, cmd.to_string(), pos, ts, len, flow);
            }
            return;
        }
        let server = flow.src;
        let back = (
            flow.dst.ip(),
            flow.dst.port(),
            flow.src.ip(),
            flow.src.port(),
        );
        if let Some(r) = features::http_response(p) {
            self.pending.remove(&key);
            let uri = self.last_uri.get(&back).cloned();
            if let Some(name) = r
                .filename
                .as_deref()
                .filter(|n| features::is_executable_name(n))
            {
                let what = uri.clone().unwrap_or_else(|| "response".into());
                self.find(
                    Feature::HttpExe,
                    server,
                    format!("{what} (file {name})"),
                    pos,
                    ts,
                    len,
                    flow,
                );
            }
            match r.body_offset {
                Some(o) if o < p.len() => {
                    self.body(flow, server, &p[o..], r.chunked, uri, pos, ts, len)
                }
                _ => {
                    if self.pending.len() >= self.cfg.max_flows {
                        self.pending.clear();
                        self.stats.flow_table_resets += 1;
                    }
                    self.pending.insert(key, Pending { chunked: r.chunked });
                }
            }
        } else if let Some(pend) = self.pending.remove(&key) {
            let uri = self.last_uri.get(&back).cloned();
            self.body(flow, server, p, pend.chunked, uri, pos, ts, len);
        } else if server.port() >= 1024
            && let Some(cmd) = features::irc_command(p)
        {
            self.find(Feature::Irc, server, cmd.to_string(), pos, ts, len, flow);
        } else if matches!(server.port(), 25 | 465 | 587 | 2525)
            && let Some(e) = features::smtp_error(p)
        {
            self.find(Feature::SmtpError, server, e.text, pos, ts, len, flow);
        }
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "the frame's position, time and length travel with it"
    )]
    fn body(
        &mut self,
        flow: Flow,
        server: SocketAddr,
        body: &[u8],
        chunked: bool,
        uri: Option<String>,
        pos: FramePos,
        ts: u64,
        len: u32,
    ) {
        if let Some(kind) = features::executable_magic(body, chunked) {
            let what = uri.unwrap_or_else(|| "response".into());
            self.find(
                Feature::HttpExe,
                server,
                format!("{what} (body is {kind})"),
                pos,
                ts,
                len,
                flow,
            );
        }
    }

    fn dns_response(&mut self, flow: Flow, p: &[u8], pos: FramePos, ts: u64, len: u32) {
        let Some(m) = dns::parse(p) else { return };
        if !m.response {
            return;
        }
        for a in m.addresses {
            if self.names.len() >= self.cfg.max_names && !self.names.contains_key(&a) {
                self.stats.names_dropped += 1;
                continue;
            }
            self.names.insert(a, m.qname.clone());
        }
        let rc = match m.rcode {
            dns::RCODE_NXDOMAIN => "NXDOMAIN",
            dns::RCODE_SERVFAIL => "SERVFAIL",
            0 => {
                if self.resolved.len() < self.cfg.max_names {
                    self.resolved.insert(m.qname);
                }
                return;
            }
            _ => return,
        };
        let key = (flow.src, m.qname);
        if !self.dns_errors.contains_key(&key) && self.dns_errors.len() >= self.cfg.max_findings {
            self.stats.findings_dropped += 1;
            return;
        }
        let cfg = self.cfg;
        let e = self
            .dns_errors
            .entry(key)
            .or_insert((rc, Evidence::default()));
        e.1.add(&cfg, pos, ts, len, flow);
    }

    /// Moves the DNS errors into findings, leaving out names a resolver's search list made
    /// from a name that resolved (`www.example.org.corp.example` after `www.example.org`
    /// worked): every host shows those.
    fn merge_dns_errors(&mut self) {
        let mut errors: Vec<_> = std::mem::take(&mut self.dns_errors).into_iter().collect();
        errors.sort_by(|a, b| (a.1.1.first_ns, &a.0).cmp(&(b.1.1.first_ns, &b.0)));
        for ((peer, qname), (rc, ev)) in errors {
            let expansion = qname
                .match_indices('.')
                .any(|(i, _)| self.resolved.contains(&qname[..i]));
            if expansion {
                continue;
            }
            let acc = self.findings.entry((Feature::DnsError, peer)).or_default();
            if acc.details.len() < self.cfg.max_evidence {
                acc.details.push(format!("{rc} {qname}"));
            }
            merge(&mut acc.evidence, ev, &self.cfg);
        }
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "the frame's position, time and length travel with it"
    )]
    fn find(
        &mut self,
        feature: Feature,
        peer: SocketAddr,
        detail: String,
        pos: FramePos,
        ts: u64,
        len: u32,
        flow: Flow,
    ) {
        let n = self.findings.len();
        let acc = match self.findings.get_mut(&(feature, peer)) {
            Some(a) => a,
            None if n >= self.cfg.max_findings => {
                self.stats.findings_dropped += 1;
                return;
            }
            None => self.findings.entry((feature, peer)).or_default(),
        };
        if acc.details.len() < self.cfg.max_evidence && !acc.details.contains(&detail) {
            acc.details.push(detail);
        }
        acc.evidence.add(&self.cfg, pos, ts, len, flow);
    }

    /// Ends the audit.
    pub fn finish(mut self) -> Report {
        self.merge_dns_errors();
        let matches: Vec<ClaimMatch> = self.matches.into_iter().flatten().collect();
        let around = self.cfg.around_ns;
        let mut findings: Vec<Finding> = self
            .findings
            .into_iter()
            .map(|((feature, peer), acc)| {
                let near_claims = matches
                    .iter()
                    .filter(|m| {
                        let c = &self.claims[m.claim];
                        acc.evidence.last_ns.saturating_add(around) >= c.from_ns
                            && acc.evidence.first_ns <= c.to_ns.saturating_add(around)
                    })
                    .map(|m| m.claim)
                    .collect();
                Finding {
                    feature,
                    peer,
                    fqdn: self.names.get(&peer.ip()).cloned(),
                    details: acc.details,
                    near_claims,
                    evidence: acc.evidence,
                }
            })
            .collect();
        findings.sort_by_key(|a| (a.feature, a.peer));
        Report {
            matches,
            findings,
            stats: self.stats,
        }
    }

    /// The name the history's DNS answers gave an address, if any (so far).
    pub fn name_of(&self, a: IpAddr) -> Option<&str> {
        self.names.get(&a).map(String::as_str)
    }
}

/// Adds one evidence record to another (bounded like [`Evidence::add`]).
fn merge(into: &mut Evidence, from: Evidence, cfg: &AuditConfig) {
    if into.packets == 0 {
        into.first_ns = from.first_ns;
    }
    into.packets += from.packets;
    into.bytes += from.bytes;
    into.first_ns = into.first_ns.min(from.first_ns);
    into.last_ns = into.last_ns.max(from.last_ns);
    for f in from.frames {
        if into.frames.len() < cfg.max_evidence && !into.frames.contains(&f) {
            into.frames.push(f);
        }
    }
    into.frames.sort_unstable();
    for (fl, t) in from.flows {
        if into.flows.len() < cfg.max_flows_listed && !into.flows.iter().any(|(x, _)| *x == fl) {
            into.flows.push((fl, t));
        }
    }
}

#[allow(
    clippy::too_many_arguments,
    reason = "the frame's position, time and length travel with it"
)]
fn record(
    matches: &mut [Option<ClaimMatch>],
    cfg: &AuditConfig,
    i: usize,
    kind: &'static str,
    pos: FramePos,
    ts: u64,
    len: u32,
    flow: Flow,
) {
    let m = matches[i].get_or_insert_with(|| ClaimMatch {
        claim: i,
        kinds: BTreeMap::new(),
        evidence: Evidence::default(),
    });
    *m.kinds.entry(kind).or_default() += 1;
    m.evidence.add(cfg, pos, ts, len, flow);
}

/// Both addresses in one IPv4 /24 or IPv6 /64: the host's own network (a public LAN's NetBIOS
/// broadcasts are not connections to the Internet).
fn same_subnet(a: IpAddr, b: IpAddr) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => a.octets()[..3] == b.octets()[..3],
        (IpAddr::V6(a), IpAddr::V6(b)) => a.segments()[..4] == b.segments()[..4],
        _ => false,
    }
}

/// A packet that makes its destination answer its (spoofed) source: a TCP SYN, an ICMP or
/// ICMPv6 echo request, UDP to an amplifier port.
fn elicits_reply(l4: &L4, flow: Flow) -> bool {
    match l4 {
        L4::Tcp(t) => t.flags.is_syn_only(),
        L4::Udp(_) => AMPLIFIER_PORTS.contains(&flow.dst.port()),
        L4::Icmp { ty, .. } => *ty == 8,
        L4::Icmpv6 { ty, .. } => *ty == 128,
        _ => false,
    }
}
