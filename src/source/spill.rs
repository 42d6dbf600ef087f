//! Image tarballs that cannot be read where they lie: a compressed `docker save` or
//! oci-archive (`docker save app | gzip > app.tar.gz`), and the export stream of a Docker
//! daemon. Both are read once, in order, into an anonymous temporary file (unlinked when it is
//! made, so nothing is left behind, whatever stops the process), bounded by
//! [`limits::MAX_SPILL_BYTES`], and mapped: from there they are read like any tarball on disk.
//!
//! Why a copy rather than two streaming passes: the readers need random access (Docker writes
//! `manifest.json` after the layers, so which member is a layer is known only at the end), and a
//! second pass would decompress (or export) the whole image again. One pass costs one write of
//! the uncompressed tar to the temporary directory (`TMPDIR`).

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};

use super::bytes::MappedBytes;
use super::limits;

/// A compression a whole image tarball may be wrapped in, known by its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wrapping {
    /// `1f 8b`
    Gzip,
    /// `28 b5 2f fd`
    Zstd,
    /// `fd 37 7a 58 5a 00`
    Xz,
    /// `BZh` and a block size digit
    Bzip2,
}

impl Wrapping {
    /// The compression `head` (the first bytes of a file) starts with, if any.
    pub fn sniff(head: &[u8]) -> Option<Wrapping> {
        if head.starts_with(&[0x1f, 0x8b]) {
            Some(Wrapping::Gzip)
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Some(Wrapping::Zstd)
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Some(Wrapping::Xz)
        } else if head.len() >= 4 && head.starts_with(b"BZh") && head[3].is_ascii_digit() {
            Some(Wrapping::Bzip2)
        } else {
            None
        }
    }

    /// The name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Wrapping::Gzip => "gzip",
            Wrapping::Zstd => "zstd",
            Wrapping::Xz => "xz",
            Wrapping::Bzip2 => "bzip2",
        }
    }

    /// A reader of the decompressed bytes of `input`. Concatenated gzip and bzip2 members (what
    /// `pigz` and `pbzip2` write) are read as one stream.
    fn decoder<'a>(self, input: &'a [u8]) -> Result<Box<dyn Read + 'a>> {
        Ok(match self {
            Wrapping::Gzip => Box::new(flate2::read::MultiGzDecoder::new(input)),
            Wrapping::Zstd => {
                let mut decoder = zstd::stream::read::Decoder::with_buffer(input)?;
                // The same window bound as layers (2 GiB, `zstd --long=31`).
                decoder.window_log_max(31)?;
                Box::new(decoder)
            }
            Wrapping::Xz => Box::new(lzma_rust2::XzReader::new(input, true)),
            Wrapping::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(input)),
        })
    }
}

/// The tarball in `bytes` (a mapped file), decompressed into a temporary file when it is
/// compressed: the bytes to index, and the compression that was undone.
pub fn uncompressed(
    bytes: MappedBytes,
    path: &Path,
    quiet: bool,
) -> Result<(MappedBytes, Option<Wrapping>)> {
    let Some(wrapping) = Wrapping::sniff(&bytes[..bytes.len().min(8)]) else {
        return Ok((bytes, None));
    };
    if !quiet {
        eprintln!(
            "stowaway: {}: {} compressed; decompressing it once into an unlinked temporary \
             file (at most {}) to read its members",
            path.display(),
            wrapping.name(),
            human_bytes(limits::MAX_SPILL_BYTES)
        );
    }
    let mut decoder = wrapping.decoder(&bytes)?;
    let what = format!("the {} stream", wrapping.name());
    let spilled = spill(&mut decoder, &what, limits::MAX_SPILL_BYTES)?;
    Ok((spilled, Some(wrapping)))
}

/// Copies `reader` to the end into an anonymous temporary file and maps it; more than `limit`
/// bytes is an error (`what` names the stream in it). The file has no name from the start: it
/// is gone when the mapping is.
pub fn spill(reader: &mut dyn Read, what: &str, limit: u64) -> Result<MappedBytes> {
    let mut spill = Spill::new(what, limit)?;
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => bail!("{what} is corrupt or cut short: {err}"),
        };
        spill.write(&buffer[..read])?;
    }
    spill.finish()
}

/// A temporary file being filled, refusing more than its limit.
pub struct Spill {
    file: io::BufWriter<File>,
    written: u64,
    limit: u64,
    what: String,
}

impl Spill {
    /// An anonymous temporary file for `what`, to hold at most `limit` bytes.
    pub fn new(what: &str, limit: u64) -> Result<Spill> {
        let file = tempfile::tempfile().context("cannot create a temporary file (TMPDIR)")?;
        Ok(Spill {
            file: io::BufWriter::with_capacity(1 << 20, file),
            written: 0,
            limit,
            what: what.to_string(),
        })
    }

    /// Appends `bytes`; past the limit, an error.
    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.written += bytes.len() as u64;
        if self.written > self.limit {
            bail!(
                "{} holds more than {}, the most copied to a temporary file",
                self.what,
                human_bytes(self.limit)
            );
        }
        self.file
            .write_all(bytes)
            .with_context(|| format!("cannot write {} to a temporary file (TMPDIR)", self.what))
    }

    /// The bytes written, mapped.
    pub fn finish(self) -> Result<MappedBytes> {
        let what = self.what;
        let mut file = self
            .file
            .into_inner()
            .map_err(|err| err.into_error())
            .with_context(|| format!("cannot write {what} to a temporary file (TMPDIR)"))?;
        file.rewind().context("temporary file")?;
        let mapped = MappedBytes::map_opened(&file, Path::new("(temporary file)"))?;
        if mapped.len() as u64 != self.written {
            bail!("the temporary file of {what} changed while it was written");
        }
        Ok(mapped)
    }
}

/// `64 GiB`, `512 KiB`: a limit in words.
fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{} GiB", b >> 30),
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b => format!("{b} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_each_wrapping() {
        assert_eq!(Wrapping::sniff(&[0x1f, 0x8b, 8]), Some(Wrapping::Gzip));
        assert_eq!(
            Wrapping::sniff(&[0x28, 0xb5, 0x2f, 0xfd, 0]),
            Some(Wrapping::Zstd)
        );
        assert_eq!(Wrapping::sniff(b"\xfd7zXZ\0\0"), Some(Wrapping::Xz));
        assert_eq!(Wrapping::sniff(b"BZh91AY"), Some(Wrapping::Bzip2));
        assert_eq!(Wrapping::sniff(b"BZhx"), None);
        assert_eq!(Wrapping::sniff(b"manifest.json\0"), None);
        assert_eq!(Wrapping::sniff(b""), None);
    }

    #[test]
    fn a_stream_over_the_bound_is_refused() {
        let data = vec![7u8; 5000];
        let spilled = spill(&mut &data[..], "test stream", 5000).unwrap();
        assert_eq!(&spilled[..], &data[..]);
        let error = spill(&mut &data[..], "test stream", 4999).unwrap_err();
        assert!(
            error.to_string().contains("test stream holds more than"),
            "{error}"
        );
    }

    #[test]
    fn a_corrupt_stream_names_itself() {
        let mut gz = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
        gz.extend_from_slice(&[0xff; 64]);
        let mut decoder = Wrapping::Gzip.decoder(&gz).unwrap();
        let error = spill(&mut decoder, "the gzip stream", 1 << 20).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("the gzip stream is corrupt or cut short"),
            "{error}"
        );
    }
}
