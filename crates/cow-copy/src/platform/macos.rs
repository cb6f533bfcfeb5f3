//! macOS: clone with `fclonefileat` into a temporary sibling and rename it
//! over the destination (the clone calls refuse an existing destination, and
//! only the path/dir-fd calls clone at all: `fcopyfile` never does). The data
//! fallback is one `fcopyfile(COPYFILE_DATA)` for a source that is one run
//! of data, counted as a kernel copy, never as a clone.
//!
//! What the kernel gives a clone (xnu `clonefile_internal`, see
//! docs/macos.md) and what this module does about it:
//! - the source's mode and BSD flags: the flags are cleared through the
//!   directory first (`setattrlistat`, no open needed), then the mode is
//!   set to 0600 so the clone can be opened read-write, whatever the
//!   source's mode was (read-only stores, `uchg` files);
//! - the caller as owner with `CLONE_NOOWNERCOPY`, the group a new file
//!   gets in that directory, and the directory's inherited ACL;
//! - a new inode: an existing destination written in place (not atomic) is
//!   only replaced by a clone when nobody can tell, that is when it has one
//!   link, no flags, no ACL and belongs to the caller (its group and xattrs
//!   are carried over); otherwise the clone is declined and the bytes are
//!   written into the existing inode, as on Linux.

use std::ffi::{OsStr, OsString};
use std::fs::{File, FileTimes};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use cow_sys::macos::{CloneFlags, CopyFileFlags, FileFlags, fclonefileat, fcopyfile};
use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;

use crate::CopyError;
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

/// Gatekeeper's attribute: kept on every copy, like Finder and `cp` (whose
/// `fcopyfile` applies it whatever the flags), even when xattrs are not
/// preserved.
const QUARANTINE: &str = "com.apple.quarantine";

/// Flags a clone keeps: how the bytes are stored, not a property of the
/// file. Every other flag of the source is cleared on the clone.
const KEPT_FLAGS: FileFlags = FileFlags::UF_COMPRESSED;

/// Source flags only the super-user can clear: a clone made by anyone else
/// would keep them (and an immutable temporary could not even be removed).
const ROOT_ONLY_FLAGS: FileFlags = FileFlags::SF_IMMUTABLE
    .union(FileFlags::SF_APPEND)
    .union(FileFlags::SF_NOUNLINK);

/// The directory and name the clone is renamed over.
struct Target {
    dir: Option<OwnedFd>,
    name: OsString,
}

