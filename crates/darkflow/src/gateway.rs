//! The inline gateway's decision, without sockets or a clock: packets and `now` in, verdicts
//! and re-sends out.
//!
//! On a Linux gateway, netfilter queues a few packets to a process: every client SYN, every
//! SYN/ACK and RST, every packet of a flow already handed to the honeypot, and every packet
//! from the honeypot's interface. For each, the shell calls [`Gateway::decide`] and applies
//! the returned [`Verdict`]; between packets it calls [`Gateway::advance`] with the clock and
//! sends each [`Resend`] from [`Gateway::poll_resend`] with the honeypot mark. The shell
//! (`ashiato-darkflow-shells`, module `inline`) owns NFQUEUE, the raw socket and the clock.
//!
//! # Policy
//! * A SYN answered (SYN/ACK or RST) within T is never handed over: its copy is forgotten and
//!   every packet of the flow is accepted unchanged.
//! * A SYN unanswered at T (an answer at exactly T is in time) is handed over exactly once,
//!   at the first `now` past T: the copy kept of its first SYN is re-sent (retransmissions
//!   of the SYN neither queue nor hand over again).
//! * Packets of a handed-over flow pass: the client's are routed to the honeypot by the
//!   conntrack mark the re-sent SYN left; the honeypot's answers go back to the client.
//! * A real answer after T *cuts the flow off*: from the next packet on, the honeypot's
//!   packets of that flow are dropped and the client's are accepted with mark `mark + 1`,
//!   which routes them normally again.
//!
//! # Time
//! The caller's `now` is clamped to never go back (a wall clock can step backwards): the
//! gateway's clock is the largest `now` it was given.
//!
//! # Bounds
//! SYN copies are at most [`MAX_KEPT_SYN`] bytes each, and at most twice the detector's pending
//! bound are kept; hand-overs are at most the detector's DarkFlow bound (a DarkFlow found while
//! that many are handed over is not handed over and counted in
//! [`GatewayCounters::resend_failed`]). Both sets lose their entries when their flow is
//! answered, turns dark, or leaves the detector's table.

use std::collections::HashMap;
use std::net::IpAddr;

use ashiato_wire::LinkType;
use ashiato_wire::packet::{self, L4};

use crate::detector::{Config, Detector, Event};
use crate::flow::FlowId;

/// Most bytes of a SYN kept for re-sending (IP header with options, TCP header with options).
pub const MAX_KEPT_SYN: usize = 120;

/// Gateway settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GatewayConfig {
    /// Firewall mark of flows handed to the honeypot; `mark + 1` marks cut-off flows.
    pub mark: u32,
    /// Detector settings.
    pub detector: Config,
}

/// What to do with one queued packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Let it pass unchanged.
    Accept,
    /// Let it pass with this firewall mark (a cut-off flow's client packets: route normally).
    AcceptMarked(u32),
    /// Drop it (the honeypot's packets of a cut-off flow).
    Drop,
}

/// A SYN to send again, with the honeypot mark, so that the flow is routed to the honeypot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resend {
    /// The flow handed over.
    pub flow: FlowId,
    /// The SYN's IP packet, header included, TCP checksum recomputed.
    pub ip: Vec<u8>,
}

/// Running figures of the gateway.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GatewayCounters {
    /// Packets given a verdict.
    pub verdicts: u64,
    /// SYNs handed to the honeypot.
    pub handed_over: u64,
    /// Flows cut off after a late answer.
    pub cut_off: u64,
    /// Honeypot packets dropped because their flow was cut off.
    pub dropped: u64,
    /// DarkFlows not handed over: no SYN copy kept, the hand-over bound reached, or the shell
    /// could not send it ([`Gateway::resend_failed`]).
    pub resend_failed: u64,
    /// Queued packets that did not parse down to TCP (accepted unchanged).
    pub unparsed: u64,
    /// SYN copies held now.
    pub kept: u64,
    /// Flows handed over now (cut off or not).
    pub handed: u64,
}

/// See the [module documentation](self).
pub struct Gateway {
    cfg: GatewayConfig,
    det: Detector,
    /// The gateway's clock: the largest `now` seen.
    clock: u64,
    /// SYNs of pending flows, to re-send when they turn dark.
    kept: HashMap<FlowId, Vec<u8>>,
    /// Flows handed over, and whether they were cut off since.
    handed: HashMap<FlowId, bool>,
    /// Re-sends waiting for the shell.
    resends: Vec<Resend>,
    counters: GatewayCounters,
}

impl Gateway {
    /// A gateway with an empty detector.
    pub fn new(cfg: GatewayConfig) -> Self {
        Self {
            cfg,
            det: Detector::new(cfg.detector),
            clock: 0,
            kept: HashMap::new(),
            handed: HashMap::new(),
            resends: Vec::new(),
            counters: GatewayCounters::default(),
        }
    }

    /// The detector (read only).
    pub fn detector(&self) -> &Detector {
        &self.det
    }

    /// Running figures.
    pub fn counters(&self) -> GatewayCounters {
        GatewayCounters {
            kept: self.kept.len() as u64,
            handed: self.handed.len() as u64,
            ..self.counters
        }
    }

    /// When [`Self::advance`] next has work: the detector's next deadline.
    pub fn next_deadline(&self) -> Option<u64> {
        self.det.next_deadline()
    }

    fn tick(&mut self, now: u64) -> u64 {
        self.clock = self.clock.max(now);
        self.clock
    }

