//! Running the stowaway binary and checking its reports against what a fixture planted.

use std::process::Output;

use serde_json::Value;

use super::image::ImageSpec;
use super::leak::{Planted, PlantedKind};
use super::stowaway_cmd;

/// What one run of the binary produced.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The stdout parsed as a JSON report.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|err| {
            panic!(
                "stdout is not JSON ({err}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Runs `stowaway ARGS...`.
pub fn run(args: &[&str]) -> Run {
    let output: Output = stowaway_cmd().args(args).output().expect("run stowaway");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs `stowaway ARGS...` with extra environment variables (`DOCKER_HOST`…).
pub fn run_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = stowaway_cmd();
    for (name, value) in env {
        command.env(name, value);
    }
    let output: Output = command.args(args).output().expect("run stowaway");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// [`scan_json`] with extra environment variables.
pub fn scan_json_env(image: &str, env: &[(&str, &str)]) -> (i32, Value) {
    let run = run_env(&["scan", "--format", "json", "--show-secrets", image], env);
    assert!(
        run.code == 0 || run.code == 1,
        "scan of {image} failed with {}: {}",
        run.code,
        run.stderr
    );
    (run.code, run.json())
}

/// `stowaway scan --format json --show-secrets IMAGE`, returning the exit code and report.
pub fn scan_json(image: &str) -> (i32, Value) {
    scan_json_env(image, &[])
}

/// A finding reduced to what must be the same whichever format an image was stored in.
pub fn finding_key(finding: &Value) -> String {
    let loc = &finding["location"];
    format!(
        "{} {} {} layer={} path={} line={} history={} field={} status={} removed={}",
        finding["rule_id"].as_str().unwrap_or_default(),
        finding["fingerprint"].as_str().unwrap_or_default(),
        loc["kind"].as_str().unwrap_or_default(),
        loc["layer_index"],
        loc["path"],
        loc["line"],
        loc["history_index"],
        loc["field"],
        finding["status"].as_str().unwrap_or_default(),
        finding["removed_in_layer"],
    )
}

/// All finding keys of a report, sorted.
pub fn finding_keys(report: &Value) -> Vec<String> {
    let mut keys: Vec<String> = report["images"]
        .as_array()
        .expect("images")
        .iter()
        .flat_map(|image| image["findings"].as_array().expect("findings").iter())
        .map(finding_key)
        .collect();
    keys.sort();
    keys
}

fn same_secret(reported: &str, planted: &str) -> bool {
    let (reported, planted) = (reported.trim(), planted.trim());
    !reported.is_empty() && (reported == planted || planted.contains(reported))
}

/// Every place a report names for its findings: each finding's own (the finding itself) and
/// each of its `also_found_in` places (the place's object, with the finding's secret).
pub fn finding_places(image: &Value) -> Vec<(Value, String)> {
    let mut places = Vec::new();
    for finding in image["findings"].as_array().expect("findings") {
        let secret = finding["secret"].as_str().unwrap_or_default().to_string();
        places.push((finding.clone(), secret.clone()));
        for other in finding["also_found_in"].as_array().into_iter().flatten() {
            places.push((other.clone(), secret.clone()));
        }
    }
    places
}

/// Checks that every planted secret is reported exactly once at its location (as a finding,
/// or as another place of the finding of the same secret), with the right layer, history step
/// and status, and that nothing else is reported (no false positives).
pub fn assert_planted_found(image: &Value, spec: &ImageSpec, planted: &Planted, label: &str) {
    let places = finding_places(image);
    let mut explained = vec![false; places.len()];
    for secret in planted {
        let matching: Vec<usize> = places
            .iter()
            .enumerate()
            .filter(|(_, (_, reported))| same_secret(reported, &secret.secret))
            .filter(|(_, (f, _))| {
                let loc = &f["location"];
                match &secret.kind {
                    PlantedKind::LayerFile { layer, path, .. } => {
                        loc["kind"] == "layer-file"
                            && loc["layer_index"] == *layer
                            && loc["path"] == format!("/{}", path.trim_start_matches('/')).as_str()
                    }
                    PlantedKind::History { index } => {
                        loc["kind"] == "history" && loc["history_index"] == *index
                    }
                    PlantedKind::ConfigEnv { key } => {
                        loc["kind"] == "config" && loc["field"] == format!("Env {key}").as_str()
                    }
                }
            })
            .map(|(i, _)| i)
            .collect();
        assert_eq!(
            matching.len(),
            1,
            "{label}: planted {:?} ({}) should be reported once, found {}:\n{}",
            secret.kind,
            secret.rule_hint,
            matching.len(),
            serde_json::to_string_pretty(&image["findings"]).unwrap()
        );
        let finding = &places[matching[0]].0;
        let rule_id = finding["rule_id"].as_str().unwrap_or_default();
        // The hint's words all appear in the rule id (`openssh-private-key` fits
        // `private-key-openssh`); any generic rule may report a plain password.
        let fits = secret
            .rule_hint
            .split('-')
            .all(|word| rule_id.contains(word));
        assert!(
            fits || (secret.rule_hint == "password" && rule_id.starts_with("generic")),
            "{label}: {:?} reported by rule {rule_id}, expected a {} rule",
            secret.kind,
            secret.rule_hint
        );
        if let PlantedKind::LayerFile {
            layer,
            status,
            removed_in_layer,
            ..
        } = &secret.kind
        {
            assert_eq!(
                finding["status"], *status,
                "{label}: status of {:?}",
                secret.kind
            );
            assert_eq!(
                finding["removed_in_layer"],
                serde_json::json!(removed_in_layer),
                "{label}: removed_in_layer of {:?}",
                secret.kind
            );
            assert_eq!(
                finding["location"]["history_index"],
                spec.history_index_of_layer(*layer),
                "{label}: history step of layer {layer}"
            );
        }
        explained[matching[0]] = true;
    }
    let unexplained: Vec<&Value> = places
        .iter()
        .zip(&explained)
        .filter(|(_, seen)| !**seen)
        .map(|((f, _), _)| f)
        .collect();
    assert!(
        unexplained.is_empty(),
        "{label}: findings that match no planted secret:\n{}",
        serde_json::to_string_pretty(&unexplained).unwrap()
    );
}

/// A run with its peak resident memory and wall time.
pub struct Measured {
    pub run: Run,
    pub peak_rss_mib: u64,
    pub elapsed: std::time::Duration,
}

/// Runs `stowaway ARGS...` and samples its peak resident memory (`VmHWM` in `/proc`) until it
/// exits. A run still going after `limit` is killed and fails the test: hostile inputs must
/// finish, not hang.
pub fn run_measured(args: &[&str], limit: std::time::Duration) -> Measured {
    use std::io::Read;
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    keep_input(args);
    let started = Instant::now();
    let mut child = stowaway_cmd()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run stowaway");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            pipe.read_to_end(&mut text).expect("read output");
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0u64;
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_file)
            && let Some(line) = text.lines().find(|l| l.starts_with("VmHWM:"))
        {
            let kib = line.split_whitespace().nth(1).and_then(|n| n.parse().ok());
            peak_kib = peak_kib.max(kib.unwrap_or(0));
        }
        if let Some(status) = child.try_wait().expect("wait for stowaway") {
            break status;
        }
        if started.elapsed() > limit {
            child.kill().ok();
            panic!("stowaway {args:?} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Measured {
        run: Run {
            code: status.code().unwrap_or(-1),
            stdout: stdout.join().expect("stdout reader"),
            stderr: stderr.join().expect("stderr reader"),
        },
        peak_rss_mib: peak_kib >> 10,
        elapsed: started.elapsed(),
    }
}

/// The transports whose argument names a local image (`oci:PATH[:TAG]` and the like).
const LOCAL_TRANSPORTS: [&str; 3] = ["oci", "docker-archive", "oci-archive"];

/// When `STOWAWAY_HOSTILE_INPUTS` names a directory, keeps a copy of each local image a
/// measured run reads, with the arguments to scan it again: `DIR/<test>-<n>/input` and
/// `DIR/<test>-<n>/args` (one argument a line, the image's path written `@INPUT@`).
/// `benches/hostile-inputs.sh` replays them with a release build under `/usr/bin/time -v`.
/// Runs on images this process cannot copy (a registry stub that ends with its test) are not
/// kept.
fn keep_input(args: &[&str]) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let Some(dir) = std::env::var_os("STOWAWAY_HOSTILE_INPUTS") else {
        return;
    };
    let Some((at, transport, path, tag)) = args.iter().enumerate().find_map(|(at, arg)| {
        let (transport, rest) = arg.split_once(':')?;
        LOCAL_TRANSPORTS.contains(&transport).then_some(())?;
        let (path, tag) = match rest.split_once(':') {
            Some((path, tag)) => (path, Some(tag)),
            None => (rest, None),
        };
        Some((at, transport, path, tag))
    }) else {
        return;
    };
    let test = std::thread::current()
        .name()
        .unwrap_or("run")
        .replace("::", "-");
    let run = RUNS.fetch_add(1, Ordering::SeqCst);
    let dest = std::path::Path::new(&dir).join(format!("{test}-{run}"));
    std::fs::create_dir_all(&dest).expect("create the kept input's directory");
    // `cp -a` keeps symlinks as symlinks: a layout whose blob links outside it stays one.
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(path)
        .arg(dest.join("input"))
        .status()
        .expect("run cp");
    assert!(copied.success(), "cp -a {path} failed");
    let mut replay: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    replay[at] = match tag {
        Some(tag) => format!("{transport}:@INPUT@:{tag}"),
        None => format!("{transport}:@INPUT@"),
    };
    std::fs::write(dest.join("args"), replay.join("\n") + "\n").expect("write the arguments");
}
