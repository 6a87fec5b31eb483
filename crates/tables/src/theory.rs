//! False-positive theory and sizing plans for both filter layouts.
//!
//! Digests are outputs of a keyed PRF, so their bits are uniformly random and every bit position
//! a filter derives from them is uniform and independent of the others. Both formulas below rest
//! on that, and both are what the tests in this crate measure against.
//!
//! # Standard filter
//!
//! An item sets k positions chosen uniformly in m bits. After n items a given bit is still zero
//! with probability `(1 - 1/m)^(k n)`, and a query for an absent item tests k positions:
//!
//! ```text
//! FPR_std(m, k, n) = (1 - (1 - 1/m)^(k n))^k
//! ```
//!
//! computed as `(-expm1(k n ln1p(-1/m)))^k` so it stays accurate for m up to 2^40 and tiny
//! rates. (Treating the k tested bits as independent is exact up to O(1/m).)
//!
//! # Blocked filter
//!
//! The filter is `B = m / 512` blocks of one cache line each. An item picks one block uniformly
//! and sets k positions in it, each drawn uniformly from 0..512 *with possible repeats*. A query
//! looks at one block, whose load L (items that went there) is Binomial(n, 1/B), about
//! Poisson(n/B). Loads vary: some blocks are much fuller than average, and those dominate the
//! false positives, which is why a blocked filter needs more bits per item than a standard one
//! for the same rate (Putze, Sanders, Singler, *Cache-, Hash- and Space-Efficient Bloom
//! Filters*, 2007). The classic approximation is
//!
//! ```text
//! FPR_blk ≈ Σ_i P(L = i) · (1 - (1 - 1/512)^(k i))^k
//! ```
//!
//! but inside a block of only 512 bits the "tested bits are independent" step is no longer
//! negligible: with X the number of distinct bits set by `t = k i` throws, the exact
//! conditional rate is `E[(X/512)^k]`, which exceeds `(E[X]/512)^k` by Jensen's inequality —
//! +0.4 % at k = 4, +1.5 % at k = 8 and +3.3 % at k = 16 for 10.5 bits per item, and the
//! measurements in this crate's tests side with the exact form. This module therefore uses
//!
//! ```text
//! FPR_blk(m, k, n) = Σ_i Binomial(n, 1/B)(i) · E[(X_{k i} / 512)^k]
//! ```
//!
//! where the occupancy distribution of X after t throws into 512 bins is computed once per k
//! by the recurrence `P_{t+1}(x) = P_t(x)·x/512 + P_t(x-1)·(513-x)/512` (all terms positive,
//! so no cancellation) and memoized. The binomial weights are generated from the mode outwards
//! by their ratio recurrence and normalized, which needs no log-gamma and cannot underflow;
//! terms are summed until the weights fall below 1e-30 of the mode's.
//!
//! # Estimating from a filter's contents
//!
//! [`fpr_from_fill`]: for a standard filter the fraction of ones `f` gives `f^k` directly. For
//! a blocked filter the global fill is not enough — two filters with the same fill differ in
//! FPR when their block loads are spread differently — so the estimate uses the insert count.

use std::sync::OnceLock;

use crate::params::{BLOCK_BITS, FilterKind, FilterParams, MAX_K, MAX_M_BITS};

/// Probability that a query for an absent item answers "present" after `n` inserts, for a
/// filter of shape `p` (see the module docs for the formulas). Returns 0 for `n = 0` and 1 for
/// shapes that fail [`FilterParams::validate`].
pub fn fpr(p: &FilterParams, n: u64) -> f64 {
    if n == 0 {
        return 0.0;
    }
    if p.validate().is_err() {
        return 1.0;
    }
    match p.kind {
        FilterKind::Standard => standard_fpr(p.m_bits, p.k, n),
        FilterKind::Blocked => blocked_fpr(p.blocks(), p.k, n),
    }
}

fn standard_fpr(m: u64, k: u32, n: u64) -> f64 {
    let x = f64::from(k) * n as f64 * (-1.0 / m as f64).ln_1p();
    let fill = -x.exp_m1();
    fill.powi(k as i32)
}

/// `E[(X_t / 512)^k]` for `t = k i` throws, i = 0, 1, ...; entries stop once the value is
/// within 1e-15 of 1 (every later load behaves as 1).
fn block_table(k: u32) -> &'static [f64] {
    static TABLES: [OnceLock<Vec<f64>>; MAX_K as usize] =
        [const { OnceLock::new() }; MAX_K as usize];
    TABLES[(k - 1) as usize].get_or_init(|| build_block_table(k))
}

