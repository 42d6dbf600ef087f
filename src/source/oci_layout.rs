//! OCI image layouts (`oci:PATH[:TAG]`) and oci-archive tarballs (`oci-archive:PATH[:TAG]`):
//! `oci-layout`, `index.json` and `blobs/<alg>/<hex>`, in a directory or in a tarball.

use std::collections::{HashMap, HashSet};

use anyhow::{Context, Result, bail};
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};

use super::bytes::MappedBytes;
use super::digest::Digest;
use super::image::{Image, Layer, LayerBlob, LayerDescriptor, LayerList, ManifestView};
use super::json;
use super::limits;
use super::name;
use super::platform::{self, PlatformFilter};
use super::store::LocalStore;

/// Annotation naming a manifest's tag in an OCI layout.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Annotation containerd and Docker 25+ put on index entries: the full image name.
pub const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// An image manifest found through `index.json` (nested indexes flattened).
#[derive(Clone, Debug)]
pub struct ManifestEntry {
    pub digest: Digest,
    /// Tags and names from the annotations of this entry or of the index entry above it.
    pub names: Vec<String>,
    /// `os/arch[/variant]` from the index descriptor, when given.
    pub platform: Option<String>,
}

/// Lists the image manifests of the layout, following nested indexes (multi-platform images)
/// and skipping attestation manifests (BuildKit provenance/SBOM, platform `unknown/unknown`).
/// Each nested index is read once however many entries point at it (a layout of a few
/// kilobytes could otherwise fan out into billions of reads), a manifest listed twice is one
/// entry with the names of both, and the list is capped at [`limits::MAX_MANIFESTS`].
pub fn list_manifests(store: &LocalStore) -> Result<Vec<ManifestEntry>> {
    if !store.contains("index.json") {
        bail!("not an OCI image layout (no index.json)");
    }
    let bytes = store.get("index.json")?;
    limits::check_size("index.json", bytes.len(), limits::MAX_MANIFEST_BYTES)?;
    let index: ImageIndex = json::parse(&bytes, "index.json is not a valid OCI index")?;
    let mut walk = IndexWalk {
        store,
        visited: HashSet::new(),
        found: Vec::new(),
        positions: HashMap::new(),
    };
    walk.collect(index.manifests(), &[], 0)?;
    Ok(walk.found)
}

/// The state of one walk through `index.json` and the indexes below it.
struct IndexWalk<'a> {
    store: &'a LocalStore,
    /// Nested indexes already read: each is followed once.
    visited: HashSet<Digest>,
    found: Vec<ManifestEntry>,
    /// Where each manifest digest is in `found`, so a repeated one adds names only.
    positions: HashMap<Digest, usize>,
}

impl IndexWalk<'_> {
    fn collect(
        &mut self,
        descriptors: &[Descriptor],
        inherited_names: &[String],
        depth: usize,
    ) -> Result<()> {
        if depth > limits::MAX_INDEX_DEPTH {
            bail!(
                "index nesting is deeper than {} levels",
                limits::MAX_INDEX_DEPTH
            );
        }
        for descriptor in descriptors {
            let media_type = descriptor.media_type().to_string();
            let digest = Digest::parse(descriptor.digest().as_ref())?;
            let mut names = inherited_names.to_vec();
            if let Some(annotations) = descriptor.annotations() {
                for key in [CONTAINERD_NAME, REF_NAME] {
                    if let Some(name) = annotations.get(key) {
                        names.push(name.clone());
                    }
                }
            }
            if platform::is_attestation(descriptor) {
                continue;
            }
            if is_index_media_type(&media_type) {
                if !self.visited.insert(digest.clone()) {
                    continue;
                }
                let bytes = read_blob(
                    self.store,
                    &digest,
                    descriptor.size(),
                    "index",
                    limits::MAX_MANIFEST_BYTES,
                )?;
                let nested: ImageIndex =
                    json::parse(&bytes, &format!("index {digest} is not a valid OCI index"))?;
                self.collect(nested.manifests(), &names, depth + 1)?;
            } else if media_type.contains("manifest.v1+json") && media_type.contains("docker") {
                bail!("manifest {digest} uses Docker schema 1, which is unsupported");
            } else {
                self.add(digest, names, platform::of_descriptor(descriptor))?;
            }
        }
        Ok(())
    }

    fn add(&mut self, digest: Digest, names: Vec<String>, platform: Option<String>) -> Result<()> {
        if let Some(&at) = self.positions.get(&digest) {
            let entry = &mut self.found[at];
            for name in names {
                if !entry.names.contains(&name) {
                    entry.names.push(name);
                }
            }
            return Ok(());
        }
        limits::check_manifest_count(self.found.len() + 1, "the layout's index")?;
        self.positions.insert(digest.clone(), self.found.len());
        self.found.push(ManifestEntry {
            digest,
            names,
            platform,
        });
        Ok(())
    }
}

fn is_index_media_type(media_type: &str) -> bool {
    media_type.contains("image.index") || media_type.contains("manifest.list")
}

