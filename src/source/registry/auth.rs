//! Registry credentials, looked up in the order a user expects: `--username` with
//! `--password-stdin`; `REGISTRY_AUTH_FILE` and podman's `${XDG_RUNTIME_DIR}/containers/auth.json`;
//! docker's `config.json` (`auths` with `auth`, `username`/`password` or `identitytoken`, then
//! `credHelpers`, then `credsStore`, through `docker-credential-NAME get`); else anonymous.
//!
//! No credential is ever formatted into a message: errors name the file or helper, never the
//! value.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use serde::Deserialize;

use crate::source::name;

/// Credentials for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// No credentials: pull only what anyone may (public images).
    Anonymous,
    /// A user name and a password or token, sent in the basic-auth leg of the token exchange.
    Basic {
        /// The user name; `<token>` when an auth file holds an identity token without one.
        username: String,
        /// The password, or an identity token standing in for it. Never formatted: `Debug`
        /// prints `****`.
        password: String,
    },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, ****)"),
        }
    }
}

/// Where credentials came from, for `-v` messages (never the values).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The credentials found.
    pub credentials: Credentials,
    /// Where from: `--username/--password-stdin`, an auth file's path, a credential helper's
    /// program name, or `anonymous`.
    pub source: String,
}

/// What the user passed on the command line.
#[derive(Clone, Default)]
pub struct ExplicitCredentials {
    /// `--username`; when set, it wins over every auth file and helper.
    pub username: Option<String>,
    /// The line read from standard input for `--password-stdin`; required with `username`.
    pub password: Option<String>,
}

/// The environment credential lookup reads; a struct so tests can point it at temp files.
#[derive(Clone, Debug, Default)]
pub struct AuthEnvironment {
    /// `$REGISTRY_AUTH_FILE`: an auth file read first of all.
    pub registry_auth_file: Option<PathBuf>,
    /// `$XDG_RUNTIME_DIR`: podman's `containers/auth.json` is read from under it next.
    pub xdg_runtime_dir: Option<PathBuf>,
    /// `$DOCKER_CONFIG`: the directory holding docker's `config.json`; wins over `home`.
    pub docker_config_dir: Option<PathBuf>,
    /// `$HOME`: docker's `.docker/config.json` is read from under it when `DOCKER_CONFIG` is
    /// unset.
    pub home: Option<PathBuf>,
}

impl AuthEnvironment {
    /// The environment of this process; a variable set to an empty value counts as unset.
    pub fn from_process() -> AuthEnvironment {
        let var = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        AuthEnvironment {
            registry_auth_file: var("REGISTRY_AUTH_FILE"),
            xdg_runtime_dir: var("XDG_RUNTIME_DIR"),
            docker_config_dir: var("DOCKER_CONFIG"),
            home: var("HOME"),
        }
    }

    /// Auth files in lookup order (podman's first, then docker's).
    fn files(&self) -> Vec<PathBuf> {
        let mut files = Vec::new();
        if let Some(file) = &self.registry_auth_file {
            files.push(file.clone());
        }
        if let Some(dir) = &self.xdg_runtime_dir {
            files.push(dir.join("containers/auth.json"));
        }
        match (&self.docker_config_dir, &self.home) {
            (Some(dir), _) => files.push(dir.join("config.json")),
            (None, Some(home)) => files.push(home.join(".docker/config.json")),
            (None, None) => {}
        }
        files
    }
}

#[derive(Deserialize, Default)]
struct AuthFile {
    #[serde(default)]
    auths: std::collections::HashMap<String, AuthEntry>,
    #[serde(rename = "credHelpers", default)]
    cred_helpers: std::collections::HashMap<String, String>,
    #[serde(rename = "credsStore", default)]
    creds_store: Option<String>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
}

/// The registry's canonical host for matching config keys: no scheme, no path, Docker Hub's
/// aliases folded together.
pub fn normalise_host(key: &str) -> String {
    let without_scheme = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = without_scheme
        .split('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    name::canonical_host(&host).to_string()
}

/// Finds the credentials for `repository` (`library/alpine`, `team/app`) in `registry` (as
/// written in the reference: `docker.io`, `127.0.0.1:5000`).
pub fn resolve(
    registry: &str,
    repository: &str,
    explicit: &ExplicitCredentials,
    env: &AuthEnvironment,
) -> Result<Resolved> {
    if let Some(username) = &explicit.username {
        let Some(password) = &explicit.password else {
            bail!("--username needs --password-stdin (the password is read from standard input)");
        };
        return Ok(Resolved {
            credentials: Credentials::Basic {
                username: username.clone(),
                password: password.clone(),
            },
            source: "--username/--password-stdin".to_string(),
        });
    }
    let wanted = Wanted {
        registry,
        host: normalise_host(registry),
        repository,
    };
    for file in env.files() {
        if !file.is_file() {
            continue;
        }
        if let Some(resolved) = from_auth_file(&file, &wanted)? {
            return Ok(resolved);
        }
    }
    Ok(Resolved {
        credentials: Credentials::Anonymous,
        source: "anonymous".to_string(),
    })
}

/// The image whose credentials are looked up.
struct Wanted<'a> {
    /// As written in the reference.
    registry: &'a str,
    /// Normalised with [`normalise_host`].
    host: String,
    repository: &'a str,
}

