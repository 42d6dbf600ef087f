//! Distribution: the action's installer (`ci/action/install.sh`) run as the action runs it,
//! against a fake release served from a local HTTP server (a shell script stands in for the
//! binary), and the version the action, the GitLab template, `deploy/` and the README name.

mod support;

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

const VERSION: &str = env!("CARGO_PKG_VERSION");
const X86_64: &str = "x86_64-unknown-linux-gnu";
const AARCH64: &str = "aarch64-unknown-linux-gnu";

fn repo_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// The tools the installer runs. Outside CI a missing one skips the test (loudly); under CI
/// it fails it.
fn tools_present() -> bool {
    ["bash", "curl", "sha256sum", "tar"]
        .iter()
        .all(|tool| support::tool_available(tool))
}

/// Serves `files` (URL path → body) over HTTP/1.1 on a free loopback port, 404 for any other
/// path, until the test process ends. Returns the base URL.
fn serve(files: HashMap<String, Vec<u8>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let base = format!("http://{}", listener.local_addr().unwrap());
    let files = Arc::new(files);
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let files = Arc::clone(&files);
            thread::spawn(move || {
                let _ = respond(stream, &files);
            });
        }
    });
    base
}

fn respond(mut stream: TcpStream, files: &HashMap<String, Vec<u8>>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
    }
    let path = request.split_whitespace().nth(1).unwrap_or_default();
    let (status, body) = match files.get(path) {
        Some(body) => ("200 OK", body.as_slice()),
        None => ("404 Not Found", &b"not found\n"[..]),
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    stream.flush()
}

/// A release asset as the release workflow packs it: `stowaway-VERSION-TARGET/stowaway` (here
/// a shell script printing `output`) with the LICENSE beside it, in a gzipped tar.
fn asset(target: &str, output: &str) -> Vec<u8> {
    let dir = format!("stowaway-{VERSION}-{target}");
    let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    let mut add = |name: String, mode: u32, data: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_cksum();
        tar.append_data(&mut header, name, data).unwrap();
    };
    let script = format!("#!/bin/sh\necho '{output}'\n");
    add(format!("{dir}/stowaway"), 0o755, script.as_bytes());
    add(format!("{dir}/LICENSE"), 0o644, b"Apache License 2.0\n");
    tar.into_inner().unwrap().finish().unwrap()
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// A fake release vVERSION with an asset per target, and a SHA256SUMS whose line for each
/// asset is right unless the target is in `wrong`. Returns the base URL to give the installer.
fn fake_release(wrong: &[&str]) -> String {
    let mut files = HashMap::new();
    let mut sums = String::new();
    for target in [X86_64, AARCH64] {
        let name = format!("stowaway-{VERSION}-{target}.tar.gz");
        let data = asset(target, &format!("stowaway {VERSION} (fake {target})"));
        let mut sum = sha256_hex(&data);
        if wrong.contains(&target) {
            sum = sha256_hex(b"some other bytes");
        }
        sums.push_str(&format!("{sum}  {name}\n"));
        files.insert(format!("/v{VERSION}/{name}"), data);
    }
    files.insert(format!("/v{VERSION}/SHA256SUMS"), sums.into_bytes());
    serve(files)
}

/// What one run of the installer left.
struct Install {
    code: i32,
    stdout: String,
    stderr: String,
    dir: tempfile::TempDir,
}

impl Install {
    fn bin_dir(&self) -> PathBuf {
        self.dir.path().join("bin")
    }
    fn github_output(&self) -> String {
        fs::read_to_string(self.dir.path().join("github_output")).unwrap_or_default()
    }
}

/// Runs `bash ci/action/install.sh ARGS` with the runner's OS and architecture as GitHub names
/// them, in an environment cleared of anything a real runner (or the developer) would add.
fn install(os: &str, arch: &str, env: &[(&str, &str)], args: &[&str]) -> Install {
    let mut argv = vec![repo_file("ci/action/install.sh").into_os_string()];
    argv.extend(args.iter().map(Into::into));
    run_bash(&argv, os, arch, env)
}

