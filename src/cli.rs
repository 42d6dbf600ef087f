//! The command line: every flag is defined and documented here, in one place.

use std::path::PathBuf;
use std::time::Duration;

use clap::builder::{BoolishValueParser, PossibleValuesParser, TypedValueParser};
use clap::{ArgAction, Args, CommandFactory, Parser, Subcommand, ValueEnum};

use crate::detect::{Limits, Severity};

/// Finds secrets leaked into container images: every layer (including files a later layer
/// deleted), the history and the config.
#[derive(Parser, Debug)]
#[command(name = "stowaway", version, about, long_about = None)]
pub struct Cli {
    /// The subcommand to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands of `stowaway`; each variant's doc comment is its line in `stowaway --help`.
// One value per process, parsed once: boxing `scan`'s many flags would save nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Scan images for secrets.
    Scan(ScanArgs),
    /// List or check signature rules.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Serve a Kubernetes admission webhook and registry push notifications that gate images
    /// on cached scan results.
    Serve(ServeArgs),
    /// Take scans from the shared queue of a shared store (--store) and store their results:
    /// the scan workers of `serve` replicas. Takes serve's flags; on --listen it answers only
    /// /healthz, /readyz and /metrics (plain HTTP is allowed on any address).
    Worker(ServeArgs),
    /// Sweep a registry: list its repositories and tags, and scan every image that has no
    /// result under the current rules (layers shared between images are scanned once).
    Sweep(SweepArgs),
    /// Print a shell completion script: `source <(stowaway completion bash)`, or save it where
    /// the shell loads completions from.
    Completion {
        /// The shell to complete for.
        #[arg(value_enum, value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Print a man page (roff) generated from these definitions: `stowaway man >
    /// stowaway.1`, `stowaway man scan > stowaway-scan.1`.
    Man {
        /// The subcommand to document (scan, rules, serve, sweep, completion, man); the whole
        /// program when omitted.
        #[arg(value_name = "COMMAND")]
        command: Option<String>,
    },
}

/// `stowaway scan`: what to scan, how to report it and when to fail.
#[derive(Args, Debug)]
#[command(after_help = "IMAGE forms:
  docker-archive:PATH[:REF]   a `docker save` tarball (legacy or Docker 25+ layout; gzip,
                              zstd, xz or bzip2 compressed too)
  oci:PATH[:TAG]              an OCI image layout directory
  oci-archive:PATH[:TAG]      an OCI layout in a tarball (compressed too)
  containers-storage:[DRIVER@GRAPHROOT+RUNROOT]NAME
                              an image podman, buildah or CRI-O stored (overlay or vfs; the
                              store from storage.conf when not named)
  containerd:NAME             an image in containerd, read through its socket
                              (--containerd-address, --containerd-namespace)
  PATH[:TAG]                  a tarball or layout directory, detected by content
  docker-daemon:NAME          an image in the Docker daemon (DOCKER_HOST, docker context)
  docker://REF                an image in a registry (alpine:3.20, ghcr.io/org/app@sha256:…)
  NAME                        the Docker daemon, containerd, podman's storage, then the
                              registry (--image-src)

Exit codes:
  0  no finding at or above --fail-on (or --write-baseline given), and with
     --fail-on-incomplete everything scanned
  1  findings at or above --fail-on, or with --fail-on-incomplete something not scanned (a
     limit reached, an encrypted or damaged member) even with no finding; --exit-code N
     replaces 1. The report's last line says which.
  2  usage or input error; with several images (--images-from), an image that could not be
     scanned when no finding fails the gate (findings that fail it give 1, errors or not)

Limits (README, \"Limits\"): archives nested in a file (--max-archive-depth, 3), bytes
decompressed from them (--max-archive-bytes, 64MiB) and members opened (--max-archive-members,
10000); what a limit stops is reported as not scanned.

Settings: every flag can also come from a STOWAWAY_<FLAG> environment variable (--fail-on:
STOWAWAY_FAIL_ON) or from a TOML config file (./stowaway.toml, or --config), keys named as the
flags (fail-on = \"high\", skip-dirs = [\"usr/share/doc\"]). A flag wins over the environment,
the environment over the file, the file over the default.

--severity and --fail-on: --severity chooses which findings the report shows; --fail-on gates
on every finding, shown or not (the summary counts the hidden ones).

Accepting findings: an ignore file (.stowawayignore in the current directory, or --ignore-file)
lists `path:<glob>`, `rule:<id>` or `fingerprint:<hex>` entries, each with reason=\"...\" and an
optional expires=YYYY-MM-DD; --baseline FILE suppresses the secrets recorded by --write-baseline.")]
pub struct ScanArgs {
    /// Images to scan.
    #[arg(value_name = "IMAGE", required_unless_present = "images_from")]
    pub images: Vec<String>,

    /// Also scan the images FILE lists (`-`: standard input): one reference per line (`#`
    /// starts a comment), or Kubernetes JSON: `kubectl get pods -A -o json`, or any List of
    /// Pods, Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs and CronJobs (containers,
    /// init and ephemeral containers). Each distinct image is scanned once; the report names
    /// the workloads using it; an image that fails is reported and the others are still
    /// scanned (exit codes below).
    #[arg(long, value_name = "FILE")]
    pub images_from: Option<PathBuf>,

    /// Where a bare image NAME is looked for, in order (comma-separated): docker (the Docker
    /// daemon: DOCKER_HOST, the current docker context, else /var/run/docker.sock),
    /// containerd (--containerd-address, --containerd-namespace), podman (the
    /// containers-storage store of storage.conf), remote (its registry). A source that is
    /// absent is skipped quietly. Transports (docker-daemon:, containerd:, docker://, paths)
    /// are not affected.
    #[arg(
        long,
        value_name = "SOURCE,...",
        default_value = "docker,containerd,podman,remote"
    )]
    pub image_src: String,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Read settings from this TOML file instead of ./stowaway.toml (which is read when
    /// present); keys are flag names (`fail-on = "high"`). A missing FILE is an error.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Show only findings of these severities (comma-separated: critical, high, medium, low,
    /// info); all by default. A display filter: --fail-on still sees every finding.
    #[arg(long, value_name = "SEVERITY,...", value_delimiter = ',', ignore_case = true,
          value_parser = severity_parser(&["critical", "high", "medium", "low", "info"]))]
    pub severity: Vec<String>,

