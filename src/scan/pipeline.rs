//! The concurrent part of a scan: walker threads take layers off a shared queue and send their
//! files, chunk by chunk, through a bounded channel to the detector on the rayon pool. A byte
//! budget bounds the content in flight. When one layer fails, the other walkers stop early
//! ([`Aborted`]) and the first failure is the scan's error.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use anyhow::{Context, Result, anyhow};
use rayon::prelude::*;

use super::assemble::OverLimit;
use super::budget::ByteBudget;
use super::context;
use super::packages::{Collector, LayerPackages};
use super::raw::{FileDigests, RawFinding, SecretText};
use super::{Progress, Scanner, SkipPaths};
use crate::detect::decode::archive;
use crate::detect::{Detector, FileMatch, Limits};
use crate::layer::{FileChunk, WHOLE_ARCHIVE_LIMIT, WalkedLayer, walk_layer_with_progress};
use crate::report::model::{SkipKind, SkipRecord};
use crate::report::redact::redact_in_text;
use crate::source::Image;

/// Chunks waiting between the walkers and the detector (their bytes count against the budget).
const CHANNEL_CHUNKS: usize = 256;

/// What walking and matching the layers of one image produced.
pub(super) struct LayersScan {
    pub walked: Vec<WalkedLayer>,
    /// The package-database files each layer writes.
    pub packages: Vec<LayerPackages>,
    pub raw: Vec<RawFinding>,
    pub skipped: Vec<SkipRecord>,
    /// Per file, the matches the per-file limit left out as its chunks were matched.
    pub over_limit: Vec<OverLimit>,
    /// Layers served from the cache.
    pub from_cache: usize,
}

/// What the detector made of the chunks (or the cache holds of a layer): matches, skipped
/// items, and the matches the per-file limit left out.
#[derive(Default)]
pub(super) struct Matched {
    pub raw: Vec<RawFinding>,
    pub skipped: Vec<SkipRecord>,
    pub over_limit: Vec<OverLimit>,
}

/// Why a walker gave up its layer: another layer failed and the scan is abandoned. Not a
/// failure of this layer, so never the scan's error.
#[derive(Debug)]
struct Aborted;

impl fmt::Display for Aborted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("scan aborted: another layer failed")
    }
}

impl std::error::Error for Aborted {}

/// Whether `err` is (or was caused by) [`Aborted`], under whatever context the walk added.
fn is_aborted(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| cause.is::<Aborted>())
}

/// The layers to walk and what the walker threads share.
struct WalkQueue<'a> {
    image: &'a Image,
    progress: &'a dyn Progress,
    budget: &'a ByteBudget,
    /// Files the user asked not to scan: walked, offered to the package collector, not sent.
    skip: &'a SkipPaths,
    /// Indexes of the layers to walk (those not served from the cache).
    to_walk: &'a [usize],
    next: AtomicUsize,
    /// Set when a layer failed: walkers stop taking layers and abandon the ones they walk.
    failed: AtomicBool,
}

/// What one walker thread did: the layers it walked or that failed, by index. Layers it
/// abandoned because another failed are left out.
type WalkerResults = Vec<(usize, Result<(WalkedLayer, LayerPackages)>)>;

