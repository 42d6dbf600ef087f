//! Listing a registry: the repositories of `GET /v2/_catalog` and the tags of
//! `GET /v2/<name>/tags/list`, page after page (`n=`, then the `Link: <…>; rel="next"` the
//! registry sends), each list cut at its cap so a huge or hostile registry costs bounded
//! memory and requests. Every request goes through the pull's retries (429/503 and
//! Retry-After) and holds a permit of the registry's request limit.

use anyhow::{Context, Result, anyhow};
use oci_client::Reference;
use tokio::sync::Semaphore;

use crate::source::registry::{Api, retrying};

/// Pages read from one list at most, whatever the registry's `Link` headers say: a registry
/// that sends empty pages with a `next` forever must not keep a sweep going.
const MAX_PAGES: usize = 10_000;

/// A list as read: its entries (at most the cap) and whether the registry had more.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Listed {
    pub names: Vec<String>,
    pub truncated: bool,
}

/// The repositories of the registry `api` reaches (an `Api` asking for the catalog scope).
pub async fn repositories(
    api: &Api,
    reference: &Reference,
    page_size: u32,
    cap: usize,
    permits: &Semaphore,
) -> Result<Listed> {
    let first = format!("/v2/_catalog?n={page_size}");
    let what = format!("catalog of {}", api.name);
    paged(api, reference, first, cap, permits, &what, |body| {
        #[derive(serde::Deserialize)]
        struct Catalog {
            repositories: Option<Vec<String>>,
        }
        let page: Catalog = serde_json::from_slice(body).ok()?;
        Some(page.repositories.unwrap_or_default())
    })
    .await
}

/// The tags of the repository `reference` names.
pub async fn tags(
    api: &Api,
    reference: &Reference,
    page_size: u32,
    cap: usize,
    permits: &Semaphore,
) -> Result<Listed> {
    let repository = reference.repository();
    let first = format!("/v2/{repository}/tags/list?n={page_size}");
    let what = format!("tags of {}/{repository}", api.name);
    paged(api, reference, first, cap, permits, &what, |body| {
        #[derive(serde::Deserialize)]
        struct Tags {
            // `null` for a repository whose tags were all deleted.
            tags: Option<Vec<String>>,
        }
        let page: Tags = serde_json::from_slice(body).ok()?;
        Some(page.tags.unwrap_or_default())
    })
    .await
}

/// Reads a paged list from `first` on, `entries` taking each page's names out of its JSON
/// (`None`: malformed).
async fn paged(
    api: &Api,
    reference: &Reference,
    first: String,
    cap: usize,
    permits: &Semaphore,
    what: &str,
    entries: impl Fn(&[u8]) -> Option<Vec<String>>,
) -> Result<Listed> {
    let mut listed = Listed::default();
    let mut path = first;
    for number in 1..=MAX_PAGES {
        let page = {
            let _permit = permits.acquire().await.context("request limit closed")?;
            retrying(what, || api.list_page(reference, &path)).await?
        };
        let names = entries(&page.body).ok_or_else(|| {
            anyhow!("{what}: page {number} is not the JSON list a registry sends")
        })?;
        let room = cap - listed.names.len();
        if names.len() > room {
            listed.names.extend(names.into_iter().take(room));
            listed.truncated = true;
            return Ok(listed);
        }
        let empty = names.is_empty();
        listed.names.extend(names);
        match page.next {
            // An empty page ends the list whatever it links to: no progress, no next request.
            Some(next) if !empty && next != path => {
                if listed.names.len() == cap {
                    listed.truncated = true;
                    return Ok(listed);
                }
                path = next;
            }
            _ => return Ok(listed),
        }
    }
    listed.truncated = true;
    Ok(listed)
}
