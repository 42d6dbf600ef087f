//! The finding model: what every printer renders and what `--format json` emits (versioned).
//! Secrets are redacted when the report is built, so no printer can leak one by mistake.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::field::ConfigField;

use crate::detect::Severity;
use crate::layer::{Compression, Status};

/// Version of the JSON report layout; bumped on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

/// The whole result of one run: the top-level object of `--format json`, and what the cache
/// stores per image and the server reads back.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    /// Layout version of this JSON ([`SCHEMA_VERSION`]); readers should check it first.
    pub schema_version: u32,
    /// The program that wrote the report.
    pub tool: Tool,
    /// One entry per image scanned, in the order of the IMAGE arguments (an argument that
    /// resolves to several platforms gives one entry per platform).
    pub images: Vec<ImageReport>,
    /// Totals over all `images`, plus what was suppressed and how long the run took.
    pub stats: Stats,
    /// The images of `--images-from` that could not be scanned; absent when none failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ImageError>,
}

/// Which program, and which version of it, wrote a report.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Tool {
    /// Always `stowaway`.
    pub name: String,
    /// The crate version (`CARGO_PKG_VERSION`) of the binary that wrote the report.
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

/// The result for one image (one platform of a multi-platform image).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ImageReport {
    /// The IMAGE argument made specific, naming the source kind and what was picked from it
    /// (`docker-archive:app.tar:example.com/app:1.0`).
    pub reference: String,
    /// `sha256:<hex>` digest of the image manifest; `null` when the source has no manifest
    /// blob (a legacy `docker save` archive).
    pub manifest_digest: Option<String>,
    /// `sha256:<hex>` digest of the image config blob; identifies the image's content.
    pub config_digest: String,
    /// `os/arch[/variant]` (`linux/arm64/v8`) from the config, else from the index entry;
    /// `null` when neither names one.
    pub platform: Option<String>,
    /// Every layer of the image, lowest (base) first; `layers[i].index == i`.
    pub layers: Vec<LayerReport>,
    /// What was found, sorted by location (layer files by layer and path, then history, then
    /// config), then rule, then fingerprint, so two reports of one image diff cleanly.
    /// Suppressed findings are not listed.
    pub findings: Vec<Finding>,
    /// What was not scanned and why (archive limits, unreadable members): counted, never
    /// dropped silently.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkipRecord>,
    /// The files (and history or config items) that held more findings than the per-file
    /// limit (`--max-findings-per-file`): the most severe are listed in `findings`, the rest
    /// only counted here, one entry per file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_listed: Vec<NotListed>,
    /// The package databases the image carries: the provenance of `findings`.
    #[serde(default, skip_serializing_if = "PackagesReport::is_empty")]
    pub packages: PackagesReport,
    /// Every certificate found, in the order of `findings`. Certificates are public: they are
    /// an inventory, never findings, and no gate counts them. A certificate whose private key
    /// is in the image is flagged here, and the key itself is a finding.
    #[serde(default)]
    pub certificates: Vec<Certificate>,
    /// This image's counts, after suppression.
    pub stats: ImageStats,
    /// The workloads that run this image, when it came from `--images-from` Kubernetes JSON;
    /// absent otherwise. Not part of what the cache stores.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub used_by: Vec<Workload>,
}

/// One container of a Kubernetes workload that runs an image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workload {
    /// The namespace; `null` when the object names none.
    pub namespace: Option<String>,
    /// `Pod`, `Deployment`, `StatefulSet`, `DaemonSet`, `ReplicaSet`, `Job`, `CronJob`…
    pub kind: String,
    /// The object's name.
    pub name: String,
    /// The container's name.
    pub container: String,
}

impl std::fmt::Display for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(namespace) = &self.namespace {
            write!(f, "{namespace}/")?;
        }
        write!(f, "{}/{}", self.kind, self.name)?;
        if !self.container.is_empty() {
            write!(f, " (container {})", self.container)?;
        }
        Ok(())
    }
}

