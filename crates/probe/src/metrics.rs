//! Ingest counters shared between the capture thread and the API, and their Prometheus
//! rendering.
//!
//! The capture thread counts in plain local integers and publishes them here every few
//! thousand frames (and at the end of its input), so the hot path has no atomic
//! read-modify-write per packet. The text is written with `ashiato_api::metrics`, the one
//! exposition writer every ashiato service uses.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use ashiato_api::metrics::{Exposition, Kind};

use crate::api::ProbeState;

/// Counters of one probe's ingest, per capture worker (a worker per thread: one for files,
/// `--capture-threads` for a live interface).
#[derive(Default, Debug)]
pub struct IngestCounters {
    workers: Mutex<Vec<WorkerTotals>>,
    input_done: AtomicBool,
    /// The first capture error, once a capture thread has stopped on one.
    capture_error: Mutex<Option<String>>,
}

/// Totals one worker has published.
#[derive(Clone, Debug, Default)]
struct WorkerTotals {
    frames_seen: u64,
    digested: u64,
    kernel_packets: u64,
    kernel_drops: u64,
    skipped: Vec<(&'static str, u64)>,
}

/// A consistent-enough copy of the counters, summed over workers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CountersSnapshot {
    /// Frames handed to the probe by its source.
    pub frames_seen: u64,
    /// Frames digested and recorded in the tables.
    pub digested: u64,
    /// Packets the kernel counted for our sockets (live capture only).
    pub kernel_packets: u64,
    /// Packets the kernel dropped because a ring was full (live capture only).
    pub kernel_drops: u64,
    /// Frames we skipped, by reason (not IP, truncated, snap too short, ...).
    pub skipped: Vec<(&'static str, u64)>,
    /// True once a finite input has been read to its end.
    pub input_done: bool,
    /// Why capture stopped, if it stopped on an error: the probe still answers for what it
    /// recorded before, but records nothing more (`/healthz` fails, `/v1/status` says why).
    pub capture_error: Option<String>,
}

impl CountersSnapshot {
    /// Frames skipped for any reason.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.iter().map(|(_, n)| n).sum()
    }
}

impl IngestCounters {
    fn with_worker(&self, worker: usize, f: impl FnOnce(&mut WorkerTotals)) {
        let mut w = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        if w.len() <= worker {
            w.resize_with(worker + 1, WorkerTotals::default);
        }
        f(&mut w[worker]);
    }

