//! The kernel-copy slot where the OS has `copy_file_range` (Linux,
//! FreeBSD; elsewhere `sys::HAS_COPY_RANGE` is false and this is never
//! called).

use std::io;
use std::os::fd::AsFd;

use crate::chain::Job;
use crate::fault::{Site, fault};
use crate::sys;

/// One `copy_file_range` call between explicit offsets.
pub(super) fn copy_range(
    job: &Job<'_>,
    off_in: &mut u64,
    off_out: &mut u64,
    len: usize,
) -> io::Result<usize> {
    let len = crate::fault::clamp(Site::CopyFileRange, len);
    fault!(
        Site::CopyFileRange,
        sys::copy_range(job.src.as_fd(), off_in, job.dst.as_fd(), off_out, len)
    )
}
