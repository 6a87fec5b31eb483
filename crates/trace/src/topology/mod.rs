//! AS graphs with business relationships, valley-free routes, and the peering skip.
//!
//! # Model
//!
//! A [`Topology`] is a set of autonomous systems ([`Asn`]) and undirected links between them,
//! each with one business relationship ([`Rel`]): provider→customer (the customer pays the
//! provider for transit), peer (settlement-free exchange of each other's customer traffic) or
//! sibling (two ASes of one organisation, which give each other full transit). Seen from one
//! AS, each neighbour has a [`Role`]: it is that AS's `Customer`, `Provider`, `Peer` or
//! `Sibling`.
//!
//! Storage is compact: ASNs sorted in one `Vec`, adjacency in compressed-row form (one offset
//! per AS, one `(neighbour index, role)` pair per link end, sorted by neighbour ASN), so the
//! whole CAIDA 2007-11-05 graph (26,475 ASes, 53,381 links) fits in about 1 MB.
//!
//! # Relationship conventions in files
//!
//! - CAIDA serial-1 (`AS1|AS2|-1`: AS1 is a provider of AS2; `AS1|AS2|0`: peers) and serial-2
//!   (a 4th `|source` field, ignored). We also accept the pre-2013 codes `1` (AS1 is a customer
//!   of AS2) and `2` (siblings); [`Topology::to_serial1`] writes siblings as `2`.
//! - SNAP's copy of CAIDA (`FromAS<TAB>ToAS<TAB>rel`, every link listed in both directions):
//!   `-1` means *From is a customer of To*, `1` means *From is a provider of To*, `0` peers,
//!   `2` siblings. This is what the file's header says, and the data agrees: the tier-1
//!   transit ASes 701, 1239, 3356 and 7018 appear as `From` with `1` on 2,606, 1,654, 1,611
//!   and 2,028 lines and with `-1` on none (2914 on 5), and each `A B -1` line has its mirror
//!   `B A 1`. Note that the sign is the *opposite* of serial-1's `-1`.
//!
//! When a pair of ASes is stated twice, an identical restatement is counted as a duplicate;
//! differing statements are resolved the same way whatever their order, and counted as
//! contradictions ([`LinkStats`]): provider→customer in both directions means mutual transit,
//! which is what a sibling link is; otherwise sibling beats provider→customer beats peer (the
//! stronger claim of transit wins).
//!
//! # Routes
//!
//! Routes follow Gao and Rexford ("Stable Internet routing without global coordination",
//! 2001): a valley-free AS path climbs customer→provider links, crosses at most one peer
//! link, then descends provider→customer links; sibling links may appear anywhere. Each AS
//! prefers, as BGP's local preference does in practice, a route learned from a customer over
//! one from a peer over one from a provider, then the shortest AS path, then the lowest
//! next-hop ASN (our deterministic stand-in for BGP's router-id tie-break). A route learned
//! over a sibling link keeps the class the sibling had. [`Topology::routes_to`] computes all
//! routes toward one destination in O(V + E) with the usual three phases (customer routes
//! upward, then one peer hop, then provider routes downward).
//!
//! # Peering skip
//!
//! InterTrack lets a trace skip a neighbour AS that runs no traceback by asking the next
//! traceback-capable AS beyond it. [`Topology::beyond`] answers: if a packet reached `toward`
//! from the non-participant `skipped`, which participating ASes could have handed it to
//! `skipped`, on a valley-free path that continues to `toward`? It walks away from `toward`
//! through non-participants (up to a depth), keeping only extensions that stay valley-free.
//!
//! Limits: relationships are inferred by CAIDA and partly wrong; real routing has policies
//! (prepending, partial transit, per-prefix choices) this model does not know; and the skip
//! lists every AS that *could* have sent the packet, not the one that did, so a trace asks
//! them all and keeps the ones that saw the digest.

mod parse;
mod route;
mod sample;
mod shapes;
mod skip;

#[cfg(test)]
mod proptests;

pub use parse::{Format, ParseError, ParseStats, Parsed, parse, parse_serial1, parse_snap};
pub use route::{RouteClass, RouteTree};
pub use shapes::{LAB_TIER1, LAB_VICTIM, chain, default_lab, mesh, shape_asn};
pub use skip::{BEYOND_CAP, Beyond, Skip};

