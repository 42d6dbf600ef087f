//! Decoders and structure-based detection (`Detector::scan_file`): Kubernetes Secret manifests
//! of every type, kubeconfig, docker/podman credential files, PKCS#12 and Java keystores made
//! by the real tools, TLS key pairs, nested archives and their limits, and malformed input.
//!
//! Fixtures are made at test time with random values. Most tests run the decoder rules of
//! `signatures/decoded.toml` (plus a password rule written here for archive members), so they
//! do not depend on the regex rule files; the assertions that do say so.

mod support;

use std::io::{Cursor, Write};
use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use stowaway::detect::rules::{BUILTIN_RULE_FILES, builtin_rules, parse_rule_file};
use stowaway::detect::{Detector, FileMatch, FileScan, Limits, Severity};
use support::secrets;

/// A password rule of this test's own, so archive members have something to match without
/// the regex rule files.
const TEST_PASSWORD_RULE: &str = r#"
[[rules]]
id = "test-properties-password"
name = "Password property (test rule)"
description = "A password property, for the decoder tests."
severity = "high"
keywords = ["password"]
regex = '''(?i)password\s*[=:]\s*([A-Za-z0-9!#%+\-_=]{8,64})'''
"#;

fn decoded_rules() -> Vec<stowaway::detect::Rule> {
    let (name, text) = BUILTIN_RULE_FILES
        .iter()
        .find(|(name, _)| *name == "decoded.toml")
        .expect("signatures/decoded.toml is built in");
    parse_rule_file(text, name).expect("decoded.toml parses")
}

/// The decoder rules alone.
fn detector() -> Detector {
    Detector::new(decoded_rules()).unwrap()
}

/// The decoder rules plus [`TEST_PASSWORD_RULE`].
fn detector_with_password_rule() -> Detector {
    let mut rules = decoded_rules();
    rules.extend(parse_rule_file(TEST_PASSWORD_RULE, "test").unwrap());
    Detector::new(rules).unwrap()
}

fn rule_id<'a>(detector: &'a Detector, m: &FileMatch) -> &'a str {
    &detector.rules()[m.base.rule].id
}

fn detail<'a>(m: &'a FileMatch, key: &str) -> Option<&'a str> {
    m.base
        .details
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn secret_text(m: &FileMatch) -> String {
    String::from_utf8_lossy(&m.base.secret).into_owned()
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    STANDARD.encode(bytes)
}

/// Every match must point inside the file.
fn check_offsets(content: &[u8], found: &[FileMatch]) {
    for m in found {
        assert!(
            m.base.start <= m.base.end && m.base.end <= content.len(),
            "match {}..{} outside a file of {} bytes",
            m.base.start,
            m.base.end,
            content.len()
        );
    }
}

/// The matches of the Secret `id` (namespace/name) and key.
fn of_secret<'a>(found: &'a [FileMatch], id: &str, key: &str) -> Vec<&'a FileMatch> {
    found
        .iter()
        .filter(|m| {
            detail(m, "kubernetes_secret") == Some(id)
                && detail(m, "kubernetes_secret_key") == Some(key)
        })
        .collect()
}

/// The only match of a Secret's key; checks that it lies on the value's text in `content`.
fn one_of_secret<'a>(
    content: &str,
    found: &'a [FileMatch],
    id: &str,
    key: &str,
    value_text: &str,
) -> &'a FileMatch {
    let matches = of_secret(found, id, key);
    assert_eq!(
        matches.len(),
        1,
        "{id} {key}: expected one match, got {matches:#?}"
    );
    let m = matches[0];
    let at = content
        .find(value_text)
        .unwrap_or_else(|| panic!("{value_text} not in the fixture"));
    assert!(
        m.base.start >= at && m.base.end <= at + value_text.len(),
        "{id} {key}: match {}..{} is not on the value at {at}..{}",
        m.base.start,
        m.base.end,
        at + value_text.len()
    );
    m
}

fn fake_certificate_pem() -> String {
    // Structurally a DER SEQUENCE; not a real certificate.
    let body = secrets::der_tlv(0x30, &secrets::random_bytes(300));
    secrets::pem("CERTIFICATE", &body, 64)
}

/// Values of one Secret of each type, so each test can lay them out differently.
struct Planted {
    basic_user: String,
    basic_password: String,
    ssh_key: String,
    tls_key: String,
    tls_cert: String,
    registry_user: String,
    registry_password: String,
    dockerconfigjson: String,
    dockercfg: String,
    legacy_password: String,
    sa_token: String,
    token_id: String,
    token_secret: String,
    opaque_token: String,
    string_password: String,
}

impl Planted {
    fn new() -> Planted {
        let registry_user = format!("robot-{}", secrets::base62(6).to_lowercase());
        let registry_password = secrets::password(20);
        let legacy_password = secrets::password(18);
        let auth = b64(format!("{registry_user}:{registry_password}"));
        let legacy_auth = b64(format!("{registry_user}:{legacy_password}"));
        Planted {
            basic_user: format!("svc-{}", secrets::base62(5).to_lowercase()),
            basic_password: secrets::password(16),
            ssh_key: secrets::openssh_private_key(),
            tls_key: secrets::rsa_private_key_pem(),
            tls_cert: fake_certificate_pem(),
            dockerconfigjson: json!({"auths": {"registry.example.org": {"auth": auth}}})
                .to_string(),
            dockercfg:
                json!({"legacy.example.org": {"auth": legacy_auth, "email": "ci@example.org"}})
                    .to_string(),
            registry_user,
            registry_password,
            legacy_password,
            sa_token: secrets::jwt(),
            token_id: secrets::random_from(b"abcdefghijklmnopqrstuvwxyz0123456789", 6),
            token_secret: secrets::random_from(b"abcdefghijklmnopqrstuvwxyz0123456789", 16),
            opaque_token: secrets::base62(32),
            string_password: secrets::password(14),
        }
    }

