//! Directory descriptors for opening candidates: a file is opened with
//! `openat` relative to its directory, whose descriptor is the one the walk
//! listed it with, or else opened once (`O_PATH`), and kept for the run, so
//! that each open resolves one name instead of the whole path (and no path
//! is built). The directories kept are bounded by the soft limit on open
//! files; past it, files are opened by their full path.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;
use rustix::fs::{Mode, OFlags};

use super::scan::Tree;
use crate::sys::open_file_limit;

/// Descriptors left for everything else (the files held open while their
/// size group is compared, the standard streams, the caller's own).
const RESERVE: usize = 256;

/// Directory descriptors, opened on first use.
pub(super) struct DirFds {
    fds: Vec<OnceLock<Option<OwnedFd>>>,
    /// Directories that may still be opened.
    left: AtomicUsize,
}

/// Opens `name` read-only without updating its access time (`O_NOATIME`:
/// on a first run every read would otherwise write the inode back, one
/// metadata transaction per file), relative to `dir` when given. The
/// kernel allows the flag to the file's owner and to root only: for anyone
/// else the file is opened plainly.
///
/// Something put in a file's place since the scan must not be opened as
/// it: a FIFO would block the open until some writer came
/// (`O_NONBLOCK`), a symlink could lead to a device whose open does
/// something (`O_NOFOLLOW`, for names found by the walk; a root given by
/// the user may be a symlink), a terminal must not become ours
/// (`O_NOCTTY`): the flags a copy's source is opened with. What does open
/// is then checked against the scan by its caller.
pub(super) fn open_read(dir: Option<&OwnedFd>, name: &OsStr) -> io::Result<File> {
    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY;
    let open = |flags| match dir {
        Some(d) => rustix::fs::openat(d.as_fd(), name, flags | OFlags::NOFOLLOW, Mode::empty()),
        None => rustix::fs::open(Path::new(name), flags, Mode::empty()),
    };
    match open(flags | OFlags::NOATIME) {
        Ok(fd) => Ok(File::from(fd)),
        Err(rustix::io::Errno::PERM) => Ok(File::from(open(flags)?)),
        Err(e) => Err(e.into()),
    }
}

/// Descriptor tables are grown ahead of the walk up to this many entries
/// at most (512 KiB of table); past it they grow as descriptors are
/// opened.
const GROW_AHEAD: usize = 1 << 16;

/// Grows this process's descriptor table to hold `n` descriptors now,
/// once, by taking (and at once closing) descriptor number `n - 1`.
///
/// The kernel grows the table by doubling it when a new descriptor does
/// not fit; in a process with several threads each growth waits for an
/// RCU grace period, and every thread opening a file meanwhile waits too.
/// Measured on btrfs, those waits took a few hundred milliseconds of the
/// workers' time in a run over 17,000 files (`expand_files` below
/// `openat`). The table never shrinks, so one growth up front replaces
/// all of them.
fn grow_fd_table(n: usize) {
    let n = n.min(GROW_AHEAD);
    let Some(last) = n.checked_sub(1).and_then(|l| RawFd::try_from(l).ok()) else {
        return;
    };
    if let Ok(any) = rustix::fs::open("/", OFlags::PATH | OFlags::CLOEXEC, Mode::empty()) {
        // Only the growth matters: the copy is closed when dropped.
        let _ = rustix::io::fcntl_dupfd_cloexec(&any, last);
    }
}

/// How many directory descriptors the run may keep when `held` others are
/// needed at the same time.
fn budget(held: usize) -> usize {
    open_file_limit().saturating_sub(held + RESERVE)
}

/// How many directory descriptors the walk may keep: [`budget`], at most
/// [`GROW_AHEAD`]. Past it, directories are opened by their path (the last
/// component not followed). The walk cannot know yet which directories
/// will hold candidates; those that do not are closed after it.
pub(super) fn walk_budget(held: usize) -> usize {
    budget(held).min(GROW_AHEAD)
}

/// Grows the descriptor table ahead of the walk (see [`grow_fd_table`]):
/// to the soft limit, at most [`GROW_AHEAD`] entries. Called before the
/// workers are started: while a process has one thread, the kernel grows
/// its table without waiting for a grace period (a run over one file took
/// 17-22 ms with the growth made inside the pool, 7 ms before it).
pub(super) fn grow_ahead() {
    grow_fd_table(open_file_limit());
}

/// The descriptors are closed on the workers: one `close` each, about
/// 1 ms for the bench tree's 1,750 directories on one thread.
impl Drop for DirFds {
    fn drop(&mut self) {
        std::mem::take(&mut self.fds).into_par_iter().for_each(drop);
    }
}

impl DirFds {
    /// A table for the directories of `tree` that hold one of `files`,
    /// with the descriptors the walk kept for them (`walked`, one slot per
    /// directory, at most [`walk_budget`]`(held)` of them; the others are
    /// closed); `held` descriptors are needed elsewhere at the same time.
    pub(super) fn new(
        tree: &Tree,
        held: usize,
        walked: Vec<Option<OwnedFd>>,
        files: impl Iterator<Item = u32>,
    ) -> DirFds {
        let mut need = vec![false; tree.dir_count()];
        for f in files {
            need[tree.file_dir(f) as usize] = true;
        }
        let mut adopted = 0;
        let mut fds: Vec<OnceLock<Option<OwnedFd>>> = walked
            .into_iter()
            .zip(&need)
            .map(|(f, &need)| match f {
                Some(fd) if need => {
                    adopted += 1;
                    OnceLock::from(Some(fd))
                }
                _ => OnceLock::new(),
            })
            .collect();
        let left = budget(held).saturating_sub(adopted);
        fds.resize_with(tree.dir_count(), OnceLock::new);
        DirFds {
            fds,
            left: AtomicUsize::new(left),
        }
    }

    fn dir(&self, tree: &Tree, d: u32) -> Option<&OwnedFd> {
        let slot = self.fds.get(d as usize)?;
        slot.get_or_init(|| {
            self.left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .ok()?;
            let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
            match rustix::fs::open(tree.dir_path(d), flags, Mode::empty()) {
                Ok(fd) => Some(fd),
                Err(_) => {
                    self.left.fetch_add(1, Ordering::Relaxed);
                    None
                }
            }
        })
        .as_ref()
    }

    /// The descriptor numbers held (directories opened with `O_PATH`, never
    /// for writing): the scan for files open for writing skips them.
    pub(super) fn held(&self) -> HashSet<RawFd> {
        self.fds
            .iter()
            .filter_map(|s| s.get().and_then(Option::as_ref))
            .map(AsRawFd::as_raw_fd)
            .collect()
    }

    /// Opens file `i` of `tree` read-only: relative to its directory when
    /// that is held, else by its path.
    pub(super) fn open(&self, tree: &Tree, i: u32) -> io::Result<File> {
        match self.dir(tree, tree.file_dir(i)) {
            Some(d) => open_read(Some(d), tree.file_name(i)),
            None => open_read(None, tree.path(i).as_os_str()),
        }
    }
}
