//! The bounded packet history: pcap segments `seg-<start_ns>.pcap` in one directory.
//!
//! Pure parts: [`deletions`] (oldest segments first, until the rest fit `keep_bytes` and none
//! ended before `now - keep_ns`; the segment being written is never deleted), [`rotate_due`]
//! and [`coverage`] (does the recording cover a window, so that "no match" means the window
//! was searched?). The IO shell [`Recorder`] writes frames, rotates, deletes, and counts
//! write errors instead of stopping: a full disk costs the packets that could not be written,
//! visible as a gap in the coverage and in [`RecorderStats`].
//!
//! A segment's start is in its name; its end is its file's modification time, refreshed on
//! every [`Recorder::tick`] (also when no packet arrived), so the history says honestly when
//! the recorder was not running.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use ashiato_wire::LinkType;
use ashiato_wire::capfile::PcapWriter;

use crate::AgentError;

/// One stored segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Its file.
    pub path: PathBuf,
    /// When recording into it started, ns.
    pub start_ns: u64,
    /// The last time the recorder was known to be writing it, ns.
    pub end_ns: u64,
    /// Its size.
    pub bytes: u64,
}

/// How many of `segs` (sorted oldest first) to delete, oldest first, so that the rest hold
/// at most `keep_bytes` and none ended before `now_ns - keep_ns`. The last segment (the one
/// being written) is never counted for deletion.
pub fn deletions(segs: &[Segment], keep_bytes: u64, keep_ns: u64, now_ns: u64) -> usize {
    let mut total: u64 = segs.iter().map(|s| s.bytes).sum();
    let oldest_kept = now_ns.saturating_sub(keep_ns);
    let mut n = 0;
    for s in segs.iter().take(segs.len().saturating_sub(1)) {
        if total <= keep_bytes && s.end_ns >= oldest_kept {
            break;
        }
        total -= s.bytes;
        n += 1;
    }
    n
}

/// Whether the current segment (`bytes` long, started at `start_ns`) should be closed and a
/// new one started.
pub fn rotate_due(bytes: u64, start_ns: u64, now_ns: u64, cfg: &HistoryConfig) -> bool {
    bytes >= cfg.segment_bytes || now_ns.saturating_sub(start_ns) >= cfg.segment_ns
}

/// Whether a window was recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Coverage {
    /// The segments cover the whole window: a window without a match was searched.
    Full,
    /// The history lacks part of the window: from where the first gap starts to where it ends.
    Gap {
        /// First uncovered time, ns.
        from_ns: u64,
        /// Where coverage resumes (or the window's end), ns.
        to_ns: u64,
    },
}

/// Whether `segs` (any order) cover `[from_ns, to_ns]`, allowing gaps up to `slack_ns`
/// between consecutive segments (the time a rotation takes).
pub fn coverage(segs: &[Segment], from_ns: u64, to_ns: u64, slack_ns: u64) -> Coverage {
    let mut iv: Vec<(u64, u64)> = segs.iter().map(|s| (s.start_ns, s.end_ns)).collect();
    iv.sort_unstable();
    let mut at = from_ns;
    for (s, e) in iv {
        if at > to_ns {
            break;
        }
        if s > at.saturating_add(slack_ns) {
            return Coverage::Gap {
                from_ns: at,
                to_ns: s.min(to_ns),
            };
        }
        at = at.max(e);
    }
    if at < to_ns {
        return Coverage::Gap { from_ns: at, to_ns };
    }
    Coverage::Full
}

/// The segments in `dir`, oldest first. Other files are ignored.
pub fn list_segments(dir: &Path) -> Result<Vec<Segment>, AgentError> {
    let mut out = Vec::new();
    let rd = std::fs::read_dir(dir).map_err(|e| AgentError::io(dir, e))?;
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(start_ns) = name
            .to_str()
            .and_then(|n| n.strip_prefix("seg-"))
            .and_then(|n| n.strip_suffix(".pcap"))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        let Ok(md) = e.metadata() else { continue };
        let end_ns = md
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(start_ns, |d| d.as_nanos() as u64)
            .max(start_ns);
        out.push(Segment {
            path: e.path(),
            start_ns,
            end_ns,
            bytes: md.len(),
        });
    }
    out.sort_by_key(|s| s.start_ns);
    Ok(out)
}

