//! The RPM header structure, as rpmdb stores one per package: optionally the 8-byte header
//! magic (`8e ad e8 01` + 4 reserved bytes), then the index length `il` and data length `dl`
//! (big-endian u32), `il` index entries of 16 bytes (tag, type, offset, count; big-endian), then
//! `dl` bytes of data that the entries point into. Every offset and count is checked against
//! the data length, so a corrupt header yields an error, never a panic or a huge allocation.

use std::fmt;

const MAGIC: [u8; 4] = [0x8e, 0xad, 0xe8, 0x01];
const ENTRY_LEN: usize = 16;

/// The package name (string).
pub const TAG_NAME: u32 = 1000;
/// The version (string).
pub const TAG_VERSION: u32 = 1001;
/// The release (string).
pub const TAG_RELEASE: u32 = 1002;
/// The epoch (int32), absent when zero.
pub const TAG_EPOCH: u32 = 1003;
/// Whole file paths (string array), in packages built before rpm split them.
pub const TAG_OLDFILENAMES: u32 = 1027;
/// One hex digest per file (string array), empty for directories and links.
pub const TAG_FILEDIGESTS: u32 = 1035;
/// For each file, the index of its directory in [`TAG_DIRNAMES`] (int32 array).
pub const TAG_DIRINDEXES: u32 = 1116;
/// Each file's name within its directory (string array).
pub const TAG_BASENAMES: u32 = 1117;
/// The directories files live in, each ending in `/` (string array).
pub const TAG_DIRNAMES: u32 = 1118;
/// The digest algorithm of [`TAG_FILEDIGESTS`] (int32; OpenPGP numbers, MD5 when absent).
pub const TAG_FILEDIGESTALGO: u32 = 5011;

const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_STRING_ARRAY: u32 = 8;
const TYPE_I18NSTRING: u32 = 9;

/// Why a header could not be read (a sentence, never header bytes).
#[derive(Debug, PartialEq, Eq)]
pub struct HeaderError(String);

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A header error with `what` as its message (also for readers finding a header inconsistent).
pub fn message(what: impl Into<String>) -> HeaderError {
    HeaderError(what.into())
}

/// One index entry.
#[derive(Clone, Copy, Debug)]
struct Entry {
    tag: u32,
    kind: u32,
    offset: usize,
    count: usize,
}

/// A parsed header: its index and data store, borrowed from the blob.
pub struct Header<'a> {
    entries: Vec<Entry>,
    data: &'a [u8],
}

impl<'a> Header<'a> {
    /// Parses a header blob as `rpmdb.sqlite` stores it (with or without the 8-byte magic
    /// prefix), checking that every entry's data lies inside the blob.
    pub fn parse(blob: &'a [u8]) -> Result<Header<'a>, HeaderError> {
        let blob = match blob.get(..4) {
            Some(magic) if magic == MAGIC => {
                blob.get(8..).ok_or_else(|| message("truncated magic"))?
            }
            _ => blob,
        };
        let il = read_u32(blob, 0).ok_or_else(|| message("no index length"))? as usize;
        let dl = read_u32(blob, 4).ok_or_else(|| message("no data length"))? as usize;
        // Both lengths are bounded by the blob before anything is allocated for them.
        let index_len = il
            .checked_mul(ENTRY_LEN)
            .filter(|len| len.saturating_add(8) <= blob.len())
            .ok_or_else(|| message(format!("index of {il} entries past the end of the header")))?;
        let data_start = 8 + index_len;
        let data = blob
            .get(data_start..)
            .and_then(|rest| rest.get(..dl))
            .ok_or_else(|| {
                message(format!(
                    "data store of {dl} bytes past the end of the header"
                ))
            })?;
        let mut entries = Vec::with_capacity(il);
        for i in 0..il {
            let at = 8 + i * ENTRY_LEN;
            let field = |n: usize| read_u32(blob, at + 4 * n).unwrap_or(0);
            entries.push(Entry {
                tag: field(0),
                kind: field(1),
                offset: field(2) as usize,
                count: field(3) as usize,
            });
        }
        Ok(Header { entries, data })
    }

    fn entry(&self, tag: u32) -> Option<Entry> {
        self.entries.iter().copied().find(|e| e.tag == tag)
    }

    /// A STRING (or the first of an I18N string / string array) tag.
    pub fn string(&self, tag: u32) -> Result<Option<&'a str>, HeaderError> {
        let Some(entry) = self.entry(tag) else {
            return Ok(None);
        };
        if !matches!(
            entry.kind,
            TYPE_STRING | TYPE_I18NSTRING | TYPE_STRING_ARRAY
        ) {
            return Err(message(format!(
                "tag {tag} is type {}, not a string",
                entry.kind
            )));
        }
        Ok(self.strings_at(tag, entry.offset, 1)?.into_iter().next())
    }

