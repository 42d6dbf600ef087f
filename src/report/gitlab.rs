//! `--format gitlab`: GitLab's secret detection report (schema 15.2.4), the file a CI job
//! publishes as `artifacts: reports: secret_detection:`.
//!
//! - `location.file` is [`Location::uri`](super::model::Location::uri)
//!   (`layer/1/root/.aws/credentials`, `history/8`, `config/Env/DB_PASSWORD`; layers and steps counted from 1), the same names
//!   the SARIF output uses;
//! - `location.commit.sha` is required by the schema; an image has no commit, so it is the hex
//!   of the image's manifest digest (of its config digest when there is no manifest);
//! - `id` is a UUID (version 8, derived from SHA-256) of the image reference, the finding's
//!   fingerprint and its location: the same finding gets the same id in every report;
//! - the primary identifier is the rule (`type: stowaway_rule_id`), then CWE-798;
//! - the secret itself is never written as `raw_source_code_extract`; `description` carries
//!   the redacted form the report holds.

use std::io::Write;
use std::time::SystemTime;

use anyhow::Result;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::date::utc_timestamp;
use super::describe::{display_path, layer_words, other_place, sentence};
use super::model::{Finding, ImageReport, LocationKind, Report, SkipKind, Stats};
use super::ruledoc::{CWE_ID, CWE_NAME, CWE_URL, RuleDoc, doc_for};
use super::skips;
use crate::detect::Severity;
use crate::layer::Status;

/// The schema version the report declares.
pub const SCHEMA_VERSION: &str = "15.2.4";
/// `identifiers[].type` of the primary identifier.
pub const RULE_IDENTIFIER_TYPE: &str = "stowaway_rule_id";

/// When the scan ran (the report has `start_time` and `end_time`).
#[derive(Clone, Copy, Debug)]
pub struct ScanTimes {
    pub start: SystemTime,
    pub end: SystemTime,
}

/// Writes the report in GitLab's secret detection format.
pub fn write(
    report: &Report,
    rules: &[RuleDoc],
    times: ScanTimes,
    out: &mut dyn Write,
) -> Result<()> {
    serde_json::to_writer_pretty(&mut *out, &to_value(report, rules, times))?;
    writeln!(out)?;
    Ok(())
}

/// GitLab's severity names.
pub fn severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "Critical",
        Severity::High => "High",
        Severity::Medium => "Medium",
        Severity::Low => "Low",
        Severity::Info => "Info",
    }
}

/// The report as a JSON value.
pub fn to_value(report: &Report, rules: &[RuleDoc], times: ScanTimes) -> Value {
    let vulnerabilities: Vec<Value> = report
        .images
        .iter()
        .flat_map(|image| {
            // Vendor content is not a vulnerability of the image (see `messages`).
            image
                .findings
                .iter()
                .filter(|finding| !finding.is_vendor())
                .map(move |finding| vulnerability(image, finding, &doc_for(rules, finding)))
        })
        .collect();
    let tool = {
        let mut tool = json!({
            "id": report.tool.name,
            "name": report.tool.name,
            "version": report.tool.version,
            "vendor": { "name": report.tool.name },
        });
        if let Some(url) = information_url() {
            tool["url"] = json!(url);
        }
        tool
    };
    json!({
        "version": SCHEMA_VERSION,
        "scan": {
            "analyzer": tool,
            "scanner": tool,
            "type": "secret_detection",
            "start_time": utc_timestamp(times.start),
            "end_time": utc_timestamp(times.end),
            "status": "success",
            "messages": messages(report),
        },
        "vulnerabilities": vulnerabilities,
    })
}

fn information_url() -> Option<&'static str> {
    [env!("CARGO_PKG_HOMEPAGE"), env!("CARGO_PKG_REPOSITORY")]
        .into_iter()
        .find(|uri| uri.starts_with("https://") || uri.starts_with("http://"))
}

