//! Images pulled from registries (`docker://REF`, `alpine:3.20`, `host:5000/app@sha256:…`)
//! through oci-client. Manifests and configs are fetched whole; layers are streamed straight
//! into the layer walker (no temporary files), their digests checked as they stream.

pub mod auth;
mod describe;
mod guard;
mod http;

pub use describe::{Described, describe};
pub use guard::NetworkPolicy;
pub use http::Api;

use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use futures_util::StreamExt;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use oci_spec::image::{ImageIndex, ImageManifest};

use self::auth::{AuthEnvironment, Credentials, ExplicitCredentials};
use self::http::Failure;
use super::digest::Digest;
use super::image::{BlobOpener, Image, Layer, LayerBlob, LayerDescriptor, LayerList, ManifestView};
use super::json;
use super::limits;
use super::name::{hub_name, wire_reference};
use super::platform::{self, PlatformFilter};

/// How to reach registries.
#[derive(Clone, Default)]
pub struct RegistryOptions {
    /// `--username`/`--password-stdin`: used for every registry, before any auth file or
    /// credential helper.
    pub credentials: ExplicitCredentials,
    /// Use plain HTTP for every registry (it is always used for localhost and 127.0.0.1).
    pub plain_http: bool,
    /// Extra CA certificates (PEM) to trust besides the system roots.
    pub ca_certs: Vec<PathBuf>,
    /// Which platform of a multi-platform image to scan; `None` picks the host's platform,
    /// else `linux/amd64`. Ignored with `all_platforms`.
    pub platform: Option<PlatformFilter>,
    /// Scan every runnable platform an index lists (attestation manifests excepted), one
    /// image each.
    pub all_platforms: bool,
    /// Where to look for auth files; `None` reads the process environment.
    pub auth_environment: Option<AuthEnvironment>,
    /// The server's rule for which registries and addresses may be contacted (every
    /// connection, the token exchange and redirects included); `None` for the CLI, whose user
    /// names their own registries.
    pub network: Option<Arc<NetworkPolicy>>,
}

/// Attempts for requests that fail transiently (connection errors, 5xx, 429).
const ATTEMPTS: u32 = 4;

/// The longest a request waits in total between its attempts. A registry that asks for a
/// longer `Retry-After` gets a clear message at once instead of a silent stall.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(30);

/// The largest config blob read: the bound shared with local images (see `source::limits`).
const MAX_CONFIG_BYTES: usize = limits::MAX_CONFIG_BYTES;

/// A connection to one repository, shared by the layers it streams.
struct Remote {
    runtime: tokio::runtime::Runtime,
    /// Shared with the download tasks (which must not own the runtime: dropping it there
    /// would panic).
    api: Arc<Api>,
}

/// Opens the image(s) `text` names in a registry.
pub fn open(text: &str, options: &RegistryOptions) -> Result<Vec<Image>> {
    let parsed: Reference = text
        .parse()
        .map_err(|err| anyhow!("not a valid image reference: {err}"))?;
    // Credentials and messages use the name (docker.io); requests go to the wire host.
    let name = hub_name(&parsed);
    let reference = wire_reference(&parsed);
    let api = api_for(&parsed, options, http_client(options)?)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("stowaway-net")
        .enable_all()
        .build()
        .context("cannot start the network runtime")?;
    let remote = Arc::new(Remote {
        runtime,
        api: Arc::new(api),
    });

    let (manifest_bytes, manifest_digest) = remote.fetch_manifest(&reference)?;
    let top: serde_json::Value = serde_json::from_slice(&manifest_bytes)
        .map_err(|_| anyhow!("the registry returned a manifest that is not JSON"))?;
    let is_index = top.get("manifests").is_some();
    let label = name.whole();
    if !is_index {
        let image =
            remote.load_image(&reference, &manifest_bytes, &manifest_digest, label, None)?;
        return Ok(vec![image]);
    }
    let index: ImageIndex = json::parse(&manifest_bytes, "malformed image index")?;
    let selected = select_platforms(&index, options)?;
    let mut images = Vec::new();
    for (digest, platform) in selected {
        let by_digest = Reference::with_digest(
            reference.registry().to_string(),
            reference.repository().to_string(),
            digest.clone(),
        );
        let (bytes, digest) = remote.fetch_manifest(&by_digest)?;
        let image_label = format!("{label} ({platform})");
        images.push(remote.load_image(&by_digest, &bytes, &digest, image_label, Some(platform))?);
    }
    Ok(images)
}

