//! Where swept images go: the seam between listing a registry and getting its images a
//! result. [`SweepTarget`] asks whether an image already has one and hands over those that
//! do not; [`LocalTarget`] scans them in this process, with the same scanner and result cache
//! as `stowaway scan`. The shared store's work queue is another implementation of the same
//! trait (`queued.rs`): `submit` enqueues and answers [`Submitted::Queued`].

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Condvar, Mutex};

use anyhow::{Context, Result, anyhow};

use crate::detect::Severity;
use crate::report::Report;
use crate::scan::Scanner;
use crate::source::registry::{self, RegistryOptions};
use crate::store::ResultStore;
use crate::store::embedded::Cache;

/// One image a sweep found: a manifest digest and the tags that name it.
#[derive(Clone, Debug)]
pub struct SweepImage {
    /// The manifest digest (a platform's, for an index), which results are keyed by.
    pub digest: String,
    /// `HOST/REPOSITORY@DIGEST`: what a scan reads.
    pub reference: String,
    /// `REPOSITORY:TAG` of every tag that names it, for messages.
    pub names: Vec<String>,
    /// Its layer digests, base first.
    pub layers: Vec<String>,
}

/// What is known of an image's result.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Findings per severity.
    pub by_severity: BTreeMap<Severity, usize>,
    /// Layers scanned for this result (0 for a result that already existed).
    pub layers_scanned: usize,
    /// Layers whose results were read back from the layer cache.
    pub layers_reused: usize,
}

/// What [`SweepTarget::submit`] did with an image.
#[derive(Debug)]
pub enum Submitted {
    /// Scanned now; the result is stored.
    Scanned(Outcome),
    /// Handed to someone else (a work queue): no result yet.
    Queued,
}

/// Where a sweep sends the images it finds. Called from `--jobs` threads at once.
pub trait SweepTarget: Sync {
    /// The result already stored for `digest` under the current rules, if any.
    fn existing(&self, digest: &str) -> Result<Option<Outcome>>;

    /// Gets `image` a result (or queues it for one).
    fn submit(&self, image: &SweepImage) -> Result<Submitted>;
}

/// The outcome a stored report (JSON) tells: its findings, and with `with_layers` the layers
/// its scan walked and read back (a report found already stored cost this sweep none). `None`
/// when it does not read.
pub fn outcome_of(json: &[u8], with_layers: bool) -> Option<Outcome> {
    let report = serde_json::from_slice::<Report>(json).ok()?;
    let mut outcome = Outcome::default();
    for image in &report.images {
        let stats = &image.stats;
        for (severity, count) in &stats.by_severity {
            *outcome.by_severity.entry(*severity).or_default() += count;
        }
        if with_layers {
            // Saturating: the store's bytes are not trusted to add up.
            outcome.layers_scanned += stats
                .layers
                .saturating_sub(stats.layers_from_cache + stats.layers_skipped);
            outcome.layers_reused += stats.layers_from_cache;
        }
    }
    Some(outcome)
}

/// Scans in this process: the scanner `scan` builds, its reports and layer results in the
/// result cache.
pub struct LocalTarget {
    scanner: Scanner,
    cache: Arc<Cache>,
    options: RegistryOptions,
    claims: Claims,
}

impl LocalTarget {
    /// A target scanning with `scanner` (which should read and fill `cache`'s layer results),
    /// pulling with `options`.
    pub fn new(scanner: Scanner, cache: Arc<Cache>, options: RegistryOptions) -> LocalTarget {
        LocalTarget {
            scanner,
            cache,
            options,
            claims: Claims::default(),
        }
    }

    /// The rules digest its results are stored under.
    pub fn rules_digest(&self) -> &str {
        self.scanner.cache_digest()
    }

