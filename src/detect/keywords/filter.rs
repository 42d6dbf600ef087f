//! The window filter and its check (see the parent module for why it is built this way).

use super::rarity::rarest_window;
use super::window::{folded_window, window_at};
use super::{KeywordHit, WINDOW};

/// Every byte's 0x20 bit, as [`folded_window`] sets it, for eight bytes.
const FOLD_EIGHT: u64 = 0x2020_2020_2020_2020;

/// log2 of the filter's bit count: 2^18 bits are 32 KiB, which stays in a first-level cache
/// while setting few enough bits (one per distinct window, about 1,100 for the built-in
/// rules) that a position of random bytes passes about once in 250.
pub(super) const FILTER_BITS: u32 = 18;

/// The filter's bit table in 64-bit words. A fixed-size array: a hash (under 2^FILTER_BITS)
/// divided by 64 is a valid index the compiler can see, so the lookups carry no bounds check.
pub(super) const FILTER_WORDS: usize = (1 << FILTER_BITS) / 64;

/// The multiplier of [`window_hash`] (Knuth's multiplicative hashing, 2^32 / φ).
pub(super) const HASH_MULTIPLIER: u32 = 0x9e37_79b1;

#[inline(always)]
pub(super) fn window_hash(folded: u32) -> usize {
    (folded.wrapping_mul(HASH_MULTIPLIER) >> (32 - FILTER_BITS)) as usize
}

/// The bit table and, for each set bit, the keywords filed under it.
pub(super) struct WindowFilter {
    /// Keywords, ASCII lowercase.
    keywords: Vec<Box<[u8]>>,
    /// Bit `window_hash(w)` is set for every keyword's window `w`.
    pub(super) bits: Box<[u64; FILTER_WORDS]>,
    /// How many bits are set in the words before each word: with the bits of its own word
    /// below it, a set bit's rank, the number of its bucket. Both tables are small enough to
    /// stay cached, unlike a bucket start for every possible hash (a MiB), which made every
    /// position that passes the filter a cache miss.
    ranks_before: Box<[u32; FILTER_WORDS]>,
    /// Bucket `r` (of the set bit of rank `r`) is `entries[bucket_starts[r]..bucket_starts[r
    /// + 1]]`.
    bucket_starts: Box<[u32]>,
    entries: Box<[WindowEntry]>,
}

/// A keyword filed under one of its windows.
#[derive(Clone, Copy)]
struct WindowEntry {
    /// The window, folded (see [`folded_window`]).
    window: u32,
    keyword: u32,
    /// Where the window starts in the keyword.
    offset: u32,
    len: u32,
    /// The keyword's first eight bytes (fewer for a shorter one), folded, and the mask of the
    /// bytes it has: most positions that carry a keyword's window are not that keyword
    /// (`flu` of `flush` for `fluentd`), and eight bytes compared at once tell so without
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
            .map(|(index, keyword)| {
                let entry = WindowEntry::new(index, keyword);
                (window_hash(entry.window), entry)
            })
            .collect();
        filed.sort_by_key(|(hash, entry)| (*hash, entry.keyword));
        let mut bits = Box::new([0u64; FILTER_WORDS]);
        let mut bucket_starts = Vec::new();
        for (at, (hash, _)) in filed.iter().enumerate() {
            if bits[hash / 64] & (1 << (hash % 64)) == 0 {
                bits[hash / 64] |= 1 << (hash % 64);
                bucket_starts.push(at as u32);
            }
        }
        bucket_starts.push(filed.len() as u32);
        let mut ranks_before = Box::new([0u32; FILTER_WORDS]);
        for word in 1..FILTER_WORDS {
            ranks_before[word] = ranks_before[word - 1] + bits[word - 1].count_ones();
        }
        WindowFilter {
            keywords,
            bits,
            ranks_before,
            bucket_starts: bucket_starts.into_boxed_slice(),
            entries: filed.into_iter().map(|(_, entry)| entry).collect(),
        }
    }

    #[inline(always)]
    pub(super) fn passes(&self, hash: usize) -> bool {
        self.bits[hash / 64] & (1 << (hash % 64)) != 0
    }

    /// Looks at every position from `at` on, eight bytes loaded at once for the windows of
    /// six positions.
    pub(super) fn scan_from(
        &self,
        data: &[u8],
        mut at: usize,
        on_hit: &mut impl FnMut(KeywordHit),
    ) {
        while at + 8 <= data.len() {
            let word = u64::from_le_bytes(data[at..at + 8].try_into().expect("eight bytes"));
            for shift in 0..6 {
                let window = folded_window((word >> (8 * shift)) as u32);
                let hash = window_hash(window);
                if self.passes(hash) {
                    self.check(data, at + shift, window, hash, on_hit);
                }
            }
            at += 6;
        }
        while at + WINDOW <= data.len() {
            let window = window_at(data, at);
            let hash = window_hash(window);
            if self.passes(hash) {
                self.check(data, at, window, hash, on_hit);
            }
            at += 1;
        }
    }

    /// Compares every keyword filed under the window found at `at` (whose bit is set).
    #[inline]
    pub(super) fn check(
        &self,
        data: &[u8],
        at: usize,
        window: u32,
        hash: usize,
        on_hit: &mut impl FnMut(KeywordHit),
    ) {
        let word = self.bits[hash / 64];
        let rank = self.ranks_before[hash / 64] + (word & ((1 << (hash % 64)) - 1)).count_ones();
        let bucket = self.bucket_starts[rank as usize] as usize
            ..self.bucket_starts[rank as usize + 1] as usize;
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
    fn new(index: usize, keyword: &[u8]) -> WindowEntry {
        let offset = rarest_window(keyword);
        let window = window_at(keyword, offset);
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
