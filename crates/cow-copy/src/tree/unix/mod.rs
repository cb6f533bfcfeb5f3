//! The Unix walker: every entry is reached through its parent's descriptor.
//!
//! Sources are opened with `O_NOFOLLOW` (unless the dereference policy says
//! otherwise) and destinations are created with `mkdirat`, `symlinkat`,
//! `mknodat` and `linkat` relative to a destination directory descriptor that
//! was itself opened with `O_NOFOLLOW`. Nothing below the root is resolved as
//! a path, so renaming or swapping directories during the copy cannot move
//! writes outside the destination.

use std::collections::HashMap;
use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use rayon::prelude::*;
use rustix::fs::{self as rfs, AtFlags, CWD, Dir, FileType, Mode, OFlags, Stat, Timestamps};
use rustix::io::Errno;

use super::{
    Count, Dereference, EntryAction, EntryKind, Shared, TreeError, TreeOptions, TreeReport,
};
use crate::{CopyOptions, Overwrite, Preserve, RemoveDestination};

/// (device, inode).
type Id = (u64, u64);

/// Mode bits that `chmod` sets (permissions, setuid, setgid, sticky).
const MODE_BITS: u32 = 0o7777;
/// Permission bits.
const PERM_BITS: u32 = 0o777;
/// setuid and setgid.
const SUID_SGID: u32 = 0o6000;
/// Owner read, write, search: what the walk needs on a directory it fills.
const OWNER_RWX: u32 = 0o700;

#[allow(clippy::unnecessary_cast)]
fn id_of(st: &Stat) -> Id {
    (st.st_dev as u64, st.st_ino as u64)
}

#[allow(clippy::unnecessary_cast)]
fn mode_of(st: &Stat) -> u32 {
    st.st_mode as u32
}

#[allow(clippy::unnecessary_cast)]
fn size_of(st: &Stat) -> u64 {
    st.st_size.max(0) as u64
}

#[allow(clippy::unnecessary_cast)]
fn nlink_of(st: &Stat) -> u64 {
    st.st_nlink as u64
}

#[allow(clippy::unnecessary_cast)]
fn times_of(st: &Stat) -> Timestamps {
    Timestamps {
        last_access: rustix::fs::Timespec {
            tv_sec: st.st_atime as i64,
            tv_nsec: st.st_atime_nsec as _,
        },
        last_modification: rustix::fs::Timespec {
            tv_sec: st.st_mtime as i64,
            tv_nsec: st.st_mtime_nsec as _,
        },
    }
}

fn owner_of(st: &Stat) -> (rustix::fs::Uid, rustix::fs::Gid) {
    (
        rustix::fs::Uid::from_raw(st.st_uid),
        rustix::fs::Gid::from_raw(st.st_gid),
    )
}

/// A `Mode` from permission bits (`mode_t` is 16 bits on some Unixes).
#[allow(clippy::unnecessary_cast)]
fn mk_mode(bits: u32) -> Mode {
    Mode::from_raw_mode((bits & MODE_BITS) as rustix::fs::RawMode)
}

fn kind_of(st: &Stat) -> FileType {
    FileType::from_raw_mode(st.st_mode)
}

fn errno(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e.raw_os_error())
}

fn os_name(c: &CStr) -> &Path {
    Path::new(OsStr::from_bytes(c.to_bytes()))
}

/// Flags to open a directory only to stat it or to use it as an `*at` base.
fn dir_base_flags() -> OFlags {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC
    }
}

/// Flags to open a directory to read or to change its metadata.
fn dir_flags(follow: bool) -> OFlags {
    let f = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    if follow { f } else { f | OFlags::NOFOLLOW }
}

/// Where the copy goes.
enum Dest {
    /// `name` inside the directory `parent` (the usual case).
    Named { parent: OwnedFd, name: CString },
    /// An existing directory, named with a trailing `/` or `.`.
    Dir(OwnedFd),
}

fn setup_err(op: &'static str, path: &Path, e: Errno) -> TreeError {
    TreeError::Io {
        op,
        path: path.to_path_buf(),
        source: errno(e),
    }
}

/// The error for a non-directory that would replace a directory.
fn over_directory() -> io::Error {
    io::Error::new(
        io::ErrorKind::IsADirectory,
        "cannot overwrite directory with non-directory",
    )
}