    /// Write the report to FILE instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Show secrets in full. Off by default: every output format redacts them.
    #[arg(long)]
    pub show_secrets: bool,

    /// Fail (exit 1, or the --exit-code value) when a finding is at or above this severity
    /// (critical, high, medium, low, info), or never with `none`.
    #[arg(long, value_name = "SEVERITY", default_value = "low", ignore_case = true,
          value_parser = severity_parser(&["critical", "high", "medium", "low", "info", "none"]))]
    pub fail_on: String,

    /// Also fail (exit 1, or the --exit-code value) when anything was not scanned, even with
    /// no finding: a layer, or a file or archive member a limit, encryption or damage kept
    /// from the scan (the report lists each). Irregular entries were scanned and do not count.
    #[arg(long)]
    pub fail_on_incomplete: bool,

    /// Exit code when findings fail the --fail-on gate (or an incomplete scan fails
    /// --fail-on-incomplete): 1, or 3 to 255 (0 means success and 2
    /// means a usage or input error, so neither can be chosen).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = parse_exit_code)]
    pub exit_code: u8,

    /// Suppress findings whose fingerprint (rule + secret) is in this baseline file, wherever
    /// they appear; the summary counts them.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,

    /// Record the findings of this scan (those no ignore entry covers) in a baseline FILE, to
    /// accept them: the report still lists them, and the exit code is 0.
    #[arg(long, value_name = "FILE")]
    pub write_baseline: Option<PathBuf>,

    /// Read ignore entries from FILE instead of ./.stowawayignore (which is read when present).
    /// A missing FILE is an error.
    #[arg(long, value_name = "FILE")]
    pub ignore_file: Option<PathBuf>,

    /// For multi-platform images, scan only this platform (os/arch[/variant]).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,

    /// For multi-platform images in a registry, scan every platform (attestations excepted)
    /// and report each.
    #[arg(long, conflicts_with = "platform")]
    pub all_platforms: bool,

    /// Registry user name; the password is read from standard input (--password-stdin).
    #[arg(long, value_name = "USER", requires = "password_stdin")]
    pub username: Option<String>,

    /// Read the registry password from standard input (one line).
    #[arg(long, requires = "username")]
    pub password_stdin: bool,

    /// Talk plain HTTP to registries (always done for localhost and 127.0.0.1).
    #[arg(long)]
    pub plain_http: bool,

    /// Trust this CA certificate (PEM) for registry TLS, besides the system roots. Repeatable.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Vec<PathBuf>,

    /// containerd's socket, for containerd:NAME images (default /run/containerd/containerd.sock).
    #[arg(long, value_name = "SOCKET")]
    pub containerd_address: Option<PathBuf>,

    /// The containerd namespace of containerd:NAME images (default: k8s.io, then default).
    #[arg(long, value_name = "NS")]
    pub containerd_namespace: Option<String>,

    /// Add rules from a TOML file, or from every .toml file in a directory. Repeatable.
    #[arg(long, value_name = "PATH")]
    pub rules: Vec<PathBuf>,

    /// Do not run the rule with this id. Repeatable.
    #[arg(long, value_name = "ID")]
    pub disable_rule: Vec<String>,

    /// Run only these rules (comma-separated ids).
    #[arg(long, value_name = "ID,...", value_delimiter = ',')]
    pub enable_only: Vec<String>,

    /// Also treat the key material listed in this file as published (reported at info, "published
    /// in …"), besides the built-in list. Same format as signatures/published-keys.tsv: tab-separated
    /// `sha256 kind manager package version path`. Repeatable.
    #[arg(long, value_name = "FILE")]
    pub published_keys: Vec<PathBuf>,

    /// Open archives (zip, jar, tar, gzip) nested at most N deep in one file, 0 to 16; deeper
    /// ones are scanned as plain bytes and reported as not scanned.
    #[arg(long, value_name = "N", default_value_t = 3,
          value_parser = clap::value_parser!(u8).range(0..=16))]
    pub max_archive_depth: u8,

    /// Decompress at most SIZE out of the archives of one file (bytes, or with a KiB, MiB or
    /// GiB suffix; at most 1GiB, held in memory); members past it are reported as not scanned.
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = parse_size)]
    pub max_archive_bytes: u64,

    /// Open at most N archive members in one file (1 to 1000000); the rest are reported as
    /// not scanned.
    #[arg(long, value_name = "N", default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_archive_members: u32,

    /// Do not scan files under directories matching GLOB (paths in the image, `*` within a
    /// name, `**` across directories: `usr/share/doc`, `**/node_modules`). Comma-separated or
    /// repeated. Package databases there are still read.
    #[arg(long, value_name = "GLOB", value_delimiter = ',')]
    pub skip_dirs: Vec<String>,

    /// Do not scan files whose path in the image matches GLOB (`**/*.md`,
    /// `app/fixtures/*.pem`). Comma-separated or repeated.
    #[arg(long, value_name = "GLOB", value_delimiter = ',')]
    pub skip_files: Vec<String>,

    /// Give up after DURATION (`90s`, `10m`, `1h`; a bare number is seconds; 0 never), with
    /// exit code 2 and no report.
    #[arg(long, value_name = "DURATION", default_value = "0", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Worker threads (default: one per CPU).
    #[arg(short = 'j', long, value_name = "N", default_value_t = 0)]
    pub threads: usize,

    /// Findings listed per file (or history or config item), the most severe first; the rest
    /// are counted ("N more in this file"). 0 lists them all.
    #[arg(long, value_name = "N", default_value_t = crate::scan::DEFAULT_MAX_FINDINGS_PER_FILE)]
    pub max_findings_per_file: usize,

    /// More detail: remediation advice and fingerprints in text output.
    #[arg(short, long)]
    pub verbose: bool,

    /// List findings in vendor content in text output: files a package manager (dpkg, apk,
    /// rpm, pip) installed unmodified, and tests and examples inside npm, gem, Composer and
    /// Maven packages. By default they are one summary line; JSON always lists them.
    #[arg(long)]
    pub show_vendor: bool,

    /// Print nothing but errors on standard error (no progress).
    #[arg(short, long)]
    pub quiet: bool,

    /// No progress bars (warnings and the summary still go to standard error).
    #[arg(long)]
    pub no_progress: bool,

    /// Colour in text output: auto (when writing to a terminal and NO_COLOR is unset),
    /// always or never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    /// Keep per-layer results in DIR (default: $XDG_CACHE_HOME/stowaway or
    /// ~/.cache/stowaway), so layers seen before are not scanned again. Results are keyed by
    /// the rule set; secrets are stored redacted.
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Neither read nor write the result cache (also STOWAWAY_NO_CACHE=1). Wins over
    /// --store and --cache-dir.
    #[arg(long)]
    pub no_cache: bool,

    /// Keep results in a shared Redis-protocol store (Redis 7, Valkey) instead of the
    /// embedded one: redis://[USER:PASSWORD@]HOST[:PORT][/DB], or rediss://… for TLS. Wins
    /// over --cache-dir. A store that is down is a warning and the scan runs without it.
    #[arg(long, value_name = "URL", hide_env_values = true)]
    pub store: Option<String>,

    /// How long an entry of the shared store lives after its last use (`30d`, `12h`).
    #[arg(long, value_name = "DURATION", default_value = "30d", value_parser = parse_store_ttl)]
    pub store_ttl: Duration,
}

