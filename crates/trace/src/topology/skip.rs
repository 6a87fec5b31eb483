//! InterTrack's peering skip: the participating domains beyond a neighbour that does not run
//! traceback.

use super::{Asn, Role, Topology};

/// At most this many domains are returned by [`Topology::beyond`].
pub const BEYOND_CAP: usize = 64;

/// Gaps longer than this are not searched, whatever depth is asked: real AS paths are a few
/// hops long, and the bound keeps the loop check on each gap cheap.
const MAX_GAP: usize = 16;

/// A participating domain that could have handed the packet on toward the asking domain
/// through non-participants only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skip {
    /// The participating domain to ask.
    pub domain: Asn,
    /// The non-participants between it and the asking domain, in the packet's order: the
    /// first is `domain`'s neighbour, the last is the skipped neighbour. The packet's path
    /// was `domain`, `gap`…, the asking domain.
    pub gap: Vec<Asn>,
}

/// The result of [`Topology::beyond`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Beyond {
    /// Domains found, by gap length then ASN; each domain once, with its shortest gap.
    pub skips: Vec<Skip>,
    /// More than [`BEYOND_CAP`] domains were found and only the first are listed.
    pub capped: bool,
}

impl Topology {
    /// The participating domains that could have handed a packet to `skipped`, a
    /// non-participating neighbour of `toward`, on a valley-free path continuing to `toward`.
    ///
    /// Walks from `skipped` away from `toward`: a neighbour X of the current AS C is
    /// considered only if X→C→…→`toward` is still valley-free (and X is not on it yet);
    /// participating X are reported, non-participating X are walked through while the gap is
    /// at most `max_depth` ASes long (`skipped` counts as one; at most 16). So `max_depth` 1
    /// lists the participating neighbours of `skipped` only. Empty if `skipped` and `toward`
    /// are not linked; `participates(skipped)` is not consulted.
    pub fn beyond(
        &self,
        skipped: Asn,
        toward: Asn,
        participates: &dyn Fn(Asn) -> bool,
        max_depth: usize,
    ) -> Beyond {
        let mut out = Beyond::default();
        let max_depth = max_depth.min(MAX_GAP);
        let Some((s, t, descending)) = self.gap_start(skipped, toward) else {
            return out;
        };
        if max_depth == 0 {
            return out;
        }
        let mut arena = vec![Entry {
            node: s,
            descending,
            parent: NO_PARENT,
        }];
        let mut seen = vec![0u8; self.len()];
        seen[s as usize] |= state_bit(descending);
        let mut found = vec![false; self.len()];
        let mut level: Vec<usize> = vec![0];
        for depth in 1..=max_depth {
            let mut hits: Vec<Skip> = Vec::new();
            let mut next_level = Vec::new();
            for &e in &level {
                let Entry {
                    node: c,
                    descending,
                    ..
                } = arena[e];
                for &(x, role_x) in self.row(c) {
                    if x == t || self.on_gap(&arena, e, x) {
                        continue;
                    }
                    // The hop is X→C, so what matters is C's role relative to X.
                    let Some(desc_x) = prepend(invert(role_x), descending) else {
                        continue;
                    };
                    let asn_x = self.asn(x);
                    if participates(asn_x) {
                        if !found[x as usize] {
                            found[x as usize] = true;
                            hits.push(Skip {
                                domain: asn_x,
                                gap: self.gap(&arena, e),
                            });
                        }
                    } else if depth < max_depth && seen[x as usize] & state_bit(desc_x) == 0 {
                        seen[x as usize] |= state_bit(desc_x);
                        arena.push(Entry {
                            node: x,
                            descending: desc_x,
                            parent: e,
                        });
                        next_level.push(arena.len() - 1);
                    }
                }
            }
            hits.sort_by_key(|h| h.domain);
            out.skips.extend(hits);
            if out.skips.len() > BEYOND_CAP {
                out.skips.truncate(BEYOND_CAP);
                out.capped = true;
                return out;
            }
            if next_level.is_empty() {
                break;
            }
            level = next_level;
        }
        out
    }

