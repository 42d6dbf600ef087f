#!/usr/bin/env python3
"""Writes the seed corpus, fuzz/corpus/<target>/, from nothing but this script (and GNU tar and
openssl for the inputs Python cannot write). Run it from anywhere; it replaces the corpus.

The seeds are small on purpose (AFL++ mutates faster and keeps coverage per byte), and every
secret-shaped value is made up here, at random, in the shape a rule expects: none is real, none
is copied from anywhere.
"""

import base64
import gzip
import hashlib
import io
import json
import os
import random
import shutil
import string
import subprocess
import tarfile
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
RNG = random.SystemRandom()


def pick(alphabet, n):
    return "".join(RNG.choice(alphabet) for _ in range(n))


UPPER32 = string.ascii_uppercase + "234567"
ALNUM = string.ascii_letters + string.digits
B64 = ALNUM + "+/"

AWS_ID = "AKIA" + pick(UPPER32, 16)
AWS_SECRET = pick(B64, 40)
GITHUB = "ghp_" + pick(ALNUM, 36)
SLACK = "xoxb-" + pick(string.digits, 12) + "-" + pick(string.digits, 12) + "-" + pick(ALNUM, 24)
PASSWORD = pick(ALNUM, 18)

ENV_FILE = (
    f"AWS_ACCESS_KEY_ID={AWS_ID}\nAWS_SECRET_ACCESS_KEY={AWS_SECRET}\n"
    f"GITHUB_TOKEN={GITHUB}\nDB_PASSWORD={PASSWORD}\n"
).encode()


def write(target, name, data):
    directory = os.path.join(CORPUS, target)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


def tar_bytes(members, fmt=tarfile.USTAR_FORMAT):
    """members: (name, bytes or None for a directory, extra TarInfo settings)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for name, data, extra in members:
            info = tarfile.TarInfo(name)
            info.mtime = 1700000000
            for key, value in extra.items():
                setattr(info, key, value)
            if data is None and info.type == tarfile.REGTYPE:
                info.type = tarfile.DIRTYPE
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return trimmed(out.getvalue())


def trimmed(archive):
    """Python pads archives to 10 KiB; AFL++ works best on small seeds, so keep the two zero
    blocks that end an archive and drop the rest of the padding."""
    end = len(archive.rstrip(b"\0"))
    end = (end + 511) // 512 * 512
    return archive[:end] + b"\0" * 1024


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def layer_seeds():
    plain = tar_bytes([("etc/", None, {}), ("etc/app.env", ENV_FILE, {}), ("etc/empty", b"", {})])
    write("layer", "ustar", plain)
    links = tar_bytes(
        [
            ("app/config", b"token=" + GITHUB.encode() + b"\n", {}),
            ("app/hard", None, {"type": tarfile.LNKTYPE, "linkname": "app/config"}),
            ("bin", None, {"type": tarfile.SYMTYPE, "linkname": "usr/bin"}),
            ("dev/fifo", None, {"type": tarfile.FIFOTYPE}),
            ("etc/.wh.old", b"", {}),
            ("var/.wh..wh..opq", b"", {}),
        ]
    )
    write("layer", "links-whiteouts", links)
    long_name = "d/" + "n" * 150 + "/secret.txt"
    write("layer", "gnu-long", tar_bytes([(long_name, ENV_FILE, {})], tarfile.GNU_FORMAT))
    write(
        "layer",
        "pax",
        tar_bytes(
            [
                (long_name, ENV_FILE, {"pax_headers": {"comment": "x"}}),
                ("l", None, {"type": tarfile.SYMTYPE, "linkname": "t/" * 60}),
            ],
            tarfile.PAX_FORMAT,
        ),
    )
    # A directory header with a size: runtimes read no data after it, and neither may we.
    block = bytearray(tar_bytes([("dir/", None, {})])[:512])
    block[124:136] = b"%011o\0" % 512
    block[148:156] = b"        "
    block[148:156] = b"%06o\0 " % sum(block)
    write("layer", "dir-with-size", bytes(block) + tar_bytes([("hidden", ENV_FILE, {})]))
    write("layer", "empty", b"\0" * 1024)
    write("layer", "truncated", plain[:700])
    sparse_seeds()


def sparse_seeds():
    """GNU tar's sparse files: the old GNU map and PAX 1.0 maps."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "sparse")
        with open(path, "wb") as f:
            f.write(ENV_FILE)
            f.seek(64 << 10)
            f.write(b"tail " + AWS_ID.encode())
        for name, fmt in [("sparse-gnu", "gnu"), ("sparse-pax", "pax")]:
            out = os.path.join(tmp, name)
            subprocess.run(
                ["tar", "--sparse", f"--format={fmt}", "-cf", out, "-C", tmp, "sparse"],
                check=True,
            )
            with open(out, "rb") as f:
                write("layer", name, trimmed(f.read()))


def image_parts():
    layer = tar_bytes([("app/", None, {}), ("app/.env", ENV_FILE, {})])
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": ["PATH=/usr/bin"]},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + sha256(layer)]},
            "history": [{"created_by": "COPY .env /app/.env"}],
        }
    ).encode()
    return layer, config


