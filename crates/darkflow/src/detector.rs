//! The DarkFlow detector: TCP segments and time in, events out. No IO, no clock.
//!
//! # Definition
//! A flow is (client address, client port, server address, server port). A SYN (SYN set; ACK,
//! RST and FIN clear) from the client opens a *pending* entry in the delay queue at `t0`. A
//! SYN/ACK or an RST (with or without ACK) from the server side at a time `t <= t0 + T`
//! deletes it ("answered"). If none came by then, the flow becomes a **DarkFlow** as soon as
//! time passes `t0 + T`, and moves to the DarkFlow table. More SYNs on a pending flow are TCP
//! retransmissions (same ports) and are counted on it; a SYN on a new source port is a new
//! flow. An answer that reaches a DarkFlow marks it *answered late*. A DarkFlow expires
//! `expiry` after its last packet (or after it became a DarkFlow, if that is later).
//!
//! # Time
//! Every call carries a timestamp in nanoseconds (packet time offline, the clock live). The
//! detector's clock only moves forward: a timestamp older than the clock is handled at the
//! clock's time and counted in [`Counters::out_of_order`]. So a capture replays to the same
//! events every time, and bad timestamps cannot corrupt the time-ordered tables.
//!
//! # Same-timestamp reordering
//! Captures merged from two taps can hold a SYN/ACK before its SYN with the same timestamp.
//! An answer that matches nothing waits in a small *orphan* table for `reorder` (default 0:
//! until the clock moves past its timestamp); a SYN that finds its answer there is answered
//! with delay 0. Orphans that wait out the window are *unsolicited* answers (backscatter).
//!
//! # Bounds
//! Each of the three tables (per address family) has a fixed maximum number of entries; see
//! [`Config`]. Full delay queue: the new SYN is not tracked and counted in
//! [`Counters::untracked`] (the entries already queued keep their exact answer). Full DarkFlow
//! table: the least recently active DarkFlow is closed early and counted in
//! [`Counters::evicted`]. Full orphan table: the orphan is reported as unsolicited at once.
//! [`Detector::memory_bound`] gives the bytes all tables can reach.

use ashiato_wire::packet::{Ip, L4, Packet, TcpFlags};
use foldhash::fast::FixedState;
use serde::Serialize;

use crate::flow::{Addr, FlowId, Tuple};
use crate::table::{Full, TimedTable};

/// Nanoseconds per second.
pub const NS: u64 = 1_000_000_000;

/// Detector settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// T: how long a SYN waits for an answer, in ns (default 5 s, at most
    /// [`MAX_TIMEOUT_NS`]).
    pub timeout_ns: u64,
    /// How long a DarkFlow stays in the table after its last packet, in ns (default 60 s).
    pub expiry_ns: u64,
    /// How long an unmatched answer waits for its SYN, in ns (default 0: same timestamp).
    pub reorder_ns: u64,
    /// Maximum pending SYNs per address family.
    pub max_pending: usize,
    /// Maximum DarkFlows per address family.
    pub max_flows: usize,
    /// Maximum unmatched answers waiting for their SYN per address family.
    pub max_orphans: usize,
    /// Seed of the tables' hash. Live services should pass a random one (flood keys are
    /// chosen by attackers); a fixed one makes nothing but the memory layout reproducible.
    pub hash_seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            timeout_ns: 5 * NS,
            expiry_ns: 60 * NS,
            reorder_ns: 0,
            max_pending: 4 << 20,
            max_flows: 1 << 20,
            max_orphans: 1 << 16,
            hash_seed: 0x6173_6869_6174_6f21,
        }
    }
}

/// What answered a SYN.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerKind {
    /// SYN and ACK.
    SynAck,
    /// RST, with or without ACK.
    Rst,
}

/// An answer that came after T.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Late {
    /// What it was.
    pub kind: AnswerKind,
    /// When it came (ns).
    pub ts: u64,
}