impl WalkQueue<'_> {
    /// The next layer to walk, or `None` when all are taken or one failed.
    fn take(&self) -> Option<usize> {
        let position = self.next.fetch_add(1, Ordering::SeqCst);
        if position >= self.to_walk.len() || self.failed.load(Ordering::SeqCst) {
            return None;
        }
        Some(self.to_walk[position])
    }

    /// One walker thread: walks layers until none is left, sending their chunks to `sender`.
    fn run(&self, sender: SyncSender<(usize, FileChunk)>) -> WalkerResults {
        let mut results = Vec::new();
        while let Some(index) = self.take() {
            let result = self.walk(index, &sender);
            if result.is_err() {
                self.failed.store(true, Ordering::SeqCst);
            }
            self.progress.layer_done(index);
            match result {
                Err(err) if is_aborted(&err) => {}
                result => results.push((index, result)),
            }
        }
        results
    }

    fn walk(
        &self,
        index: usize,
        sender: &SyncSender<(usize, FileChunk)>,
    ) -> Result<(WalkedLayer, LayerPackages)> {
        let layer = &self.image.layers[index];
        self.progress.layer_started(index, layer.size);
        let on_stored = |bytes| self.progress.stored(index, bytes);
        let mut packages = Collector::default();
        let walked = walk_layer_with_progress(layer, &on_stored, &mut |chunk| {
            if self.failed.load(Ordering::SeqCst) {
                return Err(Aborted.into());
            }
            packages.offer(&chunk);
            self.progress.scanned(index, chunk.report_before as u64);
            if self.skip.skips(&chunk.path) {
                return Ok(());
            }
            self.budget.acquire(chunk.content.in_flight_len());
            sender
                .send((index, chunk))
                .map_err(|_| anyhow!("detector stopped"))
        })
        .with_context(|| layer_name(self.image, index))?;
        Ok((walked, packages.finish()))
    }
}

impl Scanner {
    /// Walks every layer (or reads it from the cache) and matches its files. Returns each
    /// layer's walk and the matches.
    pub(super) fn scan_layers(&self, image: &Image, progress: &dyn Progress) -> Result<LayersScan> {
        let layer_count = image.layers.len();
        let mut cached: Vec<_> = (0..layer_count)
            .map(|index| self.cached_layer(image, index))
            .collect();
        // Held until the fresh layers' results are stored (or the scan fails).
        let _claims = self.claim_layers(image, &mut cached);
        let from_cache = cached.iter().filter(|c| c.is_some()).count();
        let to_walk: Vec<usize> = (0..layer_count).filter(|&i| cached[i].is_none()).collect();

        let budget = ByteBudget::new(self.options.memory_budget);
        let queue = WalkQueue {
            image,
            progress,
            budget: &budget,
            skip: &self.options.skip,
            to_walk: &to_walk,
            next: AtomicUsize::new(0),
            failed: AtomicBool::new(false),
        };
        let (sender, receiver) = sync_channel::<(usize, FileChunk)>(CHANNEL_CHUNKS);
        let walkers = self.options.threads.clamp(1, to_walk.len().max(1));
        let (results, matched) = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..walkers)
                .map(|_| {
                    let sender = sender.clone();
                    let queue = &queue;
                    scope.spawn(move || queue.run(sender))
                })
                .collect();
            // The detector's input ends when the last walker drops its sender.
            drop(sender);
            let matched = self.match_chunks(receiver, &budget);
            let results: WalkerResults = handles
                .into_iter()
                .flat_map(|handle| {
                    handle
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect();
            (results, matched)
        });
        let mut fresh = walked_by_index(results, layer_count)?;
        let Matched {
            mut raw,
            mut skipped,
            mut over_limit,
        } = matched;

