//! Passive fingerprints: the first byte picks the input. Even: the rest is a p0f.fp signature
//! file (any error must name a line inside the text). Odd: the rest is an Ethernet frame fed
//! twice through the handshake table (SYN, then the same bytes again) and matched against
//! ashiato's own signatures; a raw signature printed from it must parse back when its
//! distance is believable.
#![no_main]

use std::sync::OnceLock;

use ashiato_stepstone::db::parse_sig;
use ashiato_stepstone::{Database, MODERN_DB, Tracker};
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
    if first % 2 == 0 {
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
            if fp.observed.guess_dist() <= 35 && !raw.contains(":*:") {
                parse_sig(&raw).expect("a printed raw signature parses");
            }
        }
    }
});
