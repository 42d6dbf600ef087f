//! A bare image name (`app`, `app:1.0`, `ghcr.io/org/app@sha256:…`) is looked for in the
//! local image stores first, then in the registry: by default the Docker daemon, containerd,
//! podman's containers-storage, then the registry. `--image-src` (a comma list, as Trivy's)
//! chooses the sources and their order.
//!
//! Each source is one [`ImageSource`] with one probe in [`probe`]. A source that is absent (no
//! socket, nothing listening, no store directory) is skipped quietly; a source that is there
//! but lacks the image, or fails, is noted and the next one is tried. When none has the image,
//! the error says where it looked and what each said. A source that has the image but cannot
//! read it ends the lookup with its error: the next source could hold a different image of
//! the same name.

use std::fmt;
use std::str::FromStr;

use anyhow::{Result, anyhow, bail};

use super::containerd::{self, ContainerdOptions};
use super::containers_storage::{self, StoreSpec};
use super::docker_daemon::{self, DaemonOptions, Failure};
use super::image::Image;
use super::platform::PlatformFilter;
use super::probe::Probe as StoreProbe;
use super::registry::RegistryOptions;

/// One place a bare image name is looked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageSource {
    /// The Docker daemon (`DOCKER_HOST`, the current docker context, or
    /// `/var/run/docker.sock`).
    Docker,
    /// containerd, through its socket (`--containerd-address`, `--containerd-namespace`).
    Containerd,
    /// The containers-storage store of podman, buildah and CRI-O (`storage.conf`).
    Podman,
    /// The registry the name points at (Docker Hub when it names none).
    Remote,
}

/// The order used when `--image-src` is not given.
pub const DEFAULT_ORDER: &[ImageSource] = &[
    ImageSource::Docker,
    ImageSource::Containerd,
    ImageSource::Podman,
    ImageSource::Remote,
];

/// Every source, as `--image-src` names them.
pub const ALL: &[ImageSource] = DEFAULT_ORDER;

impl ImageSource {
    /// The `--image-src` name.
    pub fn name(self) -> &'static str {
        match self {
            ImageSource::Docker => "docker",
            ImageSource::Containerd => "containerd",
            ImageSource::Podman => "podman",
            ImageSource::Remote => "remote",
        }
    }
}

impl fmt::Display for ImageSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ImageSource {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<ImageSource> {
        ALL.iter()
            .copied()
            .find(|source| source.name().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| anyhow!("unknown image source {text:?} (known: {})", names(ALL)))
    }
}

/// `docker,containerd,podman,remote`: a list, in order, without repeats.
pub fn parse_list(text: &str) -> Result<Vec<ImageSource>> {
    let mut sources = Vec::new();
    for part in text.split(',').filter(|part| !part.trim().is_empty()) {
        let source: ImageSource = part.parse()?;
        if sources.contains(&source) {
            bail!("image source {source} is listed twice");
        }
        sources.push(source);
    }
    if sources.is_empty() {
        bail!("no image source given (known: {})", names(ALL));
    }
    Ok(sources)
}

