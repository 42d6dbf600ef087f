//! Which of a keyword's four-byte windows it is filed under: the least common one in the
//! content of real images, so that the filter passes as few positions as it can.

use super::WINDOW;
use super::window::folded_window;

/// How often the most common windows occur in real image content, per million positions
/// (measured on Debian's toolchains by `scripts/window-frequencies.py`); a window not listed
/// is rarer than every listed one.
pub(super) fn window_frequencies() -> &'static std::collections::HashMap<u32, f64> {
    static TABLE: std::sync::OnceLock<std::collections::HashMap<u32, f64>> =
        std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        include_str!("../window_frequencies.tsv")
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let (window, frequency) = line.split_once('\t')?;
                Some((
                    u32::from_str_radix(window, 16).ok()?,
                    frequency.parse().ok()?,
                ))
            })
            .collect()
    })
}

/// How common a byte is in the files a scan reads, roughly (English text, source code,
/// configuration, binaries): among windows the frequency table does not list, the one whose
/// bytes weigh least is the one a keyword is filed under. Only the order matters.
fn byte_weight(byte: u8) -> f64 {
    match byte.to_ascii_lowercase() {
        b'e' => 12.0,
        b't' | b'a' | b'o' | b'i' | b'n' | b's' | b'r' => 8.0,
        b'h' | b'l' | b'd' | b'c' | b'u' => 4.0,
        b'm' | b'f' | b'p' | b'g' | b'w' | b'y' | b'b' => 2.0,
        b'v' | b'k' => 1.0,
        b'x' | b'j' | b'q' | b'z' => 0.3,
        b' ' | b'\n' | b'\t' | 0 | 0xff => 10.0,
        b'0'..=b'9' => 1.5,
        b'_' | b'-' | b'.' | b'/' | b'"' | b'=' | b':' | b',' => 1.5,
        0x80.. => 0.5,
        _ => 0.7,
    }
}

/// The offset of `keyword`'s least common window (it is [`WINDOW`] bytes long at least): by
/// the measured frequencies, then by [`byte_weight`].
pub(super) fn rarest_window(keyword: &[u8]) -> usize {
    let frequencies = window_frequencies();
    let rank = |at: usize| -> (f64, f64) {
        let window = &keyword[at..at + WINDOW];
        let folded = folded_window(u32::from_le_bytes([
            window[0], window[1], window[2], window[3],
        ]));
        let measured = frequencies.get(&folded).copied().unwrap_or(0.0);
        let bytes = window.iter().map(|&b| byte_weight(b)).product();
        (measured, bytes)
    };
    (0..=keyword.len() - WINDOW)
        .min_by(|&a, &b| {
            let (a, b) = (rank(a), rank(b));
            a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1))
        })
        .expect("a keyword at least a window long")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The frequency table is read whole, and decides: `password` is not filed under the
    /// English `pass` or `word`; `-----BEGIN` not under the four dashes that underline text
    /// everywhere.
    #[test]
    fn keywords_are_filed_under_their_rarest_window() {
        assert!(window_frequencies().len() >= 30_000);
        let window = |keyword: &str| {
            let at = rarest_window(keyword.as_bytes());
            keyword[at..at + WINDOW].to_string()
        };
        assert!(
            !["pass", "word"].contains(&window("password").as_str()),
            "{}",
            window("password")
        );
        assert!(window("-----begin") != "----", "{}", window("-----begin"));
    }
}