/// An image of a multi-image run (`--images-from`) that could not be scanned: the others
/// were, and the exit code is 2 unless findings fail the gate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageError {
    /// The image as the inventory names it.
    pub image: String,
    /// Why, in one line (secrets redacted).
    pub error: String,
    /// The workloads that run it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub used_by: Vec<Workload>,
}

/// Findings of one file left out of `findings` because the file held more than the limit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotListed {
    /// The file (or history or config item); `line`, `column` and `archive_path` are `null`
    /// or empty, as the entry stands for the whole file, archive members included.
    pub location: Location,
    /// How many findings of this file are not listed ("N more in this file").
    pub count: usize,
    /// Those findings per severity; a listed finding is never less severe than one only
    /// counted here.
    pub by_severity: BTreeMap<Severity, usize>,
    /// The limit that applied: how many findings of this file are listed.
    pub limit: usize,
}

/// One X.509 certificate in the image: an inventory entry, not a finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    /// Where it is (a file of a layer, possibly inside an archive).
    pub location: Location,
    /// Whether its file is still visible in the final filesystem.
    pub status: Status,
    /// The subject's distinguished name (RFC 4514 order, as OpenSSL prints it).
    pub subject: String,
    /// The issuer's distinguished name.
    pub issuer: String,
    /// End of the validity period, `YYYY-MM-DDTHH:MM:SSZ`.
    pub not_after: String,
    /// Subject and issuer are the same name: a root, or a certificate someone made for itself.
    pub self_signed: bool,
    /// `sha256:<hex>` identity of its public key (the same for the private key that goes with
    /// it); `null` for key algorithms not read.
    pub public_key: Option<String>,
    /// A private key for this certificate is somewhere in the image (then it is a finding).
    pub private_key_in_image: bool,
    /// Where that private key is, as [`Location::uri`] renders it; `null` when it is not in
    /// the image.
    pub private_key_location: Option<String>,
    /// Vendor content: the file is a trust store that systems and packages ship
    /// (`etc/ssl/certs/…`, `ca-certificates.crt`, certifi's `cacert.pem`), or a package
    /// installed it unmodified (`package.vendor`): public, not the image owner's.
    pub vendor: bool,
    /// The package that installed the file, judged as findings are (the same object as a
    /// finding's `provenance`: manager, package, version, whether the content still matches
    /// the recorded hash); `null` when no package database owns it.
    #[serde(default)]
    pub package: Option<Provenance>,
}

/// Something left unscanned inside a layer, with the reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkipRecord {
    /// The layer holding the file, counting from 0 like [`LayerReport::index`].
    pub layer_index: usize,
    /// The file, and the archive members leading to it (`app.jar!/lib/x.jar`).
    pub what: String,
    /// Why it was not scanned, in words (`archive nesting deeper than 3`, a size limit, a
    /// read error), or how an irregular entry was read.
    pub reason: String,
    /// Whether content went unscanned or the entry was only irregular. Reports written
    /// before this field existed read as `not-scanned`.
    #[serde(default)]
    pub kind: SkipKind,
}

/// What a [`SkipRecord`] is: `kind` in the JSON.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SkipKind {
    /// `not-scanned`: the item, or part of it, was not scanned (a limit reached, an encrypted
    /// or unreadable member); a secret in it would be missed. `--fail-on-incomplete` fails on
    /// these.
    #[default]
    NotScanned,
    /// `irregular`: an entry whose header disagrees with how runtimes read it (a size on a
    /// directory, metadata over a limit). It was scanned as runtimes unpack it; reported
    /// because an image built by ordinary tools has none.
    Irregular,
}

impl SkipRecord {
    /// Whether content went unscanned (rather than an entry being only irregular).
    pub fn is_not_scanned(&self) -> bool {
        self.kind == SkipKind::NotScanned
    }
}