    /// (name, type, data (base64-encoded here), stringData) of each Secret.
    #[allow(clippy::type_complexity)]
    fn secrets(
        &self,
    ) -> Vec<(
        &'static str,
        &'static str,
        Vec<(&'static str, String)>,
        Vec<(&'static str, String)>,
    )> {
        vec![
            (
                "basic",
                "kubernetes.io/basic-auth",
                vec![
                    ("username", self.basic_user.clone()),
                    ("password", self.basic_password.clone()),
                ],
                vec![],
            ),
            (
                "ssh",
                "kubernetes.io/ssh-auth",
                vec![("ssh-privatekey", self.ssh_key.clone())],
                vec![],
            ),
            (
                "tls",
                "kubernetes.io/tls",
                vec![
                    ("tls.crt", self.tls_cert.clone()),
                    ("tls.key", self.tls_key.clone()),
                ],
                vec![],
            ),
            (
                "pull",
                "kubernetes.io/dockerconfigjson",
                vec![(".dockerconfigjson", self.dockerconfigjson.clone())],
                vec![],
            ),
            (
                "pull-legacy",
                "kubernetes.io/dockercfg",
                vec![(".dockercfg", self.dockercfg.clone())],
                vec![],
            ),
            (
                "sa",
                "kubernetes.io/service-account-token",
                vec![
                    ("token", self.sa_token.clone()),
                    ("namespace", "kube-system".to_string()),
                ],
                vec![],
            ),
            (
                "bootstrap",
                "bootstrap.kubernetes.io/token",
                vec![
                    ("token-id", self.token_id.clone()),
                    ("token-secret", self.token_secret.clone()),
                    ("usage-bootstrap-authentication", "true".to_string()),
                ],
                vec![],
            ),
            (
                "opaque",
                "Opaque",
                vec![
                    ("api-token", self.opaque_token.clone()),
                    ("log-level", "debug".to_string()),
                    ("password", "changeme".to_string()),
                ],
                vec![("db-password", self.string_password.clone())],
            ),
        ]
    }

    fn yaml_documents(&self) -> String {
        let mut out = String::new();
        for (name, kind, data, string_data) in self.secrets() {
            out.push_str(&format!(
                "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: apps\ntype: {kind}\n"
            ));
            if !data.is_empty() {
                out.push_str("data:\n");
                for (key, value) in &data {
                    out.push_str(&format!("  {key}: {}\n", b64(value)));
                }
            }
            if !string_data.is_empty() {
                out.push_str("stringData:\n");
                for (key, value) in &string_data {
                    out.push_str(&format!("  {key}: \"{value}\"\n"));
                }
            }
        }
        out
    }

    fn json_objects(&self) -> Vec<serde_json::Value> {
        self.secrets()
            .into_iter()
            .map(|(name, kind, data, string_data)| {
                let data: serde_json::Map<String, serde_json::Value> = data
                    .iter()
                    .map(|(k, v)| (k.to_string(), json!(b64(v))))
                    .collect();
                let string_data: serde_json::Map<String, serde_json::Value> = string_data
                    .iter()
                    .map(|(k, v)| (k.to_string(), json!(v)))
                    .collect();
                json!({
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": name, "namespace": "apps"},
                    "type": kind,
                    "data": data,
                    "stringData": string_data,
                })
            })
            .collect()
    }

    /// Checks the findings of all the Secrets in `content`.
    fn check(&self, detector: &Detector, content: &str, found: &[FileMatch]) {
        check_offsets(content.as_bytes(), found);
        let kst = |m: &FileMatch| m.kubernetes_secret_type.clone().unwrap_or_default();

        let m = one_of_secret(
            content,
            found,
            "apps/basic",
            "password",
            &b64(&self.basic_password),
        );
        assert_eq!(secret_text(m), self.basic_password);
        assert_eq!(detail(m, "username"), Some(self.basic_user.as_str()));
        assert_eq!(
            detail(m, "kubernetes_secret_type"),
            Some("kubernetes.io/basic-auth")
        );
        assert_eq!(kst(m), "kubernetes.io/basic-auth");
        assert!(of_secret(found, "apps/basic", "username").is_empty());

        let m = one_of_secret(
            content,
            found,
            "apps/ssh",
            "ssh-privatekey",
            &b64(&self.ssh_key),
        );
        assert!(secret_text(m).contains("OPENSSH PRIVATE KEY"), "{m:?}");
        assert_eq!(kst(m), "kubernetes.io/ssh-auth");

        let m = one_of_secret(content, found, "apps/tls", "tls.key", &b64(&self.tls_key));
        assert!(secret_text(m).contains("PRIVATE KEY"), "{m:?}");
        assert_eq!(kst(m), "kubernetes.io/tls");
        assert!(
            of_secret(found, "apps/tls", "tls.crt")
                .iter()
                .all(|m| m.base.severity == Severity::Info),
            "a certificate alone is info at most"
        );

        let m = one_of_secret(
            content,
            found,
            "apps/pull",
            ".dockerconfigjson",
            &b64(&self.dockerconfigjson),
        );
        assert_eq!(rule_id(detector, m), "docker-registry-auth");
        assert_eq!(secret_text(m), self.registry_password);
        assert_eq!(detail(m, "registry"), Some("registry.example.org"));
        assert_eq!(detail(m, "username"), Some(self.registry_user.as_str()));
        assert_eq!(kst(m), "kubernetes.io/dockerconfigjson");

        let m = one_of_secret(
            content,
            found,
            "apps/pull-legacy",
            ".dockercfg",
            &b64(&self.dockercfg),
        );
        assert_eq!(rule_id(detector, m), "docker-registry-auth");
        assert_eq!(secret_text(m), self.legacy_password);
        assert_eq!(kst(m), "kubernetes.io/dockercfg");

        let m = one_of_secret(content, found, "apps/sa", "token", &b64(&self.sa_token));
        assert_eq!(secret_text(m), self.sa_token);
        assert_eq!(kst(m), "kubernetes.io/service-account-token");
        assert!(of_secret(found, "apps/sa", "namespace").is_empty());

        let m = one_of_secret(
            content,
            found,
            "apps/bootstrap",
            "token-secret",
            &b64(&self.token_secret),
        );
        assert_eq!(
            secret_text(m),
            format!("{}.{}", self.token_id, self.token_secret)
        );
        assert_eq!(detail(m, "token_id"), Some(self.token_id.as_str()));
        assert_eq!(kst(m), "bootstrap.kubernetes.io/token");
        assert!(of_secret(found, "apps/bootstrap", "token-id").is_empty());

        let m = one_of_secret(
            content,
            found,
            "apps/opaque",
            "api-token",
            &b64(&self.opaque_token),
        );
        assert_eq!(secret_text(m), self.opaque_token);
        assert_eq!(kst(m), "Opaque");
        assert!(of_secret(found, "apps/opaque", "log-level").is_empty());
        assert!(
            of_secret(found, "apps/opaque", "password").is_empty(),
            "changeme is a placeholder"
        );
        let m = one_of_secret(
            content,
            found,
            "apps/opaque",
            "db-password",
            &self.string_password,
        );
        assert_eq!(secret_text(m), self.string_password);
    }
}

#[test]
fn secrets_of_every_type_in_multi_document_yaml() {
    let detector = detector();
    let planted = Planted::new();
    let content = planted.yaml_documents();
    let found = detector.scan_file("deploy/secrets.yaml", content.as_bytes());
    planted.check(&detector, &content, &found);
}

#[test]
fn secrets_as_json_and_as_lists() {
    let detector = detector();
    let planted = Planted::new();
    // One JSON object per file.
    for object in planted.json_objects() {
        let content = serde_json::to_string_pretty(&object).unwrap();
        let found = detector.scan_file("secret.json", content.as_bytes());
        check_offsets(content.as_bytes(), &found);
        let name = object["metadata"]["name"].as_str().unwrap();
        assert!(
            found
                .iter()
                .any(|m| detail(m, "kubernetes_secret") == Some(&format!("apps/{name}"))),
            "{name}: {found:#?}"
        );
    }
    // `kubectl get secrets -o json`: a List.
    let list = json!({"apiVersion": "v1", "kind": "List", "items": planted.json_objects(), "metadata": {"resourceVersion": ""}});
    let content = serde_json::to_string_pretty(&list).unwrap();
    planted.check(
        &detector,
        &content,
        &detector.scan_file("all.json", content.as_bytes()),
    );
    // The same List in YAML.
    let mut yaml =
        String::from("apiVersion: v1\nkind: List\nmetadata:\n  resourceVersion: \"\"\nitems:\n");
    for doc in planted
        .yaml_documents()
        .split("---\n")
        .filter(|d| !d.is_empty())
    {
        for (index, line) in doc.lines().enumerate() {
            yaml.push_str(if index == 0 { "- " } else { "  " });
            yaml.push_str(line);
            yaml.push('\n');
        }
    }
    planted.check(
        &detector,
        &yaml,
        &detector.scan_file("all.yaml", yaml.as_bytes()),
    );
}

#[test]
fn kubectl_dump_with_metadata_noise_and_last_applied_configuration() {
    let detector = detector();
    let current = secrets::password(18);
    let previous = secrets::password(18);
    let applied = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": "prod"},
        "type": "kubernetes.io/basic-auth",
        "data": {"username": b64("app"), "password": b64(&previous)},
    });
    let content = format!(
        r#"apiVersion: v1
data:
  password: {}
  username: {}
kind: Secret
metadata:
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: |
      {}
  creationTimestamp: "2024-05-01T10:00:00Z"
  managedFields:
  - apiVersion: v1
    fieldsType: FieldsV1
    fieldsV1:
      f:data:
        .: {{}}
        f:password: {{}}
    manager: kubectl-client-side-apply
    operation: Update
    time: "2024-05-01T10:00:00Z"
  name: db
  namespace: prod
  resourceVersion: "48213"
  uid: 6f1c2a4e-8b1d-4c7e-9d2a-1b3c4d5e6f70
type: kubernetes.io/basic-auth
"#,
        b64(&current),
        b64("app"),
        applied
    );
    let found = detector.scan_file("backup/db-secret.yaml", content.as_bytes());
    check_offsets(content.as_bytes(), &found);
    let passwords: Vec<String> = of_secret(&found, "prod/db", "password")
        .iter()
        .map(|m| secret_text(m))
        .collect();
    assert!(passwords.contains(&current), "{found:#?}");
    assert!(
        passwords.contains(&previous),
        "the password recorded by kubectl apply: {found:#?}"
    );
    assert_eq!(passwords.len(), 2, "{passwords:?}");
    // The recorded one points into the annotation.
    let recorded = of_secret(&found, "prod/db", "password")
        .into_iter()
        .find(|m| secret_text(m) == previous)
        .unwrap();
    let annotation = content.find("last-applied-configuration").unwrap();
    assert!(recorded.base.start > annotation);
}

