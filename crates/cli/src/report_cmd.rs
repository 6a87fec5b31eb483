//! `ashiato report`: the victim's side. Builds claims from Suricata EVE alerts, or with
//! `--pcap` from the SYN floods in the victim's own capture (`ashiato_hosttrace::report`,
//! whose detector writes the EVE alerts the center asks for), optionally overridden by flags,
//! shows exactly what will be sent, asks for consent (`--yes` skips the question, for
//! automation), and files each claim with its alerts at the center over mutual TLS.

use std::io::{BufRead, Write};

use anyhow::{Context, Result, bail};
use ashiato_capture::file::FileSource;
use ashiato_hosttrace::report::{FloodConfig, SynFloodDetector, VictimClaim, claims_from_eve};
use ashiato_net::client::ServiceClient;
use ashiato_net::tls::{TlsFiles, client_config};
use serde_json::{Value, json};

use crate::args::ReportArgs;

/// Builds, shows, asks, sends.
pub fn run(a: &ReportArgs) -> Result<()> {
    let mut claims = match (&a.eve, &a.pcap) {
        (Some(eve), _) => {
            let text = std::fs::read_to_string(eve)
                .with_context(|| format!("reading {}", eve.display()))?;
            let (claims, skipped) = claims_from_eve(&text, &a.id_prefix);
            if claims.is_empty() {
                bail!(
                    "{}: no alert with a destination and a time ({skipped} records skipped)",
                    eve.display()
                );
            }
            claims
        }
        (None, Some(pcap)) => flood_claims(a, pcap)?,
        (None, None) => unreachable!("clap requires --eve or --pcap"),
    };
    if let Some(v) = a.victim {
        claims.retain(|c| c.claim.victim == v);
        if claims.is_empty() {
            bail!("no alert names {v} as destination");
        }
    }
    for c in &mut claims {
        if let Some(p) = a.port {
            c.claim.port = Some(p);
        }
        if let Some(f) = &a.fqdn {
            c.claim.fqdn = Some(f.clone());
        }
    }
    println!(
        "These claims will be sent to the center {} (no attacker address, except reflectors that sent the attack traffic):",
        a.center
    );
    for c in &claims {
        println!(
            "  {}  ({} alerts attached as evidence, {} in the file)",
            serde_json::to_string(&c.claim)?,
            c.evidence.len(),
            c.alerts
        );
    }
    if a.dry_run {
        return Ok(());
    }
    if !a.yes {
        print!("Send them? [y/N] ");
        std::io::stdout().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            println!("nothing sent");
            return Ok(());
        }
    }
    let tls = client_config(&TlsFiles::in_dir(&a.tls_dir, &a.name))?;
    let client = ServiceClient::new(&a.center, Some(tls));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    for c in &claims {
        let body = json!({ "claim": c.claim, "evidence": c.evidence });
        let v: Value = rt
            .block_on(client.call("POST", "/v1/claims", Some(&body)))
            .with_context(|| format!("claim {}", c.claim.id))?;
        println!(
            "claim {} accepted as list version {}",
            c.claim.id, v["version"]
        );
    }
    Ok(())
}

/// Claims from the SYN floods in a capture. A file that ends inside a record is read up to
/// the damage, with a warning.
fn flood_claims(a: &ReportArgs, pcap: &std::path::Path) -> Result<Vec<VictimClaim>> {
    let mut det = SynFloodDetector::new(FloodConfig {
        min_syns_per_sec: a.min_syns_per_sec,
    });
    let mut src = FileSource::open(pcap)?;
    let mut read = 0u64;
    loop {
        match src.next_frame() {
            Ok(Some(f)) => {
                read += 1;
                det.frame(f.ts_nanos, f.link, f.data)
            }
            Ok(None) => break,
            // Not a capture at all (or broken before its first frame): nothing to claim from.
            Err(e) if read == 0 => return Err(anyhow::Error::new(e)),
            Err(e) => {
                eprintln!("ashiato: warning: {e}; searched the frames before it");
                break;
            }
        }
    }
    let (claims, stats) = det.finish(&a.id_prefix);
    eprintln!(
        "{}: {} frames, {} SYNs, {} flooded address(es) at {} SYNs/s or more{}",
        pcap.display(),
        stats.frames,
        stats.syns,
        claims.len(),
        a.min_syns_per_sec,
        if stats.untracked_syns > 0 {
            format!(" ({} SYNs to untracked pairs)", stats.untracked_syns)
        } else {
            String::new()
        }
    );
    if claims.is_empty() {
        bail!(
            "{}: no SYN flood (no address and port got {} SYNs within one second)",
            pcap.display(),
            a.min_syns_per_sec
        );
    }
    Ok(claims)
}
