//! Package provenance on databases made by the real tools: a `.deb` built with `dpkg-deb` and
//! installed with `dpkg --root`, a wheel installed with `pip install --prefix`, an rpm built
//! with `rpmbuild` and installed with `rpm --root` (its `rpmdb.sqlite`). apk has no tool in
//! Debian, so its database is written in the documented format. Each test reads the resulting
//! tree the way the scanner will see a layer (paths relative to the image root, bytes in
//! memory), builds the index, and checks that installed files are found with the right
//! package and version and that `verify` tells the shipped bytes from edited ones.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use stowaway::provenance::{
    DatabaseFiles, HashAlgorithm, Manager, Owner, ProvenanceIndex, Verdict, database_kind,
};

/// A file's content, distinctive enough to show that the index hashed the right bytes.
const KEY: &[u8] = b"-----BEGIN PRIVATE KEY-----\nnot a real key, a provenance probe\n";

/// Runs `command`, failing the test with its output when it fails.
fn run(command: &mut Command) {
    let output = command.output().expect("spawn tool");
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Every regular file under `root`, as (image path, path on disk).
fn tree(root: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                pending.push(entry.path());
            } else if kind.is_file() {
                let relative = entry
                    .path()
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.push((relative, entry.path()));
            }
        }
    }
    out.sort();
    out
}

/// The index of the databases in `root`, read as the scanner will: only the paths
/// `database_kind` recognises are kept, from bytes in memory.
fn index_of(root: &Path) -> (ProvenanceIndex, Vec<stowaway::provenance::Database>) {
    let mut files = DatabaseFiles::new();
    for (path, disk) in tree(root) {
        if database_kind(&path).is_some() {
            assert!(files.insert(&path, fs::read(disk).unwrap()));
        }
    }
    let databases = files.read();
    (ProvenanceIndex::build(&databases), databases)
}

fn assert_owner(owner: &Owner, manager: Manager, name: &str, version: &str) {
    assert_eq!(owner.package.manager, manager, "{owner:?}");
    assert_eq!(owner.package.name, name, "{owner:?}");
    assert_eq!(owner.package.version, version, "{owner:?}");
}

/// The shipped bytes verify; one changed byte, or an appended secret, does not.
fn assert_verifies(owner: &Owner, shipped: &[u8]) {
    assert_eq!(owner.verify(shipped), Verdict::Unmodified, "{owner:?}");
    let mut edited = shipped.to_vec();
    edited[0] ^= 1;
    assert_eq!(owner.verify(&edited), Verdict::Modified);
    let mut appended = shipped.to_vec();
    appended.extend_from_slice(b"AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n");
    assert_eq!(owner.verify(&appended), Verdict::Modified);
}

#[test]
fn dpkg_database_written_by_dpkg() {
    if !support::tool_available("dpkg-deb") || !support::tool_available("dpkg") {
        return;
    }
    let work = support::tempdir();
    let package = work.path().join("pkg");
    fs::create_dir_all(package.join("DEBIAN")).unwrap();
    fs::create_dir_all(package.join("usr/share/stowaway-probe/test")).unwrap();
    fs::create_dir_all(package.join("etc")).unwrap();
    fs::create_dir_all(package.join("bin")).unwrap();
    fs::write(package.join("bin/stowaway-probe-tool"), "#!/bin/sh\n").unwrap();
    fs::write(
        package.join("usr/share/stowaway-probe/diverted.txt"),
        "shipped\n",
    )
    .unwrap();
    fs::write(
        package.join("DEBIAN/control"),
        "Package: stowaway-probe\nVersion: 1:1.2-3\nArchitecture: all\n\
         Maintainer: Probe <probe@example.com>\nDescription: provenance probe\n",
    )
    .unwrap();
    fs::write(
        package.join("DEBIAN/conffiles"),
        "/etc/stowaway-probe.conf\n",
    )
    .unwrap();
    fs::write(package.join("usr/share/stowaway-probe/test/key.pem"), KEY).unwrap();
    fs::write(
        package.join("etc/stowaway-probe.conf"),
        "password = changeme\n",
    )
    .unwrap();
    let deb = work.path().join("probe.deb");
    run(Command::new("dpkg-deb")
        .arg("--root-owner-group")
        .arg("--build")
        .arg(&package)
        .arg(&deb));

    let root = work.path().join("root");
    let admin = root.join("var/lib/dpkg");
    fs::create_dir_all(admin.join("info")).unwrap();
    fs::create_dir_all(admin.join("updates")).unwrap();
    fs::write(admin.join("status"), "").unwrap();
    // A merged /usr, as in Debian 12 images: dpkg records /bin/…, the file lands in usr/bin/.
    fs::create_dir_all(root.join("usr/bin")).unwrap();
    std::os::unix::fs::symlink("usr/bin", root.join("bin")).unwrap();
    // The administrator diverts one of the package's files before installing it.
    run(Command::new("dpkg-divert")
        .arg(format!("--root={}", root.display()))
        .arg(format!("--admindir={}", admin.display()))
        .args(["--local", "--rename", "--add", "--divert"])
        .args([
            "/usr/share/stowaway-probe/diverted.txt.distrib",
            "/usr/share/stowaway-probe/diverted.txt",
        ]));
    run(Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .arg(format!("--admindir={}", admin.display()))
        .args([
            "--log=/dev/null",
            "--force-script-chrootless",
            "--force-not-root",
            "-i",
        ])
        .arg(&deb));

    let (index, databases) = index_of(&root);
    assert_eq!(databases.len(), 1, "{databases:#?}");
    assert_eq!(databases[0].report.skipped, 0, "{:?}", databases[0].report);
    let key = index
        .lookup("usr/share/stowaway-probe/test/key.pem")
        .expect("key.pem owned");
    assert_owner(&key, Manager::Dpkg, "stowaway-probe", "1:1.2-3");
    assert_eq!(key.hash.as_ref().unwrap().algorithm, HashAlgorithm::Md5);
    assert_verifies(&key, KEY);
    // The conffile: hashed in the status file's Conffiles as well as md5sums.
    let conf = index
        .lookup("/etc/stowaway-probe.conf")
        .expect("conffile owned");
    assert_verifies(&conf, b"password = changeme\n");
    // The directories dpkg lists have no hash; a file it did not install has no owner.
    assert_eq!(
        index
            .lookup("usr/share/stowaway-probe")
            .unwrap()
            .verify(b""),
        Verdict::Unverifiable
    );
    assert!(
        index
            .lookup("usr/share/stowaway-probe/test/other.pem")
            .is_none()
    );
}