/// How well a key of `auths` or `credHelpers` fits the image, `None` when it does not apply.
/// Higher is better: first the longest repository path (podman's per-repository keys
/// `host/namespace/repo` are more specific than `host`), then a key written exactly as the
/// registry is, then one without a scheme.
fn key_rank(key: &str, wanted: &Wanted) -> Option<(usize, bool, bool)> {
    let without_scheme = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"));
    let has_scheme = without_scheme.is_some();
    let rest = without_scheme.unwrap_or(key);
    let (key_host, path) = rest.split_once('/').unwrap_or((rest, ""));
    if normalise_host(key_host) != wanted.host {
        return None;
    }
    // A path after a scheme is an API path (`https://index.docker.io/v1/`), not a repository.
    let path = if has_scheme {
        ""
    } else {
        path.trim_matches('/')
    };
    let depth = if path.is_empty() {
        0
    } else if wanted.repository == path
        || wanted
            .repository
            .strip_prefix(path)
            .is_some_and(|rest| rest.starts_with('/'))
    {
        path.split('/').count()
    } else {
        return None;
    };
    Some((depth, key == wanted.registry, !has_scheme))
}

/// The keys of `map` that apply to the image, best first; ties are broken by the key's text so
/// the choice never depends on the map's order.
fn ranked_keys<'m, V>(
    map: &'m std::collections::HashMap<String, V>,
    wanted: &Wanted,
) -> Vec<(&'m String, &'m V)> {
    let mut keys: Vec<_> = map
        .iter()
        .filter_map(|(key, value)| key_rank(key, wanted).map(|rank| (rank, key, value)))
        .collect();
    keys.sort_by(|(rank_a, key_a, _), (rank_b, key_b, _)| {
        rank_b.cmp(rank_a).then_with(|| key_a.cmp(key_b))
    });
    keys.into_iter()
        .map(|(_, key, value)| (key, value))
        .collect()
}

fn from_auth_file(file: &Path, wanted: &Wanted) -> Result<Option<Resolved>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("{}: cannot read auth file", file.display()))?;
    let config: AuthFile = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a valid auth file", file.display()))?;
    let source = file.display().to_string();
    // An entry with nothing in it (docker writes `{}` when a credsStore holds the secret)
    // falls through to the next key, then to the helpers.
    for (key, entry) in ranked_keys(&config.auths, wanted) {
        // `docker login` with a token writes `auth: base64("user:")` beside `identitytoken`:
        // the token is the credential, `auth` (or `username`) only names the user.
        let from_auth = match entry
            .auth
            .as_deref()
            .map(str::trim)
            .filter(|a| !a.is_empty())
        {
            Some(encoded) => {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .ok()
                    .and_then(|bytes| String::from_utf8(bytes).ok());
                let Some((username, password)) = decoded.as_deref().and_then(|d| d.split_once(':'))
                else {
                    bail!("{source}: the auth entry for {key} is not base64 of user:password");
                };
                Some((username.to_string(), password.to_string()))
            }
            None => None,
        };
        if let Some(token) = entry.identitytoken.as_deref().filter(|t| !t.is_empty()) {
            // An identity token is a refresh token; registries that issue them (Azure, Harbor)
            // accept it as the password of the basic-auth leg of the token exchange.
            let username = from_auth
                .map(|(username, _)| username)
                .filter(|u| !u.is_empty())
                .or_else(|| entry.username.clone().filter(|u| !u.is_empty()))
                .unwrap_or_else(|| "<token>".to_string());
            return Ok(Some(Resolved {
                credentials: Credentials::Basic {
                    username,
                    password: token.to_string(),
                },
                source,
            }));
        }
        if let Some((username, password)) = from_auth {
            return Ok(Some(Resolved {
                credentials: Credentials::Basic { username, password },
                source,
            }));
        }
        if let (Some(username), Some(password)) = (&entry.username, &entry.password) {
            return Ok(Some(Resolved {
                credentials: Credentials::Basic {
                    username: username.clone(),
                    password: password.clone(),
                },
                source,
            }));
        }
    }
    let helper = ranked_keys(&config.cred_helpers, wanted)
        .first()
        .map(|(_, helper)| (*helper).clone())
        .or(config.creds_store.clone());
    match helper {
        Some(helper) if !helper.is_empty() => from_helper(&helper, &wanted.host).map(Some),
        _ => Ok(None),
    }
}

