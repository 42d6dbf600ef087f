//! `--format sarif`: SARIF 2.1.0 as GitHub code scanning accepts it.
//!
//! Shape:
//! - one run per scanned image, each with `automationDetails.id` = `stowaway/<image name>/`
//!   (the code-scanning *category*; the name leaves out the tag, see [`image_name`]). GitHub rejects uploads in which two runs share a tool and
//!   a category, and a run has one `automationDetails`, so each image gets its own run; scanning
//!   one image gives one run with every result.
//! - `tool.driver.rules[]` holds the rules that results of that run reference, sorted by id
//!   (`ruleIndex` points into it). Listing every rule in effect would put a hundred-odd unused
//!   rules into every upload for no reader; `properties.rulesInEffect` counts them instead.
//! - each result has one location whose `artifactLocation.uri` is [`Location::uri`]
//!   (`layer/1/root/.aws/credentials`, `history/8`, `config/Env/DB_PASSWORD`; layers and steps counted from 1), a `region`, and
//!   `partialFingerprints` built from the finding's fingerprint (rule + secret), so an alert
//!   follows a leaked key across rebuilds.
//!
//! Nothing time-dependent is written: the same scan gives the same bytes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;

use anyhow::Result;
use serde_json::{Value, json};

use super::describe::{other_place, sentence};
use super::model::{Finding, ImageReport, Location, NotListed, Report, SkipKind};
use super::ruledoc::{CWE_NAME, CWE_URL, RuleDoc, doc_for};
use super::skips;
use crate::detect::Severity;

/// The schema URI written in `$schema`.
pub const SARIF_SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";
/// The key of our own partial fingerprint.
pub const FINGERPRINT_KEY: &str = "stowaway/fingerprint/v1";

/// GitHub's `security-severity` score for a severity (GitHub maps scores above 9.0 to
/// critical, 7.0–8.9 to high, 4.0–6.9 to medium and 0.1–3.9 to low).
pub fn security_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "0.0",
    }
}

/// SARIF `level` for a severity.
pub fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// Writes the report as a SARIF log. `rules` documents the rules in effect.
pub fn write(report: &Report, rules: &[RuleDoc], out: &mut dyn Write) -> Result<()> {
    serde_json::to_writer_pretty(&mut *out, &to_value(report, rules))?;
    writeln!(out)?;
    Ok(())
}

/// The SARIF log as a JSON value.
pub fn to_value(report: &Report, rules: &[RuleDoc]) -> Value {
    let mut reference_counts: HashMap<&str, usize> = HashMap::new();
    let mut references_by_name: HashMap<&str, HashSet<&str>> = HashMap::new();
    for image in &report.images {
        *reference_counts
            .entry(image.reference.as_str())
            .or_default() += 1;
        references_by_name
            .entry(image_name(&image.reference))
            .or_default()
            .insert(image.reference.as_str());
    }
    let runs: Vec<Value> = report
        .images
        .iter()
        .map(|image| {
            // Two tags of one repository scanned together need the tags to tell them apart.
            let name = image_name(&image.reference);
            let base = if references_by_name[name].len() > 1 {
                image.reference.as_str()
            } else {
                name
            };
            // The same reference twice (platforms of one index) needs distinct categories.
            let qualify = reference_counts[image.reference.as_str()] > 1;
            run(report, image, rules, category(base, image, qualify))
        })
        .collect();
    json!({
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": runs,
    })
}

/// The image without its tag or digest: `registry.example.com/shop/app` for
/// `registry.example.com/shop/app:4f2c1e0@sha256:…`, `oci:build/layout` for
/// `oci:build/layout:latest`. Code scanning closes an alert when a later upload in the same
/// category no longer has it; CI pipelines tag each build anew (`:$CI_COMMIT_SHA`), and a
/// category holding the tag would keep every build's alerts open forever.
pub fn image_name(reference: &str) -> &str {
    let reference = reference.strip_prefix("docker://").unwrap_or(reference);
    for transport in ["docker-archive:", "oci-archive:", "oci:"] {
        if let Some(rest) = reference.strip_prefix(transport) {
            // TRANSPORT:PATH[:REF]
            let path_end = rest
                .find(':')
                .map_or(reference.len(), |at| transport.len() + at);
            return &reference[..path_end];
        }
    }
    let without_digest = reference.split('@').next().unwrap_or(reference);
    let last_segment = without_digest.rfind('/').map_or(0, |at| at + 1);
    // A colon in the last segment starts the tag (one before it is a registry's port).
    match without_digest[last_segment..].find(':') {
        Some(at) => &without_digest[..last_segment + at],
        None => without_digest,
    }
}

