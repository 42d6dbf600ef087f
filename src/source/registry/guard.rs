//! Which registries a server may contact, and at which addresses.
//!
//! A server pulls what its callers name, so a name must not become a way into the network it
//! runs in (cloud metadata at 169.254.169.254, a database on 10.0.0.5, the server's own
//! loopback). Every connection is judged by the address it goes to, once resolved, not by the
//! host name: registries hand tokens and blobs over to other hosts (an auth host, a CDN), and a
//! public name can resolve to a private address. Names go through [`GuardedResolver`]; IP
//! literals skip DNS, so [`NetworkPolicy::check_url`] judges them where a URL is about to be
//! requested (the registry, the bearer realm, each redirect).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use anyhow::{Result, anyhow};
use globset::{Glob, GlobSet, GlobSetBuilder};
use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Redirects followed per request (as many as reqwest's default).
const MAX_REDIRECTS: usize = 10;

/// The registries a server may contact (`allowed_registries`), and the address rule.
#[derive(Debug)]
pub struct NetworkPolicy {
    /// The patterns as written, matched against `host[:port]` and against the host alone;
    /// `None`: any registry.
    registries: Option<GlobSet>,
    /// The host part of each pattern: a host listed here may resolve to any address.
    hosts: GlobSet,
    /// The patterns, for messages.
    listed: Vec<String>,
}

impl NetworkPolicy {
    /// A policy from `allowed_registries` globs (`registry.example.com`, `*.corp.example`,
    /// `10.0.0.5:5000`); `None` allows any registry at a public address.
    pub fn new(patterns: Option<&[String]>) -> Result<NetworkPolicy> {
        let (mut registries, mut hosts) = (GlobSetBuilder::new(), GlobSetBuilder::new());
        for pattern in patterns.unwrap_or_default() {
            let glob = |text: &str| {
                // `[::1]:5000`: the brackets of an IPv6 address are literal, not a class.
                let text = match text.strip_prefix('[') {
                    Some(rest) => format!("[[]{}", rest.replacen(']', "[]]", 1)),
                    None => text.to_string(),
                };
                Glob::new(&text.to_ascii_lowercase())
                    .map_err(|err| anyhow!("allowed_registries: {pattern:?}: {err}"))
            };
            registries.add(glob(pattern)?);
            hosts.add(glob(host_part(pattern))?);
        }
        let built = |builder: GlobSetBuilder| {
            builder
                .build()
                .map_err(|err| anyhow!("allowed_registries: {err}"))
        };
        Ok(NetworkPolicy {
            registries: match patterns {
                Some(_) => Some(built(registries)?),
                None => None,
            },
            hosts: built(hosts)?,
            listed: patterns.map(<[String]>::to_vec).unwrap_or_default(),
        })
    }

    /// May the server contact `registry` (`host[:port]`, as an image names it)? Its addresses
    /// are judged again when it connects.
    pub fn registry_allowed(&self, registry: &str) -> bool {
        let registry = registry.to_ascii_lowercase();
        match &self.registries {
            None => true,
            Some(set) => set.is_match(&registry) || set.is_match(host_part(&registry)),
        }
    }

    /// Why the registry `name` (requests going to `host`, which differs for Docker Hub) may
    /// not be contacted, if it may not: not listed, or an IP literal the address rule refuses.
    pub fn refusal(&self, name: &str, host: &str) -> Option<String> {
        if !self.registry_allowed(name) && !self.registry_allowed(host) {
            return Some(format!(
                "registry {name} is not in allowed_registries ({})",
                self.listed.join(", ")
            ));
        }
        let url = Url::parse(&format!("https://{host}/")).ok()?;
        self.check_url(&url).err()
    }

    /// Is `host` named by an `allowed_registries` pattern (so any address it has is allowed)?
    fn host_listed(&self, host: &str) -> bool {
        self.hosts.is_match(host.to_ascii_lowercase())
    }

    /// May a connection for `host` go to `ip`?
    fn address_allowed(&self, host: &str, ip: IpAddr) -> bool {
        is_public(ip) || self.host_listed(host)
    }

    /// Refuses a URL whose host is an IP literal the address rule does not allow (names are
    /// judged by [`GuardedResolver`] when they resolve).
    pub fn check_url(&self, url: &Url) -> std::result::Result<(), String> {
        let Some(host) = url.host_str() else {
            return Err("a URL without a host".into());
        };
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        let Ok(ip) = literal.parse::<IpAddr>() else {
            return Ok(());
        };
        if self.address_allowed(host, ip) {
            return Ok(());
        }
        Err(refused_address(host))
    }

    /// The redirect policy: every hop is judged like the first request.
    pub fn redirect_policy(self: &Arc<Self>) -> reqwest::redirect::Policy {
        let policy = Arc::clone(self);
        reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
            }
            match policy.check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(refusal) => attempt.error(format!("redirect refused: {refusal}")),
            }
        })
    }
}

/// The message for an address the server may not reach. The address itself is left out: it
/// says nothing the operator needs, and a resolved private address is the caller's to learn.
fn refused_address(host: &str) -> String {
    format!(
        "{host} is at a loopback, private, link-local or otherwise non-public address; the server contacts those only for registries listed in allowed_registries"
    )
}