fn build_block_table(k: u32) -> Vec<f64> {
    const W: usize = BLOCK_BITS as usize;
    let inv_w = 1.0 / W as f64;
    // dist[x] = P(X = x); support [lo, hi].
    let mut dist = vec![0.0f64; W + 1];
    dist[0] = 1.0;
    let (mut lo, mut hi) = (0usize, 0usize);
    let mut out = vec![0.0];
    loop {
        for _ in 0..k {
            let new_hi = (hi + 1).min(W);
            // Descending so dist[x - 1] is still the previous step's value.
            for x in (lo.max(1)..=new_hi).rev() {
                dist[x] = dist[x] * (x as f64 * inv_w) + dist[x - 1] * ((W - x + 1) as f64 * inv_w);
            }
            if lo == 0 {
                dist[0] = 0.0; // after >= 1 throw at least one bit is set
                lo = 1;
            }
            hi = new_hi;
            while lo < hi && dist[lo] < 1e-40 {
                dist[lo] = 0.0;
                lo += 1;
            }
        }
        let f: f64 = (lo..=hi)
            .map(|x| dist[x] * (x as f64 * inv_w).powi(k as i32))
            .sum();
        out.push(f.min(1.0));
        if f >= 1.0 - 1e-15 {
            return out;
        }
    }
}

/// Conditional rate of a block holding `i` items.
fn block_rate(table: &[f64], i: u64) -> f64 {
    usize::try_from(i)
        .ok()
        .and_then(|i| table.get(i))
        .copied()
        .unwrap_or(1.0)
}

fn blocked_fpr(blocks: u64, k: u32, n: u64) -> f64 {
    let table = block_table(k);
    if blocks == 1 {
        return block_rate(table, n);
    }
    let p = 1.0 / blocks as f64;
    let nf = n as f64;
    let mean = nf * p;
    let sd = (mean * (1.0 - p)).sqrt();
    // Every load with a non-negligible weight is saturated: the answer is 1 to 1e-15.
    if mean - 13.0 * sd - 10.0 > table.len() as f64 {
        return 1.0;
    }
    let mode = (((nf + 1.0) * p).floor() as u64).min(n);
    let odds = p / (1.0 - p);
    const NEGLIGIBLE: f64 = 1e-30;
    let (mut wsum, mut fsum) = (1.0, block_rate(table, mode));
    // Downwards: w(i-1) = w(i) * i / ((n - i + 1) * odds).
    let mut w = 1.0;
    let mut i = mode;
    while i > 0 {
        w *= i as f64 / ((nf - i as f64 + 1.0) * odds);
        i -= 1;
        if w < NEGLIGIBLE {
            break;
        }
        wsum += w;
        fsum += w * block_rate(table, i);
    }
    // Upwards: w(i+1) = w(i) * (n - i) * odds / (i + 1).
    let mut w = 1.0;
    let mut i = mode;
    while i < n {
        w *= (nf - i as f64) * odds / (i as f64 + 1.0);
        i += 1;
        if w < NEGLIGIBLE {
            break;
        }
        wsum += w;
        fsum += w * block_rate(table, i);
    }
    (fsum / wsum).min(1.0)
}

/// The textbook blocked approximation (independent bits inside the block, Poisson loads), kept
/// to show in tests how far it is from the exact model.
#[cfg(test)]
fn blocked_fpr_classic(blocks: u64, k: u32, n: u64) -> f64 {
    let lambda = n as f64 / blocks as f64;
    let kf = f64::from(k);
    let per_throw = (-1.0 / BLOCK_BITS as f64).ln_1p();
    let mut sum = 0.0;
    // Poisson pmf in log space: ln P(i) = -λ + i ln λ - ln i!.
    let mut ln_fact = 0.0;
    let upper = (lambda + 40.0 * lambda.sqrt() + 50.0) as u64;
    for i in 0..=upper {
        if i > 0 {
            ln_fact += (i as f64).ln();
        }
        let ln_p = -lambda + i as f64 * lambda.ln() - ln_fact;
        let fill = -(kf * i as f64 * per_throw).exp_m1();
        sum += ln_p.exp() * fill.powi(k as i32);
    }
    sum
}

/// Number of 512-bit blocks searched: 2^40 bits.
const MAX_BLOCKS: u64 = MAX_M_BITS / BLOCK_BITS;

