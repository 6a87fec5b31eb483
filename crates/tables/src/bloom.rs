//! One Bloom filter in huge-page-backed memory, and the digest-to-bit mapping both layouts use.
//!
//! The probe's ingest loop inserts every packet's digest, so this is the hot path: positions
//! come straight from the digest bits (no further hashing — the digest is already a keyed PRF
//! output), reductions are multiply-shift instead of modulo (Lemire 2019), and the filter words
//! live in a 2 MiB-aligned anonymous mapping advised `MADV_HUGEPAGE`, which removes most TLB
//! misses on large tables (+8 % standard, +43 % blocked with pre-faulting, docs/CRATES.md).

use std::io::{self, Write};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::TableError;
use crate::params::{FilterKind, FilterParams};
use crate::rng::mix64;

/// Transparent huge page size on x86-64 and aarch64 (4 KiB base pages).
const HUGE_PAGE: usize = 2 << 20;

/// `floor(x * n / 2^64)`: maps a uniform 64-bit value onto 0..n without a division.
#[inline(always)]
fn reduce(x: u64, n: u64) -> u64 {
    ((u128::from(x) * u128::from(n)) >> 64) as u64
}

/// The digest-to-positions mapping of one filter shape, shared by live filters and spilled
/// ones (read from disk) so both answer identically.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Indexer {
    kind: FilterKind,
    m: u64,
    k: u32,
    blocks: u64,
}

impl Indexer {
    pub(crate) fn new(p: &FilterParams) -> Self {
        Indexer {
            kind: p.kind,
            m: p.m_bits,
            k: p.k,
            blocks: p.blocks(),
        }
    }

    /// Standard layout: Kirsch–Mitzenmacher `g_i = h1 + i h2` with h2 odd (so the k values are
    /// distinct mod 2^64), each reduced onto 0..m. Calls `f(word, bit)`; stops when it returns
    /// false.
    #[inline(always)]
    fn standard(&self, h: u128, mut f: impl FnMut(usize, u64) -> bool) -> bool {
        let h1 = h as u64;
        let h2 = ((h >> 64) as u64) | 1;
        let mut g = h1;
        for _ in 0..self.k {
            let pos = reduce(g, self.m);
            if !f((pos >> 6) as usize, 1u64 << (pos & 63)) {
                return false;
            }
            g = g.wrapping_add(h2);
        }
        true
    }

    /// Blocked layout, first half: the index of the first word of `h`'s 64-byte line, from h1.
    #[inline(always)]
    fn block_base(&self, h: u128) -> usize {
        (reduce(h as u64, self.blocks) * 8) as usize
    }

