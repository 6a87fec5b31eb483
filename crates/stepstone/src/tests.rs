//! Byte-fixture and property tests of the fingerprint core.

use std::net::Ipv4Addr;

use ashiato_wire::packet::parse_ip;
use proptest::prelude::{
    Just, Strategy, any, prop, prop_assert, prop_assert_eq, prop_oneof, proptest,
};

use crate::MODERN_DB;
use crate::db::{Database, DbErrorKind, parse_sig};
use crate::extract::{Skip, observe};
use crate::matcher::{Quality, find};
use crate::sig::{Kind, Quirks};
use crate::tracker::Tracker;

/// An IPv4 TCP packet with the given fields and raw option bytes (padded to 4 bytes with EOL
/// zeros only when `pad`).
#[allow(
    clippy::too_many_arguments,
    reason = "one argument per header field under test"
)]
fn v4_tcp(
    ttl: u8,
    df: bool,
    id: u16,
    flags: u8,
    seq: u32,
    ack: u32,
    win: u16,
    opts: &[u8],
) -> Vec<u8> {
    let mut o = opts.to_vec();
    while !o.len().is_multiple_of(4) {
        o.push(0);
    }
    let thl = 20 + o.len();
    let total = 20 + thl;
    let mut v = vec![0x45, 0];
    v.extend_from_slice(&(total as u16).to_be_bytes());
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(&(if df { 0x4000u16 } else { 0 }).to_be_bytes());
    v.extend_from_slice(&[ttl, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
    v.extend_from_slice(&40000u16.to_be_bytes());
    v.extend_from_slice(&80u16.to_be_bytes());
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(&ack.to_be_bytes());
    v.push(((thl / 4) as u8) << 4);
    v.push(flags);
    v.extend_from_slice(&win.to_be_bytes());
    v.extend_from_slice(&[0, 0, 0, 0]);
    v.extend_from_slice(&o);
    v
}

/// Linux's SYN options: mss 1460, sok, ts, nop, ws 7.
const LINUX_OPTS: [u8; 20] = [
    2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
];

#[test]
fn linux_syn_prints_as_p0f_does() {
    let b = v4_tcp(64, true, 1, 0x02, 7, 0, 29200, &LINUX_OPTS);
    let o = observe(&parse_ip(&b).unwrap()).unwrap();
    assert_eq!(o.kind, Kind::Syn);
    assert_eq!(
        o.raw_sig(0).to_string(),
        "4:64+0:0:1460:mss*20,7:mss,sok,ts,nop,ws:df,id+:0"
    );
}

#[test]
fn quirks_of_a_crafted_syn() {
    // No DF, ID 0, zero seq, odd first ACK byte, URG pointer without URG, PUSH, ECE.
    let mut b = v4_tcp(50, false, 0, 0x02 | 0x08 | 0x40, 0, 0x0100_0000, 1024, &[]);
    b[38] = 0;
    b[39] = 5; // urgent pointer
    let o = observe(&parse_ip(&b).unwrap()).unwrap();
    let q = o.quirks;
    for bit in [
        Quirks::ZERO_ID,
        Quirks::ZERO_SEQ,
        Quirks::NZ_ACK,
        Quirks::NZ_URG,
        Quirks::PUSH,
        Quirks::ECN,
    ] {
        assert!(q.has(bit), "{q} lacks {bit:#x}");
    }
    assert_eq!(
        o.raw_sig(0).to_string(),
        "4:50+14:0:0:1024,0::id-,ecn,seq-,ack+,uptr+,pushf+:0"
    );
}

#[test]
fn malformed_options_are_bad_not_a_panic() {
    for opts in [
        &[1, 1, 1, 2][..],  // MSS cut short by the header end
        &[8, 10, 0, 0][..], // timestamp cut short
        &[0x22, 1][..],     // unknown option, length 1
        &[5, 4, 0, 0][..],  // SACK shorter than 10
        &[3, 3, 20, 0][..], // window scale 20: exws
        &[0, 0, 1, 0][..],  // EOL then a nonzero byte: opt+
    ] {
        let b = v4_tcp(64, true, 1, 0x02, 1, 0, 100, opts);
        let o = observe(&parse_ip(&b).unwrap()).unwrap();
        assert!(
            o.quirks.has(Quirks::OPT_BAD)
                || o.quirks.has(Quirks::OPT_EXWS)
                || o.quirks.has(Quirks::OPT_EOL_NZ),
            "{opts:?}: {}",
            o.raw_sig(0)
        );
    }
}

#[test]
fn only_syn_and_syn_ack_count() {
    for (flags, want) in [
        (0x10, Err(Skip::NotHandshake)),
        (0x04, Err(Skip::NotHandshake)),
        (0x03, Err(Skip::NotHandshake)),
        (0x06, Err(Skip::NotHandshake)),
    ] {
        let b = v4_tcp(64, true, 1, flags, 1, 1, 100, &[]);
        assert_eq!(observe(&parse_ip(&b).unwrap()).map(|o| o.kind), want);
    }
    let b = v4_tcp(64, true, 1, 0x12, 1, 1, 100, &[]);
    assert_eq!(observe(&parse_ip(&b).unwrap()).unwrap().kind, Kind::SynAck);
}

#[test]
fn our_signature_file_parses_and_labels_linux() {
    let db = Database::parse(MODERN_DB).unwrap();
    assert!(db.request.len() >= 10 && db.response.len() >= 5);
    let b = v4_tcp(61, true, 9, 0x02, 7, 0, 64240, &LINUX_OPTS);
    let o = observe(&parse_ip(&b).unwrap()).unwrap();
    let m = find(&db, &o, 0);
    let l = db.label(m.record.unwrap());
    assert_eq!(l.text(), "Linux 4.19 and newer (or Android)");
    assert_eq!((m.quality, m.dist), (Quality::Exact, 3));
}

#[test]
fn fuzzy_ttl_is_said_to_be_fuzzy() {
    // A Linux SYN arriving with TTL 120 (initial 128: a relay or a Windows box re-sending it):
    // p0f's rule still calls it Linux, fuzzily; the matcher says so.
    let db = Database::parse(MODERN_DB).unwrap();
    let b = v4_tcp(120, true, 9, 0x02, 7, 0, 64240, &LINUX_OPTS);
    let m = find(&db, &observe(&parse_ip(&b).unwrap()).unwrap(), 0);
    assert_eq!(m.quality, Quality::Fuzzy);
    assert_eq!(m.dist, 8);
}

#[test]
fn signature_file_errors_name_the_line() {
    type Check = fn(&DbErrorKind) -> bool;
    let cases: [(&str, usize, Check); 6] = [
        ("[tcp:request]\nsig = *:64:0:*:*,*:mss::0\n", 2, |k| {
            matches!(k, DbErrorKind::SigWithoutLabel)
        }),
        ("[tcp:request]\nlabel = x:unix:A:b\n", 2, |k| {
            matches!(k, DbErrorKind::Label(_))
        }),
        (
            "\n\n[tcp:request]\nlabel = s:unix:A:\nsig = *:300:0:*:*,*:mss::0\n",
            5,
            |k| {
                matches!(
                    k,
                    DbErrorKind::Field {
                        field: "initial TTL",
                        ..
                    }
                )
            },
        ),
        (
            "[tcp:request]\nlabel = s:unix:A:\nsig = 6:64:0:*:*,*:mss:df:0\n",
            3,
            |k| matches!(k, DbErrorKind::QuirkVersion { .. }),
        ),
        (
            "[tcp:response]\nlabel = s:unix:A:\nsig = *:64:0:*:*,*:eol+1,mss::0\n",
            3,
            |k| {
                matches!(
                    k,
                    DbErrorKind::Field {
                        field: "option layout",
                        ..
                    }
                )
            },
        ),
        ("[tcp:request]\nfoo = 1\n", 2, |k| {
            matches!(k, DbErrorKind::UnknownKey(_))
        }),
    ];
    for (text, line, check) in cases {
        let e = Database::parse(text).unwrap_err();
        assert_eq!(e.line, line, "{text:?}: {e}");
        assert!(check(&e.kind), "{text:?}: {e}");
        assert!(e.to_string().contains(&format!("line {line}")));
    }
}

#[test]
fn retransmitted_syn_and_stray_syn_ack_give_nothing() {
    let db = Database::parse(MODERN_DB).unwrap();
    let mut t = Tracker::default();
    let syn = v4_tcp(64, true, 1, 0x02, 7, 0, 64240, &LINUX_OPTS);
    let p = parse_ip(&syn).unwrap();
    assert!(t.packet(&db, 0, &p).is_some());
    assert!(
        t.packet(&db, 1, &p).is_none(),
        "a retransmission is not a new handshake"
    );
    // A SYN/ACK from a host nobody sent a SYN to (backscatter).
    let sa = v4_tcp(64, true, 1, 0x12, 9, 1, 65535, &LINUX_OPTS);
    assert!(t.packet(&db, 2, &parse_ip(&sa).unwrap()).is_none());
    assert_eq!(t.stats().stray_syn_acks, 1);
    assert_eq!(t.stats().dup_syns, 1);
}

#[test]
fn a_syn_flood_costs_bounded_state() {
    let db = Database::parse(MODERN_DB).unwrap();
    let mut t = Tracker::new(100, u64::MAX);
    for i in 0..10_000u32 {
        let mut b = v4_tcp(64, true, 1, 0x02, i, 0, 64240, &LINUX_OPTS);
        b[12..16].copy_from_slice(&Ipv4Addr::from(0x0a00_0000 + i).octets());
        t.packet(&db, u64::from(i), &parse_ip(&b).unwrap());
        assert!(t.len() <= 101, "{} open handshakes", t.len());
    }
    assert!(t.stats().evicted > 9000);
}

fn opt_bytes() -> impl Strategy<Value = Vec<u8>> {
    let one = prop_oneof![
        Just(vec![1u8]),
        any::<u16>().prop_map(|m| vec![2, 4, (m >> 8) as u8, m as u8]),
        (0u8..15).prop_map(|s| vec![3, 3, s]),
        Just(vec![4, 2]),
        any::<[u8; 8]>().prop_map(|t| {
            let mut v = vec![8, 10];
            v.extend_from_slice(&t);
            v
        }),
    ];
    // At most 4 options of at most 10 bytes: within the 40 bytes a TCP header can hold.
    prop::collection::vec(one, 0..=4).prop_map(|v| v.concat())
}

proptest! {
    /// No bytes make the extractor panic, whatever the claimed lengths.
    #[test]
    fn observe_never_panics(b in prop::collection::vec(any::<u8>(), 0..120)) {
        if let Ok(p) = parse_ip(&b) {
            let _ = observe(&p);
        }
    }

    /// A packet matches the signature written from its own raw signature, exactly (when its
    /// distance is believable), and that signature prints back to the same text.
    #[test]
    fn a_packet_matches_its_own_raw_signature(
        ttl in 30u8..=255, df: bool, id: u16, seq in 1u32.., win: u16, opts in opt_bytes(),
        synack: bool,
    ) {
        let flags = if synack { 0x12 } else { 0x02 };
        let b = v4_tcp(ttl, df, id, flags, seq, 1, win, &opts);
        let o = observe(&parse_ip(&b).unwrap()).unwrap();
        let raw = o.raw_sig(0).to_string();
        prop_assert!(!raw.is_empty());
        if o.guess_dist() <= crate::sig::MAX_DIST && !(synack && o.mss == crate::sig::SPECIAL_MSS) {
            let sig = parse_sig(&raw).unwrap();
            let section = if synack { "tcp:response" } else { "tcp:request" };
            let db = Database::parse(&format!("[{section}]\nlabel = s:unix:Self:\nsig = {raw}\n")).unwrap();
            let m = find(&db, &o, 0);
            prop_assert!(m.record.is_some(), "{raw} does not match itself");
            prop_assert_eq!(m.quality, Quality::Exact);
            prop_assert_eq!(m.dist, o.guess_dist());
            prop_assert_eq!(parse_sig(&sig.to_string()).unwrap(), sig);
        }
    }
}
