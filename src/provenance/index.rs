//! The provenance index: which package owns a path, and whether a file's content is what that
//! package shipped. Built from the [`Database`]s of one filesystem state, so the scan can ask
//! about a file as it stands in layer N with the databases as they stand in layer N.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use super::fixture::{is_documentation_path, is_test_or_example_path};
use super::hash::RecordedHash;
use super::package::{Database, Manager};
use super::paths::{join, normalise, parent};

/// An installed package, shared by every file it owns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InstalledPackage {
    /// The package manager that installed it.
    pub manager: Manager,
    /// The package's name as its database records it.
    pub name: String,
    /// The version as its database records it (dpkg and rpm with epoch and release).
    pub version: String,
    /// The database that recorded it (its path in the image).
    pub database: String,
}

/// Who owns a path: the package, the hash recorded for the file (if any), and for packages
/// known by their directory (npm, gem, composer, maven) that directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Owner {
    /// The package that owns the path.
    pub package: Arc<InstalledPackage>,
    /// The hash the database recorded for this file; `None` when it records none (directories,
    /// symlinks, ecosystems without per-file hashes).
    pub hash: Option<RecordedHash>,
    /// The package's install directory, for packages known by their directory.
    pub root: Option<Arc<str>>,
}

/// Whether a file's content is what its package shipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The content hashes to the recorded value.
    Unmodified,
    /// It does not: edited after install, or replaced by a later layer.
    Modified,
    /// No hash is recorded for this file (directory ownership, a conffile dpkg had not yet
    /// hashed, an rpm digest algorithm not read).
    Unverifiable,
}

impl Owner {
    /// Checks `content` (the whole file) against the recorded hash.
    pub fn verify(&self, content: &[u8]) -> Verdict {
        match &self.hash {
            Some(hash) if hash.matches(content) => Verdict::Unmodified,
            Some(_) => Verdict::Modified,
            None => Verdict::Unverifiable,
        }
    }

    /// Checks a digest computed elsewhere (content hashed chunk by chunk with
    /// `owner.hash.algorithm.hasher()`) against the recorded hash.
    pub fn verify_digest(&self, digest: &[u8]) -> Verdict {
        match &self.hash {
            Some(hash) if *hash.digest == *digest => Verdict::Unmodified,
            Some(_) => Verdict::Modified,
            None => Verdict::Unverifiable,
        }
    }

    /// `path` relative to the package's directory, for packages known by their directory.
    pub fn path_in_package<'p>(&self, path: &'p str) -> Option<&'p str> {
        let path = path.trim_start_matches("./").trim_start_matches('/');
        path.strip_prefix(self.root.as_deref()?)?.strip_prefix('/')
    }

    /// Whether `path` is a test, fixture or example path inside this package's directory
    /// (never for packages with per-file records, whose files are judged by their hash).
    pub fn is_test_or_example(&self, path: &str) -> bool {
        self.path_in_package(path)
            .is_some_and(is_test_or_example_path)
    }

    /// Whether `path` is documentation or type declarations inside this npm package's
    /// directory ([`is_documentation_path`]); never for other ecosystems.
    pub fn is_npm_documentation(&self, path: &str) -> bool {
        self.package.manager == Manager::Npm
            && self
                .path_in_package(path)
                .is_some_and(is_documentation_path)
    }
}

/// [`Owner::verify`] as a function.
pub fn verify(owner: &Owner, content: &[u8]) -> Verdict {
    owner.verify(content)
}

/// Paths to owners, built from the databases of one filesystem state.
#[derive(Clone, Debug, Default)]
pub struct ProvenanceIndex {
    files: HashMap<Box<str>, (Arc<InstalledPackage>, Option<RecordedHash>)>,
    roots: HashMap<Box<str>, Arc<InstalledPackage>>,
    /// Files two packages recorded with a hash each; the first claim (in manager order) was
    /// kept.
    conflicts: usize,
}