/// One layer of an image, as the image describes it and as the scan saw it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LayerReport {
    /// Position in the image, counting from 0 at the base layer: the number every
    /// `layer_index` in the report refers to.
    pub index: usize,
    /// The same layer counted from 1 (`index + 1`): the number every other format prints
    /// (`Layer 3/6`, `layer/3/…`) and every `layer_number` in the report refers to.
    #[serde(default)]
    pub number: usize,
    /// `sha256:<hex>` digest of the stored (usually compressed) blob; `null` when no
    /// descriptor names one (a legacy `docker save` archive names layers by path).
    pub digest: Option<String>,
    /// `sha256:<hex>` digest of the uncompressed tar, from the config's `rootfs.diff_ids`.
    pub diff_id: Option<String>,
    /// The media type the manifest gives the layer; `null` when the source has none.
    pub media_type: Option<String>,
    /// How the blob was actually stored (`none`, `gzip`, `zstd`), sniffed from its bytes
    /// rather than taken from the media type; `null` when the layer was not read (skipped).
    pub compression: Option<Compression>,
    /// Stored (compressed) size in bytes.
    pub size: u64,
    /// Regular files in the layer.
    pub files: u64,
    /// Uncompressed bytes of file content scanned.
    pub content_bytes: u64,
    /// The entry of the config's `history` array that made this layer, counting from 0 over
    /// all entries (steps with `empty_layer` included); `null` when the history is shorter
    /// than the layer list.
    pub history_index: Option<usize>,
    /// That history step counted from 1 (`history_index + 1`), as printed (`step 3`).
    #[serde(default)]
    pub step_number: Option<usize>,
    /// The history step that made the layer (secrets found in it are redacted here too).
    pub created_by: Option<String>,
    /// Why the layer was not scanned, when it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// One secret found in one place.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Finding {
    /// The `id` of the signature that matched (`aws-access-key-id`); see `stowaway rules list`.
    pub rule_id: String,
    /// The signature's human-readable `name`.
    pub rule_name: String,
    /// `info`, `low`, `medium`, `high` or `critical`: the rule's severity, unless its
    /// validator or a decoder judged this match differently.
    pub severity: Severity,
    /// Redacted unless `--show-secrets`.
    pub secret: String,
    /// Stable hash of rule and secret, for baselines: the same leaked key matches wherever it
    /// moves.
    pub fingerprint: String,
    /// Where the secret is.
    pub location: Location,
    /// `present`, `deleted` or `overwritten`: whether the file is still visible in the final
    /// filesystem. Deleted and overwritten secrets still ship in the layer that added them.
    /// History and config findings are always `present`.
    pub status: Status,
    /// The layer that deleted or overwrote the file, counting from 0 like `layer_index` (an
    /// index, kept under its first name); `null` while the file is `present`.
    pub removed_in_layer: Option<usize>,
    /// The same layer counted from 1, as every other format prints it
    /// (`removed_in_layer + 1`).
    #[serde(default)]
    pub removed_in_layer_number: Option<usize>,
    /// The line holding the secret, with every secret on it masked and cut to at most
    /// [`CONTEXT_CHARS`] characters around it: the file's line, the history step
    /// (`RUN |1 NPM_TOKEN=npm_**** /bin/sh -c npm ci`) or the config entry. Omitted when the
    /// match has no line of its own (a decoded value, an archive member, a UTF-16 file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Every other place the same secret is in (the same value, whatever rule matched it
    /// there): a hard link's name, another layer, the history step and the config entry that
    /// both hold it. This finding is its most severe place, deleted-but-shipped first; the
    /// secret is counted once. Omitted when it is in one place only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also_found_in: Vec<OtherPlace>,
    /// What to do about the secret.
    pub remediation: Remediation,
    /// Facts a validator or decoder learned about the secret (`username`, `encrypted`,
    /// `account`), by name; omitted from the JSON when empty.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, String>,
    /// The package that owns the file, when a package database of the image (as it stood in
    /// the layer that added the file) lists it; omitted for files no package owns and for
    /// history and config findings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
}

/// The longest [`Finding::context`], in characters.
pub const CONTEXT_CHARS: usize = 160;

