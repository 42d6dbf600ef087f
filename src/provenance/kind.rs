//! Recognising the files that make up a package database, by path alone. The walker asks this
//! for every path of every layer, so it only looks at the last components with suffix checks:
//! no regex, no allocation.

use super::paths::{file_name, parent, prefix_before};

/// A file that is (part of) a package database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DatabaseKind {
    /// `var/lib/dpkg/status`.
    DpkgStatus,
    /// `var/lib/dpkg/diversions`: files dpkg-divert moved aside.
    DpkgDiversions,
    /// `var/lib/dpkg/info/<pkg>[:arch].list`: the paths a package owns.
    DpkgList,
    /// `var/lib/dpkg/info/<pkg>[:arch].md5sums`: MD5 per file.
    DpkgMd5sums,
    /// `var/lib/dpkg/status.d/<name>`: distroless's one stanza per package.
    DpkgStatusD,
    /// `var/lib/dpkg/status.d/<name>.md5sums`.
    DpkgStatusDMd5sums,
    /// `lib/apk/db/installed`.
    ApkInstalled,
    /// `rpmdb.sqlite` in `var/lib/rpm/` or `usr/lib/sysimage/rpm/`.
    RpmSqlite,
    /// `rpmdb.sqlite-wal` beside it: changes not yet checkpointed into the database.
    RpmSqliteWal,
    /// `Packages` there: Berkeley DB, recognised but not read.
    RpmBerkeleyDb,
    /// `Packages.db` there: NDB, recognised but not read.
    RpmNdb,
    /// `<name>-<version>.dist-info/RECORD`.
    PythonRecord,
    /// `<name>-<version>.dist-info/METADATA`.
    PythonMetadata,
    /// `node_modules/<pkg>/package.json` or `node_modules/@scope/<pkg>/package.json`.
    NpmPackageJson,
    /// `specifications/<name>-<version>.gemspec`.
    Gemspec,
    /// `vendor/composer/installed.json`.
    ComposerInstalled,
    /// `META-INF/maven/<group>/<artifact>/pom.properties`.
    MavenPomProperties,
}

/// Which database file `path` is, if any. `path` is an image path as the walker spells it
/// (leading `/` or `./` tolerated); a database may sit under a prefix (a chroot in the image).
pub fn database_kind(path: &str) -> Option<DatabaseKind> {
    let path = path.trim_start_matches("./").trim_start_matches('/');
    let name = file_name(path);
    let dir = parent(path);
    match name {
        "status" => is_dir(dir, "var/lib/dpkg").then_some(DatabaseKind::DpkgStatus),
        "diversions" => is_dir(dir, "var/lib/dpkg").then_some(DatabaseKind::DpkgDiversions),
        "installed" => is_dir(dir, "lib/apk/db").then_some(DatabaseKind::ApkInstalled),
        "rpmdb.sqlite" => is_rpm_dir(dir).then_some(DatabaseKind::RpmSqlite),
        "rpmdb.sqlite-wal" => is_rpm_dir(dir).then_some(DatabaseKind::RpmSqliteWal),
        "Packages" => is_rpm_dir(dir).then_some(DatabaseKind::RpmBerkeleyDb),
        "Packages.db" => is_rpm_dir(dir).then_some(DatabaseKind::RpmNdb),
        "RECORD" => dir
            .ends_with(".dist-info")
            .then_some(DatabaseKind::PythonRecord),
        "METADATA" => dir
            .ends_with(".dist-info")
            .then_some(DatabaseKind::PythonMetadata),
        "package.json" => is_npm_package_dir(dir).then_some(DatabaseKind::NpmPackageJson),
        "installed.json" => {
            is_dir(dir, "vendor/composer").then_some(DatabaseKind::ComposerInstalled)
        }
        "pom.properties" => is_maven_dir(dir).then_some(DatabaseKind::MavenPomProperties),
        _ => dpkg_info_or_other(dir, name),
    }
}

fn dpkg_info_or_other(dir: &str, name: &str) -> Option<DatabaseKind> {
    if is_dir(dir, "var/lib/dpkg/info") {
        if name.ends_with(".list") {
            return Some(DatabaseKind::DpkgList);
        }
        if name.ends_with(".md5sums") {
            return Some(DatabaseKind::DpkgMd5sums);
        }
        return None;
    }
    if is_dir(dir, "var/lib/dpkg/status.d") {
        // distroless writes the stanza as `<name>` and its sums as `<name>.md5sums`.
        return Some(if name.ends_with(".md5sums") {
            DatabaseKind::DpkgStatusDMd5sums
        } else {
            DatabaseKind::DpkgStatusD
        });
    }
    (name.ends_with(".gemspec") && file_name(dir) == "specifications" && name.len() > 8)
        .then_some(DatabaseKind::Gemspec)
}

