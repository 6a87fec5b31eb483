//! Packet construction with correct checksums: the emit half of [`crate::packet`].
//!
//! For tests, benchmarks and lab traffic (not a hot path: each function returns a new `Vec`).
//! Each layer takes its payload as bytes, so layers nest:
//! `ethernet(.., ETHERTYPE_IPV4, &ipv4(.., &tcp(..)))`.
//!
//! Lengths that do not fit their fields (an IPv4 packet over 65535 bytes) are written
//! truncated to the field width; callers building normal packets never meet this.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::packet::{ETHERTYPE_IPV4, ETHERTYPE_IPV6, TcpFlags};

/// The Internet checksum (RFC 1071) of `data`: the ones' complement of the ones' complement
/// sum of its 16-bit big-endian words (an odd last byte is padded with zero).
pub fn internet_checksum(data: &[u8]) -> u16 {
    !fold(sum(0, data))
}

/// Adds `data` as big-endian 16-bit words to a 32-bit accumulator (carries folded later).
fn sum(mut acc: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u64::from(u16::from_be_bytes([*last, 0]));
    }
    acc
}

/// The TCP or UDP checksum of `segment` (header and payload, its checksum field counted as
/// zero) between `src` and `dst`: for re-sending a captured segment whose checksum was left
/// to offload.
pub fn l4_checksum(
    src: IpAddr,
    dst: IpAddr,
    protocol: u8,
    segment: &[u8],
    checksum_at: usize,
) -> u16 {
    let mut acc = pseudo_header(src, dst, protocol, segment.len());
    acc = sum(acc, &segment[..checksum_at.min(segment.len())]);
    if let Some(rest) = segment.get(checksum_at + 2..) {
        // Keep 16-bit alignment: `checksum_at` is even in TCP and UDP headers.
        acc = sum(acc, rest);
    }
    !fold(acc)
}

/// Folds the carries of a ones' complement sum into 16 bits.
fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The sum of the TCP/UDP pseudo header (RFC 793 3.1, RFC 8200 8.1). Mixed address families
/// use the IPv6 form with the IPv4 addresses mapped.
fn pseudo_header(src: IpAddr, dst: IpAddr, protocol: u8, len: usize) -> u64 {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let acc = sum(sum(0, &s.octets()), &d.octets());
            acc + u64::from(protocol) + (len as u64 & 0xffff)
        }
        _ => {
            let s = v6_of(src);
            let d = v6_of(dst);
            let acc = sum(sum(0, &s.octets()), &d.octets());
            acc + u64::from(protocol) + sum(0, &(len as u32).to_be_bytes())
        }
    }
}

