//! The result cache shared by `stowaway scan` and `stowaway serve`: an embedded on-disk store
//! ([redb](https://docs.rs/redb), one file, ACID, pure Rust) under the user cache directory.
//!
//! Two tables:
//! - `layers`: per-layer scan results ([`LayerCache`]), keyed by the scanner with the rule-set
//!   digest and the layer digest, so a layer shared by many images is scanned once and a
//!   change of rules invalidates every entry.
//! - `reports`: whole-image reports (the JSON a one-image `--format json` report holds),
//!   keyed by rule-set digest and manifest digest, so the server answers admissions and
//!   `GET /reports/{digest}` without scanning again.
//!
//! Values are zstd-compressed. Secrets are never stored in the clear: the scanner seals layer
//! results (redacted text and fingerprint), and reports are stored only when built redacted.
//!
//! redb takes an exclusive lock on its file: a second process that opens the same cache
//! directory gets an error that says so, and `stowaway scan` then runs without the cache.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};

use crate::report::{ImageReport, Report};
use crate::scan::LayerCache;

const LAYERS: TableDefinition<&str, &[u8]> = TableDefinition::new("layers");
const REPORTS: TableDefinition<&str, &[u8]> = TableDefinition::new("reports");

/// File name of the store inside the cache directory.
pub const FILE_NAME: &str = "cache-v1.redb";

/// Version of the report-store encoding, part of every report key. 2: findings carry package
/// provenance (vendor content lowered to info), so a report stored before must not decide. 3:
/// one finding per secret with its other places, masked lines, paths with a leading `/`.
const REPORT_FORMAT: u32 = 3;

/// zstd level for stored values: fast, and layer walks (path lists) compress well.
const ZSTD_LEVEL: i32 = 3;

/// The on-disk result cache.
pub struct Cache {
    db: Database,
    path: PathBuf,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache").field("path", &self.path).finish()
    }
}

/// Counts of entries in the store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheCounts {
    pub layers: u64,
    pub reports: u64,
}

/// The default cache directory: `$XDG_CACHE_HOME/stowaway`, else `~/.cache/stowaway`; `None`
/// when neither variable is set.
pub fn default_dir() -> Option<PathBuf> {
    let non_empty = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    if let Some(xdg) = non_empty("XDG_CACHE_HOME") {
        return Some(PathBuf::from(xdg).join("stowaway"));
    }
    non_empty("HOME").map(|home| PathBuf::from(home).join(".cache").join("stowaway"))
}

impl Cache {
    /// Opens (creating when needed) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Cache> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create cache directory", dir.display()))?;
        let path = dir.join(FILE_NAME);
        let db = Database::create(&path).map_err(|err| match err {
            redb::DatabaseError::DatabaseAlreadyOpen => anyhow!(
                "{}: the cache is in use by another stowaway process",
                path.display()
            ),
            other => anyhow!("{}: cannot open cache: {other}", path.display()),
        })?;
        // Create both tables up front so readers never meet a missing table.
        let txn = db.begin_write().context("cache: begin write")?;
        txn.open_table(LAYERS).context("cache: layers table")?;
        txn.open_table(REPORTS).context("cache: reports table")?;
        txn.commit().context("cache: commit")?;
        Ok(Cache { db, path })
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The key of an image report: rule-set digest and manifest digest.
    pub fn report_key(rules_digest: &str, manifest_digest: &str) -> String {
        format!("report/v{REPORT_FORMAT}/{rules_digest}/{manifest_digest}")
    }

    /// The stored report JSON for a manifest digest under a rule set.
    pub fn get_report(&self, rules_digest: &str, manifest_digest: &str) -> Option<Vec<u8>> {
        self.read(REPORTS, &Cache::report_key(rules_digest, manifest_digest))
    }

    /// Stores a report's JSON for a manifest digest under a rule set (it must be redacted).
    pub fn put_report(&self, rules_digest: &str, manifest_digest: &str, json: &[u8]) -> Result<()> {
        self.write(
            REPORTS,
            &Cache::report_key(rules_digest, manifest_digest),
            json,
        )
    }

    /// How many entries each table holds.
    pub fn counts(&self) -> Result<CacheCounts> {
        let txn = self.db.begin_read().context("cache: begin read")?;
        Ok(CacheCounts {
            layers: txn.open_table(LAYERS)?.len()?,
            reports: txn.open_table(REPORTS)?.len()?,
        })
    }

    /// Removes the layer results and reports that this build cannot read, and returns how many
    /// went. Keys are `KIND/vFORMAT/RULES_DIGEST/DIGEST`; entries stored under other rules or
    /// an older encoding can never be read by a process with these rules, so a long-running
    /// server that was upgraded would otherwise keep them forever.
    pub fn drop_unreadable(&self, rules_digest: &str) -> Result<usize> {
        let txn = self.db.begin_write().context("cache: begin write")?;
        let mut dropped = 0;
        let readable = [
            (LAYERS, crate::scan::layer_key_prefix(rules_digest)),
            (REPORTS, Cache::report_key(rules_digest, "")),
        ];
        for (definition, prefix) in readable {
            let mut table = txn.open_table(definition).context("cache: open table")?;
            let stale: Vec<String> = table
                .iter()
                .context("cache: read keys")?
                .filter_map(|entry| entry.ok())
                .map(|(key, _)| key.value().to_string())
                .filter(|key| !key.starts_with(&prefix))
                .collect();
            for key in &stale {
                table.remove(key.as_str()).context("cache: remove")?;
            }
            dropped += stale.len();
        }
        txn.commit()
            .with_context(|| format!("{}: cannot write cache", self.path.display()))?;
        Ok(dropped)
    }

