//! Spill files: the [`FileStore`], which writes expired epochs to disk and reads them back
//! with positioned reads for queries (never mapped: see [`FileStore`]).
//!
//! Layout (all integers little-endian), a 128-byte header so the words start cache-line
//! aligned in the file:
//!
//! ```text
//! 0   magic "ASHBLM01"      8   version u32 (1)     12  kind u32 (0 standard, 1 blocked)
//! 16  table_id u64          24  m_bits u64          32  k u32            36  reserved u32
//! 40  epoch_start_ns u64    48  epoch_ns u64        56  inserted u64     64  ones u64
//! 72  header checksum u64 (splitmix64 chain over bytes 0..72)           80..128 zero
//! 128 m_bits / 8 bytes of filter words
//! ```
//!
//! Files are written to a dot-prefixed temporary name, synced and renamed, so a crash leaves
//! either a complete file or a temporary one (removed at the next start), never a torn file
//! under the real name. At load, the header checksum, the length and the popcount of the words
//! (against `ones`) are checked with a streaming read; anything that fails is ignored, counted
//! and reported as an event, never queried.
//!
//! The directory is treated as untrusted: only regular files are opened (symlinks, FIFOs,
//! devices and directories named like spill files are skipped and counted as ignored, and
//! files are opened non-blocking and checked to be regular after opening, so a FIFO can never
//! block start-up), and header counts are summed with saturating arithmetic.
//!
//! A file's own header parameters (not the configured ones) are used for its membership tests
//! and its false-positive rate: after a restart with another filter size, epochs spilled
//! before still answer correctly.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::bloom::Bloom;
use crate::error::{SpillRejection, TableError};
use crate::params::{FilterKind, FilterParams};
use crate::rng::mix64;
use crate::store::{EpochStore, Rejected, StoreScan, StoredEpoch, Unindexed};

const MAGIC: [u8; 8] = *b"ASHBLM01";
const VERSION: u32 = 1;
/// Header bytes before the filter words.
pub const HEADER_LEN: usize = 128;
const CHECKSUM_AT: usize = 72;
/// Extension of spill files.
pub const EXTENSION: &str = "ashbloom";

/// The metadata of one spilled epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct SpillHeader {
    /// Fingerprint of the digest key and version the filter was built with.
    pub table_id: u64,
    /// Filter shape.
    pub params: FilterParams,
    /// Start of the epoch, ns since the Unix epoch.
    pub epoch_start_ns: u64,
    /// Epoch length.
    pub epoch_ns: u64,
    /// Digests inserted.
    pub inserted: u64,
    /// Bits set.
    pub ones: u64,
}

fn checksum(bytes: &[u8]) -> u64 {
    bytes.chunks(8).fold(0x6173_6869_6174_6f00, |acc, c| {
        let mut w = [0u8; 8];
        w[..c.len()].copy_from_slice(c);
        mix64(acc ^ u64::from_le_bytes(w))
    })
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

impl SpillHeader {
    /// Serialises the header.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&self.params.kind.code().to_le_bytes());
        b[16..24].copy_from_slice(&self.table_id.to_le_bytes());
        b[24..32].copy_from_slice(&self.params.m_bits.to_le_bytes());
        b[32..36].copy_from_slice(&self.params.k.to_le_bytes());
        b[40..48].copy_from_slice(&self.epoch_start_ns.to_le_bytes());
        b[48..56].copy_from_slice(&self.epoch_ns.to_le_bytes());
        b[56..64].copy_from_slice(&self.inserted.to_le_bytes());
        b[64..72].copy_from_slice(&self.ones.to_le_bytes());
        let sum = checksum(&b[..CHECKSUM_AT]);
        b[CHECKSUM_AT..CHECKSUM_AT + 8].copy_from_slice(&sum.to_le_bytes());
        b
    }

    /// Parses and checks a header (magic, version, checksum, kind, parameters). Never panics.
    pub fn decode(b: &[u8]) -> Result<Self, SpillRejection> {
        if b.len() < HEADER_LEN {
            return Err(SpillRejection::TooShort {
                len: b.len() as u64,
                min: HEADER_LEN as u64,
            });
        }
        let mut magic = [0u8; 8];
        magic.copy_from_slice(&b[0..8]);
        if magic != MAGIC {
            return Err(SpillRejection::BadMagic { found: magic });
        }
        let version = u32_at(b, 8);
        if version != VERSION {
            return Err(SpillRejection::UnsupportedVersion(version));
        }
        if checksum(&b[..CHECKSUM_AT]) != u64_at(b, CHECKSUM_AT) {
            return Err(SpillRejection::BadChecksum);
        }
        let code = u32_at(b, 12);
        let kind = FilterKind::from_code(code).ok_or(SpillRejection::UnknownKind(code))?;
        let params = FilterParams {
            kind,
            m_bits: u64_at(b, 24),
            k: u32_at(b, 32),
        };
        params
            .validate()
            .map_err(|e| SpillRejection::BadParams(e.to_string()))?;
        Ok(SpillHeader {
            table_id: u64_at(b, 16),
            params,
            epoch_start_ns: u64_at(b, 40),
            epoch_ns: u64_at(b, 48),
            inserted: u64_at(b, 56),
            ones: u64_at(b, 64),
        })
    }

    /// Total file length implied by the header.
    pub fn file_len(&self) -> u64 {
        HEADER_LEN as u64 + self.params.bytes()
    }
}

