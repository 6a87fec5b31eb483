//! Mutual TLS between ashiato services, and the small PKI that labs and the quick start use.
//!
//! Every service of a federation holds a certificate signed by the federation CA and accepts
//! only peers whose certificate chains to that CA (rustls' WebPKI client verifier): an
//! anonymous client, or one signed by another CA, fails the handshake before any request is
//! read. The layout of a TLS directory is fixed so that one flag (`--tls-dir`) is enough:
//!
//! ```text
//! ca.pem  ca-key.pem            the federation CA (keep ca-key.pem offline in production)
//! <name>.pem  <name>-key.pem    one identity per service or operator, e.g. probe, client
//! ```

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// Errors of certificate handling.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("{path}: {what}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        what: String,
    },
    /// Writing the PKI failed.
    #[error("{path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: io::Error,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// Certificate generation failed.
    #[error("certificate generation: {0}")]
    Generate(#[from] rcgen::Error),
    /// The client verifier could not be built (e.g. empty CA file).
    #[error("client verifier: {0}")]
    Verifier(String),
}

/// Where a service finds its CA, certificate and key.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// The federation CA certificate (PEM).
    pub ca: PathBuf,
    /// This service's certificate chain (PEM).
    pub cert: PathBuf,
    /// This service's private key (PEM).
    pub key: PathBuf,
}

impl TlsFiles {
    /// The files of identity `name` in a TLS directory made by [`generate_pki`].
    pub fn in_dir(dir: &Path, name: &str) -> Self {
        TlsFiles {
            ca: dir.join("ca.pem"),
            cert: dir.join(format!("{name}.pem")),
            key: dir.join(format!("{name}-key.pem")),
        }
    }
}

/// Installs the ring crypto provider as the process default (idempotent). Every binary calls
/// this first: two providers compiled in make rustls refuse to guess.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Pem {
            path: path.to_owned(),
            what: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_owned(),
            what: "no certificate in file".into(),
        });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::Pem {
        path: path.to_owned(),
        what: e.to_string(),
    })
}

fn roots(ca: &Path) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for c in read_certs(ca)? {
        store.add(c).map_err(|e| TlsError::Pem {
            path: ca.to_owned(),
            what: format!("not a usable CA certificate: {e}"),
        })?;
    }
    Ok(store)
}

/// A server configuration that requires a client certificate signed by the CA.
pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    install_crypto_provider();
    let verifier = WebPkiClientVerifier::builder(Arc::new(roots(&files.ca)?))
        .build()
        .map_err(|e| TlsError::Verifier(e.to_string()))?;
    let mut cfg = ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_single_cert(read_certs(&files.cert)?, read_key(&files.key)?)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// A client configuration that presents our certificate and trusts only the CA.
pub fn client_config(files: &TlsFiles) -> Result<Arc<ClientConfig>, TlsError> {
    install_crypto_provider();
    let mut cfg = ClientConfig::builder()
        .with_root_certificates(roots(&files.ca)?)
        .with_client_auth_cert(read_certs(&files.cert)?, read_key(&files.key)?)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// A client configuration without a client certificate (used to prove that servers refuse it).
pub fn anonymous_client_config(ca: &Path) -> Result<Arc<ClientConfig>, TlsError> {
    install_crypto_provider();
    let mut cfg = ClientConfig::builder()
        .with_root_certificates(roots(ca)?)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// The TLS server name to verify for an address: probes' certificates carry their names and
/// the loopback addresses, so an IP literal works in labs.
pub fn server_name(host: &str) -> Result<ServerName<'static>, TlsError> {
    ServerName::try_from(host.to_owned()).map_err(|e| TlsError::Verifier(format!("{host}: {e}")))
}

/// Writes a fresh federation CA and one identity per name into `dir` (created if missing).
///
/// Each identity's certificate is valid for TLS server and client use, for the DNS name
/// `name`, `localhost`, 127.0.0.1, ::1 and any `extra_sans` (addresses or names), so the same
/// files serve a probe and the operator querying it. Keys are written with mode 0600.
pub fn generate_pki(dir: &Path, names: &[String], extra_sans: &[String]) -> Result<(), TlsError> {
    install_crypto_provider();
    fs::create_dir_all(dir).map_err(|source| TlsError::Write {
        path: dir.to_owned(),
        source,
    })?;
    let ca_path = dir.join("ca.pem");
    if ca_path.exists() {
        // A new CA would silently invalidate every certificate the old one issued.
        return Err(TlsError::Write {
            path: ca_path,
            source: io::Error::new(
                io::ErrorKind::AlreadyExists,
                "this directory already holds a federation CA; use another directory",
            ),
        });
    }
    let year = current_year();
    let mut ca_params = CertificateParams::new(Vec::new())?;
    ca_params.distinguished_name = rcgen::DistinguishedName::new();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "ashiato federation CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
    ca_params.not_after = rcgen::date_time_ymd(year + 10, 1, 1);
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    write_file(&dir.join("ca.pem"), ca_cert.pem().as_bytes(), false)?;
    write_file(
        &dir.join("ca-key.pem"),
        ca_key.serialize_pem().as_bytes(),
        true,
    )?;
    let issuer = Issuer::new(ca_params, ca_key);
    for name in names {
        let mut sans = vec![
            name.clone(),
            "localhost".into(),
            "127.0.0.1".into(),
            "::1".into(),
        ];
        sans.extend(extra_sans.iter().cloned());
        sans.dedup();
        let mut p = CertificateParams::new(sans)?;
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(DnType::CommonName, name.as_str());
        p.use_authority_key_identifier_extension = true;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        p.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
        p.not_after = rcgen::date_time_ymd(year + 2, 1, 1);
        let key = KeyPair::generate()?;
        let cert = p.signed_by(&key, &issuer)?;
        write_file(
            &dir.join(format!("{name}.pem")),
            cert.pem().as_bytes(),
            false,
        )?;
        write_file(
            &dir.join(format!("{name}-key.pem")),
            key.serialize_pem().as_bytes(),
            true,
        )?;
    }
    Ok(())
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

fn current_year() -> i32 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // Good to within a day at year boundaries, which the one-year margin absorbs.
    1970 + (secs / 31_556_952) as i32
}
