//! macOS: extents from `F_LOG2PHYS_EXT`, walked over each data segment;
//! holes from `SEEK_DATA`/`SEEK_HOLE`.
//!
//! `F_LOG2PHYS_EXT` answers "device offset of this file offset, and how many
//! bytes are contiguous from there". It has no shared flag, so
//! [`Extent::shared`] is always `false` here; sharing is still measured
//! exactly by comparing device ranges.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::Path;

use cow_sys::macos::Log2Phys;
use rustix::io::Errno;

use crate::{Extent, Location, SegmentKind, VerifyError, io_err};

pub(crate) use crate::unix::data_map;

/// Device offsets are comparable only on one device (APFS clones never
/// cross volumes).
pub(crate) use crate::same_dev as same_filesystem;

/// Upper bound on calls for one file, so a filesystem that keeps answering
/// zero-length runs cannot loop us forever.
const MAX_CALLS: usize = 1 << 24;

pub(crate) fn extents(file: &File, path: &Path) -> Result<Vec<Extent>, VerifyError> {
    // Delayed allocation has no device address yet: flush first.
    file.sync_data().map_err(|e| io_err("fsync", path, e))?;
    let map = data_map(file, path)?;
    let segments: Vec<(u64, u64)> = map
        .iter()
        .filter(|s| s.kind == SegmentKind::Data)
        .map(|s| (s.offset, s.end()))
        .collect();
    walk(&segments, |pos, len| {
        cow_sys::macos::log2phys_ext(file.as_fd(), pos, len)
    })
    .map_err(|e| match e {
        Walk::Unsupported => VerifyError::Unsupported {
            path: path.to_path_buf(),
            what: "fcntl(F_LOG2PHYS_EXT)",
        },
        Walk::Io(e) => io_err("fcntl(F_LOG2PHYS_EXT)", path, e),
    })
}

/// Why [`walk`] stopped.
#[derive(Debug)]
enum Walk {
    /// The filesystem has no `F_LOG2PHYS_EXT`.
    Unsupported,
    /// Another error.
    Io(std::io::Error),
}

/// Maps each data segment `start..end` with `lookup(offset, len)` (one
/// `F_LOG2PHYS_EXT` call). Every data byte ends up in exactly one extent:
/// a range the filesystem gives no place for (no run reported, or `ERANGE`
/// inside a data segment, as when the file shrank after its data map was
/// read) is an unknown extent, which is never shared, so no verdict of
/// "clone" is ever made on partial evidence.
fn walk(
    segments: &[(u64, u64)],
    mut lookup: impl FnMut(u64, u64) -> std::io::Result<Log2Phys>,
) -> Result<Vec<Extent>, Walk> {
    let mut out = Vec::new();
    let mut calls = 0usize;
    for &(start, end) in segments {
        let mut pos = start;
        while pos < end {
            calls += 1;
            if calls > MAX_CALLS {
                return Err(Walk::Io(std::io::Error::other("too many extents")));
            }
            let r = match lookup(pos, end - pos) {
                Ok(r) => r,
                // No device place for the rest of this segment.
                Err(e) if Errno::from_io_error(&e) == Some(Errno::RANGE) => {
                    out.push(unknown(pos, end - pos));
                    break;
                }
                Err(e) if Errno::from_io_error(&e) == Some(Errno::NOTSUP) => {
                    return Err(Walk::Unsupported);
                }
                Err(e) => return Err(Walk::Io(e)),
            };
            let contig = r.l2p_contigbytes;
            let dev = r.l2p_devoffset;
            if contig <= 0 {
                // No run reported: the rest of this segment has no known place.
                out.push(unknown(pos, end - pos));
                break;
            }
            let len = (contig as u64).min(end - pos);
            let location = if dev < 0 {
                Location::Unknown
            } else {
                Location::Physical(dev as u64)
            };
            out.push(Extent {
                logical: pos,
                length: len,
                location,
                shared: false,
                flags: Vec::new(),
                raw_flags: 0,
            });
            pos += len;
        }
    }
    Ok(out)
}

fn unknown(logical: u64, length: u64) -> Extent {
    Extent {
        logical,
        length,
        location: Location::Unknown,
        shared: false,
        flags: vec!["unknown"],
        raw_flags: 0,
    }
}

#[cfg(test)]
mod tests {
    //! The walk's bookkeeping, fed the answers `F_LOG2PHYS_EXT` gives
    //! (a real `ERANGE` in the middle of a data segment needs a file that
    //! shrinks between two system calls, which a test cannot time).
    use super::*;

    fn run(dev: i64, contig: i64) -> std::io::Result<Log2Phys> {
        Ok(Log2Phys {
            l2p_flags: 0,
            l2p_contigbytes: contig,
            l2p_devoffset: dev,
        })
    }

    #[test]
    fn erange_inside_a_segment_leaves_the_rest_unknown_and_no_clone_verdict() {
        let segments = [(0, 3 * 4096), (8 * 4096, 10 * 4096)];
        // The first 4096 bytes map, then ERANGE for everything after.
        let answers = |pos: u64, _len: u64| {
            if pos == 0 {
                run(1 << 20, 4096)
            } else {
                Err(std::io::Error::from(Errno::RANGE))
            }
        };
        let a = walk(&segments, answers).unwrap();
        let covered: u64 = a.iter().map(|e| e.length).sum();
        assert_eq!(covered, 5 * 4096, "every data byte is in an extent: {a:?}");
        let unknown: u64 = a
            .iter()
            .filter(|e| e.location == Location::Unknown)
            .map(|e| e.length)
            .sum();
        assert_eq!(unknown, 4 * 4096, "{a:?}");
        // The same answers for both files: still not a clone, since most
        // bytes were never placed.
        let b = walk(&segments, answers).unwrap();
        let s = crate::compute_sharing(&a, 10 * 4096, &b, 10 * 4096);
        assert!(!s.is_clone(), "{s:?}");
        assert_eq!(s.unknown_bytes, 4 * 4096);
    }

    #[test]
    fn a_fully_mapped_walk_is_a_clone_of_itself() {
        let segments = [(0, 2 * 4096)];
        let answers = |pos: u64, len: u64| run((1 << 20) + pos as i64, len.min(4096) as i64);
        let a = walk(&segments, answers).unwrap();
        assert_eq!(a.len(), 2, "{a:?}");
        let s = crate::compute_sharing(&a, 2 * 4096, &a, 2 * 4096);
        assert!(s.is_clone(), "{s:?}");
    }

    #[test]
    fn notsup_is_unsupported() {
        let r = walk(&[(0, 4096)], |_, _| {
            Err(std::io::Error::from(Errno::NOTSUP))
        });
        assert!(matches!(r, Err(Walk::Unsupported)), "{r:?}");
    }
}
