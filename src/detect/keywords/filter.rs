//! The window filter and its check (see the parent module for why it is built this way).

use super::rarity::rarest_window;
use super::window::{folded_window, window_at, windows_of_short};
use super::window_bytes::WindowBytes;
use super::{KeywordHit, MIN_KEYWORD_LEN};

/// Every byte's 0x20 bit, for eight bytes: ASCII letters compare equal whatever their case.
const FOLD_EIGHT: u64 = 0x2020_2020_2020_2020;

/// log2 of the filter's bit count: 2^18 bits are 32 KiB, which stays in a first-level cache.
pub(super) const FILTER_BITS: u32 = 18;

/// The filter's bit table in 32-bit words (the unit the vector loop gathers). A fixed-size
/// array: a word index (under 2^WORD_BITS) is a valid index the compiler can see, so the
/// lookups carry no bounds check.
pub(super) const WORD_BITS: u32 = FILTER_BITS - 5;
pub(super) const FILTER_WORDS: usize = 1 << WORD_BITS;

/// The multiplier of [`window_probe`]'s hash (Knuth's multiplicative hashing, 2^32 / φ).
pub(super) const HASH_MULTIPLIER: u32 = 0x9e37_79b1;

/// Where the two bit numbers of a window are taken from its hash: below the word index.
pub(super) const FIRST_BIT_SHIFT: u32 = 32 - WORD_BITS - 5;
pub(super) const SECOND_BIT_SHIFT: u32 = FIRST_BIT_SHIFT - 5;

/// Where a window's bits are: one word of the table, and two bits in it (which may be the
/// same bit). A blocked Bloom filter: with two bits a window, a position whose window is in
/// no keyword passes about as often as the square of the share of bits set, against that
/// share itself with one bit (at the built-in rules' 2,000 windows, about one position of
/// random bytes in 800 against one in 140), for a few more vector instructions and no other
/// memory read.
#[derive(Clone, Copy)]
pub(super) struct Probe {
    pub(super) word: usize,
    pub(super) bits: u32,
}

/// The bit a probe's five bits of hash name: counted from the top, so that the vector loop
/// moves it to the sign with one shift left by those five bits.
#[inline(always)]
fn bit_at(from_top: u32) -> u32 {
    1 << (31 - from_top)
}

#[inline(always)]
pub(super) fn window_probe(window: u32) -> Probe {
    let hash = window.wrapping_mul(HASH_MULTIPLIER);
    Probe {
        word: (hash >> (32 - WORD_BITS)) as usize,
        bits: bit_at((hash >> FIRST_BIT_SHIFT) & 31) | bit_at((hash >> SECOND_BIT_SHIFT) & 31),
    }
}

/// The bit table and, for each of its words, the keywords filed under a window of that word.
pub(super) struct WindowFilter {
    /// Keywords, ASCII lowercase.
    keywords: Vec<Box<[u8]>>,
    /// The bits of `window_probe(w)` are set for every keyword's window `w`.
    pub(super) bits: Box<[u32; FILTER_WORDS]>,
    /// The bytes the windows in the table begin with (for the vector loop's first test).
    pub(super) window_bytes: WindowBytes,
    /// The entries of word `i` are `entries[bucket_starts[i]..bucket_starts[i + 1]]`.
    bucket_starts: Box<[u32]>,
    entries: Box<[WindowEntry]>,
}

/// A keyword filed under one of its windows.
#[derive(Clone, Copy)]
struct WindowEntry {
    /// The window (see [`folded_window`]).
    window: u32,
    keyword: u32,
    /// Where the window starts in the keyword.
    offset: u32,
    len: u32,
    /// The keyword's first eight bytes (fewer for a shorter one), folded, and the mask of the
    /// bytes it has: most positions that carry a keyword's window are not that keyword
    /// (`sess` of `session` for `session(`), and eight bytes compared at once tell so without
    /// reading the keyword itself.
    head: u64,
    head_mask: u64,
}

