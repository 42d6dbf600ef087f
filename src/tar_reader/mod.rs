//! Reading tar archives exactly as Go's `archive/tar` reads them, since that is what Docker,
//! containerd and umoci unpack image layers with: a file every runtime extracts must be a file
//! stowaway scans. Where the `tar` crate differs (it skips the size of a directory, link,
//! device or fifo header; Go reads no data for those), an attacker could hide a file from the
//! scanner, so layers and nested tars are read here instead.
//!
//! Formats: ustar, star and V7 headers, GNU long names and links (`L`, `K`), PAX extended
//! (`x`) and global (`g`) headers, octal and base-256 numbers, the header checksum, and GNU
//! sparse files (old `S` maps, PAX 0.0/0.1/1.0 maps) whose holes are described, never
//! expanded. The reader streams: it holds one header, at most [`LIMITS`] of metadata, and
//! never file data (the caller reads [`TarReader::data`], or slices its own buffer at
//! [`Entry::data_start`] when the archive is in memory).
//!
//! Where a header disagrees with how it is read (a size on a header-only entry, metadata over
//! a limit, a sparse map that does not match its data), the entry carries an [`Anomaly`] for
//! the report. Where Go refuses an archive, so does this reader; its errors hold offsets and
//! fixed words, never bytes of the input (a misframed "header" may be file content).

mod header;
mod pax;
mod sparse;

use std::fmt;
use std::io::{self, Read};

use anyhow::{Context, Result, anyhow};

use header::{BLOCK, Format, RawHeader};
pub(crate) use sparse::Segment;

/// Bounds on what one entry's metadata may hold in memory. Linux paths are at most 4096 bytes
/// (`PATH_MAX`), so the name bounds are generous; Go itself refuses metadata over 1 MiB.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// A GNU long name or long link (`L`, `K`).
    pub name: u64,
    /// The data of one PAX header (`x`, `g`).
    pub pax: u64,
    /// A GNU sparse map (the text of a 1.0 map, the extension blocks of an old map).
    pub sparse_map: u64,
}

/// The limits layers and nested archives are read with.
pub(crate) const LIMITS: Limits = Limits {
    name: 64 << 10,
    pax: 1 << 20,
    sparse_map: 1 << 20,
};

/// What an entry is, as a runtime unpacks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A regular file (also contiguous files and GNU sparse files).
    File,
    Dir,
    Symlink,
    HardLink,
    /// A character or block device.
    Device,
    Fifo,
    /// A type runtimes do not unpack; its data is read like a file's.
    Other,
}

/// Where a header and the way it is read disagree; reported, never fatal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Anomaly {
    /// A directory, link, device or fifo whose size field is not 0: runtimes read no data for
    /// it (the next header follows at once), and neither does this reader.
    SizeOnHeaderOnlyEntry(i64),
    /// A GNU long name (`L`) over [`Limits::name`]: skipped, the entry keeps its header's name.
    LongNameOverLimit(u64),
    /// A GNU long link (`K`) over [`Limits::name`]: skipped.
    LongLinkOverLimit(u64),
    /// A PAX header over [`Limits::pax`]: skipped, the entry keeps its header's fields.
    PaxOverLimit(u64),
    /// A sparse map over [`Limits::sparse_map`]: the stored data is read as it is stored.
    SparseMapOverLimit,
    /// A sparse map that accounts for `mapped` bytes where `stored` are stored.
    SparseDataMismatch { mapped: u64, stored: u64 },
    /// An entry type runtimes do not unpack; its data is read.
    UnknownType(u8),
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Anomaly::SizeOnHeaderOnlyEntry(size) => write!(
                f,
                "tar header claims {size} data bytes for an entry that has none \
                 (runtimes read the next header right after it, and so did the scan)"
            ),
            Anomaly::LongNameOverLimit(len) => write!(
                f,
                "GNU long name of {len} bytes over the {} KiB limit: not read, the entry is \
                 named by its header",
                LIMITS.name >> 10
            ),
            Anomaly::LongLinkOverLimit(len) => write!(
                f,
                "GNU long link of {len} bytes over the {} KiB limit: not read",
                LIMITS.name >> 10
            ),
            Anomaly::PaxOverLimit(len) => write!(
                f,
                "PAX header of {len} bytes over the {} MiB limit: not read, the entry keeps \
                 its header's fields",
                LIMITS.pax >> 20
            ),
            Anomaly::SparseMapOverLimit => write!(
                f,
                "sparse map over the {} MiB limit: the data after it was scanned as stored",
                LIMITS.sparse_map >> 20
            ),
            Anomaly::SparseDataMismatch { mapped, stored } => write!(
                f,
                "sparse map accounts for {mapped} bytes but {stored} are stored \
                 (all stored bytes were scanned)"
            ),
            Anomaly::UnknownType(flag) => write!(
                f,
                "tar entry type 0x{flag:02x}, which runtimes do not unpack (its data was scanned)"
            ),
        }
    }
}