/// Smallest filter of `kind` (m a multiple of 512) that holds `n` items at `fpr <= target_fpr`,
/// with the k in 1..=16 that needs the fewest bits (ties go to the smaller k: fewer memory
/// touches). For each k the smallest m is found by binary search, which is valid because the
/// rate falls monotonically as m grows.
///
/// If no filter up to 2^40 bits meets the target (e.g. `target_fpr <= 0`), the result is the
/// 2^40-bit filter with the k of lowest rate; callers that must be sure compare
/// [`fpr`]`(&plan, n)` against their target.
pub fn plan(kind: FilterKind, n: u64, target_fpr: f64) -> FilterParams {
    let shape = |blocks: u64, k: u32| FilterParams {
        kind,
        m_bits: blocks * BLOCK_BITS,
        k,
    };
    if n == 0 || target_fpr >= 1.0 {
        return shape(1, 1);
    }
    let mut best: Option<FilterParams> = None;
    for k in 1..=MAX_K {
        let meets = |blocks: u64| fpr(&shape(blocks, k), n) <= target_fpr;
        // Only sizes strictly smaller than the best so far can win.
        let limit = best.map_or(MAX_BLOCKS, |b| b.blocks() - 1);
        if limit == 0 || !meets(limit) {
            continue;
        }
        // Invariant: meets(hi); lo == 0 or !meets(lo).
        let (mut lo, mut hi) = (0u64, limit);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if meets(mid) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        best = Some(shape(hi, k));
    }
    best.unwrap_or_else(|| {
        let k = (1..=MAX_K)
            .min_by(|&a, &b| {
                fpr(&shape(MAX_BLOCKS, a), n).total_cmp(&fpr(&shape(MAX_BLOCKS, b), n))
            })
            .unwrap_or(1);
        shape(MAX_BLOCKS, k)
    })
}

/// Bits of filter per inserted item (`m / n`; infinite for `n = 0`).
pub fn bits_per_item(p: &FilterParams, n: u64) -> f64 {
    if n == 0 {
        f64::INFINITY
    } else {
        p.m_bits as f64 / n as f64
    }
}

/// Expected fraction of bits set after `n` inserts: `1 − (1 − 1/m)^{kn}`. The same for both
/// kinds (each insert sets k of m bits on average; blocking changes the spread, not the
/// mean). Reported as the probe's table-fill metric.
pub fn expected_fill(p: &FilterParams, n: u64) -> f64 {
    if p.m_bits == 0 {
        return 0.0;
    }
    let per_item = (-1.0 / p.m_bits as f64).ln_1p() * f64::from(p.k);
    -(per_item * n as f64).exp_m1()
}

/// Estimated FPR of a filter from its contents: `ones` bits set after `n` inserts.
///
/// Standard: `(ones / m)^k`, the probability that k uniform positions are all set — an
/// estimate that needs no insert count and reflects the filter actually built. Blocked: the
/// global fill hides how unevenly the blocks are loaded, and that spread is what sets the rate
/// (a fill-only estimate is biased low), so this returns the `n`-based [`fpr`].
pub fn fpr_from_fill(p: &FilterParams, ones: u64, n: u64) -> f64 {
    match p.kind {
        FilterKind::Standard => {
            if p.m_bits == 0 {
                return 1.0;
            }
            (ones.min(p.m_bits) as f64 / p.m_bits as f64).powi(p.k as i32)
        }
        FilterKind::Blocked => fpr(p, n),
    }
}

/// Estimated number of inserts that leave `ones` of the filter's bits set: the inverse of the
/// expected fill. Every insert leaves a given bit zero with probability `1 - q`, where
/// `q = 1 - (1 - 1/m)^k` for a standard filter and `q = (1 - (1 - 1/512)^k) / B` for a blocked
/// one (the item's block is the bit's with probability `1/B`), so the expected fill after `n`
/// inserts is `1 - (1 - q)^n` and `n = ln(1 - fill) / ln(1 - q)`. A full filter gives
/// `u64::MAX`; invalid shapes give 0.
pub fn inserted_from_fill(p: &FilterParams, ones: u64) -> u64 {
    if ones == 0 || p.validate().is_err() {
        return 0;
    }
    if ones >= p.m_bits {
        return u64::MAX;
    }
    let k = f64::from(p.k);
    // ln(1 - q), computed without cancellation for large m.
    let ln_keep = match p.kind {
        FilterKind::Standard => k * (-1.0 / p.m_bits as f64).ln_1p(),
        FilterKind::Blocked => {
            let q_block = -(k * (-1.0 / BLOCK_BITS as f64).ln_1p()).exp_m1();
            (-q_block / p.blocks() as f64).ln_1p()
        }
    };
    let ln_zero = (-(ones as f64) / p.m_bits as f64).ln_1p();
    let n = (ln_zero / ln_keep).round();
    if n >= u64::MAX as f64 {
        u64::MAX
    } else {
        n as u64
    }
}

