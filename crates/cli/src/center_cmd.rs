//! `ashiato center`: the host-tracing center (`ashiato-center`) served over mutual TLS.
//!
//! Keys live in `--key-dir`, made on first start: `list.key` (32 random bytes: the keyed-hash
//! secret the center hands to enrolled agents at `GET /v1/enroll`), `sign.pk8` (the Ed25519 signing key) and
//! `sign.pub` (its public key in hex, for agents). Files are created with mode 0600.
//!
//! Claims and reports are kept in `--store` (default `center.db` in `--key-dir`), opened
//! and read back before the center listens: a store that cannot be opened or read stops it.
//!
//! `ashiato center export` renders one incident's ranking, graph, STIX bundle or X-ARF
//! notices from the store alone, so an operator needs neither the running center nor a
//! client certificate in a browser.

use std::collections::HashSet;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use ashiato_center::asn::AsnTable;
use ashiato_center::ledger::Ledger;
use ashiato_center::views::{FORMATS, RankFilter, Script, ViewCtx, render};
use ashiato_center::xarf::Contact;
use ashiato_center::{Center, CenterConfig, router};
use ashiato_hosttrace::claimlist::CenterList;
use ashiato_net::server::{ServerLimits, serve};
use ashiato_net::tls::{TlsFiles, server_config};

use crate::args::CenterArgs;
use crate::probe_cmd::service_runtime;

fn write_secret(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)?;
    Ok(())
}

/// Reads the keys, making them on first start.
fn keys(dir: &Path) -> Result<([u8; 32], Vec<u8>)> {
    use ring::rand::SecureRandom;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let (lk, sk) = (dir.join("list.key"), dir.join("sign.pk8"));
    let rng = ring::rand::SystemRandom::new();
    if !lk.exists() {
        let mut s = [0u8; 32];
        rng.fill(&mut s)
            .map_err(|_| anyhow::anyhow!("no system randomness"))?;
        write_secret(&lk, &s)?;
    }
    if !sk.exists() {
        let pk8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| anyhow::anyhow!("no system randomness"))?;
        write_secret(&sk, pk8.as_ref())?;
    }
    let secret: [u8; 32] = std::fs::read(&lk)?
        .try_into()
        .map_err(|_| anyhow::anyhow!("{}: not 32 bytes", lk.display()))?;
    Ok((secret, std::fs::read(&sk)?))
}

fn allow_list(path: Option<&Path>) -> Result<HashSet<IpAddr>> {
    let Some(p) = path else {
        return Ok(HashSet::new());
    };
    let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .enumerate()
        .map(|(i, l)| {
            l.parse().with_context(|| {
                format!("{} entry {}: {l:?} is not an address", p.display(), i + 1)
            })
        })
        .collect()
}

/// What shapes the ranking and its exports, shared by the service and `export`.
#[derive(clap::Args, Debug)]
pub struct ViewArgs {
    /// Servers never ranked: one address a line.
    #[arg(long)]
    pub allow: Option<std::path::PathBuf>,
    /// Prefix-to-AS table, CAIDA Routeviews pfx2as format (prefix, length, origin AS).
    #[arg(long)]
    pub asn_file: Option<std::path::PathBuf>,
    /// Sender of X-ARF notices: "Organisation <abuse@example.net>".
    #[arg(long)]
    pub abuse_contact: Option<String>,
}

/// `ashiato center` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum CenterCommand {
    /// Write one incident's ranking, graph, STIX or X-ARF from a center's store.
    Export(ExportArgs),
}

/// `ashiato center export`
#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// The center's store: a SQLite file or a postgres:// URL.
    #[arg(long)]
    pub store: String,
    /// The claim (incident) id.
    #[arg(long)]
    pub incident: String,
    /// ranking, json (the graph), dot, html (the interactive page, self-contained), stix or xarf.
    #[arg(long)]
    pub format: String,
    /// Where to write (standard output without it).
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
    /// At most this many servers [default: 10 for json, dot and html; 50 otherwise].
    #[arg(long)]
    pub top: Option<usize>,
    #[command(flatten)]
    pub views: ViewArgs,
}

/// The allow list, the ASN table and the X-ARF sender, read and checked.
type Views = (HashSet<IpAddr>, Option<Arc<AsnTable>>, Option<Contact>);

