//! `ashiato probe fpr` (measured vs theoretical false-positive rates) and `ashiato probe plan`
//! (sizing).
//!
//! The FPR experiment digests random IPv4 packets with the real keyed digest, inserts `n` of
//! them into a filter, asks about other random packets and counts the "seen" answers. Each
//! point asks enough questions to expect at least 2,000 false hits, so the measurement's
//! relative standard error is ≤ 2.2 % and a 10 % disagreement with theory is a real one.

use anyhow::Result;
use ashiato_digest::{DEMO_KEY, Key, V4_INVARIANT_LEN};
use ashiato_tables::rng::SplitMix64;
use ashiato_tables::{FilterKind, FilterParams, measure_fpr_with, theory};
use serde::Serialize;

use crate::CheckFailed;
use crate::args::{FprArgs, PlanArgs};
use crate::units::human_bytes;

/// Relative disagreement with theory that fails the check.
const TOLERANCE: f64 = 0.10;

/// One measured point.
#[derive(Serialize, Debug, Clone)]
pub struct FprPoint {
    /// Filter kind.
    pub kind: String,
    /// Bits.
    pub m_bits: u64,
    /// Hash functions.
    pub k: u32,
    /// Packets inserted.
    pub inserted: u64,
    /// Bits per inserted packet.
    pub bits_per_packet: f64,
    /// Other packets asked about.
    pub queries: u64,
    /// False "seen" answers.
    pub false_hits: u64,
    /// false_hits / queries.
    pub measured: f64,
    /// The kind's formula.
    pub theory: f64,
    /// |measured − theory| / theory.
    pub relative_error: f64,
}

/// Digest of a random IPv4 packet (random addresses, ports, id, protocol, length).
pub fn random_packet_digest(key: &Key, rng: &mut SplitMix64) -> u128 {
    let mut b = [0u8; V4_INVARIANT_LEN];
    let r1 = rng.next_u64().to_le_bytes();
    let r2 = rng.next_u64().to_le_bytes();
    let r3 = rng.next_u64().to_le_bytes();
    b[0] = 0x45;
    b[2..8].copy_from_slice(&r1[..6]);
    b[9] = r1[6];
    b[12..20].copy_from_slice(&r2);
    b[20..28].copy_from_slice(&r3);
    key.digest_invariant(&b).as_u128()
}

/// Measures one filter at one load with digests of random packets.
pub fn measure(params: FilterParams, n: u64, min_queries: u64, seed: u64) -> Result<FprPoint> {
    let key = DEMO_KEY;
    let th = theory::fpr(&params, n);
    let queries = ((2000.0 / th).ceil() as u64).clamp(min_queries, 400_000_000);
    let mut ins = SplitMix64::new(seed);
    // A different stream: these packets were never inserted.
    let mut q = SplitMix64::new(seed ^ 0x9e37_79b9_7f4a_7c15);
    let m = measure_fpr_with(
        params,
        n,
        queries,
        || random_packet_digest(&key, &mut ins),
        || random_packet_digest(&key, &mut q),
    )?;
    Ok(FprPoint {
        kind: params.kind.to_string(),
        m_bits: params.m_bits,
        k: params.k,
        inserted: n,
        bits_per_packet: params.m_bits as f64 / n as f64,
        queries,
        false_hits: m.false_positives,
        measured: m.measured,
        theory: m.theory,
        relative_error: m.relative_error().abs(),
    })
}

/// `ashiato probe fpr`
pub fn run_fpr(a: &FprArgs) -> Result<()> {
    let m = a.m_bits.next_multiple_of(512).max(512 * 64);
    // Loads from the field trial's heavy end (FPR ≈ 0.2) down to typical sizing (≈ 1e-3).
    let loads: [(f64, u32); 6] = [
        (2.0, 1),
        (3.0, 2),
        (4.0, 3),
        (6.0, 4),
        (10.0, 7),
        (14.0, 10),
    ];
    let mut points = Vec::new();
    for kind in FilterKind::ALL {
        for (i, (bpi, k)) in loads.iter().enumerate() {
            let n = (m as f64 / bpi) as u64;
            let params = FilterParams {
                kind,
                m_bits: m,
                k: *k,
            };
            let p = measure(params, n, a.queries, a.seed.wrapping_add(i as u64))?;
            if !a.json {
                println!(
                    "{:<8} m={:<9} k={:<2} n={:<9} {:>5.1} bits/pkt  queries={:<10} measured={:<10.4e} theory={:<10.4e} rel.err={:>5.2}%",
                    p.kind,
                    p.m_bits,
                    p.k,
                    p.inserted,
                    p.bits_per_packet,
                    p.queries,
                    p.measured,
                    p.theory,
                    100.0 * p.relative_error
                );
            }
            points.push(p);
        }
    }
    let worst = points.iter().map(|p| p.relative_error).fold(0.0, f64::max);
    if a.json {
        println!(
            "{}",
            serde_json::to_string(&serde_json::json!({
                "tolerance": TOLERANCE, "worst_relative_error": worst, "points": points
            }))?
        );
    } else {
        println!(
            "worst relative error {:.2}% (tolerance {:.0}%)",
            100.0 * worst,
            100.0 * TOLERANCE
        );
    }
    if worst > TOLERANCE {
        return Err(CheckFailed(format!(
            "measured FPR differs from theory by {:.1}% (> {:.0}%)",
            100.0 * worst,
            100.0 * TOLERANCE
        ))
        .into());
    }
    Ok(())
}

