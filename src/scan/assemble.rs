//! Turning raw matches into an image's report. Each step is a small function of its inputs,
//! and each costs about the number of matches (times a logarithm), never the number of matches
//! times the number of layers or of other matches: an image may hold tens of thousands of
//! layers, and a file hundreds of thousands of keys.
//!
//! 1. [`add_hard_link_names`]: a hard link's name gets the findings of the file it links to;
//! 2. [`split_inventory`]: certificates go to the inventory, never findings;
//! 3. [`collapse_overlaps`]: of the matches that overlap at one place, one survives: the one
//!    that [`outranks`] the others (more severe, then specific over generic, then longer);
//! 4. [`drop_history_lines_repeating_build_args`]: a secret found in a build argument is not
//!    reported again for the raw `created_by` line that holds it;
//! 5. [`cap_per_item`]: at most `max_findings_per_file` findings per file (or text item), the
//!    most severe; the rest are counted;
//! 6. provenance: the package that installed a finding's file, if any ([`Provenances`]);
//! 7. [`locate`]: a file's status (present, deleted, overwritten) and the layer that removed it;
//! 8. contexts: the masked line of each history and config match (`scan::context`; a file's
//!    was made with its chunk), every secret of the image masked again;
//! 9. [`reported_secret`], [`report_order`], [`group_by_secret`], [`image_stats`]: redaction,
//!    order (most severe, deleted-but-shipped first), one finding per secret with its other
//!    places, counts.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Scanner;
use super::config_items::text_items;
use super::context;
use super::group::group_by_secret;
use super::inventory::{certificate, private_keys, split_inventory};
use super::packages::{LayerPackages, Provenances, hash_files_again};
use super::raw::{RawFinding, SecretText};
use crate::detect::Severity;
use crate::layer::{Status, Timeline, WalkedLayer};
use crate::report::field::ConfigField;
use crate::report::model::{
    Certificate, Finding, ImageReport, ImageStats, LayerReport, Location, LocationKind, NotListed,
    Remediation,
};
use crate::report::redact::{Redactor, fingerprint, redact};
use crate::report::remediation::{
    is_password_hash, password_hash_remediation, published_remediation, remediation, secret_type,
};
use crate::source::Image;

impl Scanner {
    /// Ties matches to layers, history steps and statuses; redacts; sorts; counts.
    pub(super) fn build_report(
        &self,
        image: &Image,
        walked: Vec<WalkedLayer>,
        packages: &[LayerPackages],
        mut raw: Vec<RawFinding>,
        mut chunks_over_limit: Vec<OverLimit>,
    ) -> ImageReport {
        let rules = self.detector.rules();
        let is_generic = |rule: usize| rules[rule].is_generic();
        add_hard_link_names(&walked, &mut raw, &mut chunks_over_limit);
        let (raw, certificates) = split_inventory(raw, &|rule| rules[rule].is_inventory());
        let kept = collapse_overlaps(raw, &is_generic);
        let kept = drop_history_lines_repeating_build_args(kept);
        let limit = self.options.max_findings_per_file;
        let (raw, mut over_limit) = cap_per_item(kept, limit, &is_generic);
        merge_over_limit(&mut over_limit, chunks_over_limit);
        let needed = layers_with_file_findings(raw.iter().chain(&certificates), walked.len());
        let mut provenances = Provenances::build(&walked, packages, &needed);
        let mut raw = hash_large_owned_files(image, &provenances, raw);
        for (layer, pairs) in provenances.bytecode_candidates(&raw) {
            provenances.add_bytecode_sources(layer, &image.layers[layer], &pairs, &raw);
        }
        let timeline = Timeline::new(walked.iter().map(|w| w.changes.clone()).collect());
        let places = Places {
            layer_digests: image
                .layers
                .iter()
                .map(|layer| layer.diff_id.as_ref().or(layer.digest.as_ref()))
                .map(|digest| digest.map(ToString::to_string))
                .collect(),
            history_of_layer: image.config.layer_history(image.layers.len()),
        };

        // The clear-text secrets, to redact them wherever history text repeats them.
        let secrets: Vec<String> = raw
            .iter()
            .filter_map(|f| match &f.secret {
                SecretText::Raw(secret) => Some(secret.clone()),
                SecretText::Sealed { .. } => None,
            })
            .collect();
        let masker = Redactor::new(&secrets);
        context::attach_text_contexts(&mut raw, &text_items(&image.config), &masker);
        let mut texts = SharedTexts::default();
        let (identities, findings): (Vec<String>, Vec<Finding>) = raw
            .into_iter()
            .map(|f| {
                let identity = f.secret.identity();
                let mut finding = self.finding(f, &places, &timeline, &provenances, &mut texts);
                // A file's line was masked with its own chunk's matches; the image's other
                // secrets are masked too, wherever they were found.
                finding.context = finding.context.map(|text| masker.redact_in(&text));
                // A value a package shipped (its test key) stays apart from the same value
                // where the image's owner put it, or another package shipped it: each calls
                // for something else, and each keeps its own provenance.
                let owner = finding
                    .provenance
                    .as_ref()
                    .map(|p| (&p.manager, &p.package, &p.version, p.vendor, p.verified));
                (format!("{identity}/{owner:?}"), finding)
            })
            .unzip();
        drop(texts);
        let not_listed = not_listed(over_limit, limit, &places);
        let keys = private_keys(&findings);
        let findings = in_report_order(identities, findings);
        let findings = group_by_secret(findings);
        let certificates: Vec<Certificate> = certificates
            .iter()
            .map(|f| {
                let (_, status, _) = locate(f, &timeline);
                let (_, package) = provenances.attribute(f);
                certificate(f, places.at(f), status, &keys, package)
            })
            .collect();

        let redact_history = |text: &str| match self.options.show_secrets {
            false => masker.redact_in(text),
            true => text.to_string(),
        };
        let history_of_layer = &places.history_of_layer;
        let layers = layer_reports(image, &walked, history_of_layer, &redact_history);
        let mut stats = image_stats(&walked, &findings, &not_listed);
        stats.certificates = certificates.len();
        ImageReport {
            reference: image.reference.clone(),
            manifest_digest: image.manifest_digest.as_ref().map(|d| d.to_string()),
            config_digest: image.config_digest.to_string(),
            platform: image.platform.clone(),
            layers,
            findings,
            skipped: Vec::new(),
            not_listed,
            packages: provenances.report,
            certificates,
            stats,
            used_by: Vec::new(),
        }
    }

