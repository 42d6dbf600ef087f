//! The classic leak, stored every way stowaway reads images, must give the same findings:
//! every planted secret once per location, with its layer, history step and status.

mod support;

use support::run::{assert_planted_found, finding_keys, scan_json};
use support::*;

fn image_arg(written: &Written, format: Format) -> String {
    let path = written.path.display();
    match format {
        Format::DockerLegacy | Format::DockerOci => format!("docker-archive:{path}"),
        Format::OciLayout => format!("oci:{path}"),
        Format::OciArchive => format!("oci-archive:{path}"),
    }
}

#[test]
fn classic_leak_in_every_format_and_compression() {
    let (spec, planted) = classic_leak();
    let dir = tempdir();
    let mut reference_keys: Option<Vec<String>> = None;
    for format in Format::ALL {
        for compression in Compression::ALL {
            let written = write_image_in(
                &spec,
                format,
                compression,
                &dir.path().join(format!("{format:?}-{compression:?}")),
            );
            for arg in [
                image_arg(&written, format),
                written.path.display().to_string(),
            ] {
                let label = format!("{format:?}/{compression:?} as {arg}");
                let (code, report) = scan_json(&arg);
                assert_eq!(code, 1, "{label}: findings must exit 1");
                let images = report["images"].as_array().unwrap();
                assert_eq!(images.len(), 1, "{label}");
                assert_planted_found(&images[0], &spec, &planted, &label);
                assert_eq!(
                    images[0]["config_digest"],
                    written.config_digest.as_str(),
                    "{label}"
                );
                let keys = finding_keys(&report);
                match &reference_keys {
                    None => reference_keys = Some(keys),
                    Some(expected) => assert_eq!(&keys, expected, "{label}: findings differ"),
                }
            }
        }
    }
}

#[test]
fn layer_metadata_names_digests_history_and_compression() {
    let (spec, _) = classic_leak();
    let dir = tempdir();
    let written = write_image_in(&spec, Format::OciLayout, Compression::Zstd, dir.path());
    let (_, report) = scan_json(&format!("oci:{}", written.path.display()));
    let image = &report["images"][0];
    assert_eq!(image["manifest_digest"], written.manifest_digest.as_str());
    assert_eq!(image["platform"], "linux/amd64");
    let layers = image["layers"].as_array().unwrap();
    assert_eq!(layers.len(), spec.layers.len());
    for (index, layer) in layers.iter().enumerate() {
        assert_eq!(layer["index"], index);
        assert_eq!(layer["digest"], written.layer_digests[index].as_str());
        assert_eq!(layer["diff_id"], written.diff_ids[index].as_str());
        assert_eq!(layer["compression"], "zstd");
        assert_eq!(layer["media_type"], MT_OCI_LAYER_ZSTD);
        assert_eq!(layer["history_index"], spec.history_index_of_layer(index));
    }
    assert_eq!(report["schema_version"], 1);
    assert_eq!(report["tool"]["name"], "stowaway");
    assert_eq!(report["stats"]["images"], 1);
}

#[test]
fn several_images_in_one_archive_are_each_scanned_or_picked_by_tag() {
    let (leaky, _) = classic_leak();
    let clean = ImageSpec {
        layers: vec![Layer::new(
            "COPY README /README",
            vec![Entry::file("README", "hello\n")],
        )],
        repo_tag: "example.com/clean:2.0".to_string(),
        ..ImageSpec::default()
    };
    let dir = tempdir();
    let path = dir.path().join("both.tar");
    write_multi_image_docker_archive(&[&leaky, &clean], Compression::None, &path);

    let (code, report) = scan_json(&path.display().to_string());
    assert_eq!(code, 1);
    let images = report["images"].as_array().unwrap();
    assert_eq!(images.len(), 2);
    assert!(
        images[0]["reference"]
            .as_str()
            .unwrap()
            .ends_with(":example.com/leaky:1.0")
    );
    assert!(images[1]["findings"].as_array().unwrap().is_empty());

    let (code, report) = scan_json(&format!(
        "docker-archive:{}:example.com/clean:2.0",
        path.display()
    ));
    assert_eq!(code, 0, "the clean image alone has no findings");
    assert_eq!(report["images"].as_array().unwrap().len(), 1);
}

