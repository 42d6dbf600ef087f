//! Where a leaked secret belongs instead: at build time a build secret, at run time a secret
//! the platform supplies (a file or variable for plain Docker, a Secret of the fitting type for
//! Kubernetes). The advice depends on the kind of place and of credential only, so a report
//! can show each distinct piece once.

use super::field::ConfigField;
use super::model::{LocationKind, Remediation};
use crate::layer::Status;

/// The Kubernetes Secret type that fits a finding. A decoder's judgement wins (a TLS key with
/// its certificate, docker auths, a Secret manifest); a private key found alone cannot fill a
/// `kubernetes.io/tls` Secret (which needs the certificate too): under an `.ssh` directory or
/// named as SSH keys are (`id_rsa`, `ssh_host_ed25519_key`) it is an SSH key, else `Opaque`.
pub fn secret_type<'a>(
    rule_id: &str,
    decoded: Option<&'a str>,
    rule_type: &'a str,
    path: Option<&str>,
) -> &'a str {
    if let Some(decoded) = decoded {
        return decoded;
    }
    if rule_type != "kubernetes.io/tls" || !rule_id.starts_with("private-key") {
        return rule_type;
    }
    let path = path.unwrap_or_default();
    let name = path.rsplit('/').next().unwrap_or_default();
    let ssh = path.split('/').any(|part| part == ".ssh")
        || name.starts_with("id_")
        || (name.starts_with("ssh_host_") && name.ends_with("_key"));
    if ssh {
        "kubernetes.io/ssh-auth"
    } else {
        "Opaque"
    }
}

/// How a Kubernetes Secret of `kind` reaches the container.
fn kubernetes_mount(kind: &str) -> &'static str {
    match kind {
        "kubernetes.io/tls" => "mounted as a volume (tls.crt, tls.key)",
        "kubernetes.io/ssh-auth" => "mounted as a volume (ssh-privatekey)",
        "kubernetes.io/dockerconfigjson" | "kubernetes.io/dockercfg" => {
            "referenced as imagePullSecrets, or mounted for the tool that needs it"
        }
        "kubernetes.io/basic-auth" => "mounted as a volume or env (username, password)",
        _ => "mounted as a volume or exposed as env (valueFrom.secretKeyRef)",
    }
}

/// Advice for a secret of `kubernetes_secret_type` found at a location of `kind`.
pub fn remediation(
    kubernetes_secret_type: &str,
    kind: LocationKind,
    field: Option<&ConfigField>,
    status: Status,
) -> Remediation {
    let build = "At build time use a build secret (docker build --secret id=…, read by \
                 RUN --mount=type=secret,id=…), which leaves no trace in layers or history.";
    let run_time = format!(
        "At run time supply it from outside the image: with Docker, a secret file (Compose or \
         Swarm secrets, or a read-only bind mount) or an environment variable (docker run \
         --env-file); on Kubernetes, a Secret of type {kubernetes_secret_type}, {}.",
        kubernetes_mount(kubernetes_secret_type)
    );
    let instead = match kind {
        LocationKind::History if matches!(field, Some(ConfigField::BuildArg(_))) => format!(
            "Build arguments are recorded in the image history. Pass build-time credentials \
             as a build secret instead of ARG: {build}"
        ),
        LocationKind::History => {
            format!("Build steps are recorded in the image history. {build} {run_time}")
        }
        LocationKind::Config => format!(
            "Do not set credentials with ENV or LABEL: the image config ships with the image. \
             {run_time}"
        ),
        LocationKind::LayerFile => {
            let still = if status == Status::Present {
                ""
            } else {
                " Deleting or overwriting the file in a later layer does not remove it: the \
                 layer that added it still ships it."
            };
            format!(
                "Keep the file out of the image (.dockerignore, no COPY or ADD of it). {build} \
                 {run_time}{still}"
            )
        }
    };
    Remediation {
        kubernetes_secret_type: kubernetes_secret_type.into(),
        instead: instead.into(),
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
             away at once. Do not ship it: set the account's password at run time (a Docker \
             secret, or a Kubernetes Secret of type {}), or lock the account when it needs \
             none. {}",
            advice.kubernetes_secret_type, advice.instead
        )
        .into(),
        rotate: "Change this password wherever it is used and never reuse it: the hash can be \
                 cracked offline, slowly for a strong password and at once for a weak one."
            .into(),
        ..advice
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_private_key_is_an_ssh_key_under_ssh_else_opaque() {
        let tls = "kubernetes.io/tls";
        let rsa = "private-key-rsa";
        for path in [
            "root/.ssh/id_rsa",
            "/home/dev/.ssh/deploy",
            "etc/ssh/ssh_host_rsa_key",
        ] {
            assert_eq!(
                secret_type(rsa, None, tls, Some(path)),
                "kubernetes.io/ssh-auth"
            );
        }
        assert_eq!(
            secret_type(rsa, None, tls, Some("etc/app/server.key")),
            "Opaque"
        );
        // A key with its certificate (the decoder says so) is a TLS pair.
        assert_eq!(
            secret_type("tls-key-pair", Some(tls), tls, Some("etc/app/server.pem")),
            tls
        );
        assert_eq!(
            secret_type(rsa, Some(tls), tls, Some("root/.ssh/id_rsa")),
            tls
        );
        let docker = "kubernetes.io/dockerconfigjson";
        assert_eq!(
            secret_type(
                "docker-auth",
                None,
                docker,
                Some("root/.docker/config.json")
            ),
            docker
        );
        assert_eq!(secret_type("npm-token", None, "Opaque", None), "Opaque");
    }

    #[test]
    fn advice_speaks_of_docker_and_kubernetes() {
        let advice = remediation(
            "kubernetes.io/ssh-auth",
            LocationKind::LayerFile,
            None,
            Status::Deleted,
        );
        for words in [
            "--mount=type=secret",
            "Compose or Swarm secrets",
            "ssh-privatekey",
            "still ships it",
        ] {
            assert!(
                advice.instead.contains(words),
                "{words}: {}",
                advice.instead
            );
        }
        let env = remediation("Opaque", LocationKind::Config, None, Status::Present);
        assert!(
            env.instead.contains("docker run --env-file")
                && env.instead.contains("Secret of type Opaque")
        );
    }
}
