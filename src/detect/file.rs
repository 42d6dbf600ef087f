//! Whole-file scanning: the regex rules on the raw bytes, plus what decoders find inside them
//! (base64 `data:` of Kubernetes Secrets, docker `auths`, nested archives, key stores; see
//! [`super::decode`]).

use anyhow::Result;

use base64::Engine as _;

use super::decode::{FileMatch, FileScan, Level, Limits, MARKERS, Scanner, Skipped, plain};
use super::engine::{Detector, Match};
use super::published::published_in;
use super::rules::Rule;
use super::severity::Severity;
use super::x509::{certificate_facts, key_identity, pem_der};

/// DER certificate files read whole, at most this large.
const DER_CERTIFICATE_MAX: usize = 64 << 10;

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
        let mut matches = scanner.scan(content, &level);
        if let Some(certificate) = self.der_certificate(path, content) {
            matches.push(certificate);
        }
        let mut skipped = scanner.skipped;
        self.annotate(path, &mut matches, &mut skipped);
        FileScan { matches, skipped }
    }

    /// What a match is, beyond what its rule says: a certificate's facts (subject, issuer,
    /// expiry, the identity of its public key), a private key's identity (to pair it with its
    /// certificate), and where published key material is published (reported at info). A
    /// certificate that does not parse as X.509 is dropped and counted as skipped.
    pub(crate) fn annotate(
        &self,
        path: &str,
        matches: &mut Vec<FileMatch>,
        skipped: &mut Vec<Skipped>,
    ) {
        let rules = self.rules();
        matches.retain_mut(|found| {
            let m = &mut found.base;
            if rules[m.rule].is_inventory() {
                let Some(facts) = pem_der(&m.secret).and_then(|der| certificate_facts(&der)) else {
                    skipped.push(Skipped {
                        reason: "a certificate that does not parse as X.509 (not listed)".into(),
                        what: archive_what(path, &found.archive_path),
                        irregular: false,
                    });
                    return false;
                };
                let mut details = vec![
                    ("subject".to_string(), facts.subject),
                    ("issuer".to_string(), facts.issuer),
                    ("not_after".to_string(), facts.not_after),
                    ("self_signed".to_string(), facts.self_signed.to_string()),
                ];
                details.extend(facts.public_key.map(|id| ("public_key".to_string(), id)));
                super::decode::add_details(&mut m.details, &details);
                return true;
            }
            if memchr::memmem::find(&m.secret, b"PRIVATE KEY-----").is_some()
                && let Some(id) = key_identity(&m.secret)
            {
                super::decode::add_details(&mut m.details, &[("public_key".to_string(), id)]);
            }
            if let Some(sightings) = self.published().lookup(&m.secret) {
                m.severity = Severity::Info;
                super::decode::add_details(
                    &mut m.details,
                    &[("published_in".to_string(), published_in(sightings))],
                );
            }
            true
        });
        // Another rule that matched inside published key material (a part of the same key)
        // says nothing more: it is published too.
        let published: Vec<(std::ops::Range<usize>, Vec<String>, String)> = matches
            .iter()
            .filter_map(|m| {
                let place = m.base.details.iter().find(|(k, _)| k == "published_in")?;
                Some((
                    m.base.start..m.base.end,
                    m.archive_path.clone(),
                    place.1.clone(),
                ))
            })
            .collect();
        for m in matches.iter_mut() {
            let inside = published.iter().find(|(range, members, _)| {
                *members == m.archive_path && m.base.start < range.end && range.start < m.base.end
            });
            if let Some((_, _, place)) = inside
                && !rules[m.base.rule].is_inventory()
            {
                m.base.severity = Severity::Info;
                super::decode::add_details(
                    &mut m.base.details,
                    &[("published_in".to_string(), place.clone())],
                );
            }
        }
    }

    /// A certificate file in binary (DER) form, named as one (`.der`, `.cer`, `.crt`): listed
    /// under the inventory rule, with the certificate as PEM text for its secret.
    fn der_certificate(&self, path: &str, content: &[u8]) -> Option<FileMatch> {
        let lower = path.to_ascii_lowercase();
        let named = [".der", ".cer", ".crt"]
            .iter()
            .any(|ext| lower.ends_with(ext));
        if !named || content.len() > DER_CERTIFICATE_MAX || content.first() != Some(&0x30) {
            return None;
        }
        let rule = self.rules().iter().position(Rule::is_inventory)?;
        certificate_facts(content)?;
        let body = base64::engine::general_purpose::STANDARD.encode(content);
        let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
        for line in body.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).unwrap_or_default());
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
        Some(plain(Match {
            rule,
            start: 0,
            end: content.len(),
            secret: pem.into_bytes(),
            severity: self.rules()[rule].severity,
            details: vec![("encoding".to_string(), "DER".to_string())],
        }))
    }
}

/// The file and the archive members leading to a match, as skip records name them.
fn archive_what(path: &str, archive_path: &[String]) -> String {
    let mut what = path.to_string();
    for member in archive_path {
        what.push_str("!/");
        what.push_str(member);
    }
    what
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
