//! Live capture through a veth pair between two network namespaces (Linux, root).
//!
//! Namespace A sends with [`RawSender`], namespace B captures with [`LiveSource`]. These tests
//! fail, never skip, when namespaces cannot be made: CI runs them as root, and a silently
//! skipped capture test would hide a broken ring.

use std::collections::HashMap;
use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ashiato_capture::live::{LiveConfig, LiveSource};
use ashiato_capture::send::RawSender;
use ashiato_wire::LinkType;
use ashiato_wire::build::ipv4_udp_frame;

/// Marks the test frames in the UDP payload, so stray traffic cannot be mistaken for them.
const MAGIC: &[u8; 8] = b"ashiato!";

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("running `ip` (iproute2 is required)");
    assert!(
        out.status.success(),
        "ip {}: {} (these tests need root)",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// Two namespaces joined by a veth pair, deleted on drop (also when a test fails).
struct Lab {
    ns_a: String,
    ns_b: String,
    if_a: String,
    if_b: String,
}

impl Lab {
    fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let (pid, n) = (std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        let lab = Lab {
            ns_a: format!("ash-cap-a-{pid}-{n}"),
            ns_b: format!("ash-cap-b-{pid}-{n}"),
            // Interface names are limited to 15 bytes; they only need to be unique inside
            // their namespace, but stay distinct for readable `ip` errors.
            if_a: format!("vca{}x{n}", pid % 100_000),
            if_b: format!("vcb{}x{n}", pid % 100_000),
        };
        ip(&["netns", "add", &lab.ns_a]);
        // From here on `Drop` cleans up whatever was made.
        ip(&["netns", "add", &lab.ns_b]);
        ip(&[
            "link", "add", &lab.if_a, "netns", &lab.ns_a, "type", "veth", "peer", "name",
            &lab.if_b, "netns", &lab.ns_b,
        ]);
        for (ns, ifname) in [(&lab.ns_a, &lab.if_a), (&lab.ns_b, &lab.if_b)] {
            // No IPv6: keeps router solicitations and MLD reports off the link.
            let sysctl = format!("net.ipv6.conf.{ifname}.disable_ipv6=1");
            ip(&["netns", "exec", ns, "sysctl", "-qw", &sysctl]);
            ip(&["-n", ns, "link", "set", ifname, "up"]);
        }
        lab
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in [&self.ns_a, &self.ns_b] {
            let _ = Command::new("ip").args(["netns", "delete", ns]).output();
        }
    }
}

/// Runs `f` on a dedicated thread that has entered network namespace `name`; sockets made
/// there stay in that namespace for their whole life.
fn in_netns<T: Send>(name: &str, f: impl FnOnce() -> T + Send) -> T {
    let ns = File::open(format!("/var/run/netns/{name}")).expect("opening the namespace");
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: setns changes only this thread's network namespace; `ns` is open.
            let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
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
    ip(&[
        "-n",
        &lab.ns_a,
        "addr",
        "add",
        "10.9.0.1/24",
        "dev",
        &lab.if_a,
    ]);
    ip(&[
        "-n",
        &lab.ns_a,
        "neigh",
        "add",
        "10.9.0.2",
        "lladdr",
        "02:00:00:00:00:02",
        "dev",
        &lab.if_a,
    ]);
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

/// Throughput measurement, not a check: `cargo test --release -p ashiato-capture --test live
/// -- --ignored --nocapture throughput`.
#[test]
#[ignore = "measurement; run by hand in release mode"]
fn throughput() {
    const N: u64 = 1_000_000;
    let lab = Lab::new();
    let frames: Vec<Vec<u8>> = (0..4096).map(frame).collect();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let ready = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let reader = s.spawn(|| {
            in_netns(&lab.ns_b, || {
                let mut src = LiveSource::open(&lab.if_b, &LiveConfig::default()).expect("open");
                ready.store(true, Ordering::Release);
                let (mut got, mut idle) = (0u64, 0);
                while idle < 3 {
                    let n = src
                        .poll_frames(Duration::from_millis(30), |f| {
                            got += u64::from(counter(f.data).is_some())
                        })
                        .expect("poll");
                    if stop.load(Ordering::Acquire) && n == 0 {
                        idle += 1;
                    }
                }
                (got, src.kernel_stats().expect("stats"))
            })
        });
        while !ready.load(Ordering::Acquire) {
            std::thread::yield_now();
        }
        let rep = in_netns(&lab.ns_a, || {
            RawSender::open(&lab.if_a)
                .expect("open sender")
                .blast(&frames, N, 0)
                .expect("blast")
        });
        stop.store(true, Ordering::Release);
        let (got, k) = reader.join().unwrap();
        println!(
            "sent {} in {:?} ({:.0} pps, {} retried); captured {got}; kernel {k:?}",
            rep.sent, rep.elapsed, rep.achieved_pps, rep.errors
        );
    });
}
