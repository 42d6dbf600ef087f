//! Per-layer results kept across scans, so a layer shared by many images is walked and matched
//! once: what the cache key holds, how a layer's results are encoded (secrets sealed, never in
//! the clear), and how an entry is read back into the scan.

use serde::{Deserialize, Serialize};

use super::Scanner;
use super::assemble::OverLimit;
use super::packages::LayerPackages;
use super::pipeline::Matched;
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
    /// Claims the scan of the layer under `key` for this caller: `false` while another holds
    /// the claim (it is scanning that layer now, and will store its result). Only a cache
    /// shared by processes needs claims; one process's scans never refuse each other here
    /// (a sweep keeps its own claims in memory).
    fn claim(&self, _key: &str) -> bool {
        true
    }
    /// Keeps a claim alive while its scan runs (claims expire, so a process that dies holding
    /// one does not hold it for long).
    fn renew(&self, _key: &str) {}
    /// Gives up a claim: the layer's result is stored, or its scan failed.
    fn release(&self, _key: &str) {}
}

/// Version of the cached-layer encoding, part of the key. 2: `WalkedLayer` no longer records
/// symlinks. 3: layers are read as Go's `archive/tar` reads them, so a layer walked before may
/// have hidden files from the scan; irregular entries are reported as skipped. 4: skipped items
/// say whether they were not scanned or only irregular (entries of 3 would read all as not
/// scanned). 5: a layer keeps its package-database files and shallow symlinks, and findings
/// the digests of their file, for package provenance (issue 11). 6: findings are capped per
/// file (the limit is in the key), with the counts of those left out. 7: file digests include
/// SHA-224 and SHA-384 (rpm's other digest algorithms), and matches inside a jar carry the
/// jar's Maven identity. 8: sealed secrets keep their value's identity (one finding per
/// secret and its other places), and matches their masked line.
const CACHE_FORMAT: u32 = 8;

/// The start of every layer key this build reads and writes under the rule set
/// `rules_digest`. An entry under any other prefix (other rules, an older encoding) can never be
/// read again.
pub(crate) fn key_prefix(rules_digest: &str) -> String {
    format!("layer/v{CACHE_FORMAT}/{rules_digest}/")
}

/// The cache key of `layer` under the rule set `rules_digest`, or `None` when the layer has no
/// digest to key it by. The uncompressed digest is preferred: the same content compressed
/// differently is the same layer to the scanner.
/// The per-file limit the results were capped at is part of the key: results capped at one
/// limit cannot serve a scan that asks for more.
fn cache_key(rules_digest: &str, layer: &Layer, per_file_limit: usize) -> Option<String> {
    let digest = layer.diff_id.as_ref().or(layer.digest.as_ref())?;
    Some(format!(
        "{}{digest}/per-file-{per_file_limit}",
        key_prefix(rules_digest)
    ))
}

/// What the cache holds for one layer.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct CachedLayer {
    pub walked: WalkedLayer,
    /// The layer's package-database files, so a cached layer still gives provenance.
    pub packages: LayerPackages,
    pub findings: Vec<RawFinding>,
    pub skipped: Vec<SkipRecord>,
    /// Per file, the findings the per-file limit left out.
    #[serde(default)]
    pub over_limit: Vec<OverLimit>,
}

/// `items` split by layer (`layer_of`), in one pass: `layers` lists, each in the order given.
/// Items of no layer or of a layer past the end are left out.
pub(super) fn by_layer<T>(
    items: &[T],
    layer_of: impl Fn(&T) -> Option<usize>,
    layers: usize,
) -> Vec<Vec<&T>> {
    let mut split: Vec<Vec<&T>> = (0..layers).map(|_| Vec::new()).collect();
    for item in items {
        if let Some(list) = layer_of(item).and_then(|layer| split.get_mut(layer)) {
            list.push(item);
        }
    }
    split
}

