//! The IMAGE argument: skopeo's transport names (`docker://`, `docker-archive:`, `oci:`,
//! `oci-archive:`, `docker-daemon:`, `containers-storage:`), `containerd:`, bare paths detected
//! by content (compressed tarballs too), and bare image names, looked for in the local stores
//! and then the registry (`local_order.rs`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::containerd::ContainerdOptions;
use super::containers_storage::{self, StoreSpec};
use super::docker_daemon::{self, DaemonOptions};
use super::local_order::{self, ImageSource};
use super::platform::PlatformFilter;
use super::spill;
use super::store::LocalStore;
use super::{Image, containerd, docker_archive, oci_layout};

/// The transports this build reads, for the message about one it does not.
const TRANSPORTS: &str = "docker-archive:PATH, oci-archive:PATH, oci:DIR, docker-daemon:NAME, \
     containers-storage:NAME, containerd:NAME, docker://NAME";

/// Transport names other tools (skopeo, podman, Trivy) use that stowaway does not read:
/// recognised so that `dir:x` is not sent to Docker Hub as the image `dir` with tag `x`.
const TRANSPORTS_NOT_READ: &[&str] = &["podman", "dir", "ostree", "sif", "tarball", "docker-image"];

/// A parsed IMAGE argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageArg {
    /// `docker-archive:PATH[:REF]`
    DockerArchive {
        /// The `docker save` tarball.
        path: PathBuf,
        /// Which image of a multi-image archive: one of its `RepoTags` (`app:1.0`); every
        /// image when `None`.
        reference: Option<String>,
    },
    /// `oci:PATH[:TAG]`
    OciLayout {
        /// The layout directory (it holds `oci-layout` and `index.json`).
        path: PathBuf,
        /// Which images of the layout: those whose index entry names this tag
        /// (`org.opencontainers.image.ref.name`); every image when `None`.
        tag: Option<String>,
    },
    /// `oci-archive:PATH[:TAG]`
    OciArchive {
        /// The tarball holding an OCI layout.
        path: PathBuf,
        /// Which images of the layout, as for [`ImageArg::OciLayout`].
        tag: Option<String>,
    },
    /// An existing path whose kind is detected from its content, with an optional `:TAG`.
    LocalPath {
        /// A `docker save` tarball, an OCI layout directory or an OCI layout tarball.
        path: PathBuf,
        /// What follows `PATH:` when the whole argument is not an existing path; selects
        /// images as `reference` or `tag` does for the kind detected.
        tag: Option<String>,
    },
    /// `docker-daemon:NAME[:TAG|@DIGEST]`: an image in the Docker daemon.
    DockerDaemon(String),
    /// `containers-storage:[DRIVER@GRAPHROOT+RUNROOT]NAME` (podman, buildah, CRI-O).
    ContainersStorage {
        /// The store, when named; else the configured one.
        store: StoreSpec,
        /// The image: a name as the store records it (short names as podman resolves them) or
        /// an image id.
        name: String,
    },
    /// `containerd:NAME`, a name as containerd stores it (`docker.io/library/app:1`).
    Containerd(String),
    /// `docker://REF`: an image in a registry.
    Registry(String),
    /// A bare name such as `alpine:3.20`: the local stores, then the registry, in the order of
    /// `--image-src` (`local_order.rs`).
    Name(String),
}

