//! Ignore files: `.stowawayignore` in the current directory, or the file given with
//! `--ignore-file`. One entry per line; each says what it covers, why, and optionally until when:
//!
//! ```text
//! # Test fixtures ship fake keys on purpose.
//! path:/app/testdata/            reason="fake keys for the test suite"
//! path:*.example.pem             reason="documentation samples"  expires=2027-01-01
//! rule:generic-password          reason="demo image, no real services"
//! fingerprint:5f0c9a1e0d6b4c2a8e7f3b1d9c0a2e4f  reason="revoked 2026-03-02, INC-1234"
//! ```
//!
//! - `path:<glob>` matches the path of a file inside the image. A glob with a `/` is anchored
//!   at the image root (a leading `/` is optional); one without a `/` matches a file name at
//!   any depth; a trailing `/` covers everything below a directory. `*` and `?` stay within one
//!   path component, `**` crosses them, `{a,b}` and `[abc]` work as usual. Path entries cover
//!   findings in layer files only (history and config findings have no path).
//! - `rule:<rule-id>` covers every finding of a rule (see `stowaway rules list`).
//! - `fingerprint:<32 hex digits>` covers one secret wherever it appears (the fingerprint is
//!   in JSON output and in text output with `-v`).
//! - `reason="…"` is required. `expires=YYYY-MM-DD` is optional: the entry applies through that
//!   day (UTC) and not after; once expired it is reported as a warning and suppresses nothing.
//! - Values with spaces are quoted with `"` (`\"` and `\\` inside); `#` starts a comment at
//!   the start of a line or of a word. A malformed line is an error naming file and line.

use std::fmt;
use std::fs;
use std::path::Path;

use anyhow::{Result, anyhow, bail};
use globset::{GlobBuilder, GlobMatcher};

use super::date::Date;
use super::model::{Finding, LocationKind};

/// The ignore file read from the current directory when `--ignore-file` is not given.
pub const DEFAULT_IGNORE_FILE: &str = ".stowawayignore";

/// What an entry covers.
#[derive(Clone, Debug)]
pub enum Matcher {
    /// A glob on the in-image path (`pattern` as written, `glob` as compiled).
    Path {
        pattern: String,
        glob: GlobMatcher,
    },
    Rule(String),
    Fingerprint(String),
}

/// One line of an ignore file.
#[derive(Clone, Debug)]
pub struct IgnoreEntry {
    pub matcher: Matcher,
    pub reason: String,
    pub expires: Option<Date>,
    /// `file:line`, for messages.
    pub origin: String,
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Matcher::Path { pattern, .. } => write!(f, "path:{pattern}"),
            Matcher::Rule(id) => write!(f, "rule:{id}"),
            Matcher::Fingerprint(hex) => write!(f, "fingerprint:{hex}"),
        }
    }
}

impl IgnoreEntry {
    /// Whether the entry still applies on `today`.
    pub fn active(&self, today: Date) -> bool {
        self.expires.is_none_or(|expires| today <= expires)
    }

    /// Whether the entry covers `finding` (expiry aside).
    pub fn covers(&self, finding: &Finding) -> bool {
        match &self.matcher {
            Matcher::Path { glob, .. } => {
                finding.location.kind == LocationKind::LayerFile
                    && finding
                        .location
                        .path
                        .as_deref()
                        .is_some_and(|path| glob.is_match(path.trim_start_matches('/')))
            }
            Matcher::Rule(id) => &finding.rule_id == id,
            Matcher::Fingerprint(hex) => finding.fingerprint.eq_ignore_ascii_case(hex),
        }
    }
}

/// The entries of an ignore file.
#[derive(Clone, Debug, Default)]
pub struct IgnoreList {
    pub entries: Vec<IgnoreEntry>,
}

impl IgnoreList {
    /// The ignore list in effect: `explicit` (`--ignore-file`; a missing file is an error), else
    /// [`DEFAULT_IGNORE_FILE`] in the current directory when there is one, else none.
    pub fn discover(explicit: Option<&Path>) -> Result<Option<IgnoreList>> {
        match explicit {
            Some(path) => IgnoreList::load(path).map(Some),
            None => {
                let default = Path::new(DEFAULT_IGNORE_FILE);
                if default.is_file() {
                    IgnoreList::load(default).map(Some)
                } else {
                    Ok(None)
                }
            }
        }
    }

    /// Reads an ignore file; every problem names the file and line.
    pub fn load(path: &Path) -> Result<IgnoreList> {
        let text = fs::read_to_string(path)
            .map_err(|err| anyhow!("{}: cannot read ignore file: {err}", path.display()))?;
        IgnoreList::parse(&text, &path.display().to_string())
    }