/// What was not scanned (warn), irregular entries (info), files over the per-file limit (warn)
/// and suppressed findings (info): nothing left out silently. An image with something not scanned starts with a count, so
/// the merge request widget says it even when no finding does.
fn messages(report: &Report) -> Vec<Value> {
    let mut messages = Vec::new();
    for image in &report.images {
        let counts = skips::count_phrases(&image_counts(image));
        if !counts.is_empty() {
            let incomplete = image.stats.items_skipped + image.stats.layers_skipped > 0;
            let listed = if skips::listed_in_full(image) {
                "each listed below; the JSON report has them too".to_string()
            } else {
                format!(
                    "up to {} of each kind listed below; the JSON report lists them all",
                    skips::LISTED_PER_KIND
                )
            };
            messages.push(json!({
                "level": if incomplete { "warn" } else { "info" },
                "value": format!("{}: {} ({listed})", image.reference, counts.join(", ")),
            }));
        }
        for (kind, text) in skips::image_messages(image) {
            messages.push(json!({
                "level": match kind {
                    SkipKind::NotScanned => "warn",
                    SkipKind::Irregular => "info",
                },
                "value": format!("{}: {text}", image.reference),
            }));
        }
        let vendor = image.findings.iter().filter(|f| f.is_vendor()).count();
        if vendor > 0 {
            messages.push(json!({
                "level": "info",
                "value": format!(
                    "{}: {vendor} findings in vendor content (files installed unmodified by a package manager) are not listed; see the JSON report",
                    image.reference
                ),
            }));
        }
        for note in &image.packages.not_read {
            messages.push(json!({
                "level": "warn",
                "value": format!("{}: {note}", image.reference),
            }));
        }
        // A file over the per-file limit costs one message per `limit` findings at most.
        for entry in &image.not_listed {
            messages.push(json!({
                "level": "warn",
                "value": format!(
                    "{}: {}: {} more findings not listed ({} listed per file, see --max-findings-per-file)",
                    image.reference,
                    entry.location.uri(),
                    entry.count,
                    entry.limit
                ),
            }));
        }
    }
    let stats = &report.stats;
    if stats.suppressed_by_baseline > 0 {
        messages.push(json!({
            "level": "info",
            "value": format!("{} suppressed by baseline", stats.suppressed_by_baseline),
        }));
    }
    if stats.suppressed_by_ignore > 0 {
        messages.push(json!({
            "level": "info",
            "value": format!("{} suppressed by ignore file", stats.suppressed_by_ignore),
        }));
    }
    messages
}

/// One image's skip counts, in the shape [`skips::count_phrases`] words.
fn image_counts(image: &ImageReport) -> Stats {
    Stats {
        items_skipped: image.stats.items_skipped,
        layers_skipped: image.stats.layers_skipped,
        items_irregular: image.stats.items_irregular,
        ..Stats::default()
    }
}

/// The hex of the manifest digest, else of the config digest.
pub fn commit_sha(image: &ImageReport) -> String {
    let digest = image
        .manifest_digest
        .as_deref()
        .unwrap_or(&image.config_digest);
    let hex = digest.split_once(':').map_or(digest, |(_, hex)| hex);
    if hex.is_empty() {
        "unknown".to_string()
    } else {
        hex.to_string()
    }
}

/// A UUID (RFC 9562 version 8: custom, here SHA-256 based) for a finding in an image.
pub fn vulnerability_id(image: &ImageReport, finding: &Finding) -> String {
    let mut hasher = Sha256::new();
    for part in [
        image.reference.as_str(),
        finding.rule_id.as_str(),
        finding.fingerprint.as_str(),
        &finding.location.uri(),
        &finding.location.line.unwrap_or(0).to_string(),
        &finding.location.column.unwrap_or(0).to_string(),
    ] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    let mut bytes: [u8; 16] = hasher.finalize()[..16].try_into().expect("16 bytes");
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn truncate(text: String, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        text
    } else {
        let mut cut: String = text.chars().take(max_chars - 1).collect();
        cut.push('…');
        cut
    }
}

fn text_detail(name: &str, value: impl Into<String>) -> Value {
    json!({ "name": name, "type": "text", "value": value.into() })
}