fn v6_of(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// An Ethernet II frame (no FCS).
pub fn ethernet(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(14 + payload.len());
    v.extend_from_slice(&dst);
    v.extend_from_slice(&src);
    v.extend_from_slice(&ethertype.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// An 802.1Q VLAN tag (TPID 0x8100, priority 0) inserted after the MAC addresses of an
/// Ethernet frame built by [`ethernet`].
pub fn vlan_tag(frame: &[u8], vid: u16) -> Vec<u8> {
    let split = frame.len().min(12);
    let mut v = Vec::with_capacity(frame.len() + 4);
    v.extend_from_slice(&frame[..split]);
    v.extend_from_slice(&0x8100u16.to_be_bytes());
    v.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
    v.extend_from_slice(&frame[split..]);
    v
}

/// An IPv4 packet with a 20-byte header (DF clear, no options) and a correct header checksum.
pub fn ipv4(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    ttl: u8,
    tos: u8,
    id: u16,
    payload: &[u8],
) -> Vec<u8> {
    ipv4_with_flags(src, dst, protocol, ttl, tos, id, false, payload)
}

/// [`ipv4`] with the Don't Fragment bit set as `df` says (what most stacks send with TCP).
#[allow(
    clippy::too_many_arguments,
    reason = "mirrors the header's fields one to one"
)]
pub fn ipv4_with_flags(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    ttl: u8,
    tos: u8,
    id: u16,
    df: bool,
    payload: &[u8],
) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let mut v = Vec::with_capacity(20 + payload.len());
    v.extend_from_slice(&[0x45, tos]);
    v.extend_from_slice(&total.to_be_bytes());
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(&[if df { 0x40 } else { 0 }, 0, ttl, protocol, 0, 0]);
    v.extend_from_slice(&src.octets());
    v.extend_from_slice(&dst.octets());
    let ck = internet_checksum(&v);
    v[10..12].copy_from_slice(&ck.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// An IPv6 packet (no extension headers; put them in `payload` and name the first in
/// `next_header`).
pub fn ipv6(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next_header: u8,
    hop_limit: u8,
    traffic_class: u8,
    flow_label: u32,
    payload: &[u8],
) -> Vec<u8> {
    let first = (6u32 << 28) | (u32::from(traffic_class) << 20) | (flow_label & 0x000f_ffff);
    let mut v = Vec::with_capacity(40 + payload.len());
    v.extend_from_slice(&first.to_be_bytes());
    v.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    v.extend_from_slice(&[next_header, hop_limit]);
    v.extend_from_slice(&src.octets());
    v.extend_from_slice(&dst.octets());
    v.extend_from_slice(payload);
    v
}

/// A TCP segment with a 20-byte header (no options) and a checksum over the pseudo header of
/// `src_ip`/`dst_ip`.
#[allow(
    clippy::too_many_arguments,
    reason = "mirrors the header's fields one to one"
)]
pub fn tcp(
    src_ip: IpAddr,
    dst_ip: IpAddr,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    window: u16,
    payload: &[u8],
) -> Vec<u8> {
    tcp_with_options(
        src_ip,
        dst_ip,
        sport,
        dport,
        seq,
        ack,
        flags,
        window,
        &[],
        payload,
    )
}

/// [`tcp`] with TCP options: raw option bytes, padded with zeros (end of option list) to a
/// multiple of 4; at most 40 bytes are kept.
#[allow(
    clippy::too_many_arguments,
    reason = "mirrors the header's fields one to one"
)]
pub fn tcp_with_options(
    src_ip: IpAddr,
    dst_ip: IpAddr,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    window: u16,
    options: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    let options = &options[..options.len().min(40)];
    let opt_len = options.len().div_ceil(4) * 4;
    let mut v = Vec::with_capacity(20 + opt_len + payload.len());
    v.extend_from_slice(&sport.to_be_bytes());
    v.extend_from_slice(&dport.to_be_bytes());
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(&ack.to_be_bytes());
    let off_flags = ((5 + opt_len as u16 / 4) << 12) | (flags.0 & 0x01ff);
    v.extend_from_slice(&off_flags.to_be_bytes());
    v.extend_from_slice(&window.to_be_bytes());
    v.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
    v.extend_from_slice(options);
    v.resize(20 + opt_len, 0);
    v.extend_from_slice(payload);
    let ck = !fold(sum(pseudo_header(src_ip, dst_ip, 6, v.len()), &v));
    v[16..18].copy_from_slice(&ck.to_be_bytes());
    v
}

/// A UDP datagram with a checksum over the pseudo header (0 is sent as 0xffff, RFC 768).
pub fn udp(src_ip: IpAddr, dst_ip: IpAddr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let len = 8 + payload.len();
    let mut v = Vec::with_capacity(len);
    v.extend_from_slice(&sport.to_be_bytes());
    v.extend_from_slice(&dport.to_be_bytes());
    v.extend_from_slice(&(len as u16).to_be_bytes());
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(payload);
    let ck = match !fold(sum(pseudo_header(src_ip, dst_ip, 17, len), &v)) {
        0 => 0xffff,
        c => c,
    };
    v[6..8].copy_from_slice(&ck.to_be_bytes());
    v
}

/// An ICMPv4 echo request (type 8) with a correct checksum.
pub fn icmpv4_echo(id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + payload.len());
    v.extend_from_slice(&[8, 0, 0, 0]);
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(payload);
    let ck = internet_checksum(&v);
    v[2..4].copy_from_slice(&ck.to_be_bytes());
    v
}

