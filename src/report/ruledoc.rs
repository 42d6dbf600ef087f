//! What the SARIF and GitLab printers say about a rule: its documentation, without its regex.
//! Printers get these instead of [`crate::detect::Rule`] so they stay apart from matching (and
//! so tests can build them by hand).

use crate::detect::{Rule, Severity};

use super::model::Finding;

/// The CWE entry every leaked credential falls under: "Use of Hard-coded Credentials".
pub const CWE_ID: &str = "798";
pub const CWE_NAME: &str = "CWE-798";
pub const CWE_URL: &str = "https://cwe.mitre.org/data/definitions/798.html";

/// A rule's documentation, for reports.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleDoc {
    pub id: String,
    pub name: String,
    pub description: String,
    pub severity: Severity,
    pub kubernetes_secret_type: String,
    pub references: Vec<String>,
    /// SARIF `precision` (GitHub code scanning reads it): `very-high` when a validator checks
    /// the match (a checksum, a structure), `high` when an entropy threshold does, `medium`
    /// for pattern-only rules.
    pub precision: &'static str,
    /// The rule reports password hashes (its validator is `password-hash`): its help says the
    /// hash is crackable offline, not that a key should be rotated.
    pub password_hash: bool,
}

impl From<&Rule> for RuleDoc {
    fn from(rule: &Rule) -> RuleDoc {
        let precision = if rule.validator.is_some() {
            "very-high"
        } else if rule.min_entropy.is_some() {
            "high"
        } else {
            "medium"
        };
        RuleDoc {
            id: rule.id.clone(),
            name: rule.name.clone(),
            description: rule.description.clone(),
            severity: rule.severity,
            kubernetes_secret_type: rule.kubernetes_secret_type.clone(),
            references: rule.references.clone(),
            precision,
            password_hash: rule.validator == Some(crate::detect::Validator::PasswordHash),
        }
    }
}

impl RuleDoc {
    /// The documentation of every rule in `rules`.
    pub fn all(rules: &[Rule]) -> Vec<RuleDoc> {
        rules.iter().map(RuleDoc::from).collect()
    }

    /// What can be said about a rule from one of its findings alone (a finding whose rule is not
    /// among the rules given to the printer, which happens only to library users).
    pub fn from_finding(finding: &Finding) -> RuleDoc {
        RuleDoc {
            id: finding.rule_id.clone(),
            name: finding.rule_name.clone(),
            description: String::new(),
            severity: finding.severity,
            kubernetes_secret_type: finding.remediation.kubernetes_secret_type.to_string(),
            references: Vec::new(),
            precision: "medium",
            password_hash: super::remediation::is_password_hash(
                finding
                    .details
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            ),
        }
    }

    /// One sentence for the rule: its description, or its name when it has none.
    pub fn summary(&self) -> String {
        let text = if self.description.trim().is_empty() {
            format!("{} found in a container image.", self.name)
        } else {
            self.description.trim().to_string()
        };
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// References that are web links (the GitLab schema wants `http(s)://` URLs).
    pub fn links(&self) -> impl Iterator<Item = &str> {
        self.references
            .iter()
            .map(String::as_str)
            .filter(|r| r.starts_with("https://") || r.starts_with("http://"))
    }
}

/// Finds the documentation of `finding`'s rule in `docs`, or makes it from the finding.
pub fn doc_for(docs: &[RuleDoc], finding: &Finding) -> RuleDoc {
    docs.iter()
        .find(|doc| doc.id == finding.rule_id)
        .cloned()
        .unwrap_or_else(|| RuleDoc::from_finding(finding))
}
