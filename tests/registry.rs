//! Scanning straight from a real registry (Debian's docker-registry on 127.0.0.1, images
//! pushed with skopeo) gives the same findings as scanning the same image from a local
//! archive; auth comes from docker config files and credential helpers; failures are clear.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use support::fault_proxy::{FaultProxy, Reply, Upstream};
use support::registry::{RegistryConfig, TestRegistry, nest_index, write_docker_config};
use support::run::{Run, assert_planted_found, finding_keys, run, scan_json};
use support::*;

/// Runs stowaway with extra environment variables and optional standard input.
fn run_with(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Run {
    let mut command = stowaway_cmd();
    command.args(args);
    for (key, value) in env {
        command.env(key, value);
    }
    command.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().expect("run stowaway");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let output = child.wait_with_output().unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// An environment with no auth files of the developer's leaking in.
fn isolated_env(dir: &std::path::Path) -> Vec<(String, String)> {
    vec![
        ("HOME".into(), dir.display().to_string()),
        (
            "DOCKER_CONFIG".into(),
            dir.join("docker").display().to_string(),
        ),
        ("REGISTRY_AUTH_FILE".into(), String::new()),
        (
            "XDG_RUNTIME_DIR".into(),
            dir.join("xdg").display().to_string(),
        ),
    ]
}

fn as_refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

#[test]
fn registry_scan_matches_local_scan_for_gzip_and_zstd() {
    let Some(registry) = TestRegistry::start(RegistryConfig::default()) else {
        return;
    };
    let (spec, planted) = classic_leak();
    let dir = tempdir();
    for compression in [Compression::Gzip, Compression::Zstd] {
        let written = write_image_in(
            &spec,
            Format::OciLayout,
            compression,
            &dir.path().join(format!("{compression:?}")),
        );
        let local = format!("oci:{}:{}", written.path.display(), spec.tag());
        let tag = format!("leaky:{compression:?}").to_lowercase();
        registry.push(&local, &tag, &[]);
        let (_, from_local) = scan_json(&local);
        let remote = format!("{}/{tag}", registry.host());
        for arg in [remote.clone(), format!("docker://{remote}")] {
            let (code, from_registry) = scan_json(&arg);
            assert_eq!(code, 1);
            assert_planted_found(&from_registry["images"][0], &spec, &planted, &arg);
            assert_eq!(
                finding_keys(&from_local),
                finding_keys(&from_registry),
                "{arg}"
            );
            let layers = from_registry["images"][0]["layers"].as_array().unwrap();
            let expected = format!("{compression:?}").to_lowercase();
            assert!(
                layers.iter().all(|l| l["compression"] == expected.as_str()),
                "{arg}"
            );
        }
        // By digest too.
        let digest = written.manifest_digest.clone();
        let (_, by_digest) = scan_json(&format!("{}/leaky@{digest}", registry.host()));
        assert_eq!(finding_keys(&from_local), finding_keys(&by_digest));
    }
}

#[test]
fn multi_platform_index_by_platform_and_all_platforms() {
    let Some(registry) = TestRegistry::start(RegistryConfig::default()) else {
        return;
    };
    let (leaky, planted) = classic_leak();
    let clean = ImageSpec {
        layers: vec![Layer::new(
            "COPY README /README",
            vec![Entry::file("README", "hello\n")],
        )],
        architecture: "arm64".to_string(),
        ..ImageSpec::default()
    };
    let dir = tempdir();
    let layout = dir.path().join("index");
    write_oci_index(
        &[(&leaky, None), (&clean, None)],
        Compression::Gzip,
        &layout,
        false,
    );
    nest_index(&layout, "multi");
    registry.push(
        &format!("oci:{}:multi", layout.display()),
        "multi:1",
        &["--all"],
    );
    let remote = format!("{}/multi:1", registry.host());

    let run_arm = run(&[
        "scan",
        "--format",
        "json",
        "--platform",
        "linux/arm64",
        &remote,
    ]);
    assert_eq!(run_arm.code, 0, "{}", run_arm.stderr);
    let report = run_arm.json();
    assert_eq!(report["images"].as_array().unwrap().len(), 1);
    assert_eq!(report["images"][0]["platform"], "linux/arm64");

    let run_amd = run(&[
        "scan",
        "--format",
        "json",
        "--show-secrets",
        "--platform",
        "linux/amd64",
        &remote,
    ]);
    assert_eq!(run_amd.code, 1, "{}", run_amd.stderr);
    assert_planted_found(
        &run_amd.json()["images"][0],
        &leaky,
        &planted,
        "amd64 from index",
    );

    let all = run(&["scan", "--format", "json", "--all-platforms", &remote]);
    assert_eq!(all.code, 1, "{}", all.stderr);
    let report = all.json();
    let platforms: Vec<&str> = report["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["platform"].as_str().unwrap())
        .collect();
    assert_eq!(platforms, vec!["linux/amd64", "linux/arm64"]);

    let missing = run(&["scan", "--platform", "linux/s390x", &remote]);
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("no image for platform linux/s390x"),
        "{}",
        missing.stderr
    );
    assert!(missing.stderr.contains("linux/arm64"), "{}", missing.stderr);
}

#[test]
fn basic_auth_from_config_helper_and_flags() {
    let password = support::secrets::password(20);
    let Some(registry) = TestRegistry::start(RegistryConfig {
        basic_auth: Some(("ci-user".to_string(), password.clone())),
        ..RegistryConfig::default()
    }) else {
        return;
    };
    let (spec, _) = classic_leak();
    registry.push_image(&spec, "private:1");
    let remote = format!("{}/private:1", registry.host());
    let home = tempdir();
    let env = isolated_env(home.path());
    // Neither the password nor the wrong ones tried below, on any run.
    let clean = |run: &Run| {
        for secret in [password.as_str(), "Wr0ng-Passw0rd-42", "not-the-password"] {
            assert!(
                !run.stdout.contains(secret) && !run.stderr.contains(secret),
                "a password was printed"
            );
        }
    };

    // Anonymous: refused, clearly.
    let denied = run_with(&["scan", &remote], &as_refs(&env), None);
    clean(&denied);
    assert_eq!(denied.code, 2, "{}", denied.stderr);
    assert!(
        denied
            .stderr
            .contains(&format!("authentication failed for {}", registry.host())),
        "{}",
        denied.stderr
    );

    // docker config.json with a basic auth entry.
    let docker_dir = home.path().join("docker");
    std::fs::create_dir_all(&docker_dir).unwrap();
    write_docker_config(&docker_dir, &registry.host(), "ci-user", &password);
    let ok = run_with(&["scan", "--format", "json", &remote], &as_refs(&env), None);
    clean(&ok);
    assert_eq!(ok.code, 1, "{}", ok.stderr);
    assert!(!ok.stdout.contains(&password) && !ok.stderr.contains(&password));

    // A wrong password in the config: exit 2, the host named, the password nowhere.
    write_docker_config(
        &docker_dir,
        &registry.host(),
        "ci-user",
        "Wr0ng-Passw0rd-42",
    );
    let wrong = run_with(&["scan", &remote], &as_refs(&env), None);
    clean(&wrong);
    assert_eq!(wrong.code, 2);
    assert!(
        wrong
            .stderr
            .contains(&format!("authentication failed for {}", registry.host())),
        "{}",
        wrong.stderr
    );
    assert!(
        !wrong.stderr.contains("Wr0ng-Passw0rd-42") && !wrong.stdout.contains("Wr0ng-Passw0rd-42")
    );

    // A credential helper on PATH, named by credHelpers.
    let bin = home.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    write_credential_helper(&bin, "test", &registry.host(), "ci-user", &password);
    std::fs::write(
        docker_dir.join("config.json"),
        serde_json::json!({"credHelpers": {registry.host(): "test"}}).to_string(),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut helper_env = env.clone();
    helper_env.push(("PATH".into(), path));
    let via_helper = run_with(
        &["scan", "--format", "json", &remote],
        &as_refs(&helper_env),
        None,
    );
    clean(&via_helper);
    assert_eq!(via_helper.code, 1, "{}", via_helper.stderr);
    assert!(!via_helper.stdout.contains(&password));

    // --username with --password-stdin wins over everything else.
    let flags = run_with(
        &[
            "scan",
            "--format",
            "json",
            "--username",
            "ci-user",
            "--password-stdin",
            &remote,
        ],
        &as_refs(&env),
        Some(&format!("{password}\n")),
    );
    clean(&flags);
    assert_eq!(flags.code, 1, "{}", flags.stderr);
    let flags_wrong = run_with(
        &["scan", "--username", "ci-user", "--password-stdin", &remote],
        &as_refs(&env),
        Some("not-the-password\n"),
    );
    clean(&flags_wrong);
    assert_eq!(flags_wrong.code, 2);
    assert!(!flags_wrong.stderr.contains("not-the-password"));
}

#[test]
fn tampered_blob_missing_tag_and_unreachable_registry() {
    let Some(registry) = TestRegistry::start(RegistryConfig::default()) else {
        return;
    };
    let (spec, _) = classic_leak();
    let written = registry.push_image(&spec, "tampered:1");
    let remote = format!("{}/tampered:1", registry.host());

    // A valid gzip of the very same tar, compressed differently: it decompresses cleanly and
    // its diff_id is right, so only the blob digest can tell.
    let layer = &written.layer_digests[0];
    let blob = registry.blob_file(layer);
    let original = std::fs::read(&blob).unwrap();
    let mut tar = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&original[..]), &mut tar).unwrap();
    let mut encoder = flate2::GzBuilder::new()
        .mtime(1_234_567)
        .write(Vec::new(), flate2::Compression::best());
    encoder.write_all(&tar).unwrap();
    let regzipped = encoder.finish().unwrap();
    assert_ne!(regzipped, original);
    std::fs::write(&blob, &regzipped).unwrap();
    let tampered = run(&["scan", &remote]);
    assert_eq!(tampered.code, 2, "{}", tampered.stderr);
    assert!(tampered.stdout.is_empty(), "{}", tampered.stdout);
    assert!(
        tampered
            .stderr
            .contains(&format!("digest mismatch: expected {layer}")),
        "{}",
        tampered.stderr
    );
    // What the content hashes to is not said: a digest of bytes from anywhere fingerprints them.
    assert!(
        !tampered.stderr.contains(&sha256_digest(&regzipped)),
        "{}",
        tampered.stderr
    );
    assert_eq!(tampered.stderr.lines().count(), 1, "{}", tampered.stderr);

    let missing = run(&["scan", &format!("{}/tampered:nope", registry.host())]);
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("no such image or tag"),
        "{}",
        missing.stderr
    );

    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let unreachable = run(&["scan", &format!("127.0.0.1:{port}/x:1")]);
    assert_eq!(unreachable.code, 2);
    assert!(
        unreachable.stderr.contains(&format!("127.0.0.1:{port}")),
        "{}",
        unreachable.stderr
    );
    assert_eq!(
        unreachable.stderr.lines().count(),
        1,
        "{}",
        unreachable.stderr
    );
}

