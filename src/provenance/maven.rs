//! Maven: a jar built by Maven carries `META-INF/maven/<groupId>/<artifactId>/pom.properties`
//! (`groupId=`, `artifactId=`, `version=`). Only that recording is read here: the artifact owns
//! the tree the `META-INF` sits in (an exploded directory in a layer, read by
//! [`read_pom_properties`]; or the jar itself, whose members the nested-archive decoder scans
//! and tags with the jar's [`MavenArtifact`], chosen by [`jar_artifact_candidate`]). Maven
//! records no per-file hashes, and an application's own jar carries the same file, so this
//! says "built by Maven as group:artifact", not "third-party".

use serde::{Deserialize, Serialize};

use super::package::{Database, Manager, Package};
use super::paths::{file_name, parent, prefix_before};

/// The largest `pom.properties` read (Maven writes a few hundred bytes).
pub const POM_PROPERTIES_MAX: u64 = 64 << 10;

/// The Maven identity of one jar (or war, ear): what its `pom.properties` records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MavenArtifact {
    /// `groupId:artifactId`.
    pub name: String,
    /// `version`, empty when not recorded.
    pub version: String,
    /// Where the recording is: the jar, then `!/META-INF/maven/…/pom.properties`.
    pub recorded_at: String,
}

/// Reads the `pom.properties` at `path`.
pub fn read_pom_properties(path: &str, bytes: &[u8]) -> Database {
    let mut database = Database::new(Manager::Maven, path);
    let artifact_dir = parent(path);
    let group_dir = parent(artifact_dir);
    let Some(root) = prefix_before(parent(group_dir), "META-INF/maven").filter(|r| !r.is_empty())
    else {
        // At the image root the artifact would own every file in the image.
        database.report.skip("pom.properties at the image root");
        return database;
    };
    let (name, version) = artifact_of(path, bytes);
    database.report.records += 1;
    database.packages.push(Package::rooted(
        Manager::Maven,
        name,
        version,
        root.to_string(),
    ));
    database
}

/// `groupId:artifactId` and `version` from a `pom.properties` at `path`; the group and the
/// artifact fall back to the directories the file sits in.
fn artifact_of(path: &str, bytes: &[u8]) -> (String, String) {
    let artifact_dir = parent(path);
    let group_dir = parent(artifact_dir);
    let text = String::from_utf8_lossy(bytes);
    let property = |key: &str| {
        text.lines()
            .map(str::trim_start)
            .filter(|line| !line.starts_with(['#', '!']))
            .find_map(|line| {
                let (k, v) = line.split_once(['=', ':'])?;
                (k.trim() == key).then(|| v.trim().to_string())
            })
            .filter(|value| !value.is_empty())
    };
    let group = property("groupId").unwrap_or_else(|| file_name(group_dir).to_string());
    let artifact = property("artifactId").unwrap_or_else(|| file_name(artifact_dir).to_string());
    (
        format!("{group}:{artifact}"),
        property("version").unwrap_or_default(),
    )
}

/// The artifact directory name of `member` when it is a jar's own recording,
/// `META-INF/maven/<group>/<artifact>/pom.properties` at the jar's root.
fn recorded_artifact(member: &str) -> Option<&str> {
    let rest = member.strip_prefix("META-INF/maven/")?;
    let mut parts = rest.split('/');
    let (group, artifact, file) = (parts.next()?, parts.next()?, parts.next()?);
    let plain = |part: &str| !part.is_empty() && part != "." && part != "..";
    (plain(group) && plain(artifact) && file == "pom.properties" && parts.next().is_none())
        .then_some(artifact)
}