#[test]
fn things_that_are_not_secrets() {
    let detector = detector();
    let password = secrets::password(16);
    let config_map = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  password: {}\n",
        b64(&password)
    );
    let prose =
        "The kind: Secret object holds data: values in base64.\nusers: clusters:\n\"auths\"";
    let placeholder = "kind: Secret\nmetadata:\n  name: s\ntype: kubernetes.io/basic-auth\nstringData:\n  username: admin\n  password: ${DB_PASSWORD}\n";
    let invalid = "kind: Secret\nmetadata:\n  name: s\ntype: kubernetes.io/basic-auth\ndata:\n  password: '!!! not base64 !!!'\n";
    let template = "kind: Secret\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  password: {{ .Values.password | b64enc }}\n";
    for content in [config_map.as_str(), prose, placeholder, invalid, template] {
        let found = detector.scan_file("x.yaml", content.as_bytes());
        assert!(found.is_empty(), "{content}\n{found:#?}");
    }
}

#[test]
fn kubeconfig_users() {
    let detector = detector();
    let key = secrets::rsa_private_key_pem();
    let token = secrets::base62(40);
    let password = secrets::password(16);
    let env_secret = secrets::base62(24);
    let content = format!(
        r#"apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: {ca}
    server: https://203.0.113.10:6443
  name: prod
contexts:
- context:
    cluster: prod
    user: admin
  name: prod
current-context: prod
preferences: {{}}
users:
- name: admin
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
- name: ci
  user:
    token: {token}
- name: legacy
  user:
    username: ops
    password: {password}
- name: cloud
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: get-token
      env:
      - name: CLOUD_API_SECRET
        value: {env_secret}
      - name: CLOUD_REGION
        value: eu-west-3
"#,
        ca = b64(fake_certificate_pem()),
        cert = b64(fake_certificate_pem()),
        key = b64(&key),
    );
    let found = detector.scan_file("root/.kube/config", content.as_bytes());
    check_offsets(content.as_bytes(), &found);
    let by_user = |user: &str| -> Vec<&FileMatch> {
        found
            .iter()
            .filter(|m| detail(m, "kubeconfig_user") == Some(user))
            .collect()
    };
    let admin = by_user("admin");
    assert_eq!(admin.len(), 1, "{found:#?}");
    assert!(secret_text(admin[0]).contains("RSA PRIVATE KEY"));
    assert_eq!(detail(admin[0], "field"), Some("client-key-data"));
    let encoded = content.find(&b64(&key)).unwrap();
    assert!(admin[0].base.start >= encoded && admin[0].base.end <= encoded + b64(&key).len());
    let ci = by_user("ci");
    assert_eq!(ci.len(), 1);
    assert_eq!(secret_text(ci[0]), token);
    let legacy = by_user("legacy");
    assert_eq!(secret_text(legacy[0]), password);
    assert_eq!(detail(legacy[0], "username"), Some("ops"));
    let cloud = by_user("cloud");
    assert_eq!(
        cloud.len(),
        1,
        "only the secret-looking variable: {cloud:#?}"
    );
    assert_eq!(secret_text(cloud[0]), env_secret);
    assert_eq!(found.len(), 4, "{found:#?}");
}

