//! Decoders: what the regex rules cannot see on the raw bytes of a file.
//!
//! - Kubernetes Secret manifests ([`kubernetes`]): base64 `data:` values decoded and scanned,
//!   credential keys reported by the Secret's `type`;
//! - kubeconfig files ([`kubeconfig`]) and docker/podman credential files ([`docker`]);
//! - PKCS#12 bundles and Java keystores recognised by structure ([`keystore`]);
//! - a certificate stored with its private key ([`tls`]);
//! - nested archives: zip/jar/war/ear, tar, gzip ([`archive`]), whose members go through all
//!   of the above again;
//! - text saved in UTF-16 ([`super::utf16`]): transcoded, then all of the above.
//!
//! Every decoder is skipped cheaply: binary formats by their magic bytes at offset 0, text
//! formats by a marker search before anything is parsed. Whatever a limit stops is reported in
//! [`FileScan::skipped`], never dropped silently. Nothing here may panic on malformed input.

pub mod archive;
pub mod docker;
pub mod keystore;
pub mod kubeconfig;
pub mod kubernetes;
pub mod tls;
pub mod yaml;

use std::ops::Range;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};

use super::engine::{Detector, MarkerHit, Match};
use super::severity::Severity;
use super::utf16::{self, Utf16};
use crate::provenance::maven::MavenArtifact;

/// How far the decoders go into one top-level file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Archives nested deeper than this (an archive in an archive in an archive) are not
    /// opened.
    pub max_archive_depth: usize,
    /// Bytes decompressed out of archives.
    pub max_decompressed_bytes: u64,
    /// Archive members opened.
    pub max_members: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_archive_depth: 3,
            max_decompressed_bytes: 64 << 20,
            max_members: 10_000,
        }
    }
}
/// Decoded values (a base64 Secret value) decoded again inside, at most this deep.
pub const MAX_DECODE_DEPTH: usize = 3;

/// Something a decoder did not look at, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// Why, e.g. `archive nesting deeper than 3`.
    pub reason: String,
    /// What: the file and the archive members leading to it (`a.jar!/lib/b.jar`).
    pub what: String,
    /// Only an irregular entry of a nested tar (scanned as runtimes read it), not content left
    /// unscanned.
    pub irregular: bool,
}

/// A match in a file, possibly inside something the decoders opened.
#[derive(Clone, Debug, PartialEq)]
pub struct FileMatch {
    /// The match; `start`/`end` are offsets in the file's own bytes (for a decoded value: the
    /// range of its encoded form), so line numbers point where a person would look. For a
    /// match inside an archive member they point into that member's stored bytes (exactly for
    /// a stored member, scaled for a compressed one).
    pub base: Match,
    /// Members of nested archives leading to the match, outermost first; empty for the file.
    pub archive_path: Vec<String>,
    /// Where the secret belongs when the decoder knows better than the rule (the `type` of the
    /// Kubernetes Secret it came from).
    pub kubernetes_secret_type: Option<String>,
    /// The Maven artifact that the archive directly holding the match says it is (its
    /// `META-INF/maven/…/pom.properties`); `None` for a match outside archives or in an archive
    /// without one recording of its own.
    pub archive_package: Option<Arc<MavenArtifact>>,
}

/// The result of scanning a whole file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FileScan {
    /// Every match, in the file itself and in what the decoders opened inside it.
    pub matches: Vec<FileMatch>,
    /// What the decoders left unopened (limits, unreadable members); becomes the report's
    /// `skipped` list.
    pub skipped: Vec<Skipped>,
}

/// Where the bytes being scanned sit.
#[derive(Clone, Debug)]
pub(crate) struct Level {
    /// The path for messages: the file, then `!/member` per archive level.
    pub what: String,
    /// The innermost path: the file's, or the archive member's name inside its archive; what
    /// path-scoped rules see.
    pub path: String,
    pub archive_depth: usize,
    pub decode_depth: usize,
}

impl Level {
    fn member(&self, name: &str) -> Level {
        Level {
            what: format!("{}!/{name}", self.what),
            path: name.to_string(),
            archive_depth: self.archive_depth + 1,
            decode_depth: self.decode_depth,
        }
    }

    fn decoded(&self) -> Level {
        Level {
            what: self.what.clone(),
            path: self.path.clone(),
            archive_depth: self.archive_depth,
            decode_depth: self.decode_depth + 1,
        }
    }
}

/// One top-level file's scan: the detector, the limits left, what was skipped.
pub(crate) struct Scanner<'d> {
    pub detector: &'d Detector,
    pub limits: Limits,
    /// Decompressed bytes still allowed.
    pub budget: u64,
    /// Archive members still allowed.
    pub members_left: usize,
    pub skipped: Vec<Skipped>,
}

