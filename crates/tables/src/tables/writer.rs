//! The ingest side: one [`Writer`] per ingest thread.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{DigestTables, EMPTY, Located};

/// Inserts digests into the epoch of their packet's timestamp.
///
/// It caches the slots of the two newest epochs it wrote to, so the usual insert is one
/// relaxed load of the tables' generation, a subtract-and-compare of the timestamp against the
/// cached epoch, and one Bloom insert; the index lock is taken once per epoch (rotation) or for packets of an
/// older epoch than the two cached.
///
/// The writer is also the shell of [`DigestTables`]' slot decision: when maintenance is behind
/// and no filter is clean, the decision (taken under the index lock, without IO) names a
/// retired filter, and the writer saves it to the tables' [`crate::EpochStore`] and clears it
/// before asking again. That path is cold and out of line (`insert_slow`): the per-packet
/// path is unchanged by it.
pub struct Writer {
    tables: Arc<DigestTables>,
    epoch_ns: u64,
    /// Newest and previous epoch written; `EMPTY` = unused entry.
    cache: [Cached; 2],
    /// The tables' generation the cache is valid for.
    generation: u64,
    concurrent: bool,
    /// Concurrent mode: inserts not yet added to `uncounted_slot`'s shared counter. Adding 1
    /// to a shared atomic per packet made two writers slower than one (the counter's cache
    /// line bounced between cores); batching keeps the count exact once flushed.
    uncounted: u64,
    uncounted_slot: usize,
}

/// Concurrent-mode inserts batched before the shared per-epoch counter is updated.
const COUNT_BATCH: u64 = 1024;

/// A cached epoch: its start time and length (so the hot path needs no division) and its slot.
#[derive(Clone, Copy, Debug)]
struct Cached {
    epoch: u64,
    start_ns: u64,
    /// Timestamps `start_ns..start_ns + len_ns` belong to the epoch: `epoch_ns`, except for
    /// the last, partial epoch before `u64::MAX` (whose range must not wrap around to 0), and
    /// 0 for an unused entry, which therefore matches no timestamp at all.
    len_ns: u64,
    slot: usize,
}

/// An empty cache entry. Its length of 0 is what keeps it from matching: a start-time
/// sentinel cannot, since `now.wrapping_sub(start) < epoch_ns` holds for `epoch_ns`
/// timestamps whatever `start` is (with `u64::MAX`, for every `now < epoch_ns - 1`, which once
/// sent early packets of epoch 0 into the slot of the first epoch seen).
const UNUSED: Cached = Cached {
    epoch: EMPTY,
    start_ns: u64::MAX,
    len_ns: 0,
    slot: 0,
};

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("cache", &self.cache)
            .field("concurrent", &self.concurrent)
            .finish_non_exhaustive()
    }
}

impl Writer {
    pub(super) fn new(tables: Arc<DigestTables>) -> Self {
        Writer {
            epoch_ns: tables.cfg.epoch_ns,
            tables,
            cache: [UNUSED; 2],
            generation: u64::MAX,
            concurrent: false,
            uncounted: 0,
            uncounted_slot: 0,
        }
    }

    /// Records digest `h` of a packet seen at `now_ns` (ns since the Unix epoch).
    ///
    /// The epoch is `now_ns / epoch_ns`. A newer epoch rotates the tables (takes a clean spare
    /// filter; the one that leaves retention goes to maintenance). A packet of an older epoch
    /// still in memory goes into that epoch's filter; one older than the retention window is
    /// dropped and counted in [`crate::TableStats::too_old`].
    ///
    /// By default the writer uses the single-writer Bloom insert (no locked instructions):
    /// call [`Writer::set_concurrent`] on every writer if several share the tables.
    #[inline]
    pub fn insert(&mut self, now_ns: u64, h: u128) {
        if self.tables.generation.load(Ordering::Relaxed) == self.generation {
            // `now - start < len` instead of a 64-bit division per packet (measured ~30 % of
            // the insert cost); an unused entry's length of 0 never matches.
            for c in self.cache {
                if now_ns.wrapping_sub(c.start_ns) < c.len_ns {
                    self.put(c.slot, h);
                    return;
                }
            }
        }
        self.insert_slow(now_ns / self.epoch_ns, h);
    }

