//! Events: what the tables report about evidence they could not keep or read.
//!
//! The tables have no logging of their own (the crate is a core: no logger, no clock), yet a
//! spill write that fails on a full disk loses an epoch of evidence, and an operator must hear
//! of it the moment it happens. So the shell hands the tables an [`EventSink`] at construction
//! ([`crate::DigestTables::with_events`]) and the tables call it with a [`TableEvent`] for
//! every such failure; the probe service forwards them to its log. A callback rather than a
//! channel: there is nothing to drain, nothing to bound, and no event is lost when nobody
//! polls. The sink is called without any of the tables' locks held, from whichever thread met
//! the failure (maintenance, a stalled writer, a query), so it must be quick and must not
//! call back into the tables.

use std::path::PathBuf;
use std::sync::Arc;

use crate::error::TableError;

/// Receives the [`TableEvent`]s of one [`crate::DigestTables`].
pub type EventSink = Arc<dyn Fn(TableEvent) + Send + Sync>;

/// A failure the tables survived but an operator must know about. Each one names the file
/// and, where known, the epoch; `error` carries the cause (print it with its source chain).
#[non_exhaustive]
#[derive(Debug)]
pub enum TableEvent {
    /// An expired epoch could not be written to the spill directory: it is lost, and
    /// queries over it answer `unknown`.
    SpillWriteFailed {
        /// The file that was being written.
        path: PathBuf,
        /// Start of the epoch, ns since the Unix epoch.
        epoch_start_ns: u64,
        /// Why.
        error: TableError,
    },
    /// A file in the spill directory was not loaded at start (bad header, length or contents;
    /// another table's; not a regular file). `epoch_start_ns` is read from the file name when
    /// it has the usual form.
    SpillFileRejected {
        /// The file.
        path: PathBuf,
        /// The epoch its name claims, if any.
        epoch_start_ns: Option<u64>,
        /// Why.
        error: TableError,
    },
    /// A loaded spill file could not be read for a query (removed, replaced, truncated, IO
    /// error): that epoch answers `unknown` in that query.
    SpillReadFailed {
        /// The file.
        path: PathBuf,
        /// Start of the epoch.
        epoch_start_ns: u64,
        /// Why.
        error: TableError,
    },
    /// A spill file chosen for deletion by the budget could not be deleted: the disk use may
    /// exceed the budget.
    SpillDeleteFailed {
        /// The file.
        path: PathBuf,
        /// Why.
        error: TableError,
    },
}

impl TableEvent {
    /// The file concerned.
    pub fn path(&self) -> &std::path::Path {
        match self {
            TableEvent::SpillWriteFailed { path, .. }
            | TableEvent::SpillFileRejected { path, .. }
            | TableEvent::SpillReadFailed { path, .. }
            | TableEvent::SpillDeleteFailed { path, .. } => path,
        }
    }

    /// The error carried.
    pub fn error(&self) -> &TableError {
        match self {
            TableEvent::SpillWriteFailed { error, .. }
            | TableEvent::SpillFileRejected { error, .. }
            | TableEvent::SpillReadFailed { error, .. }
            | TableEvent::SpillDeleteFailed { error, .. } => error,
        }
    }

    /// A short stable name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            TableEvent::SpillWriteFailed { .. } => "spill_write_failed",
            TableEvent::SpillFileRejected { .. } => "spill_file_rejected",
            TableEvent::SpillReadFailed { .. } => "spill_read_failed",
            TableEvent::SpillDeleteFailed { .. } => "spill_delete_failed",
        }
    }
}
