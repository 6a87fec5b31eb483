//! Tests of the coverage decision: every reason, the precedence between them, the bounded loss
//! record, and windows far larger than anything held.

use super::{Coverage, Gap, GapReason, LossCause, LostEpochs, gaps};

const E: u64 = 1_000_000_000;

fn cov(first: u64, current: u64, retention: u32, spilling: bool) -> Coverage {
    Coverage {
        epoch_ns: E,
        retention_epochs: retention,
        spilling,
        first_epoch: Some(first),
        current_epoch: Some(current),
        ..Coverage::default()
    }
}

/// Gaps as (first epoch, last epoch inclusive, reason) for windows on epoch boundaries.
fn epochs_of(g: &[Gap]) -> Vec<(u64, u64, GapReason)> {
    g.iter()
        .map(|g| (g.from_ns / E, (g.to_ns - 1) / E, g.reason))
        .collect()
}

fn window(c: &Coverage, from: u64, to: u64, done: bool) -> Vec<(u64, u64, GapReason)> {
    epochs_of(&gaps(c, from * E, (to + 1) * E - 1, done, 0))
}

#[test]
fn live_memory_only_probe() {
    // Recording since epoch 10, now at 20, 3 epochs in memory: 18..=20 are held.
    let c = cov(10, 20, 3, false);
    assert_eq!(
        window(&c, 5, 25, false),
        vec![
            (5, 9, GapReason::NotRecorded),
            (10, 17, GapReason::Expired),
            (21, 25, GapReason::NotYetRecorded),
        ]
    );
    // Inside what is held there is no gap: quiet epochs there are a true "not seen".
    assert!(window(&c, 18, 20, false).is_empty());
}

#[test]
fn a_finished_input_did_not_record_the_time_after_its_last_packet() {
    let c = cov(10, 20, 100, false);
    // A capture file ended: the link did not go quiet, nothing was recorded after it.
    assert_eq!(
        window(&c, 8, 40, true),
        vec![
            (8, 9, GapReason::NotRecorded),
            (21, 40, GapReason::NotRecorded)
        ]
    );
    assert_eq!(
        window(&c, 8, 40, false),
        vec![
            (8, 9, GapReason::NotRecorded),
            (21, 40, GapReason::NotYetRecorded)
        ]
    );
}

#[test]
fn spilling_holds_everything_recorded_except_what_the_budget_deleted() {
    let mut c = cov(10, 30, 3, true);
    assert!(window(&c, 10, 30, false).is_empty());
    c.deleted_through = Some(12);
    assert_eq!(
        window(&c, 10, 30, false),
        vec![(10, 12, GapReason::Expired)]
    );
    // Files of an earlier run answer for their epochs; the time between them was not recorded
    // by this probe, except what the budget deleted.
    c.deleted_through = Some(3);
    c.disk_epochs = vec![5, 6, 8];
    assert_eq!(
        window(&c, 0, 12, true),
        vec![
            (0, 3, GapReason::Expired),
            (4, 4, GapReason::NotRecorded),
            (7, 7, GapReason::NotRecorded),
            (9, 9, GapReason::NotRecorded),
        ]
    );
}

#[test]
fn lost_epochs_override_everything_else() {
    let mut c = cov(10, 30, 3, true);
    c.lost = vec![
        (12, 13, LossCause::SpillWriteFailed),
        (15, 15, LossCause::SpillFileRejected),
    ];
    c.disk_epochs = vec![15];
    c.add_unreadable([14, 20]);
    assert_eq!(
        window(&c, 10, 30, true),
        vec![
            (12, 13, GapReason::Lost(LossCause::SpillWriteFailed)),
            (14, 14, GapReason::Lost(LossCause::SpillFileUnreadable)),
            (15, 15, GapReason::Lost(LossCause::SpillFileRejected)),
            (20, 20, GapReason::Lost(LossCause::SpillFileUnreadable)),
        ]
    );
}

#[test]
fn nothing_recorded_yet() {
    let c = Coverage {
        epoch_ns: E,
        retention_epochs: 60,
        ..Coverage::default()
    };
    let g = gaps(&c, 10 * E, 30 * E - 1, false, 20 * E + 5);
    assert_eq!(
        epochs_of(&g),
        vec![
            (10, 19, GapReason::NotRecorded),
            (20, 29, GapReason::NotYetRecorded)
        ]
    );
    // An empty capture file: nothing was recorded anywhere in the window.
    let g = gaps(&c, 10 * E, 30 * E - 1, true, 20 * E);
    assert_eq!(epochs_of(&g), vec![(10, 29, GapReason::NotRecorded)]);
}

#[test]
fn gaps_are_clipped_to_the_window() {
    let c = cov(10, 20, 3, false);
    let g = gaps(&c, 5 * E + 7, 25 * E + 3, false, 0);
    assert_eq!(g.first().map(|g| g.from_ns), Some(5 * E + 7));
    assert_eq!(g.last().map(|g| g.to_ns), Some(25 * E + 3));
    assert!(gaps(&c, 9, 3, false, 0).is_empty(), "inverted window");
}

#[test]
fn the_whole_time_axis_is_cheap() {
    let mut c = cov(1_600_000_000, 1_600_000_100, 60, true);
    c.disk_epochs = (1_500_000_000..1_500_100_000).step_by(2).collect();
    let g = gaps(&c, 0, u64::MAX, false, 0);
    assert_eq!(
        g.first().map(|g| (g.from_ns, g.reason)),
        Some((0, GapReason::NotRecorded))
    );
    assert_eq!(
        g.last().map(|g| (g.to_ns, g.reason)),
        Some((u64::MAX, GapReason::NotYetRecorded))
    );
    // One gap between each pair of files, one before them, one after, one in the future.
    assert_eq!(g.len(), 50_000 + 2);
}

#[test]
fn loss_record_merges_neighbours_and_stays_bounded() {
    let mut l = LostEpochs::default();
    for e in [5, 7, 6] {
        l.insert(e, LossCause::SpillWriteFailed);
    }
    assert_eq!(l.within(0, 100), vec![(5, 7, LossCause::SpillWriteFailed)]);
    l.insert(6, LossCause::SpillFileUnreadable);
    assert_eq!(l.within(6, 6), vec![(5, 7, LossCause::Several)]);
    let mut l = LostEpochs::default();
    let n = LostEpochs::CAP as u64 + 10;
    for i in 0..n {
        l.insert(i * 10, LossCause::SpillWriteFailed);
    }
    assert_eq!(l.len(), LostEpochs::CAP);
    // Collapsing only widens: every epoch recorded is still recorded as lost.
    let ranges = l.within(0, u64::MAX);
    for i in 0..n {
        let e = i * 10;
        assert!(
            ranges.iter().any(|&(s, end, _)| s <= e && e <= end),
            "epoch {e} forgotten"
        );
    }
}
