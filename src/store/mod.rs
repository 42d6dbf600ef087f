//! Where scan results live, for `stowaway scan` and `stowaway serve`: one interface
//! ([`ResultStore`]) with two backends.
//!
//! - The embedded store (`embedded.rs`, redb under `--cache-dir`), the default: one file, one
//!   process at a time.
//! - A Redis-protocol server (`redis.rs`, `--store redis://…` or `rediss://…`; Redis 7 and
//!   Valkey), shared by every server replica and every CLI pointed at it, so a layer or an image
//!   is scanned once for all of them and every replica decides an admission from the same
//!   report.
//!
//! Both hold the same entries under the same keys: layer results ([`LayerCache`]) and
//! whole-image reports, keyed by the rule-set digest and an encoding version, so entries of
//! other rules are never read. The shared store also keeps tag → digest answers, which a single
//! process keeps in memory. Values are zstd-compressed, and secrets are never stored in the
//! clear: the scanner seals layer results, and reports are stored only when built redacted.

pub mod embedded;
pub mod queue;
pub mod redis;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

use crate::report::{ImageReport, Report};
use crate::scan::LayerCache;
pub use embedded::{Cache, default_dir};

/// Version of the report-store encoding, part of every report key. 2: findings carry package
/// provenance (vendor content lowered to info), so a report stored before must not decide. 3:
/// one finding per secret with its other places, masked lines, paths with a leading `/`.
const REPORT_FORMAT: u32 = 3;

/// zstd level for stored values: fast, and layer walks (path lists) compress well.
const ZSTD_LEVEL: i32 = 3;

/// Counts of entries in a store that can count them cheaply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheCounts {
    pub layers: u64,
    pub reports: u64,
}

/// A store of scan results: layer results (through [`LayerCache`]), image reports and, when
/// shared, tag → digest answers.
pub trait ResultStore: LayerCache {
    /// The stored report JSON for a manifest digest under a rule set; an error when the store
    /// cannot be asked (see [`Unavailable`]).
    fn get_report(&self, rules_digest: &str, manifest_digest: &str) -> Result<Option<Vec<u8>>>;
    /// Stores a report's JSON for a manifest digest under a rule set (it must be redacted).
    fn put_report(&self, rules_digest: &str, manifest_digest: &str, json: &[u8]) -> Result<()>;
    /// The digest another process found for an image name (`registry/repo:tag`) lately. A
    /// single process keeps these in memory, so only a shared store has them.
    fn get_tag(&self, _name: &str) -> Option<String> {
        None
    }
    /// Shares a tag → digest answer for `ttl`.
    fn put_tag(&self, _name: &str, _digest: &str, _ttl: Duration) {}
    /// Whether the store answers now, with its entry counts when it can count them cheaply:
    /// what `/readyz` reports.
    fn counts(&self) -> Result<Option<CacheCounts>>;
    /// Removes the entries this build cannot read (other rules, older encodings); returns how
    /// many went. A shared store lets them expire instead.
    fn drop_unreadable(&self, rules_digest: &str) -> Result<usize>;
    /// Where the store is, for logs: a path, or a URL with its password masked.
    fn describe(&self) -> String;
}

/// The error of a store that cannot be reached (down, timed out, connection dropped), as
/// opposed to one that answered with an error: callers carry on without it.
#[derive(Debug)]
pub struct Unavailable(pub String);

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unavailable {}

/// Whether `err` says the store could not be reached (rather than refused or misconfigured).
pub fn is_unavailable(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| cause.is::<Unavailable>())
}

/// How a process chose its store on the command line.
#[derive(Debug, Clone)]
pub struct StoreArgs<'a> {
    /// `--store URL` (or `STOWAWAY_STORE`): a shared store; wins over `cache_dir`.
    pub url: Option<&'a str>,
    /// `--cache-dir`: the embedded store's directory (else the user cache directory).
    pub cache_dir: Option<&'a Path>,
    /// How long shared entries live without being read.
    pub ttl: Duration,
}

/// The key of an image report: rule-set digest and manifest digest.
pub fn report_key(rules_digest: &str, manifest_digest: &str) -> String {
    format!("report/v{REPORT_FORMAT}/{rules_digest}/{manifest_digest}")
}

/// A value as stored: zstd-compressed.
fn pack(value: &[u8]) -> Result<Vec<u8>> {
    zstd::encode_all(value, ZSTD_LEVEL).context("store: compress")
}

/// A stored value read back; one that no longer decodes reads as a miss and is overwritten
/// later.
fn unpack(stored: &[u8]) -> Option<Vec<u8>> {
    zstd::decode_all(stored).ok()
}

