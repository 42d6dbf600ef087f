//! A window: three bytes of content or of a keyword, case folded, as one number.

/// Every byte's 0x20 bit, as [`folded_window`] sets it.
pub(super) const FOLD: u32 = 0x0020_2020;

/// The three bytes at the start of `bytes` as one number, every byte with its 0x20 bit set:
/// ASCII letters then compare equal whatever their case (other bytes may collide with one
/// another, which only lets more positions through to the full comparison).
#[inline(always)]
pub(super) fn folded_window(bytes: u32) -> u32 {
    (bytes | FOLD) & 0x00ff_ffff
}

/// The folded window at `at` (which has [`super::WINDOW`] bytes after it).
#[inline(always)]
pub(super) fn window_at(data: &[u8], at: usize) -> u32 {
    folded_window(u32::from_le_bytes([
        data[at],
        data[at + 1],
        data[at + 2],
        0,
    ]))
}
