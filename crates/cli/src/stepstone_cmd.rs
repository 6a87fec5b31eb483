//! `ashiato stepstone --pcap`: per source, the passive evidence (Tp from our SYN/ACK to its
//! ACK, Fp from its SYN) from a capture of both directions, and the verdict the decision core
//! gives on passive evidence alone (active probing needs the live responder).

use std::io::{BufWriter, Write};
use std::net::IpAddr;

use anyhow::Result;
use ashiato_capture::file::FileSource;
use ashiato_stepstone::decide::{Config, Evidence, Stats, Verdict, decide};
use ashiato_stepstone::passive::PassiveTiming;

use crate::args::StepstoneArgs;
use crate::fingerprint_cmd::load_db;

#[derive(serde::Serialize)]
struct JsonSource<'a> {
    src: IpAddr,
    syns: u64,
    fp_raw_sig: Option<String>,
    fp_label: Option<&'a str>,
    fp_is_tool: bool,
    tp_us: Option<Stats>,
    verdict: &'a Verdict,
}

/// `ashiato stepstone --pcap`
pub fn run(a: &StepstoneArgs) -> Result<()> {
    crate::fingerprint_cmd::quiet_broken_pipe(print_all(a))
}

fn print_all(a: &StepstoneArgs) -> Result<()> {
    if let Some(crate::args::StepstoneLab::Lab(l)) = &a.lab {
        return crate::stepstone_lab::run(l);
    }
    let Some(pcap) = &a.pcap else {
        return crate::stepstone_live::run(a);
    };
    let db = load_db(a.db.as_deref())?;
    let mut src = FileSource::open(pcap)?;
    let mut t = PassiveTiming::default();
    while let Some(frame) = src.next_frame()? {
        if let Ok(pkt) = ashiato_wire::packet::parse(frame.link, frame.data) {
            t.packet(&db, frame.ts_nanos, &pkt);
        }
    }
    let cfg = Config {
        seed_rule: a.seed_rule,
        ..Config::default()
    };
    let mut out = BufWriter::new(std::io::stdout().lock());
    for (addr, s) in t.sources() {
        let ev = Evidence {
            fp: s.fp,
            fp_is_tool: s.fp_is_tool,
            fp_os: None,
            tp_us: s.tp_us.clone(),
            ..Evidence::default()
        };
        let v = decide(&ev, &cfg);
        let tp = Stats::of(&s.tp_us);
        if a.json {
            let j = JsonSource {
                src: addr,
                syns: s.syns,
                fp_raw_sig: s.fp.map(|o| o.raw_sig(0).to_string()),
                fp_label: s.fp_label.as_deref(),
                fp_is_tool: s.fp_is_tool,
                tp_us: tp,
                verdict: &v,
            };
            serde_json::to_writer(&mut out, &j)?;
            writeln!(out)?;
        } else {
            let tp_text = tp.map_or_else(
                || "no Tp (no SYN/ACK answered)".to_string(),
                |t| {
                    format!(
                        "Tp n={} min={} median={:.0} max={} µs",
                        t.n, t.min, t.median, t.max
                    )
                },
            );
            writeln!(
                out,
                "{addr}: {} SYN, Fp {} [{}], {tp_text}; {:?} ({})",
                s.syns,
                s.fp.map_or_else(|| "-".to_string(), |o| o.raw_sig(0).to_string()),
                s.fp_label.as_deref().unwrap_or("-"),
                v.decision,
                v.missing.join("; ")
            )?;
        }
    }
    out.flush()?;
    let st = t.stats();
    tracing::info!(
        samples = st.samples,
        unmatched_acks = st.unmatched_acks,
        evicted = st.evicted,
        "stepstone: capture read"
    );
    Ok(())
}
