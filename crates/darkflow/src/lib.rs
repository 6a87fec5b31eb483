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
//!   figures; [`report`] renders them as CSV and an HTML page with SVG plots, and
//!   [`report_dir`] writes a whole report directory, per-flow CSV included, as events come.
//! * [`synth`] — synthetic traffic with a known answer, for tests and benchmarks.
//! * IO shells: [`offline`] replays capture files by packet time; [`inline`] is the NFQUEUE
//!   gateway that hands DarkFlows to a honeypot. The live shell (an AF_PACKET ring read by
//!   the clock) is in the `ashiato` binary's `darkflow` command.

pub mod detector;
pub mod flow;
pub mod inline;
pub mod metrics;
pub mod offline;
pub mod report;
pub mod report_dir;
pub mod summary;
pub mod synth;
pub mod table;

pub use detector::{AnswerKind, CloseReason, Config, Counters, Detector, Event, Record};
pub use flow::FlowId;
pub use summary::{Report, Summary, SummaryConfig};

#[cfg(test)]
mod tests;
