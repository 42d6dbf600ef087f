#!/usr/bin/env bash
# Installs a released stowaway binary: picks the asset for this platform, downloads it and the
# release's SHA256SUMS, checks the asset's SHA-256 before unpacking anything, and installs the
# binary. action.yml runs it; tests/distribution.rs runs it against a local server.
#
#   install.sh            install (what the action does)
#   install.sh asset      print the asset name for this platform and exit
#
# Settings (environment, all optional):
#   STOWAWAY_INSTALL_VERSION  the release, `0.1.0` or `v0.1.0` (default: the version in the
#                             Cargo.toml beside this script, i.e. the action's own version)
#   STOWAWAY_RELEASE_URL      where releases are, assets being at URL/vVERSION/ASSET
#                             (default: https://github.com/$STOWAWAY_REPOSITORY/releases/download);
#                             https only, but for a test server on a loopback address
#   STOWAWAY_REPOSITORY       owner/name of the repository that publishes the releases
#                             (default: the action's repository, else $GITHUB_REPOSITORY)
#   STOWAWAY_INSTALL_DIR      where the binary goes (default: $RUNNER_TEMP/stowaway/bin)
#   RUNNER_OS, RUNNER_ARCH    the platform as GitHub names it (default: from uname)
# When GITHUB_OUTPUT is set, the binary's path and version are written to the step's outputs
# (`path`, `version`); PATH is left alone, later steps run the binary by that path.
#
# Exit codes: 0 installed; 3 no released binary for this platform or version (unsupported
# platform, release or asset not found: the action may then build from source when asked);
# 1 anything else, a checksum mismatch above all, which must never fall back to anything.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

fail() {
  local code="$1"
  shift
  if [ "${GITHUB_ACTIONS:-}" = true ]; then
    echo "::error title=stowaway install::$*"
  fi
  echo "stowaway install: error: $*" >&2
  exit "$code"
}

# Each step below sets a variable rather than printing it, so that `fail` exits the script itself
# (not a command substitution's subshell) and its message reaches the log as it should.

# triple: the Rust target a released binary was built for, from GitHub's names for the runner's
# OS and architecture (uname's names work too, for use outside GitHub).
target_triple() {
  local os="${RUNNER_OS:-$(uname -s)}" arch="${RUNNER_ARCH:-$(uname -m)}"
  case "$os" in
    Linux | linux) ;;
    *) fail 3 "no released stowaway binary for $os (Linux x86_64 and aarch64 only): use the container image, or set cargo-install-fallback to build from source" ;;
  esac
  case "$arch" in
    X64 | x86_64 | amd64) triple=x86_64-unknown-linux-gnu ;;
    ARM64 | aarch64 | arm64) triple=aarch64-unknown-linux-gnu ;;
    *) fail 3 "no released stowaway binary for Linux $arch (x86_64 and aarch64 only): set cargo-install-fallback to build from source" ;;
  esac
}