    /// The finding a raw match becomes: its rule's names, its place and fate, its secret as
    /// the report shows it.
    fn finding(
        &self,
        f: RawFinding,
        places: &Places,
        timeline: &Timeline,
        provenances: &Provenances,
        texts: &mut SharedTexts,
    ) -> Finding {
        let rule = &self.detector.rules()[f.rule];
        let (severity, provenance) = provenances.attribute(&f);
        let (kind, status, removed_in_layer) = locate(&f, timeline);
        let (secret, fingerprint) = reported_secret(&f.secret, &rule.id, self.options.show_secrets);
        let secret_type = secret_type(
            &rule.id,
            f.kubernetes_secret_type.as_deref(),
            &rule.kubernetes_secret_type,
            f.path.as_deref(),
        );
        let mut remediation = remediation(secret_type, kind, f.field.as_ref(), status);
        if let Some((_, place)) = f.details.iter().find(|(k, _)| k == "published_in") {
            remediation = published_remediation(remediation, place);
        } else if is_password_hash(f.details.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
            remediation = password_hash_remediation(remediation);
        }
        let remediation = Remediation {
            kubernetes_secret_type: texts.share(remediation.kubernetes_secret_type),
            instead: texts.share(remediation.instead),
            rotate: texts.share(remediation.rotate),
        };
        Finding {
            rule_id: rule.id.clone(),
            rule_name: rule.name.clone(),
            severity,
            secret,
            fingerprint,
            remediation,
            location: places.at(&f),
            status,
            removed_in_layer,
            removed_in_layer_number: removed_in_layer.map(|index| index + 1),
            context: f.context,
            also_found_in: Vec::new(),
            details: f.details.into_iter().collect(),
            provenance,
        }
    }
}

/// One copy of each text that many findings repeat (their remediation advice).
#[derive(Default)]
struct SharedTexts(HashSet<Arc<str>>);

impl SharedTexts {
    /// The copy of `text` already held, or `text` itself, held from now on.
    fn share(&mut self, text: Arc<str>) -> Arc<str> {
        match self.0.get(&*text) {
            Some(held) => Arc::clone(held),
            None => {
                self.0.insert(Arc::clone(&text));
                text
            }
        }
    }
}

/// What a location needs from the image besides the match: each layer's digest and the
/// history step that made it.
struct Places {
    layer_digests: Vec<Option<String>>,
    history_of_layer: Vec<Option<usize>>,
}

impl Places {
    /// Where a match is, as the report says it.
    fn at(&self, f: &RawFinding) -> Location {
        Location {
            line: Some(f.line),
            column: Some(f.column),
            archive_path: f.archive_path.clone(),
            ..self.of(&Item::of(f))
        }
    }

    /// The location of a file or text item (no line, column or archive members).
    fn of(&self, item: &Item) -> Location {
        let history_index = item
            .history_index
            .or_else(|| item.layer.and_then(|i| self.history_of_layer[i]));
        Location {
            kind: item.kind(),
            layer_index: item.layer,
            layer_number: item.layer.map(|index| index + 1),
            layer_digest: item.layer.and_then(|i| self.layer_digests[i].clone()),
            // As a container sees it: tars name members without the leading `/`.
            path: item.path.as_deref().map(|path| format!("/{path}")),
            line: None,
            column: None,
            archive_path: Vec::new(),
            history_index,
            step_number: history_index.map(|index| index + 1),
            field: item.field.clone(),
        }
    }
}

/// Gives digests to the findings in package-owned files too large to have been hashed while
/// matching, by reading their layers again (rare: a file over 8 MiB, owned, with a finding).
fn hash_large_owned_files(
    image: &Image,
    provenances: &Provenances,
    mut raw: Vec<RawFinding>,
) -> Vec<RawFinding> {
    for (layer, paths) in provenances.unhashed_owned_files(&raw) {
        let digests = hash_files_again(&image.layers[layer], &paths);
        for finding in raw.iter_mut().filter(|f| f.layer == Some(layer)) {
            if let Some(found) = finding.path.as_ref().and_then(|p| digests.get(p)) {
                finding.digests = Some(Arc::clone(found));
            }
        }
    }
    raw
}

/// Which layers hold findings (or certificates) in files: those need the databases as they
/// stood there.
fn layers_with_file_findings<'a>(
    raw: impl IntoIterator<Item = &'a RawFinding>,
    layers: usize,
) -> Vec<bool> {
    let mut needed = vec![false; layers];
    for finding in raw.into_iter().filter(|f| f.path.is_some()) {
        if let Some(slot) = finding.layer.and_then(|layer| needed.get_mut(layer)) {
            *slot = true;
        }
    }
    needed
}

