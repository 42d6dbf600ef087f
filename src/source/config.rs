//! The image config (`application/vnd.oci.image.config.v1+json` and Docker's equivalent).
//!
//! Parsed leniently from JSON: images in the wild carry Docker-only fields (`container_config`,
//! `Healthcheck`, `OnBuild`) that are exactly where leaked values hide, and a strict typed parse
//! would reject configs that Docker itself accepts.

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::Digest;
use super::json;

/// The parts of the config the scanner needs, plus the raw JSON for text extraction.
pub struct ImageConfig {
    /// The config JSON as parsed, for the config text worth scanning, without `history` and
    /// `rootfs` (read into the fields below: an image of 40,000 layers carries megabytes of
    /// them, which need not be held twice).
    pub raw: Value,
    /// `rootfs.diff_ids`: the digest of each layer's uncompressed tar, lowest layer first;
    /// one per layer of the manifest.
    pub diff_ids: Vec<Digest>,
    /// The `history` array in order, `empty_layer` steps included: a report's
    /// `history_index` counts entries of this list from 0.
    pub history: Vec<HistoryEntry>,
}

/// One `history[]` entry.
#[derive(Clone, Debug, Default)]
pub struct HistoryEntry {
    pub created_by: Option<String>,
    pub comment: Option<String>,
    pub author: Option<String>,
    /// True for steps (ENV, ARG, LABEL…) that made no layer.
    pub empty_layer: bool,
}

impl ImageConfig {
    /// Parses config JSON; `what` names the blob in errors.
    pub fn parse(bytes: &[u8], what: &str) -> Result<ImageConfig> {
        let mut raw: Value = json::parse(bytes, what)?;
        if !raw.is_object() {
            bail!("{what}: not an image config (not a JSON object)");
        }
        let diff_ids = match raw.pointer("/rootfs/diff_ids") {
            Some(Value::Array(ids)) => ids
                .iter()
                .map(|id| Digest::parse(id.as_str().unwrap_or_default()))
                .collect::<Result<Vec<_>>>()
                .with_context(|| format!("{what}: bad rootfs.diff_ids"))?,
            Some(_) => bail!("{what}: rootfs.diff_ids is not a list"),
            None => bail!("{what}: not an image config (no rootfs.diff_ids)"),
        };
        let history = match raw.get("history") {
            Some(Value::Array(items)) => items.iter().map(parse_history).collect(),
            _ => Vec::new(),
        };
        if let Value::Object(fields) = &mut raw {
            fields.remove("history");
            fields.remove("rootfs");
        }
        Ok(ImageConfig {
            raw,
            diff_ids,
            history,
        })
    }

    /// `os/arch[/variant]`, when the config says.
    pub fn platform(&self) -> Option<String> {
        let os = self.raw.get("os")?.as_str()?;
        let arch = self.raw.get("architecture")?.as_str()?;
        Some(match self.raw.get("variant").and_then(Value::as_str) {
            Some(variant) if !variant.is_empty() => format!("{os}/{arch}/{variant}"),
            _ => format!("{os}/{arch}"),
        })
    }

    /// For each layer index, the index of the history entry that made it. History entries
    /// marked `empty_layer` made no layer; when history is missing or shorter than the layer
    /// list (squashed or hand-made images), the remaining layers have no step.
    pub fn layer_history(&self, layers: usize) -> Vec<Option<usize>> {
        let mut steps = self
            .history
            .iter()
            .enumerate()
            .filter(|(_, entry)| !entry.empty_layer)
            .map(|(index, _)| index);
        (0..layers).map(|_| steps.next()).collect()
    }
}

fn parse_history(item: &Value) -> HistoryEntry {
    let text = |key: &str| item.get(key).and_then(Value::as_str).map(str::to_string);
    HistoryEntry {
        created_by: text("created_by"),
        comment: text("comment"),
        author: text("author"),
        empty_layer: item
            .get("empty_layer")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_layers_to_history_skipping_empty_steps() {
        let d = Digest::of(b"x");
        let json = serde_json::json!({
            "os": "linux", "architecture": "arm64", "variant": "v8",
            "rootfs": {"type": "layers", "diff_ids": [d.as_str(), d.as_str()]},
            "history": [
                {"created_by": "ARG TOKEN", "empty_layer": true},
                {"created_by": "COPY a /a"},
                {"created_by": "ENV A=b", "empty_layer": true},
                {"created_by": "RUN x"}
            ]
        });
        let config = ImageConfig::parse(json.to_string().as_bytes(), "config").unwrap();
        assert_eq!(config.layer_history(2), vec![Some(1), Some(3)]);
        assert_eq!(config.layer_history(3), vec![Some(1), Some(3), None]);
        assert_eq!(config.platform().as_deref(), Some("linux/arm64/v8"));
    }

    #[test]
    fn rejects_non_configs() {
        assert!(ImageConfig::parse(b"[]", "c").is_err());
        assert!(ImageConfig::parse(b"{}", "c").is_err());
        assert!(ImageConfig::parse(b"{not json", "c").is_err());
    }
}