/// The action's install step (its `run:` script, with the variables its `env:` sets given in
/// `env`), run as GitHub runs a bash step: `bash --noprofile --norc -eo pipefail FILE`, with
/// GITHUB_ACTION_PATH at this checkout.
fn action_install_step(os: &str, arch: &str, env: &[(&str, &str)]) -> Install {
    let text = fs::read_to_string(repo_file("action.yml")).unwrap();
    let action = &yaml_rust2::YamlLoader::load_from_str(&text).unwrap()[0];
    let step = action["runs"]["steps"]
        .as_vec()
        .expect("steps")
        .iter()
        .find(|step| step["id"].as_str() == Some("install"))
        .expect("a step with id: install");
    let scripts = support::tempdir();
    let script = scripts.path().join("install-step.sh");
    fs::write(&script, step["run"].as_str().expect("run:")).unwrap();
    let mut argv: Vec<std::ffi::OsString> = ["--noprofile", "--norc", "-eo", "pipefail"]
        .iter()
        .map(Into::into)
        .collect();
    argv.push(script.into_os_string());
    let action_path = repo_file("");
    let action_path = action_path.to_str().unwrap();
    let mut env = env.to_vec();
    env.push(("GITHUB_ACTION_PATH", action_path));
    run_bash(&argv, os, arch, &env)
}

fn run_bash(argv: &[std::ffi::OsString], os: &str, arch: &str, env: &[(&str, &str)]) -> Install {
    let dir = support::tempdir();
    let output_file = dir.path().join("github_output");
    fs::write(&output_file, "").unwrap();
    let mut command = Command::new("bash");
    command
        .args(argv)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .env("TMPDIR", dir.path())
        .env("RUNNER_OS", os)
        .env("RUNNER_ARCH", arch)
        .env("RUNNER_TEMP", dir.path())
        .env("STOWAWAY_INSTALL_DIR", dir.path().join("bin"))
        .env("GITHUB_OUTPUT", &output_file);
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().expect("run bash");
    Install {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        dir,
    }
}

#[test]
fn the_installer_checks_the_checksum_then_installs_a_binary_that_runs() {
    if !tools_present() {
        return;
    }
    let base = fake_release(&[]);
    for (arch, target) in [("X64", X86_64), ("ARM64", AARCH64)] {
        let run = install(
            "Linux",
            arch,
            &[("STOWAWAY_RELEASE_URL", base.as_str())],
            &[],
        );
        assert_eq!(run.code, 0, "{arch}: {}\n{}", run.stdout, run.stderr);
        let asset = format!("stowaway-{VERSION}-{target}.tar.gz");
        assert!(
            run.stdout.contains(&format!("{asset}: sha256 ")) && run.stdout.contains("matches"),
            "says what it checked: {}",
            run.stdout
        );
        let binary = run.bin_dir().join("stowaway");
        let version = Command::new(&binary).arg("--version").output().unwrap();
        assert!(version.status.success());
        assert_eq!(
            String::from_utf8_lossy(&version.stdout).trim(),
            format!("stowaway {VERSION} (fake {target})"),
            "the binary of the runner's architecture"
        );
        // The installer ran it too, and hands its path and version to later steps.
        assert!(
            run.stdout.contains(&format!("(fake {target})")),
            "{}",
            run.stdout
        );
        let outputs = run.github_output();
        assert!(
            outputs.contains(&format!("path={}\n", binary.display())),
            "{outputs}"
        );
        assert!(
            outputs.contains(&format!("version={VERSION}\n")),
            "{outputs}"
        );
    }
}

