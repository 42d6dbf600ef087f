//! `stowaway sweep REGISTRY`: every image of a registry given a result under the current
//! rules. `catalog` lists repositories and tags (paged, capped, rate-limit friendly),
//! `select` chooses among them, `source::registry::describe` resolves each tag to the
//! manifest digests and layers a scan would read, and a [`target::SweepTarget`] gets each
//! image without a result one: [`target::LocalTarget`] scans here, `--jobs` at a time,
//! through the result cache, so a layer shared by many images is scanned once; with `--store`,
//! [`queued::QueueTarget`] queues them on the shared store for `stowaway worker` processes
//! (and, with `--wait`, waits for their reports). `summary` counts it all.

mod catalog;
mod queued;
mod select;
mod summary;
mod target;

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use anyhow::{Context, Result, anyhow, bail};
use futures_util::StreamExt;
use globset::GlobMatcher;
use oci_client::Reference;
use tokio::sync::Semaphore;

use crate::cli::{SummaryFormat, SweepArgs};
use crate::detect::selection::RuleSelection;
use crate::output::write_output;
use crate::progress::CountProgress;
use crate::ruleset::scanner_for;
use crate::scan::{LayerCache, ScanOptions};
use crate::source::platform::PlatformFilter;
use crate::source::registry::{self, Api, Described, RegistryOptions};
use crate::store::embedded::Cache;
use crate::store::redis::RedisStore;
use queued::QueueTarget;
use select::{Choice, Dated};
use summary::{Failure, SUMMARY_FORMAT, Skip, Summary};
use target::{LocalTarget, Outcome, Submitted, SweepImage, SweepTarget};

/// Runs a sweep; returns the exit code (0 clean, 1 findings at or above `--fail-on`, 2 when
/// an image failed) or an error (exit 2).
pub fn run(args: SweepArgs) -> Result<u8> {
    let started = Instant::now();
    let host = registry_host(&args.registry)?;
    let filters = Filters {
        repos: args
            .repos
            .as_deref()
            .map(|g| select::glob("--repos", g))
            .transpose()?,
        tags: args
            .tags
            .as_deref()
            .map(|g| select::glob("--tags", g))
            .transpose()?,
        choice: Choice {
            newest: args.tags_per_repo.map(|n| n as usize),
            created_after: args.since.map(|age| Choice::since(age, SystemTime::now())),
        },
    };
    let fail_on = crate::detect::severity::parse_fail_on(&args.fail_on)?;
    if args.wait.is_some() && args.store.is_none() {
        bail!(
            "--wait needs --store (or STOWAWAY_STORE): without a shared store sweep scans here and always waits"
        );
    }
    let options = registry_options(&args)?;
    // Before listing: a shared store that is down ends the sweep at once.
    let target = open_target(&args, options.clone())?;
    let mut summary = Summary {
        summary_format: SUMMARY_FORMAT,
        registry: host.clone(),
        rules_digest: target.rules_digest().to_string(),
        ..Summary::default()
    };
    let images = list(&args, &host, &options, &filters, &mut summary)?;
    if !args.quiet {
        eprintln!(
            "stowaway: {} repositories, {} tags: {} images to check",
            summary.repositories, summary.tags, summary.images
        );
    }
    let show_progress = !args.quiet && !args.no_progress && std::io::stderr().is_terminal();
    let mut results = drive(
        target.as_dyn(),
        &images,
        usize::from(args.jobs),
        show_progress,
    );
    if let (Target::Queue(queue), Some(timeout)) = (&target, args.wait) {
        wait_for_queued(queue, &images, &mut results, timeout, &args);
    }
    for (index, done) in results {
        tally(&mut summary, &images[index], done);
    }
    summary.finish(started.elapsed());
    write_output(args.output.as_deref(), |out| {
        match args.format {
            SummaryFormat::Text => summary.write_text(out),
            SummaryFormat::Json => summary.write_json(out),
        }
        .map_err(Into::into)
    })?;
    let findings_fail = fail_on.is_some_and(|threshold| summary.count_at_or_above(threshold) > 0);
    Ok(if findings_fail {
        1
    } else if summary.failed > 0 || !summary.failures.is_empty() {
        2
    } else {
        0
    })
}

/// The globs and the recency rule.
struct Filters {
    repos: Option<GlobMatcher>,
    tags: Option<GlobMatcher>,
    choice: Choice,
}

