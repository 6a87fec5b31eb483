//! Tests of what the tables do when the disk misbehaves: files changed or removed under a
//! query, write failures, rejected files, a second table on one directory, shutdown that
//! cannot save — and of the coverage record those failures feed.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::{E, config, d};
use crate::coverage::{GapReason, LossCause, gaps};
use crate::error::TableError;
use crate::events::{EventSink, TableEvent};
use crate::params::FilterKind;
use crate::tables::{DigestTables, TablesConfig};

/// A sink that keeps every event, and the events it kept.
fn recorder() -> (EventSink, Arc<Mutex<Vec<TableEvent>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = Arc::clone(&seen);
    let sink: EventSink = Arc::new(move |e| keep.lock().unwrap().push(e));
    (sink, seen)
}

/// Tables with `retention` 1 that spilled epochs `0..n` (digest `d(100 + e)` in epoch `e`),
/// epoch `n` still in memory.
fn spilled(dir: &Path, n: u64, events: Option<EventSink>) -> Arc<DigestTables> {
    let t = DigestTables::with_events(
        config(FilterKind::Blocked, 1, Some((dir, u64::MAX))),
        events,
    )
    .unwrap();
    let mut w = t.writer();
    for e in 0..=n {
        w.insert(e * E, d(100 + e));
        t.maintain().unwrap();
    }
    t
}

fn epoch_file(dir: &Path, e: u64) -> PathBuf {
    dir.join(format!("epoch-{}.ashbloom", e * E))
}

/// A spill file truncated, replaced or removed under a running table is an error for that
/// epoch only (it used to be mapped: truncation killed the process with SIGBUS).
#[test]
fn spill_file_changed_under_a_query_fails_only_that_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let (sink, seen) = recorder();
    let t = spilled(dir.path(), 4, Some(sink));
    let all: Vec<u128> = (0..5).map(|e| d(100 + e)).collect();
    let before = t.search(&all, 0, u64::MAX);
    assert!(before.unreadable.is_empty());
    assert_eq!(before.searched.len(), 5);
    // Truncate epoch 1, remove epoch 2, replace epoch 3 by a copy (another inode).
    let f1 = std::fs::OpenOptions::new()
        .write(true)
        .open(epoch_file(dir.path(), 1))
        .unwrap();
    f1.set_len(200).unwrap();
    std::fs::remove_file(epoch_file(dir.path(), 2)).unwrap();
    let copy = dir.path().join("copy");
    std::fs::copy(epoch_file(dir.path(), 3), &copy).unwrap();
    std::fs::rename(&copy, epoch_file(dir.path(), 3)).unwrap();
    let after = t.search(&all, 0, u64::MAX);
    assert_eq!(after.unreadable, vec![1, 2, 3]);
    let hit_epochs: Vec<Vec<u64>> = after
        .matches
        .iter()
        .map(|m| m.iter().map(|x| x.epoch_start_ns / E).collect())
        .collect();
    assert_eq!(hit_epochs, vec![vec![0], vec![], vec![], vec![], vec![4]]);
    assert_eq!(after.searched.len(), 2, "only epochs actually read count");
    let events = seen.lock().unwrap();
    let failed: Vec<&Path> = events
        .iter()
        .filter(|e| matches!(e, TableEvent::SpillReadFailed { .. }))
        .map(TableEvent::path)
        .collect();
    assert_eq!(failed.len(), 3);
    assert!(failed.contains(&epoch_file(dir.path(), 1).as_path()));
}

/// Lines of /proc/self/maps that name `dir`, and descriptors open on files in it.
fn maps_and_fds_in(dir: &Path) -> (usize, usize) {
    let needle = dir.to_string_lossy().into_owned();
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let mapped = maps.lines().filter(|l| l.contains(&needle)).count();
    let fds = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|p| p.starts_with(dir))
        .count();
    (mapped, fds)
}

/// Loading and querying many spilled epochs holds no mapping and at most the lock file's
/// descriptor: the epoch count is bounded by disk, not by `vm.max_map_count` or `ulimit -n`.
#[test]
fn spilled_epochs_hold_no_mapping_and_no_descriptor() {
    let dir = tempfile::tempdir().unwrap();
    let n = 300;
    drop(spilled(dir.path(), n, None));
    let t =
        DigestTables::new(config(FilterKind::Blocked, 1, Some((dir.path(), u64::MAX)))).unwrap();
    assert_eq!(t.epochs().len() as u64, n);
    let found = t.query(d(100 + n / 2), 0, u64::MAX);
    assert!(found.iter().any(|m| m.epoch_start_ns == n / 2 * E));
    let (mapped, fds) = maps_and_fds_in(dir.path());
    assert_eq!(mapped, 0);
    assert_eq!(fds, 1, "only the directory lock stays open");
}

/// Two tables on one spill directory would delete each other's files under their budgets:
/// the second is refused with a typed error naming the directory, until the first is gone.
#[test]
fn second_table_on_one_spill_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(FilterKind::Standard, 2, Some((dir.path(), u64::MAX)));
    let first = DigestTables::new(cfg.clone()).unwrap();
    let err = DigestTables::new(cfg.clone()).unwrap_err();
    match &err {
        TableError::SpillDirLocked { dir: locked, .. } => assert_eq!(locked, dir.path()),
        other => panic!("expected SpillDirLocked, got {other:?}"),
    }
    assert!(err.to_string().contains(&dir.path().display().to_string()));
    drop(first);
    DigestTables::new(cfg).unwrap();
}

