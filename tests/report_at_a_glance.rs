//! The report at a glance (issue 16): the worst deleted-but-shipped secret is printed first;
//! one finding per secret, with every other place it is in listed under it; each history
//! finding shows its step, masked; no format prints a secret; and one numbering convention
//! (layers and history steps from 1, paths with a leading `/`) in every format.

mod support;

use serde_json::Value;
use support::run::run;
use support::*;

/// The demo image the README scans, with the secrets its generator planted: the generator's
/// fixed seed makes the same image again, byte for byte, so its secrets are known here.
fn demo() -> (String, Planted) {
    // The fixed seed is for the demo only: what this thread makes afterwards stays random.
    let afterwards = fastrand::u64(..);
    fastrand::seed(0x5701_aaa7);
    let (spec, planted) = classic_leak();
    fastrand::seed(afterwards);
    let dir = tempdir();
    let again = dir.path().join("demo.tar");
    write_image(&spec, Format::DockerLegacy, Compression::None, &again);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/demo-leaky.tar");
    assert!(
        std::fs::read(path).unwrap() == std::fs::read(&again).unwrap(),
        "testdata/demo-leaky.tar is not what `cargo run --example make_demo_image` makes"
    );
    (path.to_string(), planted)
}

/// The classic leak, with random secrets, as a `docker save` tarball in `dir`.
fn classic(dir: &std::path::Path) -> (String, Planted) {
    let (spec, planted) = classic_leak();
    let written = write_image_in(&spec, Format::DockerOci, Compression::Gzip, dir);
    (written.path.display().to_string(), planted)
}

fn scan(args: &[&str]) -> support::run::Run {
    let result = run(args);
    assert!(
        result.code == 0 || result.code == 1,
        "{args:?}: {}",
        result.stderr
    );
    result
}

fn severity_rank(severity: &str) -> usize {
    ["info", "low", "medium", "high", "critical"]
        .iter()
        .position(|s| *s == severity)
        .unwrap_or_else(|| panic!("severity {severity}"))
}

/// The finding lines of a text report: those that start with a severity label.
fn finding_lines(text: &str) -> Vec<(usize, &str)> {
    let labels = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO"];
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            line.strip_prefix("    ")
                .is_some_and(|rest| labels.iter().any(|label| rest.starts_with(label)))
        })
        .collect()
}

/// Every place (the finding's own and its `also_found_in`) of every finding of the image.
fn places_of(finding: &Value) -> Vec<&Value> {
    let mut places = vec![finding];
    places.extend(finding["also_found_in"].as_array().into_iter().flatten());
    places
}

fn check_first_finding_is_the_worst_shipped_one(image: &str, label: &str) {
    let report = scan(&["scan", "--format", "json", image]).json();
    let findings = report["images"][0]["findings"].as_array().unwrap();
    let worst = findings
        .iter()
        .map(|f| severity_rank(f["severity"].as_str().unwrap()))
        .max()
        .expect("findings");
    let shipped_at_worst = findings.iter().any(|f| {
        severity_rank(f["severity"].as_str().unwrap()) == worst && f["status"] != "present"
    });
    assert!(
        shipped_at_worst,
        "{label}: the fixture has a worst deleted secret"
    );
    let first = &findings[0];
    assert_eq!(
        severity_rank(first["severity"].as_str().unwrap()),
        worst,
        "{label}"
    );
    assert_ne!(first["status"], "present", "{label}: {first}");

    let text = scan(&["scan", image]).stdout;
    let lines = finding_lines(&text);
    let (at, line) = lines[0];
    let label_of = ["info", "low", "medium", "high", "critical"][worst].to_uppercase();
    assert!(line.trim_start().starts_with(&label_of), "{label}: {line}");
    let path = first["location"]["path"].as_str().unwrap();
    assert!(line.contains(path), "{label}: {line} names {path}");
    let next = text.lines().nth(at + 1).unwrap();
    assert!(
        next.trim_start().starts_with("DELETED in layer")
            || next.trim_start().starts_with("OVERWRITTEN in layer"),
        "{label}: {next}"
    );
    // Severity never rises down the list.
    let ranks: Vec<usize> = lines
        .iter()
        .map(|(_, line)| {
            let word = line.split_whitespace().next().unwrap().to_lowercase();
            severity_rank(&word)
        })
        .collect();
    assert!(ranks.windows(2).all(|w| w[0] >= w[1]), "{label}: {ranks:?}");
}

#[test]
fn the_first_finding_printed_is_the_most_severe_deleted_but_shipped_one() {
    let (demo, _) = demo();
    check_first_finding_is_the_worst_shipped_one(&demo, "demo");
    let dir = tempdir();
    let (image, _) = classic(dir.path());
    check_first_finding_is_the_worst_shipped_one(&image, "classic leak");
}