#[test]
fn a_wrong_checksum_fails_the_step_clearly_and_installs_nothing() {
    if !tools_present() {
        return;
    }
    let base = fake_release(&[X86_64]);
    let run = install(
        "Linux",
        "X64",
        &[
            ("STOWAWAY_RELEASE_URL", base.as_str()),
            ("GITHUB_ACTIONS", "true"),
        ],
        &[],
    );
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let asset = format!("stowaway-{VERSION}-{X86_64}.tar.gz");
    assert!(
        run.stderr
            .contains(&format!("error: checksum mismatch for {asset}")),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout
            .contains("::error title=stowaway install::checksum mismatch"),
        "an error annotation on GitHub: {}",
        run.stdout
    );
    assert!(
        !run.bin_dir().join("stowaway").exists(),
        "nothing is installed from a download that failed its checksum"
    );
    assert_eq!(run.github_output(), "", "no outputs for later steps");

    // The other architecture's line is right: only the mismatching asset is refused.
    let run = install(
        "Linux",
        "ARM64",
        &[("STOWAWAY_RELEASE_URL", base.as_str())],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn an_asset_missing_from_the_checksums_is_refused() {
    if !tools_present() {
        return;
    }
    let name = format!("stowaway-{VERSION}-{X86_64}.tar.gz");
    let data = asset(X86_64, "unchecked");
    let sums = format!(
        "{}  stowaway-{VERSION}-{AARCH64}.tar.gz\n",
        sha256_hex(&data)
    );
    let base = serve(HashMap::from([
        (format!("/v{VERSION}/{name}"), data),
        (format!("/v{VERSION}/SHA256SUMS"), sums.into_bytes()),
    ]));
    let run = install(
        "Linux",
        "X64",
        &[("STOWAWAY_RELEASE_URL", base.as_str())],
        &[],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("SHA256SUMS of v{VERSION} lists no {name}")),
        "{}",
        run.stderr
    );
    assert!(!run.bin_dir().join("stowaway").exists());
}

#[test]
fn a_release_that_does_not_exist_is_exit_3_which_the_action_may_build_from_source_on() {
    if !tools_present() {
        return;
    }
    let base = fake_release(&[]);
    let run = install(
        "Linux",
        "X64",
        &[
            ("STOWAWAY_RELEASE_URL", base.as_str()),
            ("STOWAWAY_INSTALL_VERSION", "v99.0.0"),
        ],
        &[],
    );
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("not found (HTTP 404)") && run.stderr.contains("/v99.0.0/"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_runner_platform_maps_to_its_asset_and_other_platforms_fail_clearly() {
    if !tools_present() {
        return;
    }
    for (os, arch, target) in [
        ("Linux", "X64", X86_64),
        ("Linux", "ARM64", AARCH64),
        // uname's names, for use outside GitHub.
        ("Linux", "x86_64", X86_64),
        ("Linux", "aarch64", AARCH64),
    ] {
        let run = install(os, arch, &[], &["asset"]);
        assert_eq!(run.code, 0, "{os}/{arch}: {}", run.stderr);
        assert_eq!(
            run.stdout.trim(),
            format!("stowaway-{VERSION}-{target}.tar.gz"),
            "{os}/{arch}, version from Cargo.toml"
        );
    }
    let run = install(
        "Linux",
        "X64",
        &[("STOWAWAY_INSTALL_VERSION", "v1.2.3")],
        &["asset"],
    );
    assert_eq!(run.stdout.trim(), format!("stowaway-1.2.3-{X86_64}.tar.gz"));

    for (os, arch, says) in [
        ("macOS", "ARM64", "no released stowaway binary for macOS"),
        ("Windows", "X64", "no released stowaway binary for Windows"),
        ("Linux", "ARM", "no released stowaway binary for Linux ARM"),
        ("Linux", "X86", "no released stowaway binary for Linux X86"),
    ] {
        let run = install(os, arch, &[], &["asset"]);
        assert_eq!(run.code, 3, "{os}/{arch}: {}", run.stdout);
        assert!(run.stdout.is_empty(), "{os}/{arch}: {}", run.stdout);
        assert!(run.stderr.contains(says), "{os}/{arch}: {}", run.stderr);
        assert!(
            run.stderr.contains("cargo-install-fallback"),
            "names the way out: {}",
            run.stderr
        );
    }
}

#[test]
fn the_installer_downloads_only_over_https_but_from_a_loopback_test_server() {
    if !tools_present() {
        return;
    }
    for url in ["http://example.com/releases", "ftp://127.0.0.1/x"] {
        let run = install("Linux", "X64", &[("STOWAWAY_RELEASE_URL", url)], &[]);
        assert_eq!(run.code, 1, "{url}: {}", run.stderr);
        assert!(
            run.stderr.contains("must be https"),
            "{url}: {}",
            run.stderr
        );
    }
    // No URL and no repository to build one from.
    let run = install("Linux", "X64", &[], &[]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("no release URL"), "{}", run.stderr);
    // A malformed version is refused before anything is fetched.
    let run = install(
        "Linux",
        "X64",
        &[("STOWAWAY_INSTALL_VERSION", "latest; rm -rf /")],
        &["asset"],
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("not a release version"),
        "{}",
        run.stderr
    );
}

/// The install step's `env:`, as action.yml sets it from the inputs (version left to default).
fn inputs<'a>(release_url: &'a str, fallback: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("STOWAWAY_INSTALL_VERSION", ""),
        ("STOWAWAY_RELEASE_URL", release_url),
        ("STOWAWAY_REPOSITORY", "owner/stowaway"),
        ("STOWAWAY_FALLBACK", fallback),
    ]
}

#[test]
fn the_action_step_builds_from_source_only_when_asked_and_never_after_a_bad_checksum() {
    if !tools_present() {
        return;
    }
    let good = &fake_release(&[]);
    let bad = &fake_release(&[X86_64]);
    // The released binary of the action's own version (Cargo.toml), checked and run.
    let run = action_install_step("Linux", "X64", &inputs(good, "false"));
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let outputs = run.github_output();
    assert!(outputs.contains("path="), "{outputs}");
    assert!(!outputs.contains("from-source"), "{outputs}");
    assert!(run.bin_dir().join("stowaway").is_file());

    // No binary for macOS: the step fails, unless asked to build from source.
    let run = action_install_step("macOS", "ARM64", &inputs(good, "false"));
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(!run.github_output().contains("from-source"));
    let run = action_install_step("macOS", "ARM64", &inputs(good, "true"));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let outputs = run.github_output();
    assert!(outputs.contains("from-source=true\n"), "{outputs}");
    let key = outputs
        .lines()
        .find_map(|line| line.strip_prefix("source-key="))
        .expect("a cache key for the build");
    assert!(
        key.len() == 32 && key.chars().all(|c| c.is_ascii_hexdigit()),
        "{key}"
    );

    // A checksum mismatch fails the step even with the fallback on.
    let run = action_install_step("Linux", "X64", &inputs(bad, "true"));
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("checksum mismatch"), "{}", run.stderr);
    assert!(!run.github_output().contains("from-source"));
    assert!(!run.bin_dir().join("stowaway").exists());

    let run = action_install_step("Linux", "X64", &inputs(good, "yes"));
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("cargo-install-fallback must be true or false"),
        "{}",
        run.stderr
    );
}