/// The default [`EpochStore`]: one spill file per epoch in a directory, locked for the
/// store's lifetime.
///
/// Only metadata stays in memory: no mapping and no open file. Each query opens the file,
/// checks that it is still the file validated at start (same inode, same length), reads the
/// words it needs with positioned reads and closes it. So the number of spilled epochs is
/// bounded by disk alone — not by `vm.max_map_count` (a mapping per epoch aborted the process
/// past about 65,000 epochs) nor by the descriptor limit — and a file truncated or replaced
/// underneath gives an error for that epoch instead of a SIGBUS.
#[derive(Debug)]
pub struct FileStore {
    dir: PathBuf,
    /// The directory's lock file, locked while the store lives.
    _lock: File,
}

impl FileStore {
    /// Creates `dir` if missing and takes its lock ([`LOCK_FILE`]): a second store on the
    /// same directory, in this process or another, is refused.
    pub fn open(dir: &Path) -> Result<Self, TableError> {
        fs::create_dir_all(dir).map_err(spill_err(dir))?;
        Ok(FileStore {
            dir: dir.to_path_buf(),
            _lock: lock_dir(dir)?,
        })
    }
}

impl EpochStore for FileStore {
    fn location(&self) -> PathBuf {
        self.dir.clone()
    }

    fn scan(&self, table_id: u64, epoch_ns: u64) -> Result<StoreScan, TableError> {
        scan(&self.dir, table_id, epoch_ns)
    }

    fn save(&self, header: &SpillHeader, bloom: &Bloom) -> Result<StoredEpoch, TableError> {
        write(&self.dir, header, bloom)
    }

    /// Neighbours within `COALESCE_GAP_WORDS` are fetched in one positioned read of at most
    /// `READ_CHUNK` bytes: a single digest costs one small read per word (one for a blocked
    /// filter), a large batch reads the file nearly sequentially.
    fn read_words(&self, epoch: &StoredEpoch, wanted: &[usize]) -> Result<Vec<u64>, TableError> {
        let path = epoch.location();
        let (file, meta) = open_regular(path)?;
        let changed = |what: &str| TableError::Spill {
            path: path.to_path_buf(),
            source: std::io::Error::other(format!("{what} since it was validated")),
        };
        if (meta.dev(), meta.ino()) != epoch.identity() {
            return Err(changed("replaced"));
        }
        if meta.len() != epoch.header().file_len() {
            return Err(changed("resized"));
        }
        let mut values = vec![0u64; wanted.len()];
        let mut buf = Vec::new();
        let max_words = READ_CHUNK / 8;
        let mut i = 0;
        while i < wanted.len() {
            let first = wanted[i];
            let mut j = i + 1;
            while j < wanted.len()
                && wanted[j] - wanted[j - 1] <= COALESCE_GAP_WORDS
                && wanted[j] - first < max_words
            {
                j += 1;
            }
            let words = wanted[j - 1] - first + 1;
            buf.resize(words * 8, 0);
            file.read_exact_at(&mut buf, HEADER_LEN as u64 + first as u64 * 8)
                .map_err(spill_err(path))?;
            for (v, &w) in values[i..j].iter_mut().zip(&wanted[i..j]) {
                let at = (w - first) * 8;
                let mut b = [0u8; 8];
                b.copy_from_slice(&buf[at..at + 8]);
                *v = u64::from_le_bytes(b);
            }
            i = j;
        }
        Ok(values)
    }

