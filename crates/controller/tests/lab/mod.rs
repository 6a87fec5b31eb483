//! A federation on loopback: real probes over synthetic captures, controllers with real
//! mutual TLS from one lab PKI, each served by the accept loop on port 0.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ashiato_api::federation::{TracePacket, TraceStart};
use ashiato_controller::{Controller, Deps, DomainConfig};
use ashiato_digest::DEMO_KEY;
use ashiato_net::server::{ServerLimits, serve};
use ashiato_net::tls::{PkiOptions, TlsFiles, client_config, init_pki, server_config};
use ashiato_probe::api::router;
use ashiato_probe::{Input, Probe, ProbeConfig};
use ashiato_tables::{FilterKind, TablesConfig, theory};
use ashiato_wire::capfile::PcapWriter;
use ashiato_wire::packet::TcpFlags;
use ashiato_wire::{LinkType, build};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// When the traced packets were seen.
pub const T0: u64 = 1_600_000_000_000_000_000;

/// The domains of the chain A ← B ← C.
pub const A: u32 = 64501;
pub const B: u32 = 64502;
pub const C: u32 = 64503;

/// A traced packet's frame: distinct per `n`.
pub fn frame(n: u32) -> Vec<u8> {
    build::ipv4_tcp_frame(
        Ipv4Addr::from(0x0a00_0000u32 + n),
        Ipv4Addr::new(192, 0, 2, 1),
        40000,
        445,
        n,
        0,
        TcpFlags::SYN,
        n as u16,
        &[],
    )
}

/// The digest of [`frame`]`(n)`.
pub fn digest(n: u32) -> String {
    DEMO_KEY
        .digest_frame(LinkType::Ethernet, &frame(n))
        .unwrap()
        .to_string()
}

/// A packet to trace: [`frame`]`(n)` seen at [`T0`].
pub fn packet(n: u32) -> TracePacket {
    TracePacket {
        digest: digest(n),
        time_ns: T0,
        uncertainty_ns: 300_000_000,
    }
}

/// A trace request for packets `ns`.
pub fn start(ns: &[u32]) -> TraceStart {
    TraceStart {
        packets: ns.iter().map(|&n| packet(n)).collect(),
        mode: None,
        deadline_ms: None,
        incident: None,
        source: Some("lab".into()),
        table_id: DEMO_KEY.table_id_hex(),
    }
}

/// Writes a capture holding the traced packets `ns` at [`T0`] and filler every 100 ms from
/// T0 − 5 s to T0 + 5 s, so the probe holds the whole window around T0.
fn capture(path: &Path, ns: &[u32], filler: u32) {
    let f = std::fs::File::create(path).unwrap();
    let mut w = PcapWriter::new(f, LinkType::Ethernet, 65535).unwrap();
    let step = 10_000_000_000 / u64::from(filler.max(1));
    let mut frames: Vec<(u64, Vec<u8>)> = (0..filler)
        .map(|i| {
            (
                T0 - 5_000_000_000 + u64::from(i) * step,
                frame(1_000_000 + i),
            )
        })
        .collect();
    for &n in ns {
        frames.push((T0, frame(n)));
    }
    frames.sort_by_key(|f| f.0);
    for (ts, fr) in frames {
        w.write(ts, &fr).unwrap();
    }
}

fn tables(per_epoch: u64, fpr: f64) -> TablesConfig {
    TablesConfig {
        epoch_ns: 1_000_000_000,
        retention_epochs: 60,
        params: theory::plan(FilterKind::Blocked, per_epoch, fpr),
        table_id: 0,
        spill: None,
        prefault: false,
    }
}

/// The lab: a PKI, probes, controllers; everything stops when dropped.
pub struct Lab {
    pub dir: tempfile::TempDir,
    stops: Vec<oneshot::Sender<()>>,
    _probes: Vec<Probe>,
    pub controllers: BTreeMap<u32, Arc<Controller>>,
    pub addrs: BTreeMap<u32, String>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for s in self.stops.drain(..) {
            let _ = s.send(());
        }
    }
}

