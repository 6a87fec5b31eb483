//! `ashiato darkflow bench`: the figures of docs/benchmarks.md for DarkFlow.
//!
//! 1. Offline rate on one core: a synthetic capture (known answer) in page cache, read,
//!    parsed and run through the detector; with `--vs-argus`, `argus -r FILE -w OUT` then
//!    `ra -r OUT -n` on the same file in the same run, both pinned to the same core.
//! 2. Memory: bytes per pending SYN and per DarkFlow (layout), and a SYN flood of `--flood`
//!    distinct SYNs inside T: once with room for all of them, once against `--flood-bound`,
//!    with the heap the tables hold and the growth of the process's resident memory.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use ashiato_darkflow::detector::{NS, Segment};
use ashiato_darkflow::flow::Tuple;
use ashiato_darkflow::synth::{SynthConfig, generate};
use ashiato_darkflow::{Config, Detector, Event, FlowId};
use ashiato_darkflow_shells::offline;
use ashiato_wire::LinkType;
use ashiato_wire::capfile::PcapWriter;
use ashiato_wire::packet::TcpFlags;
use serde::Serialize;

use crate::args::DarkflowBenchArgs;

#[derive(Serialize)]
struct RateLine {
    what: String,
    packets: u64,
    secs: f64,
    mpps: f64,
}

#[derive(Serialize)]
struct FloodLine {
    syns: u64,
    bound: usize,
    tracked: u64,
    untracked: u64,
    table_heap_mib: f64,
    table_bound_mib: f64,
    bytes_per_pending: f64,
    rss_mib: f64,
    mpps: f64,
}

/// Pins the calling thread to one CPU (the last one), so rates are per core.
fn pin_last_cpu() -> Option<usize> {
    let n = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let cpu = n - 1;
    // SAFETY: a zeroed cpu_set_t is a valid empty set; the call only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        (libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0)
            .then_some(cpu)
    }
}

/// Resident set size of this process now, in bytes (VmRSS).
fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

fn which(cmd: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(cmd).is_file()))
}

/// Writes the synthetic capture; returns (packets, truth set).
fn write_capture(path: &Path, flows: u64) -> Result<(u64, BTreeSet<FlowId>)> {
    let cfg = SynthConfig {
        flows,
        flows_per_sec: 20_000,
        seed: 7,
        ..SynthConfig::default()
    };
    let f = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = PcapWriter::new(
        BufWriter::with_capacity(1 << 20, f),
        LinkType::Ethernet,
        65535,
    )?;
    let truth = generate(&cfg, |ts, frame| w.write(ts, frame))?;
    w.flush()?;
    Ok((truth.packets, truth.dark))
}

fn rate(what: &str, packets: u64, secs: f64) -> RateLine {
    RateLine {
        what: what.into(),
        packets,
        secs,
        mpps: packets as f64 / secs / 1e6,
    }
}

fn time_cmd(cmd: &mut Command) -> Result<f64> {
    let start = Instant::now();
    let st = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .with_context(|| format!("running {cmd:?}"))?;
    if !st.success() {
        bail!("{cmd:?} failed: {st}");
    }
    Ok(start.elapsed().as_secs_f64())
}

fn offline_rates(a: &DarkflowBenchArgs, dir: &Path, cpu: Option<usize>) -> Result<Vec<RateLine>> {
    let path = dir.join("darkflow-bench.pcap");
    let (packets, truth) = write_capture(&path, a.flows)?;
    let paths = [path.clone()];
    let mut lines = Vec::new();
    // Twice: the first run warms the page cache; the second is measured.
    let mut secs = f64::MAX;
    for _ in 0..2 {
        let mut det = Detector::new(Config::default());
        let mut dark = 0u64;
        let start = Instant::now();
        let (st, r) = offline::run(
            &paths,
            &mut det,
            &mut |e| dark += u64::from(matches!(e, Event::Dark { .. })),
            |_, _| {},
        );
        r?;
        secs = secs.min(start.elapsed().as_secs_f64());
        if st.frames != packets || dark != truth.len() as u64 {
            bail!(
                "bench run disagrees with the capture: {} frames of {packets}, {dark} DarkFlows of {}",
                st.frames,
                truth.len()
            );
        }
    }
    lines.push(rate(
        "ashiato darkflow (read + parse + detect)",
        packets,
        secs,
    ));
    if a.vs_argus {
        if !which("argus") || !which("ra") {
            bail!("--vs-argus: argus and ra are not installed (Debian: argus-server argus-client)");
        }
        let out = dir.join("bench.argus");
        let pin = |c: &mut Command| {
            if let (Some(cpu), true) = (cpu, which("taskset")) {
                let mut t = Command::new("taskset");
                t.arg("-c")
                    .arg(cpu.to_string())
                    .arg(c.get_program())
                    .args(c.get_args());
                t
            } else {
                std::mem::replace(c, Command::new("true"))
            }
        };
        let _ = std::fs::remove_file(&out);
        let mut argus = Command::new("argus");
        argus.arg("-r").arg(&path).arg("-w").arg(&out);
        let t_argus = time_cmd(&mut pin(&mut argus))?;
        let mut ra = Command::new("ra");
        ra.arg("-n").arg("-r").arg(&out);
        let t_ra = time_cmd(&mut pin(&mut ra))?;
        lines.push(rate("argus -r FILE -w OUT", packets, t_argus));
        lines.push(rate("argus + ra -n -r OUT", packets, t_argus + t_ra));
    }
    Ok(lines)
}

