//! The names of the structural decoders a rule can be bound to (`decoder = "…"`). Only the
//! names: rules name a decoder and the engine files matches under it, while the decoding
//! itself lives in [`super::decode`], which neither of them needs to know.

use std::str::FromStr;

use anyhow::bail;

/// A structural decoder a rule can be bound to (`decoder = "…"` in a rule file): the rule's
/// matches come from this code instead of a regex.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Decoder {
    /// Credentials in the `data:`/`stringData:` of a Kubernetes Secret manifest.
    KubernetesSecret,
    /// Client keys, tokens and passwords of a kubeconfig's users.
    Kubeconfig,
    /// `auths` of docker `config.json`, podman `auth.json`, legacy `.dockercfg`.
    DockerConfig,
    /// A PKCS#12 / PFX bundle holding a private key.
    Pkcs12,
    /// A JKS or JCEKS keystore holding a private or secret key.
    JavaKeystore,
    /// A PEM private key stored in the same file as a certificate.
    TlsKeyPair,
}

impl Decoder {
    pub const ALL: [Decoder; 6] = [
        Decoder::KubernetesSecret,
        Decoder::Kubeconfig,
        Decoder::DockerConfig,
        Decoder::Pkcs12,
        Decoder::JavaKeystore,
        Decoder::TlsKeyPair,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Decoder::KubernetesSecret => "kubernetes-secret",
            Decoder::Kubeconfig => "kubeconfig",
            Decoder::DockerConfig => "docker-config",
            Decoder::Pkcs12 => "pkcs12",
            Decoder::JavaKeystore => "java-keystore",
            Decoder::TlsKeyPair => "tls-key-pair",
        }
    }
}

impl FromStr for Decoder {
    type Err = anyhow::Error;

    fn from_str(name: &str) -> anyhow::Result<Self> {
        match Decoder::ALL.iter().find(|d| d.as_str() == name) {
            Some(&decoder) => Ok(decoder),
            None => bail!(
                "unknown decoder {name:?} (known: {})",
                Decoder::ALL.map(|d| d.as_str()).join(", ")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoder_names_round_trip() {
        for decoder in Decoder::ALL {
            assert_eq!(decoder.as_str().parse::<Decoder>().unwrap(), decoder);
        }
        assert!("nope".parse::<Decoder>().is_err());
    }
}
