//! Claims on layers in a shared layer cache, so that two processes scanning two images with
//! a layer in common at the same time scan it once: before walking, a scan claims every layer
//! the cache has no result for; a layer another process has claimed is waited for (its result
//! then read back from the cache) instead of walked again. Claims are taken in key order and
//! a scan waits only for claims above those it holds, so no two scans wait on each other; the
//! wait is bounded ([`CLAIM_WAIT`]), after which the layer is scanned here anyway, and a claim
//! whose holder died expires in the cache.

use std::time::{Duration, Instant};

use super::Scanner;
use super::layer_cache::{CachedLayer, LayerCache};
use crate::source::Image;

/// The longest a scan waits for layers other scans have claimed, in all.
pub(crate) const CLAIM_WAIT: Duration = Duration::from_secs(300);

/// How often a waiting scan asks again.
const POLL: Duration = Duration::from_millis(100);

/// The claims one scan holds; given up when dropped (after its results are stored, or when it
/// failed).
pub(super) struct LayerClaims<'a> {
    cache: Option<&'a dyn LayerCache>,
    keys: Vec<String>,
}

impl Drop for LayerClaims<'_> {
    fn drop(&mut self) {
        if let Some(cache) = self.cache {
            for key in self.keys.drain(..) {
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
    ) -> LayerClaims<'_> {
        let cache = self.cache.as_deref();
        let mut claims = LayerClaims {
            cache,
            keys: Vec::new(),
        };
        let Some(cache) = cache else {
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
                    None => claims.keys.push(key.clone()),
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