/// `stowaway serve`: the admission webhook and registry-notification server.
#[derive(Args, Debug)]
#[command(after_help = "Endpoints:
  POST /admission          Kubernetes ValidatingWebhook (AdmissionReview admission.k8s.io/v1)
  POST /registry/events    distribution notifications and Harbor PUSH_ARTIFACT webhooks
  GET  /reports/{digest}   the JSON report of a scanned manifest
  POST /scan               {\"image\": \"registry/repo:tag\"} queues a scan (202)
  GET  /healthz, /readyz, /metrics (Prometheus text)

The policy file (--config) is TOML: severity_threshold, on_unknown = \"allow\"|\"deny\",
time_budget_ms, exempt_namespaces, exempt_images (globs), tag_cache_seconds, api_token_file
(required unless --no-auth), allowed_registries (globs), max_images_per_review,
max_lookups_per_review, on_review_limit = \"deny\"|\"allow\", scan_timeout_seconds, and a
[registry] table (plain_http, ca_certs). Registry credentials come from the docker config file and
credential helpers, as for `scan`.")]
pub struct ServeArgs {
    /// Address to listen on, HOST:PORT with an IP address (port 0 picks a free port; the
    /// address in use is printed on standard error).
    #[arg(long, value_name = "ADDR")]
    pub listen: String,

    /// TLS certificate chain (PEM). Reloaded when the file changes.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// TLS private key (PEM). Reloaded when the file changes.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Serve plain HTTP on a non-loopback address (without TLS, only loopback is allowed).
    #[arg(long)]
    pub insecure_listen: bool,

    /// Serve POST /scan, POST /registry/events and GET /reports without a token (local use).
    /// Without it, the policy must set api_token_file, or the server does not start.
    #[arg(long)]
    pub no_auth: bool,

    /// Policy file (TOML); without it: deny findings at or above low, allow unknown images
    /// with a warning, 3 s time budget.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Result cache directory (default: $XDG_CACHE_HOME/stowaway or ~/.cache/stowaway), for
    /// one server process.
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Keep results in a shared Redis-protocol store (Redis 7, Valkey), so every replica and
    /// every `scan --store` shares them: redis://[USER:PASSWORD@]HOST[:PORT][/DB], or
    /// rediss://… for TLS. Wins over --cache-dir. While it is down, /readyz fails and
    /// admissions follow on_unknown.
    #[arg(
        long,
        value_name = "URL",
        env = "STOWAWAY_STORE",
        hide_env_values = true
    )]
    pub store: Option<String>,

    /// How long an entry of the shared store lives after its last use (`30d`, `12h`); tag
    /// lookups keep the policy's tag_cache_seconds.
    #[arg(long, value_name = "DURATION", default_value = "30d", value_parser = parse_store_ttl)]
    pub store_ttl: Duration,

    /// Add rules from a TOML file, or from every .toml file in a directory. Repeatable.
    #[arg(long, value_name = "PATH")]
    pub rules: Vec<PathBuf>,

    /// Do not run the rule with this id. Repeatable.
    #[arg(long, value_name = "ID")]
    pub disable_rule: Vec<String>,

    /// Scans that may wait in the queue; further requests are refused (HTTP 503) until
    /// there is room.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub queue_size: usize,

    /// Images scanned at the same time. With a shared store, 0 leaves the scans to
    /// `stowaway worker` processes.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub concurrency: usize,

    /// Detector threads shared by all scans (default: one per CPU).
    #[arg(short = 'j', long, value_name = "N", default_value_t = 0)]
    pub threads: usize,

    /// Threads answering HTTP requests.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub http_threads: usize,

    /// With a shared store: how long a scan taken from the shared queue may go without its
    /// worker renewing its claim before another worker takes it over (default: the policy's
    /// scan_timeout_seconds plus a minute). A live worker renews every third of it.
    #[arg(long, value_name = "DURATION", value_parser = parse_store_ttl)]
    pub visibility_timeout: Option<Duration>,

    /// With a shared store: tries of a scan (a failure, or a worker that died) before it is
    /// given up and its dead-letter record kept (GET /reports/{digest} shows it).
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub max_attempts: u32,

    /// Log nothing but errors.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `stowaway sweep`: every image of a registry (or those the globs choose) given a result.