def oci_manifest(config, layer, layer_type="application/vnd.oci.image.layer.v1.tar"):
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": "sha256:" + sha256(config),
                "size": len(config),
            },
            "layers": [{"mediaType": layer_type, "digest": "sha256:" + sha256(layer), "size": len(layer)}],
        }
    ).encode()


def oci_index(manifest, name="app:1"):
    return json.dumps(
        {
            "schemaVersion": 2,
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": "sha256:" + sha256(manifest),
                    "size": len(manifest),
                    "annotations": {"org.opencontainers.image.ref.name": name},
                    "platform": {"architecture": "amd64", "os": "linux"},
                }
            ],
        }
    ).encode()


def image_seeds():
    layer, config = image_parts()
    legacy = json.dumps(
        [{"Config": sha256(config) + ".json", "RepoTags": ["app:1"], "Layers": ["l1/layer.tar"]}]
    ).encode()
    write(
        "image",
        "docker-save",
        tar_bytes(
            [
                ("manifest.json", legacy, {}),
                (sha256(config) + ".json", config, {}),
                ("l1/layer.tar", layer, {}),
            ]
        ),
    )
    gz = gzip.compress(layer, mtime=0)
    manifest = oci_manifest(config, gz, "application/vnd.oci.image.layer.v1.tar+gzip")
    write(
        "image",
        "oci-archive",
        tar_bytes(
            [
                ("oci-layout", b'{"imageLayoutVersion": "1.0.0"}', {}),
                ("index.json", oci_index(manifest), {}),
                ("blobs/sha256/" + sha256(manifest), manifest, {}),
                ("blobs/sha256/" + sha256(config), config, {}),
                ("blobs/sha256/" + sha256(gz), gz, {}),
            ]
        ),
    )


SEP = b"\n~~\n"