fn vulnerability(image: &ImageReport, finding: &Finding, doc: &RuleDoc) -> Value {
    let location = &finding.location;
    let identifiers = vec![
        json!({
            "type": RULE_IDENTIFIER_TYPE,
            "name": format!("stowaway rule {}", doc.id),
            "value": doc.id,
        }),
        json!({
            "type": "cwe",
            "name": CWE_NAME,
            "value": CWE_ID,
            "url": CWE_URL,
        }),
    ];
    let mut value = json!({
        "id": vulnerability_id(image, finding),
        "name": truncate(doc.name.clone(), 255),
        "description": truncate(format!("{} {}", doc.summary(), sentence(image, finding)), 1_000_000),
        "severity": severity(finding.severity),
        "solution": truncate(
            format!("{} {}", finding.remediation.rotate, finding.remediation.instead),
            7000,
        ),
        "identifiers": identifiers,
        "location": {
            "file": location.uri(),
            "start_line": location.line.unwrap_or(1).max(1),
            "commit": { "sha": commit_sha(image) },
        },
        "details": details(image, finding),
    });
    let links: Vec<Value> = doc.links().map(|url| json!({ "url": url })).collect();
    if !links.is_empty() {
        value["links"] = json!(links);
    }
    value
}

/// `details`: the image, where in it the finding is, its status, its Secret type and its
/// fingerprint, as named text fields.
fn details(image: &ImageReport, finding: &Finding) -> serde_json::Map<String, Value> {
    let location = &finding.location;
    let mut details = serde_json::Map::new();
    details.insert(
        "image".into(),
        text_detail("Image", image.reference.clone()),
    );
    if let Some(digest) = &image.manifest_digest {
        details.insert(
            "manifest_digest".into(),
            text_detail("Manifest digest", digest.clone()),
        );
    }
    details.insert(
        "config_digest".into(),
        text_detail("Config digest", image.config_digest.clone()),
    );
    match location.kind {
        LocationKind::LayerFile => {
            let layer = location.layer_index.unwrap_or_default();
            details.insert(
                "layer".into(),
                text_detail("Layer", layer_words(image, layer)),
            );
            details.insert(
                "path".into(),
                text_detail(
                    "Path in image",
                    display_path(location.path.as_deref().unwrap_or_default()),
                ),
            );
        }
        LocationKind::History => {
            details.insert(
                "history_step".into(),
                text_detail(
                    "History step",
                    format!(
                        "{} ({})",
                        location.history_index.unwrap_or_default() + 1,
                        location.field_or("created_by")
                    ),
                ),
            );
        }
        LocationKind::Config => {
            details.insert(
                "config_field".into(),
                text_detail("Config field", location.field_or("")),
            );
        }
    }
    details.insert("status".into(), text_detail("Status", status_text(finding)));
    if let Some(context) = &finding.context {
        details.insert(
            "context".into(),
            text_detail("Line (masked)", context.clone()),
        );
    }
    if !finding.also_found_in.is_empty() {
        let layers = image.layers.len();
        let items: Vec<Value> = finding
            .also_found_in
            .iter()
            .map(|other| json!({ "type": "text", "value": other_place(other, layers) }))
            .collect();
        details.insert(
            "also_found_in".into(),
            json!({ "name": "Also found in", "type": "list", "items": items }),
        );
    }
    details.insert(
        "kubernetes_secret_type".into(),
        text_detail(
            "Kubernetes Secret type",
            finding.remediation.kubernetes_secret_type.to_string(),
        ),
    );
    details.insert(
        "fingerprint".into(),
        json!({ "name": "Fingerprint", "type": "value", "value": finding.fingerprint }),
    );
    details
}

