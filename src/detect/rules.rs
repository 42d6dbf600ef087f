//! Signature rules: data in `signatures/*.toml` (embedded at build time) plus user files given
//! with `--rules`. Each rule carries its own examples and negative examples.

use std::path::Path;
use std::str::FromStr;

use anyhow::{Context, Result, anyhow, bail};
use regex::bytes::Regex;
use serde::Deserialize;

use super::decoder::Decoder;
use super::keywords::MIN_KEYWORD_LEN;
use super::pattern::{Compile, Pattern, secret_regex};
use super::severity::Severity;
use super::validate::Validator;

include!(concat!(env!("OUT_DIR"), "/builtin_rules.rs"));

/// A rule as written in a TOML file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Unique, kebab-case identifier (`aws-access-key-id`): what reports, ignore files and
    /// `--disable-rule` name the rule by.
    pub id: String,
    /// Human-readable name, shown next to each finding.
    pub name: String,
    /// What the credential is and why it matters; may be left out, but `rules check` asks
    /// for one.
    #[serde(default)]
    pub description: String,
    /// `info`, `low`, `medium`, `high` or `critical` (any case); checked when compiling.
    pub severity: String,
    /// `"generic"` for a catch-all rule (see [`RuleCategory`]); specific when left out.
    #[serde(default)]
    pub category: RuleCategory,
    /// Literal strings (3 bytes or longer, any case) whose presence lets the regex run
    /// nearby; a regex rule needs one at least. For a path-scoped rule (`path`), literals one of
    /// which the file's path must contain.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// The pattern (Rust `regex` syntax, over bytes) that matches the secret: the group named
    /// `secret`, else the first group, else the whole match. Required unless `decoder` is
    /// set.
    pub regex: Option<String>,
    /// Names the decoder that finds this rule's matches by structure (see
    /// `Decoder`); such a rule has no regex and stays out of the keyword prefilter.
    pub decoder: Option<String>,
    /// Makes the rule path-scoped: a regex (Rust `regex` syntax) on the file's path in the image,
    /// written with a leading `/` (`/run/secrets/db_password`; an archive member's path is its
    /// name in the archive, also with a leading `/`). The rule's `regex` then runs once on the
    /// whole file (so `\A` and `\z` are its ends), only for files of at most
    /// [`PATH_SCOPED_MAX_FILE`] bytes whose path matches and contains one of the `keywords`
    /// (which for such a rule filter paths, not content). For files that say what they hold by
    /// their name alone: a docker secret, `jmxremote.password`.
    pub path: Option<String>,
    /// With `path`: paths it matches that the rule still skips (documentation, say); a regex
    /// like `path`.
    pub path_exclude: Option<String>,
    /// Bytes of context on each side of a keyword hit that the regex sees.
    pub window: Option<usize>,
    /// Bytes before a keyword hit where a match may start, when fewer than `window`: the
    /// regex first runs on that shorter neighbourhood, and each secret it finds is confirmed
    /// by running it again with `window` bytes before the match, so that discard alternatives
    /// starting further back (an `Example:` header above) still apply. Only rules whose
    /// matches start close to their keyword may set it.
    pub window_before: Option<usize>,
    /// The secret and the text that leads to it (its key) are on the keyword's line: the
    /// first search then stops at the line's ends, and each secret it finds is confirmed as
    /// with `window_before`. Values of assignment rules cannot span lines.
    #[serde(default)]
    pub single_line: bool,
    /// A regex that must match right where a keyword occurrence ends (anchored there) for
    /// that occurrence to open a window: a cheap necessary condition (`key = ` after `token`)
    /// that spares the rule's regex the many mentions of a common word in prose and code.
    pub after_keyword: Option<String>,
    /// Least Shannon entropy, in bits per byte (0 to 8), a secret must have to be reported;
    /// no minimum when left out.
    pub min_entropy: Option<f64>,
    /// Name of the check a candidate must pass (`jwt`, `github-checksum`,
    /// `pem-private-key`, `openssh-private-key`, `base64-json`); none when left out.
    pub validator: Option<String>,
    /// The Kubernetes Secret type the credential belongs in (one of
    /// [`KUBERNETES_SECRET_TYPES`]); `Opaque` when left out.
    pub kubernetes_secret_type: Option<String>,
    /// Where to read about the credential or how to revoke it; SARIF and GitLab reports
    /// link the `http(s)://` ones.
    #[serde(default)]
    pub references: Vec<String>,
    /// Text the rule must find a secret in (for a decoder rule, whole files, `base64:…` for
    /// binary ones; for a path-scoped rule, `path:/its/path` on the first line and the file
    /// after it); checked by the self-test and `rules check`.
    #[serde(default)]
    pub examples: Vec<String>,
    /// Text the rule must find nothing in (placeholders, near misses); checked like
    /// `examples`.
    #[serde(default)]
    pub negative_examples: Vec<String>,
}

