//! Key material that public packages ship: test keys compiled into libraries (GnuTLS's
//! self-tests in `libgnutls.so.30`), language test suites, example credentials in SDKs. They
//! are known to everyone, so finding one in an image is no leak by its owner: a match is kept,
//! at info, and says where the key is published.
//!
//! The list is `signatures/published-keys.tsv`, made by `scripts/published-keys.sh` from the
//! packages themselves; it holds fingerprints, never keys. A fingerprint is the SHA-256 of the
//! key's canonical form ([`fingerprint`]): the DER of a PEM block (so a key reads the same in
//! a `.pem` file, a JSON string or a binary's read-only data), else the matched bytes.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use super::x509::pem_der;

/// The list that ships with stowaway.
pub const BUILTIN_PUBLISHED_KEYS: &str = include_str!("../../signatures/published-keys.tsv");

/// Where one published key was seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sighting {
    /// The package manager: `debian`, `pypi`, `npm`.
    pub manager: String,
    /// The package's name.
    pub package: String,
    /// The version downloaded.
    pub version: String,
    /// The file inside the package.
    pub path: String,
}

impl std::fmt::Display for Sighting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} package {} {} ({})",
            self.manager, self.package, self.version, self.path
        )
    }
}

/// Fingerprints of published key material, with where each was seen.
#[derive(Clone, Debug, Default)]
pub struct PublishedKeys {
    by_fingerprint: HashMap<[u8; 32], Vec<Sighting>>,
    /// SHA-256 over every list read, in order: part of the rules digest.
    digest: String,
}

/// The canonical fingerprint of a secret: SHA-256 of the DER when it is a PEM block, else of
/// the bytes as matched (surrounding whitespace trimmed). Also says which it was.
pub fn fingerprint(secret: &[u8]) -> ([u8; 32], &'static str) {
    match pem_der(secret) {
        Some(der) => (Sha256::digest(&der).into(), "der"),
        None => (Sha256::digest(secret.trim_ascii()).into(), "text"),
    }
}

impl PublishedKeys {
    /// The built-in list.
    pub fn builtin() -> PublishedKeys {
        let mut keys = PublishedKeys::default();
        keys.add(BUILTIN_PUBLISHED_KEYS, "signatures/published-keys.tsv")
            .expect("the built-in published-keys list parses (tested)");
        keys
    }

    /// Adds a list from a file (`--published-keys`).
    pub fn add_file(&mut self, path: &Path) -> Result<()> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read published-keys list", path.display()))?;
        self.add(&text, &path.display().to_string())
    }

    /// Adds a list: one key per line, tab-separated `sha256-hex kind manager package version
    /// path`; `#` starts a comment line.
    pub fn add(&mut self, text: &str, source: &str) -> Result<()> {
        for (number, line) in text.lines().enumerate() {
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split('\t').collect();
            let (hash, sighting) = match fields.as_slice() {
                [hash, _kind, manager, package, version, path] => (
                    hash,
                    Sighting {
                        manager: manager.to_string(),
                        package: package.to_string(),
                        version: version.to_string(),
                        path: path.to_string(),
                    },
                ),
                _ => bail!("{source}:{}: expected 6 tab-separated fields", number + 1),
            };
            let mut key = [0u8; 32];
            hex::decode_to_slice(hash, &mut key).with_context(|| {
                format!(
                    "{source}:{}: the first field is not a SHA-256 in hex",
                    number + 1
                )
            })?;
            self.by_fingerprint.entry(key).or_default().push(sighting);
        }
        let mut hasher = Sha256::new();
        hasher.update(self.digest.as_bytes());
        hasher.update(Sha256::digest(text.as_bytes()));
        self.digest = hex::encode(hasher.finalize());
        Ok(())
    }

    /// Where `secret` is published, first sighting first; `None` when it is not listed.
    pub fn lookup(&self, secret: &[u8]) -> Option<&[Sighting]> {
        if self.by_fingerprint.is_empty() {
            return None;
        }
        let (key, _) = fingerprint(secret);
        self.by_fingerprint.get(&key).map(Vec::as_slice)
    }

    /// Distinct fingerprints listed.
    pub fn len(&self) -> usize {
        self.by_fingerprint.len()
    }

    /// No fingerprint listed.
    pub fn is_empty(&self) -> bool {
        self.by_fingerprint.is_empty()
    }

    /// A digest of every list read, for the rules digest (cached results made with another
    /// list are not read back).
    pub fn digest(&self) -> &str {
        &self.digest
    }
}

/// The words a finding carries: the first sighting, and how many other packages ship it.
pub(crate) fn published_in(sightings: &[Sighting]) -> String {
    let mut packages: Vec<&str> = sightings.iter().map(|s| s.package.as_str()).collect();
    packages.sort_unstable();
    packages.dedup();
    match packages.len() {
        0 | 1 => sightings
            .first()
            .map(ToString::to_string)
            .unwrap_or_default(),
        n => format!("{} and {} other packages", sightings[0], n - 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_list_parses_and_is_not_empty() {
        let keys = PublishedKeys::builtin();
        assert!(keys.len() > 10, "{} keys", keys.len());
        assert_eq!(keys.digest().len(), 64);
    }

    #[test]
    fn a_key_is_found_in_any_of_its_forms() {
        let pem =
            "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ+2\n-----END PRIVATE KEY-----\n";
        let (hash, kind) = fingerprint(pem.as_bytes());
        assert_eq!(kind, "der");
        let mut keys = PublishedKeys::default();
        let line = format!(
            "{}\tder\tdebian\tdemo\t1.0\t/usr/share/demo/key.pem\n",
            hex::encode(hash)
        );
        keys.add(&line, "test").unwrap();
        let escaped = pem.replace('\n', "\\n");
        let found = keys.lookup(escaped.as_bytes()).expect("escaped form");
        assert_eq!(
            published_in(found),
            "debian package demo 1.0 (/usr/share/demo/key.pem)"
        );
        assert!(keys.lookup(b"something else").is_none());
    }

    #[test]
    fn malformed_lists_are_one_line_errors() {
        let mut keys = PublishedKeys::default();
        let error = keys.add("abc\tder\n", "list.tsv").unwrap_err();
        assert_eq!(
            error.to_string(),
            "list.tsv:1: expected 6 tab-separated fields"
        );
        let error = keys.add("zz\tder\ta\tb\tc\td\n", "list.tsv").unwrap_err();
        assert!(error.to_string().starts_with("list.tsv:1: the first field"));
    }
}
