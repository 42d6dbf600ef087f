//! Image sources. Every source (docker-archive, OCI layout, oci-archive, docker-daemon,
//! containers-storage, containerd, registry) hands the
//! scanner the same [`Image`] shape, built by [`Image::from_manifest`]; nothing downstream
//! knows where the bytes came from.

pub(crate) mod bytes;
pub mod chunk_pool;
pub(crate) mod config;
pub mod containerd;
pub mod containers_storage;
pub(crate) mod digest;
pub(crate) mod docker_archive;
pub mod docker_daemon;
pub(crate) mod image;
pub(crate) mod json;
pub(crate) mod limits;
pub mod local_order;
pub(crate) mod name;
pub(crate) mod oci_layout;
pub(crate) mod overlay_diff;
pub(crate) mod platform;
pub mod probe;
pub mod reference;
pub mod registry;
pub(crate) mod spill;
pub(crate) mod store;

pub use bytes::{Content, MappedBytes};
pub use config::ImageConfig;
pub use digest::Digest;
pub use image::{BlobOpener, Image, Layer, LayerBlob, LayerDescriptor, LayerList, ManifestView};
pub use probe::Probe;
pub use reference::{ImageArg, resolve};