/// One entry, its metadata applied (long names, PAX records, sparse maps).
#[derive(Debug)]
pub(crate) struct Entry {
    pub kind: Kind,
    /// The name as stored (not normalised, possibly not UTF-8).
    pub path: Vec<u8>,
    /// The link target of a hard or symbolic link.
    pub link: Vec<u8>,
    /// Bytes stored after the header: 0 for header-only kinds whatever their size field says;
    /// for a sparse file, the data segments one after the other.
    pub stored: u64,
    /// Offset of the first stored byte in the archive.
    pub data_start: u64,
    /// For a sparse file, where its stored bytes lie in the file.
    pub sparse: Option<Vec<Segment>>,
    pub anomalies: Vec<Anomaly>,
}

impl Entry {
    /// Whether the entry's data is a file's content: a regular file, or a type runtimes do
    /// not unpack, whose data ships all the same.
    pub(crate) fn holds_file_data(&self) -> bool {
        matches!(self.kind, Kind::File | Kind::Other)
    }
}

/// Where archive bytes come from: a stream, or a buffer the caller can slice.
pub(crate) trait Input {
    /// Fills `buf` unless the input ends first; returns the bytes read.
    fn fill(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// Skips `n` bytes unless the input ends first; returns the bytes skipped.
    fn skip(&mut self, n: u64) -> io::Result<u64>;
}

/// An archive in memory: skipping costs nothing, data is sliced by the caller.
pub(crate) struct SliceInput<'a>(pub &'a [u8]);

impl Input for SliceInput<'_> {
    fn fill(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
    fn skip(&mut self, n: u64) -> io::Result<u64> {
        let n = n.min(self.0.len() as u64);
        self.0 = &self.0[n as usize..];
        Ok(n)
    }
}

/// An archive read as a stream.
pub(crate) struct StreamInput<R>(pub R);

impl<R: Read> Input for StreamInput<R> {
    fn fill(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.0.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        Ok(filled)
    }
    fn skip(&mut self, n: u64) -> io::Result<u64> {
        io::copy(&mut (&mut self.0).take(n), &mut io::sink())
    }
}

/// Metadata entries (`x`, `L`, `K`) gathered for the entry that follows them.
#[derive(Default)]
struct Pending {
    pax: Option<pax::Records>,
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    anomalies: Vec<Anomaly>,
}

/// Reads entries one after the other; see the module documentation.
pub(crate) struct TarReader<I> {
    input: I,
    /// Bytes consumed from the input.
    position: u64,
    /// Stored bytes of the current entry not consumed yet, and the padding after them.
    unread: u64,
    padding: u64,
    limits: Limits,
    ended: bool,
}

/// Whether Go reads no data for an entry of this type, whatever its size field says.
fn header_only(typeflag: u8) -> bool {
    matches!(typeflag, b'1'..=b'6')
}

impl<I: Input> TarReader<I> {
    pub(crate) fn new(input: I) -> Self {
        Self::with_limits(input, LIMITS)
    }

    pub(crate) fn with_limits(input: I, limits: Limits) -> Self {
        TarReader {
            input,
            position: 0,
            unread: 0,
            padding: 0,
            limits,
            ended: false,
        }
    }

