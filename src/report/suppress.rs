//! Taking accepted findings out of a report: first the ignore file (explicit, reasoned
//! decisions), then the baseline. Each image's counts are recomputed so that nothing
//! downstream (stats, the exit code, every printer) sees a suppressed finding; the numbers
//! suppressed go into the report's stats. `--severity` takes findings out of the report the
//! same way, after the gate has counted them.

use std::collections::HashSet;

use crate::detect::Severity;
use crate::layer::Status;

use super::baseline::Baseline;
use super::date::Date;
use super::ignore::IgnoreList;
use super::model::{Finding, ImageReport};

/// Takes out the places of findings that an active entry of `ignore` covers: a finding loses
/// its ignored other places, and when its own place is ignored the next place not ignored
/// stands for it; a finding all of whose places are ignored is removed. Returns how many
/// findings were removed.
pub fn apply_ignore(images: &mut [ImageReport], ignore: &IgnoreList, today: Date) -> usize {
    let covered = |finding: &Finding| ignore.covering(finding, today).is_some();
    let mut removed = 0;
    for image in images {
        let before = image.findings.len();
        let findings = std::mem::take(&mut image.findings);
        image.findings = findings
            .into_iter()
            .filter_map(|finding| without_covered_places(finding, &covered))
            .collect();
        removed += before - image.findings.len();
        recount(image);
    }
    removed
}

/// `finding` without the places `covered` says are ignored; `None` when every place is.
fn without_covered_places(
    mut finding: Finding,
    covered: &dyn Fn(&Finding) -> bool,
) -> Option<Finding> {
    let others = std::mem::take(&mut finding.also_found_in);
    let mut kept: Vec<_> = others
        .into_iter()
        .filter(|other| !covered(&finding.at(other)))
        .collect();
    if !covered(&finding) {
        finding.also_found_in = kept;
        return Some(finding);
    }
    if kept.is_empty() {
        return None;
    }
    let mut promoted = finding.at(&kept.remove(0));
    promoted.also_found_in = kept;
    Some(promoted)
}

/// Removes the findings of which `baseline` lists a fingerprint (of any of its places: the
/// same secret matched by another rule elsewhere is the same secret); returns how many.
pub fn apply_baseline(images: &mut [ImageReport], baseline: &Baseline) -> usize {
    let accepted: HashSet<String> = baseline.fingerprints();
    remove(images, |finding| {
        finding
            .fingerprints()
            .any(|fingerprint| accepted.contains(&fingerprint.to_ascii_lowercase()))
    })
}

fn remove(images: &mut [ImageReport], suppressed: impl Fn(&Finding) -> bool) -> usize {
    let mut removed = 0;
    for image in images {
        let before = image.findings.len();
        image.findings.retain(|finding| !suppressed(finding));
        if image.findings.len() != before {
            removed += before - image.findings.len();
            recount(image);
        }
    }
    removed
}

/// Leaves out the findings whose severity is not in `shown` (`--severity`), recounting each
/// image; returns how many were left out.
pub fn apply_severity_filter(images: &mut [ImageReport], shown: &[Severity]) -> usize {
    let mut removed = 0;
    for image in images {
        let before = image.findings.len();
        image.findings.retain(|f| shown.contains(&f.severity));
        if image.findings.len() != before {
            removed += before - image.findings.len();
            recount(image);
        }
    }
    removed
}

/// Recomputes an image's finding counts from its findings.
pub fn recount(image: &mut ImageReport) {
    let stats = &mut image.stats;
    stats.findings = image.findings.len();
    stats.by_severity.clear();
    for finding in &image.findings {
        *stats.by_severity.entry(finding.severity).or_default() += 1;
    }
    stats.deleted_but_shipped = image
        .findings
        .iter()
        .filter(|f| f.status != Status::Present)
        .count();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Report;
    use crate::report::sample::leaky_report;

    #[test]
    fn ignore_then_baseline_with_counts_and_stats() {
        let report = leaky_report();
        let mut images = report.images.clone();
        let today: Date = "2026-01-01".parse().unwrap();
        let ignore = IgnoreList::parse("rule:generic-password reason=demo", "f").unwrap();
        assert_eq!(apply_ignore(&mut images, &ignore, today), 1);
        assert_eq!(images[0].stats.findings, 2);
        assert_eq!(images[0].stats.by_severity.get(&Severity::Low), None);

        let baseline = Baseline::parse(
            r#"{"stowaway_baseline": 1, "entries": [{"fingerprint": "0123456789abcdef0123456789abcdef"}]}"#,
        )
        .unwrap();
        assert_eq!(apply_baseline(&mut images, &baseline), 2);
        assert!(images[0].findings.is_empty());
        assert_eq!(images[0].stats.deleted_but_shipped, 0);

        let mut after = Report::new(images, 1);
        after.record_suppressed(2, 1);
        assert_eq!(after.stats.findings, 0);
        assert_eq!(after.stats.suppressed, 3);
        assert_eq!(after.stats.layers_with_findings, 0);
        assert_eq!(after.count_at_or_above(Severity::Info), 0);
    }

    #[test]
    fn an_ignored_place_leaves_the_secret_reported_at_its_other_places() {
        let mut image = leaky_report().images.remove(0);
        let history = image.findings.remove(1);
        let mut first = image.findings.remove(0);
        first.also_found_in.push(crate::report::model::OtherPlace {
            location: history.location.clone(),
            status: history.status,
            removed_in_layer: None,
            removed_in_layer_number: None,
            rule_id: "generic-build-arg".into(),
            rule_name: "Build argument".into(),
            severity: history.severity,
            fingerprint: "ffffffffffffffffffffffffffffffff".into(),
            context: Some("ARG ****".into()),
        });
        image.findings = vec![first];
        let today: Date = "2026-01-01".parse().unwrap();
        let ignore = IgnoreList::parse("path:/root/.aws/* reason=fixture", "f").unwrap();
        let mut images = vec![image];
        assert_eq!(apply_ignore(&mut images, &ignore, today), 0);
        let kept = &images[0].findings[0];
        assert_eq!(kept.location.uri(), "history/1");
        assert_eq!(kept.rule_id, "generic-build-arg");
        assert!(kept.also_found_in.is_empty());
        // A baseline naming the fingerprint of any place takes the whole finding.
        let mut images = vec![leaky_report().images.remove(0)];
        let mut other = images[0].findings[0].clone();
        other.fingerprint = "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee".into();
        let place = crate::report::model::OtherPlace {
            location: other.location.clone(),
            status: other.status,
            removed_in_layer: other.removed_in_layer,
            removed_in_layer_number: other.removed_in_layer_number,
            rule_id: other.rule_id.clone(),
            rule_name: other.rule_name.clone(),
            severity: other.severity,
            fingerprint: other.fingerprint.clone(),
            context: None,
        };
        images[0].findings[2].also_found_in.push(place);
        let baseline = Baseline::parse(
            r#"{"stowaway_baseline": 1, "entries": [{"fingerprint": "EEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEE"}]}"#,
        )
        .unwrap();
        assert_eq!(apply_baseline(&mut images, &baseline), 1);
        assert_eq!(images[0].findings.len(), 2);
    }
}
