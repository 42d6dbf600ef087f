//! The bounds on what an image's metadata may cost, in one place.
//!
//! Manifests, indexes, configs and `docker save`'s `manifest.json` are parsed whole into
//! memory, and parsing JSON costs a multiple of its size (a 60 MB config once cost 1.14 GB).
//! A hostile image must not turn a small input into unbounded work, so each of these documents
//! is refused above a size far beyond what real images carry, and an image argument expands to
//! a bounded number of manifests. Registries enforce the same kind of limit on push
//! (distribution refuses manifests over 4 MiB), so a legitimate image never comes near them.
//!
//! | what | limit |
//! | --- | --- |
//! | an image manifest or an index (local or from a registry) | [`MAX_MANIFEST_BYTES`] (8 MiB) |
//! | an image config | [`MAX_CONFIG_BYTES`] (16 MiB) |
//! | `docker save`'s `manifest.json` | [`MAX_DOCKER_SAVE_MANIFEST_BYTES`] (16 MiB) |
//! | image manifests one image argument expands to | [`MAX_MANIFESTS`] (1,000) |
//! | index nesting | [`MAX_INDEX_DEPTH`] (4 levels) |
//! | a compressed image tarball decompressed, or a docker-daemon export, copied to a temporary file | [`MAX_SPILL_BYTES`] (32 GiB) |

use anyhow::{Result, bail};

/// The largest image manifest or image index read, in bytes: twice distribution's own 4 MiB
/// limit on pushed manifests, so anything a registry accepted fits.
pub const MAX_MANIFEST_BYTES: usize = 8 << 20;

/// The largest image config read, in bytes. Configs are a few kilobytes; a long history makes
/// some a few hundred; 16 MiB keeps a wide margin while parsing stays well under 300 MiB.
pub const MAX_CONFIG_BYTES: usize = 16 << 20;

/// The most image manifests one image argument may expand to (entries of `docker save`'s
/// `manifest.json`, manifests reached through an OCI index, platforms of a registry index).
/// Real multi-platform images list tens; 1,000 is far beyond any of them.
pub const MAX_MANIFESTS: usize = 1_000;

/// The largest `docker save` `manifest.json` read, in bytes: [`MAX_MANIFESTS`] entries of up
/// to 16 KiB each (an entry is a config name, a few tags and one path per layer, under 100
/// bytes per layer).
pub const MAX_DOCKER_SAVE_MANIFEST_BYTES: usize = MAX_MANIFESTS * (16 << 10);

/// The deepest nesting of indexes followed below `index.json` (real images nest at most one
/// level: Docker 25+'s `index.json` pointing at a multi-platform index).
pub const MAX_INDEX_DEPTH: usize = 4;

/// The most bytes written to a temporary file for one image tarball that cannot be read in
/// place (`source/spill.rs`): a compressed `docker save` or oci-archive once decompressed, or a
/// Docker daemon's export. Images of tens of gigabytes exist; a small gzip or zstd file that
/// expands past this (a decompression bomb) stops here rather than filling the disk.
pub const MAX_SPILL_BYTES: u64 = 32 << 30;

/// Refuses a document of `len` bytes over `limit`; `what` names it in the message, which
/// carries sizes only, never content.
pub fn check_size(what: &str, len: usize, limit: usize) -> Result<()> {
    if len > limit {
        bail!("{what} is {len} bytes, over the limit of {limit} bytes");
    }
    Ok(())
}

/// Refuses expanding to more than [`MAX_MANIFESTS`] image manifests; `count` is how many are
/// listed so far and `source` says where they are listed.
pub fn check_manifest_count(count: usize, source: &str) -> Result<()> {
    if count > MAX_MANIFESTS {
        bail!("{source} lists more than {MAX_MANIFESTS} image manifests (the limit per image)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_at_the_limit_pass_and_above_it_are_refused_without_content() {
        assert!(check_size("config x", 10, 10).is_ok());
        let error = check_size("config x", 11, 10).unwrap_err().to_string();
        assert_eq!(error, "config x is 11 bytes, over the limit of 10 bytes");
        assert!(check_manifest_count(MAX_MANIFESTS, "index.json").is_ok());
        assert!(check_manifest_count(MAX_MANIFESTS + 1, "index.json").is_err());
    }
}
