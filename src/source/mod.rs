//! Image sources. Every source (docker-archive, OCI layout, oci-archive, registry) hands the
//! scanner the same [`Image`] shape, built by [`Image::from_manifest`]; nothing downstream
//! knows where the bytes came from.

pub mod bytes;
pub mod config;
pub mod digest;
pub mod docker_archive;
pub mod image;
pub mod name;
pub mod oci_layout;
pub mod platform;
pub mod reference;
pub mod registry;
pub mod store;

pub use bytes::{Content, MappedBytes};
pub use config::ImageConfig;
pub use digest::Digest;
pub use image::{BlobOpener, Image, Layer, LayerBlob, LayerDescriptor, LayerList, ManifestView};
pub use reference::{ImageArg, resolve};
