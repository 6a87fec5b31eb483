//! The federation end to end on live links (needs root; CI runs as root, so this fails rather
//! than skips without it).
//!
//! Three domains in three network namespaces, joined by veth pairs and routed:
//!
//! ```text
//!   C (AS64503) c0 ── bc  B (AS64502, forwards)  ba ── a0  A (AS64501, victim)
//!   10.182.1.1           10.182.1.2   10.182.2.1          10.182.2.2
//! ```
//!
//! Each domain runs `ashiato probe run --iface` on its ends of the links and an
//! `ashiato controller` process. A raw IP socket in C sends a packet with a spoofed source to
//! A; `ashiato trace` in A, given only its digest and time, must find the path A ← B ← C.

mod common;

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use ashiato_capture::netns::{Netns, in_netns, spawn_in_netns, unique_name, veth_pair};
use ashiato_wire::LinkType;
use ashiato_wire::packet::TcpFlags;
use common::{Server, stderr, stdout};

/// Runs `ashiato ARGS` inside namespace `ns` and waits for its `listening on` line.
fn spawn_in(ns: &Netns, args: &[&str]) -> Server {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns.name(), env!("CARGO_BIN_EXE_ashiato")])
        .args(args)
        .env_remove("ASHIATO_KEY_FILE")
        .env_remove("ASHIATO_TLS_DIR")
        .stderr(Stdio::null());
    common::spawn_listening(cmd)
}

fn probe_on(ns: &Netns, iface: &str, pki: &Path, key: &Path) -> Server {
    spawn_in(
        ns,
        &[
            "probe",
            "run",
            "--iface",
            iface,
            "--listen",
            "127.0.0.1:0",
            "--print-addr",
            "--rate",
            "10kpps",
            "--tls-dir",
            pki.to_str().unwrap(),
            "--identity",
            "probe",
            "--key-file",
            key.to_str().unwrap(),
        ],
    )
}

/// A domain file: `probes` are (name, address, watches), `neighbours` (asn, controller).
fn domain(
    dir: &Path,
    asn: u32,
    probes: &[(&str, &str, &str)],
    neighbours: &[(u32, &str)],
) -> std::path::PathBuf {
    let mut t = format!(
        "[domain]\nasn = {asn}\nlisten = \"0.0.0.0:0\"\nkey_file = \"fed.key\"\n[tls]\ndir = \"pki\"\nname = \"as{asn}\"\n[trace]\ndeadline_ms = 3000\nuncertainty_ms = 300\n"
    );
    for (name, addr, watches) in probes {
        t.push_str(&format!(
            "[[probe]]\nname = \"{name}\"\naddress = \"{addr}\"\nwatches = \"{watches}\"\n"
        ));
    }
    for (n, ctl) in neighbours {
        t.push_str(&format!(
            "[[neighbour]]\nasn = {n}\ncontroller = \"{ctl}\"\n"
        ));
    }
    let p = dir.join(format!("as{asn}.toml"));
    std::fs::write(&p, t).unwrap();
    p
}

/// The port of a `0.0.0.0:PORT` address.
fn port(addr: &str) -> &str {
    addr.rsplit_once(':').unwrap().1
}

/// Sends `ip` (a whole IPv4 packet, header included) from a raw socket: the kernel routes it
/// as is, spoofed source and all.
fn send_raw_ip(ip: &[u8], dst: Ipv4Addr) {
    // SAFETY: plain socket calls on a descriptor we own and close; the buffer and address
    // are valid for the duration of the call.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW);
        assert!(fd >= 0, "raw socket: {}", std::io::Error::last_os_error());
        let sa = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from(dst).to_be(),
            },
            sin_zero: [0; 8],
        };
        let n = libc::sendto(
            fd,
            ip.as_ptr().cast(),
            ip.len(),
            0,
            (&sa as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        let err = std::io::Error::last_os_error();
        libc::close(fd);
        assert_eq!(n, ip.len() as isize, "sendto: {err}");
    }
}

