//! The requests of a pull — manifests and blobs — made here with reqwest rather than through
//! oci-client: its errors keep the status but drop the headers, so a 429's `Retry-After` could
//! never be shown or honoured. oci-client still does the token exchange (the `WWW-Authenticate`
//! challenge, realm, service and scope), and this module sends what it got.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::StreamExt;
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, RANGE, RETRY_AFTER};
use reqwest::{Response, StatusCode};
use tokio::sync::Mutex;

use super::guard::NetworkPolicy;
use token::Registry;

mod token;

/// Media types stowaway asks registries for (schema 1 is deliberately absent).
pub const ACCEPTED_MANIFESTS: &[&str] = &[
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// Docker's schema 1 manifests, signed or not.
pub const SCHEMA1_MANIFESTS: &[&str] = &[
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
];

/// Manifests are small; a registry that sends more is not sending a manifest (the bound
/// shared with local layouts, see `source::limits`).
const MAX_MANIFEST_BYTES: usize = crate::source::limits::MAX_MANIFEST_BYTES;

/// A registry failure in words a user can act on.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    /// Worth trying again (connection trouble, 5xx, 429).
    pub transient: bool,
    /// What the registry asked for in `Retry-After`, if anything.
    pub retry_after: Option<RetryAfter>,
}

impl Failure {
    fn new(message: String, transient: bool) -> Failure {
        Failure {
            message,
            transient,
            retry_after: None,
        }
    }
}

/// A `Retry-After` header: delay-seconds or an HTTP date.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryAfter {
    /// How long to wait from now; `None` when the value could not be read.
    pub wait: Option<Duration>,
    /// The value as sent, for messages.
    pub text: String,
}

impl RetryAfter {
    /// Reads the header, if present.
    pub fn from_headers(headers: &HeaderMap, now: SystemTime) -> Option<RetryAfter> {
        let text = headers.get(RETRY_AFTER)?.to_str().ok()?.trim().to_string();
        let wait = match text.parse::<u64>() {
            Ok(seconds) => Some(Duration::from_secs(seconds)),
            Err(_) => httpdate::parse_http_date(&text)
                .ok()
                .map(|at| at.duration_since(now).unwrap_or_default()),
        };
        Some(RetryAfter { wait, text })
    }

    /// `120 s` for delay-seconds, the date as sent otherwise.
    fn describe(&self) -> String {
        if self.text.chars().all(|c| c.is_ascii_digit()) {
            format!("{} s", self.text)
        } else {
            self.text.clone()
        }
    }
}

/// How requests are authorised once the token exchange is done.
#[derive(Clone)]
enum Authorization {
    Anonymous,
    Basic(String, String),
    Bearer(String),
}

/// One repository's registry, as seen by the pull.
pub struct Api {
    http: reqwest::Client,
    oci: Client,
    auth: RegistryAuth,
    scheme: &'static str,
    /// `host[:port]` the requests go to.
    host: String,
    /// The registry as messages name it (as the user wrote it).
    pub name: String,
    authorization: Mutex<Option<Authorization>>,
    /// A server's network policy: the token exchange then goes through `http` (whose
    /// resolver and redirects obey it) instead of oci-client's own client.
    network: Option<Arc<NetworkPolicy>>,
    /// The bearer-token scope to ask for instead of the repository's pull scope (the
    /// catalog needs `registry:catalog:*`); the exchange is then made here, as for a server.
    scope: Option<String>,
}

/// The most bytes one page of a catalog or tag list may hold: a page of 1000 long names is
/// far below it, and a registry that sends more is not sending a list.
const MAX_LIST_PAGE_BYTES: usize = 4 << 20;

/// One page of `/v2/_catalog` or `/v2/<name>/tags/list`, and where the next one is.
pub struct Page {
    pub body: Bytes,
    /// The path and query of the `Link: <…>; rel="next"` target, when there is one on the
    /// same registry.
    pub next: Option<String>,
}

