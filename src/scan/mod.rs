//! Scanning one image: layers are walked concurrently (one walker thread per layer in flight),
//! their files are matched by the detector on the rayon pool, and the config and history text
//! is matched too. Results are tied to the timeline and turned into the report.
//!
//! - [`pipeline`]: the walker threads, the channel to the detector and the byte budget;
//! - [`layer_cache`]: per-layer results kept across scans (secrets sealed);
//! - [`config_items`]: the config and history text worth scanning;

mod budget;
pub mod config_items;
mod layer_cache;
mod pipeline;
mod raw;

use std::sync::Arc;

use anyhow::{Context, Result};

use crate::detect::Detector;
use crate::layer::{Status, Timeline, WalkedLayer};
use crate::report::field::ConfigField;
use crate::report::model::{Finding, ImageReport, ImageStats, LayerReport, Location, LocationKind};
use crate::report::redact::{fingerprint, redact, redact_in_text};
use crate::report::remediation::remediation;
use crate::source::Image;
use config_items::text_items;
pub use layer_cache::LayerCache;
use pipeline::LayersScan;
use raw::{RawFinding, SecretText, line_and_column};
use std::collections::{BTreeMap, HashMap, HashSet};

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
        let overlapping = kept.iter().rposition(|k| k.overlaps(&finding));
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