/// One probe: its name, what it watches (`edge` or `link:N`) and the packets it saw.
pub struct ProbeSpec {
    pub name: &'static str,
    pub watches: String,
    pub saw: Vec<u32>,
    /// Other packets it recorded over the 10 s around [`T0`].
    pub filler: u32,
    /// Packets per epoch and false-positive rate its tables are sized for.
    pub sized: (u64, f64),
}

pub fn probe(name: &'static str, watches: &str, saw: &[u32]) -> ProbeSpec {
    ProbeSpec {
        name,
        watches: watches.to_string(),
        saw: saw.to_vec(),
        filler: 100,
        sized: (2_000, 1e-6),
    }
}

/// A probe sized for 50 packets a second at 10⁻³ on a link that carries 2,000 a second: its
/// tables are nearly full, and it "sees" almost anything.
pub fn overloaded_probe(name: &'static str, watches: &str, saw: &[u32]) -> ProbeSpec {
    ProbeSpec {
        filler: 20_000,
        sized: (50, 1e-3),
        ..probe(name, watches, saw)
    }
}

/// One domain: its ASN, probes, and the extra TOML after `[domain]`/`[tls]` (neighbours,
/// peers, trace and limits sections), where `{B}` and the like name controller addresses.
pub struct DomainSpec {
    pub asn: u32,
    pub probes: Vec<ProbeSpec>,
    pub toml: String,
}

impl Lab {
    /// Makes the PKI (every `as<N>`, `probe`, `operator`, valid from 30 days ago) and an
    /// empty lab.
    pub fn new(extra_names: &[&str]) -> Lab {
        ashiato_net::tls::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let mut names: Vec<String> = ["probe", "operator"].map(String::from).to_vec();
        for n in [A, B, C, 64510, 64520] {
            names.push(format!("as{n}"));
        }
        names.extend(extra_names.iter().map(|s| s.to_string()));
        let now = std::time::SystemTime::now() - Duration::from_secs(30 * 86_400);
        init_pki(
            &dir.path().join("pki"),
            &PkiOptions {
                names,
                ..PkiOptions::default()
            },
            now,
        )
        .unwrap();
        Lab {
            dir,
            stops: Vec::new(),
            _probes: Vec::new(),
            controllers: BTreeMap::new(),
            addrs: BTreeMap::new(),
        }
    }

    pub fn pki(&self) -> PathBuf {
        self.dir.path().join("pki")
    }

    /// A client TLS configuration for identity `name`.
    pub fn client_tls(&self, name: &str) -> Arc<rustls::ClientConfig> {
        client_config(&TlsFiles::in_dir(&self.pki(), name)).unwrap()
    }

    /// Serves `app` with TLS identity `name` on a listener.
    pub fn serve_on(&mut self, listener: TcpListener, app: axum::Router, name: &str) {
        let tls = server_config(&TlsFiles::in_dir(&self.pki(), name)).unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        self.stops.push(tx);
        tokio::spawn(serve(
            listener,
            app,
            Some(tls),
            ServerLimits::default(),
            async {
                let _ = rx.await;
            },
        ));
    }

    /// Starts a probe over a capture of what it saw; returns its address.
    pub async fn start_probe(&mut self, p: &ProbeSpec) -> String {
        let pcap = self.dir.path().join(format!("{}.pcap", p.name));
        capture(&pcap, &p.saw, p.filler);
        let probe = Probe::start(ProbeConfig {
            name: p.name.into(),
            input: Input::Files(vec![pcap]),
            key: DEMO_KEY,
            tables: tables(p.sized.0, p.sized.1),
        })
        .unwrap();
        assert!(probe.wait_input_done(Duration::from_secs(30)));
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        self.serve_on(l, router(probe.state()), "probe");
        self._probes.push(probe);
        addr
    }

    /// Binds a listener for a controller, so its address is known before configs are
    /// written; `{AS}` placeholders in configs are replaced with it.
    pub async fn reserve(&mut self, asn: u32) -> TcpListener {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        self.addrs.insert(asn, l.local_addr().unwrap().to_string());
        l
    }

