//! Published key material: a key listed as shipped by a public package is reported at info,
//! "published in <package>", in whatever form it sits in the image (a PEM file, a JSON string,
//! a binary's read-only data); a real key that is not listed stays critical. The real GnuTLS
//! library, whose self-test keys every Debian image carries, gives nothing at low or above.

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use sha2::{Digest, Sha256};
use support::run::run;
use support::*;

fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(output.status.success(), "openssl {args:?}");
    output.stdout
}

/// A fresh RSA key: (PEM text, sha256 of its DER in hex, as the published list records it).
fn fresh_key(dir: &Path, name: &str) -> (String, String) {
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            name,
        ],
    );
    let pem = std::fs::read_to_string(dir.join(name)).unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap()
    };
    (pem, hex::encode(Sha256::digest(&der)))
}

/// The findings with `path` among their places (the same key in two files is one finding).
fn findings_at<'a>(report: &'a Value, path: &str) -> Vec<&'a Value> {
    let at = |place: &Value| place["location"]["path"] == format!("/{path}").as_str();
    report["images"][0]["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| at(f) || f["also_found_in"].as_array().into_iter().flatten().any(at))
        .collect()
}

#[test]
fn a_listed_key_is_info_wherever_it_sits_and_an_unlisted_one_stays_critical() {
    if !tool_available("openssl") {
        return;
    }
    let work = tempdir();
    let (published, fingerprint) = fresh_key(work.path(), "published.pem");
    let (unlisted, _) = fresh_key(work.path(), "unlisted.pem");
    let list = work.path().join("published.tsv");
    std::fs::write(
        &list,
        format!("# test list\n{fingerprint}\tder\tdebian\tdemo-test-keys\t1.0-1\t/usr/share/demo/test.key\n"),
    )
    .unwrap();
    // The same key compiled into a library: C string data between other read-only data.
    let mut library = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0".to_vec();
    library.extend_from_slice(&[0u8; 300]);
    library.extend_from_slice(published.as_bytes());
    library.extend_from_slice(b"\0\0\0self-test vector\0");
    library.extend_from_slice(&[0xffu8; 200]);
    let escaped = serde_json::to_string(&published).unwrap();
    let spec = ImageSpec {
        layers: vec![Layer::new(
            "COPY app /",
            vec![
                Entry::file("opt/app/tests/fixtures/server.key", published.clone()),
                Entry::file("usr/lib/libdemo.so.1", library),
                Entry::file(
                    "opt/app/config.json",
                    format!("{{\"tls_key\": {escaped}}}\n"),
                ),
                Entry::file("opt/app/tests/fixtures/other.key", unlisted),
            ],
        )],
        repo_tag: "stowaway.test/published:1".to_string(),
        ..ImageSpec::default()
    };
    let written = write_image_in(&spec, Format::OciArchive, Compression::Gzip, work.path());
    let target = format!("oci-archive:{}", written.path.display());
    let list_arg = list.display().to_string();
    let scan = run(&[
        "scan",
        "--format",
        "json",
        "--published-keys",
        &list_arg,
        &target,
    ]);
    assert_eq!(scan.code, 1, "{}", scan.stderr);
    let report = scan.json();
    for path in ["opt/app/tests/fixtures/server.key", "usr/lib/libdemo.so.1"] {
        let found = findings_at(&report, path);
        assert_eq!(found.len(), 1, "{path}: {}", scan.stdout);
        assert_eq!(found[0]["severity"], "info", "{path}: {}", found[0]);
        let place = found[0]["details"]["published_in"]
            .as_str()
            .unwrap_or_default();
        assert_eq!(
            place, "debian package demo-test-keys 1.0-1 (/usr/share/demo/test.key)",
            "{path}"
        );
        assert!(
            found[0]["remediation"]["rotate"]
                .as_str()
                .unwrap()
                .starts_with("Nothing to rotate")
        );
    }
    let other = findings_at(&report, "opt/app/tests/fixtures/other.key");
    assert_eq!(other.len(), 1, "{}", scan.stdout);
    assert_eq!(other[0]["severity"], "critical");
    assert!(other[0]["details"].get("published_in").is_none());

    // The text report says where the key is published, and gives no rotate advice for it.
    let text = run(&["scan", "--published-keys", &list_arg, &target]);
    assert!(
        text.stdout
            .contains("published_in: debian package demo-test-keys"),
        "{}",
        text.stdout
    );

    // Without the list, the same key is what it looks like: a critical finding.
    let plain = run(&["scan", "--format", "json", &target]).json();
    let found = findings_at(&plain, "opt/app/tests/fixtures/server.key");
    assert_eq!(found[0]["severity"], "critical");
}

