//! Linux: `FICLONE`, FIEMAP, `O_TMPFILE`, `copy_file_range`,
//! `renameat2(RENAME_NOREPLACE)`, xattrs. Plain calls on descriptors: what
//! they mean for a copy is decided by the steps above.

use std::ffi::{CStr, OsStr};
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};

use cow_sys::linux::{FiemapExtentFlags, FiemapFlags, fiemap_all};
use rustix::fs::{Mode, OFlags, RenameFlags, XattrFlags};
use rustix::io::Errno;

pub(crate) use cow_sys::linux::ficlone;

/// Flags to open a directory that is only used as an `*at` anchor
/// (`O_PATH` needs no read permission).
pub(crate) const DIR_FLAGS: OFlags = OFlags::PATH.union(OFlags::DIRECTORY).union(OFlags::CLOEXEC);

/// Flags to look at an existing entry without side effects (no FIFO wait,
/// no device open).
pub(crate) const PROBE_FLAGS: OFlags = OFlags::PATH.union(OFlags::CLOEXEC);

/// `copy_file_range` exists.
pub(crate) const HAS_COPY_RANGE: bool = true;

/// One extent of a file as FIEMAP reports it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Extent {
    /// Its offset in the file.
    pub(crate) start: u64,
    /// Its length.
    pub(crate) len: u64,
    /// `FIEMAP_EXTENT_SHARED`.
    pub(crate) shared: bool,
    /// `FIEMAP_EXTENT_DATA_INLINE` or `FIEMAP_EXTENT_NOT_ALIGNED`: the data
    /// is stored with the metadata, not in blocks of its own.
    pub(crate) inline: bool,
}

/// Every extent of `fd` (FIEMAP, no sync).
pub(crate) fn extents(fd: BorrowedFd<'_>) -> io::Result<Vec<Extent>> {
    Ok(fiemap_all(fd, FiemapFlags::empty())?
        .into_iter()
        .map(|e| {
            let f = e.flags();
            Extent {
                start: e.fe_logical,
                len: e.fe_length,
                shared: f.contains(FiemapExtentFlags::SHARED),
                inline: f
                    .intersects(FiemapExtentFlags::DATA_INLINE | FiemapExtentFlags::NOT_ALIGNED),
            }
        })
        .collect())
}

/// An unnamed file in `dir` (`O_TMPFILE`, freed on close), read-write,
/// mode 0600.
pub(crate) fn open_tmpfile(dir: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dir,
        ".",
        OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )?)
}

/// One `copy_file_range` call between explicit offsets.
pub(crate) fn copy_range(
    src: BorrowedFd<'_>,
    off_in: &mut u64,
    dst: BorrowedFd<'_>,
    off_out: &mut u64,
    len: usize,
) -> io::Result<usize> {
    Ok(rustix::fs::copy_file_range(
        src,
        Some(off_in),
        dst,
        Some(off_out),
        len,
    )?)
}

/// `renameat2(RENAME_NOREPLACE)`.
pub(crate) fn rename_noreplace(dir: BorrowedFd<'_>, from: &OsStr, to: &OsStr) -> io::Result<()> {
    Ok(rustix::fs::renameat_with(
        dir,
        from,
        dir,
        to,
        RenameFlags::NOREPLACE,
    )?)
}
/// Where extended attributes are reached: an open descriptor, or a path
/// whose last component is not followed (Linux has no descriptor of a
/// symlink that the `f*xattr` calls accept).
#[derive(Clone, Copy)]
pub(crate) enum XattrAt<'a> {
    /// `f*xattr` on this descriptor.
    Fd(BorrowedFd<'a>),
    /// `l*xattr` on this path.
    Path(&'a CStr),
}

/// The error of reading an attribute that is not there.
pub(crate) const NO_XATTR: Errno = Errno::NODATA;

/// The length of the attribute name list.
pub(crate) fn xattr_list_len(at: XattrAt<'_>) -> Result<usize, Errno> {
    match at {
        XattrAt::Fd(fd) => rustix::fs::flistxattr_query(fd),
        XattrAt::Path(p) => rustix::fs::llistxattr_query(p),
    }
}

/// Reads the attribute name list into `buf`; returns its length.
pub(crate) fn xattr_list(at: XattrAt<'_>, buf: &mut [u8]) -> Result<usize, Errno> {
    match at {
        XattrAt::Fd(fd) => rustix::fs::flistxattr(fd, buf),
        XattrAt::Path(p) => rustix::fs::llistxattr(p, buf),
    }
}

/// The length of `name`'s value.
pub(crate) fn xattr_value_len(at: XattrAt<'_>, name: &CStr) -> Result<usize, Errno> {
    match at {
        XattrAt::Fd(fd) => rustix::fs::fgetxattr_query(fd, name),
        XattrAt::Path(p) => rustix::fs::lgetxattr_query(p, name),
    }
}

/// Reads `name`'s value into `buf`; returns its length.
pub(crate) fn xattr_value(at: XattrAt<'_>, name: &CStr, buf: &mut [u8]) -> Result<usize, Errno> {
    match at {
        XattrAt::Fd(fd) => rustix::fs::fgetxattr(fd, name, buf),
        XattrAt::Path(p) => rustix::fs::lgetxattr(p, name, buf),
    }
}

/// Sets `name` to `value`.
pub(crate) fn xattr_set(at: XattrAt<'_>, name: &CStr, value: &[u8]) -> Result<(), Errno> {
    let flags = XattrFlags::empty();
    match at {
        XattrAt::Fd(fd) => rustix::fs::fsetxattr(fd, name, value, flags),
        XattrAt::Path(p) => rustix::fs::lsetxattr(p, name, value, flags),
    }
}
