//! The image model and the writers for every on-disk format stowaway reads.
//!
//! Everything here is deterministic except the content the caller puts in:
//! mtimes are 0, uid/gid are 0, `created` timestamps are fixed, so the same
//! [`ImageSpec`] always produces the same digests (handy when a test wants to
//! compare a report against [`Written`]).

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// OCI image index media type (`index.json`).
pub const MT_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image manifest media type.
pub const MT_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image config media type.
pub const MT_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI layer media type, uncompressed.
pub const MT_OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI layer media type, gzip.
pub const MT_OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI layer media type, zstd.
pub const MT_OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// Annotation holding the tag of a manifest in an OCI layout's `index.json`.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Annotation Docker 25+ puts on `index.json` descriptors: the full image name.
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";
/// The fixed `created` timestamp used in configs and history (determinism).
pub const FIXED_CREATED: &str = "2024-01-01T00:00:00Z";
/// The history `comment` BuildKit writes; used on every history entry.
pub const HISTORY_COMMENT: &str = "buildkit.dockerfile.v0";
/// Contents of the `oci-layout` file.
pub const OCI_LAYOUT_FILE: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;

// ---------------------------------------------------------------------------
// Model
// ---------------------------------------------------------------------------

/// One entry of a layer tar, in the order it is written.
///
/// Paths are relative to the image root with no leading slash
/// (`"root/.aws/credentials"`), exactly as Docker and BuildKit write them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A regular file. Paths longer than 100 bytes use a GNU long-name
    /// (`././@LongLink`) record, as `tar::Builder::append_data` does.
    File {
        path: String,
        content: Vec<u8>,
        mode: u32,
    },
    /// A regular file whose path is carried by a PAX extended header (`x`
    /// record with `path=`) instead of a GNU long name. The ustar header
    /// itself holds only the first 100 bytes of the path, so a reader that
    /// ignores PAX gets a wrong name: this is how Go's archive/tar (Docker,
    /// BuildKit, containerd) writes long paths, and readers must honour it.
    PaxFile {
        path: String,
        content: Vec<u8>,
        mode: u32,
    },
    /// A directory (written with a trailing `/`, mode 0755).
    Dir { path: String },
    /// A symbolic link; `target` is written verbatim (may be absolute).
    Symlink { path: String, target: String },
    /// A hard link to another path *in the same layer* (no leading slash).
    HardLink { path: String, target: String },
    /// Deletes `path` from lower layers: an empty regular file named
    /// `<dir>/.wh.<name>` (the OCI/AUFS whiteout convention).
    Whiteout { path: String },
    /// Hides everything lower layers put in `dir`: an empty regular file
    /// `<dir>/.wh..wh..opq` (the OCI opaque-whiteout marker).
    Opaque { dir: String },
    /// A regular file whose header name is copied byte for byte (at most 100
    /// bytes) without any validation: for hostile entries such as
    /// `../../etc/passwd`, absolute paths or non-UTF-8 names that
    /// `tar::Builder` refuses to write.
    RawFile { name: Vec<u8>, content: Vec<u8> },
}

impl Entry {
    /// A regular file with mode 0644.
    pub fn file(path: &str, content: impl Into<Vec<u8>>) -> Entry {
        Entry::File {
            path: path.to_string(),
            content: content.into(),
            mode: 0o644,
        }
    }

    /// A regular file with an explicit mode (e.g. 0o600 for private keys).
    pub fn file_mode(path: &str, content: impl Into<Vec<u8>>, mode: u32) -> Entry {
        Entry::File {
            path: path.to_string(),
            content: content.into(),
            mode,
        }
    }

    /// A regular file whose path is forced into a PAX `path=` record.
    pub fn pax_file(path: &str, content: impl Into<Vec<u8>>) -> Entry {
        Entry::PaxFile {
            path: path.to_string(),
            content: content.into(),
            mode: 0o644,
        }
    }

    /// A directory.
    pub fn dir(path: &str) -> Entry {
        Entry::Dir {
            path: path.to_string(),
        }
    }

    /// A symbolic link at `path` pointing at `target`.
    pub fn symlink(path: &str, target: &str) -> Entry {
        Entry::Symlink {
            path: path.to_string(),
            target: target.to_string(),
        }
    }

    /// A hard link at `path` to `target` (another path in the same layer).
    pub fn hardlink(path: &str, target: &str) -> Entry {
        Entry::HardLink {
            path: path.to_string(),
            target: target.to_string(),
        }
    }

