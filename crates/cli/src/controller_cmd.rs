//! `ashiato controller`, `ashiato trace` and `ashiato ca`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use ashiato_api::federation::{
    MAX_BODY_BYTES, PathEnd, TraceMode, TracePacket, TraceResult, TraceStart,
};
use ashiato_controller::store_sink::StoreSink;
use ashiato_controller::{Controller, Deps, DomainConfig, TraceSink};
use ashiato_net::client::{ServiceClient, check_insecure_target};
use ashiato_net::server::{ServerLimits, serve};
use ashiato_net::tls::{
    PkiOptions, TlsFiles, check_certificates, client_config, init_pki, issue_identity,
    server_config,
};
use ashiato_store::Store;
use ashiato_wire::time::rfc3339;

use crate::UsageError;
use crate::args::{CaCommand, ControllerArgs, KeyArgs, ModeArg, TraceArgs};
use crate::digest_cmd::load_key;
use crate::probe_cmd::{packets_at, service_runtime};

/// Some packets' traces end in a gap instead of an origin (exit code 4).
#[derive(Debug)]
pub struct Gaps(pub String);

impl std::fmt::Display for Gaps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Gaps {}

/// `ashiato controller --config FILE`: checks everything first (the file, the key, the
/// certificates, the listen address), then serves until SIGINT/SIGTERM.
pub fn run(a: ControllerArgs) -> Result<()> {
    let cfg = DomainConfig::load(&a.config)?;
    let key = load_key(&KeyArgs {
        key_file: Some(cfg.domain.key_file.clone()),
    })?;
    let (server_tls, client_tls) = match (&cfg.tls, cfg.domain.dev_insecure) {
        (_, true) => (None, None),
        (Some(t), false) => {
            let files = TlsFiles::in_dir(&t.dir, &t.name);
            check_certificates(&files.ca, Some(&files.cert), SystemTime::now())?;
            (Some(server_config(&files)?), Some(client_config(&files)?))
        }
        (None, false) => bail!("{}: [tls] is required", a.config.display()),
    };
    let listen = cfg.domain.listen;
    let eve_file = cfg.triggers.eve_file.clone();
    let darkflow_events = cfg.triggers.darkflow_events.clone();
    let summary = format!(
        "controller AS{} ({}): {} probes, {} neighbours ({} with controllers), {} peers, {} mode, deadline {} ms, hop false-match bound {:e}, federation key table id {}, {}",
        cfg.domain.asn,
        if cfg.domain.name.is_empty() {
            "-"
        } else {
            &cfg.domain.name
        },
        cfg.probes.len(),
        cfg.neighbours.len(),
        cfg.neighbours
            .iter()
            .filter(|n| n.controller.is_some())
            .count(),
        cfg.peers.len(),
        cfg.trace.mode.as_str(),
        cfg.trace.deadline_ms,
        cfg.trace.fpr_bound,
        key.table_id_hex(),
        if server_tls.is_some() {
            "mutual TLS"
        } else {
            "PLAINTEXT (dev_insecure)"
        },
    );
    // A controller calls the same probes and peers again and again: keep connections alive
    // (bounded; see ashiato_net::client) instead of a mutual-TLS handshake per request.
    ashiato_net::client::reuse_connections(true);
    let (rt, signals) = service_runtime()?;
    // A controller whose store cannot be opened would lose every trace: refuse to start.
    let sink: Option<Arc<dyn TraceSink>> = if cfg.store.enabled() {
        let store = rt
            .block_on(Store::open(&cfg.store.url))
            .with_context(|| format!("{}: [store] url", a.config.display()))?;
        eprintln!("traces stored in {}", store.describe());
        Some(Arc::new(StoreSink::new(store, cfg.domain.asn, "cli")))
    } else {
        eprintln!("[store] url = \"none\": traces are kept in memory only");
        None
    };
    // The AS topology behind `[trace] topology`: a file that does not parse stops the start.
    let topology = match &cfg.trace.topology {
        Some(p) => {
            let t = ashiato_lab::topo::load(p)
                .with_context(|| format!("{}: [trace] topology", a.config.display()))?;
            eprintln!(
                "AS topology {}: {} ASes (candidate origins behind gaps)",
                p.display(),
                t.len()
            );
            Some(Arc::new(t))
        }
        None => None,
    };
    let ctl = Controller::new(
        cfg,
        Deps {
            key,
            probe_tls: client_tls.clone(),
            peer_tls: client_tls,
            sink,
            topology,
        },
    )?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("{}: listen = {listen}", a.config.display()))?;
        let bound = listener.local_addr()?;
        eprintln!("{summary}; listening on {bound}");
        if a.print_addr {
            println!("listening on {bound}");
        }
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        use ashiato_controller::eve::{Feed, follow};
        for (path, feed) in [(eve_file, Feed::Eve), (darkflow_events, Feed::DarkFlow)] {
            if let Some(path) = path {
                let mut rx = stop_rx.clone();
                tokio::spawn(follow(ctl.clone(), path, feed, async move {
                    let _ = rx.wait_for(|s| *s).await;
                }));
            }
        }
        let limits = ServerLimits {
            max_body_bytes: MAX_BODY_BYTES,
            ..ServerLimits::default()
        };
        serve(listener, ctl.router(), server_tls, limits, signals.recv()).await?;
        let _ = stop_tx.send(true);
        tracing::info!("shutting down");
        anyhow::Ok(())
    })
}

