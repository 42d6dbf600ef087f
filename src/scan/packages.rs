//! Package provenance in the scan (issue 11). While a layer is walked, the files of package
//! databases ([`database_kind`]) are kept ([`Collector`], bounded); at assembly the databases are
//! read as they stand in each layer that holds findings ([`Provenances`]), and each finding in a
//! file is told who owns the file and whether it is still what its package shipped
//! ([`Provenances::attribute`]).
//!
//! The database that judges a file is the one as it stood in the layer that added the file: a
//! package installed in layer 3 whose file a `COPY` in layer 5 replaces is judged in layer 5,
//! where the package still records the hash of what it shipped, so the copy is "modified after
//! install"; a package purged in a later layer still owns the files its layer shipped.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::raw::SecretText;
use super::raw::{FileDigests, FileHasher, RawFinding};
use crate::detect::Severity;
use crate::layer::{FileChunk, WalkedLayer};
use crate::provenance::maven::MavenArtifact;
use crate::provenance::pyc::{HEADER_LEN, parse_header, source_of_bytecode};
use crate::provenance::{
    Database, DatabaseFiles, Manager, Owner, ProvenanceIndex, Verdict, database_kind,
    is_test_or_example_path,
};
use crate::report::model::{DatabaseReport, PackagesReport, Provenance, ProvenanceVerdict};

/// The largest database file kept (a Fedora `rpmdb.sqlite` with a full desktop is ~100 MiB).
pub(super) const FILE_LIMIT: usize = 192 << 20;
/// The most database bytes one layer keeps.
pub(super) const LAYER_LIMIT: usize = 384 << 20;

/// One database file as a layer holds it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct PackageFile {
    pub path: String,
    #[serde(serialize_with = "to_base64", deserialize_with = "from_base64")]
    pub content: Arc<[u8]>,
}

fn to_base64<S: Serializer>(bytes: &Arc<[u8]>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&STANDARD.encode(bytes))
}

fn from_base64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Arc<[u8]>, D::Error> {
    let text = String::deserialize(deserializer)?;
    STANDARD
        .decode(text)
        .map(Arc::from)
        .map_err(serde::de::Error::custom)
}

/// The database files one layer writes, and those it could not keep.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(super) struct LayerPackages {
    pub files: Vec<PackageFile>,
    /// Database files not kept, each with why (a size limit, a sparse file).
    #[serde(default)]
    pub not_kept: Vec<String>,
}

/// A database file being read chunk by chunk.
struct Partial {
    path: Arc<str>,
    content: Vec<u8>,
}

/// Keeps the database files of one layer as its chunks go by (the walker hands over each
/// file's chunks in order, with overlap), within [`FILE_LIMIT`] and [`LAYER_LIMIT`].
#[derive(Default)]
pub(super) struct Collector {
    kept: LayerPackages,
    current: Option<Partial>,
    bytes: usize,
}

impl Collector {
    /// Takes the new bytes of `chunk` when it belongs to a database file.
    pub(super) fn offer(&mut self, chunk: &FileChunk) {
        if chunk.file_offset == 0 {
            self.finish_current();
            if database_kind(&chunk.path).is_none() {
                return;
            }
            self.current = Some(Partial {
                path: Arc::clone(&chunk.path),
                content: Vec::new(),
            });
        }
        let Some(partial) = &mut self.current else {
            return;
        };
        if partial.path != chunk.path {
            return;
        }
        let have = partial.content.len() as u64;
        let Some(skip) = have
            .checked_sub(chunk.file_offset)
            .and_then(|skip| usize::try_from(skip).ok())
            .filter(|skip| *skip <= chunk.content.len())
        else {
            let path = partial.path.to_string();
            self.drop_current(format!("{path}: a sparse file, not read as a database"));
            return;
        };
        let fresh = &chunk.content[skip..];
        let size = partial.content.len() + fresh.len();
        if size > FILE_LIMIT || self.bytes + fresh.len() > LAYER_LIMIT {
            let path = partial.path.to_string();
            self.drop_current(format!(
                "{path}: over the {} MiB kept for package databases (per file {} MiB), not read",
                LAYER_LIMIT >> 20,
                FILE_LIMIT >> 20
            ));
            return;
        }
        partial.content.extend_from_slice(fresh);
        self.bytes += fresh.len();
    }

    fn drop_current(&mut self, why: String) {
        if let Some(partial) = self.current.take() {
            self.bytes -= partial.content.len();
            self.kept.not_kept.push(why);
        }
    }

