//! The pure core of inter-domain traceback: no sockets, no clocks, no files.
//!
//! - [`topology`]: AS graphs with business relationships (CAIDA serial-1 and SNAP files, the
//!   built-in `default_lab`, `chain` and `mesh` shapes), valley-free routes, sub-topologies and
//!   the domains beyond a non-participant (peering skip).
//!
//! The controller (`ashiato-controller`) and the lab (`ashiato-lab`) are thin shells around
//! this crate.

pub mod topology;
