//! Choosing parts of a topology: sub-topologies for labs, victims, participating domains.

use std::collections::{BTreeSet, VecDeque};

use ashiato_rng::Xoshiro256pp;

use super::{Asn, Role, Topology};

impl Topology {
    /// The sub-topology of `n` ASes around `around`: ASes in breadth-first order from
    /// `around` (neighbours visited in ascending ASN), with the links among them. Every AS
    /// kept has a valley-free route to `around` inside the sub-topology: ASes without one are
    /// dropped and the next ones in breadth-first order taken instead. Fewer than `n` ASes
    /// come back only when no more can be reached that way; an unknown `around` gives an
    /// empty topology.
    pub fn sub_topology(&self, around: Asn, n: usize) -> Topology {
        let Some(root) = self.index(around) else {
            return Topology::default();
        };
        if n == 0 {
            return Topology::default();
        }
        let order = self.bfs_order(root);
        let mut dropped = vec![false; self.len()];
        loop {
            let chosen: Vec<u32> = order
                .iter()
                .copied()
                .filter(|&i| !dropped[i as usize])
                .take(n)
                .collect();
            let sub = self.induced(&chosen);
            let routes = sub.routes_to(around);
            if routes.reachable() == sub.len() {
                return sub;
            }
            // Dropping ASes without a route cannot take a route from anyone else (no route
            // passes through them), and adding ASes only adds paths, so this converges.
            for &i in &chosen {
                if routes.hops(self.asn(i)).is_none() {
                    dropped[i as usize] = true;
                }
            }
        }
    }

    /// A seeded choice among the ASes that have neighbours but no customer (the usual victim
    /// network); `None` if there is none.
    pub fn pick_stub(&self, seed: u64) -> Option<Asn> {
        let stubs: Vec<u32> = (0..self.len() as u32)
            .filter(|&i| {
                let row = self.row(i);
                !row.is_empty() && row.iter().all(|e| e.1 != Role::Customer)
            })
            .collect();
        if stubs.is_empty() {
            return None;
        }
        let k = below(&mut Xoshiro256pp::new(seed), stubs.len());
        Some(self.asn(stubs[k]))
    }

    /// A seeded set of round(`share` × ASes) participating domains (`share` is clamped to
    /// [0, 1]; NaN counts as 0) that always holds the ASes of `always` that are in the
    /// topology; if those are more than the share, the set is just them.
    pub fn participants(&self, share: f64, seed: u64, always: &[Asn]) -> BTreeSet<Asn> {
        let want = self.share_of_ases(share);
        let mut set: BTreeSet<Asn> = always
            .iter()
            .copied()
            .filter(|&a| self.contains(a))
            .collect();
        let mut rest: Vec<Asn> = self
            .asns
            .iter()
            .copied()
            .filter(|a| !set.contains(a))
            .collect();
        // A partial Fisher–Yates shuffle: the first `need` entries become a uniform sample.
        let need = want.saturating_sub(set.len()).min(rest.len());
        let mut rng = Xoshiro256pp::new(seed);
        for k in 0..need {
            let j = k + below(&mut rng, rest.len() - k);
            rest.swap(k, j);
        }
        set.extend(&rest[..need]);
        set
    }

    /// The core: round(`share` × ASes) domains with the most customers (then the most
    /// neighbours, then the lowest ASN), plus the ASes of `always`. A federation deployed
    /// at the core only, as in the single-packet checkpoint studies (Moreira et al.: about
    /// 8 % of ASes).
    pub fn core_participants(&self, share: f64, always: &[Asn]) -> BTreeSet<Asn> {
        let want = self.share_of_ases(share);
        let mut ranked: Vec<(usize, usize, Asn)> = self
            .asns
            .iter()
            .map(|&a| {
                let mut customers = 0;
                let mut degree = 0;
                for (_, role) in self.neighbours(a) {
                    degree += 1;
                    if role == super::Role::Customer {
                        customers += 1;
                    }
                }
                (customers, degree, a)
            })
            .collect();
        ranked.sort_by(|x, y| y.0.cmp(&x.0).then(y.1.cmp(&x.1)).then(x.2.cmp(&y.2)));
        let mut set: BTreeSet<Asn> = always
            .iter()
            .copied()
            .filter(|&a| self.contains(a))
            .collect();
        for &(_, _, a) in &ranked {
            if set.len() >= want {
                break;
            }
            set.insert(a);
        }
        set
    }

    /// round(`share` × ASes), `share` clamped to [0, 1] (NaN counts as 0).
    fn share_of_ases(&self, share: f64) -> usize {
        let n = self.len();
        let share = if share.is_nan() {
            0.0
        } else {
            share.clamp(0.0, 1.0)
        };
        ((share * n as f64).round() as usize).min(n)
    }

    /// Every AS reachable from `root`, in breadth-first order, neighbours ascending.
    fn bfs_order(&self, root: u32) -> Vec<u32> {
        let mut seen = vec![false; self.len()];
        let mut order = Vec::new();
        let mut queue = VecDeque::from([root]);
        seen[root as usize] = true;
        while let Some(u) = queue.pop_front() {
            order.push(u);
            for &(v, _) in self.row(u) {
                if !seen[v as usize] {
                    seen[v as usize] = true;
                    queue.push_back(v);
                }
            }
        }
        order
    }
}

/// Uniform in `0..n` (`n > 0`) by Lemire's multiply-shift; the bias for n ≪ 2^64 is
/// negligible for sampling labs.
fn below(rng: &mut Xoshiro256pp, n: usize) -> usize {
    ((u128::from(rng.next_u64()) * n as u128) >> 64) as usize
}

#[cfg(test)]
mod tests {
    use super::super::{LAB_VICTIM, Link, Topology, chain, default_lab};

    #[test]
    fn sub_topology_keeps_routable_ases() {
        let t = default_lab();
        for n in 0..=14 {
            let s = t.sub_topology(LAB_VICTIM, n);
            assert_eq!(s.len(), n.min(13));
            assert_eq!(s.routes_to(LAB_VICTIM).reachable(), s.len());
        }
        // 3 and 4 reach 1 only over the valley 3→2→1 (2 is a customer of both 1 and 3):
        // they are dropped, and nothing is left to refill with.
        let (t, _) = Topology::from_links([
            Link::provider_customer(1, 2),
            Link::provider_customer(3, 2),
            Link::provider_customer(3, 4),
            Link::provider_customer(1, 5),
        ]);
        assert_eq!(t.sub_topology(1, 4).asns(), [1, 2, 5]);
        assert_eq!(t.sub_topology(1, 2).asns(), [1, 2]);
        assert!(t.sub_topology(99, 4).is_empty());
    }

    #[test]
    fn stubs_and_participants_are_seeded() {
        let t = default_lab();
        let stub = t.pick_stub(7).unwrap();
        assert!(t.is_stub(stub));
        assert_eq!(t.pick_stub(7), Some(stub));
        assert_eq!(chain(1).pick_stub(1), None);
        let p = t.participants(0.5, 3, &[LAB_VICTIM, 1]);
        assert_eq!(p.len(), 7); // round(6.5)
        assert!(p.contains(&LAB_VICTIM) && !p.contains(&1));
        assert_eq!(t.participants(0.5, 3, &[LAB_VICTIM]), p);
        assert_eq!(t.participants(f64::NAN, 3, &[]).len(), 0);
        assert_eq!(t.participants(2.0, 3, &[]).len(), 13);
        assert_eq!(t.participants(0.0, 3, &[64512, 64513]).len(), 2);
    }
}