#[derive(Args, Debug)]
#[command(
    after_help = "What is swept: the repositories of GET /v2/_catalog (paged, --page-size) that
match --repos, and in each the tags of GET /v2/NAME/tags/list (paged) that match --tags, or the
--tags-per-repo most recent; --since keeps images created within the duration. `*` in a glob
also matches `/`. A tag of a multi-platform index stands for the platforms `scan` would read
(--platform, --all-platforms). Recency is the image config's `created`: with --tags-per-repo or
--since each tag's config is read (one more request per image); images without one sort last
and are left out by --since.

Each distinct manifest digest is looked up in the result cache under the current rules digest;
those without a report are scanned here, --jobs at a time, their layer results cached, so a
base layer shared by many images is scanned once. With --store (or STOWAWAY_STORE) they are
queued instead on the shared store's scan queue (an image already queued or being scanned is
not queued again), for `stowaway worker` processes with the same rules; sweep ends once they
are queued (counted as queued), or with --wait once each has a report or was given up.
Requests to the registry are at most --requests at a time; 429 and 503 answers are retried
after their Retry-After (seconds or a date; at most 30 s in all per request) or with backoff,
at most 4 attempts.

Exit codes:
  0  no finding at or above --fail-on in the swept images
  1  findings at or above --fail-on (in images scanned now or earlier)
  2  usage or input error (unreachable registry or --store, 401, malformed list, bad glob or
     duration), or an image that could not be scanned (with --wait: given up, or not done in
     time) when no finding fails the gate