    /// Blocked layout, second half: the k positions are 9-bit fields of h2 (seven per 64
    /// bits: 3 bits of word within the line, 6 bits of bit within the word), then of splitmix64
    /// remixes of both halves for k > 7. Fields are independent uniform draws from 0..512 with
    /// possible repeats — exactly the model in [`crate::theory`]. Calls `f(word_in_line, bit)`
    /// (word in 0..8); stops when it returns false.
    ///
    /// Visiting positions one by one (k read-modify-writes of one line already in L1) measured
    /// faster than building an 8-word mask first: an indexed stack array or a branch-free
    /// select over 8 words costs more than the k cached accesses.
    #[inline(always)]
    fn blocked(&self, h: u128, mut f: impl FnMut(usize, u64) -> bool) -> bool {
        let h1 = h as u64;
        let h2 = (h >> 64) as u64;
        let mut bits = h2;
        let mut remaining = self.k;
        let mut refill = 0u64;
        loop {
            for _ in 0..remaining.min(7) {
                if !f(((bits >> 6) & 7) as usize, 1u64 << (bits & 63)) {
                    return false;
                }
                bits >>= 9;
            }
            if remaining <= 7 {
                return true;
            }
            remaining -= 7;
            refill += 1;
            bits = mix64(h1 ^ h2.rotate_left(32) ^ refill.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        }
    }

    /// The 8-word OR mask of `h`'s line: one `fetch_or` per touched word for concurrent
    /// writers instead of one per bit.
    #[inline(always)]
    fn blocked_mask(&self, h: u128) -> (usize, [u64; 8]) {
        let mut mask = [0u64; 8];
        self.blocked(h, |w, bit| {
            mask[w] |= bit;
            true
        });
        (self.block_base(h), mask)
    }

    /// Membership test against any word source (live atomics or words read from a spill file).
    #[inline(always)]
    pub(crate) fn contains_with(&self, h: u128, mut word: impl FnMut(usize) -> u64) -> bool {
        match self.kind {
            FilterKind::Standard => self.standard(h, |w, bit| word(w) & bit != 0),
            FilterKind::Blocked => {
                let base = self.block_base(h);
                self.blocked(h, |w, bit| word(base + w) & bit != 0)
            }
        }
    }
}

/// A prefetch hint for the cache line holding `w` (a no-op off x86-64).
#[inline(always)]
fn prefetch_word(w: &AtomicU64) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint; the address is valid and is never dereferenced by it.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>((w as *const AtomicU64).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = w;
}

/// An anonymous, zero-filled, page-aligned mapping that is unmapped on drop.
struct Mapping {
    ptr: NonNull<AtomicU64>,
    len_bytes: usize,
}

impl Mapping {
    /// Maps `bytes` (a multiple of 64). Mappings of at least one huge page are 2 MiB-aligned
    /// and advised `MADV_HUGEPAGE` (THP is usually madvise-only); smaller ones are not worth a
    /// huge page each.
    fn new(bytes: usize, prefault: bool) -> io::Result<Self> {
        let huge = bytes >= HUGE_PAGE;
        let len = if huge {
            bytes.div_ceil(HUGE_PAGE) * HUGE_PAGE
        } else {
            bytes
        };
        let over = if huge { len + HUGE_PAGE } else { len };
        // SAFETY: an anonymous private mapping with no fixed address aliases nothing.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                over,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let mut start = base as usize;
        if huge {
            let aligned = start.div_ceil(HUGE_PAGE) * HUGE_PAGE;
            let head = aligned - start;
            let tail = over - head - len;
            // SAFETY: both ranges lie inside the mapping just created and are page-aligned
            // (mmap returns page-aligned addresses; HUGE_PAGE is a page multiple).
            unsafe {
                if head > 0 {
                    libc::munmap(base, head);
                }
                if tail > 0 {
                    libc::munmap((aligned + len) as *mut libc::c_void, tail);
                }
                // Advice only: failure (THP disabled) just means 4 KiB pages.
                libc::madvise(aligned as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
            }
            start = aligned;
        }
        let ptr = NonNull::new(start as *mut AtomicU64).ok_or_else(|| io::Error::other("null"))?;
        let map = Mapping {
            ptr,
            len_bytes: len,
        };
        if prefault {
            // Touch every 4 KiB page now (after the advice, so the kernel can back it with huge
            // pages) instead of faulting on the ingest path.
            for w in map.words().iter().step_by(4096 / 8) {
                w.store(0, Ordering::Relaxed);
            }
        }
        Ok(map)
    }

    fn words(&self) -> &[AtomicU64] {
        // SAFETY: the mapping is len_bytes long, zero-initialised, 8-byte aligned and lives
        // as long as self; AtomicU64 has the layout of u64, so any bit pattern is valid.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len_bytes / 8) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: ptr/len_bytes describe exactly the mapping created in `new`.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len_bytes);
        }
    }
}

// SAFETY: the mapping is plain memory accessed only through AtomicU64.
unsafe impl Send for Mapping {}
// SAFETY: as above; all shared access is atomic.
unsafe impl Sync for Mapping {}

/// A Bloom filter over 128-bit digests.
///
/// All words are `AtomicU64`, so lookups are safe while another thread inserts: a query may
/// miss a digest whose insert is still in flight, never one whose insert completed before it
/// started.
pub struct Bloom {
    map: Mapping,
    words: usize,
    params: FilterParams,
    index: Indexer,
}

impl Bloom {
    /// Allocates a zeroed filter of shape `params` (not pre-faulted).
    pub fn new(params: FilterParams) -> Result<Self, TableError> {
        Self::with_prefault(params, false)
    }

