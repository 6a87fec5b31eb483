//! Prometheus metrics of the live responder (`ashiato stepstone --iface`): what the capture
//! loop counts, rendered with ashiato-api's exposition writer, served on `GET /metrics` with
//! `--metrics-listen ADDR` and/or written to `--metrics-file` every second and at exit.
//!
//! Design: the loop owns a [`LiveCounters`] (plain numbers, no locking on the packet path) and
//! every [`PUBLISH_EVERY`] copies a [`Snapshot`] into a mutex; the HTTP handler renders the
//! latest snapshot on each scrape. The server is ashiato-net's `serve` (bounded connections,
//! header and body deadlines), mutual TLS unless `--dev-insecure` on a loopback address, on a
//! small Tokio runtime in its own thread, as `ashiato darkflow --metrics-listen` does.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use ashiato_api::metrics::{Exposition, Kind};
use ashiato_net::server::{ServerLimits, check_insecure_listen, serve};
use ashiato_net::tls::server_config;
use ashiato_stepstone::decide::{Decision, Verdict};
use ashiato_stepstone::responder::ResponderStats;

use crate::args::TlsArgs;
use crate::probe_cmd::tls_files;

/// How often the loop hands a snapshot to the server.
pub const PUBLISH_EVERY: Duration = Duration::from_millis(100);

/// What the loop counts besides the responder core's own statistics.
#[derive(Clone, Debug, Default)]
pub struct LiveCounters {
    /// Verdicts: relay, direct, undecided.
    pub verdicts: [u64; 3],
    /// Relay signals that fired, by name, in first-seen order.
    pub signals: Vec<(&'static str, u64)>,
    /// ICMP echoes sent to sources (Ta).
    pub echoes_sent: u64,
    /// Echo replies matched.
    pub echo_replies: u64,
    /// SYN probes sent (Fa).
    pub syn_probes: u64,
    /// SYN probes answered by a SYN/ACK.
    pub probe_syn_acks: u64,
    /// SYN probes answered by a RST.
    pub probe_rsts: u64,
    /// Connections being probed now.
    pub probing: usize,
    /// Frames the kernel dropped because the receive ring was full (its running total).
    pub ring_drops: u64,
}

impl LiveCounters {
    /// Counts one decided connection.
    pub fn verdict(&mut self, v: &Verdict) {
        self.verdicts[match v.decision {
            Decision::Relay => 0,
            Decision::Direct => 1,
            Decision::Undecided => 2,
        }] += 1;
        for s in &v.signals {
            let name = s.name();
            match self.signals.iter_mut().find(|(n, _)| *n == name) {
                Some((_, c)) => *c += 1,
                None => self.signals.push((name, 1)),
            }
        }
    }
}

/// Everything one page shows.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// The responder core's counters.
    pub responder: ResponderStats,
    /// Handshakes waiting for an ACK (the state table's occupancy).
    pub pending: usize,
    /// The state table's bound.
    pub max_pending: usize,
    /// The loop's counters.
    pub live: LiveCounters,
}

/// The metrics page.
pub fn render(s: &Snapshot) -> String {
    let st = &s.responder;
    let mut e = Exposition::new();
    for (name, help, val) in [
        ("syns", "SYNs to darknet addresses", st.syns),
        ("syn_acks", "SYN/ACKs sent", st.syn_acks),
        (
            "limited_global",
            "SYNs refused by the overall rate limit",
            st.limited_global,
        ),
        (
            "limited_source",
            "SYNs refused by the per-source rate limit",
            st.limited_source,
        ),
        (
            "refused_source",
            "SYNs from sources never answered",
            st.refused_source,
        ),
        (
            "bad_acks",
            "ACKs or RSTs that did not acknowledge our SYN/ACK",
            st.bad_acks,
        ),
        ("measured", "connections with Tp measured", st.measured),
        (
            "timeouts",
            "connections without an answer to our SYN/ACK",
            st.timeouts,
        ),
        (
            "evicted",
            "pending handshakes dropped to keep the bound",
            st.evicted,
        ),
        ("app_sent", "banners and replies sent", st.app_sent),
        (
            "app_timed",
            "application-level times measured",
            st.app_timed,
        ),
        (
            "app_skipped",
            "application exchanges skipped: table full",
            st.app_skipped,
        ),
        (
            "echoes_sent",
            "ICMP echoes sent to sources",
            s.live.echoes_sent,
        ),
        (
            "echo_replies",
            "ICMP echo replies matched",
            s.live.echo_replies,
        ),
        (
            "syn_probes",
            "SYN probes sent to sources",
            s.live.syn_probes,
        ),
        (
            "probe_syn_acks",
            "SYN probes answered by a SYN/ACK",
            s.live.probe_syn_acks,
        ),
        (
            "probe_rsts",
            "SYN probes answered by a RST",
            s.live.probe_rsts,
        ),
        (
            "ring_drops",
            "frames dropped by the kernel: the receive ring was full",
            s.live.ring_drops,
        ),
    ] {
        let n = format!("ashiato_stepstone_{name}_total");
        e.single(&n, Kind::Counter, help, &[], val as f64);
    }
    for (name, help, val) in [
        ("pending", "handshakes waiting for an ACK", s.pending),
        (
            "pending_max",
            "bound on handshakes waiting for an ACK",
            s.max_pending,
        ),
        ("probing", "connections being probed now", s.live.probing),
    ] {
        let n = format!("ashiato_stepstone_{name}");
        e.single(&n, Kind::Gauge, help, &[], val as f64);
    }
    let n = "ashiato_stepstone_verdicts_total";
    e.family(n, Kind::Counter, "connections decided, by verdict");
    for (i, d) in ["relay", "direct", "undecided"].iter().enumerate() {
        e.sample(n, &[("decision", d)], s.live.verdicts[i] as f64);
    }
    let n = "ashiato_stepstone_signals_total";
    e.family(n, Kind::Counter, "relay signals that fired, by signal");
    for (sig, c) in &s.live.signals {
        e.sample(n, &[("signal", sig)], *c as f64);
    }
    e.finish()
}

