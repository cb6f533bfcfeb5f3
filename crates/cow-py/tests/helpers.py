"""Small helpers shared by the tests."""

import os
import stat


def write(path, data=b"", mode=None):
    with open(path, "wb") as f:
        f.write(data)
    if mode is not None:
        os.chmod(path, mode)
    return path


def pattern(n, seed=1):
    """n bytes that differ from block to block."""
    block = bytes((i * 7 + seed) % 251 for i in range(4093))
    return (block * (n // len(block) + 1))[:n]


def sparse(path, hole=1 << 20, data=b"x" * 4096):
    """hole, data, hole: a file with two holes."""
    with open(path, "wb") as f:
        f.seek(hole)
        f.write(data)
        f.truncate(2 * hole + len(data))
    return path


def data_map(path):
    """The (start, end) of every data segment (SEEK_DATA/SEEK_HOLE)."""
    out = []
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        pos = 0
        while pos < size:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:
                break
            end = os.lseek(fd, start, os.SEEK_HOLE)
            out.append((start, end))
            pos = end
    finally:
        os.close(fd)
    return out


def snapshot(root, times=False):
    """The tree under root as {relative path: description}."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode))
            elif stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    d = f.read()
                out[rel] = ("file", stat.S_IMODE(st.st_mode), d,
                            st.st_mtime_ns if times else None)
            else:
                out[rel] = ("other", stat.S_IFMT(st.st_mode))
    return out
