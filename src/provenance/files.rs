//! The package-database files of one filesystem state (the image as it stands at some layer),
//! kept by path, and reading them all into [`Database`]s. Layers are applied in order: a write
//! replaces the earlier content of a path, a whiteout removes a path and everything under it.
//! Contents are shared (`Arc`), so keeping one state per layer costs little.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::kind::{DatabaseKind, database_kind};
use super::package::Database;
use super::paths::{file_name, join, parent, prefix_before};
use super::{apk, composer, dpkg, gem, maven, npm, python, rpm};

/// Database files by path (canonical image paths, no leading `/`).
#[derive(Clone, Debug, Default)]
pub struct DatabaseFiles {
    files: BTreeMap<String, (DatabaseKind, Arc<[u8]>)>,
}

impl DatabaseFiles {
    /// No database files yet: the state below the first layer.
    pub fn new() -> DatabaseFiles {
        DatabaseFiles::default()
    }

    /// Keeps `content` as the current content of `path` when `path` is a database file;
    /// returns whether it was kept.
    pub fn insert(&mut self, path: &str, content: impl Into<Arc<[u8]>>) -> bool {
        let path = path.trim_start_matches("./").trim_start_matches('/');
        let Some(kind) = database_kind(path) else {
            return false;
        };
        self.files.insert(path.to_string(), (kind, content.into()));
        true
    }

    /// Forgets `path` and everything under it (a whiteout of a file or a directory).
    pub fn remove(&mut self, path: &str) {
        let path = path
            .trim_start_matches("./")
            .trim_start_matches('/')
            .trim_end_matches('/');
        let under = format!("{path}/");
        self.files
            .retain(|kept, _| kept != path && !kept.starts_with(&under));
    }

    /// How many database files are kept.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether no database file is kept (an image without package databases).
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    fn content(&self, path: &str) -> Option<&[u8]> {
        self.files.get(path).map(|(_, content)| &**content)
    }

    /// Reads every database these files make up. Files that only complete another one (dpkg's
    /// `info/` files, a dist-info's METADATA) are read with it, and ignored without it.
    pub fn read(&self) -> Vec<Database> {
        let mut databases = Vec::new();
        let mut status_d_dirs: BTreeMap<&str, Vec<(&str, &[u8])>> = BTreeMap::new();
        for (path, (kind, content)) in &self.files {
            let content: &[u8] = content;
            match kind {
                DatabaseKind::DpkgStatus => databases.push(self.read_dpkg(path, content)),
                DatabaseKind::DpkgStatusD => {
                    let name = file_name(path);
                    status_d_dirs
                        .entry(parent(path))
                        .or_default()
                        .push((name, content));
                }
                DatabaseKind::ApkInstalled => {
                    let prefix = prefix_before(path, "lib/apk/db/installed").unwrap_or("");
                    databases.push(apk::read_installed(prefix, path, content));
                }
                DatabaseKind::RpmSqlite => databases.push(self.read_rpm_sqlite(path, content)),
                DatabaseKind::RpmBerkeleyDb => {
                    databases.push(rpm::unread_database(path, rpm::UnreadFormat::BerkeleyDb))
                }
                DatabaseKind::RpmNdb => {
                    databases.push(rpm::unread_database(path, rpm::UnreadFormat::Ndb))
                }
                DatabaseKind::PythonRecord => {
                    let metadata = self.content(&format!("{}/METADATA", parent(path)));
                    databases.push(python::read_record(path, content, metadata));
                }
                DatabaseKind::NpmPackageJson => {
                    databases.push(npm::read_package_json(path, content))
                }
                DatabaseKind::Gemspec => databases.push(gem::read_gemspec(path, content)),
                DatabaseKind::ComposerInstalled => {
                    databases.push(composer::read_installed_json(path, content))
                }
                DatabaseKind::MavenPomProperties => {
                    databases.push(maven::read_pom_properties(path, content))
                }
                DatabaseKind::DpkgDiversions
                | DatabaseKind::DpkgList
                | DatabaseKind::DpkgMd5sums
                | DatabaseKind::DpkgStatusDMd5sums
                | DatabaseKind::RpmSqliteWal
                | DatabaseKind::PythonMetadata => {}
            }
        }
        for (dir, stanzas) in status_d_dirs {
            let prefix = prefix_before(dir, "var/lib/dpkg/status.d").unwrap_or("");
            let md5sums = |name: &str| self.content(&format!("{dir}/{name}"));
            databases.push(dpkg::read_status_d(prefix, dir, &stanzas, &md5sums));
        }
        databases
    }

