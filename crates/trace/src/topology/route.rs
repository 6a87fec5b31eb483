//! Valley-free routes toward one destination, chosen as BGP would under Gao–Rexford policies.

use super::{Asn, Role, Topology};

const NONE: u32 = u32::MAX;

/// Where an AS learned its route from, in order of preference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RouteClass {
    /// The AS is the destination.
    Own,
    /// Learned from a customer (or from a sibling holding such a route): the packet only
    /// descends from here.
    Customer,
    /// Learned over a peer link (or from a sibling holding such a route).
    Peer,
    /// Learned from a provider (or from a sibling holding such a route).
    Provider,
}

/// Every AS's chosen route toward one destination: next hop, AS-path length and class.
#[derive(Clone, Debug)]
pub struct RouteTree<'t> {
    topo: &'t Topology,
    dst: Asn,
    next: Vec<u32>,
    hops: Vec<u32>,
    class: Vec<Option<RouteClass>>,
}

impl Topology {
    /// Routes from every AS toward `dst`, in O(V + E): customer routes spread upward from
    /// `dst` (to providers and siblings), then one peer hop (and on through siblings), then
    /// provider routes downward (to customers and siblings). Within each phase an AS takes the
    /// shortest route, then the lowest next-hop ASN. An unknown `dst` gives a tree with no
    /// routes.
    pub fn routes_to(&self, dst: Asn) -> RouteTree<'_> {
        let n = self.len();
        let mut t = RouteTree {
            topo: self,
            dst,
            next: vec![NONE; n],
            hops: vec![NONE; n],
            class: vec![None; n],
        };
        let Some(d) = self.index(dst) else { return t };
        t.hops[d as usize] = 0;
        t.class[d as usize] = Some(RouteClass::Own);
        let mut buckets = Buckets::default();

        // Phase 1: a provider (or sibling) of an AS with a customer route gets one.
        buckets.push(0, d);
        t.settle(&mut buckets, RouteClass::Customer, |r| {
            matches!(r, Role::Provider | Role::Sibling)
        });

        // Phase 2: a peer of an AS with a customer route gets a peer route, and shares it
        // with its siblings.
        for u in 0..n as u32 {
            if matches!(
                t.class[u as usize],
                Some(RouteClass::Own | RouteClass::Customer)
            ) {
                for &(v, role) in self.row(u) {
                    if role == Role::Peer {
                        t.relax(&mut buckets, u, v, RouteClass::Peer);
                    }
                }
            }
        }
        t.settle(&mut buckets, RouteClass::Peer, |r| r == Role::Sibling);

        // Phase 3: a customer (or sibling) of any AS with a route gets a provider route.
        for u in 0..n as u32 {
            if t.class[u as usize].is_some() {
                buckets.push(t.hops[u as usize], u);
            }
        }
        t.settle(&mut buckets, RouteClass::Provider, |r| {
            matches!(r, Role::Customer | Role::Sibling)
        });
        t
    }
}

impl RouteTree<'_> {
    /// The destination.
    pub fn dst(&self) -> Asn {
        self.dst
    }

    /// The AS path from `src` to the destination (both included), if `src` has a route.
    pub fn path(&self, src: Asn) -> Option<Vec<Asn>> {
        let mut i = self.topo.index(src)?;
        let hops = self.hops[i as usize];
        if hops == NONE {
            return None;
        }
        let mut path = Vec::with_capacity(hops as usize + 1);
        path.push(src);
        // Lengths strictly fall along next hops, so this ends within `hops` steps.
        while self.next[i as usize] != NONE && path.len() <= hops as usize {
            i = self.next[i as usize];
            path.push(self.topo.asn(i));
        }
        Some(path)
    }

    /// `src`'s next hop toward the destination (`None` at the destination or without route).
    pub fn next_hop(&self, src: Asn) -> Option<Asn> {
        let i = self.topo.index(src)?;
        let nh = self.next[i as usize];
        (nh != NONE).then(|| self.topo.asn(nh))
    }

    /// The number of AS hops from `src` to the destination, if `src` has a route.
    pub fn hops(&self, src: Asn) -> Option<usize> {
        let i = self.topo.index(src)?;
        let h = self.hops[i as usize];
        (h != NONE).then_some(h as usize)
    }

    /// Where `src` learned its route, if it has one.
    pub fn class(&self, src: Asn) -> Option<RouteClass> {
        self.class[self.topo.index(src)? as usize]
    }

    /// ASes with a route, the destination included.
    pub fn reachable(&self) -> usize {
        self.class.iter().filter(|c| c.is_some()).count()
    }

    /// Processes buckets in order of path length, spreading `class` routes from each AS to
    /// the neighbours whose role `spread` accepts.
    fn settle(&mut self, buckets: &mut Buckets, class: RouteClass, spread: impl Fn(Role) -> bool) {
        let mut level = 0;
        while level < buckets.0.len() {
            let here = std::mem::take(&mut buckets.0[level]);
            for &u in &here {
                // A stale entry: the AS was later reached by a shorter route.
                if self.hops[u as usize] != level as u32 {
                    continue;
                }
                for &(v, role) in self.topo.row(u) {
                    if spread(role) {
                        self.relax(buckets, u, v, class);
                    }
                }
            }
            level += 1;
        }
        buckets.0.clear();
    }

    /// Offers `v` a `class` route through its neighbour `u`.
    fn relax(&mut self, buckets: &mut Buckets, u: u32, v: u32, class: RouteClass) {
        let (ui, vi) = (u as usize, v as usize);
        let len = self.hops[ui].saturating_add(1);
        match self.class[vi] {
            None => {}
            Some(c) if c == class => {
                let better = len < self.hops[vi]
                    || (len == self.hops[vi] && self.topo.asn(u) < self.topo.asn(self.next[vi]));
                if !better {
                    return;
                }
            }
            // Phases run in order of preference: anything else is a better route.
            Some(_) => return,
        }
        let improved = self.hops[vi] != len;
        self.class[vi] = Some(class);
        self.hops[vi] = len;
        self.next[vi] = u;
        if improved {
            buckets.push(len, v);
        }
    }
}