/// A DarkFlow, as reported when it is found, answered late, and closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Record {
    /// The flow, client first.
    pub flow: FlowId,
    /// Time of the first SYN (ns).
    pub first_syn: u64,
    /// Time of the flow's last packet so far (ns).
    pub last_packet: u64,
    /// SYNs seen from the client before it became a DarkFlow (1 + retransmissions).
    pub syns_at_dark: u32,
    /// SYNs seen from the client in total.
    pub syns: u32,
    /// Packets of the flow in both directions, SYNs included.
    pub packets: u32,
    /// The first answer after T, if any.
    pub late: Option<Late>,
    /// False when the input ended less than T after the first SYN: no answer was seen, but
    /// the whole window was not observed either.
    pub complete: bool,
}

/// What the detector reports. Times are ns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A SYN opened a pending entry ("add" in the delay-queue plot).
    Queued {
        /// When.
        ts: u64,
    },
    /// A pending entry was answered in time ("delete").
    Answered {
        /// When the answer came.
        ts: u64,
        /// Answer time minus first SYN time.
        delay_ns: u64,
        /// SYN/ACK or RST.
        kind: AnswerKind,
    },
    /// A flow became a DarkFlow ("forward"), at `first_syn + T` (or at the end of input).
    Dark {
        /// When.
        ts: u64,
        /// The flow.
        record: Record,
    },
    /// A DarkFlow got its first answer after T.
    LateAnswer {
        /// When.
        ts: u64,
        /// The flow, with [`Record::late`] set.
        record: Record,
    },
    /// A DarkFlow left the table: expired, evicted, or the input ended.
    Closed {
        /// When.
        ts: u64,
        /// The flow's final counts.
        record: Record,
        /// Why.
        reason: CloseReason,
    },
    /// A SYN the delay queue had no room for.
    Untracked {
        /// When.
        ts: u64,
        /// The flow.
        flow: FlowId,
    },
    /// A SYN/ACK or RST that answered no SYN (backscatter of spoofed traffic, or a SYN
    /// before the capture began). `flow` is oriented as the SYN would have been.
    Unsolicited {
        /// When it came.
        ts: u64,
        /// The flow, client (the answer's destination) first.
        flow: FlowId,
        /// What it was.
        kind: AnswerKind,
    },
}

/// Why a DarkFlow left the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// `expiry` after its last packet.
    Expired,
    /// The table was full and this was the least recently active entry.
    Evicted,
    /// The input ended.
    End,
}

/// Running totals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// TCP segments seen.
    pub segments: u64,
    /// SYNs seen (all of them, retransmissions included).
    pub syns: u64,
    /// SYNs that opened a pending entry.
    pub queued: u64,
    /// SYNs on a pending flow.
    pub retransmissions: u64,
    /// Pending entries answered by a SYN/ACK.
    pub answered_synack: u64,
    /// Pending entries answered by an RST.
    pub answered_rst: u64,
    /// Flows that became DarkFlows (including `incomplete`).
    pub darkflows: u64,
    /// DarkFlows found at the end of input with less than T observed.
    pub incomplete: u64,
    /// DarkFlows answered late.
    pub late_answers: u64,
    /// DarkFlows that expired.
    pub expired: u64,
    /// DarkFlows closed early because the table was full.
    pub evicted: u64,
    /// SYNs not tracked because the delay queue was full.
    pub untracked: u64,
    /// Answers that matched no SYN.
    pub unsolicited: u64,
    /// Segments whose timestamp was older than the clock.
    pub out_of_order: u64,
    /// Pending entries now.
    pub pending: u64,
    /// DarkFlows in the table now.
    pub flows: u64,
    /// Most pending entries at once.
    pub pending_peak: u64,
}

/// A pending SYN's value; with its 12-byte IPv4 key, time and links the slot is 40 bytes.
#[derive(Clone, Copy, Debug)]
struct Pending {
    syns: u32,
    /// Last SYN, in µs after the first (T is at most [`MAX_TIMEOUT_NS`]).
    last_us: u32,
}

/// Largest T: the last SYN of a pending entry is kept as a 32-bit µs offset.
pub const MAX_TIMEOUT_NS: u64 = 3600 * NS;

#[derive(Clone, Copy, Debug)]
struct Dark {
    first_syn: u64,
    last_packet: u64,
    syns_at_dark: u32,
    syns: u32,
    packets: u32,
    late: Option<Late>,
    complete: bool,
}