    fn delete(&self, location: &Path) -> Result<(), TableError> {
        fs::remove_file(location).map_err(spill_err(location))
    }
}

fn spill_err(path: &Path) -> impl FnOnce(std::io::Error) -> TableError + '_ {
    move |source| TableError::Spill {
        path: path.to_path_buf(),
        source,
    }
}

/// Bytes read per positioned read when validating or when a batch needs many nearby words.
const READ_CHUNK: usize = 1 << 20;
/// Words needed by a batch that lie at most this many words apart are fetched in one read.
const COALESCE_GAP_WORDS: usize = 512;

/// Opens `path` for reading without following a FIFO into a blocking open, and checks that it
/// is a regular file before anything is read.
fn open_regular(path: &Path) -> Result<(File, fs::Metadata), TableError> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(spill_err(path))?;
    let meta = file.metadata().map_err(spill_err(path))?;
    if !meta.is_file() {
        return Err(TableError::BadSpillFile {
            path: path.to_path_buf(),
            reason: SpillRejection::NotRegularFile,
        });
    }
    Ok((file, meta))
}

/// Validates spill file `path` with a streaming read (header, checksum, length, popcount of
/// every word); `expect` = (table_id, epoch_ns) the caller accepts. Nothing is mapped and the
/// file is closed again.
pub(crate) fn open_file(
    path: &Path,
    expect: Option<(u64, u64)>,
) -> Result<StoredEpoch, TableError> {
    let (file, meta) = open_regular(path)?;
    let reject = |reason| TableError::BadSpillFile {
        path: path.to_path_buf(),
        reason,
    };
    let len = meta.len();
    if len < HEADER_LEN as u64 {
        return Err(reject(SpillRejection::TooShort {
            len,
            min: HEADER_LEN as u64,
        }));
    }
    let mut head = [0u8; HEADER_LEN];
    file.read_exact_at(&mut head, 0).map_err(spill_err(path))?;
    let header = SpillHeader::decode(&head).map_err(reject)?;
    if header.file_len() != len {
        return Err(reject(SpillRejection::LengthMismatch {
            expected: header.file_len(),
            actual: len,
        }));
    }
    if let Some((table_id, epoch_ns)) = expect {
        if header.table_id != table_id {
            return Err(reject(SpillRejection::ForeignTable {
                found: header.table_id,
            }));
        }
        if header.epoch_ns != epoch_ns {
            return Err(reject(SpillRejection::EpochLength {
                found: header.epoch_ns,
            }));
        }
    }
    let mut buf = vec![0u8; READ_CHUNK.min((len - HEADER_LEN as u64) as usize)];
    let mut counted = 0u64;
    let mut at = HEADER_LEN as u64;
    while at < len {
        let n = buf.len().min((len - at) as usize);
        file.read_exact_at(&mut buf[..n], at)
            .map_err(spill_err(path))?;
        counted += buf[..n]
            .iter()
            .map(|b| u64::from(b.count_ones()))
            .sum::<u64>();
        at += n as u64;
    }
    if counted != header.ones {
        return Err(reject(SpillRejection::OnesMismatch {
            header: header.ones,
            counted,
        }));
    }
    Ok(StoredEpoch::new(
        path.to_path_buf(),
        header,
        len,
        (meta.dev(), meta.ino()),
    ))
}

/// Reads and validates just the header of a spill file (for inspection tools).
pub fn read_spill_header(path: &Path) -> Result<SpillHeader, TableError> {
    open_file(path, None).map(|f| f.header().clone())
}

