//! FreeBSD: `copy_file_range(2)` (FreeBSD 13+), which rustix offers only on
//! Linux. On ZFS with block cloning enabled (OpenZFS 2.2,
//! `vfs.zfs.bclone_enabled=1`) it shares blocks instead of copying them; on
//! other file systems it copies in the kernel.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Copies up to `len` bytes from `src` to `dst` in the kernel
/// (`copy_file_range(2)`) and returns how many it copied; 0 means the source
/// is at EOF.
///
/// With `Some(offset)` the copy starts there and the offset is advanced by
/// the bytes copied, leaving the descriptor's own file offset alone; with
/// `None` the descriptor's file offset is used and advanced. Short copies are
/// normal: callers loop.
pub fn copy_file_range(
    src: BorrowedFd<'_>,
    src_offset: Option<&mut u64>,
    dst: BorrowedFd<'_>,
    dst_offset: Option<&mut u64>,
    len: usize,
) -> io::Result<usize> {
    let to_off = |o: &u64| {
        libc::off_t::try_from(*o)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset over off_t::MAX"))
    };
    let mut in_off = src_offset.as_deref().map(to_off).transpose()?;
    let mut out_off = dst_offset.as_deref().map(to_off).transpose()?;
    let in_ptr = in_off
        .as_mut()
        .map_or(std::ptr::null_mut(), |o| o as *mut libc::off_t);
    let out_ptr = out_off
        .as_mut()
        .map_or(std::ptr::null_mut(), |o| o as *mut libc::off_t);
    // SAFETY: both descriptors are borrowed and open for the call; each
    // offset pointer is null (use the file offset) or points at a live
    // `off_t` on this frame that the kernel reads and updates; no flags are
    // defined, so 0.
    let n =
        unsafe { libc::copy_file_range(src.as_raw_fd(), in_ptr, dst.as_raw_fd(), out_ptr, len, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    if let (Some(o), Some(v)) = (src_offset, in_off) {
        *o = v as u64;
    }
    if let (Some(o), Some(v)) = (dst_offset, out_off) {
        *o = v as u64;
    }
    Ok(n as usize)
}
