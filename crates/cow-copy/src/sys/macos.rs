//! macOS: `fclonefileat`, `fcopyfile`, BSD flags and ACL checks (from
//! cow-sys), `renamex_np(RENAME_EXCL)` and xattrs. Plain calls: the
//! clone-to-a-temporary-and-rename policy is the clone step's
//! (`strategy/clone/macos.rs`).

use std::ffi::{CStr, OsStr};
use std::io;
use std::os::fd::BorrowedFd;

use rustix::fs::OFlags;
use rustix::io::Errno;

pub(crate) use cow_sys::macos::{
    CloneFlags, CopyFileFlags, FileFlags, chflagsat, fclonefileat, fcopyfile, has_chflagsat,
    has_extended_acl,
};

/// Flags to open a directory used as an `*at` anchor.
pub(crate) const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::CLOEXEC);

/// Flags to look at an existing entry without waiting on a FIFO.
pub(crate) const PROBE_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::NONBLOCK)
    .union(OFlags::NOCTTY)
    .union(OFlags::CLOEXEC);

/// The kernel-copy slot is `fcopyfile` (see `strategy/kernel/macos.rs`).
pub(crate) const HAS_COPY_RANGE: bool = true;

/// `renamex_np(RENAME_EXCL)`.
pub(crate) fn rename_noreplace(dir: BorrowedFd<'_>, from: &OsStr, to: &OsStr) -> io::Result<()> {
    Ok(rustix::fs::renameat_with(
        dir,
        from,
        dir,
        to,
        rustix::fs::RenameFlags::NOREPLACE,
    )?)
}

/// Where extended attributes are reached: an open descriptor (a symlink
/// is opened itself with `O_SYMLINK`).
#[derive(Clone, Copy)]
pub(crate) enum XattrAt<'a> {
    /// `f*xattr` on this descriptor.
    Fd(BorrowedFd<'a>),
}

/// The error of reading an attribute that is not there.
pub(crate) const NO_XATTR: Errno = Errno::NOATTR;

/// The length of the attribute name list.
pub(crate) fn xattr_list_len(at: XattrAt<'_>) -> Result<usize, Errno> {
    let XattrAt::Fd(fd) = at;
    rustix::fs::flistxattr_query(fd)
}

/// Reads the attribute name list into `buf`; returns its length.
pub(crate) fn xattr_list(at: XattrAt<'_>, buf: &mut [u8]) -> Result<usize, Errno> {
    let XattrAt::Fd(fd) = at;
    rustix::fs::flistxattr(fd, buf)
}

/// The length of `name`'s value.
pub(crate) fn xattr_value_len(at: XattrAt<'_>, name: &CStr) -> Result<usize, Errno> {
    let XattrAt::Fd(fd) = at;
    rustix::fs::fgetxattr_query(fd, name)
}

/// Reads `name`'s value into `buf`; returns its length.
pub(crate) fn xattr_value(at: XattrAt<'_>, name: &CStr, buf: &mut [u8]) -> Result<usize, Errno> {
    let XattrAt::Fd(fd) = at;
    rustix::fs::fgetxattr(fd, name, buf)
}

/// Sets `name` to `value`.
pub(crate) fn xattr_set(at: XattrAt<'_>, name: &CStr, value: &[u8]) -> Result<(), Errno> {
    let XattrAt::Fd(fd) = at;
    rustix::fs::fsetxattr(fd, name, value, rustix::fs::XattrFlags::empty())
}

/// Removes `name`.
pub(crate) fn xattr_remove(at: XattrAt<'_>, name: &CStr) -> Result<(), Errno> {
    let XattrAt::Fd(fd) = at;
    rustix::fs::fremovexattr(fd, name)
}
