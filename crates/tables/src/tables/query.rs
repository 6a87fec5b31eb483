//! The read side: which epochs hold a digest, what is answerable, and what a window covers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{DigestTables, EpochInfo, EpochMatch, ONES_UNKNOWN, Slot};
use crate::coverage::Coverage;
use crate::events::TableEvent;
use crate::store::StoredEpoch;
use crate::theory::{self, union_fpr};

/// An epoch to test in a query: its memory slot and/or spill files.
struct Candidate {
    epoch: u64,
    slot: Option<usize>,
    disk: Vec<Arc<StoredEpoch>>,
}

/// What one filter (memory or disk) of an epoch said about a batch.
struct Part {
    hits: Vec<bool>,
    inserted: u64,
    /// The filter's own false-positive rate (its own parameters).
    fpr: f64,
    on_disk: bool,
}

/// One epoch a search actually tested (at least one of its filters was read).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SearchedEpoch {
    /// Start of the epoch, ns since the Unix epoch.
    pub epoch_start_ns: u64,
    /// False-positive rate of the filters read ("any of them answers present").
    pub fpr: f64,
}

/// The result of [`DigestTables::search`].
#[derive(Clone, Debug, Default)]
pub struct Search {
    /// Per digest, in input order: the epochs that hold it, oldest first.
    pub matches: Vec<Vec<EpochMatch>>,
    /// Every epoch tested, oldest first: the basis of a false-match probability.
    pub searched: Vec<SearchedEpoch>,
    /// Epochs with a spill file that could not be read now (removed, replaced, truncated, IO
    /// error). A digest not found elsewhere cannot be said "not seen" there; each failure was
    /// also reported as a [`TableEvent::SpillReadFailed`].
    pub unreadable: Vec<u64>,
}

impl DigestTables {
    fn candidates(&self, from_epoch: u64, to_epoch: u64) -> Vec<Candidate> {
        let g = self.lock();
        let mut by_epoch: BTreeMap<u64, Candidate> = BTreeMap::new();
        for (s, &state) in g.slots.iter().enumerate() {
            if let Some(e) = self
                .answerable(state)
                .filter(|e| (from_epoch..=to_epoch).contains(e))
            {
                by_epoch.insert(
                    e,
                    Candidate {
                        epoch: e,
                        slot: Some(s),
                        disk: Vec::new(),
                    },
                );
            }
        }
        for (&e, files) in g.disk.range(from_epoch..=to_epoch) {
            by_epoch
                .entry(e)
                .or_insert(Candidate {
                    epoch: e,
                    slot: None,
                    disk: Vec::new(),
                })
                .disk
                .clone_from(files);
        }
        by_epoch.into_values().collect()
    }

    /// Which epochs overlapping `[from_ns, to_ns]` (memory or disk) contain `h`, oldest first.
    pub fn query(&self, h: u128, from_ns: u64, to_ns: u64) -> Vec<EpochMatch> {
        self.query_batch(&[h], from_ns, to_ns)
            .pop()
            .unwrap_or_default()
    }

    /// [`DigestTables::query`] for many digests against one snapshot of the epoch index.
    pub fn query_batch(&self, hs: &[u128], from_ns: u64, to_ns: u64) -> Vec<Vec<EpochMatch>> {
        self.search(hs, from_ns, to_ns).matches
    }

    /// [`DigestTables::query_batch`], also saying which epochs were tested and which could
    /// not be read: what an answer needs to tell "not seen" from "unknown".
    pub fn search(&self, hs: &[u128], from_ns: u64, to_ns: u64) -> Search {
        self.search_with(hs, from_ns, to_ns, &mut || {})
    }