#[test]
fn docker_and_podman_credential_files() {
    let detector = detector();
    let (user_a, pass_a) = ("ci-bot", secrets::password(20));
    let (user_b, pass_b) = ("deployer", secrets::password(24));
    let identity = secrets::base62(48);
    let config = serde_json::to_string_pretty(&json!({
        "auths": {
            "registry.example.org": {"auth": b64(format!("{user_a}:{pass_a}"))},
            "https://index.docker.io/v1/": {"auth": b64(format!("{user_b}:{pass_b}"))},
            "ghcr.example.org": {"auth": "", "identitytoken": identity},
        },
        "credHelpers": {"gcr.example.org": "gcloud"},
        "currentContext": "default"
    }))
    .unwrap();
    for path in ["root/.docker/config.json", "run/containers/0/auth.json"] {
        let found = detector.scan_file(path, config.as_bytes());
        check_offsets(config.as_bytes(), &found);
        assert_eq!(found.len(), 3, "{found:#?}");
        for m in &found {
            assert_eq!(rule_id(&detector, m), "docker-registry-auth");
            assert_eq!(
                m.kubernetes_secret_type.as_deref(),
                Some("kubernetes.io/dockerconfigjson")
            );
        }
        let a = found
            .iter()
            .find(|m| detail(m, "registry") == Some("registry.example.org"))
            .unwrap();
        assert_eq!(
            (secret_text(a), detail(a, "username")),
            (pass_a.clone(), Some(user_a))
        );
        let encoded = b64(format!("{user_a}:{pass_a}"));
        let at = config.find(&encoded).unwrap();
        assert!(a.base.start >= at && a.base.end <= at + encoded.len());
        let b = found
            .iter()
            .find(|m| detail(m, "registry") == Some("https://index.docker.io/v1/"))
            .unwrap();
        assert_eq!(
            (secret_text(b), detail(b, "username")),
            (pass_b.clone(), Some(user_b))
        );
        let t = found
            .iter()
            .find(|m| detail(m, "field") == Some("identitytoken"))
            .unwrap();
        assert_eq!(secret_text(t), identity);
    }
    // Legacy ~/.dockercfg.
    let legacy = json!({"registry.example.org": {"auth": b64(format!("{user_a}:{pass_a}")), "email": "ci@example.org"}}).to_string();
    let found = detector.scan_file("root/.dockercfg", legacy.as_bytes());
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(secret_text(&found[0]), pass_a);
    assert_eq!(
        found[0].kubernetes_secret_type.as_deref(),
        Some("kubernetes.io/dockercfg")
    );
    // Credential helpers only: nothing stored.
    let helpers = r#"{"auths": {"registry.example.org": {}}, "credsStore": "pass"}"#;
    assert!(
        detector
            .scan_file("config.json", helpers.as_bytes())
            .is_empty()
    );
}

fn run(command: &mut Command) {
    let output = command.output().expect("run tool");
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A key and self-signed certificate made by `openssl req -x509`, as PEM files in `dir`.
fn openssl_key_pair(dir: &Path) -> (Vec<u8>, Vec<u8>) {
    run(Command::new("openssl").current_dir(dir).args([
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "key.pem",
        "-out",
        "cert.pem",
        "-days",
        "2",
        "-subj",
        "/CN=stowaway-test",
    ]));
    (
        std::fs::read(dir.join("key.pem")).unwrap(),
        std::fs::read(dir.join("cert.pem")).unwrap(),
    )
}

#[test]
fn pkcs12_bundles_made_by_openssl() {
    if !support::tool_available("openssl") {
        return;
    }
    let detector = detector();
    let dir = support::tempdir();
    openssl_key_pair(dir.path());
    let password = secrets::password(12);
    run(Command::new("openssl").current_dir(dir.path()).args([
        "pkcs12",
        "-export",
        "-inkey",
        "key.pem",
        "-in",
        "cert.pem",
        "-out",
        "bundle.p12",
        "-passout",
        &format!("pass:{password}"),
    ]));
    // Key and certificate bags in the clear (no PBE), as some tools write them.
    run(Command::new("openssl").current_dir(dir.path()).args([
        "pkcs12",
        "-export",
        "-inkey",
        "key.pem",
        "-in",
        "cert.pem",
        "-out",
        "clear.p12",
        "-keypbe",
        "NONE",
        "-certpbe",
        "NONE",
        "-passout",
        "pass:",
    ]));
    let bundle = std::fs::read(dir.path().join("bundle.p12")).unwrap();
    // Found by structure: the name says nothing.
    let found = detector.scan_file("opt/app/data.bin", &bundle);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(rule_id(&detector, &found[0]), "pkcs12-keystore");
    assert_eq!(found[0].base.severity, Severity::High);
    assert_eq!(detail(&found[0], "private_keys"), Some("1"));
    assert!(secret_text(&found[0]).contains(&format!("{} bytes", bundle.len())));

    let clear = std::fs::read(dir.path().join("clear.p12")).unwrap();
    let found = detector.scan_file("clear.p12", &clear);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].base.severity, Severity::Critical);
    assert_eq!(detail(&found[0], "encrypted"), Some("no"));

    // Truncated, or with bytes after it: not a bundle.
    assert!(
        detector
            .scan_file("x", &bundle[..bundle.len() - 7])
            .is_empty()
    );
    let mut longer = bundle.clone();
    longer.extend_from_slice(b"trailer");
    assert!(detector.scan_file("x", &longer).is_empty());
}