/// Whether a rule looks for one kind of credential or for any value under a credential-like
/// name. When rules of both kinds match the same secret, the specific one names it better.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleCategory {
    /// A credential of one kind (an AWS key, a GitHub token): the default.
    #[default]
    Specific,
    /// Any value assigned to a credential-like name (`password = …`, `SECRET_KEY=…`).
    Generic,
    /// Public material worth listing but no secret (certificates): matched like any rule,
    /// reported in the image's inventory, never as a finding, never counted by a gate.
    Inventory,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    #[serde(default)]
    rules: Vec<RuleSpec>,
}

/// Default bytes of context around a keyword hit.
pub const DEFAULT_WINDOW: usize = 256;
/// Kubernetes Secret types a rule may name.
pub const KUBERNETES_SECRET_TYPES: &[&str] = &[
    "Opaque",
    "kubernetes.io/basic-auth",
    "kubernetes.io/ssh-auth",
    "kubernetes.io/tls",
    "kubernetes.io/dockercfg",
    "kubernetes.io/dockerconfigjson",
    "kubernetes.io/service-account-token",
    "bootstrap.kubernetes.io/token",
];

/// The largest file a path-scoped rule reads: the files they are for hold a value or a few
/// lines, and the bound keeps a mis-named large file from costing a whole-file regex run.
pub const PATH_SCOPED_MAX_FILE: usize = 64 << 10;

/// A compiled rule.
#[derive(Clone, Debug)]
pub struct Rule {
    /// The `id` key: unique and kebab-case; findings carry it as `rule_id`.
    pub id: String,
    /// The `name` key.
    pub name: String,
    /// The `description` key; empty when the file leaves it out.
    pub description: String,
    /// The `severity` key, parsed; a validator may lower or raise it per match.
    pub severity: Severity,
    /// The `category` key: specific unless the file says `"generic"`.
    pub category: RuleCategory,
    /// Lowercase keywords that feed the prefilter.
    pub keywords: Vec<String>,
    /// The `regex` key (compiled at load or on first use, [`Compile`]); for a decoder rule, a
    /// regex that matches nothing. It knows which capture group holds the secret.
    pub pattern: Pattern,
    /// Set for a rule matched by a decoder (by structure) rather than by its regex; its regex
    /// then matches nothing and its keywords do not feed the prefilter.
    pub decoder: Option<Decoder>,
    /// Set for a path-scoped rule ([`RuleSpec::path`]): its regex runs on whole files whose
    /// path this accepts, never in the keyword pass.
    pub path: Option<PathScope>,
    /// The `window` key: bytes of context on each side of a keyword hit that the regex
    /// sees, [`DEFAULT_WINDOW`] when left out, clamped to 16 bytes..64 KiB.
    pub window: usize,
    /// [`RuleSpec::window_before`]; equal to `window` when not set.
    pub window_before: usize,
    /// [`RuleSpec::single_line`].
    pub single_line: bool,
    /// [`RuleSpec::after_keyword`], anchored at the start.
    pub after_keyword: Option<Regex>,
    /// The `min_entropy` key: least Shannon entropy of a secret, in bits per byte.
    pub min_entropy: Option<f64>,
    /// The `validator` key, parsed.
    pub validator: Option<Validator>,
    /// The `kubernetes_secret_type` key: one of [`KUBERNETES_SECRET_TYPES`], `Opaque` when
    /// left out. A decoder may know better for one finding.
    pub kubernetes_secret_type: String,
    /// The `references` key: URLs about the credential.
    pub references: Vec<String>,
    /// The `examples` key: text the rule must match (see [`super::selftest`]).
    pub examples: Vec<String>,
    /// The `negative_examples` key: text the rule must not match.
    pub negative_examples: Vec<String>,
    /// Which file the rule came from, for messages.
    pub source: String,
}

