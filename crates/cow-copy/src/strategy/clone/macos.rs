//! The macOS clone: `fclonefileat` into a temporary sibling and rename it
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
use std::path::Path;

use rustix::fs::{AtFlags, Mode, OFlags};

use super::CloneError;
use crate::CopyError;
use crate::chain::{Job, Outcome};
use crate::report::Strategy;
use crate::sys::{self, CloneFlags, FileFlags, fclonefileat};
use crate::xattr;

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
pub(super) fn clone(job: &mut Job<'_>) -> Result<Outcome, CloneError> {
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
    if src_flags.difference(KEPT_FLAGS) != FileFlags::empty() && !sys::has_chflagsat() {
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
    let resolved = crate::guard::resolve_links(job.dst_dir, job.dst_name, job.dst_path)
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
    match sys::has_extended_acl(job.dst.as_fd()) {
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
        sys::chflagsat(dir, Path::new(tmp), flags.intersection(KEPT_FLAGS))
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
        xattr::strip(&file).map_err(|e| fail("remove the source's xattrs from the clone of", e))?;
    }
    if job.in_place {
        // The file keeps what an in-place write would have kept.
        xattr::carry(&job.dst, &file).map_err(|e| {
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

/// The clone goes to a temporary: an existing destination is never touched
/// when it fails, so there is nothing to check first.
pub(super) fn clone_probe(_job: &Job<'_>) -> io::Result<()> {
    Ok(())
}