#[test]
fn oci_index_with_several_manifests_by_tag_or_all() {
    let (leaky, _) = classic_leak();
    let clean = ImageSpec {
        layers: vec![Layer::new(
            "COPY README /README",
            vec![Entry::file("README", "hello\n")],
        )],
        architecture: "arm64".to_string(),
        ..ImageSpec::default()
    };
    let dir = tempdir();
    for archive in [false, true] {
        let dest = dir.path().join(if archive { "index.tar" } else { "index" });
        write_oci_index(
            &[(&leaky, Some("leaky")), (&clean, None)],
            Compression::Gzip,
            &dest,
            archive,
        );
        let transport = if archive { "oci-archive" } else { "oci" };
        let (_, report) = scan_json(&format!("{transport}:{}", dest.display()));
        let images = report["images"].as_array().unwrap();
        assert_eq!(images.len(), 2, "untagged scan covers every manifest");
        let platforms: Vec<&str> = images
            .iter()
            .map(|i| i["platform"].as_str().unwrap())
            .collect();
        assert_eq!(platforms, vec!["linux/amd64", "linux/arm64"]);
        let (_, report) = scan_json(&format!("{transport}:{}:leaky", dest.display()));
        assert_eq!(report["images"].as_array().unwrap().len(), 1);
    }
}