/// `ashiato trace`: exit 0 when every packet reached an origin, 4 when some end in a gap.
pub fn trace(a: TraceArgs) -> Result<()> {
    let uncertainty_ns = a.uncertainty_ms.unwrap_or(0).saturating_mul(1_000_000);
    // The key's table id travels with the trace: a controller of another key refuses it
    // instead of answering "not seen" for digests that could never match.
    let key = load_key(&a.key)?;
    let packets: Vec<TracePacket> = match &a.pcap {
        Some(p) => packets_at(p, &a.index, &key)?
            .into_iter()
            .map(|(ts, digest)| TracePacket {
                digest,
                time_ns: a.time.unwrap_or(ts),
                uncertainty_ns,
            })
            .collect(),
        None => {
            let time_ns = a
                .time
                .ok_or_else(|| UsageError("--digest needs --time".into()))?;
            a.digest
                .iter()
                .map(|d| {
                    if !ashiato_controller::is_hex32(d) {
                        return Err(UsageError(format!("--digest {d:?}: 32 hex digits")));
                    }
                    Ok(TracePacket {
                        digest: d.to_ascii_lowercase(),
                        time_ns,
                        uncertainty_ns,
                    })
                })
                .collect::<Result<_, _>>()?
        }
    };
    let tls = if a.dev_insecure {
        check_insecure_target(&a.controller).map_err(anyhow::Error::msg)?;
        None
    } else {
        let Some(dir) = &a.tls_dir else {
            return Err(UsageError(
                "mutual TLS needs --tls-dir (see `ashiato ca init`); --dev-insecure allows plaintext on loopback only".into(),
            )
            .into());
        };
        Some(client_config(&TlsFiles::in_dir(dir, &a.name))?)
    };
    let start = TraceStart {
        packets,
        mode: a.mode.map(|m| match m {
            ModeArg::Recursive => TraceMode::Recursive,
            ModeArg::Mesh => TraceMode::Mesh,
        }),
        deadline_ms: a.deadline_ms,
        incident: None,
        source: Some("cli".into()),
        table_id: key.table_id_hex(),
    };
    // The controller answers within its deadline (at most 60 s); the rest is transfer.
    let wait =
        Duration::from_millis(u64::from(a.deadline_ms.unwrap_or(60_000))) + Duration::from_secs(10);
    let client = ServiceClient::new(&a.controller, tls).with_timeout(wait);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let r: TraceResult = rt.block_on(client.call("POST", "/v1/trace", Some(&start)))?;
    if let Some(path) = &a.dot {
        std::fs::write(path, ashiato_trace::graph::to_dot(&r.graph))
            .with_context(|| format!("{}: cannot write", path.display()))?;
    }
    if a.json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        print_result(&r);
    }
    let gap_packets: u32 = r.graph.gaps.iter().map(|g| g.packets).sum();
    if gap_packets > 0 {
        return Err(Gaps(format!(
            "{gap_packets} of {} packets end in a gap, not at an origin",
            r.graph.packets
        ))
        .into());
    }
    Ok(())
}

