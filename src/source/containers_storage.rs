//! Images in a containers-storage store (`containers-storage:NAME`, or skopeo's explicit
//! `containers-storage:[DRIVER@GRAPHROOT+RUNROOT]NAME`): what podman, buildah and CRI-O keep,
//! read from the files directly, with the `overlay` and `vfs` drivers.
//!
//! Where the store is: the explicit form, else `storage.conf` (`CONTAINERS_STORAGE_CONF`, else
//! for root `/etc/containers/storage.conf` then `/usr/share/containers/storage.conf`, else for
//! other users `$XDG_CONFIG_HOME/containers/storage.conf`), else the defaults:
//! `/var/lib/containers/storage` for root, `~/.local/share/containers/storage` otherwise. The
//! driver is the one named, else the configured one, else whichever of `overlay` and `vfs` has
//! an image list in the graph root.
//!
//! What is read: `<driver>-images/images.json` (the image records: names, top layer, the
//! "big data" items kept beside each image, among them the manifest and the config),
//! `<driver>-layers/layers.json` (each layer's parent and uncompressed digest) and, for each
//! layer, its content. These files are replaced atomically (written aside, then renamed) by
//! containers/storage, so they are read without taking its lock files.
//!
//! How a layer becomes a tar: from its tar-split (`<driver>-layers/<id>.tar-split.gz`), the
//! record containers/storage keeps of the tar the layer was applied from: every header and
//! padding byte verbatim, and for each file its name and size, whose bytes are then read from
//! the driver's directory of that layer (`overlay/<id>/diff/…`, `vfs/dir/<id>/…`). This is how
//! podman itself exports a layer (`podman save`), and it rebuilds the very tar, so:
//! the layer's diff_id is verified against the image config while the walk reads it (the same
//! check as for any uncompressed layer), whiteouts and opaque directories are the `.wh.`
//! entries of the original headers (whatever form the driver gave them on disk: overlay's
//! character devices and opaque xattrs, or vfs's plain absence), and vfs, whose directory of a
//! layer is that layer's whole root filesystem, needs no comparison with its parent: the
//! tar-split names exactly the files the layer changed. Comparing vfs directories would find
//! changes, but not the original order, metadata or hard links, so the digest could never be
//! checked, and every unchanged byte would be read twice. An overlay layer without a tar-split
//! (a store filled by partial zstd:chunked pulls) is read from its directory instead
//! (`source::overlay_diff`: whiteout devices and opaque xattrs become `.wh.` entries), with no
//! digest to check; a vfs layer without one is an error that says so.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use oci_spec::image::ImageManifest;
use serde::Deserialize;

use super::bytes::MappedBytes;
use super::digest::Digest;
use super::image::{BlobOpener, Image, LayerBlob, LayerDescriptor, LayerList, ManifestView};
use super::json;
use super::limits;
use super::name;
use super::overlay_diff::OverlayDiff;
use super::platform::PlatformFilter;
use super::probe::Probe;
use super::store::LocalStore;

/// The drivers whose layers this source reads, in the order they are looked for.
pub const DRIVERS: [&str; 2] = ["overlay", "vfs"];
/// The largest `images.json` or `layers.json` read (a store of thousands of images and layers
/// is a few megabytes).
const MAX_STORE_JSON_BYTES: usize = 64 << 20;
/// The longest line of a tar-split read: one entry (a header with PAX records, base64).
const MAX_TAR_SPLIT_LINE: u64 = 16 << 20;

/// The store part of skopeo's explicit form, `[DRIVER@GRAPHROOT+RUNROOT]`, or nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreSpec {
    /// The graph driver, when named (`vfs`, `overlay`).
    pub driver: Option<String>,
    /// The graph root (images, layers and their content).
    pub graph_root: Option<PathBuf>,
    /// The run root (locks and mounts; not needed to read images).
    pub run_root: Option<PathBuf>,
}

