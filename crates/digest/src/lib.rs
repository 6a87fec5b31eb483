//! The ashiato packet digest, version 1: what a probe records of every packet and what a
//! controller asks about.
//!
//! A digest is a 128-bit keyed hash of a packet's *invariant bytes*: the bytes that routers do
//! not change on the way (SPIE, Snoeren et al. 2001; ../docs/digest.md is the normative text).
//!
//! ```text
//! IPv4 (28 bytes)  = IPv4 fixed header (20 B) with TOS/DSCP+ECN, TTL and header checksum set
//!                    to zero, options left out  ||  first 8 bytes of the IP payload
//! IPv6 (48 bytes)  = IPv6 fixed header (40 B) with traffic class and hop limit set to zero
//!                    ||  first 8 bytes after the fixed header
//! digest           = SipHash-2-4-128(federation key, invariant bytes)
//! ```
//!
//! When the IP payload is shorter than 8 bytes (by the IP length fields, not the capture), the
//! missing bytes are zero: the length fields inside the header already tell such packets
//! apart. When the *capture* cut the payload short (snap length) the digest cannot be computed
//! and [`DigestError::SnapTooShort`] says so; the probe counts such frames.
//!
//! The key is the federation secret: without it nobody can compute a digest, so digests leak
//! nothing about packets to outsiders and cannot be forged to pollute tables.
//!
//! Main types: [`Key`], [`Digest`], [`invariant_bytes`], [`Key::digest_ip`],
//! [`Key::digest_frame`]. The crate is pure: no IO, no clock, no allocation per packet.

use std::fmt;
use std::str::FromStr;

use ashiato_wire::LinkType;
use ashiato_wire::packet::{self, Ip, ParseError};

/// Version of the digest specification implemented here (docs/digest.md).
pub const DIGEST_VERSION: u8 = 1;

/// Bytes of the IP payload that enter the digest.
pub const PAYLOAD_PREFIX: usize = 8;

/// Length of the IPv4 invariant bytes.
pub const V4_INVARIANT_LEN: usize = 20 + PAYLOAD_PREFIX;

/// Length of the IPv6 invariant bytes.
pub const V6_INVARIANT_LEN: usize = 40 + PAYLOAD_PREFIX;

/// The demo federation key, used when no key file is given. It is public: anyone can compute
/// digests made with it, so it is only for labs, tests and the quick start.
pub const DEMO_KEY: Key = Key(*b"ashiato-demo-key");

/// A 128-bit federation secret shared by every probe and controller of a federation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Key([u8; 16]);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret itself; its identifier is safe to show.
        write!(f, "Key(id={:016x})", self.id())
    }
}

/// Why a key could not be read from text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The text was not 32 hexadecimal digits.
    #[error("a federation key is 32 hexadecimal digits (128 bits); found {found} characters")]
    Length {
        /// Characters found after trimming.
        found: usize,
    },
    /// A character is not a hexadecimal digit.
    #[error("a federation key is 32 hexadecimal digits; character {index} ({ch:?}) is not one")]
    NotHex {
        /// Position in the trimmed text.
        index: usize,
        /// The offending character.
        ch: char,
    },
}

impl Key {
    /// A key from its 16 bytes.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Key(bytes)
    }

    /// The key's bytes (for writing a key file).
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The key as 32 lowercase hexadecimal digits (the key-file format).
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// A public 64-bit identifier of the key: SipHash-2-4 of a fixed label under the key.
    /// Probes put it in answers and spill files so that tables made with another key (or
    /// another digest version) are never mixed up with ours; it reveals nothing of the key.
    pub fn id(&self) -> u64 {
        sip::siphash24_128(&self.0, b"ashiato key id v1").0
    }

    /// Identifier of the tables this key and digest version produce.
    pub fn table_id(&self) -> u64 {
        self.id() ^ u64::from(DIGEST_VERSION)
    }

    /// [`Key::table_id`] as 16 lowercase hex digits: the one form of the key's id that
    /// operators see everywhere (`key generate`, probe answers, controller start-up, trace
    /// and query requests).
    pub fn table_id_hex(&self) -> String {
        format!("{:016x}", self.table_id())
    }

    /// Digest of a parsed IP packet.
    #[inline]
    pub fn digest_ip(&self, ip: &Ip<'_>) -> Result<Digest, DigestError> {
        let mut buf = [0u8; V6_INVARIANT_LEN];
        let n = invariant_bytes(ip, &mut buf)?;
        Ok(self.digest_invariant(&buf[..n]))
    }

    /// Digest of invariant bytes already extracted by [`invariant_bytes`].
    #[inline]
    pub fn digest_invariant(&self, invariant: &[u8]) -> Digest {
        let (h1, h2) = sip::siphash24_128(&self.0, invariant);
        Digest(u128::from(h1) | (u128::from(h2) << 64))
    }

    /// Digests of two invariant-byte strings at once (see [`sip::siphash24_128_x2`]): the
    /// same values as two [`Key::digest_invariant`] calls, faster on a busy ingest path.
    #[inline]
    pub fn digest_invariant_x2(&self, a: &[u8], b: &[u8]) -> (Digest, Digest) {
        let ((a1, a2), (b1, b2)) = sip::siphash24_128_x2(&self.0, a, b);
        (
            Digest(u128::from(a1) | (u128::from(a2) << 64)),
            Digest(u128::from(b1) | (u128::from(b2) << 64)),
        )
    }

    /// Digest of one captured frame: parse its link and IP layers, then digest.
    #[inline]
    pub fn digest_frame(&self, link: LinkType, data: &[u8]) -> Result<Digest, DigestError> {
        let pkt = packet::parse(link, data)?;
        self.digest_ip(&pkt.ip)
    }
}

