//! Sweeping onto a shared store (`--store`): [`QueueTarget`] answers from the store's reports
//! and hands images without one to the store's scan queue (`store/queue.rs`), where
//! `stowaway worker` processes and `serve` replicas with the same rules take them. The sweep
//! ends once they are queued, or ([`QueueTarget::wait`], `--wait`) once each has a report or a
//! dead letter, within a timeout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};

use super::target::{Outcome, Submitted, SweepImage, SweepTarget, outcome_of};
use crate::store::ResultStore;
use crate::store::queue::SharedQueue;
use crate::store::redis::RedisStore;

/// How long a queued image may wait for a consumer before another may take it over, as far as
/// the sweep's own in-flight mark is concerned: workers renew the mark with their own timeout
/// once they take the work.
const VISIBILITY: Duration = Duration::from_secs(660);

/// Tries before work is given up, as `serve` and `worker` default to.
const MAX_ATTEMPTS: u32 = 3;

/// How often `--wait` asks the store about the images still outstanding.
const POLL: Duration = Duration::from_millis(250);

/// Queues images on a shared store's scan queue.
pub struct QueueTarget {
    store: Arc<RedisStore>,
    queue: SharedQueue,
    rules_digest: String,
}

impl QueueTarget {
    /// A target on `store` for the rule set `rules_digest`. The store must answer now: a sweep
    /// without its queue can do nothing.
    pub fn open(store: Arc<RedisStore>, rules_digest: &str) -> Result<QueueTarget> {
        store
            .check()
            .context("sweep --store queues its work on the shared store")?;
        let queue = SharedQueue::new(Arc::clone(&store), rules_digest, VISIBILITY, MAX_ATTEMPTS);
        queue.ensure_group()?;
        Ok(QueueTarget {
            store,
            queue,
            rules_digest: rules_digest.to_string(),
        })
    }

    /// The rules digest reports and work are keyed by.
    pub fn rules_digest(&self) -> &str {
        &self.rules_digest
    }

    /// Waits until each of `images` has a report (its outcome) or was given up (its dead
    /// letter as the error), at most `timeout`; what is still outstanding then fails, saying
    /// so. `done` is called once per image settled.
    pub fn wait(
        &self,
        images: &[&SweepImage],
        timeout: Duration,
        done: &dyn Fn(),
    ) -> Vec<Result<Outcome>> {
        let give_up = Instant::now() + timeout;
        let mut settled: Vec<Option<Result<Outcome>>> = images.iter().map(|_| None).collect();
        let mut last_error = None;
        loop {
            let outstanding: Vec<usize> = (0..images.len())
                .filter(|&at| settled[at].is_none())
                .collect();
            if outstanding.is_empty() {
                break;
            }
            // The store may come back before the timeout.
            if let Err(err) = self.settle(images, &outstanding, &mut settled, done) {
                last_error = Some(format!("{err:#}"));
            }
            if settled.iter().all(Option::is_some) || Instant::now() >= give_up {
                break;
            }
            std::thread::sleep(POLL);
        }
        let mut timed_out = format!(
            "no result within --wait {}s: still queued or being scanned (are `stowaway worker` processes running on this store with the same rules?)",
            timeout.as_secs()
        );
        if let Some(error) = &last_error {
            timed_out.push_str(&format!("; last store error: {error}"));
        }
        settled
            .into_iter()
            .map(|slot| slot.unwrap_or_else(|| Err(anyhow!(timed_out.clone()))))
            .collect()
    }

    /// Fills in `settled` for the images at `outstanding` that are no longer queued or being
    /// scanned: their outcome once they have a report; their dead letter, or the work's loss,
    /// as an error.
    fn settle(
        &self,
        images: &[&SweepImage],
        outstanding: &[usize],
        settled: &mut [Option<Result<Outcome>>],
        done: &dyn Fn(),
    ) -> Result<()> {
        let digests: Vec<&str> = outstanding
            .iter()
            .map(|&at| images[at].digest.as_str())
            .collect();
        // Asked first: a worker stores the report (or the dead letter) before it clears the
        // mark, so an image no longer pending has one or the other unless its work was lost.
        let pending = self.queue.are_pending(&digests)?;
        for (&at, pending) in outstanding.iter().zip(pending) {
            if pending {
                continue;
            }
            let digest = &images[at].digest;
            let result = match self.store.get_report(&self.rules_digest, digest)? {
                // A report that does not read counts as scanned, its counts unknown.
                Some(json) => Ok(outcome_of(&json, true).unwrap_or_default()),
                None => Err(match self.queue.dead_letter(digest)? {
                    Some(reason) => anyhow!(reason),
                    None => {
                        anyhow!("left the scan queue without a result (its in-flight mark expired)")
                    }
                }),
            };
            settled[at] = Some(result);
            done();
        }
        Ok(())
    }
}

impl SweepTarget for QueueTarget {
    fn existing(&self, digest: &str) -> Result<Option<Outcome>> {
        let json = self.store.get_report(&self.rules_digest, digest)?;
        // A stored report that no longer reads is no result: the image is queued again.
        Ok(json.and_then(|json| outcome_of(&json, false)))
    }

    fn submit(&self, image: &SweepImage) -> Result<Submitted> {
        // Already queued or being scanned (by a server's request, another sweep) is as good:
        // waiting for it is waiting for the same report.
        self.queue.offer(
            &image.digest,
            &image.reference,
            Some(&image.digest),
            usize::MAX,
        )?;
        Ok(Submitted::Queued)
    }
}
