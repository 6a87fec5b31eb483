//! The claim list as the center publishes it: versioned, incremental, signed, and without
//! victim addresses in the clear.
//!
//! # What is published
//! Each [`PublishedClaim`] carries its id, protocol, window, and instead of the victim's
//! address and port, keyed hashes `HMAC-SHA256(K, victim ‖ port ‖ hour)` (truncated to 128
//! bits) for every hour bucket the window, widened by the skew allowance, touches; reflectors
//! likewise (`port` absent). An agent holding `K` hashes the destination (and, for spoofing,
//! the source) of its own packets with the packet's hour and looks the hash up: it learns a
//! claim's victim only for addresses it talked to itself.
//!
//! Versions grow by one per claim. A [`SignedDelta`] holds the claims after version `from` up
//! to `to`, signed with the center's Ed25519 key over its canonical JSON; an agent applies
//! deltas in order ([`AgentList::apply`]) and refuses a bad signature, a gap or a replay.
//!
//! # What this protects, and what not
//! - Someone who downloads the list without `K` learns neither victims nor ports, only claim
//!   counts, protocols and windows. Hashing without a key would not do: the IPv4 space times
//!   65,536 ports is small enough to hash exhaustively.
//! - Every participating agent holds `K` (it must, to match). A malicious participant can test
//!   guesses ("was 203.0.113.5:80 attacked at 10:00?") one hash at a time, and with the whole
//!   IPv4 space and the common ports in reach of a day's computation, could enumerate victims.
//!   The key therefore goes only to authenticated agents and is rotated; it raises the bar
//!   from "anyone" to "an enrolled, identifiable participant doing bulk work".
//! - The signature makes a forged or altered list (a claim planted to make hosts report on a
//!   rival's traffic) fail at every agent; it says nothing about whether the center was right
//!   to accept the claim: that is the center's evidence check.

use std::collections::HashMap;
use std::net::IpAddr;

use ring::hmac;
use ring::signature::{self, Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};

use crate::claim::{Claim, Protocol};
use crate::rfc3339_ns;

/// Width of a time bucket: one hour.
pub const BUCKET_NS: u64 = 3600 * 1_000_000_000;

/// A keyed hash of (address, port, bucket), 128 bits in hex.
pub fn entry_hash(key: &hmac::Key, addr: IpAddr, port: Option<u16>, bucket: u64) -> String {
    let mut m = Vec::with_capacity(32);
    match addr {
        IpAddr::V4(a) => m.extend_from_slice(&a.to_ipv6_mapped().octets()),
        IpAddr::V6(a) => m.extend_from_slice(&a.octets()),
    }
    // 0xffff_ffff marks "no port": no real port has it.
    m.extend_from_slice(&port.map_or(u32::MAX, u32::from).to_be_bytes());
    m.extend_from_slice(&bucket.to_be_bytes());
    let tag = hmac::sign(key, &m);
    tag.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The list key from its 32 secret bytes.
pub fn list_key(secret: &[u8; 32]) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA256, secret)
}

/// One claim as published.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishedClaim {
    /// Its version (position in the list, from 1).
    pub version: u64,
    /// The claim's id.
    pub id: String,
    /// Protocol.
    pub protocol: Protocol,
    /// Window start, ns.
    pub from_ns: u64,
    /// Window end, ns.
    pub to_ns: u64,
    /// The claim named a port.
    pub has_port: bool,
    /// Keyed hashes of (victim, port, bucket) for each bucket of the widened window.
    pub victim: Vec<String>,
    /// Keyed hashes of (reflector, no port, bucket).
    pub reflectors: Vec<String>,
}

/// Claims after version `from`, up to `to`, signed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedDelta {
    /// The version the agent must already have.
    pub from: u64,
    /// The version after applying.
    pub to: u64,
    /// The claims `from+1 ..= to`.
    pub claims: Vec<PublishedClaim>,
    /// Ed25519 over the canonical JSON of `(from, to, claims)`, hex.
    pub signature: String,
}

