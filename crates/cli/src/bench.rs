//! `ashiato probe bench`: the probe's hot paths, measured.
//!
//! 1. Packets in memory → parse → digest → insert, one core and then all cores. Tables are
//!    sized for 10 GbE of minimum-size frames (14.88 Mpps, 1 s epochs, FPR 1e-3) with the
//!    field trial's best retention (4 s) so that they are far larger than the CPU caches.
//! 2. The parts alone (parse, digest, insert) to show where the time goes.
//! 3. A capture file in the page cache → tables, one core; optionally side by side with
//!    `tcpdump -r FILE -w /dev/null` (libpcap reading the same file) in the same run.
//! 4. Queries: digest-epoch tests per second against epochs in memory and against the same
//!    epochs in spill files, batches of 1, 64 and 4096 digests.
//! 5. Live capture through a veth pair between two network namespaces (see [`crate::bench`]
//!    `--live-rates`): offered rate vs frames recorded, kernel drops and loss.

use std::hint::black_box;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use ashiato_capture::file::FileSource;
use ashiato_digest::DEMO_KEY;
use ashiato_probe::pipeline::Ingestor;
use ashiato_tables::rng::SplitMix64;
use ashiato_tables::{DigestTables, FilterKind, TablesConfig, theory};
use ashiato_wire::capfile::PcapWriter;
use ashiato_wire::packet::TcpFlags;
use ashiato_wire::{Frame, LinkType, build};
use serde::Serialize;

use crate::args::BenchArgs;

/// Frame stride in the in-memory packet buffer.
const STRIDE: usize = 64;

/// One measured line.
#[derive(Serialize, Debug, Clone)]
pub struct BenchLine {
    /// What was measured.
    pub name: String,
    /// Threads used.
    pub threads: usize,
    /// Packets processed.
    pub packets: u64,
    /// Wall time.
    pub seconds: f64,
    /// Million packets per second.
    pub mpps: f64,
}

fn line(name: &str, threads: usize, packets: u64, secs: f64) -> BenchLine {
    BenchLine {
        name: name.to_string(),
        threads,
        packets,
        seconds: secs,
        mpps: packets as f64 / secs / 1e6,
    }
}

/// `count` distinct minimum-size Ethernet/IPv4/TCP SYN frames (60 bytes), each at a 64-byte
/// stride in one buffer.
pub fn synthetic_frames(count: usize, seed: u64) -> Vec<u8> {
    let mut rng = SplitMix64::new(seed);
    let mut buf = vec![0u8; count * STRIDE];
    for i in 0..count {
        let r = rng.next_u64();
        let src = Ipv4Addr::from((r >> 32) as u32);
        let dst = Ipv4Addr::new(192, 0, 2, (r & 0xff) as u8);
        let tcp = build::tcp(
            src.into(),
            dst.into(),
            (r >> 8) as u16 | 1024,
            [22, 80, 443, 445, 3389][i % 5],
            r as u32,
            0,
            TcpFlags::SYN,
            1024,
            &[],
        );
        let ip = build::ipv4(src, dst, 6, 64, 0, (r >> 16) as u16, &tcp);
        let frame = build::ethernet([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], 0x0800, &ip);
        let f = &mut buf[i * STRIDE..i * STRIDE + STRIDE];
        let n = frame.len().min(60);
        f[..n].copy_from_slice(&frame[..n]);
    }
    buf
}

fn bench_tables(kind: FilterKind) -> Result<Arc<DigestTables>> {
    let params = theory::plan(kind, 14_880_952, 1e-3);
    Ok(DigestTables::new(TablesConfig {
        epoch_ns: 1_000_000_000,
        retention_epochs: 4,
        params,
        table_id: DEMO_KEY.table_id(),
        spill: None,
        prefault: true,
    })?)
}

