//! Self-test of the test-time image fixture builder in `tests/support/`.
//!
//! Every other integration test trusts these fixtures, so they are checked
//! here without stowaway: written images are re-opened with the `tar` crate,
//! serde_json, flate2 and zstd, digests are recomputed, the planted secrets
//! are found where `Planted` says, and — where installed — real tools
//! (skopeo, umoci, ssh-keygen, openssl) must accept the output.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::Value;
use support::secrets;
use support::*;

// ---------------------------------------------------------------------------
// An independent reader for every format
// ---------------------------------------------------------------------------

/// What [`open_image`] found, after checking every reference and digest.
struct Opened {
    config: Value,
    /// Uncompressed layer tars, in order.
    layer_tars: Vec<Vec<u8>>,
}

fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("valid JSON")
}

fn get<'a>(files: &'a BTreeMap<String, Vec<u8>>, path: &str) -> &'a [u8] {
    files.get(path).unwrap_or_else(|| {
        panic!(
            "missing {path}; have {:?}",
            files.keys().collect::<Vec<_>>()
        )
    })
}

/// Fetches `blobs/sha256/<hex>` and checks it hashes to `digest` and, when
/// given, has `size` bytes.
fn blob<'a>(files: &'a BTreeMap<String, Vec<u8>>, digest: &str, size: Option<&Value>) -> &'a [u8] {
    let bytes = get(files, &format!("blobs/sha256/{}", digest_hex(digest)));
    assert_eq!(
        sha256_digest(bytes),
        digest,
        "blob content matches its digest"
    );
    if let Some(size) = size {
        assert_eq!(
            size.as_u64(),
            Some(bytes.len() as u64),
            "descriptor size of {digest}"
        );
    }
    bytes
}

/// Checks layer bytes against the expected compression, blob digest and
/// diff_id; returns the uncompressed tar.
fn check_layer(bytes: &[u8], compression: Compression, digest: &str, diff_id: &str) -> Vec<u8> {
    assert_eq!(sha256_digest(bytes), digest, "layer blob digest");
    match compression {
        Compression::None => {
            assert!(!bytes.starts_with(&GZIP_MAGIC) && !bytes.starts_with(&ZSTD_MAGIC))
        }
        Compression::Gzip => assert!(bytes.starts_with(&GZIP_MAGIC), "gzip magic"),
        Compression::Zstd => assert!(bytes.starts_with(&ZSTD_MAGIC), "zstd magic"),
    }
    let tar = decompress(bytes);
    assert_eq!(
        sha256_digest(&tar),
        diff_id,
        "uncompressed layer hashes to its diff_id"
    );
    // And it is a readable tar.
    tar_members(&tar);
    tar
}

/// Re-opens a written image with nothing but tar/serde_json/flate2/zstd and
/// checks every reference resolves and every digest is the sha256 of the
/// bytes it names.
fn open_image(format: Format, compression: Compression, spec: &ImageSpec, w: &Written) -> Opened {
    assert_eq!(w.path.is_dir(), !format.is_archive());
    let files = read_image_files(&w.path);
    let (repo, tag) = spec.repo_and_tag();

    // Every blob in a blobs/ directory is named by its own digest.
    for (path, bytes) in files.iter().filter(|(p, _)| p.starts_with("blobs/")) {
        let hex = path
            .strip_prefix("blobs/sha256/")
            .expect("sha256 blobs only");
        assert_eq!(sha256_digest(bytes), format!("sha256:{hex}"), "{path}");
    }

    let (config_bytes, layer_blobs): (&[u8], Vec<&[u8]>) = match format {
        Format::DockerLegacy => {
            let manifest = parse(get(&files, "manifest.json"));
            let entry = manifest
                .as_array()
                .expect("manifest.json is an array")
                .iter()
                .find(|e| e["RepoTags"] == serde_json::json!([spec.repo_tag]))
                .expect("manifest.json entry with our RepoTags");
            let config_name = entry["Config"].as_str().expect("Config");
            assert_eq!(
                config_name,
                format!("{}.json", digest_hex(&w.config_digest))
            );
            let mut parent: Option<String> = None;
            let mut layers = Vec::new();
            for l in entry["Layers"].as_array().expect("Layers") {
                let l = l.as_str().expect("layer path");
                let id = l.strip_suffix("/layer.tar").expect("<id>/layer.tar");
                assert_eq!(get(&files, &format!("{id}/VERSION")), b"1.0");
                let v1 = parse(get(&files, &format!("{id}/json")));
                assert_eq!(v1["id"], id);
                assert_eq!(v1["parent"].as_str(), parent.as_deref(), "v1 parent chain");
                parent = Some(id.to_string());
                layers.push(get(&files, l));
            }
            let repos = parse(get(&files, "repositories"));
            assert_eq!(
                repos[&repo][&tag].as_str(),
                parent.as_deref(),
                "repositories -> top layer"
            );
            (get(&files, config_name), layers)
        }
        Format::DockerOci | Format::OciLayout | Format::OciArchive => {
            assert_eq!(
                parse(get(&files, "oci-layout")),
                serde_json::json!({"imageLayoutVersion": "1.0.0"})
            );
            let index = parse(get(&files, "index.json"));
            assert_eq!(index["schemaVersion"], 2);
            assert_eq!(index["mediaType"], MT_OCI_INDEX);
            let desc = index["manifests"]
                .as_array()
                .expect("manifests")
                .iter()
                .find(|d| d["annotations"][ANNOTATION_REF_NAME] == tag.as_str())
                .expect("index descriptor tagged with our tag");
            assert_eq!(desc["mediaType"], MT_OCI_MANIFEST);
            assert_eq!(desc["digest"], w.manifest_digest.as_str());
            if format == Format::DockerOci {
                assert_eq!(
                    desc["annotations"][ANNOTATION_CONTAINERD_NAME],
                    spec.repo_tag.as_str()
                );
            }
            let manifest = parse(blob(&files, &w.manifest_digest, Some(&desc["size"])));
            assert_eq!(manifest["schemaVersion"], 2);
            assert_eq!(manifest["mediaType"], MT_OCI_MANIFEST);
            assert_eq!(manifest["config"]["mediaType"], MT_OCI_CONFIG);
            assert_eq!(manifest["config"]["digest"], w.config_digest.as_str());
            let config = blob(&files, &w.config_digest, Some(&manifest["config"]["size"]));
            let mut layers = Vec::new();
            for l in manifest["layers"].as_array().expect("layers") {
                assert_eq!(l["mediaType"], compression.oci_layer_media_type());
                layers.push(blob(
                    &files,
                    l["digest"].as_str().expect("digest"),
                    Some(&l["size"]),
                ));
            }
            if format == Format::DockerOci {
                // The legacy manifest.json Docker 25+ keeps for old readers.
                let legacy = parse(get(&files, "manifest.json"));
                let entry = &legacy[0];
                assert_eq!(entry["RepoTags"], serde_json::json!([spec.repo_tag]));
                assert_eq!(
                    entry["Config"],
                    format!("blobs/sha256/{}", digest_hex(&w.config_digest))
                );
                let expected: Vec<String> = w
                    .layer_digests
                    .iter()
                    .map(|d| format!("blobs/sha256/{}", digest_hex(d)))
                    .collect();
                assert_eq!(entry["Layers"], serde_json::json!(expected));
            }
            (config, layers)
        }
    };

    assert_eq!(sha256_digest(config_bytes), w.config_digest);
    let config = parse(config_bytes);
    assert_eq!(config["rootfs"]["type"], "layers");
    assert_eq!(config["rootfs"]["diff_ids"], serde_json::json!(w.diff_ids));
    assert_eq!(config["os"], spec.os.as_str());
    assert_eq!(config["architecture"], spec.architecture.as_str());
    assert_eq!(layer_blobs.len(), spec.layers.len());
    assert_eq!(w.layer_digests.len(), spec.layers.len());

    let layer_tars = layer_blobs
        .iter()
        .enumerate()
        .map(|(i, b)| check_layer(b, compression, &w.layer_digests[i], &w.diff_ids[i]))
        .collect();

    // History: one non-empty entry per layer, in order, empties where placed.
    let history = config["history"].as_array().expect("history");
    let expected = spec.history();
    assert_eq!(history.len(), expected.len());
    for (h, e) in history.iter().zip(&expected) {
        assert_eq!(h["created_by"], e.created_by.as_str());
        assert_eq!(h["empty_layer"].as_bool(), e.empty_layer.then_some(true));
        assert_eq!(h["comment"], HISTORY_COMMENT);
    }
    assert_eq!(
        history
            .iter()
            .filter(|h| h.get("empty_layer").is_none())
            .count(),
        spec.layers.len()
    );

    Opened { config, layer_tars }
}

