//! `stowaway serve`: gates Kubernetes admissions and registry pushes on scan results.
//!
//! - `POST /admission`: a validating admission webhook (AdmissionReview `admission.k8s.io/v1`).
//!   The images of a Pod or of a workload's pod template are resolved to digests (a manifest
//!   HEAD), and decided from cached reports; an image without one is queued for a scan, and
//!   the policy (`on_unknown`) decides when the scan does not finish within the time budget.
//! - `POST /registry/events`: distribution notifications and Harbor `PUSH_ARTIFACT` webhooks;
//!   every manifest push is queued for a scan, so the report is ready before the image is run.
//! - `GET /reports/{digest}`, `POST /scan`, `GET /healthz`, `GET /readyz`, `GET /metrics`.
//!
//! Results live in a [`crate::store::ResultStore`] (the embedded one, or a shared Redis store
//! with `--store` that every replica reads), keyed by the rule-set digest: by layer (shared base
//! layers are scanned once) and by manifest.

pub mod admission;
pub mod config;
mod deadline;
pub mod events;
mod http;
pub mod metrics;
pub mod resolve;
pub mod scans;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use oci_client::Reference;

use crate::cli::ServeArgs;
use crate::detect::selection::RuleSelection;
use crate::ruleset::scanner_for;
use crate::scan::{LayerCache, ScanOptions, Scanner};
use crate::source::reference::ResolveOptions;
use crate::source::registry::RegistryOptions;
use crate::store::queue::SharedQueue;
use crate::store::{ResultStore, StoreArgs};
use admission::{AdmissionRequest, denial_text, incomplete_text, warning};
use config::{OnIncomplete, OnUnknown, Policy};
use metrics::{Metrics, inc};
use resolve::DigestResolver;
use scans::{Enqueued, Job, Lookup, Scans};

/// How often an admission waiting for a scan on the shared queue looks for its report.
const SHARED_POLL: Duration = Duration::from_millis(250);

/// How often the certificate files are checked for changes.
const CERT_POLL: Duration = Duration::from_secs(2);

/// Everything the handlers share.
pub struct Server {
    pub policy: Policy,
    pub scans: Arc<Scans>,
    pub resolver: DigestResolver,
    pub metrics: Arc<Metrics>,
    pub started: Instant,
    pub role: Role,
}

/// What a process started by `run` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `stowaway serve`: admissions, registry events, reports, and (with --concurrency) scans.
    Server,
    /// `stowaway worker`: scans from the shared queue; answers only health and metrics.
    Worker,
}

/// Runs the server (or worker) until SIGTERM or SIGINT. Returns the exit code.
pub fn run(args: ServeArgs, role: Role) -> Result<u8> {
    let policy = match &args.config {
        Some(path) => Policy::load(path)?,
        None => Policy::default(),
    };
    if role == Role::Worker && args.store.is_none() {
        bail!(
            "stowaway worker takes its work from a shared store: give --store redis://… (or STOWAWAY_STORE)"
        );
    }
    let (addr, tls) = listen_address(&args, &policy, role)?;
    let metrics = Arc::new(Metrics::default());
    let opened = crate::store::open_for_serve(
        &StoreArgs {
            url: args.store.as_deref(),
            cache_dir: args.cache_dir.as_deref(),
            ttl: args.store_ttl,
        },
        Some(metrics::store_observer(&metrics)),
    )?;
    let cache = opened.store;
    let registry = RegistryOptions {
        plain_http: policy.plain_http,
        ca_certs: policy.ca_certs.clone(),
        network: Some(Arc::clone(&policy.network)),
        ..RegistryOptions::default()
    };
    let mut scans = Scans::new(
        Arc::clone(&cache),
        scanner(&args, &cache)?,
        ResolveOptions {
            registry: registry.clone(),
            ..ResolveOptions::default()
        },
        args.queue_size,
        policy.scan_timeout,
        Arc::clone(&metrics),
        args.quiet,
    );
    if let Some(shared) = opened.shared {
        scans = with_shared_queue(scans, shared, &args, &policy);
    }
    let scans = Arc::new(scans);
    drop_unreadable(&scans, args.quiet);
    let workers = scans.start_workers(args.concurrency);
    let server = Arc::new(Server {
        resolver: DigestResolver::new(registry, policy.tag_cache, Arc::clone(&cache))?,
        policy,
        scans: Arc::clone(&scans),
        metrics,
        started: Instant::now(),
        role,
    });

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.http_threads.max(1))
        .thread_name("stowaway-http")
        .enable_all()
        .build()
        .context("cannot start the server runtime")?;
    let served = runtime.block_on(listen_and_serve(addr, tls, Arc::clone(&server)));
    scans.log("shutting down");
    scans.stop();
    runtime.shutdown_timeout(Duration::from_secs(2));
    drop(server);
    wait_for_workers(workers);
    served?;
    Ok(0)
}

