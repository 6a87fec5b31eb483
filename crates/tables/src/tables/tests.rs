//! Tests of the digest tables, in virtual time (timestamps are plain numbers).

use std::path::Path;
use std::sync::Arc;

use proptest::prelude::*;

use super::{DigestTables, EpochMatch, SpillConfig, TablesConfig};
use crate::params::{FilterKind, FilterParams};
use crate::rng::Xoshiro256pp;
use crate::spill::HEADER_LEN;

pub(super) const E: u64 = 1_000;

pub(super) fn config(
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

fn tables(kind: FilterKind, retention: u32) -> Arc<DigestTables> {
    DigestTables::new(config(kind, retention, None)).unwrap()
}

fn file_bytes(t: &DigestTables) -> u64 {
    HEADER_LEN as u64 + t.config().params.bytes()
}

/// Spill files in `dir` (the directory also holds its lock file).
pub(super) fn spill_files(dir: &Path) -> usize {
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
pub(super) fn d(x: u64) -> u128 {
    Xoshiro256pp::new(x).next_u128()
}

/// Epoch numbers (start / E) of the matches of `h` over all time.
fn found_in(t: &DigestTables, h: u128) -> Vec<u64> {
    t.query(h, 0, u64::MAX)
        .iter()
        .map(|m| m.epoch_start_ns / E)
        .collect()
}

#[test]
fn rejects_bad_config() {
    let mut cfg = config(FilterKind::Standard, 2, None);
    cfg.retention_epochs = 0;
    assert!(DigestTables::new(cfg.clone()).is_err());
    cfg.retention_epochs = 2;
    cfg.epoch_ns = 10;
    assert!(DigestTables::new(cfg.clone()).is_err());
    cfg.epoch_ns = E;
    cfg.params.k = 0;
    assert!(DigestTables::new(cfg).is_err());
}

#[test]
fn memory_is_retention_plus_two_filters() {
    let t = tables(FilterKind::Blocked, 5);
    assert_eq!(t.memory_bytes(), 7 * (1 << 14) / 8);
}

#[test]
fn rotation_keeps_exactly_retention_epochs() {
    for kind in FilterKind::ALL {
        let t = tables(kind, 3);
        let mut w = t.writer();
        for e in 0..10u64 {
            w.insert(e * E + 17, d(e + 1000));
            // Maintenance keeps up on even epochs only; answers must not depend on it.
            if e % 2 == 0 {
                t.maintain().unwrap();
            }
            let epochs: Vec<u64> = t.epochs().iter().map(|i| i.epoch_start_ns / E).collect();
            let want: Vec<u64> = (e.saturating_sub(2)..=e).collect();
            assert_eq!(epochs, want, "{kind} after epoch {e}");
            for old in 0..=e {
                let hits = found_in(&t, d(old + 1000));
                if old + 3 > e {
                    assert_eq!(hits, vec![old], "{kind}: epoch {old} at {e}");
                } else {
                    assert!(hits.is_empty(), "{kind}: expired epoch {old} at {e}");
                }
            }
        }
        let s = t.stats();
        assert_eq!(
            (s.inserted, s.rotations, s.stalls, s.too_old),
            (10, 9, 0, 0)
        );
        assert_eq!(s.current_epoch_start_ns, Some(9 * E));
        assert_eq!(s.current_inserted, 1);
    }
}

#[test]
fn out_of_order_and_too_old() {
    let t = tables(FilterKind::Standard, 4);
    let mut w = t.writer();
    w.insert(5 * E, d(1));
    // Epoch 3 had no traffic yet: a slot is assigned for it now.
    w.insert(3 * E + 999, d(2));
    w.insert(4 * E, d(3));
    w.insert(2 * E, d(4)); // oldest retained epoch (5 - 4 + 1)
    w.insert(E + 999, d(5)); // one too old
    w.insert(5 * E + 1, d(6));
    assert_eq!(found_in(&t, d(2)), vec![3]);
    assert_eq!(found_in(&t, d(3)), vec![4]);
    assert_eq!(found_in(&t, d(4)), vec![2]);
    assert!(found_in(&t, d(5)).is_empty());
    assert_eq!(found_in(&t, d(6)), vec![5]);
    let s = t.stats();
    assert_eq!((s.inserted, s.too_old, s.rotations), (5, 1, 0));
    let infos = t.epochs();
    assert_eq!(infos.len(), 4);
    assert!(infos.last().unwrap().current);
    assert!(infos[..3].iter().all(|i| !i.current));
}

/// The first packet opens epoch 1; the next ones, slightly out of order, belong to epoch 0
/// (timestamps near 0, where the writer's empty cache entry once matched and sent them into
/// epoch 1's filter). Epoch 0 is retained, so it gets a slot and epoch 1 stays current; a
/// newer epoch still rotates.
#[test]
fn older_epoch_after_the_first_packet_is_recorded() {
    for kind in FilterKind::ALL {
        let t = tables(kind, 3);
        let mut w = t.writer();
        w.insert(E + 7, d(1));
        for (i, ts) in [0, 1, E / 2, E - 2, E - 1].into_iter().enumerate() {
            w.insert(ts, d(10 + i as u64));
        }
        w.insert(E + 8, d(2));
        for i in 0..5 {
            assert_eq!(found_in(&t, d(10 + i)), vec![0], "{kind}: packet {i}");
        }
        assert_eq!(found_in(&t, d(1)), vec![1], "{kind}");
        assert_eq!(found_in(&t, d(2)), vec![1], "{kind}");
        let s = t.stats();
        assert_eq!((s.inserted, s.too_old, s.rotations, s.stalls), (7, 0, 0, 0));
        assert_eq!(s.current_epoch_start_ns, Some(E));
        assert_eq!(s.current_inserted, 2);
        let infos: Vec<(u64, u64, bool)> = t
            .epochs()
            .iter()
            .map(|i| (i.epoch_start_ns / E, i.inserted, i.current))
            .collect();
        assert_eq!(infos, vec![(0, 5, false), (1, 2, true)], "{kind}");
        // A newer epoch rotates as before.
        w.insert(2 * E, d(3));
        let s = t.stats();
        assert_eq!((s.rotations, s.current_epoch_start_ns), (1, Some(2 * E)));
        assert_eq!(found_in(&t, d(3)), vec![2]);
        assert_eq!(found_in(&t, d(10)), vec![0]);
    }
}

/// The last, partial epoch before `u64::MAX` is cached like any other; a timestamp near 0
/// must not wrap around into it.
#[test]
fn cached_last_epoch_does_not_wrap_to_zero() {
    let t = tables(FilterKind::Standard, 3);
    let mut w = t.writer();
    w.insert(u64::MAX, d(1));
    w.insert(5, d(2));
    assert_eq!(found_in(&t, d(1)), vec![u64::MAX / E]);
    assert!(found_in(&t, d(2)).is_empty());
    let s = t.stats();
    assert_eq!((s.inserted, s.too_old), (1, 1));
}

/// An older epoch opened after a newer one is retired when it leaves the window, like any
/// other: then it is gone without spilling, or moves to disk with spilling.
#[test]
fn older_epoch_opened_late_expires_on_schedule() {
    for spill in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(
            FilterKind::Blocked,
            3,
            spill.then(|| (dir.path(), u64::MAX)),
        );
        let t = DigestTables::new(cfg).unwrap();
        let mut w = t.writer();
        w.insert(5 * E, d(5));
        w.insert(3 * E + 1, d(3)); // oldest retained epoch (5 - 3 + 1), never opened
        w.insert(2 * E + 1, d(2)); // one too old
        t.maintain().unwrap();
        let epochs = |t: &DigestTables| -> Vec<(u64, bool)> {
            t.epochs()
                .iter()
                .map(|i| (i.epoch_start_ns / E, i.on_disk))
                .collect()
        };
        assert_eq!(epochs(&t), vec![(3, false), (5, false)], "spill {spill}");
        assert_eq!(found_in(&t, d(3)), vec![3]);
        assert!(found_in(&t, d(2)).is_empty());
        assert_eq!(t.stats().too_old, 1);
        // Sealed: its bits were counted like any older epoch's.
        assert!(t.epochs()[0].ones.is_some());
        // Epoch 6 leaves epochs 4..=6 in the window: epoch 3 is retired.
        w.insert(6 * E, d(6));
        // The cached slot of epoch 3 is not written any more: a packet of epoch 3 is too old.
        w.insert(3 * E + 2, d(33));
        assert!(found_in(&t, d(33)).is_empty());
        assert_eq!(t.stats().too_old, 2);
        let r = t.maintain().unwrap();
        assert_eq!(r.cleared, 1, "spill {spill}");
        assert_eq!(r.spilled, usize::from(spill));
        if spill {
            assert_eq!(epochs(&t), vec![(3, true), (5, false), (6, false)]);
            let m = t.query(d(3), 0, u64::MAX);
            assert_eq!(m.len(), 1);
            assert!(m[0].on_disk);
            assert_eq!((m[0].epoch_start_ns, m[0].inserted), (3 * E, 1));
        } else {
            assert_eq!(epochs(&t), vec![(5, false), (6, false)]);
            assert!(found_in(&t, d(3)).is_empty());
        }
        let s = t.stats();
        assert_eq!((s.rotations, s.stalls, s.inserted), (1, 0, 3));
        // The freed slot serves later epochs; memory stays the preallocated ring.
        for e in 7..12 {
            w.insert(e * E, d(e));
            t.maintain().unwrap();
        }
        assert_eq!(t.stats().stalls, 0);
        assert_eq!(found_in(&t, d(11)), vec![11]);
    }
}

#[test]
fn time_window_selects_epochs() {
    let t = tables(FilterKind::Blocked, 5);
    let mut w = t.writer();
    for e in 0..5 {
        w.insert(e * E, d(77));
    }
    let epochs = |from, to| -> Vec<u64> {
        t.query(d(77), from, to)
            .iter()
            .map(|m| m.epoch_start_ns / E)
            .collect()
    };
    assert_eq!(epochs(0, u64::MAX), vec![0, 1, 2, 3, 4]);
    assert_eq!(epochs(E, 2 * E), vec![1, 2]);
    assert_eq!(epochs(E + 1, 2 * E - 1), vec![1]);
    assert_eq!(epochs(2 * E - 1, 2 * E - 1), vec![1]);
    assert!(epochs(3 * E, E).is_empty());
    let m = &t.query(d(77), 4 * E, 4 * E)[0];
    assert_eq!(
        *m,
        EpochMatch {
            epoch_start_ns: 4 * E,
            epoch_end_ns: 5 * E,
            inserted: 1,
            fpr: crate::theory::fpr(&t.config().params, 1),
            on_disk: false,
        }
    );
    let batch = t.query_batch(&[d(77), d(78)], E, 2 * E);
    assert_eq!(batch.len(), 2);
    assert_eq!(batch[0], t.query(d(77), E, 2 * E));
    assert!(batch[1].is_empty());
}

#[test]
fn rotation_takes_the_spare_and_stalls_only_when_maintenance_is_behind() {
    let t = tables(FilterKind::Standard, 2);
    let mut w = t.writer();
    for e in 0..20 {
        w.insert(e * E, d(e));
        t.maintain().unwrap();
    }
    assert_eq!(t.stats().stalls, 0);
    // Without maintenance: two rotations use the two spares, the third one stalls (clears a
    // retired filter itself).
    for (e, stalls) in [(20, 0), (21, 0), (22, 1), (23, 2)] {
        w.insert(e * E, d(1));
        assert_eq!(t.stats().stalls, stalls, "epoch {e}");
    }
    // Everything still correct afterwards.
    assert_eq!(found_in(&t, d(1)), vec![22, 23]);
    let r = t.maintain().unwrap();
    assert_eq!(r.cleared, 2);
    assert_eq!(r.spilled, 0);
}

/// With maintenance behind, an older epoch opened late may take the last clean spare; the
/// writers then stall and take the oldest retired (already expired) epochs — spilling them
/// first, since spilling is configured — but never a retained one: nothing is lost.
#[test]
fn older_epoch_under_stalled_maintenance_spills_only_expired_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let t = DigestTables::new(config(
        FilterKind::Standard,
        3,
        Some((dir.path(), u64::MAX)),
    ))
    .unwrap();
    let mut w = t.writer();
    for e in 0..3 {
        w.insert(e * E, d(e));
        t.maintain().unwrap();
    }
    // Jump to 5 retires 0, 1, 2 (awaiting maintenance) and takes a spare; 4 takes the other.
    w.insert(5 * E, d(5));
    w.insert(4 * E, d(4));
    assert_eq!(t.stats().stalls, 0);
    // 3 is retained (3 + 3 > 5) but nothing is clean: stall, spill and clear expired epoch 0.
    w.insert(3 * E, d(3));
    assert_eq!(t.stats().stalls, 1);
    // Rotating to 6 retires 3; again nothing is clean: stall, spill and clear epoch 1.
    w.insert(6 * E, d(6));
    let s = t.stats();
    assert_eq!((s.stalls, s.too_old, s.rotations, s.inserted), (2, 0, 4, 7));
    assert_eq!(
        s.spilled_epochs, 2,
        "the stalled writer spilled 0 and 1 itself"
    );
    let r = t.maintain().unwrap();
    assert_eq!((r.cleared, r.spilled), (2, 2));
    for e in 0..=6 {
        assert_eq!(found_in(&t, d(e)), vec![e], "epoch {e}");
    }
    let on_disk: Vec<(u64, bool)> = t
        .epochs()
        .iter()
        .map(|i| (i.epoch_start_ns / E, i.on_disk))
        .collect();
    assert_eq!(
        on_disk,
        vec![
            (0, true),
            (1, true),
            (2, true),
            (3, true),
            (4, false),
            (5, false),
            (6, false)
        ]
    );
}

