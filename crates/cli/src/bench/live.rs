//! Live capture through a veth pair between two network namespaces: for each offered rate,
//! one namespace blasts synthetic frames, the other captures them with the probe's real path
//! (TPACKET_V3 ring → parse → digest → tables). Loss = 1 − recorded / sent.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use ashiato_capture::live::{LiveConfig, LiveSource};
use ashiato_capture::netns::{Netns, in_netns, spawn_in_netns, unique_name, veth_pair};
use ashiato_capture::send::RawSender;
use ashiato_digest::DEMO_KEY;
use ashiato_probe::pipeline::Ingestor;
use ashiato_tables::FilterKind;
use serde::Serialize;

use super::{STRIDE, bench_tables};
use crate::args::BenchArgs;

/// One offered rate.
#[derive(Serialize, Debug, Clone)]
pub struct LiveLine {
    /// Capture ring size.
    pub ring_bytes: u64,
    /// Rate asked of the sender (0 = as fast as it can).
    pub offered_pps: f64,
    /// Frames sent.
    pub sent: u64,
    /// Rate the sender achieved.
    pub achieved_pps: f64,
    /// Frames digested into the tables.
    pub recorded: u64,
    /// Kernel ring drops.
    pub kernel_drops: u64,
    /// 1 − recorded / sent.
    pub loss: f64,
}

/// Runs every `--live-rates` step.
pub fn run(a: &BenchArgs, frames: &[u8]) -> Result<Vec<LiveLine>> {
    let na = Netns::new(&unique_name("ashb"))
        .context("creating network namespaces for the live benchmark (needs root)")?;
    let nb = Netns::new(&unique_name("ashb"))?;
    let (ia, ib) = (unique_name("vba"), unique_name("vbb"));
    veth_pair(&na, &ia, &nb, &ib, None)?;
    let count = frames.len() / STRIDE;
    let batch: Vec<Vec<u8>> = (0..count.min(65_536))
        .map(|i| frames[i * STRIDE..i * STRIDE + 60].to_vec())
        .collect();
    let batch = Arc::new(batch);
    let mut out = Vec::new();
    let rings: Vec<Option<u32>> = if a.live_ring_kib.is_empty() {
        vec![None]
    } else {
        a.live_ring_kib.iter().map(|k| Some(*k)).collect()
    };
    let steps: Vec<(f64, Option<u32>)> = rings
        .iter()
        .flat_map(|ring| a.live_rates.iter().map(move |r| (*r, *ring)))
        .collect();
    for (pps, ring_kib) in steps {
        let cfg = match ring_kib {
            Some(kib) => LiveConfig {
                block_size: 64 * 1024,
                block_count: (kib / 64).max(2),
                ..LiveConfig::default()
            },
            None => LiveConfig::default(),
        };
        let ring_bytes = u64::from(cfg.block_size) * u64::from(cfg.block_count);
        let tables = bench_tables(FilterKind::Blocked)?;
        let stop = Arc::new(AtomicBool::new(false));
        let ready = Arc::new(AtomicBool::new(false));
        let (stop2, ready2, ib2) = (stop.clone(), ready.clone(), ib.clone());
        let capture = spawn_in_netns(nb.name(), move || -> Result<(u64, u64)> {
            let mut src = LiveSource::open(&ib2, &cfg)?;
            let mut ing = Ingestor::new(DEMO_KEY, &tables);
            ready2.store(true, Ordering::Release);
            let mut idle_after_stop = 0;
            loop {
                let n = src.poll_frames(Duration::from_millis(50), |f| ing.ingest(&f))?;
                if stop2.load(Ordering::Acquire) {
                    if n == 0 {
                        idle_after_stop += 1;
                    }
                    if idle_after_stop >= 3 {
                        break;
                    }
                }
            }
            ing.flush();
            let k = src.kernel_stats()?;
            Ok((ing.digested(), k.drops))
        })?;
        while !ready.load(Ordering::Acquire) {
            if capture.is_finished() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let (ia2, b2, total) = (ia.clone(), batch.clone(), a.live_frames);
        let report = in_netns(na.name(), move || -> Result<_> {
            let mut s = RawSender::open(&ia2)?;
            Ok(s.blast(&b2, total, pps as u64)?)
        })??;
        stop.store(true, Ordering::Release);
        let (recorded, drops) = capture
            .join()
            .map_err(|_| anyhow::anyhow!("capture thread panicked"))???;
        out.push(LiveLine {
            ring_bytes,
            offered_pps: pps,
            sent: report.sent,
            achieved_pps: report.achieved_pps,
            recorded,
            kernel_drops: drops,
            loss: 1.0 - (recorded.min(report.sent) as f64 / report.sent.max(1) as f64),
        });
    }
    Ok(out)
}