    /// A STRING_ARRAY tag; empty when absent.
    pub fn string_array(&self, tag: u32) -> Result<Vec<&'a str>, HeaderError> {
        let Some(entry) = self.entry(tag) else {
            return Ok(Vec::new());
        };
        if entry.kind != TYPE_STRING_ARRAY {
            return Err(message(format!(
                "tag {tag} is type {}, not a string array",
                entry.kind
            )));
        }
        self.strings_at(tag, entry.offset, entry.count)
    }

    /// An INT32 array tag; empty when absent.
    pub fn int32_array(&self, tag: u32) -> Result<Vec<u32>, HeaderError> {
        let Some(entry) = self.entry(tag) else {
            return Ok(Vec::new());
        };
        if entry.kind != TYPE_INT32 {
            return Err(message(format!(
                "tag {tag} is type {}, not int32",
                entry.kind
            )));
        }
        let bytes = entry
            .count
            .checked_mul(4)
            .and_then(|len| self.data.get(entry.offset..)?.get(..len))
            .ok_or_else(|| {
                message(format!(
                    "tag {tag}: {} int32s past the data store",
                    entry.count
                ))
            })?;
        Ok(bytes
            .chunks_exact(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }

    /// `count` NUL-terminated strings from `offset`. Each takes at least one byte, so a count
    /// larger than the bytes left is an error before anything is allocated for it.
    fn strings_at(
        &self,
        tag: u32,
        offset: usize,
        count: usize,
    ) -> Result<Vec<&'a str>, HeaderError> {
        let mut rest = self
            .data
            .get(offset..)
            .ok_or_else(|| message(format!("tag {tag}: offset {offset} past the data store")))?;
        if count > rest.len() {
            return Err(message(format!(
                "tag {tag}: {count} strings in {} bytes",
                rest.len()
            )));
        }
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            let end = memchr::memchr(0, rest)
                .ok_or_else(|| message(format!("tag {tag}: unterminated string")))?;
            let text = std::str::from_utf8(&rest[..end])
                .map_err(|_| message(format!("tag {tag}: string is not UTF-8")))?;
            out.push(text);
            rest = &rest[end + 1..];
        }
        Ok(out)
    }
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Test helper: builds a header blob from (tag, type, count, data) tuples, in rpmdb's form
/// (no magic). Shared with the rpm reader's tests.
#[cfg(test)]
pub fn build_blob(tags: &[(u32, u32, u32, Vec<u8>)]) -> Vec<u8> {
    let mut index = Vec::new();
    let mut data = Vec::new();
    for (tag, kind, count, bytes) in tags {
        if *kind == TYPE_INT32 {
            while data.len() % 4 != 0 {
                data.push(0);
            }
        }
        for value in [*tag, *kind, data.len() as u32, *count] {
            index.extend_from_slice(&value.to_be_bytes());
        }
        data.extend_from_slice(bytes);
    }
    let mut blob = Vec::new();
    blob.extend_from_slice(&(tags.len() as u32).to_be_bytes());
    blob.extend_from_slice(&(data.len() as u32).to_be_bytes());
    blob.extend_from_slice(&index);
    blob.extend_from_slice(&data);
    blob
}

/// A string-array entry's count and data, for headers built by tests.
#[cfg(test)]
pub fn strings(values: &[&str]) -> (u32, Vec<u8>) {
    let mut bytes = Vec::new();
    for value in values {
        bytes.extend_from_slice(value.as_bytes());
        bytes.push(0);
    }
    (values.len() as u32, bytes)
}