/// The files a path-scoped rule reads: compiled [`RuleSpec::path`] and
/// [`RuleSpec::path_exclude`], plus the rule's keywords as a cheap test on the path.
#[derive(Clone, Debug)]
pub struct PathScope {
    /// Paths the rule reads.
    pub include: regex::Regex,
    /// Paths among those it still skips.
    pub exclude: Option<regex::Regex>,
    /// Lowercase literals one of which the lowercase path must contain (the rule's keywords).
    pub literals: Vec<String>,
}

impl PathScope {
    /// Whether the rule reads the file at `path`, written with a leading `/`.
    pub fn accepts(&self, path: &str) -> bool {
        let lower = path.to_ascii_lowercase();
        self.literals
            .iter()
            .any(|literal| lower.contains(literal.as_str()))
            && self.include.is_match(path)
            && !self
                .exclude
                .as_ref()
                .is_some_and(|exclude| exclude.is_match(path))
    }
}

impl Rule {
    /// Whether the first search sees less before a keyword than `window`, so that what it
    /// finds must be confirmed with the whole look-back.
    pub fn narrowed(&self) -> bool {
        self.window_before < self.window || self.single_line
    }

    /// Whether the rule is a catch-all (`password = …`) that a specific rule matching the
    /// same secret takes precedence over.
    pub fn is_generic(&self) -> bool {
        self.category == RuleCategory::Generic
    }

    /// Whether the rule lists public material (`category = "inventory"`) rather than finding
    /// secrets.
    pub fn is_inventory(&self) -> bool {
        self.category == RuleCategory::Inventory
    }

    /// Compiles a rule, checking everything that can be checked without running it; `when`
    /// says whether its regex is compiled now or on first use.
    pub fn compile(spec: RuleSpec, source: &str, when: Compile) -> Result<Rule> {
        let id = spec.id.clone();
        Rule::from_spec(spec, source, when)
            .map_err(|problem| anyhow!("{source}: rule {id}: {problem}"))
    }

    /// [`Rule::compile`]; a problem is described without naming the file and rule. Checks run
    /// in field order, so that a rule with several problems reports the same one every time.
    fn from_spec(spec: RuleSpec, source: &str, when: Compile) -> Result<Rule, String> {
        check_id(&spec.id)?;
        let severity = spec
            .severity
            .parse::<Severity>()
            .map_err(|e| e.to_string())?;
        let decoder = parse_name::<Decoder>(spec.decoder.as_deref())?;
        let keywords = prefilter_keywords(&spec.keywords, decoder.is_some())?;
        let pattern = rule_pattern(spec.regex.as_deref(), decoder, when)?;
        let path = path_scope(&spec, &keywords)?;
        let (window, window_before) = windows(spec.window, spec.window_before)?;
        let after_keyword = spec
            .after_keyword
            .as_deref()
            .map(compile_after_keyword)
            .transpose()?;
        let validator = parse_name::<Validator>(spec.validator.as_deref())?;
        let kubernetes_secret_type =
            kubernetes_secret_type(spec.kubernetes_secret_type.as_deref())?;
        if let Some(entropy) = spec.min_entropy
            && !(0.0..=8.0).contains(&entropy)
        {
            return Err(format!("min_entropy {entropy} is outside 0..8"));
        }
        Ok(Rule {
            id: spec.id,
            name: spec.name,
            description: spec.description,
            severity,
            category: spec.category,
            keywords,
            pattern,
            decoder,
            path,
            window,
            window_before,
            single_line: spec.single_line,
            after_keyword,
            min_entropy: spec.min_entropy,
            validator,
            kubernetes_secret_type,
            references: spec.references,
            examples: spec.examples,
            negative_examples: spec.negative_examples,
            source: source.to_string(),
        })
    }
}

