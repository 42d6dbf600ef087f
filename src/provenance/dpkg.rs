//! dpkg's database: `var/lib/dpkg/status` names the installed packages (and the MD5 of each
//! conffile), `info/<pkg>[:arch].list` the paths each owns, `info/<pkg>[:arch].md5sums` the
//! MD5 of each regular file. Distroless images have no `status`: one stanza per package in
//! `status.d/<name>`, its sums in `status.d/<name>.md5sums`, and no `.list`.
//!
//! `diversions` records files that `dpkg-divert` moved aside: a package's file recorded at
//! the diverted path was installed where the diversion points instead (unless the package is
//! the one that set up the diversion), and the original path holds someone else's file.

use std::collections::{BTreeMap, HashMap};

use super::control::{Stanza, stanzas};
use super::hash::{HashAlgorithm, RecordedHash};
use super::package::{Database, Manager, OwnedFile, Package, ParseReport};
use super::paths::join;

/// Reads a dpkg database whose `status` file is `status` (found at `status_path`, under root
/// `prefix`). `info_file` returns the bytes of `var/lib/dpkg/info/<name>` when the image has it;
/// `diversions` is `var/lib/dpkg/diversions`, if any.
pub fn read_status_database<'a>(
    prefix: &str,
    status_path: &str,
    status: &[u8],
    info_file: &dyn Fn(&str) -> Option<&'a [u8]>,
    diversions: Option<&[u8]>,
) -> Database {
    let mut database = Database::new(Manager::Dpkg, status_path);
    let diversions = read_diversions(prefix, diversions.unwrap_or_default(), &mut database.report);
    for stanza in stanzas(status, &mut database.report) {
        let Some((name, version, arch)) = identity(&stanza, &mut database.report) else {
            continue;
        };
        if !is_installed(stanza.get("Status")) {
            continue;
        }
        let mut files = BTreeMap::new();
        // Multi-Arch: same packages name their info files `<pkg>:<arch>`, the others `<pkg>`.
        let stem = [format!("{name}:{arch}"), name.to_string()]
            .into_iter()
            .find(|stem| {
                info_file(&format!("{stem}.list")).is_some()
                    || info_file(&format!("{stem}.md5sums")).is_some()
            });
        if let Some(stem) = stem {
            if let Some(list) = info_file(&format!("{stem}.list")) {
                add_list(prefix, list, &mut files);
            }
            if let Some(sums) = info_file(&format!("{stem}.md5sums")) {
                add_md5sums(prefix, sums, &mut files, &mut database.report);
            }
        }
        add_conffiles(
            prefix,
            stanza.get("Conffiles"),
            &mut files,
            &mut database.report,
        );
        let files = apply_diversions(name, files, &diversions);
        database.report.records += 1;
        database.packages.push(package(name, version, files));
    }
    database
}

/// Where a diverted path's file went, and the package that diverted it (`:` for a local
/// diversion made by the administrator).
struct Diversion {
    to: String,
    by: String,
}

/// `diversions` holds three lines per diversion: the path, where it was diverted to, and the
/// diverting package.
fn read_diversions(
    prefix: &str,
    bytes: &[u8],
    report: &mut ParseReport,
) -> HashMap<String, Diversion> {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    let mut out = HashMap::new();
    for triple in lines.chunks(3) {
        let [from, to, by] = triple else {
            report.skip("diversions ends in an incomplete record");
            continue;
        };
        match (join(prefix, from), join(prefix, to)) {
            (Some(from), Some(to)) if !from.is_empty() && !to.is_empty() => {
                out.insert(
                    from,
                    Diversion {
                        to,
                        by: by.to_string(),
                    },
                );
            }
            _ => report.skip(format!("diversion outside the image: {from} -> {to}")),
        }
    }
    out
}

/// Re-keys `package`'s files that another package (or the administrator) diverted.
fn apply_diversions(
    package: &str,
    files: BTreeMap<String, Option<RecordedHash>>,
    diversions: &HashMap<String, Diversion>,
) -> BTreeMap<String, Option<RecordedHash>> {
    if diversions.is_empty() {
        return files;
    }
    files
        .into_iter()
        .map(|(path, hash)| match diversions.get(&path) {
            Some(diversion) if diversion.by != package => (diversion.to.clone(), hash),
            _ => (path, hash),
        })
        .collect()
}

