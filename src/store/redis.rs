//! The shared result store: a Redis-protocol server (Redis 7, Valkey) named by a
//! `redis://[USER:PASSWORD@]HOST[:PORT][/DB]` URL, or `rediss://…` for TLS (the system's roots,
//! or `SSL_CERT_FILE`), through the redis crate's blocking client.
//!
//! Every call runs under a short timeout (connect, then each response), so a store that is down
//! or unreachable costs a scan or an admission at most that long: the error says the store is
//! [`Unavailable`] and callers carry on without it. After such an error, calls fail at once for
//! [`COOL_DOWN`] instead of each waiting out the timeout; the first call after that (or a
//! readiness check, which always tries) reconnects, so a store that returns is used again
//! without a restart.
//!
//! Keys are those of the embedded store under the `stowaway:` prefix; each entry expires after
//! the TTL, renewed when it is read (`GETEX`), so results in use stay and others go (entries of
//! earlier rule sets included). The password never leaves this module: logs and errors show the
//! URL with it masked ([`redact_url`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use redis::{Connection, RedisError, RedisResult};

use super::{
    CacheCounts, ResultStore, Unavailable, check_scheme, pack, redact_url, report_key, unpack,
};
use crate::scan::LayerCache;

/// The longest a connection (TCP, TLS, AUTH, SELECT) may take to set up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The longest one command may wait for its answer (a layer's results are at most a few MiB).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long calls fail at once after one found the store unreachable.
pub const COOL_DOWN: Duration = Duration::from_secs(1);

/// Idle connections kept for reuse (one per scan thread and HTTP thread is plenty).
const IDLE_CONNECTIONS: usize = 16;

/// How long a claim on a layer's scan lasts unless renewed (see `scan/layer_claim.rs`): a
/// scan that dies leaves its layers to others after this.
const LAYER_CLAIM_TTL: Duration = crate::scan::LAYER_CLAIM_TTL;

/// The prefix of every key, so the store can share a database with other programs.
pub(super) const KEY_PREFIX: &str = "stowaway:";

/// How one call to the store went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// The store answered with an error.
    Failed,
    /// The store could not be reached (or did not answer in time).
    Unreachable,
}

/// Told of every call: how long it took and how it went (the server's metrics).
pub type Observer = Arc<dyn Fn(Duration, Outcome) + Send + Sync>;

/// A Redis-protocol result store.
pub struct RedisStore {
    client: redis::Client,
    /// The URL as logs may show it.
    shown: String,
    /// The password as written in the URL, scrubbed from any error text.
    password: Option<String>,
    ttl: Duration,
    idle: Mutex<Vec<Connection>>,
    /// Until when calls fail at once, and why.
    down: Mutex<Option<(Instant, String)>>,
    observer: Option<Observer>,
    /// The layer claims this process holds, by claim key: the random token each was set to,
    /// so that renewing or releasing one never touches a claim that expired and was taken by
    /// another scan (process ids do not tell replicas apart: in a pod, every one is 1).
    claims: Mutex<HashMap<String, String>>,
}

/// A token no other claim has: 128 bits hashed with the process's randomly keyed SipHash
/// (keys drawn from the operating system) from the process id, the time and a counter.
fn claim_token() -> String {
    use std::hash::BuildHasher;
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let state = std::collections::hash_map::RandomState::new();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    let seed = (
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed),
    );
    format!(
        "{:016x}{:016x}",
        state.hash_one((seed, 0u8)),
        state.hash_one((seed, 1u8))
    )
}

/// The key of a layer's claim.
fn layer_claim_key(key: &str) -> String {
    format!("{KEY_PREFIX}layer-claim/{key}")
}

/// Extends a claim's expiry only while it still holds the token it was taken with.
const RENEW_IF_HELD: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
    return redis.call('EXPIRE', KEYS[1], ARGV[2]) else return 0 end";
/// Deletes a claim only while it still holds the token it was taken with.
const RELEASE_IF_HELD: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
    return redis.call('DEL', KEYS[1]) else return 0 end";

impl RedisStore {
    /// A store for `url` whose entries live `ttl` after their last use. Nothing is contacted
    /// yet; a URL that cannot be read is an error naming it (password masked).
    pub fn open(url: &str, ttl: Duration, observer: Option<Observer>) -> Result<RedisStore> {
        check_scheme(url)?;
        let shown = redact_url(url);
        let password = password_of(url);
        let client = redis::Client::open(url).map_err(|err| {
            let text = scrub(&err.to_string(), password.as_deref());
            anyhow!("--store {shown}: not a usable Redis URL: {text}")
        })?;
        Ok(RedisStore {
            client,
            shown,
            password,
            ttl: ttl.max(Duration::from_secs(1)),
            idle: Mutex::new(Vec::new()),
            down: Mutex::new(None),
            claims: Mutex::new(HashMap::new()),
            observer,
        })
    }