fn member<'a>(members: &'a [TarMember], path: &str) -> &'a TarMember {
    members.iter().find(|m| m.path == path).unwrap_or_else(|| {
        panic!(
            "no {path} in layer: {:?}",
            members.iter().map(|m| &m.path).collect::<Vec<_>>()
        )
    })
}

/// A minimal overlay model: path -> index of the layer that provided it.
/// Whiteouts delete a path and its children; an opaque marker deletes what
/// *lower* layers put under its directory.
fn apply_layers(layer_tars: &[Vec<u8>]) -> BTreeMap<String, usize> {
    let mut fs: BTreeMap<String, usize> = BTreeMap::new();
    for (i, tar) in layer_tars.iter().enumerate() {
        for m in tar_members(tar) {
            let path = m.path.trim_end_matches('/').to_string();
            let (dir, name) = match path.rsplit_once('/') {
                Some((d, n)) => (format!("{d}/"), n.to_string()),
                None => (String::new(), path.clone()),
            };
            if name == ".wh..wh..opq" {
                fs.retain(|p, layer| !(p.starts_with(&dir) && *layer < i));
            } else if let Some(victim) = name.strip_prefix(".wh.") {
                let victim = format!("{dir}{victim}");
                fs.retain(|p, _| *p != victim && !p.starts_with(&format!("{victim}/")));
            } else {
                fs.insert(path, i);
            }
        }
    }
    fs
}