/// A hard link names the same content as its target: report the target's findings under the
/// link's name too (the content was scanned once), and the target's count of findings over the
/// limit. A link to a link names the content of the file at the end of the chain.
fn add_hard_link_names(
    walked: &[WalkedLayer],
    raw: &mut Vec<RawFinding>,
    over_limit: &mut Vec<OverLimit>,
) {
    let linking: HashSet<usize> = (0..walked.len())
        .filter(|&layer| !walked[layer].hard_links.is_empty())
        .collect();
    if linking.is_empty() {
        return;
    }
    // One pass over the findings, whatever the number of layers with links.
    let mut by_file: HashMap<(usize, &str), Vec<usize>> = HashMap::new();
    for (index, finding) in raw.iter().enumerate() {
        if let (Some(layer), Some(path)) = (finding.layer, &finding.path)
            && linking.contains(&layer)
        {
            by_file.entry((layer, path)).or_default().push(index);
        }
    }
    let over_by_file: HashMap<(usize, &str), usize> = over_limit
        .iter()
        .enumerate()
        .filter_map(|(index, o)| Some(((o.item.layer?, o.item.path.as_deref()?), index)))
        .collect();
    let (mut extra, mut extra_over) = (Vec::new(), Vec::new());
    for &layer in &linking {
        let links: HashMap<&str, &str> = walked[layer]
            .hard_links
            .iter()
            .map(|link| (link.path.as_str(), link.target.as_str()))
            .collect();
        for link in &walked[layer].hard_links {
            let content = (layer, chain_end(&links, &link.target));
            let name = Some(Arc::from(link.path.as_str()));
            for &index in by_file.get(&content).into_iter().flatten() {
                extra.push(RawFinding {
                    path: name.clone(),
                    ..raw[index].clone()
                });
            }
            if let Some(&index) = over_by_file.get(&content) {
                let mut copy = over_limit[index].clone();
                copy.item.path = name;
                extra_over.push(copy);
            }
        }
    }
    raw.extend(extra);
    over_limit.extend(extra_over);
}

/// Follows hard links from `target` to the path that holds the content. A cycle (which no
/// runtime can extract) stops after as many hops as there are links.
fn chain_end<'a>(links: &HashMap<&'a str, &'a str>, mut target: &'a str) -> &'a str {
    for _ in 0..links.len() {
        match links.get(target) {
            Some(next) if *next != target => target = next,
            _ => break,
        }
    }
    target
}

/// Whether `challenger` should replace `kept` where both matched the same bytes: it is more
/// severe; or as severe and specific where `kept` is generic; or, those equal, longer (it
/// holds more of the secret). On a full tie the first match (lowest offset) stays.
fn outranks(
    challenger: &RawFinding,
    kept: &RawFinding,
    is_generic_rule: &dyn Fn(usize) -> bool,
) -> bool {
    let rank = |f: &RawFinding| (f.severity, !is_generic_rule(f.rule), f.length);
    rank(challenger) > rank(kept)
}

/// The place of a match: the file or text item, and the archive members inside it. Matches
/// overlap only at the same place.
fn place(f: &RawFinding) -> impl Ord + '_ {
    (f.layer, &f.path, f.history_index, &f.field, &f.archive_path)
}

/// Where several rules matched the same secret at the same place (see
/// [`RawFinding::overlaps`]), keeps one: the one that [`outranks`] the others. Exact
/// duplicates (the same match found twice) collapse too. The result is in place order.
///
/// Sorted by place and offset, a match can only overlap the entry kept last: every entry kept
/// before it at the same place ended before that one started (or it would have been merged
/// into it), and later matches start later still. So each match is compared once.
fn collapse_overlaps(
    mut raw: Vec<RawFinding>,
    is_generic_rule: &dyn Fn(usize) -> bool,
) -> Vec<RawFinding> {
    raw.sort_by(|a, b| (place(a), a.offset).cmp(&(place(b), b.offset)));
    // In place: a file of many keys has as many matches, and no second copy of them.
    raw.dedup_by(|later, kept| {
        if !kept.overlaps(later) {
            return false;
        }
        if outranks(later, kept, is_generic_rule) {
            std::mem::swap(later, kept);
        }
        true
    });
    raw
}

/// A file or text item: what the per-file limit counts findings in. Archive members count as
/// part of the file that holds them.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(super) struct Item {
    pub layer: Option<usize>,
    pub path: Option<Arc<str>>,
    pub history_index: Option<usize>,
    pub field: Option<ConfigField>,
}

impl Item {
    fn of(f: &RawFinding) -> Item {
        Item {
            layer: f.layer,
            path: f.path.clone(),
            history_index: f.history_index,
            field: f.field.clone(),
        }
    }

    /// Which of the three places the item is.
    fn kind(&self) -> LocationKind {
        match (self.layer, &self.path) {
            (Some(_), Some(_)) => LocationKind::LayerFile,
            _ if self.history_index.is_some() => LocationKind::History,
            _ => LocationKind::Config,
        }
    }

    /// Whether `f` is in this item.
    fn holds(&self, f: &RawFinding) -> bool {
        (self.layer, &self.path, self.history_index, &self.field)
            == (f.layer, &f.path, f.history_index, &f.field)
    }
}

/// The findings of one item left out by the per-file limit.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct OverLimit {
    pub item: Item,
    pub by_severity: BTreeMap<Severity, usize>,
}

impl Scanner {
    /// Caps the matches of one chunk of a file at the per-file limit, so that a file of keys
    /// costs memory for the limit rather than for every key. The chunk's matches are collapsed
    /// first, so only distinct secrets are counted; the file is capped again once all its
    /// chunks are in (the most severe of the whole file are among the most severe of its
    /// chunks).
    pub(super) fn cap_chunk(&self, found: Vec<RawFinding>) -> (Vec<RawFinding>, Vec<OverLimit>) {
        let limit = self.options.max_findings_per_file;
        if limit == 0 || found.len() <= limit {
            return (found, Vec::new());
        }
        let rules = self.detector.rules();
        let is_generic = |rule: usize| rules[rule].is_generic();
        // Certificates are an inventory, not findings: never capped.
        let (found, inventory) = split_inventory(found, &|rule| rules[rule].is_inventory());
        let (mut kept, over) =
            cap_per_item(collapse_overlaps(found, &is_generic), limit, &is_generic);
        kept.extend(inventory);
        (kept, over)
    }
}