fn plural(n: u32, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// The attack tree in words.
fn print_result(r: &TraceResult) {
    let g = &r.graph;
    println!(
        "trace {} ({}, {:.1} ms), incident {}: {} detected in AS{}",
        r.trace_id,
        r.mode.as_str(),
        r.duration_us as f64 / 1000.0,
        r.incident,
        plural(g.packets, "packet"),
        g.victim
    );
    if g.origins.is_empty() {
        println!("origins: none found");
    }
    for o in &g.origins {
        println!(
            "origin AS{}: {} (chance this is false {:.1e})",
            o.domain,
            plural(o.packets, "packet"),
            o.false_probability
        );
    }
    for gap in &g.gaps {
        let behind: Vec<String> = gap.behind.iter().map(|d| format!("AS{d}")).collect();
        println!(
            "gap after AS{}{}: {} ({})",
            gap.last,
            if behind.is_empty() {
                String::new()
            } else {
                format!(", behind {}", behind.join(", "))
            },
            gap.reason,
            plural(gap.packets, "packet")
        );
    }
    println!("paths (victim → … → origin):");
    for p in &g.paths {
        let path: Vec<String> = p.path.iter().map(|d| format!("AS{d}")).collect();
        let end = match &p.end {
            PathEnd::Origin { domain } => {
                let also: Vec<String> = p.also.iter().map(|d| format!("AS{d}")).collect();
                format!(
                    "origin AS{domain}{}{}{}",
                    if also.is_empty() {
                        String::new()
                    } else {
                        format!(" and {} (sent identically from each)", also.join(", "))
                    },
                    p.false_probability
                        .map(|f| format!(", chance false {f:.1e}"))
                        .unwrap_or_default(),
                    if p.open.is_empty() {
                        String::new()
                    } else {
                        format!(", open branches beside it: {}", p.open.len())
                    }
                )
            }
            PathEnd::Gap { reason, behind, .. } => {
                let b: Vec<String> = behind.iter().map(|d| format!("AS{d}")).collect();
                format!(
                    "gap: {reason}{}",
                    if b.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", b.join(", "))
                    }
                )
            }
        };
        println!("  packet {}: {}  [{end}]", p.packet, path.join(" → "));
    }
    if !g.edges.is_empty() {
        println!("hops (upstream → downstream):");
    }
    for e in &g.edges {
        let skipped = if e.skipped.is_empty() {
            String::new()
        } else {
            let s: Vec<String> = e.skipped.iter().map(|d| format!("AS{d}")).collect();
            format!(" (skipped, no controller: {})", s.join(", "))
        };
        println!(
            "  AS{} → AS{}{skipped}: {}, chance every sighting is false {:.1e}{}",
            e.from,
            e.to,
            plural(e.packets, "packet"),
            e.false_match,
            if e.reliable {
                ""
            } else {
                " — UNRELIABLE (above the bound): no evidence"
            }
        );
        for ev in &e.evidence {
            let when = ev
                .epoch_start_ns
                .map(|t| format!(" in epoch from {}", rfc3339(t)))
                .unwrap_or_default();
            println!(
                "    probe {} {}{when}, false match {:.2e}",
                ev.probe,
                ev.verdict.as_str(),
                ev.seen_false_match()
            );
        }
    }
    for rep in g.reports.iter().filter(|x| {
        use ashiato_api::federation::Outcome;
        matches!(
            x.outcome,
            Outcome::Unreachable | Outcome::Unknown | Outcome::Stopped
        )
    }) {
        println!(
            "  AS{} packet {}: {}: {}",
            rep.domain,
            rep.packet,
            rep.outcome.as_str(),
            rep.reason.as_deref().unwrap_or("-")
        );
    }
    println!(
        "hop false-match bound {:.0e}; expected false nodes: {:.2e}{}; stored: {}",
        g.fpr_bound,
        g.expected_false_nodes,
        if g.truncated {
            "; some reports were dropped (truncated)"
        } else {
            ""
        },
        if r.stored {
            "yes".to_string()
        } else {
            r.store_error
                .clone()
                .unwrap_or_else(|| "no store configured".into())
        }
    );
}

/// `ashiato ca init` / `ashiato ca issue`: the federation PKI, with controller identities
/// named `as<ASN>` as peers check them.
pub fn ca(cmd: CaCommand) -> Result<()> {
    let now = SystemTime::now();
    match cmd {
        CaCommand::Init {
            dir,
            federation,
            asn,
            name,
            san,
            days,
        } => {
            let mut names: Vec<String> = asn.iter().map(|a| format!("as{a}")).collect();
            names.extend(name);
            let done = init_pki(
                &dir,
                &PkiOptions {
                    names,
                    extra_sans: san,
                    days,
                    federation: Some(federation),
                },
                now,
            )?;
            println!(
                "wrote federation CA \"{}\" (until {}) to {}",
                done.ca_name,
                done.ca_not_after,
                dir.display()
            );
            for c in &done.certs {
                println!(
                    "  {} (server and client), valid until {}",
                    c.display(),
                    done.not_after
                );
            }
            println!(
                "keep {} offline; issue more with `ashiato ca issue`",
                dir.join("ca-key.pem").display()
            );
        }
        CaCommand::Issue {
            dir,
            name,
            asn,
            san,
            days,
            force,
        } => {
            let name = match (name, asn) {
                (_, Some(a)) => format!("as{a}"),
                (Some(n), None) => n,
                (None, None) => unreachable!("clap requires --name or --asn"),
            };
            let done = issue_identity(&dir, &name, &san, days, force, now)?;
            for c in &done.certs {
                println!(
                    "wrote {} (server and client) from CA \"{}\", valid until {}",
                    c.display(),
                    done.ca_name,
                    done.not_after
                );
            }
        }
    }
    Ok(())
}
