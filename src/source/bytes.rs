//! Byte views over memory-mapped files.
//!
//! Local images are never copied: a `docker save` tarball or an OCI blob file is mapped once and
//! every blob inside it is a [`MappedBytes`] view (an `Arc` of the map plus a range), so an
//! uncompressed layer inside a tarball is scanned where it lies.
//!
//! Pages of a mapped file that a scan touches count as the process's resident memory (and
//! runtimes, CI runners and `kubectl top` report them so) until the map is dropped. Scanned
//! ranges are therefore dropped as the scan moves on ([`MappedBytes::release_pages`]), which
//! keeps the resident set bounded whatever the input's size.

use std::fmt;
use std::fs::File;
use std::ops::{Deref, Range};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use memmap2::Mmap;

use super::chunk_pool::PooledBuffer;

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

    /// Drops this view's pages from the process's resident set: the whole pages inside it,
    /// or, with `whole_pages_around`, every page it touches. The bytes stay readable: a page
    /// touched again is read back from the page cache (or the file).
    pub fn release_pages(&self, whole_pages_around: bool) {
        let Mapping::Map(map) = &*self.map else {
            return;
        };
        let page = page_size();
        let (start, end) = if whole_pages_around {
            (
                self.range.start / page * page,
                self.range.end.div_ceil(page) * page,
            )
        } else {
            (
                self.range.start.div_ceil(page) * page,
                self.range.end / page * page,
            )
        };
        let end = end.min(map.len());
        if start >= end {
            return;
        }
        // SAFETY: MADV_DONTNEED on a read-only file mapping only drops the mapping's
        // page-table entries: nothing was written to these pages, so a later access reads the
        // same bytes from the file again, and every slice borrowed from the map stays valid.
        // An error (an old kernel refusing the advice) only leaves the pages resident.
        let _ = unsafe {
            map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, end - start)
        };
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

/// The system's page size, read once.
fn page_size() -> usize {
    static PAGE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions; it returns -1 for an unknown name.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        usize::try_from(size)
            .ok()
            .filter(|s| s.is_power_of_two())
            .unwrap_or(4096)
    })
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

/// Reads a mapped view from start to end, dropping the pages it has read from the resident
/// set as it goes (see [`MappedBytes::release_pages`]): a compressed layer is read once, by
/// its decoder, which keeps its own buffer.
pub struct ReleasingReader<'a> {
    bytes: &'a MappedBytes,
    position: usize,
    released_to: usize,
}

/// How many bytes a [`ReleasingReader`] reads between two releases: a system call each.
const RELEASE_EVERY: usize = 16 << 20;

impl<'a> ReleasingReader<'a> {
    pub fn new(bytes: &'a MappedBytes) -> ReleasingReader<'a> {
        ReleasingReader {
            bytes,
            position: 0,
            released_to: 0,
        }
    }

    fn release_read(&mut self) {
        if let Some(read) = self.bytes.slice(self.released_to..self.position) {
            read.release_pages(false);
        }
        self.released_to = self.position;
    }
}

impl std::io::Read for ReleasingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let rest = &self.bytes[self.position..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.position += n;
        if self.position - self.released_to >= RELEASE_EVERY || (n == 0 && !buf.is_empty()) {
            self.release_read();
        }
        Ok(n)
    }
}

impl Drop for ReleasingReader<'_> {
    fn drop(&mut self) {
        self.release_read();
    }
}

/// Drops a mapped blob's pages (every page it touches) from the resident set when the last
/// holder lets go: the walk of the blob holds one, and so does every chunk of it in flight.
pub struct ReleaseOnDrop(MappedBytes);

impl ReleaseOnDrop {
    pub fn new(blob: MappedBytes) -> Arc<ReleaseOnDrop> {
        Arc::new(ReleaseOnDrop(blob))
    }
}

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        self.0.release_pages(true);
    }
}

impl fmt::Debug for ReleaseOnDrop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReleaseOnDrop({:?})", self.0)
    }
}

/// File content handed to the detector: borrowed from a mapping, or read into memory from a
/// compressed stream.
#[derive(Clone, Debug)]
pub enum Content {
    /// A view of a mapped local file (an uncompressed layer): no copy, no heap. The second
    /// field releases the whole blob's pages once its walk and its last chunk are done.
    Mapped(MappedBytes, Arc<ReleaseOnDrop>),
    /// Bytes read into memory (decompressed or streamed), shared between chunk holders.
    Owned(Arc<Vec<u8>>),
    /// A large chunk read from a stream into a buffer of the chunk pool, to which the buffer
    /// returns when the last holder drops it (see [`super::chunk_pool`]).
    Pooled(Arc<PooledBuffer>),
}

