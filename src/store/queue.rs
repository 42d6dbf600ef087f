//! Scan work shared by every process on one Redis-protocol server: a stream per rule set
//! (`stowaway:scans/RULES`) read by one consumer group (`scanners`). Servers add work (`XADD`);
//! scan threads of `stowaway worker` and of servers read it (`XREADGROUP`), each entry
//! delivered to one of them, and acknowledge it when done (`XACK`, then `XDEL`).
//!
//! - Deduplicated while in flight: adding work first sets `stowaway:scan/RULES/KEY` (`SET NX`
//!   with an expiry), so an image queued or being scanned anywhere is not queued again.
//! - A consumer that dies mid-scan leaves its entry pending: after the visibility timeout
//!   without a sign of life another consumer claims it (`XAUTOCLAIM`). A live consumer renews
//!   its claim while it scans ([`SharedQueue::keep_claim`]), so a long scan is never taken from
//!   it.
//! - A scan that fails is added again with its attempt counted (a claim after a death counts
//!   too); after the last attempt the work is buried: a dead-letter record
//!   (`stowaway:dead/RULES/KEY`, the error) that `GET /reports/{digest}` and admissions show,
//!   until it expires or the image is asked for again.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamPendingCountReply, StreamReadReply};

use super::redis::{KEY_PREFIX, RedisStore};

/// The consumer group every scanning process joins.
const GROUP: &str = "scanners";

/// How long a dead-letter record is kept.
const DEAD_LETTER_TTL: Duration = Duration::from_secs(3600);

/// One piece of work, as delivered to a consumer.
#[derive(Debug, Clone)]
pub struct Work {
    /// The stream entry.
    pub id: String,
    pub reference: String,
    pub digest: Option<String>,
    /// 1 for the first try; counts failed tries and claims after a consumer died.
    pub attempt: u32,
}

/// What became of work offered to the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offered {
    Queued,
    /// The same key is queued or being scanned somewhere.
    AlreadyPending,
    /// `capacity` scans wait already.
    Full,
}

/// The shared scan queue of one rule set.
pub struct SharedQueue {
    store: Arc<RedisStore>,
    rules_digest: String,
    stream: String,
    /// How long a delivered entry may go without a sign of life before another consumer may
    /// claim it.
    pub visibility: Duration,
    /// Tries before work is buried.
    pub max_attempts: u32,
}

impl SharedQueue {
    pub fn new(
        store: Arc<RedisStore>,
        rules_digest: &str,
        visibility: Duration,
        max_attempts: u32,
    ) -> SharedQueue {
        SharedQueue {
            store,
            rules_digest: rules_digest.to_string(),
            stream: format!("{KEY_PREFIX}scans/{rules_digest}"),
            visibility: visibility.max(Duration::from_secs(1)),
            max_attempts: max_attempts.max(1),
        }
    }

    fn pending_key(&self, key: &str) -> String {
        format!("{KEY_PREFIX}scan/{}/{key}", self.rules_digest)
    }

    fn dead_key(&self, key: &str) -> String {
        format!("{KEY_PREFIX}dead/{}/{key}", self.rules_digest)
    }

    /// How long the in-flight mark lives without renewal: every attempt may wait out a
    /// visibility timeout.
    fn pending_ttl(&self) -> u64 {
        (self.visibility.as_secs().max(1) + 60) * u64::from(self.max_attempts + 1)
    }

    /// Creates the stream and its group when missing (every process does, first one wins).
    pub fn ensure_group(&self) -> Result<()> {
        let created = self.store.call("XGROUP", |connection| {
            redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(&self.stream)
                .arg(GROUP)
                .arg("0")
                .arg("MKSTREAM")
                .query::<()>(connection)
        });
        match created {
            Err(err) if format!("{err:#}").contains("BUSYGROUP") => Ok(()),
            other => other,
        }
    }