/// Scans `image` with no auth file of the developer's in the way; returns the run and how long
/// it took.
fn scan_isolated(image: &str) -> (Run, std::time::Duration) {
    let home = tempdir();
    let env = isolated_env(home.path());
    let started = std::time::Instant::now();
    let run = run_with(&["scan", image], &as_refs(&env), None);
    (run, started.elapsed())
}

/// A real registry holding `spec` (gzip layers) as `app:1`, and the way to it for a proxy.
fn registry_with(spec: &ImageSpec) -> Option<(TestRegistry, Upstream)> {
    let registry = TestRegistry::start(RegistryConfig::default())?;
    registry.push_image(spec, "app:1");
    let upstream = Upstream::new(&registry);
    Some((registry, upstream))
}

#[test]
fn rate_limits_and_refusals_are_clear_errors_never_empty_scans() {
    let Some((_registry, upstream)) = registry_with(&classic_leak().0) else {
        return;
    };
    let upstream = std::sync::Arc::new(upstream);
    // 429 with a long Retry-After: no waiting two minutes, a message that gives the value.
    let real = std::sync::Arc::clone(&upstream);
    let limited = FaultProxy::start(move |request| {
        if request.path == "/v2/" {
            real.reply(request)
        } else {
            Reply::new(
                429,
                r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}"#,
            )
            .header("Retry-After", "120")
        }
    });
    let (run, took) = scan_isolated(&format!("{}/app:1", limited.host()));
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stdout.is_empty(),
        "a report was printed: {}",
        run.stdout
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    for wanted in ["rate limited", "Retry-After: 120 s", &limited.host()] {
        assert!(run.stderr.contains(wanted), "{wanted}: {}", run.stderr);
    }
    assert!(
        took.as_secs() < 20,
        "waited {took:?} for a 120 s Retry-After"
    );
    assert_eq!(
        limited.count("/manifests/1"),
        1,
        "retried a long Retry-After"
    );

    // 403: refused, the host named.
    let real = std::sync::Arc::clone(&upstream);
    let forbidden = FaultProxy::start(move |request| {
        if request.path == "/v2/" {
            real.reply(request)
        } else {
            Reply::new(403, r#"{"errors":[{"code":"DENIED","message":"no"}]}"#)
        }
    });
    let (run, _) = scan_isolated(&format!("{}/app:1", forbidden.host()));
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stdout.is_empty(),
        "a report was printed: {}",
        run.stdout
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("authentication failed for {}", forbidden.host())),
        "{}",
        run.stderr
    );

    // A short Retry-After is waited out, then the scan goes on and finds the leak.
    let hits = std::sync::atomic::AtomicUsize::new(0);
    let brief = FaultProxy::start(move |request| {
        if request.path.ends_with("/manifests/1")
            && hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0
        {
            return Reply::new(429, "").header("Retry-After", "1");
        }
        upstream.reply(request)
    });
    let (run, took) = scan_isolated(&format!("{}/app:1", brief.host()));
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(brief.count("/manifests/1"), 2);
    assert!(
        took.as_millis() >= 1000,
        "did not wait for Retry-After: {took:?}"
    );
}