        let mut layers = Vec::with_capacity(layer_count);
        let mut hits = Vec::new();
        let mut packages = Vec::with_capacity(layer_count);
        for index in 0..layer_count {
            match (cached[index].take(), fresh[index].take()) {
                (Some(hit), _) => {
                    hits.push((hit.findings, hit.skipped, hit.over_limit));
                    layers.push(hit.walked);
                    packages.push(hit.packages);
                }
                (None, Some((mut walked, layer_packages))) => {
                    skipped.extend(self.irregular_entries(index, &mut walked));
                    layers.push(walked);
                    packages.push(layer_packages);
                }
                (None, None) => {
                    return Err(anyhow!("internal error: layer {index} was not walked"));
                }
            }
        }
        // Until the hits are added, `raw` and `skipped` hold the fresh layers' results only.
        let fresh_results = Matched {
            raw,
            skipped,
            over_limit,
        };
        self.store_layers(image, &layers, &packages, &to_walk, &fresh_results);
        Matched {
            raw,
            skipped,
            over_limit,
        } = fresh_results;
        for (findings, skips, over) in hits {
            raw.extend(findings);
            skipped.extend(skips);
            over_limit.extend(over);
        }
        skipped.sort_by(|a, b| (a.layer_index, &a.what).cmp(&(b.layer_index, &b.what)));
        Ok(LayersScan {
            walked: layers,
            packages,
            raw,
            skipped,
            over_limit,
            from_cache,
        })
    }

    /// The entries of a freshly walked layer that were read differently from what their
    /// headers say, as skipped items (paths redacted, see [`redacted_name`]).
    fn irregular_entries(&self, index: usize, walked: &mut WalkedLayer) -> Vec<SkipRecord> {
        std::mem::take(&mut walked.irregular)
            .into_iter()
            .map(|entry| SkipRecord {
                layer_index: index,
                what: redacted_name(&self.detector, &entry.path),
                reason: entry.reason,
                kind: SkipKind::Irregular,
            })
            .collect()
    }

    /// Matches every chunk the walkers send, on the rayon pool, releasing each chunk's bytes
    /// from the budget (and a large mapped chunk's pages from memory) once matched.
    fn match_chunks(&self, receiver: Receiver<(usize, FileChunk)>, budget: &ByteBudget) -> Matched {
        let detector = &self.detector;
        let limits = self.options.archive_limits;
        self.pool.install(|| {
            receiver
                .into_iter()
                .par_bridge()
                .map(|(layer, chunk)| {
                    let (found, skipped) = match_chunk(detector, limits, layer, &chunk);
                    chunk.content.release();
                    budget.release(chunk.content.in_flight_len());
                    let (raw, over_limit) = self.cap_chunk(found);
                    Matched {
                        raw,
                        skipped,
                        over_limit,
                    }
                })
                .reduce(Matched::default, |mut all, one| {
                    all.raw.extend(one.raw);
                    all.skipped.extend(one.skipped);
                    all.over_limit.extend(one.over_limit);
                    all
                })
        })
    }
}

/// The walkers' results by layer index, or the error of the lowest failed layer (the cause:
/// the walkers of other layers only stopped because of it).
fn walked_by_index(
    results: WalkerResults,
    layer_count: usize,
) -> Result<Vec<Option<(WalkedLayer, LayerPackages)>>> {
    let mut walked: Vec<Option<_>> = (0..layer_count).map(|_| None).collect();
    let mut failure: Option<(usize, anyhow::Error)> = None;
    for (index, result) in results {
        match result {
            Ok(layer) => walked[index] = Some(layer),
            Err(err) if failure.as_ref().is_none_or(|(first, _)| index < *first) => {
                failure = Some((index, err));
            }
            Err(_) => {}
        }
    }
    match failure {
        Some((_, err)) => Err(err),
        None => Ok(walked),
    }
}

/// `layer 3 (sha256:…)`: the layer an error happened in.
fn layer_name(image: &Image, index: usize) -> String {
    let digest = image.layers[index]
        .digest
        .as_ref()
        .or(image.layers[index].diff_id.as_ref())
        .map(|d| format!(" ({d})"))
        .unwrap_or_default();
    format!("layer {index}{digest}")
}

/// A name from a layer (a path, archive members) with any secret in it redacted as findings
/// are: names are input like any other, and a misframed header's "name" may be file content.
pub(super) fn redacted_name(detector: &Detector, name: &str) -> String {
    let secrets: Vec<String> = detector
        .scan(name.as_bytes())
        .into_iter()
        .map(|m| String::from_utf8_lossy(&m.secret).into_owned())
        .collect();
    redact_in_text(name, &secrets)
}

