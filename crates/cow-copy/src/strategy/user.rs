//! Step 5: read and write in this process, keeping holes. Never declines.
//!
//! Reads each data segment (the whole file when holes cannot be found, or
//! when the size reads 0) and writes it at the same offset, so holes stay
//! unallocated; the last segment is read to the real end of file. With
//! `sparse = always` whole blocks of zeros are skipped too. A destination
//! that is not a regular file (FIFO, device) gets the bytes as a stream.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;

use rustix::fs::SeekFrom;
use rustix::io::Errno;

use crate::chain::{Job, Outcome, Step};
use crate::fault::{Site, fault};
use crate::report::Strategy;
use crate::strategy::{Segment, plan};
use crate::{CopyError, Moved, Sparse};

const BUF: usize = 1 << 20;

/// Runs the user-space copy.
pub(crate) fn step(job: &mut Job<'_>) -> Step {
    match copy(job) {
        Ok(o) => Step::Done(o),
        Err(e) => Step::Failed(e),
    }
}

fn copy(job: &mut Job<'_>) -> Result<Outcome, CopyError> {
    job.prepare_sized_write()?;
    if !job.dst_regular {
        return stream(job);
    }
    let segments = if job.opts.sparse == Sparse::Never {
        vec![Segment {
            start: 0,
            end: job.len,
        }]
    } else {
        plan(job.src, job.len, job.src_meta).map_err(|e| {
            cut(job, 0);
            CopyError::io("find data in", job.src_path, e)
        })?
    };
    let block = zero_block_size(job);
    let mut buf = vec![0u8; BUF];
    let mut written = 0u64;
    let mut skipped = 0u64;
    let mut real_end = None;
    'segments: for Segment { start, end } in segments {
        let to_eof = end >= job.len;
        let mut off = start;
        while to_eof || off < end {
            let want = super::ranges::request(off, end, to_eof, BUF as u64) as usize;
            if want == 0 {
                // At the largest offset: nothing can follow.
                real_end = Some(off);
                break 'segments;
            }
            cancel_point(job, off)?;
            let want = crate::fault::clamp(Site::Read, want);
            let n = match fault!(Site::Read, job.src.read_at(&mut buf[..want], off)) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    cut(job, off);
                    return Err(CopyError::io("read", job.src_path, e));
                }
            };
            if n == 0 {
                real_end = Some(off);
                break 'segments;
            }
            let chunk = &buf[..n];
            match block {
                Some(bs) => {
                    let (w, s) = write_skipping_zeros(&job.dst, chunk, off, bs)
                        .map_err(|e| write_error(job, off, e))?;
                    written += w;
                    skipped += s;
                }
                None => {
                    crate::fault::write_all_at(&job.dst, chunk, off)
                        .map_err(|e| write_error(job, off, e))?;
                    written += n as u64;
                }
            }
            off += n as u64;
            job.opts.observer.moved(Moved::Copied(n as u64));
        }
    }
    let (len, size_changed) = finish_len(job, real_end, written)?;
    let _ = skipped;
    Ok(Outcome {
        strategy: Strategy::UserCopy,
        bytes_cloned: 0,
        bytes_copied: written,
        hole_bytes: len.saturating_sub(written),
        len,
        size_changed,
    })
}

/// The block size for zero detection with `sparse = always`, else `None`.
fn zero_block_size(job: &Job<'_>) -> Option<u64> {
    if job.opts.sparse != Sparse::Always {
        return None;
    }
    use std::os::unix::fs::MetadataExt;
    let bs = job.dst.metadata().map(|m| m.blksize()).unwrap_or(4096);
    Some(bs.clamp(512, 1 << 20))
}

/// Writes `chunk` at `off`, leaving out every whole, aligned block of zeros
/// (the destination is empty there, so those stay holes). Returns (written,
/// skipped).
fn write_skipping_zeros(dst: &File, chunk: &[u8], off: u64, bs: u64) -> io::Result<(u64, u64)> {
    let (ranges, skipped) = super::ranges::nonzero_ranges(chunk, off, bs);
    let mut written = 0u64;
    for r in ranges {
        crate::fault::write_all_at(dst, &chunk[r.clone()], off + r.start as u64)?;
        written += r.len() as u64;
    }
    Ok((written, skipped))
}

