//! rpm's database. Since rpm 4.16 it is SQLite (`rpmdb.sqlite`), whose `Packages` table holds
//! one [`header`] per package in its `blob` column; the file list is BASENAMES, with
//! DIRNAMES and DIRINDEXES naming each file's directory, and FILEDIGESTS the per-file digest in
//! the algorithm FILEDIGESTALGO names. The older Berkeley DB (`Packages`) and SUSE's NDB
//! (`Packages.db`) are recognised and reported as not read, rather than guessed at.

pub mod header;
pub mod sqlite;

use header::{
    Header, HeaderError, TAG_BASENAMES, TAG_DIRINDEXES, TAG_DIRNAMES, TAG_EPOCH,
    TAG_FILEDIGESTALGO, TAG_FILEDIGESTS, TAG_NAME, TAG_OLDFILENAMES, TAG_RELEASE, TAG_VERSION,
};

use super::hash::{HashAlgorithm, RecordedHash};
use super::package::{Database, Manager, OwnedFile, Package, ParseReport};
use super::paths::join;

pub use sqlite::read_sqlite;

/// The rpm database formats that are recognised but not read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnreadFormat {
    /// `var/lib/rpm/Packages`: rpm before 4.16 (RHEL 8, CentOS 7/8, older Fedora and SUSE).
    BerkeleyDb,
    /// `var/lib/rpm/Packages.db`: rpm's own NDB format (SUSE).
    Ndb,
}

/// A database entry saying that the rpm database at `path` is in a format not read.
pub fn unread_database(path: &str, format: UnreadFormat) -> Database {
    let name = match format {
        UnreadFormat::BerkeleyDb => "Berkeley DB",
        UnreadFormat::Ndb => "NDB",
    };
    Database::unread(
        Manager::Rpm,
        path,
        format!(
            "rpm database in {name} format is not read: files from its packages are not known to be vendor content"
        ),
    )
}

/// The package one header describes, its file paths rooted at `prefix`.
pub fn package_from_header(
    prefix: &str,
    blob: &[u8],
    report: &mut ParseReport,
) -> Result<Package, HeaderError> {
    let header = Header::parse(blob)?;
    let name = header
        .string(TAG_NAME)?
        .filter(|name| !name.is_empty())
        .ok_or_else(|| header::message("header without a NAME"))?;
    let version = header.string(TAG_VERSION)?.unwrap_or("");
    let release = header.string(TAG_RELEASE)?.unwrap_or("");
    let epoch = header.int32_array(TAG_EPOCH)?.first().copied();
    let version = match (epoch, release) {
        (Some(epoch), "") => format!("{epoch}:{version}"),
        (Some(epoch), release) => format!("{epoch}:{version}-{release}"),
        (None, "") => version.to_string(),
        (None, release) => format!("{version}-{release}"),
    };
    let paths = file_paths(&header)?;
    let digests = header.string_array(TAG_FILEDIGESTS)?;
    let algorithm = digest_algorithm(&header)?;
    if !digests.is_empty() && digests.len() != paths.len() {
        report.skip(format!(
            "{name}: {} digests for {} files, digests ignored",
            digests.len(),
            paths.len()
        ));
    }
    let digests_fit = digests.len() == paths.len();
    let mut files = Vec::with_capacity(paths.len());
    for (i, path) in paths.iter().enumerate() {
        let Some(path) = join(prefix, path).filter(|p| !p.is_empty()) else {
            report.skip(format!("{name}: file outside the image: {path}"));
            continue;
        };
        // Directories, symlinks and ghost files have an empty digest.
        let hash = match (digests_fit, algorithm) {
            (true, Some(algorithm)) => RecordedHash::from_hex(algorithm, digests[i]),
            _ => None,
        };
        files.push(OwnedFile { path, hash });
    }
    Ok(Package {
        manager: Manager::Rpm,
        name: name.to_string(),
        version,
        files,
        root: None,
    })
}

/// Full paths from BASENAMES/DIRNAMES/DIRINDEXES, or OLDFILENAMES in headers from before
/// rpm 4.0 compressed file names.
fn file_paths(header: &Header<'_>) -> Result<Vec<String>, HeaderError> {
    let basenames = header.string_array(TAG_BASENAMES)?;
    if basenames.is_empty() {
        return Ok(header
            .string_array(TAG_OLDFILENAMES)?
            .into_iter()
            .map(str::to_string)
            .collect());
    }
    let dirnames = header.string_array(TAG_DIRNAMES)?;
    let dirindexes = header.int32_array(TAG_DIRINDEXES)?;
    if dirindexes.len() != basenames.len() {
        return Err(header::message(format!(
            "{} basenames but {} dirindexes",
            basenames.len(),
            dirindexes.len()
        )));
    }
    basenames
        .iter()
        .zip(&dirindexes)
        .map(|(base, &dir)| {
            let dir = dirnames.get(dir as usize).ok_or_else(|| {
                header::message(format!("dirindex {dir} past {} dirnames", dirnames.len()))
            })?;
            Ok(format!("{dir}{base}"))
        })
        .collect()
}

