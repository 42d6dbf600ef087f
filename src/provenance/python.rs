//! Python's installed distributions: `<name>-<version>.dist-info/RECORD`, a CSV file of
//! `path,hash,size` rows with `hash` as `<algorithm>=<urlsafe base64 without padding>`
//! (PEP 376 / the wheel spec). Paths are relative to the directory that holds the `.dist-info`
//! (site-packages); scripts and data land outside it (`../../../bin/x`), and a few installers
//! write absolute paths. The name and version come from `METADATA` when the image has it,
//! otherwise from the directory name.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::hash::{HashAlgorithm, RecordedHash};
use super::package::{Database, Manager, OwnedFile, Package};
use super::paths::{file_name, join, normalise, parent};

/// Reads the RECORD at `record_path`; `metadata` is the same directory's METADATA, if any.
pub fn read_record(record_path: &str, record: &[u8], metadata: Option<&[u8]>) -> Database {
    let mut database = Database::new(Manager::Pip, record_path);
    let dist_info = parent(record_path);
    let site = parent(dist_info);
    let (mut name, mut version) = name_from_directory(file_name(dist_info));
    if let Some((meta_name, meta_version)) = metadata.and_then(name_from_metadata) {
        (name, version) = (meta_name, meta_version);
    }
    let mut files = Vec::new();
    for (number, line) in String::from_utf8_lossy(record).lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fields = csv_fields(line);
        let recorded = fields.first().map(String::as_str).unwrap_or("");
        let path = if recorded.starts_with('/') {
            normalise(recorded)
        } else {
            join(site, recorded)
        };
        let Some(path) = path.filter(|p| !p.is_empty()) else {
            database.report.skip(format!(
                "RECORD line {}: path outside the image",
                number + 1
            ));
            continue;
        };
        let hash = match fields.get(1).map(String::as_str).unwrap_or("") {
            "" => None,
            text => match parse_hash(text) {
                Some(hash) => Some(hash),
                None => {
                    database
                        .report
                        .skip(format!("RECORD line {}: unreadable hash", number + 1));
                    None
                }
            },
        };
        database.report.records += 1;
        files.push(OwnedFile { path, hash });
    }
    database.packages.push(Package {
        manager: Manager::Pip,
        name,
        version,
        files,
        root: None,
    });
    database
}

/// `<name>-<version>.dist-info`: the name has its `-` escaped as `_`, so the first `-` splits.
fn name_from_directory(dir: &str) -> (String, String) {
    let stem = dir.strip_suffix(".dist-info").unwrap_or(dir);
    match stem.split_once('-') {
        Some((name, version)) => (name.to_string(), version.to_string()),
        None => (stem.to_string(), String::new()),
    }
}

/// `Name:` and `Version:` from METADATA's header block (email-header format).
fn name_from_metadata(metadata: &[u8]) -> Option<(String, String)> {
    let text = String::from_utf8_lossy(metadata);
    let mut name = None;
    let mut version = None;
    for line in text.lines().take_while(|line| !line.is_empty()) {
        if let Some((field, value)) = line.split_once(':') {
            match field.to_ascii_lowercase().as_str() {
                "name" => name = Some(value.trim().to_string()),
                "version" => version = Some(value.trim().to_string()),
                _ => {}
            }
        }
    }
    Some((name.filter(|n| !n.is_empty())?, version.unwrap_or_default()))
}

fn parse_hash(text: &str) -> Option<RecordedHash> {
    let (algorithm, value) = text.split_once('=')?;
    let algorithm = match algorithm {
        "sha224" => HashAlgorithm::Sha224,
        "sha256" => HashAlgorithm::Sha256,
        "sha384" => HashAlgorithm::Sha384,
        "sha512" => HashAlgorithm::Sha512,
        _ => return None,
    };
    // The wheel spec says urlsafe base64; Debian's dh-python writes hex. The lengths differ
    // (64 hex digits against 43 base64 characters for SHA-256), so neither is mistaken for the
    // other.
    if value.len() == 2 * algorithm.digest_len() && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return RecordedHash::from_hex(algorithm, value);
    }
    RecordedHash::new(
        algorithm,
        URL_SAFE_NO_PAD.decode(value.trim_end_matches('=')).ok()?,
    )
}

/// The fields of one CSV line (RFC 4180 quoting, as Python's csv module writes it).
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.trim_end_matches('\r').chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', true) => quoted = false,
            ('"', false) if field.is_empty() => quoted = true,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    fields.push(field);
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha256_field(content: &[u8]) -> String {
        format!(
            "sha256={}",
            URL_SAFE_NO_PAD.encode(HashAlgorithm::Sha256.digest(content))
        )
    }

    #[test]
    fn reads_paths_hashes_and_outside_paths() {
        let record = format!(
            "six.py,{},34549\n\"odd,name.py\",{},1\n../../../bin/tool,{},10\n\
             six-1.16.0.dist-info/RECORD,,\n/abs/file,,\n../../../../../../../x,,\n",
            sha256_field(b"six"),
            sha256_field(b"odd"),
            sha256_field(b"tool"),
        );
        let db = read_record(
            "usr/lib/python3/site-packages/six-1.16.0.dist-info/RECORD",
            record.as_bytes(),
            Some(b"Metadata-Version: 2.1\nName: six\nVersion: 1.16.0\n\nbody: x\n"),
        );
        let package = &db.packages[0];
        assert_eq!(
            (package.name.as_str(), package.version.as_str()),
            ("six", "1.16.0")
        );
        let paths: Vec<&str> = package.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "usr/lib/python3/site-packages/six.py",
                "usr/lib/python3/site-packages/odd,name.py",
                "usr/bin/tool",
                "usr/lib/python3/site-packages/six-1.16.0.dist-info/RECORD",
                "abs/file",
            ]
        );
        assert!(package.files[0].hash.as_ref().unwrap().matches(b"six"));
        assert!(package.files[2].hash.as_ref().unwrap().matches(b"tool"));
        assert_eq!(package.files[3].hash, None);
        assert_eq!(db.report.skipped, 1);
    }

    #[test]
    fn debian_writes_hex_digests() {
        let hex = hex::encode(HashAlgorithm::Sha256.digest(b"blinker"));
        let record = format!("blinker/__init__.py,sha256={hex},7\n");
        let db = read_record(
            "usr/lib/python3/dist-packages/blinker-1.5.dist-info/RECORD",
            record.as_bytes(),
            None,
        );
        assert_eq!(db.report.skipped, 0);
        assert!(
            db.packages[0].files[0]
                .hash
                .as_ref()
                .unwrap()
                .matches(b"blinker")
        );
    }

    #[test]
    fn name_from_directory_without_metadata_and_bad_hashes_counted() {
        let db = read_record(
            "site/typing_extensions-4.12.2.dist-info/RECORD",
            b"a.py,md5=xyz,1\n",
            None,
        );
        let package = &db.packages[0];
        assert_eq!(
            (package.name.as_str(), package.version.as_str()),
            ("typing_extensions", "4.12.2")
        );
        assert_eq!(package.files[0].hash, None);
        assert_eq!(db.report.skipped, 1);
    }
}