/// Checks the classic leak's layer entries and config against `Planted`.
fn check_classic_leak(opened: &Opened, spec: &ImageSpec, planted: &Planted) {
    let layers: Vec<Vec<TarMember>> = opened.layer_tars.iter().map(|t| tar_members(t)).collect();

    // Whiteouts: empty regular files with the .wh. names.
    for path in ["root/.aws/.wh.credentials", "root/.ssh/.wh.id_rsa"] {
        let m = member(&layers[1], path);
        assert_eq!(m.kind, tar::EntryType::Regular);
        assert!(m.data.is_empty());
    }
    // Opaque marker, before the new file of the same layer.
    let opq = layers[2]
        .iter()
        .position(|m| m.path == "app/config/.wh..wh..opq")
        .expect("opaque marker");
    let settings = layers[2]
        .iter()
        .position(|m| m.path == "app/config/settings.yaml")
        .expect("settings");
    assert!(opq < settings);
    assert!(layers[2][opq].data.is_empty() && layers[2][opq].kind == tar::EntryType::Regular);
    // Links.
    let hard = member(&layers[3], "home/dev/.ssh/id_ed25519.bak");
    assert_eq!(hard.kind, tar::EntryType::Link);
    assert_eq!(hard.link.as_deref(), Some("home/dev/.ssh/id_ed25519"));
    let sym = member(&layers[3], "home/dev/key-link");
    assert_eq!(sym.kind, tar::EntryType::Symlink);
    assert_eq!(sym.link.as_deref(), Some("/home/dev/.ssh/id_ed25519"));
    assert_eq!(member(&layers[3], "home/dev/.ssh/id_ed25519").mode, 0o600);
    // The pseudo-binary.
    let elf = member(&layers[0], "usr/local/bin/app");
    assert!(elf.data.starts_with(b"\x7fELF") && elf.data.len() == 200 * 1024);

    let final_fs = apply_layers(&opened.layer_tars);
    let env: Vec<&str> = opened.config["config"]["Env"]
        .as_array()
        .expect("Env")
        .iter()
        .map(|v| v.as_str().expect("string"))
        .collect();
    assert!(env.contains(&DEFAULT_PATH_ENV));
    let history = opened.config["history"].as_array().expect("history");
    assert_eq!(history[0]["created_by"], "ARG NPM_TOKEN");
    assert_eq!(history[0]["empty_layer"], true);
    assert_eq!(
        opened.config["config"]["Labels"]["org.opencontainers.image.source"],
        "https://example.com/app"
    );

    for p in planted {
        match &p.kind {
            PlantedKind::LayerFile {
                layer,
                path,
                status,
                removed_in_layer,
            } => {
                let m = member(&layers[*layer], path);
                let data = match m.kind {
                    tar::EntryType::Regular => &m.data,
                    tar::EntryType::Link => {
                        &member(&layers[*layer], m.link.as_deref().expect("target")).data
                    }
                    other => panic!("{path}: unexpected {other:?}"),
                };
                let text = String::from_utf8_lossy(data);
                assert!(
                    text.contains(&p.secret),
                    "{path} in layer {layer} holds {}",
                    p.rule_hint
                );
                match (*status, removed_in_layer) {
                    ("present", None) => {
                        assert_eq!(final_fs.get(path), Some(layer), "{path} present")
                    }
                    ("deleted", Some(by)) => {
                        assert!(!final_fs.contains_key(path), "{path} deleted");
                        // Still present when only layers up to `by - 1` are applied.
                        let before = apply_layers(&opened.layer_tars[..*by]);
                        assert_eq!(before.get(path), Some(layer));
                    }
                    ("overwritten", Some(by)) => {
                        assert_eq!(final_fs.get(path), Some(by), "{path} overwritten")
                    }
                    other => panic!("inconsistent status {other:?}"),
                }
            }
            PlantedKind::History { index } => {
                let created_by = history[*index]["created_by"].as_str().expect("created_by");
                assert!(
                    created_by.contains(&p.secret),
                    "history[{index}] holds {}",
                    p.rule_hint
                );
            }
            PlantedKind::ConfigEnv { key } => {
                assert!(
                    env.contains(&format!("{key}={}", p.secret).as_str()),
                    "Env {key}"
                );
            }
        }
    }
    // Sanity: the reference fixture plants what it documents.
    let hints: Vec<&str> = planted.iter().map(|p| p.rule_hint).collect();
    for hint in [
        "aws-access-key-id",
        "aws-secret-access-key",
        "private-key",
        "openssh-private-key",
        "github",
        "password",
        "npm",
    ] {
        assert!(hints.contains(&hint), "{hint} planted");
    }
    assert_eq!(spec.history_index_of_layer(5), 7);
}

// ---------------------------------------------------------------------------
// Formats
// ---------------------------------------------------------------------------

#[test]
fn every_format_and_compression_round_trips_the_classic_leak() {
    let (spec, planted) = classic_leak();
    let dir = tempdir();
    for format in Format::ALL {
        for compression in Compression::ALL {
            let sub = dir.path().join(format!("{format:?}-{compression:?}"));
            let w = write_image_in(&spec, format, compression, &sub);
            assert!(w.path.exists());
            let opened = open_image(format, compression, &spec, &w);
            check_classic_leak(&opened, &spec, &planted);
        }
    }
}

#[test]
fn writers_are_deterministic_and_formats_share_blobs() {
    let (spec, _) = classic_leak();
    let dir = tempdir();
    for compression in Compression::ALL {
        let a = write_image(
            &spec,
            Format::OciLayout,
            compression,
            &dir.path().join(format!("a-{compression:?}")),
        );
        let b = write_image(
            &spec,
            Format::OciArchive,
            compression,
            &dir.path().join(format!("b-{compression:?}.tar")),
        );
        let c = write_image(
            &spec,
            Format::DockerOci,
            compression,
            &dir.path().join(format!("c-{compression:?}.tar")),
        );
        let d = write_image(
            &spec,
            Format::DockerLegacy,
            compression,
            &dir.path().join(format!("d-{compression:?}.tar")),
        );
        for other in [&b, &c, &d] {
            assert_eq!(a.manifest_digest, other.manifest_digest);
            assert_eq!(a.config_digest, other.config_digest);
            assert_eq!(a.layer_digests, other.layer_digests);
            assert_eq!(a.diff_ids, other.diff_ids);
        }
    }
    let x = build_image(&spec, Compression::Gzip);
    let y = build_image(&spec, Compression::Gzip);
    assert_eq!(x.manifest_digest, y.manifest_digest);
}

