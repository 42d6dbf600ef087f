//! `--format junit`: JUnit XML, the test-report format CI panes read (GitHub test reporters,
//! GitLab `artifacts: reports: junit:`, Jenkins, Azure Pipelines).
//!
//! - one `<testsuite>` per image, named by its reference;
//! - one `<testcase>` per finding (vendor content counted in a property, not listed, as in the
//!   GitLab report): `classname` is `stowaway.<rule id>`, `name` the place and line; a
//!   finding at or above `--fail-on` is a `<failure>` (its `type` the severity), one below it
//!   `<skipped>`, so the pane's red matches the exit code;
//! - one more `<testcase>` per image, `every layer and file scanned`: a `<failure>` with
//!   `--fail-on-incomplete` when something was not scanned, `<skipped>` without it;
//! - an image without findings is one passing case, so the pane shows it was scanned;
//! - secrets only in their redacted form (see [`super::redact::masked`]); text from the image
//!   is escaped, and characters XML 1.0 cannot carry at all are replaced.

use std::fmt::Write as _;
use std::io::Write;

use anyhow::Result;

use super::describe::{sentence, short_place};
use super::model::{Finding, ImageReport, Report};
use super::skips;
use crate::detect::Severity;

/// The gates of the run, which decide failure or skipped.
#[derive(Clone, Copy, Debug)]
pub struct Gates {
    /// `--fail-on`: findings at or above it fail; `None` (`--fail-on none`) fails none.
    pub fail_on: Option<Severity>,
    /// `--fail-on-incomplete`.
    pub fail_on_incomplete: bool,
}

/// One `<testcase>` before it is written.
struct Case {
    classname: String,
    name: String,
    outcome: Outcome,
}

enum Outcome {
    Passed,
    Failed {
        message: String,
        kind: String,
        body: String,
    },
    Skipped(String),
}

/// Writes the report as JUnit XML.
pub fn write(report: &Report, gates: Gates, out: &mut dyn Write) -> Result<()> {
    let suites: Vec<(&ImageReport, Vec<Case>)> = report
        .images
        .iter()
        .map(|image| (image, cases(image, gates)))
        .collect();
    let all: Vec<&Case> = suites.iter().flat_map(|(_, cases)| cases).collect();
    let seconds = report.stats.duration_ms as f64 / 1000.0;
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    writeln!(
        xml,
        "<testsuites name=\"stowaway\" {} time=\"{seconds:.3}\">",
        counts(&all)
    )?;
    for (image, cases) in &suites {
        write_suite(&mut xml, image, cases, seconds)?;
    }
    xml.push_str("</testsuites>\n");
    out.write_all(xml.as_bytes())?;
    Ok(())
}

fn write_suite(xml: &mut String, image: &ImageReport, cases: &[Case], seconds: f64) -> Result<()> {
    let refs: Vec<&Case> = cases.iter().collect();
    writeln!(
        xml,
        "  <testsuite name=\"{}\" {} time=\"{seconds:.3}\">",
        escape(&image.reference),
        counts(&refs)
    )?;
    xml.push_str("    <properties>\n");
    let vendor = image.findings.iter().filter(|f| f.is_vendor()).count();
    let properties = [
        ("config_digest", image.config_digest.clone()),
        ("platform", image.platform.clone().unwrap_or_default()),
        ("layers", image.stats.layers.to_string()),
        ("findings_in_vendor_content", vendor.to_string()),
        (
            "deleted_but_shipped",
            image.stats.deleted_but_shipped.to_string(),
        ),
    ];
    for (name, value) in properties {
        writeln!(
            xml,
            "      <property name=\"{name}\" value=\"{}\"/>",
            escape(&value)
        )?;
    }
    xml.push_str("    </properties>\n");
    for case in cases {
        write!(
            xml,
            "    <testcase classname=\"{}\" name=\"{}\" time=\"0\"",
            escape(&case.classname),
            escape(&case.name)
        )?;
        match &case.outcome {
            Outcome::Passed => xml.push_str("/>\n"),
            Outcome::Skipped(message) => writeln!(
                xml,
                ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                escape(message)
            )?,
            Outcome::Failed {
                message,
                kind,
                body,
            } => writeln!(
                xml,
                ">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>",
                escape(message),
                escape(kind),
                escape(body)
            )?,
        }
    }
    xml.push_str("  </testsuite>\n");
    Ok(())
}

/// `tests="…" failures="…" errors="0" skipped="…"`.
fn counts(cases: &[&Case]) -> String {
    let failures = cases
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Failed { .. }))
        .count();
    let skipped = cases
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Skipped(_)))
        .count();
    format!(
        "tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\"",
        cases.len()
    )
}

