//! Linux: `FICLONE` (after truncating the destination), then
//! `copy_file_range` per data segment.

use std::io;
use std::os::fd::AsFd;

use cow_sys::linux::{FiemapExtentFlags, FiemapFlags, ficlone, fiemap_all};
use rustix::fs::{Mode, OFlags, RenameFlags};

use crate::chain::{Job, Outcome};
use crate::fault::{Site, fault};
use crate::report::Strategy;
use crate::strategy::clone::CloneError;

/// Flags to open a directory that is only used as an `*at` anchor
/// (`O_PATH` needs no read permission).
pub(crate) const DIR_FLAGS: OFlags = OFlags::PATH.union(OFlags::DIRECTORY).union(OFlags::CLOEXEC);

/// Flags to look at an existing entry without side effects (no FIFO wait,
/// no device open).
pub(crate) const PROBE_FLAGS: OFlags = OFlags::PATH.union(OFlags::CLOEXEC);

/// `copy_file_range` exists.
pub(crate) const HAS_COPY_RANGE: bool = true;

/// Clones the whole source into the (empty) destination with `FICLONE`, then
/// reads the destination's extents back to report only shared bytes as
/// cloned (btrfs copies small files inline instead of sharing them).
pub(crate) fn clone(job: &mut Job<'_>) -> Result<Outcome, CloneError> {
    // FICLONE answers EXDEV across filesystems before a filesystem can
    // answer EOPNOTSUPP, so such a refusal is about the source's device; it
    // is reused only when the destination is known to be on that device.
    let dev = (!crate::fault::armed()).then_some(job.src_dev);
    if job.dst_dev.is_some() && job.dst_dev == dev {
        if let Some(raw) = dev.and_then(no_clone::known) {
            return Err(CloneError::Known(io::Error::from_raw_os_error(raw)));
        }
    }
    job.prepare_write().map_err(CloneError::Failed)?;
    fault!(Site::IoctlClone, ficlone(job.dst.as_fd(), job.src.as_fd())).map_err(|e| {
        if let (Some(dev), Some(raw)) = (dev, e.raw_os_error()) {
            no_clone::remember(dev, raw);
        }
        CloneError::from_io(job, "clone into", e)
    })?;
    let meta = fault!(Site::Stat, job.dst.metadata())
        .map_err(|e| CloneError::Failed(crate::CopyError::io("stat", job.dst_path, e)))?;
    let len = meta.len();
    if len != job.len {
        // A clone is of the source as it is now: only a source that changed
        // size since it was opened explains another length; anything else
        // is a short clone, never reported as a success. (Only here, off
        // the common path, is the source stat'ed again.)
        let now = fault!(Site::Stat, job.src.metadata())
            .map_err(|e| CloneError::Failed(crate::CopyError::io("stat", job.src_path, e)))?
            .len();
        if now != len {
            let e = io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the clone has {len} bytes, the source {now}"),
            );
            let op = "check the length of the clone";
            return Err(CloneError::Failed(crate::CopyError::io(
                op,
                job.dst_path,
                e,
            )));
        }
    }
    job.dst_mode = Some(std::os::unix::fs::MetadataExt::mode(&meta) & 0o7777);
    let (cloned, copied) = if surely_shared(&meta) {
        (len, 0)
    } else {
        match shared_bytes(job, len) {
            Ok(v) => v,
            // No FIEMAP: the ioctl succeeded, trust it.
            Err(_) => (len, 0),
        }
    };
    Ok(Outcome {
        strategy: classify(cloned, copied),
        bytes_cloned: cloned,
        bytes_copied: copied,
        hole_bytes: len.saturating_sub(cloned + copied),
        len,
        size_changed: len != job.len,
    })
}

/// Devices whose filesystem refused `FICLONE` as a whole (no clone support
/// at all), remembered per process so later files skip the call.
mod no_clone {
    use std::collections::HashMap;
    use std::sync::Mutex;

    static DEVICES: Mutex<Option<HashMap<u64, i32>>> = Mutex::new(None);

    /// The errno `dev` refused clones with, if it did.
    pub(super) fn known(dev: u64) -> Option<i32> {
        let map = DEVICES.lock().unwrap_or_else(|p| p.into_inner());
        map.as_ref().and_then(|m| m.get(&dev).copied())
    }

