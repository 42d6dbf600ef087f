//! No output format contains a secret unless `--show-secrets` is given, and `rules check`
//! rejects broken rule files with a message naming the file, the rule and the problem.

mod support;

use support::run::run;
use support::*;

#[test]
fn every_format_redacts_unless_asked() {
    let (spec, planted) = classic_leak();
    let dir = tempdir();
    let written = write_image_in(&spec, Format::DockerOci, Compression::Gzip, dir.path());
    let image = written.path.display().to_string();
    let needles = needles(&planted);
    for format in ["text", "json", "sarif", "gitlab", "markdown", "junit"] {
        let result = run(&["scan", "--format", format, "-v", &image]);
        assert_eq!(result.code, 1, "{format}: {}", result.stderr);
        for needle in &needles {
            assert!(
                !result.stdout.contains(needle.as_str()),
                "{format} output leaks {needle}"
            );
            assert!(
                !result.stderr.contains(needle.as_str()),
                "{format} stderr leaks {needle}"
            );
        }
        // To a file, and with a baseline written: still nothing.
        let out = dir.path().join(format!("out.{format}"));
        let baseline = dir.path().join(format!("baseline-{format}.json"));
        let result = run(&[
            "scan",
            "--format",
            format,
            "--output",
            &out.display().to_string(),
            "--write-baseline",
            &baseline.display().to_string(),
            &image,
        ]);
        assert!(result.code == 0 || result.code == 1, "{}", result.stderr);
        for file in [&out, &baseline] {
            let text = std::fs::read_to_string(file).unwrap();
            for needle in &needles {
                assert!(
                    !text.contains(needle.as_str()),
                    "{} leaks {needle}",
                    file.display()
                );
            }
        }
    }
    // The control: asked for, the secrets are there.
    let shown = run(&["scan", "--format", "json", "--show-secrets", &image]);
    for needle in &needles {
        assert!(
            shown.stdout.contains(needle.as_str()),
            "--show-secrets hides {needle}"
        );
    }
}

#[test]
fn rules_check_rejects_broken_files_naming_file_rule_and_problem() {
    let dir = tempdir();
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        r#"[[rules]]
id = "acme-token"
name = "Acme token"
description = "An Acme API token."
severity = "high"
keywords = ["acme_"]
regex = '''(acme_[A-Za-z0-9]{24})'''
examples = ["ACME=acme_Zq3LmN8pR2sT4vW6xY8zA1bC"]
negative_examples = ["acme_short"]
"#,
    )
    .unwrap();
    let ok = run(&["rules", "check", &good.display().to_string()]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert!(ok.stdout.contains(": 1 rule OK"), "{}", ok.stdout);

    let good_text = std::fs::read_to_string(&good).unwrap();
    let cases = [
        (
            "bad-regex.toml",
            good_text.replace("(acme_[A-Za-z0-9]{24})", "(acme_[A-Za-z0-9]{24}"),
            "regex does not compile",
        ),
        (
            "no-keywords.toml",
            good_text.replace("keywords = [\"acme_\"]", "keywords = []"),
            "has no keywords",
        ),
        (
            "example-fails.toml",
            good_text.replace("ACME=acme_Zq3LmN8pR2sT4vW6xY8zA1bC", "ACME=acme_tooShort"),
            "example 1 is not matched",
        ),
        (
            "negative-matches.toml",
            good_text.replace("acme_short", "acme_Zq3LmN8pR2sT4vW6xY8zA1bD"),
            "negative example 1 is matched",
        ),
        (
            "bad-severity.toml",
            good_text.replace("severity = \"high\"", "severity = \"severe\""),
            "unknown severity",
        ),
    ];
    for (name, text, problem) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let result = run(&["rules", "check", &path.display().to_string()]);
        assert_eq!(result.code, 2, "{name}: {}", result.stderr);
        assert!(
            result.stderr.contains(name),
            "{name}: file not named: {}",
            result.stderr
        );
        assert!(
            result.stderr.contains("acme-token"),
            "{name}: rule not named: {}",
            result.stderr
        );
        assert!(
            result.stderr.contains(problem),
            "{name}: expected {problem:?}: {}",
            result.stderr
        );
        assert!(!result.stderr.contains("panicked"));
    }
    // A broken user rule file given to scan is an input error too.
    let broken = dir.path().join("bad-regex.toml");
    let (spec, _) = classic_leak();
    let written = write_image_in(&spec, Format::OciArchive, Compression::None, dir.path());
    let result = run(&[
        "scan",
        "--rules",
        &broken.display().to_string(),
        &written.path.display().to_string(),
    ]);
    assert_eq!(result.code, 2);
    assert!(
        result.stderr.contains("bad-regex.toml: rule acme-token"),
        "{}",
        result.stderr
    );
}

#[test]
fn rules_list_text_and_json() {
    let text = run(&["rules", "list"]);
    assert_eq!(text.code, 0);
    assert!(text.stdout.contains("private-key-rsa"));
    let json = run(&["rules", "list", "--format", "json"]);
    let rules: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert!(rules.as_array().unwrap().len() >= 150);
    assert!(rules[0]["kubernetes_secret_type"].is_string());
}
