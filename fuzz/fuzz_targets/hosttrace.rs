//! The host audit's parsers: DNS messages, the HTTP/IRC/SMTP payload features, claim,
//! process-snapshot, /proc/net and EVE lines, and whole frames through the audit. The first
//! byte picks what.
#![no_main]

use ashiato_hosttrace::claim::parse_claims;
use ashiato_hosttrace::procs::ProcMap;
use ashiato_hosttrace::{Audit, AuditConfig, FramePos, dns, features};
use ashiato_wire::LinkType;
use libfuzzer_sys::fuzz_target;

const CLAIMS: &str = r#"{"id":"a","victim":"10.0.0.1","protocol":"any","reflectors":["10.0.0.2"],"from":"1970-01-01T00:00:00Z","to":"2100-01-01T00:00:00Z"}"#;

fuzz_target!(|data: &[u8]| {
    let Some((first, rest)) = data.split_first() else {
        return;
    };
    match first % 4 {
        0 => {
            if let Some(m) = dns::parse(rest) {
                assert!(m.rcode < 16);
                assert!(m.addresses.len() <= dns::MAX_ANSWERS);
            }
        }
        1 => {
            let _ = features::http_request(rest);
            if let Some(r) = features::http_response(rest) {
                assert!(r.body_offset.is_none_or(|o| o <= rest.len()));
            }
            let _ = features::executable_magic(rest, true);
            let _ = features::irc_command(rest);
            let _ = features::smtp_error(rest);
        }
        2 => {
            let text = String::from_utf8_lossy(rest);
            let _ = parse_claims(&text);
            let _ = ProcMap::parse(&text);
            let _ = ashiato_hosttrace::procs::parse_proc_net(&text);
            let (claims, _) = ashiato_hosttrace::report::claims_from_eve(&text, "f");
            for c in claims {
                assert!(c.evidence.len() <= ashiato_hosttrace::report::MAX_EVIDENCE);
            }
        }
        _ => {
            // Frames separated by 0xff 0xfe, alternating link types, through one audit.
            let mut a = Audit::new(parse_claims(CLAIMS).unwrap(), AuditConfig::default());
            for (i, f) in rest.split(|&b| b == 0xfe).enumerate() {
                let link = if i % 2 == 0 { LinkType::Raw } else { LinkType::Ethernet };
                let pos = FramePos { file: 0, frame: i as u64 + 1 };
                a.frame(pos, i as u64 * 1_000_000_000, link, f.len() as u32, f);
            }
            let _ = a.finish();
        }
    }
});
