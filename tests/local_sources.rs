//! Local image sources (issue 15): the Docker daemon (`docker-daemon:` and bare names through
//! `--image-src`), compressed `docker save` and oci-archive tarballs, and `--images-from`
//! inventories. The daemon is a real `dockerd` each test starts on a private socket
//! (`support::docker`); no part of the Engine API is mocked.

mod support;

use std::io::Write;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;
use support::docker::TestDocker;
use support::run::{Run, finding_keys, run, run_env, scan_json, scan_json_env};
use support::*;

/// The classic leak written as a legacy `docker save` (gzip layers) in `dir`.
fn leaky_archive(dir: &Path) -> (ImageSpec, Written) {
    let (spec, _planted) = classic_leak();
    let written = write_image_in(&spec, Format::DockerLegacy, Compression::Gzip, dir);
    (spec, written)
}

fn scan_args<'a>(image: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "scan",
        "--format",
        "json",
        "--show-secrets",
        "--no-progress",
    ];
    args.extend_from_slice(extra);
    args.push(image);
    args
}

/// Exit 2 and one line on stderr that names `names`.
fn assert_one_line_error(run: &Run, names: &str, label: &str) {
    assert_eq!(run.code, 2, "{label}: exit code; stderr: {}", run.stderr);
    let errors: Vec<&str> = run
        .stderr
        .lines()
        .filter(|line| line.starts_with("stowaway: error:"))
        .collect();
    assert_eq!(errors.len(), 1, "{label}: one error line: {}", run.stderr);
    assert!(
        errors[0].contains(names),
        "{label}: names {names}: {}",
        errors[0]
    );
    assert!(!run.stderr.contains("panicked"), "{label}: {}", run.stderr);
}

#[test]
fn docker_daemon_gives_the_findings_of_the_saved_archive() {
    let Some(daemon) = TestDocker::start() else {
        return;
    };
    let dir = tempdir();
    let (spec, written) = leaky_archive(dir.path());
    daemon.load(&written.path);
    let host = daemon.host();
    let env = [("DOCKER_HOST", host.as_str())];

    let (archive_code, archive) = scan_json(&format!("docker-archive:{}", written.path.display()));
    let name = format!("docker-daemon:{CLASSIC_LEAK_REPO_TAG}");
    let (daemon_code, from_daemon) = scan_json_env(&name, &env);
    assert_eq!((archive_code, daemon_code), (1, 1));
    assert_eq!(finding_keys(&from_daemon), finding_keys(&archive));
    assert!(!finding_keys(&archive).is_empty());
    assert_eq!(from_daemon["images"][0]["reference"], name.as_str());
    assert_eq!(
        from_daemon["images"][0]["config_digest"],
        archive["images"][0]["config_digest"]
    );

    // By image ID too, and the note about the temporary copy is on stderr.
    let id = written.config_digest.clone();
    let by_id = run_env(&scan_args(&format!("docker-daemon:{id}"), &[]), &env);
    assert_eq!(by_id.code, 1, "{}", by_id.stderr);
    assert_eq!(finding_keys(&by_id.json()), finding_keys(&archive));
    assert!(by_id.stderr.contains("temporary file"), "{}", by_id.stderr);
    let quiet = run_env(&scan_args(&name, &["--quiet"]), &env);
    assert_eq!(quiet.code, 1);
    assert!(!quiet.stderr.contains("temporary file"), "{}", quiet.stderr);

    // A bare name: the daemon first, so the image never left the machine.
    let bare = run_env(&scan_args(&spec.repo_tag, &[]), &env);
    assert_eq!(bare.code, 1, "{}", bare.stderr);
    assert_eq!(finding_keys(&bare.json()), finding_keys(&archive));
    assert_eq!(bare.json()["images"][0]["reference"], name.as_str());

    // Not in the daemon: one line naming the image and the daemon.
    let missing = run_env(&scan_args("docker-daemon:example.com/absent:9", &[]), &env);
    assert_one_line_error(&missing, "no image example.com/absent:9", "missing image");
    assert!(missing.stderr.contains(&host), "{}", missing.stderr);

    // A bare name the daemon lacks, with the registry left out: where it looked.
    let nowhere = run_env(
        &scan_args("example.com/absent:9", &["--image-src", "docker"]),
        &env,
    );
    assert_one_line_error(&nowhere, "not found in any image source", "bare, missing");
    assert!(
        nowhere.stderr.contains("docker daemon at"),
        "{}",
        nowhere.stderr
    );
}