/// `stowaway/<image name>/`, plus the platform when several images share the reference.
pub fn category(name: &str, image: &ImageReport, with_platform: bool) -> String {
    let mut id = format!("stowaway/{name}");
    if with_platform && let Some(platform) = &image.platform {
        id.push('@');
        id.push_str(platform);
    }
    id.push('/');
    id
}

fn run(report: &Report, image: &ImageReport, rules: &[RuleDoc], category: String) -> Value {
    let mut used: BTreeMap<&str, RuleDoc> = BTreeMap::new();
    // Vendor content (files a package manager installed unmodified) is not an alert: it is
    // counted in the run's properties and listed in the JSON report.
    let alerts = || image.findings.iter().filter(|f| !f.is_vendor());
    for finding in alerts() {
        used.entry(finding.rule_id.as_str())
            .or_insert_with(|| doc_for(rules, finding));
    }
    let index_of: HashMap<&str, usize> = used.keys().enumerate().map(|(i, id)| (*id, i)).collect();
    let driver_rules: Vec<Value> = used.values().map(rule).collect();

    let mut occurrences: HashMap<(String, &str), usize> = HashMap::new();
    let results: Vec<Value> = alerts()
        .map(|finding| {
            let uri = finding.location.uri();
            let occurrence = occurrences
                .entry((uri.clone(), finding.fingerprint.as_str()))
                .or_default();
            *occurrence += 1;
            result(
                image,
                finding,
                index_of[finding.rule_id.as_str()],
                uri,
                *occurrence,
            )
        })
        .collect();

    let mut driver = json!({
        "name": report.tool.name,
        "version": report.tool.version,
        "semanticVersion": report.tool.version,
        "rules": driver_rules,
    });
    if let Some(uri) = information_uri() {
        driver["informationUri"] = json!(uri);
    }
    let mut run = json!({
        "tool": { "driver": driver },
        "automationDetails": { "id": category },
        "columnKind": "unicodeCodePoints",
        "results": results,
        "properties": {
            "image": {
                "reference": image.reference,
                "manifestDigest": image.manifest_digest,
                "configDigest": image.config_digest,
                "platform": image.platform,
                "layers": image.layers.len(),
            },
            "rulesInEffect": rules.len(),
            "vendorFindings": image.findings.len() - alerts().count(),
            "packageDatabasesNotRead": image.packages.not_read,
        },
    });
    let not_scanned = image.stats.items_skipped + image.stats.layers_skipped;
    if not_scanned > 0 {
        // For scripts reading the log: the counts the notifications below list one by one
        // (up to `skips::LISTED_PER_KIND` of each kind, then one counting the rest).
        run["properties"]["notScanned"] = json!({
            "items": image.stats.items_skipped,
            "layers": image.stats.layers_skipped,
        });
    }
    if !image.not_listed.is_empty() {
        run["properties"]["findingsNotListed"] = json!(image.stats.findings_not_listed);
    }
    let notifications = notifications(image);
    if !notifications.is_empty() {
        // The run's one invocation carries what it left out; a run without any writes none,
        // so a complete scan's log is as before.
        run["invocations"] = json!([{
            "executionSuccessful": true,
            "toolExecutionNotifications": notifications,
        }]);
    }
    run
}

/// One notification per thing the scan of `image` left out (`warning`, descriptor
/// `stowaway/not-scanned`) or found irregular (`note`, `stowaway/irregular-entry`), then one
/// per file holding more findings than the per-file limit (`warning`).
fn notifications(image: &ImageReport) -> Vec<Value> {
    skips::image_messages(image)
        .into_iter()
        .map(|(kind, text)| {
            let (level, id) = match kind {
                SkipKind::NotScanned => ("warning", "stowaway/not-scanned"),
                SkipKind::Irregular => ("note", "stowaway/irregular-entry"),
            };
            json!({
                "level": level,
                "message": { "text": text },
                "descriptor": { "id": id },
            })
        })
        .chain(image.not_listed.iter().map(not_listed_notification))
        .collect()
}