/// The requests to the repository of `reference`, with its credentials, set up as [`open`]
/// uses them (loopback registries over plain HTTP, extra CA certificates, docker config files
/// and credential helpers), sending through `http` (from [`http_client`], shareable between
/// repositories). Address requests with `wire_reference`. Runs credential helpers, so async
/// callers call it off their runtime's threads.
pub fn api_for(
    reference: &Reference,
    options: &RegistryOptions,
    http: reqwest::Client,
) -> Result<Api> {
    let name = hub_name(reference);
    let host = wire_reference(reference).resolve_registry().to_string();
    if let Some(network) = &options.network
        && let Some(refusal) = network.refusal(name.registry(), &host)
    {
        bail!("{refusal}");
    }
    let (client, auth) = client_for(&name, options)?;
    let api = Api::new(
        http,
        client,
        auth,
        uses_plain_http(&host, options),
        host,
        name.registry().to_string(),
    );
    Ok(match &options.network {
        Some(network) => api.guarded(Arc::clone(network)),
        None => api,
    })
}

/// oci-client (for the token exchange) and the credentials for the registry of `reference`.
fn client_for(reference: &Reference, options: &RegistryOptions) -> Result<(Client, RegistryAuth)> {
    let registry = reference.registry().to_string();
    let environment = options
        .auth_environment
        .clone()
        .unwrap_or_else(AuthEnvironment::from_process);
    let resolved = auth::resolve(
        &registry,
        reference.repository(),
        &options.credentials,
        &environment,
    )?;
    let auth = match resolved.credentials {
        Credentials::Anonymous => RegistryAuth::Anonymous,
        Credentials::Basic { username, password } => RegistryAuth::Basic(username, password),
    };
    Ok((Client::new(client_config(reference, options)?), auth))
}

fn is_loopback(registry: &str) -> bool {
    let host = registry.rsplit_once(':').map_or(registry, |(host, port)| {
        if port.chars().all(|c| c.is_ascii_digit()) {
            host
        } else {
            registry
        }
    });
    matches!(host, "localhost" | "127.0.0.1" | "[::1]") || host.starts_with("127.")
}

/// Whether a manifest is Docker's schema 1, by its media type or, when the registry sends a
/// generic one, by its `schemaVersion`.
fn is_schema1(media_type: &str, bytes: &[u8]) -> bool {
    if http::SCHEMA1_MANIFESTS.contains(&media_type) {
        return true;
    }
    #[derive(serde::Deserialize)]
    struct Version {
        #[serde(rename = "schemaVersion")]
        schema_version: Option<u64>,
    }
    serde_json::from_slice::<Version>(bytes).is_ok_and(|v| v.schema_version == Some(1))
}

