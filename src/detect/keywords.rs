//! The keyword prefilter: every occurrence of every keyword, case-insensitively, in one pass.
//!
//! Every byte a scan sees goes through here, so it sets the detector's floor. A few hundred
//! case-insensitive keywords leave aho-corasick's literal prefilters (memchr, Teddy) nothing
//! to skip on, and walking its DFA costs one dependent memory load per byte whose table grows
//! with the keyword count. So the search is a filter and a check instead:
//!
//! - Each keyword is represented by one of its three-byte windows, the one least common in the
//!   content of real images (`window_frequencies.tsv`, measured on Debian's toolchains by
//!   `scripts/window-frequencies.py`; among windows it does not list, the one of the rarest
//!   bytes, see [`byte_weight`]).
//! - The filter hashes the three bytes at every position, case folded, and looks the hash up
//!   in a bit table that fits the first-level cache. The lookups do not depend on each other,
//!   so the CPU overlaps them; the table's size does not grow with the keyword count.
//! - Where a bit is set (a window's hash, about one position in a hundred on text and binary
//!   alike), the keywords of that window are compared in full at the offset the window has in
//!   them.
//!
//! So a keyword is three bytes long at least ([`MIN_KEYWORD_LEN`]), which rule files are held
//! to when they are read.

use anyhow::{Context, Result, bail};

/// Bytes in a filter window, and so the shortest keyword.
pub const MIN_KEYWORD_LEN: usize = 3;
const WINDOW: usize = MIN_KEYWORD_LEN;

/// log2 of the filter's bit count: 2^18 bits are 32 KiB, which stays in a first-level cache
/// while setting few enough bits (one per distinct window, about 1,500 for the built-in
/// rules) that a position of random bytes passes about once in 170.
const FILTER_BITS: u32 = 18;

/// The filter's bit table in 64-bit words. A fixed-size array: a hash (under 2^FILTER_BITS)
/// divided by 64 is a valid index the compiler can see, so the lookups carry no bounds check.
const FILTER_WORDS: usize = (1 << FILTER_BITS) / 64;

/// Finds every occurrence of a fixed set of keywords, overlapping ones included.
pub struct KeywordSearcher {
    search: Search,
}

enum Search {
    Windows(WindowFilter),
    /// aho-corasick's own overlapping search: the plain search the window filter must agree
    /// with, chosen by `STOWAWAY_PREFILTER=reference` for tests that compare whole scans.
    Reference(aho_corasick::AhoCorasick),
}

/// The environment variable that selects the reference search (see [`Search::Reference`]).
pub const PREFILTER_VARIABLE: &str = "STOWAWAY_PREFILTER";

/// One keyword occurrence: the keyword's index in the list given to [`KeywordSearcher::new`],
/// and the byte range it covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeywordHit {
    pub keyword: usize,
    pub start: usize,
    pub end: usize,
}

impl KeywordSearcher {
    /// Builds the search. Keywords match ASCII case-insensitively; each is
    /// [`MIN_KEYWORD_LEN`] bytes long at least.
    pub fn new<K: AsRef<[u8]>>(keywords: &[K]) -> Result<KeywordSearcher> {
        if let Some(short) = keywords.iter().find(|k| k.as_ref().len() < MIN_KEYWORD_LEN) {
            bail!(
                "keyword {:?} is shorter than {MIN_KEYWORD_LEN} bytes",
                String::from_utf8_lossy(short.as_ref())
            );
        }
        let search = if std::env::var(PREFILTER_VARIABLE).is_ok_and(|v| v == "reference") {
            let reference = aho_corasick::AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .build(keywords)
                .context("cannot build the reference keyword search")?;
            Search::Reference(reference)
        } else {
            Search::Windows(WindowFilter::new(keywords))
        };
        Ok(KeywordSearcher { search })
    }

