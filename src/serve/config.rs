//! The server's policy file (`--config policy.toml`): what an admission denies, what it lets
//! through, and how long it may wait. Every key is optional; unknown keys are errors, so a typo
//! does not silently weaken the policy.
//!
//! ```toml
//! severity_threshold = "high"          # deny an image with a finding at or above this
//! on_unknown = "allow"                 # no result within the time budget: "allow" (warns) or "deny"
//! on_incomplete = "deny"               # a scan that left something unscanned (a limit reached,
//!                                      # an encrypted member) and found nothing to deny:
//!                                      # "deny" (the default) or "allow" (warns)
//! time_budget_ms = 3000                # how long one admission may wait for lookups and scans
//!                                      # (0: decide from the cache only, never wait)
//! exempt_namespaces = ["kube-system"]  # admissions in these namespaces are always allowed
//! exempt_images = ["registry.k8s.io/*"] # globs over the image as written and fully qualified
//! tag_cache_seconds = 10               # remember tag -> digest lookups this long (0: never)
//! api_token_file = "/etc/stowaway/token/token" # when set, POST /scan, POST /registry/events
//!                                      # and GET /reports need `Authorization: Bearer <token>`
//!                                      # (required unless `serve --no-auth`)
//! max_images_per_review = 100         # distinct images one review may name
//! max_lookups_per_review = 32          # tag -> digest registry lookups one review may start
//! on_review_limit = "deny"             # or "allow" (with a warning): a review beyond those
//! scan_timeout_seconds = 600           # a scan running longer fails; `on_unknown` decides
//! allowed_registries = ["registry.example.com", "*.corp.example", "10.0.0.5:5000"]
//!                                      # the only registries the server contacts (host or
//!                                      # host:port globs); unset: any registry at a public
//!                                      # address. A listed host may be at a private or
//!                                      # loopback address; other hosts (auth hosts, CDNs,
//!                                      # redirects) only at public ones
//!
//! [registry]
//! plain_http = false                   # plain HTTP for every registry (loopback always is)
//! ca_certs = ["/etc/stowaway/registry-ca.pem"]
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::Deserialize;

use crate::detect::Severity;
use crate::source::registry::NetworkPolicy;

/// What to do with an image that has no scan result within the time budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnUnknown {
    /// Admit it, with a warning in the AdmissionReview response.
    Allow,
    /// Refuse it until its scan is done.
    Deny,
}

/// What to do with an image whose scan found nothing to deny but left something unscanned (a
/// layer, or a file or archive member a limit, encryption or damage kept from the scan): a
/// secret there would be missed, so it is not a clean result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnIncomplete {
    /// Admit it, with a warning naming how much was not scanned.
    Allow,
    /// Refuse it (the default): a hostile image could otherwise hide a secret behind a limit.
    Deny,
}

/// The policy file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    severity_threshold: Option<String>,
    on_unknown: Option<OnUnknown>,
    on_incomplete: Option<OnIncomplete>,
    time_budget_ms: Option<u64>,
    #[serde(default)]
    exempt_namespaces: Vec<String>,
    #[serde(default)]
    exempt_images: Vec<String>,
    tag_cache_seconds: Option<u64>,
    api_token_file: Option<PathBuf>,
    allowed_registries: Option<Vec<String>>,
    max_images_per_review: Option<usize>,
    max_lookups_per_review: Option<usize>,
    on_review_limit: Option<OnUnknown>,
    scan_timeout_seconds: Option<u64>,
    #[serde(default)]
    registry: RegistrySection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistrySection {
    #[serde(default)]
    plain_http: bool,
    #[serde(default)]
    ca_certs: Vec<PathBuf>,
}

/// The policy in effect.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Findings at or above this deny an admission.
    pub severity_threshold: Severity,
    pub on_unknown: OnUnknown,
    /// What an image whose scan was incomplete gets, when nothing in it is denied anyway.
    pub on_incomplete: OnIncomplete,
    /// The longest an admission waits for tag lookups and scans before `on_unknown` decides.
    pub time_budget: Duration,
    pub exempt_namespaces: Vec<String>,
    exempt_images: GlobSet,
    /// How long a tag → digest lookup is reused.
    pub tag_cache: Duration,
    /// Plain HTTP for every registry.
    pub plain_http: bool,
    /// Extra CA certificates for registries.
    pub ca_certs: Vec<PathBuf>,
    /// The bearer token that guards the endpoints other than `/admission` and the probes.
    pub api_token: Option<String>,
    /// Which registries, at which addresses, the server may contact.
    pub network: Arc<NetworkPolicy>,
    /// The bounds on the work one admission review may cause.
    pub review_limits: ReviewLimits,
    /// The longest one background scan may run; one that runs longer fails.
    pub scan_timeout: Duration,
}

/// The bounds on the work one AdmissionReview may cause, and what decides a review that goes
/// beyond them.
#[derive(Debug, Clone, Copy)]
pub struct ReviewLimits {
    /// Distinct images a review may name; a review naming more is decided by `on_exceeded`
    /// without any being checked.
    pub max_images: usize,
    /// Registry lookups (tag → digest) one review may start; images beyond it are not looked
    /// up, and are decided by `on_exceeded`.
    pub max_lookups: usize,
    pub on_exceeded: OnUnknown,
}

