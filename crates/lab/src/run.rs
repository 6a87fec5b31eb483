//! One lab run: scenario → probes → controllers → traces → accuracy and latency.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ashiato_api::federation::{
    AttackGraph, MAX_PACKETS, PathEnd, TraceMode, TracePacket, TraceResult, TraceStart,
};
use ashiato_controller::TraceSink;
use ashiato_controller::store_sink::StoreSink;
use ashiato_net::client::ServiceClient;
use ashiato_store::Store;
use ashiato_trace::topology::Asn;

use crate::controllers::{ControllerStartError, Controllers, Shared, UNCERTAINTY_NS};
use crate::detect::{DetectorConfig, detect};
use crate::report::{Evidence, Report, percentile};
use crate::scenario::{Scenario, ScenarioConfig, ScenarioError, Tap};
use crate::services::{DomainTls, ServiceError, Services, identity, lab_key, make_pki, write_key};
use crate::topo::{TopologyError, TopologySpec, choose};

/// What to run.
#[derive(Clone, Debug)]
pub struct LabConfig {
    /// The topology.
    pub topology: TopologySpec,
    /// Share of domains running ashiato (0 to 1).
    pub participation: f64,
    /// Seed of every random choice.
    pub seed: u64,
    /// Recursive or mesh.
    pub mode: TraceMode,
    /// Attack origin domains (`None`: 4 on topologies under 20 domains, else 5).
    pub origins: Option<usize>,
    /// Attack packets per origin.
    pub packets: usize,
    /// Single-packet traces timed for latency.
    pub traces: usize,
    /// Where the graph files and the PKI go.
    pub out_dir: PathBuf,
    /// After the run, fire concurrent single-packet traces at the victim for this long.
    pub throughput: Option<Duration>,
    /// Concurrent requests of the throughput run.
    pub concurrency: usize,
    /// Reuse connections between services (HTTP/1.1 keep-alive, process-wide:
    /// `ashiato_net::client::reuse_connections`) instead of a new TLS handshake per request.
    pub reuse_connections: bool,
    /// The conditions of a real federation the run is held under.
    pub conditions: Conditions,
}

/// The conditions of a real federation (docs/lab.md, "Hard cases"): probes sized for their
/// load at a realistic rate, background traffic, repeated packets, multipath, dead probes,
/// delay between domains, a core-only deployment.
#[derive(Clone, Debug)]
pub struct Conditions {
    /// The false-positive rate each probe's tables are sized for at its busiest epoch.
    pub probe_fpr: f64,
    /// Benign packets per link per second (`None`: a few per domain, the old default).
    pub background_pps: Option<f64>,
    /// Share of attack packets also sent identically by a second origin.
    pub duplicates: f64,
    /// Share of domains splitting their traffic over two upstreams.
    pub multipath: f64,
    /// Share of probes that are down.
    pub probe_failures: f64,
    /// One-way delay between domains' controllers.
    pub link_delay: Duration,
    /// Participants are the core (most customers first) instead of a random set.
    pub core: bool,
}

impl Default for Conditions {
    fn default() -> Self {
        Conditions {
            probe_fpr: crate::services::TARGET_FPR,
            background_pps: None,
            duplicates: 0.0,
            multipath: 0.0,
            probe_failures: 0.0,
            link_delay: Duration::ZERO,
            core: false,
        }
    }
}

/// Most background packets a run generates, whatever `--background` asks (memory).
pub const MAX_BACKGROUND: usize = 2_000_000;

