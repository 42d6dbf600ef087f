//! Image names: Docker Hub's aliases, and names normalised the way Docker reads them.
//!
//! The one place that knows that `alpine`, `docker.io/library/alpine:latest` and
//! `registry.hub.docker.com/library/alpine` are the same image. Local sources use it to match
//! a wanted tag against the names an archive records, the registry source to name and address
//! repositories, credential lookup to match auth-file keys, and the server's tag resolver to
//! address requests.

use oci_client::Reference;

/// Docker Hub as users name it, and as stowaway reports and looks up credentials for it.
pub const DOCKER_HUB: &str = "docker.io";

/// Every host name that stands for Docker Hub.
pub const DOCKER_HUB_ALIASES: &[&str] = &[
    DOCKER_HUB,
    "index.docker.io",
    "registry-1.docker.io",
    "registry.hub.docker.com",
];

/// Where Docker Hub's registry API answers (oci-client would send requests to
/// `index.docker.io`, an older alias).
pub const DOCKER_HUB_REGISTRY: &str = "registry-1.docker.io";

/// The key Docker uses for the Hub in auth files and when asking credential helpers.
pub const DOCKER_HUB_LEGACY_INDEX: &str = "https://index.docker.io/v1/";

/// Is `host` one of Docker Hub's names? Hosts are compared as written (callers lowercase).
pub fn is_docker_hub(host: &str) -> bool {
    DOCKER_HUB_ALIASES.contains(&host)
}

/// `host` with Docker Hub's aliases folded into [`DOCKER_HUB`]; other hosts unchanged.
pub fn canonical_host(host: &str) -> &str {
    if is_docker_hub(host) {
        DOCKER_HUB
    } else {
        host
    }
}

/// A Docker Hub repository path with the implied namespace: single names live under
/// `library/` (`alpine` → `library/alpine`, `alpine:3` → `library/alpine:3`).
fn hub_repository(path: &str) -> String {
    if path.contains('/') {
        path.to_string()
    } else {
        format!("library/{path}")
    }
}

/// Normalises an image name the way Docker does, for comparing names:
/// `alpine` → `docker.io/library/alpine:latest`, `index.docker.io/x/y` → `docker.io/x/y:latest`.
pub fn normalise_name(name: &str) -> String {
    let (first, rest) = name.split_once('/').unwrap_or(("", name));
    let has_domain =
        !first.is_empty() && (first.contains('.') || first.contains(':') || first == "localhost");
    let (domain, path) = if has_domain {
        (canonical_host(first), rest)
    } else {
        (DOCKER_HUB, name)
    };
    let path = if domain == DOCKER_HUB {
        hub_repository(path)
    } else {
        path.to_string()
    };
    let last = path.rsplit('/').next().unwrap_or_default();
    let tagged = last.contains(':') || path.contains('@');
    if tagged {
        format!("{domain}/{path}")
    } else {
        format!("{domain}/{path}:latest")
    }
}

/// A tag given by the user matches a ref-name annotation (`1.0`) or a full image name
/// (`docker.io/library/app:1.0`, also written `app:1.0`).
pub fn name_matches(name: &str, wanted: &str) -> bool {
    name == wanted || normalise_name(name) == normalise_name(wanted)
}

/// `reference` moved to `registry` and `repository`, keeping its tag and digest.
fn with_registry(reference: &Reference, registry: &str, repository: String) -> Reference {
    let registry = registry.to_string();
    match (reference.tag(), reference.digest()) {
        (Some(tag), Some(digest)) => Reference::with_tag_and_digest(
            registry,
            repository,
            tag.to_string(),
            digest.to_string(),
        ),
        (None, Some(digest)) => Reference::with_digest(registry, repository, digest.to_string()),
        (tag, None) => {
            Reference::with_tag(registry, repository, tag.unwrap_or("latest").to_string())
        }
    }
}

/// `reference` as users name it: any Docker Hub alias becomes `docker.io`, with `library/`
/// for single names. Credentials are looked up with this name (the Hub's key in auth files is
/// `https://index.docker.io/v1/`, which matches `docker.io`).
pub fn hub_name(reference: &Reference) -> Reference {
    if !is_docker_hub(reference.registry()) {
        return reference.clone();
    }
    with_registry(
        reference,
        DOCKER_HUB,
        hub_repository(reference.repository()),
    )
}

