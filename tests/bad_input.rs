//! Bad input gets exit 2 and one clear line naming the input: never a panic, a hang or a
//! silent partial result.

mod support;

use std::fs;
use std::path::Path;

use support::run::run;
use support::*;

/// Asserts exit 2 with a single `stowaway: error:` line that names `input` and says `why`.
fn assert_input_error(arg: &str, input: &str, why: &str) {
    let result = run(&["scan", arg]);
    assert_eq!(
        result.code, 2,
        "{arg}: exit code; stderr: {}",
        result.stderr
    );
    assert!(
        result.stdout.is_empty(),
        "{arg}: no report on error, got {}",
        result.stdout
    );
    let lines: Vec<&str> = result.stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "{arg}: one line expected, got {:?}",
        result.stderr
    );
    let line = lines[0];
    assert!(line.starts_with("stowaway: error: "), "{line}");
    assert!(
        line.contains(input),
        "{arg}: the message must name {input}: {line}"
    );
    assert!(
        line.to_lowercase().contains(why),
        "{arg}: expected {why:?} in {line}"
    );
    assert!(!line.contains("panicked"), "{line}");
}

fn leak_archive(dir: &Path, format: Format, compression: Compression) -> Written {
    let (spec, _) = classic_leak();
    write_image_in(&spec, format, compression, dir)
}

#[test]
fn missing_paths() {
    assert_input_error("./no-such-image.tar", "no-such-image.tar", "no such file");
    assert_input_error(
        "docker-archive:/nonexistent/x.tar",
        "/nonexistent/x.tar",
        "no such file",
    );
    assert_input_error(
        "oci:/nonexistent/layout",
        "/nonexistent/layout",
        "not a directory",
    );
    assert_input_error(
        "oci-archive:/nonexistent/x.tar",
        "/nonexistent/x.tar",
        "no such file",
    );
}

#[test]
fn files_that_are_not_images() {
    let dir = tempdir();
    let text = dir.path().join("notes.txt");
    fs::write(&text, "just some notes, not an image\n".repeat(40)).unwrap();
    assert_input_error(
        &text.display().to_string(),
        "notes.txt",
        "not a readable image tarball",
    );
    let empty = dir.path().join("empty.tar");
    fs::write(&empty, b"").unwrap();
    assert_input_error(&empty.display().to_string(), "empty.tar", "not");
    // A valid tar that holds no image.
    let plain = dir.path().join("plain.tar");
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(5);
    header.set_cksum();
    builder
        .append_data(&mut header, "hello.txt", &b"hello"[..])
        .unwrap();
    fs::write(&plain, builder.into_inner().unwrap()).unwrap();
    assert_input_error(&plain.display().to_string(), "plain.tar", "not an image");
    let not_layout = dir.path().join("somedir");
    fs::create_dir(&not_layout).unwrap();
    assert_input_error(&not_layout.display().to_string(), "somedir", "not an image");
}

#[test]
fn corrupt_and_truncated_tarballs() {
    let dir = tempdir();
    for format in [Format::DockerLegacy, Format::DockerOci, Format::OciArchive] {
        let written = leak_archive(
            &dir.path().join(format!("{format:?}")),
            format,
            Compression::Gzip,
        );
        let size = fs::metadata(&written.path).unwrap().len() as usize;
        let truncated = dir.path().join(format!("{format:?}-truncated.tar"));
        corrupt_copy(
            &written.path,
            &truncated,
            Corruption::Truncate(size / 2 + 100),
        );
        assert_input_error(
            &truncated.display().to_string(),
            "truncated.tar",
            "truncated",
        );
        let corrupt = dir.path().join(format!("{format:?}-corrupt.tar"));
        // Byte 150 lies in the first member's header: its checksum no longer holds.
        corrupt_copy(&written.path, &corrupt, Corruption::FlipByteAt(150));
        assert_input_error(&corrupt.display().to_string(), "corrupt.tar", "corrupt");
    }
}

