#![allow(dead_code, unused_imports)]
//! Test-time container image fixtures for stowaway's integration tests.
//!
//! Integration tests pull this in with `mod support;` and build images at test
//! time instead of checking binary blobs into the repository. Generating them
//! means every test gets fresh random secrets (so nothing real is ever
//! committed and a detector cannot "memorise" a fixture), and every image
//! format stowaway reads can be produced from one [`ImageSpec`]:
//!
//! * [`Format::DockerLegacy`]: `docker save` before Docker 25 (`manifest.json`,
//!   `<id>/layer.tar`, `<config>.json`, `repositories`);
//! * [`Format::DockerOci`]: `docker save` of Docker 25+ (an OCI layout inside a
//!   tar *plus* the legacy `manifest.json`);
//! * [`Format::OciLayout`]: an OCI image layout directory;
//! * [`Format::OciArchive`]: the same layout as a tar file.
//!
//! Layers can be stored uncompressed, gzip or zstd ([`Compression`]).
//!
//! Submodules:
//! * [`image`]: the image model ([`Entry`], [`Layer`], [`ImageSpec`]) and the
//!   writers ([`write_image`], [`write_multi_image_docker_archive`],
//!   [`write_oci_index`]) plus corruption helpers for negative tests;
//! * [`secrets`]: random, correctly-shaped fake credentials;
//! * [`leak`]: [`classic_leak`], the reference leaky image, and the list of
//!   what it planted where ([`Planted`]);
//! * [`inspect`]: small readers used to check written fixtures;
//! * [`craft`]: hand-made tar bytes for hostile inputs (headers `tar::Builder`
//!   will not write, huge layers streamed into gzip);
//! * [`zips`]: zips nested past the depth limit, and encrypted members;
//! * [`pki`]: a throwaway CA and the certificates it signs, made with openssl;
//! * [`redis`]: a real redis-server on a free loopback port (password, append-only file),
//!   stopped and started again on the same data.
//!
//! Each test file uses only part of this, hence the crate-level `allow`s.

pub mod at_exit;
pub mod craft;
pub mod docker;
pub mod fault_proxy;
pub mod image;
pub mod inspect;
pub mod leak;
pub mod pki;
pub mod redis;
pub mod registry;
pub mod run;
pub mod secrets;
pub mod stores;
pub mod zips;

pub use image::*;
pub use inspect::*;
pub use leak::*;

use std::path::Path;
use std::process::Command;

/// A `Command` for the stowaway binary built by this `cargo test` run.
///
/// Cargo sets `CARGO_BIN_EXE_<name>` for integration tests, so this always
/// runs the binary from the same build as the test, never one on `PATH`.
pub fn stowaway_cmd() -> Command {
    // Examples that reuse this module (make_demo_image) have no such variable; they never call
    // this.
    let mut command = Command::new(option_env!("CARGO_BIN_EXE_stowaway").unwrap_or("stowaway"));
    // Every run scans afresh: a result cache shared between tests (or with the developer's
    // ~/.cache) would hide what a test means to exercise. Tests of the cache give
    // --cache-dir and remove this variable.
    command.env("STOWAWAY_NO_CACHE", "1");
    command
}

/// Whether an executable named `name` is on `PATH` (e.g. `skopeo`, `umoci`).
///
/// Outside CI, tests that need a real tool skip themselves (loudly) when it is
/// missing; under CI (`CI` set) a missing tool fails the test.
/// Nothing is spawned: some tools (ssh-keygen) act when run without args.
pub fn tool_available(name: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()));
    // `.ci/run` installs every tool the tests use: under CI a missing one is a failure, not a
    // reason to skip.
    if !found && std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false") {
        panic!("{name} is not installed, but CI is set: .ci/run must install it");
    }
    if !found {
        eprintln!("skipping: {name} is not installed (bash .ci/run installs it)");
    }
    found
}

/// A fresh temporary directory, removed when the returned guard is dropped.
/// `text` as a Windows editor or PowerShell saves it: UTF-16, little- or big-endian, with or
/// without a byte order mark.
pub fn utf16(text: &str, big_endian: bool, bom: bool) -> Vec<u8> {
    let units = bom
        .then_some(0xFEFF_u16)
        .into_iter()
        .chain(text.encode_utf16());
    units
        .flat_map(|unit| {
            if big_endian {
                unit.to_be_bytes()
            } else {
                unit.to_le_bytes()
            }
        })
        .collect()
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("stowaway-fixture-")
        .tempdir()
        .expect("create temp dir")
}

/// Writes `spec` in `format`/`compression` to a conventional name inside
/// `dir` (`image.tar` for archives, `layout/` for an OCI layout directory).
pub fn write_image_in(
    spec: &ImageSpec,
    format: Format,
    compression: Compression,
    dir: &Path,
) -> Written {
    let dest = match format {
        Format::OciLayout => dir.join("layout"),
        _ => dir.join("image.tar"),
    };
    write_image(spec, format, compression, &dest)
}