impl Api {
    /// An `Api` for the registry at `host` (`host[:port]`, where requests go) that messages
    /// call `name`: requests go through `http`, while `oci` does the token exchange with
    /// `auth`; plain HTTP when `plain_http`. [`super::api_for`] sets one up from options.
    pub fn new(
        http: reqwest::Client,
        oci: Client,
        auth: RegistryAuth,
        plain_http: bool,
        host: String,
        name: String,
    ) -> Api {
        Api {
            http,
            oci,
            auth,
            scheme: if plain_http { "http" } else { "https" },
            host,
            name,
            authorization: Mutex::new(None),
            network: None,
            scope: None,
        }
    }

    /// The same `Api` asking the token service for `scope` (`registry:catalog:*`) instead of
    /// the repository's pull scope.
    pub fn with_scope(mut self, scope: &str) -> Api {
        self.scope = Some(scope.to_string());
        self
    }

    /// The same `Api` under a server's network policy; `http` must obey it too (see
    /// [`super::http_client`]).
    pub fn guarded(mut self, network: Arc<NetworkPolicy>) -> Api {
        self.network = Some(network);
        self
    }

    /// The authorization to send, from the token exchange (done once, again when `renew`).
    async fn authorization(
        &self,
        reference: &Reference,
        renew: bool,
    ) -> Result<Authorization, Failure> {
        let mut cached = self.authorization.lock().await;
        if let (Some(authorization), false) = (cached.as_ref(), renew) {
            return Ok(authorization.clone());
        }
        let exchanged = match (&self.network, &self.scope) {
            (None, None) => self
                .oci
                .auth(reference, &self.auth, RegistryOperation::Pull)
                .await
                .map_err(|err| classify_oci(err, &self.name))?,
            (network, scope) => {
                let registry = Registry {
                    http: &self.http,
                    network: network.as_deref(),
                    scheme: self.scheme,
                    host: &self.host,
                    name: &self.name,
                };
                let scope = match scope {
                    Some(scope) => scope.clone(),
                    None => format!("repository:{}:pull", reference.repository()),
                };
                token::bearer_token(&registry, &scope, &self.auth).await?
            }
        };
        let authorization = match exchanged {
            Some(token) => Authorization::Bearer(token),
            // No bearer challenge: the registry takes basic auth (or nothing) on each request.
            None => match &self.auth {
                RegistryAuth::Basic(user, password) => {
                    Authorization::Basic(user.clone(), password.clone())
                }
                _ => Authorization::Anonymous,
            },
        };
        *cached = Some(authorization.clone());
        Ok(authorization)
    }

    /// Sends `method` to `path` (under `/v2/REPOSITORY/`), renewing an expired token once.
    async fn send(
        &self,
        method: reqwest::Method,
        reference: &Reference,
        path: &str,
        accept: Option<&str>,
        offset: u64,
        not_found: &str,
    ) -> Result<Response, Failure> {
        let url = format!(
            "{}://{}/v2/{}/{path}",
            self.scheme,
            self.host,
            reference.repository()
        );
        self.send_url(method, reference, &url, accept, offset, not_found)
            .await
    }

    /// Sends `method` to `url` with the authorization for `reference`, renewing an expired
    /// token once.
    async fn send_url(
        &self,
        method: reqwest::Method,
        reference: &Reference,
        url: &str,
        accept: Option<&str>,
        offset: u64,
        not_found: &str,
    ) -> Result<Response, Failure> {
        let mut renewed = false;
        loop {
            let authorization = self.authorization(reference, renewed).await?;
            let mut request = self.http.request(method.clone(), url);
            if let Some(accept) = accept {
                request = request.header(ACCEPT, accept);
            }
            if offset > 0 {
                request = request.header(RANGE, format!("bytes={offset}-"));
            }
            request = match &authorization {
                Authorization::Anonymous => request,
                Authorization::Basic(user, password) => request.basic_auth(user, Some(password)),
                Authorization::Bearer(token) => request.bearer_auth(token),
            };
            let response = request
                .send()
                .await
                .map_err(|err| request_failure(err, &self.name))?;
            let status = response.status();
            if status.is_success() {
                return Ok(response);
            }
            // Bearer tokens expire (Docker Hub's after five minutes): get a new one, once.
            if status == StatusCode::UNAUTHORIZED
                && matches!(authorization, Authorization::Bearer(_))
                && !renewed
            {
                renewed = true;
                continue;
            }
            return Err(status_failure(response, &self.name, not_found).await);
        }
    }