/// Bounds of the history.
#[derive(Clone, Debug)]
pub struct HistoryConfig {
    /// The directory.
    pub dir: PathBuf,
    /// Most bytes of all segments together.
    pub keep_bytes: u64,
    /// Segments that ended longer ago than this are deleted, ns.
    pub keep_ns: u64,
    /// A segment is closed at this size...
    pub segment_bytes: u64,
    /// ...or this age, ns.
    pub segment_ns: u64,
    /// Bytes kept of each packet.
    pub snaplen: u32,
}

impl HistoryConfig {
    /// Segments of a tenth of the budget (at most 64 MiB, at least 1 MiB) and at most an
    /// hour: deleting the oldest frees at most a tenth of the history.
    pub fn new(dir: PathBuf, keep_bytes: u64, keep_ns: u64, snaplen: u32) -> HistoryConfig {
        HistoryConfig {
            dir,
            keep_bytes,
            keep_ns,
            segment_bytes: (keep_bytes / 10).clamp(1 << 20, 64 << 20),
            segment_ns: 3600 * 1_000_000_000,
            snaplen,
        }
    }
}

/// What the recorder did, for the status line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecorderStats {
    /// Frames written.
    pub frames: u64,
    /// Bytes written (records and headers).
    pub bytes: u64,
    /// Frames that could not be written (no segment open, or a write failed).
    pub frames_lost: u64,
    /// Write, flush or open errors.
    pub write_errors: u64,
    /// Segments deleted by the policy.
    pub deleted: u64,
}

struct Current {
    path: PathBuf,
    start_ns: u64,
    bytes: u64,
    /// Frames written into the buffer since the last successful flush.
    unflushed: u64,
    /// When the last flush succeeded (None: never).
    flushed_ns: Option<u64>,
    w: PcapWriter<BufWriter<File>>,
    /// A second handle on the file, to set its modification time.
    file: File,
}

/// Writes frames into rotating segments; see the [module documentation](self).
pub struct Recorder {
    cfg: HistoryConfig,
    link: LinkType,
    cur: Option<Current>,
    /// Bytes of the closed segments, refreshed from the directory at each rotation.
    stats: RecorderStats,
    last_error: Option<String>,
    /// A write failed: no new segment before the next tick.
    blocked: bool,
}

