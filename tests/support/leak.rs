//! The reference "classic leak" image and the record of what it planted.
//!
//! It covers the ways secrets survive in images in one small fixture: files
//! deleted by a later layer (whiteout), hidden by an opaque directory,
//! overwritten by a later layer, still present (and reachable via a hard
//! link and a symlink), baked into the config `Env`, and leaked through
//! build-args in `history[].created_by`.

use super::image::{Entry, ImageSpec, Layer};
use super::secrets;

/// Where a planted secret lives and how stowaway must describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlantedKind {
    /// Inside file `path` of layer `layer` (index into the image's layers).
    LayerFile {
        layer: usize,
        path: String,
        /// `"present"` (in the final filesystem), `"deleted"` (removed by a
        /// whiteout or opaque dir) or `"overwritten"` (replaced by a later
        /// layer's file at the same path).
        status: &'static str,
        /// The layer that deleted or overwrote it.
        removed_in_layer: Option<usize>,
    },
    /// In `created_by` of config `history[index]`.
    History { index: usize },
    /// In the config `Env` entry `KEY=...`.
    ConfigEnv { key: String },
}

/// One planted secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlantedSecret {
    /// The exact secret text (for keys: the whole PEM block).
    pub secret: String,
    pub kind: PlantedKind,
    /// Which family of rule should catch it: "aws-access-key-id",
    /// "aws-secret-access-key", "private-key", "openssh-private-key",
    /// "github", "password" or "npm". A hint for matching rule IDs, not an ID.
    pub rule_hint: &'static str,
}

/// Every secret a fixture planted, each with where it must be reported.
pub type Planted = Vec<PlantedSecret>;

/// Tag of the classic leak image.
pub const CLASSIC_LEAK_REPO_TAG: &str = "example.com/leaky:1.0";

/// `PATH` as Debian-based images set it.
pub const DEFAULT_PATH_ENV: &str =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn in_layer(
    secret: &str,
    rule_hint: &'static str,
    layer: usize,
    path: &str,
    status: &'static str,
    removed_in_layer: Option<usize>,
) -> PlantedSecret {
    PlantedSecret {
        secret: secret.to_string(),
        kind: PlantedKind::LayerFile {
            layer,
            path: path.to_string(),
            status,
            removed_in_layer,
        },
        rule_hint,
    }
}

/// 200 KiB of random bytes behind an ELF magic: a stand-in for a binary
/// that scanners must get through (or skip) without false positives.
pub fn pseudo_elf(len: usize) -> Vec<u8> {
    let mut v = secrets::random_bytes(len);
    v[..4].copy_from_slice(b"\x7fELF");
    v
}

