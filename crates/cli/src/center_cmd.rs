//! `ashiato center`: the host-tracing center (`ashiato-center`) served over mutual TLS.
//!
//! Keys live in `--key-dir`, made on first start: `list.key` (32 random bytes: the keyed-hash
//! secret the center hands to enrolled agents at `GET /v1/enroll`), `sign.pk8` (the Ed25519 signing key) and
//! `sign.pub` (its public key in hex, for agents). Files are created with mode 0600.
//!
//! Claims and reports are kept in `--store` (default `center.db` in `--key-dir`), opened
//! and read back before the center listens: a store that cannot be opened or read stops it.

use std::collections::HashSet;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, Result, bail};
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

/// Serves until SIGINT/SIGTERM.
pub fn run(a: CenterArgs) -> Result<()> {
    let (secret, pk8) = keys(&a.key_dir)?;
    let cfg = CenterConfig {
        allow: allow_list(a.allow.as_deref())?,
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
    std::fs::write(a.key_dir.join("sign.pub"), format!("{public}\n"))?;
    let files = TlsFiles::in_dir(&a.tls_dir, &a.name);
    if !files.cert.exists() {
        bail!(
            "{}: no certificate for {:?} (ashiato pki init)",
            a.tls_dir.display(),
            a.name
        );
    }
    let tls = server_config(&files)?;
    let store_target = a
        .store
        .clone()
        .unwrap_or_else(|| a.key_dir.join("center.db").display().to_string());
    let (rt, signals) = service_runtime()?;
    rt.block_on(async move {
        let store = ashiato_store::Store::open(&store_target)
            .await
            .with_context(|| format!("--store {store_target}"))?;
        let described = store.describe();
        let center = Center::new(
            cfg,
            list,
            secret,
            store,
            Box::new(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64)
            }),
        )
        .await
        .with_context(|| format!("starting the center on {described}"))?;
        let listener = tokio::net::TcpListener::bind(a.listen)
            .await
            .with_context(|| format!("--listen {}", a.listen))?;
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
        serve(listener, router(center), Some(tls), limits, signals.recv()).await?;
        anyhow::Ok(())
    })
}
