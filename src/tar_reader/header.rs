//! One 512-byte header block, decoded as Go's `archive/tar` decodes it (the reader Docker,
//! containerd and umoci unpack layers with): which format the block claims, its checksum, the
//! V7, ustar, star and GNU fields, octal and base-256 numbers. A field Go refuses makes the
//! block invalid here too, so both readers agree on where every entry starts.

/// Size of a header block and the unit data is padded to.
pub(crate) const BLOCK: usize = 512;

/// Which header layout a block uses, from its magic and version fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Format {
    V7,
    /// `ustar\0` + `00`: POSIX ustar, the base of PAX.
    Ustar,
    /// ustar with the `tar\0` trailer of Schily's star: a shorter prefix, then times.
    Star,
    /// `ustar ` + ` \0`: GNU tar's layout (times and a sparse map where ustar has its prefix).
    Gnu,
}

/// The fields of one header block that decide how an archive is read.
#[derive(Debug)]
pub(super) struct RawHeader {
    pub typeflag: u8,
    /// The name, with the ustar/star prefix joined in front.
    pub name: Vec<u8>,
    pub link: Vec<u8>,
    /// The size field; negative only when written in base-256.
    pub size: i64,
}

/// Why a block is not a header Go would accept (the words go into errors: no input bytes).
pub(super) type Invalid = &'static str;

/// Decodes `block`, which is not all zeros.
pub(super) fn parse(block: &[u8; BLOCK]) -> Result<RawHeader, Invalid> {
    let format = format_of(block).ok_or("header checksum or format not recognised")?;
    let mut name = c_string(&block[0..100]).to_vec();
    let size = numeric(&block[124..136])?;
    for field in [
        &block[100..108],
        &block[108..116],
        &block[116..124],
        &block[136..148],
    ] {
        numeric(field)?; // mode, uid, gid, mtime: Go refuses the header when one is malformed.
    }
    if format != Format::V7 {
        numeric(&block[329..337])?; // device major
        numeric(&block[337..345])?; // device minor
    }
    let prefix: &[u8] = match format {
        Format::V7 => b"",
        Format::Ustar => c_string(&block[345..500]),
        Format::Star => {
            numeric(&block[476..488])?; // access time
            numeric(&block[488..500])?; // change time
            c_string(&block[345..476])
        }
        Format::Gnu => old_go_prefix(block),
    };
    if !prefix.is_empty() {
        let mut joined = prefix.to_vec();
        joined.push(b'/');
        joined.append(&mut name);
        name = joined;
    }
    Ok(RawHeader {
        typeflag: block[156],
        name,
        link: c_string(&block[157..257]).to_vec(),
        size,
    })
}

/// A GNU header has no prefix, except one written by Go before 1.8, which put a ustar prefix
/// where GNU keeps access and change times: when those times do not parse and the field is
/// ASCII, Go reads it as a prefix.
fn old_go_prefix(block: &[u8; BLOCK]) -> &[u8] {
    let time_ok = |field: &[u8]| field[0] == 0 || numeric(field).is_ok();
    if time_ok(&block[345..357]) && time_ok(&block[357..369]) {
        return b"";
    }
    let prefix = c_string(&block[345..500]);
    if prefix.iter().all(|&b| b < 0x80) {
        prefix
    } else {
        b""
    }
}

/// The format a block claims, or `None` when its checksum does not hold (Go accepts the sum
/// of the bytes taken as unsigned or as signed, with the checksum field read as spaces).
pub(super) fn format_of(block: &[u8; BLOCK]) -> Option<Format> {
    let stored = octal(&block[148..156]).ok()?;
    let (mut unsigned, mut signed) = (0i64, 0i64);
    for (index, &byte) in block.iter().enumerate() {
        let byte = if (148..156).contains(&index) {
            b' '
        } else {
            byte
        };
        unsigned += i64::from(byte);
        signed += i64::from(byte as i8);
    }
    if stored != unsigned && stored != signed {
        return None;
    }
    let (magic, version, trailer) = (&block[257..263], &block[263..265], &block[508..512]);
    Some(match () {
        _ if magic == b"ustar\0" && trailer == b"tar\0" => Format::Star,
        _ if magic == b"ustar\0" => Format::Ustar,
        _ if magic == b"ustar " && version == b" \0" => Format::Gnu,
        _ => Format::V7,
    })
}

