//! Every platform but Linux: content is compared by reading both files; no
//! extent comparison and no dedupe yet.

use std::fs::File;
use std::io;

use super::{DedupeResult, NotPossible};

#[cfg(unix)]
pub(super) fn read_at(f: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(f, buf, offset)
}

#[cfg(windows)]
pub(super) fn read_at(f: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(f, buf, offset)
}

#[cfg(unix)]
pub(super) fn same_file(a: &File, b: &File) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let (ma, mb) = (a.metadata()?, b.metadata()?);
    Ok(ma.dev() == mb.dev() && ma.ino() == mb.ino())
}

/// Windows: no stable file identity in std; the dedupe that would need it
/// is not available there either.
#[cfg(windows)]
pub(super) fn same_file(_a: &File, _b: &File) -> io::Result<bool> {
    Ok(false)
}

/// No extent comparison here, so the device does not matter.
pub(super) fn same_device(_a: &std::fs::Metadata, _b: &std::fs::Metadata) -> bool {
    false
}

/// A read failed because the descriptor or the user may not read.
#[cfg(unix)]
pub(super) fn is_unreadable(e: &io::Error) -> bool {
    use rustix::io::Errno;
    matches!(
        e.raw_os_error().map(Errno::from_raw_os_error),
        Some(Errno::BADF | Errno::ACCESS | Errno::PERM)
    )
}

/// A read failed because the handle or the user may not read.
#[cfg(windows)]
pub(super) fn is_unreadable(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::PermissionDenied
}

/// No read-ahead hint here.
pub(super) fn prefetch(_f: &File, _offset: u64, _len: u64) {}

pub(super) fn same_extents(_a: &File, _b: &File, _len: u64) -> io::Result<bool> {
    Ok(false)
}

/// No extent map here: whether a destination shares blocks is unknown.
pub(super) fn reclone_loses_nothing(_src: &File, _dst: &File) -> bool {
    false
}

pub(super) fn dedupe_into(_keep: &File, _other: &File, _len: u64) -> io::Result<DedupeResult> {
    Ok(DedupeResult::NotPossible {
        reason: NotPossible::Unsupported,
        shared: 0,
    })
}
