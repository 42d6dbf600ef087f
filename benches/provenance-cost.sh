#!/usr/bin/env bash
# Package-database reading cost as a share of scan time (issue 11: target under 5 %).
#
# What it measures
#   Two images in one OCI layout, built from this machine's own Debian files and its real dpkg
#   database, sharing their big layer (so the files scanned are the same bytes):
#     with-db     layer 0: /var/lib/dpkg (the database, 30-odd MB on a desktop-sized Debian)
#                 layer 1: /usr (without google-cloud-sdk and /usr/local), /etc (without shadow
#                          files and SSH host keys), and the merged-/usr symlinks bin, lib,
#                          lib64, sbin, uncompressed
#     without-db  layer 1 alone: no package database, so no provenance work at all
#   Each is scanned BENCH_RUNS times (default 3) with no cache. Reported:
#   - read_ms, the scan's own timer around reading every database as it stands where findings
#     are (and in the final image) and building the ownership index, as a share of the scan's
#     duration_ms (median of the runs): the figure the issue's acceptance names;
#   - the whole cost of provenance, the median duration with the database minus without it:
#     this also counts keeping the database files during the walk, hashing large owned files
#     again, judging each finding, and scanning the database files themselves for secrets (an
#     over-estimate of provenance's own cost, since those bytes are scanned as any file is);
#   - the findings by severity and provenance verdict: how much of a real Debian system
#     becomes vendor content.
#
# How to run
#   cargo build --release && bash benches/provenance-cost.sh [STOWAWAY_BINARY]
#   (default binary: target/release/stowaway). BENCH_DIR (default target/provenance-bench)
#   holds the layout (~3 GB, each layer written once) and the reports; BENCH_RUNS the runs.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
binary="${1:-$here/target/release/stowaway}"
dir="${BENCH_DIR:-$here/target/provenance-bench}"
runs="${BENCH_RUNS:-3}"
layout="$dir/host-debian-oci"
mkdir -p "$dir"
if [ ! -f "$layout/index.json" ]; then
    rm -rf "$layout"
    python3 - "$layout" <<'PY'
import hashlib, json, os, stat, sys, tarfile
layout = sys.argv[1]
blobs = os.path.join(layout, "blobs", "sha256")
os.makedirs(blobs)
skip = ("/usr/lib/google-cloud-sdk", "/usr/local", "/etc/shadow", "/etc/gshadow", "/etc/ssh/ssh_host")

def add_tree(tar, top):
    for dirpath, dirnames, filenames in os.walk(top):
        if dirpath.startswith(skip):
            dirnames[:] = []; continue
        dirnames.sort()
        for name in dirnames + sorted(filenames):
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

def write_blob(data):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, digest), "wb") as f: f.write(data)
    return {"digest": "sha256:" + digest, "size": len(data)}

def write_layer(fill):
    # Written once, then renamed to its digest: no second copy of a 3 GB layer.
    temporary = os.path.join(blobs, "layer.partial")
    with tarfile.open(temporary, "w", format=tarfile.PAX_FORMAT) as tar: fill(tar)
    digest = hashlib.sha256()
    with open(temporary, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""): digest.update(block)
    name = digest.hexdigest()
    os.rename(temporary, os.path.join(blobs, name))
    return {"mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": "sha256:" + name, "size": os.path.getsize(os.path.join(blobs, name))}

def system(tar):
    for link in ("bin", "lib", "lib64", "sbin"):
        if os.path.islink("/" + link):
            info = tarfile.TarInfo(link); info.type = tarfile.SYMTYPE
            info.linkname = os.readlink("/" + link); tar.addfile(info)
    for top in ("/usr", "/etc"):
        add_tree(tar, top)

database = write_layer(lambda tar: add_tree(tar, "/var/lib/dpkg"))
files = write_layer(system)

def image(name, layers, history):
    config = write_blob(json.dumps({"architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [l["digest"] for l in layers]},
        "history": [{"created_by": h} for h in history], "config": {}}).encode())
    config["mediaType"] = "application/vnd.oci.image.config.v1+json"
    manifest = write_blob(json.dumps({"schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config, "layers": layers}).encode())
    manifest["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
    manifest["annotations"] = {"org.opencontainers.image.ref.name": name}
    return manifest

manifests = [image("with-db", [database, files], ["dpkg database", "host debian files"]),
             image("without-db", [files], ["host debian files"])]
with open(os.path.join(layout, "oci-layout"), "w") as f: json.dump({"imageLayoutVersion": "1.0.0"}, f)
with open(os.path.join(layout, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "manifests": manifests}, f)
PY
fi
for tag in with-db without-db; do
    for run in $(seq 1 "$runs"); do
        STOWAWAY_NO_CACHE=1 "$binary" scan --format json --fail-on none \
            -o "$dir/report-$tag-$run.json" "oci:$layout:$tag"
    done
done
python3 - "$dir" "$runs" <<'PY'
import collections, json, statistics, sys
dir, runs = sys.argv[1], int(sys.argv[2])
def reports(tag):
    return [json.load(open(f"{dir}/report-{tag}-{run}.json")) for run in range(1, runs + 1)]
with_db, without_db = reports("with-db"), reports("without-db")
durations = lambda rs: [r["stats"]["duration_ms"] for r in rs]
reads = [r["images"][0]["packages"]["read_ms"] for r in with_db]
total, bare = statistics.median(durations(with_db)), statistics.median(durations(without_db))
read = statistics.median(reads)
print(f"runs per image: {runs}; scan durations with the database {durations(with_db)} ms, "
      f"without {durations(without_db)} ms")
print(f"package databases read and indexed: {read} ms (runs: {reads}) = "
      f"{100 * read / total:.2f} % of the scan's {total} ms")
print(f"whole provenance cost (with minus without the database): {total - bare} ms = "
      f"{100 * (total - bare) / total:.2f} % (an upper bound: it includes scanning the "
      f"database files themselves)")
image = with_db[0]["images"][0]
print("databases:", image["packages"]["databases"])
counts = collections.Counter((f["severity"], (f.get("provenance") or {}).get("verdict", "no owner"))
                             for f in image["findings"])
for (severity, verdict), n in sorted(counts.items()):
    print(f"  {n:5} {severity:8} {verdict}")
bare_counts = collections.Counter(f["severity"] for f in without_db[0]["images"][0]["findings"])
print("without the database, by severity:", dict(sorted(bare_counts.items())))
PY
