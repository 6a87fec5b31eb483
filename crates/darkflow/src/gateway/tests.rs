//! The hand-over and cut-off policy in virtual time: no root, no NFQUEUE, no clock.

use std::net::{IpAddr, Ipv4Addr};

use ashiato_wire::build;
use ashiato_wire::packet::TcpFlags;

use super::{Gateway, GatewayConfig, Resend, Verdict};
use crate::detector::{Config, Event, NS};
use crate::flow::FlowId;

const T: u64 = 5 * NS;
const T0: u64 = 1_700_000_000 * NS;
const MARK: u32 = 0x100;
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const SERVER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

fn gateway(max_pending: usize, max_flows: usize) -> Gateway {
    Gateway::new(GatewayConfig {
        mark: MARK,
        detector: Config {
            timeout_ns: T,
            max_pending,
            max_flows,
            ..Config::default()
        },
    })
}

/// An IPv4/TCP packet, IP header first (as NFQUEUE hands it over).
fn tcp(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, flags: TcpFlags) -> Vec<u8> {
    build::ipv4_tcp_frame(src, dst, sport, dport, 1000, 0, flags, 1, &[])[14..].to_vec()
}

fn syn(sport: u16) -> Vec<u8> {
    tcp(CLIENT, SERVER, sport, 80, TcpFlags::SYN)
}

fn synack(sport: u16) -> Vec<u8> {
    tcp(
        SERVER,
        CLIENT,
        80,
        sport,
        TcpFlags(TcpFlags::SYN.0 | TcpFlags::ACK.0),
    )
}

fn ack(sport: u16) -> Vec<u8> {
    tcp(CLIENT, SERVER, sport, 80, TcpFlags::ACK)
}

fn flow(sport: u16) -> FlowId {
    FlowId {
        src: IpAddr::V4(CLIENT),
        sport,
        dst: IpAddr::V4(SERVER),
        dport: 80,
    }
}

/// Decides one packet, events dropped.
fn decide(g: &mut Gateway, now: u64, ip: &[u8], from_honeypot: bool) -> Verdict {
    g.decide(now, ip, from_honeypot, &mut |_| {})
}

fn resends(g: &mut Gateway, now: u64) -> Vec<Resend> {
    g.advance(now, &mut |_| {});
    std::iter::from_fn(|| g.poll_resend()).collect()
}

/// A flow whose SYN at T0 went unanswered and was handed over just after T0 + T.
fn handed_over(g: &mut Gateway, sport: u16) {
    assert_eq!(decide(g, T0, &syn(sport), false), Verdict::Accept);
    let r = resends(g, T0 + T + 1);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].flow, flow(sport));
}

#[test]
fn a_syn_answered_in_time_is_never_handed_over() {
    let mut g = gateway(16, 16);
    for (i, rst) in [(0u16, false), (1, true)] {
        let sport = 40_000 + i;
        assert_eq!(decide(&mut g, T0, &syn(sport), false), Verdict::Accept);
        let answer = if rst {
            tcp(SERVER, CLIENT, 80, sport, TcpFlags::RST)
        } else {
            synack(sport)
        };
        // Answered at exactly T: still in time.
        assert_eq!(decide(&mut g, T0 + T, &answer, false), Verdict::Accept);
        assert_eq!(decide(&mut g, T0 + T, &ack(sport), false), Verdict::Accept);
    }
    assert!(resends(&mut g, T0 + 100 * NS).is_empty());
    let c = g.counters();
    assert_eq!(
        (c.handed_over, c.kept, c.handed, c.resend_failed),
        (0, 0, 0, 0)
    );
}

#[test]
fn an_unanswered_syn_is_handed_over_once_at_t() {
    let mut g = gateway(16, 16);
    let first = syn(40_000);
    assert_eq!(decide(&mut g, T0, &first, false), Verdict::Accept);
    // Retransmissions before T: still one pending flow, one kept copy.
    for dt in [NS, 3 * NS] {
        assert_eq!(decide(&mut g, T0 + dt, &first, false), Verdict::Accept);
    }
    assert_eq!(g.counters().kept, 1);
    assert!(
        resends(&mut g, T0 + T).is_empty(),
        "an answer at T would be in time"
    );
    let r = resends(&mut g, T0 + T + 1);
    assert_eq!(r.len(), 1, "just after T");
    assert_eq!(r[0].flow, flow(40_000));
    // The copy is the SYN itself (its checksum was already right).
    assert_eq!(r[0].ip, first);
    // Retransmissions after the hand-over pass to the honeypot, and are not handed again.
    for dt in [6 * NS, 9 * NS] {
        assert_eq!(decide(&mut g, T0 + dt, &first, false), Verdict::Accept);
        assert!(resends(&mut g, T0 + dt + T).is_empty());
    }
    let c = g.counters();
    assert_eq!((c.handed_over, c.handed, c.kept), (1, 1, 0));
}

