#!/usr/bin/env bash
# Precision corpus for stowaway (issue 11): images built the way real images are built, from
# real packages that a package manager really installs, nothing planted. Every finding at
# medium or above on them is a false positive by the issue's definition (content a package
# manager installed unmodified, or key material published in public packages).
#
# What it builds
#   Four build steps, each run as a Dockerfile RUN runs under Docker's overlay2 driver: the step
#   runs (chroot) in an overlayfs whose lower directories are the earlier steps and whose upper
#   directory is new; that upper directory is the step's layer - the real filesystem diff of the
#   step (new and changed files, with the parent directories of everything changed; a deleted
#   path becomes an `.wh.<name>` whiteout, an emptied-and-refilled directory an `.wh..wh..opq`).
#     1 base  `debootstrap --variant=minbase bookworm` from deb.debian.org, then what the
#             official image's build does to it: apt caches and lists emptied, no .debs kept;
#             /usr/sbin/policy-rc.d (exit 101) so that no service starts inside the build.
#     2 apt   apt-get update && apt-get install -y --no-install-recommends APT_PKGS (below:
#             Python with its test suite, Twisted, Tornado, Ruby, PHP, Perl's SSL modules, Go
#             with its sources, curl, git, OpenSSH client and server, OpenSSL, GnuTLS, CA
#             certificates, Node.js and Debian's npm) && rm -rf /var/lib/apt/lists/*. Maintainer
#             scripts run, so var/lib/dpkg/status, info/*.list and info/*.md5sums exist and
#             /etc/ssl/certs is generated. The SSH host keys that openssh-server's postinst
#             generates are removed in the same step, as a careful Dockerfile does: they are real
#             private keys of this one image, which stowaway rightly reports when left in.
#     3 pip   pip install --break-system-packages PIP_PKGS (boto3, botocore, requests,
#             cryptography, paramiko, django, flask, PyJWT, oauthlib, google-auth, azure SDK
#             pieces, moto, twisted, ...) into /usr/local/lib/python3.11/dist-packages, so every
#             distribution has its *.dist-info/RECORD. The pins are newer than Debian's
#             python3-* packages of step 2, so pip installs its own copies beside them. The
#             wheels come from a wheelhouse in the cache that `pip download` fills first.
#     4 npm   cd /app && npm init -y && npm install NPM_PKGS (node-forge, ssh2, jsonwebtoken,
#             aws-sdk, googleapis, stripe, express, axios, ...) into /app/node_modules.
#   Download caches are mounted outside the layers (as BuildKit cache mounts are), so no .deb,
#   wheel or npm tarball ends up in an image. Versions: Debian's are what bookworm,
#   bookworm-updates and bookworm-security offer on the day of the build; PyPI and npm top-level
#   packages are pinned below, their dependencies resolved on the day. The exact list of
#   everything installed is written to PC_DIR/packages.txt.
#
#   Two docker-archives (`docker save` legacy layout, uncompressed layers):
#     PC_DIR/base.tar   layer 1 only: the Debian base image
#     PC_DIR/image.tar  layers 1-4
#
# Then it scans both (`stowaway scan --no-cache --format json --show-secrets`) under
# /usr/bin/time -v and prints a summary: findings by severity, every finding at medium or above
# (rule, path, layer), the same grouped by rule and by package area, info findings grouped by
# provenance (manager/package, when the report carries a `provenance` object) with counts, the
# certificates inventory count when the report has one, scan wall time and peak RSS; for the
# base image, whether it exits 0 with the default gate (--fail-on low) and its findings.
#
# Idempotent: each build step leaves a stamp in PC_DIR and is skipped when it is there; the
# debootstrap, apt, pip and npm downloads are cached in PC_DIR/cache. `--regenerate` rebuilds the
# layers and images from the caches (a new `apt-get update` and dependency resolution included).
#
# How to run (as root on a Debian bookworm host: debootstrap, chroot and overlayfs mounts are
# needed; network access to deb.debian.org, pypi.org and registry.npmjs.org)
#   bash benches/precision-corpus.sh                  # build what is missing, scan, summarise
#   bash benches/precision-corpus.sh --generate-only  # only build the images
#   bash benches/precision-corpus.sh --scan-only      # only scan (the images must exist)
#   bash benches/precision-corpus.sh --regenerate     # rebuild layers and images, then scan
#   Environment: PC_DIR (default target/precision-corpus under the repository; point it at
#   another checkout's directory to reuse its images), STOWAWAY (default
#   target/release/stowaway, built with `cargo build --release` when missing), HOST_CA (CA
#   bundle pip and npm trust during the build, mounted outside the layers; default the host's
#   /etc/ssl/certs/ca-certificates.crt, so a TLS-inspecting proxy works), OUT_DIR (where
#   the reports go; default PC_DIR) - e.g. to measure a branch against the same images:
#     PC_DIR=/work/main/target/precision-corpus OUT_DIR=target/pc-reports \
#       bash benches/precision-corpus.sh --scan-only
#   Disk: about 5 GB in PC_DIR (caches 0.4 GB, layer trees 2.2 GB, the two images 2.3 GB).
#   Time: the first build downloads ~0.4 GB and takes 10-25 minutes on 2 cores (debootstrap
#   ~2 min, apt ~5 min, pip 1-10 min, npm ~1 min, writing the images ~5 min); later runs only
#   scan (the full image: a few minutes).
#   Layers: full image ~930 packages (~590 Debian, ~77 PyPI, ~260 npm), 2.2 GB, ~100k files.
#
# Output (in OUT_DIR)
#   findings.json, base-findings.json   the JSON reports (secrets shown in full: public keys of
#                                       public packages, but keep the files to yourself anyway)
#   time.txt, base-time.txt             /usr/bin/time -v of each scan
#   summary.txt                         the summary printed on standard output
# and in PC_DIR: packages.txt ("manager name version" for every package), debian-packages.txt
# (dpkg-query), pip-freeze.txt, npm-ls.txt (npm ls --all), image.json (layers and sizes).

