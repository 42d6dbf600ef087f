//! Scanning one image: layers are walked concurrently (one walker thread per layer in flight),
//! their files are matched by the detector on the rayon pool, and the config and history text
//! is matched too. Results are tied to the timeline and turned into the report.

mod budget;
pub mod config_items;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, anyhow};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::detect::{Detector, FileMatch, Severity};
use crate::layer::{FileChunk, Status, Timeline, WalkedLayer, walk_layer_with_progress};
use crate::report::field::ConfigField;
use crate::report::model::{
    Finding, ImageReport, ImageStats, LayerReport, Location, LocationKind, SkipRecord,
};
use crate::report::redact::{fingerprint, redact, redact_in_text};
use crate::report::remediation::remediation;
use crate::source::Image;
use budget::ByteBudget;
use config_items::text_items;

/// How to scan.
#[derive(Clone, Debug)]
pub struct ScanOptions {
    /// Put secrets in the report as they are (default: redacted).
    pub show_secrets: bool,
    /// Worker threads; 0 picks the number of CPUs.
    pub threads: usize,
    /// Bytes of file content held in memory at once between walkers and detectors.
    pub memory_budget: usize,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            show_secrets: false,
            threads: 0,
            memory_budget: 64 << 20,
        }
    }
}

/// Something that wants to know how far the scan is (a progress bar).
pub trait Progress: Send + Sync {
    /// A layer starts: its index and stored size.
    fn layer_started(&self, _layer: usize, _size: u64) {}
    /// Bytes of a layer's stored blob were read (downloaded, for a registry).
    fn stored(&self, _layer: usize, _bytes: u64) {}
    /// Uncompressed bytes of a layer's files were handed to the detector.
    fn scanned(&self, _layer: usize, _bytes: u64) {}
    fn layer_done(&self, _layer: usize) {}
}

struct NoProgress;
impl Progress for NoProgress {}

/// Scans images with one rule set.
pub struct Scanner {
    detector: Arc<Detector>,
    options: ScanOptions,
    pool: rayon::ThreadPool,
    cache: Option<Arc<dyn LayerCache>>,
    /// Digest of the rule set in effect: part of every cache key, so changing rules
    /// invalidates cached results.
    rules_digest: String,
}

/// A store of per-layer results, so a layer shared by many images is scanned once. Keys hold
/// the rule-set digest and the layer's digest; values are opaque bytes. Secrets are stored
/// sealed (redacted, with their fingerprint), never in the clear.
pub trait LayerCache: Send + Sync {
    fn get(&self, key: &str) -> Option<Vec<u8>>;
    fn put(&self, key: &str, value: Vec<u8>);
}

/// Version of the cached-layer encoding, part of the key. 2: `WalkedLayer` no longer records
/// symlinks.
const CACHE_FORMAT: u32 = 2;

/// What walking and matching the layers of one image produced.
struct LayersScan {
    walked: Vec<WalkedLayer>,
    raw: Vec<RawFinding>,
    skipped: Vec<SkipRecord>,
    /// Layers served from the cache.
    from_cache: usize,
}

/// What the cache holds for one layer.
#[derive(Serialize, Deserialize)]
struct CachedLayer {
    walked: WalkedLayer,
    findings: Vec<RawFinding>,
    skipped: Vec<SkipRecord>,
}

/// A secret as held between matching and reporting. Results read back from the layer cache
/// are sealed: the cache never stores a secret in the clear.
#[derive(Clone, Debug, Serialize, Deserialize)]
enum SecretText {
    Raw(String),
    Sealed {
        redacted: String,
        fingerprint: String,
    },
}

impl SecretText {
    /// Identifies the secret for de-duplication without needing it in the clear.
    fn key(&self) -> String {
        match self {
            SecretText::Raw(raw) => raw.clone(),
            SecretText::Sealed { fingerprint, .. } => fingerprint.clone(),
        }
    }

