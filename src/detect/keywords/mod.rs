//! The keyword prefilter: every occurrence of every keyword, case-insensitively, in one pass.
//!
//! Every byte a scan sees goes through here, so it sets the detector's floor. A few hundred
//! case-insensitive keywords leave aho-corasick's literal prefilters (memchr, Teddy) nothing
//! to skip on, and walking its DFA costs one dependent memory load per byte whose table grows
//! with the keyword count. So the search is a filter and a check instead:
//!
//! - Each keyword is represented by one of its four-byte windows (`window.rs`), the one least
//!   common in the content of real images (`rarity.rs`); a three-byte keyword by every window
//!   it can start.
//! - The filter (`filter.rs`) hashes the window at every position and looks up two bits of
//!   the hash in one word of a bit table that fits the first-level cache (a blocked Bloom
//!   filter). The lookups do not depend on each other, so the CPU overlaps them; the table's
//!   size does not grow with the keyword count. Where the processor has AVX2 (`avx2.rs`),
//!   eight positions are hashed and looked up at once, and a group of eight none of which
//!   begins with three bytes a filed window can begin with (`window_bytes.rs`; most groups
//!   of binary content) skips the lookup.
//! - Where both bits are set (at a keyword's window, or by chance at about one position of
//!   random bytes in 800), the keywords filed under that word of the table are compared at
//!   the offset their window has in them: their first eight bytes at once, then in full.
//!
//! Four bytes rather than three, and two bits rather than one, cut the positions that reach
//! the comparison threefold on the detector bench's keyword-dense text (350,000 to 111,000,
//! of which 26,000 are keywords): three-byte windows of even the rarest kind (`sen` of
//! `resend`, `flu` of `confluence`) are parts of common words.
//!
//! So a keyword is three bytes long at least ([`MIN_KEYWORD_LEN`]), which rule files are held
//! to when they are read.

use anyhow::{Context, Result, bail};

#[cfg(target_arch = "x86_64")]
mod avx2;
mod filter;
mod rarity;
mod window;
mod window_bytes;

use filter::WindowFilter;

/// The shortest keyword: one shorter would pass the filter at too many positions.
pub const MIN_KEYWORD_LEN: usize = 3;
/// Bytes in a filter window (a three-byte keyword is filed under every fourth byte).
const WINDOW: usize = 4;

/// Finds every occurrence of a fixed set of keywords, overlapping ones included.
pub struct KeywordSearcher {
    search: Search,
}

enum Search {
    Windows {
        filter: WindowFilter,
        /// Whether the vector loop runs (the processor has it, and the scalar loop was not
        /// asked for).
        vector: bool,
    },
    /// aho-corasick's own overlapping search: the plain search the window filter must agree
    /// with, chosen by `STOWAWAY_PREFILTER=reference` for tests that compare whole scans.
    Reference(aho_corasick::AhoCorasick),
}

/// The environment variable that selects the search: `reference` (see [`Search::Reference`])
/// or `scalar` (the window filter without its vector loop); the fastest by default.
pub const PREFILTER_VARIABLE: &str = "STOWAWAY_PREFILTER";

/// One keyword occurrence: the keyword's index in the list given to [`KeywordSearcher::new`],
/// and the byte range it covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeywordHit {
    pub keyword: usize,
    pub start: usize,
    pub end: usize,
}

/// The searches [`PREFILTER_VARIABLE`] chooses from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SearchKind {
    Fastest,
    Scalar,
    Reference,
}

impl SearchKind {
    fn from_environment() -> SearchKind {
        match std::env::var(PREFILTER_VARIABLE).as_deref() {
            Ok("reference") => SearchKind::Reference,
            Ok("scalar") => SearchKind::Scalar,
            _ => SearchKind::Fastest,
        }
    }
}

impl KeywordSearcher {
    /// Builds the search [`PREFILTER_VARIABLE`] selects. Keywords match ASCII
    /// case-insensitively; each is [`MIN_KEYWORD_LEN`] bytes long at least.
    pub fn new<K: AsRef<[u8]>>(keywords: &[K]) -> Result<KeywordSearcher> {
        KeywordSearcher::of_kind(keywords, SearchKind::from_environment())
    }

