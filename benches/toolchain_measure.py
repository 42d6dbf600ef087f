"""Runs the toolchain comparison of benches/whole-image.sh --toolchain and prints its table.

    python3 benches/toolchain_measure.py RESULTS.json RUNS LABEL=COMMAND...

Each command runs RUNS times, one after the other, under /usr/bin/time -v (through sh -c);
wall and CPU (user + system) are the medians of the runs, peak RSS (VmHWM, the kernel's own
high-water mark, mapped file pages included) the largest. A command that fails fails the
bench. Labels starting with `stowaway` are held to the memory bound: a peak over
RSS_LIMIT_MB (decimal megabytes, default 300) fails the run after the table is printed.
"""

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile


def run_once(command):
    fd, out = tempfile.mkstemp(prefix="time-", suffix=".txt")
    os.close(fd)
    try:
        status = subprocess.run(["/usr/bin/time", "-v", "-o", out, "sh", "-c", command],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        text = open(out).read()
    finally:
        os.unlink(out)
    if status.returncode not in (0, 1):
        sys.exit(f"toolchain_measure.py: `{command}` exited {status.returncode}:\n"
                 f"{status.stderr.decode(errors='replace')[-2000:]}")
    def field(name):
        match = re.search(rf"^\s*{re.escape(name)}: (.+)$", text, re.M)
        if not match:
            sys.exit(f"toolchain_measure.py: no `{name}` in /usr/bin/time's output:\n{text}")
        return match.group(1).strip()
    wall = 0.0
    for part in field("Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":"):
        wall = wall * 60 + float(part)
    cpu = float(field("User time (seconds)")) + float(field("System time (seconds)"))
    rss_mb = int(field("Maximum resident set size (kbytes)")) * 1024 / 1e6
    return wall, cpu, rss_mb


def main():
    results_path, runs = sys.argv[1], int(sys.argv[2])
    limit = float(os.environ.get("RSS_LIMIT_MB", "300"))
    rows = []
    for spec in sys.argv[3:]:
        label, command = spec.split("=", 1)
        samples = []
        for _ in range(runs):
            samples.append(run_once(command))
            print(f"  {label}: {samples[-1][0]:.2f} s wall, {samples[-1][1]:.2f} s CPU, "
                  f"{samples[-1][2]:.0f} MB", file=sys.stderr)
        rows.append({
            "label": label, "command": command,
            "wall_s": statistics.median(s[0] for s in samples),
            "cpu_s": statistics.median(s[1] for s in samples),
            "peak_rss_mb": max(s[2] for s in samples),
            "samples": samples,
        })
    with open(results_path, "w") as f:
        json.dump(rows, f, indent=2)
    by_label = {r["label"]: r for r in rows}
    print(f"\n{'command':44} {'wall s':>8} {'CPU s':>8} {'peak RSS MB':>12}")
    for r in rows:
        print(f"{r['label']:44} {r['wall_s']:8.2f} {r['cpu_s']:8.2f} {r['peak_rss_mb']:12.0f}")
    ratios = [
        ("trivy / stowaway docker-archive (wall)", "trivy docker-archive",
         "stowaway docker-archive", ">= 10"),
        ("stowaway OCI gzip / gzip -dc (wall)", "stowaway oci gzip", "gzip -dc layers",
         "<= 0.4"),
    ]
    print()
    for name, a, b, goal in ratios:
        if a in by_label and b in by_label:
            ratio = by_label[a]["wall_s"] / by_label[b]["wall_s"]
            print(f"{name:44} {ratio:8.2f}   (goal {goal})")
    over = [r for r in rows if r["label"].startswith("stowaway") and r["peak_rss_mb"] > limit]
    for r in over:
        print(f"whole-image.sh: {r['label']}: peak RSS {r['peak_rss_mb']:.0f} MB is over the "
              f"{limit:.0f} MB bound", file=sys.stderr)
    sys.exit(1 if over else 0)


if __name__ == "__main__":
    main()