impl ProvenanceIndex {
    /// Indexes every package of `databases`. When two packages claim one path, a claim with a
    /// hash beats one without, then system package managers (dpkg, apk, rpm) beat pip, which
    /// beats the directory-only ecosystems.
    pub fn build(databases: &[Database]) -> ProvenanceIndex {
        let mut ordered: Vec<&Database> = databases.iter().collect();
        ordered.sort_by_key(|database| database.manager);
        let mut index = ProvenanceIndex::default();
        for database in ordered {
            for package in &database.packages {
                let installed = Arc::new(InstalledPackage {
                    manager: package.manager,
                    name: package.name.clone(),
                    version: package.version.clone(),
                    database: database.path.clone(),
                });
                for file in &package.files {
                    index.claim_file(&file.path, &installed, file.hash.as_ref());
                }
                if let Some(root) = &package.root {
                    index.claim_root(root, &installed);
                }
            }
        }
        index
    }

    fn claim_file(
        &mut self,
        path: &str,
        package: &Arc<InstalledPackage>,
        hash: Option<&RecordedHash>,
    ) {
        match self.files.get_mut(path) {
            None => {
                self.files
                    .insert(path.into(), (package.clone(), hash.cloned()));
            }
            Some(held) => {
                // Directories are listed by every package that puts files in them, always
                // without a hash: only two hashed claims on one path are a real conflict.
                if held.1.is_some() && hash.is_some() && held.0 != *package {
                    self.conflicts += 1;
                }
                if held.1.is_none() && hash.is_some() {
                    *held = (package.clone(), hash.cloned());
                }
            }
        }
    }

    fn claim_root(&mut self, root: &str, package: &Arc<InstalledPackage>) {
        if self.roots.contains_key(root) {
            self.conflicts += 1;
        } else {
            self.roots.insert(root.into(), package.clone());
        }
    }

    /// Who owns `path` (an image path; a leading `/` or `./` is ignored): the file's own
    /// record first, else the innermost package directory holding it (a nested
    /// `node_modules/a/node_modules/b` belongs to `b`).
    pub fn lookup(&self, path: &str) -> Option<Owner> {
        let path = path.trim_start_matches("./").trim_start_matches('/');
        if let Some((package, hash)) = self.files.get(path) {
            return Some(Owner {
                package: package.clone(),
                hash: hash.clone(),
                root: None,
            });
        }
        let mut dir = parent(path);
        while !dir.is_empty() {
            if let Some((root, package)) = self.roots.get_key_value(dir) {
                return Some(Owner {
                    package: package.clone(),
                    hash: None,
                    root: Some(Arc::from(&**root)),
                });
            }
            dir = parent(dir);
        }
        None
    }

    /// Makes recorded paths under directory symlink `link` also known under its target, as
    /// the files are found in the layers: Debian's merged /usr records `/bin/ls` while the
    /// layer holds `usr/bin/ls` behind the symlink `bin -> usr/bin`. A relative `target` is
    /// taken from the link's directory, as the filesystem does.
    pub fn follow_directory_symlink(&mut self, link: &str, target: &str) {
        let Some(link) = normalise(link) else {
            return;
        };
        let target = if target.starts_with('/') {
            normalise(target)
        } else {
            join(parent(&link), target)
        };
        let Some(target) = target.filter(|t| !link.is_empty() && *t != link) else {
            return;
        };
        let under = format!("{link}/");
        let aliased: Vec<_> = self
            .files
            .iter()
            .filter_map(|(path, owner)| {
                Some((
                    format!("{target}/{}", path.strip_prefix(&under)?),
                    owner.clone(),
                ))
            })
            .collect();
        for (path, owner) in aliased {
            self.files.entry(path.into()).or_insert(owner);
        }
        let aliased: Vec<_> = self
            .roots
            .iter()
            .filter_map(|(root, package)| {
                Some((
                    format!("{target}/{}", root.strip_prefix(&under)?),
                    package.clone(),
                ))
            })
            .collect();
        for (root, package) in aliased {
            self.roots.entry(root.into()).or_insert(package);
        }
    }