/// What the whole-file steps could not do for a file too large to be handed over whole
/// (`chunk` is its first chunk): a zip or gzip over [`WHOLE_ARCHIVE_LIMIT`] is not opened, and
/// the path-scoped rules meant for it do not read it. Its bytes are scanned as stored either
/// way; large files of other kinds lose nothing by coming in chunks.
fn partial_file_skips(detector: &Detector, layer: usize, chunk: &FileChunk) -> Vec<SkipRecord> {
    let mut reasons = Vec::new();
    if let Some(kind @ (archive::Kind::Zip | archive::Kind::Gzip)) = archive::sniff(&chunk.content)
    {
        reasons.push(format!(
            "{} archive over the {} MiB whole-file limit: its members were not opened (its \
             stored bytes were scanned as they are)",
            if kind == archive::Kind::Zip {
                "zip"
            } else {
                "gzip"
            },
            WHOLE_ARCHIVE_LIMIT >> 20
        ));
    }
    reasons.extend(detector.path_scoped_unread(&chunk.path, chunk.content.len() as u64));
    reasons
        .into_iter()
        .map(|reason| SkipRecord {
            layer_index: layer,
            what: redacted_name(detector, &chunk.path),
            reason,
            kind: SkipKind::NotScanned,
        })
        .collect()
}

/// Runs the detector on one chunk and keeps the matches this chunk owns. A chunk that holds a
/// whole file also goes through the decoders (they need the file entire).
fn match_chunk(
    detector: &Detector,
    limits: Limits,
    layer: usize,
    chunk: &FileChunk,
) -> (Vec<RawFinding>, Vec<SkipRecord>) {
    let whole_file = chunk.file_offset == 0 && chunk.report_before == chunk.content.len();
    let skipped;
    let matches: Vec<FileMatch> = if whole_file {
        let scan = detector.scan_file_with_limits(&chunk.path, &chunk.content, limits);
        skipped = scan
            .skipped
            .into_iter()
            .map(|skip| SkipRecord {
                layer_index: layer,
                what: redacted_name(detector, &skip.what),
                reason: skip.reason,
                kind: if skip.irregular {
                    SkipKind::Irregular
                } else {
                    SkipKind::NotScanned
                },
            })
            .collect();
        scan.matches
    } else {
        let mut partial = Vec::new();
        if chunk.file_offset == 0 {
            partial = partial_file_skips(detector, layer, chunk);
        }
        let mut matches = detector
            .scan(&chunk.content)
            .into_iter()
            .map(|base| FileMatch {
                base,
                archive_path: Vec::new(),
                kubernetes_secret_type: None,
                archive_package: None,
            })
            .collect();
        let mut chunk_skips = Vec::new();
        detector.annotate(&chunk.path, &mut matches, &mut chunk_skips);
        partial.extend(chunk_skips.into_iter().map(|skip| SkipRecord {
            layer_index: layer,
            what: redacted_name(detector, &skip.what),
            reason: skip.reason,
            kind: SkipKind::NotScanned,
        }));
        skipped = partial;
        matches
    };
    let mut matches: Vec<FileMatch> = matches
        .into_iter()
        .filter(|m| m.base.start < chunk.report_before)
        .collect();
    matches.sort_by_key(|m| m.base.start);
    let mut found = Vec::new();
    // Line numbers are counted incrementally over the sorted matches.
    let mut counted_to = 0usize;
    let mut lines = chunk.lines_before;
    let mut line_start = 0usize;
    for FileMatch {
        base: m,
        archive_path,
        kubernetes_secret_type,
        archive_package,
    } in matches
    {
        let between = &chunk.content[counted_to..m.start];
        if let Some(last_newline) = memchr::memrchr(b'\n', between) {
            lines += bytecount::count(between, b'\n') as u64;
            line_start = counted_to + last_newline + 1;
        }
        counted_to = m.start;
        found.push(RawFinding {
            rule: m.rule,
            secret: SecretText::Raw(String::from_utf8_lossy(&m.secret).into_owned()),
            severity: m.severity,
            details: m.details,
            layer: Some(layer),
            path: Some(Arc::clone(&chunk.path)),
            history_index: None,
            field: None,
            archive_path,
            kubernetes_secret_type,
            offset: chunk.file_offset + m.start as u64,
            length: (m.end - m.start) as u64,
            line: lines + 1,
            column: (m.start - line_start) as u64 + 1,
            digests: None,
            archive_package,
            context: None,
        });
    }
    context::attach_file_contexts(&mut found, chunk);
    if whole_file {
        attach_digests(&mut found, &chunk.content);
    }
    (found, skipped)
}