    /// Calls `on_hit` for every keyword occurrence in `data`, in no particular order.
    pub fn for_each_hit(&self, data: &[u8], mut on_hit: impl FnMut(KeywordHit)) {
        match &self.search {
            Search::Windows(filter) => filter.for_each_hit(data, &mut on_hit),
            Search::Reference(reference) => {
                for found in reference.find_overlapping_iter(data) {
                    on_hit(KeywordHit {
                        keyword: found.pattern().as_usize(),
                        start: found.start(),
                        end: found.end(),
                    });
                }
            }
        }
    }
}

/// The three bytes at the start of `bytes` as one number, every byte with its 0x20 bit set:
/// ASCII letters then compare equal whatever their case (other bytes may collide with one
/// another, which only lets more positions through to the full comparison).
#[inline(always)]
fn folded_window(bytes: u32) -> u32 {
    (bytes | 0x0020_2020) & 0x00ff_ffff
}

#[inline(always)]
fn window_hash(folded: u32) -> usize {
    (folded.wrapping_mul(0x9e37_79b1) >> (32 - FILTER_BITS)) as usize
}

/// How often the most common windows occur in real image content, per million positions
/// (see the module documentation); a window not listed is rarer than every listed one.
fn window_frequencies() -> &'static std::collections::HashMap<u32, f64> {
    static TABLE: std::sync::OnceLock<std::collections::HashMap<u32, f64>> =
        std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        include_str!("window_frequencies.tsv")
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let (window, frequency) = line.split_once('\t')?;
                Some((
                    u32::from_str_radix(window, 16).ok()?,
                    frequency.parse().ok()?,
                ))
            })
            .collect()
    })
}

/// How common a byte is in the files a scan reads, roughly (English text, source code,
/// configuration, binaries): among windows the frequency table does not list, the one whose
/// bytes weigh least is the one a keyword is filed under. Only the order matters.
fn byte_weight(byte: u8) -> f64 {
    match byte.to_ascii_lowercase() {
        b'e' => 12.0,
        b't' | b'a' | b'o' | b'i' | b'n' | b's' | b'r' => 8.0,
        b'h' | b'l' | b'd' | b'c' | b'u' => 4.0,
        b'm' | b'f' | b'p' | b'g' | b'w' | b'y' | b'b' => 2.0,
        b'v' | b'k' => 1.0,
        b'x' | b'j' | b'q' | b'z' => 0.3,
        b' ' | b'\n' | b'\t' | 0 | 0xff => 10.0,
        b'0'..=b'9' => 1.5,
        b'_' | b'-' | b'.' | b'/' | b'"' | b'=' | b':' | b',' => 1.5,
        0x80.. => 0.5,
        _ => 0.7,
    }
}

/// The filter and check described in the module documentation.
struct WindowFilter {
    /// Keywords, ASCII lowercase.
    keywords: Vec<Box<[u8]>>,
    /// Bit `window_hash(w)` is set for every keyword's window `w`.
    bits: Box<[u64; FILTER_WORDS]>,
    /// The windows, grouped by hash: bucket `h` is `entries[bucket_starts[h]..bucket_starts[h
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
}

impl WindowFilter {
    fn new<K: AsRef<[u8]>>(keywords: &[K]) -> WindowFilter {
        let keywords: Vec<Box<[u8]>> = keywords
            .iter()
            .map(|k| k.as_ref().to_ascii_lowercase().into_boxed_slice())
            .collect();
        let mut filed: Vec<(usize, WindowEntry)> = keywords
            .iter()
            .enumerate()
            .map(|(index, keyword)| {
                let offset = rarest_window(keyword);
                let window = folded_window(u32::from_le_bytes([
                    keyword[offset],
                    keyword[offset + 1],
                    keyword[offset + 2],
                    0,
                ]));
                let entry = WindowEntry {
                    window,
                    keyword: index as u32,
                    offset: offset as u32,
                };
                (window_hash(window), entry)
            })
            .collect();
        filed.sort_by_key(|(hash, entry)| (*hash, entry.keyword));
        let mut bits = Box::new([0u64; FILTER_WORDS]);
        let mut bucket_starts = vec![0u32; (1 << FILTER_BITS) + 1].into_boxed_slice();
        for (hash, _) in &filed {
            bits[hash / 64] |= 1 << (hash % 64);
            bucket_starts[hash + 1] += 1;
        }
        for hash in 0..1 << FILTER_BITS {
            bucket_starts[hash + 1] += bucket_starts[hash];
        }
        WindowFilter {
            keywords,
            bits,
            bucket_starts,
            entries: filed.into_iter().map(|(_, entry)| entry).collect(),
        }
    }