    /// Publishes a worker's totals since the start (not increments).
    pub fn publish(
        &self,
        worker: usize,
        frames_seen: u64,
        digested: u64,
        skipped: &[(&'static str, u64)],
    ) {
        self.with_worker(worker, |t| {
            t.frames_seen = frames_seen;
            t.digested = digested;
            t.skipped.clear();
            t.skipped.extend_from_slice(skipped);
        });
    }

    /// Publishes the kernel's totals for a worker's live socket.
    pub fn publish_kernel(&self, worker: usize, packets: u64, drops: u64) {
        self.with_worker(worker, |t| {
            t.kernel_packets = packets;
            t.kernel_drops = drops;
        });
    }

    /// Marks a finite input as fully read.
    pub fn set_input_done(&self) {
        self.input_done.store(true, Ordering::Release);
    }

    /// Records that a capture thread stopped on an error (the first one is kept).
    pub fn set_capture_error(&self, error: String) {
        let mut e = self.capture_error.lock().unwrap_or_else(|e| e.into_inner());
        if e.is_none() {
            *e = Some(error);
        }
    }

    /// Why capture stopped, if it stopped on an error.
    pub fn capture_error(&self) -> Option<String> {
        self.capture_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Copies the counters, summed over workers.
    pub fn snapshot(&self) -> CountersSnapshot {
        let w = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        let mut s = CountersSnapshot {
            input_done: self.input_done.load(Ordering::Acquire),
            capture_error: self.capture_error(),
            ..CountersSnapshot::default()
        };
        for t in w.iter() {
            s.frames_seen += t.frames_seen;
            s.digested += t.digested;
            s.kernel_packets += t.kernel_packets;
            s.kernel_drops += t.kernel_drops;
            for (reason, n) in &t.skipped {
                match s.skipped.iter_mut().find(|(r, _)| r == reason) {
                    Some((_, m)) => *m += n,
                    None => s.skipped.push((reason, *n)),
                }
            }
        }
        s
    }
}

/// Renders the probe's metrics in the Prometheus text format.
pub fn render_metrics(state: &ProbeState) -> String {
    let c = state.counters.snapshot();
    let t = state.tables.stats();
    let cfg = state.tables.config();
    let mut o = Exposition::new();
    let probe = [("probe", state.name.as_str())];
    let mut one = |name: &str, kind: &str, help: &str, v: f64| {
        let kind = if kind == "counter" {
            Kind::Counter
        } else {
            Kind::Gauge
        };
        o.single(name, kind, help, &probe, v);
    };
    one(
        "ashiato_probe_frames_seen_total",
        "counter",
        "Frames handed to the probe by its capture source.",
        c.frames_seen as f64,
    );
    one(
        "ashiato_probe_packets_digested_total",
        "counter",
        "Packets digested and recorded in the digest tables.",
        c.digested as f64,
    );
    one(
        "ashiato_probe_kernel_packets_total",
        "counter",
        "Packets the kernel counted for the capture socket (live capture).",
        c.kernel_packets as f64,
    );
    one(
        "ashiato_probe_kernel_drops_total",
        "counter",
        "Packets the kernel dropped because the capture ring was full.",
        c.kernel_drops as f64,
    );
    one(
        "ashiato_probe_dropped_total",
        "counter",
        "Frames the probe received but did not record (sum of skipped reasons).",
        c.skipped_total() as f64,
    );
    one(
        "ashiato_probe_too_old_total",
        "counter",
        "Packets older than the retention window when they arrived.",
        t.too_old as f64,
    );
    one(
        "ashiato_probe_future_dropped_total",
        "counter",
        "Packets dropped for a timestamp far ahead of the current epoch, not (yet) confirmed by others.",
        t.future_dropped as f64,
    );
    one(
        "ashiato_probe_rotations_total",
        "counter",
        "Epoch rotations of the digest tables.",
        t.rotations as f64,
    );
    one(
        "ashiato_probe_rotation_stalls_total",
        "counter",
        "Rotations that had to clear a table inline because maintenance was behind.",
        t.stalls as f64,
    );
    one(
        "ashiato_probe_spilled_epochs_total",
        "counter",
        "Expired epochs written to disk.",
        t.spilled_epochs as f64,
    );
    one(
        "ashiato_probe_spill_errors_total",
        "counter",
        "Expired epochs that could not be written to disk.",
        t.spill_errors as f64,
    );
    one(
        "ashiato_probe_table_memory_bytes",
        "gauge",
        "RAM held by the digest tables.",
        state.tables.memory_bytes() as f64,
    );
    one(
        "ashiato_probe_current_epoch_packets",
        "gauge",
        "Packets recorded in the current epoch.",
        t.current_inserted as f64,
    );
    one(
        "ashiato_probe_current_fpr",
        "gauge",
        "Theoretical false-positive rate of the current epoch's table.",
        t.current_fpr,
    );
    let fill = ashiato_tables::theory::expected_fill(&cfg.params, t.current_inserted);
    one(
        "ashiato_probe_table_fill_ratio",
        "gauge",
        "Expected fraction of bits set in the current epoch's table.",
        fill,
    );
    let skipped = "ashiato_probe_skipped_total";
    o.family(skipped, Kind::Counter, "Frames skipped, by reason.");
    for (reason, n) in &c.skipped {
        o.sample(
            skipped,
            &[("probe", state.name.as_str()), ("reason", reason)],
            *n as f64,
        );
    }
    o.finish()
}