/// `present`, or `deleted in layer 3, still shipped in layer 2` (layers counted from 1).
fn status_text(finding: &Finding) -> String {
    match (finding.status, finding.removed_in_layer) {
        (Status::Present, _) => "present".to_string(),
        (status, Some(layer)) => format!(
            "{} in layer {}, still shipped in layer {}",
            status.as_str(),
            layer + 1,
            finding.location.layer_index.unwrap_or_default() + 1
        ),
        (status, None) => status.as_str().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::report::sample::{MANIFEST, docs, leaky_report};

    fn times() -> ScanTimes {
        ScanTimes {
            start: UNIX_EPOCH + Duration::from_secs(1_580_181_962),
            end: UNIX_EPOCH + Duration::from_secs(1_580_181_970),
        }
    }

    #[test]
    fn scan_block_has_everything_the_schema_requires() {
        let mut report = leaky_report();
        report.record_suppressed(3, 1);
        let value = to_value(&report, &docs(), times());
        assert_eq!(value["version"], "15.2.4");
        let scan = &value["scan"];
        assert_eq!(scan["type"], "secret_detection");
        assert_eq!(scan["status"], "success");
        assert_eq!(scan["start_time"], "2020-01-28T03:26:02");
        assert_eq!(scan["end_time"], "2020-01-28T03:26:10");
        assert_eq!(scan["analyzer"]["id"], "stowaway");
        assert_eq!(scan["scanner"]["vendor"]["name"], "stowaway");
        let messages: Vec<&str> = scan["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["value"].as_str().unwrap())
            .collect();
        assert_eq!(
            messages,
            ["3 suppressed by baseline", "1 suppressed by ignore file"]
        );
    }

    #[test]
    fn vulnerabilities_name_rule_location_and_commit() {
        let value = to_value(&leaky_report(), &docs(), times());
        let vulnerabilities = value["vulnerabilities"].as_array().unwrap();
        assert_eq!(vulnerabilities.len(), 3);
        let first = &vulnerabilities[0];
        assert_eq!(first["severity"], "Critical");
        assert_eq!(first["name"], "AWS Access Key ID");
        assert_eq!(first["identifiers"][0]["type"], RULE_IDENTIFIER_TYPE);
        assert_eq!(first["identifiers"][0]["value"], "aws-access-key-id");
        assert_eq!(first["identifiers"][1]["name"], "CWE-798");
        assert_eq!(first["location"]["file"], "layer/1/root/.aws/credentials");
        assert_eq!(first["location"]["start_line"], 2);
        assert_eq!(
            first["location"]["commit"]["sha"],
            MANIFEST.strip_prefix("sha256:").unwrap()
        );
        assert_eq!(
            first["links"],
            json!([{ "url": "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_access-keys.html" }])
        );
        assert!(
            first["description"]
                .as_str()
                .unwrap()
                .contains("DELETED in layer 2 BUT STILL SHIPPED")
        );
        assert_eq!(
            first["details"]["status"]["value"],
            "deleted in layer 2, still shipped in layer 1"
        );
        assert!(first.get("raw_source_code_extract").is_none());
        assert_eq!(vulnerabilities[1]["location"]["file"], "history/1");
        assert_eq!(vulnerabilities[2]["severity"], "Low");
        assert!(vulnerabilities[2].get("links").is_none());
    }

    #[test]
    fn ids_are_deterministic_uuids_unique_per_location() {
        let report = leaky_report();
        let image = &report.images[0];
        let ids: Vec<String> = image
            .findings
            .iter()
            .map(|f| vulnerability_id(image, f))
            .collect();
        assert_eq!(
            ids,
            image
                .findings
                .iter()
                .map(|f| vulnerability_id(image, f))
                .collect::<Vec<_>>()
        );
        // Same fingerprint, different location: different ids.
        assert_ne!(ids[0], ids[1]);
        for id in &ids {
            assert_eq!(id.len(), 36);
            assert_eq!(&id[14..15], "8", "version 8: {id}");
            assert!(
                matches!(&id[19..20], "8" | "9" | "a" | "b"),
                "variant: {id}"
            );
        }
    }

    #[test]
    fn commit_falls_back_to_the_config_digest() {
        let mut report = leaky_report();
        report.images[0].manifest_digest = None;
        assert_eq!(commit_sha(&report.images[0]), "2".repeat(64));
    }
}