set -euo pipefail

usage() {
    sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'
}

REGENERATE=0
GENERATE_ONLY=0
SCAN_ONLY=0
for arg in "$@"; do
    case "$arg" in
        --regenerate) REGENERATE=1 ;;
        --generate-only) GENERATE_ONLY=1 ;;
        --scan-only) SCAN_ONLY=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "precision-corpus.sh: unknown argument: $arg (try --help)" >&2; exit 2 ;;
    esac
done

say() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'precision-corpus.sh: error: %s\n' "$*" >&2; exit 1; }

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
PC_DIR="${PC_DIR:-target/precision-corpus}"
mkdir -p "$PC_DIR"
PC_DIR="$(cd "$PC_DIR" && pwd)"
OUT_DIR="${OUT_DIR:-$PC_DIR}"
mkdir -p "$OUT_DIR"
OUT_DIR="$(cd "$OUT_DIR" && pwd)"
STOWAWAY="${STOWAWAY:-$REPO/target/release/stowaway}"
export STOWAWAY_NO_CACHE=1
MIRROR="http://deb.debian.org/debian"
SUITE="bookworm"
HOST_CA="${HOST_CA:-/etc/ssl/certs/ca-certificates.crt}"

# Debian packages that ship test keys, example credentials, compiled-in keys and certificates.
APT_PKGS=(
    python3 python3-pip python3-venv libpython3.11-testsuite python3-twisted python3-tornado
    python3-paramiko python3-jwt python3-oauthlib python3-requests
    ruby php-cli libio-socket-ssl-perl libnet-ssleay-perl
    golang-go golang-1.19-src
    curl wget git gnupg openssh-client openssh-server ca-certificates libgnutls30 openssl
    nodejs npm
)
# PyPI: popular packages, SDKs with example credentials and mocks, TLS/SSH libraries.
PIP_PKGS=(
    boto3==1.44.8 botocore==1.44.8 requests==2.34.2 urllib3==2.8.0 cryptography==50.0.2
    pyopenssl==26.4.0 paramiko==5.1.0 django==5.2.19 flask==3.1.3 pyjwt==2.15.1 oauthlib==4.0.1
    requests-oauthlib==2.0.0 google-auth==2.63.0 google-cloud-storage==3.17.1
    azure-identity==1.27.0 azure-storage-blob==12.31.1 azure-keyvault-secrets==4.12.0
    moto==5.2.5 twisted==26.10.0 httpx==0.29.0 aiohttp==3.14.5 sqlalchemy==2.1.9
    psycopg2-binary==2.9.13 redis==8.1.0 kubernetes==37.0.1
)
# npm: popular packages, cloud SDKs, JWT/TLS/SSH libraries with test suites.
NPM_PKGS=(
    node-forge@1.4.4 ssh2@1.17.0 jsonwebtoken@9.0.3 jws@4.0.1 aws-sdk@2.1693.0
    @aws-sdk/client-s3@3.1178.0 googleapis@188.0.0 stripe@23.2.0 express@5.3.0 axios@1.21.1
    lodash@4.18.1 mongoose@9.12.2 pg@8.23.1 mysql2@3.24.6 redis@6.4.0 passport@0.7.0
    passport-jwt@4.0.1 bcryptjs@3.0.3 dotenv@18.0.10 firebase-admin@14.5.1 twilio@6.3.1
    nodemailer@10.6.1
)

