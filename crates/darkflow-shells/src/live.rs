//! Live shell: passive detection on a mirror port, driven by the clock.
//!
//! The detector runs on the capture thread, driven by frame timestamps and, between frames,
//! by the clock minus [`CLOCK_LAG_NS`]: frames wait in the ring for up to its block timeout
//! (10 ms), so deciding a deadline by the raw clock could miss an answer still in the ring.
//!
//! [`Live::step`] is one round: wait for frames (at most until the detector's next deadline),
//! feed them, advance the detector by the clock. The caller loops over it and does the rest
//! between rounds (stop flag, metrics, summaries); the clock is a parameter, so a test runs
//! the same rounds over frames in memory in virtual time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ashiato_capture::{CaptureError, FrameSource, Poll};
use ashiato_darkflow::{Detector, Event};
use ashiato_wire::packet;

/// How far behind the clock the live detector decides deadlines.
pub const CLOCK_LAG_NS: u64 = 250_000_000;

/// Shortest and longest wait for frames in one round: short enough to decide deadlines on
/// time, long enough not to spin on a quiet link.
const MIN_WAIT_NS: u64 = 1_000_000;
const MAX_WAIT_NS: u64 = 100_000_000;

/// The wall clock in ns since the epoch.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// What the live shell counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LiveStats {
    /// Frames read.
    pub frames: u64,
    /// Frames that did not parse down to an IP header.
    pub malformed: u64,
    /// Packets the kernel handed to the capture socket, dropped ones included (totals).
    pub kernel_packets: u64,
    /// Packets the kernel dropped because the ring was full (totals).
    pub kernel_drops: u64,
}

/// A live source, its clock and its counts; see the [module documentation](self).
#[derive(Debug)]
pub struct Live<S, C> {
    src: S,
    clock: C,
    stats: LiveStats,
}

impl<S: FrameSource, C: FnMut() -> u64> Live<S, C> {
    /// The shell around `src`, reading time from `clock` (ns since the epoch; [`now_ns`] in
    /// production).
    pub fn new(src: S, clock: C) -> Self {
        Self {
            src,
            clock,
            stats: LiveStats::default(),
        }
    }

    /// Counts so far.
    pub fn stats(&self) -> LiveStats {
        self.stats
    }

    /// The clock.
    pub fn now(&mut self) -> u64 {
        (self.clock)()
    }

    /// One round: waits for frames at most until `det`'s next deadline (plus the lag, within
    /// 1–100 ms), feeds them at their own timestamps, then advances `det` to the clock minus
    /// [`CLOCK_LAG_NS`] and refreshes the kernel's counters. Returns what the poll said.
    pub fn step(
        &mut self,
        det: &mut Detector,
        on_event: &mut impl FnMut(Event),
    ) -> Result<Poll, CaptureError> {
        let now = (self.clock)();
        let wait = det
            .next_deadline()
            .map(|d| d.saturating_add(CLOCK_LAG_NS).saturating_sub(now))
            .unwrap_or(u64::MAX)
            .clamp(MIN_WAIT_NS, MAX_WAIT_NS);
        let st = &mut self.stats;
        let polled = self.src.poll(Duration::from_nanos(wait), |f| {
            st.frames += 1;
            match packet::parse(f.link, f.data) {
                Ok(p) => det.packet(f.ts_nanos, &p, on_event),
                Err(_) => st.malformed += 1,
            }
        })?;
        det.advance((self.clock)().saturating_sub(CLOCK_LAG_NS), on_event);
        // The source keeps totals since it was opened: take them, do not add them up.
        if let Some(k) = self.src.stats()?.kernel {
            self.stats.kernel_packets = k.packets;
            self.stats.kernel_drops = k.drops;
        }
        Ok(polled)
    }

    /// Finishes `det` at the clock: every pending SYN is decided, every DarkFlow closed.
    pub fn finish(&mut self, det: &mut Detector, on_event: &mut impl FnMut(Event)) {
        det.finish((self.clock)(), on_event);
    }
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};

    use ashiato_capture::{MemorySource, OwnedFrame, Poll};
    use ashiato_darkflow::detector::NS;
    use ashiato_darkflow::{Config, Detector, Event};
    use ashiato_wire::LinkType;
    use ashiato_wire::build;
    use ashiato_wire::packet::TcpFlags;

    use super::{CLOCK_LAG_NS, Live};

    const T0: u64 = 1_700_000_000 * NS;

    fn syn(sport: u16) -> Vec<u8> {
        build::ipv4_tcp_frame(
            [10, 0, 0, 1].into(),
            [192, 0, 2, 1].into(),
            sport,
            80,
            1,
            0,
            TcpFlags::SYN,
            1,
            &[],
        )
    }

    #[test]
    fn deadlines_are_decided_by_the_clock_behind_the_lag() {
        let frames = vec![
            OwnedFrame::new(T0, LinkType::Ethernet, syn(1)),
            OwnedFrame::new(T0, LinkType::Ethernet, b"junk".to_vec()),
        ];
        let src = MemorySource::new(frames);
        let now = Cell::new(T0);
        let mut live = Live::new(src, || now.get());
        let mut det = Detector::new(Config::default());
        let dark = RefCell::new(Vec::new());
        let mut on = |e: Event| {
            if let Event::Dark { ts, .. } = e {
                dark.borrow_mut().push(ts)
            }
        };
        assert_eq!(live.step(&mut det, &mut on).unwrap(), Poll::Frames(2));
        assert_eq!(live.stats().frames, 2);
        assert_eq!(live.stats().malformed, 1);
        // T has passed by the clock, but not T plus the lag: not yet dark.
        now.set(T0 + 5 * NS + CLOCK_LAG_NS);
        assert_eq!(live.step(&mut det, &mut on).unwrap(), Poll::End);
        assert!(dark.borrow().is_empty());
        now.set(T0 + 5 * NS + CLOCK_LAG_NS + 1);
        live.step(&mut det, &mut on).unwrap();
        assert_eq!(*dark.borrow(), [T0 + 5 * NS]);
        live.finish(&mut det, &mut |_| {});
        assert_eq!(det.counters().flows, 0);
    }
}
