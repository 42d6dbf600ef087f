#!/usr/bin/env python3
"""Writes src/detect/window_frequencies.tsv: how often each common three-byte window occurs in
the content of real images, which the keyword prefilter (src/detect/keywords.rs) reads to file
every keyword under its rarest window.

    python3 scripts/window-frequencies.py LAYER.tar... > src/detect/window_frequencies.tsv

The input is uncompressed layer tars; the committed table was made from the seven package
layers of the toolchain bench image (`bash benches/whole-image.sh --toolchain
--generate-only`: Debian's JDK, Go, CPython and its test suite, SciPy, pandas, LLVM, Rust,
GCC and Boost, and a bookworm base), forty 1 MB samples spread over each layer. Windows are
case folded as the prefilter folds them (every byte with its 0x20 bit set). The table keeps
the 4,096 most common windows, in occurrences per million positions, most common first;
a window not in it is rarer than the last. Needs numpy.
"""

import os
import sys

import numpy as np

KEEP = 4096
SAMPLES_PER_FILE = 40
SAMPLE = 1 << 20


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    counts = np.zeros(1 << 24, dtype=np.int64)
    for path in sys.argv[1:]:
        size = os.path.getsize(path)
        step = max(size // SAMPLES_PER_FILE, SAMPLE)
        with open(path, "rb") as f:
            for offset in range(0, size, step):
                f.seek(offset)
                b = np.frombuffer(f.read(SAMPLE), dtype=np.uint8).astype(np.uint32)
                if len(b) < 3:
                    continue
                windows = (b[:-2] | (b[1:-1] << 8) | (b[2:] << 16)) | 0x202020
                counts += np.bincount(windows & 0xFFFFFF, minlength=1 << 24)
    total = counts.sum()
    order = np.argsort(counts, kind="stable")[::-1][:KEEP]
    print("# window (three bytes, little-endian hex, folded)\toccurrences per million positions")
    for window in order:
        per_million = counts[window] * 1e6 / total
        print(f"{int(window):06x}\t{per_million:.1f}")


if __name__ == "__main__":
    main()
