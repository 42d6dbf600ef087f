//! A match tied to where it was found, as it travels from the detector (or the layer cache) to
//! report assembly: before statuses, redaction and de-duplication.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::detect::Severity;
use crate::provenance::HashAlgorithm;
use crate::provenance::maven::MavenArtifact;
use crate::report::field::ConfigField;
use crate::report::redact::{fingerprint, redact};

/// A secret as held between matching and reporting. Results read back from the layer cache
/// are sealed: the cache never stores a secret in the clear.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum SecretText {
    Raw(String),
    Sealed {
        redacted: String,
        fingerprint: String,
        /// The secret's [`identity`], so a cached match still groups with the same value
        /// found elsewhere.
        #[serde(default)]
        identity: String,
    },
}

/// Identifies a secret's value whatever rule matched it (a truncated SHA-256), so the same
/// value in a file, a history step and the config is reported as one finding.
pub(super) fn identity(secret: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(secret.trim().as_bytes())[..16])
}

impl SecretText {
    /// Identifies the secret for de-duplication without needing it in the clear.
    pub(super) fn key(&self) -> String {
        match self {
            SecretText::Raw(raw) => raw.clone(),
            SecretText::Sealed { fingerprint, .. } => fingerprint.clone(),
        }
    }

    /// The value's [`identity`], for grouping one secret's places; a sealed secret from an
    /// older entry without one is known by its fingerprint.
    pub(super) fn identity(&self) -> String {
        match self {
            SecretText::Raw(raw) => identity(raw),
            SecretText::Sealed {
                identity,
                fingerprint,
                ..
            } if identity.is_empty() => fingerprint.clone(),
            SecretText::Sealed { identity, .. } => identity.clone(),
        }
    }

    /// The form the layer cache stores: redacted, with the fingerprint `rule_id` gives it.
    pub(super) fn seal(&self, rule_id: &str) -> SecretText {
        match self {
            SecretText::Raw(raw) => SecretText::Sealed {
                redacted: redact(raw),
                fingerprint: fingerprint(rule_id, raw),
                identity: identity(raw),
            },
            sealed => sealed.clone(),
        }
    }
}

/// A match tied to where it was found, before statuses and redaction.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct RawFinding {
    /// Index of the rule in the detector's rule list.
    pub rule: usize,
    pub secret: SecretText,
    pub severity: Severity,
    pub details: Vec<(String, String)>,
    pub layer: Option<usize>,
    pub path: Option<Arc<str>>,
    pub history_index: Option<usize>,
    pub field: Option<ConfigField>,
    /// Members of nested archives leading to the secret.
    pub archive_path: Vec<String>,
    /// The Kubernetes Secret type a decoder learned (overrides the rule's).
    pub kubernetes_secret_type: Option<String>,
    /// Byte offset of the secret in its file or text item (for overlap checks).
    pub offset: u64,
    pub length: u64,
    pub line: u64,
    pub column: u64,
    /// Digests of the whole file holding the match, for checking it against a package
    /// database (see `scan::packages`); `None` for config and history text and for files
    /// handed over in more than one chunk.
    #[serde(default)]
    pub digests: Option<Arc<FileDigests>>,
    /// The Maven artifact of the archive directly holding the match (a jar member), for
    /// provenance when no package database owns the file.
    #[serde(default)]
    pub archive_package: Option<Arc<MavenArtifact>>,
    /// The line holding the match, masked where it was made (see `scan::context`); `None`
    /// when the match has no line of its own.
    #[serde(default)]
    pub context: Option<String>,
}

/// The digests of one file's content in every algorithm package databases record: dpkg MD5,
/// apk SHA-1, pip SHA-256, and each rpm `FILEDIGESTALGO` (MD5, SHA-1, SHA-224, SHA-256,
/// SHA-384, SHA-512). Computed only for files with matches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct FileDigests(Vec<(HashAlgorithm, String)>);

impl FileDigests {
    /// The algorithms computed.
    const ALGORITHMS: [HashAlgorithm; 6] = [
        HashAlgorithm::Md5,
        HashAlgorithm::Sha1,
        HashAlgorithm::Sha224,
        HashAlgorithm::Sha256,
        HashAlgorithm::Sha384,
        HashAlgorithm::Sha512,
    ];

    /// The digests of `content`.
    pub(super) fn of(content: &[u8]) -> FileDigests {
        let mut hasher = FileHasher::new();
        hasher.update(content);
        hasher.finish()
    }

    /// The digest in `algorithm`, when it was computed.
    pub(super) fn get(&self, algorithm: HashAlgorithm) -> Option<Vec<u8>> {
        let (_, hex) = self.0.iter().find(|(a, _)| *a == algorithm)?;
        hex::decode(hex).ok()
    }
}

