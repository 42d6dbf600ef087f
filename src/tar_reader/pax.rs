//! PAX extended headers (`x` and `g`): `"<len> <key>=<value>\n"` records, validated as Go's
//! `archive/tar` validates them, and the keys that change how an entry is read (its path,
//! link, size and GNU sparse layout). A record Go refuses makes the archive invalid here too.

use std::collections::HashMap;

use super::header::Invalid;

/// The records of one extended header, by key; a later record replaces an earlier one.
#[derive(Debug, Default)]
pub(super) struct Records(HashMap<Vec<u8>, Vec<u8>>);

impl Records {
    /// A record's value, when present and not empty (an empty value keeps the header's field).
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.0
            .get(key.as_bytes())
            .map(Vec::as_slice)
            .filter(|v| !v.is_empty())
    }

    /// Checks the records that Go parses when it applies them to a header (sizes, ids,
    /// times); returns the size record, if any.
    pub fn checked_size(&self) -> Result<Option<i64>, Invalid> {
        for key in ["uid", "gid"] {
            if let Some(value) = self.get(key) {
                decimal(value).ok_or("a PAX id record does not parse")?;
            }
        }
        for key in ["atime", "mtime", "ctime"] {
            if let Some(value) = self.get(key) {
                check_time(value)?;
            }
        }
        self.get("size")
            .map(|value| decimal(value).ok_or("a PAX size record does not parse"))
            .transpose()
    }
}

/// Parses the data of an extended header. GNU sparse format 0.0 repeats `GNU.sparse.offset`
/// and `GNU.sparse.numbytes`; they are gathered into one `GNU.sparse.map`, as Go does.
pub(super) fn parse(mut data: &[u8]) -> Result<Records, Invalid> {
    const BAD: Invalid = "a PAX record is malformed";
    let mut records = HashMap::new();
    let mut sparse_map: Vec<&[u8]> = Vec::new();
    while !data.is_empty() {
        let (key, value, rest) = record(data).ok_or(BAD)?;
        data = rest;
        match key {
            b"GNU.sparse.offset" | b"GNU.sparse.numbytes" => {
                let expected: &[u8] = if sparse_map.len().is_multiple_of(2) {
                    b"GNU.sparse.offset"
                } else {
                    b"GNU.sparse.numbytes"
                };
                if key != expected || value.contains(&b',') {
                    return Err("GNU sparse 0.0 records are out of order");
                }
                sparse_map.push(value);
            }
            _ => {
                records.insert(key.to_vec(), value.to_vec());
            }
        }
    }
    if !sparse_map.is_empty() {
        records.insert(b"GNU.sparse.map".to_vec(), sparse_map.join(&b","[..]));
    }
    Ok(Records(records))
}

/// One record: key, value and what follows it.
fn record(data: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let space = memchr::memchr(b' ', data)?;
    let length = decimal(&data[..space])?;
    if length < 5 || length > data.len() as i64 {
        return None;
    }
    let length = length as usize;
    if length <= space + 1 || data[length - 1] != b'\n' {
        return None;
    }
    let body = &data[space + 1..length - 1];
    let equals = memchr::memchr(b'=', body)?;
    let (key, value) = (&body[..equals], &body[equals + 1..]);
    let holds_nul = |bytes: &[u8]| bytes.contains(&0);
    let valid = !key.is_empty()
        && match key {
            b"path" | b"linkpath" | b"uname" | b"gname" => !holds_nul(value),
            _ => !holds_nul(key),
        };
    valid.then_some((key, value, &data[length..]))
}

/// A decimal integer as Go's `strconv.ParseInt(s, 10, 64)` reads it: an optional sign, then
/// at least one digit, within 64 bits.
pub(super) fn decimal(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text.first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut value: i128 = 0;
    for &digit in digits {
        value = value * 10 + i128::from(digit - b'0');
        if value > i128::from(i64::MAX) + 1 {
            return None;
        }
    }
    let value = if negative { -value } else { value };
    i64::try_from(value).ok()
}

/// A PAX time: decimal seconds, optionally `.` and digits.
fn check_time(value: &[u8]) -> Result<(), Invalid> {
    const BAD: Invalid = "a PAX time record does not parse";
    let (seconds, fraction) = match memchr::memchr(b'.', value) {
        Some(dot) => (&value[..dot], &value[dot + 1..]),
        None => (value, &b""[..]),
    };
    decimal(seconds).ok_or(BAD)?;
    if fraction.iter().all(u8::is_ascii_digit) {
        Ok(())
    } else {
        Err(BAD)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_their_checks() {
        let records = parse(b"18 path=a/b/c.txt\n11 size=42\n").unwrap();
        assert_eq!(records.get("path"), Some(&b"a/b/c.txt"[..]));
        assert_eq!(records.checked_size(), Ok(Some(42)));
        assert!(
            parse(b"19 path=a/b/c.txt\n").is_err(),
            "length past the data"
        );
        assert!(parse(b"11 path=a\0\n").is_err(), "NUL in a path");
        assert!(parse(b"12 size=4x2\n").unwrap().checked_size().is_err());
        assert!(parse(b"15 mtime=1.5e3\n").unwrap().checked_size().is_err());
        assert_eq!(parse(b"8 size=\n").unwrap().get("size"), None);
    }

    #[test]
    fn sparse_0_0_records_become_a_map() {
        let data = b"23 GNU.sparse.offset=0\n25 GNU.sparse.numbytes=5\n";
        let records = parse(data).unwrap();
        assert_eq!(records.get("GNU.sparse.map"), Some(&b"0,5"[..]));
        assert!(
            parse(b"25 GNU.sparse.numbytes=5\n").is_err(),
            "out of order"
        );
    }

    #[test]
    fn decimals_as_go_parses_them() {
        assert_eq!(decimal(b"+12"), Some(12));
        assert_eq!(decimal(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(decimal(b"9223372036854775808"), None);
        assert_eq!(decimal(b""), None);
        assert_eq!(decimal(b"1_0"), None);
    }
}
