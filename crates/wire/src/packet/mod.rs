//! One frame parsed from its link layer down to the L4 header: zero-copy, no allocation.
//!
//! [`parse`] is the digest pipeline's hot path. It is strict about what a digest needs (the
//! whole IP header must be captured and self-consistent) and lax about the rest: a payload cut
//! by the snaplen is fine ([`Ip::payload_truncated`]), and an L4 header that was not captured
//! is reported as [`L4::Truncated`] rather than as an error. It never panics on any bytes.
//!
//! Link layers: Ethernet with up to [`MAX_VLAN_TAGS`] 802.1Q (0x8100), 802.1ad (0x88a8) or
//! 0x9100 tags; Linux cooked v1 and v2; raw IP; BSD/OpenBSD loopback (address family in either
//! byte order). IPv6 extension headers are walked (RFC 8200 section 4, RFC 4302 for AH) up to
//! the upper-layer header.

mod error;
mod fast;
mod ip;

#[cfg(test)]
mod tests;

pub use error::{Layer, ParseError, ParseErrorKind, ParseStats};
pub use fast::{Fast, TcpHead, tcp_fast};

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::link::LinkType;

/// Most VLAN tags accepted in one Ethernet frame (QinQ and a little more).
pub const MAX_VLAN_TAGS: u8 = 4;
/// Most IPv6 extension headers walked before giving up.
pub const MAX_EXT_HEADERS: usize = 16;

/// Ethertype of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// Ethertype of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86DD;

/// A parsed frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<'a> {
    /// The IP header and payload.
    pub ip: Ip<'a>,
    /// The L4 header, as far as it was captured.
    pub l4: L4,
    /// Number of 802.1Q/802.1ad tags stripped.
    pub vlans: u8,
    /// Offset of the IP header in the frame.
    pub ip_offset: usize,
}

/// An IPv4 or IPv6 packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ip<'a> {
    /// IPv4.
    V4(Ipv4<'a>),
    /// IPv6.
    V6(Ipv6<'a>),
}

/// A parsed IPv4 header and its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4<'a> {
    /// The header, IHL*4 bytes including options.
    pub header: &'a [u8],
    /// The bytes after the header, cut at `total_len` (dropping Ethernet padding) and at what
    /// was captured.
    pub payload: &'a [u8],
    /// The total-length field.
    pub total_len: u16,
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// The protocol field.
    pub protocol: u8,
    /// Time to live.
    pub ttl: u8,
    /// Identification.
    pub id: u16,
    /// The DF flag.
    pub dont_fragment: bool,
    /// The MF flag.
    pub more_fragments: bool,
    /// Fragment offset in 8-byte units.
    pub fragment_offset: u16,
}

impl Ipv4<'_> {
    /// The capture holds fewer payload bytes than `total_len` promises.
    pub fn payload_truncated(&self) -> bool {
        self.payload.len() < usize::from(self.total_len).saturating_sub(self.header.len())
    }

    /// This packet is a fragment (MF set or a nonzero offset).
    pub fn is_fragment(&self) -> bool {
        self.more_fragments || self.fragment_offset != 0
    }
}

/// A parsed IPv6 header, its payload and the result of walking its extension headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv6<'a> {
    /// The fixed 40-byte header.
    pub header: &'a [u8],
    /// The bytes after the fixed header, cut at `payload_len` and at what was captured.
    pub payload: &'a [u8],
    /// The payload-length field.
    pub payload_len: u16,
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
    /// Hop limit.
    pub hop_limit: u8,
    /// The next-header field of the fixed header.
    pub next_header: u8,
    /// The protocol after hop-by-hop (0), routing (43), fragment (44), destination options
    /// (60), AH (51), mobility (135), HIP (139) and shim6 (140) headers; the walk stops at ESP
    /// (50), no-next-header (59) and anything else. If the capture ends inside an extension
    /// header, this is that header's type.
    pub upper_protocol: u8,
    /// Offset of the upper-layer header inside `payload`.
    pub upper_offset: usize,
    /// The fragment header, if any.
    pub fragment: Option<Ipv6Fragment>,
}

/// The fields of an IPv6 fragment header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv6Fragment {
    /// Fragment offset in 8-byte units.
    pub offset: u16,
    /// The M (more fragments) flag.
    pub more: bool,
    /// Identification.
    pub id: u32,
}

impl Ipv6<'_> {
    /// The capture holds fewer payload bytes than `payload_len` promises.
    pub fn payload_truncated(&self) -> bool {
        self.payload.len() < usize::from(self.payload_len)
    }
}

