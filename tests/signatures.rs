//! Every built-in rule proves itself: it loads, has keywords, a description, examples and
//! negative examples; every example is found by the rule through the whole engine (prefilter,
//! window, regex, filters, validator) and no negative example is.

use stowaway::detect::rules::builtin_rules;
use stowaway::detect::selftest::{check_rules, path_example};
use stowaway::detect::{Detector, Severity};

#[test]
fn every_builtin_rule_passes_its_own_examples() {
    let rules = builtin_rules().expect("built-in rules load");
    let problems = check_rules(&rules);
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_rule_set_is_broad_and_well_formed() {
    let rules = builtin_rules().unwrap();
    assert!(rules.len() >= 150, "only {} rules", rules.len());
    for rule in &rules {
        assert!(!rule.keywords.is_empty(), "{}", rule.id);
        assert!(
            !rule.examples.is_empty() && !rule.negative_examples.is_empty(),
            "{}",
            rule.id
        );
        assert!(
            !rule.references.is_empty() || rule.is_generic(),
            "{} has no references",
            rule.id
        );
    }
    // One automaton for all keywords, and duplicate ids rejected.
    Detector::new(rules).expect("the built-in set builds");
}

/// The catch-all rules are the `generic-*` ones and declare it (`category = "generic"`): a scan
/// prefers a specific rule's finding over theirs, and a new catch-all rule that forgot the key
/// would compete with specific rules as their equal.
#[test]
fn generic_rules_say_so() {
    for rule in builtin_rules().unwrap() {
        assert_eq!(
            rule.is_generic(),
            rule.id.starts_with("generic"),
            "{} ({})",
            rule.id,
            rule.source
        );
    }
}

/// Examples of each rule also survive being embedded in a larger file next to everything else:
/// the full engine with all rules finds each example's secret with its own rule or a more
/// specific one of at least the same severity.
#[test]
fn examples_are_found_among_all_rules() {
    let rules = builtin_rules().unwrap();
    let detector = Detector::new(rules.clone()).unwrap();
    let mut missing = Vec::new();
    // Decoder rules parse whole documents (JSON, YAML, key stores): padding would break them.
    // Path-scoped rules read whole files at their path: their examples are run as they are,
    // at that path, among all rules.
    for (index, rule) in rules
        .iter()
        .enumerate()
        .filter(|(_, r)| r.decoder.is_none())
    {
        if rule.path.is_some() {
            for example in &rule.examples {
                let (path, content) = path_example(example).expect("a path: line");
                let found = detector.scan_file(path, content.as_bytes());
                if !found
                    .iter()
                    .any(|m| m.base.rule == index || m.base.severity >= rule.severity)
                {
                    missing.push(format!("{}: {example:?}", rule.id));
                }
            }
            continue;
        }
        for example in &rule.examples {
            let padded = format!("# config\nlisten: 0.0.0.0:8080\n{example}\nlog_level: info\n");
            let found = detector.scan_file("config/app.txt", padded.as_bytes());
            // A decoder that opens the example (a manifest, a kubeconfig) reports what it
            // decodes under a more specific rule, never at a lower severity.
            let covered = found
                .iter()
                .any(|m| m.base.rule == index || m.base.severity >= rule.severity);
            if !covered {
                missing.push(format!("{}: {example:?}", rule.id));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "examples not found in context:\n{}",
        missing.join("\n")
    );
}

#[test]
fn certificates_alone_are_info() {
    let rules = builtin_rules().unwrap();
    let certificate_rules: Vec<_> = rules
        .iter()
        .filter(|r| r.id.contains("certificate"))
        .collect();
    assert!(!certificate_rules.is_empty());
    for rule in certificate_rules {
        assert!(
            rule.severity <= Severity::Info,
            "{} is {}",
            rule.id,
            rule.severity
        );
    }
}