/// Whether directory `dir` is `suffix` or ends with `/suffix`.
fn is_dir(dir: &str, suffix: &str) -> bool {
    prefix_before(dir, suffix).is_some()
}

fn is_rpm_dir(dir: &str) -> bool {
    // Fedora 36+ and openSUSE keep the database in /usr/lib/sysimage/rpm (with /var/lib/rpm a
    // symlink to it); older releases in /var/lib/rpm.
    is_dir(dir, "var/lib/rpm") || is_dir(dir, "usr/lib/sysimage/rpm")
}

fn is_npm_package_dir(dir: &str) -> bool {
    let package = file_name(dir);
    let above = parent(dir);
    if package.is_empty() || package.starts_with('.') {
        return false;
    }
    if file_name(above) == "node_modules" {
        return !package.starts_with('@');
    }
    file_name(above).starts_with('@') && file_name(parent(above)) == "node_modules"
}

fn is_maven_dir(dir: &str) -> bool {
    // META-INF/maven/<group>/<artifact>
    let group_dir = parent(dir);
    let maven_dir = parent(group_dir);
    !file_name(dir).is_empty()
        && !file_name(group_dir).is_empty()
        && file_name(maven_dir) == "maven"
        && file_name(parent(maven_dir)) == "META-INF"
}

#[cfg(test)]
mod tests {
    use super::DatabaseKind::*;
    use super::*;

    #[test]
    fn recognises_every_database_path() {
        let cases = [
            ("var/lib/dpkg/status", Some(DpkgStatus)),
            ("/var/lib/dpkg/status", Some(DpkgStatus)),
            ("rootfs/var/lib/dpkg/status", Some(DpkgStatus)),
            ("var/lib/dpkg/status-old", None),
            ("var/lib/dpkg/diversions", Some(DpkgDiversions)),
            ("var/lib/dpkg/diversions-old", None),
            ("var/lib/dpkg/info/libc6:amd64.list", Some(DpkgList)),
            ("var/lib/dpkg/info/bash.md5sums", Some(DpkgMd5sums)),
            ("var/lib/dpkg/info/bash.postinst", None),
            ("var/lib/dpkg/status.d/base-files", Some(DpkgStatusD)),
            (
                "var/lib/dpkg/status.d/base-files.md5sums",
                Some(DpkgStatusDMd5sums),
            ),
            ("lib/apk/db/installed", Some(ApkInstalled)),
            ("var/lib/rpm/rpmdb.sqlite", Some(RpmSqlite)),
            ("usr/lib/sysimage/rpm/rpmdb.sqlite", Some(RpmSqlite)),
            ("var/lib/rpm/rpmdb.sqlite-wal", Some(RpmSqliteWal)),
            ("var/lib/rpm/rpmdb.sqlite-shm", None),
            ("var/lib/rpm/Packages", Some(RpmBerkeleyDb)),
            ("usr/lib/sysimage/rpm/Packages.db", Some(RpmNdb)),
            (
                "usr/lib/python3/site-packages/six-1.16.0.dist-info/RECORD",
                Some(PythonRecord),
            ),
            ("x/six-1.16.0.dist-info/METADATA", Some(PythonMetadata)),
            ("x/six/RECORD", None),
            (
                "app/node_modules/left-pad/package.json",
                Some(NpmPackageJson),
            ),
            (
                "app/node_modules/@types/node/package.json",
                Some(NpmPackageJson),
            ),
            ("app/node_modules/@types/package.json", None),
            ("app/node_modules/left-pad/lib/package.json", None),
            ("app/node_modules/.package-lock.json", None),
            ("app/package.json", None),
            (
                "usr/local/bundle/specifications/rake-13.0.6.gemspec",
                Some(Gemspec),
            ),
            ("app/rake.gemspec", None),
            (
                "app/vendor/composer/installed.json",
                Some(ComposerInstalled),
            ),
            (
                "a.jar!/META-INF/maven/org.x/y/pom.properties",
                Some(MavenPomProperties),
            ),
            ("META-INF/maven/pom.properties", None),
            ("etc/passwd", None),
            ("", None),
        ];
        for (path, kind) in cases {
            assert_eq!(database_kind(path), kind, "{path}");
        }
    }
}
