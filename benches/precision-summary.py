#!/usr/bin/env python3
"""Summary of a precision-corpus scan (see benches/precision-corpus.sh).

Usage: precision-summary.py PC_DIR OUT_DIR

Prints, among the rest, the info findings by provenance kind (manager and verdict: dpkg/pip
verified, npm test or documentation path, bytecode of a verified source, published key
material) with counts and the total.

Reads OUT_DIR/findings.json, base-findings.json, time.txt, base-time.txt and base-exit.txt,
and PC_DIR/image.json, packages.txt and the build trees (PC_DIR/build) when present, to say
which package owns each finding's file according to the image's own package databases (dpkg
*.list files, pip RECORD files, node_modules paths) - independently of what stowaway itself
reports as `provenance`.
"""
import collections
import glob
import json
import os
import re
import sys

ORDER = ["critical", "high", "medium", "low", "info"]
AT_LEAST_MEDIUM = set(ORDER[:3])


def load_owners(pc_dir):
    """Maps absolute path -> 'manager:package' from the layer trees' package databases."""
    owners = {}
    build = os.path.join(pc_dir, "build")
    for step in sorted(glob.glob(os.path.join(build, "*"))):
        for lst in glob.glob(os.path.join(step, "var/lib/dpkg/info/*.list")):
            pkg = os.path.basename(lst)[:-5].split(":")[0]
            try:
                for line in open(lst, encoding="utf-8", errors="replace"):
                    owners[line.rstrip("\n")] = "dpkg:" + pkg
            except OSError:
                pass
        for record in glob.glob(os.path.join(step, "usr/local/lib/python3*/dist-packages/*.dist-info/RECORD")):
            site = os.path.dirname(os.path.dirname(record))[len(step):]
            dist = os.path.basename(os.path.dirname(record))[: -len(".dist-info")].rsplit("-", 1)[0]
            for line in open(record, encoding="utf-8", errors="replace"):
                rel = line.rsplit(",", 2)[0]
                if rel:
                    owners[os.path.normpath(os.path.join(site, rel))] = "pip:" + dist
    return owners


NPM_PATH = re.compile(r"/node_modules/((?:@[^/]+/)?[^/]+)(?=/)")


def owner_of(path, owners):
    if not path:
        return "-"
    p = "/" + path.lstrip("/")
    # Merged /usr: dpkg records /lib/..., /bin/..., /sbin/... where the file sits under /usr.
    for candidate in (p, re.sub(r"^/usr/(lib|lib64|bin|sbin)/", r"/\1/", p)):
        if candidate in owners:
            return owners[candidate]
    m = list(NPM_PATH.finditer(p))
    if m:
        return "npm:" + m[-1].group(1)
    return "unowned"


TEST = re.compile(r"(^|/)(tests?|testdata|testing|test_data|fixtures?|__tests__|spec|testsuite|"
                  r"test-data|testcases|unittests?)(/|$)|_test\.go$|(^|/)test_[^/]*\.py$|\.test\.js$",
                  re.I)
DOCS = re.compile(r"(^|/)(docs?|examples?|samples?|man|demo)(/|$)|\.(md|rst|txt|html?)$|README", re.I)
BINARY = re.compile(r"\.so(\.[0-9.]+)?$|^/?usr/(s?bin|lib/x86_64-linux-gnu)/|\.node$|\.a$")


def cause_of(f):
    path = f["location"].get("path") or ""
    rule = f["rule_id"].lower()
    if f["location"].get("archive_path"):
        path = path + "!" + "!".join(f["location"]["archive_path"])
    if "cert" in rule and "key" not in rule:
        return "certificate"
    if TEST.search(path):
        return "test fixture in a package"
    if BINARY.search(path):
        return "compiled-in (binary)"
    if DOCS.search(path):
        return "documentation / example"
    return "other (source, docstring, config)"


def where(f):
    loc = f["location"]
    w = loc.get("path") or (("config " + str(loc.get("field"))) if loc.get("field") else "?")
    if loc.get("archive_path"):
        w += "!" + "!".join(loc["archive_path"])
    return w


def layer_name(f, names):
    i = f["location"].get("layer_index")
    return names[i] if isinstance(i, int) and i < len(names) else "config"


def provenance_key(f):
    p = f.get("provenance")
    if not isinstance(p, dict):
        return None
    parts = [str(p.get("manager", "?")), str(p.get("package", "?"))]
    if "verified" in p:
        parts.append("verified" if p.get("verified") else "unverified")
    if p.get("published_in") or p.get("source"):
        parts.append(str(p.get("published_in") or p.get("source")))
    return " ".join(parts)


VERDICT_WORDS = {
    "unmodified": "verified (hash matches)",
    "test-or-example": "test/fixture/example path",
    "documentation": "documentation/type declarations",
    "compiled-from-verified-source": "bytecode of a verified source",
    "modified": "MODIFIED after install",
    "not-hashed": "not hashed",
    "no-recorded-hash": "no recorded hash",
}


def provenance_kind(f):
    """The kind of provenance that explains an info finding: manager and verdict, and whether
    the key material is in the published list (signatures/published-keys.tsv)."""
    p = f.get("provenance") if isinstance(f.get("provenance"), dict) else None
    published = isinstance(f.get("details"), dict) and "published_in" in f["details"]
    if p:
        kind = f"{p.get('manager', '?')} {VERDICT_WORDS.get(p.get('verdict'), p.get('verdict'))}"
    else:
        kind = "no package"
    if published:
        kind += " + published"
    elif not p:
        kind += " (info by rule)"
    return kind