    fn finish_current(&mut self) {
        if let Some(partial) = self.current.take() {
            self.kept.files.push(PackageFile {
                path: partial.path.to_string(),
                content: Arc::from(partial.content),
            });
        }
    }

    /// The layer's database files.
    pub(super) fn finish(mut self) -> LayerPackages {
        self.finish_current();
        self.kept
    }
}

/// The filesystem state that matters to provenance: database files and shallow symlinks.
#[derive(Clone, Default)]
struct State {
    files: DatabaseFiles,
    symlinks: BTreeMap<String, String>,
}

impl State {
    /// Applies one layer: its whiteouts and overwrites, then what it writes. Returns whether
    /// anything changed.
    fn apply(&mut self, walked: &WalkedLayer, packages: &LayerPackages) -> bool {
        let before = (self.files.len(), self.symlinks.len());
        let changes = &walked.changes;
        let mut changed = false;
        for removed in changes.whiteouts.iter().chain(&changes.opaque_dirs) {
            self.files.remove(removed);
            let under = format!("{removed}/");
            self.symlinks
                .retain(|link, _| link != removed && !link.starts_with(&under));
        }
        // Whatever the layer writes over a database file or a link replaces it; what it kept
        // is put back below. A database file it wrote but did not keep (empty, over a limit, a
        // symlink) is no longer known.
        for path in changes.written.keys() {
            if database_kind(path).is_some() {
                self.files.remove(path);
                changed = true;
            }
            if self.symlinks.remove(path.as_str()).is_some() {
                changed = true;
            }
        }
        for file in &packages.files {
            self.files.insert(&file.path, Arc::clone(&file.content));
            changed = true;
        }
        for link in &walked.shallow_symlinks {
            self.symlinks.insert(link.path.clone(), link.target.clone());
            changed = true;
        }
        changed || before != (self.files.len(), self.symlinks.len())
    }

    fn index(&self) -> (ProvenanceIndex, Vec<Database>) {
        let databases = self.files.read();
        let mut index = ProvenanceIndex::build(&databases);
        index.follow_directory_symlinks(
            self.symlinks
                .iter()
                .map(|(link, target)| (link.as_str(), target.as_str())),
        );
        (index, databases)
    }
}

/// The provenance index of each layer that needs one, and the report on the databases.
pub(super) struct Provenances {
    by_layer: Vec<Option<Arc<ProvenanceIndex>>>,
    /// Bytecode files with findings, by layer and path, with the source they were compiled
    /// from as that layer holds it ([`Provenances::add_bytecode_sources`]).
    bytecode: HashMap<(usize, Arc<str>), BytecodeSource>,
    /// What the final image's databases are, and what could not be read.
    pub report: PackagesReport,
}

impl Provenances {
    /// Reads the databases as they stand in each layer of `needed` (layers holding findings
    /// in files) and in the final image. States are shared between layers that do not change
    /// them, so each distinct state is read once.
    pub(super) fn build(
        walked: &[WalkedLayer],
        packages: &[LayerPackages],
        needed: &[bool],
    ) -> Provenances {
        let started = Instant::now();
        let mut state = State::default();
        let mut built: Option<(Arc<ProvenanceIndex>, Vec<Database>)> = None;
        let mut by_layer = vec![None; walked.len()];
        let mut report = PackagesReport::default();
        let empty = LayerPackages::default();
        for (index, layer) in walked.iter().enumerate() {
            let layer_packages = packages.get(index).unwrap_or(&empty);
            if state.apply(layer, layer_packages) {
                built = None;
            }
            for why in &layer_packages.not_kept {
                report.files_not_kept += 1;
                report.warnings.push(format!("layer {index}: {why}"));
            }
            let last = index + 1 == walked.len();
            if !(needed.get(index).copied().unwrap_or(false) || last) || state.files.is_empty() {
                continue;
            }
            let (index_now, _) = built.get_or_insert_with(|| {
                let (index, databases) = state.index();
                (Arc::new(index), databases)
            });
            by_layer[index] = Some(Arc::clone(index_now));
            if last {
                describe_databases(&built.as_ref().expect("built above").1, &mut report);
            }
        }
        report.read_ms = started.elapsed().as_millis() as u64;
        Provenances {
            by_layer,
            bytecode: HashMap::new(),
            report,
        }
    }

