//! Walking one layer: every tar entry, nothing extracted to disk. File contents go to a
//! callback in chunks (so one huge file neither fills memory nor serialises the scan), and the
//! layer's effect on lower layers is recorded for the [`Timeline`](super::timeline::Timeline).

use std::cell::Cell;
use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};

use super::compression::Compression;
use super::timeline::LayerChanges;
use crate::source::bytes::{ReleaseOnDrop, ReleasingReader};
use crate::source::chunk_pool::{BufferPool, PooledBuffer};
use crate::source::digest::{HashingReader, PartialHash};
use crate::source::{Content, Digest, Layer, LayerBlob, MappedBytes};
use crate::tar_reader::{Entry, Kind, SliceInput, StreamInput, TarReader};

/// Largest piece of one file handed to the detector at once.
pub const CHUNK_SIZE: usize = 8 << 20;
/// Bytes shared by consecutive chunks, so a secret that straddles a boundary is still seen
/// whole (longer than the longest private key block any rule matches).
pub const CHUNK_OVERLAP: usize = 64 << 10;

/// A piece of one file's content. Matches are reported only when they start before
/// `report_before`, so the overlap between chunks yields no duplicates.
#[derive(Clone, Debug)]
pub struct FileChunk {
    /// The file's path in the layer, normalised (see `normalise_path`): no leading `/`.
    pub path: Arc<str>,
    /// The bytes of this piece: the last `CHUNK_OVERLAP` bytes of the previous chunk, then
    /// up to `CHUNK_SIZE` new ones. An archive up to `WHOLE_ARCHIVE_LIMIT` comes whole, in
    /// one chunk, for the decoders to open.
    pub content: Content,
    /// Offset of `content[0]` in the file. For a sparse file, its offset with the holes
    /// counted (a segment 1 PiB in starts there), though holes are never read or handed over.
    pub file_offset: u64,
    /// Newlines in the file before `content[0]`, for line numbers (holes, being zeros, hold
    /// none: line numbers of a sparse file are exact).
    pub lines_before: u64,
    /// Matches starting at or past this offset in `content` belong to the next chunk.
    pub report_before: usize,
}

/// A hard link: `path` names the same content as `target` (an earlier entry of the layer).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HardLink {
    /// The link's own path in the layer, normalised like every member name.
    pub path: String,
    /// The path it links to, normalised; its findings are reported under `path` too.
    pub target: String,
}

/// A symlink: `path` points at `target`, as the tar records it (relative to the link's
/// directory, or absolute).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Symlink {
    /// The link's own path, normalised like every member name.
    pub path: String,
    /// Where it points, as recorded.
    pub target: String,
}

/// What walking a layer found. Serializable, so a layer's result can be cached by digest.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WalkedLayer {
    /// How the blob was stored, sniffed from its first bytes; `None` when the layer was
    /// skipped.
    pub compression: Option<Compression>,
    /// What the layer wrote, deleted and hid, for the [`Timeline`](super::timeline::Timeline).
    pub changes: LayerChanges,
    /// The layer's hard links, in tar order.
    pub hard_links: Vec<HardLink>,
    /// Regular files walked.
    pub files: u64,
    /// Uncompressed bytes of file content.
    pub content_bytes: u64,
    /// Bytes of the stored blob that were read.
    pub stored_bytes: u64,
    /// Why the layer was not walked, when it was not (an absent foreign layer).
    pub skipped: Option<String>,
    /// Entries read differently from what their headers say, or only in part (a size on a
    /// directory, a name over the length limit): reported with what was not scanned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub irregular: Vec<IrregularEntry>,
    /// Symlinks near the root (at most [`SHALLOW_SYMLINK_DEPTH`] components: `bin -> usr/bin`,
    /// `lib64 -> usr/lib64`), in tar order, at most [`SHALLOW_SYMLINKS_KEPT`]: package
    /// databases record `/bin/ls` where a merged-/usr layer holds `usr/bin/ls`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shallow_symlinks: Vec<Symlink>,
    /// Shallow symlinks past [`SHALLOW_SYMLINKS_KEPT`], counted and not kept.
    #[serde(default)]
    pub shallow_symlinks_dropped: u64,
}

/// How deep a symlink may sit to be kept in [`WalkedLayer::shallow_symlinks`].
pub const SHALLOW_SYMLINK_DEPTH: usize = 2;
/// How many shallow symlinks one layer keeps (a base image has about ten).
pub const SHALLOW_SYMLINKS_KEPT: usize = 256;

/// An entry whose header disagrees with how runtimes (and the walk) read it, or whose
/// metadata was too large to read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IrregularEntry {
    /// The entry's path as read, normalised; it may hold anything, so it is redacted before
    /// it is reported.
    pub path: String,
    /// What was irregular and how it was read, in words (no input bytes).
    pub reason: String,
}

/// Walks `layer`, passing every file's content to `on_chunk`, and checks the blob's digest
/// while it is read. An error names the layer (`what`).
pub fn walk_layer(
    layer: &Layer,
    on_chunk: &mut dyn FnMut(FileChunk) -> Result<()>,
) -> Result<WalkedLayer> {
    walk_layer_with_progress(layer, &|_| {}, on_chunk)
}

