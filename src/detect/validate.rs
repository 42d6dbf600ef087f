//! Checks that a candidate secret really has the shape its rule claims: built-in checksums,
//! structure that decodes, and the filters that drop placeholders and low-entropy values.

use std::str::FromStr;

use anyhow::bail;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};

use super::password_hash;
use super::severity::Severity;

/// A named structural check a rule can ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validator {
    /// GitHub's `<prefix>_<30 base62><6 base62 CRC32>` tokens.
    GithubChecksum,
    /// Three base64url parts whose header and payload are JSON objects (header with `alg`).
    Jwt,
    /// A PEM body that decodes to a DER SEQUENCE.
    PemPrivateKey,
    /// An `openssh-key-v1` body; its cipher name says whether the key is encrypted.
    OpensshPrivateKey,
    /// Base64 of a JSON object.
    Base64Json,
    /// npm's `npm_<30 base62><6 base62 CRC32>` tokens (GitHub's design).
    NpmChecksum,
    /// `pypi-` + base64url of a version 2 macaroon whose location is `pypi.org` or
    /// `test.pypi.org`, with an identifier and a 32-byte signature.
    PypiMacaroon,
    /// Azure DevOps personal access tokens in the 84-character format: base62, `AZDO` at
    /// positions 76 to 79.
    AzureDevopsPat,
    /// A password hash (crypt, bcrypt, Argon2, Cisco, Django…): reported as such, at low
    /// severity unless it is the hash of an empty or default password (see [`super::password_hash`]).
    PasswordHash,
}

/// Every validator's name, as rule files write it.
pub const VALIDATOR_NAMES: &[&str] = &[
    "github-checksum",
    "jwt",
    "pem-private-key",
    "openssh-private-key",
    "base64-json",
    "npm-checksum",
    "pypi-macaroon",
    "azure-devops-pat",
    "password-hash",
];

impl FromStr for Validator {
    type Err = anyhow::Error;

    fn from_str(name: &str) -> anyhow::Result<Self> {
        Ok(match name {
            "github-checksum" => Validator::GithubChecksum,
            "jwt" => Validator::Jwt,
            "pem-private-key" => Validator::PemPrivateKey,
            "openssh-private-key" => Validator::OpensshPrivateKey,
            "base64-json" => Validator::Base64Json,
            "npm-checksum" => Validator::NpmChecksum,
            "pypi-macaroon" => Validator::PypiMacaroon,
            "azure-devops-pat" => Validator::AzureDevopsPat,
            "password-hash" => Validator::PasswordHash,
            _ => bail!(
                "unknown validator {name:?} (known: {})",
                VALIDATOR_NAMES.join(", ")
            ),
        })
    }
}

/// What a validator concluded about a candidate.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Not a secret of this kind.
    Reject,
    /// A secret; possibly with facts for the report and a different severity (an encrypted key
    /// is less urgent than a clear one).
    Accept {
        details: Vec<(String, String)>,
        severity: Option<Severity>,
    },
}

impl Verdict {
    fn plain() -> Verdict {
        Verdict::Accept {
            details: Vec::new(),
            severity: None,
        }
    }

    fn from_bool(ok: bool) -> Verdict {
        if ok {
            Verdict::plain()
        } else {
            Verdict::Reject
        }
    }
}

impl Validator {
    /// The name rule files use for this validator.
    pub fn name(self) -> &'static str {
        match self {
            Validator::GithubChecksum => "github-checksum",
            Validator::Jwt => "jwt",
            Validator::PemPrivateKey => "pem-private-key",
            Validator::OpensshPrivateKey => "openssh-private-key",
            Validator::Base64Json => "base64-json",
            Validator::NpmChecksum => "npm-checksum",
            Validator::PypiMacaroon => "pypi-macaroon",
            Validator::AzureDevopsPat => "azure-devops-pat",
            Validator::PasswordHash => "password-hash",
        }
    }

    /// Checks one candidate secret.
    pub fn check(self, secret: &[u8]) -> Verdict {
        let Ok(text) = std::str::from_utf8(secret) else {
            return Verdict::Reject;
        };
        match self {
            Validator::GithubChecksum => Verdict::from_bool(github_checksum_ok(text)),
            Validator::Jwt => Verdict::from_bool(jwt_ok(text)),
            Validator::PemPrivateKey => Verdict::from_bool(
                pem_body(text).is_some_and(|der| der.first() == Some(&0x30) && der.len() >= 32),
            ),
            Validator::OpensshPrivateKey => openssh_verdict(text),
            Validator::Base64Json => Verdict::from_bool(
                decode_base64_any(text.trim())
                    .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
                    .is_some_and(|value| value.is_object()),
            ),
            Validator::NpmChecksum => {
                Verdict::from_bool(text.starts_with("npm_") && github_checksum_ok(text))
            }
            Validator::PypiMacaroon => pypi_verdict(text),
            Validator::AzureDevopsPat => Verdict::from_bool(azure_devops_pat_ok(text)),
            Validator::PasswordHash => match password_hash::check(text) {
                Some(checked) => Verdict::Accept {
                    details: checked.details,
                    severity: Some(checked.severity),
                },
                None => Verdict::Reject,
            },
        }
    }
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Base62 of `value`, left-padded with `0` to six characters, as GitHub token checksums are.
pub fn base62_checksum(value: u32) -> String {
    let mut digits = [b'0'; 6];
    let mut rest = value as u64;
    for slot in digits.iter_mut().rev() {
        *slot = BASE62[(rest % 62) as usize];
        rest /= 62;
    }
    String::from_utf8(digits.to_vec()).expect("ascii")
}