/// Literals that make a text file worth parsing, exact case. The detector's keyword pass
/// reports them ([`Detector::scan_marked`]), so finding them costs no extra pass over the file.
pub(crate) const MARKERS: &[&str] = &["Secret", "users", "\"auth", "-----BEGIN CERTIFICATE-----"];
const MARKER_SECRET: usize = 0;
const MARKER_USERS: usize = 1;
const MARKER_AUTH: usize = 2;
const MARKER_CERTIFICATE: usize = 3;

impl<'d> Scanner<'d> {
    pub fn new(detector: &'d Detector, limits: Limits) -> Self {
        Scanner {
            detector,
            limits,
            budget: limits.max_decompressed_bytes,
            members_left: limits.max_members,
            skipped: Vec::new(),
        }
    }

    /// Records something not scanned (in whole or in part), once: the same reason for the same
    /// item right after itself (every value of one file past a decode limit) is one skip.
    pub fn skip(&mut self, reason: impl Into<String>, what: impl Into<String>) {
        let skipped = Skipped {
            reason: reason.into(),
            what: what.into(),
            irregular: false,
        };
        if self.skipped.last() != Some(&skipped) {
            self.skipped.push(skipped);
        }
    }

    /// Records an entry of a nested tar that was read as runtimes read it although its header
    /// disagrees: reported with the skips, but its content was scanned.
    pub fn irregular(&mut self, reason: impl Into<String>, what: impl Into<String>) {
        self.skipped.push(Skipped {
            reason: reason.into(),
            what: what.into(),
            irregular: true,
        });
    }

    /// Scans `content`: the regex rules, then every decoder that recognises it. Offsets in the
    /// result are offsets in `content`.
    pub fn scan(&mut self, content: &[u8], level: &Level) -> Vec<FileMatch> {
        if let Some(kind) = archive::sniff(content) {
            if level.archive_depth >= self.limits.max_archive_depth {
                self.skip(
                    format!(
                        "archive nested deeper than {} levels (scanned as plain bytes)",
                        self.limits.max_archive_depth
                    ),
                    level.what.clone(),
                );
            } else if let Some(found) = archive::scan(self, kind, content, level) {
                return found;
            }
        }
        if let Some(encoding) = utf16::sniff(content) {
            return self.scan_utf16(content, encoding, level);
        }
        let (matches, marker_hits) = self.detector.scan_marked(content);
        let mut found: Vec<FileMatch> = matches.into_iter().map(plain).collect();
        // A decoded value is not a file: path-scoped rules read files and archive members only.
        if level.decode_depth == 0 {
            if let Some(reason) = self
                .detector
                .path_scoped_unread(&level.path, content.len() as u64)
            {
                self.skip(reason, level.what.clone());
            }
            let by_path = self.detector.scan_path_scoped(&level.path, content);
            found.extend(by_path.into_iter().map(plain));
        }
        keystore::detect(self, content, &mut found);
        let markers = text_markers(content, &marker_hits);
        if markers.any_text()
            && let Ok(text) = std::str::from_utf8(content)
        {
            self.decode_documents(text, markers, level, &mut found);
        }
        if markers.certificate {
            tls::pair_keys(self.detector, content, &mut found);
        }
        found.sort_by_key(|m| (m.base.start, m.base.end, m.base.rule));
        found
    }

    /// Reads `text` as YAML (JSON included) documents and runs the structural decoders its
    /// markers call for. Text too large for the parser's memory (see [`yaml::too_large`]) is
    /// left to the regex rules, and the report says so.
    fn decode_documents(
        &mut self,
        text: &str,
        markers: TextMarkers,
        level: &Level,
        found: &mut Vec<FileMatch>,
    ) {
        if let Some(reason) = yaml::too_large(text) {
            self.skip(reason, level.what.clone());
            return;
        }
        let (documents, cut) = yaml::parse_documents_bounded(text);
        if cut {
            self.skip(
                format!(
                    "YAML node limit ({} per file) reached: the rest was scanned as text, \
                     not decoded",
                    yaml::MAX_NODES
                ),
                level.what.clone(),
            );
        }
        if !documents.is_empty() {
            if markers.secret {
                kubernetes::decode(self, text, &documents, level, found);
            }
            if markers.users {
                kubeconfig::decode(self, text, &documents, level, found);
            }
            if markers.auth {
                docker::decode(self, text, &documents, level, found);
            }
        }
    }

