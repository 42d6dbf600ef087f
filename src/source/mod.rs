//! Image sources. Every source (docker-archive, OCI layout, oci-archive, registry) hands the
//! scanner the same [`Image`] shape; nothing downstream knows where the bytes came from.

pub mod bytes;
pub mod config;
pub mod digest;
pub mod docker_archive;
pub mod name;
pub mod oci_layout;
pub mod platform;
pub mod reference;
pub mod registry;
pub mod store;

use std::io::Read;

use anyhow::Result;

pub use bytes::{Content, MappedBytes};
pub use config::ImageConfig;
pub use digest::Digest;
pub use reference::{ImageArg, resolve};

/// One image to scan: its identity, its parsed config and its layers in order.
pub struct Image {
    /// What the user asked for, made specific: `docker-archive:app.tar:example.com/app:1.0`.
    pub reference: String,
    /// Digest of the manifest, when the source has one (a legacy `docker save` has none).
    pub manifest_digest: Option<Digest>,
    pub config_digest: Digest,
    /// `os/arch[/variant]` from the config.
    pub platform: Option<String>,
    pub config: ImageConfig,
    pub layers: Vec<Layer>,
}

/// One layer as the manifest describes it, plus a way to read its bytes.
pub struct Layer {
    /// Digest of the stored blob (compressed bytes), when a descriptor names it.
    pub digest: Option<Digest>,
    /// Digest of the uncompressed tar, from the config's `rootfs.diff_ids`.
    pub diff_id: Option<Digest>,
    pub media_type: Option<String>,
    /// Size of the stored blob in bytes.
    pub size: u64,
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