/// `ghp_` + 30 random base62 + CRC32 of the random part in base62 (6 chars).
fn github_checksum_ok(token: &str) -> bool {
    let Some((_, body)) = token.split_once('_') else {
        return false;
    };
    if body.len() != 36 || !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    let (random, checksum) = body.split_at(30);
    base62_checksum(crc32fast::hash(random.as_bytes())) == checksum
}

/// The 84-character Azure DevOps PAT: 52 random characters, Microsoft's fixed signature
/// characters, `AZDO` at positions 76 to 79 (counting from 0) and 4 more; letters and digits
/// only.
fn azure_devops_pat_ok(token: &str) -> bool {
    token.len() == 84
        && token.bytes().all(|b| b.is_ascii_alphanumeric())
        && &token[76..80] == "AZDO"
}

/// Macaroon v2 field types (libmacaroons' binary format).
const MACAROON_EOS: u8 = 0;
const MACAROON_LOCATION: u8 = 1;
const MACAROON_IDENTIFIER: u8 = 2;
const MACAROON_VID: u8 = 4;
const MACAROON_SIGNATURE: u8 = 6;

/// A macaroon v2 read far enough to say whose it is: its location, its identifier, how many
/// caveats it carries, and that it ends in a 32-byte signature.
#[derive(Debug, PartialEq)]
struct Macaroon {
    location: String,
    identifier: Vec<u8>,
    caveats: Vec<Vec<u8>>,
}

/// One field: type byte, LEB128 length, bytes.
fn macaroon_field(bytes: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&kind, mut rest) = bytes.split_first()?;
    if kind == MACAROON_EOS {
        return Some((kind, &[], rest));
    }
    let mut length = 0usize;
    for shift in (0..35).step_by(7) {
        let (&byte, after) = rest.split_first()?;
        rest = after;
        length |= usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
    }
    if length > rest.len() {
        return None;
    }
    let (value, rest) = rest.split_at(length);
    Some((kind, value, rest))
}

fn parse_macaroon(bytes: &[u8]) -> Option<Macaroon> {
    let rest = bytes.strip_prefix(&[2u8])?;
    let (kind, location, rest) = macaroon_field(rest)?;
    if kind != MACAROON_LOCATION {
        return None;
    }
    let (kind, identifier, mut rest) = macaroon_field(rest)?;
    if kind != MACAROON_IDENTIFIER || identifier.is_empty() {
        return None;
    }
    let (kind, _, after) = macaroon_field(rest)?;
    if kind != MACAROON_EOS {
        return None;
    }
    rest = after;
    let mut caveats = Vec::new();
    // Caveats: [location] identifier [vid] EOS, until a lone EOS.
    loop {
        let (kind, value, after) = macaroon_field(rest)?;
        rest = after;
        match kind {
            MACAROON_EOS => break,
            MACAROON_LOCATION => {
                let (kind, value, after) = macaroon_field(rest)?;
                if kind != MACAROON_IDENTIFIER {
                    return None;
                }
                caveats.push(value.to_vec());
                rest = after;
            }
            MACAROON_IDENTIFIER => caveats.push(value.to_vec()),
            _ => return None,
        }
        let (mut kind, _, mut after) = macaroon_field(rest)?;
        if kind == MACAROON_VID {
            (kind, _, after) = macaroon_field(after)?;
        }
        if kind != MACAROON_EOS || caveats.len() > 64 {
            return None;
        }
        rest = after;
    }
    let (kind, signature, rest) = macaroon_field(rest)?;
    (kind == MACAROON_SIGNATURE && signature.len() == 32 && rest.is_empty()).then(|| Macaroon {
        location: String::from_utf8_lossy(location).into_owned(),
        identifier: identifier.to_vec(),
        caveats,
    })
}

