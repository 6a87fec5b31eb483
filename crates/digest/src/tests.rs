//! Digest invariance, sensitivity and the committed test vectors (docs/digest-vectors.json).

use std::net::{Ipv4Addr, Ipv6Addr};

use ashiato_wire::LinkType;
use ashiato_wire::build;
use ashiato_wire::packet::{self, TcpFlags};
use proptest::prelude::*;
use std::hash::Hasher;

use siphasher::sip128::{Hasher128, SipHasher24};

use super::*;

const V4_SRC: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
const V4_DST: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 9);

fn v4_syn(ttl: u8, tos: u8) -> Vec<u8> {
    let seg = build::tcp(
        V4_SRC.into(),
        V4_DST.into(),
        40000,
        445,
        0x1234_5678,
        0,
        TcpFlags::SYN,
        1024,
        &[],
    );
    build::ipv4(V4_SRC, V4_DST, 6, ttl, tos, 0xbeef, &seg)
}

fn v6_udp(hop: u8, tc: u8, flow: u32) -> Vec<u8> {
    let s: Ipv6Addr = "2001:db8::1".parse().unwrap();
    let d: Ipv6Addr = "2001:db8:ffff::53".parse().unwrap();
    let dg = build::udp(s.into(), d.into(), 5353, 53, b"\x12\x34\x01\x00\x00\x01");
    build::ipv6(s, d, 17, hop, tc, flow, &dg)
}

fn raw_digest(pkt: &[u8]) -> Result<Digest, DigestError> {
    DEMO_KEY.digest_frame(LinkType::Raw, pkt)
}

#[test]
fn siphash_128_reference_vector() {
    // SipHash-2-4 with 128-bit output, key 00..0f, empty message: the first entry of the
    // reference implementation's vectors_sip128 table.
    let key: [u8; 16] = core::array::from_fn(|i| i as u8);
    let mut h = SipHasher24::new_with_key(&key);
    h.write(&[]);
    let out = h.finish128().as_bytes();
    assert_eq!(hex(&out), "a3817f04ba25a8e66df67214c7550293");
    // Ours gives the same bytes.
    let (h1, h2) = sip::siphash24_128(&key, &[]);
    let mut ours = h1.to_le_bytes().to_vec();
    ours.extend_from_slice(&h2.to_le_bytes());
    assert_eq!(hex(&ours), "a3817f04ba25a8e66df67214c7550293");
}

#[test]
fn same_packet_other_ttl_tos_checksum_same_digest() {
    let a = v4_syn(64, 0);
    let b = v4_syn(3, 0xb8);
    assert_ne!(a, b, "the packets differ on the wire");
    assert_eq!(raw_digest(&a).unwrap(), raw_digest(&b).unwrap());
    let mut c = a.clone();
    c[10] ^= 0xff; // a wrong header checksum
    assert_eq!(raw_digest(&a).unwrap(), raw_digest(&c).unwrap());
}

#[test]
fn ipv6_hop_limit_and_traffic_class_are_masked() {
    let a = v6_udp(64, 0, 0xabcde);
    let b = v6_udp(1, 0xff, 0xabcde);
    assert_eq!(raw_digest(&a).unwrap(), raw_digest(&b).unwrap());
    let c = v6_udp(64, 0, 0xabcdf); // flow label is invariant (RFC 6437)
    assert_ne!(raw_digest(&a).unwrap(), raw_digest(&c).unwrap());
}

#[test]
fn every_invariant_ipv4_byte_matters() {
    let base = v4_syn(64, 0);
    let d0 = raw_digest(&base).unwrap();
    // Bytes 0 (version/IHL) and 2..4 (total length) change how the packet parses; all other
    // non-masked bytes of the header and the first 8 payload bytes must change the digest.
    for i in (0..28).filter(|i| ![0, 1, 2, 3, 8, 10, 11].contains(i)) {
        let mut p = base.clone();
        p[i] ^= 0x01;
        assert_ne!(
            raw_digest(&p).unwrap(),
            d0,
            "byte {i} must be invariant-covered"
        );
    }
    // Bytes after the first 8 of the payload are not covered.
    let mut p = base.clone();
    p[28] ^= 0x01;
    assert_eq!(raw_digest(&p).unwrap(), d0);
}

#[test]
fn every_invariant_ipv6_byte_matters() {
    let base = v6_udp(64, 0, 7);
    let d0 = raw_digest(&base).unwrap();
    for i in 2..48 {
        if i == 7 || i == 4 || i == 5 || i == 6 {
            continue; // hop limit masked; payload length / next header change the parse
        }
        let mut p = base.clone();
        p[i] ^= 0x01;
        assert_ne!(
            raw_digest(&p).unwrap(),
            d0,
            "byte {i} must be invariant-covered"
        );
    }
}