/// The insert count to trust for a filter with `ones` bits set whose counter says `inserted`.
///
/// An insert sets at most `k` bits, so `inserted * k < ones` proves the counter is short (with
/// several concurrent writers, inserts batched in a writer may not have been added to the
/// shared counter when another writer's rotation sealed the epoch). Then the fill-based
/// estimate [`inserted_from_fill`] is used, never below the hard bound `ceil(ones / k)`.
/// Otherwise the counter is kept as it is: it is exact whenever it is plausible, and the
/// estimate's noise should not change exact counts.
pub fn plausible_inserted(p: &FilterParams, inserted: u64, ones: u64) -> u64 {
    let k = u64::from(p.k.max(1));
    if inserted.saturating_mul(k) >= ones {
        return inserted;
    }
    inserted_from_fill(p, ones).max(ones.div_ceil(k))
}

/// Probability that at least one of independent filters with these false-positive rates
/// answers "present" for a digest none of them holds: `1 − Π(1 − fᵢ)`.
///
/// Computed as `−expm1(Σ ln_1p(−fᵢ))`. The direct product rounds `1 − fᵢ` to exactly 1 in
/// `f64` once `fᵢ` is below about 1.1e-16 (half an ulp of 1), so a window of well-sized
/// filters reported a false-match probability of exactly 0 — a claim of certainty the filters
/// cannot make. In log space each term keeps its full precision and the result is the sum of
/// the rates to relative precision when they are tiny. Rates are clamped to `0..=1`; a rate of
/// 1 gives 1.
pub fn union_fpr(rates: impl IntoIterator<Item = f64>) -> f64 {
    let log_clean: f64 = rates
        .into_iter()
        .map(|f| (-f.clamp(0.0, 1.0)).ln_1p())
        .sum();
    (-log_clean.exp_m1()).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::{
        bits_per_item, blocked_fpr_classic, fpr, fpr_from_fill, inserted_from_fill, plan,
        plausible_inserted,
    };
    use crate::params::{FilterKind, FilterParams};

    fn params(kind: FilterKind, m_bits: u64, k: u32) -> FilterParams {
        FilterParams { kind, m_bits, k }
    }

    #[test]
    fn standard_matches_textbook_values() {
        // 10 bits per item, k = 7: 0.8194 % (e.g. Broder & Mitzenmacher's table).
        let p = params(FilterKind::Standard, 10 << 20, 7);
        let f = fpr(&p, 1 << 20);
        assert!((f - 0.008_194_8).abs() < 2e-6, "{f}");
        assert_eq!(fpr(&p, 0), 0.0);
        // Huge m stays accurate (no 1 - 1/m rounding to 1).
        let big = params(FilterKind::Standard, 1 << 40, 7);
        let f = fpr(&big, (1u64 << 40) / 10);
        assert!((f - 0.008_194_8).abs() < 2e-6, "{f}");
        assert_eq!(fpr(&params(FilterKind::Standard, 100, 7), 5), 1.0);
    }

    #[test]
    fn blocked_exceeds_standard_and_classic_approximation() {
        for k in [2, 4, 8, 12, 16] {
            let s = fpr(&params(FilterKind::Standard, 1 << 20, k), 100_000);
            let b = fpr(&params(FilterKind::Blocked, 1 << 20, k), 100_000);
            let c = blocked_fpr_classic(1 << 11, k, 100_000);
            assert!(b > s, "k={k}: blocked {b} <= standard {s}");
            // Jensen: the exact in-block rate is above the independent-bits one, but close.
            assert!(b > c && b < c * 1.12, "k={k}: exact {b} classic {c}");
        }
    }

    #[test]
    fn blocked_single_block_and_saturation() {
        // One block, one item, k = 1: exactly 1/512.
        let p = params(FilterKind::Blocked, 512, 1);
        assert!((fpr(&p, 1) - 1.0 / 512.0).abs() < 1e-15);
        // One item, k = 2 (two throws, query two throws): E[(X/512)^2] with
        // X = 1 w.p. 1/512, else 2.
        let p = params(FilterKind::Blocked, 512, 2);
        let want =
            (1.0 / 512.0) * (1.0 / 512.0f64).powi(2) + (511.0 / 512.0) * (2.0 / 512.0f64).powi(2);
        assert!((fpr(&p, 1) - want).abs() < 1e-15);
        let tiny = params(FilterKind::Blocked, 4096, 4);
        assert_eq!(fpr(&tiny, 1 << 30), 1.0);
        let huge = params(FilterKind::Blocked, 1 << 40, 8);
        assert!(fpr(&huge, 1) < 1e-20);
    }

    #[test]
    fn fpr_increases_with_load() {
        for kind in FilterKind::ALL {
            let p = params(kind, 1 << 16, 5);
            let mut last = 0.0;
            for n in (0..20_000).step_by(1000) {
                let f = fpr(&p, n);
                assert!(f >= last, "{kind} n={n}");
                last = f;
            }
        }
    }

    #[test]
    fn plan_meets_target_and_is_minimal() {
        for kind in FilterKind::ALL {
            for (n, target) in [(1_000u64, 1e-2), (1_000_000, 1e-3), (50_000_000, 1e-6)] {
                let p = plan(kind, n, target);
                p.validate().unwrap();
                assert!(fpr(&p, n) <= target, "{kind} {n} {target}: {p:?}");
                for k in 1..=16 {
                    let smaller = params(kind, p.m_bits - 512, k);
                    assert!(
                        p.m_bits == 512 || fpr(&smaller, n) > target,
                        "{kind} {n} {target}: {smaller:?} also meets the target"
                    );
                }
                let bpi = bits_per_item(&p, n);
                // Information-theoretic floor log2(1/eps)/ln 2 and a generous ceiling.
                assert!(bpi > (1.0 / target).log2() * 1.44, "{kind}: {bpi}");
                assert!(bpi < (1.0 / target).log2() * 2.5, "{kind}: {bpi}");
            }
        }
        // Standard at 1e-2: about 9.59 bits per item with k = 7.
        let p = plan(FilterKind::Standard, 1_000_000, 1e-2);
        assert_eq!(p.k, 7);
        assert!((bits_per_item(&p, 1_000_000) - 9.585).abs() < 0.01);
        assert_eq!(plan(FilterKind::Blocked, 0, 1e-3).m_bits, 512);
        let impossible = plan(FilterKind::Standard, 1000, 0.0);
        assert_eq!(impossible.m_bits, 1 << 40);
    }

    #[test]
    fn fill_estimate() {
        let p = params(FilterKind::Standard, 1024, 2);
        assert_eq!(fpr_from_fill(&p, 512, 300), 0.25);
        let b = params(FilterKind::Blocked, 1024, 2);
        assert_eq!(fpr_from_fill(&b, 512, 300), fpr(&b, 300));
        assert_eq!(bits_per_item(&p, 0), f64::INFINITY);
    }

    #[test]
    fn fill_inversion_recovers_the_insert_count() {
        use crate::bloom::Bloom;
        use crate::rng::Xoshiro256pp;
        for kind in FilterKind::ALL {
            let p = params(kind, 1 << 16, 4);
            let bloom = Bloom::new(p).unwrap();
            let mut rng = Xoshiro256pp::new(7);
            for _ in 0..5000 {
                bloom.insert(rng.next_u128());
            }
            let est = inserted_from_fill(&p, bloom.count_ones());
            assert!((4800..5200).contains(&est), "{kind}: {est}");
            // A plausible counter is kept; an impossible one is replaced by the estimate.
            assert_eq!(plausible_inserted(&p, 5000, bloom.count_ones()), 5000);
            assert_eq!(plausible_inserted(&p, 4990, bloom.count_ones()), 4990);
            assert_eq!(plausible_inserted(&p, 0, bloom.count_ones()), est);
        }
        let p = params(FilterKind::Standard, 1024, 4);
        assert_eq!(inserted_from_fill(&p, 0), 0);
        assert_eq!(inserted_from_fill(&p, 1024), u64::MAX);
        assert_eq!(plausible_inserted(&p, 0, 0), 0);
    }

    /// Tiny rates must not round away: the union is their sum to relative precision, and
    /// never exactly 0 (the direct `1 − Π(1 − f)` gives exactly 0 here).
    #[test]
    fn union_of_tiny_rates_is_their_sum() {
        let rates = vec![3e-17; 1000];
        let direct = 1.0 - rates.iter().map(|f| 1.0 - f).product::<f64>();
        assert_eq!(direct, 0.0, "the naive form underflows on this input");
        let u = super::union_fpr(rates.iter().copied());
        let sum: f64 = rates.iter().sum();
        assert!(u > 0.0);
        assert!((u - sum).abs() <= sum * 1e-9, "{u} vs {sum}");
        // Ordinary rates agree with the direct form; a certain filter makes the union certain.
        let mixed = [0.1, 0.2, 0.05];
        let direct = 1.0 - mixed.iter().map(|f| 1.0 - f).product::<f64>();
        assert!((super::union_fpr(mixed) - direct).abs() < 1e-12);
        assert_eq!(super::union_fpr([0.3, 1.0]), 1.0);
        assert_eq!(super::union_fpr([]), 0.0);
    }
}