#[test]
fn platform_flag_selects_from_an_index() {
    let (leaky, _) = classic_leak();
    let clean = ImageSpec {
        layers: vec![Layer::new(
            "COPY README /README",
            vec![Entry::file("README", "hello\n")],
        )],
        architecture: "arm64".to_string(),
        ..ImageSpec::default()
    };
    let dir = tempdir();
    let dest = dir.path().join("index");
    write_oci_index(
        &[(&leaky, Some("leaky")), (&clean, Some("clean"))],
        Compression::Gzip,
        &dest,
        false,
    );
    let run = support::run::run(&[
        "scan",
        "--format",
        "json",
        "--platform",
        "linux/arm64",
        &format!("oci:{}", dest.display()),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    let images = report["images"].as_array().unwrap();
    assert_eq!(images.len(), 1);
    assert_eq!(images[0]["platform"], "linux/arm64");
}

/// A real tool converts the fixture, and both forms give the same findings.
#[test]
fn skopeo_converted_archive_gives_the_same_findings() {
    if !tool_available("skopeo") {
        return;
    }
    let (spec, planted) = classic_leak();
    let dir = tempdir();
    let written = write_image_in(&spec, Format::OciLayout, Compression::Gzip, dir.path());
    let converted = dir.path().join("converted.tar");
    let status = std::process::Command::new("skopeo")
        .args([
            "copy",
            "--quiet",
            &format!("oci:{}:{}", written.path.display(), spec.tag()),
            &format!(
                "docker-archive:{}:{}",
                converted.display(),
                CLASSIC_LEAK_REPO_TAG
            ),
        ])
        .status()
        .expect("run skopeo");
    assert!(status.success(), "skopeo copy failed");
    let (_, original) = scan_json(&format!("oci:{}:{}", written.path.display(), spec.tag()));
    let (_, copy) = scan_json(&format!("docker-archive:{}", converted.display()));
    assert_planted_found(&copy["images"][0], &spec, &planted, "skopeo docker-archive");
    assert_eq!(finding_keys(&original), finding_keys(&copy));
    assert_eq!(
        original["images"][0]["config_digest"],
        copy["images"][0]["config_digest"]
    );
}

/// Progress bars go to a terminal only: a CI log (a pipe) gets none of their escape codes.
#[test]
fn progress_is_drawn_on_a_terminal_and_never_into_a_pipe() {
    let (spec, _) = classic_leak();
    let dir = tempdir();
    let written = write_image_in(&spec, Format::OciLayout, Compression::Gzip, dir.path());
    let image = format!("oci:{}", written.path.display());
    let binary = env!("CARGO_BIN_EXE_stowaway");

    let piped = stowaway_cmd()
        .args(["scan", "--format", "json", "-o", "/dev/null", &image])
        .output()
        .unwrap();
    assert_eq!(piped.status.code(), Some(1));
    // Only the summary line (the report went to a file), no bars and no escape codes.
    let stderr = String::from_utf8_lossy(&piped.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
    assert!(stderr.contains(" findings ("), "{stderr:?}");
    assert!(
        !stderr.contains('\u{1b}') && !stderr.contains('\r'),
        "{stderr:?}"
    );

    // `script` (util-linux, in every Debian) runs the command on a pseudo-terminal.
    if !tool_available("script") {
        return;
    }
    let command = format!("{binary} scan --format json -o /dev/null {image}");
    let on_terminal = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("STOWAWAY_NO_CACHE", "1")
        .output()
        .unwrap();
    let drawn = String::from_utf8_lossy(&on_terminal.stdout);
    let layers = spec.layers.len();
    assert!(drawn.contains(&format!("layer 1/{layers}")), "{drawn:?}");
    assert!(
        drawn.contains(" read, ") && drawn.contains(" scanned"),
        "{drawn:?}"
    );
    assert!(
        drawn.contains('\u{1b}'),
        "drawn with terminal escapes: {drawn:?}"
    );
}

/// The window a zstd frame declares, as a power of two (RFC 8878, 3.1.1.1.2), unless the frame
/// is a single segment (its window is then its content size).
fn zstd_window_log(frame: &[u8]) -> Option<u32> {
    assert_eq!(&frame[..4], &[0x28, 0xb5, 0x2f, 0xfd], "a zstd frame");
    let descriptor = frame[4];
    let single_segment = descriptor & 0x20 != 0;
    (!single_segment).then(|| 10 + u32::from(frame[5] >> 3))
}

#[test]
fn layers_compressed_with_zstd_long_31_are_read() {
    if !tool_available("zstd") {
        return;
    }
    let (spec, planted) = classic_leak();
    let built = build_image(&spec, Compression::None);
    // From a pipe, as `tar c | zstd --long=31` writes it: the size is unknown, so the frame
    // declares the whole 2 GiB window, which zstd's default decoder limit (128 MiB) refuses.
    let layers: Vec<RawLayer> = built
        .layers
        .iter()
        .map(|layer| {
            let mut child = std::process::Command::new("zstd")
                .args(["--long=31", "-q", "-c", "-"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("run zstd");
            let mut stdin = child.stdin.take().expect("stdin");
            let tar = layer.tar.clone();
            let feeder = std::thread::spawn(move || {
                std::io::Write::write_all(&mut stdin, &tar).expect("feed zstd")
            });
            let output = child.wait_with_output().expect("zstd output");
            feeder.join().expect("feeder");
            assert!(output.status.success(), "zstd failed");
            assert_eq!(zstd_window_log(&output.stdout), Some(31));
            RawLayer {
                blob: output.stdout,
                diff_id: layer.diff_id.clone(),
                compression: Compression::Zstd,
            }
        })
        .collect();
    let dir = tempdir();
    let written = write_layout_with_layers(&spec, &layers, &dir.path().join("layout"));
    let (code, report) = scan_json(&format!("oci:{}", written.path.display()));
    assert_eq!(code, 1, "{report}");
    let image = &report["images"][0];
    assert_planted_found(image, &spec, &planted, "zstd --long=31");
    for layer in image["layers"].as_array().unwrap() {
        assert_eq!(layer["compression"], "zstd");
    }
}
