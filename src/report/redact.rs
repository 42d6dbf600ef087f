//! Redaction and fingerprints. A redacted secret keeps just enough to recognise the kind of
//! credential (a 4-character prefix such as `AKIA` or `ghp_`) and never enough to use it.

use sha2::{Digest, Sha256};

use super::model::Report;

/// The form of `secret` shown in reports unless `--show-secrets` is given. Only a token's
/// public kind marker survives (`ghp_`, `xoxb-`, `sk-ant-`, `AKIA`); passwords and other
/// free-form values show nothing of themselves.
pub fn redact(secret: &str) -> String {
    let secret = secret.trim();
    if let Some((first_line, _)) = secret.split_once('\n') {
        // Key blocks: the BEGIN line says what it is; the body is withheld.
        return format!("{} …[{} bytes redacted]", first_line.trim(), secret.len());
    }
    let stars = |n: usize| "*".repeat(n.clamp(4, 12));
    let length = secret.chars().count();
    let prefix = kind_marker(secret);
    format!("{prefix}{}", stars(length - prefix.chars().count()))
}

/// The leading marker that names a token's kind, when the secret has one and is long enough
/// that showing it gives nothing away.
fn kind_marker(secret: &str) -> &str {
    if secret.len() < 16 {
        return "";
    }
    // `ghp_`, `glpat-`, `sk-ant-api03-`: letters and digits up to the last separator within
    // the first 14 characters, as long as they contain a letter run of two or more.
    let head = &secret[..secret.len().min(14)];
    if let Some(end) = head.rfind(['_', '-']) {
        let marker = &secret[..=end];
        if marker
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            && marker.chars().filter(|c| c.is_ascii_alphabetic()).count() >= 2
        {
            return marker;
        }
    }
    // AWS-style ids: four capital letters (AKIA, ASIA).
    let four = &secret[..4];
    if four.chars().all(|c| c.is_ascii_uppercase()) && secret.is_ascii() {
        return four;
    }
    ""
}

/// A stable identifier for (rule, secret): the same key leaked again in a rebuilt image, in
/// another layer or path, has the same fingerprint. Truncated SHA-256, hex.
pub fn fingerprint(rule_id: &str, secret: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(rule_id.as_bytes());
    hasher.update([0]);
    hasher.update(secret.trim().as_bytes());
    hex::encode(&hasher.finalize()[..16])
}

/// Replaces every occurrence of each secret in `text` with its redacted form (for history lines
/// and names printed next to findings). See [`Redactor`] for what happens where secrets overlap.
pub fn redact_in_text(text: &str, secrets: &[String]) -> String {
    Redactor::new(secrets).redact_in(text)
}

/// Redacts a fixed set of secrets in any number of texts. The secrets are searched for all at
/// once, so a text costs about its length however many secrets there are: an image with tens
/// of thousands of findings has as many history lines to redact.
///
/// The text is read from left to right; where secrets start at the same place the longest is
/// redacted, and the text resumes after it (so a secret inside a longer one at the same place
/// never shows, and neither does any part of the longer one).
pub struct Redactor {
    /// The distinct non-empty secrets.
    secrets: Vec<String>,
    /// Finds the leftmost-longest of `secrets`; `None` when there are none, or when the
    /// automaton would exceed its size limits (then [`redact_each_position`] does the work).
    searcher: Option<aho_corasick::AhoCorasick>,
}

impl Redactor {
    /// A redactor of `secrets` (duplicates and empty strings are ignored).
    pub fn new(secrets: &[String]) -> Redactor {
        let mut seen = std::collections::HashSet::new();
        let secrets: Vec<String> = secrets
            .iter()
            .filter(|secret| !secret.is_empty() && seen.insert(secret.as_str()))
            .cloned()
            .collect();
        let searcher = if secrets.is_empty() {
            None
        } else {
            aho_corasick::AhoCorasick::builder()
                .match_kind(aho_corasick::MatchKind::LeftmostLongest)
                .build(&secrets)
                .ok()
        };
        Redactor { secrets, searcher }
    }

    /// `text` with every occurrence of each secret replaced by its redacted form.
    pub fn redact_in(&self, text: &str) -> String {
        if self.secrets.is_empty() {
            return text.to_string();
        }
        let Some(searcher) = &self.searcher else {
            return redact_each_position(text, &self.secrets);
        };
        let mut out = String::with_capacity(text.len());
        searcher.replace_all_with(text, &mut out, |found, _, out| {
            out.push_str(&redact(&self.secrets[found.pattern().as_usize()]));
            true
        });
        out
    }
}