    /// [`ProvenanceIndex::follow_directory_symlink`] for many links in one pass over the
    /// index: each recorded path is checked against the links by its ancestors, as deep as the
    /// deepest link. A link whose path is not a directory of any record costs nothing.
    pub fn follow_directory_symlinks<'a>(
        &mut self,
        links: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) {
        let mut resolved: HashMap<String, String> = HashMap::new();
        for (link, target) in links {
            let Some(link) = normalise(link) else {
                continue;
            };
            let target = if target.starts_with('/') {
                normalise(target)
            } else {
                join(parent(&link), target)
            };
            if let Some(target) = target.filter(|t| !link.is_empty() && *t != link) {
                resolved.insert(link, target);
            }
        }
        if resolved.is_empty() {
            return;
        }
        let depth = resolved
            .keys()
            .map(|l| l.split('/').count())
            .max()
            .unwrap_or(0);
        let alias = |path: &str| -> Option<String> {
            let mut end = 0;
            for _ in 0..depth {
                end += path[end..].find('/')?;
                if let Some(target) = resolved.get(&path[..end]) {
                    return Some(format!("{target}{}", &path[end..]));
                }
                end += 1;
            }
            None
        };
        let files: Vec<_> = self
            .files
            .iter()
            .filter_map(|(path, owner)| Some((alias(path)?, owner.clone())))
            .collect();
        for (path, owner) in files {
            self.files.entry(path.into()).or_insert(owner);
        }
        let roots: Vec<_> = self
            .roots
            .iter()
            .filter_map(|(root, package)| Some((alias(root)?, package.clone())))
            .collect();
        for (root, package) in roots {
            self.roots.entry(root.into()).or_insert(package);
        }
    }

    /// Paths with their own record.
    pub fn file_count(&self) -> usize {
        self.files.len()
    }

    /// Package directories (directory-only ecosystems).
    pub fn root_count(&self) -> usize {
        self.roots.len()
    }

    /// Files that two packages recorded with a hash each, or package directories claimed twice.
    pub fn conflicts(&self) -> usize {
        self.conflicts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provenance::hash::HashAlgorithm;
    use crate::provenance::package::{OwnedFile, Package};

    fn database(manager: Manager, packages: Vec<Package>) -> Database {
        Database {
            packages,
            ..Database::new(manager, "db")
        }
    }

    fn hashed(path: &str, content: &[u8], algorithm: HashAlgorithm) -> OwnedFile {
        OwnedFile {
            path: path.to_string(),
            hash: RecordedHash::new(algorithm, algorithm.digest(content)),
        }
    }

    fn package(manager: Manager, name: &str, files: Vec<OwnedFile>, root: Option<&str>) -> Package {
        Package {
            manager,
            name: name.to_string(),
            version: "1".to_string(),
            files,
            root: root.map(str::to_string),
        }
    }

    fn sample() -> ProvenanceIndex {
        ProvenanceIndex::build(&[
            database(
                Manager::Npm,
                vec![
                    package(Manager::Npm, "a", vec![], Some("app/node_modules/a")),
                    package(
                        Manager::Npm,
                        "b",
                        vec![],
                        Some("app/node_modules/a/node_modules/b"),
                    ),
                ],
            ),
            database(
                Manager::Dpkg,
                vec![package(
                    Manager::Dpkg,
                    "libgnutls30",
                    vec![
                        hashed("usr/lib/libgnutls.so.30", b"elf", HashAlgorithm::Md5),
                        OwnedFile {
                            path: "bin/tool".into(),
                            hash: None,
                        },
                    ],
                    None,
                )],
            ),
        ])
    }

    #[test]
    fn exact_records_and_innermost_directories() {
        let index = sample();
        let owner = index.lookup("/usr/lib/libgnutls.so.30").unwrap();
        assert_eq!(owner.package.name, "libgnutls30");
        assert_eq!(owner.verify(b"elf"), Verdict::Unmodified);
        assert_eq!(verify(&owner, b"elf\n"), Verdict::Modified);
        let digest = HashAlgorithm::Md5.digest(b"elf");
        assert_eq!(owner.verify_digest(&digest), Verdict::Unmodified);
        assert_eq!(
            index.lookup("bin/tool").unwrap().verify(b"x"),
            Verdict::Unverifiable
        );
        let nested = index
            .lookup("app/node_modules/a/node_modules/b/test/key.pem")
            .unwrap();
        assert_eq!(nested.package.name, "b");
        assert!(nested.is_test_or_example("app/node_modules/a/node_modules/b/test/key.pem"));
        let outer = index.lookup("app/node_modules/a/lib/key.pem").unwrap();
        assert_eq!(outer.package.name, "a");
        assert!(!outer.is_test_or_example("app/node_modules/a/lib/key.pem"));
        assert_eq!(outer.verify(b"anything"), Verdict::Unverifiable);
        assert!(index.lookup("app/test/key.pem").is_none());
        assert!(index.lookup("app/node_modules/ab/x").is_none());
    }

    #[test]
    fn hashed_claims_win_and_conflicts_are_counted() {
        let unhashed = |path: &str| OwnedFile {
            path: path.to_string(),
            hash: None,
        };
        let pip_files = vec![
            hashed("x", b"1", HashAlgorithm::Sha256),
            hashed("y", b"2", HashAlgorithm::Sha256),
        ];
        let dpkg_files = vec![
            unhashed("x"),
            hashed("y", b"2", HashAlgorithm::Md5),
            unhashed("usr"),
        ];
        let index = ProvenanceIndex::build(&[
            database(
                Manager::Pip,
                vec![package(Manager::Pip, "p", pip_files, None)],
            ),
            database(
                Manager::Dpkg,
                vec![package(Manager::Dpkg, "d", dpkg_files, None)],
            ),
            database(
                Manager::Dpkg,
                vec![package(Manager::Dpkg, "e", vec![unhashed("usr")], None)],
            ),
        ]);
        // A hash beats no hash; between two hashes the system package manager wins.
        assert_eq!(index.lookup("x").unwrap().package.name, "p");
        assert_eq!(index.lookup("y").unwrap().package.name, "d");
        // Only y is a conflict: the shared directory `usr` is not.
        assert_eq!(index.conflicts(), 1);
    }

    #[test]
    fn directory_symlinks_alias_recorded_paths() {
        let mut index = sample();
        index.follow_directory_symlink("bin", "usr/bin");
        assert_eq!(
            index.lookup("usr/bin/tool").unwrap().package.name,
            "libgnutls30"
        );
        index.follow_directory_symlink("app/node_modules", "/srv/deps");
        assert_eq!(index.lookup("srv/deps/a/x.js").unwrap().package.name, "a");
        assert_eq!(index.file_count(), 3);
        assert_eq!(index.root_count(), 4);
    }

    #[test]
    fn many_directory_symlinks_in_one_pass() {
        let mut index = sample();
        index.follow_directory_symlinks([
            ("bin", "usr/bin"),
            ("usr/lib", "/opt/lib"),
            ("etc/mtab", "/proc/self/mounts"),
            ("app", "app"),
        ]);
        assert_eq!(
            index.lookup("usr/bin/tool").unwrap().package.name,
            "libgnutls30"
        );
        assert_eq!(
            index
                .lookup("opt/lib/libgnutls.so.30")
                .unwrap()
                .package
                .name,
            "libgnutls30"
        );
        // The original records stay; links to themselves and links over no record add nothing.
        assert_eq!(index.file_count(), 4);
        assert_eq!(index.root_count(), 2);
    }
}
