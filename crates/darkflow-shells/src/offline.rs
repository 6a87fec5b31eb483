//! Offline shell: capture files in, detector events out, driven by packet time.
//!
//! Several files are merged in timestamp order; [`run_source`] takes any finite
//! [`FrameSource`] (files, frames in memory, a fault injector around either). The detector's clock is the packet clock, so
//! a capture replays to the same events every time. A damaged file (truncated record, bad
//! block) stops the reading with the file and byte offset, but what was read before is still
//! decided and reported: [`run`] returns the error *after* finishing the detector. A file
//! that cannot be opened or is not a capture at all is found by [`open`] before anything is
//! read, so a caller can refuse it before printing anything.

use std::path::PathBuf;

use std::time::Duration;

use ashiato_capture::file::MultiFileSource;
use ashiato_capture::{CaptureError, FrameSource, Poll};
use ashiato_darkflow::detector::{Detector, Event, Segment};
use ashiato_darkflow::flow::Tuple;
use ashiato_wire::packet::{self, Fast, ParseStats, TcpHead};
use serde::Serialize;

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

/// [`run`] over files already opened with [`open`], or any other finite source: every frame
/// goes to the detector at its own timestamp; `progress` gets (bytes read, total bytes) every
/// [`PROGRESS_EVERY`] frames or so and at the end.
pub fn run_source<S: FrameSource>(
    mut src: S,
    det: &mut Detector,
    out: &mut impl FnMut(Event),
    mut progress: impl FnMut(u64, u64),
) -> (ReadStats, Result<(), CaptureError>) {
    let mut st = ReadStats::default();
    let mut next_progress = PROGRESS_EVERY;
    let result = loop {
        let polled = src.poll(Duration::ZERO, |frame| {
            st.frames += 1;
            st.last_ts = st.last_ts.max(frame.ts_nanos);
            // Most frames are plain TCP over untagged Ethernet: decode just what the detector
            // needs, and leave everything unusual (and every error) to the full parser.
            match packet::tcp_fast(frame.link, frame.data) {
                Fast::V4(h) => det.segment_v4(segment(frame.ts_nanos, h), out),
                Fast::V6(h) => det.segment_v6(segment(frame.ts_nanos, h), out),
                Fast::NotTcp => {}
                Fast::Slow => match packet::parse(frame.link, frame.data) {
                    Ok(p) => det.packet(frame.ts_nanos, &p, out),
                    Err(e) => {
                        st.malformed += 1;
                        st.parse.record(&e);
                    }
                },
            }
        });
        match polled {
            Ok(Poll::End) => break Ok(()),
            Ok(Poll::Frames(_) | Poll::Idle) => {}
            Err(e) => break Err(e),
        }
        if st.frames >= next_progress {
            next_progress = st.frames + PROGRESS_EVERY;
            if let Ok(s) = src.stats() {
                progress(s.bytes_read, s.bytes_total);
            }
        }
    };
    let (bytes, total) = src
        .stats()
        .map_or((0, 0), |s| (s.bytes_read, s.bytes_total));
    st.bytes = bytes;
    progress(bytes, total);
    det.finish(st.last_ts, out);
    (st, result)
}

/// The detector's form of a segment from the fast path.
#[inline]
fn segment<A>(ts: u64, h: TcpHead<A>) -> Segment<A> {
    Segment {
        ts,
        tuple: Tuple {
            src: h.src,
            dst: h.dst,
            sport: h.src_port,
            dport: h.dst_port,
        },
        flags: h.flags,
    }
}

#[cfg(test)]
mod tests {
    use ashiato_capture::fault::{FaultConfig, FaultInjector};
    use ashiato_capture::{MemorySource, OwnedFrame};
    use ashiato_darkflow::synth::{SynthConfig, generate};
    use ashiato_darkflow::{Config, Detector, Event};
    use ashiato_wire::LinkType;

    use super::run_source;

    fn synth(flows: u64) -> Vec<OwnedFrame> {
        let mut v = Vec::new();
        let cfg = SynthConfig {
            flows,
            seed: 3,
            ..SynthConfig::default()
        };
        generate::<()>(&cfg, |ts, f| {
            v.push(OwnedFrame::new(ts, LinkType::Ethernet, f.to_vec()));
            Ok(())
        })
        .unwrap();
        v
    }

    fn darkflows<S: ashiato_capture::FrameSource>(src: S) -> (u64, Option<String>) {
        let mut det = Detector::new(Config::default());
        let mut dark = 0;
        let (_, r) = run_source(
            src,
            &mut det,
            &mut |e| dark += u64::from(matches!(e, Event::Dark { .. })),
            |_, _| {},
        );
        (dark, r.err().map(|e| e.to_string()))
    }

    #[test]
    fn batch_size_does_not_change_the_answer() {
        let frames = synth(500);
        let whole = darkflows(MemorySource::new(frames.clone()));
        assert!(whole.0 > 0 && whole.1.is_none());
        assert_eq!(darkflows(MemorySource::new(frames).batch(7)), whole);
    }

    #[test]
    fn a_failing_source_still_decides_what_was_read() {
        let frames = synth(500);
        let n = frames.len() as u64;
        let src = FaultInjector::new(
            MemorySource::new(frames).batch(64),
            FaultConfig {
                fail_after: Some(n / 2),
                ..FaultConfig::default()
            },
        );
        let mut det = Detector::new(Config::default());
        let (st, r) = run_source(src, &mut det, &mut |_| {}, |_, _| {});
        assert_eq!(st.frames, n / 2);
        assert!(r.unwrap_err().to_string().contains("injected"));
        // Finished: nothing is left pending.
        assert_eq!(det.counters().pending, 0);
    }
}
