//! The scenario: who the victim is, who participates, who attacks, and every packet with the
//! probes that record it. Pure: the start time and the seed come in, a [`Scenario`] comes out.
//!
//! # Traffic
//!
//! - **Attack**: each origin domain sends `packets` TCP SYNs with random (spoofed) source
//!   addresses and ports to the victim's server (`VICTIM_PORT`), at random times within
//!   one second ([`ATTACK_SPAN_NS`]).
//! - **Background**: TCP ACKs and UDP datagrams between random domain pairs (a tenth of them
//!   to the victim), spread over the whole scenario, so that tables are not empty and answers
//!   carry a real false-positive rate. None is a SYN, so the detector never flags one.
//!
//! Every packet follows its valley-free route (`Topology::routes_to(dst).path(src)`). It is
//! recorded by its source domain's edge probe when it leaves, by both ends' probes of every
//! link it crosses (each end that participates), and by the destination's edge probe when it
//! arrives, 1–3 ms later per hop ([`hop_delay`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;

use ashiato_api::federation::Watch;
use ashiato_digest::Key;
use ashiato_rng::Xoshiro256pp;
use ashiato_trace::topology::{Asn, Topology};
use ashiato_wire::LinkType;
use ashiato_wire::build::ipv4_tcp_frame;
use ashiato_wire::build::ipv4_udp_frame;
use ashiato_wire::packet::{TcpFlags, parse};

/// The victim's attacked server port.
pub const VICTIM_PORT: u16 = 80;
/// The attack lasts this long (ns), starting [`ATTACK_OFFSET_NS`] into the scenario.
pub const ATTACK_SPAN_NS: u64 = 1_000_000_000;
/// When the attack starts, counted from the scenario's start (ns).
pub const ATTACK_OFFSET_NS: u64 = 1_000_000_000;
/// The scenario's length (ns): background before, during and after the attack.
pub const SCENARIO_NS: u64 = 3_000_000_000;

/// What to build.
#[derive(Clone, Debug)]
pub struct ScenarioConfig {
    /// Seed of every random choice.
    pub seed: u64,
    /// Share of domains that run ashiato (0 to 1); the victim always does.
    pub participation: f64,
    /// Attack origin domains wanted (fewer if fewer domains can reach the victim).
    pub origins: usize,
    /// Attack packets per origin.
    pub packets: usize,
    /// Background packets in all.
    pub background: usize,
    /// Domains that must be origins (the far end of a chain), if they can be.
    pub must_attack: Vec<Asn>,
    /// Participants are the core (the domains with the most customers), not a random set.
    pub core: bool,
    /// Share of attack packets also sent, identically, by a second origin (real floods
    /// repeat packets, and two bots may send the same one).
    pub duplicates: f64,
    /// Share of domains that split their traffic over two upstreams: half of the packets
    /// that reach such a domain leave it by another neighbour with a valley-free route.
    pub multipath: f64,
}

/// A probe position: a domain's customer edge or its end of one link.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tap {
    /// The domain whose probe this is.
    pub domain: Asn,
    /// What it watches.
    pub watch: Watch,
}

impl Tap {
    /// The probe's name in its domain: `edge` or `link-<ASN>`.
    pub fn name(&self) -> String {
        match &self.watch {
            Watch::Edge => "edge".into(),
            Watch::Link { neighbour } => format!("link-{neighbour}"),
        }
    }
}

/// One packet the scenario sends.
#[derive(Clone, Debug)]
pub struct Sent {
    /// The Ethernet frame.
    pub frame: Vec<u8>,
    /// Its digest under the federation key.
    pub digest: u128,
    /// Its domains, from its source to its destination.
    pub path: Vec<Asn>,
    /// When it left its source domain (ns since the Unix epoch).
    pub sent_ns: u64,
    /// When it reached its destination's edge.
    pub arrived_ns: u64,
    /// Part of the attack (ground truth, never shown to the detector or the controllers).
    pub attack: bool,
}

impl Sent {
    /// The domain it came from.
    pub fn origin(&self) -> Asn {
        self.path[0]
    }
}

/// A built scenario.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The federation's topology.
    pub topology: Topology,
    /// Where the attack is detected.
    pub victim: Asn,
    /// The victim's server address.
    pub victim_addr: Ipv4Addr,
    /// Domains that run ashiato (probes and a controller).
    pub participants: BTreeSet<Asn>,
    /// The attack's origin domains (ground truth).
    pub origins: Vec<Asn>,
    /// First ns of the scenario.
    pub start_ns: u64,
    /// Last ns of the scenario.
    pub end_ns: u64,
    /// Every packet sent, attack and background.
    pub sent: Vec<Sent>,
    /// Domains that split their traffic over two upstreams.
    pub multipath: BTreeSet<Asn>,
    /// Per probe of a participating domain: (time, index into `sent`), in time order. Every
    /// probe of every participant is listed, idle ones with no packet.
    pub taps: BTreeMap<Tap, Vec<(u64, u32)>>,
}