/// Every `OWNER/stowaway@vX` and `ghcr.io/OWNER/stowaway:X` in the files users copy from names
/// the version in Cargo.toml, the tag the release workflow creates (or says `VERSION`).
#[test]
fn the_wiring_names_the_release_of_the_version_in_cargo_toml() {
    let tag = format!("v{VERSION}");
    let image = format!("ghcr.io/OWNER/stowaway:{VERSION}");
    let files = [
        "action.yml",
        "README.md",
        "ci/gitlab/stowaway.gitlab-ci.yml",
        "deploy/README.md",
        "deploy/kubernetes/base/deployment.yml",
        "deploy/kubernetes/ha/worker.yml",
        "deploy/kubernetes/ha/sweep-cronjob.yml",
    ];
    let mut mentions = 0;
    for relative in files {
        let text = fs::read_to_string(repo_file(relative)).unwrap();
        for (at, _) in text.match_indices("stowaway@v") {
            let version: String = text[at + "stowaway@".len()..]
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '`')
                .collect();
            assert_eq!(version, tag, "{relative}: OWNER/stowaway@{version}");
            mentions += 1;
        }
        for (at, _) in text.match_indices("stowaway:") {
            let is_edge = |c: char| c.is_whitespace() || c == '`' || c == '"';
            let start = text[..at].rfind(is_edge).map_or(0, |edge| edge + 1);
            let end = text[at..]
                .find(is_edge)
                .map_or(text.len(), |edge| at + edge);
            let reference = text[start..end].trim_end_matches(['.', ',', ')', ';']);
            if let Some(path) = reference.strip_prefix("ghcr.io/") {
                let tag = path
                    .split_once("stowaway:")
                    .map(|(_, tag)| tag.split('@').next().unwrap_or_default())
                    .unwrap_or_default();
                assert!(
                    tag == VERSION || tag == "VERSION",
                    "{relative}: {reference} is not the image of v{VERSION}"
                );
                mentions += usize::from(reference == image);
            }
        }
        assert!(
            !text.contains("stowaway:latest"),
            "{relative} names an image nobody publishes"
        );
    }
    assert!(mentions >= 5, "the version is named where users copy it");

    // The release workflow publishes those names: a tag that must equal Cargo.toml's version,
    // assets named as the installer asks for them, the image under ghcr.io.
    let release = fs::read_to_string(repo_file(".github/workflows/release.yml")).unwrap();
    for needle in [
        "tags: [\"v*\"]",
        "if [ \"$TAG\" != \"v$version\" ]",
        X86_64,
        AARCH64,
        "name=\"stowaway-$VERSION-$TARGET\"",
        "SHA256SUMS",
        "ghcr.io/${OWNER,,}/stowaway",
        "sbom: true",
        "cosign sign --yes",
    ] {
        assert!(release.contains(needle), "release.yml lacks {needle}");
    }
    let installer = fs::read_to_string(repo_file("ci/action/install.sh")).unwrap();
    assert!(installer.contains("name=\"stowaway-$version-$triple\""));
}

