//! What every database reader returns: packages, the files they own (with the recorded hash
//! where the ecosystem records one), and a count of the records that could not be read.

use serde::Serialize;

use super::hash::RecordedHash;

/// The package manager (or language ecosystem) that recorded a package.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Manager {
    /// Debian and Ubuntu packages (`var/lib/dpkg`), distroless's `status.d` included.
    Dpkg,
    /// Alpine packages (`lib/apk/db/installed`).
    Apk,
    /// RPM packages (Fedora, RHEL, SUSE: `rpmdb.sqlite`).
    Rpm,
    /// Python distributions (`*.dist-info/RECORD`).
    Pip,
    /// npm packages (`node_modules/**/package.json`).
    Npm,
    /// Ruby gems (`specifications/*.gemspec`).
    Gem,
    /// PHP Composer packages (`vendor/composer/installed.json`).
    Composer,
    /// Maven artifacts (`META-INF/maven/**/pom.properties`).
    Maven,
}

impl Manager {
    /// The manager's name as reports show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Manager::Dpkg => "dpkg",
            Manager::Apk => "apk",
            Manager::Rpm => "rpm",
            Manager::Pip => "pip",
            Manager::Npm => "npm",
            Manager::Gem => "gem",
            Manager::Composer => "composer",
            Manager::Maven => "maven",
        }
    }
}

/// One file a package owns: its path inside the image (no leading `/`) and the hash the
/// database recorded for it, if any (directories, symlinks and hash-less ecosystems have none).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OwnedFile {
    /// The path inside the image, without a leading `/`.
    pub path: String,
    /// The recorded hash, if the database has one for this file.
    pub hash: Option<RecordedHash>,
}

/// One installed package.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Package {
    /// The manager whose database lists it.
    pub manager: Manager,
    /// The package's name.
    pub name: String,
    /// The package's version, as the database records it.
    pub version: String,
    /// Files listed one by one (dpkg, apk, rpm, pip).
    pub files: Vec<OwnedFile>,
    /// The directory the package was installed into, for ecosystems that record no file list
    /// (npm, gem, composer, maven): every file under it belongs to the package. No trailing `/`.
    pub root: Option<String>,
}

impl Package {
    /// A package known only by the directory it was installed into.
    pub fn rooted(manager: Manager, name: String, version: String, root: String) -> Package {
        Package {
            manager,
            name,
            version,
            files: Vec::new(),
            root: Some(root),
        }
    }
}

/// How much of one database was read. Bad records are skipped, never fatal; the first few
/// reasons are kept for the report and the rest only counted, so garbage input cannot grow the
/// report without bound.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ParseReport {
    /// Records (packages, or file lines for per-file lists) read.
    pub records: usize,
    /// Records skipped.
    pub skipped: usize,
    /// Why, for the first [`ParseReport::KEPT_REASONS`] skipped records.
    pub reasons: Vec<String>,
}

impl ParseReport {
    /// How many skip reasons are kept; later ones are only counted.
    pub const KEPT_REASONS: usize = 16;

    /// Counts one skipped record, keeping its reason while there is room.
    pub fn skip(&mut self, reason: impl Into<String>) {
        self.skipped += 1;
        if self.reasons.len() < Self::KEPT_REASONS {
            self.reasons.push(reason.into());
        }
    }
}

/// One package database found in the image, as read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Database {
    /// The manager that wrote it.
    pub manager: Manager,
    /// Where it was found (`var/lib/dpkg/status`, `usr/lib/python3/site-packages/x.dist-info/RECORD`).
    pub path: String,
    /// The packages read from it.
    pub packages: Vec<Package>,
    /// How much of it was read, and what was skipped.
    pub report: ParseReport,
    /// Set when the database was recognised but its format is not read (rpm's Berkeley DB), or
    /// could not be opened at all: a sentence for the report.
    pub not_read: Option<String>,
}

impl Database {
    /// An empty database of `manager` at `path`, for a reader to fill.
    pub fn new(manager: Manager, path: &str) -> Database {
        Database {
            manager,
            path: path.to_string(),
            packages: Vec::new(),
            report: ParseReport::default(),
            not_read: None,
        }
    }

    /// A database that was recognised but not read, saying `why`.
    pub fn unread(manager: Manager, path: &str, why: String) -> Database {
        Database {
            not_read: Some(why),
            ..Database::new(manager, path)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manager_names_are_the_serialized_names() {
        use Manager::*;
        for manager in [Dpkg, Apk, Rpm, Pip, Npm, Gem, Composer, Maven] {
            let json = serde_json::to_string(&manager).unwrap();
            assert_eq!(json, format!("\"{}\"", manager.as_str()));
        }
    }

    #[test]
    fn report_keeps_the_first_reasons_and_counts_all() {
        let mut report = ParseReport::default();
        for i in 0..1000 {
            report.skip(format!("bad record {i}"));
        }
        assert_eq!(report.skipped, 1000);
        assert_eq!(report.reasons.len(), ParseReport::KEPT_REASONS);
        assert_eq!(report.reasons[0], "bad record 0");
    }
}