BUILD="$PC_DIR/build"      # layer trees: 1-base is a plain tree, 2..4 are overlay upper dirs
CACHE="$PC_DIR/cache"
MERGED="$PC_DIR/merged"
STEPS=(1-base 2-apt 3-pip 4-npm)

# --- mounts -------------------------------------------------------------------------------------
MOUNTS=()
unmount_all() {
    local i
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
        umount "${MOUNTS[$i]}" 2>/dev/null || umount -l "${MOUNTS[$i]}" 2>/dev/null || true
    done
    MOUNTS=()
}
trap unmount_all EXIT
mnt() { # mnt TARGET MOUNT-ARGS...
    local target="$1"; shift
    mount "$@" "$target" || die "mount $* $target failed"
    MOUNTS+=("$target")
}

# Runs the shell command $2 as build step $1: an overlay over the earlier steps, the step's own
# upper directory, the download caches, /proc, /dev and the host's resolv.conf mounted (none of
# them ends up in the layer, as with `docker build`).
run_step() {
    local step="$1" script="$2"
    local upper="$BUILD/$step" work="$PC_DIR/overlay-work" lower="" s
    for s in "${STEPS[@]}"; do
        [ "$s" = "$step" ] && break
        lower="$BUILD/$s${lower:+:$lower}"
    done
    rm -rf "$upper" "$work"; mkdir -p "$upper" "$work" "$MERGED" "$CACHE/apt" "$CACHE/pip" "$CACHE/npm"
    local opts="lowerdir=$lower,upperdir=$upper,workdir=$work"
    # metacopy would leave metadata-only copies in the upper directory; redirect_dir would
    # record directory renames as xattrs. Docker's overlay2 turns both off; so do we.
    mount -t overlay overlay -o "$opts,metacopy=off,redirect_dir=off" "$MERGED" 2>/dev/null \
        || mount -t overlay overlay -o "$opts" "$MERGED" || die "overlayfs mount failed (root needed)"
    MOUNTS+=("$MERGED")
    mnt "$MERGED/proc" -t proc proc
    mnt "$MERGED/dev" --bind /dev
    mnt "$MERGED/etc/resolv.conf" --bind /etc/resolv.conf
    mnt "$MERGED/var/cache/apt/archives" --bind "$CACHE/apt"
    mnt "$MERGED/mnt" -t tmpfs tmpfs
    mkdir -p "$MERGED/mnt/pip" "$MERGED/mnt/npm"
    # The host's CA bundle, for pip and npm only (a TLS-inspecting proxy's root, if the host
    # has one); the image's own /etc/ssl/certs is not touched.
    touch "$MERGED/mnt/host-ca.crt"
    mnt "$MERGED/mnt/host-ca.crt" --bind "$HOST_CA"
    mnt "$MERGED/mnt/pip" --bind "$CACHE/pip"
    mnt "$MERGED/mnt/npm" --bind "$CACHE/npm"
    say "step $step: $script"
    env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive PIP_CACHE_DIR=/mnt/pip \
        PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PIP_CERT=/mnt/host-ca.crt \
        npm_config_cafile=/mnt/host-ca.crt npm_config_cache=/mnt/npm \
        npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false \
        chroot "$MERGED" /bin/sh -euxc "$script" > "$PC_DIR/$step.log" 2>&1 \
        || { tail -30 "$PC_DIR/$step.log" >&2; unmount_all; die "step $step failed (log: $PC_DIR/$step.log)"; }
}

