//! `--platform os/arch[/variant]`: which image of a multi-platform index to scan.

use std::fmt;
use std::str::FromStr;

use anyhow::{Result, bail};
use oci_spec::image::Descriptor;

/// A platform selector such as `linux/arm64/v8`. A selector without a variant matches every
/// variant of that architecture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformFilter {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl PlatformFilter {
    /// The platform of this machine, as registries name it, falling back to linux/amd64.
    pub fn host() -> PlatformFilter {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "arm" => "arm",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            _ => "amd64",
        };
        PlatformFilter {
            os: "linux".to_string(),
            architecture: architecture.to_string(),
            variant: None,
        }
    }

    /// Does an image of `platform` pass `filter`? Without a filter every image does, and so
    /// does an image whose platform is not known.
    pub fn admits(filter: Option<&PlatformFilter>, platform: Option<&str>) -> bool {
        match (filter, platform) {
            (Some(filter), Some(platform)) => filter.matches(platform),
            _ => true,
        }
    }

    /// Does `platform` (`os/arch[/variant]`) satisfy this selector?
    pub fn matches(&self, platform: &str) -> bool {
        let mut parts = platform.split('/');
        let os = parts.next().unwrap_or_default();
        let architecture = parts.next().unwrap_or_default();
        let variant = parts.next();
        os == self.os
            && architecture == self.architecture
            && match (&self.variant, variant) {
                (None, _) => true,
                (Some(wanted), Some(variant)) => wanted == variant,
                // arm64 images usually omit the implied v8.
                (Some(wanted), None) => wanted == "v8" && architecture == "arm64",
            }
    }
}

/// The platform an index descriptor names, `os/arch[/variant]`.
pub fn of_descriptor(descriptor: &Descriptor) -> Option<String> {
    descriptor.platform().as_ref().map(|p| {
        let mut text = format!("{}/{}", p.os(), p.architecture());
        if let Some(variant) = p.variant() {
            text = format!("{text}/{variant}");
        }
        text
    })
}

/// Whether an index descriptor points at an attestation rather than at a runnable image:
/// BuildKit annotates its provenance and SBOM manifests so, and gives them the platform
/// `unknown/unknown`.
pub fn is_attestation(descriptor: &Descriptor) -> bool {
    let annotated = descriptor
        .annotations()
        .as_ref()
        .is_some_and(|annotations| {
            annotations
                .get("vnd.docker.reference.type")
                .is_some_and(|kind| kind == "attestation-manifest")
        });
    annotated || of_descriptor(descriptor).as_deref() == Some("unknown/unknown")
}

impl FromStr for PlatformFilter {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<Self> {
        let parts: Vec<&str> = text.split('/').collect();
        if !(2..=3).contains(&parts.len()) || parts.iter().any(|part| part.is_empty()) {
            bail!("platform {text:?} is not of the form os/arch[/variant]");
        }
        Ok(PlatformFilter {
            os: parts[0].to_string(),
            architecture: parts[1].to_string(),
            variant: parts.get(2).map(|v| v.to_string()),
        })
    }
}

impl fmt::Display for PlatformFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_matches() {
        let filter: PlatformFilter = "linux/arm64".parse().unwrap();
        assert!(filter.matches("linux/arm64/v8"));
        assert!(filter.matches("linux/arm64"));
        assert!(!filter.matches("linux/amd64"));
        let filter: PlatformFilter = "linux/arm/v7".parse().unwrap();
        assert!(filter.matches("linux/arm/v7"));
        assert!(!filter.matches("linux/arm/v6"));
        assert!("linux".parse::<PlatformFilter>().is_err());
        assert!("linux//".parse::<PlatformFilter>().is_err());
    }

    #[test]
    fn an_unknown_platform_or_no_filter_admits() {
        let filter: PlatformFilter = "linux/arm64".parse().unwrap();
        assert!(PlatformFilter::admits(Some(&filter), None));
        assert!(PlatformFilter::admits(None, Some("linux/amd64")));
        assert!(!PlatformFilter::admits(Some(&filter), Some("linux/amd64")));
    }
}
