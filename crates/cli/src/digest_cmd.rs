//! `ashiato digest` and `ashiato key generate`, plus the key loading every command shares.

use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};
use ashiato_capture::file::FileSource;
use ashiato_digest::{DEMO_KEY, Key};

use crate::args::{DigestArgs, KeyArgs};
use ashiato_wire::time::rfc3339;

/// The federation key from `--key-file`, or the public demo key (with a warning).
pub fn load_key(args: &KeyArgs) -> Result<Key> {
    match &args.key_file {
        Some(p) => {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(m) = std::fs::metadata(p)
                && m.permissions().mode() & 0o077 != 0
            {
                tracing::warn!(
                    target: "ashiato::key",
                    file = %p.display(),
                    "the federation key file is readable by other users; chmod 600 it"
                );
            }
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("{}: cannot read the key file", p.display()))?;
            text.parse::<Key>()
                .with_context(|| format!("{}: not a federation key", p.display()))
        }
        None => {
            tracing::warn!(
                target: "ashiato::key",
                "no --key-file: using the public demo key; digests are computable by anyone"
            );
            Ok(DEMO_KEY)
        }
    }
}

/// `N` bytes from the kernel's random source.
pub fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .context("reading /dev/urandom")?;
    Ok(bytes)
}

/// `ashiato key generate`
pub fn generate_key(out: Option<&Path>) -> Result<()> {
    let key = Key::from_bytes(random_bytes()?);
    match out {
        Some(p) => {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(p)
                .with_context(|| {
                    format!("{}: cannot create (it must not exist yet)", p.display())
                })?;
            writeln!(f, "{}", key.to_hex()).with_context(|| format!("{}", p.display()))?;
            println!(
                "wrote a new federation key (table id {}) to {}",
                key.table_id_hex(),
                p.display()
            );
        }
        None => println!("{}", key.to_hex()),
    }
    Ok(())
}

/// `ashiato digest --pcap FILE`: one line per packet, in file order, with its 0-based index.
/// Packets without a digest keep their line, with the reason instead of a digest.
pub fn run(a: &DigestArgs) -> Result<()> {
    let key = load_key(&a.key)?;
    let mut src = FileSource::open(&a.pcap)?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut index = 0u64;
    let mut digested = 0u64;
    let mut skipped: std::collections::BTreeMap<&'static str, u64> = Default::default();
    let result = loop {
        let frame = match src.next_frame() {
            Ok(Some(f)) => f,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        let d = key.digest_frame(frame.link, frame.data);
        let line = match (&d, a.json) {
            (Ok(d), false) => format!("{index} {} {d}", rfc3339(frame.ts_nanos)),
            (Err(e), false) => format!("{index} {} - {}", rfc3339(frame.ts_nanos), e.reason()),
            (Ok(d), true) => serde_json::json!({
                "index": index, "ts_ns": frame.ts_nanos, "time": rfc3339(frame.ts_nanos),
                "digest": d.to_string()
            })
            .to_string(),
            (Err(e), true) => serde_json::json!({
                "index": index, "ts_ns": frame.ts_nanos, "time": rfc3339(frame.ts_nanos),
                "skipped": e.reason(), "error": e.to_string()
            })
            .to_string(),
        };
        match d {
            Ok(_) => digested += 1,
            Err(e) => *skipped.entry(e.reason()).or_default() += 1,
        }
        if let Err(e) = writeln!(out, "{line}") {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(e.into());
        }
        index += 1;
    };
    out.flush().ok();
    let reasons: Vec<String> = skipped.iter().map(|(r, n)| format!("{r}={n}")).collect();
    eprintln!(
        "{}: {index} packets, {digested} digested, {} skipped{}{} (table id {})",
        a.pcap.display(),
        index - digested,
        if reasons.is_empty() { "" } else { ": " },
        reasons.join(", "),
        key.table_id_hex()
    );
    result.map_err(Into::into)
}
