//! Nested archives: zip (jar, war, ear, wheels…), tar, and gzip (a `.tar.gz` is one archive;
//! any other `.gz` is the one file it holds). Members are scanned with everything else in
//! [`Scanner::scan`], so a Secret manifest inside a jar is decoded too.
//!
//! Limits per top-level file ([`Limits`](super::Limits), counted in [`Scanner`]): how deep
//! archives nest, how many bytes are decompressed, how many members are opened. What a limit stops is reported as skipped.
//! Decompression reads through a bounded `take`, so a zip bomb costs at most the budget; a
//! stored zip member is charged to the same budget, and a zip entry whose data overlaps an
//! earlier entry's is not scanned (counted as skipped), so a central directory cannot make
//! one member cost its size many times over.
//!
//! A match directly in a zip's member carries the Maven identity the zip records for itself
//! (`META-INF/maven/<group>/<artifact>/pom.properties`, see [`jar_artifact_candidate`]), read
//! only when the zip has such matches; the scan judges the member's provenance by it.
//!
//! Offsets of matches in members are mapped into the member's stored bytes in the archive:
//! exactly for stored (uncompressed) members, scaled for compressed ones.

use std::collections::BTreeMap;
use std::io::{Cursor, Read};
use std::ops::Range;
use std::sync::Arc;

use flate2::read::MultiGzDecoder;

use super::{FileMatch, Level, Mapping, Scanner, map_into};
use crate::provenance::maven::{POM_PROPERTIES_MAX, jar_artifact, jar_artifact_candidate};
use crate::tar_reader::{SliceInput, TarReader};

/// An archive format recognised by its magic bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Zip,
    Gzip,
    Tar,
}

pub(crate) fn sniff(content: &[u8]) -> Option<Kind> {
    if content.starts_with(b"PK\x03\x04") || content.starts_with(b"PK\x05\x06") {
        Some(Kind::Zip)
    } else if content.starts_with(&[0x1F, 0x8B, 0x08]) {
        Some(Kind::Gzip)
    } else if content.len() >= 512 && content[257..262] == *b"ustar" {
        Some(Kind::Tar)
    } else {
        None
    }
}

/// Scans the members of an archive; `None` when it does not open (scan it as plain bytes).
pub(crate) fn scan(
    scanner: &mut Scanner,
    kind: Kind,
    content: &[u8],
    level: &Level,
) -> Option<Vec<FileMatch>> {
    match kind {
        Kind::Zip => zip(scanner, content, level),
        Kind::Tar => tar(scanner, content, level),
        Kind::Gzip => gzip(scanner, content, level),
    }
}

/// Scans one member's bytes and files the matches under its name, within `stored` (the
/// member's bytes in the archive).
fn member(
    scanner: &mut Scanner,
    name: &str,
    bytes: &[u8],
    stored: &Range<usize>,
    mapping: Mapping,
    level: &Level,
    found: &mut Vec<FileMatch>,
) {
    for mut m in scanner.scan(bytes, &level.member(name)) {
        map_into(&mut m, stored, mapping);
        m.archive_path.insert(0, name.to_string());
        found.push(m);
    }
}

/// Scans a member stored as it is (uncompressed) at `stored` in `content`: its offsets map
/// one to one.
fn stored_member(
    scanner: &mut Scanner,
    name: &str,
    content: &[u8],
    stored: &Range<usize>,
    level: &Level,
    found: &mut Vec<FileMatch>,
) {
    let bytes = &content[stored.clone()];
    member(scanner, name, bytes, stored, Mapping::Exact, level, found);
}

/// Takes one member from the count; false (and counted) once the limit is reached.
fn count_member(scanner: &mut Scanner, unscanned: &mut usize) -> bool {
    if scanner.members_left == 0 {
        *unscanned += 1;
        return false;
    }
    scanner.members_left -= 1;
    true
}

fn report_unscanned(scanner: &mut Scanner, level: &Level, members: usize, over_budget: usize) {
    if members > 0 {
        scanner.skip(
            format!(
                "archive member limit ({} per file) reached",
                scanner.limits.max_members
            ),
            format!("{}: {members} member(s) not scanned", level.what),
        );
    }
    if over_budget > 0 {
        scanner.skip(
            format!(
                "decompressed-size limit ({} per file) reached",
                mib(scanner)
            ),
            format!("{}: {over_budget} member(s) not scanned", level.what),
        );
    }
}