/// A warning that a file held more findings than the per-file limit, naming the file and
/// how many were left out: results are never dropped silently.
fn not_listed_notification(entry: &NotListed) -> Value {
    json!({
        "level": "warning",
        "message": {
            "text": format!(
                "{} more findings in this file are not listed ({} listed per file, see --max-findings-per-file)",
                entry.count, entry.limit
            ),
        },
        "locations": [{
            "physicalLocation": { "artifactLocation": { "uri": entry.location.uri() } },
        }],
        "properties": {
            "count": entry.count,
            "bySeverity": entry.by_severity,
        },
    })
}

/// The project's web page, when Cargo.toml names one (`homepage`, else `repository`).
fn information_uri() -> Option<&'static str> {
    [env!("CARGO_PKG_HOMEPAGE"), env!("CARGO_PKG_REPOSITORY")]
        .into_iter()
        .find(|uri| uri.starts_with("https://") || uri.starts_with("http://"))
}

fn rule(doc: &RuleDoc) -> Value {
    let summary = doc.summary();
    let advice = if doc.password_hash {
        format!(
            "A password hash written into an image layer, the image history or the image config \
             ships to everyone who can pull the image, and deleting the file in a later layer \
             does not remove it. It can be cracked offline, with no login attempt to notice: \
             slowly for a strong password, at once for an empty or default one (reported at \
             high). Change that password wherever it is used, and set the account's password at \
             run time from a Docker secret or a Kubernetes Secret of type {} (or lock the \
             account) instead of shipping the hash.",
            doc.kubernetes_secret_type
        )
    } else {
        format!(
            "A credential written into an image layer, the image history or the image config ships \
         to everyone who can pull the image, and deleting the file in a later layer does not \
         remove it: the layer that added it still contains it. Rotate the credential. Supply it \
         at run time from outside the image (with Docker, a secret file or an environment \
         variable; on Kubernetes, a Secret of type {}, or an external secret store), and at \
         build time through a build secret mount (RUN --mount=type=secret) instead of COPY, \
         ARG or ENV.",
            doc.kubernetes_secret_type
        )
    };
    let links: Vec<&str> = doc.links().collect();
    let mut text = format!("{summary}\n\n{advice}");
    let mut markdown = format!(
        "**{}**: {summary}\n\n{}",
        doc.name,
        advice
            .replace("RUN --mount=type=secret", "`RUN --mount=type=secret`")
            .replace(
                &doc.kubernetes_secret_type,
                &format!("`{}`", doc.kubernetes_secret_type)
            )
    );
    if !links.is_empty() {
        text.push_str("\n\nReferences:");
        markdown.push_str("\n\nReferences:\n");
        for link in &links {
            text.push_str(&format!("\n- {link}"));
            markdown.push_str(&format!("\n- <{link}>"));
        }
    }
    let mut tags = vec![
        "security".to_string(),
        "secret".to_string(),
        "container-image".to_string(),
        format!("external/cwe/{}", CWE_NAME.to_ascii_lowercase()),
    ];
    tags.push(format!(
        "kubernetes-secret-type/{}",
        doc.kubernetes_secret_type
    ));
    let mut value = json!({
        "id": doc.id,
        "name": doc.name,
        "shortDescription": { "text": doc.name },
        "fullDescription": { "text": summary },
        "help": { "text": text, "markdown": markdown },
        "defaultConfiguration": { "level": level(doc.severity) },
        "properties": {
            "security-severity": security_severity(doc.severity),
            "severity": doc.severity.as_str(),
            "precision": doc.precision,
            "tags": tags,
            "cwe": CWE_URL,
        },
    });
    if let Some(link) = links.first() {
        value["helpUri"] = json!(link);
    }
    value
}

fn region(location: &Location) -> Value {
    let mut region = json!({ "startLine": location.line.unwrap_or(1).max(1) });
    if let Some(column) = location.column {
        region["startColumn"] = json!(column.max(1));
    }
    region
}

