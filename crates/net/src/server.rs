//! The accept loop every ashiato service runs: TCP, then mutual TLS (or plaintext on loopback
//! for labs), then HTTP/1.1 served by an axum router.
//!
//! `axum::serve` has no TLS, so connections are accepted here, handed to a tokio-rustls
//! acceptor and served by hyper. The loop bounds what a hostile peer can hold: at most
//! [`ServerLimits::max_connections`] at once (a semaphore), a deadline for the TLS handshake,
//! for reading request headers and for reading a request body, at most
//! [`ServerLimits::per_ip`] connections from one peer (an IPv4 address or an IPv6 /64, see
//! [`per_peer`]; at most half the slots, so one peer cannot hold every slot), a body size
//! refused from its `Content-Length` before any of it is read, and a deadline for a whole
//! connection. Warnings a peer can provoke at will are throttled ([`throttle`]). It takes its
//! listener and shutdown signal as arguments so tests bind port 0 and stop it when done.

pub mod per_peer;
pub mod throttle;

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use self::per_peer::{PerPeer, PerPeerCounts};
use self::throttle::{Noisy, Throttles};

/// Default largest request body: 256 KiB (a probe's full query batch is about 150 KB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;

/// Bounds applied to every connection.
#[derive(Clone, Copy, Debug)]
pub struct ServerLimits {
    /// Connections served at once; further ones wait in the kernel's backlog.
    pub max_connections: usize,
    /// Deadline for the TLS handshake.
    pub handshake_timeout: Duration,
    /// Deadline for a request's headers.
    pub header_timeout: Duration,
    /// Deadline for a request's body, from the end of its headers: a peer dribbling a body
    /// byte by byte gets 408 and loses the connection instead of holding a slot.
    pub body_timeout: Duration,
    /// Largest request body. A larger `Content-Length` is answered 413 at once, without
    /// `100 Continue` and without reading the body; a chunked body is cut off at this size.
    pub max_body_bytes: usize,
    /// Connections at once from one peer: an IPv4 address or an IPv6 /64. At most half of
    /// `max_connections`, so one peer can never hold every slot.
    pub per_ip: usize,
    /// Deadline for a whole connection, from accept to the last byte of the last response.
    /// Our clients make one request per connection; a controller reconnects.
    pub connection_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_connections: 256,
            handshake_timeout: Duration::from_secs(5),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            per_ip: 16,
            connection_timeout: Duration::from_secs(60),
        }
    }
}

/// Limits that cannot be served safely.
#[non_exhaustive]
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LimitsError {
    /// A limit that must be positive is zero.
    #[error("server limits: {0} must be greater than zero")]
    Zero(&'static str),
    /// One peer could hold more than half of the connection slots.
    #[error(
        "server limits: per_ip {per_ip} is more than half of max_connections {max_connections}: one peer could hold every slot"
    )]
    PerIpTooLarge {
        /// The per-peer cap.
        per_ip: usize,
        /// The connection slots.
        max_connections: usize,
    },
}

impl ServerLimits {
    /// Checks that every limit is positive and that one peer gets at most half the slots.
    pub fn validate(&self) -> Result<(), LimitsError> {
        let zero_durations = [
            ("handshake_timeout", self.handshake_timeout),
            ("header_timeout", self.header_timeout),
            ("body_timeout", self.body_timeout),
            ("connection_timeout", self.connection_timeout),
        ];
        for (name, d) in zero_durations {
            if d.is_zero() {
                return Err(LimitsError::Zero(name));
            }
        }
        for (name, n) in [
            ("max_connections", self.max_connections),
            ("per_ip", self.per_ip),
            ("max_body_bytes", self.max_body_bytes),
        ] {
            if n == 0 {
                return Err(LimitsError::Zero(name));
            }
        }
        if self.per_ip > self.max_connections / 2 {
            return Err(LimitsError::PerIpTooLarge {
                per_ip: self.per_ip,
                max_connections: self.max_connections,
            });
        }
        Ok(())
    }
}

/// The authenticated peer of a connection, put into every request's extensions.
#[derive(Clone, Debug)]
pub struct Peer {
    /// Remote socket address.
    pub addr: SocketAddr,
    /// True when the peer presented a certificate the CA vouches for.
    pub authenticated: bool,
    /// The subject common name of that certificate (the identity it was issued to, e.g. a
    /// controller's `as64501`), when it has one: services that admit only some identities
    /// of the federation (a controller admits `as<ASN>` only for that domain) check it.
    pub common_name: Option<String>,
}

/// Refuses plaintext on anything but a loopback address.
pub fn check_insecure_listen(addr: &SocketAddr) -> Result<(), String> {
    if addr.ip().is_loopback() {
        Ok(())
    } else {
        Err(format!(
            "--dev-insecure serves plaintext and is accepted only on a loopback address, not {addr}"
        ))
    }
}

/// Warnings a peer can provoke: one line per kind per second at most.
type SharedThrottles = Arc<Mutex<Throttles>>;

/// Writes a throttled warning: `$kind` picks the throttle, the rest is `tracing::warn!`'s.
macro_rules! warn_throttled {
    ($throttles:expr, $kind:expr, $($field:tt)*) => {{
        let admitted = $throttles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .admit($kind, Instant::now());
        if let Some(suppressed) = admitted {
            tracing::warn!(suppressed, $($field)*);
        }
    }};
}

