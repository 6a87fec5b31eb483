//! A debugging wrapper around any [`FrameSource`]: drops frames, truncates them, or fails
//! the input after a number of frames, deterministically for a seed.
//!
//! Consumers promise to survive damaged input: a truncated capture, a frame cut short by a
//! snap length, a ring that stops with an error. This wrapper produces those conditions on
//! demand over real inputs, so a test can pin what a consumer does with them. The decisions
//! come from a seeded generator and the frame order only, so a run repeats exactly.

use std::time::Duration;

use ashiato_wire::Frame;

use crate::CaptureError;
use crate::source::{FrameSource, Poll, SourceStats};

/// What to inject. Rates are per million frames.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultConfig {
    /// Seed of the decisions.
    pub seed: u64,
    /// Frames dropped, per million.
    pub drop_ppm: u32,
    /// Frames (of those kept) cut to a shorter captured length, per million; `orig_len` stays,
    /// as with a short snap length.
    pub truncate_ppm: u32,
    /// After this many frames have been read from the inner source, the input fails with
    /// [`CaptureError::Injected`] (frames of that batch past the limit are lost).
    pub fail_after: Option<u64>,
}

/// What was injected so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Frames read from the inner source.
    pub read: u64,
    /// Frames dropped.
    pub dropped: u64,
    /// Frames delivered truncated.
    pub truncated: u64,
    /// Whether the failure was injected.
    pub failed: bool,
}

/// See the [module documentation](self).
#[derive(Debug)]
pub struct FaultInjector<S> {
    inner: S,
    cfg: FaultConfig,
    rng: u64,
    counts: FaultCounts,
    delivered: u64,
}

impl<S: FrameSource> FaultInjector<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, cfg: FaultConfig) -> Self {
        Self {
            inner,
            cfg,
            rng: cfg.seed,
            counts: FaultCounts::default(),
            delivered: 0,
        }
    }

    /// What was injected so far.
    pub fn counts(&self) -> FaultCounts {
        self.counts
    }

    /// The wrapped source.
    pub fn into_inner(self) -> S {
        self.inner
    }

    fn error(&self) -> CaptureError {
        CaptureError::Injected {
            frames: self.counts.read,
        }
    }
}

