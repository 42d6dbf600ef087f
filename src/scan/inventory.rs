//! The certificate inventory: matches of inventory rules (`category = "inventory"`) taken out
//! of the findings and listed with what the detector learned of them (subject, issuer,
//! expiry, public-key identity), paired with any private key in the image that goes with them.

use std::collections::HashMap;

use super::raw::RawFinding;
use crate::report::model::{Certificate, Finding, Location, Provenance};

/// Splits `raw` into the matches that become findings and those of inventory rules.
pub(super) fn split_inventory(
    raw: Vec<RawFinding>,
    is_inventory_rule: &dyn Fn(usize) -> bool,
) -> (Vec<RawFinding>, Vec<RawFinding>) {
    let (mut inventory, findings): (Vec<_>, Vec<_>) =
        raw.into_iter().partition(|f| is_inventory_rule(f.rule));
    // The same certificate matched twice at one place (two chunks, two rules) is listed once.
    inventory.sort_by(|a, b| {
        (a.layer, &a.path, &a.archive_path, a.offset).cmp(&(
            b.layer,
            &b.path,
            &b.archive_path,
            b.offset,
        ))
    });
    inventory.dedup_by(|a, b| a.overlaps(b));
    (findings, inventory)
}

/// The facts a detector put in a match's details.
fn detail<'a>(finding: &'a RawFinding, key: &str) -> Option<&'a str> {
    finding
        .details
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// An inventory entry for one certificate match, located like findings are (`location`,
/// `status`), paired with a private key among `findings` by public-key identity, with the
/// provenance of its file as findings get it (`package`).
pub(super) fn certificate(
    raw: &RawFinding,
    location: Location,
    status: crate::layer::Status,
    keys: &HashMap<String, String>,
    package: Option<Provenance>,
) -> Certificate {
    let public_key = detail(raw, "public_key").map(str::to_string);
    let private_key_location = public_key.as_ref().and_then(|id| keys.get(id)).cloned();
    let vendor = location.path.as_deref().is_some_and(trust_store)
        || package.as_ref().is_some_and(|p| p.vendor);
    Certificate {
        location,
        status,
        subject: detail(raw, "subject").unwrap_or_default().to_string(),
        issuer: detail(raw, "issuer").unwrap_or_default().to_string(),
        not_after: detail(raw, "not_after").unwrap_or_default().to_string(),
        self_signed: detail(raw, "self_signed") == Some("true"),
        public_key,
        private_key_in_image: private_key_location.is_some(),
        private_key_location,
        vendor,
        package,
    }
}

/// The private keys among the findings, by the identity of their public half: where each is.
pub(super) fn private_keys(findings: &[Finding]) -> HashMap<String, String> {
    let mut keys = HashMap::new();
    for finding in findings {
        if let Some(id) = finding.details.get("public_key") {
            keys.entry(id.clone())
                .or_insert_with(|| finding.location.uri());
        }
    }
    keys
}

/// Paths where systems and packages keep the public roots they trust.
fn trust_store(path: &str) -> bool {
    const DIRECTORIES: &[&str] = &[
        "etc/ssl/certs/",
        "usr/share/ca-certificates/",
        "etc/ca-certificates/",
        "etc/pki/ca-trust/",
        "etc/pki/tls/certs/",
        "usr/share/pki/ca-trust-source/",
        "usr/lib/ssl/certs/",
        "usr/share/ca-certs/",
    ];
    const FILES: &[&str] = &[
        "ca-certificates.crt",
        "ca-bundle.crt",
        "ca-bundle.trust.crt",
        "tls-ca-bundle.pem",
        "certifi/cacert.pem",
        "botocore/cacert.pem",
        "httplib2/cacerts.txt",
        "grpc/_cython/_credentials/roots.pem",
    ];
    let path = path.trim_start_matches("./").trim_start_matches('/');
    DIRECTORIES.iter().any(|dir| path.starts_with(dir))
        || FILES
            .iter()
            .any(|file| path == *file || path.ends_with(&format!("/{file}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::raw::tests::in_file;

    #[test]
    fn trust_stores_are_known_by_path() {
        for path in [
            "etc/ssl/certs/ca-certificates.crt",
            "usr/share/ca-certificates/mozilla/ISRG_Root_X1.crt",
            "usr/lib/python3/dist-packages/certifi/cacert.pem",
            "etc/pki/tls/certs/ca-bundle.crt",
        ] {
            assert!(trust_store(path), "{path}");
        }
        for path in [
            "app/server.crt",
            "etc/nginx/tls.crt",
            "usr/local/share/ca-certificates/corp.crt",
        ] {
            assert!(!trust_store(path), "{path}");
        }
    }

    #[test]
    fn inventory_matches_leave_the_findings_once_each() {
        let cert = in_file(0, "etc/ssl/certs/a.pem", 0, "-----BEGIN CERTIFICATE-----");
        let twice = cert.clone();
        let mut key = in_file(0, "app/key.pem", 0, "-----BEGIN PRIVATE KEY-----");
        key.rule = 1;
        let (findings, inventory) = split_inventory(vec![cert, key, twice], &|rule| rule == 0);
        assert_eq!(findings.len(), 1);
        assert_eq!(inventory.len(), 1);
    }
}