    /// Builds one kind of search, whatever the environment says.
    pub fn of_kind<K: AsRef<[u8]>>(keywords: &[K], kind: SearchKind) -> Result<KeywordSearcher> {
        if let Some(short) = keywords.iter().find(|k| k.as_ref().len() < MIN_KEYWORD_LEN) {
            bail!(
                "keyword {:?} is shorter than {MIN_KEYWORD_LEN} bytes",
                String::from_utf8_lossy(short.as_ref())
            );
        }
        let search = match kind {
            SearchKind::Reference => Search::Reference(
                aho_corasick::AhoCorasick::builder()
                    .ascii_case_insensitive(true)
                    .build(keywords)
                    .context("cannot build the reference keyword search")?,
            ),
            SearchKind::Scalar | SearchKind::Fastest => Search::Windows {
                filter: WindowFilter::new(keywords),
                vector: kind == SearchKind::Fastest && vector_available(),
            },
        };
        Ok(KeywordSearcher { search })
    }

    /// Calls `on_hit` for every keyword occurrence in `data`, in no particular order.
    pub fn for_each_hit(&self, data: &[u8], mut on_hit: impl FnMut(KeywordHit)) {
        match &self.search {
            Search::Windows { filter, vector } => {
                let scanned = if *vector {
                    vector_scan(filter, data, &mut on_hit)
                } else {
                    0
                };
                filter.scan_from(data, scanned, &mut on_hit);
            }
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

impl KeywordSearcher {
    /// Whether the vector loop's test of first bytes lets a position beginning with `first`
    /// through (always, for the searches that have no such test).
    #[cfg(test)]
    pub(crate) fn first_bytes_pass(&self, first: [u8; 3]) -> bool {
        match &self.search {
            Search::Windows { filter, .. } => {
                (0..3).all(|place| filter.window_bytes.allows(place, first[place]))
            }
            Search::Reference(_) => true,
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn vector_available() -> bool {
    avx2::available()
}

#[cfg(not(target_arch = "x86_64"))]
fn vector_available() -> bool {
    false
}

/// The vector loop over `data`; returns where the scalar loop goes on.
#[cfg(target_arch = "x86_64")]
fn vector_scan(filter: &WindowFilter, data: &[u8], on_hit: &mut impl FnMut(KeywordHit)) -> usize {
    // SAFETY: only called when `vector_available` said the processor has AVX2.
    unsafe { avx2::scan(filter, data, on_hit) }
}

#[cfg(not(target_arch = "x86_64"))]
fn vector_scan(_: &WindowFilter, _: &[u8], _: &mut impl FnMut(KeywordHit)) -> usize {
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every hit one kind of search finds, sorted.
    fn found(keywords: &[&str], data: &[u8], kind: SearchKind) -> Vec<KeywordHit> {
        let mut found = Vec::new();
        KeywordSearcher::of_kind(keywords, kind)
            .unwrap()
            .for_each_hit(data, |hit| found.push(hit));
        found.sort();
        found
    }

    /// The hits of the window filter, with and without its vector loop (which must agree).
    fn hits(keywords: &[&str], data: &[u8]) -> Vec<KeywordHit> {
        let scalar = found(keywords, data, SearchKind::Scalar);
        assert_eq!(
            found(keywords, data, SearchKind::Fastest),
            scalar,
            "vector and scalar loops"
        );
        scalar
    }

    /// What aho-corasick's own overlapping search reports, for comparison.
    fn reference(keywords: &[&str], data: &[u8]) -> Vec<KeywordHit> {
        found(keywords, data, SearchKind::Reference)
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

    /// Binary content (every byte value, runs of zeros) with keywords planted at random
    /// offsets, among them keywords with punctuation, bytes outside ASCII and three bytes: the
    /// vector loop's test of first bytes skips most of it and must not skip a keyword.
    #[test]
    fn binary_content_agrees_with_aho_corasick() {
        let keywords = [
            "akia",
            "-----begin",
            "pwd",
            "é!x",
            "\x00ab",
            "key=",
            "ghp_",
            "zip",
        ];
        let mut rng = fastrand::Rng::with_seed(11);
        for len in [71, 72, 73, 200, 4096, 65_537] {
            let mut data: Vec<u8> = (0..len)
                .map(|i| if (i / 300) % 3 == 0 { 0 } else { rng.u8(..) })
                .collect();
            for _ in 0..len / 50 {
                let keyword = keywords[rng.usize(..keywords.len())].as_bytes();
                let at = rng.usize(..=len - keyword.len());
                data[at..at + keyword.len()].copy_from_slice(keyword);
                if rng.bool() {
                    data[at..at + keyword.len()].make_ascii_uppercase();
                }
            }
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
