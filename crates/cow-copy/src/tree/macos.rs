//! macOS fast path: one `clonefile` call clones a whole directory tree.
//!
//! `clonefile(2)` on a directory clones the hierarchy atomically (APFS),
//! copying mode, times, xattrs and ACLs of every entry. It is used only when
//! that is what the options ask for: the destination does not exist, clones
//! are allowed, mode, timestamps and xattrs are preserved, symlinks inside
//! the tree are not followed, and hard-link preservation was not asked for
//! (the report then has no per-entry records). Otherwise, or when the call
//! declines (not APFS, another volume), the normal walk runs.

use std::io;
use std::path::Path;

use cow_sys::macos::{CloneFlags, clonefile};

use super::{Dereference, TreeError, TreeMethod, TreeOptions, TreeReport, TreeTotals};
use crate::Reflink;

fn allowed(opts: &TreeOptions) -> bool {
    let p = opts.copy.preserve_policy();
    opts.whole_tree_clone
        && opts.copy.reflink_policy() != Reflink::Never
        && p.mode
        && p.timestamps
        && p.xattrs
        && opts.dereference != Dereference::Always
        && !opts.preserve_hard_links
}

/// Clones `src` to `dst` in one call when allowed; `None` means "walk".
pub(super) fn try_clone_tree(
    src: &Path,
    dst: &Path,
    opts: &TreeOptions,
) -> Option<Result<TreeReport, TreeError>> {
    if !allowed(opts) {
        return None;
    }
    let follow_root = opts.dereference != Dereference::Never;
    let meta = if follow_root {
        std::fs::metadata(src)
    } else {
        std::fs::symlink_metadata(src)
    }
    .ok()?;
    if !meta.is_dir() || std::fs::symlink_metadata(dst).is_ok() {
        return None;
    }
    // A destination inside the source must be refused, not cloned: leave
    // that check to the walk.
    if let (Ok(s), Some(parent)) = (std::fs::canonicalize(src), dst.parent()) {
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        match std::fs::canonicalize(parent) {
            Ok(p) if !p.starts_with(&s) => {}
            _ => return None,
        }
    } else {
        return None;
    }
    let mut flags = CloneFlags::empty();
    if !follow_root {
        flags |= CloneFlags::NOFOLLOW;
    }
    if !opts.copy.preserve_policy().ownership {
        flags |= CloneFlags::NOOWNERCOPY;
    }
    match clonefile(src, dst, flags) {
        Ok(()) => {}
        Err(e) if declines(&e) => return None,
        Err(e) => {
            return Some(Err(TreeError::Io {
                op: "clonefile",
                path: dst.to_path_buf(),
                source: e,
            }));
        }
    }
    let mut totals = TreeTotals::default();
    count(dst, &mut totals);
    Some(Ok(TreeReport {
        method: TreeMethod::CloneTree,
        totals,
        ..TreeReport::default()
    }))
}

fn declines(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc_errno::ENOTSUP | libc_errno::EXDEV | libc_errno::EINVAL | libc_errno::ENOSYS)
    )
}

/// errno values on macOS (`<sys/errno.h>`).
mod libc_errno {
    pub(super) const ENOTSUP: i32 = 45;
    pub(super) const EXDEV: i32 = 18;
    pub(super) const EINVAL: i32 = 22;
    pub(super) const ENOSYS: i32 = 78;
}

/// Counts what the clone made (every byte of it is shared).
fn count(dir: &Path, t: &mut TreeTotals) {
    t.dirs += 1;
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            count(&e.path(), t);
        } else if ft.is_symlink() {
            t.symlinks += 1;
        } else if ft.is_file() {
            t.files += 1;
            t.bytes_cloned += e.metadata().map(|m| m.len()).unwrap_or(0);
        } else {
            t.specials += 1;
        }
    }
}
