#!/usr/bin/env bash
# False-positive corpus for stowaway: a container image made only of real content that nobody
# in this project wrote, to measure what the signatures report on it.
#
# What it builds
#   A docker-archive (the `docker save` legacy layout: manifest.json, <config hex>.json,
#   <layer hex>/layer.tar, uncompressed) with one layer per source tree:
#     1 rootfs   `debootstrap --variant=minbase bookworm` (http://deb.debian.org/debian), with
#                /var/cache/apt/archives/*.deb and device nodes left out, as in a real base image.
#                When debootstrap fails (no root, no chroot), the same package set (Priority:
#                required, as minbase takes it, plus apt) is fetched with `apt-get download` and
#                unpacked with `dpkg -x` instead (no maintainer scripts run then).
#     2 python   python3.11, python3.11-minimal, libpython3.11-stdlib, libpython3.11-minimal
#     3 perl     perl, perl-modules-5.36, libperl5.36
#     4 node     nodejs, libnode108, npm and every node-* / libjs-* package npm depends on,
#                recursively (a few hundred Debian packages: the whole Debian npm tree)
#     5 java     openjdk-17-jre-headless (jrt-fs.jar and ct.sym are zips: nested archives)
#     6 ssl-ssh  ca-certificates, openssh-client
#     7 wheels   requests, boto3, botocore, cryptography, django, paramiko (`pip download
#                --no-deps`, CPython 3.11 manylinux x86_64) unpacked into
#                /usr/local/lib/python3.11/dist-packages; requests, paramiko and botocore are
#                also kept as .whl files in /opt/wheels (zips inside the layer: nested-archive
#                scanning, which should report what it reports for the unpacked botocore).
#     8 docs     only with --docs: curl, manpages, systemd, python3-oauthlib, python3-jwt,
#                docker-registry, buildah, golang-github-containers-image - packages whose man
#                pages, docs and docstrings are full of example credentials (RFC 6749 tokens,
#                `curl -u user:password`, a WireGuard key in systemd.netdev(5), JWTs).
#   Debian packages are the newest version the configured deb.debian.org sources offer
#   (bookworm, bookworm-updates, bookworm-security; other repositories, such as a NodeSource
#   one, are ignored), fetched with `apt-get download` and unpacked with `dpkg -x` (no
#   maintainer scripts: files generated at install time, like /etc/ssl/certs or
#   the ssl-cert snakeoil key, are not there). Wheel versions are pinned below (WHEELS).
#   The exact package list and versions go to FP_DIR/packages.txt; layer sizes to
#   FP_DIR/image.json.
#
# Idempotent: every step leaves a stamp in FP_DIR and is skipped when it is there; downloads
# are cached (FP_DIR/debs, FP_DIR/wheels). The per-layer tars are deleted once the image is
# written. `--regenerate` drops the unpacked trees and the image (not the downloads) first.
#
# How to run (as root: debootstrap needs chroot; on a Debian bookworm host whose apt sources
# are deb.debian.org, with python3, pip and network access to deb.debian.org and PyPI)
#   bash benches/fp-corpus.sh                 # build the image if needed, then scan it
#   bash benches/fp-corpus.sh --generate-only # only build the image
#   bash benches/fp-corpus.sh --regenerate    # rebuild trees and image from the cached downloads
#   bash benches/fp-corpus.sh --docs          # add layer 8 (documentation-heavy packages); the
#                                             # image is rewritten when the layer set changes
#   Environment: FP_DIR (default target/fp-corpus under the repository), STOWAWAY (default
#   target/release/stowaway; built with `cargo build --release` when missing).
#   Disk: about 2.3 GB in FP_DIR at peak (downloads, trees, layer tars, image), 1.6 GB after.
#   Time: the first run downloads ~450 packages (~120 MB, a few minutes), later runs only
#   rescan (seconds).
#
# Output
#   FP_DIR/image.tar        the docker-archive
#   FP_DIR/findings.json    `stowaway scan --no-cache --format json --show-secrets --fail-on none`
#                           report (--no-cache: no layer result is reused, so the timing holds)
#   FP_DIR/packages.txt     every package (layer, name, version) in the image
#   FP_DIR/time.txt         /usr/bin/time -v of that scan (wall clock, peak RSS)
#   A summary (image size, findings by severity and rule, time, RSS) on standard output.

