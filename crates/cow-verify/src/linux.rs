//! Linux: extents from `FS_IOC_FIEMAP`, holes from `SEEK_DATA`/`SEEK_HOLE`.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::Path;

use cow_sys::linux::{FiemapExtent, FiemapExtentFlags as F, FiemapFlags, fiemap_all};

use rustix::io::Errno;

use crate::{Extent, Location, VerifyError, io_err};

pub(crate) use crate::unix::data_map;

/// Flag names in bit order.
const NAMES: [(F, &str); 11] = [
    (F::LAST, "last"),
    (F::UNKNOWN, "unknown"),
    (F::DELALLOC, "delalloc"),
    (F::ENCODED, "encoded"),
    (F::DATA_ENCRYPTED, "encrypted"),
    (F::NOT_ALIGNED, "not_aligned"),
    (F::DATA_INLINE, "inline"),
    (F::DATA_TAIL, "tail"),
    (F::UNWRITTEN, "unwritten"),
    (F::MERGED, "merged"),
    (F::SHARED, "shared"),
];

/// `BTRFS_SUPER_MAGIC`.
const BTRFS_MAGIC: u32 = 0x9123_683e;
/// `STATX_SUBVOL` from `<linux/stat.h>` (Linux 6.10+).
const STATX_SUBVOL: u32 = 0x8000;

/// Whether device offsets of the two files can be compared: the same
/// device, or two subvolumes of one btrfs filesystem (each subvolume has
/// its own `st_dev`, but FIEMAP offsets are filesystem-wide).
pub(crate) fn same_filesystem(
    fa: &File,
    a: &Path,
    fb: &File,
    b: &Path,
) -> Result<bool, VerifyError> {
    if crate::same_dev(fa, a, fb, b)? {
        return Ok(true);
    }
    let ta = rustix::fs::fstatfs(fa).map_err(|e| io_err("fstatfs", a, e))?;
    let tb = rustix::fs::fstatfs(fb).map_err(|e| io_err("fstatfs", b, e))?;
    if ta.f_type as u32 != BTRFS_MAGIC || tb.f_type as u32 != BTRFS_MAGIC {
        return Ok(false);
    }
    match (btrfs_fs_key(fa, a)?, btrfs_fs_key(fb, b)?) {
        (Some(ka), Some(kb)) => Ok(ka == kb),
        // A kernel without STATX_SUBVOL: cannot tell, so not comparable.
        _ => Ok(false),
    }
}

/// btrfs mixes the subvolume id into `f_fsid` (high half into the first
/// word, low half into the second) so each subvolume looks like its own
/// filesystem; undoing that gives one key per filesystem.
fn btrfs_fs_key(f: &File, path: &Path) -> Result<Option<u64>, VerifyError> {
    let vfs = rustix::fs::fstatvfs(f).map_err(|e| io_err("fstatvfs", path, e))?;
    let stx = match rustix::fs::statx(
        f,
        "",
        rustix::fs::AtFlags::EMPTY_PATH,
        rustix::fs::StatxFlags::from_bits_retain(STATX_SUBVOL),
    ) {
        Ok(stx) => stx,
        Err(_) => return Ok(None),
    };
    if stx.stx_mask & STATX_SUBVOL == 0 {
        return Ok(None);
    }
    let id = stx.stx_subvol;
    Ok(Some(vfs.f_fsid ^ (id >> 32) ^ ((id & 0xffff_ffff) << 32)))
}

pub(crate) fn extents(file: &File, path: &Path) -> Result<Vec<Extent>, VerifyError> {
    let raw = fiemap_all(file.as_fd(), FiemapFlags::SYNC).map_err(|e| fiemap_error(e, path))?;
    Ok(raw.iter().map(convert).collect())
}

fn fiemap_error(e: io::Error, path: &Path) -> VerifyError {
    // The VFS answers EOPNOTSUPP when the filesystem has no fiemap method;
    // ENOTTY comes from files that take no ioctls at all.
    match Errno::from_io_error(&e) {
        Some(Errno::OPNOTSUPP | Errno::NOTTY) => VerifyError::Unsupported {
            path: path.to_path_buf(),
            what: "FS_IOC_FIEMAP",
        },
        _ => io_err("FS_IOC_FIEMAP", path, e),
    }
}

pub(crate) fn convert(e: &FiemapExtent) -> Extent {
    let f = e.flags();
    let location = if f.intersects(F::UNKNOWN | F::DELALLOC) {
        Location::Unknown
    } else if f.contains(F::DATA_INLINE) {
        Location::Inline
    } else if f.intersects(F::ENCODED | F::DATA_ENCRYPTED) {
        Location::Encoded(e.fe_physical)
    } else {
        Location::Physical(e.fe_physical)
    };
    let mut flags: Vec<&'static str> = NAMES
        .iter()
        .filter(|(bit, _)| f.contains(*bit))
        .map(|&(_, n)| n)
        .collect();
    if F::from_bits(e.fe_flags).is_none() {
        flags.push("other");
    }
    Extent {
        logical: e.fe_logical,
        length: e.fe_length,
        location,
        shared: f.contains(F::SHARED),
        flags,
        raw_flags: e.fe_flags,
    }
}