#[derive(Serialize)]
struct Signed<'a> {
    from: u64,
    to: u64,
    claims: &'a [PublishedClaim],
}

fn signed_bytes(from: u64, to: u64, claims: &[PublishedClaim]) -> Vec<u8> {
    serde_json::to_vec(&Signed { from, to, claims }).expect("plain data serialises")
}

/// Why a delta was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ListError {
    /// The signature does not verify under the center's key.
    #[error("claim list {from}..{to}: bad signature")]
    BadSignature {
        /// Delta start.
        from: u64,
        /// Delta end.
        to: u64,
    },
    /// The delta does not start where the agent is.
    #[error("claim list delta starts at version {from}, the agent has {have}")]
    Gap {
        /// Delta start.
        from: u64,
        /// The agent's version.
        have: u64,
    },
    /// Versions inside the delta are not `from+1 ..= to`.
    #[error("claim list delta {from}..{to} has inconsistent versions")]
    Inconsistent {
        /// Delta start.
        from: u64,
        /// Delta end.
        to: u64,
    },
}

/// The center's side: claims in order, hashed with `K`, deltas signed.
pub struct CenterList {
    key: hmac::Key,
    signer: Ed25519KeyPair,
    skew_ns: u64,
    claims: Vec<PublishedClaim>,
}

impl CenterList {
    /// A list with the hash key, the signing key (PKCS#8) and the skew allowance the agents
    /// use.
    pub fn new(secret: &[u8; 32], pkcs8: &[u8], skew_ns: u64) -> Result<CenterList, String> {
        let signer = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|e| format!("signing key: {e}"))?;
        Ok(CenterList {
            key: list_key(secret),
            signer,
            skew_ns,
            claims: Vec::new(),
        })
    }

    /// The public key agents verify with.
    pub fn public_key(&self) -> Vec<u8> {
        self.signer.public_key().as_ref().to_vec()
    }

    /// The current version.
    pub fn version(&self) -> u64 {
        self.claims.len() as u64
    }

    /// Publishes a claim; returns its version.
    pub fn publish(&mut self, c: &Claim) -> u64 {
        let first = c.from_ns.saturating_sub(self.skew_ns) / BUCKET_NS;
        let last = c.to_ns.saturating_add(self.skew_ns) / BUCKET_NS;
        let mut victim = Vec::new();
        let mut reflectors = Vec::new();
        for b in first..=last {
            victim.push(entry_hash(&self.key, c.victim, c.port, b));
            for r in &c.reflectors {
                reflectors.push(entry_hash(&self.key, *r, None, b));
            }
        }
        let version = self.version() + 1;
        self.claims.push(PublishedClaim {
            version,
            id: c.id.clone(),
            protocol: c.protocol,
            from_ns: c.from_ns,
            to_ns: c.to_ns,
            has_port: c.port.is_some(),
            victim,
            reflectors,
        });
        version
    }

    /// The signed delta from version `since` to now (at most `max` claims).
    pub fn delta(&self, since: u64, max: usize) -> SignedDelta {
        let start = (since as usize).min(self.claims.len());
        let end = start.saturating_add(max).min(self.claims.len());
        let claims = self.claims[start..end].to_vec();
        let (from, to) = (start as u64, end as u64);
        let sig = self.signer.sign(&signed_bytes(from, to, &claims));
        SignedDelta {
            from,
            to,
            claims,
            signature: sig.as_ref().iter().map(|b| format!("{b:02x}")).collect(),
        }
    }
}

/// The agent's side: the list applied so far, indexed by hash.
pub struct AgentList {
    public_key: Vec<u8>,
    key: hmac::Key,
    claims: Vec<PublishedClaim>,
    by_victim: HashMap<String, Vec<usize>>,
    by_reflector: HashMap<String, Vec<usize>>,
}