/// Flips one byte of file content inside an uncompressed layer: the tar still parses, only
/// the digest can tell.
#[test]
fn layer_digest_mismatch_is_detected_and_named() {
    let dir = tempdir();
    let written = leak_archive(dir.path(), Format::OciLayout, Compression::None);
    let blob = written
        .path
        .join("blobs/sha256")
        .join(digest_hex(&written.layer_digests[0]));
    let mut bytes = fs::read(&blob).unwrap();
    let at = bytes
        .windows(7)
        .position(|w| w == b"Debian ")
        .expect("os-release text");
    bytes[at] ^= 0x20;
    fs::write(&blob, &bytes).unwrap();
    let arg = format!("oci:{}", written.path.display());
    assert_input_error(&arg, &written.layer_digests[0], "digest mismatch");

    // Legacy docker-save names layers by diff_id: checked on the content as it is read.
    let legacy = leak_archive(
        &dir.path().join("legacy"),
        Format::DockerLegacy,
        Compression::Gzip,
    );
    let tampered = dir.path().join("tampered.tar");
    let members = read_image_files(&legacy.path);
    // The layer that holds os-release (member names are content hashes, so search).
    let (layer_member, mut plain, at) = members
        .iter()
        .filter(|(name, _)| name.ends_with("layer.tar"))
        .find_map(|(name, bytes)| {
            let plain = decompress(bytes);
            let at = plain.windows(7).position(|w| w == b"Debian ")?;
            Some((name.clone(), plain, at))
        })
        .expect("a layer with os-release");
    plain[at] ^= 0x20;
    replace_member_in_archive(
        &legacy.path,
        &tampered,
        &layer_member,
        &compress(&plain, Compression::Gzip),
    );
    assert_input_error(
        &tampered.display().to_string(),
        "tampered.tar",
        "digest mismatch",
    );
}

#[test]
fn manifest_naming_a_missing_blob() {
    let dir = tempdir();
    let written = leak_archive(dir.path(), Format::OciLayout, Compression::Zstd);
    let blob = written
        .path
        .join("blobs/sha256")
        .join(digest_hex(&written.layer_digests[2]));
    fs::remove_file(blob).unwrap();
    let arg = format!("oci:{}", written.path.display());
    assert_input_error(&arg, &written.layer_digests[2], "missing");

    let config = written
        .path
        .join("blobs/sha256")
        .join(digest_hex(&written.config_digest));
    fs::remove_file(config).unwrap();
    assert_input_error(&arg, &written.config_digest, "missing");
}

#[test]
fn corrupt_compressed_layer() {
    let dir = tempdir();
    for compression in [Compression::Gzip, Compression::Zstd] {
        let written = leak_archive(
            &dir.path().join(format!("{compression:?}")),
            Format::OciLayout,
            compression,
        );
        let blob = written
            .path
            .join("blobs/sha256")
            .join(digest_hex(&written.layer_digests[0]));
        let bytes = fs::read(&blob).unwrap();
        // Cut the compressed stream short: the decoder must fail, not yield a partial scan.
        fs::write(&blob, &bytes[..bytes.len() / 2]).unwrap();
        let arg = format!("oci:{}", written.path.display());
        let result = run(&["scan", &arg]);
        assert_eq!(result.code, 2, "{compression:?}: {}", result.stderr);
        assert_eq!(result.stderr.lines().count(), 1, "{}", result.stderr);
        assert!(
            result.stderr.contains(&written.layer_digests[0]),
            "{}",
            result.stderr
        );
    }
}

#[test]
fn bad_flags_are_usage_errors() {
    let dir = tempdir();
    let written = leak_archive(dir.path(), Format::OciArchive, Compression::None);
    let arg = written.path.display().to_string();
    for args in [
        vec!["scan", "--fail-on", "severe", &arg],
        vec!["scan", "--platform", "linux", &arg],
        vec!["scan", "--format", "yaml", &arg],
        vec!["scan", "--disable-rule", "no-such-rule", &arg],
        vec!["scan"],
    ] {
        let result = run(&args);
        assert_eq!(result.code, 2, "{args:?}: {}", result.stderr);
        assert!(!result.stderr.contains("panicked"), "{}", result.stderr);
    }
}
