//! The digest over arbitrary frames: never panics, and the digest of an IP packet does not
//! depend on its TTL/hop limit (the invariance the whole traceback rests on).
#![no_main]

use ashiato_digest::DEMO_KEY;
use ashiato_wire::LinkType;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The interleaved pair of hashes equals two single ones.
    let (a, b) = data.split_at(data.len() / 2);
    let (da, db) = DEMO_KEY.digest_invariant_x2(a, &b[..a.len()]);
    assert_eq!(da, DEMO_KEY.digest_invariant(a));
    assert_eq!(db, DEMO_KEY.digest_invariant(&b[..a.len()]));
    let d = DEMO_KEY.digest_frame(LinkType::Raw, data);
    if let Err(e) = &d {
        let _ = (e.to_string(), e.reason());
    }
    if let (Ok(d), Some(first)) = (&d, data.first()) {
        let mut other = data.to_vec();
        match first >> 4 {
            4 if other.len() > 8 => other[8] = other[8].wrapping_add(1),
            6 if other.len() > 7 => other[7] = other[7].wrapping_add(1),
            _ => return,
        }
        let d2 = DEMO_KEY.digest_frame(LinkType::Raw, &other);
        assert_eq!(d2.ok(), Some(*d), "TTL / hop limit changed the digest");
    }
});
