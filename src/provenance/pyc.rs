//! Python bytecode (`.pyc`) and the source it was compiled from. pip lists the `__pycache__`
//! files it compiles in RECORD without a hash, and Debian's `py3compile` writes them from a
//! maintainer script, so no database vouches for them; but a `.pyc` says which source it was
//! compiled from: its path (`dir/__pycache__/name.cpython-311.pyc` comes from `dir/name.py`)
//! and its header (PEP 552: a magic number, flags, then the source's modification time and
//! size, or a hash of the source).
//!
//! The scan uses this to give a secret found in bytecode the verdict of its source: vendor
//! content only when the source is a package's file installed unmodified, the header describes
//! that source, and the secret is in the source too (a constant compiled from it).

use super::paths::{file_name, parent};

/// Where the source of the bytecode file at `path` sits, when `path` is named as bytecode:
/// `dir/__pycache__/<name>.<tag>[.opt-N].pyc` → `dir/<name>.py`, and the legacy
/// `dir/<name>.pyc` (Python 2, or `compileall -b`) → `dir/<name>.py`.
pub fn source_of_bytecode(path: &str) -> Option<String> {
    let name = file_name(path).strip_suffix(".pyc")?;
    let dir = parent(path);
    let (dir, stem) = if file_name(dir) == "__pycache__" {
        // The name is `<module>.<implementation tag>` with an optional `.opt-N`.
        let name = name
            .rsplit_once(".opt-")
            .filter(|(_, level)| level.bytes().all(|b| b.is_ascii_digit()))
            .map_or(name, |(name, _)| name);
        (parent(dir), name.rsplit_once('.')?.0)
    } else {
        (dir, name)
    };
    if stem.is_empty() {
        return None;
    }
    Some(if dir.is_empty() {
        format!("{stem}.py")
    } else {
        format!("{dir}/{stem}.py")
    })
}

/// What a `.pyc` header says about its source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PycHeader {
    /// The default: the source's modification time and size (both modulo 2^32).
    Timestamp {
        /// Seconds since the epoch.
        mtime: u32,
        /// Bytes.
        size: u32,
    },
    /// PEP 552's hash-based bytecode: a SipHash of the source, keyed by the interpreter's
    /// magic number.
    Hash,
}

/// The largest header read: magic (4), flags (4), then 8 bytes.
pub const HEADER_LEN: usize = 16;

/// Reads the header at the start of a `.pyc`; `None` when the bytes are not bytecode (the
/// magic number of every CPython 3 ends in `\r\n`).
pub fn parse_header(bytes: &[u8]) -> Option<PycHeader> {
    let word = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
    };
    if bytes.get(2..4)? != b"\r\n" {
        return None;
    }
    let magic = u16::from_le_bytes([bytes[0], bytes[1]]);
    // Python 3.7 (magic 3390 and later) added the flags word of PEP 552.
    if magic < 3390 {
        return Some(PycHeader::Timestamp {
            mtime: word(4)?,
            size: word(8)?,
        });
    }
    match word(4)? {
        0 => Some(PycHeader::Timestamp {
            mtime: word(8)?,
            size: word(12)?,
        }),
        flags if flags & 1 == 1 => Some(PycHeader::Hash),
        _ => None,
    }
}

impl PycHeader {
    /// Whether this header describes a source of `size` bytes (modified at `mtime`, when the
    /// layer says). Hash-based bytecode is not checked (its SipHash key and variant change
    /// between Python versions), so it never describes a source here.
    pub fn describes(self, size: u64, mtime: Option<u64>) -> bool {
        match self {
            PycHeader::Timestamp {
                mtime: recorded,
                size: recorded_size,
            } => {
                u64::from(recorded_size) == size & 0xffff_ffff
                    && mtime.is_none_or(|mtime| u64::from(recorded) == mtime & 0xffff_ffff)
            }
            PycHeader::Hash => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_of_bytecode_paths() {
        let cases = [
            (
                "usr/lib/python3/dist-packages/x/__pycache__/m.cpython-311.pyc",
                Some("usr/lib/python3/dist-packages/x/m.py"),
            ),
            (
                "site/x/__pycache__/m.cpython-312.opt-2.pyc",
                Some("site/x/m.py"),
            ),
            (
                "site/x/__pycache__/__init__.cpython-311.pyc",
                Some("site/x/__init__.py"),
            ),
            ("site/x/m.pyc", Some("site/x/m.py")),
            ("site/x/__pycache__/m.pyc", None),
            ("site/x/m.py", None),
            ("__pycache__/m.cpython-311.pyc", Some("m.py")),
        ];
        for (path, source) in cases {
            assert_eq!(source_of_bytecode(path).as_deref(), source, "{path}");
        }
    }

    fn header(magic: u16, flags: u32, a: u32, b: u32) -> Vec<u8> {
        let mut bytes = magic.to_le_bytes().to_vec();
        bytes.extend_from_slice(b"\r\n");
        for word in [flags, a, b] {
            bytes.extend_from_slice(&word.to_le_bytes());
        }
        bytes
    }

    #[test]
    fn headers_old_new_and_hash_based() {
        let new = parse_header(&header(3495, 0, 1_700_000_000, 1234)).unwrap();
        assert!(new.describes(1234, None));
        assert!(new.describes(1234, Some(1_700_000_000)));
        assert!(!new.describes(1234, Some(1_700_000_001)));
        assert!(!new.describes(1235, None));
        assert!(new.describes(1u64 << 32 | 1234, None));
        // Python 3.6: magic, mtime, size.
        let old = parse_header(&header(3379, 1_600_000_000, 77, 0)).unwrap();
        assert_eq!(
            old,
            PycHeader::Timestamp {
                mtime: 1_600_000_000,
                size: 77
            }
        );
        let hashed = parse_header(&header(3495, 3, 1, 2)).unwrap();
        assert_eq!(hashed, PycHeader::Hash);
        assert!(!hashed.describes(2, None));
        assert_eq!(parse_header(b"\x7fELF\x02\x01\x01\0\0\0\0\0"), None);
        assert_eq!(parse_header(b"ab\r\n"), None);
        assert_eq!(parse_header(&header(3495, 4, 0, 0)), None);
    }
}