impl CachedLayer {
    /// The entry for a layer: its findings (secrets sealed) and skips.
    fn of_layer(
        walked: &WalkedLayer,
        packages: &LayerPackages,
        raw: &[&RawFinding],
        skipped: &[&SkipRecord],
        over_limit: &[&OverLimit],
        rules: &[Rule],
    ) -> CachedLayer {
        let findings = raw
            .iter()
            .map(|f| RawFinding {
                secret: f.secret.seal(&rules[f.rule].id),
                ..(*f).clone()
            })
            .collect();
        CachedLayer {
            walked: walked.clone(),
            packages: packages.clone(),
            findings,
            skipped: skipped.iter().map(|skip| (*skip).clone()).collect(),
            over_limit: over_limit.iter().map(|over| (*over).clone()).collect(),
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
        for over in &mut hit.over_limit {
            over.item.layer = Some(index);
        }
        Some(hit)
    }
}

impl Scanner {
    /// The cache key of layer `index` of `image`, when results may be cached for it.
    pub(super) fn layer_key(&self, image: &Image, index: usize) -> Option<String> {
        // Cached results hold sealed secrets: useless when secrets are to be shown.
        if self.options.show_secrets {
            return None;
        }
        cache_key(
            &self.rules_digest,
            &image.layers[index],
            self.options.max_findings_per_file,
        )
    }

    /// The cached results of layer `index`, if any may be used.
    pub(super) fn cached_layer(&self, image: &Image, index: usize) -> Option<CachedLayer> {
        let key = self.layer_key(image, index)?;
        CachedLayer::decode(&self.cache.as_ref()?.get(&key)?, index)
    }

    /// Stores the results of the freshly walked layers `fresh` out of the image-wide `raw`
    /// and `skipped` (which must hold no other layer's), splitting them by layer once.
    pub(super) fn store_layers(
        &self,
        image: &Image,
        walked: &[WalkedLayer],
        packages: &[LayerPackages],
        fresh: &[usize],
        results: &Matched,
    ) {
        if self.cache.is_none() {
            return;
        }
        let layers = walked.len();
        let raw = by_layer(&results.raw, |f| f.layer, layers);
        let skipped = by_layer(&results.skipped, |s| Some(s.layer_index), layers);
        let over_limit = by_layer(&results.over_limit, |o| o.item.layer, layers);
        for &index in fresh {
            let entry = CachedLayer::of_layer(
                &walked[index],
                &packages[index],
                &raw[index],
                &skipped[index],
                &over_limit[index],
                self.detector.rules(),
            );
            self.store_layer(image, index, &entry);
        }
    }

    /// Stores `entry` as the results of layer `index`.
    fn store_layer(&self, image: &Image, index: usize, entry: &CachedLayer) {
        let Some(cache) = &self.cache else {
            return;
        };
        let Some(key) = cache_key(
            &self.rules_digest,
            &image.layers[index],
            self.options.max_findings_per_file,
        ) else {
            return;
        };
        if let Ok(bytes) = serde_json::to_vec(entry) {
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
        let raw = by_layer(&raw, |f| f.layer, 3);
        let skipped = by_layer(&skipped, |s| Some(s.layer_index), 3);
        assert_eq!((raw[0].len(), raw[2].len(), skipped[2].len()), (0, 1, 1));
        let packages = LayerPackages::default();
        let entry = CachedLayer::of_layer(
            &WalkedLayer::default(),
            &packages,
            &raw[1],
            &skipped[1],
            &[],
            &rules,
        );
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
        assert_eq!(cache_key("rules", &layer, 100), None);
        layer.digest = Some(blob.clone());
        assert_eq!(
            cache_key("rules", &layer, 100).unwrap(),
            format!("layer/v{CACHE_FORMAT}/rules/{blob}/per-file-100")
        );
        layer.diff_id = Some(diff_id.clone());
        assert_eq!(
            cache_key("rules", &layer, 100).unwrap(),
            format!("layer/v{CACHE_FORMAT}/rules/{diff_id}/per-file-100")
        );
    }
}
