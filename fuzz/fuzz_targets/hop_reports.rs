//! The attack graph from hop reports a hostile federation member could send: any JSON that
//! parses as reports (and a domain's view) goes through the mesh walk's expansion and
//! `graph::assemble`, which must neither panic nor name an origin whose report did not
//! conclude `origin`, and must keep every stated probability a probability.
#![no_main]

use ashiato_api::federation::{DomainView, HopReport, Outcome, PathEnd};
use ashiato_trace::decide::expand;
use ashiato_trace::graph::assemble;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((first, rest)) = data.split_first() else {
        return;
    };
    if first % 2 == 0 {
        let Ok(reports) = serde_json::from_slice::<Vec<HopReport>>(rest) else {
            return;
        };
        let packets = (*first as usize % 5) + 1;
        let digests: Vec<String> = (0..packets).map(|i| format!("{:032x}", i % 3)).collect();
        let origins: Vec<(u32, u32)> = reports
            .iter()
            .filter(|r| r.outcome == Outcome::Origin)
            .map(|r| (r.packet, r.domain))
            .collect();
        let victim = reports.first().map_or(0, |r| r.domain);
        let g = assemble(victim, &digests, reports, false, 1e-6);
        assert_eq!(g.paths.len(), packets);
        for p in &g.paths {
            if let PathEnd::Origin { domain } = p.end {
                assert!(origins.contains(&(p.packet, domain)));
                let f = p.false_probability.expect("an origin says how sure it is");
                assert!((0.0..=1.0).contains(&f));
            }
        }
        for o in &g.origins {
            assert!((0.0..=1.0).contains(&o.false_probability));
        }
        for e in &g.edges {
            assert!((0.0..=1.0).contains(&e.false_match));
        }
    } else if let Ok((view, evidence)) = serde_json::from_slice::<(DomainView, Vec<_>)>(rest) {
        let out = expand(&view, &evidence);
        assert!(out.len() <= evidence.len() + view.neighbours.len() + 1);
    }
});