/// `scans` with their work on the shared store's queue (its group created if missing: a store
/// that is down now gets it from the first worker that reads).
fn with_shared_queue(
    scans: Scans,
    shared: Arc<crate::store::redis::RedisStore>,
    args: &ServeArgs,
    policy: &Policy,
) -> Scans {
    let visibility = args
        .visibility_timeout
        .unwrap_or(policy.scan_timeout + Duration::from_secs(60));
    let rules_digest = scans.rules_digest().to_string();
    let queue = SharedQueue::new(shared, &rules_digest, visibility, args.max_attempts);
    if let Err(err) = queue.ensure_group() {
        scans.log(&format!("shared queue not ready yet: {err:#}"));
    }
    scans.with_shared_queue(queue)
}

/// Where to listen, and the certificate to serve when TLS is on. Plain HTTP is refused beyond
/// loopback unless `--insecure-listen`; an open API beyond loopback is warned about.
/// A worker answers only health and metrics, so it is served on any address without a token.
fn listen_address(
    args: &ServeArgs,
    policy: &Policy,
    role: Role,
) -> Result<(SocketAddr, Option<Arc<tls::ReloadingCert>>)> {
    let addr: SocketAddr = args
        .listen
        .parse()
        .map_err(|_| anyhow!("--listen {:?}: expected HOST:PORT with an IP address (0.0.0.0:8443, 127.0.0.1:8443, [::]:8443)", args.listen))?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(tls::ReloadingCert::new(cert, key)?),
        (None, None) => None,
        _ => bail!("--tls-cert and --tls-key go together"),
    };
    if role == Role::Worker {
        return Ok((addr, tls));
    }
    if tls.is_none() && !addr.ip().is_loopback() && !args.insecure_listen {
        bail!(
            "--listen {addr}: plain HTTP is only served on loopback addresses; give --tls-cert and --tls-key, or --insecure-listen to accept the risk"
        );
    }
    // POST /scan makes the server pull from registries and GET /reports hands out what it
    // found: open endpoints are a choice made out loud, never a default.
    if policy.api_token.is_none() && !args.no_auth {
        bail!(
            "no API token: set api_token_file in the policy (--config), or give --no-auth to serve POST /scan, POST /registry/events and GET /reports to anyone who reaches {addr}"
        );
    }
    // Said even with --quiet: an open API on the network is never something to miss.
    if policy.api_token.is_none() && !addr.ip().is_loopback() {
        eprintln!(
            "stowaway serve: WARNING: --no-auth on {addr}, which is not a loopback address: anyone who reaches it can make this server pull images (POST /scan, POST /registry/events) and read every report (GET /reports); set api_token_file in the policy instead"
        );
    }
    Ok((addr, tls))
}

/// The scanner for the selected rules; secrets are never shown, and layers are cached.
fn scanner(args: &ServeArgs, cache: &Arc<dyn ResultStore>) -> Result<Scanner> {
    let selection = RuleSelection {
        user_files: args.rules.clone(),
        disable: args.disable_rule.clone(),
        ..RuleSelection::default()
    };
    let options = ScanOptions {
        show_secrets: false,
        threads: args.threads,
        ..ScanOptions::default()
    };
    Ok(scanner_for(&selection, options)?.with_cache(Arc::clone(cache) as Arc<dyn LayerCache>))
}

/// The server runs one rule set for its whole life: results of earlier rule sets or encodings
/// (an upgrade, a changed --rules) can never be read again, so they are dropped at start.
fn drop_unreadable(scans: &Scans, quiet: bool) {
    match scans.cache.drop_unreadable(scans.rules_digest()) {
        Ok(0) => {}
        Ok(dropped) if !quiet => {
            eprintln!(
                "stowaway serve: dropped {dropped} cached results of earlier rule sets or formats"
            )
        }
        Ok(_) => {}
        Err(err) => eprintln!("stowaway serve: warning: cannot prune the cache: {err:#}"),
    }
}