def time_of(path):
    try:
        t = open(path).read()
    except OSError:
        return "?"
    wall = re.search(r"Elapsed \(wall clock\) time.*: (\S+)", t)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", t)
    user = re.search(r"User time \(seconds\): (\S+)", t)
    return (f"wall {wall.group(1) if wall else '?'}, user CPU {user.group(1) if user else '?'} s, "
            f"peak RSS {int(rss.group(1)) / 1024:.0f} MB" if rss else "peak RSS ?")


def findings_of(report):
    return [f for im in report["images"] for f in im["findings"]]


def certificates_of(report):
    certs = []
    for im in report["images"]:
        c = im.get("certificates")
        if isinstance(c, list):
            certs.extend(c)
        elif isinstance(c, dict):
            certs.extend(c.get("items") or c.get("certificates") or [])
    return certs if any("certificates" in im for im in report["images"]) else None


def main():
    pc_dir, out_dir = sys.argv[1], sys.argv[2]
    image = json.load(open(os.path.join(pc_dir, "image.json")))
    names = [l["layer"] for l in image["layers"]]
    owners = load_owners(pc_dir)
    packages = collections.Counter(l.split()[0] for l in open(os.path.join(pc_dir, "packages.txt")))

    # --- base image ---
    base = json.load(open(os.path.join(out_dir, "base-findings.json")))
    base_exit = open(os.path.join(out_dir, "base-exit.txt")).read().strip()
    bf = findings_of(base)
    bsev = collections.Counter(f["severity"] for f in bf)
    print(f"== base image (debootstrap minbase bookworm, {image['base_bytes'] / 1e6:.0f} MB, "
          f"{packages.get('dpkg-base', 0)} packages)")
    print(f"exit code with the default gate: {base_exit}  (acceptance: 0)")
    print("findings by severity: " + ", ".join(f"{s} {bsev.get(s, 0)}" for s in ORDER))
    print(f"scan: {time_of(os.path.join(out_dir, 'base-time.txt'))}")
    for f in sorted(bf, key=lambda f: (ORDER.index(f["severity"]), f["rule_id"], where(f))):
        if f["severity"] != "info":
            print(f"  {f['severity']:8} {f['rule_id']:30} {where(f)}  [{owner_of(f['location'].get('path'), owners)}]"
                  + (f"  provenance: {provenance_key(f)}" if provenance_key(f) else ""))

    # --- full image ---
    report = json.load(open(os.path.join(out_dir, "findings.json")))
    findings = findings_of(report)
    total_pkgs = sum(packages.values())
    print()
    print(f"== full image ({image['image_bytes'] / 1e6:.0f} MB, layers "
          + ", ".join(f"{l['layer']} {l['bytes'] / 1e6:.0f} MB" for l in image["layers"]) + ")")
    print(f"packages: {total_pkgs} (" + ", ".join(f"{m} {n}" for m, n in sorted(packages.items()))
          + f"; list: {pc_dir}/packages.txt)")
    print(f"scan: {time_of(os.path.join(out_dir, 'time.txt'))}")
    sev = collections.Counter(f["severity"] for f in findings)
    print("findings by severity: " + ", ".join(f"{s} {sev.get(s, 0)}" for s in ORDER))
    high = [f for f in findings if f["severity"] in AT_LEAST_MEDIUM]
    print(f"findings at medium or above: {len(high)}  (acceptance: 0)")

    def table(title, key, items, limit=None):
        c = collections.Counter(key(f) for f in items)
        print(title)
        for k, n in c.most_common(limit):
            print(f"  {n:5}  {k}")
        if limit and len(c) > limit:
            print(f"  ({len(c) - limit} more)")

    if high:
        table("  by cause (path heuristics):", cause_of, high)
        table("  by rule:", lambda f: f"{f['severity']:8} {f['rule_id']}", high)
        table("  by owning package (the image's own package databases):",
              lambda f: owner_of(f["location"].get("path"), owners), high)
        table("  by layer:", lambda f: layer_name(f, names), high)
        print("  every finding at medium or above (severity rule layer path:line [owner] cause):")
        for f in sorted(high, key=lambda f: (ORDER.index(f["severity"]), f["rule_id"], where(f))):
            print(f"    {f['severity']:8} {f['rule_id']:30} {layer_name(f, names):6} "
                  f"{where(f)}:{f['location'].get('line')} [{owner_of(f['location'].get('path'), owners)}]"
                  f" {cause_of(f)}" + (f" provenance: {provenance_key(f)}" if provenance_key(f) else ""))
    low = [f for f in findings if f["severity"] == "low"]
    if low:
        table(f"low findings: {len(low)}, by rule:", lambda f: f["rule_id"], low)
    info = [f for f in findings if f["severity"] == "info"]
    with_prov = [f for f in info if provenance_key(f)]
    print(f"info findings: {len(info)} ({len(with_prov)} with a provenance object)")
    if with_prov:
        table("  by provenance (manager package [verified] [published in]):", provenance_key, with_prov)
    without = [f for f in info if not provenance_key(f)]
    if without:
        table("  without provenance, by rule:", lambda f: f["rule_id"], without)
        table("  without provenance, by owning package (the image's own databases; top 25):",
              lambda f: owner_of(f["location"].get("path"), owners), without, limit=25)
    if info:
        table(f"  info findings by provenance kind (total {len(info)}):", provenance_kind, info)
    certs = certificates_of(report)
    if certs is not None:
        print(f"certificates inventory: {len(certs)} entries")
    else:
        print("certificates inventory: not in this report (findings only)")


if __name__ == "__main__":
    main()
