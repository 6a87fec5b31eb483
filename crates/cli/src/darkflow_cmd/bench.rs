//! `ashiato darkflow bench`: the figures of docs/benchmarks.md for DarkFlow.
//!
//! 1. Offline cost on one core, on a gateway-like synthetic capture (mostly answered
//!    sessions with data, a share of unanswered SYNs; known answer) in page cache: CPU
//!    seconds (user + sys, from the kernel's accounting of each child process, since argus
//!    sleeps before it exits) and peak RSS of `ashiato darkflow --pcap F` with the summary
//!    only and with `--json` to /dev/null, and of `argus -r F -w OUT` when installed (with
//!    `--vs-argus`, also `ra -n -r OUT`); every child inherits the bench's single-CPU
//!    affinity. The detector's own rate (read + parse + detect, in process, thread CPU
//!    time) is checked against the generator's truth.
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
    /// CPU seconds, user + sys.
    cpu_secs: f64,
    mpps: f64,
    /// Peak resident memory of the child process (none for in-process figures).
    max_rss_mib: Option<f64>,
}

/// The capture the rates are measured on.
#[derive(Serialize)]
struct CaptureLine {
    flows: u64,
    answered_percent: u8,
    data_packets: u32,
    packets: u64,
    darkflows: usize,
    late_answers: usize,
    answered: u64,
}

/// The ratios the figures are quoted by (the machine is noisy; ratios of one run are not).
#[derive(Serialize)]
struct Ratios {
    json_over_summary: f64,
    argus_over_summary: Option<f64>,
    argus_over_json: Option<f64>,
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

/// Pins the calling thread (and the children it starts) to one CPU: the last one it may
/// run on, so `taskset -c N ashiato darkflow bench` measures on CPU N.
fn pin_last_cpu() -> Option<usize> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; the calls read or fill only it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return None;
        }
        let cpu = (0..libc::CPU_SETSIZE as usize)
            .rev()
            .find(|&c| libc::CPU_ISSET(c, &set))?;
        let mut one: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut one);
        (libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &one) == 0)
            .then_some(cpu)
    }
}

/// CPU time of the calling thread (user + sys), in seconds.
fn thread_cpu_secs() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
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

/// Writes the gateway-like synthetic capture; returns its description and truth set.
fn write_capture(a: &DarkflowBenchArgs, path: &Path) -> Result<(CaptureLine, BTreeSet<FlowId>)> {
    let cfg = SynthConfig {
        flows: a.flows,
        flows_per_sec: 20_000,
        seed: 7,
        answered_percent: Some(a.answered_percent),
        data_packets: a.data_packets,
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
    let line = CaptureLine {
        flows: a.flows,
        answered_percent: a.answered_percent,
        data_packets: a.data_packets,
        packets: truth.packets,
        darkflows: truth.dark.len(),
        late_answers: truth.late.len(),
        answered: truth.answered,
    };
    Ok((line, truth.dark))
}

fn rate(what: &str, packets: u64, cpu_secs: f64, max_rss_mib: Option<f64>) -> RateLine {
    RateLine {
        what: what.into(),
        packets,
        cpu_secs,
        mpps: packets as f64 / cpu_secs / 1e6,
        max_rss_mib,
    }
}

/// Runs `cmd` to completion with its output discarded; returns its CPU seconds (user + sys)
/// and peak RSS in MiB, from the kernel's accounting of that one child.
fn child_cpu(cmd: &mut Command) -> Result<(f64, f64)> {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("running {cmd:?}"))?;
    let pid = libc::pid_t::try_from(child.id()).context("child pid")?;
    let mut status = 0;
    // SAFETY: zeroed rusage is valid; wait4 fills it and `status` for our own child, which
    // `child` will not wait for again (std only waits when asked).
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    if r != pid {
        bail!("waiting for {cmd:?}: {}", std::io::Error::last_os_error());
    }
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        bail!("{cmd:?} failed (wait status {status})");
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok((
        secs(ru.ru_utime) + secs(ru.ru_stime),
        ru.ru_maxrss as f64 / 1024.0,
    ))
}

/// The rates on the mixed capture and their ratios.
struct Rates {
    capture: CaptureLine,
    lines: Vec<RateLine>,
    ratios: Ratios,
}