impl Dark {
    fn record<A: Addr>(&self, t: Tuple<A>) -> Record {
        Record {
            flow: t.id(),
            first_syn: self.first_syn,
            last_packet: self.last_packet,
            syns_at_dark: self.syns_at_dark,
            syns: self.syns,
            packets: self.packets,
            late: self.late,
            complete: self.complete,
        }
    }
}

type Hasher = FixedState;

/// The three tables of one address family.
struct Family<A> {
    pending: TimedTable<Tuple<A>, Pending, Hasher>,
    dark: TimedTable<Tuple<A>, Dark, Hasher>,
    orphans: TimedTable<Tuple<A>, AnswerKind, Hasher>,
}

impl<A: Addr> Family<A> {
    fn new(cfg: &Config, salt: u64) -> Self {
        let h = |n: u64| {
            FixedState::with_seed(cfg.hash_seed ^ salt ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        };
        Self {
            pending: TimedTable::new(cfg.max_pending, h(1)),
            dark: TimedTable::new(cfg.max_flows, h(2)),
            orphans: TimedTable::new(cfg.max_orphans, h(3)),
        }
    }

    /// Counts a packet on the DarkFlow `t`, if it is one, and moves it to the table's back.
    fn dark_packet(&mut self, t: &Tuple<A>, ts: u64) -> Option<&mut Dark> {
        let d = self.dark.touch(t, ts)?;
        d.packets = d.packets.saturating_add(1);
        d.last_packet = ts;
        Some(d)
    }

    fn max_bytes(&self) -> u64 {
        self.pending.max_bytes() + self.dark.max_bytes() + self.orphans.max_bytes()
    }

    fn heap_bytes(&self) -> u64 {
        self.pending.heap_bytes() + self.dark.heap_bytes() + self.orphans.heap_bytes()
    }
}

/// Bytes per entry of each table, for the memory statement.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct EntrySizes {
    /// Pending SYN, IPv4.
    pub pending_v4: f64,
    /// Pending SYN, IPv6.
    pub pending_v6: f64,
    /// DarkFlow, IPv4.
    pub flow_v4: f64,
    /// DarkFlow, IPv6.
    pub flow_v6: f64,
}

/// The detector. See the module docs for the definition it implements.
pub struct Detector {
    cfg: Config,
    now: u64,
    started: bool,
    /// No entry of any table is due before this time: an [`Detector::advance`] to a time at
    /// or before it only moves the clock. Lowered by every insert; removals and touches only
    /// make entries due later, so it stays a lower bound until the next full pass resets it.
    /// On mixed traffic most packets carry a new timestamp, and this saves six table-head
    /// checks on each (callgrind: about a tenth of the detector's instructions).
    quiet_until: u64,
    v4: Family<u32>,
    v6: Family<[u8; 16]>,
    counters: Counters,
}

/// A TCP segment as the detector needs it.
#[derive(Clone, Copy, Debug)]
pub struct Segment<A> {
    /// Timestamp (ns).
    pub ts: u64,
    /// Source to destination, as sent.
    pub tuple: Tuple<A>,
    /// TCP flags.
    pub flags: TcpFlags,
}