    /// A whiteout deleting `path` from lower layers.
    pub fn whiteout(path: &str) -> Entry {
        Entry::Whiteout {
            path: path.to_string(),
        }
    }

    /// An opaque whiteout for directory `dir`.
    pub fn opaque(dir: &str) -> Entry {
        Entry::Opaque {
            dir: dir.to_string(),
        }
    }

    /// A file with an unvalidated raw header name (see [`Entry::RawFile`]).
    pub fn raw_file(name: impl Into<Vec<u8>>, content: impl Into<Vec<u8>>) -> Entry {
        Entry::RawFile {
            name: name.into(),
            content: content.into(),
        }
    }

    /// The name this entry has inside the layer tar, as a tar reader that
    /// honours GNU long names and PAX reports it (directories keep their
    /// trailing `/`; whiteouts get their `.wh.` names).
    pub fn tar_path(&self) -> String {
        match self {
            Entry::File { path, .. }
            | Entry::PaxFile { path, .. }
            | Entry::Symlink { path, .. }
            | Entry::HardLink { path, .. } => path.clone(),
            Entry::Dir { path } => format!("{}/", path.trim_end_matches('/')),
            Entry::Whiteout { path } => whiteout_name(path),
            Entry::Opaque { dir } => opaque_name(dir),
            Entry::RawFile { name, .. } => String::from_utf8_lossy(name).into_owned(),
        }
    }
}

/// `a/b/c` -> `a/b/.wh.c`; `c` -> `.wh.c`.
pub fn whiteout_name(path: &str) -> String {
    let path = path.trim_end_matches('/');
    match path.rsplit_once('/') {
        Some((dir, name)) => format!("{dir}/.wh.{name}"),
        None => format!(".wh.{path}"),
    }
}

/// `a/b` -> `a/b/.wh..wh..opq`.
pub fn opaque_name(dir: &str) -> String {
    let dir = dir.trim_end_matches('/');
    if dir.is_empty() {
        ".wh..wh..opq".to_string()
    } else {
        format!("{dir}/.wh..wh..opq")
    }
}

/// One layer: its tar entries and the history step (`created_by`) that made it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Layer {
    pub entries: Vec<Entry>,
    pub created_by: String,
}

impl Layer {
    pub fn new(created_by: &str, entries: Vec<Entry>) -> Layer {
        Layer {
            entries,
            created_by: created_by.to_string(),
        }
    }
}

/// Everything needed to write one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    pub layers: Vec<Layer>,
    /// History entries with `empty_layer: true` (ENV, ARG, LABEL...), each
    /// inserted *before* layer `usize`; `usize == layers.len()` puts it after
    /// the last layer. Several entries with the same index keep their order.
    pub empty_history: Vec<(usize, String)>,
    pub env: Vec<String>,
    pub labels: Vec<(String, String)>,
    pub cmd: Vec<String>,
    pub entrypoint: Vec<String>,
    pub author: Option<String>,
    pub os: String,
    pub architecture: String,
    /// Full reference, e.g. `example.com/leaky:1.0`; the tag defaults to
    /// `latest` when absent.
    pub repo_tag: String,
}

impl Default for ImageSpec {
    fn default() -> Self {
        ImageSpec {
            layers: Vec::new(),
            empty_history: Vec::new(),
            env: Vec::new(),
            labels: Vec::new(),
            cmd: Vec::new(),
            entrypoint: Vec::new(),
            author: None,
            os: "linux".to_string(),
            architecture: "amd64".to_string(),
            repo_tag: "stowaway.test/fixture:latest".to_string(),
        }
    }
}

/// One entry of the config's `history` array, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryStep {
    pub created_by: String,
    pub empty_layer: bool,
    /// The layer index this step produced (`None` for empty-layer steps).
    pub layer: Option<usize>,
}

impl ImageSpec {
    /// The `history` array as it is written to the config: every layer's step
    /// in order, with [`ImageSpec::empty_history`] entries spliced in.
    pub fn history(&self) -> Vec<HistoryStep> {
        for (idx, step) in &self.empty_history {
            assert!(
                *idx <= self.layers.len(),
                "empty_history entry {step:?} placed before layer {idx}, \
                 but the image has only {} layers",
                self.layers.len()
            );
        }
        let mut out = Vec::new();
        for i in 0..=self.layers.len() {
            for (_, step) in self.empty_history.iter().filter(|(idx, _)| *idx == i) {
                out.push(HistoryStep {
                    created_by: step.clone(),
                    empty_layer: true,
                    layer: None,
                });
            }
            if let Some(layer) = self.layers.get(i) {
                out.push(HistoryStep {
                    created_by: layer.created_by.clone(),
                    empty_layer: false,
                    layer: Some(i),
                });
            }
        }
        out
    }

