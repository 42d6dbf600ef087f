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
use crate::detect::engine::Detector;
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

/// Reports the credentials of one kubeconfig user (`name`): its client key, then its token,
/// password, auth-provider tokens and secret-looking exec environment values.
fn user_credentials(
    scanner: &mut Scanner,
    name: &str,
    user: &Node,
    level: &Level,
    found: &mut Vec<FileMatch>,
) {
    let rule = scanner.detector.decoder_rule(Decoder::Kubeconfig);
    if let Some(key) = user.get("client-key-data").and_then(Node::as_scalar) {
        client_key_data(scanner, name, key, rule, level, found);
    }
    // The other credentials are plain values: only the decoder's own rule can report them.
    let Some(rule) = rule else { return };
    let mut values = PlainValues {
        detector: scanner.detector,
        rule,
        user: name,
        found,
    };
    if let Some(token) = user.get("token").and_then(Node::as_scalar) {
        values.report(
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
        values.report(password, "password", extra, "kubernetes.io/basic-auth");
    }
    for (field, scalar) in auth_provider_secrets(user) {
        values.report(scalar, &field, Vec::new(), "Opaque");
    }
    for (field, scalar) in exec_env_secrets(user) {
        values.report(scalar, &field, Vec::new(), "Opaque");
    }
}

/// What every finding of a user says: which user, and which field held the secret.
fn user_details(user: &str, field: &str) -> Vec<(String, String)> {
    vec![
        ("kubeconfig_user".to_string(), user.to_string()),
        ("field".to_string(), field.to_string()),
    ]
}

/// The base64 `client-key-data`: what the rules find in the decoded PEM replaces what they saw
/// in its encoded text; a private key nothing recognised is still reported under the decoder's
/// rule.
fn client_key_data(
    scanner: &mut Scanner,
    name: &str,
    key: &Scalar,
    rule: Option<usize>,
    level: &Level,
    found: &mut Vec<FileMatch>,
) {
    let Some(pem) = decode_base64(&key.value) else {
        return;
    };
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
        add_details(&mut m.base.details, &user_details(name, "client-key-data"));
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
            user_details(name, "client-key-data"),
        );
        found.push(FileMatch {
            base: m,
            archive_path: Vec::new(),
            kubernetes_secret_type: Some("kubernetes.io/tls".to_string()),
            archive_package: None,
        });
    }
}

/// The `auth-provider.config` values that hold credentials, with their field names.
fn auth_provider_secrets(user: &Node) -> impl Iterator<Item = (String, &Scalar)> {
    user.path(&["auth-provider", "config"])
        .map(Node::entries)
        .unwrap_or_default()
        .iter()
        .filter(|(key, _)| PROVIDER_SECRETS.contains(&key.as_str()))
        .filter_map(|(key, value)| {
            let scalar = value.as_scalar()?;
            Some((format!("auth-provider.config.{key}"), scalar))
        })
}

/// The `exec.env[]` values whose names say they are credentials and that look like one.
fn exec_env_secrets(user: &Node) -> impl Iterator<Item = (String, &Scalar)> {
    user.path(&["exec", "env"])
        .map(Node::items)
        .unwrap_or_default()
        .iter()
        .filter_map(|variable| {
            let var = variable.get("name").and_then(Node::as_str)?;
            let value = variable.get("value").and_then(Node::as_scalar)?;
            (secret_looking_name(var) && credible_value(value.value.as_bytes()))
                .then(|| (format!("exec.env.{var}"), value))
        })
}

/// Reports a user's plain values (a token, a password) under the kubeconfig rule, or adds
/// what is known about them to a regex match of the same text.
struct PlainValues<'a> {
    detector: &'a Detector,
    rule: usize,
    user: &'a str,
    found: &'a mut Vec<FileMatch>,
}

impl PlainValues<'_> {
    fn report(&mut self, scalar: &Scalar, field: &str, extra: Vec<(String, String)>, kind: &str) {
        let value = scalar.value.trim();
        if value.is_empty() || is_placeholder(value.as_bytes()) {
            return;
        }
        let mut details = user_details(self.user, field);
        details.extend(extra);
        let span: Range<usize> = scalar.span.clone();
        let m = decoder_match(
            self.detector,
            self.rule,
            span,
            value.as_bytes().to_vec(),
            None,
            details,
        );
        push_or_enrich(
            self.found,
            FileMatch {
                base: m,
                archive_path: Vec::new(),
                kubernetes_secret_type: Some(kind.to_string()),
                archive_package: None,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::decode::yaml::parse_documents;

    #[test]
    fn provider_and_exec_values_are_picked_by_name() {
        let text = "\
user:
  auth-provider:
    config:
      id-token: Zq3LmN8pR2sT4vW6
      client-id: kubernetes
      refresh-token: [not, a, scalar]
  exec:
    env:
    - name: API_TOKEN
      value: Zq3LmN8pR2sT4vW6
    - name: REGION
      value: Zq3LmN8pR2sT4vW6
    - name: DB_PASSWORD
      value: changeme
";
        let documents = parse_documents(text);
        let user = documents[0].get("user").expect("a user");
        let provider: Vec<String> = auth_provider_secrets(user)
            .map(|(field, _)| field)
            .collect();
        assert_eq!(provider, ["auth-provider.config.id-token"]);
        let env: Vec<(String, &str)> = exec_env_secrets(user)
            .map(|(field, scalar)| (field, scalar.value.as_str()))
            .collect();
        assert_eq!(
            env,
            [("exec.env.API_TOKEN".to_string(), "Zq3LmN8pR2sT4vW6")]
        );
    }
}
