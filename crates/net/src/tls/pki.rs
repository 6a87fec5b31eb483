//! The lab PKI: a federation CA with its own name, identities issued at start and later from
//! the same CA, each with a lifetime the operator chooses.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, PublicKeyData,
};
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;

use super::der::{CertInfo, parse_certificate};
use super::validity::{Standing, UtcTime, standing};
use super::{TlsError, install_crypto_provider, read_certs, roots};

/// Default lifetime of an identity certificate, in days.
pub const DEFAULT_DAYS: u32 = 365;
/// Longest lifetime of an identity certificate, in days.
pub const MAX_DAYS: u32 = 3650;
/// Lifetime of a federation CA, in days (longer if an identity made with it needs more).
pub const CA_DAYS: u32 = 3650;

/// What `pki init` makes.
#[derive(Clone, Debug)]
pub struct PkiOptions {
    /// Identities to issue (file names `<name>.pem`, `<name>-key.pem`).
    pub names: Vec<String>,
    /// Subject alternative names added to every identity.
    pub extra_sans: Vec<String>,
    /// Lifetime of each identity, in days (1 to [`MAX_DAYS`]).
    pub days: u32,
    /// A federation name put into the CA's name (letters, digits, space, `.`, `_`, `-`).
    pub federation: Option<String>,
}

impl Default for PkiOptions {
    fn default() -> Self {
        PkiOptions {
            names: vec!["probe".into(), "client".into()],
            extra_sans: Vec::new(),
            days: DEFAULT_DAYS,
            federation: None,
        }
    }
}

/// What was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issued {
    /// The CA's common name.
    pub ca_name: String,
    /// When the CA expires.
    pub ca_not_after: UtcTime,
    /// When the identities written expire.
    pub not_after: UtcTime,
    /// The certificate files written.
    pub certs: Vec<PathBuf>,
}

/// Writes a fresh federation CA and one identity per name into `dir` (created if missing),
/// with [`DEFAULT_DAYS`] of validity from now: `init_pki` with default lifetime and name.
pub fn generate_pki(dir: &Path, names: &[String], extra_sans: &[String]) -> Result<(), TlsError> {
    let opts = PkiOptions {
        names: names.to_vec(),
        extra_sans: extra_sans.to_vec(),
        ..PkiOptions::default()
    };
    init_pki(dir, &opts, SystemTime::now()).map(|_| ())
}

/// Writes a fresh federation CA (`ca.pem`, `ca-key.pem`) and one identity per name into
/// `dir` (created if missing), valid from the day before `now` for `opts.days` days; the CA
/// for [`CA_DAYS`] or longer.
///
/// The CA's common name is `ashiato federation CA [<federation>] <16 hex digits of its
/// public key>`, unique per CA, so that a certificate of another federation is reported as
/// from an unknown issuer. Each identity's certificate is valid for TLS server and client use,
/// for the DNS name `name`, `localhost`, 127.0.0.1, ::1 and any `extra_sans`, so the same
/// files serve a probe and the operator querying it. Keys are written with mode 0600.
/// Refuses a directory that already holds a CA: a new CA would silently invalidate every
/// certificate the old one issued.
pub fn init_pki(dir: &Path, opts: &PkiOptions, now: SystemTime) -> Result<Issued, TlsError> {
    install_crypto_provider();
    check_days(opts.days)?;
    for n in &opts.names {
        check_name(n)?;
    }
    if let Some(f) = &opts.federation {
        check_federation(f)?;
    }
    fs::create_dir_all(dir).map_err(|source| TlsError::Write {
        path: dir.to_owned(),
        source,
    })?;
    for file in ["ca.pem", "ca-key.pem"] {
        let path = dir.join(file);
        if path.exists() {
            return Err(TlsError::Exists {
                path,
                what: "this directory already holds a federation CA; use another directory, or `pki issue` to add an identity",
            });
        }
    }
    let ca_key = KeyPair::generate()?;
    let suffix: String = ca_key
        .public_key_raw()
        .iter()
        .skip(1) // the uncompressed-point prefix byte
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    let ca_name = match &opts.federation {
        Some(f) => format!("ashiato federation CA {f} {suffix}"),
        None => format!("ashiato federation CA {suffix}"),
    };
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, ca_name.as_str());
    let mut ca_params = ca_params(dn);
    let today = UtcTime::from_system(now).0.div_euclid(86_400);
    let ca_days = CA_DAYS.max(opts.days.saturating_add(1));
    set_validity(&mut ca_params, today - 1, today + i64::from(ca_days));
    let ca_cert = ca_params.self_signed(&ca_key)?;
    // The key first: a CA certificate without its key could never issue anything.
    write_file(
        &dir.join("ca-key.pem"),
        ca_key.serialize_pem().as_bytes(),
        true,
    )?;
    write_file(&dir.join("ca.pem"), ca_cert.pem().as_bytes(), false)?;
    let issuer = Issuer::new(ca_params, ca_key);
    let mut certs = Vec::new();
    for name in &opts.names {
        let (cert, key) = leaf(&issuer, name, &opts.extra_sans, today, opts.days)?;
        certs.push(write_identity(dir, name, &cert, &key)?);
    }
    Ok(Issued {
        ca_name,
        ca_not_after: UtcTime((today + i64::from(ca_days)) * 86_400),
        not_after: UtcTime((today + i64::from(opts.days)) * 86_400),
        certs,
    })
}