#[test]
fn the_honeypots_packets_of_a_handed_over_flow_pass() {
    let mut g = gateway(16, 16);
    handed_over(&mut g, 40_000);
    let mut events = 0;
    // The honeypot answers as the server; the detector must not take it for the server.
    let v = g.decide(T0 + T + 1, &synack(40_000), true, &mut |_| events += 1);
    assert_eq!((v, events), (Verdict::Accept, 0));
    assert_eq!(
        decide(&mut g, T0 + T + 2, &ack(40_000), false),
        Verdict::Accept
    );
    let data = tcp(SERVER, CLIENT, 80, 40_000, TcpFlags::ACK);
    assert_eq!(decide(&mut g, T0 + T + 3, &data, true), Verdict::Accept);
    assert_eq!(g.detector().counters().late_answers, 0);
    assert_eq!(g.counters().cut_off, 0);
}

#[test]
fn a_late_real_answer_cuts_the_honeypot_off_at_its_next_packet() {
    let mut g = gateway(16, 16);
    handed_over(&mut g, 40_000);
    let t = T0 + T + NS;
    assert_eq!(decide(&mut g, t, &synack(40_000), true), Verdict::Accept);
    // The real server answers after T: its answer passes to the client.
    let mut late = 0;
    let v = g.decide(t + 1, &synack(40_000), false, &mut |e| {
        late += u32::from(matches!(e, Event::LateAnswer { .. }))
    });
    assert_eq!((v, late), (Verdict::Accept, 1));
    assert_eq!(g.counters().cut_off, 1);
    // From the next packet on: the honeypot's are dropped, the client's routed normally.
    let hp = tcp(SERVER, CLIENT, 80, 40_000, TcpFlags::ACK);
    assert_eq!(decide(&mut g, t + 2, &hp, true), Verdict::Drop);
    assert_eq!(
        decide(&mut g, t + 3, &ack(40_000), false),
        Verdict::AcceptMarked(MARK + 1)
    );
    assert_eq!(
        decide(&mut g, t + 4, &synack(40_000), false),
        Verdict::Accept
    );
    assert_eq!(decide(&mut g, t + 5, &hp, true), Verdict::Drop);
    let c = g.counters();
    assert_eq!((c.cut_off, c.dropped), (1, 2));
}

#[test]
fn bounds_are_respected() {
    let (max_pending, max_flows) = (3, 2);
    let mut g = gateway(max_pending, max_flows);
    for round in 0..4u64 {
        let t = T0 + round * 2 * T;
        for i in 0..20u16 {
            let sport = 1000 + (round as u16) * 100 + i;
            decide(&mut g, t + u64::from(i), &syn(sport), false);
            assert!(g.counters().kept <= 2 * max_pending as u64);
        }
        let r = resends(&mut g, t + T + NS);
        assert!(r.len() <= max_flows, "{} re-sends", r.len());
        assert!(g.counters().handed <= max_flows as u64);
    }
    // Untracked SYNs are never handed over; none was kept without a pending entry.
    let c = g.counters();
    assert!(c.handed_over <= 4 * max_pending as u64, "{c:?}");
    // A kept SYN too long to keep, and a non-TCP packet, are accepted as they are.
    let mut long = syn(9);
    long.extend_from_slice(&[0; 200]);
    assert_eq!(decide(&mut g, T0 + 100 * T, &long, false), Verdict::Accept);
    assert_eq!(
        decide(&mut g, T0 + 100 * T, b"\x45junk", false),
        Verdict::Accept
    );
    assert_eq!(g.counters().unparsed, 1);
}

#[test]
fn a_flow_whose_resend_failed_is_not_handed_over() {
    let mut g = gateway(16, 16);
    handed_over(&mut g, 40_000);
    g.resend_failed(flow(40_000));
    let c = g.counters();
    assert_eq!((c.handed_over, c.handed, c.resend_failed), (0, 0, 1));
    // A late answer then cuts nothing off.
    assert_eq!(
        decide(&mut g, T0 + 2 * T, &synack(40_000), false),
        Verdict::Accept
    );
    assert_eq!(
        decide(&mut g, T0 + 2 * T + 1, &ack(40_000), false),
        Verdict::Accept
    );
    assert_eq!(g.counters().cut_off, 0);
}

#[test]
fn time_going_backwards_is_clamped() {
    let mut g = gateway(16, 16);
    decide(&mut g, T0 + 10 * NS, &syn(40_000), false);
    // The wall clock steps back by 10 s: the answer counts as 0 s after the SYN, in time.
    assert_eq!(decide(&mut g, T0, &synack(40_000), false), Verdict::Accept);
    assert_eq!(g.detector().counters().out_of_order, 0);
    assert_eq!(g.detector().counters().answered_synack, 1);
    // A SYN at the clamped clock turns dark T after it, not T after the stepped-back time.
    decide(&mut g, T0, &syn(40_001), false);
    assert!(resends(&mut g, T0 + T).is_empty());
    assert!(resends(&mut g, T0 + 10 * NS + T).is_empty());
    assert_eq!(resends(&mut g, T0 + 10 * NS + T + 1).len(), 1);
}