#[test]
fn java_keystores_made_by_keytool() {
    if !support::tool_available("keytool") {
        return;
    }
    let detector = detector();
    let dir = support::tempdir();
    let keytool = |args: &[&str]| {
        run(Command::new("keytool")
            .current_dir(dir.path())
            .args(args)
            .args(["-storepass", "s3cr3t-st0re", "-noprompt"]));
    };
    keytool(&[
        "-genkeypair",
        "-alias",
        "server",
        "-keyalg",
        "RSA",
        "-keysize",
        "2048",
        "-dname",
        "CN=stowaway-test",
        "-validity",
        "2",
        "-keystore",
        "server.jks",
        "-storetype",
        "jks",
    ]);
    keytool(&[
        "-genseckey",
        "-alias",
        "aes",
        "-keyalg",
        "AES",
        "-keysize",
        "128",
        "-keystore",
        "secret.jceks",
        "-storetype",
        "jceks",
    ]);
    keytool(&[
        "-genkeypair",
        "-alias",
        "server",
        "-keyalg",
        "EC",
        "-dname",
        "CN=stowaway-test",
        "-validity",
        "2",
        "-keystore",
        "server.p12",
        "-storetype",
        "pkcs12",
    ]);
    keytool(&[
        "-exportcert",
        "-alias",
        "server",
        "-keystore",
        "server.jks",
        "-file",
        "server.cer",
    ]);
    keytool(&[
        "-importcert",
        "-alias",
        "ca",
        "-file",
        "server.cer",
        "-keystore",
        "trust.jks",
        "-storetype",
        "jks",
    ]);
    keytool(&[
        "-importcert",
        "-alias",
        "ca",
        "-file",
        "server.cer",
        "-keystore",
        "trust.p12",
        "-storetype",
        "pkcs12",
    ]);
    let read = |name: &str| std::fs::read(dir.path().join(name)).unwrap();

    let found = detector.scan_file("app/conf/store", &read("server.jks"));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(rule_id(&detector, &found[0]), "java-keystore");
    assert_eq!(detail(&found[0], "format"), Some("JKS"));
    assert_eq!(detail(&found[0], "private_keys"), Some("1"));
    assert_eq!(detail(&found[0], "aliases"), Some("server"));

    let found = detector.scan_file("app/conf/keys", &read("secret.jceks"));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(detail(&found[0], "format"), Some("JCEKS"));
    assert_eq!(detail(&found[0], "secret_keys"), Some("1"));

    let found = detector.scan_file("app/conf/server.p12", &read("server.p12"));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(rule_id(&detector, &found[0]), "pkcs12-keystore");
    assert_eq!(found[0].base.severity, Severity::High);

    // Trust stores hold public certificates: nothing (JKS), or info (PKCS#12, whose
    // certificates are encrypted and so cannot be told from keys).
    assert!(detector.scan_file("cacerts", &read("trust.jks")).is_empty());
    let found = detector.scan_file("cacerts.p12", &read("trust.p12"));
    assert!(
        found.iter().all(|m| m.base.severity == Severity::Info),
        "{found:#?}"
    );
    // The machine's own JDK trust store, if there is one.
    for cacerts in ["/etc/ssl/certs/java/cacerts"] {
        if let Ok(bytes) = std::fs::read(cacerts) {
            let found = detector.scan_file(cacerts, &bytes);
            assert!(
                found.iter().all(|m| m.base.severity == Severity::Info),
                "{cacerts}: {found:#?}"
            );
        }
    }
}

#[test]
fn tls_key_pair_in_one_file() {
    let detector = detector();
    let (key, cert) = if support::tool_available("openssl") {
        let dir = support::tempdir();
        openssl_key_pair(dir.path())
    } else {
        (
            secrets::rsa_private_key_pem().into_bytes(),
            fake_certificate_pem().into_bytes(),
        )
    };
    let mut both = cert.clone();
    both.extend_from_slice(&key);
    let found = detector.scan_file("etc/nginx/server.pem", &both);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(rule_id(&detector, &found[0]), "tls-key-pair");
    assert_eq!(
        found[0].kubernetes_secret_type.as_deref(),
        Some("kubernetes.io/tls")
    );
    assert_eq!(found[0].base.start, cert.len());
    assert_eq!(found[0].base.secret.trim_ascii(), key.trim_ascii());
    // A certificate alone is no pair.
    let found = detector.scan_file("etc/ssl/certs/ca.pem", &cert);
    assert!(
        found
            .iter()
            .all(|m| rule_id(&detector, m) != "tls-key-pair")
    );
}

#[test]
fn with_the_builtin_rules_key_findings_fold_into_the_pair() {
    // Depends on the PEM private key rules of signatures/keys.toml.
    let detector = Detector::new(builtin_rules().expect("built-in rules load")).unwrap();
    let key = secrets::rsa_private_key_pem();
    let both = format!("{}{key}", fake_certificate_pem());
    let found = detector.scan_file("server.pem", both.as_bytes());
    let ids: Vec<&str> = found.iter().map(|m| rule_id(&detector, m)).collect();
    assert_eq!(ids, vec!["tls-key-pair"], "{found:#?}");
    // And the key alone is a key finding, not a pair.
    let found = detector.scan_file("server.key", key.as_bytes());
    assert!(!found.is_empty());
    assert!(
        found
            .iter()
            .all(|m| rule_id(&detector, m) != "tls-key-pair")
    );
}

// -------------------------------------------------------------------------------------------
// Nested archives
// -------------------------------------------------------------------------------------------

enum Member<'a> {
    Deflated(&'a str, Vec<u8>),
    Stored(&'a str, Vec<u8>),
}

fn zip(members: Vec<Member>) -> Vec<u8> {
    use zip::write::SimpleFileOptions;
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for member in members {
        let (name, bytes, method) = match member {
            Member::Deflated(name, bytes) => (name, bytes, zip::CompressionMethod::Deflated),
            Member::Stored(name, bytes) => (name, bytes, zip::CompressionMethod::Stored),
        };
        writer
            .start_file(
                name,
                SimpleFileOptions::default().compression_method(method),
            )
            .unwrap();
        writer.write_all(&bytes).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn tar(members: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, bytes) in members {
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, name, &bytes[..]).unwrap();
    }
    builder.into_inner().unwrap()
}

fn basic_auth_secret(name: &str, password: &str) -> Vec<u8> {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\ntype: kubernetes.io/basic-auth\ndata:\n  username: {}\n  password: {}\n",
        b64("app"),
        b64(password)
    )
    .into_bytes()
}

