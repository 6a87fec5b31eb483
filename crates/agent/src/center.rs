//! The agent's calls to the center over mutual TLS (`ashiato-net`'s client): enrolment
//! (`GET /v1/enroll`: the list key, the list's signing key, the clock-skew allowance), the
//! claim list's deltas (`GET /v1/claims?since=V`), and reports (`POST /v1/reports`).
//!
//! [`Keys`] also come from files, so an agent works with a center that does not enrol.

use std::path::Path;

use ashiato_hosttrace::claimlist::SignedDelta;
use ashiato_hosttrace::rank::BotReport;
use ashiato_net::client::{ClientError, ServiceClient};
use ashiato_net::tls::{TlsFiles, client_config};
use serde::Deserialize;

use crate::AgentError;

/// What an agent needs to read the list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keys {
    /// The keyed-hash secret.
    pub list_key: [u8; 32],
    /// The center's Ed25519 public key.
    pub sign_public_key: Vec<u8>,
    /// The center's clock-skew allowance, ns (when it said).
    pub skew_ns: Option<u64>,
}

/// Decodes hex (any case, surrounding whitespace ignored).
pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

/// A 32-byte Ed25519 public key from hex.
pub fn public_key_hex(s: &str) -> Result<Vec<u8>, AgentError> {
    match from_hex(s) {
        Some(v) if v.len() == 32 => Ok(v),
        _ => Err(AgentError::Invalid(format!(
            "signing public key {:?}: not 64 hex digits",
            s.trim()
        ))),
    }
}

/// The list key from a file: 32 raw bytes (the center's `list.key`) or 64 hex digits.
pub fn list_key_file(path: &Path) -> Result<[u8; 32], AgentError> {
    let b = std::fs::read(path).map_err(|e| AgentError::io(path, e))?;
    let raw = if b.len() == 32 {
        b
    } else {
        std::str::from_utf8(&b)
            .ok()
            .and_then(from_hex)
            .unwrap_or_default()
    };
    raw.try_into().map_err(|_| {
        AgentError::Invalid(format!(
            "{}: not 32 bytes nor 64 hex digits",
            path.display()
        ))
    })
}

#[derive(Deserialize)]
struct Enrolment {
    list_key: String,
    sign_public_key: String,
    #[serde(default)]
    skew_ns: Option<u64>,
    #[allow(dead_code)]
    #[serde(default)]
    version: Option<u64>,
}

/// The center, seen from the agent.
pub struct Center {
    client: ServiceClient,
    rt: tokio::runtime::Runtime,
    addr: String,
}

/// How a report was received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sent {
    /// Accepted now.
    Accepted,
    /// The center already had this report id (an earlier try got through).
    AlreadyThere,
}

impl Center {
    /// A client for `addr` presenting identity `name` of `tls_dir` (`ashiato pki init`).
    pub fn new(addr: &str, tls_dir: &Path, name: &str) -> Result<Center, AgentError> {
        let tls = client_config(&TlsFiles::in_dir(tls_dir, name))
            .map_err(|e| AgentError::Invalid(format!("{}: {e}", tls_dir.display())))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| AgentError::io("tokio runtime", e))?;
        Ok(Center {
            client: ServiceClient::new(addr, Some(tls)),
            rt,
            addr: addr.to_string(),
        })
    }

    /// The center's address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    fn err(what: &str, source: ClientError) -> AgentError {
        AgentError::Center {
            what: what.to_string(),
            source,
        }
    }

    /// `GET /v1/enroll`.
    pub fn enroll(&self) -> Result<Keys, AgentError> {
        let e: Enrolment = self
            .rt
            .block_on(self.client.call::<(), _>("GET", "/v1/enroll", None))
            .map_err(|e| Self::err("GET /v1/enroll", e))?;
        let list_key = from_hex(&e.list_key)
            .and_then(|v| <[u8; 32]>::try_from(v).ok())
            .ok_or_else(|| {
                AgentError::Invalid("enrolment: list_key is not 64 hex digits".into())
            })?;
        Ok(Keys {
            list_key,
            sign_public_key: public_key_hex(&e.sign_public_key)?,
            skew_ns: e.skew_ns,
        })
    }

    /// `GET /v1/claims?since=V`: the signed delta after version `since` (verified by the
    /// caller, [`crate::cycle::ClaimList::update`]).
    pub fn delta(&self, since: u64) -> Result<SignedDelta, AgentError> {
        let path = format!("/v1/claims?since={since}");
        self.rt
            .block_on(self.client.call::<(), _>("GET", &path, None))
            .map_err(|e| Self::err(&format!("GET {path}"), e))
    }

    /// `POST /v1/reports`. A replay answer (409) for our own deterministic id means an
    /// earlier try reached the center.
    pub fn report(&self, report_id: &str, report: &BotReport) -> Result<Sent, AgentError> {
        let body = serde_json::json!({ "report_id": report_id, "report": report });
        let r = self
            .rt
            .block_on(self.client.call_unit("POST", "/v1/reports", Some(&body)));
        match r {
            Ok(()) => Ok(Sent::Accepted),
            Err(ClientError::Status { status: 409, .. }) => Ok(Sent::AlreadyThere),
            Err(e) => Err(Self::err("POST /v1/reports", e)),
        }
    }
}
