//! Live capture through a veth pair between two network namespaces (Linux, root).
//!
//! Namespace A sends with [`RawSender`], namespace B captures with [`LiveSource`]. These tests
//! fail, never skip, when namespaces cannot be made: CI runs them as root, and a silently
//! skipped capture test would hide a broken ring.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ashiato_capture::live::{LiveConfig, LiveSource};
use ashiato_capture::netns::{self, Netns, unique_name, veth_pair};
use ashiato_capture::send::RawSender;
use ashiato_wire::LinkType;
use ashiato_wire::build::ipv4_udp_frame;

/// Marks the test frames in the UDP payload, so stray traffic cannot be mistaken for them.
const MAGIC: &[u8; 8] = b"ashiato!";

/// Two namespaces joined by a veth pair; both are deleted on drop (also when a test fails).
struct Lab {
    ns_a: Netns,
    ns_b: Netns,
    if_a: String,
    if_b: String,
}

impl Lab {
    fn new() -> Self {
        let ns_a = Netns::new(&unique_name("ashca")).expect("ip netns add (these tests need root)");
        let ns_b = Netns::new(&unique_name("ashcb")).expect("ip netns add");
        let (if_a, if_b) = (unique_name("vca"), unique_name("vcb"));
        veth_pair(&ns_a, &if_a, &ns_b, &if_b, None).expect("veth pair");
        Lab {
            ns_a,
            ns_b,
            if_a,
            if_b,
        }
    }
}

/// Runs `f` inside namespace `ns` (see [`ashiato_capture::netns::in_netns`]).
fn in_netns<T: Send>(ns: &Netns, f: impl FnOnce() -> T + Send) -> T {
    netns::in_netns(ns.name(), f).expect("entering the namespace")
}

/// Test frame `i`: IPv4/UDP, payload = magic + counter + filler, so each frame is distinct.
fn frame(i: u32) -> Vec<u8> {
    let mut payload = MAGIC.to_vec();
    payload.extend_from_slice(&i.to_be_bytes());
    payload.extend((0..(i % 23)).map(|k| k as u8));
    ipv4_udp_frame(
        Ipv4Addr::new(10, 9, 0, 1),
        Ipv4Addr::new(10, 9, 0, 2),
        40_000 + (i % 1000) as u16,
        9,
        i as u16,
        &payload,
    )
}

