//! Byte-fixture and property tests of the packet parser, mostly against [`crate::build`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::{any, prop, prop_assert, prop_assert_eq, proptest};

use super::{
    Ip, Ipv6Fragment, L4, Layer, ParseError, ParseErrorKind, ParseStats, Tcp, TcpFlags, Udp, parse,
    parse_ip,
};
use crate::build;
use crate::link::LinkType;

const A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const B: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
const A6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const B6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

fn syn_frame() -> Vec<u8> {
    build::ipv4_tcp_frame(A, B, 40000, 443, 7, 0, TcpFlags::SYN, 99, b"")
}

fn kind(link: LinkType, data: &[u8]) -> ParseErrorKind {
    parse(link, data).unwrap_err().kind
}

#[test]
fn ethernet_ipv4_tcp() {
    let f = build::ipv4_tcp_frame(
        A,
        B,
        1234,
        80,
        1,
        2,
        TcpFlags::ACK | TcpFlags::PSH,
        5,
        b"GET",
    );
    let p = parse(LinkType::Ethernet, &f).unwrap();
    assert_eq!(p.ip_offset, 14);
    assert_eq!(p.vlans, 0);
    let Ip::V4(ip) = p.ip else { panic!() };
    assert_eq!(
        (ip.src, ip.dst, ip.protocol, ip.ttl, ip.id),
        (A, B, 6, 64, 5)
    );
    assert_eq!(ip.header.len(), 20);
    assert_eq!(ip.payload.len(), 23);
    assert!(!ip.payload_truncated() && !ip.is_fragment());
    assert_eq!(
        p.l4,
        L4::Tcp(Tcp {
            src_port: 1234,
            dst_port: 80,
            seq: 1,
            ack: 2,
            flags: TcpFlags::ACK | TcpFlags::PSH,
            window: 65535,
            header_len: 20,
            payload_len: 3,
        })
    );
    assert_eq!(p.ip.src(), IpAddr::V4(A));
    assert_eq!(p.ip.protocol(), 6);
}

#[test]
fn tcp_flag_helpers() {
    assert!(TcpFlags::SYN.is_syn_only());
    assert!((TcpFlags::SYN | TcpFlags::ECE | TcpFlags::CWR).is_syn_only());
    assert!(!(TcpFlags::SYN | TcpFlags::ACK).is_syn_only());
    assert!((TcpFlags::SYN | TcpFlags::ACK).is_syn_ack());
    assert!((TcpFlags::RST | TcpFlags::ACK).is_rst());
    assert!(TcpFlags(0x1ff).contains(TcpFlags::NS | TcpFlags::FIN));
}

#[test]
fn ethernet_padding_is_dropped() {
    let mut f = build::ipv4_udp_frame(A, B, 53, 53, 1, b"");
    f.extend_from_slice(&[0; 14]); // pad a 42-byte frame up to 60
    let p = parse(LinkType::Ethernet, &f).unwrap();
    assert_eq!(p.ip.payload().len(), 8);
    assert!(!p.ip.payload_truncated());
}

#[test]
fn vlan_stacks() {
    let f = build::vlan_tag(&build::vlan_tag(&syn_frame(), 10), 20);
    let p = parse(LinkType::Ethernet, &f).unwrap();
    assert_eq!((p.vlans, p.ip_offset), (2, 22));
    let mut qinq = build::vlan_tag(&syn_frame(), 5);
    qinq[12..14].copy_from_slice(&0x88a8u16.to_be_bytes());
    assert_eq!(parse(LinkType::Ethernet, &qinq).unwrap().vlans, 1);
    let mut f = syn_frame();
    for vid in 0..5 {
        f = build::vlan_tag(&f, vid);
    }
    assert_eq!(
        parse(LinkType::Ethernet, &f).unwrap_err(),
        ParseError {
            layer: Layer::Vlan,
            offset: 28,
            kind: ParseErrorKind::TooManyVlanTags
        }
    );
    // A tag cut off before its inner ethertype.
    let err = parse(LinkType::Ethernet, &f[..16]).unwrap_err();
    assert_eq!(err.layer, Layer::Vlan);
}

#[test]
fn not_ip_and_short_link() {
    let arp = build::ethernet([0xff; 6], [2; 6], 0x0806, &[0; 28]);
    let err = parse(LinkType::Ethernet, &arp).unwrap_err();
    assert_eq!(err.kind, ParseErrorKind::NotIp { ethertype: 0x0806 });
    assert_eq!(err.kind.reason(), "not_ip");
    assert_eq!(
        err.to_string(),
        "link layer at offset 12: not IP (ethertype 0x0806)"
    );
    assert_eq!(
        kind(LinkType::Ethernet, &arp[..13]),
        ParseErrorKind::Truncated {
            needed: 14,
            available: 13
        }
    );
    assert_eq!(
        kind(LinkType::Other(147), &arp),
        ParseErrorKind::UnsupportedLink(147)
    );
}

