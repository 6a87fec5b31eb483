//! A small HTTP/JSON client for ashiato services, over mutual TLS or loopback plaintext.
//!
//! One request per connection by default keeps it simple and is what a controller fanning out
//! to many probes does anyway; [`reuse_connections`] turns on keep-alive reuse process-wide
//! (see `pool`). hyper does the HTTP, tokio-rustls the TLS. Responses are capped at
//! [`MAX_RESPONSE_BYTES`] and every call has a deadline, so a dead or hostile peer costs a
//! timeout, not a hang.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use ashiato_api::probe::{QueryRequest, QueryResponse, StatusResponse};

mod pool;

pub use pool::{MAX_AGE, MAX_IDLE, MAX_IDLE_PER_PEER};

/// Turns reuse of connections (HTTP/1.1 keep-alive) on or off for every [`ServiceClient`] of
/// this process. Off by default; see the `pool` module for the bounds.
pub fn reuse_connections(on: bool) {
    pool::set_enabled(on);
}

/// Largest response body accepted.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// Errors of a call to a service.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The address is not `host:port`.
    #[error("bad service address {0:?}: expected host:port")]
    Address(String),
    /// TCP connection failed.
    #[error("{addr}: cannot connect")]
    Connect {
        /// The service.
        addr: String,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The TLS handshake failed (no client certificate accepted, garbage, ...).
    #[error("{addr}: TLS handshake failed")]
    Tls {
        /// The service.
        addr: String,
        /// The reason.
        source: std::io::Error,
    },
    /// The service's certificate is not signed by our federation CA: it belongs to another
    /// federation, or our CA file is the wrong one.
    #[error(
        "{addr}: TLS handshake failed: the service's certificate is not from our federation CA (unknown issuer); it belongs to another federation, or the CA file is the wrong one"
    )]
    ForeignServer {
        /// The service.
        addr: String,
        /// rustls' reason (UnknownIssuer).
        source: std::io::Error,
    },
    /// The service refused our certificate because its CA does not know the issuer.
    #[error(
        "{addr}: TLS handshake failed: the service does not accept our certificate, which is not from its federation CA (unknown CA)"
    )]
    ForeignClient {
        /// The service.
        addr: String,
        /// rustls' reason (the UnknownCA alert).
        source: std::io::Error,
    },
    /// HTTP failed.
    #[error("{addr}: HTTP: {msg}")]
    Http {
        /// The service.
        addr: String,
        /// The reason.
        msg: String,
    },
    /// The service answered with an error status.
    #[error("{addr}: {status}: {body}")]
    Status {
        /// The service.
        addr: String,
        /// HTTP status.
        status: u16,
        /// The body (the service's error message).
        body: String,
    },
    /// The answer is not the JSON we expect.
    #[error("{addr}: malformed answer: {msg}")]
    Decode {
        /// The service.
        addr: String,
        /// The reason.
        msg: String,
    },
    /// The call took longer than the deadline.
    #[error("{addr}: no answer within {0:?}", .timeout)]
    Timeout {
        /// The service.
        addr: String,
        /// The deadline.
        timeout: Duration,
    },
    /// The probe answered from tables of another federation key or digest version: its
    /// "not seen" means nothing for our digests, so the answer must not be used.
    #[error(
        "{addr}: the probe's tables have id {found}, not {expected}: it uses another federation key or digest version, so its answer cannot be used"
    )]
    ForeignTable {
        /// The service.
        addr: String,
        /// The table id we expected (16 hex digits).
        expected: String,
        /// The table id the probe answered with.
        found: String,
    },
}

/// A client for one service address.
#[derive(Clone)]
pub struct ServiceClient {
    addr: String,
    tls: Option<Arc<ClientConfig>>,
    timeout: Duration,
}

impl ServiceClient {
    /// A client for `addr` (`host:port`); `tls: None` means plaintext (labs on loopback).
    pub fn new(addr: &str, tls: Option<Arc<ClientConfig>>) -> Self {
        ServiceClient {
            addr: addr.to_string(),
            tls,
            timeout: Duration::from_secs(10),
        }
    }