fn offline_rates(a: &DarkflowBenchArgs, dir: &Path) -> Result<Rates> {
    let path = dir.join("darkflow-bench.pcap");
    let (capture, truth) = write_capture(a, &path)?;
    let packets = capture.packets;
    let paths = [path.clone()];
    let mut lines = Vec::new();
    // Twice: the first run warms the page cache; the second is measured.
    let mut secs = f64::MAX;
    for _ in 0..2 {
        let mut det = Detector::new(Config::default());
        let mut dark = 0u64;
        let start = thread_cpu_secs();
        let (st, r) = offline::run(
            &paths,
            &mut det,
            &mut |e| dark += u64::from(matches!(e, Event::Dark { .. })),
            |_, _| {},
        );
        r?;
        secs = secs.min(thread_cpu_secs() - start);
        if st.frames != packets || dark != truth.len() as u64 {
            bail!(
                "bench run disagrees with the capture: {} frames of {packets}, {dark} DarkFlows of {}",
                st.frames,
                truth.len()
            );
        }
    }
    lines.push(rate(
        "detector in process (read + parse + detect)",
        packets,
        secs,
        None,
    ));
    let exe = std::env::current_exe().context("finding this program")?;
    let ours = |json: bool| {
        let mut c = Command::new(&exe);
        c.arg("darkflow")
            .arg("--pcap")
            .arg(&path)
            .arg("--no-progress");
        if json {
            c.arg("--json");
        }
        c
    };
    let (summary, summary_rss) = child_cpu(&mut ours(false))?;
    lines.push(rate(
        "ashiato darkflow --pcap F",
        packets,
        summary,
        Some(summary_rss),
    ));
    let (json, json_rss) = child_cpu(&mut ours(true))?;
    lines.push(rate(
        "ashiato darkflow --pcap F --json >/dev/null",
        packets,
        json,
        Some(json_rss),
    ));
    let mut argus_secs = None;
    if which("argus") {
        let out = dir.join("bench.argus");
        let _ = std::fs::remove_file(&out);
        let mut argus = Command::new("argus");
        argus.arg("-r").arg(&path).arg("-w").arg(&out);
        let (t_argus, rss) = child_cpu(&mut argus)?;
        lines.push(rate("argus -r F -w OUT", packets, t_argus, Some(rss)));
        argus_secs = Some(t_argus);
        if a.vs_argus {
            if !which("ra") {
                bail!("--vs-argus: ra is not installed (Debian: argus-client)");
            }
            let mut ra = Command::new("ra");
            ra.arg("-n").arg("-r").arg(&out);
            let (t_ra, _) = child_cpu(&mut ra)?;
            lines.push(rate("argus + ra -n -r OUT", packets, t_argus + t_ra, None));
        }
    } else if a.vs_argus {
        bail!("--vs-argus: argus is not installed (Debian: argus-server argus-client)");
    }
    let ratios = Ratios {
        json_over_summary: json / summary,
        argus_over_summary: argus_secs.map(|t| t / summary),
        argus_over_json: argus_secs.map(|t| t / json),
    };
    Ok(Rates {
        capture,
        lines,
        ratios,
    })
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
    let rates = offline_rates(a, &dir);
    if cleanup {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let rates = rates?;
    let sizes = Detector::entry_sizes();
    // Room for the whole flood first (the bytes per pending SYN at scale), then the bound.
    let floods = if a.flood > 0 {
        vec![
            flood(a.flood, a.flood as usize),
            flood(a.flood, a.flood_bound),
        ]
    } else {
        Vec::new()
    };
    if a.json {
        let v = serde_json::json!({"cpu": cpu, "capture": rates.capture, "rates": rates.lines,
            "ratios": rates.ratios, "entry_bytes": sizes, "flood": floods});
        println!("{v}");
        return Ok(());
    }
    let c = &rates.capture;
    println!(
        "capture: {} flows ({} % answered, {} data packets a session), {} packets; {} DarkFlows ({} answered late), {} answered",
        c.flows,
        c.answered_percent,
        c.data_packets,
        c.packets,
        c.darkflows,
        c.late_answers,
        c.answered
    );
    println!(
        "CPU seconds (user + sys), one core{}:",
        cpu.map(|c| format!(" (cpu {c})")).unwrap_or_default()
    );
    for r in &rates.lines {
        println!(
            "  {:<46} {:>8.3} s {:>8.2} Mpps{}",
            r.what,
            r.cpu_secs,
            r.mpps,
            r.max_rss_mib
                .map(|m| format!(" {m:>8.1} MiB RSS"))
                .unwrap_or_default()
        );
    }
    let q = &rates.ratios;
    print!("  ratios: json / summary {:.2} x", q.json_over_summary);
    if let (Some(s), Some(j)) = (q.argus_over_summary, q.argus_over_json) {
        print!("; argus / ours {s:.1} x (summary), {j:.1} x (json)");
    }
    println!();
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
