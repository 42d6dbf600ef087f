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

// ---------------------------------------------------------------------------
// No byte of an unverified blob in an error: the digest is checked first
// ---------------------------------------------------------------------------

/// Text lines holding a planted key, `len` bytes long: what a blob that is not the layer
/// (a file the layout links to, a registry's wrong answer) could hold.
fn secret_text(key: &str, len: usize) -> Vec<u8> {
    let line = format!("root:$6$salt$hash:19000::\naws_access_key_id = {key}\n");
    line.as_bytes().iter().copied().cycle().take(len).collect()
}

/// The scan failed on a digest mismatch, and printed nothing of `key` (nor a report).
fn assert_mismatch_without(measured: &Measured, key: &str) {
    let stderr = &measured.run.stderr;
    assert!(stderr.contains("digest mismatch"), "{stderr}");
    assert!(!stderr.contains(key), "{stderr}");
    assert!(!stderr.contains("root:"), "{stderr}");
    assert!(
        !measured.run.stdout.contains(key),
        "{}",
        measured.run.stdout
    );
}

fn one_layer_spec(content: &str) -> ImageSpec {
    ImageSpec {
        layers: vec![Layer::new(
            "COPY app /app",
            vec![Entry::file("app/readme.txt", content)],
        )],
        repo_tag: "stowaway.test/unverified:1".into(),
        ..ImageSpec::default()
    }
}

#[test]
fn an_uncompressed_layer_of_the_right_size_and_wrong_content_is_a_digest_mismatch() {
    let tmp = tempdir();
    let written = layout_with_one_layer(&tmp.path().join("layout"));
    let blob = written.path.join(format!(
        "blobs/sha256/{}",
        digest_hex(&written.layer_digests[0])
    ));
    let size = fs::metadata(&blob).expect("blob").len() as usize;
    let key = aws_access_key_id();

    // Text where a tar is expected: the tar reader fails on the first header.
    fs::write(&blob, secret_text(&key, size)).expect("write blob");
    let measured = scan_fails(&format!("oci:{}", written.path.display()));
    assert_mismatch_without(&measured, &key);

    // A well-formed tar of the same size whose member name and content are the key: it walks
    // cleanly and its findings are never reported.
    let named = format!("{key}.txt");
    let mut tar = support::craft::file(&named, format!("aws_access_key_id = {key}\n").as_bytes());
    tar.extend(support::craft::end());
    assert!(tar.len() <= size, "{} > {size}", tar.len());
    tar.resize(size, 0);
    fs::write(&blob, &tar).expect("write blob");
    let measured = scan_fails(&format!("oci:{}", written.path.display()));
    assert_mismatch_without(&measured, &key);
}

#[test]
fn a_compressed_layer_with_wrong_content_is_a_digest_mismatch() {
    let key = aws_access_key_id();
    for compression in [Compression::Gzip, Compression::Zstd] {
        let tmp = tempdir();
        let written = write_image(
            &one_layer_spec("nothing to see"),
            Format::OciLayout,
            compression,
            &tmp.path().join("layout"),
        );
        // It decompresses cleanly, to text instead of a tar, and is as long as the blob it
        // replaces (so the size check passes and the walk starts).
        let blob = written.path.join(format!(
            "blobs/sha256/{}",
            digest_hex(&written.layer_digests[0])
        ));
        let size = fs::metadata(&blob).expect("blob").len() as usize;
        let wrong = compressed_text_of_size(&key, compression, size);
        replace_blob_in_layout(&written.path, &written.layer_digests[0], &wrong);
        let measured = scan_fails(&format!("oci:{}", written.path.display()));
        assert_mismatch_without(&measured, &key);
    }
}

