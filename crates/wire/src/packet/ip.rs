//! IPv4, IPv6 (with extension headers) and the L4 headers on top.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::{
    Ip, Ipv4, Ipv6, Ipv6Fragment, L4, Layer, MAX_EXT_HEADERS, Packet, ParseError, ParseErrorKind,
    Tcp, TcpFlags, Udp, truncated,
};

/// IP of either version at `off`, chosen by the version nibble.
#[inline]
pub(super) fn any(data: &[u8], off: usize, vlans: u8) -> Result<Packet<'_>, ParseError> {
    match data.get(off).map(|b| b >> 4) {
        Some(4) => v4(data, off, vlans),
        Some(6) => v6(data, off, vlans),
        Some(v) => Err(ParseError {
            layer: Layer::Ip,
            offset: off,
            kind: ParseErrorKind::BadVersion(v),
        }),
        None => Err(truncated(Layer::Ip, off, off + 1, data.len())),
    }
}

/// IPv4 at `off` (RFC 791 section 3.1).
#[inline]
pub(super) fn v4(data: &[u8], off: usize, vlans: u8) -> Result<Packet<'_>, ParseError> {
    let err = |kind| ParseError {
        layer: Layer::Ipv4,
        offset: off,
        kind,
    };
    let b = data.get(off..).unwrap_or_default();
    let Some(fixed) = b.first_chunk::<20>() else {
        return Err(truncated(Layer::Ipv4, off, off + 20, data.len()));
    };
    let version = fixed[0] >> 4;
    if version != 4 {
        return Err(err(ParseErrorKind::BadVersion(version)));
    }
    let ihl = fixed[0] & 0x0f;
    if ihl < 5 {
        return Err(err(ParseErrorKind::BadIhl(ihl)));
    }
    let hlen = usize::from(ihl) * 4;
    let Some((header, rest)) = b.split_at_checked(hlen) else {
        return Err(truncated(Layer::Ipv4, off, off + hlen, data.len()));
    };
    let total_len = u16::from_be_bytes([fixed[2], fixed[3]]);
    if usize::from(total_len) < hlen {
        return Err(err(ParseErrorKind::BadTotalLength {
            total: total_len,
            header: hlen as u16,
        }));
    }
    let ip_payload_len = usize::from(total_len) - hlen;
    let payload = rest.get(..ip_payload_len).unwrap_or(rest);
    let frag = u16::from_be_bytes([fixed[6], fixed[7]]);
    let ipv4 = Ipv4 {
        header,
        payload,
        total_len,
        src: Ipv4Addr::new(fixed[12], fixed[13], fixed[14], fixed[15]),
        dst: Ipv4Addr::new(fixed[16], fixed[17], fixed[18], fixed[19]),
        protocol: fixed[9],
        ttl: fixed[8],
        id: u16::from_be_bytes([fixed[4], fixed[5]]),
        dont_fragment: frag & 0x4000 != 0,
        more_fragments: frag & 0x2000 != 0,
        fragment_offset: frag & 0x1fff,
    };
    let l4 = if ipv4.fragment_offset != 0 {
        L4::Fragment
    } else {
        l4(ipv4.protocol, payload, ip_payload_len as u32, false)
    };
    Ok(Packet {
        ip: Ip::V4(ipv4),
        l4,
        vlans,
        ip_offset: off,
    })
}

/// IPv6 at `off` (RFC 8200 section 3), walking the extension headers (section 4).
#[inline]
pub(super) fn v6(data: &[u8], off: usize, vlans: u8) -> Result<Packet<'_>, ParseError> {
    let b = data.get(off..).unwrap_or_default();
    let Some((fixed, rest)) = b.split_first_chunk::<40>() else {
        return Err(truncated(Layer::Ipv6, off, off + 40, data.len()));
    };
    let version = fixed[0] >> 4;
    if version != 6 {
        return Err(ParseError {
            layer: Layer::Ipv6,
            offset: off,
            kind: ParseErrorKind::BadVersion(version),
        });
    }
    let payload_len = u16::from_be_bytes([fixed[4], fixed[5]]);
    let payload = rest.get(..usize::from(payload_len)).unwrap_or(rest);
    let cut = payload.len() < usize::from(payload_len);
    let next_header = fixed[6];
    let mut src = [0u8; 16];
    src.copy_from_slice(&fixed[8..24]);
    let mut dst = [0u8; 16];
    dst.copy_from_slice(&fixed[24..40]);

    let walk = walk_ext(payload, next_header, cut, off + 40)?;
    let l4 = match walk.fragment {
        Some(f) if f.offset != 0 => L4::Fragment,
        _ if walk.stopped_short => L4::Truncated {
            protocol: walk.upper,
        },
        _ => l4(
            walk.upper,
            payload.get(walk.upper_offset..).unwrap_or_default(),
            u32::from(payload_len).saturating_sub(walk.upper_offset as u32),
            true,
        ),
    };
    let ipv6 = Ipv6 {
        header: fixed,
        payload,
        payload_len,
        src: Ipv6Addr::from(src),
        dst: Ipv6Addr::from(dst),
        hop_limit: fixed[7],
        next_header,
        upper_protocol: walk.upper,
        upper_offset: walk.upper_offset,
        fragment: walk.fragment,
    };
    Ok(Packet {
        ip: Ip::V6(ipv6),
        l4,
        vlans,
        ip_offset: off,
    })
}

