//! The domain controllers: one per participating domain, configured programmatically the way
//! an operator's domain file would configure it, and served over mutual TLS.
//!
//! - **probes**: the domain's edge probe and one probe per neighbour link;
//! - **neighbours**: every neighbour, with its controller's address when it participates;
//!   for one that does not, the participating domains beyond it
//!   (`Topology::beyond(neighbour, this domain, participates, BEYOND_DEPTH)`), so a trace
//!   can skip it (InterTrack's peering skip);
//! - **peers**: every participant (mesh mode asks them all at once). Beyond
//!   [`ALL_PEERS_UP_TO`] participants only the victim lists them (it is the only initiator
//!   in a run; n² peer entries would dominate the lab's memory).
//! - **trace**: the lab's mode, a 100 ms uncertainty, a generous deadline (a 2-core machine
//!   serving a thousand domains is slower than a federation of real machines);
//! - **limits**: the per-peer token bucket is opened wide: every domain is the lab's own,
//!   and the throughput run would otherwise measure the bucket.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use ashiato_api::federation::{MAX_PACKETS, TraceMode};
use ashiato_controller::config::{
    BeyondEntry, DomainSection, LimitsSection, NeighbourEntry, PeerEntry, ProbeEntry, StoreSection,
    TlsSection, TraceSection, TriggersSection,
};
use ashiato_controller::{Controller, Deps, DomainConfig, TraceSink};
use ashiato_digest::Key;
use ashiato_trace::topology::Asn;
use tokio::net::TcpListener;

use crate::scenario::Scenario;
use crate::services::{DomainTls, ProbeService, ServiceError, Services, identity, lab_limits};

/// How far a peering skip looks past a non-participating neighbour (domains in the gap).
pub const BEYOND_DEPTH: usize = 3;
/// Up to this many participants, every controller lists every other as a peer.
pub const ALL_PEERS_UP_TO: usize = 256;
/// Uncertainty of the detector's times, ns: the victim's clock and the time it took to flag.
pub const UNCERTAINTY_NS: u64 = 100_000_000;
/// Deadline of a whole trace, ms: the longest a request may carry. A debug build tracing
/// through a peering skip to dozens of domains on a loaded 2-core machine needs tens of
/// seconds; a deadline that ran out would turn answers into gaps and measure the machine.
pub const DEADLINE_MS: u32 = ashiato_api::federation::MAX_DEADLINE_MS;

/// Why a controller could not start.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ControllerStartError {
    /// The service stack failed (binding a port).
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// The controller refused its configuration.
    #[error("controller of AS{domain}: {msg}")]
    Refused {
        /// The domain.
        domain: Asn,
        /// Why.
        msg: String,
    },
}

/// The running controllers.
pub struct Controllers {
    /// By domain: where it listens and the controller itself.
    pub by_domain: BTreeMap<Asn, (SocketAddr, Arc<Controller>)>,
    /// Non-participating neighbours whose list of domains beyond was cut at
    /// `ashiato_trace::topology::BEYOND_CAP` (a trace may miss a domain past them).
    pub capped: usize,
}

/// Builds the configuration of `domain`'s controller.
#[allow(
    clippy::too_many_arguments,
    reason = "one argument per part of the domain file"
)]
fn domain_config(
    s: &Scenario,
    domain: Asn,
    listen: SocketAddr,
    addrs: &BTreeMap<Asn, SocketAddr>,
    probes: &[ProbeService],
    tls_dir: &Path,
    key_file: &Path,
    mode: TraceMode,
    capped: &mut usize,
) -> DomainConfig {
    let participates = |a: Asn| s.participants.contains(&a);
    let neighbours = s
        .topology
        .neighbours(domain)
        .map(|(n, _)| {
            let controller = addrs.get(&n).map(|a| a.to_string());
            let beyond = if controller.is_some() {
                Vec::new()
            } else {
                let b = s.topology.beyond(n, domain, &participates, BEYOND_DEPTH);
                if b.capped {
                    *capped += 1;
                }
                b.skips
                    .into_iter()
                    .filter_map(|k| {
                        let addr = addrs.get(&k.domain)?;
                        let mut via = k.gap;
                        via.reverse();
                        Some(BeyondEntry {
                            asn: k.domain,
                            via,
                            controller: addr.to_string(),
                        })
                    })
                    .collect()
            };
            NeighbourEntry {
                asn: n,
                controller,
                beyond,
            }
        })
        .collect();
    let peers = if domain == s.victim || s.participants.len() <= ALL_PEERS_UP_TO {
        addrs
            .iter()
            .filter(|&(&a, _)| a != domain)
            .map(|(&asn, a)| PeerEntry {
                asn,
                controller: a.to_string(),
            })
            .collect()
    } else {
        Vec::new()
    };
    DomainConfig {
        domain: DomainSection {
            asn: domain,
            name: format!("lab domain AS{domain}"),
            listen,
            key_file: key_file.to_owned(),
            dev_insecure: false,
        },
        tls: Some(TlsSection {
            dir: tls_dir.to_owned(),
            name: identity(domain),
        }),
        trace: TraceSection {
            mode,
            deadline_ms: DEADLINE_MS,
            probe_timeout_ms: DEADLINE_MS / 3,
            uncertainty_ms: UNCERTAINTY_NS / 1_000_000,
            ..TraceSection::default()
        },
        limits: LimitsSection {
            max_packets_per_trace: MAX_PACKETS,
            peer_requests_per_second: 1e6,
            peer_burst: 1_000_000,
            max_concurrent_traces: 1024,
            recent_traces: 64,
            ..LimitsSection::default()
        },
        probes: probes
            .iter()
            .map(|p| ProbeEntry {
                name: p.tap.name(),
                address: p.addr.to_string(),
                watches: p.tap.watch.clone(),
            })
            .collect(),
        neighbours,
        peers,
        triggers: TriggersSection::default(),
        // Stores are handed over as sinks (the victim's); the file setting is not used here.
        store: StoreSection { url: "none".into() },
    }
}

