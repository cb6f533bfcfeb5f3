//! Step 4: the kernel copies (`copy_file_range`), one call loop per data
//! segment, so holes stay holes.
//!
//! Skipped with `reflink = never` (on btrfs and XFS the kernel may share
//! blocks instead of copying) and with `sparse = always` (zero runs inside
//! data can only be found by reading). Declines while nothing was written:
//! on a fallback errno, or when the first call returns 0 for a non-empty file
//! (procfs, sysfs). A 0 later means the file ended early: the copy stops
//! there and the report says the size changed.

use std::io;

use crate::chain::{Job, Outcome, Step};
use crate::report::{Fallback, Strategy};
use crate::strategy::{Segment, plan};
use crate::{CopyError, Moved, Reflink, Sparse, errno, sys};

#[cfg(target_os = "macos")]
mod macos;
#[cfg(not(target_os = "macos"))]
mod other;

#[cfg(target_os = "macos")]
use macos::copy_range;
#[cfg(not(target_os = "macos"))]
use other::copy_range;

/// Largest request per call (the kernel caps one call near 2 GiB anyway).
const CHUNK: u64 = 1 << 30;
/// Largest request per call when an observer follows the bytes or a cancel
/// flag may stop the copy: small enough that progress moves, and a cancel
/// is seen, several times a second.
const OBSERVED_CHUNK: u64 = 16 << 20;

/// Runs the kernel copy.
pub(crate) fn step(job: &mut Job<'_>) -> Step {
    if job.opts.reflink == Reflink::Never
        || job.opts.sparse == Sparse::Always
        || !job.dst_regular
        || job.len == 0
        || !sys::HAS_COPY_RANGE
    {
        return Step::Declined(None);
    }
    let segments = match plan(job.src, job.len, job.src_meta) {
        Ok(s) => s,
        Err(e) => return Step::Failed(CopyError::io("find data in", job.src_path, e)),
    };
    // One run of data from 0 to the end leaves no hole for an early length
    // to protect: the copy itself gives the destination its length.
    let dense = matches!(segments[..], [Segment { start: 0, end }] if end == job.len);
    let prepared = if dense {
        job.prepare_write()
    } else {
        job.prepare_sized_write()
    };
    if let Err(e) = prepared {
        return Step::Failed(e);
    }
    let mut written = 0u64;
    let mut real_end: Option<u64> = None;
    let declined = |e: Option<io::Error>, reason: String| {
        Step::Declined(Some(Fallback {
            strategy: Strategy::KernelCopy,
            errno: e.as_ref().and_then(io::Error::raw_os_error),
            reason,
        }))
    };
    let chunk = if job.opts.observer.is_set() || job.opts.cancel.is_set() {
        OBSERVED_CHUNK
    } else {
        CHUNK
    };
    'segments: for Segment { start, end } in segments.iter().copied() {
        let to_eof = end >= job.len;
        let mut off = start;
        while to_eof || off < end {
            let want = crate::strategy::ranges::request(off, end, to_eof, chunk);
            if want == 0 {
                // At the largest offset: nothing can follow.
                real_end = Some(off);
                break 'segments;
            }
            if let Err(e) = crate::strategy::user::cancel_point(job, off) {
                return Step::Failed(e);
            }
            let mut off_in = off;
            let mut off_out = off;
            match copy_range(job, &mut off_in, &mut off_out, want as usize) {
                Ok(0) => {
                    if written == 0 {
                        return declined(None, "copy_file_range returned 0 before any data".into());
                    }
                    if to_eof || off < end {
                        // End of file: where it really is now.
                        real_end = Some(off);
                    }
                    break 'segments;
                }
                Ok(n) => {
                    off += n as u64;
                    written += n as u64;
                    job.opts.observer.moved(Moved::Copied(n as u64));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if written == 0 && errno::is_fallback(&e) => {
                    let reason = format!("copy_file_range: {e}");
                    return declined(Some(e), reason);
                }
                Err(e) => {
                    crate::strategy::user::cut(job, off);
                    return Step::Failed(CopyError::io("copy_file_range to", job.dst_path, e));
                }
            }
        }
    }
    if real_end == Some(job.len) && job.dst_regular {
        // The last call met the end of file exactly where the source ended
        // when it was opened, and the destination has that length (sized
        // before the copy, or written from 0 to the end): no need to stat
        // the source and set the length again.
        return Step::Done(Outcome {
            strategy: Strategy::KernelCopy,
            bytes_cloned: 0,
            bytes_copied: written,
            hole_bytes: job.len.saturating_sub(written),
            len: job.len,
            size_changed: false,
        });
    }
    match crate::strategy::user::finish_len(job, real_end, written) {
        Ok((len, size_changed)) => Step::Done(Outcome {
            strategy: Strategy::KernelCopy,
            bytes_cloned: 0,
            bytes_copied: written,
            hole_bytes: len.saturating_sub(written),
            len,
            size_changed,
        }),
        Err(e) => Step::Failed(e),
    }
}
