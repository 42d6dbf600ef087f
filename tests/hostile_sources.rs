//! Hostile image metadata, built at test time: oversized configs and `manifest.json`, indexes
//! that fan out into each other, and layouts whose files lead outside the layout (symlinks,
//! `..`). Each must end within a minute and 300 MiB with exit 2 and one line that names the
//! input and the limit, and nothing read from outside the input may reach stderr.

mod support;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use support::run::{Measured, run_measured};
use support::secrets::aws_access_key_id;
use support::*;

const TIME_LIMIT: Duration = Duration::from_secs(60);
const MEMORY_LIMIT_MIB: u64 = 300;

const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// Runs `stowaway scan ARG` within the bounds and checks it failed with exit 2 and one line.
fn scan_fails(arg: &str) -> Measured {
    let measured = run_measured(&["scan", "--format", "json", arg], TIME_LIMIT);
    eprintln!(
        "{arg}: exit {}, peak RSS {} MiB, {:?}, stderr {:?}",
        measured.run.code, measured.peak_rss_mib, measured.elapsed, measured.run.stderr
    );
    assert!(
        measured.peak_rss_mib <= MEMORY_LIMIT_MIB,
        "peak RSS {} MiB",
        measured.peak_rss_mib
    );
    assert_eq!(measured.run.code, 2, "stderr: {}", measured.run.stderr);
    assert_eq!(
        measured.run.stderr.trim_end().lines().count(),
        1,
        "one line: {}",
        measured.run.stderr
    );
    measured
}

/// Writes `bytes` as a blob of the layout at `dir`; returns its descriptor.
fn put_blob(dir: &Path, media_type: &str, bytes: &[u8]) -> Value {
    let digest = sha256_digest(bytes);
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).expect("blobs dir");
    fs::write(blobs.join(digest_hex(&digest)), bytes).expect("write blob");
    json!({"mediaType": media_type, "digest": digest, "size": bytes.len()})
}

/// Writes `oci-layout` and an `index.json` listing `manifests`.
fn finish_layout(dir: &Path, manifests: Vec<Value>) {
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).expect("oci-layout");
    let index = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests});
    fs::write(dir.join("index.json"), index.to_string()).expect("index.json");
}

fn index_of(manifests: Vec<Value>) -> Vec<u8> {
    json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests})
        .to_string()
        .into_bytes()
}

#[test]
fn an_oversized_config_is_refused_before_it_is_parsed() {
    let tmp = tempdir();
    let dir = tmp.path().join("layout");
    // 20 MiB of history text: valid JSON, over the 16 MiB limit, cheap to write.
    let padding = "x".repeat(20 << 20);
    let config = json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [{"created_by": padding}],
    })
    .to_string();
    let config_desc = put_blob(&dir, CONFIG, config.as_bytes());
    let manifest = json!({
        "schemaVersion": 2, "mediaType": MANIFEST, "config": config_desc, "layers": [],
    });
    let manifest_desc = put_blob(&dir, MANIFEST, manifest.to_string().as_bytes());
    finish_layout(&dir, vec![manifest_desc]);

    let measured = scan_fails(&format!("oci:{}", dir.display()));
    let expected = format!(
        "config {} is {} bytes, over the limit of {} bytes",
        config_desc["digest"].as_str().unwrap(),
        config.len(),
        16 << 20
    );
    assert!(
        measured.run.stderr.contains(&expected),
        "{}",
        measured.run.stderr
    );
}

#[test]
fn an_oversized_docker_save_manifest_is_refused() {
    let tmp = tempdir();
    let path = tmp.path().join("image.tar");
    // One entry with a 20 MiB tag: larger than 1,000 images' worth of manifest.json.
    let manifest = json!([{
        "Config": "config.json", "RepoTags": ["x".repeat(20 << 20)], "Layers": [],
    }])
    .to_string();
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(manifest.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "manifest.json", manifest.as_bytes())
        .expect("append manifest.json");
    fs::write(&path, tar.into_inner().expect("finish tar")).expect("write archive");

    let measured = scan_fails(&format!("docker-archive:{}", path.display()));
    let expected = format!(
        "manifest.json is {} bytes, over the limit of {} bytes",
        manifest.len(),
        1000 * (16 << 10)
    );
    assert!(
        measured.run.stderr.contains(&expected),
        "{}",
        measured.run.stderr
    );
}

