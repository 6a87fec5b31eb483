//! Property tests on random small topologies drawn from a seed.

use std::collections::BTreeSet;

use ashiato_rng::Xoshiro256pp;
use proptest::prelude::*;

use super::{Asn, Link, Role, RouteClass, RouteTree, Topology, parse};

/// `m` random links among ASes 1..=n: 60% provider→customer, 30% peer, 10% sibling.
fn random_topology(seed: u64, n: u32, m: usize) -> Topology {
    let mut rng = Xoshiro256pp::new(seed);
    let mut pick = |k: u32| (rng.next_u64() % u64::from(k)) as u32;
    let mut links = Vec::new();
    for _ in 0..m {
        let (a, b) = (1 + pick(n), 1 + pick(n));
        links.push(match pick(10) {
            0..=5 => Link::provider_customer(a, b),
            6..=8 => Link::peer(a, b),
            _ => Link::sibling(a, b),
        });
    }
    Topology::from_links(links).0
}

/// Whether some simple valley-free path leads from `src` to `dst` (exhaustive search).
fn valley_free_path_exists(t: &Topology, src: Asn, dst: Asn) -> bool {
    fn go(t: &Topology, path: &mut Vec<Asn>, dst: Asn) -> bool {
        let last = *path.last().unwrap_or(&dst);
        if last == dst {
            return true;
        }
        let next: Vec<Asn> = t.neighbours(last).map(|(a, _)| a).collect();
        for a in next {
            if path.contains(&a) {
                continue;
            }
            path.push(a);
            if t.is_valley_free(path) && go(t, path, dst) {
                return true;
            }
            path.pop();
        }
        false
    }
    go(t, &mut vec![src], dst)
}

/// Every participant that starts a valley-free simple path `domain`, gap…, `skipped`,
/// `toward` whose gap (ending at `skipped`) has at most `depth` ASes, all but `skipped`
/// non-participants (exhaustive search).
fn beyond_brute(
    t: &Topology,
    skipped: Asn,
    toward: Asn,
    part: &BTreeSet<Asn>,
    depth: usize,
) -> BTreeSet<Asn> {
    fn go(
        t: &Topology,
        rev: &mut Vec<Asn>,
        part: &BTreeSet<Asn>,
        depth: usize,
        out: &mut BTreeSet<Asn>,
    ) {
        let last = *rev.last().unwrap_or(&0);
        let gap = rev.len() - 1;
        let next: Vec<Asn> = t.neighbours(last).map(|(a, _)| a).collect();
        for x in next {
            if rev.contains(&x) {
                continue;
            }
            rev.push(x);
            let path: Vec<Asn> = rev.iter().rev().copied().collect();
            if t.is_valley_free(&path) {
                if part.contains(&x) {
                    out.insert(x);
                } else if gap < depth {
                    // x joins the gap, which then has gap + 1 ASes.
                    go(t, rev, part, depth, out);
                }
            }
            rev.pop();
        }
    }
    let mut out = BTreeSet::new();
    if depth > 0 {
        go(t, &mut vec![toward, skipped], part, depth, &mut out);
    }
    out
}

/// The classes a next hop `y` (with role `role` relative to `x`) can hand `x`, or `None`.
fn class_through(role: Role, y_class: RouteClass) -> Option<RouteClass> {
    use RouteClass::{Customer, Own, Peer, Provider};
    match (role, y_class) {
        (Role::Customer, Own | Customer) => Some(Customer),
        (Role::Customer, _) => None,
        (Role::Peer, Own | Customer) => Some(Peer),
        (Role::Peer, _) => None,
        (Role::Provider, c) => Some(c.max(Provider)),
        (Role::Sibling, Own) => Some(Customer),
        (Role::Sibling, c) => Some(c),
    }
}

fn check_tree(t: &Topology, r: &RouteTree<'_>, brute: bool) -> Result<(), TestCaseError> {
    let dst = r.dst();
    for &x in t.asns() {
        let Some(path) = r.path(x) else {
            if brute {
                prop_assert!(
                    !valley_free_path_exists(t, x, dst),
                    "{x} has a path to {dst}"
                );
            }
            continue;
        };
        prop_assert_eq!(path.first(), Some(&x));
        prop_assert_eq!(path.last(), Some(&dst));
        prop_assert_eq!(Some(path.len() - 1), r.hops(x));
        prop_assert_eq!(
            path.iter().collect::<BTreeSet<_>>().len(),
            path.len(),
            "loop {:?}",
            path
        );
        prop_assert!(t.is_valley_free(&path), "valley in {:?}", path);
        if x == dst {
            continue;
        }
        // The chosen route is the best offer: class first, then length, then next-hop ASN.
        let best = t
            .neighbours(x)
            .filter_map(|(y, role)| {
                let c = class_through(role, r.class(y)?)?;
                Some((c, r.hops(y)? + 1, y))
            })
            .filter(|&(_, _, y)| y != x)
            .min();
        prop_assert_eq!(
            best,
            Some((r.class(x).unwrap(), path.len() - 1, path[1])),
            "at {}",
            x
        );
    }
    Ok(())
}