    /// The ASes a packet that reached `toward` from its non-participating neighbour
    /// `skipped` could have come from: `skipped` and every non-participant from which a
    /// valley-free path runs to `skipped` and on to `toward` through non-participants only,
    /// at most `max_depth` ASes long (at most 16), ascending. Participants are left out (the
    /// trace asked them: they either refuted the packet or would have been followed).
    /// Empty if the two are not linked.
    pub fn gap_candidates(
        &self,
        skipped: Asn,
        toward: Asn,
        participates: &dyn Fn(Asn) -> bool,
        max_depth: usize,
    ) -> Vec<Asn> {
        let max_depth = max_depth.min(MAX_GAP);
        let Some((s, t, descending)) = self.gap_start(skipped, toward) else {
            return Vec::new();
        };
        let mut out = vec![skipped];
        if max_depth == 0 {
            return out;
        }
        // Breadth first over (AS, descending): a state once reached needs no second visit,
        // since what may be put in front of it depends on nothing else.
        let mut seen = vec![0u8; self.len()];
        seen[s as usize] |= state_bit(descending);
        seen[t as usize] = 3;
        let mut listed = vec![false; self.len()];
        listed[s as usize] = true;
        let mut level = vec![(s, descending)];
        for _ in 1..max_depth {
            let mut next = Vec::new();
            for &(c, descending) in &level {
                for &(x, role_x) in self.row(c) {
                    let Some(desc_x) = prepend(invert(role_x), descending) else {
                        continue;
                    };
                    let asn_x = self.asn(x);
                    if participates(asn_x) || seen[x as usize] & state_bit(desc_x) != 0 {
                        continue;
                    }
                    seen[x as usize] |= state_bit(desc_x);
                    if !listed[x as usize] {
                        listed[x as usize] = true;
                        out.push(asn_x);
                    }
                    next.push((x, desc_x));
                }
            }
            if next.is_empty() {
                break;
            }
            level = next;
        }
        out.sort_unstable();
        out
    }

    /// Where a walk away from `toward` through its neighbour `skipped` starts: their indices,
    /// and whether the path from `skipped` to `toward` only descends (provider→customer and
    /// sibling hops: any hop may still be put in front of it). `None` if either is unknown,
    /// they are not linked, or the hop cannot end a valley-free path.
    fn gap_start(&self, skipped: Asn, toward: Asn) -> Option<(u32, u32, bool)> {
        let (s, t) = (self.index(skipped)?, self.index(toward)?);
        let descending = prepend(self.role_idx(s, t)?, true)?;
        Some((s, t, descending))
    }

    /// The gap ending at arena entry `e`: from its AS back to `skipped`.
    fn gap(&self, arena: &[Entry], mut e: usize) -> Vec<Asn> {
        let mut gap = Vec::new();
        while e != NO_PARENT {
            gap.push(self.asn(arena[e].node));
            e = arena[e].parent;
        }
        gap
    }

    /// Whether AS `x` is already on the gap ending at arena entry `e`.
    fn on_gap(&self, arena: &[Entry], mut e: usize, x: u32) -> bool {
        while e != NO_PARENT {
            if arena[e].node == x {
                return true;
            }
            e = arena[e].parent;
        }
        false
    }
}

const NO_PARENT: usize = usize::MAX;

#[derive(Clone, Copy)]
struct Entry {
    node: u32,
    descending: bool,
    parent: usize,
}

fn state_bit(descending: bool) -> u8 {
    if descending { 1 } else { 2 }
}

fn invert(role: Role) -> Role {
    match role {
        Role::Customer => Role::Provider,
        Role::Provider => Role::Customer,
        r => r,
    }
}

