//! The IMAGE argument: skopeo's transport names (`docker://`, `docker-archive:`, `oci:`,
//! `oci-archive:`, `containers-storage:`), `containerd:`, bare paths detected by content, and
//! bare registry references.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::containerd::ContainerdOptions;
use super::containers_storage::{self, StoreSpec};
use super::platform::PlatformFilter;
use super::store::LocalStore;
use super::{Image, containerd, docker_archive, oci_layout};

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
    /// `docker://REF` or a bare reference such as `alpine:3.20`.
    Registry(String),
}

impl ImageArg {
    /// Parses an IMAGE argument. A bare argument that exists on disk is a path; one that looks
    /// like a path (`./x`, `/x`, `x.tar`) but does not exist is an error rather than a registry
    /// lookup, so a typo does not turn into a network request.
    pub fn parse(text: &str) -> Result<ImageArg> {
        if let Some(rest) = text.strip_prefix("docker://") {
            return Ok(ImageArg::Registry(rest.to_string()));
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
        Ok(ImageArg::Registry(text.to_string()))
    }
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
    /// Where containerd is and which namespace to read (`containerd:` images).
    pub containerd: ContainerdOptions,
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
            let store = open_tar(path)?;
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
            let store = open_tar(path)?;
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
            let store = open_tar(path)?;
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
    }
}

fn open_tar(path: &Path) -> Result<LocalStore> {
    if !path.exists() {
        bail!("no such file or directory");
    }
    if path.is_dir() {
        bail!("is a directory, expected an image tarball");
    }
    LocalStore::open_tar(path).map_err(|err| {
        // The tar crate's messages talk about headers and checksums; say what it means here.
        anyhow::anyhow!("not a readable image tarball: {err:#}")
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
            ImageArg::Registry("alpine:3.20".into())
        );
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
