//! Time-sliced digest tables: one Bloom filter per epoch, a bounded ring of them in memory,
//! expired ones optionally saved to an [`EpochStore`] (spill files by default).
//!
//! Memory is fixed at start: `retention_epochs + 2` filters — the `retention_epochs` newest
//! epochs (the current one included) plus two spares, so that after a rotation one spare is
//! still clean while maintenance spills and clears the filter that just fell out of
//! retention. Modelled on quinn-proto's `bloom_token_log.rs` (filters rotated per period under
//! a memory bound, time supplied by the caller): nothing here reads a clock — the writer is
//! told each packet's timestamp, and the maintenance thread is an optional shell.
//!
//! Concurrency, in short:
//! * slot assignment (which epoch a filter holds) changes only under one mutex, taken by a
//!   writer once per epoch, by queries once per call, and by maintenance;
//! * filter bits and counters are atomics, read and written without the lock;
//! * each slot publishes its epoch in an atomic that is set to "empty" before the filter is
//!   cleared, and a reader checks it before and after reading bits (a seqlock): a filter
//!   recycled mid-query is treated as expired, so a query never reports a match from bits that
//!   belong to another epoch.
//!
//! Where IO happens. The tables decide; the store does the IO, called by whoever performs
//! the decision, never under the index lock:
//! * maintenance ([`DigestTables::maintain`], or its thread) saves and clears retired filters;
//! * when maintenance is behind and a rotation finds no clean filter, the slot decision
//!   (`locate`, pure bookkeeping under the lock) does not save anything itself: it returns
//!   an action, "save and clear this retired slot, then ask again", that the [`Writer`]
//!   carries out (so an offline replay that outruns maintenance loses no epoch). The action
//!   is met only on the writer's out-of-line slow path, once per epoch change at most, so
//!   the per-packet insert is exactly what it was: a cached-slot check and a Bloom insert.
//!   Making the store an action of the writer, rather than a callback the decision makes,
//!   keeps the decision testable without a store at all.
//! * A save that fails records the epoch as lost (queries over it answer `unknown`, see
//!   [`crate::coverage`]) before the filter is cleared, and emits
//!   [`crate::TableEvent::SpillWriteFailed`].
//!
//! Time comes from packets, and a packet's timestamp can be wrong (a corrupt capture record,
//! a clock step). A packet whose epoch lies more than [`DigestTables::max_jump`] epochs ahead
//! of the current one therefore does not rotate the tables by itself: see
//! [`FUTURE_CONFIRM`] for the confirmation policy.

mod maintain;
mod query;
mod writer;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering, fence};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

pub use maintain::{MaintenanceHandle, MaintenanceReport};
pub use query::{Search, SearchedEpoch};
pub use writer::Writer;

use crate::bloom::Bloom;
use crate::coverage::{LossCause, LostEpochs};
use crate::error::TableError;
use crate::events::{EventSink, TableEvent};
use crate::params::FilterParams;
use crate::spill::FileStore;
use crate::store::{EpochStore, StoredEpoch, Unindexed};
use crate::theory;

/// Default epoch length: one second, the time resolution of a traceback answer.
pub const DEFAULT_EPOCH_NS: u64 = 1_000_000_000;
/// Default retention: one minute of epochs in memory.
pub const DEFAULT_RETENTION_EPOCHS: u32 = 60;
/// Shortest accepted epoch (1 µs); also keeps epoch numbers far from the `u64::MAX` sentinel.
pub const MIN_EPOCH_NS: u64 = 1_000;

/// Far-future packets needed to confirm a jump of the current epoch.
///
/// Policy: a packet whose epoch is more than [`DigestTables::max_jump`] epochs (the retention,
/// at least 2) ahead of the current epoch would retire every retained epoch at once, so it
/// does not move the current epoch on its own. Such packets are dropped and counted in
/// [`TableStats::future_dropped`] until `FUTURE_CONFIRM` of them have landed within
/// `max_jump` epochs of the first one (the candidate epoch); the one that completes the count
/// is recorded and makes its epoch current, exactly like an ordinary rotation. A far-future
/// packet outside the candidate's range starts a new candidate (count 1). Ordinary packets in
/// between do not reset the count, and nothing here reads a clock: the decision depends only
/// on the sequence of timestamps, so it is deterministic.
///
/// So a single bogus timestamp (a corrupt pcap record) costs that packet and nothing else,
/// while a legitimate jump (captures of different days merged, a real clock step) costs at
/// most `FUTURE_CONFIRM - 1` packets. The very first packet, when there is no current epoch
/// yet, is always accepted.
pub const FUTURE_CONFIRM: u32 = 8;

