//! The accept loop every ashiato service runs: TCP, then mutual TLS (or plaintext on loopback
//! for labs), then HTTP/1.1 served by an axum router.
//!
//! `axum::serve` has no TLS, so connections are accepted here, handed to a tokio-rustls
//! acceptor and served by hyper. The loop bounds what a hostile peer can hold: at most
//! [`ServerLimits::max_connections`] at once (a semaphore), a deadline for the TLS handshake
//! and for reading request headers. It takes its listener and shutdown signal as arguments so
//! tests bind port 0 and stop it when they are done.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

/// Bounds applied to every connection.
#[derive(Clone, Copy, Debug)]
pub struct ServerLimits {
    /// Connections served at once; further ones wait in the kernel's backlog.
    pub max_connections: usize,
    /// Deadline for the TLS handshake.
    pub handshake_timeout: Duration,
    /// Deadline for a request's headers.
    pub header_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_connections: 256,
            handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
        }
    }
}

/// The authenticated peer of a connection, put into every request's extensions.
#[derive(Clone, Debug)]
pub struct Peer {
    /// Remote socket address.
    pub addr: SocketAddr,
    /// True when the peer presented a certificate the CA vouches for.
    pub authenticated: bool,
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

/// Serves `app` on `listener` until `shutdown` completes.
///
/// With `tls` set, every client must present a certificate signed by the CA of that
/// configuration; without it the listener must be on loopback (checked by the caller with
/// [`check_insecure_listen`]).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<Arc<ServerConfig>>,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
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
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match acceptor {
                Some(acc) => {
                    let tls =
                        match tokio::time::timeout(limits.handshake_timeout, acc.accept(stream))
                            .await
                        {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::warn!(peer = %addr, error = %e, "TLS handshake refused");
                                return;
                            }
                            Err(_) => {
                                tracing::warn!(peer = %addr, "TLS handshake timed out");
                                return;
                            }
                        };
                    let authenticated = tls.get_ref().1.peer_certificates().is_some();
                    serve_conn(
                        tls,
                        app,
                        Peer {
                            addr,
                            authenticated,
                        },
                        limits,
                    )
                    .await;
                }
                None => {
                    let peer = Peer {
                        addr,
                        authenticated: false,
                    };
                    serve_conn(stream, app, peer, limits).await;
                }
            }
        });
    }
}

async fn serve_conn<S>(stream: S, app: Router, peer: Peer, limits: ServerLimits)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let addr = peer.addr;
    let app = app.layer(axum::Extension(peer));
    let svc = TowerToHyperService::new(app);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(64 * 1024);
    if let Err(e) = builder.serve_connection(TokioIo::new(stream), svc).await {
        tracing::debug!(peer = %addr, error = %e, "connection ended with an error");
    }
}
