//! Real local image stores for tests: a `containerd` started on a private socket under a
//! temporary directory (its own root, state and config; stopped when dropped, even when the
//! test panics), and `buildah` building into a temporary containers-storage root.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Whether this process runs as root (containerd and buildah's chroot isolation need it).
/// Outside CI a test that needs root skips itself; under CI not being root fails it.
pub fn running_as_root(tool: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc_geteuid() } == 0;
    if !root && std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false") {
        panic!("{tool} tests need root, and CI is set");
    }
    if !root {
        eprintln!("skipping: {tool} tests need root");
    }
    root
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

/// A containerd daemon of the test's own.
pub struct TestContainerd {
    child: Child,
    /// The gRPC socket.
    pub socket: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestContainerd {
    /// Starts containerd with a config of its own under a temporary directory; `None` when
    /// containerd is not installed or this is not root, outside CI (under CI, a failure).
    pub fn start() -> Option<TestContainerd> {
        if !super::tool_available("containerd")
            || !super::tool_available("ctr")
            || !running_as_root("containerd")
        {
            return None;
        }
        let dir = super::tempdir();
        let socket = dir.path().join("containerd.sock");
        let config = dir.path().join("config.toml");
        // No CRI (it wants CNI and a runtime) and no snapshotters that need what a sandbox
        // lacks: images are only imported, never unpacked.
        std::fs::write(
            &config,
            format!(
                r#"version = 2
root = "{root}"
state = "{state}"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.internal.v1.opt",
  "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "{socket}"
[ttrpc]
  address = "{socket}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
"#,
                root = dir.path().join("root").display(),
                state = dir.path().join("state").display(),
                socket = socket.display(),
            ),
        )
        .expect("write containerd config");
        let log = dir.path().join("containerd.log");
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("containerd log"))
            .spawn()
            .expect("start containerd");
        let mut daemon = TestContainerd {
            child,
            socket,
            log,
            _dir: dir,
        };
        daemon.wait_until_up();
        Some(daemon)
    }

    fn wait_until_up(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("containerd exited ({status}):\n{}", self.log_text());
            }
            if self.socket.exists() && self.ctr("default", &["version"]).status.success() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("containerd did not come up:\n{}", self.log_text());
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs `ctr -a SOCKET -n NAMESPACE ARGS...`.
    pub fn ctr(&self, namespace: &str, args: &[&str]) -> Output {
        Command::new("ctr")
            .arg("-a")
            .arg(&self.socket)
            .args(["-n", namespace])
            .args(args)
            .output()
            .expect("run ctr")
    }

    /// `ctr images import --no-unpack ARCHIVE` into `namespace`.
    pub fn import(&self, namespace: &str, archive: &Path) {
        let archive = archive.to_str().expect("UTF-8 path");
        let output = self.ctr(namespace, &["images", "import", "--no-unpack", archive]);
        assert!(
            output.status.success(),
            "ctr import {archive}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Stops the daemon now (kill and wait), as [`Drop`] does.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for TestContainerd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A containers-storage root of the test's own, for buildah.
pub struct TestStorage {
    pub driver: &'static str,
    pub root: PathBuf,
    pub runroot: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestStorage {
    /// A fresh store for `driver`; `None` when buildah is not installed or this is not root,
    /// outside CI.
    pub fn new(driver: &'static str) -> Option<TestStorage> {
        if !super::tool_available("buildah") || !running_as_root("buildah") {
            return None;
        }
        let dir = super::tempdir();
        Some(TestStorage {
            driver,
            root: dir.path().join("root"),
            runroot: dir.path().join("run"),
            _dir: dir,
        })
    }

    /// `[DRIVER@ROOT+RUNROOT]`, skopeo's name for this store.
    pub fn spec(&self) -> String {
        format!(
            "[{}@{}+{}]",
            self.driver,
            self.root.display(),
            self.runroot.display()
        )
    }

    /// Runs buildah against this store.
    pub fn buildah(&self, args: &[&str]) -> Output {
        Command::new("buildah")
            .arg("--root")
            .arg(&self.root)
            .arg("--runroot")
            .arg(&self.runroot)
            .args(["--storage-driver", self.driver])
            .args(args)
            .env("BUILDAH_ISOLATION", "chroot")
            .output()
            .expect("run buildah")
    }

    /// `buildah bud --layers` of the directory `context` (its `Containerfile`), tagged `tag`.
    pub fn build(&self, context: &Path, tag: &str) {
        let context = context.to_str().expect("UTF-8 path");
        let output = self.buildah(&[
            "bud",
            "--layers",
            "--isolation",
            "chroot",
            "-t",
            tag,
            context,
        ]);
        assert!(
            output.status.success(),
            "buildah bud ({}): {}",
            self.driver,
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for TestStorage {
    fn drop(&mut self) {
        // Working containers buildah left (a failed build) would keep overlay layers mounted.
        let _ = self.buildah(&["rm", "--all"]);
    }
}