#[test]
fn a_bare_name_skips_an_absent_daemon_quietly() {
    let dir = tempdir();
    let (spec, written) = leaky_archive(dir.path());
    let socket = dir.path().join("no-daemon.sock");
    let host = format!("unix://{}", socket.display());
    // containerd and podman's store, next in the default order, are pinned to places that do
    // not exist either, whatever this machine has.
    let storage_conf = dir.path().join("storage.conf");
    let no_store = dir.path().join("no-store");
    std::fs::write(
        &storage_conf,
        format!(
            "[storage]\ngraphroot = {:?}\n",
            no_store.display().to_string()
        ),
    )
    .unwrap();
    let no_containerd = dir.path().join("no-containerd.sock").display().to_string();
    let env = [
        ("DOCKER_HOST", host.as_str()),
        ("CONTAINERS_STORAGE_CONF", storage_conf.to_str().unwrap()),
        ("STOWAWAY_CONTAINERD_ADDRESS", no_containerd.as_str()),
    ];
    // Daemon absent, registry not asked: where it looked, in one line.
    let absent = run_env(&scan_args(&spec.repo_tag, &["--image-src", "docker"]), &env);
    assert_one_line_error(&absent, "not found in any image source", "absent daemon");
    assert!(absent.stderr.contains("no socket at"), "{}", absent.stderr);
    // Daemon absent, registry next: the registry answers (here, a registry on a closed
    // loopback port refuses), and the daemon is not mentioned.
    let port = free_port();
    let reference = format!("127.0.0.1:{port}/leaky:1.0");
    let to_registry = run_env(&scan_args(&reference, &[]), &env);
    assert_eq!(to_registry.code, 2, "{}", to_registry.stderr);
    assert!(
        !to_registry.stderr.contains("docker daemon"),
        "{}",
        to_registry.stderr
    );
    assert!(
        to_registry.stderr.contains(&reference),
        "{}",
        to_registry.stderr
    );
    // The explicit transport, daemon absent: that is an error.
    let explicit = run_env(&scan_args("docker-daemon:app:1", &[]), &env);
    assert_one_line_error(&explicit, "no Docker daemon at", "explicit, absent");
    assert!(
        explicit.stderr.contains("no socket at"),
        "{}",
        explicit.stderr
    );
    // And the archive still scans as a path, whatever --image-src says.
    let path = written.path.display().to_string();
    let as_path = run(&scan_args(&path, &["--image-src", "docker"]));
    assert_eq!(as_path.code, 1, "{}", as_path.stderr);
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, as DOCKER_CERT_PATH
/// holds them (ca.pem, cert.pem, key.pem) plus the server's pair.
fn make_tls_files(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    pki::make_ca(dir, "/CN=test-ca", "ca-key.pem", "ca.pem");
    let ca = ("ca.pem", "ca-key.pem");
    let server = "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n";
    let server_files = ("server-key.pem", "server-cert.pem");
    pki::issue(dir, ca, "/CN=127.0.0.1", server, server_files);
    let client = "extendedKeyUsage=clientAuth\n";
    pki::issue(dir, ca, "/CN=client", client, ("key.pem", "cert.pem"));
}

#[test]
fn docker_daemon_over_tls_and_through_a_docker_context() {
    if !tool_available("openssl") {
        return;
    }
    let certs = tempdir();
    make_tls_files(certs.path());
    let port = free_port();
    let cert = |name: &str| certs.path().join(name).display().to_string();
    let flags = vec![
        "--tlsverify".to_string(),
        format!("--tlscacert={}", cert("ca.pem")),
        format!("--tlscert={}", cert("server-cert.pem")),
        format!("--tlskey={}", cert("server-key.pem")),
        "--host".to_string(),
        format!("tcp://127.0.0.1:{port}"),
    ];
    let Some(daemon) = TestDocker::start_with(&flags) else {
        return;
    };
    let dir = tempdir();
    let (spec, written) = leaky_archive(dir.path());
    daemon.load(&written.path);
    let (_, archive) = scan_json(&format!("docker-archive:{}", written.path.display()));
    let name = format!("docker-daemon:{}", spec.repo_tag);

    // tcp:// with DOCKER_TLS_VERIFY and DOCKER_CERT_PATH: the client certificate is offered
    // and the daemon's is checked against ca.pem.
    let tcp = format!("tcp://127.0.0.1:{port}");
    let cert_path = certs.path().display().to_string();
    let tls_env = [
        ("DOCKER_HOST", tcp.as_str()),
        ("DOCKER_TLS_VERIFY", "1"),
        ("DOCKER_CERT_PATH", cert_path.as_str()),
    ];
    let (code, over_tls) = scan_json_env(&name, &tls_env);
    assert_eq!(code, 1);
    assert_eq!(finding_keys(&over_tls), finding_keys(&archive));
    // Without TLS the daemon refuses: one line, exit 2.
    let plain = run_env(&scan_args(&name, &[]), &[("DOCKER_HOST", tcp.as_str())]);
    assert_eq!(plain.code, 2, "{}", plain.stderr);
    assert!(!plain.stderr.contains("panicked"), "{}", plain.stderr);

    // The docker CLI's current context, made by the docker CLI itself: no DOCKER_HOST.
    let config = daemon.dir().join("ctx-config");
    let cli = |args: &[&str]| {
        let out = Command::new("docker")
            .env_remove("DOCKER_HOST")
            .env("DOCKER_CONFIG", &config)
            .args(args)
            .output()
            .expect("run docker");
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let docker_endpoint = format!("host={}", daemon.host());
    cli(&["context", "create", "private", "--docker", &docker_endpoint]);
    cli(&["context", "use", "private"]);
    let mut command = support::stowaway_cmd();
    command
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .env("DOCKER_CONFIG", &config)
        .args(scan_args(&name, &[]));
    let out = command.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let from_context: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(finding_keys(&from_context), finding_keys(&archive));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

#[test]
fn bad_daemon_addresses_say_what_is_wrong_in_one_line() {
    let dir = tempdir();
    // A regular file where the socket should be.
    let not_socket = dir.path().join("file.sock");
    std::fs::write(&not_socket, b"").unwrap();
    let host = format!("unix://{}", not_socket.display());
    let out = run_env(
        &scan_args("docker-daemon:app", &[]),
        &[("DOCKER_HOST", &host)],
    );
    assert_one_line_error(&out, "is not a socket", "not a socket");
    // A socket whose server accepts and closes at once (we run as root, so a mode-000 socket
    // would not stop us: this is the refusal a test can make).
    let closing = dir.path().join("closing.sock");
    let listener = UnixListener::bind(&closing).unwrap();
    let server = std::thread::spawn(move || {
        for stream in listener.incoming().take(1) {
            drop(stream);
        }
    });
    let host = format!("unix://{}", closing.display());
    let out = run_env(
        &scan_args("docker-daemon:app", &[]),
        &[("DOCKER_HOST", &host)],
    );
    assert_one_line_error(&out, "closing.sock", "server closes");
    server.join().unwrap();
    // A stale socket: nothing listens.
    let stale = dir.path().join("stale.sock");
    drop(UnixListener::bind(&stale).unwrap());
    let host = format!("unix://{}", stale.display());
    let out = run_env(
        &scan_args("docker-daemon:app", &[]),
        &[("DOCKER_HOST", &host)],
    );
    assert_one_line_error(&out, "connection refused", "stale socket");
    // Schemes stowaway does not speak.
    let out = run_env(
        &scan_args("docker-daemon:app", &[]),
        &[("DOCKER_HOST", "ssh://me@example.invalid")],
    );
    assert_one_line_error(&out, "ssh:// scheme is not supported", "ssh");
    // A transport stowaway does not know.
    let out = run(&scan_args("foo:bar/baz", &[]));
    assert_one_line_error(&out, "unknown transport foo:", "unknown transport");
    assert!(
        out.stderr.contains("docker save -o app.tar app"),
        "{}",
        out.stderr
    );
}

/// Compresses `src` with a command-line tool (`gzip -c`, `xz -c`…) into `dest`.
fn compress_file(tool: &str, src: &Path, dest: &Path) {
    let input = std::fs::File::open(src).unwrap();
    let output = std::fs::File::create(dest).unwrap();
    let status = Command::new(tool)
        .arg("-c")
        .stdin(input)
        .stdout(output)
        .status()
        .unwrap_or_else(|err| panic!("run {tool}: {err}"));
    assert!(status.success(), "{tool} failed");
}

#[test]
fn compressed_saves_and_oci_archives_give_the_same_findings() {
    let tools = [
        ("gzip", "gz"),
        ("zstd", "zst"),
        ("xz", "xz"),
        ("bzip2", "bz2"),
    ];
    if tools.iter().any(|(tool, _)| !tool_available(tool)) {
        return;
    }
    let (spec, _) = classic_leak();
    let dir = tempdir();
    for (format, transport) in [
        (Format::DockerLegacy, "docker-archive"),
        (Format::DockerOci, "docker-archive"),
        (Format::OciArchive, "oci-archive"),
    ] {
        let sub = dir.path().join(format!("{format:?}"));
        let written = write_image_in(&spec, format, Compression::Gzip, &sub);
        let (_, plain) = scan_json(&format!("{transport}:{}", written.path.display()));
        let expected = finding_keys(&plain);
        assert!(!expected.is_empty());
        for (tool, extension) in tools {
            let compressed = sub.join(format!("image.tar.{extension}"));
            compress_file(tool, &written.path, &compressed);
            let path = compressed.display().to_string();
            for argument in [format!("{transport}:{path}"), path.clone()] {
                let scanned = run(&scan_args(&argument, &[]));
                assert_eq!(scanned.code, 1, "{argument}: {}", scanned.stderr);
                assert_eq!(finding_keys(&scanned.json()), expected, "{argument}");
                assert!(
                    scanned.stderr.contains(&format!("{tool} compressed")),
                    "{argument}: {}",
                    scanned.stderr
                );
            }
        }
        // A corrupted compressed save: one line naming it.
        let bytes = std::fs::read(sub.join("image.tar.gz")).unwrap();
        let cut = sub.join("cut.tar.gz");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let cut_arg = cut.display().to_string();
        let broken = run(&scan_args(&cut_arg, &["--quiet"]));
        assert_one_line_error(&broken, &cut_arg, "cut gzip");
        assert!(broken.stderr.contains("gzip stream"), "{}", broken.stderr);
    }
}

/// A `kubectl get pods -A -o json` list: three pods naming three images, one of them twice
/// (in two namespaces), one that exists nowhere.
fn pod_list(leaky: &str, clean: &str, missing: &str) -> Value {
    let pod = |namespace: &str, name: &str, containers: Value| {
        serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace,
                         "ownerReferences": [{"kind": "ReplicaSet", "name": format!("{name}-rs")}]},
            "spec": {"containers": containers},
            "status": {"phase": "Running"}
        })
    };
    serde_json::json!({
        "apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""},
        "items": [
            pod("shop", "web-7d9f", serde_json::json!([{"name": "web", "image": leaky}])),
            pod("ops", "cron-1", serde_json::json!([
                {"name": "job", "image": leaky},
                {"name": "side", "image": clean}])),
            pod("shop", "db-0", serde_json::json!([{"name": "db", "image": missing}])),
        ]
    })
}