/// A Spring Boot jar: a properties file with a password, a Secret manifest, and a library jar
/// inside holding another Secret.
fn spring_jar(db_password: &str, secret_password: &str, lib_password: &str) -> Vec<u8> {
    let lib = zip(vec![
        Member::Deflated("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\n".to_vec()),
        Member::Deflated(
            "k8s/lib-secret.yaml",
            basic_auth_secret("lib", lib_password),
        ),
    ]);
    zip(vec![
        Member::Deflated("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\nMain-Class: org.springframework.boot.loader.JarLauncher\n".to_vec()),
        Member::Deflated(
            "BOOT-INF/classes/application.properties",
            format!("server.port=8080\nspring.datasource.url=jdbc:postgresql://db:5432/shop\nspring.datasource.username=shop\nspring.datasource.password={db_password}\n").into_bytes(),
        ),
        Member::Stored("BOOT-INF/classes/k8s/secret.yaml", basic_auth_secret("app", secret_password)),
        Member::Stored("BOOT-INF/lib/shop-lib.jar", lib),
        Member::Deflated("BOOT-INF/classes/com/example/App.class", secrets::random_bytes(2000)),
    ])
}

fn find_secret<'a>(found: &'a [FileMatch], secret: &str) -> &'a FileMatch {
    let matches: Vec<&FileMatch> = found.iter().filter(|m| secret_text(m) == secret).collect();
    assert_eq!(matches.len(), 1, "{secret}: {found:#?}");
    matches[0]
}

#[test]
fn members_of_a_jar_are_scanned_and_decoded() {
    let detector = detector_with_password_rule();
    let (db, secret, lib) = (
        secrets::password(16),
        secrets::password(16),
        secrets::password(16),
    );
    let jar = spring_jar(&db, &secret, &lib);
    let scan = detector.scan_file_with_skips("app/app.jar", &jar);
    assert!(scan.skipped.is_empty(), "{:?}", scan.skipped);
    check_offsets(&jar, &scan.matches);
    let m = find_secret(&scan.matches, &db);
    assert_eq!(
        m.archive_path,
        vec!["BOOT-INF/classes/application.properties"]
    );
    assert_eq!(rule_id(&detector, m), "test-properties-password");
    let m = find_secret(&scan.matches, &secret);
    assert_eq!(m.archive_path, vec!["BOOT-INF/classes/k8s/secret.yaml"]);
    assert_eq!(detail(m, "kubernetes_secret"), Some("app"));
    // A stored member: the offset is exact, on the encoded value.
    let encoded = b64(&secret);
    let at = memchr::memmem::find(&jar, encoded.as_bytes()).unwrap();
    assert!(m.base.start >= at && m.base.end <= at + encoded.len());
    let m = find_secret(&scan.matches, &lib);
    assert_eq!(
        m.archive_path,
        vec!["BOOT-INF/lib/shop-lib.jar", "k8s/lib-secret.yaml"]
    );
    assert_eq!(scan.matches.len(), 3, "{:#?}", scan.matches);
}

#[test]
fn tar_gzip_and_plain_gzip() {
    let detector = detector_with_password_rule();
    let (a, b, c) = (
        secrets::password(16),
        secrets::password(16),
        secrets::password(16),
    );
    let archive = tar(&[
        ("manifests/secret.yaml", basic_auth_secret("a", &a)),
        ("README", b"nothing here\n".to_vec()),
        (
            "conf/app.properties",
            format!("db.password={b}\n").into_bytes(),
        ),
    ]);
    for (name, bytes) in [
        ("backup.tar", archive.clone()),
        ("backup.tar.gz", gzip(&archive)),
    ] {
        let scan = detector.scan_file_with_skips(name, &bytes);
        assert!(scan.skipped.is_empty(), "{:?}", scan.skipped);
        check_offsets(&bytes, &scan.matches);
        assert_eq!(
            find_secret(&scan.matches, &a).archive_path,
            vec!["manifests/secret.yaml"]
        );
        assert_eq!(
            find_secret(&scan.matches, &b).archive_path,
            vec!["conf/app.properties"]
        );
        assert_eq!(scan.matches.len(), 2);
    }
    let single = gzip(&basic_auth_secret("c", &c));
    let found = detector.scan_file("etc/backup/secret.yaml.gz", &single);
    assert_eq!(find_secret(&found, &c).archive_path, vec!["secret.yaml"]);
}

/// A tar inside a file is read as runtimes read layers: a directory header's size hides no
/// member, and a sparse member's stored data is scanned (its offsets are its stored bytes').
#[test]
fn nested_tars_are_read_as_runtimes_read_them() {
    use support::craft::{base_256, end, file, gnu_header, header, padded, seal};
    let detector = detector_with_password_rule();
    let (hidden, sparse) = (secrets::password(16), secrets::password(16));
    let mut archive = header(b"conf/", b'5', 1024, b"").to_vec();
    archive.extend(file(
        "conf/app.properties",
        format!("db.password={hidden}\n").as_bytes(),
    ));
    let data = format!("db.password={sparse}\n").into_bytes();
    let mut member = gnu_header(b"disk.img", b'S', data.len() as u64);
    member[386..398].copy_from_slice(&base_256(1 << 40));
    member[398..410].copy_from_slice(&base_256(data.len() as u64));
    member[483..495].copy_from_slice(&base_256((1 << 40) + data.len() as u64));
    seal(&mut member);
    archive.extend(member);
    archive.extend(padded(&data));
    archive.extend(end());
    let scan = detector.scan_file_with_skips("backup.tar", &archive);
    check_offsets(&archive, &scan.matches);
    assert_eq!(
        find_secret(&scan.matches, &hidden).archive_path,
        vec!["conf/app.properties"]
    );
    assert_eq!(
        find_secret(&scan.matches, &sparse).archive_path,
        vec!["disk.img"]
    );
    assert_eq!(scan.skipped.len(), 1, "{:?}", scan.skipped);
    assert!(scan.skipped[0].reason.contains("claims 1024 data bytes"));
    assert_eq!(scan.skipped[0].what, "backup.tar!/conf/");
}

