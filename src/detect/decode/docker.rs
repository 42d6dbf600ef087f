//! Docker and podman registry credentials: `config.json` and `auth.json` (`{"auths": {HOST:
//! {"auth": base64("user:password"), "identitytoken": …}}}`) and the legacy `.dockercfg`
//! (the same entries at the top level). Each `auth` is decoded and its password reported with
//! the registry host and user name; `identitytoken`, `registrytoken` and a plain `password`
//! are reported as they are.

use super::yaml::Node;
use super::{
    FileMatch, Level, Mapping, Scanner, at_least, decode_base64, decoder_match, drop_inside,
    map_into, printable, push_or_enrich,
};
use crate::detect::decoder::Decoder;
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
            // A legacy file is only a map of registry hosts to logins.
            if legacy && (entry.get("auth").is_none() || !host_like(host)) {
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
            archive_package: None,
        })
    };
    let plain_user = entry.get("username").and_then(Node::as_str);
    // `auth` is base64 of `user:password`; anything else is not a docker login.
    if let Some(auth) = entry.get("auth").and_then(Node::as_scalar)
        && let Some(decoded) = decode_base64(&auth.value)
        && printable(&decoded)
        && let Some(colon) = memchr::memchr(b':', &decoded)
    {
        let (user, password) = (
            Some(String::from_utf8_lossy(&decoded[..colon]).into_owned()),
            colon + 1,
        );
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
            archive_package: None,
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

/// A registry host as docker writes it: a name with a dot or port, `localhost`, or a URL.
fn host_like(host: &str) -> bool {
    !host.is_empty()
        && !host.contains(char::is_whitespace)
        && (host.contains('.') || host.contains(':') || host == "localhost")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        for host in [
            "registry.example.org",
            "localhost",
            "10.0.0.1:5000",
            "https://index.docker.io/v1/",
        ] {
            assert!(host_like(host), "{host}");
        }
        for host in ["server", "metadata", "", "a b.c"] {
            assert!(!host_like(host), "{host}");
        }
    }
}
