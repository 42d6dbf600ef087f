//! The matching engine: one keyword pass over the bytes finds where a secret could be; each
//! rule's regex then runs only on the neighbourhood of its keywords.

use std::sync::{Arc, OnceLock};

use anyhow::{Result, bail};

use super::decoder::Decoder;
use super::keywords::{KeywordHit, KeywordSearcher};
use super::password_hash;
use super::published::PublishedKeys;
use super::rules::{PATH_SCOPED_MAX_FILE, Rule, rules_digest};
use super::severity::Severity;
use super::validate::{Verdict, is_identifier_like, is_placeholder, shannon_entropy};

/// How much text after a keyword a rule's `after_keyword` test sees.
const AFTER_KEYWORD_REACH: usize = 256;

/// One secret found in a buffer.
#[derive(Clone, Debug, PartialEq)]
pub struct Match {
    /// Index of the rule in the detector.
    pub rule: usize,
    /// Byte range of the secret in the scanned buffer.
    pub start: usize,
    /// End of that range (exclusive).
    pub end: usize,
    /// The secret's bytes, in the clear (the capture group the rule names, not the whole
    /// match); redacted only when the report is built.
    pub secret: Vec<u8>,
    /// Severity after validation (an encrypted key is less severe than its rule says).
    pub severity: Severity,
    /// Facts the validator learned (`encrypted`, …).
    pub details: Vec<(String, String)>,
}

/// Where one of the detector's markers (see [`Detector::with_markers`]) occurs, exact case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarkerHit {
    /// Index into the markers the detector was built with.
    pub marker: usize,
    pub start: usize,
}

/// What one keyword of the prefilter stands for.
#[derive(Default)]
struct KeywordTargets {
    /// The rules it triggers.
    rules: Vec<u32>,
    /// The markers it is (by index; several when they differ only in case).
    markers: Vec<usize>,
}

/// A compiled rule set, ready to scan bytes from many threads at once.
pub struct Detector {
    rules: Vec<Rule>,
    keywords: KeywordSearcher,
    /// For each keyword of the prefilter, what a hit on it means. The prefilter reports
    /// overlapping occurrences, so `PGPASSWORD` triggers both `pgpass` and `password` rules.
    targets: Vec<KeywordTargets>,
    /// For each decoder, the index of the rule it reports under (none when that rule is not
    /// loaded, e.g. `--disable-rule`: the decoder then still opens what it can for the others).
    decoder_rules: Vec<(Decoder, usize)>,
    /// The markers the detector was built with, exact case, by index.
    markers: Vec<Box<[u8]>>,
    /// [`rules_digest`] of `rules`, computed once: the rules never change after building.
    rules_digest: String,
    /// The path-scoped rules, by index: they run on whole files ([`Detector::scan_path_scoped`]).
    path_rules: Vec<usize>,
    /// Key material public packages ship: matches on it are reported at info.
    published: Arc<PublishedKeys>,
}

/// The window each rule has open while [`Detector::scan_marked`] walks the keyword hits in
/// order: `(start, end)` indexed by rule, and the rules that have one.
struct OpenWindows {
    by_rule: Vec<Option<(usize, usize)>>,
    opened: Vec<u32>,
}

impl OpenWindows {
    fn new(rules: usize) -> OpenWindows {
        OpenWindows {
            by_rule: vec![None; rules],
            opened: Vec::new(),
        }
    }

    fn get(&self, rule: u32) -> Option<(usize, usize)> {
        self.by_rule[rule as usize]
    }

    fn set(&mut self, rule: u32, start: usize, end: usize) {
        if self.by_rule[rule as usize].replace((start, end)).is_none() {
            self.opened.push(rule);
        }
    }

    /// The windows still open, as `(rule, start, end)`.
    fn drain(self) -> impl Iterator<Item = (u32, usize, usize)> {
        let by_rule = self.by_rule;
        self.opened
            .into_iter()
            .filter_map(move |rule| by_rule[rule as usize].map(|(start, end)| (rule, start, end)))
    }
}