    /// Adds work for `key` (a digest, or the reference when no digest is known) unless the
    /// same key is queued or being scanned; a dead letter of the key is cleared (asking again
    /// is a new try).
    pub fn offer(
        &self,
        key: &str,
        reference: &str,
        digest: Option<&str>,
        capacity: usize,
    ) -> Result<Offered> {
        let mark = self.pending_key(key);
        let ttl = self.pending_ttl();
        let fresh: Option<String> = self.store.call("SET", |connection| {
            redis::cmd("SET")
                .arg(&mark)
                .arg(reference)
                .arg("NX")
                .arg("EX")
                .arg(ttl)
                .query(connection)
        })?;
        if fresh.is_none() {
            return Ok(Offered::AlreadyPending);
        }
        let dead = self.dead_key(key);
        let full = self.depth()?.0 >= capacity as u64;
        let release = if full { &mark } else { &dead };
        self.store.call("DEL", |connection| {
            redis::cmd("DEL").arg(release).query::<()>(connection)
        })?;
        if full {
            return Ok(Offered::Full);
        }
        self.add(reference, digest, 1)?;
        Ok(Offered::Queued)
    }

    fn add(&self, reference: &str, digest: Option<&str>, attempt: u32) -> Result<()> {
        self.store.call("XADD", |connection| {
            let mut command = redis::cmd("XADD");
            command
                .arg(&self.stream)
                .arg("*")
                .arg("reference")
                .arg(reference)
                .arg("attempt")
                .arg(attempt);
            if let Some(digest) = digest {
                command.arg("digest").arg(digest);
            }
            command.query::<String>(connection)
        })?;
        Ok(())
    }

    /// Whether work for `key` is queued or being scanned anywhere.
    pub fn is_pending(&self, key: &str) -> Result<bool> {
        let mark = self.pending_key(key);
        self.store.call("EXISTS", |connection| {
            redis::cmd("EXISTS").arg(&mark).query::<bool>(connection)
        })
    }

    /// [`SharedQueue::is_pending`] for many keys, in pipelines of a thousand: one round trip
    /// each, for a sweep waiting on a registry's worth of images.
    pub fn are_pending(&self, keys: &[&str]) -> Result<Vec<bool>> {
        let mut pending = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(1000) {
            let answers: Vec<bool> = self.store.call("EXISTS", |connection| {
                let mut pipe = redis::pipe();
                for key in chunk {
                    pipe.cmd("EXISTS").arg(self.pending_key(key));
                }
                pipe.query(connection)
            })?;
            pending.extend(answers);
        }
        Ok(pending)
    }

    /// The error that buried the work for `key`, if it was.
    pub fn dead_letter(&self, key: &str) -> Result<Option<String>> {
        let dead = self.dead_key(key);
        self.store.call("GET", |connection| {
            redis::cmd("GET").arg(&dead).query(connection)
        })
    }

    /// The next work for `consumer`: an entry another consumer left unrenewed past the
    /// visibility timeout first, else a new one (waiting up to `block`).
    pub fn next(&self, consumer: &str, block: Duration) -> Result<Option<Work>> {
        match self.claim_stalled(consumer) {
            Ok(Some(work)) => return Ok(Some(work)),
            Ok(None) => {}
            // The store was down at start (or emptied since): the group is made now.
            Err(err) if format!("{err:#}").contains("NOGROUP") => {
                self.ensure_group()?;
                return Ok(None);
            }
            Err(err) => return Err(err),
        }
        let reply: Option<StreamReadReply> = self.store.call("XREADGROUP", |connection| {
            redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg(GROUP)
                .arg(consumer)
                .arg("COUNT")
                .arg(1)
                .arg("BLOCK")
                .arg(block.as_millis() as u64)
                .arg("STREAMS")
                .arg(&self.stream)
                .arg(">")
                .query(connection)
        })?;
        let entry = reply
            .into_iter()
            .flat_map(|reply| reply.keys)
            .flat_map(|key| key.ids)
            .next();
        Ok(entry.map(|entry| work_of(&entry, 0)))
    }