fn result(
    image: &ImageReport,
    finding: &Finding,
    rule_index: usize,
    uri: String,
    occurrence: usize,
) -> Value {
    let location = &finding.location;
    let mut properties = json!({
        "severity": finding.severity.as_str(),
        "status": finding.status,
        "locationKind": location.kind,
        "image": image.reference,
        "kubernetesSecretType": finding.remediation.kubernetes_secret_type,
        "fingerprint": finding.fingerprint,
    });
    // `…Index` counts from 0 (positions in the JSON report's arrays), `…Number` from 1, as
    // the URIs and messages do.
    let extra = [
        ("removedInLayer", finding.removed_in_layer.map(|l| json!(l))),
        (
            "removedInLayerNumber",
            finding.removed_in_layer.map(|l| json!(l + 1)),
        ),
        ("layerIndex", location.layer_index.map(|l| json!(l))),
        ("layerNumber", location.layer_index.map(|l| json!(l + 1))),
        (
            "layerDigest",
            location.layer_digest.as_ref().map(|d| json!(d)),
        ),
        ("historyIndex", location.history_index.map(|h| json!(h))),
        ("stepNumber", location.history_index.map(|h| json!(h + 1))),
        ("field", location.field.as_ref().map(|f| json!(f))),
        ("context", finding.context.as_ref().map(|c| json!(c))),
    ];
    for (key, value) in extra {
        if let Some(value) = value {
            properties[key] = value;
        }
    }
    let mut result = json!({
        "ruleId": finding.rule_id,
        "ruleIndex": rule_index,
        "level": level(finding.severity),
        "message": { "text": sentence(image, finding) },
        "locations": [{
            "physicalLocation": {
                "artifactLocation": { "uri": uri },
                "region": region(location),
            },
        }],
        "partialFingerprints": {
            FINGERPRINT_KEY: finding.fingerprint,
            // GitHub's own key: with it present, upload-sarif does not try to hash source
            // lines of a file that is in an image, not in the repository.
            "primaryLocationLineHash": format!(
                "{}:{occurrence}",
                &finding.fingerprint[..finding.fingerprint.len().min(16)]
            ),
        },
        "properties": properties,
    });
    if !finding.also_found_in.is_empty() {
        result["relatedLocations"] = related_locations(image, finding);
    }
    result
}