/// Configuration of a [`DigestTables`].
#[derive(Clone, Debug)]
pub struct TablesConfig {
    /// Epoch length in ns; a digest is located in time to within one epoch.
    pub epoch_ns: u64,
    /// Epochs answerable from memory, the current one included.
    pub retention_epochs: u32,
    /// Shape of every epoch's filter.
    pub params: FilterParams,
    /// Fingerprint of the digest key and digest version. Written into spill files and checked
    /// on load: a filter built under another key would answer garbage.
    pub table_id: u64,
    /// Where expired epochs go, if anywhere.
    pub spill: Option<SpillConfig>,
    /// Touch all filter memory at start (no page faults on the ingest path).
    pub prefault: bool,
}

impl TablesConfig {
    /// Defaults (1 s epochs, 60 retained, no spill, no pre-fault) for `params` and `table_id`.
    pub fn new(params: FilterParams, table_id: u64) -> Self {
        TablesConfig {
            epoch_ns: DEFAULT_EPOCH_NS,
            retention_epochs: DEFAULT_RETENTION_EPOCHS,
            params,
            table_id,
            spill: None,
            prefault: false,
        }
    }
}

/// Where and how much to spill.
#[derive(Clone, Debug)]
pub struct SpillConfig {
    /// Directory of the spill files (created if missing).
    pub dir: PathBuf,
    /// Total bytes of spill files to keep; beyond it, `*.ashbloom` files this table did not
    /// index (foreign or bad, oldest first) are deleted first, then the oldest epochs.
    pub budget_bytes: u64,
}

/// One epoch whose filter contains the queried digest.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochMatch {
    /// Start of the epoch, ns since the Unix epoch.
    pub epoch_start_ns: u64,
    /// End of the epoch (exclusive).
    pub epoch_end_ns: u64,
    /// Digests inserted into the epoch's filter (at the time of the query).
    pub inserted: u64,
    /// Probability that this match is false: [`theory::fpr`] at `inserted`, with the
    /// parameters of the filter that answered (a spill file's own, which may differ from the
    /// configured ones after a restart).
    pub fpr: f64,
    /// Answered from a spill file rather than memory.
    pub on_disk: bool,
}

/// One answerable epoch.
#[derive(Clone, Debug)]
pub struct EpochInfo {
    /// Start of the epoch, ns since the Unix epoch.
    pub epoch_start_ns: u64,
    /// End of the epoch (exclusive).
    pub epoch_end_ns: u64,
    /// Digests inserted.
    pub inserted: u64,
    /// Bits set, known for sealed epochs (counted by maintenance or read from the spill file).
    pub ones: Option<u64>,
    /// Size in bits of the filter(s) `ones` counts, so that the fill is `ones / m_bits`: the
    /// configured size for an epoch in memory, the spill file's own size for an epoch on disk
    /// (which may differ from the configured one after a restart with another filter size;
    /// summed if the epoch was spilled more than once).
    pub m_bits: u64,
    /// False-positive rate of the epoch: [`theory::fpr`] at `inserted` with each filter's own
    /// parameters (combined as "any filter answers present" when there are several).
    pub fpr: f64,
    /// Held only on disk.
    pub on_disk: bool,
    /// The newest epoch seen by any writer.
    pub current: bool,
}