    /// Index into the config's `history[]` of the step that produced `layer`.
    pub fn history_index_of_layer(&self, layer: usize) -> usize {
        self.history()
            .iter()
            .position(|h| h.layer == Some(layer))
            .unwrap_or_else(|| panic!("image has no layer {layer}"))
    }

    /// `(repository, tag)` of [`ImageSpec::repo_tag`].
    pub fn repo_and_tag(&self) -> (String, String) {
        split_repo_tag(&self.repo_tag)
    }

    /// The tag part of [`ImageSpec::repo_tag`] (`latest` if none).
    pub fn tag(&self) -> String {
        self.repo_and_tag().1
    }
}

/// Splits `host:port/name:tag` into `("host:port/name", "tag")`; a reference
/// without a tag gets `latest`. Only a `:` after the last `/` is a tag.
pub fn split_repo_tag(reference: &str) -> (String, String) {
    let name_start = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[name_start..].rfind(':') {
        Some(i) => {
            let colon = name_start + i;
            (
                reference[..colon].to_string(),
                reference[colon + 1..].to_string(),
            )
        }
        None => (reference.to_string(), "latest".to_string()),
    }
}

/// How layer blobs are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub const ALL: [Compression; 3] = [Compression::None, Compression::Gzip, Compression::Zstd];

    /// The OCI layer media type for this compression.
    pub fn oci_layer_media_type(self) -> &'static str {
        match self {
            Compression::None => MT_OCI_LAYER_TAR,
            Compression::Gzip => MT_OCI_LAYER_GZIP,
            Compression::Zstd => MT_OCI_LAYER_ZSTD,
        }
    }
}

/// The on-disk image formats stowaway reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `docker save` before Docker 25: a tar with `manifest.json`,
    /// `<config-hex>.json`, `<id>/layer.tar|VERSION|json` and `repositories`.
    DockerLegacy,
    /// `docker save` of Docker 25+: an OCI layout in a tar, plus the legacy
    /// `manifest.json` pointing into `blobs/sha256/`.
    DockerOci,
    /// An OCI image layout directory.
    OciLayout,
    /// An OCI image layout packed in a tar (`oci-archive:`).
    OciArchive,
}

impl Format {
    pub const ALL: [Format; 4] = [
        Format::DockerLegacy,
        Format::DockerOci,
        Format::OciLayout,
        Format::OciArchive,
    ];

    /// Whether the output is a single tar file (as opposed to a directory).
    pub fn is_archive(self) -> bool {
        !matches!(self, Format::OciLayout)
    }
}

/// What a writer produced, for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The tar file or layout directory.
    pub path: PathBuf,
    /// Digest of the OCI manifest blob. Legacy docker archives hold no
    /// manifest blob; there it is the digest of the OCI manifest describing
    /// the same config and layer blobs (identical to what the OCI formats
    /// write for the same spec and compression).
    pub manifest_digest: String,
    /// Digest of the config JSON (the image ID).
    pub config_digest: String,
    /// Digests of the layer blobs exactly as written (compressed if so).
    pub layer_digests: Vec<String>,
    /// Digests of the uncompressed layer tars (`rootfs.diff_ids`).
    pub diff_ids: Vec<String>,
}

// ---------------------------------------------------------------------------
// Building blobs in memory
// ---------------------------------------------------------------------------

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The hex part of a `sha256:<hex>` digest.
pub fn digest_hex(digest: &str) -> &str {
    digest
        .strip_prefix("sha256:")
        .unwrap_or_else(|| panic!("not a sha256 digest: {digest}"))
}

/// Compresses a layer tar. zstd uses level 3 (the zstd CLI default).
pub fn compress(data: &[u8], compression: Compression) -> Vec<u8> {
    match compression {
        Compression::None => data.to_vec(),
        Compression::Gzip => {
            use std::io::Write;
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(data).expect("gzip in memory");
            enc.finish().expect("gzip in memory")
        }
        Compression::Zstd => zstd::encode_all(data, 3).expect("zstd in memory"),
    }
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(size);
    h
}

/// One PAX record: `"<len> <key>=<value>\n"`, where `<len>` counts the
/// whole record including its own digits.
pub fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let rest_len = 1 + key.len() + 1 + value.len() + 1; // ' ' key '=' value '\n'
    let mut len = rest_len + 1;
    loop {
        let total = rest_len + len.to_string().len();
        if total == len {
            break;
        }
        len = total;
    }
    let mut rec = format!("{len} {key}=").into_bytes();
    rec.extend_from_slice(value);
    rec.push(b'\n');
    debug_assert_eq!(rec.len(), len);
    rec
}

