//! Tags to digests for admissions: a manifest HEAD (GET when the registry sends no digest
//! header) through the same requests as `scan` (so a rate limit reads the same, with its
//! Retry-After), one per repository so connections and tokens are reused, and a short memory
//! of answers (`tag_cache_seconds`), shared with the other replicas through a shared store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use oci_client::Reference;

use crate::source::name::wire_reference;
use crate::source::registry::{Api, RegistryOptions, api_for, http_client};
use crate::store::ResultStore;

/// Repositories whose requests are kept; beyond it, the map starts afresh.
const KEPT_REPOSITORIES: usize = 1_000;

/// Resolves image references to manifest digests.
pub struct DigestResolver {
    options: RegistryOptions,
    /// One connection pool and TLS setup for every registry.
    http: reqwest::Client,
    ttl: Duration,
    /// By registry and repository: bearer tokens are scoped to one repository.
    apis: Mutex<HashMap<String, Arc<Api>>>,
    tags: Mutex<HashMap<String, (String, Instant)>>,
    /// Where answers are shared (a shared store keeps them; the embedded one does not).
    store: Arc<dyn ResultStore>,
}

impl DigestResolver {
    pub fn new(
        options: RegistryOptions,
        ttl: Duration,
        store: Arc<dyn ResultStore>,
    ) -> Result<DigestResolver> {
        Ok(DigestResolver {
            http: http_client(&options)?,
            options,
            ttl,
            apis: Mutex::new(HashMap::new()),
            tags: Mutex::new(HashMap::new()),
            store,
        })
    }

    /// The digest of `reference` when it is known without asking the registry: the
    /// reference names one, or a recent lookup of its tag did (here, or in another replica
    /// sharing the store).
    pub fn known(&self, reference: &Reference) -> Option<String> {
        if let Some(digest) = reference.digest() {
            return Some(digest.to_string());
        }
        let name = reference.whole();
        if let Some((digest, when)) = self.tags.lock().unwrap().get(&name)
            && when.elapsed() < self.ttl
        {
            return Some(digest.clone());
        }
        if self.ttl.is_zero() {
            return None;
        }
        let digest = self.store.get_tag(&name)?;
        self.remember(name, &digest);
        Some(digest)
    }

    fn remember(&self, name: String, digest: &str) {
        let mut tags = self.tags.lock().unwrap();
        if tags.len() > 10_000 {
            tags.retain(|_, (_, when)| when.elapsed() < self.ttl);
        }
        tags.insert(name, (digest.to_string(), Instant::now()));
    }

    /// The manifest digest `reference` names now.
    pub async fn digest(&self, reference: &Reference) -> Result<String> {
        if let Some(digest) = self.known(reference) {
            return Ok(digest);
        }
        let name = reference.whole();
        let api = self.api(reference).await?;
        let digest = api
            .manifest_digest(&wire_reference(reference))
            .await
            .map_err(|failure| anyhow!("cannot resolve {name}: {}", failure.message))?;
        if !self.ttl.is_zero() {
            self.store.put_tag(&name, &digest, self.ttl);
            self.remember(name, &digest);
        }
        Ok(digest)
    }

    async fn api(&self, reference: &Reference) -> Result<Arc<Api>> {
        let key = format!("{}/{}", reference.registry(), reference.repository());
        if let Some(found) = self.apis.lock().unwrap().get(&key) {
            return Ok(Arc::clone(found));
        }
        // Credential helpers are programs: run them off the async threads.
        let options = self.options.clone();
        let owned = reference.clone();
        let http = self.http.clone();
        let made = tokio::task::spawn_blocking(move || api_for(&owned, &options, http))
            .await
            .map_err(|err| anyhow!("registry client: {err}"))??;
        let made = Arc::new(made);
        let mut apis = self.apis.lock().unwrap();
        if apis.len() >= KEPT_REPOSITORIES {
            apis.clear();
        }
        apis.insert(key, Arc::clone(&made));
        Ok(made)
    }
}