/// A PyPI token: a whole macaroon from pypi.org (or its test instance). Its caveats say what
/// it may upload to, when PyPI wrote them as JSON.
fn pypi_verdict(token: &str) -> Verdict {
    let Some(body) = token.strip_prefix("pypi-") else {
        return Verdict::Reject;
    };
    let Some(macaroon) = URL_SAFE_NO_PAD
        .decode(body.trim_end_matches('='))
        .ok()
        .and_then(|bytes| parse_macaroon(&bytes))
    else {
        return Verdict::Reject;
    };
    if !matches!(macaroon.location.as_str(), "pypi.org" | "test.pypi.org") {
        return Verdict::Reject;
    }
    let mut details = vec![("index".to_string(), macaroon.location.clone())];
    if let Some(scope) = pypi_scope(&macaroon.caveats) {
        details.push(("scope".to_string(), scope));
    }
    Verdict::Accept {
        details,
        severity: None,
    }
}

/// What a PyPI token's caveats restrict it to: `{"permissions": "user"}` (every project of
/// the user) or `{"permissions": {"projects": [...]}}`, as PyPI writes them.
fn pypi_scope(caveats: &[Vec<u8>]) -> Option<String> {
    for caveat in caveats {
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(caveat) else {
            continue;
        };
        match value.get("permissions") {
            Some(serde_json::Value::String(scope)) if scope == "user" => {
                return Some("every project of the user".to_string());
            }
            Some(permissions) => {
                let projects: Vec<&str> = permissions
                    .get("projects")
                    .and_then(|p| p.as_array())
                    .map(|list| list.iter().filter_map(|p| p.as_str()).collect())
                    .unwrap_or_default();
                if !projects.is_empty() {
                    return Some(format!("projects: {}", projects.join(", ")));
                }
            }
            None => {}
        }
    }
    None
}

fn decode_base64_any(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    STANDARD_NO_PAD
        .decode(text)
        .or_else(|_| URL_SAFE_NO_PAD.decode(text))
        .ok()
}

fn jwt_ok(token: &str) -> bool {
    let parts: Vec<&str> = token.trim().split('.').collect();
    if parts.len() != 3 {
        return false;
    }
    let json = |part: &str| {
        URL_SAFE_NO_PAD
            .decode(part.trim_end_matches('='))
            .ok()
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
    };
    let (Some(header), Some(payload)) = (json(parts[0]), json(parts[1])) else {
        return false;
    };
    header.get("alg").is_some_and(|alg| alg.is_string())
        && payload.is_object()
        // An unsigned token ("alg": "none") grants nothing by itself.
        && (!parts[2].is_empty() || header["alg"] != "none")
}

/// The decoded body of a PEM block (between the BEGIN and END lines), skipping RFC 1421
/// headers such as `Proc-Type:`.
pub fn pem_body(block: &str) -> Option<Vec<u8>> {
    let mut body = String::new();
    for line in block.lines() {
        let line = line.trim();
        if line.starts_with("-----") || line.contains(':') || line.is_empty() {
            continue;
        }
        body.push_str(line);
    }
    let body = body.trim_end_matches('=');
    STANDARD_NO_PAD
        .decode(body)
        .ok()
        .or_else(|| STANDARD.decode(body).ok())
}

fn openssh_verdict(block: &str) -> Verdict {
    let Some(bytes) = pem_body(block) else {
        return Verdict::Reject;
    };
    let Some(rest) = bytes.strip_prefix(b"openssh-key-v1\0") else {
        return Verdict::Reject;
    };
    let Some(cipher) = ssh_string(rest) else {
        return Verdict::Reject;
    };
    let cipher = String::from_utf8_lossy(cipher).into_owned();
    if cipher == "none" {
        Verdict::plain()
    } else {
        Verdict::Accept {
            details: vec![("encrypted".into(), format!("yes ({cipher})"))],
            severity: Some(Severity::Medium),
        }
    }
}

/// An SSH wire-format string: u32 big-endian length, then the bytes.
fn ssh_string(bytes: &[u8]) -> Option<&[u8]> {
    let length = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    bytes.get(4..4 + length)
}

/// Shannon entropy in bits per byte.
pub fn shannon_entropy(bytes: &[u8]) -> f64 {
    if bytes.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in bytes {
        counts[b as usize] += 1;
    }
    let total = bytes.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / total;
            -p * p.log2()
        })
        .sum()
}

/// Words that mark a value as a stand-in rather than a credential.
const PLACEHOLDER_WORDS: &[&str] = &[
    "example",
    "changeme",
    "change_me",
    "change-me",
    "dummy",
    "placeholder",
    "redacted",
    "sample",
    "replace_me",
    "replaceme",
    "your_",
    "your-",
    "insert_",
    "fixme",
    "notreal",
    "not_a_real",
    "fake_",
    "fakekey",
    "secret_here",
    "token_here",
    "password_here",
];