impl ImageArg {
    /// Parses an IMAGE argument. A bare argument that exists on disk is a path; one that looks
    /// like a path (`./x`, `/x`, `x.tar`) but does not exist is an error rather than a registry
    /// lookup, so a typo does not turn into a network request.
    pub fn parse(text: &str) -> Result<ImageArg> {
        if let Some(rest) = text.strip_prefix("docker://") {
            return Ok(ImageArg::Registry(rest.to_string()));
        }
        if let Some(rest) = text.strip_prefix("docker-daemon:") {
            if rest.is_empty() {
                bail!("{text}: missing image name after docker-daemon:");
            }
            return Ok(ImageArg::DockerDaemon(rest.to_string()));
        }
        if let Some(rest) = text.strip_prefix("containers-storage:") {
            let (store, name) = containers_storage::parse_arg(rest)?;
            if name.is_empty() {
                bail!("{text}: missing image name after containers-storage:");
            }
            return Ok(ImageArg::ContainersStorage { store, name });
        }
        if let Some(rest) = text.strip_prefix("containerd:") {
            if rest.is_empty() {
                bail!("{text}: missing image name after containerd:");
            }
            return Ok(ImageArg::Containerd(rest.to_string()));
        }
        for (prefix, make) in [
            (
                "docker-archive:",
                make_docker_archive as fn(PathBuf, Option<String>) -> ImageArg,
            ),
            ("oci-archive:", make_oci_archive),
            ("oci:", make_oci_layout),
        ] {
            if let Some(rest) = text.strip_prefix(prefix) {
                if rest.is_empty() {
                    bail!("{text}: missing path after {prefix}");
                }
                let (path, suffix) = split_path(rest);
                return Ok(make(path, suffix));
            }
        }
        if Path::new(text).exists() {
            return Ok(ImageArg::LocalPath {
                path: PathBuf::from(text),
                tag: None,
            });
        }
        let (path, suffix) = split_path(text);
        if path.exists() {
            return Ok(ImageArg::LocalPath { path, tag: suffix });
        }
        if looks_like_path(text) {
            bail!("{text}: no such file or directory");
        }
        check_transport(text)?;
        Ok(ImageArg::Name(text.to_string()))
    }
}

/// Refuses `foo:rest` when `foo` is a transport stowaway does not read, or when `rest` cannot
/// be a tag (`foo:bar/baz`) and `foo` cannot be a registry host (no dot, no port, not
/// localhost): that is a transport prefix, not an image name.
fn check_transport(text: &str) -> Result<()> {
    let Some((prefix, rest)) = text.split_once(':') else {
        return Ok(());
    };
    let hint = format!(
        "supported: {TRANSPORTS}, or a bare NAME[:TAG] (--image-src); or export the image \
         first: docker save -o app.tar app"
    );
    if TRANSPORTS_NOT_READ.contains(&prefix) {
        bail!("{text}: the {prefix}: transport is not supported ({hint})");
    }
    let transport_like = !prefix.is_empty()
        && prefix
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && prefix != "localhost";
    let host_with_port = rest
        .split_once('/')
        .is_some_and(|(port, _)| !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()));
    if transport_like && !host_with_port && !is_tag_and_digest(rest) {
        bail!("{text}: unknown transport {prefix}: ({hint})");
    }
    Ok(())
}

