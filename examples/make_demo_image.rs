//! Writes `testdata/demo-leaky.tar`, the demo image the README scans: the classic leak from the
//! test fixtures (secrets copied in and deleted later, a build-arg in the history, an ENV
//! password), as a `docker save` tarball. Every secret in it is random, made by this program.
//!
//! cargo run --example make_demo_image [-- OUTPUT]

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::PathBuf;

fn main() {
    let output = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("testdata/demo-leaky.tar"));
    // A fixed seed keeps the committed demo reproducible byte for byte.
    fastrand::seed(0x5701_aaa7);
    let (spec, planted) = support::classic_leak();
    let written = support::write_image(
        &spec,
        support::Format::DockerLegacy,
        support::Compression::None,
        &output,
    );
    println!(
        "wrote {} ({} secrets planted, config {})",
        written.path.display(),
        planted.len(),
        written.config_digest
    );
}
