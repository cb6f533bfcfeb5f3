//! macOS fast path: one `clonefile` call clones a whole directory tree.
//!
//! `clonefile(2)` on a directory clones the hierarchy in one call (APFS), as
//! if each entry were cloned by itself: data, mode, times, xattrs and BSD
//! flags of every entry come along; setuid/setgid are turned off on regular
//! files, the owner is the caller's unless root copies it, and ACLs are only
//! inherited from the destination directory (`CLONE_ACL` is not passed: the
//! walk does not copy ACLs either). Apple's man page discourages directory
//! clones; it is used only when it gives what the walk would:
//! - the destination does not exist, clones are allowed, mode, timestamps
//!   and xattrs are preserved, symlinks inside the tree are not followed and
//!   hard-link preservation was not asked for (the report then has no
//!   per-entry records);
//! - holes may stay holes (not `Sparse::Never`) and no `fsync` is asked
//!   (the walk does both per file).
//!
//! After the clone every entry is visited once: BSD flags are cleared (the
//! walk never copies them), and setuid/setgid are put back where the copy
//! has the source's owner (group), else reported as warnings, like
//! [`crate::meta`] does for single files.
//!
//! Any refusal of the call falls back to the walk (an unreadable entry, not
//! APFS, another volume), which then reports entry by entry; the call is
//! atomic, so nothing was created. Out of space, I/O and memory errors fail.

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use cow_sys::macos::{CloneFlags, FileFlags, clonefile};
use rustix::fs::{AtFlags, CWD, Mode};

use super::{Dereference, TreeError, TreeMethod, TreeOptions, TreeReport, TreeTotals, TreeWarning};
use crate::meta::{SET_IDS, keep_set_ids};
use crate::{Reflink, Sparse};

/// The most tree workers on macOS: APFS serializes clone and link calls
/// volume-wide, so more threads only queue up in the kernel (pnpm measured
/// clonefile throughput flat from 1 to 32 threads, with 4 near the best;
/// see docs/macos.md).
pub(super) const MAX_WORKERS: usize = 4;

fn allowed(opts: &TreeOptions) -> bool {
    let p = opts.copy.preserve_policy();
    opts.whole_tree_clone
        && opts.copy.reflink_policy() != Reflink::Never
        && opts.copy.sparse_policy() != Sparse::Never
        && !opts.copy.is_fsync()
        && p.mode
        && p.timestamps
        && p.xattrs
        && opts.dereference != Dereference::Always
        && !opts.preserve_hard_links
        // The flags the clone brings must be clearable (macOS 10.13+).
        && cow_sys::macos::has_chflagsat()
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
    let io_err = |op: &'static str, source: io::Error| TreeError::Io {
        op,
        path: dst.to_path_buf(),
        source,
    };
    match clonefile(src, dst, flags) {
        Ok(()) => {}
        // The call is all or nothing: walk, unless something is there now.
        Err(e) if !fatal(&e) && std::fs::symlink_metadata(dst).is_err() => return None,
        Err(e) => return Some(Err(io_err("clonefile", e))),
    }
    let mut report = TreeReport {
        method: TreeMethod::CloneTree,
        ..TreeReport::default()
    };
    if let Err(e) = fix_up(src, dst, Some(&meta), &mut report) {
        return Some(Err(io_err("finish the clone of", e)));
    }
    Some(Ok(report))
}

/// Errors a walk cannot do better with.
fn fatal(e: &io::Error) -> bool {
    matches!(
        rustix::io::Errno::from_io_error(e),
        Some(
            rustix::io::Errno::NOSPC
                | rustix::io::Errno::DQUOT
                | rustix::io::Errno::IO
                | rustix::io::Errno::NOMEM
        )
    )
}

/// Visits the clone `dst` of `src` (whose status is `src_meta`): counts it,
/// clears BSD flags, puts back setuid/setgid where the owner allows.
fn fix_up(
    src: &Path,
    dst: &Path,
    src_meta: Option<&std::fs::Metadata>,
    report: &mut TreeReport,
) -> io::Result<()> {
    let copy = std::fs::symlink_metadata(dst)?;
    clear_flags(dst, &copy)?;
    let t: &mut TreeTotals = &mut report.totals;
    let ft = copy.file_type();
    if ft.is_dir() {
        t.dirs += 1;
        for e in std::fs::read_dir(dst)? {
            let name = e?.file_name();
            let (s, d) = (src.join(&name), dst.join(&name));
            // An entry gone from the source since the clone has no set-id
            // bits to put back.
            let sm = std::fs::symlink_metadata(&s).ok();
            fix_up(&s, &d, sm.as_ref(), report)?;
        }
        return Ok(());
    }
    if ft.is_symlink() {
        t.symlinks += 1;
    } else if ft.is_file() {
        t.files += 1;
        t.bytes_cloned += copy.len();
        if let Some(src_meta) = src_meta {
            set_ids(src, dst, src_meta, &copy, &mut report.warnings)?;
        }
    } else if std::os::unix::fs::FileTypeExt::is_fifo(&ft) {
        t.fifos += 1;
    } else {
        t.specials += 1;
    }
    Ok(())
}

/// Clears every BSD flag but `UF_COMPRESSED` (how the data is stored).
fn clear_flags(path: &Path, meta: &std::fs::Metadata) -> io::Result<()> {
    use std::os::macos::fs::MetadataExt as _;
    let flags = FileFlags::from_bits_retain(meta.st_flags());
    let keep = flags.intersection(FileFlags::UF_COMPRESSED);
    if flags == keep {
        return Ok(());
    }
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(());
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let dir = std::fs::File::open(dir)?;
    cow_sys::macos::chflagsat(std::os::fd::AsFd::as_fd(&dir), Path::new(name), keep)
}

/// The clone lost the source's setuid/setgid bits (clonefile turns them
/// off): they come back only where the copy has the source's owner (for
/// setuid) or group (for setgid); otherwise a warning says they were dropped.
fn set_ids(
    src: &Path,
    dst: &Path,
    src_meta: &std::fs::Metadata,
    copy: &std::fs::Metadata,
    warnings: &mut Vec<TreeWarning>,
) -> io::Result<()> {
    let want = src_meta.mode() & SET_IDS;
    if want == 0 || copy.mode() & SET_IDS == want {
        return Ok(());
    }
    let keep = keep_set_ids(
        want,
        (src_meta.uid(), src_meta.gid()),
        Some((copy.uid(), copy.gid())),
    );
    if keep != 0 {
        let mode = (copy.permissions().mode() & 0o1777) | keep;
        rustix::fs::chmodat(
            CWD,
            dst,
            Mode::from_raw_mode(mode as _),
            AtFlags::SYMLINK_NOFOLLOW,
        )?;
    }
    if keep != want {
        warnings.push(TreeWarning {
            path: src.to_path_buf(),
            message: "setuid/setgid dropped: the copy does not have the source's owner or group"
                .to_owned(),
        });
    }
    Ok(())
}
