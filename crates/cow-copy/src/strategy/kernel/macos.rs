//! The kernel-copy slot on macOS: `fcopyfile(COPYFILE_DATA)`.

use std::io;
use std::os::fd::AsFd;

use rustix::io::Errno;

use crate::chain::Job;
use crate::sys::{self, CopyFileFlags};

/// The kernel copy on macOS: one `fcopyfile(COPYFILE_DATA)` for a source
/// that is one run of data, from offset 0 to its end.
///
/// `fcopyfile` copies from the descriptors' offsets to the end of the
/// file, so it cannot copy one segment: a sparse source is refused on the
/// first call (`ENOTSUP`, nothing written), and the user-space copy keeps
/// its holes segment by segment. The count is what the destination holds
/// afterwards (it was empty: a dense source's destination is truncated
/// first). A later call is past the data (0) or, if the source is longer
/// than what was copied, refused.
pub(super) fn copy_range(
    job: &Job<'_>,
    off_in: &mut u64,
    off_out: &mut u64,
    _len: usize,
) -> io::Result<usize> {
    if *off_in >= job.len {
        return Ok(0);
    }
    if *off_in != 0 || *off_out != 0 {
        // A sparse source whose data starts later, or a second call after
        // a copy that ended early because the source shrank.
        let now = job.src.metadata()?.len();
        return if *off_in >= now {
            Ok(0)
        } else {
            Err(Errno::NOTSUP.into())
        };
    }
    match crate::strategy::data_segments(job.src, job.len)? {
        Some(segs) if segs.len() != 1 || segs[0].start != 0 => return Err(Errno::NOTSUP.into()),
        _ => {}
    }
    // fcopyfile works from the descriptors' current offsets, which the
    // SEEK_DATA/SEEK_HOLE walk moved: start both at 0.
    rustix::fs::seek(job.src.as_fd(), rustix::fs::SeekFrom::Start(0))?;
    rustix::fs::seek(job.dst.as_fd(), rustix::fs::SeekFrom::Start(0))?;
    sys::fcopyfile(job.src.as_fd(), job.dst.as_fd(), None, CopyFileFlags::DATA)?;
    let n = job.dst.metadata()?.len();
    *off_in += n;
    *off_out += n;
    usize::try_from(n).map_err(|_| io::Error::other("copied more than usize::MAX bytes"))
}