#[test]
fn long_paths_round_trip_via_gnu_long_names_and_pax() {
    let long_dir = format!("opt/{}", "d".repeat(60));
    let gnu_path = format!("{long_dir}/{}", "g".repeat(150 - long_dir.len() - 1));
    let pax_path = format!("{long_dir}/{}", "p".repeat(150 - long_dir.len() - 1));
    assert_eq!((gnu_path.len(), pax_path.len()), (150, 150));
    let target = format!("/{}", "t".repeat(140));
    let entries = vec![
        Entry::file(&gnu_path, "gnu"),
        Entry::pax_file(&pax_path, "pax"),
        Entry::symlink("opt/long-link", &target),
        Entry::hardlink(&format!("{long_dir}/{}", "h".repeat(100)), &gnu_path),
        Entry::whiteout(&format!("{long_dir}/{}", "w".repeat(100))),
    ];
    let tar = layer_tar(&entries);

    let members = tar_members(&tar);
    let paths: Vec<&str> = members.iter().map(|m| m.path.as_str()).collect();
    let expected: Vec<String> = entries.iter().map(Entry::tar_path).collect();
    assert_eq!(paths, expected);
    assert_eq!(member(&members, &gnu_path).data, b"gnu");
    assert_eq!(member(&members, &pax_path).data, b"pax");
    assert_eq!(
        member(&members, "opt/long-link").link.as_deref(),
        Some(target.as_str())
    );
    assert!(expected[4].ends_with(&format!("/.wh.{}", "w".repeat(100))));

    // Raw view: the GNU path used an `L` record, the PAX one an `x` record,
    // and the PAX file's own ustar name is only a 100-byte truncation.
    let raw = raw_tar_headers(&tar);
    assert!(raw.iter().any(|(k, _)| *k == tar::EntryType::GNULongName));
    let x = raw
        .iter()
        .position(|(k, _)| *k == tar::EntryType::XHeader)
        .expect("PAX x header");
    assert_eq!(raw[x + 1].1, pax_path.as_bytes()[..100].to_vec());

    // And through a full image in every format.
    let spec = ImageSpec {
        layers: vec![Layer::new("COPY . /opt # buildkit", entries)],
        ..ImageSpec::default()
    };
    let dir = tempdir();
    for format in Format::ALL {
        let w = write_image_in(
            &spec,
            format,
            Compression::Zstd,
            &dir.path().join(format!("{format:?}")),
        );
        let opened = open_image(format, Compression::Zstd, &spec, &w);
        let members = tar_members(&opened.layer_tars[0]);
        assert_eq!(member(&members, &pax_path).data, b"pax");
        assert_eq!(member(&members, &gnu_path).data, b"gnu");
    }
}

#[test]
fn history_places_empty_steps_before_the_given_layer() {
    let spec = ImageSpec {
        layers: vec![Layer::new("L0", vec![]), Layer::new("L1", vec![])],
        empty_history: vec![
            (1, "ENV A=1".into()),
            (0, "ARG X".into()),
            (2, "CMD [\"x\"]".into()),
            (1, "ENV B=2".into()),
        ],
        ..ImageSpec::default()
    };
    let got: Vec<(String, bool)> = spec
        .history()
        .into_iter()
        .map(|h| (h.created_by, h.empty_layer))
        .collect();
    let want: Vec<(String, bool)> = [
        ("ARG X", true),
        ("L0", false),
        ("ENV A=1", true),
        ("ENV B=2", true),
        ("L1", false),
        ("CMD [\"x\"]", true),
    ]
    .iter()
    .map(|(s, e)| (s.to_string(), *e))
    .collect();
    assert_eq!(got, want);
    assert_eq!(spec.history_index_of_layer(1), 4);
    assert_eq!(
        split_repo_tag("localhost:5000/a/b"),
        ("localhost:5000/a/b".into(), "latest".into())
    );
    assert_eq!(
        split_repo_tag("localhost:5000/a/b:v2"),
        ("localhost:5000/a/b".into(), "v2".into())
    );
    // Config shape: empty config fields are omitted, author is copied.
    let config = config_json(
        &ImageSpec {
            author: Some("me".into()),
            ..spec
        },
        &[],
    );
    assert_eq!(config["config"], serde_json::json!({}));
    assert_eq!(config["author"], "me");
    assert_eq!(config["history"][0]["author"], "me");
}

#[test]
fn multi_image_docker_archive_holds_each_image_with_its_tags() {
    let base = Layer::new(
        "ADD rootfs.tar / # buildkit",
        vec![Entry::dir("etc"), Entry::file("etc/hostname", "base\n")],
    );
    let a = ImageSpec {
        layers: vec![
            base.clone(),
            Layer::new("COPY a /a # buildkit", vec![Entry::file("a", "A")]),
        ],
        repo_tag: "example.com/a:1".into(),
        ..ImageSpec::default()
    };
    let b = ImageSpec {
        layers: vec![
            base,
            Layer::new("COPY b /b # buildkit", vec![Entry::file("b", "B")]),
        ],
        repo_tag: "example.com/b:2".into(),
        architecture: "arm64".into(),
        ..ImageSpec::default()
    };
    let dir = tempdir();
    for compression in Compression::ALL {
        let dest = dir.path().join(format!("multi-{compression:?}.tar"));
        let written = write_multi_image_docker_archive(&[&a, &b], compression, &dest);
        assert_eq!(written.len(), 2);
        for (spec, w) in [&a, &b].iter().zip(&written) {
            open_image(Format::DockerLegacy, compression, spec, w);
        }
        let files = read_image_files(&dest);
        let manifest = parse(get(&files, "manifest.json"));
        assert_eq!(manifest.as_array().expect("array").len(), 2);
        assert_eq!(
            manifest[0]["Layers"][0], manifest[1]["Layers"][0],
            "shared base layer stored once"
        );
        assert_ne!(manifest[0]["Layers"][1], manifest[1]["Layers"][1]);
        assert_eq!(
            files.keys().filter(|k| k.ends_with("/layer.tar")).count(),
            3
        );
        let repos = parse(get(&files, "repositories"));
        assert!(repos["example.com/a"]["1"].is_string() && repos["example.com/b"]["2"].is_string());
    }
}

