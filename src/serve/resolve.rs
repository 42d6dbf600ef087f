//! Tags to digests for admissions: a manifest HEAD (GET when the registry sends no digest
//! header) with one client per registry, so connections and tokens are reused, and a short
//! memory of answers (`tag_cache_seconds`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use crate::source::registry::{RegistryOptions, client_for, wire_reference};

/// Resolves image references to manifest digests.
pub struct DigestResolver {
    options: RegistryOptions,
    ttl: Duration,
    clients: Mutex<HashMap<String, (Client, RegistryAuth)>>,
    tags: Mutex<HashMap<String, (String, Instant)>>,
}

impl DigestResolver {
    pub fn new(options: RegistryOptions, ttl: Duration) -> DigestResolver {
        DigestResolver {
            options,
            ttl,
            clients: Mutex::new(HashMap::new()),
            tags: Mutex::new(HashMap::new()),
        }
    }

    /// The digest of `reference` when it is known without asking the registry: the
    /// reference names one, or a recent lookup of its tag did.
    pub fn known(&self, reference: &Reference) -> Option<String> {
        if let Some(digest) = reference.digest() {
            return Some(digest.to_string());
        }
        let tags = self.tags.lock().unwrap();
        let (digest, when) = tags.get(&reference.whole())?;
        (when.elapsed() < self.ttl).then(|| digest.clone())
    }

    /// The manifest digest `reference` names now.
    pub async fn digest(&self, reference: &Reference) -> Result<String> {
        if let Some(digest) = self.known(reference) {
            return Ok(digest);
        }
        let name = reference.whole();
        let (client, auth) = self.client(reference).await?;
        let digest = client
            .fetch_manifest_digest(&wire_reference(reference), &auth)
            .await
            .map_err(|err| anyhow!("cannot resolve {name}: {err}"))?;
        if !self.ttl.is_zero() {
            let mut tags = self.tags.lock().unwrap();
            if tags.len() > 10_000 {
                tags.retain(|_, (_, when)| when.elapsed() < self.ttl);
            }
            tags.insert(name, (digest.clone(), Instant::now()));
        }
        Ok(digest)
    }

    async fn client(&self, reference: &Reference) -> Result<(Client, RegistryAuth)> {
        let registry = reference.resolve_registry().to_string();
        if let Some(found) = self.clients.lock().unwrap().get(&registry) {
            return Ok(found.clone());
        }
        // Credential helpers are programs: run them off the async threads.
        let options = self.options.clone();
        let owned = reference.clone();
        let made = tokio::task::spawn_blocking(move || client_for(&owned, &options))
            .await
            .map_err(|err| anyhow!("registry client: {err}"))??;
        self.clients.lock().unwrap().insert(registry, made.clone());
        Ok(made)
    }
}
