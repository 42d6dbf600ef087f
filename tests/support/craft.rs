//! Hand-made tar bytes for hostile-input tests: headers `tar::Builder` will not write (a size
//! on a directory, a PAX size that lies, GNU long names of a gigabyte, sparse maps with
//! petabyte holes), built block by block, and huge layers streamed into gzip without ever
//! being held in memory.

use std::io::{self, Write};

use sha2::{Digest, Sha256};

use super::image::{Compression, RawLayer, pax_record};

/// Size of a tar block.
pub const BLOCK: usize = 512;

/// A ustar header block: `name`, `typeflag`, the size field, a link name; mode 0755 for
/// directories, 0644 otherwise; checksum set.
pub fn header(name: &[u8], typeflag: u8, size: u64, link: &[u8]) -> [u8; BLOCK] {
    let mut block = [0u8; BLOCK];
    block[..name.len()].copy_from_slice(name);
    let mode: &[u8] = if typeflag == b'5' {
        b"0000755\0"
    } else {
        b"0000644\0"
    };
    block[100..108].copy_from_slice(mode);
    block[108..116].copy_from_slice(b"0000000\0");
    block[116..124].copy_from_slice(b"0000000\0");
    block[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    block[136..148].copy_from_slice(b"00000000000\0");
    block[156] = typeflag;
    block[157..157 + link.len()].copy_from_slice(link);
    block[257..263].copy_from_slice(b"ustar\0");
    block[263..265].copy_from_slice(b"00");
    seal(&mut block);
    block
}

/// The same header in GNU layout (magic `ustar `), as GNU long names and sparse files use.
pub fn gnu_header(name: &[u8], typeflag: u8, size: u64) -> [u8; BLOCK] {
    let mut block = header(name, typeflag, size, b"");
    block[257..263].copy_from_slice(b"ustar ");
    block[263..265].copy_from_slice(b" \0");
    seal(&mut block);
    block
}

/// Sets the checksum of a block whose fields were changed.
pub fn seal(block: &mut [u8; BLOCK]) {
    block[148..156].copy_from_slice(b"        ");
    let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
    block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

/// A 12-byte numeric field in base-256, for values octal cannot hold.
pub fn base_256(value: u64) -> [u8; 12] {
    let mut field = [0u8; 12];
    field[0] = 0x80;
    field[4..].copy_from_slice(&value.to_be_bytes());
    field
}

/// `data` padded with zeros to whole blocks.
pub fn padded(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    out.resize(data.len().div_ceil(BLOCK) * BLOCK, 0);
    out
}

/// A regular file entry: header and padded data.
pub fn file(name: &str, data: &[u8]) -> Vec<u8> {
    let mut out = header(name.as_bytes(), b'0', data.len() as u64, b"").to_vec();
    out.extend(padded(data));
    out
}

/// A PAX extended header (`x`) carrying `records`.
pub fn pax(records: &[(&str, &[u8])]) -> Vec<u8> {
    let data: Vec<u8> = records
        .iter()
        .flat_map(|(key, value)| pax_record(key, value))
        .collect();
    let mut out = header(b"PaxHeaders.0/entry", b'x', data.len() as u64, b"").to_vec();
    out.extend(padded(&data));
    out
}

/// The end-of-archive marker: two zero blocks.
pub fn end() -> Vec<u8> {
    vec![0u8; 2 * BLOCK]
}

/// Writes `len` copies of `byte` to `out`, a megabyte at a time.
pub fn write_repeated(out: &mut dyn Write, byte: u8, len: u64) -> io::Result<()> {
    let chunk = vec![byte; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        out.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    Ok(())
}

/// A gzip layer whose tar `write_tar` streams out: hashed (diff_id) and compressed on the
/// fly, so a tar of gigabytes costs a few megabytes of memory.
pub fn streamed_gzip_layer(write_tar: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> RawLayer {
    struct Tee {
        hash: Sha256,
        gzip: flate2::write::GzEncoder<Vec<u8>>,
    }
    impl Write for Tee {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.hash.update(buf);
            self.gzip.write_all(buf)?;
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            self.gzip.flush()
        }
    }
    let mut tee = Tee {
        hash: Sha256::new(),
        gzip: flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()),
    };
    write_tar(&mut tee).expect("write the tar");
    RawLayer {
        diff_id: format!("sha256:{}", hex::encode(tee.hash.finalize())),
        blob: tee.gzip.finish().expect("gzip in memory"),
        compression: Compression::Gzip,
    }
}