/// Clones the source into a temporary sibling of the file being written and
/// renames it over that file's entry (the final target when the entry is a
/// followed symlink); then puts back the metadata the options did not ask
/// for (a clone carries mode, flags, times and xattrs along).
pub(crate) fn clone(job: &mut Job<'_>) -> Result<Outcome, CloneError> {
    let io_fail =
        |op: &'static str, e: io::Error| CloneError::Failed(CopyError::io(op, job.dst_path, e));
    let before = rustix::fs::fstat(&job.dst).map_err(|e| io_fail("stat", e.into()))?;
    let src = rustix::fs::fstat(job.src).map_err(|e| io_fail("stat source of", e.into()))?;
    let src_flags = FileFlags::from_bits_retain(src.st_flags);
    if src_flags.intersects(ROOT_ONLY_FLAGS) && !rustix::process::geteuid().is_root() {
        return Err(declined(
            "the source has system flags (schg, sappnd, sunlnk) that a clone would keep and only root can clear",
        ));
    }
    if src_flags.difference(KEPT_FLAGS) != FileFlags::empty() && !cow_sys::macos::has_chflagsat() {
        return Err(declined(
            "the source has BSD flags and this macOS cannot clear them on a clone (setattrlistat)",
        ));
    }
    let target = target(job, &before)?;
    let dir = target.dir.as_ref().map_or(job.dst_dir, |d| d.as_fd());
    if job.in_place {
        invisible_swap(job, &before)?;
    }
    let (_, temp) = crate::replace::create_temp_with(dir, &target.name, |tmp| {
        fclonefileat(
            job.src.as_fd(),
            dir,
            Path::new(tmp),
            CloneFlags::NOFOLLOW | CloneFlags::NOOWNERCOPY,
        )
    })
    .map_err(|e| CloneError::from_io(job, "clone into", e))?;
    let tmp = temp.name.as_os_str();
    let file = match prepare(job, dir, tmp, &before) {
        Ok(file) => file,
        Err(e) => {
            crate::replace::remove(dir, tmp);
            return Err(e);
        }
    };
    rustix::fs::renameat(dir, tmp, dir, &target.name).map_err(|e| {
        crate::replace::remove(dir, tmp);
        io_fail("rename a clone over", e.into())
    })?;
    drop(temp);
    job.dst = file;
    job.dst_has_content = false;
    job.dst_mode = Some(u32::from(before.st_mode) & 0o7777);
    let len = job.dst.metadata().map_err(|e| io_fail("stat", e))?.len();
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

/// A refusal made before anything was written: the chain goes on with a
/// copy into the file itself (or `reflink = always` fails, saying why).
fn declined(why: &str) -> CloneError {
    CloneError::Refused(io::Error::new(io::ErrorKind::Unsupported, why.to_owned()))
}

#[allow(clippy::unnecessary_cast)] // st_dev/st_ino types differ by platform
fn same_inode(a: &rustix::fs::Stat, b: &rustix::fs::Stat) -> bool {
    a.st_dev as u64 == b.st_dev as u64 && a.st_ino as u64 == b.st_ino as u64
}

/// The entry holding the file being written: `job.dst_name`, or the final
/// target of the symlink it is (a destination symlink is written through,
/// like `std::fs::copy`, never replaced). Checked by (dev, ino) against the
/// open file.
fn target(job: &Job<'_>, file: &rustix::fs::Stat) -> Result<Target, CloneError> {
    let here = |dir: BorrowedFd<'_>, name: &OsStr| {
        rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
            .is_ok_and(|st| same_inode(&st, file))
    };
    if here(job.dst_dir, job.dst_name) {
        return Ok(Target {
            dir: None,
            name: job.dst_name.to_os_string(),
        });
    }
    let moved = || declined("the destination entry is not the file being written (it changed)");
    let resolved = crate::engine::resolve_links(job.dst_dir, job.dst_name, job.dst_path)
        .map_err(CloneError::Failed)?;
    match resolved {
        Some((dir, name)) if here(dir.as_fd(), &name) => Ok(Target {
            dir: Some(dir),
            name,
        }),
        _ => Err(moved()),
    }
}

/// An existing destination written in place keeps its identity: a clone
/// renamed over it is a new inode, so it is used only when the swap cannot
/// be seen (one link, no flags, no ACL, owned by the caller).
fn invisible_swap(job: &Job<'_>, old: &rustix::fs::Stat) -> Result<(), CloneError> {
    if old.st_nlink != 1 {
        return Err(declined(
            "the destination has other hard links; a clone would replace its inode (atomic replaces by a clone)",
        ));
    }
    if FileFlags::from_bits_retain(old.st_flags).difference(KEPT_FLAGS) != FileFlags::empty() {
        return Err(declined(
            "the destination has BSD flags; a clone would replace its inode and drop them",
        ));
    }
    if old.st_uid != rustix::process::geteuid().as_raw() {
        return Err(declined(
            "the destination belongs to another user; a clone would belong to this one",
        ));
    }
    match cow_sys::macos::has_extended_acl(job.dst.as_fd()) {
        Ok(false) => Ok(()),
        Ok(true) => Err(declined(
            "the destination has an ACL; a clone would replace its inode and drop it",
        )),
        Err(e) => Err(CloneError::Refused(e)),
    }
}

