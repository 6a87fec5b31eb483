//! The injected epoch store, without a filesystem: a writer that outruns maintenance saves
//! what it must through the store, a store that fails loses the epoch visibly (an event,
//! and `unknown` answers), and the slot decision itself does no IO.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::{E, config, d, found_in};
use crate::bloom::Bloom;
use crate::coverage::{GapReason, LossCause, gaps};
use crate::error::TableError;
use crate::events::{EventSink, TableEvent};
use crate::params::FilterKind;
use crate::spill::SpillHeader;
use crate::store::{EpochStore, MemoryStore, StoreScan, StoredEpoch};
use crate::tables::{DigestTables, Located};

/// A [`MemoryStore`] whose saves fail while `failing` is set (a full disk).
#[derive(Default)]
struct FlakyStore {
    inner: MemoryStore,
    failing: AtomicBool,
}

impl EpochStore for FlakyStore {
    fn location(&self) -> PathBuf {
        self.inner.location()
    }
    fn scan(&self, table_id: u64, epoch_ns: u64) -> Result<StoreScan, TableError> {
        self.inner.scan(table_id, epoch_ns)
    }
    fn save(&self, header: &SpillHeader, bloom: &Bloom) -> Result<StoredEpoch, TableError> {
        if self.failing.load(Ordering::Relaxed) {
            return Err(TableError::Spill {
                path: PathBuf::from(format!("memory:epoch-{}", header.epoch_start_ns)),
                source: std::io::Error::other("no space left"),
            });
        }
        self.inner.save(header, bloom)
    }
    fn read_words(&self, epoch: &StoredEpoch, words: &[usize]) -> Result<Vec<u64>, TableError> {
        self.inner.read_words(epoch, words)
    }
    fn delete(&self, location: &Path) -> Result<(), TableError> {
        self.inner.delete(location)
    }
}

/// A sink that keeps every event, and the events it kept.
fn recorder() -> (EventSink, Arc<Mutex<Vec<TableEvent>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = Arc::clone(&seen);
    let sink: EventSink = Arc::new(move |e| keep.lock().unwrap().push(e));
    (sink, seen)
}

/// Tables of retention 2 (four filters) on `store`, no spill directory configured.
fn on_store(store: Arc<dyn EpochStore>, events: Option<EventSink>) -> Arc<DigestTables> {
    DigestTables::with_store(
        config(FilterKind::Blocked, 2, None),
        store,
        u64::MAX,
        events,
    )
    .unwrap()
}

/// Maintenance never runs: every rotation past the two spares stalls, and the writer saves
/// the expired epoch to the store itself before reusing its filter. Every epoch stays
/// answerable and none is a gap.
#[test]
fn stalled_writer_with_memory_store_loses_no_epoch() {
    let store = Arc::new(MemoryStore::new());
    let t = on_store(store.clone(), None);
    let mut w = t.writer();
    for e in 0..20 {
        w.insert(e * E, d(e));
    }
    let s = t.stats();
    assert_eq!(s.stalls, 16, "every rotation after the two spares stalls");
    assert_eq!(s.spilled_epochs, 16);
    assert_eq!(s.spill_errors, 0);
    assert_eq!(store.len(), 16, "saved by the writer, no maintenance ran");
    for e in 0..20 {
        assert_eq!(found_in(&t, d(e)), vec![e], "epoch {e}");
    }
    let on_disk = t.query(d(3), 0, u64::MAX);
    assert!(on_disk[0].on_disk, "answered from the store");
    let cov = t.coverage(0, 20 * E - 1);
    assert_eq!(gaps(&cov, 0, 20 * E - 1, true, 0), vec![]);
}