/// Writes an executable `docker-credential-NAME` into `bin` that answers `get` for `host` with
/// `user`/`secret` (and "credentials not found" for any other host). The reply is a file the
/// script `cat`s: a password with `%` or quotes never goes through the shell.
fn write_credential_helper(
    bin: &std::path::Path,
    name: &str,
    host: &str,
    user: &str,
    secret: &str,
) {
    let helper = bin.join(format!("docker-credential-{name}"));
    let reply = bin.join(format!("docker-credential-{name}.reply"));
    std::fs::write(
        &reply,
        serde_json::json!({"ServerURL": host, "Username": user, "Secret": secret}).to_string(),
    )
    .unwrap();
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread host\n[ \"$host\" = \"{host}\" ] || {{ echo 'credentials not found in native keychain'; exit 1; }}\ncat '{}'\n",
            reply.display()
        ),
    )
    .unwrap();
    Command::new("chmod")
        .arg("+x")
        .arg(&helper)
        .status()
        .unwrap();
}

#[test]
fn auth_files_and_credential_stores_in_the_order_users_expect() {
    let password = support::secrets::password(20);
    let wrong = "Wr0ng-St0re-Passw0rd-7";
    let Some(registry) = TestRegistry::start(RegistryConfig {
        basic_auth: Some(("ci-user".to_string(), password.clone())),
        ..RegistryConfig::default()
    }) else {
        return;
    };
    let (spec, _) = classic_leak();
    registry.push_image(&spec, "private:1");
    let remote = format!("{}/private:1", registry.host());
    let home = tempdir();
    let base = isolated_env(home.path());
    let docker_dir = home.path().join("docker");
    let podman_dir = home.path().join("xdg/containers");
    let bin = home.path().join("bin");
    for dir in [&docker_dir, &podman_dir, &bin] {
        std::fs::create_dir_all(dir).unwrap();
    }
    // Every run: the expected exit code, and neither password anywhere in the output.
    let scan = |env: &[(String, String)], expected: i32, label: &str| {
        let run = run_with(&["scan", "--format", "json", &remote], &as_refs(env), None);
        assert_eq!(run.code, expected, "{label}: {}", run.stderr);
        for secret in [password.as_str(), wrong] {
            assert!(
                !run.stdout.contains(secret) && !run.stderr.contains(secret),
                "{label}: a password was printed"
            );
        }
        if expected == 2 {
            assert!(
                run.stderr
                    .contains(&format!("authentication failed for {}", registry.host())),
                "{label}: {}",
                run.stderr
            );
        }
    };

    // REGISTRY_AUTH_FILE, with docker's config holding a wrong password: podman's file first.
    let auth_file = home.path().join("registry-auth.json");
    write_docker_config(home.path(), &registry.host(), "ci-user", &password);
    std::fs::rename(home.path().join("config.json"), &auth_file).unwrap();
    write_docker_config(&docker_dir, &registry.host(), "ci-user", wrong);
    scan(&base, 2, "docker config with a wrong password");
    let mut env = base.clone();
    env.push(("REGISTRY_AUTH_FILE".into(), auth_file.display().to_string()));
    scan(&env, 1, "REGISTRY_AUTH_FILE");

    // podman's ${XDG_RUNTIME_DIR}/containers/auth.json, also before docker's config.
    write_docker_config(&podman_dir, &registry.host(), "ci-user", &password);
    std::fs::rename(podman_dir.join("config.json"), podman_dir.join("auth.json")).unwrap();
    scan(&base, 1, "XDG_RUNTIME_DIR/containers/auth.json");
    std::fs::remove_file(podman_dir.join("auth.json")).unwrap();

    // credsStore: docker-credential-NAME on PATH.
    let mut env = base.clone();
    env.push((
        "PATH".into(),
        format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        ),
    ));
    write_credential_helper(&bin, "goodstore", &registry.host(), "ci-user", &password);
    write_credential_helper(&bin, "badstore", &registry.host(), "ci-user", wrong);
    write_credential_helper(&bin, "goodhelper", &registry.host(), "ci-user", &password);
    let config = |value: serde_json::Value| {
        std::fs::write(docker_dir.join("config.json"), value.to_string()).unwrap();
    };
    // docker writes an empty auths entry next to a store.
    config(serde_json::json!({"auths": {registry.host(): {}}, "credsStore": "goodstore"}));
    scan(&env, 1, "credsStore");
    config(serde_json::json!({"credsStore": "badstore"}));
    scan(&env, 2, "credsStore with a wrong password");

    // credHelpers for the host wins over credsStore.
    config(serde_json::json!({
        "credsStore": "badstore",
        "credHelpers": {registry.host(): "goodhelper"},
    }));
    scan(&env, 1, "credHelpers over credsStore");
    config(serde_json::json!({
        "credsStore": "goodstore",
        "credHelpers": {registry.host(): "badstore"},
    }));
    scan(&env, 2, "credHelpers over credsStore, wrong helper");
}

