//! `ashiato probe run` and `ashiato probe query`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use ashiato_capture::file::FileSource;
use ashiato_capture::live::LiveConfig;
use ashiato_net::client::{ServiceClient, check_insecure_target};
use ashiato_net::server::{ServerLimits, check_insecure_listen, serve};
use ashiato_net::tls::{TlsFiles, client_config, server_config};
use ashiato_probe::api::{QueryRequest, QueryResponse, Verdict, router};
use ashiato_probe::{Input, Probe, ProbeConfig};
use ashiato_tables::{SpillConfig, TablesConfig, theory};

use ashiato_wire::time::rfc3339;

use crate::UsageError;
use crate::args::{QueryArgs, RunArgs, TableArgs, TlsArgs};
use crate::digest_cmd::load_key;
use crate::units::human_bytes;

/// Turns the sizing flags into a tables configuration (table_id is set by the probe). Each
/// flag's value was checked when it was parsed; what is left are the checks that involve
/// several flags.
pub fn tables_config(a: &TableArgs) -> Result<TablesConfig> {
    let (epoch_ns, retention_ns) = (a.epoch, a.retention);
    if retention_ns < epoch_ns {
        return Err(UsageError("--retention must be at least one --epoch".into()).into());
    }
    let retention_epochs = retention_ns.div_ceil(epoch_ns);
    if retention_epochs > 100_000 {
        return Err(UsageError(format!(
            "--retention / --epoch gives {retention_epochs} epochs; at most 100000"
        ))
        .into());
    }
    let pps = a
        .rate
        .packets_per_sec(a.mean_packet_size)
        .map_err(|e| UsageError(format!("{e:#}")))?;
    let per_epoch = crate::fpr::packets_per_epoch(pps, epoch_ns);
    let params = theory::plan(a.filter.into(), per_epoch, a.fpr);
    let spill = a.spill_dir.as_ref().map(|dir| SpillConfig {
        dir: dir.clone(),
        budget_bytes: a.spill_budget,
    });
    Ok(TablesConfig {
        epoch_ns,
        retention_epochs: retention_epochs as u32,
        params,
        table_id: 0,
        spill,
        prefault: a.prefault,
    })
}

/// A one-line statement of what the tables will hold and cost.
pub fn describe_tables(cfg: &TablesConfig, slots_bytes: u64) -> String {
    let p = &cfg.params;
    format!(
        "digest tables: {} filter, {} epochs of {} ({} + 2 spare slots), m={} bits, k={}, {} per table, {} in all",
        p.kind,
        cfg.retention_epochs,
        fmt_dur(cfg.epoch_ns),
        cfg.retention_epochs,
        p.m_bits,
        p.k,
        human_bytes(p.bytes() as f64),
        human_bytes(slots_bytes as f64),
    )
}

fn fmt_dur(ns: u64) -> String {
    if ns.is_multiple_of(1_000_000_000) {
        format!("{}s", ns / 1_000_000_000)
    } else {
        format!("{}ms", ns / 1_000_000)
    }
}

pub(crate) fn tls_files(t: &TlsArgs, default_identity: &str) -> Result<TlsFiles> {
    let identity = t.identity.as_deref().unwrap_or(default_identity);
    let base = match &t.tls_dir {
        Some(d) => TlsFiles::in_dir(d, identity),
        None => {
            if t.ca.is_none() || t.cert.is_none() || t.key.is_none() {
                bail!(
                    "mutual TLS needs --tls-dir (see `ashiato pki init`) or --ca, --cert and --key; \
                     --dev-insecure allows plaintext on loopback only"
                );
            }
            TlsFiles {
                ca: PathBuf::new(),
                cert: PathBuf::new(),
                key: PathBuf::new(),
            }
        }
    };
    Ok(TlsFiles {
        ca: t.ca.clone().unwrap_or(base.ca),
        cert: t.cert.clone().unwrap_or(base.cert),
        key: t.key.clone().unwrap_or(base.key),
    })
}

/// The client TLS configuration for the flags (None with --dev-insecure).
pub fn client_tls(t: &TlsArgs) -> Result<Option<Arc<rustls::ClientConfig>>> {
    if t.dev_insecure {
        return Ok(None);
    }
    Ok(Some(client_config(&tls_files(t, "client")?)?))
}