    /// Parses ignore-file text; `name` is used in messages.
    pub fn parse(text: &str, name: &str) -> Result<IgnoreList> {
        let mut entries = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let origin = format!("{name}:{}", index + 1);
            if let Some(entry) =
                parse_line(line, &origin).map_err(|err| anyhow!("{origin}: {err}"))?
            {
                entries.push(entry);
            }
        }
        Ok(IgnoreList { entries })
    }

    /// Warnings to show: expired entries (they no longer apply), and rule entries naming no
    /// rule in `known_rules`.
    pub fn warnings(&self, today: Date, known_rules: &[&str]) -> Vec<String> {
        let mut warnings = Vec::new();
        for entry in &self.entries {
            if let Some(expires) = entry.expires
                && !entry.active(today)
            {
                warnings.push(format!(
                    "{}: ignore entry `{}` expired on {expires} and no longer applies \
                     (reason was: {})",
                    entry.origin, entry.matcher, entry.reason
                ));
            }
            if let Matcher::Rule(id) = &entry.matcher
                && !known_rules.contains(&id.as_str())
            {
                warnings.push(format!(
                    "{}: ignore entry `{}` names no rule in effect (see `stowaway rules list`)",
                    entry.origin, entry.matcher
                ));
            }
        }
        warnings
    }

    /// The first active entry that covers `finding`.
    pub fn covering(&self, finding: &Finding, today: Date) -> Option<&IgnoreEntry> {
        self.entries
            .iter()
            .find(|entry| entry.active(today) && entry.covers(finding))
    }
}

/// Splits a line into words: whitespace separates, `"…"` quotes (with `\"` and `\\`), and a
/// word starting with `#` ends the line.
fn words(line: &str) -> Result<Vec<String>> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        match chars.peek() {
            None | Some('#') => break,
            Some(_) => {}
        }
        let mut word = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
            if c != '"' {
                word.push(c);
                continue;
            }
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(escaped @ ('"' | '\\')) => word.push(escaped),
                        Some(other) => {
                            word.push('\\');
                            word.push(other);
                        }
                        None => bail!("unterminated quoted value"),
                    },
                    Some(other) => word.push(other),
                    None => bail!("unterminated quoted value"),
                }
            }
        }
        words.push(word);
    }
    Ok(words)
}

fn compile_glob(pattern: &str) -> Result<GlobMatcher> {
    let mut glob = pattern.trim_start_matches('/').to_string();
    if glob.is_empty() {
        bail!("empty path glob");
    }
    let directory = glob.ends_with('/');
    let anchored = pattern.starts_with('/') || glob.trim_end_matches('/').contains('/');
    if directory {
        glob.push_str("**");
    }
    if !anchored {
        glob.insert_str(0, "**/");
    }
    Ok(GlobBuilder::new(&glob)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|err| anyhow!("bad path glob {pattern:?}: {}", err.kind()))?
        .compile_matcher())
}

