//! Key stores recognised by structure, not by file name: PKCS#12 / PFX bundles and Java JKS /
//! JCEKS keystores. Only a file that is the structure from its first byte to its last is one.
//!
//! - PKCS#12 (RFC 7292): `PFX ::= SEQUENCE { version INTEGER (3), authSafe ContentInfo,
//!   macData MacData OPTIONAL }`, the ContentInfo of type `data` (1.2.840.113549.1.7.1) or
//!   `signedData`. The `data` contents are walked down to the SafeBags whose type is readable
//!   without the password: key bags (plain or shrouded), certificate and secret bags.
//!   Certificates usually sit in an `encryptedData` content; keys in a `data` one.
//! - JKS (magic 0xFEEDFEED) and JCEKS (0xCECECECE): version, entry count, then entries tagged
//!   1 (private key), 2 (trusted certificate) or 3 (JCEKS secret key), then a SHA-1 digest.
//!
//! A store that visibly holds only certificates is a trust store (the JDK's `cacerts`) and is
//! not reported; a PKCS#12 whose contents are all encrypted is reported at info severity.

use super::{FileMatch, Scanner, decoder_match, plain};
use crate::detect::decoder::Decoder;
use crate::detect::severity::Severity;

const OID_DATA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x01];
const OID_SIGNED_DATA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x02];
const OID_ENVELOPED_DATA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x03];
const OID_ENCRYPTED_DATA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x06];
/// 1.2.840.113549.1.12.10.1: the PKCS#12 bag types, numbered by the last arc.
const OID_BAG_PREFIX: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x0C, 0x0A, 0x01];

/// Adds a finding when `content` is a key store that holds keys.
pub(crate) fn detect(scanner: &Scanner, content: &[u8], found: &mut Vec<FileMatch>) {
    let report = match content.first() {
        Some(0x30) => pkcs12(content).and_then(|info| info.report(content.len())),
        Some(0xFE | 0xCE) => java_keystore(content).and_then(|info| info.report(content.len())),
        _ => None,
    };
    let Some((decoder, secret, severity, details)) = report else {
        return;
    };
    let Some(rule) = scanner.detector.decoder_rule(decoder) else {
        return;
    };
    // The whole file is the secret; the finding points at its start.
    found.push(plain(decoder_match(
        scanner.detector,
        rule,
        0..content.len().min(1),
        secret.into_bytes(),
        Some(severity),
        details,
    )));
}

type Report = (Decoder, String, Severity, Vec<(String, String)>);

// ---------------------------------------------------------------------------------------------
// BER/DER
// ---------------------------------------------------------------------------------------------

/// Nesting of indefinite-length encodings followed, at most.
const MAX_BER_DEPTH: usize = 16;

/// One TLV: its tag, its content (for an indefinite length: the encodings up to the
/// end-of-contents octets) and what follows it.
struct Tlv<'a> {
    tag: u8,
    content: &'a [u8],
    rest: &'a [u8],
}

fn tlv(input: &[u8], depth: usize) -> Option<Tlv<'_>> {
    let (&tag, after_tag) = input.split_first()?;
    if tag & 0x1F == 0x1F || depth > MAX_BER_DEPTH {
        return None; // High tag numbers do not occur in these structures.
    }
    let (&first, after_length) = after_tag.split_first()?;
    if first == 0x80 {
        // Indefinite length (BER, constructed only): encodings until 00 00.
        if tag & 0x20 == 0 {
            return None;
        }
        let mut rest = after_length;
        loop {
            if rest.starts_with(&[0, 0]) {
                let used = after_length.len() - rest.len();
                return Some(Tlv {
                    tag,
                    content: &after_length[..used],
                    rest: &rest[2..],
                });
            }
            rest = tlv(rest, depth + 1)?.rest;
        }
    }
    let (length, after_length) = if first < 0x80 {
        (first as usize, after_length)
    } else {
        let count = (first & 0x7F) as usize;
        if count == 0 || count > 4 || after_length.len() < count {
            return None;
        }
        let length = after_length[..count]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | b as usize);
        (length, &after_length[count..])
    };
    if length > after_length.len() {
        return None;
    }
    Some(Tlv {
        tag,
        content: &after_length[..length],
        rest: &after_length[length..],
    })
}

/// The TLVs of a constructed content, until the first that does not parse.
fn children(content: &[u8]) -> impl Iterator<Item = Tlv<'_>> {
    let mut rest = content;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let item = tlv(rest, 0)?;
        rest = item.rest;
        Some(item)
    })
}

