//! Hostile layer tars, built byte by byte at test time: every file a runtime extracts is
//! scanned (umoci, which reads with Go's archive/tar, is the referee), metadata cannot exhaust
//! memory, sparse holes are never expanded, whiteout markers and hard-link chains hide
//! nothing, and no error quotes input bytes. Every scan must finish within a minute and
//! 300 MiB.

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::craft::{
    BLOCK, base_256, end, file, gnu_header, header, padded, pax, seal, streamed_gzip_layer,
    write_repeated,
};
use support::run::{Measured, finding_places, run_measured};
use support::secrets::aws_access_key_id;
use support::*;

const TIME_LIMIT: Duration = Duration::from_secs(60);
const MEMORY_LIMIT_MIB: u64 = 300;

/// An image spec with `layers` history steps (the layers themselves are made by hand).
fn spec(layers: usize) -> ImageSpec {
    ImageSpec {
        layers: (0..layers)
            .map(|i| Layer::new(&format!("RUN step {i}"), Vec::new()))
            .collect(),
        repo_tag: "stowaway.test/hostile:1".into(),
        ..ImageSpec::default()
    }
}

/// A line of text holding `key` where the AWS rules see it.
fn leak(key: &str) -> Vec<u8> {
    format!("aws_access_key_id = {key}\n").into_bytes()
}

/// Scans the layout within the time and memory bounds, JSON with secrets shown.
fn scan(layout: &Path) -> Measured {
    let arg = format!("oci:{}", layout.display());
    let measured = run_measured(
        &["scan", "--format", "json", "--show-secrets", &arg],
        TIME_LIMIT,
    );
    eprintln!(
        "{}: exit {}, peak RSS {} MiB, {:?}",
        layout.display(),
        measured.run.code,
        measured.peak_rss_mib,
        measured.elapsed
    );
    assert!(
        measured.peak_rss_mib <= MEMORY_LIMIT_MIB,
        "peak RSS {} MiB",
        measured.peak_rss_mib
    );
    measured
}

