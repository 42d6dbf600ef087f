//! Package provenance in the scan (issue 11): images built at test time from a real `.deb`
//! (made with `dpkg-deb`, installed with `dpkg --root`, so the dpkg database is dpkg's own), a
//! wheel installed with `pip`, and npm's `node_modules` layout. A finding in a file a package
//! installed unmodified is vendor content (info, with its provenance); "provenance is not a
//! loophole": a package file edited or replaced in a later layer, a secret beside a package's
//! fixtures, and a real key in the application's own test directory all keep full severity.

mod support;

use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::{Compression, Entry, Format, ImageSpec, Layer, secrets};

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

/// The tree under `root` as layer entries (directories, symlinks and files, sorted so parents
/// come first).
fn entries_of(root: &Path) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let name = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let kind = entry.file_type().unwrap();
            if kind.is_symlink() {
                let target = fs::read_link(&path).unwrap();
                out.push(Entry::symlink(&name, &target.to_string_lossy()));
            } else if kind.is_dir() {
                out.push(Entry::dir(&name));
                pending.push(path);
            } else {
                out.push(Entry::file(&name, fs::read(&path).unwrap()));
            }
        }
    }
    out.sort_by_key(|entry| entry.tar_path());
    out
}

/// A root where dpkg installed package `stowaway-probe` 2.0-1 holding `files` (image paths
/// as the package lists them, with their content). `/lib` is a symlink to `usr/lib`, as in a
/// merged-/usr Debian, so a file the package lists under `/lib` lands in `usr/lib`.
fn dpkg_root(work: &Path, files: &[(&str, &[u8])]) -> Vec<Entry> {
    dpkg_package_root(work, "stowaway-probe", files)
}

/// [`dpkg_root`] with the package named `name`.
fn dpkg_package_root(work: &Path, name: &str, files: &[(&str, &[u8])]) -> Vec<Entry> {
    let package = work.join("pkg");
    fs::create_dir_all(package.join("DEBIAN")).unwrap();
    fs::write(
        package.join("DEBIAN/control"),
        format!(
            "Package: {name}\nVersion: 2.0-1\nArchitecture: all\n\
             Maintainer: Probe <probe@example.com>\nDescription: provenance probe\n"
        ),
    )
    .unwrap();
    for (path, content) in files {
        let disk = package.join(path);
        fs::create_dir_all(disk.parent().unwrap()).unwrap();
        fs::write(disk, content).unwrap();
    }
    let deb = work.join("probe.deb");
    run(Command::new("dpkg-deb")
        .args(["--root-owner-group", "--build"])
        .arg(&package)
        .arg(&deb));
    let root = work.join("root");
    let admin = root.join("var/lib/dpkg");
    fs::create_dir_all(admin.join("info")).unwrap();
    fs::create_dir_all(admin.join("updates")).unwrap();
    fs::write(admin.join("status"), "").unwrap();
    fs::create_dir_all(root.join("usr/lib")).unwrap();
    std::os::unix::fs::symlink("usr/lib", root.join("lib")).unwrap();
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
    entries_of(&root)
}

fn have_dpkg() -> bool {
    support::tool_available("dpkg-deb") && support::tool_available("dpkg")
}

/// Writes `layers` as a docker archive in `work` and scans it; returns the run.
fn scan(work: &Path, layers: Vec<Layer>, extra: &[&str]) -> support::run::Run {
    let spec = ImageSpec {
        layers,
        ..ImageSpec::default()
    };
    let written = support::write_image_in(&spec, Format::DockerOci, Compression::Gzip, work);
    let image = written.path.to_string_lossy().into_owned();
    let mut args = vec!["scan", image.as_str()];
    args.extend_from_slice(extra);
    support::run::run(&args)
}

fn scan_json(work: &Path, layers: Vec<Layer>) -> (i32, Value) {
    let run = scan(work, layers, &["--format", "json"]);
    assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
    (run.code, run.json())
}

/// The findings of the only image at `path` in `layer`.
fn findings_at<'a>(report: &'a Value, layer: u64, path: &str) -> Vec<&'a Value> {
    report["images"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            f["location"]["path"] == format!("/{path}").as_str()
                && f["location"]["layer_index"] == layer
        })
        .collect()
}

