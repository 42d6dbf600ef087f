//! kubeconfig files (`kind: Config`): for each of `users[]`, the base64 `client-key-data`
//! (a PEM private key, decoded and scanned), `token`, `password`, the `auth-provider` tokens
//! and secret-looking `exec.env[]` values.

use std::ops::Range;

use super::yaml::{Node, Scalar};
use super::{
    FileMatch, Level, Mapping, Scanner, add_details, at_least, credible_value, decode_base64,
    decoder_match, drop_inside, map_into, push_or_enrich, secret_looking_name,
};
use crate::detect::decoder::Decoder;
use crate::detect::severity::Severity;
use crate::detect::validate::is_placeholder;

/// `auth-provider.config` keys that hold credentials.
const PROVIDER_SECRETS: &[&str] = &["id-token", "refresh-token", "access-token", "client-secret"];

pub(crate) fn decode(
    scanner: &mut Scanner,
    _text: &str,
    documents: &[Node],
    level: &Level,
    found: &mut Vec<FileMatch>,
) {
    for document in documents {
        let kind = document.get("kind").and_then(Node::as_str);
        if !(kind == Some("Config") || kind.is_none() && document.get("clusters").is_some()) {
            continue;
        }
        for entry in document.get("users").map(Node::items).unwrap_or_default() {
            let name = entry
                .get("name")
                .and_then(Node::as_str)
                .unwrap_or("(unnamed)");
            if let Some(user) = entry.get("user") {
                user_credentials(scanner, name, user, level, found);
            }
        }
    }
}

fn user_credentials(
    scanner: &mut Scanner,
    name: &str,
    user: &Node,
    level: &Level,
    found: &mut Vec<FileMatch>,
) {
    let rule = scanner.detector.decoder_rule(Decoder::Kubeconfig);
    let details = |field: &str| {
        vec![
            ("kubeconfig_user".to_string(), name.to_string()),
            ("field".to_string(), field.to_string()),
        ]
    };
    if let Some(key) = user.get("client-key-data").and_then(Node::as_scalar)
        && let Some(pem) = decode_base64(&key.value)
    {
        let replaced = drop_inside(found, &key.span);
        let inner = scanner.scan_decoded(&pem, level);
        let recognised = !inner.is_empty();
        for mut m in inner {
            map_into(
                &mut m,
                &key.span,
                Mapping::Scaled {
                    inner_len: pem.len(),
                },
            );
            at_least(&mut m.base, replaced);
            add_details(&mut m.base.details, &details("client-key-data"));
            m.kubernetes_secret_type
                .get_or_insert_with(|| "kubernetes.io/tls".to_string());
            found.push(m);
        }
        if !recognised
            && let Some(rule) = rule
            && memchr::memmem::find(&pem, b"PRIVATE KEY").is_some()
        {
            let m = decoder_match(
                scanner.detector,
                rule,
                key.span.clone(),
                pem.trim_ascii().to_vec(),
                Some(Severity::Critical),
                details("client-key-data"),
            );
            found.push(FileMatch {
                base: m,
                archive_path: Vec::new(),
                kubernetes_secret_type: Some("kubernetes.io/tls".to_string()),
            });
        }
    }
    let Some(rule) = rule else { return };
    let mut plain = |scalar: &Scalar, field: &str, extra: Vec<(String, String)>, kind: &str| {
        let value = scalar.value.trim();
        if value.is_empty() || is_placeholder(value.as_bytes()) {
            return;
        }
        let mut details = details(field);
        details.extend(extra);
        let span: Range<usize> = scalar.span.clone();
        let m = decoder_match(
            scanner.detector,
            rule,
            span,
            value.as_bytes().to_vec(),
            None,
            details,
        );
        push_or_enrich(
            found,
            FileMatch {
                base: m,
                archive_path: Vec::new(),
                kubernetes_secret_type: Some(kind.to_string()),
            },
        );
    };
    if let Some(token) = user.get("token").and_then(Node::as_scalar) {
        plain(
            token,
            "token",
            Vec::new(),
            "kubernetes.io/service-account-token",
        );
    }
    if let Some(password) = user.get("password").and_then(Node::as_scalar) {
        let extra = user
            .get("username")
            .and_then(Node::as_str)
            .map(|u| vec![("username".to_string(), u.to_string())])
            .unwrap_or_default();
        plain(password, "password", extra, "kubernetes.io/basic-auth");
    }
    for (key, value) in user
        .path(&["auth-provider", "config"])
        .map(Node::entries)
        .unwrap_or_default()
    {
        if PROVIDER_SECRETS.contains(&key.as_str())
            && let Some(scalar) = value.as_scalar()
        {
            plain(
                scalar,
                &format!("auth-provider.config.{key}"),
                Vec::new(),
                "Opaque",
            );
        }
    }
    for variable in user
        .path(&["exec", "env"])
        .map(Node::items)
        .unwrap_or_default()
    {
        let (Some(var), Some(value)) = (
            variable.get("name").and_then(Node::as_str),
            variable.get("value").and_then(Node::as_scalar),
        ) else {
            continue;
        };
        if secret_looking_name(var) && credible_value(value.value.as_bytes()) {
            plain(value, &format!("exec.env.{var}"), Vec::new(), "Opaque");
        }
    }
}