    fn seal(&self, rule_id: &str) -> SecretText {
        match self {
            SecretText::Raw(raw) => SecretText::Sealed {
                redacted: redact(raw),
                fingerprint: fingerprint(rule_id, raw),
            },
            sealed => sealed.clone(),
        }
    }
}

/// A match tied to where it was found, before statuses and redaction.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct RawFinding {
    rule: usize,
    secret: SecretText,
    severity: Severity,
    details: Vec<(String, String)>,
    layer: Option<usize>,
    path: Option<Arc<str>>,
    history_index: Option<usize>,
    field: Option<ConfigField>,
    /// Members of nested archives leading to the secret.
    archive_path: Vec<String>,
    /// The Kubernetes Secret type a decoder learned (overrides the rule's).
    kubernetes_secret_type: Option<String>,
    /// Byte offset of the secret in its file or text item (for overlap checks).
    offset: u64,
    length: u64,
    line: u64,
    column: u64,
}

impl Scanner {
    pub fn new(detector: Arc<Detector>, options: ScanOptions) -> Result<Scanner> {
        let threads = if options.threads == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            options.threads
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("stowaway-detect-{i}"))
            .build()
            .context("cannot start worker threads")?;
        let rules_digest = crate::detect::rules::rules_digest(detector.rules());
        Ok(Scanner {
            detector,
            options: ScanOptions { threads, ..options },
            pool,
            cache: None,
            rules_digest,
        })
    }

    /// Reads and stores per-layer results in `cache`. With `--show-secrets` cached results
    /// are not read (they hold sealed secrets), only refreshed.
    pub fn with_cache(mut self, cache: Arc<dyn LayerCache>) -> Scanner {
        self.cache = Some(cache);
        self
    }

    /// The cache key of a layer, or `None` when the layer has no digest to key it by.
    fn cache_key(&self, image: &Image, index: usize) -> Option<String> {
        let layer = &image.layers[index];
        let digest = layer.diff_id.as_ref().or(layer.digest.as_ref())?;
        Some(format!(
            "layer/v{CACHE_FORMAT}/{}/{digest}",
            self.rules_digest
        ))
    }

    pub fn detector(&self) -> &Detector {
        &self.detector
    }

    /// Scans one image.
    pub fn scan_image(&self, image: &Image) -> Result<ImageReport> {
        self.scan_image_with_progress(image, &NoProgress)
    }

    pub fn scan_image_with_progress(
        &self,
        image: &Image,
        progress: &dyn Progress,
    ) -> Result<ImageReport> {
        let LayersScan {
            walked,
            mut raw,
            skipped,
            from_cache,
        } = self.scan_layers(image, progress)?;
        raw.extend(self.scan_config(image));
        let mut report = self.build_report(image, walked, raw);
        report.stats.layers_from_cache = from_cache;
        report.stats.items_skipped = skipped.len();
        report.skipped = skipped;
        Ok(report)
    }

    /// Walks every layer and matches its files. Returns each layer's walk and the matches.
    fn scan_layers(&self, image: &Image, progress: &dyn Progress) -> Result<LayersScan> {
        let layer_count = image.layers.len();
        let mut cached: Vec<Option<CachedLayer>> = (0..layer_count)
            .map(|index| self.cached_layer(image, index))
            .collect();
        let from_cache = cached.iter().filter(|c| c.is_some()).count();
        let to_walk: Vec<usize> = (0..layer_count).filter(|&i| cached[i].is_none()).collect();

        let budget = ByteBudget::new(self.options.memory_budget);
        let failed = AtomicBool::new(false);
        let next = AtomicUsize::new(0);
        let walked: Mutex<Vec<Option<Result<WalkedLayer>>>> =
            Mutex::new((0..layer_count).map(|_| None).collect());
        let (sender, receiver) = sync_channel::<(usize, FileChunk)>(256);
        let walkers = self.options.threads.clamp(1, to_walk.len().max(1));

        let (mut raw, mut skipped) = std::thread::scope(|scope| {
            for _ in 0..walkers {
                let sender = sender.clone();
                let (budget, failed, next, walked, to_walk) =
                    (&budget, &failed, &next, &walked, &to_walk);
                scope.spawn(move || {
                    loop {
                        let position = next.fetch_add(1, Ordering::SeqCst);
                        if position >= to_walk.len() || failed.load(Ordering::SeqCst) {
                            break;
                        }
                        let index = to_walk[position];
                        let layer = &image.layers[index];
                        progress.layer_started(index, layer.size);
                        let on_stored = |bytes| progress.stored(index, bytes);
                        let result = walk_layer_with_progress(layer, &on_stored, &mut |chunk| {
                            if failed.load(Ordering::SeqCst) {
                                return Err(anyhow!("scan aborted"));
                            }
                            progress.scanned(index, chunk.report_before as u64);
                            budget.acquire(chunk.content.heap_len());
                            sender
                                .send((index, chunk))
                                .map_err(|_| anyhow!("detector stopped"))
                        })
                        .with_context(|| layer_name(image, index));
                        if result.is_err() {
                            failed.store(true, Ordering::SeqCst);
                        }
                        progress.layer_done(index);
                        walked.lock().unwrap()[index] = Some(result);
                    }
                });
            }
            drop(sender);
            let detector = &self.detector;
            self.pool.install(|| {
                receiver
                    .into_iter()
                    .par_bridge()
                    .map(|(layer, chunk)| {
                        let found = match_chunk(detector, layer, &chunk);
                        budget.release(chunk.content.heap_len());
                        found
                    })
                    .reduce(
                        || (Vec::new(), Vec::new()),
                        |mut all, (findings, skipped)| {
                            all.0.extend(findings);
                            all.1.extend(skipped);
                            all
                        },
                    )
            })
        });

        let mut fresh: Vec<Option<Result<WalkedLayer>>> = walked.into_inner().unwrap();
        let mut errors = Vec::new();
        for slot in &mut fresh {
            if let Some(Err(_)) = slot
                && let Some(Err(err)) = slot.take()
            {
                errors.push(err);
            }
        }
        if !errors.is_empty() {
            // Other walkers stop with "scan aborted" once one fails; report the root cause.
            let root = errors
                .iter()
                .position(|err| !format!("{err:#}").contains("scan aborted"))
                .unwrap_or(0);
            return Err(errors.swap_remove(root));
        }

        let mut layers = Vec::with_capacity(layer_count);
        for index in 0..layer_count {
            match (cached[index].take(), fresh[index].take()) {
                (Some(hit), _) => {
                    raw.extend(hit.findings);
                    skipped.extend(hit.skipped);
                    layers.push(hit.walked);
                }
                (None, Some(Ok(walked))) => {
                    self.store_layer(image, index, &walked, &raw, &skipped);
                    layers.push(walked);
                }
                _ => return Err(anyhow!("internal error: layer {index} was not walked")),
            }
        }
        skipped.sort_by(|a, b| (a.layer_index, &a.what).cmp(&(b.layer_index, &b.what)));
        Ok(LayersScan {
            walked: layers,
            raw,
            skipped,
            from_cache,
        })
    }

    fn cached_layer(&self, image: &Image, index: usize) -> Option<CachedLayer> {
        if self.options.show_secrets {
            return None;
        }
        let bytes = self.cache.as_ref()?.get(&self.cache_key(image, index)?)?;
        // An entry that no longer decodes is ignored and overwritten after the rescan.
        let mut hit: CachedLayer = serde_json::from_slice(&bytes).ok()?;
        for finding in &mut hit.findings {
            finding.layer = Some(index);
        }
        for skip in &mut hit.skipped {
            skip.layer_index = index;
        }
        Some(hit)
    }

    fn store_layer(
        &self,
        image: &Image,
        index: usize,
        walked: &WalkedLayer,
        raw: &[RawFinding],
        skipped: &[SkipRecord],
    ) {
        let (Some(cache), Some(key)) = (&self.cache, self.cache_key(image, index)) else {
            return;
        };
        let findings = raw
            .iter()
            .filter(|f| f.layer == Some(index))
            .map(|f| RawFinding {
                secret: f.secret.seal(&self.detector.rules()[f.rule].id),
                ..f.clone()
            })
            .collect();
        let entry = CachedLayer {
            walked: walked.clone(),
            findings,
            skipped: skipped
                .iter()
                .filter(|skip| skip.layer_index == index)
                .cloned()
                .collect(),
        };
        if let Ok(bytes) = serde_json::to_vec(&entry) {
            cache.put(&key, bytes);
        }
    }

    /// Matches the config and history text.
    fn scan_config(&self, image: &Image) -> Vec<RawFinding> {
        let mut found = Vec::new();
        for item in text_items(&image.config) {
            for m in self.detector.scan(item.text.as_bytes()) {
                let (line, column) = line_and_column(item.text.as_bytes(), m.start, 0);
                found.push(RawFinding {
                    rule: m.rule,
                    secret: SecretText::Raw(String::from_utf8_lossy(&m.secret).into_owned()),
                    severity: m.severity,
                    details: m.details,
                    layer: None,
                    path: None,
                    history_index: item.history_index,
                    field: Some(item.field.clone()),
                    archive_path: Vec::new(),
                    kubernetes_secret_type: None,
                    offset: m.start as u64,
                    length: (m.end - m.start) as u64,
                    line,
                    column,
                });
            }
        }
        found
    }

    /// Ties matches to layers, history steps and statuses; redacts; sorts.
    fn build_report(
        &self,
        image: &Image,
        walked: Vec<WalkedLayer>,
        mut raw: Vec<RawFinding>,
    ) -> ImageReport {
        let history_of_layer = image.config.layer_history(image.layers.len());
        add_hard_link_names(&walked, &mut raw);
        let raw = keep_most_specific(raw, &self.detector);
        let timeline = Timeline::new(walked.iter().map(|w| w.changes.clone()).collect());

        let secrets: Vec<String> = raw
            .iter()
            .filter_map(|f| match &f.secret {
                SecretText::Raw(secret) => Some(secret.clone()),
                SecretText::Sealed { .. } => None,
            })
            .collect();
        let mut findings = Vec::with_capacity(raw.len());
        for f in raw {
            let rule = &self.detector.rules()[f.rule];
            let (kind, status, removed_in_layer) = match (f.layer, &f.path) {
                (Some(layer), Some(path)) => {
                    let (status, removed) = timeline.fate(layer, path);
                    (LocationKind::LayerFile, status, removed)
                }
                _ if f.history_index.is_some() => (LocationKind::History, Status::Present, None),
                _ => (LocationKind::Config, Status::Present, None),
            };
            let layer_digest = f.layer.and_then(|i| {
                let layer = &image.layers[i];
                layer
                    .diff_id
                    .as_ref()
                    .or(layer.digest.as_ref())
                    .map(|d| d.to_string())
            });
            let location = Location {
                kind,
                layer_index: f.layer,
                layer_digest,
                path: f.path.as_deref().map(str::to_string),
                line: Some(f.line),
                column: Some(f.column),
                archive_path: f.archive_path.clone(),
                history_index: f
                    .history_index
                    .or_else(|| f.layer.and_then(|i| history_of_layer[i])),
                field: f.field.clone(),
            };
            let (secret, fingerprint) = match &f.secret {
                SecretText::Raw(raw) if self.options.show_secrets => {
                    (raw.clone(), fingerprint(&rule.id, raw))
                }
                SecretText::Raw(raw) => (redact(raw), fingerprint(&rule.id, raw)),
                SecretText::Sealed {
                    redacted,
                    fingerprint,
                } => (redacted.clone(), fingerprint.clone()),
            };
            findings.push(Finding {
                rule_id: rule.id.clone(),
                rule_name: rule.name.clone(),
                severity: f.severity,
                secret,
                fingerprint,
                remediation: remediation(
                    f.kubernetes_secret_type
                        .as_deref()
                        .unwrap_or(&rule.kubernetes_secret_type),
                    kind,
                    f.field.as_ref(),
                    status,
                ),
                location,
                status,
                removed_in_layer,
                details: f.details.into_iter().collect(),
            });
        }
        findings.sort_by(|a, b| {
            (&a.location, &a.rule_id, &a.fingerprint).cmp(&(
                &b.location,
                &b.rule_id,
                &b.fingerprint,
            ))
        });

        let redact_history = |text: &str| {
            if self.options.show_secrets {
                text.to_string()
            } else {
                redact_in_text(text, &secrets)
            }
        };
        let layers: Vec<LayerReport> = image
            .layers
            .iter()
            .zip(&walked)
            .enumerate()
            .map(|(index, (layer, walk))| {
                let history_index = history_of_layer[index];
                LayerReport {
                    index,
                    digest: layer.digest.as_ref().map(|d| d.to_string()),
                    diff_id: layer.diff_id.as_ref().map(|d| d.to_string()),
                    media_type: layer.media_type.clone(),
                    compression: walk.compression,
                    size: layer.size,
                    files: walk.files,
                    content_bytes: walk.content_bytes,
                    history_index,
                    created_by: history_index
                        .and_then(|h| image.config.history[h].created_by.as_deref())
                        .map(redact_history),
                    skipped: walk.skipped.clone(),
                }
            })
            .collect();

        let mut stats = ImageStats {
            layers: layers.len(),
            layers_skipped: walked.iter().filter(|w| w.skipped.is_some()).count(),
            layers_from_cache: 0,
            items_skipped: 0,
            files: walked.iter().map(|w| w.files).sum(),
            content_bytes: walked.iter().map(|w| w.content_bytes).sum(),
            stored_bytes: walked.iter().map(|w| w.stored_bytes).sum(),
            findings: findings.len(),
            by_severity: BTreeMap::new(),
            deleted_but_shipped: findings
                .iter()
                .filter(|f| f.status != Status::Present)
                .count(),
        };
        for finding in &findings {
            *stats.by_severity.entry(finding.severity).or_default() += 1;
        }
        ImageReport {
            reference: image.reference.clone(),
            manifest_digest: image.manifest_digest.as_ref().map(|d| d.to_string()),
            config_digest: image.config_digest.to_string(),
            platform: image.platform.clone(),
            layers,
            findings,
            skipped: Vec::new(),
            stats,
        }
    }
}

