#!/usr/bin/env python3
# The tree of the 1,000,000-file memory measurement of `cow dedupe -r`
# (docs/dedupe.md): 1,000 directories of 1,000 files under ROOT, 60 % of
# them 1-2,047 bytes and 40 % 2-12 KiB, one in four a copy of one of 1,000
# contents (seeded: the same tree every time). About 2 minutes, 3.5 GB.
#   python3 benches/scripts/million-files.py ROOT
import os, random, sys
root = sys.argv[1]
rng = random.Random(42)
commons = []
for k in range(1000):
    n = rng.randint(1, 2047) if k % 5 < 3 else rng.randint(2048, 12288)
    commons.append(rng.randbytes(n))
for d in range(1000):
    dp = os.path.join(root, f"d{d:04}")
    os.mkdir(dp)
    for f in range(1000):
        if rng.random() < 0.25:
            data = commons[rng.randrange(1000)]
        else:
            n = rng.randint(1, 2047) if rng.random() < 0.6 else rng.randint(2048, 12288)
            data = rng.randbytes(n)
        fd = os.open(os.path.join(dp, f"f{f:04}"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, data)
        os.close(fd)