/// `REGISTRY` as `host[:port]`: no scheme, no path.
fn registry_host(text: &str) -> Result<String> {
    let host = text.trim().trim_end_matches('/');
    let valid = !host.is_empty()
        && !host.contains("://")
        && !host.contains('/')
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if !valid {
        bail!("{text:?} is not a registry: give HOST or HOST:PORT (registry.example.com:5000)");
    }
    Ok(host.to_string())
}

fn registry_options(args: &SweepArgs) -> Result<RegistryOptions> {
    let platform = args
        .platform
        .as_deref()
        .map(|p| p.parse::<PlatformFilter>().context("--platform"))
        .transpose()?;
    Ok(RegistryOptions {
        plain_http: args.plain_http,
        ca_certs: args.ca_cert.clone(),
        platform,
        all_platforms: args.all_platforms,
        ..RegistryOptions::default()
    })
}

/// Where the images without a result go: the shared store's queue with `--store`, else
/// scanned here through the embedded result cache.
enum Target {
    Local(Box<LocalTarget>),
    Queue(QueueTarget),
}

impl Target {
    fn as_dyn(&self) -> &dyn SweepTarget {
        match self {
            Target::Local(local) => local.as_ref(),
            Target::Queue(queue) => queue,
        }
    }

    fn rules_digest(&self) -> &str {
        match self {
            Target::Local(local) => local.rules_digest(),
            Target::Queue(queue) => queue.rules_digest(),
        }
    }
}

/// The target for `args`: the scanner `scan` would build for these rules, reading and filling
/// the result cache, which a sweep cannot do without (it says which images already have a
/// result); or, with `--store`, the shared store and its queue, which must answer now.
fn open_target(args: &SweepArgs, options: RegistryOptions) -> Result<Target> {
    let selection = RuleSelection {
        user_files: args.rules.clone(),
        disable: args.disable_rule.clone(),
        ..RuleSelection::default()
    };
    let scanner = scanner_for(
        &selection,
        ScanOptions {
            threads: args.threads,
            ..ScanOptions::default()
        },
    )?;
    if let Some(url) = args.store.as_deref() {
        let store = Arc::new(RedisStore::open(url, args.store_ttl, None)?);
        // Workers key reports and queues by the rules digest alone (serve's scanner).
        let rules_digest = scanner.detector().rules_digest();
        return Ok(Target::Queue(QueueTarget::open(store, rules_digest)?));
    }
    let dir = args
        .cache_dir
        .clone()
        .or_else(crate::store::embedded::default_dir)
        .ok_or_else(|| anyhow!("no cache directory: give --cache-dir (HOME is not set)"))?;
    let cache = Arc::new(Cache::open(&dir)?);
    let scanner = scanner.with_cache(Arc::clone(&cache) as Arc<dyn LayerCache>);
    Ok(Target::Local(Box::new(LocalTarget::new(
        scanner, cache, options,
    ))))
}

/// `--wait`: the images `results` says were queued, waited for until each has a report or a
/// dead letter (or `timeout` passes), their results put in place.
fn wait_for_queued(
    queue: &QueueTarget,
    images: &[SweepImage],
    results: &mut [(usize, Result<Done>)],
    timeout: std::time::Duration,
    args: &SweepArgs,
) {
    let queued: Vec<usize> = results
        .iter()
        .enumerate()
        .filter(|(_, (_, done))| matches!(done, Ok(Done::Submitted(Submitted::Queued))))
        .map(|(at, _)| at)
        .collect();
    if queued.is_empty() {
        return;
    }
    if !args.quiet {
        eprintln!(
            "stowaway: {} images queued; waiting up to {}s for their reports",
            queued.len(),
            timeout.as_secs()
        );
    }
    let show_progress = !args.quiet && !args.no_progress && std::io::stderr().is_terminal();
    let progress = show_progress.then(|| CountProgress::new("scanned", queued.len() as u64));
    let waiting: Vec<&SweepImage> = queued.iter().map(|&at| &images[results[at].0]).collect();
    let settled = queue.wait(&waiting, timeout, &|| {
        if let Some(progress) = &progress {
            progress.inc();
        }
    });
    if let Some(progress) = progress {
        progress.finish();
    }
    for (at, result) in queued.into_iter().zip(settled) {
        results[at].1 = result.map(Done::Waited);
    }
}

