//! One finding per secret: the same value found in several places (a hard link's name, the
//! same file in another layer, a history step and the config entry that both hold it, a token
//! in a file and in a build argument) is reported once, at its first place in report order,
//! with the others listed under it. A secret counts once, in every format and every count.
//! (The caller keeps packages' copies apart: a value a package shipped is not grouped with
//! the image owner's copy of it, nor with another package's.)

use std::collections::HashMap;

use crate::report::model::{Finding, OtherPlace};

/// `findings`, each with the identity of its secret's value (`scan::raw::identity`) and in
/// report order, grouped: the first finding of each value keeps its place and gets the
/// others' places, in order, in `also_found_in`. Linear in the findings.
pub(super) fn group_by_secret(findings: Vec<(String, Finding)>) -> Vec<Finding> {
    let mut first_of: HashMap<String, usize> = HashMap::new();
    let mut grouped: Vec<Finding> = Vec::with_capacity(findings.len());
    for (identity, finding) in findings {
        match first_of.get(&identity) {
            Some(&at) => grouped[at].also_found_in.push(other_place(finding)),
            None => {
                first_of.insert(identity, grouped.len());
                grouped.push(finding);
            }
        }
    }
    grouped
}

fn other_place(finding: Finding) -> OtherPlace {
    OtherPlace {
        location: finding.location,
        status: finding.status,
        removed_in_layer: finding.removed_in_layer,
        removed_in_layer_number: finding.removed_in_layer_number,
        rule_id: finding.rule_id,
        rule_name: finding.rule_name,
        severity: finding.severity,
        fingerprint: finding.fingerprint,
        context: finding.context,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Severity;
    use crate::layer::Status;
    use crate::report::sample::{file_location, finding};

    #[test]
    fn one_value_is_one_finding_at_its_first_place_with_the_others_listed() {
        let at = |layer, path: &str, rule: &str, fingerprint: &str| {
            finding(
                rule,
                Severity::High,
                fingerprint,
                file_location(layer, path, 1),
                Status::Present,
                None,
            )
        };
        let findings = vec![
            ("v1".to_string(), at(0, "root/.ssh/id_rsa", "rsa", "f1")),
            ("v2".to_string(), at(0, "app/.env", "npm", "f2")),
            ("v1".to_string(), at(0, "root/.ssh/id_rsa.bak", "rsa", "f1")),
            ("v2".to_string(), at(3, "app/.env", "generic", "f3")),
        ];
        let grouped = group_by_secret(findings);
        assert_eq!(grouped.len(), 2);
        assert_eq!(grouped[0].fingerprint, "f1");
        let others: Vec<_> = grouped[0]
            .also_found_in
            .iter()
            .map(|p| p.location.uri())
            .collect();
        assert_eq!(others, ["layer/1/root/.ssh/id_rsa.bak"]);
        let second = &grouped[1].also_found_in[0];
        assert_eq!(
            (second.rule_id.as_str(), second.fingerprint.as_str()),
            ("generic", "f3")
        );
        assert_eq!(grouped[1].fingerprints().collect::<Vec<_>>(), ["f2", "f3"]);
    }
}
