//! CI formats and gating: SARIF and GitLab reports validated against the published schemas
//! (copies in testdata/schemas), baselines, ignore files, `--fail-on` / `--exit-code`, stable
//! JSON, and the ready-made CI wiring (action.yml, the GitLab template).

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::run::{Run, run};
use support::*;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn repo_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn load_json(relative: &str) -> Value {
    let text = fs::read_to_string(repo_file(relative)).expect("read schema");
    serde_json::from_str(&text).expect("schema is JSON")
}

fn sarif_validator() -> jsonschema::Validator {
    jsonschema::draft4::options()
        .should_validate_formats(true)
        .build(&load_json("testdata/schemas/sarif-schema-2.1.0.json"))
        .expect("SARIF schema compiles")
}

fn gitlab_validator() -> jsonschema::Validator {
    jsonschema::draft7::options()
        .should_validate_formats(true)
        .build(&load_json(
            "testdata/schemas/gitlab-secret-detection-report-format-15.2.4.json",
        ))
        .expect("GitLab schema compiles")
}

/// Every schema error of `instance`, one per line, with where it is.
fn schema_errors(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|err| format!("{} (at {})", err, err.instance_path()))
        .collect()
}

fn assert_schema_valid(validator: &jsonschema::Validator, instance: &Value, label: &str) {
    let errors = schema_errors(validator, instance);
    assert!(
        errors.is_empty(),
        "{label}: {} schema error(s):\n{}\ndocument:\n{}",
        errors.len(),
        errors.join("\n"),
        serde_json::to_string_pretty(instance).unwrap()
    );
}

/// `oci:PATH` of the spec written as an OCI layout in `dir`.
fn write_oci(spec: &ImageSpec, dir: &Path) -> (String, Written) {
    let written = write_image_in(spec, Format::OciLayout, Compression::Gzip, dir);
    (format!("oci:{}", written.path.display()), written)
}

/// An image with nothing secret in it.
fn clean_spec() -> ImageSpec {
    ImageSpec {
        layers: vec![Layer::new(
            "COPY README.md /app/README.md # buildkit",
            vec![
                Entry::dir("app"),
                Entry::file(
                    "app/README.md",
                    "# demo\n\nNothing to see here: configuration comes from the environment.\n",
                ),
            ],
        )],
        env: vec![DEFAULT_PATH_ENV.to_string()],
        repo_tag: "example.com/clean:1.0".to_string(),
        ..ImageSpec::default()
    }
}

fn parse(run: &Run, label: &str) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|err| {
        panic!(
            "{label}: stdout is not JSON ({err}) (exit {}):\n{}\nstderr:\n{}",
            run.code, run.stdout, run.stderr
        )
    })
}

fn findings(report: &Value) -> Vec<&Value> {
    report["images"]
        .as_array()
        .expect("images")
        .iter()
        .flat_map(|image| image["findings"].as_array().expect("findings").iter())
        .collect()
}

/// Runs `stowaway scan --format json --show-secrets ARGS... IMAGE`.
fn scan_json_with(image: &str, extra: &[&str]) -> (Run, Value) {
    let mut args = vec!["scan", "--format", "json", "--show-secrets"];
    args.extend_from_slice(extra);
    args.push(image);
    let run = run(&args);
    assert!(
        run.code == 0 || run.code == 1,
        "scan {extra:?} failed with {}: {}",
        run.code,
        run.stderr
    );
    let report = parse(&run, "json scan");
    (run, report)
}

/// Every distinct planted secret string.
fn planted_secrets(planted: &Planted) -> Vec<String> {
    let mut secrets: Vec<String> = planted.iter().map(|p| p.secret.clone()).collect();
    secrets.sort();
    secrets.dedup();
    secrets
}