/// The store `stowaway serve` runs on. A shared store that cannot be reached at start is said
/// once and the server starts anyway: `/readyz` fails until the store answers, and the server
/// recovers by itself when it does. A URL that cannot be read, or credentials the store
/// refuses, are errors.
pub fn open_for_serve(args: &StoreArgs, observer: Option<redis::Observer>) -> Result<Opened> {
    if let Some(url) = args.url {
        let store = redis::RedisStore::open(url, args.ttl, observer)?;
        match store.check() {
            Ok(()) => {}
            Err(err) if is_unavailable(&err) => {
                eprintln!("stowaway serve: warning: {err:#}; not ready until it answers")
            }
            Err(err) => return Err(err),
        }
        let shared = Arc::new(store);
        return Ok(Opened {
            store: Arc::clone(&shared) as Arc<dyn ResultStore>,
            shared: Some(shared),
        });
    }
    let dir = match args.cache_dir {
        Some(dir) => dir.to_path_buf(),
        None => default_dir().ok_or_else(|| {
            anyhow!("no cache directory: set XDG_CACHE_HOME or HOME, or give --cache-dir")
        })?,
    };
    Ok(Opened {
        store: Arc::new(Cache::open(&dir)?),
        shared: None,
    })
}

/// The store a server opened; the shared one again, for the work queue on its server.
pub struct Opened {
    pub store: Arc<dyn ResultStore>,
    pub shared: Option<Arc<redis::RedisStore>>,
}

/// The store `stowaway scan` uses: `--store`, else `--cache-dir` or the default directory;
/// `None` with `--no-cache`. A store that cannot be reached or opened (a shared store that is
/// down, an embedded one a server holds) is a one-line warning (unless `quiet`) and the scan
/// runs without it; a URL that cannot be read or credentials the store refuses are errors.
pub fn open_for_scan(
    args: &StoreArgs,
    no_cache: bool,
    quiet: bool,
) -> Result<Option<Arc<dyn ResultStore>>> {
    if no_cache {
        return Ok(None);
    }
    let warn = |err: &anyhow::Error| {
        if !quiet {
            eprintln!("stowaway: warning: scanning without the cache: {err:#}");
        }
    };
    if let Some(url) = args.url {
        let store = redis::RedisStore::open(url, args.ttl, None)?;
        return match store.check() {
            Ok(()) => Ok(Some(Arc::new(store))),
            Err(err) if is_unavailable(&err) => {
                warn(&err);
                Ok(None)
            }
            Err(err) => Err(err),
        };
    }
    let Some(dir) = args.cache_dir.map(Path::to_path_buf).or_else(default_dir) else {
        return Ok(None);
    };
    match Cache::open(&dir) {
        Ok(cache) => Ok(Some(Arc::new(cache))),
        Err(err) => {
            warn(&err);
            Ok(None)
        }
    }
}

/// Stores one image's report (a one-image JSON report) under its manifest digest, so the
/// server can answer for an image the CLI scanned. Reports holding clear-text secrets
/// (`--show-secrets`) and images without a manifest digest are not stored.
pub fn store_image_report(
    store: &dyn ResultStore,
    rules_digest: &str,
    image: &ImageReport,
    show_secrets: bool,
) {
    let Some(digest) = image.manifest_digest.as_deref().filter(|_| !show_secrets) else {
        return;
    };
    let report = Report::new(vec![image.clone()], 0);
    if let Ok(json) = serde_json::to_vec_pretty(&report) {
        let _ = store.put_report(rules_digest, digest, &json);
    }
}

/// `url` with its password (and a user name given alone, which Redis reads as a password)
/// replaced by `***`: what every log line and error shows of a store URL.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        // Not a URL: show none of it, it may be a password pasted in the wrong place.
        return "(not a URL)".to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_string();
    };
    let user = match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None => "***".to_string(),
    };
    format!("{scheme}://{user}@{host}{path}")
}

/// The scheme check every `--store` value passes before anything else reads it.
fn check_scheme(url: &str) -> Result<()> {
    if url.starts_with("redis://") || url.starts_with("rediss://") {
        return Ok(());
    }
    bail!(
        "--store {}: expected redis://[USER:PASSWORD@]HOST[:PORT][/DB] or rediss://… (TLS); the embedded store is chosen with --cache-dir",
        redact_url(url)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show_in_a_redacted_url() {
        assert_eq!(
            redact_url("redis://stowaway:s3cret@redis.example:6379/2"),
            "redis://stowaway:***@redis.example:6379/2"
        );
        assert_eq!(
            redact_url("rediss://:s3cret@redis.example"),
            "rediss://:***@redis.example"
        );
        assert_eq!(
            redact_url("redis://s3cret@redis.example"),
            "redis://***@redis.example"
        );
        // An @ in the password: the host is what follows the last one.
        assert_eq!(redact_url("redis://u:a@b@host:1"), "redis://u:***@host:1");
        assert_eq!(redact_url("redis://host:6379"), "redis://host:6379");
        assert_eq!(redact_url("s3cret"), "(not a URL)");
    }

    #[test]
    fn only_redis_urls_are_stores() {
        assert!(check_scheme("redis://localhost").is_ok());
        assert!(check_scheme("rediss://localhost").is_ok());
        let err = check_scheme("http://u:s3cret@localhost").unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("--store http://u:***@localhost"), "{text}");
        assert!(!text.contains("s3cret"), "{text}");
    }
}
