//! The embedded result store, the default of `stowaway scan` and `stowaway serve`: an on-disk
//! store ([redb](https://docs.rs/redb), one file, ACID, pure Rust) under the user cache
//! directory, for one process at a time.
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

use anyhow::{Context, Result, anyhow};
use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};

use super::{CacheCounts, ResultStore, pack, report_key, unpack};
use crate::scan::LayerCache;

const LAYERS: TableDefinition<&str, &[u8]> = TableDefinition::new("layers");
const REPORTS: TableDefinition<&str, &[u8]> = TableDefinition::new("reports");

/// File name of the store inside the cache directory.
pub const FILE_NAME: &str = "cache-v1.redb";

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

    fn read(&self, table: TableDefinition<&str, &[u8]>, key: &str) -> Option<Vec<u8>> {
        let txn = self.db.begin_read().ok()?;
        let table = txn.open_table(table).ok()?;
        let value = table.get(key).ok()??;
        unpack(value.value())
    }

    fn write(&self, table: TableDefinition<&str, &[u8]>, key: &str, value: &[u8]) -> Result<()> {
        let packed = pack(value)?;
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

impl ResultStore for Cache {
    fn get_report(&self, rules_digest: &str, manifest_digest: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.read(REPORTS, &report_key(rules_digest, manifest_digest)))
    }

    fn put_report(&self, rules_digest: &str, manifest_digest: &str, json: &[u8]) -> Result<()> {
        self.write(REPORTS, &report_key(rules_digest, manifest_digest), json)
    }

    fn counts(&self) -> Result<Option<CacheCounts>> {
        let txn = self.db.begin_read().context("cache: begin read")?;
        Ok(Some(CacheCounts {
            layers: txn.open_table(LAYERS)?.len()?,
            reports: txn.open_table(REPORTS)?.len()?,
        }))
    }

    /// Removes the layer results and reports that this build cannot read, and returns how many
    /// went. Keys are `KIND/vFORMAT/RULES_DIGEST/DIGEST`; entries stored under other rules or
    /// an older encoding can never be read by a process with these rules, so a long-running
    /// server that was upgraded would otherwise keep them forever.
    fn drop_unreadable(&self, rules_digest: &str) -> Result<usize> {
        let txn = self.db.begin_write().context("cache: begin write")?;
        let mut dropped = 0;
        let readable = [
            (LAYERS, crate::scan::layer_key_prefix(rules_digest)),
            (REPORTS, report_key(rules_digest, "")),
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

    fn describe(&self) -> String {
        self.path.display().to_string()
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
                Some(CacheCounts {
                    layers: 1,
                    reports: 1
                })
            );
        }
        let cache = Cache::open(dir.path()).unwrap();
        assert_eq!(cache.get("layer/v1/r/sha256:aa").unwrap(), b"walked");
        assert_eq!(
            cache.get_report("rules1", "sha256:bb").unwrap().unwrap(),
            b"{\"x\":1}"
        );
        // Another rule set sees nothing.
        assert_eq!(cache.get_report("rules2", "sha256:bb").unwrap(), None);
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
            Some(CacheCounts {
                layers: 1,
                reports: 1
            })
        );
        assert_eq!(cache.get(&current).unwrap(), b"kept");
        assert!(cache.get_report("current", "sha256:bb").unwrap().is_some());
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
