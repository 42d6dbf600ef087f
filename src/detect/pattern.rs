//! A rule's regex: its syntax checked when the rule is loaded, compiled either then or when the
//! rule first has a keyword hit to confirm.
//!
//! Why lazily: the built-in set has hundreds of rules, and compiling each regex (NFA, one-pass
//! DFA, reverse automata) took about 60 MB and a quarter of a second of every run, while a
//! typical image wakes a few dozen rules. The built-in rules are all compiled by the test suite
//! (every rule runs its own examples), so for them a check of the syntax at load time is
//! enough; a user's `--rules` file is compiled at once, so that every problem with it is an
//! error before the scan starts.

use std::sync::OnceLock;

use regex::bytes::{Regex, RegexBuilder};

/// A regex that matches no input: what a decoder rule, matched by code, runs.
const NEVER_MATCHES: &str = r"(?-u:[^\x00-\xFF])";

/// When a rule's regex is compiled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compile {
    /// While loading: a user's rule file, whose problems must all show before the scan.
    Now,
    /// On the first keyword hit: the built-in rules, compiled by the test suite.
    OnFirstUse,
}

/// A rule's regex and the capture group that holds the secret.
#[derive(Clone, Debug)]
pub struct Pattern {
    text: String,
    compiled: OnceLock<Compiled>,
}

#[derive(Clone, Debug)]
struct Compiled {
    regex: Regex,
    secret_group: usize,
}

impl Pattern {
    /// Checks `text` (and with [`Compile::Now`] compiles it); the error says what is wrong.
    pub fn new(text: &str, when: Compile) -> Result<Pattern, String> {
        let pattern = Pattern {
            text: text.to_string(),
            compiled: OnceLock::new(),
        };
        match when {
            Compile::Now => {
                let compiled = compile(text).map_err(|e| format!("regex does not compile: {e}"))?;
                let _ = pattern.compiled.set(compiled);
            }
            Compile::OnFirstUse => check_syntax(text)?,
        }
        Ok(pattern)
    }

    /// The regex of a decoder rule: it matches nothing.
    pub fn never_matches() -> Pattern {
        Pattern::new(NEVER_MATCHES, Compile::Now).expect("the empty class compiles")
    }

    /// The regex as written in the rule file.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The compiled regex.
    pub fn regex(&self) -> &Regex {
        &self.compiled().regex
    }

    /// Index of the capture group holding the secret: the group named `secret`, else the first
    /// group, else the whole match.
    pub fn secret_group(&self) -> usize {
        self.compiled().secret_group
    }

    fn compiled(&self) -> &Compiled {
        self.compiled.get_or_init(|| {
            compile(&self.text).unwrap_or_else(|error| {
                // Only a rule whose syntax was checked gets here, and every built-in rule is
                // compiled by the suite; should one still fail (a size limit), it is said once
                // and the rule matches nothing rather than stopping the scan.
                eprintln!(
                    "warning: rule regex {:?} does not compile: {error}",
                    self.text
                );
                compile(NEVER_MATCHES).expect("the empty class compiles")
            })
        })
    }
}

/// A rule's regex over file bytes, in ASCII mode: `\w`, `\d`, `\s`, `\b` and case folding are
/// ASCII, and `.` is any byte. Secrets are ASCII, and Unicode classes cost memory per rule (a
/// Unicode `.{0,160}` alone compiles to thousands of states; with 800+ rules the compiled set
/// took over 300 MB), while `.` over any byte also lets a context pattern cross the non-UTF-8
/// bytes of a binary file. A rule may still opt in with `(?u:…)`.
///
/// The lazy-DFA cache each regex keeps per matching thread stays at its default (2 MiB at
/// most): capped at 256 KiB it thrashed on keyword-dense text (the detector bench's full set
/// took twice as long, rebuilding states and falling back to the backtracker).
pub fn secret_regex(regex: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(regex).unicode(false).build()
}

fn compile(text: &str) -> Result<Compiled, regex::Error> {
    let regex = secret_regex(text)?;
    let secret_group = match regex
        .capture_names()
        .position(|name| name == Some("secret"))
    {
        Some(index) => index,
        None if regex.captures_len() > 1 => 1,
        None => 0,
    };
    Ok(Compiled {
        regex,
        secret_group,
    })
}

/// The checks [`secret_regex`] makes before it builds automata: the parser with the same
/// settings (ASCII mode, and matching bytes that need not be UTF-8).
fn check_syntax(text: &str) -> Result<(), String> {
    regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(text)
        .map(drop)
        .map_err(|e| format!("regex does not compile: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lazy_pattern_rejects_what_the_compiler_rejects() {
        for bad in [
            "(",
            "a{2,1}",
            r"\p{Greek}",
            "(?P<secret>a)(?P<secret>b)",
            r"\xFF+(?u:é)[",
        ] {
            let lazy = Pattern::new(bad, Compile::OnFirstUse).unwrap_err();
            let now = Pattern::new(bad, Compile::Now).unwrap_err();
            assert!(lazy.starts_with("regex does not compile"), "{bad}: {lazy}");
            assert!(now.starts_with("regex does not compile"), "{bad}: {now}");
        }
    }

    #[test]
    fn a_lazy_pattern_compiles_on_first_use_to_the_same_regex() {
        let text = r"key=(?P<secret>[a-z]{4})\b";
        let lazy = Pattern::new(text, Compile::OnFirstUse).unwrap();
        assert!(lazy.compiled.get().is_none());
        let now = Pattern::new(text, Compile::Now).unwrap();
        assert_eq!(lazy.secret_group(), now.secret_group());
        let hit = |p: &Pattern| {
            p.regex()
                .captures(b"x key=abcd y")
                .map(|c| c[p.secret_group()].to_vec())
        };
        assert_eq!(hit(&lazy), Some(b"abcd".to_vec()));
        assert_eq!(hit(&lazy), hit(&now));
        assert_eq!(lazy.as_str(), text);
    }

    #[test]
    fn the_secret_group_is_named_then_first_then_whole() {
        let group = |text: &str| Pattern::new(text, Compile::Now).unwrap().secret_group();
        assert_eq!(group("(a)(?P<secret>b)"), 2);
        assert_eq!(group("x(a)(b)"), 1);
        assert_eq!(group("ab"), 0);
    }
}
