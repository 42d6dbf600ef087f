//! Zip archives for tests of what a scan leaves out: archives nested past the depth limit and
//! members the scanner cannot read (encrypted). Built at test time, nothing secret inside.

use std::io::{Cursor, Write};

use zip::CompressionMethod;
use zip::write::SimpleFileOptions;

/// A zip holding one member `name` with `bytes`, deflated.
pub fn zip_of(name: &str, bytes: &[u8]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    writer.start_file(name, options).unwrap();
    writer.write_all(bytes).unwrap();
    writer.finish().unwrap().into_inner()
}

/// `leaf` (named `leaf_name`) inside `depth` zips, each the one member of the next
/// (`level-1.zip` holds `level-2.zip`…): with `depth` past the archive depth limit (3), the
/// innermost zips are not opened.
pub fn nested_zips(depth: usize, leaf_name: &str, leaf: &[u8]) -> Vec<u8> {
    let mut bytes = zip_of(leaf_name, leaf);
    for level in (2..=depth).rev() {
        bytes = zip_of(&format!("level-{level}.zip"), &bytes);
    }
    bytes
}

/// A zip holding one stored member `key.txt` whose flags say it is encrypted: a scanner cannot
/// read it, whatever its bytes hold.
pub fn encrypted_zip() -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
    writer.start_file("key.txt", options).unwrap();
    writer
        .write_all(b"ciphertext, as far as anyone knows")
        .unwrap();
    let mut bytes = writer.finish().unwrap().into_inner();
    // Bit 0 of the general-purpose flags: at offset 6 of the local header, 8 of the central one.
    for (signature, offset) in [(b"PK\x03\x04", 6), (b"PK\x01\x02", 8)] {
        let at = bytes
            .windows(4)
            .position(|w| w == signature)
            .expect("zip header");
        bytes[at + offset] |= 1;
    }
    bytes
}