/// Copies to a FIFO or device destination: a plain stream, no holes, no
/// length to set.
fn stream(job: &mut Job<'_>) -> Result<Outcome, CopyError> {
    let mut buf = vec![0u8; BUF];
    let mut written = 0u64;
    loop {
        cancel_point(job, written)?;
        // Explicit offsets: earlier steps may have moved the file position
        // (SEEK_DATA/SEEK_HOLE).
        let n = match job.src.read_at(&mut buf, written) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::io("read", job.src_path, e)),
        };
        (&job.dst)
            .write_all(&buf[..n])
            .map_err(|e| CopyError::io("write", job.dst_path, e))?;
        written += n as u64;
        job.opts.observer.moved(Moved::Copied(n as u64));
    }
    Ok(Outcome {
        strategy: Strategy::UserCopy,
        bytes_cloned: 0,
        bytes_copied: written,
        hole_bytes: 0,
        len: written,
        size_changed: written != job.len,
    })
}

/// Between two chunks at `off`: fails (the destination cut to its first
/// `off` bytes, as after any failure) once the caller's cancel flag is set.
pub(crate) fn cancel_point(job: &Job<'_>, off: u64) -> Result<(), CopyError> {
    job.opts.cancel.check().map_err(|e| {
        cut(job, off);
        CopyError::io("copy to", job.dst_path, e)
    })
}

fn write_error(job: &Job<'_>, off: u64, e: io::Error) -> CopyError {
    cut(job, off);
    CopyError::io("write", job.dst_path, e)
}

/// After a failure at `off`: cuts the destination (sized to the source's
/// length before the copy) back to the `off` bytes that hold the source's
/// first bytes, so an incomplete destination is a true prefix of the source
/// and its length says how much was copied.
pub(crate) fn cut(job: &Job<'_>, off: u64) {
    if job.dst_regular {
        let _ = job.dst.set_len(off);
    }
}

/// Sets the destination's final length and says whether the source's size
/// changed. `real_end` is where reading hit the end of file, if it did (the
/// file ended in data); otherwise the length is the one seen at open.
pub(crate) fn finish_len(
    job: &Job<'_>,
    real_end: Option<u64>,
    _written: u64,
) -> Result<(u64, bool), CopyError> {
    let mut len = real_end.unwrap_or(job.len);
    let now = fault!(Site::Stat, job.src.metadata())
        .map_err(|e| CopyError::io("stat", job.src_path, e))?
        .len();
    if real_end.is_none() && now < len {
        // The walk ran out of data early because the source shrank: its
        // lost tail is not a hole to keep.
        len = now;
    }
    if job.dst_regular {
        fault!(Site::Ftruncate, job.dst.set_len(len))
            .map_err(|e| CopyError::io("set the length of", job.dst_path, e))?;
    }
    Ok((len, len != job.len || now != job.len))
}

/// `sparse = never`: writes zeros into the destination's holes, so every
/// byte is allocated.
pub(crate) fn fill_holes(job: &Job<'_>, outcome: &mut Outcome) -> Result<(), CopyError> {
    // Written zeros, not fallocate: preallocated ranges still read as holes
    // to SEEK_DATA on btrfs and tmpfs, and `never` means no holes at all.
    let fd = job.dst.as_fd();
    let len = outcome.len;
    let zeros = vec![0u8; BUF];
    let mut off = 0u64;
    while off < len {
        let hole = match rustix::fs::seek(fd, SeekFrom::Hole(off)) {
            Ok(h) if h < len => h,
            Ok(_) | Err(Errno::NXIO) => break,
            Err(e) => return Err(CopyError::io("find holes in", job.dst_path, e.into())),
        };
        let data = match rustix::fs::seek(fd, SeekFrom::Data(hole)) {
            Ok(d) => d.min(len),
            Err(Errno::NXIO) => len,
            Err(e) => return Err(CopyError::io("find holes in", job.dst_path, e.into())),
        };
        let mut p = hole;
        while p < data {
            job.opts
                .cancel
                .check()
                .map_err(|e| CopyError::io("write zeros to", job.dst_path, e))?;
            let n = (data - p).min(BUF as u64) as usize;
            crate::fault::write_all_at(&job.dst, &zeros[..n], p)
                .map_err(|e| CopyError::io("write zeros to", job.dst_path, e))?;
            p += n as u64;
        }
        off = data;
    }
    outcome.bytes_copied += outcome.hole_bytes;
    outcome.hole_bytes = 0;
    if outcome.strategy == Strategy::Cloned && outcome.bytes_cloned > 0 {
        outcome.strategy = Strategy::Mixed;
    } else if outcome.strategy == Strategy::Cloned {
        outcome.strategy = Strategy::UserCopy;
    }
    Ok(())
}