impl Detector {
    /// A detector with empty tables.
    pub fn new(cfg: Config) -> Self {
        let cfg = Config {
            timeout_ns: cfg.timeout_ns.min(MAX_TIMEOUT_NS),
            ..cfg
        };
        Self {
            v4: Family::new(&cfg, 4),
            v6: Family::new(&cfg, 6),
            cfg,
            now: 0,
            started: false,
            quiet_until: 0,
            counters: Counters::default(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The clock: the latest timestamp seen.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Running totals.
    pub fn counters(&self) -> Counters {
        let mut c = self.counters;
        c.pending = (self.v4.pending.len() + self.v6.pending.len()) as u64;
        c.flows = (self.v4.dark.len() + self.v6.dark.len()) as u64;
        c
    }

    /// Bytes per table entry (slot plus index share).
    pub fn entry_sizes() -> EntrySizes {
        EntrySizes {
            pending_v4: TimedTable::<Tuple<u32>, Pending, Hasher>::bytes_per_entry(),
            pending_v6: TimedTable::<Tuple<[u8; 16]>, Pending, Hasher>::bytes_per_entry(),
            flow_v4: TimedTable::<Tuple<u32>, Dark, Hasher>::bytes_per_entry(),
            flow_v6: TimedTable::<Tuple<[u8; 16]>, Dark, Hasher>::bytes_per_entry(),
        }
    }

    /// Upper bound on the heap bytes of all tables when every one is full.
    pub fn memory_bound(&self) -> u64 {
        self.v4.max_bytes() + self.v6.max_bytes()
    }

    /// Heap bytes the tables hold now.
    pub fn heap_bytes(&self) -> u64 {
        self.v4.heap_bytes() + self.v6.heap_bytes()
    }

    /// When the next pending entry becomes a DarkFlow (ns), if any is pending: a live shell
    /// sleeps until then.
    pub fn next_deadline(&self) -> Option<u64> {
        older(self.v4.pending.oldest_time(), self.v6.pending.oldest_time())
            .map(|(_, t)| t.saturating_add(self.cfg.timeout_ns))
    }

    /// Feeds one parsed packet. Anything but TCP over IP is ignored; so are fragments and
    /// truncated TCP headers (they carry no usable flags).
    pub fn packet(&mut self, ts: u64, p: &Packet<'_>, out: &mut impl FnMut(Event)) {
        let L4::Tcp(tcp) = p.l4 else { return };
        match p.ip {
            Ip::V4(ip) => self.segment_v4(
                Segment {
                    ts,
                    tuple: Tuple {
                        src: u32::from(ip.src),
                        dst: u32::from(ip.dst),
                        sport: tcp.src_port,
                        dport: tcp.dst_port,
                    },
                    flags: tcp.flags,
                },
                out,
            ),
            Ip::V6(ip) => self.segment_v6(
                Segment {
                    ts,
                    tuple: Tuple {
                        src: ip.src.octets(),
                        dst: ip.dst.octets(),
                        sport: tcp.src_port,
                        dport: tcp.dst_port,
                    },
                    flags: tcp.flags,
                },
                out,
            ),
        }
    }

    /// Feeds one IPv4 TCP segment.
    pub fn segment_v4(&mut self, s: Segment<u32>, out: &mut impl FnMut(Event)) {
        let ts = self.clock(s.ts, out);
        let Self {
            cfg,
            v4,
            counters,
            quiet_until,
            ..
        } = self;
        segment(cfg, v4, counters, quiet_until, ts, s.tuple, s.flags, out);
    }

    /// Feeds one IPv6 TCP segment.
    pub fn segment_v6(&mut self, s: Segment<[u8; 16]>, out: &mut impl FnMut(Event)) {
        let ts = self.clock(s.ts, out);
        let Self {
            cfg,
            v6,
            counters,
            quiet_until,
            ..
        } = self;
        segment(cfg, v6, counters, quiet_until, ts, s.tuple, s.flags, out);
    }

    /// Moves the clock to `now` (ignored if older) and reports what that time decides.
    pub fn advance(&mut self, now: u64, out: &mut impl FnMut(Event)) {
        if self.started && now <= self.now {
            // Everything due before the clock was decided when it got there, and what was
            // added since is due later.
            return;
        }
        self.started = true;
        self.now = now;
        // Deadlines strictly before `now` are decided, so nothing is due yet.
        if now <= self.quiet_until {
            return;
        }
        let Self {
            cfg,
            v4,
            v6,
            counters,
            ..
        } = self;
        // Deadlines strictly before `now` are decided: an answer at exactly t0 + T is in time.
        while let Some((four, t)) = older(v4.pending.oldest_time(), v6.pending.oldest_time()) {
            let deadline = t.saturating_add(cfg.timeout_ns);
            if deadline >= now {
                break;
            }
            if four {
                go_dark(v4, counters, deadline, true, out);
            } else {
                go_dark(v6, counters, deadline, true, out);
            }
        }
        expire_flows(cfg, v4, counters, now, out);
        expire_flows(cfg, v6, counters, now, out);
        expire_orphans(cfg, v4, counters, now, out);
        expire_orphans(cfg, v6, counters, now, out);
        self.quiet_until = self.next_due();
    }

    /// The earliest time an entry of any table is due (`u64::MAX` if all are empty).
    fn next_due(&self) -> u64 {
        let c = &self.cfg;
        let due = |t: Option<u64>, age: u64| t.map_or(u64::MAX, |t| t.saturating_add(age));
        due(self.v4.pending.oldest_time(), c.timeout_ns)
            .min(due(self.v6.pending.oldest_time(), c.timeout_ns))
            .min(due(self.v4.dark.oldest_time(), c.expiry_ns))
            .min(due(self.v6.dark.oldest_time(), c.expiry_ns))
            .min(due(self.v4.orphans.oldest_time(), c.reorder_ns))
            .min(due(self.v6.orphans.oldest_time(), c.reorder_ns))
    }

    /// The input ended at `end` (ns): decides everything still open. Pending SYNs become
    /// DarkFlows marked incomplete (no answer seen, but less than T observed), then every
    /// DarkFlow is closed and every orphan reported.
    pub fn finish(&mut self, end: u64, out: &mut impl FnMut(Event)) {
        self.advance(end, out);
        let end = self.now;
        let Self {
            cfg,
            v4,
            v6,
            counters,
            ..
        } = self;
        while let Some((four, _)) = older(v4.pending.oldest_time(), v6.pending.oldest_time()) {
            if four {
                go_dark(v4, counters, end, false, out);
            } else {
                go_dark(v6, counters, end, false, out);
            }
        }
        close_all(v4, end, out);
        close_all(v6, end, out);
        expire_orphans(cfg, v4, counters, u64::MAX, out);
        expire_orphans(cfg, v6, counters, u64::MAX, out);
        self.quiet_until = self.next_due();
    }

    fn clock(&mut self, ts: u64, out: &mut impl FnMut(Event)) -> u64 {
        self.counters.segments += 1;
        if self.started && ts < self.now {
            self.counters.out_of_order += 1;
            return self.now;
        }
        self.advance(ts, out);
        ts
    }
}

#[allow(
    clippy::too_many_arguments,
    reason = "the detector's fields, split for borrowing"
)]
fn segment<A: Addr>(
    cfg: &Config,
    fam: &mut Family<A>,
    c: &mut Counters,
    quiet_until: &mut u64,
    ts: u64,
    t: Tuple<A>,
    flags: TcpFlags,
    out: &mut impl FnMut(Event),
) {
    if flags.is_syn_only() {
        c.syns += 1;
        if let Some((p, first)) = fam.pending.get_mut_with_time(&t) {
            p.syns = p.syns.saturating_add(1);
            p.last_us = u32::try_from((ts - first) / 1000).unwrap_or(u32::MAX);
            c.retransmissions += 1;
            return;
        }
        if let Some(d) = fam.dark_packet(&t, ts) {
            d.syns = d.syns.saturating_add(1);
            return;
        }
        if let Some((_, kind)) = fam.orphans.remove(&t) {
            // Its answer was already here (same timestamp, other tap).
            c.queued += 1;
            out(Event::Queued { ts });
            count_answer(c, kind);
            out(Event::Answered {
                ts,
                delay_ns: 0,
                kind,
            });
            return;
        }
        match fam.pending.insert(
            t,
            ts,
            Pending {
                syns: 1,
                last_us: 0,
            },
        ) {
            Ok(_) => {
                *quiet_until = (*quiet_until).min(ts.saturating_add(cfg.timeout_ns));
                c.queued += 1;
                let n = fam.pending.len() as u64;
                if n > c.pending_peak {
                    c.pending_peak = n;
                }
                out(Event::Queued { ts });
            }
            Err(Full::Capacity | Full::Memory) => {
                c.untracked += 1;
                out(Event::Untracked { ts, flow: t.id() });
            }
        }
        return;
    }
    let answer = if flags.is_rst() {
        Some(AnswerKind::Rst)
    } else if flags.is_syn_ack() {
        Some(AnswerKind::SynAck)
    } else {
        None
    };
    let back = t.reversed();
    if let Some(kind) = answer {
        if let Some((first, _)) = fam.pending.remove(&back) {
            count_answer(c, kind);
            out(Event::Answered {
                ts,
                delay_ns: ts - first,
                kind,
            });
            return;
        }
        if let Some(d) = fam.dark_packet(&back, ts) {
            if d.late.is_none() {
                d.late = Some(Late { kind, ts });
                c.late_answers += 1;
                let record = d.record(back);
                out(Event::LateAnswer { ts, record });
            }
            return;
        }
        // An RST (or a simultaneous-open SYN/ACK) from the client's own side answers nothing.
        if fam.pending.get_mut(&t).is_some() {
            return;
        }
        if fam.dark_packet(&t, ts).is_some() {
            return;
        }
        if fam.orphans.get_mut(&back).is_none() {
            if fam.orphans.insert(back, ts, kind).is_ok() {
                *quiet_until = (*quiet_until).min(ts.saturating_add(cfg.reorder_ns));
            } else {
                c.unsolicited += 1;
                out(Event::Unsolicited {
                    ts,
                    flow: back.id(),
                    kind,
                });
            }
        }
        return;
    }
    // Any other segment only matters to a DarkFlow, in either direction.
    if !fam.dark.is_empty() && fam.dark_packet(&t, ts).is_none() {
        fam.dark_packet(&back, ts);
    }
}

fn count_answer(c: &mut Counters, kind: AnswerKind) {
    match kind {
        AnswerKind::SynAck => c.answered_synack += 1,
        AnswerKind::Rst => c.answered_rst += 1,
    }
}

/// Moves the oldest pending entry of `fam` to the DarkFlow table at time `at`.
fn go_dark<A: Addr>(
    fam: &mut Family<A>,
    c: &mut Counters,
    at: u64,
    complete: bool,
    out: &mut impl FnMut(Event),
) {
    let Some((t, first, p)) = fam.pending.pop_oldest() else {
        return;
    };
    let dark = Dark {
        first_syn: first,
        last_packet: first.saturating_add(u64::from(p.last_us) * 1000),
        syns_at_dark: p.syns,
        syns: p.syns,
        packets: p.syns,
        late: None,
        complete,
    };
    c.darkflows += 1;
    if !complete {
        c.incomplete += 1;
    }
    out(Event::Dark {
        ts: at,
        record: dark.record(t),
    });
    if fam.dark.len() >= fam.dark.capacity()
        && let Some((old, _, d)) = fam.dark.pop_oldest()
    {
        c.evicted += 1;
        out(Event::Closed {
            ts: at,
            record: d.record(old),
            reason: CloseReason::Evicted,
        });
    }
    // The table is time-ordered by max(last packet, the time it turned dark) = `at`, since
    // every packet so far is at or before `at`.
    if fam.dark.insert(t, at, dark).is_err() {
        // Out of memory: report the flow closed rather than lose it silently.
        c.evicted += 1;
        out(Event::Closed {
            ts: at,
            record: dark.record(t),
            reason: CloseReason::Evicted,
        });
    }
}

fn expire_flows<A: Addr>(
    cfg: &Config,
    fam: &mut Family<A>,
    c: &mut Counters,
    now: u64,
    out: &mut impl FnMut(Event),
) {
    while let Some((k, t, d)) = fam.dark.pop_older(cfg.expiry_ns, now) {
        c.expired += 1;
        out(Event::Closed {
            ts: t.saturating_add(cfg.expiry_ns),
            record: d.record(k),
            reason: CloseReason::Expired,
        });
    }
}

fn close_all<A: Addr>(fam: &mut Family<A>, end: u64, out: &mut impl FnMut(Event)) {
    while let Some((k, _, d)) = fam.dark.pop_oldest() {
        out(Event::Closed {
            ts: end,
            record: d.record(k),
            reason: CloseReason::End,
        });
    }
}

fn expire_orphans<A: Addr>(
    cfg: &Config,
    fam: &mut Family<A>,
    c: &mut Counters,
    now: u64,
    out: &mut impl FnMut(Event),
) {
    while let Some((k, ts, kind)) = fam.orphans.pop_older(cfg.reorder_ns, now) {
        c.unsolicited += 1;
        out(Event::Unsolicited {
            ts,
            flow: k.id(),
            kind,
        });
    }
}

/// Which of two time-ordered tables has the older head (`true`: the first; ties go to it),
/// and that head's time.
fn older(a: Option<u64>, b: Option<u64>) -> Option<(bool, u64)> {
    match (a, b) {
        (Some(a), Some(b)) if a <= b => Some((true, a)),
        (_, Some(b)) => Some((false, b)),
        (Some(a), None) => Some((true, a)),
        (None, None) => None,
    }
}