fn append_pax_file<W: io::Write>(
    b: &mut tar::Builder<W>,
    path: &str,
    content: &[u8],
    mode: u32,
) -> io::Result<()> {
    let records = pax_record("path", path.as_bytes());
    let base = path.rsplit('/').next().unwrap_or(path);
    let base = &base[..floor_char_boundary(base, 80)];
    let mut x = tar::Header::new_ustar();
    x.set_entry_type(tar::EntryType::XHeader);
    x.set_mode(0o644);
    x.set_mtime(0);
    x.set_size(records.len() as u64);
    x.set_path(format!("PaxHeaders.0/{base}"))?;
    x.set_cksum();
    b.append(&x, records.as_slice())?;

    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(content.len() as u64);
    let name = &mut h.as_old_mut().name;
    let n = path.len().min(name.len());
    name[..n].copy_from_slice(&path.as_bytes()[..n]);
    h.set_cksum();
    b.append(&h, content)
}

fn floor_char_boundary(s: &str, max: usize) -> usize {
    let mut i = max.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn append_entry<W: io::Write>(b: &mut tar::Builder<W>, entry: &Entry) -> io::Result<()> {
    use tar::EntryType;
    match entry {
        Entry::File {
            path,
            content,
            mode,
        } => {
            let mut h = header(EntryType::Regular, *mode, content.len() as u64);
            b.append_data(&mut h, path, content.as_slice())
        }
        Entry::PaxFile {
            path,
            content,
            mode,
        } => append_pax_file(b, path, content, *mode),
        Entry::Dir { .. } => {
            let mut h = header(EntryType::Directory, 0o755, 0);
            b.append_data(&mut h, entry.tar_path(), io::empty())
        }
        Entry::Symlink { path, target } => {
            let mut h = header(EntryType::Symlink, 0o777, 0);
            b.append_link(&mut h, path, target)
        }
        Entry::HardLink { path, target } => {
            let mut h = header(EntryType::Link, 0o644, 0);
            b.append_link(&mut h, path, target)
        }
        Entry::Whiteout { .. } | Entry::Opaque { .. } => {
            let mut h = header(EntryType::Regular, 0o644, 0);
            b.append_data(&mut h, entry.tar_path(), io::empty())
        }
        Entry::RawFile { name, content } => {
            let mut h = header(EntryType::Regular, 0o644, content.len() as u64);
            let slot = &mut h.as_old_mut().name;
            assert!(name.len() <= slot.len(), "raw names are at most 100 bytes");
            slot[..name.len()].copy_from_slice(name);
            h.set_cksum();
            b.append(&h, content.as_slice())
        }
    }
}

/// The uncompressed tar of `entries`, in order (diff_id = its sha256).
pub fn layer_tar(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        append_entry(&mut b, e).unwrap_or_else(|err| panic!("writing {e:?}: {err}"));
    }
    b.into_inner().expect("finish layer tar")
}

/// One layer, built.
#[derive(Debug, Clone)]
pub struct BuiltLayer {
    /// The uncompressed tar.
    pub tar: Vec<u8>,
    /// The bytes stored as the blob (compressed per [`Compression`]).
    pub blob: Vec<u8>,
    pub diff_id: String,
    pub digest: String,
    pub media_type: &'static str,
}

/// All blobs of one image, built in memory.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    pub layers: Vec<BuiltLayer>,
    pub config: Vec<u8>,
    pub config_digest: String,
    /// The OCI manifest (schemaVersion 2).
    pub manifest: Vec<u8>,
    pub manifest_digest: String,
}

impl BuiltImage {
    fn written(&self, path: &Path) -> Written {
        Written {
            path: path.to_path_buf(),
            manifest_digest: self.manifest_digest.clone(),
            config_digest: self.config_digest.clone(),
            layer_digests: self.layers.iter().map(|l| l.digest.clone()).collect(),
            diff_ids: self.layers.iter().map(|l| l.diff_id.clone()).collect(),
        }
    }
}