#[test]
fn a_spoofed_packet_is_traced_across_three_live_domains() {
    let c = Netns::new(&unique_name("fc")).expect("ip netns add (root needed)");
    let b = Netns::new(&unique_name("fb")).unwrap();
    let a = Netns::new(&unique_name("fa")).unwrap();
    veth_pair(&c, "c0", &b, "bc", Some(("10.182.1.1/24", "10.182.1.2/24"))).unwrap();
    veth_pair(&b, "ba", &a, "a0", Some(("10.182.2.1/24", "10.182.2.2/24"))).unwrap();
    c.exec(&["ip", "route", "add", "10.182.2.0/24", "via", "10.182.1.2"])
        .unwrap();
    a.exec(&["ip", "route", "add", "10.182.1.0/24", "via", "10.182.2.1"])
        .unwrap();
    b.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]).unwrap();
    // The source is spoofed: B must forward it although no route leads back to it.
    for k in ["all", "default", "bc", "ba"] {
        b.exec(&["sysctl", "-qw", &format!("net.ipv4.conf.{k}.rp_filter=0")])
            .unwrap();
    }

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pki = d.join("pki");
    let mut ca = vec![
        "ca",
        "init",
        "--dir",
        pki.to_str().unwrap(),
        "--federation",
        "netns",
        "--asn",
        "64501",
        "--asn",
        "64502",
        "--asn",
        "64503",
        "--name",
        "probe",
        "--name",
        "operator",
    ];
    for san in ["10.182.1.1", "10.182.1.2", "10.182.2.1", "10.182.2.2"] {
        ca.extend(["--san", san]);
    }
    let o = common::run(&ca);
    assert!(o.status.success(), "{}", stderr(&o));
    let key = d.join("fed.key");
    assert!(
        common::run(&["key", "generate", "--out", key.to_str().unwrap()])
            .status
            .success()
    );
    let key_text = std::fs::read_to_string(&key).unwrap();
    let fed_key: ashiato_digest::Key = key_text.trim().parse().unwrap();

    // Links are never idle: background datagrams C → A every 20 ms, so each probe records
    // every epoch and can vouch for "not seen" (an idle link's epochs are not recorded).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let chatter = {
        let stop = stop.clone();
        spawn_in_netns(c.name(), move || {
            let s = std::net::UdpSocket::bind("10.182.1.1:0").unwrap();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = s.send_to(b"background", "10.182.2.2:9");
                std::thread::sleep(Duration::from_millis(20));
            }
        })
        .unwrap()
    };
    let pc = probe_on(&c, "c0", &pki, &key);
    let pbc = probe_on(&b, "bc", &pki, &key);
    let pba = probe_on(&b, "ba", &pki, &key);
    let pa = probe_on(&a, "a0", &pki, &key);

    // C first (it only decides), then B (asks C), then A (asks B).
    let cc = spawn_in(
        &c,
        &[
            "controller",
            "--print-addr",
            "--config",
            domain(
                d,
                64503,
                &[("c-b", &pc.1, "link:64502")],
                &[(64502, "10.182.1.2:1")],
            )
            .to_str()
            .unwrap(),
        ],
    );
    let c_addr = format!("10.182.1.1:{}", port(&cc.1));
    let cb = spawn_in(
        &b,
        &[
            "controller",
            "--print-addr",
            "--config",
            domain(
                d,
                64502,
                &[("b-c", &pbc.1, "link:64503"), ("b-a", &pba.1, "link:64501")],
                &[(64503, &c_addr), (64501, "10.182.2.2:1")],
            )
            .to_str()
            .unwrap(),
        ],
    );
    let b_addr = format!("10.182.2.1:{}", port(&cb.1));
    let ca_ = spawn_in(
        &a,
        &[
            "controller",
            "--print-addr",
            "--config",
            domain(
                d,
                64501,
                &[("a-b", &pa.1, "link:64502")],
                &[(64502, &b_addr)],
            )
            .to_str()
            .unwrap(),
        ],
    );

    // The probes must hold the whole window around the packet (±300 ms + 100 ms skew):
    // recording started when they printed their address; let two epochs pass first.
    std::thread::sleep(Duration::from_millis(2000));
    let frame = ashiato_wire::build::ipv4_tcp_frame(
        Ipv4Addr::new(203, 0, 113, 66), // spoofed
        Ipv4Addr::new(10, 182, 2, 2),
        31337,
        80,
        0x5eed,
        0,
        TcpFlags::SYN,
        0x4242,
        &[],
    );
    let digest = fed_key
        .digest_frame(LinkType::Ethernet, &frame)
        .unwrap()
        .to_string();
    let sent_ns = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    in_netns(c.name(), || {
        send_raw_ip(&frame[14..], Ipv4Addr::new(10, 182, 2, 2))
    })
    .unwrap();
    // And until the window's end is recorded (the epoch after it has begun).
    std::thread::sleep(Duration::from_millis(1500));

    let o = Command::new("ip")
        .args(["netns", "exec", a.name(), env!("CARGO_BIN_EXE_ashiato")])
        .args([
            "trace",
            "--controller",
            &format!("127.0.0.1:{}", port(&ca_.1)),
        ])
        .args(["--digest", &digest, "--time", &sent_ns.to_string()])
        .args([
            "--tls-dir",
            pki.to_str().unwrap(),
            "--key-file",
            key.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
    assert!(out.contains("origin AS64503: 1 packet"), "{out}");
    assert!(
        out.contains("packet 0: AS64501 → AS64502 → AS64503  [origin AS64503, chance false "),
        "{out}"
    );
    assert!(out.contains("probe b-c seen"), "{out}");
    // Without the federation key the trace is refused, naming both table ids: digests of
    // the demo key match nothing here, and "nothing matched" must never become an origin.
    let o = Command::new("ip")
        .args(["netns", "exec", a.name(), env!("CARGO_BIN_EXE_ashiato")])
        .args([
            "trace",
            "--controller",
            &format!("127.0.0.1:{}", port(&ca_.1)),
        ])
        .args(["--digest", &digest, "--time", &sent_ns.to_string()])
        .args(["--tls-dir", pki.to_str().unwrap()])
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{}{err}", stdout(&o));
    let ours = fed_key.table_id_hex();
    assert!(
        err.contains(&ours) && err.contains(&ashiato_digest::DEMO_KEY.table_id_hex()),
        "{err}"
    );
    // A digest nobody sent, inside the recorded window: not seen anywhere, never an origin
    // (exit 4, a gap).
    let o = Command::new("ip")
        .args(["netns", "exec", a.name(), env!("CARGO_BIN_EXE_ashiato")])
        .args([
            "trace",
            "--controller",
            &format!("127.0.0.1:{}", port(&ca_.1)),
        ])
        .args(["--digest", &"ab".repeat(16), "--time", &sent_ns.to_string()])
        .args([
            "--tls-dir",
            pki.to_str().unwrap(),
            "--key-file",
            key.to_str().unwrap(),
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4), "{}{}", stdout(&o), stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["graph"]["origins"], serde_json::json!([]));
    assert_eq!(
        v["graph"]["paths"][0]["end"]["reason"],
        serde_json::json!("not_seen_anywhere")
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    chatter.join().unwrap().unwrap();
    drop((ca_, cb, cc, pa, pba, pbc, pc));
}
