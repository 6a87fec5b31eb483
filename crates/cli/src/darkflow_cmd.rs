//! `ashiato darkflow`: detection over captures (by packet time) or live (by the clock), the
//! synthetic-traffic tool, the inline gateway and the benchmarks. Glue only: the detector,
//! summary and report live in `ashiato-darkflow`, the capture and queue loops in
//! `ashiato-darkflow-shells`.

mod bench;
mod events;
mod inline;
mod live;
mod syn_tap;

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
use ashiato_darkflow::detector::MAX_TIMEOUT_NS;
use ashiato_darkflow::report::{Meta, rfc3339};
use ashiato_darkflow::synth::{SynthConfig, generate};
use ashiato_darkflow::{Config, Counters, Detector, Event, FlowId, Report, Summary, SummaryConfig};
use ashiato_darkflow_shells::offline;
use ashiato_darkflow_shells::report_dir::ReportDir;
use ashiato_wire::LinkType;
use ashiato_wire::capfile::PcapWriter;
use serde_json::json;

use crate::args::KeyArgs;
use crate::args::{DarkflowArgs, DarkflowCli, DarkflowCommand, DetectorArgs, EventKind, SynthArgs};
use crate::digest_cmd::load_key;
use crate::units::parse_duration_ns;

pub use events::write_event;

/// `ashiato darkflow ...`
pub fn run(d: DarkflowCli) -> Result<()> {
    match d.command {
        Some(DarkflowCommand::Synth(a)) => synth(&a),
        Some(DarkflowCommand::Inline(a)) => inline::run(&a),
        Some(DarkflowCommand::Bench(a)) => bench::run(&a),
        None if d.run.iface.is_some() => live::run(&d.run),
        // clap requires one of --pcap and --iface.
        None => offline_cmd(&d.run),
    }
}

// Typed flag parsers: clap runs them at parse time, so a bad value is a usage error (exit 2)
// with clap's message, before anything is opened or printed.

/// A duration flag (`250ms`, `5s`, `1m`), in ns.
pub fn duration_arg(s: &str) -> Result<u64, String> {
    parse_duration_ns(s).map_err(|e| format!("{e:#}"))
}

/// A duration flag that must be above 0.
pub fn positive_duration_arg(s: &str) -> Result<u64, String> {
    match duration_arg(s)? {
        0 => Err("must be above 0".into()),
        ns => Ok(ns),
    }
}

/// T: above 0 and at most [`MAX_TIMEOUT_NS`] (the pending table keeps 32-bit µs offsets).
pub fn timeout_arg(s: &str) -> Result<u64, String> {
    match duration_arg(s)? {
        ns if ns == 0 || ns > MAX_TIMEOUT_NS => Err("must be above 0 and at most 1h".into()),
        ns => Ok(ns),
    }
}

/// A table bound: 1 to `u32::MAX - 1` entries (slots are 32-bit indices).
pub fn table_bound_arg(s: &str) -> Result<usize, String> {
    match s.trim().parse::<u32>() {
        Ok(n) if n > 0 && n < u32::MAX => Ok(n as usize),
        _ => Err(format!(
            "expected a number of entries from 1 to {}",
            u32::MAX - 1
        )),
    }
}

/// Detector settings from flags, validated.
pub fn detector_config(a: &DetectorArgs) -> Result<Config> {
    // Each value was checked by its parser; only their relation is left.
    if a.reorder_window >= a.timeout {
        bail!("--reorder-window must be shorter than --timeout");
    }
    Ok(Config {
        timeout_ns: a.timeout,
        expiry_ns: a.expiry,
        reorder_ns: a.reorder_window,
        max_pending: a.max_pending,
        max_flows: a.max_flows,
        hash_seed: random_seed()?,
        ..Config::default()
    })
}

/// A seed for the tables' hash from the kernel's random source.
fn random_seed() -> Result<u64> {
    Ok(u64::from_ne_bytes(crate::digest_cmd::random_bytes()?))
}

/// Which events `--events` selects.
#[derive(Clone, Copy, Debug, Default)]
pub struct EventFilter {
    dark: bool,
    late: bool,
    closed: bool,
    untracked: bool,
    unsolicited: bool,
}

impl EventFilter {
    /// The filter for an `--events` list.
    pub fn new(list: &[EventKind]) -> Self {
        let mut f = Self::default();
        for e in list {
            match e {
                EventKind::Darkflow => f.dark = true,
                EventKind::Late => f.late = true,
                EventKind::Closed => f.closed = true,
                EventKind::Untracked => f.untracked = true,
                EventKind::Unsolicited => f.unsolicited = true,
            }
        }
        f
    }
}

