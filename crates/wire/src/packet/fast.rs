//! A TCP fast path for consumers that need only addresses, ports and flags (DarkFlow).
//!
//! [`tcp_fast`] decodes the common case, untagged Ethernet with IPv4 or with IPv6 and no
//! extension header, straight into a [`TcpHead`], with the same length checks as [`parse`]
//! but without building a [`Packet`]. Anything it does not handle completely (VLAN tags, other
//! link types, IPv6 extension headers, and every frame that [`parse`] would reject) is
//! [`Fast::Slow`]: the caller then runs [`parse`], which decides and counts the error. So for
//! every input, [`Fast::Tcp`] carries exactly what [`parse`] would put in its `L4::Tcp`, and
//! [`Fast::NotTcp`] means that [`parse`] succeeds without a TCP header (another protocol, a
//! non-first fragment, or a TCP header that was not captured). It never panics.
//!
//! On a gateway-like capture the full parser was a fifth of the offline DarkFlow run's
//! instructions (docs/benchmarks.md section 6).
//!
//! [`parse`]: super::parse
//! [`Packet`]: super::Packet

use super::{ETHERTYPE_IPV4, ETHERTYPE_IPV6, TcpFlags};
use crate::link::LinkType;

/// Ethernet II header length without tags.
const ETH_LEN: usize = 14;

/// What a DarkFlow-like consumer needs of one TCP segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpHead<A> {
    /// Source address (IPv4 as a big-endian `u32`, IPv6 as its octets).
    pub src: A,
    /// Destination address.
    pub dst: A,
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// The flags, as [`super::Tcp::flags`].
    pub flags: TcpFlags,
}

/// The result of [`tcp_fast`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fast {
    /// A TCP segment over IPv4.
    V4(TcpHead<u32>),
    /// A TCP segment over IPv6.
    V6(TcpHead<[u8; 16]>),
    /// The frame parses, but carries no TCP header.
    NotTcp,
    /// Not decided here: run the full parser.
    Slow,
}

/// Decodes the TCP segment of a frame on the fast path; see the module docs.
///
/// Always inlined: as a call, building and matching the returned enum in memory cost as much
/// as the decoding (callgrind).
#[inline(always)]
pub fn tcp_fast(link: LinkType, data: &[u8]) -> Fast {
    if link != LinkType::Ethernet {
        return Fast::Slow;
    }
    let Some((eth, ip)) = data.split_first_chunk::<ETH_LEN>() else {
        return Fast::Slow;
    };
    match u16::from_be_bytes([eth[12], eth[13]]) {
        ETHERTYPE_IPV4 => v4(ip),
        ETHERTYPE_IPV6 => v6(ip),
        _ => Fast::Slow,
    }
}

/// IPv4 (RFC 791 section 3.1), with the checks of the full parser.
#[inline(always)]
fn v4(b: &[u8]) -> Fast {
    let Some(fixed) = b.first_chunk::<20>() else {
        return Fast::Slow;
    };
    let ihl = fixed[0] & 0x0f;
    if fixed[0] >> 4 != 4 || ihl < 5 {
        return Fast::Slow;
    }
    let hlen = usize::from(ihl) * 4;
    let total_len = usize::from(u16::from_be_bytes([fixed[2], fixed[3]]));
    let Some(rest) = b.get(hlen..) else {
        return Fast::Slow;
    };
    if total_len < hlen {
        return Fast::Slow;
    }
    // A non-first fragment has no L4 header.
    if u16::from_be_bytes([fixed[6], fixed[7]]) & 0x1fff != 0 || fixed[9] != 6 {
        return Fast::NotTcp;
    }
    // The segment is cut at the total length (Ethernet padding) and at what was captured.
    let seg = rest.get(..total_len - hlen).unwrap_or(rest);
    match tcp(seg) {
        Some((src_port, dst_port, flags)) => Fast::V4(TcpHead {
            src: u32::from_be_bytes([fixed[12], fixed[13], fixed[14], fixed[15]]),
            dst: u32::from_be_bytes([fixed[16], fixed[17], fixed[18], fixed[19]]),
            src_port,
            dst_port,
            flags,
        }),
        None => Fast::NotTcp,
    }
}

