//! The command line as a user meets it: `--severity`, `--skip-dirs`/`--skip-files`,
//! `--timeout`, `--no-progress`, the config file and `STOWAWAY_*` variables (and which wins),
//! `rules list`/`rules show`, completions, man pages, `--version`, closed pipes, and errors that
//! say what would have been right.

mod support;

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::run::{Run, run};
use support::*;

/// The classic leak as an OCI layout in `dir`: `oci:PATH`.
fn classic_image(dir: &Path) -> String {
    let (spec, _) = classic_leak();
    let written = write_image_in(&spec, Format::OciLayout, Compression::Gzip, dir);
    format!("oci:{}", written.path.display())
}

/// Runs stowaway in `cwd` with `env` set (and every other `STOWAWAY_*` variable of the test's
/// environment removed, so that only what the test sets counts).
fn run_in(cwd: &Path, env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut command = stowaway_cmd();
    for (name, _) in std::env::vars() {
        if name.starts_with("STOWAWAY_") && name != "STOWAWAY_NO_CACHE" {
            command.env_remove(name);
        }
    }
    let output = command
        .current_dir(cwd)
        .envs(env.iter().copied())
        .args(args)
        .output()
        .expect("run stowaway");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn findings(report: &Value) -> Vec<&Value> {
    report["images"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|image| image["findings"].as_array().unwrap())
        .collect()
}

#[test]
fn severity_filters_what_is_shown_but_not_the_gate() {
    let dir = tempdir();
    let image = classic_image(dir.path());
    let all = run(&["scan", "--format", "json", &image]).json();
    let total = findings(&all).len();
    let critical = findings(&all)
        .iter()
        .filter(|f| f["severity"] == "critical")
        .count();
    assert!(
        critical > 0 && critical < total,
        "the fixture mixes severities"
    );

    let shown = run(&["scan", "--format", "json", "--severity", "critical", &image]);
    assert_eq!(shown.code, 1, "{}", shown.stderr);
    let report = shown.json();
    assert!(
        findings(&report)
            .iter()
            .all(|f| f["severity"] == "critical")
    );
    assert_eq!(findings(&report).len(), critical);
    assert_eq!(report["stats"]["findings"], critical);
    assert_eq!(report["stats"]["hidden_by_severity"], total - critical);

    // Only info shown (none in the fixture), yet the gate sees the critical ones: exit 1, and
    // the summary says why nothing is listed.
    let text = run(&["scan", "--severity", "info", "--color", "never", &image]);
    assert_eq!(text.code, 1, "{}", text.stderr);
    assert!(
        text.stdout
            .contains(&format!("{total} not shown (--severity)")),
        "{}",
        text.stdout
    );
    let markdown = run(&[
        "scan",
        "--format",
        "markdown",
        "--severity",
        "critical",
        &image,
    ]);
    assert!(
        markdown.stdout.contains(&format!(
            "{} findings not shown (`--severity`)",
            total - critical
        )),
        "{}",
        markdown.stdout
    );
    let passing = run(&["scan", "--severity", "info", "--fail-on", "none", &image]);
    assert_eq!(passing.code, 0, "{}", passing.stderr);

    let bad = run(&["scan", "--severity", "urgent", &image]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("critical, high, medium, low, info"),
        "{}",
        bad.stderr
    );
}

#[test]
fn skip_dirs_and_skip_files_leave_paths_unscanned() {
    let dir = tempdir();
    let image = classic_image(dir.path());
    let paths = |extra: &[&str]| -> Vec<String> {
        let mut args = vec!["scan", "--format", "json"];
        args.extend_from_slice(extra);
        args.push(&image);
        let report = run(&args).json();
        findings(&report)
            .iter()
            .filter_map(|f| f["location"]["path"].as_str())
            .map(|path| path.trim_start_matches('/').to_string())
            .collect()
    };
    let all = paths(&[]);
    assert!(all.iter().any(|p| p.starts_with("root/")), "{all:?}");
    assert!(all.iter().any(|p| p == "app/config/.env"), "{all:?}");

    let without_root = paths(&["--skip-dirs", "/root"]);
    assert!(
        !without_root.iter().any(|p| p.starts_with("root/")),
        "{without_root:?}"
    );
    assert!(without_root.iter().any(|p| p == "app/config/.env"));

    let without_env = paths(&[
        "--skip-files",
        "**/*.env,**/.env",
        "--skip-dirs",
        "home/*/.ssh",
    ]);
    assert!(
        !without_env
            .iter()
            .any(|p| p.ends_with(".env") || p.starts_with("home/")),
        "{without_env:?}"
    );
    assert!(without_env.iter().any(|p| p.starts_with("root/")));

    let bad = run(&["scan", "--skip-files", "a[", &image]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("--skip-files"), "{}", bad.stderr);
}

#[test]
fn skipped_paths_are_not_served_from_a_cache_filled_without_them() {
    let dir = tempdir();
    let image = classic_image(dir.path());
    let cache = dir.path().join("cache");
    let cache = cache.to_str().unwrap();
    let scan = |extra: &[&str]| {
        let mut command = stowaway_cmd();
        command.env_remove("STOWAWAY_NO_CACHE");
        command.args(["scan", "--format", "json", "--cache-dir", cache]);
        command.args(extra).arg(&image);
        let output = command.output().unwrap();
        let report: Value = serde_json::from_slice(&output.stdout).unwrap();
        report["stats"]["findings"].as_u64().unwrap()
    };
    let all = scan(&[]);
    let skipped = scan(&["--skip-dirs", "root,home,app"]);
    assert!(skipped < all, "{skipped} of {all}");
    assert_eq!(scan(&[]), all);
}

#[test]
fn timeout_stops_a_scan_that_hangs() {
    // A registry that accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    let started = Instant::now();
    let result = run(&[
        "scan",
        "--timeout",
        "2s",
        &format!("127.0.0.1:{port}/app:1"),
    ]);
    assert_eq!(result.code, 2, "{}", result.stderr);
    assert!(result.stderr.contains("--timeout"), "{}", result.stderr);
    assert!(result.stdout.is_empty());
    assert!(started.elapsed() < Duration::from_secs(30));
    let bad = run(&["scan", "--timeout", "5 days", "x"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("--timeout"), "{}", bad.stderr);
}

#[test]
fn no_progress_keeps_a_terminal_free_of_bars() {
    let dir = tempdir();
    let image = classic_image(dir.path());
    // `script` gives the scan a terminal, where progress bars would be drawn.
    if !tool_available("script") {
        return;
    }
    let binary = env!("CARGO_BIN_EXE_stowaway");
    let on_a_terminal = |flag: &str| {
        let command = format!("{binary} scan {flag} --format json --output /dev/null {image}");
        let output = Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .env("STOWAWAY_NO_CACHE", "1")
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    // The bar reads `0/6 layers`; the summary `6 layers`.
    let with_bars = on_a_terminal("");
    assert!(with_bars.contains("/6 layers"), "the control: {with_bars}");
    let seen = on_a_terminal("--no-progress");
    assert!(!seen.contains("/6 layers"), "{seen}");
    assert!(seen.contains("finding"), "the summary still shows: {seen}");
}

#[test]
fn flags_win_over_environment_over_config_file_over_defaults() {
    let dir = tempdir();
    let image = classic_image(dir.path());
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    // Default: text, gate at low.
    let default = run_in(&work, &[], &["scan", &image]);
    assert_eq!(default.code, 1);
    assert!(default.stdout.contains("finding"), "{}", default.stdout);

    // ./stowaway.toml: JSON, never fail, and the flags it may set (arrays for repeatable
    // flags, booleans for switches).
    std::fs::write(
        work.join("stowaway.toml"),
        "format = \"json\"\nfail-on = \"none\"\nskip_dirs = [\"root\"]\nshow-vendor = true\n",
    )
    .unwrap();
    let from_file = run_in(&work, &[], &["scan", &image]);
    assert_eq!(from_file.code, 0, "{}", from_file.stderr);
    let report = from_file.json();
    assert!(findings(&report).iter().all(|f| {
        !f["location"]["path"]
            .as_str()
            .unwrap_or("")
            .starts_with("/root/")
    }));

    // The environment wins over the file.
    let from_env = run_in(
        &work,
        &[
            ("STOWAWAY_FORMAT", "sarif"),
            ("STOWAWAY_FAIL_ON", "critical"),
        ],
        &["scan", &image],
    );
    assert_eq!(from_env.code, 1, "{}", from_env.stderr);
    assert_eq!(from_env.json()["version"], "2.1.0");

    // A flag wins over both.
    let from_flag = run_in(
        &work,
        &[("STOWAWAY_FORMAT", "sarif")],
        &["scan", "--format", "text", "--fail-on", "none", &image],
    );
    assert_eq!(from_flag.code, 0);
    assert!(from_flag.stdout.contains("finding"), "{}", from_flag.stdout);

    // --config names another file; STOWAWAY_CONFIG too; a missing one is an error.
    let other = dir.path().join("other.toml");
    std::fs::write(&other, "format = \"gitlab\"\n").unwrap();
    let other = other.to_str().unwrap();
    let named = run_in(&work, &[], &["scan", "--config", other, &image]);
    assert_eq!(named.json()["scan"]["type"], "secret_detection");
    let named_by_env = run_in(&work, &[("STOWAWAY_CONFIG", other)], &["scan", &image]);
    assert_eq!(named_by_env.json()["scan"]["type"], "secret_detection");
    let missing = run_in(&work, &[], &["scan", "--config", "nope.toml", &image]);
    assert_eq!(missing.code, 2);
    assert!(missing.stderr.contains("nope.toml"), "{}", missing.stderr);

    // The file may name the images (images_from) instead of the command line; without
    // either, IMAGE is still required.
    let list = dir.path().join("images.txt");
    std::fs::write(&list, format!("{image}\n")).unwrap();
    let listing = dir.path().join("listing.toml");
    std::fs::write(
        &listing,
        format!(
            "format = \"json\"\nimages_from = {:?}\n",
            list.display().to_string()
        ),
    )
    .unwrap();
    let listing = listing.to_str().unwrap();
    let listed = run_in(&work, &[], &["scan", "--config", listing]);
    assert_eq!(listed.code, 1, "{}", listed.stderr);
    assert!(!findings(&listed.json()).is_empty(), "{}", listed.stdout);
    let empty = tempdir();
    let no_image = run_in(empty.path(), &[], &["scan"]);
    assert_eq!(no_image.code, 2, "{}", no_image.stderr);
    assert!(no_image.stderr.contains("IMAGE"), "{}", no_image.stderr);
}

#[test]
fn config_file_errors_name_the_file_and_the_key() {
    let dir = tempdir();
    let cases = [
        ("fail-on = \"bogus\"\n", "bogus"),
        ("colour = \"never\"\n", "unknown key \"colour\""),
        ("not toml at all", "stowaway.toml"),
        ("max-archive-depth = 99\n", "99"),
    ];
    for (text, expected) in cases {
        std::fs::write(dir.path().join("stowaway.toml"), text).unwrap();
        let result = run_in(dir.path(), &[], &["scan", "whatever.tar"]);
        assert_eq!(result.code, 2, "{text}");
        assert!(
            result.stderr.contains("stowaway.toml") && result.stderr.contains(expected),
            "{text}: {}",
            result.stderr
        );
        assert_eq!(result.stderr.lines().count(), 1, "{}", result.stderr);
    }
}

#[test]
fn boolean_environment_variables_read_like_flags() {
    let dir = tempdir();
    let image = classic_image(dir.path());
    let quiet = run_in(
        dir.path(),
        &[
            ("STOWAWAY_QUIET", "1"),
            ("STOWAWAY_FORMAT", "json"),
            ("STOWAWAY_OUTPUT", "out.json"),
        ],
        &["scan", &image],
    );
    assert_eq!(quiet.code, 1);
    assert!(quiet.stderr.is_empty(), "{}", quiet.stderr);
    assert!(dir.path().join("out.json").is_file());
    let loud = run_in(
        dir.path(),
        &[("STOWAWAY_QUIET", "false"), ("STOWAWAY_OUTPUT", "out.txt")],
        &["scan", &image],
    );
    assert!(loud.stderr.contains("finding"), "{}", loud.stderr);
}

#[test]
fn rules_list_lines_up_and_agrees_with_scans_on_severity() {
    let list = run(&["rules", "list"]);
    assert_eq!(list.code, 0);
    let lines: Vec<&str> = list.stdout.lines().collect();
    let name_at = lines[0].find("NAME").unwrap();
    let severity_at = lines[0].find("SEVERITY").unwrap();
    for line in &lines[1..lines.len() - 1] {
        assert_eq!(line.as_bytes()[name_at - 1], b' ', "{line}");
        assert_ne!(line.as_bytes()[name_at], b' ', "{line}");
        assert_ne!(line.as_bytes()[severity_at], b' ', "{line}");
    }
    let pair = lines
        .iter()
        .find(|l| l.starts_with("tls-key-pair "))
        .unwrap();
    assert!(pair.contains(" critical "), "{pair}");
    assert!(lines.last().unwrap().ends_with(" rules"));
}

#[test]
fn rules_show_describes_one_rule_and_suggests_on_a_typo() {
    let shown = run(&["rules", "show", "tls-key-pair"]);
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    assert!(
        shown.stdout.starts_with("tls-key-pair: TLS key pair"),
        "{}",
        shown.stdout
    );
    for expected in [
        "severity:     critical",
        "the tls-key-pair decoder",
        "kubernetes.io/tls",
    ] {
        assert!(
            shown.stdout.contains(expected),
            "{expected}: {}",
            shown.stdout
        );
    }
    let aws = run(&["rules", "show", "aws-access-key-id"]);
    assert!(aws.stdout.contains("keywords:"), "{}", aws.stdout);
    assert!(
        !aws.stdout.contains("examples"),
        "examples are secret-shaped"
    );
    let typo = run(&["rules", "show", "aws-access"]);
    assert_eq!(typo.code, 2);
    assert!(
        typo.stderr.contains("did you mean aws-access-key-id"),
        "{}",
        typo.stderr
    );
}

#[test]
fn completions_are_valid_scripts_for_each_shell() {
    let dir = tempdir();
    for (shell, checker) in [("bash", "bash"), ("zsh", "zsh"), ("fish", "fish")] {
        let script = run(&["completion", shell]);
        assert_eq!(script.code, 0, "{shell}: {}", script.stderr);
        // Fish names long options without their dashes (`-l skip-dirs`).
        for word in ["scan", "fail-on", "skip-dirs", "severity", "no-progress"] {
            assert!(script.stdout.contains(word), "{shell} completes {word}");
        }
        if !tool_available(checker) {
            continue;
        }
        let path = dir.path().join(format!("stowaway.{shell}"));
        std::fs::write(&path, &script.stdout).unwrap();
        let check = Command::new(checker).arg("-n").arg(&path).output().unwrap();
        assert!(
            check.status.success(),
            "{shell} -n: {}",
            String::from_utf8_lossy(&check.stderr)
        );
    }
    // Bash: loaded, the completion function offers the subcommands.
    if tool_available("bash") {
        let path = dir.path().join("stowaway.bash");
        let script = format!(
            "source {}; COMP_WORDS=(stowaway sc); COMP_CWORD=1; _stowaway stowaway sc stowaway; echo \"${{COMPREPLY[@]}}\"",
            path.display()
        );
        let out = Command::new("bash").args(["-c", &script]).output().unwrap();
        let offered = String::from_utf8_lossy(&out.stdout);
        assert!(offered.split_whitespace().any(|w| w == "scan"), "{offered}");
    }
    let bad = run(&["completion", "tcsh"]);
    assert_eq!(bad.code, 2);
}

#[test]
fn man_pages_render_without_warnings() {
    let page = run(&["man"]);
    assert_eq!(page.code, 0, "{}", page.stderr);
    assert!(
        page.stdout.contains(".TH stowaway 1"),
        "{}",
        &page.stdout[..200]
    );
    let scan = run(&["man", "scan"]);
    assert!(
        scan.stdout.contains(".TH stowaway-scan 1"),
        "{}",
        &scan.stdout[..200]
    );
    assert!(scan.stdout.contains("STOWAWAY_FAIL_ON"));
    if tool_available("groff") {
        for text in [&page.stdout, &scan.stdout] {
            let mut child = Command::new("groff")
                // -k: through preconv, as man(1) reads pages (UTF-8 text).
                .args(["-k", "-man", "-Tutf8", "-ww", "-z"])
                .stdin(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success());
            assert!(
                out.stderr.is_empty(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    let bad = run(&["man", "nothing"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("scan"), "{}", bad.stderr);
}

#[test]
fn version_names_the_rule_set() {
    let version = run(&["--version"]);
    assert_eq!(version.code, 0);
    let rules = run(&["rules", "list"]);
    let count = rules.stdout.lines().count() - 2;
    assert!(
        version
            .stdout
            .starts_with(&format!("stowaway {}", env!("CARGO_PKG_VERSION"))),
        "{}",
        version.stdout
    );
    assert!(
        version
            .stdout
            .contains(&format!("rules: {count} built in, rule set sha256:")),
        "{}",
        version.stdout
    );
    assert_eq!(run(&["-V"]).stdout, version.stdout);
}

/// Runs stowaway with its standard output a pipe that is closed before it writes.
fn run_into_closed_pipe(args: &[&str]) -> (i32, String) {
    let mut child = stowaway_cmd()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (child.wait().unwrap().code().unwrap_or(-1), stderr)
}

#[test]
fn a_closed_pipe_ends_output_quietly_with_the_usual_exit() {
    for args in [
        &["rules", "list"][..],
        &["rules", "list", "--format", "json"],
        &["completion", "bash"],
        &["man"],
    ] {
        let (code, stderr) = run_into_closed_pipe(args);
        assert_eq!(code, 0, "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
    let dir = tempdir();
    let image = classic_image(dir.path());
    let (code, stderr) = run_into_closed_pipe(&["scan", "--quiet", &image]);
    assert_eq!(code, 1, "the gate's exit, not an error: {stderr}");
    assert!(stderr.is_empty(), "{stderr}");

    // As a shell runs it.
    if tool_available("head") {
        let binary = env!("CARGO_BIN_EXE_stowaway");
        let out = Command::new("bash")
            .args([
                "-c",
                &format!("set -o pipefail; {binary} rules list | head -1; echo \"exit=$?\""),
            ])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.starts_with("ID "), "{stdout}");
        assert!(stdout.contains("exit=0"), "{stdout}");
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn fail_on_errors_list_none_too() {
    let result = run(&["scan", "--fail-on", "bogus", "x.tar"]);
    assert_eq!(result.code, 2);
    assert!(
        result
            .stderr
            .contains("critical, high, medium, low, info, none"),
        "{}",
        result.stderr
    );
}

#[test]
fn wrong_platforms_and_tags_say_what_the_image_holds() {
    let dir = tempdir();
    let (spec, _) = classic_leak();
    let written = write_image_in(&spec, Format::OciLayout, Compression::Gzip, dir.path());
    let layout = written.path.display().to_string();
    let platform = run(&[
        "scan",
        "--platform",
        "linux/s390x",
        &format!("oci:{layout}"),
    ]);
    assert_eq!(platform.code, 2);
    assert!(
        platform.stderr.contains("it holds: linux/amd64"),
        "{}",
        platform.stderr
    );
    let tag = run(&["scan", &format!("oci:{layout}:nope")]);
    assert_eq!(tag.code, 2);
    assert!(
        tag.stderr.contains("it holds:") && tag.stderr.contains(&spec.tag()),
        "{}",
        tag.stderr
    );
    let archive = write_image_in(
        &spec,
        Format::DockerOci,
        Compression::Gzip,
        &dir.path().join("d"),
    );
    let docker = run(&[
        "scan",
        "--platform",
        "linux/s390x",
        &format!("docker-archive:{}", archive.path.display()),
    ]);
    assert_eq!(docker.code, 2);
    assert!(
        docker.stderr.contains("it holds: linux/amd64"),
        "{}",
        docker.stderr
    );
}

#[test]
fn counts_of_one_are_singular() {
    let dir = tempdir();
    let spec = ImageSpec {
        layers: vec![Layer::new(
            "COPY a /a",
            vec![Entry::file("a.txt", "nothing here\n")],
        )],
        repo_tag: "example.com/one:1".to_string(),
        ..ImageSpec::default()
    };
    let written = write_image_in(&spec, Format::OciLayout, Compression::Gzip, dir.path());
    let text = run(&[
        "scan",
        "--color",
        "never",
        &format!("oci:{}", written.path.display()),
    ]);
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(text.stdout.contains("1 layer, 1 file"), "{}", text.stdout);
    assert!(!text.stdout.contains("1 layers") && !text.stdout.contains("1 files"));
}
