//! Maintenance: spilling and clearing retired filters, the disk budget, and the optional
//! thread that runs it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::{DigestTables, ONES_UNKNOWN, SlotState};
use crate::coverage::LossCause;
use crate::error::TableError;
use crate::events::TableEvent;
use crate::spill::SpillHeader;
use crate::theory;

/// What one [`DigestTables::maintain`] call did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MaintenanceReport {
    /// Filters cleared and returned to the spare pool.
    pub cleared: usize,
    /// Epochs written to spill files.
    pub spilled: usize,
    /// Spill files deleted to stay within the budget.
    pub deleted_files: usize,
    /// Epochs whose spill write failed (lost; each reported as a
    /// [`TableEvent::SpillWriteFailed`]).
    pub spill_failed: usize,
}

/// What happened to one retired filter.
pub(super) enum Spilled {
    /// Written to its spill file.
    Written,
    /// No spill directory: simply cleared.
    NotConfigured,
    /// The write failed; the epoch is lost.
    Failed(TableError),
}

impl DigestTables {
    /// Spills (if configured) and clears every filter that left retention, deletes the oldest
    /// spill files beyond the budget, and counts the bits of sealed epochs.
    ///
    /// Spill failures (full disk, removed directory) are counted in
    /// [`crate::TableStats::spill_errors`] and [`MaintenanceReport::spill_failed`], reported
    /// as events, and the epoch is recorded as lost (queries over it answer `unknown`):
    /// ingest must keep running, so no IO error is returned from here. The `Result` is kept
    /// for failures that would make further maintenance pointless.
    pub fn maintain(&self) -> Result<MaintenanceReport, TableError> {
        Ok(self.maintain_collect().0)
    }

    /// [`DigestTables::maintain`], also returning the first failed epoch and its error.
    fn maintain_collect(&self) -> (MaintenanceReport, Option<(u64, TableError)>) {
        let mut report = MaintenanceReport::default();
        let mut first_failure = None;
        let work: Vec<(usize, u64)> = {
            let mut g = self.lock();
            g.maint_needed = false;
            g.slots
                .iter_mut()
                .enumerate()
                .filter_map(|(s, st)| match *st {
                    SlotState::Retired(e) => {
                        *st = SlotState::Maintaining(e);
                        Some((s, e))
                    }
                    _ => None,
                })
                .collect()
        };
        for (s, epoch) in work {
            match self.spill_and_clear(s, epoch) {
                Spilled::Written => report.spilled += 1,
                Spilled::NotConfigured => {}
                Spilled::Failed(e) => {
                    report.spill_failed += 1;
                    if first_failure.is_none() {
                        first_failure = Some((self.epoch_bounds(epoch).0, e));
                    }
                }
            }
            report.cleared += 1;
        }
        report.deleted_files = self.enforce_budget();
        self.count_sealed_ones();
        (report, first_failure)
    }

    /// Saves slot `s` (holding the expired `epoch`) to the store if one is configured, then
    /// empties it and marks it clean. A failed write is counted, reported as an event (with
    /// the error, returned too) and recorded as a lost epoch *before* the filter is cleared,
    /// so no query can ever see the epoch as neither held nor lost. The slot must be out of
    /// every writer's reach (state `Maintaining` or `Clearing`).
    pub(super) fn spill_and_clear(&self, s: usize, epoch: u64) -> Spilled {
        let mut spilled = Spilled::NotConfigured;
        if let Some(store) = &self.store {
            let slot = &self.slots[s];
            let ones = slot.bloom.count_ones();
            // With concurrent writers, another writer may still hold batched inserts of this
            // epoch that it has not added to the shared counter: a count impossibly low for
            // the bits set is replaced by the fill-based estimate (see
            // `theory::plausible_inserted`), so the file's FPR is not understated.
            let inserted = theory::plausible_inserted(
                &self.cfg.params,
                slot.inserted.load(Ordering::Relaxed),
                ones,
            );
            let header = SpillHeader {
                table_id: self.cfg.table_id,
                params: self.cfg.params,
                epoch_start_ns: self.epoch_bounds(epoch).0,
                epoch_ns: self.cfg.epoch_ns,
                inserted,
                ones,
            };
            match store.save(&header, &slot.bloom) {
                Ok(file) => {
                    let mut g = self.lock();
                    g.disk_bytes = g.disk_bytes.saturating_add(file.bytes());
                    g.disk.entry(epoch).or_default().push(Arc::new(file));
                    self.counters.spilled_epochs.fetch_add(1, Ordering::Relaxed);
                    spilled = Spilled::Written;
                }
                Err(error) => {
                    self.counters.spill_errors.fetch_add(1, Ordering::Relaxed);
                    self.lock().lost.insert(epoch, LossCause::SpillWriteFailed);
                    // The event gets the error; the caller gets the same failure, re-stated
                    // (`TableError` is not `Clone`: it carries `io::Error`s).
                    let location = store.location();
                    let returned = restate(&error, &location);
                    let path = match &returned {
                        TableError::Spill { path, .. } | TableError::BadSpillFile { path, .. } => {
                            path.clone()
                        }
                        _ => location,
                    };
                    self.emit(TableEvent::SpillWriteFailed {
                        path,
                        epoch_start_ns: header.epoch_start_ns,
                        error,
                    });
                    spilled = Spilled::Failed(returned);
                }
            }
        }
        self.recycle(s);
        self.lock().slots[s] = SlotState::Clean;
        self.clean_cv.notify_all();
        spilled
    }