/// Issues identity `name` from the CA in `dir` (`ca.pem`, `ca-key.pem`), valid from the day
/// before `now` for `days` days, for the same names as [`init_pki`] plus `extra_sans`.
///
/// Refuses to replace an existing identity unless `force`, a CA that is expired or not yet
/// valid, a key that is not the CA's, and a lifetime past the CA's own. The new certificate
/// is verified against `ca.pem` before anything is written.
pub fn issue_identity(
    dir: &Path,
    name: &str,
    extra_sans: &[String],
    days: u32,
    force: bool,
    now: SystemTime,
) -> Result<Issued, TlsError> {
    install_crypto_provider();
    check_days(days)?;
    check_name(name)?;
    let ca_path = dir.join("ca.pem");
    let key_path = dir.join("ca-key.pem");
    let ca_der = read_certs(&ca_path)?.swap_remove(0);
    let ca = parse_certificate(&ca_der).map_err(|source| TlsError::Certificate {
        path: ca_path.clone(),
        index: 0,
        source,
    })?;
    let key_pem = fs::read_to_string(&key_path).map_err(|source| TlsError::Read {
        path: key_path.clone(),
        source,
    })?;
    let ca_key = KeyPair::from_pem(&key_pem).map_err(|e| TlsError::Pem {
        path: key_path.clone(),
        what: format!("not a usable private key: {e}"),
    })?;
    if ca_key.subject_public_key_info() != ca.spki_der {
        return Err(TlsError::Pem {
            path: key_path,
            what: "this is not the key of ca.pem".into(),
        });
    }
    let now_utc = UtcTime::from_system(now);
    let (ca_nb, ca_na) = (UtcTime(ca.not_before), UtcTime(ca.not_after));
    if matches!(
        standing(ca_nb, ca_na, now_utc),
        Standing::Expired | Standing::NotYetValid
    ) {
        return Err(TlsError::Invalid(format!(
            "{}: the CA is valid only from {ca_nb} to {ca_na} (now {now_utc}): it cannot issue",
            ca_path.display()
        )));
    }
    let today = now_utc.0.div_euclid(86_400);
    let not_after = UtcTime((today + i64::from(days)) * 86_400);
    if not_after > ca_na {
        return Err(TlsError::Invalid(format!(
            "{days} days would outlive the CA, which expires on {ca_na}: ask for fewer days"
        )));
    }
    let cert_path = dir.join(format!("{name}.pem"));
    let key_out = dir.join(format!("{name}-key.pem"));
    if !force {
        for path in [&cert_path, &key_out] {
            if path.exists() {
                return Err(TlsError::Exists {
                    path: path.clone(),
                    what: "this identity already exists; --force replaces it",
                });
            }
        }
    }
    let issuer = Issuer::new(ca_params(rebuild_name(&ca, &ca_path)?), ca_key);
    let (cert, key) = leaf(&issuer, name, extra_sans, today, days)?;
    verify_against(&ca_path, cert.der(), now)?;
    let written = write_identity(dir, name, &cert, &key)?;
    Ok(Issued {
        ca_name: ca.common_name().unwrap_or("?").to_string(),
        ca_not_after: ca_na,
        not_after,
        certs: vec![written],
    })
}

/// The parameters every federation CA shares, under subject `dn`.
fn ca_params(dn: DistinguishedName) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p
}