    fn for_each_hit(&self, data: &[u8], on_hit: &mut impl FnMut(KeywordHit)) {
        if data.len() < WINDOW {
            return;
        }
        // Eight bytes loaded at once hold the windows of six positions.
        let mut at = 0;
        while at + 8 <= data.len() {
            let word = u64::from_le_bytes(data[at..at + 8].try_into().expect("eight bytes"));
            for shift in 0..6 {
                let window = folded_window((word >> (8 * shift)) as u32);
                let hash = window_hash(window);
                if self.bits[hash / 64] & (1 << (hash % 64)) != 0 {
                    self.check(data, at + shift, window, hash, on_hit);
                }
            }
            at += 6;
        }
        while at + WINDOW <= data.len() {
            let window = folded_window(u32::from_le_bytes([
                data[at],
                data[at + 1],
                data[at + 2],
                0,
            ]));
            let hash = window_hash(window);
            if self.bits[hash / 64] & (1 << (hash % 64)) != 0 {
                self.check(data, at, window, hash, on_hit);
            }
            at += 1;
        }
    }

    /// Compares in full every keyword filed under the window found at `at`.
    #[cold]
    #[inline(never)]
    fn check(
        &self,
        data: &[u8],
        at: usize,
        window: u32,
        hash: usize,
        on_hit: &mut impl FnMut(KeywordHit),
    ) {
        let bucket = self.bucket_starts[hash] as usize..self.bucket_starts[hash + 1] as usize;
        for entry in &self.entries[bucket] {
            if entry.window != window {
                continue;
            }
            let Some(start) = at.checked_sub(entry.offset as usize) else {
                continue;
            };
            let keyword = &self.keywords[entry.keyword as usize];
            let end = start + keyword.len();
            if end <= data.len() && data[start..end].eq_ignore_ascii_case(keyword) {
                on_hit(KeywordHit {
                    keyword: entry.keyword as usize,
                    start,
                    end,
                });
            }
        }
    }
}

/// The offset of `keyword`'s least common window: by the measured frequencies, then by
/// [`byte_weight`].
fn rarest_window(keyword: &[u8]) -> usize {
    let frequencies = window_frequencies();
    let rank = |at: usize| -> (f64, f64) {
        let window = &keyword[at..at + WINDOW];
        let folded = folded_window(u32::from_le_bytes([window[0], window[1], window[2], 0]));
        let measured = frequencies.get(&folded).copied().unwrap_or(0.0);
        let bytes = window.iter().map(|&b| byte_weight(b)).product();
        (measured, bytes)
    };
    (0..=keyword.len() - WINDOW)
        .min_by(|&a, &b| {
            let (a, b) = (rank(a), rank(b));
            a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1))
        })
        .expect("a keyword at least a window long")
}

#[cfg(test)]
mod tests {
    use super::*;
    use aho_corasick::AhoCorasick;

    fn hits(keywords: &[&str], data: &[u8]) -> Vec<KeywordHit> {
        let mut found = Vec::new();
        KeywordSearcher::new(keywords)
            .unwrap()
            .for_each_hit(data, |hit| found.push(hit));
        found.sort();
        found
    }