/// The image config JSON for `spec` with the given diff_ids.
pub fn config_json(spec: &ImageSpec, diff_ids: &[String]) -> Value {
    let mut cfg = Map::new();
    if !spec.env.is_empty() {
        cfg.insert("Env".into(), json!(spec.env));
    }
    if !spec.labels.is_empty() {
        let labels: Map<String, Value> = spec
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        cfg.insert("Labels".into(), Value::Object(labels));
    }
    if !spec.cmd.is_empty() {
        cfg.insert("Cmd".into(), json!(spec.cmd));
    }
    if !spec.entrypoint.is_empty() {
        cfg.insert("Entrypoint".into(), json!(spec.entrypoint));
    }

    let history: Vec<Value> = spec
        .history()
        .into_iter()
        .map(|step| {
            let mut h = Map::new();
            h.insert("created".into(), json!(FIXED_CREATED));
            h.insert("created_by".into(), json!(step.created_by));
            if let Some(author) = &spec.author {
                h.insert("author".into(), json!(author));
            }
            h.insert("comment".into(), json!(HISTORY_COMMENT));
            if step.empty_layer {
                h.insert("empty_layer".into(), json!(true));
            }
            Value::Object(h)
        })
        .collect();

    let mut root = Map::new();
    root.insert("created".into(), json!(FIXED_CREATED));
    if let Some(author) = &spec.author {
        root.insert("author".into(), json!(author));
    }
    root.insert("architecture".into(), json!(spec.architecture));
    root.insert("os".into(), json!(spec.os));
    root.insert("config".into(), Value::Object(cfg));
    root.insert(
        "rootfs".into(),
        json!({ "type": "layers", "diff_ids": diff_ids }),
    );
    root.insert("history".into(), Value::Array(history));
    Value::Object(root)
}

/// Builds every blob of `spec` in memory (no I/O).
pub fn build_image(spec: &ImageSpec, compression: Compression) -> BuiltImage {
    let layers: Vec<BuiltLayer> = spec
        .layers
        .iter()
        .map(|layer| {
            let tar = layer_tar(&layer.entries);
            let blob = compress(&tar, compression);
            BuiltLayer {
                diff_id: sha256_digest(&tar),
                digest: sha256_digest(&blob),
                media_type: compression.oci_layer_media_type(),
                tar,
                blob,
            }
        })
        .collect();
    image_of_layers(spec, layers)
}

/// A layer made by hand (hostile or huge): its stored blob and its diff_id, computed by
/// whoever wrote the tar (the tar itself need not be kept).
#[derive(Debug, Clone)]
pub struct RawLayer {
    pub blob: Vec<u8>,
    pub diff_id: String,
    pub compression: Compression,
}

impl RawLayer {
    /// A layer whose uncompressed tar is `tar`, stored with `compression`.
    pub fn from_tar(tar: &[u8], compression: Compression) -> RawLayer {
        RawLayer {
            blob: compress(tar, compression),
            diff_id: sha256_digest(tar),
            compression,
        }
    }
}

/// Writes an OCI layout directory at `dest` holding one image, tagged with `spec`'s tag, whose
/// layers are `layers` (`spec` gives the config and history, one step per layer; its entries
/// are not used).
pub fn write_layout_with_layers(spec: &ImageSpec, layers: &[RawLayer], dest: &Path) -> Written {
    assert_eq!(
        spec.layers.len(),
        layers.len(),
        "one history step per layer"
    );
    let built = layers
        .iter()
        .map(|layer| BuiltLayer {
            tar: Vec::new(),
            blob: layer.blob.clone(),
            diff_id: layer.diff_id.clone(),
            digest: sha256_digest(&layer.blob),
            media_type: layer.compression.oci_layer_media_type(),
        })
        .collect();
    let img = image_of_layers(spec, built);
    let mut sink = sink_for(dest, false);
    write_blobs(sink.as_mut(), &img);
    let mut desc = manifest_descriptor(&img);
    desc.insert(
        "annotations".into(),
        json!({ ANNOTATION_REF_NAME: spec.tag() }),
    );
    sink.file("index.json", &index_json(vec![desc]));
    sink.file("oci-layout", OCI_LAYOUT_FILE.as_bytes());
    sink.finish();
    img.written(dest)
}

/// The config and manifest around built layers.
fn image_of_layers(spec: &ImageSpec, layers: Vec<BuiltLayer>) -> BuiltImage {
    let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.clone()).collect();
    let config = serde_json::to_vec(&config_json(spec, &diff_ids)).expect("config json");
    let config_digest = sha256_digest(&config);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MT_OCI_MANIFEST,
        "config": {
            "mediaType": MT_OCI_CONFIG,
            "digest": config_digest,
            "size": config.len(),
        },
        "layers": layers.iter().map(|l| json!({
            "mediaType": l.media_type,
            "digest": l.digest,
            "size": l.blob.len(),
        })).collect::<Vec<_>>(),
    });
    let manifest = serde_json::to_vec(&manifest).expect("manifest json");
    BuiltImage {
        layers,
        manifest_digest: sha256_digest(&manifest),
        manifest,
        config,
        config_digest,
    }
}

