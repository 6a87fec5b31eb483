//! `ashiato fingerprint`: p0f 3 fingerprints of every SYN and SYN/ACK in a capture, printed
//! like p0f (text) or one JSON object a line.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use ashiato_capture::file::FileSource;
use ashiato_stepstone::{Database, MODERN_DB, Tracker};
use ashiato_wire::packet::{Fast, TcpFlags, tcp_fast};

use crate::args::FingerprintArgs;
use crate::fingerprint_out::Printer;

/// Loads `--db` or the built-in modern signatures.
pub fn load_db(path: Option<&Path>) -> Result<Database> {
    match path {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("{}: cannot read the signature file", p.display()))?;
            Database::parse(&text).with_context(|| p.display().to_string())
        }
        None => Database::parse(MODERN_DB).context("the built-in signature file"),
    }
}

/// A reader that stopped reading (`| head`) ends the output quietly, as it does for p0f.
pub fn quiet_broken_pipe(r: Result<()>) -> Result<()> {
    match r {
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .map(std::io::Error::kind)
                .or_else(|| {
                    e.downcast_ref::<serde_json::Error>()
                        .and_then(serde_json::Error::io_error_kind)
                })
                == Some(std::io::ErrorKind::BrokenPipe) =>
        {
            Ok(())
        }
        r => r,
    }
}

/// `ashiato fingerprint`
pub fn run(a: &FingerprintArgs) -> Result<()> {
    quiet_broken_pipe(print_all(a))
}

fn print_all(a: &FingerprintArgs) -> Result<()> {
    let db = load_db(a.db.as_deref())?;
    let mut src = FileSource::open(&a.pcap)?;
    let mut tracker = Tracker::default();
    let mut out = std::io::stdout().lock();
    let mut printer = Printer::new(&db, a.json);
    let mut n = 0u64;
    let mut frames = 0u64;
    let start = std::time::Instant::now();
    while let Some(frame) = src.next_frame()? {
        frames += 1;
        // Only SYNs and SYN/ACKs can give a fingerprint: skip the rest before the full parse.
        match tcp_fast(frame.link, frame.data) {
            Fast::NotTcp => continue,
            Fast::V4(h) if !h.flags.contains(TcpFlags::SYN) => continue,
            Fast::V6(h) if !h.flags.contains(TcpFlags::SYN) => continue,
            _ => {}
        }
        let Ok(pkt) = ashiato_wire::packet::parse(frame.link, frame.data) else {
            continue;
        };
        let Some(fp) = tracker.packet(&db, frame.ts_nanos, &pkt) else {
            continue;
        };
        n += 1;
        if !a.count {
            printer.print(&fp, &mut out)?;
        }
    }
    printer.finish(&mut out)?;
    if a.count {
        let secs = start.elapsed().as_secs_f64();
        let st = tracker.stats();
        writeln!(
            out,
            "{n} fingerprints from {frames} frames ({} SYN, {} SYN/ACK, {} retransmitted SYN, {} stray SYN/ACK) in {secs:.3} s: {:.0} frames/s",
            st.syns,
            st.syn_acks,
            st.dup_syns,
            st.stray_syn_acks,
            frames as f64 / secs.max(1e-9)
        )?;
    }
    Ok(())
}
