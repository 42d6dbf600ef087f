//! Images pulled from registries (`docker://REF`, `alpine:3.20`, `host:5000/app@sha256:…`)
//! through oci-client. Manifests and configs are fetched whole; layers are streamed straight
//! into the layer walker (no temporary files), their digests checked as they stream.

pub mod auth;

use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use futures_util::StreamExt;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use oci_spec::image::{ImageIndex, ImageManifest};

use self::auth::{AuthEnvironment, Credentials, ExplicitCredentials};
use super::platform::PlatformFilter;
use super::{BlobOpener, Digest, Image, ImageConfig, Layer, LayerBlob};

/// Media types stowaway asks registries for (schema 1 is deliberately absent).
const ACCEPTED_MANIFESTS: &[&str] = &[
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// How to reach registries.
#[derive(Clone, Default)]
pub struct RegistryOptions {
    pub credentials: ExplicitCredentials,
    /// Use plain HTTP for every registry (it is always used for localhost and 127.0.0.1).
    pub plain_http: bool,
    /// Extra CA certificates (PEM) to trust besides the system roots.
    pub ca_certs: Vec<PathBuf>,
    pub platform: Option<PlatformFilter>,
    pub all_platforms: bool,
    /// Where to look for auth files; `None` reads the process environment.
    pub auth_environment: Option<AuthEnvironment>,
}

/// Attempts for requests that fail transiently (connection errors, 5xx, 429).
const ATTEMPTS: u32 = 4;

/// A connection to one repository, shared by the layers it streams.
struct Remote {
    runtime: tokio::runtime::Runtime,
    client: Client,
    auth: RegistryAuth,
    registry: String,
}

/// Opens the image(s) `text` names in a registry.
pub fn open(text: &str, options: &RegistryOptions) -> Result<Vec<Image>> {
    let reference: Reference = text
        .parse()
        .map_err(|err| anyhow!("not a valid image reference: {err}"))?;
    let registry = reference.registry().to_string();
    let (client, auth) = client_for(&reference, options)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("stowaway-net")
        .enable_all()
        .build()
        .context("cannot start the network runtime")?;
    let remote = Arc::new(Remote {
        client,
        runtime,
        auth,
        registry,
    });

    let (manifest_bytes, manifest_digest) = remote.fetch_manifest(&reference)?;
    let top: serde_json::Value = serde_json::from_slice(&manifest_bytes)
        .map_err(|_| anyhow!("the registry returned a manifest that is not JSON"))?;
    if top.get("schemaVersion").and_then(|v| v.as_u64()) == Some(1) {
        bail!("this image uses Docker manifest schema 1, which is unsupported");
    }
    let is_index = top.get("manifests").is_some();
    let label = reference.whole();
    if !is_index {
        let image =
            remote.load_image(&reference, &manifest_bytes, &manifest_digest, label, None)?;
        return Ok(vec![image]);
    }
    let index: ImageIndex = serde_json::from_slice(&manifest_bytes)
        .map_err(|err| anyhow!("malformed image index: {err}"))?;
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

/// A client and credentials for the registry of `reference`, set up as [`open`] sets them up
/// (loopback registries over plain HTTP, extra CA certificates, docker config files and
/// credential helpers), for callers that run in their own tokio runtime: `stowaway serve`
/// resolves tags with `Client::fetch_manifest_digest` (a manifest HEAD) and keeps one per
/// registry.
pub fn client_for(
    reference: &Reference,
    options: &RegistryOptions,
) -> Result<(Client, RegistryAuth)> {
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

fn client_config(reference: &Reference, options: &RegistryOptions) -> Result<ClientConfig> {
    let registry = reference.resolve_registry().to_string();
    let protocol = if options.plain_http {
        ClientProtocol::Http
    } else if is_loopback(&registry) {
        ClientProtocol::HttpsExcept(vec![registry])
    } else {
        ClientProtocol::Https
    };
    let mut extra_root_certificates = Vec::new();
    for path in &options.ca_certs {
        let data = std::fs::read(path)
            .with_context(|| format!("--ca-cert {}: cannot read", path.display()))?;
        extra_root_certificates.push(Certificate {
            encoding: CertificateEncoding::Pem,
            data,
        });
    }
    Ok(ClientConfig {
        protocol,
        extra_root_certificates,
        connect_timeout: Some(Duration::from_secs(15)),
        read_timeout: Some(Duration::from_secs(60)),
        user_agent: concat!("stowaway/", env!("CARGO_PKG_VERSION")),
        ..ClientConfig::default()
    })
}

/// The manifests of an index to scan: every platform with `--all-platforms`, else the one that
/// matches `--platform` (default: this machine's, then linux/amd64). Attestations are skipped.
fn select_platforms(
    index: &ImageIndex,
    options: &RegistryOptions,
) -> Result<Vec<(String, String)>> {
    let mut candidates = Vec::new();
    for descriptor in index.manifests() {
        let attestation = descriptor.annotations().as_ref().is_some_and(|a| {
            a.get("vnd.docker.reference.type")
                .is_some_and(|t| t == "attestation-manifest")
        });
        let platform = descriptor.platform().as_ref().map(|p| {
            let mut text = format!("{}/{}", p.os(), p.architecture());
            if let Some(variant) = p.variant() {
                text = format!("{text}/{variant}");
            }
            text
        });
        let platform = platform.unwrap_or_else(|| "unknown/unknown".to_string());
        if attestation || platform == "unknown/unknown" {
            continue;
        }
        candidates.push((descriptor.digest().to_string(), platform));
    }
    if candidates.is_empty() {
        bail!("the image index lists no runnable platform");
    }
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

impl Remote {
    /// Runs a registry request, retrying transient failures with backoff.
    fn with_retries<T, F, Fut>(&self, what: &str, mut request: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, OciDistributionError>>,
    {
        let mut delay = Duration::from_millis(500);
        for attempt in 1..=ATTEMPTS {
            match self.runtime.block_on(request()) {
                Ok(value) => return Ok(value),
                Err(err) => {
                    let failure = classify(&err, &self.registry);
                    if !failure.transient || attempt == ATTEMPTS {
                        return Err(anyhow!("{what}: {}", failure.message));
                    }
                    std::thread::sleep(delay);
                    delay *= 2;
                }
            }
        }
        unreachable!("the last attempt returns")
    }

    fn fetch_manifest(&self, reference: &Reference) -> Result<(Bytes, String)> {
        self.with_retries("manifest", || {
            self.client
                .pull_manifest_raw(reference, &self.auth, ACCEPTED_MANIFESTS)
        })
    }

    fn fetch_blob(&self, reference: &Reference, digest: &Digest, what: &str) -> Result<Vec<u8>> {
        let bytes = self.with_retries(what, || async {
            let mut out: Vec<u8> = Vec::new();
            self.client
                .pull_blob(reference, digest.as_str(), &mut out)
                .await
                .map(|_| out)
        })?;
        digest.verify(&bytes, &format!("{what} {digest}"))?;
        Ok(bytes)
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
        let manifest: ImageManifest = serde_json::from_slice(manifest_bytes)
            .map_err(|err| anyhow!("manifest {manifest_digest} is not an image manifest: {err}"))?;
        let config_digest = Digest::parse(manifest.config().digest().as_ref())?;
        let config_bytes = self.fetch_blob(reference, &config_digest, "config")?;
        let config = ImageConfig::parse(&config_bytes, &format!("config {config_digest}"))?;
        if config.diff_ids.len() != manifest.layers().len() {
            bail!(
                "manifest {manifest_digest} lists {} layers but its config lists {} diff_ids",
                manifest.layers().len(),
                config.diff_ids.len()
            );
        }
        let mut layers = Vec::new();
        for (descriptor, diff_id) in manifest.layers().iter().zip(&config.diff_ids) {
            let digest = Digest::parse(descriptor.digest().as_ref())?;
            let media_type = descriptor.media_type().to_string();
            let blob = if Layer::is_foreign_media_type(&media_type) {
                // Foreign layers live at third-party URLs; stowaway talks to the registry only.
                LayerBlob::Absent(format!(
                    "foreign layer hosted outside the registry ({media_type})"
                ))
            } else {
                LayerBlob::Stream(Box::new(RemoteBlob {
                    remote: Arc::clone(self),
                    reference: reference.clone(),
                    descriptor: OciDescriptor {
                        media_type: media_type.clone(),
                        digest: digest.to_string(),
                        size: descriptor.size() as i64,
                        ..OciDescriptor::default()
                    },
                }))
            };
            layers.push(Layer {
                digest: Some(digest),
                diff_id: Some(diff_id.clone()),
                media_type: Some(media_type),
                size: descriptor.size(),
                blob,
            });
        }
        Ok(Image {
            reference: label,
            manifest_digest: Some(manifest_digest),
            config_digest,
            platform: config.platform().or(platform),
            config,
            layers,
        })
    }
}

/// One layer blob in a registry.
struct RemoteBlob {
    remote: Arc<Remote>,
    reference: Reference,
    descriptor: OciDescriptor,
}

/// Chunks of a layer in flight between the network task and the walker thread. Small, so the
/// download runs just ahead of the scan and memory stays flat.
const STREAM_BUFFER_CHUNKS: usize = 16;

impl BlobOpener for RemoteBlob {
    fn open(&self) -> Result<Box<dyn Read + Send + '_>> {
        let remote = &self.remote;
        let stream = remote.with_retries(&format!("layer {}", self.descriptor.digest), || {
            remote
                .client
                .pull_blob_stream(&self.reference, &self.descriptor)
        })?;
        let (sender, receiver) =
            tokio::sync::mpsc::channel::<io::Result<Bytes>>(STREAM_BUFFER_CHUNKS);
        let mut stream = stream.stream;
        remote.runtime.spawn(async move {
            while let Some(chunk) = stream.next().await {
                let failed = chunk.is_err();
                if sender.send(chunk).await.is_err() || failed {
                    break;
                }
            }
        });
        Ok(Box::new(ChannelReader {
            receiver,
            current: Bytes::new(),
        }))
    }
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

/// A registry failure in words a user can act on.
struct Failure {
    message: String,
    transient: bool,
}

fn classify(err: &OciDistributionError, registry: &str) -> Failure {
    let fail = |message: String, transient: bool| Failure { message, transient };
    match err {
        OciDistributionError::AuthenticationFailure(_)
        | OciDistributionError::UnauthorizedError { .. } => {
            fail(format!("authentication failed for {registry}"), false)
        }
        OciDistributionError::ImageManifestNotFoundError(_) => {
            fail("no such image or tag".to_string(), false)
        }
        OciDistributionError::ServerError { code, message, .. } => match code {
            401 | 403 => fail(format!("authentication failed for {registry}"), false),
            404 => fail("no such image or tag".to_string(), false),
            429 => fail(
                format!(
                    "rate limited by {registry} (HTTP 429): {message}; try again later or authenticate"
                ),
                true,
            ),
            500..=599 => fail(format!("{registry} answered HTTP {code}"), true),
            _ => fail(format!("{registry} answered HTTP {code}: {message}"), false),
        },
        OciDistributionError::RegistryError { envelope, .. } => {
            use oci_client::errors::OciErrorCode as Code;
            let codes: Vec<&Code> = envelope.errors.iter().map(|e| &e.code).collect();
            let any = |wanted: &[Code]| codes.iter().any(|code| wanted.contains(code));
            if any(&[Code::ManifestUnknown, Code::NameUnknown]) {
                fail("no such image or tag".to_string(), false)
            } else if any(&[Code::Unauthorized, Code::Denied]) {
                fail(format!("authentication failed for {registry}"), false)
            } else if any(&[Code::Toomanyrequests]) {
                fail(format!("rate limited by {registry} ({envelope})"), true)
            } else {
                fail(format!("{registry}: {envelope}"), false)
            }
        }
        OciDistributionError::RequestError(request) => {
            let transient = request.is_timeout() || request.is_connect();
            let reason = if request.is_connect() {
                "cannot connect"
            } else if request.is_timeout() {
                "timed out"
            } else {
                "request failed"
            };
            fail(
                format!("{reason} to {registry}: {}", error_chain(request)),
                transient,
            )
        }
        OciDistributionError::DigestError(digest) => {
            fail(format!("digest mismatch: {digest}"), false)
        }
        other => fail(other.to_string(), false),
    }
}

/// An error and its sources on one line (reqwest hides the useful part in `source()`).
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(next) = source {
        let text = next.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = next.source();
    }
    parts.join(": ")
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
