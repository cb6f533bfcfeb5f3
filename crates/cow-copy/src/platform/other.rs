//! Other Unix systems: no clone call. FreeBSD 13+ has `copy_file_range`
//! (which block-clones on ZFS when block cloning is enabled; it is skipped
//! with `reflink = never` like on Linux, and reported as a kernel copy,
//! never as a clone). Elsewhere the user-space copy keeps holes with
//! `SEEK_DATA`.

use std::io;

use rustix::fs::OFlags;

use crate::chain::{Job, Outcome};
use crate::strategy::clone::CloneError;

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

fn unsupported() -> io::Error {
    io::Error::from(rustix::io::Errno::OPNOTSUPP)
}

/// No clone call on this platform.
pub(crate) fn clone(_job: &mut Job<'_>) -> Result<Outcome, CloneError> {
    Err(CloneError::Refused(unsupported()))
}

/// No clone call on this platform.
pub(crate) fn clone_probe(_job: &Job<'_>) -> io::Result<()> {
    Err(unsupported())
}

/// One `copy_file_range` call between explicit offsets (FreeBSD).
#[cfg(target_os = "freebsd")]
pub(crate) fn copy_range(
    job: &Job<'_>,
    off_in: &mut u64,
    off_out: &mut u64,
    len: usize,
) -> io::Result<usize> {
    use std::os::fd::AsFd;
    cow_sys::freebsd::copy_file_range(
        job.src.as_fd(),
        Some(off_in),
        job.dst.as_fd(),
        Some(off_out),
        len,
    )
}

/// Never called (`HAS_COPY_RANGE` is false).
#[cfg(not(target_os = "freebsd"))]
pub(crate) fn copy_range(
    _job: &Job<'_>,
    _off_in: &mut u64,
    _off_out: &mut u64,
    _len: usize,
) -> io::Result<usize> {
    Err(unsupported())
}

/// Rename only if the target does not exist: link, then unlink the old name.
pub(crate) fn rename_noreplace(
    dir: std::os::fd::BorrowedFd<'_>,
    from: &std::ffi::OsStr,
    to: &std::ffi::OsStr,
) -> io::Result<()> {
    rustix::fs::linkat(dir, from, dir, to, rustix::fs::AtFlags::empty())?;
    rustix::fs::unlinkat(dir, from, rustix::fs::AtFlags::empty())?;
    Ok(())
}

/// No xattr calls here.
pub(crate) fn copy_xattrs(_src: &std::fs::File, _dst: &std::fs::File, skipped: &mut Vec<String>) {
    skipped.push("xattrs: not supported on this platform".into());
}
