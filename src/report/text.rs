//! `--format text`: findings grouped by layer, each under the history step that made the
//! layer, with deleted and overwritten files called out, and a summary line at the end.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Result;

use super::describe::{one_line, short_hex};
use super::model::{Finding, ImageReport, Location, LocationKind, NotListed, Report, SkipKind};
use super::remediation::is_password_hash;
use super::skips::{self, plural};
use crate::detect::Severity;
use crate::layer::Status;

/// Terminal styling; all empty when colour is off.
#[derive(Clone, Copy)]
pub struct Style {
    color: bool,
}

impl Style {
    pub fn new(color: bool) -> Style {
        Style { color }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn severity(&self, severity: Severity) -> String {
        let label = format!("{:<8}", severity.as_str().to_uppercase());
        let code = match severity {
            Severity::Critical => "1;97;41",
            Severity::High => "1;31",
            Severity::Medium => "1;33",
            Severity::Low => "36",
            Severity::Info => "2",
        };
        self.paint(code, &label)
    }
}

/// Options for the text printer.
#[derive(Clone, Copy)]
pub struct TextOptions {
    pub style: Style,
    /// Print remediation advice in full under each finding, and every skipped item (not only
    /// the first few).
    pub verbose: bool,
    /// List findings in vendor content one by one instead of counting them in one line.
    pub show_vendor: bool,
}

pub fn write(report: &Report, options: TextOptions, out: &mut dyn Write) -> Result<()> {
    for image in &report.images {
        write_image(image, options, out)?;
    }
    for failed in &report.errors {
        writeln!(
            out,
            "{}  {}",
            options.style.paint("1", &failed.image),
            options.style.paint("31", "not scanned")
        )?;
        writeln!(out, "  error: {}", failed.error)?;
        write_used_by(&failed.used_by, out)?;
        writeln!(out)?;
    }
    writeln!(out, "{}", summary(report, options.style))?;
    Ok(())
}

fn write_image(image: &ImageReport, options: TextOptions, out: &mut dyn Write) -> Result<()> {
    write_image_header(image, options.style, out)?;
    if let Some(line) = certificates_line(image) {
        writeln!(out, "  {}", options.style.paint("2", &line))?;
    }
    write_skips(image, options, out)?;
    write_packages_notes(image, options.style, out)?;
    let vendor = image.findings.iter().filter(|f| f.is_vendor()).count();
    let hidden = if options.show_vendor { 0 } else { vendor };
    if image.findings.len() == hidden && image.not_listed.is_empty() {
        writeln!(out, "  no secrets found")?;
        write_vendor_line(hidden, options.style, out)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(out)?;
    let groups = FindingGroups::of(image, options.show_vendor);
    write_groups(image, &groups, options, out)?;
    if hidden > 0 {
        write_vendor_line(hidden, options.style, out)?;
        writeln!(out)?;
    }
    Ok(())
}

/// `N findings in vendor content, see --show-vendor or the JSON`, when N > 0.
fn write_vendor_line(vendor: usize, style: Style, out: &mut dyn Write) -> Result<()> {
    if vendor > 0 {
        let s = if vendor == 1 { "" } else { "s" };
        writeln!(
            out,
            "  {}",
            style.paint(
                "2",
                &format!(
                    "{vendor} finding{s} in vendor content (installed unmodified by a package manager), see --show-vendor or the JSON"
                )
            )
        )?;
    }
    Ok(())
}

/// Package databases that were found but not read, and malformed records skipped.
fn write_packages_notes(image: &ImageReport, style: Style, out: &mut dyn Write) -> Result<()> {
    let packages = &image.packages;
    for note in &packages.not_read {
        writeln!(out, "  {} {note}", style.paint("33", "note"))?;
    }
    if packages.records_skipped > 0 || packages.files_not_kept > 0 {
        writeln!(
            out,
            "  {} package databases: {} malformed records ignored, {} files not read (see the JSON)",
            style.paint("33", "warning"),
            packages.records_skipped,
            packages.files_not_kept
        )?;
    }
    Ok(())
}

/// The findings of `groups`, by layer, then history, then config.
fn write_groups(
    image: &ImageReport,
    groups: &FindingGroups,
    options: TextOptions,
    out: &mut dyn Write,
) -> Result<()> {
    for (index, findings) in &groups.by_layer {
        write_layer(image, *index, findings, &groups.not_listed, options, out)?;
    }
    if !groups.history.is_empty() {
        writeln!(out, "  {}", options.style.paint("1", "History"))?;
        for (index, findings) in &groups.history {
            let label = |f: &Finding| format!("step {index} {}", f.location.field_or("created_by"));
            write_findings(findings, &label, &groups.not_listed, options, out)?;
        }
        writeln!(out)?;
    }
    if !groups.config.is_empty() {
        writeln!(out, "  {}", options.style.paint("1", "Config"))?;
        let label = |f: &Finding| f.location.field_or("");
        write_findings(&groups.config, &label, &groups.not_listed, options, out)?;
        writeln!(out)?;
    }
    write_unlisted_only(image, options.style, out)
}

/// Findings, each file's (or item's) followed by its "… and N more" line when it held more
/// than the per-file limit.
fn write_findings(
    findings: &[&Finding],
    label: &dyn Fn(&Finding) -> String,
    not_listed: &BTreeMap<Location, &NotListed>,
    options: TextOptions,
    out: &mut dyn Write,
) -> Result<()> {
    for (position, finding) in findings.iter().enumerate() {
        write_finding(finding, &label(finding), options, out)?;
        let item = finding.location.item();
        let last_of_item = findings
            .get(position + 1)
            .is_none_or(|next| next.location.item() != item);
        if let Some(entry) = not_listed.get(&item).filter(|_| last_of_item) {
            writeln!(out, "    {}", options.style.paint("33", &more_words(entry)))?;
        }
    }
    Ok(())
}

/// `… and 1,200 more in this file (1,000 high, 200 medium; 100 listed per file, see
/// --max-findings-per-file)`.
fn more_words(entry: &NotListed) -> String {
    let place = match entry.location.kind {
        LocationKind::LayerFile => "file",
        LocationKind::History | LocationKind::Config => "field",
    };
    let counts: Vec<String> = Severity::ALL
        .iter()
        .filter_map(|s| entry.by_severity.get(s).map(|n| format!("{n} {s}")))
        .collect();
    format!(
        "… and {} more in this {place} ({}; {} listed per {place}, see --max-findings-per-file)",
        entry.count,
        counts.join(", "),
        entry.limit
    )
}

/// The files over the limit none of whose listed findings is left (a baseline or the ignore
/// file took them all): their count must still show.
fn write_unlisted_only(image: &ImageReport, style: Style, out: &mut dyn Write) -> Result<()> {
    let listed: std::collections::BTreeSet<Location> =
        image.findings.iter().map(|f| f.location.item()).collect();
    let orphans: Vec<&NotListed> = image
        .not_listed
        .iter()
        .filter(|entry| !listed.contains(&entry.location))
        .collect();
    for entry in &orphans {
        let words = more_words(entry).replacen("… and ", "", 1);
        let words = words.replacen(" more in this ", " findings not listed in this ", 1);
        let line = format!("{}: {words}", entry.location.uri());
        writeln!(out, "  {}", style.paint("33", &line))?;
    }
    if !orphans.is_empty() {
        writeln!(out)?;
    }
    Ok(())
}

/// The certificate inventory in one line: certificates are public, listed, never findings.
fn certificates_line(image: &ImageReport) -> Option<String> {
    let certificates = &image.certificates;
    if certificates.is_empty() {
        return None;
    }
    let count = |pred: &dyn Fn(&super::model::Certificate) -> bool| {
        certificates.iter().filter(|c| pred(c)).count()
    };
    let plural = if certificates.len() == 1 { "" } else { "s" };
    Some(format!(
        "{} certificate{plural} ({} vendor: trust stores or installed by a package, {} self-signed, {} with \
         their private key in the image): an inventory, not findings; see the JSON report's \
         `certificates`",
        certificates.len(),
        count(&|c| c.vendor),
        count(&|c| c.self_signed),
        count(&|c| c.private_key_in_image),
    ))
}

/// The workloads that run an image (`--images-from` Kubernetes JSON), one line each.
fn write_used_by(used_by: &[super::model::Workload], out: &mut dyn Write) -> Result<()> {
    for workload in used_by {
        writeln!(out, "  used by {workload}")?;
    }
    Ok(())
}

/// The image's reference, platform, digests and sizes, and the layers not scanned.
fn write_image_header(image: &ImageReport, style: Style, out: &mut dyn Write) -> Result<()> {
    let platform = image.platform.as_deref().unwrap_or("unknown platform");
    writeln!(out, "{}  {platform}", style.paint("1", &image.reference))?;
    let manifest = image
        .manifest_digest
        .as_deref()
        .map(|d| format!("manifest {}  ", short_hex(d)))
        .unwrap_or_default();
    writeln!(
        out,
        "  {manifest}config {}  {}, {}, {}",
        short_hex(&image.config_digest),
        plural(image.stats.layers, "layer", "layers"),
        plural(image.stats.files as usize, "file", "files"),
        human_bytes(image.stats.content_bytes)
    )?;
    write_used_by(&image.used_by, out)?;
    for layer in image.layers.iter().filter(|l| l.skipped.is_some()) {
        writeln!(
            out,
            "  {} layer {}: {}",
            style.paint("33", "skipped"),
            layer.index,
            layer.skipped.as_deref().unwrap_or_default()
        )?;
    }
    Ok(())
}

/// What the scan of the image left out, then its irregular entries: a count, the first
/// [`skips::SHOWN`] of each (all with `-v`), and where the rest are.
fn write_skips(image: &ImageReport, options: TextOptions, out: &mut dyn Write) -> Result<()> {
    for kind in [SkipKind::NotScanned, SkipKind::Irregular] {
        let records: Vec<_> = image.skipped.iter().filter(|r| r.kind == kind).collect();
        if records.is_empty() {
            continue;
        }
        let heading = skips::kind_heading(kind, records.len());
        writeln!(out, "  {}:", options.style.paint("33", &heading))?;
        let shown = if options.verbose {
            records.len()
        } else {
            skips::SHOWN
        };
        for record in records.iter().take(shown) {
            writeln!(out, "    {}", skips::record_sentence(record))?;
        }
        if records.len() > shown {
            writeln!(
                out,
                "    … and {} more (-v or --format json lists them all)",
                records.len() - shown
            )?;
        }
    }
    Ok(())
}

/// An image's findings in the order the text report shows them: by layer, then by history
/// step, then the config's.
struct FindingGroups<'a> {
    by_layer: BTreeMap<usize, Vec<&'a Finding>>,
    history: BTreeMap<usize, Vec<&'a Finding>>,
    config: Vec<&'a Finding>,
    /// The files over the per-file limit, by [`Location::item`].
    not_listed: BTreeMap<Location, &'a NotListed>,
}

impl<'a> FindingGroups<'a> {
    /// The image's findings, those in vendor content only with `show_vendor`.
    fn of(image: &'a ImageReport, show_vendor: bool) -> FindingGroups<'a> {
        let mut groups = FindingGroups {
            by_layer: BTreeMap::new(),
            history: BTreeMap::new(),
            config: Vec::new(),
            not_listed: image
                .not_listed
                .iter()
                .map(|entry| (entry.location.clone(), entry))
                .collect(),
        };
        for finding in image
            .findings
            .iter()
            .filter(|f| show_vendor || !f.is_vendor())
        {
            match finding.location.kind {
                LocationKind::LayerFile => groups
                    .by_layer
                    .entry(finding.location.layer_index.unwrap_or_default())
                    .or_default()
                    .push(finding),
                LocationKind::History => groups
                    .history
                    .entry(finding.location.history_index.unwrap_or_default())
                    .or_default()
                    .push(finding),
                LocationKind::Config => groups.config.push(finding),
            }
        }
        groups
    }
}

/// One layer's heading (`Layer 2/6 0123456789ab`, the step that made it) and its findings.
fn write_layer(
    image: &ImageReport,
    index: usize,
    findings: &[&Finding],
    not_listed: &BTreeMap<Location, &NotListed>,
    options: TextOptions,
    out: &mut dyn Write,
) -> Result<()> {
    let style = options.style;
    let layer = &image.layers[index];
    let digest = layer
        .diff_id
        .as_deref()
        .or(layer.digest.as_deref())
        .map(short_hex)
        .unwrap_or("");
    writeln!(
        out,
        "  {} {digest}",
        style.paint("1", &format!("Layer {}/{}", index + 1, image.layers.len()))
    )?;
    if let Some(created_by) = &layer.created_by {
        let step = layer
            .history_index
            .map(|h| format!("step {h}: "))
            .unwrap_or_default();
        writeln!(
            out,
            "    {}",
            style.paint("2", &format!("{step}{}", one_line(created_by, 110)))
        )?;
    }
    let label = |finding: &Finding| {
        format!(
            "/{}:{}",
            finding.location.path.as_deref().unwrap_or_default(),
            finding.location.line.unwrap_or(1)
        )
    };
    write_findings(findings, &label, not_listed, options, out)?;
    writeln!(out)?;
    Ok(())
}

fn write_finding(
    finding: &Finding,
    location: &str,
    options: TextOptions,
    out: &mut dyn Write,
) -> Result<()> {
    let style = options.style;
    writeln!(
        out,
        "    {} {}  {}  {}",
        style.severity(finding.severity),
        finding.rule_name,
        style.paint("36", location),
        finding.secret.lines().next().unwrap_or_default()
    )?;
    let indent = "             ";
    match (finding.status, finding.removed_in_layer) {
        (Status::Deleted, Some(layer)) => writeln!(
            out,
            "{indent}{}",
            style.paint(
                "1;35",
                &format!(
                    "DELETED in layer {} but still shipped in layer {}",
                    layer + 1,
                    finding.location.layer_index.unwrap_or_default() + 1
                )
            )
        )?,
        (Status::Overwritten, Some(layer)) => writeln!(
            out,
            "{indent}{}",
            style.paint(
                "1;35",
                &format!(
                    "OVERWRITTEN in layer {} but still shipped in layer {}",
                    layer + 1,
                    finding.location.layer_index.unwrap_or_default() + 1
                )
            )
        )?,
        _ => {}
    }
    if let Some(provenance) = &finding.provenance {
        let package = format!(
            "{} package {} {}",
            provenance.manager, provenance.package, provenance.version
        );
        let line = match provenance.original_severity {
            Some(was) => format!(
                "vendor content: {package}, {} (severity was {was})",
                provenance.verdict.describe()
            ),
            None if provenance.vendor => {
                format!(
                    "vendor content: {package}, {}",
                    provenance.verdict.describe()
                )
            }
            None => format!(
                "owned by {package}: {}",
                provenance.verdict.describe().to_uppercase()
            ),
        };
        let color = if provenance.vendor { "2" } else { "1;35" };
        writeln!(out, "{indent}{}", style.paint(color, &line))?;
    }
    for (key, value) in &finding.details {
        writeln!(out, "{indent}{key}: {value}")?;
    }
    write_advice(finding, options, indent, out)
}

/// The closing line(s) of a finding: the fix in verbose mode, else a one-line hint.
fn write_advice(
    finding: &Finding,
    options: TextOptions,
    indent: &str,
    out: &mut dyn Write,
) -> Result<()> {
    let style = options.style;
    if options.verbose {
        writeln!(out, "{indent}fix: {}", finding.remediation.instead)?;
        writeln!(out, "{indent}{}", finding.remediation.rotate)?;
        writeln!(out, "{indent}fingerprint {}", finding.fingerprint)?;
    } else if is_password_hash(
        finding
            .details
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    ) {
        writeln!(
            out,
            "{indent}{}",
            style.paint(
                "2",
                "password hash: crackable offline; change the password, keep the hash out of the image"
            )
        )?;
    } else if finding.details.contains_key("published_in") {
        writeln!(
            out,
            "{indent}{}",
            style.paint("2", "public key material, not this image's secret")
        )?;
    } else {
        writeln!(
            out,
            "{indent}{}",
            style.paint(
                "2",
                &format!(
                    "belongs in a Kubernetes Secret ({}); rotate it",
                    finding.remediation.kubernetes_secret_type
                )
            )
        )?;
    }
    Ok(())
}

/// The last line of text output: counts per severity, layers, deleted-but-shipped.
pub fn summary(report: &Report, style: Style) -> String {
    let stats = &report.stats;
    let scanned = format!(
        "{}, {}, {}, {} in {:.2}s",
        plural(stats.images, "image", "images"),
        plural(stats.layers, "layer", "layers"),
        plural(stats.files as usize, "file", "files"),
        human_bytes(stats.content_bytes),
        stats.duration_ms as f64 / 1000.0
    );
    let suppressed = suppressed_words(stats);
    let mut tail: String = skips::count_phrases(stats)
        .into_iter()
        .map(|phrase| format!("; {phrase}"))
        .collect();
    if !suppressed.is_empty() {
        tail.push_str(&format!("; {suppressed}"));
    }
    if stats.hidden_by_severity > 0 {
        tail.push_str(&format!(
            "; {} not shown (--severity)",
            stats.hidden_by_severity
        ));
    }
    if !report.errors.is_empty() {
        tail.push_str(&format!(
            "; {} not scanned (errors above)",
            plural(report.errors.len(), "image", "images")
        ));
    }
    if stats.findings == 0 && stats.findings_not_listed == 0 {
        // Nothing found in an incomplete scan is no all-clear: say what the claim covers.
        let headline = if report.is_incomplete() {
            style.paint("1;33", "No secrets found in what was scanned")
        } else {
            style.paint("1;32", "No secrets found")
        };
        return format!("{headline}{tail} ({scanned})");
    }
    let counts: Vec<String> = Severity::ALL
        .iter()
        .filter_map(|s| stats.by_severity.get(s).map(|n| format!("{n} {s}")))
        .collect();
    let mut line = format!(
        "{} ({}) in {} layer{}",
        style.paint(
            "1;31",
            &format!(
                "{} finding{}",
                stats.findings,
                if stats.findings == 1 { "" } else { "s" }
            )
        ),
        counts.join(", "),
        stats.layers_with_findings,
        if stats.layers_with_findings == 1 {
            ""
        } else {
            "s"
        }
    );
    if stats.findings_not_listed > 0 {
        line.push_str(&format!(
            "; {} more not listed (over the per-file limit)",
            stats.findings_not_listed
        ));
    }
    if stats.deleted_but_shipped > 0 {
        line.push_str(&format!(
            "; {} deleted or overwritten but still shipped",
            stats.deleted_but_shipped
        ));
    }
    format!("{line}{tail} ({scanned})")
}

/// `3 suppressed by baseline, 1 by ignore file`, or empty when nothing was suppressed.
fn suppressed_words(stats: &super::model::Stats) -> String {
    match (stats.suppressed_by_baseline, stats.suppressed_by_ignore) {
        (0, 0) => String::new(),
        (baseline, 0) => format!("{baseline} suppressed by baseline"),
        (0, ignore) => format!("{ignore} suppressed by ignore file"),
        (baseline, ignore) => {
            format!("{baseline} suppressed by baseline, {ignore} by ignore file")
        }
    }
}

/// `1.2 MiB`
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample::leaky_report;

