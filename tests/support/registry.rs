//! A real registry for tests: Debian's `docker-registry` (CNCF distribution) started on a free
//! 127.0.0.1 port with a temporary config and storage, optionally behind htpasswd basic auth,
//! and `skopeo` to push images into it. Stopped when dropped.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::io::{Read, Write};

/// A running registry.
pub struct TestRegistry {
    child: Child,
    pub port: u16,
    /// The registry's storage root (blobs live under docker/registry/v2/blobs).
    pub storage: PathBuf,
    /// `user:password` when started with basic auth.
    pub credentials: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

/// Options for [`TestRegistry::start`].
#[derive(Default)]
pub struct RegistryConfig {
    /// Require basic auth with this user and password (htpasswd, bcrypt).
    pub basic_auth: Option<(String, String)>,
    /// Extra YAML appended to the config (e.g. a `notifications:` section).
    pub extra_yaml: String,
    /// Extra environment for the registry process (e.g. `SSL_CERT_FILE` so it trusts a test
    /// CA when it sends notifications over TLS).
    pub env: Vec<(String, String)>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("free port")
}

impl TestRegistry {
    /// Starts a registry; `None` when `docker-registry` is not installed outside CI (under CI
    /// a missing tool fails the test).
    pub fn start(config: RegistryConfig) -> Option<TestRegistry> {
        if !super::tool_available("docker-registry") || !super::tool_available("skopeo") {
            return None;
        }
        let dir = super::tempdir();
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage).expect("storage dir");
        let mut auth = String::new();
        if let Some((user, password)) = &config.basic_auth {
            assert!(
                super::tool_available("htpasswd"),
                "htpasswd (apache2-utils) is needed"
            );
            let output = Command::new("htpasswd")
                .args(["-Bbn", user, password])
                .output()
                .expect("run htpasswd");
            assert!(output.status.success(), "htpasswd failed");
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, &output.stdout).expect("write htpasswd");
            auth = format!(
                "auth:\n  htpasswd:\n    realm: stowaway-test\n    path: {}\n",
                htpasswd.display()
            );
        }
        // The port is picked, released and handed to the registry; retry if another process
        // takes it in between.
        for _ in 0..5 {
            let port = free_port();
            let config_path = dir.path().join("config.yml");
            let yaml = format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: stowaway-test-{port}\n{auth}{}\n",
                storage.display(),
                config.extra_yaml
            );
            std::fs::write(&config_path, yaml).expect("write registry config");
            let mut child = Command::new("docker-registry")
                .arg("serve")
                .arg(&config_path)
                .envs(config.env.iter().map(|(key, value)| (key, value)))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start docker-registry");
            if wait_until_up(port, &mut child) {
                drain(&mut child);
                return Some(TestRegistry {
                    child,
                    port,
                    storage,
                    credentials: config.basic_auth.clone(),
                    _dir: dir,
                });
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("docker-registry did not start");
    }

    /// `127.0.0.1:PORT`
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Pushes an image with `skopeo copy SOURCE docker://HOST/REPO_TAG`. `extra` are additional
    /// skopeo flags (`--all`, `--dest-compress-format zstd`).
    pub fn push(&self, source: &str, repo_tag: &str, extra: &[&str]) {
        let mut command = Command::new("skopeo");
        command.args(["copy", "--quiet", "--dest-tls-verify=false"]);
        if let Some((user, password)) = &self.credentials {
            command.arg(format!("--dest-creds={user}:{password}"));
        }
        command.args(extra);
        command.arg(source);
        command.arg(format!("docker://{}/{repo_tag}", self.host()));
        let output = command.output().expect("run skopeo");
        assert!(
            output.status.success(),
            "skopeo copy {source} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Writes `spec` as an OCI layout with gzip layers and pushes it as `repo_tag`; returns
    /// what was written (its digests; the layout itself is gone).
    pub fn push_image(&self, spec: &super::ImageSpec, repo_tag: &str) -> super::Written {
        let dir = super::tempdir();
        let written = super::write_image_in(
            spec,
            super::Format::OciLayout,
            super::Compression::Gzip,
            dir.path(),
        );
        self.push(
            &format!("oci:{}:{}", written.path.display(), spec.tag()),
            repo_tag,
            &[],
        );
        written
    }

    /// The file holding a blob in the registry's storage.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.storage
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// For a registry shared by the tests of a binary from a `static` (never dropped): killed,
    /// and its storage removed, when the test binary exits.
    pub fn stop_at_exit(&self) {
        super::at_exit::stop_at_exit(self.child.id(), self._dir.path().to_path_buf());
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads the registry's standard error as it comes: a pipe nobody reads fills after 64 KiB
/// of log lines (a few dozen pushes of errors about blobs not there yet), and the registry
/// then stops in the middle of a request.
fn drain(child: &mut Child) {
    if let Some(mut stderr) = child.stderr.take() {
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    }
}

/// Polls `GET /v2/` until the registry answers (200 or 401) or gives up after 15 s.
fn wait_until_up(port: u16, child: &mut Child) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let request =
                format!("GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
            if stream.write_all(request.as_bytes()).is_ok() {
                let mut head = [0u8; 12];
                if stream.read_exact(&mut head).is_ok()
                    && (head.starts_with(b"HTTP/1.1 200") || head.starts_with(b"HTTP/1.1 401"))
                {
                    return true;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// Writes a docker `config.json` into `dir` with a basic `auth` entry for `host`.
pub fn write_docker_config(dir: &Path, host: &str, user: &str, password: &str) {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let json = serde_json::json!({"auths": {host: {"auth": auth}}});
    std::fs::write(dir.join("config.json"), json.to_string()).expect("write config.json");
}

/// Turns an OCI layout whose `index.json` lists several platform manifests into the shape of a
/// multi-platform image: the list becomes an image-index blob, and `index.json` holds one
/// descriptor of it, tagged `tag` (what `skopeo copy --all oci:DIR:TAG` expects).
pub fn nest_index(layout: &Path, tag: &str) {
    use sha2::{Digest, Sha256};
    let top: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("index.json"))
            .expect("index json");
    let mut nested = top.clone();
    nested["mediaType"] = serde_json::json!("application/vnd.oci.image.index.v1+json");
    for manifest in nested["manifests"].as_array_mut().expect("manifests") {
        if let Some(annotations) = manifest
            .get_mut("annotations")
            .and_then(|a| a.as_object_mut())
        {
            annotations.remove("org.opencontainers.image.ref.name");
        }
    }
    let bytes = serde_json::to_vec(&nested).expect("serialise");
    let hex = hex::encode(Sha256::digest(&bytes));
    std::fs::write(layout.join("blobs/sha256").join(&hex), &bytes).expect("write index blob");
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": format!("sha256:{hex}"),
            "size": bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag}
        }]
    });
    std::fs::write(layout.join("index.json"), index.to_string()).expect("write index.json");
}
