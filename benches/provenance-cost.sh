#!/usr/bin/env bash
# Package-database reading cost as a share of scan time (issue 11: target under 5 %).
#
# What it measures
#   One scan of a docker-archive built from this machine's own Debian files and its real dpkg
#   database (/usr without google-cloud-sdk and /usr/local, /etc without shadow files and SSH
#   host keys, /var/lib/dpkg, and the merged-/usr symlinks bin, lib, lib64, sbin), as one
#   uncompressed layer. The report's images[0].packages.read_ms (reading every database as it
#   stands where findings are, and in the final image, and building the ownership index) is
#   compared with stats.duration_ms. It also prints the findings by severity and provenance
#   verdict: how much of a real Debian system becomes vendor content.
#
# How to run
#   bash benches/provenance-cost.sh [STOWAWAY_BINARY]   (default: target/release/stowaway)
#   BENCH_DIR (default target/provenance-bench) holds the image (~3 GB) and the report.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
binary="${1:-$here/target/release/stowaway}"
dir="${BENCH_DIR:-$here/target/provenance-bench}"
mkdir -p "$dir"
image="$dir/host-debian.tar"
if [ ! -f "$image" ]; then
    python3 - "$image" <<'PY'
import hashlib, io, json, os, stat, sys, tarfile
out = sys.argv[1]
layer_path = out + ".layer.tar"
skip = ("/usr/lib/google-cloud-sdk", "/usr/local", "/etc/shadow", "/etc/gshadow", "/etc/ssh/ssh_host")
with tarfile.open(layer_path, "w", format=tarfile.PAX_FORMAT) as tar:
    for link in ("bin", "lib", "lib64", "sbin"):
        if os.path.islink("/" + link):
            info = tarfile.TarInfo(link); info.type = tarfile.SYMTYPE
            info.linkname = os.readlink("/" + link); tar.addfile(info)
    for top in ("/usr", "/etc", "/var/lib/dpkg"):
        for dirpath, dirnames, filenames in os.walk(top):
            if dirpath.startswith(skip):
                dirnames[:] = []; continue
            for name in sorted(dirnames) + sorted(filenames):
                path = os.path.join(dirpath, name)
                if path.startswith(skip): continue
                try:
                    st = os.lstat(path)
                    info = tar.gettarinfo(path, path.lstrip("/"))
                    if stat.S_ISREG(st.st_mode):
                        with open(path, "rb") as f: tar.addfile(info, f)
                    elif stat.S_ISLNK(st.st_mode) or (stat.S_ISDIR(st.st_mode) and name in dirnames):
                        tar.addfile(info)
                except OSError:
                    pass
digest = hashlib.sha256()
with open(layer_path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""): digest.update(block)
config = json.dumps({"architecture": "amd64", "os": "linux",
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + digest.hexdigest()]},
    "history": [{"created_by": "host debian files"}], "config": {}}).encode()
config_name = hashlib.sha256(config).hexdigest() + ".json"
manifest = json.dumps([{"Config": config_name, "RepoTags": ["bench/host-debian:latest"],
    "Layers": ["layer/layer.tar"]}]).encode()
with tarfile.open(out, "w") as tar:
    for name, data in ((config_name, config), ("manifest.json", manifest)):
        info = tarfile.TarInfo(name); info.size = len(data); tar.addfile(info, io.BytesIO(data))
    tar.add(layer_path, "layer/layer.tar")
os.remove(layer_path)
PY
fi
STOWAWAY_NO_CACHE=1 "$binary" scan --format json --fail-on none -o "$dir/report.json" "docker-archive:$image"
python3 - "$dir/report.json" <<'PY'
import collections, json, sys
report = json.load(open(sys.argv[1])); image = report["images"][0]
total, read = report["stats"]["duration_ms"], image["packages"]["read_ms"]
print(f"scan {total} ms, package databases {read} ms: {100 * read / total:.2f} % of scan time")
print("databases:", image["packages"]["databases"])
counts = collections.Counter((f["severity"], (f.get("provenance") or {}).get("verdict", "no owner"))
                             for f in image["findings"])
for (severity, verdict), n in sorted(counts.items()):
    print(f"  {n:5} {severity:8} {verdict}")
PY