/// `host` of `host:port` (`[v6]` of `[v6]:port`); a pattern's `:*` port counts as a port.
fn host_part(registry: &str) -> &str {
    match registry.rsplit_once(':') {
        Some((host, port))
            if !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit() || b == b'*')
                && (!host.contains(':') || host.ends_with(']')) =>
        {
            host
        }
        _ => registry,
    }
}

/// Whether an address is on the public internet: not loopback, private (RFC 1918, unique
/// local), link-local (where clouds serve instance metadata), carrier-grade NAT (some clouds'
/// metadata too), unspecified, multicast, broadcast or reserved. An IPv6 address that carries
/// an IPv4 one (mapped, compatible, NAT64, 6to4) is judged by the IPv4 address it leads to.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => match embedded_v4(ip) {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(ip),
        },
    }
}

/// The IPv4 address an IPv6 address reaches through: `::ffff:a.b.c.d` (mapped),
/// `::a.b.c.d` (compatible), `64:ff9b::a.b.c.d` and `64:ff9b:1::/48` (NAT64), `2002:AABB:CCDD::`
/// (6to4).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let segments = ip.segments();
    let octets = ip.octets();
    let last = || Ipv4Addr::new(octets[12], octets[13], octets[14], octets[15]);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    if segments[..6] == [0; 6] && !ip.is_loopback() && !ip.is_unspecified() {
        return Some(last());
    }
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || segments[..3] == [0x64, 0xff9b, 1] {
        return Some(last());
    }
    if segments[0] == 0x2002 {
        return Some(Ipv4Addr::new(octets[2], octets[3], octets[4], octets[5]));
    }
    None
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let shared = a == 100 && (64..128).contains(&b);
    let protocol_assignments = a == 192 && b == 0 && c == 0;
    let benchmarking = a == 198 && (18..20).contains(&b);
    let reserved = a >= 240;
    !(ip.is_loopback()
        || protocol_assignments
        || benchmarking
        || reserved
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        || a == 0
        || shared)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    let link_local = first & 0xffc0 == 0xfe80;
    let unique_local = first & 0xfe00 == 0xfc00;
    let site_local = first & 0xffc0 == 0xfec0;
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || link_local
        || unique_local
        || site_local)
}

/// DNS for a server's registry client: the system resolver, with the addresses the policy
/// does not allow taken out (a name that has only those fails to connect).
pub struct GuardedResolver {
    pub policy: Arc<NetworkPolicy>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.policy);
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|addr| policy.address_allowed(&host, addr.ip()))
                .collect();
            if allowed.is_empty() {
                let refusal: Box<dyn std::error::Error + Send + Sync> =
                    refused_address(&host).into();
                return Err(refusal);
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_and_non_public_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.100.100.200",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::169.254.169.254",
            "64:ff9b:1::a00:1",
            "2002:a9fe:a9fe::1",
            "fec0::1",
            "192.0.0.170",
            "198.18.0.1",
            "240.0.0.1",
            "0.1.2.3",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "52.1.2.3",
            "2600:1f18::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn listed_registries_and_their_addresses() {
        let listed = ["registry.corp:5000".to_string(), "127.0.0.1:*".to_string()];
        let policy = NetworkPolicy::new(Some(&listed)).unwrap();
        assert!(policy.registry_allowed("registry.corp:5000"));
        assert!(!policy.registry_allowed("registry.corp:6000"));
        assert!(policy.registry_allowed("127.0.0.1:45001"));
        assert!(!policy.registry_allowed("docker.io"));
        assert!(
            policy
                .refusal("127.0.0.1:45001", "127.0.0.1:45001")
                .is_none()
        );
        assert!(
            policy
                .refusal("quay.io", "quay.io")
                .unwrap()
                .contains("allowed_registries")
        );
        // A listed host may resolve anywhere; others only to public addresses.
        assert!(policy.address_allowed("registry.corp", "10.0.0.5".parse().unwrap()));
        assert!(!policy.address_allowed("cdn.corp", "10.0.0.5".parse().unwrap()));
        assert!(policy.address_allowed("cdn.corp", "52.1.2.3".parse().unwrap()));
        let url = |text: &str| Url::parse(text).unwrap();
        assert!(policy.check_url(&url("http://127.0.0.1:9/token")).is_ok());
        assert!(policy.check_url(&url("http://169.254.169.254/")).is_err());
        assert!(policy.check_url(&url("http://[::1]:80/")).is_err());
        assert!(policy.check_url(&url("https://auth.example.com/")).is_ok());
    }

    #[test]
    fn without_a_list_any_registry_at_a_public_address() {
        let policy = NetworkPolicy::new(None).unwrap();
        assert!(policy.registry_allowed("quay.io"));
        assert!(policy.refusal("quay.io", "quay.io").is_none());
        let refusal = policy
            .refusal("127.0.0.1:45001", "127.0.0.1:45001")
            .unwrap();
        assert!(refusal.contains("non-public"), "{refusal}");
        assert!(policy.refusal("[::1]:5000", "[::1]:5000").is_some());
        let v6 = NetworkPolicy::new(Some(&["[::1]:5000".to_string()])).unwrap();
        assert!(v6.refusal("[::1]:5000", "[::1]:5000").is_none());
        assert!(
            policy
                .refusal("169.254.169.254", "169.254.169.254")
                .is_some()
        );
        assert_eq!(host_part("[::1]:5000"), "[::1]");
        assert_eq!(host_part("registry.corp:*"), "registry.corp");
        assert_eq!(host_part("registry.corp"), "registry.corp");
    }
}
