//! The ingest pipeline: frames in, digests into the tables.
//!
//! [`Ingestor`] is the per-packet core — parse, extract the invariant bytes, keyed hash, one
//! Bloom insert — with local counters and no IO; `probe bench` drives it from memory and
//! [`run_source`] drives it from any [`FrameSource`]: capture files, an AF_PACKET ring or a
//! fault injector around either ([`run_files`] / [`run_live`] open the first two). Counters are
//! published to [`IngestCounters`] every [`PUBLISH_EVERY`] frames, not per packet.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ashiato_capture::file::MultiFileSource;
use ashiato_capture::live::{LiveConfig, LiveSource};
use ashiato_capture::{CaptureError, FrameSource, Poll};
use ashiato_digest::{DigestError, Key, V6_INVARIANT_LEN, invariant_bytes};
use ashiato_tables::{DigestTables, Writer};
use ashiato_wire::Frame;
use ashiato_wire::packet::{self, ParseStats};

use crate::metrics::IngestCounters;

/// Frames between two publications of the counters.
pub const PUBLISH_EVERY: u64 = 8192;

/// Digests between computing a packet's digest and inserting it. The digest's cache line is
/// prefetched when it is computed, so by the time it is inserted the line has (mostly)
/// arrived: the DRAM misses of a table larger than the caches overlap with the parsing and
/// hashing of the next packets instead of stalling the core (docs/benchmarks.md).
pub const PREFETCH_DEPTH: usize = 16;

/// Digests frames into the tables; one per ingest thread.
///
/// Packets are hashed in pairs (two interleaved SipHash chains, 1.08 × on one core) and
/// inserted [`PREFETCH_DEPTH`] packets after their line was prefetched, so inserts lag the
/// frames by at most `PREFETCH_DEPTH + 1` packets; [`Ingestor::flush`] (called
/// by [`Ingestor::publish`] and at the end of every input) inserts the rest, so a packet is
/// queryable once its batch is published.
pub struct Ingestor {
    key: Key,
    worker: usize,
    writer: Writer,
    frames: u64,
    digested: u64,
    parse: ParseStats,
    snap_too_short: u64,
    pending: [(u64, u128); PREFETCH_DEPTH],
    /// Next slot of `pending` to fill; `filled` says how many are valid.
    head: usize,
    filled: usize,
    /// Invariant bytes of a packet waiting for a partner, so that two keyed hashes run
    /// interleaved (`Key::digest_invariant_x2`): timestamp, bytes, length.
    staged: Option<(u64, [u8; V6_INVARIANT_LEN], usize)>,
}

impl Ingestor {
    /// An ingestor writing into `tables` with `key`.
    pub fn new(key: Key, tables: &Arc<DigestTables>) -> Self {
        Ingestor {
            key,
            worker: 0,
            writer: tables.writer(),
            frames: 0,
            digested: 0,
            parse: ParseStats::default(),
            snap_too_short: 0,
            pending: [(0, 0); PREFETCH_DEPTH],
            head: 0,
            filled: 0,
            staged: None,
        }
    }

    /// The worker number this ingestor publishes its counters under (one per capture thread).
    pub fn set_worker(&mut self, worker: usize) {
        self.worker = worker;
    }

    /// Use atomic read-modify-write inserts (several ingestors share the tables).
    pub fn set_concurrent(&mut self, yes: bool) {
        self.writer.set_concurrent(yes);
    }

    /// Digests one frame and records it at its own timestamp.
    #[inline]
    pub fn ingest(&mut self, frame: &Frame<'_>) {
        self.frames += 1;
        let mut inv = [0u8; V6_INVARIANT_LEN];
        let n = match packet::parse(frame.link, frame.data)
            .map_err(DigestError::Parse)
            .and_then(|p| invariant_bytes(&p.ip, &mut inv))
        {
            Ok(n) => n,
            Err(DigestError::Parse(e)) => return self.parse.record(&e),
            Err(_) => {
                self.snap_too_short += 1;
                return;
            }
        };
        self.digested += 1;
        match self.staged.take() {
            None => self.staged = Some((frame.ts_nanos, inv, n)),
            Some((ts0, inv0, n0)) => {
                let (d0, d1) = self.key.digest_invariant_x2(&inv0[..n0], &inv[..n]);
                self.push(ts0, d0.as_u128());
                self.push(frame.ts_nanos, d1.as_u128());
            }
        }
    }

    /// Prefetches a digest's line and inserts the digest that has waited longest.
    #[inline]
    fn push(&mut self, ts: u64, h: u128) {
        self.writer.prefetch(ts, h);
        let slot = &mut self.pending[self.head];
        if self.filled == PREFETCH_DEPTH {
            self.writer.insert(slot.0, slot.1);
        } else {
            self.filled += 1;
        }
        *slot = (ts, h);
        self.head = (self.head + 1) % PREFETCH_DEPTH;
    }

