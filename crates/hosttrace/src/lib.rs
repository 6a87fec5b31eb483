//! Host-based bot and C&C traceback (BRIEF §4, seed 004): a victim's claims, a host's audit of
//! its own communication history, and the seed's five features of bot traffic.
//!
//! Data flows one way: a claim list ([`claim::parse_claims`]) and frames go into an
//! [`audit::Audit`], which returns a [`audit::Report`]: the claims the history matched, with
//! the packets as evidence, and the suspicious peers by feature ([`features::Feature`]), named
//! from the DNS answers in the same history ([`dns`]). [`procs::ProcMap`] attributes flows to
//! processes from a snapshot. On the center's side, [`rank`] ranks the servers of the bots'
//! reports (distinct bots, popular destinations down-weighted, allow list) and draws the
//! three-layer graph. [`synth`] and [`botnet`] generate the inputs of the two figures. Everything here is pure: no files, sockets or clocks; the
//! `ashiato hostcheck` command is the shell around it.
//!
//! Design notes and the output format: docs/host-tracing.md.

pub mod addr;
pub mod audit;
pub mod botnet;
pub mod claim;
pub mod claimlist;
pub mod dns;
mod error;
pub mod features;
pub mod procs;
pub mod rank;
pub mod report;
pub mod synth;

pub use audit::{Audit, AuditConfig, ClaimMatch, Evidence, Finding, Flow, FramePos, Report};
pub use claim::{Claim, Protocol};
pub use error::HostTraceError;
pub use features::Feature;

/// A time in ns as RFC 3339 (the wire crate's format).
pub(crate) fn rfc3339_ns(ns: u64) -> String {
    ashiato_wire::time::rfc3339(ns)
}
