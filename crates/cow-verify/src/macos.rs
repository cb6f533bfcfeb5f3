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
    let mut out = Vec::new();
    let mut calls = 0usize;
    for seg in map.iter().filter(|s| s.kind == SegmentKind::Data) {
        let mut pos = seg.offset;
        while pos < seg.end() {
            calls += 1;
            if calls > MAX_CALLS {
                return Err(io_err(
                    "fcntl(F_LOG2PHYS_EXT)",
                    path,
                    std::io::Error::other("too many extents"),
                ));
            }
            let r = match cow_sys::macos::log2phys_ext(file.as_fd(), pos, seg.end() - pos) {
                Ok(r) => r,
                // Past the last allocated byte.
                Err(e) if Errno::from_io_error(&e) == Some(Errno::RANGE) => break,
                Err(e) if Errno::from_io_error(&e) == Some(Errno::NOTSUP) => {
                    return Err(VerifyError::Unsupported {
                        path: path.to_path_buf(),
                        what: "fcntl(F_LOG2PHYS_EXT)",
                    });
                }
                Err(e) => return Err(io_err("fcntl(F_LOG2PHYS_EXT)", path, e)),
            };
            let contig = r.l2p_contigbytes;
            let dev = r.l2p_devoffset;
            if contig <= 0 {
                // No run reported: the rest of this segment has no known place.
                out.push(unknown(pos, seg.end() - pos));
                break;
            }
            let len = (contig as u64).min(seg.end() - pos);
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