fn cstring(p: &Path) -> Result<CString, TreeError> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| TreeError::Io {
        op: "use path",
        path: p.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"),
    })
}

/// Whether the path ends in a way that names a directory itself: a trailing
/// slash, `.` or `..`.
fn names_dir_itself(p: &Path) -> bool {
    let b = p.as_os_str().as_bytes();
    b.ends_with(b"/") || b == b"." || b == b".." || b.ends_with(b"/.") || b.ends_with(b"/..")
}

fn resolve_dest(dst: &Path) -> Result<Dest, TreeError> {
    if names_dir_itself(dst) {
        match rfs::statat(CWD, dst, AtFlags::empty()) {
            Ok(st) if kind_of(&st) == FileType::Directory => {
                let fd = rfs::openat(CWD, dst, dir_flags(true), Mode::empty())
                    .map_err(|e| setup_err("open destination directory", dst, e))?;
                return Ok(Dest::Dir(fd));
            }
            Ok(_) => {
                return Err(setup_err("use destination", dst, Errno::NOTDIR));
            }
            Err(Errno::NOENT) if dst.file_name().is_some() => {}
            Err(e) => return Err(setup_err("stat destination", dst, e)),
        }
    }
    let name = dst
        .file_name()
        .ok_or_else(|| setup_err("use destination", dst, Errno::INVAL))?;
    let parent = match dst.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let parent_fd = rfs::openat(CWD, parent, dir_flags(true), Mode::empty())
        .map_err(|e| setup_err("open destination directory", parent, e))?;
    Ok(Dest::Named {
        parent: parent_fd,
        name: cstring(Path::new(name))?,
    })
}

/// Refuses a destination whose directory `start` is the source directory or
/// lies inside it: walks `..` from `start` up to the root comparing (device,
/// inode) with the source's.
fn check_not_inside(
    src_id: Id,
    start: BorrowedFd<'_>,
    src: &Path,
    dst: &Path,
) -> Result<(), TreeError> {
    let into_itself = || TreeError::IntoItself {
        src: src.to_path_buf(),
        dst: dst.to_path_buf(),
    };
    let mut cur = match rfs::openat(start, c".", dir_base_flags(), Mode::empty()) {
        Ok(fd) => fd,
        Err(e) => return Err(setup_err("open destination directory", dst, e)),
    };
    let mut st = rfs::fstat(&cur).map_err(|e| setup_err("stat destination directory", dst, e))?;
    // A path deeper than this is not a real filesystem; stop rather than loop.
    for _ in 0..4096 {
        if id_of(&st) == src_id {
            return Err(into_itself());
        }
        let up = match rfs::openat(&cur, c"..", dir_base_flags(), Mode::empty()) {
            Ok(fd) => fd,
            // An ancestor we may not search cannot be the source we could read.
            Err(Errno::ACCESS) => return Ok(()),
            Err(e) => return Err(setup_err("open parent of destination", dst, e)),
        };
        let ust = rfs::fstat(&up).map_err(|e| setup_err("stat parent of destination", dst, e))?;
        if id_of(&ust) == id_of(&st) {
            return Ok(());
        }
        cur = up;
        st = ust;
    }
    Ok(())
}

