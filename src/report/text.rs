//! `--format text`: the findings most severe first, deleted-but-shipped before present; each
//! with its place (layers and history steps counted from 1), its masked line and the other
//! places of the same secret; then what to do, once per kind of advice; and a summary line
//! at the end.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Result;

use super::describe::{other_place, place, short_hex};
use super::model::{
    Finding, ImageReport, Location, LocationKind, NotListed, Remediation, Report, SkipKind,
};
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
    /// Print each finding's fingerprint, and every skipped item (not only the first few).
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
    let shown: Vec<&Finding> = image
        .findings
        .iter()
        .filter(|f| options.show_vendor || !f.is_vendor())
        .collect();
    write_shown(image, &shown, options, out)?;
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

/// The findings in report order (the most severe first, deleted-but-shipped before present),
/// each file's (or item's) last followed by its "… and N more" line when it held more than
/// the per-file limit; then what to do, once per kind of advice.
fn write_shown(
    image: &ImageReport,
    shown: &[&Finding],
    options: TextOptions,
    out: &mut dyn Write,
) -> Result<()> {
    let not_listed: BTreeMap<Location, &NotListed> = image
        .not_listed
        .iter()
        .map(|entry| (entry.location.clone(), entry))
        .collect();
    let mut last_of_item: BTreeMap<Location, usize> = BTreeMap::new();
    for (position, finding) in shown.iter().enumerate() {
        last_of_item.insert(finding.location.item(), position);
    }
    let advice = Advice::of(shown);
    for (position, finding) in shown.iter().enumerate() {
        write_finding(image, finding, advice.number(finding), options, out)?;
        let item = finding.location.item();
        if last_of_item.get(&item) == Some(&position)
            && let Some(entry) = not_listed.get(&item)
        {
            writeln!(out, "    {}", options.style.paint("33", &more_words(entry)))?;
        }
    }
    writeln!(out)?;
    write_unlisted_only(image, options.style, out)?;
    advice.write(options.style, out)
}

/// The distinct pieces of advice of the findings shown, numbered in order of first use: each
/// is printed once, and each finding names its number.
struct Advice<'a> {
    /// The advice, and the names of the rules whose findings it is for.
    entries: Vec<(&'a Remediation, Vec<&'a str>)>,
}

