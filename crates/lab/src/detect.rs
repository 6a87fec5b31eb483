//! The victim's detector: which packets arriving at its edge are the attack. Pure.
//!
//! Rule: TCP SYNs (SYN without ACK, RST, FIN) are counted per destination address and port in
//! consecutive windows of [`DetectorConfig::window_ns`]; a (destination, window) whose count
//! reaches [`DetectorConfig::threshold`] is under attack, and every SYN to that destination
//! in that window or the one just before or after it is flagged (a flood's first and last
//! packets straddle window edges: counted alone, its tail would fall under the threshold). A SYN flood against one
//! server crosses it; ordinary connection attempts (a few per second per server) and
//! non-SYN traffic never do. This stands in for the IDS of seed 000 §2 step 1: what is
//! traced is what the detector flagged, never the lab's ground truth.

use std::collections::HashMap;
use std::net::IpAddr;

use ashiato_wire::LinkType;
use ashiato_wire::packet::{L4, parse};

/// The detector's settings.
#[derive(Clone, Copy, Debug)]
pub struct DetectorConfig {
    /// Counting window, ns.
    pub window_ns: u64,
    /// SYNs per destination and window that make the window an attack.
    pub threshold: u32,
}

impl Default for DetectorConfig {
    /// One-second windows, 20 SYNs: a flood of 50 packets per origin from several origins is
    /// hundreds per second, a busy web server's real connection rate in the lab is zero.
    fn default() -> Self {
        DetectorConfig {
            window_ns: 1_000_000_000,
            threshold: 20,
        }
    }
}

/// Indices (into `seen`) of the packets flagged as attack, ascending. `seen` is (time,
/// Ethernet frame); frames that do not parse are skipped.
pub fn detect(seen: &[(u64, &[u8])], cfg: DetectorConfig) -> Vec<usize> {
    let window = cfg.window_ns.max(1);
    let mut syns: HashMap<(IpAddr, u16, u64), Vec<usize>> = HashMap::new();
    for (i, (t, frame)) in seen.iter().enumerate() {
        let Ok(p) = parse(LinkType::Ethernet, frame) else {
            continue;
        };
        if let L4::Tcp(tcp) = p.l4
            && tcp.flags.is_syn_only()
        {
            syns.entry((p.ip.dst(), tcp.dst_port, t / window))
                .or_default()
                .push(i);
        }
    }
    let hot = |dst: IpAddr, port: u16, w: u64| {
        syns.get(&(dst, port, w))
            .is_some_and(|v| v.len() >= cfg.threshold as usize)
    };
    let mut out: Vec<usize> = syns
        .iter()
        .filter(|((dst, port, w), _)| {
            hot(*dst, *port, *w) || hot(*dst, *port, w.wrapping_sub(1)) || hot(*dst, *port, w + 1)
        })
        .flat_map(|(_, v)| v.iter().copied())
        .collect();
    out.sort_unstable();
    out
}

#[cfg(test)]
mod tests {
    use super::{DetectorConfig, detect};
    use ashiato_wire::build::ipv4_tcp_frame;
    use ashiato_wire::packet::TcpFlags;
    use std::net::Ipv4Addr;

    #[test]
    fn a_flood_is_flagged_and_nothing_else() {
        let v = Ipv4Addr::new(10, 0, 0, 10);
        let mut frames = Vec::new();
        for i in 0..30u32 {
            let src = Ipv4Addr::from(0x0b00_0000 + i);
            frames.push((
                u64::from(i) * 1_000_000,
                ipv4_tcp_frame(src, v, 1000, 80, i, 0, TcpFlags::SYN, 1, &[]),
            ));
        }
        // A few SYNs to another port, and ACKs to the flooded one.
        for i in 0..5u32 {
            let src = Ipv4Addr::from(0x0c00_0000 + i);
            frames.push((
                1_000,
                ipv4_tcp_frame(src, v, 1000, 22, i, 0, TcpFlags::SYN, 1, &[]),
            ));
            frames.push((
                2_000,
                ipv4_tcp_frame(src, v, 1000, 80, i, 1, TcpFlags::ACK, 1, &[]),
            ));
        }
        frames.push((3_000, vec![0u8; 7]));
        // The flood's tail in the next window is flagged; a lone SYN two windows later is not.
        let late = Ipv4Addr::new(11, 9, 9, 9);
        frames.push((
            1_100_000_000,
            ipv4_tcp_frame(late, v, 1000, 80, 9, 0, TcpFlags::SYN, 1, &[]),
        ));
        frames.push((
            2_500_000_000,
            ipv4_tcp_frame(late, v, 1001, 80, 9, 0, TcpFlags::SYN, 1, &[]),
        ));
        let seen: Vec<(u64, &[u8])> = frames.iter().map(|(t, f)| (*t, f.as_slice())).collect();
        let hit = detect(&seen, DetectorConfig::default());
        let mut want: Vec<usize> = (0..30).collect();
        want.push(41);
        assert_eq!(hit, want);
    }
}