/// Runs `inserts` packets from `frames` through an ingestor, timestamps advancing at
/// 14.88 Mpps of simulated time so that epochs rotate as on a saturated 10 GbE link.
fn drive(ing: &mut Ingestor, frames: &[u8], inserts: u64, t0: u64) {
    let count = frames.len() / STRIDE;
    let mut ts = t0;
    let mut i = 0usize;
    for _ in 0..inserts {
        let f = Frame {
            ts_nanos: ts,
            link: LinkType::Ethernet,
            orig_len: 60,
            data: &frames[i * STRIDE..i * STRIDE + 60],
        };
        ing.ingest(&f);
        ts += 67; // 1e9 / 14.88e6
        i += 1;
        if i == count {
            i = 0;
        }
    }
    ing.flush();
}

fn memory_lines(a: &BenchArgs, frames: &[u8]) -> Result<Vec<BenchLine>> {
    let mut out = Vec::new();
    let count = frames.len() / STRIDE;
    let t0 = 1_700_000_000_000_000_000u64;
    // Parts.
    let start = Instant::now();
    let mut acc = 0usize;
    for i in 0..a.inserts {
        let j = (i as usize) % count;
        if let Ok(p) =
            ashiato_wire::packet::parse(LinkType::Ethernet, &frames[j * STRIDE..j * STRIDE + 60])
        {
            acc += p.ip.payload().len();
        }
    }
    black_box(acc);
    out.push(line(
        "parse only",
        1,
        a.inserts,
        start.elapsed().as_secs_f64(),
    ));
    let start = Instant::now();
    let mut x = 0u128;
    for i in 0..a.inserts {
        let j = (i as usize) % count;
        if let Ok(d) =
            DEMO_KEY.digest_frame(LinkType::Ethernet, &frames[j * STRIDE..j * STRIDE + 60])
        {
            x ^= d.as_u128();
        }
    }
    black_box(x);
    out.push(line(
        "parse + digest",
        1,
        a.inserts,
        start.elapsed().as_secs_f64(),
    ));
    for kind in FilterKind::ALL {
        let tables = bench_tables(kind)?;
        let mut w = tables.writer();
        let mut rng = SplitMix64::new(7);
        let start = Instant::now();
        for i in 0..a.inserts {
            let h = u128::from(rng.next_u64()) | (u128::from(rng.next_u64()) << 64);
            w.insert(t0 + i * 67, h);
        }
        out.push(line(
            &format!("insert only ({kind})"),
            1,
            a.inserts,
            start.elapsed().as_secs_f64(),
        ));
    }
    // Whole path, one core, both kinds.
    for kind in FilterKind::ALL {
        let tables = bench_tables(kind)?;
        let mut ing = Ingestor::new(DEMO_KEY, &tables);
        let start = Instant::now();
        drive(&mut ing, frames, a.inserts, t0);
        let secs = start.elapsed().as_secs_f64();
        anyhow::ensure!(ing.digested() == a.inserts, "bench frames must all digest");
        out.push(line(
            &format!("parse + digest + insert ({kind})"),
            1,
            a.inserts,
            secs,
        ));
    }
    // All cores, shared tables, atomic inserts.
    let threads = a
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if threads > 1 {
        for kind in FilterKind::ALL {
            let tables = bench_tables(kind)?;
            let per = a.inserts;
            let start = Instant::now();
            std::thread::scope(|s| {
                for t in 0..threads {
                    let tables = tables.clone();
                    let chunk = count / threads;
                    let part = &frames[t * chunk * STRIDE..(t + 1) * chunk * STRIDE];
                    s.spawn(move || {
                        let mut ing = Ingestor::new(DEMO_KEY, &tables);
                        ing.set_concurrent(true);
                        drive(&mut ing, part, per, t0);
                    });
                }
            });
            let secs = start.elapsed().as_secs_f64();
            out.push(line(
                &format!("parse + digest + insert ({kind}, shared tables)"),
                threads,
                per * threads as u64,
                secs,
            ));
        }
    }
    Ok(out)
}