/// Each path the report has `key` at (a finding's place or one of its other places), as the
/// tar names it (without the report's leading `/`).
fn paths_of(report: &Value, key: &str) -> BTreeSet<String> {
    report["images"][0]["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["secret"] == key)
        .flat_map(|f| {
            let others = f["also_found_in"].as_array().cloned().unwrap_or_default();
            std::iter::once(f.clone()).chain(others)
        })
        .filter_map(|f| f["location"]["path"].as_str().map(tar_name))
        .collect()
}

/// A report path (`/etc/app.conf`) as the tar names it (`etc/app.conf`).
fn tar_name(path: &str) -> String {
    path.trim_start_matches('/').to_string()
}

/// The image's skipped items as `(what, reason)`.
fn skipped(report: &Value) -> Vec<(String, String)> {
    let items = report["images"][0]["skipped"].as_array().cloned();
    items
        .unwrap_or_default()
        .iter()
        .map(|s| {
            let text = |key: &str| s[key].as_str().unwrap_or_default().to_string();
            (text("what"), text("reason"))
        })
        .collect()
}

/// Layer 0: a header-only entry of every type runtimes can create (directory, symlink, hard
/// link, fifo) claiming exactly the bytes of the file after it, which the `tar` crate used
/// to skip. Layer 1: the same with character and block devices. Returns the tars and the
/// keys by the path of the file holding each.
fn bypass_layers() -> (Vec<Vec<u8>>, Vec<(String, String)>) {
    let hidden = (2 * BLOCK) as u64; // a header and one block of data
    let mut keys = Vec::new();
    let mut add = |tar: &mut Vec<u8>, path: &str| {
        let key = aws_access_key_id();
        tar.extend(file(path, &leak(&key)));
        keys.push((path.to_string(), key));
    };
    let mut first = header(b"d/", b'5', 0, b"").to_vec();
    add(&mut first, "d/base.txt");
    first.extend(header(b"d/sub/", b'5', hidden, b""));
    add(&mut first, "d/sub/one.txt");
    first.extend(header(b"d/link", b'2', hidden, b"base.txt"));
    add(&mut first, "d/two.txt");
    first.extend(header(b"d/hard", b'1', hidden, b"d/base.txt"));
    add(&mut first, "d/three.txt");
    first.extend(header(b"d/fifo", b'6', hidden, b""));
    add(&mut first, "d/four.txt");
    first.extend(end());
    let mut second = header(b"dev-char", b'3', hidden, b"").to_vec();
    add(&mut second, "five.txt");
    second.extend(header(b"dev-block", b'4', hidden, b""));
    add(&mut second, "six.txt");
    second.extend(end());
    (vec![first, second], keys)
}

#[test]
fn header_only_entries_with_a_size_hide_no_file() {
    let dir = tempdir();
    let (tars, keys) = bypass_layers();
    for compression in [Compression::None, Compression::Gzip] {
        let layers: Vec<RawLayer> = tars
            .iter()
            .map(|tar| RawLayer::from_tar(tar, compression))
            .collect();
        let layout = dir.path().join(format!("{compression:?}"));
        write_layout_with_layers(&spec(2), &layers, &layout);
        let measured = scan(&layout);
        assert_eq!(measured.run.code, 1, "{}", measured.run.stderr);
        let report = measured.run.json();
        for (path, key) in &keys {
            assert!(
                paths_of(&report, key).contains(path),
                "{compression:?}: {path} hid from the scan"
            );
        }
        let irregular: BTreeSet<String> = skipped(&report)
            .into_iter()
            .filter(|(_, reason)| reason.contains("claims 1024 data bytes"))
            .map(|(what, _)| what)
            .collect();
        let expected = [
            "d/sub",
            "d/link",
            "d/hard",
            "d/fifo",
            "dev-char",
            "dev-block",
        ];
        assert_eq!(irregular, expected.iter().map(|s| s.to_string()).collect());
        // Irregular, not unscanned: every file was scanned as runtimes unpack it.
        let stats = &report["images"][0]["stats"];
        assert_eq!(
            (&stats["items_irregular"], &stats["items_skipped"]),
            (&6.into(), &0.into())
        );
    }
    unpacked_by_umoci_and_all_scanned(dir.path(), &tars[..1]);
}

/// Unpacks the layers with umoci (Go's archive/tar) and checks that every regular file it
/// writes has a finding under its path: each file holds a key, so a file the scan missed
/// shows up as a path without one.
fn unpacked_by_umoci_and_all_scanned(dir: &Path, tars: &[Vec<u8>]) {
    if !tool_available("umoci") {
        return;
    }
    let layers: Vec<RawLayer> = tars
        .iter()
        .map(|tar| RawLayer::from_tar(tar, Compression::Gzip))
        .collect();
    let spec = spec(layers.len());
    let layout = dir.join("for-umoci");
    write_layout_with_layers(&spec, &layers, &layout);
    let bundle = dir.join("bundle");
    let status = Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:{}", layout.display(), spec.tag()))
        .arg(&bundle)
        .status()
        .expect("run umoci");
    assert!(status.success(), "umoci unpack failed");
    let rootfs = bundle.join("rootfs");
    let written = regular_files(&rootfs, &rootfs);
    assert!(written.len() >= 5, "umoci wrote {written:?}");
    let report = scan(&layout).run.json();
    // A hard link holds the same key as its target: one finding, the link among its places.
    let reported: BTreeSet<String> = finding_places(&report["images"][0])
        .iter()
        .filter_map(|(place, _)| place["location"]["path"].as_str().map(tar_name))
        .collect();
    for path in &written {
        assert!(
            reported.contains(path),
            "umoci wrote {path}; the scan missed it"
        );
    }
}

/// Regular files under `dir`, as paths relative to `root`.
fn regular_files(root: &Path, dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).expect("read rootfs") {
        let path: PathBuf = entry.expect("rootfs entry").path();
        let kind = fs::symlink_metadata(&path).expect("stat").file_type();
        if kind.is_dir() {
            found.extend(regular_files(root, &path));
        } else if kind.is_file() {
            let relative = path.strip_prefix(root).expect("under the root");
            found.push(relative.to_string_lossy().into_owned());
        }
    }
    found
}