/// Another place a finding's secret is in; `also_found_in[]` in the JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtherPlace {
    /// Where, as in [`Finding::location`].
    pub location: Location,
    /// Whether that file is still visible, as in [`Finding::status`].
    pub status: Status,
    /// The layer that deleted or overwrote it, counting from 0; `null` while `present`.
    pub removed_in_layer: Option<usize>,
    /// The same layer counted from 1.
    pub removed_in_layer_number: Option<usize>,
    /// The rule that matched there (another rule may match the same value elsewhere).
    pub rule_id: String,
    /// That rule's name.
    pub rule_name: String,
    /// The severity there (vendor content may be lower).
    pub severity: Severity,
    /// The fingerprint of the rule and secret there: a baseline or ignore entry naming it
    /// covers the whole finding.
    pub fingerprint: String,
    /// The masked line there, as in [`Finding::context`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
}

impl Finding {
    /// The fingerprints of the secret at every place it is in (the finding's own first).
    pub fn fingerprints(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.fingerprint.as_str())
            .chain(self.also_found_in.iter().map(|p| p.fingerprint.as_str()))
    }

    /// The finding as it would stand at `other`, one of its other places (which it loses).
    pub fn at(&self, other: &OtherPlace) -> Finding {
        Finding {
            rule_id: other.rule_id.clone(),
            rule_name: other.rule_name.clone(),
            severity: other.severity,
            fingerprint: other.fingerprint.clone(),
            location: other.location.clone(),
            status: other.status,
            removed_in_layer: other.removed_in_layer,
            removed_in_layer_number: other.removed_in_layer_number,
            context: other.context.clone(),
            also_found_in: Vec::new(),
            ..self.clone()
        }
    }

    /// Whether the finding is in vendor content (a file a package manager installed
    /// unmodified, or a test or example inside a package): its severity was lowered to info.
    pub fn is_vendor(&self) -> bool {
        self.provenance.as_ref().is_some_and(|p| p.vendor)
    }
}

/// Which package shipped the file holding a finding, and whether the file is still what the
/// package shipped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// `dpkg`, `apk`, `rpm`, `pip`, `npm`, `gem`, `composer` or `maven`.
    pub manager: String,
    /// The package's name as its database records it.
    pub package: String,
    /// The package's version as its database records it.
    pub version: String,
    /// The database that lists the package (its path in the image).
    pub database: String,
    /// Whether the file's content matches the hash the package manager recorded for it.
    pub verified: bool,
    /// Whether the finding is vendor content: its severity was lowered to `info` (verified
    /// content, or for ecosystems without per-file hashes a test, fixture or example path
    /// inside the package).
    pub vendor: bool,
    /// How the file compares with what the package shipped.
    pub verdict: ProvenanceVerdict,
    /// The severity before it was lowered, for vendor findings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_severity: Option<Severity>,
}

/// How a package-owned file compares with what its package shipped; `verdict` in the JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProvenanceVerdict {
    /// The content matches the recorded hash: installed and not changed since.
    Unmodified,
    /// The package's ecosystem records no file hashes (npm, gem, composer, maven) and the file
    /// is a test, fixture or example path inside the package.
    TestOrExample,
    /// The package is an npm package (no file hashes) and the file is its documentation or a
    /// type declaration (`README*`, `*.md`, `docs/`, `*.examples.json`, `*.d.ts`): content no
    /// runtime executes.
    Documentation,
    /// The file is Python bytecode (`__pycache__/*.pyc`) compiled from a source file that its
    /// package installed unmodified: the bytecode's header names the source's size (and
    /// time), and the secret found in the bytecode is in that verified source.
    CompiledFromVerifiedSource,
    /// The content does not match the recorded hash: modified after install (edited, or
    /// replaced by a later layer).
    Modified,
    /// A hash is recorded but the file could not be hashed (a file over one chunk of the walk,
    /// 8 MiB, is hashed by reading its layer again; this is when that failed, or the file is
    /// sparse).
    NotHashed,
    /// No hash is recorded for the file (an ecosystem without file hashes outside its tests,
    /// or a file the database lists without one), so it cannot be shown unmodified.
    NoRecordedHash,
}