    /// Deletes spill files until the total fits the budget; returns how many.
    ///
    /// The total counts the indexed files *and* the `*.ashbloom` regular files found at start
    /// that were not indexed (another table id or epoch length, bad header or contents): they
    /// take disk space all the same. Those are deleted first, oldest (by mtime) first, since
    /// this table cannot answer from them; then the oldest indexed epochs.
    pub(super) fn enforce_budget(&self) -> usize {
        let Some(store) = &self.store else {
            return 0;
        };
        let victims = {
            let mut g = self.lock();
            let mut victims = Vec::new();
            while g.disk_bytes.saturating_add(g.unindexed_bytes) > self.budget_bytes {
                if !g.unindexed.is_empty() {
                    let u = g.unindexed.remove(0);
                    g.unindexed_bytes = g.unindexed_bytes.saturating_sub(u.bytes);
                    victims.push(u.location);
                    continue;
                }
                let Some((epoch, files)) = g.disk.pop_first() else {
                    break;
                };
                g.deleted_through = Some(g.deleted_through.map_or(epoch, |d| d.max(epoch)));
                for f in files {
                    g.disk_bytes = g.disk_bytes.saturating_sub(f.bytes());
                    victims.push(f.location().to_path_buf());
                }
            }
            victims
        };
        // An in-flight query that opened a victim keeps reading it until it closes it; one that
        // opens it after the unlink gets an error for that epoch, reported as unknown.
        for path in &victims {
            if let Err(error) = store.delete(path) {
                self.counters.spill_errors.fetch_add(1, Ordering::Relaxed);
                self.emit(TableEvent::SpillDeleteFailed {
                    path: path.clone(),
                    error,
                });
            }
        }
        victims.len()
    }

