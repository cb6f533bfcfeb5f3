//! macOS: clone with `fclonefileat` into a temporary sibling and rename it
//! over the destination (the clone calls refuse an existing destination, and
//! only the path/dir-fd calls clone at all: `fcopyfile` never does). The data
//! fallback is `fcopyfile(COPYFILE_DATA | COPYFILE_DATA_SPARSE)`, reported as
//! [`Strategy::SystemCopy`], never as a clone.

use std::fs::{File, FileTimes};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use cow_sys::macos::{CloneFlags, CopyFileFlags, fclonefileat, fcopyfile};
use rustix::fs::{Mode, OFlags};

use crate::chain::{Job, Outcome};
use crate::report::Strategy;
use crate::strategy::clone::CloneError;

/// Flags to open a directory used as an `*at` anchor.
pub(crate) const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::CLOEXEC);

/// Flags to look at an existing entry without waiting on a FIFO.
pub(crate) const PROBE_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::NONBLOCK)
    .union(OFlags::NOCTTY)
    .union(OFlags::CLOEXEC);

/// The kernel-copy slot is `fcopyfile` (see [`copy_range`]).
pub(crate) const HAS_COPY_RANGE: bool = true;

/// Clones the source into a temporary sibling of the destination entry and
/// renames it over the entry; then puts back the metadata the options did
/// not ask for (a clone carries mode, times and xattrs along).
pub(crate) fn clone(job: &mut Job<'_>) -> Result<Outcome, CloneError> {
    let before = job
        .dst
        .metadata()
        .map_err(|e| CloneError::Failed(crate::CopyError::io("stat", job.dst_path, e)))?;
    let tmp = crate::replace::temp_name(job.dst_name);
    fclonefileat(
        job.src.as_fd(),
        job.dst_dir,
        Path::new(&tmp),
        CloneFlags::NOOWNERCOPY,
    )
    .map_err(|e| CloneError::from_io(job, "clone into", e))?;
    let fail = |job: &Job<'_>, op: &'static str, e: io::Error| {
        crate::replace::remove(job.dst_dir, &tmp);
        CloneError::Failed(crate::CopyError::io(op, job.dst_path, e))
    };
    let fd = rustix::fs::openat(
        job.dst_dir,
        &tmp,
        OFlags::RDWR | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )
    .map_err(|e| fail(job, "open the clone of", e.into()))?;
    let file = File::from(fd);
    normalize(job, &file, &before).map_err(|e| fail(job, "reset metadata of", e))?;
    rustix::fs::renameat(job.dst_dir, &tmp, job.dst_dir, job.dst_name)
        .map_err(|e| fail(job, "rename a clone over", e.into()))?;
    job.dst = file;
    job.dst_has_content = false;
    let len = job
        .dst
        .metadata()
        .map_err(|e| CloneError::Failed(crate::CopyError::io("stat", job.dst_path, e)))?
        .len();
    let data: u64 = match crate::strategy::data_segments(&job.dst, len) {
        Ok(Some(segs)) => segs.iter().map(|s| s.end - s.start).sum(),
        _ => len,
    };
    Ok(Outcome {
        strategy: Strategy::Cloned,
        bytes_cloned: data,
        bytes_copied: 0,
        hole_bytes: len - data,
        len,
        size_changed: len != job.len,
    })
}

/// A clone copies mode, times and xattrs: give the file the destination's
/// previous mode and fresh times, and drop the xattrs; the engine then
/// applies what the options ask for.
fn normalize(job: &Job<'_>, file: &File, before: &std::fs::Metadata) -> io::Result<()> {
    file.set_permissions(std::fs::Permissions::from_mode(before.mode() & 0o7777))?;
    let now = std::time::SystemTime::now();
    file.set_times(FileTimes::new().set_accessed(now).set_modified(now))?;
    if !job.opts.preserve.xattrs {
        let mut buf = vec![0u8; rustix::fs::flistxattr_query(file)?];
        let n = rustix::fs::flistxattr(file, &mut buf[..])?;
        for name in buf[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
            let name = std::ffi::OsStr::from_bytes(name);
            rustix::fs::fremovexattr(file, name)?;
        }
    }
    Ok(())
}

use std::os::unix::ffi::OsStrExt;

/// The clone goes to a temporary: an existing destination is never touched
/// when it fails, so there is nothing to check first.
pub(crate) fn clone_probe(_job: &Job<'_>) -> io::Result<()> {
    Ok(())
}

/// The kernel copy on macOS: one `fcopyfile(COPYFILE_DATA |
/// COPYFILE_DATA_SPARSE)` for the whole file (it never clones). Returns the
/// whole length on the first call and 0 after.
pub(crate) fn copy_range(
    job: &Job<'_>,
    off_in: &mut u64,
    off_out: &mut u64,
    _len: usize,
) -> io::Result<usize> {
    if *off_in >= job.len {
        return Ok(0);
    }
    // fcopyfile works from the descriptors' current offsets, which the
    // SEEK_DATA/SEEK_HOLE walk moved: start both at 0.
    rustix::fs::seek(job.src.as_fd(), rustix::fs::SeekFrom::Start(0))?;
    rustix::fs::seek(job.dst.as_fd(), rustix::fs::SeekFrom::Start(0))?;
    fcopyfile(
        job.src.as_fd(),
        job.dst.as_fd(),
        None,
        CopyFileFlags::DATA | CopyFileFlags::DATA_SPARSE,
    )?;
    let n = job.len - *off_in;
    *off_in += n;
    *off_out += n;
    Ok(n as usize)
}

/// `renamex_np(RENAME_EXCL)`.
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
        rustix::fs::RenameFlags::NOREPLACE,
    )?)
}

/// Copies extended attributes (ACLs are not xattrs on macOS and are not
/// copied); refusals are listed in `skipped`.
pub(crate) fn copy_xattrs(src: &File, dst: &File, skipped: &mut Vec<String>) {
    let r = (|| -> io::Result<()> {
        let mut buf = vec![0u8; rustix::fs::flistxattr_query(src)?];
        let n = rustix::fs::flistxattr(src, &mut buf[..])?;
        for name in buf[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
            let name = std::ffi::OsStr::from_bytes(name);
            let r = (|| -> io::Result<()> {
                let mut value = vec![0u8; rustix::fs::fgetxattr_query(src, name)?];
                let got = rustix::fs::fgetxattr(src, name, &mut value[..])?;
                value.truncate(got);
                rustix::fs::fsetxattr(dst, name, &value, rustix::fs::XattrFlags::empty())?;
                Ok(())
            })();
            if let Err(e) = r {
                skipped.push(format!("xattr {}: {e}", name.to_string_lossy()));
            }
        }
        Ok(())
    })();
    if let Err(e) = r {
        skipped.push(format!("xattrs: {e}"));
    }
}
