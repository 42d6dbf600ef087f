//! The finding model: what every printer renders and what `--format json` emits (versioned).
//! Secrets are redacted when the report is built, so no printer can leak one by mistake.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::field::ConfigField;

use crate::detect::Severity;
use crate::layer::{Compression, Status};

/// Version of the JSON report layout; bumped on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    pub tool: Tool,
    pub images: Vec<ImageReport>,
    pub stats: Stats,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

impl Default for Tool {
    fn default() -> Self {
        Tool {
            name: "stowaway".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ImageReport {
    pub reference: String,
    pub manifest_digest: Option<String>,
    pub config_digest: String,
    pub platform: Option<String>,
    pub layers: Vec<LayerReport>,
    pub findings: Vec<Finding>,
    /// What was not scanned and why (archive limits, unreadable members): counted, never
    /// dropped silently.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkipRecord>,
    pub stats: ImageStats,
}

/// Something left unscanned inside a layer, with the reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkipRecord {
    pub layer_index: usize,
    /// The file, and the archive members leading to it (`app.jar!/lib/x.jar`).
    pub what: String,
    pub reason: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LayerReport {
    pub index: usize,
    pub digest: Option<String>,
    pub diff_id: Option<String>,
    pub media_type: Option<String>,
    pub compression: Option<Compression>,
    /// Stored (compressed) size in bytes.
    pub size: u64,
    /// Regular files in the layer.
    pub files: u64,
    /// Uncompressed bytes of file content scanned.
    pub content_bytes: u64,
    pub history_index: Option<usize>,
    /// The history step that made the layer (secrets found in it are redacted here too).
    pub created_by: Option<String>,
    /// Why the layer was not scanned, when it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Finding {
    pub rule_id: String,
    pub rule_name: String,
    pub severity: Severity,
    /// Redacted unless `--show-secrets`.
    pub secret: String,
    /// Stable hash of rule and secret, for baselines: the same leaked key matches wherever it
    /// moves.
    pub fingerprint: String,
    pub location: Location,
    pub status: Status,
    pub removed_in_layer: Option<usize>,
    pub remediation: Remediation,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, String>,
}

/// Where a secret was found.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Location {
    pub kind: LocationKind,
    pub layer_index: Option<usize>,
    pub layer_digest: Option<String>,
    pub path: Option<String>,
    pub line: Option<u64>,
    pub column: Option<u64>,
    /// The chain of members inside nested archives (outermost first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub archive_path: Vec<String>,
    pub history_index: Option<usize>,
    /// Config field (`Env DB_PASSWORD`, `Labels x`, `Cmd`) or history field (`created_by`,
    /// `build-arg NPM_TOKEN`).
    pub field: Option<ConfigField>,
}

impl Location {
    /// The field's report wording (`Env DB_PASSWORD`), or `default` when the location names no
    /// field.
    pub fn field_or(&self, default: &str) -> String {
        self.field
            .as_ref()
            .map_or_else(|| default.to_string(), ConfigField::to_string)
    }

    /// A stable, readable URI-reference for the location, used by the SARIF and GitLab printers
    /// and in baselines: `layer/<index>/<path>` for files (members of nested archives appended
    /// as `!/<member>`), `history/<index>` for history steps and `config/<field>` for config
    /// fields (`config/Env/DB_PASSWORD`). Layer indexes (0-based, as in `layer_index`) are used
    /// rather than digests because a rebuilt layer gets a new digest while the leak stays put,
    /// and code-scanning alerts are tracked by URI. Characters that may not appear in a URI
    /// path are percent-encoded.
    pub fn uri(&self) -> String {
        match self.kind {
            LocationKind::LayerFile => {
                let mut uri = format!("layer/{}", self.layer_index.unwrap_or_default());
                let path = self.path.as_deref().unwrap_or_default();
                let path = path.trim_start_matches('/');
                if !path.is_empty() {
                    uri.push('/');
                    uri.push_str(&encode_uri_path(path));
                }
                for member in &self.archive_path {
                    uri.push_str("!/");
                    uri.push_str(&encode_uri_path(member.trim_start_matches('/')));
                }
                uri
            }
            LocationKind::History => {
                format!("history/{}", self.history_index.unwrap_or_default())
            }
            LocationKind::Config => {
                let field = self
                    .field
                    .as_ref()
                    .map_or("unknown".into(), ConfigField::uri_path);
                format!("config/{}", encode_uri_path(&field))
            }
        }
    }
}

/// Percent-encodes every byte that is not allowed in a URI path segment (RFC 3986 `pchar`),
/// keeping `/` as the separator.
fn encode_uri_path(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        let keep = byte.is_ascii_alphanumeric()
            || matches!(
                byte,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'@'
                    | b'/'
            );
        if keep {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LocationKind {
    #[default]
    LayerFile,
    History,
    Config,
}

/// Where the secret belongs instead, and what to do now.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Remediation {
    /// The Kubernetes Secret type that fits this credential.
    pub kubernetes_secret_type: String,
    /// How to supply it without baking it into the image.
    pub instead: String,
    /// The credential is exposed to everyone who can pull the image.
    pub rotate: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ImageStats {
    pub layers: usize,
    pub layers_skipped: usize,
    /// Layers whose results came from the layer cache instead of a scan.
    pub layers_from_cache: usize,
    /// Files or archive members not scanned (see `skipped`).
    pub items_skipped: usize,
    pub files: u64,
    pub content_bytes: u64,
    pub stored_bytes: u64,
    pub findings: usize,
    pub by_severity: BTreeMap<Severity, usize>,
    /// Findings whose file a later layer deleted or overwrote: invisible in a container, still
    /// in the image.
    pub deleted_but_shipped: usize,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Stats {
    pub images: usize,
    pub layers: usize,
    pub layers_skipped: usize,
    pub layers_from_cache: usize,
    pub items_skipped: usize,
    pub files: u64,
    pub content_bytes: u64,
    pub stored_bytes: u64,
    pub findings: usize,
    pub by_severity: BTreeMap<Severity, usize>,
    pub deleted_but_shipped: usize,
    pub layers_with_findings: usize,
    /// Findings suppressed by the baseline and the ignore file together (not in `findings`,
    /// not in the counts above).
    pub suppressed: usize,
    /// Findings suppressed because a `--baseline` file lists their fingerprint.
    pub suppressed_by_baseline: usize,
    /// Findings suppressed because an ignore-file entry covers them.
    pub suppressed_by_ignore: usize,
    pub duration_ms: u64,
}

impl Report {
    /// Builds the report and its totals from the per-image results.
    pub fn new(images: Vec<ImageReport>, duration_ms: u64) -> Report {
        let mut stats = Stats {
            images: images.len(),
            duration_ms,
            ..Stats::default()
        };
        for image in &images {
            let s = &image.stats;
            stats.layers += s.layers;
            stats.layers_skipped += s.layers_skipped;
            stats.layers_from_cache += s.layers_from_cache;
            stats.items_skipped += s.items_skipped;
            stats.files += s.files;
            stats.content_bytes += s.content_bytes;
            stats.stored_bytes += s.stored_bytes;
            stats.findings += s.findings;
            stats.deleted_but_shipped += s.deleted_but_shipped;
            for (severity, count) in &s.by_severity {
                *stats.by_severity.entry(*severity).or_default() += count;
            }
            let mut layers: Vec<usize> = image
                .findings
                .iter()
                .filter_map(|f| f.location.layer_index)
                .collect();
            layers.sort_unstable();
            layers.dedup();
            stats.layers_with_findings += layers.len();
        }
        Report {
            schema_version: SCHEMA_VERSION,
            tool: Tool::default(),
            images,
            stats,
        }
    }

    /// Records how many findings the baseline and the ignore file took out of the report
    /// (see [`super::suppress`]).
    pub fn record_suppressed(&mut self, by_baseline: usize, by_ignore: usize) {
        self.stats.suppressed_by_baseline = by_baseline;
        self.stats.suppressed_by_ignore = by_ignore;
        self.stats.suppressed = by_baseline + by_ignore;
    }

    /// Findings at or above `threshold`, over all images.
    pub fn count_at_or_above(&self, threshold: Severity) -> usize {
        self.images
            .iter()
            .flat_map(|image| &image.findings)
            .filter(|finding| finding.severity >= threshold)
            .count()
    }
}