/// [`walk_layer`], also telling `on_stored` how many bytes of the stored blob were read
/// (downloaded, for a registry layer) as they are read.
///
/// A blob whose digest is known is verified before any error about its content is returned:
/// an unverified blob may be anything (a file the layout links to, a registry's answer to
/// another question), and a tar or decompression error describes bytes, so the digest mismatch
/// is what is reported when there is one. Errors `on_chunk` returns (the scan stopping) pass
/// through unchanged.
pub fn walk_layer_with_progress(
    layer: &Layer,
    on_stored: &(dyn Fn(u64) + Sync),
    on_chunk: &mut dyn FnMut(FileChunk) -> Result<()>,
) -> Result<WalkedLayer> {
    let (blob_digest, diff_id) = layer.expected_digests();
    let consumer_failed = Cell::new(false);
    let mut forward = |chunk: FileChunk| {
        let result = on_chunk(chunk);
        consumer_failed.set(consumer_failed.get() || result.is_err());
        result
    };
    match &layer.blob {
        LayerBlob::Absent(reason) => Ok(WalkedLayer {
            skipped: Some(reason.clone()),
            ..WalkedLayer::default()
        }),
        LayerBlob::Mapped(bytes) => {
            let compression = Compression::sniff(&bytes[..bytes.len().min(16)])?;
            if compression == Compression::None {
                let mut follower = MappedFollower::new(bytes, blob_digest.or(diff_id).is_some());
                let walked = walk_mapped_tar_following(bytes, &mut follower, &mut forward);
                if let Some(digest) = blob_digest.or(diff_id)
                    && !consumer_failed.get()
                {
                    follower.verify(digest)?;
                }
                let mut walked = walked?;
                walked.stored_bytes = bytes.len() as u64;
                on_stored(walked.stored_bytes);
                Ok(walked)
            } else {
                let reader = CountingReader::new(ReleasingReader::new(bytes), on_stored);
                walk_stream(reader, blob_digest, diff_id, &mut forward, &consumer_failed)
            }
        }
        LayerBlob::Stream(opener) => {
            let reader = CountingReader::new(opener.open()?, on_stored);
            walk_stream(reader, blob_digest, diff_id, &mut forward, &consumer_failed)
        }
    }
}

/// How far behind the walk of a mapped blob its pages are dropped from the resident set.
/// Chunks in flight (the scan's memory budget, 32 MiB by default, counts mapped chunks too)
/// mostly lie closer to the walk than this; one still matched behind it only reads its
/// pages back from the page cache. Each walker thread keeps up to this much, plus a step.
const RELEASE_LAG: usize = 32 << 20;
/// How far the walk moves between two releases: a system call each.
const RELEASE_STEP: usize = 8 << 20;

/// Follows the walk of an uncompressed mapped blob. It hashes the bytes the walk has passed,
/// so the digest is computed by the walking thread while the detector matches the same bytes
/// (they are read from memory once, close together, and no pass over the blob follows the
/// walk), and drops the pages [`RELEASE_LAG`] behind the walk from the resident set.
struct MappedFollower<'a> {
    bytes: &'a MappedBytes,
    hash: Option<PartialHash>,
    hashed_to: usize,
    released_to: usize,
}

impl<'a> MappedFollower<'a> {
    fn new(bytes: &'a MappedBytes, hash: bool) -> MappedFollower<'a> {
        MappedFollower {
            bytes,
            hash: hash.then(PartialHash::default),
            hashed_to: 0,
            released_to: 0,
        }
    }

    /// The walk has reached `to` (clamped to the blob), about to hand over what starts at
    /// `next`: nothing from there on is released yet (a whole archive longer than the lag is
    /// matched as one chunk).
    fn advance(&mut self, to: usize, next: usize) {
        let to = to.min(self.bytes.len());
        if to <= self.hashed_to {
            return;
        }
        if let Some(hash) = &mut self.hash {
            hash.update(&self.bytes[self.hashed_to..to]);
        }
        self.hashed_to = to;
        let behind = to.saturating_sub(RELEASE_LAG).min(next);
        if behind >= self.released_to + RELEASE_STEP {
            if let Some(passed) = self.bytes.slice(self.released_to..behind) {
                passed.release_pages(false);
            }
            self.released_to = behind;
        }
    }

    /// Hashes the rest of the blob (what follows the tar's end counts too) and compares.
    fn verify(mut self, expected: &Digest) -> Result<()> {
        let end = self.bytes.len();
        self.advance(end, end);
        match self.hash {
            Some(hash) => hash.verify(expected, "layer"),
            None => Ok(()),
        }
    }
}

/// Reports bytes read through it, in steps of about a megabyte.
struct CountingReader<'a, R> {
    inner: R,
    on_read: &'a (dyn Fn(u64) + Sync),
    pending: u64,
}

impl<'a, R: Read> CountingReader<'a, R> {
    fn new(inner: R, on_read: &'a (dyn Fn(u64) + Sync)) -> Self {
        CountingReader {
            inner,
            on_read,
            pending: 0,
        }
    }
}

impl<R: Read> Read for CountingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pending += n as u64;
        if self.pending >= 1 << 20 || (n == 0 && self.pending > 0) {
            (self.on_read)(std::mem::take(&mut self.pending));
        }
        Ok(n)
    }
}