# version: the release to install, without its `v`.
release_version() {
  version="${STOWAWAY_INSTALL_VERSION:-}"
  if [ -z "$version" ]; then
    local manifest="$here/../../Cargo.toml"
    [ -f "$manifest" ] || fail 1 "no version given (STOWAWAY_INSTALL_VERSION) and no $manifest to read it from"
    version="$(sed -n 's/^version = "\([^"]*\)"$/\1/p' "$manifest" | head -n 1)"
  fi
  version="${version#v}"
  [[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$ ]] \
    || fail 1 "not a release version: '$version' (expected e.g. 0.1.0 or v0.1.0)"
}

# url: where the releases are, refused unless https (plain http only to a loopback test server).
release_url() {
  url="${STOWAWAY_RELEASE_URL:-}"
  if [ -z "$url" ]; then
    local repository="${STOWAWAY_REPOSITORY:-${GITHUB_ACTION_REPOSITORY:-}}"
    # GitHub unpacks `uses: OWNER/REPO@REF` into .../_actions/OWNER/REPO/REF, which names the
    # repository when the context does not (it can be empty inside composite actions); an
    # action used from its own repository (`uses: ./`) takes that repository's releases.
    if [ -z "$repository" ] && [[ "${GITHUB_ACTION_PATH:-}" =~ /_actions/([^/]+)/([^/]+)/[^/]+/?$ ]]; then
      repository="${BASH_REMATCH[1]}/${BASH_REMATCH[2]}"
    fi
    repository="${repository:-${GITHUB_REPOSITORY:-}}"
    [ -n "$repository" ] || fail 1 "no release URL: set STOWAWAY_RELEASE_URL or STOWAWAY_REPOSITORY (owner/name)"
    url="https://github.com/$repository/releases/download"
  fi
  url="${url%/}"
  case "$url" in
    https://*) ;;
    http://127.0.0.1:* | http://127.0.0.1/* | http://localhost:* | http://localhost/* | http://\[::1\]:* | http://\[::1\]/*) ;;
    *) fail 1 "release URL must be https (plain http only on a loopback address): $url" ;;
  esac
}

# download URL FILE: 0 when fetched, 3 when the server says 404, 1 otherwise.
download() {
  local url="$1" file="$2" proto=https status
  case "$url" in http://*) proto=http ;; esac
  if ! status="$(curl --silent --show-error --location --proto "=$proto" --proto-redir "=$proto" \
    --retry 3 --connect-timeout 20 --max-time 600 --output "$file" --write-out '%{http_code}' "$url")"; then
    fail 1 "could not download $url"
  fi
  case "$status" in
    200) ;;
    404) fail 3 "not found (HTTP 404): $url; is there a release v$version with an asset for this platform?" ;;
    *) fail 1 "HTTP $status from $url" ;;
  esac
}

sha256_of() {
  sha256sum "$1" | cut -d ' ' -f 1
}

target_triple
release_version
name="stowaway-$version-$triple"
asset="$name.tar.gz"
if [ "${1:-}" = asset ]; then
  echo "$asset"
  exit 0
fi
[ $# -eq 0 ] || fail 1 "unknown argument: $1 (usage: install.sh [asset])"
for tool in curl sha256sum tar; do
  command -v "$tool" >/dev/null 2>&1 || fail 1 "$tool is needed to install stowaway"
done

release_url
base="$url/v$version"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

download "$base/SHA256SUMS" "$work/SHA256SUMS"
download "$base/$asset" "$work/$asset"

# SHA256SUMS is `sha256sum` output: a digest, two spaces (or a space and `*`), a file name.
expected="$(awk -v asset="$asset" '{ file = $2; sub(/^\*/, "", file) } file == asset { print $1 }' "$work/SHA256SUMS")"
[ -n "$expected" ] || fail 1 "SHA256SUMS of v$version lists no $asset"
[ "$(wc -l <<<"$expected")" -eq 1 ] || fail 1 "SHA256SUMS of v$version lists $asset more than once"
[[ "$expected" =~ ^[0-9a-f]{64}$ ]] || fail 1 "SHA256SUMS of v$version has no SHA-256 for $asset: $expected"
actual="$(sha256_of "$work/$asset")"
if [ "$actual" != "$expected" ]; then
  fail 1 "checksum mismatch for $asset: SHA256SUMS says $expected, the download is $actual; not installing it"
fi
echo "stowaway install: $asset: sha256 $actual matches SHA256SUMS"

mkdir -p "$work/unpacked"
tar -xzf "$work/$asset" -C "$work/unpacked" "$name/stowaway" \
  || fail 1 "$asset does not hold $name/stowaway"
dir="${STOWAWAY_INSTALL_DIR:-${RUNNER_TEMP:-${TMPDIR:-/tmp}}/stowaway/bin}"
mkdir -p "$dir"
install -m 0755 "$work/unpacked/$name/stowaway" "$dir/stowaway"
if ! installed="$("$dir/stowaway" --version)"; then
  fail 1 "the installed $dir/stowaway does not run on this machine"
fi
echo "stowaway install: $dir/stowaway: $installed"

if [ -n "${GITHUB_OUTPUT:-}" ]; then
  {
    echo "path=$dir/stowaway"
    echo "version=$version"
  } >>"$GITHUB_OUTPUT"
fi