/// A PAX size shorter than the file makes the next "header" a block of file content. Read as
/// Go reads it, that is a corrupt (or, with a valid checksum, truncated) archive: exit 2, one
/// line naming the layer, and none of the content in it.
#[test]
fn a_lying_pax_size_fails_without_quoting_the_content() {
    let dir = tempdir();
    for valid_checksum in [false, true] {
        let key = aws_access_key_id();
        let mut fake = [0u8; BLOCK];
        fake[..key.len()].copy_from_slice(key.as_bytes());
        if valid_checksum {
            fake = header(key.as_bytes(), b'0', 1 << 30, key.as_bytes());
        }
        let mut content = padded(b"first block of the real file\n");
        content.extend(fake);
        content.extend(padded(&leak(&key)));
        let mut tar = pax(&[("size", b"10")]);
        tar.extend(header(b"notes.txt", b'0', content.len() as u64, b""));
        tar.extend(content);
        tar.extend(end());
        for compression in [Compression::None, Compression::Gzip] {
            let layout = dir.path().join(format!("{valid_checksum}-{compression:?}"));
            let layer = RawLayer::from_tar(&tar, compression);
            let written = write_layout_with_layers(&spec(1), &[layer], &layout);
            let result = scan(&layout).run;
            assert_eq!(result.code, 2, "{}", result.stderr);
            let lines: Vec<&str> = result.stderr.lines().collect();
            assert_eq!(lines.len(), 1, "{}", result.stderr);
            assert!(lines[0].starts_with("stowaway: error: "), "{}", lines[0]);
            assert!(lines[0].contains(": layer 0 ("), "{}", lines[0]);
            assert!(lines[0].contains(&written.layer_digests[0]), "{}", lines[0]);
            let why = if valid_checksum {
                "truncated"
            } else {
                "corrupt"
            };
            assert!(lines[0].contains(why), "{}", lines[0]);
            assert!(!result.stderr.contains(&key[4..16]), "{}", result.stderr);
        }
    }
}

/// A 1 GiB GNU long name (a few MB of gzip), a 16 MiB long link and a 16 MiB PAX header:
/// each is skipped unread and reported, and the files after them are scanned.
#[test]
fn oversized_names_and_pax_headers_are_skipped_in_bounded_memory() {
    let keys: Vec<String> = (0..3).map(|_| aws_access_key_id()).collect();
    let layer = streamed_gzip_layer(|out| {
        out.write_all(&gnu_header(b"././@LongLink", b'L', 1 << 30))?;
        write_repeated(out, b'n', 1 << 30)?;
        out.write_all(&file("after-name.txt", &leak(&keys[0])))?;
        out.write_all(&gnu_header(b"././@LongLink", b'K', 16 << 20))?;
        write_repeated(out, b'k', 16 << 20)?;
        out.write_all(&header(b"a-link", b'2', 0, b"after-name.txt"))?;
        out.write_all(&file("after-link.txt", &leak(&keys[1])))?;
        out.write_all(&header(b"PaxHeaders.0/x", b'x', 16 << 20, b""))?;
        write_repeated(out, b'p', 16 << 20)?;
        out.write_all(&file("after-pax.txt", &leak(&keys[2])))?;
        out.write_all(&end())
    });
    assert!(
        layer.blob.len() < 16 << 20,
        "{} bytes stored",
        layer.blob.len()
    );
    let dir = tempdir();
    write_layout_with_layers(&spec(1), &[layer], dir.path());
    let measured = scan(dir.path());
    assert_eq!(measured.run.code, 1, "{}", measured.run.stderr);
    let report = measured.run.json();
    for (key, path) in keys
        .iter()
        .zip(["after-name.txt", "after-link.txt", "after-pax.txt"])
    {
        assert!(paths_of(&report, key).contains(path), "{path} not scanned");
    }
    let reasons: Vec<String> = skipped(&report).into_iter().map(|(_, r)| r).collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    for (reason, what) in reasons.iter().zip(["long link", "long name", "PAX header"]) {
        assert!(
            reason.contains(what) && reason.contains("limit"),
            "{reason}"
        );
    }
}