/// Plain HTTP with `--plain-http`, and always for loopback registries.
fn uses_plain_http(registry: &str, options: &RegistryOptions) -> bool {
    options.plain_http || is_loopback(registry)
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
const READ_TIMEOUT: Duration = Duration::from_secs(60);
const USER_AGENT: &str = concat!("stowaway/", env!("CARGO_PKG_VERSION"));

/// The `--ca-cert` files, read.
fn ca_certs(options: &RegistryOptions) -> Result<Vec<(PathBuf, Vec<u8>)>> {
    options
        .ca_certs
        .iter()
        .map(|path| {
            std::fs::read(path)
                .map(|data| (path.clone(), data))
                .with_context(|| format!("--ca-cert {}: cannot read", path.display()))
        })
        .collect()
}

fn client_config(reference: &Reference, options: &RegistryOptions) -> Result<ClientConfig> {
    let registry = reference.resolve_registry().to_string();
    let protocol = if options.plain_http {
        ClientProtocol::Http
    } else if uses_plain_http(&registry, options) {
        ClientProtocol::HttpsExcept(vec![registry])
    } else {
        ClientProtocol::Https
    };
    let extra_root_certificates = ca_certs(options)?
        .into_iter()
        .map(|(_, data)| Certificate {
            encoding: CertificateEncoding::Pem,
            data,
        })
        .collect();
    Ok(ClientConfig {
        protocol,
        extra_root_certificates,
        connect_timeout: Some(CONNECT_TIMEOUT),
        read_timeout: Some(READ_TIMEOUT),
        user_agent: USER_AGENT,
        ..ClientConfig::default()
    })
}

/// The HTTP client for manifest and blob requests, set up as oci-client's (same roots, extra
/// CA certificates, timeouts).
pub fn http_client(options: &RegistryOptions) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .user_agent(USER_AGENT);
    for (path, data) in ca_certs(options)? {
        let certificates = reqwest::Certificate::from_pem_bundle(&data)
            .map_err(|_| anyhow!("--ca-cert {}: not PEM certificates", path.display()))?;
        builder = builder.tls_certs_merge(certificates);
    }
    if let Some(network) = &options.network {
        // A proxy would resolve the target itself, out of the resolver's sight.
        builder = builder
            .dns_resolver(Arc::new(guard::GuardedResolver {
                policy: Arc::clone(network),
            }))
            .redirect(network.redirect_policy())
            .no_proxy();
    }
    builder
        .build()
        .map_err(|err| anyhow!("cannot set up HTTPS: {}", http::error_chain(&err)))
}

/// The manifests of an index to scan: every platform with `--all-platforms`, else the one that
/// matches `--platform` (default: this machine's, then linux/amd64). Attestations are skipped.
fn select_platforms(
    index: &ImageIndex,
    options: &RegistryOptions,
) -> Result<Vec<(String, String)>> {
    let mut candidates = Vec::new();
    for descriptor in index.manifests() {
        if platform::is_attestation(descriptor) {
            continue;
        }
        let Some(platform) = platform::of_descriptor(descriptor) else {
            continue;
        };
        candidates.push((descriptor.digest().to_string(), platform));
    }
    if candidates.is_empty() {
        bail!("the image index lists no runnable platform");
    }
    // Each platform is a manifest and a config fetched; a hostile index must not make one
    // argument cost thousands of requests.
    limits::check_manifest_count(candidates.len(), "the image index")?;
    if options.all_platforms {
        return Ok(candidates);
    }
    let wanted = options.platform.clone();
    let filters = match &wanted {
        Some(filter) => vec![filter.clone()],
        None => vec![
            PlatformFilter::host(),
            "linux/amd64".parse().expect("valid"),
        ],
    };
    for filter in &filters {
        if let Some(found) = candidates.iter().find(|(_, p)| filter.matches(p)) {
            return Ok(vec![found.clone()]);
        }
    }
    let available: Vec<&str> = candidates.iter().map(|(_, p)| p.as_str()).collect();
    bail!(
        "no image for platform {} (available: {}; use --platform or --all-platforms)",
        filters[0],
        available.join(", ")
    )
}