    /// The provenance of `finding` and the severity it keeps: vendor content drops to info.
    /// The package database that owns the file decides when it can (verified, or modified);
    /// otherwise a jar member is judged by the Maven identity its jar records, where only
    /// test, fixture and example paths inside the jar are vendor content.
    pub(super) fn attribute(&self, finding: &RawFinding) -> (Severity, Option<Provenance>) {
        if let Some(provenance) = self.compiled_from_verified_source(finding) {
            return (Severity::Info, Some(provenance));
        }
        let by_database = self.database_verdict(finding);
        let decided = by_database.as_ref().is_some_and(|(_, verdict)| {
            is_vendor(*verdict) || *verdict == ProvenanceVerdict::Modified
        });
        let chosen = match &finding.archive_package {
            Some(artifact) if !decided => Some(jar_verdict(artifact, finding)),
            _ => by_database,
        };
        let Some((shipper, verdict)) = chosen else {
            return (finding.severity, None);
        };
        let vendor = is_vendor(verdict);
        let severity = if vendor {
            Severity::Info
        } else {
            finding.severity
        };
        let provenance = Provenance {
            manager: shipper.manager,
            package: shipper.name,
            version: shipper.version,
            database: shipper.database,
            verified: verdict == ProvenanceVerdict::Unmodified,
            vendor,
            verdict,
            original_severity: (vendor && severity != finding.severity).then_some(finding.severity),
        };
        (severity, Some(provenance))
    }

    /// What the package database of the finding's layer says of its file, if it owns it.
    fn database_verdict(&self, finding: &RawFinding) -> Option<(Shipper, ProvenanceVerdict)> {
        let (layer, path) = finding.layer.zip(finding.path.as_deref())?;
        let owner = self.by_layer.get(layer)?.as_ref()?.lookup(path)?;
        let verdict = judge(&owner, path, finding);
        let package = &owner.package;
        let shipper = Shipper {
            manager: package.manager.as_str().to_string(),
            name: package.name.clone(),
            version: package.version.clone(),
            database: package.database.clone(),
        };
        Some((shipper, verdict))
    }
}

/// The package a provenance names.
struct Shipper {
    manager: String,
    name: String,
    version: String,
    database: String,
}

fn is_vendor(verdict: ProvenanceVerdict) -> bool {
    matches!(
        verdict,
        ProvenanceVerdict::Unmodified
            | ProvenanceVerdict::TestOrExample
            | ProvenanceVerdict::Documentation
            | ProvenanceVerdict::CompiledFromVerifiedSource
    )
}

/// A jar member judged by its jar's Maven identity: Maven records no file hashes, so only a
/// test, fixture or example path inside the jar is vendor content.
fn jar_verdict(artifact: &MavenArtifact, finding: &RawFinding) -> (Shipper, ProvenanceVerdict) {
    let member = finding.archive_path.last().map_or("", String::as_str);
    let verdict = if is_test_or_example_path(member) {
        ProvenanceVerdict::TestOrExample
    } else {
        ProvenanceVerdict::NoRecordedHash
    };
    let shipper = Shipper {
        manager: Manager::Maven.as_str().to_string(),
        name: artifact.name.clone(),
        version: artifact.version.clone(),
        database: artifact.recorded_at.clone(),
    };
    (shipper, verdict)
}

impl Provenances {
    /// The files (layer, path) of `raw` that a package owns with a recorded hash but whose
    /// digests were not computed while matching (files over one chunk of the walk).
    pub(super) fn unhashed_owned_files(
        &self,
        raw: &[RawFinding],
    ) -> BTreeMap<usize, Vec<Arc<str>>> {
        let mut wanted: BTreeMap<usize, Vec<Arc<str>>> = BTreeMap::new();
        for finding in raw.iter().filter(|f| f.digests.is_none()) {
            let (Some(layer), Some(path)) = (finding.layer, &finding.path) else {
                continue;
            };
            let owned_with_hash = self
                .by_layer
                .get(layer)
                .and_then(Option::as_ref)
                .and_then(|index| index.lookup(path))
                .is_some_and(|owner| owner.hash.is_some());
            if owned_with_hash {
                let paths = wanted.entry(layer).or_default();
                if !paths.contains(path) {
                    paths.push(Arc::clone(path));
                }
            }
        }
        wanted
    }
}

/// The largest Python source read again to check the bytecode compiled from it.
const SOURCE_LIMIT: usize = 8 << 20;

/// A Python source file as the layer of its bytecode holds it, and what the bytecode's header
/// says about it.
pub(super) struct BytecodeSource {
    /// The source's path.
    path: String,
    /// The source's digests, to check against its package's record.
    digests: FileDigests,
    /// The source's bytes, to find the bytecode's secret in.
    content: Vec<u8>,
    /// Whether the bytecode's header describes this source (size; hash-based bytecode never).
    header_matches: bool,
    /// The secrets (their de-duplication keys) found in the source itself, for findings read
    /// back sealed from the layer cache.
    found_in_source: HashSet<String>,
}

