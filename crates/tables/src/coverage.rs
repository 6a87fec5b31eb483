//! Coverage: which parts of a time window the tables can answer for, and why not the rest.
//!
//! A Bloom filter answers "not present" for a digest only about the epochs it recorded. An
//! answer "not seen" over a window is therefore true only if every epoch of the window was
//! recorded and is still held; otherwise the honest answer is "unknown", with the reason. This
//! module is the pure part of that decision: [`gaps`] takes a [`Coverage`] snapshot (what the
//! tables recorded, hold, deleted and lost — taken by [`crate::DigestTables::coverage`]), the
//! window, whether the input is finished, and the time, and returns the [`Gap`]s. No IO, no
//! clock: the caller passes `now_ns`.
//!
//! Reasons, by epoch `e` of the window, with `first` the oldest epoch recorded in this run and
//! `current` the newest:
//!
//! * `e > current`: nothing recorded yet — [`GapReason::NotYetRecorded`] on a live input;
//!   covered once a finite input is fully read (nothing more will arrive);
//! * `first ≤ e ≤ current`: recorded. Held unless it left memory without a spill directory
//!   (`e + retention ≤ current`) or the spill budget deleted it (`e ≤ deleted_through`):
//!   [`GapReason::Expired`]. An epoch with no packets is held: "not seen" is the truth there;
//! * `e < first`: before this run — covered only where a spill file (of an earlier run) holds
//!   it, else [`GapReason::NotRecorded`] ([`GapReason::Expired`] if the budget deleted it);
//! * with no epoch recorded at all: [`GapReason::NotRecorded`] before `now`, and after it
//!   [`GapReason::NotYetRecorded`] on a live input;
//! * any epoch in the lost record ([`LostEpochs`]: its spill write failed, its file was
//!   rejected at start, or could not be read by this query) is [`GapReason::Lost`], whatever
//!   else holds it.

use std::collections::BTreeMap;

/// Why an epoch that should be held is lost.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LossCause {
    /// Its spill file could not be written (full disk, removed directory, IO error).
    SpillWriteFailed,
    /// A spill file of it was rejected at start (bad header, length or contents).
    SpillFileRejected,
    /// Its spill file could not be read when queried (removed, replaced, truncated).
    SpillFileUnreadable,
    /// Several of the above, collapsed to keep the record bounded.
    Several,
}

impl LossCause {
    /// A stable name for the JSON answer.
    pub fn as_str(self) -> &'static str {
        match self {
            LossCause::SpillWriteFailed => "spill_write_failed",
            LossCause::SpillFileRejected => "spill_file_rejected",
            LossCause::SpillFileUnreadable => "spill_file_unreadable",
            LossCause::Several => "several",
        }
    }
}

/// Why part of a window cannot be answered.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GapReason {
    /// Should be held but is not (see [`LossCause`]).
    Lost(LossCause),
    /// Older than what is still held: left memory with no spill directory, or deleted by the
    /// spill budget.
    Expired,
    /// Before this probe started recording, and no spill file covers it.
    NotRecorded,
    /// After the newest epoch ingested, on an input that is still running.
    NotYetRecorded,
}

impl GapReason {
    /// `lost`, `expired`, `not_recorded` or `not_yet_recorded`.
    pub fn as_str(self) -> &'static str {
        match self {
            GapReason::Lost(_) => "lost",
            GapReason::Expired => "expired",
            GapReason::NotRecorded => "not_recorded",
            GapReason::NotYetRecorded => "not_yet_recorded",
        }
    }

    /// For [`GapReason::Lost`], which loss.
    pub fn detail(self) -> Option<&'static str> {
        match self {
            GapReason::Lost(c) => Some(c.as_str()),
            _ => None,
        }
    }
}

/// A part of a window the tables cannot answer for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gap {
    /// Start, ns since the Unix epoch (clipped to the window).
    pub from_ns: u64,
    /// End (clipped to the window; an epoch boundary otherwise, exclusive).
    pub to_ns: u64,
    /// Why.
    pub reason: GapReason,
}

/// A bounded record of lost epochs, as ranges of epoch numbers.
///
/// Adjacent epochs with the same cause share a range. Past [`LostEpochs::CAP`] ranges, the
/// two oldest neighbouring ranges are merged into one (cause [`LossCause::Several`] if they
/// differ), which may also mark the epochs between them lost: the record only ever grows
/// towards "unknown", never towards a false "not seen".
#[derive(Clone, Debug, Default)]
pub struct LostEpochs {
    /// start epoch → (end epoch inclusive, cause).
    ranges: BTreeMap<u64, (u64, LossCause)>,
}

