//! Where the Docker daemon listens, found as the docker CLI finds it: `DOCKER_CONTEXT`, else
//! `DOCKER_HOST` (with `DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH` for `tcp://`), else the
//! current context of `~/.docker/config.json` (`$DOCKER_CONFIG`), else
//! `unix:///var/run/docker.sock`.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

/// The socket every Docker installation listens on unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// How to reach the daemon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// A unix socket.
    Unix(PathBuf),
    /// `host:port` over TCP, with TLS when `tls` is set.
    Tcp {
        /// A host name or an IP address.
        host: String,
        /// The port.
        port: u16,
        /// The TLS files: CA, client certificate and key.
        tls: Option<TlsFiles>,
    },
}

/// The files of a TLS connection to the daemon (`DOCKER_CERT_PATH`, or a context's TLS store):
/// the CA that signed the daemon's certificate and the client's certificate and key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// `ca.pem`
    pub ca: PathBuf,
    /// `cert.pem`, when present.
    pub cert: Option<PathBuf>,
    /// `key.pem`, when present.
    pub key: Option<PathBuf>,
}

/// The daemon's address and where it came from, for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DockerHost {
    /// How to connect.
    pub endpoint: Endpoint,
    /// `DOCKER_HOST`, `docker context "NAME"`, or the default socket.
    pub origin: String,
}

impl fmt::Display for DockerHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.endpoint {
            Endpoint::Unix(path) => write!(f, "unix://{}", path.display()),
            Endpoint::Tcp { host, port, tls } => {
                let scheme = if tls.is_some() { "tcp+tls" } else { "tcp" };
                write!(f, "{scheme}://{host}:{port}")
            }
        }?;
        write!(f, " ({})", self.origin)
    }
}

/// The variables the daemon's address is read from; tests pass their own.
#[derive(Clone, Debug, Default)]
pub struct HostEnvironment {
    vars: HashMap<String, OsString>,
}

impl HostEnvironment {
    /// The process environment.
    pub fn from_process() -> HostEnvironment {
        let names = [
            "DOCKER_HOST",
            "DOCKER_CONTEXT",
            "DOCKER_TLS_VERIFY",
            "DOCKER_CERT_PATH",
            "DOCKER_CONFIG",
            "HOME",
        ];
        HostEnvironment {
            vars: names
                .iter()
                .filter_map(|name| Some((name.to_string(), std::env::var_os(name)?)))
                .collect(),
        }
    }

    /// Only `DOCKER_HOST=host`: what a test uses to name its private daemon.
    pub fn with_host(host: &str) -> HostEnvironment {
        let mut vars = HashMap::new();
        vars.insert("DOCKER_HOST".to_string(), OsString::from(host));
        HostEnvironment { vars }
    }

    fn get(&self, name: &str) -> Option<&OsString> {
        self.vars.get(name).filter(|value| !value.is_empty())
    }

    fn config_dir(&self) -> Option<PathBuf> {
        match (self.get("DOCKER_CONFIG"), self.get("HOME")) {
            (Some(dir), _) => Some(PathBuf::from(dir)),
            (None, Some(home)) => Some(Path::new(home).join(".docker")),
            (None, None) => None,
        }
    }
}

/// The daemon the docker CLI would talk to in `env`.
pub fn find(env: &HostEnvironment) -> Result<DockerHost> {
    if let Some(context) = env.get("DOCKER_CONTEXT") {
        let context = context.to_string_lossy().into_owned();
        if context != "default" {
            return from_context(env, &context, "DOCKER_CONTEXT");
        }
    } else if env.get("DOCKER_HOST").is_none()
        && let Some(context) = current_context(env)?
        && context != "default"
    {
        return from_context(env, &context, "the current docker context");
    }
    match env.get("DOCKER_HOST") {
        Some(host) => {
            let host = host.to_string_lossy();
            let tls = env_tls(env)?;
            parse_host(&host, tls, "DOCKER_HOST")
        }
        None => Ok(DockerHost {
            endpoint: Endpoint::Unix(PathBuf::from(DEFAULT_SOCKET)),
            origin: "the default socket".to_string(),
        }),
    }
}

/// `DOCKER_TLS_VERIFY` (any value but empty turns it on) with the files in `DOCKER_CERT_PATH`
/// (default `~/.docker`).
fn env_tls(env: &HostEnvironment) -> Result<Option<TlsFiles>> {
    if env.get("DOCKER_TLS_VERIFY").is_none() {
        return Ok(None);
    }
    let dir = match (env.get("DOCKER_CERT_PATH"), env.config_dir()) {
        (Some(dir), _) => PathBuf::from(dir),
        (None, Some(dir)) => dir,
        (None, None) => bail!("DOCKER_TLS_VERIFY is set but neither DOCKER_CERT_PATH nor HOME"),
    };
    Ok(Some(tls_files(&dir)))
}