    /// Allocates a zeroed filter; with `prefault`, every page is touched up front so the first
    /// inserts do not pay page faults (and memory is committed at start-up, where running out
    /// of it is easy to diagnose).
    pub fn with_prefault(params: FilterParams, prefault: bool) -> Result<Self, TableError> {
        params.validate()?;
        let bytes = params.bytes();
        let len = usize::try_from(bytes).map_err(|_| {
            TableError::InvalidParams(format!("{bytes} bytes do not fit this address space"))
        })?;
        let map =
            Mapping::new(len, prefault).map_err(|source| TableError::Alloc { bytes, source })?;
        Ok(Bloom {
            map,
            words: len / 8,
            params,
            index: Indexer::new(&params),
        })
    }

    #[inline(always)]
    fn words(&self) -> &[AtomicU64] {
        &self.map.words()[..self.words]
    }

    /// The filter's shape.
    pub fn params(&self) -> FilterParams {
        self.params
    }

    /// Adds `h` using plain (unlocked) read-modify-write of each word.
    ///
    /// Only one thread may insert into a given filter at a time with this method: two
    /// concurrent unlocked read-modify-writes of the same word can lose one of the bits, i.e.
    /// produce a false negative. It is still memory-safe (every access is atomic) and readers
    /// may run concurrently. Use [`Bloom::insert_concurrent`] when several threads insert.
    #[inline]
    pub fn insert(&self, h: u128) {
        let words = self.words();
        match self.index.kind {
            FilterKind::Standard => {
                self.index.standard(h, |w, bit| {
                    let word = &words[w];
                    word.store(word.load(Ordering::Relaxed) | bit, Ordering::Relaxed);
                    true
                });
            }
            FilterKind::Blocked => {
                let base = self.index.block_base(h);
                // One bounds check for the line; `w < 8` then needs none.
                let line: &[AtomicU64; 8] =
                    words[base..base + 8].try_into().expect("a line is 8 words");
                self.index.blocked(h, |w, bit| {
                    let word = &line[w];
                    word.store(word.load(Ordering::Relaxed) | bit, Ordering::Relaxed);
                    true
                });
            }
        }
    }

    /// Asks the CPU to start loading the memory that inserting or testing `h` will touch.
    ///
    /// Once a filter is larger than the caches every insert waits on a DRAM miss, and the work
    /// of parsing and hashing the next packets is too long for the CPU to overlap those
    /// misses by itself. A caller that prefetches `h` a few packets before inserting it hides
    /// most of that latency (see `Ingestor` in the probe and docs/benchmarks.md). A hint only:
    /// no effect on results.
    #[inline]
    pub fn prefetch(&self, h: u128) {
        let words = self.words();
        match self.index.kind {
            FilterKind::Standard => {
                self.index.standard(h, |w, _| {
                    prefetch_word(&words[w]);
                    true
                });
            }
            FilterKind::Blocked => prefetch_word(&words[self.index.block_base(h)]),
        }
    }

    /// Adds `h` with atomic `fetch_or`, safe with any number of concurrent inserters.
    #[inline]
    pub fn insert_concurrent(&self, h: u128) {
        let words = self.words();
        match self.index.kind {
            FilterKind::Standard => {
                self.index.standard(h, |w, bit| {
                    words[w].fetch_or(bit, Ordering::Relaxed);
                    true
                });
            }
            FilterKind::Blocked => {
                let (base, mask) = self.index.blocked_mask(h);
                let line = &words[base..base + 8];
                for (word, m) in line.iter().zip(mask) {
                    if m != 0 {
                        word.fetch_or(m, Ordering::Relaxed);
                    }
                }
            }
        }
    }

    /// Whether `h` may have been inserted (no false negatives; false positives at the rate
    /// [`crate::theory::fpr`] predicts).
    #[inline]
    pub fn contains(&self, h: u128) -> bool {
        let words = self.words();
        self.index
            .contains_with(h, |w| words[w].load(Ordering::Relaxed))
    }

    /// Zeroes every word. Word by word with atomic stores, so concurrent readers stay sound
    /// (they must not trust what they read meanwhile: see the epoch check in
    /// [`crate::DigestTables::query`]).
    pub fn clear(&self) {
        for w in self.words() {
            w.store(0, Ordering::Relaxed);
        }
    }