#[test]
fn indexes_that_fan_out_into_the_same_index_are_read_once_and_manifests_are_capped() {
    let tmp = tempdir();
    let dir = tmp.path().join("layout");
    // The bottom index lists 1,001 distinct manifests; each level above lists the one below
    // 1,000 times. Read naively that is 10^9 index reads; read once each, four.
    let bottom: Vec<Value> = (0..1001)
        .map(|i| {
            let digest = sha256_digest(format!("manifest {i}").as_bytes());
            json!({"mediaType": MANIFEST, "digest": digest, "size": 100})
        })
        .collect();
    let mut below = put_blob(&dir, INDEX, &index_of(bottom));
    for _ in 0..3 {
        below = put_blob(&dir, INDEX, &index_of(vec![below; 1000]));
    }
    finish_layout(&dir, vec![below]);

    let measured = scan_fails(&format!("oci:{}", dir.display()));
    assert!(
        measured
            .run
            .stderr
            .contains("the layout's index lists more than 1000 image manifests"),
        "{}",
        measured.run.stderr
    );
}

#[test]
fn twenty_levels_of_doubled_nested_indexes_end_at_the_depth_limit() {
    let tmp = tempdir();
    let dir = tmp.path().join("layout");
    let manifest = json!({"mediaType": MANIFEST, "digest": sha256_digest(b"m"), "size": 1});
    let mut below = put_blob(&dir, INDEX, &index_of(vec![manifest]));
    for _ in 0..20 {
        below = put_blob(&dir, INDEX, &index_of(vec![below.clone(), below]));
    }
    finish_layout(&dir, vec![below]);

    let measured = scan_fails(&format!("oci:{}", dir.display()));
    assert!(
        measured
            .run
            .stderr
            .contains("index nesting is deeper than 4 levels"),
        "{}",
        measured.run.stderr
    );
}

/// A file outside any image holding a planted secret, as a symlink target.
struct Secret {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    key: String,
    bytes: Vec<u8>,
}

fn secret_file() -> Secret {
    let dir = tempdir();
    let key = aws_access_key_id();
    let bytes =
        format!("root:$6$salt$hash:19000:0:99999:7:::\naws_access_key_id = {key}\n").into_bytes();
    let path = dir.path().join("shadow");
    fs::write(&path, &bytes).expect("write secret");
    Secret {
        _dir: dir,
        path,
        key,
        bytes,
    }
}

/// Nothing of the secret file (bytes, size, digest) is in `stderr`.
fn assert_nothing_of(secret: &Secret, stderr: &str) {
    assert!(!stderr.contains(&secret.key), "{stderr}");
    assert!(!stderr.contains("root:"), "{stderr}");
    assert!(
        !stderr.contains(&format!("{} bytes", secret.bytes.len())),
        "{stderr}"
    );
    assert!(
        !stderr.contains(digest_hex(&sha256_digest(&secret.bytes))),
        "{stderr}"
    );
}

fn layout_with_one_layer(dir: &Path) -> Written {
    let spec = ImageSpec {
        layers: vec![Layer::new(
            "COPY app /app",
            vec![Entry::file("app/readme.txt", "nothing to see")],
        )],
        repo_tag: "stowaway.test/outside:1".into(),
        ..ImageSpec::default()
    };
    write_image(&spec, Format::OciLayout, Compression::None, dir)
}

