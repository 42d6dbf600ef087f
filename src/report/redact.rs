//! Redaction and fingerprints. A redacted secret keeps just enough to recognise the kind of
//! credential (a 4-character prefix such as `AKIA` or `ghp_`) and never enough to use it.

use sha2::{Digest, Sha256};

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
/// printed next to findings).
pub fn redact_in_text(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for secret in secrets {
        if !secret.is_empty() && out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), &redact(secret));
        }
    }
    out
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
}
