//! A real Docker daemon (`dockerd`, Debian's `docker.io`) started by a test on a private
//! socket, with its own data root, exec root and pid file under a temporary directory, and
//! stopped (killed and waited for) when the guard is dropped, a panicking test included.
//!
//! It runs as root with `--iptables=false --bridge=none --storage-driver=vfs`: no network set
//! up, no kernel overlay needed. The temporary directory is under `/tmp` with a short name, as
//! unix socket paths are limited to 107 bytes (dockerd puts its containerd's socket under the
//! exec root).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::tool_available;

/// One daemon at a time in a test process: two would share `/run/docker` state (plugins,
/// network sandboxes) that the flags do not move.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A running `dockerd`, stopped on drop.
pub struct TestDocker {
    child: Child,
    dir: tempfile::TempDir,
    _turn: MutexGuard<'static, ()>,
}

impl TestDocker {
    /// Starts a daemon, or `None` when `dockerd` or `docker` is not installed (outside CI;
    /// under CI that panics, see [`tool_available`]).
    pub fn start() -> Option<TestDocker> {
        TestDocker::start_with(&[])
    }

    /// Starts a daemon with extra flags (`--tlsverify`, another `--host`…).
    pub fn start_with(extra: &[String]) -> Option<TestDocker> {
        if !tool_available("dockerd") || !tool_available("docker") {
            return None;
        }
        let turn = ONE_AT_A_TIME
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let dir = tempfile::Builder::new()
            .prefix("sd")
            .tempdir_in("/tmp")
            .expect("temp dir for dockerd");
        let path = dir.path();
        let log = std::fs::File::create(path.join("dockerd.log")).expect("dockerd log");
        let child = Command::new("dockerd")
            .arg("--iptables=false")
            .arg("--ip6tables=false")
            .arg("--bridge=none")
            .arg("--storage-driver=vfs")
            .arg("--data-root")
            .arg(path.join("data"))
            .arg("--exec-root")
            .arg(path.join("x"))
            .arg("--pidfile")
            .arg(path.join("pid"))
            .arg("--host")
            .arg(format!("unix://{}", path.join("d.sock").display()))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        let daemon = TestDocker {
            child,
            dir,
            _turn: turn,
        };
        daemon.wait_ready();
        Some(daemon)
    }

    fn wait_ready(&self) {
        let started = Instant::now();
        loop {
            let ping = self.docker(&["version", "--format", "{{.Server.Version}}"]);
            if ping.status.success() {
                return;
            }
            if started.elapsed() > Duration::from_secs(90) {
                panic!(
                    "dockerd did not answer within 90 s; its log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// What the daemon wrote so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }

    /// The daemon's socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("d.sock")
    }

    /// `DOCKER_HOST` for this daemon.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    /// The daemon's temporary directory (a place for a test's certificates and CLI config).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs the docker CLI against this daemon (and no context or config of the machine's).
    pub fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.dir.path().join("cli"))
            .args(args)
            .output()
            .expect("run docker")
    }

    /// `docker load -i PATH`, which must succeed.
    pub fn load(&self, archive: &Path) {
        let out = self.docker(&["load", "-i", archive.to_str().expect("utf-8 path")]);
        assert!(
            out.status.success(),
            "docker load {}: {}",
            archive.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for TestDocker {
    fn drop(&mut self) {
        // SIGTERM first, so dockerd stops the containerd it started; then make sure.
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