/// What every controller of the lab shares.
pub struct Shared<'a> {
    /// The federation key.
    pub key: Key,
    /// The lab's TLS directory.
    pub tls_dir: &'a Path,
    /// The federation key's file.
    pub key_file: &'a Path,
    /// Recursive or mesh.
    pub mode: TraceMode,
    /// Where the victim's controller stores its traces.
    pub victim_sink: Option<Arc<dyn TraceSink>>,
    /// One-way delay between domains: every hop request waits this long on its way in and
    /// its answer on its way out (a delay line in the lab; this kernel has no netem).
    pub link_delay: std::time::Duration,
}

impl Controllers {
    /// Binds one port per participant, then configures, builds and serves every controller.
    pub async fn start(
        s: &Scenario,
        services: &mut Services,
        tls: &BTreeMap<Asn, DomainTls>,
        shared: Shared<'_>,
    ) -> Result<Controllers, ControllerStartError> {
        let Shared {
            key,
            tls_dir,
            key_file,
            mode,
            victim_sink,
            link_delay,
        } = shared;
        let mut capped = 0;
        let mut listeners = BTreeMap::new();
        let mut addrs = BTreeMap::new();
        for &d in &s.participants {
            let l =
                TcpListener::bind("127.0.0.1:0")
                    .await
                    .map_err(|source| ServiceError::Bind {
                        what: format!("controller of AS{d}"),
                        source,
                    })?;
            let a = l.local_addr().map_err(|source| ServiceError::Bind {
                what: "controller address".into(),
                source,
            })?;
            addrs.insert(d, a);
            listeners.insert(d, l);
        }
        let mut by_domain = BTreeMap::new();
        for (d, listener) in listeners {
            let probes = services.probes.get(&d).map(Vec::as_slice).unwrap_or(&[]);
            let cfg = domain_config(
                s,
                d,
                addrs[&d],
                &addrs,
                probes,
                tls_dir,
                key_file,
                mode,
                &mut capped,
            );
            let Some(dtls) = tls.get(&d) else { continue };
            let deps = Deps {
                key,
                probe_tls: Some(dtls.client.clone()),
                peer_tls: Some(dtls.client.clone()),
                sink: if d == s.victim {
                    victim_sink.clone()
                } else {
                    None
                },
                topology: None,
            };
            let c = Controller::new(cfg, deps).map_err(|e| ControllerStartError::Refused {
                domain: d,
                msg: e.to_string(),
            })?;
            let mut router = c.router();
            if !link_delay.is_zero() {
                router = router.layer(axum::middleware::from_fn(
                    move |req: axum::extract::Request, next: axum::middleware::Next| async move {
                        let between_domains = req.uri().path() == "/v1/hop";
                        if between_domains {
                            tokio::time::sleep(link_delay).await;
                        }
                        let resp = next.run(req).await;
                        if between_domains {
                            tokio::time::sleep(link_delay).await;
                        }
                        resp
                    },
                ));
            }
            services.spawn(listener, router, dtls.server.clone(), lab_limits(1024));
            by_domain.insert(d, (addrs[&d], c));
        }
        Ok(Controllers { by_domain, capped })
    }
}