impl FromStr for Key {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, KeyError> {
        let s = s.trim();
        if s.len() != 32 {
            return Err(KeyError::Length {
                found: s.chars().count(),
            });
        }
        let mut out = [0u8; 16];
        for (i, ch) in s.chars().enumerate() {
            let v = ch.to_digit(16).ok_or(KeyError::NotHex { index: i, ch })? as u8;
            out[i / 2] |= if i % 2 == 0 { v << 4 } else { v };
        }
        Ok(Key(out))
    }
}

/// A packet digest: 128 bits, shown as 32 hexadecimal digits (most significant first).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(pub u128);

impl Digest {
    /// The digest as an integer (what the digest tables take).
    pub const fn as_u128(self) -> u128 {
        self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

/// Why a digest text could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a digest is 32 hexadecimal digits; got {0:?}")]
pub struct DigestParseError(pub String);

impl FromStr for Digest {
    type Err = DigestParseError;

    fn from_str(s: &str) -> Result<Self, DigestParseError> {
        let t = s.trim();
        if t.len() != 32 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(DigestParseError(s.chars().take(80).collect()));
        }
        u128::from_str_radix(t, 16)
            .map(Digest)
            .map_err(|_| DigestParseError(s.to_string()))
    }
}

/// Why a frame has no digest.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// The frame is not an IP packet or its IP header is damaged.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The capture kept fewer payload bytes than the digest needs.
    #[error(
        "capture cut the packet short: the digest needs {needed} payload bytes, {captured} were captured"
    )]
    SnapTooShort {
        /// Payload bytes the digest needs (at most 8).
        needed: usize,
        /// Payload bytes present in the capture.
        captured: usize,
    },
}

impl DigestError {
    /// A short label for counters ("snap_too_short" or the parser's reason).
    pub fn reason(&self) -> &'static str {
        match self {
            DigestError::Parse(e) => e.kind.reason(),
            DigestError::SnapTooShort { .. } => "snap_too_short",
        }
    }
}

/// Writes the invariant bytes of `ip` into `out` and returns their length (28 for IPv4, 48 for
/// IPv6). This is the normative definition of docs/digest.md §2.
#[inline]
pub fn invariant_bytes(
    ip: &Ip<'_>,
    out: &mut [u8; V6_INVARIANT_LEN],
) -> Result<usize, DigestError> {
    let (header_len, claimed_payload) = match ip {
        Ip::V4(v4) => {
            let h = v4.header;
            out[..20].copy_from_slice(&h[..20]);
            out[1] = 0; // TOS: DSCP and ECN are rewritten by routers.
            out[8] = 0; // TTL: decremented at every hop.
            out[10] = 0; // Header checksum: follows TTL and TOS.
            out[11] = 0;
            let claimed = usize::from(v4.total_len).saturating_sub(h.len());
            (20, claimed)
        }
        Ip::V6(v6) => {
            out[..40].copy_from_slice(&v6.header[..40]);
            // Traffic class: the low nibble of byte 0 and the high nibble of byte 1.
            out[0] &= 0xf0;
            out[1] &= 0x0f;
            out[7] = 0; // Hop limit.
            (40, usize::from(v6.payload_len))
        }
    };
    let payload = ip.payload();
    let needed = claimed_payload.min(PAYLOAD_PREFIX);
    if payload.len() < needed {
        return Err(DigestError::SnapTooShort {
            needed,
            captured: payload.len(),
        });
    }
    out[header_len..header_len + needed].copy_from_slice(&payload[..needed]);
    out[header_len + needed..header_len + PAYLOAD_PREFIX].fill(0);
    Ok(header_len + PAYLOAD_PREFIX)
}

/// Lowercase hexadecimal of some bytes.
pub fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

pub mod sip;

#[cfg(test)]
mod tests;