/// Why a lab run failed.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The topology could not be had (bad usage: a bad file or size).
    #[error(transparent)]
    Topology(#[from] TopologyError),
    /// The scenario has no attacker.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// A service could not start.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// A controller could not start.
    #[error(transparent)]
    Controller(#[from] ControllerStartError),
    /// The detector flagged nothing.
    #[error("the victim's detector flagged no packet: nothing to trace")]
    NothingDetected,
    /// A trace failed outright.
    #[error("trace at the victim AS{victim}: {msg}")]
    Trace {
        /// The victim.
        victim: Asn,
        /// Why.
        msg: String,
    },
    /// The results store could not be opened or written.
    #[error("results store: {0}")]
    Store(#[from] ashiato_store::StoreError),
    /// The output directory could not be written.
    #[error("{path}: {source}", path = .path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// A finished run whose services are still up (for `--serve`).
pub struct Running {
    /// Every service.
    pub services: Services,
    /// The victim's controller address.
    pub victim_addr: SocketAddr,
    /// The victim.
    pub victim: Asn,
    /// The TLS directory.
    pub tls_dir: PathBuf,
}

impl Running {
    /// Stops every service.
    pub async fn stop(self) {
        self.services.stop().await;
    }
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Runs the lab; `progress` hears what is happening (the binary prints it on stderr).
pub async fn run(cfg: &LabConfig, progress: &dyn Fn(&str)) -> Result<(Report, Running), LabError> {
    let began = Instant::now();
    ashiato_net::client::reuse_connections(cfg.reuse_connections);
    let chosen = choose(&cfg.topology, cfg.seed)?;
    let key = lab_key(cfg.seed);
    let domains = chosen.topology.len();
    let origins = cfg.origins.unwrap_or(if domains < 20 { 4 } else { 5 });
    let cond = &cfg.conditions;
    // A background packet crosses about three links in the scenario's three seconds, so
    // PPS × links packets put about PPS on each link each second.
    let background = match cond.background_pps {
        Some(pps) => ((pps.max(0.0) * chosen.topology.link_count() as f64) as usize)
            .clamp(400, MAX_BACKGROUND),
        None => (domains * 4).max(400),
    };
    let sc = ScenarioConfig {
        seed: cfg.seed,
        participation: cfg.participation,
        origins,
        packets: cfg.packets,
        background,
        must_attack: chosen.must_attack.clone(),
        core: cond.core,
        duplicates: cond.duplicates,
        multipath: cond.multipath,
    };
    // The scenario happened in the last few seconds, whole epochs, so every probe holds it.
    let start_ns = (now_ns() / 1_000_000_000).saturating_sub(5) * 1_000_000_000;
    let s = Scenario::build(chosen.topology.clone(), chosen.victim, &sc, &key, start_ns)?;

    // Detection at the victim's edge: only what it flags is traced.
    let edge = s.victim_edge();
    let frames: Vec<(u64, &[u8])> = edge.iter().map(|e| (e.0, e.1)).collect();
    let flagged = detect(&frames, DetectorConfig::default());
    let detected: Vec<u32> = flagged.iter().map(|&i| edge[i].2).collect();
    if detected.is_empty() {
        return Err(LabError::NothingDetected);
    }

    // PKI, key, probes, controllers.
    std::fs::create_dir_all(&cfg.out_dir).map_err(|source| LabError::Write {
        path: cfg.out_dir.clone(),
        source,
    })?;
    let tls_dir = cfg.out_dir.join("tls");
    let key_file = cfg.out_dir.join("federation.key");
    write_key(&key_file, &key)?;
    progress(&format!(
        "issuing {} identities from a fresh federation CA in {}",
        s.participants.len(),
        tls_dir.display()
    ));
    let tls: BTreeMap<Asn, DomainTls> = make_pki(&tls_dir, s.participants.iter().copied())?;
    progress(&format!(
        "starting {} probes and {} controllers on 127.0.0.1",
        s.taps.len(),
        s.participants.len()
    ));
    let store_path = cfg.out_dir.join("traces.db");
    let store = Store::open(&store_path.display().to_string()).await?;
    let store_desc = store.describe();
    let sink: Arc<dyn TraceSink> = Arc::new(StoreSink::new(store, s.victim, "lab"));
    let mut services = Services::new();
    let down = down_probes(&s, cond.probe_failures, cfg.seed);
    services
        .start_probes(&s, &key, &tls, cond.probe_fpr, &down)
        .await?;
    let shared = Shared {
        key,
        tls_dir: &tls_dir,
        key_file: &key_file,
        mode: cfg.mode,
        victim_sink: Some(sink),
        link_delay: cond.link_delay,
    };
    let ctl = Controllers::start(&s, &mut services, &tls, shared).await?;
    let setup = began.elapsed();
    let (victim_addr, victim_ctl) =
        ctl.by_domain
            .get(&s.victim)
            .cloned()
            .ok_or_else(|| LabError::Trace {
                victim: s.victim,
                msg: "the victim runs no controller".into(),
            })?;

    // The detected packets, traced as one incident in batches.
    let packets: Vec<TracePacket> = detected.iter().map(|&i| trace_packet(&s, i)).collect();
    progress(&format!(
        "tracing {} detected packets from AS{} ({} mode)",
        packets.len(),
        s.victim,
        cfg.mode.as_str()
    ));
    let incident = ashiato_controller::new_id();
    let mut graphs = Vec::new();
    let mut stored = 0usize;
    let mut store_errors = Vec::new();
    for chunk in packets.chunks(MAX_PACKETS) {
        let r = victim_ctl
            .trace(TraceStart {
                packets: chunk.to_vec(),
                mode: Some(cfg.mode),
                deadline_ms: None,
                incident: Some(incident.clone()),
                source: Some("lab".into()),
                table_id: victim_ctl.table_id().to_string(),
            })
            .await
            .map_err(|e| LabError::Trace {
                victim: s.victim,
                msg: e.to_string(),
            })?;
        if r.stored {
            stored += 1;
        } else if let Some(e) = r.store_error {
            store_errors.push(e);
        }
        graphs.push(r.graph);
    }
    if let Some(e) = store_errors.first() {
        progress(&format!("traces not stored: {e}"));
    }
    let graph = ashiato_trace::graph::merge(&graphs).ok_or_else(|| LabError::Trace {
        victim: s.victim,
        msg: "no graph".into(),
    })?;

    // Single-packet traces over HTTP, one after another, the farthest-reaching first.
    let client_tls = tls[&s.victim].client.clone();
    let client = ServiceClient::new(&victim_addr.to_string(), Some(client_tls.clone()))
        .with_timeout(Duration::from_secs(60));
    let mut order: Vec<usize> = (0..detected.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(graph.paths.get(i).map_or(0, |p| p.path.len())));
    progress(&format!(
        "timing {} single-packet traces over HTTP/mutual TLS",
        cfg.traces
    ));
    let mut times_ms = Vec::new();
    for k in 0..cfg.traces {
        let i = order[k % order.len()];
        let start = single(&packets[i], cfg.mode, victim_ctl.table_id());
        let t = Instant::now();
        let r: Result<TraceResult, _> = client.call("POST", "/v1/trace", Some(&start)).await;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        r.map_err(|e| LabError::Trace {
            victim: s.victim,
            msg: ashiato_net::error_chain(&e),
        })?;
        times_ms.push(ms);
    }

    let throughput = match cfg.throughput {
        Some(d) => {
            progress(&format!(
                "firing single-packet traces at AS{} for {:.0} s, {} at a time",
                s.victim,
                d.as_secs_f64(),
                cfg.concurrency
            ));
            Some(
                throughput(
                    &client,
                    &packets,
                    cfg.mode,
                    victim_ctl.table_id(),
                    d,
                    cfg.concurrency,
                )
                .await,
            )
        }
        None => None,
    };

    let files = write_graph(&cfg.out_dir, &graph)?;
    let report = Report::build(ReportInputs {
        cfg,
        label: &chosen.label,
        s: &s,
        detected: &detected,
        graph: &graph,
        times_ms,
        setup,
        services: services.count(),
        table_bytes: services.table_bytes,
        files,
        store: store_desc,
        stored_traces: stored,
        throughput,
        sample: sample_evidence(&graph),
        sample_packet: packets.first().map(|p| (p.digest.clone(), p.time_ns)),
        down: &down,
        capped: ctl.capped,
    });
    Ok((
        report,
        Running {
            services,
            victim_addr,
            victim: s.victim,
            tls_dir,
        },
    ))
}

/// What [`Report::build`] needs.
pub(crate) struct ReportInputs<'a> {
    pub cfg: &'a LabConfig,
    pub label: &'a str,
    pub s: &'a Scenario,
    pub detected: &'a [u32],
    pub graph: &'a AttackGraph,
    pub times_ms: Vec<f64>,
    pub setup: Duration,
    pub services: usize,
    pub table_bytes: u64,
    pub files: GraphFiles,
    pub store: String,
    pub stored_traces: usize,
    pub throughput: Option<Throughput>,
    pub sample: Vec<Evidence>,
    pub sample_packet: Option<(String, u64)>,
    pub down: &'a BTreeSet<Tap>,
    pub capped: usize,
}

/// The probes that are down: a seeded `share` of every probe of every participant.
fn down_probes(s: &Scenario, share: f64, seed: u64) -> BTreeSet<Tap> {
    if share <= 0.0 {
        return BTreeSet::new();
    }
    let mut rng = ashiato_rng::Xoshiro256pp::new(ashiato_rng::mix64(seed ^ 0x646f_776e));
    s.taps
        .keys()
        .filter(|_| ((rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < share)
        .cloned()
        .collect()
}

/// The packet as the victim's detector hands it to its controller.
fn trace_packet(s: &Scenario, i: u32) -> TracePacket {
    let p = &s.sent[i as usize];
    TracePacket {
        digest: format!("{:032x}", p.digest),
        time_ns: p.arrived_ns,
        uncertainty_ns: UNCERTAINTY_NS,
    }
}

fn single(p: &TracePacket, mode: TraceMode, table_id: &str) -> TraceStart {
    TraceStart {
        packets: vec![p.clone()],
        mode: Some(mode),
        deadline_ms: None,
        incident: None,
        source: Some("lab".into()),
        table_id: table_id.to_string(),
    }
}

/// Result of the throughput run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Throughput {
    /// Seconds it ran.
    pub seconds: f64,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Traces answered.
    pub ok: u64,
    /// Requests that failed (refused, timed out).
    pub failed: u64,
    /// Traces answered per second.
    pub per_second: f64,
    /// Median latency under that load, ms.
    pub median_ms: f64,
}

async fn throughput(
    client: &ServiceClient,
    packets: &[TracePacket],
    mode: TraceMode,
    table_id: &str,
    d: Duration,
    concurrency: usize,
) -> Throughput {
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let began = Instant::now();
    let end = began + d;
    let mut tasks = Vec::new();
    for w in 0..concurrency.max(1) {
        let client = client.clone();
        let packets: Vec<TracePacket> = packets.to_vec();
        let (ok, failed) = (ok.clone(), failed.clone());
        let table_id = table_id.to_string();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut k = w;
            while Instant::now() < end {
                let start = single(&packets[k % packets.len()], mode, &table_id);
                k += concurrency;
                let t = Instant::now();
                let r: Result<TraceResult, _> =
                    client.call("POST", "/v1/trace", Some(&start)).await;
                match r {
                    Ok(_) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                        lat.push(t.elapsed().as_secs_f64() * 1e3);
                    }
                    Err(_) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        if let Ok(l) = t.await {
            lat.extend(l);
        }
    }
    let secs = began.elapsed().as_secs_f64();
    let ok = ok.load(Ordering::Relaxed);
    Throughput {
        seconds: secs,
        concurrency,
        ok,
        failed: failed.load(Ordering::Relaxed),
        per_second: ok as f64 / secs,
        median_ms: percentile(&mut lat, 0.5),
    }
}

/// Where the graph was written.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct GraphFiles {
    /// The attack graph as JSON.
    pub json: PathBuf,
    /// As Graphviz DOT.
    pub dot: PathBuf,
    /// Rendered by `dot -Tsvg`, when Graphviz is installed.
    pub svg: Option<PathBuf>,
    /// Why there is no SVG.
    pub svg_missing: Option<String>,
}

fn write_graph(dir: &Path, g: &AttackGraph) -> Result<GraphFiles, LabError> {
    let w = |path: &Path, bytes: &[u8]| {
        std::fs::write(path, bytes).map_err(|source| LabError::Write {
            path: path.to_owned(),
            source,
        })
    };
    let json = dir.join("graph.json");
    w(&json, &serde_json::to_vec_pretty(g).unwrap_or_default())?;
    let dot = dir.join("graph.dot");
    w(&dot, ashiato_trace::graph::to_dot(g).as_bytes())?;
    let svg = dir.join("graph.svg");
    let (svg, svg_missing) = match std::process::Command::new("dot")
        .arg("-Tsvg")
        .arg(&dot)
        .arg("-o")
        .arg(&svg)
        .status()
    {
        Ok(st) if st.success() => (Some(svg), None),
        Ok(st) => (None, Some(format!("dot -Tsvg failed ({st})"))),
        Err(e) => (
            None,
            Some(format!(
                "Graphviz `dot` is not installed ({e}); render graph.dot elsewhere"
            )),
        ),
    };
    Ok(GraphFiles {
        json,
        dot,
        svg,
        svg_missing,
    })
}

/// Per-hop evidence of the attributed packet with the longest path (else packet 0): every
/// `seen` answer on its path, victim first.
fn sample_evidence(g: &AttackGraph) -> Vec<Evidence> {
    let Some(p) = g
        .paths
        .iter()
        .filter(|p| matches!(p.end, PathEnd::Origin { .. }))
        .max_by_key(|p| (p.path.len(), std::cmp::Reverse(p.packet)))
        .or_else(|| g.paths.first())
    else {
        return Vec::new();
    };
    let on_path: HashSet<Asn> = p.path.iter().copied().collect();
    let mut out = Vec::new();
    for &d in &p.path {
        for r in g
            .reports
            .iter()
            .filter(|r| r.packet == p.packet && r.domain == d && on_path.contains(&r.domain))
        {
            for e in &r.evidence {
                if e.verdict == ashiato_api::federation::ProbeVerdict::Seen {
                    out.push(Evidence {
                        domain: d,
                        probe: e.probe.clone(),
                        outcome: r.outcome.as_str().into(),
                        epoch_start_ns: e.epoch_start_ns.unwrap_or(0),
                        fpr: e.fpr.unwrap_or(0.0),
                    });
                }
            }
        }
    }
    out.dedup_by(|a, b| a.domain == b.domain && a.probe == b.probe);
    out
}

/// The identity an operator uses to ask the victim's controller.
pub fn operator_identity(victim: Asn) -> String {
    identity(victim)
}