/// Writes `bloom` as the spill file of `header`'s epoch in `dir` (temp file, fsync, rename)
/// and validates it back. On error the temporary file is removed; nothing is left half-written, and
/// a published file that cannot be opened back is unlinked (it would only take budget).
fn write(dir: &Path, header: &SpillHeader, bloom: &Bloom) -> Result<StoredEpoch, TableError> {
    let mut name = format!("epoch-{}.{EXTENSION}", header.epoch_start_ns);
    let mut n = 1;
    // A file for this epoch from an earlier run keeps its own name; both are queried.
    while fs::symlink_metadata(dir.join(&name)).is_ok() {
        name = format!("epoch-{}-{n}.{EXTENSION}", header.epoch_start_ns);
        n += 1;
    }
    let path = dir.join(&name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let result = (|| {
        let file = File::create(&tmp)?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        w.write_all(&header.encode())?;
        bloom.write_words(&mut w)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        fs::rename(&tmp, &path)
    })();
    if let Err(source) = result {
        let _ = fs::remove_file(&tmp);
        return Err(TableError::Spill { path, source });
    }
    open_file(&path, Some((header.table_id, header.epoch_ns))).inspect_err(|_| {
        let _ = fs::remove_file(&path);
    })
}

/// The epoch start a spill file's name claims (see [`write`] for the naming).
pub(crate) fn epoch_in_name(path: &Path) -> Option<u64> {
    let stem = path.file_stem()?.to_str()?.strip_prefix("epoch-")?;
    let digits = stem.split_once('-').map_or(stem, |(d, _)| d);
    digits.parse().ok()
}

/// Name of the lock file in a spill directory.
pub const LOCK_FILE: &str = ".ashiato-spill.lock";

/// Takes the exclusive lock of spill directory `dir` (creating the lock file), without
/// waiting. `flock` locks belong to the open file description, so the lock lasts as long as
/// the returned file is open, a second open in the same process conflicts too, and the kernel
/// releases it when the process dies: no stale lock after a crash.
pub(crate) fn lock_dir(dir: &Path) -> Result<File, TableError> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(spill_err(&path))?;
    // SAFETY: flock on a descriptor we own; it reads no memory.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let source = std::io::Error::last_os_error();
        if source.raw_os_error() == Some(libc::EWOULDBLOCK) {
            return Err(TableError::SpillDirLocked {
                dir: dir.to_path_buf(),
                lock: path,
            });
        }
        return Err(TableError::Spill { path, source });
    }
    Ok(file)
}