impl<'a> Advice<'a> {
    fn of(shown: &[&'a Finding]) -> Advice<'a> {
        let mut entries: Vec<(&'a Remediation, Vec<&'a str>)> = Vec::new();
        for finding in shown {
            let at = match entries
                .iter()
                .position(|(r, _)| same(r, &finding.remediation))
            {
                Some(at) => at,
                None => {
                    entries.push((&finding.remediation, Vec::new()));
                    entries.len() - 1
                }
            };
            let names = &mut entries[at].1;
            if !names.contains(&finding.rule_name.as_str()) {
                names.push(&finding.rule_name);
            }
        }
        Advice { entries }
    }

    /// The number (from 1) of the advice for `finding`.
    fn number(&self, finding: &Finding) -> usize {
        self.entries
            .iter()
            .position(|(r, _)| same(r, &finding.remediation))
            .map_or(0, |at| at + 1)
    }

    fn write(&self, style: Style, out: &mut dyn Write) -> Result<()> {
        if self.entries.is_empty() {
            return Ok(());
        }
        writeln!(out, "  {}", style.paint("1", "What to do"))?;
        for (number, (remediation, names)) in self.entries.iter().enumerate() {
            writeln!(
                out,
                "  [{}] {}",
                number + 1,
                style.paint("1", &names.join(", "))
            )?;
            for line in wrap(
                &format!("{} {}", remediation.instead, remediation.rotate),
                96,
            ) {
                writeln!(out, "      {line}")?;
            }
        }
        writeln!(out)?;
        Ok(())
    }
}

/// Whether two findings get the same advice (texts are shared, so mostly one pointer).
fn same(a: &Remediation, b: &Remediation) -> bool {
    (&a.instead, &a.rotate, &a.kubernetes_secret_type)
        == (&b.instead, &b.rotate, &b.kubernetes_secret_type)
}

/// `text` in lines of at most `width` characters, broken at spaces (a longer word keeps its
/// own line).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
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
            layer.index + 1,
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

fn write_finding(
    image: &ImageReport,
    finding: &Finding,
    advice: usize,
    options: TextOptions,
    out: &mut dyn Write,
) -> Result<()> {
    let style = options.style;
    let layers = image.layers.len();
    writeln!(
        out,
        "    {} {}  {}  {}",
        style.severity(finding.severity),
        finding.rule_name,
        style.paint("36", &place(&finding.location, layers)),
        finding.secret.lines().next().unwrap_or_default()
    )?;
    let indent = "             ";
    let shipped = |word: &str, removed: usize| {
        format!(
            "{word} in layer {} but still shipped in layer {}",
            removed + 1,
            finding.location.layer_index.unwrap_or_default() + 1
        )
    };
    match (finding.status, finding.removed_in_layer) {
        (Status::Deleted, Some(layer)) => writeln!(
            out,
            "{indent}{}",
            style.paint("1;35", &shipped("DELETED", layer))
        )?,
        (Status::Overwritten, Some(layer)) => writeln!(
            out,
            "{indent}{}",
            style.paint("1;35", &shipped("OVERWRITTEN", layer))
        )?,
        _ => {}
    }
    if let Some(context) = &finding.context {
        writeln!(out, "{indent}{}", style.paint("2", &format!("> {context}")))?;
    }
    for other in &finding.also_found_in {
        writeln!(
            out,
            "{indent}also in {}",
            style.paint("36", &other_place(other, layers))
        )?;
    }
    if let Some(provenance) = &finding.provenance {
        write_provenance(provenance, style, indent, out)?;
    }
    for (key, value) in &finding.details {
        writeln!(out, "{indent}{key}: {value}")?;
    }
    write_hint(finding, advice, options, indent, out)
}

/// The package that owns the finding's file, and whether the file is what it shipped.
fn write_provenance(
    provenance: &super::model::Provenance,
    style: Style,
    indent: &str,
    out: &mut dyn Write,
) -> Result<()> {
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
    Ok(())
}

/// The closing line of a finding: what kind of secret it is when that changes the advice,
/// and the number of its advice under "What to do" (printed once for all the findings it
/// fits); with `-v`, the fingerprint.
fn write_hint(
    finding: &Finding,
    advice: usize,
    options: TextOptions,
    indent: &str,
    out: &mut dyn Write,
) -> Result<()> {
    let style = options.style;
    let kind = if is_password_hash(
        finding
            .details
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    ) {
        "password hash: crackable offline; "
    } else if finding.details.contains_key("published_in") {
        "public key material, not this image's secret; "
    } else {
        ""
    };
    writeln!(
        out,
        "{indent}{}",
        style.paint("2", &format!("{kind}what to do: [{advice}] below"))
    )?;
    if options.verbose {
        writeln!(out, "{indent}fingerprint {}", finding.fingerprint)?;
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
    fn each_piece_of_advice_is_printed_once_and_findings_point_to_it() {
        let mut report = leaky_report();
        let image = &mut report.images[0];
        let other = image.findings.remove(1);
        let place = crate::report::model::OtherPlace {
            location: other.location.clone(),
            status: other.status,
            removed_in_layer: None,
            removed_in_layer_number: None,
            rule_id: other.rule_id.clone(),
            rule_name: other.rule_name.clone(),
            severity: other.severity,
            fingerprint: other.fingerprint.clone(),
            context: Some("RUN |1 AWS_KEY=AKIA**** make".into()),
        };
        image.findings[0].also_found_in.push(place);
        image.findings[0].context = Some("aws_access_key_id = AKIA****".into());
        let text = render(&report, false);
        assert!(text.contains("> aws_access_key_id = AKIA****\n"), "{text}");
        assert!(
            text.contains("also in history step 1 (build-arg AWS_KEY)\n"),
            "{text}"
        );
        let advice = report.images[0].findings[0].remediation.instead.to_string();
        let first_words: String = advice
            .split_whitespace()
            .take(6)
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(text.matches(&first_words).count(), 1, "{text}");
        assert!(text.contains("what to do: [1] below"), "{text}");
        assert!(text.contains("what to do: [2] below"), "{text}");
        assert!(!text.contains("what to do: [3]"), "{text}");
    }

    #[test]
    fn advice_wraps_at_spaces() {
        assert_eq!(wrap("a bb ccc dddd", 6), ["a bb", "ccc", "dddd"]);
        assert_eq!(
            wrap("averyveryverylongword x", 5),
            ["averyveryverylongword", "x"]
        );
        assert!(wrap("", 10).is_empty());
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