/// `TAG` or `TAG@DIGEST` as Docker writes them: a word of letters, digits, `_`, `.` and `-`
/// (not starting with `.` or `-`, at most 128 characters).
fn is_tag_and_digest(text: &str) -> bool {
    let tag = text.split_once('@').map_or(text, |(tag, _)| tag);
    !tag.is_empty()
        && tag.len() <= 128
        && !tag.starts_with(['.', '-'])
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

fn make_docker_archive(path: PathBuf, reference: Option<String>) -> ImageArg {
    ImageArg::DockerArchive { path, reference }
}
fn make_oci_archive(path: PathBuf, tag: Option<String>) -> ImageArg {
    ImageArg::OciArchive { path, tag }
}
fn make_oci_layout(path: PathBuf, tag: Option<String>) -> ImageArg {
    ImageArg::OciLayout { path, tag }
}

/// Splits `PATH[:SUFFIX]`. Paths may contain colons, so the first split whose left side exists
/// wins; when nothing exists the whole text is the path (and the error will name it).
fn split_path(text: &str) -> (PathBuf, Option<String>) {
    if Path::new(text).exists() {
        return (PathBuf::from(text), None);
    }
    for (index, _) in text.match_indices(':') {
        let (path, suffix) = (&text[..index], &text[index + 1..]);
        if !path.is_empty() && Path::new(path).exists() && !suffix.is_empty() {
            return (PathBuf::from(path), Some(suffix.to_string()));
        }
    }
    (PathBuf::from(text), None)
}

fn looks_like_path(text: &str) -> bool {
    text.starts_with('/')
        || text.starts_with("./")
        || text.starts_with("../")
        || text.starts_with('~')
        || [".tar", ".tgz", ".tar.gz", ".tar.zst", ".oci", ".json"]
            .iter()
            .any(|ext| text.ends_with(ext))
}

/// Options that shape how arguments turn into images.
#[derive(Clone, Default)]
pub struct ResolveOptions {
    /// `--platform`: only images of this platform, from local sources and registries alike.
    /// When `None`, a local source gives every image and a registry index the host's
    /// platform (else `linux/amd64`).
    pub platform: Option<PlatformFilter>,
    /// How to reach registries (credentials, TLS, platforms of multi-arch images).
    pub registry: super::registry::RegistryOptions,
    /// Where the Docker daemon is (`docker-daemon:` and bare names).
    pub docker: DaemonOptions,
    /// Where containerd is and which namespace to read (`containerd:` and bare names).
    pub containerd: ContainerdOptions,
    /// `--image-src`: where bare names are looked for, in order; empty means
    /// [`local_order::DEFAULT_ORDER`].
    pub image_sources: Vec<ImageSource>,
    /// `--quiet`: no notes on stderr (a compressed tarball decompressed, an export copied).
    pub quiet: bool,
}

/// Opens the image(s) an argument names. Local files are mapped, not read.
pub fn resolve(text: &str, options: &ResolveOptions) -> Result<Vec<Image>> {
    let arg = ImageArg::parse(text)?;
    resolve_arg(&arg, options).with_context(|| text.to_string())
}

fn resolve_arg(arg: &ImageArg, options: &ResolveOptions) -> Result<Vec<Image>> {
    let platform = options.platform.as_ref();
    match arg {
        ImageArg::DockerArchive { path, reference } => {
            let store = open_tar(path, options.quiet)?;
            if !docker_archive::is_docker_archive(&store) {
                bail!("not a docker-save archive (no manifest.json)");
            }
            let label = format!("docker-archive:{}", path.display());
            docker_archive::open(&store, &label, reference.as_deref(), platform)
        }
        ImageArg::OciLayout { path, tag } => {
            if !path.is_dir() {
                bail!(
                    "not a directory (an OCI layout is a directory; use oci-archive: for a tarball)"
                );
            }
            let store = LocalStore::Dir(path.clone());
            check_oci_layout_marker(&store)?;
            let label = format!("oci:{}", path.display());
            oci_layout::open(&store, &label, tag.as_deref(), platform)
        }
        ImageArg::OciArchive { path, tag } => {
            let store = open_tar(path, options.quiet)?;
            check_oci_layout_marker(&store)?;
            let label = format!("oci-archive:{}", path.display());
            oci_layout::open(&store, &label, tag.as_deref(), platform)
        }
        ImageArg::LocalPath { path, tag } => {
            if path.is_dir() {
                let store = LocalStore::Dir(path.clone());
                if !store.contains("oci-layout") && !store.contains("index.json") {
                    bail!("not an image: a directory without oci-layout or index.json");
                }
                let label = format!("oci:{}", path.display());
                return oci_layout::open(&store, &label, tag.as_deref(), platform);
            }
            let store = open_tar(path, options.quiet)?;
            if docker_archive::is_docker_archive(&store) {
                let label = format!("docker-archive:{}", path.display());
                docker_archive::open(&store, &label, tag.as_deref(), platform)
            } else if store.contains("index.json") {
                let label = format!("oci-archive:{}", path.display());
                oci_layout::open(&store, &label, tag.as_deref(), platform)
            } else {
                bail!("not an image: a tar archive with neither manifest.json nor index.json")
            }
        }
        ImageArg::ContainersStorage { store, name } => {
            containers_storage::open(store, name, platform)
        }
        ImageArg::Containerd(name) => containerd::open(name, &options.containerd, platform),
        ImageArg::Registry(reference) => {
            let mut registry = options.registry.clone();
            if registry.platform.is_none() {
                registry.platform = options.platform.clone();
            }
            super::registry::open(reference, &registry)
        }
        ImageArg::DockerDaemon(name) => {
            let host = options.docker.host()?;
            docker_daemon::open(name, &host, platform, options.quiet)
                .map_err(|failure| failure.into_error(&host))
        }
        ImageArg::Name(name) => local_order::resolve_name(
            name,
            &local_order::Lookup {
                order: &options.image_sources,
                docker: &options.docker,
                containerd: &options.containerd,
                registry: &options.registry,
                platform,
                quiet: options.quiet,
            },
        ),
    }
}

/// Maps the tarball at `path` (decompressing it into a temporary file first when it is
/// gzip, zstd, xz or bzip2) and indexes its members.
fn open_tar(path: &Path, quiet: bool) -> Result<LocalStore> {
    if !path.exists() {
        bail!("no such file or directory");
    }
    if path.is_dir() {
        bail!("is a directory, expected an image tarball");
    }
    let mapped = super::bytes::MappedBytes::map_file(path)?;
    let (bytes, wrapping) = spill::uncompressed(mapped, path, quiet)?;
    LocalStore::from_tar(&bytes).map_err(|err| {
        // The tar crate's messages talk about headers and checksums; say what it means here.
        match wrapping {
            Some(wrapping) => anyhow::anyhow!(
                "not a readable image tarball once {} decompressed: {err:#}",
                wrapping.name()
            ),
            None => anyhow::anyhow!("not a readable image tarball: {err:#}"),
        }
    })
}

fn check_oci_layout_marker(store: &LocalStore) -> Result<()> {
    if !store.contains("index.json") {
        bail!("not an OCI image layout (no index.json)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_transports() {
        assert_eq!(
            ImageArg::parse("docker://alpine:3.20").unwrap(),
            ImageArg::Registry("alpine:3.20".into())
        );
        assert_eq!(
            ImageArg::parse("alpine:3.20").unwrap(),
            ImageArg::Name("alpine:3.20".into())
        );
        assert_eq!(
            ImageArg::parse("docker-daemon:app:1").unwrap(),
            ImageArg::DockerDaemon("app:1".into())
        );
        assert!(ImageArg::parse("docker-daemon:").is_err());
        assert_eq!(
            ImageArg::parse("oci:/nonexistent/dir:v1").unwrap(),
            ImageArg::OciLayout {
                path: "/nonexistent/dir:v1".into(),
                tag: None
            }
        );
        assert!(ImageArg::parse("./missing.tar").is_err());
        assert!(ImageArg::parse("oci:").is_err());
        assert_eq!(
            ImageArg::parse("containerd:docker.io/library/app:1").unwrap(),
            ImageArg::Containerd("docker.io/library/app:1".into())
        );
        assert_eq!(
            ImageArg::parse("containers-storage:[vfs@/g+/r]app:1").unwrap(),
            ImageArg::ContainersStorage {
                store: StoreSpec {
                    driver: Some("vfs".into()),
                    graph_root: Some("/g".into()),
                    run_root: Some("/r".into()),
                },
                name: "app:1".into()
            }
        );
        assert!(ImageArg::parse("containerd:").is_err());
        assert!(ImageArg::parse("containers-storage:").is_err());
    }

    #[test]
    fn transport_prefixes_are_told_from_names() {
        for name in [
            "app",
            "app:1.0",
            "localhost:5000/app",
            "registry:5000/app:1",
            "example.com/app:1",
            "app:v1@sha256:abcd",
            "app@sha256:abcd",
        ] {
            assert_eq!(
                ImageArg::parse(name).unwrap(),
                ImageArg::Name(name.into()),
                "{name}"
            );
        }
        let unknown = ImageArg::parse("foo:bar/baz").unwrap_err().to_string();
        assert!(
            unknown.starts_with("foo:bar/baz: unknown transport foo:"),
            "{unknown}"
        );
        assert!(unknown.contains("docker save -o app.tar app"), "{unknown}");
        assert!(unknown.contains("docker-daemon:NAME"), "{unknown}");
        let other = ImageArg::parse("dir:app").unwrap_err().to_string();
        assert!(
            other.contains("the dir: transport is not supported"),
            "{other}"
        );
    }

    #[test]
    fn splits_existing_paths_from_tags() {
        let dir = std::env::temp_dir();
        let text = format!("oci:{}:v1", dir.display());
        assert_eq!(
            ImageArg::parse(&text).unwrap(),
            ImageArg::OciLayout {
                path: dir.clone(),
                tag: Some("v1".into())
            }
        );
        let text = format!("docker-archive:{}:example.com/app:1.0", dir.display());
        assert_eq!(
            ImageArg::parse(&text).unwrap(),
            ImageArg::DockerArchive {
                path: dir,
                reference: Some("example.com/app:1.0".into())
            }
        );
    }
}