#[test]
fn ipv4_header_errors() {
    let f = syn_frame();
    let err = parse(LinkType::Ethernet, &f[..14 + 19]).unwrap_err();
    assert_eq!(
        err,
        ParseError {
            layer: Layer::Ipv4,
            offset: 14,
            kind: ParseErrorKind::Truncated {
                needed: 20,
                available: 19
            }
        }
    );
    let mut bad = f.clone();
    bad[14] = 0x44;
    assert_eq!(kind(LinkType::Ethernet, &bad), ParseErrorKind::BadIhl(4));
    bad[14] = 0x65;
    assert_eq!(
        kind(LinkType::Ethernet, &bad),
        ParseErrorKind::BadVersion(6)
    );
    bad[14] = 0x4f; // 60-byte header in a 40-byte packet
    assert_eq!(
        kind(LinkType::Ethernet, &bad),
        ParseErrorKind::Truncated {
            needed: 60,
            available: 40
        }
    );
    let mut short = f.clone();
    short[16..18].copy_from_slice(&19u16.to_be_bytes());
    assert_eq!(
        kind(LinkType::Ethernet, &short),
        ParseErrorKind::BadTotalLength {
            total: 19,
            header: 20
        }
    );
}

#[test]
fn ipv4_options_and_snaplen() {
    // Header with 4 bytes of options (NOPs + EOL), UDP payload.
    let dgram = build::udp(A.into(), B.into(), 1, 2, &[0xab; 100]);
    let mut ip = build::ipv4(A, B, 17, 3, 0, 9, &dgram);
    ip[0] = 0x46;
    ip.splice(20..20, [1, 1, 1, 0]);
    let total = ip.len() as u16;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    let p = parse(LinkType::Raw, &ip).unwrap();
    assert_eq!(p.ip.header().len(), 24);
    assert_eq!(
        p.l4,
        L4::Udp(Udp {
            src_port: 1,
            dst_port: 2,
            length: 108
        })
    );
    // Cut by the snaplen: still parsed, payload marked truncated.
    let p = parse(LinkType::Raw, &ip[..40]).unwrap();
    assert!(p.ip.payload_truncated());
    assert_eq!(p.ip.payload().len(), 16);
    let p = parse(LinkType::Raw, &ip[..28]).unwrap();
    assert_eq!(p.l4, L4::Truncated { protocol: 17 });
}

#[test]
fn ipv4_fragments() {
    let dgram = build::udp(A.into(), B.into(), 53, 22, &[0; 64]);
    let mut ip = build::ipv4(A, B, 17, 64, 0, 77, &dgram);
    ip[6] = 0x20; // MF, offset 0: first fragment keeps its UDP header
    let p = parse_ip(&ip).unwrap();
    let Ip::V4(h) = p.ip else { panic!() };
    assert!(h.is_fragment() && h.more_fragments);
    assert!(matches!(p.l4, L4::Udp(_)));
    ip[6] = 0x00;
    ip[7] = 185; // offset 185*8
    let p = parse_ip(&ip).unwrap();
    assert_eq!(p.l4, L4::Fragment);
    let Ip::V4(h) = p.ip else { panic!() };
    assert_eq!(h.fragment_offset, 185);
}

/// IPv6 with hop-by-hop (8 bytes), a fragment header and then `upper` bytes of protocol `nh`.
fn v6_with_ext(frag_offset: u16, nh: u8, upper: &[u8]) -> Vec<u8> {
    let mut ext = vec![44, 0, 1, 4, 0, 0, 0, 0]; // HBH -> fragment, PadN
    let fo = (frag_offset << 3) | 1;
    ext.extend_from_slice(&[nh, 0]);
    ext.extend_from_slice(&fo.to_be_bytes());
    ext.extend_from_slice(&0xdead_beefu32.to_be_bytes());
    ext.extend_from_slice(upper);
    build::ipv6(A6, B6, 0, 64, 0, 0, &ext)
}

