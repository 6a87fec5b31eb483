//! Rate limits for warning lines: a peer that fails a thousand handshakes a second must not
//! write a thousand log lines a second. Sans-IO: the caller passes the time.

use std::time::{Duration, Instant};

/// At most one line per `interval`; the lines in between are counted, and the next line
/// carries that count.
#[derive(Debug)]
pub struct Throttle {
    interval: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    /// A throttle that lets one line through per `interval`.
    pub fn new(interval: Duration) -> Self {
        Throttle {
            interval,
            last: None,
            suppressed: 0,
        }
    }

    /// An event at `now`: `Some(n)` when a line should be written, `n` being how many events
    /// were suppressed since the previous line; `None` when this one is suppressed. A clock
    /// that goes backwards suppresses until it passes the last line again.
    pub fn admit(&mut self, now: Instant) -> Option<u64> {
        let due = match self.last {
            None => true,
            Some(last) => now
                .checked_duration_since(last)
                .is_some_and(|d| d >= self.interval),
        };
        if due {
            self.last = Some(now);
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed = self.suppressed.saturating_add(1);
            None
        }
    }
}

/// The kinds of warning a hostile peer can provoke at will, each throttled on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Noisy {
    /// A TLS handshake failed (bad certificate, garbage, plaintext on the TLS port, ...).
    HandshakeFailed = 0,
    /// A TLS handshake did not finish in time.
    HandshakeTimeout = 1,
    /// A connection over the per-peer cap was refused.
    PerPeerRefused = 2,
    /// A connection reached its overall deadline.
    ConnectionDeadline = 3,
}

/// One [`Throttle`] per [`Noisy`] kind.
#[derive(Debug)]
pub struct Throttles([Throttle; 4]);

impl Throttles {
    /// One line per kind per `interval`.
    pub fn new(interval: Duration) -> Self {
        Throttles(std::array::from_fn(|_| Throttle::new(interval)))
    }

    /// [`Throttle::admit`] for `kind`.
    pub fn admit(&mut self, kind: Noisy, now: Instant) -> Option<u64> {
        self.0[kind as usize].admit(now)
    }
}

#[cfg(test)]
mod tests {
    use super::{Noisy, Throttle, Throttles};
    use std::time::{Duration, Instant};

    #[test]
    fn one_line_per_interval_with_the_count_of_the_rest() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut t = Throttle::new(Duration::from_secs(1));
        assert_eq!(t.admit(t0), Some(0), "the first line goes through");
        for i in 1..=999 {
            assert_eq!(t.admit(ms(i)), None);
        }
        assert_eq!(
            t.admit(ms(1000)),
            Some(999),
            "then one line saying how many were quiet"
        );
        assert_eq!(t.admit(ms(1500)), None);
        assert_eq!(t.admit(ms(5000)), Some(1));
        assert_eq!(t.admit(ms(6000)), Some(0));
    }

    #[test]
    fn a_clock_going_backwards_does_not_open_the_gate() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut t = Throttle::new(Duration::from_secs(1));
        assert_eq!(t.admit(t0), Some(0));
        assert_eq!(t.admit(t0 - Duration::from_secs(5)), None);
        assert_eq!(t.admit(t0 + Duration::from_secs(1)), Some(1));
    }

    #[test]
    fn kinds_are_throttled_independently() {
        let t0 = Instant::now();
        let mut t = Throttles::new(Duration::from_secs(1));
        assert_eq!(t.admit(Noisy::HandshakeFailed, t0), Some(0));
        assert_eq!(t.admit(Noisy::HandshakeFailed, t0), None);
        assert_eq!(t.admit(Noisy::PerPeerRefused, t0), Some(0));
        assert_eq!(t.admit(Noisy::HandshakeTimeout, t0), Some(0));
        assert_eq!(t.admit(Noisy::ConnectionDeadline, t0), Some(0));
        assert_eq!(t.admit(Noisy::PerPeerRefused, t0), None);
    }
}