#[test]
fn a_layer_blob_that_is_a_symlink_outside_the_layout_is_refused_unread() {
    let tmp = tempdir();
    let secret = secret_file();
    let written = layout_with_one_layer(&tmp.path().join("layout"));
    let blob = format!("blobs/sha256/{}", digest_hex(&written.layer_digests[0]));
    let path = written.path.join(&blob);
    fs::remove_file(&path).expect("remove blob");
    symlink(&secret.path, &path).expect("symlink");

    let measured = scan_fails(&format!("oci:{}", written.path.display()));
    let expected = format!("{blob} is not a regular file inside the layout");
    assert!(
        measured.run.stderr.contains(&expected),
        "{}",
        measured.run.stderr
    );
    assert_nothing_of(&secret, &measured.run.stderr);
}

#[test]
fn a_config_blob_that_is_a_symlink_outside_the_layout_is_refused_unread() {
    let tmp = tempdir();
    let secret = secret_file();
    let written = layout_with_one_layer(&tmp.path().join("layout"));
    let blob = format!("blobs/sha256/{}", digest_hex(&written.config_digest));
    let path = written.path.join(&blob);
    fs::remove_file(&path).expect("remove blob");
    symlink(&secret.path, &path).expect("symlink");

    let measured = scan_fails(&format!("oci:{}", written.path.display()));
    let expected = format!("{blob} is not a regular file inside the layout");
    assert!(
        measured.run.stderr.contains(&expected),
        "{}",
        measured.run.stderr
    );
    assert_nothing_of(&secret, &measured.run.stderr);
}

#[test]
fn an_index_json_that_is_a_symlink_is_refused_unread() {
    let tmp = tempdir();
    let secret = secret_file();
    let written = layout_with_one_layer(&tmp.path().join("layout"));
    let path = written.path.join("index.json");
    fs::remove_file(&path).expect("remove index.json");
    symlink(&secret.path, &path).expect("symlink");

    let measured = scan_fails(&format!("oci:{}", written.path.display()));
    assert!(
        measured
            .run
            .stderr
            .contains("index.json is not a regular file inside the layout"),
        "{}",
        measured.run.stderr
    );
    assert_nothing_of(&secret, &measured.run.stderr);
}

#[test]
fn a_blobs_directory_that_is_a_symlink_is_refused() {
    let tmp = tempdir();
    let written = layout_with_one_layer(&tmp.path().join("layout"));
    let elsewhere = tmp.path().join("elsewhere");
    fs::rename(written.path.join("blobs"), &elsewhere).expect("move blobs");
    symlink(&elsewhere, written.path.join("blobs")).expect("symlink");

    let measured = scan_fails(&format!("oci:{}", written.path.display()));
    assert!(
        measured
            .run
            .stderr
            .contains("is not a regular file inside the layout"),
        "{}",
        measured.run.stderr
    );
}

#[test]
fn a_docker_save_layer_path_with_dotdot_is_refused() {
    let tmp = tempdir();
    let spec = ImageSpec {
        layers: vec![Layer::new(
            "COPY app /app",
            vec![Entry::file("app/readme.txt", "nothing to see")],
        )],
        repo_tag: "stowaway.test/dotdot:1".into(),
        ..ImageSpec::default()
    };
    let original = tmp.path().join("original.tar");
    write_image(&spec, Format::DockerLegacy, Compression::None, &original);
    let manifest = {
        let bytes = fs::read(&original).expect("read archive");
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut found = None;
        for entry in archive.entries().expect("entries") {
            let mut entry = entry.expect("entry");
            if entry.path().expect("path").to_string_lossy() == "manifest.json" {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut entry, &mut text).expect("read");
                found = Some(text);
            }
        }
        found.expect("manifest.json")
    };
    let mut entries: Value = serde_json::from_str(&manifest).expect("json");
    entries[0]["Layers"][0] = json!("../../../../etc/passwd");
    let hostile = tmp.path().join("hostile.tar");
    replace_member_in_archive(
        &original,
        &hostile,
        "manifest.json",
        entries.to_string().as_bytes(),
    );

    let measured = scan_fails(&format!("docker-archive:{}", hostile.display()));
    let stderr = &measured.run.stderr;
    assert!(
        stderr.contains("a layer named in manifest.json: a path in the image leads outside it"),
        "{stderr}"
    );
    assert!(!stderr.contains("etc/passwd"), "{stderr}");
}