/// The file's digests, to check it against a package database: only for files with
/// matches, and only when the chunk is the whole file (the caller checks that).
fn attach_digests(found: &mut [RawFinding], content: &[u8]) {
    if found.is_empty() {
        return;
    }
    let digests = Some(Arc::new(FileDigests::of(content)));
    for finding in found {
        finding.digests = digests.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn an_abort_is_recognised_under_any_context() {
        let err = Err::<(), _>(anyhow::Error::from(Aborted))
            .context("reading app.jar from the layer")
            .context("layer 2 (sha256:aa)")
            .unwrap_err();
        assert!(is_aborted(&err));
        assert!(!is_aborted(&anyhow!("truncated layer")));
        // Its words no longer matter.
        assert!(!is_aborted(&anyhow!("scan aborted")));
    }

    /// The first chunk of a file too large to come whole.
    fn first_chunk(path: &str, head: &[u8]) -> FileChunk {
        let mut content = head.to_vec();
        content.resize(crate::layer::walk::CHUNK_SIZE, b' ');
        let report_before = content.len() - crate::layer::walk::CHUNK_OVERLAP;
        FileChunk {
            path: Arc::from(path),
            content: crate::source::bytes::Content::Owned(Arc::new(content)),
            file_offset: 0,
            lines_before: 0,
            report_before,
        }
    }

    #[test]
    fn a_file_too_large_to_come_whole_says_what_it_missed() {
        let rules = crate::detect::rules::builtin_rules().unwrap();
        let detector = Detector::new(rules).unwrap();
        let limits = Limits::default();
        let (_, skipped) = match_chunk(
            &detector,
            limits,
            2,
            &first_chunk("app/big.jar", b"PK\x03\x04"),
        );
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        assert!(
            skipped[0]
                .reason
                .starts_with("zip archive over the 128 MiB whole-file limit")
        );
        assert_eq!(
            (skipped[0].layer_index, skipped[0].kind),
            (2, SkipKind::NotScanned)
        );
        let (_, skipped) = match_chunk(
            &detector,
            limits,
            0,
            &first_chunk("run/secrets/db_password", b"x"),
        );
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        assert!(
            skipped[0]
                .reason
                .contains("64 KiB limit of path-scoped rules"),
            "{skipped:?}"
        );
        // A whole file over the path-scoped limit says so too.
        let whole = FileChunk {
            report_before: 100 << 10,
            ..first_chunk("run/secrets/db_password", b"x")
        };
        let whole = FileChunk {
            content: crate::source::bytes::Content::Owned(Arc::new(
                whole.content[..100 << 10].to_vec(),
            )),
            ..whole
        };
        let (_, skipped) = match_chunk(&detector, limits, 0, &whole);
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        assert!(
            skipped[0]
                .reason
                .contains("64 KiB limit of path-scoped rules"),
            "{skipped:?}"
        );
        // A large file of any other kind loses nothing by coming in chunks.
        let (_, skipped) = match_chunk(
            &detector,
            limits,
            0,
            &first_chunk("usr/lib/libbig.so", b"\x7fELF"),
        );
        assert!(skipped.is_empty(), "{skipped:?}");
        // Nor do the later chunks of a large archive: it is said once.
        let mut later = first_chunk("app/big.jar", b"PK\x03\x04");
        later.file_offset = 1 << 23;
        assert!(match_chunk(&detector, limits, 0, &later).1.is_empty());
    }

    #[test]
    fn the_lowest_failed_layer_is_the_error() {
        let results: WalkerResults = vec![
            (2, Err(anyhow!("layer 2 broke"))),
            (0, Ok(Default::default())),
            (1, Err(anyhow!("layer 1 broke"))),
        ];
        let err = walked_by_index(results, 3).unwrap_err();
        assert_eq!(err.to_string(), "layer 1 broke");

        let results: WalkerResults = vec![(1, Ok(Default::default()))];
        let walked = walked_by_index(results, 3).unwrap();
        assert!(walked[0].is_none() && walked[1].is_some() && walked[2].is_none());
    }
}