#[test]
fn query_racing_a_recycle_never_reports_the_recycled_epoch() {
    let t = tables(FilterKind::Standard, 1);
    let mut w = t.writer();
    w.insert(0, d(42));
    let t2 = Arc::clone(&t);
    let mut raced = false;
    // Between reading epoch 0's bits (42 is present) and re-checking the slot, epoch 0 leaves
    // retention, its slot is cleared, and 42 goes into new epochs that may reuse that slot.
    let out = t
        .search_with(&[d(42)], 0, u64::MAX, &mut || {
            if !raced {
                raced = true;
                w.insert(E, d(1));
                t2.maintain().unwrap();
                w.insert(2 * E, d(42));
                w.insert(3 * E, d(42));
            }
        })
        .matches;
    assert!(raced);
    assert!(out[0].is_empty(), "{out:?}");
    assert_eq!(found_in(&t, d(42)), vec![3]);
}

#[test]
fn recycle_race_with_spill_falls_back_to_disk() {
    let dir = tempfile::tempdir().unwrap();
    let t =
        DigestTables::new(config(FilterKind::Blocked, 1, Some((dir.path(), u64::MAX)))).unwrap();
    let mut w = t.writer();
    w.insert(0, d(42));
    w.insert(E, d(1)); // epoch 0 retired but still answerable until spilled
    assert_eq!(found_in(&t, d(42)), vec![0]);
    let t2 = Arc::clone(&t);
    let out = t
        .search_with(&[d(42)], 0, 0, &mut || {
            t2.maintain().unwrap();
        })
        .matches;
    assert_eq!(out[0].len(), 1);
    assert!(out[0][0].on_disk);
}