    /// The search, with `between` run after a slot's bits were read and before its epoch is
    /// re-checked: the test hook for the recycle race.
    pub(super) fn search_with(
        &self,
        hs: &[u128],
        from_ns: u64,
        to_ns: u64,
        between: &mut dyn FnMut(),
    ) -> Search {
        let mut out = Search {
            matches: vec![Vec::new(); hs.len()],
            ..Search::default()
        };
        if from_ns > to_ns || hs.is_empty() {
            return out;
        }
        let (from_epoch, to_epoch) = (from_ns / self.cfg.epoch_ns, to_ns / self.cfg.epoch_ns);
        for mut cand in self.candidates(from_epoch, to_epoch) {
            let mut parts = Vec::new();
            if let Some(s) = cand.slot {
                let slot = &self.slots[s];
                let read = slot.read_consistent(cand.epoch, |b| {
                    let hits = hs.iter().map(|&h| b.contains(h)).collect::<Vec<_>>();
                    between();
                    hits
                });
                match read {
                    Some((hits, inserted)) => parts.push(Part {
                        hits,
                        inserted,
                        fpr: theory::fpr(&self.cfg.params, inserted),
                        on_disk: false,
                    }),
                    // Recycled while we read: the epoch is gone from memory; it may have
                    // reached disk just before.
                    None => {
                        cand.disk = self
                            .lock()
                            .disk
                            .get(&cand.epoch)
                            .cloned()
                            .unwrap_or_default();
                    }
                }
            }
            let (start, end) = self.epoch_bounds(cand.epoch);
            let mut unreadable = false;
            for f in &cand.disk {
                // Membership with the file's own parameters (its `Indexer`), FPR too. An
                // epoch reaches `disk` only through the store, so there is one.
                let Some(store) = &self.store else { break };
                match f.contains_batch(store.as_ref(), hs) {
                    Ok(hits) => parts.push(Part {
                        hits,
                        inserted: f.inserted(),
                        fpr: f.fpr(),
                        on_disk: true,
                    }),
                    Err(error) => {
                        unreadable = true;
                        self.emit(TableEvent::SpillReadFailed {
                            path: f.location().to_path_buf(),
                            epoch_start_ns: start,
                            error,
                        });
                    }
                }
            }
            if unreadable {
                out.unreadable.push(cand.epoch);
            }
            if parts.is_empty() {
                continue;
            }
            let inserted = parts
                .iter()
                .fold(0u64, |acc, p| acc.saturating_add(p.inserted));
            // The epoch answers "present" if any of its filters does (usually there is one;
            // two after a restart re-spilled an epoch already on disk).
            let fpr = union_fpr(parts.iter().map(|p| p.fpr));
            out.searched.push(SearchedEpoch {
                epoch_start_ns: start,
                fpr,
            });
            for (j, matches) in out.matches.iter_mut().enumerate() {
                let mem_hit = parts.iter().any(|p| !p.on_disk && p.hits[j]);
                if mem_hit || parts.iter().any(|p| p.hits[j]) {
                    matches.push(EpochMatch {
                        epoch_start_ns: start,
                        epoch_end_ns: end,
                        inserted,
                        fpr,
                        on_disk: !mem_hit,
                    });
                }
            }
        }
        out
    }

    /// What the tables know about the epochs of `[from_ns, to_ns]`, for
    /// [`crate::coverage::gaps`]. Take it *after* a search of the same window: an epoch lost
    /// or deleted in between then shows as a gap (an answer that errs towards "unknown"),
    /// never as a held epoch that the search did not test.
    pub fn coverage(&self, from_ns: u64, to_ns: u64) -> Coverage {
        let (from_epoch, to_epoch) = (from_ns / self.cfg.epoch_ns, to_ns / self.cfg.epoch_ns);
        let g = self.lock();
        let disk_epochs = if from_epoch <= to_epoch {
            g.disk
                .range(from_epoch..=to_epoch)
                .map(|(&e, _)| e)
                .collect()
        } else {
            Vec::new()
        };
        Coverage {
            epoch_ns: self.cfg.epoch_ns,
            retention_epochs: self.cfg.retention_epochs,
            spilling: self.store.is_some(),
            first_epoch: g.first,
            current_epoch: g.current,
            deleted_through: g.deleted_through,
            disk_epochs,
            lost: g.lost.within(from_epoch, to_epoch),
        }
    }

    /// Every epoch currently answerable, memory and disk, oldest first.
    pub fn epochs(&self) -> Vec<EpochInfo> {
        let current = self.lock().current;
        let mut out = Vec::new();
        for cand in self.candidates(0, u64::MAX) {
            let mut inserted = 0u64;
            let mut ones = None;
            let mut m_bits = 0u64;
            let mut rates = Vec::new();
            let mut in_memory = false;
            if let Some(s) = cand.slot {
                let slot: &Slot = &self.slots[s];
                if let Some(((n, o), _)) = slot.read_consistent(cand.epoch, |_| {
                    (
                        slot.inserted.load(Ordering::Relaxed),
                        slot.ones.load(Ordering::Relaxed),
                    )
                }) {
                    inserted = n;
                    ones = (o != ONES_UNKNOWN).then_some(o);
                    m_bits = self.cfg.params.m_bits;
                    rates.push(theory::fpr(&self.cfg.params, n));
                    in_memory = true;
                }
            }
            for f in &cand.disk {
                inserted = inserted.saturating_add(f.inserted());
                rates.push(f.fpr());
                if !in_memory {
                    ones = Some(ones.unwrap_or(0u64).saturating_add(f.header().ones));
                    m_bits = m_bits.saturating_add(f.header().params.m_bits);
                }
            }
            if !in_memory && cand.disk.is_empty() {
                continue;
            }
            let (start, end) = self.epoch_bounds(cand.epoch);
            out.push(EpochInfo {
                epoch_start_ns: start,
                epoch_end_ns: end,
                inserted,
                ones,
                m_bits,
                fpr: union_fpr(rates),
                on_disk: !in_memory,
                current: Some(cand.epoch) == current,
            });
        }
        out
    }
}