/// `ashiato probe run`
pub fn run(a: RunArgs) -> Result<()> {
    let key = load_key(&a.key)?;
    let tables = tables_config(&a.tables)?;
    let listen = a.listen;
    let tls = if a.tls.dev_insecure {
        check_insecure_listen(&listen).map_err(anyhow::Error::msg)?;
        None
    } else {
        Some(server_config(&tls_files(&a.tls, "probe")?)?)
    };
    let input = match &a.iface {
        Some(iface) => Input::Live {
            iface: iface.clone(),
            cfg: LiveConfig {
                snaplen: a.snaplen,
                ..LiveConfig::default()
            },
            threads: a.capture_threads,
        },
        None => Input::Files(a.pcap.clone()),
    };
    let name = a
        .name
        .clone()
        .or_else(|| a.tls.identity.clone())
        .unwrap_or_else(|| "probe".into());
    let slots = u64::from(tables.retention_epochs + 2) * tables.params.bytes();
    eprintln!("{}", describe_tables(&tables, slots));
    match crate::sysmem::fit(slots, crate::sysmem::this_machine()?) {
        crate::sysmem::Fit::Fits => {}
        crate::sysmem::Fit::Tight(m) => tracing::warn!("{m}"),
        crate::sysmem::Fit::TooBig(m) => bail!("{m}"),
    }
    // Signal handlers before the probe starts recording: a SIGTERM from then on stops it
    // cleanly (and saves what it holds) instead of killing it.
    let (rt, signals) = service_runtime()?;
    let mut probe = Probe::start(ProbeConfig {
        name,
        input,
        key,
        tables,
    })?;
    let state = probe.state();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("--listen {listen}"))?;
        let bound = listener.local_addr()?;
        tracing::info!(addr = %bound, tls = tls.is_some(), "serving queries");
        if a.print_addr {
            println!("listening on {bound}");
        }
        let app = router(state);
        let watch = async {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if let Some(e) = probe.capture_error() {
                    // The tables keep what was read; the service keeps answering, and
                    // /healthz and /v1/status say why nothing more is recorded.
                    eprintln!("ashiato: {}", ashiato_probe::error_chain(&e));
                }
            }
        };
        let shutdown = async {
            tokio::select! {
                _ = signals.recv() => {},
                _ = watch => {},
            }
        };
        serve(listener, app, tls, ServerLimits::default(), shutdown).await?;
        tracing::info!("shutting down");
        // Epochs held in memory that could not be saved are evidence lost: exit 1.
        if let Some(e) = probe.stop()? {
            tracing::warn!(
                error = ashiato_probe::error_chain(&e),
                "capture had ended with an error"
            );
        }
        anyhow::Ok(())
    })
}

/// SIGINT and SIGTERM, installed once.
pub(crate) struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

/// The runtime every long-running service of the CLI uses (two workers: the machines it is
/// sized for have few cores to spare beside capture), with SIGINT/SIGTERM handlers already
/// installed, so that a signal from now on stops the service cleanly.
pub(crate) fn service_runtime() -> Result<(tokio::runtime::Runtime, Signals)> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let signals = {
        let _rt = rt.enter();
        Signals::install()?
    };
    Ok((rt, signals))
}

impl Signals {
    /// Installs the handlers (inside a runtime context).
    pub(crate) fn install() -> Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
        })
    }

    /// Resolves on the next SIGINT or SIGTERM.
    pub(crate) async fn recv(mut self) {
        tokio::select! {
            _ = self.int.recv() => {},
            _ = self.term.recv() => {},
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}

/// Digests and timestamps of the packets at `indexes` in a capture file.
pub fn packets_at(
    path: &std::path::Path,
    indexes: &[u64],
    key: &ashiato_digest::Key,
) -> Result<Vec<(u64, String)>> {
    let mut src = FileSource::open(path)?;
    let mut want: Vec<u64> = indexes.to_vec();
    want.sort_unstable();
    want.dedup();
    let mut found = std::collections::HashMap::new();
    let mut i = 0u64;
    let last = *want.last().context("--index is required with --pcap")?;
    while i <= last {
        let Some(f) = src.next_frame()? else {
            bail!(
                "{}: has {i} packets; index {last} does not exist",
                path.display()
            );
        };
        if want.binary_search(&i).is_ok() {
            let d = key
                .digest_frame(f.link, f.data)
                .with_context(|| format!("{}: packet {i} has no digest", path.display()))?;
            found.insert(i, (f.ts_nanos, d.to_string()));
        }
        i += 1;
    }
    Ok(indexes.iter().map(|i| found[i].clone()).collect())
}

/// Groups packet times so that each group's packets all lie within `window` of the group's
/// first packet: one request per group, each searched over `[first − window, last + window]`
/// (at most three windows wide), so that every packet is searched around its own time and
/// packets close together share one request. Returns index lists into `times`, in time order.
pub fn time_groups(times: &[u64], window: u64) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..times.len()).collect();
    order.sort_by_key(|&i| times[i]);
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for i in order {
        match groups.last_mut() {
            Some(g) if times[i] - times[g[0]] <= window => g.push(i),
            _ => groups.push(vec![i]),
        }
    }
    groups
}