/// Splits `[DRIVER@GRAPHROOT+RUNROOT:OPTIONS]NAME` into the store and the name. Without
/// brackets the whole text is the name.
pub fn parse_arg(text: &str) -> Result<(StoreSpec, String)> {
    let Some(rest) = text.strip_prefix('[') else {
        return Ok((StoreSpec::default(), text.to_string()));
    };
    let Some((inside, name)) = rest.split_once(']') else {
        bail!("containers-storage:{text}: missing ] after the store specification");
    };
    let (driver, roots) = match inside.split_once('@') {
        Some((driver, roots)) => (Some(driver.to_string()), roots),
        None => (None, inside),
    };
    let (graph_root, run_root) = match roots.split_once('+') {
        // Options (`:overlay.mountopt=…`) follow the run root; they change nothing here.
        Some((graph, run)) => (graph, Some(run.split_once(':').map_or(run, |(run, _)| run))),
        None => (roots, None),
    };
    if graph_root.is_empty() || !graph_root.starts_with('/') {
        bail!("containers-storage:{text}: the graph root must be an absolute path");
    }
    Ok((
        StoreSpec {
            driver: driver.filter(|driver| !driver.is_empty()),
            graph_root: Some(PathBuf::from(graph_root)),
            run_root: run_root.map(PathBuf::from),
        },
        name.to_string(),
    ))
}

/// `[storage]` of `storage.conf`, the keys this source needs.
#[derive(Deserialize, Default)]
struct StorageConf {
    #[serde(default)]
    storage: StorageSection,
}

#[derive(Deserialize, Default)]
struct StorageSection {
    driver: Option<String>,
    graphroot: Option<PathBuf>,
    rootless_storage_path: Option<PathBuf>,
}

fn read_conf(path: &Path) -> Result<Option<StorageConf>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => bail!("cannot read {}: {err}", path.display()),
    };
    toml::from_str(&text).map(Some).map_err(|err| {
        anyhow!(
            "{} is not a valid storage.conf: {}",
            path.display(),
            err.message()
        )
    })
}

