//! A raw AF_PACKET sender with rate control, for labs and the live-capture benchmark.
//!
//! Frames are written whole (link-layer header included) to one interface. [`RawSender::blast`]
//! batches up to [`BURST`] frames per `sendmmsg(2)` call and paces the bursts against the
//! monotonic clock, so it can offer well over a million frames per second through a veth pair
//! while a requested rate is still met on average and never exceeded by more than one burst.
//!
//! The socket is opened with protocol 0, so it never receives (no receive queue fills up
//! behind a sender), and with `PACKET_QDISC_BYPASS`, which hands frames straight to the driver.
//! Bypassing the queueing layer also skips the packet taps of the *sending* interface: a
//! capture on the sender's own interface does not see these frames, a capture on the peer (the
//! other veth end, the mirror port) does.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::CaptureError;
use crate::live::{bind_ll, ifindex, last_err, packet_socket, set_opt};

/// Frames per `sendmmsg` call, and the largest burst the pacing lets out at once: large enough
/// to amortise the system call, small enough (64 minimum-size frames are ~5 µs at 10 Gb/s) to
/// keep a paced stream smooth.
pub const BURST: usize = 64;

/// What a [`RawSender::blast`] achieved.
#[derive(Clone, Copy, Debug)]
pub struct BlastReport {
    /// Frames the kernel accepted.
    pub sent: u64,
    /// Wall time of the blast (monotonic clock).
    pub elapsed: Duration,
    /// `sent / elapsed`.
    pub achieved_pps: f64,
    /// Send calls that failed transiently (`ENOBUFS`, `EAGAIN`, `EINTR`) or were cut short;
    /// their frames were sent again, so `sent` is unaffected.
    pub errors: u64,
}

/// A raw frame sender bound to one interface.
#[derive(Debug)]
pub struct RawSender {
    iface: String,
    fd: OwnedFd,
}

impl RawSender {
    /// Opens a sender on `iface` (in the calling thread's network namespace). Needs
    /// `CAP_NET_RAW`. `PACKET_QDISC_BYPASS` is requested; a kernel without it is not an error.
    pub fn open(iface: &str) -> Result<Self, CaptureError> {
        let idx = ifindex(iface)?;
        let fd = packet_socket(iface, 0)?;
        bind_ll(&fd, iface, idx, 0)?;
        let one: libc::c_int = 1;
        // Optional speed-up (Linux 3.14+); the frames go out either way.
        let _ = set_opt(&fd, libc::SOL_PACKET, libc::PACKET_QDISC_BYPASS, &one);
        Ok(Self {
            iface: iface.to_string(),
            fd,
        })
    }

    /// The interface frames are sent on.
    pub fn iface(&self) -> &str {
        &self.iface
    }

    /// Sends one whole frame (retrying only on `EINTR`).
    pub fn send(&mut self, frame: &[u8]) -> Result<(), CaptureError> {
        loop {
            // SAFETY: `frame` is valid for reads of its length.
            let n =
                unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
            if n >= 0 {
                if n as usize != frame.len() {
                    return Err(CaptureError::Live {
                        iface: self.iface.clone(),
                        op: "send",
                        source: io::Error::other(format!(
                            "short write: {n} of {} bytes",
                            frame.len()
                        )),
                    });
                }
                return Ok(());
            }
            if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                return Err(last_err(&self.iface, "send"));
            }
        }
    }

    /// Sends `frames` cyclically `count` times in total at `rate_pps` (0 = as fast as
    /// possible), batching with sendmmsg so it can offer >1 Mpps; pacing by the monotonic
    /// clock with bursts of at most [`BURST`] frames; returns what was sent and the achieved
    /// rate.
    ///
    /// Transient failures (`ENOBUFS` when the device or its peer's backlog is full) are
    /// counted in [`BlastReport::errors`] and the same frames are sent again, so exactly
    /// `count` frames go out in order unless a hard error (interface down, frame too large)
    /// ends the blast.
    pub fn blast(
        &mut self,
        frames: &[Vec<u8>],
        count: u64,
        rate_pps: u64,
    ) -> Result<BlastReport, CaptureError> {
        if frames.is_empty() && count > 0 {
            return Err(CaptureError::Config("blast: no frames to send".into()));
        }
        // SAFETY: iovec and mmsghdr are plain data; all-zero is a valid value.
        let mut iovs: [libc::iovec; BURST] = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut msgs: [libc::mmsghdr; BURST] = unsafe { std::mem::zeroed() };
        let start = Instant::now();
        let mut sent = 0u64;
        let mut errors = 0u64;
        let pacer = Pacer::new(rate_pps);
        while sent < count {
            let want = (count - sent).min(BURST as u64) as usize;
            let burst = match pacer.allowed(start.elapsed(), sent, want) {
                Ok(n) => n,
                Err(wait) => {
                    pause(wait);
                    continue;
                }
            };
            for i in 0..burst {
                let f = &frames[((sent + i as u64) % frames.len() as u64) as usize];
                iovs[i].iov_base = f.as_ptr() as *mut libc::c_void;
                iovs[i].iov_len = f.len();
                msgs[i].msg_hdr.msg_iov = &raw mut iovs[i];
                msgs[i].msg_hdr.msg_iovlen = 1;
            }
            // SAFETY: the first `burst` headers point at live iovecs, which point at frames
            // borrowed for this call; the kernel only reads them.
            let n =
                unsafe { libc::sendmmsg(self.fd.as_raw_fd(), msgs.as_mut_ptr(), burst as _, 0) };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::ENOBUFS | libc::EAGAIN | libc::EINTR) => {
                        errors += 1;
                        // Let the receive side drain the backlog before trying again.
                        std::thread::yield_now();
                        continue;
                    }
                    _ => {
                        return Err(CaptureError::Live {
                            iface: self.iface.clone(),
                            op: "sendmmsg",
                            source: e,
                        });
                    }
                }
            }
            let n = n as usize;
            if n < burst {
                // sendmmsg stops at the first failing frame and drops its error.
                errors += 1;
            }
            sent += n as u64;
        }
        let elapsed = start.elapsed();
        Ok(BlastReport {
            sent,
            elapsed,
            achieved_pps: sent as f64 / elapsed.as_secs_f64().max(1e-9),
            errors,
        })
    }
}