/// Where the extension-header walk ended.
struct Walk {
    upper: u8,
    upper_offset: usize,
    fragment: Option<Ipv6Fragment>,
    /// The capture ended inside an extension header.
    stopped_short: bool,
}

/// Walks IPv6 extension headers in `payload`; `cut` says the capture ended before
/// `payload_len`, `base` is the payload's offset in the frame (for errors).
#[inline]
fn walk_ext(payload: &[u8], first: u8, cut: bool, base: usize) -> Result<Walk, ParseError> {
    let mut nh = first;
    let mut pos = 0usize;
    let mut fragment = None;
    let mut count = 0usize;
    loop {
        let len = match nh {
            // Hop-by-hop, routing, destination options, mobility, HIP, shim6: length in
            // 8-octet units, not counting the first 8 (RFC 8200 4.3-4.6, RFC 6275, 7401, 5533).
            0 | 43 | 60 | 135 | 139 | 140 => match payload.get(pos + 1) {
                Some(l) => (usize::from(*l) + 1) * 8,
                None => 2,
            },
            // Fragment header: always 8 bytes (RFC 8200 4.5).
            44 => 8,
            // AH: length in 4-octet units, minus 2 (RFC 4302 section 2.2).
            51 => match payload.get(pos + 1) {
                Some(l) => (usize::from(*l) + 2) * 4,
                None => 2,
            },
            _ => {
                return Ok(Walk {
                    upper: nh,
                    upper_offset: pos,
                    fragment,
                    stopped_short: false,
                });
            }
        };
        count += 1;
        if count > MAX_EXT_HEADERS {
            return Err(ParseError {
                layer: Layer::Ipv6Ext,
                offset: base + pos,
                kind: ParseErrorKind::TooManyExtHeaders,
            });
        }
        let Some(h) = payload.get(pos..pos + len) else {
            if cut {
                // The snaplen ended the capture inside this header: keep the packet.
                return Ok(Walk {
                    upper: nh,
                    upper_offset: pos,
                    fragment,
                    stopped_short: true,
                });
            }
            return Err(truncated(
                Layer::Ipv6Ext,
                base + pos,
                base + pos + len,
                base + payload.len(),
            ));
        };
        if nh == 44 {
            let v = u16::from_be_bytes([h[2], h[3]]);
            fragment = Some(Ipv6Fragment {
                offset: v >> 3,
                more: v & 1 != 0,
                id: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
            });
        }
        nh = h[0];
        pos += len;
    }
}

/// The L4 header of `protocol` in `seg` (captured bytes); `ip_len` is its length by the IP
/// header, `v6` selects ICMPv6 over ICMP.
#[inline]
fn l4(protocol: u8, seg: &[u8], ip_len: u32, v6: bool) -> L4 {
    match protocol {
        6 => match seg.first_chunk::<20>() {
            Some(h) => {
                let header_len = (h[12] >> 4) * 4;
                L4::Tcp(Tcp {
                    src_port: u16::from_be_bytes([h[0], h[1]]),
                    dst_port: u16::from_be_bytes([h[2], h[3]]),
                    seq: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
                    ack: u32::from_be_bytes([h[8], h[9], h[10], h[11]]),
                    flags: TcpFlags(u16::from_be_bytes([h[12] & 0x01, h[13]])),
                    window: u16::from_be_bytes([h[14], h[15]]),
                    header_len,
                    payload_len: ip_len.saturating_sub(u32::from(header_len)),
                })
            }
            None => L4::Truncated { protocol },
        },
        17 => match seg.first_chunk::<8>() {
            Some(h) => L4::Udp(Udp {
                src_port: u16::from_be_bytes([h[0], h[1]]),
                dst_port: u16::from_be_bytes([h[2], h[3]]),
                length: u16::from_be_bytes([h[4], h[5]]),
            }),
            None => L4::Truncated { protocol },
        },
        // Type, code and checksum are common to every ICMP message (RFC 792, RFC 4443 2.1).
        1 if !v6 => match seg.first_chunk::<4>() {
            Some(h) => L4::Icmp {
                ty: h[0],
                code: h[1],
            },
            None => L4::Truncated { protocol },
        },
        58 if v6 => match seg.first_chunk::<4>() {
            Some(h) => L4::Icmpv6 {
                ty: h[0],
                code: h[1],
            },
            None => L4::Truncated { protocol },
        },
        other => L4::Other(other),
    }
}