    #[test]
    fn summary_counts_suppressed_findings() {
        let mut report = leaky_report();
        report.record_suppressed(4, 0);
        let line = summary(&report, Style::new(false));
        assert!(
            line.starts_with("3 findings (2 critical, 1 low) in 1 layer"),
            "{line}"
        );
        assert!(line.contains("; 4 suppressed by baseline ("), "{line}");

        report.images[0].findings.clear();
        crate::report::suppress::recount(&mut report.images[0]);
        let mut clean = Report::new(report.images, 1);
        clean.record_suppressed(2, 1);
        let line = summary(&clean, Style::new(false));
        assert!(
            line.starts_with("No secrets found; 2 suppressed by baseline, 1 by ignore file ("),
            "{line}"
        );
        clean.record_suppressed(0, 0);
        assert!(summary(&clean, Style::new(false)).starts_with("No secrets found ("));
    }

    /// A clean report whose scan reached limits: `n` encrypted members not scanned.
    fn incomplete_report(n: usize) -> Report {
        let mut image = leaky_report().images.remove(0);
        image.findings.clear();
        crate::report::suppress::recount(&mut image);
        for i in 0..n {
            image.skipped.push(crate::report::model::SkipRecord {
                layer_index: 1,
                what: format!("app/keys-{i}.zip!/key.txt"),
                reason: "encrypted zip member".into(),
                kind: SkipKind::NotScanned,
            });
        }
        image.stats.items_skipped = n;
        Report::new(vec![image], 1)
    }