#[test]
fn ipv6_extension_walk() {
    let dgram = build::udp(A6.into(), B6.into(), 5353, 5353, b"x");
    let f = v6_with_ext(0, 17, &dgram);
    let p = parse(LinkType::Ipv6, &f).unwrap();
    let Ip::V6(h) = p.ip else { panic!() };
    assert_eq!(
        (h.next_header, h.upper_protocol, h.upper_offset),
        (0, 17, 16)
    );
    assert_eq!(
        h.fragment,
        Some(Ipv6Fragment {
            offset: 0,
            more: true,
            id: 0xdead_beef
        })
    );
    assert_eq!(
        p.l4,
        L4::Udp(Udp {
            src_port: 5353,
            dst_port: 5353,
            length: 9
        })
    );
    let f = v6_with_ext(100, 17, &dgram);
    let p = parse(LinkType::Ipv6, &f).unwrap();
    assert_eq!(p.l4, L4::Fragment);
    // ESP ends the walk.
    let f = v6_with_ext(0, 50, &[0; 16]);
    let p = parse(LinkType::Ipv6, &f).unwrap();
    assert_eq!((p.ip.protocol(), p.l4), (50, L4::Other(50)));
    // AH: length 1 => (1+2)*4 = 12 bytes, then ICMPv6.
    let mut ah = vec![58, 1, 0, 0];
    ah.extend_from_slice(&[0; 8]);
    ah.extend_from_slice(&[128, 0, 0, 0]);
    let f = build::ipv6(A6, B6, 51, 1, 0, 0, &ah);
    let p = parse_ip(&f).unwrap();
    assert_eq!(p.l4, L4::Icmpv6 { ty: 128, code: 0 });
}

#[test]
fn ipv6_extension_errors() {
    // 17 destination-options headers in a row.
    let mut ext = Vec::new();
    for _ in 0..17 {
        ext.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]);
    }
    let err = parse_ip(&build::ipv6(A6, B6, 60, 1, 0, 0, &ext)).unwrap_err();
    assert_eq!(
        (err.layer, err.kind),
        (Layer::Ipv6Ext, ParseErrorKind::TooManyExtHeaders)
    );
    // A routing header that claims more than the payload length holds: malformed.
    let bad = build::ipv6(A6, B6, 43, 1, 0, 0, &[59, 4, 0, 0, 0, 0, 0, 0]);
    let err = parse_ip(&bad).unwrap_err();
    assert_eq!(
        err,
        ParseError {
            layer: Layer::Ipv6Ext,
            offset: 40,
            kind: ParseErrorKind::Truncated {
                needed: 40,
                available: 8
            }
        }
    );
    // The same header cut by the snaplen: kept, L4 reported truncated.
    let dgram = build::udp(A6.into(), B6.into(), 1, 2, b"");
    let full = v6_with_ext(0, 17, &dgram);
    let p = parse_ip(&full[..44]).unwrap();
    assert!(p.ip.payload_truncated());
    assert_eq!(p.l4, L4::Truncated { protocol: 0 });
    let err = parse_ip(&full[..39]).unwrap_err();
    assert_eq!(err.layer, Layer::Ipv6);
}

#[test]
fn cooked_loopback_and_raw_links() {
    let ip = build::ipv4(A, B, 1, 64, 0, 1, &build::icmpv4_echo(1, 1, b""));
    let ip6 = build::ipv6(A6, B6, 59, 64, 0, 0, &[]);
    let mut sll = vec![0; 14];
    sll.extend_from_slice(&0x0800u16.to_be_bytes());
    sll.extend_from_slice(&ip);
    let p = parse(LinkType::LinuxSll, &sll).unwrap();
    assert_eq!((p.ip_offset, p.l4), (16, L4::Icmp { ty: 8, code: 0 }));
    let mut sll2 = 0x86DDu16.to_be_bytes().to_vec();
    sll2.extend_from_slice(&[0; 18]);
    sll2.extend_from_slice(&ip6);
    let p = parse(LinkType::LinuxSll2, &sll2).unwrap();
    assert_eq!((p.ip_offset, p.l4), (20, L4::Other(59)));
    assert!(matches!(
        kind(LinkType::LinuxSll, &sll[..10]),
        ParseErrorKind::Truncated { needed: 16, .. }
    ));
    for fam in [2u32.to_le_bytes(), 2u32.to_be_bytes()] {
        let f = [&fam[..], &ip].concat();
        assert!(matches!(parse(LinkType::Null, &f).unwrap().ip, Ip::V4(_)));
        assert!(matches!(parse(LinkType::Loop, &f).unwrap().ip, Ip::V4(_)));
    }
    for fam in [10u32, 24, 28, 30] {
        let f = [&fam.to_le_bytes()[..], &ip6].concat();
        assert!(matches!(parse(LinkType::Null, &f).unwrap().ip, Ip::V6(_)));
    }
    let f = [&7u32.to_le_bytes()[..], &ip].concat();
    assert_eq!(kind(LinkType::Null, &f), ParseErrorKind::UnknownFamily(7));
    assert!(matches!(parse(LinkType::Ipv4, &ip).unwrap().ip, Ip::V4(_)));
    assert_eq!(kind(LinkType::Ipv4, &ip6), ParseErrorKind::BadVersion(6));
    assert_eq!(kind(LinkType::Raw, &[0x50]), ParseErrorKind::BadVersion(5));
    assert!(matches!(
        kind(LinkType::Raw, &[]),
        ParseErrorKind::Truncated { .. }
    ));
}