/// Values that are never credentials on their own.
const PLACEHOLDER_VALUES: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "none",
    "null",
    "nil",
    "true",
    "false",
    "undefined",
    "empty",
    "default",
    "changeit",
    "admin",
    "root",
    "test",
    "todo",
    "xxx",
    "fake",
    "string",
    "value",
    "key",
    "pass",
];

/// Stand-in words are written by people, in one case: `dummy`, `EXAMPLE`, `Sample`. Key
/// material is random, and a long base64 body holds any five letters now and then ("dUMmY"
/// turned up in one RSA key in a few thousand), so the words count only in values short
/// enough to be typed and only when the letters keep one case.
const MAX_STAND_IN_LEN: usize = 128;

/// `lower` is `original` in ASCII lower case (same byte offsets).
fn contains_stand_in_word(original: &str, lower: &str) -> bool {
    if original.len() > MAX_STAND_IN_LEN {
        return false;
    }
    PLACEHOLDER_WORDS.iter().any(|word| {
        lower
            .match_indices(word)
            .any(|(at, _)| written_in_one_case(&original.as_bytes()[at..at + word.len()]))
    })
}

/// `dummy`, `DUMMY` or `Dummy`, but not `dUMmY`; characters that are not letters don't count.
fn written_in_one_case(word: &[u8]) -> bool {
    let letters: Vec<u8> = word
        .iter()
        .copied()
        .filter(u8::is_ascii_alphabetic)
        .collect();
    let Some((first, rest)) = letters.split_first() else {
        return true;
    };
    rest.iter().all(u8::is_ascii_lowercase)
        || (first.is_ascii_uppercase() && rest.iter().all(u8::is_ascii_uppercase))
}

/// Whether `text` (lowercase) holds a template expression inside it: `{{ .x }}` (Go, Helm,
/// Jinja) or `${name}` / `${name:-default}` (shell, Spring), with no `{` inside. A random value
/// that merely contains `{{` or `${` (WordPress salts draw from an alphabet with `$`, `{` and
/// `}`) rarely has such an expression, so it is not taken for one.
fn contains_template(text: &str) -> bool {
    let inside = |open: &str, close: &str, well_formed: &dyn Fn(&str) -> bool| {
        text.match_indices(open).any(|(at, _)| {
            let after = &text[at + open.len()..];
            after.find(close).is_some_and(|end| {
                let inner = &after[..end];
                !inner.contains('{') && well_formed(inner)
            })
        })
    };
    let go_template = |inner: &str| {
        inner
            .trim_start_matches(['-', ' '])
            .starts_with(|c: char| c == '.' || c == '$' || c == '_' || c.is_ascii_alphabetic())
    };
    // `${name}`, a shell default (`${name:-x}`, `${name?}`), or a Spring one (`${a.b:x}`)
    // whose default is a plain word.
    let variable = |inner: &str| {
        let name_end = inner
            .find(|c: char| !(c == '_' || c == '.' || c.is_ascii_alphanumeric()))
            .unwrap_or(inner.len());
        let (name, rest) = inner.split_at(name_end);
        let plain_default = |default: &str| {
            default
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-/ ".contains(c))
        };
        name.starts_with(|c: char| c == '_' || c.is_ascii_alphabetic())
            && (rest.is_empty()
                || rest.starts_with([':', '-', '?', '=', '+'])
                    && rest[1..].starts_with(['-', '?', '=', '+'])
                || rest.starts_with(['-', '?', '=', '+'])
                || rest.strip_prefix(':').is_some_and(plain_default))
    };
    inside("{{", "}}", &go_template) || inside("${", "}", &variable)
}

