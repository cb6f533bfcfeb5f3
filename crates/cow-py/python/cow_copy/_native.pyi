"""Type stubs for cow_copy._native, the Rust half of cow_copy."""

import os
from typing import Callable, Dict, Iterable, List, Literal, Optional, Union

_Path = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]
_Reflink = Literal["auto", "always", "never"]
_Sparse = Literal["auto", "always", "never"]
_Update = Literal["all", "if-different", "if-different-dedupe", "if-different-trust-mtime", "if-older"]
_Dereference = Literal["never", "command-line", "always"]
_Preserve = Union[None, str, Iterable[str]]

TEMP_MARKER: str

class CopyReport:
    """What copy_file did to one file."""
    strategy: str
    bytes_cloned: int
    bytes_copied: int
    hole_bytes: int
    len: int
    destination: Literal["created", "replaced", "kept"]
    size_changed: bool
    fallbacks: List[str]
    warnings: List[str]
    shared_ratio: float
    @property
    def cloned(self) -> bool: ...

class TreeFailure:
    """One entry of a tree that could not be copied."""
    path: str
    destination: str
    op: str
    error: str
    errno: Optional[int]

class TreeReport:
    """What copy_tree did."""
    method: Literal["walk", "clone-tree"]
    files: int
    dirs: int
    symlinks: int
    fifos: int
    specials: int
    hard_links: int
    skipped: int
    identical: int
    failed: int
    bytes_cloned: int
    bytes_copied: int
    hole_bytes: int
    bytes_skipped: int
    failures: List[TreeFailure]
    warnings: List[str]
    stopped_early: bool

class Progress:
    """Progress of a copy, given to the progress= callable."""
    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int

class Probe:
    """What the filesystem holding a path can do."""
    path: str
    fs: str
    block_size: int
    dev: int
    read_only: bool
    reflink: Literal["yes", "no", "unknown"]
    dedupe: Literal["yes", "no", "unknown"]
    sparse: Literal["yes", "no", "unknown"]
    fiemap: Literal["yes", "no", "unknown"]
    copy_file_range: Literal["yes", "no", "unknown"]
    evidence: Dict[str, str]

class Sharing:
    """How much of file a's data is physically shared with file b."""
    a_len: int
    b_len: int
    a_bytes: int
    b_bytes: int
    shared_bytes: int
    same_offset_bytes: int
    unknown_bytes: int
    ratio: float
    same_filesystem: bool
    is_clone: bool

class CopyTreeError(OSError):
    """Some entries of a copy_tree failed; .report lists them."""
    report: TreeReport

def copy_file(
    src: _Path,
    dst: _Path,
    *,
    reflink: _Reflink = "auto",
    sparse: _Sparse = "auto",
    update: _Update = "all",
    atomic: bool = False,
    fsync: bool = False,
    preserve: _Preserve = None,
    follow_symlinks: bool = True,
    overwrite: bool = True,
    progress: Optional[Callable[[Progress], object]] = None,
) -> CopyReport: ...
def copy_tree(
    src: _Path,
    dst: _Path,
    *,
    reflink: _Reflink = "auto",
    sparse: _Sparse = "auto",
    update: _Update = "all",
    atomic: bool = False,
    fsync: bool = False,
    preserve: _Preserve = None,
    overwrite: bool = True,
    jobs: Optional[int] = None,
    fail_fast: bool = False,
    hard_links: bool = False,
    dereference: _Dereference = "never",
    progress: Optional[Callable[[Progress], object]] = None,
) -> TreeReport: ...
def probe(path: _Path) -> Probe: ...
def verify(a: _Path, b: _Path) -> Sharing: ...
def copy_compat(src: Union[str, bytes], dst: Union[str, bytes], kind: int) -> bool: ...
class Batch:
    """copytree's regular files, copied on the worker pool while the walk goes on."""
    def __init__(self, kind: int, fresh: bool = False) -> None: ...
    def add(self, srcs: List[Union[str, bytes]], dsts: List[Union[str, bytes]]) -> None: ...
    def cancel(self) -> None: ...
    def wait(
        self, srcs: List[Union[str, bytes]], dsts: List[Union[str, bytes]]
    ) -> List[Union[None, bool, OSError]]: ...
