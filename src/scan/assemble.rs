//! Turning raw matches into an image's report. Each step is a small function of its inputs:
//!
//! 1. [`add_hard_link_names`]: a hard link's name gets the findings of the file it links to;
//! 2. [`collapse_overlaps`]: of the matches that overlap at one place, one survives: the one
//!    that [`outranks`] the others (more severe, then specific over generic, then longer);
//! 3. [`drop_history_lines_repeating_build_args`]: a secret found in a build argument is not
//!    reported again for the raw `created_by` line that holds it;
//! 4. [`locate`]: a file's status (present, deleted, overwritten) and the layer that removed it;
//! 5. [`reported_secret`], [`sort_findings`], [`image_stats`]: redaction, order and counts.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use super::Scanner;
use super::inventory::{certificate, private_keys, split_inventory};
use super::packages::{LayerPackages, Provenances, hash_files_again};
use super::raw::{RawFinding, SecretText};
use crate::layer::{Status, Timeline, WalkedLayer};
use crate::report::field::ConfigField;
use crate::report::model::{
    Certificate, Finding, ImageReport, ImageStats, LayerReport, Location, LocationKind, Remediation,
};
use crate::report::redact::{fingerprint, redact, redact_in_text};
use crate::report::remediation::{published_remediation, remediation};
use crate::source::Image;

impl Scanner {
    /// Ties matches to layers, history steps and statuses; redacts; sorts; counts.
    pub(super) fn build_report(
        &self,
        image: &Image,
        walked: Vec<WalkedLayer>,
        packages: &[LayerPackages],
        mut raw: Vec<RawFinding>,
    ) -> ImageReport {
        let rules = self.detector.rules();
        let history_of_layer = image.config.layer_history(image.layers.len());
        add_hard_link_names(&walked, &mut raw);
        let (raw, certificates) = split_inventory(raw, &|rule| rules[rule].is_inventory());
        let kept = collapse_overlaps(raw, &|rule| rules[rule].is_generic());
        let raw = drop_history_lines_repeating_build_args(kept);
        let needed = layers_with_file_findings(&raw, walked.len());
        let provenances = Provenances::build(&walked, packages, &needed);
        let raw = hash_large_owned_files(image, &provenances, raw);
        let timeline = Timeline::new(walked.iter().map(|w| w.changes.clone()).collect());
        let layer_digests: Vec<Option<String>> = image
            .layers
            .iter()
            .map(|layer| layer.diff_id.as_ref().or(layer.digest.as_ref()))
            .map(|digest| digest.map(ToString::to_string))
            .collect();

        // The clear-text secrets, to redact them wherever history text repeats them.
        let secrets: Vec<String> = raw
            .iter()
            .filter_map(|f| match &f.secret {
                SecretText::Raw(secret) => Some(secret.clone()),
                SecretText::Sealed { .. } => None,
            })
            .collect();
        let mut findings: Vec<Finding> = raw
            .into_iter()
            .map(|f| {
                let (severity, provenance) = provenances.attribute(&f);
                let rule = &rules[f.rule];
                let (kind, status, removed_in_layer) = locate(&f, &timeline);
                let (secret, fingerprint) =
                    reported_secret(&f.secret, &rule.id, self.options.show_secrets);
                let remediation = advice(&f, &rule.kubernetes_secret_type, kind, status);
                Finding {
                    rule_id: rule.id.clone(),
                    rule_name: rule.name.clone(),
                    severity,
                    secret,
                    fingerprint,
                    remediation,
                    location: location(&f, kind, &layer_digests, &history_of_layer),
                    status,
                    removed_in_layer,
                    details: f.details.into_iter().collect(),
                    provenance,
                }
            })
            .collect();
        sort_findings(&mut findings);
        let keys = private_keys(&findings);
        let certificates: Vec<Certificate> = certificates
            .iter()
            .map(|f| {
                let (kind, status, _) = locate(f, &timeline);
                let place = location(f, kind, &layer_digests, &history_of_layer);
                certificate(f, place, status, &keys)
            })
            .collect();

        let redact_history = |text: &str| {
            if self.options.show_secrets {
                text.to_string()
            } else {
                redact_in_text(text, &secrets)
            }
        };
        let layers = layer_reports(image, &walked, &history_of_layer, &redact_history);
        let mut stats = image_stats(&walked, &findings);
        stats.certificates = certificates.len();
        ImageReport {
            reference: image.reference.clone(),
            manifest_digest: image.manifest_digest.as_ref().map(|d| d.to_string()),
            config_digest: image.config_digest.to_string(),
            platform: image.platform.clone(),
            layers,
            findings,
            skipped: Vec::new(),
            packages: provenances.report,
            certificates,
            stats,
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

/// Which layers hold findings in files (those need the databases as they stood there).
fn layers_with_file_findings(raw: &[RawFinding], layers: usize) -> Vec<bool> {
    let mut needed = vec![false; layers];
    for finding in raw.iter().filter(|f| f.path.is_some()) {
        if let Some(slot) = finding.layer.and_then(|layer| needed.get_mut(layer)) {
            *slot = true;
        }
    }
    needed
}

/// What to do about a match: where the secret belongs instead, or, for key material that a
/// public package publishes (`details.published_in`), that there is nothing to rotate.
fn advice(
    f: &RawFinding,
    rule_secret_type: &str,
    kind: LocationKind,
    status: Status,
) -> Remediation {
    let advice = remediation(
        f.kubernetes_secret_type
            .as_deref()
            .unwrap_or(rule_secret_type),
        kind,
        f.field.as_ref(),
        status,
    );
    match f.details.iter().find(|(k, _)| k == "published_in") {
        Some((_, place)) => published_remediation(advice, place),
        None => advice,
    }
}

/// Where a match is, as the report says it.
fn location(
    f: &RawFinding,
    kind: LocationKind,
    layer_digests: &[Option<String>],
    history_of_layer: &[Option<usize>],
) -> Location {
    Location {
        kind,
        layer_index: f.layer,
        layer_digest: f.layer.and_then(|i| layer_digests[i].clone()),
        path: f.path.as_deref().map(str::to_string),
        line: Some(f.line),
        column: Some(f.column),
        archive_path: f.archive_path.clone(),
        history_index: f
            .history_index
            .or_else(|| f.layer.and_then(|i| history_of_layer[i])),
        field: f.field.clone(),
    }
}

/// A hard link names the same content as its target: report the target's findings under the
/// link's name too (the content was scanned once). A link to a link names the content of the
/// file at the end of the chain.
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
        let links: HashMap<&str, &str> = walk
            .hard_links
            .iter()
            .map(|link| (link.path.as_str(), link.target.as_str()))
            .collect();
        for link in &walk.hard_links {
            let content = chain_end(&links, &link.target);
            for finding in by_path.get(content).into_iter().flatten() {
                let mut copy = (*finding).clone();
                copy.path = Some(Arc::from(link.path.as_str()));
                extra.push(copy);
            }
        }
    }
    raw.extend(extra);
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

/// Where several rules matched the same secret at the same place (see
/// [`RawFinding::overlaps`]), keeps one: the one that [`outranks`] the others. Exact
/// duplicates (the same match found twice) collapse too. The result is in place order.
fn collapse_overlaps(
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
    let mut kept: Vec<RawFinding> = Vec::with_capacity(raw.len());
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
        _ if finding.history_index.is_some() => (LocationKind::History, Status::Present, None),
        _ => (LocationKind::Config, Status::Present, None),
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
        } => (redacted.clone(), fingerprint.clone()),
    }
}