#[test]
fn a_malformed_published_list_is_a_one_line_error() {
    let work = tempdir();
    let list = work.path().join("bad.tsv");
    std::fs::write(&list, "not a fingerprint\n").unwrap();
    let scan = run(&[
        "scan",
        "--published-keys",
        &list.display().to_string(),
        "nowhere.tar",
    ]);
    assert_eq!(scan.code, 2);
    assert!(
        scan.stderr
            .contains("bad.tsv:1: expected 6 tab-separated fields"),
        "{}",
        scan.stderr
    );
    assert_eq!(scan.stderr.trim().lines().count(), 1, "{}", scan.stderr);
}

/// Downloads libgnutls30 with apt-get into `dir` and unpacks it; `None` when apt-get cannot
/// download it here (no network, no package lists), which CI treats as a failure.
fn gnutls_library(dir: &Path) -> Option<(String, Vec<u8>)> {
    if !tool_available("apt-get") || !tool_available("dpkg-deb") {
        return None;
    }
    let downloaded = Command::new("apt-get")
        .args(["download", "libgnutls30"])
        .current_dir(dir)
        .output()
        .is_ok_and(|o| o.status.success());
    let in_ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false");
    if !downloaded {
        assert!(!in_ci, "apt-get download libgnutls30 failed under CI");
        eprintln!("skipping: apt-get download libgnutls30 failed (no network or package lists)");
        return None;
    }
    let deb = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().ends_with(".deb"))?
        .path();
    let tree = dir.join("tree");
    let status = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(&tree)
        .status()
        .unwrap();
    assert!(status.success());
    let lib_dir = tree.join("usr/lib/x86_64-linux-gnu");
    let library = std::fs::read_dir(&lib_dir)
        .ok()?
        .filter_map(Result::ok)
        .find(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with("libgnutls.so.30.") && e.file_type().is_ok_and(|t| t.is_file())
        })?;
    let name = format!(
        "usr/lib/x86_64-linux-gnu/{}",
        library.file_name().to_string_lossy()
    );
    Some((name, std::fs::read(library.path()).unwrap()))
}

#[test]
fn the_real_gnutls_library_gives_no_finding_at_low_or_above() {
    let work = tempdir();
    let Some((path, library)) = gnutls_library(work.path()) else {
        return;
    };
    let spec = ImageSpec {
        layers: vec![Layer::new(
            "ADD rootfs /",
            vec![Entry::file(&path, library)],
        )],
        repo_tag: "stowaway.test/gnutls:1".to_string(),
        ..ImageSpec::default()
    };
    let written = write_image_in(&spec, Format::OciArchive, Compression::Gzip, work.path());
    let scan = run(&[
        "scan",
        "--format",
        "json",
        &format!("oci-archive:{}", written.path.display()),
    ]);
    assert_eq!(scan.code, 0, "{}\n{}", scan.stdout, scan.stderr);
    let report = scan.json();
    let findings = report["images"][0]["findings"].as_array().unwrap();
    assert!(
        findings.iter().all(|f| f["severity"] == "info"),
        "{}",
        scan.stdout
    );
    // The self-test keys are found, and said to be GnuTLS's.
    assert!(!findings.is_empty());
    assert!(findings.iter().all(|f| {
        f["details"]["published_in"]
            .as_str()
            .is_some_and(|p| p.contains("libgnutls30"))
    }));
}
