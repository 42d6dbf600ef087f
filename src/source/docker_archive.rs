//! `docker save` tarballs (`docker-archive:PATH[:REF]`), in both layouts Docker writes:
//! the legacy one (`manifest.json`, `<id>/layer.tar`, `<hex>.json`) and Docker 25+'s, which adds
//! `index.json`, `oci-layout` and `blobs/sha256/…` beside `manifest.json`.

use std::collections::HashMap;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use super::digest::Digest;
use super::image::{Image, LayerBlob, LayerDescriptor, LayerList, ManifestView};
use super::json;
use super::limits;
use super::name;
use super::oci_layout;
use super::platform::PlatformFilter;
use super::store::{LocalStore, check_name};

/// One entry of `manifest.json`.
#[derive(Deserialize)]
struct ManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
    /// Descriptors of foreign layers, keyed by diff_id; their tar may be absent.
    #[serde(rename = "LayerSources", default)]
    layer_sources: Option<HashMap<String, serde_json::Value>>,
}

/// Is this store a `docker save` archive?
pub fn is_docker_archive(store: &LocalStore) -> bool {
    store.contains("manifest.json")
}

/// Opens the images of the archive; with `wanted`, only the one tagged so.
pub fn open(
    store: &LocalStore,
    label: &str,
    wanted: Option<&str>,
    platform: Option<&PlatformFilter>,
) -> Result<Vec<Image>> {
    let bytes = store.get("manifest.json")?;
    limits::check_size(
        "manifest.json",
        bytes.len(),
        limits::MAX_DOCKER_SAVE_MANIFEST_BYTES,
    )?;
    let entries: Vec<ManifestEntry> =
        json::parse(&bytes, "manifest.json is not a docker-save manifest")?;
    if entries.is_empty() {
        bail!("manifest.json lists no images");
    }
    limits::check_manifest_count(entries.len(), "manifest.json")?;
    let oci_manifests = OciManifests::read(store)?;
    let selected: Vec<&ManifestEntry> = match wanted {
        Some(wanted) => {
            let matching: Vec<_> = entries
                .iter()
                .filter(|entry| {
                    entry
                        .repo_tags
                        .iter()
                        .flatten()
                        .any(|tag| name::name_matches(tag, wanted))
                })
                .collect();
            if matching.is_empty() {
                let tags: Vec<&str> = entries
                    .iter()
                    .flat_map(|entry| entry.repo_tags.iter().flatten())
                    .map(String::as_str)
                    .collect();
                bail!(
                    "no image tagged {wanted:?} in the archive (it holds: {})",
                    name::held(&tags, "untagged images")
                );
            }
            matching
        }
        None => entries.iter().collect(),
    };
    let several = entries.len() > 1;
    let mut images = Vec::new();
    // The platforms of the images passed over, for the error when none matches.
    let mut platforms = Vec::new();
    for entry in selected {
        let first_tag = entry.repo_tags.as_ref().and_then(|tags| tags.first());
        let reference = match (wanted, first_tag, several) {
            (Some(wanted), _, _) => format!("{label}:{wanted}"),
            (None, Some(tag), true) => format!("{label}:{tag}"),
            (None, None, true) => format!("{label}@{}", entry.config),
            (None, _, false) => label.to_string(),
        };
        let image = load(store, entry, &oci_manifests, reference)
            .with_context(|| format!("{label}: image {}", first_tag.unwrap_or(&entry.config)))?;
        if !PlatformFilter::admits(platform, image.platform.as_deref()) {
            platforms.extend(image.platform.clone());
            continue;
        }
        images.push(image);
    }
    if images.is_empty() {
        let platforms: Vec<&str> = platforms.iter().map(String::as_str).collect();
        bail!(
            "no image in the archive matches the requested platform (it holds: {})",
            name::held(&platforms, "images that name no platform")
        );
    }
    Ok(images)
}