/// An ICMPv6 echo request (type 128) from `src` to `dst` with its checksum (which covers the
/// IPv6 pseudo header, RFC 4443 2.3).
pub fn icmpv6_echo(src: Ipv6Addr, dst: Ipv6Addr, id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + payload.len());
    v.extend_from_slice(&[128, 0, 0, 0]);
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(payload);
    let ck = l4_checksum(src.into(), dst.into(), 58, &v, 2);
    v[2..4].copy_from_slice(&ck.to_be_bytes());
    v
}

/// Source MAC used by the convenience frame builders (locally administered).
pub const LAB_SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
/// Destination MAC used by the convenience frame builders (locally administered).
pub const LAB_DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 2];

/// A full Ethernet frame carrying IPv4/TCP (TTL 64, TOS 0, window 65535), lab MACs.
#[allow(
    clippy::too_many_arguments,
    reason = "one argument per varying header field"
)]
pub fn ipv4_tcp_frame(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    id: u16,
    payload: &[u8],
) -> Vec<u8> {
    let seg = tcp(
        src.into(),
        dst.into(),
        sport,
        dport,
        seq,
        ack,
        flags,
        65535,
        payload,
    );
    let ip = ipv4(src, dst, 6, 64, 0, id, &seg);
    ethernet(LAB_DST_MAC, LAB_SRC_MAC, ETHERTYPE_IPV4, &ip)
}

/// A full Ethernet frame carrying IPv4/UDP (TTL 64, TOS 0), lab MACs.
pub fn ipv4_udp_frame(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    id: u16,
    payload: &[u8],
) -> Vec<u8> {
    let dgram = udp(src.into(), dst.into(), sport, dport, payload);
    let ip = ipv4(src, dst, 17, 64, 0, id, &dgram);
    ethernet(LAB_DST_MAC, LAB_SRC_MAC, ETHERTYPE_IPV4, &ip)
}

/// A full Ethernet frame carrying IPv6/UDP (hop limit 64, flow label 0), lab MACs.
pub fn ipv6_udp_frame(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let dgram = udp(src.into(), dst.into(), sport, dport, payload);
    let ip = ipv6(src, dst, 17, 64, 0, 0, &dgram);
    ethernet(LAB_DST_MAC, LAB_SRC_MAC, ETHERTYPE_IPV6, &ip)
}

/// A full Ethernet frame carrying IPv6/TCP (hop limit 64, window 65535), lab MACs.
#[allow(
    clippy::too_many_arguments,
    reason = "one argument per varying header field"
)]
pub fn ipv6_tcp_frame(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    payload: &[u8],
) -> Vec<u8> {
    let seg = tcp(
        src.into(),
        dst.into(),
        sport,
        dport,
        seq,
        ack,
        flags,
        65535,
        payload,
    );
    let ip = ipv6(src, dst, 6, 64, 0, 0, &seg);
    ethernet(LAB_DST_MAC, LAB_SRC_MAC, ETHERTYPE_IPV6, &ip)
}

#[cfg(test)]
mod tests {
    use super::{
        icmpv4_echo, icmpv6_echo, internet_checksum, ipv4, ipv4_with_flags, ipv6, l4_checksum, tcp,
        tcp_with_options, udp,
    };
    use crate::packet::TcpFlags;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    #[test]
    fn icmpv6_echo_checksum_covers_the_pseudo_header() {
        let (src, dst): (Ipv6Addr, Ipv6Addr) =
            ("fd00:1::2".parse().unwrap(), "fd00:3::2".parse().unwrap());
        let m = icmpv6_echo(src, dst, 0x1234, 7, b"abc");
        assert_eq!(&m[..2], &[128, 0]);
        assert_eq!(&m[4..8], &[0x12, 0x34, 0, 7]);
        // Summed with its checksum in place, the message verifies (RFC 4443 2.3)...
        assert_eq!(l4_checksum(src.into(), dst.into(), 58, &m, m.len()), 0);
        // ...and only between these two addresses.
        let other: Ipv6Addr = "fd00:3::3".parse().unwrap();
        assert_ne!(l4_checksum(src.into(), other.into(), 58, &m, m.len()), 0);
        let pkt = ipv6(src, dst, 58, 64, 0, 0, &m);
        let p = crate::packet::parse_ip(&pkt).unwrap();
        assert!(matches!(
            p.l4,
            crate::packet::L4::Icmpv6 { ty: 128, code: 0 }
        ));
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
        assert_eq!(
            internet_checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            !0xddf2
        );
        assert_eq!(internet_checksum(&[0xff]), !0xff00);
    }