#[test]
fn archive_depth_is_limited_and_counted() {
    let detector = detector();
    let (three, four) = (secrets::password(16), secrets::password(16));
    // secret.yaml in three nested zips: found. In four: the innermost zip is not opened.
    let mut nested3 = basic_auth_secret("three", &three);
    let mut nested4 = basic_auth_secret("four", &four);
    for level in 0..3 {
        nested3 = zip(vec![Member::Deflated(
            if level == 0 {
                "secret.yaml"
            } else {
                "inner.zip"
            },
            nested3,
        )]);
    }
    for level in 0..4 {
        nested4 = zip(vec![Member::Deflated(
            if level == 0 {
                "secret.yaml"
            } else {
                "inner.zip"
            },
            nested4,
        )]);
    }
    let scan = detector.scan_file_with_skips("three.zip", &nested3);
    assert!(scan.skipped.is_empty(), "{:?}", scan.skipped);
    assert_eq!(
        find_secret(&scan.matches, &three).archive_path,
        vec!["inner.zip", "inner.zip", "secret.yaml"]
    );
    let scan = detector.scan_file_with_skips("four.zip", &nested4);
    assert!(!scan.matches.iter().any(|m| secret_text(m) == four));
    assert_eq!(scan.skipped.len(), 1, "{:?}", scan.skipped);
    assert!(scan.skipped[0].reason.contains("nested deeper than 3"));
    assert_eq!(
        scan.skipped[0].what,
        "four.zip!/inner.zip!/inner.zip!/inner.zip"
    );
}

#[test]
fn default_limits() {
    let limits = Limits::default();
    assert_eq!(limits.max_archive_depth, 3);
    assert_eq!(limits.max_decompressed_bytes, 64 << 20);
    assert_eq!(limits.max_members, 10_000);
}

/// The default limits, with the decompressed-size one small enough for a quick test.
fn small_budget() -> Limits {
    Limits {
        max_decompressed_bytes: 4 << 20,
        ..Limits::default()
    }
}

#[test]
fn decompression_bombs_stop_at_the_budget() {
    let detector = detector();
    // 8 gzip members of 1 MiB of blank lines each, then a Secret: 8 MiB from a few KiB.
    let zeros = gzip(&vec![b'\n'; 1 << 20]);
    let secret = secrets::password(16);
    let mut bomb: Vec<u8> = zeros.repeat(8);
    bomb.extend(gzip(&basic_auth_secret("late", &secret)));
    let scan = detector.scan_file_with_limits("bomb.gz", &bomb, small_budget());
    assert!(!scan.matches.iter().any(|m| secret_text(m) == secret));
    assert_eq!(scan.skipped.len(), 1, "{:?}", scan.skipped);
    assert_eq!(
        scan.skipped[0].reason,
        "decompressed-size limit (4 MiB per file) reached; scanned the first 4194304 bytes"
    );
    // Under the default limits the same file is opened whole.
    let scan = detector.scan_file_with_skips("bomb.gz", &bomb);
    assert!(scan.skipped.is_empty(), "{:?}", scan.skipped);
    find_secret(&scan.matches, &secret);

    // The same in a zip, spread over members: those past the budget are counted.
    let one = vec![0u8; 1 << 20];
    let mut members: Vec<Member> = (0..8)
        .map(|i| {
            Member::Deflated(
                Box::leak(format!("zeros/{i}").into_boxed_str()),
                one.clone(),
            )
        })
        .collect();
    members.push(Member::Deflated(
        "late/secret.yaml",
        basic_auth_secret("late", &secret),
    ));
    let archive = zip(members);
    let scan = detector.scan_file_with_limits("bomb.zip", &archive, small_budget());
    assert!(!scan.matches.iter().any(|m| secret_text(m) == secret));
    let reasons: Vec<String> = scan
        .skipped
        .iter()
        .map(|s| format!("{}: {}", s.reason, s.what))
        .collect();
    assert_eq!(
        reasons,
        vec![
            "decompressed-size limit (4 MiB per file) reached: bomb.zip: 5 member(s) not scanned"
                .to_string(),
        ]
    );
}

#[test]
fn member_count_is_limited_and_counted() {
    let detector = detector();
    let secret = secrets::password(16);
    let mut members: Vec<Member> = (0..60)
        .map(|i| Member::Stored(Box::leak(format!("f/{i}").into_boxed_str()), b"x".to_vec()))
        .collect();
    members.push(Member::Stored(
        "z/secret.yaml",
        basic_auth_secret("z", &secret),
    ));
    let archive = zip(members);
    let limits = Limits {
        max_members: 50,
        ..Limits::default()
    };
    let scan = detector.scan_file_with_limits("many.zip", &archive, limits);
    assert!(!scan.matches.iter().any(|m| secret_text(m) == secret));
    assert_eq!(scan.skipped.len(), 1, "{:?}", scan.skipped);
    assert_eq!(
        scan.skipped[0].reason,
        "archive member limit (50 per file) reached"
    );
    assert_eq!(scan.skipped[0].what, "many.zip: 11 member(s) not scanned");
    // Under the default limit, all of them.
    let scan = detector.scan_file_with_skips("many.zip", &archive);
    assert!(scan.skipped.is_empty());
    find_secret(&scan.matches, &secret);
}

// -------------------------------------------------------------------------------------------
// Malformed input
// -------------------------------------------------------------------------------------------

/// Every fixture kind, for the garbage tests.
fn fixtures() -> Vec<(&'static str, Vec<u8>)> {
    let planted = Planted::new();
    let mut out = vec![
        ("secrets.yaml", planted.yaml_documents().into_bytes()),
        (
            "secrets.json",
            serde_json::to_vec(&json!({"kind": "List", "items": planted.json_objects()})).unwrap(),
        ),
        (
            "config.json",
            serde_json::to_vec(&json!({"auths": {"r.example.org": {"auth": b64("u:Zq3LmN8pR2sT")}}}))
                .unwrap(),
        ),
        (
            "kubeconfig",
            format!(
                "kind: Config\nclusters: []\nusers:\n- name: a\n  user:\n    client-key-data: {}\n    token: {}\n",
                b64(secrets::rsa_private_key_pem()),
                secrets::base62(30)
            )
            .into_bytes(),
        ),
        ("app.jar", spring_jar(&secrets::password(12), &secrets::password(12), &secrets::password(12))),
        ("b.tar.gz", gzip(&tar(&[("s.yaml", basic_auth_secret("s", &secrets::password(12)))]))),
        (
            "pair.pem",
            format!("{}{}", fake_certificate_pem(), secrets::rsa_private_key_pem()).into_bytes(),
        ),
    ];
    // Small binary stores, as the rule examples have them.
    for rule in decoded_rules() {
        for example in rule
            .examples
            .iter()
            .filter_map(|e| e.strip_prefix("base64:"))
        {
            out.push(("store.bin", STANDARD.decode(example).unwrap()));
        }
    }
    out
}

