//! Random fake credentials in the exact shapes real detectors look for.
//!
//! All values are generated at test time with `fastrand` (call
//! `fastrand::seed(n)` first for a reproducible run). Nothing here is, or is
//! derived from, a real key: the private keys are *structurally* valid (DER /
//! openssh-key-v1 framing parses) but mathematically meaningless.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

/// The base62 alphabet GitHub uses for token bodies and checksums (digits,
/// then upper case, then lower case).
pub const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Base32 alphabet of AWS access key IDs after the `AKIA` prefix.
const AWS_ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
/// Alphabet of AWS secret access keys.
const AWS_SECRET_ALPHABET: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+";
/// Special characters allowed in [`password`]: no quotes, spaces, `$` or `\`,
/// so the value can sit unquoted in a `.env`, a Dockerfile `ENV` or a shell.
pub const PASSWORD_SPECIALS: &[u8] = b"!#%+-_=";

/// `n` characters drawn uniformly from `alphabet`.
pub fn random_from(alphabet: &[u8], n: usize) -> String {
    (0..n)
        .map(|_| alphabet[fastrand::usize(..alphabet.len())] as char)
        .collect()
}

/// `n` random base62 characters.
pub fn base62(n: usize) -> String {
    random_from(BASE62, n)
}

/// `n` random bytes.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    fastrand::fill(&mut v);
    v
}

/// Shannon entropy of `s` in bits per character (over its bytes).
pub fn shannon_entropy(s: &str) -> f64 {
    let mut counts = [0usize; 256];
    for b in s.bytes() {
        counts[b as usize] += 1;
    }
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

fn has_classes(s: &str) -> (bool, bool, bool) {
    (
        s.bytes().any(|b| b.is_ascii_uppercase()),
        s.bytes().any(|b| b.is_ascii_lowercase()),
        s.bytes().any(|b| b.is_ascii_digit()),
    )
}

/// `AKIA` + 16 characters of `[A-Z2-7]` (a long-term IAM user key ID).
pub fn aws_access_key_id() -> String {
    format!("AKIA{}", random_from(AWS_ID_ALPHABET, 16))
}

/// 40 characters of `[A-Za-z0-9/+]` with upper case, lower case and digits
/// and at least 4.3 bits/char of entropy, so entropy-gated rules fire.
pub fn aws_secret_access_key() -> String {
    loop {
        let s = random_from(AWS_SECRET_ALPHABET, 40);
        if has_classes(&s) == (true, true, true) && shannon_entropy(&s) >= 4.3 {
            return s;
        }
    }
}

/// GitHub's token checksum: the CRC32 (IEEE, as `crc32fast::hash`) of the
/// random part, written in base62 with the alphabet [`BASE62`]
/// (`0-9A-Za-z`, most significant digit first) and left-padded with `'0'` to
/// 6 characters. `u32::MAX` < 62^6, so 6 characters always suffice.
///
/// A classic token is `ghp_` + 30 random base62 characters + this checksum
/// of those 30 characters, which lets scanners reject look-alikes offline.
pub fn github_checksum(random_part: &str) -> String {
    let mut n = crc32fast::hash(random_part.as_bytes());
    let mut digits = Vec::new();
    while n > 0 {
        digits.push(BASE62[(n % 62) as usize]);
        n /= 62;
    }
    while digits.len() < 6 {
        digits.push(b'0');
    }
    digits.reverse();
    String::from_utf8(digits).expect("ascii")
}

/// `ghp_` + 30 random base62 + [`github_checksum`] of them (40 chars total).
pub fn github_classic_token() -> String {
    let random = base62(30);
    let checksum = github_checksum(&random);
    format!("ghp_{random}{checksum}")
}

/// `npm_` + 30 random base62 + their CRC32 checksum in base62 (npm's tokens follow GitHub's
/// design), 40 characters in all.
pub fn npm_token() -> String {
    let random = base62(30);
    let checksum = github_checksum(&random);
    format!("npm_{random}{checksum}")
}

/// A random password of `len` characters: mostly `[A-Za-z0-9]` plus a few of
/// [`PASSWORD_SPECIALS`], with at least one upper, lower, digit and special.
///
/// It starts with a letter or digit: fixtures put it unquoted into YAML, dotenv files and
/// Dockerfile lines, where a leading `#`, `!` or `%` would make it a comment, a tag or a
/// directive rather than a value. Passwords that do start with one are covered by the
/// examples of the generic rules and by `fixtures_selftest`.
pub fn password(len: usize) -> String {
    assert!(len >= 4, "a password needs room for all four classes");
    let mut chars: Vec<u8> = vec![
        random_from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", 1).as_bytes()[0],
        random_from(b"abcdefghijklmnopqrstuvwxyz", 1).as_bytes()[0],
        random_from(b"0123456789", 1).as_bytes()[0],
        random_from(PASSWORD_SPECIALS, 1).as_bytes()[0],
    ];
    while chars.len() < len {
        // About one character in ten is special: "a few", as people do.
        let c = if fastrand::u8(..10) == 0 {
            PASSWORD_SPECIALS[fastrand::usize(..PASSWORD_SPECIALS.len())]
        } else {
            fastrand::alphanumeric() as u8
        };
        chars.push(c);
    }
    fastrand::shuffle(&mut chars);
    if let Some(first) = chars.iter().position(u8::is_ascii_alphanumeric) {
        chars.swap(0, first);
    }
    String::from_utf8(chars).expect("ascii")
}

/// The INI text of `~/.aws/credentials` with a `[default]` profile.
pub fn aws_credentials_file(id: &str, secret: &str) -> String {
    format!("[default]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n")
}

/// A `.env` file: one `KEY=value` line per pair.
pub fn dotenv(pairs: &[(&str, &str)]) -> String {
    pairs.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
}

/// A JWT: header `{"alg":"HS256","typ":"JWT"}`, a payload with `sub` and
/// `iat`, and a random 32-byte signature, all base64url without padding.
pub fn jwt() -> String {
    let header = r#"{"alg":"HS256","typ":"JWT"}"#;
    let payload = format!(
        r#"{{"sub":"user-{}","iat":{}}}"#,
        base62(8),
        1_700_000_000 + fastrand::u32(..50_000_000)
    );
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(random_bytes(32))
    )
}