#[test]
fn oci_index_lists_several_manifests_tagged_and_untagged() {
    let a = ImageSpec {
        layers: vec![Layer::new("COPY a /a", vec![Entry::file("a", "A")])],
        repo_tag: "example.com/multi:amd".into(),
        ..ImageSpec::default()
    };
    let b = ImageSpec {
        layers: vec![Layer::new("COPY b /b", vec![Entry::file("b", "B")])],
        architecture: "arm64".into(),
        repo_tag: "example.com/multi:arm".into(),
        ..ImageSpec::default()
    };
    let dir = tempdir();
    for archive in [false, true] {
        let dest = dir.path().join(if archive { "index.tar" } else { "index" });
        let written = write_oci_index(
            &[(&a, Some("amd")), (&b, Some("arm")), (&a, None)],
            Compression::Gzip,
            &dest,
            archive,
        );
        assert_eq!(written.len(), 3);
        let format = if archive {
            Format::OciArchive
        } else {
            Format::OciLayout
        };
        open_image(format, Compression::Gzip, &a, &written[0]);
        open_image(format, Compression::Gzip, &b, &written[1]);
        let files = read_image_files(&dest);
        let index = parse(get(&files, "index.json"));
        let manifests = index["manifests"].as_array().expect("manifests");
        assert_eq!(manifests.len(), 3);
        assert_eq!(
            manifests[0]["platform"],
            serde_json::json!({"architecture": "amd64", "os": "linux"})
        );
        assert_eq!(
            manifests[1]["platform"],
            serde_json::json!({"architecture": "arm64", "os": "linux"})
        );
        assert_eq!(manifests[1]["annotations"][ANNOTATION_REF_NAME], "arm");
        assert!(manifests[2].get("annotations").is_none(), "untagged");
        assert_eq!(manifests[2]["digest"], written[0].manifest_digest.as_str());
    }
}

#[test]
fn corruption_helpers_break_exactly_what_they_say() {
    let (spec, _) = classic_leak();
    let dir = tempdir();
    let tar = write_image(
        &spec,
        Format::OciArchive,
        Compression::Gzip,
        &dir.path().join("img.tar"),
    );
    let len = std::fs::metadata(&tar.path).expect("stat").len() as usize;

    let cut = dir.path().join("cut.tar");
    corrupt_copy(&tar.path, &cut, Corruption::Truncate(len / 2));
    assert_eq!(
        std::fs::metadata(&cut).expect("stat").len() as usize,
        len / 2
    );

    let flipped = dir.path().join("flipped.tar");
    corrupt_copy(&tar.path, &flipped, Corruption::FlipByteAt(1000));
    let (orig, bad) = (
        std::fs::read(&tar.path).expect("read"),
        std::fs::read(&flipped).expect("read"),
    );
    let diffs: Vec<usize> = (0..len).filter(|&i| orig[i] != bad[i]).collect();
    assert_eq!(diffs, vec![1000]);
    assert_eq!(bad[1000], orig[1000] ^ 0xFF);

    // Digest mismatch in a layout directory.
    let layout = write_image(
        &spec,
        Format::OciLayout,
        Compression::Gzip,
        &dir.path().join("layout"),
    );
    let victim = &layout.layer_digests[0];
    replace_blob_in_layout(&layout.path, victim, b"not the layer");
    let blob =
        std::fs::read(layout.path.join("blobs/sha256").join(digest_hex(victim))).expect("blob");
    assert_eq!(blob, b"not the layer");
    assert_ne!(sha256_digest(&blob), *victim);

    // ...and in an archive; everything else is unchanged.
    let member_name = format!("blobs/sha256/{}", digest_hex(&tar.config_digest));
    let swapped = dir.path().join("swapped.tar");
    replace_member_in_archive(&tar.path, &swapped, &member_name, b"{}");
    let (before, after) = (read_image_files(&tar.path), read_image_files(&swapped));
    assert_eq!(after[&member_name], b"{}");
    assert_eq!(before.len(), after.len());
    for (k, v) in &before {
        if *k != member_name {
            assert_eq!(&after[k], v, "{k} untouched");
        }
    }
}

// ---------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------

