//! `ashiato darkflow --iface IF`: passive detection on a mirror port. Glue only: the capture
//! loop is `ashiato_darkflow_shells::live`; this module opens the ring from the flags, prints
//! summaries and events, and serves the metrics. Metrics (optional) are served from a small Tokio runtime on another thread, which also
//! turns Ctrl-C / SIGTERM into a stop flag.

use std::io::{BufWriter, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ashiato_capture::live::{LiveConfig, LiveSource};
use ashiato_darkflow::metrics::{ShellStats, render};
use ashiato_darkflow::report::Meta;
use ashiato_darkflow::{Counters, Detector};
use ashiato_darkflow_shells::live::{Live, now_ns};
use ashiato_net::server::{ServerLimits, check_insecure_listen, serve};
use ashiato_net::tls::server_config;
use serde_json::json;

use super::{Sinks, detector_config, print_summary};
use crate::args::{DarkflowArgs, TlsArgs};
use crate::probe_cmd::{shutdown_signal, tls_files};

/// What the metrics endpoint shows.
#[derive(Default)]
pub struct Shared {
    /// Detector totals.
    pub counters: Counters,
    /// Shell figures.
    pub stats: ShellStats,
}

/// Starts the signal watcher and, if asked, the metrics server. Returns the stop flag and the
/// runtime's thread handle (it ends when `stop` is set).
pub fn start_service(
    listen: Option<SocketAddr>,
    tls: &TlsArgs,
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<()>> {
    let tls_cfg = match listen {
        Some(addr) if tls.dev_insecure => {
            check_insecure_listen(&addr).map_err(anyhow::Error::msg)?;
            None
        }
        Some(_) => Some(server_config(&tls_files(tls, "darkflow")?)?),
        None => None,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let listener = match listen {
        Some(addr) => {
            let l = rt
                .block_on(tokio::net::TcpListener::bind(addr))
                .with_context(|| format!("--metrics-listen {addr}"))?;
            eprintln!("metrics on {}", l.local_addr()?);
            Some(l)
        }
        None => None,
    };
    Ok(std::thread::spawn(move || {
        rt.block_on(async move {
            let stopped = {
                let stop = stop.clone();
                async move {
                    loop {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            };
            let until = async {
                tokio::select! {
                    _ = shutdown_signal() => stop.store(true, Ordering::Relaxed),
                    _ = stopped => {},
                }
            };
            match listener {
                Some(l) => {
                    let app = axum::Router::new().route(
                        "/metrics",
                        axum::routing::get(move || {
                            let shared = shared.clone();
                            async move {
                                let s = shared
                                    .lock()
                                    .map(|g| render("ashiato_darkflow", &g.counters, &g.stats));
                                (
                                    [(
                                        axum::http::header::CONTENT_TYPE,
                                        ashiato_api::metrics::CONTENT_TYPE,
                                    )],
                                    s.unwrap_or_default(),
                                )
                            }
                        }),
                    );
                    if let Err(e) = serve(l, app, tls_cfg, ServerLimits::default(), until).await {
                        tracing::error!(error = %e, "metrics server failed");
                    }
                }
                None => until.await,
            }
        });
    }))
}

/// `ashiato darkflow --iface IF ...`
pub fn run(a: &DarkflowArgs) -> Result<()> {
    let iface = a.iface.as_deref().unwrap_or_default();
    let cfg = detector_config(&a.detector)?;
    let every = a.summary_every.max(1_000_000);
    let duration = a.duration;
    let src = LiveSource::open(
        iface,
        &LiveConfig {
            snaplen: a.snaplen,
            ..LiveConfig::default()
        },
    )
    .with_context(|| format!("capturing on {iface}"))?;
    let key = super::key_of(a)?;
    let (src, digests) = super::syn_tap::SynTap::new(src, key, cfg.timeout_ns);
    let mut det = Detector::new(cfg);
    let mut sinks = Sinks::new(a)?;
    sinks.digests = a.key_file.is_some().then_some(digests);
    let shared = Arc::new(Mutex::new(Shared::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let service = start_service(a.metrics_listen, &a.tls, shared.clone(), stop.clone())?;
    let bound = det.memory_bound();
    eprintln!(
        "watching {iface}: T {} s, tables bounded to {:.1} MiB; Ctrl-C to stop",
        cfg.timeout_ns as f64 / 1e9,
        bound as f64 / (1 << 20) as f64
    );
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let started = Instant::now();
    let mut next_summary = now_ns() + every;
    let mut live = Live::new(src, now_ns);
    let result: Result<()> = loop {
        if stop.load(Ordering::Relaxed)
            || duration.is_some_and(|d| started.elapsed().as_nanos() as u64 >= d)
        {
            break Ok(());
        }
        let mut handle = |e: ashiato_darkflow::Event| sinks.take(&e, &mut out, true);
        if let Err(e) = live.step(&mut det, &mut handle) {
            break Err(e).context(format!("capture on {iface}"));
        }
        let st = live.stats();
        let (frames, malformed, kernel) = (
            st.frames,
            st.malformed,
            (st.kernel_packets, st.kernel_drops),
        );
        if let Ok(mut g) = shared.lock() {
            g.counters = det.counters();
            g.stats = ShellStats {
                kernel_packets: kernel.0,
                kernel_drops: kernel.1,
                table_bytes: det.heap_bytes(),
                table_bytes_bound: bound,
                ..ShellStats::default()
            };
        }
        if now_ns() >= next_summary {
            next_summary += every;
            let rep = sinks.summary.report(det.counters());
            if a.json {
                let v = json!({"event": "summary", "frames": frames, "kernel_drops": kernel.1, "report": rep.json(cfg.timeout_ns)});
                let _ = writeln!(out, "{v}").and_then(|_| out.flush());
            } else {
                eprintln!("--- {} ---", super::rfc3339(now_ns()));
                print_summary(
                    &mut std::io::stderr(),
                    &rep,
                    frames,
                    malformed,
                    cfg.timeout_ns,
                )?;
            }
        }
    };
    stop.store(true, Ordering::Relaxed);
    let _ = service.join();
    live.finish(&mut det, &mut |e| sinks.take(&e, &mut out, false));
    let st = live.stats();
    let (frames, malformed, kernel) = (
        st.frames,
        st.malformed,
        (st.kernel_packets, st.kernel_drops),
    );
    let meta = Meta {
        title: format!("DarkFlow report, live on {iface}"),
        inputs: vec![format!("interface {iface}")],
        timeout_ns: cfg.timeout_ns,
        generated_by: format!("ashiato {}", env!("CARGO_PKG_VERSION")),
    };
    let report = sinks.finish(a, det.counters(), meta)?;
    if a.json {
        let v = json!({"event": "summary", "frames": frames, "kernel_drops": kernel.1, "report": report.json(cfg.timeout_ns)});
        writeln!(out, "{v}")?;
    } else {
        print_summary(&mut out, &report, frames, malformed, cfg.timeout_ns)?;
        if kernel.1 > 0 {
            writeln!(
                out,
                "kernel dropped {} of {} packets (ring full)",
                kernel.1, kernel.0
            )?;
        }
    }
    out.flush()?;
    result
}