/// What one repository gave.
#[derive(Default)]
struct RepoListing {
    tags: usize,
    images: Vec<(String, Described)>,
    failures: Vec<Failure>,
    skipped: Vec<Skip>,
}

/// Lists the registry and resolves the chosen tags: the distinct images, each with every
/// tag that names it. Counts go into `summary`.
fn list(
    args: &SweepArgs,
    host: &str,
    options: &RegistryOptions,
    filters: &Filters,
    summary: &mut Summary,
) -> Result<Vec<SweepImage>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("stowaway-sweep")
        .enable_all()
        .build()
        .context("cannot start the network runtime")?;
    let http = registry::http_client(options)?;
    let permits = Semaphore::new(usize::from(args.requests));
    // Credentials are looked up (helpers run) here, off the runtime's threads.
    let catalog_reference = repository_reference(host, "catalog");
    let catalog_api = registry::api_for(&catalog_reference, options, http.clone())?
        .with_scope("registry:catalog:*");
    let listed = runtime.block_on(catalog::repositories(
        &catalog_api,
        &catalog_reference,
        args.page_size,
        args.max_repos,
        &permits,
    ))?;
    if listed.truncated {
        summary.skipped.push(Skip {
            what: "catalog".to_string(),
            reason: format!("more than {} repositories (--max-repos)", args.max_repos),
        });
    }
    let mut apis = Vec::new();
    for repository in listed.names {
        if !select::passes(filters.repos.as_ref(), &repository) {
            continue;
        }
        let reference = repository_reference(host, &repository);
        match registry::api_for(&reference, options, http.clone()) {
            Ok(api) => apis.push((reference, api)),
            Err(err) => summary.failures.push(Failure {
                what: repository,
                error: format!("{err:#}").replace('\n', " "),
            }),
        }
    }
    summary.repositories = apis.len() + summary.failures.len();
    let listings = runtime.block_on(
        futures_util::stream::iter(apis.iter())
            .map(|(reference, api)| repository(api, reference, args, options, filters, &permits))
            .buffer_unordered(usize::from(args.requests))
            .collect::<Vec<_>>(),
    );
    Ok(merge(host, listings, summary))
}

/// A reference to `repository` at `host`, for credentials and requests.
fn repository_reference(host: &str, repository: &str) -> Reference {
    Reference::with_tag(
        host.to_string(),
        repository.to_string(),
        "latest".to_string(),
    )
}

/// One repository's tags, chosen and resolved.
async fn repository(
    api: &Api,
    reference: &Reference,
    args: &SweepArgs,
    options: &RegistryOptions,
    filters: &Filters,
    permits: &Semaphore,
) -> RepoListing {
    let name = reference.repository().to_string();
    let mut listing = RepoListing::default();
    let listed = match catalog::tags(api, reference, args.page_size, args.max_tags, permits).await {
        Ok(listed) => listed,
        Err(err) => {
            listing.failures.push(Failure {
                what: name,
                error: format!("{err:#}").replace('\n', " "),
            });
            return listing;
        }
    };
    if listed.truncated {
        listing.skipped.push(Skip {
            what: name.clone(),
            reason: format!("more than {} tags (--max-tags)", args.max_tags),
        });
    }
    let with_config = filters.choice.needs_created();
    let tags = listed
        .names
        .into_iter()
        .filter(|tag| select::passes(filters.tags.as_ref(), tag));
    let described = futures_util::stream::iter(tags)
        .map(|tag| async move {
            let tagged = Reference::with_tag(
                reference.registry().to_string(),
                reference.repository().to_string(),
                tag.clone(),
            );
            let _permit = permits.acquire().await;
            let images = registry::describe(api, &tagged, options, with_config).await;
            (tag, images)
        })
        .buffer_unordered(usize::from(args.requests))
        .collect::<Vec<_>>()
        .await;
    let mut resolved = BTreeMap::new();
    for (tag, images) in described {
        match images {
            Ok(images) => {
                resolved.insert(tag, images);
            }
            Err(err) => listing.failures.push(Failure {
                what: format!("{name}:{tag}"),
                error: format!("{err:#}").replace('\n', " "),
            }),
        }
    }
    let dated = resolved
        .iter()
        .map(|(tag, images)| Dated {
            tag: tag.clone(),
            created: images
                .iter()
                .filter_map(|image| image.created.as_deref().and_then(select::rfc3339_seconds))
                .max(),
        })
        .collect();
    for chosen in filters.choice.apply(dated) {
        listing.tags += 1;
        for image in resolved.remove(&chosen.tag).unwrap_or_default() {
            listing
                .images
                .push((format!("{name}:{}", chosen.tag), image));
        }
    }
    listing
}