/// Walks a compressed (or streamed) blob: hash the stored bytes, decompress, walk the tar.
/// When reading fails, the blob is read to its end and its digests checked before the error
/// is returned (see [`walk_layer_with_progress`]), unless the failure is `consumer_failed` or
/// the stored bytes stopped coming.
fn walk_stream<R: Read + Send>(
    reader: R,
    blob_digest: Option<&Digest>,
    diff_id: Option<&Digest>,
    on_chunk: &mut dyn FnMut(FileChunk) -> Result<()>,
    consumer_failed: &Cell<bool>,
) -> Result<WalkedLayer> {
    let source_failed = AtomicBool::new(false);
    let mut stored = HashingReader::new(Watched {
        inner: reader,
        failed: &source_failed,
    });
    let stop = || consumer_failed.get() || source_failed.load(Ordering::Relaxed);
    let walked = walk_decoded(&mut stored, diff_id, on_chunk, &stop);
    // Neither the scan stopping nor the blob's bytes ceasing to come (a download that broke
    // off) says anything of the content: that error is the one to report.
    if walked.is_err() && stop() {
        return walked;
    }
    let stored_bytes = match blob_digest {
        Some(digest) => stored.finish(digest, "layer")?,
        None => {
            if walked.is_ok() {
                std::io::copy(&mut stored, &mut std::io::sink())?;
            }
            stored.bytes_read()
        }
    };
    let mut walked = walked?;
    walked.stored_bytes = stored_bytes;
    Ok(walked)
}

/// Sniffs, decompresses and walks what `stored` yields; checks the uncompressed digest
/// (`diff_id`) at the end, and after a failure of the walk too (a tar error in content that
/// is not the layer's is reported as the mismatch it is).
fn walk_decoded<R: Read + Send>(
    stored: &mut HashingReader<R>,
    diff_id: Option<&Digest>,
    on_chunk: &mut dyn FnMut(FileChunk) -> Result<()>,
    stopped: &dyn Fn() -> bool,
) -> Result<WalkedLayer> {
    let mut buffered = BufReader::with_capacity(256 << 10, stored);
    let head = buffered.fill_buf().context("cannot read layer")?;
    let compression = Compression::sniff(head)?;
    let decoder = compression.decoder(buffered)?;
    let mut walked = match diff_id {
        Some(diff_id) => {
            let mut uncompressed = HashingReader::new(decoder);
            let walked = walk_tar_stream(&mut uncompressed, on_chunk);
            if walked.is_err() && stopped() {
                return walked;
            }
            uncompressed.finish(diff_id, "layer (uncompressed)")?;
            walked?
        }
        None => {
            let mut decoder = decoder;
            let walked = walk_tar_stream(&mut decoder, on_chunk)?;
            // Read to the end so a corrupt tail is noticed and the digest covers all.
            std::io::copy(&mut decoder, &mut std::io::sink())
                .context("corrupt data after the end of the tar stream")?;
            walked
        }
    };
    walked.compression = Some(compression);
    Ok(walked)
}

/// A reader that notes, in `failed`, that a read from `inner` failed.
struct Watched<'a, R> {
    inner: R,
    failed: &'a AtomicBool,
}

impl<R: Read> Read for Watched<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner
            .read(buf)
            .inspect_err(|_| self.failed.store(true, Ordering::Relaxed))
    }
}

/// What a tar entry is, reduced to what the scanner cares about.
enum EntryAction {
    File,
    Dir,
    /// A whiteout marker (`.wh.NAME`) deleting this path of lower layers; runtimes never
    /// extract the marker itself, but when it carries content, that content ships too.
    Whiteout(String),
    /// An opaque-directory marker (`.wh..wh..opq`), which may carry content like a whiteout.
    Opaque(String),
    HardLink(String),
    /// A symlink occupies its path (overwrite semantics); where it points does not matter, as
    /// its target is scanned under its own name (and it is kept, when shallow, for package
    /// provenance: see [`WalkedLayer::shallow_symlinks`]).
    Symlink(String),
    /// Devices, fifos: they occupy the path (overwrite semantics) but hold no content.
    Other,
}

fn classify(entry: &Entry, path: &str) -> EntryAction {
    let name = path.rsplit('/').next().unwrap_or(path);
    if let Some(hidden) = name.strip_prefix(".wh.") {
        let dir = path.rsplit_once('/').map(|(dir, _)| dir).unwrap_or("");
        return if hidden == ".wh..opq" {
            EntryAction::Opaque(dir.to_string())
        } else if dir.is_empty() {
            EntryAction::Whiteout(hidden.to_string())
        } else {
            EntryAction::Whiteout(format!("{dir}/{hidden}"))
        };
    }
    match entry.kind {
        // Types runtimes do not unpack still ship their data: scanned like files.
        Kind::File | Kind::Other => EntryAction::File,
        Kind::Dir => EntryAction::Dir,
        Kind::HardLink => {
            EntryAction::HardLink(normalise_path(&String::from_utf8_lossy(&entry.link)))
        }
        Kind::Symlink => EntryAction::Symlink(String::from_utf8_lossy(&entry.link).into_owned()),
        Kind::Device | Kind::Fifo => EntryAction::Other,
    }
}