/// Listens on `addr` and serves until SIGTERM or SIGINT.
async fn listen_and_serve(
    addr: SocketAddr,
    tls: Option<Arc<tls::ReloadingCert>>,
    server: Arc<Server>,
) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("--listen {addr}: cannot listen"))?;
    let local = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let scans = &server.scans;
    // Tests and scripts read this line to find the port when --listen used port 0.
    eprintln!(
        "stowaway serve: listening on {scheme}://{local} (store {}, rules {})",
        scans.cache.describe(),
        crate::report::describe::short_hex(scans.rules_digest())
    );
    let acceptor = match &tls {
        Some(reloading) => {
            watch_certificate(reloading, scans);
            Some(tokio_rustls::TlsAcceptor::from(reloading.server_config()?))
        }
        None => None,
    };
    http::serve(listener, acceptor, server, shutdown_signal()).await
}

/// Reloads the certificate files when they change, for as long as the runtime runs.
fn watch_certificate(reloading: &Arc<tls::ReloadingCert>, scans: &Arc<Scans>) {
    let watched = Arc::clone(reloading);
    let log_scans = Arc::clone(scans);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CERT_POLL);
        loop {
            tick.tick().await;
            match watched.reload_if_changed() {
                Ok(true) => log_scans.log("TLS certificate reloaded"),
                Ok(false) => {}
                Err(err) => log_scans.log(&format!(
                    "TLS certificate not reloaded (the previous one stays): {err:#}"
                )),
            }
        }
    });
}