    /// Scans a UTF-16 text file as the UTF-8 text it holds. Offsets are mapped back to the
    /// file's bytes (so a finding's offset, length and line are the file's), and each match
    /// says which encoding it was read in.
    fn scan_utf16(&mut self, content: &[u8], encoding: Utf16, level: &Level) -> Vec<FileMatch> {
        let text = encoding.decode(content);
        // No recursion: `sniff` let no NUL through among the first characters, so the UTF-8
        // text starts with no zero byte and no byte order mark, and is not taken for UTF-16.
        let mut found = self.scan(text.as_bytes(), level);
        let mut offsets: Vec<usize> = found
            .iter()
            .flat_map(|m| [m.base.start, m.base.end])
            .collect();
        encoding.map_offsets(content, &mut offsets);
        for (m, span) in found.iter_mut().zip(offsets.chunks_exact(2)) {
            m.base.start = span[0];
            m.base.end = span[1].max(span[0]);
            add_details(
                &mut m.base.details,
                &[("encoding".to_string(), encoding.name().to_string())],
            );
        }
        found
    }

    /// Scans a decoded value (deeper decoders included while the decode depth allows).
    pub fn scan_decoded(&mut self, decoded: &[u8], level: &Level) -> Vec<FileMatch> {
        if level.decode_depth >= MAX_DECODE_DEPTH {
            self.skip(
                format!(
                    "value encoded more than {MAX_DECODE_DEPTH} times over: matched by the rules, \
                     not decoded further"
                ),
                level.what.clone(),
            );
            return self.detector.scan(decoded).into_iter().map(plain).collect();
        }
        self.scan(decoded, &level.decoded())
    }
}

/// Which text decoders a file's markers call for.
#[derive(Clone, Copy, Debug, Default)]
struct TextMarkers {
    secret: bool,
    users: bool,
    auth: bool,
    certificate: bool,
}

impl TextMarkers {
    fn any_text(&self) -> bool {
        self.secret || self.users || self.auth
    }
}

fn text_markers(content: &[u8], hits: &[MarkerHit]) -> TextMarkers {
    let mut markers = TextMarkers::default();
    for hit in hits {
        match hit.marker {
            // `kind: Secret`, `"kind": "Secret"`: "kind" shortly before.
            MARKER_SECRET => {
                let before = &content[hit.start.saturating_sub(16)..hit.start];
                markers.secret |= memchr::memmem::find(before, b"kind").is_some();
            }
            MARKER_USERS => markers.users = true,
            MARKER_AUTH => markers.auth = true,
            MARKER_CERTIFICATE => markers.certificate = true,
            _ => {}
        }
    }
    if markers.users {
        markers.users = memchr::memmem::find(content, b"clusters").is_some();
    }
    markers
}

/// A match found on the bytes themselves.
pub(crate) fn plain(base: Match) -> FileMatch {
    FileMatch {
        base,
        archive_path: Vec::new(),
        kubernetes_secret_type: None,
        archive_package: None,
    }
}

/// How offsets inside some derived bytes relate to the outer bytes they came from.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Mapping {
    /// The derived bytes are a copy of the range (a stored archive member, plain text).
    Exact,
    /// The derived bytes of this length were decoded or decompressed from the range: offsets
    /// are scaled, which keeps distinct matches apart and in order.
    Scaled { inner_len: usize },
}

/// Moves a match found in derived bytes into `outer` (a non-empty range of the outer bytes).
pub(crate) fn map_into(found: &mut FileMatch, outer: &Range<usize>, mapping: Mapping) {
    let len = outer.end.saturating_sub(outer.start);
    if len == 0 {
        found.base.start = outer.start;
        found.base.end = outer.start;
        return;
    }
    let scale = |offset: usize| -> usize {
        match mapping {
            Mapping::Exact => offset,
            Mapping::Scaled { inner_len } if inner_len > 0 => {
                ((offset as u128 * len as u128) / inner_len as u128) as usize
            }
            Mapping::Scaled { .. } => 0,
        }
    };
    let start = scale(found.base.start).min(len - 1);
    let end = scale(found.base.end).clamp(start + 1, len);
    found.base.start = outer.start + start;
    found.base.end = outer.start + end;
}

/// Adds `new` unless a match already covers part of its range: then the facts of `new` are
/// added to that match instead (a regex rule that found a token keeps it, and learns which
/// kubeconfig user it belongs to).
pub(crate) fn push_or_enrich(found: &mut Vec<FileMatch>, new: FileMatch) {
    let overlapping = found.iter_mut().find(|m| {
        m.archive_path == new.archive_path
            && m.base.start < new.base.end.max(new.base.start + 1)
            && new.base.start < m.base.end.max(m.base.start + 1)
    });
    match overlapping {
        Some(existing) => {
            add_details(&mut existing.base.details, &new.base.details);
            if existing.kubernetes_secret_type.is_none() {
                existing.kubernetes_secret_type = new.kubernetes_secret_type;
            }
        }
        None => found.push(new),
    }
}

