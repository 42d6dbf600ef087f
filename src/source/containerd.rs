//! Images in containerd (`containerd:NAME`), read through containerd's gRPC API on its socket
//! (`--containerd-address`, default `/run/containerd/containerd.sock`), in the namespace
//! `--containerd-namespace` names, else `k8s.io` (Kubernetes' namespace) and then `default`.
//!
//! Why the API and not the files under containerd's root: the image records live in a bbolt
//! database (`io.containerd.metadata.v1.bolt/meta.db`) that the running daemon holds open and
//! rewrites page by page, and no maintained Rust bbolt reader exists (the one port on
//! crates.io, bbolt-rs, declares no licence); the files need root and a known root directory,
//! while the socket is what containerd publishes as its interface (its permissions decide who
//! may read, as for `ctr`), namespaces and garbage-collection leases are applied by the daemon,
//! and a blob read through it is never one being written or deleted. The cost is a gRPC client: tonic's HTTP/2
//! channel over the unix socket, with the few messages this source needs written out by hand
//! (prost derive), so nothing is generated at build time and no `protoc` is needed.
//!
//! Names are looked up as containerd stores them (`docker.io/library/app:1`); a short name
//! (`app:1`) is also tried in Docker's normalised form. Manifest, index and config are read
//! whole (bounded by `source::limits`) and checked against their digests; layers are streamed
//! from the content store when the walk reaches them and verified while read. Every call has a
//! deadline, so a daemon that accepts the connection and then stalls cannot hang a scan.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use oci_spec::image::{ImageIndex, ImageManifest};
use tonic::codec::Streaming;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};

use super::digest::Digest;
use super::image::{Image, Layer, LayerBlob, LayerDescriptor, LayerList, ManifestView};
use super::json;
use super::limits;
use super::name;
use super::platform::{self, PlatformFilter};
use super::probe::Probe;

/// containerd's socket when none is named.
pub const DEFAULT_ADDRESS: &str = "/run/containerd/containerd.sock";
/// The namespaces tried, in order, when none is named: Kubernetes' (CRI) and `ctr`'s.
pub const DEFAULT_NAMESPACES: [&str; 2] = ["k8s.io", "default"];

/// How long connecting to the socket may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one unary call (an image record, a blob's info) may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a layer stream may wait for its next chunk.
const CHUNK_TIMEOUT: Duration = Duration::from_secs(60);

/// Where containerd is and which namespace to read.
#[derive(Clone, Debug, Default)]
pub struct ContainerdOptions {
    /// The socket (`--containerd-address`); [`DEFAULT_ADDRESS`] when `None`.
    pub address: Option<PathBuf>,
    /// The namespace (`--containerd-namespace`); [`DEFAULT_NAMESPACES`] in turn when `None`.
    pub namespace: Option<String>,
}

impl ContainerdOptions {
    /// The socket: `--containerd-address`, else [`DEFAULT_ADDRESS`].
    pub fn address(&self) -> PathBuf {
        self.address
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_ADDRESS))
    }

    fn namespaces(&self) -> Vec<String> {
        match &self.namespace {
            Some(namespace) => vec![namespace.clone()],
            None => DEFAULT_NAMESPACES.iter().map(|ns| ns.to_string()).collect(),
        }
    }
}

/// The response of `call`, or a deadline error when containerd has not answered within
/// [`CALL_TIMEOUT`].
async fn answered_in_time<T>(
    call: impl std::future::Future<Output = Result<tonic::Response<T>, Status>>,
) -> Result<T, Status> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(result) => result.map(tonic::Response::into_inner),
        Err(_) => Err(Status::deadline_exceeded(
            "containerd did not answer in time",
        )),
    }
}

