//! The window filter eight positions at a time, with AVX2: the same windows, hashes and bit
//! table as the scalar loop in `filter.rs`, so the two find the same positions (the tests run
//! both against aho-corasick's own search).
//!
//! One 16-byte load holds the windows of eight positions; a byte shuffle spreads them into
//! eight 32-bit lanes, one multiply hashes them all, and one gather reads their eight words of
//! the bit table. Only the positions whose two bits are set leave the vector loop, for the
//! check.
//!
//! Before that, sixty-four positions at a time are tested on their first three bytes
//! (`window_bytes.rs`): a group of eight positions none of which can begin a filed window
//! skips its gather (three groups in four of compressed content, one in four or five of the
//! executables and libraries of a toolchain image, almost none of text).

use std::arch::x86_64::{
    __m128i, __m256i, _mm_loadu_si128, _mm256_and_si256, _mm256_broadcastsi128_si256,
    _mm256_castsi256_ps, _mm256_cmpeq_epi8, _mm256_i32gather_epi32, _mm256_loadu_si256,
    _mm256_movemask_epi8, _mm256_movemask_ps, _mm256_mullo_epi32, _mm256_set1_epi8,
    _mm256_set1_epi32, _mm256_setr_epi8, _mm256_setzero_si256, _mm256_shuffle_epi8,
    _mm256_sllv_epi32, _mm256_srli_epi16, _mm256_srli_epi32,
};

use super::KeywordHit;
use super::filter::{
    FIRST_BIT_SHIFT, HASH_MULTIPLIER, SECOND_BIT_SHIFT, WORD_BITS, WindowFilter, window_probe,
};
use super::window::{KEEP, window_at};

/// Whether this processor can run [`scan`].
pub(super) fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
}

/// Looks at the positions of `data` sixty-four at a time, then eight at a time while sixteen
/// bytes are left to load; returns the first position it did not look at, for the scalar
/// loop to go on from.
///
/// The positions of a block that pass are collected in one mask before any is checked, so
/// the gathers of a block follow one another with no check between them. A group of eight
/// whose first bytes already fail skips its gather: the branch goes one way through most of
/// a text file and mostly the other through a compressed one.
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
        // SAFETY: `at + 64 <= data.len()`.
        let may_start = unsafe { lanes.may_start_windows(data, at) };
        let mut passed = 0u64;
        for block in 0..8 {
            let candidates = (may_start >> (8 * block)) as u8;
            if candidates != 0 {
                // SAFETY: `at + 8 * block + 16 <= at + 72 <= data.len()`.
                let lane_mask = unsafe { lanes.passing(data, at + 8 * block) };
                passed |= u64::from(lane_mask & candidates) << (8 * block);
            }
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
        filter.check(data, position, window, window_probe(window), on_hit);
    }
}

/// The constants of the vector loop, and the table it reads.
struct Lanes {
    spread: __m256i,
    keep: __m256i,
    multiplier: __m256i,
    low_five: __m256i,
    table: *const i32,
    /// [`super::window_bytes::WindowBytes`] as the shuffles read it: the low-nibble tables of
    /// the first three bytes (both 128-bit halves alike), and the bit of each high nibble
    /// under 8.
    low_nibble: [__m256i; 3],
    high_nibble_bit: __m256i,
    nibble: __m256i,
    /// All ones where a byte from 0x80 up can be that byte of a window.
    high_allowed: [u64; 3],
}

