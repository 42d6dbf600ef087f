//! `--format markdown` and `--format junit` on images made at test time: JUnit validated
//! against `testdata/schemas/junit.xsd` with `xmllint --schema` and read back by Python's XML
//! parser (counts agree with the cases), Markdown checked for its table; neither holds a secret
//! unmasked, even with `--show-secrets`.

mod support;

use std::path::Path;
use std::process::Command;

use support::run::run;
use support::*;

fn schema() -> String {
    format!("{}/testdata/schemas/junit.xsd", env!("CARGO_MANIFEST_DIR"))
}

/// `xmllint --noout --schema junit.xsd` on `xml`; panics with its complaints.
fn assert_valid_junit(xml: &str, dir: &Path, label: &str) {
    let path = dir.join(format!("{label}.xml"));
    std::fs::write(&path, xml).unwrap();
    if tool_available("xmllint") {
        let out = Command::new("xmllint")
            .args(["--noout", "--schema", &schema()])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{label}: {}\n{xml}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The counts a reader shows must be those of the cases.
    if tool_available("python3") {
        let check = r#"
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == "testsuites", root.tag
def counts(cases):
    return (len(cases), sum(1 for c in cases if c.find("failure") is not None),
            sum(1 for c in cases if c.find("skipped") is not None))
everything = []
for suite in root.findall("testsuite"):
    cases = suite.findall("testcase")
    everything += cases
    got = (int(suite.get("tests")), int(suite.get("failures")), int(suite.get("skipped")))
    assert got == counts(cases), (suite.get("name"), got, counts(cases))
got = (int(root.get("tests")), int(root.get("failures")), int(root.get("skipped")))
assert got == counts(everything), (got, counts(everything))
"#;
        let out = Command::new("python3")
            .args(["-c", check])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{label}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn junit_of_the_classic_leak_matches_the_schema_and_the_gate() {
    let (spec, planted) = classic_leak();
    let dir = tempdir();
    let written = write_image_in(&spec, Format::OciArchive, Compression::Gzip, dir.path());
    let image = written.path.display().to_string();
    let json = run(&["scan", "--format", "json", &image]).json();
    let listed = json["images"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["provenance"]["vendor"] != true)
        .count();
    assert!(listed > 3);

    for (gate, failures) in [("low", listed), ("none", 0)] {
        let report = run(&["scan", "--format", "junit", "--fail-on", gate, &image]);
        assert_eq!(
            report.code,
            if failures > 0 { 1 } else { 0 },
            "{}",
            report.stderr
        );
        assert_valid_junit(&report.stdout, dir.path(), &format!("leak-{gate}"));
        assert_eq!(
            report.stdout.matches("<failure ").count(),
            failures,
            "{gate}"
        );
        assert_eq!(
            report.stdout.matches("<testcase ").count(),
            listed + 1,
            "one case per finding, one for completeness"
        );
        for needle in needles(&planted) {
            assert!(!report.stdout.contains(&needle), "junit leaks {needle}");
        }
    }
    let shown = run(&["scan", "--format", "junit", "--show-secrets", &image]);
    for needle in needles(&planted) {
        assert!(
            !shown.stdout.contains(&needle),
            "junit --show-secrets leaks {needle}"
        );
    }
    assert_valid_junit(&shown.stdout, dir.path(), "shown");
}

#[test]
fn junit_stays_well_formed_whatever_the_image_names() {
    let dir = tempdir();
    let token = secrets::github_classic_token();
    let spec = ImageSpec {
        layers: vec![Layer::new(
            "COPY . /app # <&\"'>",
            vec![
                Entry::dir("app"),
                Entry::file(
                    "app/we<ird>&\"quoted'\u{1}name\u{7f}.env",
                    format!("GITHUB_TOKEN={token}\n"),
                ),
            ],
        )],
        repo_tag: "example.com/odd:1".to_string(),
        ..ImageSpec::default()
    };
    let written = write_image_in(&spec, Format::OciLayout, Compression::Gzip, dir.path());
    let image = format!("oci:{}", written.path.display());
    let report = run(&["scan", "--format", "junit", &image]);
    assert_eq!(report.code, 1, "{}", report.stderr);
    assert!(
        report.stdout.contains("&lt;ird&gt;&amp;&quot;quoted&apos;"),
        "{}",
        report.stdout
    );
    assert!(!report.stdout.contains(&token));
    assert_valid_junit(&report.stdout, dir.path(), "odd");

    let markdown = run(&["scan", "--format", "markdown", &image]);
    assert_eq!(markdown.code, 1);
    let row = markdown
        .stdout
        .lines()
        .find(|line| line.contains("quoted"))
        .unwrap_or_else(|| panic!("{}", markdown.stdout));
    assert_eq!(row.matches(" | ").count(), 3, "four cells: {row}");
    assert!(!markdown.stdout.contains(&token));
}

#[test]
fn an_image_without_findings_is_one_passing_case() {
    let dir = tempdir();
    let spec = ImageSpec {
        layers: vec![Layer::new(
            "COPY README.md /README.md",
            vec![Entry::file("README.md", "nothing to see\n")],
        )],
        repo_tag: "example.com/clean:1".to_string(),
        ..ImageSpec::default()
    };
    let written = write_image_in(&spec, Format::OciLayout, Compression::Gzip, dir.path());
    let image = format!("oci:{}", written.path.display());
    let report = run(&["scan", "--format", "junit", &image]);
    assert_eq!(report.code, 0, "{}", report.stderr);
    assert!(
        report.stdout.contains("name=\"no secrets found\""),
        "{}",
        report.stdout
    );
    assert!(report.stdout.contains("failures=\"0\""));
    assert_valid_junit(&report.stdout, dir.path(), "clean");
    let markdown = run(&["scan", "--format", "markdown", &image]);
    assert!(
        markdown.stdout.starts_with("## stowaway: no secrets found"),
        "{}",
        markdown.stdout
    );
}

#[test]
fn markdown_puts_the_most_severe_first_and_masks_every_secret() {
    let (spec, planted) = classic_leak();
    let dir = tempdir();
    let written = write_image_in(&spec, Format::DockerOci, Compression::Gzip, dir.path());
    let image = written.path.display().to_string();
    for extra in [&[][..], &["--show-secrets"]] {
        let mut args = vec!["scan", "--format", "markdown"];
        args.extend_from_slice(extra);
        args.push(&image);
        let report = run(&args);
        assert_eq!(report.code, 1, "{}", report.stderr);
        let text = &report.stdout;
        assert!(text.starts_with("## stowaway: "), "{text}");
        assert!(
            text.contains("deleted or overwritten but still shipped"),
            "{text}"
        );
        let rows: Vec<&str> = text
            .lines()
            .filter(|l| {
                l.starts_with("| ") && !l.starts_with("| Severity") && !l.starts_with("| ---")
            })
            .collect();
        assert!(rows.len() > 3, "{text}");
        assert!(rows[0].starts_with("| **critical** |"), "{text}");
        let ranks: Vec<usize> = rows
            .iter()
            .map(|row| {
                ["critical", "high", "medium", "low", "info"]
                    .iter()
                    .position(|s| {
                        row.starts_with(&format!("| {s} |"))
                            || row.starts_with(&format!("| **{s}** |"))
                    })
                    .unwrap_or_else(|| panic!("{row}"))
            })
            .collect();
        assert!(ranks.windows(2).all(|w| w[0] <= w[1]), "{text}");
        for needle in needles(&planted) {
            assert!(!text.contains(&needle), "markdown {extra:?} leaks {needle}");
        }
    }
}
