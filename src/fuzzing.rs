//! Entry points for the fuzz targets in `fuzz/` (a crate of its own, see `fuzz/README.md`).
//!
//! The targets need code the library keeps to itself (the tar reader, the layer walkers, the
//! server's request parsers), so each one is a function here taking the fuzzer's bytes: the
//! internals stay `pub(crate)`, and what is reachable from outside is these functions only.
//! Not an API: hidden from the documentation, free to change with the targets.
//!
//! A target panics when it finds a bug: a panic inside the code under test, or a broken
//! invariant checked here (the mapped and the streamed layer walks disagreeing, a match that
//! points outside its file). Errors are the expected answer to most inputs and are ignored.
//! The functions are compiled (and their replay tested) with the crate, so they cannot rot
//! while the fuzz crate is not built.

use std::path::PathBuf;
use std::sync::{Arc, LazyLock};

use anyhow::{Context, Result};
use oci_client::Reference;

use crate::detect::decode::{Limits, decode_base64, yaml};
use crate::detect::rules::builtin_rules;
use crate::detect::{Detector, FileMatch};
use crate::layer::walk::{FileChunk, WalkedLayer, walk_layer, walk_mapped_tar, walk_tar_stream};
use crate::serve::{admission, events};
use crate::source::store::LocalStore;
use crate::source::{
    BlobOpener, Digest, Layer, LayerBlob, MappedBytes, docker_archive, oci_layout,
};

/// A fuzz target: the fuzzer's bytes in, a panic out when something is wrong.
pub type Target = fn(&[u8]);

/// The targets, by the name of their binary in `fuzz/`; `fuzz/run.sh` and the replay test run
/// each over `fuzz/corpus/<name>/` and `fuzz/regressions/<name>/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("layer", layer),
    ("image", image),
    ("manifest", manifest),
    ("decoders", decoders),
    ("yaml", yaml_values),
    ("detector", detector),
    ("admission", admission_review),
    ("events", registry_event),
];

/// Builds what the targets share (the detector, whose 800-odd rules take a while to compile).
/// A harness calls it before the fuzzer forks, so each child starts with it built.
pub fn warm_up() {
    LazyLock::force(&DETECTOR);
}

static DETECTOR: LazyLock<Detector> = LazyLock::new(|| {
    Detector::new(builtin_rules().expect("built-in rules")).expect("built-in detector")
});

/// One chunk as the detector would see it, for comparing two walks.
#[derive(Debug, PartialEq, Eq)]
struct ChunkSeen {
    path: Arc<str>,
    file_offset: u64,
    lines_before: u64,
    report_before: usize,
    content: Vec<u8>,
}

fn seen(chunk: &FileChunk) -> ChunkSeen {
    ChunkSeen {
        path: Arc::clone(&chunk.path),
        file_offset: chunk.file_offset,
        lines_before: chunk.lines_before,
        report_before: chunk.report_before,
        content: chunk.content.to_vec(),
    }
}

/// A layer walked every way the scanner walks layers: in place (an uncompressed layer of a
/// local image), as a stream (a compressed or downloaded one), as a stream that comes in
/// small reads (as decompressors and sockets deliver it), and through [`walk_layer`] both as a
/// mapped blob and as a streamed one (compression sniffed, gzip and zstd layers decoded).
/// They must agree: the same entries and chunks, or all an error. Where one accepts what
/// another refuses, a layer would be scanned differently depending on how it is stored.
pub fn layer(data: &[u8]) {
    let mapped = MappedBytes::from_vec(data.to_vec());
    let in_place = walked(|on_chunk| walk_mapped_tar(&mapped, on_chunk));
    let streamed = walked(|on_chunk| walk_tar_stream(data, on_chunk));
    assert_agree("mapped", &in_place, "streamed", &streamed);
    let trickled = walked(|on_chunk| walk_tar_stream(Trickle { data, step: 0 }, on_chunk));
    assert_agree("streamed", &streamed, "streamed in small reads", &trickled);
    let layer = |blob| Layer {
        digest: None,
        diff_id: None,
        media_type: None,
        size: data.len() as u64,
        blob,
    };
    let as_mapped = layer(LayerBlob::Mapped(mapped.clone()));
    let as_stream = layer(LayerBlob::Stream(Box::new(Opener(data.to_vec()))));
    let by_map = walked(|on_chunk| walk_layer(&as_mapped, on_chunk));
    let by_stream = walked(|on_chunk| walk_layer(&as_stream, on_chunk));
    assert_agree("a mapped layer", &by_map, "a streamed layer", &by_stream);
}

type Walk = (Result<WalkedLayer>, Vec<ChunkSeen>);