/// What [`Redactor::redact_in`] computes, the simple way: at each position, the longest secret
/// starting there is redacted and the text resumes after it. Costs the text's length times the
/// number of secrets: the fallback when the automaton cannot be built, and the reference the
/// tests compare it with.
fn redact_each_position(text: &str, secrets: &[String]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(next) = rest.chars().next() {
        let longest = secrets
            .iter()
            .filter(|secret| !secret.is_empty() && rest.starts_with(secret.as_str()))
            .max_by_key(|secret| secret.len());
        match longest {
            Some(secret) => {
                out.push_str(&redact(secret));
                rest = &rest[secret.len()..];
            }
            None => {
                out.push(next);
                rest = &rest[next.len_utf8()..];
            }
        }
    }
    out
}

/// `report` with every secret redacted again, for the formats that go where others read them
/// (Markdown comments, JUnit panes) even under `--show-secrets`: each finding's secret, and
/// those secrets wherever a history step quotes them.
pub fn masked(report: &Report) -> Report {
    let mut masked = report.clone();
    for image in &mut masked.images {
        let secrets: Vec<String> = image.findings.iter().map(|f| f.secret.clone()).collect();
        let redactor = Redactor::new(&secrets);
        for finding in &mut image.findings {
            finding.secret = redact(&finding.secret);
        }
        for layer in &mut image.layers {
            if let Some(created_by) = &layer.created_by {
                layer.created_by = Some(redactor.redact_in(created_by));
            }
        }
    }
    masked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_without_leaking() {
        let key = "AKIA2OGYBAH6QX3ZLB7N";
        let shown = redact(key);
        assert!(
            shown.starts_with("AKIA") && !shown.contains("QX3Z"),
            "{shown}"
        );
        assert_eq!(redact("hunter2"), "*******");
        assert_eq!(redact("Cz6eQ9v2Lm8Rt4Yp0Wx7"), "************");
        assert!(redact("ghp_Zq3LmN8pR2sT4vW6xY8zA1bC3dE5fG123456").starts_with("ghp_*"));
        assert!(redact("xoxb-1234567890-abcdefghijkl").starts_with("xoxb-*"));
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----";
        assert!(redact(pem).starts_with("-----BEGIN RSA PRIVATE KEY----- …["));
        assert!(!redact(pem).contains("MIIE"));
    }

    #[test]
    fn fingerprints_are_stable_and_rule_specific() {
        assert_eq!(fingerprint("a", "s"), fingerprint("a", "s"));
        assert_ne!(fingerprint("a", "s"), fingerprint("b", "s"));
        assert_eq!(fingerprint("a", "s").len(), 32);
    }

    #[test]
    fn redacts_inside_history_lines() {
        let line = "|1 NPM_TOKEN=npm_abcdefghijklmnopqrstuvwxyz0123456789 /bin/sh -c npm ci";
        let out = redact_in_text(line, &["npm_abcdefghijklmnopqrstuvwxyz0123456789".into()]);
        assert!(!out.contains("qrstuv"), "{out}");
        assert!(out.contains("/bin/sh -c npm ci"));
    }

    /// A small random text over a few letters, so that secrets recur, nest and overlap.
    fn random_text(seed: &mut u64, len: usize) -> String {
        (0..len)
            .map(|_| {
                *seed ^= *seed << 13;
                *seed ^= *seed >> 7;
                *seed ^= *seed << 17;
                ['a', 'b', 'c', 'é'][(*seed % 4) as usize]
            })
            .collect()
    }

    #[test]
    fn the_automaton_redacts_as_the_simple_reading_does() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for round in 0..2_000 {
            let secrets: Vec<String> = (0..1 + round % 6)
                .map(|i| random_text(&mut seed, 1 + (i + round) % 5))
                .collect();
            let text = random_text(&mut seed, round % 40);
            assert_eq!(
                Redactor::new(&secrets).redact_in(&text),
                redact_each_position(&text, &secrets),
                "{text:?} with {secrets:?}"
            );
        }
    }

    #[test]
    fn the_longest_secret_at_a_place_is_redacted_whole() {
        let long = "AKIA2OGYBAH6QX3ZLB7N".to_string();
        let short = "AKIA2OGYBAH6".to_string();
        for secrets in [vec![short.clone(), long.clone()], vec![long.clone(), short]] {
            let out = redact_in_text(&format!("id={long};"), &secrets);
            assert_eq!(out, format!("id={};", redact(&long)));
        }
        assert_eq!(
            redact_in_text("nothing here", &[String::new()]),
            "nothing here"
        );
    }
}
