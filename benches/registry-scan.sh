#!/usr/bin/env bash
# Scanning a large image straight from a registry: peak memory and wall time of
#   stowaway scan 127.0.0.1:PORT/big:1
# against `skopeo copy` of the same image to a local directory (download alone).
#
# The image (cached under ${BENCH_DIR:-target/registry-bench}) is over 1 GB uncompressed, in
# three gzip layers of very different sizes: ~700 MB of incompressible data in one layer (a
# single huge layer must not blow memory), real files from this machine in another, and small
# configs with planted random secrets in a third. A real registry (Debian's docker-registry)
# is started on a free 127.0.0.1 port with temporary storage and stopped at the end.
#
#   bash benches/registry-scan.sh [--regenerate]
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${BENCH_DIR:-target/registry-bench}"
mkdir -p "$dir"
export STOWAWAY_NO_CACHE=1

for tool in docker-registry skopeo /usr/bin/time python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool (bash .ci/run installs the tools; apt-get install time for /usr/bin/time)" >&2; exit 1; }
done
[ "${1:-}" = "--regenerate" ] && rm -rf "$dir/layout" "$dir/.complete"

if [ ! -e "$dir/.complete" ]; then
  echo "generating the image in $dir/layout ..."
  python3 - "$dir/layout" <<'PY'
import gzip, hashlib, io, json, os, random, sys, tarfile, time

out = sys.argv[1]
os.makedirs(f"{out}/blobs/sha256", exist_ok=True)
random.seed(7)

def sha(b): return hashlib.sha256(b).hexdigest()

class Hashing(io.RawIOBase):
    """Writes through, hashing and counting, so layers are streamed to disk."""
    def __init__(self, f): self.f, self.h, self.n = f, hashlib.sha256(), 0
    def writable(self): return True
    def write(self, b):
        self.h.update(b); self.n += len(b); return self.f.write(b)

def layer(fill):
    tmp = f"{out}/layer.tmp"
    with open(tmp, "wb") as raw:
        compressed = Hashing(raw)
        gz = gzip.GzipFile(fileobj=compressed, mode="wb", compresslevel=1, mtime=0)
        plain = Hashing(gz)
        with tarfile.open(fileobj=plain, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            fill(tar)
        gz.close()
    digest = compressed.h.hexdigest()
    os.rename(tmp, f"{out}/blobs/sha256/{digest}")
    return {"digest": "sha256:" + digest, "size": compressed.n,
            "diff_id": "sha256:" + plain.h.hexdigest(), "uncompressed": plain.n}

def add_bytes(tar, name, data):
    info = tarfile.TarInfo(name); info.size = len(data); info.mtime = 0
    tar.addfile(info, io.BytesIO(data))

def huge(tar):
    # 700 MB in 7 files of 100 MB: incompressible, so gzip stores it almost as is.
    for i in range(7):
        info = tarfile.TarInfo(f"data/blob-{i}.bin"); info.size = 100 << 20
        class Gen(io.RawIOBase):
            left = info.size
            def readable(self): return True
            def readinto(self, b):
                n = min(len(b), self.left)
                if n == 0: return 0
                b[:n] = os.urandom(n); self.left -= n; return n
        tar.addfile(info, io.BufferedReader(Gen(), 1 << 20))

def system(tar):
    budget = 350 << 20
    for root in ["/usr/lib/x86_64-linux-gnu", "/usr/share/doc", "/usr/lib/python3.11", "/etc"]:
        for base, dirs, files in os.walk(root):
            dirs.sort()
            for f in sorted(files):
                p = os.path.join(base, f)
                try:
                    if os.path.islink(p) or not os.path.isfile(p): continue
                    size = os.path.getsize(p)
                    if size > budget: return
                    tar.add(p, arcname=p.lstrip("/"), recursive=False)
                    budget -= size
                except (PermissionError, OSError):
                    continue

def secrets(tar):
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    key_id = "AKIA" + "".join(random.choice(alphabet) for _ in range(16))
    secret = "".join(random.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+") for _ in range(40))
    add_bytes(tar, "root/.aws/credentials",
              f"[default]\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}\n".encode())

layers = [layer(huge), layer(system), layer(secrets)]
config = {"architecture": "amd64", "os": "linux", "config": {},
          "rootfs": {"type": "layers", "diff_ids": [l["diff_id"] for l in layers]},
          "history": [{"created_by": f"bench layer {i}"} for i in range(len(layers))]}
cb = json.dumps(config).encode()
open(f"{out}/blobs/sha256/{sha(cb)}", "wb").write(cb)
manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + sha(cb), "size": len(cb)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": l["digest"], "size": l["size"]} for l in layers]}
mb = json.dumps(manifest).encode()
open(f"{out}/blobs/sha256/{sha(mb)}", "wb").write(mb)
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
           "digest": "sha256:" + sha(mb), "size": len(mb), "annotations": {"org.opencontainers.image.ref.name": "big"}}]},
          open(f"{out}/index.json", "w"))
open(f"{out}/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
total = sum(l["uncompressed"] for l in layers); stored = sum(l["size"] for l in layers)
print(f"image: {total/1e6:.0f} MB uncompressed, {stored/1e6:.0f} MB stored, layers {[round(l['uncompressed']/1e6) for l in layers]} MB")
PY
  touch "$dir/.complete"
fi

cargo build --release --quiet
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
storage=$(mktemp -d)
cat > "$storage/config.yml" <<YML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $storage/data}}
http: {addr: 127.0.0.1:$port}
YML
docker-registry serve "$storage/config.yml" >/dev/null 2>&1 &
registry=$!
trap 'kill $registry 2>/dev/null; rm -rf "$storage" "$dir/copy"' EXIT
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break; sleep 0.2; done

echo "pushing with skopeo ..."
skopeo copy --quiet --dest-tls-verify=false "oci:$dir/layout:big" "docker://127.0.0.1:$port/big:1"

limit_mb=300
worst_rss_kb=0
measure() { # label, command...
  local label=$1; shift
  /usr/bin/time -f "%e %M %x" -o "$dir/time.txt" "$@" >/dev/null 2>"$dir/stderr.txt" || true
  read -r wall rss status < <(tail -1 "$dir/time.txt")
  if [ "$status" != 0 ]; then
    echo "$label: exit $status" >&2; cat "$dir/stderr.txt" >&2; exit 1
  fi
  printf '%-40s wall %6.2f s   peak RSS %6.1f MB\n' "$label" "$wall" "$(awk "BEGIN{print $rss*1024/1e6}")"
  if [[ $label == stowaway* ]] && ((rss > worst_rss_kb)); then worst_rss_kb=$rss; fi
}
for run in 1 2 3; do
  measure "stowaway scan (run $run)" target/release/stowaway scan --fail-on none --format json -o /dev/null "127.0.0.1:$port/big:1"
  rm -rf "$dir/copy"
  measure "skopeo copy to dir: (run $run)" skopeo copy --quiet --src-tls-verify=false "docker://127.0.0.1:$port/big:1" "dir:$dir/copy"
done
target/release/stowaway scan --fail-on none -q "127.0.0.1:$port/big:1" | tail -1
worst_mb=$((worst_rss_kb * 1024 / 1000000))  # decimal MB, the stricter reading
if ((worst_mb >= limit_mb)); then
  echo "FAIL: stowaway's peak RSS ${worst_mb} MB is over the ${limit_mb} MB limit" >&2
  exit 1
fi
echo "ok: stowaway's peak RSS ${worst_mb} MB is under the ${limit_mb} MB limit"