/// Reads at most the remaining budget from `reader`; says whether it stopped at the budget.
fn read_bounded(scanner: &mut Scanner, reader: impl Read, out: &mut Vec<u8>) -> (bool, bool) {
    let mut limited = reader.take(scanner.budget.saturating_add(1));
    let ok = limited.read_to_end(out).is_ok();
    let over = out.len() as u64 > scanner.budget;
    if over {
        out.truncate(scanner.budget as usize);
    }
    scanner.budget -= out.len() as u64;
    (over, ok)
}

/// The data ranges of the zip entries already taken, so an entry whose bytes lie inside
/// another's is refused: a few KB of central directory can otherwise name one large member
/// thousands of times and multiply the work without adding a byte to the file.
#[derive(Default)]
struct ClaimedRanges {
    /// Start to end of each taken range; the ranges never overlap.
    by_start: BTreeMap<usize, usize>,
}

impl ClaimedRanges {
    /// Takes `range` unless it overlaps one already taken.
    fn claim(&mut self, range: &Range<usize>) -> bool {
        let before = self.by_start.range(..=range.start).next_back();
        let after = self.by_start.range(range.start..).next();
        let overlaps_before = before.is_some_and(|(_, &end)| end > range.start);
        let overlaps_after = after.is_some_and(|(&start, _)| start < range.end);
        if overlaps_before || overlaps_after {
            return false;
        }
        self.by_start.insert(range.start, range.end);
        true
    }
}

/// What the zip walk left unscanned, by reason, reported once per archive.
#[derive(Default)]
struct ZipUnscanned {
    members: usize,
    over_budget: usize,
    overlapping: usize,
}

fn zip(scanner: &mut Scanner, content: &[u8], level: &Level) -> Option<Vec<FileMatch>> {
    let mut archive = zip::ZipArchive::new(Cursor::new(content)).ok()?;
    let mut found = Vec::new();
    let mut claimed = ClaimedRanges::default();
    let mut unscanned = ZipUnscanned::default();
    for index in 0..archive.len() {
        let Ok(raw) = archive.by_index_raw(index) else {
            scanner.skip("unreadable zip member", format!("{}: #{index}", level.what));
            continue;
        };
        if raw.is_dir() {
            continue;
        }
        let name = raw.name().to_string();
        let compression = raw.compression();
        let encrypted = raw.encrypted();
        let stored = raw
            .data_start()
            .and_then(|start| {
                let start = usize::try_from(start).ok()?;
                let end = start.checked_add(usize::try_from(raw.compressed_size()).ok()?)?;
                (end <= content.len()).then_some(start..end)
            })
            .filter(|range| !range.is_empty());
        drop(raw);
        let Some(stored) = stored else {
            continue; // Empty, or its data is not inside the file.
        };
        if !claimed.claim(&stored) {
            unscanned.overlapping += 1;
            continue;
        }
        if !count_member(scanner, &mut unscanned.members) {
            continue;
        }
        let what = format!("{}!/{name}", level.what);
        if encrypted {
            scanner.skip("encrypted zip member", what);
            continue;
        }
        let entry = ZipEntry {
            name: &name,
            what,
            stored,
        };
        match compression {
            zip::CompressionMethod::Stored => {
                zip_stored(scanner, content, &entry, level, &mut unscanned, &mut found);
            }
            zip::CompressionMethod::Deflated => {
                let reader = archive.by_index(index);
                zip_deflated(scanner, reader, &entry, level, &mut unscanned, &mut found);
            }
            other => scanner.skip(format!("unsupported zip compression {other}"), entry.what),
        }
    }
    report_unscanned(scanner, level, unscanned.members, unscanned.over_budget);
    tag_jar_members(&mut archive, level, &mut found);
    if unscanned.overlapping > 0 {
        scanner.skip(
            "overlapping zip entry (its data lies inside an earlier entry's)",
            format!(
                "{}: {} entry(ies) not scanned",
                level.what, unscanned.overlapping
            ),
        );
    }
    Some(found)
}