/// One kind's sizing.
#[derive(Serialize, Debug)]
pub struct PlanRow {
    /// Filter kind.
    pub kind: String,
    /// Packets per epoch the table is sized for.
    pub packets_per_epoch: u64,
    /// Bits per table.
    pub m_bits: u64,
    /// Hash functions.
    pub k: u32,
    /// m / packets.
    pub bits_per_packet: f64,
    /// Bytes per table.
    pub table_bytes: u64,
    /// Tables held: retention epochs + 2 spare.
    pub tables: u64,
    /// RAM for the whole retention.
    pub memory_bytes: u64,
    /// FPR at the sized load.
    pub fpr: f64,
    /// Retention one GiB of RAM buys at this rate, in seconds.
    pub retention_per_gib_s: f64,
}

/// Packets one epoch holds at `pps` (at least one): what each table is sized for.
pub fn packets_per_epoch(pps: f64, epoch_ns: u64) -> u64 {
    (pps * epoch_ns as f64 / 1e9).ceil().max(1.0) as u64
}

/// Sizing for both kinds.
pub fn plan_rows(pps: f64, epoch_ns: u64, retention_ns: u64, fpr: f64) -> Vec<PlanRow> {
    let n = packets_per_epoch(pps, epoch_ns);
    let epochs = retention_ns.div_ceil(epoch_ns);
    FilterKind::ALL
        .iter()
        .map(|&kind| {
            let p = theory::plan(kind, n, fpr);
            let gib_epochs = ((1u64 << 30) / p.bytes()).saturating_sub(2);
            PlanRow {
                kind: kind.to_string(),
                packets_per_epoch: n,
                m_bits: p.m_bits,
                k: p.k,
                bits_per_packet: p.m_bits as f64 / n as f64,
                table_bytes: p.bytes(),
                tables: epochs + 2,
                memory_bytes: (epochs + 2) * p.bytes(),
                fpr: theory::fpr(&p, n),
                retention_per_gib_s: gib_epochs as f64 * epoch_ns as f64 / 1e9,
            }
        })
        .collect()
}

/// `ashiato probe plan`
pub fn run_plan(a: &PlanArgs) -> Result<()> {
    // Each value was range-checked when parsed; only the bit rate needs another flag.
    let pps = a
        .rate
        .packets_per_sec(a.mean_packet_size)
        .map_err(|e| crate::UsageError(format!("{e:#}")))?;
    let (epoch_ns, retention_ns) = (a.epoch, a.retention);
    let rows = plan_rows(pps, epoch_ns, retention_ns, a.fpr);
    let mem = crate::sysmem::this_machine().ok();
    let fits: Vec<Option<crate::sysmem::Fit>> = rows
        .iter()
        .map(|r| mem.map(|m| crate::sysmem::fit(r.memory_bytes, m)))
        .collect();
    if a.json {
        println!(
            "{}",
            serde_json::to_string(&serde_json::json!({
                "rate_pps": pps, "epoch_ns": epoch_ns, "retention_ns": retention_ns,
                "target_fpr": a.fpr, "plans": rows,
                "machine_memory_bytes": mem.map(|m| m.total),
                "fits_machine": fits.iter().map(|f| !matches!(f, Some(crate::sysmem::Fit::TooBig(_)))).collect::<Vec<_>>(),
            }))?
        );
        return Ok(());
    }
    println!(
        "{:.0} packets/s, epochs of {:.3} s kept {:.0} s, FPR ≤ {:e} per table",
        pps,
        epoch_ns as f64 / 1e9,
        retention_ns as f64 / 1e9,
        a.fpr
    );
    for r in &rows {
        println!(
            "{:<8} k={:<2} {:>6.2} bits/packet ({:.2} bytes)  table {} x {} = {}  FPR {:.3e}  1 GiB holds {:.1} s",
            r.kind,
            r.k,
            r.bits_per_packet,
            r.bits_per_packet / 8.0,
            human_bytes(r.table_bytes as f64),
            r.tables,
            human_bytes(r.memory_bytes as f64),
            r.fpr,
            r.retention_per_gib_s
        );
    }
    for (r, fit) in rows.iter().zip(&fits) {
        match fit {
            Some(crate::sysmem::Fit::TooBig(m)) => {
                println!("warning: {}: {m}; `probe run` would refuse it", r.kind)
            }
            Some(crate::sysmem::Fit::Tight(m)) => println!("note: {}: {m}", r.kind),
            _ => {}
        }
    }
    Ok(())
}