/// Default of `max_images_per_review`: far more containers than a pod has in practice.
const MAX_IMAGES_PER_REVIEW: usize = 100;
/// Default of `max_lookups_per_review`.
const MAX_LOOKUPS_PER_REVIEW: usize = 32;
/// Default of `scan_timeout_seconds`.
const SCAN_TIMEOUT_SECONDS: u64 = 600;

impl Default for Policy {
    fn default() -> Self {
        Policy::from_file(PolicyFile::default(), Path::new("."))
            .expect("the default policy is valid")
    }
}

impl Policy {
    /// Reads a policy file.
    pub fn load(path: &Path) -> Result<Policy> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read policy file", path.display()))?;
        Policy::parse(&text, path.parent().unwrap_or(Path::new(".")))
            .with_context(|| format!("{}: invalid policy", path.display()))
    }

    /// Parses policy text; relative `ca_certs` paths are taken from `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Policy> {
        let file: PolicyFile = toml::from_str(text).map_err(|err| anyhow!("{err}"))?;
        Policy::from_file(file, base)
    }

    fn from_file(file: PolicyFile, base: &Path) -> Result<Policy> {
        let severity_threshold = match &file.severity_threshold {
            Some(text) => text
                .parse::<Severity>()
                .map_err(|err| anyhow!("severity_threshold: {err}"))?,
            None => Severity::Low,
        };
        let time_budget = Duration::from_millis(file.time_budget_ms.unwrap_or(3000));
        if time_budget > Duration::from_secs(29) {
            bail!("time_budget_ms: at most 29000 (Kubernetes gives a webhook 30 s at most)");
        }
        let mut globs = GlobSetBuilder::new();
        for pattern in &file.exempt_images {
            globs.add(
                Glob::new(pattern).map_err(|err| anyhow!("exempt_images: {pattern:?}: {err}"))?,
            );
        }
        let exempt_images = globs
            .build()
            .map_err(|err| anyhow!("exempt_images: {err}"))?;
        let resolve = |path: &PathBuf| {
            if path.is_absolute() {
                path.clone()
            } else {
                base.join(path)
            }
        };
        let ca_certs = file.registry.ca_certs.iter().map(resolve).collect();
        let api_token = match &file.api_token_file {
            Some(path) => {
                let path = resolve(path);
                let token = std::fs::read_to_string(&path)
                    .with_context(|| format!("api_token_file {}: cannot read", path.display()))?;
                let token = token.trim().to_string();
                if token.len() < 16 {
                    bail!(
                        "api_token_file {}: the token is shorter than 16 characters",
                        path.display()
                    );
                }
                Some(token)
            }
            None => None,
        };
        let review_limits = review_limits(&file)?;
        let scan_timeout = scan_timeout(&file)?;
        Ok(Policy {
            severity_threshold,
            on_unknown: file.on_unknown.unwrap_or(OnUnknown::Allow),
            on_incomplete: file.on_incomplete.unwrap_or(OnIncomplete::Deny),
            time_budget,
            exempt_namespaces: file.exempt_namespaces,
            exempt_images,
            tag_cache: Duration::from_secs(file.tag_cache_seconds.unwrap_or(10)),
            plain_http: file.registry.plain_http,
            ca_certs,
            api_token,
            network: Arc::new(NetworkPolicy::new(file.allowed_registries.as_deref())?),
            review_limits,
            scan_timeout,
        })
    }

    /// Is an admission in this namespace exempt?
    pub fn namespace_exempt(&self, namespace: &str) -> bool {
        self.exempt_namespaces.iter().any(|n| n == namespace)
    }

    /// Is this image exempt? Each name given (as written in the pod spec, fully qualified)
    /// is matched; `*` also matches `/`.
    pub fn image_exempt(&self, names: &[&str]) -> bool {
        names.iter().any(|name| self.exempt_images.is_match(name))
    }
}

fn review_limits(file: &PolicyFile) -> Result<ReviewLimits> {
    let limits = ReviewLimits {
        max_images: file.max_images_per_review.unwrap_or(MAX_IMAGES_PER_REVIEW),
        max_lookups: file
            .max_lookups_per_review
            .unwrap_or(MAX_LOOKUPS_PER_REVIEW),
        on_exceeded: file.on_review_limit.unwrap_or(OnUnknown::Deny),
    };
    if limits.max_images == 0 {
        bail!("max_images_per_review: at least 1");
    }
    Ok(limits)
}