/// The octets of an OCTET STRING, primitive or (BER) constructed from segments.
fn octets(item: &Tlv) -> Option<Vec<u8>> {
    fn collect(item: &Tlv, depth: usize, out: &mut Vec<u8>) -> Option<()> {
        match item.tag {
            0x04 => out.extend_from_slice(item.content),
            0x24 if depth < MAX_BER_DEPTH => {
                for segment in children(item.content) {
                    collect(&segment, depth + 1, out)?;
                }
            }
            _ => return None,
        }
        Some(())
    }
    let mut out = Vec::new();
    collect(item, 0, &mut out)?;
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// PKCS#12
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Default, PartialEq)]
struct Pkcs12Info {
    plain_keys: usize,
    shrouded_keys: usize,
    certificates: usize,
    secret_bags: usize,
    encrypted_contents: usize,
    mac: bool,
    public_key_integrity: bool,
}

fn pkcs12(content: &[u8]) -> Option<Pkcs12Info> {
    let pfx = tlv(content, 0)?;
    if pfx.tag != 0x30 || !pfx.rest.is_empty() {
        return None;
    }
    let mut items = children(pfx.content);
    let version = items.next()?;
    if version.tag != 0x02 || version.content != [3] {
        return None;
    }
    let auth_safe = items.next()?;
    if auth_safe.tag != 0x30 {
        return None;
    }
    let mut parts = children(auth_safe.content);
    let content_type = parts.next()?;
    if content_type.tag != 0x06 {
        return None;
    }
    let explicit = parts.next()?;
    if explicit.tag != 0xA0 {
        return None;
    }
    let mut info = Pkcs12Info::default();
    match items.next() {
        Some(mac) if mac.tag == 0x30 => info.mac = true,
        Some(_) => return None,
        None => {}
    }
    if content_type.content == OID_SIGNED_DATA {
        info.public_key_integrity = true;
        info.encrypted_contents += 1; // Not walked: its bags are inside a SignedData.
        return Some(info);
    }
    if content_type.content != OID_DATA {
        return None;
    }
    let authenticated_safe = octets(&tlv(explicit.content, 0)?)?;
    let sequence = tlv(&authenticated_safe, 0)?;
    if sequence.tag != 0x30 {
        return None;
    }
    for content_info in children(sequence.content) {
        let mut fields = children(content_info.content);
        let Some(oid) = fields.next().filter(|f| f.tag == 0x06) else {
            continue;
        };
        if oid.content == OID_ENCRYPTED_DATA || oid.content == OID_ENVELOPED_DATA {
            info.encrypted_contents += 1;
        } else if oid.content == OID_DATA
            && let Some(wrapped) = fields.next().filter(|f| f.tag == 0xA0)
            && let Some(safe_contents) = tlv(wrapped.content, 0).and_then(|o| octets(&o))
            && let Some(bags) = tlv(&safe_contents, 0).filter(|b| b.tag == 0x30)
        {
            for bag in children(bags.content) {
                let Some(bag_id) = children(bag.content).next().filter(|f| f.tag == 0x06) else {
                    continue;
                };
                match bag_id.content.strip_prefix(OID_BAG_PREFIX) {
                    Some([1]) => info.plain_keys += 1,
                    Some([2]) => info.shrouded_keys += 1,
                    Some([3]) => info.certificates += 1,
                    Some([5]) => info.secret_bags += 1,
                    _ => {}
                }
            }
        }
    }
    Some(info)
}

impl Pkcs12Info {
    fn report(&self, size: usize) -> Option<Report> {
        let keys = self.plain_keys + self.shrouded_keys;
        let (severity, holds) = if self.plain_keys > 0 {
            (Severity::Critical, "an unencrypted private key")
        } else if keys > 0 {
            (Severity::High, "a private key")
        } else if self.secret_bags > 0 {
            (Severity::High, "a secret")
        } else if self.encrypted_contents > 0 {
            (
                Severity::Info,
                "encrypted contents only (certificates, most likely)",
            )
        } else {
            return None; // Certificates in the clear only: a trust store.
        };
        let mut details = vec![
            ("format".to_string(), "PKCS#12".to_string()),
            ("private_keys".to_string(), keys.to_string()),
        ];
        if self.plain_keys > 0 {
            details.push(("encrypted".to_string(), "no".to_string()));
        }
        if self.secret_bags > 0 {
            details.push(("secret_bags".to_string(), self.secret_bags.to_string()));
        }
        details.push(("certificates".to_string(), self.certificates.to_string()));
        details.push((
            "encrypted_contents".to_string(),
            self.encrypted_contents.to_string(),
        ));
        details.push((
            "integrity".to_string(),
            if self.public_key_integrity {
                "public-key"
            } else if self.mac {
                "password (MAC)"
            } else {
                "none"
            }
            .to_string(),
        ));
        Some((
            Decoder::Pkcs12,
            format!("PKCS#12 bundle, {size} bytes, holding {holds}"),
            severity,
            details,
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// JKS / JCEKS
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Default, PartialEq)]
struct KeystoreInfo {
    format: &'static str,
    private_keys: usize,
    secret_keys: usize,
    certificates: usize,
    aliases: Vec<String>,
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.bytes.len() {
            return None;
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Some(head)
    }

    fn u16(&mut self) -> Option<usize> {
        Some(u16::from_be_bytes(self.take(2)?.try_into().ok()?) as usize)
    }

    fn u32(&mut self) -> Option<usize> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?) as usize)
    }

    /// Java's `writeUTF`: a u16 length, then (modified) UTF-8.
    fn utf(&mut self) -> Option<&'a [u8]> {
        let length = self.u16()?;
        self.take(length)
    }
}