/// Counters for metrics.
#[derive(Clone, Debug, Default)]
pub struct TableStats {
    /// Digests inserted since start.
    pub inserted: u64,
    /// Times the current epoch advanced.
    pub rotations: u64,
    /// Times a writer found no clean filter and had to wait for or clear one itself, i.e.
    /// maintenance was behind. A filter cleared this way is not spilled.
    pub stalls: u64,
    /// Digests dropped because their epoch was older than the retention window.
    pub too_old: u64,
    /// Epochs written to spill files since start.
    pub spilled_epochs: u64,
    /// Bytes of spill files currently kept.
    pub spill_bytes: u64,
    /// Failed spill writes or deletions, and spill files ignored for a bad header or contents.
    pub spill_errors: u64,
    /// Valid spill files ignored because another table id or epoch length wrote them, and
    /// entries named like spill files that are not regular files (symlinks, FIFOs,
    /// directories: never opened).
    pub ignored_files: u64,
    /// Bytes of `*.ashbloom` regular files in the spill directory that are not indexed
    /// (foreign or bad); they count against the spill budget and are deleted first.
    pub ignored_bytes: u64,
    /// Packets dropped because their epoch lay too far in the future and the jump was not
    /// (yet) confirmed: see [`FUTURE_CONFIRM`].
    pub future_dropped: u64,
    /// Start of the current epoch.
    pub current_epoch_start_ns: Option<u64>,
    /// Digests in the current epoch.
    pub current_inserted: u64,
    /// [`theory::fpr`] of the current epoch.
    pub current_fpr: f64,
}

/// What [`DigestTables::locate`] decided for a packet's epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Located {
    /// Insert into this slot; the tables' generation it is valid for.
    Slot(usize, u64),
    /// Drop the packet: older than the window, or an unconfirmed far-future epoch.
    Dropped,
    /// Maintenance is behind and no slot is clean: save (if a store is configured) and clear
    /// retired `slot`, which holds expired `epoch` and is now out of everyone else's reach,
    /// then locate again.
    SpillFirst {
        /// The retired slot, now in state `Clearing`.
        slot: usize,
        /// The expired epoch it holds.
        epoch: u64,
    },
}

/// Marks a slot that holds no epoch.
const EMPTY: u64 = u64::MAX;
const ONES_UNKNOWN: u64 = u64::MAX;

/// One preallocated filter and its lock-free metadata.
struct Slot {
    bloom: Bloom,
    /// The epoch whose digests the bits belong to, or [`EMPTY`]; the seqlock word.
    epoch: AtomicU64,
    inserted: AtomicU64,
    ones: AtomicU64,
    /// `inserted` when `ones` was counted (recount when it moved: late packets).
    ones_at: AtomicU64,
}

/// Lifecycle of a slot, changed only under the index lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SlotState {
    /// Zeroed, ready for a new epoch.
    Clean,
    /// Holds an epoch inside the retention window.
    Live(u64),
    /// Fell out of retention; awaiting spill and clearing by maintenance.
    Retired(u64),
    /// Maintenance is spilling and clearing it.
    Maintaining(u64),
    /// A stalled writer is clearing it.
    Clearing,
}

struct Index {
    slots: Vec<SlotState>,
    current: Option<u64>,
    /// Unconfirmed far-future jump: candidate epoch and how many packets landed near it.
    pending_jump: Option<(u64, u32)>,
    disk: BTreeMap<u64, Vec<Arc<StoredEpoch>>>,
    disk_bytes: u64,
    /// `*.ashbloom` regular files not indexed (foreign or bad), oldest first.
    unindexed: Vec<Unindexed>,
    unindexed_bytes: u64,
    maint_needed: bool,
    /// Oldest epoch recorded in this run (a packet reordered before the first one counts).
    first: Option<u64>,
    /// Newest epoch whose spill files the budget deleted (deletion goes oldest first).
    deleted_through: Option<u64>,
    /// Epochs that should be held but are not: spill write failed, file rejected at start.
    lost: LostEpochs,
}

#[derive(Default)]
struct Counters {
    retired_inserted: AtomicU64,
    rotations: AtomicU64,
    stalls: AtomicU64,
    too_old: AtomicU64,
    spilled_epochs: AtomicU64,
    spill_errors: AtomicU64,
    ignored_files: AtomicU64,
    future_dropped: AtomicU64,
}

