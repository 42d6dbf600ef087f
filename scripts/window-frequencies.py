#!/usr/bin/env python3
"""Writes src/detect/window_frequencies.tsv: how often each common window occurs in the content
of real images, which the keyword prefilter (src/detect/keywords/) reads to file every keyword
under its rarest window.

    python3 scripts/window-frequencies.py LAYER.tar... > src/detect/window_frequencies.tsv

A window is four bytes as the prefilter reads them (src/detect/keywords/window.rs): the first
three case folded (every byte with its 0x20 bit cleared), the fourth cut to its low five bits,
as one little-endian number.

The input is uncompressed layer tars; the committed table was made from the seven package
layers of the toolchain bench image (`bash benches/whole-image.sh --toolchain
--generate-only`: Debian's JDK, Go, CPython and its test suite, SciPy, pandas, LLVM, Rust,
GCC and Boost, and a bookworm base), forty 1 MB samples spread over each layer. The table
keeps the 32,768 most common windows (about 60 % of all positions), in occurrences per
million positions, most common first; a window not in it is rarer than the last. Needs numpy.
"""

import os
import sys

import numpy as np

KEEP = 32768
SAMPLES_PER_FILE = 40
SAMPLE = 1 << 20


def windows_of(sample):
    """The window at every position of `sample` that has four bytes."""
    b = np.frombuffer(sample, dtype=np.uint8).astype(np.uint32)
    return (b[:-3] | (b[1:-2] << 8) | (b[2:-1] << 16) | (b[3:] << 24)) & 0x1FDFDFDF


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    # Distinct windows are too many for one counter per possible value (2^29), so each
    # sample's are counted on their own and the counts merged at the end.
    uniques, counts, total = [], [], 0
    for path in sys.argv[1:]:
        size = os.path.getsize(path)
        step = max(size // SAMPLES_PER_FILE, SAMPLE)
        with open(path, "rb") as f:
            for offset in range(0, size, step):
                f.seek(offset)
                sample = f.read(SAMPLE)
                if len(sample) < 4:
                    continue
                windows, count = np.unique(windows_of(sample), return_counts=True)
                uniques.append(windows)
                counts.append(count)
                total += len(sample) - 3
    windows, inverse = np.unique(np.concatenate(uniques), return_inverse=True)
    merged = np.bincount(inverse, weights=np.concatenate(counts))
    order = np.argsort(-merged, kind="stable")[:KEEP]
    print("# window (four bytes, little-endian hex, as the prefilter reads them)"
          "\toccurrences per million positions")
    for at in order:
        print(f"{int(windows[at]):08x}\t{merged[at] * 1e6 / total:.3g}")


if __name__ == "__main__":
    main()