set -euo pipefail

usage() {
    sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'
}

REGENERATE=0
GENERATE_ONLY=0
DOCS=0
for arg in "$@"; do
    case "$arg" in
        --regenerate) REGENERATE=1 ;;
        --generate-only) GENERATE_ONLY=1 ;;
        --docs) DOCS=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "fp-corpus.sh: unknown argument: $arg (try --help)" >&2; exit 2 ;;
    esac
done

say() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'fp-corpus.sh: error: %s\n' "$*" >&2; exit 1; }

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
FP_DIR="${FP_DIR:-target/fp-corpus}"
mkdir -p "$FP_DIR"
FP_DIR="$(cd "$FP_DIR" && pwd)"
STOWAWAY="${STOWAWAY:-$REPO/target/release/stowaway}"
# Measure scans, not hits in the result cache (~/.cache/stowaway) of an earlier run.
export STOWAWAY_NO_CACHE=1
MIRROR="http://deb.debian.org/debian"
SUITE="bookworm"
WHEELS=(requests==2.34.2 boto3==1.44.5 botocore==1.44.5 cryptography==50.0.2 django==5.2.19
        paramiko==5.1.0)
KEEP_WHL=(requests paramiko botocore)

command -v python3 >/dev/null || die "python3 is required"
command -v apt-get >/dev/null || die "apt-get is required (a Debian or Ubuntu host)"
command -v dpkg >/dev/null || die "dpkg is required"

TREES="$FP_DIR/trees"
DEBS="$FP_DIR/debs"
WHLS="$FP_DIR/wheels"
mkdir -p "$TREES" "$DEBS" "$WHLS"

