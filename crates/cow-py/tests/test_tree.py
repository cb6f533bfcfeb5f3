"""copytree: shutil's semantics (ignore, copy_function, symlinks,
dangling links, dirs_exist_ok, special files, the error list), checked by
running shutil.copytree and cow_copy.copytree on the same tree."""

import os
import shutil

import pytest

import cow_copy
from helpers import pattern, snapshot, write


def make_tree(root):
    root.mkdir()
    write(root / "a.py", b"print('a')\n", mode=0o644)
    write(root / "big.bin", pattern(300_000), mode=0o600)
    write(root / "run.sh", b"#!/bin/sh\n", mode=0o755)
    (root / "pkg" / "sub").mkdir(parents=True)
    write(root / "pkg" / "__init__.py", b"")
    write(root / "pkg" / "sub" / "m.py", pattern(5000))
    write(root / "pkg" / "x.pyc", b"\0" * 100)
    (root / "empty").mkdir()
    os.chmod(root / "empty", 0o700)
    os.symlink("a.py", root / "link_file")
    os.symlink("pkg", root / "link_dir")
    old = 1_500_000_000_000_000_000
    os.utime(root / "a.py", ns=(old, old))
    os.utime(root / "pkg", ns=(old, old))
    return root


def both(tmp, **kw):
    """Runs shutil.copytree and cow_copy.copytree; returns the two copies'
    snapshots and their results (return value or shutil.Error list)."""
    out = []
    for name, impl in (("shutil", shutil), ("cow", cow_copy)):
        dst = tmp / f"out_{name}"
        try:
            r = impl.copytree(tmp / "src", dst, **kw)
            res = ("ok", r == dst)
        except shutil.Error as e:
            res = ("error", sorted(
                (os.path.relpath(s, tmp / "src"), os.path.relpath(d, dst)) for s, d, _ in e.args[0]
            ))
        out.append((snapshot(dst, times=True) if dst.exists() else None, res))
    return out


@pytest.mark.parametrize("symlinks", [False, True])
def test_same_tree_as_shutil(anyfs, symlinks):
    _, d = anyfs
    make_tree(d / "src")
    (s, sr), (c, cr) = both(d, symlinks=symlinks)
    assert sr == cr == ("ok", True)
    assert c == s
    # Directory times are set after their contents, like shutil's.
    assert os.stat(d / "out_cow" / "pkg").st_mtime_ns == os.stat(d / "src" / "pkg").st_mtime_ns


def test_ignore_is_called_the_same_way(anyfs):
    _, d = anyfs
    make_tree(d / "src")
    calls = {}

    def recorder(name):
        def ignore(path, names):
            calls.setdefault(name, []).append((os.path.relpath(path, d / "src"), sorted(names)))
            return {n for n in names if n.endswith(".pyc")} | {"empty"}
        return ignore

    for name, impl in (("shutil", shutil), ("cow", cow_copy)):
        impl.copytree(d / "src", d / f"out_{name}", ignore=recorder(name))
    assert sorted(calls["cow"]) == sorted(calls["shutil"])
    assert snapshot(d / "out_cow", True) == snapshot(d / "out_shutil", True)
    assert not (d / "out_cow" / "pkg" / "x.pyc").exists()
    # shutil.ignore_patterns works as the ignore callable too.
    cow_copy.copytree(d / "src", d / "pat", ignore=shutil.ignore_patterns("*.py"))
    assert not (d / "pat" / "a.py").exists() and (d / "pat" / "big.bin").exists()


def test_custom_copy_function_gets_the_same_calls(anyfs):
    _, d = anyfs
    make_tree(d / "src")
    calls = {}
    for name, impl in (("shutil", shutil), ("cow", cow_copy)):
        out = d / f"out_{name}"

        def fn(s, t, name=name, out=out):
            calls.setdefault(name, []).append((os.path.relpath(s, d / "src"), os.path.relpath(t, out)))
            return shutil.copy(s, t)
        impl.copytree(d / "src", out, copy_function=fn)
    assert calls["cow"] == calls["shutil"]
    assert snapshot(d / "out_cow") == snapshot(d / "out_shutil")


def test_dirs_exist_ok(anyfs):
    _, d = anyfs
    make_tree(d / "src")
    for impl in (shutil, cow_copy):
        dst = d / f"out_{impl.__name__}"
        dst.mkdir()
        write(dst / "keep", b"mine")
        with pytest.raises(FileExistsError):
            impl.copytree(d / "src", dst)
        assert impl.copytree(d / "src", dst, dirs_exist_ok=True) == dst
        assert (dst / "keep").read_bytes() == b"mine"
    assert snapshot(d / "out_cow_copy") == snapshot(d / "out_shutil")


def test_dangling_symlinks(anyfs):
    _, d = anyfs
    make_tree(d / "src")
    os.symlink(str(d / "nowhere"), d / "src" / "dangling")
    (s, sr), (c, cr) = both(d)
    assert sr[0] == "error" and cr == sr
    assert cr[1] == [("dangling", "dangling")]
    assert c == s
    for impl in (shutil, cow_copy):
        out = d / f"ign_{impl.__name__}"
        assert impl.copytree(d / "src", out, ignore_dangling_symlinks=True) == out
        assert not os.path.lexists(out / "dangling")
        out = d / f"keep_{impl.__name__}"
        impl.copytree(d / "src", out, symlinks=True)
        assert os.readlink(out / "dangling") == str(d / "nowhere")


def test_special_files_are_listed(anyfs):
    _, d = anyfs
    make_tree(d / "src")
    os.mkfifo(d / "src" / "pkg" / "fifo")
    (s, sr), (c, cr) = both(d)
    # Found twice: in pkg and through the followed link_dir.
    assert sr == ("error", [("link_dir/fifo", "link_dir/fifo"), ("pkg/fifo", "pkg/fifo")])
    assert cr == sr
    assert c == s
    for impl in (shutil, cow_copy):
        with pytest.raises(shutil.Error) as e:
            impl.copytree(d / "src", d / f"again_{impl.__name__}")
        for src, dst, why in e.value.args[0]:
            assert why == f"`{src}` is a named pipe"


def test_clones_are_shared(reflinkfs):
    _, d = reflinkfs
    make_tree(d / "src")
    cow_copy.copytree(d / "src", d / "out")
    sharing = cow_copy.verify(d / "src" / "big.bin", d / "out" / "big.bin")
    assert sharing.ratio == 1.0 and sharing.is_clone
    with open(d / "out" / "big.bin", "r+b") as f:
        f.write(b"changed")
    assert (d / "src" / "big.bin").read_bytes() == pattern(300_000)