/// Makes the fresh clone `tmp` the file the options ask for, through the
/// directory first (it may be read-only or immutable like its source):
/// flags cleared, mode 0600, opened read-write and checked to be the clone,
/// xattrs dropped (Gatekeeper's kept) unless preserved, an in-place
/// destination's group and xattrs carried over, fresh times, and the mode
/// of the file it replaces. The engine then applies what the options ask.
fn prepare(
    job: &Job<'_>,
    dir: BorrowedFd<'_>,
    tmp: &OsStr,
    before: &rustix::fs::Stat,
) -> Result<File, CloneError> {
    let fail =
        |op: &'static str, e: io::Error| CloneError::Failed(CopyError::io(op, job.dst_path, e));
    let st = rustix::fs::statat(dir, tmp, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| fail("stat the clone of", e.into()))?;
    let flags = FileFlags::from_bits_retain(st.st_flags);
    if flags.difference(KEPT_FLAGS) != FileFlags::empty() {
        cow_sys::macos::chflagsat(dir, Path::new(tmp), flags.intersection(KEPT_FLAGS))
            .map_err(|e| fail("clear the flags of the clone of", e))?;
    }
    rustix::fs::chmodat(
        dir,
        tmp,
        Mode::from_raw_mode(0o600),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| fail("set the mode of the clone of", e.into()))?;
    let fd = rustix::fs::openat(
        dir,
        tmp,
        OFlags::RDWR | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NONBLOCK,
        Mode::empty(),
    )
    .map_err(|e| fail("open the clone of", e.into()))?;
    let file = File::from(fd);
    let opened = rustix::fs::fstat(&file).map_err(|e| fail("stat the clone of", e.into()))?;
    if !same_inode(&opened, &st) {
        return Err(fail(
            "open the clone of",
            io::Error::other("the temporary clone was replaced while it was prepared"),
        ));
    }
    if !job.opts.preserve.xattrs {
        strip_xattrs(&file).map_err(|e| fail("remove the source's xattrs from the clone of", e))?;
    }
    if job.in_place {
        // The file keeps what an in-place write would have kept.
        carry_xattrs(&job.dst, &file).map_err(|e| {
            declined(&format!(
                "the destination's xattrs could not be carried over: {e}"
            ))
        })?;
        if opened.st_gid != before.st_gid {
            std::os::unix::fs::fchown(&file, None, Some(before.st_gid)).map_err(|e| {
                declined(&format!("the destination's group could not be kept: {e}"))
            })?;
        }
    }
    let now = std::time::SystemTime::now();
    file.set_times(FileTimes::new().set_accessed(now).set_modified(now))
        .map_err(|e| fail("set times of", e))?;
    rustix::fs::fchmod(&file, Mode::from_raw_mode(before.st_mode & 0o7777))
        .map_err(|e| fail("set permissions of", e.into()))?;
    Ok(file)
}

/// The names of `file`'s extended attributes.
fn xattr_names(file: &File) -> io::Result<Vec<OsString>> {
    let mut buf = vec![0u8; rustix::fs::flistxattr_query(file)?];
    let n = rustix::fs::flistxattr(file, &mut buf[..])?;
    Ok(buf[..n]
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty())
        .map(|n| OsStr::from_bytes(n).to_os_string())
        .collect())
}

/// The value of one extended attribute.
fn xattr_value(file: &File, name: &OsStr) -> io::Result<Vec<u8>> {
    let mut value = vec![0u8; rustix::fs::fgetxattr_query(file, name)?];
    let got = rustix::fs::fgetxattr(file, name, &mut value[..])?;
    value.truncate(got);
    Ok(value)
}

