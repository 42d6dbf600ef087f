//! Local image stores read in place, with the real tools: a containerd started by the test on a
//! private socket (images imported with `ctr`), and containers-storage stores that buildah
//! builds into (vfs and overlay). Each gives the findings of the same image as a
//! `docker save`, deleted files marked deleted; bad stores and absent daemons get one line and
//! exit 2.

mod support;

use std::fs;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::time::{Duration, Instant};

use support::run::{Run, assert_planted_found, finding_keys, run};
use support::stores::{TestContainerd, TestStorage};
use support::*;

/// `stowaway scan --format json --show-secrets EXTRA... IMAGE`.
fn scan(extra: &[&str], image: &str) -> Run {
    let mut args = vec!["scan", "--format", "json", "--show-secrets"];
    args.extend_from_slice(extra);
    args.push(image);
    run(&args)
}

/// Exit 2 and one `stowaway: error:` line naming `input` and saying `why`.
fn assert_input_error(result: &Run, input: &str, why: &str) {
    assert_eq!(result.code, 2, "exit code; stderr: {}", result.stderr);
    let lines: Vec<&str> = result.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected: {:?}", result.stderr);
    let line = lines[0];
    assert!(line.starts_with("stowaway: error: "), "{line}");
    assert!(
        line.contains(input),
        "the message must name {input}: {line}"
    );
    assert!(
        line.to_lowercase().contains(why),
        "expected {why:?} in {line}"
    );
}

#[test]
fn containerd_images_scan_as_their_docker_save() {
    let Some(daemon) = TestContainerd::start() else {
        return;
    };
    let socket = daemon.socket.display().to_string();
    let (spec, planted) = classic_leak();
    let dir = tempdir();
    let written = write_image_in(&spec, Format::DockerLegacy, Compression::None, dir.path());
    // Into `default`: with no --containerd-namespace, k8s.io is tried first, then default.
    daemon.import("default", &written.path);

    let archive = scan(&[], &format!("docker-archive:{}", written.path.display()));
    assert_eq!(archive.code, 1, "{}", archive.stderr);
    let image = format!("containerd:{}", spec.repo_tag);
    let from_containerd = scan(&["--containerd-address", &socket], &image);
    assert_eq!(from_containerd.code, 1, "{}", from_containerd.stderr);
    let report = from_containerd.json();
    assert_planted_found(&report["images"][0], &spec, &planted, "containerd");
    assert_eq!(finding_keys(&report), finding_keys(&archive.json()));

    // The bare name, through the --image-src order: containerd has it, the registry is never
    // asked.
    let bare = scan(
        &[
            "--containerd-address",
            &socket,
            "--image-src",
            "containerd,remote",
        ],
        &spec.repo_tag,
    );
    assert_eq!(bare.code, 1, "{}", bare.stderr);
    assert_eq!(finding_keys(&bare.json()), finding_keys(&archive.json()));

    // The short name, as Docker would normalise it, is found too when containerd has it so.
    daemon.import("k8s.io", &written.path);
    let namespaced = scan(
        &[
            "--containerd-address",
            &socket,
            "--containerd-namespace",
            "k8s.io",
        ],
        &image,
    );
    assert_eq!(namespaced.code, 1, "{}", namespaced.stderr);

    let missing = scan(
        &["--containerd-address", &socket],
        "containerd:example.com/not-there:1",
    );
    assert_input_error(&missing, "example.com/not-there:1", "no image named");
    let other_namespace = scan(
        &[
            "--containerd-address",
            &socket,
            "--containerd-namespace",
            "empty",
        ],
        &image,
    );
    assert_input_error(&other_namespace, "namespaces empty", "no image named");
}

#[test]
fn containerd_absent_or_silent_is_one_line() {
    let dir = tempdir();
    let absent = dir.path().join("absent.sock");
    let result = scan(
        &["--containerd-address", absent.to_str().unwrap()],
        "containerd:docker.io/library/app:1",
    );
    assert_input_error(&result, &absent.display().to_string(), "not running");

    // A socket left behind by a daemon that is gone: nobody listens on it.
    let stale = dir.path().join("stale.sock");
    drop(UnixListener::bind(&stale).expect("bind"));
    let result = scan(
        &["--containerd-address", stale.to_str().unwrap()],
        "containerd:app:1",
    );
    assert_input_error(&result, &stale.display().to_string(), "cannot connect");

    // A socket that accepts connections and never answers: a deadline, not a hang.
    let silent = dir.path().join("silent.sock");
    let _listener = UnixListener::bind(&silent).expect("bind");
    let started = Instant::now();
    let result = scan(
        &["--containerd-address", silent.to_str().unwrap()],
        "containerd:app:1",
    );
    assert!(started.elapsed() < Duration::from_secs(60), "took too long");
    assert_input_error(&result, &silent.display().to_string(), "containerd");
}