fn one_at<'a>(report: &'a Value, layer: u64, path: &str) -> &'a Value {
    let found = findings_at(report, layer, path);
    assert_eq!(found.len(), 1, "{path} in layer {layer}: {report:#}");
    found[0]
}

fn assert_full_severity(finding: &Value) {
    let severity = finding["severity"].as_str().unwrap();
    assert!(
        matches!(severity, "critical" | "high"),
        "{severity}: {finding:#}"
    );
}

const VENDOR_KEY: &str = "lib/stowaway-probe/test/server.key";

#[test]
fn a_vendor_test_key_in_a_package_file_is_info_with_its_provenance() {
    if !have_dpkg() {
        return;
    }
    let work = support::tempdir();
    let key = secrets::rsa_private_key_pem();
    let root = dpkg_root(work.path(), &[(VENDOR_KEY, key.as_bytes())]);
    let layers = vec![Layer::new("RUN apt-get install stowaway-probe", root)];
    let (code, report) = scan_json(work.path(), layers.clone());
    // dpkg lists /lib/…; the layer holds usr/lib/… behind the symlink lib -> usr/lib.
    let finding = one_at(&report, 0, "usr/lib/stowaway-probe/test/server.key");
    assert_eq!(finding["severity"], "info", "{finding:#}");
    let provenance = &finding["provenance"];
    assert_eq!(provenance["manager"], "dpkg");
    assert_eq!(provenance["package"], "stowaway-probe");
    assert_eq!(provenance["version"], "2.0-1");
    assert_eq!(provenance["verified"], true);
    assert_eq!(provenance["vendor"], true);
    assert_eq!(provenance["verdict"], "unmodified");
    assert_eq!(code, 0, "vendor content passes the default gate");
    let databases = &report["images"][0]["packages"]["databases"];
    assert_eq!(databases[0]["manager"], "dpkg", "{databases:#}");
    assert_eq!(databases[0]["packages"], 1);

    // The text report counts it in one line; --show-vendor lists it.
    let text = scan(work.path(), layers.clone(), &[]);
    assert!(
        text.stdout
            .contains("1 finding in vendor content (installed unmodified by a package manager), see --show-vendor"),
        "{}",
        text.stdout
    );
    assert!(!text.stdout.contains("server.key"), "{}", text.stdout);
    let shown = scan(work.path(), layers.clone(), &["--show-vendor"]);
    assert!(shown.stdout.contains("server.key"), "{}", shown.stdout);
    assert!(
        shown
            .stdout
            .contains("vendor content: dpkg package stowaway-probe 2.0-1, installed unmodified"),
        "{}",
        shown.stdout
    );
    // Not an alert in SARIF; counted in the run's properties.
    let sarif = scan(work.path(), layers.clone(), &["--format", "sarif"]).json();
    let run = &sarif["runs"][0];
    assert_eq!(run["results"].as_array().unwrap().len(), 0, "{run:#}");
    assert_eq!(run["properties"]["vendorFindings"], 1);

    // A layer read back from the cache still gets its provenance.
    let cache = work.path().join("cache");
    let cache_dir = cache.to_string_lossy().into_owned();
    for round in 0..2 {
        let mut command = support::stowaway_cmd();
        command.env_remove("STOWAWAY_NO_CACHE");
        let output = command
            .args(["scan", "--format", "json", "--cache-dir", &cache_dir])
            .arg(work.path().join("image.tar"))
            .output()
            .unwrap();
        let report: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(
            report["stats"]["layers_from_cache"],
            round,
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let finding = one_at(&report, 0, "usr/lib/stowaway-probe/test/server.key");
        assert_eq!(finding["severity"], "info", "round {round}: {finding:#}");
        assert_eq!(finding["provenance"]["verified"], true);
    }
}

#[test]
fn a_package_file_edited_in_a_later_layer_keeps_full_severity() {
    if !have_dpkg() {
        return;
    }
    let work = support::tempdir();
    let config = b"# probe settings\nlisten = 127.0.0.1\n";
    let root = dpkg_root(
        work.path(),
        &[("usr/share/stowaway-probe/probe.conf", config)],
    );
    let mut edited = config.to_vec();
    edited.extend_from_slice(
        format!(
            "aws_access_key_id = {}\naws_secret_access_key = {}\n",
            secrets::aws_access_key_id(),
            secrets::aws_secret_access_key()
        )
        .as_bytes(),
    );
    let layers = vec![
        Layer::new("RUN apt-get install stowaway-probe", root),
        Layer::new(
            "RUN cat creds >> /usr/share/stowaway-probe/probe.conf",
            vec![Entry::file("usr/share/stowaway-probe/probe.conf", edited)],
        ),
    ];
    let (code, report) = scan_json(work.path(), layers.clone());
    let found = findings_at(&report, 1, "usr/share/stowaway-probe/probe.conf");
    assert!(!found.is_empty(), "{report:#}");
    for finding in found {
        assert_full_severity(finding);
        assert_eq!(finding["provenance"]["verdict"], "modified", "{finding:#}");
        assert_eq!(finding["provenance"]["verified"], false);
        assert_eq!(finding["provenance"]["vendor"], false);
    }
    assert_eq!(code, 1);
    let text = scan(work.path(), layers, &[]);
    assert!(
        text.stdout
            .contains("owned by dpkg package stowaway-probe 2.0-1: MODIFIED AFTER INSTALL"),
        "{}",
        text.stdout
    );
}

#[test]
fn a_package_file_replaced_by_a_copy_keeps_full_severity() {
    if !have_dpkg() {
        return;
    }
    let work = support::tempdir();
    let vendor_key = secrets::rsa_private_key_pem();
    let root = dpkg_root(work.path(), &[(VENDOR_KEY, vendor_key.as_bytes())]);
    let own_key = secrets::openssh_private_key();
    let layers = vec![
        Layer::new("RUN apt-get install stowaway-probe", root),
        Layer::new(
            "COPY server.key /usr/lib/stowaway-probe/test/server.key # buildkit",
            vec![Entry::file(
                "usr/lib/stowaway-probe/test/server.key",
                own_key,
            )],
        ),
    ];
    let (code, report) = scan_json(work.path(), layers);
    let copied = one_at(&report, 1, "usr/lib/stowaway-probe/test/server.key");
    assert_full_severity(copied);
    assert_eq!(copied["provenance"]["verdict"], "modified", "{copied:#}");
    assert_eq!(copied["status"], "present");
    // The package's own key, overwritten, is still vendor content of layer 0.
    let shipped = one_at(&report, 0, "usr/lib/stowaway-probe/test/server.key");
    assert_eq!(shipped["severity"], "info");
    assert_eq!(shipped["status"], "overwritten");
    assert_eq!(code, 1);
}

#[test]
fn a_secret_beside_a_packages_fixtures_but_not_owned_keeps_full_severity() {
    if !have_dpkg() {
        return;
    }
    let work = support::tempdir();
    let vendor_key = secrets::rsa_private_key_pem();
    let root = dpkg_root(work.path(), &[(VENDOR_KEY, vendor_key.as_bytes())]);
    let layers = vec![
        Layer::new("RUN apt-get install stowaway-probe", root),
        Layer::new(
            "COPY deploy.key /usr/lib/stowaway-probe/test/deploy.key # buildkit",
            vec![Entry::file(
                "usr/lib/stowaway-probe/test/deploy.key",
                secrets::rsa_private_key_pem(),
            )],
        ),
    ];
    let (code, report) = scan_json(work.path(), layers);
    let planted = one_at(&report, 1, "usr/lib/stowaway-probe/test/deploy.key");
    assert_full_severity(planted);
    assert!(planted.get("provenance").is_none(), "{planted:#}");
    assert_eq!(
        one_at(&report, 0, "usr/lib/stowaway-probe/test/server.key")["severity"],
        "info"
    );
    assert_eq!(code, 1);
}

/// npm records no file hashes: a package's test fixtures are vendor content, any other file
/// in the package is not, and the application's own test directory is never.
#[test]
fn npm_test_paths_are_vendor_content_and_the_applications_tests_are_not() {
    let work = support::tempdir();
    let package_json = br#"{"name": "probe-tls", "version": "3.1.4"}"#.to_vec();
    let layers = vec![Layer::new(
        "COPY . /app # buildkit",
        vec![
            Entry::file("app/node_modules/probe-tls/package.json", package_json),
            Entry::file(
                "app/node_modules/probe-tls/test/fixtures/agent.key",
                secrets::rsa_private_key_pem(),
            ),
            Entry::file(
                "app/node_modules/probe-tls/lib/default.key",
                secrets::rsa_private_key_pem(),
            ),
            Entry::file(
                "app/test/fixtures/server.key",
                secrets::rsa_private_key_pem(),
            ),
        ],
    )];
    let (code, report) = scan_json(work.path(), layers);
    let fixture = one_at(
        &report,
        0,
        "app/node_modules/probe-tls/test/fixtures/agent.key",
    );
    assert_eq!(fixture["severity"], "info", "{fixture:#}");
    assert_eq!(fixture["provenance"]["manager"], "npm");
    assert_eq!(fixture["provenance"]["package"], "probe-tls");
    assert_eq!(fixture["provenance"]["version"], "3.1.4");
    assert_eq!(fixture["provenance"]["verdict"], "test-or-example");
    assert_eq!(fixture["provenance"]["verified"], false);
    assert_eq!(fixture["provenance"]["vendor"], true);
    let library = one_at(&report, 0, "app/node_modules/probe-tls/lib/default.key");
    assert_full_severity(library);
    assert_eq!(library["provenance"]["verdict"], "no-recorded-hash");
    let application = one_at(&report, 0, "app/test/fixtures/server.key");
    assert_full_severity(application);
    assert!(application.get("provenance").is_none(), "{application:#}");
    assert_eq!(code, 1);
}

/// A wheel installed by the real pip: RECORD's sha256 verifies the shipped key (info); the
/// same package's file rewritten in a later layer does not.
#[test]
fn pip_record_sha256_verifies_shipped_files() {
    if !support::tool_available("python3") {
        return;
    }
    let work = support::tempdir();
    let wheel = work.path().join("stowaway_probe-0.1-py3-none-any.whl");
    let shipped = secrets::rsa_private_key_pem();
    write_wheel(&wheel, shipped.as_bytes());
    let root = work.path().join("root");
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
    let entries = entries_of(&root);
    let key_path = entries
        .iter()
        .map(|entry| entry.tar_path())
        .find(|path| path.ends_with("probe_pkg/tests/key.pem"))
        .expect("pip installed the key");
    let layers = vec![
        Layer::new("RUN pip install stowaway-probe", entries),
        Layer::new(
            "COPY key.pem site-packages/probe_pkg/tests/key.pem # buildkit",
            vec![Entry::file(&key_path, secrets::rsa_private_key_pem())],
        ),
    ];
    let (_, report) = scan_json(work.path(), layers);
    let installed = one_at(&report, 0, &key_path);
    assert_eq!(installed["severity"], "info", "{installed:#}");
    assert_eq!(installed["provenance"]["manager"], "pip");
    assert_eq!(installed["provenance"]["package"], "stowaway-probe");
    assert_eq!(installed["provenance"]["verified"], true);
    let replaced = one_at(&report, 1, &key_path);
    assert_full_severity(replaced);
    assert_eq!(replaced["provenance"]["verdict"], "modified");
}

/// An rpm database in Berkeley DB format is said not to be read, in JSON and text.
#[test]
fn an_rpm_database_not_read_is_said_so() {
    let work = support::tempdir();
    let layers = vec![Layer::new(
        "ADD rootfs.tar.xz / # centos 7",
        vec![Entry::file("var/lib/rpm/Packages", vec![0u8; 4096])],
    )];
    let (code, report) = scan_json(work.path(), layers.clone());
    let not_read = &report["images"][0]["packages"]["not_read"];
    assert!(
        not_read[0]
            .as_str()
            .unwrap()
            .starts_with("var/lib/rpm/Packages: rpm database in Berkeley DB format is not read"),
        "{not_read:#}"
    );
    assert_eq!(code, 0);
    let text = scan(work.path(), layers, &[]);
    assert!(
        text.stdout
            .contains("rpm database in Berkeley DB format is not read"),
        "{}",
        text.stdout
    );
}

/// A malformed dpkg database is read as far as it goes, with a counted warning.
#[test]
fn a_malformed_database_is_a_counted_warning() {
    let work = support::tempdir();
    let layers = vec![Layer::new(
        "RUN broken",
        vec![
            Entry::file(
                "var/lib/dpkg/status",
                b"Package: ok\nStatus: install ok installed\nVersion: 1\n\n\xff\xfe garbage without a field\n\n".to_vec(),
            ),
            Entry::file("etc/app/key.pem", secrets::rsa_private_key_pem()),
        ],
    )];
    let (_, report) = scan_json(work.path(), layers);
    let packages = &report["images"][0]["packages"];
    assert!(
        packages["records_skipped"].as_u64().unwrap() >= 1,
        "{packages:#}"
    );
    assert!(!packages["warnings"].as_array().unwrap().is_empty());
    assert_full_severity(one_at(&report, 0, "etc/app/key.pem"));
}

/// A pure-Python wheel holding `probe_pkg/tests/key.pem`, its RECORD with sha256 per file.
fn write_wheel(path: &Path, key: &[u8]) {
    let members: [(&str, &[u8]); 4] = [
        ("probe_pkg/__init__.py", b"VERSION = '0.1'\n"),
        ("probe_pkg/tests/key.pem", key),
        (
            "stowaway_probe-0.1.dist-info/METADATA",
            b"Metadata-Version: 2.1\nName: stowaway-probe\nVersion: 0.1\n",
        ),
        (
            "stowaway_probe-0.1.dist-info/WHEEL",
            b"Wheel-Version: 1.0\nGenerator: stowaway-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        ),
    ];
    support::zips::write_wheel(path, "stowaway_probe-0.1.dist-info", &members);
}

/// A package file over one chunk of the walk (8 MiB) is hashed by reading its layer again:
/// shipped content still verifies, and a larger edited copy in a later layer does not.
#[test]
fn a_large_package_file_is_hashed_by_reading_its_layer_again() {
    if !have_dpkg() {
        return;
    }
    let work = support::tempdir();
    let mut bundle = secrets::rsa_private_key_pem().into_bytes();
    bundle.extend(std::iter::repeat_n(b"# padding line of a large bundle\n", 300_000).flatten());
    assert!(bundle.len() > 9 << 20);
    let root = dpkg_root(
        work.path(),
        &[("usr/share/stowaway-probe/bundle.pem", &bundle)],
    );
    let mut edited = bundle.clone();
    edited.extend_from_slice(b"# edited\n");
    let layers = vec![
        Layer::new("RUN apt-get install stowaway-probe", root),
        Layer::new(
            "RUN echo >> /usr/share/stowaway-probe/bundle.pem",
            vec![Entry::file("usr/share/stowaway-probe/bundle.pem", edited)],
        ),
    ];
    let (_, report) = scan_json(work.path(), layers);
    let shipped = one_at(&report, 0, "usr/share/stowaway-probe/bundle.pem");
    assert_eq!(shipped["severity"], "info", "{shipped:#}");
    assert_eq!(shipped["provenance"]["verdict"], "unmodified");
    let edited = one_at(&report, 1, "usr/share/stowaway-probe/bundle.pem");
    assert_full_severity(edited);
    assert_eq!(edited["provenance"]["verdict"], "modified");
}

/// rpm records one digest algorithm per package (FILEDIGESTALGO): a package built with each
/// one rpmbuild offers (MD5, SHA-1, SHA-224, SHA-256, SHA-384, SHA-512), installed by the real
/// `rpm` into one sqlite database, has its shipped key verified (info) whatever the algorithm,
/// and the key of each rewritten in a later layer is "modified" at full severity.
#[test]
fn every_rpm_digest_algorithm_is_verified() {
    if !support::tool_available("rpmbuild") || !support::tool_available("rpm") {
        return;
    }
    let work = support::tempdir();
    // (OpenPGP algorithm number, name)
    let algorithms = [
        (1, "md5"),
        (2, "sha1"),
        (8, "sha256"),
        (9, "sha384"),
        (10, "sha512"),
        (11, "sha224"),
    ];
    let root = work.path().join("root");
    fs::create_dir_all(&root).unwrap();
    let mut rpms = Vec::new();
    for (number, name) in algorithms {
        let key = work.path().join(format!("{name}.key"));
        fs::write(&key, secrets::rsa_private_key_pem()).unwrap();
        let spec = work.path().join(format!("{name}.spec"));
        fs::write(
            &spec,
            format!(
                "Name: probe-{name}\nVersion: 1.0\nRelease: 1\nSummary: digest probe\n\
                 License: MIT\nBuildArch: noarch\n%description\ndigest probe\n%install\n\
                 mkdir -p %{{buildroot}}/usr/share/probe-{name}/tests\n\
                 cp {} %{{buildroot}}/usr/share/probe-{name}/tests/server.key\n\
                 %files\n/usr/share/probe-{name}\n",
                key.display()
            ),
        )
        .unwrap();
        run(Command::new("rpmbuild")
            .arg("-bb")
            .arg("--define")
            .arg(format!("_topdir {}", work.path().join("build").display()))
            .arg("--define")
            .arg(format!("_binary_filedigest_algorithm {number}"))
            .arg(&spec));
        rpms.push(
            work.path()
                .join(format!("build/RPMS/noarch/probe-{name}-1.0-1.noarch.rpm")),
        );
    }
    run(Command::new("rpm")
        .arg("--root")
        .arg(&root)
        .args(["--dbpath", "/var/lib/rpm", "--define", "_db_backend sqlite"])
        .args(["-i", "--nodeps", "--noscripts"])
        .args(&rpms));
    let replaced: Vec<Entry> = algorithms
        .iter()
        .map(|(_, name)| {
            Entry::file(
                &format!("usr/share/probe-{name}/tests/server.key"),
                secrets::rsa_private_key_pem(),
            )
        })
        .collect();
    let layers = vec![
        Layer::new("RUN dnf install probe-*", entries_of(&root)),
        Layer::new("COPY keys/ /usr/share/ # buildkit", replaced),
    ];
    let (_, report) = scan_json(work.path(), layers);
    for (_, name) in algorithms {
        let path = format!("usr/share/probe-{name}/tests/server.key");
        let shipped = one_at(&report, 0, &path);
        assert_eq!(shipped["severity"], "info", "{name}: {shipped:#}");
        assert_eq!(shipped["provenance"]["manager"], "rpm");
        assert_eq!(shipped["provenance"]["package"], format!("probe-{name}"));
        assert_eq!(shipped["provenance"]["version"], "1.0-1");
        assert_eq!(shipped["provenance"]["verdict"], "unmodified", "{name}");
        let copied = one_at(&report, 1, &path);
        assert_full_severity(copied);
        assert_eq!(copied["provenance"]["verdict"], "modified", "{name}");
    }
}

/// The finding in `member` of the archive at `path` (layer 0), the members leading to it
/// outermost first: the finding at that place, or the finding of the same secret with that
/// place among its `also_found_in` (the same library in two jars), seen from that place.
fn one_in_archive(report: &Value, path: &str, members: &[&str]) -> Value {
    let wanted = |place: &Value| {
        place["location"]["path"] == format!("/{path}").as_str()
            && place["location"]["layer_index"] == 0
            && place["location"]["archive_path"] == serde_json::json!(members)
    };
    let mut found = Vec::new();
    for finding in report["images"][0]["findings"].as_array().unwrap() {
        if wanted(finding) {
            found.push(finding.clone());
        }
        for place in finding["also_found_in"].as_array().into_iter().flatten() {
            if wanted(place) {
                let mut seen = finding.clone();
                for key in ["location", "severity", "status", "rule_id", "fingerprint"] {
                    seen[key] = place[key].clone();
                }
                found.push(seen);
            }
        }
    }
    assert_eq!(found.len(), 1, "{path}!/{members:?}: {report:#}");
    found.remove(0)
}

/// A jar built by Maven says what it is in `META-INF/maven/<group>/<artifact>/pom.properties`.
/// Maven records no file hashes: a key under the jar's test or fixture paths is vendor content
/// (info, with the artifact as its provenance), any other member keeps its severity, and so do
/// the application's own classes in a fat jar and the members of a jar that records nothing.
#[test]
fn maven_jar_test_paths_are_vendor_content_and_other_members_are_not() {
    let work = support::tempdir();
    let pom = |group: &str, artifact: &str, version: &str| {
        format!(
            "#Generated by Maven\n#Mon Jan 01 00:00:00 UTC 2024\n\
             artifactId={artifact}\ngroupId={group}\nversion={version}\n"
        )
        .into_bytes()
    };
    let library_pom = pom("org.probe", "probe-tls", "1.4.2");
    let fixture_key = secrets::rsa_private_key_pem();
    let default_key = secrets::rsa_private_key_pem();
    let library = support::zips::zip_of_members(&[
        ("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\n"),
        (
            "META-INF/maven/org.probe/probe-tls/pom.properties",
            &library_pom,
        ),
        (
            "org/probe/tls/test/fixtures/server.key",
            fixture_key.as_bytes(),
        ),
        ("org/probe/tls/default.key", default_key.as_bytes()),
    ]);
    let app_pom = pom("com.example", "shop", "0.0.1-SNAPSHOT");
    let app_properties = format!(
        "aws.access.key.id={}\naws.secret.access.key={}\n",
        secrets::aws_access_key_id(),
        secrets::aws_secret_access_key()
    );
    let examples_key = secrets::rsa_private_key_pem();
    let fat_jar = support::zips::zip_of_members(&[
        ("META-INF/maven/com.example/shop/pom.properties", &app_pom),
        (
            "BOOT-INF/classes/application.properties",
            app_properties.as_bytes(),
        ),
        ("BOOT-INF/lib/probe-tls-1.4.2.jar", &library),
    ]);
    let unrecorded =
        support::zips::zip_of_members(&[("examples/client.key", examples_key.as_bytes())]);
    let layers = vec![Layer::new(
        "COPY target/ /app/ # buildkit",
        vec![
            Entry::file("app/lib/probe-tls-1.4.2.jar", library.clone()),
            Entry::file("app/shop.jar", fat_jar),
            Entry::file("app/lib/handmade.jar", unrecorded),
        ],
    )];
    let (code, report) = scan_json(work.path(), layers);

    let fixture = one_in_archive(
        &report,
        "app/lib/probe-tls-1.4.2.jar",
        &["org/probe/tls/test/fixtures/server.key"],
    );
    assert_eq!(fixture["severity"], "info", "{fixture:#}");
    let provenance = &fixture["provenance"];
    assert_eq!(provenance["manager"], "maven");
    assert_eq!(provenance["package"], "org.probe:probe-tls");
    assert_eq!(provenance["version"], "1.4.2");
    assert_eq!(provenance["verified"], false);
    assert_eq!(provenance["vendor"], true);
    assert_eq!(provenance["verdict"], "test-or-example");
    assert_eq!(
        provenance["database"],
        "app/lib/probe-tls-1.4.2.jar!/META-INF/maven/org.probe/probe-tls/pom.properties"
    );
    let other = one_in_archive(
        &report,
        "app/lib/probe-tls-1.4.2.jar",
        &["org/probe/tls/default.key"],
    );
    assert_full_severity(&other);
    assert_eq!(other["provenance"]["verdict"], "no-recorded-hash");
    assert_eq!(other["provenance"]["vendor"], false);

    // The fat jar: the nested library's fixture is vendor content of the library; the
    // application's own configuration is not, though its jar records a Maven identity too.
    let nested = one_in_archive(
        &report,
        "app/shop.jar",
        &[
            "BOOT-INF/lib/probe-tls-1.4.2.jar",
            "org/probe/tls/test/fixtures/server.key",
        ],
    );
    assert_eq!(nested["severity"], "info", "{nested:#}");
    assert_eq!(nested["provenance"]["package"], "org.probe:probe-tls");
    let own = findings_at(&report, 0, "app/shop.jar");
    let own: Vec<&&Value> = own
        .iter()
        .filter(|f| f["location"]["archive_path"][0] == "BOOT-INF/classes/application.properties")
        .collect();
    assert!(!own.is_empty(), "{report:#}");
    for finding in own {
        assert_full_severity(finding);
        assert_eq!(finding["provenance"]["package"], "com.example:shop");
        assert_eq!(finding["provenance"]["vendor"], false);
    }
    // A jar that records no identity: its examples are not known to be anyone's.
    let handmade = one_in_archive(&report, "app/lib/handmade.jar", &["examples/client.key"]);
    assert_full_severity(&handmade);
    assert!(handmade.get("provenance").is_none(), "{handmade:#}");
    assert_eq!(code, 1);
}

/// A fresh self-signed certificate (P-256) for `subject`, as PEM; its key is not kept.
fn certificate_pem(dir: &Path, subject: &str) -> Vec<u8> {
    let out = dir.join("cert.pem");
    run(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args([
            "-nodes",
            "-keyout",
            "/dev/null",
            "-days",
            "3650",
            "-subj",
            subject,
        ])
        .arg("-out")
        .arg(&out));
    fs::read(out).unwrap()
}

/// The inventory entry of the certificate at `path` in `layer`.
fn certificate_at<'a>(report: &'a Value, layer: u64, path: &str) -> &'a Value {
    let found: Vec<&Value> = report["images"][0]["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c["location"]["path"] == format!("/{path}").as_str()
                && c["location"]["layer_index"] == layer
        })
        .collect();
    assert_eq!(found.len(), 1, "{path} in layer {layer}: {report:#}");
    found[0]
}

