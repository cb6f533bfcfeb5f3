//! Windows: extents from `FSCTL_GET_RETRIEVAL_POINTERS` (cluster runs; on a
//! volume with block refcounting, ReFS, `FSCTL_GET_RETRIEVAL_POINTERS_AND_REFCOUNT`,
//! whose reference counts give [`Extent::shared`]), data/hole map from
//! `FSCTL_QUERY_ALLOCATED_RANGES`.
//!
//! Cluster numbers are volume-wide, so a byte's device offset is its
//! logical cluster number times the cluster size, comparable between files
//! of one volume (same volume serial number). A file small enough to live
//! in its NTFS record has no clusters: its data is reported as one
//! [`Location::Inline`] extent, never counted as shared.
//!
//! Wine answers neither call for real: its `FSCTL_GET_RETRIEVAL_POINTERS`
//! is a stub (refused by `cow-sys` as no extent map) and it has no
//! `FSCTL_QUERY_ALLOCATED_RANGES`; both become [`VerifyError::Unsupported`].

use std::fs::File;
use std::io;
use std::os::windows::io::AsHandle;
use std::path::Path;

use cow_sys::windows::{
    FILE_SUPPORTS_BLOCK_REFCOUNTING, allocated_ranges, cluster_runs, cluster_size, file_id,
    volume_flags,
};

use crate::{Extent, Location, Segment, SegmentKind, VerifyError, io_err, push_segment};

/// `ERROR_INVALID_FUNCTION`, `ERROR_NOT_SUPPORTED`: the file system has no
/// such control code.
const NOT_SUPPORTED: [i32; 2] = [1, 50];

/// Turns "this file system (or Wine) cannot answer" into
/// [`VerifyError::Unsupported`], anything else into [`VerifyError::Io`].
fn fsctl_error(op: &'static str, path: &Path, e: io::Error) -> VerifyError {
    let unsupported = e.kind() == io::ErrorKind::Unsupported
        || e.raw_os_error().is_some_and(|c| NOT_SUPPORTED.contains(&c));
    if unsupported {
        VerifyError::Unsupported {
            path: path.to_path_buf(),
            what: op,
        }
    } else {
        io_err(op, path, e)
    }
}

/// Device offsets compare only within one volume.
pub(crate) fn same_filesystem(
    fa: &File,
    a: &Path,
    fb: &File,
    b: &Path,
) -> Result<bool, VerifyError> {
    let va = file_id(fa.as_handle()).map_err(|e| io_err("GetFileInformationByHandle", a, e))?;
    let vb = file_id(fb.as_handle()).map_err(|e| io_err("GetFileInformationByHandle", b, e))?;
    Ok(va.volume_serial == vb.volume_serial)
}

pub(crate) fn extents(file: &File, path: &Path) -> Result<Vec<Extent>, VerifyError> {
    let h = file.as_handle();
    let len = file.metadata().map_err(|e| io_err("stat", path, e))?.len();
    let flags = volume_flags(h).map_err(|e| io_err("GetVolumeInformationByHandleW", path, e))?;
    let refcount = flags & FILE_SUPPORTS_BLOCK_REFCOUNTING != 0;
    let op = if refcount {
        "FSCTL_GET_RETRIEVAL_POINTERS_AND_REFCOUNT"
    } else {
        "FSCTL_GET_RETRIEVAL_POINTERS"
    };
    let runs = cluster_runs(h, refcount).map_err(|e| fsctl_error(op, path, e))?;
    if runs.is_empty() && len > 0 {
        // Data without clusters of its own: inside the file's record.
        return Ok(vec![Extent {
            logical: 0,
            length: len,
            location: Location::Inline,
            shared: false,
            flags: vec!["inline"],
            raw_flags: 0,
        }]);
    }
    let cluster =
        u64::from(cluster_size(h).map_err(|e| io_err("NtQueryVolumeInformationFile", path, e))?);
    Ok(runs
        .into_iter()
        // A run without storage is a hole: holes have no extent.
        .filter_map(|r| {
            let lcn = r.lcn?;
            let shared = r.reference_count.is_some_and(|n| n > 1);
            Some(Extent {
                logical: r.vcn * cluster,
                length: (r.next_vcn - r.vcn) * cluster,
                location: Location::Physical(lcn * cluster),
                shared,
                flags: if shared { vec!["shared"] } else { Vec::new() },
                raw_flags: 0,
            })
        })
        .collect())
}

pub(crate) fn data_map(file: &File, path: &Path) -> Result<Vec<Segment>, VerifyError> {
    let len = file.metadata().map_err(|e| io_err("stat", path, e))?.len();
    let ranges = allocated_ranges(file.as_handle(), 0, len)
        .map_err(|e| fsctl_error("FSCTL_QUERY_ALLOCATED_RANGES", path, e))?;
    let mut out = Vec::new();
    let mut pos = 0u64;
    for r in ranges {
        let start = r.offset.min(len);
        let end = r.offset.saturating_add(r.len).min(len);
        if start < pos {
            return Err(io_err(
                "FSCTL_QUERY_ALLOCATED_RANGES",
                path,
                io::Error::new(io::ErrorKind::InvalidData, "ranges out of order"),
            ));
        }
        push_segment(&mut out, pos, start, SegmentKind::Hole);
        push_segment(&mut out, start, end, SegmentKind::Data);
        pos = end;
    }
    push_segment(&mut out, pos, len, SegmentKind::Hole);
    Ok(out)
}