/// Text holding `key`, compressed, padded to exactly `size` bytes with what the format lets a
/// decoder skip: a gzip header comment, a zstd skippable frame.
fn compressed_text_of_size(key: &str, compression: Compression, size: usize) -> Vec<u8> {
    let mut len = 4096;
    loop {
        let text = secret_text(key, len);
        let plain = compress(&text, compression);
        match compression {
            Compression::Gzip if plain.len() < size => {
                let comment = vec![b'c'; size - plain.len() - 1];
                let mut encoder = flate2::GzBuilder::new()
                    .comment(comment)
                    .write(Vec::new(), flate2::Compression::default());
                std::io::Write::write_all(&mut encoder, &text).expect("gzip");
                let padded = encoder.finish().expect("gzip");
                if padded.len() == size {
                    return padded;
                }
            }
            Compression::Zstd if plain.len() + 8 <= size => {
                let mut padded = plain;
                let skip = size - padded.len() - 8;
                padded.extend_from_slice(&0x184D_2A50u32.to_le_bytes());
                padded.extend_from_slice(&(skip as u32).to_le_bytes());
                padded.resize(size, 0);
                return padded;
            }
            _ => {}
        }
        assert!(len > 64, "cannot fit compressed text into {size} bytes");
        len /= 2;
    }
}

#[test]
fn a_docker_save_layer_known_by_its_diff_id_only_is_checked_before_errors() {
    let tmp = tempdir();
    let original = tmp.path().join("original.tar");
    write_image(
        &one_layer_spec("nothing to see"),
        Format::DockerLegacy,
        Compression::None,
        &original,
    );
    let (member, size) = {
        let bytes = fs::read(&original).expect("read archive");
        let mut archive = tar::Archive::new(bytes.as_slice());
        let entries = archive.entries().expect("entries");
        entries
            .map(|entry| entry.expect("entry"))
            .map(|entry| {
                let path = entry.path().expect("path").to_string_lossy().into_owned();
                (path, entry.size() as usize)
            })
            .find(|(path, _)| path.ends_with("/layer.tar"))
            .expect("a layer.tar")
    };
    let key = aws_access_key_id();
    let hostile = tmp.path().join("hostile.tar");
    replace_member_in_archive(&original, &hostile, &member, &secret_text(&key, size));

    let measured = scan_fails(&format!("docker-archive:{}", hostile.display()));
    assert_mismatch_without(&measured, &key);
    assert!(
        measured.run.stderr.contains("layer: digest mismatch"),
        "{}",
        measured.run.stderr
    );
}

#[test]
fn manifests_and_configs_are_verified_before_their_json_is_read() {
    let key = aws_access_key_id();
    // Valid JSON of the wrong shape, which serde would quote: `diff_ids` of the wrong type.
    let hostile = json!({"rootfs": {"type": "layers", "diff_ids": key}}).to_string();
    for which in ["config", "manifest"] {
        let tmp = tempdir();
        let written = layout_with_one_layer(&tmp.path().join("layout"));
        let digest = match which {
            "config" => &written.config_digest,
            _ => &written.manifest_digest,
        };
        // As long as the blob it replaces (JSON may end in spaces): the size check passes.
        let blob = written
            .path
            .join(format!("blobs/sha256/{}", digest_hex(digest)));
        let size = fs::metadata(&blob).expect("blob").len() as usize;
        let mut bytes = hostile.clone().into_bytes();
        assert!(bytes.len() <= size, "{} > {size}", bytes.len());
        bytes.resize(size, b' ');
        replace_blob_in_layout(&written.path, digest, &bytes);
        let measured = scan_fails(&format!("oci:{}", written.path.display()));
        assert_mismatch_without(&measured, &key);
        assert!(
            measured
                .run
                .stderr
                .contains(&format!("{which} {digest}: digest mismatch")),
            "{}",
            measured.run.stderr
        );
    }
}

