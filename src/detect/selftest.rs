//! Rules carry their own tests: every example must be found by its rule through the whole
//! engine (prefilter, window, regex, filters, validator) and no negative example may be.
//! Used by the test suite for the built-in rules and by `stowaway rules check` for user files.
//!
//! A decoder rule (`decoder = "…"`) is matched by structure, not by a regex: its examples are
//! whole files, run through [`Detector::scan_file`]; an example written `base64:…` stands for
//! the binary file it decodes to (a keystore, say).
//!
//! A path-scoped rule (`path = …`) reads whole files chosen by their path: each of its examples
//! is `path:/the/file/path` on the first line and the file's content after it (see
//! [`path_example`]), run through [`Detector::scan_file`] at that path.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::engine::Detector;
use super::rules::Rule;

/// A problem with one rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleProblem {
    /// The file the rule came from (`signatures/cloud.toml`, or a user file's path).
    pub source: String,
    /// The rule's `id`.
    pub rule_id: String,
    /// What is wrong, in words (`example 2 is not matched …`); example numbers count from 1.
    pub problem: String,
}

impl std::fmt::Display for RuleProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: rule {}: {}",
            self.source, self.rule_id, self.problem
        )
    }
}

/// Checks each rule on its own examples. Each rule is run alone, so the result does not depend
/// on what other rules would also match.
pub fn check_rules(rules: &[Rule]) -> Vec<RuleProblem> {
    let mut problems = Vec::new();
    for rule in rules {
        let mut problem = |text: String| {
            problems.push(RuleProblem {
                source: rule.source.clone(),
                rule_id: rule.id.clone(),
                problem: text,
            })
        };
        if rule.description.trim().is_empty() {
            problem("has no description".into());
        }
        if rule.examples.is_empty() {
            problem("has no examples".into());
        }
        if rule.negative_examples.is_empty() {
            problem("has no negative_examples".into());
        }
        let detector = match Detector::new(vec![rule.clone()]) {
            Ok(detector) => detector,
            Err(err) => {
                problem(format!("cannot build: {err}"));
                continue;
            }
        };
        if rule.decoder.is_some() {
            check_decoder_examples(rule, &detector, &mut problem);
            continue;
        }
        if rule.path.is_some() {
            check_path_examples(rule, &detector, &mut problem);
            continue;
        }
        for (index, example) in rule.examples.iter().enumerate() {
            let lower = example.to_ascii_lowercase();
            if !rule.keywords.iter().any(|k| lower.contains(k.as_str())) {
                problem(format!(
                    "example {} contains none of the keywords {:?}, so the prefilter never lets the regex see it",
                    index + 1,
                    rule.keywords
                ));
            } else if detector.scan(example.as_bytes()).is_empty() {
                problem(format!(
                    "example {} is not matched (regex, entropy, placeholder filter or validator rejects it): {}",
                    index + 1,
                    excerpt(example)
                ));
            }
        }
        for (index, negative) in rule.negative_examples.iter().enumerate() {
            if !detector.scan(negative.as_bytes()).is_empty() {
                problem(format!(
                    "negative example {} is matched: {}",
                    index + 1,
                    excerpt(negative)
                ));
            }
        }
    }
    problems
}

/// The examples of a decoder rule: whole files, through the decoders.
fn check_decoder_examples(rule: &Rule, detector: &Detector, problem: &mut impl FnMut(String)) {
    let matched = |example: &str| -> Result<bool, String> {
        let bytes = match example.strip_prefix("base64:") {
            Some(encoded) => {
                let compact: String = encoded.split_ascii_whitespace().collect();
                STANDARD
                    .decode(compact)
                    .map_err(|err| format!("is not valid base64 after `base64:` ({err})"))?
            }
            None => example.as_bytes().to_vec(),
        };
        Ok(detector
            .scan_file("example", &bytes)
            .iter()
            .any(|found| found.base.rule == 0))
    };
    for (index, example) in rule.examples.iter().enumerate() {
        match matched(example) {
            Ok(true) => {}
            Ok(false) => problem(format!(
                "example {} is not matched by decoder {}: {}",
                index + 1,
                rule.decoder.map(|d| d.as_str()).unwrap_or_default(),
                excerpt(example)
            )),
            Err(err) => problem(format!("example {} {err}", index + 1)),
        }
    }
    for (index, negative) in rule.negative_examples.iter().enumerate() {
        match matched(negative) {
            Ok(false) => {}
            Ok(true) => problem(format!(
                "negative example {} is matched: {}",
                index + 1,
                excerpt(negative)
            )),
            Err(err) => problem(format!("negative example {} {err}", index + 1)),
        }
    }
}

/// An example of a path-scoped rule taken apart: the path written after `path:` on its first
/// line, and the file content after that line (`None` without the `path:` line).
pub fn path_example(example: &str) -> Option<(&str, &str)> {
    let rest = example.strip_prefix("path:")?;
    let (path, content) = rest.split_once('\n').unwrap_or((rest, ""));
    Some((path.trim(), content))
}

/// The examples of a path-scoped rule: files at their paths.
fn check_path_examples(rule: &Rule, detector: &Detector, problem: &mut impl FnMut(String)) {
    let matched = |example: &str| -> Result<bool, String> {
        let (path, content) = path_example(example)
            .ok_or("does not start with a `path:` line (the rule is path-scoped)")?;
        Ok(detector
            .scan_file(path, content.as_bytes())
            .iter()
            .any(|found| found.base.rule == 0))
    };
    let examples = rule.examples.iter().map(|e| (e, true));
    let negatives = rule.negative_examples.iter().map(|e| (e, false));
    let mut counts = [0, 0];
    for (example, positive) in examples.chain(negatives) {
        let counter = &mut counts[usize::from(!positive)];
        *counter += 1;
        let name = if positive {
            format!("example {counter}")
        } else {
            format!("negative example {counter}")
        };
        match matched(example) {
            Ok(found) if found == positive => {}
            Ok(true) => problem(format!("{name} is matched: {}", excerpt(example))),
            Ok(false) => problem(format!(
                "{name} is not matched (path, regex, entropy, placeholder filter or validator rejects it): {}",
                excerpt(example)
            )),
            Err(err) => problem(format!("{name} {err}")),
        }
    }
}

fn excerpt(text: &str) -> String {
    let flat = text.replace('\n', "\\n");
    if flat.chars().count() > 60 {
        format!("{:?}…", flat.chars().take(60).collect::<String>())
    } else {
        format!("{flat:?}")
    }
}