/// Tar member names as the image sees them: no leading `./` or `/`, no trailing `/`.
pub fn normalise_path(raw: &str) -> String {
    let mut path = raw;
    loop {
        let trimmed = path.trim_start_matches("./").trim_start_matches('/');
        if trimmed.len() == path.len() {
            break;
        }
        path = trimmed;
    }
    path.trim_end_matches('/').to_string()
}

/// Records what an entry does to lower layers; returns true when its content is to be
/// scanned (a regular file, or a whiteout marker that carries content).
fn record(walked: &mut WalkedLayer, path: &str, action: EntryAction, has_content: bool) -> bool {
    match action {
        EntryAction::File => {
            walked.changes.written.insert(path.to_string(), false);
            return true;
        }
        EntryAction::Dir => {
            walked.changes.written.insert(path.to_string(), true);
        }
        EntryAction::Whiteout(target) => {
            walked.changes.whiteouts.insert(target);
            return has_content;
        }
        EntryAction::Opaque(dir) => {
            walked.changes.opaque_dirs.insert(dir);
            return has_content;
        }
        EntryAction::HardLink(target) => {
            walked.changes.written.insert(path.to_string(), false);
            walked.hard_links.push(HardLink {
                path: path.to_string(),
                target,
            });
        }
        EntryAction::Symlink(target) => {
            walked.changes.written.insert(path.to_string(), false);
            keep_shallow_symlink(walked, path, target);
        }
        EntryAction::Other => {
            walked.changes.written.insert(path.to_string(), false);
        }
    }
    false
}

/// Keeps a symlink at most [`SHALLOW_SYMLINK_DEPTH`] components deep, up to
/// [`SHALLOW_SYMLINKS_KEPT`] per layer (the rest are counted).
fn keep_shallow_symlink(walked: &mut WalkedLayer, path: &str, target: String) {
    if path.is_empty() || path.split('/').count() > SHALLOW_SYMLINK_DEPTH {
        return;
    }
    if walked.shallow_symlinks.len() >= SHALLOW_SYMLINKS_KEPT {
        walked.shallow_symlinks_dropped += 1;
        return;
    }
    walked.shallow_symlinks.push(Symlink {
        path: path.to_string(),
        target,
    });
}

/// Takes a tar entry into the layer's record (what it does to lower layers, see [`record`],
/// and where its header disagrees with how it was read); for content to scan, returns its
/// path and counts it.
fn admit(walked: &mut WalkedLayer, entry: &Entry) -> Option<Arc<str>> {
    let path = normalise_path(&String::from_utf8_lossy(&entry.path));
    for anomaly in &entry.anomalies {
        walked.irregular.push(IrregularEntry {
            path: path.clone(),
            reason: anomaly.to_string(),
        });
    }
    let action = classify(entry, &path);
    let has_content = entry.holds_file_data() && entry.stored > 0;
    if !record(walked, &path, action, has_content) {
        return None;
    }
    walked.files += 1;
    walked.content_bytes += entry.stored;
    Some(Arc::from(path))
}

/// A stretch of a file's stored bytes and where it lies in the file: the whole file, or one
/// data segment of a sparse file (its holes are never read, nor expanded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Run {
    file_offset: u64,
    len: u64,
}

/// The runs an entry's stored bytes make, in stored order. A sparse map that accounts for
/// fewer bytes than are stored leaves a tail, scanned after the last segment; one that
/// accounts for more is cut to what is stored (the reader reported either).
fn runs(entry: &Entry) -> Vec<Run> {
    let Some(segments) = &entry.sparse else {
        return vec![Run {
            file_offset: 0,
            len: entry.stored,
        }];
    };
    let mut left = entry.stored;
    let mut runs = Vec::with_capacity(segments.len() + 1);
    let mut end = 0;
    for segment in segments {
        let len = segment.len.min(left);
        if len > 0 {
            runs.push(Run {
                file_offset: segment.offset,
                len,
            });
        }
        left -= len;
        end = segment.offset + segment.len;
    }
    if left > 0 {
        runs.push(Run {
            file_offset: end,
            len: left,
        });
    }
    runs
}

/// Walks a tar read as a stream, reading file contents into memory chunk by chunk.
pub(crate) fn walk_tar_stream<R: Read>(
    reader: R,
    on_chunk: &mut dyn FnMut(FileChunk) -> Result<()>,
) -> Result<WalkedLayer> {
    let mut tar = TarReader::new(StreamInput(reader));
    let mut walked = WalkedLayer::default();
    while let Some(entry) = tar.next_entry()? {
        let Some(path) = admit(&mut walked, &entry) else {
            continue;
        };
        let mut data = tar.data();
        let mut lines_before = 0;
        let runs = runs(&entry);
        for (index, run) in runs.iter().enumerate() {
            let more = index + 1 < runs.len();
            lines_before = read_run(&mut data, *run, lines_before, more, &path, on_chunk)?;
        }
    }
    Ok(walked)
}

/// Reads a file of `size` bytes and hands it over in overlapping chunks.
#[cfg(test)]
fn read_chunks(
    reader: &mut dyn Read,
    size: u64,
    path: &Arc<str>,
    on_chunk: &mut dyn FnMut(FileChunk) -> Result<()>,
) -> Result<()> {
    let run = Run {
        file_offset: 0,
        len: size,
    };
    read_run(reader, run, 0, false, path, on_chunk).map(|_| ())
}