#[test]
fn spill_round_trip_budget_and_reload() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(FilterKind::Standard, 2, Some((dir.path(), u64::MAX)));
    {
        let t = DigestTables::new(cfg.clone()).unwrap();
        let per_file = file_bytes(&t);
        let mut w = t.writer();
        for e in 0..6u64 {
            w.insert(e * E, d(500 + e));
            t.maintain().unwrap();
        }
        // Epochs 0..=3 on disk, 4 and 5 in memory.
        let infos = t.epochs();
        assert_eq!(infos.len(), 6);
        assert_eq!(infos.iter().filter(|i| i.on_disk).count(), 4);
        assert!(infos.iter().all(|i| i.ones.is_some() || i.current));
        let m = t.query(d(500), 0, u64::MAX);
        assert_eq!(m.len(), 1);
        assert!(m[0].on_disk);
        assert_eq!(m[0].inserted, 1);
        let s = t.stats();
        assert_eq!((s.spilled_epochs, s.spill_bytes), (4, 4 * per_file));
    }
    // Reload with a budget of two files: the two oldest are deleted.
    let mut small = cfg.clone();
    let per_file = HEADER_LEN as u64 + cfg.params.bytes();
    small.spill.as_mut().unwrap().budget_bytes = 2 * per_file + 1;
    let t = DigestTables::new(small).unwrap();
    let on_disk: Vec<u64> = t.epochs().iter().map(|i| i.epoch_start_ns / E).collect();
    assert_eq!(on_disk, vec![2, 3]);
    assert_eq!(found_in(&t, d(502)), vec![2]);
    assert!(found_in(&t, d(500)).is_empty());
    assert_eq!(spill_files(dir.path()), 2);
    // New spills push out the oldest again. The jump from 10 to 20 is far (more than
    // `max_jump`): it takes `FUTURE_CONFIRM` packets.
    let mut w = t.writer();
    w.insert(10 * E, d(9));
    for _ in 0..crate::FUTURE_CONFIRM {
        w.insert(20 * E, d(9));
    }
    assert_eq!(
        t.stats().future_dropped,
        u64::from(crate::FUTURE_CONFIRM - 1)
    );
    let r = t.maintain().unwrap();
    assert_eq!((r.spilled, r.deleted_files), (1, 1));
    let on_disk: Vec<u64> = t
        .epochs()
        .iter()
        .filter(|i| i.on_disk)
        .map(|i| i.epoch_start_ns / E)
        .collect();
    assert_eq!(on_disk, vec![3, 10]);
    assert_eq!(t.stats().spill_bytes, 2 * per_file);
}

