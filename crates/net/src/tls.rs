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
//!
//! Each CA has its own name (`ashiato federation CA [<federation>] <16 hex digits>`), so a
//! certificate from another federation is reported as "unknown issuer" rather than as a bad
//! signature. Loading a configuration checks the validity dates of the certificate and of
//! the CA ([`check_certificates`]): an expired or not-yet-valid one is refused at start.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

mod der;
mod pki;
pub mod validity;

pub use self::der::DerError;
pub use self::pki::{
    CA_DAYS, DEFAULT_DAYS, Issued, MAX_DAYS, PkiOptions, generate_pki, init_pki, issue_identity,
};
use self::validity::{Standing, UtcTime, standing};

/// Errors of certificate handling. Each names the file; the operating system's or the
/// library's reason is the error's source.
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
    /// A certificate's DER could not be read.
    #[error("{path}: cannot read certificate {index}")]
    Certificate {
        /// The file.
        path: PathBuf,
        /// Which certificate of the file (0 = first).
        index: usize,
        /// Where and why.
        source: DerError,
    },
    /// A certificate is not valid yet: a clock behind, or a certificate made for later.
    #[error(
        "{path}: the {what} is not valid before {not_before} (valid {not_before} to {not_after}; now {now}): check the clock"
    )]
    NotYetValid {
        /// The file.
        path: PathBuf,
        /// "certificate" or "CA certificate".
        what: &'static str,
        /// Start of validity.
        not_before: UtcTime,
        /// End of validity.
        not_after: UtcTime,
        /// The time of the check.
        now: UtcTime,
    },
    /// A certificate has expired.
    #[error(
        "{path}: the {what} expired on {not_after} (valid {not_before} to {not_after}; now {now}): issue a new one"
    )]
    Expired {
        /// The file.
        path: PathBuf,
        /// "certificate" or "CA certificate".
        what: &'static str,
        /// Start of validity.
        not_before: UtcTime,
        /// End of validity.
        not_after: UtcTime,
        /// The time of the check.
        now: UtcTime,
    },
    /// Reading a file failed.
    #[error("{path}: cannot read")]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: io::Error,
    },
    /// Writing the PKI failed.
    #[error("{path}: cannot write")]
    Write {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: io::Error,
    },
    /// A file that would be overwritten already exists.
    #[error("{path}: {what}")]
    Exists {
        /// The file.
        path: PathBuf,
        /// Why it must not be replaced.
        what: &'static str,
    },
    /// A request to make or issue certificates is invalid (name, lifetime, ...).
    #[error("{0}")]
    Invalid(String),
    /// rustls refused the configuration.
    #[error("TLS configuration refused")]
    Rustls(#[from] rustls::Error),
    /// Certificate generation failed.
    #[error("certificate generation failed")]
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

pub(crate) fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
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

pub(crate) fn roots(ca: &Path) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for c in read_certs(ca)? {
        store.add(c).map_err(|e| TlsError::Pem {
            path: ca.to_owned(),
            what: format!("not a usable CA certificate: {e}"),
        })?;
    }
    Ok(store)
}

/// A certificate that expires within [`validity::EXPIRY_WARNING_DAYS`]: still served, but
/// the operator should renew it now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpiryNotice {
    /// The file.
    pub path: PathBuf,
    /// "certificate" or "CA certificate".
    pub what: &'static str,
    /// When it expires.
    pub not_after: UtcTime,
    /// Whole days left.
    pub days_left: i64,
}

impl std::fmt::Display for ExpiryNotice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: the {} expires on {} ({} days left): issue a new one",
            self.path.display(),
            self.what,
            self.not_after,
            self.days_left
        )
    }
}

