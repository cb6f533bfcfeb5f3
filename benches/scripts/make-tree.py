"""Writes FILES files of 1-64 KiB of random bytes under DIR, 100 per
directory (the shape of the bench's tree-* workloads).

Usage: python3 benches/scripts/make-tree.py DIR FILES SEED
"""

import os
import random
import sys

root, files, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
for i in range(files):
    d = f"{root}/d{i // 100:03}"
    os.makedirs(d, exist_ok=True)
    with open(f"{d}/f{i:05}", "wb") as f:
        f.write(rng.randbytes(1024 + rng.randrange(63 * 1024 + 1)))