    /// Records `raw` for `dev` when it means "this filesystem cannot clone"
    /// (not EINVAL or ETXTBSY, which can be about one file).
    pub(super) fn remember(dev: u64, raw: i32) {
        use rustix::io::Errno;
        let e = Errno::from_raw_os_error(raw);
        if e == Errno::OPNOTSUPP || e == Errno::NOTTY || e == Errno::NOSYS {
            let mut map = DEVICES.lock().unwrap_or_else(|p| p.into_inner());
            map.get_or_insert_with(HashMap::new).insert(dev, raw);
        }
    }
}

/// Whether a successful `FICLONE` surely shared every byte of the
/// destination (`meta`, just after the clone), so reading the extents back
/// can be skipped. The only unshared data a clone makes is a btrfs inline
/// extent: at most one filesystem block, at offset 0, and in a file larger
/// than a block only when a hole of at least one block follows it. So a
/// destination larger than a block with no hole (its allocation covers its
/// length) has none. Anything else is read back.
fn surely_shared(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    let block = meta.blksize().max(4096);
    meta.len() > block && meta.blocks().saturating_mul(512) >= meta.len()
}

/// (shared, not shared) data bytes of the destination's first `len` bytes.
fn shared_bytes(job: &Job<'_>, len: u64) -> io::Result<(u64, u64)> {
    let mut shared = 0u64;
    let mut other = 0u64;
    for e in fault!(
        Site::Fiemap,
        fiemap_all(job.dst.as_fd(), FiemapFlags::empty())
    )? {
        let start = e.fe_logical.min(len);
        let end = e.fe_logical.saturating_add(e.fe_length).min(len);
        let n = end - start;
        let f = e.flags();
        if f.contains(FiemapExtentFlags::SHARED)
            && !f.intersects(FiemapExtentFlags::DATA_INLINE | FiemapExtentFlags::NOT_ALIGNED)
        {
            shared += n;
        } else {
            other += n;
        }
    }
    Ok((shared, other))
}

/// Checks that the source can be cloned into the destination's directory
/// without touching the destination: clones into an unnamed `O_TMPFILE`
/// (freed on close).
pub(crate) fn clone_probe(job: &Job<'_>) -> io::Result<()> {
    let tmp = rustix::fs::openat(
        job.dst_dir,
        ".",
        OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    );
    match tmp {
        Ok(fd) => ficlone(fd.as_fd(), job.src.as_fd()),
        Err(e) => {
            // No O_TMPFILE here: use a named temporary.
            let _ = e;
            let (fd, tmp) = crate::replace::create_temp(job.dst_dir, job.dst_name)?;
            let r = ficlone(fd.as_fd(), job.src.as_fd());
            let _ = rustix::fs::unlinkat(job.dst_dir, &tmp.name, rustix::fs::AtFlags::empty());
            r
        }
    }
}

/// One `copy_file_range` call between explicit offsets.
pub(crate) fn copy_range(
    job: &Job<'_>,
    off_in: &mut u64,
    off_out: &mut u64,
    len: usize,
) -> io::Result<usize> {
    let len = crate::fault::clamp(Site::CopyFileRange, len);
    Ok(fault!(
        Site::CopyFileRange,
        rustix::fs::copy_file_range(
            job.src.as_fd(),
            Some(off_in),
            job.dst.as_fd(),
            Some(off_out),
            len,
        )
    )?)
}

/// `renameat2(RENAME_NOREPLACE)`.
pub(crate) fn rename_noreplace(
    dir: std::os::fd::BorrowedFd<'_>,
    from: &std::ffi::OsStr,
    to: &std::ffi::OsStr,
) -> io::Result<()> {
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

use std::os::unix::ffi::OsStrExt;

/// Names what a clone call really did from the bytes it shared.
fn classify(cloned: u64, copied: u64) -> Strategy {
    match (cloned > 0, copied > 0) {
        (true, true) => Strategy::Mixed,
        // btrfs inline data: the ioctl copied it.
        (false, true) => Strategy::KernelCopy,
        _ => Strategy::Cloned,
    }
}
