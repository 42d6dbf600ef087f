//! Certificates and private keys read as what they are: the canonical bytes of a PEM block
//! (its DER, whatever the text around it), the facts of an X.509 certificate, and a key's
//! identity — a digest of its public half, the same for a certificate and for the private key
//! that goes with it, so the two can be paired across files.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use sha2::{Digest, Sha256};

/// The DER inside one PEM block, however the block is written: with line feeds, CRLF, the
/// two-character escapes `\n` and `\r` of a JSON or C string, indentation, or headers
/// (`Proc-Type:`, `DEK-Info:`). `None` when `text` holds no complete block or its body is not
/// base64.
pub(crate) fn pem_der(text: &[u8]) -> Option<Vec<u8>> {
    let begin = memchr::memmem::find(text, b"-----BEGIN ")?;
    let after_begin = begin + b"-----BEGIN ".len();
    let header_end = after_begin + memchr::memmem::find(&text[after_begin..], b"-----")? + 5;
    let end = header_end + memchr::memmem::find(&text[header_end..], b"-----END")?;
    let body = &text[header_end..end];
    let mut clean = Vec::with_capacity(body.len());
    let mut line = Vec::new();
    let mut index = 0;
    let flush = |line: &mut Vec<u8>, clean: &mut Vec<u8>| {
        // A header line (`DEK-Info: AES-128-CBC,…`) is not part of the body.
        if !line.contains(&b':') {
            clean.extend(line.iter().copied().filter(|b| base64_byte(*b)));
        }
        line.clear();
    };
    while index < body.len() {
        let byte = body[index];
        let escape = byte == b'\\' && matches!(body.get(index + 1), Some(b'n' | b'r'));
        if byte == b'\n' || byte == b'\r' || escape {
            flush(&mut line, &mut clean);
            index += if escape { 2 } else { 1 };
            continue;
        }
        line.push(byte);
        index += 1;
    }
    flush(&mut line, &mut clean);
    while clean.last() == Some(&b'=') {
        clean.pop();
    }
    let der = STANDARD_NO_PAD.decode(&clean).ok()?;
    (!der.is_empty()).then_some(der)
}

fn base64_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'+' | b'/' | b'=')
}

/// What the inventory says about one certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CertificateFacts {
    /// The subject's distinguished name, as OpenSSL prints it in RFC 4514 order.
    pub subject: String,
    /// The issuer's distinguished name.
    pub issuer: String,
    /// The end of the validity period, `YYYY-MM-DDTHH:MM:SSZ`.
    pub not_after: String,
    /// Subject and issuer are the same name (a root or a self-made certificate).
    pub self_signed: bool,
    /// [`key_identity`] of the certificate's public key, when its algorithm is one read here.
    pub public_key: Option<String>,
}

/// Parses one DER certificate. `None` when `der` is not an X.509 certificate.
pub(crate) fn certificate_facts(der: &[u8]) -> Option<CertificateFacts> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    use x509_parser::public_key::PublicKey;
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let public_key = match cert.public_key().parsed() {
        Ok(PublicKey::RSA(rsa)) => Some(identity(KeyKind::Rsa, rsa.modulus)),
        Ok(PublicKey::EC(point)) => Some(identity(KeyKind::Ec, point.data())),
        Ok(PublicKey::Unknown(raw)) if raw.len() == 32 => Some(identity(KeyKind::Edwards, raw)),
        _ => None,
    };
    Some(CertificateFacts {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        not_after: rfc3339(cert.validity().not_after.timestamp()),
        self_signed: cert.subject().as_raw() == cert.issuer().as_raw(),
        public_key,
    })
}