impl WindowFilter {
    pub(super) fn new<K: AsRef<[u8]>>(keywords: &[K]) -> WindowFilter {
        let keywords: Vec<Box<[u8]>> = keywords
            .iter()
            .map(|k| k.as_ref().to_ascii_lowercase().into_boxed_slice())
            .collect();
        let mut filed: Vec<(usize, WindowEntry)> = keywords
            .iter()
            .enumerate()
            .flat_map(|(index, keyword)| WindowEntry::all_of(index, keyword))
            .map(|entry| (window_probe(entry.window).word, entry))
            .collect();
        filed.sort_by_key(|(word, entry)| (*word, entry.keyword, entry.window));
        let mut bits = Box::new([0u32; FILTER_WORDS]);
        let mut bucket_starts = vec![0u32; FILTER_WORDS + 1];
        for (_, entry) in &filed {
            let probe = window_probe(entry.window);
            bits[probe.word] |= probe.bits;
            bucket_starts[probe.word + 1] += 1;
        }
        for word in 0..FILTER_WORDS {
            bucket_starts[word + 1] += bucket_starts[word];
        }
        WindowFilter {
            keywords,
            bits,
            window_bytes: WindowBytes::of_windows(filed.iter().map(|(_, entry)| entry.window)),
            bucket_starts: bucket_starts.into_boxed_slice(),
            entries: filed.into_iter().map(|(_, entry)| entry).collect(),
        }
    }

    #[inline(always)]
    pub(super) fn passes(&self, probe: Probe) -> bool {
        self.bits[probe.word] & probe.bits == probe.bits
    }

    /// Looks at every position from `at` on, eight bytes loaded at once for the windows of
    /// five positions.
    pub(super) fn scan_from(
        &self,
        data: &[u8],
        mut at: usize,
        on_hit: &mut impl FnMut(KeywordHit),
    ) {
        while at + 8 <= data.len() {
            let word = u64::from_le_bytes(data[at..at + 8].try_into().expect("eight bytes"));
            for shift in 0..5 {
                let window = folded_window((word >> (8 * shift)) as u32);
                let probe = window_probe(window);
                if self.passes(probe) {
                    self.check(data, at + shift, window, probe, on_hit);
                }
            }
            at += 5;
        }
        while at + MIN_KEYWORD_LEN <= data.len() {
            let window = window_at(data, at);
            let probe = window_probe(window);
            if self.passes(probe) {
                self.check(data, at, window, probe, on_hit);
            }
            at += 1;
        }
    }

    /// Compares every keyword filed under the window found at `at` (whose bits are set).
    #[inline]
    pub(super) fn check(
        &self,
        data: &[u8],
        at: usize,
        window: u32,
        probe: Probe,
        on_hit: &mut impl FnMut(KeywordHit),
    ) {
        let bucket =
            self.bucket_starts[probe.word] as usize..self.bucket_starts[probe.word + 1] as usize;
        for entry in &self.entries[bucket] {
            if entry.window != window {
                continue;
            }
            let Some(start) = at.checked_sub(entry.offset as usize) else {
                continue;
            };
            let end = start + entry.len as usize;
            if end > data.len() {
                continue;
            }
            if let Some(head) = data.get(start..start + 8) {
                let head = u64::from_le_bytes(head.try_into().expect("eight bytes"));
                if (head | FOLD_EIGHT) & entry.head_mask != entry.head {
                    continue;
                }
            }
            if data[start..end].eq_ignore_ascii_case(&self.keywords[entry.keyword as usize]) {
                on_hit(KeywordHit {
                    keyword: entry.keyword as usize,
                    start,
                    end,
                });
            }
        }
    }
}

impl WindowEntry {
    /// The entries of `keyword`: under its rarest window, or, for a keyword of three bytes,
    /// under each window it can start (one for each fourth byte).
    fn all_of(index: usize, keyword: &[u8]) -> Vec<WindowEntry> {
        if keyword.len() == MIN_KEYWORD_LEN {
            windows_of_short(keyword)
                .map(|window| WindowEntry::new(index, keyword, 0, window))
                .collect()
        } else {
            let offset = rarest_window(keyword);
            vec![WindowEntry::new(
                index,
                keyword,
                offset,
                window_at(keyword, offset),
            )]
        }
    }

    fn new(index: usize, keyword: &[u8], offset: usize, window: u32) -> WindowEntry {
        let mut head = [0u8; 8];
        let head_len = keyword.len().min(8);
        head[..head_len].copy_from_slice(&keyword[..head_len]);
        let head_mask = if head_len == 8 {
            u64::MAX
        } else {
            (1u64 << (8 * head_len)) - 1
        };
        WindowEntry {
            window,
            keyword: index as u32,
            offset: offset as u32,
            len: keyword.len() as u32,
            head: (u64::from_le_bytes(head) | FOLD_EIGHT) & head_mask,
            head_mask,
        }
    }
}