/// Is this captured value a placeholder, template or reference rather than a secret?
pub fn is_placeholder(secret: &[u8]) -> bool {
    let text = String::from_utf8_lossy(secret);
    let trimmed = text.trim_matches(|c: char| c == '"' || c == '\'' || c.is_whitespace());
    let lower = trimmed.to_ascii_lowercase();
    if lower.is_empty() || PLACEHOLDER_VALUES.contains(&lower.as_str()) {
        return true;
    }
    if contains_stand_in_word(trimmed, &lower) {
        return true;
    }
    // Templates and variable references: ${VAR}, $VAR, {{ x }}, <TOKEN>, %(x)s,
    // #{x} (Ruby, Octopus), @VAR@ and %VAR% (autoconf, Windows). The last two need a
    // variable name inside (DB_PASSWORD, AppData): a real password may well start and end
    // with '%' or '@', and then mixes digits with both cases.
    let bytes = lower.as_bytes();
    let first = bytes[0];
    let last = bytes[bytes.len() - 1];
    let wrapped_variable = |delimiter: u8| {
        let original = trimmed.as_bytes();
        if original.len() <= 2 || first != delimiter || last != delimiter {
            return false;
        }
        let name = &original[1..original.len() - 1];
        let name_like = name
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
            && !name[0].is_ascii_digit();
        let shouted = !name.iter().any(u8::is_ascii_lowercase);
        let wordy = !name.iter().any(u8::is_ascii_digit);
        name_like && (shouted || wordy)
    };
    if lower.starts_with("${")
        || lower.starts_with("{{")
        || contains_template(&lower)
        || lower.starts_with("%(")
        || lower.starts_with("#{")
        || (first == b'$'
            && bytes.len() > 1
            && (bytes[1].is_ascii_alphabetic() || bytes[1] == b'_')
            && !password_hash::is_password_hash(trimmed))
        || (first == b'<' && last == b'>')
        || wrapped_variable(b'@')
        || wrapped_variable(b'%')
    {
        return true;
    }
    // One character repeated, or masks: xxxxxxxx, ********, ..., 00000000.
    let distinct = {
        let mut seen = [false; 256];
        bytes
            .iter()
            .filter(|&&b| !std::mem::replace(&mut seen[b as usize], true))
            .count()
    };
    if distinct <= 2 && bytes.len() >= 4 {
        return true;
    }
    let masked = bytes
        .iter()
        .filter(|&&b| matches!(b, b'x' | b'*' | b'.' | b'#'))
        .count();
    masked * 2 > bytes.len() || lower.contains("xxxxxxxx") || lower.contains("****")
}

/// Whether a value a generic rule captured is a name rather than a credential: an identifier
/// built of word-like parts (`x-aws-ec2-metadata-token`, `V1ServiceAccountTokenProjection`,
/// `SecKeychainFindGenericPassword`, `JSON_WEB_TOKEN_STRING`), a file path (`/etc/passwd`)
/// or an e-mail address. Generated secrets are random, and random text almost never splits
/// into pronounceable words of one case (the tests measure it on random strings); a secret
/// made of dictionary words in a naming convention (a passphrase such as
/// `correct-horse-battery-staple`) is missed by the generic rules, which also ask for a digit.
pub fn is_identifier_like(secret: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(secret) else {
        return false;
    };
    let text = text.trim_matches(|c: char| c == '"' || c == '\'' || c.is_whitespace());
    if text.is_empty() || text.len() > 100 {
        return false;
    }
    is_email_address(text) || is_file_path(text) || is_named_identifier(text)
}

fn is_email_address(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    let Some((_, tld)) = domain.rsplit_once('.') else {
        return false;
    };
    !local.is_empty()
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._%+-".contains(&b))
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && tld.len() >= 2
        && tld.bytes().all(|b| b.is_ascii_alphabetic())
}

/// `/etc/passwd`, `./conf/app.key`, `~/.ssh/id_rsa`: every component made of words.
fn is_file_path(text: &str) -> bool {
    let Some(rest) = ["/", "./", "~/"]
        .iter()
        .find_map(|start| text.strip_prefix(start))
    else {
        return false;
    };
    let components: Vec<&str> = rest.split('/').filter(|c| !c.is_empty()).collect();
    !components.is_empty()
        && (components.len() >= 2 || text.starts_with('/'))
        && components.iter().all(|component| {
            component
                .split(['.', '_', '-'])
                .filter(|part| !part.is_empty())
                // Short lowercase parts are the abbreviations paths are made of (`etc`, `ssh`, `pki`).
                .all(|part| is_word(part, 5) || is_short_lowercase(part))
        })
}

/// A word of an identifier: letters, then at most three digits (`ec2`, `v1`, `sha256`);
/// three letters or more hold a vowel and no run of `max_consonants` consonants.
fn is_short_lowercase(part: &str) -> bool {
    part.len() <= 4 && part.bytes().all(|b| b.is_ascii_lowercase())
}

fn is_word(word: &str, max_consonants: usize) -> bool {
    let letters = word.trim_end_matches(|c: char| c.is_ascii_digit());
    if letters.is_empty()
        || word.len() - letters.len() > 3
        || !letters.bytes().all(|b| b.is_ascii_alphabetic())
    {
        return false;
    }
    let vowel = |b: u8| b"aeiouyAEIOUY".contains(&b);
    let mut run = 0;
    for b in letters.bytes() {
        run = if vowel(b) { 0 } else { run + 1 };
        if run >= max_consonants {
            return false;
        }
    }
    letters.len() < 3 || letters.bytes().any(vowel)
}

/// The words of a name: split at `-`, `_` and `.`, and where the case changes as in
/// CamelCase (`aB`, `1B`, and `ABc` before its last capital).
fn name_words(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut words = Vec::new();
    let mut start = 0;
    for at in 0..bytes.len() {
        let b = bytes[at];
        if b"-_.".contains(&b) {
            if start < at {
                words.push(&text[start..at]);
            }
            start = at + 1;
            continue;
        }
        if at > start && b.is_ascii_uppercase() {
            let before = bytes[at - 1];
            let next_lower = bytes.get(at + 1).is_some_and(u8::is_ascii_lowercase);
            if before.is_ascii_lowercase()
                || before.is_ascii_digit()
                || (before.is_ascii_uppercase() && next_lower)
            {
                words.push(&text[start..at]);
                start = at;
            }
        }
    }
    if start < bytes.len() {
        words.push(&text[start..]);
    }
    words
}