pub(super) fn copy_tree(
    src: &Path,
    dst: &Path,
    opts: &TreeOptions,
) -> Result<TreeReport, TreeError> {
    let follow_root = opts.dereference != Dereference::Never;
    let st = rfs::statat(
        CWD,
        src,
        if follow_root {
            AtFlags::empty()
        } else {
            AtFlags::SYMLINK_NOFOLLOW
        },
    )
    .map_err(|e| setup_err("stat", src, e))?;
    let dest = resolve_dest(dst)?;
    let is_dir = kind_of(&st) == FileType::Directory;

    if !is_dir {
        let (parent, name) = match &dest {
            Dest::Named { parent, name } => (parent, name),
            Dest::Dir(_) => {
                return Err(setup_err("copy to", dst, Errno::ISDIR));
            }
        };
        let src_c = cstring(src)?;
        let shared = Shared::new(opts, src, dst);
        let walker = Walker::new(shared, opts, None, false);
        walker.shared.counters.discovered(
            u64::from(kind_of(&st) == FileType::RegularFile),
            size_of(&st),
        );
        walker.entry(
            CWD,
            &src_c,
            kind_of(&st),
            Some(&st),
            parent.as_fd(),
            name,
            Path::new(""),
            follow_root,
            DirHint::default(),
        );
        return Ok(walker.finish());
    }

    let src_fd = rfs::openat(CWD, src, dir_flags(follow_root), Mode::empty())
        .map_err(|e| setup_err("open directory", src, e))?;
    let src_st = rfs::fstat(&src_fd).map_err(|e| setup_err("stat", src, e))?;
    let src_id = id_of(&src_st);

    // Refuse a destination inside the source, and the source itself.
    let dst_dir = match &dest {
        Dest::Dir(fd) => {
            let st = rfs::fstat(fd).map_err(|e| setup_err("stat", dst, e))?;
            if id_of(&st) == src_id {
                return Err(TreeError::SameFile {
                    src: src.to_path_buf(),
                    dst: dst.to_path_buf(),
                });
            }
            check_not_inside(src_id, fd.as_fd(), src, dst)?;
            None
        }
        Dest::Named { parent, name } => {
            if let Ok(st) = rfs::statat(parent, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW) {
                if id_of(&st) == src_id {
                    return Err(TreeError::SameFile {
                        src: src.to_path_buf(),
                        dst: dst.to_path_buf(),
                    });
                }
            }
            check_not_inside(src_id, parent.as_fd(), src, dst)?;
            Some((parent, name))
        }
    };

    let shared = Shared::new(opts, src, dst);
    let root = match dst_dir {
        None => match &dest {
            Dest::Dir(fd) => DstDir {
                fd: rfs::openat(fd, c".", dir_flags(false), Mode::empty())
                    .map_err(|e| setup_err("open destination directory", dst, e))?,
                created: false,
                restore: None,
                dev: None,
            },
            Dest::Named { .. } => unreachable!("named destinations have a parent"),
        },
        Some((parent, name)) => match make_dir(parent.as_fd(), name, &src_st) {
            Ok(d) => d,
            Err(MakeDirError::NotADirectory) => {
                return Err(TreeError::NotADirectory {
                    src: src.to_path_buf(),
                    dst: dst.to_path_buf(),
                });
            }
            Err(MakeDirError::Io(op, e)) => return Err(setup_err(op, dst, e)),
        },
    };

    let walker = Walker::new(shared, opts, Some(root.fd.as_fd()), true);
    let workers = walker.workers;
    super::with_pool(workers, |parallel| {
        let walker = Walker { parallel, ..walker };
        walker.shared.totals.bump(Count::Dirs);
        walker.shared.record(
            Path::new(""),
            EntryKind::Dir,
            if root.created {
                EntryAction::Created
            } else {
                EntryAction::Merged
            },
            None,
        );
        let node = Arc::new(Ancestors {
            id: src_id,
            parent: None,
        });
        let hint = DirHint {
            new: root.created,
            dev: root.dev,
        };
        let (src, dst) = (src_fd.as_fd(), root.fd.as_fd());
        let dirs = walker.copy_contents(src, dst, hint, Path::new(""), &node, 0);
        for c in &dirs {
            if walker.shared.stopped() {
                break;
            }
            walker.subtree(src, dst, c, PathBuf::from(os_name(&c.name)), &node, 1);
        }
        walker.flush();
        walker.finish_dir(src, &src_st, dst, root.restore, Path::new(""));
        Ok(walker.finish())
    })
}

mod created;
mod files;
mod nodes;
mod stack;
mod walk;
mod xattr;

use created::Created;
#[cfg(any(target_os = "linux", target_os = "android"))]
use created::Staging;
use files::LinkState;
use stack::PAR_DEPTH;
use walk::{Ancestors, Child, DirHint, DstDir, MakeDirError, make_dir};