/// The image's cases: its findings, then whether everything was scanned.
fn cases(image: &ImageReport, gates: Gates) -> Vec<Case> {
    let mut cases: Vec<Case> = image
        .findings
        .iter()
        .filter(|finding| !finding.is_vendor())
        .map(|finding| finding_case(image, finding, gates))
        .collect();
    let not_scanned = image.stats.items_skipped + image.stats.layers_skipped;
    let outcome = if not_scanned == 0 {
        Outcome::Passed
    } else {
        let counts = skips::count_phrases(&super::model::Stats {
            items_skipped: image.stats.items_skipped,
            layers_skipped: image.stats.layers_skipped,
            ..Default::default()
        });
        let message = format!("{} (the JSON report lists them)", counts.join(", "));
        if gates.fail_on_incomplete {
            let body: Vec<String> = skips::image_messages(image)
                .into_iter()
                .map(|(_, text)| text)
                .collect();
            Outcome::Failed {
                message,
                kind: "incomplete".to_string(),
                body: body.join("\n"),
            }
        } else {
            Outcome::Skipped(message)
        }
    };
    cases.push(Case {
        classname: "stowaway.scan".to_string(),
        name: "every layer and file scanned".to_string(),
        outcome,
    });
    if image.findings.iter().all(Finding::is_vendor) {
        cases.insert(
            0,
            Case {
                classname: "stowaway.scan".to_string(),
                name: "no secrets found".to_string(),
                outcome: Outcome::Passed,
            },
        );
    }
    cases
}

fn finding_case(image: &ImageReport, finding: &Finding, gates: Gates) -> Case {
    let gated = gates
        .fail_on
        .is_some_and(|threshold| finding.severity >= threshold);
    let secret = finding.secret.lines().next().unwrap_or_default().trim();
    let message = format!("{} {}: {secret}", finding.severity, finding.rule_name);
    let outcome = if gated {
        Outcome::Failed {
            message,
            kind: finding.severity.to_string(),
            body: format!(
                "{}{}\nfingerprint: {}",
                sentence(image, finding),
                finding
                    .context
                    .as_ref()
                    .map(|context| format!("\nline (masked): {context}"))
                    .unwrap_or_default(),
                finding.fingerprint
            ),
        }
    } else {
        let threshold = gates
            .fail_on
            .map_or_else(|| "none".to_string(), |s| s.to_string());
        Outcome::Skipped(format!("{message} (below --fail-on {threshold})"))
    };
    // The line keeps two findings of one rule in one file apart: panes key cases by
    // classname and name.
    let name = match finding.location.line {
        Some(line) => format!("{} line {line}", short_place(finding)),
        None => short_place(finding),
    };
    Case {
        classname: format!("stowaway.{}", finding.rule_id),
        name,
        outcome,
    }
}

/// `text` for an attribute or element: the five XML escapes, line breaks kept as character
/// references (attribute values would fold them into spaces), and what XML 1.0 cannot hold
/// even escaped (control characters, lone surrogates cannot occur in a `str`) as U+FFFD.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' => out.push_str("&#9;"),
            '\r' => out.push_str("&#13;"),
            '\u{FFFE}' | '\u{FFFF}' => out.push('\u{FFFD}'),
            c if (c as u32) < 0x20 => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample::leaky_report;

    fn render(report: &Report, gates: Gates) -> String {
        let mut out = Vec::new();
        write(report, gates, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn findings_fail_at_or_above_the_gate_and_are_skipped_below_it() {
        let report = leaky_report();
        let findings = report.images[0].findings.len();
        let all = render(
            &report,
            Gates {
                fail_on: Some(Severity::Info),
                fail_on_incomplete: false,
            },
        );
        assert_eq!(all.matches("<failure ").count(), findings, "{all}");
        assert!(all.contains(&format!("failures=\"{findings}\"")), "{all}");
        let none = render(
            &report,
            Gates {
                fail_on: None,
                fail_on_incomplete: false,
            },
        );
        assert_eq!(none.matches("<failure ").count(), 0, "{none}");
        assert_eq!(none.matches("<skipped ").count(), findings, "{none}");
        assert!(none.contains("(below --fail-on none)"), "{none}");
    }

    #[test]
    fn escapes_leave_well_formed_xml() {
        assert_eq!(
            escape("a<b>&\"c'\n\u{1}"),
            "a&lt;b&gt;&amp;&quot;c&apos;&#10;\u{FFFD}"
        );
    }
}
