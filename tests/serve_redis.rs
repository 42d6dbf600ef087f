//! The `stowaway serve` tests of `tests/serve.rs` again, with every server (and the CLI that
//! shares its results) on a shared Redis store: a real `redis-server` per test, started on a
//! free loopback port with a password and append-only persistence (`support/redis.rs`). Tests
//! that no store is involved in return at once here (`store_independent`); the tests of what
//! only a shared store does (several servers on one store, the store going down and coming
//! back, two servers and two `stowaway worker`s on the shared queue, a worker killed mid-scan)
//! live in `serve.rs` too and run here only.

#[path = "serve.rs"]
mod serve;
