//! `docker-daemon:NAME[:TAG|@DIGEST]`: an image in a Docker daemon, read through the Engine
//! API on its socket (`host.rs` finds the socket as the docker CLI does). The image is
//! exported (`GET /images/{name}/get`), which gives a `docker save` tarball: the classic
//! store's legacy layout or the containerd image store's OCI one, both read by
//! `docker_archive`.
//!
//! The export cannot be scanned as it streams: Docker writes `manifest.json` (which says which
//! members are layers, and in which order) after the layers. So the stream is copied once
//! into an unlinked temporary file, bounded by [`limits::MAX_SPILL_BYTES`] (`spill.rs`), and
//! read from there; stderr says so unless `--quiet`.

pub(crate) mod client;
pub mod host;

use anyhow::{Result, anyhow, bail};
use hyper::StatusCode;

use super::bytes::MappedBytes;
use super::docker_archive;
use super::image::Image;
use super::limits;
use super::platform::PlatformFilter;
use super::spill::Spill;
use super::store::LocalStore;
pub use host::{DockerHost, HostEnvironment};

/// Why an image could not be had from the daemon.
#[derive(Debug)]
pub enum Failure {
    /// No daemon there: no socket file, or the connection was refused. A bare image name then
    /// moves on to the next source quietly.
    Absent(String),
    /// The daemon answered that it has no such image.
    NoSuchImage(String),
    /// Anything else before the daemon said it has the image: permission, a timeout, TLS, a
    /// broken answer.
    Other(anyhow::Error),
    /// The daemon has the image but it could not be read (a failed or bad export): a bare
    /// name stops here rather than fetching a namesake from the next source.
    Unreadable(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(err: anyhow::Error) -> Failure {
        Failure::Other(err)
    }
}

impl Failure {
    /// The failure as an error, for `docker-daemon:` named explicitly.
    pub fn into_error(self, host: &DockerHost) -> anyhow::Error {
        match self {
            Failure::Absent(why) => anyhow!("no Docker daemon at {host}: {why}"),
            Failure::NoSuchImage(why) => anyhow!("the Docker daemon at {host}: {why}"),
            Failure::Other(err) | Failure::Unreadable(err) => err,
        }
    }
}

/// Where to find the daemon.
#[derive(Clone, Debug, Default)]
pub struct DaemonOptions {
    /// The variables `DOCKER_HOST`, `DOCKER_CONTEXT`… are read from; `None` reads the process
    /// environment.
    pub environment: Option<HostEnvironment>,
}

impl DaemonOptions {
    /// The daemon these options lead to.
    pub fn host(&self) -> Result<DockerHost> {
        match &self.environment {
            Some(environment) => host::find(environment),
            None => host::find(&HostEnvironment::from_process()),
        }
    }
}

/// Opens `name` from the daemon at `host`: the images of its export (one, or one per platform
/// the containerd image store holds), filtered by `platform`.
pub fn open(
    name: &str,
    host: &DockerHost,
    platform: Option<&PlatformFilter>,
    quiet: bool,
) -> Result<Vec<Image>, Failure> {
    check_name(name)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| anyhow!("cannot start the runtime: {err}"))?;
    runtime.block_on(inspect(name, host))?;
    let read = || -> Result<Vec<Image>> {
        let export = runtime.block_on(export(name, host, quiet))?;
        let store = LocalStore::from_tar(&export).map_err(|err| {
            anyhow!("the daemon's export of {name} is not a readable tarball: {err:#}")
        })?;
        if !docker_archive::is_docker_archive(&store) {
            bail!("the daemon's export of {name} has no manifest.json");
        }
        let label = format!("docker-daemon:{name}");
        docker_archive::open(&store, &label, None, platform)
    };
    read().map_err(Failure::Unreadable)
}

/// The names the Engine API is sent: references and image IDs, nothing that could change the
/// request's path or query.
fn check_name(name: &str) -> Result<()> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "._-/:@".contains(c);
    if name.is_empty() || name.len() > 512 || !name.chars().all(allowed) || name.contains("..") {
        bail!("{name:?} is not an image name or ID");
    }
    Ok(())
}

/// Checks that the daemon has the image: a clear "no such image" rather than a failed
/// export.
async fn inspect(name: &str, host: &DockerHost) -> Result<(), Failure> {
    let (status, body) = client::get_small(host, &format!("/images/{name}/json")).await?;
    if status == StatusCode::NOT_FOUND {
        return Err(Failure::NoSuchImage(format!("no image {name}")));
    }
    if !status.is_success() {
        return Err(anyhow!("{host}: {}", client::error_message(status, &body)).into());
    }
    Ok(())
}

/// Copies the image's export into a temporary file.
async fn export(name: &str, host: &DockerHost, quiet: bool) -> Result<MappedBytes> {
    let response = client::get(
        host,
        &format!("/images/{name}/get"),
        client::EXPORT_START_TIMEOUT,
    )
    .await
    .map_err(|failure| failure.into_error(host))?;
    let status = response.status();
    if !status.is_success() {
        let body = client::read_small(response.into_body()).await?;
        bail!("{host}: export: {}", client::error_message(status, &body));
    }
    if !quiet {
        eprintln!(
            "stowaway: docker-daemon:{name}: Docker writes manifest.json after the layers of \
             an export; copying the export once into an unlinked temporary file (at most {} \
             GiB) to read it",
            limits::MAX_SPILL_BYTES >> 30
        );
    }
    let mut spill = Spill::new(&format!("the export of {name}"), limits::MAX_SPILL_BYTES)?;
    let mut body = response.into_body();
    while let Some(chunk) = client::next_chunk(&mut body).await? {
        spill.write(&chunk)?;
    }
    spill.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_would_change_the_request_are_refused() {
        for good in [
            "app",
            "example.com:5000/app:1.0",
            "app@sha256:abcd",
            "sha256:ab12",
        ] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "app?x=1",
            "app/../../containers/json",
            "app#x",
            "a b",
            "app%2F",
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