fn flood(syns: u64, bound: usize) -> FloodLine {
    let mut det = Detector::new(Config {
        max_pending: bound,
        ..Config::default()
    });
    let rss0 = rss();
    let t0 = 1_767_225_600 * NS;
    let start = Instant::now();
    let mut sink = |_e: Event| {};
    for i in 0..syns {
        // Spoofed sources, one SYN each, all inside one T: every one stays pending.
        let tuple = Tuple {
            src: 0x0a00_0000 ^ (i as u32).wrapping_mul(2_654_435_761),
            dst: 0xc000_0201,
            sport: (i >> 32) as u16 ^ 1024,
            dport: 25565,
        };
        det.segment_v4(
            Segment {
                ts: t0 + i * 100,
                tuple,
                flags: TcpFlags::SYN,
            },
            &mut sink,
        );
    }
    let secs = start.elapsed().as_secs_f64();
    let c = det.counters();
    let heap = det.heap_bytes();
    FloodLine {
        syns,
        bound,
        tracked: c.pending,
        untracked: c.untracked,
        table_heap_mib: heap as f64 / (1 << 20) as f64,
        table_bound_mib: det.memory_bound() as f64 / (1 << 20) as f64,
        bytes_per_pending: heap as f64 / c.pending.max(1) as f64,
        rss_mib: rss().saturating_sub(rss0) as f64 / (1 << 20) as f64,
        mpps: syns as f64 / secs / 1e6,
    }
}

/// `ashiato darkflow bench`
pub fn run(a: &DarkflowBenchArgs) -> Result<()> {
    if a.flood > u64::from(u32::MAX) {
        bail!("--flood at most {}", u32::MAX);
    }
    let cpu = pin_last_cpu();
    let tmp = std::env::temp_dir().join(format!("ashiato-darkflow-bench-{}", std::process::id()));
    let (dir, cleanup): (PathBuf, bool) = match &a.dir {
        Some(d) => (d.clone(), false),
        None => (tmp, true),
    };
    std::fs::create_dir_all(&dir)?;
    let rates = offline_rates(a, &dir, cpu);
    if cleanup {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let rates = rates?;
    let sizes = Detector::entry_sizes();
    // Room for the whole flood first (the bytes per pending SYN at scale), then the bound.
    let floods = [
        flood(a.flood, a.flood as usize),
        flood(a.flood, a.flood_bound),
    ];
    if a.json {
        let v =
            serde_json::json!({"cpu": cpu, "rates": rates, "entry_bytes": sizes, "flood": floods});
        println!("{v}");
        return Ok(());
    }
    println!(
        "offline, one core{}:",
        cpu.map(|c| format!(" (cpu {c})")).unwrap_or_default()
    );
    for r in &rates {
        println!(
            "  {:<44} {:>10} packets {:>8.3} s {:>8.2} Mpps",
            r.what, r.packets, r.secs, r.mpps
        );
    }
    if rates.len() >= 3 {
        println!(
            "  ratio: {:.1} x argus alone, {:.1} x argus + ra",
            rates[0].mpps / rates[1].mpps,
            rates[0].mpps / rates[2].mpps
        );
    }
    println!(
        "entry bytes (slot + index share): pending SYN {:.1} (IPv4) / {:.1} (IPv6); DarkFlow {:.1} / {:.1}",
        sizes.pending_v4, sizes.pending_v6, sizes.flow_v4, sizes.flow_v6
    );
    for f in &floods {
        println!(
            "SYN flood {} SYNs, bound {}: {} pending, {} untracked; tables {:.1} MiB (bound {:.1} MiB, {:.1} B per pending SYN); RSS +{:.1} MiB; {:.2} Mpps",
            f.syns,
            f.bound,
            f.tracked,
            f.untracked,
            f.table_heap_mib,
            f.table_bound_mib,
            f.bytes_per_pending,
            f.rss_mib,
            f.mpps
        );
    }
    Ok(())
}