/// Adds the counts of `earlier` (what chunk-level caps left out) to `over_limit`, item by item.
fn merge_over_limit(over_limit: &mut Vec<OverLimit>, earlier: Vec<OverLimit>) {
    let mut index: HashMap<Item, usize> = over_limit
        .iter()
        .enumerate()
        .map(|(i, o)| (o.item.clone(), i))
        .collect();
    for entry in earlier {
        match index.get(&entry.item) {
            Some(&i) => {
                for (severity, count) in entry.by_severity {
                    *over_limit[i].by_severity.entry(severity).or_default() += count;
                }
            }
            None => {
                index.insert(entry.item.clone(), over_limit.len());
                over_limit.push(entry);
            }
        }
    }
}

/// Keeps at most `limit` findings per item (0: no limit): the most severe, then specific
/// over generic, then the first in the file. The others are counted per item and severity.
fn cap_per_item(
    mut raw: Vec<RawFinding>,
    limit: usize,
    is_generic_rule: &dyn Fn(usize) -> bool,
) -> (Vec<RawFinding>, Vec<OverLimit>) {
    if limit == 0 {
        return (raw, Vec::new());
    }
    let order = |f: &RawFinding| {
        (
            std::cmp::Reverse((f.severity, !is_generic_rule(f.rule))),
            f.offset,
        )
    };
    raw.sort_by(|a, b| {
        let (a_item, b_item) = (
            (a.layer, &a.path, a.history_index, &a.field),
            (b.layer, &b.path, b.history_index, &b.field),
        );
        a_item
            .cmp(&b_item)
            .then_with(|| order(a).cmp(&order(b)))
            .then_with(|| a.archive_path.cmp(&b.archive_path))
    });
    // Sized once: grown by doubling, it would hold up to 1.5 times the findings at its peak.
    let mut kept = Vec::with_capacity(raw.len());
    let mut over_limit: Vec<OverLimit> = Vec::new();
    let mut current: Option<Item> = None;
    let mut in_item = 0;
    for finding in raw {
        if !current.as_ref().is_some_and(|item| item.holds(&finding)) {
            current = Some(Item::of(&finding));
            in_item = 0;
        }
        in_item += 1;
        if in_item <= limit {
            kept.push(finding);
            continue;
        }
        if in_item == limit + 1 {
            over_limit.push(OverLimit {
                item: Item::of(&finding),
                by_severity: BTreeMap::new(),
            });
        }
        if let Some(last) = over_limit.last_mut() {
            *last.by_severity.entry(finding.severity).or_default() += 1;
        }
    }
    (kept, over_limit)
}

/// The report's entries for the findings over the limit, in report order.
fn not_listed(over_limit: Vec<OverLimit>, limit: usize, places: &Places) -> Vec<NotListed> {
    let mut entries: Vec<NotListed> = over_limit
        .into_iter()
        .map(|over| NotListed {
            location: places.of(&over.item),
            count: over.by_severity.values().sum(),
            by_severity: over.by_severity,
            limit,
        })
        .collect();
    entries.sort_by(|a, b| a.location.cmp(&b.location));
    entries
}

/// The same secret reported for a history step both from its raw `created_by` line and from
/// a build argument parsed out of that line: keeps the build-arg one, which names the argument.
fn drop_history_lines_repeating_build_args(mut raw: Vec<RawFinding>) -> Vec<RawFinding> {
    let build_arg_secrets: HashSet<(usize, String)> = raw
        .iter()
        .filter(|f| matches!(f.field, Some(ConfigField::BuildArg(_))))
        .filter_map(|f| Some((f.history_index?, f.secret.key())))
        .collect();
    raw.retain(|f| match (f.history_index, &f.field) {
        (Some(history), Some(ConfigField::CreatedBy)) => {
            !build_arg_secrets.contains(&(history, f.secret.key()))
        }
        _ => true,
    });
    raw
}

/// Where a finding is and what became of it: a file of a layer has the status the later
/// layers gave it (and the layer that deleted or replaced it); history and config text ships
/// as it is.
fn locate(finding: &RawFinding, timeline: &Timeline) -> (LocationKind, Status, Option<usize>) {
    match (finding.layer, &finding.path) {
        (Some(layer), Some(path)) => {
            let (status, removed) = timeline.fate(layer, path);
            (LocationKind::LayerFile, status, removed)
        }
        _ => (Item::of(finding).kind(), Status::Present, None),
    }
}

/// The secret as the report shows it and its fingerprint: redacted unless `show_secrets`;
/// a secret from the layer cache was sealed (redacted) when stored.
fn reported_secret(secret: &SecretText, rule_id: &str, show_secrets: bool) -> (String, String) {
    match secret {
        SecretText::Raw(raw) if show_secrets => (raw.clone(), fingerprint(rule_id, raw)),
        SecretText::Raw(raw) => (redact(raw), fingerprint(rule_id, raw)),
        SecretText::Sealed {
            redacted,
            fingerprint,
            ..
        } => (redacted.clone(), fingerprint.clone()),
    }
}

/// `findings` (each with its value's identity) sorted by [`report_order`].
fn in_report_order(identities: Vec<String>, findings: Vec<Finding>) -> Vec<(String, Finding)> {
    let mut paired: Vec<(String, Finding)> = identities.into_iter().zip(findings).collect();
    paired.sort_by(|(_, a), (_, b)| report_order(a, b));
    paired
}

