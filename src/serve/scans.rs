//! Background scans: a bounded queue, deduplicated by digest (or by reference when the
//! digest is not known yet), drained by a fixed number of worker threads. Each worker
//! resolves the image in its registry, scans it with the shared scanner (which reads and
//! fills the layer cache), and stores the report in the report cache under its manifest
//! digest. Waiters (admissions) are woken through a watch channel after every scan.
//!
//! With a shared store the queue is the store's ([`SharedQueue`]): work is added there, the
//! worker threads (of this server, and of every `stowaway worker`) take it from there, and
//! what is pending or failed is asked of it, so every replica sees the same.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};

use super::admission::{ReportSummary, summarize};
use super::deadline::ScanDeadline;
use super::metrics::{Metrics, inc};
use crate::report::Report;
use crate::report::skips::plural;
use crate::scan::Scanner;
use crate::source::reference::ResolveOptions;
use crate::store::queue::{Offered, SharedQueue, Work};
use crate::store::{ResultStore, is_unavailable};

/// How long a failed scan is remembered before a new request may try again.
const FAILURE_MEMORY: Duration = Duration::from_secs(60);

/// Parsed reports kept in memory for admissions (cleared when full).
const SUMMARY_MEMORY: usize = 4096;

/// One scan to do.
#[derive(Debug, Clone)]
pub struct Job {
    /// A registry reference, `registry/repository@digest` (or `:tag` when the digest is not
    /// known).
    pub reference: String,
    /// The manifest digest, when known.
    pub digest: Option<String>,
}

impl Job {
    fn key(&self) -> String {
        self.digest
            .clone()
            .unwrap_or_else(|| self.reference.clone())
    }
}

/// What happened to a request to scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    Queued,
    /// The same digest is already queued or being scanned.
    AlreadyPending,
    /// The queue is full; try later.
    Full,
}

/// The state of a digest.
#[derive(Debug, Clone)]
pub enum Lookup {
    Done(Arc<ReportSummary>),
    Failed(String),
    Pending,
    Missing,
    /// The store could not be asked (the reason, one line).
    Unavailable(String),
}

#[derive(Default)]
struct QueueState {
    jobs: VecDeque<Job>,
    /// Keys queued or being scanned.
    pending: HashSet<String>,
    running: usize,
}

/// The scan engine shared by the HTTP handlers and the workers.
pub struct Scans {
    pub cache: Arc<dyn ResultStore>,
    scanner: Scanner,
    rules_digest: String,
    resolve_options: ResolveOptions,
    capacity: usize,
    /// The longest one scan may run.
    scan_timeout: Duration,
    queue: Mutex<QueueState>,
    wake: Condvar,
    stopping: AtomicBool,
    done: tokio::sync::watch::Sender<u64>,
    failures: Mutex<HashMap<String, (String, Instant)>>,
    summaries: Mutex<HashMap<String, Arc<ReportSummary>>>,
    pub metrics: Arc<Metrics>,
    quiet: bool,
    /// The shared queue, when the store is shared.
    shared: Option<SharedQueue>,
}

impl Scans {
    pub fn new(
        cache: Arc<dyn ResultStore>,
        scanner: Scanner,
        resolve_options: ResolveOptions,
        capacity: usize,
        scan_timeout: Duration,
        metrics: Arc<Metrics>,
        quiet: bool,
    ) -> Scans {
        let rules_digest = scanner.detector().rules_digest().to_string();
        let (done, _) = tokio::sync::watch::channel(0);
        Scans {
            cache,
            scanner,
            rules_digest,
            resolve_options,
            capacity: capacity.max(1),
            scan_timeout,
            queue: Mutex::new(QueueState::default()),
            wake: Condvar::new(),
            stopping: AtomicBool::new(false),
            done,
            failures: Mutex::new(HashMap::new()),
            summaries: Mutex::new(HashMap::new()),
            metrics,
            quiet,
            shared: None,
        }
    }

    /// These scans with their work on a shared queue instead of the in-process one.
    pub fn with_shared_queue(mut self, queue: SharedQueue) -> Scans {
        self.shared = Some(queue);
        self
    }

    /// The shared queue, if the work is shared.
    pub fn shared_queue(&self) -> Option<&SharedQueue> {
        self.shared.as_ref()
    }

    /// The digest of the rule set the reports are keyed by.
    pub fn rules_digest(&self) -> &str {
        &self.rules_digest
    }

