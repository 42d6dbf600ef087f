//! Debian control-file stanzas (deb822), as dpkg writes `status` and distroless writes
//! `status.d/<name>`: `Field: value` lines, continuation lines starting with a space or tab,
//! stanzas separated by blank lines.

use super::package::ParseReport;

/// One stanza: its fields in order, continuation lines joined to the value with `\n`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Stanza {
    fields: Vec<(String, String)>,
}

impl Stanza {
    /// The value of `field` (field names are case-insensitive), first line trimmed.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(field))
            .map(|(_, value)| value.as_str())
    }
}

/// Every stanza of `bytes`. Lines that are neither a field nor a continuation are skipped and
/// counted in `report`; non-UTF-8 bytes are replaced (dpkg fields are ASCII in practice).
pub fn stanzas(bytes: &[u8], report: &mut ParseReport) -> Vec<Stanza> {
    let text = String::from_utf8_lossy(bytes);
    let mut out = Vec::new();
    let mut current = Stanza::default();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            if !current.fields.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            match current.fields.last_mut() {
                Some((_, value)) => {
                    value.push('\n');
                    value.push_str(line.trim());
                }
                None => report.skip(format!("line {}: continuation outside a field", number + 1)),
            }
            continue;
        }
        match line.split_once(':') {
            Some((name, value)) if !name.is_empty() && !name.contains(' ') => {
                current
                    .fields
                    .push((name.to_string(), value.trim().to_string()));
            }
            _ => report.skip(format!("line {}: not a field", number + 1)),
        }
    }
    if !current.fields.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_continuations_and_stanzas() {
        let text = b"Package: a\nDescription: short\n long line\n .\n\n\nPackage: b\nversion: 2\n";
        let mut report = ParseReport::default();
        let got = stanzas(text, &mut report);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].get("package"), Some("a"));
        assert_eq!(got[0].get("Description"), Some("short\nlong line\n."));
        assert_eq!(got[1].get("Version"), Some("2"));
        assert_eq!(report.skipped, 0);
    }

    #[test]
    fn bad_lines_are_counted() {
        let mut report = ParseReport::default();
        let got = stanzas(b" orphan\nno colon here\nPackage: x\n", &mut report);
        assert_eq!(got.len(), 1);
        assert_eq!(report.skipped, 2);
    }
}