/// The reference leaky image (tag [`CLASSIC_LEAK_REPO_TAG`]) and its planted
/// secrets. Layers:
///
/// 0. `COPY credentials ...`: `root/.aws/credentials` (AWS key id + secret),
///    `root/.ssh/id_rsa` (RSA PEM), `app/config/.env` (`DB_PASSWORD`,
///    `GITHUB_TOKEN`), plus harmless `etc/os-release`, `app/README.md` and a
///    200 KiB pseudo-ELF `usr/local/bin/app`;
/// 1. `RUN rm -f ...`: whiteouts for the credentials and `id_rsa` → *deleted*;
/// 2. `RUN rm -rf /app/config && mkdir ...`: opaque `app/config` + a harmless
///    `settings.yaml` → `.env` *deleted*;
/// 3. `COPY id_ed25519 ...`: an OpenSSH key at `home/dev/.ssh/id_ed25519`
///    (*present*), a hard link `id_ed25519.bak` to it (*present*; the link
///    entry has no data of its own, so it must be resolved within the layer)
///    and a symlink `home/dev/key-link` → `/home/dev/.ssh/id_ed25519` (not
///    listed: following symlinks would only re-find the same file);
/// 4. `COPY app.env ...`: `app/app.env` with `API_TOKEN=<npm token>`;
/// 5. `RUN |1 NPM_TOKEN=<npm token 2> /bin/sh -c npm ci` (a build-arg leaked
///    into history) which replaces `app/app.env` → *overwritten*.
///
/// The config has `Env` `PATH` and `DB_PASSWORD=<password 2>`, and two
/// empty-layer history steps before layer 0: `ARG NPM_TOKEN` and
/// `ENV DB_PASSWORD=<password 2>` (so history indexes of layers are shifted
/// by 2). Harmless label `org.opencontainers.image.source`.
pub fn classic_leak() -> (ImageSpec, Planted) {
    let aws_id = secrets::aws_access_key_id();
    let aws_secret = secrets::aws_secret_access_key();
    let rsa = secrets::rsa_private_key_pem();
    let db_password = secrets::password(20);
    let github = secrets::github_classic_token();
    let ed25519 = secrets::openssh_private_key();
    let npm = secrets::npm_token();
    let npm_build_arg = secrets::npm_token();
    let env_password = secrets::password(24);

    let os_release = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n\
                      VERSION_ID=\"12\"\nID=debian\nHOME_URL=\"https://www.debian.org/\"\n";
    let readme = "# app\n\nA demo service. Configure it through /app/config/settings.yaml.\n";
    let settings = "log_level: info\nlisten: 0.0.0.0:8080\n";

    let layers = vec![
        Layer::new(
            "COPY credentials /root/.aws/credentials # buildkit",
            vec![
                Entry::dir("etc"),
                Entry::file("etc/os-release", os_release),
                Entry::dir("root"),
                Entry::dir("root/.aws"),
                Entry::file_mode(
                    "root/.aws/credentials",
                    secrets::aws_credentials_file(&aws_id, &aws_secret),
                    0o600,
                ),
                Entry::dir("root/.ssh"),
                Entry::file_mode("root/.ssh/id_rsa", rsa.clone(), 0o600),
                Entry::dir("app"),
                Entry::file("app/README.md", readme),
                Entry::dir("app/config"),
                Entry::file(
                    "app/config/.env",
                    secrets::dotenv(&[("DB_PASSWORD", &db_password), ("GITHUB_TOKEN", &github)]),
                ),
                Entry::dir("usr"),
                Entry::dir("usr/local"),
                Entry::dir("usr/local/bin"),
                Entry::file_mode("usr/local/bin/app", pseudo_elf(200 * 1024), 0o755),
            ],
        ),
        Layer::new(
            "RUN /bin/sh -c rm -f /root/.aws/credentials /root/.ssh/id_rsa # buildkit",
            vec![
                Entry::dir("root/.aws"),
                Entry::whiteout("root/.aws/credentials"),
                Entry::dir("root/.ssh"),
                Entry::whiteout("root/.ssh/id_rsa"),
            ],
        ),
        Layer::new(
            "RUN /bin/sh -c rm -rf /app/config && mkdir -p /app/config # buildkit",
            vec![
                Entry::dir("app/config"),
                Entry::opaque("app/config"),
                Entry::file("app/config/settings.yaml", settings),
            ],
        ),
        Layer::new(
            "COPY id_ed25519 /home/dev/.ssh/id_ed25519 # buildkit",
            vec![
                Entry::dir("home"),
                Entry::dir("home/dev"),
                Entry::dir("home/dev/.ssh"),
                Entry::file_mode("home/dev/.ssh/id_ed25519", ed25519.clone(), 0o600),
                Entry::hardlink("home/dev/.ssh/id_ed25519.bak", "home/dev/.ssh/id_ed25519"),
                Entry::symlink("home/dev/key-link", "/home/dev/.ssh/id_ed25519"),
            ],
        ),
        Layer::new(
            "COPY app.env /app/app.env # buildkit",
            vec![Entry::file(
                "app/app.env",
                secrets::dotenv(&[("API_TOKEN", &npm)]),
            )],
        ),
        Layer::new(
            &format!("RUN |1 NPM_TOKEN={npm_build_arg} /bin/sh -c npm ci # buildkit"),
            vec![Entry::file("app/app.env", "replace\n")],
        ),
    ];

    let spec = ImageSpec {
        layers,
        empty_history: vec![
            (0, "ARG NPM_TOKEN".to_string()),
            (0, format!("ENV DB_PASSWORD={env_password}")),
        ],
        env: vec![
            DEFAULT_PATH_ENV.to_string(),
            format!("DB_PASSWORD={env_password}"),
        ],
        labels: vec![(
            "org.opencontainers.image.source".to_string(),
            "https://example.com/app".to_string(),
        )],
        cmd: vec!["/usr/local/bin/app".to_string()],
        repo_tag: CLASSIC_LEAK_REPO_TAG.to_string(),
        ..ImageSpec::default()
    };

    let env_history_index = spec
        .history()
        .iter()
        .position(|h| h.created_by.starts_with("ENV DB_PASSWORD="))
        .expect("ENV step");
    let planted = vec![
        in_layer(
            &aws_id,
            "aws-access-key-id",
            0,
            "root/.aws/credentials",
            "deleted",
            Some(1),
        ),
        in_layer(
            &aws_secret,
            "aws-secret-access-key",
            0,
            "root/.aws/credentials",
            "deleted",
            Some(1),
        ),
        in_layer(
            &rsa,
            "private-key",
            0,
            "root/.ssh/id_rsa",
            "deleted",
            Some(1),
        ),
        in_layer(
            &db_password,
            "password",
            0,
            "app/config/.env",
            "deleted",
            Some(2),
        ),
        in_layer(&github, "github", 0, "app/config/.env", "deleted", Some(2)),
        in_layer(
            &ed25519,
            "openssh-private-key",
            3,
            "home/dev/.ssh/id_ed25519",
            "present",
            None,
        ),
        in_layer(
            &ed25519,
            "openssh-private-key",
            3,
            "home/dev/.ssh/id_ed25519.bak",
            "present",
            None,
        ),
        in_layer(&npm, "npm", 4, "app/app.env", "overwritten", Some(5)),
        PlantedSecret {
            secret: npm_build_arg,
            kind: PlantedKind::History {
                index: spec.history_index_of_layer(5),
            },
            rule_hint: "npm",
        },
        PlantedSecret {
            secret: env_password.clone(),
            kind: PlantedKind::History {
                index: env_history_index,
            },
            rule_hint: "password",
        },
        PlantedSecret {
            secret: env_password,
            kind: PlantedKind::ConfigEnv {
                key: "DB_PASSWORD".to_string(),
            },
            rule_hint: "password",
        },
    ];
    (spec, planted)
}

/// The parts of each planted secret that must never be printed: the whole value, and for key
/// blocks every body line (the BEGIN line may show: it names the kind of key).
pub fn needles(planted: &Planted) -> Vec<String> {
    let mut needles = Vec::new();
    for secret in planted {
        if secret.secret.contains('\n') {
            needles.extend(
                secret
                    .secret
                    .lines()
                    .filter(|line| !line.starts_with("-----") && line.len() >= 16)
                    .map(str::to_string),
            );
        } else {
            needles.push(secret.secret.clone());
        }
    }
    needles
}