    /// Asks the store now (a PING), whatever an earlier call found: readiness, and the check
    /// at start that tells a store that is down from credentials it refuses.
    pub fn check(&self) -> Result<()> {
        self.call_now("PING", |connection| {
            redis::cmd("PING").query::<String>(connection)
        })
        .map(|_| ())
    }

    fn get_value(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let key = format!("{KEY_PREFIX}{key}");
        let ttl = self.ttl.as_secs();
        let stored: Option<Vec<u8>> = self.call("GETEX", |connection| {
            redis::cmd("GETEX")
                .arg(&key)
                .arg("EX")
                .arg(ttl)
                .query(connection)
        })?;
        Ok(stored.as_deref().and_then(unpack))
    }

    fn set_value(&self, key: &str, value: &[u8], ttl: Duration) -> Result<()> {
        let key = format!("{KEY_PREFIX}{key}");
        let seconds = ttl.as_secs().max(1);
        self.call("SET", |connection| {
            redis::cmd("SET")
                .arg(&key)
                .arg(value)
                .arg("EX")
                .arg(seconds)
                .query::<()>(connection)
        })
    }

    /// Runs `script` (one of the `…_IF_HELD` scripts) on the layer claim of `key` with its
    /// token and `arguments`, when this process holds that claim; `forget` lets go of the
    /// token first.
    fn if_held(&self, key: &str, forget: bool, script: &str, arguments: &[u64]) {
        let claim = layer_claim_key(key);
        let token = {
            let mut claims = self.claims.lock().unwrap();
            if forget {
                claims.remove(&claim)
            } else {
                claims.get(&claim).cloned()
            }
        };
        let Some(token) = token else {
            return;
        };
        let _ = self.call("EVAL", |connection| {
            redis::cmd("EVAL")
                .arg(script)
                .arg(1)
                .arg(&claim)
                .arg(&token)
                .arg(arguments)
                .query::<()>(connection)
        });
    }

    /// Runs `command` unless the store was found unreachable within [`COOL_DOWN`].
    pub(super) fn call<T>(
        &self,
        what: &str,
        command: impl FnMut(&mut Connection) -> RedisResult<T>,
    ) -> Result<T> {
        if let Some((until, reason)) = self.down.lock().unwrap().as_ref()
            && Instant::now() < *until
        {
            return Err(Unavailable(reason.clone()).into());
        }
        self.call_now(what, command)
    }

    /// Runs `command` on an idle connection, or a new one; a reused connection that fails to
    /// reach the store (the server restarted since) is replaced once before the store is
    /// called unreachable.
    fn call_now<T>(
        &self,
        what: &str,
        mut command: impl FnMut(&mut Connection) -> RedisResult<T>,
    ) -> Result<T> {
        let started = Instant::now();
        let reused = self.idle.lock().unwrap().pop();
        let mut outcome = match reused {
            Some(mut connection) => match command(&mut connection) {
                Err(err) if unreachable(&err) => None,
                result => Some((connection, result)),
            },
            None => None,
        };
        if outcome.is_none() {
            outcome = match self.connect() {
                Ok(mut connection) => {
                    let result = command(&mut connection);
                    Some((connection, result))
                }
                Err(err) => {
                    return Err(self.failed(what, err, started));
                }
            };
        }
        let (connection, result) = outcome.expect("a connection was tried");
        match result {
            Ok(value) => {
                self.observe(started, Outcome::Ok);
                *self.down.lock().unwrap() = None;
                let mut idle = self.idle.lock().unwrap();
                if idle.len() < IDLE_CONNECTIONS {
                    idle.push(connection);
                }
                Ok(value)
            }
            Err(err) => Err(self.failed(what, err, started)),
        }
    }

    fn connect(&self) -> RedisResult<Connection> {
        let connection = self.client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
        connection.set_read_timeout(Some(RESPONSE_TIMEOUT))?;
        connection.set_write_timeout(Some(RESPONSE_TIMEOUT))?;
        Ok(connection)
    }

    /// The one-line error for a failed call; an unreachable store is marked down for
    /// [`COOL_DOWN`] and its idle connections dropped.
    fn failed(&self, what: &str, err: RedisError, started: Instant) -> anyhow::Error {
        let text = scrub(&err.to_string(), self.password.as_deref()).replace('\n', " ");
        if unreachable(&err) {
            self.observe(started, Outcome::Unreachable);
            let reason = format!("store {} is unreachable ({what}: {text})", self.shown);
            self.idle.lock().unwrap().clear();
            *self.down.lock().unwrap() = Some((Instant::now() + COOL_DOWN, reason.clone()));
            return Unavailable(reason).into();
        }
        self.observe(started, Outcome::Failed);
        anyhow!("store {}: {what} failed: {text}", self.shown)
    }

