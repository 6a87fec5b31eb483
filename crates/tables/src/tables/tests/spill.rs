//! Spill files: round trips, the budget, restarts, damaged and foreign files.

use super::{E, config, d, file_bytes, found_in, spill_files, tables};
use crate::params::{FilterKind, FilterParams};
use crate::spill::HEADER_LEN;
use crate::tables::DigestTables;

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