impl LostEpochs {
    /// Most ranges kept.
    pub const CAP: usize = 4096;

    /// Records `epoch` as lost.
    pub fn insert(&mut self, epoch: u64, cause: LossCause) {
        if let Some((&s, &(e, c))) = self.ranges.range(..=epoch).next_back()
            && epoch <= e
        {
            if c != cause {
                self.ranges.insert(s, (e, LossCause::Several));
            }
            return;
        }
        let mut start = epoch;
        let mut end = epoch;
        if let Some((&s, &(e, c))) = self.ranges.range(..epoch).next_back()
            && e.checked_add(1) == Some(epoch)
            && c == cause
        {
            self.ranges.remove(&s);
            start = s;
        }
        if let Some(next) = epoch.checked_add(1)
            && let Some(&(e, c)) = self.ranges.get(&next)
            && c == cause
        {
            self.ranges.remove(&next);
            end = e;
        }
        self.ranges.insert(start, (end, cause));
        while self.ranges.len() > Self::CAP {
            let mut it = self.ranges.iter();
            let (Some((&s1, &(_, c1))), Some((&s2, &(e2, c2)))) = (it.next(), it.next()) else {
                break;
            };
            self.ranges.remove(&s1);
            self.ranges.remove(&s2);
            let c = if c1 == c2 { c1 } else { LossCause::Several };
            self.ranges.insert(s1, (e2, c));
        }
    }

    /// Ranges `(first, last inclusive, cause)` that meet epochs `from..=to`, oldest first.
    pub fn within(&self, from: u64, to: u64) -> Vec<(u64, u64, LossCause)> {
        let start = self
            .ranges
            .range(..=from)
            .next_back()
            .filter(|(_, (e, _))| *e >= from)
            .map_or(from, |(&s, _)| s);
        self.ranges
            .range(start..=to)
            .map(|(&s, &(e, c))| (s, e, c))
            .collect()
    }