/// Writes `n` synthetic frames as a nanosecond pcap file (cycling through `frames`).
pub fn write_synthetic_pcap(path: &Path, frames: &[u8], n: u64) -> Result<()> {
    let f = std::fs::File::create(path).with_context(|| format!("{}", path.display()))?;
    let mut w = PcapWriter::new(
        std::io::BufWriter::with_capacity(1 << 20, f),
        LinkType::Ethernet,
        65535,
    )?;
    let count = frames.len() / STRIDE;
    let mut ts = 1_700_000_000_000_000_000u64;
    for i in 0..n {
        let j = (i as usize) % count;
        w.write(ts, &frames[j * STRIDE..j * STRIDE + 60])?;
        ts += 67;
    }
    w.into_inner().flush()?;
    Ok(())
}

fn file_lines(a: &BenchArgs, frames: &[u8]) -> Result<Vec<BenchLine>> {
    let mut out = Vec::new();
    let tmp = std::env::temp_dir().join(format!("ashiato-bench-{}", std::process::id()));
    let (path, cleanup): (PathBuf, bool) = match &a.pcap {
        Some(p) => (p.clone(), false),
        None => {
            std::fs::create_dir_all(&tmp)?;
            let p = tmp.join("synthetic.pcap");
            write_synthetic_pcap(&p, frames, a.file_packets)?;
            (p, true)
        }
    };
    // Warm the page cache, and count.
    let mut n = 0u64;
    let mut src = FileSource::open(&path)?;
    while src.next_frame()?.is_some() {
        n += 1;
    }
    let start = Instant::now();
    let mut src = FileSource::open(&path)?;
    let mut k = 0u64;
    while let Some(f) = src.next_frame()? {
        k += u64::from(f.data.len() as u32 > 0);
    }
    black_box(k);
    out.push(line(
        "capture file read only",
        1,
        n,
        start.elapsed().as_secs_f64(),
    ));
    let tables = bench_tables(FilterKind::Blocked)?;
    let mut ing = Ingestor::new(DEMO_KEY, &tables);
    let start = Instant::now();
    let mut src = FileSource::open(&path)?;
    while let Some(f) = src.next_frame()? {
        ing.ingest(&f);
    }
    ing.flush();
    out.push(line(
        "capture file → tables (blocked)",
        1,
        n,
        start.elapsed().as_secs_f64(),
    ));
    if a.vs_tcpdump {
        let start = Instant::now();
        let st = std::process::Command::new("tcpdump")
            .args(["-r"])
            .arg(&path)
            .args(["-w", "/dev/null"])
            .stderr(std::process::Stdio::null())
            .status();
        match st {
            Ok(s) if s.success() => out.push(line(
                "tcpdump -r FILE -w /dev/null (libpcap read + write)",
                1,
                n,
                start.elapsed().as_secs_f64(),
            )),
            Ok(s) => eprintln!("tcpdump failed: {s}"),
            Err(e) => eprintln!("tcpdump not run: {e}"),
        }
    }
    if cleanup {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    Ok(out)
}

/// `ashiato probe bench`
pub fn run(a: &BenchArgs) -> Result<()> {
    let frames = synthetic_frames(a.packets.max(1024), 42);
    let mut lines = memory_lines(a, &frames)?;
    lines.extend(file_lines(a, &frames)?);
    lines.extend(query::lines()?);
    let live = if a.live_rates.is_empty() {
        Vec::new()
    } else {
        crate::bench::live::run(a, &frames)?
    };
    if a.json {
        println!(
            "{}",
            serde_json::to_string(&serde_json::json!({ "lines": lines, "live": live }))?
        );
    } else {
        for l in &lines {
            println!(
                "{:<58} threads={:<2} {:>11} pkts {:>7.3} s {:>8.2} Mpps",
                l.name, l.threads, l.packets, l.seconds, l.mpps
            );
        }
        for l in &live {
            println!(
                "live veth: ring {:>10} offered {:>8.0} pps ({:>8} sent at {:>8.0} pps) recorded {:>8} kernel drops {:>7} loss {:>7.4}%",
                crate::units::human_bytes(l.ring_bytes as f64),
                l.offered_pps,
                l.sent,
                l.achieved_pps,
                l.recorded,
                l.kernel_drops,
                100.0 * l.loss
            );
        }
    }
    Ok(())
}

pub mod live;
mod query;
