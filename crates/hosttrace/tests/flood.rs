//! The victim-side SYN-flood detector (`ashiato report --pcap`) on real captures from
//! `tests/data` (see `tests/data/README.md`): a real spoofed SYN flood gives one claim on the
//! attacked port with EVE alerts the center accepts as evidence; browsing and port scans give
//! none.

use ashiato_hosttrace::claim::Protocol;
use ashiato_hosttrace::report::{
    FLOOD_SIGNATURE, FloodConfig, FloodStats, SynFloodDetector, VictimClaim, eve_time,
};
use ashiato_wire::capfile::{Decoder, Step};

fn detect(path: &str, min: u64) -> (Vec<VictimClaim>, FloodStats) {
    let path = format!("{}/../../tests/data/{path}", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut det = SynFloodDetector::new(FloodConfig {
        min_syns_per_sec: min,
    });
    let mut d = Decoder::new();
    let mut pos = 0;
    loop {
        let (step, used) = d.step(&bytes[pos..], true).unwrap();
        pos += used;
        match step {
            Step::Frame(f) => det.frame(f.ts_nanos, f.link, f.data),
            Step::Skip => {}
            Step::End => break,
            Step::NeedMore => unreachable!("whole file given"),
        }
    }
    det.finish("v")
}

#[test]
fn a_real_spoofed_syn_flood_gives_one_claim_without_its_sources() {
    let (claims, stats) = detect(
        "hosttrace/stopddos-pkt.TCP.synflood.spoofed-first1000.pcap",
        100,
    );
    assert_eq!(stats.frames, 1000);
    assert_eq!(stats.syns, 1000);
    assert_eq!(claims.len(), 1, "{claims:?}");
    let c = &claims[0];
    assert_eq!(c.claim.id, "v-1");
    assert_eq!(c.claim.victim.to_string(), "10.10.10.10");
    assert_eq!(c.claim.protocol, Protocol::Tcp);
    assert_eq!(c.claim.port, Some(25565));
    assert!(c.claim.reflectors.is_empty());
    // The window is the flood's: first SYN 1619605821.099510 (tcpdump -tt).
    assert_eq!(c.claim.from, "2021-04-28T10:30:21.099510000Z");
    let (from, to) = (
        eve_time(&c.claim.from).unwrap(),
        eve_time(&c.claim.to).unwrap(),
    );
    assert!(to > from && to - from < 1_000_000_000, "{:?}", c.claim);
    // The claim names no source: they are spoofed (1000 SYNs from ~1000 addresses).
    let text = serde_json::to_string(&c.claim).unwrap();
    assert!(!text.contains("160.161.74.108"), "{text}");
    // Evidence: EVE alerts naming this detector, the victim, the port, inside the window.
    assert!(c.alerts >= 1 && c.evidence.len() == c.alerts, "{c:?}");
    for e in &c.evidence {
        assert_eq!(e["event_type"], "alert");
        assert_eq!(e["alert"]["signature"], FLOOD_SIGNATURE);
        assert_eq!(e["dest_ip"], "10.10.10.10");
        assert_eq!(e["dest_port"], 25565);
        assert_eq!(e["proto"], "TCP");
        let t = eve_time(e["timestamp"].as_str().unwrap()).unwrap();
        assert!((from..=to).contains(&t), "{e}");
    }
    let counted: u64 = c
        .evidence
        .iter()
        .map(|e| e["ashiato"]["syns"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, 1000);
}

#[test]
fn below_the_threshold_no_claim() {
    // 1000 SYNs fall within one or two seconds: a threshold above that is not reached.
    let (claims, _) = detect(
        "hosttrace/stopddos-pkt.TCP.synflood.spoofed-first1000.pcap",
        1001,
    );
    assert!(claims.is_empty(), "{claims:?}");
}

#[test]
fn browsing_and_port_scans_are_no_flood() {
    for path in [
        "hosttrace/zeek-wikipedia.pcap",
        "hosttrace/zeek-workshop_2011_browse.pcap",
        "hosttrace/cs-http_google.pcapng",
        "zeek-web.pcap",
        // 1994 SYNs in 23 s to one host, spread over its ports.
        "cs-synscan.pcapng",
        // 1001 SYNs in 10 s, one per port 0-1000.
        "esnet-masscan-tcp_0_1000_20190821.pcap",
    ] {
        let (claims, stats) = detect(path, 100);
        assert!(stats.frames > 0, "{path}");
        assert!(claims.is_empty(), "{path}: {claims:?}");
    }
}