/// Plain bitwise CRC-32/IEEE (reflected, poly 0xEDB88320): an implementation
/// independent of crc32fast.
fn crc32_bitwise(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Decodes GitHub-style base62 (`0-9A-Za-z`, most significant first).
fn base62_decode(s: &str) -> u64 {
    s.bytes().fold(0u64, |acc, c| {
        let digit = match c {
            b'0'..=b'9' => c - b'0',
            b'A'..=b'Z' => c - b'A' + 10,
            b'a'..=b'z' => c - b'a' + 36,
            _ => panic!("not base62: {c}"),
        };
        acc * 62 + u64::from(digit)
    })
}

#[test]
fn github_checksum_is_stable_and_matches_an_independent_crc32() {
    assert_eq!(
        crc32_bitwise(b"123456789"),
        0xCBF4_3926,
        "CRC-32/IEEE check value"
    );
    let fixed = "0123456789abcdefghijABCDEFGHIJ";
    assert_eq!(secrets::github_checksum(fixed), "3mpbCX");
    assert_eq!(
        base62_decode(&secrets::github_checksum(fixed)),
        u64::from(crc32_bitwise(fixed.as_bytes()))
    );
    // Padding: a tiny CRC still gives 6 characters.
    assert_eq!(secrets::github_checksum("").len(), 6);
    assert_eq!(
        base62_decode(&secrets::github_checksum("")),
        u64::from(crc32_bitwise(b""))
    );

    for _ in 0..200 {
        let token = secrets::github_classic_token();
        assert_eq!(token.len(), 40);
        let (random, check) = token["ghp_".len()..].split_at(30);
        assert!(random.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(check.len(), 6);
        assert_eq!(
            base62_decode(check),
            u64::from(crc32_bitwise(random.as_bytes()))
        );
    }
}

#[test]
fn simple_secrets_have_the_right_shape() {
    for _ in 0..100 {
        let id = secrets::aws_access_key_id();
        assert!(id.len() == 20 && id.starts_with("AKIA"));
        assert!(
            id[4..]
                .bytes()
                .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
        );

        let secret = secrets::aws_secret_access_key();
        assert_eq!(secret.len(), 40);
        assert!(
            secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'/' || b == b'+')
        );
        assert!(secret.bytes().any(|b| b.is_ascii_uppercase()));
        assert!(secret.bytes().any(|b| b.is_ascii_lowercase()));
        assert!(secret.bytes().any(|b| b.is_ascii_digit()));
        assert!(secrets::shannon_entropy(&secret) >= 4.3);

        let npm = secrets::npm_token();
        assert!(
            npm.len() == 40
                && npm.starts_with("npm_")
                && npm[4..].bytes().all(|b| b.is_ascii_alphanumeric())
        );

        for len in [4, 12, 32] {
            let pw = secrets::password(len);
            assert_eq!(pw.len(), len);
            assert!(
                pw.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || secrets::PASSWORD_SPECIALS.contains(&b))
            );
            assert!(pw.bytes().any(|b| b.is_ascii_uppercase()));
            assert!(pw.bytes().any(|b| b.is_ascii_lowercase()));
            assert!(pw.bytes().any(|b| b.is_ascii_digit()));
            assert!(pw.bytes().any(|b| secrets::PASSWORD_SPECIALS.contains(&b)));
            assert!(pw.as_bytes()[0].is_ascii_alphanumeric(), "{pw}");
        }

        let jwt = secrets::jwt();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header = parse(&URL_SAFE_NO_PAD.decode(parts[0]).expect("b64url"));
        assert_eq!(header, serde_json::json!({"alg": "HS256", "typ": "JWT"}));
        let payload = parse(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64url"));
        assert!(payload["sub"].is_string() && payload["iat"].is_u64());
        assert_eq!(URL_SAFE_NO_PAD.decode(parts[2]).expect("b64url").len(), 32);
    }
    let creds = secrets::aws_credentials_file("AKIAEXAMPLE", "s3cr3t");
    assert_eq!(
        creds,
        "[default]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = s3cr3t\n"
    );
    assert_eq!(secrets::dotenv(&[("A", "1"), ("B", "2")]), "A=1\nB=2\n");
}

/// Splits a PEM into (label, body bytes), checking line widths.
fn pem_body(pem: &str, label: &str, width: usize) -> Vec<u8> {
    let lines: Vec<&str> = pem.lines().collect();
    assert_eq!(lines[0], format!("-----BEGIN {label}-----"));
    assert_eq!(
        *lines.last().expect("footer"),
        format!("-----END {label}-----")
    );
    let body = &lines[1..lines.len() - 1];
    for (i, l) in body.iter().enumerate() {
        if i + 1 < body.len() {
            assert_eq!(l.len(), width, "full body lines are {width} chars");
        } else {
            assert!(!l.is_empty() && l.len() <= width);
        }
    }
    STANDARD.decode(body.concat()).expect("base64 body")
}

/// Reads one DER TLV, checking the length uses the minimal encoding.
fn der_read(buf: &[u8]) -> (u8, &[u8], &[u8]) {
    let tag = buf[0];
    let (len, header) = if buf[1] < 0x80 {
        (buf[1] as usize, 2)
    } else {
        let n = (buf[1] & 0x7f) as usize;
        assert!(n > 0 && buf[2] != 0, "minimal long-form length");
        let len = buf[2..2 + n]
            .iter()
            .fold(0usize, |a, &b| a << 8 | b as usize);
        assert!(len >= 0x80, "long form only when needed");
        (len, 2 + n)
    };
    (tag, &buf[header..header + len], &buf[header + len..])
}

#[test]
fn rsa_pem_is_a_well_formed_der_sequence_of_nine_integers() {
    for _ in 0..20 {
        let pem = secrets::rsa_private_key_pem();
        let der = pem_body(&pem, "RSA PRIVATE KEY", 64);
        let (tag, mut seq, rest) = der_read(&der);
        assert_eq!(tag, 0x30);
        assert!(rest.is_empty());
        let mut sizes = Vec::new();
        while !seq.is_empty() {
            let (tag, int, rest) = der_read(seq);
            assert_eq!(tag, 0x02);
            assert_eq!(int[0] & 0x80, 0, "positive");
            if int.len() > 1 {
                assert!(!(int[0] == 0 && int[1] & 0x80 == 0), "minimal integer");
            }
            sizes.push(int.len());
            seq = rest;
        }
        assert_eq!(sizes, [1, 257, 3, 256, 129, 129, 128, 128, 128]);
    }
    if tool_available("openssl") {
        let dir = tempdir();
        let path = dir.path().join("id_rsa");
        std::fs::write(&path, secrets::rsa_private_key_pem()).expect("write");
        let out = Command::new("openssl")
            .arg("asn1parse")
            .arg("-in")
            .arg(&path)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl asn1parse: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(text.matches("INTEGER").count(), 9);
    } else {
        eprintln!("openssl not installed; skipping the openssl cross-check");
    }
}

struct SshReader<'a>(&'a [u8]);

impl<'a> SshReader<'a> {
    fn u32(&mut self) -> u32 {
        let (n, rest) = self.0.split_at(4);
        self.0 = rest;
        u32::from_be_bytes(n.try_into().expect("4 bytes"))
    }
    fn string(&mut self) -> &'a [u8] {
        let len = self.u32() as usize;
        let (s, rest) = self.0.split_at(len);
        self.0 = rest;
        s
    }
}