    /// The configuration text of a domain.
    pub async fn config_text(&mut self, d: &DomainSpec) -> String {
        let mut t = format!(
            "[domain]\nasn = {}\nname = \"lab AS{}\"\nlisten = \"{}\"\nkey_file = \"unused.key\"\n\n[tls]\ndir = \"{}\"\nname = \"as{}\"\n\n",
            d.asn,
            d.asn,
            self.addrs[&d.asn],
            self.pki().display(),
            d.asn
        );
        for p in &d.probes {
            let addr = self.start_probe(p).await;
            t.push_str(&format!(
                "[[probe]]\nname = \"{}\"\naddress = \"{addr}\"\nwatches = \"{}\"\n\n",
                p.name, p.watches
            ));
        }
        let mut extra = d.toml.clone();
        for (asn, addr) in &self.addrs {
            extra = extra.replace(&format!("{{{asn}}}"), addr);
        }
        t.push_str(&extra);
        t
    }

    /// Starts a domain's controller on its reserved listener.
    pub async fn start_domain(&mut self, listener: TcpListener, d: DomainSpec) -> Arc<Controller> {
        let text = self.config_text(&d).await;
        let cfg = DomainConfig::parse(&text, Path::new("lab.toml"))
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        let tls = self.client_tls(&format!("as{}", d.asn));
        let c = Controller::new(
            cfg,
            Deps {
                key: DEMO_KEY,
                probe_tls: Some(tls.clone()),
                peer_tls: Some(tls),
                sink: None,
                topology: None,
            },
        )
        .unwrap();
        self.serve_on(listener, c.router(), &format!("as{}", d.asn));
        self.controllers.insert(d.asn, c.clone());
        c
    }
}

/// The chain A ← B ← C: packet 1 came from C (C's edge, the C–B and B–A links saw it);
/// packet 2 was seen only at A's edge. `trace` is A's `[trace]` section.
pub async fn chain(trace: &str) -> Lab {
    let mut lab = Lab::new(&[]);
    let (la, lb, lc) = (
        lab.reserve(A).await,
        lab.reserve(B).await,
        lab.reserve(C).await,
    );
    lab.start_domain(
        lc,
        DomainSpec {
            asn: C,
            probes: vec![
                probe("c-edge", "edge", &[1]),
                probe("c-to-b", &format!("link:{B}"), &[1]),
            ],
            toml: format!("[[neighbour]]\nasn = {B}\ncontroller = \"{{{B}}}\"\n"),
        },
    )
    .await;
    lab.start_domain(
        lb,
        DomainSpec {
            asn: B,
            probes: vec![
                probe("b-to-a", &format!("link:{A}"), &[1]),
                probe("b-to-c", &format!("link:{C}"), &[1]),
            ],
            toml: format!(
                "[[neighbour]]\nasn = {A}\ncontroller = \"{{{A}}}\"\n[[neighbour]]\nasn = {C}\ncontroller = \"{{{C}}}\"\n"
            ),
        },
    )
    .await;
    lab.start_domain(
        la,
        DomainSpec {
            asn: A,
            probes: vec![
                probe("a-edge", "edge", &[1, 2]),
                probe("a-to-b", &format!("link:{B}"), &[1]),
            ],
            toml: format!(
                "{trace}\n[[neighbour]]\nasn = {B}\ncontroller = \"{{{B}}}\"\n[[peer]]\nasn = {C}\ncontroller = \"{{{C}}}\"\n"
            ),
        },
    )
    .await;
    lab
}

/// A alone, whose link to B saw packet 1, with B's controller at `b_addr` (a fault).
pub async fn a_facing(b_addr: &str, trace: &str) -> Lab {
    let mut lab = Lab::new(&[]);
    let la = lab.reserve(A).await;
    lab.addrs.insert(B, b_addr.to_string());
    lab.start_domain(
        la,
        DomainSpec {
            asn: A,
            probes: vec![probe("a-to-b", &format!("link:{B}"), &[1])],
            toml: format!("{trace}\n[[neighbour]]\nasn = {B}\ncontroller = \"{{{B}}}\"\n"),
        },
    )
    .await;
    lab
}