/// Loads every valid spill file of this table in `dir`; removes leftover temporary files.
fn scan(dir: &Path, table_id: u64, epoch_ns: u64) -> Result<StoreScan, TableError> {
    let mut out = StoreScan::default();
    for entry in fs::read_dir(dir).map_err(spill_err(dir))? {
        let Ok(entry) = entry else {
            out.bad += 1;
            continue;
        };
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.ends_with(".tmp") {
            let _ = fs::remove_file(&path);
            continue;
        }
        if path.extension().is_none_or(|e| e != EXTENSION) {
            continue;
        }
        let epoch_start_ns = epoch_in_name(&path);
        let reject = |error: TableError, bad: bool| Rejected {
            location: path.clone(),
            epoch_start_ns,
            error,
            bad,
        };
        // Not followed: a symlink, FIFO, device or directory is skipped without opening it.
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() => m,
            Ok(_) => {
                out.rejected.push(reject(
                    TableError::BadSpillFile {
                        path: path.clone(),
                        reason: SpillRejection::NotRegularFile,
                    },
                    false,
                ));
                out.foreign += 1;
                continue;
            }
            Err(source) => {
                out.rejected.push(reject(
                    TableError::Spill {
                        path: path.clone(),
                        source,
                    },
                    true,
                ));
                out.bad += 1;
                continue;
            }
        };
        let unindexed = || Unindexed {
            location: path.clone(),
            bytes: meta.len(),
            mtime: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        };
        match open_file(&path, Some((table_id, epoch_ns))) {
            Ok(f) => out.epochs.push(f),
            // Replaced by a non-regular file since the check: never delete that.
            Err(
                e @ TableError::BadSpillFile {
                    reason: SpillRejection::NotRegularFile,
                    ..
                },
            ) => {
                out.rejected.push(reject(e, false));
                out.foreign += 1;
            }
            Err(
                e @ TableError::BadSpillFile {
                    reason: SpillRejection::ForeignTable { .. } | SpillRejection::EpochLength { .. },
                    ..
                },
            ) => {
                out.rejected.push(reject(e, false));
                out.foreign += 1;
                out.unindexed.push(unindexed());
            }
            Err(e) => {
                out.rejected.push(reject(e, true));
                out.bad += 1;
                out.unindexed.push(unindexed());
            }
        }
    }
    out.unindexed.sort_by(|a, b| {
        a.mtime
            .cmp(&b.mtime)
            .then_with(|| a.location.cmp(&b.location))
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{FileStore, HEADER_LEN, SpillHeader, open_file, read_spill_header, scan};
    use crate::bloom::Bloom;
    use crate::error::{SpillRejection, TableError};
    use crate::params::{FilterKind, FilterParams};
    use crate::store::EpochStore;

    fn header(bloom: &Bloom) -> SpillHeader {
        SpillHeader {
            table_id: 42,
            params: bloom.params(),
            epoch_start_ns: 7_000_000_000,
            epoch_ns: 1_000_000_000,
            inserted: 3,
            ones: bloom.count_ones(),
        }
    }

    #[test]
    fn header_round_trip_and_rejections() {
        let bloom = Bloom::new(FilterParams {
            kind: FilterKind::Blocked,
            m_bits: 1024,
            k: 3,
        })
        .unwrap();
        let h = header(&bloom);
        let bytes = h.encode();
        assert_eq!(SpillHeader::decode(&bytes).unwrap(), h);
        assert!(matches!(
            SpillHeader::decode(&bytes[..100]),
            Err(SpillRejection::TooShort { .. })
        ));
        for at in [0, 9, 20, 45, 70, 75] {
            let mut bad = bytes;
            bad[at] ^= 0x10;
            assert!(SpillHeader::decode(&bad).is_err(), "flip at {at}");
        }
    }

    #[test]
    fn write_open_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let bloom = Bloom::new(FilterParams {
            kind: FilterKind::Standard,
            m_bits: 4096,
            k: 4,
        })
        .unwrap();
        for h in 0..20u128 {
            bloom.insert(h.wrapping_mul(0x1234_5678_9abc_def1_0fed_cba9_8765_4321));
        }
        let store = FileStore::open(dir.path()).unwrap();
        let f = store.save(&header(&bloom), &bloom).unwrap();
        let hs: Vec<u128> = (0..20u128)
            .map(|h| h.wrapping_mul(0x1234_5678_9abc_def1_0fed_cba9_8765_4321))
            .collect();
        assert!(f.contains_batch(&store, &hs).unwrap().iter().all(|&b| b));
        assert_eq!(f.bytes(), HEADER_LEN as u64 + 512);
        // A second spill of the same epoch gets its own name.
        let g = store.save(&header(&bloom), &bloom).unwrap();
        assert_ne!(f.location(), g.location());
        assert_eq!(read_spill_header(g.location()).unwrap(), header(&bloom));

        // Flip one payload bit: the popcount check refuses the file.
        let mut bytes = std::fs::read(g.location()).unwrap();
        bytes[HEADER_LEN + 5] ^= 1;
        std::fs::write(g.location(), &bytes).unwrap();
        assert!(matches!(
            open_file(g.location(), None),
            Err(TableError::BadSpillFile {
                reason: SpillRejection::OnesMismatch { .. },
                ..
            })
        ));
        std::fs::write(dir.path().join(".epoch-1.ashbloom.tmp"), b"junk").unwrap();
        let s = scan(dir.path(), 42, 1_000_000_000).unwrap();
        assert_eq!((s.epochs.len(), s.bad, s.foreign), (1, 1, 0));
        assert!(!dir.path().join(".epoch-1.ashbloom.tmp").exists());
        // Another table's files are ignored as foreign (checked before the contents).
        let s = scan(dir.path(), 43, 1_000_000_000).unwrap();
        assert_eq!((s.epochs.len(), s.bad, s.foreign), (0, 0, 2));
    }
}
