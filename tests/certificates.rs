//! Certificates are an inventory, not findings: a CA bundle of many real certificates (made by
//! openssl at test time) gives a `certificates` section in JSON, one count line in text, and
//! nothing in findings, SARIF or GitLab; a certificate whose private key is in the image still
//! gives a finding (the key's, or the key pair's), and the inventory says where the key is.

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::run::run;
use support::*;

/// How many roots the generated bundle holds: a real CA bundle has about 150.
const BUNDLE: usize = 160;

/// Runs openssl with `args` in `dir`, failing the test on error.
fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// A fresh P-256 key and a self-signed certificate for `subject`: (key PEM, cert PEM).
fn self_signed(dir: &Path, subject: &str) -> (String, String) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "k.pem",
            "-out",
            "c.pem",
            "-days",
            "3650",
            "-subj",
            subject,
        ],
    );
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).expect("openssl output");
    (read("k.pem"), read("c.pem"))
}

fn scan(image: &Path, format: &str) -> support::run::Run {
    let target = format!("oci-archive:{}", image.display());
    run(&["scan", "--format", format, &target])
}

fn certificates(report: &Value) -> &Vec<Value> {
    report["images"][0]["certificates"]
        .as_array()
        .expect("a certificates section")
}

#[test]
fn a_ca_bundle_is_an_inventory_with_no_finding_anywhere() {
    if !tool_available("openssl") {
        return;
    }
    let work = tempdir();
    let mut bundle = String::new();
    for index in 0..BUNDLE {
        let (_key, cert) = self_signed(
            work.path(),
            &format!("/O=Test Root {index}/CN=Root {index}"),
        );
        bundle.push_str(&format!("# Test Root {index}\n{cert}\n"));
    }
    let (_key, der_source) = self_signed(work.path(), "/CN=DER Root");
    std::fs::write(work.path().join("one.pem"), der_source).unwrap();
    let der = openssl(work.path(), &["x509", "-in", "one.pem", "-outform", "DER"]);
    let spec = ImageSpec {
        layers: vec![Layer::new(
            "COPY roots /",
            vec![
                Entry::file("etc/ssl/certs/ca-certificates.crt", bundle.clone()),
                Entry::file("opt/app/trust/bundle.pem", bundle),
                Entry::file("opt/app/trust/root.der", der),
            ],
        )],
        repo_tag: "stowaway.test/ca-bundle:1".to_string(),
        ..ImageSpec::default()
    };
    let written = write_image_in(&spec, Format::OciArchive, Compression::Gzip, work.path());

    let json = scan(&written.path, "json");
    assert_eq!(json.code, 0, "{}", json.stderr);
    let report = json.json();
    let image = &report["images"][0];
    assert_eq!(
        image["findings"].as_array().unwrap().len(),
        0,
        "{}",
        json.stdout
    );
    assert_eq!(image["stats"]["certificates"], 2 * BUNDLE + 1);
    let listed = certificates(&report);
    assert_eq!(listed.len(), 2 * BUNDLE + 1);
    let vendor = listed.iter().filter(|c| c["vendor"] == true).count();
    assert_eq!(
        vendor, BUNDLE,
        "only the system trust store is vendor content"
    );
    let first = listed
        .iter()
        .find(|c| c["subject"] == "O=Test Root 7, CN=Root 7")
        .unwrap_or_else(|| panic!("Root 7 listed: {}", json.stdout));
    assert_eq!(first["issuer"], first["subject"]);
    assert_eq!(first["self_signed"], true);
    assert_eq!(first["private_key_in_image"], false);
    assert!(first["not_after"].as_str().unwrap().ends_with('Z'));
    assert!(first["public_key"].as_str().unwrap().starts_with("sha256:"));
    assert!(
        listed
            .iter()
            .any(|c| c["location"]["path"] == "/opt/app/trust/root.der"
                && c["subject"] == "CN=DER Root"),
        "the DER certificate is listed"
    );

    let sarif = scan(&written.path, "sarif");
    let results = &sarif.json()["runs"][0]["results"];
    assert_eq!(
        results.as_array().map(Vec::len),
        Some(0),
        "{}",
        sarif.stdout
    );
    let gitlab = scan(&written.path, "gitlab");
    let alerts = &gitlab.json()["vulnerabilities"];
    assert_eq!(
        alerts.as_array().map(Vec::len),
        Some(0),
        "{}",
        gitlab.stdout
    );

    let text = scan(&written.path, "text");
    let lines: Vec<&str> = text
        .stdout
        .lines()
        .filter(|line| line.contains("certificate"))
        .collect();
    assert_eq!(lines.len(), 1, "{}", text.stdout);
    assert!(
        lines[0].contains(&format!(
            "{} certificates ({BUNDLE} vendor: trust stores",
            2 * BUNDLE + 1
        )),
        "{}",
        lines[0]
    );
    assert!(
        !text.stdout.to_lowercase().contains("rotate"),
        "{}",
        text.stdout
    );
}