fn names(sources: &[ImageSource]) -> String {
    sources
        .iter()
        .map(|source| source.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// What one source said about the name.
enum Probe {
    Found(Vec<Image>),
    /// Not there at all: skipped quietly (the final error still lists it).
    Absent(String),
    /// There, without the image, or failing.
    Missed(String),
    /// The registry's error (kept whole: it is the whole message when only it was reached).
    RegistryFailed(anyhow::Error),
    /// The source has the image but could not read it: the lookup ends with this error.
    Fatal(anyhow::Error),
}

/// How to reach each source, and what to look for.
pub struct Lookup<'a> {
    /// The sources in order; empty means [`DEFAULT_ORDER`].
    pub order: &'a [ImageSource],
    /// Where the Docker daemon is.
    pub docker: &'a DaemonOptions,
    /// Where containerd is, and which namespaces to look in.
    pub containerd: &'a ContainerdOptions,
    /// How to reach registries.
    pub registry: &'a RegistryOptions,
    /// `--platform`.
    pub platform: Option<&'a PlatformFilter>,
    /// No notes on stderr.
    pub quiet: bool,
}

/// The images `name` names in the first source that has it.
pub fn resolve_name(name: &str, options: &Lookup) -> Result<Vec<Image>> {
    let order = if options.order.is_empty() {
        DEFAULT_ORDER
    } else {
        options.order
    };
    // Where the name was looked for and what each source said; absent sources apart.
    let mut looked = Vec::new();
    let mut absent = Vec::new();
    let mut registry_error = None;
    for &source in order {
        match probe(source, name, options) {
            Ok(Probe::Found(images)) => return Ok(images),
            Ok(Probe::Absent(why)) => absent.push(why),
            Ok(Probe::Missed(why)) => looked.push(why),
            Ok(Probe::RegistryFailed(err)) => {
                looked.push(format!("registry: {err:#}"));
                registry_error = Some(err);
            }
            Ok(Probe::Fatal(err)) | Err(err) => return Err(err),
        }
    }
    // Only the registry was reached (the local stores are absent, skipped quietly): its
    // error as it has always been.
    if looked.len() == 1
        && let Some(err) = registry_error
    {
        return Err(err);
    }
    looked.extend(absent);
    bail!("not found in any image source ({})", looked.join("; "))
}

/// Asks one source.
fn probe(source: ImageSource, name: &str, options: &Lookup) -> Result<Probe> {
    let platform = options.platform;
    match source {
        ImageSource::Docker => {
            let host = match options.docker.host() {
                Ok(host) => host,
                Err(err) => return Ok(Probe::Missed(format!("docker daemon: {err:#}"))),
            };
            Ok(
                match docker_daemon::open(name, &host, platform, options.quiet) {
                    Ok(images) => Probe::Found(images),
                    Err(Failure::Absent(why)) => Probe::Absent(format!("docker daemon: {why}")),
                    Err(Failure::NoSuchImage(why)) => {
                        Probe::Missed(format!("docker daemon at {host}: {why}"))
                    }
                    Err(Failure::Other(err)) => {
                        Probe::Missed(format!("docker daemon at {host}: {err:#}"))
                    }
                    // It has the image: its error, not a namesake from the next source.
                    Err(Failure::Unreadable(err)) => {
                        Probe::Fatal(err.context(format!("docker daemon at {host}")))
                    }
                },
            )
        }
        ImageSource::Containerd => {
            let place = format!("containerd at {}", options.containerd.address().display());
            Ok(found_in_store(
                containerd::probe(name, options.containerd),
                &place,
                name,
                || containerd::open(name, options.containerd, platform),
            ))
        }
        ImageSource::Podman => {
            let spec = StoreSpec::default();
            Ok(found_in_store(
                containers_storage::probe(name, &spec),
                "containers-storage",
                name,
                || containers_storage::open(&spec, name, platform),
            ))
        }
        ImageSource::Remote => {
            let mut registry = options.registry.clone();
            if registry.platform.is_none() {
                registry.platform = options.platform.cloned();
            }
            Ok(match super::registry::open(name, &registry) {
                Ok(images) => Probe::Found(images),
                Err(err) => Probe::RegistryFailed(err),
            })
        }
    }
}

/// A store's probe, and the image opened when it has one of that name.
fn found_in_store(
    said: StoreProbe,
    place: &str,
    name: &str,
    open: impl FnOnce() -> Result<Vec<Image>>,
) -> Probe {
    match said {
        StoreProbe::Absent(why) => Probe::Absent(format!("{place}: {why}")),
        StoreProbe::NoSuchImage => Probe::Missed(format!("{place}: no image named {name}")),
        StoreProbe::Has => match open() {
            Ok(images) => Probe::Found(images),
            Err(err) => Probe::Fatal(err.context(place.to_string())),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_in_order_and_refuse_unknown_names() {
        assert_eq!(
            parse_list("remote,docker").unwrap(),
            vec![ImageSource::Remote, ImageSource::Docker]
        );
        assert_eq!(parse_list(" Docker ").unwrap(), vec![ImageSource::Docker]);
        let unknown = parse_list("docker,zfs").unwrap_err().to_string();
        assert_eq!(
            unknown,
            "unknown image source \"zfs\" (known: docker, containerd, podman, remote)"
        );
        assert!(parse_list("docker,docker").is_err());
        assert!(parse_list("").is_err());
    }
}