impl Deref for Content {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Content::Mapped(bytes, _) => bytes,
            Content::Owned(bytes) => bytes,
            Content::Pooled(buffer) => buffer,
        }
    }
}

impl Content {
    /// The memory this content holds while it waits for the detector and is matched: its
    /// heap bytes, the mapped pages the detector will make resident, or a pooled buffer's
    /// whole size (its pages stay resident for the next chunk whatever this one's length).
    pub fn in_flight_len(&self) -> usize {
        match self {
            Content::Pooled(buffer) => buffer.capacity(),
            _ => self.len(),
        }
    }

    /// Done with: a large mapped view's pages leave the resident set now rather than when
    /// its whole blob is done (small views share pages with their neighbours, which the
    /// walk releases behind it).
    pub fn release(&self) {
        if let Content::Mapped(bytes, _) = self
            && bytes.len() >= RELEASE_VIEWS_FROM
        {
            bytes.release_pages(false);
        }
    }
}

/// Mapped views at least this long are released as soon as they are matched.
const RELEASE_VIEWS_FROM: usize = 1 << 20;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// The resident pages of the mapping `bytes` lies in, as the kernel accounts them to this
    /// process (/proc/self/smaps; mincore(2) would tell the page cache's state instead).
    fn resident_pages(bytes: &MappedBytes) -> usize {
        let address = bytes.as_ptr() as usize;
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut inside = false;
        for line in smaps.lines() {
            let first = line.split_whitespace().next().unwrap_or("");
            if let Some((from, to)) = first.split_once('-')
                && let (Ok(from), Ok(to)) = (
                    usize::from_str_radix(from, 16),
                    usize::from_str_radix(to, 16),
                )
            {
                inside = (from..to).contains(&address);
            } else if inside && let Some(kb) = line.strip_prefix("Rss:") {
                let kb: usize = kb.trim().trim_end_matches("kB").trim().parse().unwrap();
                return kb * 1024 / page_size();
            }
        }
        panic!("no mapping holds {address:#x}")
    }

    fn mapped_file(len: usize) -> (tempfile::TempDir, MappedBytes, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        let content: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&path, &content).unwrap();
        let bytes = MappedBytes::map_file(&path).unwrap();
        (dir, bytes, content)
    }

    #[test]
    fn released_pages_leave_the_resident_set_and_read_the_same() {
        let (_dir, bytes, content) = mapped_file(8 << 20);
        assert_eq!(&bytes[..], &content[..]);
        let pages = (8 << 20) / page_size();
        assert_eq!(resident_pages(&bytes), pages);
        bytes.slice(1..(4 << 20) + 1).unwrap().release_pages(false);
        // The first and the last page of the range are shared with bytes outside it, so
        // they stay (the kernel may still drop one of them on its own).
        let left = resident_pages(&bytes);
        assert!(
            (pages / 2..=pages / 2 + 1).contains(&left),
            "{left} of {pages} pages left"
        );
        bytes.release_pages(true);
        assert_eq!(resident_pages(&bytes), 0);
        assert_eq!(&bytes[..], &content[..], "read back after release");
    }

    #[test]
    fn a_releasing_reader_reads_everything_and_keeps_little_resident() {
        let (_dir, bytes, content) = mapped_file(40 << 20);
        bytes.release_pages(true);
        let mut reader = ReleasingReader::new(&bytes);
        let mut read = Vec::new();
        let mut buffer = vec![0u8; 1 << 20];
        let mut most_resident = 0;
        loop {
            let n = reader.read(&mut buffer).unwrap();
            if n == 0 {
                break;
            }
            read.extend_from_slice(&buffer[..n]);
            most_resident = most_resident.max(resident_pages(&bytes) * page_size());
        }
        drop(reader);
        assert!(read == content);
        assert!(
            most_resident <= RELEASE_EVERY + (2 << 20),
            "{most_resident} bytes resident"
        );
        assert_eq!(resident_pages(&bytes), 0);
    }

    #[test]
    fn a_blob_is_released_when_its_last_holder_lets_go() {
        let (_dir, bytes, _) = mapped_file(2 << 20);
        let lease = ReleaseOnDrop::new(bytes.clone());
        let chunk = Content::Mapped(bytes.slice(0..100).unwrap(), Arc::clone(&lease));
        drop(lease);
        std::hint::black_box(bytes.iter().map(|&b| b as u64).sum::<u64>());
        assert!(resident_pages(&bytes) > 0);
        drop(chunk);
        assert_eq!(resident_pages(&bytes), 0);
    }
}
