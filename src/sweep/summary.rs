//! The summary a sweep ends with: what was listed, what already had a result, what was
//! scanned or failed, layers scanned and reused, findings by severity and throughput. One
//! type, written as text or as JSON (its shape is documented in the README).

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

use crate::detect::Severity;
use crate::report::skips::plural;

/// Version of the JSON shape below.
pub const SUMMARY_FORMAT: u32 = 1;

/// A sweep's counts.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub summary_format: u32,
    pub registry: String,
    /// The rules digest results are stored under.
    pub rules_digest: String,
    /// Repositories swept (after `--repos`).
    pub repositories: usize,
    /// Tags chosen (after `--tags`, `--tags-per-repo`, `--since`).
    pub tags: usize,
    /// Distinct images (manifest digests) the chosen tags stand for.
    pub images: usize,
    /// Images that already had a result under these rules.
    pub already_had_result: usize,
    pub scanned: usize,
    /// Images handed to a work queue (a queue target) instead of scanned here.
    pub queued: usize,
    pub failed: usize,
    /// One line per image or tag that could not be resolved or scanned.
    pub failures: Vec<Failure>,
    /// What was left out and why (a list cut at its cap, a repository whose tags could not
    /// be listed), counted, never silent.
    pub skipped: Vec<Skip>,
    pub layers_scanned: usize,
    /// Layers read back from the layer cache instead of scanned.
    pub layers_reused: usize,
    /// Findings in the swept images (scanned now or earlier), per severity.
    pub findings: BTreeMap<Severity, usize>,
    pub elapsed_ms: u64,
    /// Images given a result per second of the whole sweep (scanned / elapsed).
    pub images_per_second: f64,
    /// Layers scanned per second of the whole sweep.
    pub layers_per_second: f64,
}

/// An image or tag that failed.
#[derive(Debug, Serialize)]
pub struct Failure {
    /// `REPOSITORY:TAG` or `REPOSITORY`.
    pub what: String,
    /// One line.
    pub error: String,
}

/// Something the sweep left out.
#[derive(Debug, Serialize)]
pub struct Skip {
    pub what: String,
    pub reason: String,
}

impl Summary {
    /// Fills in the time and the rates.
    pub fn finish(&mut self, elapsed: std::time::Duration) {
        self.elapsed_ms = elapsed.as_millis() as u64;
        let seconds = elapsed.as_secs_f64().max(1e-3);
        let round = |rate: f64| (rate * 100.0).round() / 100.0;
        self.images_per_second = round(self.scanned as f64 / seconds);
        self.layers_per_second = round(self.layers_scanned as f64 / seconds);
    }

    /// Findings at or above `threshold`.
    pub fn count_at_or_above(&self, threshold: Severity) -> usize {
        self.findings
            .iter()
            .filter(|(severity, _)| **severity >= threshold)
            .map(|(_, count)| count)
            .sum()
    }

    /// The text form.
    pub fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(
            out,
            "swept {}: {}, {}, {}",
            self.registry,
            plural(self.repositories, "repository", "repositories"),
            plural(self.tags, "tag", "tags"),
            plural(self.images, "image", "images"),
        )?;
        writeln!(
            out,
            "  {} already had a result, {} scanned, {} queued, {} failed",
            self.already_had_result, self.scanned, self.queued, self.failed
        )?;
        writeln!(
            out,
            "  layers: {} scanned, {} reused from the cache",
            self.layers_scanned, self.layers_reused
        )?;
        let findings: Vec<String> = self
            .findings
            .iter()
            .rev()
            .map(|(severity, count)| format!("{count} {severity}"))
            .collect();
        let findings = if findings.is_empty() {
            "none".to_string()
        } else {
            findings.join(", ")
        };
        writeln!(out, "  findings: {findings}")?;
        writeln!(
            out,
            "  {:.1} s, {} images/s, {} layers/s",
            self.elapsed_ms as f64 / 1000.0,
            self.images_per_second,
            self.layers_per_second
        )?;
        for skip in &self.skipped {
            writeln!(out, "  skipped {}: {}", skip.what, skip.reason)?;
        }
        for failure in &self.failures {
            writeln!(out, "  failed {}: {}", failure.what, failure.error)?;
        }
        Ok(())
    }

    /// The JSON form.
    pub fn write_json(&self, out: &mut dyn Write) -> std::io::Result<()> {
        serde_json::to_writer_pretty(&mut *out, self)?;
        writeln!(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_json_forms_agree_on_the_counts() {
        let mut summary = Summary {
            summary_format: SUMMARY_FORMAT,
            registry: "r.example:5000".into(),
            repositories: 2,
            tags: 3,
            images: 3,
            scanned: 2,
            already_had_result: 1,
            layers_scanned: 4,
            layers_reused: 2,
            ..Summary::default()
        };
        summary.findings.insert(Severity::High, 2);
        summary.failures.push(Failure {
            what: "app:1".into(),
            error: "manifest: no such image or tag".into(),
        });
        summary.finish(std::time::Duration::from_secs(2));
        assert_eq!(summary.images_per_second, 1.0);
        assert_eq!(summary.count_at_or_above(Severity::Medium), 2);
        assert_eq!(summary.count_at_or_above(Severity::Critical), 0);
        let mut text = Vec::new();
        summary.write_text(&mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("2 repositories, 3 tags, 3 images"), "{text}");
        assert!(text.contains("findings: 2 high"), "{text}");
        assert!(text.contains("failed app:1: manifest"), "{text}");
        let mut json = Vec::new();
        summary.write_json(&mut json).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(value["layers_scanned"], 4);
        assert_eq!(value["findings"]["high"], 2);
    }
}
