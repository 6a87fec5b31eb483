//! The pure core of inter-domain traceback: no sockets, no clocks, no files.
//!
//! - [`topology`]: AS graphs with business relationships (CAIDA serial-1 and SNAP files, the
//!   built-in `default_lab`, `chain` and `mesh` shapes), valley-free routes, sub-topologies and
//!   the domains beyond a non-participant (peering skip).
//! - [`decide`]: one domain's decision about one packet from its probes' evidence, and whom
//!   to ask next (the trace planner).
//! - [`walk`]: mesh mode — the same decisions run by the first controller over every
//!   participant's observations.
//! - [`graph`]: hop reports → the attack graph (per-packet paths, origins, gaps, expected
//!   false nodes), merging the traces of one incident, Graphviz DOT.
//!
//! The wire types (requests, reports, the graph) are `ashiato_api::federation`.
//!
//! The controller (`ashiato-controller`) and the lab (`ashiato-lab`) are thin shells around
//! this crate.

pub mod decide;
pub mod graph;
pub mod topology;
pub mod walk;