/// Where the line around a keyword hit starts and ends, for single-line rules. Hits come in
/// order of their start, so each newline search resumes where the last one stopped: on text
/// with long lines and a keyword every few bytes, searching each hit's whole window for a
/// newline again would cost the window's length per hit.
#[derive(Default)]
struct LineBounds {
    /// `data[..searched_to]` was searched backwards from its end; `start` is just after its
    /// last newline (0 when none).
    searched_to: usize,
    start: usize,
    /// `(from, end)`: the first newline at or after `from` is at `end` (`data.len()` when
    /// there is none).
    end: Option<(usize, usize)>,
}

impl LineBounds {
    /// Where the line holding `data[at]` (or ending at `at`) starts.
    fn line_start(&mut self, data: &[u8], at: usize) -> usize {
        if at > self.searched_to {
            if let Some(newline) = memchr::memrchr(b'\n', &data[self.searched_to..at]) {
                self.start = self.searched_to + newline + 1;
            }
            self.searched_to = at;
        } else if at < self.searched_to {
            // Not reached (hits are taken in order of their start), but stay right all the same.
            return memchr::memrchr(b'\n', &data[..at]).map_or(0, |newline| newline + 1);
        }
        self.start
    }

    /// Where the line holding `data[at]` ends: its newline, or the end of `data`.
    fn line_end(&mut self, data: &[u8], at: usize) -> usize {
        match self.end {
            Some((from, end)) if from <= at && at <= end => end,
            _ => {
                let end = memchr::memchr(b'\n', &data[at..]).map_or(data.len(), |n| at + n);
                self.end = Some((at, end));
                end
            }
        }
    }
}

/// The built-in list, parsed once per process.
fn builtin_published() -> Arc<PublishedKeys> {
    static BUILTIN: OnceLock<Arc<PublishedKeys>> = OnceLock::new();
    Arc::clone(BUILTIN.get_or_init(|| Arc::new(PublishedKeys::builtin())))
}

/// What [`Detector::rules_digest`] is for these rules and published keys, computed without
/// building a detector (`stowaway --version` names it).
pub fn ruleset_digest(rules: &[Rule], published: &PublishedKeys) -> String {
    combined_digest(&rules_digest(rules), published)
}

/// The rules digest joined with the published-keys list's.
fn combined_digest(rules: &str, published: &PublishedKeys) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(rules.as_bytes());
    hasher.update([0]);
    hasher.update(published.digest().as_bytes());
    hex::encode(hasher.finalize())
}

impl Detector {
    /// Builds the prefilter for `rules`, plus `markers`: exact-case hints that a file is worth
    /// parsing (the decoders' table, see [`Detector::new`]), which ride on the keyword pass so
    /// that no file is searched twice. Duplicate rule ids are an error.
    pub fn with_markers(rules: Vec<Rule>, markers: &[&str]) -> Result<Detector> {
        let mut seen = std::collections::HashSet::new();
        for rule in &rules {
            if !seen.insert(rule.id.as_str()) {
                bail!("{}: rule {}: duplicate rule id", rule.source, rule.id);
            }
        }
        // The prefilter ignores ASCII case, so keywords that differ only in case are one.
        // Decoder rules are matched by code, and the keywords of path-scoped rules filter
        // paths, so theirs stay out of it.
        let mut by_keyword = std::collections::BTreeMap::<String, KeywordTargets>::new();
        for (index, rule) in rules.iter().enumerate() {
            if rule.decoder.is_some() || rule.path.is_some() {
                continue;
            }
            for keyword in &rule.keywords {
                let targets = by_keyword.entry(keyword.to_ascii_lowercase()).or_default();
                if targets.rules.last() != Some(&(index as u32)) {
                    targets.rules.push(index as u32);
                }
            }
        }
        for (index, marker) in markers.iter().enumerate() {
            by_keyword
                .entry(marker.to_ascii_lowercase())
                .or_default()
                .markers
                .push(index);
        }
        let keywords = KeywordSearcher::new(&by_keyword.keys().collect::<Vec<_>>())?;
        let targets = by_keyword.into_values().collect();
        let decoder_rules = rules
            .iter()
            .enumerate()
            .filter_map(|(index, rule)| rule.decoder.map(|decoder| (decoder, index)))
            .collect();
        let path_rules = rules
            .iter()
            .enumerate()
            .filter(|(_, rule)| rule.path.is_some())
            .map(|(index, _)| index)
            .collect();
        let published = builtin_published();
        Ok(Detector {
            rules_digest: combined_digest(&rules_digest(&rules), &published),
            published,
            path_rules,
            rules,
            keywords,
            targets,
            decoder_rules,
            markers: markers
                .iter()
                .map(|marker| Box::from(marker.as_bytes()))
                .collect(),
        })
    }

