//! The OS leaf: plain calls on descriptors (clone, copy ranges,
//! rename-noreplace, xattrs, the open-flag constants), one file per OS,
//! the same shape as cow-probe's and cow-verify's `mod sys`.
//!
//! What a call means for a copy (is a refusal for the whole device, did a
//! clone really share, may an existing inode be swapped) is decided by the
//! steps above (`strategy/`), never here. This module imports nothing from
//! the crate; each item is listed by name.
//!
//! Per-OS code is chosen the same way everywhere in the crate: a module
//! with per-OS parts declares `#[cfg(..)] mod linux;` / `mod macos;` /
//! `mod windows;` / `mod other;` (files named after the OS, `other` for
//! the remaining Unixes) and imports the chosen module's items by name.

#[cfg(any(target_os = "linux", target_os = "android"))]
mod linux;
#[cfg(target_os = "macos")]
mod macos;
#[cfg(all(
    unix,
    not(any(target_os = "linux", target_os = "android", target_os = "macos"))
))]
mod other;
#[cfg(windows)]
mod windows;

#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) use linux::{
    DIR_FLAGS, HAS_COPY_RANGE, NO_XATTR, PROBE_FLAGS, XattrAt, copy_range, extents, ficlone,
    open_tmpfile, rename_noreplace, xattr_list, xattr_list_len, xattr_set, xattr_value,
    xattr_value_len,
};
#[cfg(target_os = "macos")]
pub(crate) use macos::{
    CloneFlags, CopyFileFlags, DIR_FLAGS, FileFlags, HAS_COPY_RANGE, NO_XATTR, PROBE_FLAGS,
    XattrAt, chflagsat, fclonefileat, fcopyfile, has_chflagsat, has_extended_acl, rename_noreplace,
    xattr_list, xattr_list_len, xattr_remove, xattr_set, xattr_value, xattr_value_len,
};
#[cfg(all(
    unix,
    not(any(target_os = "linux", target_os = "android", target_os = "macos"))
))]
pub(crate) use other::{DIR_FLAGS, HAS_COPY_RANGE, PROBE_FLAGS, copy_range, rename_noreplace};
#[cfg(windows)]
pub(crate) use windows::{clone_file, file_id};

/// The soft limit on open files (`RLIMIT_NOFILE`); no limit reads as
/// `usize::MAX`.
#[cfg(unix)]
pub(crate) fn open_file_limit() -> usize {
    let lim = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    lim.current
        .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX))
}