The summary (--format json: one object, see the README) counts repositories, tags, images,
images that already had a result, scanned, failed (with reasons), skipped (lists cut at their
caps), layers scanned and reused, findings by severity, elapsed time and throughput."
)]
pub struct SweepArgs {
    /// The registry: HOST or HOST:PORT (plain HTTP for loopback hosts and with --plain-http).
    #[arg(value_name = "REGISTRY")]
    pub registry: String,

    /// Only repositories whose name matches this glob (`team/*`, `*-service`).
    #[arg(long, value_name = "GLOB")]
    pub repos: Option<String>,

    /// Only tags that match this glob (`v1.*`, `release-*`).
    #[arg(long, value_name = "GLOB", conflicts_with = "tags_per_repo")]
    pub tags: Option<String>,

    /// Only the N most recently created tags of each repository (by the config's `created`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub tags_per_repo: Option<u32>,

    /// Only images created within this long before now: `90m`, `36h`, `7d`, `2w`.
    #[arg(long, value_name = "DURATION", value_parser = parse_age)]
    pub since: Option<Duration>,

    /// Images scanned at the same time.
    #[arg(long, value_name = "N", default_value_t = 2,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,

    /// Requests to the registry in flight at the same time while listing and resolving.
    #[arg(long, value_name = "N", default_value_t = 4,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    pub requests: u16,