#[test]
fn corrupt_and_foreign_spill_files_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(FilterKind::Blocked, 1, Some((dir.path(), u64::MAX)));
    {
        let t = DigestTables::new(cfg.clone()).unwrap();
        let mut w = t.writer();
        for e in 0..4u64 {
            w.insert(e * E, d(900 + e));
            t.maintain().unwrap();
        }
        assert_eq!(t.stats().spilled_epochs, 3);
    }
    // Corrupt epoch 1's payload, truncate epoch 2's, add junk.
    let path = |e: u64| dir.path().join(format!("epoch-{}.ashbloom", e * E));
    let mut bytes = std::fs::read(path(1)).unwrap();
    bytes[HEADER_LEN + 3] ^= 0x40;
    std::fs::write(path(1), &bytes).unwrap();
    let bytes = std::fs::read(path(2)).unwrap();
    std::fs::write(path(2), &bytes[..bytes.len() - 64]).unwrap();
    std::fs::write(dir.path().join("junk.ashbloom"), b"not a filter").unwrap();
    let t = DigestTables::new(cfg.clone()).unwrap();
    let epochs: Vec<u64> = t.epochs().iter().map(|i| i.epoch_start_ns / E).collect();
    assert_eq!(epochs, vec![0]);
    assert_eq!(t.stats().spill_errors, 3);
    assert_eq!(found_in(&t, d(900)), vec![0]);
    assert!(found_in(&t, d(901)).is_empty());
    // Another digest key: nothing loads. Files with a sound header and length are counted as
    // foreign (the payload is not even read), the truncated one and the junk as errors.
    let mut other = cfg;
    other.table_id ^= 1;
    drop(t);
    let t = DigestTables::new(other).unwrap();
    assert!(t.epochs().is_empty());
    assert_eq!((t.stats().ignored_files, t.stats().spill_errors), (2, 2));
}