def manifest_seeds():
    """Documents with @N@ (digest of document N) and #N# (its size): see fuzzing::manifest."""
    layer, _ = image_parts()
    config = json.dumps(
        {
            "architecture": "arm64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": ["sha256:@3@"]},
            "history": [{"created_by": "RUN x"}],
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:@2@", "size": 0},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:@3@", "size": 999}],
        }
    ).encode().replace(b"999", b"#3#")
    index = json.dumps(
        {
            "schemaVersion": 2,
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": "sha256:@1@",
                    "size": 1,
                    "annotations": {"org.opencontainers.image.ref.name": "v1"},
                }
            ],
        }
    ).encode().replace(b'"size": 1', b'"size": #1#')
    docs = [b"index.json\n" + index, b"-\n" + manifest, b"-\n" + config, b"-\n" + layer]
    write("manifest", "oci", SEP.join(docs))
    nested = json.dumps(
        {
            "schemaVersion": 2,
            "manifests": [
                {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": "sha256:@1@", "size": 0},
                {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": "sha256:@1@", "size": 0},
            ],
        }
    ).encode()
    # index.json -> the same nested index twice (read once) -> manifest -> config, layer.
    inner = index.replace(b"@1@", b"@2@").replace(b"#1#", b"#2#")
    manifest2 = manifest.replace(b"@3@", b"@4@").replace(b"#3#", b"#4#").replace(b"@2@", b"@3@")
    config2 = config.replace(b"@3@", b"@4@")
    docs = [b"index.json\n" + nested, b"-\n" + inner, b"-\n" + manifest2, b"-\n" + config2, b"-\n" + layer]
    write("manifest", "nested-index", SEP.join(docs))
    legacy = json.dumps(
        [{"Config": "@1@.json", "RepoTags": ["app:1", "app:latest"], "Layers": ["blobs/sha256/@2@"],
          "LayerSources": {}}]
    ).encode()
    docker_config = config.replace(b"@3@", b"@2@")
    gz = gzip.compress(layer, mtime=0)
    docs = [b"manifest.json\n" + legacy, b"@1@.json\n" + docker_config, b"-\n" + layer]
    write("manifest", "docker-save", SEP.join(docs))
    docs = [b"index.json\n" + index, b"-\n" + manifest.replace(b".tar", b".tar+gzip"), b"-\n" + config, b"-\n" + gz]
    write("manifest", "oci-gzip", SEP.join(docs))


def pem_key():
    key = subprocess.run(
        ["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        check=True,
        capture_output=True,
    ).stdout
    return key


def decoder_seeds():
    # The first byte picks the file name (fuzzing::DECODER_PATHS), the rest is the file.
    jar = io.BytesIO()
    with zipfile.ZipFile(jar, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("BOOT-INF/classes/application.properties", b"spring.datasource.password=" + PASSWORD.encode())
        z.writestr("META-INF/maven/com.example/app/pom.properties", b"groupId=com.example\nartifactId=app\nversion=1\n")
        z.writestr("config.env", ENV_FILE, compress_type=zipfile.ZIP_STORED)
    write("decoders", "jar", bytes([0]) + jar.getvalue())
    with tempfile.TemporaryDirectory() as tmp:
        key = os.path.join(tmp, "key.pem")
        with open(key, "wb") as f:
            f.write(pem_key())
        cert = os.path.join(tmp, "cert.pem")
        subprocess.run(
            ["openssl", "req", "-new", "-x509", "-key", key, "-subj", "/CN=fuzz.invalid", "-days", "1", "-out", cert],
            check=True,
            capture_output=True,
        )
        p12 = os.path.join(tmp, "store.p12")
        subprocess.run(
            ["openssl", "pkcs12", "-export", "-inkey", key, "-in", cert, "-passout", "pass:changeit", "-out", p12],
            check=True,
            capture_output=True,
        )
        with open(p12, "rb") as f:
            write("decoders", "pkcs12", bytes([2]) + f.read())
        der = subprocess.run(["openssl", "x509", "-in", cert, "-outform", "DER"], check=True, capture_output=True).stdout
        write("decoders", "der", bytes([6]) + der)
        with open(key, "rb") as f, open(cert, "rb") as g:
            write("decoders", "pem-pair", bytes([8]) + f.read() + g.read())
    secret = (
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ntype: Opaque\ndata:\n"
        f"  password: {base64.b64encode(PASSWORD.encode()).decode()}\n"
        f"  env: {base64.b64encode(ENV_FILE).decode()}\nstringData:\n  token: {GITHUB}\n"
    ).encode()
    write("decoders", "k8s-secret", bytes([5]) + secret)
    auth = base64.b64encode(f"robot:{PASSWORD}".encode()).decode()
    write("decoders", "docker-config", bytes([3]) + json.dumps({"auths": {"registry.invalid": {"auth": auth}}}).encode())
    kubeconfig = (
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://k.invalid\n"
        f"users:\n- name: u\n  user:\n    token: {pick(ALNUM, 40)}\n    password: {PASSWORD}\n"
    ).encode()
    write("decoders", "kubeconfig", bytes([4]) + kubeconfig)
    inner = tar_bytes([("app/.env", ENV_FILE, {})])
    write("decoders", "tar-gz", bytes([7]) + gzip.compress(inner, mtime=0))
    write("decoders", "npmrc", bytes([11]) + f"//registry.npmjs.org/:_authToken=npm_{pick(ALNUM, 36)}\n".encode())


def yaml_seeds():
    write("yaml", "secret", b"kind: Secret\ndata:\n  a: " + base64.b64encode(ENV_FILE) + b"\n  b: |\n    multi\n    line\n")
    write("yaml", "flow", b'--- {a: [1, "two", \'three\'], b: &x {c: *x}}\n...\n--- !tag\n- ? complex\n  : value\n')
    write("yaml", "folded", b"k: >-\n  folded\n  text\nq: \"esc\\u00e9\\n\"\nplain: multi\n  word\n")


def detector_seeds():
    write("detector", "env", ENV_FILE)
    write("detector", "utf16", "\ufeff".encode("utf-16-le") + ENV_FILE.decode().encode("utf-16-le"))
    write("detector", "slack", f"SLACK={SLACK}\npassword = \"{PASSWORD}\"\n".encode())
    write("detector", "pem", pem_key())
    write("detector", "json", json.dumps({"aws_secret_access_key": AWS_SECRET, "id": AWS_ID}).encode())


def review(kind, obj, operation="CREATE"):
    return json.dumps(
        {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "6b1f4b2e-0000-4000-8000-000000000001",
                "kind": {"group": "", "version": "v1", "kind": kind},
                "namespace": "default",
                "operation": operation,
                "object": obj,
            },
        }
    ).encode()


def admission_seeds():
    pod = {"spec": {"containers": [{"image": "registry.invalid/app:1"}], "initContainers": [{"image": "busybox"}]}}
    write("admission", "pod", review("Pod", pod))
    template = {"spec": {"template": pod}}
    write("admission", "deployment", review("Deployment", template))
    write("admission", "cronjob", review("CronJob", {"spec": {"jobTemplate": {"spec": {"template": pod}}}}))
    write("admission", "delete", review("Pod", None, "DELETE"))
    write("admission", "configmap", review("ConfigMap", {"data": {}}))


def event_seeds():
    digest = "sha256:" + sha256(b"manifest")
    envelope = {
        "events": [
            {
                "action": "push",
                "target": {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": digest,
                    "repository": "team/app",
                    "url": f"https://registry.invalid:5000/v2/team/app/manifests/{digest}",
                },
                "request": {"host": "registry.invalid:5000"},
            },
            {"action": "pull", "target": {"mediaType": "x", "digest": digest, "repository": "a"}},
        ]
    }
    write("events", "distribution", json.dumps(envelope).encode())
    harbor = {
        "type": "PUSH_ARTIFACT",
        "event_data": {"resources": [{"digest": digest, "resource_url": "harbor.invalid/lib/app:1"}]},
    }
    write("events", "harbor", json.dumps(harbor).encode())


def main():
    shutil.rmtree(CORPUS, ignore_errors=True)
    layer_seeds()
    image_seeds()
    manifest_seeds()
    decoder_seeds()
    yaml_seeds()
    detector_seeds()
    admission_seeds()
    event_seeds()


if __name__ == "__main__":
    main()
