//! The image every source hands the scanner, and the one way to build it from a manifest.
//!
//! Sources differ in where a manifest, a config and the layer blobs are (a `docker save`
//! tarball, an OCI layout, a registry); what an image *is* does not. [`Image::from_manifest`]
//! holds that part: it parses the config, takes the platform, checks that the manifest and the
//! config agree on the number of layers and pairs every layer descriptor with its diff_id. Each
//! source only says how to open a layer's blob.

use std::io::Read;

use anyhow::{Result, bail};
use oci_spec::image::ImageManifest;

use super::bytes::MappedBytes;
use super::config::ImageConfig;
use super::digest::Digest;

/// One image to scan: its identity, its parsed config and its layers in order.
pub struct Image {
    /// What the user asked for, made specific: `docker-archive:app.tar:example.com/app:1.0`.
    pub reference: String,
    /// Digest of the manifest, when the source has one (a legacy `docker save` has none).
    pub manifest_digest: Option<Digest>,
    /// Digest of the config blob: checked against its bytes, or computed from them when the
    /// source names the config by path only (a legacy `docker save`).
    pub config_digest: Digest,
    /// `os/arch[/variant]` from the config.
    pub platform: Option<String>,
    /// The parsed config: diff_ids, history and the raw JSON whose text is scanned.
    pub config: ImageConfig,
    /// The layers, lowest (base) first: `layers[i]` is layer `i` of the report and pairs
    /// with `config.diff_ids[i]`.
    pub layers: Vec<Layer>,
}

/// One layer as the manifest describes it, plus a way to read its bytes.
pub struct Layer {
    /// Digest of the stored blob (compressed bytes), when a descriptor names it.
    pub digest: Option<Digest>,
    /// Digest of the uncompressed tar, from the config's `rootfs.diff_ids`.
    pub diff_id: Option<Digest>,
    /// The media type the manifest gives the layer (it may lie about compression; the walk
    /// sniffs it), when the source has one.
    pub media_type: Option<String>,
    /// Size of the stored blob in bytes.
    pub size: u64,
    /// Where the stored bytes are, and how to read them.
    pub blob: LayerBlob,
}

/// Where a layer's bytes are.
pub enum LayerBlob {
    /// In a local file, mapped. Uncompressed layers are walked in place.
    Mapped(MappedBytes),
    /// Fetched as a stream (a registry). Opened once, read once.
    Stream(Box<dyn BlobOpener>),
    /// Not shipped with the image (a foreign or non-distributable layer whose blob is absent);
    /// reported as skipped, with the reason.
    Absent(String),
}

/// Opens a streamed blob. Implemented by remote sources.
pub trait BlobOpener: Send + Sync {
    /// A reader over the stored (possibly compressed) bytes.
    fn open(&self) -> Result<Box<dyn Read + Send + '_>>;
}

impl Layer {
    /// The digest the stored bytes are checked against while they are read: the blob digest when
    /// a descriptor gives one; otherwise (legacy `docker save`, which names layers by diff_id)
    /// the diff_id, checked on the uncompressed stream.
    pub fn expected_digests(&self) -> (Option<&Digest>, Option<&Digest>) {
        match &self.digest {
            Some(blob) => (Some(blob), None),
            None => (None, self.diff_id.as_ref()),
        }
    }

    /// Is this media type one that registries may refuse to ship (foreign / non-distributable)?
    pub fn is_foreign_media_type(media_type: &str) -> bool {
        media_type.contains("foreign") || media_type.contains("nondistributable")
    }
}

/// What a manifest says about one layer, before its blob is opened.
#[derive(Clone, Debug, Default)]
pub struct LayerDescriptor {
    /// Digest of the stored blob; a legacy `docker save` names layers by path only.
    pub digest: Option<Digest>,
    /// The descriptor's `mediaType`; `None` in a `docker save` archive without an OCI
    /// manifest for the image (the legacy layout).
    pub media_type: Option<String>,
    /// Size of the stored blob, when the manifest says; otherwise the size of the blob opened.
    pub size: Option<u64>,
}

impl LayerDescriptor {
    /// The layers an OCI or Docker v2 image manifest lists, in order.
    pub fn of_manifest(manifest: &ImageManifest) -> Result<Vec<LayerDescriptor>> {
        manifest
            .layers()
            .iter()
            .map(|descriptor| {
                Ok(LayerDescriptor {
                    digest: Some(Digest::parse(descriptor.digest().as_ref())?),
                    media_type: Some(descriptor.media_type().to_string()),
                    size: Some(descriptor.size()),
                })
            })
            .collect()
    }
}

/// Which kind of manifest listed the layers, for messages.
#[derive(Clone, Debug)]
pub enum LayerList {
    /// An OCI or Docker v2 image manifest, by digest.
    Manifest(Digest),
    /// An entry of a `docker save` archive's `manifest.json`.
    DockerSaveEntry,
}

