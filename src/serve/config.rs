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
//!
//! [registry]
//! plain_http = false                   # plain HTTP for every registry (loopback always is)
//! ca_certs = ["/etc/stowaway/registry-ca.pem"]
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::Deserialize;

use crate::detect::Severity;

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
}

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