    /// Sets the deadline of each call.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// `POST /v1/query`.
    pub async fn query(&self, req: &QueryRequest) -> Result<QueryResponse, ClientError> {
        self.call("POST", "/v1/query", Some(req)).await
    }

    /// `POST /v1/query`, refusing an answer from tables other than `table_id` (the id of our
    /// federation key and digest version, `Key::table_id`). Without this check a probe of
    /// another federation answers "not seen" for every digest, which reads as a clean result.
    pub async fn query_expecting(
        &self,
        req: &QueryRequest,
        table_id: u64,
    ) -> Result<QueryResponse, ClientError> {
        let resp = self.query(req).await?;
        check_table_id(&self.addr, &resp.table_id, table_id)?;
        Ok(resp)
    }

    /// `GET /v1/status`.
    pub async fn status(&self) -> Result<StatusResponse, ClientError> {
        self.call::<(), _>("GET", "/v1/status", None).await
    }

    /// `GET path` returning the raw body text (for /metrics).
    pub async fn get_text(&self, path: &str) -> Result<String, ClientError> {
        let body = self.raw("GET", path, None).await?;
        String::from_utf8(body.to_vec()).map_err(|e| self.decode(e.to_string()))
    }

    /// A JSON call.
    pub async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let payload = match body {
            Some(b) => Some(serde_json::to_vec(b).map_err(|e| self.decode(e.to_string()))?),
            None => None,
        };
        let bytes = self.raw(method, path, payload).await?;
        serde_json::from_slice(&bytes).map_err(|e| self.decode(e.to_string()))
    }

    /// A JSON call whose answer has no body to read (`202 Accepted`): only the status is
    /// checked.
    pub async fn call_unit<B: Serialize>(
        &self,
        method: &str,
        path: &str,
        body: Option<&B>,
    ) -> Result<(), ClientError> {
        let payload = match body {
            Some(b) => Some(serde_json::to_vec(b).map_err(|e| self.decode(e.to_string()))?),
            None => None,
        };
        self.raw(method, path, payload).await.map(|_| ())
    }

    fn decode(&self, msg: String) -> ClientError {
        ClientError::Decode {
            addr: self.addr.clone(),
            msg,
        }
    }

    async fn raw(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Bytes, ClientError> {
        match tokio::time::timeout(self.timeout, self.raw_inner(method, path, body)).await {
            Ok(r) => r,
            Err(_) => Err(ClientError::Timeout {
                addr: self.addr.clone(),
                timeout: self.timeout,
            }),
        }
    }

    async fn raw_inner(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Bytes, ClientError> {
        let host = host_of(&self.addr).ok_or_else(|| ClientError::Address(self.addr.clone()))?;
        let body = Bytes::from(body.unwrap_or_default());
        let build = || {
            Request::builder()
                .method(method)
                .uri(path)
                .header(hyper::header::HOST, host.clone())
                .header(hyper::header::CONTENT_TYPE, "application/json")
                .body(Full::new(body.clone()))
                .map_err(|e| self.http(crate::error_chain(&e)))
        };
        if pool::enabled() {
            let key = pool::key(&self.addr, &self.tls);
            while let Some(idle) = pool::take(&key) {
                let pool::Idle {
                    mut sender,
                    conn,
                    born,
                    ..
                } = idle;
                match sender.send_request(build()?).await {
                    Ok(resp) => return self.read(resp, sender, conn, born).await,
                    // Closed by the server while idle: nothing was processed; try another.
                    Err(e) if e.is_canceled() || e.is_closed() || e.is_incomplete_message() => {
                        continue;
                    }
                    Err(e) => return Err(self.http(crate::error_chain(&e))),
                }
            }
        }
        let tcp = TcpStream::connect(&self.addr)
            .await
            .map_err(|source| ClientError::Connect {
                addr: self.addr.clone(),
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        let req = build()?;
        match &self.tls {
            Some(cfg) => {
                let name = crate::tls::server_name(&host).map_err(|e| ClientError::Tls {
                    addr: self.addr.clone(),
                    source: std::io::Error::other(e),
                })?;
                let tls = TlsConnector::from(cfg.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|source| handshake_error(&self.addr, source))?;
                self.send(tls, req).await
            }
            None => self.send(tcp, req).await,
        }
    }

    async fn send<S>(&self, stream: S, req: Request<Full<Bytes>>) -> Result<Bytes, ClientError>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let born = Instant::now();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| self.http(crate::error_chain(&e)))?;
        let conn = tokio::spawn(conn);
        let resp = match sender.send_request(req).await {
            Ok(resp) => resp,
            Err(e) => {
                // When the server ends the connection with a TLS alert, the request often
                // sees only "canceled" and the connection task holds the reason.
                let conn_err = match conn.await {
                    Ok(Err(ce)) => Some(ce),
                    _ => None,
                };
                let (reason, other) = match conn_err {
                    Some(ce) => (ce, Some(e)),
                    None => (e, None),
                };
                if rustls_cause(&reason).is_some_and(is_unknown_ca_alert) {
                    return Err(ClientError::ForeignClient {
                        addr: self.addr.clone(),
                        source: std::io::Error::other(reason),
                    });
                }
                let mut msg = crate::error_chain(&reason);
                if let Some(o) = other {
                    msg = format!("{} ({msg})", crate::error_chain(&o));
                }
                return Err(self.http(msg));
            }
        };
        self.read(resp, sender, conn, born).await
    }

    /// Reads a response's body; on success the connection goes back to the pool (when reuse
    /// is on).
    async fn read(
        &self,
        resp: hyper::Response<hyper::body::Incoming>,
        sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
        conn: tokio::task::JoinHandle<Result<(), hyper::Error>>,
        born: Instant,
    ) -> Result<Bytes, ClientError> {
        let status = resp.status();
        let body = Limited::new(resp.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| self.http(crate::error_chain(&*e)))?
            .to_bytes();
        if !status.is_success() {
            return Err(ClientError::Status {
                addr: self.addr.clone(),
                status: status.as_u16(),
                body: String::from_utf8_lossy(&body).chars().take(500).collect(),
            });
        }
        if pool::enabled() {
            pool::put(
                pool::key(&self.addr, &self.tls),
                pool::Idle::new(sender, conn, born),
            );
        }
        Ok(body)
    }

    fn http(&self, msg: String) -> ClientError {
        ClientError::Http {
            addr: self.addr.clone(),
            msg,
        }
    }
}

/// Names the two federation mix-ups a failed handshake can stand for: a server certificate
/// from another CA (we see UnknownIssuer) and ours refused by a server of another CA (we
/// receive the UnknownCA alert; with TLS 1.3 it arrives after our side of the handshake, so
/// hyper reports it, see [`ServiceClient::send`]).
fn handshake_error(addr: &str, source: std::io::Error) -> ClientError {
    use rustls::{CertificateError, Error};
    let addr = addr.to_string();
    match rustls_cause(&source) {
        Some(Error::InvalidCertificate(CertificateError::UnknownIssuer)) => {
            ClientError::ForeignServer { addr, source }
        }
        Some(e) if is_unknown_ca_alert(e) => ClientError::ForeignClient { addr, source },
        _ => ClientError::Tls { addr, source },
    }
}

fn is_unknown_ca_alert(e: &rustls::Error) -> bool {
    matches!(
        e,
        rustls::Error::AlertReceived(rustls::AlertDescription::UnknownCA)
    )
}

/// The rustls error in `e`'s chain, looking inside `io::Error`s too (whose `source()` skips
/// the error they wrap).
fn rustls_cause<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cur = Some(e);
    while let Some(c) = cur {
        if let Some(r) = c.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(r) = c
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(r);
        }
        cur = c.source();
    }
    None
}

