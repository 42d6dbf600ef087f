//! The window filter eight positions at a time, with AVX2: the same windows, hashes and bit
//! table as the scalar loop in `filter.rs`, so the two find the same positions (the tests run
//! both against aho-corasick's own search).
//!
//! One 16-byte load holds the windows of eight positions; a byte shuffle spreads them into
//! eight 32-bit lanes, one multiply hashes them all, and one gather reads their eight words of
//! the bit table. Only the positions whose bit is set leave the vector loop, for the check.

use std::arch::x86_64::{
    __m128i, __m256i, _mm_loadu_si128, _mm256_and_si256, _mm256_broadcastsi128_si256,
    _mm256_castsi256_ps, _mm256_i32gather_epi32, _mm256_movemask_ps, _mm256_mullo_epi32,
    _mm256_or_si256, _mm256_set1_epi32, _mm256_setr_epi8, _mm256_shuffle_epi8, _mm256_sllv_epi32,
    _mm256_srli_epi32, _mm256_sub_epi32,
};

use super::KeywordHit;
use super::filter::{FILTER_BITS, HASH_MULTIPLIER, WindowFilter, window_hash};
use super::window::{FOLD, window_at};

/// Whether this processor can run [`scan`].
pub(super) fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
}

/// Looks at the positions of `data` sixty-four at a time, then eight at a time while sixteen
/// bytes are left to load; returns the first position it did not look at, for the scalar
/// loop to go on from.
///
/// The positions of a block that pass are collected in one mask before any is checked, so
/// the gathers of a block follow one another with no branch between them to mispredict.
///
/// # Safety
/// The processor supports AVX2 ([`available`]).
#[target_feature(enable = "avx2,popcnt")]
pub(super) unsafe fn scan(
    filter: &WindowFilter,
    data: &[u8],
    on_hit: &mut impl FnMut(KeywordHit),
) -> usize {
    let lanes = Lanes::new(filter);
    let mut at = 0;
    // The last load of a block starts 56 bytes in and reads 16.
    while at + 72 <= data.len() {
        let mut passed = 0u64;
        for block in 0..8 {
            // SAFETY: `at + 8 * block + 16 <= at + 72 <= data.len()`.
            let lane_mask = unsafe { lanes.passing(data, at + 8 * block) };
            passed |= u64::from(lane_mask) << (8 * block);
        }
        check_passed(filter, data, at, passed, on_hit);
        at += 64;
    }
    while at + 16 <= data.len() {
        // SAFETY: `at + 16 <= data.len()`.
        let passed = unsafe { lanes.passing(data, at) };
        check_passed(filter, data, at, u64::from(passed), on_hit);
        at += 8;
    }
    at
}

/// Checks the positions `at + i` for every bit `i` set in `passed`.
#[inline(always)]
fn check_passed(
    filter: &WindowFilter,
    data: &[u8],
    at: usize,
    mut passed: u64,
    on_hit: &mut impl FnMut(KeywordHit),
) {
    while passed != 0 {
        let position = at + passed.trailing_zeros() as usize;
        passed &= passed - 1;
        let window = window_at(data, position);
        filter.check(data, position, window, window_hash(window), on_hit);
    }
}

/// The constants of the vector loop, and the table it reads.
struct Lanes {
    spread: __m256i,
    fold: __m256i,
    multiplier: __m256i,
    low_five: __m256i,
    table: *const i32,
}

impl Lanes {
    #[target_feature(enable = "avx2")]
    fn new(filter: &WindowFilter) -> Lanes {
        Lanes {
            // Lane j (of eight) takes bytes j, j+1 and j+2 of the load and a zero (index
            // -1); the shuffle works within each 128-bit half, so both halves hold the same
            // sixteen bytes.
            spread: _mm256_setr_epi8(
                0, 1, 2, -1, 1, 2, 3, -1, 2, 3, 4, -1, 3, 4, 5, -1, //
                4, 5, 6, -1, 5, 6, 7, -1, 6, 7, 8, -1, 7, 8, 9, -1,
            ),
            fold: _mm256_set1_epi32(FOLD as i32),
            multiplier: _mm256_set1_epi32(HASH_MULTIPLIER as i32),
            low_five: _mm256_set1_epi32(31),
            table: filter.bits.as_ptr().cast::<i32>(),
        }
    }

    /// Bit j set for each of the eight positions `at + j` whose window's bit is set.
    ///
    /// # Safety
    /// `at + 16 <= data.len()`, and the processor supports AVX2.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn passing(&self, data: &[u8], at: usize) -> u8 {
        // SAFETY: the caller keeps sixteen bytes from `at` inside `data`; an unaligned load
        // has no alignment to keep.
        let bytes = unsafe { _mm_loadu_si128(data.as_ptr().add(at).cast::<__m128i>()) };
        let windows = _mm256_or_si256(
            _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(bytes), self.spread),
            self.fold,
        );
        let hashes = _mm256_srli_epi32::<{ 32 - FILTER_BITS as i32 }>(_mm256_mullo_epi32(
            windows,
            self.multiplier,
        ));
        // The table as 32-bit words (on x86, little-endian, bit h of the 64-bit words is bit
        // h % 32 of word h / 32). SAFETY: every index is under 2^FILTER_BITS / 32, inside the
        // table.
        let words =
            unsafe { _mm256_i32gather_epi32::<4>(self.table, _mm256_srli_epi32::<5>(hashes)) };
        // Each lane's bit moved to its sign, which the mask takes.
        let to_sign = _mm256_sub_epi32(self.low_five, _mm256_and_si256(hashes, self.low_five));
        _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_sllv_epi32(words, to_sign))) as u8
    }
}
