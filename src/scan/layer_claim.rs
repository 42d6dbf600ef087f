//! Claims on layers in a shared layer cache, so that two processes scanning two images with
//! a layer in common at the same time scan it once: before walking, a scan claims every layer
//! the cache has no result for; a layer another process has claimed is waited for (its result
//! then read back from the cache) instead of walked again. Claims are taken in key order and
//! a scan waits only for claims above those it holds, so no two scans wait on each other; the
//! wait is bounded ([`CLAIM_WAIT`]), after which the layer is scanned here anyway. A claim
//! lives [`CLAIM_TTL`] in the cache and is renewed while its scan runs, so the claims of a
//! process that died are free again within that time.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::Scanner;
use super::layer_cache::{CachedLayer, LayerCache};
use crate::source::Image;

/// The longest a scan waits for layers other scans have claimed, in all.
const CLAIM_WAIT: Duration = Duration::from_secs(300);

/// How long a claim lives in the cache unless renewed; renewed every third of it.
pub(crate) const CLAIM_TTL: Duration = Duration::from_secs(15);

/// How often a waiting scan asks again.
const POLL: Duration = Duration::from_millis(100);

/// The claims one scan holds, renewed by a thread of their own until they are dropped (after
/// the scan's results are stored, or when it failed) and given up.
pub(super) struct LayerClaims {
    cache: Option<Arc<dyn LayerCache>>,
    keys: Arc<Mutex<Vec<String>>>,
    renewal: Option<(mpsc::Sender<()>, JoinHandle<()>)>,
}

impl LayerClaims {
    fn new(cache: Option<Arc<dyn LayerCache>>) -> LayerClaims {
        LayerClaims {
            cache,
            keys: Arc::default(),
            renewal: None,
        }
    }

    /// Holds `key` (claimed) until dropped.
    fn hold(&mut self, key: String) {
        self.keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(key);
        if self.renewal.is_some() {
            return;
        }
        let Some(cache) = self.cache.clone() else {
            return;
        };
        let keys = Arc::clone(&self.keys);
        let (stop, stopped) = mpsc::channel::<()>();
        let renewing = std::thread::Builder::new()
            .name("stowaway-claims".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(CLAIM_TTL / 3) {
                    let keys = keys.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    for key in &keys {
                        cache.renew(key);
                    }
                }
            });
        // Without the thread the claims still expire: another scan may then walk a layer too.
        if let Ok(handle) = renewing {
            self.renewal = Some((stop, handle));
        }
    }

    #[cfg(test)]
    fn keys(&self) -> Vec<String> {
        self.keys.lock().unwrap().clone()
    }
}

impl Drop for LayerClaims {
    fn drop(&mut self) {
        if let Some((stop, handle)) = self.renewal.take() {
            drop(stop);
            let _ = handle.join();
        }
        if let Some(cache) = &self.cache {
            let keys = std::mem::take(&mut *self.keys.lock().unwrap_or_else(|e| e.into_inner()));
            for key in keys {
                cache.release(&key);
            }
        }
    }
}

