"""copyfile, copy and copy2: the same results and errors as shutil's, on
every test filesystem (each behaviour is run with both implementations)."""

import errno
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import cow_copy
from helpers import pattern, write

IMPLS = [pytest.param(shutil, id="shutil"), pytest.param(cow_copy, id="cow")]
SIZES = [0, 1, 4095, 4096, 4097, (1 << 20) + 3]


@pytest.mark.parametrize("size", SIZES)
def test_bytes_equal_for_every_size(anyfs, size):
    _, d = anyfs
    data = pattern(size)
    src = write(d / "src", data)
    # A larger existing destination is cut to the new length.
    dst = write(d / "dst", pattern(size + 10000, seed=3))
    assert cow_copy.copyfile(src, dst) == dst
    assert dst.read_bytes() == data
    assert cow_copy.copyfile(str(src), str(d / "new")) == str(d / "new")
    assert (d / "new").read_bytes() == data


@pytest.mark.parametrize("impl", IMPLS)
def test_return_values_and_path_types(anyfs, impl):
    _, d = anyfs
    write(d / "src", b"abc")
    (d / "sub").mkdir()
    assert impl.copyfile(d / "src", d / "a") == d / "a"
    assert impl.copyfile(os.fsencode(d / "src"), os.fsencode(d / "b")) == os.fsencode(d / "b")
    # copy and copy2 into a directory return the file's path there.
    assert impl.copy(str(d / "src"), str(d / "sub")) == str(d / "sub" / "src")
    assert impl.copy2(os.fsencode(d / "src"), os.fsencode(d / "sub")) == os.fsencode(d / "sub" / "src")
    assert (d / "sub" / "src").read_bytes() == b"abc"


@pytest.mark.parametrize("impl", IMPLS)
def test_mode_rules(anyfs, impl):
    _, d = anyfs
    src = write(d / "src", b"data", mode=0o751)
    old = 1_000_000_000_123_456_789
    os.utime(src, ns=(old, old))
    umask = os.umask(0o022)
    try:
        impl.copyfile(src, d / "cf")
        impl.copy(src, d / "c")
        impl.copy2(src, d / "c2")
    finally:
        os.umask(umask)
    # copyfile: a new file gets 0o666 minus the umask, not the source's mode.
    assert stat.S_IMODE(os.stat(d / "cf").st_mode) == 0o644
    assert stat.S_IMODE(os.stat(d / "c").st_mode) == 0o751
    assert os.stat(d / "c").st_mtime_ns != old
    assert stat.S_IMODE(os.stat(d / "c2").st_mode) == 0o751
    assert os.stat(d / "c2").st_mtime_ns == old
    # copyfile rewrites an existing destination in place: mode and inode
    # stay, a hard link sees the new bytes.
    dst = write(d / "existing", b"old content", mode=0o600)
    os.link(dst, d / "hardlink")
    ino = os.stat(dst).st_ino
    impl.copyfile(src, dst)
    assert stat.S_IMODE(os.stat(dst).st_mode) == 0o600
    assert os.stat(dst).st_ino == ino
    assert (d / "hardlink").read_bytes() == b"data"


def test_copy2_copies_user_xattrs(anyfs):
    fs, d = anyfs
    src = write(d / "src", b"x")
    try:
        os.setxattr(src, "user.cow", b"moo")
    except OSError as e:
        pytest.skip(f"SKIP on {fs}: user xattrs refused ({e})")
    cow_copy.copy2(src, d / "dst")
    assert os.getxattr(d / "dst", "user.cow") == b"moo"
    cow_copy.copy(src, d / "plain")
    assert "user.cow" not in os.listxattr(d / "plain")


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("how", ["path", "hardlink", "symlink"])
def test_same_file_is_refused_and_loses_nothing(anyfs, impl, how):
    _, d = anyfs
    src = write(d / "src", b"precious")
    other = {"path": src, "hardlink": d / "hl", "symlink": d / "sl"}[how]
    if how == "hardlink":
        os.link(src, other)
    elif how == "symlink":
        os.symlink(src, other)
    for fn in (impl.copyfile, impl.copy, impl.copy2):
        with pytest.raises(shutil.SameFileError) as e:
            fn(src, other)
        assert str(e.value) == f"{src!r} and {other!r} are the same file"
        assert src.read_bytes() == b"precious"