impl ProvenanceVerdict {
    /// The verdict in words, as reports show it.
    pub fn describe(self) -> &'static str {
        match self {
            ProvenanceVerdict::Unmodified => "installed unmodified",
            ProvenanceVerdict::TestOrExample => "a test or example inside the package",
            ProvenanceVerdict::Documentation => {
                "documentation or type declarations inside the package (not runtime code)"
            }
            ProvenanceVerdict::CompiledFromVerifiedSource => {
                "bytecode of a source file installed unmodified, holding the same secret"
            }
            ProvenanceVerdict::Modified => "modified after install",
            ProvenanceVerdict::NotHashed => "not verified (the file could not be hashed)",
            ProvenanceVerdict::NoRecordedHash => "not verified (no hash recorded)",
        }
    }
}

/// The package databases the scan read, as they stand in the final image, and what could not
/// be read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackagesReport {
    /// Databases read, by manager and path, with their package counts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub databases: Vec<DatabaseReport>,
    /// Databases found but not read (rpm's Berkeley DB and NDB formats), in words: files of
    /// their packages are not known as vendor content.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_read: Vec<String>,
    /// Malformed records skipped while reading, and database files not kept (over a size
    /// limit), in words; counted in `records_skipped` and `files_not_kept`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Records skipped as malformed, over all databases read.
    #[serde(default)]
    pub records_skipped: usize,
    /// Database files not kept because of the size limits.
    #[serde(default)]
    pub files_not_kept: usize,
    /// Milliseconds spent reading databases and building the ownership index.
    #[serde(default)]
    pub read_ms: u64,
}

impl PackagesReport {
    /// Whether the image held no package database at all.
    pub fn is_empty(&self) -> bool {
        *self == PackagesReport::default()
    }
}

/// One package database read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseReport {
    /// The manager that wrote it.
    pub manager: String,
    /// Where it is in the image.
    pub path: String,
    /// Packages read from it.
    pub packages: usize,
}

/// Where a secret was found.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Location {
    /// Which of the three places the secret is in; says which other fields are set.
    pub kind: LocationKind,
    /// The layer holding the file, counting from 0 like [`LayerReport::index`]; `null` for
    /// history and config findings.
    pub layer_index: Option<usize>,
    /// The same layer counted from 1 (`layer_index + 1`), as every other format prints it
    /// (`Layer 3/6`, `layer/3/…`); `null` when `layer_index` is.
    #[serde(default)]
    pub layer_number: Option<usize>,
    /// That layer's `diff_id` (else its blob `digest`), so the layer can be found without the
    /// rest of the report; `null` when `layer_index` is.
    pub layer_digest: Option<String>,
    /// The file's path in the image as a container sees it, with a leading `/`
    /// (`/root/.aws/credentials`; reports of schema 1 written before 0.2 left it out); for a
    /// file inside an archive, the outermost archive (the members are in `archive_path`).
    /// `null` for history and config findings.
    pub path: Option<String>,
    /// Line of the match, counting from 1: in the file for `layer-file`, in the text of the
    /// history or config field otherwise. For a secret inside an archive member, where that
    /// member's stored bytes sit in the outer file (approximate when it is compressed).
    pub line: Option<u64>,
    /// Column of the match on that line, counting from 1, in bytes (not characters).
    ///
    /// A text file saved in UTF-16 is read as the text it holds (its findings say
    /// `details.encoding`, `UTF-16LE` or `UTF-16BE`); `line` is its line as in any file, and
    /// `column` counts the bytes of the file as stored after the line feed's `0x0A` byte: two
    /// per character of most text, plus one in UTF-16LE for the line feed's second byte.
    pub column: Option<u64>,
    /// The chain of members inside nested archives (outermost first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub archive_path: Vec<String>,
    /// The config `history` entry (counting from 0, `empty_layer` steps included): the step
    /// holding a `history` finding, or the step that made the layer of a `layer-file`
    /// finding. `null` for config findings and when the history does not cover the layer.
    pub history_index: Option<usize>,
    /// The same step counted from 1 (`history_index + 1`), as every other format prints it
    /// (`history step 8`, `history/8`).
    #[serde(default)]
    pub step_number: Option<usize>,
    /// Config field (`Env DB_PASSWORD`, `Labels x`, `Cmd`) or history field (`created_by`,
    /// `build-arg NPM_TOKEN`).
    pub field: Option<ConfigField>,
}

