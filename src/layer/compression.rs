//! Layer compression, detected from the bytes: media types lie (Docker writes uncompressed
//! `layer.tar` files, registries serve zstd under gzip names, tools mislabel).

use std::fmt;
use std::io::{BufRead, Read};

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// The largest zstd window accepted, as a power of two: 2^31 bytes (2 GiB), the largest the
/// format's reference decoder allows on 64-bit machines, and what `zstd --long=31` writes
/// (zstd's own default, 2^27, refuses such layers with "Frame requires too much memory").
///
/// The window is what bounds a zstd layer's memory: the decoder keeps the last window's worth
/// of decompressed bytes, never more than the frame's content, and its pages are touched only
/// as that content is decoded. A layer therefore costs at most
/// min(its uncompressed size, its window) beyond the scan's usual memory, per layer walked at
/// once; layers written without `--long` (windows of 8 MiB or less) cost what they did.
pub const ZSTD_WINDOW_LOG_MAX: u32 = 31;

/// How a layer blob is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// A plain tar (Docker's `layer.tar`, uncompressed OCI layers); walked in place when mapped.
    None,
    /// gzip, possibly several members concatenated.
    Gzip,
    /// Zstandard.
    Zstd,
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        })
    }
}

impl Compression {
    /// Identifies the compression from a blob's first bytes. Formats a layer may legally use
    /// but stowaway does not read (bzip2, xz) are errors rather than garbage tar.
    pub fn sniff(head: &[u8]) -> Result<Compression> {
        if head.starts_with(&[0x1f, 0x8b]) {
            Ok(Compression::Gzip)
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Ok(Compression::Zstd)
        } else if head.starts_with(b"BZh") {
            bail!("bzip2-compressed layers are not supported")
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            bail!("xz-compressed layers are not supported")
        } else {
            Ok(Compression::None)
        }
    }

    /// Wraps a buffered reader of the stored bytes in the matching decoder.
    pub fn decoder<'a, R: BufRead + Send + 'a>(
        self,
        reader: R,
    ) -> Result<Box<dyn Read + Send + 'a>> {
        Ok(match self {
            Compression::None => Box::new(reader),
            // Multi-member: some tools (pigz --independent, concatenating writers) emit several
            // gzip members, and a single-member decoder would stop after the first.
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(reader)),
            Compression::Zstd => {
                let mut decoder = zstd::stream::read::Decoder::with_buffer(reader)?;
                decoder.window_log_max(ZSTD_WINDOW_LOG_MAX)?;
                Box::new(decoder)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_magic_bytes() {
        assert_eq!(
            Compression::sniff(&[0x1f, 0x8b, 8]).unwrap(),
            Compression::Gzip
        );
        assert_eq!(
            Compression::sniff(&[0x28, 0xb5, 0x2f, 0xfd, 0]).unwrap(),
            Compression::Zstd
        );
        assert_eq!(
            Compression::sniff(b"etc/\0\0\0").unwrap(),
            Compression::None
        );
        assert_eq!(Compression::sniff(b"").unwrap(), Compression::None);
        assert!(Compression::sniff(b"BZh91AY").is_err());
    }
}
