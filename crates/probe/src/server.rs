//! The accept loop every ashiato service runs: TCP, then mutual TLS (or plaintext on loopback
//! for labs), then HTTP/1.1 served by an axum router.
//!
//! `axum::serve` has no TLS, so connections are accepted here, handed to a tokio-rustls
//! acceptor and served by hyper. The loop bounds what a hostile peer can hold: at most
//! [`ServerLimits::max_connections`] at once (a semaphore), a deadline for the TLS handshake
//! and for reading request headers, at most [`ServerLimits::per_ip`] connections from one
//! address (so one peer cannot hold every slot with idle handshakes), and a deadline for a
//! whole connection (body and response included). It takes its listener and shutdown signal
//! as arguments so tests bind port 0 and stop it when they are done.

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
    /// Connections at once from one IP address.
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
            per_ip: 16,
            connection_timeout: Duration::from_secs(60),
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
    let per_ip_counts = PerIpCounts::default();
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
        let Some(per_ip) = PerIp::enter(&per_ip_counts, addr.ip(), limits.per_ip) else {
            tracing::warn!(peer = %addr, limit = limits.per_ip, "too many connections from one address; refused");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _per_ip = per_ip;
            let deadline = limits.connection_timeout;
            if tokio::time::timeout(deadline, handle(stream, addr, app, acceptor, limits))
                .await
                .is_err()
            {
                tracing::warn!(peer = %addr, ?deadline, "connection deadline reached; closed");
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
) {
    let Some(acc) = acceptor else {
        let peer = Peer {
            addr,
            authenticated: false,
        };
        return serve_conn(stream, app, peer, limits).await;
    };
    let tls = match tokio::time::timeout(limits.handshake_timeout, acc.accept(stream)).await {
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
    let peer = Peer {
        addr,
        authenticated,
    };
    serve_conn(tls, app, peer, limits).await;
}

/// Connections per remote address, decremented when a connection ends.
type PerIpCounts = Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>;

struct PerIp {
    counts: PerIpCounts,
    ip: std::net::IpAddr,
}

impl PerIp {
    fn enter(counts: &PerIpCounts, ip: std::net::IpAddr, limit: usize) -> Option<PerIp> {
        let mut m = counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = m.entry(ip).or_insert(0);
        if *n >= limit {
            return None;
        }
        *n += 1;
        Some(PerIp {
            counts: counts.clone(),
            ip,
        })
    }
}

impl Drop for PerIp {
    fn drop(&mut self) {
        let mut m = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
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