/// Reads distroless's `status.d`: `stanza_files` are its (`<name>`, bytes) stanza files,
/// `md5sums` returns `status.d/<name>.md5sums`. `dir_path` is the `status.d` directory.
pub fn read_status_d<'a>(
    prefix: &str,
    dir_path: &str,
    stanza_files: &[(&str, &[u8])],
    md5sums: &dyn Fn(&str) -> Option<&'a [u8]>,
) -> Database {
    let mut database = Database::new(Manager::Dpkg, dir_path);
    for (file, bytes) in stanza_files {
        for stanza in stanzas(bytes, &mut database.report) {
            let Some((name, version, _)) = identity(&stanza, &mut database.report) else {
                continue;
            };
            // These stanzas are the packages' own control files: no Status field means the
            // image builder installed them; one that is present must say so.
            if stanza.get("Status").is_some() && !is_installed(stanza.get("Status")) {
                continue;
            }
            let mut files = BTreeMap::new();
            if let Some(sums) = md5sums(&format!("{file}.md5sums")) {
                add_md5sums(prefix, sums, &mut files, &mut database.report);
            }
            add_conffiles(
                prefix,
                stanza.get("Conffiles"),
                &mut files,
                &mut database.report,
            );
            database.report.records += 1;
            database.packages.push(package(name, version, files));
        }
    }
    database
}

fn identity<'a>(
    stanza: &'a Stanza,
    report: &mut ParseReport,
) -> Option<(&'a str, &'a str, &'a str)> {
    let name = stanza.get("Package").filter(|name| !name.is_empty());
    let Some(name) = name else {
        report.skip("stanza without a Package field");
        return None;
    };
    let version = stanza.get("Version").unwrap_or("");
    Some((name, version, stanza.get("Architecture").unwrap_or("")))
}

/// Whether a `Status:` value says the package's files are on disk. The want word
/// (`install`, `hold`, `deinstall`) is the admin's selection; what decides is `ok installed`.
fn is_installed(status: Option<&str>) -> bool {
    let words: Vec<&str> = status.unwrap_or("").split_whitespace().collect();
    matches!(words.as_slice(), [_, "ok", "installed"])
}

fn package(name: &str, version: &str, files: BTreeMap<String, Option<RecordedHash>>) -> Package {
    Package {
        manager: Manager::Dpkg,
        name: name.to_string(),
        version: version.to_string(),
        files: files
            .into_iter()
            .map(|(path, hash)| OwnedFile { path, hash })
            .collect(),
        root: None,
    }
}

/// `.list`: one absolute path per line, directories included (`/.` for the root).
fn add_list(prefix: &str, list: &[u8], files: &mut BTreeMap<String, Option<RecordedHash>>) {
    for line in String::from_utf8_lossy(list).lines() {
        if let Some(path) = join(prefix, line.trim_end()).filter(|p| !p.is_empty()) {
            files.entry(path).or_insert(None);
        }
    }
}

/// `.md5sums`: `<32 hex>  <path relative to />` per line.
fn add_md5sums(
    prefix: &str,
    sums: &[u8],
    files: &mut BTreeMap<String, Option<RecordedHash>>,
    report: &mut ParseReport,
) {
    for (number, line) in String::from_utf8_lossy(sums).lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed = line
            .split_once(char::is_whitespace)
            .and_then(|(hex, path)| {
                let hash = RecordedHash::from_hex(HashAlgorithm::Md5, hex)?;
                Some((
                    join(prefix, path.trim_start()).filter(|p| !p.is_empty())?,
                    hash,
                ))
            });
        match parsed {
            Some((path, hash)) => {
                files.insert(path, Some(hash));
            }
            None => report.skip(format!("md5sums line {}: not `<md5>  <path>`", number + 1)),
        }
    }
}