/// Puts a hop whose far end has role `role` relative to its near end in front of a
/// valley-free path; `descending` says whether that path only descends. `None` if the result
/// is not valley-free, else whether it only descends.
fn prepend(role: Role, descending: bool) -> Option<bool> {
    match role {
        Role::Sibling => Some(descending),
        Role::Provider => Some(false),
        Role::Peer | Role::Customer if !descending => None,
        Role::Peer => Some(false),
        Role::Customer => Some(true),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{LAB_VICTIM, Link, Topology, default_lab};
    use super::Skip;

    #[test]
    fn skips_a_non_participating_transit() {
        let t = default_lab();
        // The victim's provider 64520 runs no traceback; who could have given it the packet?
        let all_but = |a| a != 64520;
        let b = t.beyond(64520, LAB_VICTIM, &all_but, 1);
        let domains: Vec<_> = b.skips.iter().map(|s| s.domain).collect();
        // 64512 (its provider), 64521 (its peer), 64534 (its customer).
        assert_eq!(domains, [64512, 64521, 64534]);
        assert!(b.skips.iter().all(|s| s.gap == [64520]));
        assert!(!b.capped);
    }

    #[test]
    fn walks_through_several_non_participants() {
        // 1 provider of 2 provider of 3 provider of 4; 5 peer of 1. 4 asks about 3.
        let (t, _) = Topology::from_links([
            Link::provider_customer(1, 2),
            Link::provider_customer(2, 3),
            Link::provider_customer(3, 4),
            Link::peer(5, 1),
            Link::provider_customer(6, 1),
        ]);
        let only = |a| a == 5 || a == 6;
        let b = t.beyond(3, 4, &only, 3);
        assert_eq!(
            b.skips,
            [
                Skip {
                    domain: 5,
                    gap: vec![1, 2, 3]
                },
                Skip {
                    domain: 6,
                    gap: vec![1, 2, 3]
                }
            ]
        );
        assert!(t.beyond(3, 4, &only, 2).skips.is_empty());
        assert!(t.beyond(3, 1, &only, 3).skips.is_empty()); // not linked
        // 4 asks about 3 but 3 got the packet from 4's side only: nothing beyond 4.
        assert!(t.beyond(4, 3, &|_| true, 3).skips.is_empty());
    }

    #[test]
    fn no_valley_beyond_a_customer() {
        // 2 is the asker's customer; 3 is another provider of 2: 3→2→1 is a valley.
        let (t, _) = Topology::from_links([
            Link::provider_customer(1, 2),
            Link::provider_customer(3, 2),
            Link::provider_customer(2, 4),
        ]);
        let b = t.beyond(2, 1, &|_| true, 4);
        assert_eq!(
            b.skips,
            [Skip {
                domain: 4,
                gap: vec![2]
            }]
        );
    }

    #[test]
    fn gap_candidates_are_the_non_participants_behind_valley_free() {
        // 1 provider of 2 provider of 3 provider of 4; 5 peer of 1; 6 provider of 1;
        // 7 another customer of 3. 4 (participating) got a packet from 3 (not).
        let (t, _) = Topology::from_links([
            Link::provider_customer(1, 2),
            Link::provider_customer(2, 3),
            Link::provider_customer(3, 4),
            Link::peer(5, 1),
            Link::provider_customer(6, 1),
            Link::provider_customer(3, 7),
        ]);
        let participates = |a| a == 4 || a == 5;
        // 7 → 3 → 4 is a valley (customer up to provider, down to another customer):
        // allowed, it descends after going up; 5 participates and is left out.
        assert_eq!(t.gap_candidates(3, 4, &participates, 16), [1, 2, 3, 6, 7]);
        assert_eq!(t.gap_candidates(3, 4, &participates, 1), [3]);
        // Behind a customer, only what descends further can have sent it.
        let (t, _) = Topology::from_links([
            Link::provider_customer(1, 2),
            Link::provider_customer(3, 2),
            Link::provider_customer(2, 4),
        ]);
        assert_eq!(t.gap_candidates(2, 1, &|a| a == 1, 8), [2, 4]);
        assert!(
            t.gap_candidates(4, 1, &|_| false, 8).is_empty(),
            "not linked"
        );
    }
}
