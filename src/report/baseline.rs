//! Baselines: `--write-baseline FILE` records the findings of a scan by fingerprint, and
//! `--baseline FILE` suppresses findings whose fingerprint the file lists.
//!
//! A fingerprint is a hash of the rule and the secret (see [`super::redact::fingerprint`]), not
//! of where the secret was found: a key accepted once stays accepted when a rebuilt image
//! carries it in another layer or under another path. The file is JSON, versioned, sorted, and
//! holds no secret (only the redacted form), so it can be committed and reviewed:
//!
//! ```json
//! {
//!   "stowaway_baseline": 1,
//!   "tool": { "name": "stowaway", "version": "0.1.0" },
//!   "entries": [
//!     {
//!       "fingerprint": "5f0c…(32 hex digits)",
//!       "rule_id": "aws-access-key-id",
//!       "rule_name": "AWS Access Key ID",
//!       "severity": "critical",
//!       "secret": "AKIA****************",
//!       "locations": ["example.com/app:1.0 layer/1/root/.aws/credentials:2"]
//!     }
//!   ]
//! }
//! ```
//!
//! Reading needs only `stowaway_baseline` and each entry's `fingerprint`; the rest is for the
//! people who review the file.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::model::{Finding, ImageReport, Tool};
use super::redact::redact;
use crate::detect::Severity;

/// Version of the baseline file layout.
pub const BASELINE_VERSION: u32 = 1;

/// A baseline file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Baseline {
    /// The layout version; a file of another version is refused.
    pub stowaway_baseline: u32,
    #[serde(default)]
    pub tool: Option<BaselineTool>,
    #[serde(default)]
    pub entries: Vec<BaselineEntry>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BaselineTool {
    pub name: String,
    pub version: String,
}

/// One accepted secret.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BaselineEntry {
    pub fingerprint: String,
    #[serde(default)]
    pub rule_id: String,
    #[serde(default)]
    pub rule_name: String,
    #[serde(default)]
    pub severity: Option<Severity>,
    /// Always redacted, even when the scan ran with `--show-secrets`.
    #[serde(default)]
    pub secret: String,
    /// `<image> <location uri>[:<line>]` of every place the secret was seen.
    #[serde(default)]
    pub locations: Vec<String>,
}

impl Baseline {
    /// A baseline of every finding in `images`. `secrets_shown` says whether the findings hold
    /// secrets in full (`--show-secrets`), in which case they are redacted here.
    pub fn from_images(images: &[ImageReport], secrets_shown: bool) -> Baseline {
        let mut entries: BTreeMap<&str, (BaselineEntry, BTreeSet<String>)> = BTreeMap::new();
        for image in images {
            for finding in &image.findings {
                let (_, locations) = entries
                    .entry(finding.fingerprint.as_str())
                    .or_insert_with(|| (entry(finding, secrets_shown), BTreeSet::new()));
                locations.insert(location(image, finding));
                for other in &finding.also_found_in {
                    locations.insert(location(image, &finding.at(other)));
                }
            }
        }
        let tool = Tool::default();
        Baseline {
            stowaway_baseline: BASELINE_VERSION,
            tool: Some(BaselineTool {
                name: tool.name,
                version: tool.version,
            }),
            entries: entries
                .into_values()
                .map(|(mut entry, locations)| {
                    entry.locations = locations.into_iter().collect();
                    entry
                })
                .collect(),
        }
    }

    /// Reads and checks a baseline file.
    pub fn load(path: &Path) -> Result<Baseline> {
        let text = fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read baseline", path.display()))?;
        Baseline::parse(&text).with_context(|| format!("{}: not a baseline", path.display()))
    }