/// Why a scenario could not be built.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The victim is not in the topology.
    #[error("the victim AS{0} is not in the topology")]
    NoVictim(Asn),
    /// No other domain has a route to the victim.
    #[error("no domain has a valley-free route to the victim AS{0}: nothing can attack it")]
    NoAttacker(Asn),
}

/// Uniform in `0..n` (`n > 0`).
fn below(rng: &mut Xoshiro256pp, n: usize) -> usize {
    ((u128::from(rng.next_u64()) * n as u128) >> 64) as usize
}

/// Delay of one AS hop: 1 to 3 ms.
pub fn hop_delay(rng: &mut Xoshiro256pp) -> u64 {
    1_000_000 + rng.next_u64() % 2_000_001
}

/// A domain's address block: 10.x.y.0/24 from its index in the topology (a lab's numbering;
/// a real network would come from its prefixes).
fn domain_addr(index: usize, host: u8) -> Ipv4Addr {
    let i = index as u32 & 0xffff;
    Ipv4Addr::new(10, (i >> 8) as u8, i as u8, host.max(1))
}

impl Scenario {
    /// Builds the scenario on `topology` around `victim`, starting at `start_ns`.
    pub fn build(
        topology: Topology,
        victim: Asn,
        cfg: &ScenarioConfig,
        key: &Key,
        start_ns: u64,
    ) -> Result<Scenario, ScenarioError> {
        if !topology.contains(victim) {
            return Err(ScenarioError::NoVictim(victim));
        }
        let mut rng = Xoshiro256pp::new(ashiato_rng::mix64(cfg.seed ^ 0x6c61_625f_7363_656e));
        let participants = if cfg.core {
            topology.core_participants(cfg.participation, &[victim])
        } else {
            topology.participants(cfg.participation, cfg.seed, &[victim])
        };
        let multipath: BTreeSet<Asn> = topology
            .participants(
                cfg.multipath,
                ashiato_rng::mix64(cfg.seed ^ 0x6d75_6c74),
                &[],
            )
            .into_iter()
            .collect();
        let index_of = |a: Asn| topology.asns().binary_search(&a).unwrap_or(0);
        let victim_addr = domain_addr(index_of(victim), 10);

        // Origins: seeded among the domains with a route to the victim.
        let to_victim = topology.routes_to(victim);
        let mut candidates: Vec<Asn> = topology
            .asns()
            .iter()
            .copied()
            .filter(|&a| a != victim && to_victim.hops(a).is_some())
            .collect();
        if candidates.is_empty() {
            return Err(ScenarioError::NoAttacker(victim));
        }
        let mut origins: Vec<Asn> = cfg
            .must_attack
            .iter()
            .copied()
            .filter(|a| candidates.contains(a))
            .collect();
        candidates.retain(|a| !origins.contains(a));
        while origins.len() < cfg.origins && !candidates.is_empty() {
            let k = below(&mut rng, candidates.len());
            origins.push(candidates.swap_remove(k));
        }
        origins.sort_unstable();

        let mut sent = Vec::new();
        for &o in &origins {
            for _ in 0..cfg.packets {
                let path =
                    route(&topology, &to_victim, o, &multipath, &mut rng).unwrap_or_default();
                let t = start_ns + ATTACK_OFFSET_NS + rng.next_u64() % ATTACK_SPAN_NS;
                let r = rng.next_u64();
                let spoofed = Ipv4Addr::from(r as u32);
                let frame = ipv4_tcp_frame(
                    spoofed,
                    victim_addr,
                    1024 + (r >> 32) as u16 % 64_000,
                    VICTIM_PORT,
                    (r >> 16) as u32,
                    0,
                    TcpFlags::SYN,
                    (r >> 48) as u16,
                    &[],
                );
                let copy = (origins.len() > 1 && unit(&mut rng) < cfg.duplicates).then(|| {
                    // The same packet from another origin, within the same few milliseconds.
                    let mut o2 = origins[below(&mut rng, origins.len() - 1)];
                    if o2 == o {
                        o2 = origins[origins.len() - 1];
                    }
                    let t2 = t + rng.next_u64() % 5_000_000;
                    (o2, t2)
                });
                if let Some((o2, t2)) = copy {
                    let p2 =
                        route(&topology, &to_victim, o2, &multipath, &mut rng).unwrap_or_default();
                    sent.push(packet(frame.clone(), p2, t2, true, key));
                }
                sent.push(packet(frame, path, t, true, key));
            }
        }

        // Background between random pairs (a tenth to the victim), along their routes.
        let asns = topology.asns();
        let mut trees = HashMap::new();
        let mut made = 0;
        let mut tries = 0;
        while made < cfg.background && tries < cfg.background * 4 && asns.len() > 1 {
            tries += 1;
            let dst = if below(&mut rng, 10) == 0 {
                victim
            } else {
                asns[below(&mut rng, asns.len())]
            };
            let src = asns[below(&mut rng, asns.len())];
            if src == dst {
                continue;
            }
            let tree = trees.entry(dst).or_insert_with(|| topology.routes_to(dst));
            let Some(path) = route(&topology, tree, src, &multipath, &mut rng) else {
                continue;
            };
            let t = start_ns + 200_000_000 + rng.next_u64() % (SCENARIO_NS - 1_200_000_000);
            let r = rng.next_u64();
            let (s_addr, d_addr) = (
                domain_addr(index_of(src), (r >> 8) as u8),
                domain_addr(index_of(dst), if dst == victim { 10 } else { r as u8 }),
            );
            let frame = if r >> 63 == 0 {
                ipv4_tcp_frame(
                    s_addr,
                    d_addr,
                    1024 + (r >> 16) as u16 % 64_000,
                    443,
                    (r >> 32) as u32,
                    r as u32,
                    TcpFlags::ACK,
                    (r >> 40) as u16,
                    b"background",
                )
            } else {
                ipv4_udp_frame(
                    s_addr,
                    d_addr,
                    1024 + (r >> 16) as u16 % 64_000,
                    53,
                    (r >> 40) as u16,
                    b"query",
                )
            };
            sent.push(packet(frame, path, t, false, key));
            made += 1;
        }

        // Every probe of every participant, then what each records.
        let mut taps: BTreeMap<Tap, Vec<(u64, u32)>> = BTreeMap::new();
        for &d in &participants {
            taps.insert(
                Tap {
                    domain: d,
                    watch: Watch::Edge,
                },
                Vec::new(),
            );
            for (n, _) in topology.neighbours(d) {
                taps.insert(
                    Tap {
                        domain: d,
                        watch: Watch::Link { neighbour: n },
                    },
                    Vec::new(),
                );
            }
        }
        let mut record = |domain: Asn, watch: Watch, t: u64, i: u32| {
            if participants.contains(&domain)
                && let Some(v) = taps.get_mut(&Tap { domain, watch })
            {
                v.push((t, i));
            }
        };
        for (i, s) in sent.iter().enumerate() {
            let i = i as u32;
            record(s.path[0], Watch::Edge, s.sent_ns, i);
            let mut t = s.sent_ns;
            let mut hop = Xoshiro256pp::new(ashiato_rng::mix64(s.digest as u64));
            for w in s.path.windows(2) {
                t += hop_delay(&mut hop);
                record(w[0], Watch::Link { neighbour: w[1] }, t, i);
                record(w[1], Watch::Link { neighbour: w[0] }, t, i);
            }
            record(
                *s.path.last().unwrap_or(&s.path[0]),
                Watch::Edge,
                s.arrived_ns,
                i,
            );
        }
        for v in taps.values_mut() {
            v.sort_unstable();
        }
        let end_ns = sent
            .iter()
            .map(|s| s.arrived_ns)
            .max()
            .unwrap_or(start_ns)
            .max(start_ns + SCENARIO_NS);
        Ok(Scenario {
            topology,
            victim,
            victim_addr,
            participants,
            origins,
            start_ns,
            end_ns,
            sent,
            multipath,
            taps,
        })
    }