/// Runs `f` on a thread with a small stack, as a rayon worker has: deep input must not
/// overflow it.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .expect("no panic, no stack overflow")
}

#[test]
fn garbage_does_not_panic() {
    on_small_stack(|| {
        let detector = detector();
        let deep_yaml = format!("kind: Secret\ndata:\n{}", "- ".repeat(200_000));
        let deep_flow = format!("{{\"auths\": {}}}", "[".repeat(200_000));
        let mut inputs: Vec<Vec<u8>> = vec![
            Vec::new(),
            b"PK\x03\x04".to_vec(),
            b"PK\x05\x06".to_vec(),
            vec![0x1F, 0x8B, 0x08],
            vec![0xFE, 0xED, 0xFE, 0xED, 0, 0, 0, 2, 0x7F, 0xFF, 0xFF, 0xFF],
            vec![0xCE, 0xCE, 0xCE, 0xCE, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 3],
            vec![0x30, 0x80, 0x02, 0x01, 0x03],
            [0x30u8, 0x80].repeat(50_000),
            [0x24u8, 0x80].repeat(50_000),
            deep_yaml.into_bytes(),
            deep_flow.into_bytes(),
            b"kind: Secret\ndata: [\n".to_vec(),
            b"kind: Secret\ndata:\n  a: \xff\xfe\n".to_vec(),
            "kind: Secret\ndata:\n  password: ===\n  token: \"\\u0000\"\n"
                .as_bytes()
                .to_vec(),
            format!(
                "kind: List\nitems:\n{}",
                "- kind: List\n  items:\n".repeat(1000)
            )
            .into_bytes(),
        ];
        let mut tar_header = vec![0u8; 1024];
        tar_header[257..262].copy_from_slice(b"ustar");
        tar_header[124..135].copy_from_slice(b"77777777777");
        inputs.push(tar_header);
        fastrand::seed(11);
        for _ in 0..50 {
            inputs.push(secrets::random_bytes(fastrand::usize(..4096)));
        }
        for input in &inputs {
            let scan = detector.scan_file_with_skips("garbage", input);
            check_offsets(input, &scan.matches);
        }
    });
}

#[test]
fn mutated_fixtures_do_not_panic() {
    on_small_stack(|| {
        let detector = detector_with_password_rule();
        fastrand::seed(20_240_501);
        for (name, fixture) in fixtures() {
            // Truncations at every eighth of the file, then random mutations.
            for cut in 1..8 {
                let cut = fixture.len() * cut / 8;
                let scan = detector.scan_file_with_skips(name, &fixture[..cut]);
                check_offsets(&fixture[..cut], &scan.matches);
            }
            for round in 0..60 {
                let mut bytes = fixture.clone();
                let edits = 1 + round % 8;
                for _ in 0..edits {
                    if bytes.is_empty() {
                        break;
                    }
                    let at = fastrand::usize(..bytes.len());
                    match fastrand::u8(..4) {
                        0 => bytes[at] = fastrand::u8(..),
                        1 => bytes[at] ^= 1 << fastrand::u8(..8),
                        2 => {
                            let end = (at + fastrand::usize(..64)).min(bytes.len());
                            bytes.drain(at..end);
                        }
                        _ => {
                            let chunk = secrets::random_bytes(fastrand::usize(..16));
                            bytes.splice(at..at, chunk);
                        }
                    }
                }
                let scan: FileScan = detector.scan_file_with_skips(name, &bytes);
                check_offsets(&bytes, &scan.matches);
            }
        }
    });
}

// -------------------------------------------------------------------------------------------
// End to end
// -------------------------------------------------------------------------------------------

#[test]
fn an_image_with_a_secret_manifest_and_a_jar() {
    use support::{Compression, Entry, Format, ImageSpec, Layer};
    let password = secrets::password(16);
    let jar_password = secrets::password(16);
    let registry_password = secrets::password(20);
    let docker = json!({"auths": {"registry.example.org": {"auth": b64(format!("ci:{registry_password}"))}}})
        .to_string();
    let spec = ImageSpec {
        layers: vec![Layer::new(
            "COPY . /",
            vec![
                Entry::file("etc/app/secret.yaml", basic_auth_secret("db", &password)),
                Entry::file(
                    "srv/app.jar",
                    zip(vec![Member::Deflated(
                        "BOOT-INF/classes/k8s/secret.yaml",
                        basic_auth_secret("jar", &jar_password),
                    )]),
                ),
                Entry::file("root/.docker/config.json", docker),
            ],
        )],
        ..ImageSpec::default()
    };
    let dir = support::tempdir();
    let written = support::write_image_in(&spec, Format::OciLayout, Compression::Gzip, dir.path());
    let (code, report) = support::run::scan_json(&format!("oci:{}", written.path.display()));
    assert_eq!(code, 1);
    let findings = report["images"][0]["findings"].as_array().unwrap();
    let find = |secret: &str| {
        findings
            .iter()
            .find(|f| f["secret"] == secret)
            .unwrap_or_else(|| panic!("{secret} not reported: {findings:#?}"))
    };
    let f = find(&password);
    assert_eq!(f["rule_id"], "kubernetes-secret-data");
    assert_eq!(f["location"]["path"], "/etc/app/secret.yaml");
    assert_eq!(f["location"]["line"], 8);
    assert_eq!(f["details"]["kubernetes_secret"], "db");
    assert_eq!(
        f["remediation"]["kubernetes_secret_type"],
        "kubernetes.io/basic-auth"
    );
    let f = find(&registry_password);
    assert_eq!(f["rule_id"], "docker-registry-auth");
    assert_eq!(f["details"]["registry"], "registry.example.org");
    assert_eq!(f["details"]["username"], "ci");
    // Last: the member chain of a finding in the jar.
    let f = find(&jar_password);
    assert_eq!(f["location"]["path"], "/srv/app.jar");
    assert_eq!(
        f["location"]["archive_path"],
        json!(["BOOT-INF/classes/k8s/secret.yaml"])
    );
}

#[test]
fn secrets_with_the_builtin_rules() {
    // With every rule loaded, decoded values that a regex rule recognises (the OpenSSH key,
    // the RSA key, the JWT) are reported under that rule, still naming the Secret.
    let detector = Detector::new(builtin_rules().expect("built-in rules load")).unwrap();
    let planted = Planted::new();
    let content = planted.yaml_documents();
    let found = detector.scan_file("deploy/secrets.yaml", content.as_bytes());
    planted.check(&detector, &content, &found);
}
