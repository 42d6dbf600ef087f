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

/// A zip holding `members` (name, bytes), deflated, in order: a jar when one is
/// `META-INF/maven/<group>/<artifact>/pom.properties`.
pub fn zip_of_members(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    for (name, bytes) in members {
        writer.start_file(*name, options).unwrap();
        writer.write_all(bytes).unwrap();
    }
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

/// Writes a wheel (the wheel format: a zip whose `<dist_info>` directory holds RECORD) at
/// `path` with `members` and a RECORD giving each member's urlsafe-base64 sha256 and size, as
/// pip checks and writes it on install.
pub fn write_wheel(path: &std::path::Path, dist_info: &str, members: &[(&str, &[u8])]) {
    use base64::Engine as _;
    use sha2::Digest as _;

    let mut record = String::new();
    let mut writer = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    for (name, content) in members {
        let digest = sha2::Sha256::digest(content);
        let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
        record.push_str(&format!("{name},sha256={encoded},{}\n", content.len()));
        writer
            .start_file(*name, SimpleFileOptions::default())
            .unwrap();
        writer.write_all(content).unwrap();
    }
    let record_name = format!("{dist_info}/RECORD");
    record.push_str(&format!("{record_name},,\n"));
    writer
        .start_file(record_name, SimpleFileOptions::default())
        .unwrap();
    writer.write_all(record.as_bytes()).unwrap();
    writer.finish().unwrap();
}
