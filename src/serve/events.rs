//! Registry push notifications, turned into scan requests:
//! - CNCF distribution (`docker-registry`) notifications: an envelope `{"events": [...]}`
//!   (media type `application/vnd.docker.distribution.events.v1+json`); each event with
//!   `action: "push"` whose `target.mediaType` is a manifest or index is one request.
//! - Harbor webhooks: `{"type": "PUSH_ARTIFACT", "event_data": {"resources": [...]}}`; each
//!   resource's `digest` and `resource_url` is one request.

use oci_client::Reference;
use serde_json::Value;

/// Manifest media types worth scanning (blob pushes and signatures are not images).
const MANIFEST_TYPES: &[&str] = &[
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// An image to scan, named by digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedImage {
    /// `registry/repository@digest`
    pub reference: String,
    pub digest: String,
}

/// Who sent a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    Distribution,
    Harbor,
}

/// What a payload asks for.
#[derive(Debug, Default)]
pub struct Parsed {
    pub images: Vec<PushedImage>,
    /// Events that are not manifest pushes (pulls, blob pushes, deletes…).
    pub ignored: usize,
}

/// Reads a notification payload. Errors say why it is not one.
pub fn parse(body: &[u8]) -> Result<(Sender, Parsed), String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|err| format!("the body is not JSON: {err}"))?;
    if let Some(events) = value.get("events") {
        let events = events
            .as_array()
            .ok_or_else(|| "events is not a list".to_string())?;
        return Ok((Sender::Distribution, distribution(events)));
    }
    if value.get("type").is_some() && value.get("event_data").is_some() {
        return Ok((Sender::Harbor, harbor(&value)));
    }
    Err("neither a distribution notification envelope (events) nor a Harbor webhook payload (type, event_data)".into())
}

fn distribution(events: &[Value]) -> Parsed {
    let mut parsed = Parsed::default();
    for event in events {
        match distribution_event(event) {
            Some(image) => push_unique(&mut parsed.images, image),
            None => parsed.ignored += 1,
        }
    }
    parsed
}

