"""Drop-ins for shutil.copyfile, shutil.copy, shutil.copy2 and shutil.copytree.

Same signatures, return values and exceptions as the standard library's; the
bytes go through cow (clone when the filesystem can, holes kept, a file never
truncated into itself). copytree walks the tree here, in Python, so that
``ignore``, ``copy_function``, ``symlinks`` and ``dirs_exist_ok`` behave as in
shutil, and hands the regular files to Rust's worker pool, directory by
directory while it walks on, when the copy function is one of the known ones
(copy2 or copy, cow's or shutil's).
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
from typing import Any, Callable, Iterable, List, Optional, Set, Tuple

from . import _native

__all__ = ["copyfile", "copy", "copy2", "copytree"]

# Kinds understood by _native.copy_compat and _native.Batch.
_COPYFILE, _COPY, _COPY2 = 0, 1, 2

# What shutil would have done for each kind: used for devices and sockets,
# which cow does not copy (shutil reads a character device to its end).
_SHUTIL_FALLBACK = {
    _COPYFILE: shutil.copyfile,
    _COPY: shutil.copy,
    _COPY2: shutil.copy2,
}


def _same_file_error(src: Any, dst: Any) -> shutil.SameFileError:
    return shutil.SameFileError("{!r} and {!r} are the same file".format(src, dst))


def _copy_data(src: Any, dst: Any, kind: int) -> None:
    """Copies src's bytes (and, by kind, mode/times/xattrs) to dst."""
    s, d = os.fspath(src), os.fspath(dst)
    try:
        done = _native.copy_compat(s, d, kind)
    except shutil.SameFileError:
        if s is src and d is dst:
            raise
        raise _same_file_error(src, dst) from None
    if not done:
        _SHUTIL_FALLBACK[kind](s, d)


def _is_link(path: Any) -> bool:
    if isinstance(path, os.DirEntry):
        return path.is_symlink()
    return os.path.islink(path)


def copyfile(src: Any, dst: Any, *, follow_symlinks: bool = True) -> Any:
    """Copy the data of src to dst, like shutil.copyfile, with a clone when
    the filesystem can.

    dst is created (mode 0o666 minus the umask) or rewritten in place (it
    keeps its mode). With follow_symlinks=False a symlink src is recreated as
    a symlink. Raises shutil.SameFileError when src and dst are the same
    file, shutil.SpecialFileError for a named pipe, and OSError subclasses
    carrying errno and filename. Returns dst.
    """
    sys.audit("shutil.copyfile", src, dst)
    if not follow_symlinks and _is_link(src):
        if _samefile(src, dst):
            raise _same_file_error(src, dst)
        os.symlink(os.readlink(src), dst)
        return dst
    _copy_data(src, dst, _COPYFILE)
    return dst


def _samefile(src: Any, dst: Any) -> bool:
    try:
        return os.path.samefile(src, dst)
    except (OSError, ValueError):
        return False


def _into_dir(src: Any, dst: Any) -> Any:
    if os.path.isdir(dst):
        return os.path.join(dst, os.path.basename(os.fspath(src)))
    return dst


def _copy_meta(src: Any, dst: Any, follow_symlinks: bool, kind: int,
               link_meta: Callable[..., Any]) -> Any:
    """copy and copy2: into a directory dst, a symlink kept as one (then
    link_meta on it), else the bytes and metadata of kind."""
    dst = _into_dir(src, dst)
    if not follow_symlinks and _is_link(src):
        copyfile(src, dst, follow_symlinks=False)
        link_meta(src, dst, follow_symlinks=False)
        return dst
    sys.audit("shutil.copyfile", src, dst)
    _copy_data(src, dst, kind)
    return dst


def copy(src: Any, dst: Any, *, follow_symlinks: bool = True) -> Any:
    """Copy data and permission bits, like shutil.copy; dst may be a
    directory (the file keeps its name there). Returns the file's path."""
    return _copy_meta(src, dst, follow_symlinks, _COPY, shutil.copymode)


def copy2(src: Any, dst: Any, *, follow_symlinks: bool = True) -> Any:
    """Copy data, permission bits, times and extended attributes, like
    shutil.copy2; dst may be a directory. Returns the file's path."""
    return _copy_meta(src, dst, follow_symlinks, _COPY2, shutil.copystat)


# The copy functions whose work copytree can hand to the Rust worker pool.
_BATCHED = {copy2: _COPY2, shutil.copy2: _COPY2, copy: _COPY, shutil.copy: _COPY}

_Errors = List[Tuple[Any, Any, str]]


def _record(errors: _Errors, exc: OSError, srcname: Any, dstname: Any) -> None:
    """Adds an exception to copytree's error list the way shutil does."""
    if isinstance(exc, shutil.Error):
        errors.extend(exc.args[0])
    else:
        errors.append((srcname, dstname, str(exc)))