/// Removes every extended attribute but Gatekeeper's. One the system
/// protects (`EPERM`, such as `com.apple.provenance`) stays, as it would on
/// any copy this process writes.
fn strip_xattrs(file: &File) -> io::Result<()> {
    for name in xattr_names(file)? {
        if name != QUARANTINE {
            match rustix::fs::fremovexattr(file, &name) {
                Ok(()) | Err(Errno::PERM) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

/// Sets every extended attribute of `from` on `to` that `to` does not
/// already have with the same value.
fn carry_xattrs(from: &File, to: &File) -> io::Result<()> {
    for name in xattr_names(from)? {
        let value = xattr_value(from, &name)?;
        if xattr_value(to, &name).ok().as_ref() != Some(&value) {
            rustix::fs::fsetxattr(to, &name, &value, rustix::fs::XattrFlags::empty())?;
        }
    }
    Ok(())
}

/// The clone goes to a temporary: an existing destination is never touched
/// when it fails, so there is nothing to check first.
pub(crate) fn clone_probe(_job: &Job<'_>) -> io::Result<()> {
    Ok(())
}

/// The kernel copy on macOS: one `fcopyfile(COPYFILE_DATA)` for a source
/// that is one run of data, from offset 0 to its end.
///
/// `fcopyfile` copies from the descriptors' offsets to the end of the
/// file, so it cannot copy one segment: a sparse source is refused on the
/// first call (`ENOTSUP`, nothing written), and the user-space copy keeps
/// its holes segment by segment. The count is what the destination holds
/// afterwards (it was empty: a dense source's destination is truncated
/// first). A later call is past the data (0) or, if the source is longer
/// than what was copied, refused.
pub(crate) fn copy_range(
    job: &Job<'_>,
    off_in: &mut u64,
    off_out: &mut u64,
    _len: usize,
) -> io::Result<usize> {
    if *off_in >= job.len {
        return Ok(0);
    }
    if *off_in != 0 || *off_out != 0 {
        // A sparse source whose data starts later, or a second call after
        // a copy that ended early because the source shrank.
        let now = job.src.metadata()?.len();
        return if *off_in >= now {
            Ok(0)
        } else {
            Err(Errno::NOTSUP.into())
        };
    }
    match crate::strategy::data_segments(job.src, job.len)? {
        Some(segs) if segs.len() != 1 || segs[0].start != 0 => return Err(Errno::NOTSUP.into()),
        _ => {}
    }
    // fcopyfile works from the descriptors' current offsets, which the
    // SEEK_DATA/SEEK_HOLE walk moved: start both at 0.
    rustix::fs::seek(job.src.as_fd(), rustix::fs::SeekFrom::Start(0))?;
    rustix::fs::seek(job.dst.as_fd(), rustix::fs::SeekFrom::Start(0))?;
    fcopyfile(job.src.as_fd(), job.dst.as_fd(), None, CopyFileFlags::DATA)?;
    let n = job.dst.metadata()?.len();
    *off_in += n;
    *off_out += n;
    usize::try_from(n).map_err(|_| io::Error::other("copied more than usize::MAX bytes"))
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

/// The xattr part of the metadata: every extended attribute of `src` with
/// `all` (ACLs are not xattrs on macOS and are not copied), else only
/// Gatekeeper's `com.apple.quarantine`, which travels with every copy as
/// with Finder and `fcopyfile`. Values `dst` already has are left alone (a
/// clone brought them). Writing an xattr needs the owner's write bit, even
/// on an open descriptor, so a read-only `dst` gets it while they are
/// written. Refusals are listed in `skipped`.
pub(crate) fn apply_xattrs(src: &File, dst: &File, all: bool, skipped: &mut Vec<String>) {
    let names = if all {
        match xattr_names(src) {
            Ok(n) => n,
            Err(e) => {
                skipped.push(format!("xattrs: {e}"));
                return;
            }
        }
    } else {
        vec![OsString::from(QUARANTINE)]
    };
    let mut wanted = Vec::new();
    for name in names {
        match xattr_value(src, &name) {
            Ok(v) if xattr_value(dst, &name).ok().as_ref() != Some(&v) => wanted.push((name, v)),
            Ok(_) => {}
            Err(e) if Errno::from_io_error(&e) == Some(Errno::NOATTR) => {}
            Err(e) => skipped.push(format!("xattr {}: {e}", name.to_string_lossy())),
        }
    }
    if wanted.is_empty() {
        return;
    }
    let mode = rustix::fs::fstat(dst).map(|st| st.st_mode & 0o7777).ok();
    let lifted = mode.filter(|m| m & 0o200 == 0);
    if let Some(m) = lifted {
        let _ = rustix::fs::fchmod(dst, Mode::from_raw_mode(m | 0o200));
    }
    for (name, value) in wanted {
        if let Err(e) = rustix::fs::fsetxattr(dst, &name, &value, rustix::fs::XattrFlags::empty()) {
            skipped.push(format!("xattr {}: {e}", name.to_string_lossy()));
        }
    }
    if let Some(m) = lifted {
        if let Err(e) = rustix::fs::fchmod(dst, Mode::from_raw_mode(m)) {
            skipped.push(format!("mode after the xattrs: {e}"));
        }
    }
}