fn check_id(id: &str) -> Result<(), String> {
    let kebab_case = id
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if id.is_empty() || !kebab_case {
        return Err("id must be non-empty kebab-case (a-z, 0-9, -)".into());
    }
    Ok(())
}

/// Parses an optional name (a severity, decoder or validator).
fn parse_name<T>(name: Option<&str>) -> Result<Option<T>, String>
where
    T: FromStr<Err = anyhow::Error>,
{
    name.map(|name| name.parse::<T>().map_err(|e| e.to_string()))
        .transpose()
}

/// The keywords that feed the prefilter, lowercase. A regex rule needs one at least: without
/// any its regex would never run.
fn prefilter_keywords(keywords: &[String], decoder_rule: bool) -> Result<Vec<String>, String> {
    if !decoder_rule && keywords.is_empty() {
        return Err("has no keywords (they feed the prefilter; one at least)".into());
    }
    keywords
        .iter()
        .map(|keyword| {
            if keyword.len() < MIN_KEYWORD_LEN {
                return Err(format!(
                    "keyword {keyword:?} is shorter than {MIN_KEYWORD_LEN} bytes"
                ));
            }
            Ok(keyword.to_ascii_lowercase())
        })
        .collect()
}

/// The rule's regex. A decoder rule has no regex of its own and gets one that matches nothing.
fn rule_pattern(
    regex: Option<&str>,
    decoder: Option<Decoder>,
    when: Compile,
) -> Result<Pattern, String> {
    match (regex, decoder) {
        (Some(_), Some(decoder)) => Err(format!(
            "has both a regex and decoder {:?} (a decoder rule is matched by code)",
            decoder.as_str()
        )),
        (Some(regex), None) => Pattern::new(regex, when),
        (None, Some(_)) => Ok(Pattern::never_matches()),
        (None, None) => Err("has no regex".into()),
    }
}

/// The compiled path scope of a path-scoped rule. Such a rule reads whole files, so the keys
/// that shape keyword windows mean nothing for it, and a decoder rule has no regex to run.
fn path_scope(spec: &RuleSpec, keywords: &[String]) -> Result<Option<PathScope>, String> {
    let Some(include) = spec.path.as_deref() else {
        if spec.path_exclude.is_some() {
            return Err("has path_exclude without path".into());
        }
        return Ok(None);
    };
    if spec.decoder.is_some() {
        return Err("has both a path and a decoder".into());
    }
    if spec.window.is_some()
        || spec.window_before.is_some()
        || spec.single_line
        || spec.after_keyword.is_some()
    {
        return Err(
            "is path-scoped and reads whole files: window, window_before, single_line and after_keyword do not apply"
                .into(),
        );
    }
    let compile = |key: &str, regex: &str| {
        regex::Regex::new(regex).map_err(|e| format!("{key} does not compile: {e}"))
    };
    Ok(Some(PathScope {
        include: compile("path", include)?,
        exclude: spec
            .path_exclude
            .as_deref()
            .map(|regex| compile("path_exclude", regex))
            .transpose()?,
        literals: keywords.to_vec(),
    }))
}

