//! Queries against epochs in memory and against the same epochs spilled to disk, in one run:
//! what a controller's question costs once the probe answers from spill files (opened per
//! query, read with positioned reads, never mapped).

use std::time::Instant;

use anyhow::{Context, Result};
use ashiato_tables::rng::SplitMix64;
use ashiato_tables::{DigestTables, FilterKind, SpillConfig, TablesConfig, theory};

use super::{BenchLine, line};

/// Epochs searched by every query.
const EPOCHS: u64 = 20;
/// Digests recorded per epoch.
const PER_EPOCH: u64 = 10_000;
const E: u64 = 1_000_000_000;

/// Fills `EPOCHS` epochs; with `spill_dir`, keeps one in memory and spills the rest.
fn filled(spill_dir: Option<&std::path::Path>) -> Result<std::sync::Arc<DigestTables>> {
    let mut cfg = TablesConfig::new(theory::plan(FilterKind::Blocked, 1_000_000, 1e-6), 1);
    cfg.retention_epochs = if spill_dir.is_some() {
        1
    } else {
        EPOCHS as u32 + 2
    };
    cfg.spill = spill_dir.map(|dir| SpillConfig {
        dir: dir.to_path_buf(),
        budget_bytes: u64::MAX,
    });
    let t = DigestTables::new(cfg)?;
    let mut w = t.writer();
    let mut rng = SplitMix64::new(9);
    // One more epoch than searched, so that with spilling every searched one is on disk.
    for e in 0..=EPOCHS {
        for _ in 0..PER_EPOCH {
            w.insert(
                e * E,
                u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64()),
            );
        }
        t.maintain()?;
    }
    drop(w);
    Ok(t)
}

/// Digest-epoch tests per second for batches of 1, 64 and 4096 digests over `EPOCHS` epochs,
/// from memory and from spill files (in the page cache).
pub fn lines() -> Result<Vec<BenchLine>> {
    let dir = tempfile::tempdir().context("bench spill directory")?;
    let mut out = Vec::new();
    for (label, tables) in [
        ("memory", filled(None)?),
        ("spill files", filled(Some(dir.path()))?),
    ] {
        for batch in [1usize, 64, 4096] {
            let mut rng = SplitMix64::new(77);
            let hs: Vec<u128> = (0..batch)
                .map(|_| u128::from(rng.next_u64()) << 1)
                .collect();
            // Enough rounds for a measurable time at every batch size.
            let rounds = (200_000 / (batch as u64 * EPOCHS)).max(3);
            let start = Instant::now();
            for _ in 0..rounds {
                let s = tables.search(&hs, 0, (EPOCHS - 1) * E);
                std::hint::black_box(&s);
            }
            let secs = start.elapsed().as_secs_f64();
            out.push(line(
                &format!("query {batch:>4} digests x {EPOCHS} epochs, {label} (tests)"),
                1,
                rounds * batch as u64 * EPOCHS,
                secs,
            ));
        }
    }
    Ok(out)
}