impl AgentList {
    /// An empty list trusting `public_key`, matching with the list key's secret.
    pub fn new(public_key: &[u8], secret: &[u8; 32]) -> AgentList {
        AgentList {
            public_key: public_key.to_vec(),
            key: list_key(secret),
            claims: Vec::new(),
            by_victim: HashMap::new(),
            by_reflector: HashMap::new(),
        }
    }

    /// The version applied.
    pub fn version(&self) -> u64 {
        self.claims.len() as u64
    }

    /// Verifies and applies a delta.
    pub fn apply(&mut self, d: &SignedDelta) -> Result<(), ListError> {
        let sig = hex(&d.signature).ok_or(ListError::BadSignature {
            from: d.from,
            to: d.to,
        })?;
        signature::UnparsedPublicKey::new(&signature::ED25519, &self.public_key)
            .verify(&signed_bytes(d.from, d.to, &d.claims), &sig)
            .map_err(|_| ListError::BadSignature {
                from: d.from,
                to: d.to,
            })?;
        if d.from != self.version() {
            return Err(ListError::Gap {
                from: d.from,
                have: self.version(),
            });
        }
        let consistent = d.to == d.from + d.claims.len() as u64
            && d.claims
                .iter()
                .enumerate()
                .all(|(i, c)| c.version == d.from + 1 + i as u64);
        if !consistent {
            return Err(ListError::Inconsistent {
                from: d.from,
                to: d.to,
            });
        }
        for c in &d.claims {
            let i = self.claims.len();
            for h in &c.victim {
                self.by_victim.entry(h.clone()).or_default().push(i);
            }
            for h in &c.reflectors {
                self.by_reflector.entry(h.clone()).or_default().push(i);
            }
            self.claims.push(c.clone());
        }
        Ok(())
    }

    /// The claims applied, in version order.
    pub fn claims(&self) -> &[PublishedClaim] {
        &self.claims
    }

    /// Indexes of claims whose victim is `addr` with `port` (or any port when the claim named
    /// none) and whose widened window holds `ts_ns`'s hour.
    pub fn victim_of(&self, addr: IpAddr, port: Option<u16>, ts_ns: u64) -> Vec<usize> {
        if self.by_victim.is_empty() {
            return Vec::new();
        }
        let b = ts_ns / BUCKET_NS;
        let mut out = Vec::new();
        let mut look = |p: Option<u16>| {
            let h = entry_hash(&self.key, addr, p, b);
            for &i in self.by_victim.get(&h).into_iter().flatten() {
                if !out.contains(&i) {
                    out.push(i);
                }
            }
        };
        if port.is_some() {
            look(port);
        }
        look(None);
        out
    }

    /// Whether `addr` is a reflector of claim `i` in `ts_ns`'s hour.
    pub fn is_reflector(&self, i: usize, addr: IpAddr, ts_ns: u64) -> bool {
        let h = entry_hash(&self.key, addr, None, ts_ns / BUCKET_NS);
        self.by_reflector.get(&h).is_some_and(|v| v.contains(&i))
    }

    /// Claims naming `addr` as victim (with `port`) or as reflector in `ts_ns`'s hour.
    pub fn candidates(&self, addr: IpAddr, port: u16, ts_ns: u64) -> Vec<&PublishedClaim> {
        let mut idx = self.victim_of(addr, Some(port), ts_ns);
        let h = entry_hash(&self.key, addr, None, ts_ns / BUCKET_NS);
        for &i in self.by_reflector.get(&h).into_iter().flatten() {
            if !idx.contains(&i) {
                idx.push(i);
            }
        }
        idx.into_iter().map(|i| &self.claims[i]).collect()
    }

    /// A published claim's window as text, for messages.
    pub fn window(c: &PublishedClaim) -> String {
        format!("{} .. {}", rfc3339_ns(c.from_ns), rfc3339_ns(c.to_ns))
    }
}

