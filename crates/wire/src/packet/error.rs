//! Why a frame could not be parsed, and counters of skipped frames by reason.

use std::fmt;

/// The header a [`ParseError`] was found in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Layer {
    /// The link-layer header (Ethernet, Linux cooked, loopback).
    Link,
    /// An 802.1Q / 802.1ad VLAN tag.
    Vlan,
    /// An IP header whose version is not yet known (raw-IP link types).
    Ip,
    /// The IPv4 header.
    Ipv4,
    /// The fixed IPv6 header.
    Ipv6,
    /// An IPv6 extension header.
    Ipv6Ext,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layer::Link => "link layer",
            Layer::Vlan => "VLAN tag",
            Layer::Ip => "IP header",
            Layer::Ipv4 => "IPv4 header",
            Layer::Ipv6 => "IPv6 header",
            Layer::Ipv6Ext => "IPv6 extension header",
        })
    }
}

/// A frame that could not be parsed down to its IP header: where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{layer} at offset {offset}: {kind}")]
pub struct ParseError {
    /// The header being parsed.
    pub layer: Layer,
    /// Offset of that header in the frame.
    pub offset: usize,
    /// What was wrong with it.
    pub kind: ParseErrorKind,
}

/// The kinds of [`ParseError`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    /// The header is not fully present in the captured bytes (or in the IP length).
    #[error("truncated: needs {needed} bytes, {available} present")]
    Truncated {
        /// Bytes the header needs from its offset.
        needed: usize,
        /// Bytes present from its offset.
        available: usize,
    },
    /// The Ethernet (or cooked) frame carries something other than IPv4 or IPv6.
    #[error("not IP (ethertype 0x{ethertype:04x})")]
    NotIp {
        /// The ethertype after any VLAN tags.
        ethertype: u16,
    },
    /// A loopback frame's address family is neither IPv4 nor IPv6.
    #[error("not IP (loopback address family {0})")]
    UnknownFamily(u32),
    /// The link type has no parser.
    #[error("unsupported link type {0}")]
    UnsupportedLink(u32),
    /// The IP version nibble is not the expected one (4 or 6).
    #[error("bad IP version {0}")]
    BadVersion(u8),
    /// The IPv4 header length field is below 5 words.
    #[error("bad IPv4 header length {0} (words)")]
    BadIhl(u8),
    /// The IPv4 total length is smaller than the header.
    #[error("IPv4 total length {total} is shorter than the header ({header} bytes)")]
    BadTotalLength {
        /// The total-length field.
        total: u16,
        /// The header length in bytes.
        header: u16,
    },
    /// More VLAN tags than [`super::MAX_VLAN_TAGS`].
    #[error("too many VLAN tags")]
    TooManyVlanTags,
    /// More IPv6 extension headers than [`super::MAX_EXT_HEADERS`].
    #[error("too many IPv6 extension headers")]
    TooManyExtHeaders,
}

/// Every kind's counter label, in [`ParseErrorKind::index`] order.
const REASONS: [&str; 9] = [
    "truncated",
    "not_ip",
    "unknown_family",
    "unsupported_link",
    "bad_version",
    "bad_ihl",
    "bad_total_length",
    "too_many_vlan_tags",
    "too_many_ext_headers",
];

impl ParseErrorKind {
    /// A short snake_case label for counters and metrics (`"truncated"`, `"not_ip"`, ...).
    pub fn reason(&self) -> &'static str {
        REASONS[self.index()]
    }

    fn index(&self) -> usize {
        match self {
            ParseErrorKind::Truncated { .. } => 0,
            ParseErrorKind::NotIp { .. } => 1,
            ParseErrorKind::UnknownFamily(_) => 2,
            ParseErrorKind::UnsupportedLink(_) => 3,
            ParseErrorKind::BadVersion(_) => 4,
            ParseErrorKind::BadIhl(_) => 5,
            ParseErrorKind::BadTotalLength { .. } => 6,
            ParseErrorKind::TooManyVlanTags => 7,
            ParseErrorKind::TooManyExtHeaders => 8,
        }
    }
}

/// Counts of skipped frames by reason (used by the CLI and metrics). Fixed size, no allocation.
#[derive(Default, Clone, Debug, PartialEq, Eq)]
pub struct ParseStats {
    counts: [u64; REASONS.len()],
}

impl ParseStats {
    /// Counts one skipped frame.
    #[inline]
    pub fn record(&mut self, e: &ParseError) {
        let c = &mut self.counts[e.kind.index()];
        *c = c.saturating_add(1);
    }

    /// All skipped frames.
    pub fn total(&self) -> u64 {
        self.counts.iter().fold(0, |a, c| a.saturating_add(*c))
    }

    /// `(reason, count)` for every reason with a nonzero count.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        REASONS
            .iter()
            .zip(self.counts.iter())
            .filter(|(_, c)| **c > 0)
            .map(|(r, c)| (*r, *c))
    }

    /// Adds another set of counts to this one.
    pub fn merge(&mut self, other: &ParseStats) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a = a.saturating_add(*b);
        }
    }
}
