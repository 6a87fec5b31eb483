//! The audit on packets built with `ashiato_wire::build`: spoofed and reflected attack
//! packets, an executable hidden behind an innocent URL, and the port feature's address rules.

use std::net::Ipv4Addr;

use ashiato_hosttrace::claim::parse_claims;
use ashiato_hosttrace::{Audit, AuditConfig, Feature, FramePos, Report};
use ashiato_wire::LinkType;
use ashiato_wire::build::{ipv4_tcp_frame, ipv4_udp_frame};
use ashiato_wire::packet::TcpFlags;

/// 2026-01-01T10:00:00Z in ns.
const T0: u64 = 1_767_261_600_000_000_000;
const S: u64 = 1_000_000_000;

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn run(claims: &str, frames: &[(u64, Vec<u8>)]) -> Report {
    let mut a = Audit::new(parse_claims(claims).unwrap(), AuditConfig::default());
    for (i, (ts, f)) in frames.iter().enumerate() {
        let pos = FramePos {
            file: 0,
            frame: i as u64 + 1,
        };
        a.frame(pos, *ts, LinkType::Ethernet, f.len() as u32, f);
    }
    a.finish()
}

fn syn(src: &str, sport: u16, dst: &str, dport: u16) -> Vec<u8> {
    ipv4_tcp_frame(ip(src), ip(dst), sport, dport, 1, 0, TcpFlags::SYN, 1, &[])
}

fn data(src: &str, sport: u16, dst: &str, dport: u16, p: &[u8]) -> Vec<u8> {
    let f = TcpFlags::ACK | TcpFlags::PSH;
    ipv4_tcp_frame(ip(src), ip(dst), sport, dport, 1, 1, f, 1, p)
}

const CLAIMS: &str = r#"{"id":"flood","victim":"203.0.113.5","protocol":"tcp","port":80,"from":"2026-01-01T10:00:00Z","to":"2026-01-01T10:05:00Z"}
{"id":"dnsamp","victim":"198.51.100.7","protocol":"udp","port":4444,"reflectors":["192.0.2.53"],"from":"2026-01-01T10:00:00Z","to":"2026-01-01T10:05:00Z"}"#;

fn attack_frames() -> Vec<(u64, Vec<u8>)> {
    let q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\xff\x00\x01";
    let frames = vec![
        // 1: a SYN flood packet from this host to the victim.
        (T0 + 10 * S, syn("10.0.0.5", 40000, "203.0.113.5", 80)),
        // 2: the same with the victim's own address as source towards a third party: a
        // spoofed SYN (SYN/ACK reflection onto the victim).
        (T0 + 11 * S, syn("203.0.113.5", 80, "8.8.4.4", 443)),
        // 3: the victim's reply (SYN/ACK) to this host: not spoofing.
        (
            T0 + 12 * S,
            ipv4_tcp_frame(
                ip("203.0.113.5"),
                ip("10.0.0.5"),
                80,
                40000,
                9,
                2,
                TcpFlags::SYN | TcpFlags::ACK,
                1,
                &[],
            ),
        ),
        // 4: a DNS query with the victim's address as source to the listed reflector.
        (
            T0 + 20 * S,
            ipv4_udp_frame(ip("198.51.100.7"), ip("192.0.2.53"), 4444, 53, 7, q),
        ),
        // 5: the same to an unlisted resolver: spoofed source to an amplifier port.
        (
            T0 + 21 * S,
            ipv4_udp_frame(ip("198.51.100.7"), ip("192.0.2.99"), 4444, 53, 8, q),
        ),
        // 6: to the victim's port 80 an hour later: outside window and skew.
        (T0 + 3600 * S, syn("10.0.0.5", 40001, "203.0.113.5", 80)),
    ];
    frames
}

#[test]
fn direct_spoofed_and_reflected_attack_packets_match_their_claims() {
    let r = run(CLAIMS, &attack_frames());
    assert_eq!(r.matches.len(), 2);
    let flood = &r.matches[0];
    assert_eq!(flood.claim, 0);
    assert_eq!(flood.kinds.get("direct"), Some(&1));
    assert_eq!(flood.kinds.get("spoofed-source"), Some(&1));
    assert_eq!(flood.evidence.packets, 2);
    let f: Vec<u64> = flood.evidence.frames.iter().map(|p| p.frame).collect();
    assert_eq!(f, [1, 2]);
    let amp = &r.matches[1];
    assert_eq!(amp.kinds.get("reflection"), Some(&1));
    assert_eq!(amp.kinds.get("spoofed-source"), Some(&1));
    assert_eq!(amp.evidence.packets, 2);
}

