//! Where expired epochs go: the [`EpochStore`] trait and its in-memory implementation.
//!
//! The tables decide *when* an epoch leaves memory and *what* it holds; a store does the
//! keeping. [`crate::spill::FileStore`] (spill files in a directory, the default whenever
//! [`crate::TablesConfig::spill`] is set) is the real one; [`MemoryStore`] keeps the words in
//! RAM, for tests and simulations that run many tables in one process without a filesystem.
//! A store is handed to [`crate::DigestTables::with_store`]; the tables call it from the
//! maintenance thread, from a stalled writer (see [`crate::Writer`]) and from queries, never
//! with their own locks held.
//!
//! The contract, which the tables rely on for their answers:
//! * [`EpochStore::save`] returns only once the epoch can be read back; an `Err` means the
//!   epoch is *not* held (the tables then record it as lost: queries answer `unknown`).
//! * [`EpochStore::read_words`] fails rather than return words of anything but the saved
//!   filter (a file replaced or truncated underneath): the epoch is then unknown for that
//!   query, never "not seen".
//! * [`EpochStore::scan`] lists at start what an earlier run saved, and what it refuses.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use crate::bloom::{Bloom, Indexer};
use crate::error::{SpillRejection, TableError};
use crate::spill::SpillHeader;
use crate::theory;

/// Keeps the filters of expired epochs and reads their words back for queries.
pub trait EpochStore: Send + Sync {
    /// Where this store keeps epochs (a directory, or a label), for events that concern the
    /// store as a whole.
    fn location(&self) -> PathBuf;

    /// What an earlier run saved for `table_id` with epochs of `epoch_ns`, and what else the
    /// store holds (refused, or another table's). Called once, at start.
    fn scan(&self, table_id: u64, epoch_ns: u64) -> Result<StoreScan, TableError>;

    /// Saves the filter of `header`'s epoch; returns once it can be read back.
    fn save(&self, header: &SpillHeader, bloom: &Bloom) -> Result<StoredEpoch, TableError>;

    /// The filter words at indexes `words` (sorted, distinct) of a saved epoch, in that
    /// order. Fails if the epoch is gone or is no longer what was saved.
    fn read_words(&self, epoch: &StoredEpoch, words: &[usize]) -> Result<Vec<u64>, TableError>;

    /// Deletes what is stored at `location` (a saved epoch, or an unindexed entry).
    fn delete(&self, location: &Path) -> Result<(), TableError>;
}

/// One saved epoch: where it is and what its header says. Only metadata: the words stay in
/// the store.
pub struct StoredEpoch {
    location: PathBuf,
    header: SpillHeader,
    bytes: u64,
    identity: (u64, u64),
    index: Indexer,
    /// `header.inserted`, raised to [`theory::plausible_inserted`] if the header's count is
    /// impossibly low for its `ones`.
    inserted: u64,
    /// [`theory::fpr`] with the epoch's own parameters at `inserted`.
    fpr: f64,
}

impl std::fmt::Debug for StoredEpoch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredEpoch")
            .field("location", &self.location)
            .field("header", &self.header)
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

impl StoredEpoch {
    /// A saved epoch at `location` taking `bytes` of the budget. `identity` is the store's
    /// own check that the location still holds what was saved (a file's device and inode).
    pub fn new(location: PathBuf, header: SpillHeader, bytes: u64, identity: (u64, u64)) -> Self {
        let inserted = theory::plausible_inserted(&header.params, header.inserted, header.ones);
        StoredEpoch {
            location,
            index: Indexer::new(&header.params),
            fpr: theory::fpr(&header.params, inserted),
            inserted,
            header,
            bytes,
            identity,
        }
    }

    /// Where it is stored.
    pub fn location(&self) -> &Path {
        &self.location
    }

    /// Its header (its own filter parameters, which may differ from the configured ones).
    pub fn header(&self) -> &SpillHeader {
        &self.header
    }

    /// Bytes it takes in the store, counted against the budget.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The store's identity check (see [`StoredEpoch::new`]).
    pub fn identity(&self) -> (u64, u64) {
        self.identity
    }

    /// Digests in the epoch (see the field).
    pub(crate) fn inserted(&self) -> u64 {
        self.inserted
    }

    /// The epoch's false-positive rate, from its own parameters.
    pub(crate) fn fpr(&self) -> f64 {
        self.fpr
    }

    /// Whether the saved filter may contain each of `hs`: the words the batch needs are
    /// collected (same positions as the live filter, the epoch's own parameters), read from
    /// `store` in one call, and tested.
    pub(crate) fn contains_batch(
        &self,
        store: &dyn EpochStore,
        hs: &[u128],
    ) -> Result<Vec<bool>, TableError> {
        let mut wanted = Vec::with_capacity(hs.len() * self.header.params.k as usize);
        for &h in hs {
            // A word source that says "all set" visits every position of `h`.
            self.index.contains_with(h, |w| {
                wanted.push(w);
                u64::MAX
            });
        }
        wanted.sort_unstable();
        wanted.dedup();
        let values = store.read_words(self, &wanted)?;
        if values.len() != wanted.len() {
            return Err(TableError::Spill {
                path: self.location.clone(),
                source: std::io::Error::other(format!(
                    "the store returned {} words for {} asked",
                    values.len(),
                    wanted.len()
                )),
            });
        }
        Ok(hs
            .iter()
            .map(|&h| {
                self.index
                    .contains_with(h, |w| wanted.binary_search(&w).map_or(0, |at| values[at]))
            })
            .collect())
    }
}