/// Certificates get the provenance findings get, in the inventory's `package`: a root that the
/// `ca-certificates` package installed is dpkg-verified, a certificate a package installed
/// outside the trust stores is vendor content because dpkg verifies it, the same file replaced
/// in a later layer is "modified" and not vendor, and the application's own has no package.
#[test]
fn certificates_say_which_package_installed_them() {
    if !have_dpkg() || !support::tool_available("openssl") {
        return;
    }
    let work = support::tempdir();
    let root_ca = certificate_pem(work.path(), "/CN=Probe Root CA");
    let example = certificate_pem(work.path(), "/CN=example.test");
    let root = dpkg_package_root(
        work.path(),
        "ca-certificates",
        &[
            (
                "usr/share/ca-certificates/probe/Probe_Root_CA.crt",
                &root_ca,
            ),
            (
                "usr/share/doc/ca-certificates/examples/example.crt",
                &example,
            ),
        ],
    );
    let layers = vec![
        Layer::new("RUN apt-get install ca-certificates", root),
        Layer::new(
            "COPY certs/ / # buildkit",
            vec![
                Entry::file(
                    "usr/share/doc/ca-certificates/examples/example.crt",
                    certificate_pem(work.path(), "/CN=replaced.test"),
                ),
                Entry::file(
                    "app/tls/server.crt",
                    certificate_pem(work.path(), "/CN=shop.example.com"),
                ),
            ],
        ),
    ];
    let (code, report) = scan_json(work.path(), layers);
    let ca = certificate_at(
        &report,
        0,
        "usr/share/ca-certificates/probe/Probe_Root_CA.crt",
    );
    let package = &ca["package"];
    assert_eq!(package["manager"], "dpkg", "{ca:#}");
    assert_eq!(package["package"], "ca-certificates");
    assert_eq!(package["version"], "2.0-1");
    assert_eq!(package["verified"], true);
    assert_eq!(package["verdict"], "unmodified");
    assert_eq!(ca["vendor"], true);
    // Outside the trust stores, vendor because dpkg verifies it.
    let shipped = certificate_at(
        &report,
        0,
        "usr/share/doc/ca-certificates/examples/example.crt",
    );
    assert_eq!(shipped["package"]["verified"], true, "{shipped:#}");
    assert_eq!(shipped["vendor"], true);
    // Replaced by a COPY: still owned by the package, but modified, not vendor.
    let replaced = certificate_at(
        &report,
        1,
        "usr/share/doc/ca-certificates/examples/example.crt",
    );
    assert_eq!(replaced["package"]["package"], "ca-certificates");
    assert_eq!(replaced["package"]["verified"], false, "{replaced:#}");
    assert_eq!(replaced["package"]["verdict"], "modified");
    assert_eq!(replaced["vendor"], false);
    let own = certificate_at(&report, 1, "app/tls/server.crt");
    assert!(own["package"].is_null(), "{own:#}");
    assert_eq!(own["vendor"], false);
    // Certificates are never findings.
    assert_eq!(report["images"][0]["findings"].as_array().unwrap().len(), 0);
    assert_eq!(code, 0);
}