#[test]
fn images_from_a_pod_list_scans_each_image_once_and_names_the_workloads() {
    let dir = tempdir();
    let (spec, _) = classic_leak();
    let leaky = write_image_in(
        &spec,
        Format::DockerOci,
        Compression::Gzip,
        &dir.path().join("a"),
    );
    let clean_spec = ImageSpec {
        layers: vec![Layer::new(
            "COPY app /app",
            vec![Entry::file("app/readme.txt", "nothing to see")],
        )],
        repo_tag: "example.com/clean:1.0".to_string(),
        ..ImageSpec::default()
    };
    let clean = write_image_in(
        &clean_spec,
        Format::OciArchive,
        Compression::Gzip,
        &dir.path().join("b"),
    );
    let leaky_ref = format!("docker-archive:{}", leaky.path.display());
    let clean_ref = format!("oci-archive:{}", clean.path.display());
    let missing_ref = format!("docker-archive:{}", dir.path().join("gone.tar").display());
    let list = pod_list(&leaky_ref, &clean_ref, &missing_ref);
    let list_path = dir.path().join("pods.json");
    std::fs::write(&list_path, serde_json::to_vec_pretty(&list).unwrap()).unwrap();
    let list_arg = list_path.display().to_string();

    let scanned = run(&[
        "scan",
        "--format",
        "json",
        "--no-progress",
        "--images-from",
        &list_arg,
    ]);
    // Findings that fail the gate and an error: 1.
    assert_eq!(scanned.code, 1, "{}", scanned.stderr);
    let report = scanned.json();
    let images = report["images"].as_array().unwrap();
    assert_eq!(images.len(), 2, "two images scanned");
    assert_eq!(images[0]["reference"], leaky_ref.as_str());
    let users: Vec<String> = images[0]["used_by"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            format!(
                "{}/{}/{}/{}",
                w["namespace"].as_str().unwrap(),
                w["kind"].as_str().unwrap(),
                w["name"].as_str().unwrap(),
                w["container"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(users, ["shop/Pod/web-7d9f/web", "ops/Pod/cron-1/job"]);
    assert_eq!(images[1]["used_by"][0]["container"], "side");
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["image"], missing_ref.as_str());
    assert_eq!(errors[0]["used_by"][0]["name"], "db-0");
    let error_lines: Vec<&str> = scanned
        .stderr
        .lines()
        .filter(|line| line.starts_with("stowaway: error:"))
        .collect();
    assert_eq!(error_lines.len(), 1, "{}", scanned.stderr);
    assert!(error_lines[0].contains(&missing_ref), "{}", error_lines[0]);

    // The text report names the workloads and the image that failed.
    let text = run(&["scan", "--no-progress", "--images-from", &list_arg]);
    assert_eq!(text.code, 1);
    assert!(
        text.stdout
            .contains("used by shop/Pod/web-7d9f (container web)"),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("not scanned"), "{}", text.stdout);
    assert!(
        text.stdout.contains("1 image not scanned"),
        "{}",
        text.stdout
    );

    // Errors and no finding at or above the gate: 2. A plain list from standard input.
    let mut child = support::stowaway_cmd()
        .args([
            "scan",
            "--format",
            "json",
            "--no-progress",
            "--fail-on",
            "none",
            "--images-from",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let input = format!("# images\n{clean_ref}\n{missing_ref}\n{clean_ref}\n");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["images"].as_array().unwrap().len(), 1);
    assert_eq!(report["errors"].as_array().unwrap().len(), 1);
    assert!(report["images"][0].get("used_by").is_none());

    // Nothing failed and nothing found: 0.
    let clean_only = dir.path().join("clean.txt");
    std::fs::write(&clean_only, format!("{clean_ref}\n")).unwrap();
    let ok = run(&[
        "scan",
        "--no-progress",
        "--images-from",
        clean_only.to_str().unwrap(),
    ]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
}