/// The digest tables of one probe: see the module docs.
pub struct DigestTables {
    cfg: TablesConfig,
    slots: Box<[Slot]>,
    index: Mutex<Index>,
    /// Signalled when a rotation retires a slot (and to stop the maintenance thread).
    maint_cv: Condvar,
    /// Signalled when a slot becomes clean.
    clean_cv: Condvar,
    /// Bumped whenever slots are retired; writers drop their cached slots when it moves.
    generation: AtomicU64,
    counters: Counters,
    /// Where failures are reported ([`DigestTables::with_events`]).
    events: Option<EventSink>,
    /// Where expired epochs go, if anywhere (a [`FileStore`] holds its directory's lock for
    /// the tables' lifetime).
    store: Option<Arc<dyn EpochStore>>,
    /// Bytes the store may hold; the oldest epochs are deleted beyond it.
    budget_bytes: u64,
}

impl std::fmt::Debug for DigestTables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestTables")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl DigestTables {
    /// Allocates every filter up front (memory is bounded and known at start), locks the
    /// spill directory and loads the index of the spill files of this `table_id` (others are
    /// ignored and counted). Failures met later (spill writes, reads) are only counted: use
    /// [`DigestTables::with_events`] to hear of them.
    pub fn new(cfg: TablesConfig) -> Result<Arc<Self>, TableError> {
        Self::with_events(cfg, None)
    }

    /// [`DigestTables::new`], reporting every failure the tables survive — spill files
    /// rejected at start, spill writes, reads and deletions that fail — to `events` (see
    /// [`crate::events`]).
    ///
    /// With [`TablesConfig::spill`] set, expired epochs go to a [`FileStore`] on that
    /// directory. The directory is locked (an exclusive `flock` on [`crate::LOCK_FILE`] in
    /// it, held until the tables are dropped): a second table on the same directory, in this
    /// process or another, fails with [`TableError::SpillDirLocked`] instead of deleting the
    /// first one's files under its own budget.
    pub fn with_events(
        cfg: TablesConfig,
        events: Option<EventSink>,
    ) -> Result<Arc<Self>, TableError> {
        check_config(&cfg)?;
        let store = match &cfg.spill {
            Some(sp) => {
                let store: Arc<dyn EpochStore> = Arc::new(FileStore::open(&sp.dir)?);
                Some((store, sp.budget_bytes))
            }
            None => None,
        };
        Self::build(cfg, store, events)
    }

    /// Tables whose expired epochs go to `store` (e.g. a [`crate::MemoryStore`]), which may
    /// hold at most `budget_bytes` (the oldest epochs are deleted beyond it).
    /// [`TablesConfig::spill`] is ignored: the store takes its place.
    pub fn with_store(
        cfg: TablesConfig,
        store: Arc<dyn EpochStore>,
        budget_bytes: u64,
        events: Option<EventSink>,
    ) -> Result<Arc<Self>, TableError> {
        check_config(&cfg)?;
        Self::build(cfg, Some((store, budget_bytes)), events)
    }

    fn build(
        cfg: TablesConfig,
        store: Option<(Arc<dyn EpochStore>, u64)>,
        events: Option<EventSink>,
    ) -> Result<Arc<Self>, TableError> {
        let slots = (0..cfg.retention_epochs as usize + 2)
            .map(|_| {
                Ok(Slot {
                    bloom: Bloom::with_prefault(cfg.params, cfg.prefault)?,
                    epoch: AtomicU64::new(EMPTY),
                    inserted: AtomicU64::new(0),
                    ones: AtomicU64::new(ONES_UNKNOWN),
                    ones_at: AtomicU64::new(0),
                })
            })
            .collect::<Result<Vec<_>, TableError>>()?
            .into_boxed_slice();
        let counters = Counters::default();
        let mut disk: BTreeMap<u64, Vec<Arc<StoredEpoch>>> = BTreeMap::new();
        let mut disk_bytes = 0u64;
        let mut unindexed = Vec::new();
        let mut unindexed_bytes = 0u64;
        let mut lost = LostEpochs::default();
        if let Some((store, _)) = &store {
            let scan = store.scan(cfg.table_id, cfg.epoch_ns)?;
            for r in scan.rejected {
                // A damaged file of an epoch makes that epoch unanswerable; a file another
                // table wrote says nothing about ours.
                if r.bad
                    && let Some(start) = r.epoch_start_ns
                {
                    lost.insert(start / cfg.epoch_ns, LossCause::SpillFileRejected);
                }
                if let Some(sink) = &events {
                    sink(TableEvent::SpillFileRejected {
                        path: r.location,
                        epoch_start_ns: r.epoch_start_ns,
                        error: r.error,
                    });
                }
            }
            counters.spill_errors.store(scan.bad, Ordering::Relaxed);
            counters
                .ignored_files
                .store(scan.foreign, Ordering::Relaxed);
            for f in scan.epochs {
                disk_bytes = disk_bytes.saturating_add(f.bytes());
                let epoch = f.header().epoch_start_ns / cfg.epoch_ns;
                disk.entry(epoch).or_default().push(Arc::new(f));
            }
            unindexed_bytes = scan
                .unindexed
                .iter()
                .fold(0u64, |acc, u| acc.saturating_add(u.bytes));
            unindexed = scan.unindexed;
        }
        // Build the blocked-rate table now rather than in the first query.
        theory::fpr(&cfg.params, 1);
        let tables = Arc::new(DigestTables {
            index: Mutex::new(Index {
                slots: vec![SlotState::Clean; slots.len()],
                current: None,
                pending_jump: None,
                disk,
                disk_bytes,
                unindexed,
                unindexed_bytes,
                maint_needed: false,
                first: None,
                deleted_through: None,
                lost,
            }),
            slots,
            cfg,
            maint_cv: Condvar::new(),
            clean_cv: Condvar::new(),
            generation: AtomicU64::new(0),
            counters,
            events,
            budget_bytes: store.as_ref().map_or(0, |(_, b)| *b),
            store: store.map(|(s, _)| s),
        });
        tables.enforce_budget();
        Ok(tables)
    }

    /// Reports `event` to the sink, if any. Never called with the index lock held.
    fn emit(&self, event: TableEvent) {
        if let Some(sink) = &self.events {
            sink(event);
        }
    }

    /// Total RAM of all filters.
    pub fn memory_bytes(&self) -> u64 {
        self.slots.len() as u64 * self.cfg.params.bytes()
    }

    /// The configuration.
    pub fn config(&self) -> &TablesConfig {
        &self.cfg
    }

    /// How far ahead of the current epoch (in epochs) a packet may land and still rotate the
    /// tables at once: the retention, at least 2. Farther packets need confirmation
    /// ([`FUTURE_CONFIRM`]).
    pub fn max_jump(&self) -> u64 {
        u64::from(self.cfg.retention_epochs).max(2)
    }

    /// A writer for one ingest thread.
    pub fn writer(self: &Arc<Self>) -> Writer {
        Writer::new(Arc::clone(self))
    }

    /// The index lock. A panic while holding it cannot leave the index half-updated in a way
    /// that breaks answers (every update is a single assignment), so poisoning is ignored.
    fn lock(&self) -> MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn epoch_bounds(&self, epoch: u64) -> (u64, u64) {
        let start = epoch.saturating_mul(self.cfg.epoch_ns);
        (start, start.saturating_add(self.cfg.epoch_ns))
    }

    /// Whether a slot in `state` can answer for its epoch. Retired slots still hold intact
    /// bits; with spilling on they stay answerable until their file is written, so an epoch
    /// moves from memory to disk without a gap. Without spilling they are gone the moment they
    /// leave retention, so exactly `retention_epochs` epochs are answerable.
    fn answerable(&self, state: SlotState) -> Option<u64> {
        match state {
            SlotState::Live(e) => Some(e),
            SlotState::Retired(e) | SlotState::Maintaining(e) if self.store.is_some() => Some(e),
            _ => None,
        }
    }

    /// Counters and the state of the current epoch.
    pub fn stats(&self) -> TableStats {
        let (current, current_slot, disk_bytes, unindexed_bytes) = {
            let g = self.lock();
            let cur_slot = g
                .current
                .and_then(|c| g.slots.iter().position(|&st| st == SlotState::Live(c)));
            (g.current, cur_slot, g.disk_bytes, g.unindexed_bytes)
        };
        let c = &self.counters;
        let live = self.slots.iter().fold(0u64, |acc, s| {
            acc.saturating_add(s.inserted.load(Ordering::Relaxed))
        });
        let current_inserted = current_slot
            .map(|s| self.slots[s].inserted.load(Ordering::Relaxed))
            .unwrap_or(0);
        TableStats {
            inserted: c
                .retired_inserted
                .load(Ordering::Relaxed)
                .saturating_add(live),
            rotations: c.rotations.load(Ordering::Relaxed),
            stalls: c.stalls.load(Ordering::Relaxed),
            too_old: c.too_old.load(Ordering::Relaxed),
            spilled_epochs: c.spilled_epochs.load(Ordering::Relaxed),
            spill_bytes: disk_bytes,
            spill_errors: c.spill_errors.load(Ordering::Relaxed),
            ignored_files: c.ignored_files.load(Ordering::Relaxed),
            ignored_bytes: unindexed_bytes,
            future_dropped: c.future_dropped.load(Ordering::Relaxed),
            current_epoch_start_ns: current.map(|e| self.epoch_bounds(e).0),
            current_inserted,
            current_fpr: theory::fpr(&self.cfg.params, current_inserted),
        }
    }

    /// Sleeps until a rotation retired a filter (returns true) or `timeout` passed (returns
    /// whether maintenance is needed anyway). Lets the maintenance thread run exactly when
    /// needed instead of polling.
    pub fn wait_maintenance(&self, timeout: Duration) -> bool {
        self.wait_maintenance_unless(timeout, &|| false)
    }

    fn wait_maintenance_unless(&self, timeout: Duration, stop: &dyn Fn() -> bool) -> bool {
        let g = self.lock();
        if g.maint_needed || stop() {
            return g.maint_needed;
        }
        let (g, _) = self
            .maint_cv
            .wait_timeout(g, timeout)
            .unwrap_or_else(|e| e.into_inner());
        g.maint_needed
    }

    /// Finds the slot for `epoch`, rotating if it is newer than the current one. Returns the
    /// slot and the generation it is valid for, [`Located::Dropped`] (counted in `too_old`)
    /// if the epoch is older than the retention window, or [`Located::SpillFirst`] when no
    /// slot is clean because maintenance is behind: the caller must then save and clear the
    /// slot named ([`DigestTables::spill_and_clear`], the one place that touches the store)
    /// and ask again. `stalled` is the caller's record, across those calls, of whether this
    /// packet already counted a stall.
    ///
    /// An older epoch still inside the window (`epoch + retention_epochs > current`) that had
    /// no traffic yet, e.g. a packet reordered across an epoch boundary, gets a slot of its own
    /// exactly as a rotation would (a clean spare, else a stall) without changing the current
    /// epoch; it is retired with the others once it leaves the window. Such a slot always
    /// exists: live slots hold distinct epochs of the window, so at most `retention_epochs`
    /// of the `retention_epochs + 2` slots are live, and any other slot is clean, retired
    /// (cleared here) or being cleared (waited for). No retained epoch is ever evicted, and
    /// `too_old` counts only packets older than the window.
    ///
    /// An epoch more than [`DigestTables::max_jump`] ahead of the current one rotates only
    /// once confirmed ([`FUTURE_CONFIRM`]); until then its packets are dropped and counted in
    /// `future_dropped`.
    pub(super) fn locate(&self, epoch: u64, stalled: &mut bool) -> Located {
        let retention = u64::from(self.cfg.retention_epochs);
        let max_jump = self.max_jump();
        let mut g = self.lock();
        loop {
            match g.current {
                Some(c) if epoch <= c => {
                    if epoch + retention <= c {
                        self.counters.too_old.fetch_add(1, Ordering::Relaxed);
                        return Located::Dropped;
                    }
                }
                previous => {
                    if let Some(c) = previous
                        && epoch - c > max_jump
                    {
                        let count = match g.pending_jump {
                            Some((p, n)) if p.abs_diff(epoch) <= max_jump => n + 1,
                            _ => 1,
                        };
                        if count < FUTURE_CONFIRM {
                            let candidate = match g.pending_jump {
                                Some((p, _)) if count > 1 => p,
                                _ => epoch,
                            };
                            g.pending_jump = Some((candidate, count));
                            self.counters.future_dropped.fetch_add(1, Ordering::Relaxed);
                            return Located::Dropped;
                        }
                        g.pending_jump = None;
                    }
                    g.current = Some(epoch);
                    // A candidate the current epoch has caught up with is moot.
                    if let Some((p, _)) = g.pending_jump
                        && p <= epoch.saturating_add(max_jump)
                    {
                        g.pending_jump = None;
                    }
                    if previous.is_some() {
                        self.counters.rotations.fetch_add(1, Ordering::Relaxed);
                    }
                    let lowest = (epoch + 1).saturating_sub(retention);
                    let mut retired = false;
                    for st in g.slots.iter_mut() {
                        if let SlotState::Live(e) = *st
                            && e < lowest
                        {
                            *st = SlotState::Retired(e);
                            retired = true;
                        }
                    }
                    if retired {
                        self.generation.fetch_add(1, Ordering::Release);
                        g.maint_needed = true;
                        self.maint_cv.notify_all();
                    }
                }
            }
            let generation = self.generation.load(Ordering::Acquire);
            if let Some(s) = g.slots.iter().position(|&st| st == SlotState::Live(epoch)) {
                return Located::Slot(s, generation);
            }
            if let Some(s) = g.slots.iter().position(|&st| st == SlotState::Clean) {
                self.slots[s].epoch.store(epoch, Ordering::Release);
                g.slots[s] = SlotState::Live(epoch);
                g.first = Some(g.first.map_or(epoch, |f| f.min(epoch)));
                return Located::Slot(s, generation);
            }
            // No clean slot: maintenance is behind. Hand the oldest retired slot to the
            // caller, who saves it when a store is configured (the writer waits for the
            // store, so an offline replay that outruns maintenance loses no epoch) and clears
            // it; if maintenance holds them all, wait for it.
            if !*stalled {
                *stalled = true;
                self.counters.stalls.fetch_add(1, Ordering::Relaxed);
            }
            let oldest_retired = g
                .slots
                .iter()
                .enumerate()
                .filter_map(|(s, st)| match st {
                    SlotState::Retired(e) => Some((*e, s)),
                    _ => None,
                })
                .min();
            if let Some((epoch, slot)) = oldest_retired {
                g.slots[slot] = SlotState::Clearing;
                return Located::SpillFirst { slot, epoch };
            }
            g = self.clean_cv.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Empties a slot that no writer uses any more. The epoch word goes to EMPTY *before* the
    /// bits are cleared, so a concurrent reader that saw any cleared word also sees the epoch
    /// change and discards what it read.
    fn recycle(&self, s: usize) {
        let slot = &self.slots[s];
        slot.epoch.store(EMPTY, Ordering::Relaxed);
        fence(Ordering::Release);
        slot.bloom.clear();
        let n = slot.inserted.swap(0, Ordering::Relaxed);
        self.counters
            .retired_inserted
            .fetch_add(n, Ordering::Relaxed);
        slot.ones.store(ONES_UNKNOWN, Ordering::Relaxed);
        slot.ones_at.store(0, Ordering::Relaxed);
    }
}

/// The configuration checks done before anything is allocated or opened.
fn check_config(cfg: &TablesConfig) -> Result<(), TableError> {
    cfg.params.validate()?;
    if cfg.epoch_ns < MIN_EPOCH_NS {
        return Err(TableError::InvalidConfig(format!(
            "epoch_ns = {} is below {MIN_EPOCH_NS}",
            cfg.epoch_ns
        )));
    }
    if cfg.retention_epochs == 0 {
        return Err(TableError::InvalidConfig("retention_epochs is 0".into()));
    }
    Ok(())
}

impl Slot {
    /// Runs `read` on the filter if the slot holds `epoch` before and after it, returning its
    /// result and the insert count; `None` if the slot was recycled meanwhile.
    fn read_consistent<T>(&self, epoch: u64, read: impl FnOnce(&Bloom) -> T) -> Option<(T, u64)> {
        if self.epoch.load(Ordering::Acquire) != epoch {
            return None;
        }
        let inserted = self.inserted.load(Ordering::Relaxed);
        let value = read(&self.bloom);
        // Pairs with the release fence in `recycle`: if any load above saw a cleared or
        // reused word, the EMPTY store is visible to the load below.
        fence(Ordering::Acquire);
        (self.epoch.load(Ordering::Relaxed) == epoch).then_some((value, inserted))
    }
}