/// IPv6 (RFC 8200 section 3) whose next header is the upper layer itself.
#[inline(always)]
fn v6(b: &[u8]) -> Fast {
    let Some((fixed, rest)) = b.split_first_chunk::<40>() else {
        return Fast::Slow;
    };
    if fixed[0] >> 4 != 6 {
        return Fast::Slow;
    }
    match fixed[6] {
        6 => {}
        // Extension headers (the set the full parser walks): leave them to it.
        0 | 43 | 44 | 51 | 60 | 135 | 139 | 140 => return Fast::Slow,
        _ => return Fast::NotTcp,
    }
    let payload_len = usize::from(u16::from_be_bytes([fixed[4], fixed[5]]));
    let seg = rest.get(..payload_len).unwrap_or(rest);
    match tcp(seg) {
        Some((src_port, dst_port, flags)) => {
            let mut src = [0u8; 16];
            src.copy_from_slice(&fixed[8..24]);
            let mut dst = [0u8; 16];
            dst.copy_from_slice(&fixed[24..40]);
            Fast::V6(TcpHead {
                src,
                dst,
                src_port,
                dst_port,
                flags,
            })
        }
        None => Fast::NotTcp,
    }
}

/// Ports and flags of a TCP header (RFC 9293 section 3.1), if its 20 fixed bytes were captured.
#[inline(always)]
fn tcp(seg: &[u8]) -> Option<(u16, u16, TcpFlags)> {
    let h = seg.first_chunk::<20>()?;
    Some((
        u16::from_be_bytes([h[0], h[1]]),
        u16::from_be_bytes([h[2], h[3]]),
        TcpFlags(u16::from_be_bytes([h[12] & 0x01, h[13]])),
    ))
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use proptest::prelude::{any, prop, prop_assert, prop_assert_eq, proptest};
    use proptest::test_runner::TestCaseError;

    use super::{Fast, TcpHead, tcp_fast};
    use crate::build;
    use crate::link::LinkType;
    use crate::packet::{Ip, L4, TcpFlags, parse};

    /// The fast path decides only what the full parser decides the same way.
    fn agrees(link: LinkType, data: &[u8]) -> Result<Fast, TestCaseError> {
        let fast = tcp_fast(link, data);
        let full = parse(link, data);
        match fast {
            Fast::Slow => {}
            Fast::NotTcp => {
                let p = full.map_err(|e| TestCaseError::fail(format!("NotTcp but {e}")))?;
                prop_assert!(!matches!(p.l4, L4::Tcp(_)), "{:?}", p.l4);
            }
            Fast::V4(h) => {
                let p = full.map_err(|e| TestCaseError::fail(format!("V4 but {e}")))?;
                let (Ip::V4(ip), L4::Tcp(t)) = (p.ip, p.l4) else {
                    return Err(TestCaseError::fail(format!("V4 but {p:?}")));
                };
                prop_assert_eq!(
                    h,
                    TcpHead {
                        src: u32::from(ip.src),
                        dst: u32::from(ip.dst),
                        src_port: t.src_port,
                        dst_port: t.dst_port,
                        flags: t.flags,
                    }
                );
            }
            Fast::V6(h) => {
                let p = full.map_err(|e| TestCaseError::fail(format!("V6 but {e}")))?;
                let (Ip::V6(ip), L4::Tcp(t)) = (p.ip, p.l4) else {
                    return Err(TestCaseError::fail(format!("V6 but {p:?}")));
                };
                prop_assert_eq!(
                    h,
                    TcpHead {
                        src: ip.src.octets(),
                        dst: ip.dst.octets(),
                        src_port: t.src_port,
                        dst_port: t.dst_port,
                        flags: t.flags,
                    }
                );
            }
        }
        Ok(fast)
    }

    /// A valid frame of one of four kinds.
    fn frame(kind: u8, a: [u8; 16], b: [u8; 16], ports: (u16, u16), flags: u16) -> Vec<u8> {
        let (a4, b4) = (
            Ipv4Addr::new(a[0], a[1], a[2], a[3]),
            Ipv4Addr::new(b[0], b[1], b[2], b[3]),
        );
        let (a6, b6) = (Ipv6Addr::from(a), Ipv6Addr::from(b));
        let (sp, dp, f) = (ports.0, ports.1, TcpFlags(flags));
        match kind % 4 {
            0 => build::ipv4_tcp_frame(a4, b4, sp, dp, 1, 2, f, 3, b"data"),
            1 => build::ipv6_tcp_frame(a6, b6, sp, dp, 1, 2, f, b"data"),
            2 => build::ipv4_udp_frame(a4, b4, sp, dp, 3, b"data"),
            _ => build::ipv6_udp_frame(a6, b6, sp, dp, b"data"),
        }
    }

    #[test]
    fn plain_segments_take_the_fast_path() {
        let (a, b) = ([10; 16], [20; 16]);
        let v4 = frame(0, a, b, (40000, 443), 0x002);
        assert_eq!(
            tcp_fast(LinkType::Ethernet, &v4),
            Fast::V4(TcpHead {
                src: 0x0a0a_0a0a,
                dst: 0x1414_1414,
                src_port: 40000,
                dst_port: 443,
                flags: TcpFlags::SYN,
            })
        );
        assert!(matches!(
            tcp_fast(LinkType::Ethernet, &frame(1, a, b, (1, 2), 0x012)),
            Fast::V6(TcpHead {
                src_port: 1,
                dst_port: 2,
                ..
            })
        ));
        assert_eq!(
            tcp_fast(LinkType::Ethernet, &frame(2, a, b, (1, 2), 0)),
            Fast::NotTcp
        );
        // Tagged frames and other links go to the full parser.
        assert_eq!(
            tcp_fast(LinkType::Ethernet, &build::vlan_tag(&v4, 5)),
            Fast::Slow
        );
        assert_eq!(tcp_fast(LinkType::Raw, &v4[14..]), Fast::Slow);
        assert_eq!(tcp_fast(LinkType::Ethernet, &v4[..13]), Fast::Slow);
    }

    const LINKS: [LinkType; 3] = [LinkType::Ethernet, LinkType::Raw, LinkType::LinuxSll];

    proptest! {
        #[test]
        fn agrees_on_arbitrary_bytes(
            link in 0usize..LINKS.len(),
            mut bytes in prop::collection::vec(any::<u8>(), 0..120),
            ethertype in prop::sample::select(vec![0x0800u16, 0x86dd, 0x8100, 0x0806]),
            version in prop::sample::select(vec![0x45u8, 0x46, 0x4f, 0x60, 0x44, 0x30]),
        ) {
            // Steer half of the inputs past the link and version checks.
            if bytes.len() > 14 && bytes[0] & 1 == 0 {
                bytes[12..14].copy_from_slice(&ethertype.to_be_bytes());
                bytes[14] = version;
            }
            agrees(LINKS[link], &bytes)?;
        }

        #[test]
        fn agrees_on_mutated_frames(
            kind in any::<u8>(), a in any::<[u8; 16]>(), b in any::<[u8; 16]>(),
            ports in any::<(u16, u16)>(), flags in 0u16..0x200,
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
            cut in any::<prop::sample::Index>(), do_cut in any::<bool>(),
        ) {
            let mut f = frame(kind, a, b, ports, flags);
            let untouched = agrees(LinkType::Ethernet, &f)?;
            prop_assert!(!matches!(untouched, Fast::Slow));
            for (at, byte) in &edits {
                let i = at.index(f.len());
                f[i] = *byte;
            }
            if do_cut {
                f.truncate(cut.index(f.len() + 1));
            }
            agrees(LinkType::Ethernet, &f)?;
        }
    }
}
