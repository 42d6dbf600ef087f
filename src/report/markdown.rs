//! `--format markdown`: a summary and a table of findings, for pull-request comments and CI job
//! summaries (`$GITHUB_STEP_SUMMARY`, GitLab merge-request notes).
//!
//! - the most severe findings come first, deleted-but-shipped before present at one severity;
//! - at most [`MAX_ROWS`] rows in all (GitHub cuts comments at 65,536 characters); the rest
//!   are counted with a pointer to the JSON report;
//! - vendor content is counted, not listed, as in the GitLab report;
//! - every cell is escaped: paths and names from the image cannot break the table or inject
//!   markup; secrets appear only in their redacted form (see [`super::redact::masked`]).

use std::io::Write;

use anyhow::Result;

use super::describe::{other_place, short_place};
use super::model::{Finding, ImageReport, Report};
use super::skips::{self, plural};
use crate::detect::Severity;
use crate::layer::Status;

/// Rows listed over the whole report.
pub const MAX_ROWS: usize = 100;

/// Writes the report as Markdown.
pub fn write(report: &Report, out: &mut dyn Write) -> Result<()> {
    writeln!(out, "## {}\n", headline(report))?;
    writeln!(out, "{}\n", scanned_line(report))?;
    let mut rows_left = MAX_ROWS;
    for image in &report.images {
        write_image(image, &mut rows_left, out)?;
    }
    let stats = &report.stats;
    let mut notes = Vec::new();
    if stats.suppressed_by_baseline > 0 {
        notes.push(format!(
            "{} suppressed by the baseline",
            stats.suppressed_by_baseline
        ));
    }
    if stats.suppressed_by_ignore > 0 {
        notes.push(format!(
            "{} suppressed by the ignore file",
            stats.suppressed_by_ignore
        ));
    }
    if !notes.is_empty() {
        writeln!(out, "Accepted findings: {}.\n", notes.join(", "))?;
    }
    if stats.hidden_by_severity > 0 {
        writeln!(
            out,
            "{} not shown (`--severity`); the exit code still counts them.\n",
            plural(stats.hidden_by_severity, "finding", "findings")
        )?;
    }
    writeln!(
        out,
        "<sub>{} {}</sub>",
        text(&report.tool.name),
        text(&report.tool.version)
    )?;
    Ok(())
}

/// `stowaway: 3 findings (1 critical, 2 high)`, or that nothing was found.
fn headline(report: &Report) -> String {
    let stats = &report.stats;
    if stats.findings == 0 {
        return "stowaway: no secrets found".to_string();
    }
    let by_severity: Vec<String> = stats
        .by_severity
        .iter()
        .rev()
        .map(|(severity, count)| format!("{count} {severity}"))
        .collect();
    format!(
        "stowaway: {} ({})",
        plural(stats.findings, "finding", "findings"),
        by_severity.join(", ")
    )
}

/// What was scanned, what still ships although deleted, and what was not scanned.
fn scanned_line(report: &Report) -> String {
    let stats = &report.stats;
    let mut parts = vec![format!(
        "Scanned {}, {}, {}",
        plural(stats.images, "image", "images"),
        plural(stats.layers, "layer", "layers"),
        plural(stats.files as usize, "file", "files")
    )];
    if stats.deleted_but_shipped > 0 {
        parts.push(format!(
            "**{} deleted or overwritten but still shipped** in a lower layer",
            plural(stats.deleted_but_shipped, "finding", "findings")
        ));
    }
    parts.extend(skips::count_phrases(stats));
    format!("{}.", parts.join("; "))
}

