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

/// Removes the findings that an active entry of `ignore` covers; returns how many.
pub fn apply_ignore(images: &mut [ImageReport], ignore: &IgnoreList, today: Date) -> usize {
    remove(images, |finding| ignore.covering(finding, today).is_some())
}

/// Removes the findings whose fingerprint `baseline` lists; returns how many.
pub fn apply_baseline(images: &mut [ImageReport], baseline: &Baseline) -> usize {
    let accepted: HashSet<String> = baseline.fingerprints();
    remove(images, |finding| {
        accepted.contains(&finding.fingerprint.to_ascii_lowercase())
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
}