    /// Replaces the list of published key material (the built-in one by default); the rules
    /// digest then covers the new list.
    pub fn with_published(mut self, published: PublishedKeys) -> Detector {
        let rules_digest = rules_digest(&self.rules);
        self.published = Arc::new(published);
        self.rules_digest = combined_digest(&rules_digest, &self.published);
        self
    }

    /// The published key material this detector knows.
    pub fn published(&self) -> &PublishedKeys {
        &self.published
    }

    /// The rules in the order they were given: a [`Match::rule`] indexes this slice.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// A digest of the rules, part of every cache key: results cached under other rules are
    /// never read back.
    pub fn rules_digest(&self) -> &str {
        &self.rules_digest
    }

    /// The rule a decoder reports its findings under, if that rule is loaded.
    pub fn decoder_rule(&self, decoder: Decoder) -> Option<usize> {
        self.decoder_rules
            .iter()
            .find(|(d, _)| *d == decoder)
            .map(|&(_, index)| index)
    }

    /// Runs the path-scoped rules whose path accepts `path` (the file's path in the image, or
    /// an archive member's name; a leading `/` is added when missing) on the whole of `data`.
    /// Files larger than [`PATH_SCOPED_MAX_FILE`] are not read.
    pub fn scan_path_scoped(&self, path: &str, data: &[u8]) -> Vec<Match> {
        if self.path_rules.is_empty() || data.len() > PATH_SCOPED_MAX_FILE {
            return Vec::new();
        }
        let mut matches = Vec::new();
        for index in self.path_rules_for(path) {
            let rule = &self.rules[index];
            for captures in rule.pattern.regex().captures_iter(data) {
                if let Some(found) = self.accept(index, data, 0, data.len(), &captures) {
                    matches.push(found);
                }
            }
        }
        matches
    }

    /// Why the path-scoped rules meant for `path` did not read it, when a file of `len` bytes
    /// is over [`PATH_SCOPED_MAX_FILE`] (the first such rule is named); `None` when no
    /// path-scoped rule is meant for it, or it was read.
    pub fn path_scoped_unread(&self, path: &str, len: u64) -> Option<String> {
        if self.path_rules.is_empty() || len <= PATH_SCOPED_MAX_FILE as u64 {
            return None;
        }
        let first = self.path_rules_for(path).next()?;
        Some(format!(
            "over the {} KiB limit of path-scoped rules: {} not applied (the other rules were)",
            PATH_SCOPED_MAX_FILE >> 10,
            self.rules[first].id
        ))
    }

