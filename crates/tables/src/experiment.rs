//! Measured-versus-predicted false-positive rate: the check behind `ashiato probe fpr` and the
//! statistical tests of this crate.
//!
//! Random 128-bit values stand in for digests (digests are keyed PRF outputs). Inserted and
//! queried values come from one seeded stream, so a query equals an inserted value only with
//! probability ~2^-100: every positive answer counts as a false positive.

use crate::bloom::Bloom;
use crate::error::TableError;
use crate::params::FilterParams;
use crate::rng::Xoshiro256pp;
use crate::theory;

/// Outcome of [`measure_fpr`].
#[derive(Clone, Debug, PartialEq)]
pub struct FprMeasurement {
    /// Filter shape measured.
    pub params: FilterParams,
    /// Items inserted.
    pub inserted: u64,
    /// Absent items queried.
    pub queries: u64,
    /// Queries that answered "present".
    pub false_positives: u64,
    /// `false_positives / queries`.
    pub measured: f64,
    /// [`theory::fpr`] for this shape and load.
    pub theory: f64,
    /// [`theory::fpr_from_fill`] from the filter's actual ones.
    pub from_fill: f64,
    /// Bits set after the inserts.
    pub ones: u64,
}

impl FprMeasurement {
    /// `(measured - theory) / theory`.
    pub fn relative_error(&self) -> f64 {
        (self.measured - self.theory) / self.theory
    }

    /// Relative standard error of the measurement, `1 / sqrt(false positives expected)`:
    /// the size of the disagreement that is pure sampling noise.
    pub fn relative_std_error(&self) -> f64 {
        1.0 / (self.queries as f64 * self.theory).sqrt()
    }
}

/// Inserts `n` random digests into a fresh filter of shape `params`, queries `queries` fresh
/// ones and compares the positive rate with theory. Deterministic for a `seed`.
pub fn measure_fpr(
    params: FilterParams,
    n: u64,
    queries: u64,
    seed: u64,
) -> Result<FprMeasurement, TableError> {
    let mut rng = Xoshiro256pp::new(seed);
    let mut q = Xoshiro256pp::new(seed ^ 0x9e37_79b9_7f4a_7c15);
    measure_fpr_with(params, n, queries, || rng.next_u128(), || q.next_u128())
}

/// The same experiment with digests from the caller: `inserted` yields the `n` recorded
/// digests, `absent` the `queries` digests that were never recorded (the CLI digests random
/// packets with the real keyed hash, so the whole path is measured).
pub fn measure_fpr_with(
    params: FilterParams,
    n: u64,
    queries: u64,
    mut inserted: impl FnMut() -> u128,
    mut absent: impl FnMut() -> u128,
) -> Result<FprMeasurement, TableError> {
    let bloom = Bloom::new(params)?;
    for _ in 0..n {
        bloom.insert(inserted());
    }
    let false_positives = (0..queries).filter(|_| bloom.contains(absent())).count() as u64;
    let ones = bloom.count_ones();
    Ok(FprMeasurement {
        params,
        inserted: n,
        queries,
        false_positives,
        measured: false_positives as f64 / queries.max(1) as f64,
        theory: theory::fpr(&params, n),
        from_fill: theory::fpr_from_fill(&params, ones, n),
        ones,
    })
}

#[cfg(test)]
mod tests {
    use super::measure_fpr;
    use crate::params::{FilterKind, FilterParams};

    /// Measured FPR against theory at several loads for both layouts. Filters of 2^20 bits
    /// (2048 blocks, so the per-filter spread of block loads is small) at rates near 1e-2, with
    /// at least 200 000 queries and 1600 expected false positives: relative standard error
    /// at most 2.5 %,
    /// tolerance 10 %.
    #[test]
    fn measured_fpr_matches_theory() {
        let cases = [
            (FilterKind::Standard, 4, 8.0),
            (FilterKind::Standard, 7, 10.0),
            (FilterKind::Standard, 3, 6.0),
            (FilterKind::Blocked, 4, 8.0),
            (FilterKind::Blocked, 6, 10.0),
            (FilterKind::Blocked, 10, 12.0),
        ];
        for (i, (kind, k, bits_per_item)) in cases.into_iter().enumerate() {
            let params = FilterParams {
                kind,
                m_bits: 1 << 20,
                k,
            };
            let n = ((1u64 << 20) as f64 / bits_per_item) as u64;
            let queries = ((1600.0 / crate::theory::fpr(&params, n)).ceil() as u64).max(200_000);
            let m = measure_fpr(params, n, queries, 1000 + i as u64).unwrap();
            assert!(m.relative_std_error() < 0.03, "{m:?}");
            eprintln!(
                "{kind} k={k} bits/item={bits_per_item}: measured {:.5} theory {:.5} ({:+.2} %), fill {:.5}",
                m.measured,
                m.theory,
                100.0 * m.relative_error(),
                m.from_fill
            );
            assert!(m.relative_error().abs() < 0.10, "{m:?}");
            if kind == FilterKind::Standard {
                assert!((m.from_fill - m.theory).abs() / m.theory < 0.05, "{m:?}");
            }
        }
    }

    /// The probe's default sizing (`plan` for FPR 1e-3, both kinds) meets its target and the
    /// measurement agrees with theory within 10 % (≥ 2,500 expected false hits: relative
    /// standard error 2 %).
    #[test]
    fn default_sizing_fpr_matches_theory() {
        for (i, kind) in FilterKind::ALL.into_iter().enumerate() {
            let n = 50_000;
            let params = crate::theory::plan(kind, n, 1e-3);
            let th = crate::theory::fpr(&params, n);
            assert!(th <= 1e-3, "{params:?} {th}");
            let m = measure_fpr(params, n, 2_500_000, 77 + i as u64).unwrap();
            assert!(m.relative_std_error() < 0.025, "{m:?}");
            assert!(m.relative_error().abs() < 0.10, "{m:?}");
        }
    }
}
