//! The lab: a federation of real ashiato controllers and probes in one process, attacked from
//! known origins, traced from the victim, and scored against the ground truth.
//!
//! ```text
//!  topo ─▶ scenario (pure) ─▶ detect (pure) ─▶ detected digests + times
//!            │  packets along valley-free routes, what each probe records
//!            ▼
//!  services: PKI (as<ASN> per domain) ─▶ probes (DigestTables, ProbeState, /v1/query)
//!            ─▶ controllers (DomainConfig built here, Controller::router)
//!            all served by ashiato_net::server::serve on 127.0.0.1, mutual TLS
//!            ▼
//!  run: victim's Controller::trace in batches ─▶ merged attack graph ─▶ report (accuracy)
//!       single-packet POST /v1/trace over HTTP ─▶ latency; optional throughput run
//! ```
//!
//! - [`topo`]: which topology ([`TopologySpec`]): `default_lab()`, the 2009 trial's `chain`
//!   and `mesh`, or a CAIDA/SNAP file reduced to N domains around a seeded stub victim.
//! - [`scenario`]: pure; the victim, the participants, the origins, every packet (spoofed
//!   SYN flood plus background) along its route, and what each probe records, 1–3 ms later
//!   per hop. Nothing here reads a clock: the start time is passed in.
//! - [`detect`]: pure; the victim's SYN-rate detector. Only the packets it flags are traced,
//!   so the traces never see the ground truth.
//! - [`services`]: the PKI, the probes (tables sized per probe for a 10⁻⁶ false-positive
//!   rate, filled, touched over the scenario, marked finished) and serving.
//! - [`controllers`]: one `ashiato_controller::Controller` per participant, configured as
//!   an operator's domain file would (probes, neighbours with peering-skip targets, peers).
//! - [`run`](mod@run): the run itself and its [`LabConfig`]; [`report`]: the results as JSON and
//!   text (the binary prints them; this crate never prints).
//!
//! Everything random is seeded: the same seed gives the same topology, victim,
//! participants, origins, packets and tables. Wall times (trace latency, setup) are measured.
//! docs/lab.md describes the design and its limits.

pub mod controllers;
pub mod detect;
pub mod report;
pub mod run;
pub mod scenario;
pub mod services;
pub mod topo;

pub use report::Report;
pub use run::{LabConfig, LabError, Running, run};
pub use topo::{MAX_DOMAINS, TopologySpec};

/// Raises this process's open-file limit (RLIMIT_NOFILE) to its hard limit: a thousand
/// domains serve about ten thousand ports, each a descriptor, and every connection between
/// them costs two more. Returns (old soft limit, new soft limit).
pub fn raise_nofile_limit() -> std::io::Result<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own; no other memory is touched.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let old = lim.rlim_cur;
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: setrlimit reads the struct we own.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok((old, lim.rlim_cur))
}
