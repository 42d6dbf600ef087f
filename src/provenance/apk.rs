//! apk's database, `lib/apk/db/installed`: one block per package, blocks separated by blank
//! lines, each line `<letter>:<value>`. `P:` names the package, `V:` its version, `F:` starts a
//! directory, `R:` a file in that directory, and a `Z:` after an `R:` is that file's checksum:
//! `Q1` + base64 of its SHA-1 (`Q2` for SHA-256; bare hex is MD5, from old apk).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::hash::{HashAlgorithm, RecordedHash};
use super::package::{Database, Manager, OwnedFile, Package, ParseReport};
use super::paths::join;

/// Reads `installed` found at `path` under root `prefix`.
pub fn read_installed(prefix: &str, path: &str, bytes: &[u8]) -> Database {
    let mut database = Database::new(Manager::Apk, path);
    let text = String::from_utf8_lossy(bytes);
    let mut block = Block::default();
    for line in text.lines() {
        if line.trim().is_empty() {
            block.finish(&mut database);
            continue;
        }
        let Some((key, value)) = line.split_once(':').filter(|(key, _)| key.len() == 1) else {
            database
                .report
                .skip(format!("not a `<letter>:<value>` line: {line:.60}"));
            continue;
        };
        block.take(prefix, key, value, &mut database.report);
    }
    block.finish(&mut database);
    database
}

/// The package being read.
#[derive(Default)]
struct Block {
    name: Option<String>,
    version: String,
    directory: Option<String>,
    files: Vec<OwnedFile>,
    /// Whether an `R:` was read since the last `P:` or `F:`, so that a `Z:` belongs to it (a
    /// file's `a:` attributes line may stand between the two).
    after_file: bool,
    started: bool,
}

impl Block {
    fn take(&mut self, prefix: &str, key: &str, value: &str, report: &mut ParseReport) {
        self.started = true;
        match key {
            "P" => {
                self.name = Some(value.to_string());
                self.after_file = false;
            }
            "V" => self.version = value.to_string(),
            "F" => {
                self.directory = Some(value.to_string());
                self.after_file = false;
            }
            "R" => {
                let dir = self.directory.as_deref().unwrap_or("");
                match join(prefix, &format!("{dir}/{value}")).filter(|p| !p.is_empty()) {
                    Some(path) => {
                        self.files.push(OwnedFile { path, hash: None });
                        self.after_file = true;
                    }
                    None => report.skip(format!("file outside the image: {dir}/{value}")),
                }
            }
            "Z" if self.after_file => match checksum(value) {
                Some(hash) => {
                    if let Some(file) = self.files.last_mut() {
                        file.hash = Some(hash);
                    }
                }
                None => report.skip(format!("unreadable checksum {value:.60}")),
            },
            _ => {}
        }
    }

    fn finish(&mut self, database: &mut Database) {
        let block = std::mem::take(self);
        if !block.started {
            return;
        }
        let Some(name) = block.name.filter(|n| !n.is_empty()) else {
            database.report.skip("block without a P: line");
            return;
        };
        database.report.records += 1;
        database.packages.push(Package {
            manager: Manager::Apk,
            name,
            version: block.version,
            files: block.files,
            root: None,
        });
    }
}

fn checksum(value: &str) -> Option<RecordedHash> {
    if let Some(b64) = value.strip_prefix("Q1") {
        RecordedHash::new(HashAlgorithm::Sha1, STANDARD.decode(b64).ok()?)
    } else if let Some(b64) = value.strip_prefix("Q2") {
        RecordedHash::new(HashAlgorithm::Sha256, STANDARD.decode(b64).ok()?)
    } else {
        RecordedHash::from_hex(HashAlgorithm::Md5, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q1(content: &[u8]) -> String {
        format!("Q1{}", STANDARD.encode(HashAlgorithm::Sha1.digest(content)))
    }

    #[test]
    fn reads_packages_files_and_sha1_checksums() {
        let installed = format!(
            "C:Q1pkgchecksumAAAAAAAAAAAAAAAAAAAA=\nP:musl\nV:1.2.5-r0\nA:x86_64\n\
             F:lib\nR:ld-musl-x86_64.so.1\na:0:0:755\nZ:{}\nR:libc.musl-x86_64.so.1\n\
             \nP:ca-certificates-bundle\nV:20240226-r0\nF:etc/ssl/certs\n\
             R:ca-certificates.crt\nZ:{}\nF:etc/ssl\nZ:Q1dirchecksumBBBBBBBBBBBBBBBBBBB=\n\n",
            q1(b"loader"),
            q1(b"bundle"),
        );
        let db = read_installed("", "lib/apk/db/installed", installed.as_bytes());
        assert_eq!(db.report.skipped, 0, "{:?}", db.report.reasons);
        assert_eq!(db.packages.len(), 2);
        let musl = &db.packages[0];
        assert_eq!(
            (musl.name.as_str(), musl.version.as_str()),
            ("musl", "1.2.5-r0")
        );
        assert_eq!(musl.files[0].path, "lib/ld-musl-x86_64.so.1");
        assert!(musl.files[0].hash.as_ref().unwrap().matches(b"loader"));
        assert_eq!(musl.files[1].hash, None);
        let bundle = &db.packages[1];
        assert_eq!(bundle.files.len(), 1);
        assert!(bundle.files[0].hash.as_ref().unwrap().matches(b"bundle"));
    }

    #[test]
    fn garbage_is_counted_not_fatal() {
        let db = read_installed(
            "",
            "lib/apk/db/installed",
            b"nonsense\nR:file-without-package\nZ:Q1!!!\n",
        );
        assert_eq!(db.packages.len(), 0);
        assert_eq!(db.report.skipped, 3, "{:?}", db.report.reasons);
    }
}