    /// Starts loading the memory an insert of `h` at `now_ns` will touch (a hint; see
    /// [`crate::Bloom::prefetch`]). Only epochs already cached by this writer are prefetched:
    /// the rare packet of another epoch simply goes without.
    #[inline]
    pub fn prefetch(&self, now_ns: u64, h: u128) {
        if self.tables.generation.load(Ordering::Relaxed) == self.generation {
            for c in self.cache {
                if now_ns.wrapping_sub(c.start_ns) < c.len_ns {
                    self.tables.slots[c.slot].bloom.prefetch(h);
                    return;
                }
            }
        }
    }

    /// Use atomic `fetch_or`/`fetch_add` so that several writers may insert at once.
    ///
    /// Known limit of concurrent mode: between a writer's check that its cached slot still
    /// holds an epoch and its insert, another writer may retire that epoch and maintenance
    /// may recycle the slot; the late insert then sets its bits in the slot's next epoch. That
    /// can only add a false positive there (within the FPR the answers state), never lose a
    /// packet from its own epoch, and needs a writer to be descheduled for a whole retention
    /// window. A single writer (the default) cannot race this way. Needed
    /// whenever more than one writer is active on the same tables; costs a locked instruction
    /// per word touched.
    pub fn set_concurrent(&mut self, yes: bool) {
        self.concurrent = yes;
    }

    #[inline(always)]
    fn put(&mut self, s: usize, h: u128) {
        let slot = &self.tables.slots[s];
        if self.concurrent {
            slot.bloom.insert_concurrent(h);
            if s != self.uncounted_slot || self.uncounted >= COUNT_BATCH {
                self.flush_counts();
                self.uncounted_slot = s;
            }
            self.uncounted += 1;
        } else {
            slot.bloom.insert(h);
            let n = slot.inserted.load(Ordering::Relaxed);
            slot.inserted.store(n + 1, Ordering::Relaxed);
        }
    }

    /// Records that the input was being read at `now_ns` even if no packet arrived: opens
    /// that epoch (rotating the tables if it is newer) without inserting anything.
    ///
    /// An idle link then answers `not_seen` for the quiet time instead of "not recorded" or
    /// "not yet recorded": a live probe calls this when it starts and whenever its source is
    /// idle, with a time its source is known to have delivered everything before. An epoch
    /// this writer already holds is left as it is; an epoch older than retention is ignored.
    pub fn touch(&mut self, now_ns: u64) {
        let epoch = now_ns / self.epoch_ns;
        if self.tables.generation.load(Ordering::Relaxed) == self.generation
            && self.cache[0].epoch != EMPTY
            && self.cache[0].epoch >= epoch
        {
            return;
        }
        let _ = self.slot_for(epoch);
    }

    #[cold]
    #[inline(never)]
    fn insert_slow(&mut self, epoch: u64, h: u128) {
        if let Some(s) = self.slot_for(epoch) {
            self.put(s, h);
        }
    }

    /// The slot of `epoch` (rotating if needed), cached; `None` when it is too old.
    fn slot_for(&mut self, epoch: u64) -> Option<usize> {
        let mut stalled = false;
        let (s, generation) = loop {
            match self.tables.locate(epoch, &mut stalled) {
                Located::Slot(s, generation) => break (s, generation),
                Located::Dropped => return None,
                // Maintenance is behind: this writer does its work for the one slot it needs.
                // A failed save is reported inside (event, lost epoch); the writer goes on.
                Located::SpillFirst { slot, epoch } => {
                    let _ = self.tables.spill_and_clear(slot, epoch);
                }
            }
        };
        if generation != self.generation {
            self.flush_counts();
            self.cache = [UNUSED; 2];
            self.generation = generation;
        }
        let start_ns = epoch * self.epoch_ns;
        let entry = Cached {
            epoch,
            start_ns,
            len_ns: (u64::MAX - start_ns).saturating_add(1).min(self.epoch_ns),
            slot: s,
        };
        if self.cache[0].epoch == EMPTY || epoch > self.cache[0].epoch {
            self.cache[1] = self.cache[0];
            self.cache[0] = entry;
        } else {
            self.cache[1] = entry;
        }
        Some(s)
    }
}

impl Writer {
    /// Adds the inserts batched in concurrent mode to the shared per-epoch counters, so that
    /// answers and statistics count them. Called on epoch changes, every 1024 inserts, on
    /// drop, and by ingest loops when they publish.
    pub fn flush_counts(&mut self) {
        if self.uncounted > 0 {
            self.tables.slots[self.uncounted_slot]
                .inserted
                .fetch_add(self.uncounted, Ordering::Relaxed);
            self.uncounted = 0;
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.flush_counts();
    }
}