impl Scanner {
    /// Claims the layers of `image` that `cached` has no result for; a layer claimed by
    /// another scan is waited for and, once its result is stored, filled into `cached`.
    pub(super) fn claim_layers(
        &self,
        image: &Image,
        cached: &mut [Option<CachedLayer>],
    ) -> LayerClaims {
        let mut claims = LayerClaims::new(self.cache.clone());
        let Some(cache) = self.cache.as_deref() else {
            return claims;
        };
        let mut wanted: Vec<(String, usize)> = (0..cached.len())
            .filter(|&index| cached[index].is_none())
            .filter_map(|index| Some((self.layer_key(image, index)?, index)))
            .collect();
        // One layer may sit twice in an image: one claim (the other place is walked too, as
        // without a shared cache).
        wanted.sort();
        wanted.dedup_by(|a, b| a.0 == b.0);
        let give_up = Instant::now() + CLAIM_WAIT;
        let mut next = 0;
        while next < wanted.len() {
            let (key, index) = &wanted[next];
            if cache.claim(key) {
                // The scan that held it may have stored the result as it let go.
                match self.cached_layer(image, *index) {
                    Some(hit) => {
                        cached[*index] = Some(hit);
                        cache.release(key);
                    }
                    None => claims.hold(key.clone()),
                }
                next += 1;
            } else if Instant::now() >= give_up {
                // Waited long enough: scanned here as well, unclaimed.
                next += 1;
            } else {
                std::thread::sleep(POLL);
            }
        }
        claims
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::detect::Detector;
    use crate::scan::ScanOptions;
    use crate::source::config::ImageConfig;
    use crate::source::{Digest, Layer, LayerBlob};

    /// A cache shared by "processes": values and claims, as the Redis store keeps them.
    #[derive(Default)]
    struct Shared {
        values: Mutex<HashMap<String, Vec<u8>>>,
        claims: Mutex<HashSet<String>>,
    }

    impl LayerCache for Shared {
        fn get(&self, key: &str) -> Option<Vec<u8>> {
            self.values.lock().unwrap().get(key).cloned()
        }
        fn put(&self, key: &str, value: Vec<u8>) {
            self.values.lock().unwrap().insert(key.to_string(), value);
        }
        fn claim(&self, key: &str) -> bool {
            self.claims.lock().unwrap().insert(key.to_string())
        }
        fn release(&self, key: &str) {
            self.claims.lock().unwrap().remove(key);
        }
    }

    fn image(layers: &[&str]) -> Image {
        Image {
            reference: "test".into(),
            manifest_digest: None,
            config_digest: Digest::of(b"config"),
            platform: None,
            config: ImageConfig::parse(br#"{"rootfs": {"diff_ids": []}}"#, "config").unwrap(),
            layers: layers
                .iter()
                .map(|name| Layer {
                    digest: None,
                    diff_id: Some(Digest::of(name.as_bytes())),
                    media_type: None,
                    size: 0,
                    blob: LayerBlob::Absent("not read".into()),
                })
                .collect(),
        }
    }

    fn empty_entry() -> Vec<u8> {
        serde_json::to_vec(&CachedLayer {
            walked: Default::default(),
            packages: Default::default(),
            findings: Vec::new(),
            skipped: Vec::new(),
            over_limit: Vec::new(),
        })
        .unwrap()
    }

    #[test]
    fn a_layer_another_scan_claimed_is_waited_for_and_read_back() {
        let shared = Arc::new(Shared::default());
        let detector = Detector::new(crate::detect::rules::builtin_rules().unwrap()).unwrap();
        let scanner = Scanner::new(Arc::new(detector), ScanOptions::default())
            .unwrap()
            .with_cache(Arc::clone(&shared) as Arc<dyn LayerCache>);
        let image = image(&["base", "own"]);
        let base = scanner.layer_key(&image, 0).unwrap();
        let own = scanner.layer_key(&image, 1).unwrap();
        // Another process is scanning the base layer; it stores the result, then lets go.
        assert!(shared.claim(&base));
        let other = {
            let shared = Arc::clone(&shared);
            let base = base.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(300));
                shared.put(&base, empty_entry());
                shared.release(&base);
            })
        };
        let mut cached = vec![None, None];
        let started = Instant::now();
        let claims = scanner.claim_layers(&image, &mut cached);
        assert!(started.elapsed() >= Duration::from_millis(300));
        other.join().unwrap();
        assert!(cached[0].is_some(), "the base layer is read back");
        assert!(cached[1].is_none(), "its own layer is this scan's to walk");
        assert_eq!(claims.keys(), vec![own.clone()]);
        assert!(!shared.claim(&own), "held while the scan runs");
        drop(claims);
        assert!(shared.claims.lock().unwrap().is_empty());
    }
}
