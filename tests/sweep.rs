//! `stowaway sweep` against a real registry (Debian's docker-registry on 127.0.0.1) holding
//! 55 images in 11 repositories, pushed with skopeo from OCI layouts made here: three base
//! layers shared between them, one small layer of each image's own, and secrets (made at test
//! time) planted in some. Every image gets a report, each shared layer is scanned once, the
//! globs and recency choose what they say, and a rate-limiting registry is waited for. On a
//! shared store (a real redis-server per run), the sweep queues the images for `stowaway
//! worker` processes, one and then two, which scan each distinct layer once between them.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, mpsc};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};
use support::fault_proxy::{FaultProxy, Reply, Upstream};
use support::redis::TestRedis;
use support::registry::{RegistryConfig, TestRegistry};
use support::run::Run;
use support::secrets::{aws_access_key_id, aws_credentials_file, aws_secret_access_key};
use support::*;

const TAGS: [&str; 5] = ["v1.0", "v1.1", "v1.2", "v2.0", "v2.1"];

/// The registry and what it holds.
struct Fixture {
    registry: TestRegistry,
    /// `repository` names, in order.
    repositories: Vec<String>,
    /// Images with a planted secret.
    leaky: usize,
}

/// Tests here share one registry, and run one at a time: the throughput test's figures
/// would mean nothing with another sweep on the same two cores.
fn fixture() -> Option<(MutexGuard<'static, ()>, &'static Fixture)> {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    static FIXTURE: OnceLock<Option<Fixture>> = OnceLock::new();
    let guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let fixture = FIXTURE.get_or_init(build_fixture).as_ref()?;
    Some((guard, fixture))
}

/// A layer whose files are `files`, gzip-compressed.
fn layer(files: Vec<Entry>) -> RawLayer {
    RawLayer::from_tar(&layer_tar(&files), Compression::Gzip)
}

/// A base layer of `count` text files (about 2 KiB each), different for each `name`.
fn base_layer(name: &str, count: usize) -> RawLayer {
    let files = (0..count)
        .map(|i| {
            let text = format!("{name} file {i}: ").repeat(100);
            Entry::file(&format!("usr/share/{name}/doc{i}.txt"), text)
        })
        .collect();
    layer(files)
}

fn build_fixture() -> Option<Fixture> {
    let registry = TestRegistry::start(RegistryConfig::default())?;
    registry.stop_at_exit();
    let base = base_layer("base", 400);
    let team_a = base_layer("team-a", 200);
    let team_b = base_layer("team-b", 200);
    let mut repositories: Vec<String> = (0..5).map(|i| format!("team-a/svc{i}")).collect();
    repositories.extend((5..10).map(|i| format!("team-b/svc{i}")));
    repositories.push("legacy/app".to_string());
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut leaky = 0;
    for (r, repository) in repositories.iter().enumerate() {
        let shared = if repository.starts_with("team-a") {
            &team_a
        } else {
            &team_b
        };
        for (t, tag) in TAGS.iter().enumerate() {
            let mut files = vec![Entry::file("app/VERSION", format!("{repository} {tag}\n"))];
            if (r * TAGS.len() + t).is_multiple_of(4) {
                let credentials =
                    aws_credentials_file(&aws_access_key_id(), &aws_secret_access_key());
                files.push(Entry::file("root/.aws/credentials", credentials));
                leaky += 1;
            }
            // Later tags are newer; the legacy repository's images are years old.
            let created = if repository == "legacy/app" {
                rfc3339(1_580_000_000 + t as u64 * 86_400)
            } else {
                rfc3339(now - (TAGS.len() - t) as u64 * 3600)
            };
            let dir = tempdir();
            let own = layer(files);
            write_layout(dir.path(), &[&base, shared, &own], &created, tag);
            registry.push(
                &format!("oci:{}:{tag}", dir.path().display()),
                &format!("{repository}:{tag}"),
                &[],
            );
        }
    }
    Some(Fixture {
        registry,
        repositories,
        leaky,
    })
}