impl Provenances {
    /// The bytecode files of `raw` (by layer: bytecode path, source path) whose findings no
    /// record of their own makes vendor content, and whose source a package owns with a
    /// recorded hash in the same layer's databases.
    pub(super) fn bytecode_candidates(
        &self,
        raw: &[RawFinding],
    ) -> BTreeMap<usize, Vec<(Arc<str>, String)>> {
        let mut wanted: BTreeMap<usize, Vec<(Arc<str>, String)>> = BTreeMap::new();
        for finding in raw {
            let (Some(layer), Some(path)) = (finding.layer, &finding.path) else {
                continue;
            };
            let Some(index) = self.by_layer.get(layer).and_then(Option::as_ref) else {
                continue;
            };
            let Some(source) = source_of_bytecode(path) else {
                continue;
            };
            let own_record_has_hash = index.lookup(path).is_some_and(|o| o.hash.is_some());
            let source_hashed = index.lookup(&source).is_some_and(|o| o.hash.is_some());
            if own_record_has_hash || !source_hashed {
                continue;
            }
            let pairs = wanted.entry(layer).or_default();
            if !pairs.iter().any(|(p, _)| p == path) {
                pairs.push((Arc::clone(path), source));
            }
        }
        wanted
    }

    /// Reads the sources of the bytecode files `pairs` of `layer` (and the bytecode headers)
    /// by walking the layer again. A source missing from the layer, too large, or a layer that
    /// cannot be read leaves its bytecode without a source: the findings keep their severity.
    pub(super) fn add_bytecode_sources(
        &mut self,
        layer_index: usize,
        layer: &crate::source::Layer,
        pairs: &[(Arc<str>, String)],
        raw: &[RawFinding],
    ) {
        let wanted: HashSet<&str> = pairs
            .iter()
            .flat_map(|(pyc, source)| [&**pyc, source.as_str()])
            .collect();
        let mut contents: HashMap<Arc<str>, Vec<u8>> = HashMap::new();
        let walked = crate::layer::walk_layer(layer, &mut |chunk| {
            if !wanted.contains(&*chunk.path) {
                return Ok(());
            }
            let limit = if chunk.path.ends_with(".pyc") {
                HEADER_LEN
            } else {
                SOURCE_LIMIT + 1
            };
            if chunk.file_offset == 0 {
                contents.insert(Arc::clone(&chunk.path), Vec::new());
            }
            if let Some(content) = contents.get_mut(&chunk.path) {
                let skip = (content.len() as u64)
                    .checked_sub(chunk.file_offset)
                    .and_then(|s| usize::try_from(s).ok())
                    .filter(|skip| *skip <= chunk.content.len());
                match skip {
                    Some(skip) if content.len() < limit => {
                        let fresh = &chunk.content[skip..];
                        let take = fresh.len().min(limit - content.len());
                        content.extend_from_slice(&fresh[..take]);
                    }
                    Some(_) => {}
                    None => {
                        contents.remove(&chunk.path);
                    }
                }
            }
            Ok(())
        });
        if walked.is_err() {
            return;
        }
        for (pyc, source) in pairs {
            if let (Some(header), Some(content)) =
                (contents.get(pyc), contents.get(source.as_str()))
            {
                self.insert_bytecode_source(layer_index, pyc, source, header, content, raw);
            }
        }
    }

    /// Records the source of bytecode file `pyc` of layer `layer_index`: `header` is the
    /// bytecode's first bytes, `content` the source's (the findings of `raw` in the source are
    /// remembered too). Bytes that are not bytecode, or a source over the limit, record
    /// nothing.
    fn insert_bytecode_source(
        &mut self,
        layer_index: usize,
        pyc: &Arc<str>,
        source: &str,
        header: &[u8],
        content: &[u8],
        raw: &[RawFinding],
    ) {
        let Some(header) = parse_header(header) else {
            return;
        };
        if content.len() > SOURCE_LIMIT {
            return;
        }
        let found_in_source = raw
            .iter()
            .filter(|f| f.layer == Some(layer_index) && f.path.as_deref() == Some(source))
            .map(|f| f.secret.key())
            .collect();
        self.bytecode.insert(
            (layer_index, Arc::clone(pyc)),
            BytecodeSource {
                path: source.to_string(),
                digests: FileDigests::of(content),
                header_matches: header.describes(content.len() as u64, None),
                content: content.to_vec(),
                found_in_source,
            },
        );
    }