// ---------------------------------------------------------------------------
// Sinks: a directory or a tar file
// ---------------------------------------------------------------------------

/// Where files of an image go: a directory tree or members of a tar file.
/// Paths already written are skipped, so shared blobs/layers appear once.
trait Sink {
    fn dir(&mut self, path: &str);
    fn file(&mut self, path: &str, bytes: &[u8]);
    fn finish(self: Box<Self>);
}

struct DirSink {
    root: PathBuf,
}

impl Sink for DirSink {
    fn dir(&mut self, path: &str) {
        fs::create_dir_all(self.root.join(path)).expect("create layout dir");
    }
    fn file(&mut self, path: &str, bytes: &[u8]) {
        let full = self.root.join(path);
        if let Some(parent) = full.parent() {
            fs::create_dir_all(parent).expect("create layout dir");
        }
        fs::write(&full, bytes).unwrap_or_else(|e| panic!("write {}: {e}", full.display()));
    }
    fn finish(self: Box<Self>) {}
}

struct TarSink {
    builder: tar::Builder<fs::File>,
    seen: BTreeSet<String>,
}

impl TarSink {
    fn create(dest: &Path) -> TarSink {
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).expect("create parent dir");
        }
        let f = fs::File::create(dest).unwrap_or_else(|e| panic!("create {}: {e}", dest.display()));
        TarSink {
            builder: tar::Builder::new(f),
            seen: BTreeSet::new(),
        }
    }
}

impl Sink for TarSink {
    fn dir(&mut self, path: &str) {
        let path = format!("{}/", path.trim_end_matches('/'));
        if !self.seen.insert(path.clone()) {
            return;
        }
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_mtime(0);
        h.set_size(0);
        self.builder
            .append_data(&mut h, &path, io::empty())
            .expect("append dir");
    }
    fn file(&mut self, path: &str, bytes: &[u8]) {
        if !self.seen.insert(path.to_string()) {
            return;
        }
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_size(bytes.len() as u64);
        self.builder
            .append_data(&mut h, path, bytes)
            .expect("append file");
    }
    fn finish(self: Box<Self>) {
        self.builder.into_inner().expect("finish archive");
    }
}

fn sink_for(dest: &Path, archive: bool) -> Box<dyn Sink> {
    if archive {
        Box::new(TarSink::create(dest))
    } else {
        fs::create_dir_all(dest).unwrap_or_else(|e| panic!("create {}: {e}", dest.display()));
        Box::new(DirSink {
            root: dest.to_path_buf(),
        })
    }
}

fn blob_path(digest: &str) -> String {
    format!("blobs/sha256/{}", digest_hex(digest))
}

/// Writes manifest, config and layer blobs under `blobs/sha256/`.
fn write_blobs(sink: &mut dyn Sink, img: &BuiltImage) {
    sink.dir("blobs");
    sink.dir("blobs/sha256");
    for l in &img.layers {
        sink.file(&blob_path(&l.digest), &l.blob);
    }
    sink.file(&blob_path(&img.config_digest), &img.config);
    sink.file(&blob_path(&img.manifest_digest), &img.manifest);
}

fn manifest_descriptor(img: &BuiltImage) -> Map<String, Value> {
    let mut d = Map::new();
    d.insert("mediaType".into(), json!(MT_OCI_MANIFEST));
    d.insert("digest".into(), json!(img.manifest_digest));
    d.insert("size".into(), json!(img.manifest.len()));
    d
}

fn index_json(descriptors: Vec<Map<String, Value>>) -> Vec<u8> {
    let index = json!({
        "schemaVersion": 2,
        "mediaType": MT_OCI_INDEX,
        "manifests": descriptors,
    });
    serde_json::to_vec(&index).expect("index json")
}

// ---------------------------------------------------------------------------
// Writers
// ---------------------------------------------------------------------------

/// Writes one image in `format` to `dest` (a tar file, or for
/// [`Format::OciLayout`] a directory, created if missing).
pub fn write_image(
    spec: &ImageSpec,
    format: Format,
    compression: Compression,
    dest: &Path,
) -> Written {
    match format {
        Format::DockerLegacy => write_multi_image_docker_archive(&[spec], compression, dest)
            .pop()
            .expect("one image"),
        Format::DockerOci => write_docker_oci(spec, compression, dest),
        Format::OciLayout | Format::OciArchive => {
            let tag = spec.tag();
            write_layout(
                &[(spec, Some(tag.as_str()))],
                compression,
                dest,
                format == Format::OciArchive,
                false,
            )
            .pop()
            .expect("one image")
        }
    }
}