/// Sparse files whose holes are a pebibyte: old GNU (`S`) and PAX 1.0. Only the stored data
/// segments are scanned, at their offsets in the file; holes add no lines.
#[test]
fn sparse_holes_are_never_expanded() {
    const PEBIBYTE: u64 = 1 << 50;
    let keys: Vec<String> = (0..4).map(|_| aws_access_key_id()).collect();
    // Segments a whole block long, as GNU tar writes them (the tar crate refused others).
    let mut first = [b"one\ntwo\n".as_slice(), &leak(&keys[0])].concat();
    first.resize(BLOCK, b'#');
    let second = leak(&keys[1]);
    let mut old_gnu = gnu_header(b"disk.img", b'S', (first.len() + second.len()) as u64);
    for (at, value) in [
        (386, 0),
        (398, first.len() as u64),
        (410, PEBIBYTE),
        (422, second.len() as u64),
        (483, PEBIBYTE + second.len() as u64),
    ] {
        old_gnu[at..at + 12].copy_from_slice(&base_256(value));
    }
    seal(&mut old_gnu);
    let mut tar = old_gnu.to_vec();
    tar.extend(padded(&[first.clone(), second.clone()].concat()));

    let third = leak(&keys[2]);
    let map = format!("1\n{PEBIBYTE}\n{}\n", third.len());
    let realsize = (PEBIBYTE + third.len() as u64).to_string();
    tar.extend(pax(&[
        ("GNU.sparse.major", b"1"),
        ("GNU.sparse.minor", b"0"),
        ("GNU.sparse.name", b"var/huge.db"),
        ("GNU.sparse.realsize", realsize.as_bytes()),
    ]));
    let data = [padded(map.as_bytes()), third].concat();
    tar.extend(header(
        b"GNUSparseFile.0/huge.db",
        b'0',
        data.len() as u64,
        b"",
    ));
    tar.extend(padded(&data));
    tar.extend(file("plain.txt", &leak(&keys[3])));
    tar.extend(end());

    let dir = tempdir();
    for compression in [Compression::None, Compression::Gzip] {
        let layout = dir.path().join(format!("{compression:?}"));
        let layer = RawLayer::from_tar(&tar, compression);
        write_layout_with_layers(&spec(1), &[layer], &layout);
        let measured = scan(&layout);
        assert!(
            measured.elapsed < Duration::from_secs(30),
            "{:?}",
            measured.elapsed
        );
        assert_eq!(measured.run.code, 1, "{}", measured.run.stderr);
        let report = measured.run.json();
        let line_of = |key: &str| {
            let findings = report["images"][0]["findings"].as_array().unwrap().clone();
            let found = findings.into_iter().find(|f| f["secret"] == key);
            let found = found.unwrap_or_else(|| panic!("{compression:?}: {key} not found"));
            let location = &found["location"];
            (
                tar_name(location["path"].as_str().unwrap()),
                location["line"].as_u64(),
            )
        };
        assert_eq!(line_of(&keys[0]), ("disk.img".to_string(), Some(3)));
        assert_eq!(line_of(&keys[1]), ("disk.img".to_string(), Some(4)));
        assert_eq!(line_of(&keys[2]), ("var/huge.db".to_string(), Some(1)));
        assert_eq!(line_of(&keys[3]), ("plain.txt".to_string(), Some(1)));
        assert!(skipped(&report).is_empty(), "{:?}", skipped(&report));
    }
}