struct Walker<'a> {
    shared: Shared<'a>,
    file_opts: CopyOptions,
    file_opts_follow: CopyOptions,
    preserve: Preserve,
    no_clobber: bool,
    follow_all: bool,
    parallel: bool,
    /// The destination root directory (for hard links); `None` when the
    /// root is not a directory.
    dst_root: Option<BorrowedFd<'a>>,
    links: Mutex<HashMap<Id, LinkState>>,
    link_done: Condvar,
    /// Worker threads.
    workers: usize,
    /// Directory descriptors held by the walk right now.
    open_dirs: AtomicUsize,
    /// Above this many, subdirectories are walked one at a time (see
    /// [`Walker::copy_contents`]).
    dir_budget: usize,
    /// How many levels of one worker's stack keep their descriptors open
    /// (see [`Walker::subtree`]).
    keep_levels: usize,
    /// Whether symlink xattrs can be reached here (checked at the first
    /// symlink that needs it; see [`xattr::links_supported`]).
    link_xattrs: OnceLock<Result<(), String>>,
    /// Atomic copies waiting for one `syncfs` and their renames.
    batch: Option<crate::durable::Batch>,
}

/// The options each file is copied with: with hard links preserved, a
/// destination file that has other links is removed first instead of
/// written through (like GNU `cp -a`), so a link planted in the destination
/// tree never carries the copy (and its new owner) to another file.
fn file_options(opts: &TreeOptions) -> CopyOptions {
    let copy = crate::cancel::file_options(opts);
    if opts.preserve_hard_links && copy.remove_destination_policy() == RemoveDestination::Never {
        copy.remove_destination(RemoveDestination::IfLinked)
    } else {
        copy
    }
}

/// How many directory descriptors the parallel walk may hold: the open-file
/// limit minus what the process and each worker need besides (a listing
/// and the source, destination and temporary file of a copy), at least 4.
fn dir_budget(workers: usize) -> usize {
    open_file_limit().saturating_sub(16 + 4 * workers).max(4)
}

/// How many levels of a stack keep their two descriptors: each worker's
/// share of the budget, between 2 and 64 (deeper levels are reopened when
/// the walk climbs back to them).
fn keep_levels(workers: usize) -> usize {
    (dir_budget(workers) / (2 * workers.max(1))).clamp(2, 64)
}

/// The soft limit on open files.
fn open_file_limit() -> usize {
    let lim = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    lim.current
        .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX))
}

/// The workers asked for, fewer when the open-file limit could not feed
/// them (each needs a few descriptors, and the walk needs some per level).
fn workers_for(opts: &TreeOptions) -> usize {
    let fit = open_file_limit().saturating_sub(32) / 8;
    // APFS serializes clones volume-wide: more workers only queue.
    #[cfg(target_os = "macos")]
    let fit = fit.min(super::macos::MAX_WORKERS);
    opts.worker_count().min(fit).max(1)
}

impl<'a> Walker<'a> {
    fn new(
        shared: Shared<'a>,
        opts: &'a TreeOptions,
        dst_root: Option<BorrowedFd<'a>>,
        parallel: bool,
    ) -> Self {
        Walker {
            shared,
            file_opts: file_options(opts).follow_symlinks(false),
            file_opts_follow: file_options(opts).follow_symlinks(true),
            preserve: opts.copy.preserve_policy(),
            no_clobber: opts.copy.overwrite_policy() == Overwrite::NoClobber,
            follow_all: opts.dereference == Dereference::Always,
            parallel,
            dst_root,
            links: Mutex::new(HashMap::new()),
            link_done: Condvar::new(),
            workers: workers_for(opts),
            open_dirs: AtomicUsize::new(0),
            dir_budget: dir_budget(workers_for(opts)),
            keep_levels: keep_levels(workers_for(opts)),
            link_xattrs: OnceLock::new(),
            batch: dst_root
                .and_then(|_| crate::durable::Batch::for_tree(&opts.copy, open_file_limit() / 4)),
        }
    }

    /// Syncs and renames the queued atomic copies (see [`crate::durable`]).
    fn flush(&self) {
        if let Some(b) = &self.batch {
            b.flush(|rel, len, r| self.shared.file_result(rel, len, r));
        }
    }

    fn finish(self) -> TreeReport {
        self.shared.finish()
    }

    fn fail(&self, rel: &Path, kind: EntryKind, op: &'static str, e: Errno) {
        self.shared.fail(rel, kind, op, errno(e));
    }

    /// A failure to apply metadata to an entry that was otherwise copied.
    fn fail_meta(&self, rel: &Path, op: &'static str, e: Errno) {
        self.shared.fail_meta(rel, op, errno(e));
    }
}