/// `(window, window_before)`: the window clamped to 16 bytes..64 KiB, and the look-back, which
/// defaults to the window and may not exceed it.
fn windows(window: Option<usize>, before: Option<usize>) -> Result<(usize, usize), String> {
    let window = window.unwrap_or(DEFAULT_WINDOW).clamp(16, 1 << 16);
    match before {
        Some(before) if before > window => Err(format!(
            "window_before {before} is larger than window {window}"
        )),
        Some(before) => Ok((window, before)),
        None => Ok((window, window)),
    }
}

/// `after_keyword`, anchored where the keyword ends.
fn compile_after_keyword(gate: &str) -> Result<Regex, String> {
    secret_regex(&format!("^(?:{gate})"))
        .map_err(|e| format!("after_keyword does not compile: {e}"))
}

/// The rule's Kubernetes Secret type, `Opaque` unless it names one of
/// [`KUBERNETES_SECRET_TYPES`].
fn kubernetes_secret_type(named: Option<&str>) -> Result<String, String> {
    let kind = named.unwrap_or("Opaque");
    if !KUBERNETES_SECRET_TYPES.contains(&kind) {
        return Err(format!("unknown kubernetes_secret_type {kind:?}"));
    }
    Ok(kind.to_string())
}

/// Parses one rule file's text, compiling every regex now; `source` names it in errors.
pub fn parse_rule_file(text: &str, source: &str) -> Result<Vec<Rule>> {
    parse_rule_file_compiling(text, source, Compile::Now)
}

/// [`parse_rule_file`], compiling the regexes as `when` says.
fn parse_rule_file_compiling(text: &str, source: &str, when: Compile) -> Result<Vec<Rule>> {
    let file: RuleFile = toml::from_str(text).map_err(|e| {
        // toml's message spans several lines with a source excerpt; keep it to one.
        let message = e.message().to_string();
        match e.span() {
            Some(span) => {
                let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                anyhow!("{source}: line {line}: {message}")
            }
            None => anyhow!("{source}: {message}"),
        }
    })?;
    file.rules
        .into_iter()
        .map(|spec| Rule::compile(spec, source, when))
        .collect()
}

/// The built-in rules.
pub fn builtin_rules() -> Result<Vec<Rule>> {
    let mut rules = Vec::new();
    for (name, text) in BUILTIN_RULE_FILES {
        let source = format!("signatures/{name}");
        rules.extend(parse_rule_file_compiling(
            text,
            &source,
            Compile::OnFirstUse,
        )?);
    }
    Ok(rules)
}

/// Rules from a user file, or from every `*.toml` file of a directory.
pub fn load_user_rules(path: &Path) -> Result<Vec<Rule>> {
    let mut files = Vec::new();
    if path.is_dir() {
        for entry in std::fs::read_dir(path).with_context(|| format!("{}", path.display()))? {
            let file = entry?.path();
            if file.extension().is_some_and(|ext| ext == "toml") {
                files.push(file);
            }
        }
        files.sort();
        if files.is_empty() {
            bail!("{}: no .toml rule files in this directory", path.display());
        }
    } else {
        files.push(path.to_path_buf());
    }
    let mut rules = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("{}: cannot read rule file", file.display()))?;
        rules.extend(parse_rule_file(&text, &file.display().to_string())?);
    }
    Ok(rules)
}

/// What the engine finds beyond what the rules say (which files it reads and how): part of
/// [`rules_digest`], so that layers cached by an engine that found less are scanned again.
/// Bump it when the engine comes to find what it did not: 2 reads UTF-16 text and runs
/// path-scoped rules.
/// 3 lists certificates as inventory and marks published key material.
const ENGINE_REVISION: &str = "engine-3";