/// A whiteout marker with content: runtimes never extract it, but its bytes ship. It is
/// scanned under its own name (deleted by its own layer) and still deletes the lower file.
#[test]
fn whiteout_markers_that_carry_content_are_scanned() {
    let (lower, hidden) = (aws_access_key_id(), aws_access_key_id());
    let spec = ImageSpec {
        layers: vec![
            Layer::new(
                "COPY app.conf",
                vec![Entry::file("etc/app.conf", leak(&lower))],
            ),
            Layer::new(
                "RUN rm etc/app.conf",
                vec![Entry::file("etc/.wh.app.conf", leak(&hidden))],
            ),
        ],
        ..ImageSpec::default()
    };
    let dir = tempdir();
    for compression in [Compression::None, Compression::Gzip] {
        let written = write_image_in(
            &spec,
            Format::OciLayout,
            compression,
            &dir.path().join(format!("{compression:?}")),
        );
        let report = scan(&written.path).run.json();
        let findings = report["images"][0]["findings"].as_array().unwrap().clone();
        let of = |key: &str| findings.iter().find(|f| f["secret"] == key).cloned();
        let marker = of(&hidden).expect("the marker's content is scanned");
        assert_eq!(marker["location"]["path"], "/etc/.wh.app.conf");
        assert_eq!(
            (&marker["status"], &marker["removed_in_layer"]),
            (&"deleted".into(), &1.into())
        );
        let deleted = of(&lower).expect("the lower file");
        assert_eq!(
            (&deleted["status"], &deleted["removed_in_layer"]),
            (&"deleted".into(), &1.into())
        );
    }
}

/// A link to a link to a file: every name gets the file's finding.
#[test]
fn every_name_in_a_hard_link_chain_is_reported() {
    let key = aws_access_key_id();
    let spec = ImageSpec {
        layers: vec![Layer::new(
            "COPY . .",
            vec![
                Entry::file("etc/key.txt", leak(&key)),
                Entry::hardlink("first", "etc/key.txt"),
                Entry::hardlink("second", "first"),
                Entry::hardlink("third", "second"),
            ],
        )],
        ..ImageSpec::default()
    };
    let dir = tempdir();
    let written = write_image_in(&spec, Format::OciLayout, Compression::Gzip, dir.path());
    let report = scan(&written.path).run.json();
    let expected = ["etc/key.txt", "first", "second", "third"];
    assert_eq!(
        paths_of(&report, &key),
        expected.iter().map(|s| s.to_string()).collect()
    );
}

/// The path of an irregular entry is input like any other: a key in it is redacted in the
/// report's skipped items, as in findings, in a layer and in a tar nested in a file.
#[test]
fn irregular_entry_names_are_redacted() {
    let (key, nested_key) = (aws_access_key_id(), aws_access_key_id());
    let mut nested = header(format!("in/{nested_key}/").as_bytes(), b'5', 512, b"").to_vec();
    nested.extend(file("in/after.txt", b"nothing to see\n"));
    nested.extend(end());
    let mut tar = header(format!("keys/{key}/").as_bytes(), b'5', 512, b"").to_vec();
    tar.extend(file("after.txt", b"nothing to see\n"));
    tar.extend(file("backup.tar", &nested));
    tar.extend(end());
    let dir = tempdir();
    let layer = RawLayer::from_tar(&tar, Compression::None);
    write_layout_with_layers(&spec(1), &[layer], dir.path());
    let measured = scan(dir.path());
    assert_eq!(measured.run.code, 0, "{}", measured.run.stderr);
    let items = skipped(&measured.run.json());
    let what: BTreeSet<String> = items.iter().map(|(what, _)| what.clone()).collect();
    assert_eq!(what.len(), 2, "{items:?}");
    assert!(
        what.iter().any(|w| w.starts_with("keys/AKIA*")),
        "{items:?}"
    );
    assert!(
        what.iter().any(|w| w.starts_with("backup.tar!/in/AKIA*")),
        "{items:?}"
    );
    assert!(!measured.run.stdout.contains(&key[4..]), "{items:?}");
    assert!(!measured.run.stdout.contains(&nested_key[4..]), "{items:?}");
}
