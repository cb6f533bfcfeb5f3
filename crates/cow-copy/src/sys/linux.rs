//! Linux: `FICLONE`, FIEMAP, `O_TMPFILE`, `copy_file_range`,
//! `renameat2(RENAME_NOREPLACE)`, xattrs. Plain calls on descriptors: what
//! they mean for a copy is decided by the steps above.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use cow_sys::linux::{FiemapExtentFlags, FiemapFlags, fiemap_all};
use rustix::fs::{Mode, OFlags, RenameFlags};

use crate::fault::{Site, fault};

pub(crate) use cow_sys::linux::ficlone;

/// Flags to open a directory that is only used as an `*at` anchor
/// (`O_PATH` needs no read permission).
pub(crate) const DIR_FLAGS: OFlags = OFlags::PATH.union(OFlags::DIRECTORY).union(OFlags::CLOEXEC);

/// Flags to look at an existing entry without side effects (no FIFO wait,
/// no device open).
pub(crate) const PROBE_FLAGS: OFlags = OFlags::PATH.union(OFlags::CLOEXEC);

/// `copy_file_range` exists.
pub(crate) const HAS_COPY_RANGE: bool = true;

/// One extent of a file as FIEMAP reports it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Extent {
    /// Its offset in the file.
    pub(crate) start: u64,
    /// Its length.
    pub(crate) len: u64,
    /// `FIEMAP_EXTENT_SHARED`.
    pub(crate) shared: bool,
    /// `FIEMAP_EXTENT_DATA_INLINE` or `FIEMAP_EXTENT_NOT_ALIGNED`: the data
    /// is stored with the metadata, not in blocks of its own.
    pub(crate) inline: bool,
}

/// Every extent of `fd` (FIEMAP, no sync).
pub(crate) fn extents(fd: BorrowedFd<'_>) -> io::Result<Vec<Extent>> {
    Ok(fiemap_all(fd, FiemapFlags::empty())?
        .into_iter()
        .map(|e| {
            let f = e.flags();
            Extent {
                start: e.fe_logical,
                len: e.fe_length,
                shared: f.contains(FiemapExtentFlags::SHARED),
                inline: f
                    .intersects(FiemapExtentFlags::DATA_INLINE | FiemapExtentFlags::NOT_ALIGNED),
            }
        })
        .collect())
}

/// An unnamed file in `dir` (`O_TMPFILE`, freed on close), read-write,
/// mode 0600.
pub(crate) fn open_tmpfile(dir: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dir,
        ".",
        OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )?)
}

/// One `copy_file_range` call between explicit offsets.
pub(crate) fn copy_range(
    src: BorrowedFd<'_>,
    off_in: &mut u64,
    dst: BorrowedFd<'_>,
    off_out: &mut u64,
    len: usize,
) -> io::Result<usize> {
    Ok(rustix::fs::copy_file_range(
        src,
        Some(off_in),
        dst,
        Some(off_out),
        len,
    )?)
}

/// `renameat2(RENAME_NOREPLACE)`.
pub(crate) fn rename_noreplace(dir: BorrowedFd<'_>, from: &OsStr, to: &OsStr) -> io::Result<()> {
    Ok(rustix::fs::renameat_with(
        dir,
        from,
        dir,
        to,
        RenameFlags::NOREPLACE,
    )?)
}
/// Copies every extended attribute (including `system.posix_acl_access`,
/// the POSIX ACL) from `src` to `dst`; refusals are listed in `skipped`.
pub(crate) fn copy_xattrs(src: &std::fs::File, dst: &std::fs::File, skipped: &mut Vec<String>) {
    let names = match list_xattrs(src) {
        Ok(n) => n,
        Err(e) => {
            skipped.push(format!("xattrs: {e}"));
            return;
        }
    };
    for name in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let name = std::ffi::OsStr::from_bytes(name);
        let r = (|| -> io::Result<()> {
            let n = rustix::fs::fgetxattr_query(src, name)?;
            let mut value = vec![0u8; n];
            let got = rustix::fs::fgetxattr(src, name, &mut value[..])?;
            value.truncate(got);
            fault!(
                Site::Xattr,
                rustix::fs::fsetxattr(dst, name, &value, rustix::fs::XattrFlags::empty())
            )?;
            Ok(())
        })();
        if let Err(e) = r {
            skipped.push(format!("xattr {}: {e}", name.to_string_lossy()));
        }
    }
}

fn list_xattrs(f: &std::fs::File) -> io::Result<Vec<u8>> {
    for _ in 0..4 {
        let n = match fault!(Site::Xattr, rustix::fs::flistxattr_query(f)) {
            Ok(n) => n,
            Err(rustix::io::Errno::OPNOTSUPP) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut buf = vec![0u8; n];
        match rustix::fs::flistxattr(f, &mut buf[..]) {
            Ok(got) => {
                buf.truncate(got);
                return Ok(buf);
            }
            // Grew meanwhile.
            Err(rustix::io::Errno::RANGE) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(io::Error::other("the xattr list kept changing"))
}