#[test]
fn schema1_manifests_are_unsupported_not_a_digest_mismatch() {
    // A signed schema 1 manifest: its Docker-Content-Digest covers the payload without the
    // signatures, so it never matches the bytes sent.
    let signed = serde_json::json!({
        "schemaVersion": 1,
        "name": "app",
        "tag": "1",
        "architecture": "amd64",
        "fsLayers": [{"blobSum": format!("sha256:{}", "b".repeat(64))}],
        "history": [{"v1Compatibility": "{}"}],
        "signatures": [{"header": {"alg": "ES256"}, "signature": "c2ln", "protected": "cA"}],
    })
    .to_string();
    let unsigned_digest = format!("sha256:{}", "c".repeat(64));
    let Some((_registry, upstream)) = registry_with(&classic_leak().0) else {
        return;
    };
    let upstream = std::sync::Arc::new(upstream);
    for (media_type, label) in [
        (
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
            "signed",
        ),
        (
            "application/vnd.docker.distribution.manifest.v1+json",
            "unsigned",
        ),
        ("application/json", "generic media type"),
    ] {
        let body = signed.clone();
        let digest = unsigned_digest.clone();
        let real = std::sync::Arc::clone(&upstream);
        let server = FaultProxy::start(move |request| {
            if !request.path.contains("/manifests/") {
                real.reply(request)
            } else {
                Reply::new(200, body.clone())
                    .header("Content-Type", media_type)
                    .header("Docker-Content-Digest", &digest)
            }
        });
        let (run, _) = scan_isolated(&format!("{}/app:1", server.host()));
        assert_eq!(run.code, 2, "{label}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{label}: {}", run.stdout);
        assert_eq!(run.stderr.lines().count(), 1, "{label}: {}", run.stderr);
        assert!(
            run.stderr.contains("schema 1") && run.stderr.contains("unsupported"),
            "{label}: {}",
            run.stderr
        );
        assert!(!run.stderr.contains("mismatch"), "{label}: {}", run.stderr);
    }
}

