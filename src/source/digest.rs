//! Content digests (`sha256:<hex>`): parsing, hashing and checking.

use std::io::{self, Read};

use anyhow::{Result, bail};
use sha2::{Digest as _, Sha256};

/// A parsed `sha256:<64 hex>` digest. Other algorithms are rejected with a clear message rather
/// than silently unchecked.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Digest(String);

impl Digest {
    /// Parses and validates a digest string. Digests come from the input, so a malformed one
    /// is not quoted (it could be anything); a known algorithm other than sha256 is named.
    pub fn parse(text: &str) -> Result<Digest> {
        let Some((algorithm, hex)) = text.split_once(':') else {
            bail!("malformed digest (not sha256:<64 hex digits>)");
        };
        if algorithm != "sha256" {
            match ["sha384", "sha512", "blake3"]
                .into_iter()
                .find(|known| *known == algorithm)
            {
                Some(known) => bail!("unsupported digest algorithm {known}"),
                None => bail!("malformed digest (not sha256:<64 hex digits>)"),
            }
        }
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("malformed digest (not sha256:<64 hex digits>)");
        }
        Ok(Digest(format!("sha256:{}", hex.to_ascii_lowercase())))
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(format!("sha256:{}", hex::encode(Sha256::digest(bytes))))
    }

    /// The hex part, which names blob files in OCI layouts.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    /// The whole digest, `sha256:<64 lowercase hex digits>`, as manifests and reports
    /// write it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Checks `bytes` against this digest; `what` names the blob in the error.
    pub fn verify(&self, bytes: &[u8], what: &str) -> Result<()> {
        self.check(Sha256::digest(bytes).as_slice(), what)
    }

    /// Compares a finished hash with this digest.
    fn check(&self, hash: &[u8], what: &str) -> Result<()> {
        if hex::encode(hash) != self.hex() {
            // What the content does hash to is left out: it fingerprints bytes that may come
            // from anywhere (a server told to fetch from a host that is no registry).
            bail!("{what}: digest mismatch: expected {self}, the content hashes to something else");
        }
        Ok(())
    }
}

/// A blob's digest computed piece by piece, in order, as a walk passes over it.
#[derive(Default)]
pub struct PartialHash {
    hasher: Sha256,
}

impl PartialHash {
    pub fn update(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
    }

    /// Compares what was hashed with `expected`; `what` names the blob in the error.
    pub fn verify(self, expected: &Digest, what: &str) -> Result<()> {
        expected.check(self.hasher.finalize().as_slice(), what)
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A reader that hashes every byte it passes on, so a blob is verified while it is read.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }

    /// Reads whatever is left (trailing bytes count towards the digest too) and compares.
    pub fn finish(mut self, expected: &Digest, what: &str) -> Result<u64> {
        io::copy(&mut self, &mut io::sink())?;
        expected.check(self.hasher.finalize().as_slice(), what)?;
        Ok(self.bytes)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let d = Digest::of(b"abc");
        assert_eq!(
            d.as_str(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Digest::parse(d.as_str()).unwrap(), d);
        assert!(Digest::parse("sha256:abc").is_err());
        assert!(Digest::parse("md5:00").is_err());
        assert!(Digest::parse("nocolon").is_err());
    }

    #[test]
    fn hashing_reader_counts_trailing_bytes() {
        let data = b"hello world";
        let mut reader = HashingReader::new(&data[..]);
        let mut first = [0u8; 5];
        reader.read_exact(&mut first).unwrap();
        assert_eq!(reader.finish(&Digest::of(data), "blob").unwrap(), 11);
        let reader = HashingReader::new(&data[..]);
        let err = reader.finish(&Digest::of(b"other"), "blob x").unwrap_err();
        assert!(err.to_string().contains("blob x: digest mismatch"));
    }
}
