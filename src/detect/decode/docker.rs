//! Docker and podman registry credentials: `config.json` and `auth.json` (`{"auths": {HOST:
//! {"auth": base64("user:password"), "identitytoken": …}}}`) and the legacy `.dockercfg`
//! (the same entries at the top level). Each `auth` is decoded and its password reported with
//! the registry host and user name; `identitytoken`, `registrytoken` and a plain `password`
//! are reported as they are.

use super::yaml::Node;
use super::{
    Decoder, FileMatch, Level, Mapping, Scanner, at_least, decode_base64, decoder_match,
    drop_inside, map_into, push_or_enrich,
};
use crate::detect::validate::is_placeholder;

pub(crate) fn decode(
    scanner: &mut Scanner,
    _text: &str,
    documents: &[Node],
    _level: &Level,
    found: &mut Vec<FileMatch>,
) {
    let Some(rule) = scanner.detector.decoder_rule(Decoder::DockerConfig) else {
        return;
    };
    for document in documents {
        let (entries, legacy) = match document.get("auths") {
            Some(auths) => (auths.entries(), false),
            // Legacy `.dockercfg`: hosts at the top level, each with an `auth`.
            None => (document.entries(), true),
        };
        let kind = if legacy {
            "kubernetes.io/dockercfg"
        } else {
            "kubernetes.io/dockerconfigjson"
        };
        for (host, entry) in entries {
            if legacy && entry.get("auth").is_none() {
                continue;
            }
            registry(scanner, rule, host, entry, kind, found);
        }
    }
}

fn registry(
    scanner: &mut Scanner,
    rule: usize,
    host: &str,
    entry: &Node,
    kind: &str,
    found: &mut Vec<FileMatch>,
) {
    let finding = |span: std::ops::Range<usize>,
                   secret: &[u8],
                   field: &str,
                   username: Option<&str>|
     -> Option<FileMatch> {
        if secret.is_empty() || is_placeholder(secret) {
            return None;
        }
        let mut details = vec![
            ("registry".to_string(), host.to_string()),
            ("field".to_string(), field.to_string()),
        ];
        if let Some(user) = username.filter(|u| !u.is_empty()) {
            details.push(("username".to_string(), user.to_string()));
        }
        Some(FileMatch {
            base: decoder_match(scanner.detector, rule, span, secret.to_vec(), None, details),
            archive_path: Vec::new(),
            kubernetes_secret_type: Some(kind.to_string()),
        })
    };
    let plain_user = entry.get("username").and_then(Node::as_str);
    if let Some(auth) = entry.get("auth").and_then(Node::as_scalar)
        && let Some(decoded) = decode_base64(&auth.value)
    {
        let (user, password) = match memchr::memchr(b':', &decoded) {
            Some(colon) => (
                Some(String::from_utf8_lossy(&decoded[..colon]).into_owned()),
                colon + 1,
            ),
            None => (None, 0),
        };
        let replaced = drop_inside(found, &auth.span);
        // The finding sits on the password's part of the encoded text.
        let mut place = FileMatch {
            base: decoder_match(
                scanner.detector,
                rule,
                password..decoded.len(),
                Vec::new(),
                None,
                Vec::new(),
            ),
            archive_path: Vec::new(),
            kubernetes_secret_type: None,
        };
        map_into(
            &mut place,
            &auth.span,
            Mapping::Scaled {
                inner_len: decoded.len(),
            },
        );
        if let Some(mut m) = finding(
            place.base.start..place.base.end,
            decoded[password..].trim_ascii(),
            "auth",
            user.as_deref().or(plain_user),
        ) {
            at_least(&mut m.base, replaced);
            found.push(m);
        }
    }
    for field in ["identitytoken", "registrytoken", "password"] {
        if let Some(scalar) = entry.get(field).and_then(Node::as_scalar)
            && let Some(m) = finding(
                scalar.span.clone(),
                scalar.value.trim().as_bytes(),
                field,
                plain_user,
            )
        {
            push_or_enrich(found, m);
        }
    }
}
