//! Kubernetes Secret manifests: YAML (multi-document too) and JSON, `kubectl get -o yaml`
//! dumps and `List` objects.
//!
//! Every `data:` value is base64-decoded and scanned like a file of its own (so a
//! `.dockerconfigjson`, a PEM key or a keystore inside is found by its own decoder or rule);
//! `stringData:` values are scanned as they are. A value that no rule recognises is still
//! reported, under the decoder rule, when the Secret's `type` says it is a credential
//! (`kubernetes.io/basic-auth` `password`, `kubernetes.io/ssh-auth` `ssh-privatekey`,
//! `kubernetes.io/tls` `tls.key`, `kubernetes.io/service-account-token` `token`,
//! `bootstrap.kubernetes.io/token` `token-secret`), or when its key name looks secret and the
//! value is no placeholder. `kubectl apply` keeps the manifest it applied in the
//! `kubectl.kubernetes.io/last-applied-configuration` annotation: values found only there are
//! reported too.

use std::ops::Range;

use super::yaml::{Node, parse_documents};
use super::{
    FileMatch, Level, Mapping, Scanner, add_details, at_least, credible_value, decode_base64,
    decoder_match, drop_inside, map_into, printable, secret_looking_name,
};
use crate::detect::decoder::Decoder;
use crate::detect::validate::is_placeholder;

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Finds the Secrets among `documents` (parsed from `text`) and reports what they hold.
pub(crate) fn decode(
    scanner: &mut Scanner,
    text: &str,
    documents: &[Node],
    level: &Level,
    found: &mut Vec<FileMatch>,
) {
    for document in documents {
        visit(scanner, text, document, level, found, 0);
    }
}

fn visit(
    scanner: &mut Scanner,
    text: &str,
    node: &Node,
    level: &Level,
    found: &mut Vec<FileMatch>,
    depth: usize,
) {
    match node.get("kind").and_then(Node::as_str) {
        Some("Secret") => secret(scanner, text, node, level, found),
        Some(kind) if kind.ends_with("List") && depth < 2 => {
            for item in node.get("items").map(Node::items).unwrap_or_default() {
                visit(scanner, text, item, level, found, depth + 1);
            }
        }
        _ => {}
    }
}

/// One value of a Secret, and where its text is.
struct Value<'a> {
    key: &'a str,
    bytes: Vec<u8>,
    /// Byte range of the value's text in the file (its encoded form for `data:`).
    span: Range<usize>,
    base64: bool,
}

fn values<'a>(secret: &'a Node, text: &str, within: Option<&Range<usize>>) -> Vec<Value<'a>> {
    let mut out = Vec::new();
    for (section, base64) in [("data", true), ("stringData", false)] {
        for (key, node) in secret.get(section).map(Node::entries).unwrap_or_default() {
            let Some(scalar) = node.as_scalar() else {
                continue;
            };
            let bytes = if base64 {
                match decode_base64(&scalar.value) {
                    Some(bytes) => bytes,
                    None => continue,
                }
            } else {
                scalar.value.clone().into_bytes()
            };
            if bytes.is_empty() {
                continue;
            }
            let span = match within {
                None => scalar.span.clone(),
                // A manifest parsed out of an annotation: its spans are in the annotation's
                // value; find the text in the file instead.
                Some(outer) => locate(text, outer, &scalar.value),
            };
            out.push(Value {
                key,
                bytes,
                span,
                base64,
            });
        }
    }
    out
}

/// The range of `needle` inside `outer` of `text`, or all of `outer` when it is not there
/// verbatim (escaped in a quoted scalar).
fn locate(text: &str, outer: &Range<usize>, needle: &str) -> Range<usize> {
    let Some(haystack) = text.as_bytes().get(outer.clone()) else {
        return outer.clone();
    };
    match memchr::memmem::find(haystack, needle.as_bytes()) {
        Some(at) if !needle.is_empty() => outer.start + at..outer.start + at + needle.len(),
        _ => outer.clone(),
    }
}

fn secret(
    scanner: &mut Scanner,
    text: &str,
    node: &Node,
    level: &Level,
    found: &mut Vec<FileMatch>,
) {
    let name = node
        .path(&["metadata", "name"])
        .and_then(Node::as_str)
        .unwrap_or("(unnamed)");
    let id = match node.path(&["metadata", "namespace"]).and_then(Node::as_str) {
        Some(namespace) => format!("{namespace}/{name}"),
        None => name.to_string(),
    };
    let kind = node
        .get("type")
        .and_then(Node::as_str)
        .filter(|t| !t.is_empty())
        .unwrap_or("Opaque");
    let live = values(node, text, None);
    report_values(scanner, &live, node, &id, kind, level, found);

    // The manifest `kubectl apply` recorded: report what differs from the live values.
    let annotation = node
        .path(&["metadata", "annotations", LAST_APPLIED])
        .and_then(Node::as_scalar);
    if let Some(annotation) = annotation
        && annotation.value.contains("Secret")
    {
        for applied in parse_documents(&annotation.value) {
            if applied.get("kind").and_then(Node::as_str) != Some("Secret") {
                continue;
            }
            let recorded: Vec<Value> = values(&applied, text, Some(&annotation.span))
                .into_iter()
                .filter(|v| !live.iter().any(|l| l.key == v.key && l.bytes == v.bytes))
                .collect();
            report_values(scanner, &recorded, &applied, &id, kind, level, found);
        }
    }
}