#[test]
fn spill_write_error_is_counted_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let spill_dir = dir.path().join("spill");
    let t = DigestTables::new(config(
        FilterKind::Standard,
        1,
        Some((&spill_dir, u64::MAX)),
    ))
    .unwrap();
    std::fs::remove_dir_all(&spill_dir).unwrap();
    let mut w = t.writer();
    w.insert(0, d(5));
    w.insert(E, d(6));
    let r = t.maintain().unwrap();
    assert_eq!((r.cleared, r.spilled), (1, 0));
    let s = t.stats();
    assert_eq!((s.spill_errors, s.spilled_epochs), (1, 0));
    assert!(found_in(&t, d(5)).is_empty());
    assert_eq!(found_in(&t, d(6)), vec![1]);
    // Still running: later rotations work and the slot was reused.
    w.insert(2 * E, d(7));
    t.maintain().unwrap();
    assert_eq!(found_in(&t, d(7)), vec![2]);
    assert_eq!(t.stats().stalls, 0);
}

#[test]
fn concurrent_writers_and_maintenance_thread() {
    let t = tables(FilterKind::Blocked, 8);
    let handle = t.spawn_maintenance();
    let threads: Vec<_> = (0..2u64)
        .map(|id| {
            let t = Arc::clone(&t);
            std::thread::spawn(move || {
                let mut w = t.writer();
                w.set_concurrent(true);
                for i in 0..4000u64 {
                    let e = i / 500; // 8 epochs
                    w.insert(e * E + id, d(id << 32 | i));
                }
            })
        })
        .collect();
    for th in threads {
        th.join().unwrap();
    }
    for id in 0..2u64 {
        for i in 0..4000u64 {
            let h = d(id << 32 | i);
            assert!(found_in(&t, h).contains(&(i / 500)), "{id} {i}");
        }
    }
    let s = t.stats();
    assert_eq!(s.inserted, 8000);
    assert_eq!(s.current_inserted, 1000);
    handle.stop();
    assert!(!t.wait_maintenance(std::time::Duration::from_millis(1)));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// No false negatives across rotations, out-of-order packets and spilling: every digest
    /// whose epoch is still answerable is found in its epoch. Maintenance keeps up (runs after
    /// every step that rotated, even without the clock advancing), so no writer ever stalls,
    /// however many older epochs are opened late.
    #[test]
    fn no_false_negatives_across_rotation_and_spill(
        blocked in any::<bool>(),
        spill in any::<bool>(),
        seed in any::<u64>(),
        steps in proptest::collection::vec((0u64..3, 0u64..4, 0usize..40), 1..12),
    ) {
        let kind = if blocked { FilterKind::Blocked } else { FilterKind::Standard };
        let dir = tempfile::tempdir().unwrap();
        let t = DigestTables::new(config(kind, 3, spill.then(|| (dir.path(), u64::MAX)))).unwrap();
        let mut w = t.writer();
        let mut rng = Xoshiro256pp::new(seed);
        let mut now_epoch = 0u64;
        // Newest epoch written: time never runs more than `max_jump` (3) epochs ahead of it,
        // so no jump needs confirmation here (that policy has tests of its own).
        let mut newest: Option<u64> = None;
        let mut recorded: Vec<(u64, u128)> = Vec::new();
        for (advance, back, count) in steps {
            now_epoch += advance;
            if let Some(n) = newest {
                now_epoch = now_epoch.min(n + t.max_jump());
            }
            let e = now_epoch.saturating_sub(back);
            if count > 0 {
                newest = Some(newest.map_or(e, |n| n.max(e)));
            }
            let rotations = t.stats().rotations;
            for _ in 0..count {
                let h = rng.next_u128();
                w.insert(e * E + rng.next_u64() % E, h);
                if back < 3 || e + 3 > now_epoch {
                    recorded.push((e, h));
                }
            }
            if advance > 0 || t.stats().rotations != rotations {
                t.maintain().unwrap();
            }
        }
        t.maintain().unwrap();
        for (e, h) in recorded {
            let answerable = spill || e + 3 > now_epoch;
            if answerable {
                prop_assert!(found_in(&t, h).contains(&e), "epoch {} now {}", e, now_epoch);
            }
        }
        prop_assert_eq!(t.stats().spill_errors, 0);
        prop_assert_eq!(t.stats().stalls, 0);
        prop_assert_eq!(t.stats().future_dropped, 0);
    }
}