/// The other places of the finding's secret, as SARIF's related locations (ids from 1).
fn related_locations(image: &ImageReport, finding: &Finding) -> Value {
    let layers = image.layers.len();
    finding
        .also_found_in
        .iter()
        .enumerate()
        .map(|(at, other)| {
            json!({
                "id": at + 1,
                "physicalLocation": {
                    "artifactLocation": { "uri": other.location.uri() },
                    "region": region(&other.location),
                },
                "message": { "text": format!("also in {}", other_place(other, layers)) },
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample::{docs, leaky_report};

    #[test]
    fn one_run_per_image_with_category_and_used_rules_only() {
        let report = leaky_report();
        let log = to_value(&report, &docs());
        assert_eq!(log["version"], "2.1.0");
        assert_eq!(log["$schema"], SARIF_SCHEMA);
        let runs = log["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 1);
        let run = &runs[0];
        assert_eq!(
            run["automationDetails"]["id"],
            "stowaway/example.com/leaky/"
        );
        let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
        let ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["aws-access-key-id", "generic-password"]);
        assert_eq!(rules[0]["properties"]["security-severity"], "9.5");
        assert_eq!(rules[0]["properties"]["precision"], "very-high");
        assert!(
            rules[0]["properties"]["tags"]
                .as_array()
                .unwrap()
                .contains(&json!("security"))
        );
        assert_eq!(
            rules[0]["helpUri"],
            "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_access-keys.html"
        );
        // A rule the printer has no documentation for is described from its finding.
        assert_eq!(
            rules[1]["shortDescription"]["text"],
            "Rule generic-password"
        );
        assert_eq!(rules[1]["properties"]["security-severity"], "3.0");
        assert_eq!(run["properties"]["rulesInEffect"], 2);
    }

    #[test]
    fn results_have_stable_uris_regions_levels_and_fingerprints() {
        let log = to_value(&leaky_report(), &docs());
        let results = log["runs"][0]["results"].as_array().unwrap();
        assert_eq!(results.len(), 3);
        let file = &results[0];
        assert_eq!(file["ruleId"], "aws-access-key-id");
        assert_eq!(file["ruleIndex"], 0);
        assert_eq!(file["level"], "error");
        let location = &file["locations"][0]["physicalLocation"];
        assert_eq!(
            location["artifactLocation"]["uri"],
            "layer/1/root/.aws/credentials"
        );
        assert_eq!(location["region"]["startLine"], 2);
        assert_eq!(location["region"]["startColumn"], 5);
        assert_eq!(
            file["partialFingerprints"][FINGERPRINT_KEY],
            "0123456789abcdef0123456789abcdef"
        );
        assert_eq!(
            file["partialFingerprints"]["primaryLocationLineHash"],
            "0123456789abcdef:1"
        );
        let message = file["message"]["text"].as_str().unwrap();
        for part in [
            "AKIA****",
            "/root/.aws/credentials line 2 of layer 1/2",
            "step 2: COPY credentials",
            "example.com/leaky:1.0",
            "DELETED in layer 2 BUT STILL SHIPPED",
        ] {
            assert!(message.contains(part), "{part:?} not in {message}");
        }
        assert_eq!(file["properties"]["status"], "deleted");
        assert_eq!(file["properties"]["removedInLayer"], 1);

        let history = &results[1];
        assert_eq!(
            history["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "history/1"
        );
        assert!(
            history["message"]["text"]
                .as_str()
                .unwrap()
                .contains("history step 1 (build-arg AWS_KEY)")
        );
        let config = &results[2];
        assert_eq!(config["level"], "note");
        assert_eq!(config["ruleIndex"], 1);
        assert_eq!(
            config["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "config/Env/DB_PASSWORD"
        );
        assert_eq!(
            config["locations"][0]["physicalLocation"]["region"]["startLine"],
            1
        );
    }

    #[test]
    fn images_sharing_a_reference_get_distinct_categories() {
        let mut report = leaky_report();
        let mut other = report.images[0].clone();
        other.platform = Some("linux/arm64".into());
        report.images.push(other);
        let log = to_value(&report, &docs());
        let ids: Vec<&str> = log["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|run| run["automationDetails"]["id"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            [
                "stowaway/example.com/leaky@linux/amd64/",
                "stowaway/example.com/leaky@linux/arm64/"
            ]
        );
    }

    #[test]
    fn the_same_secret_twice_in_one_file_counts_occurrences() {
        let mut report = leaky_report();
        let mut again = report.images[0].findings[0].clone();
        again.location.line = Some(9);
        report.images[0].findings.insert(1, again);
        let log = to_value(&report, &docs());
        let results = log["runs"][0]["results"].as_array().unwrap();
        assert_eq!(
            results[1]["partialFingerprints"]["primaryLocationLineHash"],
            "0123456789abcdef:2"
        );
    }

    #[test]
    fn categories_name_the_image_without_tag_or_digest() {
        for (reference, name) in [
            (
                "registry.example.com/shop/app:4f2c1e0",
                "registry.example.com/shop/app",
            ),
            (
                "127.0.0.1:5000/shop/app:1@sha256:ab12",
                "127.0.0.1:5000/shop/app",
            ),
            ("127.0.0.1:5000/shop/app", "127.0.0.1:5000/shop/app"),
            ("docker://alpine:3.20", "alpine"),
            ("alpine@sha256:ab12", "alpine"),
            ("oci:build/layout:latest", "oci:build/layout"),
            ("oci-archive:out/image.tar", "oci-archive:out/image.tar"),
            (
                "docker-archive:app.tar:shop/app:1",
                "docker-archive:app.tar",
            ),
            ("build/app.tar", "build/app.tar"),
        ] {
            assert_eq!(image_name(reference), name, "{reference}");
        }
        // Two tags of one repository in one report keep their tags apart.
        let report = Report::new(
            vec![
                crate::report::sample::image("example.com/app:1", Vec::new()),
                crate::report::sample::image("example.com/app:2", Vec::new()),
            ],
            1,
        );
        let log = to_value(&report, &docs());
        assert_eq!(
            log["runs"][0]["automationDetails"]["id"],
            "stowaway/example.com/app:1/"
        );
        assert_eq!(
            log["runs"][1]["automationDetails"]["id"],
            "stowaway/example.com/app:2/"
        );
    }

    #[test]
    fn a_report_without_findings_has_a_run_without_results() {
        let report = Report::new(vec![crate::report::sample::image("clean:1", Vec::new())], 1);
        let log = to_value(&report, &docs());
        assert_eq!(log["runs"][0]["results"], json!([]));
        assert_eq!(log["runs"][0]["tool"]["driver"]["rules"], json!([]));
    }
}