#[test]
fn openssh_key_has_the_openssh_key_v1_structure() {
    let pem = secrets::openssh_private_key();
    let body = pem_body(&pem, "OPENSSH PRIVATE KEY", 70);
    let mut r = SshReader(body.strip_prefix(b"openssh-key-v1\0").expect("magic"));
    assert_eq!(r.string(), b"none");
    assert_eq!(r.string(), b"none");
    assert_eq!(r.string(), b"");
    assert_eq!(r.u32(), 1);
    let pub_blob = r.string();
    let section = r.string();
    assert!(r.0.is_empty());

    let mut p = SshReader(pub_blob);
    assert_eq!(p.string(), b"ssh-ed25519");
    let public = p.string();
    assert_eq!(public.len(), 32);

    assert_eq!(section.len() % 8, 0);
    let mut s = SshReader(section);
    assert_eq!(s.u32(), s.u32(), "check ints match");
    assert_eq!(s.string(), b"ssh-ed25519");
    assert_eq!(s.string(), public);
    let private = s.string();
    assert_eq!(private.len(), 64);
    assert_eq!(&private[32..], public);
    assert_eq!(s.string(), b"test@stowaway");
    let padding: Vec<u8> = (1..=s.0.len() as u8).collect();
    assert_eq!(s.0, padding.as_slice());

    // ssh-keygen reads the key and prints the same public key.
    if tool_available("ssh-keygen") {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempdir();
        let path = dir.path().join("id_ed25519");
        std::fs::write(&path, &pem).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let out = Command::new("ssh-keygen")
            .arg("-y")
            .arg("-f")
            .arg(&path)
            .output()
            .expect("ssh-keygen");
        assert!(
            out.status.success(),
            "ssh-keygen -y: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = String::from_utf8_lossy(&out.stdout);
        assert!(
            line.starts_with(&format!("ssh-ed25519 {}", STANDARD.encode(pub_blob))),
            "{line}"
        );
    } else {
        eprintln!("ssh-keygen not installed; skipping the ssh-keygen cross-check");
    }
}

// ---------------------------------------------------------------------------
// Real tools
// ---------------------------------------------------------------------------

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    out.stdout
}

fn skopeo() -> Command {
    let mut c = Command::new("skopeo");
    // No registry is contacted; the policy flag only avoids depending on
    // /etc/containers/policy.json being present.
    c.arg("--insecure-policy");
    c
}

fn transport(format: Format, path: &Path, tag: &str) -> String {
    let p = path.display();
    match format {
        Format::DockerLegacy | Format::DockerOci => format!("docker-archive:{p}"),
        Format::OciLayout => format!("oci:{p}:{tag}"),
        Format::OciArchive => format!("oci-archive:{p}:{tag}"),
    }
}

#[test]
fn skopeo_reads_and_copies_every_fixture() {
    if !tool_available("skopeo") {
        eprintln!("skopeo not installed; skipping");
        return;
    }
    let (spec, _) = classic_leak();
    let tag = spec.tag();
    let dir = tempdir();
    for format in Format::ALL {
        for compression in Compression::ALL {
            let sub = dir.path().join(format!("{format:?}-{compression:?}"));
            let w = write_image_in(&spec, format, compression, &sub);
            let src = transport(format, &w.path, &tag);

            if format == Format::OciLayout {
                // The raw manifest is byte-for-byte the blob we wrote.
                let raw = run(skopeo().args(["inspect", "--raw", &src]));
                assert_eq!(sha256_digest(&raw), w.manifest_digest);
            }
            let info = parse(&run(skopeo().args(["inspect", &src])));
            assert_eq!(info["Architecture"], "amd64", "{src}");
            assert_eq!(info["Os"], "linux");
            assert_eq!(
                info["Layers"].as_array().expect("Layers").len(),
                spec.layers.len()
            );
            let config = parse(&run(skopeo().args(["inspect", "--config", &src])));
            assert_eq!(config["rootfs"]["diff_ids"], serde_json::json!(w.diff_ids));

            // `copy` streams every blob and verifies its digest (diff_ids for
            // docker-archive, blob digests for OCI).
            let out = sub.join("copied");
            run(skopeo().args(["copy", "--quiet", &src, &format!("dir:{}", out.display())]));
            assert!(out.join("manifest.json").exists());
        }
    }
}

#[test]
fn umoci_stats_and_unpacks_the_layout_applying_whiteouts() {
    if !tool_available("umoci") {
        eprintln!("umoci not installed; skipping");
        return;
    }
    let (spec, planted) = classic_leak();
    let tag = spec.tag();
    let dir = tempdir();
    for compression in Compression::ALL {
        let sub = dir.path().join(format!("{compression:?}"));
        let w = write_image(&spec, Format::OciLayout, compression, &sub.join("layout"));
        let image = format!("{}:{tag}", w.path.display());
        let stat = String::from_utf8(run(Command::new("umoci").args(["stat", "--image", &image])))
            .expect("utf8");
        assert!(stat.contains("COPY id_ed25519"), "{stat}");

        if compression == Compression::Zstd {
            continue; // umoci < 0.5 cannot unpack zstd layers
        }
        let bundle = sub.join("bundle");
        run(Command::new("umoci")
            .args(["unpack", "--rootless", "--image", &image])
            .arg(&bundle));
        let rootfs = bundle.join("rootfs");
        for p in &planted {
            let PlantedKind::LayerFile { path, status, .. } = &p.kind else {
                continue;
            };
            let on_disk = std::fs::read(rootfs.join(path)).ok();
            match *status {
                "present" => {
                    assert!(String::from_utf8_lossy(&on_disk.expect(path)).contains(&p.secret))
                }
                "deleted" => assert!(on_disk.is_none(), "{path} deleted by umoci too"),
                "overwritten" => assert_eq!(on_disk.as_deref(), Some(&b"replace\n"[..]), "{path}"),
                other => panic!("{other}"),
            }
        }
        assert!(rootfs.join("app/config/settings.yaml").exists());
        assert!(!rootfs.join("app/config/.env").exists());
        assert_eq!(
            std::fs::read_link(rootfs.join("home/dev/key-link")).expect("symlink"),
            Path::new("/home/dev/.ssh/id_ed25519")
        );
    }
}