    /// The digest of the manifest `reference` names now: the `Docker-Content-Digest` of a
    /// manifest HEAD (no body, and Docker Hub does not count HEADs against its pull limit),
    /// else the digest of the manifest itself.
    pub async fn manifest_digest(&self, reference: &Reference) -> Result<String, Failure> {
        let response = self
            .send(
                reqwest::Method::HEAD,
                reference,
                &manifest_path(reference),
                Some(&ACCEPTED_MANIFESTS.join(", ")),
                0,
                "no such image or tag",
            )
            .await?;
        let announced = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| crate::source::digest::Digest::parse(v.trim()).ok());
        if let Some(digest) = announced {
            return Ok(digest.to_string());
        }
        let manifest = self.manifest(reference).await?;
        // Only a manifest's digest names an image: the digest of any other answer would hand
        // the caller a fingerprint of whatever the host serves.
        if !looks_like_manifest(&manifest.bytes) {
            return Err(Failure::new(
                format!(
                    "{} answered the manifest request with something that is not an image manifest",
                    self.name
                ),
                false,
            ));
        }
        Ok(crate::source::digest::Digest::of(&manifest.bytes).to_string())
    }

    /// GETs a manifest: its bytes, its media type (`Content-Type`, parameters dropped) and the
    /// registry's `Docker-Content-Digest`, if sent.
    pub async fn manifest(&self, reference: &Reference) -> Result<Manifest, Failure> {
        let response = self
            .send(
                reqwest::Method::GET,
                reference,
                &manifest_path(reference),
                Some(&ACCEPTED_MANIFESTS.join(", ")),
                0,
                "no such image or tag",
            )
            .await?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.trim().to_string())
        };
        let media_type = header(CONTENT_TYPE.as_str())
            .map(|v| v.split(';').next().unwrap_or_default().trim().to_string())
            .unwrap_or_default();
        let digest = header("docker-content-digest");
        let bytes = read_limited(response, MAX_MANIFEST_BYTES, &self.name, "manifest").await?;
        Ok(Manifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// Starts a blob download, from `offset` on when it is not 0 (a `Range` request: the
    /// answer is 206 when the registry honours it, 200 with the whole blob when it does not).
    pub async fn blob(
        &self,
        reference: &Reference,
        digest: &str,
        offset: u64,
    ) -> Result<Response, Failure> {
        let not_found = format!("blob {digest} not found");
        self.send(
            reqwest::Method::GET,
            reference,
            &format!("blobs/{digest}"),
            None,
            offset,
            &not_found,
        )
        .await
    }

    /// One page of a list under `/v2/`: `path` is `/v2/_catalog?n=100`, `/v2/NAME/tags/list`,
    /// or the `next` of the page before. `reference` chooses the credentials and the token's
    /// repository (see [`Api::with_scope`] for the catalog).
    pub async fn list_page(&self, reference: &Reference, path: &str) -> Result<Page, Failure> {
        let url = format!("{}://{}{path}", self.scheme, self.host);
        let response = self
            .send_url(
                reqwest::Method::GET,
                reference,
                &url,
                Some("application/json"),
                0,
                "no such repository, or the registry lists none",
            )
            .await?;
        let next = response
            .headers()
            .get_all(reqwest::header::LINK)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find_map(next_link);
        let body = read_limited(response, MAX_LIST_PAGE_BYTES, &self.name, "list page").await?;
        Ok(Page { body, next })
    }

    /// A whole small blob (a config), at most `limit` bytes.
    pub async fn small_blob(
        &self,
        reference: &Reference,
        digest: &str,
        limit: usize,
    ) -> Result<Bytes, Failure> {
        let response = self.blob(reference, digest, 0).await?;
        read_limited(response, limit, &self.name, digest).await
    }
}