/// Accepts `found` (an answer's `table_id`) only when it is exactly the 16 lower-case hex
/// digits of `expected`.
fn check_table_id(addr: &str, found: &str, expected: u64) -> Result<(), ClientError> {
    let want = format!("{expected:016x}");
    if found == want {
        return Ok(());
    }
    Err(ClientError::ForeignTable {
        addr: addr.to_string(),
        expected: want,
        // A hostile probe chooses this text: keep it short and printable.
        found: found
            .chars()
            .take(32)
            .map(|c| if c.is_ascii_graphic() { c } else { '?' })
            .collect(),
    })
}

/// Refuses plaintext to anything but loopback: `addr` must resolve only to loopback
/// addresses (the client side of `--dev-insecure`).
pub fn check_insecure_target(addr: &str) -> Result<(), String> {
    use std::net::ToSocketAddrs;
    let resolved: Vec<_> = addr
        .to_socket_addrs()
        .map_err(|e| format!("{addr}: {e}"))?
        .collect();
    if resolved.is_empty() || resolved.iter().any(|a| !a.ip().is_loopback()) {
        return Err(format!(
            "--dev-insecure sends plaintext and is accepted only for loopback addresses, not {addr}"
        ));
    }
    Ok(())
}

/// The host part of `host:port` or `[v6]:port`.
fn host_of(addr: &str) -> Option<String> {
    if let Some(rest) = addr.strip_prefix('[') {
        let end = rest.find(']')?;
        return Some(rest[..end].to_string());
    }
    let (h, p) = addr.rsplit_once(':')?;
    p.parse::<u16>().ok()?;
    Some(h.to_string())
}

