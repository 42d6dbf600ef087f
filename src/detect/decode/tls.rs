//! A TLS key pair: a PEM private key stored in the same file as a certificate. It is reported
//! once, as the pair, in place of the key's own finding and of the info-level certificate
//! finding (a certificate alone is public and stays info).

use std::ops::Range;

use memchr::memmem;

use super::{FileMatch, add_details, plain};
use crate::detect::decoder::Decoder;
use crate::detect::engine::{Detector, Match};
use crate::detect::severity::Severity;
use crate::detect::validate::pem_body;

const BEGIN_CERTIFICATE: &[u8] = b"-----BEGIN CERTIFICATE-----";
const END_CERTIFICATE: &[u8] = b"-----END CERTIFICATE-----";
/// PEM labels of private keys a TLS server uses.
const KEY_LABELS: &[&str] = &[
    "PRIVATE KEY",
    "RSA PRIVATE KEY",
    "EC PRIVATE KEY",
    "DSA PRIVATE KEY",
    "ENCRYPTED PRIVATE KEY",
];

/// The ranges of complete PEM blocks with `label`.
fn blocks(content: &[u8], begin: &[u8], end: &[u8]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(found) = memmem::find(&content[at..], begin) {
        let start = at + found;
        let body = start + begin.len();
        match memmem::find(&content[body..], end) {
            Some(stop) => {
                let stop = body + stop + end.len();
                out.push(start..stop);
                at = stop;
            }
            None => break,
        }
    }
    out
}

/// Replaces a private key's finding by a `tls-key-pair` one when the file also holds a
/// certificate, and drops the info-level findings on the certificates.
pub(crate) fn pair_keys(detector: &Detector, content: &[u8], found: &mut Vec<FileMatch>) {
    let Some(rule) = detector.decoder_rule(Decoder::TlsKeyPair) else {
        return;
    };
    let certificates = blocks(content, BEGIN_CERTIFICATE, END_CERTIFICATE);
    if certificates.is_empty() {
        return;
    }
    let mut keys: Vec<(Range<usize>, &str)> = Vec::new();
    for label in KEY_LABELS {
        let begin = format!("-----BEGIN {label}-----");
        let end = format!("-----END {label}-----");
        for block in blocks(content, begin.as_bytes(), end.as_bytes()) {
            let valid = std::str::from_utf8(&content[block.clone()])
                .ok()
                .and_then(pem_body)
                .is_some_and(|der| der.first() == Some(&0x30) && der.len() >= 32);
            if valid {
                keys.push((block, label));
            }
        }
    }
    if keys.is_empty() {
        return;
    }
    let inside = |m: &FileMatch, block: &Range<usize>| {
        m.archive_path.is_empty() && m.base.start < block.end && block.start < m.base.end
    };
    // The certificates' own findings go: the pair says more.
    found.retain(|m| {
        let on_certificate = certificates.iter().any(|c| inside(m, c));
        !(on_certificate
            && (m.base.severity == Severity::Info || m.base.secret.starts_with(BEGIN_CERTIFICATE)))
    });
    for (block, label) in keys {
        let text = &content[block.clone()];
        let encrypted = label == "ENCRYPTED PRIVATE KEY"
            || memmem::find(text, b"Proc-Type: 4,ENCRYPTED").is_some();
        let mut severity = detector.rules()[rule].severity;
        if encrypted {
            severity = severity.min(Severity::Medium);
        }
        let mut details = vec![
            ("key_type".to_string(), label.to_string()),
            ("certificates".to_string(), certificates.len().to_string()),
            (
                "encrypted".to_string(),
                if encrypted { "yes" } else { "no" }.to_string(),
            ),
        ];
        // The key's own finding (a PEM rule's) is folded in: its verdict on the key stands.
        let mut kind = None;
        let mut index = 0;
        while index < found.len() {
            if inside(&found[index], &block) && found[index].base.rule != rule {
                let old = found.remove(index);
                severity = old.base.severity;
                add_details(&mut details, &old.base.details);
                kind = kind.or(old.kubernetes_secret_type);
            } else {
                index += 1;
            }
        }
        let mut pair = plain(Match {
            rule,
            start: block.start,
            end: block.end,
            secret: text.to_vec(),
            severity,
            details,
        });
        pair.kubernetes_secret_type = kind.or(Some("kubernetes.io/tls".to_string()));
        found.push(pair);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_found_in_order() {
        let text = b"x -----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nBB";
        let found = blocks(text, BEGIN_CERTIFICATE, END_CERTIFICATE);
        assert_eq!(found, vec![2..60]);
    }
}
