//! DarkFlow: TCP flows whose SYN gets no answer within T (default 5 s).
//!
//! Watching unused addresses does not scale to IPv6; watching flows does. A SYN that gets
//! neither a SYN/ACK nor an RST back within T is almost surely a scan or an attack probe.
//!
//! # Layout
//! * [`detector`] — the pure core: segments and timestamps in, events out (definition, time
//!   and memory bounds are documented there).
//! * [`table`] — the bounded, time-ordered hash table both of its queues are made of.
//! * [`summary`] — the pure aggregation of events into per-port, per-address and per-interval
//!   figures; [`report`] renders them as CSV and an HTML page with SVG plots.
//! * [`gateway`] — the inline gateway's decision: queued packets and `now` in, verdicts and
//!   SYNs to re-send to the honeypot out.
//! * [`metrics`] — the Prometheus text of the counters.
//! * [`syn_digests`] — each flow's first-SYN digest until the flow is decided, so that a
//!   DarkFlow event names the packet to trace back.
//! * [`synth`] — synthetic traffic with a known answer, for tests and benchmarks (from
//!   the seeded generator of `ashiato-rng`).
//!
//! This crate reads no clock and opens no socket or capture: time is always an argument.
//! The shells that do — capture-file replay, the live AF_PACKET detector, the NFQUEUE gateway
//! and the report directory writer — are in `ashiato-darkflow-shells`.

pub mod detector;
pub mod flow;
pub mod gateway;
pub mod metrics;
pub mod report;
pub mod summary;
pub mod syn_digests;
pub mod synth;
pub mod table;

pub use detector::{AnswerKind, CloseReason, Config, Counters, Detector, Event, Record};
pub use flow::FlowId;
pub use summary::{Report, Summary, SummaryConfig};

#[cfg(test)]
mod tests;