/// `seconds` since the epoch as RFC 3339 UTC.
fn rfc3339(seconds: u64) -> String {
    let days = seconds / 86_400;
    let rest = seconds % 86_400;
    // Civil date from days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// An OCI layout at `dir` with one image of `layers`, created at `created`, tagged `tag`.
fn write_layout(dir: &Path, layers: &[&RawLayer], created: &str, tag: &str) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| {
        let digest = sha256_digest(bytes);
        std::fs::write(blobs.join(digest_hex(&digest)), bytes).unwrap();
        (digest, bytes.len())
    };
    let config = json!({
        "created": created,
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>()},
        "history": layers.iter().enumerate().map(|(i, _)| json!({"created": created, "created_by": format!("step {i}")})).collect::<Vec<_>>(),
    });
    let (config_digest, config_size) = put(&serde_json::to_vec(&config).unwrap());
    let layer_descriptors: Vec<Value> = layers
        .iter()
        .map(|layer| {
            let (digest, size) = put(&layer.blob);
            json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest, "size": size})
        })
        .collect();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": layer_descriptors,
    });
    let (manifest_digest, manifest_size) = put(&serde_json::to_vec(&manifest).unwrap());
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest_size,
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}

/// Runs `stowaway sweep HOST ARGS…` with a cache in `cache`, the JSON summary on stdout.
fn sweep(host: &str, cache: &Path, args: &[&str]) -> Run {
    let output = stowaway_cmd()
        .args(["sweep", host, "--format", "json", "--cache-dir"])
        .arg(cache)
        .args(args)
        .output()
        .expect("run stowaway sweep");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn summary(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|err| {
        panic!(
            "summary is not JSON ({err}): {}\nstderr: {}",
            run.stdout, run.stderr
        )
    })
}

#[test]
fn every_image_gets_a_report_and_each_shared_layer_is_scanned_once() {
    let Some((_one, fixture)) = fixture() else {
        return;
    };
    let cache = tempdir();
    let host = fixture.registry.host();
    // Pages of 3: the catalog takes 4 pages, each repository's tags 2.
    let first = sweep(&host, cache.path(), &["--page-size", "3", "--jobs", "2"]);
    let first_summary = summary(&first);
    assert_eq!(first.code, 1, "findings fail the gate: {}", first.stderr);
    let images = fixture.repositories.len() * TAGS.len();
    assert_eq!(first_summary["repositories"], fixture.repositories.len());
    assert_eq!(first_summary["tags"], images);
    assert_eq!(first_summary["images"], images);
    assert_eq!(first_summary["scanned"], images, "{first_summary}");
    assert_eq!(first_summary["failed"], 0, "{first_summary}");
    // Three shared base layers and each image's own: each scanned exactly once.
    assert_eq!(
        first_summary["layers_scanned"],
        3 + images,
        "{first_summary}"
    );
    assert_eq!(
        first_summary["layers_reused"],
        2 * images - 3,
        "{first_summary}"
    );
    let critical_or_high: u64 = ["critical", "high"]
        .iter()
        .filter_map(|s| first_summary["findings"][s].as_u64())
        .sum();
    assert!(critical_or_high >= fixture.leaky as u64, "{first_summary}");

    let second = sweep(&host, cache.path(), &["--page-size", "3"]);
    let second_summary = summary(&second);
    assert_eq!(
        second_summary["already_had_result"], images,
        "{second_summary}"
    );
    assert_eq!(second_summary["scanned"], 0);
    assert_eq!(second_summary["layers_scanned"], 0);
    assert_eq!(second_summary["findings"], first_summary["findings"]);
    assert_eq!(second.code, 1);
}