#[derive(Deserialize)]
struct HelperReply {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

/// Runs `docker-credential-HELPER get` with the registry host on standard input.
fn from_helper(helper: &str, host: &str) -> Result<Resolved> {
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("credential helper {program} could not be run"))?;
    // Docker passes the Hub as its legacy index URL; other registries by host.
    let server = if host == name::DOCKER_HUB {
        name::DOCKER_HUB_LEGACY_INDEX
    } else {
        host
    };
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(server.as_bytes())
        .with_context(|| format!("credential helper {program}: cannot write to it"))?;
    let output = child
        .wait_with_output()
        .with_context(|| format!("credential helper {program} failed"))?;
    if !output.status.success() {
        let message = String::from_utf8_lossy(&output.stdout);
        if message.contains("credentials not found") {
            return Ok(Resolved {
                credentials: Credentials::Anonymous,
                source: format!("{program} (no credentials for {host})"),
            });
        }
        bail!("credential helper {program} failed with {}", output.status);
    }
    let reply: HelperReply = serde_json::from_slice(&output.stdout)
        .with_context(|| format!("credential helper {program} returned malformed output"))?;
    Ok(Resolved {
        credentials: Credentials::Basic {
            username: reply.username,
            password: reply.secret,
        },
        source: program,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_with(dir: &Path) -> AuthEnvironment {
        AuthEnvironment {
            docker_config_dir: Some(dir.to_path_buf()),
            ..AuthEnvironment::default()
        }
    }

    #[test]
    fn normalises_hosts() {
        assert_eq!(normalise_host("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(normalise_host("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(
            normalise_host("http://Registry.Example.com/x"),
            "registry.example.com"
        );
    }

    #[test]
    fn reads_docker_auths_in_every_form() {
        let dir = tempfile::tempdir().unwrap();
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret-pass");
        std::fs::write(
            dir.path().join("config.json"),
            format!(
                r#"{{"auths": {{
                    "https://index.docker.io/v1/": {{"auth": "{auth}"}},
                    "registry.example.com": {{"username": "bob", "password": "pw-bob-123"}},
                    "token.example.com": {{"identitytoken": "tok-xyz"}}
                }}}}"#
            ),
        )
        .unwrap();
        let env = env_with(dir.path());
        let explicit = ExplicitCredentials::default();
        let hub = resolve("docker.io", "team/app", &explicit, &env).unwrap();
        assert_eq!(
            hub.credentials,
            Credentials::Basic {
                username: "alice".into(),
                password: "s3cret-pass".into()
            }
        );
        let other = resolve("registry.example.com", "team/app", &explicit, &env).unwrap();
        assert!(
            matches!(other.credentials, Credentials::Basic { ref username, .. } if username == "bob")
        );
        let token = resolve("token.example.com", "team/app", &explicit, &env).unwrap();
        assert!(
            matches!(token.credentials, Credentials::Basic { ref password, .. } if password == "tok-xyz")
        );
        let none = resolve("quay.io", "team/app", &explicit, &env).unwrap();
        assert_eq!(none.credentials, Credentials::Anonymous);
    }