/// A time in ns as RFC 3339 text (for exports).
pub fn rfc3339(ns: u64) -> String {
    rfc3339_ns(ns)
}

fn hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claim::parse_claims;

    fn keypair() -> Vec<u8> {
        let rng = ring::rand::SystemRandom::new();
        Ed25519KeyPair::generate_pkcs8(&rng)
            .unwrap()
            .as_ref()
            .to_vec()
    }

    const SECRET: [u8; 32] = [7; 32];

    fn center() -> CenterList {
        let mut c = CenterList::new(&SECRET, &keypair(), 300_000_000_000).unwrap();
        let claims = parse_claims(
            r#"{"id":"a","victim":"203.0.113.5","protocol":"tcp","port":80,"from":"2026-01-01T10:00:00Z","to":"2026-01-01T10:05:00Z"}
{"id":"b","victim":"198.51.100.7","protocol":"udp","reflectors":["192.0.2.53"],"from":"2026-01-01T11:58:00Z","to":"2026-01-01T12:01:00Z"}"#,
        )
        .unwrap();
        for cl in &claims {
            c.publish(cl);
        }
        c
    }

    const T10: u64 = 1_767_261_600_000_000_000;

    #[test]
    fn agents_find_claims_only_for_addresses_they_talked_to() {
        let c = center();
        let mut a = AgentList::new(&c.public_key(), &SECRET);
        a.apply(&c.delta(0, 1)).unwrap();
        a.apply(&c.delta(1, 10)).unwrap();
        assert_eq!(a.version(), 2);
        let v = "203.0.113.5".parse().unwrap();
        assert_eq!(a.candidates(v, 80, T10 + 60_000_000_000)[0].id, "a");
        assert!(a.candidates(v, 81, T10).is_empty());
        assert!(a.candidates(v, 80, T10 + 5 * BUCKET_NS).is_empty());
        // Claim b spans two hour buckets; its reflector is found too.
        let r = "192.0.2.53".parse().unwrap();
        assert_eq!(a.candidates(r, 53, T10 + 2 * BUCKET_NS)[0].id, "b");
        assert_eq!(
            a.candidates(r, 53, T10 + BUCKET_NS + 3_400_000_000_000)[0].id,
            "b"
        );
        // The published text holds no address.
        let text = serde_json::to_string(&c.delta(0, 10)).unwrap();
        assert!(!text.contains("203.0.113.5") && !text.contains("192.0.2.53"));
        // Another key finds nothing.
        let mut other = AgentList::new(&c.public_key(), &[8; 32]);
        other.apply(&c.delta(0, 10)).unwrap();
        assert!(other.candidates(v, 80, T10).is_empty());
    }

    #[test]
    fn forged_replayed_and_gapped_deltas_are_refused() {
        let c = center();
        let mut a = AgentList::new(&c.public_key(), &SECRET);
        let mut forged = c.delta(0, 10);
        forged.claims[0].to_ns += 1;
        assert_eq!(
            a.apply(&forged),
            Err(ListError::BadSignature { from: 0, to: 2 })
        );
        let mut garbage = c.delta(0, 10);
        garbage.signature = "zz".into();
        assert!(matches!(
            a.apply(&garbage),
            Err(ListError::BadSignature { .. })
        ));
        // Signed by another center.
        let evil = center();
        assert!(matches!(
            a.apply(&evil.delta(0, 10)),
            Err(ListError::BadSignature { .. })
        ));
        assert_eq!(
            a.apply(&c.delta(1, 10)),
            Err(ListError::Gap { from: 1, have: 0 })
        );
        a.apply(&c.delta(0, 10)).unwrap();
        // The same delta again is a replay: it no longer starts where the agent is.
        assert_eq!(
            a.apply(&c.delta(0, 10)),
            Err(ListError::Gap { from: 0, have: 2 })
        );
        assert_eq!(a.version(), 2);
    }
}