    /// Parses baseline JSON.
    pub fn parse(text: &str) -> Result<Baseline> {
        let value: serde_json::Value = serde_json::from_str(text)?;
        match value.get("stowaway_baseline").and_then(|v| v.as_u64()) {
            Some(version) if version == u64::from(BASELINE_VERSION) => {}
            Some(version) => bail!(
                "baseline version {version} is not supported (this stowaway reads version \
                 {BASELINE_VERSION})"
            ),
            None => bail!("no \"stowaway_baseline\" version (write one with --write-baseline)"),
        }
        let baseline: Baseline = serde_json::from_value(value)?;
        for entry in &baseline.entries {
            if entry.fingerprint.len() != 32
                || !entry.fingerprint.bytes().all(|b| b.is_ascii_hexdigit())
            {
                bail!(
                    "entry {:?} has no valid fingerprint (32 hex digits)",
                    entry.fingerprint
                );
            }
        }
        Ok(baseline)
    }

    /// Writes the baseline as pretty JSON.
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        fs::write(path, text).with_context(|| format!("{}: cannot write baseline", path.display()))
    }

    /// The fingerprints the baseline accepts.
    pub fn fingerprints(&self) -> HashSet<String> {
        self.entries
            .iter()
            .map(|e| e.fingerprint.to_ascii_lowercase())
            .collect()
    }
}

fn entry(finding: &Finding, secrets_shown: bool) -> BaselineEntry {
    let secret = if secrets_shown {
        redact(&finding.secret)
    } else {
        finding.secret.clone()
    };
    BaselineEntry {
        fingerprint: finding.fingerprint.clone(),
        rule_id: finding.rule_id.clone(),
        rule_name: finding.rule_name.clone(),
        severity: Some(finding.severity),
        secret: secret.lines().next().unwrap_or_default().to_string(),
        locations: Vec::new(),
    }
}

fn location(image: &ImageReport, finding: &Finding) -> String {
    let line = match (finding.location.kind, finding.location.line) {
        (super::model::LocationKind::LayerFile, Some(line)) => format!(":{line}"),
        _ => String::new(),
    };
    format!("{} {}{line}", image.reference, finding.location.uri())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample::leaky_report;

    #[test]
    fn records_each_fingerprint_once_with_its_locations() {
        let report = leaky_report();
        let baseline = Baseline::from_images(&report.images, false);
        assert_eq!(baseline.stowaway_baseline, 1);
        assert_eq!(baseline.entries.len(), 2);
        let aws = &baseline.entries[0];
        assert_eq!(aws.fingerprint, "0123456789abcdef0123456789abcdef");
        assert_eq!(aws.rule_id, "aws-access-key-id");
        assert_eq!(
            aws.locations,
            [
                "example.com/leaky:1.0 history/1",
                "example.com/leaky:1.0 layer/1/root/.aws/credentials:2"
            ]
        );
        let text = serde_json::to_string_pretty(&baseline).unwrap();
        let back = Baseline::parse(&text).unwrap();
        assert_eq!(back.fingerprints(), baseline.fingerprints());
    }

    #[test]
    fn never_writes_a_secret_in_full() {
        let mut report = leaky_report();
        report.images[0].findings[0].secret = "AKIAQWERTYUIOPASDFGH".into();
        let baseline = Baseline::from_images(&report.images, true);
        let text = serde_json::to_string(&baseline).unwrap();
        assert!(!text.contains("QWERTYUIOP"), "{text}");
    }

    #[test]
    fn refuses_other_versions_and_bad_fingerprints() {
        let err = Baseline::parse(r#"{"stowaway_baseline": 2, "entries": []}"#).unwrap_err();
        assert!(err.to_string().contains("version 2"), "{err}");
        assert!(Baseline::parse(r#"{"entries": []}"#).is_err());
        assert!(
            Baseline::parse(r#"{"stowaway_baseline": 1, "entries": [{"fingerprint": "xyz"}]}"#)
                .is_err()
        );
        let minimal = Baseline::parse(
            r#"{"stowaway_baseline": 1, "entries": [{"fingerprint": "0123456789ABCDEF0123456789abcdef"}]}"#,
        )
        .unwrap();
        assert!(
            minimal
                .fingerprints()
                .contains("0123456789abcdef0123456789abcdef")
        );
    }
}
