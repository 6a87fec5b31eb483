//! Unit tests of the ring walker and the configuration checks (the live path itself is
//! tested through namespaces in `tests/live.rs`).

use ashiato_wire::{Frame, LinkType};

use super::{
    BLK_FIRST_PKT, BLK_NUM_PKTS, BLK_STATUS, BlockWalk, LiveConfig, LiveSource, PKT_LEN, PKT_MAC,
    PKT_NEXT, PKT_NSEC, PKT_PKTTYPE, PKT_SEC, PKT_SNAPLEN, classify, link_from_arphrd, walk_block,
};
use crate::CaptureError;

/// Builds a block image the way the kernel lays it out: descriptor, then packets at
/// 16-byte aligned offsets with the data at `tp_mac`.
fn block(pkts: &[(&[u8], u32, u32)], size: usize) -> Vec<u8> {
    block_typed(
        &pkts
            .iter()
            .map(|&(d, s, n)| (d, s, n, libc::PACKET_HOST))
            .collect::<Vec<_>>(),
        size,
    )
}

/// [`block`] with each packet's `sll_pkttype`.
fn block_typed(pkts: &[(&[u8], u32, u32, u8)], size: usize) -> Vec<u8> {
    let mut b = vec![0u8; size];
    let first = 48usize;
    b[BLK_STATUS..BLK_STATUS + 4].copy_from_slice(&libc::TP_STATUS_USER.to_ne_bytes());
    b[BLK_NUM_PKTS..BLK_NUM_PKTS + 4].copy_from_slice(&(pkts.len() as u32).to_ne_bytes());
    b[BLK_FIRST_PKT..BLK_FIRST_PKT + 4].copy_from_slice(&(first as u32).to_ne_bytes());
    let mut off = first;
    for (i, &(data, sec, nsec, pkttype)) in pkts.iter().enumerate() {
        let mac = 82u16;
        let len = (mac as usize + data.len()).next_multiple_of(16);
        let next = if i + 1 == pkts.len() { 0 } else { len as u32 };
        let put = |b: &mut Vec<u8>, at: usize, v: &[u8]| {
            b[off + at..off + at + v.len()].copy_from_slice(v)
        };
        put(&mut b, PKT_NEXT, &next.to_ne_bytes());
        put(&mut b, PKT_SEC, &sec.to_ne_bytes());
        put(&mut b, PKT_NSEC, &nsec.to_ne_bytes());
        put(&mut b, PKT_SNAPLEN, &(data.len() as u32).to_ne_bytes());
        put(&mut b, PKT_LEN, &(data.len() as u32 + 100).to_ne_bytes());
        put(&mut b, PKT_MAC, &mac.to_ne_bytes());
        put(&mut b, PKT_PKTTYPE, &[pkttype]);
        put(&mut b, mac as usize, data);
        off += len;
    }
    b
}

fn collect(b: &[u8], snaplen: u32) -> (Vec<(u64, u32, Vec<u8>)>, BlockWalk) {
    collect_skipping(b, snaplen, false)
}

fn collect_skipping(
    b: &[u8],
    snaplen: u32,
    skip_outgoing: bool,
) -> (Vec<(u64, u32, Vec<u8>)>, BlockWalk) {
    let mut out = Vec::new();
    let walk = walk_block(
        b,
        LinkType::Ethernet,
        snaplen,
        skip_outgoing,
        &mut |f: Frame<'_>| out.push((f.ts_nanos, f.orig_len, f.data.to_vec())),
    );
    (out, walk)
}

#[test]
fn walks_every_packet() {
    let b = block(&[(b"abc", 1, 2), (&[7; 60], 3, 999_999_999)], 4096);
    let (out, walk) = collect(&b, 256);
    assert_eq!(
        walk,
        BlockWalk {
            frames: 2,
            outgoing: 0,
            malformed: false
        }
    );
    assert_eq!(out[0], (1_000_000_002, 103, b"abc".to_vec()));
    assert_eq!(out[1], (3_999_999_999, 160, vec![7; 60]));
}

/// Loopback shows each frame leaving and coming back: the outgoing copy is skipped when
/// asked, and only then.
#[test]
fn skips_outgoing_copies_when_asked() {
    let b = block_typed(
        &[
            (b"one", 1, 0, libc::PACKET_OUTGOING),
            (b"one", 1, 1, libc::PACKET_HOST),
            (b"two", 2, 0, libc::PACKET_OUTGOING),
            (b"two", 2, 1, libc::PACKET_OTHERHOST),
        ],
        4096,
    );
    let (out, walk) = collect_skipping(&b, 256, true);
    assert_eq!((walk.frames, walk.outgoing, walk.malformed), (2, 2, false));
    assert_eq!(out[0], (1_000_000_001, 103, b"one".to_vec()));
    assert_eq!(out[1], (2_000_000_001, 103, b"two".to_vec()));
    let (out, walk) = collect_skipping(&b, 256, false);
    assert_eq!((out.len(), walk.outgoing), (4, 0));
}