#[test]
fn a_certificate_with_its_private_key_in_the_image_is_still_a_finding() {
    if !tool_available("openssl") {
        return;
    }
    let work = tempdir();
    let (pair_key, pair_cert) = self_signed(work.path(), "/CN=pair.example.test");
    let (key, cert) = self_signed(work.path(), "/CN=split.example.test");
    let (_, lonely) = self_signed(work.path(), "/CN=lonely.example.test");
    let (client_key, client_cert) = self_signed(work.path(), "/CN=admin/O=system:masters");
    let b64 = |text: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(text)
    };
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: prod\n  cluster:\n    server: https://10.0.0.1:6443\nusers:\n- name: admin\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\n",
        b64(&client_cert),
        b64(&client_key)
    );
    let spec = ImageSpec {
        layers: vec![Layer::new(
            "COPY tls /",
            vec![
                Entry::file("etc/nginx/server.pem", format!("{pair_cert}{pair_key}")),
                Entry::file("srv/tls/tls.crt", cert),
                Entry::file("srv/tls/tls.key", key),
                Entry::file("srv/tls/ca.crt", lonely),
                Entry::file("root/.kube/config", kubeconfig),
            ],
        )],
        repo_tag: "stowaway.test/tls:1".to_string(),
        ..ImageSpec::default()
    };
    let written = write_image_in(&spec, Format::OciArchive, Compression::Gzip, work.path());
    let json = scan(&written.path, "json");
    assert_eq!(json.code, 1, "{}", json.stderr);
    let report = json.json();
    let findings = report["images"][0]["findings"].as_array().unwrap();
    let at = |path: &str| {
        findings
            .iter()
            .filter(|f| f["location"]["path"] == format!("/{path}").as_str())
            .collect::<Vec<_>>()
    };
    let pair = at("etc/nginx/server.pem");
    assert_eq!(pair.len(), 1, "{}", json.stdout);
    assert_eq!(pair[0]["rule_id"], "tls-key-pair");
    // `rules list` names the severity a scan reports for an unencrypted pair.
    let listed = run(&["rules", "list", "--format", "json"]).json();
    let rule = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|rule| rule["id"] == "tls-key-pair")
        .unwrap();
    assert_eq!(pair[0]["severity"], rule["severity"], "{}", json.stdout);
    let split = at("srv/tls/tls.key");
    assert_eq!(split.len(), 1, "{}", json.stdout);
    assert!(["high", "critical"].contains(&split[0]["severity"].as_str().unwrap()));
    let kube = at("root/.kube/config");
    assert_eq!(kube.len(), 1, "{}", json.stdout);
    assert!(["high", "critical"].contains(&kube[0]["severity"].as_str().unwrap()));
    assert!(at("srv/tls/tls.crt").is_empty() && at("srv/tls/ca.crt").is_empty());

    let listed = certificates(&report);
    let by_path = |path: &str| {
        listed
            .iter()
            .find(|c| c["location"]["path"] == format!("/{path}").as_str())
            .unwrap_or_else(|| panic!("{path} listed: {}", json.stdout))
    };
    let split_cert = by_path("srv/tls/tls.crt");
    assert_eq!(split_cert["private_key_in_image"], true);
    assert_eq!(
        split_cert["private_key_location"],
        "layer/1/srv/tls/tls.key"
    );
    let lonely = by_path("srv/tls/ca.crt");
    assert_eq!(lonely["private_key_in_image"], false);
    assert_eq!(lonely["private_key_location"], Value::Null);
    assert_eq!(lonely["vendor"], false);
    // The pair is one finding: its certificate is not listed again.
    assert!(
        listed
            .iter()
            .all(|c| c["location"]["path"] != "/etc/nginx/server.pem")
    );
}