#[test]
fn globs_recency_and_age_choose_what_is_swept() {
    let Some((_one, fixture)) = fixture() else {
        return;
    };
    let host = fixture.registry.host();
    let cache = tempdir();
    let run = sweep(
        &host,
        cache.path(),
        &[
            "--repos",
            "team-a/*",
            "--tags-per-repo",
            "2",
            "--fail-on",
            "none",
        ],
    );
    let chosen = summary(&run);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(chosen["repositories"], 5);
    assert_eq!(chosen["tags"], 10);
    // The two newest of each: v2.0 and v2.1, which a tag glob names too.
    let by_glob = summary(&sweep(
        &host,
        cache.path(),
        &["--repos", "team-a/*", "--tags", "v2.*", "--fail-on", "none"],
    ));
    assert_eq!(by_glob["images"], 10);
    assert_eq!(by_glob["already_had_result"], 10, "{by_glob}");
    // --since leaves out the years-old legacy images.
    let recent = summary(&sweep(
        &host,
        cache.path(),
        &["--repos", "legacy/*", "--since", "30d", "--fail-on", "none"],
    ));
    assert_eq!(
        (recent["repositories"].as_u64(), recent["tags"].as_u64()),
        (Some(1), Some(0))
    );
    let old = summary(&sweep(
        &host,
        cache.path(),
        &["--repos", "*legacy*", "--tags", "v1.0", "--fail-on", "none"],
    ));
    assert_eq!(old["scanned"], 1);

    // Caps: two repositories of the catalog (pages of 3), one tag of each; the rest is
    // counted as skipped, not silently dropped.
    let capped = summary(&sweep(
        &host,
        cache.path(),
        &[
            "--max-repos",
            "2",
            "--max-tags",
            "1",
            "--page-size",
            "3",
            "--fail-on",
            "none",
        ],
    ));
    assert_eq!(
        (capped["repositories"].as_u64(), capped["tags"].as_u64()),
        (Some(2), Some(2))
    );
    let skipped: Vec<&str> = capped["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|skip| skip["what"].as_str().unwrap())
        .collect();
    assert_eq!(
        skipped,
        ["catalog", "legacy/app", "team-a/svc0"],
        "{capped}"
    );

    for (args, expected) in [
        (
            &["--repos", "team-[a"][..],
            "--repos \"team-[a\": not a glob",
        ),
        (&["--since", "7y"][..], "--since"),
        (
            &["--tags", "v1", "--tags-per-repo", "2"][..],
            "cannot be used with",
        ),
    ] {
        let run = sweep(&host, cache.path(), args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(expected), "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty());
    }
}

#[test]
fn a_rate_limiting_registry_is_waited_for_and_bad_registries_fail_in_one_line() {
    let Some((_one, fixture)) = fixture() else {
        return;
    };
    let upstream = Upstream::new(&fixture.registry);
    let limited = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
    let seen = Arc::clone(&limited);
    let proxy = FaultProxy::start(move |request| {
        let (catalog, tags) = &*seen;
        if request.path.starts_with("/v2/_catalog") && catalog.fetch_add(1, Ordering::SeqCst) == 0 {
            return Reply::new(429, r#"{"errors":[{"code":"TOOMANYREQUESTS"}]}"#)
                .header("Retry-After", "1");
        }
        if request.path.contains("/tags/list") && tags.fetch_add(1, Ordering::SeqCst) == 0 {
            return Reply::new(503, "busy").header("Retry-After", "1");
        }
        upstream.reply(request)
    });
    let cache = tempdir();
    let started = Instant::now();
    let run = sweep(
        &proxy.host(),
        cache.path(),
        &["--repos", "team-b/svc5", "--fail-on", "none"],
    );
    let waited = summary(&run);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(waited["images"], 5, "{waited}");
    assert_eq!(waited["scanned"], 5, "{waited}");
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert!(
        proxy
            .requests()
            .iter()
            .filter(|r| r.path.starts_with("/v2/_catalog"))
            .count()
            >= 2
    );

    // A catalog that is not JSON, a registry that refuses, and none at all: exit 2, one line.
    let broken = FaultProxy::start(|request| {
        if request.path.starts_with("/v2/_catalog") {
            Reply::new(200, "<html>")
        } else if request.path == "/v2/" {
            Reply::new(200, "{}")
        } else {
            Reply::new(401, "")
        }
    });
    let refusing =
        FaultProxy::start(|_| Reply::new(401, r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#));
    for (host, expected) in [
        (broken.host(), "is not the JSON list"),
        (refusing.host(), "authentication failed"),
        ("127.0.0.1:1".to_string(), "cannot connect"),
    ] {
        let run = sweep(&host, cache.path(), &[]);
        assert_eq!(run.code, 2, "{host}: {}", run.stderr);
        assert!(run.stderr.contains(expected), "{host}: {}", run.stderr);
        assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
    }
}

#[test]
fn throughput_with_one_and_two_jobs() {
    let Some((_one, fixture)) = fixture() else {
        return;
    };
    for jobs in ["1", "2"] {
        let cache = tempdir();
        let run = sweep(
            &fixture.registry.host(),
            cache.path(),
            &["--jobs", jobs, "--fail-on", "none"],
        );
        let measured = summary(&run);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(measured["failed"], 0, "{measured}");
        println!(
            "sweep --jobs {jobs}: {} images, {} layers scanned in {} ms: {} images/s, {} layers/s",
            measured["scanned"],
            measured["layers_scanned"],
            measured["elapsed_ms"],
            measured["images_per_second"],
            measured["layers_per_second"]
        );
    }
}

/// A running `stowaway worker` on a shared store (one scan at a time), its health and metrics
/// on a free loopback port; killed when dropped.
struct Worker {
    child: Child,
    base: String,
    log: Arc<Mutex<String>>,
    _policy: tempfile::TempDir,
}

impl Worker {
    fn start(store: &str) -> Worker {
        Worker::start_with(store, "allowed_registries = [\"127.0.0.1:*\"]\n", &[])
    }

    /// A worker with `policy` as its policy file and more arguments.
    fn start_with(store: &str, policy_text: &str, extra: &[&str]) -> Worker {
        let policy = tempdir();
        let policy_path = policy.path().join("policy.toml");
        std::fs::write(&policy_path, policy_text).unwrap();
        let mut child = stowaway_cmd()
            .args(["worker", "--listen", "127.0.0.1:0", "--concurrency", "1"])
            .args(["--store", store, "--config"])
            .arg(&policy_path)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start stowaway worker");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (sender, receiver) = mpsc::channel();
        let sink = Arc::clone(&log);
        // Read to the end: a worker logs every scan, and a full pipe would stop it.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(address) = line.split("listening on ").nth(1) {
                    let address = address.split_whitespace().next().unwrap_or_default();
                    let _ = sender.send(address.to_string());
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let base = receiver
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|_| panic!("the worker did not start:\n{}", log.lock().unwrap()));
        Worker {
            child,
            base,
            log,
            _policy: policy,
        }
    }

    /// `stowaway_layers_total{source="scanned"}`: layers this worker walked itself.
    fn layers_scanned(&self) -> u64 {
        let text = reqwest::blocking::get(format!("{}/metrics", self.base))
            .and_then(|answer| answer.text())
            .expect("GET /metrics");
        text.lines()
            .find_map(|line| line.strip_prefix("stowaway_layers_total{source=\"scanned\"} "))
            .and_then(|value| value.trim().parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no scanned layers in /metrics:\n{text}")) as u64
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `stowaway sweep HOST --store URL ARGS…`, the JSON summary on stdout.
fn sweep_shared(host: &str, store: &str, args: &[&str]) -> Run {
    let cache = tempdir();
    sweep(
        host,
        cache.path(),
        &[&["--store", store, "--fail-on", "none"][..], args].concat(),
    )
}

#[test]
fn a_shared_store_sweep_is_scanned_by_workers_each_layer_once() {
    let Some((_one, fixture)) = fixture() else {
        return;
    };
    let host = fixture.registry.host();
    let images = fixture.repositories.len() * TAGS.len();
    // Three shared base layers and each image's own.
    let distinct_layers = 3 + images;
    for workers in [1, 2] {
        let Some(redis) = TestRedis::start() else {
            return;
        };
        let url = redis.url();
        let running: Vec<Worker> = (0..workers).map(|_| Worker::start(&url)).collect();
        let run = sweep_shared(&host, &url, &["--wait", "10m"]);
        let measured = summary(&run);
        let logs = || {
            let logs: Vec<String> = running
                .iter()
                .map(|w| w.log.lock().unwrap().clone())
                .collect();
            logs.join("\n---\n")
        };
        assert_eq!(run.code, 0, "{}\n{}", run.stderr, logs());
        assert_eq!(measured["images"], images, "{measured}");
        assert_eq!(measured["scanned"], images, "{measured}\n{}", logs());
        assert_eq!(measured["failed"], 0, "{measured}");
        assert_eq!(measured["queued"], 0, "{measured}");
        assert_eq!(measured["layers_scanned"], distinct_layers, "{measured}");
        assert_eq!(measured["layers_reused"], 2 * images - 3, "{measured}");
        let critical_or_high: u64 = ["critical", "high"]
            .iter()
            .filter_map(|s| measured["findings"][s].as_u64())
            .sum();
        assert!(critical_or_high >= fixture.leaky as u64, "{measured}");
        let per_worker: Vec<u64> = running.iter().map(Worker::layers_scanned).collect();
        assert_eq!(
            per_worker.iter().sum::<u64>(),
            distinct_layers as u64,
            "layers scanned per worker: {per_worker:?}\n{}",
            logs()
        );
        println!(
            "sweep --store with {workers} worker(s): {} images, {} layers scanned ({per_worker:?} per worker) in {} ms: {} images/s, {} layers/s",
            measured["scanned"],
            measured["layers_scanned"],
            measured["elapsed_ms"],
            measured["images_per_second"],
            measured["layers_per_second"]
        );

        // Everything has its report now: nothing is queued again.
        let again = sweep_shared(&host, &url, &[]);
        let again_summary = summary(&again);
        assert_eq!(again.code, 0, "{}", again.stderr);
        assert_eq!(
            again_summary["already_had_result"], images,
            "{again_summary}"
        );
        assert_eq!(again_summary["queued"], 0, "{again_summary}");
        assert_eq!(again_summary["findings"], measured["findings"]);
    }
}

#[test]
fn a_shared_sweep_ends_once_queued_counts_dead_letters_as_failed_and_needs_its_store() {
    let Some((_one, fixture)) = fixture() else {
        return;
    };
    let Some(redis) = TestRedis::start() else {
        return;
    };
    let host = fixture.registry.host();
    // No worker: the images wait in the queue, and a second sweep finds them pending there.
    for _ in 0..2 {
        let run = sweep_shared(&host, &redis.url(), &["--repos", "legacy/*"]);
        let queued = summary(&run);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(queued["queued"], TAGS.len(), "{queued}");
        assert_eq!(queued["scanned"], 0, "{queued}");
    }
    assert_eq!(
        redis.command(&[
            "XLEN",
            &format!("stowaway:scans/{}", summary_digest(&host, &redis))
        ]),
        format!(":{}", TAGS.len())
    );
    // --wait with no worker: each image fails once the timeout passes, saying why.
    let run = sweep_shared(
        &host,
        &redis.url(),
        &["--repos", "legacy/*", "--wait", "1s"],
    );
    let waited = summary(&run);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(waited["failed"], TAGS.len(), "{waited}");
    assert!(
        waited["failures"][0]["error"]
            .as_str()
            .unwrap()
            .contains("no result within --wait 1s"),
        "{waited}"
    );

    // A worker that may not reach the registry gives each image up after its one attempt: a
    // dead letter, which the waiting sweep counts as failed, with the worker's reason.
    let refusing = Worker::start_with(
        &redis.url(),
        "allowed_registries = [\"registry.invalid\"]\n",
        &["--max-attempts", "1"],
    );
    let run = sweep_shared(
        &host,
        &redis.url(),
        &["--repos", "legacy/*", "--wait", "2m"],
    );
    let buried = summary(&run);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(buried["failed"], TAGS.len(), "{buried}");
    for failure in buried["failures"].as_array().unwrap() {
        let error = failure["error"].as_str().unwrap();
        assert!(
            error.contains("not in allowed_registries") && error.contains("after 1 attempts"),
            "{buried}\n{}",
            refusing.log.lock().unwrap()
        );
    }

    for (args, expected) in [
        (
            vec!["--store", "redis://127.0.0.1:1"],
            "sweep --store queues its work on the shared store: store redis://127.0.0.1:1 is unreachable",
        ),
        (vec!["--wait"], "--wait needs --store"),
    ] {
        let cache = tempdir();
        let run = sweep(&host, cache.path(), &args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(expected), "{args:?}: {}", run.stderr);
        assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
    }
}

/// The rules digest a sweep on this store keys its work by.
fn summary_digest(host: &str, redis: &TestRedis) -> String {
    let run = sweep_shared(host, &redis.url(), &["--repos", "no-such-repository"]);
    summary(&run)["rules_digest"].as_str().unwrap().to_string()
}