/// Report order: the most severe first; as severe, what a later layer deleted or overwrote
/// (still shipped, and invisible in a container) before what is present; then by location
/// (layer files by layer and path, then history, then config), rule and fingerprint, so two
/// reports of one image diff cleanly. The first place of a secret in this order is the one
/// its finding names (see [`group_by_secret`]).
fn report_order(a: &Finding, b: &Finding) -> std::cmp::Ordering {
    let key = |f: &Finding| {
        (
            std::cmp::Reverse(f.severity),
            f.status == Status::Present,
            f.location.clone(),
        )
    };
    key(a)
        .cmp(&key(b))
        .then_with(|| (&a.rule_id, &a.fingerprint).cmp(&(&b.rule_id, &b.fingerprint)))
}

/// One entry per layer: its digests and sizes as the image describes them, what the walk
/// counted, and the history step that made it (redacted by `redact_history`).
fn layer_reports(
    image: &Image,
    walked: &[WalkedLayer],
    history_of_layer: &[Option<usize>],
    redact_history: &dyn Fn(&str) -> String,
) -> Vec<LayerReport> {
    image
        .layers
        .iter()
        .zip(walked)
        .enumerate()
        .map(|(index, (layer, walk))| {
            let history_index = history_of_layer[index];
            LayerReport {
                index,
                number: index + 1,
                digest: layer.digest.as_ref().map(|d| d.to_string()),
                diff_id: layer.diff_id.as_ref().map(|d| d.to_string()),
                media_type: layer.media_type.clone(),
                compression: walk.compression,
                size: layer.size,
                files: walk.files,
                content_bytes: walk.content_bytes,
                history_index,
                step_number: history_index.map(|h| h + 1),
                created_by: history_index
                    .and_then(|h| image.config.history[h].created_by.as_deref())
                    .map(redact_history),
                skipped: walk.skipped.clone(),
            }
        })
        .collect()
}

