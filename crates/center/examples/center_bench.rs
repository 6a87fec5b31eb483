//! Figures for docs/benchmarks.md §15: what durability costs the center and what a restart
//! takes, and the prefix-to-AS table at the size of a full Routeviews table.
//!
//! ```sh
//! cargo run -p ashiato-center --release --example center_bench [-- INCIDENTS]
//! ```
//!
//! INCIDENTS (default 20) incidents of the generated botnet (100 bots, 30 % of a benign
//! population matching by coincidence: about 270 reports of about 60 records each) are
//! written report by report to a fresh SQLite store through the center's store calls (each
//! one committed with `synchronous=FULL`, as the center does before it answers), then a
//! center is started on that store (the reload), and one incident is ranked.

use std::collections::HashSet;
use std::time::Instant;

use ashiato_center::asn::AsnTable;
use ashiato_center::ledger::{Ledger, row_of};
use ashiato_center::views::{RankFilter, Script, ViewCtx, render};
use ashiato_center::{Center, CenterConfig};
use ashiato_hosttrace::botnet::{INCIDENT, generate};
use ashiato_hosttrace::claimlist::CenterList;
use ashiato_store::{HostClaim, Store};

fn peak_rss_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let incidents: usize = std::env::args()
        .nth(1)
        .map_or(20, |a| a.parse().expect("INCIDENTS is a number"));
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("center.db");
    let store = Store::open(db.to_str().unwrap()).await.unwrap();
    let t0: u64 = 1_767_261_600_000_000_000;
    let (mut lat_ms, mut records) = (Vec::new(), 0usize);
    let start = Instant::now();
    for i in 0..incidents {
        let id = format!("c{i}");
        store
            .put_host_claim(&HostClaim {
                id: id.clone(),
                incident_id: None,
                reporter: "victim-a".into(),
                received_ns: t0 + i as u64,
                list_version: i as u64 + 1,
                victim: "203.0.113.5".parse().unwrap(),
                fqdn: None,
                protocol: "tcp".into(),
                port: Some(80),
                from_ns: t0,
                to_ns: t0 + 600_000_000_000,
                reflectors: vec![],
                evidence_count: 1,
                evidence_summary: "1 EVE records".into(),
            })
            .await
            .unwrap();
        for (j, mut r) in generate(100, 0.3, i as u64 + 1)
            .reports
            .into_iter()
            .filter(|r| r.incident == INCIDENT)
            .enumerate()
        {
            r.incident = id.clone();
            records += r.records.len();
            let row = row_of(&format!("{id}-r{j}"), t0 + (i * 1000 + j) as u64, &r);
            let t = Instant::now();
            store.put_bot_report(&row).await.unwrap();
            lat_ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    let write_s = start.elapsed().as_secs_f64();
    let reports = lat_ms.len();
    store.close().await;
    let size = std::fs::metadata(&db).map_or(0, |m| m.len())
        + std::fs::metadata(dir.path().join("center.db-wal")).map_or(0, |m| m.len());
    println!(
        "written: {incidents} claims, {reports} reports, {records} records in {write_s:.1} s; \
         per report (durable commit): median {:.2} ms, p99 {:.2} ms; store {:.1} MiB",
        pct(&mut lat_ms, 0.5),
        pct(&mut lat_ms, 0.99),
        size as f64 / 1048576.0
    );

    let rng = ring::rand::SystemRandom::new();
    let pk8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let cfg = CenterConfig::default();
    let list = CenterList::new(&[7; 32], pk8.as_ref(), cfg.skew_ns).unwrap();
    let t = Instant::now();
    let store = Store::open(db.to_str().unwrap()).await.unwrap();
    let center = Center::new(cfg, list, [7; 32], store, Box::new(move || t0))
        .await
        .unwrap();
    println!(
        "restart (open, reload, republish): {:.2} s, peak RSS {:.0} MiB",
        t.elapsed().as_secs_f64(),
        peak_rss_mib()
    );
    drop(center);
    let store = Store::open(db.to_str().unwrap()).await.unwrap();
    let ledger = Ledger::load(&store).await.unwrap();
    let allow = HashSet::new();
    let ctx = ViewCtx {
        ledger: &ledger,
        allow: &allow,
        asn: None,
        contact: None,
        now_ns: t0,
    };
    for format in ["ranking", "html"] {
        let t = Instant::now();
        let (_, body) = render(&ctx, "c0", &RankFilter::default(), format, Script::Served).unwrap();
        println!(
            "{format} of one incident: {:.1} ms, {} bytes",
            t.elapsed().as_secs_f64() * 1e3,
            body.len()
        );
    }

    // A table the size of a full Routeviews IPv4 table (about 1,000,000 prefixes), /8 to /24.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut seen = HashSet::new();
    let mut text = String::new();
    while seen.len() < 1_000_000 {
        let r = next();
        let len = 8 + (r % 17) as u32;
        let addr = (r >> 32) as u32 & (u32::MAX << (32 - len));
        if seen.insert((addr, len)) {
            let origin = if r % 50 == 0 {
                format!("{}_{}", r % 64000 + 1, r % 397 + 1)
            } else {
                format!("{}", r % 64000 + 1)
            };
            text.push_str(&format!(
                "{}\t{len}\t{origin}\n",
                std::net::Ipv4Addr::from(addr)
            ));
        }
    }
    let t = Instant::now();
    let table = AsnTable::parse(&text).unwrap();
    let parse_s = t.elapsed().as_secs_f64();
    let probes: Vec<std::net::IpAddr> = (0..1_000_000)
        .map(|_| std::net::IpAddr::V4(((next() >> 32) as u32).into()))
        .collect();
    let t = Instant::now();
    let found = probes
        .iter()
        .filter(|a| table.lookup(**a).is_some())
        .count();
    let lookup_s = t.elapsed().as_secs_f64();
    println!(
        "ASN table: {} prefixes ({:.0} MiB of text) parsed in {parse_s:.2} s; 1,000,000 lookups \
         in {lookup_s:.2} s ({:.2} µs each, {found} routed); peak RSS {:.0} MiB",
        table.len(),
        text.len() as f64 / 1048576.0,
        lookup_s,
        peak_rss_mib()
    );
}