/// splitmix64: one step of a tiny, well-mixed generator (not for anything an adversary sees).
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl<S: FrameSource> FrameSource for FaultInjector<S> {
    fn poll<F: FnMut(Frame<'_>)>(
        &mut self,
        timeout: Duration,
        mut on_frame: F,
    ) -> Result<Poll, CaptureError> {
        // A limit reached at the end of a batch fails on the next call, as a source that
        // breaks between two reads would.
        if self.counts.failed
            || (self.cfg.fail_after).is_some_and(|limit| self.counts.read >= limit)
        {
            self.counts.failed = true;
            return Err(self.error());
        }
        let cfg = self.cfg;
        let (counts, rng) = (&mut self.counts, &mut self.rng);
        let mut n = 0usize;
        let polled = self.inner.poll(timeout, |mut f| {
            if counts.failed {
                return;
            }
            if cfg.fail_after.is_some_and(|limit| counts.read >= limit) {
                counts.failed = true;
                return;
            }
            counts.read += 1;
            let r = next(rng);
            if (r % 1_000_000) < u64::from(cfg.drop_ppm) {
                counts.dropped += 1;
                return;
            }
            if ((r >> 20) % 1_000_000) < u64::from(cfg.truncate_ppm) && !f.data.is_empty() {
                let keep = (r >> 40) as usize % f.data.len();
                f.data = &f.data[..keep];
                counts.truncated += 1;
            }
            n += 1;
            on_frame(f);
        });
        self.delivered += n as u64;
        let polled = polled?;
        if self.counts.failed {
            return Err(self.error());
        }
        Ok(match polled {
            Poll::Frames(_) if n == 0 => Poll::Idle,
            Poll::Frames(_) => Poll::Frames(n),
            other => other,
        })
    }

    fn stats(&mut self) -> Result<SourceStats, CaptureError> {
        let mut s = self.inner.stats()?;
        s.frames = self.delivered;
        Ok(s)
    }

    fn is_finite(&self) -> bool {
        self.inner.is_finite()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ashiato_wire::LinkType;

    use super::{FaultConfig, FaultInjector};
    use crate::CaptureError;
    use crate::source::{FrameSource, MemorySource, OwnedFrame, Poll};

    fn frames(n: u64) -> MemorySource {
        let v = (0..n)
            .map(|t| OwnedFrame::new(t, LinkType::Raw, vec![7; 64]))
            .collect();
        MemorySource::new(v).batch(10)
    }

    /// Runs to the end or the first error; returns (timestamps, lengths, error).
    fn drain<S: FrameSource>(s: &mut S) -> (Vec<u64>, Vec<usize>, Option<CaptureError>) {
        let (mut ts, mut lens) = (Vec::new(), Vec::new());
        loop {
            match s.poll(Duration::ZERO, |f| {
                ts.push(f.ts_nanos);
                lens.push(f.data.len());
            }) {
                Ok(Poll::End) => return (ts, lens, None),
                Ok(_) => {}
                Err(e) => return (ts, lens, Some(e)),
            }
        }
    }

    #[test]
    fn nothing_configured_changes_nothing() {
        let mut s = FaultInjector::new(frames(95), FaultConfig::default());
        let (ts, lens, err) = drain(&mut s);
        assert_eq!(ts, (0..95).collect::<Vec<_>>());
        assert!(lens.iter().all(|&l| l == 64) && err.is_none());
        assert_eq!(s.stats().unwrap().frames, 95);
    }

    #[test]
    fn drops_and_truncations_follow_the_seed() {
        let cfg = FaultConfig {
            seed: 42,
            drop_ppm: 100_000,
            truncate_ppm: 200_000,
            fail_after: None,
        };
        let run = || {
            let mut s = FaultInjector::new(frames(10_000), cfg);
            let r = drain(&mut s);
            (r.0, r.1, s.counts())
        };
        let (ts, lens, c) = run();
        assert_eq!((ts.clone(), lens.clone(), c), run(), "deterministic");
        assert_eq!(c.read, 10_000);
        assert_eq!(ts.len() as u64, 10_000 - c.dropped);
        // About 10 % dropped and 20 % of the rest cut.
        assert!((800..1200).contains(&c.dropped), "{c:?}");
        assert!((1500..2100).contains(&c.truncated), "{c:?}");
        assert_eq!(lens.iter().filter(|&&l| l < 64).count() as u64, c.truncated);
        assert!(ts.windows(2).all(|w| w[0] < w[1]), "order kept");
        let mut other = FaultInjector::new(frames(10_000), FaultConfig { seed: 43, ..cfg });
        assert_ne!(drain(&mut other).0, ts, "another seed, other drops");
    }

    #[test]
    fn fails_after_exactly_n_frames_and_stays_failed() {
        for limit in [25u64, 30, 0, 100] {
            let mut s = FaultInjector::new(
                frames(100),
                FaultConfig {
                    fail_after: Some(limit),
                    ..FaultConfig::default()
                },
            );
            let (ts, _, err) = drain(&mut s);
            assert_eq!(ts, (0..limit).collect::<Vec<_>>(), "limit {limit}");
            let err = err.expect("fails");
            assert!(
                err.to_string().contains(&format!("after {limit} frames")),
                "{err}"
            );
            assert!(s.counts().failed);
            assert!(s.poll(Duration::ZERO, |_| panic!()).is_err());
        }
        // A limit past the end never fires.
        let mut s = FaultInjector::new(
            frames(10),
            FaultConfig {
                fail_after: Some(11),
                ..FaultConfig::default()
            },
        );
        let (ts, _, err) = drain(&mut s);
        assert_eq!((ts.len(), err.is_none()), (10, true));
    }
}