/// The graph root and driver the configuration gives, as containers/storage finds them.
fn configured_store() -> Result<(PathBuf, Option<String>)> {
    let var = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    let home = var("HOME").map(PathBuf::from);
    // SAFETY: geteuid has no preconditions and cannot fail.
    let rootless = unsafe { libc::geteuid() } != 0;
    let system = if let Some(path) = var("CONTAINERS_STORAGE_CONF") {
        read_conf(Path::new(&path))?
    } else {
        match read_conf(Path::new("/etc/containers/storage.conf"))? {
            Some(conf) => Some(conf),
            None => read_conf(Path::new("/usr/share/containers/storage.conf"))?,
        }
    }
    .unwrap_or_default();
    if !rootless {
        let root = system
            .storage
            .graphroot
            .unwrap_or_else(|| PathBuf::from("/var/lib/containers/storage"));
        return Ok((root, system.storage.driver));
    }
    let user_conf = var("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|home| home.join(".config")))
        .map(|dir| dir.join("containers/storage.conf"));
    let user = match (&user_conf, var("CONTAINERS_STORAGE_CONF")) {
        (Some(path), None) => read_conf(path)?,
        _ => None,
    }
    .unwrap_or_default();
    let data_home = var("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| home.map(|home| home.join(".local/share")))
        .ok_or_else(|| anyhow!("neither HOME nor XDG_DATA_HOME is set"))?;
    let root = user
        .storage
        .graphroot
        .or(system.storage.rootless_storage_path)
        .unwrap_or_else(|| data_home.join("containers/storage"));
    Ok((root, user.storage.driver.or(system.storage.driver)))
}

/// A store found on disk: its graph root and driver.
struct Store {
    root: PathBuf,
    driver: String,
}

impl Store {
    /// Finds the store `spec` names (else the configured one) and its driver.
    fn locate(spec: &StoreSpec) -> Result<Store> {
        let (root, configured) = match &spec.graph_root {
            Some(root) => (root.clone(), None),
            None => configured_store()?,
        };
        if !root.is_dir() {
            bail!(
                "no containers-storage store at {} (no such directory)",
                root.display()
            );
        }
        let driver = match spec.driver.clone().or(configured) {
            Some(driver) => driver,
            None => DRIVERS
                .iter()
                .find(|driver| root.join(format!("{driver}-images/images.json")).is_file())
                .map(|driver| driver.to_string())
                .ok_or_else(|| {
                    anyhow!(
                        "no images in the containers-storage store at {} (no overlay-images or vfs-images)",
                        root.display()
                    )
                })?,
        };
        if !DRIVERS.contains(&driver.as_str()) {
            bail!(
                "the {driver} storage driver is not supported (only {})",
                DRIVERS.join(" and ")
            );
        }
        Ok(Store { root, driver })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// `<driver>-images/images.json` or `<driver>-layers/layers.json`, parsed.
    fn read_list<T: for<'de> Deserialize<'de>>(&self, kind: &str, file: &str) -> Result<T> {
        let name = format!("{}-{kind}/{file}", self.driver);
        let path = self.path(&name);
        let bytes = match MappedBytes::map_file(&path) {
            Ok(bytes) => bytes,
            Err(_) if !path.exists() => bail!("{} is missing", path.display()),
            Err(err) => return Err(err).with_context(|| path.display().to_string()),
        };
        limits::check_size(&name, bytes.len(), MAX_STORE_JSON_BYTES)?;
        json::parse(
            &bytes,
            &format!("{} is not a containers-storage list", path.display()),
        )
    }

    fn images(&self) -> Result<Vec<ImageRecord>> {
        self.read_list("images", "images.json")
    }

    /// A big-data item of an image, by key, named on disk as containers/storage names it.
    fn big_data(&self, image: &ImageRecord, key: &str, limit: usize) -> Result<MappedBytes> {
        let dir = LocalStore::Dir(self.path(&format!("{}-images/{}", self.driver, image.id)));
        let file = big_data_file_name(key);
        let bytes = dir
            .get(&file)
            .with_context(|| format!("image {}: {key}", image.id))?;
        limits::check_size(&format!("image {}: {key}", image.id), bytes.len(), limit)?;
        Ok(bytes)
    }

    /// The directory holding a layer's files, as the driver lays it out.
    fn layer_dir(&self, id: &str) -> PathBuf {
        match self.driver.as_str() {
            "vfs" => self.path(&format!("vfs/dir/{id}")),
            _ => self.path(&format!("overlay/{id}/diff")),
        }
    }
}

/// containers/storage's file name for a big-data key: the key itself when it is made of
/// `[0-9a-z.]` only, else `=` and its base64.
fn big_data_file_name(key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .bytes()
            .all(|b| b == b'.' || b.is_ascii_digit() || b.is_ascii_lowercase());
    if plain {
        key.to_string()
    } else {
        format!("={}", BASE64.encode(key))
    }
}

/// One image of `images.json`.
#[derive(Deserialize, Clone, Debug)]
struct ImageRecord {
    id: String,
    #[serde(default)]
    digest: Option<String>,
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    layer: Option<String>,
    #[serde(rename = "big-data-digests", default)]
    big_data_digests: HashMap<String, String>,
}

/// One layer of `layers.json`.
#[derive(Deserialize, Clone, Debug)]
struct LayerRecord {
    id: String,
    #[serde(default)]
    parent: Option<String>,
    #[serde(rename = "diff-digest", default)]
    diff_digest: Option<String>,
    #[serde(rename = "diff-size", default)]
    diff_size: Option<u64>,
}

/// Does the record carry this name, as given or as podman resolves short names (`app:1` is
/// also `localhost/app:1` and `docker.io/library/app:1`), or is `wanted` its id (or an
/// unambiguous prefix of 12 or more hex digits)?
fn record_matches(record: &ImageRecord, wanted: &str) -> bool {
    let wanted_id = wanted.strip_prefix("sha256:").unwrap_or(wanted);
    if wanted_id.len() >= 12
        && wanted_id.bytes().all(|b| b.is_ascii_hexdigit())
        && record.id.starts_with(wanted_id)
    {
        return true;
    }
    let local = format!("localhost/{wanted}");
    record.names.iter().any(|name| {
        name::name_matches(name, wanted)
            || (!wanted.contains('/') && name::name_matches(name, &local))
    })
}

fn find_image(store: &Store, wanted: &str) -> Result<ImageRecord> {
    let images = store.images()?;
    let matching: Vec<&ImageRecord> = images
        .iter()
        .filter(|record| record_matches(record, wanted))
        .collect();
    match matching.as_slice() {
        [one] => Ok((*one).clone()),
        [] => {
            let names: Vec<&str> = images
                .iter()
                .flat_map(|record| record.names.iter())
                .map(String::as_str)
                .collect();
            bail!(
                "no image named {wanted:?} in the {} store at {} (it holds: {})",
                store.driver,
                store.root.display(),
                name::held(&names, "untagged images only")
            )
        }
        _ => bail!("{wanted:?} names more than one image in the store; give its full id"),
    }
}

/// Whether the store exists and has `name`; for trying local stores in turn.
pub fn probe(name: &str, spec: &StoreSpec) -> Probe {
    let store = match Store::locate(spec) {
        Ok(store) => store,
        Err(err) => return Probe::Absent(format!("{err:#}")),
    };
    match store.images() {
        Ok(images) if images.iter().any(|record| record_matches(record, name)) => Probe::Has,
        Ok(_) => Probe::NoSuchImage,
        Err(err) => Probe::Absent(format!("{err:#}")),
    }
}

/// Opens the image `name` of the store `spec` names (else the configured store).
pub fn open(spec: &StoreSpec, name: &str, platform: Option<&PlatformFilter>) -> Result<Vec<Image>> {
    if name.is_empty() {
        bail!("missing image name after containers-storage:");
    }
    let store = Store::locate(spec)?;
    let record = find_image(&store, name)?;
    let label = format!("containers-storage:{name}");
    let image = load(&store, &record, label)
        .with_context(|| format!("image {} in {}", record.id, store.root.display()))?;
    if !PlatformFilter::admits(platform, image.platform.as_deref()) {
        bail!(
            "the image is for {}, not the requested platform",
            image.platform.as_deref().unwrap_or("an unnamed platform")
        );
    }
    Ok(vec![image])
}

fn load(store: &Store, record: &ImageRecord, reference: String) -> Result<Image> {
    let manifest_bytes = store.big_data(record, "manifest", limits::MAX_MANIFEST_BYTES)?;
    let manifest_digest = match record
        .big_data_digests
        .get("manifest")
        .or(record.digest.as_ref())
    {
        Some(digest) => {
            let digest = Digest::parse(digest)?;
            digest.verify(&manifest_bytes, "the image's manifest")?;
            digest
        }
        None => Digest::of(&manifest_bytes),
    };
    let manifest: ImageManifest = json::parse(
        &manifest_bytes,
        &format!("manifest {manifest_digest} is not a valid image manifest"),
    )?;
    let config_digest = Digest::parse(manifest.config().digest().as_ref())?;
    let config_bytes = store.big_data(record, config_digest.as_str(), limits::MAX_CONFIG_BYTES)?;
    config_digest.verify(&config_bytes, &format!("config {config_digest}"))?;
    let chain = layer_chain(store, record)?;
    let descriptors = LayerDescriptor::of_manifest(&manifest)?;
    if chain.len() != descriptors.len() {
        bail!(
            "the store holds {} layers for the image but its manifest lists {}",
            chain.len(),
            descriptors.len()
        );
    }
    // The store holds uncompressed layers: the walk checks each against its diff_id.
    let layers = chain
        .iter()
        .zip(&descriptors)
        .map(|(layer, descriptor)| LayerDescriptor {
            digest: None,
            media_type: descriptor.media_type.clone(),
            size: layer.diff_size,
        })
        .collect();
    let view = ManifestView {
        reference,
        digest: Some(manifest_digest.clone()),
        listed_in: LayerList::Manifest(manifest_digest),
        config_name: format!("config {config_digest}"),
        config_digest,
        layers,
        index_platform: None,
    };
    let mut image = Image::from_manifest(view, &config_bytes, |index, _, diff_id| {
        layer_blob(store, &chain[index], diff_id)
    })?;
    // An overlay layer without tar-split is read from its directory (source::overlay_diff):
    // a tar made, not the original, so it has no digest to be checked against.
    for (layer, record) in image.layers.iter_mut().zip(&chain) {
        if !tar_split_path(store, &record.id).is_file() {
            layer.diff_id = None;
        }
    }
    Ok(image)
}

/// The image's layers, base first, following parent links from its top layer.
fn layer_chain(store: &Store, record: &ImageRecord) -> Result<Vec<LayerRecord>> {
    let Some(top) = &record.layer else {
        return Ok(Vec::new());
    };
    let layers: Vec<LayerRecord> = store.read_list("layers", "layers.json")?;
    let by_id: HashMap<&str, &LayerRecord> = layers.iter().map(|l| (l.id.as_str(), l)).collect();
    let mut chain = Vec::new();
    let mut next = Some(top.as_str());
    while let Some(id) = next {
        let layer = by_id.get(id).ok_or_else(|| {
            anyhow!(
                "layer {id} is missing from {}-layers/layers.json",
                store.driver
            )
        })?;
        if chain.len() >= layers.len() {
            bail!("the layers' parent links in layers.json form a loop");
        }
        chain.push((*layer).clone());
        next = layer.parent.as_deref();
    }
    chain.reverse();
    Ok(chain)
}

fn layer_blob(store: &Store, layer: &LayerRecord, diff_id: &Digest) -> Result<LayerBlob> {
    if let Some(recorded) = &layer.diff_digest
        && recorded != diff_id.as_str()
    {
        bail!(
            "layer {}: layers.json gives it the digest {recorded}, the image config {diff_id}",
            layer.id
        );
    }
    if layer.id.contains('/') || layer.id.starts_with('.') {
        bail!("layers.json names a layer with an id that is not a plain name");
    }
    let tar_split = tar_split_path(store, &layer.id);
    if !tar_split.is_file() && store.driver == "overlay" {
        return Ok(LayerBlob::Stream(Box::new(OverlayDiff {
            dir: store.layer_dir(&layer.id),
        })));
    }
    if !tar_split.is_file() {
        bail!(
            "layer {} has no tar-split ({}), from which its tar is rebuilt",
            layer.id,
            tar_split.display()
        );
    }
    Ok(LayerBlob::Stream(Box::new(TarSplitLayer {
        id: layer.id.clone(),
        tar_split,
        files: layer_files(store, &layer.id),
    })))
}

fn tar_split_path(store: &Store, id: &str) -> PathBuf {
    store.path(&format!("{}-layers/{id}.tar-split.gz", store.driver))
}

fn layer_files(store: &Store, id: &str) -> PathBuf {
    store.layer_dir(id)
}

/// A layer's tar, rebuilt from its tar-split and the driver's files when the walk opens it.
struct TarSplitLayer {
    id: String,
    tar_split: PathBuf,
    files: PathBuf,
}

impl BlobOpener for TarSplitLayer {
    fn open(&self) -> Result<Box<dyn Read + Send + '_>> {
        let file = File::open(&self.tar_split)
            .with_context(|| format!("layer {}: {}", self.id, self.tar_split.display()))?;
        Ok(Box::new(TarSplitReader {
            layer: self.id.clone(),
            lines: BufReader::new(flate2::read::GzDecoder::new(BufReader::new(file))),
            files: LocalStore::Dir(self.files.clone()),
            pending: MappedBytes::from_vec(Vec::new()),
            at: 0,
            line: Vec::new(),
        }))
    }
}

/// One line of a tar-split: raw tar bytes (type 2) or a file whose bytes follow (type 1).
#[derive(Deserialize)]
struct TarSplitEntry {
    #[serde(rename = "type")]
    kind: u8,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    name_raw: Option<String>,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    payload: Option<String>,
}

/// Reads the rebuilt tar: each segment's bytes, each file's bytes from the layer's directory.
struct TarSplitReader {
    layer: String,
    lines: BufReader<flate2::read::GzDecoder<BufReader<File>>>,
    files: LocalStore,
    pending: MappedBytes,
    at: usize,
    line: Vec<u8>,
}

impl TarSplitReader {
    /// The next bytes of the tar, or `None` at the end of the tar-split.
    fn next_bytes(&mut self) -> Result<Option<MappedBytes>> {
        loop {
            self.line.clear();
            let read = (&mut self.lines)
                .take(MAX_TAR_SPLIT_LINE)
                .read_until(b'\n', &mut self.line)
                .context("the tar-split is not readable gzip")?;
            if read == 0 {
                return Ok(None);
            }
            if self.line.last() != Some(&b'\n') && read as u64 == MAX_TAR_SPLIT_LINE {
                bail!("the tar-split has an entry longer than {MAX_TAR_SPLIT_LINE} bytes");
            }
            let entry: TarSplitEntry =
                json::parse(&self.line, "the tar-split has a malformed entry")?;
            match entry.kind {
                2 => {
                    let payload = entry.payload.unwrap_or_default();
                    let bytes = BASE64
                        .decode(payload)
                        .map_err(|_| anyhow!("the tar-split has a segment that is not base64"))?;
                    return Ok(Some(MappedBytes::from_vec(bytes)));
                }
                1 if entry.size == 0 => continue,
                1 => return self.file_bytes(&entry).map(Some),
                other => bail!("the tar-split has an entry of unknown type {other}"),
            }
        }
    }

    fn file_bytes(&self, entry: &TarSplitEntry) -> Result<MappedBytes> {
        let name = match (&entry.name, &entry.name_raw) {
            (_, Some(raw)) => String::from_utf8(BASE64.decode(raw).unwrap_or_default())
                .map_err(|_| anyhow!("the tar-split names a file whose name is not UTF-8"))?,
            (Some(name), None) => name.clone(),
            (None, None) => bail!("the tar-split has a file entry without a name"),
        };
        let relative = name.trim_start_matches("./").trim_start_matches('/');
        let bytes = self
            .files
            .get(relative)
            .map_err(|err| anyhow!("{err:#}"))
            .with_context(|| format!("a file the tar-split lists ({relative})"))?;
        if bytes.len() as u64 != entry.size {
            bail!(
                "{relative} has {} bytes in the store, its tar header {}",
                bytes.len(),
                entry.size
            );
        }
        Ok(bytes)
    }
}

impl Read for TarSplitReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.at == self.pending.len() {
            match self.next_bytes() {
                Ok(Some(bytes)) => {
                    self.pending = bytes;
                    self.at = 0;
                }
                Ok(None) => return Ok(0),
                Err(err) => {
                    return Err(io::Error::other(format!(
                        "layer {} of the containers-storage store: {err:#}",
                        self.layer
                    )));
                }
            }
        }
        let n = out.len().min(self.pending.len() - self.at);
        out[..n].copy_from_slice(&self.pending[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_skopeos_explicit_form() {
        let (spec, name) = parse_arg("[vfs@/var/lib/s+/run/s]localhost/app:1").unwrap();
        assert_eq!(spec.driver.as_deref(), Some("vfs"));
        assert_eq!(spec.graph_root, Some(PathBuf::from("/var/lib/s")));
        assert_eq!(spec.run_root, Some(PathBuf::from("/run/s")));
        assert_eq!(name, "localhost/app:1");
        let (spec, name) = parse_arg("[/g+/r:overlay.mountopt=nodev]app").unwrap();
        assert_eq!(spec.driver, None);
        assert_eq!(spec.run_root, Some(PathBuf::from("/r")));
        assert_eq!(name, "app");
        let (spec, name) = parse_arg("app:1").unwrap();
        assert_eq!(spec, StoreSpec::default());
        assert_eq!(name, "app:1");
        assert!(parse_arg("[vfs@/g+/r app").is_err());
        assert!(parse_arg("[vfs@relative]app").is_err());
    }

    #[test]
    fn big_data_names_follow_containers_storage() {
        assert_eq!(big_data_file_name("manifest"), "manifest");
        assert_eq!(
            big_data_file_name("sha256:ab"),
            format!("={}", BASE64.encode("sha256:ab"))
        );
    }

    #[test]
    fn names_match_as_podman_resolves_short_names() {
        let record = ImageRecord {
            id: "b2cf06419459a5cc6f757be6bd8d61e418747ce3a4dd8753badc4c6a51f259c1".into(),
            digest: None,
            names: vec!["localhost/app:1".into()],
            layer: None,
            big_data_digests: HashMap::new(),
        };
        assert!(record_matches(&record, "app:1"));
        assert!(record_matches(&record, "localhost/app:1"));
        assert!(record_matches(&record, "b2cf06419459a5"));
        assert!(!record_matches(&record, "app:2"));
        assert!(!record_matches(&record, "other/app:1"));
    }
}