    fn read_dpkg(&self, status_path: &str, status: &[u8]) -> Database {
        let prefix = prefix_before(status_path, "var/lib/dpkg/status").unwrap_or("");
        let info_dir = join(prefix, "var/lib/dpkg/info").unwrap_or_default();
        let info_file = |name: &str| self.content(&format!("{info_dir}/{name}"));
        let diversions =
            join(prefix, "var/lib/dpkg/diversions").and_then(|path| self.content(&path));
        dpkg::read_status_database(prefix, status_path, status, &info_file, diversions)
    }

    /// rpm closes its database with the write-ahead log checkpointed and empty; a WAL that
    /// still holds changes (rpm stopped mid-transaction) is said not to be read.
    fn read_rpm_sqlite(&self, path: &str, content: &[u8]) -> Database {
        let mut database = rpm::read_sqlite(rpm_prefix(path), path, content);
        let wal = self.content(&format!("{path}-wal")).map_or(0, <[u8]>::len);
        if wal > 0 {
            database.report.skip(format!(
                "{path}-wal holds {wal} bytes of changes not checkpointed into the database; they are not read"
            ));
        }
        database
    }
}

fn rpm_prefix(path: &str) -> &str {
    prefix_before(path, "var/lib/rpm/rpmdb.sqlite")
        .or_else(|| prefix_before(path, "usr/lib/sysimage/rpm/rpmdb.sqlite"))
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provenance::index::ProvenanceIndex;
    use crate::provenance::package::Manager;

    #[test]
    fn keeps_only_database_files_and_applies_whiteouts() {
        let mut files = DatabaseFiles::new();
        assert!(!files.insert("etc/passwd", &b"root"[..]));
        assert!(files.is_empty());
        assert!(files.insert(
            "/var/lib/dpkg/status",
            &b"Package: a\nStatus: install ok installed\n"[..]
        ));
        assert!(files.insert("var/lib/dpkg/info/a.list", &b"/usr/bin/a\n"[..]));
        assert!(files.insert("app/node_modules/x/package.json", &b"{\"name\":\"x\"}"[..]));
        assert_eq!(files.len(), 3);
        let databases = files.read();
        assert_eq!(databases.len(), 2);
        assert_eq!(databases[0].manager, Manager::Npm);
        assert_eq!(databases[1].packages[0].files[0].path, "usr/bin/a");
        files.remove("app/node_modules");
        files.remove("var/lib/dpkg/info/a.list");
        let databases = files.read();
        assert_eq!(databases.len(), 1);
        assert!(databases[0].packages[0].files.is_empty());
    }

    #[test]
    fn reads_distroless_dirs_and_unread_rpm_formats() {
        let mut files = DatabaseFiles::new();
        files.insert(
            "var/lib/dpkg/status.d/tzdata",
            &b"Package: tzdata\nVersion: 1\n"[..],
        );
        files.insert(
            "var/lib/dpkg/status.d/tzdata.md5sums",
            &b"11111111111111111111111111111111  usr/share/zoneinfo/UTC\n"[..],
        );
        files.insert("var/lib/rpm/Packages", &b"\0\0\0\0bdb"[..]);
        files.insert(
            "usr/lib/sysimage/rpm/rpmdb.sqlite",
            &b"SQLite format 3\0"[..],
        );
        files.insert("usr/lib/sysimage/rpm/rpmdb.sqlite-wal", &[0u8; 32][..]);
        files.insert("x/usr/lib/sysimage/rpm/Packages.db", &b"NDB"[..]);
        let databases = files.read();
        assert_eq!(databases.len(), 4);
        let ndb = databases[2].not_read.as_deref().unwrap();
        assert!(
            ndb.starts_with("rpm database in NDB format is not read"),
            "{ndb}"
        );
        assert_eq!(databases[2].path, "x/usr/lib/sysimage/rpm/Packages.db");
        let wal_reason = &databases[0].report.reasons[0];
        assert!(
            wal_reason.contains("rpmdb.sqlite-wal holds 32 bytes"),
            "{wal_reason}"
        );
        let note = databases[1].not_read.as_deref().unwrap();
        assert_eq!(
            note,
            "rpm database in Berkeley DB format is not read: files from its packages are not known to be vendor content"
        );
        assert_eq!(databases[3].path, "var/lib/dpkg/status.d");
        assert_eq!(databases[3].packages[0].files.len(), 1);
    }

    /// Every database path a reader handles, with a small valid input for it.
    fn samples() -> Vec<(&'static str, Vec<u8>)> {
        vec![
            ("var/lib/dpkg/status", b"Package: a\nStatus: install ok installed\nVersion: 1\nConffiles:\n /etc/a 0123456789abcdef0123456789abcdef\n".to_vec()),
            ("var/lib/dpkg/info/a.list", b"/.\n/etc/a\n".to_vec()),
            ("var/lib/dpkg/diversions", b"/etc/a\n/etc/a.orig\nb\n".to_vec()),
            ("var/lib/dpkg/info/a.md5sums", b"0123456789abcdef0123456789abcdef  etc/a\n".to_vec()),
            ("var/lib/dpkg/status.d/b", b"Package: b\nVersion: 2\n".to_vec()),
            ("var/lib/dpkg/status.d/b.md5sums", b"0123456789abcdef0123456789abcdef  etc/b\n".to_vec()),
            ("lib/apk/db/installed", b"P:c\nV:1\nF:etc\nR:c\nZ:Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=\n".to_vec()),
            ("var/lib/rpm/rpmdb.sqlite", b"SQLite format 3\0".to_vec()),
            ("var/lib/rpm/rpmdb.sqlite-wal", vec![0; 16]),
            ("var/lib/rpm/Packages", vec![0; 16]),
            ("var/lib/rpm/Packages.db", vec![0; 16]),
            ("site/d-1.dist-info/RECORD", b"d.py,sha256=AAAA,1\n\"q,\"\"x\",,\n".to_vec()),
            ("site/d-1.dist-info/METADATA", b"Name: d\nVersion: 1\n".to_vec()),
            ("node_modules/e/package.json", br#"{"name":"e","version":"1"}"#.to_vec()),
            ("specifications/f-1.gemspec", b"s.name = \"f\"\ns.version = \"1\"\n".to_vec()),
            ("vendor/composer/installed.json", br#"{"packages":[{"name":"g/g","install-path":"../g/g"}]}"#.to_vec()),
            ("x.jar!/META-INF/maven/h/h/pom.properties", b"version=1\n".to_vec()),
        ]
    }

    #[test]
    fn truncated_and_random_input_never_panics() {
        let samples = samples();
        for (path, _) in &samples {
            assert!(database_kind(path).is_some(), "{path}");
        }
        // Every prefix of every valid input, all files at once (so the dpkg and dist-info
        // pairings see truncated partners too).
        let longest = samples.iter().map(|(_, bytes)| bytes.len()).max().unwrap();
        for len in 0..=longest {
            let mut files = DatabaseFiles::new();
            for (path, bytes) in &samples {
                files.insert(path, &bytes[..len.min(bytes.len())]);
            }
            ProvenanceIndex::build(&files.read());
        }
        // Arbitrary bytes, including NULs, invalid UTF-8 and lone quotes.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..300 {
            let mut files = DatabaseFiles::new();
            for (path, _) in &samples {
                let len = (next() % (round + 1)) as usize;
                let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                files.insert(path, bytes);
            }
            ProvenanceIndex::build(&files.read());
        }
    }
}
