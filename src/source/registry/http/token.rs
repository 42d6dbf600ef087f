//! The bearer-token exchange for a server, made with the server's own HTTP client: oci-client
//! builds a client of its own (its resolver and redirects out of reach), so the realm a
//! registry names would be fetched wherever it points. Here the realm is an ordinary request:
//! its IP literal is judged before it is sent, its name when it resolves, its redirects as
//! they come. Also the exchange for a scope oci-client cannot ask for (`registry:catalog:*`,
//! which `sweep` lists the catalog with), with or without a server's rule.

use oci_client::secrets::RegistryAuth;
use reqwest::header::WWW_AUTHENTICATE;
use reqwest::{StatusCode, Url};

use super::super::guard::NetworkPolicy;
use super::{Failure, read_limited, request_failure};

/// Token responses are small JSON objects.
const MAX_TOKEN_RESPONSE: usize = 1 << 20;

/// The registry the token is for, and how to reach it.
pub struct Registry<'a> {
    pub http: &'a reqwest::Client,
    /// A server's network policy for the realm; `None` for the CLI.
    pub network: Option<&'a NetworkPolicy>,
    pub scheme: &'a str,
    /// `host[:port]` requests go to.
    pub host: &'a str,
    /// The registry as messages name it.
    pub name: &'a str,
}

/// A token for `scope` (`repository:NAME:pull`, `registry:catalog:*`), when the registry asks
/// for one (a `Bearer` challenge on `/v2/`); `None` when it takes basic credentials or nothing
/// on each request.
pub async fn bearer_token(
    registry: &Registry<'_>,
    scope: &str,
    auth: &RegistryAuth,
) -> Result<Option<String>, Failure> {
    let name = registry.name;
    let ping = format!("{}://{}/v2/", registry.scheme, registry.host);
    let response = registry
        .http
        .get(&ping)
        .send()
        .await
        .map_err(|err| request_failure(err, name))?;
    if response.status() != StatusCode::UNAUTHORIZED {
        return Ok(None);
    }
    let Some(challenge) = response
        .headers()
        .get(WWW_AUTHENTICATE)
        .and_then(|value| value.to_str().ok())
        .and_then(bearer_challenge)
    else {
        return Ok(None);
    };
    let mut realm = Url::parse(&challenge.realm)
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https"))
        .ok_or_else(|| {
            Failure::new(
                format!("{name} sent a bearer challenge whose realm is not an HTTP URL"),
                false,
            )
        })?;
    if let Some(network) = registry.network {
        network.check_url(&realm).map_err(|refusal| {
            Failure::new(format!("token request for {name}: {refusal}"), false)
        })?;
    }
    {
        let mut query = realm.query_pairs_mut();
        if let Some(service) = &challenge.service {
            query.append_pair("service", service);
        }
        query.append_pair("scope", scope);
    }
    let mut request = registry.http.get(realm);
    if let RegistryAuth::Basic(user, password) = auth {
        request = request.basic_auth(user, Some(password));
    }
    let response = request
        .send()
        .await
        .map_err(|err| request_failure(err, name))?;
    let status = response.status();
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        return Err(Failure::new(
            format!("authentication failed for {name}"),
            false,
        ));
    }
    if !status.is_success() {
        return Err(Failure::new(
            format!(
                "{name} answered HTTP {} to the token request",
                status.as_u16()
            ),
            status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS,
        ));
    }
    let body = read_limited(response, MAX_TOKEN_RESPONSE, name, "token response").await?;
    token_of(&body).map(Some).ok_or_else(|| {
        // What the service sent instead is not repeated: it is whatever that host serves.
        Failure::new(
            format!("the token service of {name} answered without a token"),
            false,
        )
    })
}

/// `token`, else `access_token` (OAuth2's name), from a token response.
fn token_of(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    ["token", "access_token"]
        .iter()
        .filter_map(|key| value.get(*key)?.as_str())
        .find(|token| !token.is_empty())
        .map(str::to_string)
}

/// The parameters of a `Bearer` challenge that the token request uses.
#[derive(Debug, PartialEq, Eq)]
struct Challenge {
    realm: String,
    service: Option<String>,
}

/// Reads `Bearer realm="…",service="…",scope="…"` (quoted or bare values, `\"` escapes);
/// `None` for other schemes or without a realm.
fn bearer_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim_start();
    let (scheme, mut rest) = header.split_at(header.find(' ').unwrap_or(header.len()));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let (mut realm, mut service) = (None, None);
    loop {
        rest = rest.trim_start_matches([' ', ',']);
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let (value, remaining) = parameter_value(after.trim_start());
        match key.trim().to_ascii_lowercase().as_str() {
            "realm" => realm = Some(value),
            "service" => service = Some(value),
            _ => {}
        }
        rest = remaining;
    }
    Some(Challenge {
        realm: realm?,
        service,
    })
}

/// A quoted string or a token up to the next comma; the rest after it.
fn parameter_value(text: &str) -> (String, &str) {
    let Some(quoted) = text.strip_prefix('"') else {
        let end = text.find(',').unwrap_or(text.len());
        return (text[..end].trim().to_string(), &text[end..]);
    };
    let mut value = String::new();
    let mut chars = quoted.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return (value, &quoted[at + 1..]),
            '\\' => {
                if let Some((_, escaped)) = chars.next() {
                    value.push(escaped);
                }
            }
            _ => value.push(c),
        }
    }
    (value, "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bearer_challenges() {
        assert_eq!(
            bearer_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#
            ),
            Some(Challenge {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
            })
        );
        assert_eq!(
            bearer_challenge(r#"bearer service=reg, realm="http://a/t\"x""#),
            Some(Challenge {
                realm: "http://a/t\"x".into(),
                service: Some("reg".into()),
            })
        );
        assert_eq!(bearer_challenge(r#"Basic realm="registry""#), None);
        assert_eq!(bearer_challenge(r#"Bearer service="x""#), None);
    }

    #[test]
    fn reads_tokens_in_both_spellings() {
        assert_eq!(token_of(br#"{"token": "t1"}"#).as_deref(), Some("t1"));
        assert_eq!(
            token_of(br#"{"token": "", "access_token": "t2"}"#).as_deref(),
            Some("t2")
        );
        assert_eq!(token_of(b"<html>"), None);
    }
}
