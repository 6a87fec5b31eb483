//! Passive fingerprints and the responder: the first byte picks the input. 0 mod 3: the rest
//! is a p0f.fp signature file (any error must name a line inside the text). 1 mod 3: the rest
//! is an Ethernet frame fed twice through the handshake table (SYN, then the same bytes again)
//! and matched against ashiato's own signatures; a raw signature printed from it must parse
//! back when its distance is believable. 2 mod 3: the frame goes to the darknet responder's
//! core (every IPv4 and IPv6 address dark), whose answer must be one parseable SYN/ACK no more
//! than 4 bytes larger.
#![no_main]

use std::sync::OnceLock;

use ashiato_stepstone::db::parse_sig;
use ashiato_stepstone::responder::{Responder, ResponderConfig};
use ashiato_stepstone::{Database, DbErrorKind, MODERN_DB, Tracker};
use ashiato_wire::LinkType;
use ashiato_wire::packet;
use libfuzzer_sys::fuzz_target;

fn db() -> &'static Database {
    static DB: OnceLock<Database> = OnceLock::new();
    DB.get_or_init(|| Database::parse(MODERN_DB).expect("the built-in file parses"))
}

fuzz_target!(|data: &[u8]| {
    let Some((first, rest)) = data.split_first() else {
        return;
    };
    if first % 3 == 2 {
        let Ok(p) = packet::parse(LinkType::Ethernet, rest) else {
            return;
        };
        let mut r = Responder::new(
            ResponderConfig {
                darknets: vec![
                    (std::net::Ipv4Addr::UNSPECIFIED.into(), 0),
                    (std::net::Ipv6Addr::UNSPECIFIED.into(), 0),
                ],
                max_pending: 4,
                ..ResponderConfig::default()
            },
            0,
        );
        for now in [0, 1, 10_000_000_000] {
            if let Some(out) = r.on_packet(now, &p) {
                let sa = packet::parse_ip(&out).expect("our SYN/ACK parses");
                assert!(out.len() <= p.ip.header().len() + p.ip.payload().len() + 4);
                let _ = sa;
            }
            r.poll(now);
        }
        let _ = r.take_measured();
        return;
    }
    if first % 3 == 0 {
        let text = String::from_utf8_lossy(rest);
        if let Err(e) = Database::parse(&text) {
            assert!(e.line >= 1 && e.line <= text.lines().count());
        }
        return;
    }
    let Ok(p) = packet::parse(LinkType::Ethernet, rest) else {
        return;
    };
    let mut t = Tracker::new(4, 1_000);
    for now in [0, 1] {
        if let Some(fp) = t.packet(db(), now, &p) {
            let raw = fp.observed.raw_sig(fp.syn_mss).to_string();
            // A TTL of 0 prints as `0+32`, which p0f's parser (base TTL 1 to 255) refuses too.
            if fp.observed.guess_dist() <= 35 && fp.observed.ttl > 0 && !raw.contains(":*:") {
                // p0f's window test may divide by a SYN/ACK's peer MSS below 100 and print a
                // multiplier above the 1000 its own signature parser accepts; we print as p0f.
                match parse_sig(&raw) {
                    Ok(_) => {}
                    Err(DbErrorKind::Field { field, .. }) if field.contains("multiplier") => {}
                    Err(e) => panic!("{raw}: {e}"),
                }
            }
        }
    }
});