    /// Number of bits set.
    pub fn count_ones(&self) -> u64 {
        self.words()
            .iter()
            .map(|w| u64::from(w.load(Ordering::Relaxed).count_ones()))
            .sum()
    }

    /// Bytes of filter memory.
    pub fn bytes(&self) -> u64 {
        self.params.bytes()
    }

    /// Writes the words little-endian (the spill format's payload).
    pub fn write_words(&self, w: &mut impl Write) -> io::Result<()> {
        let mut buf = Vec::with_capacity(64 * 1024);
        for chunk in self.words().chunks(8 * 1024) {
            buf.clear();
            for word in chunk {
                buf.extend_from_slice(&word.load(Ordering::Relaxed).to_le_bytes());
            }
            w.write_all(&buf)?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for Bloom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bloom")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{Bloom, HUGE_PAGE};
    use crate::params::{FilterKind, FilterParams};
    use crate::rng::Xoshiro256pp;

    fn bloom(kind: FilterKind, m_bits: u64, k: u32) -> Bloom {
        Bloom::new(FilterParams { kind, m_bits, k }).unwrap()
    }

    #[test]
    fn huge_filter_is_aligned_and_prefaults() {
        let b = Bloom::with_prefault(
            FilterParams {
                kind: FilterKind::Blocked,
                m_bits: 8 * (HUGE_PAGE as u64) * 2,
                k: 4,
            },
            true,
        )
        .unwrap();
        assert_eq!(b.words().as_ptr() as usize % HUGE_PAGE, 0);
        assert_eq!(b.count_ones(), 0);
        b.insert(12345);
        assert!(b.contains(12345));
    }

    #[test]
    fn rejects_bad_params() {
        let bad = FilterParams {
            kind: FilterKind::Standard,
            m_bits: 100,
            k: 3,
        };
        assert!(Bloom::new(bad).is_err());
    }

    #[test]
    fn blocked_touches_one_line_and_sets_at_most_k_bits() {
        for k in [1, 7, 8, 16] {
            let b = bloom(FilterKind::Blocked, 512 * 64, k);
            let mut rng = Xoshiro256pp::new(u64::from(k));
            for _ in 0..50 {
                b.clear();
                b.insert(rng.next_u128());
                let ones = b.count_ones();
                assert!(ones >= 1 && ones <= u64::from(k));
                let set_words: Vec<usize> = b
                    .words()
                    .iter()
                    .enumerate()
                    .filter(|(_, w)| w.load(std::sync::atomic::Ordering::Relaxed) != 0)
                    .map(|(i, _)| i)
                    .collect();
                assert_eq!(
                    set_words.first().unwrap() / 8,
                    set_words.last().unwrap() / 8
                );
            }
        }
    }

    #[test]
    fn standard_sets_k_distinct_bits() {
        let b = bloom(FilterKind::Standard, 1 << 20, 6);
        // Random digest: the six positions collide only with probability ~15/2^20.
        b.insert(Xoshiro256pp::new(3).next_u128());
        assert_eq!(b.count_ones(), 6);
        b.clear();
        assert_eq!(b.count_ones(), 0);
    }

    #[test]
    fn write_words_is_little_endian() {
        let b = bloom(FilterKind::Standard, 512, 1);
        b.insert(0);
        let mut out = Vec::new();
        b.write_words(&mut out).unwrap();
        assert_eq!(out.len(), 64);
        // h1 = 0 reduces to position 0: word 0, bit 0.
        assert_eq!(out[0], 1);
        assert!(out[1..].iter().all(|&x| x == 0));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn no_false_negatives(
            digests in proptest::collection::vec(any::<u128>(), 1..400),
            blocked in any::<bool>(),
            k in 1u32..=16,
            blocks in 1u64..64,
            concurrent in any::<bool>(),
        ) {
            let kind = if blocked { FilterKind::Blocked } else { FilterKind::Standard };
            let b = bloom(kind, blocks * 512, k);
            for &h in &digests {
                if concurrent { b.insert_concurrent(h) } else { b.insert(h) }
            }
            for &h in &digests {
                prop_assert!(b.contains(h));
            }
            prop_assert!(b.count_ones() <= digests.len() as u64 * u64::from(k));
        }
    }
}