    /// The next entry, or `None` at the end of the archive. The data of the previous entry
    /// is skipped if it was not read.
    pub(crate) fn next_entry(&mut self) -> Result<Option<Entry>> {
        let mut pending = Pending::default();
        loop {
            if self.ended || !self.finish_entry()? {
                self.ended = true;
                return Ok(None);
            }
            let Some(block) = self.header_block()? else {
                self.ended = true;
                return Ok(None);
            };
            let at = self.position - BLOCK as u64;
            let raw = header::parse(&block).map_err(|why| corrupt(why, at))?;
            self.start_data(raw.typeflag, raw.size, at)?;
            match raw.typeflag {
                b'x' | b'g' => {
                    let records = match self.special(self.limits.pax)? {
                        Some(data) => {
                            let records = pax::parse(&data).map_err(|why| corrupt(why, at))?;
                            if raw.typeflag == b'g' {
                                // Go applies a global header's records to the header it
                                // returns for it, refusing malformed sizes, ids and times.
                                records.checked_size().map_err(|why| corrupt(why, at))?;
                            }
                            Some(records)
                        }
                        None => {
                            pending
                                .anomalies
                                .push(Anomaly::PaxOverLimit(raw.size as u64));
                            None
                        }
                    };
                    if raw.typeflag == b'g' {
                        // Go hands a global header over as an entry of its own, which ends
                        // what was pending; runtimes then ignore it.
                        pending = Pending {
                            anomalies: pending.anomalies,
                            ..Pending::default()
                        };
                    } else {
                        pending.pax = records;
                    }
                }
                b'L' | b'K' => self.long_name(&raw, &mut pending)?,
                _ => return self.entry(raw, &block, pending, at).map(Some),
            }
        }
    }