fn walked(
    walk: impl FnOnce(&mut dyn FnMut(FileChunk) -> Result<()>) -> Result<WalkedLayer>,
) -> Walk {
    let mut chunks = Vec::new();
    let result = walk(&mut |chunk| {
        chunks.push(seen(&chunk));
        Ok(())
    });
    (result, chunks)
}

fn assert_agree(a_name: &str, a: &Walk, b_name: &str, b: &Walk) {
    match (&a.0, &b.0) {
        (Ok(a_walked), Ok(b_walked)) => {
            assert_same_walk(a_walked, b_walked);
            assert!(
                a.1 == b.1,
                "{a_name} and {b_name} handed over different chunks"
            );
        }
        (Err(_), Err(_)) => {}
        (a_result, b_result) => panic!(
            "{a_name} and {b_name} disagree: {a_name} {:?}, {b_name} {:?}",
            a_result.as_ref().map(|walked| walked.files),
            b_result.as_ref().map(|walked| walked.files)
        ),
    }
}

/// A reader that hands its bytes over 1 to 13 at a time.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.step = self.step % 13 + 1;
        let n = self.step.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// A streamed blob held in memory.
struct Opener(Vec<u8>);

impl BlobOpener for Opener {
    fn open(&self) -> Result<Box<dyn std::io::Read + Send + '_>> {
        Ok(Box::new(&self.0[..]))
    }
}

