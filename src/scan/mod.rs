//! Scanning one image: layers are walked concurrently (one walker thread per layer in flight),
//! their files are matched by the detector on the rayon pool, and the config and history text
//! is matched too. Results are tied to the timeline and turned into the report.
//!
//! - `pipeline`: the walker threads, the channel to the detector and the byte budget;
//! - `layer_cache`: per-layer results kept across scans (secrets sealed);
//! - `layer_claim`: claims on layers in a shared cache, so concurrent scans walk a layer once;
//! - `config_items`: the config and history text worth scanning;
//! - `assemble`: raw matches to findings: merged, de-duplicated, located, sorted, counted.

mod assemble;
mod budget;
pub(crate) mod config_items;
mod context;
mod group;
mod inventory;
mod layer_cache;
mod layer_claim;
mod packages;
mod pipeline;
mod raw;
mod skip;

use std::sync::Arc;

use anyhow::{Context, Result};

use crate::detect::{Detector, Limits};
use crate::report::model::ImageReport;
use crate::source::Image;
use config_items::text_items;
pub use layer_cache::LayerCache;
pub(crate) use layer_cache::key_prefix as layer_key_prefix;
pub(crate) use layer_claim::CLAIM_TTL as LAYER_CLAIM_TTL;
use pipeline::LayersScan;
use raw::{RawFinding, SecretText, line_and_column};
pub use skip::SkipPaths;

/// How to scan.
#[derive(Clone, Debug)]
pub struct ScanOptions {
    /// Put secrets in the report as they are (default: redacted).
    pub show_secrets: bool,
    /// Worker threads; 0 picks the number of CPUs.
    pub threads: usize,
    /// Bytes of file content held in memory at once between walkers and detectors: read
    /// into the heap, or mapped pages the detector makes resident. 32 MiB by default: four
    /// full chunks, enough to keep the detector threads of a small machine busy (the scans
    /// of the toolchain bench image took as long with 64 MiB) while the peak resident set
    /// stays well under 300 MB.
    pub memory_budget: usize,
    /// Findings listed per file (or history or config item), the most severe first; the rest
    /// are counted in the report's `not_listed`. 0 lists every finding.
    pub max_findings_per_file: usize,
    /// How far the decoders open nested archives in one file (`--max-archive-*`).
    pub archive_limits: Limits,
    /// Files not to scan (`--skip-dirs`, `--skip-files`).
    pub skip: SkipPaths,
}

/// The default of [`ScanOptions::max_findings_per_file`]: enough to show what a file holds
/// and where, few enough that a dump of keys cannot bury the rest of the report.
pub const DEFAULT_MAX_FINDINGS_PER_FILE: usize = 100;

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            show_secrets: false,
            threads: 0,
            memory_budget: 32 << 20,
            max_findings_per_file: DEFAULT_MAX_FINDINGS_PER_FILE,
            archive_limits: Limits::default(),
            skip: SkipPaths::default(),
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
    /// A walker has finished reading a layer, or given up on it after an error; the detector
    /// may still be matching its last chunks. Layers served from the cache get no calls.
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
    /// Digest of the rule set in effect, and of the archive limits when not the defaults
    /// (see [`Scanner::cache_digest`]): part of every cache key, so changing rules or limits
    /// invalidates cached results.
    rules_digest: String,
}

impl Scanner {
    /// A scanner with `detector`'s rules and its own pool of `options.threads` detector
    /// threads (one per CPU when 0), without a layer cache (see [`Scanner::with_cache`]).
    /// Fails only when the threads cannot be started.
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
        let rules_digest = cache_digest(
            detector.rules_digest(),
            &options.archive_limits,
            &options.skip,
        );
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

    /// The rule set this scanner matches with.
    pub fn detector(&self) -> &Detector {
        &self.detector
    }

    /// What its results are cached under: the rules digest, and the archive limits when they
    /// are not the defaults (a layer scanned with other limits may have found more, or less).
    pub fn cache_digest(&self) -> &str {
        &self.rules_digest
    }