    /// The path-scoped rules whose path accepts `path` (a leading `/` is added when missing).
    fn path_rules_for<'a>(&'a self, path: &str) -> impl Iterator<Item = usize> + 'a {
        let rooted = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        self.path_rules.iter().copied().filter(move |&index| {
            self.rules[index]
                .path
                .as_ref()
                .is_some_and(|scope| scope.accepts(&rooted))
        })
    }

    /// Finds every secret in `data`.
    pub fn scan(&self, data: &[u8]) -> Vec<Match> {
        self.scan_marked(data).0
    }

    /// Finds every secret in `data`, and where the markers occur (in no particular order).
    ///
    /// Each keyword hit opens a window for each rule it triggers; one rule's overlapping
    /// windows are merged and its regex runs once per merged window. Hits are taken in order
    /// of their start, so a rule's windows arrive in order too (a window's start only moves
    /// forward with its keyword's) and only the open window of each rule is kept: memory is
    /// one entry per hit, not per hit and rule, and a hit whose window lies inside the open
    /// one costs no `after_keyword` test. On text dense with keywords (a hit every few bytes,
    /// each triggering a dozen rules) that, and finding the line around the hits once (see
    /// [`LineBounds`]), is what keeps the scan near the speed of ordinary text.
    pub fn scan_marked(&self, data: &[u8]) -> (Vec<Match>, Vec<MarkerHit>) {
        // (start, length, keyword): 16 bytes a hit, which keyword-dense text has every few bytes.
        let mut hits: Vec<(usize, u32, u32)> = Vec::new();
        let mut marker_hits = Vec::new();
        self.keywords.for_each_hit(data, |hit: KeywordHit| {
            let targets = &self.targets[hit.keyword];
            if !targets.rules.is_empty() {
                let length = (hit.end - hit.start) as u32;
                hits.push((hit.start, length, hit.keyword as u32));
            }
            for &marker in &targets.markers {
                if data[hit.start..hit.end] == *self.markers[marker] {
                    marker_hits.push(MarkerHit {
                        marker,
                        start: hit.start,
                    });
                }
            }
        });
        if hits.is_empty() {
            return (Vec::new(), marker_hits);
        }
        hits.sort_unstable();
        let mut windows = OpenWindows::new(self.rules.len());
        let mut lines = LineBounds::default();
        let mut matches = Vec::new();
        for (start, length, keyword) in hits {
            let hit = KeywordHit {
                keyword: keyword as usize,
                start,
                end: start + length as usize,
            };
            self.open_windows(data, hit, (&mut windows, &mut lines), &mut matches);
        }
        for (rule, start, end) in windows.drain() {
            self.run_rule(data, (rule, start, end), &mut matches);
        }
        matches.sort_by_key(|m| (m.start, m.end, m.rule));
        (matches, marker_hits)
    }

    /// Extends or opens, for each rule `hit` triggers, that rule's window; a window the new
    /// one does not overlap is closed first (its regex runs).
    fn open_windows(
        &self,
        data: &[u8],
        hit: KeywordHit,
        (windows, lines): (&mut OpenWindows, &mut LineBounds),
        out: &mut Vec<Match>,
    ) {
        // Rules of one family share their `after_keyword` test: run it once per hit.
        let mut last_gate: Option<(&str, bool)> = None;
        for &rule in &self.targets[hit.keyword].rules {
            let definition = &self.rules[rule as usize];
            let open = windows.get(rule);
            let mut end = (hit.end + definition.window).min(data.len());
            if open.is_some_and(|(_, open_end)| end <= open_end) {
                continue;
            }
            let mut start = hit.start.saturating_sub(definition.window_before);
            if definition.single_line {
                start = start.max(lines.line_start(data, hit.start));
                end = end.min(lines.line_end(data, hit.end));
                if open.is_some_and(|(_, open_end)| end <= open_end) {
                    continue;
                }
            }
            if let Some(gate) = &definition.after_keyword {
                let passed = match last_gate {
                    Some((source, passed)) if source == gate.as_str() => passed,
                    _ => {
                        let after = &data[hit.end..(hit.end + AFTER_KEYWORD_REACH).min(data.len())];
                        let passed = gate.is_match(after);
                        last_gate = Some((gate.as_str(), passed));
                        passed
                    }
                };
                if !passed {
                    continue;
                }
            }
            match open {
                Some((open_start, open_end)) if start <= open_end => {
                    windows.set(rule, open_start, end);
                }
                Some((open_start, open_end)) => {
                    self.run_rule(data, (rule, open_start, open_end), out);
                    windows.set(rule, start, end);
                }
                None => windows.set(rule, start, end),
            }
        }
    }

    fn run_rule(
        &self,
        data: &[u8],
        (rule_index, start, end): (u32, usize, usize),
        out: &mut Vec<Match>,
    ) {
        let rule = &self.rules[rule_index as usize];
        let window = &data[start..end];
        // Most windows hold no secret. `is_match` answers that with the DFA alone and stops at
        // the first match; `captures_iter` costs about three times as much per window even
        // when it finds nothing, so it runs only where there is something to capture.
        if !rule.pattern.regex().is_match(window) {
            return;
        }
        for captures in rule.pattern.regex().captures_iter(window) {
            if let Some(found) = self.accept(rule_index as usize, data, start, end, &captures) {
                out.push(found);
            }
        }
    }

    /// The match a rule's regex captured in `data[start..end]`, unless its secret group did not
    /// take part (a discard alternative), it is a placeholder, its entropy is too low, a
    /// narrowed window does not confirm it, or the validator rejects it.
    fn accept(
        &self,
        rule_index: usize,
        data: &[u8],
        start: usize,
        end: usize,
        captures: &regex::bytes::Captures<'_>,
    ) -> Option<Match> {
        let rule = &self.rules[rule_index];
        let group = captures.get(rule.pattern.secret_group())?;
        let secret = group.as_bytes();
        if is_placeholder(secret) || (rule.is_generic() && is_identifier_like(secret)) {
            return None;
        }
        // A password hash under a password-like key is reported by the password-hash rules, as
        // a hash (crackable offline), not as a clear-text password.
        if rule.is_generic()
            && std::str::from_utf8(secret).is_ok_and(password_hash::is_password_hash)
        {
            return None;
        }
        if let Some(minimum) = rule.min_entropy
            && shannon_entropy(secret) < minimum
        {
            return None;
        }
        let secret_range = start + group.start()..start + group.end();
        if rule.narrowed() {
            let whole = captures.get(0).expect("group 0 is the whole match");
            if !self.confirm(rule, data, start + whole.start(), end, &secret_range) {
                return None;
            }
        }
        let (details, severity) = match rule.validator.map(|v| v.check(secret)) {
            Some(Verdict::Reject) => return None,
            Some(Verdict::Accept { details, severity }) => {
                (details, severity.unwrap_or(rule.severity))
            }
            None => (Vec::new(), rule.severity),
        };
        Some(Match {
            rule: rule_index,
            start: secret_range.start,
            end: secret_range.end,
            secret: secret.to_vec(),
            severity,
            details,
        })
    }

    /// Whether the secret at `secret` (found in a narrowed window: `window_before` bytes
    /// before its keyword, or its line) is still reported when the regex sees `window` bytes
    /// before the match starting at `match_start`: a discard alternative starting further back (an
    /// `Example:` header, an AWS examples document) may take the text instead.
    fn confirm(
        &self,
        rule: &Rule,
        data: &[u8],
        match_start: usize,
        window_end: usize,
        secret: &std::ops::Range<usize>,
    ) -> bool {
        let start = match_start.saturating_sub(rule.window);
        rule.pattern
            .regex()
            .captures_iter(&data[start..window_end])
            .filter_map(|captures| captures.get(rule.pattern.secret_group()))
            .any(|group| start + group.start() == secret.start && start + group.end() == secret.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::keywords::SearchKind;
    use crate::detect::rules::parse_rule_file;

    fn detector_from(rule_file: &str) -> Detector {
        Detector::new(parse_rule_file(rule_file, "demo.toml").unwrap()).unwrap()
    }

    fn detector() -> Detector {
        detector_from(
            r#"
[[rules]]
id = "demo-key"
name = "Demo key"
severity = "high"
keywords = ["dmk_"]
regex = '''(dmk_[A-Za-z0-9]{16})'''

[[rules]]
id = "demo-password"
name = "Demo password"
severity = "medium"
keywords = ["password"]
regex = '''(?i)password\s*=\s*(?P<secret>[^\s"']{8,64})'''
min_entropy = 2.5

[[rules]]
id = "demo-db-password"
name = "Demo DB password"
severity = "high"
keywords = ["db_password"]
regex = '''DB_PASSWORD=(\S{8,})'''
"#,
        )
    }

    #[test]
    fn finds_keyword_neighbourhood_matches() {
        let detector = detector();
        let data = b"junk junk DMK_ nope dmk_Ab3dEf6hIj9kLm2n tail";
        let found = detector.scan(data);
        assert_eq!(found.len(), 1);
        assert_eq!(&data[found[0].start..found[0].end], b"dmk_Ab3dEf6hIj9kLm2n");
    }

    #[test]
    fn longer_keywords_still_trigger_contained_ones() {
        let detector = detector();
        let found = detector.scan(b"export DB_PASSWORD=Tr0ub4dor-3xq\n");
        let ids: Vec<&str> = found
            .iter()
            .map(|m| detector.rules()[m.rule].id.as_str())
            .collect();
        assert!(ids.contains(&"demo-db-password"), "{ids:?}");
        assert!(ids.contains(&"demo-password"), "{ids:?}");
    }

    #[test]
    fn filters_placeholders_and_low_entropy() {
        let detector = detector();
        assert!(detector.scan(b"password = changeme").is_empty());
        assert!(detector.scan(b"password = ${SECRET_VALUE}").is_empty());
        assert!(detector.scan(b"password = abababab").is_empty());
        assert_eq!(detector.scan(b"password = Zq3LmN8pR2sT").len(), 1);
    }

    fn narrowed_detector() -> Detector {
        detector_from(
            r#"
[[rules]]
id = "demo-assignment"
name = "Demo assignment"
severity = "medium"
keywords = ["token"]
regex = '''(?:(?m:^EXAMPLES:$)(?s:.)*?token\W+\S+|token\W+(?:NEXT LINE )?(?P<secret>[A-Za-z0-9]{12,}))'''
window = 512
window_before = 8
single_line = true
after_keyword = '''[ \t]*='''
"#,
        )
    }

    #[test]
    fn after_keyword_gates_hits() {
        let detector = narrowed_detector();
        assert_eq!(detector.scan(b"token = Ab3dEf6hIj9kLm2n\n").len(), 1);
        // The regex alone would take this, but no `=` follows the keyword.
        assert!(detector.scan(b"token: Ab3dEf6hIj9kLm2n\n").is_empty());
    }

    #[test]
    fn narrowed_windows_keep_to_the_line_and_confirm_with_the_whole_look_back() {
        let detector = narrowed_detector();
        // Found on its line, however much text surrounds it.
        let filler = "filler line\n".repeat(40);
        let plain = format!("{filler}token = Ab3dEf6hIj9kLm2n\n{filler}");
        let found = detector.scan(plain.as_bytes());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].secret, b"Ab3dEf6hIj9kLm2n");
        // A discard alternative starting 240 bytes above (beyond window_before, within
        // window) still takes the assignment.
        let header = format!("EXAMPLES:\n{}token = Ab3dEf6hIj9kLm2n\n", &filler[..240]);
        assert!(detector.scan(header.as_bytes()).is_empty());
        // single_line: what follows on the next line is not searched (the regex alone would
        // take it: `\W+` crosses the line break).
        let next_line = b"token =\nNEXT LINE Ab3dEf6hIj9kLm2n\n";
        assert!(detector.rules()[0].pattern.regex().is_match(next_line));
        assert!(detector.scan(next_line).is_empty());
    }

    #[test]
    fn window_before_may_not_exceed_window() {
        let err = parse_rule_file(
            r#"
[[rules]]
id = "demo-wide"
name = "Demo"
severity = "low"
keywords = ["token"]
regex = 'token=(\w{8,})'
window = 64
window_before = 128
"#,
            "demo.toml",
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            err.contains("window_before 128 is larger than window 64"),
            "{err}"
        );
    }

    #[test]
    fn path_scoped_rules_run_on_whole_files_at_their_paths_only() {
        let detector = detector_from(
            r#"
[[rules]]
id = "demo-secret-file"
name = "Demo secret file"
severity = "high"
keywords = ["secrets/"]
path = '/secrets/[^/]+$'
regex = '\A(?P<secret>[A-Za-z0-9]{8,})\n?\z'
min_entropy = 3.0
"#,
        );
        let value = b"Zq3LmN8pR2sT4vW6\n";
        // Not in the keyword pass: content alone finds nothing.
        assert!(detector.scan(value).is_empty());
        let found = detector.scan_path_scoped("run/secrets/db", value);
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].start, found[0].end), (0, 16));
        assert_eq!(found[0].secret, b"Zq3LmN8pR2sT4vW6");
        assert!(detector.scan_path_scoped("/run/other/db", value).is_empty());
        // The engine's filters apply: placeholders and low entropy.
        assert!(
            detector
                .scan_path_scoped("/run/secrets/db", b"changeme\n")
                .is_empty()
        );
        assert!(
            detector
                .scan_path_scoped("/run/secrets/db", b"abababab\n")
                .is_empty()
        );
        // Large files are not read.
        let large = vec![b'a'; crate::detect::rules::PATH_SCOPED_MAX_FILE + 1];
        assert!(
            detector
                .scan_path_scoped("/run/secrets/db", &large)
                .is_empty()
        );
    }

    /// The matches of the engine as it was before windows were merged on the fly: every
    /// (rule, window) of every hit collected, sorted, merged, and each rule's regex run per
    /// merged window. The reference [`Detector::scan_marked`] must agree with.
    fn scan_by_sorted_windows(detector: &Detector, data: &[u8]) -> Vec<Match> {
        let mut windows: Vec<(u32, usize, usize)> = Vec::new();
        detector.keywords.for_each_hit(data, |hit: KeywordHit| {
            for &rule in &detector.targets[hit.keyword].rules {
                let definition = &detector.rules[rule as usize];
                if let Some(gate) = &definition.after_keyword {
                    let after = &data[hit.end..(hit.end + AFTER_KEYWORD_REACH).min(data.len())];
                    if !gate.is_match(after) {
                        continue;
                    }
                }
                let mut start = hit.start.saturating_sub(definition.window_before);
                let mut end = (hit.end + definition.window).min(data.len());
                if definition.single_line {
                    if let Some(newline) = memchr::memrchr(b'\n', &data[start..hit.start]) {
                        start += newline + 1;
                    }
                    if let Some(newline) = memchr::memchr(b'\n', &data[hit.end..end]) {
                        end = hit.end + newline;
                    }
                }
                windows.push((rule, start, end));
            }
        });
        windows.sort_unstable();
        let mut merged: Vec<(u32, usize, usize)> = Vec::new();
        for window in windows {
            match merged.last_mut() {
                Some((rule, _, end)) if *rule == window.0 && window.1 <= *end => {
                    *end = (*end).max(window.2);
                }
                _ => merged.push(window),
            }
        }
        let mut matches = Vec::new();
        for window in merged {
            detector.run_rule(data, window, &mut matches);
        }
        matches.sort_by_key(|m| (m.start, m.end, m.rule));
        matches
    }

    /// Text dense with keywords, with and without values, on lines and run together.
    fn dense_text(rng: &mut fastrand::Rng, len: usize) -> Vec<u8> {
        let value = |rng: &mut fastrand::Rng| -> String {
            (0..rng.usize(6..30)).map(|_| rng.alphanumeric()).collect()
        };
        let mut text = Vec::with_capacity(len + 100);
        while text.len() < len {
            let piece = match rng.usize(..12) {
                0 => "pwd=".to_string(),
                1 => "password ".to_string(),
                2 => "token token token".to_string(),
                3 => format!("pwd={}", value(rng)),
                4 => format!("password = \"{}\"", value(rng)),
                5 => format!("token={} pwd pwd", value(rng)),
                6 => "passwordpasswordpwd=".to_string(),
                7 => format!("db.password={}", value(rng)),
                8 => format!("secret: {}", value(rng)),
                9 => format!("export API_TOKEN={}", value(rng)),
                10 => format!("PGPASSWORD={};", value(rng)),
                _ => "\n".to_string(),
            };
            text.extend(piece.as_bytes());
            text.push(if rng.bool() { b'\n' } else { b' ' });
        }
        text
    }

    /// Merging each rule's windows as the hits come, in order, finds exactly what collecting
    /// every window first found: on keyword-dense text with the built-in rules, and on text
    /// where windows overlap across lines and rules.
    #[test]
    fn windows_merged_in_order_find_what_sorted_windows_found() {
        let detector = Detector::new(crate::detect::rules::builtin_rules().unwrap()).unwrap();
        let mut rng = fastrand::Rng::with_seed(12);
        for len in [0, 100, 5_000, 300_000] {
            let text = dense_text(&mut rng, len);
            let found = detector.scan(&text);
            assert_eq!(
                found,
                scan_by_sorted_windows(&detector, &text),
                "{len} bytes"
            );
            if len == 300_000 {
                assert!(found.len() > 1000, "only {} matches", found.len());
            }
        }
        let narrowed = narrowed_detector();
        let filler = "filler line\n".repeat(30);
        let text = format!(
            "token = Ab3dEf6hIj9kLm2n token = Zq3LmN8pR2sT\n{filler}EXAMPLES:\ntoken = Ab3dEf6hIj9kLm2n\ntoken token = Qw5eRt7yUi9oPa1s"
        );
        assert_eq!(
            narrowed.scan(text.as_bytes()),
            scan_by_sorted_windows(&narrowed, text.as_bytes())
        );
    }

    #[test]
    fn duplicate_ids_are_rejected() {
        let mut rules = detector().rules().to_vec();
        rules.push(rules[0].clone());
        let err = Detector::new(rules).err().unwrap().to_string();
        assert!(err.contains("duplicate rule id"), "{err}");
    }

    /// With the built-in rules' keywords, most positions of random bytes fail the vector
    /// loop's test of first bytes (3.9 % pass), which is what makes it pay on binary content;
    /// keywords whose windows begin with bytes no other has (control bytes, bytes outside
    /// ASCII) would undo that. At 8 %, only half the groups of eight would skip their gather.
    #[test]
    fn builtin_keywords_leave_few_positions_of_random_bytes() {
        let rules = crate::detect::rules::builtin_rules().unwrap();
        let keywords: Vec<&str> = rules
            .iter()
            .flat_map(|rule| rule.keywords.iter().map(String::as_str))
            .collect();
        let searcher = KeywordSearcher::of_kind(&keywords, SearchKind::Scalar).unwrap();
        let mut rng = fastrand::Rng::with_seed(5);
        let data: Vec<u8> = (0..1_000_000).map(|_| rng.u8(..)).collect();
        let passing = data
            .windows(3)
            .filter(|first| searcher.first_bytes_pass([first[0], first[1], first[2]]))
            .count();
        let share = passing as f64 / data.len() as f64;
        assert!(share < 0.08, "{:.1} % of positions pass", share * 100.0);
    }

    /// The keyword prefilter (`keywords/`, whose own tests use made-up keywords), with and
    /// without its vector loop, with the built-in rules' keywords, against aho-corasick's
    /// overlapping search: on random bytes, on random letters, and on text made of the keywords
    /// themselves with random case, run together and overlapping.
    #[test]
    fn builtin_keywords_agree_with_aho_corasick() {
        let rules = crate::detect::rules::builtin_rules().unwrap();
        let mut keywords: Vec<String> = rules
            .iter()
            .flat_map(|rule| rule.keywords.iter().map(|k| k.to_ascii_lowercase()))
            .collect();
        keywords.sort();
        keywords.dedup();
        let keywords: Vec<&str> = keywords.iter().map(String::as_str).collect();
        let searchers = [SearchKind::Scalar, SearchKind::Fastest]
            .map(|kind| (kind, KeywordSearcher::of_kind(&keywords, kind).unwrap()));
        let reference = KeywordSearcher::of_kind(&keywords, SearchKind::Reference).unwrap();
        let mut rng = fastrand::Rng::with_seed(11);
        let random: Vec<u8> = (0..200_000).map(|_| rng.u8(..)).collect();
        let letters: Vec<u8> = (0..200_000)
            .map(|_| b"abcdefghijklmnopqrstuvwxyz_-ABCDEFGHIJKLMNOPQRSTUVWXYZ"[rng.usize(..54)])
            .collect();
        let mut spliced = Vec::new();
        while spliced.len() < 200_000 {
            let keyword = keywords[rng.usize(..keywords.len())].as_bytes();
            let cut = rng.usize(..=keyword.len());
            spliced.extend(keyword[..cut].iter().map(|&b| {
                if rng.bool() {
                    b.to_ascii_uppercase()
                } else {
                    b
                }
            }));
            if rng.u8(..4) == 0 {
                spliced.push(b' ');
            }
        }
        for (what, data) in [
            ("random", random),
            ("letters", letters),
            ("keywords", spliced),
        ] {
            let mut expected = Vec::new();
            reference.for_each_hit(&data, |hit| expected.push(hit));
            expected.sort();
            for (kind, searcher) in &searchers {
                let mut found = Vec::new();
                searcher.for_each_hit(&data, |hit| found.push(hit));
                found.sort();
                assert!(
                    found == expected,
                    "{what}: the {kind:?} prefilter and aho-corasick disagree"
                );
            }
        }
    }
}