    #[test]
    fn identity_token_wins_over_the_auth_entry_it_comes_with() {
        let dir = tempfile::tempdir().unwrap();
        let engine = base64::engine::general_purpose::STANDARD;
        // What `docker login` writes for a token login: the user with an empty password.
        let user_only = engine.encode("00000000-0000-0000-0000-000000000000:");
        let with_password = engine.encode("carol:old-password-1");
        std::fs::write(
            dir.path().join("config.json"),
            format!(
                r#"{{"auths": {{
                    "acr.example.io": {{"auth": "{user_only}", "identitytoken": "tok-acr-1"}},
                    "harbor.example.io": {{"auth": "{with_password}", "identitytoken": "tok-h-2"}},
                    "named.example.io": {{"username": "dave", "identitytoken": "tok-n-3"}}
                }}}}"#
            ),
        )
        .unwrap();
        let env = env_with(dir.path());
        let explicit = ExplicitCredentials::default();
        let basic = |user: &str, password: &str| Credentials::Basic {
            username: user.into(),
            password: password.into(),
        };
        assert_eq!(
            resolve("acr.example.io", "team/app", &explicit, &env)
                .unwrap()
                .credentials,
            basic("00000000-0000-0000-0000-000000000000", "tok-acr-1")
        );
        assert_eq!(
            resolve("harbor.example.io", "team/app", &explicit, &env)
                .unwrap()
                .credentials,
            basic("carol", "tok-h-2")
        );
        assert_eq!(
            resolve("named.example.io", "team/app", &explicit, &env)
                .unwrap()
                .credentials,
            basic("dave", "tok-n-3")
        );
    }

    #[test]
    fn most_specific_key_wins_whatever_the_map_order() {
        let dir = tempfile::tempdir().unwrap();
        let entry = |user: &str| serde_json::json!({"username": user, "password": "pw-1"});
        let config = serde_json::json!({"auths": {
            "https://registry.example.com": entry("scheme"),
            "http://registry.example.com/v2/": entry("scheme-v2"),
            "registry.example.com": entry("host"),
            "registry.example.com/team": entry("team"),
            "registry.example.com/team/app": entry("team-app"),
            "registry.example.com/team/app-two": entry("team-app-two"),
            "https://index.docker.io/v1/": entry("hub"),
            "docker.io/library/alpine": entry("hub-alpine"),
            "other.example.com": entry("other"),
        }});
        std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
        let env = env_with(dir.path());
        let explicit = ExplicitCredentials::default();
        let user =
            |registry: &str, repository: &str| match resolve(registry, repository, &explicit, &env)
                .unwrap()
                .credentials
            {
                Credentials::Basic { username, .. } => username,
                Credentials::Anonymous => "anonymous".to_string(),
            };
        // The map is re-read (and re-hashed in a new order) on every call.
        for _ in 0..20 {
            assert_eq!(user("registry.example.com", "team/app"), "team-app");
            assert_eq!(user("registry.example.com", "team/app/sub"), "team-app");
            assert_eq!(user("registry.example.com", "team/application"), "team");
            assert_eq!(user("registry.example.com", "team/other"), "team");
            assert_eq!(user("registry.example.com", "elsewhere/x"), "host");
            assert_eq!(user("docker.io", "library/alpine"), "hub-alpine");
            assert_eq!(user("docker.io", "library/busybox"), "hub");
            assert_eq!(user("quay.io", "team/app"), "anonymous");
        }
        // Without the exact key, the scheme-less spelling of the host comes before the others,
        // and among equals the key's text decides.
        let config = serde_json::json!({"auths": {
            "https://registry.example.com": entry("https"),
            "http://registry.example.com/v2/": entry("http"),
            "REGISTRY.example.com": entry("upper"),
        }});
        std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
        for _ in 0..20 {
            assert_eq!(user("registry.example.com", "team/app"), "upper");
        }
        let config = serde_json::json!({"auths": {
            "https://registry.example.com": entry("https"),
            "http://registry.example.com/v2/": entry("http"),
        }});
        std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
        for _ in 0..20 {
            assert_eq!(user("registry.example.com", "team/app"), "http");
        }
    }

    #[test]
    fn an_empty_auths_entry_falls_through_to_the_helpers() {
        let dir = tempfile::tempdir().unwrap();
        let config = serde_json::json!({
            "auths": {"registry.example.com": {}},
            "credHelpers": {"registry.example.com": "stowaway-test-absent-helper"},
        });
        std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
        let err = resolve(
            "registry.example.com",
            "team/app",
            &ExplicitCredentials::default(),
            &env_with(dir.path()),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("docker-credential-stowaway-test-absent-helper"),
            "{err}"
        );
    }

    #[test]
    fn explicit_credentials_win_and_need_a_password() {
        let env = AuthEnvironment::default();
        let explicit = ExplicitCredentials {
            username: Some("u".into()),
            password: None,
        };
        assert!(resolve("x.io", "team/app", &explicit, &env).is_err());
    }

    #[test]
    fn debug_never_shows_the_password() {
        let credentials = Credentials::Basic {
            username: "u".into(),
            password: "hunter2-very-secret".into(),
        };
        assert!(!format!("{credentials:?}").contains("hunter2"));
    }

    #[test]
    fn malformed_auth_file_names_the_file_not_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths": {"x.io": {"auth": "bm90LWEtcGFpcg=="}}}"#,
        )
        .unwrap();
        let err = resolve(
            "x.io",
            "team/app",
            &ExplicitCredentials::default(),
            &env_with(dir.path()),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("config.json"), "{err}");
        assert!(!err.contains("not-a-pair"), "{err}");
    }
}
