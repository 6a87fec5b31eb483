//! Built-in topologies for labs: the 2009 trial's two settings and a small realistic one.
//!
//! They use private ASNs (RFC 6996): 64512–65534 for the first 1,023 domains, then
//! 4200000000 onward, so they never collide with a real AS in a mixed lab.

use super::{Asn, Link, Topology};

/// Domains beyond this many are not built by [`chain`] (a bound on memory, not a real need).
const MAX_CHAIN: usize = 1 << 20;
/// Domains beyond this many are not built by [`mesh`] (n² / 2 links).
const MAX_MESH: usize = 2048;

/// The `i`-th private ASN used by the built-in shapes: 64512 + i for i < 1023, then
/// 4200000000 + (i − 1023), saturating at 4294967294 (the last private ASN).
pub fn shape_asn(i: usize) -> Asn {
    const SMALL: usize = 65534 - 64512 + 1;
    if i < SMALL {
        64512 + i as Asn
    } else {
        let k = u64::try_from(i - SMALL).unwrap_or(u64::MAX);
        u32::try_from(4_200_000_000u64.saturating_add(k))
            .unwrap_or(u32::MAX)
            .min(4_294_967_294)
    }
}

/// `n` domains in one provider→customer line (`shape_asn(0)` at the top), so a packet between
/// any two crosses every domain between them: the 2009 trial's 13-ISP serial setting.
/// At most 2^20 domains are built.
pub fn chain(n: usize) -> Topology {
    let n = n.min(MAX_CHAIN);
    let links = (1..n).map(|i| Link::provider_customer(shape_asn(i - 1), shape_asn(i)));
    Topology::from_parts((0..n).map(shape_asn), links).0
}

/// `n` domains all peering with each other, so every packet crosses one link: the 2009
/// trial's 15-ISP full-mesh setting. At most 2,048 domains are built.
pub fn mesh(n: usize) -> Topology {
    let n = n.min(MAX_MESH);
    let links =
        (0..n).flat_map(|i| (i + 1..n).map(move |j| Link::peer(shape_asn(i), shape_asn(j))));
    Topology::from_parts((0..n).map(shape_asn), links).0
}

/// The tier-1 domains of [`default_lab`].
pub const LAB_TIER1: [Asn; 3] = [64512, 64513, 64514];

/// The stub of [`default_lab`] that is the natural victim: multi-homed to two regional
/// transits that peer with each other.
pub const LAB_VICTIM: Asn = 64530;

/// A small realistic hierarchy of 13 domains:
///
/// - tier 1: 64512, 64513, 64514, all peering with each other;
/// - regional transits: 64520 (customer of 64512), 64521 (of 64512 and 64513), 64522 (of
///   64513), 64523 (of 64514) and its sibling 64524 (of 64514 and 64513); 64520 and 64521
///   peer at a regional exchange;
/// - stubs: 64530 the victim (of 64520 and 64521), 64531 (of 64521 and 64522), 64532 (of
///   64523), 64533 (of 64524 and 64522), 64534 (of 64520).
pub fn default_lab() -> Topology {
    let pc = Link::provider_customer;
    Topology::from_links([
        Link::peer(64512, 64513),
        Link::peer(64512, 64514),
        Link::peer(64513, 64514),
        pc(64512, 64520),
        pc(64512, 64521),
        pc(64513, 64521),
        pc(64513, 64522),
        pc(64514, 64523),
        pc(64514, 64524),
        pc(64513, 64524),
        Link::sibling(64523, 64524),
        Link::peer(64520, 64521),
        pc(64520, LAB_VICTIM),
        pc(64521, LAB_VICTIM),
        pc(64521, 64531),
        pc(64522, 64531),
        pc(64523, 64532),
        pc(64524, 64533),
        pc(64522, 64533),
        pc(64520, 64534),
    ])
    .0
}

#[cfg(test)]
mod tests {
    use super::{LAB_TIER1, LAB_VICTIM, chain, default_lab, mesh, shape_asn};

    #[test]
    fn chain_crosses_every_domain() {
        let t = chain(13);
        assert_eq!((t.len(), t.link_count()), (13, 12));
        let r = t.routes_to(shape_asn(12));
        for i in 0..13 {
            assert_eq!(r.hops(shape_asn(i)), Some(12 - i));
        }
        let r = t.routes_to(shape_asn(0));
        assert_eq!(r.path(shape_asn(12)).map(|p| p.len()), Some(13));
        let r = t.routes_to(shape_asn(5));
        assert_eq!(
            r.path(shape_asn(9)),
            Some((5..=9).rev().map(shape_asn).collect())
        );
        assert_eq!(chain(1).len(), 1);
        assert!(chain(0).is_empty());
    }

    #[test]
    fn mesh_is_one_hop() {
        let t = mesh(15);
        assert_eq!((t.len(), t.link_count()), (15, 105));
        for i in 0..15 {
            let r = t.routes_to(shape_asn(i));
            assert_eq!(r.reachable(), 15);
            for j in 0..15 {
                assert_eq!(r.hops(shape_asn(j)), Some(usize::from(i != j)));
            }
        }
    }

    #[test]
    fn lab_reaches_its_victim_from_everywhere() {
        let t = default_lab();
        assert_eq!(t.len(), 13);
        assert!(t.is_stub(LAB_VICTIM));
        let r = t.routes_to(LAB_VICTIM);
        assert_eq!(r.reachable(), 13);
        for &a in t.asns() {
            assert!(t.is_valley_free(&r.path(a).unwrap()));
        }
        for w in LAB_TIER1.windows(2) {
            assert_eq!(r.hops(w[0]), Some(2));
            assert!(t.role(w[0], w[1]).is_some());
        }
        // 64532 climbs to its tier-1, crosses to 64512, descends.
        assert_eq!(
            r.path(64532),
            Some(vec![64532, 64523, 64514, 64512, 64520, LAB_VICTIM])
        );
    }

    #[test]
    fn shape_asns_are_private() {
        assert_eq!(shape_asn(0), 64512);
        assert_eq!(shape_asn(1022), 65534);
        assert_eq!(shape_asn(1023), 4_200_000_000);
        assert_eq!(shape_asn(usize::MAX), 4_294_967_294);
    }
}
