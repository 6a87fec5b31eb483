//! [`FrameSource`]: the one interface every packet source offers, so that every consumer (the
//! probe's digest pipeline, the DarkFlow shells) runs one loop whatever the input.
//!
//! # Shape
//! A consumer calls [`FrameSource::poll`] in a loop. Each call hands a *batch* of frames to a
//! callback, borrowed from the source's own buffer, and says what happened:
//!
//! * [`Poll::Frames`]`(n)`: `n > 0` frames were delivered;
//! * [`Poll::Idle`]: a live source had nothing within the timeout (a chance to advance a clock
//!   or check a stop flag);
//! * [`Poll::End`]: a finite input (capture files) was read to its end; every later call says
//!   `End` again.
//!
//! An error ends the input. Frames delivered by the failing call before the error are valid
//! and were handed over; a consumer should finish its work on them and then report the error
//! (a truncated capture still yields every complete packet before the damage).
//!
//! # Hot path
//! The callback is a generic parameter, not a `dyn FnMut`, and consumers take `S:
//! FrameSource`: the per-frame work is then inlined into the source's batch loop and the only
//! indirect cost is one call per batch. A live ring delivers everything retired in one pass
//! over the ring per call; a capture file delivers up to [`FILE_BATCH`] frames per call. The
//! trait is therefore not object safe; a choice made at start-up is an enum of sources, each
//! arm calling the same generic loop.
//!
//! # Implementations
//! [`MultiFileSource`] (several files merged by time), [`LiveSource`] (a TPACKET_V3 ring),
//! [`MemorySource`] (frames held in memory, for tests and benchmarks) and the debugging
//! wrapper [`FaultInjector`](crate::fault::FaultInjector), which wraps any of them.

use std::time::Duration;

use ashiato_wire::{Frame, LinkType};

use crate::CaptureError;
use crate::file::MultiFileSource;
use crate::live::{KernelStats, LiveSource};

/// Frames a capture file hands out per [`FrameSource::poll`]: enough that the per-call cost
/// vanishes, few enough that a stop flag checked between calls is seen within microseconds.
pub const FILE_BATCH: usize = 1024;

/// What one [`FrameSource::poll`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Poll {
    /// This many frames (at least one) were delivered.
    Frames(usize),
    /// Nothing arrived within the timeout (live sources only).
    Idle,
    /// The input is finished (finite sources only); every later call returns `End` again.
    End,
}

/// Running totals of a source, since it was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceStats {
    /// Frames delivered to the consumer.
    pub frames: u64,
    /// Bytes of capture file consumed (0 for live sources).
    pub bytes_read: u64,
    /// Total length of the capture files (0 for live sources): with `bytes_read`, a progress
    /// figure.
    pub bytes_total: u64,
    /// The kernel's counters of a live socket (`None` for files): packets seen and dropped.
    pub kernel: Option<KernelStats>,
}

/// A source of captured frames; see the [module documentation](self).
pub trait FrameSource {
    /// Delivers the next batch of frames to `on_frame`, waiting up to `timeout` when a live
    /// source has nothing ready (files never wait).
    fn poll<F: FnMut(Frame<'_>)>(
        &mut self,
        timeout: Duration,
        on_frame: F,
    ) -> Result<Poll, CaptureError>;

    /// Totals since the source was opened. Reading a live socket's kernel counters is a
    /// system call, which can fail.
    fn stats(&mut self) -> Result<SourceStats, CaptureError>;

    /// Whether the input ends by itself ([`Poll::End`]): capture files do, live rings do not.
    fn is_finite(&self) -> bool;
}

impl FrameSource for MultiFileSource {
    #[inline]
    fn poll<F: FnMut(Frame<'_>)>(
        &mut self,
        _timeout: Duration,
        mut on_frame: F,
    ) -> Result<Poll, CaptureError> {
        let mut n = 0;
        while n < FILE_BATCH {
            match self.next_frame()? {
                Some((_, frame)) => {
                    on_frame(frame);
                    n += 1;
                }
                None => break,
            }
        }
        Ok(if n == 0 { Poll::End } else { Poll::Frames(n) })
    }

    fn stats(&mut self) -> Result<SourceStats, CaptureError> {
        Ok(SourceStats {
            frames: self.delivered(),
            bytes_read: self.bytes_read(),
            bytes_total: self.file_len(),
            kernel: None,
        })
    }

    fn is_finite(&self) -> bool {
        true
    }
}

impl FrameSource for LiveSource {
    #[inline]
    fn poll<F: FnMut(Frame<'_>)>(
        &mut self,
        timeout: Duration,
        on_frame: F,
    ) -> Result<Poll, CaptureError> {
        Ok(match self.poll_frames(timeout, on_frame)? {
            0 => Poll::Idle,
            n => Poll::Frames(n),
        })
    }

    fn stats(&mut self) -> Result<SourceStats, CaptureError> {
        let kernel = self.kernel_stats()?;
        Ok(SourceStats {
            frames: self.delivered(),
            kernel: Some(kernel),
            ..SourceStats::default()
        })
    }

    fn is_finite(&self) -> bool {
        false
    }
}

