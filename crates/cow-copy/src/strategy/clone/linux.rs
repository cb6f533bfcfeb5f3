//! The Linux clone: `FICLONE` after truncating the destination, the
//! per-device "cannot clone" cache, and the FIEMAP read-back that decides
//! how many bytes were really shared.

use std::io;
use std::os::fd::AsFd;

use super::CloneError;
use crate::chain::{Job, Outcome};
use crate::fault::{Site, fault};
use crate::report::Strategy;
use crate::sys;

/// Clones the whole source into the (empty) destination with `FICLONE`, then
/// reads the destination's extents back to report only shared bytes as
/// cloned (btrfs copies small files inline instead of sharing them).
pub(super) fn clone(job: &mut Job<'_>) -> Result<Outcome, CloneError> {
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
    fault!(
        Site::IoctlClone,
        sys::ficlone(job.dst.as_fd(), job.src.as_fd())
    )
    .map_err(|e| {
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
    {
        use std::os::unix::fs::MetadataExt;
        job.dst_mode = Some(meta.mode() & 0o7777);
        job.dst_owner = Some((meta.uid(), meta.gid()));
    }
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
    for e in fault!(Site::Fiemap, sys::extents(job.dst.as_fd()))? {
        let start = e.start.min(len);
        let end = e.start.saturating_add(e.len).min(len);
        let n = end - start;
        // Inline data was copied into the metadata, never shared.
        if e.shared && !e.inline {
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
pub(super) fn clone_probe(job: &Job<'_>) -> io::Result<()> {
    match sys::open_tmpfile(job.dst_dir) {
        Ok(fd) => sys::ficlone(fd.as_fd(), job.src.as_fd()),
        Err(e) => {
            // No O_TMPFILE here: use a named temporary.
            let _ = e;
            let (fd, tmp) = crate::replace::create_temp(job.dst_dir, job.dst_name)?;
            let r = sys::ficlone(fd.as_fd(), job.src.as_fd());
            let _ = rustix::fs::unlinkat(job.dst_dir, &tmp.name, rustix::fs::AtFlags::empty());
            r
        }
    }
}

/// Names what a clone call really did from the bytes it shared.
fn classify(cloned: u64, copied: u64) -> Strategy {
    match (cloned > 0, copied > 0) {
        (true, true) => Strategy::Mixed,
        // btrfs inline data: the ioctl copied it.
        (false, true) => Strategy::KernelCopy,
        _ => Strategy::Cloned,
    }
}