/// A UTC time as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian calendar).
fn rfc3339(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let rest = seconds.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[derive(Clone, Copy)]
enum KeyKind {
    Rsa,
    Ec,
    Edwards,
}

/// `sha256:<hex>` over the kind and the public value (RSA modulus without leading zeros, EC
/// point, Ed25519 key).
fn identity(kind: KeyKind, value: &[u8]) -> String {
    let mut start = 0;
    while start + 1 < value.len() && value[start] == 0 {
        start += 1;
    }
    let tag: &[u8] = match kind {
        KeyKind::Rsa => b"rsa\0",
        KeyKind::Ec => b"ec\0",
        KeyKind::Edwards => b"ed\0",
    };
    let mut hasher = Sha256::new();
    hasher.update(tag);
    hasher.update(&value[start..]);
    format!("sha256:{}", hex::encode(hasher.finalize()))
}

/// The identity of the public half of a private key given as PEM text (PKCS#1, SEC1, PKCS#8,
/// or OpenSSH's format, encrypted or not for OpenSSH): equal to [`CertificateFacts::public_key`]
/// of its certificate. `None` for formats or algorithms that do not carry the public value in
/// the clear (an encrypted PKCS#8 key, a PKCS#8 Ed25519 key without its public key).
pub(crate) fn key_identity(pem: &[u8]) -> Option<String> {
    let der = pem_der(pem)?;
    if let Some(rest) = der.strip_prefix(b"openssh-key-v1\0") {
        return openssh_identity(rest);
    }
    der_key_identity(&der, 0)
}

fn der_key_identity(der: &[u8], depth: usize) -> Option<String> {
    let (tag, body, _) = tlv(der)?;
    if tag != 0x30 || depth > 2 {
        return None;
    }
    let (version_tag, version, rest) = tlv(body)?;
    if version_tag != 0x02 {
        return None;
    }
    let (second_tag, second, rest) = tlv(rest)?;
    match (version, second_tag) {
        // PKCS#1: version 0, modulus, public exponent, …
        ([0], 0x02) => Some(identity(KeyKind::Rsa, second)),
        // SEC1: version 1, private value, [0] curve, [1] public point.
        ([1], 0x04) => {
            let mut rest = rest;
            while let Some((tag, value, next)) = tlv(rest) {
                if tag == 0xa1 {
                    let (bits_tag, bits, _) = tlv(value)?;
                    return (bits_tag == 0x03 && bits.len() > 1)
                        .then(|| identity(KeyKind::Ec, &bits[1..]));
                }
                rest = next;
            }
            None
        }
        // PKCS#8: version 0 or 1, algorithm, the key in an OCTET STRING, [1] public key.
        ([0 | 1], 0x30) => {
            let (octets_tag, inner, mut rest) = tlv(rest)?;
            if octets_tag != 0x04 {
                return None;
            }
            if let Some(found) = der_key_identity(inner, depth + 1) {
                return Some(found);
            }
            while let Some((tag, value, next)) = tlv(rest) {
                if tag == 0x81 && value.len() == 33 && value[0] == 0 {
                    return Some(identity(KeyKind::Edwards, &value[1..]));
                }
                rest = next;
            }
            None
        }
        _ => None,
    }
}

/// OpenSSH keeps the public key in the clear ahead of the (possibly encrypted) private part.
fn openssh_identity(rest: &[u8]) -> Option<String> {
    let (_cipher, rest) = ssh_string(rest)?;
    let (_kdf, rest) = ssh_string(rest)?;
    let (_options, rest) = ssh_string(rest)?;
    let rest = rest.get(4..)?;
    let (public, _) = ssh_string(rest)?;
    let (kind, public) = ssh_string(public)?;
    match kind {
        b"ssh-rsa" => {
            let (_exponent, public) = ssh_string(public)?;
            let (modulus, _) = ssh_string(public)?;
            Some(identity(KeyKind::Rsa, modulus))
        }
        b"ssh-ed25519" => Some(identity(KeyKind::Edwards, ssh_string(public)?.0)),
        kind if kind.starts_with(b"ecdsa-sha2-") => {
            let (_curve, public) = ssh_string(public)?;
            Some(identity(KeyKind::Ec, ssh_string(public)?.0))
        }
        _ => None,
    }
}

fn ssh_string(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    let value = bytes.get(4..4usize.checked_add(len)?)?;
    Some((value, &bytes[4 + len..]))
}

/// One DER tag-length-value: (tag, value, what follows). Single-byte tags, definite lengths.
fn tlv(bytes: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *bytes.first()?;
    let first = *bytes.get(1)?;
    let (len, header) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let count = (first & 0x7f) as usize;
        if count == 0 || count > 4 {
            return None;
        }
        let mut len = 0usize;
        for byte in bytes.get(2..2 + count)? {
            len = (len << 8) | *byte as usize;
        }
        (len, 2 + count)
    };
    let value = bytes.get(header..header.checked_add(len)?)?;
    Some((tag, value, &bytes[header + len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_bodies_read_alike_in_every_form() {
        let plain = b"-----BEGIN PRIVATE KEY-----\nAAEC\nAwQF\n-----END PRIVATE KEY-----\n";
        let escaped = br#""-----BEGIN PRIVATE KEY-----\nAAEC\r\nAwQF\n-----END PRIVATE KEY-----""#;
        let headers =
            b"-----BEGIN PRIVATE KEY-----\r\nProc-Type: 4,ENCRYPTED\r\n\r\n  AAEC\r\n  AwQF\r\n-----END PRIVATE KEY-----";
        for text in [&plain[..], &escaped[..], &headers[..]] {
            assert_eq!(pem_der(text), Some(vec![0, 1, 2, 3, 4, 5]));
        }
        assert_eq!(pem_der(b"-----BEGIN X-----\n!!!\n-----END X-----"), None);
        assert_eq!(pem_der(b"-----BEGIN X-----\nAAEC"), None);
    }

    #[test]
    fn dates_are_civil() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
        assert_eq!(rfc3339(-86_400), "1969-12-31T00:00:00Z");
    }

    #[test]
    fn truncated_or_foreign_der_is_no_key() {
        assert_eq!(der_key_identity(&[0x30, 0x82, 0xff], 0), None);
        assert_eq!(der_key_identity(&[0x30, 0x03, 0x02, 0x01, 0x05], 0), None);
        assert_eq!(certificate_facts(&[0x30, 0x00]), None);
        assert_eq!(openssh_identity(&[0, 0, 0, 200]), None);
    }
}