fn layer_name(image: &Image, index: usize) -> String {
    let digest = image.layers[index]
        .digest
        .as_ref()
        .or(image.layers[index].diff_id.as_ref())
        .map(|d| format!(" ({d})"))
        .unwrap_or_default();
    format!("layer {index}{digest}")
}

/// Runs the detector on one chunk and keeps the matches this chunk owns. A chunk that holds a
/// whole file also goes through the decoders (they need the file entire).
fn match_chunk(
    detector: &Detector,
    layer: usize,
    chunk: &FileChunk,
) -> (Vec<RawFinding>, Vec<SkipRecord>) {
    let whole_file = chunk.file_offset == 0 && chunk.report_before == chunk.content.len();
    let mut skipped = Vec::new();
    let matches: Vec<FileMatch> = if whole_file {
        let scan = detector.scan_file_with_skips(&chunk.path, &chunk.content);
        skipped = scan
            .skipped
            .into_iter()
            .map(|skip| SkipRecord {
                layer_index: layer,
                what: skip.what,
                reason: skip.reason,
            })
            .collect();
        scan.matches
    } else {
        detector
            .scan(&chunk.content)
            .into_iter()
            .map(|base| FileMatch {
                base,
                archive_path: Vec::new(),
                kubernetes_secret_type: None,
            })
            .collect()
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
    } in matches
    {
        for position in memchr::memchr_iter(b'\n', &chunk.content[counted_to..m.start]) {
            lines += 1;
            line_start = counted_to + position + 1;
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
        });
    }
    (found, skipped)
}