/// One frame held by a [`MemorySource`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedFrame {
    /// Timestamp, ns since the Unix epoch.
    pub ts_nanos: u64,
    /// Link type of `data`.
    pub link: LinkType,
    /// Length on the wire.
    pub orig_len: u32,
    /// The captured bytes.
    pub data: Vec<u8>,
}

impl OwnedFrame {
    /// A frame captured whole.
    pub fn new(ts_nanos: u64, link: LinkType, data: Vec<u8>) -> Self {
        Self {
            ts_nanos,
            link,
            orig_len: data.len() as u32,
            data,
        }
    }

    /// The borrowed view the consumers take.
    pub fn as_frame(&self) -> Frame<'_> {
        Frame {
            ts_nanos: self.ts_nanos,
            link: self.link,
            orig_len: self.orig_len,
            data: &self.data,
        }
    }
}

/// Frames held in memory, delivered in batches of a chosen size: a finite source for tests
/// and benchmarks (with [`MemorySource::idle_every`], also a stand-in for a quiet live link).
#[derive(Clone, Debug)]
pub struct MemorySource {
    frames: Vec<OwnedFrame>,
    next: usize,
    batch: usize,
    /// Return [`Poll::Idle`] after every this many batches (0: never).
    idle_every: usize,
    polls: usize,
}

impl MemorySource {
    /// A source of `frames`, [`FILE_BATCH`] per poll.
    pub fn new(frames: Vec<OwnedFrame>) -> Self {
        Self {
            frames,
            next: 0,
            batch: FILE_BATCH,
            idle_every: 0,
            polls: 0,
        }
    }

    /// Sets the frames per poll (at least 1).
    pub fn batch(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// Answers [`Poll::Idle`] once after every `n` batches, as a quiet live link would.
    pub fn idle_every(mut self, n: usize) -> Self {
        self.idle_every = n;
        self
    }
}

impl FrameSource for MemorySource {
    fn poll<F: FnMut(Frame<'_>)>(
        &mut self,
        _timeout: Duration,
        mut on_frame: F,
    ) -> Result<Poll, CaptureError> {
        if self.next == self.frames.len() {
            return Ok(Poll::End);
        }
        self.polls += 1;
        if self.idle_every > 0 && self.polls.is_multiple_of(self.idle_every + 1) {
            return Ok(Poll::Idle);
        }
        let end = (self.next + self.batch).min(self.frames.len());
        let n = end - self.next;
        for f in &self.frames[self.next..end] {
            on_frame(f.as_frame());
        }
        self.next = end;
        Ok(if n == 0 { Poll::End } else { Poll::Frames(n) })
    }

    fn stats(&mut self) -> Result<SourceStats, CaptureError> {
        Ok(SourceStats {
            frames: self.next as u64,
            ..SourceStats::default()
        })
    }

    fn is_finite(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::time::Duration;

    use ashiato_wire::LinkType;
    use ashiato_wire::capfile::PcapWriter;

    use super::{FILE_BATCH, FrameSource, MemorySource, OwnedFrame, Poll};
    use crate::file::MultiFileSource;

    fn pcap(ts: impl Iterator<Item = u64>) -> tempfile::NamedTempFile {
        let mut w = PcapWriter::new(Vec::new(), LinkType::Raw, 65535).unwrap();
        for t in ts {
            w.write(t, &t.to_be_bytes()).unwrap();
        }
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&w.into_inner()).unwrap();
        f
    }

    #[test]
    fn files_come_in_batches_then_end_for_good() {
        let total = FILE_BATCH as u64 * 2 + 3;
        let a = pcap((0..total).filter(|t| t % 2 == 0));
        let b = pcap((0..total).filter(|t| t % 2 == 1));
        let mut src =
            MultiFileSource::open(&[a.path().to_path_buf(), b.path().to_path_buf()]).unwrap();
        assert!(src.is_finite());
        let (mut seen, mut polls) = (Vec::new(), Vec::new());
        loop {
            let p = src.poll(Duration::ZERO, |f| seen.push(f.ts_nanos)).unwrap();
            polls.push(p);
            if p == Poll::End {
                break;
            }
        }
        assert_eq!(
            polls,
            [
                Poll::Frames(FILE_BATCH),
                Poll::Frames(FILE_BATCH),
                Poll::Frames(3),
                Poll::End
            ]
        );
        assert_eq!(seen, (0..total).collect::<Vec<_>>());
        assert_eq!(src.poll(Duration::ZERO, |_| panic!()).unwrap(), Poll::End);
        let st = src.stats().unwrap();
        assert_eq!((st.frames, st.bytes_read), (total, st.bytes_total));
        assert!(st.kernel.is_none());
    }

    #[test]
    fn memory_source_batches_and_idles() {
        let frames = (0..5u64)
            .map(|t| OwnedFrame::new(t, LinkType::Raw, vec![t as u8]))
            .collect();
        let mut src = MemorySource::new(frames).batch(2).idle_every(2);
        let mut got = Vec::new();
        let polls: Vec<Poll> = (0..6)
            .map(|_| src.poll(Duration::ZERO, |f| got.push(f.data[0])).unwrap())
            .collect();
        use Poll::{End, Frames, Idle};
        assert_eq!(polls, [Frames(2), Frames(2), Idle, Frames(1), End, End]);
        assert_eq!(got, [0, 1, 2, 3, 4]);
        assert_eq!(src.stats().unwrap().frames, 5);
    }
}
