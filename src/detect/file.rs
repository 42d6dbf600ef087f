//! Whole-file scanning: the regex rules on the raw bytes, plus what decoders find inside them
//! (base64 `data:` of Kubernetes Secrets, docker `auths`, nested archives, key stores; see
//! [`super::decode`]).

use anyhow::Result;

use super::decode::{FileMatch, FileScan, Level, Limits, MARKERS, Scanner};
use super::engine::Detector;
use super::rules::Rule;

impl Detector {
    /// Builds the detector for `rules` with the decoders' markers, so that
    /// [`Detector::scan_file`] knows which decoders a file calls for from the same keyword
    /// pass that runs the rules. Duplicate rule ids are an error.
    pub fn new(rules: Vec<Rule>) -> Result<Detector> {
        Detector::with_markers(rules, MARKERS)
    }

    /// Scans a whole file (`path` is its path in the image, for messages about what was
    /// skipped). Use [`Detector::scan_file_with_skips`] to learn what limits stopped.
    pub fn scan_file(&self, path: &str, content: &[u8]) -> Vec<FileMatch> {
        self.scan_file_with_skips(path, content).matches
    }

    /// Scans a whole file, and reports what the decoders did not open because of a limit
    /// (archive depth, decompressed size, member count) or because it was unreadable
    /// (encrypted or corrupt members).
    pub fn scan_file_with_skips(&self, path: &str, content: &[u8]) -> FileScan {
        self.scan_file_with_limits(path, content, Limits::default())
    }

    /// [`Detector::scan_file_with_skips`] with other limits than the defaults.
    pub fn scan_file_with_limits(&self, path: &str, content: &[u8], limits: Limits) -> FileScan {
        let mut scanner = Scanner::new(self, limits);
        let level = Level {
            what: path.to_string(),
            path: path.to_string(),
            archive_depth: 0,
            decode_depth: 0,
        };
        let matches = scanner.scan(content, &level);
        FileScan {
            matches,
            skipped: scanner.skipped,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::detect::engine::Detector;
    use crate::detect::rules::{BUILTIN_RULE_FILES, Rule, parse_rule_file};
    use crate::detect::selftest::check_rules;

    /// The decoder rules of `signatures/decoded.toml`, alone.
    pub(crate) fn decoded_rules() -> Vec<Rule> {
        let (name, text) = BUILTIN_RULE_FILES
            .iter()
            .find(|(name, _)| *name == "decoded.toml")
            .expect("signatures/decoded.toml is built in");
        parse_rule_file(text, name).unwrap()
    }

    #[test]
    fn decoder_rules_pass_their_own_examples() {
        let rules = decoded_rules();
        assert!(rules.iter().all(|rule| rule.decoder.is_some()));
        let problems = check_rules(&rules);
        assert!(
            problems.is_empty(),
            "{}",
            problems
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    #[test]
    fn decoder_rules_stay_out_of_the_regex_engine() {
        let detector = Detector::new(decoded_rules()).unwrap();
        let text = b"kind: Secret\nstringData:\n  password: Zq3LmN8pR2sT4vW6\n";
        assert!(detector.scan(text).is_empty());
        assert_eq!(detector.scan_file("s.yaml", text).len(), 1);
    }
}