/// The messages of containerd's API this source uses (containerd/api, `services/images/v1`,
/// `services/content/v1`, `types/descriptor.proto`), with their field numbers.
mod wire {
    use std::collections::HashMap;

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Descriptor {
        #[prost(string, tag = "1")]
        pub media_type: String,
        #[prost(string, tag = "2")]
        pub digest: String,
        #[prost(int64, tag = "3")]
        pub size: i64,
        #[prost(map = "string, string", tag = "5")]
        pub annotations: HashMap<String, String>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Image {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(message, optional, tag = "3")]
        pub target: Option<Descriptor>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct GetImageRequest {
        #[prost(string, tag = "1")]
        pub name: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct GetImageResponse {
        #[prost(message, optional, tag = "1")]
        pub image: Option<Image>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ListImagesRequest {
        #[prost(string, repeated, tag = "1")]
        pub filters: Vec<String>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ListImagesResponse {
        #[prost(message, repeated, tag = "1")]
        pub images: Vec<Image>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct InfoRequest {
        #[prost(string, tag = "1")]
        pub digest: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Info {
        #[prost(string, tag = "1")]
        pub digest: String,
        #[prost(int64, tag = "2")]
        pub size: i64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct InfoResponse {
        #[prost(message, optional, tag = "1")]
        pub info: Option<Info>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ReadContentRequest {
        #[prost(string, tag = "1")]
        pub digest: String,
        #[prost(int64, tag = "2")]
        pub offset: i64,
        #[prost(int64, tag = "3")]
        pub size: i64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ReadContentResponse {
        #[prost(int64, tag = "1")]
        pub offset: i64,
        #[prost(bytes = "vec", tag = "2")]
        pub data: Vec<u8>,
    }
}

const GET_IMAGE: &str = "/containerd.services.images.v1.Images/Get";
const LIST_IMAGES: &str = "/containerd.services.images.v1.Images/List";
const CONTENT_INFO: &str = "/containerd.services.content.v1.Content/Info";
const CONTENT_READ: &str = "/containerd.services.content.v1.Content/Read";

/// The runtime the gRPC client runs on. Shut down in the background when the last layer
/// stream is gone, so dropping it never blocks or panics, whatever thread drops it.
struct Runtime(Option<tokio::runtime::Runtime>);

impl Runtime {
    fn get(&self) -> &tokio::runtime::Runtime {
        self.0.as_ref().expect("the runtime lives until drop")
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// A connection to containerd, in one namespace.
struct Client {
    runtime: Arc<Runtime>,
    channel: Channel,
    address: PathBuf,
    namespace: String,
}

impl Client {
    /// Connects to the socket at `address`; a missing socket, a refused connection and a
    /// daemon that does not answer are each one line naming the socket.
    fn connect(address: &Path) -> Result<Client> {
        let shown = address.display();
        match std::fs::metadata(address) {
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                bail!("containerd is not running: no socket at {shown}")
            }
            Err(err) => bail!("cannot reach containerd's socket {shown}: {err}"),
            Ok(_) => {}
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("stowaway-containerd")
            .enable_all()
            .build()
            .context("cannot start the containerd client runtime")?;
        let endpoint = Endpoint::from_shared(format!("unix://{}", address.display()))
            .map_err(|_| anyhow!("{shown} cannot be used as a socket address"))?
            .connect_timeout(CONNECT_TIMEOUT);
        let channel = runtime
            .block_on(async {
                tokio::time::timeout(CONNECT_TIMEOUT, endpoint.connect())
                    .await
                    .map_err(|_| anyhow!("timed out"))?
                    .map_err(|err| anyhow!(describe_connect_error(&err)))
            })
            .with_context(|| format!("cannot connect to containerd at {shown}"))?;
        Ok(Client {
            runtime: Arc::new(Runtime(Some(runtime))),
            channel,
            address: address.to_path_buf(),
            namespace: String::new(),
        })
    }

    fn in_namespace(&self, namespace: &str) -> Client {
        Client {
            runtime: self.runtime.clone(),
            channel: self.channel.clone(),
            address: self.address.clone(),
            namespace: namespace.to_string(),
        }
    }

    /// A request in this namespace. Unary calls add their deadline; a layer stream has none
    /// (it may rightly take long), only one per chunk.
    fn request<M>(&self, message: M) -> Result<Request<M>> {
        let mut request = Request::new(message);
        let namespace = self
            .namespace
            .parse()
            .map_err(|_| anyhow!("{:?} is not a valid containerd namespace", self.namespace))?;
        request
            .metadata_mut()
            .insert("containerd-namespace", namespace);
        Ok(request)
    }

    /// One unary call, with its deadline.
    fn unary<Q, R>(&self, path: &'static str, message: Q) -> Result<R, Status>
    where
        Q: prost::Message + Send + Sync + 'static,
        R: prost::Message + Default + Send + Sync + 'static,
    {
        let mut request = self
            .request(message)
            .map_err(|err| Status::invalid_argument(err.to_string()))?;
        request.set_timeout(CALL_TIMEOUT);
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        self.runtime.get().block_on(async move {
            let call = async {
                grpc.ready()
                    .await
                    .map_err(|err| Status::unavailable(err.to_string()))?;
                let codec = tonic_prost::ProstCodec::<Q, R>::default();
                grpc.unary(
                    request,
                    tonic::codegen::http::uri::PathAndQuery::from_static(path),
                    codec,
                )
                .await
            };
            answered_in_time(call).await
        })
    }

    /// The image record named `name`, or `None` when this namespace has no such image.
    fn image(&self, name: &str) -> Result<Option<wire::Image>> {
        let request = wire::GetImageRequest {
            name: name.to_string(),
        };
        match self.unary::<_, wire::GetImageResponse>(GET_IMAGE, request) {
            Ok(response) => Ok(response.image),
            Err(status) if status.code() == Code::NotFound => Ok(None),
            Err(status) => Err(self.failed(&status)),
        }
    }

    /// The names of the images in this namespace (for the error when none matches).
    fn names(&self) -> Result<Vec<String>> {
        let response: wire::ListImagesResponse = self
            .unary(LIST_IMAGES, wire::ListImagesRequest::default())
            .map_err(|status| self.failed(&status))?;
        Ok(response
            .images
            .into_iter()
            .map(|image| image.name)
            .collect())
    }

    /// The size of a blob in the content store, or `None` when the store does not hold it.
    fn blob_size(&self, digest: &Digest) -> Result<Option<u64>> {
        let request = wire::InfoRequest {
            digest: digest.to_string(),
        };
        match self.unary::<_, wire::InfoResponse>(CONTENT_INFO, request) {
            Ok(response) => Ok(response
                .info
                .map(|info| u64::try_from(info.size).unwrap_or_default())),
            Err(status) if status.code() == Code::NotFound => Ok(None),
            Err(status) => Err(self.failed(&status)),
        }
    }

    /// Opens a stream of the blob's bytes.
    fn open_stream(&self, digest: &Digest) -> Result<Streaming<wire::ReadContentResponse>> {
        let request = self.request(wire::ReadContentRequest {
            digest: digest.to_string(),
            offset: 0,
            size: 0,
        })?;
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        let result = self.runtime.get().block_on(async move {
            let call = async {
                grpc.ready()
                    .await
                    .map_err(|err| Status::unavailable(err.to_string()))?;
                let codec = tonic_prost::ProstCodec::<
                    wire::ReadContentRequest,
                    wire::ReadContentResponse,
                >::default();
                grpc.server_streaming(
                    request,
                    tonic::codegen::http::uri::PathAndQuery::from_static(CONTENT_READ),
                    codec,
                )
                .await
            };
            answered_in_time(call).await
        });
        result.map_err(|status| self.failed(&status))
    }

    /// A whole blob (a manifest, an index or a config), refused over `limit` bytes and checked
    /// against its digest.
    fn read_blob(&self, digest: &Digest, what: &str, limit: usize) -> Result<Vec<u8>> {
        let label = format!("{what} {digest}");
        let Some(size) = self.blob_size(digest)? else {
            bail!("{label} is not in containerd's content store");
        };
        limits::check_size(&label, usize::try_from(size).unwrap_or(usize::MAX), limit)?;
        let mut bytes = Vec::new();
        self.blob_reader(digest)
            .take(limit as u64 + 1)
            .read_to_end(&mut bytes)
            .with_context(|| label.clone())?;
        limits::check_size(&label, bytes.len(), limit)?;
        digest.verify(&bytes, &label)?;
        Ok(bytes)
    }

    fn blob_reader(&self, digest: &Digest) -> BlobReader {
        BlobReader {
            runtime: self.runtime.clone(),
            stream: None,
            opener: Some((self.in_namespace(&self.namespace), digest.clone())),
            chunk: Vec::new(),
            at: 0,
        }
    }

    /// A gRPC failure as one line naming the daemon.
    fn failed(&self, status: &Status) -> anyhow::Error {
        let shown = self.address.display();
        match status.code() {
            Code::Unavailable => anyhow!(
                "containerd at {shown} is not answering: {}",
                status.message()
            ),
            Code::DeadlineExceeded => anyhow!("containerd at {shown} did not answer in time"),
            Code::PermissionDenied | Code::Unauthenticated => {
                anyhow!(
                    "containerd at {shown} refused the request: {}",
                    status.message()
                )
            }
            _ => anyhow!(
                "containerd at {shown} answered {:?}: {}",
                status.code(),
                status.message()
            ),
        }
    }
}

/// The most useful line of a connection error: the innermost cause (`Connection refused`,
/// `Permission denied`), which tonic wraps in `transport error`.
fn describe_connect_error(err: &(dyn std::error::Error + 'static)) -> String {
    let mut innermost = err;
    while let Some(source) = innermost.source() {
        innermost = source;
    }
    innermost.to_string()
}

/// Reads one blob from the content store as a stream of `Read` chunks, each awaited with a
/// deadline.
struct BlobReader {
    runtime: Arc<Runtime>,
    stream: Option<Streaming<wire::ReadContentResponse>>,
    /// Until the first read: the client and the digest to open.
    opener: Option<(Client, Digest)>,
    chunk: Vec<u8>,
    at: usize,
}

impl Read for BlobReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.at == self.chunk.len() {
            if let Some((client, digest)) = self.opener.take() {
                let stream = client
                    .open_stream(&digest)
                    .map_err(|err| io::Error::other(format!("{err:#}")))?;
                self.stream = Some(stream);
            }
            let Some(stream) = self.stream.as_mut() else {
                return Ok(0);
            };
            let next = self
                .runtime
                .get()
                .block_on(async { tokio::time::timeout(CHUNK_TIMEOUT, stream.message()).await });
            match next {
                Err(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "containerd stopped sending the blob",
                    ));
                }
                Ok(Err(status)) => {
                    return Err(io::Error::other(format!(
                        "containerd failed while sending the blob: {}",
                        status.message()
                    )));
                }
                Ok(Ok(None)) => {
                    self.stream = None;
                    return Ok(0);
                }
                Ok(Ok(Some(message))) => {
                    self.chunk = message.data;
                    self.at = 0;
                }
            }
        }
        let n = out.len().min(self.chunk.len() - self.at);
        out[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// A layer blob in the content store, opened when the walk reaches it.
struct ContentBlob {
    client: Client,
    digest: Digest,
}

impl super::image::BlobOpener for ContentBlob {
    fn open(&self) -> Result<Box<dyn Read + Send + '_>> {
        Ok(Box::new(self.client.blob_reader(&self.digest)))
    }
}

/// The names a user's `NAME` may have in containerd: as given, and as Docker normalises it
/// (`app:1` → `docker.io/library/app:1`).
fn candidate_names(name: &str) -> Vec<String> {
    let mut names = vec![name.to_string()];
    let normalised = name::normalise_name(name);
    if normalised != name {
        names.push(normalised);
    }
    names
}

/// Finds the image record, trying the namespaces in order.
fn find_image(client: &Client, options: &ContainerdOptions, wanted: &str) -> Result<Found> {
    let namespaces = options.namespaces();
    for namespace in &namespaces {
        let client = client.in_namespace(namespace);
        for candidate in candidate_names(wanted) {
            if let Some(image) = client.image(&candidate)? {
                return Ok(Found { client, image });
            }
        }
    }
    let mut held = Vec::new();
    for namespace in &namespaces {
        let names = client.in_namespace(namespace).names()?;
        held.extend(names.into_iter().map(|name| format!("{namespace}/{name}")));
    }
    let held: Vec<&str> = held.iter().map(String::as_str).collect();
    bail!(
        "no image named {wanted:?} in containerd at {} (namespaces {}; it holds: {})",
        client.address.display(),
        namespaces.join(", "),
        name::held(&held, "no images")
    )
}

struct Found {
    client: Client,
    image: wire::Image,
}

/// Whether containerd answers on its socket and, in one of the namespaces, has `name`; for
/// trying local stores in turn before a registry.
pub fn probe(name: &str, options: &ContainerdOptions) -> Probe {
    let client = match Client::connect(&options.address()) {
        Ok(client) => client,
        Err(err) => return Probe::Absent(format!("{err:#}")),
    };
    for namespace in options.namespaces() {
        let client = client.in_namespace(&namespace);
        for candidate in candidate_names(name) {
            match client.image(&candidate) {
                Ok(Some(_)) => return Probe::Has,
                Ok(None) => {}
                Err(err) => return Probe::Absent(format!("{err:#}")),
            }
        }
    }
    Probe::NoSuchImage
}

/// Opens the image `name` from containerd; an index gives the images `platform` admits
/// (the host's platform when none is given) whose manifests the content store holds.
pub fn open(
    name: &str,
    options: &ContainerdOptions,
    platform: Option<&PlatformFilter>,
) -> Result<Vec<Image>> {
    if name.is_empty() {
        bail!("missing image name after containerd:");
    }
    let client = Client::connect(&options.address())?;
    let Found { client, image } = find_image(&client, options, name)?;
    let target = image
        .target
        .ok_or_else(|| anyhow!("containerd's record of {} has no target", image.name))?;
    let digest = Digest::parse(&target.digest)?;
    let label = format!("containerd:{}", image.name);
    if is_index(&target.media_type) {
        return open_index(&client, &digest, &label, platform);
    }
    let image = load(&client, &digest, label, None)?;
    if !PlatformFilter::admits(platform, image.platform.as_deref()) {
        bail!(
            "the image is for {}, not the requested platform",
            image.platform.as_deref().unwrap_or("an unnamed platform")
        );
    }
    Ok(vec![image])
}

fn is_index(media_type: &str) -> bool {
    media_type.contains("image.index") || media_type.contains("manifest.list")
}

fn open_index(
    client: &Client,
    digest: &Digest,
    label: &str,
    platform: Option<&PlatformFilter>,
) -> Result<Vec<Image>> {
    let bytes = client.read_blob(digest, "index", limits::MAX_MANIFEST_BYTES)?;
    let index: ImageIndex = json::parse(&bytes, &format!("index {digest} is not a valid index"))?;
    let wanted = platform.cloned().unwrap_or_else(PlatformFilter::host);
    let mut images = Vec::new();
    let mut seen = Vec::new();
    for descriptor in index.manifests() {
        if platform::is_attestation(descriptor) || is_index(descriptor.media_type().as_ref()) {
            continue;
        }
        let manifest = Digest::parse(descriptor.digest().as_ref())?;
        let named = platform::of_descriptor(descriptor);
        seen.extend(named.clone());
        if !PlatformFilter::admits(Some(&wanted), named.as_deref()) {
            continue;
        }
        // An image pulled for one platform keeps only that platform's manifest.
        if client.blob_size(&manifest)?.is_none() {
            continue;
        }
        let reference = format!("{label}@{manifest}");
        images.push(load(client, &manifest, reference, named)?);
        limits::check_manifest_count(images.len(), "containerd's index")?;
    }
    if images.is_empty() {
        let seen: Vec<&str> = seen.iter().map(String::as_str).collect();
        bail!(
            "no manifest in containerd for the platform {} (the index lists: {})",
            format_platform(&wanted),
            name::held(&seen, "no platforms")
        );
    }
    Ok(images)
}

fn format_platform(filter: &PlatformFilter) -> String {
    match &filter.variant {
        Some(variant) => format!("{}/{}/{variant}", filter.os, filter.architecture),
        None => format!("{}/{}", filter.os, filter.architecture),
    }
}

/// The image behind one manifest in the content store.
fn load(
    client: &Client,
    digest: &Digest,
    reference: String,
    index_platform: Option<String>,
) -> Result<Image> {
    let bytes = client.read_blob(digest, "manifest", limits::MAX_MANIFEST_BYTES)?;
    let manifest: ImageManifest = json::parse(
        &bytes,
        &format!("manifest {digest} is not a valid image manifest"),
    )?;
    let config_digest = Digest::parse(manifest.config().digest().as_ref())?;
    let config_bytes = client.read_blob(&config_digest, "config", limits::MAX_CONFIG_BYTES)?;
    let view = ManifestView {
        reference,
        digest: Some(digest.clone()),
        listed_in: LayerList::Manifest(digest.clone()),
        config_name: format!("config {config_digest}"),
        config_digest,
        layers: LayerDescriptor::of_manifest(&manifest)?,
        index_platform,
    };
    Image::from_manifest(view, &config_bytes, |_, descriptor, _| {
        layer_blob(client, descriptor)
    })
}

fn layer_blob(client: &Client, descriptor: &LayerDescriptor) -> Result<LayerBlob> {
    let Some(digest) = &descriptor.digest else {
        bail!("a layer of the manifest has no digest");
    };
    let media_type = descriptor.media_type.as_deref().unwrap_or_default();
    match client.blob_size(digest)? {
        Some(size) if descriptor.size.is_some_and(|expected| expected != size) => bail!(
            "layer {digest}: size mismatch: the manifest says {} bytes, containerd holds {size}",
            descriptor.size.unwrap_or_default()
        ),
        Some(_) => Ok(LayerBlob::Stream(Box::new(ContentBlob {
            client: client.in_namespace(&client.namespace),
            digest: digest.clone(),
        }))),
        None if Layer::is_foreign_media_type(media_type) => Ok(LayerBlob::Absent(format!(
            "foreign layer not in containerd's content store ({media_type})"
        ))),
        None => bail!("layer {digest} is not in containerd's content store"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_also_tried_as_docker_normalises_them() {
        assert_eq!(
            candidate_names("app:1"),
            vec!["app:1".to_string(), "docker.io/library/app:1".to_string()]
        );
        assert_eq!(
            candidate_names("docker.io/library/app:1"),
            vec!["docker.io/library/app:1".to_string()]
        );
    }

    #[test]
    fn a_missing_socket_says_containerd_is_not_running() {
        let dir = std::env::temp_dir().join("stowaway-no-such-containerd.sock");
        let options = ContainerdOptions {
            address: Some(dir.clone()),
            namespace: None,
        };
        let err = open("app:1", &options, None).err().unwrap();
        assert_eq!(
            err.to_string(),
            format!("containerd is not running: no socket at {}", dir.display())
        );
        assert!(matches!(probe("app:1", &options), Probe::Absent(_)));
    }
}