/// Reads `blobs/<alg>/<hex>` (a manifest, an index or a config: `what` says which), refuses it
/// over `limit` bytes, and checks it against its digest (and size, when known) before anyone
/// parses it.
pub fn read_blob(
    store: &LocalStore,
    digest: &Digest,
    size: u64,
    what: &str,
    limit: usize,
) -> Result<MappedBytes> {
    let bytes = store
        .get(&blob_path(digest))
        .with_context(|| format!("{what} {digest}"))?;
    limits::check_size(&format!("{what} {digest}"), bytes.len(), limit)?;
    if size != 0 && bytes.len() as u64 != size {
        bail!(
            "{what} {digest}: size mismatch: descriptor says {size} bytes, blob has {}",
            bytes.len()
        );
    }
    digest.verify(&bytes, &format!("{what} {digest}"))?;
    Ok(bytes)
}

/// The path of a blob inside a layout.
pub fn blob_path(digest: &Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

/// Loads the image behind one manifest: manifest, config, and layer views (layers are
/// verified later, while they are read).
pub fn load_image(store: &LocalStore, entry: &ManifestEntry, reference: String) -> Result<Image> {
    let manifest_bytes = read_blob(
        store,
        &entry.digest,
        0,
        "manifest",
        limits::MAX_MANIFEST_BYTES,
    )?;
    let manifest: ImageManifest = json::parse(
        &manifest_bytes,
        &format!("manifest {} is not a valid image manifest", entry.digest),
    )?;
    let config_digest = Digest::parse(manifest.config().digest().as_ref())?;
    let config_bytes = read_blob(
        store,
        &config_digest,
        manifest.config().size(),
        "config",
        limits::MAX_CONFIG_BYTES,
    )?;
    let view = ManifestView {
        reference,
        digest: Some(entry.digest.clone()),
        listed_in: LayerList::Manifest(entry.digest.clone()),
        config_name: format!("config {config_digest}"),
        config_digest,
        layers: LayerDescriptor::of_manifest(&manifest)?,
        index_platform: entry.platform.clone(),
    };
    Image::from_manifest(view, &config_bytes, |_, descriptor, _| {
        open_layer_blob(store, descriptor)
    })
}

/// The blob of a layer of the layout; a foreign layer whose blob is absent is kept as
/// [`LayerBlob::Absent`] so the report says it was skipped.
fn open_layer_blob(store: &LocalStore, descriptor: &LayerDescriptor) -> Result<LayerBlob> {
    let Some(digest) = &descriptor.digest else {
        bail!("a layer of the manifest has no digest");
    };
    let media_type = descriptor.media_type.as_deref().unwrap_or_default();
    let size = descriptor.size.unwrap_or_default();
    let path = blob_path(digest);
    if store.contains(&path) {
        let bytes = store.get(&path)?;
        if bytes.len() as u64 != size {
            bail!(
                "layer {digest}: size mismatch: descriptor says {size} bytes, blob has {}",
                bytes.len()
            );
        }
        Ok(LayerBlob::Mapped(bytes))
    } else if Layer::is_foreign_media_type(media_type) {
        Ok(LayerBlob::Absent(format!(
            "foreign layer not shipped with the image ({media_type})"
        )))
    } else {
        bail!("layer {digest} is missing from the image");
    }
}

/// Opens every image of the layout at `store` that matches `tag` and `platform`.
/// `label` is how the user named the layout (`oci:dir`, `oci-archive:file.tar`).
pub fn open(
    store: &LocalStore,
    label: &str,
    tag: Option<&str>,
    platform: Option<&PlatformFilter>,
) -> Result<Vec<Image>> {
    let mut entries = list_manifests(store)?;
    if entries.is_empty() {
        bail!("the layout's index.json lists no image manifests");
    }
    if let Some(tag) = tag {
        let names: Vec<String> = entries.iter().flat_map(|e| e.names.clone()).collect();
        entries.retain(|entry| entry.names.iter().any(|name| name::name_matches(name, tag)));
        if entries.is_empty() {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            bail!(
                "no image tagged {tag:?} in the layout (it holds: {})",
                name::held(&names, "untagged images")
            );
        }
    }
    // The platforms of the images passed over, for the error when none matches.
    let mut platforms: Vec<String> = entries
        .iter()
        .filter(|entry| !PlatformFilter::admits(platform, entry.platform.as_deref()))
        .filter_map(|entry| entry.platform.clone())
        .collect();
    entries.retain(|entry| PlatformFilter::admits(platform, entry.platform.as_deref()));
    let several = entries.len() > 1;
    let mut images = Vec::new();
    for entry in &entries {
        let reference = match (tag, entry.names.last(), several) {
            (Some(tag), _, false) => format!("{label}:{tag}"),
            (_, Some(name), false) => format!("{label}:{name}"),
            (_, Some(name), true) => format!("{label}:{name}@{}", entry.digest),
            (_, None, _) => format!("{label}@{}", entry.digest),
        };
        let image = load_image(store, entry, reference)
            .with_context(|| format!("{label}: manifest {}", entry.digest))?;
        if !PlatformFilter::admits(platform, image.platform.as_deref()) {
            platforms.extend(image.platform.clone());
            continue;
        }
        images.push(image);
    }
    if images.is_empty() {
        platforms.sort();
        let platforms: Vec<&str> = platforms.iter().map(String::as_str).collect();
        bail!(
            "no image in the layout matches the requested platform (it holds: {})",
            name::held(&platforms, "images that name no platform")
        );
    }
    Ok(images)
}