impl<'a> Ip<'a> {
    /// The IP header (IPv4 with options; IPv6 the fixed 40 bytes).
    pub fn header(&self) -> &'a [u8] {
        match self {
            Ip::V4(h) => h.header,
            Ip::V6(h) => h.header,
        }
    }

    /// The bytes after the IP header, cut at the IP length and the capture.
    pub fn payload(&self) -> &'a [u8] {
        match self {
            Ip::V4(h) => h.payload,
            Ip::V6(h) => h.payload,
        }
    }

    /// Source address.
    pub fn src(&self) -> IpAddr {
        match self {
            Ip::V4(h) => IpAddr::V4(h.src),
            Ip::V6(h) => IpAddr::V6(h.src),
        }
    }

    /// Destination address.
    pub fn dst(&self) -> IpAddr {
        match self {
            Ip::V4(h) => IpAddr::V4(h.dst),
            Ip::V6(h) => IpAddr::V6(h.dst),
        }
    }

    /// The upper-layer protocol (IPv6: after the extension headers).
    pub fn protocol(&self) -> u8 {
        match self {
            Ip::V4(h) => h.protocol,
            Ip::V6(h) => h.upper_protocol,
        }
    }

    /// The capture holds fewer payload bytes than the IP length promises.
    pub fn payload_truncated(&self) -> bool {
        match self {
            Ip::V4(h) => h.payload_truncated(),
            Ip::V6(h) => h.payload_truncated(),
        }
    }
}

/// The transport header, as far as it was captured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum L4 {
    /// TCP.
    Tcp(Tcp),
    /// UDP.
    Udp(Udp),
    /// ICMP (IPv4).
    Icmp {
        /// Type.
        ty: u8,
        /// Code.
        code: u8,
    },
    /// ICMPv6.
    Icmpv6 {
        /// Type.
        ty: u8,
        /// Code.
        code: u8,
    },
    /// A non-first fragment: there is no L4 header here.
    Fragment,
    /// The L4 header of this protocol was not fully captured.
    Truncated {
        /// The upper-layer protocol number.
        protocol: u8,
    },
    /// Another protocol (the number is the upper-layer protocol).
    Other(u8),
}

/// A parsed TCP header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tcp {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number.
    pub ack: u32,
    /// Flags (9 bits).
    pub flags: TcpFlags,
    /// Window.
    pub window: u16,
    /// Header length in bytes (data offset * 4, as found: may be below 20 in a bad header).
    pub header_len: u8,
    /// Payload length by the IP lengths, not by what was captured.
    pub payload_len: u32,
}

/// TCP flag bits (the low 9 bits of bytes 12-13 of the header).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u16);

impl TcpFlags {
    /// FIN.
    pub const FIN: TcpFlags = TcpFlags(0x001);
    /// SYN.
    pub const SYN: TcpFlags = TcpFlags(0x002);
    /// RST.
    pub const RST: TcpFlags = TcpFlags(0x004);
    /// PSH.
    pub const PSH: TcpFlags = TcpFlags(0x008);
    /// ACK.
    pub const ACK: TcpFlags = TcpFlags(0x010);
    /// URG.
    pub const URG: TcpFlags = TcpFlags(0x020);
    /// ECE.
    pub const ECE: TcpFlags = TcpFlags(0x040);
    /// CWR.
    pub const CWR: TcpFlags = TcpFlags(0x080);
    /// NS (RFC 3540, historic).
    pub const NS: TcpFlags = TcpFlags(0x100);

    /// All bits of `f` are set.
    pub fn contains(self, f: TcpFlags) -> bool {
        self.0 & f.0 == f.0
    }

    /// SYN without ACK, RST or FIN (a connection attempt; ECN bits are ignored).
    pub fn is_syn_only(self) -> bool {
        self.0 & (Self::SYN.0 | Self::ACK.0 | Self::RST.0 | Self::FIN.0) == Self::SYN.0
    }

    /// SYN and ACK, without RST or FIN.
    pub fn is_syn_ack(self) -> bool {
        self.0 & (Self::SYN.0 | Self::ACK.0 | Self::RST.0 | Self::FIN.0)
            == Self::SYN.0 | Self::ACK.0
    }

    /// RST set.
    pub fn is_rst(self) -> bool {
        self.contains(Self::RST)
    }
}

impl std::ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

/// A parsed UDP header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Udp {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// The length field (header and data).
    pub length: u16,
}