    /// Retires every live epoch and runs [`DigestTables::maintain`]: with spilling
    /// configured, every epoch still in memory (at most the `retention_epochs` newest, plus
    /// any retired ones maintenance had not reached) is written to disk, so that a restart on
    /// the same spill directory answers for them; without spilling they are simply cleared.
    ///
    /// Meant for shutdown, after the writers stopped (dropping a [`crate::Writer`] flushes its
    /// batched insert counts). Dropping or stopping a [`MaintenanceHandle`] does *not* do this
    /// implicitly: the service calls it explicitly on stop. Writers may keep inserting
    /// afterwards (the current epoch is kept; a later packet of a retired epoch opens a fresh
    /// filter for it, spilled later as a second file of that epoch), but that is not the
    /// intended use.
    ///
    /// # Errors
    ///
    /// [`TableError::EpochsNotSaved`] when spilling is configured and at least one epoch
    /// could not be written (count, the first failed epoch and its error): the caller must
    /// not report a clean shutdown. Run it after stopping the maintenance thread, or epochs
    /// that thread takes meanwhile are written (or fail) outside this report.
    pub fn retire_all(&self) -> Result<MaintenanceReport, TableError> {
        {
            let mut g = self.lock();
            let mut retired = false;
            for st in g.slots.iter_mut() {
                if let SlotState::Live(e) = *st {
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
        let (report, first_failure) = self.maintain_collect();
        match first_failure {
            None => Ok(report),
            Some((epoch_start_ns, source)) => Err(TableError::EpochsNotSaved {
                failed: report.spill_failed,
                spilled: report.spilled,
                epoch_start_ns,
                source: Box::new(source),
            }),
        }
    }

    /// Counts the ones of epochs older than the current one (again if late packets arrived),
    /// for [`crate::EpochInfo::ones`].
    fn count_sealed_ones(&self) {
        let sealed: Vec<(usize, u64)> = {
            let g = self.lock();
            let Some(current) = g.current else { return };
            g.slots
                .iter()
                .enumerate()
                .filter_map(|(s, st)| match *st {
                    SlotState::Live(e) if e < current => Some((s, e)),
                    _ => None,
                })
                .collect()
        };
        for (s, epoch) in sealed {
            let slot = &self.slots[s];
            let inserted = slot.inserted.load(Ordering::Relaxed);
            if slot.ones.load(Ordering::Relaxed) != ONES_UNKNOWN
                && slot.ones_at.load(Ordering::Relaxed) == inserted
            {
                continue;
            }
            let ones = slot.bloom.count_ones();
            // Store only if the slot still holds the epoch (recycling resets these under the
            // same lock-protected state change).
            let g = self.lock();
            if g.slots[s] == SlotState::Live(epoch) {
                slot.ones.store(ones, Ordering::Relaxed);
                slot.ones_at.store(inserted, Ordering::Relaxed);
            }
        }
    }

    /// Spawns a thread that runs [`DigestTables::maintain`] whenever a rotation needs it (and
    /// at least every half epoch, at most every second, to count sealed epochs). It stops when
    /// the handle is dropped or [`MaintenanceHandle::stop`]ped; stopping does not spill the
    /// epochs still in memory — call [`DigestTables::retire_all`] for that.
    ///
    /// # Panics
    ///
    /// Like `std::thread::spawn`, if the OS cannot create a thread.
    pub fn spawn_maintenance(self: &Arc<Self>) -> MaintenanceHandle {
        let stop = Arc::new(AtomicBool::new(false));
        let tables = Arc::clone(self);
        let flag = Arc::clone(&stop);
        let period =
            Duration::from_nanos((tables.cfg.epoch_ns / 2).clamp(10_000_000, 1_000_000_000));
        let thread = std::thread::Builder::new()
            .name("ashiato-tables-maint".into())
            .spawn(move || {
                while !flag.load(Ordering::Acquire) {
                    tables.wait_maintenance_unless(period, &|| flag.load(Ordering::Acquire));
                    if flag.load(Ordering::Acquire) {
                        break;
                    }
                    // Spill failures are counted inside; nothing else can fail today.
                    let _ = tables.maintain();
                }
            })
            .expect("failed to spawn the maintenance thread");
        MaintenanceHandle {
            stop,
            tables: Arc::clone(self),
            thread: Some(thread),
        }
    }
}

/// Owns the maintenance thread; stopping or dropping it joins the thread.
///
/// Neither spills the epochs still in memory: on shutdown, stop the writers, then call
/// [`DigestTables::retire_all`] explicitly (before or after stopping the thread).
pub struct MaintenanceHandle {
    stop: Arc<AtomicBool>,
    tables: Arc<DigestTables>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for MaintenanceHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaintenanceHandle")
            .field("running", &self.thread.is_some())
            .finish_non_exhaustive()
    }
}

impl MaintenanceHandle {
    /// Stops the thread and waits for it (a maintenance pass in progress completes first).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Release);
        {
            // Notify under the lock: the thread checks the flag under it before waiting, so
            // the wake-up cannot be lost.
            let _g = self.tables.lock();
            self.tables.maint_cv.notify_all();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for MaintenanceHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A copy of a spill error: same path, same kind and message chain.
fn restate(error: &TableError, dir: &std::path::Path) -> TableError {
    match error {
        TableError::Spill { path, source } => TableError::Spill {
            path: path.clone(),
            source: std::io::Error::new(source.kind(), error_chain(source)),
        },
        TableError::BadSpillFile { path, reason } => TableError::BadSpillFile {
            path: path.clone(),
            reason: reason.clone(),
        },
        other => TableError::Spill {
            path: dir.to_path_buf(),
            source: std::io::Error::other(error_chain(other)),
        },
    }
}

/// `error` and its sources, joined with ": ".
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut cur = error.source();
    while let Some(e) = cur {
        out.push_str(": ");
        out.push_str(&e.to_string());
        cur = e.source();
    }
    out
}