/// An autonomous system number (32-bit, RFC 6793).
pub type Asn = u32;

/// The relationship of one link, stated from its first AS (see [`Link`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rel {
    /// The first AS is a provider of the second.
    ProviderCustomer,
    /// Settlement-free peers.
    Peer,
    /// Two ASes of one organisation, giving each other full transit.
    Sibling,
}

/// A neighbour's role relative to an AS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// The neighbour is a customer of the AS (the AS is its provider).
    Customer,
    /// The neighbour is a provider of the AS.
    Provider,
    /// The neighbour peers with the AS.
    Peer,
    /// The neighbour is a sibling of the AS.
    Sibling,
}

/// One link: for [`Rel::ProviderCustomer`], `a` is the provider and `b` the customer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Link {
    /// First AS (the provider of a provider→customer link).
    pub a: Asn,
    /// Second AS (the customer of a provider→customer link).
    pub b: Asn,
    /// The relationship.
    pub rel: Rel,
}

impl Link {
    /// A provider→customer link.
    pub fn provider_customer(provider: Asn, customer: Asn) -> Link {
        Link {
            a: provider,
            b: customer,
            rel: Rel::ProviderCustomer,
        }
    }

    /// A peer link.
    pub fn peer(a: Asn, b: Asn) -> Link {
        Link {
            a,
            b,
            rel: Rel::Peer,
        }
    }

    /// A sibling link.
    pub fn sibling(a: Asn, b: Asn) -> Link {
        Link {
            a,
            b,
            rel: Rel::Sibling,
        }
    }
}

/// What building a topology from stated links found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Links stated, including restatements and self-links.
    pub stated: usize,
    /// Restatements of a link already stated with the same relationship (SNAP lists every
    /// link twice, so half its lines land here).
    pub duplicates: usize,
    /// Restatements that disagreed with an earlier statement, resolved as the module doc says.
    pub contradictions: usize,
    /// Links from an AS to itself, skipped.
    pub self_links: usize,
}

/// Size and shape of a topology.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TopologyStats {
    /// ASes.
    pub ases: usize,
    /// Links of all kinds.
    pub links: usize,
    /// Provider→customer links.
    pub provider_customer: usize,
    /// Peer links.
    pub peer: usize,
    /// Sibling links.
    pub sibling: usize,
    /// The largest number of neighbours of one AS.
    pub max_degree: usize,
    /// The AS with that many neighbours (the lowest ASN among ties); 0 when empty.
    pub max_degree_asn: Asn,
    /// ASes with no customer (stubs), isolated ones included.
    pub stubs: usize,
}

/// An AS graph with business relationships. Equality compares ASes and links.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Topology {
    /// Every AS, ascending; an AS's index here is its index everywhere below.
    asns: Vec<Asn>,
    /// `adj[offsets[i]..offsets[i + 1]]` are AS `i`'s neighbours, ascending by ASN.
    offsets: Vec<u32>,
    /// Neighbour index and the neighbour's role relative to the AS.
    adj: Vec<(u32, Role)>,
}

impl Topology {
    /// A topology from stated links, resolving restatements as the module doc says.
    /// Every AS named by a link is included; see [`Topology::from_parts`] for isolated ones.
    pub fn from_links(links: impl IntoIterator<Item = Link>) -> (Topology, LinkStats) {
        Topology::from_parts(std::iter::empty(), links)
    }