impl Location {
    /// The file or text item this location is in: the location without line, column and
    /// archive members (what [`NotListed::location`] names).
    pub fn item(&self) -> Location {
        Location {
            line: None,
            column: None,
            archive_path: Vec::new(),
            ..self.clone()
        }
    }

    /// The field's report wording (`Env DB_PASSWORD`), or `default` when the location names no
    /// field.
    pub fn field_or(&self, default: &str) -> String {
        self.field
            .as_ref()
            .map_or_else(|| default.to_string(), ConfigField::to_string)
    }

    /// A stable, readable URI-reference for the location, used by the SARIF and GitLab printers
    /// and in baselines: `layer/<number>/<path>` for files (members of nested archives appended
    /// as `!/<member>`), `history/<number>` for history steps and `config/<field>` for config
    /// fields (`config/Env/DB_PASSWORD`). Layers and steps count from 1, as every printed
    /// number does (`layer_number`, `step_number`). Positions rather than digests, because a
    /// rebuilt layer gets a new digest while the leak stays put, and code-scanning alerts are
    /// tracked by URI. Characters that may not appear in a URI path are percent-encoded.
    pub fn uri(&self) -> String {
        match self.kind {
            LocationKind::LayerFile => {
                let mut uri = format!("layer/{}", self.layer_index.unwrap_or_default() + 1);
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
                format!("history/{}", self.history_index.unwrap_or_default() + 1)
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

/// The kind of place a secret was found in; `kind` in the JSON.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LocationKind {
    /// `layer-file`: the content of a file in a layer (`layer_index`, `path` are set).
    #[default]
    LayerFile,
    /// `history`: a `history` entry of the image config (`history_index`, `field` are set).
    History,
    /// `config`: a field of the image config outside the history, such as `Env` or `Labels`
    /// (`field` is set).
    Config,
}

/// Where the secret belongs instead, and what to do now. The texts repeat across findings, so
/// a report shares one copy of each (an image with 80,000 findings held 30 MB of copies).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Remediation {
    /// The Kubernetes Secret type that fits this credential.
    pub kubernetes_secret_type: Arc<str>,
    /// How to supply it without baking it into the image.
    pub instead: Arc<str>,
    /// The credential is exposed to everyone who can pull the image.
    pub rotate: Arc<str>,
}

/// The counts for one image.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ImageStats {
    /// Layers in the image, scanned or not.
    pub layers: usize,
    /// Layers not scanned at all (see [`LayerReport::skipped`]).
    pub layers_skipped: usize,
    /// Layers whose results came from the layer cache instead of a scan.
    pub layers_from_cache: usize,
    /// Files or archive members not scanned, in whole or in part (the `not-scanned` entries
    /// of `skipped`).
    pub items_skipped: usize,
    /// Entries read as runtimes read them although their headers disagree (the `irregular`
    /// entries of `skipped`); omitted when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub items_irregular: usize,
    /// Regular files walked, over all layers (hard links and symlinks not counted).
    pub files: u64,
    /// Uncompressed bytes of file content scanned, over all layers.
    pub content_bytes: u64,
    /// Bytes of stored (usually compressed) layer blobs read; for a registry image, about
    /// what was downloaded.
    pub stored_bytes: u64,
    /// Number of entries in `findings` (suppressed findings not counted).
    pub findings: usize,
    /// Findings per severity, keyed by severity name (`"high": 2`); severities with no
    /// finding are left out.
    pub by_severity: BTreeMap<Severity, usize>,
    /// Findings whose file a later layer deleted or overwrote: invisible in a container, still
    /// in the image.
    pub deleted_but_shipped: usize,
    /// Findings over the per-file limit, counted in `not_listed` and not in `findings`.
    #[serde(default)]
    pub findings_not_listed: usize,
    /// Entries in `certificates` (never counted as findings).
    #[serde(default)]
    pub certificates: usize,
}

/// Totals over every image of a report; each count is the sum of the [`ImageStats`] field
/// of the same name unless said otherwise.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Stats {
    /// Images in the report (one per platform scanned).
    pub images: usize,
    /// Layers over all images; a layer shared by two images counts twice.
    pub layers: usize,
    /// Layers not scanned at all.
    pub layers_skipped: usize,
    /// Layers whose results came from the layer cache instead of a scan.
    pub layers_from_cache: usize,
    /// Files or archive members not scanned, in whole or in part (see
    /// [`ImageReport::skipped`]).
    pub items_skipped: usize,
    /// Irregular entries, scanned as runtimes read them; omitted when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub items_irregular: usize,
    /// Regular files walked.
    pub files: u64,
    /// Uncompressed bytes of file content scanned.
    pub content_bytes: u64,
    /// Bytes of stored (usually compressed) layer blobs read.
    pub stored_bytes: u64,
    /// Findings reported, after suppression.
    pub findings: usize,
    /// Reported findings per severity name; severities with no finding are absent.
    pub by_severity: BTreeMap<Severity, usize>,
    /// Reported findings whose file a later layer deleted or overwrote.
    pub deleted_but_shipped: usize,
    /// Findings over the per-file limit, not listed (see [`ImageReport::not_listed`]).
    #[serde(default)]
    pub findings_not_listed: usize,
    /// Certificates listed in the images' inventories.
    #[serde(default)]
    pub certificates: usize,
    /// Layers holding at least one reported finding in a file, counted per image.
    pub layers_with_findings: usize,
    /// Findings suppressed by the baseline and the ignore file together (not in `findings`,
    /// not in the counts above).
    pub suppressed: usize,
    /// Findings suppressed because a `--baseline` file lists their fingerprint.
    pub suppressed_by_baseline: usize,
    /// Findings suppressed because an ignore-file entry covers them.
    pub suppressed_by_ignore: usize,
    /// Findings left out of this report by `--severity` (a display filter: not in `findings`
    /// nor in the counts above, yet the `--fail-on` gate counted them); omitted when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub hidden_by_severity: usize,
    /// Wall-clock time of the run in milliseconds, up to building the report (writing it is
    /// not included).
    pub duration_ms: u64,
}