    /// Entries asked for per catalog or tag-list page (`n=`).
    #[arg(long, value_name = "N", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub page_size: u32,

    /// At most this many repositories are read from the catalog; the rest is counted as
    /// skipped.
    #[arg(long, value_name = "N", default_value_t = 10000)]
    pub max_repos: usize,

    /// At most this many tags are read per repository; the rest is counted as skipped.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub max_tags: usize,

    /// Summary format.
    #[arg(long, value_enum, default_value_t = SummaryFormat::Text)]
    pub format: SummaryFormat,

    /// Write the summary to FILE instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Exit 1 when a swept image has a finding at or above this severity (critical, high,
    /// medium, low, info), or never with `none`.
    #[arg(long, value_name = "SEVERITY", default_value = "low", ignore_case = true,
          value_parser = severity_parser(&["critical", "high", "medium", "low", "info", "none"]))]
    pub fail_on: String,

    /// Which platform of a multi-platform image to scan, as for `scan`.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,

    /// Scan every platform of a multi-platform image.
    #[arg(long, conflicts_with = "platform")]
    pub all_platforms: bool,

    /// Use plain HTTP (it is always used for localhost and 127.0.0.1).
    #[arg(long)]
    pub plain_http: bool,

    /// Trust this CA certificate (PEM) for the registry. Repeatable.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Vec<PathBuf>,

    /// Result cache directory (default: $XDG_CACHE_HOME/stowaway or ~/.cache/stowaway); it
    /// says which images already have a result.
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Use a shared Redis-protocol store (Redis 7, Valkey) and its scan queue instead of
    /// scanning here: images without a report there are queued for `stowaway worker`
    /// processes (and `serve` replicas) on the same store and rules.
    /// redis://[USER:PASSWORD@]HOST[:PORT][/DB], or rediss://… for TLS. Wins over
    /// --cache-dir. A store that is down is an error (exit 2).
    #[arg(
        long,
        value_name = "URL",
        env = "STOWAWAY_STORE",
        hide_env_values = true
    )]
    pub store: Option<String>,

    /// How long an entry of the shared store lives after its last use (`30d`, `12h`).
    #[arg(long, value_name = "DURATION", default_value = "30d", value_parser = parse_store_ttl)]
    pub store_ttl: Duration,

    /// With --store: wait until every queued image has a report or was given up (a dead
    /// letter: failed), at most TIMEOUT (default 1h; `30m`, `2h`), and count them as scanned
    /// or failed. Without it, sweep ends once the images are queued.
    #[arg(long, value_name = "TIMEOUT", num_args = 0..=1, default_missing_value = "1h",
          value_parser = parse_age)]
    pub wait: Option<Duration>,

    /// Add rules from a TOML file, or from every .toml file in a directory. Repeatable.
    #[arg(long, value_name = "PATH")]
    pub rules: Vec<PathBuf>,

    /// Do not run the rule with this id. Repeatable.
    #[arg(long, value_name = "ID")]
    pub disable_rule: Vec<String>,

    /// Detector threads shared by all scans (default: one per CPU).
    #[arg(short = 'j', long, value_name = "N", default_value_t = 0)]
    pub threads: usize,

    /// No progress bar (it is only drawn when standard error is a terminal).
    #[arg(long)]
    pub no_progress: bool,

    /// Print nothing on standard error but errors.
    #[arg(short, long)]
    pub quiet: bool,
}

/// The summary formats of `sweep --format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SummaryFormat {
    /// A few lines, for people.
    Text,
    /// One JSON object, for scripts.
    Json,
}

