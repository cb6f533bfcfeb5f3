//! The Unix walker: every entry is reached through its parent's descriptor.
//!
//! Sources are opened with `O_NOFOLLOW` (unless the dereference policy says
//! otherwise) and destinations are created with `mkdirat`, `symlinkat`,
//! `mknodat` and `linkat` relative to a destination directory descriptor that
//! was itself opened with `O_NOFOLLOW`. Nothing below the root is resolved as
//! a path, so renaming or swapping directories during the copy cannot move
//! writes outside the destination.
//!
//! By concern: [`root`] resolves the destination and starts the walk;
//! [`walk`] schedules it (the explicit stack, parallelism and the
//! descriptor budget); [`dirs`] lists, creates and finishes directories;
//! [`files`] copies regular files through the engine; [`links`] decides who
//! copies a multiply-linked file and links the others to it; [`nodes`]
//! creates symlinks, FIFOs, devices and sockets, through the checked
//! handle of [`created`]; the crate's [`xattr`] copies extended attributes.

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
use crate::meta::keep_set_ids;
use crate::xattr;
use crate::{CopyOptions, Overwrite, Preserve, RemoveDestination};

mod created;
mod dirs;
mod files;
mod links;
mod nodes;
mod root;
mod walk;

pub(super) use root::copy_tree;

use created::Created;
#[cfg(any(target_os = "linux", target_os = "android"))]
use created::Staging;
use dirs::{Ancestors, Child, DirHint, DstDir, MakeDirError, make_dir};
use links::{Claim, LinkState};
use walk::{PAR_DEPTH, dir_budget, keep_levels, open_file_limit, workers_for};

/// (device, inode).
type Id = (u64, u64);

/// Mode bits that `chmod` sets (permissions, setuid, setgid, sticky).
const MODE_BITS: u32 = 0o7777;
/// Permission bits.
const PERM_BITS: u32 = 0o777;
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

/// The error for a non-directory that would replace a directory.
fn over_directory() -> io::Error {
    io::Error::new(
        io::ErrorKind::IsADirectory,
        "cannot overwrite directory with non-directory",
    )
}

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