impl Lanes {
    #[target_feature(enable = "avx2")]
    fn new(filter: &WindowFilter) -> Lanes {
        Lanes {
            // Lane j (of eight) takes bytes j to j+3 of the load; the shuffle works within
            // each 128-bit half, so both halves hold the same sixteen bytes.
            spread: _mm256_setr_epi8(
                0, 1, 2, 3, 1, 2, 3, 4, 2, 3, 4, 5, 3, 4, 5, 6, //
                4, 5, 6, 7, 5, 6, 7, 8, 6, 7, 8, 9, 7, 8, 9, 10,
            ),
            keep: _mm256_set1_epi32(KEEP as i32),
            multiplier: _mm256_set1_epi32(HASH_MULTIPLIER as i32),
            low_five: _mm256_set1_epi32(31),
            table: filter.bits.as_ptr().cast::<i32>(),
            low_nibble: filter.window_bytes.low_nibble.map(|table| {
                // SAFETY: a 16-byte array is as large as the unaligned 128-bit load reads.
                _mm256_broadcastsi128_si256(unsafe {
                    _mm_loadu_si128(table.as_ptr().cast::<__m128i>())
                })
            }),
            high_nibble_bit: _mm256_setr_epi8(
                1, 2, 4, 8, 16, 32, 64, -128, 0, 0, 0, 0, 0, 0, 0, 0, //
                1, 2, 4, 8, 16, 32, 64, -128, 0, 0, 0, 0, 0, 0, 0, 0,
            ),
            nibble: _mm256_set1_epi8(0x0f),
            high_allowed: filter
                .window_bytes
                .high
                .map(|allowed| if allowed { u64::MAX } else { 0 }),
        }
    }

    /// Bit j set for each of the sixty-four positions `at + j` whose first three bytes can be
    /// those of a window in the table (see [`super::window_bytes::WindowBytes`]); the two
    /// positions whose window reaches past the sixty-four bytes read are set whatever follows.
    ///
    /// # Safety
    /// `at + 64 <= data.len()`, and the processor supports AVX2.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn may_start_windows(&self, data: &[u8], at: usize) -> u64 {
        let mut allowed = [0u64; 3];
        for half in 0..2 {
            // SAFETY: the caller keeps sixty-four bytes from `at` inside `data`.
            let bytes =
                unsafe { _mm256_loadu_si256(data.as_ptr().add(at + 32 * half).cast::<__m256i>()) };
            let low = _mm256_and_si256(bytes, self.nibble);
            let high = _mm256_and_si256(_mm256_srli_epi16::<4>(bytes), self.nibble);
            let high_bit = _mm256_shuffle_epi8(self.high_nibble_bit, high);
            let signs = u64::from(_mm256_movemask_epi8(bytes) as u32);
            for (place, allowed) in allowed.iter_mut().enumerate() {
                let member =
                    _mm256_and_si256(_mm256_shuffle_epi8(self.low_nibble[place], low), high_bit);
                let outside =
                    _mm256_movemask_epi8(_mm256_cmpeq_epi8(member, _mm256_setzero_si256())) as u32;
                let inside = u64::from(!outside) | (signs & self.high_allowed[place]);
                *allowed |= inside << (32 * half);
            }
        }
        allowed[0] & (allowed[1] >> 1 | 1 << 63) & (allowed[2] >> 2 | 3 << 62)
    }

    /// Bit j set for each of the eight positions `at + j` whose window's two bits are set.
    ///
    /// # Safety
    /// `at + 16 <= data.len()`, and the processor supports AVX2.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn passing(&self, data: &[u8], at: usize) -> u8 {
        // SAFETY: the caller keeps sixteen bytes from `at` inside `data`; an unaligned load
        // has no alignment to keep.
        let bytes = unsafe { _mm_loadu_si128(data.as_ptr().add(at).cast::<__m128i>()) };
        let windows = _mm256_and_si256(
            _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(bytes), self.spread),
            self.keep,
        );
        let hashes = _mm256_mullo_epi32(windows, self.multiplier);
        // SAFETY: every index is under 2^WORD_BITS, inside the table.
        let words = unsafe {
            _mm256_i32gather_epi32::<4>(
                self.table,
                _mm256_srli_epi32::<{ 32 - WORD_BITS as i32 }>(hashes),
            )
        };
        let first = _mm256_and_si256(
            _mm256_srli_epi32::<{ FIRST_BIT_SHIFT as i32 }>(hashes),
            self.low_five,
        );
        let second = _mm256_and_si256(
            _mm256_srli_epi32::<{ SECOND_BIT_SHIFT as i32 }>(hashes),
            self.low_five,
        );
        // Each lane's two bits (counted from the top, see `window_probe`) moved to the sign
        // and and-ed; the mask takes the signs.
        let both = _mm256_and_si256(
            _mm256_sllv_epi32(words, first),
            _mm256_sllv_epi32(words, second),
        );
        _mm256_movemask_ps(_mm256_castsi256_ps(both)) as u8
    }
}