    /// Inserts the digests still waiting in the pipeline, oldest first.
    pub fn flush(&mut self) {
        if let Some((ts, inv, n)) = self.staged.take() {
            let h = self.key.digest_invariant(&inv[..n]).as_u128();
            self.push(ts, h);
        }
        let start = (self.head + PREFETCH_DEPTH - self.filled) % PREFETCH_DEPTH;
        for i in 0..self.filled {
            let (ts, h) = self.pending[(start + i) % PREFETCH_DEPTH];
            self.writer.insert(ts, h);
        }
        self.filled = 0;
        self.writer.flush_counts();
    }

    /// Frames seen.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Frames recorded.
    pub fn digested(&self) -> u64 {
        self.digested
    }

    /// Skipped frames by reason.
    pub fn skipped(&self) -> Vec<(&'static str, u64)> {
        let mut v: Vec<_> = self.parse.iter().collect();
        if self.snap_too_short > 0 {
            v.push(("snap_too_short", self.snap_too_short));
        }
        v
    }

    /// Marks the epoch of `now_ns` as recorded (see [`ashiato_tables::Writer::touch`]), after
    /// inserting what is pending.
    pub fn touch(&mut self, now_ns: u64) {
        self.flush();
        self.writer.touch(now_ns);
    }

    /// Inserts what is pending and publishes the totals.
    pub fn publish(&mut self, counters: &IngestCounters) {
        self.flush();
        counters.publish(self.worker, self.frames, self.digested, &self.skipped());
    }
}

/// Reads capture files (merged in time order) into the tables until their end or `stop`.
///
/// On a read error (a truncated or corrupt file) everything read before it is still inserted
/// and published before the error is returned: the probe keeps serving it.
pub fn run_files(
    paths: &[PathBuf],
    ing: &mut Ingestor,
    counters: &IngestCounters,
    stop: &AtomicBool,
) -> Result<(), CaptureError> {
    match MultiFileSource::open(paths) {
        Ok(src) => run_source(src, ing, counters, stop),
        Err(e) => {
            counters.set_input_done();
            Err(e)
        }
    }
}

/// Captures from a live interface into the tables until `stop`.
pub fn run_live(
    iface: &str,
    cfg: &LiveConfig,
    ing: &mut Ingestor,
    counters: &IngestCounters,
    stop: &AtomicBool,
) -> Result<(), CaptureError> {
    run_source(LiveSource::open(iface, cfg)?, ing, counters, stop)
}

/// How long a live ring may wait for frames before the loop checks `stop` and publishes.
pub const POLL_TIMEOUT: Duration = Duration::from_millis(100);

/// How far behind the clock an idle live source is assumed complete: frames may still sit in
/// a ring block the kernel has not retired yet (its timeout is far shorter).
pub const IDLE_LAG: Duration = Duration::from_millis(500);

/// The wall clock minus `lag`, ns since the Unix epoch (the live capture's time base).
fn wall_clock_ns(lag: Duration) -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    now.saturating_sub(lag).as_nanos().min(u64::MAX as u128) as u64
}

/// Digests every frame of `src` into the tables until its end or `stop` (a finite input is
/// then marked done); the one loop for capture files, live rings and test sources.
///
/// Counters (and the kernel's, for a live ring) are published every [`PUBLISH_EVERY`] frames,
/// whenever the source is idle and at least every [`POLL_TIMEOUT`]. On an error, what was read
/// before it is inserted and published before the error is returned; a finite input is then
/// marked done too (it will not be read further).
pub fn run_source<S: FrameSource>(
    mut src: S,
    ing: &mut Ingestor,
    counters: &IngestCounters,
    stop: &AtomicBool,
) -> Result<(), CaptureError> {
    if !src.is_finite() {
        tracing::info!("live capture started");
        ing.touch(wall_clock_ns(Duration::ZERO));
    }
    let r = ingest_source(&mut src, ing, counters, stop);
    ing.publish(counters);
    if src.is_finite() {
        counters.set_input_done();
    }
    r
}