    fn read(&self, table: TableDefinition<&str, &[u8]>, key: &str) -> Option<Vec<u8>> {
        let txn = self.db.begin_read().ok()?;
        let table = txn.open_table(table).ok()?;
        let value = table.get(key).ok()??;
        // An entry that no longer decodes reads as a miss and is overwritten later.
        zstd::decode_all(value.value()).ok()
    }

    fn write(&self, table: TableDefinition<&str, &[u8]>, key: &str, value: &[u8]) -> Result<()> {
        let packed = zstd::encode_all(value, ZSTD_LEVEL).context("cache: compress")?;
        let txn = self.db.begin_write().context("cache: begin write")?;
        {
            let mut table = txn.open_table(table).context("cache: open table")?;
            table
                .insert(key, packed.as_slice())
                .context("cache: insert")?;
        }
        txn.commit()
            .with_context(|| format!("{}: cannot write cache", self.path.display()))?;
        Ok(())
    }
}

/// The cache `stowaway scan` uses: `--cache-dir`, else the default directory; `None` with
/// `--no-cache`, or (after a warning unless `quiet`) when the cache cannot be opened, for
/// example while a server holds it: the scan then runs without it.
pub fn open_for_scan(dir: Option<&Path>, no_cache: bool, quiet: bool) -> Option<Arc<Cache>> {
    if no_cache {
        return None;
    }
    let dir = dir.map(Path::to_path_buf).or_else(default_dir)?;
    match Cache::open(&dir) {
        Ok(cache) => Some(Arc::new(cache)),
        Err(err) => {
            if !quiet {
                eprintln!("stowaway: warning: scanning without the cache: {err:#}");
            }
            None
        }
    }
}

/// Stores one image's report (a one-image JSON report) under its manifest digest, so the
/// server can answer for an image the CLI scanned. Reports holding clear-text secrets
/// (`--show-secrets`) and images without a manifest digest are not stored.
pub fn store_image_report(
    cache: &Cache,
    rules_digest: &str,
    image: &ImageReport,
    show_secrets: bool,
) {
    let Some(digest) = image.manifest_digest.as_deref().filter(|_| !show_secrets) else {
        return;
    };
    let report = Report::new(vec![image.clone()], 0);
    if let Ok(json) = serde_json::to_vec_pretty(&report) {
        let _ = cache.put_report(rules_digest, digest, &json);
    }
}

impl LayerCache for Cache {
    fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.read(LAYERS, key)
    }

    fn put(&self, key: &str, value: Vec<u8>) {
        // A cache that cannot be written only costs a rescan later.
        let _ = self.write(LAYERS, key, &value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_layers_and_reports_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let cache = Cache::open(dir.path()).unwrap();
            assert_eq!(cache.get("layer/v1/r/sha256:aa"), None);
            cache.put("layer/v1/r/sha256:aa", b"walked".to_vec());
            cache
                .put_report("rules1", "sha256:bb", b"{\"x\":1}")
                .unwrap();
            assert_eq!(cache.get("layer/v1/r/sha256:aa").unwrap(), b"walked");
            assert_eq!(
                cache.counts().unwrap(),
                CacheCounts {
                    layers: 1,
                    reports: 1
                }
            );
        }
        let cache = Cache::open(dir.path()).unwrap();
        assert_eq!(cache.get("layer/v1/r/sha256:aa").unwrap(), b"walked");
        assert_eq!(
            cache.get_report("rules1", "sha256:bb").unwrap(),
            b"{\"x\":1}"
        );
        // Another rule set sees nothing.
        assert_eq!(cache.get_report("rules2", "sha256:bb"), None);
    }

    #[test]
    fn entries_of_other_rule_sets_and_encodings_can_be_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let current = format!("{}sha256:aa", crate::scan::layer_key_prefix("current"));
        cache.put(&current, b"kept".to_vec());
        cache.put("layer/v0/current/sha256:aa", b"older encoding".to_vec());
        cache.put(
            &format!("{}sha256:aa", crate::scan::layer_key_prefix("old")),
            b"other rules".to_vec(),
        );
        cache.put_report("current", "sha256:bb", b"{}").unwrap();
        cache.put_report("old", "sha256:bb", b"{}").unwrap();
        cache.put_report("older", "sha256:cc", b"{}").unwrap();
        assert_eq!(cache.drop_unreadable("current").unwrap(), 4);
        assert_eq!(
            cache.counts().unwrap(),
            CacheCounts {
                layers: 1,
                reports: 1
            }
        );
        assert_eq!(cache.get(&current).unwrap(), b"kept");
        assert!(cache.get_report("current", "sha256:bb").is_some());
        assert_eq!(cache.drop_unreadable("current").unwrap(), 0);
    }

    #[test]
    fn a_second_open_of_the_same_directory_is_refused_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Cache::open(dir.path()).unwrap();
        let err = Cache::open(dir.path()).unwrap_err();
        assert!(format!("{err:#}").contains("in use"), "{err:#}");
    }

    #[test]
    fn default_dir_follows_xdg_then_home() {
        // Read-only check of the rule on whatever this process has; no env mutation (tests
        // run in parallel).
        if let Some(dir) = default_dir() {
            assert!(dir.ends_with("stowaway"));
        }
    }
}