/// The subcommands of `stowaway rules`.
#[derive(Subcommand, Debug)]
pub enum RulesCommand {
    /// List the rules in effect.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
        /// Include rules from a TOML file or directory. Repeatable.
        #[arg(long, value_name = "PATH")]
        rules: Vec<PathBuf>,
    },
    /// Show one rule in full: what it finds, its severity as scans report it, keywords,
    /// validator or decoder, where its secret belongs, references.
    Show {
        /// The rule's id (see `stowaway rules list`).
        #[arg(value_name = "ID")]
        id: String,
        /// Include rules from a TOML file or directory. Repeatable.
        #[arg(long, value_name = "PATH")]
        rules: Vec<PathBuf>,
    },
    /// Check a user rule file: it parses, compiles, has keywords, and its examples and negative
    /// examples behave.
    Check {
        /// Rule files or directories to check.
        #[arg(value_name = "FILE", required = true)]
        files: Vec<PathBuf>,
    },
}

/// The report formats of `scan --format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Findings grouped by layer, for people.
    Text,
    /// The finding model (versioned), for scripts.
    Json,
    /// SARIF 2.1.0, for GitHub code scanning and other SARIF viewers.
    Sarif,
    /// GitLab's secret detection report (schema 15.2.4).
    Gitlab,
    /// A Markdown summary and table, for pull-request comments and CI job summaries.
    Markdown,
    /// JUnit XML, for CI test-report panes: one test case per finding.
    Junit,
}

impl ScanArgs {
    /// The archive limits `--max-archive-*` set.
    pub fn archive_limits(&self) -> Limits {
        Limits {
            max_archive_depth: usize::from(self.max_archive_depth),
            max_decompressed_bytes: self.max_archive_bytes,
            max_members: self.max_archive_members as usize,
        }
    }

    /// `--severity`: the severities to show; `None` shows them all.
    pub fn shown_severities(&self) -> Option<Vec<Severity>> {
        (!self.severity.is_empty()).then(|| {
            self.severity
                .iter()
                .filter_map(|name| name.parse().ok())
                .collect()
        })
    }
}

/// The whole command line as clap reads it: the derive definitions, with every `scan` flag
/// also read from a `STOWAWAY_<FLAG>` environment variable (so no flag can lack one, and
/// `--help` names each). Flags without a value take 1/0, true/false, yes/no, on/off.
pub fn command() -> clap::Command {
    Cli::command().mut_subcommand("scan", |scan| {
        scan.mut_args(|arg| {
            if arg.is_positional() || arg.get_id() == "help" {
                return arg;
            }
            let name = format!("STOWAWAY_{}", arg.get_id().as_str().to_ascii_uppercase());
            let arg = arg.env(name);
            if matches!(arg.get_action(), ArgAction::SetTrue) {
                arg.value_parser(BoolishValueParser::new())
            } else {
                arg
            }
        })
    })
}

/// Severity names, case-insensitive, written back in lower case (so the help lists them and a
/// wrong one gets the list).
fn severity_parser(names: &'static [&'static str]) -> impl TypedValueParser<Value = String> {
    PossibleValuesParser::new(names).map(|name| name.to_ascii_lowercase())
}

/// `--timeout`: `90s`, `10m`, `2h`, or a bare number of seconds; `0` for no limit.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let seconds_per = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "{text:?}: use seconds, or an s, m, h or d suffix (90s, 10m)"
            ));
        }
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(seconds_per))
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{text:?}: use seconds, or an s, m, h or d suffix (90s, 10m)"))
}

/// `--store-ttl`: a duration of at least a second.
fn parse_store_ttl(text: &str) -> Result<Duration, String> {
    parse_duration(text).and_then(|ttl| {
        if ttl.is_zero() {
            Err(format!("{text:?}: entries need a lifetime of at least 1s"))
        } else {
            Ok(ttl)
        }
    })
}

/// `sweep --since`: a number with an `s`, `m`, `h`, `d` or `w` suffix (a bare number is
/// seconds); more than zero, at most about 100 years.
fn parse_age(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let hint = || format!("{text:?}: use a number with an s, m, h, d or w suffix (36h, 7d)");
    let seconds_per: u64 = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(hint()),
    };
    let seconds = number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(seconds_per))
        .filter(|&n| n > 0 && n <= 100 * 366 * 86_400)
        .ok_or_else(hint)?;
    Ok(Duration::from_secs(seconds))
}

/// The largest `--max-archive-bytes`: decompressed members are held in memory, one file per
/// worker at a time.
const MAX_ARCHIVE_BYTES: u64 = 1 << 30;