/// The target of `rel="next"` in a `Link` header (`</v2/_catalog?last=b&n=2>; rel="next"`),
/// as a path on the same registry: an absolute URL keeps only its path and query, so a list
/// can never send the next request (and its credentials) to another host.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|link| {
        let (target, params) = link.trim().split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        let is_next = params.split(';').any(|param| {
            param
                .trim()
                .strip_prefix("rel=")
                .is_some_and(|rel| rel.trim_matches('"').split(' ').any(|r| r == "next"))
        });
        if !is_next {
            return None;
        }
        let path = match target.find("://") {
            Some(at) => {
                let after = &target[at + 3..];
                &after[after.find('/')?..]
            }
            None => target,
        };
        path.starts_with("/v2/").then(|| path.to_string())
    })
}

/// `manifests/<digest or tag>` (tag `latest` when the reference names neither).
fn manifest_path(reference: &Reference) -> String {
    let target = reference.digest().or(reference.tag()).unwrap_or("latest");
    format!("manifests/{target}")
}

/// Whether `bytes` are an image manifest or index (schema 2 or OCI): a JSON object with a
/// `schemaVersion` and its layers, config or manifests.
fn looks_like_manifest(bytes: &[u8]) -> bool {
    let Ok(serde_json::Value::Object(object)) = serde_json::from_slice(bytes) else {
        return false;
    };
    object.get("schemaVersion").is_some_and(|v| v.is_u64())
        && ["manifests", "layers", "config"]
            .iter()
            .any(|key| object.contains_key(*key))
}

/// A manifest as the registry sent it.
pub struct Manifest {
    pub bytes: Bytes,
    pub media_type: String,
    pub digest: Option<String>,
}