/// Parses a frame of the given link type down to its L4 header.
#[inline]
pub fn parse(link: LinkType, data: &[u8]) -> Result<Packet<'_>, ParseError> {
    match link {
        LinkType::Ethernet => ethernet(data),
        LinkType::Raw => ip::any(data, 0, 0),
        LinkType::Ipv4 => ip::v4(data, 0, 0),
        LinkType::Ipv6 => ip::v6(data, 0, 0),
        LinkType::LinuxSll => by_ethertype(data, 16, be16(data, 14), 0, 16),
        LinkType::LinuxSll2 => by_ethertype(data, 20, be16(data, 0), 0, 20),
        LinkType::Null | LinkType::Loop => loopback(data),
        LinkType::Other(n) => Err(ParseError {
            layer: Layer::Link,
            offset: 0,
            kind: ParseErrorKind::UnsupportedLink(n),
        }),
    }
}

/// Parses starting at an IP header (used when the link layer is already stripped).
#[inline]
pub fn parse_ip(data: &[u8]) -> Result<Packet<'_>, ParseError> {
    ip::any(data, 0, 0)
}

/// Ethernet II with any stack of VLAN tags.
#[inline]
fn ethernet(data: &[u8]) -> Result<Packet<'_>, ParseError> {
    let mut off = 12;
    let mut vlans = 0u8;
    loop {
        let Some(et) = be16(data, off) else {
            let (layer, start) = if vlans == 0 {
                (Layer::Link, 0)
            } else {
                (Layer::Vlan, off - 2)
            };
            return Err(truncated(layer, start, off + 2, data.len()));
        };
        match et {
            0x8100 | 0x88a8 | 0x9100 => {
                if vlans == MAX_VLAN_TAGS {
                    return Err(ParseError {
                        layer: Layer::Vlan,
                        offset: off,
                        kind: ParseErrorKind::TooManyVlanTags,
                    });
                }
                vlans += 1;
                off += 4;
            }
            _ => return by_ethertype(data, off + 2, Some(et), vlans, 14),
        }
    }
}

/// Dispatches on an ethertype; `hdr_len` is the link header length to report if missing.
#[inline]
fn by_ethertype(
    data: &[u8],
    ip_off: usize,
    ethertype: Option<u16>,
    vlans: u8,
    hdr_len: usize,
) -> Result<Packet<'_>, ParseError> {
    match ethertype {
        Some(ETHERTYPE_IPV4) => ip::v4(data, ip_off, vlans),
        Some(ETHERTYPE_IPV6) => ip::v6(data, ip_off, vlans),
        _ if data.len() < hdr_len => Err(truncated(Layer::Link, 0, hdr_len, data.len())),
        Some(ethertype) => Err(ParseError {
            layer: Layer::Link,
            offset: ip_off.saturating_sub(2),
            kind: ParseErrorKind::NotIp { ethertype },
        }),
        None => Err(truncated(Layer::Link, 0, hdr_len, data.len())),
    }
}

/// BSD (host order) and OpenBSD (network order) loopback: accept the family in either order.
fn loopback(data: &[u8]) -> Result<Packet<'_>, ParseError> {
    let Some(&[a, b, c, d]) = data.get(..4) else {
        return Err(truncated(Layer::Link, 0, 4, data.len()));
    };
    let le = u32::from_le_bytes([a, b, c, d]);
    let be = u32::from_be_bytes([a, b, c, d]);
    // AF_INET is 2 everywhere; AF_INET6 is 10 (Linux), 24 (NetBSD/OpenBSD), 28 (FreeBSD),
    // 30 (macOS).
    let is_v6 = |f: u32| matches!(f, 10 | 24 | 28 | 30);
    if le == 2 || be == 2 {
        ip::v4(data, 4, 0)
    } else if is_v6(le) || is_v6(be) {
        ip::v6(data, 4, 0)
    } else {
        Err(ParseError {
            layer: Layer::Link,
            offset: 0,
            kind: ParseErrorKind::UnknownFamily(le),
        })
    }
}

/// A [`ParseErrorKind::Truncated`] error for a header at `offset` needing `needed` bytes of a
/// frame of `len` bytes (needed and available counted from `offset`).
#[inline]
fn truncated(layer: Layer, offset: usize, end: usize, len: usize) -> ParseError {
    ParseError {
        layer,
        offset,
        kind: ParseErrorKind::Truncated {
            needed: end.saturating_sub(offset),
            available: len.saturating_sub(offset),
        },
    }
}

/// Big-endian `u16` at `at`, if present.
#[inline]
fn be16(b: &[u8], at: usize) -> Option<u16> {
    match b.get(at..at.checked_add(2)?) {
        Some(&[x, y]) => Some(u16::from_be_bytes([x, y])),
        _ => None,
    }
}