    /// The current entry's stored bytes, for a streamed archive.
    pub(crate) fn data(&mut self) -> EntryData<'_, I> {
        EntryData { reader: self }
    }

    fn long_name(&mut self, raw: &RawHeader, pending: &mut Pending) -> Result<()> {
        let is_name = raw.typeflag == b'L';
        match self.special(self.limits.name)? {
            Some(data) => {
                let value = Some(header::c_string(&data).to_vec());
                if is_name {
                    pending.long_name = value;
                } else {
                    pending.long_link = value;
                }
            }
            None if is_name => pending
                .anomalies
                .push(Anomaly::LongNameOverLimit(raw.size as u64)),
            None => pending
                .anomalies
                .push(Anomaly::LongLinkOverLimit(raw.size as u64)),
        }
        Ok(())
    }

    /// Builds the entry a header describes, applying what was pending (Go's order: PAX
    /// records, then GNU long names, then the legacy type and the sparse map).
    fn entry(
        &mut self,
        raw: RawHeader,
        block: &[u8; BLOCK],
        pending: Pending,
        at: u64,
    ) -> Result<Entry> {
        let Pending {
            pax,
            long_name,
            long_link,
            mut anomalies,
        } = pending;
        let pax = pax.unwrap_or_default();
        let (mut path, mut link, mut size) = (raw.name, raw.link, raw.size);
        if let Some(value) = pax.get("path") {
            path = value.to_vec();
        }
        if let Some(value) = pax.get("linkpath") {
            link = value.to_vec();
        }
        if let Some(value) = pax.checked_size().map_err(|why| corrupt(why, at))? {
            size = value;
        }
        path = long_name.filter(|n| !n.is_empty()).unwrap_or(path);
        link = long_link.filter(|n| !n.is_empty()).unwrap_or(link);
        let typeflag = match raw.typeflag {
            0 if path.ends_with(b"/") => b'5',
            0 => b'0',
            other => other,
        };
        self.start_data(typeflag, size, at)?;
        let sparse = self.sparse(typeflag, block, &pax, &mut path, &mut size, at)?;
        let sparse = match sparse {
            SparseMap::None => None,
            SparseMap::OverLimit => {
                anomalies.push(Anomaly::SparseMapOverLimit);
                None
            }
            SparseMap::Segments(segments) => {
                let mapped = segments.iter().map(|s| s.len).sum::<u64>();
                if mapped != self.unread {
                    anomalies.push(Anomaly::SparseDataMismatch {
                        mapped,
                        stored: self.unread,
                    });
                }
                Some(segments)
            }
        };
        if header_only(typeflag) && size != 0 {
            anomalies.push(Anomaly::SizeOnHeaderOnlyEntry(size));
        }
        let kind = kind_of(typeflag);
        if kind == Kind::Other {
            anomalies.push(Anomaly::UnknownType(typeflag));
        }
        Ok(Entry {
            kind,
            path,
            link,
            stored: self.unread,
            data_start: self.position,
            sparse,
            anomalies,
        })
    }

    /// Sets up the data that follows a header, as Go's `handleRegularFile` does.
    fn start_data(&mut self, typeflag: u8, size: i64, at: u64) -> Result<()> {
        let stored = if header_only(typeflag) { 0 } else { size };
        let stored = u64::try_from(stored).map_err(|_| corrupt("negative entry size", at))?;
        self.unread = stored;
        self.padding = (BLOCK as u64 - stored % BLOCK as u64) % BLOCK as u64;
        Ok(())
    }

    /// Skips what is left of the current entry. False when the input ends in the padding,
    /// which Go takes as the end of the archive.
    fn finish_entry(&mut self) -> Result<bool> {
        let skipped = self
            .input
            .skip(self.unread)
            .context("cannot read tar data")?;
        self.position += skipped;
        if skipped < self.unread {
            return Err(truncated(self.position));
        }
        self.unread = 0;
        let padding = std::mem::take(&mut self.padding);
        let skipped = self.input.skip(padding).context("cannot read tar data")?;
        self.position += skipped;
        Ok(skipped == padding)
    }

    /// The next header block; `None` at the end of the archive: two zero blocks, or the end
    /// of the input where a header would start (Go accepts both).
    fn header_block(&mut self) -> Result<Option<[u8; BLOCK]>> {
        let mut block = [0u8; BLOCK];
        if !self.block(&mut block, true)? {
            return Ok(None);
        }
        if block.iter().all(|&b| b == 0) {
            if !self.block(&mut block, true)? || block.iter().all(|&b| b == 0) {
                return Ok(None);
            }
            return Err(corrupt(
                "a zero block is followed by data",
                self.position - BLOCK as u64,
            ));
        }
        Ok(Some(block))
    }

    /// Reads a whole block; false when the input ended before its first byte and `may_end`.
    fn block(&mut self, block: &mut [u8; BLOCK], may_end: bool) -> Result<bool> {
        let n = self.input.fill(block).context("cannot read tar data")?;
        self.position += n as u64;
        match n {
            0 if may_end => Ok(false),
            BLOCK => Ok(true),
            _ => Err(truncated(self.position)),
        }
    }

    /// The data of a metadata entry, or `None` (left unread, to be skipped) when it is
    /// larger than `limit`.
    fn special(&mut self, limit: u64) -> Result<Option<Vec<u8>>> {
        if self.unread > limit {
            return Ok(None);
        }
        let mut data = vec![0u8; self.unread as usize];
        let n = self.input.fill(&mut data).context("cannot read tar data")?;
        self.position += n as u64;
        if n < data.len() {
            return Err(truncated(self.position));
        }
        self.unread = 0;
        Ok(Some(data))
    }

    /// One block of the current entry's data (the PAX 1.0 sparse map lies there).
    fn data_block(&mut self, block: &mut [u8; BLOCK]) -> Result<(), &'static str> {
        if self.unread < BLOCK as u64 {
            return Err("a GNU sparse map runs past its entry's data");
        }
        match self.block(block, false) {
            Ok(_) => {
                self.unread -= BLOCK as u64;
                Ok(())
            }
            Err(_) => Err("the archive ends inside a GNU sparse map"),
        }
    }
}

/// How an entry's sparse map came out.
enum SparseMap {
    None,
    OverLimit,
    Segments(Vec<Segment>),
}

impl<I: Input> TarReader<I> {
    /// The sparse map of an entry, if it is a sparse file (Go's `handleSparseFile`); updates
    /// the size (and for PAX maps, possibly the name) to the file's.
    fn sparse(
        &mut self,
        typeflag: u8,
        block: &[u8; BLOCK],
        pax: &pax::Records,
        path: &mut Vec<u8>,
        size: &mut i64,
        at: u64,
    ) -> Result<SparseMap> {
        let map = if typeflag == b'S' {
            self.old_gnu_map(block, size, at)?
        } else {
            self.pax_map(pax, path, size, at)?
        };
        let Some(map) = map else {
            return Ok(SparseMap::None);
        };
        let Some(map) = map else {
            return Ok(SparseMap::OverLimit);
        };
        if header_only(typeflag) {
            return Err(corrupt("a header-only entry has a sparse map", at));
        }
        let segments = sparse::validated(&map, *size).map_err(|why| corrupt(why, at))?;
        Ok(SparseMap::Segments(segments))
    }