/// The counter of a test frame, or `None` for other traffic.
fn counter(data: &[u8]) -> Option<u32> {
    // Ethernet 14 + IPv4 20 + UDP 8.
    let p = data.get(42..54)?;
    (p[..8] == MAGIC[..]).then(|| u32::from_be_bytes(p[8..12].try_into().unwrap()))
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

#[test]
fn every_frame_arrives_once_with_its_bytes() {
    const N: u32 = 10_000;
    let lab = Lab::new();
    let frames: Vec<Vec<u8>> = (0..N).map(frame).collect();
    let if_b = lab.if_b.clone();
    let mut src = in_netns(&lab.ns_b, || {
        LiveSource::open(&if_b, &LiveConfig::default()).expect("open live source")
    });
    assert_eq!(src.iface(), lab.if_b);
    assert_eq!(src.link_type(), LinkType::Ethernet);

    let t0 = now_nanos();
    let report = in_netns(&lab.ns_a, || {
        let mut tx = RawSender::open(&lab.if_a).expect("open sender");
        // The first frame alone through `send`, the rest paced at a rate the ring absorbs
        // even without a concurrent reader.
        tx.send(&frames[0]).expect("send");
        tx.blast(&frames[1..], u64::from(N - 1), 100_000)
            .expect("blast")
    });
    assert_eq!(report.sent, u64::from(N - 1));

    let mut seen: HashMap<u32, usize> = HashMap::new();
    let mut last_ts = 0u64;
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.len() < N as usize && Instant::now() < deadline {
        src.poll_frames(Duration::from_millis(50), |f| {
            let Some(i) = counter(f.data) else { return };
            assert_eq!(f.link, LinkType::Ethernet);
            assert_eq!(f.data, &frames[i as usize][..], "bytes of frame {i}");
            assert_eq!(f.orig_len as usize, frames[i as usize].len());
            assert!(f.ts_nanos >= last_ts, "timestamps go back at frame {i}");
            last_ts = f.ts_nanos;
            assert!(
                f.ts_nanos + 1_000_000_000 >= t0 && f.ts_nanos <= now_nanos() + 1_000_000_000,
                "implausible timestamp {} for frame {i}",
                f.ts_nanos
            );
            *seen.entry(i).or_default() += 1;
        })
        .expect("poll");
    }
    let missing: Vec<u32> = (0..N).filter(|i| !seen.contains_key(i)).take(10).collect();
    assert!(
        missing.is_empty(),
        "{} of {N} frames missing, first {missing:?}",
        N as usize - seen.len()
    );
    let dup: Vec<_> = seen.iter().filter(|&(_, &c)| c != 1).take(10).collect();
    assert!(dup.is_empty(), "frames seen more than once: {dup:?}");
    // Nothing further arrives.
    let extra = src
        .poll_frames(Duration::from_millis(50), |f| {
            assert!(counter(f.data).is_none(), "late duplicate")
        })
        .expect("poll");
    let _ = extra;

    let k = src.kernel_stats().expect("stats");
    assert!(k.packets >= u64::from(N), "{k:?}");
    assert_eq!(k.drops, 0, "{k:?}");
    assert_eq!(src.malformed_blocks(), 0);
    // Counters are totals: a second read without traffic keeps them.
    assert_eq!(src.kernel_stats().expect("stats").packets, k.packets);
}

#[test]
fn a_full_ring_reports_drops() {
    const N: u64 = 50_000;
    let lab = Lab::new();
    let frames: Vec<Vec<u8>> = (0..N as u32).map(frame).collect();
    // Two one-page blocks hold a few dozen frames; nobody reads while the blast runs.
    let cfg = LiveConfig {
        block_size: 4096,
        block_count: 2,
        ..LiveConfig::default()
    };
    let mut src = in_netns(&lab.ns_b, || {
        LiveSource::open(&lab.if_b, &cfg).expect("open")
    });
    let report = in_netns(&lab.ns_a, || {
        RawSender::open(&lab.if_a)
            .expect("open sender")
            .blast(&frames, N, 0)
            .expect("blast")
    });
    assert_eq!(report.sent, N);

    let mut captured = 0u64;
    let mut idle = 0;
    while idle < 3 {
        let mut ours = 0;
        let n = src
            .poll_frames(Duration::from_millis(30), |f| {
                if counter(f.data).is_some() {
                    ours += 1;
                }
            })
            .expect("poll");
        captured += ours;
        idle = if n == 0 { idle + 1 } else { 0 };
    }
    let k = src.kernel_stats().expect("stats");
    assert!(k.drops > 0, "no drops reported: {k:?}, captured {captured}");
    assert!(k.freezes > 0, "{k:?}");
    assert!(k.packets >= N, "{k:?}");
    assert!(captured < N, "captured {captured} of {N} with a tiny ring");
    // Every frame that reached the socket was either delivered or counted as dropped.
    assert!(captured + k.drops >= N, "{k:?}, captured {captured}");
}

#[test]
fn fanout_group_splits_the_traffic() {
    use ashiato_capture::live::FanoutMode;
    const N: u32 = 2_000;
    let lab = Lab::new();
    let frames: Vec<Vec<u8>> = (0..N).map(frame).collect();
    let cfg = LiveConfig {
        block_size: 1 << 16,
        block_count: 8,
        fanout: Some((std::process::id() as u16, FanoutMode::LoadBalance)),
        ..LiveConfig::default()
    };
    let mut srcs = in_netns(&lab.ns_b, || {
        [0, 1].map(|_| LiveSource::open(&lab.if_b, &cfg).expect("open fanout member"))
    });
    in_netns(&lab.ns_a, || {
        RawSender::open(&lab.if_a)
            .expect("open sender")
            .blast(&frames, u64::from(N), 100_000)
            .expect("blast")
    });
    let mut counts = [0usize; 2];
    let deadline = Instant::now() + Duration::from_secs(5);
    while counts.iter().sum::<usize>() < N as usize && Instant::now() < deadline {
        for (src, c) in srcs.iter_mut().zip(counts.iter_mut()) {
            src.poll_frames(Duration::from_millis(20), |f| {
                if counter(f.data).is_some() {
                    *c += 1;
                }
            })
            .expect("poll");
        }
    }
    assert_eq!(counts.iter().sum::<usize>(), N as usize, "{counts:?}");
    assert!(
        counts.iter().all(|&c| c > 0),
        "one member got nothing: {counts:?}"
    );
}

#[test]
fn outgoing_packets_are_kept_unless_ignored() {
    let lab = Lab::new();
    // A static neighbour, so the datagrams go out without an ARP exchange.
    lab.ns_a
        .exec(&["ip", "addr", "add", "10.9.0.1/24", "dev", &lab.if_a])
        .expect("address");
    lab.ns_a
        .exec(&[
            "ip",
            "neigh",
            "add",
            "10.9.0.2",
            "lladdr",
            "02:00:00:00:00:02",
            "dev",
            &lab.if_a,
        ])
        .expect("static neighbour");
    let counts = in_netns(&lab.ns_a, || {
        let open = |ignore_outgoing| {
            let cfg = LiveConfig {
                block_size: 1 << 16,
                block_count: 4,
                ignore_outgoing,
                ..LiveConfig::default()
            };
            LiveSource::open(&lab.if_a, &cfg).expect("open")
        };
        let mut srcs = [open(false), open(true)];
        let udp = std::net::UdpSocket::bind("10.9.0.1:0").expect("bind udp");
        for i in 0..5u32 {
            let mut payload = MAGIC.to_vec();
            payload.extend_from_slice(&i.to_be_bytes());
            udp.send_to(&payload, "10.9.0.2:9").expect("send_to");
        }
        srcs.each_mut().map(|src| {
            let mut ours = 0;
            for _ in 0..3 {
                src.poll_frames(Duration::from_millis(30), |f| {
                    ours += usize::from(counter(f.data).is_some())
                })
                .expect("poll");
            }
            ours
        })
    });
    assert_eq!(counts, [5, 0], "[kept, ignored]");
}

/// On `lo` every frame passes the socket twice (leaving, then coming back in): by default the
/// outgoing copy is skipped, so N datagrams are N frames; kept, they are 2N.
#[test]
fn loopback_frames_are_seen_once() {
    const N: u32 = 200;
    let ns = Netns::new(&unique_name("ashlo")).expect("ip netns add (these tests need root)");
    let [once, twice] = in_netns(&ns, || {
        let open = |skip_loopback_outgoing| {
            let cfg = LiveConfig {
                block_size: 1 << 16,
                block_count: 8,
                skip_loopback_outgoing,
                ..LiveConfig::default()
            };
            LiveSource::open("lo", &cfg).expect("open lo")
        };
        let mut srcs = [open(true), open(false)];
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind receiver");
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind sender");
        for i in 0..N {
            let mut payload = MAGIC.to_vec();
            payload.extend_from_slice(&i.to_be_bytes());
            tx.send_to(&payload, rx.local_addr().unwrap())
                .expect("send_to");
        }
        // Wait until each source has every datagram at least once (the skipping one) or
        // twice (the other), then take one more pass for any late extra copy.
        let mut seen = [HashMap::<u32, usize>::new(), HashMap::new()];
        let deadline = Instant::now() + Duration::from_secs(10);
        let done = |seen: &[HashMap<u32, usize>; 2]| {
            seen[0].len() == N as usize && seen[1].values().sum::<usize>() >= 2 * N as usize
        };
        while !done(&seen) && Instant::now() < deadline {
            for (src, seen) in srcs.iter_mut().zip(seen.iter_mut()) {
                src.poll_frames(Duration::from_millis(20), |f| {
                    if let Some(i) = counter(f.data) {
                        *seen.entry(i).or_default() += 1;
                    }
                })
                .expect("poll");
            }
        }
        for (src, seen) in srcs.iter_mut().zip(seen.iter_mut()) {
            src.poll_frames(Duration::from_millis(20), |f| {
                if let Some(i) = counter(f.data) {
                    *seen.entry(i).or_default() += 1;
                }
            })
            .expect("poll");
        }
        assert!(srcs[0].skipped_outgoing() >= u64::from(N));
        assert_eq!(srcs[1].skipped_outgoing(), 0);
        seen.map(|s| (s.len(), s.values().sum::<usize>()))
    });
    assert_eq!(
        once,
        (N as usize, N as usize),
        "(distinct, frames) skipping outgoing"
    );
    assert_eq!(
        twice,
        (N as usize, 2 * N as usize),
        "(distinct, frames) keeping them"
    );
}