/// A restart with another filter size: the epoch spilled before answers with its own
/// parameters (membership, FPR and the size the fill is computed from).
#[test]
fn spilled_epoch_uses_its_own_parameters_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(FilterKind::Standard, 1, Some((dir.path(), u64::MAX)));
    let old = cfg.params;
    {
        let t = DigestTables::new(cfg.clone()).unwrap();
        let mut w = t.writer();
        for i in 0..300 {
            w.insert(17, d(10_000 + i));
        }
        w.insert(E, d(1));
        t.maintain().unwrap();
        let info = &t.epochs()[0];
        assert!(info.on_disk);
        assert_eq!((info.inserted, info.m_bits), (300, old.m_bits));
        assert_eq!(info.fpr, crate::theory::fpr(&old, 300));
    }
    for params in [
        FilterParams {
            kind: FilterKind::Standard,
            m_bits: 1 << 20,
            k: 7,
        },
        FilterParams {
            kind: FilterKind::Blocked,
            m_bits: 1 << 12,
            k: 2,
        },
    ] {
        let mut other = cfg.clone();
        other.params = params;
        let t = DigestTables::new(other).unwrap();
        let infos = t.epochs();
        assert_eq!(infos.len(), 1);
        let info = &infos[0];
        assert!(info.on_disk);
        assert_eq!((info.inserted, info.m_bits), (300, old.m_bits));
        assert_eq!(info.fpr, crate::theory::fpr(&old, 300));
        assert!(info.ones.unwrap() <= info.m_bits);
        let batch: Vec<u128> = (0..300).map(|i| d(10_000 + i)).collect();
        for matches in t.query_batch(&batch, 0, u64::MAX) {
            assert_eq!(matches.len(), 1);
            assert!(matches[0].on_disk);
            assert_eq!(matches[0].fpr, crate::theory::fpr(&old, 300));
            assert_eq!(matches[0].inserted, 300);
        }
        // An epoch in memory still reports the configured size.
        let mut w = t.writer();
        w.insert(5 * E, d(2));
        let live = t.epochs().pop().unwrap();
        assert_eq!((live.m_bits, live.on_disk), (params.m_bits, false));
        assert_eq!(live.fpr, crate::theory::fpr(&params, 1));
    }
}

