//! Which bytes a window the filter holds can begin with: a test the vector loop makes on
//! sixty-four positions at once, before it hashes and looks up any of them.
//!
//! Keywords are made of letters, digits and a little punctuation. With the built-in rules,
//! 96 % of the positions of random bytes (compressed streams) fail on their first three bytes
//! alone, and three groups of eight positions in four fail as a whole; of the executables and
//! libraries of a toolchain image about half the positions fail, and one group in four or
//! five. The lookup of a window in the bit table is the vector loop's dearest step (a gather
//! of eight words), and such a group skips it. On text nearly every position passes, and the
//! test costs a few instructions per sixty-four bytes.
//!
//! The test is exact for what it tests: a position fails only when one of its first three
//! bytes cannot be that byte of any filed window, so it never drops a keyword.

/// For each of a window's first three bytes, the bytes it can be, as the vector loop looks
/// them up: byte `b` can be byte `i` of a window when bit `b >> 4` of `low_nibble[i][b & 15]`
/// is set (`b < 0x80`), or when `high[i]` is (`b >= 0x80`: a keyword with bytes outside
/// ASCII, which the built-in rules do not have).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct WindowBytes {
    pub(super) low_nibble: [[u8; 16]; 3],
    pub(super) high: [bool; 3],
}

impl WindowBytes {
    /// The bytes the given windows (see [`super::window::folded_window`]) begin with: their
    /// first three bytes have the 0x20 bit cleared, so both values of that bit are allowed.
    pub(super) fn of_windows(windows: impl IntoIterator<Item = u32>) -> WindowBytes {
        let mut bytes = WindowBytes {
            low_nibble: [[0; 16]; 3],
            high: [false; 3],
        };
        for window in windows {
            for (place, folded) in window.to_le_bytes()[..3].iter().enumerate() {
                for byte in [*folded, folded | 0x20] {
                    bytes.allow(place, byte);
                }
            }
        }
        bytes
    }

    fn allow(&mut self, place: usize, byte: u8) {
        if byte >= 0x80 {
            self.high[place] = true;
        } else {
            self.low_nibble[place][usize::from(byte & 15)] |= 1 << (byte >> 4);
        }
    }

    /// Whether `byte` can be byte `place` of a window (what the vector loop computes).
    #[cfg(test)]
    pub(super) fn allows(&self, place: usize, byte: u8) -> bool {
        if byte >= 0x80 {
            self.high[place]
        } else {
            self.low_nibble[place][usize::from(byte & 15)] & (1 << (byte >> 4)) != 0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::window::{folded_window, windows_of_short};
    use super::*;

    #[test]
    fn both_cases_and_only_the_first_three_bytes() {
        let window = folded_window(u32::from_le_bytes(*b"k=y!"));
        let bytes = WindowBytes::of_windows([window]);
        for (place, allowed) in [(0, b"kK"), (1, b"=\x1d"), (2, b"yY")] {
            for byte in 0..=255u8 {
                assert_eq!(
                    bytes.allows(place, byte),
                    allowed.contains(&byte),
                    "byte {byte:#x} at {place}"
                );
            }
        }
    }

    #[test]
    fn bytes_outside_ascii_are_allowed_as_a_group() {
        let bytes = WindowBytes::of_windows(windows_of_short("é!".as_bytes()));
        assert!(bytes.allows(0, 0xc3) && bytes.allows(0, 0xe3) && bytes.allows(0, 0x80));
        assert!(!bytes.allows(0, b'c') && !bytes.allows(2, 0xc3));
        assert!(bytes.allows(1, 0xa9) && bytes.allows(2, b'!'));
    }
}