/// Serves `app` on `listener` until `shutdown` completes.
///
/// With `tls` set, every client must present a certificate signed by the CA of that
/// configuration; without it the listener must be on loopback (checked by the caller with
/// [`check_insecure_listen`]). Fails at once with `InvalidInput` if `limits` do not pass
/// [`ServerLimits::validate`].
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<Arc<ServerConfig>>,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    limits
        .validate()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let per_peer_counts = PerPeerCounts::default();
    let throttles: SharedThrottles = Arc::new(Mutex::new(Throttles::new(Duration::from_secs(1))));
    let acceptor = tls.map(TlsAcceptor::from);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            p = permits.clone().acquire_owned() => p.map_err(io::Error::other)?,
        };
        let (stream, addr) = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: log, back off briefly, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(per_peer) = PerPeer::enter(&per_peer_counts, addr.ip(), limits.per_ip) else {
            warn_throttled!(
                throttles,
                Noisy::PerPeerRefused,
                peer = %addr,
                limit = limits.per_ip,
                "too many connections from one address (IPv6: one /64); refused"
            );
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let acceptor = acceptor.clone();
        let throttles = throttles.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _per_peer = per_peer;
            let deadline = limits.connection_timeout;
            let conn = handle(stream, addr, app, acceptor, limits, &throttles);
            if tokio::time::timeout(deadline, conn).await.is_err() {
                warn_throttled!(
                    throttles,
                    Noisy::ConnectionDeadline,
                    peer = %addr,
                    ?deadline,
                    "connection deadline reached; closed"
                );
            }
        });
    }
}

/// One connection: TLS handshake (with its own deadline) when configured, then HTTP.
async fn handle(
    stream: tokio::net::TcpStream,
    addr: SocketAddr,
    app: Router,
    acceptor: Option<TlsAcceptor>,
    limits: ServerLimits,
    throttles: &SharedThrottles,
) {
    let Some(acc) = acceptor else {
        let peer = Peer {
            addr,
            authenticated: false,
            common_name: None,
        };
        return serve_conn(stream, app, peer, limits).await;
    };
    let tls = match tokio::time::timeout(limits.handshake_timeout, acc.accept(stream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            warn_throttled!(
                throttles,
                Noisy::HandshakeFailed,
                peer = %addr,
                error = %e,
                "TLS handshake refused"
            );
            return;
        }
        Err(_) => {
            warn_throttled!(
                throttles,
                Noisy::HandshakeTimeout,
                peer = %addr,
                "TLS handshake timed out"
            );
            return;
        }
    };
    let certs = tls.get_ref().1.peer_certificates();
    let authenticated = certs.is_some();
    // The chain was verified by the handshake; the name is only read here.
    let common_name = certs
        .and_then(|c| c.first())
        .and_then(|leaf| crate::tls::leaf_common_name(leaf));
    let peer = Peer {
        addr,
        authenticated,
        common_name,
    };
    serve_conn(tls, app, peer, limits).await;
}

async fn serve_conn<S>(stream: S, app: Router, peer: Peer, limits: ServerLimits)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let addr = peer.addr;
    let app = app.layer(axum::Extension(peer));
    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(read_body_then_route(req, app, limits).await) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(64 * 1024);
    if let Err(e) = builder.serve_connection(TokioIo::new(stream), svc).await {
        tracing::debug!(peer = %addr, error = %e, "connection ended with an error");
    }
}

/// Reads the whole body under [`ServerLimits::body_timeout`] and
/// [`ServerLimits::max_body_bytes`], then hands the request to the router.
///
/// Refusing on the declared `Content-Length` before touching the body matters for
/// `Expect: 100-continue`: hyper sends `100 Continue` only when the body is first read, so
/// an oversized upload is refused before the client sends a byte of it.
async fn read_body_then_route(
    req: Request<Incoming>,
    app: Router,
    limits: ServerLimits,
) -> Response<Body> {
    let max = limits.max_body_bytes;
    if let Some(declared) = declared_length(&req)
        && declared > max as u64
    {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("request body of {declared} bytes, at most {max}"),
        );
    }
    let (parts, body) = req.into_parts();
    let read = tokio::time::timeout(limits.body_timeout, Limited::new(body, max).collect()).await;
    let bytes = match read {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.is::<LengthLimitError>() => {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("request body over {max} bytes"),
            );
        }
        Ok(Err(e)) => {
            return refuse(StatusCode::BAD_REQUEST, &format!("request body: {e}"));
        }
        Err(_) => {
            return refuse(
                StatusCode::REQUEST_TIMEOUT,
                &format!("request body not received within {:?}", limits.body_timeout),
            );
        }
    };
    let req = Request::from_parts(parts, Body::from(bytes));
    match app.oneshot(req).await {
        Ok(resp) => resp,
        Err(never) => match never {},
    }
}

/// The `Content-Length` a request declares, if any (hyper has already refused malformed or
/// conflicting ones).
fn declared_length<B>(req: &Request<B>) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// An error answer in the API's shape (`{"error": ...}`) that also closes the connection:
/// whatever is left of the body is not worth reading.
fn refuse(status: StatusCode, msg: &str) -> Response<Body> {
    let body = serde_json::json!({ "error": msg }).to_string();
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

#[cfg(test)]
mod tests {
    use super::{LimitsError, ServerLimits};

    #[test]
    fn one_peer_never_gets_more_than_half_the_slots() {
        assert!(ServerLimits::default().validate().is_ok());
        let l = ServerLimits {
            max_connections: 8,
            per_ip: 5,
            ..ServerLimits::default()
        };
        assert_eq!(
            l.validate(),
            Err(LimitsError::PerIpTooLarge {
                per_ip: 5,
                max_connections: 8
            })
        );
        let l = ServerLimits {
            max_connections: 1,
            per_ip: 1,
            ..ServerLimits::default()
        };
        assert!(l.validate().is_err(), "one slot cannot be shared");
        let l = ServerLimits {
            body_timeout: std::time::Duration::ZERO,
            ..ServerLimits::default()
        };
        assert_eq!(l.validate(), Err(LimitsError::Zero("body_timeout")));
    }
}