fn distribution_event(event: &Value) -> Option<PushedImage> {
    if event.get("action")?.as_str()? != "push" {
        return None;
    }
    let target = event.get("target")?;
    let media_type = target.get("mediaType")?.as_str()?;
    if !MANIFEST_TYPES.contains(&media_type) {
        return None;
    }
    let digest = target.get("digest")?.as_str()?;
    let repository = target.get("repository")?.as_str()?;
    // The registry's address as the pusher reached it: from the target URL, else the request.
    let host = target
        .get("url")
        .and_then(Value::as_str)
        .and_then(url_host)
        .or_else(|| {
            event
                .get("request")
                .and_then(|r| r.get("host"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })?;
    pushed(&host, repository, digest)
}

/// `https://host:port/v2/...` → `host:port`
fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let host = rest.split('/').next()?;
    (!host.is_empty()).then(|| host.to_string())
}

fn harbor(value: &Value) -> Parsed {
    let mut parsed = Parsed::default();
    let kind = value
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let resources = value
        .get("event_data")
        .and_then(|d| d.get("resources"))
        .and_then(Value::as_array);
    let Some(resources) = resources.filter(|_| kind.eq_ignore_ascii_case("PUSH_ARTIFACT")) else {
        parsed.ignored += 1;
        return parsed;
    };
    for resource in resources {
        let image = resource
            .get("digest")
            .and_then(Value::as_str)
            .zip(resource.get("resource_url").and_then(Value::as_str))
            .and_then(|(digest, url)| {
                // `host/project/repo:tag` or `host/project/repo@digest`: keep the repository.
                let reference: Reference = url.parse().ok()?;
                pushed(reference.registry(), reference.repository(), digest)
            });
        match image {
            Some(image) => push_unique(&mut parsed.images, image),
            None => parsed.ignored += 1,
        }
    }
    parsed
}

/// The image `registry/repository@digest`, if a registry client reads that name as this
/// repository on this registry. A host that is not a registry name to a client (no `.`, no
/// port, not `localhost`: an in-cluster `registry` service) would be read as part of a
/// Docker Hub repository, and the server would then check and scan an image on Docker Hub
/// instead of the one pushed: such an event is ignored.
fn pushed(registry: &str, repository: &str, digest: &str) -> Option<PushedImage> {
    if !is_digest(digest) {
        return None;
    }
    let reference = format!("{registry}/{repository}@{digest}");
    // Only names a registry client accepts.
    let parsed: Reference = reference.parse().ok()?;
    if parsed.registry() != registry || parsed.repository() != repository {
        return None;
    }
    Some(PushedImage {
        reference,
        digest: digest.to_string(),
    })
}

fn push_unique(images: &mut Vec<PushedImage>, image: PushedImage) {
    if !images.iter().any(|seen| seen.digest == image.digest) {
        images.push(image);
    }
}

/// `sha256:<64 hex>` or `sha512:<128 hex>`.
pub fn is_digest(text: &str) -> bool {
    let Some((algorithm, hex)) = text.split_once(':') else {
        return false;
    };
    let length = match algorithm {
        "sha256" => 64,
        "sha512" => 128,
        _ => return false,
    };
    hex.len() == length
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    #[test]
    fn distribution_manifest_pushes_become_requests() {
        let body = json!({"events": [
            {"id": "1", "action": "push", "target": {
                "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": D1,
                "repository": "team/app", "tag": "1.0",
                "url": "http://127.0.0.1:5000/v2/team/app/manifests/sha256:1111"},
             "request": {"host": "ignored:1"}},
            {"id": "2", "action": "push", "target": {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": D2,
                "repository": "team/app"}},
            {"id": "3", "action": "pull", "target": {
                "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": D2,
                "repository": "team/app"}, "request": {"host": "r:5000"}},
            {"id": "4", "action": "push", "target": {
                "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
                "digest": D2, "repository": "app"}, "request": {"host": "registry.example.com"}},
            {"id": "5", "action": "push", "target": {
                "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": D1,
                "repository": "team/app", "url": "http://127.0.0.1:5000/v2/team/app/manifests/x"}}
        ]});
        let (sender, parsed) = parse(body.to_string().as_bytes()).unwrap();
        assert_eq!(sender, Sender::Distribution);
        assert_eq!(
            parsed.images,
            vec![
                PushedImage {
                    reference: format!("127.0.0.1:5000/team/app@{D1}"),
                    digest: D1.into()
                },
                PushedImage {
                    reference: format!("registry.example.com/app@{D2}"),
                    digest: D2.into()
                },
            ]
        );
        assert_eq!(parsed.ignored, 2);
    }

    #[test]
    fn harbor_push_artifact_becomes_requests() {
        let body = json!({
            "type": "PUSH_ARTIFACT", "occur_at": 1, "operator": "admin",
            "event_data": {
                "resources": [
                    {"digest": D1, "tag": "v1", "resource_url": "harbor.example.com/library/app:v1"},
                    {"digest": "sha256:short", "tag": "v2", "resource_url": "harbor.example.com/library/app:v2"}
                ],
                "repository": {"name": "app", "namespace": "library", "repo_full_name": "library/app"}
            }
        });
        let (sender, parsed) = parse(body.to_string().as_bytes()).unwrap();
        assert_eq!(sender, Sender::Harbor);
        assert_eq!(
            parsed.images,
            vec![PushedImage {
                reference: format!("harbor.example.com/library/app@{D1}"),
                digest: D1.into()
            }]
        );
        assert_eq!(parsed.ignored, 1);
        let pull = json!({"type": "PULL_ARTIFACT", "event_data": {"resources": []}});
        let (_, parsed) = parse(pull.to_string().as_bytes()).unwrap();
        assert!(parsed.images.is_empty());
    }

    /// Found by the `events` fuzz target (fuzz/regressions/events/): a host without a dot or
    /// a port was read as the first component of a Docker Hub repository.
    #[test]
    fn a_host_that_is_no_registry_name_is_not_taken_for_docker_hub() {
        let event = |url: &str| {
            json!({"events": [{"action": "push", "target": {
                "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": D1,
                "repository": "team/app", "url": url}}]})
            .to_string()
        };
        let (_, parsed) =
            parse(event("https://registry/v2/team/app/manifests/x").as_bytes()).unwrap();
        assert!(parsed.images.is_empty(), "{:?}", parsed.images);
        assert_eq!(parsed.ignored, 1);
        for host in ["registry:5000", "localhost", "registry.internal"] {
            let url = format!("https://{host}/v2/team/app/manifests/x");
            let (_, parsed) = parse(event(&url).as_bytes()).unwrap();
            assert_eq!(
                parsed.images[0].reference,
                format!("{host}/team/app@{D1}"),
                "{host}"
            );
        }
        // Nor may a repository re-split the name ("UPPER" is no repository name).
        let upper = event("https://r.example/v2/x").replace("team/app", "Team/App");
        assert!(parse(upper.as_bytes()).unwrap().1.images.is_empty());
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(parse(b"nope").is_err());
        assert!(parse(b"{\"events\": 3}").is_err());
        assert!(parse(b"{\"hello\": 1}").is_err());
        assert!(is_digest(D1));
        assert!(!is_digest("sha256:ABC"));
    }
}
