//! Where a leaked secret belongs instead. Kubernetes Secrets exist so that nothing of this kind
//! is baked into images; the advice names the Secret type that fits and how to wire it.

use super::field::ConfigField;
use super::model::{LocationKind, Remediation};
use crate::layer::Status;

/// Advice for a secret of `kubernetes_secret_type` found at a location of `kind`.
pub fn remediation(
    kubernetes_secret_type: &str,
    kind: LocationKind,
    field: Option<&ConfigField>,
    status: Status,
) -> Remediation {
    let secret = format!("a Kubernetes Secret of type {kubernetes_secret_type}");
    let instead = match kind {
        LocationKind::History if matches!(field, Some(ConfigField::BuildArg(_))) => {
            "Build arguments are recorded in the image history. Pass build-time credentials \
             as a BuildKit secret mount (RUN --mount=type=secret,id=…) instead of ARG."
                .into()
        }
        LocationKind::History => format!(
            "Build steps are recorded in the image history. Use a BuildKit secret mount \
             (RUN --mount=type=secret,id=…) at build time, and {secret} (or an external store \
             through the Secrets Store CSI driver) at run time."
        )
        .into(),
        LocationKind::Config => format!(
            "Do not set credentials with ENV or LABEL. Inject them at run time from {secret} \
             (env valueFrom.secretKeyRef), or an external store through the Secrets Store CSI driver."
        )
        .into(),
        LocationKind::LayerFile => {
            let mount = match kubernetes_secret_type {
                "kubernetes.io/tls" => "mounted as a volume (tls.crt / tls.key)",
                "kubernetes.io/ssh-auth" => "mounted as a volume (ssh-privatekey)",
                "kubernetes.io/dockerconfigjson" | "kubernetes.io/dockercfg" => {
                    "referenced as imagePullSecrets or mounted for the tool that needs it"
                }
                "kubernetes.io/basic-auth" => "mounted as a volume or env (username / password)",
                _ => "mounted as a volume or exposed as env",
            };
            let still = if status == Status::Present {
                ""
            } else {
                " Deleting or overwriting the file in a later layer does not remove it: the \
                 layer that added it still ships it."
            };
            format!(
                "Keep the file out of the image (.dockerignore, no COPY) and supply it at run \
                 time from {secret}, {mount}; for build-time use, a BuildKit secret mount.{still}"
            )
            .into()
        }
    };
    Remediation {
        kubernetes_secret_type: kubernetes_secret_type.into(),
        instead,
        rotate: "Rotate this credential: anyone who can pull the image can read it.".into(),
    }
}

/// Advice for key material that public packages ship (`published_in` says where): nothing to
/// rotate, since it was never secret; only never to trust it.
pub fn published_remediation(advice: Remediation, published_in: &str) -> Remediation {
    Remediation {
        instead: format!(
            "Published in {published_in}: public test or example material, not a secret of \
             this image. Nothing to rotate; never use it to protect anything real."
        )
        .into(),
        rotate: "Nothing to rotate: this key is public.".into(),
        ..advice
    }
}

/// The `kind` detail the password-hash validator gives every finding it checks.
pub const PASSWORD_HASH_KIND: &str = crate::detect::password_hash::PASSWORD_HASH_KIND;

/// Whether a finding's details mark it as a password hash (see [`PASSWORD_HASH_KIND`]).
pub fn is_password_hash<'a>(mut details: impl Iterator<Item = (&'a str, &'a str)>) -> bool {
    details.any(|(key, value)| key == "kind" && value == PASSWORD_HASH_KIND)
}

/// Advice for a password hash: it is no key to replace but a password that can be cracked
/// offline, so the password changes and the hash leaves the image.
pub fn password_hash_remediation(advice: Remediation) -> Remediation {
    Remediation {
        instead: format!(
            "A password hash can be cracked offline by anyone who can pull the image, with no \
             login attempt to notice; a hash of a default or empty password gives the password \
             away at once. Do not ship it: set the account's password at run time from a \
             Kubernetes Secret of type {}, or lock the account when it needs none. {}",
            advice.kubernetes_secret_type, advice.instead
        )
        .into(),
        rotate: "Change this password wherever it is used and never reuse it: the hash can be \
                 cracked offline, slowly for a strong password and at once for a weak one."
            .into(),
        ..advice
    }
}
