//! The IO shell: the federation's PKI, probes filled from the scenario, and serving every
//! service over mutual TLS on 127.0.0.1 in this process's tokio runtime.
//!
//! One identity per domain, `as<ASN>`, issued by one federation CA in `<out>/tls`: the
//! domain's controller serves and calls with it, and so do its probes. One server and one
//! client TLS configuration per domain are built and shared by all of its services, so a
//! thousand domains cost a thousand configurations, not one per probe.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ashiato_digest::Key;
use ashiato_net::server::{ServerLimits, serve};
use ashiato_net::tls::{PkiOptions, init_pki};
use ashiato_net::tls::{TlsError, TlsFiles, client_config, server_config};
use ashiato_probe::api::{ProbeState, router};
use ashiato_tables::{DigestTables, FilterKind, TableError, TablesConfig, theory};
use ashiato_trace::topology::Asn;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::scenario::{Scenario, Tap};

/// Default false-positive rate of every probe's epoch filter at its busiest epoch (the
/// trial's probes ran at a few 10⁻⁶, BRIEF §1); `ashiato lab --probe-fpr` sets another.
pub const TARGET_FPR: f64 = 1e-6;
/// Epoch length of the lab's probes.
pub const EPOCH_NS: u64 = 1_000_000_000;

/// Why the services could not start.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The PKI could not be made or read.
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    /// A probe's tables could not be allocated.
    #[error("tables of probe {probe} of AS{domain}: {source}")]
    Tables {
        /// The domain.
        domain: Asn,
        /// The probe.
        probe: String,
        /// Why.
        source: TableError,
    },
    /// A socket could not be bound.
    #[error("binding a port on 127.0.0.1 ({what}): {source}")]
    Bind {
        /// For which service.
        what: String,
        /// Why (often the open-file limit).
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("{path}: {source}", path = .path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The TLS identity and configurations of one domain.
#[derive(Clone)]
pub struct DomainTls {
    /// `as<ASN>`.
    pub name: String,
    /// Served by the domain's controller and probes (client certificates required).
    pub server: Arc<rustls::ServerConfig>,
    /// Used by the domain's controller to call its probes and other controllers.
    pub client: Arc<rustls::ClientConfig>,
}

/// The identity name of a domain: `as<ASN>`.
pub fn identity(domain: Asn) -> String {
    format!("as{domain}")
}

/// Makes the federation CA and one identity per domain in `dir`, and loads each domain's
/// TLS configurations.
pub fn make_pki(
    dir: &Path,
    domains: impl IntoIterator<Item = Asn>,
) -> Result<BTreeMap<Asn, DomainTls>, ServiceError> {
    let domains: Vec<Asn> = domains.into_iter().collect();
    let opts = PkiOptions {
        names: domains.iter().map(|&d| identity(d)).collect(),
        federation: Some("lab".into()),
        ..PkiOptions::default()
    };
    init_pki(dir, &opts, std::time::SystemTime::now())?;
    let mut out = BTreeMap::new();
    for d in domains {
        let name = identity(d);
        let files = TlsFiles::in_dir(dir, &name);
        out.insert(
            d,
            DomainTls {
                server: server_config(&files)?,
                client: client_config(&files)?,
                name,
            },
        );
    }
    Ok(out)
}

/// Writes the federation key file (32 hex digits, mode 0600).
pub fn write_key(path: &Path, key: &Key) -> Result<(), ServiceError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let w = |source| ServiceError::Write {
        path: path.to_owned(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(w)?;
    writeln!(f, "{}", key.to_hex()).map_err(w)
}

/// The federation key of a lab seed (a lab key: anyone who knows the seed can compute it).
pub fn lab_key(seed: u64) -> Key {
    let a = ashiato_rng::mix64(seed ^ 0x6173_6869_6174_6f6b);
    let b = ashiato_rng::mix64(a ^ 0x6b65_795f_6c61_6273);
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&a.to_le_bytes());
    bytes[8..].copy_from_slice(&b.to_le_bytes());
    Key::from_bytes(bytes)
}

/// One running probe.
pub struct ProbeService {
    /// Where it sits.
    pub tap: Tap,
    /// Its query API.
    pub addr: SocketAddr,
    /// Its state (tables, counters).
    pub state: Arc<ProbeState>,
}

/// Everything served, and the signal that stops it.
pub struct Services {
    /// Probes by domain.
    pub probes: BTreeMap<Asn, Vec<ProbeService>>,
    /// Bytes of digest-table memory over all probes.
    pub table_bytes: u64,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<std::io::Result<()>>>,
}

/// Limits of a lab service: every connection comes from 127.0.0.1, so the per-address cap
/// is half the connections, not the default 16.
pub fn lab_limits(max_connections: usize) -> ServerLimits {
    ServerLimits {
        max_connections,
        per_ip: max_connections / 2,
        ..ServerLimits::default()
    }
}

impl Services {
    /// No services yet.
    pub fn new() -> Services {
        let (shutdown, _) = watch::channel(false);
        Services {
            probes: BTreeMap::new(),
            table_bytes: 0,
            shutdown,
            tasks: Vec::new(),
        }
    }

    /// Serves `app` on `listener` with `tls` until [`Services::stop`].
    pub fn spawn(
        &mut self,
        listener: TcpListener,
        app: axum::Router,
        tls: Arc<rustls::ServerConfig>,
        limits: ServerLimits,
    ) {
        let mut rx = self.shutdown.subscribe();
        self.tasks.push(tokio::spawn(serve(
            listener,
            app,
            Some(tls),
            limits,
            async move {
                let _ = rx.changed().await;
            },
        )));
    }

    /// Services running.
    pub fn count(&self) -> usize {
        self.tasks.len()
    }

    /// Stops every service and waits for them (at most 5 s).
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }

    /// Builds and serves every probe of the scenario: tables sized for the busiest epoch of
    /// each probe at [`TARGET_FPR`], filled in time order, touched over the whole scenario so
    /// quiet links answer `not_seen`, then marked finished.
    ///
    /// `fpr` is the rate each table is sized for at its busiest epoch (as `probe run --fpr`
    /// sizes for `--rate`); the taps in `down` get an address where nothing listens (a probe
    /// that is down: its controller's query fails, and its links cannot say).
    pub async fn start_probes(
        &mut self,
        s: &Scenario,
        key: &Key,
        tls: &BTreeMap<Asn, DomainTls>,
        fpr: f64,
        down: &std::collections::BTreeSet<Tap>,
    ) -> Result<(), ServiceError> {
        let first = s.start_ns / EPOCH_NS;
        let last = s.end_ns / EPOCH_NS;
        // Every epoch of the scenario stays in memory.
        let retention = (last - first + 2).max(4) as u32;
        for (tap, seen) in &s.taps {
            let mut per_epoch: BTreeMap<u64, u64> = BTreeMap::new();
            for (t, _) in seen {
                *per_epoch.entry(t / EPOCH_NS).or_default() += 1;
            }
            let busiest = per_epoch.values().copied().max().unwrap_or(0).max(16);
            let cfg = TablesConfig {
                epoch_ns: EPOCH_NS,
                retention_epochs: retention,
                params: theory::plan(FilterKind::Blocked, busiest, fpr),
                table_id: key.table_id(),
                spill: None,
                prefault: false,
            };
            let tables = DigestTables::new(cfg).map_err(|source| ServiceError::Tables {
                domain: tap.domain,
                probe: tap.name(),
                source,
            })?;
            self.table_bytes += tables.memory_bytes();
            {
                let mut w = tables.writer();
                w.touch(s.start_ns);
                for &(t, i) in seen {
                    w.insert(t, s.sent[i as usize].digest);
                }
                for e in first..=last {
                    w.touch(e * EPOCH_NS);
                }
                w.touch(s.end_ns);
                w.flush_counts();
            }
            let state = Arc::new(ProbeState::new(
                &format!("{}-{}", identity(tap.domain), tap.name()),
                "ashiato lab scenario",
                tables,
            ));
            state.counters.set_input_done();
            let listener =
                TcpListener::bind("127.0.0.1:0")
                    .await
                    .map_err(|source| ServiceError::Bind {
                        what: format!("probe {} of AS{}", tap.name(), tap.domain),
                        source,
                    })?;
            let addr = listener.local_addr().map_err(|source| ServiceError::Bind {
                what: "probe address".into(),
                source,
            })?;
            let Some(dtls) = tls.get(&tap.domain) else {
                continue;
            };
            if down.contains(tap) {
                drop(listener);
            } else {
                self.spawn(
                    listener,
                    router(state.clone()),
                    dtls.server.clone(),
                    lab_limits(64),
                );
            }
            self.probes
                .entry(tap.domain)
                .or_default()
                .push(ProbeService {
                    tap: tap.clone(),
                    addr,
                    state,
                });
        }
        Ok(())
    }
}

impl Default for Services {
    fn default() -> Self {
        Services::new()
    }
}