/// Report order: by location (layer files by layer and path, then history, then config),
/// then rule, then fingerprint, so two reports of one image diff cleanly.
fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        (&a.location, &a.rule_id, &a.fingerprint).cmp(&(&b.location, &b.rule_id, &b.fingerprint))
    });
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
        .collect()
}

/// The image's counts. Cache hits and skipped items are the scan's to fill in.
fn image_stats(walked: &[WalkedLayer], findings: &[Finding]) -> ImageStats {
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
        certificates: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Severity;
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
        let mut raw = vec![
            in_file(0, "etc/key", 0, "secret-one"),
            in_file(1, "etc/key", 0, "secret-two"),
            in_file(0, "etc/other", 0, "secret-three"),
        ];
        add_hard_link_names(&walked, &mut raw);
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
        add_hard_link_names(&walked, &mut raw);
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
    fn findings_sort_by_place_then_rule() {
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
        let mut findings = vec![
            finding_at(config("B"), "a", Status::Present),
            finding_at(file(1, "a"), "a", Status::Present),
            finding_at(config("A"), "a", Status::Present),
            finding_at(file(0, "z"), "b", Status::Present),
            finding_at(file(0, "z"), "a", Status::Present),
        ];
        sort_findings(&mut findings);
        let order: Vec<String> = findings
            .iter()
            .map(|f| format!("{} {}", f.location.uri(), f.rule_id))
            .collect();
        assert_eq!(
            order,
            [
                "layer/0/z a",
                "layer/0/z b",
                "layer/1/a a",
                "config/Env/A a",
                "config/Env/B a"
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
        let stats = image_stats(&walked, &findings);
        assert_eq!((stats.layers, stats.layers_skipped, stats.files), (3, 1, 5));
        assert_eq!((stats.content_bytes, stats.stored_bytes), (320, 110));
        assert_eq!((stats.findings, stats.deleted_but_shipped), (3, 2));
        assert_eq!(
            stats.by_severity,
            BTreeMap::from([(Severity::Low, 1), (Severity::High, 2)])
        );
    }
}