class _Walk:
    """One copytree call: the walk in shutil's order, regular files batched.

    Every event that may add to shutil's error list is appended to ``log`` in
    the order shutil would meet it: an error, a pending file (an index into
    the batch), or a pending directory copystat (done after the batch, so
    the directory times are not changed by the files created in it).
    """

    def __init__(self, symlinks: bool, ignore: Any, copy_function: Any,
                 ignore_dangling_symlinks: bool, dirs_exist_ok: bool) -> None:
        self.symlinks = symlinks
        self.ignore = ignore
        self.copy_function = copy_function
        self.kind = _BATCHED.get(copy_function)
        self.ignore_dangling = ignore_dangling_symlinks
        self.dirs_exist_ok = dirs_exist_ok
        self.srcs: List[Any] = []
        self.dsts: List[Any] = []
        # Without dirs_exist_ok every destination directory is created by
        # this walk, so no destination file exists yet.
        self.batch = None if self.kind is None else _native.Batch(self.kind, not dirs_exist_ok)
        self.started = 0
        self.dirstats: List[Tuple[Any, Any]] = []
        self.log: List[Tuple[str, Any]] = []

    def tree(self, src: Any, dst: Any) -> None:
        """copytree's body for one directory: raises what shutil raises."""
        sys.audit("shutil.copytree", src, dst)
        with os.scandir(src) as it:
            entries = list(it)
        if self.ignore is not None:
            ignored: Iterable[str] = self.ignore(os.fspath(src), [e.name for e in entries])
        else:
            ignored = ()
        os.makedirs(dst, exist_ok=self.dirs_exist_ok)
        use_entry = self.kind is not None
        # os.path.join(dst, name), once per directory: an entry's name never
        # holds a separator. The source name is the entry's own path, which
        # is os.path.join(src, name) already.
        dst_prefix = os.path.join(dst, entries[0].name[:0]) if entries else dst
        for entry in entries:
            if entry.name in ignored:
                continue
            srcname = entry.path
            dstname = dst_prefix + entry.name
            srcobj = entry if use_entry else srcname
            try:
                self.entry(entry, srcname, dstname, srcobj)
            except OSError as why:
                self.log.append(("err", (why, srcname, dstname)))
        self.start_files()
        self.log.append(("dir", len(self.dirstats)))
        self.dirstats.append((src, dst))

    def entry(self, entry: "os.DirEntry[Any]", srcname: Any, dstname: Any, srcobj: Any) -> None:
        if entry.is_symlink():
            linkto = os.readlink(srcname)
            if self.symlinks:
                os.symlink(linkto, dstname)
                shutil.copystat(srcobj, dstname, follow_symlinks=False)
                return
            # As shutil: the target is looked up as given (relative to the
            # working directory when the link is relative).
            if not os.path.exists(linkto) and self.ignore_dangling:
                return
            if entry.is_dir():
                self.subtree(srcobj, srcname, dstname)
            else:
                self.file(srcobj, dstname)
        elif entry.is_dir():
            self.subtree(srcobj, srcname, dstname)
        else:
            self.file(srcobj, dstname)

    def subtree(self, srcobj: Any, srcname: Any, dstname: Any) -> None:
        # shutil calls copytree recursively; its shutil.Error (raised at the
        # end of the child) is folded into this list instead, in place.
        self.tree(srcobj, dstname)

    def file(self, srcobj: Any, dstname: Any) -> None:
        if self.kind is None:
            self.copy_function(srcobj, dstname)
            return
        sys.audit("shutil.copyfile", srcobj, dstname)
        self.log.append(("file", len(self.srcs)))
        self.srcs.append(os.fspath(srcobj))
        self.dsts.append(dstname)

    def start_files(self) -> None:
        """Hands the files found since the last call to the worker pool,
        which copies them while the walk goes on."""
        if self.batch is not None and len(self.srcs) > self.started:
            self.batch.add(self.srcs[self.started:], self.dsts[self.started:])
            self.started = len(self.srcs)

    def abort(self) -> None:
        """After an exception in the walk: stops the files in flight (at
        their next chunk; a file being created is removed) and waits."""
        if self.batch is not None:
            self.batch.cancel()
            self.batch.wait(self.srcs[:self.started], self.dsts[:self.started])

    def finish(self) -> _Errors:
        """Waits for the files, then sets the directories' metadata;
        returns shutil's error list."""
        results: List[Any] = []
        if self.batch is not None:
            self.start_files()
            results = self.batch.wait(self.srcs, self.dsts)
        errors: _Errors = []
        for what, item in self.log:
            if what == "err":
                _record(errors, *item)
            elif what == "file":
                r = results[item]
                if r is None:
                    continue
                s, d = self.srcs[item], self.dsts[item]
                if r is False:
                    try:
                        _SHUTIL_FALLBACK[self.kind](s, d)
                    except OSError as why:
                        _record(errors, why, s, d)
                else:
                    _record(errors, r, s, d)
            else:
                src, dst = self.dirstats[item]
                try:
                    shutil.copystat(src, dst)
                except OSError as why:
                    if getattr(why, "winerror", None) is None:
                        errors.append((src, dst, str(why)))
        return errors


def copytree(src: Any, dst: Any, symlinks: bool = False,
             ignore: Optional[Callable[[str, List[str]], Iterable[str]]] = None,
             copy_function: Callable[..., Any] = copy2,
             ignore_dangling_symlinks: bool = False,
             dirs_exist_ok: bool = False) -> Any:
    """Copy a directory tree, like shutil.copytree: same arguments, same
    order of calls to ``ignore`` and ``copy_function``, same shutil.Error
    with the list of (src, dst, why) for entries that failed. Returns dst.

    With copy_function copy2 or copy (cow's or shutil's) the files are
    copied by cow in parallel, with the GIL released, after the directories
    are created; Ctrl-C stops the copy, inside the files in flight too.
    """
    walk = _Walk(symlinks, ignore, copy_function, ignore_dangling_symlinks,
                 dirs_exist_ok)
    try:
        walk.tree(src, dst)
    except BaseException:
        walk.abort()
        raise
    errors = walk.finish()
    if errors:
        raise shutil.Error(errors)
    return dst