    pub fn log(&self, message: &str) {
        if !self.quiet {
            eprintln!("stowaway serve: {message}");
        }
    }

    /// A receiver that changes after every finished scan.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.done.subscribe()
    }

    /// (queued, running, capacity)
    /// With a shared queue, `queued` counts what waits there (0 when it cannot be asked).
    pub fn queue_state(&self) -> (usize, usize, usize) {
        let waiting = self
            .shared
            .as_ref()
            .map(|shared| shared.depth().map_or(0, |(waiting, _)| waiting as usize));
        let queue = self.queue.lock().unwrap();
        (
            waiting.unwrap_or(queue.jobs.len()),
            queue.running,
            self.capacity,
        )
    }

    /// Queues a scan unless its digest is already queued, running, or done.
    pub fn enqueue(&self, job: Job) -> Enqueued {
        let key = job.key();
        if let Some(shared) = &self.shared {
            return match shared.offer(&key, &job.reference, job.digest.as_deref(), self.capacity) {
                Ok(Offered::Queued) => {
                    inc(&self.metrics.jobs_queued);
                    Enqueued::Queued
                }
                Ok(Offered::AlreadyPending) => {
                    inc(&self.metrics.jobs_deduplicated);
                    Enqueued::AlreadyPending
                }
                Ok(Offered::Full) => {
                    inc(&self.metrics.jobs_rejected);
                    Enqueued::Full
                }
                Err(err) => {
                    self.log(&format!("cannot queue {}: {err:#}", job.reference));
                    inc(&self.metrics.jobs_rejected);
                    Enqueued::Full
                }
            };
        }
        let mut queue = self.queue.lock().unwrap();
        if queue.pending.contains(&key) {
            inc(&self.metrics.jobs_deduplicated);
            return Enqueued::AlreadyPending;
        }
        if queue.jobs.len() >= self.capacity {
            inc(&self.metrics.jobs_rejected);
            return Enqueued::Full;
        }
        self.failures.lock().unwrap().remove(&key);
        queue.pending.insert(key);
        queue.jobs.push_back(job);
        inc(&self.metrics.jobs_queued);
        drop(queue);
        self.wake.notify_one();
        Enqueued::Queued
    }

    /// The raw JSON report stored for a digest; an error when the store cannot be asked.
    pub fn report_json(&self, digest: &str) -> Result<Option<Vec<u8>>> {
        self.cache.get_report(&self.rules_digest, digest)
    }

    /// What is known about a digest. Reports are parsed once and kept in memory.
    pub fn lookup(&self, digest: &str) -> Lookup {
        if let Some(summary) = self.summaries.lock().unwrap().get(digest) {
            inc(&self.metrics.report_cache_hits);
            return Lookup::Done(Arc::clone(summary));
        }
        let stored = match self.report_json(digest) {
            Ok(stored) => stored,
            Err(err) => {
                inc(&self.metrics.report_cache_misses);
                return Lookup::Unavailable(format!("{err:#}"));
            }
        };
        if let Some(json) = stored {
            match summarize(&json) {
                Ok(summary) => {
                    inc(&self.metrics.report_cache_hits);
                    let summary = Arc::new(summary);
                    let mut memory = self.summaries.lock().unwrap();
                    if memory.len() >= SUMMARY_MEMORY {
                        memory.clear();
                    }
                    memory.insert(digest.to_string(), Arc::clone(&summary));
                    return Lookup::Done(summary);
                }
                Err(err) => self.log(&format!("stored report for {digest} is unreadable: {err}")),
            }
        }
        inc(&self.metrics.report_cache_misses);
        if let Some(shared) = &self.shared {
            return match (shared.is_pending(digest), shared.dead_letter(digest)) {
                (Ok(true), _) => Lookup::Pending,
                (Ok(false), Ok(Some(message))) => Lookup::Failed(message),
                (Ok(false), Ok(None)) => Lookup::Missing,
                (Err(err), _) | (_, Err(err)) => Lookup::Unavailable(format!("{err:#}")),
            };
        }
        if self.queue.lock().unwrap().pending.contains(digest) {
            return Lookup::Pending;
        }
        let mut failures = self.failures.lock().unwrap();
        match failures.get(digest) {
            Some((message, when)) if when.elapsed() < FAILURE_MEMORY => {
                Lookup::Failed(message.clone())
            }
            Some(_) => {
                failures.remove(digest);
                Lookup::Missing
            }
            None => Lookup::Missing,
        }
    }

    /// Is the digest queued or being scanned?
    pub fn is_pending(&self, digest: &str) -> bool {
        if let Some(shared) = &self.shared {
            return shared.is_pending(digest).unwrap_or(false);
        }
        self.queue.lock().unwrap().pending.contains(digest)
    }

    /// The last failure of a digest, if recent.
    pub fn failure(&self, digest: &str) -> Option<String> {
        if let Some(shared) = &self.shared {
            return shared.dead_letter(digest).ok().flatten();
        }
        let failures = self.failures.lock().unwrap();
        failures
            .get(digest)
            .filter(|(_, when)| when.elapsed() < FAILURE_MEMORY)
            .map(|(message, _)| message.clone())
    }

    /// Starts `count` worker threads.
    /// Starts `count` worker threads (at least one, unless the work is shared: a server may
    /// leave it to `stowaway worker` processes).
    pub fn start_workers(self: &Arc<Self>, count: usize) -> Vec<std::thread::JoinHandle<()>> {
        let count = if self.shared.is_some() {
            count
        } else {
            count.max(1)
        };
        // Consumers are named by host, process and thread: a name must not be reused by a
        // process that did not take the work.
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|name| name.trim().to_string())
            .unwrap_or_else(|_| "host".to_string());
        (0..count)
            .map(|index| {
                let scans = Arc::clone(self);
                let consumer = format!("{host}-{}-{index}", std::process::id());
                std::thread::Builder::new()
                    .name(format!("stowaway-scan-{index}"))
                    .spawn(move || match &scans.shared {
                        Some(shared) => scans.work_shared(shared, &consumer),
                        None => scans.work(),
                    })
                    .expect("start a scan worker")
            })
            .collect()
    }

    /// A worker thread on the shared queue: takes work until stopped, renewing its claim
    /// while it scans; a failure is tried again until the last attempt, then buried.
    fn work_shared(&self, shared: &SharedQueue, consumer: &str) {
        let mut said_unreachable = false;
        while !self.stopping.load(Ordering::SeqCst) {
            let work = match shared.next(consumer, Duration::from_secs(1)) {
                Ok(Some(work)) => work,
                Ok(None) => continue,
                Err(err) => {
                    // Said once per outage; the store's cool-down paces the retries.
                    if !said_unreachable {
                        self.log(&format!("cannot take scan work: {err:#}"));
                        said_unreachable = true;
                    }
                    std::thread::sleep(Duration::from_millis(500));
                    continue;
                }
            };
            said_unreachable = false;
            self.queue.lock().unwrap().running += 1;
            let job = Job {
                reference: work.reference.clone(),
                digest: work.digest.clone(),
            };
            let result = self.run_claimed(shared, consumer, &work, &job);
            self.queue.lock().unwrap().running -= 1;
            self.settle(shared, &work, &job, result);
            self.done.send_modify(|generation| *generation += 1);
        }
    }

    /// Runs `job`, renewing the claim on `work` every third of the visibility timeout.
    fn run_claimed(
        &self,
        shared: &SharedQueue,
        consumer: &str,
        work: &Work,
        job: &Job,
    ) -> Result<()> {
        let key = job.key();
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        std::thread::scope(|scope| {
            scope.spawn(move || {
                let every = shared.visibility / 3;
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(every)
                {
                    let _ = shared.keep_claim(consumer, work, &key);
                }
            });
            let result = self.run(job);
            drop(stop);
            result
        })
    }

    /// Acknowledges, retries or buries `work` after its scan.
    fn settle(&self, shared: &SharedQueue, work: &Work, job: &Job, result: Result<()>) {
        let key = job.key();
        let settled = match result {
            Ok(()) => shared.done(work, &key),
            Err(err) => {
                let message = self.scanner.redacted_error(&err).to_string();
                self.log(&format!(
                    "scan of {} failed (attempt {} of {}): {message}",
                    job.reference, work.attempt, shared.max_attempts
                ));
                if work.attempt < shared.max_attempts {
                    inc(&self.metrics.scan_retries);
                    shared.retry(work)
                } else {
                    inc(&self.metrics.dead_letters);
                    shared.bury(work, &key, &message)
                }
            }
        };
        if let Err(err) = settled {
            // Left pending: claimed again after the visibility timeout.
            self.log(&format!(
                "cannot settle the scan of {}: {err:#}",
                job.reference
            ));
        }
    }

    /// Asks the workers to stop after their current scan.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let _queue = self.queue.lock().unwrap();
        self.wake.notify_all();
    }

    fn work(&self) {
        loop {
            let job = {
                let mut queue = self.queue.lock().unwrap();
                loop {
                    if self.stopping.load(Ordering::SeqCst) {
                        return;
                    }
                    if let Some(job) = queue.jobs.pop_front() {
                        queue.running += 1;
                        break job;
                    }
                    queue = self.wake.wait(queue).unwrap();
                }
            };
            let key = job.key();
            let result = self.run(&job);
            if let Err(err) = &result {
                // The error may quote the image's own words (a tag, a member's name).
                let message = self.scanner.redacted_error(err).to_string();
                self.log(&format!("scan of {} failed: {message}", job.reference));
                // A store that was down says nothing about the image: the next request
                // scans again rather than repeating this failure.
                if !is_unavailable(err) {
                    self.failures
                        .lock()
                        .unwrap()
                        .insert(key.clone(), (message, Instant::now()));
                }
            }
            {
                let mut queue = self.queue.lock().unwrap();
                queue.running -= 1;
                queue.pending.remove(&key);
            }
            self.done.send_modify(|generation| *generation += 1);
        }
    }

    /// Resolves and scans one image; stores its report under every digest it answers to.
    fn run(&self, job: &Job) -> Result<()> {
        if let Some(digest) = &job.digest
            && matches!(self.report_json(digest), Ok(Some(_)))
        {
            return Ok(());
        }
        let started = Instant::now();
        let outcome = self.scan(job);
        self.metrics.scan_seconds.observe(started.elapsed());
        match &outcome {
            Ok(()) => inc(&self.metrics.scans_ok),
            Err(_) => inc(&self.metrics.scans_failed),
        }
        outcome
    }

    fn scan(&self, job: &Job) -> Result<()> {
        let deadline = ScanDeadline::new(self.scan_timeout);
        // Always the registry transport: a request must never name a local path.
        let argument = format!("docker://{}", job.reference);
        let images = crate::source::resolve(&argument, &self.resolve_options)?;
        let Some(mut image) = images.into_iter().next() else {
            return Err(anyhow!("{}: no image", job.reference));
        };
        deadline.check()?;
        deadline.guard(&mut image);
        let mut digests: Vec<String> = job.digest.iter().cloned().collect();
        if let Some(manifest) = &image.manifest_digest
            && !digests.contains(&manifest.to_string())
        {
            digests.push(manifest.to_string());
        }
        // A platform manifest of an index may have been scanned already.
        if let Some(json) = digests
            .iter()
            .find_map(|d| self.report_json(d).ok().flatten())
        {
            for digest in &digests {
                self.cache.put_report(&self.rules_digest, digest, &json)?;
            }
            return Ok(());
        }
        let started = Instant::now();
        let report = self.scanner.scan_image(&image);
        // A scan cut short by its deadline fails as such, whatever error the cut caused (and
        // one that ended just as the deadline passed still counts).
        if deadline.passed() && report.is_err() {
            return Err(deadline.error());
        }
        let report = report?;
        let stats = &report.stats;
        let scanned = stats.layers.saturating_sub(stats.layers_from_cache);
        self.metrics
            .layers_scanned
            .fetch_add(scanned as u64, Ordering::Relaxed);
        self.metrics
            .layers_from_cache
            .fetch_add(stats.layers_from_cache as u64, Ordering::Relaxed);
        for (severity, count) in &stats.by_severity {
            self.metrics.add_findings(*severity, *count as u64);
        }
        self.log(&format!(
            "scanned {} ({}, {} from cache): {} in {} ms",
            job.reference,
            plural(stats.layers, "layer", "layers"),
            stats.layers_from_cache,
            plural(stats.findings, "finding", "findings"),
            started.elapsed().as_millis()
        ));
        let report = Report::new(vec![report], started.elapsed().as_millis() as u64);
        let json = serde_json::to_vec_pretty(&report)?;
        for digest in &digests {
            self.cache.put_report(&self.rules_digest, digest, &json)?;
        }
        Ok(())
    }
}