    /// A topology of the given ASes (which may have no link) and links.
    pub fn from_parts(
        ases: impl IntoIterator<Item = Asn>,
        links: impl IntoIterator<Item = Link>,
    ) -> (Topology, LinkStats) {
        let mut stats = LinkStats::default();
        // Normalise every statement to (low, high, rel seen from low) and sort, so equal pairs
        // sit together and resolution cannot depend on input order.
        let mut norm: Vec<(Asn, Asn, Norm)> = Vec::new();
        for l in links {
            stats.stated += 1;
            if l.a == l.b {
                stats.self_links += 1;
                continue;
            }
            let (lo, hi) = (l.a.min(l.b), l.a.max(l.b));
            let n = match l.rel {
                Rel::ProviderCustomer if l.a == lo => Norm::LowProvides,
                Rel::ProviderCustomer => Norm::HighProvides,
                Rel::Peer => Norm::Peer,
                Rel::Sibling => Norm::Sibling,
            };
            norm.push((lo, hi, n));
        }
        norm.sort_unstable();
        let mut resolved: Vec<(Asn, Asn, Norm)> = Vec::with_capacity(norm.len());
        let mut i = 0;
        while i < norm.len() {
            let (lo, hi, _) = norm[i];
            let mut j = i + 1;
            let (mut low_provides, mut high_provides, mut peer, mut sibling) =
                (false, false, false, false);
            while j < norm.len() && norm[j].0 == lo && norm[j].1 == hi {
                j += 1;
            }
            for &(_, _, n) in &norm[i..j] {
                match n {
                    Norm::LowProvides => low_provides = true,
                    Norm::HighProvides => high_provides = true,
                    Norm::Peer => peer = true,
                    Norm::Sibling => sibling = true,
                }
            }
            let kinds = [low_provides, high_provides, peer, sibling]
                .iter()
                .filter(|&&k| k)
                .count();
            // Every statement past the first either repeats or contradicts: one kind means all
            // repeats; each extra kind is one contradiction, the rest repeats.
            stats.contradictions += kinds - 1;
            stats.duplicates += (j - i) - kinds;
            let rel = if sibling || (low_provides && high_provides) {
                Norm::Sibling
            } else if low_provides {
                Norm::LowProvides
            } else if high_provides {
                Norm::HighProvides
            } else {
                Norm::Peer
            };
            resolved.push((lo, hi, rel));
            i = j;
        }

        let mut asns: Vec<Asn> = ases.into_iter().collect();
        asns.extend(resolved.iter().flat_map(|&(a, b, _)| [a, b]));
        asns.sort_unstable();
        asns.dedup();
        let idx = |a: Asn| asns.binary_search(&a).unwrap_or(0) as u32;

        let mut degree = vec![0u32; asns.len() + 1];
        for &(a, b, _) in &resolved {
            degree[idx(a) as usize + 1] += 1;
            degree[idx(b) as usize + 1] += 1;
        }
        for i in 1..degree.len() {
            degree[i] += degree[i - 1];
        }
        let offsets = degree;
        let mut fill: Vec<u32> = offsets.clone();
        let mut adj = vec![(0u32, Role::Peer); resolved.len() * 2];
        // `resolved` is sorted by (low, high), so each AS's entries arrive in ascending
        // neighbour order for the entries where it is the low end; sort per row afterwards.
        for &(a, b, n) in &resolved {
            let (ia, ib) = (idx(a), idx(b));
            let (role_of_b, role_of_a) = match n {
                Norm::LowProvides => (Role::Customer, Role::Provider),
                Norm::HighProvides => (Role::Provider, Role::Customer),
                Norm::Peer => (Role::Peer, Role::Peer),
                Norm::Sibling => (Role::Sibling, Role::Sibling),
            };
            adj[fill[ia as usize] as usize] = (ib, role_of_b);
            fill[ia as usize] += 1;
            adj[fill[ib as usize] as usize] = (ia, role_of_a);
            fill[ib as usize] += 1;
        }
        for i in 0..asns.len() {
            adj[offsets[i] as usize..offsets[i + 1] as usize].sort_unstable_by_key(|e| e.0);
        }
        (Topology { asns, offsets, adj }, stats)
    }

    /// Every AS, ascending.
    pub fn asns(&self) -> &[Asn] {
        &self.asns
    }

    /// Number of ASes.
    pub fn len(&self) -> usize {
        self.asns.len()
    }

    /// Whether there is no AS.
    pub fn is_empty(&self) -> bool {
        self.asns.is_empty()
    }

    /// Number of links.
    pub fn link_count(&self) -> usize {
        self.adj.len() / 2
    }

    /// Whether `asn` is in the topology.
    pub fn contains(&self, asn: Asn) -> bool {
        self.index(asn).is_some()
    }

