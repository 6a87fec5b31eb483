//! The service stack every ashiato service runs on: HTTP/JSON over mutual TLS.
//!
//! - [`server`]: the bounded accept loop — TCP, then mutual TLS (or plaintext on loopback for
//!   labs), then HTTP/1.1 served by an axum router; per-peer caps, deadlines for the
//!   handshake, headers, body and whole connection, throttled warnings.
//! - [`tls`]: TLS configuration for servers and clients, certificate loading and date checks,
//!   and the lab PKI (`ashiato pki init` / `pki issue`).
//! - [`client`]: the HTTP/JSON client with deadlines, bounded answers and typed errors that
//!   keep their cause, with the probe's calls (`query`, `query_expecting`, `status`) typed by
//!   `ashiato-api`.
//!
//! Services (the probe, DarkFlow's metrics endpoint, and the controllers to come) build an
//! axum `Router` and hand it to [`server::serve`] with their listener, TLS configuration,
//! limits and shutdown signal; the metrics text they serve is written with
//! `ashiato_api::metrics`.

pub mod client;
pub mod server;
pub mod tls;

/// An error and its causes on one line (`a: b: c`), for status pages and logs, as anyhow's
/// `{:#}` prints them. Every error type of the workspace leaves its cause to `source()`, so
/// each cause appears once.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}
