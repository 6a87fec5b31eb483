//! Ingest counters shared between the capture thread and the API, and their Prometheus
//! rendering.
//!
//! The capture thread counts in plain local integers and publishes them here every few
//! thousand frames (and at the end of its input), so the hot path has no atomic
//! read-modify-write per packet. The text exposition is written by hand: it is a dozen lines
//! of a stable format, and a metrics crate would add a dependency for nothing else.

use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::api::ProbeState;

/// Counters of one probe's ingest.
#[derive(Default, Debug)]
pub struct IngestCounters {
    frames_seen: AtomicU64,
    digested: AtomicU64,
    kernel_packets: AtomicU64,
    kernel_drops: AtomicU64,
    input_done: AtomicBool,
    skipped: Mutex<Vec<(&'static str, u64)>>,
}

/// A consistent-enough copy of the counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CountersSnapshot {
    /// Frames handed to the probe by its source.
    pub frames_seen: u64,
    /// Frames digested and recorded in the tables.
    pub digested: u64,
    /// Packets the kernel counted for our socket (live capture only).
    pub kernel_packets: u64,
    /// Packets the kernel dropped because our ring was full (live capture only).
    pub kernel_drops: u64,
    /// Frames we skipped, by reason (not IP, truncated, snap too short, ...).
    pub skipped: Vec<(&'static str, u64)>,
    /// True once a finite input has been read to its end.
    pub input_done: bool,
}

impl CountersSnapshot {
    /// Frames skipped for any reason.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.iter().map(|(_, n)| n).sum()
    }
}

impl IngestCounters {
    /// Publishes totals since the start (not increments).
    pub fn publish(&self, frames_seen: u64, digested: u64, skipped: &[(&'static str, u64)]) {
        self.frames_seen.store(frames_seen, Ordering::Relaxed);
        self.digested.store(digested, Ordering::Relaxed);
        if let Ok(mut s) = self.skipped.lock() {
            s.clear();
            s.extend_from_slice(skipped);
        }
    }

    /// Publishes the kernel's totals for a live socket.
    pub fn publish_kernel(&self, packets: u64, drops: u64) {
        self.kernel_packets.store(packets, Ordering::Relaxed);
        self.kernel_drops.store(drops, Ordering::Relaxed);
    }

    /// Marks a finite input as fully read.
    pub fn set_input_done(&self) {
        self.input_done.store(true, Ordering::Release);
    }

    /// Copies the counters.
    pub fn snapshot(&self) -> CountersSnapshot {
        CountersSnapshot {
            frames_seen: self.frames_seen.load(Ordering::Relaxed),
            digested: self.digested.load(Ordering::Relaxed),
            kernel_packets: self.kernel_packets.load(Ordering::Relaxed),
            kernel_drops: self.kernel_drops.load(Ordering::Relaxed),
            skipped: self.skipped.lock().map(|s| s.clone()).unwrap_or_default(),
            input_done: self.input_done.load(Ordering::Acquire),
        }
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Renders the probe's metrics in the Prometheus text format.
pub fn render_metrics(state: &ProbeState) -> String {
    let c = state.counters.snapshot();
    let t = state.tables.stats();
    let cfg = state.tables.config();
    let mut o = String::with_capacity(2048);
    let probe = escape(&state.name);
    let mut one = |name: &str, kind: &str, help: &str, v: f64| {
        family(&mut o, name, kind, help);
        let _ = writeln!(o, "{name}{{probe=\"{probe}\"}} {v}");
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
    let fill = expected_fill(cfg.params.m_bits, cfg.params.k, t.current_inserted);
    one(
        "ashiato_probe_table_fill_ratio",
        "gauge",
        "Expected fraction of bits set in the current epoch's table.",
        fill,
    );
    family(
        &mut o,
        "ashiato_probe_skipped_total",
        "counter",
        "Frames skipped, by reason.",
    );
    for (reason, n) in &c.skipped {
        let _ = writeln!(
            o,
            "ashiato_probe_skipped_total{{probe=\"{probe}\",reason=\"{}\"}} {n}",
            escape(reason)
        );
    }
    o
}

/// Expected fraction of bits set after `n` inserts of `k` bits into `m` (the same for both
/// filter kinds: each bit is hit by an item with probability k/m on average).
fn expected_fill(m: u64, k: u32, n: u64) -> f64 {
    if m == 0 {
        return 0.0;
    }
    let per_item = (-1.0 / m as f64).ln_1p() * f64::from(k);
    -(per_item * n as f64).exp_m1()
}

/// Escapes a label value (backslash, double quote, newline).
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