/// Writes the page to a file atomically (for node_exporter's textfile collector).
pub fn write_file(path: &std::path::Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).with_context(|| format!("{}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("{}", path.display()))?;
    Ok(())
}

/// The `GET /metrics` server; stops when dropped.
pub struct MetricsServer {
    latest: Arc<Mutex<Snapshot>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `addr` (a failure to bind or to load the TLS files is an error now, not later)
    /// and serves from another thread.
    pub fn start(addr: SocketAddr, tls: &TlsArgs) -> Result<Self> {
        let tls_cfg = if tls.dev_insecure {
            check_insecure_listen(&addr).map_err(anyhow::Error::msg)?;
            None
        } else {
            Some(server_config(&tls_files(tls, "stepstone")?)?)
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let listener = rt
            .block_on(tokio::net::TcpListener::bind(addr))
            .with_context(|| format!("--metrics-listen {addr}"))?;
        eprintln!("metrics on {}", listener.local_addr()?);
        let latest = Arc::new(Mutex::new(Snapshot::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (shared, stopped) = (latest.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let app = axum::Router::new().route(
                "/metrics",
                axum::routing::get(move || {
                    let page = shared.lock().map(|s| render(&s)).unwrap_or_default();
                    async move {
                        (
                            [(
                                axum::http::header::CONTENT_TYPE,
                                ashiato_api::metrics::CONTENT_TYPE,
                            )],
                            page,
                        )
                    }
                }),
            );
            let until = async move {
                while !stopped.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            };
            rt.block_on(async move {
                if let Err(e) = serve(listener, app, tls_cfg, ServerLimits::default(), until).await
                {
                    tracing::error!(error = %e, "metrics server failed");
                }
            });
        });
        Ok(MetricsServer {
            latest,
            stop,
            thread: Some(thread),
        })
    }

    /// Makes `s` what the next scrape shows.
    pub fn publish(&self, s: &Snapshot) {
        if let Ok(mut g) = self.latest.lock() {
            g.clone_from(s);
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{LiveCounters, Snapshot, render};
    use ashiato_stepstone::decide::{Decision, Signal, Verdict};

    #[test]
    fn page_has_every_counter_and_counts_signals_by_name() {
        let mut live = LiveCounters::default();
        let v = Verdict {
            decision: Decision::Relay,
            signals: vec![Signal::Hops {
                passive: 3,
                active: 2,
            }],
            tp: None,
            ta: None,
            missing: Vec::new(),
        };
        live.verdict(&v);
        live.verdict(&v);
        live.echoes_sent = 20;
        live.ring_drops = 3;
        let mut s = Snapshot {
            live,
            pending: 4,
            max_pending: 65_536,
            ..Snapshot::default()
        };
        s.responder.syns = 9;
        s.responder.limited_source = 2;
        let page = render(&s);
        for want in [
            "ashiato_stepstone_syns_total 9\n",
            "ashiato_stepstone_limited_source_total 2\n",
            "ashiato_stepstone_echoes_sent_total 20\n",
            "ashiato_stepstone_ring_drops_total 3\n",
            "ashiato_stepstone_pending 4\n",
            "ashiato_stepstone_pending_max 65536\n",
            "ashiato_stepstone_verdicts_total{decision=\"relay\"} 2\n",
            "ashiato_stepstone_verdicts_total{decision=\"direct\"} 0\n",
            "ashiato_stepstone_signals_total{signal=\"hops\"} 2\n",
            "# TYPE ashiato_stepstone_evicted_total counter\n",
        ] {
            assert!(page.contains(want), "{want:?} not in\n{page}");
        }
    }
}