    /// What the victim's edge probe saw arrive for the victim: (time, frame, index into
    /// `sent`) of every packet whose destination is the victim, in time order — the
    /// detector's input (the index is the lab's, never shown to the detector).
    pub fn victim_edge(&self) -> Vec<(u64, &[u8], u32)> {
        let mut v: Vec<(u64, &[u8], u32)> = self
            .sent
            .iter()
            .enumerate()
            .filter(|(_, s)| s.path.last() == Some(&self.victim))
            .map(|(i, s)| (s.arrived_ns, s.frame.as_slice(), i as u32))
            .collect();
        v.sort_by_key(|e| (e.0, e.2));
        v
    }
}

/// Uniform in [0, 1).
fn unit(rng: &mut Xoshiro256pp) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// The route of one packet from `src`: the route tree's, except that the first domain on it
/// that splits its traffic sends half of its packets to another neighbour (the nearest to
/// the destination, ties by ASN) whose own route keeps the whole path valley-free and
/// loop-free.
fn route(
    topology: &Topology,
    tree: &ashiato_trace::topology::RouteTree<'_>,
    src: Asn,
    multipath: &BTreeSet<Asn>,
    rng: &mut Xoshiro256pp,
) -> Option<Vec<Asn>> {
    let path = tree.path(src)?;
    if multipath.is_empty() {
        return Some(path);
    }
    let Some(i) = path[..path.len().saturating_sub(1)]
        .iter()
        .position(|x| multipath.contains(x))
    else {
        return Some(path);
    };
    if rng.next_u64() & 1 == 0 {
        return Some(path);
    }
    let x = path[i];
    let usual = path[i + 1];
    let mut best: Option<Vec<Asn>> = None;
    for (y, _) in topology.neighbours(x) {
        if y == usual || path[..=i].contains(&y) {
            continue;
        }
        let Some(rest) = tree.path(y) else { continue };
        let mut p = path[..=i].to_vec();
        p.extend(rest);
        let unique: BTreeSet<Asn> = p.iter().copied().collect();
        if unique.len() != p.len() || !topology.is_valley_free(&p) {
            continue;
        }
        if best.as_ref().is_none_or(|b| p.len() < b.len()) {
            best = Some(p);
        }
    }
    Some(best.unwrap_or(path))
}

