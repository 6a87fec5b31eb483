//! The lab: a federation of real ashiato controllers and probes in one process.
//!
//! placeholder
pub mod detect;
pub mod scenario;
pub mod services;
