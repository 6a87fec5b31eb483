//! The ingest pipeline: frames in, digests into the tables.
//!
//! [`Ingestor`] is the per-packet core — parse, extract the invariant bytes, keyed hash, one
//! Bloom insert — with local counters and no IO; `probe bench` drives it from memory and
//! [`run_files`] / [`run_live`] drive it from capture files or an AF_PACKET ring. Counters are
//! published to [`IngestCounters`] every [`PUBLISH_EVERY`] frames, not per packet.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ashiato_capture::CaptureError;
use ashiato_capture::file::MultiFileSource;
use ashiato_capture::live::{LiveConfig, LiveSource};
use ashiato_digest::{DigestError, Key};
use ashiato_tables::{DigestTables, Writer};
use ashiato_wire::Frame;
use ashiato_wire::packet::ParseStats;

use crate::metrics::IngestCounters;

/// Frames between two publications of the counters.
pub const PUBLISH_EVERY: u64 = 8192;

/// Digests frames into the tables; one per ingest thread.
pub struct Ingestor {
    key: Key,
    writer: Writer,
    frames: u64,
    digested: u64,
    parse: ParseStats,
    snap_too_short: u64,
}

impl Ingestor {
    /// An ingestor writing into `tables` with `key`.
    pub fn new(key: Key, tables: &Arc<DigestTables>) -> Self {
        Ingestor {
            key,
            writer: tables.writer(),
            frames: 0,
            digested: 0,
            parse: ParseStats::default(),
            snap_too_short: 0,
        }
    }

    /// Use atomic read-modify-write inserts (several ingestors share the tables).
    pub fn set_concurrent(&mut self, yes: bool) {
        self.writer.set_concurrent(yes);
    }

    /// Digests one frame and records it at its own timestamp.
    #[inline]
    pub fn ingest(&mut self, frame: &Frame<'_>) {
        self.frames += 1;
        match self.key.digest_frame(frame.link, frame.data) {
            Ok(d) => {
                self.writer.insert(frame.ts_nanos, d.as_u128());
                self.digested += 1;
            }
            Err(DigestError::Parse(e)) => self.parse.record(&e),
            Err(_) => self.snap_too_short += 1,
        }
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

    /// Publishes the totals.
    pub fn publish(&self, counters: &IngestCounters) {
        counters.publish(self.frames, self.digested, &self.skipped());
    }
}

/// Reads capture files (merged in time order) into the tables until their end or `stop`.
pub fn run_files(
    paths: &[PathBuf],
    ing: &mut Ingestor,
    counters: &IngestCounters,
    stop: &AtomicBool,
) -> Result<(), CaptureError> {
    let mut src = MultiFileSource::open(paths)?;
    let mut next_publish = PUBLISH_EVERY;
    while let Some((_, frame)) = src.next_frame()? {
        ing.ingest(&frame);
        if ing.frames >= next_publish {
            next_publish += PUBLISH_EVERY;
            ing.publish(counters);
            if stop.load(Ordering::Relaxed) {
                break;
            }
        }
    }
    ing.publish(counters);
    counters.set_input_done();
    Ok(())
}

/// Captures from a live interface into the tables until `stop`.
pub fn run_live(
    iface: &str,
    cfg: &LiveConfig,
    ing: &mut Ingestor,
    counters: &IngestCounters,
    stop: &AtomicBool,
) -> Result<(), CaptureError> {
    let mut src = LiveSource::open(iface, cfg)?;
    tracing::info!(iface, "live capture started");
    while !stop.load(Ordering::Relaxed) {
        src.poll_frames(Duration::from_millis(100), |f| ing.ingest(&f))?;
        ing.publish(counters);
        let k = src.kernel_stats()?;
        counters.publish_kernel(k.packets, k.drops);
    }
    Ok(())
}
