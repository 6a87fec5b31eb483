//! A generated day of host history with a claim list, for the audit-speed figure
//! (docs/benchmarks.md). Pure: frames go to a callback; the caller writes them.
//!
//! The host (10.1.0.5) browses: a DNS lookup (A answer) then a TCP connection with a GET and
//! 1-40 full-size response segments, over and over, with timestamps spread evenly over 24 h
//! until the requested byte total (the seed measured 20-600 MB of pcap per PC per day). The
//! first `matched` claims are attacks this host took part in: a SYN flood to the victim's
//! port inside the claim window, or (every second one) DNS queries sent with the victim's
//! address as source to the claim's reflector. The other claims name victims this host never
//! reached. Same seed, same bytes.

use std::net::{IpAddr, Ipv4Addr};

use ashiato_rng::Xoshiro256pp;
use ashiato_wire::build::{ipv4_tcp_frame, ipv4_udp_frame};
use ashiato_wire::packet::TcpFlags;
use ashiato_wire::time::rfc3339;

use crate::claim::{ClaimRecord, Protocol};

const NS: u64 = 1_000_000_000;
/// 2026-01-01T00:00:00Z.
pub const DAY_START_NS: u64 = 1_767_225_600 * NS;
const DAY_NS: u64 = 86_400 * NS;
/// The generated host's address.
pub const HOST: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 5);
const RESOLVER: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);

/// What to generate.
#[derive(Clone, Copy, Debug)]
pub struct HistorySpec {
    /// Bytes of frames to generate (the pcap file is 16 bytes a frame larger).
    pub bytes: u64,
    /// Claims in the list.
    pub claims: usize,
    /// How many of them the host took part in (at most `claims`).
    pub matched: usize,
    /// PRNG seed.
    pub seed: u64,
}

/// What was generated.
#[derive(Clone, Debug)]
pub struct History {
    /// The claim list.
    pub claims: Vec<ClaimRecord>,
    /// Frames emitted.
    pub frames: u64,
    /// Frame bytes emitted.
    pub bytes: u64,
}

/// A claim victim: 45.0.0.0/8 never appears in the background traffic (93.0.0.0/8).
fn victim(i: usize) -> Ipv4Addr {
    let i = i as u32 + 1;
    Ipv4Addr::new(45, (i >> 16) as u8, (i >> 8) as u8, i as u8)
}

/// Generates the history, handing each frame (Ethernet) and its time to `emit`.
pub fn history(spec: HistorySpec, mut emit: impl FnMut(u64, &[u8])) -> History {
    let mut rng = Xoshiro256pp::new(spec.seed);
    let matched = spec.matched.min(spec.claims);
    let mut claims = Vec::with_capacity(spec.claims);
    // Attack windows: matched claims spread over the day's middle, 5 minutes each.
    let mut attacks = Vec::new();
    for i in 0..spec.claims {
        let from = if i < matched {
            DAY_START_NS + DAY_NS / 4 + (i as u64) * (DAY_NS / 2) / (matched as u64).max(1)
        } else {
            DAY_START_NS + rng.next_u64() % (DAY_NS - 300 * NS)
        };
        let to = from + 300 * NS;
        let reflect = i < matched && i % 2 == 1;
        let reflectors = if reflect || rng.next_u64().is_multiple_of(10) {
            vec![IpAddr::V4(Ipv4Addr::new(198, 51, 100, (i % 200) as u8 + 1))]
        } else {
            Vec::new()
        };
        let (protocol, port) = if reflectors.is_empty() {
            (Protocol::Tcp, Some([80, 443, 25, 22][i % 4]))
        } else {
            (Protocol::Udp, Some(1024 + (i % 60000) as u16))
        };
        if i < matched {
            attacks.push((from, i));
        }
        claims.push(ClaimRecord {
            id: format!("claim-{i:05}"),
            victim: IpAddr::V4(victim(i)),
            protocol,
            port,
            from: rfc3339(from),
            to: rfc3339(to),
            reflectors,
            fqdn: None,
        });
    }
    let mut out = History {
        claims: Vec::new(),
        frames: 0,
        bytes: 0,
    };
    let mut put = |out: &mut History, ts: u64, f: &[u8]| {
        out.frames += 1;
        out.bytes += f.len() as u64;
        emit(ts, f);
    };
    let body = vec![0x61u8; 1460];
    let mut next_attack = 0;
    let mut port: u16 = 32768;
    let mut session = 0u64;
    while out.bytes < spec.bytes {
        let ts = DAY_START_NS + ((out.bytes as u128 * DAY_NS as u128) / spec.bytes as u128) as u64;
        while next_attack < attacks.len() && attacks[next_attack].0 <= ts {
            let (from, i) = attacks[next_attack];
            attack(&claims[i], from, &mut |t, f| put(&mut out, t, f));
            next_attack += 1;
        }
        session += 1;
        port = if port == 60999 { 32768 } else { port + 1 };
        let server = Ipv4Addr::new(93, (session % 200) as u8, (session / 200 % 250) as u8, 10);
        let name = format!("w{}.example", session % 50_000);
        let q = dns_query(session as u16, &name);
        put(
            &mut out,
            ts,
            &ipv4_udp_frame(HOST, RESOLVER, port, 53, 1, &q),
        );
        let a = dns_answer(session as u16, &name, server);
        put(
            &mut out,
            ts + 1_000_000,
            &ipv4_udp_frame(RESOLVER, HOST, 53, port, 2, &a),
        );
        let t = ts + 2_000_000;
        let (c, s) = (HOST, server);
        put(
            &mut out,
            t,
            &ipv4_tcp_frame(c, s, port, 80, 1, 0, TcpFlags::SYN, 3, &[]),
        );
        let sa = TcpFlags::SYN | TcpFlags::ACK;
        put(
            &mut out,
            t + 1_000_000,
            &ipv4_tcp_frame(s, c, 80, port, 9, 2, sa, 4, &[]),
        );
        let get = format!("GET /page/{session} HTTP/1.1\r\nHost: {name}\r\n\r\n");
        let pa = TcpFlags::PSH | TcpFlags::ACK;
        put(
            &mut out,
            t + 2_000_000,
            &ipv4_tcp_frame(c, s, port, 80, 2, 10, pa, 5, get.as_bytes()),
        );
        let n = 1 + rng.next_u64() % 40;
        let head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html>";
        for k in 0..n {
            let p: &[u8] = if k == 0 { head } else { &body };
            let f = ipv4_tcp_frame(s, c, 80, port, 10 + k as u32 * 1460, 2, TcpFlags::ACK, 6, p);
            put(&mut out, t + 3_000_000 + k * 100_000, &f);
        }
        let fin = TcpFlags::FIN | TcpFlags::ACK;
        put(
            &mut out,
            t + 8_000_000,
            &ipv4_tcp_frame(c, s, port, 80, 3, 10, fin, 7, &[]),
        );
    }
    out.claims = claims;
    out
}

