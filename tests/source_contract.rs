//! The contract every image source keeps, in the spirit of go-containerregistry's
//! `validate.Image`: one image, stored every way stowaway reads images, opens as the same
//! image and scans to the same findings. A source that drifts (drops a layer, pairs a blob with
//! the wrong diff_id, shifts the history mapping) fails here, whichever source it is.
//!
//! The image is the classic leak, with secrets generated when the test runs. It is written once
//! per local format with gzip layers, and the OCI layout is pushed unchanged into a real
//! registry, so every source serves the same blobs (a legacy `docker save` names them by path,
//! not by digest). The Docker 25+ save is imported into a containerd started by the test, and
//! skopeo copies the layout into a vfs containers-storage store, which keeps layers
//! uncompressed (their diff_ids are checked, there are no blob digests).

mod support;

use std::io::Read;

use serde_json::Value;
use stowaway::source::containerd::ContainerdOptions;
use stowaway::source::docker_daemon::{DaemonOptions, HostEnvironment};
use stowaway::source::reference::ResolveOptions;
use stowaway::source::registry::RegistryOptions;
use stowaway::source::registry::auth::AuthEnvironment;
use stowaway::source::{Image, LayerBlob, resolve};
use support::docker::TestDocker;
use support::registry::{RegistryConfig, TestRegistry};
use support::run::{assert_planted_found, finding_keys, run_env};
use support::stores::{TestContainerd, TestStorage};
use support::*;

/// One way the fixture is stored, as the user would name it.
struct Materialised {
    /// The format, for messages.
    label: String,
    /// The IMAGE argument.
    arg: String,
    /// Whether the source names layers by blob digest (all but a legacy `docker save`).
    has_blob_digests: bool,
    /// Whether the source has a manifest digest (all but a legacy `docker save`).
    has_manifest_digest: bool,
    /// `DOCKER_HOST` for the source (the test's own Docker daemon), else none.
    docker_host: Option<String>,
    /// Flags the scan needs to reach the source (`--containerd-address`).
    flags: Vec<String>,
}

/// What every source must agree on, taken from the fixture, not from any source.
struct Expected<'a> {
    spec: &'a ImageSpec,
    planted: &'a Planted,
    written: &'a Written,
}

impl Expected<'_> {
    /// For each layer, the index of the history step that made it.
    fn history(&self) -> Vec<Option<usize>> {
        (0..self.spec.layers.len())
            .map(|layer| Some(self.spec.history_index_of_layer(layer)))
            .collect()
    }
}

/// An environment-independent way to reach the test registry, the test's Docker daemon and
/// its containerd: no auth files, docker contexts or `DOCKER_HOST` of the developer's are read.
fn resolve_options(source: &Materialised) -> ResolveOptions {
    let docker_host = source
        .docker_host
        .as_deref()
        .unwrap_or("unix:///nonexistent.sock");
    let flags = &source.flags;
    let containerd_address = flags
        .iter()
        .position(|flag| flag == "--containerd-address")
        .map(|at| std::path::PathBuf::from(&flags[at + 1]));
    ResolveOptions {
        registry: RegistryOptions {
            auth_environment: Some(AuthEnvironment::default()),
            ..RegistryOptions::default()
        },
        docker: DaemonOptions {
            environment: Some(HostEnvironment::with_host(docker_host)),
        },
        containerd: ContainerdOptions {
            address: containerd_address,
            namespace: None,
        },
        quiet: true,
        ..ResolveOptions::default()
    }
}

/// The stored bytes of a layer, however the source reaches them.
fn read_blob(blob: &LayerBlob, label: &str) -> Vec<u8> {
    match blob {
        LayerBlob::Mapped(bytes) => bytes.to_vec(),
        LayerBlob::Stream(opener) => {
            let mut bytes = Vec::new();
            opener
                .open()
                .unwrap_or_else(|err| panic!("{label}: open layer: {err:#}"))
                .read_to_end(&mut bytes)
                .unwrap_or_else(|err| panic!("{label}: read layer: {err:#}"));
            bytes
        }
        LayerBlob::Absent(reason) => panic!("{label}: layer absent: {reason}"),
    }
}