#[test]
fn pip_record_written_by_pip() {
    if !support::tool_available("python3") {
        return;
    }
    let work = support::tempdir();
    let wheel = work.path().join("stowaway_probe-0.1-py3-none-any.whl");
    write_wheel(&wheel);
    let root = work.path().join("root");
    // --prefix as an image's Python lays out /usr/local: the package in site-packages (or
    // Debian's dist-packages), the script in bin/, recorded as ../../../bin/… in RECORD.
    run(Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--no-index",
            "--no-deps",
            "--no-cache-dir",
        ])
        .args(["--disable-pip-version-check", "--quiet", "--prefix"])
        .arg(root.join("usr/local"))
        .arg(&wheel));

    let (index, databases) = index_of(&root);
    assert_eq!(databases.len(), 1, "{databases:#?}");
    assert_eq!(databases[0].manager, Manager::Pip);
    assert_eq!(databases[0].report.skipped, 0, "{:?}", databases[0].report);
    let mut hashed = 0;
    for (path, disk) in tree(&root) {
        let owner = index
            .lookup(&path)
            .unwrap_or_else(|| panic!("{path} not owned"));
        assert_owner(&owner, Manager::Pip, "stowaway-probe", "0.1");
        let content = fs::read(disk).unwrap();
        match owner.verify(&content) {
            Verdict::Unmodified => hashed += 1,
            // RECORD lists itself and the compiled .pyc files without a hash.
            Verdict::Unverifiable => {
                assert!(path.ends_with("RECORD") || path.ends_with(".pyc"), "{path}")
            }
            Verdict::Modified => panic!("{path} is as pip installed it"),
        }
        if path.ends_with("key.pem") || path.ends_with("bin/stowaway-probe-tool") {
            assert_verifies(&owner, &content);
        }
    }
    assert!(hashed >= 4, "{hashed} files verified");
    assert!(
        tree(&root)
            .iter()
            .any(|(path, _)| path.ends_with("bin/stowaway-probe-tool"))
    );
}