/// FILEDIGESTALGO holds an OpenPGP hash algorithm number; absent means MD5 (rpm before 4.6).
/// An algorithm not listed here leaves the files without a hash (unverifiable, never "modified").
fn digest_algorithm(header: &Header<'_>) -> Result<Option<HashAlgorithm>, HeaderError> {
    Ok(match header.int32_array(TAG_FILEDIGESTALGO)?.first() {
        None | Some(1) => Some(HashAlgorithm::Md5),
        Some(2) => Some(HashAlgorithm::Sha1),
        Some(8) => Some(HashAlgorithm::Sha256),
        Some(9) => Some(HashAlgorithm::Sha384),
        Some(10) => Some(HashAlgorithm::Sha512),
        Some(11) => Some(HashAlgorithm::Sha224),
        Some(_) => None,
    })
}

#[cfg(test)]
mod tests {
    use super::header::{build_blob, int32s, strings};
    use super::*;

    const STRING: u32 = 6;
    const ARRAY: u32 = 8;
    const INT32: u32 = 4;

    fn blob(algo: Option<u32>, digests: &[&str]) -> Vec<u8> {
        let mut tags = vec![
            (TAG_NAME, STRING, 1, strings(&["hello"]).1),
            (TAG_VERSION, STRING, 1, strings(&["1.0"]).1),
            (TAG_RELEASE, STRING, 1, strings(&["3.fc40"]).1),
        ];
        let (n, digest_bytes) = strings(digests);
        tags.push((TAG_FILEDIGESTS, ARRAY, n, digest_bytes));
        let (n, idx) = int32s(&[0, 0, 1]);
        tags.push((TAG_DIRINDEXES, INT32, n, idx));
        let (n, bases) = strings(&["hello", "hello-helper", "hello.conf"]);
        tags.push((TAG_BASENAMES, ARRAY, n, bases));
        let (n, dirs) = strings(&["/usr/bin/", "/etc/"]);
        tags.push((TAG_DIRNAMES, ARRAY, n, dirs));
        if let Some(algo) = algo {
            let (n, a) = int32s(&[algo]);
            tags.push((TAG_FILEDIGESTALGO, INT32, n, a));
        }
        build_blob(&tags)
    }

    #[test]
    fn reads_name_version_files_and_sha256_digests() {
        let sha = hex::encode(HashAlgorithm::Sha256.digest(b"#!/bin/sh\n"));
        let blob = blob(Some(8), &[&sha, "", ""]);
        let mut report = ParseReport::default();
        let package = package_from_header("", &blob, &mut report).unwrap();
        assert_eq!(
            (package.name.as_str(), package.version.as_str()),
            ("hello", "1.0-3.fc40")
        );
        let paths: Vec<&str> = package.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            ["usr/bin/hello", "usr/bin/hello-helper", "etc/hello.conf"]
        );
        assert!(
            package.files[0]
                .hash
                .as_ref()
                .unwrap()
                .matches(b"#!/bin/sh\n")
        );
        assert_eq!(package.files[1].hash, None);
        assert_eq!(report.skipped, 0);
    }

    #[test]
    fn absent_algorithm_means_md5_and_unknown_means_none() {
        let md5 = hex::encode(HashAlgorithm::Md5.digest(b"x"));
        let mut report = ParseReport::default();
        let package = package_from_header("", &blob(None, &[&md5, "", ""]), &mut report).unwrap();
        assert_eq!(
            package.files[0].hash.as_ref().unwrap().algorithm,
            HashAlgorithm::Md5
        );
        let package =
            package_from_header("", &blob(Some(99), &[&md5, "", ""]), &mut report).unwrap();
        assert_eq!(package.files[0].hash, None);
    }

    #[test]
    fn mismatched_digest_count_is_reported_and_ignored() {
        let mut report = ParseReport::default();
        let package = package_from_header("", &blob(Some(8), &["", ""]), &mut report).unwrap();
        assert_eq!(package.files.len(), 3);
        assert!(package.files.iter().all(|f| f.hash.is_none()));
        assert_eq!(report.skipped, 1);
    }

    #[test]
    fn every_truncation_is_an_error_or_a_package() {
        let blob = blob(Some(8), &["", "", ""]);
        for len in 0..blob.len() {
            let mut report = ParseReport::default();
            let _ = package_from_header("", &blob[..len], &mut report);
        }
    }
}
