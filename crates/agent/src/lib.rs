//! The host agent (`ashiato agent`, BRIEF §4 (i)–(ii)): keeps this host's communication
//! history, knows which process owned each socket, polls the center's signed claim list,
//! audits the history against it with `ashiato-hosttrace`, and with the user's consent
//! reports the suspicious processes' records.
//!
//! # Design
//! Pure cores, each with a thin IO shell:
//!
//! - [`history`]: the rotation policy (which segments to delete for `keep_bytes` and
//!   `keep_ns`, when to start a new segment) and the coverage test (did the recording run
//!   through a claim's window?) are pure; [`history::Recorder`] writes frames into
//!   `seg-<start_ns>.pcap` files and applies the policy. A segment's end is its file's
//!   modification time, which the recorder refreshes on every tick while it runs, so a
//!   stopped, crashed or disk-full recorder leaves an honest gap.
//! - [`attrib`]: the socket tracker (pure): each poll's sockets (from [`sockdiag`], netlink
//!   `inet_diag` dumps of TCP and UDP, IPv4 and IPv6) joined with their owners (from
//!   [`procfs`], a cached `/proc/*/fd` scan) into records valid from the poll before a socket
//!   was first seen to the poll it was gone, in the JSON-lines format of
//!   `ashiato_hosttrace::procs` (so `ashiato hostcheck --procs` reads the agent's log).
//!   Sockets whose owner cannot be found are counted, never guessed.
//! - [`plan`]: from an audit report, the per-claim bot report (only processes with findings
//!   around the claim; never packet contents), its deterministic id, and the consent text.
//! - [`center`]: the mutual-TLS calls: enrolment, the claim list deltas, reports.
//! - [`cycle`]: the claim list kept up to date (each delta verified, a forged one refused)
//!   and one audit round with an answer per claim: matched, no match (the history covers
//!   the window), or unknown (it does not).
//! - [`live`]: the recording threads (capture into the history; sock_diag polls into the
//!   process log).
//! - [`scan`]: the audit's file loop and the flow → process join, shared with
//!   `ashiato hostcheck`.
//!
//! Everything is bounded: history bytes and age, the process log's bytes, the claims held,
//! the records per report.

pub mod attrib;
pub mod center;
pub mod cycle;
mod error;
pub mod history;
pub mod live;
pub mod plan;
pub mod procfs;
pub mod scan;
pub mod sockdiag;

pub use error::AgentError;

/// The wall clock in ns since the Unix epoch.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