if [ "$REGENERATE" = 1 ]; then
    say "regenerate: dropping trees and image (downloads stay)"
    rm -rf "$TREES" "$FP_DIR/layers" "$FP_DIR/image.tar" "$FP_DIR"/*.stamp
    mkdir -p "$TREES"
fi

# Prints "PACKAGE VERSION" for each package: the newest version among the deb.debian.org
# sources (other repositories, e.g. NodeSource, are ignored). Fails when one has none.
debian_versions() {
    apt-cache madison "$@" 2>/dev/null | python3 -c '
import functools, subprocess, sys
wanted = sys.argv[1:]
found = {}
for line in sys.stdin:
    parts = [p.strip() for p in line.split(" | ")]
    if len(parts) == 3 and "deb.debian.org" in parts[2] and parts[2].endswith("Packages"):
        found.setdefault(parts[0], set()).add(parts[1])
def cmp(a, b):
    if a == b: return 0
    return -1 if subprocess.run(["dpkg", "--compare-versions", a, "lt", b]).returncode == 0 else 1
missing = [p for p in wanted if p not in found]
if missing:
    sys.exit("no version from deb.debian.org for: " + " ".join(missing) + " (run apt-get update)")
for p in wanted:
    print(p, max(found[p], key=functools.cmp_to_key(cmp)))' "$@"
}

# The cached .deb of PACKAGE VERSION (apt-get download names it PACKAGE_VERSION_ARCH.deb, with
# the epoch's ':' written %3a).
deb_file() {
    ls "$DEBS/${1}_${2//:/%3a}_"*.deb 2>/dev/null | head -1 || true
}

# Downloads (cached, one apt-get call) and unpacks a set of Debian packages into one tree.
# unpack_debs LAYER PKG...
unpack_debs() {
    local layer="$1"; shift
    local stamp="$FP_DIR/tree-$layer.stamp"
    [ -f "$stamp" ] && return 0
    say "layer $layer: $# packages"
    local dest="$TREES/$layer" list="$FP_DIR/packages-$layer.txt" pkg ver
    debian_versions "$@" | sed "s/^/$layer /" > "$list" || die "resolving versions failed"
    local fetch=()
    while read -r _ pkg ver; do
        [ -n "$(deb_file "$pkg" "$ver")" ] || fetch+=("$pkg=$ver")
    done < "$list"
    if [ "${#fetch[@]}" -gt 0 ]; then
        (cd "$DEBS" && apt-get download -q -o APT::Sandbox::User=root "${fetch[@]}" >/dev/null) \
            || die "apt-get download failed"
    fi
    rm -rf "$dest"; mkdir -p "$dest"
    while read -r _ pkg ver; do
        local file; file="$(deb_file "$pkg" "$ver")"
        [ -n "$file" ] || die "$pkg $ver: .deb missing after download"
        dpkg -x "$file" "$dest"
    done < "$list"
    touch "$stamp"
}

# --- 1 rootfs ---------------------------------------------------------------------------------
if [ ! -f "$FP_DIR/tree-rootfs.stamp" ]; then
    say "layer rootfs: debootstrap --variant=minbase $SUITE"
    rm -rf "$TREES/rootfs"
    : > "$FP_DIR/packages-rootfs.txt"
    if command -v debootstrap >/dev/null \
        && debootstrap --variant=minbase "$SUITE" "$TREES/rootfs" "$MIRROR" \
            > "$FP_DIR/debootstrap.log" 2>&1; then
        # The packages debootstrap installed, from the rootfs's own dpkg database.
        dpkg-query --admindir="$TREES/rootfs/var/lib/dpkg" -W -f='rootfs ${Package} ${Version}\n' \
            >> "$FP_DIR/packages-rootfs.txt"
        echo "debootstrap" > "$FP_DIR/rootfs-method.txt"
    else
        echo "debootstrap failed (see $FP_DIR/debootstrap.log); falling back to apt-get download + dpkg -x" >&2
        rm -rf "$TREES/rootfs"
        # minbase = Priority: required packages and apt, with their dependencies (alternatives
        # included, so a few more packages than debootstrap picks).
        mapfile -t required < <(
            apt-cache dumpavail | python3 -c '
import sys
pkg = pri = None
out = {"apt"}
for line in sys.stdin:
    line = line.rstrip("\n")
    if line.startswith("Package: "): pkg = line[9:]
    elif line.startswith("Priority: "): pri = line[10:]
    elif not line:
        if pkg and pri == "required": out.add(pkg)
        pkg = pri = None
if pkg and pri == "required": out.add(pkg)
print("\n".join(sorted(out)))')
        mapfile -t base < <(
            apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
                --no-replaces --no-enhances "${required[@]}" \
                | grep -E '^[a-z0-9][a-z0-9.+-]+$' | sort -u)
        rm -f "$FP_DIR/tree-rootfs.stamp"
        unpack_debs rootfs "${base[@]}"
        echo "apt-get download + dpkg -x" > "$FP_DIR/rootfs-method.txt"
    fi
    rm -f "$TREES/rootfs/var/cache/apt/archives/"*.deb
    touch "$FP_DIR/tree-rootfs.stamp"
fi

# --- 2..6 Debian package trees -----------------------------------------------------------------
unpack_debs python python3.11 python3.11-minimal libpython3.11-stdlib libpython3.11-minimal
unpack_debs perl perl perl-modules-5.36 libperl5.36
if [ ! -f "$FP_DIR/tree-node.stamp" ]; then
    mapfile -t node_pkgs < <(
        { printf 'nodejs\nlibnode108\nnpm\n'
          apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
              --no-replaces --no-enhances --no-pre-depends npm \
              | grep -E '^(node-|libjs-)[a-z0-9.+-]+$' || true
        } | sort -u)
    unpack_debs node "${node_pkgs[@]}"
fi
unpack_debs java openjdk-17-jre-headless
unpack_debs ssl-ssh ca-certificates openssh-client

# --- 7 Python wheels ---------------------------------------------------------------------------
if [ ! -f "$FP_DIR/tree-wheels.stamp" ]; then
    say "layer wheels: ${WHEELS[*]}"
    command -v pip3 >/dev/null || command -v pip >/dev/null || die "pip is required"
    PIP="$(command -v pip3 || command -v pip)"
    "$PIP" download -q --no-deps --only-binary=:all: --python-version 3.11 \
        --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 --platform any \
        -d "$WHLS" "${WHEELS[@]}"
    rm -rf "$TREES/wheels"
    site="$TREES/wheels/usr/local/lib/python3.11/dist-packages"
    mkdir -p "$site" "$TREES/wheels/opt/wheels"
    : > "$FP_DIR/packages-wheels.txt"
    for spec in "${WHEELS[@]}"; do
        name="${spec%%==*}"; ver="${spec#*==}"
        whl="$(ls "$WHLS/${name}-${ver}-"*.whl | head -1)"
        python3 -m zipfile -e "$whl" "$site"
        for keep in "${KEEP_WHL[@]}"; do
            [ "$keep" = "$name" ] && cp "$whl" "$TREES/wheels/opt/wheels/"
        done
        printf 'wheels %s %s %s\n' "$name" "$ver" "$(basename "$whl")" >> "$FP_DIR/packages-wheels.txt"
    done
    touch "$FP_DIR/tree-wheels.stamp"
fi

LAYER_NAMES=(rootfs python perl node java ssl-ssh wheels)
# --- 8 (--docs) documentation-heavy packages ---------------------------------------------------
if [ "$DOCS" = 1 ]; then
    unpack_debs docs curl manpages systemd python3-oauthlib python3-jwt docker-registry buildah \
        golang-github-containers-image
    LAYER_NAMES+=(docs)
fi

for layer in "${LAYER_NAMES[@]}"; do cat "$FP_DIR/packages-$layer.txt"; done > "$FP_DIR/packages.txt"

# --- the docker-archive ------------------------------------------------------------------------
if [ ! -f "$FP_DIR/image.tar" ] || [ "$(cat "$FP_DIR/image.stamp" 2>/dev/null)" != "${LAYER_NAMES[*]}" ]; then
    say "writing $FP_DIR/image.tar (layers: ${LAYER_NAMES[*]})"
    python3 - "$FP_DIR" "${LAYER_NAMES[@]}" <<'PY'
import hashlib, json, os, stat, sys, tarfile

fp_dir = sys.argv[1]
trees = os.path.join(fp_dir, "trees")
layers_dir = os.path.join(fp_dir, "layers")
os.makedirs(layers_dir, exist_ok=True)
CREATED_BY = dict([
    ("rootfs", "debootstrap --variant=minbase bookworm"),
    ("python", "dpkg -x python3.11 python3.11-minimal libpython3.11-stdlib libpython3.11-minimal"),
    ("perl", "dpkg -x perl perl-modules-5.36 libperl5.36"),
    ("node", "dpkg -x nodejs libnode108 npm node-* libjs-* (npm's dependencies)"),
    ("java", "dpkg -x openjdk-17-jre-headless"),
    ("ssl-ssh", "dpkg -x ca-certificates openssh-client"),
    ("wheels", "pip download --no-deps requests boto3 botocore cryptography django paramiko; unzip"),
    ("docs", "dpkg -x curl manpages systemd python3-oauthlib python3-jwt docker-registry buildah "
             "golang-github-containers-image"),
])
LAYERS = [(name, CREATED_BY[name]) for name in sys.argv[2:]]
# Kernel-provided and device directories: kept, but empty (as in real image layers).
EMPTY_IN_ROOTFS = {"dev", "proc", "sys", "run"}

def add_tree(tar, root, empty_dirs):
    """Adds everything under root (sorted; symlinks not followed). Top-level directories named
    in empty_dirs are added empty; devices, fifos and sockets are skipped."""
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            arc = os.path.normpath(os.path.join(rel_dir, name))
            st = os.lstat(full)
            if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode) or stat.S_ISLNK(st.st_mode)):
                continue
            info = tar.gettarinfo(full, arcname=arc)
            info.uname = info.gname = ""
            if info.isreg():
                with open(full, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
        if rel_dir == ".":
            dirnames[:] = [d for d in dirnames if d not in empty_dirs]
        dirnames.sort()

diff_ids, history, summary = [], [], []
for name, created_by in LAYERS:
    path = os.path.join(layers_dir, name + ".tar")
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        add_tree(tar, os.path.join(trees, name), EMPTY_IN_ROOTFS if name == "rootfs" else set())
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    diff_ids.append("sha256:" + h.hexdigest())
    history.append({"created": "2024-01-01T00:00:00Z", "created_by": created_by,
                    "comment": "stowaway fp-corpus layer " + name})
    size = os.path.getsize(path)
    summary.append({"layer": name, "diff_id": diff_ids[-1], "bytes": size})
    print(f"  layer {name:8} {size / 1e6:9.1f} MB", file=sys.stderr)

config = {
    "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
    "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
               "Cmd": ["/bin/bash"]},
    "rootfs": {"type": "layers", "diff_ids": diff_ids},
    "history": history,
}
config_bytes = json.dumps(config, indent=1, sort_keys=True).encode()
config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
layer_names = [d.split(":")[1] + "/layer.tar" for d in diff_ids]
manifest = [{"Config": config_name, "RepoTags": ["stowaway-fp-corpus:latest"], "Layers": layer_names}]

import io
tmp = os.path.join(fp_dir, "image.tar.tmp")
with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as out:
    def add_bytes(arc, data):
        info = tarfile.TarInfo(arc); info.size = len(data); info.mtime = 1704067200; info.mode = 0o644
        out.addfile(info, io.BytesIO(data))
    add_bytes(config_name, config_bytes)
    for (name, _), arc in zip(LAYERS, layer_names):
        out.add(os.path.join(layers_dir, name + ".tar"), arcname=arc)
    add_bytes("manifest.json", json.dumps(manifest).encode())
os.replace(tmp, os.path.join(fp_dir, "image.tar"))
total = os.path.getsize(os.path.join(fp_dir, "image.tar"))
with open(os.path.join(fp_dir, "image.json"), "w") as f:
    json.dump({"image_bytes": total, "layers": summary}, f, indent=1)
print(f"  image {total / 1e6:.1f} MB", file=sys.stderr)
PY
    rm -rf "$FP_DIR/layers"
    echo "${LAYER_NAMES[*]}" > "$FP_DIR/image.stamp"
fi

[ "$GENERATE_ONLY" = 1 ] && { echo "$FP_DIR/image.tar"; exit 0; }

# --- scan ---------------------------------------------------------------------------------------
if [ ! -x "$STOWAWAY" ]; then
    say "cargo build --release"
    cargo build --release
fi
command -v /usr/bin/time >/dev/null || die "/usr/bin/time is required (apt-get install time)"
say "scanning (--no-cache: every layer is scanned, and the timing means something)"
/usr/bin/time -v -o "$FP_DIR/time.txt" "$STOWAWAY" scan --no-cache --format json --show-secrets \
    --fail-on none -o "$FP_DIR/findings.json" "docker-archive:$FP_DIR/image.tar"

python3 - "$FP_DIR" <<'PY'
import collections, json, os, re, sys
fp_dir = sys.argv[1]
image = json.load(open(os.path.join(fp_dir, "image.json")))
report = json.load(open(os.path.join(fp_dir, "findings.json")))
findings = [f for im in report["images"] for f in im["findings"]]
time_txt = open(os.path.join(fp_dir, "time.txt")).read()
wall = re.search(r"Elapsed \(wall clock\) time.*: (\S+)", time_txt).group(1)
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", time_txt).group(1))
user = float(re.search(r"User time \(seconds\): (\S+)", time_txt).group(1))
names = [l["layer"] for l in image["layers"]]
print(f"image: {image['image_bytes'] / 1e6:.1f} MB in {len(names)} layers")
for layer in image["layers"]:
    print(f"  {layer['layer']:8} {layer['bytes'] / 1e6:9.1f} MB")
print(f"scan: wall {wall}, user CPU {user:.1f} s, peak RSS {rss / 1024:.0f} MB")
ORDER = ["critical", "high", "medium", "low", "info"]
by_sev = collections.Counter(f["severity"] for f in findings)
print("findings by severity: " + ", ".join(f"{s} {by_sev.get(s, 0)}" for s in ORDER))
by_rule = collections.Counter((f["severity"], f["rule_id"]) for f in findings)
for (sev, rule), n in sorted(by_rule.items(), key=lambda kv: (ORDER.index(kv[0][0]), kv[0][1])):
    print(f"  {n:5}  {sev:8} {rule}")
print("findings at low or above (info: see findings.json):")
for f in sorted(findings, key=lambda f: (ORDER.index(f["severity"]), f["rule_id"], f["location"].get("path") or "")):
    if f["severity"] == "info":
        continue
    loc = f["location"]
    where = loc.get("path") or loc.get("field") or "?"
    if f["location"].get("archive_path"):
        where += "!" + "!".join(loc["archive_path"])
    layer = loc.get("layer_index")
    layer = names[layer] if isinstance(layer, int) and layer < len(names) else "config"
    secret = (f.get("secret") or "").replace("\n", " ")
    print(f"  {f['severity']:8} {f['rule_id']:28} [{layer}] {where}:{loc.get('line')}  {secret[:48]!r}")
PY