/// Docker 25+ `docker save`: OCI layout + legacy `manifest.json` in one tar.
fn write_docker_oci(spec: &ImageSpec, compression: Compression, dest: &Path) -> Written {
    let img = build_image(spec, compression);
    let (repo, tag) = spec.repo_and_tag();
    let mut sink = sink_for(dest, true);
    write_blobs(sink.as_mut(), &img);

    let mut desc = manifest_descriptor(&img);
    desc.insert(
        "annotations".into(),
        json!({
            ANNOTATION_CONTAINERD_NAME: spec.repo_tag,
            ANNOTATION_REF_NAME: tag,
        }),
    );
    sink.file("index.json", &index_json(vec![desc]));

    let legacy = json!([{
        "Config": blob_path(&img.config_digest),
        "RepoTags": [spec.repo_tag],
        "Layers": img.layers.iter().map(|l| blob_path(&l.digest)).collect::<Vec<_>>(),
    }]);
    sink.file(
        "manifest.json",
        &serde_json::to_vec(&legacy).expect("manifest.json"),
    );
    sink.file("oci-layout", OCI_LAYOUT_FILE.as_bytes());
    if let Some(top) = img.layers.last() {
        let repos = json!({ repo: { tag: digest_hex(&top.digest) } });
        sink.file(
            "repositories",
            &serde_json::to_vec(&repos).expect("repositories"),
        );
    }
    sink.finish();
    img.written(dest)
}

/// Several images in one legacy (pre-Docker-25) `docker save` tarball, each
/// with its own `RepoTags`. Layer directories are named by a v1-style chain
/// ID (sha256 of parent ID + diff_id), so a base layer shared by two images
/// is stored once, as Docker does.
///
/// With [`Compression::Gzip`]/[`Compression::Zstd`] the compressed bytes are
/// stored at `<id>/layer.tar` — Docker never does that, but readers must
/// sniff compression from bytes, not names.
pub fn write_multi_image_docker_archive(
    specs: &[&ImageSpec],
    compression: Compression,
    dest: &Path,
) -> Vec<Written> {
    let mut sink = sink_for(dest, true);
    let mut manifest = Vec::new();
    let mut repositories: Map<String, Value> = Map::new();
    let mut written = Vec::new();

    for spec in specs {
        let img = build_image(spec, compression);
        let mut parent: Option<String> = None;
        let mut layer_paths = Vec::new();
        for l in &img.layers {
            let id = hex::encode(Sha256::digest(
                format!("{}\n{}", parent.as_deref().unwrap_or(""), l.diff_id).as_bytes(),
            ));
            let mut v1 = Map::new();
            v1.insert("id".into(), json!(id));
            if let Some(p) = &parent {
                v1.insert("parent".into(), json!(p));
            }
            v1.insert("created".into(), json!(FIXED_CREATED));
            v1.insert("os".into(), json!(spec.os));
            v1.insert("container_config".into(), json!({ "Cmd": null }));
            sink.dir(&id);
            sink.file(&format!("{id}/VERSION"), b"1.0");
            sink.file(
                &format!("{id}/json"),
                &serde_json::to_vec(&Value::Object(v1)).expect("v1 json"),
            );
            sink.file(&format!("{id}/layer.tar"), &l.blob);
            layer_paths.push(format!("{id}/layer.tar"));
            parent = Some(id);
        }
        let config_name = format!("{}.json", digest_hex(&img.config_digest));
        sink.file(&config_name, &img.config);
        manifest.push(json!({
            "Config": config_name,
            "RepoTags": [spec.repo_tag],
            "Layers": layer_paths,
        }));
        if let Some(top) = parent {
            let (repo, tag) = spec.repo_and_tag();
            let entry = repositories
                .entry(repo)
                .or_insert_with(|| Value::Object(Map::new()));
            entry
                .as_object_mut()
                .expect("repositories entry")
                .insert(tag, json!(top));
        }
        written.push(img.written(dest));
    }

    sink.file(
        "manifest.json",
        &serde_json::to_vec(&manifest).expect("manifest.json"),
    );
    sink.file(
        "repositories",
        &serde_json::to_vec(&Value::Object(repositories)).expect("repositories"),
    );
    sink.finish();
    written
}