impl AsRawFd for RawSender {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}

/// The pacing rule, kept free of clocks so it can be tested: frame `k` (0-based) is due at
/// `k / rate` seconds after the start.
#[derive(Debug)]
struct Pacer {
    rate_pps: u64,
}

impl Pacer {
    fn new(rate_pps: u64) -> Self {
        Self { rate_pps }
    }

    /// How many of `want` frames may go now, `elapsed` after the start with `sent` already
    /// out; or, if none is due yet, how long until the next one is.
    fn allowed(&self, elapsed: Duration, sent: u64, want: usize) -> Result<usize, Duration> {
        if self.rate_pps == 0 {
            return Ok(want);
        }
        let rate = u128::from(self.rate_pps);
        // Frames due by now: those with k / rate <= elapsed, i.e. floor(elapsed * rate) + 1.
        let due = (elapsed.as_nanos() * rate / 1_000_000_000 + 1).min(u64::MAX as u128) as u64;
        if due > sent {
            return Ok(((due - sent).min(want as u64)) as usize);
        }
        let next_at_ns = u128::from(sent) * 1_000_000_000 / rate;
        let wait_ns = next_at_ns.saturating_sub(elapsed.as_nanos()).max(1);
        Err(Duration::from_nanos(wait_ns.min(u64::MAX as u128) as u64))
    }
}

/// Waits `d`: sleeps when the wait is long enough for the scheduler to honour it (timer slack
/// is ~50 µs), otherwise yields, so high paced rates are not rounded down to the tick.
fn pause(d: Duration) {
    if d >= Duration::from_micros(200) {
        std::thread::sleep(d - Duration::from_micros(100));
    } else {
        std::thread::yield_now();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{BURST, Pacer, RawSender};
    use crate::CaptureError;

    #[test]
    fn unpaced_sends_whole_bursts() {
        let p = Pacer::new(0);
        assert_eq!(p.allowed(Duration::ZERO, 0, BURST), Ok(BURST));
    }

    #[test]
    fn paced_releases_frames_on_schedule() {
        let p = Pacer::new(1000); // one frame per millisecond
        assert_eq!(p.allowed(Duration::ZERO, 0, 64), Ok(1));
        assert_eq!(
            p.allowed(Duration::from_micros(10), 1, 64),
            Err(Duration::from_micros(990))
        );
        assert_eq!(p.allowed(Duration::from_millis(5), 1, 64), Ok(5));
        // Far behind schedule: at most one burst at once.
        assert_eq!(p.allowed(Duration::from_secs(10), 1, 64), Ok(64));
    }

    #[test]
    fn average_rate_is_met() {
        // Simulate a sender that sends whatever is allowed every 100 µs for one second.
        let p = Pacer::new(250_000);
        let mut sent = 0u64;
        for step in 0..=10_000u64 {
            let t = Duration::from_micros(step * 100);
            if let Ok(n) = p.allowed(t, sent, BURST) {
                sent += n as u64;
            }
        }
        assert!((250_000..=250_001).contains(&sent), "{sent}");
    }

    #[test]
    fn missing_interface_is_typed() {
        assert!(matches!(
            RawSender::open("ashiato-nope0"),
            Err(CaptureError::NoSuchInterface(_))
        ));
    }
}
