//! The crate's one error type.
//!
//! Every variant says *what* failed (the parameter, the byte count, the file) so the shells can
//! log it without guessing; the enum is `#[non_exhaustive]` so new failure modes can be added
//! without breaking callers that match on it.

use std::io;
use std::path::PathBuf;

/// Why a spill file was refused at load time. A refused file is never queried: a
/// half-written or foreign filter would silently turn into false answers.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpillRejection {
    /// Shorter than the fixed header.
    #[error("file is {len} bytes, shorter than the {min}-byte header")]
    TooShort {
        /// Actual length.
        len: u64,
        /// Header length.
        min: u64,
    },
    /// The first 8 bytes are not `ASHBLM01`.
    #[error("bad magic {found:02x?}")]
    BadMagic {
        /// The bytes found.
        found: [u8; 8],
    },
    /// A format version this build does not read.
    #[error("unsupported version {0}")]
    UnsupportedVersion(u32),
    /// The header checksum does not match its fields (torn or corrupted header).
    #[error("header checksum mismatch")]
    BadChecksum,
    /// Unknown filter kind code.
    #[error("unknown filter kind code {0}")]
    UnknownKind(u32),
    /// The filter parameters in the header are invalid.
    #[error("invalid parameters in header: {0}")]
    BadParams(String),
    /// The file length does not match the header's filter size.
    #[error("file is {actual} bytes, header implies {expected}")]
    LengthMismatch {
        /// Length implied by the header.
        expected: u64,
        /// Actual file length.
        actual: u64,
    },
    /// Written under another digest key or version (`table_id` differs).
    #[error("foreign table id {found:#018x}")]
    ForeignTable {
        /// The table id in the file.
        found: u64,
    },
    /// Written with another epoch length.
    #[error("epoch length {found} ns differs from the configured one")]
    EpochLength {
        /// The epoch length in the file.
        found: u64,
    },
    /// Not a regular file (a FIFO, device or directory named like a spill file).
    #[error("not a regular file")]
    NotRegularFile,
    /// The population count of the words differs from the header (bit rot, truncated write).
    #[error("header says {header} bits set, words have {counted}")]
    OnesMismatch {
        /// Ones recorded in the header.
        header: u64,
        /// Ones counted in the words.
        counted: u64,
    },
}

/// Errors of the digest tables.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// Filter parameters out of range (see [`crate::FilterParams::validate`]).
    #[error("invalid filter parameters: {0}")]
    InvalidParams(String),
    /// Table configuration out of range (epoch length, retention).
    #[error("invalid table configuration: {0}")]
    InvalidConfig(String),
    /// The kernel refused the anonymous mapping for a filter.
    #[error("cannot allocate {bytes} bytes for a Bloom filter")]
    Alloc {
        /// Bytes requested.
        bytes: u64,
        /// The `mmap` error.
        #[source]
        source: io::Error,
    },
    /// Reading, writing, renaming or deleting a spill file or directory failed.
    #[error("spill storage {path}")]
    Spill {
        /// File or directory involved.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: io::Error,
    },
    /// A spill file exists but is not one this table may load.
    #[error("spill file {path} rejected")]
    BadSpillFile {
        /// The refused file.
        path: PathBuf,
        /// Why.
        #[source]
        reason: SpillRejection,
    },
    /// Another process (or another table in this one) holds the spill directory's lock: two
    /// probes on one directory would delete each other's files under their budgets.
    #[error(
        "spill directory {dir} is in use by another process (lock file {lock} is held); give each probe its own --spill-dir"
    )]
    SpillDirLocked {
        /// The spill directory.
        dir: PathBuf,
        /// The lock file in it.
        lock: PathBuf,
    },
    /// Shutdown could not write every epoch held in memory to the spill directory: those
    /// epochs are lost, and a restart will answer `unknown` for them.
    #[error(
        "{failed} epoch(s) held in memory could not be written to the spill directory ({spilled} were); the first, starting at {epoch_start_ns} ns, failed"
    )]
    EpochsNotSaved {
        /// Epochs that could not be written.
        failed: usize,
        /// Epochs written.
        spilled: usize,
        /// Start of the first epoch that failed.
        epoch_start_ns: u64,
        /// Why it failed.
        #[source]
        source: Box<TableError>,
    },
}
