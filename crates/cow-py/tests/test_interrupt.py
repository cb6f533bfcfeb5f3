"""Ctrl-C in the middle of one large file: a real SIGINT sent to a Python
process copying a 1 GiB file (ext4 and tmpfs, where the bytes are really
copied) raises KeyboardInterrupt at once, before the file is finished, and
leaves no temporary and no partial new file."""

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

import cow_copy

SIZE = 1 << 30

# The child: copies argv[2] to argv[3] with the function named by argv[1],
# then says how it ended and when (CLOCK_MONOTONIC is system-wide).
CHILD = r"""
import sys, time, cow_copy
how, src, dst = sys.argv[1:4]
copy = {
    "copy_file": lambda s, d: cow_copy.copy_file(s, d),
    "copy_file_never": lambda s, d: cow_copy.copy_file(s, d, reflink="never"),
    "copy_file_atomic": lambda s, d: cow_copy.copy_file(s, d, atomic=True),
    "copyfile": cow_copy.copyfile,
    "copy2": cow_copy.copy2,
}[how]
try:
    copy(src, dst)
except KeyboardInterrupt:
    print("interrupted", time.monotonic(), flush=True)
    sys.exit(0)
print("completed", time.monotonic(), flush=True)
sys.exit(3)
"""


def _big_source(path):
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for _ in range(SIZE >> 20):
            f.write(block)
    return path


def _interrupt(how, src, dst, started):
    """Runs the child, sends SIGINT once `started()` is true; returns the
    seconds from the signal to the child's KeyboardInterrupt."""
    child = subprocess.Popen([sys.executable, "-c", CHILD, how, str(src), str(dst)],
                             stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not started():
            assert child.poll() is None, f"{how}: the child ended before the copy started"
            assert time.monotonic() < deadline, f"{how}: the copy never started"
            time.sleep(0.001)
        sent = time.monotonic()
        child.send_signal(signal.SIGINT)
        out, _ = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    word, when = out.split()
    assert word == "interrupted" and child.returncode == 0, \
        f"{how}: the copy ran to its end ({out.strip()}, exit {child.returncode})"
    return float(when) - sent


def _others(d, keep):
    return sorted(n for n in os.listdir(d) if n not in keep)


@pytest.mark.parametrize("fs_name", ["ext4", "tmpfs"])
def test_ctrl_c_stops_a_large_file_half_way(request, fs_name):
    from conftest import fs_dir
    d = fs_dir(fs_name, request)
    try:
        src = _big_source(d / "src")
        dst = d / "dst"
        for how in ["copy_file", "copy_file_never", "copy_file_atomic", "copyfile", "copy2"]:
            # Started: the destination (or the atomic temporary) exists.
            latency = _interrupt(how, src, dst, lambda: _others(d, {"src"}))
            # A second is far less than the copy of 1 GiB takes here, and
            # far more than one chunk plus the 50 ms signal tick.
            assert latency < 1.0, f"{how}: KeyboardInterrupt came {latency:.2f} s after SIGINT"
            # The new destination never held anything the user had: removed,
            # and no temporary either.
            assert _others(d, {"src"}) == [], how

        # Over an existing destination, an atomic copy leaves it untouched.
        old = b"old content\n" * 1000
        dst.write_bytes(old)
        latency = _interrupt("copy_file_atomic", src, dst,
                             lambda: any(cow_copy.TEMP_MARKER in n for n in os.listdir(d)))
        assert latency < 1.0, f"atomic over a file: {latency:.2f} s"
        assert dst.read_bytes() == old
        assert _others(d, {"src", "dst"}) == []
    finally:
        shutil.rmtree(d, ignore_errors=True)
