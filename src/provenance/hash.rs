//! Recorded file hashes and the hashing that checks content against them. Each ecosystem
//! records its own algorithm (dpkg MD5, apk SHA-1, rpm and pip usually SHA-256), so the
//! algorithm travels with the value.

use md5::Md5;
use serde::{Deserialize, Serialize};
use sha1::Sha1;
use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};

/// A hash algorithm a package database records per file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HashAlgorithm {
    /// MD5: dpkg's `md5sums` and `Conffiles`, rpm's default when it names no algorithm.
    Md5,
    /// SHA-1: apk's `Z:Q1…` checksums.
    Sha1,
    /// SHA-224 (rpm `FILEDIGESTALGO` 11).
    Sha224,
    /// SHA-256: pip `RECORD`, rpm `FILEDIGESTALGO` 8.
    Sha256,
    /// SHA-384 (rpm `FILEDIGESTALGO` 9).
    Sha384,
    /// SHA-512 (rpm `FILEDIGESTALGO` 10).
    Sha512,
}

impl HashAlgorithm {
    /// The algorithm's name as reports show it (`md5`, `sha256`…).
    pub fn as_str(self) -> &'static str {
        match self {
            HashAlgorithm::Md5 => "md5",
            HashAlgorithm::Sha1 => "sha1",
            HashAlgorithm::Sha224 => "sha224",
            HashAlgorithm::Sha256 => "sha256",
            HashAlgorithm::Sha384 => "sha384",
            HashAlgorithm::Sha512 => "sha512",
        }
    }

    /// Length of this algorithm's digest in bytes, used to reject recorded values of the wrong
    /// size instead of reporting every file as modified.
    pub fn digest_len(self) -> usize {
        match self {
            HashAlgorithm::Md5 => 16,
            HashAlgorithm::Sha1 => 20,
            HashAlgorithm::Sha224 => 28,
            HashAlgorithm::Sha256 => 32,
            HashAlgorithm::Sha384 => 48,
            HashAlgorithm::Sha512 => 64,
        }
    }

    /// A hasher to feed content piece by piece (a file the walker hands over in chunks).
    pub fn hasher(self) -> ContentHasher {
        ContentHasher(match self {
            HashAlgorithm::Md5 => Running::Md5(Md5::new()),
            HashAlgorithm::Sha1 => Running::Sha1(Sha1::new()),
            HashAlgorithm::Sha224 => Running::Sha224(Sha224::new()),
            HashAlgorithm::Sha256 => Running::Sha256(Sha256::new()),
            HashAlgorithm::Sha384 => Running::Sha384(Sha384::new()),
            HashAlgorithm::Sha512 => Running::Sha512(Sha512::new()),
        })
    }

    /// The digest of `content` with this algorithm.
    pub fn digest(self, content: &[u8]) -> Vec<u8> {
        let mut hasher = self.hasher();
        hasher.update(content);
        hasher.finish()
    }
}

/// A hash as a package database recorded it: the algorithm and the raw digest bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RecordedHash {
    /// The algorithm the database used for this file.
    pub algorithm: HashAlgorithm,
    /// The digest bytes, of the length the algorithm gives (hex in JSON).
    #[serde(serialize_with = "serialize_hex")]
    pub digest: Box<[u8]>,
}

impl RecordedHash {
    /// A recorded hash from raw digest bytes; `None` when the length does not fit the algorithm.
    pub fn new(algorithm: HashAlgorithm, digest: Vec<u8>) -> Option<RecordedHash> {
        (digest.len() == algorithm.digest_len()).then(|| RecordedHash {
            algorithm,
            digest: digest.into_boxed_slice(),
        })
    }

    /// A recorded hash from hex text (dpkg's md5sums, rpm's FILEDIGESTS).
    pub fn from_hex(algorithm: HashAlgorithm, text: &str) -> Option<RecordedHash> {
        RecordedHash::new(algorithm, hex::decode(text.trim()).ok()?)
    }

    /// Whether `content` hashes to this value.
    pub fn matches(&self, content: &[u8]) -> bool {
        *self.algorithm.digest(content) == *self.digest
    }

    /// The digest as lowercase hex, as dpkg and rpm write it.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.digest)
    }
}

fn serialize_hex<S: serde::Serializer>(digest: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&hex::encode(digest))
}

/// An incremental hash of one file's content, for content that arrives in pieces.
pub struct ContentHasher(Running);

enum Running {
    Md5(Md5),
    Sha1(Sha1),
    Sha224(Sha224),
    Sha256(Sha256),
    Sha384(Sha384),
    Sha512(Sha512),
}

impl ContentHasher {
    /// Adds the next piece of the file's content.
    pub fn update(&mut self, bytes: &[u8]) {
        match &mut self.0 {
            Running::Md5(h) => h.update(bytes),
            Running::Sha1(h) => h.update(bytes),
            Running::Sha224(h) => h.update(bytes),
            Running::Sha256(h) => h.update(bytes),
            Running::Sha384(h) => h.update(bytes),
            Running::Sha512(h) => h.update(bytes),
        }
    }

    /// The digest of everything added.
    pub fn finish(self) -> Vec<u8> {
        match self.0 {
            Running::Md5(h) => h.finalize().to_vec(),
            Running::Sha1(h) => h.finalize().to_vec(),
            Running::Sha224(h) => h.finalize().to_vec(),
            Running::Sha256(h) => h.finalize().to_vec(),
            Running::Sha384(h) => h.finalize().to_vec(),
            Running::Sha512(h) => h.finalize().to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        // RFC 1321 and FIPS 180 test vectors for "abc".
        let md5 = RecordedHash::from_hex(HashAlgorithm::Md5, "900150983cd24fb0d6963f7d28e17f72");
        assert!(md5.unwrap().matches(b"abc"));
        let sha1 = RecordedHash::from_hex(
            HashAlgorithm::Sha1,
            "a9993e364706816aba3e25717850c26c9cd0d89d",
        );
        assert!(sha1.unwrap().matches(b"abc"));
        let sha256 = RecordedHash::from_hex(
            HashAlgorithm::Sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        )
        .unwrap();
        assert!(sha256.matches(b"abc"));
        assert!(!sha256.matches(b"abd"));
    }

    #[test]
    fn wrong_length_or_bad_hex_is_refused() {
        assert!(RecordedHash::from_hex(HashAlgorithm::Md5, "abcd").is_none());
        assert!(RecordedHash::from_hex(HashAlgorithm::Sha1, "zz").is_none());
        assert!(RecordedHash::new(HashAlgorithm::Sha256, vec![0; 31]).is_none());
    }

    #[test]
    fn algorithm_names_are_the_serialized_names() {
        use HashAlgorithm::*;
        for algorithm in [Md5, Sha1, Sha224, Sha256, Sha384, Sha512] {
            let json = serde_json::to_string(&algorithm).unwrap();
            assert_eq!(json, format!("\"{}\"", algorithm.as_str()));
            assert_eq!(algorithm.digest(b"").len(), algorithm.digest_len());
        }
    }

    #[test]
    fn chunked_hashing_equals_whole() {
        let content = b"hello, provenance";
        let mut hasher = HashAlgorithm::Sha256.hasher();
        hasher.update(&content[..5]);
        hasher.update(&content[5..]);
        assert_eq!(hasher.finish(), HashAlgorithm::Sha256.digest(content));
    }
}