/// An int32-array entry's count and data (big-endian), for headers built by tests.
#[cfg(test)]
pub fn int32s(values: &[u32]) -> (u32, Vec<u8>) {
    (
        values.len() as u32,
        values.iter().flat_map(|v| v.to_be_bytes()).collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let (_, name) = strings(&["hello"]);
        let (n, dirs) = strings(&["/usr/bin/", "/etc/"]);
        let (m, idx) = int32s(&[0, 1]);
        build_blob(&[
            (TAG_NAME, TYPE_STRING, 1, name),
            (TAG_DIRNAMES, TYPE_STRING_ARRAY, n, dirs),
            (TAG_DIRINDEXES, TYPE_INT32, m, idx),
        ])
    }

    #[test]
    fn reads_strings_arrays_and_ints() {
        let blob = sample();
        let header = Header::parse(&blob).unwrap();
        assert_eq!(header.string(TAG_NAME).unwrap(), Some("hello"));
        assert_eq!(
            header.string_array(TAG_DIRNAMES).unwrap(),
            ["/usr/bin/", "/etc/"]
        );
        assert_eq!(header.int32_array(TAG_DIRINDEXES).unwrap(), [0, 1]);
        assert_eq!(header.string(TAG_VERSION).unwrap(), None);
        // With the magic in front, as in an .rpm file.
        let mut with_magic = vec![0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0];
        with_magic.extend_from_slice(&blob);
        assert_eq!(
            Header::parse(&with_magic)
                .unwrap()
                .string(TAG_NAME)
                .unwrap(),
            Some("hello")
        );
    }

    #[test]
    fn truncation_and_huge_counts_are_errors() {
        let blob = sample();
        for len in 0..blob.len() {
            // Every prefix either fails to parse or fails per tag; nothing panics.
            if let Ok(header) = Header::parse(&blob[..len]) {
                let _ = header.string_array(TAG_DIRNAMES);
                let _ = header.int32_array(TAG_DIRINDEXES);
            }
        }
        let mut huge_il = blob.clone();
        huge_il[..4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(Header::parse(&huge_il).is_err());
        let mut huge_count = blob.clone();
        // Entry 1 (DIRNAMES): count field at 8 + 16 + 12.
        huge_count[36..40].copy_from_slice(&u32::MAX.to_be_bytes());
        let header = Header::parse(&huge_count).unwrap();
        assert!(header.string_array(TAG_DIRNAMES).is_err());
        let mut far_offset = blob.clone();
        // Entry 2 (DIRINDEXES): offset field at 8 + 32 + 8.
        far_offset[48..52].copy_from_slice(&0x7fff_fff0u32.to_be_bytes());
        let header = Header::parse(&far_offset).unwrap();
        assert!(header.int32_array(TAG_DIRINDEXES).is_err());
    }

    #[test]
    fn random_headers_never_panic() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let tags = [TAG_NAME, TAG_BASENAMES, TAG_DIRINDEXES];
        for round in 0..5000 {
            let len = round % 300;
            let mut blob: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            // Most rounds get a consistent il/dl and known tags with random types, offsets and
            // counts, so the per-tag bounds checks are what is exercised, not just the lengths.
            if len >= 8 && round % 4 != 0 {
                let il = (next() as usize) % ((len - 8) / ENTRY_LEN + 1);
                let dl = len - 8 - il * ENTRY_LEN;
                blob[..4].copy_from_slice(&(il as u32).to_be_bytes());
                blob[4..8].copy_from_slice(&(dl as u32).to_be_bytes());
                for i in 0..il {
                    let at = 8 + i * ENTRY_LEN;
                    let tag = tags[(next() % 3) as usize];
                    blob[at..at + 4].copy_from_slice(&tag.to_be_bytes());
                    let kind = (next() % 10) as u32;
                    blob[at + 4..at + 8].copy_from_slice(&kind.to_be_bytes());
                    if round % 3 == 0 {
                        let offset = (next() as usize % (dl + 1)) as u32;
                        blob[at + 8..at + 12].copy_from_slice(&offset.to_be_bytes());
                    }
                }
            }
            if let Ok(header) = Header::parse(&blob) {
                for tag in tags {
                    let _ = header.string(tag);
                    let _ = header.string_array(tag);
                    let _ = header.int32_array(tag);
                }
            }
        }
    }
}