/// Runs a registry request, retrying transient failures (connection trouble, 5xx, 429) with
/// backoff, at most [`ATTEMPTS`] times. A `Retry-After` the registry sends is honoured when it
/// fits in [`MAX_RETRY_WAIT`]; a longer one ends the attempts at once with the message that
/// names it, so a rate-limited caller never spins.
pub(crate) async fn retrying<T, F, Fut>(what: &str, mut request: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, Failure>>,
{
    let mut backoff = Duration::from_millis(500);
    let mut waited = Duration::ZERO;
    for attempt in 1..=ATTEMPTS {
        let failure = match request().await {
            Ok(value) => return Ok(value),
            Err(failure) => failure,
        };
        let delay = match &failure.retry_after {
            Some(retry) => retry.wait,
            None => Some(backoff),
        };
        match delay {
            Some(delay)
                if failure.transient && attempt < ATTEMPTS && waited + delay <= MAX_RETRY_WAIT =>
            {
                tokio::time::sleep(delay).await;
                waited += delay;
                backoff *= 2;
            }
            _ => return Err(anyhow!("{what}: {}", failure.message)),
        }
    }
    unreachable!("the last attempt returns")
}

impl Remote {
    fn with_retries<T, F, Fut>(&self, what: &str, request: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, Failure>>,
    {
        self.runtime.block_on(retrying(what, request))
    }

    fn fetch_manifest(&self, reference: &Reference) -> Result<(Bytes, String)> {
        let manifest = self.with_retries("manifest", || self.api.manifest(reference))?;
        let digest = checked_digest(reference, &manifest)?;
        Ok((manifest.bytes, digest))
    }

    fn fetch_blob(&self, reference: &Reference, digest: &Digest, what: &str) -> Result<Vec<u8>> {
        let bytes = self.with_retries(&format!("{what} {digest}"), || {
            self.api
                .small_blob(reference, digest.as_str(), MAX_CONFIG_BYTES)
        })?;
        digest.verify(&bytes, &format!("{what} {digest}"))?;
        Ok(bytes.to_vec())
    }

    fn load_image(
        self: &Arc<Self>,
        reference: &Reference,
        manifest_bytes: &[u8],
        manifest_digest: &str,
        label: String,
        platform: Option<String>,
    ) -> Result<Image> {
        let manifest_digest = Digest::parse(manifest_digest)?;
        manifest_digest.verify(manifest_bytes, "manifest")?;
        let manifest: ImageManifest = json::parse(
            manifest_bytes,
            &format!("manifest {manifest_digest} is not an image manifest"),
        )?;
        let config_digest = Digest::parse(manifest.config().digest().as_ref())?;
        let config_bytes = self.fetch_blob(reference, &config_digest, "config")?;
        let view = ManifestView {
            reference: label,
            digest: Some(manifest_digest.clone()),
            listed_in: LayerList::Manifest(manifest_digest),
            config_name: format!("config {config_digest}"),
            config_digest,
            layers: LayerDescriptor::of_manifest(&manifest)?,
            index_platform: platform,
        };
        Image::from_manifest(view, &config_bytes, |_, descriptor, _| {
            self.layer_blob(reference, descriptor)
        })
    }

    /// A layer's blob, streamed from the registry when it is read.
    fn layer_blob(
        self: &Arc<Self>,
        reference: &Reference,
        descriptor: &LayerDescriptor,
    ) -> Result<LayerBlob> {
        let media_type = descriptor.media_type.as_deref().unwrap_or_default();
        if Layer::is_foreign_media_type(media_type) {
            // Foreign layers live at third-party URLs; stowaway talks to the registry only.
            return Ok(LayerBlob::Absent(format!(
                "foreign layer hosted outside the registry ({media_type})"
            )));
        }
        let Some(digest) = &descriptor.digest else {
            bail!("a layer of the manifest has no digest");
        };
        Ok(LayerBlob::Stream(Box::new(RemoteBlob {
            remote: Arc::clone(self),
            reference: reference.clone(),
            digest: digest.clone(),
            size: descriptor.size,
        })))
    }
}

/// The digest of a manifest the registry sent for `reference`, checked: the digest asked
/// for, else the one the registry announced, else the content's. Schema 1 is refused.
fn checked_digest(reference: &Reference, manifest: &http::Manifest) -> Result<String> {
    // Before the digest: a signed schema 1 manifest's digest covers its payload without the
    // signatures, so checking it first would report a mismatch instead of what is wrong.
    if is_schema1(&manifest.media_type, &manifest.bytes) {
        let media_type = if manifest.media_type.is_empty() {
            "schemaVersion 1"
        } else {
            manifest.media_type.as_str()
        };
        bail!(
            "manifest: Docker image manifest schema 1 ({media_type}) is unsupported; \
             push the image again with a current docker, podman or skopeo"
        );
    }
    let expected = reference
        .digest()
        .map(str::to_string)
        .or(manifest.digest.clone());
    let digest = match expected {
        Some(expected) => {
            // The header is whatever the host sent: not repeated when it is no digest.
            let expected = Digest::parse(&expected).map_err(|_| match reference.digest() {
                Some(asked) => anyhow!("{asked:?} is not a sha256 digest"),
                None => {
                    anyhow!("manifest: the registry announced a malformed Docker-Content-Digest")
                }
            })?;
            expected.verify(&manifest.bytes, "manifest")?;
            expected
        }
        None => Digest::of(&manifest.bytes),
    };
    Ok(digest.to_string())
}

/// One layer blob in a registry.
struct RemoteBlob {
    remote: Arc<Remote>,
    reference: Reference,
    digest: Digest,
    /// The descriptor's size: no more is read, whatever the registry sends (the digest check
    /// then fails on a blob that was cut).
    size: Option<u64>,
}

/// Chunks of a layer in flight between the network task and the walker thread. Small, so the
/// download runs just ahead of the scan and memory stays flat.
const STREAM_BUFFER_CHUNKS: usize = 16;

impl BlobOpener for RemoteBlob {
    fn open(&self) -> Result<Box<dyn Read + Send + '_>> {
        let remote = &self.remote;
        let response = remote.with_retries(&format!("layer {}", self.digest), || {
            remote.api.blob(&self.reference, self.digest.as_str(), 0)
        })?;
        let (sender, receiver) =
            tokio::sync::mpsc::channel::<io::Result<Bytes>>(STREAM_BUFFER_CHUNKS);
        remote.runtime.spawn(download(
            Arc::clone(&remote.api),
            self.reference.clone(),
            self.digest.clone(),
            response,
            sender,
        ));
        let reader = ChannelReader {
            receiver,
            current: Bytes::new(),
        };
        Ok(match self.size {
            Some(size) => Box::new(reader.take(size)),
            None => Box::new(reader),
        })
    }
}

/// How many times a layer download that breaks off is resumed before the scan fails.
const RESUMES: u32 = 3;

/// Streams a layer into `sender`. When the connection breaks, the download resumes with a
/// `Range` request from the byte it had reached (skipping what it already has if the registry
/// answers with the whole blob): the reader sees one unbroken stream, so the digest the walker
/// computes covers every byte exactly once.
async fn download(
    api: Arc<Api>,
    reference: Reference,
    digest: Digest,
    response: reqwest::Response,
    sender: tokio::sync::mpsc::Sender<io::Result<Bytes>>,
) {
    let what = format!("layer {digest}");
    let mut stream = response.bytes_stream().boxed();
    let mut received: u64 = 0;
    // Bytes to drop from the start of a stream that began again at 0.
    let mut skip: u64 = 0;
    let mut resumes = 0;
    loop {
        let error = match stream.next().await {
            None => return,
            Some(Ok(mut chunk)) => {
                if skip > 0 {
                    let dropped = skip.min(chunk.len() as u64);
                    let _ = chunk.split_to(dropped as usize);
                    skip -= dropped;
                }
                received += chunk.len() as u64;
                if !chunk.is_empty() && sender.send(Ok(chunk)).await.is_err() {
                    return; // The reader is gone.
                }
                continue;
            }
            Some(Err(err)) => http::request_failure(err, &api.name).message,
        };
        let mut message = format!("{what}: download broke off after {received} bytes: {error}");
        if resumes < RESUMES {
            resumes += 1;
            tokio::time::sleep(Duration::from_millis(250 << resumes)).await;
            match api.blob(&reference, digest.as_str(), received).await {
                Ok(response) => match resumed_from(&response, received) {
                    Some(start) => {
                        skip = received - start;
                        stream = response.bytes_stream().boxed();
                        continue;
                    }
                    None => {
                        message.push_str(" (the registry answered the resume with another range)")
                    }
                },
                Err(failure) => {
                    message = format!("{message}; resuming failed: {}", failure.message);
                }
            }
        }
        if resumes == RESUMES {
            message.push_str(&format!(" (gave up after {RESUMES} resumes)"));
        }
        let _ = sender.send(Err(io::Error::other(message))).await;
        return;
    }
}

/// Where the body of an answer to `Range: bytes=OFFSET-` starts: at `offset` for a 206 whose
/// `Content-Range` says so, at 0 for a 200 (the registry ignored the range). `None` otherwise.
fn resumed_from(response: &reqwest::Response, offset: u64) -> Option<u64> {
    if offset == 0 || response.status() == reqwest::StatusCode::OK {
        return Some(0);
    }
    if response.status() != reqwest::StatusCode::PARTIAL_CONTENT {
        return None;
    }
    let start = response
        .headers()
        .get(reqwest::header::CONTENT_RANGE)?
        .to_str()
        .ok()?
        .strip_prefix("bytes ")?
        .split('-')
        .next()?
        .trim()
        .parse::<u64>()
        .ok()?;
    (start == offset).then_some(offset)
}

/// A blocking `Read` over chunks arriving from the network task.
struct ChannelReader {
    receiver: tokio::sync::mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.receiver.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(err)) => return Err(err),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries_use_plain_http() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("localhost:5000"));
        assert!(is_loopback("localhost"));
        assert!(!is_loopback("registry.example.com:5000"));
        assert!(!is_loopback("docker.io"));
    }

    #[test]
    fn docker_hub_credentials_come_from_the_index_key() {
        use base64::Engine as _;
        let dir = tempfile::tempdir().unwrap();
        let auth = base64::engine::general_purpose::STANDARD.encode("hub-user:hub-pass-1");
        std::fs::write(
            dir.path().join("config.json"),
            format!(r#"{{"auths": {{"https://index.docker.io/v1/": {{"auth": "{auth}"}}}}}}"#),
        )
        .unwrap();
        let options = RegistryOptions {
            auth_environment: Some(AuthEnvironment {
                docker_config_dir: Some(dir.path().to_path_buf()),
                ..AuthEnvironment::default()
            }),
            ..RegistryOptions::default()
        };
        for text in [
            "alpine",
            "registry-1.docker.io/alpine",
            "index.docker.io/x/y",
        ] {
            let name = hub_name(&text.parse().unwrap());
            let (_, auth) = client_for(&name, &options).unwrap();
            assert_eq!(
                auth,
                RegistryAuth::Basic("hub-user".into(), "hub-pass-1".into()),
                "{text}"
            );
        }
    }

    #[test]
    fn channel_reader_reassembles_chunks() {
        let (sender, receiver) = tokio::sync::mpsc::channel(4);
        let feeder = std::thread::spawn(move || {
            for part in [&b"hello "[..], b"stream", b"ed world"] {
                sender.blocking_send(Ok(Bytes::from_static(part))).unwrap();
            }
        });
        let mut reader = ChannelReader {
            receiver,
            current: Bytes::new(),
        };
        let mut text = String::new();
        reader.read_to_string(&mut text).unwrap();
        feeder.join().unwrap();
        assert_eq!(text, "hello streamed world");
    }
}