fn parse_line(line: &str, origin: &str) -> Result<Option<IgnoreEntry>> {
    let words = words(line)?;
    let Some((target, attributes)) = words.split_first() else {
        return Ok(None);
    };
    let matcher = match target.split_once(':') {
        Some(("path", pattern)) => Matcher::Path {
            pattern: pattern.to_string(),
            glob: compile_glob(pattern)?,
        },
        Some(("rule", id)) => {
            if id.is_empty()
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                bail!("bad rule id {id:?} (rule ids are kebab-case: a-z, 0-9, -)");
            }
            Matcher::Rule(id.to_string())
        }
        Some(("fingerprint", hex)) => {
            if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                bail!("bad fingerprint {hex:?} (32 hex digits, as in JSON output or `scan -v`)");
            }
            Matcher::Fingerprint(hex.to_ascii_lowercase())
        }
        _ => bail!(
            "expected path:<glob>, rule:<rule-id> or fingerprint:<hex> first, found {target:?}"
        ),
    };
    let mut reason: Option<String> = None;
    let mut expires: Option<Date> = None;
    for attribute in attributes {
        let Some((key, value)) = attribute.split_once('=') else {
            bail!("expected key=value after `{matcher}`, found {attribute:?}");
        };
        match key {
            "reason" => {
                if reason.is_some() {
                    bail!("reason given twice");
                }
                reason = Some(value.trim().to_string());
            }
            "expires" => {
                if expires.is_some() {
                    bail!("expires given twice");
                }
                expires = Some(value.parse().map_err(|err| anyhow!("expires: {err}"))?);
            }
            other => bail!("unknown key {other:?} (keys are reason and expires)"),
        }
    }
    let reason = match reason {
        Some(reason) if !reason.is_empty() => reason,
        Some(_) => bail!("`{matcher}` has an empty reason"),
        None => {
            bail!("`{matcher}` has no reason: every entry needs one, e.g. reason=\"test fixtures\"")
        }
    };
    Ok(Some(IgnoreEntry {
        matcher,
        reason,
        expires,
        origin: origin.to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample::leaky_report;

    fn today() -> Date {
        "2026-06-01".parse().unwrap()
    }

    fn glob_matches(pattern: &str, path: &str) -> bool {
        compile_glob(pattern).unwrap().is_match(path)
    }

    #[test]
    fn parses_every_form_with_comments_and_quotes() {
        let text = "# comment\n\n\
                    path:/root/.aws/*  reason=\"fixture keys\"  expires=2027-01-01  # trailing\n\
                    rule:generic-password reason=demo\n\
                    fingerprint:0123456789ABCDEF0123456789abcdef reason=\"say \\\"revoked\\\"\"\n\
                    path:\"dir with space/*.pem\" reason=x\n";
        let list = IgnoreList::parse(text, "f").unwrap();
        assert_eq!(list.entries.len(), 4);
        assert_eq!(list.entries[0].origin, "f:3");
        assert_eq!(list.entries[0].reason, "fixture keys");
        assert_eq!(list.entries[0].expires, Some("2027-01-01".parse().unwrap()));
        assert_eq!(list.entries[1].matcher.to_string(), "rule:generic-password");
        assert_eq!(list.entries[2].reason, "say \"revoked\"");
        assert_eq!(
            list.entries[2].matcher.to_string(),
            "fingerprint:0123456789abcdef0123456789abcdef"
        );
        assert_eq!(
            list.entries[3].matcher.to_string(),
            "path:dir with space/*.pem"
        );
    }

    #[test]
    fn malformed_lines_name_file_and_line() {
        for (text, expected) in [
            ("rule:x\n", "t:1: `rule:x` has no reason"),
            (
                "\nrule:x reason=\"\"\n",
                "t:2: `rule:x` has an empty reason",
            ),
            ("secret:abc reason=x\n", "t:1: expected path:<glob>"),
            ("rule:Bad_Id reason=x\n", "t:1: bad rule id"),
            ("fingerprint:abc reason=x\n", "t:1: bad fingerprint"),
            ("rule:x reason=x expires=2027-02-30\n", "t:1: expires:"),
            ("rule:x reason=x why=y\n", "t:1: unknown key \"why\""),
            ("rule:x reason=x stray\n", "t:1: expected key=value"),
            ("rule:x reason=\"open\n", "t:1: unterminated quoted value"),
            ("rule:x reason=a reason=b\n", "t:1: reason given twice"),
            ("path:a/[z reason=x\n", "t:1: bad path glob"),
        ] {
            let err = IgnoreList::parse(text, "t").unwrap_err().to_string();
            assert!(err.starts_with(expected), "{text:?}: {err}");
        }
    }

    #[test]
    fn globs_follow_ignore_file_habits() {
        assert!(glob_matches("/root/.aws/*", "root/.aws/credentials"));
        assert!(glob_matches("root/.aws/*", "root/.aws/credentials"));
        assert!(!glob_matches("root/*", "root/.aws/credentials"));
        assert!(glob_matches("root/**", "root/.aws/credentials"));
        assert!(glob_matches("*.pem", "etc/ssl/private/server.pem"));
        assert!(glob_matches("*.pem", "server.pem"));
        assert!(!glob_matches("/server.pem", "etc/server.pem"));
        assert!(glob_matches("/app/testdata/", "app/testdata/keys/id_rsa"));
        assert!(!glob_matches("/app/testdata/", "app/other/id_rsa"));
        assert!(glob_matches("id_{rsa,ed25519}", "home/dev/.ssh/id_ed25519"));
    }

    #[test]
    fn entries_cover_findings_and_expire() {
        let report = leaky_report();
        let findings = &report.images[0].findings;
        let list = IgnoreList::parse(
            "path:.aws/credentials reason=a\n\
             path:/root/.aws/credentials reason=b expires=2026-05-31\n\
             rule:generic-password reason=c expires=2026-06-01\n",
            "f",
        )
        .unwrap();
        // `.aws/credentials` has a slash, so it is anchored at the root: no match.
        assert!(!list.entries[0].covers(&findings[0]));
        assert!(list.entries[1].covers(&findings[0]));
        assert!(list.covering(&findings[0], today()).is_none(), "expired");
        // Path entries never cover history or config findings.
        assert!(!list.entries[1].covers(&findings[1]));
        assert_eq!(
            list.covering(&findings[2], today())
                .map(|e| e.reason.as_str()),
            Some("c"),
            "applies through its expiry day"
        );
        let warnings = list.warnings(today(), &["generic-password"]);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with(
                "f:2: ignore entry `path:/root/.aws/credentials` expired on 2026-05-31"
            ),
            "{}",
            warnings[0]
        );
        let unknown = IgnoreList::parse("rule:nope reason=x\n", "g")
            .unwrap()
            .warnings(today(), &["generic-password"]);
        assert!(
            unknown[0].contains("names no rule in effect"),
            "{unknown:?}"
        );
    }

    #[test]
    fn fingerprints_match_whatever_the_case() {
        let report = leaky_report();
        let list = IgnoreList::parse("fingerprint:0123456789ABCDEF0123456789ABCDEF reason=r", "f")
            .unwrap();
        let covered: Vec<bool> = report.images[0]
            .findings
            .iter()
            .map(|f| list.covering(f, today()).is_some())
            .collect();
        assert_eq!(covered, [true, true, false]);
    }
}