fn tls_files(dir: &Path) -> TlsFiles {
    let present = |name: &str| Some(dir.join(name)).filter(|path| path.is_file());
    TlsFiles {
        ca: dir.join("ca.pem"),
        cert: present("cert.pem"),
        key: present("key.pem"),
    }
}

/// Parses `unix:///path`, `tcp://host[:port]` (2376 with TLS, else 2375) or a bare
/// `/path`. `origin` names the setting in errors.
pub fn parse_host(text: &str, tls: Option<TlsFiles>, origin: &str) -> Result<DockerHost> {
    let endpoint = if let Some(path) = text.strip_prefix("unix://") {
        if path.is_empty() {
            bail!("{origin}={text}: no socket path");
        }
        Endpoint::Unix(PathBuf::from(path))
    } else if text.starts_with('/') {
        Endpoint::Unix(PathBuf::from(text))
    } else if let Some(address) = text
        .strip_prefix("tcp://")
        .or_else(|| text.strip_prefix("http://"))
        .or_else(|| text.strip_prefix("https://"))
    {
        let address = address.trim_end_matches('/');
        let default_port = if tls.is_some() { 2376 } else { 2375 };
        let (host, port) = split_port(address, default_port)
            .ok_or_else(|| anyhow!("{origin}={text}: not a host[:port]"))?;
        Endpoint::Tcp { host, port, tls }
    } else {
        let scheme = text.split("://").next().unwrap_or(text);
        bail!(
            "{origin}={text}: the {scheme}:// scheme is not supported (unix:// and tcp:// are); \
             or export the image: docker save -o app.tar IMAGE"
        );
    };
    Ok(DockerHost {
        endpoint,
        origin: origin.to_string(),
    })
}

/// `host`, `host:port`, `[v6]:port`.
fn split_port(address: &str, default_port: u16) -> Option<(String, u16)> {
    if address.is_empty() || address.contains('/') {
        return None;
    }
    if let Some(rest) = address.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(port) => port.parse().ok()?,
            None if after.is_empty() => default_port,
            None => return None,
        };
        return Some((host.to_string(), port));
    }
    match address.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && !host.is_empty() => {
            Some((host.to_string(), port.parse().ok()?))
        }
        Some(_) => None,
        None => Some((address.to_string(), default_port)),
    }
}

#[derive(Deserialize)]
struct CliConfig {
    #[serde(rename = "currentContext", default)]
    current_context: Option<String>,
}

/// `currentContext` of the docker CLI's `config.json`, when the file exists and names one.
fn current_context(env: &HostEnvironment) -> Result<Option<String>> {
    let Some(dir) = env.config_dir() else {
        return Ok(None);
    };
    let path = dir.join("config.json");
    let Ok(bytes) = std::fs::read(&path) else {
        return Ok(None);
    };
    let config: CliConfig = serde_json::from_slice(&bytes)
        .map_err(|err| anyhow!("{}: not a docker CLI config: {err}", path.display()))?;
    Ok(config.current_context.filter(|name| !name.is_empty()))
}

#[derive(Deserialize)]
struct ContextMeta {
    #[serde(rename = "Endpoints", default)]
    endpoints: HashMap<String, ContextEndpoint>,
}

#[derive(Deserialize)]
struct ContextEndpoint {
    #[serde(rename = "Host", default)]
    host: Option<String>,
    #[serde(rename = "SkipTLSVerify", default)]
    skip_tls_verify: bool,
}