/// A string field: up to its first NUL.
pub(super) fn c_string(field: &[u8]) -> &[u8] {
    match memchr::memchr(0, field) {
        Some(end) => &field[..end],
        None => field,
    }
}

/// A numeric field: base-256 (two's complement, big-endian) when its first bit is set,
/// octal otherwise.
pub(super) fn numeric(field: &[u8]) -> Result<i64, Invalid> {
    const INVALID: Invalid = "a numeric header field does not parse";
    let Some(&first) = field.first() else {
        return Ok(0);
    };
    if first & 0x80 == 0 {
        return octal(field).map_err(|_| INVALID);
    }
    let invert = if first & 0x40 != 0 { 0xff } else { 0 };
    let mut value: u64 = 0;
    for (index, &byte) in field.iter().enumerate() {
        let mut byte = byte ^ invert;
        if index == 0 {
            byte &= 0x7f;
        }
        if value >> 56 != 0 {
            return Err(INVALID);
        }
        value = value << 8 | u64::from(byte);
    }
    if value >> 63 != 0 {
        return Err(INVALID);
    }
    Ok(if invert == 0xff {
        !(value as i64)
    } else {
        value as i64
    })
}

/// An octal field, padded with spaces or NULs on either side; empty is 0.
fn octal(field: &[u8]) -> Result<i64, Invalid> {
    let padding = |b: &u8| *b == b' ' || *b == 0;
    let start = field
        .iter()
        .position(|b| !padding(b))
        .unwrap_or(field.len());
    let end = field
        .iter()
        .rposition(|b| !padding(b))
        .map_or(start, |i| i + 1);
    let digits = c_string(&field[start..end]);
    if digits.is_empty() {
        return Ok(0);
    }
    let mut value: u64 = 0;
    for &digit in digits {
        if !(b'0'..=b'7').contains(&digit) {
            return Err("an octal header field does not parse");
        }
        value = value
            .checked_mul(8)
            .and_then(|v| v.checked_add(u64::from(digit - b'0')))
            .ok_or("an octal header field overflows")?;
    }
    // Go converts to int64 the same way: a value past i64::MAX comes out negative.
    Ok(value as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_fields_as_go_reads_them() {
        assert_eq!(numeric(b"0000644\0"), Ok(0o644));
        assert_eq!(numeric(b"  644 \0\0"), Ok(0o644));
        assert_eq!(numeric(b"\0\0\0\0\0\0\0\0"), Ok(0));
        assert!(numeric(b"00008\0\0\0").is_err());
        assert!(numeric(b"12 34\0\0\0").is_err());
    }

    #[test]
    fn base_256_fields() {
        let mut field = [0u8; 12];
        field[0] = 0x80;
        field[4..].copy_from_slice(&(1u64 << 40).to_be_bytes());
        assert_eq!(numeric(&field), Ok(1 << 40));
        assert_eq!(numeric(&[0xff; 12]), Ok(-1));
        let mut huge = [0u8; 12];
        huge[0] = 0x80;
        huge[1] = 1;
        assert!(numeric(&huge).is_err(), "overflows 64 bits");
    }

    #[test]
    fn checksum_must_hold() {
        let mut block = [0u8; BLOCK];
        block[..4].copy_from_slice(b"file");
        block[124..136].copy_from_slice(b"00000000005\0");
        block[156] = b'0';
        block[257..263].copy_from_slice(b"ustar\0");
        block[263..265].copy_from_slice(b"00");
        let sum: u32 = block.iter().map(|&b| u32::from(b)).sum::<u32>() + 8 * u32::from(b' ');
        block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        let header = parse(&block).unwrap();
        assert_eq!((header.name.as_slice(), header.size), (&b"file"[..], 5));
        assert_eq!(format_of(&block), Some(Format::Ustar));
        block[0] = b'F';
        assert!(parse(&block).is_err());
    }
}
