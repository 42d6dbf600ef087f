//! The matching engine: one Aho-Corasick automaton over the keywords of every rule finds where
//! a secret could be; each rule's regex then runs only on the neighbourhood of its keywords.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use anyhow::{Result, bail};

use super::decode::Decoder;
use super::rules::{Rule, Severity};
use super::validate::{Verdict, is_placeholder, shannon_entropy};

/// One secret found in a buffer.
#[derive(Clone, Debug, PartialEq)]
pub struct Match {
    /// Index of the rule in the detector.
    pub rule: usize,
    /// Byte range of the secret in the scanned buffer.
    pub start: usize,
    pub end: usize,
    pub secret: Vec<u8>,
    /// Severity after validation (an encrypted key is less severe than its rule says).
    pub severity: Severity,
    /// Facts the validator learned (`encrypted`, …).
    pub details: Vec<(String, String)>,
}

/// A compiled rule set, ready to scan bytes from many threads at once.
pub struct Detector {
    rules: Vec<Rule>,
    prefilter: AhoCorasick,
    /// For each prefilter pattern (keyword), the rules it triggers. The prefilter reports
    /// overlapping occurrences, so `PGPASSWORD` triggers both `pgpass` and `password` rules.
    pattern_rules: Vec<Vec<u32>>,
    /// For each decoder, the index of the rule it reports under (none when that rule is not
    /// loaded, e.g. `--disable-rule`: the decoder then still opens what it can for the others).
    decoder_rules: Vec<(Decoder, usize)>,
}

impl Detector {
    /// Builds the prefilter for `rules`. Duplicate rule ids are an error.
    pub fn new(rules: Vec<Rule>) -> Result<Detector> {
        let mut seen = std::collections::HashSet::new();
        for rule in &rules {
            if !seen.insert(rule.id.as_str()) {
                bail!("{}: rule {}: duplicate rule id", rule.source, rule.id);
            }
        }
        // Decoder rules are matched by code, so their keywords (if any) stay out of the prefilter.
        let mut patterns: Vec<String> = rules
            .iter()
            .filter(|rule| rule.decoder.is_none())
            .flat_map(|rule| rule.keywords.iter().cloned())
            .collect();
        patterns.sort();
        patterns.dedup();
        let pattern_rules = patterns
            .iter()
            .map(|pattern| {
                rules
                    .iter()
                    .enumerate()
                    .filter(|(_, rule)| {
                        rule.decoder.is_none() && rule.keywords.iter().any(|k| k == pattern)
                    })
                    .map(|(index, _)| index as u32)
                    .collect()
            })
            .collect();
        let prefilter = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            // A full DFA: a few hundred case-insensitive keywords leave the crate's fast
            // literal prefilters nothing to work with, and the default NFA then runs 2.5-3x
            // slower on binary content. The DFA costs about 1.5 MB, once.
            .kind(Some(AhoCorasickKind::DFA))
            .build(&patterns)?;
        let decoder_rules = rules
            .iter()
            .enumerate()
            .filter_map(|(index, rule)| rule.decoder.map(|decoder| (decoder, index)))
            .collect();
        Ok(Detector {
            rules,
            prefilter,
            pattern_rules,
            decoder_rules,
        })
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rule a decoder reports its findings under, if that rule is loaded.
    pub fn decoder_rule(&self, decoder: Decoder) -> Option<usize> {
        self.decoder_rules
            .iter()
            .find(|(d, _)| *d == decoder)
            .map(|&(_, index)| index)
    }

    /// Finds every secret in `data`.
    pub fn scan(&self, data: &[u8]) -> Vec<Match> {
        // (rule, window start, window end) for every keyword hit.
        let mut windows: Vec<(u32, usize, usize)> = Vec::new();
        for hit in self.prefilter.find_overlapping_iter(data) {
            for &rule in &self.pattern_rules[hit.pattern().as_usize()] {
                let reach = self.rules[rule as usize].window;
                windows.push((
                    rule,
                    hit.start().saturating_sub(reach),
                    (hit.end() + reach).min(data.len()),
                ));
            }
        }
        if windows.is_empty() {
            return Vec::new();
        }
        windows.sort_unstable();
        let mut matches = Vec::new();
        let mut current: Option<(u32, usize, usize)> = None;
        for window in windows {
            match &mut current {
                Some((rule, _, end)) if *rule == window.0 && window.1 <= *end => {
                    *end = (*end).max(window.2);
                }
                _ => {
                    if let Some(done) = current.replace(window) {
                        self.run_rule(data, done, &mut matches);
                    }
                }
            }
        }
        if let Some(done) = current {
            self.run_rule(data, done, &mut matches);
        }
        matches.sort_by_key(|m| (m.start, m.end, m.rule));
        matches
    }

    fn run_rule(
        &self,
        data: &[u8],
        (rule_index, start, end): (u32, usize, usize),
        out: &mut Vec<Match>,
    ) {
        let rule = &self.rules[rule_index as usize];
        let window = &data[start..end];
        for captures in rule.regex.captures_iter(window) {
            let Some(group) = captures.get(rule.secret_group) else {
                continue;
            };
            let secret = group.as_bytes();
            if is_placeholder(secret) {
                continue;
            }
            if let Some(minimum) = rule.min_entropy
                && shannon_entropy(secret) < minimum
            {
                continue;
            }
            let (details, severity) = match rule.validator.map(|v| v.check(secret)) {
                Some(Verdict::Reject) => continue,
                Some(Verdict::Accept { details, severity }) => {
                    (details, severity.unwrap_or(rule.severity))
                }
                None => (Vec::new(), rule.severity),
            };
            out.push(Match {
                rule: rule_index as usize,
                start: start + group.start(),
                end: start + group.end(),
                secret: secret.to_vec(),
                severity,
                details,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::rules::parse_rule_file;

    fn detector() -> Detector {
        let rules = parse_rule_file(
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
            "demo.toml",
        )
        .unwrap();
        Detector::new(rules).unwrap()
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

    #[test]
    fn duplicate_ids_are_rejected() {
        let mut rules = detector().rules().to_vec();
        rules.push(rules[0].clone());
        let err = Detector::new(rules).err().unwrap().to_string();
        assert!(err.contains("duplicate rule id"), "{err}");
    }
}