/// A digest of the rule set, so cached results are dropped when rules change.
pub fn rules_digest(rules: &[Rule]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(ENGINE_REVISION.as_bytes());
    hasher.update([0]);
    for rule in rules {
        for part in [
            rule.id.as_str(),
            rule.severity.as_str(),
            rule.pattern.as_str(),
            &rule.keywords.join(","),
            &format!(
                "{:?}{:?}{}{}{:?}",
                rule.min_entropy,
                rule.validator,
                rule.window,
                rule.decoder.map(|d| d.as_str()).unwrap_or_default(),
                rule.category
            ),
            &rule.path.as_ref().map_or_else(String::new, |scope| {
                format!(
                    "{}\0{}",
                    scope.include.as_str(),
                    scope.exclude.as_ref().map_or("", |e| e.as_str())
                )
            }),
        ] {
            hasher.update(part.as_bytes());
            hasher.update([0]);
        }
    }
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[rules]]
id = "demo-token"
name = "Demo token"
description = "A demo."
severity = "high"
keywords = ["demo_"]
regex = '''(demo_[a-z0-9]{8})'''
examples = ["demo_abcdef12"]
negative_examples = ["demo_abc"]
"#;

    #[test]
    fn rule_regexes_are_ascii_and_dot_is_any_byte() {
        let regex = secret_regex(r"(?i)token\W.{0,8}\b(\w{6})\b").unwrap();
        // A non-UTF-8 byte between the keyword and the value, as in a binary file.
        let haystack = b"TOKEN=\xff\xfe abc123 rest";
        let captures = regex.captures(haystack).expect("dot spans non-UTF-8 bytes");
        assert_eq!(&captures[1], b"abc123");
        // `\w` is ASCII: a Unicode letter is not part of a word.
        assert!(
            secret_regex(r"^\w+$")
                .unwrap()
                .find("é".as_bytes())
                .is_none()
        );
        // Opting back in to Unicode still works.
        assert!(
            secret_regex(r"(?u:^\w+$)")
                .unwrap()
                .is_match("é".as_bytes())
        );
    }

    #[test]
    fn parses_a_rule_file() {
        let rules = parse_rule_file(GOOD, "good.toml").unwrap();
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].pattern.secret_group(), 1);
        assert_eq!(rules[0].window, DEFAULT_WINDOW);
        assert_eq!(rules[0].kubernetes_secret_type, "Opaque");
    }

    #[test]
    fn errors_name_the_file_and_rule() {
        let bad = GOOD.replace("(demo_[a-z0-9]{8})", "(demo_[a-z0-9]{8}");
        let err = parse_rule_file(&bad, "bad.toml").unwrap_err().to_string();
        assert!(
            err.starts_with("bad.toml: rule demo-token: regex does not compile"),
            "{err}"
        );
        let bad = GOOD.replace("keywords = [\"demo_\"]", "keywords = []");
        let err = parse_rule_file(&bad, "bad.toml").unwrap_err().to_string();
        assert!(err.contains("rule demo-token: has no keywords"), "{err}");
        let err = parse_rule_file("[[rules]]\nid = 3\n", "x.toml")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("x.toml: line 2:"), "{err}");
    }

    #[test]
    fn decoder_rules_need_no_regex_and_may_not_have_one() {
        let decoder = r#"
[[rules]]
id = "demo-structure"
name = "Demo structure"
severity = "high"
decoder = "pkcs12"
"#;
        let rules = parse_rule_file(decoder, "d.toml").unwrap();
        assert_eq!(rules[0].decoder, Some(Decoder::Pkcs12));
        assert!(!rules[0].pattern.regex().is_match(b"anything at all"));
        let both = decoder.replace("decoder = ", "regex = 'x'\ndecoder = ");
        let err = parse_rule_file(&both, "d.toml").unwrap_err().to_string();
        assert!(err.contains("has both a regex and decoder"), "{err}");
        let unknown = decoder.replace("pkcs12", "nope");
        let err = parse_rule_file(&unknown, "d.toml").unwrap_err().to_string();
        assert!(err.contains("unknown decoder \"nope\""), "{err}");
        let neither = decoder.replace("decoder = \"pkcs12\"", "keywords = [\"abc\"]");
        let err = parse_rule_file(&neither, "d.toml").unwrap_err().to_string();
        assert!(err.ends_with("rule demo-structure: has no regex"), "{err}");
    }

    #[test]
    fn category_is_specific_unless_the_rule_says_generic() {
        let rules = parse_rule_file(GOOD, "good.toml").unwrap();
        assert_eq!(rules[0].category, RuleCategory::Specific);
        assert!(!rules[0].is_generic());
        let generic = GOOD.replace(
            "severity = \"high\"",
            "severity = \"high\"\ncategory = \"generic\"",
        );
        assert!(parse_rule_file(&generic, "g.toml").unwrap()[0].is_generic());
        let unknown = GOOD.replace(
            "severity = \"high\"",
            "severity = \"high\"\ncategory = \"vague\"",
        );
        let err = parse_rule_file(&unknown, "u.toml").unwrap_err().to_string();
        assert!(err.starts_with("u.toml: line 7:"), "{err}");
        assert!(err.contains("unknown variant `vague`"), "{err}");
    }

    #[test]
    fn path_scoped_rules_read_whole_files_at_their_paths() {
        let scoped = r#"
[[rules]]
id = "demo-file"
name = "Demo file"
severity = "high"
keywords = ["secret"]
path = '(?:^|/)secrets/[^/]+$'
path_exclude = '^/usr/share/doc/'
regex = '\A(\w{8,})\n?\z'
"#;
        let rules = parse_rule_file(scoped, "p.toml").unwrap();
        let scope = rules[0].path.as_ref().expect("path-scoped");
        assert!(scope.accepts("/run/secrets/db"));
        assert!(!scope.accepts("/usr/share/doc/secrets/db"));
        assert!(!scope.accepts("/run/other/db"));
        for (added, problem) in [
            (
                "window = 64",
                "window, window_before, single_line and after_keyword do not apply",
            ),
            ("single_line = true", "do not apply"),
            ("decoder = \"pkcs12\"", "has both a regex and decoder"),
        ] {
            let bad = scoped.replace(
                "severity = \"high\"",
                &format!("severity = \"high\"\n{added}"),
            );
            let err = parse_rule_file(&bad, "p.toml").unwrap_err().to_string();
            assert!(err.contains(problem), "{err}");
        }
        let bad = scoped.replace("path = '", "path = '(");
        let err = parse_rule_file(&bad, "p.toml").unwrap_err().to_string();
        assert!(err.contains("path does not compile"), "{err}");
        let bad = scoped.replace("path = '(?:^|/)secrets/[^/]+$'\n", "");
        let err = parse_rule_file(&bad, "p.toml").unwrap_err().to_string();
        assert!(err.contains("has path_exclude without path"), "{err}");
    }

    #[test]
    fn each_problem_is_reported_with_the_file_and_rule() {
        let keywords = "keywords = [\"demo_\"]";
        let added = |line: &str| format!("{keywords}\n{line}");
        for (from, to, problem) in [
            (
                "\"demo-token\"",
                "\"Demo_Token\"".to_string(),
                "id must be non-empty kebab-case",
            ),
            (
                "\"high\"",
                "\"dire\"".to_string(),
                "unknown severity \"dire\"",
            ),
            (
                keywords,
                "keywords = [\"de\"]".to_string(),
                "keyword \"de\" is shorter than 3 bytes",
            ),
            (
                keywords,
                added("after_keyword = '('"),
                "after_keyword does not compile",
            ),
            (
                keywords,
                added("validator = \"nope\""),
                "unknown validator \"nope\"",
            ),
            (
                keywords,
                added("kubernetes_secret_type = \"Bogus\""),
                "unknown kubernetes_secret_type \"Bogus\"",
            ),
            (
                keywords,
                added("min_entropy = 9.5"),
                "min_entropy 9.5 is outside 0..8",
            ),
        ] {
            let bad = GOOD.replacen(from, &to, 1);
            let err = parse_rule_file(&bad, "bad.toml").unwrap_err().to_string();
            assert!(err.starts_with("bad.toml: rule "), "{err}");
            assert!(err.contains(problem), "{err}");
        }
    }
}
