//! GNU sparse files: which ranges of the file hold data. The stored data is those ranges one
//! after the other; the holes between them are zeros that are never stored (and never read
//! here: a 1 PiB hole costs nothing). Three encodings, read as Go's `archive/tar` reads them:
//! the old GNU map in the header (type `S`, extension blocks after it), the PAX 0.0/0.1 map in
//! records, and the PAX 1.0 map at the start of the data.

use super::header::{BLOCK, Invalid, numeric};
use super::pax::decimal;

/// One range of a sparse file that holds data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Segment {
    /// Where the range starts in the file.
    pub offset: u64,
    /// Its length; its bytes are the next `len` stored bytes.
    pub len: u64,
}

/// Map entries before validation (Go keeps them signed and refuses negatives later).
pub(super) type RawMap = Vec<(i64, i64)>;

/// The entries of an old GNU map area (`count` slots of 24 bytes: offset, length) and whether
/// an extension block follows (`flag`).
pub(super) fn old_gnu_entries(
    area: &[u8],
    count: usize,
    flag: u8,
    map: &mut RawMap,
) -> Result<bool, Invalid> {
    for slot in area.chunks_exact(24).take(count) {
        if slot[0] == 0 {
            break;
        }
        map.push((numeric(&slot[..12])?, numeric(&slot[12..])?));
    }
    Ok(flag != 0)
}

/// Entries in an old GNU header block and in each extension block.
pub(super) const HEADER_SLOTS: usize = 4;
pub(super) const EXTENSION_SLOTS: usize = 21;
/// Where the map area and its extension flag lie in a GNU header and in an extension block.
pub(super) const HEADER_AREA: (usize, usize) = (386, 482);
pub(super) const EXTENSION_AREA: (usize, usize) = (0, 504);

/// The PAX 0.0/0.1 map: `GNU.sparse.numblocks` pairs in `GNU.sparse.map`.
pub(super) fn pax_0x(numblocks: Option<&[u8]>, map: Option<&[u8]>) -> Result<RawMap, Invalid> {
    const BAD: Invalid = "a GNU sparse map does not parse";
    let count = decimal(numblocks.unwrap_or_default()).ok_or(BAD)?;
    let fields: Vec<&[u8]> = match map {
        Some(map) => map.split(|&b| b == b',').collect(),
        None => Vec::new(),
    };
    if count < 0 || fields.len() as i128 != 2 * i128::from(count) {
        return Err(BAD);
    }
    pairs(fields.into_iter())
}

/// Reads the PAX 1.0 map: a count, then offset and length for each entry, one decimal per
/// line, in whole blocks taken from the front of the data by `next_block`. `max_bytes` bounds
/// the map: `Ok(None)` when it is longer.
pub(super) fn pax_1_0(
    next_block: &mut dyn FnMut(&mut [u8; BLOCK]) -> Result<(), Invalid>,
    max_bytes: usize,
) -> Result<Option<RawMap>, Invalid> {
    const BAD: Invalid = "a GNU sparse 1.0 map does not parse";
    let mut text: Vec<u8> = Vec::new();
    let mut lines = 0usize;
    let mut feed = |wanted: usize, text: &mut Vec<u8>| -> Result<bool, Invalid> {
        while lines < wanted {
            if text.len() + BLOCK > max_bytes {
                return Ok(false);
            }
            let mut block = [0u8; BLOCK];
            next_block(&mut block)?;
            lines += memchr::memchr_iter(b'\n', &block).count();
            text.extend_from_slice(&block);
        }
        Ok(true)
    };
    if !feed(1, &mut text)? {
        return Ok(None);
    }
    let mut tokens = text.split(|&b| b == b'\n');
    let count = tokens.next().and_then(decimal).ok_or(BAD)?;
    let count = usize::try_from(count).map_err(|_| BAD)?;
    let wanted = count
        .checked_mul(2)
        .and_then(|n| n.checked_add(1))
        .ok_or(BAD)?;
    if !feed(wanted, &mut text)? {
        return Ok(None);
    }
    let fields = text.split(|&b| b == b'\n').skip(1).take(2 * count);
    pairs(fields).map(Some)
}

fn pairs<'a>(mut fields: impl Iterator<Item = &'a [u8]>) -> Result<RawMap, Invalid> {
    let mut map = Vec::new();
    while let (Some(offset), Some(len)) = (fields.next(), fields.next()) {
        match (decimal(offset), decimal(len)) {
            (Some(offset), Some(len)) => map.push((offset, len)),
            _ => return Err("a GNU sparse map entry does not parse"),
        }
    }
    Ok(map)
}

/// The map as segments, if Go accepts it for a file of `size` bytes: no negative values, no
/// range past the end, ranges in order without overlap. Empty ranges are dropped.
pub(super) fn validated(map: &RawMap, size: i64) -> Result<Vec<Segment>, Invalid> {
    const BAD: Invalid = "a GNU sparse map is inconsistent";
    if size < 0 {
        return Err(BAD);
    }
    let mut previous_end = 0i64;
    let mut segments = Vec::with_capacity(map.len());
    for &(offset, len) in map {
        if offset < 0 || len < 0 || offset > i64::MAX - len {
            return Err(BAD);
        }
        if offset + len > size || previous_end > offset {
            return Err(BAD);
        }
        previous_end = offset + len;
        if len > 0 {
            segments.push(Segment {
                offset: offset as u64,
                len: len as u64,
            });
        }
    }
    Ok(segments)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_are_validated_as_go_does() {
        assert_eq!(
            validated(&vec![(0, 5), (1 << 50, 5), (1 << 50 | 10, 0)], 1 << 51),
            Ok(vec![
                Segment { offset: 0, len: 5 },
                Segment {
                    offset: 1 << 50,
                    len: 5
                }
            ])
        );
        assert!(
            validated(&vec![(10, 5), (0, 5)], 100).is_err(),
            "out of order"
        );
        assert!(validated(&vec![(0, 500)], 100).is_err(), "past the end");
        assert!(validated(&vec![(-1, 5)], 100).is_err());
    }

    #[test]
    fn pax_0_1_map() {
        assert_eq!(
            pax_0x(Some(b"2"), Some(b"0,5,100,5")),
            Ok(vec![(0, 5), (100, 5)])
        );
        assert!(pax_0x(Some(b"3"), Some(b"0,5,100,5")).is_err());
        assert_eq!(pax_0x(Some(b"0"), None), Ok(vec![]));
    }

    #[test]
    fn pax_1_0_map_is_bounded() {
        let text = b"2\n0\n5\n4096\n5\n";
        let mut served = false;
        let mut blocks = |block: &mut [u8; BLOCK]| {
            assert!(!served, "one block holds the map");
            served = true;
            block[..text.len()].copy_from_slice(text);
            Ok(())
        };
        assert_eq!(
            pax_1_0(&mut blocks, 1 << 20),
            Ok(Some(vec![(0, 5), (4096, 5)]))
        );
        let mut endless = |block: &mut [u8; BLOCK]| {
            block.fill(b'1');
            Ok(())
        };
        assert_eq!(pax_1_0(&mut endless, 4 * BLOCK), Ok(None));
    }
}
