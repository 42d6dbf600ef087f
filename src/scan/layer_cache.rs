//! Per-layer results kept across scans, so a layer shared by many images is walked and matched
//! once: what the cache key holds, how a layer's results are encoded (secrets sealed, never in
//! the clear), and how an entry is read back into the scan.

use serde::{Deserialize, Serialize};

use super::Scanner;
use super::raw::RawFinding;
use crate::detect::Rule;
use crate::layer::WalkedLayer;
#[cfg(test)]
use crate::report::model::SkipKind;
use crate::report::model::SkipRecord;
use crate::source::{Image, Layer};

/// A store of per-layer results. Keys hold the rule-set digest and the layer's digest; values
/// are opaque bytes. Secrets are stored sealed (redacted, with their fingerprint), never in the
/// clear.
pub trait LayerCache: Send + Sync {
    /// The value stored under `key`, or `None` when there is none or it cannot be read (a
    /// miss only costs a rescan).
    fn get(&self, key: &str) -> Option<Vec<u8>>;
    /// Stores `value` under `key`, replacing any earlier value; failures are swallowed, as a
    /// result that was not cached is only scanned again.
    fn put(&self, key: &str, value: Vec<u8>);
}

/// Version of the cached-layer encoding, part of the key. 2: `WalkedLayer` no longer records
/// symlinks. 3: layers are read as Go's `archive/tar` reads them, so a layer walked before may
/// have hidden files from the scan; irregular entries are reported as skipped. 4: skipped items
/// say whether they were not scanned or only irregular (entries of 3 would read all as not
/// scanned).
const CACHE_FORMAT: u32 = 4;

/// The start of every layer key this build reads and writes under the rule set
/// `rules_digest`. An entry under any other prefix (other rules, an older encoding) can never be
/// read again.
pub(crate) fn key_prefix(rules_digest: &str) -> String {
    format!("layer/v{CACHE_FORMAT}/{rules_digest}/")
}

/// The cache key of `layer` under the rule set `rules_digest`, or `None` when the layer has no
/// digest to key it by. The uncompressed digest is preferred: the same content compressed
/// differently is the same layer to the scanner.
fn cache_key(rules_digest: &str, layer: &Layer) -> Option<String> {
    let digest = layer.diff_id.as_ref().or(layer.digest.as_ref())?;
    Some(format!("{}{digest}", key_prefix(rules_digest)))
}

/// What the cache holds for one layer.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct CachedLayer {
    pub walked: WalkedLayer,
    pub findings: Vec<RawFinding>,
    pub skipped: Vec<SkipRecord>,
}

impl CachedLayer {
    /// The entry for layer `index`: its findings (secrets sealed) and skips out of the
    /// image-wide lists.
    fn of_layer(
        index: usize,
        walked: &WalkedLayer,
        raw: &[RawFinding],
        skipped: &[SkipRecord],
        rules: &[Rule],
    ) -> CachedLayer {
        let findings = raw
            .iter()
            .filter(|f| f.layer == Some(index))
            .map(|f| RawFinding {
                secret: f.secret.seal(&rules[f.rule].id),
                ..f.clone()
            })
            .collect();
        CachedLayer {
            walked: walked.clone(),
            findings,
            skipped: skipped
                .iter()
                .filter(|skip| skip.layer_index == index)
                .cloned()
                .collect(),
        }
    }

    /// Reads an entry back for the layer at `index` of the image being scanned (the same
    /// layer may sit at another index in the image that stored it). An entry that no longer
    /// decodes is `None`: the layer is scanned again and the entry overwritten.
    fn decode(bytes: &[u8], index: usize) -> Option<CachedLayer> {
        let mut hit: CachedLayer = serde_json::from_slice(bytes).ok()?;
        for finding in &mut hit.findings {
            finding.layer = Some(index);
        }
        for skip in &mut hit.skipped {
            skip.layer_index = index;
        }
        Some(hit)
    }
}

impl Scanner {
    /// The cached results of layer `index`, if any may be used.
    pub(super) fn cached_layer(&self, image: &Image, index: usize) -> Option<CachedLayer> {
        // Cached results hold sealed secrets: useless when secrets are to be shown.
        if self.options.show_secrets {
            return None;
        }
        let key = cache_key(&self.rules_digest, &image.layers[index])?;
        CachedLayer::decode(&self.cache.as_ref()?.get(&key)?, index)
    }

    /// Stores the results of layer `index`, taken out of the image-wide `raw` and `skipped`.
    pub(super) fn store_layer(
        &self,
        image: &Image,
        index: usize,
        walked: &WalkedLayer,
        raw: &[RawFinding],
        skipped: &[SkipRecord],
    ) {
        let Some(cache) = &self.cache else {
            return;
        };
        let Some(key) = cache_key(&self.rules_digest, &image.layers[index]) else {
            return;
        };
        let entry = CachedLayer::of_layer(index, walked, raw, skipped, self.detector.rules());
        if let Ok(bytes) = serde_json::to_vec(&entry) {
            cache.put(&key, bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::raw::SecretText;
    use crate::scan::raw::tests::in_file;

    fn skip(layer_index: usize, what: &str) -> SkipRecord {
        SkipRecord {
            layer_index,
            what: what.into(),
            reason: "too deep".into(),
            kind: SkipKind::NotScanned,
        }
    }

    #[test]
    fn an_entry_holds_one_layer_with_its_secrets_sealed() {
        let rules = crate::detect::rules::builtin_rules().unwrap();
        let raw = vec![
            in_file(1, "root/.aws/credentials", 0, "AKIAQX3ZEXAMPLEKEY12"),
            in_file(2, "etc/app.env", 0, "s3cr3t-other-layer"),
        ];
        let skipped = vec![skip(1, "app.jar!/x.jar"), skip(2, "other.jar")];
        let entry = CachedLayer::of_layer(1, &WalkedLayer::default(), &raw, &skipped, &rules);
        let bytes = serde_json::to_vec(&entry).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(!text.contains("QX3ZEXAMPLEKEY12"), "{text}");
        assert!(!text.contains("other-layer") && !text.contains("other.jar"));

        // Read back for an image where the same layer is the fourth.
        let hit = CachedLayer::decode(&bytes, 3).unwrap();
        assert_eq!(hit.findings.len(), 1);
        assert_eq!(hit.findings[0].layer, Some(3));
        assert!(matches!(hit.findings[0].secret, SecretText::Sealed { .. }));
        assert_eq!(hit.skipped, vec![skip(3, "app.jar!/x.jar")]);
        assert!(CachedLayer::decode(b"{\"walked\": 1}", 0).is_none());
    }

    #[test]
    fn keys_name_the_format_the_rules_and_the_uncompressed_digest() {
        let diff_id = crate::source::Digest::of(b"layer");
        let blob = crate::source::Digest::of(b"blob");
        let mut layer = Layer {
            digest: None,
            diff_id: None,
            media_type: None,
            size: 0,
            blob: crate::source::LayerBlob::Absent("not needed for a key".into()),
        };
        assert_eq!(cache_key("rules", &layer), None);
        layer.digest = Some(blob.clone());
        assert_eq!(
            cache_key("rules", &layer).unwrap(),
            format!("layer/v{CACHE_FORMAT}/rules/{blob}")
        );
        layer.diff_id = Some(diff_id.clone());
        assert_eq!(
            cache_key("rules", &layer).unwrap(),
            format!("layer/v{CACHE_FORMAT}/rules/{diff_id}")
        );
    }
}