/// One OCI layout (directory, or a tar of it if `archive`) whose
/// `index.json` lists one manifest per spec. The `&str` is the tag stored as
/// `org.opencontainers.image.ref.name` (`None` = untagged, no annotation).
/// Every descriptor carries `platform` from the spec's os/architecture.
pub fn write_oci_index(
    specs: &[(&ImageSpec, Option<&str>)],
    compression: Compression,
    dest: &Path,
    archive: bool,
) -> Vec<Written> {
    write_layout(specs, compression, dest, archive, true)
}

fn write_layout(
    specs: &[(&ImageSpec, Option<&str>)],
    compression: Compression,
    dest: &Path,
    archive: bool,
    platform: bool,
) -> Vec<Written> {
    let mut sink = sink_for(dest, archive);
    let mut descriptors = Vec::new();
    let mut written = Vec::new();
    for (spec, tag) in specs {
        let img = build_image(spec, compression);
        write_blobs(sink.as_mut(), &img);
        let mut desc = manifest_descriptor(&img);
        if let Some(tag) = tag {
            desc.insert("annotations".into(), json!({ ANNOTATION_REF_NAME: tag }));
        }
        if platform {
            desc.insert(
                "platform".into(),
                json!({ "architecture": spec.architecture, "os": spec.os }),
            );
        }
        descriptors.push(desc);
        written.push(img.written(dest));
    }
    sink.file("index.json", &index_json(descriptors));
    sink.file("oci-layout", OCI_LAYOUT_FILE.as_bytes());
    sink.finish();
    written
}

// ---------------------------------------------------------------------------
// Corruption, for negative tests
// ---------------------------------------------------------------------------

/// How [`corrupt_copy`] damages a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corruption {
    /// Keep only this many leading bytes.
    Truncate(usize),
    /// XOR the byte at this offset with 0xFF.
    FlipByteAt(usize),
}

/// Copies the file `src` to `dest`, damaged as `how` says.
pub fn corrupt_copy(src: &Path, dest: &Path, how: Corruption) {
    let mut bytes = fs::read(src).unwrap_or_else(|e| panic!("read {}: {e}", src.display()));
    match how {
        Corruption::Truncate(keep) => {
            assert!(
                keep <= bytes.len(),
                "cannot keep {keep} of {} bytes",
                bytes.len()
            );
            bytes.truncate(keep);
        }
        Corruption::FlipByteAt(at) => {
            assert!(at < bytes.len(), "offset {at} past {} bytes", bytes.len());
            bytes[at] ^= 0xFF;
        }
    }
    fs::write(dest, bytes).unwrap_or_else(|e| panic!("write {}: {e}", dest.display()));
}

/// Overwrites `blobs/sha256/<hex of digest>` in an OCI layout directory with
/// `new_bytes`, keeping its name: the blob no longer matches its digest.
pub fn replace_blob_in_layout(dir: &Path, digest: &str, new_bytes: &[u8]) {
    let path = dir.join(blob_path(digest));
    assert!(path.exists(), "no blob {}", path.display());
    fs::write(&path, new_bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Copies the tar `src` to `dest`, replacing the content of member `member`
/// (e.g. `blobs/sha256/<hex>` or `<id>/layer.tar`) with `new_bytes` and
/// keeping every other member as is: the archive equivalent of
/// [`replace_blob_in_layout`].
pub fn replace_member_in_archive(src: &Path, dest: &Path, member: &str, new_bytes: &[u8]) {
    let input = fs::read(src).unwrap_or_else(|e| panic!("read {}: {e}", src.display()));
    let mut archive = tar::Archive::new(input.as_slice());
    let mut out = tar::Builder::new(Vec::new());
    let mut found = false;
    for entry in archive.entries().expect("read archive") {
        let mut entry = entry.expect("read member");
        let path = entry
            .path()
            .expect("member path")
            .to_string_lossy()
            .into_owned();
        let mut h = entry.header().clone();
        if path == member {
            found = true;
            h.set_size(new_bytes.len() as u64);
            out.append_data(&mut h, &path, new_bytes)
                .expect("append member");
        } else {
            let mut data = Vec::new();
            io::Read::read_to_end(&mut entry, &mut data).expect("read member");
            out.append_data(&mut h, &path, data.as_slice())
                .expect("append member");
        }
    }
    assert!(found, "no member {member} in {}", src.display());
    fs::write(dest, out.into_inner().expect("finish archive"))
        .unwrap_or_else(|e| panic!("write {}: {e}", dest.display()));
}