/// Reads one run of a file and hands it over in overlapping chunks. Returns the newlines up
/// to the run's end when `count_to_end` (another run follows), else the count at the start of
/// its last chunk (nothing reads it): a file that fits one chunk, most files, is never counted.
fn read_run(
    reader: &mut dyn Read,
    run: Run,
    mut lines_before: u64,
    count_to_end: bool,
    path: &Arc<str>,
    on_chunk: &mut dyn FnMut(FileChunk) -> Result<()>,
) -> Result<u64> {
    let size = run.len;
    // The overlap carried into the next chunk: one small buffer for the whole run.
    let mut carry: Vec<u8> = Vec::new();
    let mut consumed: u64 = 0;
    loop {
        let remaining = size - consumed;
        let fresh = remaining.min(CHUNK_SIZE as u64) as usize;
        let mut buffer = ChunkBytes::read(reader, &carry, fresh)?;
        // As in `slice_run`: a file of several runs (a sparse file) is never one archive.
        let whole = consumed == 0 && run.file_offset == 0 && !count_to_end && fresh as u64 != size;
        if whole && wants_whole_file(&buffer, size) {
            // Archives are opened by the decoders, which need the whole file at once.
            buffer = buffer.read_to_size(reader, size)?;
        }
        consumed += (buffer.len() - carry.len()) as u64;
        let last = consumed == size;
        let file_offset = run.file_offset + consumed - buffer.len() as u64;
        let report_before = if last {
            buffer.len()
        } else {
            buffer.len() - CHUNK_OVERLAP.min(buffer.len())
        };
        if !last {
            carry.clear();
            carry.extend_from_slice(&buffer[report_before..]);
        }
        let lines_here = if last && !count_to_end {
            0
        } else {
            newlines(&buffer[..report_before])
        };
        on_chunk(FileChunk {
            path: Arc::clone(path),
            content: buffer.into_content(),
            file_offset,
            lines_before,
            report_before,
        })?;
        lines_before += lines_here;
        if last {
            return Ok(lines_before);
        }
    }
}

/// Chunks of a stream at least this long are read into a buffer of [`CHUNK_BUFFERS`]
/// (counted at the buffer's whole size in the scan's budget, so not much shorter); shorter
/// ones, most files, into a vector of their own length.
const POOLED_FROM: usize = CHUNK_SIZE / 2;

/// Unused chunk buffers kept for the next chunks: each walker's next chunk and the
/// detector's turnover mostly find one (a scan of a 2 GB image maps a few more than it
/// ever holds at once), while what the pool holds on to stays small next to the chunks in
/// flight, which the scan's budget bounds.
const IDLE_CHUNK_BUFFERS: usize = 4;

/// The buffers large chunks of streamed files are read into, shared by every walk of the
/// process (see [`crate::source::chunk_pool`] for why they are pooled rather than allocated).
static CHUNK_BUFFERS: BufferPool = BufferPool::new(CHUNK_SIZE + CHUNK_OVERLAP, IDLE_CHUNK_BUFFERS);

/// Unmaps the chunk buffers no chunk holds: for after a scan's walk, so they do not sit in
/// memory while its report is built (the next walk maps them again).
pub fn release_chunk_buffers() {
    CHUNK_BUFFERS.release_idle();
}

/// The bytes of one chunk being read from a stream.
enum ChunkBytes {
    Heap(Vec<u8>),
    Pooled(PooledBuffer),
}

impl std::ops::Deref for ChunkBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            ChunkBytes::Heap(bytes) => bytes,
            ChunkBytes::Pooled(buffer) => buffer,
        }
    }
}

impl ChunkBytes {
    /// `carry`, then `fresh` bytes read from `reader`.
    fn read(reader: &mut dyn Read, carry: &[u8], fresh: usize) -> Result<ChunkBytes> {
        let len = carry.len() + fresh;
        if len < POOLED_FROM {
            let mut buffer = Vec::with_capacity(len);
            buffer.extend_from_slice(carry);
            read_onto(reader, &mut buffer, fresh)?;
            return Ok(ChunkBytes::Heap(buffer));
        }
        let mut buffer = CHUNK_BUFFERS
            .take()
            .context("cannot map a buffer for a file chunk")?;
        let writable = &mut buffer.writable()[..len];
        writable[..carry.len()].copy_from_slice(carry);
        read_full(reader, &mut writable[carry.len()..])?;
        buffer.set_len(len);
        Ok(ChunkBytes::Pooled(buffer))
    }

    /// These bytes, the start of a file of `size` bytes, followed by the rest of the file.
    /// A pooled chunk is copied out first (archives past a chunk are few): its buffer cannot
    /// grow.
    fn read_to_size(self, reader: &mut dyn Read, size: u64) -> Result<ChunkBytes> {
        let size = usize::try_from(size).context("file too large for this platform")?;
        let mut whole = match self {
            ChunkBytes::Heap(mut bytes) => {
                bytes.reserve(size - bytes.len());
                bytes
            }
            ChunkBytes::Pooled(buffer) => {
                let mut bytes = Vec::with_capacity(size);
                bytes.extend_from_slice(&buffer);
                bytes
            }
        };
        let rest = size - whole.len();
        read_onto(reader, &mut whole, rest)?;
        Ok(ChunkBytes::Heap(whole))
    }

