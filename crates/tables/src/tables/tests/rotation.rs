//! Epochs: rotation, retention, out-of-order and far-future packets, time windows.

use super::{E, config, d, found_in, tables};
use crate::params::FilterKind;
use crate::tables::{DigestTables, EpochMatch};

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

/// An idle input that the probe marks as read (`touch`) has no gap over the quiet time, and
/// nothing is inserted; without it, the same window reads as never recorded.
#[test]
fn touch_records_quiet_epochs_without_inserting() {
    use crate::coverage::gaps;
    let t = tables(FilterKind::Standard, 8);
    let quiet = |t: &DigestTables| gaps(&t.coverage(3 * E, 5 * E), 3 * E, 5 * E, false, 6 * E);
    assert!(
        !quiet(&t).is_empty(),
        "nothing recorded yet must leave gaps"
    );
    let mut w = t.writer();
    w.touch(3 * E);
    w.touch(5 * E + 1);
    w.touch(4 * E); // older than the newest: kept as it is
    assert!(quiet(&t).is_empty(), "{:?}", quiet(&t));
    let s = t.search(&[42], 3 * E, 5 * E);
    assert!(s.matches[0].is_empty());
    assert_eq!(t.stats().inserted, 0);
}
