//! Hand-built reports for the printers' unit tests (no scan needed).

use std::collections::BTreeMap;

use super::field::ConfigField;
use super::model::{
    Finding, ImageReport, ImageStats, LayerReport, Location, LocationKind, Remediation, Report,
};
use super::remediation::remediation;
use super::ruledoc::RuleDoc;
use crate::detect::Severity;
use crate::layer::Status;

pub const MANIFEST: &str =
    "sha256:1111111111111111111111111111111111111111111111111111111111111111";
pub const CONFIG: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

fn layer(index: usize, created_by: &str) -> LayerReport {
    LayerReport {
        index,
        number: index + 1,
        digest: Some(format!("sha256:{:064x}", index + 0xa0)),
        diff_id: Some(format!("sha256:{:064x}", index + 0xd0)),
        media_type: Some("application/vnd.oci.image.layer.v1.tar+gzip".into()),
        compression: None,
        size: 1000,
        files: 3,
        content_bytes: 3000,
        history_index: Some(index + 1),
        step_number: Some(index + 2),
        created_by: Some(created_by.to_string()),
        skipped: None,
    }
}

/// A finding of `rule_id` at `location`.
pub fn finding(
    rule_id: &str,
    severity: Severity,
    fingerprint: &str,
    location: Location,
    status: Status,
    removed_in_layer: Option<usize>,
) -> Finding {
    let remediation: Remediation = remediation("Opaque", location.kind, None, status);
    Finding {
        rule_id: rule_id.to_string(),
        rule_name: format!("Rule {rule_id}"),
        severity,
        secret: "AKIA****************".to_string(),
        fingerprint: fingerprint.to_string(),
        location,
        status,
        removed_in_layer,
        removed_in_layer_number: removed_in_layer.map(|index| index + 1),
        context: None,
        also_found_in: Vec::new(),
        remediation,
        details: BTreeMap::new(),
        provenance: None,
    }
}

pub fn file_location(layer: usize, path: &str, line: u64) -> Location {
    Location {
        kind: LocationKind::LayerFile,
        layer_index: Some(layer),
        layer_number: Some(layer + 1),
        layer_digest: Some(format!("sha256:{:064x}", layer + 0xd0)),
        path: Some(format!("/{}", path.trim_start_matches('/'))),
        line: Some(line),
        column: Some(5),
        archive_path: Vec::new(),
        history_index: Some(layer + 1),
        step_number: Some(layer + 2),
        field: None,
    }
}

/// An image with the given findings and two layers.
pub fn image(reference: &str, findings: Vec<Finding>) -> ImageReport {
    let mut stats = ImageStats {
        layers: 2,
        files: 6,
        content_bytes: 6000,
        stored_bytes: 2000,
        findings: findings.len(),
        deleted_but_shipped: findings
            .iter()
            .filter(|f| f.status != Status::Present)
            .count(),
        ..ImageStats::default()
    };
    for finding in &findings {
        *stats.by_severity.entry(finding.severity).or_default() += 1;
    }
    ImageReport {
        reference: reference.to_string(),
        manifest_digest: Some(MANIFEST.to_string()),
        config_digest: CONFIG.to_string(),
        platform: Some("linux/amd64".to_string()),
        layers: vec![
            layer(0, "COPY credentials /root/.aws/credentials # buildkit"),
            layer(1, "RUN /bin/sh -c rm -f /root/.aws/credentials # buildkit"),
        ],
        findings,
        skipped: Vec::new(),
        not_listed: Vec::new(),
        packages: Default::default(),
        certificates: Vec::new(),
        stats,
        used_by: Vec::new(),
    }
}

/// The classic situation: a key in a file deleted by the next layer, the same key in history,
/// and a low-severity password in the config.
pub fn leaky_report() -> Report {
    let fingerprint = "0123456789abcdef0123456789abcdef";
    let findings = vec![
        finding(
            "aws-access-key-id",
            Severity::Critical,
            fingerprint,
            file_location(0, "root/.aws/credentials", 2),
            Status::Deleted,
            Some(1),
        ),
        finding(
            "aws-access-key-id",
            Severity::Critical,
            fingerprint,
            Location {
                kind: LocationKind::History,
                history_index: Some(0),
                step_number: Some(1),
                line: Some(1),
                column: Some(12),
                field: Some(ConfigField::BuildArg("AWS_KEY".into())),
                ..Location::default()
            },
            Status::Present,
            None,
        ),
        finding(
            "generic-password",
            Severity::Low,
            "fedcba9876543210fedcba9876543210",
            Location {
                kind: LocationKind::Config,
                field: Some(ConfigField::env("DB_PASSWORD")),
                line: Some(1),
                column: Some(13),
                ..Location::default()
            },
            Status::Present,
            None,
        ),
    ];
    Report::new(vec![image("example.com/leaky:1.0", findings)], 42)
}

/// Rule documentation for the rules in [`leaky_report`].
pub fn docs() -> Vec<RuleDoc> {
    vec![
        RuleDoc {
            id: "aws-access-key-id".into(),
            name: "AWS Access Key ID".into(),
            description: "An AWS access key id.".into(),
            severity: Severity::Critical,
            kubernetes_secret_type: "Opaque".into(),
            references: vec![
                "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_access-keys.html"
                    .into(),
                "not a link".into(),
            ],
            precision: "very-high",
            password_hash: false,
        },
        RuleDoc {
            id: "unused-rule".into(),
            name: "Unused".into(),
            description: String::new(),
            severity: Severity::High,
            kubernetes_secret_type: "Opaque".into(),
            references: Vec::new(),
            precision: "medium",
            password_hash: false,
        },
    ]
}

/// Adds to `image` one item not scanned (layer 2: `app.zip!/key.txt`, an encrypted zip
/// member) and one irregular entry (layer 1: `d/sub`), counted in its stats.
pub fn add_two_skips(image: &mut ImageReport) {
    use super::model::{SkipKind, SkipRecord};
    image.skipped.push(SkipRecord {
        layer_index: 1,
        what: "app.zip!/key.txt".into(),
        reason: "encrypted zip member".into(),
        kind: SkipKind::NotScanned,
    });
    image.skipped.push(SkipRecord {
        layer_index: 0,
        what: "d/sub".into(),
        reason: "tar header claims 1024 data bytes for an entry that has none".into(),
        kind: SkipKind::Irregular,
    });
    image.stats.items_skipped = 1;
    image.stats.items_irregular = 1;
}