fn assert_no_secret_in(text: &str, planted: &Planted, label: &str) {
    for secret in planted_secrets(planted) {
        // Key blocks may show their BEGIN line; their body must not appear.
        let needle = secret
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .max_by_key(|line| line.len())
            .unwrap_or(&secret);
        assert!(
            !text.contains(needle),
            "{label}: a planted secret appears in the output: {needle}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// SARIF and GitLab reports against the published schemas
// ---------------------------------------------------------------------------------------------

#[test]
fn schema_validation_runs_and_rejects_broken_reports() {
    let dir = tempdir();
    let (image, _) = write_oci(&clean_spec(), dir.path());

    let sarif = parse(&run(&["scan", "--format", "sarif", &image]), "sarif");
    let validator = sarif_validator();
    assert_schema_valid(&validator, &sarif, "clean SARIF");
    let mut broken = sarif.clone();
    broken["version"] = Value::from("2.0.0");
    broken["runs"][0]["results"] = serde_json::json!([{ "level": "loud" }]);
    let errors = schema_errors(&validator, &broken);
    assert!(
        errors.len() >= 2,
        "the SARIF schema must reject a bad version, level and a result without message: {errors:?}"
    );

    let gitlab = parse(&run(&["scan", "--format", "gitlab", &image]), "gitlab");
    let validator = gitlab_validator();
    assert_schema_valid(&validator, &gitlab, "clean GitLab report");
    let mut broken = gitlab.clone();
    broken["scan"]["start_time"] = Value::from("2026-01-01T00:00:00Z");
    broken["vulnerabilities"] =
        serde_json::json!([{ "id": "x", "identifiers": [], "location": { "file": "f" } }]);
    let errors = schema_errors(&validator, &broken);
    assert!(
        errors.len() >= 3,
        "the GitLab schema must reject a zoned time, empty identifiers and a missing commit: {errors:?}"
    );
}

#[test]
fn reports_of_an_image_without_findings_match_their_schemas() {
    let dir = tempdir();
    let (image, written) = write_oci(&clean_spec(), dir.path());

    let sarif_run = run(&["scan", "--format", "sarif", &image]);
    assert_eq!(sarif_run.code, 0, "clean image: {}", sarif_run.stderr);
    let sarif = parse(&sarif_run, "sarif");
    assert_schema_valid(&sarif_validator(), &sarif, "SARIF of a clean image");
    let runs = sarif["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["results"], serde_json::json!([]));
    let category = runs[0]["automationDetails"]["id"].as_str().unwrap();
    assert!(
        category.starts_with("stowaway/") && category.ends_with('/'),
        "{category}"
    );

    let gitlab_run = run(&["scan", "--format", "gitlab", &image]);
    assert_eq!(gitlab_run.code, 0, "clean image: {}", gitlab_run.stderr);
    let gitlab = parse(&gitlab_run, "gitlab");
    assert_schema_valid(
        &gitlab_validator(),
        &gitlab,
        "GitLab report of a clean image",
    );
    assert_eq!(gitlab["version"], "15.2.4");
    assert_eq!(gitlab["scan"]["type"], "secret_detection");
    assert_eq!(gitlab["vulnerabilities"], serde_json::json!([]));
    assert!(!written.manifest_digest.is_empty());
}

#[test]
fn sarif_of_the_classic_leak_matches_the_schema_and_names_every_finding() {
    let (spec, planted) = classic_leak();
    let dir = tempdir();
    let (image, written) = write_oci(&spec, dir.path());
    let (_, json) = scan_json_with(&image, &[]);
    let expected = findings(&json);

    let sarif_run = run(&["scan", "--format", "sarif", &image]);
    assert_eq!(sarif_run.code, 1, "findings exit 1: {}", sarif_run.stderr);
    assert_no_secret_in(&sarif_run.stdout, &planted, "SARIF");
    let sarif = parse(&sarif_run, "sarif");
    assert_schema_valid(&sarif_validator(), &sarif, "SARIF of the classic leak");

    let run0 = &sarif["runs"][0];
    let results = run0["results"].as_array().unwrap();
    assert!(!results.is_empty(), "the classic leak has findings");
    assert_eq!(results.len(), expected.len(), "one result per finding");
    let rules = run0["tool"]["driver"]["rules"].as_array().unwrap();
    for (result, finding) in results.iter().zip(&expected) {
        assert_eq!(result["ruleId"], finding["rule_id"]);
        let index = result["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[index]["id"], finding["rule_id"]);
        assert!(
            rules[index]["properties"]["security-severity"]
                .as_str()
                .unwrap()
                .parse::<f64>()
                .is_ok()
        );
        assert_eq!(
            result["partialFingerprints"]["stowaway/fingerprint/v1"],
            finding["fingerprint"]
        );
        let uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            .as_str()
            .unwrap();
        let location = &finding["location"];
        match location["kind"].as_str().unwrap() {
            "layer-file" => assert_eq!(
                uri,
                format!(
                    "layer/{}/{}",
                    location["layer_number"],
                    location["path"].as_str().unwrap().trim_start_matches('/')
                )
            ),
            "history" => assert_eq!(uri, format!("history/{}", location["step_number"])),
            _ => assert!(uri.starts_with("config/"), "{uri}"),
        }
        let message = result["message"]["text"].as_str().unwrap();
        assert!(message.contains(&json["images"][0]["reference"].as_str().unwrap().to_string()));
        if finding["status"] == "deleted" {
            assert!(
                message.contains("DELETED") && message.contains("STILL SHIPPED"),
                "{message}"
            );
        }
    }
    // The deleted AWS credentials are reported at their path in layer 0.
    assert!(results.iter().any(|r| {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            == "layer/1/root/.aws/credentials"
    }));
    let ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(ids, sorted, "rules are sorted and unique");
    assert!(!written.config_digest.is_empty());
}

#[test]
fn gitlab_report_of_the_classic_leak_matches_the_schema() {
    let (spec, planted) = classic_leak();
    let dir = tempdir();
    let (image, written) = write_oci(&spec, dir.path());
    let (_, json) = scan_json_with(&image, &[]);
    let expected = findings(&json);

    let gitlab_run = run(&["scan", "--format", "gitlab", &image]);
    assert_eq!(gitlab_run.code, 1, "findings exit 1: {}", gitlab_run.stderr);
    assert_no_secret_in(&gitlab_run.stdout, &planted, "GitLab report");
    let gitlab = parse(&gitlab_run, "gitlab");
    assert_schema_valid(
        &gitlab_validator(),
        &gitlab,
        "GitLab report of the classic leak",
    );

    let vulnerabilities = gitlab["vulnerabilities"].as_array().unwrap();
    assert!(!vulnerabilities.is_empty(), "the classic leak has findings");
    assert_eq!(vulnerabilities.len(), expected.len());
    let sha = digest_hex(&written.manifest_digest);
    let mut ids = Vec::new();
    for (vulnerability, finding) in vulnerabilities.iter().zip(&expected) {
        assert_eq!(vulnerability["location"]["commit"]["sha"], sha);
        assert_eq!(vulnerability["identifiers"][0]["type"], "stowaway_rule_id");
        assert_eq!(vulnerability["identifiers"][0]["value"], finding["rule_id"]);
        let severity = finding["severity"].as_str().unwrap();
        let mut capitalised = severity[..1].to_uppercase();
        capitalised.push_str(&severity[1..]);
        assert_eq!(vulnerability["severity"], capitalised.as_str());
        ids.push(vulnerability["id"].as_str().unwrap().to_string());
    }
    let count = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), count, "vulnerability ids are unique");

    // The ids are deterministic: a second run gives the same ones.
    let again = parse(
        &run(&["scan", "--format", "gitlab", &image]),
        "gitlab again",
    );
    let again_ids: Vec<&str> = again["vulnerabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    let first_ids: Vec<&str> = vulnerabilities
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    assert_eq!(again_ids, first_ids);
}

// ---------------------------------------------------------------------------------------------
// Stable output
// ---------------------------------------------------------------------------------------------

#[test]
fn json_and_sarif_output_are_deterministic() {
    let (spec, _) = classic_leak();
    let dir = tempdir();
    let (image, _) = write_oci(&spec, dir.path());
    let strip = |mut report: Value| {
        report["stats"]
            .as_object_mut()
            .expect("stats")
            .remove("duration_ms")
            .expect("duration_ms in stats");
        report
    };
    let first = strip(parse(&run(&["scan", "--format", "json", &image]), "json"));
    let second = strip(parse(&run(&["scan", "--format", "json", &image]), "json"));
    assert_eq!(first, second, "JSON differs between two scans of one image");
    for key in [
        "findings",
        "by_severity",
        "deleted_but_shipped",
        "suppressed",
        "suppressed_by_baseline",
        "suppressed_by_ignore",
        "layers_with_findings",
    ] {
        assert!(first["stats"].get(key).is_some(), "stats.{key} missing");
    }
    let serial = run(&["scan", "--format", "sarif", "-j", "1", &image]).stdout;
    let parallel = run(&["scan", "--format", "sarif", "-j", "2", &image]).stdout;
    assert_eq!(serial, parallel, "SARIF differs between runs");
}

// ---------------------------------------------------------------------------------------------
// Baselines
// ---------------------------------------------------------------------------------------------

/// The classic leak's secrets again, in other layers and at other paths: every file that held a
/// secret is copied, present this time, under `srv/moved/`; the build-arg step comes later; the
/// ENV step sits before another layer.
fn moved_leak(spec: &ImageSpec, planted: &Planted) -> ImageSpec {
    let secrets = planted_secrets(planted);
    let holds_secret = |content: &[u8]| {
        let text = String::from_utf8_lossy(content);
        secrets.iter().any(|s| text.contains(s.as_str()))
    };
    let mut moved = vec![Entry::dir("srv"), Entry::dir("srv/moved")];
    let mut n = 0;
    for layer in &spec.layers {
        for entry in &layer.entries {
            if let Entry::File { path, content, .. } = entry
                && holds_secret(content)
            {
                n += 1;
                let name = path.rsplit('/').next().unwrap();
                moved.push(Entry::dir(&format!("srv/moved/{n}")));
                moved.push(Entry::file(
                    &format!("srv/moved/{n}/{name}"),
                    content.clone(),
                ));
            }
        }
    }
    assert!(n >= 4, "the classic leak has secret files");
    let build_arg_step = spec
        .layers
        .iter()
        .map(|l| l.created_by.clone())
        .find(|c| c.contains("NPM_TOKEN=") && holds_secret(c.as_bytes()))
        .expect("the build-arg step");
    ImageSpec {
        layers: vec![
            Layer::new(
                "ADD rootfs.tar / # buildkit",
                vec![Entry::dir("etc"), Entry::file("etc/hostname", "moved\n")],
            ),
            Layer::new("COPY secrets /srv/moved # buildkit", moved),
            Layer::new(
                &build_arg_step,
                vec![Entry::dir("opt"), Entry::file("opt/built", "ok\n")],
            ),
        ],
        empty_history: spec
            .empty_history
            .iter()
            .map(|(_, step)| (1, step.clone()))
            .collect(),
        env: spec.env.clone(),
        repo_tag: "example.com/leaky:2.0".to_string(),
        ..ImageSpec::default()
    }
}

#[test]
fn baseline_round_trip_follows_secrets_to_new_layers_and_paths() {
    let (spec, planted) = classic_leak();
    let dir = tempdir();
    let (image, _) = write_oci(&spec, &dir.path().join("v1"));
    let baseline = dir.path().join("baseline.json");
    let baseline_arg = baseline.to_str().unwrap();

    // Writing a baseline accepts the findings: exit 0, the report still lists them.
    let (written_run, first) = scan_json_with(&image, &["--write-baseline", baseline_arg]);
    assert_eq!(written_run.code, 0, "{}", written_run.stderr);
    let first_findings = findings(&first);
    assert!(!first_findings.is_empty(), "the classic leak has findings");
    let recorded: Value = serde_json::from_str(&fs::read_to_string(&baseline).unwrap()).unwrap();
    assert_eq!(recorded["stowaway_baseline"], 1);
    let mut fingerprints: Vec<&str> = first_findings
        .iter()
        .map(|f| f["fingerprint"].as_str().unwrap())
        .collect();
    fingerprints.sort();
    fingerprints.dedup();
    let entries: Vec<&str> = recorded["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["fingerprint"].as_str().unwrap())
        .collect();
    assert_eq!(entries, fingerprints, "one entry per fingerprint, sorted");
    assert_no_secret_in(
        &fs::read_to_string(&baseline).unwrap(),
        &planted,
        "baseline (written with --show-secrets)",
    );

    // The same secrets, rebuilt elsewhere: all suppressed.
    let moved = moved_leak(&spec, &planted);
    let (moved_image, _) = write_oci(&moved, &dir.path().join("v2"));
    let (_, unsuppressed) = scan_json_with(&moved_image, &[]);
    let moved_count = findings(&unsuppressed).len();
    assert!(moved_count > 0, "the moved secrets are found");
    let text = run(&["scan", "--baseline", baseline_arg, &moved_image]);
    assert_eq!(
        text.code, 0,
        "all moved secrets are in the baseline:\n{}",
        text.stdout
    );
    assert!(
        text.stdout
            .contains(&format!("{moved_count} suppressed by baseline")),
        "summary counts suppressed findings:\n{}",
        text.stdout
    );
    let (_, suppressed) = scan_json_with(&moved_image, &["--baseline", baseline_arg]);
    assert!(findings(&suppressed).is_empty());
    assert_eq!(suppressed["stats"]["suppressed_by_baseline"], moved_count);
    assert_eq!(suppressed["stats"]["suppressed"], moved_count);
    assert_eq!(suppressed["stats"]["findings"], 0);

    // One new secret: exit 1 and only that one reported.
    let new_token = secrets::github_classic_token();
    let mut with_new = moved.clone();
    with_new.layers.push(Layer::new(
        "COPY .env /srv/new/.env # buildkit",
        vec![
            Entry::dir("srv"),
            Entry::dir("srv/new"),
            Entry::file(
                "srv/new/.env",
                secrets::dotenv(&[("GITHUB_TOKEN", &new_token)]),
            ),
        ],
    ));
    let (new_image, _) = write_oci(&with_new, &dir.path().join("v3"));
    let (new_run, report) = scan_json_with(&new_image, &["--baseline", baseline_arg]);
    assert_eq!(new_run.code, 1, "a new secret fails the gate");
    let reported = findings(&report);
    assert_eq!(reported.len(), 1, "only the new secret: {reported:#?}");
    assert_eq!(reported[0]["secret"], new_token.as_str());
    assert_eq!(reported[0]["location"]["path"], "/srv/new/.env");
    assert_eq!(report["stats"]["suppressed_by_baseline"], moved_count);
}

#[test]
fn bad_baselines_are_input_errors() {
    let dir = tempdir();
    let (image, _) = write_oci(&clean_spec(), dir.path());
    let missing = dir.path().join("nope.json");
    let result = run(&["scan", "--baseline", missing.to_str().unwrap(), &image]);
    assert_eq!(result.code, 2, "{}", result.stderr);
    assert!(result.stderr.contains("nope.json"), "{}", result.stderr);

    let wrong = dir.path().join("wrong.json");
    fs::write(&wrong, r#"{"stowaway_baseline": 99, "entries": []}"#).unwrap();
    let result = run(&["scan", "--baseline", wrong.to_str().unwrap(), &image]);
    assert_eq!(result.code, 2);
    assert!(
        result.stderr.contains("wrong.json") && result.stderr.contains("version 99"),
        "{}",
        result.stderr
    );
}

// ---------------------------------------------------------------------------------------------
// Ignore files
// ---------------------------------------------------------------------------------------------

/// Scans `image` with an ignore file holding `entries`; returns the run and its JSON report.
fn scan_with_ignore(image: &str, dir: &Path, entries: &str) -> (Run, Value) {
    let file = dir.join("ignore");
    fs::write(&file, entries).unwrap();
    scan_json_with(image, &["--ignore-file", file.to_str().unwrap()])
}

#[test]
fn ignore_file_globs_rules_and_fingerprints() {
    let (spec, _) = classic_leak();
    let dir = tempdir();
    let (image, _) = write_oci(&spec, dir.path());
    let (_, all) = scan_json_with(&image, &[]);
    let all = findings(&all);
    assert!(!all.is_empty(), "the classic leak has findings");
    let count = |pred: &dyn Fn(&Value) -> bool| all.iter().filter(|f| pred(f)).count();

    // A path glob covers the AWS credentials file (written with a leading slash).
    let aws = count(&|f| f["location"]["path"] == "/root/.aws/credentials");
    assert!(aws >= 1);
    let (_, report) = scan_with_ignore(
        &image,
        dir.path(),
        "# fixture\npath:/root/.aws/*  reason=\"fixture credentials\"\n",
    );
    assert!(
        findings(&report)
            .iter()
            .all(|f| f["location"]["path"] != "/root/.aws/credentials")
    );
    assert_eq!(report["stats"]["suppressed_by_ignore"], aws);
    assert_eq!(findings(&report).len(), all.len() - aws);

    // A glob without a slash matches file names at any depth.
    let keys = count(&|f| {
        f["location"]["path"]
            .as_str()
            .is_some_and(|p| p.rsplit('/').next().unwrap().starts_with("id_"))
    });
    let (_, report) = scan_with_ignore(&image, dir.path(), "path:id_* reason=\"ssh keys\"\n");
    assert_eq!(report["stats"]["suppressed_by_ignore"], keys);

    // A rule id covers every finding of that rule.
    let rule = all[0]["rule_id"].as_str().unwrap().to_string();
    let of_rule = count(&|f| f["rule_id"] == rule.as_str());
    let (_, report) = scan_with_ignore(
        &image,
        dir.path(),
        &format!("rule:{rule} reason=\"accepted\" expires=2999-12-31\n"),
    );
    assert!(
        findings(&report)
            .iter()
            .all(|f| f["rule_id"] != rule.as_str())
    );
    assert_eq!(report["stats"]["suppressed_by_ignore"], of_rule);

    // A fingerprint covers one secret wherever it is.
    let fingerprint = all.last().unwrap()["fingerprint"]
        .as_str()
        .unwrap()
        .to_string();
    let of_fingerprint = count(&|f| f["fingerprint"] == fingerprint.as_str());
    let (_, report) = scan_with_ignore(
        &image,
        dir.path(),
        &format!(
            "fingerprint:{} reason=\"revoked\"\n",
            fingerprint.to_uppercase()
        ),
    );
    assert!(
        findings(&report)
            .iter()
            .all(|f| f["fingerprint"] != fingerprint.as_str())
    );
    assert_eq!(report["stats"]["suppressed_by_ignore"], of_fingerprint);
    assert_eq!(report["stats"]["suppressed"], of_fingerprint);
}

#[test]
fn expired_ignore_entries_warn_and_stop_applying() {
    let (spec, _) = classic_leak();
    let dir = tempdir();
    let (image, _) = write_oci(&spec, dir.path());
    let (_, all) = scan_json_with(&image, &[]);
    let total = findings(&all).len();
    let (run, report) = scan_with_ignore(
        &image,
        dir.path(),
        "\npath:/root/** reason=\"was a fixture\" expires=2020-01-01\n",
    );
    let file = dir.path().join("ignore");
    let expected = format!(
        "{}:2: ignore entry `path:/root/**` expired on 2020-01-01",
        file.display()
    );
    assert!(
        run.stderr.contains("warning") && run.stderr.contains(&expected),
        "stderr should warn {expected:?}:\n{}",
        run.stderr
    );
    assert_eq!(
        findings(&report).len(),
        total,
        "an expired entry suppresses nothing"
    );
    assert_eq!(report["stats"]["suppressed_by_ignore"], 0);
}

#[test]
fn malformed_or_missing_ignore_files_are_errors_naming_file_and_line() {
    let dir = tempdir();
    let (image, _) = write_oci(&clean_spec(), dir.path());
    let file = dir.path().join("ignore");
    fs::write(&file, "# ok\nrule:generic-password\n").unwrap();
    let result = run(&["scan", "--ignore-file", file.to_str().unwrap(), &image]);
    assert_eq!(result.code, 2, "{}", result.stderr);
    assert!(
        result.stderr.contains(&format!(
            "{}:2: `rule:generic-password` has no reason",
            file.display()
        )),
        "{}",
        result.stderr
    );

    let missing = dir.path().join("absent-ignore");
    let result = run(&["scan", "--ignore-file", missing.to_str().unwrap(), &image]);
    assert_eq!(result.code, 2);
    assert!(result.stderr.contains("absent-ignore"), "{}", result.stderr);
}

#[test]
fn stowawayignore_in_the_current_directory_is_read() {
    let dir = tempdir();
    let (image, _) = write_oci(&clean_spec(), &dir.path().join("image"));
    let work = dir.path().join("work");
    fs::create_dir(&work).unwrap();
    fs::write(
        work.join(".stowawayignore"),
        "path:*.pem reason=\"x\" bogus=1\n",
    )
    .unwrap();
    let output = stowaway_cmd()
        .args(["scan", &image])
        .current_dir(&work)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(".stowawayignore:1: unknown key \"bogus\""),
        "{stderr}"
    );
    // Without one, nothing is read.
    let empty = dir.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let output = stowaway_cmd()
        .args(["scan", &image])
        .current_dir(&empty)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
}

// ---------------------------------------------------------------------------------------------
// Gating
// ---------------------------------------------------------------------------------------------

#[test]
fn exit_code_must_not_collide_with_success_or_errors() {
    let dir = tempdir();
    let (image, _) = write_oci(&clean_spec(), dir.path());
    for bad in ["0", "2", "256", "x"] {
        let result = run(&["scan", "--exit-code", bad, &image]);
        assert_eq!(result.code, 2, "--exit-code {bad}: {}", result.stderr);
        assert!(result.stderr.contains("--exit-code"), "{}", result.stderr);
    }
    let result = run(&["scan", "--exit-code", "3", &image]);
    assert_eq!(
        result.code, 0,
        "no findings: exit 0 whatever --exit-code says"
    );
}

#[test]
fn fail_on_and_exit_code_gate_findings() {
    let (spec, _) = classic_leak();
    let dir = tempdir();
    let (image, _) = write_oci(&spec, dir.path());
    let (_, report) = scan_json_with(&image, &[]);
    assert!(
        !findings(&report).is_empty(),
        "the classic leak has findings"
    );

    assert_eq!(run(&["scan", "-q", &image]).code, 1);
    assert_eq!(run(&["scan", "-q", "--exit-code", "42", &image]).code, 42);
    assert_eq!(run(&["scan", "-q", "--fail-on", "none", &image]).code, 0);
    assert_eq!(run(&["scan", "-q", "--fail-on", "info", &image]).code, 1);
    // The most severe finding fails a gate at its own severity; nothing fails above critical.
    let worst = findings(&report)
        .iter()
        .map(|f| severity_rank(f["severity"].as_str().unwrap()))
        .max()
        .unwrap();
    let names = ["info", "low", "medium", "high", "critical"];
    assert_eq!(
        run(&["scan", "-q", "--fail-on", names[worst], &image]).code,
        1
    );
    // The summary ends the text output: counts per severity, layers, deleted-but-shipped.
    let text = run(&["scan", "--color", "never", &image]);
    let summary = text.stdout.lines().last().unwrap_or_default();
    let stats = &report["stats"];
    let mut counts = Vec::new();
    for severity in ["critical", "high", "medium", "low", "info"] {
        if let Some(n) = stats["by_severity"][severity].as_u64() {
            counts.push(format!("{n} {severity}"));
        }
    }
    let expected = format!(
        "{} findings ({}) in {} layers; {} deleted or overwritten but still shipped",
        stats["findings"],
        counts.join(", "),
        stats["layers_with_findings"],
        stats["deleted_but_shipped"],
    );
    assert!(
        stats["deleted_but_shipped"].as_u64() > Some(0),
        "the classic leak deletes a secret: {stats}"
    );
    assert!(
        summary.starts_with(&expected),
        "summary line: {summary}\nexpected: {expected}"
    );
}

/// An image whose findings are exactly `files` (path, content) in one layer.
fn image_with_files(files: &[(&str, String)], dir: &Path) -> String {
    let mut entries = vec![Entry::dir("app")];
    entries.extend(
        files
            .iter()
            .map(|(path, content)| Entry::file(path, content.as_str())),
    );
    let spec = ImageSpec {
        layers: vec![Layer::new("COPY app /app # buildkit", entries)],
        env: vec![DEFAULT_PATH_ENV.to_string()],
        repo_tag: "example.com/gated:1.0".to_string(),
        ..ImageSpec::default()
    };
    write_oci(&spec, dir).0
}

#[test]
fn gates_compare_with_the_worst_finding_only() {
    // An AWS IAM unique id (info: no credential, a hint of the account's structure).
    let role_id = format!(
        "\"RoleId\": \"AROA{}\"\n",
        secrets::random_from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)
    );
    let password = secrets::password(20);

    // Worst finding: medium (a password in a .env), plus an info (an IAM role id).
    let dir = tempdir();
    let image = image_with_files(
        &[
            ("app/.env", secrets::dotenv(&[("DB_PASSWORD", &password)])),
            ("app/role.json", role_id.clone()),
        ],
        dir.path(),
    );
    let (_, report) = scan_json_with(&image, &[]);
    let severities: Vec<&str> = findings(&report)
        .iter()
        .map(|f| f["severity"].as_str().unwrap())
        .collect();
    assert_eq!(severities, ["medium", "info"], "{report}");
    for (gate, code) in [
        (None, 1),
        (Some("critical"), 0),
        (Some("high"), 0),
        (Some("medium"), 1),
        (Some("low"), 1),
        (Some("none"), 0),
    ] {
        let mut args = vec!["scan", "-q"];
        if let Some(gate) = gate {
            args.extend(["--fail-on", gate]);
        }
        args.push(&image);
        let result = run(&args);
        assert_eq!(result.code, code, "--fail-on {gate:?}: {}", result.stderr);
    }
    let text = run(&["scan", "--color", "never", "--fail-on", "none", &image]);
    let summary = text.stdout.lines().last().unwrap_or_default();
    assert!(
        summary.starts_with("2 findings (1 medium, 1 info) in 1 layer"),
        "summary line: {summary}"
    );

    // Only information: passes the default gate (low), fails --fail-on info.
    let dir = tempdir();
    let image = image_with_files(&[("app/role.json", role_id)], dir.path());
    let (json_run, report) = scan_json_with(&image, &[]);
    assert_eq!(json_run.code, 0, "{}", json_run.stderr);
    assert_eq!(
        report["stats"]["by_severity"],
        serde_json::json!({"info": 1})
    );
    assert_eq!(run(&["scan", "-q", "--fail-on", "info", &image]).code, 1);
}

fn severity_rank(severity: &str) -> usize {
    ["info", "low", "medium", "high", "critical"]
        .iter()
        .position(|s| *s == severity)
        .expect("known severity")
}

// ---------------------------------------------------------------------------------------------
// CI wiring
// ---------------------------------------------------------------------------------------------

fn load_yaml(relative: &str) -> (String, yaml_rust2::Yaml) {
    let text = fs::read_to_string(repo_file(relative)).expect("read YAML file");
    let mut docs = yaml_rust2::YamlLoader::load_from_str(&text)
        .unwrap_or_else(|err| panic!("{relative} is not valid YAML: {err}"));
    assert_eq!(docs.len(), 1, "{relative}: one YAML document");
    (text, docs.remove(0))
}

/// Every `--flag` that follows `stowaway scan` on a line (comments included: they document
/// usage too).
/// Every `--flag` in `text`, but for lines that hand flags to `cargo install` (how the
/// wiring installs stowaway). Comments and descriptions count: a flag that a user copies from
/// them must exist too.
fn flags_in(text: &str) -> Vec<String> {
    let mut flags = Vec::new();
    for line in text.lines() {
        if line.contains("cargo install") || line.contains("INSTALL_ARGS") {
            continue;
        }
        for word in line.split(|c: char| c.is_whitespace() || c == '`' || c == '"' || c == '(') {
            if let Some(name) = word.strip_prefix("--") {
                let name: String = name
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                    .collect();
                if !name.is_empty() {
                    flags.push(format!("--{name}"));
                }
            }
        }
    }
    flags.sort();
    flags.dedup();
    flags
}

/// The flags `stowaway --help` and `stowaway scan --help` list.
fn documented_flags() -> Vec<String> {
    let mut flags = Vec::new();
    for args in [&["--help"][..], &["scan", "--help"][..]] {
        let output = Command::new(env!("CARGO_BIN_EXE_stowaway"))
            .args(args)
            .output()
            .expect("run stowaway --help");
        assert!(output.status.success());
        let help = String::from_utf8(output.stdout).unwrap();
        flags.extend(
            help.split(|c: char| c.is_whitespace() || c == ',' || c == '=' || c == '[')
                .filter(|word| word.starts_with("--"))
                .map(str::to_string),
        );
    }
    flags
}

/// Every flag in the file exists, and the commands that run (`commands`: the YAML's `run`
/// or `script` text, without comments) use each of `must_use`.
fn assert_flags_exist(relative: &str, text: &str, commands: &str, must_use: &[&str]) {
    let documented = documented_flags();
    let used = flags_in(commands);
    for flag in must_use {
        assert!(
            used.iter().any(|f| f == flag),
            "{relative} should run `stowaway scan {flag}`; its commands use {used:?}"
        );
    }
    for flag in flags_in(text) {
        assert!(
            documented.contains(&flag),
            "{relative} mentions `{flag}`, which `stowaway scan --help` does not list"
        );
    }
}

/// The shell text of the commands, comment lines left out.
fn commands_of(scripts: &[&str]) -> String {
    scripts
        .iter()
        .flat_map(|script| script.lines())
        .filter(|line| !line.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn github_action_is_a_composite_action_using_real_flags() {
    let (text, action) = load_yaml("action.yml");
    assert_eq!(action["runs"]["using"].as_str(), Some("composite"));
    for input in ["image", "fail-on", "format", "args"] {
        assert!(
            !action["inputs"][input].is_badvalue(),
            "action.yml input {input}"
        );
    }
    assert_eq!(action["inputs"]["image"]["required"].as_bool(), Some(true));
    assert_eq!(action["inputs"]["fail-on"]["default"].as_str(), Some("low"));
    assert_eq!(
        action["inputs"]["fail-on-incomplete"]["default"].as_str(),
        Some("true"),
        "CI fails an incomplete scan unless told otherwise"
    );
    assert_eq!(
        action["inputs"]["format"]["default"].as_str(),
        Some("sarif")
    );
    let steps = action["runs"]["steps"].as_vec().expect("steps");
    assert!(
        steps.iter().any(|s| s["uses"]
            .as_str()
            .is_some_and(|u| u.starts_with("github/codeql-action/upload-sarif@"))),
        "uploads SARIF"
    );
    assert!(
        text.contains("cargo install --locked --path \"$GITHUB_ACTION_PATH\""),
        "installs from the action's checkout"
    );
    for step in steps {
        if step["run"].as_str().is_some() {
            assert_eq!(
                step["shell"].as_str(),
                Some("bash"),
                "composite run steps need a shell"
            );
        }
    }
    let runs: Vec<&str> = steps
        .iter()
        .filter_map(|step| step["run"].as_str())
        .collect();
    assert_flags_exist(
        "action.yml",
        &text,
        &commands_of(&runs),
        &["--format", "--output", "--fail-on", "--fail-on-incomplete"],
    );
}

#[test]
fn gitlab_template_publishes_the_secret_detection_report_using_real_flags() {
    let (text, template) = load_yaml("ci/gitlab/stowaway.gitlab-ci.yml");
    let job = &template[".stowaway"];
    assert!(!job.is_badvalue(), "the template defines a .stowaway job");
    assert_eq!(
        job["artifacts"]["reports"]["secret_detection"].as_str(),
        Some("gl-secret-detection-report.json")
    );
    assert_eq!(
        job["variables"]["STOWAWAY_IMAGE"].as_str(),
        Some("${CI_REGISTRY_IMAGE}:${CI_COMMIT_SHA}")
    );
    assert_eq!(
        job["variables"]["STOWAWAY_FAIL_ON_INCOMPLETE"].as_str(),
        Some("true"),
        "CI fails an incomplete scan unless told otherwise"
    );
    let script: Vec<&str> = job["script"]
        .as_vec()
        .expect("script")
        .iter()
        .filter_map(|line| line.as_str())
        .collect();
    assert!(
        script
            .iter()
            .any(|line| line.contains("stowaway scan --format gitlab")
                && line.contains("--output gl-secret-detection-report.json")),
        "{script:?}"
    );
    assert_flags_exist(
        "ci/gitlab/stowaway.gitlab-ci.yml",
        &text,
        &commands_of(&script),
        &["--format", "--output", "--fail-on", "--fail-on-incomplete"],
    );
}

#[test]
fn the_flag_check_catches_unknown_flags() {
    let documented = documented_flags();
    let flags = flags_in(
        "# e.g. --baseline FILE --no-such-option\nrun: stowaway scan --formatt sarif x\ncargo install --locked --path .",
    );
    assert_eq!(flags, ["--baseline", "--formatt", "--no-such-option"]);
    assert!(documented.iter().any(|f| f == "--baseline"));
    assert!(documented.iter().any(|f| f == "--version"));
    for flag in ["--formatt", "--no-such-option"] {
        assert!(
            !documented.iter().any(|f| f == flag),
            "{flag} must not be found in the help"
        );
    }
    // Must-use flags count only in commands, not in comments.
    assert!(
        !flags_in(&commands_of(&[
            "# stowaway scan --baseline b.json\nstowaway scan x"
        ]))
        .contains(&"--baseline".to_string())
    );
}

// ---------------------------------------------------------------------------------------------
// Incomplete scans: what was not scanned is said in every format, and can fail the build
// ---------------------------------------------------------------------------------------------

/// An image with nothing secret in it whose one other file is a zip nested five deep: the
/// archive depth limit (3) keeps the innermost zips from being opened.
fn incomplete_image(dir: &Path) -> String {
    let mut spec = clean_spec();
    let nested = support::zips::nested_zips(5, "notes.txt", b"nothing to see here\n");
    spec.layers[0]
        .entries
        .push(Entry::file("app/lib.zip", nested));
    write_oci(&spec, dir).0
}

/// The one thing the depth limit left out of [`incomplete_image`], as every format words it.
const NOT_SCANNED: &str = "layer 1: app/lib.zip!/level-2.zip!/level-3.zip!/level-4.zip: \
    archive nested deeper than 3 levels (scanned as plain bytes)";

#[test]
fn an_incomplete_clean_scan_says_so_in_text_and_fails_only_when_asked() {
    let dir = tempdir();
    let image = incomplete_image(dir.path());
    let text = run(&["scan", "--color", "never", &image]);
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(
        text.stdout.contains("  1 item not scanned:\n"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains(&format!("    {NOT_SCANNED}\n")),
        "{}",
        text.stdout
    );
    let summary = text.stdout.lines().last().unwrap_or_default();
    assert!(
        summary.starts_with("No secrets found in what was scanned; 1 item not scanned ("),
        "{summary}"
    );
    assert_eq!(run(&["scan", "-q", "--fail-on-incomplete", &image]).code, 1);
    // The gate is about completeness, not severity: it holds with --fail-on none too.
    let gated = run(&[
        "scan",
        "-q",
        "--fail-on",
        "none",
        "--fail-on-incomplete",
        &image,
    ]);
    assert_eq!(gated.code, 1);
    let gated = run(&[
        "scan",
        "-q",
        "--fail-on-incomplete",
        "--exit-code",
        "7",
        &image,
    ]);
    assert_eq!(gated.code, 7);
    // Raising the limit that was reached makes the same scan complete.
    let deeper = run(&[
        "scan",
        "--color",
        "never",
        "--fail-on-incomplete",
        "--max-archive-depth",
        "5",
        &image,
    ]);
    assert_eq!(deeper.code, 0, "{}{}", deeper.stdout, deeper.stderr);
    assert!(!deeper.stdout.contains("not scanned"), "{}", deeper.stdout);

    let (_, report) = scan_json_with(&image, &[]);
    assert_eq!(report["stats"]["items_skipped"], 1, "{report}");
    let skipped = &report["images"][0]["skipped"][0];
    assert_eq!(skipped["kind"], "not-scanned", "{report}");
    assert_eq!(
        format!(
            "layer {}: {}: {}",
            skipped["layer_index"].as_u64().unwrap() + 1,
            skipped["what"].as_str().unwrap(),
            skipped["reason"].as_str().unwrap()
        ),
        NOT_SCANNED,
        "{report}"
    );

    // A clean image: no such line, and the gate passes.
    let clean_dir = tempdir();
    let (clean, _) = write_oci(&clean_spec(), clean_dir.path());
    let text = run(&["scan", "--color", "never", "--fail-on-incomplete", &clean]);
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(!text.stdout.contains("not scanned"), "{}", text.stdout);
    let summary = text.stdout.lines().last().unwrap_or_default();
    assert!(summary.starts_with("No secrets found ("), "{summary}");
    let (_, report) = scan_json_with(&clean, &[]);
    assert!(report["images"][0].get("skipped").is_none(), "{report}");
    assert!(report["stats"].get("items_irregular").is_none(), "{report}");
}

#[test]
fn sarif_and_gitlab_reports_carry_what_was_not_scanned_and_stay_valid() {
    let dir = tempdir();
    let image = incomplete_image(dir.path());
    let sarif_run = run(&["scan", "--format", "sarif", &image]);
    assert_eq!(sarif_run.code, 0, "{}", sarif_run.stderr);
    let sarif = parse(&sarif_run, "sarif");
    assert_schema_valid(&sarif_validator(), &sarif, "SARIF of an incomplete scan");
    let not_scanned = &sarif["runs"][0]["properties"]["notScanned"];
    assert_eq!(
        not_scanned,
        &serde_json::json!({"items": 1, "layers": 0}),
        "{sarif}"
    );
    let invocation = &sarif["runs"][0]["invocations"][0];
    assert_eq!(invocation["executionSuccessful"], true, "{sarif}");
    let notifications = invocation["toolExecutionNotifications"].as_array().unwrap();
    assert_eq!(notifications.len(), 1, "{sarif}");
    assert_eq!(notifications[0]["level"], "warning");
    assert_eq!(notifications[0]["descriptor"]["id"], "stowaway/not-scanned");
    let message = notifications[0]["message"]["text"].as_str().unwrap();
    assert_eq!(message, format!("not scanned: {NOT_SCANNED}"));

    let gitlab_run = run(&["scan", "--format", "gitlab", &image]);
    assert_eq!(gitlab_run.code, 0, "{}", gitlab_run.stderr);
    let gitlab = parse(&gitlab_run, "gitlab");
    assert_schema_valid(
        &gitlab_validator(),
        &gitlab,
        "GitLab report of an incomplete scan",
    );
    let messages = gitlab["scan"]["messages"].as_array().unwrap();
    assert!(
        messages.iter().all(|m| m["level"] == "warn"),
        "{messages:?}"
    );
    let values: Vec<&str> = messages
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    assert!(
        values[0]
            .ends_with(": 1 item not scanned (each listed below; the JSON report has them too)"),
        "{values:?}"
    );
    assert!(
        values[1].ends_with(&format!(": not scanned: {NOT_SCANNED}")),
        "{values:?}"
    );

    // A clean image's SARIF has no invocation to report, and its GitLab report no message.
    let clean_dir = tempdir();
    let (clean, _) = write_oci(&clean_spec(), clean_dir.path());
    let sarif = parse(&run(&["scan", "--format", "sarif", &clean]), "sarif");
    assert!(sarif["runs"][0].get("invocations").is_none(), "{sarif}");
    let properties = &sarif["runs"][0]["properties"];
    assert!(properties.get("notScanned").is_none(), "{sarif}");
    let gitlab = parse(&run(&["scan", "--format", "gitlab", &clean]), "gitlab");
    assert_eq!(gitlab["scan"]["messages"], serde_json::json!([]));
}