    fn into_content(self) -> Content {
        match self {
            ChunkBytes::Heap(bytes) => Content::Owned(Arc::new(bytes)),
            ChunkBytes::Pooled(buffer) => Content::Pooled(Arc::new(buffer)),
        }
    }
}

/// Appends `n` bytes read from `reader` to `buffer`; a reader that ends first is a
/// truncated layer.
fn read_onto(reader: &mut dyn Read, buffer: &mut Vec<u8>, n: usize) -> Result<()> {
    let want = buffer.len() + n;
    reader
        .take(n as u64)
        .read_to_end(buffer)
        .context("truncated layer")?;
    if buffer.len() != want {
        bail!("truncated layer: file content ends early");
    }
    Ok(())
}

/// Fills `buffer` from `reader`; a reader that ends first is a truncated layer.
fn read_full(reader: &mut dyn Read, buffer: &mut [u8]) -> Result<()> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => bail!("truncated layer: file content ends early"),
            Ok(n) => filled += n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(anyhow::Error::new(err).context("truncated layer")),
        }
    }
    Ok(())
}

/// The newlines in `bytes`: the line count a later chunk of the same file starts from.
/// bytecount counts with SIMD whatever the density; iterating memchr's matches costs a step
/// per line.
fn newlines(bytes: &[u8]) -> u64 {
    bytecount::count(bytes, b'\n') as u64
}

/// Walks an uncompressed tar that lies in a mapping: file contents are views of the mapping,
/// never copied.
pub(crate) fn walk_mapped_tar(
    bytes: &MappedBytes,
    on_chunk: &mut dyn FnMut(FileChunk) -> Result<()>,
) -> Result<WalkedLayer> {
    walk_mapped_tar_following(bytes, &mut MappedFollower::new(bytes, false), on_chunk)
}

/// [`walk_mapped_tar`], telling `follower` how far the walk has come before each chunk is
/// handed over: to the chunk's end (headers between chunks are hashed with the next chunk,
/// and whatever follows the last one when the follower verifies).
fn walk_mapped_tar_following(
    bytes: &MappedBytes,
    follower: &mut MappedFollower,
    on_chunk: &mut dyn FnMut(FileChunk) -> Result<()>,
) -> Result<WalkedLayer> {
    let release = ReleaseOnDrop::new(bytes.clone());
    let blob_start = bytes.as_ptr() as usize;
    let mut on_chunk = |chunk: FileChunk| {
        // Chunks are views of `bytes`: where one lies in the blob follows from its address.
        let start = chunk.content.as_ptr() as usize - blob_start;
        follower.advance(start + chunk.content.len(), start);
        on_chunk(chunk)
    };
    let mut tar = TarReader::new(SliceInput(&bytes[..]));
    let mut walked = WalkedLayer {
        compression: Some(Compression::None),
        ..WalkedLayer::default()
    };
    while let Some(entry) = tar.next_entry()? {
        let Some(path) = admit(&mut walked, &entry) else {
            continue;
        };
        let runs = runs(&entry);
        let mut start = entry.data_start;
        let mut lines_before = 0;
        for (index, run) in runs.iter().enumerate() {
            let content = usize::try_from(start)
                .ok()
                .zip(usize::try_from(start + run.len).ok())
                .and_then(|(from, to)| bytes.slice(from..to))
                .ok_or_else(|| {
                    anyhow!("truncated layer: file content runs past the end of the blob")
                })?;
            let more = index + 1 < runs.len();
            let place = (&path, &release);
            lines_before = slice_run(content, *run, lines_before, more, place, &mut on_chunk)?;
            start += run.len;
        }
    }
    Ok(walked)
}

/// Files that are archives (zip/jar/war, gzip) up to this size are handed over whole, so the
/// decoders can open them (a Spring Boot fat jar is typically 20–100 MB).
pub const WHOLE_ARCHIVE_LIMIT: u64 = 128 << 20;

/// Is this file an archive small enough to hand over whole? `head` is its first bytes.
fn wants_whole_file(head: &[u8], size: u64) -> bool {
    size <= WHOLE_ARCHIVE_LIMIT
        && (head.starts_with(b"PK\x03\x04") || head.starts_with(&[0x1f, 0x8b]))
}