    /// The provenance of a finding in bytecode compiled from a package's source installed
    /// unmodified, when the secret is in that source: vendor content. `None` otherwise (the
    /// source modified, missing or not read, the header describing another source, or a
    /// secret the source does not hold: the bytecode was not compiled from this source, or
    /// was changed).
    fn compiled_from_verified_source(&self, finding: &RawFinding) -> Option<Provenance> {
        let layer = finding.layer?;
        let entry = self
            .bytecode
            .get(&(layer, Arc::clone(finding.path.as_ref()?)))?;
        let owner = self.by_layer.get(layer)?.as_ref()?.lookup(&entry.path)?;
        let digest = entry.digests.get(owner.hash.as_ref()?.algorithm)?;
        if owner.verify_digest(&digest) != Verdict::Unmodified || !entry.header_matches {
            return None;
        }
        let in_source = entry.found_in_source.contains(&finding.secret.key())
            || match &finding.secret {
                SecretText::Raw(secret) => {
                    !secret.is_empty()
                        && memchr::memmem::find(&entry.content, secret.as_bytes()).is_some()
                }
                SecretText::Sealed { .. } => false,
            };
        if !in_source {
            return None;
        }
        let package = &owner.package;
        Some(Provenance {
            manager: package.manager.as_str().to_string(),
            package: package.name.clone(),
            version: package.version.clone(),
            database: package.database.clone(),
            verified: false,
            vendor: true,
            verdict: ProvenanceVerdict::CompiledFromVerifiedSource,
            original_severity: (finding.severity != Severity::Info).then_some(finding.severity),
        })
    }
}

/// Hashes `paths` of `layer` by walking it again: for the rare large package-owned file with a
/// finding, whose content was gone by the time provenance was known. A layer that cannot be
/// read again leaves its files unhashed (they keep their severity).
pub(super) fn hash_files_again(
    layer: &crate::source::Layer,
    paths: &[Arc<str>],
) -> HashMap<Arc<str>, Arc<FileDigests>> {
    let mut running: HashMap<Arc<str>, (FileHasher, u64)> = HashMap::new();
    let walked = crate::layer::walk_layer(layer, &mut |chunk| {
        if !paths.contains(&chunk.path) {
            return Ok(());
        }
        if chunk.file_offset == 0 {
            running.insert(Arc::clone(&chunk.path), (FileHasher::new(), 0));
        }
        if let Some((hasher, have)) = running.get_mut(&chunk.path) {
            let skip = have
                .checked_sub(chunk.file_offset)
                .and_then(|s| usize::try_from(s).ok());
            match skip.filter(|skip| *skip <= chunk.content.len()) {
                Some(skip) => {
                    hasher.update(&chunk.content[skip..]);
                    *have += (chunk.content.len() - skip) as u64;
                }
                // A sparse file: its stored bytes are not its content.
                None => {
                    running.remove(&chunk.path);
                }
            }
        }
        Ok(())
    });
    if walked.is_err() {
        return HashMap::new();
    }
    running
        .into_iter()
        .map(|(path, (hasher, _))| (path, Arc::new(hasher.finish())))
        .collect()
}

/// How the file holding `finding` compares with what `owner` shipped.
fn judge(owner: &Owner, path: &str, finding: &RawFinding) -> ProvenanceVerdict {
    match &owner.hash {
        Some(recorded) => {
            match finding
                .digests
                .as_ref()
                .and_then(|d| d.get(recorded.algorithm))
            {
                Some(digest) => match owner.verify_digest(&digest) {
                    Verdict::Unmodified => ProvenanceVerdict::Unmodified,
                    _ => ProvenanceVerdict::Modified,
                },
                None => ProvenanceVerdict::NotHashed,
            }
        }
        // Only ecosystems known by their directory (no per-file records) get the benefit of
        // their test paths; a file listed without a hash is not vendor content.
        None if owner.root.is_some() && owner.is_test_or_example(path) => {
            ProvenanceVerdict::TestOrExample
        }
        // npm's documentation and type declarations: no runtime executes them.
        None if owner.root.is_some() && owner.is_npm_documentation(path) => {
            ProvenanceVerdict::Documentation
        }
        None => ProvenanceVerdict::NoRecordedHash,
    }
}