/// Which of a jar's members (`names`) records the jar's own Maven identity. One recording is
/// the jar's. A shaded jar carries the recordings of every artifact it absorbed: then the one
/// whose artifactId the jar's file name (`jar_name`, e.g. `guava-33.0.jar`) starts with, and
/// none when no single one does (its members are not attributed rather than guessed at).
pub fn jar_artifact_candidate<'n>(
    names: impl IntoIterator<Item = &'n str>,
    jar_name: &str,
) -> Option<&'n str> {
    let recordings: Vec<(&str, &str)> = names
        .into_iter()
        .filter_map(|name| Some((name, recorded_artifact(name)?)))
        .collect();
    if let [(only, _)] = recordings.as_slice() {
        return Some(only);
    }
    let stem = file_name(jar_name);
    let named: Vec<&str> = recordings
        .iter()
        .filter(|(_, artifact)| {
            stem.strip_prefix(artifact).is_some_and(|after| {
                after.starts_with('.')
                    || after
                        .strip_prefix('-')
                        .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit()))
            })
        })
        .map(|(name, _)| *name)
        .collect();
    match named.as_slice() {
        [one] => Some(one),
        _ => None,
    }
}

/// The identity recorded by `member` (a `pom.properties` chosen by
/// [`jar_artifact_candidate`]) of the jar at `jar` (its path for messages).
pub fn jar_artifact(jar: &str, member: &str, bytes: &[u8]) -> MavenArtifact {
    let (name, version) = artifact_of(member, bytes);
    MavenArtifact {
        name,
        version,
        recorded_at: format!("{jar}!/{member}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_properties_inside_a_jar() {
        let props = b"#Generated by Maven\n#Tue Jan 01\nversion=2.17.1\ngroupId=org.apache.logging.log4j\nartifactId=log4j-core\n";
        let db = read_pom_properties(
            "app/lib/log4j-core.jar!/META-INF/maven/org.apache.logging.log4j/log4j-core/pom.properties",
            props,
        );
        let package = &db.packages[0];
        assert_eq!(package.name, "org.apache.logging.log4j:log4j-core");
        assert_eq!(package.version, "2.17.1");
        assert_eq!(package.root.as_deref(), Some("app/lib/log4j-core.jar!"));
    }

    #[test]
    fn image_root_recording_is_refused() {
        let db = read_pom_properties("META-INF/maven/g/a/pom.properties", b"version=1\n");
        assert!(db.packages.is_empty());
        assert_eq!(db.report.skipped, 1);
    }

    #[test]
    fn a_jars_own_recording_is_chosen() {
        let one = [
            "META-INF/MANIFEST.MF",
            "META-INF/maven/g/a/pom.properties",
            "a/B.class",
        ];
        assert_eq!(
            jar_artifact_candidate(one, "lib/x.jar"),
            Some("META-INF/maven/g/a/pom.properties")
        );
        // A shaded jar: the recording named like the jar.
        let shaded = [
            "META-INF/maven/com.google.guava/guava/pom.properties",
            "META-INF/maven/com.google.guava/failureaccess/pom.properties",
            "META-INF/maven/org.x/guava-extra/pom.properties",
        ];
        assert_eq!(
            jar_artifact_candidate(shaded, "app/lib/guava-33.0.0-jre.jar"),
            Some("META-INF/maven/com.google.guava/guava/pom.properties")
        );
        assert_eq!(jar_artifact_candidate(shaded, "app/app.jar"), None);
        // Not at the jar's root, or not the file: no recording.
        let nested = [
            "BOOT-INF/classes/META-INF/maven/g/a/pom.properties",
            "META-INF/maven/g/pom.properties",
            "META-INF/maven/g/a/pom.xml",
        ];
        assert_eq!(jar_artifact_candidate(nested, "app.jar"), None);
        let artifact = jar_artifact(
            "app/lib/x.jar",
            "META-INF/maven/g/a/pom.properties",
            b"version=1.2\ngroupId=org.g\nartifactId=\n",
        );
        assert_eq!(artifact.name, "org.g:a");
        assert_eq!(artifact.version, "1.2");
        assert_eq!(
            artifact.recorded_at,
            "app/lib/x.jar!/META-INF/maven/g/a/pom.properties"
        );
    }
}