#[test]
fn ipv4_options_are_left_out() {
    // Two packets that differ only in the contents of a 4-byte option field.
    let mk = |opt: [u8; 4]| {
        let mut p = v4_syn(64, 0);
        p[0] = 0x46;
        let total = u16::from_be_bytes([p[2], p[3]]) + 4;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p.splice(20..20, opt);
        p
    };
    let a = mk([0x01, 0x01, 0x01, 0x00]);
    let b = mk([0x07, 0x03, 0x04, 0x00]);
    assert_eq!(raw_digest(&a).unwrap(), raw_digest(&b).unwrap());
    // The payload prefix is taken after the options.
    let mut c = a.clone();
    c[24] ^= 1;
    assert_ne!(raw_digest(&a).unwrap(), raw_digest(&c).unwrap());
}

#[test]
fn ethernet_padding_and_short_payloads() {
    // 4-byte UDP-less payload: pad with zeros in the digest; Ethernet padding never counts.
    let ip = build::ipv4(V4_SRC, V4_DST, 253, 64, 0, 1, &[1, 2, 3, 4]);
    let mut frame = build::ethernet([2; 6], [4; 6], 0x0800, &ip);
    let unpadded = DEMO_KEY.digest_frame(LinkType::Ethernet, &frame).unwrap();
    frame.resize(60, 0xaa);
    let padded = DEMO_KEY.digest_frame(LinkType::Ethernet, &frame).unwrap();
    assert_eq!(padded, unpadded);
    let mut inv = [0u8; V6_INVARIANT_LEN];
    let pkt = packet::parse(LinkType::Ethernet, &frame).unwrap();
    assert_eq!(invariant_bytes(&pkt.ip, &mut inv).unwrap(), 28);
    assert_eq!(&inv[20..28], &[1, 2, 3, 4, 0, 0, 0, 0]);
}

#[test]
fn snaplen_too_short_is_reported() {
    let p = v4_syn(64, 0);
    let cut = &p[..24];
    match raw_digest(cut) {
        Err(DigestError::SnapTooShort {
            needed: 8,
            captured: 4,
        }) => {}
        other => panic!("expected SnapTooShort, got {other:?}"),
    }
}

#[test]
fn keys_parse_and_differ() {
    let k: Key = "000102030405060708090a0b0c0d0e0f".parse().unwrap();
    assert_eq!(k.to_hex(), "000102030405060708090a0b0c0d0e0f");
    assert!(matches!(
        "00".parse::<Key>(),
        Err(KeyError::Length { found: 2 })
    ));
    assert!(matches!(
        "zz0102030405060708090a0b0c0d0e0f".parse::<Key>(),
        Err(KeyError::NotHex { index: 0, ch: 'z' })
    ));
    let p = v4_syn(64, 0);
    assert_ne!(
        k.digest_frame(LinkType::Raw, &p).unwrap(),
        DEMO_KEY.digest_frame(LinkType::Raw, &p).unwrap(),
        "another federation key gives another digest"
    );
    assert_ne!(k.id(), DEMO_KEY.id());
    assert!(
        !format!("{k:?}").contains("0001020304"),
        "Debug must not print the key"
    );
}

#[test]
fn digest_text_round_trip() {
    let d = raw_digest(&v4_syn(64, 0)).unwrap();
    assert_eq!(d.to_string().len(), 32);
    assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
    assert!("xyz".parse::<Digest>().is_err());
    assert!("0".repeat(33).parse::<Digest>().is_err());
}

/// The committed vectors: `frame_hex` (raw IP) → `invariant_hex` → `digest_hex` under `key_hex`.
#[test]
fn committed_vectors() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/digest-vectors.json"
    );
    if std::env::var_os("ASHIATO_WRITE_VECTORS").is_some() {
        std::fs::write(path, render_vectors()).unwrap();
    }
    let text = std::fs::read_to_string(path).unwrap();
    assert_eq!(
        text,
        render_vectors(),
        "docs/digest-vectors.json differs from the cases"
    );
    let v: Vec<Vector> = parse_vectors(&text);
    assert!(v.len() >= 6, "vectors file has {} entries", v.len());
    for t in v {
        let key: Key = t.key_hex.parse().unwrap();
        let frame = unhex(&t.frame_hex);
        let pkt = packet::parse(LinkType::Raw, &frame).unwrap();
        let mut inv = [0u8; V6_INVARIANT_LEN];
        let n = invariant_bytes(&pkt.ip, &mut inv).unwrap();
        assert_eq!(
            hex(&inv[..n]),
            t.invariant_hex,
            "{}: invariant bytes",
            t.name
        );
        assert_eq!(
            key.digest_frame(LinkType::Raw, &frame).unwrap().to_string(),
            t.digest_hex,
            "{}: digest",
            t.name
        );
    }
}

struct Vector {
    name: String,
    key_hex: String,
    frame_hex: String,
    invariant_hex: String,
    digest_hex: String,
}