/// A packet with its digest and arrival time (1–3 ms per hop, the same delays the taps use).
fn packet(frame: Vec<u8>, path: Vec<Asn>, sent_ns: u64, attack: bool, key: &Key) -> Sent {
    let digest = parse(LinkType::Ethernet, &frame)
        .ok()
        .and_then(|p| key.digest_ip(&p.ip).ok())
        .map_or(0, |d| d.as_u128());
    let mut hop = Xoshiro256pp::new(ashiato_rng::mix64(digest as u64));
    let arrived_ns = sent_ns + (1..path.len()).map(|_| hop_delay(&mut hop)).sum::<u64>();
    Sent {
        frame,
        digest,
        path,
        sent_ns,
        arrived_ns,
        attack,
    }
}

#[cfg(test)]
mod tests {
    use super::{Scenario, ScenarioConfig, Tap};
    use ashiato_api::federation::Watch;
    use ashiato_digest::DEMO_KEY;
    use ashiato_trace::topology::{LAB_VICTIM, default_lab};

    fn cfg(participation: f64) -> ScenarioConfig {
        ScenarioConfig {
            seed: 7,
            participation,
            origins: 4,
            packets: 10,
            background: 100,
            must_attack: Vec::new(),
            core: false,
            duplicates: 0.0,
            multipath: 0.0,
        }
    }

    #[test]
    fn every_crossing_is_recorded_at_both_ends() {
        let s = Scenario::build(default_lab(), LAB_VICTIM, &cfg(1.0), &DEMO_KEY, 1 << 40).unwrap();
        assert_eq!(s.origins.len(), 4);
        assert!(!s.origins.contains(&LAB_VICTIM));
        assert_eq!(s.sent.iter().filter(|p| p.attack).count(), 40);
        for (i, p) in s.sent.iter().enumerate() {
            for w in p.path.windows(2) {
                for (d, n) in [(w[0], w[1]), (w[1], w[0])] {
                    let tap = Tap {
                        domain: d,
                        watch: Watch::Link { neighbour: n },
                    };
                    assert!(s.taps[&tap].iter().any(|e| e.1 == i as u32));
                }
            }
            let edge = Tap {
                domain: p.origin(),
                watch: Watch::Edge,
            };
            assert!(
                s.taps[&edge]
                    .iter()
                    .any(|e| e.1 == i as u32 && e.0 == p.sent_ns)
            );
        }
        // Deterministic for a seed.
        let again =
            Scenario::build(default_lab(), LAB_VICTIM, &cfg(1.0), &DEMO_KEY, 1 << 40).unwrap();
        assert_eq!(again.taps, s.taps);
    }

    #[test]
    fn non_participants_have_no_probes() {
        let s = Scenario::build(default_lab(), LAB_VICTIM, &cfg(0.3), &DEMO_KEY, 1 << 40).unwrap();
        assert!(s.participants.contains(&LAB_VICTIM));
        assert!(s.taps.keys().all(|t| s.participants.contains(&t.domain)));
        assert!(s.participants.len() < 13);
    }
}