    /// What aho-corasick's own overlapping search reports, for comparison.
    fn reference(keywords: &[&str], data: &[u8]) -> Vec<KeywordHit> {
        let ac = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(keywords)
            .unwrap();
        let mut found: Vec<KeywordHit> = ac
            .find_overlapping_iter(data)
            .map(|m| KeywordHit {
                keyword: m.pattern().as_usize(),
                start: m.start(),
                end: m.end(),
            })
            .collect();
        found.sort();
        found
    }

    fn assert_agrees(keywords: &[&str], data: &[u8], what: &str) {
        assert_eq!(hits(keywords, data), reference(keywords, data), "{what}");
    }

    #[test]
    fn overlapping_and_case_insensitive() {
        let keywords = ["pgpass", "password", "pass"];
        let data = b"export PGPASSWORD=x";
        let found = hits(&keywords, data);
        let names: Vec<&str> = found.iter().map(|h| keywords[h.keyword]).collect();
        assert_eq!(names, ["pgpass", "password", "pass"]);
        assert_agrees(&keywords, data, "PGPASSWORD");
    }

    /// The frequency table is read whole, and decides: `password` is filed under `ssw`, not
    /// under the English `ass` or `wor`; `-----BEGIN` not under the dashes that underline
    /// text everywhere.
    #[test]
    fn keywords_are_filed_under_their_rarest_window() {
        assert!(window_frequencies().len() >= 4000);
        let window = |keyword: &str| {
            let at = rarest_window(keyword.as_bytes());
            keyword[at..at + WINDOW].to_string()
        };
        assert_eq!(window("password"), "ssw");
        assert!(
            !window("-----begin").contains("---"),
            "{}",
            window("-----begin")
        );
    }

    #[test]
    fn a_keyword_shorter_than_a_window_is_refused() {
        let err = KeywordSearcher::new(&["token", "pw"]).err().unwrap();
        assert_eq!(err.to_string(), "keyword \"pw\" is shorter than 3 bytes");
    }

    /// Keywords at both ends of the buffer and around its middle (the filter reads eight
    /// bytes at a time, then byte by byte at the end), in buffers of every length near the
    /// word size and a few larger ones, are each reported exactly once.
    #[test]
    fn no_position_is_missed_or_reported_twice() {
        let keywords = ["token", "secret_key", "kEy", "-----BEGIN PRIVATE KEY-----"];
        for len in (0..40).chain([4096, 4097, 12_295]) {
            for keyword in keywords {
                for shift in 0..keyword.len() + 2 {
                    let mut data = vec![b'.'; len];
                    if len >= keyword.len() {
                        let at = (len / 2 + shift)
                            .saturating_sub(keyword.len())
                            .min(len - keyword.len());
                        data[at..at + keyword.len()].copy_from_slice(keyword.as_bytes());
                        data[..keyword.len()].copy_from_slice(keyword.as_bytes());
                        let tail = len - keyword.len();
                        data[tail..].copy_from_slice(keyword.as_bytes());
                    }
                    assert_agrees(&keywords, &data, &format!("{keyword} {shift} of {len}"));
                }
            }
        }
    }

    #[test]
    fn random_text_agrees_with_aho_corasick() {
        let keywords = [
            "abab", "aaa", "password", "PASS", "swo", "bab", "Aab", "bbb",
        ];
        let mut rng = fastrand::Rng::with_seed(7);
        for len in [0, 1, 5, 4095, 4096, 9000, 20_001] {
            let data: Vec<u8> = (0..len)
                .map(|_| b"abAB pswordPSWORD"[rng.usize(..17)])
                .collect();
            assert_agrees(&keywords, &data, &format!("{len}"));
        }
    }

    /// Bytes that share a case-folded form without being letters (`@` and a backquote,
    /// `_` and DEL, `[` and `{`) pass the filter together but never compare equal.
    #[test]
    fn folding_collisions_are_not_hits() {
        let keywords = ["a_b", "@x[", "Q{z"];
        assert_agrees(&keywords, b"a\x7fb `x{ q[Z A_B @X[ Q{Z", "collisions");
    }
}