/// A store that fails while a stalled writer saves: the epoch is recorded as lost before its
/// filter is cleared (a query over it answers `unknown`, not "not seen"), an event names it,
/// and ingest goes on.
#[test]
fn failing_store_marks_the_epoch_lost_and_emits_an_event() {
    let store = Arc::new(FlakyStore::default());
    let (sink, seen) = recorder();
    let t = on_store(store.clone(), Some(sink));
    let mut w = t.writer();
    for e in 0..4 {
        w.insert(e * E, d(e));
    }
    // Epochs 0 and 1 are retired, the spares are used up: the next rotation stalls.
    store.failing.store(true, Ordering::Relaxed);
    w.insert(4 * E, d(4));
    store.failing.store(false, Ordering::Relaxed);
    w.insert(5 * E, d(5));
    let s = t.stats();
    assert_eq!((s.stalls, s.spilled_epochs, s.spill_errors), (2, 1, 1));
    {
        let events = seen.lock().unwrap();
        assert_eq!(events.len(), 1, "{events:?}");
        match &events[0] {
            TableEvent::SpillWriteFailed {
                path,
                epoch_start_ns,
                error,
            } => {
                assert_eq!(*epoch_start_ns, 0);
                assert_eq!(path, Path::new("memory:epoch-0"));
                assert!(error.to_string().contains("memory:epoch-0"), "{error}");
            }
            other => panic!("expected SpillWriteFailed, got {other:?}"),
        }
    }
    // Epoch 0 is gone and said to be lost; epoch 1 reached the store; 2..=5 are in memory.
    assert_eq!(found_in(&t, d(0)), Vec::<u64>::new());
    assert_eq!(found_in(&t, d(1)), vec![1]);
    let cov = t.coverage(0, 6 * E - 1);
    let g = gaps(&cov, 0, 6 * E - 1, true, 0);
    assert_eq!(g.len(), 1, "{g:?}");
    assert_eq!((g[0].from_ns, g[0].to_ns), (0, E));
    assert_eq!(g[0].reason, GapReason::Lost(LossCause::SpillWriteFailed));
}

/// The slot decision only decides: with no clean filter it hands the oldest expired one to
/// the caller, out of everyone else's reach, and saves nothing itself.
#[test]
fn locate_hands_the_spill_to_its_caller() {
    let store = Arc::new(MemoryStore::new());
    let t = on_store(store.clone(), None);
    let mut w = t.writer();
    for e in 0..4 {
        w.insert(e * E, d(e));
    }
    let mut stalled = false;
    let Located::SpillFirst { slot, epoch } = t.locate(4, &mut stalled) else {
        panic!("no clean slot: the caller must spill first");
    };
    assert_eq!(epoch, 0, "the oldest expired epoch");
    assert!(stalled);
    assert!(store.is_empty(), "the decision did no IO");
    // A second decision does not hand out the same slot, nor count the stall twice.
    let Located::SpillFirst { slot: other, epoch } = t.locate(4, &mut stalled) else {
        panic!("epoch 1 is still retired");
    };
    assert_eq!((epoch, t.stats().stalls), (1, 1));
    assert_ne!(slot, other);
    let _ = t.spill_and_clear(slot, 0);
    assert!(matches!(t.locate(4, &mut stalled), Located::Slot(s, _) if s == slot));
    let _ = t.spill_and_clear(other, 1);
    assert_eq!(store.len(), 2);
}

/// A store shared by two tables in turn plays a restart: what the first saved on shutdown
/// the second answers for, and the budget deletes through the store.
#[test]
fn memory_store_survives_a_restart_and_keeps_its_budget() {
    let store = Arc::new(MemoryStore::new());
    let t = on_store(store.clone(), None);
    let mut w = t.writer();
    for e in 0..3 {
        w.insert(e * E, d(e));
        t.maintain().unwrap();
    }
    drop(w);
    assert_eq!(t.retire_all().unwrap().spill_failed, 0);
    drop(t);
    assert_eq!(store.len(), 3);
    let per_epoch = config(FilterKind::Blocked, 2, None).params.bytes();
    let t = DigestTables::with_store(
        config(FilterKind::Blocked, 2, None),
        store.clone(),
        2 * per_epoch,
        None,
    )
    .unwrap();
    assert_eq!(store.len(), 2, "the budget deleted the oldest epoch");
    assert_eq!(found_in(&t, d(0)), Vec::<u64>::new());
    for e in 1..3 {
        let m = t.query(d(e), 0, u64::MAX);
        assert_eq!(m.len(), 1, "epoch {e}");
        assert!(m[0].on_disk);
    }
}