/// Everything an event goes to besides the JSON lines: summary, set, CSV.
pub struct Sinks {
    /// The running summary.
    pub summary: Summary,
    /// The DarkFlow set, when asked for.
    pub set: Option<BTreeSet<FlowId>>,
    /// The report directory, darkflows.csv streamed into it.
    pub report: Option<ReportDir>,
    /// Which events go out as JSON lines (`--json`), if any.
    pub json: Option<EventFilter>,
    /// First IO error writing those lines (reported at the end; detection goes on).
    pub json_error: Option<std::io::Error>,
    /// First-SYN digests (`--key-file`), for the `digest` of `darkflow` lines.
    pub digests: Option<syn_tap::Shared>,
}

impl Sinks {
    /// Sinks for the flags given; creates the report directory.
    pub fn new(a: &DarkflowArgs) -> Result<Self> {
        let filter = EventFilter::new(&a.events);
        let report = a
            .report
            .as_deref()
            .map(|dir| {
                ReportDir::create(dir).with_context(|| format!("--report {}", dir.display()))
            })
            .transpose()?;
        Ok(Self {
            summary: Summary::new(SummaryConfig {
                interval_ns: a.interval,
                ..SummaryConfig::default()
            }),
            set: a.set_out.as_ref().map(|_| BTreeSet::new()),
            report,
            json: a.json.then_some(filter),
            json_error: None,
            digests: None,
        })
    }

    /// Takes one event and prints it on `out` if `--json` selects it (flushing each line
    /// when `flush`, as live modes do). `out` should be buffered: a line is several writes.
    pub fn take(&mut self, e: &Event, out: &mut impl Write, flush: bool) {
        self.observe(e);
        let digest = match (e, &self.digests) {
            (Event::Dark { ts, record }, Some(d)) => d.borrow_mut().take(*ts, &record.flow),
            _ => None,
        };
        if let Some(f) = self.json
            && self.json_error.is_none()
            && let Err(err) = write_event(out, e, f, digest).and_then(|written| {
                if flush && written {
                    out.flush()
                } else {
                    Ok(())
                }
            })
        {
            self.json_error = Some(err);
        }
    }

    /// Takes one event.
    pub fn observe(&mut self, e: &Event) {
        self.summary.observe(e);
        if let Event::Dark { record, .. } = e
            && let Some(s) = &mut self.set
        {
            s.insert(record.flow);
        }
        if let Some(r) = &mut self.report {
            r.observe(e);
        }
    }

    /// Writes the set file and the report; returns the report numbers.
    pub fn finish(self, a: &DarkflowArgs, counters: Counters, meta: Meta) -> Result<Report> {
        let report = self.summary.report(counters);
        if let (Some(path), Some(set)) = (&a.set_out, &self.set) {
            write_set(path, set)?;
        }
        if let Some(e) = self.json_error {
            bail!("writing events: {e}");
        }
        if let Some(r) = self.report {
            let dir = r.dir().to_path_buf();
            let files = r
                .finish(&report, &meta)
                .with_context(|| format!("writing the report in {}", dir.display()))?;
            eprintln!(
                "report: {} ({} files)",
                dir.join("index.html").display(),
                files.len()
            );
        }
        Ok(report)
    }
}

