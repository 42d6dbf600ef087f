//! Byte views over memory-mapped files.
//!
//! Local images are never copied: a `docker save` tarball or an OCI blob file is mapped once and
//! every blob inside it is a [`MappedBytes`] view (an `Arc` of the map plus a range), so an
//! uncompressed layer inside a tarball is scanned where it lies.

use std::fmt;
use std::fs::File;
use std::ops::{Deref, Range};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use memmap2::Mmap;

/// A cheaply clonable, read-only view of part of a memory-mapped file.
#[derive(Clone)]
pub struct MappedBytes {
    map: Arc<Mapping>,
    range: Range<usize>,
}

/// Files smaller than this are read into memory instead of mapped. A mapping costs at least a
/// page of resident memory and one of the process's (limited, 65,530 by default on Linux) map
/// areas for as long as the image is held: an OCI layout of 40,000 small layers would hold
/// 40,000 of them.
const MAP_FROM: u64 = 64 << 10;

/// The mapped file. Empty files cannot be mapped on every platform, so they get a static slice;
/// small ones are read (see [`MAP_FROM`]).
enum Mapping {
    Map(Mmap),
    Read(Box<[u8]>),
    Empty,
}

impl MappedBytes {
    /// Maps the whole file at `path` read-only.
    pub fn map_file(path: &Path) -> Result<MappedBytes> {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        MappedBytes::map_opened(&file, path)
    }

    /// Maps the whole of `file`, already opened (and checked by the caller) from `path`.
    pub fn map_opened(file: &File, path: &Path) -> Result<MappedBytes> {
        let len = file
            .metadata()
            .with_context(|| format!("cannot stat {}", path.display()))?
            .len();
        let mapping = if len == 0 {
            Mapping::Empty
        } else if len < MAP_FROM {
            use std::io::Read;
            let mut bytes = Vec::with_capacity(len as usize);
            // A file that grew since the stat is read to its stated length only.
            file.take(len)
                .read_to_end(&mut bytes)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Mapping::Read(bytes.into_boxed_slice())
        } else {
            // SAFETY: the map is read-only. If another process truncates the file while we read
            // it the process can fault; that is the accepted trade-off of mapping (ripgrep makes
            // the same one) and is why only regular local files are mapped.
            let map = unsafe { Mmap::map(file) }
                .with_context(|| format!("cannot map {}", path.display()))?;
            Mapping::Map(map)
        };
        let len = match &mapping {
            // A file that shrank since the stat: what was read.
            Mapping::Read(bytes) => bytes.len(),
            _ => usize::try_from(len).context("file too large for this platform")?,
        };
        Ok(MappedBytes {
            map: Arc::new(mapping),
            range: 0..len,
        })
    }

    /// Bytes already in memory, as a view like any other: what the fuzz targets hand the
    /// walkers and the image sources (see [`crate::fuzzing`]), which take mapped files only.
    pub(crate) fn from_vec(bytes: Vec<u8>) -> MappedBytes {
        let len = bytes.len();
        MappedBytes {
            map: Arc::new(Mapping::Read(bytes.into_boxed_slice())),
            range: 0..len,
        }
    }

    /// A view of `range` (relative to this view). Fails if the range runs past the end, which is
    /// how truncated archives are noticed.
    pub fn slice(&self, range: Range<usize>) -> Option<MappedBytes> {
        if range.start > range.end || range.end > self.len() {
            return None;
        }
        Some(MappedBytes {
            map: Arc::clone(&self.map),
            range: self.range.start + range.start..self.range.start + range.end,
        })
    }
}

impl Deref for MappedBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &*self.map {
            Mapping::Map(map) => &map[self.range.clone()],
            Mapping::Read(bytes) => &bytes[self.range.clone()],
            Mapping::Empty => &[],
        }
    }
}

impl AsRef<[u8]> for MappedBytes {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl fmt::Debug for MappedBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MappedBytes({:?})", self.range)
    }
}

/// File content handed to the detector: borrowed from a mapping, or read into memory from a
/// compressed stream.
#[derive(Clone, Debug)]
pub enum Content {
    /// A view of a mapped local file (an uncompressed layer): no copy, no heap.
    Mapped(MappedBytes),
    /// Bytes read into memory (decompressed or streamed), shared between chunk holders.
    Owned(Arc<Vec<u8>>),
}

impl Deref for Content {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Content::Mapped(bytes) => bytes,
            Content::Owned(bytes) => bytes,
        }
    }
}

impl Content {
    /// Heap bytes this content holds (mapped content costs no heap).
    pub fn heap_len(&self) -> usize {
        match self {
            Content::Mapped(_) => 0,
            Content::Owned(bytes) => bytes.len(),
        }
    }
}