    /// `asn`'s neighbours, ascending, each with its role relative to `asn` (none if unknown).
    pub fn neighbours(&self, asn: Asn) -> impl Iterator<Item = (Asn, Role)> + '_ {
        let row = self.index(asn).map(|i| self.row(i)).unwrap_or(&[]);
        row.iter().map(|&(j, role)| (self.asns[j as usize], role))
    }

    /// `b`'s role relative to `a`, if they are linked.
    pub fn role(&self, a: Asn, b: Asn) -> Option<Role> {
        let (ia, ib) = (self.index(a)?, self.index(b)?);
        self.role_idx(ia, ib)
    }

    /// Whether `asn` is in the topology and has no customer (a stub, the usual victim
    /// network; an AS without any link counts too).
    pub fn is_stub(&self, asn: Asn) -> bool {
        self.contains(asn) && !self.neighbours(asn).any(|(_, r)| r == Role::Customer)
    }

    /// Every link once, ascending: provider→customer links as (provider, customer), others
    /// with the lower ASN first.
    pub fn links(&self) -> Vec<Link> {
        let mut out = Vec::with_capacity(self.link_count());
        for i in 0..self.asns.len() {
            let a = self.asns[i];
            for &(j, role) in self.row(i as u32) {
                let b = self.asns[j as usize];
                match role {
                    Role::Customer => out.push(Link::provider_customer(a, b)),
                    Role::Peer if a < b => out.push(Link::peer(a, b)),
                    Role::Sibling if a < b => out.push(Link::sibling(a, b)),
                    _ => {}
                }
            }
        }
        out.sort_unstable();
        out
    }

    /// Size, links by kind and the busiest AS.
    pub fn stats(&self) -> TopologyStats {
        let mut s = TopologyStats {
            ases: self.len(),
            links: self.link_count(),
            ..Default::default()
        };
        for i in 0..self.asns.len() {
            let row = self.row(i as u32);
            if row.len() > s.max_degree {
                s.max_degree = row.len();
                s.max_degree_asn = self.asns[i];
            }
            if !row.iter().any(|e| e.1 == Role::Customer) {
                s.stubs += 1;
            }
            for &(j, role) in row {
                match role {
                    Role::Customer => s.provider_customer += 1,
                    Role::Peer if (i as u32) < j => s.peer += 1,
                    Role::Sibling if (i as u32) < j => s.sibling += 1,
                    _ => {}
                }
            }
        }
        s
    }

    /// Whether `path` is a valley-free AS path: every consecutive pair is linked, the path
    /// climbs (customer→provider), crosses at most one peer link, then descends
    /// (provider→customer); sibling links may appear anywhere. An empty path is not; a
    /// one-AS path is if the AS is known. Repeated ASes are not checked here.
    pub fn is_valley_free(&self, path: &[Asn]) -> bool {
        let Some(&first) = path.first() else {
            return false;
        };
        if !self.contains(first) {
            return false;
        }
        let mut descending = false;
        for w in path.windows(2) {
            // The role of the next AS relative to the current one.
            match self.role(w[0], w[1]) {
                None => return false,
                Some(Role::Sibling) => {}
                Some(Role::Provider) if !descending => {}
                Some(Role::Provider) => return false,
                Some(Role::Peer) if !descending => descending = true,
                Some(Role::Peer) => return false,
                Some(Role::Customer) => descending = true,
            }
        }
        true
    }

    pub(crate) fn index(&self, asn: Asn) -> Option<u32> {
        self.asns.binary_search(&asn).ok().map(|i| i as u32)
    }

    pub(crate) fn asn(&self, i: u32) -> Asn {
        self.asns[i as usize]
    }

    pub(crate) fn row(&self, i: u32) -> &[(u32, Role)] {
        let i = i as usize;
        &self.adj[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }

    pub(crate) fn role_idx(&self, a: u32, b: u32) -> Option<Role> {
        let row = self.row(a);
        row.binary_search_by_key(&b, |e| e.0).ok().map(|k| row[k].1)
    }

    /// The topology induced by the ASes at `keep` (indices, any order): those ASes and the
    /// links among them.
    pub(crate) fn induced(&self, keep: &[u32]) -> Topology {
        let mut keep: Vec<u32> = keep.to_vec();
        keep.sort_unstable();
        keep.dedup();
        let mut map = vec![u32::MAX; self.asns.len()];
        for (new, &old) in keep.iter().enumerate() {
            map[old as usize] = new as u32;
        }
        let mut asns = Vec::with_capacity(keep.len());
        let mut offsets = Vec::with_capacity(keep.len() + 1);
        let mut adj = Vec::new();
        offsets.push(0);
        for &old in &keep {
            asns.push(self.asns[old as usize]);
            for &(j, role) in self.row(old) {
                let m = map[j as usize];
                if m != u32::MAX {
                    adj.push((m, role));
                }
            }
            offsets.push(adj.len() as u32);
        }
        Topology { asns, offsets, adj }
    }
}