/// The final image's databases into `report`: each read one, the not-read formats, and the
/// malformed records skipped.
fn describe_databases(databases: &[Database], report: &mut PackagesReport) {
    for database in databases {
        if let Some(why) = &database.not_read {
            report.not_read.push(format!("{}: {why}", database.path));
            continue;
        }
        report.databases.push(DatabaseReport {
            manager: database.manager.as_str().to_string(),
            path: database.path.clone(),
            packages: database.packages.len(),
        });
        let skipped = &database.report;
        if skipped.skipped > 0 {
            report.records_skipped += skipped.skipped;
            report.warnings.push(format!(
                "{}: {} malformed record{} ignored{}",
                database.path,
                skipped.skipped,
                if skipped.skipped == 1 { "" } else { "s" },
                skipped
                    .reasons
                    .first()
                    .map(|r| format!(" (first: {r})"))
                    .unwrap_or_default()
            ));
        }
    }
    // Many small databases (one per npm package, one RECORD per wheel) would drown the list:
    // keep the system databases one by one and the rest summed per manager.
    summarise_small_databases(&mut report.databases);
}

/// Keeps dpkg, apk and rpm databases as they are; the per-package databases of the language
/// ecosystems become one entry per manager (`path` then says how many there were).
fn summarise_small_databases(databases: &mut Vec<DatabaseReport>) {
    let mut kept = Vec::new();
    let mut summed: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for database in databases.drain(..) {
        if matches!(database.manager.as_str(), "dpkg" | "apk" | "rpm") {
            kept.push(database);
        } else {
            let entry = summed.entry(database.manager).or_default();
            entry.0 += 1;
            entry.1 += database.packages;
        }
    }
    for (manager, (count, packages)) in summed {
        kept.push(DatabaseReport {
            path: format!("{count} package records"),
            manager,
            packages,
        });
    }
    *databases = kept;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::Symlink;
    use crate::provenance::HashAlgorithm;
    use crate::scan::raw::tests::in_file;
    use crate::source::Content;

    fn chunk(path: &str, content: &[u8], file_offset: u64) -> FileChunk {
        FileChunk {
            path: Arc::from(path),
            content: Content::Owned(Arc::new(content.to_vec())),
            file_offset,
            lines_before: 0,
            report_before: content.len(),
        }
    }

    #[test]
    fn collects_database_files_across_overlapping_chunks() {
        let mut collector = Collector::default();
        collector.offer(&chunk("etc/passwd", b"root", 0));
        collector.offer(&chunk("var/lib/dpkg/status", b"Package: a\n", 0));
        // The next chunk repeats the last 3 bytes (the overlap) before new ones.
        collector.offer(&chunk("var/lib/dpkg/status", b"a\nStatus: x\n", 9));
        collector.offer(&chunk("var/lib/dpkg/info/a.list", b"/etc/a\n", 0));
        let packages = collector.finish();
        assert_eq!(packages.files.len(), 2);
        assert_eq!(&*packages.files[0].content, b"Package: a\nStatus: x\n");
        assert_eq!(packages.files[1].path, "var/lib/dpkg/info/a.list");
        // A gap (a sparse file) drops the file with a reason.
        let mut collector = Collector::default();
        collector.offer(&chunk("var/lib/dpkg/status", b"Package: a\n", 0));
        collector.offer(&chunk("var/lib/dpkg/status", b"later", 1 << 40));
        let packages = collector.finish();
        assert!(packages.files.is_empty());
        assert!(packages.not_kept[0].contains("sparse"), "{packages:?}");
    }

    #[test]
    fn cached_layer_packages_round_trip_as_base64() {
        let packages = LayerPackages {
            files: vec![PackageFile {
                path: "var/lib/rpm/rpmdb.sqlite".into(),
                content: Arc::from(&b"\0\xffSQLite"[..]),
            }],
            not_kept: vec![],
        };
        let json = serde_json::to_string(&packages).unwrap();
        assert!(json.contains("AP9TUUxpdGU="), "{json}");
        let back: LayerPackages = serde_json::from_str(&json).unwrap();
        assert_eq!(&*back.files[0].content, b"\0\xffSQLite");
    }

    fn dpkg_layer(md5_of: &[u8]) -> LayerPackages {
        let md5 = hex::encode(HashAlgorithm::Md5.digest(md5_of));
        let file = |path: &str, content: String| PackageFile {
            path: path.into(),
            content: Arc::from(content.into_bytes()),
        };
        LayerPackages {
            files: vec![
                file(
                    "var/lib/dpkg/status",
                    "Package: libx\nStatus: install ok installed\nVersion: 1.0\n".into(),
                ),
                file("var/lib/dpkg/info/libx.list", "/lib/x/key.pem\n".into()),
                file(
                    "var/lib/dpkg/info/libx.md5sums",
                    format!("{md5}  lib/x/key.pem\n"),
                ),
            ],
            not_kept: vec![],
        }
    }

    fn with_digests(layer: usize, path: &str, content: &[u8]) -> RawFinding {
        let mut finding = in_file(layer, path, 0, "secret");
        finding.digests = Some(Arc::new(FileDigests::of(content)));
        finding
    }

    #[test]
    fn judged_by_the_database_of_the_layer_that_added_the_file() {
        let mut base = WalkedLayer::default();
        base.shallow_symlinks.push(Symlink {
            path: "lib".into(),
            target: "usr/lib".into(),
        });
        let mut purge = WalkedLayer::default();
        purge.changes.whiteouts.insert("var/lib/dpkg/info".into());
        let walked = vec![base, WalkedLayer::default(), purge];
        let packages = vec![dpkg_layer(b"shipped"), LayerPackages::default()];
        let provenances = Provenances::build(&walked, &packages, &[true, true, true]);
        // Shipped bytes, found at usr/lib (merged /usr): vendor, lowered to info.
        let (severity, provenance) =
            provenances.attribute(&with_digests(0, "usr/lib/x/key.pem", b"shipped"));
        let provenance = provenance.unwrap();
        assert_eq!(severity, Severity::Info);
        assert!(provenance.verified && provenance.vendor);
        assert_eq!(provenance.original_severity, Some(Severity::High));
        assert_eq!(
            (provenance.package.as_str(), provenance.version.as_str()),
            ("libx", "1.0")
        );
        // Replaced in layer 1: modified after install, full severity.
        let (severity, provenance) =
            provenances.attribute(&with_digests(1, "usr/lib/x/key.pem", b"a secret"));
        assert_eq!(severity, Severity::High);
        assert_eq!(provenance.unwrap().verdict, ProvenanceVerdict::Modified);
        // Not hashed (a file of many chunks): owned, not verified, full severity.
        let (severity, provenance) = provenances.attribute(&in_file(0, "lib/x/key.pem", 0, "s"));
        assert_eq!(severity, Severity::High);
        assert_eq!(provenance.unwrap().verdict, ProvenanceVerdict::NotHashed);
        // Once the package's file lists are gone (layer 2), nobody owns the path.
        let (_, provenance) = provenances.attribute(&with_digests(2, "lib/x/key.pem", b"shipped"));
        assert!(provenance.is_none());
        assert_eq!(provenances.report.databases[0].packages, 1);
    }

    /// Bytecode that `python3 -m py_compile` writes for `source` (`None` without python3,
    /// unless `CI` is set: then the test fails).
    fn compiled(source: &str) -> Option<Vec<u8>> {
        let dir = tempfile::tempdir().unwrap();
        let py = dir.path().join("mod.py");
        std::fs::write(&py, source).unwrap();
        let status = std::process::Command::new("python3")
            .args(["-m", "py_compile"])
            .arg(&py)
            .status();
        match status {
            Ok(status) if status.success() => {}
            _ if std::env::var_os("CI").is_some() => panic!("python3 -m py_compile failed"),
            _ => return None,
        }
        let cache = dir.path().join("__pycache__");
        let pyc = std::fs::read_dir(cache)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        Some(std::fs::read(pyc).unwrap())
    }

    fn random_token() -> String {
        const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
        (0..32)
            .map(|_| char::from(ALPHABET[fastrand::usize(..ALPHABET.len())]))
            .collect()
    }

    /// A pip-installed module (RECORD with its sha256; its bytecode listed without a hash).
    fn pip_module(source: &str) -> Vec<LayerPackages> {
        let hash = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(HashAlgorithm::Sha256.digest(source.as_bytes()));
        let record = format!(
            "pkg/mod.py,sha256={hash},{}\npkg/__pycache__/mod.cpython-311.pyc,,\n",
            source.len()
        );
        vec![LayerPackages {
            files: vec![PackageFile {
                path: "site/pkg-1.0.dist-info/RECORD".into(),
                content: Arc::from(record.into_bytes()),
            }],
            not_kept: vec![],
        }]
    }

    const PYC: &str = "site/pkg/__pycache__/mod.cpython-311.pyc";

    /// Judges a finding of `secret` in bytecode `pyc` of the verified `source`, whose bytes on
    /// the layer are `on_layer`.
    fn judge_bytecode(
        source: &str,
        on_layer: &str,
        pyc: &[u8],
        secret: &str,
    ) -> (Severity, Option<Provenance>) {
        let walked = vec![WalkedLayer::default()];
        let mut provenances = Provenances::build(&walked, &pip_module(source), &[true]);
        let finding = in_file(0, PYC, 40, secret);
        let raw = vec![finding.clone()];
        let candidates = provenances.bytecode_candidates(&raw);
        assert_eq!(
            candidates[&0],
            vec![(Arc::from(PYC), "site/pkg/mod.py".to_string())]
        );
        provenances.insert_bytecode_source(
            0,
            &Arc::from(PYC),
            "site/pkg/mod.py",
            &pyc[..16],
            on_layer.as_bytes(),
            &raw,
        );
        provenances.attribute(&finding)
    }

    #[test]
    fn bytecode_of_a_verified_source_takes_its_verdict() {
        let token = random_token();
        let source = format!("\"\"\"Module.\"\"\"\nAPI_TOKEN = \"{token}\"\n");
        let Some(pyc) = compiled(&source) else {
            return;
        };
        let (severity, provenance) = judge_bytecode(&source, &source, &pyc, &token);
        let provenance = provenance.unwrap();
        assert_eq!(severity, Severity::Info);
        assert_eq!(
            provenance.verdict,
            ProvenanceVerdict::CompiledFromVerifiedSource
        );
        assert_eq!(
            (provenance.package.as_str(), provenance.verified),
            ("pkg", false)
        );
        assert_eq!(provenance.original_severity, Some(Severity::High));
    }

    #[test]
    fn bytecode_is_not_a_loophole() {
        let token = random_token();
        let source = format!("API_TOKEN = \"{token}\"\n");
        // Bytecode of another source of the same size, holding another secret.
        let other = random_token();
        let Some(forged) = compiled(&format!("API_TOKEN = \"{other}\"\n")) else {
            return;
        };
        let (severity, provenance) = judge_bytecode(&source, &source, &forged, &other);
        assert_eq!(severity, Severity::High);
        assert_eq!(
            provenance.unwrap().verdict,
            ProvenanceVerdict::NoRecordedHash
        );
        // The source edited after install: the bytecode of the edit keeps its severity.
        let edited = format!("API_TOKEN = \"{other}\"\n");
        let (severity, _) = judge_bytecode(&source, &edited, &forged, &other);
        assert_eq!(severity, Severity::High);
        // A header that describes another source (more code beside the same secret).
        let Some(longer) = compiled(&format!("API_TOKEN = \"{token}\"\nX = 1\n")) else {
            return;
        };
        let (severity, _) = judge_bytecode(&source, &source, &longer, &token);
        assert_eq!(severity, Severity::High);
        // Not bytecode at all.
        let (severity, _) = judge_bytecode(&source, &source, &[0u8; 16], &token);
        assert_eq!(severity, Severity::High);
    }

    #[test]
    fn npm_documentation_is_vendor_but_runtime_code_is_not() {
        let file = |path: &str, content: &str| PackageFile {
            path: path.into(),
            content: Arc::from(content.as_bytes()),
        };
        let packages = vec![LayerPackages {
            files: vec![file(
                "app/node_modules/@aws-sdk/client-x/package.json",
                r#"{"name": "@aws-sdk/client-x", "version": "3.1.0"}"#,
            )],
            not_kept: vec![],
        }];
        let provenances = Provenances::build(&[WalkedLayer::default()], &packages, &[true]);
        for path in [
            "README.md",
            "dist-types/commands/GetCommand.d.ts",
            "docs/auth.html",
        ] {
            let finding = in_file(
                0,
                &format!("app/node_modules/@aws-sdk/client-x/{path}"),
                0,
                "s",
            );
            let (severity, provenance) = provenances.attribute(&finding);
            let provenance = provenance.unwrap();
            assert_eq!(severity, Severity::Info, "{path}");
            assert_eq!(provenance.verdict, ProvenanceVerdict::Documentation);
            assert!(!provenance.verified && provenance.vendor);
        }
        for path in ["dist-cjs/index.js", "package.json", "lib/readme.js"] {
            let finding = in_file(
                0,
                &format!("app/node_modules/@aws-sdk/client-x/{path}"),
                0,
                "s",
            );
            let (severity, provenance) = provenances.attribute(&finding);
            assert_eq!(severity, Severity::High, "{path}");
            assert_eq!(
                provenance.unwrap().verdict,
                ProvenanceVerdict::NoRecordedHash
            );
        }
        // The application's own README beside node_modules is no package's.
        let (severity, provenance) = provenances.attribute(&in_file(0, "app/README.md", 0, "s"));
        assert_eq!((severity, provenance), (Severity::High, None));
    }
}