/// `Conffiles:` lines are ` <absolute path> <md5>[ obsolete][ remove-on-upgrade]`; the path may
/// hold spaces, so it is read from the end. `newconffile` stands for a hash not yet recorded.
fn add_conffiles(
    prefix: &str,
    conffiles: Option<&str>,
    files: &mut BTreeMap<String, Option<RecordedHash>>,
    report: &mut ParseReport,
) {
    for line in conffiles
        .unwrap_or("")
        .lines()
        .filter(|l| !l.trim().is_empty())
    {
        let mut words: Vec<&str> = line.split_whitespace().collect();
        while matches!(words.last(), Some(&"obsolete") | Some(&"remove-on-upgrade")) {
            words.pop();
        }
        let (Some(hash), true) = (words.pop(), !words.is_empty()) else {
            report.skip(format!("conffile line without a hash: {line}"));
            continue;
        };
        let Some(path) = join(prefix, &words.join(" ")).filter(|p| !p.is_empty()) else {
            report.skip(format!("conffile path outside the image: {line}"));
            continue;
        };
        let hash = RecordedHash::from_hex(HashAlgorithm::Md5, hash);
        let entry = files.entry(path).or_insert(None);
        if hash.is_some() {
            *entry = hash;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const STATUS: &str = "\
Package: base-files
Status: install ok installed
Architecture: amd64
Version: 12.4+deb12u5
Conffiles:
 /etc/debian_version 6d4c3e2d0f1f6f0b1d1a6b1b1c0f0e0d
 /etc/old.conf 00000000000000000000000000000000 obsolete
Description: Debian base system miscellaneous files

Package: libc6
Status: install ok installed
Architecture: amd64
Multi-Arch: same
Version: 2.36-9+deb12u4

Package: removed
Status: deinstall ok config-files
Version: 1.0

Package: held
Status: hold ok installed
Version: 3

Version: 9
";

    fn info() -> HashMap<&'static str, &'static [u8]> {
        HashMap::from([
            (
                "base-files.list",
                &b"/.\n/etc\n/etc/debian_version\n/usr/lib/os-release\n"[..],
            ),
            (
                "base-files.md5sums",
                &b"0123456789abcdef0123456789abcdef  usr/lib/os-release\n"[..],
            ),
            (
                "libc6:amd64.list",
                &b"/lib/x86_64-linux-gnu/libc.so.6\n"[..],
            ),
            (
                "libc6:amd64.md5sums",
                &b"fedcba9876543210fedcba9876543210  lib/x86_64-linux-gnu/libc.so.6\nbroken\n"[..],
            ),
            ("removed.list", &b"/etc/removed.conf\n"[..]),
        ])
    }

    #[test]
    fn reads_installed_packages_with_lists_sums_and_conffiles() {
        let info = info();
        let lookup = |name: &str| info.get(name).copied();
        let db = read_status_database("", "var/lib/dpkg/status", STATUS.as_bytes(), &lookup, None);
        let names: Vec<&str> = db.packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["base-files", "libc6", "held"]);
        let base = &db.packages[0];
        assert_eq!(base.version, "12.4+deb12u5");
        let paths: Vec<&str> = base.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "etc",
                "etc/debian_version",
                "etc/old.conf",
                "usr/lib/os-release"
            ]
        );
        assert_eq!(
            base.files[1].hash.as_ref().unwrap().to_hex(),
            "6d4c3e2d0f1f6f0b1d1a6b1b1c0f0e0d"
        );
        assert_eq!(base.files[0].hash, None);
        assert_eq!(
            base.files[3].hash.as_ref().unwrap().to_hex(),
            "0123456789abcdef0123456789abcdef"
        );
        let libc = &db.packages[1];
        assert_eq!(libc.files.len(), 1);
        assert!(libc.files[0].hash.is_some());
        // The stanza without Package and the md5sums line without a hash.
        assert_eq!(db.report.skipped, 2, "{:?}", db.report.reasons);
        assert_eq!(db.report.records, 3);
    }

    #[test]
    fn prefix_roots_the_recorded_paths() {
        let info = info();
        let lookup = |name: &str| info.get(name).copied();
        let db = read_status_database(
            "rootfs",
            "rootfs/var/lib/dpkg/status",
            STATUS.as_bytes(),
            &lookup,
            None,
        );
        assert_eq!(
            db.packages[1].files[0].path,
            "rootfs/lib/x86_64-linux-gnu/libc.so.6"
        );
    }

    #[test]
    fn diverted_files_are_found_where_the_diversion_put_them() {
        let info = info();
        let lookup = |name: &str| info.get(name).copied();
        // libc6's file diverted by another package; base-files' os-release diverted by
        // base-files itself (it keeps its path); a truncated last record.
        let diversions = b"/lib/x86_64-linux-gnu/libc.so.6\n/lib/x86_64-linux-gnu/libc.so.6.distrib\nlibc-wrapper\n\
/usr/lib/os-release\n/usr/lib/os-release.real\nbase-files\n/etc/x\n";
        let db = read_status_database(
            "",
            "var/lib/dpkg/status",
            STATUS.as_bytes(),
            &lookup,
            Some(diversions),
        );
        assert_eq!(
            db.packages[1].files[0].path,
            "lib/x86_64-linux-gnu/libc.so.6.distrib"
        );
        assert!(
            db.packages[0]
                .files
                .iter()
                .any(|f| f.path == "usr/lib/os-release")
        );
        assert_eq!(db.report.skipped, 3, "{:?}", db.report.reasons);
    }

    #[test]
    fn reads_distroless_status_d() {
        let stanza = b"Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\n";
        let sums: &[u8] = b"11111111111111111111111111111111  usr/share/zoneinfo/UTC\n";
        let lookup = |name: &str| (name == "tzdata.md5sums").then_some(sums);
        let db = read_status_d("", "var/lib/dpkg/status.d", &[("tzdata", stanza)], &lookup);
        assert_eq!(db.packages.len(), 1);
        assert_eq!(db.packages[0].name, "tzdata");
        assert_eq!(db.packages[0].files[0].path, "usr/share/zoneinfo/UTC");
        assert!(db.packages[0].files[0].hash.is_some());
    }
}