/// Work lists indexed by path length (a unit-weight Dijkstra).
#[derive(Default)]
struct Buckets(Vec<Vec<u32>>);

impl Buckets {
    fn push(&mut self, level: u32, v: u32) {
        let level = level as usize;
        if self.0.len() <= level {
            self.0.resize_with(level + 1, Vec::new);
        }
        self.0[level].push(v);
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Link, Topology};
    use super::RouteClass;

    fn diamond() -> Topology {
        // 1 and 2 are tier-1 peers; 3 and 4 customers of both; 5 customer of 3 and 4;
        // 6 customer of 2; 3 and 4 peer too.
        Topology::from_links([
            Link::peer(1, 2),
            Link::provider_customer(1, 3),
            Link::provider_customer(2, 3),
            Link::provider_customer(1, 4),
            Link::provider_customer(2, 4),
            Link::provider_customer(3, 5),
            Link::provider_customer(4, 5),
            Link::provider_customer(2, 6),
            Link::peer(3, 4),
        ])
        .0
    }

    #[test]
    fn prefers_customer_then_peer_then_provider() {
        let t = diamond();
        let r = t.routes_to(5);
        assert_eq!(r.class(5), Some(RouteClass::Own));
        assert_eq!(r.path(1), Some(vec![1, 3, 5])); // lowest next hop among 3 and 4
        assert_eq!(r.class(1), Some(RouteClass::Customer));
        assert_eq!(r.path(6), Some(vec![6, 2, 3, 5]));
        assert_eq!(r.class(6), Some(RouteClass::Provider));
        let r = t.routes_to(6);
        // 3 could go 3-2-6 (provider) or 3-4-2-6 (peer, then up: not valley-free): provider.
        assert_eq!(r.path(3), Some(vec![3, 2, 6]));
        // 1 has a peer route 1-2-6 though a provider route does not exist for it.
        assert_eq!(r.class(1), Some(RouteClass::Peer));
        assert_eq!(r.path(5), Some(vec![5, 3, 2, 6]));
        assert_eq!(r.reachable(), 6);
        assert_eq!(r.hops(5), Some(3));
        assert_eq!(r.next_hop(6), None);
    }

    #[test]
    fn peer_route_beats_shorter_provider_route() {
        // 10 peers with 11 whose customer chain leads to 13; 10 is also a customer of 12,
        // which is a direct provider of 13.
        let (t, _) = Topology::from_links([
            Link::peer(10, 11),
            Link::provider_customer(11, 14),
            Link::provider_customer(14, 13),
            Link::provider_customer(12, 10),
            Link::provider_customer(12, 13),
        ]);
        let r = t.routes_to(13);
        assert_eq!(r.path(10), Some(vec![10, 11, 14, 13]));
        assert_eq!(r.class(10), Some(RouteClass::Peer));
    }

    #[test]
    fn siblings_share_their_class() {
        let (t, _) = Topology::from_links([
            Link::sibling(20, 21),
            Link::provider_customer(21, 22),
            Link::provider_customer(23, 20),
        ]);
        let r = t.routes_to(22);
        assert_eq!(r.path(23), Some(vec![23, 20, 21, 22]));
        assert_eq!(r.class(20), Some(RouteClass::Customer));
        assert!(t.routes_to(99).path(20).is_none());
    }

    #[test]
    fn no_route_over_a_valley() {
        // 30 and 31 are both providers of 32 only: 30 cannot reach 31.
        let (t, _) = Topology::from_links([
            Link::provider_customer(30, 32),
            Link::provider_customer(31, 32),
        ]);
        assert_eq!(t.routes_to(31).path(30), None);
        assert_eq!(t.routes_to(31).reachable(), 2);
    }
}
