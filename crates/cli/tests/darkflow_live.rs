//! Passive DarkFlow detection on a live interface, between two network namespaces (needs
//! root; CI runs as root, so this fails rather than skips without it).
//!
//! Host A connects to B: port 80 answers (SYN/ACK), port 81 is closed (RST), port 9999 is
//! firewalled silently. `ashiato darkflow --iface` watches B's end of the link and must report
//! exactly the connections to 9999, as events and in its Prometheus metrics.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use ashiato_capture::netns::{Netns, in_netns, unique_name, veth_pair};

#[test]
fn live_interface_reports_exactly_the_silent_connections() {
    let a = Netns::new(&unique_name("dla")).expect("ip netns add (root needed)");
    let b = Netns::new(&unique_name("dlb")).unwrap();
    let tag = unique_name("");
    let b_if = format!("lb{tag}");
    veth_pair(
        &a,
        "la0",
        &b,
        &b_if,
        Some(("10.181.0.1/24", "10.181.0.2/24")),
    )
    .unwrap();
    b.exec(&[
        "iptables", "-w", "-A", "INPUT", "-p", "tcp", "--dport", "9999", "-j", "DROP",
    ])
    .unwrap();
    let listener = in_netns(b.name(), || TcpListener::bind("10.181.0.2:80"))
        .unwrap()
        .unwrap();
    std::thread::spawn(move || {
        for s in listener.incoming().map_while(Result::ok) {
            let mut s = s;
            let _ = s.write_all(b"hi\n");
        }
    });

    let mut child = Command::new("ip")
        .args([
            "netns",
            "exec",
            b.name(),
            env!("CARGO_BIN_EXE_ashiato"),
            "darkflow",
            "--iface",
            &b_if,
        ])
        .args([
            "--timeout",
            "1s",
            "--json",
            "--duration",
            "5s",
            "--summary-every",
            "1s",
        ])
        .args(["--metrics-listen", "127.0.0.1:0", "--dev-insecure"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut metrics_addr = None;
    for _ in 0..4 {
        let mut l = String::new();
        err.read_line(&mut l).unwrap();
        if let Some(addr) = l.strip_prefix("metrics on ") {
            metrics_addr = Some(addr.trim().parse::<SocketAddr>().unwrap());
        }
        if l.starts_with("watching") {
            break;
        }
        assert!(!l.is_empty(), "watcher ended early");
    }
    let metrics_addr = metrics_addr.expect("metrics address line");
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));

    let ports = in_netns(a.name(), || {
        let mut silent_ports = Vec::new();
        let mut s = TcpStream::connect("10.181.0.2:80").expect("port 80 answers");
        let mut buf = [0u8; 3];
        s.read_exact(&mut buf).unwrap();
        assert!(
            TcpStream::connect("10.181.0.2:81").is_err(),
            "port 81 is closed"
        );
        for _ in 0..3 {
            let to: SocketAddr = "10.181.0.2:9999".parse().unwrap();
            let sock = socket_for(&to);
            silent_ports.push(sock);
        }
        silent_ports
    })
    .unwrap();

    std::thread::sleep(Duration::from_millis(2500));
    let page = in_netns(b.name(), move || {
        let mut s = TcpStream::connect(metrics_addr).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut page = String::new();
        s.read_to_string(&mut page).unwrap();
        page
    })
    .unwrap();
    assert!(
        page.contains("\nashiato_darkflow_darkflows_total 3\n"),
        "{page}"
    );
    assert!(
        page.contains("\nashiato_darkflow_answered_synack_total 1\n"),
        "{page}"
    );
    assert!(
        page.contains("\nashiato_darkflow_answered_rst_total 1\n"),
        "{page}"
    );

    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut dark: Vec<u64> = events
        .iter()
        .filter(|e| e["event"] == "darkflow")
        .map(|e| {
            assert_eq!(e["dport"], 9999);
            assert_eq!(e["complete"], true);
            e["sport"].as_u64().unwrap()
        })
        .collect();
    dark.sort_unstable();
    let mut want: Vec<u64> = ports.iter().map(|p| u64::from(p.1)).collect();
    want.sort_unstable();
    assert_eq!(dark, want);
    assert!(
        events.iter().any(|e| e["event"] == "summary"),
        "periodic summaries"
    );
}

/// Starts a non-blocking connect (its SYN goes out) and returns the socket with its port.
fn socket_for(to: &SocketAddr) -> (std::os::fd::OwnedFd, u16) {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket calls on descriptors we own.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_NONBLOCK, 0);
        assert!(fd >= 0);
        let SocketAddr::V4(v4) = to else {
            panic!("IPv4 only")
        };
        let mut sa: libc::sockaddr_in = std::mem::zeroed();
        sa.sin_family = libc::AF_INET as libc::sa_family_t;
        sa.sin_port = v4.port().to_be();
        sa.sin_addr.s_addr = u32::from(*v4.ip()).to_be();
        libc::connect(
            fd,
            (&raw const sa).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as u32,
        );
        let mut local: libc::sockaddr_in = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::sockaddr_in>() as u32;
        libc::getsockname(fd, (&raw mut local).cast(), &mut len);
        (
            std::os::fd::OwnedFd::from_raw_fd(fd),
            u16::from_be(local.sin_port),
        )
    }
}

/// A missing interface is named as missing, not blamed on permissions (these tests run as
/// root), and nothing is printed on stdout.
#[test]
fn missing_interface_is_named() {
    let o = Command::new(env!("CARGO_BIN_EXE_ashiato"))
        .args(["darkflow", "--iface", "nonexist0", "--duration", "1s"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("nonexist0"), "{err}");
    assert!(
        err.contains("does not exist") || err.contains("no such interface"),
        "{err}"
    );
    assert!(
        !err.contains("CAP_NET_RAW") && !err.contains("root"),
        "{err}"
    );
    assert!(o.stdout.is_empty());
}