#[test]
fn verified_documents_of_the_wrong_shape_are_refused_without_quoting_them() {
    let key = aws_access_key_id();
    let cases: Vec<(&str, Value)> = vec![
        (
            "a config whose diff_id is not a digest",
            json!({"architecture": "amd64", "os": "linux",
                   "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{key}")]}}),
        ),
        (
            "a manifest whose layers are a string",
            json!({"schemaVersion": 2, "mediaType": MANIFEST, "layers": key}),
        ),
        (
            "an index whose media type is a number",
            json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": [
                {"mediaType": 7, "digest": format!("sha256:{}", "0".repeat(64)), "size": key}]}),
        ),
    ];
    for (what, document) in cases {
        let tmp = tempdir();
        let dir = tmp.path().join("layout");
        let bytes = document.to_string().into_bytes();
        let top = if what.starts_with("a config") {
            let config = put_blob(&dir, CONFIG, &bytes);
            let manifest = json!({"schemaVersion": 2, "mediaType": MANIFEST,
                                  "config": config, "layers": []});
            put_blob(&dir, MANIFEST, manifest.to_string().as_bytes())
        } else if what.starts_with("a manifest") {
            put_blob(&dir, MANIFEST, &bytes)
        } else {
            put_blob(&dir, INDEX, &bytes)
        };
        finish_layout(&dir, vec![top]);
        let measured = scan_fails(&format!("oci:{}", dir.display()));
        assert!(
            !measured.run.stderr.contains(&key),
            "{what}: {}",
            measured.run.stderr
        );
    }
}

// ---------------------------------------------------------------------------
// Registries: bounded reads and the manifest cap, against a loopback stub
// ---------------------------------------------------------------------------

/// What the stub answers on one path.
#[derive(Clone)]
enum Body {
    /// These bytes, with their length, under this content type.
    Fixed(&'static str, Vec<u8>),
    /// Spaces without end (no length: the body ends when the client hangs up).
    Endless(&'static str),
}

/// A registry stub on 127.0.0.1 answering `routes` (path → body), 404 elsewhere. Returns its
/// host and how many body bytes it has written so far.
fn registry_stub(
    routes: std::collections::HashMap<String, Body>,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    use std::io::{BufRead, BufReader, Write};
    use std::sync::atomic::Ordering;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let host = listener.local_addr().expect("addr").to_string();
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let routes = std::sync::Arc::new(routes);
    let counter = std::sync::Arc::clone(&sent);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let routes = std::sync::Arc::clone(&routes);
            let sent = std::sync::Arc::clone(&counter);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut writer = stream;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                    let head_only = line.starts_with("HEAD");
                    loop {
                        let mut header = String::new();
                        if reader.read_line(&mut header).unwrap_or(0) == 0 {
                            return;
                        }
                        if header.trim_end().is_empty() {
                            break;
                        }
                    }
                    let route = match path.as_str() {
                        "/v2/" => Some(Body::Fixed("application/json", b"{}".to_vec())),
                        _ => routes.get(&path).cloned(),
                    };
                    match route {
                        None => {
                            let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN"}]}"#;
                            let head = format!(
                                "HTTP/1.1 404 Not Found\r\nContent-Length: {}\r\n\r\n",
                                body.len()
                            );
                            let _ = writer.write_all(head.as_bytes());
                            let _ = writer.write_all(body);
                        }
                        Some(Body::Fixed(content_type, body)) => {
                            let head = format!(
                                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n\
                                 Content-Length: {}\r\n\r\n",
                                body.len()
                            );
                            let _ = writer.write_all(head.as_bytes());
                            if !head_only {
                                let _ = writer.write_all(&body);
                            }
                        }
                        Some(Body::Endless(content_type)) => {
                            let head = format!(
                                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n\
                                 Connection: close\r\n\r\n"
                            );
                            let _ = writer.write_all(head.as_bytes());
                            let block = vec![b' '; 64 << 10];
                            while writer.write_all(&block).is_ok() {
                                sent.fetch_add(block.len() as u64, Ordering::SeqCst);
                            }
                            return;
                        }
                    }
                }
            });
        }
    });
    (host, sent)
}