/// One image's manifest as a source read it: what [`Image::from_manifest`] needs besides the
/// config bytes and a way to open layer blobs.
#[derive(Clone, Debug)]
pub struct ManifestView {
    /// How the report names the image (see [`Image::reference`]).
    pub reference: String,
    /// Digest of the manifest, when there is one.
    pub digest: Option<Digest>,
    /// Where the layer list comes from.
    pub listed_in: LayerList,
    /// Digest of the config blob the manifest names.
    pub config_digest: Digest,
    /// How messages name the config blob: `config sha256:…`, or `config <member>.json`.
    pub config_name: String,
    /// The layers the manifest lists, lowest first.
    pub layers: Vec<LayerDescriptor>,
    /// The platform an index gave for this manifest, used when the config names none.
    pub index_platform: Option<String>,
}

impl Image {
    /// Builds the image behind `manifest`: parses `config_bytes` (already read and checked
    /// against the config digest by the source), takes the platform from the config (else from
    /// the index), checks that the manifest lists as many layers as the config has diff_ids,
    /// and makes each layer from its descriptor, its diff_id and the blob `open_blob` returns
    /// for it (called with the layer's index, descriptor and diff_id, in order).
    pub fn from_manifest(
        manifest: ManifestView,
        config_bytes: &[u8],
        mut open_blob: impl FnMut(usize, &LayerDescriptor, &Digest) -> Result<LayerBlob>,
    ) -> Result<Image> {
        let config = ImageConfig::parse(config_bytes, &manifest.config_name)?;
        if config.diff_ids.len() != manifest.layers.len() {
            let (listing, config_owner) = match &manifest.listed_in {
                LayerList::Manifest(digest) => (format!("manifest {digest}"), "its config"),
                LayerList::DockerSaveEntry => ("manifest.json".to_string(), "the config"),
            };
            bail!(
                "{listing} lists {} layers but {config_owner} lists {} diff_ids",
                manifest.layers.len(),
                config.diff_ids.len()
            );
        }
        let mut layers = Vec::with_capacity(manifest.layers.len());
        for (index, (descriptor, diff_id)) in
            manifest.layers.iter().zip(&config.diff_ids).enumerate()
        {
            let blob = open_blob(index, descriptor, diff_id)?;
            let size = descriptor.size.unwrap_or(match &blob {
                LayerBlob::Mapped(bytes) => bytes.len() as u64,
                _ => 0,
            });
            layers.push(Layer {
                digest: descriptor.digest.clone(),
                diff_id: Some(diff_id.clone()),
                media_type: descriptor.media_type.clone(),
                size,
                blob,
            });
        }
        Ok(Image {
            reference: manifest.reference,
            manifest_digest: manifest.digest,
            config_digest: manifest.config_digest,
            platform: config.platform().or(manifest.index_platform),
            config,
            layers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_with(diff_ids: &[&Digest]) -> Vec<u8> {
        serde_json::json!({
            "os": "linux", "architecture": "amd64",
            "rootfs": {"type": "layers", "diff_ids": diff_ids.iter().map(|d| d.as_str()).collect::<Vec<_>>()},
        })
        .to_string()
        .into_bytes()
    }

    fn view(layers: Vec<LayerDescriptor>, listed_in: LayerList) -> ManifestView {
        ManifestView {
            reference: "test".to_string(),
            digest: None,
            listed_in,
            config_digest: Digest::of(b"config"),
            config_name: "config test".to_string(),
            layers,
            index_platform: Some("linux/arm64".to_string()),
        }
    }

    #[test]
    fn pairs_descriptors_with_diff_ids_and_takes_the_config_platform() {
        let (a, b) = (Digest::of(b"a"), Digest::of(b"b"));
        let descriptors = vec![
            LayerDescriptor {
                digest: Some(Digest::of(b"blob a")),
                media_type: Some("application/vnd.oci.image.layer.v1.tar".to_string()),
                size: Some(7),
            },
            LayerDescriptor::default(),
        ];
        let mut opened = Vec::new();
        let image = Image::from_manifest(
            view(descriptors, LayerList::DockerSaveEntry),
            &config_with(&[&a, &b]),
            |index, _, diff_id| {
                opened.push((index, diff_id.clone()));
                Ok(LayerBlob::Absent("not here".to_string()))
            },
        )
        .unwrap();
        assert_eq!(opened, vec![(0, a.clone()), (1, b.clone())]);
        assert_eq!(image.platform.as_deref(), Some("linux/amd64"));
        assert_eq!(image.layers[0].size, 7);
        assert_eq!(image.layers[1].size, 0);
        assert_eq!(image.layers[1].diff_id.as_ref(), Some(&b));
        assert!(image.layers[1].digest.is_none());
    }

    #[test]
    fn a_layer_count_mismatch_names_the_manifest() {
        let a = Digest::of(b"a");
        let manifest = Digest::of(b"manifest");
        for (listed_in, expected) in [
            (
                LayerList::Manifest(manifest.clone()),
                format!("manifest {manifest} lists 0 layers but its config lists 1 diff_ids"),
            ),
            (
                LayerList::DockerSaveEntry,
                "manifest.json lists 0 layers but the config lists 1 diff_ids".to_string(),
            ),
        ] {
            let error = Image::from_manifest(
                view(Vec::new(), listed_in),
                &config_with(&[&a]),
                |_, _, _| unreachable!("no layer to open"),
            )
            .err()
            .unwrap();
            assert_eq!(error.to_string(), expected);
        }
    }
}