impl Recorder {
    /// A recorder for frames of `link`; creates the directory (mode 0700: it holds this
    /// host's traffic). Fails when it cannot be made.
    pub fn new(cfg: HistoryConfig, link: LinkType) -> Result<Recorder, AgentError> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(&cfg.dir).map_err(|e| AgentError::io(&cfg.dir, e))?;
        std::fs::set_permissions(&cfg.dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| AgentError::io(&cfg.dir, e))?;
        Ok(Recorder {
            cfg,
            link,
            cur: None,
            stats: RecorderStats::default(),
            last_error: None,
            blocked: false,
        })
    }

    /// The counters.
    pub fn stats(&self) -> RecorderStats {
        self.stats
    }

    /// The last error, once: the caller logs it.
    pub fn take_error(&mut self) -> Option<String> {
        self.last_error.take()
    }

    fn fail(&mut self, what: String) {
        self.stats.write_errors += 1;
        self.last_error = Some(what);
        // The segment is closed: its file ends at the last good write (its mtime). Frames
        // still in its buffer are lost; a new segment is tried at the next tick.
        if let Some(c) = self.cur.take() {
            self.stats.frames -= c.unflushed;
            self.stats.frames_lost += c.unflushed;
            // A failed write may have touched the file: its recorded span ends at the last
            // good flush, and a segment that never had one is removed.
            drop(c.w);
            match c.flushed_ns {
                Some(t) => {
                    let _ = c.file.set_modified(UNIX_EPOCH + Duration::from_nanos(t));
                }
                None => {
                    let _ = std::fs::remove_file(&c.path);
                }
            }
        }
        self.blocked = true;
    }

    fn open(&mut self, now_ns: u64) {
        let path = self.cfg.dir.join(format!("seg-{now_ns}.pcap"));
        let r = File::create(&path).and_then(|f| {
            let file = f.try_clone()?;
            let w = PcapWriter::new(
                BufWriter::with_capacity(1 << 20, f),
                self.link,
                self.cfg.snaplen,
            )?;
            Ok((w, file))
        });
        match r {
            Ok((w, file)) => {
                self.cur = Some(Current {
                    path,
                    start_ns: now_ns,
                    bytes: 24,
                    unflushed: 0,
                    flushed_ns: None,
                    w,
                    file,
                })
            }
            Err(e) => self.fail(format!("{}: {e}", path.display())),
        }
    }

    /// Appends one frame received at `ts_ns`, `orig_len` bytes on the wire (opening a segment
    /// when none is open).
    pub fn write(&mut self, now_ns: u64, ts_ns: u64, orig_len: u32, data: &[u8]) {
        if self.cur.is_none() && !self.blocked {
            self.open(now_ns);
        }
        let Some(c) = self.cur.as_mut() else {
            self.stats.frames_lost += 1;
            return;
        };
        match c.w.write_captured(ts_ns, orig_len, data) {
            Ok(()) => {
                let n = 16 + data.len().min(self.cfg.snaplen as usize) as u64;
                c.bytes += n;
                c.unflushed += 1;
                self.stats.bytes += n;
                self.stats.frames += 1;
            }
            Err(e) => {
                self.stats.frames_lost += 1;
                let p = c.path.display().to_string();
                self.fail(format!("{p}: {e}"));
            }
        }
    }

    /// Flushes, marks the segment as recorded up to `now_ns`, rotates when due and applies
    /// the deletion policy. Call it often (every attribution poll): the coverage ends at the
    /// last tick.
    pub fn tick(&mut self, now_ns: u64) {
        self.blocked = false;
        if self.cur.is_none() {
            self.open(now_ns);
        }
        if let Some(c) = self.cur.as_mut() {
            let r = c.w.flush().and_then(|()| {
                c.file
                    .set_modified(UNIX_EPOCH + Duration::from_nanos(now_ns))
            });
            if r.is_ok() {
                c.unflushed = 0;
                c.flushed_ns = Some(now_ns);
            }
            if let Err(e) = r {
                let p = c.path.display().to_string();
                self.fail(format!("{p}: {e}"));
                return;
            }
            if rotate_due(c.bytes, c.start_ns, now_ns, &self.cfg) {
                self.cur = None;
                self.open(now_ns);
            }
        }
        self.enforce(now_ns);
    }

    fn enforce(&mut self, now_ns: u64) {
        let Ok(segs) = list_segments(&self.cfg.dir) else {
            return;
        };
        let n = deletions(&segs, self.cfg.keep_bytes, self.cfg.keep_ns, now_ns);
        for s in &segs[..n] {
            if self.cur.as_ref().is_some_and(|c| c.path == s.path) {
                continue;
            }
            match std::fs::remove_file(&s.path) {
                Ok(()) => self.stats.deleted += 1,
                Err(e) => self.fail(format!("{}: {e}", s.path.display())),
            }
        }
    }

    /// Flushes and closes the current segment, marking it recorded up to `now_ns`.
    pub fn close(&mut self, now_ns: u64) {
        self.tick(now_ns);
        self.cur = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(start: u64, end: u64, bytes: u64) -> Segment {
        Segment {
            path: PathBuf::from(format!("seg-{start}.pcap")),
            start_ns: start,
            end_ns: end,
            bytes,
        }
    }

    #[test]
    fn oldest_segments_go_first_for_bytes_and_age_but_never_the_current_one() {
        let s = [seg(0, 10, 50), seg(10, 20, 50), seg(20, 30, 50)];
        assert_eq!(deletions(&s, 150, 1000, 30), 0);
        assert_eq!(deletions(&s, 100, 1000, 30), 1);
        assert_eq!(deletions(&s, 60, 1000, 30), 2);
        // The current segment stays even when it alone is over the budget.
        assert_eq!(deletions(&s, 10, 1000, 30), 2);
        // Age: segments that ended before now - keep go, whatever the bytes.
        assert_eq!(deletions(&s, 1 << 40, 15, 30), 1);
        assert_eq!(deletions(&s, 1 << 40, 5, 30), 2);
        assert_eq!(deletions(&[], 0, 0, 30), 0);
    }

    #[test]
    fn rotation_by_size_or_age() {
        let c = HistoryConfig::new(PathBuf::new(), 600_000_000, 86_400_000_000_000, 2048);
        assert_eq!(c.segment_bytes, 60_000_000);
        assert!(!rotate_due(10, 0, 1, &c));
        assert!(rotate_due(60_000_000, 0, 1, &c));
        assert!(rotate_due(10, 0, 3600 * 1_000_000_000, &c));
        let small = HistoryConfig::new(PathBuf::new(), 1000, 1, 64);
        assert_eq!(small.segment_bytes, 1 << 20);
    }

    #[test]
    fn coverage_names_the_first_gap() {
        let s = [seg(10, 20, 1), seg(21, 40, 1), seg(60, 70, 1)];
        assert_eq!(coverage(&s, 12, 35, 2), Coverage::Full);
        assert_eq!(
            coverage(&s, 12, 35, 0),
            Coverage::Gap {
                from_ns: 20,
                to_ns: 21
            }
        );
        assert_eq!(
            coverage(&s, 30, 65, 2),
            Coverage::Gap {
                from_ns: 40,
                to_ns: 60
            }
        );
        assert_eq!(
            coverage(&s, 5, 15, 2),
            Coverage::Gap {
                from_ns: 5,
                to_ns: 10
            }
        );
        assert_eq!(
            coverage(&s, 65, 80, 2),
            Coverage::Gap {
                from_ns: 70,
                to_ns: 80
            }
        );
        assert_eq!(
            coverage(&[], 1, 2, 0),
            Coverage::Gap {
                from_ns: 1,
                to_ns: 2
            }
        );
    }

    #[test]
    fn the_recorder_writes_rotates_deletes_and_reports_its_span() {
        let d = tempfile::tempdir().unwrap();
        let mut cfg = HistoryConfig::new(d.path().to_path_buf(), 3000, 1 << 50, 2048);
        cfg.segment_bytes = 1000;
        let mut r = Recorder::new(cfg, LinkType::Raw).unwrap();
        let t0 = 1_700_000_000_000_000_000u64;
        for i in 0..40u64 {
            r.write(t0 + i, t0 + i, 100, &[0x45; 100]);
            r.tick(t0 + i * 1000);
        }
        r.close(t0 + 50_000);
        let segs = list_segments(d.path()).unwrap();
        let total: u64 = segs.iter().map(|s| s.bytes).sum();
        assert!(total <= 3000 + 1000, "{total}");
        assert!(r.stats().deleted > 0);
        assert_eq!(r.stats().frames, 40);
        assert_eq!(segs.last().unwrap().end_ns, t0 + 50_000);
        assert_eq!(r.stats().write_errors, 0);
    }

    /// A tmpfs of 1 MiB mounted on a fresh directory, unmounted on drop (root).
    struct SmallDisk(tempfile::TempDir);

    impl Drop for SmallDisk {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg(self.0.path())
                .status();
        }
    }

    #[test]
    fn a_full_disk_is_counted_leaves_a_gap_and_recording_resumes() {
        let d = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(d.path())
            .status()
            .expect("mount");
        assert!(ok.success(), "mounting a tmpfs needs root");
        let disk = SmallDisk(d);
        let mut cfg = HistoryConfig::new(disk.0.path().to_path_buf(), 100 << 20, 1 << 50, 2048);
        cfg.segment_bytes = 64 << 20;
        let mut r = Recorder::new(cfg, LinkType::Raw).unwrap();
        let t0 = 1_700_000_000_000_000_000u64;
        let ms = 1_000_000u64;
        // 3 MiB into a 1 MiB disk.
        for i in 0..3000u64 {
            r.write(t0 + i * ms, t0 + i * ms, 1000, &[0x45; 1000]);
            if i % 100 == 99 {
                r.tick(t0 + i * ms);
            }
        }
        r.tick(t0 + 3000 * ms);
        let st = r.stats();
        assert!(st.write_errors > 0, "{st:?}");
        assert!(st.frames_lost > 0, "{st:?}");
        // Frames buffered when a flush failed count as lost, not written.
        assert_eq!(st.frames + st.frames_lost, 3000, "{st:?}");
        assert!(st.frames * 1016 < 1 << 20, "{st:?}");
        let e = r.take_error().unwrap();
        assert!(e.contains("No space left"), "{e}");
        // The segment that filled up ends where its last good write was, well before the
        // frames that were lost: the window after it is a gap.
        let segs = list_segments(disk.0.path()).unwrap();
        assert!(segs[0].end_ns < t0 + 2000 * ms, "{segs:?}");
        assert!(matches!(
            coverage(&segs, t0, t0 + 3000 * ms, 0),
            Coverage::Gap { .. }
        ));
        // Failed segments that never held a good flush are removed, not left as empty files.
        assert_eq!(segs.len(), 1, "{segs:?}");
        // Space freed: recording resumes in a new segment at the next tick.
        for s in &segs {
            std::fs::remove_file(&s.path).unwrap();
        }
        r.tick(t0 + 3999 * ms);
        let before = r.stats().frames;
        r.write(t0 + 4000 * ms, t0 + 4000 * ms, 100, &[0x45; 100]);
        r.close(t0 + 4001 * ms);
        assert_eq!(r.stats().frames, before + 1);
        assert_eq!(list_segments(disk.0.path()).unwrap().len(), 1);
    }
}
