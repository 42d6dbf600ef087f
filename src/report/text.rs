//! `--format text`: findings grouped by layer, each under the history step that made the
//! layer, with deleted and overwritten files called out, and a summary line at the end.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Result;

use super::describe::{one_line, short_hex};
use super::model::{Finding, ImageReport, Location, LocationKind, NotListed, Report};
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
    /// Print remediation advice in full under each finding.
    pub verbose: bool,
}

pub fn write(report: &Report, options: TextOptions, out: &mut dyn Write) -> Result<()> {
    for image in &report.images {
        write_image(image, options, out)?;
    }
    writeln!(out, "{}", summary(report, options.style))?;
    Ok(())
}

fn write_image(image: &ImageReport, options: TextOptions, out: &mut dyn Write) -> Result<()> {
    write_image_header(image, options.style, out)?;
    if image.findings.is_empty() && image.not_listed.is_empty() {
        writeln!(out, "  no secrets found\n")?;
        return Ok(());
    }
    writeln!(out)?;
    let groups = FindingGroups::of(image);
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
        "  {manifest}config {}  {} layers, {} files, {}",
        short_hex(&image.config_digest),
        image.stats.layers,
        image.stats.files,
        human_bytes(image.stats.content_bytes)
    )?;
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
    fn of(image: &'a ImageReport) -> FindingGroups<'a> {
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
        for finding in &image.findings {
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
    for (key, value) in &finding.details {
        writeln!(out, "{indent}{key}: {value}")?;
    }
    if options.verbose {
        writeln!(out, "{indent}fix: {}", finding.remediation.instead)?;
        writeln!(out, "{indent}{}", finding.remediation.rotate)?;
        writeln!(out, "{indent}fingerprint {}", finding.fingerprint)?;
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
        "{} image{}, {} layers, {} files, {} in {:.2}s",
        stats.images,
        if stats.images == 1 { "" } else { "s" },
        stats.layers,
        stats.files,
        human_bytes(stats.content_bytes),
        stats.duration_ms as f64 / 1000.0
    );
    let suppressed = suppressed_words(stats);
    if stats.findings == 0 && stats.findings_not_listed == 0 {
        let suppressed = if suppressed.is_empty() {
            String::new()
        } else {
            format!("; {suppressed}")
        };
        return format!(
            "{}{suppressed} ({scanned})",
            style.paint("1;32", "No secrets found")
        );
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
    if stats.items_skipped > 0 {
        line.push_str(&format!(
            "; {} files or archive members not scanned (see the JSON report's skipped)",
            stats.items_skipped
        ));
    }
    if stats.layers_skipped > 0 {
        line.push_str(&format!("; {} layers skipped", stats.layers_skipped));
    }
    if !suppressed.is_empty() {
        line.push_str(&format!("; {suppressed}"));
    }
    format!("{line} ({scanned})")
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
}
