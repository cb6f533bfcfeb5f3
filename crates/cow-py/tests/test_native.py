"""The native API: reports that tell the truth, clones verified shared,
holes kept, self-copies refused, Ctrl-C stopping a copy without leaving a
temporary, threads copying in parallel."""

import os
import shutil
import signal
import threading

import pytest

import cow_copy
from helpers import data_map, pattern, sparse, write


def test_clone_is_reported_and_shared(reflinkfs):
    _, d = reflinkfs
    src = write(d / "src", pattern(1 << 20))
    r = cow_copy.copy_file(src, d / "dst")
    assert r.strategy == "cloned" and r.cloned
    assert r.bytes_cloned == r.len == 1 << 20 and r.bytes_copied == 0
    assert r.destination == "created"
    s = cow_copy.verify(src, d / "dst")
    assert s.ratio == 1.0 and s.is_clone and s.shared_bytes == 1 << 20
    # The drop-in clones too.
    cow_copy.copyfile(src, d / "dropin")
    assert cow_copy.verify(src, d / "dropin").is_clone
    assert cow_copy.probe(d).reflink == "yes"


def test_plain_filesystems_copy_and_say_so(plainfs):
    fs, d = plainfs
    src = write(d / "src", pattern(100_000))
    r = cow_copy.copy_file(src, d / "dst")
    assert r.strategy != "cloned" and r.bytes_cloned == 0
    assert r.bytes_copied == 100_000
    assert (d / "dst").read_bytes() == pattern(100_000)
    assert cow_copy.probe(d).reflink == "no"
    # reflink="always" fails and creates nothing.
    with pytest.raises(OSError) as e:
        cow_copy.copy_file(src, d / "never", reflink="always")
    assert e.value.errno is not None and e.value.filename is not None
    assert not os.path.lexists(d / "never")


def test_holes_are_kept(anyfs):
    fs, d = anyfs
    src = sparse(d / "src")
    for name, copy in (("native", cow_copy.copy_file), ("dropin", cow_copy.copyfile),
                       ("copy2", cow_copy.copy2)):
        dst = d / name
        r = copy(src, dst)
        assert dst.read_bytes() == src.read_bytes()
        assert data_map(dst) == data_map(src), fs
        blk = os.statvfs(d).f_bsize
        assert os.stat(dst).st_blocks * 512 <= os.stat(src).st_blocks * 512 + blk
        if name == "native" and fs not in ("btrfs", "xfs"):
            assert r.hole_bytes == 2 << 20


def test_self_copy_refused(anyfs):
    _, d = anyfs
    src = write(d / "src", b"keep me")
    os.symlink("src", d / "link")
    for dst in (src, d / "link"):
        with pytest.raises(shutil.SameFileError):
            cow_copy.copy_file(src, dst)
    assert src.read_bytes() == b"keep me"
    (d / "tree").mkdir()
    with pytest.raises(shutil.SameFileError):
        cow_copy.copy_tree(d / "tree", d / "tree")
    with pytest.raises(OSError) as e:
        cow_copy.copy_tree(d, d / "tree" / "inside")
    assert "into itself" in str(e.value)


def test_native_errors(anyfs):
    _, d = anyfs
    with pytest.raises(FileNotFoundError) as e:
        cow_copy.copy_file(d / "missing", d / "dst")
    assert e.value.filename == str(d / "missing") and "open source" in str(e.value)
    write(d / "exists", b"x")
    cow_copy.copy_file(d / "exists", d / "exists2")
    with pytest.raises(FileExistsError):
        cow_copy.copy_file(d / "exists", d / "exists2", overwrite=False)
    with pytest.raises(ValueError, match="reflink"):
        cow_copy.copy_file(d / "exists", d / "x", reflink="sometimes")