// ---------------------------------------------------------------------------
// Private keys
// ---------------------------------------------------------------------------

/// A PEM block: `-----BEGIN <label>-----`, base64 of `der` in lines of
/// `width` characters, `-----END <label>-----`, trailing newline.
pub fn pem(label: &str, der: &[u8], width: usize) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(width) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ascii"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// DER length octets: short form below 128, else `0x80 | n` + n big-endian bytes.
pub fn der_length(len: usize) -> Vec<u8> {
    if len < 0x80 {
        return vec![len as u8];
    }
    let bytes = len.to_be_bytes();
    let first = bytes.iter().position(|&b| b != 0).expect("len > 0");
    let mut out = vec![0x80 | (bytes.len() - first) as u8];
    out.extend_from_slice(&bytes[first..]);
    out
}

/// A DER TLV.
pub fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(der_length(content.len()));
    out.extend_from_slice(content);
    out
}

/// The content octets of a random positive DER INTEGER that encodes in
/// exactly `len` bytes, minimally (as DER requires): odd sizes like 257/129
/// are a 0x00 sign byte + a value with its top bit set (a full 2048/1024-bit
/// number); even sizes start with a byte in 0x01..=0x7F.
fn random_der_uint(len: usize, odd: bool) -> Vec<u8> {
    let mut v = random_bytes(len);
    if len % 2 == 1 {
        v[0] = 0x00;
        v[1] |= 0x80;
    } else {
        v[0] = fastrand::u8(0x01..=0x7F);
    }
    if odd {
        v[len - 1] |= 1;
    }
    v
}

/// A PKCS#1 `RSA PRIVATE KEY` PEM (64-char lines) whose body is a
/// well-formed DER SEQUENCE of 9 INTEGERs sized like a 2048-bit key:
/// version 0, n (257 bytes), e = 65537 (3), d (256), p (129), q (129),
/// dp (128), dq (128), qinv (128). Not a working key.
pub fn rsa_private_key_der() -> Vec<u8> {
    let ints: Vec<Vec<u8>> = vec![
        vec![0x00],                  // version
        random_der_uint(257, true),  // modulus
        vec![0x01, 0x00, 0x01],      // public exponent 65537
        random_der_uint(256, false), // private exponent
        random_der_uint(129, true),  // prime1
        random_der_uint(129, true),  // prime2
        random_der_uint(128, false), // exponent1
        random_der_uint(128, false), // exponent2
        random_der_uint(128, false), // coefficient
    ];
    let body: Vec<u8> = ints.iter().flat_map(|i| der_tlv(0x02, i)).collect();
    der_tlv(0x30, &body)
}

/// See [`rsa_private_key_der`].
pub fn rsa_private_key_pem() -> String {
    pem("RSA PRIVATE KEY", &rsa_private_key_der(), 64)
}

/// Appends an SSH wire-format string: uint32 big-endian length + bytes.
pub fn ssh_string(buf: &mut Vec<u8>, bytes: &[u8]) {
    buf.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    buf.extend_from_slice(bytes);
}

/// The binary body of an unencrypted `openssh-key-v1` ed25519 key:
/// magic `openssh-key-v1\0`, cipher "none", kdf "none", empty kdf options,
/// 1 key, the public key blob (`ssh-ed25519` + 32 bytes), and the private
/// section (two equal check ints, key type, public key, 64-byte private key
/// = 32-byte seed + public key, comment `test@stowaway`, padding 1,2,3… to
/// a multiple of 8).
pub fn openssh_private_key_bytes() -> Vec<u8> {
    let public = random_bytes(32);
    let mut private_key = random_bytes(32);
    private_key.extend_from_slice(&public);

    let mut pub_blob = Vec::new();
    ssh_string(&mut pub_blob, b"ssh-ed25519");
    ssh_string(&mut pub_blob, &public);

    let check = fastrand::u32(..);
    let mut section = Vec::new();
    section.extend_from_slice(&check.to_be_bytes());
    section.extend_from_slice(&check.to_be_bytes());
    ssh_string(&mut section, b"ssh-ed25519");
    ssh_string(&mut section, &public);
    ssh_string(&mut section, &private_key);
    ssh_string(&mut section, b"test@stowaway");
    let mut pad = 1u8;
    while section.len() % 8 != 0 {
        section.push(pad);
        pad += 1;
    }

    let mut body = b"openssh-key-v1\0".to_vec();
    ssh_string(&mut body, b"none");
    ssh_string(&mut body, b"none");
    ssh_string(&mut body, b"");
    body.extend_from_slice(&1u32.to_be_bytes());
    ssh_string(&mut body, &pub_blob);
    ssh_string(&mut body, &section);
    body
}

/// `-----BEGIN OPENSSH PRIVATE KEY-----` PEM (70-char lines, as ssh-keygen
/// writes) around [`openssh_private_key_bytes`].
pub fn openssh_private_key() -> String {
    pem("OPENSSH PRIVATE KEY", &openssh_private_key_bytes(), 70)
}