    /// The verdict for one queued IP packet (`ip`, header included) at `now`;
    /// `from_honeypot` says it came in on the honeypot's interface. Feeds the detector (not
    /// with the honeypot's packets: those are no answers of the real server) and hands every
    /// event to `on_event`.
    pub fn decide(
        &mut self,
        now: u64,
        ip: &[u8],
        from_honeypot: bool,
        on_event: &mut impl FnMut(&Event),
    ) -> Verdict {
        let now = self.tick(now);
        self.counters.verdicts += 1;
        let parsed = packet::parse(LinkType::Raw, ip).ok();
        let Some((p, flow)) = parsed.and_then(|p| flow_of(&p).map(|f| (p, f))) else {
            self.counters.unparsed += 1;
            return Verdict::Accept;
        };
        let (mut queued, mut answered, mut late) = (false, false, false);
        if !from_honeypot {
            let mut events = Vec::new();
            self.det.packet(now, &p, &mut |e| events.push(e));
            for e in &events {
                match e {
                    Event::Queued { .. } => queued = true,
                    Event::Answered { .. } => answered = true,
                    Event::LateAnswer { .. } => late = true,
                    _ => {}
                }
                self.observe(e);
                on_event(e);
            }
        }
        if queued
            && self.kept.len() < self.cfg.detector.max_pending.saturating_mul(2)
            && let Some(copy) = resendable(&p, ip)
        {
            self.kept.insert(flow, copy);
        }
        if answered {
            self.kept.remove(&flow);
            self.kept.remove(&flow.reversed());
        }
        // Only packets of flows handed to the honeypot can need more than an accept.
        let (key, from_client) = if self.handed.contains_key(&flow) {
            (flow, true)
        } else if self.handed.contains_key(&flow.reversed()) {
            (flow.reversed(), false)
        } else {
            return Verdict::Accept;
        };
        let Some(cut) = self.handed.get_mut(&key) else {
            return Verdict::Accept;
        };
        if late && !*cut {
            *cut = true;
            self.counters.cut_off += 1;
        }
        match (*cut, from_client, from_honeypot) {
            (true, true, _) => Verdict::AcceptMarked(self.cfg.mark.wrapping_add(1)),
            (true, false, true) => {
                self.counters.dropped += 1;
                Verdict::Drop
            }
            _ => Verdict::Accept,
        }
    }

    /// Moves the clock to `now`: SYNs unanswered for T become DarkFlows, whose kept SYNs wait
    /// in [`Self::poll_resend`]; DarkFlows that leave the detector's table are forgotten.
    pub fn advance(&mut self, now: u64, on_event: &mut impl FnMut(&Event)) {
        let now = self.tick(now);
        let mut events = Vec::new();
        self.det.advance(now, &mut |e| events.push(e));
        for e in &events {
            self.observe(e);
            on_event(e);
        }
    }

    /// The next SYN to re-send; the flow counts as handed over from now on (if the shell
    /// cannot send it, it says so with [`Self::resend_failed`]).
    pub fn poll_resend(&mut self) -> Option<Resend> {
        self.resends.pop()
    }

    /// The shell could not send `flow`'s SYN: the flow is not handed over after all.
    pub fn resend_failed(&mut self, flow: FlowId) {
        if self.handed.remove(&flow).is_some() {
            self.counters.handed_over -= 1;
            self.counters.resend_failed += 1;
        }
    }

    /// Keeps the SYN copies and the hand-over set in step with the detector.
    fn observe(&mut self, e: &Event) {
        match e {
            Event::Dark { record, .. } => {
                let f = record.flow;
                match self.kept.remove(&f) {
                    Some(ip)
                        if self.handed.len() < self.cfg.detector.max_flows
                            && !self.handed.contains_key(&f) =>
                    {
                        self.handed.insert(f, false);
                        self.counters.handed_over += 1;
                        self.resends.push(Resend { flow: f, ip });
                    }
                    _ => self.counters.resend_failed += 1,
                }
            }
            Event::Closed { record, .. } => {
                self.handed.remove(&record.flow);
                self.kept.remove(&record.flow);
            }
            _ => {}
        }
    }
}

/// A copy of a queued SYN fit to be sent again: its TCP checksum recomputed (a SYN from a
/// local or offloading interface may carry only a partial one).
fn resendable(p: &packet::Packet<'_>, ip: &[u8]) -> Option<Vec<u8>> {
    if ip.len() > MAX_KEPT_SYN {
        return None;
    }
    let (src, dst, off): (IpAddr, IpAddr, usize) = match p.ip {
        packet::Ip::V4(h) => (h.src.into(), h.dst.into(), h.header.len()),
        packet::Ip::V6(h) => (h.src.into(), h.dst.into(), 40 + h.upper_offset),
    };
    let mut v = ip.to_vec();
    let sum = ashiato_wire::build::l4_checksum(src, dst, 6, v.get(off..)?, 16);
    v.get_mut(off + 16..off + 18)?
        .copy_from_slice(&sum.to_be_bytes());
    Some(v)
}

/// The packet's TCP flow in its own direction.
fn flow_of(p: &packet::Packet<'_>) -> Option<FlowId> {
    let L4::Tcp(t) = p.l4 else { return None };
    let (src, dst): (IpAddr, IpAddr) = match p.ip {
        packet::Ip::V4(ip) => (ip.src.into(), ip.dst.into()),
        packet::Ip::V6(ip) => (ip.src.into(), ip.dst.into()),
    };
    Some(FlowId {
        src,
        sport: t.src_port,
        dst,
        dport: t.dst_port,
    })
}

#[cfg(test)]
mod tests;
