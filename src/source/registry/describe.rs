//! What a registry sweep needs to know of a tag before it scans anything: the images a scan
//! of the tag would read (an index's platforms chosen exactly as a pull chooses them), each
//! with its manifest digest (what a report is stored under), its layer digests and, when
//! asked, its config's `created` time. Manifests and configs are read with a pull's retries
//! and bounds; no layer is touched.

use anyhow::{Result, anyhow};
use oci_client::Reference;
use oci_spec::image::{ImageIndex, ImageManifest};

use super::super::digest::Digest;
use super::super::json;
use super::{Api, MAX_CONFIG_BYTES, RegistryOptions, checked_digest, retrying, select_platforms};

/// One image a tag stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Described {
    /// The manifest digest: an index's platform manifest, not the index.
    pub digest: String,
    /// The index entry's platform, for an image listed in an index.
    pub platform: Option<String>,
    /// The layer blob digests, base first.
    pub layers: Vec<String>,
    /// The config's `created`, as written (RFC 3339); `None` when not asked for or absent.
    pub created: Option<String>,
}

/// The images `reference` (a tag) names in the registry `api` reaches. `with_config` also
/// reads each config for its `created` time (one more request per image).
pub async fn describe(
    api: &Api,
    reference: &Reference,
    options: &RegistryOptions,
    with_config: bool,
) -> Result<Vec<Described>> {
    let manifest = retrying("manifest", || api.manifest(reference)).await?;
    let digest = checked_digest(reference, &manifest)?;
    let top: serde_json::Value = serde_json::from_slice(&manifest.bytes)
        .map_err(|_| anyhow!("the registry returned a manifest that is not JSON"))?;
    if top.get("manifests").is_none() {
        let image = image_of(api, reference, &manifest.bytes, digest, None, with_config).await?;
        return Ok(vec![image]);
    }
    let index: ImageIndex = json::parse(&manifest.bytes, "malformed image index")?;
    let mut images = Vec::new();
    for (digest, platform) in select_platforms(&index, options)? {
        let by_digest = Reference::with_digest(
            reference.registry().to_string(),
            reference.repository().to_string(),
            digest,
        );
        let manifest = retrying("manifest", || api.manifest(&by_digest)).await?;
        let digest = checked_digest(&by_digest, &manifest)?;
        images.push(
            image_of(
                api,
                &by_digest,
                &manifest.bytes,
                digest,
                Some(platform),
                with_config,
            )
            .await?,
        );
    }
    Ok(images)
}

/// One image manifest read into a [`Described`].
async fn image_of(
    api: &Api,
    reference: &Reference,
    bytes: &[u8],
    digest: String,
    platform: Option<String>,
    with_config: bool,
) -> Result<Described> {
    let manifest: ImageManifest = json::parse(
        bytes,
        &format!("manifest {digest} is not an image manifest"),
    )?;
    let layers = manifest
        .layers()
        .iter()
        .map(|layer| layer.digest().to_string())
        .collect();
    let created = if with_config {
        let config = Digest::parse(manifest.config().digest().as_ref())?;
        let what = format!("config {config}");
        let bytes = retrying(&what, || {
            api.small_blob(reference, config.as_str(), MAX_CONFIG_BYTES)
        })
        .await?;
        config.verify(&bytes, &what)?;
        created_of(&bytes)
    } else {
        None
    };
    Ok(Described {
        digest,
        platform,
        layers,
        created,
    })
}

/// The `created` string of an image config, if it has one.
fn created_of(config: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Created {
        created: Option<String>,
    }
    serde_json::from_slice::<Created>(config).ok()?.created
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_is_read_from_a_config() {
        assert_eq!(
            created_of(br#"{"created":"2024-05-01T10:00:00Z","os":"linux"}"#).as_deref(),
            Some("2024-05-01T10:00:00Z")
        );
        assert_eq!(created_of(br#"{"os":"linux"}"#), None);
        assert_eq!(created_of(b"not json"), None);
    }
}