fn java_keystore(content: &[u8]) -> Option<KeystoreInfo> {
    let mut reader = Reader { bytes: content };
    let format = match reader.take(4)? {
        [0xFE, 0xED, 0xFE, 0xED] => "JKS",
        [0xCE, 0xCE, 0xCE, 0xCE] => "JCEKS",
        _ => return None,
    };
    let version = reader.u32()?;
    if version != 1 && version != 2 {
        return None;
    }
    let count = reader.u32()?;
    // Each entry takes at least 18 bytes: a bogus count is no keystore.
    if count > content.len() / 18 {
        return None;
    }
    let mut info = KeystoreInfo {
        format,
        ..KeystoreInfo::default()
    };
    let certificate = |reader: &mut Reader| -> Option<()> {
        if version == 2 {
            reader.utf()?; // Certificate type, "X.509".
        }
        let length = reader.u32()?;
        reader.take(length).map(|_| ())
    };
    for _ in 0..count {
        let tag = reader.u32()?;
        let alias = reader.utf()?;
        reader.take(8)?; // Creation date.
        if info.aliases.len() < 5 {
            info.aliases
                .push(String::from_utf8_lossy(alias).into_owned());
        }
        match tag {
            1 => {
                let length = reader.u32()?;
                reader.take(length)?;
                let chain = reader.u32()?;
                if chain > reader.bytes.len() / 4 {
                    return None;
                }
                for _ in 0..chain {
                    certificate(&mut reader)?;
                }
                info.private_keys += 1;
            }
            2 => {
                certificate(&mut reader)?;
                info.certificates += 1;
            }
            3 if format == "JCEKS" => {
                // A serialized Java object follows, with no length to skip it by: its stream
                // magic is enough to be sure, and the store holds a secret key.
                if !reader.bytes.starts_with(&[0xAC, 0xED, 0x00, 0x05]) {
                    return None;
                }
                info.secret_keys += 1;
                return Some(info);
            }
            _ => return None,
        }
    }
    // A SHA-1 digest of the store ends it.
    (reader.bytes.len() == 20).then_some(info)
}