fn write_image(image: &ImageReport, rows_left: &mut usize, out: &mut dyn Write) -> Result<()> {
    let platform = image.platform.as_deref().unwrap_or("unknown platform");
    writeln!(out, "### {} ({})\n", code(&image.reference), text(platform))?;
    let mut listed: Vec<&Finding> = image.findings.iter().filter(|f| !f.is_vendor()).collect();
    // Stable: at one severity and fate, the report's order (by place) stays.
    listed.sort_by_key(|f| (std::cmp::Reverse(f.severity), f.status == Status::Present));
    if listed.is_empty() {
        writeln!(out, "No findings.\n")?;
    } else {
        writeln!(out, "| Severity | Secret | Where | Rule |")?;
        writeln!(out, "| --- | --- | --- | --- |")?;
        let shown = listed.len().min(*rows_left);
        for finding in &listed[..shown] {
            writeln!(out, "{}", row(finding, image.layers.len()))?;
        }
        *rows_left -= shown;
        writeln!(out)?;
        if shown < listed.len() {
            writeln!(
                out,
                "{} not shown here: `--format json` or `--format text` lists every one.\n",
                plural(listed.len() - shown, "more finding", "more findings")
            )?;
        }
    }
    let vendor = image.findings.len() - listed.len();
    let mut notes = Vec::new();
    if vendor > 0 {
        notes.push(format!(
            "{} in vendor content (files a package installed unmodified) not listed",
            plural(vendor, "finding", "findings")
        ));
    }
    if image.stats.findings_not_listed > 0 {
        notes.push(format!(
            "{} over the per-file limit (`--max-findings-per-file`) not listed",
            plural(image.stats.findings_not_listed, "finding", "findings")
        ));
    }
    for (_, message) in skips::image_messages(image) {
        notes.push(text(&message));
    }
    for note in notes {
        writeln!(out, "- {note}")?;
    }
    writeln!(out)?;
    Ok(())
}

/// How many other places a row names before it counts the rest.
const OTHER_PLACES: usize = 3;

/// One table row: severity, the redacted secret, the place (and fate) and the other places
/// of the same secret, the rule.
fn row(finding: &Finding, layers: usize) -> String {
    let secret = finding.secret.lines().next().unwrap_or_default().trim();
    let severity = match finding.severity {
        Severity::Critical | Severity::High => format!("**{}**", finding.severity),
        _ => finding.severity.to_string(),
    };
    let mut place = code(&short_place(finding));
    if !finding.also_found_in.is_empty() {
        let others: Vec<String> = finding
            .also_found_in
            .iter()
            .take(OTHER_PLACES)
            .map(|other| code(&other_place(other, layers)))
            .collect();
        place.push_str(&format!("<br>also in {}", others.join(", ")));
        let rest = finding.also_found_in.len().saturating_sub(OTHER_PLACES);
        if rest > 0 {
            place.push_str(&format!(" and {rest} more"));
        }
    }
    format!(
        "| {severity} | {} | {place} | {} ({}) |",
        code(secret),
        text(&finding.rule_name),
        code(&finding.rule_id)
    )
}

/// `text` as an inline code span inside a table cell: on one line, with a fence longer than
/// any run of backticks in it, and `|` escaped (GitHub reads `\|` as a pipe even in code).
fn code(text: &str) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .replace('|', "\\|");
    let longest_run = flat
        .split(|c| c != '`')
        .map(str::len)
        .max()
        .unwrap_or_default();
    let fence = "`".repeat(longest_run + 1);
    // A space keeps a leading or trailing backtick from joining the fence.
    let pad = if flat.starts_with('`') || flat.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{flat}{pad}{fence}")
}

/// Plain `text` with every character Markdown or HTML could read as markup escaped, on one
/// line.
fn text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c if c.is_control() => out.push(' '),
            // Emphasis, code, links, tables, strike-through and the escape itself; the rest
            // of ASCII punctuation means something only at the start of a line, and a cell
            // never starts one.
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample::leaky_report;

    fn render(report: &Report) -> String {
        let mut out = Vec::new();
        write(report, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_most_severe_come_first_in_one_table_row_each() {
        let report = leaky_report();
        let markdown = render(&report);
        let rows: Vec<&str> = markdown
            .lines()
            .filter(|line| line.starts_with("| ") && !line.starts_with("| Severity"))
            .filter(|line| !line.starts_with("| ---"))
            .collect();
        assert_eq!(rows.len(), report.images[0].findings.len(), "{markdown}");
        let severities: Vec<Severity> = rows
            .iter()
            .map(|row| {
                let cell = row.split(" | ").next().unwrap().trim_start_matches("| ");
                cell.trim_matches('*').parse().unwrap()
            })
            .collect();
        let mut sorted = severities.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        assert_eq!(severities, sorted, "{markdown}");
        assert!(markdown.starts_with("## stowaway: "), "{markdown}");
    }

    #[test]
    fn cells_cannot_break_the_table_or_inject_markup() {
        assert_eq!(code("a|b"), "`a\\|b`");
        assert_eq!(code("x`y"), "``x`y``");
        assert_eq!(code("`x"), "`` `x ``");
        assert_eq!(code("a\nb"), "`a b`");
        assert_eq!(text("<img src=x>"), "&lt;img src=x&gt;");
        assert_eq!(text("[a](b) *c* | d-e"), "\\[a\\](b) \\*c\\* \\| d-e");
    }
}