proptest! {
    #[test]
    fn routes_are_valley_free_and_preferred(seed in any::<u64>(), n in 2u32..12, m in 0usize..30) {
        let t = random_topology(seed, n, m);
        for &dst in t.asns() {
            check_tree(&t, &t.routes_to(dst), true)?;
        }
    }

    #[test]
    fn routes_on_bigger_graphs(seed in any::<u64>(), n in 10u32..80, m in 10usize..200) {
        let t = random_topology(seed, n, m);
        let dst = t.asns().get((seed % 7) as usize).copied().unwrap_or(1);
        check_tree(&t, &t.routes_to(dst), false)?;
    }

    #[test]
    fn beyond_gives_valley_free_extensions(
        seed in any::<u64>(), n in 2u32..30, m in 0usize..80, depth in 0usize..5, share in 0.0f64..1.0,
    ) {
        let t = random_topology(seed, n, m);
        let part = t.participants(share, seed ^ 1, &[]);
        let links = t.links();
        let Some(l) = links.get((seed % 97) as usize % links.len().max(1)) else { return Ok(()) };
        for (skipped, toward) in [(l.a, l.b), (l.b, l.a)] {
            let b = t.beyond(skipped, toward, &|a| part.contains(&a), depth);
            prop_assert!(b.skips.len() <= super::BEYOND_CAP);
            let mut domains = BTreeSet::new();
            for s in &b.skips {
                prop_assert!(part.contains(&s.domain));
                prop_assert!(domains.insert(s.domain));
                prop_assert!(!s.gap.is_empty() && s.gap.len() <= depth);
                prop_assert_eq!(s.gap.last(), Some(&skipped));
                prop_assert!(s.gap[..s.gap.len() - 1].iter().all(|a| !part.contains(a)));
                let mut path = vec![s.domain];
                path.extend(&s.gap);
                path.push(toward);
                prop_assert!(t.is_valley_free(&path), "valley in {:?}", path);
                prop_assert_eq!(path.iter().collect::<BTreeSet<_>>().len(), path.len());
            }
            if !b.capped && t.role(skipped, toward).is_some() {
                let want = beyond_brute(&t, skipped, toward, &part, depth);
                prop_assert_eq!(want, domains);
            }
        }
    }

    #[test]
    fn parsers_never_panic(text in ".{0,200}") {
        let _ = parse(&text);
        let _ = super::parse_serial1(&text);
        let _ = super::parse_snap(&text);
    }

    #[test]
    fn parsers_never_panic_on_near_misses(text in "[0-9|\t #\n-]{0,200}") {
        let _ = parse(&text);
    }

    #[test]
    fn serial1_round_trips(seed in any::<u64>(), n in 2u32..40, m in 0usize..100) {
        let t = random_topology(seed, n, m);
        let p = parse(&t.to_serial1()).unwrap();
        prop_assert_eq!(p.topology, t);
        prop_assert_eq!(p.stats.links.contradictions + p.stats.links.duplicates, 0);
    }

    #[test]
    fn sub_topologies_route_to_their_centre(seed in any::<u64>(), n in 2u32..40, m in 0usize..100, k in 0usize..20) {
        let t = random_topology(seed, n, m);
        let Some(&around) = t.asns().first() else { return Ok(()) };
        let s = t.sub_topology(around, k);
        prop_assert!(s.len() <= k);
        prop_assert_eq!(s.routes_to(around).reachable(), s.len());
        prop_assert!(s.asns().iter().all(|&a| t.contains(a)));
    }

    #[test]
    fn participants_are_exact_and_seeded(seed in any::<u64>(), n in 1u32..40, m in 0usize..100, share in -0.5f64..1.5) {
        let t = random_topology(seed, n, m);
        let always: Vec<Asn> = t.asns().iter().copied().take(2).chain([u32::MAX]).collect();
        let p = t.participants(share, seed, &always);
        let want = (share.clamp(0.0, 1.0) * t.len() as f64).round() as usize;
        prop_assert_eq!(p.len(), want.max(2.min(t.len())));
        prop_assert!(always[..always.len() - 1].iter().all(|a| p.contains(a)));
        prop_assert!(p.iter().all(|&a| t.contains(a)));
        prop_assert_eq!(&t.participants(share, seed, &always), &p);
    }

    #[test]
    fn link_order_does_not_matter(seed in any::<u64>(), n in 2u32..10, m in 0usize..40) {
        let mut rng = Xoshiro256pp::new(seed);
        let t = random_topology(seed, n, m);
        // Restate every link, some reversed or contradicted, in a shuffled order.
        let mut links = Vec::new();
        for l in t.links() {
            links.push(l);
            match rng.next_u64() % 3 {
                0 => links.push(l),
                1 => links.push(Link::peer(l.b, l.a)),
                _ => {}
            }
        }
        let mut shuffled = links.clone();
        for k in (1..shuffled.len()).rev() {
            let j = (rng.next_u64() % (k as u64 + 1)) as usize;
            shuffled.swap(k, j);
        }
        let (a, sa) = Topology::from_links(links);
        let (b, sb) = Topology::from_links(shuffled);
        prop_assert_eq!(a, b);
        prop_assert_eq!(sa, sb);
    }
}