/// Each errno becomes the error that says what is wrong.
#[test]
fn errors_say_what_is_wrong() {
    let e = |n| classify("eth9", "bind", std::io::Error::from_raw_os_error(n));
    assert!(matches!(e(libc::ENODEV), CaptureError::NoSuchInterface(ref n) if n == "eth9"));
    assert!(matches!(e(libc::ENXIO), CaptureError::NoSuchInterface(_)));
    for n in [libc::EPERM, libc::EACCES] {
        let err = e(n);
        assert!(
            matches!(err, CaptureError::PermissionDenied { ref iface, op: "bind", .. } if iface == "eth9"),
            "{err}"
        );
        assert!(err.to_string().contains("CAP_NET_RAW"), "{err}");
    }
    assert!(matches!(
        e(libc::ENETDOWN),
        CaptureError::InterfaceDown { .. }
    ));
    let err = e(libc::ENOMEM);
    assert!(matches!(err, CaptureError::Live { .. }), "{err}");
    assert!(!err.to_string().contains("CAP_NET_RAW"), "{err}");
}

#[test]
fn clamps_to_snaplen() {
    let b = block(&[(&[1; 100], 0, 0)], 4096);
    let (out, _) = collect(&b, 10);
    assert_eq!(out[0].2, vec![1; 10]);
}

#[test]
fn empty_block() {
    let b = block(&[], 4096);
    assert_eq!(
        collect(&b, 256).1,
        BlockWalk {
            frames: 0,
            outgoing: 0,
            malformed: false
        }
    );
}

#[test]
fn malformed_entries_never_panic() {
    let good = block(&[(b"abcd", 0, 0), (b"efgh", 0, 0)], 1024);
    // Corrupt each 16-bit window in the used area with extreme values; every walk must
    // stay in bounds and deliver at most the packets the block claims.
    for at in (BLK_NUM_PKTS..300).step_by(2) {
        for v in [0u8, 0xff, 0x7f] {
            let mut b = good.clone();
            b[at] = v;
            b[at + 1] = v;
            let (out, walk) = collect(&b, 256);
            assert_eq!(out.len(), walk.frames);
        }
    }
    // A count larger than the chain: the walk stops at the zero next-offset.
    let mut b = good.clone();
    b[BLK_NUM_PKTS..BLK_NUM_PKTS + 4].copy_from_slice(&u32::MAX.to_ne_bytes());
    let (out, walk) = collect(&b, 256);
    assert_eq!((out.len(), walk.malformed), (2, true));
    // A truncated block (shorter than the descriptor).
    assert!(collect(&good[..10], 256).1.malformed);
}

#[test]
fn arphrd_mapping() {
    assert_eq!(link_from_arphrd(1), LinkType::Ethernet);
    assert_eq!(link_from_arphrd(772), LinkType::Ethernet);
    assert_eq!(link_from_arphrd(65534), LinkType::Raw);
    assert_eq!(link_from_arphrd(24), LinkType::Other(24));
}

#[test]
fn config_validation() {
    let page = 4096;
    assert!(LiveConfig::default().validate(page).is_ok());
    let bad = [
        LiveConfig {
            block_size: 1000,
            ..LiveConfig::default()
        },
        LiveConfig {
            block_count: 0,
            ..LiveConfig::default()
        },
        LiveConfig {
            frame_size: 2047,
            ..LiveConfig::default()
        },
        LiveConfig {
            snaplen: 0,
            ..LiveConfig::default()
        },
    ];
    for c in bad {
        assert!(
            matches!(c.validate(page), Err(CaptureError::Config(_))),
            "{c:?}"
        );
    }
    assert_eq!(LiveConfig::default().validate(page).unwrap(), 512 * 64);
}

#[test]
fn missing_interface_is_typed() {
    let e = LiveSource::open("ashiato-nope0", &LiveConfig::default()).unwrap_err();
    assert!(
        matches!(e, CaptureError::NoSuchInterface(ref n) if n == "ashiato-nope0"),
        "{e}"
    );
    let e = LiveSource::open("name-longer-than-ifnamsiz", &LiveConfig::default());
    assert!(matches!(e, Err(CaptureError::NoSuchInterface(_))));
}
