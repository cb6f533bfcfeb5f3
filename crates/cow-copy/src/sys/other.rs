//! Other Unix systems: no clone call. FreeBSD 13+ has `copy_file_range`
//! (which block-clones on ZFS when block cloning is enabled; the kernel
//! step skips it with `reflink = never` like on Linux, and reports a kernel
//! copy, never a clone). Elsewhere the user-space copy keeps holes with
//! `SEEK_DATA`.

use std::ffi::OsStr;
use std::io;
use std::os::fd::BorrowedFd;

use rustix::fs::{AtFlags, OFlags};

/// Flags to open a directory used as an `*at` anchor.
pub(crate) const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::CLOEXEC);

/// Flags to look at an existing entry without waiting on a FIFO.
pub(crate) const PROBE_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::NONBLOCK)
    .union(OFlags::NOCTTY)
    .union(OFlags::CLOEXEC);

/// Whether the kernel-copy step can run.
pub(crate) const HAS_COPY_RANGE: bool = cfg!(target_os = "freebsd");

/// One `copy_file_range` call between explicit offsets (FreeBSD).
#[cfg(target_os = "freebsd")]
pub(crate) fn copy_range(
    src: BorrowedFd<'_>,
    off_in: &mut u64,
    dst: BorrowedFd<'_>,
    off_out: &mut u64,
    len: usize,
) -> io::Result<usize> {
    cow_sys::freebsd::copy_file_range(src, Some(off_in), dst, Some(off_out), len)
}

/// Never called (`HAS_COPY_RANGE` is false).
#[cfg(not(target_os = "freebsd"))]
pub(crate) fn copy_range(
    _src: BorrowedFd<'_>,
    _off_in: &mut u64,
    _dst: BorrowedFd<'_>,
    _off_out: &mut u64,
    _len: usize,
) -> io::Result<usize> {
    Err(io::Error::from(rustix::io::Errno::OPNOTSUPP))
}

/// Rename only if the target does not exist: link, then unlink the old name.
pub(crate) fn rename_noreplace(dir: BorrowedFd<'_>, from: &OsStr, to: &OsStr) -> io::Result<()> {
    rustix::fs::linkat(dir, from, dir, to, AtFlags::empty())?;
    rustix::fs::unlinkat(dir, from, AtFlags::empty())?;
    Ok(())
}