    fn observe(&self, started: Instant, outcome: Outcome) {
        if let Some(observer) = &self.observer {
            observer(started.elapsed(), outcome);
        }
    }
}

/// Whether an error means the store could not be reached, rather than that it refused.
fn unreachable(err: &RedisError) -> bool {
    err.is_io_error()
        || err.is_timeout()
        || err.is_connection_refusal()
        || err.is_connection_dropped()
}

/// The password part of a URL's user information, as written.
fn password_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let userinfo = authority.rsplit_once('@')?.0;
    let password = userinfo.split_once(':').map_or(userinfo, |(_, p)| p);
    (!password.is_empty()).then(|| password.to_string())
}

/// `text` with the password (as written, and percent-decoded) masked.
fn scrub(text: &str, password: Option<&str>) -> String {
    let Some(password) = password else {
        return text.to_string();
    };
    let decoded = percent_decode(password);
    text.replace(password, "***").replace(&decoded, "***")
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = bytes
            .get(index + 1..index + 3)
            .and_then(|pair| std::str::from_utf8(pair).ok())
            .and_then(|pair| u8::from_str_radix(pair, 16).ok());
        match (bytes[index], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                index += 3;
            }
            (byte, _) => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl ResultStore for RedisStore {
    fn get_report(&self, rules_digest: &str, manifest_digest: &str) -> Result<Option<Vec<u8>>> {
        self.get_value(&report_key(rules_digest, manifest_digest))
    }

    fn put_report(&self, rules_digest: &str, manifest_digest: &str, json: &[u8]) -> Result<()> {
        let packed = pack(json)?;
        self.set_value(
            &report_key(rules_digest, manifest_digest),
            &packed,
            self.ttl,
        )
    }

    fn get_tag(&self, name: &str) -> Option<String> {
        let key = format!("{KEY_PREFIX}tag/{name}");
        self.call("GET", |connection| {
            redis::cmd("GET")
                .arg(&key)
                .query::<Option<String>>(connection)
        })
        .ok()
        .flatten()
    }

    fn put_tag(&self, name: &str, digest: &str, ttl: Duration) {
        // A tag answer that is not shared only costs another registry request.
        let _ = self.set_value(&format!("tag/{name}"), digest.as_bytes(), ttl);
    }

    fn counts(&self) -> Result<Option<CacheCounts>> {
        // Counting would mean scanning the keyspace: the PING says what readiness needs.
        self.check().map(|()| None)
    }

    fn drop_unreadable(&self, _rules_digest: &str) -> Result<usize> {
        // Entries of other rules expire with their TTL; replicas of another version may still
        // read them during a rollout.
        Ok(0)
    }

    fn describe(&self) -> String {
        self.shown.clone()
    }
}

impl LayerCache for RedisStore {
    fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.get_value(key).ok().flatten()
    }

    fn put(&self, key: &str, value: Vec<u8>) {
        // A result that was not stored is only scanned again.
        if let Ok(packed) = pack(&value) {
            let _ = self.set_value(key, &packed, self.ttl);
        }
    }

    fn claim(&self, key: &str) -> bool {
        let claim = layer_claim_key(key);
        let token = claim_token();
        let taken: Result<Option<String>> = self.call("SET", |connection| {
            redis::cmd("SET")
                .arg(&claim)
                .arg(&token)
                .arg("NX")
                .arg("EX")
                .arg(LAYER_CLAIM_TTL.as_secs())
                .query(connection)
        });
        match taken {
            Ok(Some(_)) => {
                self.claims.lock().unwrap().insert(claim, token);
                true
            }
            Ok(None) => false,
            // A store that cannot be asked claims nothing for anyone: the layer is scanned here.
            Err(_) => true,
        }
    }

    fn renew(&self, key: &str) {
        // A renewal that fails lets the claim expire: at worst another scan walks the layer too.
        self.if_held(key, false, RENEW_IF_HELD, &[LAYER_CLAIM_TTL.as_secs()]);
    }

    fn release(&self, key: &str) {
        // A claim that could not be released expires.
        self.if_held(key, true, RELEASE_IF_HELD, &[]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_scrubbed_as_written_and_decoded() {
        let url = "redis://user:p%40ss@host:6379";
        let password = password_of(url);
        assert_eq!(password.as_deref(), Some("p%40ss"));
        assert_eq!(
            scrub("AUTH p@ss refused, p%40ss", password.as_deref()),
            "AUTH *** refused, ***"
        );
        assert_eq!(password_of("redis://host:6379"), None);
        assert_eq!(password_of("redis://token@host").as_deref(), Some("token"));
    }

    #[test]
    fn a_bad_url_is_an_error_naming_it_without_its_password() {
        for url in [
            "redis://:s3cret@",
            "redis://:s3cret@host:notaport",
            "memcached://x",
        ] {
            let err = RedisStore::open(url, Duration::from_secs(60), None)
                .err()
                .unwrap_or_else(|| panic!("{url} was accepted"));
            let text = format!("{err:#}");
            assert!(text.starts_with("--store "), "{text}");
            assert!(!text.contains("s3cret"), "{text}");
        }
    }

    #[test]
    fn an_unreachable_store_fails_fast_and_says_so() {
        // A port nothing listens on: connection refused, at once.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let store = RedisStore::open(
            &format!("redis://:s3cret@127.0.0.1:{port}"),
            Duration::from_secs(60),
            None,
        )
        .unwrap();
        let err = store.check().unwrap_err();
        assert!(super::super::is_unavailable(&err), "{err:#}");
        let text = format!("{err:#}");
        assert!(
            text.contains("unreachable") && !text.contains("s3cret"),
            "{text}"
        );
        // Within the cool-down, calls fail without trying.
        let started = Instant::now();
        assert_eq!(store.get("layer/x"), None);
        assert!(store.get_report("r", "sha256:aa").is_err());
        assert!(started.elapsed() < Duration::from_millis(100));
    }

    /// A redis-server of its own on a free loopback port, stopped when dropped; `None` when the
    /// program is not installed outside CI. The directory is only held, for the server's life.
    /// (The integration tests' `tests/support/redis.rs` does more, but the store is private to
    /// the crate, so its unit tests cannot reach that.)
    struct Server(
        std::process::Child,
        u16,
        #[allow(dead_code)] tempfile::TempDir,
    );

    impl Server {
        fn start() -> Option<Server> {
            let installed = std::process::Command::new("redis-server")
                .arg("--version")
                .output()
                .is_ok();
            if !installed {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "redis-server is not installed"
                );
                return None;
            }
            let dir = tempfile::tempdir().unwrap();
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let child = std::process::Command::new("redis-server")
                .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
                .args(["--save", "", "--appendonly", "no", "--dir"])
                .arg(dir.path())
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap();
            let server = Server(child, port, dir);
            let client = redis::Client::open(server.url()).unwrap();
            for _ in 0..100 {
                if client.get_connection().is_ok() {
                    return Some(server);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            panic!("redis-server did not start on port {port}");
        }

        fn url(&self) -> String {
            format!("redis://127.0.0.1:{}", self.1)
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// A claim is only renewed and released by the scan that holds it: once it expired and
    /// another replica took it (here: overwritten with another token and a longer expiry),
    /// the first scan's renewal and release leave it alone. Replicas in pods share a process
    /// id, so the claim's value must tell them apart.
    #[test]
    fn a_claim_taken_over_is_neither_renewed_nor_released_by_its_first_holder() {
        let Some(server) = Server::start() else {
            return;
        };
        let open = || RedisStore::open(&server.url(), Duration::from_secs(60), None).unwrap();
        let (first, second) = (open(), open());
        let mut raw = redis::Client::open(server.url())
            .unwrap()
            .get_connection()
            .unwrap();
        let key = layer_claim_key("layer/a");
        let ttl = |raw: &mut Connection| redis::cmd("TTL").arg(&key).query::<i64>(raw).unwrap();

        assert!(first.claim("layer/a"));
        assert!(!second.claim("layer/a"), "held by the first replica");
        redis::cmd("SET")
            .arg(&key)
            .arg("another-holder")
            .arg("EX")
            .arg(600)
            .query::<()>(&mut raw)
            .unwrap();
        first.renew("layer/a");
        assert!(ttl(&mut raw) > LAYER_CLAIM_TTL.as_secs() as i64, "renewed");
        first.release("layer/a");
        let value: Option<String> = redis::cmd("GET").arg(&key).query(&mut raw).unwrap();
        assert_eq!(value.as_deref(), Some("another-holder"), "released");

        // The holder's own claim is renewed and released.
        assert!(second.claim("layer/b"));
        let own = layer_claim_key("layer/b");
        redis::cmd("EXPIRE")
            .arg(&own)
            .arg(2)
            .query::<()>(&mut raw)
            .unwrap();
        second.renew("layer/b");
        let renewed: i64 = redis::cmd("TTL").arg(&own).query(&mut raw).unwrap();
        assert!(renewed > 2, "not renewed: {renewed}");
        second.release("layer/b");
        let exists: i64 = redis::cmd("EXISTS").arg(&own).query(&mut raw).unwrap();
        assert_eq!(exists, 0);
    }
}
