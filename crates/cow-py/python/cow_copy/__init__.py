"""cow_copy: copies that clone when the filesystem can, keep holes, never
truncate a file into itself, and say what they did.

Drop-ins for shutil, same signatures, return values and exceptions::

    import shutil, cow_copy
    shutil.copyfile = cow_copy.copyfile   # likewise copy, copy2, copytree

The native API returns reports::

    report = cow_copy.copy_file("vm.img", "vm-copy.img", reflink="always")
    print(report.strategy, report.bytes_cloned)
    print(cow_copy.verify("vm.img", "vm-copy.img").ratio)   # 1.0: all shared
"""

from ._native import (
    TEMP_MARKER,
    CopyReport,
    CopyTreeError,
    Probe,
    Progress,
    Sharing,
    TreeFailure,
    TreeReport,
    copy_file,
    copy_tree,
    probe,
    verify,
)
from ._shutil import copy, copy2, copyfile, copytree

__all__ = [
    "copyfile",
    "copy",
    "copy2",
    "copytree",
    "copy_file",
    "copy_tree",
    "probe",
    "verify",
    "CopyReport",
    "TreeReport",
    "TreeFailure",
    "Progress",
    "Probe",
    "Sharing",
    "CopyTreeError",
    "TEMP_MARKER",
]
