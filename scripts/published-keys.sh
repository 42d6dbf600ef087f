#!/usr/bin/env bash
# Regenerates signatures/published-keys.tsv: fingerprints (never the keys) of the private keys
# and credentials that widely used public packages ship, with where each was seen.
#
# It downloads the packages below with the ordinary package managers (Debian's apt-get
# download + dpkg-deb -x, pip download, npm pack), unpacks them into a scratch directory and
# runs `cargo run --release --example published_keys` over each package's tree: the example
# scans every file with stowaway's own detector and prints one line per key or credential it
# finds (sha256 of the canonical form; see src/detect/published.rs).
#
#   scripts/published-keys.sh [WORKDIR]    # WORKDIR keeps the downloads between runs
#
# Needs: apt-get (with `apt-get update` done), dpkg-deb, pip, npm, cargo.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d)}
mkdir -p "$work"/{deb,pypi,npm,trees}
out="$root/signatures/published-keys.tsv"

# Debian bookworm: libraries with built-in self-test keys, language test suites, TLS/SSH
# libraries and their test data, Go's sources (the same files the Go release tarball installs).
DEBIAN=(
  libgnutls30 libpython3.11-testsuite python3-twisted python3-tornado python3-gevent
  python3-pyftpdlib libio-socket-ssl-perl libnet-ssleay-perl ruby-net-ssh ruby-httpclient
  libruby3.1 php-phpseclib php-phpseclib3 libcurl4-openssl-dev git openssh-tests erlang-ssl
  libssl-doc golang-1.19-src
)
# PyPI wheels as `pip install` puts them in site-packages.
PYPI=(
  twisted tornado gevent pyftpdlib paramiko cryptography-vectors moto botocore eventlet
  requests cheroot aiohttp grpcio scapy pyopenssl urllib3 httplib2 ldap3 websocket-client
)
# npm tarballs as `npm install` puts them in node_modules.
NPM=(
  node-forge ssh2 sshpk smtp-server browser-sync selfsigned webpack-dev-server@3 mockttp
  http-proxy request nodemailer mqtt ldapjs pem tedious mysql2 ws socket.io express jsonwebtoken
)

unpack_deb() {
  local pkg=$1 deb
  deb=$(ls "$work"/deb/"${pkg}"_*.deb 2>/dev/null | head -1 || true)
  if [ -z "$deb" ]; then
    (cd "$work/deb" && apt-get download "$pkg" >/dev/null 2>&1) || { echo "skip deb $pkg: not downloadable" >&2; return; }
    deb=$(ls "$work"/deb/"${pkg}"_*.deb | head -1)
  fi
  local version tree="$work/trees/deb-$pkg"
  version=$(dpkg-deb -f "$deb" Version)
  [ -d "$tree" ] || { mkdir -p "$tree" && dpkg-deb -x "$deb" "$tree"; }
  echo "debian	$pkg	$version	$tree" >>"$work/sources.tsv"
}

unpack_pypi() {
  local pkg=$1 file
  file=$(ls "$work"/pypi/ 2>/dev/null | grep -i "^$(echo "$pkg" | tr - _)-" | head -1 || true)
  if [ -z "$file" ]; then
    # A wheel where there is one; else the source distribution `pip install` would build.
    pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
      --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform any \
      -d "$work/pypi" "$pkg" >/dev/null 2>&1 ||
      pip download --quiet --no-deps --no-binary=:all: -d "$work/pypi" "$pkg" >/dev/null 2>&1 ||
      { echo "skip pypi $pkg: not downloadable" >&2; return; }
    file=$(ls "$work"/pypi/ | grep -i "^$(echo "$pkg" | tr - _)-" | head -1)
  fi
  local version tree="$work/trees/pypi-$pkg"
  version=$(echo "$file" | cut -d- -f2); version=${version%.tar.gz}
  if [ ! -d "$tree" ]; then
    mkdir -p "$tree"
    case "$file" in
      *.whl) python3 -m zipfile -e "$work/pypi/$file" "$tree" ;;
      *) tar -xzf "$work/pypi/$file" -C "$tree" ;;
    esac
  fi
  echo "pypi	$pkg	$version	$tree" >>"$work/sources.tsv"
}

unpack_npm() {
  local spec=$1 name=${1%@*} file
  name=${name:-$1}
  local base=${name//\//-}; base=${base#@}
  file=$(ls "$work"/npm/ 2>/dev/null | grep "^${base}-[0-9]" | head -1 || true)
  if [ -z "$file" ]; then
    (cd "$work/npm" && npm pack --silent "$spec" >/dev/null 2>&1) || { echo "skip npm $spec" >&2; return; }
    file=$(ls "$work"/npm/ | grep "^${base}-[0-9]" | head -1)
  fi
  local version tree="$work/trees/npm-$base"
  version=${file#"${base}"-}; version=${version%.tgz}
  [ -d "$tree" ] || { mkdir -p "$tree" && tar -xzf "$work/npm/$file" -C "$tree"; }
  echo "npm	$name	$version	$tree" >>"$work/sources.tsv"
}

: >"$work/sources.tsv"
for pkg in "${DEBIAN[@]}"; do unpack_deb "$pkg"; done
for pkg in "${PYPI[@]}"; do unpack_pypi "$pkg"; done
for pkg in "${NPM[@]}"; do unpack_npm "$pkg"; done

if [ "${DOWNLOAD_ONLY:-}" = 1 ]; then
  echo "downloaded into $work" >&2
  exit 0
fi
cd "$root"
cargo run --quiet --release --example published_keys -- "$work/sources.tsv" >"$out.new"
mv "$out.new" "$out"
echo "$(grep -vc '^#' "$out") fingerprints written to $out" >&2