/// The action runs the installer, passes its inputs through the environment (never `${{ }}`
/// inside a script), and every `uses:` is pinned to a commit.
#[test]
fn the_action_installs_through_the_installer_and_pins_what_it_uses() {
    let text = fs::read_to_string(repo_file("action.yml")).unwrap();
    let action = &yaml_rust2::YamlLoader::load_from_str(&text).unwrap()[0];
    let steps = action["runs"]["steps"].as_vec().expect("steps");
    let install = &steps[0];
    assert!(
        install["run"]
            .as_str()
            .unwrap()
            .contains("bash \"$GITHUB_ACTION_PATH/ci/action/install.sh\""),
        "the first step runs the installer"
    );
    for step in steps {
        if let Some(run) = step["run"].as_str() {
            assert!(
                !run.contains("${{"),
                "inputs reach scripts through env:, not ${{{{ }}}}: {run}"
            );
        }
        if let Some(uses) = step["uses"].as_str() {
            let (_, rest) = uses.split_once('@').expect("uses: NAME@REF");
            assert!(
                rest.len() == 40 && rest.chars().all(|c| c.is_ascii_hexdigit()),
                "{uses} is not pinned to a commit"
            );
        }
    }
    for input in [
        "version",
        "release-url",
        "cargo-install-fallback",
        "summary",
    ] {
        assert!(!action["inputs"][input].is_badvalue(), "input {input}");
    }
    assert_eq!(
        action["inputs"]["cargo-install-fallback"]["default"].as_str(),
        Some("false"),
        "building from source only when asked"
    );
    assert!(text.contains("--format markdown") && text.contains("$GITHUB_STEP_SUMMARY"));
    assert!(text.contains("actions/upload-artifact@"));
}