/// The classic leak as a Containerfile on a static busybox: a credentials file copied in and
/// removed by a later step, a config directory removed and made again (an opaque directory
/// under overlay), and a key that stays.
fn write_build_context(dir: &Path) {
    fs::copy("/bin/busybox", dir.join("busybox")).expect("copy busybox");
    let aws = secrets::aws_credentials_file(
        &secrets::aws_access_key_id(),
        &secrets::aws_secret_access_key(),
    );
    fs::write(dir.join("credentials"), aws).unwrap();
    let env = secrets::dotenv(&[("GITHUB_TOKEN", &secrets::github_classic_token())]);
    fs::write(dir.join("env"), env).unwrap();
    fs::write(dir.join("id_ed25519"), secrets::openssh_private_key()).unwrap();
    fs::write(
        dir.join("Containerfile"),
        r#"FROM scratch
COPY busybox /bin/busybox
COPY credentials /root/.aws/credentials
RUN ["/bin/busybox", "rm", "/root/.aws/credentials"]
COPY env /app/config/.env
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox rm -rf /app/config && /bin/busybox mkdir /app/config"]
COPY id_ed25519 /home/dev/.ssh/id_ed25519
"#,
    )
    .unwrap();
}

/// The status and the layer that removed it, of each finding in the file at `path` (its own
/// place or another place of a finding: one secret in two files is one finding).
fn fates(report: &serde_json::Value, path: &str) -> Vec<(String, serde_json::Value)> {
    report["images"][0]["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .flat_map(|f| {
            let others = f["also_found_in"].as_array().cloned().unwrap_or_default();
            std::iter::once(f.clone()).chain(others)
        })
        .filter(|f| f["location"]["path"] == format!("/{path}").as_str())
        .map(|f| {
            (
                f["status"].as_str().unwrap_or_default().to_string(),
                f["removed_in_layer"].clone(),
            )
        })
        .collect()
}

fn buildah_build_scans_as_its_docker_save(driver: &'static str) {
    if !tool_available("busybox") {
        return;
    }
    let Some(storage) = TestStorage::new(driver) else {
        return;
    };
    let context = tempdir();
    write_build_context(context.path());
    storage.build(context.path(), "localhost/leak:1");
    let saved = context.path().join("saved.tar");
    let output = storage.buildah(&[
        "push",
        "localhost/leak:1",
        &format!("docker-archive:{}:localhost/leak:1", saved.display()),
    ]);
    assert!(
        output.status.success(),
        "buildah push: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    let image = format!("containers-storage:{}localhost/leak:1", storage.spec());
    let from_store = scan(&[], &image);
    assert_eq!(from_store.code, 1, "{driver}: {}", from_store.stderr);
    let report = from_store.json();
    let archive = scan(&[], &format!("docker-archive:{}", saved.display()));
    assert_eq!(archive.code, 1, "{}", archive.stderr);
    assert_eq!(
        finding_keys(&report),
        finding_keys(&archive.json()),
        "{driver}: the store and its docker save disagree"
    );
    let deleted_in = |layer: usize| ("deleted".to_string(), serde_json::json!(layer));
    let credentials = fates(&report, "root/.aws/credentials");
    assert!(
        !credentials.is_empty(),
        "{driver}: no finding in credentials"
    );
    assert!(
        credentials.iter().all(|fate| *fate == deleted_in(2)),
        "{credentials:?}"
    );
    let env = fates(&report, "app/config/.env");
    assert!(!env.is_empty(), "{driver}: no finding in .env");
    assert!(env.iter().all(|fate| *fate == deleted_in(4)), "{env:?}");
    let key = fates(&report, "home/dev/.ssh/id_ed25519");
    assert_eq!(key, vec![("present".to_string(), serde_json::Value::Null)]);

    // The same store, short name and image id.
    assert_eq!(
        scan(&[], &format!("containers-storage:{}leak:1", storage.spec())).code,
        1
    );
    if driver == "overlay" {
        assert_read_from_the_overlay_directories(&storage, &finding_keys(&report));
    }
    assert_store_from_storage_conf(&storage);
    assert_bad_stores(&storage);
}

/// With the tar-splits gone, overlay layers are read from their directories: whiteout devices
/// and opaque xattrs give the same findings, deleted files still deleted.
fn assert_read_from_the_overlay_directories(storage: &TestStorage, expected: &[String]) {
    let layers = storage.root.join("overlay-layers");
    let aside = tempdir();
    let moved: Vec<_> = fs::read_dir(&layers)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.to_string_lossy().ends_with(".tar-split.gz"))
        .collect();
    assert!(!moved.is_empty(), "no tar-split in {}", layers.display());
    for path in &moved {
        fs::rename(path, aside.path().join(path.file_name().unwrap())).unwrap();
    }
    let image = format!("containers-storage:{}localhost/leak:1", storage.spec());
    let from_dirs = scan(&[], &image);
    for path in &moved {
        fs::rename(aside.path().join(path.file_name().unwrap()), path).unwrap();
    }
    assert_eq!(from_dirs.code, 1, "{}", from_dirs.stderr);
    assert_eq!(
        finding_keys(&from_dirs.json()),
        expected,
        "overlay directories and tar-splits disagree"
    );
}

