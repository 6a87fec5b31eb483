//! Opt-in reuse of connections (HTTP/1.1 keep-alive), process-wide, per service address and
//! TLS client configuration.
//!
//! Off by default: every call opens a new TCP connection and a full mutual-TLS handshake.
//! In a federation on one machine those handshakes dominate a trace (the lab measured
//! X25519, P-256 signatures and the TCP setup at over half of the CPU of a mesh trace), so a
//! process that calls the same services again and again (the lab, a busy controller) can
//! turn reuse on with [`super::reuse_connections`].
//!
//! Bounds: at most [`MAX_IDLE_PER_PEER`] idle connections per (address, configuration), each
//! kept at most [`MAX_IDLE`] idle and reused only while younger than [`MAX_AGE`], well inside
//! the server's header deadline (10 s) and whole-connection deadline (60 s), so a server
//! never cuts a reused connection in the middle of a request. A reused connection the server
//! closed meanwhile fails before the request is sent; the call then opens a new one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use rustls::ClientConfig;
use tokio::task::JoinHandle;

/// Idle connections kept per (address, TLS configuration).
pub const MAX_IDLE_PER_PEER: usize = 8;
/// Longest an idle connection is kept.
pub const MAX_IDLE: Duration = Duration::from_secs(4);
/// Oldest connection that is reused.
pub const MAX_AGE: Duration = Duration::from_secs(30);

static ENABLED: AtomicBool = AtomicBool::new(false);

type Key = (String, usize);

/// An open connection between requests.
pub(super) struct Idle {
    pub sender: SendRequest<Full<Bytes>>,
    pub conn: JoinHandle<Result<(), hyper::Error>>,
    pub born: Instant,
    idle_since: Instant,
}

impl Idle {
    pub fn new(
        sender: SendRequest<Full<Bytes>>,
        conn: JoinHandle<Result<(), hyper::Error>>,
        born: Instant,
    ) -> Idle {
        Idle {
            sender,
            conn,
            born,
            idle_since: Instant::now(),
        }
    }
}

static POOL: LazyLock<Mutex<HashMap<Key, Vec<Idle>>>> = LazyLock::new(Mutex::default);

pub(super) fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
    if !on {
        POOL.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

pub(super) fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

pub(super) fn key(addr: &str, tls: &Option<Arc<ClientConfig>>) -> Key {
    (
        addr.to_string(),
        tls.as_ref().map_or(0, |c| Arc::as_ptr(c) as usize),
    )
}

/// A usable idle connection to `key`, if one is held.
pub(super) fn take(key: &Key) -> Option<Idle> {
    let mut g = POOL.lock().unwrap_or_else(|e| e.into_inner());
    let v = g.get_mut(key)?;
    while let Some(i) = v.pop() {
        if !i.sender.is_closed()
            && i.sender.is_ready()
            && i.idle_since.elapsed() < MAX_IDLE
            && i.born.elapsed() < MAX_AGE
        {
            return Some(i);
        }
    }
    None
}

/// Keeps a connection whose last request succeeded, if reuse is on and there is room.
pub(super) fn put(key: Key, idle: Idle) {
    if !enabled() || idle.born.elapsed() >= MAX_AGE {
        return;
    }
    let mut g = POOL.lock().unwrap_or_else(|e| e.into_inner());
    let v = g.entry(key).or_default();
    v.retain(|i| !i.sender.is_closed() && i.idle_since.elapsed() < MAX_IDLE);
    if v.len() < MAX_IDLE_PER_PEER {
        v.push(Idle {
            idle_since: Instant::now(),
            ..idle
        });
    }
}