/// The loop of [`run_source`].
fn ingest_source<S: FrameSource>(
    src: &mut S,
    ing: &mut Ingestor,
    counters: &IngestCounters,
    stop: &AtomicBool,
) -> Result<(), CaptureError> {
    let mut next_publish = ing.frames + PUBLISH_EVERY;
    let mut published = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let polled = src.poll(POLL_TIMEOUT, |f| ing.ingest(&f))?;
        if polled == Poll::End {
            return Ok(());
        }
        if ing.frames >= next_publish || polled == Poll::Idle || published.elapsed() >= POLL_TIMEOUT
        {
            next_publish = ing.frames + PUBLISH_EVERY;
            published = Instant::now();
            if polled == Poll::Idle && !src.is_finite() {
                // Nothing arrived for a poll: the quiet time up to a little before now was
                // recorded (empty), which lets an idle link answer "not seen".
                ing.touch(wall_clock_ns(IDLE_LAG));
            }
            ing.publish(counters);
            if let Some(k) = src.stats()?.kernel {
                counters.publish_kernel(ing.worker, k.packets, k.drops);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use ashiato_digest::DEMO_KEY;
    use ashiato_tables::{FilterKind, TablesConfig, theory};
    use ashiato_wire::packet::TcpFlags;
    use ashiato_wire::{LinkType, build};

    use super::*;

    fn small_tables() -> Arc<DigestTables> {
        DigestTables::new(TablesConfig {
            epoch_ns: 1_000_000_000,
            retention_epochs: 10,
            params: theory::plan(FilterKind::Blocked, 1000, 1e-6),
            table_id: 1,
            spill: None,
            prefault: false,
        })
        .unwrap()
    }

    /// A TCP SYN from source address `i`.
    fn syn(i: u32) -> Vec<u8> {
        build::ipv4_tcp_frame(
            Ipv4Addr::from(i),
            Ipv4Addr::new(192, 0, 2, 1),
            1024,
            80,
            i,
            0,
            TcpFlags::SYN,
            1,
            &[],
        )
    }

    #[test]
    fn the_prefetch_pipeline_loses_nothing_and_keeps_timestamps() {
        let tables = small_tables();
        let mut ing = Ingestor::new(DEMO_KEY, &tables);
        let t0 = 1_000_000_000_000_000_000u64;
        let mut digests = Vec::new();
        for i in 0..(PREFETCH_DEPTH as u32 * 3 + 5) {
            let f = syn(i);
            // Packets spread over three epochs.
            let ts = t0 + u64::from(i % 3) * 1_000_000_000;
            ing.ingest(&Frame {
                ts_nanos: ts,
                link: LinkType::Ethernet,
                orig_len: f.len() as u32,
                data: &f,
            });
            digests.push((ts, DEMO_KEY.digest_frame(LinkType::Ethernet, &f).unwrap()));
        }
        // Before the flush only the ones that left the pipeline are in: the odd last packet
        // waits for a hashing partner, then 16 wait in the prefetch ring.
        let inserted_before = tables.stats().inserted;
        assert_eq!(
            inserted_before,
            digests.len() as u64 - 1 - PREFETCH_DEPTH as u64
        );
        let counters = IngestCounters::default();
        ing.publish(&counters);
        assert_eq!(tables.stats().inserted, digests.len() as u64);
        for (ts, d) in digests {
            let hits = tables.query(d.as_u128(), ts, ts);
            assert_eq!(hits.len(), 1, "found in exactly its own epoch");
            assert!(hits[0].epoch_start_ns <= ts && ts < hits[0].epoch_end_ns);
        }
        assert_eq!(counters.snapshot().digested, 3 * PREFETCH_DEPTH as u64 + 5);
    }

    #[test]
    fn a_truncated_capture_keeps_every_complete_packet() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cut.pcap");
        let mut w =
            ashiato_wire::capfile::PcapWriter::new(Vec::new(), LinkType::Ethernet, 65535).unwrap();
        let mut digests = Vec::new();
        for i in 0..40u32 {
            let f = syn(i + 1);
            w.write(1_000_000_000_000_000_000 + u64::from(i), &f)
                .unwrap();
            digests.push(DEMO_KEY.digest_frame(LinkType::Ethernet, &f).unwrap());
        }
        let bytes = w.into_inner();
        std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
        let tables = small_tables();
        let mut ing = Ingestor::new(DEMO_KEY, &tables);
        let counters = IngestCounters::default();
        let stop = AtomicBool::new(false);
        let err = run_files(&[path], &mut ing, &counters, &stop).unwrap_err();
        assert!(err.to_string().contains("cut.pcap"), "{err}");
        let c = counters.snapshot();
        assert_eq!(c.digested, 39);
        assert!(c.input_done);
        for d in &digests[..39] {
            assert_eq!(tables.query(d.as_u128(), 0, u64::MAX).len(), 1);
        }
    }

    #[test]
    fn one_loop_for_any_source_keeps_what_came_before_a_failure() {
        use ashiato_capture::fault::{FaultConfig, FaultInjector};
        use ashiato_capture::{MemorySource, OwnedFrame};
        let t0 = 1_000_000_000_000_000_000u64;
        let frames: Vec<OwnedFrame> = (0..5000u32)
            .map(|i| OwnedFrame::new(t0 + u64::from(i), LinkType::Ethernet, syn(i + 1)))
            .collect();
        let digests: Vec<u128> = frames
            .iter()
            .map(|f| DEMO_KEY.digest_frame(f.link, &f.data).unwrap().as_u128())
            .collect();
        let src = FaultInjector::new(
            MemorySource::new(frames).batch(300).idle_every(3),
            FaultConfig {
                fail_after: Some(4000),
                ..FaultConfig::default()
            },
        );
        let tables = small_tables();
        let mut ing = Ingestor::new(DEMO_KEY, &tables);
        let counters = IngestCounters::default();
        let err = run_source(src, &mut ing, &counters, &AtomicBool::new(false)).unwrap_err();
        assert!(err.to_string().contains("after 4000 frames"), "{err}");
        let c = counters.snapshot();
        assert_eq!(c.digested, 4000);
        assert!(c.input_done);
        for (i, d) in digests.iter().enumerate() {
            let found = !tables.query(*d, 0, u64::MAX).is_empty();
            assert!(found || i >= 4000, "frame {i} lost");
        }
    }
}