/// `ashiato probe query`
pub fn query(a: QueryArgs) -> Result<()> {
    let window = a.window;
    // The table id our digests are valid for: a probe of another federation key (or digest
    // version) holds other digests, and its "not seen" would mean nothing.
    let (requests, expect_table) = match &a.pcap {
        Some(p) => {
            let key = load_key(&a.key)?;
            let pk = packets_at(p, &a.index, &key)?;
            let times: Vec<u64> = pk.iter().map(|(t, _)| a.time.unwrap_or(*t)).collect();
            let mut digests_seen = std::collections::HashSet::new();
            let reqs = time_groups(&times, window)
                .into_iter()
                .map(|g| {
                    let lo = times[g[0]];
                    let hi = times[*g.last().unwrap_or(&g[0])];
                    QueryRequest {
                        // The same packet asked twice (two indexes of one retransmission)
                        // is asked once: the probe refuses repeated digests.
                        digests: g
                            .iter()
                            .map(|&i| pk[i].1.clone())
                            .filter(|d| digests_seen.insert(d.clone()))
                            .collect(),
                        from_ns: Some(lo.saturating_sub(window)),
                        to_ns: Some(hi.saturating_add(window)),
                        table_id: Some(key.table_id_hex()),
                    }
                })
                .filter(|r| !r.digests.is_empty())
                .collect::<Vec<_>>();
            (reqs, Some(key.table_id()))
        }
        None => {
            let expect = match &a.key.key_file {
                Some(_) => Some(load_key(&a.key)?),
                None => None,
            };
            let req = QueryRequest {
                digests: a.digest.clone(),
                from_ns: a.time.map(|t| t.saturating_sub(window)),
                to_ns: a.time.map(|t| t.saturating_add(window)),
                table_id: expect.as_ref().map(|k| k.table_id_hex()),
            };
            let expect = expect.map(|k| k.table_id());
            (vec![req], expect)
        }
    };
    if a.tls.dev_insecure {
        check_insecure_target(&a.probe).map_err(anyhow::Error::msg)?;
    }
    let client = ServiceClient::new(&a.probe, client_tls(&a.tls)?);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    for req in &requests {
        let resp = match expect_table {
            Some(table_id) => rt.block_on(client.query_expecting(req, table_id))?,
            None => rt.block_on(client.query(req))?,
        };
        if a.json {
            println!("{}", serde_json::to_string(&resp)?);
        } else {
            print_answer(&resp);
        }
    }
    Ok(())
}

/// Human-readable answer.
pub fn print_answer(r: &QueryResponse) {
    println!(
        "probe {} (digest v{}, table id {}): searched {} epochs from {} to {}",
        r.probe,
        r.digest_version,
        r.table_id,
        r.epochs_searched,
        rfc3339(r.from_ns),
        rfc3339(r.to_ns)
    );
    for g in &r.gaps {
        println!(
            "  not held: {} .. {} ({}{})",
            rfc3339(g.from_ns),
            rfc3339(g.to_ns),
            g.reason,
            g.detail
                .as_deref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default()
        );
    }
    if r.gaps_truncated {
        println!("  (more parts of the window are not held than are listed)");
    }
    for a in &r.answers {
        match a.verdict() {
            Verdict::Seen => {
                for e in &a.epochs {
                    println!(
                        "  {} SEEN in epoch {} .. {} ({} packets, chance of a false match {:.3e}{})",
                        a.digest,
                        rfc3339(e.start_ns),
                        rfc3339(e.end_ns),
                        e.inserted,
                        e.fpr,
                        if e.on_disk { ", from disk" } else { "" }
                    );
                }
                if a.truncated {
                    println!("  {} (more epochs hold it than are listed)", a.digest);
                }
            }
            Verdict::NotSeen => println!(
                "  {} not seen (a never-seen packet would match here with probability {:.3e})",
                a.digest, r.false_match_probability
            ),
            Verdict::Unknown => println!(
                "  {} UNKNOWN: not seen in what the probe holds, but {}",
                a.digest,
                a.reason
                    .as_deref()
                    .unwrap_or("parts of the window are not held")
            ),
        }
    }
}