async fn read_limited(
    response: Response,
    limit: usize,
    registry: &str,
    what: &str,
) -> Result<Bytes, Failure> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(Failure::new(
            format!("{registry} sent a {what} larger than {limit} bytes"),
            false,
        ));
    }
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|err| request_failure(err, registry))?;
        if body.len() + chunk.len() > limit {
            return Err(Failure::new(
                format!("{registry} sent a {what} larger than {limit} bytes"),
                false,
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

/// Registry error codes from an error body (`{"errors": [{"code": "DENIED", …}]}`).
fn error_codes(body: &[u8]) -> Vec<String> {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("errors")?.as_array().map(|errors| {
                errors
                    .iter()
                    .filter_map(|e| e.get("code")?.as_str().map(str::to_string))
                    .collect()
            })
        })
        .unwrap_or_default()
}

/// The failure an unsuccessful response stands for.
async fn status_failure(response: Response, registry: &str, not_found: &str) -> Failure {
    let status = response.status();
    let retry_after = RetryAfter::from_headers(response.headers(), SystemTime::now());
    // Error bodies are small; a registry that streams more is cut short.
    let body = read_limited(response, 64 << 10, registry, "error body")
        .await
        .unwrap_or_default();
    let codes = error_codes(&body);
    let has = |code: &str| codes.iter().any(|c| c.eq_ignore_ascii_case(code));
    let mut failure = if status == StatusCode::TOO_MANY_REQUESTS || has("TOOMANYREQUESTS") {
        let asked = match &retry_after {
            Some(retry) => format!("Retry-After: {}", retry.describe()),
            None => "no Retry-After given".to_string(),
        };
        Failure::new(
            format!(
                "rate limited by {registry} (HTTP {}, {asked}); authenticate or try again later",
                status.as_u16()
            ),
            true,
        )
    } else if status == StatusCode::UNAUTHORIZED || has("UNAUTHORIZED") {
        Failure::new(format!("authentication failed for {registry}"), false)
    } else if status == StatusCode::FORBIDDEN || has("DENIED") {
        Failure::new(
            format!("authentication failed for {registry} (access denied)"),
            false,
        )
    } else if status == StatusCode::NOT_FOUND
        || has("MANIFEST_UNKNOWN")
        || has("NAME_UNKNOWN")
        || has("BLOB_UNKNOWN")
    {
        Failure::new(not_found.to_string(), false)
    } else if status.is_server_error() {
        Failure::new(
            format!("{registry} answered HTTP {}", status.as_u16()),
            true,
        )
    } else {
        Failure::new(
            format!("{registry} answered HTTP {}", status.as_u16()),
            false,
        )
    };
    failure.retry_after = retry_after;
    failure
}

/// A transport error (no answer, or an answer cut short).
pub fn request_failure(err: reqwest::Error, registry: &str) -> Failure {
    // The URL can be a signed CDN address after a redirect: never show it.
    let err = err.without_url();
    let transient = err.is_timeout() || err.is_connect() || err.is_body() || err.is_request();
    let reason = if err.is_connect() {
        "cannot connect"
    } else if err.is_timeout() {
        "timed out"
    } else {
        "request failed"
    };
    Failure::new(
        format!("{reason} to {registry}: {}", error_chain(&err)),
        transient,
    )
}

/// The token exchange's failures (oci-client's errors).
fn classify_oci(err: OciDistributionError, registry: &str) -> Failure {
    match err {
        OciDistributionError::AuthenticationFailure(_)
        | OciDistributionError::UnauthorizedError { .. } => {
            Failure::new(format!("authentication failed for {registry}"), false)
        }
        OciDistributionError::RequestError(request) => request_failure(request, registry),
        OciDistributionError::ServerError { code, .. } => Failure::new(
            format!("{registry} answered HTTP {code} to the token request"),
            (500..=599).contains(&code) || code == 429,
        ),
        other => Failure::new(
            format!(
                "authentication with {registry} failed: {}",
                error_chain(&other)
            ),
            false,
        ),
    }
}

/// An error and its sources on one line (reqwest hides the useful part in `source()`).
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(next) = source {
        let text = next.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = next.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, value.parse().unwrap());
        headers
    }

    #[test]
    fn retry_after_in_seconds_and_as_a_date() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        let seconds = RetryAfter::from_headers(&headers("120"), now).unwrap();
        assert_eq!(seconds.wait, Some(Duration::from_secs(120)));
        assert_eq!(seconds.describe(), "120 s");
        let date = RetryAfter::from_headers(&headers("Wed, 21 Oct 2015 07:28:30 GMT"), now);
        assert_eq!(date.unwrap().wait, Some(Duration::from_secs(30)));
        let past = RetryAfter::from_headers(&headers("Wed, 21 Oct 2015 07:00:00 GMT"), now);
        assert_eq!(past.unwrap().wait, Some(Duration::ZERO));
        let junk = RetryAfter::from_headers(&headers("soon"), now).unwrap();
        assert_eq!(junk.wait, None);
        assert_eq!(junk.describe(), "soon");
        assert!(RetryAfter::from_headers(&HeaderMap::new(), now).is_none());
    }

    #[test]
    fn next_links_stay_on_the_registry() {
        assert_eq!(
            next_link(r#"</v2/_catalog?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/_catalog?last=b&n=2")
        );
        assert_eq!(
            next_link(r#"<https://other.example/v2/x/tags/list?last=1>; rel=next"#).as_deref(),
            Some("/v2/x/tags/list?last=1")
        );
        assert_eq!(next_link(r#"</v2/_catalog?last=b>; rel="prev""#), None);
        assert_eq!(next_link(r#"</elsewhere>; rel="next""#), None);
        assert_eq!(next_link("garbage"), None);
    }

    #[test]
    fn error_codes_from_a_registry_body() {
        let body = br#"{"errors":[{"code":"DENIED","message":"no"},{"code":"NAME_UNKNOWN"}]}"#;
        assert_eq!(error_codes(body), vec!["DENIED", "NAME_UNKNOWN"]);
        assert!(error_codes(b"<html>").is_empty());
    }
}