/// Without `[DRIVER@ROOT+RUNROOT]`, the store is the one storage.conf names.
fn assert_store_from_storage_conf(storage: &TestStorage) {
    let dir = tempdir();
    let conf = dir.path().join("storage.conf");
    fs::write(
        &conf,
        format!(
            "[storage]\ndriver = \"{}\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
            storage.driver,
            storage.root.display(),
            storage.runroot.display()
        ),
    )
    .unwrap();
    let output = stowaway_cmd()
        .args(["scan", "--format", "json", "containers-storage:leak:1"])
        .env("CONTAINERS_STORAGE_CONF", &conf)
        .output()
        .expect("run stowaway");
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The bare name, through the --image-src order: podman's store has it, the registry is
    // never asked.
    let bare = stowaway_cmd()
        .args(["scan", "--format", "json", "--image-src", "podman,remote"])
        .arg("leak:1")
        .env("CONTAINERS_STORAGE_CONF", &conf)
        .output()
        .expect("run stowaway");
    assert_eq!(
        bare.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&bare.stderr)
    );
    let json = |stdout: &[u8]| serde_json::from_slice::<serde_json::Value>(stdout).unwrap();
    assert_eq!(
        finding_keys(&json(&bare.stdout)),
        finding_keys(&json(&output.stdout)),
        "the bare name scans as containers-storage: does"
    );
}

/// The store's bad inputs, one line each: an image it lacks, then its lists corrupted.
fn assert_bad_stores(storage: &TestStorage) {
    let root = storage.root.display().to_string();
    let missing = scan(&[], &format!("containers-storage:{}nope:1", storage.spec()));
    assert_input_error(&missing, &root, "no image named");

    let layers = storage
        .root
        .join(format!("{}-layers/layers.json", storage.driver));
    let saved_layers = fs::read(&layers).unwrap();
    fs::write(&layers, b"[{\"id\": ").unwrap();
    let corrupt = scan(&[], &format!("containers-storage:{}leak:1", storage.spec()));
    assert_input_error(&corrupt, "layers.json", "not a containers-storage list");
    fs::write(&layers, saved_layers).unwrap();

    // A layer's file changed in the store: the rebuilt tar no longer hashes to the diff_id.
    let tampered = layer_file(storage, "root/.aws/credentials");
    let length = fs::metadata(&tampered).unwrap().len() as usize;
    fs::write(&tampered, vec![b'x'; length]).unwrap();
    let corrupt = scan(&[], &format!("containers-storage:{}leak:1", storage.spec()));
    assert_input_error(&corrupt, "layer", "digest mismatch");
    // Or cut short: its size no longer matches its tar header.
    fs::write(&tampered, b"x").unwrap();
    let corrupt = scan(&[], &format!("containers-storage:{}leak:1", storage.spec()));
    assert_input_error(&corrupt, "root/.aws/credentials", "bytes in the store");

    let images = storage
        .root
        .join(format!("{}-images/images.json", storage.driver));
    fs::write(&images, b"{not json").unwrap();
    let corrupt = scan(&[], &format!("containers-storage:{}leak:1", storage.spec()));
    assert_input_error(&corrupt, "images.json", "not a containers-storage list");
}

/// The regular file at `relative` in the one layer directory of the store that holds it.
fn layer_file(storage: &TestStorage, relative: &str) -> std::path::PathBuf {
    let (dir, below) = match storage.driver {
        "vfs" => (storage.root.join("vfs/dir"), ""),
        _ => (storage.root.join("overlay"), "diff"),
    };
    fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path().join(below).join(relative))
        .find(|path| fs::symlink_metadata(path).is_ok_and(|m| m.is_file()))
        .unwrap_or_else(|| panic!("no layer of {} holds {relative}", dir.display()))
}

#[test]
fn buildah_vfs_build_scans_as_its_docker_save() {
    buildah_build_scans_as_its_docker_save("vfs");
}

#[test]
fn buildah_overlay_build_scans_as_its_docker_save() {
    buildah_build_scans_as_its_docker_save("overlay");
}

#[test]
fn an_absent_store_is_one_line() {
    let result = scan(
        &[],
        "containers-storage:[vfs@/nonexistent/graph+/nonexistent/run]app:1",
    );
    assert_input_error(&result, "/nonexistent/graph", "no containers-storage store");
    let result = scan(
        &[],
        "containers-storage:[vfs@/nonexistent/graph+/nonexistent/run",
    );
    assert_input_error(&result, "containers-storage:", "missing ]");
}