/// `--max-archive-bytes`: a byte count, or one with a `KiB`, `MiB` or `GiB` suffix (`K`, `M`,
/// `G` too), at most [`MAX_ARCHIVE_BYTES`].
fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let shift = match unit.trim() {
        "" | "B" => 0,
        "K" | "KiB" => 10,
        "M" | "MiB" => 20,
        "G" | "GiB" => 30,
        _ => return Err(format!("{text:?}: use bytes, or a KiB, MiB or GiB suffix")),
    };
    let bytes = number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| format!("{text:?} is not a size"))?;
    match bytes {
        0 => Err("0 bytes would open no archive; give a size".to_string()),
        n if n > MAX_ARCHIVE_BYTES => Err(format!("{text:?} is over the 1GiB maximum")),
        n => Ok(n),
    }
}

/// `--exit-code`: 1 to 255 except 2.
fn parse_exit_code(text: &str) -> Result<u8, String> {
    match text.parse::<u8>() {
        Ok(0) => Err("0 means success; pick 1 or 3 to 255".to_string()),
        Ok(2) => Err("2 means a usage or input error; pick 1 or 3 to 255".to_string()),
        Ok(code) => Ok(code),
        Err(_) => Err(format!("{text:?} is not an exit code (1 or 3 to 255)")),
    }
}

/// The output formats of `rules list --format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    /// One rule a line (id, severity, name), for people.
    Text,
    /// Every rule in full (description, keywords, validator, references), for scripts.
    Json,
    /// Counts per rule file and a table of every rule (id, name, severity, Kubernetes Secret
    /// type, validator): the generated part of signatures/README.md.
    Markdown,
}

/// When text output is coloured (`scan --color`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colour when the report goes to a terminal and NO_COLOR is unset.
    Auto,
    /// Colour even when writing to a file or a pipe.
    Always,
    /// No colour.
    Never,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_suffixes_and_stay_bounded() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("512K"), Ok(512 << 10));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("4096"), Ok(4096));
        for bad in ["0", "2GiB", "64MB", "lots", "-1", "99999999999999999999G"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sweep_ages_take_days_and_weeks() {
        assert_eq!(parse_age("7d").unwrap(), Duration::from_secs(7 * 86_400));
        assert_eq!(parse_age("2w").unwrap(), Duration::from_secs(14 * 86_400));
        assert_eq!(parse_age("90").unwrap(), Duration::from_secs(90));
        for bad in ["", "0d", "7y", "d", "-1h", "99999999999999999999d"] {
            assert!(parse_age(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_take_seconds_minutes_and_hours() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert!(parse_store_ttl("0").is_err());
        for bad in ["", "5w", "1.5m", "-1", "m", "99999999999999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_scan_flag_has_an_environment_variable() {
        let command = command();
        let scan = command.find_subcommand("scan").unwrap();
        for arg in scan.get_arguments() {
            if arg.is_positional() || arg.get_id() == "help" {
                continue;
            }
            let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
            let expected = format!("STOWAWAY_{}", arg.get_id().as_str().to_ascii_uppercase());
            assert_eq!(env.as_deref(), Some(expected.as_str()), "{}", arg.get_id());
        }
    }

    #[test]
    fn fail_on_and_severity_name_every_valid_value() {
        let err = Cli::try_parse_from(["stowaway", "scan", "--fail-on", "bogus", "x"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("critical, high, medium, low, info, none"),
            "{err}"
        );
        let cli =
            Cli::try_parse_from(["stowaway", "scan", "--severity", "HIGH,critical", "x"]).unwrap();
        let Command::Scan(args) = cli.command else {
            panic!("scan")
        };
        assert_eq!(
            args.shown_severities(),
            Some(vec![Severity::High, Severity::Critical])
        );
    }

    #[test]
    fn archive_limits_default_to_the_decoders_defaults() {
        let cli = Cli::try_parse_from(["stowaway", "scan", "x"]).unwrap();
        let Command::Scan(args) = cli.command else {
            panic!("scan")
        };
        assert_eq!(args.archive_limits(), Limits::default());
    }
}