#[cfg(test)]
mod tests {
    use super::host_of;

    /// With reuse on, calls to one service share a connection (the server sees one client
    /// port); with it off, each call opens its own.
    #[tokio::test]
    async fn reuse_keeps_one_connection() {
        use crate::server::{Peer, ServerLimits, serve};
        use axum::Extension;
        use axum::routing::get;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let app = axum::Router::new().route(
            "/port",
            get(|Extension(p): Extension<Peer>| async move { p.addr.port().to_string() }),
        );
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, app, None, ServerLimits::default(), async {
            let _ = rx.await;
        }));
        let c = super::ServiceClient::new(&addr, None);
        super::reuse_connections(true);
        let a = c.get_text("/port").await.unwrap();
        let b = c.get_text("/port").await.unwrap();
        super::reuse_connections(false);
        let d = c.get_text("/port").await.unwrap();
        let e = c.get_text("/port").await.unwrap();
        assert_eq!(a, b);
        assert_ne!(d, e);
        let _ = tx.send(());
        let _ = server.await;
    }

    #[test]
    fn host_parsing() {
        assert_eq!(host_of("127.0.0.1:8443").as_deref(), Some("127.0.0.1"));
        assert_eq!(host_of("[::1]:8443").as_deref(), Some("::1"));
        assert_eq!(host_of("probe.example:1").as_deref(), Some("probe.example"));
        assert_eq!(host_of("no-port"), None);
        assert_eq!(host_of("h:notaport"), None);
    }

    #[test]
    fn table_id_must_match_exactly() {
        use super::{ClientError, check_table_id};
        assert!(check_table_id("p:1", "00000000000000ff", 0xff).is_ok());
        for found in [
            "00000000000000fe",
            "ff",
            "00000000000000FF",
            "",
            "0x00000000000000ff",
        ] {
            match check_table_id("p:1", found, 0xff) {
                Err(ClientError::ForeignTable {
                    expected, found: f, ..
                }) => {
                    assert_eq!(expected, "00000000000000ff");
                    assert_eq!(f, found);
                }
                other => panic!("{found:?} accepted: {other:?}"),
            }
        }
        let e = check_table_id("p:1", "\u{1b}[31m", 1)
            .unwrap_err()
            .to_string();
        assert!(
            !e.contains('\u{1b}') && e.contains("another federation key"),
            "{e}"
        );
    }

    #[test]
    fn plaintext_only_to_loopback() {
        assert!(super::check_insecure_target("127.0.0.1:7443").is_ok());
        assert!(super::check_insecure_target("[::1]:7443").is_ok());
        assert!(super::check_insecure_target("192.0.2.10:7443").is_err());
        assert!(super::check_insecure_target("not an address").is_err());
    }
}