/// The image as the source opens it: identity, layers, diff_ids, history mapping, and every
/// layer's bytes matching its digest and diff_id.
fn assert_image(image: &Image, source: &Materialised, expected: &Expected) {
    let label = &source.label;
    let written = expected.written;
    assert_eq!(
        image.config_digest.as_str(),
        written.config_digest,
        "{label}: config digest"
    );
    assert_eq!(
        image.manifest_digest.as_ref().map(|d| d.to_string()),
        source
            .has_manifest_digest
            .then(|| written.manifest_digest.clone()),
        "{label}: manifest digest"
    );
    assert_eq!(
        image.platform.as_deref(),
        Some("linux/amd64"),
        "{label}: platform"
    );
    assert_eq!(
        image.layers.len(),
        expected.spec.layers.len(),
        "{label}: layer count"
    );
    let diff_ids: Vec<String> = image
        .layers
        .iter()
        .map(|layer| layer.diff_id.as_ref().expect("diff_id").to_string())
        .collect();
    assert_eq!(diff_ids, written.diff_ids, "{label}: diff_ids");
    assert_eq!(
        image.config.layer_history(image.layers.len()),
        expected.history(),
        "{label}: history step of each layer"
    );
    for (index, layer) in image.layers.iter().enumerate() {
        let layer_label = format!("{label}: layer {index}");
        let stored = read_blob(&layer.blob, &layer_label);
        assert_eq!(layer.size, stored.len() as u64, "{layer_label}: size");
        if source.has_blob_digests {
            assert_eq!(
                layer.digest.as_ref().map(|d| d.to_string()),
                Some(written.layer_digests[index].clone()),
                "{layer_label}: blob digest"
            );
            assert_eq!(
                sha256_digest(&stored),
                written.layer_digests[index],
                "{layer_label}: stored bytes"
            );
        } else {
            assert!(layer.digest.is_none(), "{layer_label}: blob digest");
        }
        assert_eq!(
            sha256_digest(&decompress(&stored)),
            written.diff_ids[index],
            "{layer_label}: uncompressed bytes"
        );
    }
}

/// The report of a scan of the source: the same layers and history steps, and exactly the
/// planted secrets, each where it was planted.
fn assert_report(report: &Value, source: &Materialised, expected: &Expected) {
    let label = &source.label;
    let images = report["images"].as_array().expect("images");
    assert_eq!(images.len(), 1, "{label}: images in the report");
    let layers = images[0]["layers"].as_array().expect("layers");
    let reported: Vec<(String, Option<usize>)> = layers
        .iter()
        .map(|layer| {
            (
                layer["diff_id"].as_str().unwrap_or_default().to_string(),
                layer["history_index"].as_u64().map(|i| i as usize),
            )
        })
        .collect();
    let wanted: Vec<(String, Option<usize>)> = expected
        .written
        .diff_ids
        .iter()
        .cloned()
        .zip(expected.history())
        .collect();
    assert_eq!(reported, wanted, "{label}: reported layers");
    assert_planted_found(&images[0], expected.spec, expected.planted, label);
}

/// The contract, the same for every source: it opens as the fixture and scans to the planted
/// findings. Returns the scan's finding keys (rule, fingerprint, layer, path, history step,
/// status…) so the caller can check that every source reports the very same findings.
fn assert_source_keeps_the_contract(source: &Materialised, expected: &Expected) -> Vec<String> {
    let images = resolve(&source.arg, &resolve_options(source))
        .unwrap_or_else(|err| panic!("{}: open {}: {err:#}", source.label, source.arg));
    assert_eq!(images.len(), 1, "{}: images", source.label);
    assert_image(&images[0], source, expected);
    let env: Vec<(&str, &str)> = source
        .docker_host
        .iter()
        .map(|host| ("DOCKER_HOST", host.as_str()))
        .collect();
    let mut args = vec!["scan", "--format", "json", "--show-secrets"];
    args.extend(source.flags.iter().map(String::as_str));
    args.push(&source.arg);
    let scan = run_env(&args, &env);
    let (code, report) = (scan.code, scan.json());
    assert_eq!(code, 1, "{}: findings must exit 1", source.label);
    assert_report(&report, source, expected);
    finding_keys(&report)
}