# step_needed STEP CMD: true when STEP must run - no stamp, a stamp from another command (the
# package list changed), or an earlier step ran in this invocation (its layer is new).
RAN_STEP=0
step_needed() {
    local stamp="$PC_DIR/$1.stamp"
    [ "$RAN_STEP" = 1 ] || [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$2" ]
}
step_done() { # step_done STEP CMD
    printf '%s' "$2" > "$PC_DIR/$1.stamp"; RAN_STEP=1
    rm -f "$PC_DIR/packages.stamp" "$PC_DIR/images.stamp"
}

# Runs a command in the merged tree of all steps (read-only use: package listings).
in_image() {
    env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
        npm_config_update_notifier=false chroot "$MERGED" /bin/sh -c "$1"
}

if [ "$REGENERATE" = 1 ]; then
    say "regenerate: dropping layer trees and images (caches stay)"
    rm -rf "$BUILD" "$PC_DIR"/*.stamp "$PC_DIR/base.tar" "$PC_DIR/image.tar"
fi
mkdir -p "$BUILD" "$CACHE"

if [ "$SCAN_ONLY" = 0 ]; then
    [ "$(id -u)" = 0 ] || die "building the images needs root (debootstrap, chroot, overlayfs)"
    command -v debootstrap >/dev/null || die "debootstrap is required (apt-get install debootstrap)"
    command -v python3 >/dev/null || die "python3 is required"

    # --- 1 base ---------------------------------------------------------------------------------
    BASE_CMD="debootstrap --variant=minbase $SUITE $MIRROR"
    if step_needed 1-base "$BASE_CMD"; then
        say "step 1-base: debootstrap --variant=minbase $SUITE"
        rm -rf "$BUILD/1-base"; mkdir -p "$CACHE/debootstrap"
        debootstrap --variant=minbase --cache-dir="$CACHE/debootstrap" "$SUITE" "$BUILD/1-base" \
            "$MIRROR" > "$PC_DIR/1-base.log" 2>&1 \
            || { tail -20 "$PC_DIR/1-base.log" >&2; die "debootstrap failed (log: $PC_DIR/1-base.log)"; }
        root="$BUILD/1-base"
        cat > "$root/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb http://deb.debian.org/debian-security $SUITE-security main
EOF
        # What the official image's build does after debootstrap: no caches, lists or .debs;
        # resolv.conf and hostname come from the runtime.
        rm -rf "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
            "$root"/var/lib/apt/lists/* "$root"/var/log/bootstrap.log
        mkdir -p "$root/var/lib/apt/lists/partial"
        : > "$root/etc/resolv.conf"; : > "$root/etc/hostname"
        printf '#!/bin/sh\n# no service starts during an image build\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
        chmod 755 "$root/usr/sbin/policy-rc.d"
        # Device nodes come from the runtime; proc, sys and run are mount points.
        find "$root/dev" "$root/proc" "$root/sys" "$root/run" -mindepth 1 -delete 2>/dev/null || true
        step_done 1-base "$BASE_CMD"
    fi

    # --- 2 apt ----------------------------------------------------------------------------------
    APT_CMD="apt-get update
apt-get install -y --no-install-recommends ${APT_PKGS[*]}
rm -f /etc/ssh/ssh_host_*
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin"
    if step_needed 2-apt "$APT_CMD"; then
        run_step 2-apt "$APT_CMD"
        unmount_all; step_done 2-apt "$APT_CMD"
    fi

    # --- 3 pip ----------------------------------------------------------------------------------
    # pip's own HTTP cache stays empty behind some proxies (caching headers), so the wheels are
    # fetched into a wheelhouse outside the layers (`pip download` reuses what is there) and
    # installed from it.
    PIP_CMD="pip download -q -d /mnt/pip/wheels ${PIP_PKGS[*]}
pip install --break-system-packages --no-index --find-links /mnt/pip/wheels ${PIP_PKGS[*]}"
    if step_needed 3-pip "$PIP_CMD"; then
        run_step 3-pip "$PIP_CMD"
        unmount_all; step_done 3-pip "$PIP_CMD"
    fi

    # --- 4 npm ----------------------------------------------------------------------------------
    NPM_CMD="mkdir -p /app && cd /app && npm init -y >/dev/null && npm install --no-fund --no-audit ${NPM_PKGS[*]}"
    if step_needed 4-npm "$NPM_CMD"; then
        run_step 4-npm "$NPM_CMD"
        unmount_all; step_done 4-npm "$NPM_CMD"
    fi

    # --- package lists --------------------------------------------------------------------------
    if [ ! -f "$PC_DIR/packages.stamp" ]; then
        say "package lists"
        lower=""; for s in "${STEPS[@]}"; do lower="$BUILD/$s${lower:+:$lower}"; done
        mkdir -p "$MERGED"
        mount -t overlay overlay -o "lowerdir=$lower" "$MERGED" || die "read-only overlay mount failed"
        MOUNTS+=("$MERGED")
        mnt "$MERGED/proc" -t proc proc
        in_image "dpkg-query -W -f='\${Package} \${Version}\n'" > "$PC_DIR/debian-packages.txt"
        in_image "pip freeze --path /usr/local/lib/python3.11/dist-packages" > "$PC_DIR/pip-freeze.txt"
        in_image "cd /app && npm ls --all" > "$PC_DIR/npm-ls.txt" || true
        in_image "cd /app && npm ls --all --parseable --long" > "$PC_DIR/npm-ls-long.txt" || true
        unmount_all
        python3 - "$PC_DIR" "$BUILD/1-base/var/lib/dpkg/status" <<'PY'
import os, re, sys
pc, base_status = sys.argv[1], sys.argv[2]
base = set(re.findall(r"^Package: (\S+)", open(base_status).read(), re.M))
out = []
for line in open(os.path.join(pc, "debian-packages.txt")):
    name, ver = line.split()
    out.append(("dpkg-base" if name in base else "dpkg", name, ver))
for line in open(os.path.join(pc, "pip-freeze.txt")):
    if "==" in line:
        name, ver = line.strip().split("==", 1)
        out.append(("pip", name, ver))
seen = set()
for line in open(os.path.join(pc, "npm-ls-long.txt")):
    # /app/node_modules/x:name@version:...
    parts = line.strip().split(":")
    if len(parts) >= 2 and "/node_modules/" in parts[0] and "@" in parts[1][1:]:
        name, ver = parts[1].rsplit("@", 1)
        if (name, ver) not in seen:
            seen.add((name, ver)); out.append(("npm", name, ver))
with open(os.path.join(pc, "packages.txt"), "w") as f:
    for m, n, v in sorted(out):
        f.write(f"{m} {n} {v}\n")
PY
        touch "$PC_DIR/packages.stamp"
    fi

    # --- the images -----------------------------------------------------------------------------
    if [ ! -f "$PC_DIR/images.stamp" ] || [ ! -f "$PC_DIR/image.tar" ] || [ ! -f "$PC_DIR/base.tar" ]; then
        say "writing $PC_DIR/base.tar and $PC_DIR/image.tar"
        python3 - "$PC_DIR" "${APT_PKGS[*]}" "${PIP_PKGS[*]}" "${NPM_PKGS[*]}" <<'PY'
import hashlib, io, json, os, stat, sys, tarfile

pc, apt_pkgs, pip_pkgs, npm_pkgs = sys.argv[1:5]
build = os.path.join(pc, "build")
layers_dir = os.path.join(pc, "layers")
os.makedirs(layers_dir, exist_ok=True)
STEPS = [
    ("1-base", "debootstrap --variant=minbase bookworm http://deb.debian.org/debian"),
    ("2-apt", "RUN apt-get update && apt-get install -y --no-install-recommends " + apt_pkgs
              + " && rm -f /etc/ssh/ssh_host_* && rm -rf /var/lib/apt/lists/*"),
    ("3-pip", "RUN pip install --break-system-packages --no-index --find-links /wheels " + pip_pkgs),
    ("4-npm", "WORKDIR /app; RUN npm init -y && npm install " + npm_pkgs),
]

def whiteout_of(st):
    return stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 0 and os.minor(st.st_rdev) == 0

def is_opaque(path):
    for attr in ("trusted.overlay.opaque", "user.overlay.opaque"):
        try:
            if os.getxattr(path, attr, follow_symlinks=False) == b"y":
                return True
        except OSError:
            pass
    return False

def hides_lower(name, rel):
    """Whether an opaque directory hides anything: overlayfs marks every directory it creates
    opaque, but the marker only changes the image where an earlier layer has that directory
    (BuildKit's differ writes it only then, too)."""
    earlier = [s for s, _ in STEPS[:[s for s, _ in STEPS].index(name)]]
    return any(os.path.isdir(os.path.join(build, s, rel)) for s in earlier)

def empty_file(arc, like):
    info = tarfile.TarInfo(arc)
    info.mtime, info.mode, info.uid, info.gid = int(like.st_mtime), 0o644, 0, 0
    return info

def write_layer(name, path):
    """One layer tar from a step's tree: a plain tree for the base, an overlay upper directory
    (whiteouts as 0/0 character devices, opaque directories by xattr) for the others."""
    root = os.path.join(build, name)
    counts = {"files": 0, "whiteouts": 0, "opaque": 0}
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            rel_dir = os.path.relpath(dirpath, root)
            if rel_dir != "." and is_opaque(dirpath) and hides_lower(name, rel_dir):
                tar.addfile(empty_file(os.path.join(rel_dir, ".wh..wh..opq"), os.lstat(dirpath)))
                counts["opaque"] += 1
            for entry in sorted(dirnames + filenames):
                full = os.path.join(dirpath, entry)
                arc = os.path.normpath(os.path.join(rel_dir, entry))
                st = os.lstat(full)
                if whiteout_of(st):
                    tar.addfile(empty_file(os.path.join(rel_dir, ".wh." + entry), st))
                    counts["whiteouts"] += 1
                    continue
                if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode) or stat.S_ISLNK(st.st_mode)):
                    continue
                info = tar.gettarinfo(full, arcname=arc)
                info.uname = info.gname = ""
                if info.isreg():
                    counts["files"] += 1
                    with open(full, "rb") as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return "sha256:" + h.hexdigest(), counts

layers = []
for name, created_by in STEPS:
    path = os.path.join(layers_dir, name + ".tar")
    diff_id, counts = write_layer(name, path)
    layers.append({"layer": name, "created_by": created_by, "diff_id": diff_id,
                   "bytes": os.path.getsize(path), **counts})
    print(f"  layer {name:7} {layers[-1]['bytes'] / 1e6:9.1f} MB  {counts}", file=sys.stderr)

def write_image(out_name, tag, chosen):
    config = {
        "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   "Cmd": ["bash"], **({"WorkingDir": "/app"} if len(chosen) == 4 else {})},
        "rootfs": {"type": "layers", "diff_ids": [l["diff_id"] for l in chosen]},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": l["created_by"],
                     "comment": "stowaway precision corpus step " + l["layer"]} for l in chosen],
    }
    config_bytes = json.dumps(config, indent=1, sort_keys=True).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    names = [l["diff_id"].split(":")[1] + "/layer.tar" for l in chosen]
    manifest = [{"Config": config_name, "RepoTags": [tag], "Layers": names}]
    tmp = os.path.join(pc, out_name + ".tmp")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as out:
        def add_bytes(arc, data):
            info = tarfile.TarInfo(arc); info.size = len(data); info.mtime = 1704067200; info.mode = 0o644
            out.addfile(info, io.BytesIO(data))
        add_bytes(config_name, config_bytes)
        for l, arc in zip(chosen, names):
            out.add(os.path.join(layers_dir, l["layer"] + ".tar"), arcname=arc)
        add_bytes("manifest.json", json.dumps(manifest).encode())
    os.replace(tmp, os.path.join(pc, out_name))
    size = os.path.getsize(os.path.join(pc, out_name))
    print(f"  {out_name}: {size / 1e6:.1f} MB", file=sys.stderr)
    return size

base_bytes = write_image("base.tar", "stowaway-precision-base:bookworm", layers[:1])
image_bytes = write_image("image.tar", "stowaway-precision-corpus:latest", layers)
with open(os.path.join(pc, "image.json"), "w") as f:
    json.dump({"base_bytes": base_bytes, "image_bytes": image_bytes, "layers": layers}, f, indent=1)
PY
        rm -rf "$PC_DIR/layers"
        touch "$PC_DIR/images.stamp"
    fi
fi

[ "$GENERATE_ONLY" = 1 ] && { echo "$PC_DIR/base.tar $PC_DIR/image.tar"; exit 0; }

# --- scan ---------------------------------------------------------------------------------------
[ -f "$PC_DIR/image.tar" ] && [ -f "$PC_DIR/base.tar" ] || die "no images in $PC_DIR (run without --scan-only first)"
if [ ! -x "$STOWAWAY" ]; then
    say "cargo build --release"
    cargo build --release
fi
command -v /usr/bin/time >/dev/null || die "/usr/bin/time is required (apt-get install time)"
say "scanning the base image with the default gate"
set +e
/usr/bin/time -v -o "$OUT_DIR/base-time.txt" "$STOWAWAY" scan --no-cache --format json \
    --show-secrets -o "$OUT_DIR/base-findings.json" "docker-archive:$PC_DIR/base.tar"
echo $? > "$OUT_DIR/base-exit.txt"
say "scanning the full image"
/usr/bin/time -v -o "$OUT_DIR/time.txt" "$STOWAWAY" scan --no-cache --format json --show-secrets \
    --fail-on none -o "$OUT_DIR/findings.json" "docker-archive:$PC_DIR/image.tar"
rc=$?
set -e
[ "$rc" = 0 ] || die "the scan of image.tar failed (exit $rc)"

python3 "$REPO/benches/precision-summary.py" "$PC_DIR" "$OUT_DIR" | tee "$OUT_DIR/summary.txt"