/// The docker endpoint of context `name`: `contexts/meta/<sha256 of the name>/meta.json`, and
/// its TLS files in `contexts/tls/<sha256 of the name>/docker/`.
fn from_context(env: &HostEnvironment, name: &str, why: &str) -> Result<DockerHost> {
    let origin = format!("docker context {name:?}, from {why}");
    let dir = env
        .config_dir()
        .ok_or_else(|| anyhow!("{origin}: neither DOCKER_CONFIG nor HOME is set"))?;
    let id = hex::encode(Sha256::digest(name.as_bytes()));
    let meta_path = dir.join("contexts/meta").join(&id).join("meta.json");
    let bytes = std::fs::read(&meta_path)
        .with_context(|| format!("{origin}: cannot read {}", meta_path.display()))?;
    let meta: ContextMeta = serde_json::from_slice(&bytes)
        .map_err(|err| anyhow!("{}: not a docker context: {err}", meta_path.display()))?;
    let endpoint = meta
        .endpoints
        .get("docker")
        .and_then(|endpoint| endpoint.host.as_ref().map(|host| (host, endpoint)))
        .ok_or_else(|| anyhow!("{origin}: no docker endpoint in {}", meta_path.display()))?;
    let (host, settings) = endpoint;
    let tls_dir = dir.join("contexts/tls").join(&id).join("docker");
    let tls = if host.starts_with("unix://") || !tls_dir.join("ca.pem").is_file() {
        None
    } else if settings.skip_tls_verify {
        bail!("{origin}: SkipTLSVerify is set; stowaway only connects with a verified daemon");
    } else {
        Some(tls_files(&tls_dir))
    };
    parse_host(host, tls, &origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HostEnvironment {
        HostEnvironment {
            vars: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), OsString::from(v)))
                .collect(),
        }
    }

    #[test]
    fn the_default_is_the_standard_socket() {
        let host = find(&env(&[("HOME", "/nonexistent")])).unwrap();
        assert_eq!(host.endpoint, Endpoint::Unix(DEFAULT_SOCKET.into()));
    }

    #[test]
    fn docker_host_forms() {
        let unix = find(&env(&[("DOCKER_HOST", "unix:///run/d.sock")])).unwrap();
        assert_eq!(unix.endpoint, Endpoint::Unix("/run/d.sock".into()));
        assert_eq!(unix.to_string(), "unix:///run/d.sock (DOCKER_HOST)");
        let tcp = find(&env(&[("DOCKER_HOST", "tcp://10.0.0.1")])).unwrap();
        assert_eq!(
            tcp.endpoint,
            Endpoint::Tcp {
                host: "10.0.0.1".into(),
                port: 2375,
                tls: None
            }
        );
        let tls = find(&env(&[
            ("DOCKER_HOST", "tcp://[::1]:9999"),
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CERT_PATH", "/certs"),
        ]))
        .unwrap();
        let Endpoint::Tcp { host, port, tls } = tls.endpoint else {
            panic!("tcp")
        };
        assert_eq!((host.as_str(), port), ("::1", 9999));
        assert_eq!(tls.unwrap().ca, PathBuf::from("/certs/ca.pem"));
        let ssh = find(&env(&[("DOCKER_HOST", "ssh://me@host")])).unwrap_err();
        assert!(
            ssh.to_string().contains("ssh:// scheme is not supported"),
            "{ssh}"
        );
        assert!(find(&env(&[("DOCKER_HOST", "tcp://a:b:c")])).is_err());
    }

    #[test]
    fn the_current_context_is_read_from_the_context_store() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths": {}, "currentContext": "remote"}"#,
        )
        .unwrap();
        let id = hex::encode(Sha256::digest(b"remote"));
        let meta = dir.path().join("contexts/meta").join(&id);
        std::fs::create_dir_all(&meta).unwrap();
        std::fs::write(
            meta.join("meta.json"),
            r#"{"Name":"remote","Metadata":{},"Endpoints":{"docker":{"Host":"unix:///ctx.sock","SkipTLSVerify":false}}}"#,
        )
        .unwrap();
        let config = dir.path().to_str().unwrap();
        let host = find(&env(&[("DOCKER_CONFIG", config)])).unwrap();
        assert_eq!(host.endpoint, Endpoint::Unix("/ctx.sock".into()));
        assert!(host.origin.contains("\"remote\""), "{}", host.origin);
        // DOCKER_HOST wins over the config file's context, DOCKER_CONTEXT over DOCKER_HOST.
        let host = find(&env(&[
            ("DOCKER_CONFIG", config),
            ("DOCKER_HOST", "unix:///env.sock"),
        ]))
        .unwrap();
        assert_eq!(host.endpoint, Endpoint::Unix("/env.sock".into()));
        let host = find(&env(&[
            ("DOCKER_CONFIG", config),
            ("DOCKER_HOST", "unix:///env.sock"),
            ("DOCKER_CONTEXT", "remote"),
        ]))
        .unwrap();
        assert_eq!(host.endpoint, Endpoint::Unix("/ctx.sock".into()));
        let missing = find(&env(&[
            ("DOCKER_CONFIG", config),
            ("DOCKER_CONTEXT", "nope"),
        ]));
        assert!(missing.unwrap_err().to_string().contains("\"nope\""));
    }
}