/// The CA's subject as rcgen parameters, so issued certificates name it byte for byte (a
/// mismatch is caught by [`verify_against`]).
fn rebuild_name(ca: &CertInfo, path: &Path) -> Result<DistinguishedName, TlsError> {
    let mut dn = DistinguishedName::new();
    for a in &ca.subject {
        let text = String::from_utf8(a.value.clone()).ok();
        let value = match (a.tag, text) {
            (0x0c, Some(t)) => DnValue::Utf8String(t),
            (0x13, Some(t)) => DnValue::PrintableString(t.try_into()?),
            (0x16, Some(t)) => DnValue::Ia5String(t.try_into()?),
            (tag, _) => {
                return Err(TlsError::Invalid(format!(
                    "{}: the CA's name uses string type 0x{tag:02x}, which cannot be reproduced here",
                    path.display()
                )));
            }
        };
        dn.push(DnType::from_oid(&a.oid), value);
    }
    Ok(dn)
}

/// Refuses a certificate that does not chain to the CA in `ca_path`.
fn verify_against(
    ca_path: &Path,
    cert: &CertificateDer<'_>,
    now: SystemTime,
) -> Result<(), TlsError> {
    let verifier = WebPkiClientVerifier::builder(Arc::new(roots(ca_path)?))
        .build()
        .map_err(|e| TlsError::Verifier(e.to_string()))?;
    let now = UnixTime::since_unix_epoch(
        now.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default(),
    );
    verifier
        .verify_client_cert(cert, &[], now)
        .map(|_| ())
        .map_err(|e| {
            TlsError::Invalid(format!(
                "{}: the new certificate does not verify against this CA ({e}); nothing written",
                ca_path.display()
            ))
        })
}

/// An identity certificate and its key, signed by `issuer`.
fn leaf(
    issuer: &Issuer<'_, KeyPair>,
    name: &str,
    extra_sans: &[String],
    today: i64,
    days: u32,
) -> Result<(rcgen::Certificate, KeyPair), TlsError> {
    let mut sans: Vec<String> = Vec::new();
    let defaults = [name, "localhost", "127.0.0.1", "::1"].map(String::from);
    for s in defaults.iter().chain(extra_sans) {
        if !sans.contains(s) {
            sans.push(s.clone());
        }
    }
    let mut p = CertificateParams::new(sans)?;
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, name);
    p.use_authority_key_identifier_extension = true;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    set_validity(&mut p, today - 1, today + i64::from(days));
    let key = KeyPair::generate()?;
    let cert = p.signed_by(&key, issuer)?;
    Ok((cert, key))
}

fn write_identity(
    dir: &Path,
    name: &str,
    cert: &rcgen::Certificate,
    key: &KeyPair,
) -> Result<PathBuf, TlsError> {
    let cert_path = dir.join(format!("{name}.pem"));
    write_file(
        &dir.join(format!("{name}-key.pem")),
        key.serialize_pem().as_bytes(),
        true,
    )?;
    write_file(&cert_path, cert.pem().as_bytes(), false)?;
    Ok(cert_path)
}

/// Valid from midnight UTC of day `from` to midnight UTC of day `to` (days since 1970).
fn set_validity(p: &mut CertificateParams, from: i64, to: i64) {
    let at = |days: i64| time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(days);
    p.not_before = at(from);
    p.not_after = at(to);
}

fn check_days(days: u32) -> Result<(), TlsError> {
    if (1..=MAX_DAYS).contains(&days) {
        Ok(())
    } else {
        Err(TlsError::Invalid(format!(
            "a certificate lifetime is 1 to {MAX_DAYS} days, not {days}"
        )))
    }
}

/// An identity name becomes a file name and a DNS name: letters, digits, `.`, `_`, `-`, at
/// most 64, not starting with `.` or `-`, and not `ca` (the CA's own files).
fn check_name(name: &str) -> Result<(), TlsError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(['.', '-'])
        && name != "ca"
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(TlsError::Invalid(format!(
            "identity name {name:?}: 1 to 64 letters, digits, '.', '_' or '-', not starting with '.' or '-', and not \"ca\""
        )))
    }
}

fn check_federation(name: &str) -> Result<(), TlsError> {
    let ok = !name.trim().is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b' ' | b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(TlsError::Invalid(format!(
            "federation name {name:?}: 1 to 64 letters, digits, spaces, '.', '_' or '-'"
        )))
    }
}

fn write_file(path: &Path, data: &[u8], secret: bool) -> Result<(), TlsError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    if secret {
        opts.mode(0o600);
    }
    let r = opts.open(path).and_then(|mut f| {
        if secret {
            // An existing file keeps its mode on open: tighten it before writing the key.
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(fs::Permissions::from_mode(0o600))?;
        }
        io::Write::write_all(&mut f, data)
    });
    r.map_err(|source| TlsError::Write {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
#[path = "pki_tests.rs"]
mod tests;
