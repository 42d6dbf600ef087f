//! Small, independent readers for checking what the writers produced.
//!
//! These deliberately use only the `tar`/`flate2`/`zstd` crates directly (not
//! stowaway), so a fixture bug and a stowaway bug cannot cancel each other out.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::Path;

/// gzip magic bytes.
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// zstd frame magic bytes.
pub const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Decompresses gzip or zstd, sniffed from the magic bytes; anything else is
/// returned unchanged (an uncompressed tar).
pub fn decompress(bytes: &[u8]) -> Vec<u8> {
    if bytes.starts_with(&GZIP_MAGIC) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .expect("gunzip");
        out
    } else if bytes.starts_with(&ZSTD_MAGIC) {
        zstd::decode_all(bytes).expect("unzstd")
    } else {
        bytes.to_vec()
    }
}

/// One member of a tar, as a reader that honours GNU long names and PAX
/// headers sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarMember {
    pub path: String,
    pub kind: tar::EntryType,
    pub mode: u32,
    /// Symlink or hard-link target.
    pub link: Option<String>,
    pub data: Vec<u8>,
}

/// All members of an (uncompressed) tar, in order.
pub fn tar_members(tar_bytes: &[u8]) -> Vec<TarMember> {
    let mut archive = tar::Archive::new(tar_bytes);
    let mut out = Vec::new();
    for entry in archive.entries().expect("read tar") {
        let mut entry = entry.expect("tar entry");
        let path = entry.path().expect("path").to_string_lossy().into_owned();
        let link = entry
            .link_name()
            .expect("link name")
            .map(|l| l.to_string_lossy().into_owned());
        let kind = entry.header().entry_type();
        let mode = entry.header().mode().expect("mode");
        let mut data = Vec::new();
        entry.read_to_end(&mut data).expect("tar data");
        out.push(TarMember {
            path,
            kind,
            mode,
            link,
            data,
        });
    }
    out
}

/// The raw header names of a tar, *without* applying GNU long-name or PAX
/// records (those records appear as members of their own). Used to prove
/// which long-path mechanism an entry used.
pub fn raw_tar_headers(tar_bytes: &[u8]) -> Vec<(tar::EntryType, Vec<u8>)> {
    let mut archive = tar::Archive::new(tar_bytes);
    let mut out = Vec::new();
    for entry in archive.entries().expect("read tar").raw(true) {
        let entry = entry.expect("tar entry");
        out.push((
            entry.header().entry_type(),
            entry.header().path_bytes().into_owned(),
        ));
    }
    out
}

/// Regular files of an image, by path: members of a tar file, or files under
/// a layout directory (relative paths with `/`).
pub fn read_image_files(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    if path.is_dir() {
        walk(path, path, &mut out);
    } else {
        let bytes = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        for m in tar_members(&bytes) {
            if m.kind == tar::EntryType::Regular {
                out.insert(m.path, m.data);
            }
        }
    }
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
    for entry in fs::read_dir(dir).expect("read dir") {
        let entry = entry.expect("dir entry");
        let p = entry.path();
        if p.is_dir() {
            walk(root, &p, out);
        } else {
            let rel = p
                .strip_prefix(root)
                .expect("under root")
                .to_string_lossy()
                .replace('\\', "/");
            out.insert(rel, fs::read(&p).expect("read file"));
        }
    }
}