/// A statement normalised to the lower ASN's view; the order decides nothing but sorting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Norm {
    LowProvides,
    HighProvides,
    Peer,
    Sibling,
}

#[cfg(test)]
mod tests {
    use super::{Link, LinkStats, Rel, Role, Topology};

    #[test]
    fn neighbours_carry_roles_both_ways() {
        let (t, _) = Topology::from_links([
            Link::provider_customer(1, 2),
            Link::peer(2, 3),
            Link::sibling(3, 4),
        ]);
        assert_eq!(
            t.neighbours(2).collect::<Vec<_>>(),
            [(1, Role::Provider), (3, Role::Peer)]
        );
        assert_eq!(t.role(1, 2), Some(Role::Customer));
        assert_eq!(t.role(4, 3), Some(Role::Sibling));
        assert_eq!(t.role(1, 3), None);
        assert_eq!(t.neighbours(99).count(), 0);
        assert_eq!(t.link_count(), 3);
        let s = t.stats();
        assert_eq!(
            (s.ases, s.provider_customer, s.peer, s.sibling),
            (4, 1, 1, 1)
        );
        assert_eq!((s.max_degree, s.max_degree_asn), (2, 2));
    }

    #[test]
    fn contradictions_resolve_whatever_the_order() {
        let links = [
            Link::provider_customer(1, 2),
            Link::provider_customer(2, 1),
            Link::peer(3, 4),
            Link::provider_customer(4, 3),
            Link::peer(5, 6),
            Link::peer(6, 5),
            Link::sibling(7, 7),
        ];
        let (t, stats) = Topology::from_links(links);
        let mut rev = links;
        rev.reverse();
        assert_eq!(Topology::from_links(rev).0, t);
        assert_eq!(
            stats,
            LinkStats {
                stated: 7,
                duplicates: 1,
                contradictions: 2,
                self_links: 1
            }
        );
        assert_eq!(t.role(1, 2), Some(Role::Sibling));
        assert_eq!(t.role(3, 4), Some(Role::Provider));
        assert_eq!(t.role(5, 6), Some(Role::Peer));
        assert!(!t.contains(7));
        assert_eq!(t.links().len(), 3);
        assert!(
            t.links()
                .iter()
                .any(|l| l.rel == Rel::ProviderCustomer && l.a == 4)
        );
    }

    #[test]
    fn valley_free_paths() {
        // 1 and 2 are tier-1 peers; 3 is 1's customer, 4 is 2's; 5 is 3's customer.
        let (t, _) = Topology::from_links([
            Link::peer(1, 2),
            Link::provider_customer(1, 3),
            Link::provider_customer(2, 4),
            Link::provider_customer(3, 5),
            Link::provider_customer(4, 6),
            Link::peer(3, 4),
        ]);
        assert!(t.is_valley_free(&[5, 3, 1, 2, 4, 6]));
        assert!(t.is_valley_free(&[5, 3, 4, 6]));
        assert!(!t.is_valley_free(&[1, 3, 4, 2])); // down, across, up
        assert!(!t.is_valley_free(&[3, 1, 2, 4, 3])); // two peer links
        assert!(!t.is_valley_free(&[5, 6])); // not linked
        assert!(!t.is_valley_free(&[]));
        assert!(t.is_valley_free(&[5]));
        assert!(!t.is_valley_free(&[99]));
    }
}
