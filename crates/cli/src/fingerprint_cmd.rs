//! `ashiato fingerprint`: p0f 3 fingerprints of every SYN and SYN/ACK in a capture, printed
//! like p0f (text) or one JSON object a line.

use std::io::{BufWriter, Write};
use std::net::IpAddr;
use std::path::Path;

use anyhow::{Context, Result};
use ashiato_capture::file::FileSource;
use ashiato_stepstone::{Database, Fingerprint, MODERN_DB, Quality, Tracker};
use ashiato_wire::time::rfc3339;

use crate::args::FingerprintArgs;

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

/// One fingerprint as the JSON object of `--json`.
#[derive(serde::Serialize)]
struct JsonFp<'a> {
    time: String,
    src: IpAddr,
    sport: u16,
    dst: IpAddr,
    dport: u16,
    kind: &'static str,
    raw_sig: String,
    label: String,
    /// `os` or `app` (p0f's field name), absent without a match.
    #[serde(skip_serializing_if = "Option::is_none")]
    label_kind: Option<&'static str>,
    dist: u8,
    /// `exact`, `generic`, `fuzzy` or `none`.
    r#match: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    matched: Option<Matched<'a>>,
}

#[derive(serde::Serialize)]
struct Matched<'a> {
    sig: String,
    line: usize,
    label_line: usize,
    class: Option<&'a str>,
}

fn quality_str(fp: &Fingerprint<'_>) -> &'static str {
    match (fp.matched.record, fp.matched.quality) {
        (None, _) => "none",
        (Some(_), Quality::Exact) => "exact",
        (Some(_), Quality::Generic) => "generic",
        (Some(_), Quality::Fuzzy) => "fuzzy",
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
    let out = std::io::stdout().lock();
    let mut out = BufWriter::with_capacity(1 << 16, out);
    let mut n = 0u64;
    let mut frames = 0u64;
    let start = std::time::Instant::now();
    while let Some(frame) = src.next_frame()? {
        frames += 1;
        let Ok(pkt) = ashiato_wire::packet::parse(frame.link, frame.data) else {
            continue;
        };
        let Some(fp) = tracker.packet(&db, frame.ts_nanos, &pkt) else {
            continue;
        };
        n += 1;
        if a.count {
            continue;
        }
        let label = fp.matched.record.map(|r| db.label(r));
        let label_text = label.map_or_else(|| "???".to_string(), |l| l.text());
        let raw = fp.observed.raw_sig(fp.syn_mss).to_string();
        let field = if label.is_some_and(|l| l.is_app()) {
            "app"
        } else {
            "os"
        };
        if a.json {
            let j = JsonFp {
                time: rfc3339(fp.ts_nanos),
                src: fp.src,
                sport: fp.sport,
                dst: fp.dst,
                dport: fp.dport,
                kind: fp.observed.kind.as_str(),
                raw_sig: raw,
                label: label_text,
                label_kind: label.map(|_| field),
                dist: fp.matched.dist,
                r#match: quality_str(&fp),
                matched: fp.matched.record.zip(label).map(|(r, l)| Matched {
                    sig: r.sig.to_string(),
                    line: r.line,
                    label_line: l.line,
                    class: l.class.as_deref(),
                }),
            };
            serde_json::to_writer(&mut out, &j)?;
            writeln!(out)?;
        } else {
            let (who, role) = match fp.observed.kind {
                ashiato_stepstone::Kind::Syn => ("client", "syn"),
                ashiato_stepstone::Kind::SynAck => ("server", "syn+ack"),
            };
            let mut params = Vec::new();
            if let Some(r) = fp.matched.record {
                if db.label(r).generic {
                    params.push("generic".to_string());
                }
                if fp.matched.quality == Quality::Fuzzy {
                    params.push("fuzzy".to_string());
                }
                if r.sig.bad_ttl {
                    params.push("random_ttl".to_string());
                }
            }
            if fp.matched.dist > ashiato_stepstone::sig::MAX_DIST {
                params.push("excess_dist".to_string());
            }
            if fp.observed.tos != 0 {
                params.push(format!("tos:0x{:02x}", fp.observed.tos));
            }
            let params = if params.is_empty() {
                "none".to_string()
            } else {
                params.join(" ")
            };
            let dist = match fp.matched.record {
                Some(r) if r.sig.bad_ttl => format!("<= {}", fp.matched.dist),
                _ => fp.matched.dist.to_string(),
            };
            let matched = fp.matched.record.map_or_else(
                || "none".to_string(),
                |r| format!("line {} ({})", r.line, quality_str(&fp)),
            );
            writeln!(
                out,
                ".-[ {}/{} -> {}/{} ({role}) ]-\n|\n| {who:<8} = {}/{}\n| {field:<8} = {label_text}\n| dist     = {dist}\n| params   = {params}\n| raw_sig  = {raw}\n| matched  = {matched}\n|\n`----\n",
                fp.src, fp.sport, fp.dst, fp.dport, fp.src, fp.sport,
            )?;
        }
    }
    out.flush()?;
    if a.count {
        let secs = start.elapsed().as_secs_f64();
        let st = tracker.stats();
        writeln!(
            std::io::stdout(),
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