impl KeystoreInfo {
    fn report(&self, size: usize) -> Option<Report> {
        if self.private_keys == 0 && self.secret_keys == 0 {
            return None; // A trust store.
        }
        let mut holds = Vec::new();
        if self.private_keys > 0 {
            holds.push(format!("{} private key(s)", self.private_keys));
        }
        if self.secret_keys > 0 {
            holds.push(format!("{} secret key(s)", self.secret_keys));
        }
        let details = vec![
            ("format".to_string(), self.format.to_string()),
            ("private_keys".to_string(), self.private_keys.to_string()),
            ("secret_keys".to_string(), self.secret_keys.to_string()),
            ("certificates".to_string(), self.certificates.to_string()),
            ("aliases".to_string(), self.aliases.join(", ")),
        ];
        Some((
            Decoder::JavaKeystore,
            format!(
                "{} keystore, {size} bytes, holding {}",
                self.format,
                holds.join(" and ")
            ),
            Severity::High,
            details,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn der(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        if content.len() < 0x80 {
            out.push(content.len() as u8);
        } else {
            out.push(0x82);
            out.extend_from_slice(&(content.len() as u16).to_be_bytes());
        }
        out.extend_from_slice(content);
        out
    }

    /// A PFX whose data content holds one bag of type `bag` (1 = keyBag, 2 = shrouded, 3 =
    /// cert) and one encryptedData content.
    fn pfx(bag: u8) -> Vec<u8> {
        let mut bag_id = OID_BAG_PREFIX.to_vec();
        bag_id.push(bag);
        let safe_bag = der(
            0x30,
            &[der(0x06, &bag_id), der(0xA0, &der(0x30, &[1; 40]))].concat(),
        );
        let safe_contents = der(0x30, &safe_bag);
        let data_info = der(
            0x30,
            &[der(0x06, OID_DATA), der(0xA0, &der(0x04, &safe_contents))].concat(),
        );
        let encrypted_info = der(
            0x30,
            &[
                der(0x06, OID_ENCRYPTED_DATA),
                der(0xA0, &der(0x30, &[2; 30])),
            ]
            .concat(),
        );
        let authenticated_safe = der(0x30, &[data_info, encrypted_info].concat());
        let auth_safe = der(
            0x30,
            &[
                der(0x06, OID_DATA),
                der(0xA0, &der(0x04, &authenticated_safe)),
            ]
            .concat(),
        );
        let mac = der(0x30, &[der(0x04, &[3; 20]), der(0x02, &[8, 0])].concat());
        der(0x30, &[der(0x02, &[3]), auth_safe, mac].concat())
    }

    #[test]
    fn pkcs12_bags_are_counted() {
        let info = pkcs12(&pfx(2)).unwrap();
        assert_eq!(info.shrouded_keys, 1);
        assert_eq!(info.encrypted_contents, 1);
        assert!(info.mac);
        assert_eq!(info.report(10).unwrap().2, Severity::High);
        assert_eq!(
            pkcs12(&pfx(1)).unwrap().report(10).unwrap().2,
            Severity::Critical
        );
        // Certificates only, one content encrypted: info.
        assert_eq!(
            pkcs12(&pfx(3)).unwrap().report(10).unwrap().2,
            Severity::Info
        );
    }

    #[test]
    fn pkcs12_must_be_the_whole_file() {
        let mut bytes = pfx(2);
        bytes.push(0);
        assert_eq!(pkcs12(&bytes), None);
        let bytes = pfx(2);
        assert_eq!(pkcs12(&bytes[..bytes.len() - 1]), None);
        // Version 2 is no PFX.
        let mut bytes = pfx(2);
        let version = bytes.windows(3).position(|w| w == [2, 1, 3]).unwrap();
        bytes[version + 2] = 2;
        assert_eq!(pkcs12(&bytes), None);
        // Any DER SEQUENCE is not one.
        assert_eq!(pkcs12(&der(0x30, &der(0x02, &[3]))), None);
    }

    #[test]
    fn indefinite_lengths_are_read() {
        // SEQUENCE (indefinite) { INTEGER 3 } 00 00
        let item = tlv(&[0x30, 0x80, 0x02, 0x01, 0x03, 0x00, 0x00], 0).unwrap();
        assert_eq!(item.content, &[0x02, 0x01, 0x03]);
        assert!(item.rest.is_empty());
        assert!(tlv(&[0x30, 0x80, 0x02, 0x01], 0).is_none());
        let nested = [0x30u8, 0x80].repeat(100);
        assert!(tlv(&nested, 0).is_none());
    }

    fn jks(magic: [u8; 4], entries: &[(u32, &[u8])]) -> Vec<u8> {
        let mut out = magic.to_vec();
        out.extend(2u32.to_be_bytes());
        out.extend((entries.len() as u32).to_be_bytes());
        for (tag, body) in entries {
            out.extend(tag.to_be_bytes());
            out.extend(5u16.to_be_bytes());
            out.extend(b"alias");
            out.extend(1_700_000_000_000u64.to_be_bytes());
            out.extend_from_slice(body);
        }
        out
    }

    fn cert_entry() -> Vec<u8> {
        let mut out = 5u16.to_be_bytes().to_vec();
        out.extend(b"X.509");
        out.extend(10u32.to_be_bytes());
        out.extend([7; 10]);
        out
    }

    #[test]
    fn java_keystores() {
        let mut key = 16u32.to_be_bytes().to_vec();
        key.extend([9; 16]);
        key.extend(1u32.to_be_bytes());
        key.extend(cert_entry());
        let mut store = jks([0xFE, 0xED, 0xFE, 0xED], &[(1, &key), (2, &cert_entry())]);
        store.extend([0; 20]);
        let info = java_keystore(&store).unwrap();
        assert_eq!((info.private_keys, info.certificates), (1, 1));
        assert!(info.report(store.len()).is_some());
        // A trust store is not reported.
        let mut trust = jks([0xFE, 0xED, 0xFE, 0xED], &[(2, &cert_entry())]);
        trust.extend([0; 20]);
        assert!(java_keystore(&trust).unwrap().report(1).is_none());
        // Truncated or with bytes after the digest: no keystore.
        assert!(java_keystore(&store[..store.len() - 1]).is_none());
        store.push(0);
        assert!(java_keystore(&store).is_none());
        // JCEKS secret key entry.
        let sealed = [0xAC, 0xED, 0x00, 0x05, 0x73, 0x72];
        let jceks = jks([0xCE, 0xCE, 0xCE, 0xCE], &[(3, &sealed)]);
        let info = java_keystore(&jceks).unwrap();
        assert_eq!((info.format, info.secret_keys), ("JCEKS", 1));
        assert!(
            java_keystore(&[0xFE, 0xED, 0xFE, 0xED, 0, 0, 0, 2, 0xFF, 0xFF, 0xFF, 0xFF]).is_none()
        );
    }
}
