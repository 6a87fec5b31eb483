//! `ashiato report`: the victim's side. Builds claims from Suricata EVE alerts
//! (`ashiato_hosttrace::report`), optionally overridden by flags, shows exactly what will be
//! sent, asks for consent (`--yes` skips the question, for automation), and files each claim
//! with its alerts at the center over mutual TLS.

use std::io::{BufRead, Write};

use anyhow::{Context, Result, bail};
use ashiato_hosttrace::report::claims_from_eve;
use ashiato_net::client::ServiceClient;
use ashiato_net::tls::{TlsFiles, client_config};
use serde_json::{Value, json};

use crate::args::ReportArgs;

/// Builds, shows, asks, sends.
pub fn run(a: &ReportArgs) -> Result<()> {
    let text =
        std::fs::read_to_string(&a.eve).with_context(|| format!("reading {}", a.eve.display()))?;
    let (mut claims, skipped) = claims_from_eve(&text, &a.id_prefix);
    if claims.is_empty() {
        bail!(
            "{}: no alert with a destination and a time ({skipped} records skipped)",
            a.eve.display()
        );
    }
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