impl RawFinding {
    /// Whether `self` and `other` are at the same place and their matches share a byte (an
    /// empty match counts as one byte wide).
    pub(super) fn overlaps(&self, other: &RawFinding) -> bool {
        self.layer == other.layer
            && self.path == other.path
            && self.history_index == other.history_index
            && self.field == other.field
            && self.archive_path == other.archive_path
            && self.offset < other.offset + other.length.max(1)
            && other.offset < self.offset + self.length.max(1)
    }
}

/// [`FileDigests`] of content that arrives in pieces.
pub(super) struct FileHasher(Vec<crate::provenance::ContentHasher>);

impl FileHasher {
    pub(super) fn new() -> FileHasher {
        FileHasher(FileDigests::ALGORITHMS.iter().map(|a| a.hasher()).collect())
    }

    /// Adds the next piece, in cache-sized steps so each byte is read from memory once.
    pub(super) fn update(&mut self, content: &[u8]) {
        for piece in content.chunks(1 << 16) {
            for hasher in &mut self.0 {
                hasher.update(piece);
            }
        }
    }

    pub(super) fn finish(self) -> FileDigests {
        FileDigests(
            FileDigests::ALGORITHMS
                .iter()
                .zip(self.0)
                .map(|(algorithm, hasher)| (*algorithm, hex::encode(hasher.finish())))
                .collect(),
        )
    }
}

/// 1-based line and column of `offset` in `text`.
pub(super) fn line_and_column(text: &[u8], offset: usize, lines_before: u64) -> (u64, u64) {
    let before = &text[..offset];
    let line = lines_before + memchr::memchr_iter(b'\n', before).count() as u64 + 1;
    let line_start = memchr::memrchr(b'\n', before).map_or(0, |p| p + 1);
    (line, (offset - line_start) as u64 + 1)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A raw finding of rule 0 with `secret`, in file `path` of `layer` at `offset`.
    pub fn in_file(layer: usize, path: &str, offset: u64, secret: &str) -> RawFinding {
        RawFinding {
            rule: 0,
            secret: SecretText::Raw(secret.to_string()),
            severity: Severity::High,
            details: Vec::new(),
            layer: Some(layer),
            path: Some(Arc::from(path)),
            history_index: None,
            field: None,
            archive_path: Vec::new(),
            kubernetes_secret_type: None,
            offset,
            length: secret.len() as u64,
            line: 1,
            column: offset + 1,
            digests: None,
            archive_package: None,
            context: None,
        }
    }

    /// A raw finding of rule 0 with `secret`, in `field` of history step `history`.
    pub fn in_history(history: usize, field: ConfigField, offset: u64, secret: &str) -> RawFinding {
        RawFinding {
            layer: None,
            path: None,
            history_index: Some(history),
            field: Some(field),
            ..in_file(0, "", offset, secret)
        }
    }

    #[test]
    fn sealing_hides_the_secret_and_keeps_its_identity() {
        let raw = SecretText::Raw("AKIAQX3ZEXAMPLEKEY12".into());
        let sealed = raw.seal("aws-access-key-id");
        let SecretText::Sealed {
            redacted,
            fingerprint: sealed_fingerprint,
            ..
        } = &sealed
        else {
            panic!("not sealed: {sealed:?}");
        };
        assert!(!redacted.contains("QX3ZEXAMPLEKEY12"), "{redacted}");
        assert_eq!(
            sealed_fingerprint,
            &fingerprint("aws-access-key-id", "AKIAQX3ZEXAMPLEKEY12")
        );
        // Sealing twice changes nothing; a sealed secret is known by its fingerprint.
        assert_eq!(sealed.seal("another-rule"), sealed);
        assert_eq!(sealed.key(), *sealed_fingerprint);
        assert_eq!(raw.key(), "AKIAQX3ZEXAMPLEKEY12");
    }

    #[test]
    fn overlap_needs_the_same_place_and_a_shared_byte() {
        let a = in_file(0, "etc/app.env", 10, "0123456789");
        assert!(a.overlaps(&in_file(0, "etc/app.env", 19, "x")));
        assert!(!a.overlaps(&in_file(0, "etc/app.env", 20, "x")));
        assert!(!a.overlaps(&in_file(1, "etc/app.env", 10, "0123456789")));
        assert!(!a.overlaps(&in_file(0, "etc/other.env", 10, "0123456789")));
        let mut nested = in_file(0, "etc/app.env", 10, "0123456789");
        nested.archive_path = vec!["inner.zip".into()];
        assert!(!a.overlaps(&nested));
        // An empty match still occupies its offset.
        let empty = in_file(0, "etc/app.env", 12, "");
        assert!(a.overlaps(&empty) && empty.overlaps(&a));
    }

    #[test]
    fn lines_and_columns_count_from_one() {
        let text = b"first\nsecond line\nthird";
        assert_eq!(line_and_column(text, 0, 0), (1, 1));
        assert_eq!(line_and_column(text, 13, 0), (2, 8));
        assert_eq!(line_and_column(text, 18, 4), (7, 1));
    }
}
