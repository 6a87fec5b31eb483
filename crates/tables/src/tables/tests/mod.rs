//! Tests of the digest tables, in virtual time (timestamps are plain numbers), by topic. The
//! helpers here are shared by every topic.

mod concurrency;
mod failures;
mod rotation;
mod spill;
mod store;

use std::path::Path;
use std::sync::Arc;

use super::{DigestTables, SpillConfig, TablesConfig};
use crate::params::{FilterKind, FilterParams};
use crate::rng::Xoshiro256pp;
use crate::spill::HEADER_LEN;

pub(crate) const E: u64 = 1_000;

pub(crate) fn config(
    kind: FilterKind,
    retention: u32,
    spill: Option<(&Path, u64)>,
) -> TablesConfig {
    let params = FilterParams {
        kind,
        m_bits: 1 << 14,
        k: 4,
    };
    let mut cfg = TablesConfig::new(params, 0xA5A5);
    cfg.epoch_ns = E;
    cfg.retention_epochs = retention;
    cfg.spill = spill.map(|(dir, budget_bytes)| SpillConfig {
        dir: dir.to_path_buf(),
        budget_bytes,
    });
    cfg
}

pub(crate) fn tables(kind: FilterKind, retention: u32) -> Arc<DigestTables> {
    DigestTables::new(config(kind, retention, None)).unwrap()
}

pub(crate) fn file_bytes(t: &DigestTables) -> u64 {
    HEADER_LEN as u64 + t.config().params.bytes()
}

/// Spill files in `dir` (the directory also holds its lock file).
pub(crate) fn spill_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == crate::spill::EXTENSION)
        })
        .count()
}

/// A digest-like value for a small label: real digests are uniformly random, and the filters
/// rely on that (small integers would all share their bit positions).
pub(crate) fn d(x: u64) -> u128 {
    Xoshiro256pp::new(x).next_u128()
}

/// Epoch numbers (start / E) of the matches of `h` over all time.
pub(crate) fn found_in(t: &DigestTables, h: u128) -> Vec<u64> {
    t.query(h, 0, u64::MAX)
        .iter()
        .map(|m| m.epoch_start_ns / E)
        .collect()
}
