"""Builds the toolchain benchmark image (see benches/whole-image.sh --toolchain).

Real content, installed as a package manager installs it: Debian packages (downloaded with
`apt-get download`, never installed on this machine) unpacked into layers, each layer also
rewriting dpkg's database (/var/lib/dpkg/status, info/PKG.list and info/PKG.md5sums) as an
`apt-get install` step of a Dockerfile does. Then a layer of planted secrets and one deleting
one of them again.

    python3 benches/toolchain_image.py BENCH_DIR DEBS_DIR

Writes into BENCH_DIR:
    layers/NN-NAME.tar and .tar.gz   each layer, uncompressed and gzip -6
    docker-archive.tar               a `docker save` tarball (Docker 25+ layout, with an OCI
                                     index) of the uncompressed layers
    oci/                             an OCI layout (tag `bench`) of the gzip layers
    image.json                       layer sizes, digests, the planted secrets' paths
"""

import base64
import hashlib
import io
import json
import os
import random
import subprocess
import sys
import tarfile
from concurrent.futures import ThreadPoolExecutor

MB = 1000 * 1000
MTIME = 1_700_000_000
CREATED = "2025-06-01T12:00:00Z"

# (layer name, Dockerfile step, Debian packages). Dependencies are not resolved: the image is
# scanned, never run, and what matters is the content (JDK modules and jars, Go's tree and
# its test data, CPython's test suite, SciPy, LLVM, Rust's rlibs) and the database that says a
# package manager put it there.
LAYERS = [
    ("base", "ADD rootfs.tar.xz / (debian:bookworm-slim)", [
        "base-files", "libc6", "libc-bin", "bash", "coreutils", "dash", "dpkg", "tar", "gzip",
        "sed", "grep", "findutils", "perl-base", "util-linux", "libssl3", "ca-certificates",
        "zlib1g", "libstdc++6", "libgcc-s1", "openssl", "libselinux1", "libpcre2-8-0",
        "libacl1", "libattr1", "libbz2-1.0", "liblzma5", "libzstd1", "libcrypt1", "libtinfo6",
        "debianutils", "diffutils", "hostname", "login", "passwd", "libaudit1", "libcap-ng0",
        "ncurses-base", "ncurses-bin", "tzdata", "mawk",
    ]),
    ("jdk", "RUN apt-get install -y openjdk-17-jdk-headless openjdk-17-source", [
        "openjdk-17-jre-headless", "openjdk-17-jdk-headless", "openjdk-17-source",
    ]),
    ("go", "RUN apt-get install -y golang-1.19-go", ["golang-1.19-go", "golang-1.19-src"]),
    ("python", "RUN apt-get install -y python3.11 libpython3.11-testsuite python3-scipy python3-pandas python3-matplotlib", [
        "libpython3.11-stdlib", "libpython3.11-minimal", "python3.11", "python3.11-minimal",
        "libpython3.11-testsuite", "python3-numpy", "python3-scipy", "python3-pandas",
        "python3-pandas-lib", "python3-matplotlib",
    ]),
    ("llvm", "RUN apt-get install -y clang-14 llvm-14-dev lld-14", [
        "libllvm14", "llvm-14", "llvm-14-dev", "clang-14", "libclang-cpp14",
        "libclang-common-14-dev", "lld-14", "liblld-14",
    ]),
    ("rust", "RUN apt-get install -y rustc cargo", [
        "rustc", "libstd-rust-1.63", "libstd-rust-dev", "cargo",
    ]),
    ("gcc", "RUN apt-get install -y g++-12 libboost1.74-dev", [
        "gcc-12", "cpp-12", "libgcc-12-dev", "g++-12", "libstdc++-12-dev", "libboost1.74-dev",
    ]),
]


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def deb_path(debs, package):
    matches = sorted(n for n in os.listdir(debs) if n.startswith(package + "_") and n.endswith(".deb"))
    if not matches:
        subprocess.run(["apt-get", "download", "-q", package], cwd=debs, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        matches = sorted(n for n in os.listdir(debs) if n.startswith(package + "_") and n.endswith(".deb"))
    if not matches:
        sys.exit(f"toolchain_image.py: no .deb for {package} in {debs}")
    return os.path.join(debs, matches[-1])


def control_of(deb):
    """The package's control stanza and its md5sums file, from the .deb's control tar."""
    fields = subprocess.run(["dpkg-deb", "-f", deb], check=True, capture_output=True).stdout
    ctrl = subprocess.run(["dpkg-deb", "--ctrl-tarfile", deb], check=True,
                          capture_output=True).stdout
    md5sums = b""
    with tarfile.open(fileobj=io.BytesIO(ctrl)) as tar:
        for member in tar:
            if member.name.lstrip("./") == "md5sums":
                md5sums = tar.extractfile(member).read()
    return fields.decode(), md5sums


def normal(name):
    name = name[2:] if name.startswith("./") else name.lstrip("/")
    return name.rstrip("/")


def add_bytes(tar, name, data, mode=0o644):
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, MTIME
    tar.addfile(info, io.BytesIO(data))


def package_layer(tar_path, packages, debs, status):
    """Unpacks `packages` into the tar at `tar_path` and appends their stanzas to `status`
    (the database as it stands after the layer); returns (files, content bytes)."""
    files = content = 0
    seen_dirs = set()
    with tarfile.open(tar_path, "w", format=tarfile.PAX_FORMAT) as out:
        for package in packages:
            deb = deb_path(debs, package)
            fields, md5sums = control_of(deb)
            arch = next((l.split(":", 1)[1].strip() for l in fields.splitlines()
                         if l.startswith("Architecture:")), "all")
            multi_same = any(l.strip() == "Multi-Arch: same" for l in fields.splitlines())
            info_name = f"{package}:{arch}" if multi_same else package
            listed = ["/."]
            proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", deb], stdout=subprocess.PIPE)
            with tarfile.open(fileobj=proc.stdout, mode="r|") as data:
                for member in data:
                    name = normal(member.name)
                    if not name:
                        continue
                    listed.append("/" + name)
                    if member.isdir():
                        if name in seen_dirs:
                            continue
                        seen_dirs.add(name)
                    member.name = name
                    if member.islnk():
                        member.linkname = normal(member.linkname)
                    if member.isreg():
                        out.addfile(member, data.extractfile(member))
                        files += 1
                        content += member.size
                    else:
                        out.addfile(member)
            if proc.wait():
                sys.exit(f"toolchain_image.py: dpkg-deb failed on {deb}")
            lines = fields.rstrip("\n").split("\n")
            lines.insert(1, "Status: install ok installed")
            status.append("\n".join(lines) + "\n")
            info = "var/lib/dpkg/info"
            add_bytes(out, f"{info}/{info_name}.list", ("\n".join(listed) + "\n").encode())
            if md5sums:
                add_bytes(out, f"{info}/{info_name}.md5sums", md5sums)
        add_bytes(out, "var/lib/dpkg/status", "\n".join(status).encode())
    return files, content


def secrets_layer(tar_path, rng):
    def pick(alphabet, n):
        return "".join(rng.choice(alphabet) for _ in range(n))
    upper32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    aws = (f"[default]\nregion = eu-west-1\naws_access_key_id = AKIA{pick(upper32, 16)}\n"
           f"aws_secret_access_key = {pick(b64, 40)}\n")
    env = (f"APP_ENV=production\nDB_HOST=db.internal\nDB_USER=app\n"
           f"DB_PASSWORD={pick(alnum, 24)}\n")
    stripe = f"STRIPE_KEY=sk_live_{pick(alnum, 24)}\n"
    planted = [("root/.aws/credentials", aws, 0o600), ("app/.env", env, 0o640),
               ("app/config/payments.env", stripe, 0o640)]
    with tarfile.open(tar_path, "w", format=tarfile.PAX_FORMAT) as out:
        for d in ("root", "root/.aws", "app", "app/config"):
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, MTIME
            out.addfile(info)
        for path, text, mode in planted:
            add_bytes(out, path, text.encode(), mode)
    return [p for p, _, _ in planted]


def gzip_layer(tar_path):
    with open(tar_path + ".gz", "wb") as gz:
        subprocess.run(["gzip", "-6", "-n", "-c", tar_path], stdout=gz, check=True)


def write_docker_archive(path, layers, config_bytes):
    config_hex = hashlib.sha256(config_bytes).hexdigest()
    with tarfile.open(path + ".tmp", "w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(dir_info("blobs"))
        tar.addfile(dir_info("blobs/sha256"))
        names = []
        for layer in layers:
            name = "blobs/sha256/" + layer["diff_id"].split(":")[1]
            tar.add(layer["tar"], name, recursive=False)
            names.append(name)
        add_bytes(tar, f"blobs/sha256/{config_hex}", config_bytes)
        manifest = [{"Config": f"blobs/sha256/{config_hex}",
                     "RepoTags": ["stowaway-toolchain:latest"], "Layers": names}]
        add_bytes(tar, "manifest.json", json.dumps(manifest).encode())
    os.replace(path + ".tmp", path)


def dir_info(name):
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, MTIME
    return info


def write_oci(oci, layers, config_bytes):
    blobs = os.path.join(oci, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)

    def put(data):
        digest = hashlib.sha256(data).hexdigest()
        with open(os.path.join(blobs, digest), "wb") as f:
            f.write(data)
        return {"digest": "sha256:" + digest, "size": len(data)}

    oci_layers = []
    for layer in layers:
        dst = os.path.join(blobs, layer["gz_digest"].split(":")[1])
        if not os.path.exists(dst):
            os.link(layer["tar"] + ".gz", dst)
        oci_layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                           "digest": layer["gz_digest"], "size": layer["gz_bytes"]})
    config = put(config_bytes)
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
                "layers": oci_layers}
    described = put(json.dumps(manifest, indent=2).encode())
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                            **described, "platform": {"architecture": "amd64", "os": "linux"},
                            "annotations": {"org.opencontainers.image.ref.name": "bench"}}]}
    with open(os.path.join(oci, "index.json"), "w") as f:
        json.dump(index, f, indent=2)
    with open(os.path.join(oci, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)


def main():
    bench, debs = sys.argv[1], sys.argv[2]
    layers_dir = os.path.join(bench, "layers")
    os.makedirs(layers_dir, exist_ok=True)
    os.makedirs(debs, exist_ok=True)
    status = []
    layers = []
    for index, (name, step, packages) in enumerate(LAYERS, 1):
        tar_path = os.path.join(layers_dir, f"{index:02}-{name}.tar")
        files, content = package_layer(tar_path, packages, debs, status)
        layers.append({"name": name, "step": step, "tar": tar_path, "files": files,
                       "content_bytes": content})
        print(f"  layer {index} {name:7} {os.path.getsize(tar_path) / MB:8.1f} MB, {files} files",
              file=sys.stderr)
    rng = random.Random(0x70C4A1)
    secrets_tar = os.path.join(layers_dir, f"{len(layers) + 1:02}-secrets.tar")
    planted = secrets_layer(secrets_tar, rng)
    layers.append({"name": "secrets", "step": "COPY secrets/ /", "tar": secrets_tar})
    whiteout_tar = os.path.join(layers_dir, f"{len(layers) + 1:02}-whiteout.tar")
    with tarfile.open(whiteout_tar, "w", format=tarfile.PAX_FORMAT) as out:
        add_bytes(out, "app/.wh..env", b"")
    layers.append({"name": "whiteout", "step": "RUN rm /app/.env", "tar": whiteout_tar})

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        list(pool.map(gzip_layer, [l["tar"] for l in layers]))
    for layer in layers:
        layer["tar_bytes"] = os.path.getsize(layer["tar"])
        layer["diff_id"] = "sha256:" + sha256_file(layer["tar"])
        layer["gz_bytes"] = os.path.getsize(layer["tar"] + ".gz")
        layer["gz_digest"] = "sha256:" + sha256_file(layer["tar"] + ".gz")

    config = {
        "architecture": "amd64", "os": "linux", "created": CREATED,
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                           "JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64"],
                   "Cmd": ["/bin/bash"], "WorkingDir": "/app"},
        "rootfs": {"type": "layers", "diff_ids": [l["diff_id"] for l in layers]},
        "history": [{"created": CREATED, "created_by": f"/bin/sh -c {l['step']}"}
                    for l in layers],
    }
    config_bytes = json.dumps(config, separators=(",", ":")).encode()
    write_docker_archive(os.path.join(bench, "docker-archive.tar"), layers, config_bytes)
    write_oci(os.path.join(bench, "oci"), layers, config_bytes)
    summary = {
        "layers": [{k: v for k, v in l.items()} for l in layers],
        "uncompressed_bytes": sum(l["tar_bytes"] for l in layers),
        "gz_bytes": sum(l["gz_bytes"] for l in layers),
        "planted": planted,
    }
    with open(os.path.join(bench, "image.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(f"  total {summary['uncompressed_bytes'] / MB:.0f} MB uncompressed, "
          f"{summary['gz_bytes'] / MB:.0f} MB gzip", file=sys.stderr)


if __name__ == "__main__":
    main()
