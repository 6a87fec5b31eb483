//! Real captures from `tests/data` (see its README) decoded and parsed in memory; the expected
//! numbers were counted with tcpdump filters.

use ashiato_wire::capfile::{Decoder, Step};
use ashiato_wire::packet::{self, Ip, L4, ParseStats};

fn read(name: &str) -> Vec<u8> {
    let path = format!("{}/../../tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Counts over one file.
#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    frames: u64,
    tcp: u64,
    syn_only: u64,
    rst: u64,
    udp: u64,
    fragments: u64,
    first_fragments: u64,
    vlan_tagged: u64,
    skipped: u64,
}

fn count(bytes: &[u8]) -> Counts {
    let mut c = Counts::default();
    let mut stats = ParseStats::default();
    let mut d = Decoder::new();
    let mut pos = 0;
    loop {
        let (step, used) = d.step(&bytes[pos..], true).unwrap();
        pos += used;
        let f = match step {
            Step::Frame(f) => f,
            Step::Skip => continue,
            Step::End => break,
            Step::NeedMore => unreachable!("whole file given"),
        };
        c.frames += 1;
        let p = match packet::parse(f.link, f.data) {
            Ok(p) => p,
            Err(e) => {
                stats.record(&e);
                continue;
            }
        };
        c.vlan_tagged += u64::from(p.vlans > 0);
        if let Ip::V4(h) = p.ip
            && h.more_fragments
            && h.fragment_offset == 0
        {
            c.first_fragments += 1;
        }
        match p.l4 {
            L4::Tcp(t) => {
                c.tcp += 1;
                c.syn_only += u64::from(t.flags.is_syn_only());
                c.rst += u64::from(t.flags.is_rst());
            }
            L4::Udp(_) => c.udp += 1,
            L4::Fragment => c.fragments += 1,
            _ => {}
        }
    }
    c.skipped = stats.total();
    c
}

#[test]
fn nmap_syn_scan_pcapng() {
    let c = count(&read("cs-synscan.pcapng"));
    assert_eq!(
        c,
        Counts {
            frames: 2011,
            tcp: 2011,
            syn_only: 1994,
            rst: 5,
            ..Counts::default()
        }
    );
}

#[test]
fn masscan_with_vlan_tags() {
    let c = count(&read("esnet-masscan-tcp_0_1000_20190821.pcap"));
    assert_eq!(
        c,
        Counts {
            frames: 1005,
            tcp: 1005,
            syn_only: 1001,
            rst: 4,
            vlan_tagged: 1005,
            ..Counts::default()
        }
    );
}

#[test]
fn http_fetch_snaplen_8192() {
    let c = count(&read("zeek-web.pcap"));
    assert_eq!((c.frames, c.tcp, c.syn_only, c.skipped), (24, 24, 2, 0));
}

#[test]
fn dns_amplification_fragments() {
    let c = count(&read("stopddos-amp.dns.RRSIG.fragmented-first120.pcap"));
    assert_eq!(
        (
            c.frames,
            c.tcp,
            c.syn_only,
            c.fragments,
            c.first_fragments,
            c.skipped
        ),
        (120, 34, 14, 41, 37, 0)
    );
    // Every frame is TCP, UDP or a non-first fragment.
    assert_eq!(c.tcp + c.udp + c.fragments, 120);
}