    fn claim_stalled(&self, consumer: &str) -> Result<Option<Work>> {
        let idle = self.visibility.as_millis() as u64;
        let reply: StreamAutoClaimReply = self.store.call("XAUTOCLAIM", |connection| {
            redis::cmd("XAUTOCLAIM")
                .arg(&self.stream)
                .arg(GROUP)
                .arg(consumer)
                .arg(idle)
                .arg("0-0")
                .arg("COUNT")
                .arg(1)
                .query(connection)
        })?;
        let Some(entry) = reply.claimed.into_iter().next() else {
            return Ok(None);
        };
        // Each delivery after the first was a consumer that went silent: it counts as a try.
        let pending: StreamPendingCountReply = self.store.call("XPENDING", |connection| {
            redis::cmd("XPENDING")
                .arg(&self.stream)
                .arg(GROUP)
                .arg(&entry.id)
                .arg(&entry.id)
                .arg(1)
                .query(connection)
        })?;
        let delivered = pending.ids.first().map_or(1, |id| id.times_delivered);
        Ok(Some(work_of(&entry, delivered.saturating_sub(1) as u32)))
    }

    /// Renews `consumer`'s claim on `work` (and the in-flight mark), so no one else takes it.
    pub fn keep_claim(&self, consumer: &str, work: &Work, key: &str) -> Result<()> {
        let mark = self.pending_key(key);
        let ttl = self.pending_ttl();
        self.store.call("XCLAIM", |connection| {
            redis::pipe()
                .cmd("XCLAIM")
                .arg(&self.stream)
                .arg(GROUP)
                .arg(consumer)
                .arg(0)
                .arg(&work.id)
                .arg("JUSTID")
                .ignore()
                .cmd("EXPIRE")
                .arg(&mark)
                .arg(ttl)
                .ignore()
                .query::<()>(connection)
        })
    }

    /// The work is done: acknowledged, removed, no longer in flight.
    pub fn done(&self, work: &Work, key: &str) -> Result<()> {
        self.finish(work, Some(&self.pending_key(key)))
    }

    /// The work failed and has tries left: added again with its attempt counted.
    pub fn retry(&self, work: &Work) -> Result<()> {
        self.add(&work.reference, work.digest.as_deref(), work.attempt + 1)?;
        self.finish(work, None)
    }

    /// The work failed its last try: a dead-letter record says why.
    pub fn bury(&self, work: &Work, key: &str, error: &str) -> Result<()> {
        let dead = self.dead_key(key);
        let record = format!("{error} (after {} attempts)", work.attempt);
        self.store.call("SET", |connection| {
            redis::cmd("SET")
                .arg(&dead)
                .arg(&record)
                .arg("EX")
                .arg(DEAD_LETTER_TTL.as_secs())
                .query::<()>(connection)
        })?;
        self.finish(work, Some(&self.pending_key(key)))
    }

    fn finish(&self, work: &Work, mark: Option<&str>) -> Result<()> {
        self.store.call("XACK", |connection| {
            let mut pipe = redis::pipe();
            pipe.cmd("XACK")
                .arg(&self.stream)
                .arg(GROUP)
                .arg(&work.id)
                .ignore()
                .cmd("XDEL")
                .arg(&self.stream)
                .arg(&work.id)
                .ignore();
            if let Some(mark) = mark {
                pipe.cmd("DEL").arg(mark).ignore();
            }
            pipe.query::<()>(connection)
        })
    }

    /// (waiting, in flight): entries not yet delivered, and delivered but not acknowledged.
    pub fn depth(&self) -> Result<(u64, u64)> {
        let (length, pending): (u64, Vec<redis::Value>) =
            self.store.call("XLEN", |connection| {
                redis::pipe()
                    .cmd("XLEN")
                    .arg(&self.stream)
                    .cmd("XPENDING")
                    .arg(&self.stream)
                    .arg(GROUP)
                    .query(connection)
            })?;
        let in_flight = match pending.first() {
            Some(redis::Value::Int(count)) => *count as u64,
            _ => 0,
        };
        Ok((length.saturating_sub(in_flight), in_flight))
    }
}

/// The work an entry holds; `retried` deliveries are added to its attempt.
fn work_of(entry: &StreamId, retried: u32) -> Work {
    let attempt: u32 = entry.get("attempt").unwrap_or(1);
    Work {
        id: entry.id.clone(),
        reference: entry.get("reference").unwrap_or_default(),
        digest: entry.get("digest"),
        attempt: attempt + retried,
    }
}