/// 1-based line and column of `offset` in `text`.
fn line_and_column(text: &[u8], offset: usize, lines_before: u64) -> (u64, u64) {
    let before = &text[..offset];
    let line = lines_before + memchr::memchr_iter(b'\n', before).count() as u64 + 1;
    let line_start = memchr::memrchr(b'\n', before).map_or(0, |p| p + 1);
    (line, (offset - line_start) as u64 + 1)
}

/// A hard link names the same content as its target: report the target's findings under the
/// link's name too (the content was scanned once).
fn add_hard_link_names(walked: &[WalkedLayer], raw: &mut Vec<RawFinding>) {
    let mut extra = Vec::new();
    for (layer, walk) in walked.iter().enumerate() {
        if walk.hard_links.is_empty() {
            continue;
        }
        let mut by_path: HashMap<&str, Vec<&RawFinding>> = HashMap::new();
        for finding in raw.iter().filter(|f| f.layer == Some(layer)) {
            if let Some(path) = &finding.path {
                by_path.entry(path).or_default().push(finding);
            }
        }
        for link in &walk.hard_links {
            for finding in by_path.get(link.target.as_str()).into_iter().flatten() {
                let mut copy = (*finding).clone();
                copy.path = Some(Arc::from(link.path.as_str()));
                extra.push(copy);
            }
        }
    }
    raw.extend(extra);
}