    fn scan(&self, image: &SweepImage) -> Result<Outcome> {
        let mut images = registry::open(&image.reference, &self.options)?;
        // A digest names one manifest: never an index here, so one image.
        let image_read = images
            .pop()
            .filter(|_| images.is_empty())
            .ok_or_else(|| anyhow!("{} is not one image", image.reference))?;
        let report = self
            .scanner
            .scan_image(&image_read)
            .map_err(|err| self.scanner.redacted_error(&err))?;
        crate::store::store_image_report(
            self.cache.as_ref(),
            self.scanner.cache_digest(),
            &report,
            false,
        );
        let stats = &report.stats;
        Ok(Outcome {
            by_severity: stats.by_severity.clone(),
            layers_scanned: stats.layers - stats.layers_from_cache - stats.layers_skipped,
            layers_reused: stats.layers_from_cache,
        })
    }
}

impl SweepTarget for LocalTarget {
    fn existing(&self, digest: &str) -> Result<Option<Outcome>> {
        let json = self.cache.get_report(self.scanner.cache_digest(), digest)?;
        // A stored report that no longer reads is no result: the image is scanned again.
        Ok(json.and_then(|json| outcome_of(&json, false)))
    }

    fn submit(&self, image: &SweepImage) -> Result<Submitted> {
        let claim = self.claims.acquire(&image.layers);
        let outcome = self
            .scan(image)
            .with_context(|| image.names.first().cloned().unwrap_or_default())?;
        claim.succeeded();
        Ok(Submitted::Scanned(outcome))
    }
}

/// Which layers scans in flight are scanning now. An image waits until none of its layers
/// that no scan has finished yet is being scanned by another: the first image with a shared
/// base layer scans it, and the ones after read it back from the layer cache instead of
/// scanning it at the same time. An image takes all its claims at once, and a scan holding
/// claims waits for none, so no two scans can wait on each other.
#[derive(Default)]
struct Claims {
    state: Mutex<ClaimState>,
    changed: Condvar,
}

#[derive(Default)]
struct ClaimState {
    in_flight: HashSet<String>,
    done: HashSet<String>,
}

impl Claims {
    fn acquire(&self, layers: &[String]) -> Claim<'_> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let pending: Vec<String> = layers
                .iter()
                .filter(|layer| !state.done.contains(*layer))
                .cloned()
                .collect();
            if pending.iter().all(|layer| !state.in_flight.contains(layer)) {
                state.in_flight.extend(pending.iter().cloned());
                return Claim {
                    claims: self,
                    layers: pending,
                    succeeded: false,
                };
            }
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// The layers one scan claimed; released when it ends, and marked done when it succeeded.
struct Claim<'a> {
    claims: &'a Claims,
    layers: Vec<String>,
    succeeded: bool,
}

impl Claim<'_> {
    fn succeeded(mut self) {
        self.succeeded = true;
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        let mut state = self.claims.state.lock().unwrap_or_else(|e| e.into_inner());
        for layer in self.layers.drain(..) {
            state.in_flight.remove(&layer);
            if self.succeeded {
                state.done.insert(layer);
            }
        }
        drop(state);
        self.claims.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn layers(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn a_shared_layer_in_flight_holds_back_the_next_image_until_done() {
        let claims = Arc::new(Claims::default());
        let first = claims.acquire(&layers(&["base", "a"]));
        let waiter = {
            let claims = Arc::clone(&claims);
            std::thread::spawn(move || {
                let claim = claims.acquire(&layers(&["base", "b"]));
                // `base` was done by the first image: only `b` is this image's to scan.
                assert_eq!(claim.layers, layers(&["b"]));
            })
        };
        // An image sharing nothing goes ahead at once.
        drop(claims.acquire(&layers(&["c"])));
        std::thread::sleep(Duration::from_millis(50));
        assert!(!waiter.is_finished());
        first.succeeded();
        waiter.join().unwrap();
    }

    #[test]
    fn a_failed_scan_leaves_its_layers_to_the_next() {
        let claims = Claims::default();
        drop(claims.acquire(&layers(&["base"])));
        assert_eq!(claims.acquire(&layers(&["base"])).layers, layers(&["base"]));
    }
}
