"""cow_copy against shutil: copytree of a real package tree and copyfile of
a large file, on each filesystem exported by `cargo xtask bench-python`
(COW_TEST_BTRFS, COW_TEST_XFS, COW_TEST_EXT4, COW_TEST_TMPFS) or --dir.

The tree is the unpacked wheels of numpy, pandas, scipy, matplotlib and
sympy for this Python, downloaded once with pip into the cache. Runs of the
two tools alternate (A/B, then B/A) so load from other processes hits both;
the page cache is flushed (sync, not dropped) before each timed run; the
medians of wall and CPU time (user+sys, every thread) and their ratios are
printed as a markdown table per filesystem, with the load average, and
written as JSON.
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import cow_copy

PACKAGES = ["numpy", "pandas", "scipy", "matplotlib", "sympy"]
ENV = [("btrfs", "COW_TEST_BTRFS"), ("xfs", "COW_TEST_XFS"),
       ("ext4", "COW_TEST_EXT4"), ("tmpfs", "COW_TEST_TMPFS")]


def package_tree(cache: Path) -> Path:
    """The unpacked wheels (downloaded once)."""
    tree = cache / "site-packages"
    done = cache / "site-packages.done"
    if done.exists():
        return tree
    wheels = cache / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    if not any(wheels.glob("*.whl")):
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet",
                        "--disable-pip-version-check", "--no-deps",
                        "--only-binary=:all:", "-d", str(wheels), *PACKAGES],
                       check=True)
    shutil.rmtree(tree, ignore_errors=True)
    for whl in sorted(wheels.glob("*.whl")):
        with zipfile.ZipFile(whl) as z:
            z.extractall(tree)
    done.touch()
    return tree


def tree_stats(root: Path):
    files = size = 0
    for dirpath, _, names in os.walk(root):
        for n in names:
            files += 1
            size += os.lstat(os.path.join(dirpath, n)).st_size
    return files, size


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
    return r.ru_utime + r.ru_stime


def timed(fn, *args):
    """(wall seconds, CPU seconds) of one call."""
    os.sync()
    c, t = cpu(), time.perf_counter()
    fn(*args)
    return time.perf_counter() - t, cpu() - c


def remove(p: Path):
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)
    elif p.exists():
        p.unlink()


def ab(tools, args_for, runs):
    """Interleaved runs: returns {tool: [seconds]}."""
    out = {name: [] for name, _ in tools}
    for i in range(runs):
        order = tools if i % 2 == 0 else tools[::-1]
        for name, fn in order:
            src, dst = args_for(name)
            out[name].append(timed(fn, src, dst))
            remove(dst)
            print(f"  {name} run {i + 1}: {out[name][-1][0]:.3f} s", file=sys.stderr, flush=True)
    return out


def bench_fs(fs: str, root: Path, tree: Path, runs: int, file_mib: int):
    work = root / "cow-py-bench"
    remove(work)
    work.mkdir()
    results = []
    try:
        src_tree = work / "tree"
        print(f"bench_shutil: {fs} at {root}", file=sys.stderr, flush=True)
        shutil.copytree(tree, src_tree)  # the source lives on this filesystem
        files, size = tree_stats(src_tree)
        t = ab([("shutil.copytree", shutil.copytree), ("cow_copy.copytree", cow_copy.copytree)],
               lambda name: (src_tree, work / f"out-{name}"), runs)
        results.append(("copytree", f"{files} files, {size >> 20} MiB", t))
        big = work / "big.bin"
        with open(big, "wb") as f:
            block = os.urandom(1 << 20)
            for _ in range(file_mib):
                f.write(block)
        t = ab([("shutil.copyfile", shutil.copyfile), ("cow_copy.copyfile", cow_copy.copyfile)],
               lambda name: (big, work / f"out-{name}"), runs)
        results.append(("copyfile", f"{file_mib} MiB", t))
    finally:
        remove(work)
    return [(fs, w, what, t) for w, what, t in results]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds >= 0.01 else f"{seconds * 1000:.1f} ms"


def ratio(a: float, b: float) -> str:
    """a / b, or "> N" when b is below the clock's resolution here."""
    if b < 1e-3:
        return f"> {a / 1e-3:.0f}x"
    return f"{a / b:.2f}x"


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--dir", type=Path, help="bench here instead of the COW_TEST_* mounts")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--file-mib", type=int, default=256)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--only", help="comma-separated filesystems to bench (default: all exported)")
    a = ap.parse_args()
    tree = package_tree(a.cache)
    targets = [("dir", a.dir)] if a.dir else [
        (fs, Path(os.environ[var])) for fs, var in ENV if os.environ.get(var)
        and (not a.only or fs in a.only.split(","))]
    if not targets:
        sys.exit("bench_shutil: no filesystem (run under `cargo xtask bench-python` or pass --dir)")
    load_start = os.getloadavg()[0]
    rows = []
    for fs, root in targets:
        rows += bench_fs(fs, root, tree, a.runs, a.file_mib)
    load_end = os.getloadavg()[0]
    cpus = os.cpu_count() or 1
    print(f"\ncow_copy vs shutil, Python {sys.version.split()[0]}, median of {a.runs} "
          f"interleaved runs (min-max). wall = elapsed time; CPU = user+sys of the "
          f"process, all threads; ratio = shutil / cow_copy (above 1: cow_copy is faster)")
    print(f"{cpus} CPUs, load average {load_start:.1f} at the start and {load_end:.1f} at the end")
    if max(load_start, load_end) > cpus:
        print("NOTE: the machine was loaded (load average above the CPU count): wall times "
              "are inflated and noisy; read the ratios and the CPU times")
    print()
    print("| fs | workload | wall shutil | wall cow_copy | wall ratio "
          "| CPU shutil | CPU cow_copy | CPU ratio |")
    print("|---|---|---|---|---|---|---|---|")
    out = []
    for fs, w, what, t in rows:
        (sn, st), (cn, ct) = sorted(t.items(), key=lambda kv: not kv[0].startswith("shutil"))
        sw, cw = [x[0] for x in st], [x[0] for x in ct]
        sm, cm = statistics.median(sw), statistics.median(cw)
        sc, cc = statistics.median(x[1] for x in st), statistics.median(x[1] for x in ct)
        print(f"| {fs} | {what} ({w}) | {ms(sm)} ({ms(min(sw))}-{ms(max(sw))}) "
              f"| {ms(cm)} ({ms(min(cw))}-{ms(max(cw))}) | **{ratio(sm, cm)}** "
              f"| {ms(sc)} | {ms(cc)} | {ratio(sc, cc)} |")
        out.append({"fs": fs, "workload": w, "what": what, sn: st, cn: ct,
                    "speedup": sm / max(cm, 1e-6), "cpu_ratio": sc / max(cc, 1e-6),
                    "load_start": load_start, "load_end": load_end})
    path = a.json or a.cache.parent / "cow-bench" / "python.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    print(f"\nwritten: {path}")


if __name__ == "__main__":
    main()