#[test]
fn parse_stats_count_by_reason() {
    let mut s = ParseStats::default();
    let e = parse(LinkType::Raw, &[0x50]).unwrap_err();
    s.record(&e);
    s.record(&e);
    s.record(&parse(LinkType::Raw, &[]).unwrap_err());
    let mut t = ParseStats::default();
    t.merge(&s);
    t.merge(&s);
    assert_eq!(t.total(), 6);
    assert_eq!(
        t.iter().collect::<Vec<_>>(),
        vec![("truncated", 2), ("bad_version", 4)]
    );
}

/// Every link type the parser knows, and one it does not.
const LINKS: [LinkType; 9] = [
    LinkType::Null,
    LinkType::Ethernet,
    LinkType::Raw,
    LinkType::Loop,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::Ipv4,
    LinkType::Ipv6,
    LinkType::Other(9),
];

proptest! {
    #[test]
    fn never_panics(link in 0usize..LINKS.len(), bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(p) = parse(LINKS[link], &bytes) {
            prop_assert!(p.ip_offset + p.ip.header().len() <= bytes.len());
        }
    }

    #[test]
    fn never_panics_on_ip_like(mut bytes in prop::collection::vec(any::<u8>(), 40..200), v6 in any::<bool>()) {
        // Force a plausible version nibble so that the deeper layers get exercised.
        bytes[0] = if v6 { 0x60 | (bytes[0] & 0x0f) } else { 0x45 };
        let _ = parse_ip(&bytes);
    }

    #[test]
    fn ipv4_tcp_round_trip(
        src in any::<[u8; 4]>(), dst in any::<[u8; 4]>(), sport in any::<u16>(),
        dport in any::<u16>(), seq in any::<u32>(), ack in any::<u32>(), flags in 0u16..0x200,
        id in any::<u16>(), payload in prop::collection::vec(any::<u8>(), 0..64),
        vlans in 0usize..4,
    ) {
        let (s, d) = (Ipv4Addr::from(src), Ipv4Addr::from(dst));
        let mut f = build::ipv4_tcp_frame(s, d, sport, dport, seq, ack, TcpFlags(flags), id, &payload);
        for v in 0..vlans {
            f = build::vlan_tag(&f, v as u16);
        }
        let p = parse(LinkType::Ethernet, &f).unwrap();
        prop_assert_eq!(usize::from(p.vlans), vlans);
        let Ip::V4(ip) = p.ip else { panic!() };
        prop_assert_eq!((ip.src, ip.dst, ip.id, ip.protocol), (s, d, id, 6));
        prop_assert_eq!(build::internet_checksum(ip.header), 0);
        prop_assert_eq!(p.l4, L4::Tcp(Tcp {
            src_port: sport, dst_port: dport, seq, ack, flags: TcpFlags(flags),
            window: 65535, header_len: 20, payload_len: payload.len() as u32,
        }));
        prop_assert_eq!(&ip.payload[20..], &payload[..]);
    }

    #[test]
    fn ipv6_udp_round_trip(
        src in any::<[u8; 16]>(), dst in any::<[u8; 16]>(), sport in any::<u16>(),
        dport in any::<u16>(), payload in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let (s, d) = (Ipv6Addr::from(src), Ipv6Addr::from(dst));
        let f = build::ipv6_udp_frame(s, d, sport, dport, &payload);
        let p = parse(LinkType::Ethernet, &f).unwrap();
        prop_assert_eq!((p.ip.src(), p.ip.dst(), p.ip.protocol()), (IpAddr::V6(s), IpAddr::V6(d), 17));
        prop_assert_eq!(p.l4, L4::Udp(Udp { src_port: sport, dst_port: dport, length: 8 + payload.len() as u16 }));
        prop_assert_eq!(&p.ip.payload()[8..], &payload[..]);
    }
}
