//! Offline shell: capture files in, detector events out, driven by packet time.
//!
//! Several files are merged in timestamp order. The detector's clock is the packet clock, so
//! a capture replays to the same events every time. A damaged file (truncated record, bad
//! block) stops the reading with the file and byte offset, but what was read before is still
//! decided and reported: [`run`] returns the error *after* finishing the detector. A file
//! that cannot be opened or is not a capture at all is found by [`open`] before anything is
//! read, so a caller can refuse it before printing anything.

use std::path::PathBuf;

use ashiato_capture::CaptureError;
use ashiato_capture::file::MultiFileSource;
use ashiato_wire::packet::{self, ParseStats};
use serde::Serialize;

use crate::detector::{Detector, Event};

/// What reading the files found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ReadStats {
    /// Frames read.
    pub frames: u64,
    /// Bytes of capture file consumed.
    pub bytes: u64,
    /// Frames that did not parse down to an IP header (skipped, counted by reason in `parse`).
    pub malformed: u64,
    /// Per-reason parse counters.
    #[serde(skip)]
    pub parse: ParseStats,
    /// Timestamp of the last frame (ns).
    pub last_ts: u64,
}

/// Frames between two calls of the progress callback.
pub const PROGRESS_EVERY: u64 = 1 << 16;

/// Opens every file of `paths` and checks that it starts as a capture (header and first
/// record); the error names the file.
pub fn open(paths: &[PathBuf]) -> Result<MultiFileSource, CaptureError> {
    MultiFileSource::open(paths)
}

/// Replays `paths` through `det`, then finishes it at the last frame's time. `progress` gets
/// (bytes read, total bytes) now and then. On a read or format error the detector is still
/// finished with what was read, then the error is returned with the stats.
pub fn run(
    paths: &[PathBuf],
    det: &mut Detector,
    out: &mut impl FnMut(Event),
    progress: impl FnMut(u64, u64),
) -> (ReadStats, Result<(), CaptureError>) {
    match open(paths) {
        Ok(src) => run_source(src, det, out, progress),
        Err(e) => (ReadStats::default(), Err(e)),
    }
}

/// [`run`] over files already opened with [`open`].
pub fn run_source(
    mut src: MultiFileSource,
    det: &mut Detector,
    out: &mut impl FnMut(Event),
    mut progress: impl FnMut(u64, u64),
) -> (ReadStats, Result<(), CaptureError>) {
    let mut st = ReadStats::default();
    let total = src.file_len();
    let result = loop {
        match src.next_frame() {
            Ok(Some((_, frame))) => {
                st.frames += 1;
                st.last_ts = st.last_ts.max(frame.ts_nanos);
                match packet::parse(frame.link, frame.data) {
                    Ok(p) => det.packet(frame.ts_nanos, &p, out),
                    Err(e) => {
                        st.malformed += 1;
                        st.parse.record(&e);
                    }
                }
                if st.frames % PROGRESS_EVERY == 0 {
                    progress(src.bytes_read(), total);
                }
            }
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    st.bytes = src.bytes_read();
    progress(st.bytes, total);
    det.finish(st.last_ts, out);
    (st, result)
}
