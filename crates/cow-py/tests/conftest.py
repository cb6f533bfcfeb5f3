"""Real test filesystems for the cow_copy tests, found like the Rust tests
find them: `cargo xtask test-python` mounts btrfs, XFS (reflink), ext4 and
tmpfs and exports COW_TEST_BTRFS, COW_TEST_XFS, COW_TEST_EXT4,
COW_TEST_TMPFS. A missing one is a loud skip, or a failure when
COW_TEST_REQUIRE names it. Each test that ran on a filesystem appends
"fs test" to COW_TEST_LEDGER, which xtask counts."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

ENV = {
    "btrfs": "COW_TEST_BTRFS",
    "xfs": "COW_TEST_XFS",
    "ext4": "COW_TEST_EXT4",
    "tmpfs": "COW_TEST_TMPFS",
}
ALL = list(ENV)
REFLINK = ["btrfs", "xfs"]
NO_REFLINK = ["ext4", "tmpfs"]


def _required():
    return {n.strip() for n in os.environ.get("COW_TEST_REQUIRE", "").split(",")}


def _record(fs, test):
    ledger = os.environ.get("COW_TEST_LEDGER")
    if ledger:
        with open(ledger, "a") as f:
            f.write(f"{fs} py::{test}\n")


def fs_dir(fs, request):
    root = os.environ.get(ENV[fs])
    if not root:
        msg = (f"SKIP {request.node.nodeid} on {fs}: {ENV[fs]} is not set "
               f"(run `cargo xtask test-python` as root to mount a real {fs})")
        if fs in _required():
            pytest.fail(msg + f", but COW_TEST_REQUIRE lists {fs}")
        pytest.skip(msg)
    d = tempfile.mkdtemp(prefix="cowpytest-", dir=root)
    os.chmod(d, 0o755)
    _record(fs, request.node.nodeid)
    return Path(d)


def _fixture(names):
    @pytest.fixture(params=names)
    def f(request):
        d = fs_dir(request.param, request)
        yield request.param, d
        shutil.rmtree(d, ignore_errors=True)
    return f


anyfs = _fixture(ALL)
reflinkfs = _fixture(REFLINK)
plainfs = _fixture(NO_REFLINK)