    /// Number of ranges held.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// True when nothing was lost.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

/// What the tables know about the epochs of a window; see the module docs.
#[derive(Clone, Debug, Default)]
pub struct Coverage {
    /// Epoch length, ns.
    pub epoch_ns: u64,
    /// Epochs held in memory.
    pub retention_epochs: u32,
    /// A spill directory is configured: epochs leaving memory go to disk.
    pub spilling: bool,
    /// Oldest epoch recorded in this run.
    pub first_epoch: Option<u64>,
    /// Newest epoch recorded.
    pub current_epoch: Option<u64>,
    /// Newest epoch the spill budget deleted (deletion goes oldest first).
    pub deleted_through: Option<u64>,
    /// Epochs held by spill files, sorted (those in the window suffice).
    pub disk_epochs: Vec<u64>,
    /// Lost ranges `(first, last inclusive, cause)`, sorted (those in the window suffice).
    pub lost: Vec<(u64, u64, LossCause)>,
}

impl Coverage {
    /// Adds epochs a query could not read (their spill file failed at query time).
    pub fn add_unreadable(&mut self, epochs: impl IntoIterator<Item = u64>) {
        let mut lost = LostEpochs {
            ranges: self.lost.iter().map(|&(s, e, c)| (s, (e, c))).collect(),
        };
        for epoch in epochs {
            lost.insert(epoch, LossCause::SpillFileUnreadable);
        }
        self.lost = lost.within(0, u64::MAX);
    }
}

/// The parts of the window `from_ns..=to_ns` that `cov` cannot answer for, oldest first,
/// adjacent parts with the same reason merged. `input_done`: a finite input was read to its
/// end (the time after its last epoch is then `not_recorded`, not `not_yet_recorded`).
/// `now_ns`: the time, used only when nothing was recorded yet.
pub fn gaps(cov: &Coverage, from_ns: u64, to_ns: u64, input_done: bool, now_ns: u64) -> Vec<Gap> {
    if from_ns > to_ns || cov.epoch_ns == 0 {
        return Vec::new();
    }
    let e_ns = cov.epoch_ns;
    // Half-open epoch intervals; `hi` is at most u64::MAX / 1000 + 1, so no overflow.
    let (lo, hi) = (from_ns / e_ns, to_ns / e_ns + 1);
    let clip = |a: u64, b: u64| (a.max(lo), b.min(hi));
    // Base segments [a, b) with their reason (None = covered), before disk files and losses.
    let mut base: Vec<(u64, u64, Option<GapReason>)> = Vec::new();
    let mut push = |a: u64, b: u64, r: Option<GapReason>| {
        let (a, b) = clip(a, b);
        if a < b {
            base.push((a, b, r));
        }
    };
    let deleted_end = cov.deleted_through.map_or(0, |d| d.saturating_add(1));
    match cov.current_epoch {
        None => {
            let now = if input_done { hi } else { now_ns / e_ns };
            push(0, deleted_end, Some(GapReason::Expired));
            push(deleted_end, now, Some(GapReason::NotRecorded));
            push(now.max(deleted_end), hi, Some(GapReason::NotYetRecorded));
        }
        Some(c) => {
            let first = cov.first_epoch.unwrap_or(c).min(c);
            push(0, deleted_end.min(first), Some(GapReason::Expired));
            push(deleted_end.min(first), first, Some(GapReason::NotRecorded));
            let held_from = if cov.spilling {
                deleted_end
            } else {
                // Memory holds current - retention + 1 ..= current.
                (c + 1).saturating_sub(u64::from(cov.retention_epochs))
            };
            let held_from = held_from.clamp(first, c + 1);
            push(first, held_from, Some(GapReason::Expired));
            push(held_from, c + 1, None);
            // After a finished input (a capture file) nothing was recorded: the capture
            // ended, the link did not go quiet. Never answer `not_seen` for that time.
            let after = if input_done {
                GapReason::NotRecorded
            } else {
                GapReason::NotYetRecorded
            };
            push(c + 1, hi, Some(after));
        }
    }
    // Elementary intervals between every boundary.
    let mut cuts: Vec<u64> = vec![lo, hi];
    cuts.extend(base.iter().flat_map(|&(a, b, _)| [a, b]));
    for &d in &cov.disk_epochs {
        let (a, b) = clip(d, d.saturating_add(1));
        cuts.extend([a, b]);
    }
    for &(s, e, _) in &cov.lost {
        let (a, b) = clip(s, e.saturating_add(1));
        cuts.extend([a, b]);
    }
    cuts.retain(|&x| (lo..=hi).contains(&x));
    cuts.sort_unstable();
    cuts.dedup();
    let mut out: Vec<Gap> = Vec::new();
    let mut last: Option<(u64, u64, GapReason)> = None;
    for w in cuts.windows(2) {
        let (a, b) = (w[0], w[1]);
        // `lost` is sorted and its ranges do not overlap: the last one starting at or before
        // `a` is the only candidate.
        let i = cov.lost.partition_point(|&(s, _, _)| s <= a);
        let lost = i
            .checked_sub(1)
            .map(|i| cov.lost[i])
            .filter(|&(_, e, _)| a <= e)
            .map(|(_, _, c)| GapReason::Lost(c));
        let reason = lost.or_else(|| {
            let r = base
                .iter()
                .find(|&&(s, e, _)| s <= a && a < e)
                .and_then(|&(_, _, r)| r);
            // A spill file answers for its epoch whatever the base says (an earlier run's).
            match r {
                Some(GapReason::NotRecorded | GapReason::Expired)
                    if b - a == 1 && cov.disk_epochs.binary_search(&a).is_ok() =>
                {
                    None
                }
                r => r,
            }
        });
        match (reason, &mut last) {
            (Some(r), Some((_, end, lr))) if *end == a && *lr == r => *end = b,
            (Some(r), _) => {
                if let Some(prev) = last.take() {
                    out.push(to_gap(prev, e_ns, from_ns, to_ns));
                }
                last = Some((a, b, r));
            }
            (None, _) => {
                if let Some(prev) = last.take() {
                    out.push(to_gap(prev, e_ns, from_ns, to_ns));
                }
            }
        }
    }
    if let Some(prev) = last {
        out.push(to_gap(prev, e_ns, from_ns, to_ns));
    }
    out
}

fn to_gap((a, b, reason): (u64, u64, GapReason), e_ns: u64, from: u64, to: u64) -> Gap {
    Gap {
        from_ns: a.saturating_mul(e_ns).max(from),
        to_ns: b.saturating_mul(e_ns).min(to),
        reason,
    }
}

#[cfg(test)]
#[path = "coverage_tests.rs"]
mod tests;