    /// The old GNU map: in the header, continued in extension blocks before the data.
    /// `Some(None)`: over the limit (the extension blocks are read through all the same).
    fn old_gnu_map(
        &mut self,
        block: &[u8; BLOCK],
        size: &mut i64,
        at: u64,
    ) -> Result<Option<Option<sparse::RawMap>>> {
        // Go checks the block itself: star's sparse headers use the same type in another layout.
        if header::format_of(block) != Some(Format::Gnu) {
            return Err(corrupt("a sparse entry is not in GNU format", at));
        }
        *size = header::numeric(&block[483..495]).map_err(|why| corrupt(why, at))?;
        let mut map = Vec::new();
        let (area, flag) = sparse::HEADER_AREA;
        let bad = |why| corrupt(why, at);
        let mut more = sparse::old_gnu_entries(
            &block[area..flag],
            sparse::HEADER_SLOTS,
            block[flag],
            &mut map,
        )
        .map_err(bad)?;
        let mut over = false;
        let mut extension = [0u8; BLOCK];
        let mut read = 0u64;
        while more {
            self.block(&mut extension, false)?;
            read += BLOCK as u64;
            over |= read > self.limits.sparse_map;
            if over {
                map.clear();
            }
            let (area, flag) = sparse::EXTENSION_AREA;
            more = sparse::old_gnu_entries(
                &extension[area..flag],
                sparse::EXTENSION_SLOTS,
                extension[flag],
                &mut map,
            )
            .map_err(bad)?;
        }
        Ok(Some((!over).then_some(map)))
    }

    /// The PAX GNU sparse map (formats 0.0, 0.1 and 1.0), if the records describe one.
    fn pax_map(
        &mut self,
        pax: &pax::Records,
        path: &mut Vec<u8>,
        size: &mut i64,
        at: u64,
    ) -> Result<Option<Option<sparse::RawMap>>> {
        let version = (pax.get("GNU.sparse.major"), pax.get("GNU.sparse.minor"));
        let is_1_0 = match version {
            (Some(b"0"), Some(b"0" | b"1")) => false,
            (Some(b"1"), Some(b"0")) => true,
            (Some(_), _) | (_, Some(_)) => return Ok(None), // a version Go does not know
            _ if pax.get("GNU.sparse.map").is_some() => false,
            _ => return Ok(None),
        };
        if let Some(name) = pax.get("GNU.sparse.name") {
            *path = name.to_vec();
        }
        if let Some(value) = pax
            .get("GNU.sparse.size")
            .or(pax.get("GNU.sparse.realsize"))
        {
            *size = pax::decimal(value)
                .ok_or_else(|| corrupt("a GNU sparse size does not parse", at))?;
        }
        if !is_1_0 {
            let map = sparse::pax_0x(pax.get("GNU.sparse.numblocks"), pax.get("GNU.sparse.map"));
            return Ok(Some(Some(map.map_err(|why| corrupt(why, at))?)));
        }
        let limit = self.limits.sparse_map as usize;
        let map = sparse::pax_1_0(&mut |block| self.data_block(block), limit)
            .map_err(|why| corrupt(why, at))?;
        Ok(Some(map))
    }
}

fn kind_of(typeflag: u8) -> Kind {
    match typeflag {
        b'0' | b'7' | b'S' => Kind::File,
        b'1' => Kind::HardLink,
        b'2' => Kind::Symlink,
        b'3' | b'4' => Kind::Device,
        b'5' => Kind::Dir,
        b'6' => Kind::Fifo,
        _ => Kind::Other,
    }
}

fn corrupt(why: &str, at: u64) -> anyhow::Error {
    anyhow!("corrupt tar: {why} (header at byte {at})")
}

fn truncated(at: u64) -> anyhow::Error {
    anyhow!("truncated tar: the archive ends inside an entry (at byte {at})")
}

/// The stored bytes of the current entry, read from the stream.
pub(crate) struct EntryData<'a, I> {
    reader: &'a mut TarReader<I>,
}

impl<I: Input> Read for EntryData<'_, I> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let reader = &mut *self.reader;
        let wanted = buf
            .len()
            .min(usize::try_from(reader.unread).unwrap_or(usize::MAX));
        let n = reader.input.fill(&mut buf[..wanted])?;
        reader.unread -= n as u64;
        reader.position += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