/// A small valid config and manifest for the stub, the manifest listing `layers`.
fn stub_image(layers: Vec<Value>) -> (Vec<u8>, Value, Vec<u8>) {
    let diff_ids: Vec<Value> = layers
        .iter()
        .map(|_| json!(sha256_digest(b"tar")))
        .collect();
    let config = json!({"architecture": "amd64", "os": "linux",
                        "rootfs": {"type": "layers", "diff_ids": diff_ids}})
    .to_string()
    .into_bytes();
    let config_desc = json!({"mediaType": CONFIG, "digest": sha256_digest(&config),
                             "size": config.len()});
    let manifest = json!({"schemaVersion": 2, "mediaType": MANIFEST, "config": config_desc,
                          "layers": layers})
    .to_string()
    .into_bytes();
    (config, config_desc, manifest)
}

#[test]
fn a_registry_sending_an_endless_manifest_or_config_is_cut_off_at_the_limit() {
    use std::sync::atomic::Ordering;
    // The manifest never ends.
    let routes = [("/v2/app/manifests/1".to_string(), Body::Endless(MANIFEST))];
    let (host, sent) = registry_stub(routes.into_iter().collect());
    let measured = scan_fails(&format!("{host}/app:1"));
    assert!(
        measured
            .run
            .stderr
            .contains(&format!("sent a manifest larger than {} bytes", 8 << 20)),
        "{}",
        measured.run.stderr
    );
    // Read as it comes and dropped at the limit: not buffered to the end (there is none).
    let written = sent.load(Ordering::SeqCst);
    assert!(
        written < 256 << 20,
        "{written} bytes sent before the client hung up"
    );

    // The manifest is fine; its config never ends.
    let (_, config_desc, manifest) = stub_image(Vec::new());
    let config_digest = config_desc["digest"].as_str().unwrap().to_string();
    let routes = [
        (
            "/v2/app/manifests/1".to_string(),
            Body::Fixed(MANIFEST, manifest),
        ),
        (
            format!("/v2/app/blobs/{config_digest}"),
            Body::Endless(CONFIG),
        ),
    ];
    let (host, sent) = registry_stub(routes.into_iter().collect());
    let measured = scan_fails(&format!("{host}/app:1"));
    assert!(
        measured
            .run
            .stderr
            .contains(&format!("larger than {} bytes", 16 << 20)),
        "{}",
        measured.run.stderr
    );
    let written = sent.load(Ordering::SeqCst);
    assert!(
        written < 256 << 20,
        "{written} bytes sent before the client hung up"
    );
}

#[test]
fn a_registry_index_of_more_than_1000_platforms_is_refused_before_any_is_fetched() {
    let manifests: Vec<Value> = (0..1001)
        .map(|i| {
            json!({"mediaType": MANIFEST, "digest": sha256_digest(format!("m{i}").as_bytes()),
                   "size": 100, "platform": {"os": "linux", "architecture": format!("arch{i}")}})
        })
        .collect();
    let routes = [(
        "/v2/app/manifests/1".to_string(),
        Body::Fixed(INDEX, index_of(manifests)),
    )];
    let (host, _) = registry_stub(routes.into_iter().collect());
    let measured = run_measured(
        &[
            "scan",
            "--format",
            "json",
            "--all-platforms",
            &format!("{host}/app:1"),
        ],
        TIME_LIMIT,
    );
    assert_eq!(measured.run.code, 2, "{}", measured.run.stderr);
    assert!(
        measured
            .run
            .stderr
            .contains("the image index lists more than 1000 image manifests"),
        "{}",
        measured.run.stderr
    );
}