/// One packet far in the future (a corrupt record) neither moves the current epoch nor
/// retires the retained ones; it is dropped and counted.
#[test]
fn single_far_future_packet_is_dropped_and_counted() {
    let t = tables(FilterKind::Blocked, 4);
    let mut w = t.writer();
    for e in 10..14 {
        w.insert(e * E, d(e));
    }
    w.insert(1_000_000 * E, d(99));
    // Scattered bogus timestamps never confirm each other.
    for i in 0..2 * u64::from(crate::FUTURE_CONFIRM) {
        w.insert((2_000_000 + i * 100) * E, d(98));
    }
    for e in 14..16 {
        w.insert(e * E + 1, d(e));
    }
    let s = t.stats();
    assert_eq!(s.future_dropped, 1 + 2 * u64::from(crate::FUTURE_CONFIRM));
    assert_eq!((s.too_old, s.rotations), (0, 5));
    assert_eq!(s.current_epoch_start_ns, Some(15 * E));
    for e in 12..16 {
        assert_eq!(found_in(&t, d(e)), vec![e]);
    }
    assert!(found_in(&t, d(99)).is_empty());
    assert!(found_in(&t, d(98)).is_empty());
    // Just inside `max_jump` (the retention, 4) still rotates at once.
    w.insert(19 * E, d(19));
    assert_eq!(t.stats().current_epoch_start_ns, Some(19 * E));
    assert_eq!(t.stats().future_dropped, s.future_dropped);
}

/// A sustained jump (a real clock step, captures of another day) is accepted after
/// `FUTURE_CONFIRM` packets near the same new epoch; the first `FUTURE_CONFIRM - 1` are lost.
#[test]
fn sustained_far_future_jump_is_accepted_after_confirmation() {
    let confirm = u64::from(crate::FUTURE_CONFIRM);
    let t = tables(FilterKind::Standard, 3);
    let mut w = t.writer();
    w.insert(5 * E, d(5));
    let base = 86_400 * E;
    for i in 0..confirm {
        // Within `max_jump` of the first, spread over neighbouring epochs; ordinary packets
        // in between do not reset the count.
        w.insert(5 * E + 2, d(6));
        w.insert(base + (i % 3) * E, d(1000 + i));
        if i + 1 < confirm {
            assert_eq!(t.stats().current_epoch_start_ns, Some(5 * E), "packet {i}");
        }
    }
    let s = t.stats();
    assert_eq!(s.future_dropped, confirm - 1);
    let jumped = base + ((confirm - 1) % 3) * E;
    assert_eq!(s.current_epoch_start_ns, Some(jumped));
    assert_eq!(found_in(&t, d(1000 + confirm - 1)), vec![jumped / E]);
    for i in 0..confirm - 1 {
        assert!(found_in(&t, d(1000 + i)).is_empty());
    }
    // The old epoch is now out of the window; traffic continues in the new time.
    w.insert(5 * E + 3, d(7));
    assert_eq!(t.stats().too_old, 1);
    w.insert(jumped + E, d(8));
    assert_eq!(found_in(&t, d(8)), vec![jumped / E + 1]);
    assert_eq!(t.stats().future_dropped, confirm - 1);
}

/// `retire_all` (the service's shutdown) spills every epoch still in memory; a new table on
/// the same directory answers for them from disk.
#[test]
fn retire_all_spills_memory_epochs_for_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(FilterKind::Blocked, 3, Some((dir.path(), u64::MAX)));
    {
        let t = DigestTables::new(cfg.clone()).unwrap();
        let handle = t.spawn_maintenance();
        let mut w = t.writer();
        w.insert(7 * E, d(7));
        w.insert(8 * E, d(8));
        w.insert(8 * E + 1, d(88));
        drop(w);
        handle.stop();
        // Stopping the thread spilled nothing.
        assert!(t.epochs().iter().all(|i| !i.on_disk));
        let r = t.retire_all().unwrap();
        assert_eq!((r.spilled, r.cleared), (2, 2));
        assert_eq!(t.stats().spilled_epochs, 2);
    }
    let t = DigestTables::new(cfg).unwrap();
    let infos: Vec<(u64, u64, bool)> = t
        .epochs()
        .iter()
        .map(|i| (i.epoch_start_ns / E, i.inserted, i.on_disk))
        .collect();
    assert_eq!(infos, vec![(7, 1, true), (8, 2, true)]);
    for (h, e) in [(d(7), 7), (d(8), 8), (d(88), 8)] {
        let m = t.query(h, 0, u64::MAX);
        assert_eq!(m.len(), 1);
        assert!(m[0].on_disk);
        assert_eq!(m[0].epoch_start_ns, e * E);
    }
}