/// Hands over one run of a mapped file in overlapping chunks (views, not copies). Returns
/// the newlines up to the run's end when `count_to_end` (another run follows), else the count
/// at the start of its last chunk (nothing reads it).
fn slice_run(
    content: MappedBytes,
    run: Run,
    mut lines_before: u64,
    count_to_end: bool,
    (path, release): (&Arc<str>, &Arc<ReleaseOnDrop>),
    on_chunk: &mut dyn FnMut(FileChunk) -> Result<()>,
) -> Result<u64> {
    let size = content.len();
    if run.file_offset == 0 && !count_to_end && wants_whole_file(&content, size as u64) {
        on_chunk(FileChunk {
            path: Arc::clone(path),
            content: Content::Mapped(content, Arc::clone(release)),
            file_offset: 0,
            lines_before: 0,
            report_before: size,
        })?;
        return Ok(lines_before);
    }
    let mut start = 0usize;
    loop {
        let end = (start + CHUNK_SIZE + if start == 0 { 0 } else { CHUNK_OVERLAP }).min(size);
        let last = end == size;
        let report_before = if last {
            end - start
        } else {
            end - start - CHUNK_OVERLAP
        };
        let view = content.slice(start..end).expect("chunk within file");
        let lines_here = if last && !count_to_end {
            0
        } else {
            newlines(&view[..report_before])
        };
        on_chunk(FileChunk {
            path: Arc::clone(path),
            content: Content::Mapped(view, Arc::clone(release)),
            file_offset: run.file_offset + start as u64,
            lines_before,
            report_before,
        })?;
        lines_before += lines_here;
        if last {
            return Ok(lines_before);
        }
        start += report_before;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_member_names() {
        assert_eq!(normalise_path("./etc/passwd"), "etc/passwd");
        assert_eq!(normalise_path("/etc/"), "etc");
        assert_eq!(normalise_path(".//./a/b"), "a/b");
    }

    fn collect_chunks(data: &[u8]) -> Vec<FileChunk> {
        let mut chunks = Vec::new();
        let path: Arc<str> = Arc::from("f");
        read_chunks(&mut &data[..], data.len() as u64, &path, &mut |c| {
            chunks.push(c);
            Ok(())
        })
        .unwrap();
        chunks
    }

    #[test]
    fn chunks_cover_every_byte_once_with_overlap() {
        let size = 2 * CHUNK_SIZE + 1234;
        let data: Vec<u8> = (0..size)
            .map(|i| if i % 100 == 99 { b'\n' } else { b'a' })
            .collect();
        let chunks = collect_chunks(&data);
        assert_eq!(chunks.len(), 3);
        let mut covered = 0u64;
        for chunk in &chunks {
            assert_eq!(chunk.file_offset, covered.saturating_sub(0));
            let expected_lines = data[..chunk.file_offset as usize]
                .iter()
                .filter(|&&b| b == b'\n')
                .count() as u64;
            assert_eq!(chunk.lines_before, expected_lines);
            assert_eq!(
                &chunk.content[..],
                &data[chunk.file_offset as usize..chunk.file_offset as usize + chunk.content.len()]
            );
            covered = chunk.file_offset + chunk.report_before as u64;
        }
        assert_eq!(covered, size as u64);
    }

    #[test]
    fn archives_are_handed_over_whole() {
        let mut data = b"PK\x03\x04".to_vec();
        data.resize(CHUNK_SIZE * 2 + 10, b'z');
        let chunks = collect_chunks(&data);
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].content.len(), data.len());
        assert_eq!(chunks[0].report_before, data.len());
    }

    fn entry(path: &str, stored: u64, sparse: Option<Vec<crate::tar_reader::Segment>>) -> Entry {
        Entry {
            kind: Kind::File,
            path: path.as_bytes().to_vec(),
            link: Vec::new(),
            stored,
            data_start: 0,
            sparse,
            anomalies: Vec::new(),
        }
    }

    #[test]
    fn sparse_runs_follow_the_segments_and_keep_every_stored_byte() {
        use crate::tar_reader::Segment;
        let run = |file_offset, len| Run { file_offset, len };
        let segments = vec![
            Segment { offset: 0, len: 5 },
            Segment {
                offset: 1 << 50,
                len: 5,
            },
        ];
        let exact = entry("f", 10, Some(segments.clone()));
        assert_eq!(runs(&exact), vec![run(0, 5), run(1 << 50, 5)]);
        // Bytes the map does not account for are scanned after the last segment.
        let more = entry("f", 12, Some(segments.clone()));
        assert_eq!(
            runs(&more),
            vec![run(0, 5), run(1 << 50, 5), run((1 << 50) + 5, 2)]
        );
        let fewer = entry("f", 7, Some(segments));
        assert_eq!(runs(&fewer), vec![run(0, 5), run(1 << 50, 2)]);
        assert_eq!(runs(&entry("f", 9, None)), vec![run(0, 9)]);
    }

    #[test]
    fn whiteout_markers_with_content_are_scanned_and_still_delete() {
        let mut walked = WalkedLayer::default();
        let path = admit(&mut walked, &entry("etc/.wh.key", 10, None));
        assert_eq!(path.as_deref(), Some("etc/.wh.key"));
        assert!(walked.changes.whiteouts.contains("etc/key"));
        assert_eq!((walked.files, walked.content_bytes), (1, 10));
        assert!(admit(&mut walked, &entry("etc/.wh.empty", 0, None)).is_none());
        assert!(admit(&mut walked, &entry("dir/.wh..wh..opq", 4, None)).is_some());
        assert!(walked.changes.opaque_dirs.contains("dir"));
        assert!(
            walked.changes.written.is_empty(),
            "markers are never written"
        );
    }

    /// Every prefix of an archive is walked alike in place (a mapped layer) and as a stream:
    /// an error when it ends inside a header, metadata or an entry's data (where Go's reader
    /// returns `io.ErrUnexpectedEOF`), the entries so far when it ends at an entry's end or in
    /// its padding (Go takes that for the end). The `layer` fuzz target checks the same on
    /// whatever it generates; fuzz/regressions/layer/ keeps a 334-byte archive cut inside its
    /// first header.
    #[test]
    fn every_truncation_is_walked_alike_in_place_and_as_a_stream() {
        let mut builder = tar::Builder::new(Vec::new());
        let long = format!("{}/key.env", "d".repeat(120));
        let files: [(&str, &[u8]); 4] = [
            ("a.env", b"KEY=1\n"),
            (&long, b"long name"),
            ("b.bin", &[7u8; 700]),
            ("empty", b""),
        ];
        for (name, data) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            builder.append_data(&mut header, name, data).unwrap();
        }
        let archive = builder.into_inner().unwrap();
        let walk = |prefix: &[u8]| {
            let mapped = MappedBytes::from_vec(prefix.to_vec());
            let in_place = walk_mapped_tar(&mapped, &mut |_| Ok(())).map(|w| w.files);
            let streamed = walk_tar_stream(prefix, &mut |_| Ok(())).map(|w| w.files);
            (in_place.ok(), streamed.ok())
        };
        for len in 0..=archive.len() {
            let (in_place, streamed) = walk(&archive[..len]);
            assert_eq!(in_place, streamed, "the first {len} bytes");
        }
        assert_eq!(
            walk(&archive[..334]),
            (None, None),
            "cut inside the first header"
        );
        assert_eq!(
            walk(&archive[..515]),
            (None, None),
            "cut inside the first file"
        );
        assert_eq!(
            walk(&archive[..1000]),
            (Some(1), Some(1)),
            "cut in its padding"
        );
        assert_eq!(walk(&archive[..1024]), (Some(1), Some(1)), "cut at its end");
        assert_eq!(walk(&archive), (Some(4), Some(4)));
    }

    /// A sparse file whose first data run starts like a zip and outgrows a chunk is chunked
    /// by both walks alike: a file of several runs is never handed over as one archive.
    #[test]
    fn a_sparse_file_that_starts_like_an_archive_is_chunked_by_both_walks() {
        let first = CHUNK_SIZE + 100;
        let second_at = first as u64 + (1 << 30);
        let mut map = format!("2\n0\n{first}\n{second_at}\n5\n").into_bytes();
        map.resize(512, 0);
        let mut data = map;
        data.extend_from_slice(b"PK\x03\x04");
        data.resize(512 + first, b'\n');
        data.extend_from_slice(b"tail!");
        let realsize = (second_at + 5).to_string();
        let mut builder = tar::Builder::new(Vec::new());
        builder
            .append_pax_extensions([
                ("GNU.sparse.major", &b"1"[..]),
                ("GNU.sparse.minor", b"0"),
                ("GNU.sparse.name", b"app.zip"),
                ("GNU.sparse.realsize", realsize.as_bytes()),
            ])
            .unwrap();
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        builder
            .append_data(&mut header, "GNUSparseFile.0/app.zip", &data[..])
            .unwrap();
        let archive = builder.into_inner().unwrap();
        let (mut in_place, mut streamed) = (Vec::new(), Vec::new());
        let record = |seen: &mut Vec<_>, chunk: FileChunk| {
            let at = (chunk.file_offset, chunk.content.len(), chunk.report_before);
            seen.push((at, chunk.lines_before));
            Ok(())
        };
        let mapped = MappedBytes::from_vec(archive.clone());
        walk_mapped_tar(&mapped, &mut |chunk| record(&mut in_place, chunk)).unwrap();
        walk_tar_stream(&archive[..], &mut |chunk| record(&mut streamed, chunk)).unwrap();
        assert_eq!(in_place, streamed);
        assert_eq!(in_place.len(), 3, "{in_place:?}");
        assert_eq!(in_place[2].0, (second_at, 5, 5));
        assert_eq!(
            in_place[2].1,
            first as u64 - 4,
            "every newline of the first run"
        );
    }

    /// However the walk advances (chunk ends out of order, past the blob, not at all), the
    /// follower hashes every byte once, in order, and verifies against the blob's digest.
    #[test]
    fn the_follower_hashes_the_whole_blob_whatever_the_steps() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let bytes = MappedBytes::from_vec(data.clone());
        let digest = Digest::of(&data);
        let steps: [&[(usize, usize)]; 4] = [
            &[],
            &[(10, 0), (5, 0), (100_000, 90_000), (1 << 40, 0)],
            &[(299_999, 299_000)],
            &[(1, 0), (2, 1), (3, 2), (200_000, 150_000)],
        ];
        for advances in steps {
            let mut follower = MappedFollower::new(&bytes, true);
            for &(to, next) in advances {
                follower.advance(to, next);
            }
            follower.verify(&digest).unwrap();
        }
        let mut follower = MappedFollower::new(&bytes, true);
        follower.advance(1000, 0);
        let other = Digest::of(b"something else");
        assert!(
            follower
                .verify(&other)
                .unwrap_err()
                .to_string()
                .contains("digest mismatch")
        );
    }

    #[test]
    fn truncated_content_is_an_error() {
        let path: Arc<str> = Arc::from("f");
        let err = read_chunks(&mut &b"short"[..], 100, &path, &mut |_| Ok(())).unwrap_err();
        assert!(err.to_string().contains("truncated"));
    }
}
