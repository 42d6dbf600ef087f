//! Text files saved in UTF-16 (Windows editors, PowerShell's `Out-File` and `>`, `.reg`
//! exports), little- or big-endian, with or without a byte order mark: recognised from their
//! first bytes, transcoded to UTF-8 for the rules, and offsets in the transcoded text mapped
//! back to the file's own bytes.
//!
//! The test costs a few byte comparisons on the first 64 bytes, so UTF-8 and binary files pay
//! nothing noticeable. Without a byte order mark only text whose first characters are ASCII is
//! recognised (every other byte zero): that is what configuration files look like, and a
//! looser test would take binary files of 16-bit integers for text.
//!
//! Only whole files are transcoded: a file large enough to be scanned in chunks (over 8 MiB,
//! see `layer::walk`) is scanned as bytes, as any other.

/// How many bytes at the start of a file the test looks at.
const SAMPLE: usize = 64;
/// The fewest UTF-16 code units a file without a byte order mark needs to be recognised.
const MIN_UNITS_WITHOUT_BOM: usize = 4;

/// A UTF-16 text file's byte order, and where its text starts (after the byte order mark).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Utf16 {
    pub big_endian: bool,
    /// 2 with a byte order mark, else 0.
    pub text_start: usize,
}

impl Utf16 {
    /// The encoding's name, as findings report it (`details.encoding`).
    pub fn name(&self) -> &'static str {
        if self.big_endian {
            "UTF-16BE"
        } else {
            "UTF-16LE"
        }
    }

    fn units<'a>(&self, content: &'a [u8]) -> impl Iterator<Item = u16> + 'a {
        let big_endian = self.big_endian;
        content[self.text_start..].chunks_exact(2).map(move |pair| {
            if big_endian {
                u16::from_be_bytes([pair[0], pair[1]])
            } else {
                u16::from_le_bytes([pair[0], pair[1]])
            }
        })
    }

    /// The text as UTF-8; an unpaired surrogate becomes U+FFFD, an odd last byte is dropped.
    pub fn decode(&self, content: &[u8]) -> String {
        char::decode_utf16(self.units(content))
            .map(|unit| unit.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect()
    }

    /// Maps offsets in the [`Utf16::decode`]d text to offsets in `content`, in place. An offset
    /// inside a character's UTF-8 bytes maps to where that character starts; one past the end
    /// maps to the end of the text.
    pub fn map_offsets(&self, content: &[u8], offsets: &mut [usize]) {
        let mut order: Vec<usize> = (0..offsets.len()).collect();
        order.sort_by_key(|&index| offsets[index]);
        let mut pending = order.into_iter().peekable();
        let (mut utf8, mut original) = (0usize, self.text_start);
        for unit in char::decode_utf16(self.units(content)) {
            let (utf8_len, original_len) = match unit {
                Ok(c) => (c.len_utf8(), 2 * c.len_utf16()),
                Err(_) => (char::REPLACEMENT_CHARACTER.len_utf8(), 2),
            };
            while let Some(&index) = pending.peek() {
                if offsets[index] >= utf8 + utf8_len {
                    break;
                }
                offsets[index] = original;
                pending.next();
            }
            utf8 += utf8_len;
            original += original_len;
        }
        for index in pending {
            offsets[index] = original;
        }
    }
}

/// Whether `content` looks like UTF-16 text, and which.
pub(crate) fn sniff(content: &[u8]) -> Option<Utf16> {
    let (big_endian, text_start) = match content {
        // FF FE 00 00 is UTF-32LE's mark: not ours.
        [0xFF, 0xFE, 0, 0, ..] => return None,
        [0xFF, 0xFE, ..] => (false, 2),
        [0xFE, 0xFF, ..] => (true, 2),
        [_, 0, ..] => (false, 0),
        [0, _, ..] => (true, 0),
        _ => return None,
    };
    let encoding = Utf16 {
        big_endian,
        text_start,
    };
    let sample = &content[..content.len().min(SAMPLE)];
    let units: Vec<u16> = encoding.units(sample).collect();
    let plausible = if text_start == 0 {
        units.len() >= MIN_UNITS_WITHOUT_BOM && units.iter().all(|&unit| ascii_text(unit))
    } else {
        units.iter().all(|&unit| unit >= 0x20 || ascii_text(unit))
    };
    plausible.then_some(encoding)
}

/// Printable ASCII, tab, line feed or carriage return.
fn ascii_text(unit: u16) -> bool {
    matches!(unit, 0x09 | 0x0A | 0x0D | 0x20..=0x7E)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(text: &str, big_endian: bool, bom: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let units = bom.then_some(0xFEFF).into_iter().chain(text.encode_utf16());
        for unit in units {
            out.extend(if big_endian {
                unit.to_be_bytes()
            } else {
                unit.to_le_bytes()
            });
        }
        out
    }

    #[test]
    fn recognises_both_byte_orders_with_and_without_a_mark() {
        let text = "password = Zq3LmN8pR2sT\r\n";
        for big_endian in [false, true] {
            for bom in [false, true] {
                let bytes = encode(text, big_endian, bom);
                let found = sniff(&bytes).expect("UTF-16");
                assert_eq!(found.big_endian, big_endian);
                assert_eq!(found.text_start, if bom { 2 } else { 0 });
                assert_eq!(found.decode(&bytes), text);
            }
        }
    }

    #[test]
    fn leaves_utf8_binary_and_utf32_alone() {
        assert_eq!(sniff(b"password = Zq3LmN8pR2sT\n"), None);
        assert_eq!(sniff(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0"), None);
        // Little-endian 32-bit integers: zero bytes where text has none.
        assert_eq!(sniff(&[1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0]), None);
        assert_eq!(sniff(&[0xFF, 0xFE, 0, 0, b'a', 0, 0, 0]), None);
        // A mark followed by control codes is binary.
        assert_eq!(sniff(&[0xFF, 0xFE, 1, 0, 2, 0]), None);
        // Too short to tell without a mark.
        assert_eq!(sniff(&encode("ab", false, false)), None);
        assert_eq!(sniff(b""), None);
    }

    #[test]
    fn offsets_map_back_to_the_file_bytes() {
        // 'é' is 2 UTF-8 bytes and one unit, '𝄞' 4 UTF-8 bytes and two units.
        let text = "é𝄞a=b";
        for big_endian in [false, true] {
            let bytes = encode(text, big_endian, true);
            let encoding = sniff(&bytes).unwrap();
            let decoded = encoding.decode(&bytes);
            let a = decoded.find('a').unwrap();
            let mut offsets = [decoded.len(), a, 0, 1];
            encoding.map_offsets(&bytes, &mut offsets);
            // BOM 2 + é 2 + 𝄞 4 = 8; the end is 8 + 3 units; 1 is inside 'é'.
            assert_eq!(offsets, [14, 8, 2, 2]);
        }
    }
}