/// Gives the matches found directly in this zip's members (not in archives nested in it) the
/// Maven identity the zip records for itself, if it has one. Read only for a zip with such
/// matches, and only the one `pom.properties` chosen, at most [`POM_PROPERTIES_MAX`] bytes.
fn tag_jar_members(
    archive: &mut zip::ZipArchive<Cursor<&[u8]>>,
    level: &Level,
    found: &mut [FileMatch],
) {
    if !found.iter().any(|m| m.archive_path.len() == 1) {
        return;
    }
    let Some(member) = jar_artifact_candidate(archive.file_names(), &level.what) else {
        return;
    };
    let member = member.to_string();
    let mut bytes = Vec::new();
    let read = archive.by_name(&member).is_ok_and(|file| {
        file.take(POM_PROPERTIES_MAX)
            .read_to_end(&mut bytes)
            .is_ok()
    });
    if !read {
        return;
    }
    let artifact = Arc::new(jar_artifact(&level.what, &member, &bytes));
    for m in found.iter_mut().filter(|m| m.archive_path.len() == 1) {
        m.archive_package = Some(Arc::clone(&artifact));
    }
}

/// One zip member about to be scanned.
struct ZipEntry<'a> {
    name: &'a str,
    /// The member's path for messages.
    what: String,
    /// Its stored bytes in the archive.
    stored: Range<usize>,
}

/// A stored member is scanned in place, but its bytes are charged to the decompressed-size
/// budget like any member's: what a zip costs to scan must not depend on its compression.
fn zip_stored(
    scanner: &mut Scanner,
    content: &[u8],
    entry: &ZipEntry,
    level: &Level,
    unscanned: &mut ZipUnscanned,
    found: &mut Vec<FileMatch>,
) {
    if scanner.budget == 0 {
        unscanned.over_budget += 1;
        return;
    }
    let allowed = usize::try_from(scanner.budget).unwrap_or(usize::MAX);
    let len = entry.stored.len().min(allowed);
    scanner.budget -= len as u64;
    if len < entry.stored.len() {
        skip_over_limit(scanner, len, entry.what.clone());
    }
    let stored = entry.stored.start..entry.stored.start + len;
    stored_member(scanner, entry.name, content, &stored, level, found);
}

/// A deflated member is decompressed within the budget, then scanned.
fn zip_deflated(
    scanner: &mut Scanner,
    reader: zip::result::ZipResult<impl Read>,
    entry: &ZipEntry,
    level: &Level,
    unscanned: &mut ZipUnscanned,
    found: &mut Vec<FileMatch>,
) {
    if scanner.budget == 0 {
        unscanned.over_budget += 1;
        return;
    }
    let mut bytes = Vec::new();
    let (over, ok) = match reader {
        Ok(reader) => read_bounded(scanner, reader, &mut bytes),
        Err(_) => (false, false),
    };
    if over {
        skip_over_limit(scanner, bytes.len(), entry.what.clone());
    }
    if !ok {
        scanner.skip(
            "corrupt zip member (scanned what decompressed)",
            entry.what.clone(),
        );
    }
    let mapping = Mapping::Scaled {
        inner_len: bytes.len(),
    };
    let (name, stored) = (entry.name, &entry.stored);
    member(scanner, name, &bytes, stored, mapping, level, found);
}

/// The members of an in-memory tar, scanned in place (offsets are exact). The tar is read as
/// runtimes read layers ([`TarReader`]): a member a header-only entry's size would hide is
/// scanned, and a sparse member's stored data is scanned as stored (its holes hold nothing).
fn tar(scanner: &mut Scanner, content: &[u8], level: &Level) -> Option<Vec<FileMatch>> {
    let mut reader = TarReader::new(SliceInput(content));
    let mut found = Vec::new();
    let mut opened = false;
    let mut unscanned = 0;
    loop {
        let entry = match reader.next_entry() {
            Ok(Some(entry)) => entry,
            Ok(None) => break,
            Err(_) if !opened => return None,
            Err(_) => {
                scanner.skip("corrupt tar archive (the rest not scanned)", &level.what);
                break;
            }
        };
        opened = true;
        let name = String::from_utf8_lossy(&entry.path).into_owned();
        for anomaly in &entry.anomalies {
            scanner.irregular(anomaly.to_string(), format!("{}!/{name}", level.what));
        }
        if !entry.holds_file_data() {
            continue;
        }
        let start = usize::try_from(entry.data_start).unwrap_or(usize::MAX);
        let size = usize::try_from(entry.stored).unwrap_or(usize::MAX);
        let Some(stored) = start.checked_add(size).map(|end| start..end) else {
            break;
        };
        let Some(bytes) = content.get(stored.clone()) else {
            scanner.skip(
                "truncated tar member (scanned what is there)",
                format!("{}!/{name}", level.what),
            );
            let stored = start.min(content.len())..content.len();
            if !stored.is_empty() && count_member(scanner, &mut unscanned) {
                stored_member(scanner, &name, content, &stored, level, &mut found);
            }
            break;
        };
        if bytes.is_empty() || !count_member(scanner, &mut unscanned) {
            continue;
        }
        stored_member(scanner, &name, content, &stored, level, &mut found);
    }
    report_unscanned(scanner, level, unscanned, 0);
    Some(found)
}