fn unwritable(dir: &Path, events: Option<EventSink>) -> (Arc<DigestTables>, PathBuf) {
    let spill_dir = dir.join("spill");
    let t = DigestTables::with_events(
        config(FilterKind::Standard, 2, Some((&spill_dir, u64::MAX))),
        events,
    )
    .unwrap();
    std::fs::remove_dir_all(&spill_dir).unwrap();
    (t, spill_dir)
}

/// A failed spill write is reported (file, epoch, cause) and the epoch is recorded as lost,
/// so a query over it says "unknown" instead of "not seen".
#[test]
fn spill_write_failure_is_reported_and_the_epoch_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (sink, seen) = recorder();
    let (t, spill_dir) = unwritable(dir.path(), Some(sink));
    let mut w = t.writer();
    for e in 0..4 {
        w.insert(e * E, d(e));
    }
    let r = t.maintain().unwrap();
    assert_eq!((r.spilled, r.spill_failed), (0, 2));
    {
        let events = seen.lock().unwrap();
        let starts: Vec<u64> = events
            .iter()
            .filter_map(|e| match e {
                TableEvent::SpillWriteFailed {
                    path,
                    epoch_start_ns,
                    error,
                } => {
                    assert!(path.starts_with(&spill_dir));
                    assert!(matches!(error, TableError::Spill { .. }));
                    Some(*epoch_start_ns / E)
                }
                _ => None,
            })
            .collect();
        assert_eq!(starts, vec![0, 1]);
    }
    let cov = t.coverage(0, 4 * E - 1);
    let g = gaps(&cov, 0, 4 * E - 1, true, 0);
    assert_eq!(g.len(), 1);
    assert_eq!((g[0].from_ns, g[0].to_ns), (0, 2 * E));
    assert_eq!(g[0].reason, GapReason::Lost(LossCause::SpillWriteFailed));
    // Shutdown cannot save the two epochs in memory either: it says so.
    drop(w);
    match t.retire_all() {
        Err(TableError::EpochsNotSaved {
            failed,
            spilled,
            epoch_start_ns,
            ..
        }) => assert_eq!((failed, spilled, epoch_start_ns), (2, 0, 2 * E)),
        other => panic!("expected EpochsNotSaved, got {other:?}"),
    }
}

/// Without spilling there is nothing to save: retiring is not a failure.
#[test]
fn retire_all_succeeds_when_everything_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let t = spilled(dir.path(), 2, None);
    let r = t.retire_all().unwrap();
    assert_eq!((r.spilled, r.spill_failed), (1, 0));
}

/// Files rejected at start are named in an event, and a damaged file's epoch is lost.
#[test]
fn rejected_files_are_named_and_their_epochs_lost() {
    let dir = tempfile::tempdir().unwrap();
    drop(spilled(dir.path(), 3, None));
    let bad = epoch_file(dir.path(), 1);
    let mut bytes = std::fs::read(&bad).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&bad, &bytes).unwrap();
    let (sink, seen) = recorder();
    let cfg: TablesConfig = config(FilterKind::Blocked, 1, Some((dir.path(), u64::MAX)));
    let t = DigestTables::with_events(cfg, Some(sink)).unwrap();
    {
        let events = seen.lock().unwrap();
        assert_eq!(events.len(), 1);
        match &events[0] {
            TableEvent::SpillFileRejected {
                path,
                epoch_start_ns,
                error,
            } => {
                assert_eq!(path, &bad);
                assert_eq!(*epoch_start_ns, Some(E));
                assert!(matches!(error, TableError::BadSpillFile { .. }));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let cov = t.coverage(0, 3 * E - 1);
    assert_eq!(cov.lost, vec![(1, 1, LossCause::SpillFileRejected)]);
}

/// The coverage record: first and current epoch of this run, budget deletions.
#[test]
fn coverage_records_the_run_and_budget_deletions() {
    let dir = tempfile::tempdir().unwrap();
    let per_file = crate::spill::HEADER_LEN as u64 + 1024 / 8 * 16;
    let mut cfg = config(FilterKind::Blocked, 1, Some((dir.path(), u64::MAX)));
    cfg.params.m_bits = 1024 * 16;
    cfg.spill.as_mut().unwrap().budget_bytes = 2 * per_file;
    let t = DigestTables::new(cfg).unwrap();
    let mut w = t.writer();
    for e in 5..10 {
        w.insert(e * E, d(e));
        t.maintain().unwrap();
    }
    let cov = t.coverage(0, u64::MAX);
    assert_eq!((cov.first_epoch, cov.current_epoch), (Some(5), Some(9)));
    // Epochs 5..=8 were spilled, the budget keeps two files: 5 and 6 were deleted.
    assert_eq!(cov.deleted_through, Some(6));
    assert_eq!(cov.disk_epochs, vec![7, 8]);
    // Everything up to the newest deletion is older than what is held: expired, including
    // the epochs before this run's first (they may have been an earlier run's files).
    let g = gaps(&cov, 3 * E, 10 * E - 1, true, 0);
    let reasons: Vec<(u64, u64, GapReason)> = g
        .iter()
        .map(|g| (g.from_ns / E, g.to_ns / E, g.reason))
        .collect();
    assert_eq!(reasons, vec![(3, 7, GapReason::Expired)]);
}
