#!/usr/bin/env python3
"""Validates the Kubernetes objects under deploy/ against the Kubernetes API schemas, offline.

Run by .ci/run with the Python of a venv holding kubernetes-validate (which bundles the
schemas, so no cluster and no network are needed):

  - every kustomization is rendered with `kubectl kustomize` (when kubectl is installed: it
    needs no cluster for that) and every object it produces is validated, so the overlays'
    patches are checked as applied;
  - every other YAML document under deploy/ is validated as written, except the files below
    that are no Kubernetes objects, patches (only meaningful applied, see above), and custom
    resources, whose kinds are checked against the short list we use.

Strict: a field the schema does not know is an error (a typo would otherwise be dropped by
the API server without a word). Exits 1 naming each object that fails.
"""

import pathlib
import shutil
import subprocess
import sys

import kubernetes_validate
import yaml
from kubernetes_validate.utils import SchemaNotFoundError, ValidationError

# The oldest Kubernetes the manifests are meant for, and the newest the package knows.
VERSIONS = ["1.30.0", kubernetes_validate.utils.latest_version()]

# Files under deploy/ that hold no Kubernetes objects.
NOT_KUBERNETES = {
    "deploy/registry-notifications.yml": "a docker-registry configuration fragment",
}

# Custom resources (their CRDs are not in the bundled schemas): the kinds we write.
CUSTOM = {
    "keda.sh/v1alpha1": {"ScaledObject", "TriggerAuthentication"},
}

KUSTOMIZATION = "kustomize.config.k8s.io/v1beta1"


def documents(text, where):
    try:
        return [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as err:
        raise SystemExit(f"{where}: not YAML: {err}")


def name_of(obj):
    meta = obj.get("metadata") or {}
    return f"{obj.get('kind')}/{meta.get('name')}"


def check(obj, where, errors):
    """Validates one object; returns 1 when it was validated against the schemas."""
    api_version = obj.get("apiVersion")
    if api_version in CUSTOM:
        if obj.get("kind") not in CUSTOM[api_version] or not (obj.get("metadata") or {}).get("name"):
            errors.append(f"{where}: {name_of(obj)}: not a {api_version} kind we use")
        return 0
    for version in VERSIONS:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except ValidationError as err:
            path = "/".join(str(p) for p in err.path)
            errors.append(f"{where}: {name_of(obj)} against {version}: {path}: {err.message}")
            return 0
        except SchemaNotFoundError as err:
            errors.append(f"{where}: {name_of(obj)}: {err}")
            return 0
    return 1


def main():
    root = pathlib.Path(__file__).resolve().parent.parent
    deploy = root / "deploy"
    errors, skipped = [], []
    validated = 0
    files = sorted(p for p in deploy.rglob("*") if p.suffix in (".yml", ".yaml"))
    kustomizations = [p for p in files if p.name in ("kustomization.yml", "kustomization.yaml")]
    patches = set()
    for path in kustomizations:
        config = documents(path.read_text(), path)[0]
        for patch in config.get("patches") or []:
            if "path" in patch:
                patches.add((path.parent / patch["path"]).resolve())
    kubectl = shutil.which("kubectl")
    for path in kustomizations:
        where = path.parent.relative_to(root)
        if not kubectl:
            skipped.append(f"{where}: not rendered (no kubectl)")
            continue
        rendered = subprocess.run(
            [kubectl, "kustomize", str(path.parent)], capture_output=True, text=True
        )
        if rendered.returncode != 0:
            errors.append(f"{where}: kubectl kustomize failed: {rendered.stderr.strip()}")
            continue
        for obj in documents(rendered.stdout, where):
            validated += check(obj, f"{where} (rendered)", errors)
    for path in files:
        relative = str(path.relative_to(root))
        if path in kustomizations or path.resolve() in patches:
            continue
        if relative in NOT_KUBERNETES:
            skipped.append(f"{relative}: {NOT_KUBERNETES[relative]}")
            continue
        for obj in documents(path.read_text(), relative):
            if obj.get("apiVersion") == KUSTOMIZATION:
                continue
            validated += check(obj, relative, errors)
    for line in skipped:
        print(f"validate-deploy: skipped {line}")
    if errors:
        for line in errors:
            print(f"validate-deploy: {line}", file=sys.stderr)
        sys.exit(1)
    print(
        f"validate-deploy: {validated} objects valid against Kubernetes "
        f"{' and '.join(VERSIONS)} (strict), {len(kustomizations)} kustomizations rendered"
    )


if __name__ == "__main__":
    main()
