//! Layers: compression sniffing, tar walking and whiteout semantics.

pub(crate) mod compression;
pub(crate) mod timeline;
pub(crate) mod walk;

pub use compression::Compression;
pub use timeline::{LayerChanges, Status, Timeline};
pub use walk::{
    FileChunk, HardLink, IrregularEntry, Symlink, WHOLE_ARCHIVE_LIMIT, WalkedLayer,
    release_chunk_buffers, walk_layer, walk_layer_with_progress,
};