#[test]
fn a_layer_download_that_breaks_off_resumes_where_it_stopped() {
    use std::collections::HashSet;
    use std::sync::Mutex;
    let (spec, planted) = classic_leak();
    let Some((_registry, upstream)) = registry_with(&spec) else {
        return;
    };
    let sizes = upstream.layers("app", "1");
    let upstream = std::sync::Arc::new(upstream);
    let layers: HashSet<String> = sizes.iter().map(|(digest, _)| digest.clone()).collect();
    let is_layer = {
        let layers = layers.clone();
        move |path: &str| {
            path.rsplit_once("/blobs/")
                .is_some_and(|(_, digest)| layers.contains(digest))
        }
    };

    // Each layer's first download is cut halfway; the registry honours Range (206), or
    // ignores it and sends the whole blob again (200).
    for honour_range in [true, false] {
        let served = std::sync::Arc::clone(&upstream);
        let cut_once = Mutex::new(HashSet::new());
        let is_layer = is_layer.clone();
        let server = FaultProxy::start(move |request| {
            if !is_layer(&request.path) {
                return served.reply(request);
            }
            let mut request = request.clone();
            if !honour_range {
                request.headers.retain(|(name, _)| name != "range");
            }
            let reply = served.reply(&request);
            if cut_once.lock().unwrap().insert(request.path.clone()) {
                let half = reply.body.len() / 2;
                return reply.cut_after(half);
            }
            reply
        });
        let image = format!("{}/app:1", server.host());
        let home = tempdir();
        let run = run_with(
            &["scan", "--format", "json", "--show-secrets", &image],
            &as_refs(&isolated_env(home.path())),
            None,
        );
        assert_eq!(run.code, 1, "range {honour_range}: {}", run.stderr);
        assert_planted_found(&run.json()["images"][0], &spec, &planted, &image);
        for (digest, size) in &sizes {
            let asked: Vec<Option<String>> = server
                .requests()
                .iter()
                .filter(|r| r.path.ends_with(digest.as_str()))
                .map(|r| r.header("range").map(str::to_string))
                .collect();
            assert_eq!(
                asked,
                vec![None, Some(format!("bytes={}-", size / 2))],
                "range {honour_range}: {digest}"
            );
        }
    }

    // A registry that cuts every time: a bounded number of resumes, then one clear error.
    let served = std::sync::Arc::clone(&upstream);
    let always = FaultProxy::start(move |request| {
        let reply = served.reply(request);
        if is_layer(&request.path) && reply.body.len() > 1 {
            let part = reply.body.len().div_ceil(2).min(reply.body.len() - 1);
            return reply.cut_after(part);
        }
        reply
    });
    let (run, _) = scan_isolated(&format!("{}/app:1", always.host()));
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("download broke off"), "{}", run.stderr);
    let failed = layers
        .iter()
        .find(|digest| run.stderr.contains(digest.as_str()))
        .expect("the error names the layer");
    assert_eq!(always.count(failed), 4, "one download and three resumes");
}
