//! A window: the four bytes the filter reads at a position of content or of a keyword, as one
//! number.
//!
//! The first three bytes are case folded (their 0x20 bit cleared); the fourth keeps only its
//! low five bits, which tell the letters apart whatever their case (and so fold it too). One
//! mask does both. A whole fourth byte would make a three-byte keyword, which must pass the
//! filter whatever byte follows it, set a bit for each of 128 folded bytes; five bits make
//! that 32, while still cutting the positions that pass by about the alphabet's size.

/// The bits a window keeps: all but 0x20 of the first three bytes, the low five of the fourth.
pub(super) const KEEP: u32 = 0x1fdf_dfdf;

/// The window of the four bytes `bytes` (little-endian: the first byte lowest). ASCII letters
/// compare equal whatever their case; other bytes may collide with one another, which only
/// lets more positions through to the full comparison.
#[inline(always)]
pub(super) fn folded_window(bytes: u32) -> u32 {
    bytes & KEEP
}

/// The window at `at`; bytes past the end of `data` read as zero (only a three-byte keyword,
/// filed under every fourth byte, can end there).
#[inline(always)]
pub(super) fn window_at(data: &[u8], at: usize) -> u32 {
    let byte = |i: usize| data.get(at + i).copied().unwrap_or(0);
    folded_window(u32::from_le_bytes([byte(0), byte(1), byte(2), byte(3)]))
}

/// Every window a three-byte keyword (given as its first three bytes) is filed under: one for
/// each value of the fourth byte's five bits.
pub(super) fn windows_of_short(keyword: &[u8]) -> impl Iterator<Item = u32> {
    let first = folded_window(u32::from_le_bytes([keyword[0], keyword[1], keyword[2], 0]));
    (0..32u32).map(move |fourth| first | (fourth << 24))
}