/// The repositories' listings as distinct images (by manifest digest), in name order.
fn merge(host: &str, listings: Vec<RepoListing>, summary: &mut Summary) -> Vec<SweepImage> {
    let mut images: BTreeMap<String, SweepImage> = BTreeMap::new();
    let mut by_name = Vec::new();
    // Repositories finish in any order: what they skipped is listed by name, after the
    // catalog's own skip.
    let mut skipped = Vec::new();
    for listing in listings {
        summary.tags += listing.tags;
        summary.failures.extend(listing.failures);
        skipped.extend(listing.skipped);
        by_name.extend(listing.images);
    }
    skipped.sort_by(|a, b| a.what.cmp(&b.what));
    summary.skipped.extend(skipped);
    by_name.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, described) in by_name {
        let repository = name
            .rsplit_once(':')
            .map_or(name.as_str(), |(repo, _)| repo);
        images
            .entry(described.digest.clone())
            .or_insert_with(|| SweepImage {
                reference: format!("{host}/{repository}@{}", described.digest),
                digest: described.digest.clone(),
                names: Vec::new(),
                layers: described.layers.clone(),
            })
            .names
            .push(name);
    }
    summary.failures.sort_by(|a, b| a.what.cmp(&b.what));
    summary.images = images.len();
    let mut images: Vec<SweepImage> = images.into_values().collect();
    images.sort_by(|a, b| a.names.cmp(&b.names));
    images
}

/// What became of one image.
enum Done {
    Existing(Outcome),
    Submitted(Submitted),
    /// Queued, then scanned elsewhere while the sweep waited (`--wait`).
    Waited(Outcome),
}

/// Gives every image a result through `target`, `jobs` at a time: what became of each, by
/// its index in `images`, in order.
fn drive(
    target: &dyn SweepTarget,
    images: &[SweepImage],
    jobs: usize,
    show_progress: bool,
) -> Vec<(usize, Result<Done>)> {
    let progress = show_progress.then(|| CountProgress::new("images", images.len() as u64));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Result<Done>)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, images.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(image) = images.get(index) else {
                        break;
                    };
                    let done = match target.existing(&image.digest) {
                        Ok(Some(outcome)) => Ok(Done::Existing(outcome)),
                        Ok(None) => target.submit(image).map(Done::Submitted),
                        Err(err) => Err(err),
                    };
                    results
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((index, done));
                    if let Some(progress) = &progress {
                        progress.inc();
                    }
                }
            });
        }
    });
    if let Some(progress) = progress {
        progress.finish();
    }
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by_key(|(index, _)| *index);
    results
}

/// Adds one image's outcome to the summary.
fn tally(summary: &mut Summary, image: &SweepImage, done: Result<Done>) {
    let outcome = match done {
        Ok(Done::Existing(outcome)) => {
            summary.already_had_result += 1;
            outcome
        }
        Ok(Done::Submitted(Submitted::Scanned(outcome)) | Done::Waited(outcome)) => {
            summary.scanned += 1;
            outcome
        }
        Ok(Done::Submitted(Submitted::Queued)) => {
            summary.queued += 1;
            return;
        }
        Err(err) => {
            summary.failed += 1;
            summary.failures.push(Failure {
                what: image.names.join(", "),
                error: format!("{err:#}").replace('\n', " "),
            });
            return;
        }
    };
    summary.layers_scanned += outcome.layers_scanned;
    summary.layers_reused += outcome.layers_reused;
    for (severity, count) in outcome.by_severity {
        *summary.findings.entry(severity).or_default() += count;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registry_is_a_host_and_port_only() {
        assert_eq!(registry_host("127.0.0.1:5000").unwrap(), "127.0.0.1:5000");
        assert_eq!(
            registry_host("registry.example.com/").unwrap(),
            "registry.example.com"
        );
        for bad in ["", "https://r.example", "r.example/team", "r example"] {
            let err = registry_host(bad).unwrap_err().to_string();
            assert!(err.contains("is not a registry"), "{err}");
        }
    }
}