/// 2,000 attack packets for one claim, 100 µs apart from the window's start.
fn attack(c: &ClaimRecord, from: u64, put: &mut impl FnMut(u64, &[u8])) {
    let IpAddr::V4(v) = c.victim else { return };
    let port = c.port.unwrap_or(80);
    for k in 0..2000u32 {
        let ts = from + u64::from(k) * 100_000;
        let f = match c.reflectors.first() {
            Some(IpAddr::V4(r)) => {
                let q = dns_query(k as u16, "example.org");
                ipv4_udp_frame(v, *r, port, 53, k as u16, &q)
            }
            _ => ipv4_tcp_frame(
                HOST,
                v,
                40000 + (k % 20000) as u16,
                port,
                k,
                0,
                TcpFlags::SYN,
                k as u16,
                &[],
            ),
        };
        put(ts, &f);
    }
}

fn dns_name(m: &mut Vec<u8>, name: &str) {
    for l in name.split('.') {
        m.push(l.len() as u8);
        m.extend_from_slice(l.as_bytes());
    }
    m.push(0);
}

fn dns_query(id: u16, name: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(40);
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    dns_name(&mut m, name);
    m.extend_from_slice(&[0, 255, 0, 1]);
    m
}

fn dns_answer(id: u16, name: &str, a: Ipv4Addr) -> Vec<u8> {
    let mut m = Vec::with_capacity(60);
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]);
    dns_name(&mut m, name);
    m.extend_from_slice(&[0, 1, 0, 1, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
    m.extend_from_slice(&a.octets());
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claim::Claim;
    use crate::{Audit, AuditConfig, FramePos};
    use ashiato_wire::LinkType;

    #[test]
    fn the_audit_finds_exactly_the_claims_the_generated_host_took_part_in() {
        let spec = HistorySpec {
            bytes: 3_000_000,
            claims: 200,
            matched: 4,
            seed: 7,
        };
        let mut frames = Vec::new();
        let h = history(spec, |ts, f| frames.push((ts, f.to_vec())));
        assert!(h.bytes >= spec.bytes);
        let claims: Vec<Claim> = h
            .claims
            .iter()
            .cloned()
            .map(|c| Claim::from_record(c).unwrap())
            .collect();
        let mut a = Audit::new(claims, AuditConfig::default());
        for (i, (ts, f)) in frames.iter().enumerate() {
            a.frame(
                FramePos {
                    file: 0,
                    frame: i as u64 + 1,
                },
                *ts,
                LinkType::Ethernet,
                f.len() as u32,
                f,
            );
        }
        let r = a.finish();
        let got: Vec<(usize, u64)> = r
            .matches
            .iter()
            .map(|m| (m.claim, m.evidence.packets))
            .collect();
        assert_eq!(got, [(0, 2000), (1, 2000), (2, 2000), (3, 2000)]);
        assert_eq!(r.matches[1].kinds.get("reflection"), Some(&2000));
        assert!(r.findings.is_empty(), "{:?}", r.findings);
        // Same seed, same history.
        let mut again = 0u64;
        let h2 = history(spec, |_, f| again += f.len() as u64);
        assert_eq!((h2.bytes, h2.frames), (h.bytes, h.frames));
        assert_eq!(h2.claims, h.claims);
    }
}