fn report_values(
    scanner: &mut Scanner,
    values: &[Value],
    secret: &Node,
    id: &str,
    kind: &str,
    level: &Level,
    found: &mut Vec<FileMatch>,
) {
    let rule = scanner.detector.decoder_rule(Decoder::KubernetesSecret);
    for value in values {
        let details = vec![
            ("kubernetes_secret".to_string(), id.to_string()),
            ("kubernetes_secret_key".to_string(), value.key.to_string()),
            ("kubernetes_secret_type".to_string(), kind.to_string()),
        ];
        // What the regex rules saw on the value's text is found again below, by the same
        // rules on the value itself (or named by the Secret's type and key).
        let replaced = drop_inside(found, &value.span);
        let mapping = if value.base64 {
            Mapping::Scaled {
                inner_len: value.bytes.len(),
            }
        } else {
            Mapping::Exact
        };
        let inner = scanner.scan_decoded(&value.bytes, level);
        let recognised = !inner.is_empty();
        for mut m in inner {
            map_into(&mut m, &value.span, mapping);
            at_least(&mut m.base, replaced);
            add_details(&mut m.base.details, &details);
            m.kubernetes_secret_type = Some(kind.to_string());
            found.push(m);
        }
        if recognised {
            continue;
        }
        let Some(rule) = rule else { continue };
        let Some((secret_value, mut extra)) = credential(kind, value, secret, values) else {
            continue;
        };
        let mut details = details;
        details.append(&mut extra);
        let (secret_value, encoded) = if printable(&secret_value) {
            (secret_value, false)
        } else {
            // Binary (a DER key, say): show its base64, as the manifest does.
            let encoded =
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &value.bytes);
            (encoded.into_bytes(), true)
        };
        if encoded {
            details.push(("encoding".to_string(), "base64".to_string()));
        }
        let mut base = decoder_match(
            scanner.detector,
            rule,
            value.span.clone(),
            secret_value,
            None,
            details,
        );
        at_least(&mut base, replaced);
        found.push(FileMatch {
            base,
            archive_path: Vec::new(),
            kubernetes_secret_type: Some(kind.to_string()),
            archive_package: None,
        });
    }
}

type Details = Vec<(String, String)>;

/// Whether a value is a credential by its Secret's type or its key name; returns the secret to
/// report and extra details.
fn credential(
    kind: &str,
    value: &Value,
    secret: &Node,
    values: &[Value],
) -> Option<(Vec<u8>, Details)> {
    let other = |key: &str| -> Option<String> {
        values
            .iter()
            .find(|v| v.key == key)
            .map(|v| String::from_utf8_lossy(&v.bytes).into_owned())
            .or_else(|| {
                ["data", "stringData"].iter().find_map(|section| {
                    let raw = secret.path(&[section, key])?.as_str()?;
                    if *section == "data" {
                        decode_base64(raw).map(|b| String::from_utf8_lossy(&b).into_owned())
                    } else {
                        Some(raw.to_string())
                    }
                })
            })
    };
    let bytes = value.bytes.trim_ascii();
    let typed = match (kind, value.key) {
        ("kubernetes.io/basic-auth", "password") => {
            let extra = other("username")
                .map(|user| vec![("username".to_string(), user)])
                .unwrap_or_default();
            Some((bytes.to_vec(), extra))
        }
        ("kubernetes.io/ssh-auth", "ssh-privatekey")
        | ("kubernetes.io/tls", "tls.key")
        | ("kubernetes.io/service-account-token", "token") => Some((bytes.to_vec(), Vec::new())),
        ("bootstrap.kubernetes.io/token", "token-secret") => match other("token-id") {
            // The bearer token is `<token-id>.<token-secret>`.
            Some(id) => Some((
                format!("{}.{}", id.trim(), String::from_utf8_lossy(bytes)).into_bytes(),
                vec![("token_id".to_string(), id.trim().to_string())],
            )),
            None => Some((bytes.to_vec(), Vec::new())),
        },
        _ => None,
    };
    match typed {
        Some((secret, extra)) => {
            let ok = !secret.is_empty() && !is_placeholder(&secret);
            ok.then_some((secret, extra))
        }
        None => (!defined_by_type(kind, value.key)
            && secret_looking_name(value.key)
            && credible_value(bytes))
        .then(|| (bytes.to_vec(), Vec::new())),
    }
}

/// Keys a Secret type defines that hold no credential (`token-id` names a bootstrap token,
/// `ca.crt` is public): the key-name heuristic leaves them alone.
fn defined_by_type(kind: &str, key: &str) -> bool {
    let keys: &[&str] = match kind {
        "kubernetes.io/basic-auth" => &["username"],
        "kubernetes.io/tls" => &["tls.crt", "ca.crt"],
        "kubernetes.io/service-account-token" => &["ca.crt", "namespace"],
        "bootstrap.kubernetes.io/token" => {
            &["token-id", "expiration", "description", "auth-extra-groups"]
        }
        _ => &[],
    };
    keys.contains(&key) || kind == "bootstrap.kubernetes.io/token" && key.starts_with("usage-")
}