#[test]
fn the_published_hashed_list_matches_the_same_packets_as_the_plain_claims() {
    use ashiato_hosttrace::claimlist::{AgentList, CenterList};
    let pk8 =
        ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    let secret = [9u8; 32];
    let skew = AuditConfig::default().skew_ns;
    let mut center = CenterList::new(&secret, pk8.as_ref(), skew).unwrap();
    for c in parse_claims(CLAIMS).unwrap() {
        center.publish(&c);
    }
    let mut list = AgentList::new(&center.public_key(), &secret);
    list.apply(&center.delta(0, 100)).unwrap();
    let frames = attack_frames();
    let plain = run(CLAIMS, &frames);
    let mut a = Audit::hashed(list, AuditConfig::default());
    for (i, (ts, f)) in frames.iter().enumerate() {
        let pos = FramePos {
            file: 0,
            frame: i as u64 + 1,
        };
        a.frame(pos, *ts, LinkType::Ethernet, f.len() as u32, f);
    }
    let hashed = a.finish();
    let kinds = |r: &Report| {
        r.matches
            .iter()
            .map(|m| (m.claim, m.kinds.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(kinds(&hashed), kinds(&plain));
    assert_eq!(hashed.matches.len(), 2);
}

#[test]
fn an_executable_behind_an_innocent_url_is_found_by_its_body_in_the_next_segment() {
    let (c, s) = ("10.0.0.5", "93.184.216.34");
    let frames = vec![
        (T0, syn(c, 50000, s, 8080)),
        (
            T0 + 1,
            data(
                c,
                50000,
                s,
                8080,
                b"GET /update?id=7 HTTP/1.1\r\nHost: x\r\n\r\n",
            ),
        ),
        (
            T0 + 2,
            data(
                s,
                8080,
                c,
                50000,
                b"HTTP/1.1 200 OK\r\nContent-Length: 9000\r\n\r\n",
            ),
        ),
        (
            T0 + 3,
            data(s, 8080, c, 50000, b"\x7fELF\x02\x01\x01\x00rest"),
        ),
        // A plain page on another connection: nothing.
        (
            T0 + 4,
            data(c, 50001, s, 80, b"GET /index.html HTTP/1.1\r\n\r\n"),
        ),
        (
            T0 + 5,
            data(s, 80, c, 50001, b"HTTP/1.1 200 OK\r\n\r\n<html>MZ</html>"),
        ),
    ];
    let r = run("", &frames);
    assert_eq!(r.findings.len(), 1, "{:?}", r.findings);
    let f = &r.findings[0];
    assert_eq!(f.feature, Feature::HttpExe);
    assert_eq!(f.peer.to_string(), "93.184.216.34:8080");
    assert_eq!(f.details, ["GET /update?id=7 (body is elf)"]);
    assert_eq!(f.evidence.frames[0].frame, 4);
}

#[test]
fn smb_and_sql_ports_count_only_towards_the_internet() {
    let frames = vec![
        (T0, syn("10.0.0.5", 50000, "10.0.0.9", 445)),
        (T0 + 1, syn("10.0.0.5", 50001, "192.168.1.1", 139)),
        (T0 + 2, syn("10.0.0.5", 50002, "45.33.32.156", 445)),
        (T0 + 3, syn("10.0.0.5", 50003, "45.33.32.157", 1433)),
        (T0 + 4, syn("10.0.0.5", 50004, "45.33.32.157", 1433)),
        (T0 + 5, syn("10.0.0.5", 50005, "45.33.32.158", 3389)),
    ];
    let r = run("", &frames);
    let got: Vec<(String, u64)> = r
        .findings
        .iter()
        .map(|f| (f.peer.to_string(), f.evidence.packets))
        .collect();
    assert_eq!(
        got,
        [
            ("45.33.32.156:445".into(), 1),
            ("45.33.32.157:1433".into(), 2)
        ]
    );
}

#[test]
fn findings_near_a_matched_claim_name_it_and_dns_answers_name_peers() {
    // A DNS answer cc.example -> 45.33.32.156, then IRC to it, then the attack.
    let mut ans =
        b"\x00\x01\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00\x02cc\x07example\x00\x00\x01\x00\x01"
            .to_vec();
    ans.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 45, 33, 32, 156]);
    let frames = vec![
        (
            T0 - 60 * S,
            ipv4_udp_frame(ip("10.0.0.1"), ip("10.0.0.5"), 53, 33333, 1, &ans),
        ),
        (T0 - 50 * S, syn("10.0.0.5", 50000, "45.33.32.156", 6667)),
        (
            T0 - 49 * S,
            data("10.0.0.5", 50000, "45.33.32.156", 6667, b"NICK bot1\r\n"),
        ),
        (T0 + 10 * S, syn("10.0.0.5", 40000, "203.0.113.5", 80)),
    ];
    let r = run(CLAIMS, &frames);
    assert_eq!(r.matches.len(), 1);
    assert_eq!(r.findings.len(), 1);
    let f = &r.findings[0];
    assert_eq!(f.feature, Feature::Irc);
    assert_eq!(f.fqdn.as_deref(), Some("cc.example"));
    assert_eq!(f.near_claims, [0]);
}

proptest::proptest! {
    /// Any bytes as a frame of any link type: the audit never panics.
    #[test]
    fn arbitrary_frames_never_panic(
        frames in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200), 0..20),
        link in proptest::sample::select(vec![LinkType::Ethernet, LinkType::Raw, LinkType::LinuxSll]),
    ) {
        let mut a = Audit::new(parse_claims(CLAIMS).unwrap(), AuditConfig::default());
        for (i, f) in frames.iter().enumerate() {
            a.frame(FramePos { file: 0, frame: i as u64 + 1 }, T0, link, f.len() as u32, f);
        }
        let _ = a.finish();
    }
}
