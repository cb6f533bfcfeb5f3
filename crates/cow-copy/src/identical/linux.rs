//! Linux: physical extents from `FS_IOC_FIEMAP` and reverse `FIDEDUPERANGE`.

use std::fs::File;
use std::fs::Metadata;
use std::io;
use std::num::NonZeroU64;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileExt, MetadataExt};

use rustix::io::Errno;

use cow_sys::linux::{DedupeStatus, FiemapExtentFlags, FiemapFlags, dedupe_one, fiemap_all};

use super::{DedupeResult, NotPossible};
use crate::fault::{Site, fault};

/// Largest range handed to one `FIDEDUPERANGE` call (the kernel accepts
/// more, but its comparison reads page by page without read-ahead, so each
/// request is read ahead first and should fit comfortably in memory).
const MAX_DEDUPE_REQUEST: u64 = 64 << 20;

pub(super) fn read_at(f: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let n = crate::fault::clamp(Site::Read, buf.len());
    fault!(Site::Read, f.read_at(&mut buf[..n], offset))
}

/// Asks the kernel to start reading `offset..offset + len` now (best
/// effort: a refusal changes nothing but speed).
pub(super) fn prefetch(f: &File, offset: u64, len: u64) {
    if let Some(len) = NonZeroU64::new(len) {
        let _ = rustix::fs::fadvise(f, offset, Some(len), rustix::fs::Advice::WillNeed);
    }
}

pub(super) fn same_file(a: &File, b: &File) -> io::Result<bool> {
    let (ma, mb) = (a.metadata()?, b.metadata()?);
    Ok(ma.dev() == mb.dev() && ma.ino() == mb.ino())
}

pub(super) fn same_device(a: &Metadata, b: &Metadata) -> bool {
    a.dev() == b.dev()
}

/// A read failed because the descriptor or the user may not read.
pub(super) fn is_unreadable(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error().map(Errno::from_raw_os_error),
        Some(Errno::BADF | Errno::ACCESS | Errno::PERM)
    )
}

/// The `FIDEDUPERANGE` errors after which a plain skip is the answer.
fn not_possible(e: &io::Error) -> Option<NotPossible> {
    let errno = Errno::from_raw_os_error(e.raw_os_error()?);
    Some(match errno {
        Errno::OPNOTSUPP | Errno::NOTTY | Errno::NOSYS => NotPossible::Unsupported,
        Errno::XDEV => NotPossible::DifferentFilesystem,
        Errno::PERM | Errno::ACCESS | Errno::BADF => NotPossible::Permission,
        Errno::TXTBSY | Errno::AGAIN => NotPossible::Busy,
        Errno::ROFS => NotPossible::ReadOnly,
        Errno::NOSPC | Errno::DQUOT => NotPossible::NoSpace,
        Errno::INVAL | Errno::ISDIR => NotPossible::Invalid,
        _ => return None,
    })
}

/// One contiguous, physically addressed run of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    logical: u64,
    physical: u64,
    length: u64,
}

/// A file's data as physically addressed runs (merged where both the
/// logical and the physical ranges continue) and whether every extent is
/// marked shared; `None` when some extent has no exact address (delayed
/// allocation, inline, encoded or compressed, tail packing, unknown): then
/// equality cannot be proven from the map.
///
/// No `FIEMAP_FLAG_SYNC`: forcing writeback of a freshly written file just to
/// prove a shortcut costs more than the shortcut saves; unwritten data shows
/// as delayed allocation and the answer is simply "cannot tell".
fn physical_runs(f: &File) -> io::Result<Option<(Vec<Run>, bool)>> {
    let extents = match fault!(Site::Fiemap, fiemap_all(f.as_fd(), FiemapFlags::empty())) {
        Ok(x) => x,
        // No FIEMAP here (tmpfs, FUSE, ...): cannot tell.
        Err(e) if not_possible(&e).is_some() => return Ok(None),
        Err(e) => return Err(e),
    };
    let unknown = FiemapExtentFlags::UNKNOWN
        | FiemapExtentFlags::DELALLOC
        | FiemapExtentFlags::ENCODED
        | FiemapExtentFlags::DATA_ENCRYPTED
        | FiemapExtentFlags::NOT_ALIGNED
        | FiemapExtentFlags::DATA_INLINE
        | FiemapExtentFlags::DATA_TAIL;
    let mut all_shared = true;
    let mut runs: Vec<Run> = Vec::with_capacity(extents.len());
    for e in extents {
        if e.flags().intersects(unknown) || e.fe_length == 0 {
            return Ok(None);
        }
        all_shared &= e.flags().contains(FiemapExtentFlags::SHARED);
        if let Some(last) = runs.last_mut()
            && last.logical + last.length == e.fe_logical
            && last.physical + last.length == e.fe_physical
        {
            last.length += e.fe_length;
            continue;
        }
        runs.push(Run {
            logical: e.fe_logical,
            physical: e.fe_physical,
            length: e.fe_length,
        });
    }
    Ok(Some((runs, all_shared)))
}