@pytest.mark.parametrize("impl", IMPLS)
def test_follow_symlinks_false_copies_the_link(anyfs, impl):
    _, d = anyfs
    write(d / "target", b"t")
    os.symlink("target", d / "link")
    assert impl.copyfile(d / "link", d / "cf", follow_symlinks=False) == d / "cf"
    assert os.readlink(d / "cf") == "target"
    impl.copy2(d / "link", d / "c2", follow_symlinks=False)
    assert os.readlink(d / "c2") == "target"
    impl.copy(d / "link", d / "c1", follow_symlinks=False)
    assert os.readlink(d / "c1") == "target"
    # Followed (the default): the bytes.
    impl.copyfile(d / "link", d / "followed")
    assert not os.path.islink(d / "followed")
    assert (d / "followed").read_bytes() == b"t"


def _error(fn, *args):
    with pytest.raises(OSError) as e:
        fn(*args)
    v = e.value
    return type(v), v.errno, v.filename, str(v)


@pytest.mark.parametrize("impl", IMPLS)
def test_errors_carry_type_errno_and_filename(anyfs, impl):
    _, d = anyfs
    src = write(d / "src", b"x")
    (d / "dir").mkdir()
    missing = d / "missing"
    cases = [
        (impl.copyfile, missing, d / "dst", FileNotFoundError, errno.ENOENT, str(missing)),
        (impl.copyfile, str(missing), d / "dst", FileNotFoundError, errno.ENOENT, str(missing)),
        (impl.copyfile, os.fsencode(missing), d / "dst", FileNotFoundError, errno.ENOENT, os.fsencode(missing)),
        (impl.copyfile, src, d / "nodir" / "dst", FileNotFoundError, errno.ENOENT, str(d / "nodir" / "dst")),
        (impl.copyfile, d / "dir", d / "dst", IsADirectoryError, errno.EISDIR, str(d / "dir")),
        (impl.copyfile, src, d / "dir", IsADirectoryError, errno.EISDIR, str(d / "dir")),
        (impl.copy2, missing, d / "dst", FileNotFoundError, errno.ENOENT, str(missing)),
    ]
    for fn, a, b, typ, no, name in cases:
        t, n, f, _ = _error(fn, a, b)
        assert (t, n, f) == (typ, no, name), (fn, a, b)


@pytest.mark.parametrize("impl", IMPLS)
def test_named_pipes_are_special_files(anyfs, impl):
    _, d = anyfs
    src = write(d / "src", b"x")
    os.mkfifo(d / "fifo")
    with pytest.raises(shutil.SpecialFileError, match="is a named pipe"):
        impl.copyfile(d / "fifo", d / "dst")
    with pytest.raises(shutil.SpecialFileError, match="is a named pipe"):
        impl.copyfile(src, d / "fifo")
    with pytest.raises(shutil.SpecialFileError, match="is a named pipe"):
        impl.copy2(d / "fifo", d / "dst2")


_CHILD = r"""
import json, os, shutil, sys
import cow_copy
os.setgid(65534); os.setuid(65534)
out = {}
for name, impl in (("shutil", shutil), ("cow", cow_copy)):
    for fn in ("copyfile", "copy", "copy2"):
        for args in ((sys.argv[1], sys.argv[2]), (sys.argv[3], sys.argv[4])):
            try:
                getattr(impl, fn)(*args)
                r = None
            except OSError as e:
                r = [type(e).__name__, e.errno, e.filename, str(e)]
            out.setdefault(fn + repr(args), {})[name] = r
print(json.dumps(out))
"""


def test_permission_errors_match_shutil(anyfs):
    fs, d = anyfs
    if os.geteuid() != 0:
        pytest.skip(f"SKIP on {fs}: needs root to drop to another user")
    write(d / "src", b"x", mode=0o644)
    write(d / "secret", b"x", mode=0o600)
    (d / "ro").mkdir(mode=0o555)
    # Unwritable destination directory; unreadable source.
    args = [str(d / "src"), str(d / "ro" / "dst"), str(d / "secret"), str(d / "out")]
    os.chmod(d, 0o777)
    r = subprocess.run([sys.executable, "-c", _CHILD, *args], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for case, res in json.loads(r.stdout).items():
        assert res["shutil"] is not None and res["shutil"][0] == "PermissionError", case
        assert res["cow"] == res["shutil"], case