/// Lets a scan in progress finish writing (bounded), so the cache closes cleanly.
fn wait_for_workers(workers: Vec<std::thread::JoinHandle<()>>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    for worker in workers {
        while !worker.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if worker.is_finished() {
            let _ = worker.join();
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// What an admission learned about one image.
enum ImageState {
    Exempt,
    Known {
        digest: String,
        summary: Arc<admission::ReportSummary>,
    },
    Pending {
        reference: Reference,
        digest: String,
    },
    Unknown(String),
    /// Not looked at: the review went beyond a limit of the policy (the reason).
    BeyondLimits(String),
}

impl Server {
    /// Decides one admission request; returns the AdmissionReview response.
    pub async fn decide(self: &Arc<Self>, request: &AdmissionRequest) -> serde_json::Value {
        let policy = &self.policy;
        if !request.supported_kind {
            return self.allow(
                request,
                &[warning(&format!(
                    "stowaway: kind {} runs no containers; nothing checked",
                    request.kind
                ))],
            );
        }
        if request.images.is_empty() || policy.namespace_exempt(&request.namespace) {
            return self.allow(request, &[]);
        }
        let limits = policy.review_limits;
        if request.images.len() > limits.max_images {
            // Checking a few hundred images cannot fit the time budget, and each could cost a
            // registry request: the review is decided by the policy, none of them looked at.
            let reason = format!(
                "the {} names {} images, more than max_images_per_review = {}; none was checked",
                request.kind,
                request.images.len(),
                limits.max_images
            );
            return self.beyond_limits(request, &[reason], Vec::new());
        }
        let deadline = tokio::time::Instant::now() + policy.time_budget;
        // Subscribed before the lookups, so that no scan finishing meanwhile goes unnoticed.
        let mut finished = self.scans.subscribe();
        let mut states = self.image_states(&request.images, deadline).await;
        self.wait_for_scans(&mut states, &mut finished, deadline)
            .await;
        self.verdict(request, &states)
    }

    /// What is known about each image. Images whose digest is known (named, or a recent tag
    /// lookup) are decided at once from the cache; the others are looked up in their
    /// registry, each in a task of its own that goes on (and queues the scan) if the budget
    /// runs out first.
    async fn image_states(
        self: &Arc<Self>,
        images: &[String],
        deadline: tokio::time::Instant,
    ) -> Vec<ImageState> {
        let mut states = Vec::with_capacity(images.len());
        let mut lookups = Vec::new();
        for (index, image) in images.iter().enumerate() {
            let reference: Reference = match image.parse() {
                Ok(reference) => reference,
                Err(err) => {
                    states.push(ImageState::Unknown(format!(
                        "not a valid image reference: {err}"
                    )));
                    continue;
                }
            };
            if self.policy.image_exempt(&[image, &reference.whole()]) {
                states.push(ImageState::Exempt);
                continue;
            }
            if let Some(digest) = self.resolver.known(&reference) {
                states.push(self.state_of(reference, digest));
                continue;
            }
            if lookups.len() >= self.policy.review_limits.max_lookups {
                states.push(ImageState::BeyondLimits(format!(
                    "image {image} was not looked up: the review needs more than max_lookups_per_review = {} registry lookups",
                    self.policy.review_limits.max_lookups
                )));
                continue;
            }
            states.push(ImageState::Unknown(
                "registry lookup did not finish within the time budget; the scan will follow"
                    .into(),
            ));
            let server = Arc::clone(self);
            lookups.push((
                index,
                tokio::spawn(async move {
                    match server.resolver.digest(&reference).await {
                        Ok(digest) => server.state_of(reference, digest),
                        Err(err) => {
                            let message = format!("{err:#}");
                            server.scans.log(&message);
                            ImageState::Unknown(message)
                        }
                    }
                }),
            ));
        }
        for (index, lookup) in lookups {
            if let Ok(Ok(state)) = tokio::time::timeout_at(deadline, lookup).await {
                states[index] = state;
            }
        }
        states
    }

    /// Waits for queued scans until they are done or the budget is spent.
    async fn wait_for_scans(
        &self,
        states: &mut [ImageState],
        finished: &mut tokio::sync::watch::Receiver<u64>,
        deadline: tokio::time::Instant,
    ) {
        loop {
            let waiting = states
                .iter()
                .any(|state| matches!(state, ImageState::Pending { .. }));
            if !waiting {
                break;
            }
            // Scans on the shared queue may finish in another process: look again now and
            // then, not only when one of ours finishes.
            let poll = if self.scans.shared_queue().is_some() {
                (tokio::time::Instant::now() + SHARED_POLL).min(deadline)
            } else {
                deadline
            };
            let woke = tokio::select! {
                changed = finished.changed() => changed.is_ok(),
                _ = tokio::time::sleep_until(poll) => poll < deadline,
            };
            if !woke {
                break;
            }
            for state in states.iter_mut() {
                if let ImageState::Pending { reference, digest } = state {
                    let (reference, digest) = (reference.clone(), digest.clone());
                    *state = self.state_of(reference, digest);
                }
            }
        }
    }

    /// The response for what is known of the images: denied when one has findings at or
    /// above the threshold, else allowed, unless an image's scan was incomplete or an image is
    /// unknown and the policy (`on_incomplete`, `on_unknown`) says so.
    fn verdict(&self, request: &AdmissionRequest, states: &[ImageState]) -> serde_json::Value {
        let policy = &self.policy;
        let mut denials = Vec::new();
        let mut incomplete = Vec::new();
        let mut unknown = Vec::new();
        let mut beyond = Vec::new();
        for (image, state) in request.images.iter().zip(states) {
            match state {
                ImageState::Exempt => {}
                ImageState::BeyondLimits(reason) => beyond.push(reason.clone()),
                ImageState::Known { digest, summary } => {
                    if let Some(text) =
                        denial_text(image, digest, summary, policy.severity_threshold)
                    {
                        denials.push(text);
                    } else if let Some(text) = incomplete_text(image, digest, summary) {
                        incomplete.push(text);
                    }
                }
                ImageState::Pending { .. } => unknown.push(format!(
                    "image {image} has no scan result yet (scan in progress)"
                )),
                ImageState::Unknown(reason) => {
                    unknown.push(format!("image {image} has no scan result ({reason})"))
                }
            }
        }
        if !unknown.is_empty() {
            inc(&self.metrics.admissions_unknown);
        }
        if !denials.is_empty() {
            let mut message = format!(
                "stowaway: secrets found in {} image{} of {} {}:\n{}",
                denials.len(),
                if denials.len() == 1 { "" } else { "s" },
                request.kind,
                request.namespace,
                denials.join("\n")
            );
            for line in beyond.iter().chain(&incomplete).chain(&unknown) {
                message.push_str(&format!("\nalso: {line}"));
            }
            message.push_str("\nRemove the secret from the image (deleting it in a later layer is not enough), rotate it, and supply it at run time (a Kubernetes Secret).");
            return self.deny(request, message);
        }
        if !beyond.is_empty() {
            return self.beyond_limits(request, &beyond, unknown);
        }
        if !incomplete.is_empty() && policy.on_incomplete == OnIncomplete::Deny {
            let mut message = format!(
                "stowaway: denied by policy (on_incomplete = \"deny\"): {}",
                incomplete.join("; ")
            );
            for line in &unknown {
                message.push_str(&format!("; also: {line}"));
            }
            return self.deny(request, message);
        }
        let warnings: Vec<String> = incomplete
            .iter()
            .map(|line| {
                // The policy first: a long line is cut at the end.
                warning(&format!(
                    "stowaway: admitted by policy (on_incomplete = \"allow\"): {line}"
                ))
            })
            .collect();
        self.decide_unknown(request, unknown, warnings)
    }

    /// The answer for a review that went beyond the policy's limits (`reasons`), with the
    /// images that are `unknown` otherwise: `on_review_limit` decides, then `on_unknown`.
    fn beyond_limits(
        &self,
        request: &AdmissionRequest,
        reasons: &[String],
        unknown: Vec<String>,
    ) -> serde_json::Value {
        if unknown.is_empty() {
            // (`verdict` has counted the review if some images were unknown.)
            inc(&self.metrics.admissions_unknown);
        }
        self.scans.log(&format!(
            "admission {} {}/{}: {}",
            request.kind,
            request.namespace,
            request.uid,
            reasons.join("; ")
        ));
        match self.policy.review_limits.on_exceeded {
            OnUnknown::Deny => self.deny(
                request,
                format!(
                    "stowaway: denied by policy (on_review_limit = \"deny\"): {}",
                    reasons.join("; ")
                ),
            ),
            OnUnknown::Allow => {
                let warnings = reasons
                    .iter()
                    .map(|reason| {
                        warning(&format!(
                            "stowaway: {reason}; admitted by policy (on_review_limit = \"allow\")"
                        ))
                    })
                    .collect();
                self.decide_unknown(request, unknown, warnings)
            }
        }
    }

    /// Allows, with `warnings`, unless an image is `unknown` and `on_unknown` denies.
    fn decide_unknown(
        &self,
        request: &AdmissionRequest,
        unknown: Vec<String>,
        mut warnings: Vec<String>,
    ) -> serde_json::Value {
        if unknown.is_empty() {
            return self.allow(request, &warnings);
        }
        match self.policy.on_unknown {
            OnUnknown::Allow => {
                warnings.extend(unknown.iter().map(|line| {
                    warning(&format!(
                        "stowaway: {line}; admitted by policy (on_unknown = \"allow\"), the scan continues"
                    ))
                }));
                self.allow(request, &warnings)
            }
            OnUnknown::Deny => self.deny(
                request,
                format!(
                    "stowaway: denied by policy (on_unknown = \"deny\"): {}; the scan continues, retry shortly",
                    unknown.join("; ")
                ),
            ),
        }
    }

    fn allow(&self, request: &AdmissionRequest, warnings: &[String]) -> serde_json::Value {
        inc(&self.metrics.admissions_allowed);
        admission::response(&request.uid, true, None, warnings)
    }

    fn deny(&self, request: &AdmissionRequest, message: String) -> serde_json::Value {
        inc(&self.metrics.admissions_denied);
        admission::response(&request.uid, false, Some((403, &message)), &[])
    }

    /// Looks a digest up; queues a scan when nothing is known.
    fn state_of(&self, reference: Reference, digest: String) -> ImageState {
        match self.scans.lookup(&digest) {
            Lookup::Done(summary) => ImageState::Known { digest, summary },
            Lookup::Failed(message) => ImageState::Unknown(format!("scan failed: {message}")),
            // Nothing can be looked up or stored: a scan now would be lost.
            Lookup::Unavailable(reason) => ImageState::Unknown(reason),
            Lookup::Pending => ImageState::Pending { reference, digest },
            Lookup::Missing => {
                let job = Job {
                    reference: by_digest(&reference, &digest),
                    digest: Some(digest.clone()),
                };
                match self.scans.enqueue(job) {
                    Enqueued::Queued | Enqueued::AlreadyPending => {
                        ImageState::Pending { reference, digest }
                    }
                    Enqueued::Full => ImageState::Unknown("the scan queue is full".into()),
                }
            }
        }
    }
}

/// `registry/repository@digest` for a reference.
pub fn by_digest(reference: &Reference, digest: &str) -> String {
    format!(
        "{}/{}@{digest}",
        reference.registry(),
        reference.repository()
    )
}