#[test]
fn every_source_opens_and_scans_the_same_image() {
    let (spec, planted) = classic_leak();
    let dir = tempdir();
    let mut sources = Vec::new();
    let mut written_as = Vec::new();
    for (format, transport) in [
        (Format::DockerLegacy, "docker-archive"),
        (Format::DockerOci, "docker-archive"),
        (Format::OciLayout, "oci"),
        (Format::OciArchive, "oci-archive"),
    ] {
        let written = write_image_in(
            &spec,
            format,
            Compression::Gzip,
            &dir.path().join(format!("{format:?}")),
        );
        let is_legacy = format == Format::DockerLegacy;
        sources.push(Materialised {
            label: format!("{format:?}"),
            arg: format!("{transport}:{}", written.path.display()),
            has_blob_digests: !is_legacy,
            has_manifest_digest: !is_legacy,
            docker_host: None,
            flags: Vec::new(),
        });
        written_as.push((format, written));
    }
    // Every writer produced the same image: the expectation can come from any of them.
    let written = &written_as[0].1;
    for (format, other) in &written_as {
        assert_eq!(other.config_digest, written.config_digest, "{format:?}");
        assert_eq!(other.diff_ids, written.diff_ids, "{format:?}");
    }
    let (_, layout) = written_as
        .iter()
        .find(|(format, _)| *format == Format::OciLayout)
        .expect("an OCI layout");
    let expected = Expected {
        spec: &spec,
        planted: &planted,
        written: layout,
    };

    // Outside CI the registry source is skipped when docker-registry or skopeo is missing;
    // under CI their absence fails the test.
    let registry = TestRegistry::start(RegistryConfig::default());
    if let Some(registry) = &registry {
        registry.push(
            &format!("oci:{}:{}", layout.path.display(), spec.tag()),
            "contract/leaky:1.0",
            &[],
        );
        sources.push(Materialised {
            label: "registry".to_string(),
            arg: format!("{}/contract/leaky:1.0", registry.host()),
            has_blob_digests: true,
            has_manifest_digest: true,
            docker_host: None,
            flags: Vec::new(),
        });
    }

    // A real Docker daemon (skipped outside CI when dockerd is missing) with the legacy save
    // loaded: its export is the legacy layout again (Debian's Docker 20.10 keeps the classic
    // store), so layers have no blob digest and the image no manifest digest.
    let daemon = TestDocker::start();
    if let Some(daemon) = &daemon {
        let (_, legacy) = written_as
            .iter()
            .find(|(format, _)| *format == Format::DockerLegacy)
            .expect("a legacy save");
        daemon.load(&legacy.path);
        sources.push(Materialised {
            label: "docker-daemon".to_string(),
            arg: format!("docker-daemon:{}", spec.repo_tag),
            has_blob_digests: false,
            has_manifest_digest: false,
            docker_host: Some(daemon.host()),
            flags: Vec::new(),
        });
    }

    // containerd, started on a private socket, with the Docker 25+ save imported (its index
    // names the image for containerd); skipped like the registry outside CI without the tool
    // or root.
    let containerd = TestContainerd::start();
    if let Some(daemon) = &containerd {
        let (_, docker_oci) = written_as
            .iter()
            .find(|(format, _)| *format == Format::DockerOci)
            .expect("a Docker 25+ save");
        daemon.import("default", &docker_oci.path);
        sources.push(Materialised {
            label: "containerd".to_string(),
            arg: format!("containerd:{}", spec.repo_tag),
            has_blob_digests: true,
            has_manifest_digest: true,
            docker_host: None,
            flags: vec![
                "--containerd-address".to_string(),
                daemon.socket.display().to_string(),
            ],
        });
    }

    // containers-storage (vfs), filled by skopeo from the layout: layers are kept
    // uncompressed, so they have no blob digests, only diff_ids.
    let storage = TestStorage::new("vfs").filter(|_| tool_available("skopeo"));
    if let Some(storage) = &storage {
        let copied = std::process::Command::new("skopeo")
            .args(["copy", "--quiet"])
            .arg(format!("oci:{}:{}", layout.path.display(), spec.tag()))
            .arg(format!(
                "containers-storage:{}contract/leaky:1.0",
                storage.spec()
            ))
            .output()
            .expect("run skopeo");
        assert!(
            copied.status.success(),
            "skopeo copy: {}",
            String::from_utf8_lossy(&copied.stderr)
        );
        sources.push(Materialised {
            label: "containers-storage".to_string(),
            arg: format!("containers-storage:{}contract/leaky:1.0", storage.spec()),
            has_blob_digests: false,
            has_manifest_digest: true,
            docker_host: None,
            flags: Vec::new(),
        });
    }

    let mut first: Option<(String, Vec<String>)> = None;
    for source in &sources {
        let keys = assert_source_keeps_the_contract(source, &expected);
        match &first {
            None => first = Some((source.label.clone(), keys)),
            Some((first_label, first_keys)) => assert_eq!(
                &keys, first_keys,
                "{}: findings differ from {first_label}'s",
                source.label
            ),
        }
    }
}