fn scan_timeout(file: &PolicyFile) -> Result<Duration> {
    match file.scan_timeout_seconds.unwrap_or(SCAN_TIMEOUT_SECONDS) {
        0 => bail!("scan_timeout_seconds: at least 1"),
        seconds => Ok(Duration::from_secs(seconds)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_policy() {
        let policy = Policy::parse(
            r#"
severity_threshold = "high"
on_unknown = "deny"
on_incomplete = "allow"
time_budget_ms = 1500
exempt_namespaces = ["kube-system"]
exempt_images = ["registry.k8s.io/*", "docker.io/library/busybox:*"]
tag_cache_seconds = 0
[registry]
plain_http = true
ca_certs = ["ca.pem"]
"#,
            Path::new("/etc/stowaway"),
        )
        .unwrap();
        assert_eq!(policy.severity_threshold, Severity::High);
        assert_eq!(policy.on_unknown, OnUnknown::Deny);
        assert_eq!(policy.on_incomplete, OnIncomplete::Allow);
        assert_eq!(policy.time_budget, Duration::from_millis(1500));
        assert!(policy.namespace_exempt("kube-system"));
        assert!(!policy.namespace_exempt("default"));
        assert!(policy.image_exempt(&["registry.k8s.io/pause:3.9"]));
        assert!(policy.image_exempt(&["registry.k8s.io/sig/x/y:1"]));
        assert!(policy.image_exempt(&["busybox", "docker.io/library/busybox:1.36"]));
        assert!(!policy.image_exempt(&["nginx", "docker.io/library/nginx:latest"]));
        assert_eq!(policy.tag_cache, Duration::ZERO);
        assert!(policy.plain_http);
        assert_eq!(policy.ca_certs, vec![PathBuf::from("/etc/stowaway/ca.pem")]);
    }

    #[test]
    fn defaults_and_errors() {
        let policy = Policy::default();
        assert_eq!(policy.severity_threshold, Severity::Low);
        assert_eq!(policy.on_unknown, OnUnknown::Allow);
        assert_eq!(policy.on_incomplete, OnIncomplete::Deny);
        assert_eq!(policy.time_budget, Duration::from_secs(3));
        let typo = Policy::parse("on_unknwn = \"deny\"", Path::new(".")).unwrap_err();
        assert!(format!("{typo:#}").contains("on_unknwn"), "{typo:#}");
        assert!(Policy::parse("on_unknown = \"maybe\"", Path::new(".")).is_err());
        assert!(Policy::parse("on_incomplete = \"warn\"", Path::new(".")).is_err());
        assert!(Policy::parse("severity_threshold = \"huge\"", Path::new(".")).is_err());
        assert!(Policy::parse("time_budget_ms = 60000", Path::new(".")).is_err());
        assert!(Policy::parse("exempt_images = [\"a[\"]", Path::new(".")).is_err());
    }

    #[test]
    fn review_limits_and_the_scan_timeout() {
        let policy = Policy::default();
        assert_eq!(policy.review_limits.max_images, 100);
        assert_eq!(policy.review_limits.max_lookups, 32);
        assert_eq!(policy.review_limits.on_exceeded, OnUnknown::Deny);
        assert_eq!(policy.scan_timeout, Duration::from_secs(600));
        let policy = Policy::parse(
            "max_images_per_review = 5\nmax_lookups_per_review = 0\non_review_limit = \"allow\"\nscan_timeout_seconds = 30\n",
            Path::new("."),
        )
        .unwrap();
        assert_eq!(policy.review_limits.max_images, 5);
        assert_eq!(policy.review_limits.max_lookups, 0);
        assert_eq!(policy.review_limits.on_exceeded, OnUnknown::Allow);
        assert_eq!(policy.scan_timeout, Duration::from_secs(30));
        for bad in [
            "max_images_per_review = 0",
            "scan_timeout_seconds = 0",
            "on_review_limit = \"maybe\"",
        ] {
            assert!(Policy::parse(bad, Path::new(".")).is_err(), "{bad}");
        }
    }

    #[test]
    fn allowed_registries_limit_what_the_server_contacts() {
        let policy = Policy::parse(
            "allowed_registries = [\"registry.example.com\", \"127.0.0.1:*\"]",
            Path::new("."),
        )
        .unwrap();
        assert!(
            policy
                .network
                .refusal("registry.example.com", "registry.example.com")
                .is_none()
        );
        assert!(
            policy
                .network
                .refusal("127.0.0.1:5000", "127.0.0.1:5000")
                .is_none()
        );
        assert!(policy.network.refusal("quay.io", "quay.io").is_some());
        let open = Policy::default();
        assert!(open.network.refusal("quay.io", "quay.io").is_none());
        assert!(
            open.network
                .refusal("127.0.0.1:5000", "127.0.0.1:5000")
                .is_some()
        );
        assert!(Policy::parse("allowed_registries = [\"a[\"]", Path::new(".")).is_err());
    }

    #[test]
    fn reads_the_api_token_relative_to_the_policy() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "0123456789abcdef-token\n").unwrap();
        let policy = Policy::parse("api_token_file = \"token\"", dir.path()).unwrap();
        assert_eq!(policy.api_token.as_deref(), Some("0123456789abcdef-token"));
        std::fs::write(dir.path().join("short"), "abc").unwrap();
        assert!(Policy::parse("api_token_file = \"short\"", dir.path()).is_err());
        assert!(Policy::parse("api_token_file = \"missing\"", dir.path()).is_err());
    }
}