fn check_one_finding_per_secret(image: &str, planted: &Planted, label: &str) {
    let shown = scan(&["scan", "--format", "json", "--show-secrets", image]).json();
    let findings = shown["images"][0]["findings"].as_array().unwrap();
    // No two findings hold the same value.
    let mut secrets: Vec<&str> = findings
        .iter()
        .map(|f| f["secret"].as_str().unwrap())
        .collect();
    secrets.sort_unstable();
    let before = secrets.len();
    secrets.dedup();
    assert_eq!(secrets.len(), before, "{label}: a secret reported twice");
    assert_eq!(shown["stats"]["findings"], findings.len());

    // The hard link: one finding names both names.
    let key = planted
        .iter()
        .find(|p| p.rule_hint == "openssh-private-key")
        .unwrap();
    let holding: Vec<&Value> = findings
        .iter()
        .filter(|f| f["secret"].as_str().unwrap().trim() == key.secret.trim())
        .collect();
    assert_eq!(holding.len(), 1, "{label}");
    let paths: Vec<&str> = places_of(holding[0])
        .iter()
        .filter_map(|p| p["location"]["path"].as_str())
        .collect();
    for name in ["/home/dev/.ssh/id_ed25519", "/home/dev/.ssh/id_ed25519.bak"] {
        assert!(paths.contains(&name), "{label}: {name} in {paths:?}");
    }

    // The ENV password: in the history step and in the config, one finding.
    let env: Vec<&Value> = findings
        .iter()
        .filter(|f| {
            places_of(f)
                .iter()
                .any(|p| p["location"]["field"] == "Env DB_PASSWORD")
        })
        .collect();
    assert_eq!(env.len(), 1, "{label}: {env:?}");
    let kinds: Vec<&str> = places_of(env[0])
        .iter()
        .map(|p| p["location"]["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"history") && kinds.contains(&"config"),
        "{label}: {kinds:?}"
    );

    // Text: each other place under its finding.
    let text = scan(&["scan", image]).stdout;
    assert!(
        text.contains("also in /home/dev/.ssh/id_ed25519.bak:1 in layer 4/6")
            || text.contains("also in /home/dev/.ssh/id_ed25519:1 in layer 4/6"),
        "{label}:\n{text}"
    );
    assert!(
        text.contains("also in config Env DB_PASSWORD") || text.contains("also in history step"),
        "{label}:\n{text}"
    );
}

#[test]
fn hard_linked_and_repeated_secrets_are_one_finding_with_all_their_places() {
    let (demo, planted) = demo();
    check_one_finding_per_secret(&demo, &planted, "demo");
    let dir = tempdir();
    let (image, planted) = classic(dir.path());
    check_one_finding_per_secret(&image, &planted, "classic leak");
}

/// The same npm token in a file and in a build argument, and the same AWS key file in two
/// layers: one finding each, whatever rule matched the value at each place.
#[test]
fn a_token_in_a_file_and_a_build_arg_and_a_key_in_two_layers_are_one_finding_each() {
    let npm = secrets::npm_token();
    let (id, key) = (
        secrets::aws_access_key_id(),
        secrets::aws_secret_access_key(),
    );
    let credentials = secrets::aws_credentials_file(&id, &key);
    let spec = ImageSpec {
        layers: vec![
            Layer::new(
                "COPY . /app # buildkit",
                vec![
                    Entry::dir("app"),
                    Entry::file(
                        "app/.npmrc",
                        format!("//registry.npmjs.org/:_authToken={npm}\n"),
                    ),
                    Entry::file("app/credentials", credentials.clone()),
                ],
            ),
            Layer::new(
                &format!("RUN |1 NPM_TOKEN={npm} /bin/sh -c npm ci # buildkit"),
                vec![
                    Entry::dir("root"),
                    Entry::file("root/credentials", credentials),
                ],
            ),
        ],
        repo_tag: "example.com/twice:1".into(),
        ..ImageSpec::default()
    };
    let dir = tempdir();
    let written = write_image_in(&spec, Format::DockerOci, Compression::Gzip, dir.path());
    let image = written.path.display().to_string();
    let report = scan(&["scan", "--format", "json", &image]).json();
    let findings = report["images"][0]["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 3, "{findings:#?}");
    let npm_finding = findings
        .iter()
        .find(|f| {
            places_of(f)
                .iter()
                .any(|p| p["location"]["kind"] == "history")
        })
        .expect("the token's finding names the step");
    let places: Vec<String> = places_of(npm_finding)
        .iter()
        .map(|p| format!("{} {}", p["location"]["kind"], p["location"]["path"]))
        .collect();
    assert_eq!(places.len(), 2, "{places:?}");
    assert!(
        places.iter().any(|p| p.contains("/app/.npmrc")),
        "{places:?}"
    );
    for finding in findings
        .iter()
        .filter(|f| f["rule_id"] != npm_finding["rule_id"])
    {
        let layers: Vec<&Value> = places_of(finding)
            .iter()
            .map(|p| &p["location"]["layer_number"])
            .collect();
        assert_eq!(layers, [&Value::from(1), &Value::from(2)], "{finding:#}");
    }
    assert_eq!(report["stats"]["findings"], 3);
    let text = scan(&["scan", &image]).stdout;
    assert!(
        text.contains("also in history step 2 (")
            || text.contains("also in /app/.npmrc:1 in layer 1/2"),
        "{text}"
    );
    for needle in [&npm, &id, &key] {
        assert!(!text.contains(needle.as_str()), "text leaks {needle}");
    }
}

fn check_history_findings_show_their_masked_step(image: &str, planted: &Planted, label: &str) {
    let report = scan(&["scan", "--format", "json", image]).json();
    let image_report = &report["images"][0];
    let mut history = 0;
    for finding in image_report["findings"].as_array().unwrap() {
        for place in places_of(finding) {
            if place["location"]["kind"] != "history" {
                continue;
            }
            history += 1;
            let context = place["context"]
                .as_str()
                .unwrap_or_else(|| panic!("{label}: a history place without its step: {place}"));
            assert!(
                context.contains("NPM_TOKEN=") || context.contains("DB_PASSWORD="),
                "{label}: {context}"
            );
            assert!(context.contains("****"), "{label}: not masked: {context}");
        }
    }
    assert!(history >= 2, "{label}: {history} history places");
    let text = scan(&["scan", image]).stdout;
    let step = text
        .lines()
        .find(|line| line.trim_start().starts_with("> RUN |1 NPM_TOKEN="))
        .unwrap_or_else(|| panic!("{label}: no masked RUN step:\n{text}"));
    assert!(step.contains("/bin/sh -c npm ci"), "{label}: {step}");
    for needle in needles(planted) {
        assert!(!step.contains(&needle), "{label}: the step leaks {needle}");
    }
}

#[test]
fn each_history_finding_shows_its_step_masked() {
    let (demo, planted) = demo();
    check_history_findings_show_their_masked_step(&demo, &planted, "demo");
    let dir = tempdir();
    let (image, planted) = classic(dir.path());
    check_history_findings_show_their_masked_step(&image, &planted, "classic leak");
}

fn check_no_format_shows_a_secret(image: &str, planted: &Planted, label: &str) {
    let needles = needles(planted);
    for format in ["text", "json", "sarif", "gitlab", "markdown", "junit"] {
        for extra in [&[][..], &["-v", "--show-vendor"][..]] {
            let mut args = vec!["scan", "--format", format];
            args.extend(extra);
            args.push(image);
            let result = scan(&args);
            for needle in &needles {
                assert!(
                    !result.stdout.contains(needle.as_str()),
                    "{label}: {format} {extra:?} leaks {needle}"
                );
                assert!(!result.stderr.contains(needle.as_str()));
            }
        }
    }
    // The control: asked for, the secrets are there, so the needles are the right ones.
    let shown = scan(&["scan", "--format", "json", "--show-secrets", image]).stdout;
    let found = needles
        .iter()
        .filter(|n| shown.contains(n.as_str()))
        .count();
    assert_eq!(
        found,
        needles.len(),
        "{label}: --show-secrets shows every needle"
    );
}

#[test]
fn no_format_prints_a_secret_with_its_context_and_other_places() {
    let (demo, planted) = demo();
    check_no_format_shows_a_secret(&demo, &planted, "demo");
    let dir = tempdir();
    let (image, planted) = classic(dir.path());
    check_no_format_shows_a_secret(&image, &planted, "classic leak");
}

#[test]
fn remediation_is_printed_once_per_kind_and_fits_the_key() {
    let dir = tempdir();
    let (image, _) = classic(dir.path());
    let text = scan(&["scan", &image]).stdout;
    let advice: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with("  [") && line.contains("] "))
        .collect();
    assert!(!advice.is_empty(), "{text}");
    let hints = text.lines().filter(|l| l.contains("what to do: [")).count();
    assert_eq!(hints, finding_lines(&text).len(), "one hint per finding");
    assert!(advice.len() < hints, "advice is shared: {advice:?}");
    // Each piece of advice once: no two numbered blocks say the same.
    let mut blocks: Vec<String> = Vec::new();
    for line in text.lines().skip_while(|l| l.trim() != "What to do") {
        if line.starts_with("  [") {
            blocks.push(String::new());
        } else if let Some(block) = blocks.last_mut() {
            block.push_str(line.trim());
            block.push(' ');
        }
    }
    let all = blocks.len();
    assert_eq!(all, advice.len(), "{text}");
    blocks.sort_unstable();
    blocks.dedup();
    assert_eq!(blocks.len(), all, "{text}");
    assert!(text.contains("RUN --mount=type=secret"), "{text}");
    assert!(text.contains("Compose or Swarm secrets"), "{text}");
    assert!(!text.contains("belongs in a Kubernetes Secret"), "{text}");

    let report = scan(&["scan", "--format", "json", &image]).json();
    for finding in report["images"][0]["findings"].as_array().unwrap() {
        let path = finding["location"]["path"].as_str().unwrap_or_default();
        let kind = finding["remediation"]["kubernetes_secret_type"]
            .as_str()
            .unwrap();
        if path.contains("/.ssh/") {
            assert_eq!(kind, "kubernetes.io/ssh-auth", "{path}");
        } else {
            assert_ne!(
                kind, "kubernetes.io/tls",
                "{path}: a lone key is no TLS pair"
            );
        }
    }
}