/// Writes a DarkFlow set file: one `src sport dst dport` per line, sorted.
pub fn write_set(path: &Path, set: &BTreeSet<FlowId>) -> Result<()> {
    let mut w =
        BufWriter::new(File::create(path).with_context(|| format!("creating {}", path.display()))?);
    for f in set {
        writeln!(w, "{f}")?;
    }
    w.flush()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The federation key of `--key-file`, if given.
fn key_of(a: &DarkflowArgs) -> Result<Option<ashiato_digest::Key>> {
    a.key_file
        .as_ref()
        .map(|f| {
            load_key(&KeyArgs {
                key_file: Some(f.clone()),
            })
        })
        .transpose()
}

fn offline_cmd(a: &DarkflowArgs) -> Result<()> {
    let cfg = detector_config(&a.detector)?;
    // Every input is opened and checked before anything is written or printed: a missing or
    // garbage file is an error on its own, not a summary of zeros followed by one.
    let src = offline::open(&a.pcap)?;
    let key = key_of(a)?;
    let (src, digests) = syn_tap::SynTap::new(src, key, cfg.timeout_ns);
    let mut det = Detector::new(cfg);
    let mut sinks = Sinks::new(a)?;
    sinks.digests = a.key_file.is_some().then_some(digests);
    // One 256 KiB buffer for every line (a line is about 400 bytes).
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(256 << 10, stdout.lock());
    let bar = (!a.no_progress && std::io::stderr().is_terminal()).then(|| {
        let b = indicatif::ProgressBar::new(1);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let (stats, result) = offline::run_source(
        src,
        &mut det,
        &mut |e| sinks.take(&e, &mut out, false),
        |done, total| {
            if let Some(b) = &bar {
                b.set_length(total);
                b.set_position(done);
            }
        },
    );
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let counters = det.counters();
    let meta = Meta {
        title: "DarkFlow report".into(),
        inputs: a.pcap.iter().map(|p| p.display().to_string()).collect(),
        timeout_ns: cfg.timeout_ns,
        generated_by: format!("ashiato {}", env!("CARGO_PKG_VERSION")),
    };
    let report = sinks.finish(a, counters, meta)?;
    if a.json {
        let v = json!({"event": "summary", "frames": stats.frames, "malformed": stats.malformed, "report": report.json(cfg.timeout_ns)});
        writeln!(out, "{v}")?;
    } else {
        print_summary(
            &mut out,
            &report,
            stats.frames,
            stats.malformed,
            cfg.timeout_ns,
        )?;
    }
    out.flush()?;
    if let Err(e) = result {
        // Everything read before the damage was decided and reported above.
        bail!(
            "{e} (results above cover the {} frames read before it)",
            stats.frames
        );
    }
    Ok(())
}

/// The human summary.
pub fn print_summary(
    w: &mut impl Write,
    r: &Report,
    frames: u64,
    malformed: u64,
    timeout_ns: u64,
) -> Result<()> {
    let c = &r.counters;
    writeln!(
        w,
        "frames {frames} ({malformed} malformed), TCP segments {}, SYNs {}",
        c.segments, c.syns
    )?;
    writeln!(
        w,
        "DarkFlows (no SYN/ACK or RST within {} s): {}{}",
        timeout_ns as f64 / 1e9,
        c.darkflows,
        if c.incomplete > 0 {
            format!(
                " ({} with less than T observed before the end)",
                c.incomplete
            )
        } else {
            String::new()
        }
    )?;
    writeln!(
        w,
        "answered in time: {} by SYN/ACK, {} by RST; late answers {}; retransmissions {}; unsolicited answers {}",
        c.answered_synack, c.answered_rst, c.late_answers, c.retransmissions, c.unsolicited
    )?;
    if c.untracked + c.evicted + c.out_of_order > 0 {
        writeln!(
            w,
            "bounds: {} SYNs untracked (delay queue full), {} DarkFlows evicted (table full); {} out-of-order timestamps",
            c.untracked, c.evicted, c.out_of_order
        )?;
    }
    if !r.ports.is_empty() {
        writeln!(
            w,
            "\n{:>6} {:>10} {:>10} {:>14}",
            "port", "darkflows", "syns", "unique_sources"
        )?;
        for p in r.ports.iter().take(10) {
            writeln!(
                w,
                "{:>6} {:>10} {:>10} {:>14}",
                p.port, p.darkflows, p.syns, p.unique_sources
            )?;
        }
        if r.ports.len() > 10 {
            writeln!(w, "  ... {} more ports", r.ports.len() - 10)?;
        }
        let share = |v: &[ashiato_darkflow::summary::AddrStat], k: u64| {
            v.iter().filter(|s| s.syns <= k).count() as f64 * 100.0 / v.len().max(1) as f64
        };
        writeln!(
            w,
            "\nsources {}: {:.1} % sent <= 20 SYNs; top {} ({} SYNs)",
            r.sources.len(),
            share(&r.sources, 20),
            r.sources[0].addr.map(|a| a.to_string()).unwrap_or_default(),
            r.sources[0].syns
        )?;
        writeln!(
            w,
            "destinations {}: {:.1} % got <= 10 SYNs; top {} ({} SYNs)",
            r.destinations.len(),
            share(&r.destinations, 10),
            r.destinations[0]
                .addr
                .map(|a| a.to_string())
                .unwrap_or_default(),
            r.destinations[0].syns
        )?;
    }
    Ok(())
}

fn synth(a: &SynthArgs) -> Result<()> {
    let cfg = SynthConfig {
        flows: a.flows,
        flows_per_sec: a.rate,
        timeout_ns: a.timeout,
        seed: a.seed,
        ipv6_percent: a.ipv6_percent,
        answered_percent: a.answered_percent,
        data_packets: a.data_packets,
        ..SynthConfig::default()
    };
    let f = File::create(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let mut w = PcapWriter::new(
        BufWriter::with_capacity(1 << 20, f),
        LinkType::Ethernet,
        65535,
    )?;
    let truth = generate(&cfg, |ts, frame| w.write(ts, frame))
        .with_context(|| format!("writing {}", a.out.display()))?;
    w.flush()?;
    if let Some(t) = &a.truth {
        write_set(t, &truth.dark)?;
    }
    eprintln!(
        "wrote {} packets, {} flows: {} DarkFlows ({} answered late), {} answered, {} unsolicited SYN/ACKs",
        truth.packets,
        a.flows,
        truth.dark.len(),
        truth.late.len(),
        truth.answered,
        truth.unsolicited
    );
    Ok(())
}