/// What a start-up [`EpochStore::scan`] found.
#[derive(Debug, Default)]
pub struct StoreScan {
    /// Epochs of this table, answerable.
    pub epochs: Vec<StoredEpoch>,
    /// Every entry that was not loaded, with the reason.
    pub rejected: Vec<Rejected>,
    /// Entries refused as damaged (bad header, length or contents, unreadable).
    pub bad: u64,
    /// Valid entries of another table id or epoch length, and entries that are not what
    /// they claim (never opened).
    pub foreign: u64,
    /// The entries among `bad` and `foreign` that take space, oldest first: the budget
    /// counts them and deletes them first.
    pub unindexed: Vec<Unindexed>,
}

/// A stored entry that was not indexed (foreign or bad): it still takes space.
#[derive(Debug)]
pub struct Unindexed {
    /// Where it is.
    pub location: PathBuf,
    /// Bytes it takes.
    pub bytes: u64,
    /// When it was last written (for oldest-first deletion).
    pub mtime: SystemTime,
}

/// An entry the scan did not load.
#[derive(Debug)]
pub struct Rejected {
    /// Where it is.
    pub location: PathBuf,
    /// The epoch start its name claims, if any.
    pub epoch_start_ns: Option<u64>,
    /// Why it was refused.
    pub error: TableError,
    /// Damaged (the epoch it claims is lost), as opposed to another table's entry.
    pub bad: bool,
}

/// An [`EpochStore`] in RAM: no filesystem, no IO. Shared (`Arc`) between two tables in turn,
/// it plays a restart on the same spill directory.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<MemoryInner>,
}

#[derive(Debug, Default)]
struct MemoryInner {
    next: u64,
    epochs: BTreeMap<PathBuf, (u64, SpillHeader, Vec<u64>)>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Epochs held.
    pub fn len(&self) -> usize {
        self.lock().epochs.len()
    }

    /// Whether it holds no epoch.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn missing(location: &Path) -> TableError {
        TableError::Spill {
            path: location.to_path_buf(),
            source: std::io::ErrorKind::NotFound.into(),
        }
    }
}

impl EpochStore for MemoryStore {
    fn location(&self) -> PathBuf {
        PathBuf::from("memory:")
    }

    fn scan(&self, table_id: u64, epoch_ns: u64) -> Result<StoreScan, TableError> {
        let mut out = StoreScan::default();
        for (location, (serial, header, words)) in &self.lock().epochs {
            let bytes = words.len() as u64 * 8;
            let reason = if header.table_id != table_id {
                SpillRejection::ForeignTable {
                    found: header.table_id,
                }
            } else if header.epoch_ns != epoch_ns {
                SpillRejection::EpochLength {
                    found: header.epoch_ns,
                }
            } else {
                let e = StoredEpoch::new(location.clone(), header.clone(), bytes, (*serial, 0));
                out.epochs.push(e);
                continue;
            };
            out.foreign += 1;
            out.rejected.push(Rejected {
                location: location.clone(),
                epoch_start_ns: Some(header.epoch_start_ns),
                error: TableError::BadSpillFile {
                    path: location.clone(),
                    reason,
                },
                bad: false,
            });
            out.unindexed.push(Unindexed {
                location: location.clone(),
                bytes,
                mtime: SystemTime::UNIX_EPOCH,
            });
        }
        Ok(out)
    }

    fn save(&self, header: &SpillHeader, bloom: &Bloom) -> Result<StoredEpoch, TableError> {
        let serial = {
            let mut g = self.lock();
            g.next += 1;
            g.next - 1
        };
        let location = PathBuf::from(format!("memory:epoch-{}-{serial}", header.epoch_start_ns));
        let mut bytes = Vec::with_capacity(bloom.bytes() as usize);
        bloom
            .write_words(&mut bytes)
            .map_err(|source| TableError::Spill {
                path: location.clone(),
                source,
            })?;
        let words: Vec<u64> = bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect();
        let n = words.len() as u64 * 8;
        self.lock()
            .epochs
            .insert(location.clone(), (serial, header.clone(), words));
        Ok(StoredEpoch::new(location, header.clone(), n, (serial, 0)))
    }

    fn read_words(&self, epoch: &StoredEpoch, words: &[usize]) -> Result<Vec<u64>, TableError> {
        let g = self.lock();
        let Some((serial, _, stored)) = g.epochs.get(epoch.location()) else {
            return Err(Self::missing(epoch.location()));
        };
        if (*serial, 0) != epoch.identity() {
            return Err(Self::missing(epoch.location()));
        }
        words
            .iter()
            .map(|&w| {
                stored.get(w).copied().ok_or_else(|| TableError::Spill {
                    path: epoch.location().to_path_buf(),
                    source: std::io::Error::other(format!("word {w} is past the filter")),
                })
            })
            .collect()
    }

    fn delete(&self, location: &Path) -> Result<(), TableError> {
        match self.lock().epochs.remove(location) {
            Some(_) => Ok(()),
            None => Err(Self::missing(location)),
        }
    }
}