#[test]
fn a_registry_layer_with_wrong_content_is_a_digest_mismatch() {
    let key = aws_access_key_id();
    let text = secret_text(&key, 4096);
    // The descriptor's digest is of other bytes; its size is the text's.
    let claimed = sha256_digest(b"the real layer");
    let layer = json!({"mediaType": "application/vnd.oci.image.layer.v1.tar",
                       "digest": claimed, "size": text.len()});
    let (config, config_desc, manifest) = stub_image(vec![layer]);
    let config_digest = config_desc["digest"].as_str().unwrap().to_string();
    let routes = [
        (
            "/v2/app/manifests/1".to_string(),
            Body::Fixed(MANIFEST, manifest),
        ),
        (
            format!("/v2/app/blobs/{config_digest}"),
            Body::Fixed(CONFIG, config),
        ),
        (
            format!("/v2/app/blobs/{claimed}"),
            Body::Fixed("application/octet-stream", text),
        ),
    ];
    let (host, _) = registry_stub(routes.into_iter().collect());
    let measured = scan_fails(&format!("{host}/app:1"));
    assert_mismatch_without(&measured, &key);
}

/// What the image says of itself (a ref name, the tags in `manifest.json`, a member path it
/// names) is input: errors that quote it redact any secret in it, as findings do.
fn assert_redacted_in_error(measured: &Measured, key: &str) {
    let stderr = &measured.run.stderr;
    assert!(!stderr.contains(&key[4..]), "{stderr}");
    assert!(
        stderr.contains("AKIA*"),
        "the name is still quoted: {stderr}"
    );
}

#[test]
fn an_oci_ref_name_holding_a_secret_is_redacted_in_errors() {
    let key = aws_access_key_id();
    let spec = ImageSpec {
        layers: vec![Layer::new("COPY x", Vec::new())],
        repo_tag: format!("stowaway.test/leaky:{key}"),
        ..ImageSpec::default()
    };
    // An uncompressed layer that is not a tar: the scan fails naming the image, whose
    // reference ends with the ref name.
    let layer = RawLayer::from_tar(&[0x5a; 1024], Compression::None);
    let tmp = tempdir();
    let dir = tmp.path().join("layout");
    write_layout_with_layers(&spec, &[layer], &dir);
    let measured = scan_fails(&format!("oci:{}", dir.display()));
    assert_redacted_in_error(&measured, &key);
}

#[test]
fn docker_save_tags_and_member_names_holding_secrets_are_redacted_in_errors() {
    let tmp = tempdir();
    // The tags an archive holds, listed when the requested one is not among them.
    let key = aws_access_key_id();
    let spec = ImageSpec {
        layers: vec![Layer::new("COPY x", vec![Entry::file("x", "x\n")])],
        repo_tag: format!("stowaway.test/leaky:{key}"),
        ..ImageSpec::default()
    };
    let written = write_image_in(&spec, Format::DockerLegacy, Compression::None, tmp.path());
    let arg = format!(
        "docker-archive:{}:stowaway.test/other:1",
        written.path.display()
    );
    let measured = scan_fails(&arg);
    assert!(
        measured.run.stderr.contains("no image tagged"),
        "{}",
        measured.run.stderr
    );
    assert_redacted_in_error(&measured, &key);

    // A layer path in manifest.json that names no member.
    let key = aws_access_key_id();
    let config = json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [sha256_digest(b"x")]},
    })
    .to_string();
    let manifest = json!([{
        "Config": "config.json", "RepoTags": ["stowaway.test/a:1"],
        "Layers": [format!("{key}/layer.tar")],
    }])
    .to_string();
    let mut tar = tar::Builder::new(Vec::new());
    for (name, bytes) in [("config.json", &config), ("manifest.json", &manifest)] {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, name, bytes.as_bytes())
            .expect("append");
    }
    let path = tmp.path().join("missing-layer.tar");
    fs::write(&path, tar.into_inner().expect("finish tar")).expect("write archive");
    let measured = scan_fails(&format!("docker-archive:{}", path.display()));
    assert!(
        measured.run.stderr.contains("missing"),
        "{}",
        measured.run.stderr
    );
    assert_redacted_in_error(&measured, &key);
}
