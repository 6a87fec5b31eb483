//! Capacity of the responder's core on one core: SYNs answered with a SYN/ACK and their ACKs
//! timed (Tp), packets built in memory beforehand, virtual time.
//! Run: `cargo run --release -p ashiato-stepstone --example responder_rate [N]`

use std::net::Ipv4Addr;
use std::time::Instant;

use ashiato_stepstone::responder::{Responder, ResponderConfig};
use ashiato_wire::build::{ipv4, tcp};
use ashiato_wire::packet::{L4, TcpFlags, parse_ip};

fn seg(src: Ipv4Addr, dst: Ipv4Addr, sp: u16, seq: u32, ack: u32, f: TcpFlags) -> Vec<u8> {
    ipv4(
        src,
        dst,
        6,
        64,
        0,
        1,
        &tcp(src.into(), dst.into(), sp, 22, seq, ack, f, 64240, &[]),
    )
}

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let dark = Ipv4Addr::new(203, 0, 113, 9);
    let cfg = ResponderConfig {
        darknets: vec![(Ipv4Addr::new(203, 0, 113, 0).into(), 24)],
        max_per_sec: u32::MAX,
        max_per_source_per_sec: u32::MAX,
        max_pending: 1 << 20,
        secret: 7,
        ..ResponderConfig::default()
    };
    let syns: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            seg(
                Ipv4Addr::from(0x0a00_0000 + i),
                dark,
                40000,
                i,
                0,
                TcpFlags::SYN,
            )
        })
        .collect();
    // Learn the sequence numbers once, then build the ACKs.
    let mut probe = Responder::new(cfg.clone(), 0);
    let acks: Vec<Vec<u8>> = syns
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let sa = probe.on_packet(0, &parse_ip(s).unwrap()).expect("answered");
            let L4::Tcp(t) = parse_ip(&sa).unwrap().l4 else {
                unreachable!()
            };
            let src = Ipv4Addr::from(0x0a00_0000 + i as u32);
            seg(
                src,
                dark,
                40000,
                i as u32 + 1,
                t.seq.wrapping_add(1),
                TcpFlags::ACK,
            )
        })
        .collect();
    let mut r = Responder::new(cfg, 0);
    let start = Instant::now();
    let mut answered = 0u64;
    for (i, (s, a)) in syns.iter().zip(&acks).enumerate() {
        let now = i as u64 * 1000;
        if r.on_packet(now, &parse_ip(s).unwrap()).is_some() {
            answered += 1;
        }
        r.on_packet(now + 500, &parse_ip(a).unwrap());
    }
    let secs = start.elapsed().as_secs_f64();
    let measured = r.take_measured().len();
    println!(
        "{answered} SYNs answered, {measured} Tp measured in {secs:.3} s: {:.2} M handshakes/s on one core",
        answered as f64 / secs / 1e6
    );
}