/// The image's counts. Cache hits and skipped items are the scan's to fill in.
fn image_stats(
    walked: &[WalkedLayer],
    findings: &[Finding],
    not_listed: &[NotListed],
) -> ImageStats {
    let mut by_severity = BTreeMap::new();
    for finding in findings {
        *by_severity.entry(finding.severity).or_default() += 1;
    }
    ImageStats {
        layers: walked.len(),
        layers_skipped: walked.iter().filter(|w| w.skipped.is_some()).count(),
        layers_from_cache: 0,
        items_skipped: 0,
        items_irregular: 0,
        files: walked.iter().map(|w| w.files).sum(),
        content_bytes: walked.iter().map(|w| w.content_bytes).sum(),
        stored_bytes: walked.iter().map(|w| w.stored_bytes).sum(),
        findings: findings.len(),
        by_severity,
        deleted_but_shipped: findings
            .iter()
            .filter(|f| f.status != Status::Present)
            .count(),
        findings_not_listed: not_listed.iter().map(|n| n.count).sum(),
        certificates: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::{HardLink, LayerChanges};
    use crate::scan::raw::tests::{in_file, in_history};

    /// Rule 1 is the generic one in these tests.
    fn rule_1_is_generic(rule: usize) -> bool {
        rule == 1
    }

    fn with(mut finding: RawFinding, rule: usize, severity: Severity) -> RawFinding {
        finding.rule = rule;
        finding.severity = severity;
        finding
    }

    fn rules_of(kept: &[RawFinding]) -> Vec<usize> {
        kept.iter().map(|f| f.rule).collect()
    }

    #[test]
    fn hard_links_get_the_findings_of_their_target_in_the_same_layer() {
        let walked = vec![
            WalkedLayer {
                hard_links: vec![HardLink {
                    path: "usr/bin/key-link".into(),
                    target: "etc/key".into(),
                }],
                ..WalkedLayer::default()
            },
            WalkedLayer::default(),
        ];
        let raw = vec![
            in_file(0, "etc/key", 0, "secret-one"),
            in_file(1, "etc/key", 0, "secret-two"),
            in_file(0, "etc/other", 0, "secret-three"),
        ];
        let raw = collapse_overlaps(raw, &|_| false);
        let (mut raw, mut over_limit) = cap_per_item(raw, 100, &|_| false);
        add_hard_link_names(&walked, &mut raw, &mut over_limit);
        assert_eq!(raw.len(), 4);
        let link = &raw[3];
        assert_eq!(link.path.as_deref(), Some("usr/bin/key-link"));
        assert_eq!(link.layer, Some(0));
        assert_eq!(link.secret, SecretText::Raw("secret-one".into()));
    }

    #[test]
    fn every_name_in_a_hard_link_chain_gets_the_findings_of_the_file() {
        let link = |path: &str, target: &str| HardLink {
            path: path.into(),
            target: target.into(),
        };
        let walked = vec![WalkedLayer {
            hard_links: vec![
                link("first-hop", "etc/key"),
                link("second-hop", "first-hop"),
                link("third-hop", "second-hop"),
                // A cycle no runtime can extract ends the chain without looping.
                link("loop-a", "loop-b"),
                link("loop-b", "loop-a"),
            ],
            ..WalkedLayer::default()
        }];
        let mut raw = vec![in_file(0, "etc/key", 0, "secret-one")];
        add_hard_link_names(&walked, &mut raw, &mut Vec::new());
        let mut names: Vec<&str> = raw.iter().filter_map(|f| f.path.as_deref()).collect();
        names.sort();
        assert_eq!(
            names,
            vec!["etc/key", "first-hop", "second-hop", "third-hop"]
        );
        assert!(
            raw.iter()
                .all(|f| f.secret == SecretText::Raw("secret-one".into()))
        );
    }

    #[test]
    fn a_more_severe_match_outranks_a_specific_one() {
        let specific = with(in_file(0, "f", 0, "abcdefgh"), 0, Severity::Medium);
        let generic = with(in_file(0, "f", 0, "abcdefgh"), 1, Severity::High);
        assert!(outranks(&generic, &specific, &rule_1_is_generic));
        assert!(!outranks(&specific, &generic, &rule_1_is_generic));
    }

    #[test]
    fn as_severe_a_specific_rule_outranks_a_generic_one_even_when_shorter() {
        let generic = with(in_file(0, "f", 0, "password=abcdefgh"), 1, Severity::High);
        let specific = with(in_file(0, "f", 9, "abcdefgh"), 0, Severity::High);
        assert!(outranks(&specific, &generic, &rule_1_is_generic));
        let kept = collapse_overlaps(vec![generic, specific], &rule_1_is_generic);
        assert_eq!(rules_of(&kept), [0]);
        assert_eq!(kept[0].offset, 9);
    }

    #[test]
    fn otherwise_the_longer_match_wins_and_a_tie_keeps_the_first() {
        let short = with(in_file(0, "f", 0, "abcd"), 0, Severity::High);
        let long = with(in_file(0, "f", 2, "cdefgh"), 2, Severity::High);
        assert_eq!(
            rules_of(&collapse_overlaps(
                vec![long.clone(), short.clone()],
                &|_| false
            )),
            [2]
        );
        let twin = with(in_file(0, "f", 0, "abcd"), 3, Severity::High);
        assert_eq!(
            rules_of(&collapse_overlaps(vec![short, twin], &|_| false)),
            [0]
        );
    }

    #[test]
    fn matches_at_different_places_are_all_kept() {
        let raw = vec![
            in_file(0, "f", 0, "abcd"),
            in_file(0, "f", 4, "efgh"),
            in_file(0, "g", 0, "abcd"),
            in_file(1, "f", 0, "abcd"),
            {
                let mut nested = in_file(0, "f", 0, "abcd");
                nested.archive_path = vec!["inner.zip".into()];
                nested
            },
        ];
        assert_eq!(collapse_overlaps(raw, &|_| false).len(), 5);
    }

    #[test]
    fn a_build_arg_secret_is_not_reported_again_for_its_created_by_line() {
        let build_arg = ConfigField::BuildArg("NPM_TOKEN".into());
        let raw = vec![
            in_history(3, ConfigField::CreatedBy, 14, "npm_secret"),
            in_history(3, build_arg.clone(), 10, "npm_secret"),
            // Another step's line, and another secret on the same line, stay.
            in_history(4, ConfigField::CreatedBy, 14, "npm_secret"),
            in_history(3, ConfigField::CreatedBy, 40, "other_secret"),
        ];
        let kept = drop_history_lines_repeating_build_args(raw);
        let places: Vec<(Option<usize>, String)> = kept
            .iter()
            .map(|f| (f.history_index, f.field.as_ref().unwrap().to_string()))
            .collect();
        assert_eq!(
            places,
            [
                (Some(3), "build-arg NPM_TOKEN".to_string()),
                (Some(4), "created_by".to_string()),
                (Some(3), "created_by".to_string()),
            ]
        );
    }

    #[test]
    fn sealed_secrets_are_matched_by_fingerprint() {
        let sealed = SecretText::Raw("npm_secret".into()).seal("npm-token");
        let mut line = in_history(3, ConfigField::CreatedBy, 14, "");
        line.secret = sealed.clone();
        let mut arg = in_history(3, ConfigField::BuildArg("T".into()), 2, "");
        arg.secret = sealed;
        assert_eq!(
            drop_history_lines_repeating_build_args(vec![line, arg]).len(),
            1
        );
    }

    #[test]
    fn files_get_their_fate_and_text_ships_as_it_is() {
        let deleting = LayerChanges {
            whiteouts: ["etc/key".to_string()].into(),
            ..LayerChanges::default()
        };
        let overwriting = LayerChanges {
            written: [("etc/conf".to_string(), false)].into(),
            ..LayerChanges::default()
        };
        let timeline = Timeline::new(vec![LayerChanges::default(), deleting, overwriting]);
        assert_eq!(
            locate(&in_file(0, "etc/key", 0, "x"), &timeline),
            (LocationKind::LayerFile, Status::Deleted, Some(1))
        );
        assert_eq!(
            locate(&in_file(0, "etc/conf", 0, "x"), &timeline),
            (LocationKind::LayerFile, Status::Overwritten, Some(2))
        );
        assert_eq!(
            locate(&in_file(2, "etc/key", 0, "x"), &timeline),
            (LocationKind::LayerFile, Status::Present, None)
        );
        assert_eq!(
            locate(&in_history(0, ConfigField::CreatedBy, 0, "x"), &timeline),
            (LocationKind::History, Status::Present, None)
        );
        let mut config = in_history(0, ConfigField::env("TOKEN"), 0, "x");
        config.history_index = None;
        assert_eq!(
            locate(&config, &timeline),
            (LocationKind::Config, Status::Present, None)
        );
    }

    #[test]
    fn secrets_are_redacted_unless_asked_and_sealed_ones_stay_sealed() {
        let raw = SecretText::Raw("ghp_Zq3LmN8pR2sT4vW6xY8zA1bC3dE5fG123456".into());
        let expected_fingerprint =
            fingerprint("github-pat", "ghp_Zq3LmN8pR2sT4vW6xY8zA1bC3dE5fG123456");
        let (shown, fp) = reported_secret(&raw, "github-pat", true);
        assert_eq!(shown, "ghp_Zq3LmN8pR2sT4vW6xY8zA1bC3dE5fG123456");
        assert_eq!(fp, expected_fingerprint);
        let (redacted, fp) = reported_secret(&raw, "github-pat", false);
        assert!(redacted.starts_with("ghp_*") && !redacted.contains("Zq3LmN8p"));
        assert_eq!(fp, expected_fingerprint);
        // A cached secret cannot be shown: only its sealed form exists.
        let (sealed_shown, fp) = reported_secret(&raw.seal("github-pat"), "github-pat", true);
        assert_eq!((sealed_shown, fp), (redacted, expected_fingerprint));
    }

    fn finding_at(location: Location, rule_id: &str, status: Status) -> Finding {
        let mut finding =
            crate::report::sample::finding(rule_id, Severity::High, "00", location, status, None);
        finding.severity = if rule_id == "b" {
            Severity::Low
        } else {
            Severity::High
        };
        finding
    }

    #[test]
    fn findings_sort_by_severity_then_fate_then_place_then_rule() {
        let file = |layer: usize, path: &str| Location {
            kind: LocationKind::LayerFile,
            layer_index: Some(layer),
            path: Some(path.into()),
            ..Location::default()
        };
        let config = |name: &str| Location {
            kind: LocationKind::Config,
            field: Some(ConfigField::env(name)),
            ..Location::default()
        };
        let mut findings = [
            finding_at(config("B"), "a", Status::Present),
            finding_at(file(1, "a"), "a", Status::Present),
            finding_at(config("A"), "a", Status::Present),
            finding_at(file(0, "z"), "b", Status::Deleted),
            finding_at(file(0, "z"), "a", Status::Present),
            finding_at(file(2, "y"), "a", Status::Overwritten),
        ];
        findings.sort_by(report_order);
        let order: Vec<String> = findings
            .iter()
            .map(|f| format!("{} {}", f.location.uri(), f.rule_id))
            .collect();
        // Rule "b" is low: last, though deleted; the overwritten high one leads.
        assert_eq!(
            order,
            [
                "layer/3/y a",
                "layer/1/z a",
                "layer/2/a a",
                "config/Env/A a",
                "config/Env/B a",
                "layer/1/z b",
            ]
        );
    }

    #[test]
    fn stats_count_layers_files_severities_and_shipped_deletions() {
        let walked = vec![
            WalkedLayer {
                files: 3,
                content_bytes: 300,
                stored_bytes: 100,
                ..WalkedLayer::default()
            },
            WalkedLayer {
                skipped: Some("foreign layer".into()),
                ..WalkedLayer::default()
            },
            WalkedLayer {
                files: 2,
                content_bytes: 20,
                stored_bytes: 10,
                ..WalkedLayer::default()
            },
        ];
        let at = Location::default();
        let findings = vec![
            finding_at(at.clone(), "a", Status::Deleted),
            finding_at(at.clone(), "a", Status::Present),
            finding_at(at.clone(), "b", Status::Overwritten),
        ];
        let stats = image_stats(&walked, &findings, &[]);
        assert_eq!((stats.layers, stats.layers_skipped, stats.files), (3, 1, 5));
        assert_eq!((stats.content_bytes, stats.stored_bytes), (320, 110));
        assert_eq!((stats.findings, stats.deleted_but_shipped), (3, 2));
        assert_eq!(
            stats.by_severity,
            BTreeMap::from([(Severity::Low, 1), (Severity::High, 2)])
        );
    }

    /// A tiny deterministic generator (xorshift), so failures reproduce.
    struct Random(u64);

    impl Random {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    /// Matches crowded into few places, offsets and lengths, so they overlap, nest and tie.
    fn random_matches(random: &mut Random, count: usize) -> Vec<RawFinding> {
        let severities = [Severity::Low, Severity::Medium, Severity::High];
        (0..count)
            .map(|_| {
                let layer = random.below(2) as usize;
                let path = ["a", "b"][random.below(2) as usize];
                let mut f = in_file(layer, path, random.below(40), "");
                f.length = random.below(8);
                f.rule = random.below(4) as usize;
                f.severity = severities[random.below(3) as usize];
                if random.below(4) == 0 {
                    f.archive_path = vec!["inner.zip".into()];
                }
                f.secret = SecretText::Raw(format!("s{}", random.below(1000)));
                f
            })
            .collect()
    }

    /// The collapse as first written: each match compared with every entry kept so far.
    fn collapse_by_comparing_all(
        mut raw: Vec<RawFinding>,
        is_generic_rule: &dyn Fn(usize) -> bool,
    ) -> Vec<RawFinding> {
        raw.sort_by(|a, b| {
            (a.layer, &a.path, a.history_index, &a.field, a.offset).cmp(&(
                b.layer,
                &b.path,
                b.history_index,
                &b.field,
                b.offset,
            ))
        });
        let mut kept: Vec<RawFinding> = Vec::new();
        for finding in raw {
            match kept.iter().rposition(|k| k.overlaps(&finding)) {
                Some(index) if outranks(&finding, &kept[index], is_generic_rule) => {
                    kept[index] = finding
                }
                Some(_) => {}
                None => kept.push(finding),
            }
        }
        kept
    }

    /// What identifies a kept match, in a canonical order.
    fn identities(kept: &[RawFinding]) -> Vec<String> {
        let mut ids: Vec<String> = kept
            .iter()
            .map(|f| {
                format!(
                    "{:?} {:?} {:?} {} {} {} {:?} {:?}",
                    f.layer,
                    f.path,
                    f.archive_path,
                    f.offset,
                    f.length,
                    f.rule,
                    f.severity,
                    f.secret
                )
            })
            .collect();
        ids.sort();
        ids
    }

    #[test]
    fn the_linear_collapse_keeps_what_comparing_with_every_kept_entry_keeps() {
        let mut random = Random(0x2545_f491_4f6c_dd1d);
        for round in 0..3_000 {
            let raw = random_matches(&mut random, round % 30);
            // Ties in the reference depend on input order; give both the same order.
            let expected = collapse_by_comparing_all(raw.clone(), &rule_1_is_generic);
            let kept = collapse_overlaps(raw.clone(), &rule_1_is_generic);
            assert_eq!(identities(&kept), identities(&expected), "{raw:#?}");
        }
    }

    /// The cap the simple way: per item, every finding ranked, the first `limit` kept.
    fn cap_by_ranking_each_item(
        raw: &[RawFinding],
        limit: usize,
    ) -> (Vec<RawFinding>, BTreeMap<String, BTreeMap<Severity, usize>>) {
        let mut items: BTreeMap<String, Vec<RawFinding>> = BTreeMap::new();
        for f in raw {
            let key = format!("{:?} {:?}", f.layer, f.path);
            items.entry(key).or_default().push(f.clone());
        }
        let (mut kept, mut counted) = (Vec::new(), BTreeMap::new());
        for (key, mut findings) in items {
            findings.sort_by_key(|f| {
                (
                    std::cmp::Reverse((f.severity, !rule_1_is_generic(f.rule))),
                    f.offset,
                    f.archive_path.clone(),
                )
            });
            for (rank, f) in findings.into_iter().enumerate() {
                if rank < limit {
                    kept.push(f);
                } else {
                    let by_severity: &mut BTreeMap<Severity, usize> =
                        counted.entry(key.clone()).or_default();
                    *by_severity.entry(f.severity).or_default() += 1;
                }
            }
        }
        (kept, counted)
    }

    #[test]
    fn the_cap_keeps_the_most_severe_and_counts_the_rest_per_file() {
        let mut random = Random(0x9e37_79b9_7f4a_7c15);
        for round in 0..2_000 {
            let raw = collapse_overlaps(random_matches(&mut random, round % 40), &|_| false);
            let limit = 1 + round % 7;
            let (expected_kept, expected_counted) = cap_by_ranking_each_item(&raw, limit);
            let (kept, over_limit) = cap_per_item(raw.clone(), limit, &rule_1_is_generic);
            // Which findings survive may differ only between findings of the same rank.
            let rank_of = |kept: &[RawFinding]| {
                let mut ranks: Vec<String> = kept
                    .iter()
                    .map(|f| {
                        format!(
                            "{:?} {:?} {:?} {}",
                            f.layer,
                            f.path,
                            f.severity,
                            rule_1_is_generic(f.rule)
                        )
                    })
                    .collect();
                ranks.sort();
                ranks
            };
            assert_eq!(rank_of(&kept), rank_of(&expected_kept), "{raw:#?}");
            let counted: BTreeMap<String, BTreeMap<Severity, usize>> = over_limit
                .iter()
                .map(|o| {
                    (
                        format!("{:?} {:?}", o.item.layer, o.item.path),
                        o.by_severity.clone(),
                    )
                })
                .collect();
            assert_eq!(counted, expected_counted);
        }
        let everything = random_matches(&mut random, 50);
        assert_eq!(cap_per_item(everything, 0, &|_| false).0.len(), 50);
    }

    #[test]
    fn a_file_over_the_limit_lists_its_most_severe_and_counts_the_rest() {
        let mut raw: Vec<RawFinding> = (0..250u64)
            .map(|i| {
                with(
                    in_file(0, "dump.txt", i * 30, "AKIAxxxxxxxxxxxxxxxx"),
                    0,
                    Severity::Medium,
                )
            })
            .collect();
        raw.push(with(
            in_file(0, "dump.txt", 9_000, "ghp_late"),
            2,
            Severity::Critical,
        ));
        raw.push(in_file(0, "other.txt", 0, "alone"));
        let (kept, over_limit) = cap_per_item(raw, 100, &|_| false);
        assert_eq!(kept.len(), 101);
        // The critical one, last in the file, is listed first of its file.
        assert!(kept.iter().any(|f| f.severity == Severity::Critical));
        assert_eq!(over_limit.len(), 1);
        assert_eq!(over_limit[0].item.path.as_deref(), Some("dump.txt"));
        assert_eq!(
            over_limit[0].by_severity,
            BTreeMap::from([(Severity::Medium, 151)])
        );
        let places = Places {
            layer_digests: vec![Some("sha256:00".into())],
            history_of_layer: vec![Some(4)],
        };
        let listed = not_listed(over_limit.clone(), 100, &places);
        assert_eq!(listed[0].count, 151);
        assert_eq!(listed[0].limit, 100);
        assert_eq!(listed[0].location.uri(), "layer/1/dump.txt");
        assert_eq!(listed[0].location.history_index, Some(4));
        // A finding's location, stripped to its file, is the entry's.
        let finding_place = Location {
            line: Some(3),
            column: Some(7),
            archive_path: vec!["inner.zip".into()],
            ..places.of(&Item::of(&kept[0]))
        };
        assert_eq!(finding_place.item(), listed[0].location);

        // A hard link to the dump names the same count.
        let walked = vec![WalkedLayer {
            hard_links: vec![HardLink {
                path: "backup.txt".into(),
                target: "dump.txt".into(),
            }],
            ..WalkedLayer::default()
        }];
        let (mut kept, mut over_limit) = (kept, over_limit);
        add_hard_link_names(&walked, &mut kept, &mut over_limit);
        assert_eq!(kept.len(), 201);
        let paths: Vec<_> = over_limit.iter().map(|o| o.item.path.as_deref()).collect();
        assert_eq!(paths, [Some("dump.txt"), Some("backup.txt")]);
    }
}