/// Checks the validity dates of `cert` (its first certificate, the leaf, if given) and of
/// every certificate in `ca` at `now`: an error for one expired or not yet valid, a notice
/// for each that expires within [`validity::EXPIRY_WARNING_DAYS`].
pub fn check_certificates(
    ca: &Path,
    cert: Option<&Path>,
    now: SystemTime,
) -> Result<Vec<ExpiryNotice>, TlsError> {
    let now = UtcTime::from_system(now);
    let mut notices = Vec::new();
    let mut check = |path: &Path, index: usize, der: &[u8], what: &'static str| {
        let info = der::parse_certificate(der).map_err(|source| TlsError::Certificate {
            path: path.to_owned(),
            index,
            source,
        })?;
        let (not_before, not_after) = (UtcTime(info.not_before), UtcTime(info.not_after));
        let path = path.to_owned();
        match standing(not_before, not_after, now) {
            Standing::Valid => Ok(()),
            Standing::ExpiresSoon { days_left } => {
                notices.push(ExpiryNotice {
                    path,
                    what,
                    not_after,
                    days_left,
                });
                Ok(())
            }
            Standing::NotYetValid => Err(TlsError::NotYetValid {
                path,
                what,
                not_before,
                not_after,
                now,
            }),
            Standing::Expired => Err(TlsError::Expired {
                path,
                what,
                not_before,
                not_after,
                now,
            }),
        }
    };
    for (i, c) in read_certs(ca)?.iter().enumerate() {
        check(ca, i, c, "CA certificate")?;
    }
    if let Some(cert) = cert {
        check(cert, 0, &read_certs(cert)?[0], "certificate")?;
    }
    Ok(notices)
}

/// [`check_certificates`] now, with each notice logged as a warning.
fn check_now(ca: &Path, cert: Option<&Path>) -> Result<(), TlsError> {
    for n in check_certificates(ca, cert, SystemTime::now())? {
        tracing::warn!(
            file = %n.path.display(),
            expires = %n.not_after,
            days_left = n.days_left,
            "the {} expires soon: issue a new one",
            n.what
        );
    }
    Ok(())
}

/// A server configuration that requires a client certificate signed by the CA. Refuses an
/// expired or not-yet-valid certificate or CA ([`check_certificates`]).
pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    install_crypto_provider();
    check_now(&files.ca, Some(&files.cert))?;
    let verifier = WebPkiClientVerifier::builder(Arc::new(roots(&files.ca)?))
        .build()
        .map_err(|e| TlsError::Verifier(e.to_string()))?;
    let mut cfg = ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_single_cert(read_certs(&files.cert)?, read_key(&files.key)?)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// A client configuration that presents our certificate and trusts only the CA. Refuses an
/// expired or not-yet-valid certificate or CA ([`check_certificates`]).
pub fn client_config(files: &TlsFiles) -> Result<Arc<ClientConfig>, TlsError> {
    install_crypto_provider();
    check_now(&files.ca, Some(&files.cert))?;
    let mut cfg = ClientConfig::builder()
        .with_root_certificates(roots(&files.ca)?)
        .with_client_auth_cert(read_certs(&files.cert)?, read_key(&files.key)?)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// A client configuration without a client certificate (used to prove that servers refuse it).
pub fn anonymous_client_config(ca: &Path) -> Result<Arc<ClientConfig>, TlsError> {
    install_crypto_provider();
    check_now(ca, None)?;
    let mut cfg = ClientConfig::builder()
        .with_root_certificates(roots(ca)?)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// The subject common name of a certificate (DER), if it has one: the identity name the
/// federation CA issued it to.
pub fn leaf_common_name(der: &[u8]) -> Option<String> {
    der::parse_certificate(der)
        .ok()
        .and_then(|c| c.common_name().map(str::to_string))
}

/// The TLS server name to verify for an address: probes' certificates carry their names and
/// the loopback addresses, so an IP literal works in labs.
pub fn server_name(host: &str) -> Result<ServerName<'static>, TlsError> {
    ServerName::try_from(host.to_owned()).map_err(|e| TlsError::Verifier(format!("{host}: {e}")))
}