/// A minimal reader for the flat vectors file (one object per entry, string fields only), so
/// the pure crate needs no JSON dependency.
fn parse_vectors(text: &str) -> Vec<Vector> {
    let field = |obj: &str, name: &str| -> String {
        let pat = format!("\"{name}\": \"");
        let start = obj.find(&pat).unwrap_or_else(|| panic!("missing {name}")) + pat.len();
        let end = obj[start..].find('"').unwrap() + start;
        obj[start..end].to_string()
    };
    text.split('{')
        .skip(1)
        .map(|obj| Vector {
            name: field(obj, "name"),
            key_hex: field(obj, "key_hex"),
            frame_hex: field(obj, "frame_hex"),
            invariant_hex: field(obj, "invariant_hex"),
            digest_hex: field(obj, "digest_hex"),
        })
        .collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The cases behind docs/digest-vectors.json, rendered as that file. After a deliberate change
/// of the specification, regenerate with `ASHIATO_WRITE_VECTORS=1 cargo test -p ashiato-digest`
/// and review the diff.
fn render_vectors() -> String {
    use std::fmt::Write as _;
    let key: Key = "000102030405060708090a0b0c0d0e0f".parse().unwrap();
    let mut opt = v4_syn(64, 0);
    opt[0] = 0x46;
    let total = u16::from_be_bytes([opt[2], opt[3]]) + 4;
    opt[2..4].copy_from_slice(&total.to_be_bytes());
    opt.splice(20..20, [1, 1, 1, 0]);
    let frag = {
        let mut p = build::ipv4(V4_SRC, V4_DST, 17, 64, 0, 77, &[9u8; 32]);
        p[6] = 0x00;
        p[7] = 0x03; // fragment offset 3 (24 bytes), a non-first fragment
        p
    };
    let cases: Vec<(&str, Key, Vec<u8>)> = vec![
        ("ipv4-tcp-syn", key, v4_syn(64, 0)),
        ("ipv4-tcp-syn-other-ttl-tos", key, v4_syn(1, 0x2e)),
        ("ipv4-tcp-syn-demo-key", DEMO_KEY, v4_syn(64, 0)),
        ("ipv4-options", key, opt),
        (
            "ipv4-short-payload",
            key,
            build::ipv4(V4_SRC, V4_DST, 253, 64, 0, 1, &[1, 2, 3]),
        ),
        ("ipv4-non-first-fragment", key, frag),
        ("ipv6-udp-dns", key, v6_udp(64, 0, 0xabcde)),
        ("ipv6-udp-dns-other-hop-tc", key, v6_udp(7, 0xb8, 0xabcde)),
    ];
    let mut out = String::from("[\n");
    for (i, (name, k, frame)) in cases.iter().enumerate() {
        let pkt = packet::parse(LinkType::Raw, frame).unwrap();
        let mut inv = [0u8; V6_INVARIANT_LEN];
        let n = invariant_bytes(&pkt.ip, &mut inv).unwrap();
        let _ = writeln!(
            out,
            "  {{\n    \"name\": \"{name}\",\n    \"key_hex\": \"{}\",\n    \"frame_hex\": \"{}\",\n    \"invariant_hex\": \"{}\",\n    \"digest_hex\": \"{}\"\n  }}{}",
            k.to_hex(),
            hex(frame),
            hex(&inv[..n]),
            k.digest_invariant(&inv[..n]),
            if i + 1 == cases.len() { "" } else { "," }
        );
    }
    out.push_str("]\n");
    out
}

proptest! {
    /// The interleaved pair equals two single hashes, for equal and unequal lengths.
    #[test]
    fn prop_sip_x2_matches_single(
        key in any::<[u8; 16]>(),
        a in proptest::collection::vec(any::<u8>(), 0..64),
        b in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let expect = (sip::siphash24_128(&key, &a), sip::siphash24_128(&key, &b));
        prop_assert_eq!(sip::siphash24_128_x2(&key, &a, &b), expect);
        let b2: Vec<u8> = b.iter().chain(a.iter()).copied().take(a.len()).collect();
        if b2.len() == a.len() {
            let expect = (sip::siphash24_128(&key, &a), sip::siphash24_128(&key, &b2));
            prop_assert_eq!(sip::siphash24_128_x2(&key, &a, &b2), expect);
        }
    }

    /// Our one-shot SipHash-2-4-128 equals the streaming `siphasher` crate on every length.
    #[test]
    fn prop_sip_matches_siphasher(key in any::<[u8; 16]>(), data in proptest::collection::vec(any::<u8>(), 0..80)) {
        let mut h = SipHasher24::new_with_key(&key);
        h.write(&data);
        let r = h.finish128();
        prop_assert_eq!(sip::siphash24_128(&key, &data), (r.h1, r.h2));
    }

    /// TTL, TOS and checksum never change the digest; src/dst addresses always do.
    #[test]
    fn prop_invariance(ttl in any::<u8>(), tos in any::<u8>(), ck in any::<u16>(), flip in 0usize..8) {
        let a = v4_syn(64, 0);
        let mut b = v4_syn(ttl, tos);
        b[10..12].copy_from_slice(&ck.to_be_bytes());
        prop_assert_eq!(raw_digest(&a).unwrap(), raw_digest(&b).unwrap());
        let mut c = a.clone();
        c[12 + flip] ^= 0x80;
        prop_assert_ne!(raw_digest(&a).unwrap(), raw_digest(&c).unwrap());
    }

    /// Arbitrary bytes never panic the digest.
    #[test]
    fn prop_no_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
        let _ = raw_digest(&bytes);
        let _ = DEMO_KEY.digest_frame(LinkType::Ethernet, &bytes);
    }
}
