//! The keyword prefilter: every occurrence of every keyword, case-insensitively, in one pass.
//!
//! Every byte a scan sees goes through here, so it sets the detector's floor. A few hundred
//! case-insensitive keywords leave aho-corasick's literal prefilters (memchr, Teddy) nothing
//! to skip on, so the search is a table-driven DFA walk: one dependent memory load per byte,
//! which makes it latency-bound rather than throughput-bound. Walking two halves of the buffer
//! side by side gives the CPU two independent chains of loads to overlap, about 1.6x the
//! throughput of one walk on the same automaton (measured with `benches/detector.rs`).

use aho_corasick::automaton::{Automaton, StateID};
use aho_corasick::dfa::{Builder, DFA};
use aho_corasick::{Anchored, MatchError, MatchKind};
use anyhow::{Context, Result};

/// Below this size one walk is as fast: the second walk's warm-up (re-reading up to the
/// longest keyword's length before its half) and the bookkeeping would not pay off.
const TWO_WALKS_FROM: usize = 4096;

/// Finds every occurrence of a fixed set of keywords, overlapping ones included.
pub struct KeywordSearcher {
    dfa: DFA,
    start: StateID,
    /// The longest keyword's length minus one: how far before its half the second walk starts.
    overlap: usize,
}

/// One keyword occurrence: the keyword's index in the list given to [`KeywordSearcher::new`],
/// and the byte range it covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeywordHit {
    pub keyword: usize,
    pub start: usize,
    pub end: usize,
}

impl KeywordSearcher {
    /// Builds the automaton. Keywords match ASCII case-insensitively.
    pub fn new<K: AsRef<[u8]>>(keywords: &[K]) -> Result<KeywordSearcher> {
        let dfa = Builder::new()
            .ascii_case_insensitive(true)
            // Standard semantics report every keyword that ends at a position, so
            // `PGPASSWORD` yields both `pgpass` and `password`.
            .match_kind(MatchKind::Standard)
            // Without a prefilter, start states are not special and the walk never stops
            // except at a match.
            .prefilter(false)
            .build(keywords)
            .context("cannot build the keyword automaton")?;
        let start = dfa
            .start_state(Anchored::No)
            .map_err(|e: MatchError| anyhow::anyhow!("keyword automaton: {e}"))?;
        let overlap = dfa.max_pattern_len().saturating_sub(1);
        Ok(KeywordSearcher {
            dfa,
            start,
            overlap,
        })
    }

    /// Calls `on_hit` for every keyword occurrence in `data`, in no particular order.
    pub fn for_each_hit(&self, data: &[u8], mut on_hit: impl FnMut(KeywordHit)) {
        if data.len() < TWO_WALKS_FROM {
            self.walk_one(data, &mut on_hit);
            return;
        }
        // The first walk covers `data[..middle]`. The second starts `overlap` bytes earlier so
        // that it is in the right state for a keyword straddling the middle, and reports only
        // occurrences ending after the middle; those ending at or before it are the first's.
        let middle = data.len() / 2;
        let second_from = middle - self.overlap.min(middle);
        let first = &data[..middle];
        let second = &data[second_from..];
        let (mut a, mut b) = (self.start, self.start);
        let warm_up = middle - second_from;
        for (i, (&x, &y)) in first.iter().zip(second).enumerate() {
            a = self.dfa.next_state(Anchored::No, a, x);
            b = self.dfa.next_state(Anchored::No, b, y);
            if self.dfa.is_special(a) {
                self.report(a, i + 1, &mut on_hit);
            }
            if self.dfa.is_special(b) && i >= warm_up {
                self.report(b, second_from + i + 1, &mut on_hit);
            }
        }
        // The second half is at least as long as the first: finish it alone.
        let done = first.len();
        for (i, &y) in second.iter().enumerate().skip(done) {
            b = self.dfa.next_state(Anchored::No, b, y);
            if self.dfa.is_special(b) && i >= warm_up {
                self.report(b, second_from + i + 1, &mut on_hit);
            }
        }
    }

    fn walk_one(&self, data: &[u8], on_hit: &mut impl FnMut(KeywordHit)) {
        let mut state = self.start;
        for (i, &byte) in data.iter().enumerate() {
            state = self.dfa.next_state(Anchored::No, state, byte);
            if self.dfa.is_special(state) {
                self.report(state, i + 1, on_hit);
            }
        }
    }

    /// Reports every keyword that ends at `end` (a special state is a match state here: the
    /// automaton is unanchored, so it never dies, and has no prefilter).
    #[inline]
    fn report(&self, state: StateID, end: usize, on_hit: &mut impl FnMut(KeywordHit)) {
        for index in 0..self.dfa.match_len(state) {
            let keyword = self.dfa.match_pattern(state, index);
            on_hit(KeywordHit {
                keyword: keyword.as_usize(),
                start: end - self.dfa.pattern_len(keyword),
                end,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aho_corasick::AhoCorasick;

    fn hits(searcher: &KeywordSearcher, data: &[u8]) -> Vec<KeywordHit> {
        let mut found = Vec::new();
        searcher.for_each_hit(data, |hit| found.push(hit));
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

    #[test]
    fn overlapping_and_case_insensitive() {
        let keywords = ["pgpass", "password", "pass"];
        let searcher = KeywordSearcher::new(&keywords).unwrap();
        let found = hits(&searcher, b"export PGPASSWORD=x");
        let names: Vec<&str> = found.iter().map(|h| keywords[h.keyword]).collect();
        assert_eq!(names, ["pgpass", "password", "pass"]);
        assert_eq!(found, reference(&keywords, b"export PGPASSWORD=x"));
    }

    /// Keywords placed at, across and around the point where the two walks meet, in buffers
    /// of every length near it, are each reported exactly once.
    #[test]
    fn two_walks_miss_nothing_and_report_nothing_twice() {
        let keywords = ["token", "secret_key", "k", "-----BEGIN PRIVATE KEY-----"];
        let searcher = KeywordSearcher::new(&keywords).unwrap();
        for len in [TWO_WALKS_FROM, TWO_WALKS_FROM + 1, 3 * TWO_WALKS_FROM + 7] {
            for keyword in keywords {
                for shift in 0..keyword.len() + 2 {
                    let mut data = vec![b'.'; len];
                    let at = len / 2 + shift - keyword.len().min(len / 2 + shift);
                    data[at..at + keyword.len()].copy_from_slice(keyword.as_bytes());
                    data[..keyword.len()].copy_from_slice(keyword.as_bytes());
                    let tail = len - keyword.len();
                    data[tail..].copy_from_slice(keyword.as_bytes());
                    assert_eq!(
                        hits(&searcher, &data),
                        reference(&keywords, &data),
                        "{keyword} at {at} of {len}"
                    );
                }
            }
        }
    }

    #[test]
    fn random_text_agrees_with_aho_corasick() {
        let keywords = ["ab", "ba", "abab", "bb", "aaa", "password", "PASS"];
        let searcher = KeywordSearcher::new(&keywords).unwrap();
        let mut rng = fastrand::Rng::with_seed(7);
        for len in [0, 1, 5, 4095, 4096, 9000, 20_001] {
            let data: Vec<u8> = (0..len)
                .map(|_| b"abAB pswordPSWORD"[rng.usize(..17)])
                .collect();
            assert_eq!(hits(&searcher, &data), reference(&keywords, &data), "{len}");
        }
    }
}