    #[test]
    fn ipv4_header_checksum_verifies() {
        let p = ipv4(
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
            17,
            64,
            0,
            7,
            &[1, 2, 3],
        );
        assert_eq!(internet_checksum(&p[..20]), 0);
        assert_eq!(p.len(), 23);
    }

    #[test]
    fn known_ipv4_header_checksum() {
        // The classic example header from Wikipedia's "IPv4 header checksum" (0xb861).
        let p = ipv4(
            Ipv4Addr::new(192, 168, 0, 1),
            Ipv4Addr::new(192, 168, 0, 199),
            17,
            64,
            0,
            0,
            &[0; 0x73 - 20],
        );
        // That example has DF set; ours does not, so its checksum is 0x4000 higher.
        assert_eq!(u16::from_be_bytes([p[10], p[11]]), 0xb861 + 0x4000);
    }

    #[test]
    fn l4_checksums_verify_with_pseudo_header() {
        for (s, d) in [
            (
                IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4)),
                IpAddr::V4(Ipv4Addr::new(5, 6, 7, 8)),
            ),
            (
                IpAddr::V6(Ipv6Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 9)),
            ),
        ] {
            let t = tcp(s, d, 1, 2, 3, 4, TcpFlags::SYN, 5, b"hello");
            assert_eq!(
                !super::fold(super::sum(super::pseudo_header(s, d, 6, t.len()), &t)),
                0
            );
            let u = udp(s, d, 53, 53, b"odd");
            assert_eq!(
                !super::fold(super::sum(super::pseudo_header(s, d, 17, u.len()), &u)),
                0
            );
        }
        assert_eq!(internet_checksum(&icmpv4_echo(1, 2, b"abc")), 0);
    }

    #[test]
    fn tcp_options_are_padded_and_counted_in_the_data_offset() {
        let (a, b) = (
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)),
        );
        let t = tcp_with_options(
            a,
            b,
            1,
            2,
            3,
            4,
            TcpFlags::SYN,
            5,
            &[2, 4, 5, 0xb4, 1],
            b"x",
        );
        assert_eq!(t.len(), 20 + 8 + 1);
        assert_eq!(t[12] >> 4, 7);
        assert_eq!(&t[20..28], &[2, 4, 5, 0xb4, 1, 0, 0, 0]);
        assert_eq!(
            l4_checksum(a, b, 6, &t, 16),
            u16::from_be_bytes([t[16], t[17]])
        );
        assert_eq!(
            tcp(a, b, 1, 2, 3, 4, TcpFlags::SYN, 5, b"x"),
            tcp_with_options(a, b, 1, 2, 3, 4, TcpFlags::SYN, 5, &[], b"x")
        );
        let ip = ipv4_with_flags(
            Ipv4Addr::new(192, 0, 2, 1),
            Ipv4Addr::new(192, 0, 2, 2),
            6,
            64,
            0,
            9,
            true,
            &t,
        );
        assert_eq!(ip[6], 0x40);
        assert_eq!(internet_checksum(&ip[..20]), 0);
    }

    #[test]
    fn l4_checksum_recomputes_what_the_builder_wrote() {
        for (src, dst) in [
            (
                IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
                IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            ),
            (
                IpAddr::V6(Ipv6Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 9)),
            ),
        ] {
            let mut seg = tcp(src, dst, 1234, 80, 7, 0, TcpFlags::SYN, 1024, b"odd");
            let want = u16::from_be_bytes([seg[16], seg[17]]);
            seg[16] = 0xde;
            seg[17] = 0xad;
            assert_eq!(l4_checksum(src, dst, 6, &seg, 16), want);
        }
    }
}