/// A pure-Python wheel (the wheel format: a zip with a `.dist-info` holding METADATA, WHEEL
/// and RECORD), with a data file and a script so RECORD gets paths outside site-packages.
fn write_wheel(path: &Path) {
    let members: [(&str, &[u8]); 5] = [
        ("probe_pkg/__init__.py", b"VERSION = '0.1'\n"),
        ("probe_pkg/data/key.pem", KEY),
        ("stowaway_probe-0.1.data/scripts/stowaway-probe-tool", b"#!python\nprint('probe')\n"),
        ("stowaway_probe-0.1.dist-info/METADATA", b"Metadata-Version: 2.1\nName: stowaway-probe\nVersion: 0.1\n"),
        (
            "stowaway_probe-0.1.dist-info/WHEEL",
            b"Wheel-Version: 1.0\nGenerator: stowaway-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        ),
    ];
    support::zips::write_wheel(path, "stowaway_probe-0.1.dist-info", &members);
}

#[test]
fn rpm_sqlite_database_written_by_rpm() {
    if !support::tool_available("rpmbuild") || !support::tool_available("rpm") {
        return;
    }
    let work = support::tempdir();
    let spec = work.path().join("probe.spec");
    fs::write(
        &spec,
        "Name: stowaway-probe\nVersion: 1.0\nRelease: 2\nSummary: provenance probe\nLicense: MIT\n\
         BuildArch: noarch\n%description\nprovenance probe\n%install\n\
         mkdir -p %{buildroot}/usr/share/stowaway-probe/tests\n\
         printf 'key\\n' > %{buildroot}/usr/share/stowaway-probe/tests/key.pem\n\
         %files\n/usr/share/stowaway-probe\n",
    )
    .unwrap();
    run(Command::new("rpmbuild")
        .arg("-bb")
        .arg("--define")
        .arg(format!("_topdir {}", work.path().join("build").display()))
        .arg(&spec));
    let rpm_file = work
        .path()
        .join("build/RPMS/noarch/stowaway-probe-1.0-2.noarch.rpm");
    let root = work.path().join("root");
    fs::create_dir_all(&root).unwrap();
    // Debian's rpm keeps its own database in ~/.rpmdb; an image keeps it in /var/lib/rpm.
    // Its backend default is sqlite (4.18), named here so the test does not depend on it.
    run(Command::new("rpm")
        .arg("--root")
        .arg(&root)
        .args(["--dbpath", "/var/lib/rpm", "--define", "_db_backend sqlite"])
        .args(["-i", "--nodeps", "--noscripts"])
        .arg(&rpm_file));
    assert!(root.join("var/lib/rpm/rpmdb.sqlite").is_file());

    let (index, databases) = index_of(&root);
    assert_eq!(databases.len(), 1, "{databases:#?}");
    assert_eq!(databases[0].not_read, None);
    assert_eq!(databases[0].report.skipped, 0, "{:?}", databases[0].report);
    let key = index
        .lookup("usr/share/stowaway-probe/tests/key.pem")
        .expect("key.pem owned");
    assert_owner(&key, Manager::Rpm, "stowaway-probe", "1.0-2");
    assert_eq!(key.hash.as_ref().unwrap().algorithm, HashAlgorithm::Sha256);
    assert_verifies(&key, b"key\n");
    // The directory is listed too, without a digest.
    let dir = index
        .lookup("usr/share/stowaway-probe")
        .expect("directory owned");
    assert_eq!(dir.verify(b""), Verdict::Unverifiable);
}

#[test]
fn apk_database_in_the_documented_format() {
    use base64::Engine as _;
    let checksum = |content: &[u8]| {
        format!(
            "Q1{}",
            base64::engine::general_purpose::STANDARD.encode(HashAlgorithm::Sha1.digest(content))
        )
    };
    // As apk-tools writes it: package fields, then per directory F: (and its M: mode), per
    // file R:, a: (owner and mode) and Z: (checksum).
    let installed = format!(
        "C:Q1kPNlTzXv2d2gLm4hBb+zi3iJ1j8=\nP:stowaway-probe\nV:2.0-r1\nA:x86_64\nS:1234\nI:4096\n\
         T:provenance probe\nU:https://example.com\nL:MIT\no:stowaway-probe\nm:Probe\nt:1700000000\n\
         c:0123456789abcdef\nF:usr\nF:usr/share\nF:usr/share/stowaway-probe\nM:0:0:755\n\
         R:key.pem\na:0:0:644\nZ:{}\nR:README\nZ:{}\n\n\
         P:other\nV:1\nF:etc\nR:other.conf\nZ:{}\n\n",
        checksum(KEY),
        checksum(b"readme\n"),
        checksum(b"other\n"),
    );
    let mut files = DatabaseFiles::new();
    assert!(files.insert("lib/apk/db/installed", installed.into_bytes()));
    let databases = files.read();
    assert_eq!(databases[0].report.skipped, 0, "{:?}", databases[0].report);
    let index = ProvenanceIndex::build(&databases);
    let key = index.lookup("usr/share/stowaway-probe/key.pem").unwrap();
    assert_owner(&key, Manager::Apk, "stowaway-probe", "2.0-r1");
    assert_eq!(key.hash.as_ref().unwrap().algorithm, HashAlgorithm::Sha1);
    assert_verifies(&key, KEY);
    assert_verifies(
        &index.lookup("usr/share/stowaway-probe/README").unwrap(),
        b"readme\n",
    );
    assert_owner(
        &index.lookup("etc/other.conf").unwrap(),
        Manager::Apk,
        "other",
        "1",
    );
}

#[test]
fn a_later_layer_deleting_the_database_forgets_its_packages() {
    let mut files = DatabaseFiles::new();
    files.insert(
        "lib/apk/db/installed",
        format!("P:a\nV:1\nF:bin\nR:a\nZ:Q1{}\n", "A".repeat(27) + "=").into_bytes(),
    );
    let as_of_layer_1 = files.clone();
    files.remove("lib/apk");
    assert!(
        ProvenanceIndex::build(&as_of_layer_1.read())
            .lookup("bin/a")
            .is_some()
    );
    assert!(
        ProvenanceIndex::build(&files.read())
            .lookup("bin/a")
            .is_none()
    );
}