impl ViewArgs {
    /// Reads the allow list and the ASN table, parses the contact.
    fn load(&self) -> Result<Views> {
        let asn = match &self.asn_file {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading --asn-file {}", p.display()))?;
                let t = AsnTable::parse(&text)
                    .with_context(|| format!("--asn-file {}", p.display()))?;
                Some(Arc::new(t))
            }
            None => None,
        };
        let contact = self
            .abuse_contact
            .as_deref()
            .map(Contact::parse)
            .transpose()
            .map_err(|e| anyhow::anyhow!("--abuse-contact {e}"))?;
        Ok((allow_list(self.allow.as_deref())?, asn, contact))
    }
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// `ashiato center export`: reads the store, writes one view.
fn export(a: ExportArgs) -> Result<()> {
    if !FORMATS.contains(&a.format.as_str()) {
        bail!("--format {:?}: one of {}", a.format, FORMATS.join(", "));
    }
    // Export reads a store; it never makes an empty one where a path was mistyped.
    let sqlite_path = a
        .store
        .strip_prefix("sqlite://")
        .or_else(|| a.store.strip_prefix("sqlite:"))
        .unwrap_or(&a.store);
    if !a.store.starts_with("postgres") && !Path::new(sqlite_path).is_file() {
        bail!("--store {}: no such store file", a.store);
    }
    let (allow, asn, contact) = a.views.load()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let ledger: Ledger = rt.block_on(async {
        let store = ashiato_store::Store::open(&a.store)
            .await
            .with_context(|| format!("--store {}", a.store))?;
        let l = Ledger::load(&store)
            .await
            .with_context(|| format!("reading {}", store.describe()))?;
        store.close().await;
        anyhow::Ok(l)
    })?;
    let graphical = ["json", "dot", "html"].contains(&a.format.as_str());
    let f = RankFilter {
        top: Some(a.top.unwrap_or(if graphical { 10 } else { 50 })),
        ..RankFilter::default()
    };
    let ctx = ViewCtx {
        ledger: &ledger,
        allow: &allow,
        asn: asn.as_deref(),
        contact: contact.as_ref(),
        now_ns: now_ns(),
    };
    let (_, body) = render(&ctx, &a.incident, &f, &a.format, Script::Inline)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    match &a.out {
        Some(p) => std::fs::write(p, body).with_context(|| format!("writing {}", p.display()))?,
        None => std::io::stdout().write_all(body.as_bytes())?,
    }
    Ok(())
}

/// Serves until SIGINT/SIGTERM, or runs a subcommand.
pub fn run(a: CenterArgs) -> Result<()> {
    if let Some(CenterCommand::Export(e)) = a.command {
        return export(e);
    }
    // Required by clap unless a subcommand is given.
    let (Some(listen), Some(tls_dir), Some(key_dir)) = (a.listen, &a.tls_dir, &a.key_dir) else {
        bail!("--listen, --tls-dir and --key-dir are required");
    };
    let (secret, pk8) = keys(key_dir)?;
    let (allow, asn, abuse_contact) = a.views.load()?;
    let cfg = CenterConfig {
        allow,
        asn,
        abuse_contact,
        claims_per_hour: a.claims_per_hour,
        audit_file: a.audit_log.clone(),
        ..CenterConfig::default()
    };
    let list = CenterList::new(&secret, &pk8, cfg.skew_ns).map_err(anyhow::Error::msg)?;
    let public: String = list
        .public_key()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    std::fs::write(key_dir.join("sign.pub"), format!("{public}\n"))?;
    let files = TlsFiles::in_dir(tls_dir, &a.name);
    if !files.cert.exists() {
        bail!(
            "{}: no certificate for {:?} (ashiato pki init)",
            tls_dir.display(),
            a.name
        );
    }
    let tls = server_config(&files)?;
    let store_target = a
        .store
        .clone()
        .unwrap_or_else(|| key_dir.join("center.db").display().to_string());
    let (rt, signals) = service_runtime()?;
    rt.block_on(async move {
        let store = ashiato_store::Store::open(&store_target)
            .await
            .with_context(|| format!("--store {store_target}"))?;
        let described = store.describe();
        let center = Center::new(cfg, list, secret, store, Box::new(now_ns))
            .await
            .with_context(|| format!("starting the center on {described}"))?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("--listen {listen}"))?;
        let bound = listener.local_addr()?;
        eprintln!(
            "center listening on {bound} (mutual TLS), store {described}, list signing key {public}"
        );
        if a.print_addr {
            println!("listening on {bound}");
        }
        let limits = ServerLimits {
            max_body_bytes: 256 * 1024,
            ..ServerLimits::default()
        };
        serve(
            listener,
            router(center.clone()),
            Some(tls),
            limits,
            signals.recv(),
        )
        .await?;
        // Checkpoints a SQLite store when no connection task still holds the center.
        center.close().await;
        anyhow::Ok(())
    })
}