/// kebab-case, snake_case or dotted names of three words or more in one case
/// (`x-aws-ec2-metadata-token`, `JSON_WEB_TOKEN_STRING`), and CamelCase names
/// (`SecKeychainFindGenericPassword`, `V1ServiceAccountTokenProjection`).
fn is_named_identifier(text: &str) -> bool {
    if !text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return false;
    }
    let words = name_words(text);
    if words.len() < 3 || !words.iter().all(|word| is_word(word, 5)) {
        return false;
    }
    let long_words = words
        .iter()
        .filter(|word| word.trim_end_matches(|c: char| c.is_ascii_digit()).len() >= 4)
        .count();
    if long_words < 2 {
        return false;
    }
    let one_case = !text.bytes().any(|b| b.is_ascii_uppercase())
        || !text.bytes().any(|b| b.is_ascii_lowercase());
    let separated = text.bytes().any(|b| b"-_.".contains(&b));
    (separated && one_case) || is_camel_case(&words)
}

/// Four words or more, each after the first capitalised with at least two lower-case letters
/// (`Service`, `Keychain`), the first a word in either case or a short acronym (`V1`, `Sec`).
fn is_camel_case(words: &[&str]) -> bool {
    let letters = |word: &str| {
        word.trim_end_matches(|c: char| c.is_ascii_digit())
            .to_string()
    };
    let capitalised = |word: &str| {
        let letters = letters(word);
        let mut bytes = letters.bytes();
        bytes.next().is_some_and(|b| b.is_ascii_uppercase())
            && letters.len() >= 3
            && bytes.all(|b| b.is_ascii_lowercase())
    };
    let first_ok = |word: &str| {
        let letters = letters(word);
        letters.bytes().all(|b| b.is_ascii_lowercase())
            || capitalised(word)
            || (letters.len() <= 4 && letters.bytes().all(|b| b.is_ascii_uppercase()))
    };
    words.len() >= 4 && first_ok(words[0]) && words[1..].iter().all(|w| capitalised(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_paths_and_addresses_are_names() {
        for value in [
            "x-aws-ec2-metadata-token",
            "V1ServiceAccountTokenProjection",
            "SecKeychainFindGenericPassword",
            "JSON_WEB_TOKEN_STRING",
            "oauth2.client.secret.value",
            "/etc/passwd",
            "/run/secrets/db_password2",
            "~/.ssh/id_rsa",
            "ops.team+alerts@corp-mail.example2.com",
            "'x-amz-security-token'",
        ] {
            assert!(is_identifier_like(value.as_bytes()), "{value}");
        }
        for value in [
            "ZhNr0LJUjkMIstCQ",
            "hunter2-Xy9#kLm0",
            "fodmiv-7cyxwe-Mynpov",
            "s3cr3t-V4lu3-9x7q",
            "Kv5b3Y9Jb+a+T_Z=",
            "rapunz3l",
            "user@localhost",
            "/Xk9qT/8vLz2Rw",
            "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
            "xoxb-1234-5678-abcdefghijkl",
            "",
        ] {
            assert!(!is_identifier_like(value.as_bytes()), "{value}");
        }
    }

    /// Random secrets, as generators write them, are not taken for names: fewer than one in
    /// a thousand of each alphabet and length.
    #[test]
    fn random_values_are_almost_never_names() {
        let alphabets: [&[u8]; 4] = [
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
            b"abcdefghijklmnopqrstuvwxyz0123456789-",
            b"0123456789abcdef",
        ];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for alphabet in alphabets {
            for length in [8usize, 12, 16, 24, 32, 40] {
                let trials = 20_000;
                let names = (0..trials)
                    .filter(|_| {
                        let value: Vec<u8> = (0..length)
                            .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                            .collect();
                        is_identifier_like(&value)
                    })
                    .count();
                assert!(
                    names * 1000 < trials,
                    "{names} of {trials} random values of length {length} taken for names"
                );
            }
        }
    }

    #[test]
    fn github_checksum_round_trip() {
        let random = "Zq3LmN8pR2sT4vW6xY8zA1bC3dE5fG";
        assert_eq!(random.len(), 30);
        let token = format!(
            "ghp_{random}{}",
            base62_checksum(crc32fast::hash(random.as_bytes()))
        );
        assert_eq!(
            Validator::GithubChecksum.check(token.as_bytes()),
            Verdict::plain()
        );
        let mut broken = token.clone().into_bytes();
        let last = broken.len() - 1;
        broken[last] = if broken[last] == b'a' { b'b' } else { b'a' };
        assert_eq!(Validator::GithubChecksum.check(&broken), Verdict::Reject);
        assert_eq!(base62_checksum(0), "000000");
        assert_eq!(base62_checksum(61), "00000z");
        assert_eq!(base62_checksum(62), "000010");
    }

    fn random_base62(n: usize) -> String {
        let mut rng = fastrand::Rng::new();
        (0..n).map(|_| BASE62[rng.usize(..62)] as char).collect()
    }

    #[test]
    fn npm_checksum() {
        let random = random_base62(30);
        let token = format!(
            "npm_{random}{}",
            base62_checksum(crc32fast::hash(random.as_bytes()))
        );
        assert_eq!(
            Validator::NpmChecksum.check(token.as_bytes()),
            Verdict::plain()
        );
        // One character of the random part changed: the checksum no longer fits.
        let mut broken = token.clone().into_bytes();
        broken[4] = if broken[4] == b'a' { b'b' } else { b'a' };
        assert_eq!(Validator::NpmChecksum.check(&broken), Verdict::Reject);
        // A valid checksum under another prefix is no npm token.
        let github = token.replacen("npm_", "ghp_", 1);
        assert_eq!(
            Validator::NpmChecksum.check(github.as_bytes()),
            Verdict::Reject
        );
    }

    /// A macaroon in libmacaroons' v2 binary format.
    fn macaroon(location: &str, caveats: &[&str], signature_len: usize) -> Vec<u8> {
        fn field(kind: u8, value: &[u8], out: &mut Vec<u8>) {
            out.push(kind);
            let mut n = value.len();
            loop {
                let byte = (n & 0x7f) as u8;
                n >>= 7;
                if n == 0 {
                    out.push(byte);
                    break;
                }
                out.push(byte | 0x80);
            }
            out.extend_from_slice(value);
        }
        let mut out = vec![2];
        field(MACAROON_LOCATION, location.as_bytes(), &mut out);
        field(MACAROON_IDENTIFIER, random_base62(36).as_bytes(), &mut out);
        out.push(MACAROON_EOS);
        for caveat in caveats {
            field(MACAROON_IDENTIFIER, caveat.as_bytes(), &mut out);
            out.push(MACAROON_EOS);
        }
        out.push(MACAROON_EOS);
        let signature: Vec<u8> = (0..signature_len).map(|_| fastrand::u8(..)).collect();
        field(MACAROON_SIGNATURE, &signature, &mut out);
        out
    }

    fn pypi_token(bytes: &[u8]) -> String {
        format!("pypi-{}", URL_SAFE_NO_PAD.encode(bytes))
    }

    #[test]
    fn pypi_macaroon() {
        let user = pypi_token(&macaroon(
            "pypi.org",
            &[r#"{"version": 1, "permissions": "user"}"#],
            32,
        ));
        assert!(user.starts_with("pypi-AgEIcHlwaS5vcmc"), "{user}");
        match Validator::PypiMacaroon.check(user.as_bytes()) {
            Verdict::Accept { details, .. } => {
                assert!(details.contains(&("index".into(), "pypi.org".into())));
                assert!(details.contains(&("scope".into(), "every project of the user".into())));
            }
            Verdict::Reject => panic!("rejected {user}"),
        }
        let project = pypi_token(&macaroon(
            "test.pypi.org",
            &[r#"{"version": 1, "permissions": {"projects": ["demo"]}}"#],
            32,
        ));
        match Validator::PypiMacaroon.check(project.as_bytes()) {
            Verdict::Accept { details, .. } => {
                assert!(details.contains(&("scope".into(), "projects: demo".into())));
            }
            Verdict::Reject => panic!("rejected {project}"),
        }
        // Another location, a short signature, a token cut short, random bytes.
        let elsewhere = pypi_token(&macaroon("example.org", &[], 32));
        let short_signature = pypi_token(&macaroon("pypi.org", &[], 16));
        let cut = &user[..user.len() - 10];
        let mut random = vec![2u8, 1, 8];
        random.extend_from_slice(b"pypi.org");
        random.extend((0..80).map(|_| fastrand::u8(..)));
        for token in [
            elsewhere,
            short_signature,
            cut.to_string(),
            pypi_token(&random),
        ] {
            assert_eq!(
                Validator::PypiMacaroon.check(token.as_bytes()),
                Verdict::Reject,
                "{token}"
            );
        }
    }

    #[test]
    fn azure_devops_pat_signature() {
        let token = format!(
            "{}JQQJ99{}AZDO{}",
            random_base62(52),
            random_base62(18),
            random_base62(4)
        );
        assert_eq!(token.len(), 84);
        assert_eq!(
            Validator::AzureDevopsPat.check(token.as_bytes()),
            Verdict::plain()
        );
        let shifted = format!("{}AZDO{}", random_base62(75), random_base62(5));
        let short = &token[..83];
        let symbol = token.replacen(&token[..1], "-", 1);
        for bad in [shifted.as_str(), short, symbol.as_str()] {
            assert_eq!(
                Validator::AzureDevopsPat.check(bad.as_bytes()),
                Verdict::Reject,
                "{bad}"
            );
        }
    }

    #[test]
    fn validator_names_round_trip() {
        for name in VALIDATOR_NAMES {
            assert_eq!(Validator::from_str(name).unwrap().name(), *name);
        }
        assert!(Validator::from_str("nope").is_err());
    }

    #[test]
    fn jwt_shape() {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"1","iat":1700000000}"#);
        let token = format!("{header}.{payload}.c2lnbmF0dXJl");
        assert_eq!(Validator::Jwt.check(token.as_bytes()), Verdict::plain());
        assert_eq!(Validator::Jwt.check(b"eyJhbGciOi.x.y"), Verdict::Reject);
    }

    #[test]
    fn openssh_encryption_is_read_from_the_key() {
        let mut body = b"openssh-key-v1\0".to_vec();
        body.extend_from_slice(&10u32.to_be_bytes());
        body.extend_from_slice(b"aes256-ctr");
        let block = format!(
            "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----",
            STANDARD.encode(&body)
        );
        match Validator::OpensshPrivateKey.check(block.as_bytes()) {
            Verdict::Accept { details, severity } => {
                assert_eq!(severity, Some(Severity::Medium));
                assert_eq!(details[0].1, "yes (aes256-ctr)");
            }
            Verdict::Reject => panic!("rejected"),
        }
    }

    #[test]
    fn placeholders() {
        for value in [
            "changeme",
            "${DB_PASSWORD}",
            "<YOUR_TOKEN>",
            "xxxxxxxxxxxx",
            "********",
            "{{ .Values.password }}",
            "$PASSWORD",
            "AKIAIOSFODNN7EXAMPLE",
            "your_api_key_here",
            "%(password)s",
            "@DB_PASS@",
            "%DB_PASSWORD%",
            "%AppData%",
            "@DB_PASS_2@",
            "#{db.password}",
            "aaaaaaaa",
            "jdbc:{{ .Values.db }}",
            "prefix-${DB_PASSWORD}-suffix",
            "jdbc:postgresql://${db.host:localhost}/app",
            "x-${PASSWORD:-default}",
        ] {
            assert!(is_placeholder(value.as_bytes()), "{value}");
        }
        // Real passwords may start and end with a template's delimiters.
        for value in [
            "Zq3LmN8pR2sT4vW6",
            "hunter2-Xy9#kLm0",
            "s3cr3t-V4lu3-9x7q",
            "%Qm4!rT8vLz2%",
            "@h7Kp=Vw2x!9@",
            "#T5nq+Wz8Lr",
            "%_g9l0r2O0OTyzW0F5H1HDU%",
            "K(l9gLE{{ncdVCQ:I^lHs9V9?w{G4kNLW/Gmk{Sea9lfK<4HGwt3}5ZLR~]!ro<9",
            "Vq7-x${Lm2{pR9}zT4!k",
            "KoKh:#5:r7^mqy!?aV(|+q${?Nm_j,$ $KifGA :+[UH:nO^^p(!4}6LxqdFR-N9",
            "K!l,IGR(vA&,1H~ePKJ]AAoJj${BUc2W:O[8:}#/<2xi&0arpT,oaYC]G^A[6cq9",
        ] {
            assert!(!is_placeholder(value.as_bytes()), "{value}");
        }
    }

    #[test]
    fn stand_in_words_count_only_as_people_write_them() {
        for value in [
            "Dummy-Token-1",
            "DUMMY_KEY",
            "my_dummy_secret",
            "SampleSecret42",
        ] {
            assert!(is_placeholder(value.as_bytes()), "{value}");
        }
        // Random key material that happens to spell a word in mixed case.
        assert!(!is_placeholder(b"q8dUMmYz3LkP0wX7"));
        // A long body is key material, whatever it spells.
        let body = format!(
            "MIIEowIBAAKCAQEA{}dummy{}",
            "Qx7".repeat(40),
            "Lp2".repeat(40)
        );
        assert!(!is_placeholder(body.as_bytes()));
        let pem =
            format!("-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----\n");
        assert!(!is_placeholder(pem.as_bytes()));
    }

    #[test]
    fn entropy() {
        assert_eq!(shannon_entropy(b"aaaa"), 0.0);
        assert!((shannon_entropy(b"abcd") - 2.0).abs() < 1e-9);
    }
}