/// The runs that cover bytes below `len`, the last one cut at `len`.
fn below(runs: Vec<Run>, len: u64) -> Vec<Run> {
    runs.into_iter()
        .filter(|r| r.logical < len)
        .map(|mut r| {
            r.length = r.length.min(len - r.logical);
            r
        })
        .collect()
}

pub(super) fn same_extents(a: &File, b: &File, len: u64) -> io::Result<bool> {
    // Two distinct files can only have the same physical blocks if every
    // block of them is shared; checking that first spares mapping `b` in the
    // common case of an unshared file.
    let Some((ra, a_shared)) = physical_runs(a)? else {
        return Ok(false);
    };
    if !a_shared || ra.is_empty() {
        return Ok(false);
    }
    let Some((rb, _)) = physical_runs(b)? else {
        return Ok(false);
    };
    // Holes at the same places read as zeros in both; every byte below `len`
    // is either in a run of both maps or in a hole of both.
    let (ra, rb) = (below(ra, len), below(rb, len));
    Ok(!ra.is_empty() && ra == rb)
}

/// Whether cloning `src` over `dst` loses no sharing and will succeed: no
/// extent of `dst` is marked `SHARED` (so it shares its blocks with no
/// snapshot, clone or dedupe), and the kernel accepts a zero-length
/// `FIDEDUPERANGE` from `src` to `dst`, which it only does for two files
/// on one filesystem that can share blocks (btrfs, XFS with reflink; any
/// subvolume). Both calls change nothing; any error means "no".
pub(super) fn reclone_loses_nothing(src: &File, dst: &File) -> bool {
    let Ok(extents) = fault!(Site::Fiemap, fiemap_all(dst.as_fd(), FiemapFlags::empty())) else {
        return false;
    };
    if extents
        .iter()
        .any(|e| e.flags().contains(FiemapExtentFlags::SHARED))
    {
        return false;
    }
    matches!(
        dedupe_one(src.as_fd(), 0, 0, dst.as_fd(), 0),
        Ok(DedupeStatus::Same { .. })
    )
}

pub(super) fn dedupe_refused(a: &File, b: &File) -> Option<NotPossible> {
    match dedupe_one(a.as_fd(), 0, 0, b.as_fd(), 0) {
        Ok(_) => None,
        Err(e) => not_possible(&e).filter(|r| *r == NotPossible::Unsupported),
    }
}

pub(super) fn dedupe_into(keep: &File, other: &File, len: u64) -> io::Result<DedupeResult> {
    let mut offset = 0u64;
    while offset < len {
        let request = (len - offset).min(MAX_DEDUPE_REQUEST);
        // Both files' pages in flight at once, instead of the kernel's
        // compare faulting them in one by one.
        prefetch(keep, offset, request);
        prefetch(other, offset, request);
        match fault!(
            Site::IoctlDedupe,
            dedupe_one(keep.as_fd(), offset, request, other.as_fd(), offset)
        ) {
            Ok(DedupeStatus::Same { bytes_deduped: 0 }) => {
                return Ok(DedupeResult::NotPossible {
                    reason: NotPossible::NoProgress,
                    shared: offset,
                });
            }
            Ok(DedupeStatus::Same { bytes_deduped }) => {
                offset += bytes_deduped.min(len - offset);
            }
            Ok(DedupeStatus::Differs) => {
                return Ok(DedupeResult::Differs {
                    range_start: offset,
                    shared: offset,
                });
            }
            Err(e) => match not_possible(&e) {
                Some(reason) => {
                    return Ok(DedupeResult::NotPossible {
                        reason,
                        shared: offset,
                    });
                }
                None => return Err(e),
            },
        }
    }
    Ok(DedupeResult::Shared { bytes: len })
}