/// Everything a walk records but how the blob was stored.
fn assert_same_walk(mapped: &WalkedLayer, streamed: &WalkedLayer) {
    let (a, b) = (&mapped.changes, &streamed.changes);
    assert_eq!(a.written, b.written, "written paths differ");
    assert_eq!(a.whiteouts, b.whiteouts, "whiteouts differ");
    assert_eq!(a.opaque_dirs, b.opaque_dirs, "opaque directories differ");
    let links = |walked: &WalkedLayer| {
        walked
            .hard_links
            .iter()
            .map(|link| (link.path.clone(), link.target.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(links(mapped), links(streamed), "hard links differ");
    assert_eq!(
        (mapped.files, mapped.content_bytes),
        (streamed.files, streamed.content_bytes),
        "file counts differ"
    );
    assert_eq!(
        mapped.irregular, streamed.irregular,
        "irregular entries differ"
    );
    assert_eq!(mapped.shallow_symlinks, streamed.shallow_symlinks);
}

/// An image tarball (`docker save` output or an oci-archive) as `stowaway scan` opens one:
/// members indexed, manifests, indexes and configs read, then every layer walked.
pub fn image(data: &[u8]) {
    image_layers_walked(data);
}

/// [`image`], returning how many layers were walked without an error.
fn image_layers_walked(data: &[u8]) -> usize {
    match LocalStore::from_tar(&MappedBytes::from_vec(data.to_vec())) {
        Ok(store) => open_and_walk(&store),
        Err(_) => 0,
    }
}

/// Opens the images of `store` and walks their layers; returns how many layers were walked
/// without an error (what tells a seed that reaches the walk from one that stops early).
fn open_and_walk(store: &LocalStore) -> usize {
    let images = if docker_archive::is_docker_archive(store) {
        docker_archive::open(store, "fuzz", None, None)
    } else {
        oci_layout::open(store, "fuzz", None, None)
    };
    let mut walked = 0;
    for image in images.iter().flatten() {
        for layer in &image.layers {
            let result = walk_layer(layer, &mut |chunk| {
                std::hint::black_box(&chunk.content[..]);
                Ok(())
            });
            walked += usize::from(result.is_ok());
        }
    }
    walked
}

/// Separates the documents of a [`manifest`] input.
pub const DOCUMENT_SEPARATOR: &[u8] = b"\n~~\n";

/// The manifests, indexes and configs of an image layout, with digests that hold. A fuzzer
/// cannot forge a sha256, so this input is a list of documents (separated by
/// [`DOCUMENT_SEPARATOR`]), each a member name on its first line and the member's bytes after
/// it; a name of `-` stores the document as `blobs/sha256/<its digest>`. In names and bytes,
/// `@N@` stands for the hex digest and `#N#` for the size of document N (a later one, as the
/// documents are completed from the last; a name may also name its own document), so an index
/// can point at a manifest that points at a config and layers. The image is then opened and
/// walked like [`image`].
pub fn manifest(data: &[u8]) {
    manifest_layers_walked(data);
}

/// [`manifest`], returning how many layers were walked without an error.
fn manifest_layers_walked(data: &[u8]) -> usize {
    let documents = split(data, DOCUMENT_SEPARATOR);
    let mut resolved: Vec<Option<(String, Vec<u8>)>> = vec![None; documents.len()];
    for index in (0..documents.len()).rev() {
        let (name, body) = match documents[index].iter().position(|&b| b == b'\n') {
            Some(at) => (&documents[index][..at], &documents[index][at + 1..]),
            None => (documents[index], &b""[..]),
        };
        let body = substitute(body, &resolved);
        // A name may hold its own document's digest (`<hex>.json`, a legacy config).
        resolved[index] = Some((String::new(), body));
        let name = String::from_utf8_lossy(&substitute(name, &resolved)).into_owned();
        let body = resolved[index]
            .take()
            .map(|(_, body)| body)
            .unwrap_or_default();
        let name = if name == "-" {
            oci_layout::blob_path(&Digest::of(&body))
        } else {
            name
        };
        resolved[index] = Some((name, body));
    }
    let entries = resolved
        .into_iter()
        .flatten()
        .map(|(name, body)| {
            let name = name
                .trim_start_matches("./")
                .trim_start_matches('/')
                .to_string();
            (name, MappedBytes::from_vec(body))
        })
        .collect();
    open_and_walk(&LocalStore::Tar { entries })
}

fn split<'a>(data: &'a [u8], separator: &[u8]) -> Vec<&'a [u8]> {
    let mut parts = Vec::new();
    let mut rest = data;
    while let Some(at) = memchr::memmem::find(rest, separator) {
        parts.push(&rest[..at]);
        rest = &rest[at + separator.len()..];
    }
    parts.push(rest);
    parts
}

/// Replaces `@N@` and `#N#` (N one digit) with the digest and size of document N, when it is
/// already resolved.
fn substitute(text: &[u8], resolved: &[Option<(String, Vec<u8>)>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut at = 0;
    while at < text.len() {
        let marker = text[at];
        let value = match text.get(at..at + 3) {
            Some(&[open, digit, close])
                if (open == b'@' || open == b'#') && close == open && digit.is_ascii_digit() =>
            {
                resolved
                    .get(usize::from(digit - b'0'))
                    .and_then(Option::as_ref)
                    .map(|(_, body)| match marker {
                        b'@' => Digest::of(body).hex().to_string(),
                        _ => body.len().to_string(),
                    })
            }
            _ => None,
        };
        match value {
            Some(value) => {
                out.extend_from_slice(value.as_bytes());
                at += 3;
            }
            None => {
                out.push(marker);
                at += 1;
            }
        }
    }
    out
}

/// The file names the [`decoders`] target picks from: each calls for other decoders or
/// path-scoped rules.
const DECODER_PATHS: &[&str] = &[
    "app/lib/app.jar",
    "etc/ssl/keystore.jks",
    "etc/ssl/keystore.p12",
    "root/.docker/config.json",
    "root/.kube/config",
    "deploy/secret.yaml",
    "etc/ssl/certs/server.der",
    "srv/bundle.tar.gz",
    "root/.ssh/id_ed25519",
    "app/.env",
    "app/settings.pyc",
    "home/app/.npmrc",
];

/// One file through the detector and every decoder it calls for (archives, key stores,
/// Kubernetes, kubeconfig and docker config YAML/JSON, certificates). The first byte picks the
/// file's name from [`DECODER_PATHS`]; the rest is its content. Limits are lowered so that one
/// input cannot take seconds (what they bound is what the decoders must respect).
pub fn decoders(data: &[u8]) {
    let Some((&pick, content)) = data.split_first() else {
        return;
    };
    let path = DECODER_PATHS[usize::from(pick) % DECODER_PATHS.len()];
    let limits = Limits {
        max_archive_depth: 3,
        max_decompressed_bytes: 4 << 20,
        max_members: 200,
    };
    let scan = DETECTOR.scan_file_with_limits(path, content, limits);
    check_matches(&scan.matches, content);
}

/// A match found in the file itself must lie inside it (reports slice the file at it).
fn check_matches(matches: &[FileMatch], content: &[u8]) {
    for found in matches.iter().filter(|m| m.archive_path.is_empty()) {
        let m = &found.base;
        assert!(
            m.start <= m.end && m.end <= content.len(),
            "match {}..{} outside a file of {} bytes",
            m.start,
            m.end,
            content.len()
        );
    }
}

/// Arbitrary bytes as the content of a file with a neutral name: the prefilter, the rules,
/// validators, UTF-16 sniffing, and whatever decoder the content calls for.
pub fn detector(data: &[u8]) {
    let matches = DETECTOR.scan_file("app/data", data);
    check_matches(&matches, data);
}

/// YAML as the Kubernetes, kubeconfig and docker config decoders read it: every scalar's span
/// must be a range of the text on character boundaries (the decoders slice the text there),
/// and every value goes through the base64 decoding they apply.
pub fn yaml_values(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (documents, _cut) = yaml::parse_documents_bounded(text);
    let mut stack: Vec<&yaml::Node> = documents.iter().collect();
    while let Some(node) = stack.pop() {
        match node {
            yaml::Node::Scalar(scalar) => {
                assert!(
                    text.get(scalar.span.clone()).is_some(),
                    "scalar span {:?} is not a range of the text",
                    scalar.span
                );
                std::hint::black_box(decode_base64(&scalar.value));
            }
            yaml::Node::Seq(items) => stack.extend(items),
            yaml::Node::Map(entries) => stack.extend(entries.iter().map(|(_, value)| value)),
            yaml::Node::Other => {}
        }
    }
}

/// An AdmissionReview body as the webhook reads it: the request, the images of the workload
/// (each parsed as the reference the server would look up), and the response it would send.
pub fn admission_review(data: &[u8]) {
    match admission::parse_review(data) {
        Ok(request) => {
            for image in &request.images {
                let _ = image.parse::<Reference>();
            }
            let warnings = request.images.clone();
            let reply = admission::response(&request.uid, true, None, &warnings);
            serde_json::to_vec(&reply).expect("a response serialises");
        }
        Err(error) => {
            serde_json::to_vec(&admission::error_response(&error)).expect("a response serialises");
        }
    }
}

/// A registry notification body (CNCF distribution or Harbor): every image it yields must be
/// a reference the server can look up, named by its digest, on the registry the event names
/// (the allow-list is checked against the reference's registry).
pub fn registry_event(data: &[u8]) {
    let Ok((_, parsed)) = events::parse(data) else {
        return;
    };
    for image in &parsed.images {
        assert!(events::is_digest(&image.digest), "not a digest");
        let reference: Reference = image
            .reference
            .parse()
            .expect("an event yielded a reference that does not parse");
        assert!(
            image
                .reference
                .starts_with(&format!("{}/", reference.registry())),
            "the reference {:?} is looked up on {:?}, not on the registry it names",
            image.reference,
            reference.registry()
        );
    }
}

/// What a [`replay`] did.
#[derive(Debug, Default)]
pub struct Replayed {
    /// Inputs run.
    pub inputs: usize,
    /// Inputs on which the target panicked.
    pub panicked: Vec<PathBuf>,
}

/// Runs `target` over inputs: each path is an input file, or a directory whose files are
/// inputs (not its subdirectories). What the replay test and the harnesses' plain builds do.
/// A directory that does not exist holds no inputs.
pub fn replay(target: Target, paths: &[PathBuf]) -> Result<Replayed> {
    let mut inputs = Vec::new();
    for path in paths {
        if path.is_dir() {
            let listing = std::fs::read_dir(path)
                .with_context(|| format!("cannot list {}", path.display()))?;
            let mut files = listing
                .map(|entry| entry.map(|e| e.path()))
                .collect::<std::io::Result<Vec<_>>>()?;
            files.retain(|file| file.is_file());
            files.sort();
            inputs.extend(files);
        } else if path.exists() {
            inputs.push(path.clone());
        }
    }
    let mut replayed = Replayed::default();
    for input in inputs {
        let data =
            std::fs::read(&input).with_context(|| format!("cannot read {}", input.display()))?;
        replayed.inputs += 1;
        if std::panic::catch_unwind(|| target(&data)).is_err() {
            replayed.panicked.push(input);
        }
    }
    Ok(replayed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The image seeds must get past the digests and the JSON to the layers, or the fuzzer
    /// starts where the parsers it is meant to explore are out of reach.
    #[test]
    fn every_image_seed_reaches_the_layer_walk() {
        let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
        type LayersWalked = fn(&[u8]) -> usize;
        let seeds: [(&str, LayersWalked); 2] = [
            ("image", image_layers_walked),
            ("manifest", manifest_layers_walked),
        ];
        for (target, layers_walked) in seeds {
            for entry in std::fs::read_dir(corpus.join(target)).unwrap() {
                let path = entry.unwrap().path();
                let walked = layers_walked(&std::fs::read(&path).unwrap());
                assert!(walked > 0, "{} walks no layer", path.display());
            }
        }
    }

    #[test]
    fn placeholders_stand_for_later_documents() {
        let body = b"x".to_vec();
        let resolved = vec![None, Some(("-".to_string(), body.clone()))];
        let text = substitute(b"@1@ #1# @0@ @9@ #1", &resolved);
        let expected = format!("{} 1 @0@ @9@ #1", Digest::of(&body).hex());
        assert_eq!(String::from_utf8(text).unwrap(), expected);
    }
}