    fn render(report: &Report, verbose: bool) -> String {
        let mut out = Vec::new();
        let options = TextOptions {
            style: Style::new(false),
            verbose,
            show_vendor: false,
        };
        write(report, options, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_clean_but_incomplete_scan_says_what_was_not_scanned() {
        let text = render(&incomplete_report(1), false);
        assert!(text.contains("  1 item not scanned:\n"), "{text}");
        assert!(
            text.contains("    layer 2: app/keys-0.zip!/key.txt: encrypted zip member\n"),
            "{text}"
        );
        let last = text.lines().last().unwrap();
        assert!(
            last.starts_with("No secrets found in what was scanned; 1 item not scanned ("),
            "{last}"
        );

        let text = render(&incomplete_report(5), false);
        assert!(text.contains("  5 items not scanned:\n"), "{text}");
        assert!(
            text.contains("keys-2.zip") && !text.contains("keys-3.zip"),
            "{text}"
        );
        assert!(
            text.contains("… and 2 more (-v or --format json lists them all)"),
            "{text}"
        );
        let all = render(&incomplete_report(5), true);
        assert!(
            all.contains("keys-4.zip") && !all.contains("more (-v"),
            "{all}"
        );
    }

    #[test]
    fn irregular_entries_are_listed_as_scanned_and_keep_the_all_clear() {
        let mut report = incomplete_report(0);
        report.images[0]
            .skipped
            .push(crate::report::model::SkipRecord {
                layer_index: 0,
                what: "d/sub".into(),
                reason: "tar header claims 1024 data bytes for an entry that has none".into(),
                kind: SkipKind::Irregular,
            });
        report.images[0].stats.items_irregular = 1;
        let report = Report::new(report.images, 1);
        let text = render(&report, false);
        assert!(
            text.contains("  1 irregular entry (scanned as runtimes read them):\n"),
            "{text}"
        );
        assert!(!text.contains("not scanned"), "{text}");
        let last = text.lines().last().unwrap();
        assert!(
            last.starts_with("No secrets found; 1 irregular entry ("),
            "{last}"
        );
    }

    #[test]
    fn findings_and_skips_share_the_summary_line() {
        let mut report = leaky_report();
        report.stats.items_skipped = 2;
        report.stats.layers_skipped = 1;
        let line = summary(&report, Style::new(false));
        assert!(
            line.contains("; 2 items not scanned; 1 layer not scanned ("),
            "{line}"
        );
    }
}