/// Appends the details whose keys `to` does not have yet.
pub(crate) fn add_details(to: &mut Vec<(String, String)>, from: &[(String, String)]) {
    for (key, value) in from {
        if !to.iter().any(|(k, _)| k == key) {
            to.push((key.clone(), value.clone()));
        }
    }
}

/// Removes the matches on the bytes themselves that overlap `span`, a value a decoder reads:
/// what a regex saw there (the encoded text, or the value out of its context) is replaced by
/// what the decoder finds in the value. Returns the highest severity removed, which the
/// replacing findings keep at least.
pub(crate) fn drop_inside(found: &mut Vec<FileMatch>, span: &Range<usize>) -> Option<Severity> {
    let mut highest = None;
    found.retain(|m| {
        let replaced =
            m.archive_path.is_empty() && m.base.start < span.end && span.start < m.base.end;
        if replaced {
            highest = highest.max(Some(m.base.severity));
        }
        !replaced
    });
    highest
}

/// Raises a replacing finding to the severity of what it replaced.
pub(crate) fn at_least(m: &mut Match, replaced: Option<Severity>) {
    if let Some(severity) = replaced {
        m.severity = m.severity.max(severity);
    }
}

/// A decoder's own match.
pub(crate) fn decoder_match(
    detector: &Detector,
    rule: usize,
    span: Range<usize>,
    secret: Vec<u8>,
    severity: Option<Severity>,
    details: Vec<(String, String)>,
) -> Match {
    Match {
        rule,
        start: span.start,
        end: span.end.max(span.start),
        secret,
        severity: severity.unwrap_or(detector.rules()[rule].severity),
        details,
    }
}

/// Decodes base64 as Kubernetes and docker write it (standard alphabet, padded), tolerating
/// line breaks, missing padding and the URL-safe alphabet.
pub(crate) fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let compact = compact.trim_end_matches('=');
    if compact.is_empty() {
        return None;
    }
    STANDARD_NO_PAD
        .decode(compact)
        .or_else(|_| URL_SAFE_NO_PAD.decode(compact))
        .ok()
}

/// Text a person can read: UTF-8 without control characters other than whitespace.
pub(crate) fn printable(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok_and(|text| {
        text.chars()
            .all(|c| !c.is_control() || c == '\n' || c == '\r' || c == '\t')
    })
}

/// Does a key or variable name say its value is a credential?
pub(crate) fn secret_looking_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    if lower.contains("public") || lower.ends_with(".pub") || lower.ends_with(".crt") {
        return false;
    }
    const WORDS: &[&str] = &[
        "password",
        "passwd",
        "passphrase",
        "pwd",
        "secret",
        "token",
        "apikey",
        "api-key",
        "api_key",
        "credential",
        "private",
        "auth",
    ];
    WORDS.iter().any(|word| lower.contains(word))
        || lower == "key"
        || lower.ends_with("key")
        || lower.ends_with("key.pem")
        || lower.contains("key_")
        || lower.contains("key-")
}

/// A value under a secret-looking name that is worth reporting: no placeholder, some entropy.
pub(crate) fn credible_value(value: &[u8]) -> bool {
    use super::validate::{is_placeholder, shannon_entropy};
    let trimmed = value.trim_ascii();
    trimmed.len() >= 6 && !is_placeholder(trimmed) && shannon_entropy(trimmed) >= 2.5
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(start: usize, end: usize) -> FileMatch {
        plain(Match {
            rule: 0,
            start,
            end,
            secret: Vec::new(),
            severity: Severity::High,
            details: Vec::new(),
        })
    }

    #[test]
    fn mapping_stays_inside_the_outer_range() {
        let mut m = found(30, 60);
        map_into(&mut m, &(100..140), Mapping::Scaled { inner_len: 30 });
        assert_eq!((m.base.start, m.base.end), (139, 140));
        let mut m = found(3, 9);
        map_into(&mut m, &(100..140), Mapping::Scaled { inner_len: 30 });
        assert_eq!((m.base.start, m.base.end), (104, 112));
        let mut m = found(3, 9);
        map_into(&mut m, &(10..12), Mapping::Exact);
        assert_eq!((m.base.start, m.base.end), (11, 12));
    }

    #[test]
    fn names_and_values() {
        for name in [
            "password",
            "DB_PASSWORD",
            "api-token",
            "tls.key",
            "client_secret",
        ] {
            assert!(secret_looking_name(name), "{name}");
        }
        for name in ["username", "host", "public-key", "ca.crt", "namespace"] {
            assert!(!secret_looking_name(name), "{name}");
        }
        assert!(credible_value(b"Zq3LmN8pR2sT"));
        assert!(!credible_value(b"changeme"));
        assert!(!credible_value(b"abc"));
        assert_eq!(decode_base64("cGFz\ncw=="), Some(b"pass".to_vec()));
        assert_eq!(decode_base64("not base64!"), None);
    }
}
