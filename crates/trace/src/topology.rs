//! AS topologies (placeholder: filled in by the topology work).