def test_update_if_different_skips_identical(anyfs):
    _, d = anyfs
    src = write(d / "src", pattern(50_000))
    cow_copy.copy_file(src, d / "dst")
    ino = os.stat(d / "dst").st_ino
    r = cow_copy.copy_file(src, d / "dst", update="if-different")
    assert r.strategy == "skipped" and r.destination == "kept"
    assert os.stat(d / "dst").st_ino == ino
    r = cow_copy.copy_file(src, d / "dst", preserve="all", atomic=True)
    assert r.destination == "replaced"


def test_copy_tree_report_and_progress(anyfs):
    fs, d = anyfs
    (d / "src" / "sub").mkdir(parents=True)
    for i in range(20):
        write(d / "src" / "sub" / f"f{i}", pattern(10_000 + i))
    os.symlink("sub", d / "src" / "link")
    seen = []
    r = cow_copy.copy_tree(d / "src", d / "dst", progress=seen.append)
    assert (r.files, r.symlinks, r.failed) == (20, 1, 0)
    assert r.dirs == 2 and not r.failures
    assert seen and seen[-1].files_done == seen[-1].files_total == 20
    assert os.readlink(d / "dst" / "link") == "sub"
    if fs in ("btrfs", "xfs"):
        assert r.bytes_cloned > 0
    # A failure is raised with the report.
    shutil.rmtree(d / "dst")
    (d / "dst").mkdir()
    write(d / "dst" / "sub", b"a file where a directory goes")
    with pytest.raises(cow_copy.CopyTreeError) as e:
        cow_copy.copy_tree(d / "src", d / "dst")
    assert e.value.report.failed >= 1 and e.value.report.failures[0].path.endswith("sub")


def _many_files(root, n, size=20_000):
    root.mkdir()
    for i in range(n):
        write(root / f"f{i:05}", pattern(size, seed=i % 200))


def _no_temporaries(root):
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            assert cow_copy.TEMP_MARKER not in n, os.path.join(dirpath, n)


@pytest.mark.parametrize("fs_name", ["btrfs", "ext4"])
def test_ctrl_c_stops_copy_tree_and_leaves_no_temporary(request, fs_name):
    from conftest import fs_dir
    d = fs_dir(fs_name, request)
    _many_files(d / "src", 3000)

    def interrupt(p):
        if p.files_done > 0:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        cow_copy.copy_tree(d / "src", d / "dst", atomic=True, jobs=2, progress=interrupt)
    copied = sorted(os.listdir(d / "dst"))
    assert 0 < len(copied) < 3000, "the copy was not stopped early"
    _no_temporaries(d / "dst")
    for n in copied:  # every file there is whole
        assert (d / "dst" / n).read_bytes() == (d / "src" / n).read_bytes()
    # The module still works afterwards (atomic copies included).
    cow_copy.copy_file(d / "src" / "f00000", d / "after", atomic=True)
    shutil.rmtree(d, ignore_errors=True)


def test_ctrl_c_stops_the_shutil_copytree(request):
    from conftest import fs_dir
    d = fs_dir("ext4", request)
    _many_files(d / "src", 3000)
    main = threading.get_ident()
    timer = threading.Timer(0.05, lambda: signal.pthread_kill(main, signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            cow_copy.copytree(d / "src", d / "dst")
    finally:
        timer.cancel()
    copied = os.listdir(d / "dst")
    assert len(copied) < 3000, "the copy was not stopped early"
    for n in copied:
        assert (d / "dst" / n).read_bytes() == (d / "src" / n).read_bytes()
    shutil.rmtree(d, ignore_errors=True)


def test_threads_copy_in_parallel(anyfs):
    _, d = anyfs
    srcs = [write(d / f"s{i}", pattern(200_000, seed=i)) for i in range(4)]
    errors = []

    def work(i):
        try:
            for j in range(10):
                cow_copy.copy_file(srcs[i], d / f"d{i}_{j}")
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i in range(4):
        for j in range(10):
            assert (d / f"d{i}_{j}").read_bytes() == pattern(200_000, seed=i)