/// Where several rules matched the same secret at the same place, keep one: the most severe,
/// then a specific rule over a generic one. Exact duplicates (the same match found twice,
/// e.g. through a build-arg and its raw history line) collapse too.
fn keep_most_specific(mut raw: Vec<RawFinding>, detector: &Detector) -> Vec<RawFinding> {
    let generic = |f: &RawFinding| detector.rules()[f.rule].id.starts_with("generic");
    raw.sort_by(|a, b| {
        (a.layer, &a.path, a.history_index, &a.field, a.offset).cmp(&(
            b.layer,
            &b.path,
            b.history_index,
            &b.field,
            b.offset,
        ))
    });
    let mut kept: Vec<RawFinding> = Vec::with_capacity(raw.len());
    for finding in raw {
        let overlapping = kept.iter().rposition(|k| {
            k.layer == finding.layer
                && k.path == finding.path
                && k.history_index == finding.history_index
                && k.field == finding.field
                && k.archive_path == finding.archive_path
                && k.offset < finding.offset + finding.length.max(1)
                && finding.offset < k.offset + k.length.max(1)
        });
        match overlapping {
            Some(index) => {
                let better = (finding.severity, !generic(&finding), finding.length)
                    > (
                        kept[index].severity,
                        !generic(&kept[index]),
                        kept[index].length,
                    );
                if better {
                    kept[index] = finding;
                }
            }
            None => kept.push(finding),
        }
    }
    // The same secret reported for a history step both from its raw created_by line and from
    // a parsed build-arg: keep the build-arg one, which names the argument.
    let build_arg_secrets: HashSet<(usize, String)> = kept
        .iter()
        .filter(|f| matches!(f.field, Some(ConfigField::BuildArg(_))))
        .filter_map(|f| Some((f.history_index?, f.secret.key())))
        .collect();
    kept.retain(|f| match (f.history_index, &f.field) {
        (Some(history), Some(ConfigField::CreatedBy)) => {
            !build_arg_secrets.contains(&(history, f.secret.key()))
        }
        _ => true,
    });
    kept
}
