//! Time-sliced Bloom digest tables for hash-based IP traceback (SPIE: Snoeren et al.,
//! *Hash-Based IP Traceback*, SIGCOMM 2001).
//!
//! A probe records the 128-bit keyed digest of every packet it forwards; later it must answer
//! "did you see digest H around time t?" with a known false-positive rate and without storing
//! packets. This crate is that memory:
//!
//! * [`params`] — [`FilterKind`] (standard or cache-line-blocked) and [`FilterParams`] (m, k);
//! * [`theory`] — false-positive rates for both layouts, exact enough that measurement agrees
//!   within a few percent, and [`theory::plan`] to size a filter for a load and target rate;
//! * [`Bloom`] — one filter in 2 MiB-aligned huge-page memory, lock-free single-writer and
//!   concurrent inserts, safe concurrent lookups;
//! * [`DigestTables`] — a ring of `retention_epochs + 2` filters, one per epoch (default 1 s):
//!   [`Writer`]s insert with the packet's timestamp (no clock here: time comes from the caller,
//!   as in quinn-proto), [`DigestTables::query`] answers which epochs in a time window contain a
//!   digest, and [`DigestTables::maintain`] saves expired epochs to an [`EpochStore`] and
//!   clears their filters;
//! * [`store`] — the [`EpochStore`] trait that keeps expired epochs, bounded by a byte budget:
//!   [`FileStore`] (spill files read back with positioned reads; the default with a spill
//!   directory) or [`MemoryStore`] (no filesystem, for tests and simulations);
//! * [`rng`] — a seeded PRNG for experiments, and [`experiment::measure_fpr`] which compares a
//!   filter's measured false-positive rate with theory.
//!
//! Data flow: packet → digest (crate `ashiato-digest`) → [`Writer::insert`]`(ts, digest)` →
//! epoch filter; on rotation the filter that leaves retention is retired → maintenance saves
//! it to the store (`epoch-<start_ns>.ashbloom` for a [`FileStore`]) and clears it → query
//! reads memory and the store.

pub mod bloom;
pub mod coverage;
pub mod error;
pub mod events;
pub mod experiment;
pub mod params;
pub use ashiato_rng as rng;
pub mod spill;
pub mod store;
mod tables;
pub mod theory;

pub use bloom::Bloom;
pub use coverage::{Coverage, Gap, GapReason, LossCause, gaps};
pub use error::{SpillRejection, TableError};
pub use events::{EventSink, TableEvent};
pub use experiment::{FprMeasurement, measure_fpr, measure_fpr_with};
pub use params::{BLOCK_BITS, FilterKind, FilterParams, MAX_K, MAX_M_BITS};
pub use spill::{FileStore, LOCK_FILE, SpillHeader, read_spill_header};
pub use store::{EpochStore, MemoryStore, StoredEpoch};
pub use tables::{
    DEFAULT_EPOCH_NS, DEFAULT_RETENTION_EPOCHS, DigestTables, EpochInfo, EpochMatch,
    FUTURE_CONFIRM, MIN_EPOCH_NS, MaintenanceHandle, MaintenanceReport, Search, SearchedEpoch,
    SpillConfig, TableStats, TablesConfig, Writer,
};

#[cfg(test)]
mod tests {
    /// The service shares tables across ingest, query and maintenance threads.
    #[test]
    fn shared_types_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<crate::Bloom>();
        check::<crate::DigestTables>();
        check::<crate::Writer>();
    }
}