/// Keeps counts added after schema version 1 out of reports that have nothing to count, so
/// those reports stay byte-identical.
fn is_zero(count: &usize) -> bool {
    *count == 0
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
            stats.items_irregular += s.items_irregular;
            stats.files += s.files;
            stats.content_bytes += s.content_bytes;
            stats.stored_bytes += s.stored_bytes;
            stats.findings += s.findings;
            stats.deleted_but_shipped += s.deleted_but_shipped;
            stats.findings_not_listed += s.findings_not_listed;
            stats.certificates += s.certificates;
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
            errors: Vec::new(),
        }
    }

    /// Records how many findings the baseline and the ignore file took out of the report
    /// (see `report::suppress`).
    pub fn record_suppressed(&mut self, by_baseline: usize, by_ignore: usize) {
        self.stats.suppressed_by_baseline = by_baseline;
        self.stats.suppressed_by_ignore = by_ignore;
        self.stats.suppressed = by_baseline + by_ignore;
    }

    /// Whether anything went unscanned: a layer, or a file or archive member in whole or in
    /// part (irregular entries were scanned, so they do not count). `--fail-on-incomplete`
    /// fails on it.
    pub fn is_incomplete(&self) -> bool {
        self.stats.items_skipped > 0 || self.stats.layers_skipped > 0
    }

    /// Findings at or above `threshold`, over all images, those over the per-file limit
    /// included: a secret that was found but not listed (so never reviewed, nor accepted by a
    /// baseline) still counts.
    pub fn count_at_or_above(&self, threshold: Severity) -> usize {
        let listed = self
            .images
            .iter()
            .flat_map(|image| &image.findings)
            .filter(|finding| finding.severity >= threshold)
            .count();
        let not_listed: usize = self
            .images
            .iter()
            .flat_map(|image| &image.not_listed)
            .flat_map(|entry| &entry.by_severity)
            .filter(|(severity, _)| **severity >= threshold)
            .map(|(_, count)| count)
            .sum();
        listed + not_listed
    }
}