fn gzip(scanner: &mut Scanner, content: &[u8], level: &Level) -> Option<Vec<FileMatch>> {
    if scanner.budget == 0 {
        report_unscanned(scanner, level, 0, 1);
        return Some(Vec::new());
    }
    let mut decoder = MultiGzDecoder::new(content);
    let mut bytes = Vec::new();
    let (over, ok) = read_bounded(scanner, &mut decoder, &mut bytes);
    if bytes.is_empty() {
        return if ok { Some(Vec::new()) } else { None };
    }
    if over {
        skip_over_limit(scanner, bytes.len(), level.what.clone());
    }
    if !ok {
        scanner.skip(
            "corrupt or truncated gzip data (scanned what decompressed)",
            level.what.clone(),
        );
    }
    let whole = 0..content.len();
    let scaled = Mapping::Scaled {
        inner_len: bytes.len(),
    };
    // A .tar.gz: the tar's members, as members of this file.
    if sniff(&bytes) == Some(Kind::Tar)
        && let Some(mut found) = tar(scanner, &bytes, level)
    {
        for m in &mut found {
            map_into(m, &whole, scaled);
        }
        return Some(found);
    }
    let name = decoder
        .header()
        .and_then(|header| header.filename())
        .map(|name| String::from_utf8_lossy(name).into_owned())
        .filter(|name| !name.is_empty() && !name.contains('/'))
        .unwrap_or_else(|| inner_name(&level.what));
    if !count_member(scanner, &mut 0) {
        report_unscanned(scanner, level, 1, 0);
        return Some(Vec::new());
    }
    let mut found = Vec::new();
    member(scanner, &name, &bytes, &whole, scaled, level, &mut found);
    Some(found)
}

/// `dir/notes.txt.gz` holds `notes.txt`; `x.tgz` holds `x.tar`.
fn inner_name(what: &str) -> String {
    let last = what.rsplit(['/', '!']).next().unwrap_or(what);
    if let Some(stem) = last.strip_suffix(".tgz") {
        format!("{stem}.tar")
    } else if let Some(stem) = last.strip_suffix(".gz") {
        stem.to_string()
    } else {
        format!("{last}.ungzipped")
    }
}

/// Records that a member was cut at the decompressed-size limit after `scanned` bytes.
fn skip_over_limit(scanner: &mut Scanner, scanned: usize, what: String) {
    let reason = format!(
        "decompressed-size limit ({} per file) reached; scanned the first {scanned} bytes",
        mib(scanner)
    );
    scanner.skip(reason, what);
}

/// The decompressed-size limit in MiB, for messages.
fn mib(scanner: &Scanner) -> String {
    let limit = scanner.limits.max_decompressed_bytes;
    if limit.is_multiple_of(1 << 20) {
        format!("{} MiB", limit >> 20)
    } else {
        format!("{limit} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_inside_gzip() {
        assert_eq!(inner_name("usr/share/doc/a/changelog.gz"), "changelog");
        assert_eq!(inner_name("backup.tgz"), "backup.tar");
        assert_eq!(inner_name("a.jar!/blob"), "blob.ungzipped");
    }

    #[test]
    fn sniffing() {
        assert_eq!(sniff(b"PK\x03\x04rest"), Some(Kind::Zip));
        assert_eq!(sniff(&[0x1F, 0x8B, 0x08, 0]), Some(Kind::Gzip));
        let mut tar = vec![0u8; 512];
        tar[257..262].copy_from_slice(b"ustar");
        assert_eq!(sniff(&tar), Some(Kind::Tar));
        assert_eq!(sniff(b"plain text"), None);
    }
}