/// `reference` as requests address it: Docker Hub's at `registry-1.docker.io`.
pub fn wire_reference(reference: &Reference) -> Reference {
    let name = hub_name(reference);
    if name.registry() != DOCKER_HUB {
        return name;
    }
    with_registry(&name, DOCKER_HUB_REGISTRY, name.repository().to_string())
}

/// Names an image source holds (tags, platforms), for an error that says what to ask for
/// instead: the first [`NAMES_QUOTED`] and a count of the rest (an archive or layout may list
/// any number); `none` when there are none.
pub fn held(names: &[&str], none: &str) -> String {
    let mut names: Vec<&str> = names.to_vec();
    names.sort_unstable();
    names.dedup();
    if names.is_empty() {
        return none.to_string();
    }
    let mut text = names[..names.len().min(NAMES_QUOTED)].join(", ");
    if names.len() > NAMES_QUOTED {
        text.push_str(&format!(" and {} more", names.len() - NAMES_QUOTED));
    }
    text
}

/// How many of a source's tags or platforms an error names.
const NAMES_QUOTED: usize = 10;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_docker_names() {
        assert_eq!(normalise_name("alpine"), "docker.io/library/alpine:latest");
        assert_eq!(
            normalise_name("alpine:3.20"),
            "docker.io/library/alpine:3.20"
        );
        assert_eq!(
            normalise_name("index.docker.io/foo/bar"),
            "docker.io/foo/bar:latest"
        );
        assert_eq!(
            normalise_name("localhost:5000/app:1"),
            "localhost:5000/app:1"
        );
        assert_eq!(
            normalise_name("example.com/team/app"),
            "example.com/team/app:latest"
        );
    }

    #[test]
    fn every_hub_alias_names_the_same_image() {
        for alias in DOCKER_HUB_ALIASES {
            assert_eq!(
                normalise_name(&format!("{alias}/alpine:3")),
                "docker.io/library/alpine:3",
                "{alias}"
            );
            assert!(name_matches(&format!("{alias}/team/app:1"), "team/app:1"));
            assert_eq!(
                hub_name(&format!("{alias}/alpine:3").parse().unwrap()).whole(),
                "docker.io/library/alpine:3"
            );
        }
    }

    #[test]
    fn docker_hub_is_addressed_at_registry_1_and_named_docker_io() {
        let digest = format!("sha256:{}", "a".repeat(64));
        for (text, name, wire) in [
            (
                "alpine:3.20",
                "docker.io/library/alpine:3.20",
                "registry-1.docker.io/library/alpine:3.20",
            ),
            (
                "docker.io/alpine",
                "docker.io/library/alpine:latest",
                "registry-1.docker.io/library/alpine:latest",
            ),
            (
                "index.docker.io/library/alpine:3",
                "docker.io/library/alpine:3",
                "registry-1.docker.io/library/alpine:3",
            ),
            (
                "registry-1.docker.io/alpine:3",
                "docker.io/library/alpine:3",
                "registry-1.docker.io/library/alpine:3",
            ),
            (
                "registry.hub.docker.com/team/app:1",
                "docker.io/team/app:1",
                "registry-1.docker.io/team/app:1",
            ),
            (
                &format!("team/app@{digest}"),
                &format!("docker.io/team/app@{digest}"),
                &format!("registry-1.docker.io/team/app@{digest}"),
            ),
            (
                "127.0.0.1:5000/app:1",
                "127.0.0.1:5000/app:1",
                "127.0.0.1:5000/app:1",
            ),
            ("quay.io/x/y:2", "quay.io/x/y:2", "quay.io/x/y:2"),
        ] {
            let reference: Reference = text.parse().unwrap();
            assert_eq!(hub_name(&reference).whole(), name, "{text}");
            let on_wire = wire_reference(&reference);
            assert_eq!(on_wire.whole(), wire, "{text}");
            // oci-client must not re-map it (it sends docker.io to index.docker.io).
            let host = on_wire.whole().split('/').next().unwrap().to_string();
            assert_eq!(on_wire.resolve_registry(), host, "{text}");
        }
    }
}
