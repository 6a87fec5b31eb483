//! Topology parsing and routing on real CAIDA data (see `data/README.md`).

use std::path::Path;

use ashiato_trace::topology::{Format, Parsed, Role, Topology, parse};

const EXCERPT: &str = include_str!("data/snap-excerpt-as2500.txt");

/// Every route toward `dst` from the given sources is valley-free and ends at `dst`.
fn routes_hold(t: &Topology, dst: u32, sources: impl Iterator<Item = u32>) -> usize {
    let r = t.routes_to(dst);
    let mut routed = 0;
    for src in sources {
        if let Some(p) = r.path(src) {
            assert_eq!(p.last(), Some(&dst));
            assert!(t.is_valley_free(&p), "valley in {p:?}");
            routed += 1;
        }
    }
    routed
}

#[test]
fn snap_excerpt() {
    let Parsed { topology: t, stats } = parse(EXCERPT).unwrap();
    assert_eq!(stats.format, Format::Snap);
    assert_eq!((stats.lines, stats.comments), (3484, 4));
    assert_eq!(
        (
            stats.links.stated,
            stats.links.duplicates,
            stats.links.contradictions
        ),
        (3480, 1740, 0)
    );
    let s = t.stats();
    assert_eq!((s.ases, s.links), (500, 1740));
    assert_eq!((s.provider_customer, s.peer, s.sibling), (1335, 396, 9));
    // "2500 701 -1": WIDE is a customer of UUNET.
    assert_eq!(t.role(2500, 701), Some(Role::Provider));
    // Serial-1 text of the same topology reads back the same.
    let back = parse(&t.to_serial1()).unwrap();
    assert_eq!(back.stats.format, Format::Serial1);
    assert_eq!(back.topology, t);

    let victim = t
        .neighbours(2500)
        .find(|&(a, r)| r == Role::Customer && t.is_stub(a))
        .unwrap()
        .0;
    let sub = t.sub_topology(victim, 120);
    assert_eq!(sub.len(), 120);
    assert_eq!(sub.routes_to(victim).reachable(), 120);
    assert!(routes_hold(&t, victim, t.asns().iter().copied()) > 400);
}

#[test]
fn snap_full_file_when_present() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let path = root.join("../shared/data/topology/snap-as-caida20071105.txt");
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("skipped: {} is not here", path.display());
        return;
    };
    let Parsed { topology: t, stats } = parse(&text).unwrap();
    assert_eq!(stats.format, Format::Snap);
    assert_eq!(stats.lines - stats.comments, 106_762);
    assert_eq!(
        (
            stats.links.duplicates,
            stats.links.contradictions,
            stats.links.self_links
        ),
        (53_381, 0, 0)
    );
    let s = t.stats();
    assert_eq!((s.ases, s.links), (26_475, 53_381));
    assert_eq!(
        (s.provider_customer, s.peer, s.sibling),
        (49_180, 3_976, 225)
    );
    // The sign convention: well-known tier-1 transit ASes have many customers, no provider.
    for tier1 in [701, 1239, 3356, 7018] {
        let customers = t
            .neighbours(tier1)
            .filter(|n| n.1 == Role::Customer)
            .count();
        let providers = t
            .neighbours(tier1)
            .filter(|n| n.1 == Role::Provider)
            .count();
        assert!(
            customers > 1000 && providers == 0,
            "AS{tier1}: {customers} customers, {providers} providers"
        );
    }
    assert_eq!((s.max_degree_asn, s.max_degree), (701, 2_628));

    let victim = t.pick_stub(1).unwrap();
    assert!(t.is_stub(victim));
    let routed = routes_hold(&t, victim, t.asns().iter().copied().step_by(7));
    assert!(routed > 26_475 / 7 * 9 / 10, "{routed} routed");
    let sub = t.sub_topology(victim, 1000);
    assert_eq!(sub.len(), 1000);
    assert_eq!(sub.routes_to(victim).reachable(), 1000);
}