    /// `err` as one line with every secret the rules find in it redacted as in findings.
    /// Errors about an image quote what the image says of itself (tags, ref names, member
    /// paths in `manifest.json`, a misframed tar header's "name"); that text is input like any
    /// other, so it leaves the process (stderr, the server's log and `/reports`) only this way.
    pub fn redacted_error(&self, err: &anyhow::Error) -> anyhow::Error {
        let text = format!("{err:#}").replace(['\n', '\r'], " ");
        anyhow::anyhow!(pipeline::redacted_name(&self.detector, &text))
    }

    /// Scans one image.
    pub fn scan_image(&self, image: &Image) -> Result<ImageReport> {
        self.scan_image_with_progress(image, &NoProgress)
    }

    /// [`Scanner::scan_image`], telling `progress` how far the layers are as they are read and
    /// matched.
    pub fn scan_image_with_progress(
        &self,
        image: &Image,
        progress: &dyn Progress,
    ) -> Result<ImageReport> {
        let LayersScan {
            walked,
            packages,
            mut raw,
            skipped,
            over_limit,
            from_cache,
        } = self.scan_layers(image, progress)?;
        raw.extend(self.scan_config(image));
        release_freed_memory();
        let mut report = self.build_report(image, walked, &packages, raw, over_limit);
        report.stats.layers_from_cache = from_cache;
        let irregular = skipped.iter().filter(|s| !s.is_not_scanned()).count();
        report.stats.items_irregular = irregular;
        report.stats.items_skipped = skipped.len() - irregular;
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
                    digests: None,
                    archive_package: None,
                    context: None,
                });
            }
        }
        found
    }
}

/// The rules digest, followed by the archive limits when they are not the defaults, and by a
/// digest of the skipped paths when some are.
fn cache_digest(rules_digest: &str, limits: &Limits, skip: &SkipPaths) -> String {
    let mut digest = rules_digest.to_string();
    if *limits != Limits::default() {
        digest.push_str(&format!(
            "+archives-{}-{}-{}",
            limits.max_archive_depth, limits.max_decompressed_bytes, limits.max_members
        ));
    }
    if !skip.is_empty() {
        use sha2::{Digest, Sha256};
        // Hashed: globs hold `/` and `*`, which keys must not.
        let hash = Sha256::digest(skip.cache_key().as_bytes());
        digest.push_str(&format!("+skip-{}", hex::encode(&hash[..8])));
    }
    digest
}

/// Returns to the system the memory the layer walk has freed, before the report is built.
/// glibc keeps what each worker thread frees in that thread's arena, where the report (built on
/// this thread) cannot reuse it: on an image of 40,000 layers that was over 100 MB of resident
/// memory doing nothing at the run's peak. The chunk buffers the walk kept for reuse go too.
fn release_freed_memory() {
    crate::layer::release_chunk_buffers();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free pages of the allocator's own arenas; it takes no
    // pointer and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_archive_limits_are_cached_apart() {
        let defaults = Limits::default();
        let none = SkipPaths::default();
        assert_eq!(cache_digest("abc", &defaults, &none), "abc");
        let deeper = Limits {
            max_archive_depth: 5,
            ..defaults
        };
        let digest = cache_digest("abc", &deeper, &none);
        assert!(digest.starts_with("abc+archives-5-") && !digest.contains('/'));
        let more = Limits {
            max_members: 20,
            ..defaults
        };
        assert_ne!(cache_digest("abc", &more, &none), digest);
    }

    #[test]
    fn skipped_paths_are_cached_apart() {
        let skip = SkipPaths::new(&["usr/share/**".into()], &[]).unwrap();
        let digest = cache_digest("abc", &Limits::default(), &skip);
        assert!(digest.starts_with("abc+skip-") && !digest.contains('/') && !digest.contains('*'));
        let other = SkipPaths::new(&[], &["usr/share/**".into()]).unwrap();
        assert_ne!(cache_digest("abc", &Limits::default(), &other), digest);
    }
}