/// Without spilling, `retire_all` just clears; the tables keep working.
#[test]
fn retire_all_without_spill_clears() {
    let t = tables(FilterKind::Standard, 3);
    let mut w = t.writer();
    w.insert(E, d(1));
    w.insert(2 * E, d(2));
    let r = t.retire_all().unwrap();
    assert_eq!((r.spilled, r.cleared), (0, 2));
    assert!(t.epochs().is_empty());
    w.insert(2 * E + 5, d(3));
    assert_eq!(found_in(&t, d(3)), vec![2]);
    assert_eq!(t.stats().stalls, 0);
}

/// A FIFO (or symlink) named like a spill file is never opened: start-up does not block, and
/// it is ignored and counted, never deleted by the budget.
#[test]
fn fifo_and_symlink_in_spill_dir_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("epoch-1-x.ashbloom");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("epoch-2.ashbloom")).unwrap();
    let t = DigestTables::new(config(FilterKind::Standard, 1, Some((dir.path(), 0)))).unwrap();
    let s = t.stats();
    assert_eq!(
        (s.ignored_files, s.spill_errors, s.ignored_bytes),
        (2, 0, 0)
    );
    assert!(t.epochs().is_empty());
    assert!(fifo.exists());
    assert!(std::fs::symlink_metadata(dir.path().join("epoch-2.ashbloom")).is_ok());
    // The file opener itself refuses a FIFO without blocking.
    assert!(crate::read_spill_header(&fifo).is_err());
}

/// Spill files this table does not index still take disk space: the budget counts them and
/// deletes them first, oldest first.
#[test]
fn budget_counts_and_deletes_unindexed_files_first() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(FilterKind::Standard, 1, Some((dir.path(), u64::MAX)));
    {
        let mut foreign = cfg.clone();
        foreign.table_id ^= 1;
        let t = DigestTables::new(foreign).unwrap();
        let mut w = t.writer();
        w.insert(0, d(1));
        w.insert(E, d(1));
        t.maintain().unwrap();
    }
    std::fs::write(dir.path().join("junk.ashbloom"), vec![0u8; 1000]).unwrap();
    let per_file = HEADER_LEN as u64 + cfg.params.bytes();
    {
        let t = DigestTables::new(cfg.clone()).unwrap();
        let s = t.stats();
        assert_eq!((s.ignored_files, s.spill_errors), (1, 1));
        assert_eq!((s.ignored_bytes, s.spill_bytes), (per_file + 1000, 0));
        let mut w = t.writer();
        w.insert(0, d(2));
        w.insert(E, d(2));
        t.maintain().unwrap();
        assert_eq!(t.stats().spill_bytes, per_file);
    }
    // Budget for two files: the oldest unindexed file goes (the foreign one, written first).
    let mut two = cfg.clone();
    two.spill.as_mut().unwrap().budget_bytes = 2 * per_file;
    let t = DigestTables::new(two).unwrap();
    let s = t.stats();
    assert_eq!((s.ignored_bytes, s.spill_bytes), (1000, per_file));
    assert!(!dir.path().join("epoch-0.ashbloom").exists());
    assert!(dir.path().join("junk.ashbloom").exists());
    assert_eq!(found_in(&t, d(2)), vec![0]);
    // A budget of one file: the junk goes too, our epoch stays.
    let mut one = cfg;
    one.spill.as_mut().unwrap().budget_bytes = per_file;
    drop(t);
    let t = DigestTables::new(one).unwrap();
    let s = t.stats();
    assert_eq!((s.ignored_bytes, s.spill_bytes), (0, per_file));
    assert_eq!(found_in(&t, d(2)), vec![0]);
    assert_eq!(spill_files(dir.path()), 1);
}

/// A concurrent writer still holding batched inserts when another writer's rotation seals the
/// epoch: the spill header does not claim 0 inserts for a filter with bits set.
#[test]
fn spill_header_count_is_never_implausibly_low() {
    let dir = tempfile::tempdir().unwrap();
    let t = DigestTables::new(config(
        FilterKind::Standard,
        1,
        Some((dir.path(), u64::MAX)),
    ))
    .unwrap();
    let mut a = t.writer();
    a.set_concurrent(true);
    for i in 0..200 {
        a.insert(3, d(5000 + i));
    }
    let mut b = t.writer();
    b.set_concurrent(true);
    b.insert(E, d(1));
    b.flush_counts();
    t.maintain().unwrap();
    let header = crate::read_spill_header(&dir.path().join("epoch-0.ashbloom")).unwrap();
    assert!(header.ones > 700, "{header:?}");
    assert!((180..220).contains(&header.inserted), "{header:?}");
    let m = t.query(d(5000), 0, 0);
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].inserted, header.inserted);
    assert!(m[0].fpr > 0.0);
    drop(a);
}