/// Negative control for the tool tests above: skopeo and umoci really verify
/// digests, so their accepting our fixtures means the digests are right (and
/// the corruption helpers produce what stowaway's negative tests expect).
#[test]
fn real_tools_reject_blobs_that_do_not_match_their_digest() {
    if !tool_available("skopeo") {
        eprintln!("skopeo not installed; skipping");
        return;
    }
    let (spec, _) = classic_leak();
    let tag = spec.tag();
    let dir = tempdir();
    let other_layer = layer_tar(&[Entry::file("x", "not the original layer")]);

    let layout = write_image(
        &spec,
        Format::OciLayout,
        Compression::Gzip,
        &dir.path().join("layout"),
    );
    replace_blob_in_layout(
        &layout.path,
        &layout.layer_digests[1],
        &compress(&other_layer, Compression::Gzip),
    );
    let src = transport(Format::OciLayout, &layout.path, &tag);
    let out = skopeo()
        .args([
            "copy",
            "--quiet",
            &src,
            &format!("dir:{}", dir.path().join("c1").display()),
        ])
        .output()
        .expect("skopeo");
    assert!(
        !out.status.success(),
        "skopeo copied a layout with a bad blob"
    );
    if tool_available("umoci") {
        let image = format!("{}:{tag}", layout.path.display());
        let out = Command::new("umoci")
            .args(["unpack", "--rootless", "--image", &image])
            .arg(dir.path().join("bundle"))
            .output()
            .expect("umoci");
        assert!(
            !out.status.success(),
            "umoci unpacked a layout with a bad blob"
        );
    }

    let legacy = write_image(
        &spec,
        Format::DockerLegacy,
        Compression::None,
        &dir.path().join("legacy.tar"),
    );
    let manifest = parse(&read_image_files(&legacy.path)["manifest.json"]);
    let member_name = manifest[0]["Layers"][1]
        .as_str()
        .expect("layer path")
        .to_string();
    let bad = dir.path().join("bad.tar");
    replace_member_in_archive(&legacy.path, &bad, &member_name, &other_layer);
    let out = skopeo()
        .args([
            "copy",
            "--quiet",
            &transport(Format::DockerLegacy, &bad, &tag),
            &format!("dir:{}", dir.path().join("c2").display()),
        ])
        .output()
        .expect("skopeo");
    assert!(
        !out.status.success(),
        "skopeo copied a docker archive whose layer mismatches its diff_id"
    );
}

/// The integration tests plant fresh random secrets on every run, so a value the generators
/// can produce but a rule misses (a password starting with `#`, say) makes them fail once in
/// a while. This draws the classic leak many times and runs each planted secret, in the text
/// it is planted in, through the built-in detector: every one must be found, every time.
#[test]
fn generated_secrets_are_always_found_in_their_planted_context() {
    use stowaway::detect::Detector;
    use stowaway::detect::rules::builtin_rules;

    let detector = Detector::new(builtin_rules().expect("built-in rules")).expect("detector");
    let mut misses = Vec::new();
    for _ in 0..400 {
        let (spec, planted) = classic_leak();
        let history = spec.history();
        for secret in &planted {
            let (context, text) = match &secret.kind {
                PlantedKind::LayerFile { layer, path, .. } => {
                    let entries = &spec.layers[*layer].entries;
                    // A hard link's content is its target's.
                    let stored_path = entries
                        .iter()
                        .find_map(|entry| match entry {
                            Entry::HardLink { path: p, target } if p == path => Some(target),
                            _ => None,
                        })
                        .unwrap_or(path);
                    let content = entries
                        .iter()
                        .find_map(|entry| match entry {
                            Entry::File {
                                path: p, content, ..
                            } if p == stored_path => Some(content),
                            _ => None,
                        })
                        .expect("planted file exists");
                    (path.clone(), content.clone())
                }
                PlantedKind::History { index } => (
                    format!("history/{index}"),
                    history[*index].created_by.clone().into_bytes(),
                ),
                PlantedKind::ConfigEnv { key } => {
                    let entry = spec
                        .env
                        .iter()
                        .find(|e| e.starts_with(&format!("{key}=")))
                        .expect("planted env entry");
                    (format!("config/Env/{key}"), entry.clone().into_bytes())
                }
            };
            let found = detector.scan_file(&context, &text).iter().any(|m| {
                let reported = String::from_utf8_lossy(&m.base.secret);
                let reported = reported.trim();
                !reported.is_empty() && secret.secret.contains(reported)
            });
            if !found {
                misses.push(format!("{context}: {:?}", secret.secret));
            }
        }
    }
    // The generator starts passwords with a letter or digit (see `secrets::password`); real
    // ones may start with anything it uses inside.
    for _ in 0..100 {
        for &special in secrets::PASSWORD_SPECIALS {
            let password = format!("{}{}", special as char, secrets::password(19));
            let dotenv = secrets::dotenv(&[("DB_PASSWORD", &password)]);
            let found = detector
                .scan_file("app/.env", dotenv.as_bytes())
                .iter()
                .any(|m| m.base.secret == password.as_bytes());
            if !found {
                misses.push(format!("app/.env: {password:?}"));
            }
        }
    }
    assert!(
        misses.is_empty(),
        "missed planted secrets:\n{}",
        misses.join("\n")
    );
}