/// The digest a member name carries: `blobs/sha256/<hex>` or legacy `<hex>.json`.
fn digest_from_member(name: &str) -> Option<Digest> {
    let hex = name
        .strip_prefix("blobs/sha256/")
        .or_else(|| name.strip_suffix(".json"))?;
    Digest::parse(&format!("sha256:{hex}")).ok()
}

fn load(
    store: &LocalStore,
    entry: &ManifestEntry,
    oci_manifests: &OciManifests,
    reference: String,
) -> Result<Image> {
    // The member name comes from the input: refused before it is used as a path, and not
    // quoted (the error names the config by position in manifest.json instead).
    check_name(&entry.config).context("the config named in manifest.json")?;
    let config_bytes = store.get(&entry.config)?;
    limits::check_size(
        &format!("config {}", entry.config),
        config_bytes.len(),
        limits::MAX_CONFIG_BYTES,
    )?;
    let config_digest = match digest_from_member(&entry.config) {
        Some(digest) => {
            digest.verify(&config_bytes, &format!("config {}", entry.config))?;
            digest
        }
        None => Digest::of(&config_bytes),
    };
    let oci = oci_manifests.by_config.get(&config_digest);
    let layers = entry
        .layers
        .iter()
        .enumerate()
        .map(|(index, member)| LayerDescriptor {
            // Only Docker 25+ stores layers as blobs, named by their digest.
            digest: member
                .starts_with("blobs/")
                .then(|| digest_from_member(member))
                .flatten(),
            media_type: oci.and_then(|m| m.media_types.get(index).cloned()),
            size: None,
        })
        .collect();
    let view = ManifestView {
        reference,
        digest: oci.map(|m| m.manifest_digest.clone()),
        listed_in: LayerList::DockerSaveEntry,
        config_name: format!("config {}", entry.config),
        config_digest,
        layers,
        index_platform: None,
    };
    Image::from_manifest(view, &config_bytes, |index, _, diff_id| {
        open_layer_blob(store, entry, &entry.layers[index], diff_id)
    })
}

/// The tar of one layer, by its member name; a foreign layer (listed in `LayerSources`) whose
/// tar is absent is kept as [`LayerBlob::Absent`] so the report says it was skipped.
fn open_layer_blob(
    store: &LocalStore,
    entry: &ManifestEntry,
    member: &str,
    diff_id: &Digest,
) -> Result<LayerBlob> {
    check_name(member).context("a layer named in manifest.json")?;
    if store.contains(member) {
        Ok(LayerBlob::Mapped(store.get(member)?))
    } else if entry
        .layer_sources
        .as_ref()
        .is_some_and(|sources| sources.contains_key(diff_id.as_str()))
    {
        Ok(LayerBlob::Absent(
            "foreign layer not shipped with the image".to_string(),
        ))
    } else {
        bail!("layer {member} is missing from the archive");
    }
}

/// What the OCI half of a Docker 25+ archive adds: manifest digests and layer media types,
/// found by config digest.
#[derive(Default)]
struct OciManifests {
    by_config: HashMap<Digest, OciManifest>,
}

struct OciManifest {
    manifest_digest: Digest,
    media_types: Vec<String>,
}

impl OciManifests {
    fn read(store: &LocalStore) -> Result<OciManifests> {
        let mut found = OciManifests::default();
        if !store.contains("index.json") {
            return Ok(found);
        }
        for entry in oci_layout::list_manifests(store)? {
            let bytes = oci_layout::read_blob(
                store,
                &entry.digest,
                0,
                "manifest",
                limits::MAX_MANIFEST_BYTES,
            )?;
            let manifest: oci_spec::image::ImageManifest = json::parse(
                &bytes,
                &format!("manifest {} is not a valid image manifest", entry.digest),
            )?;
            let config_digest = Digest::parse(manifest.config().digest().as_ref())?;
            found.by_config.insert(
                config_digest,
                OciManifest {
                    manifest_digest: entry.digest,
                    media_types: manifest
                        .layers()
                        .iter()
                        .map(|layer| layer.media_type().to_string())
                        .collect(),
                },
            );
        }
        Ok(found)
    }
}
