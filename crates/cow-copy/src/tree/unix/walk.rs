//! Walk scheduling. Below one directory the walk uses an explicit stack:
//! no recursion, so any depth works (trees far deeper than `PATH_MAX`), and
//! a bounded number of levels keep their descriptors open. The budget of
//! descriptors and workers is derived from the open-file limit (the end of
//! this file).
//!
//! Every level of the stack is a [`Frame`]: a source directory, its copy
//! and the subdirectories still to walk. When more than
//! [`Walker::keep_levels`] levels hold descriptors (or opening one fails
//! with `EMFILE`), the lowest levels above the first close theirs. Climbing
//! back into a level whose descriptors were closed reopens it through `..`
//! of the level just finished, or else by name from the nearest open level
//! below, and checks that each reopened directory is the same (device,
//! inode) as before: a directory moved meanwhile is reported, never
//! followed somewhere else.

use super::*;

/// Directories are walked as parallel jobs down to this depth; below it,
/// each subtree is walked by one worker with a stack (its files are still
/// copied in parallel).
pub(super) const PAR_DEPTH: usize = 8;

/// One directory being copied.
struct Frame {
    /// Its name in its parent (the same in the source and the copy).
    name: CString,
    rel: PathBuf,
    /// The source directory's status (for its metadata and identity).
    st: Stat,
    /// The copy's (device, inode).
    dst_id: Id,
    /// Descriptors; `None` while closed to save descriptors.
    fds: Option<(OwnedFd, OwnedFd)>,
    restore: Option<u32>,
    hint: DirHint,
    /// This directory and its ancestors.
    anc: Arc<Ancestors>,
    /// Subdirectories still to walk; `None` until it was listed.
    todo: Option<Vec<Child>>,
    /// Whether the source was opened following a symlink.
    follow: bool,
    /// On another filesystem than its parent, with `one_file_system`: its
    /// contents are not copied.
    other_fs: bool,
}

/// Why a subdirectory could not be entered.
enum OpenError {
    /// Too many open files: close something and try again.
    Full,
    /// Reported already.
    Reported,
}

impl Walker<'_> {
    /// Copies the subdirectory `c` of `src` (into `dst`) and everything
    /// below it.
    pub(super) fn subtree(
        &self,
        src: BorrowedFd<'_>,
        dst: BorrowedFd<'_>,
        c: &Child,
        rel: PathBuf,
        anc: &Arc<Ancestors>,
        depth: usize,
    ) {
        let mut stack: Vec<Frame> = Vec::new();
        match self.enter_retrying(&mut stack, src, dst, &c.name, rel, anc) {
            Some(f) => stack.push(f),
            None => return,
        }
        // The top is taken off the stack while it is worked on, so that the
        // levels below can be closed or reopened meanwhile.
        while let Some(mut top) = stack.pop() {
            if self.shared.stopped() {
                self.close(top);
                continue;
            }
            let Some((s, d)) = top.fds.take() else {
                // Given up (reported): the level below carries on.
                if stack.last().is_some_and(|f| f.fds.is_none()) {
                    self.reopen(&mut stack, &top);
                }
                continue;
            };
            if top.todo.is_none() {
                let level = depth + stack.len();
                // `cp -x`: a mount point is created but not entered.
                let mut dirs = if top.other_fs {
                    Vec::new()
                } else {
                    self.copy_contents(s.as_fd(), d.as_fd(), top.hint, &top.rel, &top.anc, level)
                };
                dirs.reverse();
                top.todo = Some(dirs);
                top.fds = Some((s, d));
                stack.push(top);
                continue;
            }
            if let Some(next) = top.todo.as_mut().and_then(Vec::pop) {
                let crel = top.rel.join(os_name(&next.name));
                let anc = top.anc.clone();
                let entered =
                    self.enter_retrying(&mut stack, s.as_fd(), d.as_fd(), &next.name, crel, &anc);
                top.fds = Some((s, d));
                stack.push(top);
                if let Some(f) = entered {
                    stack.push(f);
                    self.trim(&mut stack, self.keep_levels);
                }
                continue;
            }
            self.finish_dir(s.as_fd(), &top.st, d.as_fd(), top.restore, &top.rel);
            top.fds = Some((s, d));
            if stack.last().is_some_and(|f| f.fds.is_none()) {
                self.reopen(&mut stack, &top);
            }
            self.close(top);
        }
    }

    /// [`Walker::enter`], closing levels of `stack` while descriptors run
    /// out.
    fn enter_retrying(
        &self,
        stack: &mut [Frame],
        src: BorrowedFd<'_>,
        dst: BorrowedFd<'_>,
        name: &CStr,
        rel: PathBuf,
        anc: &Arc<Ancestors>,
    ) -> Option<Frame> {
        loop {
            match self.enter(src, dst, name, &rel, anc) {
                Ok(f) => return Some(f),
                Err(OpenError::Full) if self.trim(stack, 1) => continue,
                Err(OpenError::Full) => {
                    self.fail(&rel, EntryKind::Dir, "open directory", Errno::MFILE);
                    return None;
                }
                Err(OpenError::Reported) => return None,
            }
        }
    }

    /// Opens the subdirectory `name` of `src` and creates (or opens) its
    /// copy in `dst`.
    fn enter(
        &self,
        src: BorrowedFd<'_>,
        dst: BorrowedFd<'_>,
        name: &CStr,
        rel: &Path,
        anc: &Arc<Ancestors>,
    ) -> Result<Frame, OpenError> {
        let full = |e: Errno| e == Errno::MFILE || e == Errno::NFILE;
        let follow = self.follow_all;
        // O_NOFOLLOW: a directory swapped for a symlink since it was listed
        // fails here (ELOOP/ENOTDIR) instead of being followed.
        let sfd = match rfs::openat(src, name, dir_flags(follow), Mode::empty()) {
            Ok(fd) => fd,
            Err(e) if full(e) => return Err(OpenError::Full),
            Err(e) => {
                self.fail(rel, EntryKind::Dir, "open directory", e);
                return Err(OpenError::Reported);
            }
        };
        let st = match rfs::fstat(&sfd) {
            Ok(st) => st,
            Err(e) => {
                self.fail(rel, EntryKind::Dir, "stat directory", e);
                return Err(OpenError::Reported);
            }
        };
        let id = id_of(&st);
        let other_fs = self.shared.opts.one_file_system
            && rfs::fstat(src).is_ok_and(|parent| parent.st_dev != st.st_dev);
        if anc.contains(id) {
            self.fail(
                rel,
                EntryKind::Dir,
                "copy directory (it contains itself through a symlink or mount)",
                Errno::LOOP,
            );
            return Err(OpenError::Reported);
        }
        let made = match make_dir(dst, name, &st) {
            Ok(d) => d,
            Err(MakeDirError::NotADirectory) => {
                self.shared.fail(
                    rel,
                    EntryKind::Dir,
                    "create directory",
                    io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        "cannot overwrite non-directory with directory",
                    ),
                );
                return Err(OpenError::Reported);
            }
            Err(MakeDirError::Io(_, e)) if full(e) => return Err(OpenError::Full),
            Err(MakeDirError::Io(op, e)) => {
                self.fail(rel, EntryKind::Dir, op, e);
                return Err(OpenError::Reported);
            }
        };
        let dst_id = match rfs::fstat(&made.fd) {
            Ok(st) => id_of(&st),
            Err(e) => {
                self.fail(rel, EntryKind::Dir, "stat directory", e);
                return Err(OpenError::Reported);
            }
        };
        self.shared.totals.bump(Count::Dirs);
        self.shared.record(
            rel,
            EntryKind::Dir,
            if made.created {
                EntryAction::Created
            } else {
                EntryAction::Merged
            },
            None,
        );
        self.open_dirs.fetch_add(2, Ordering::Relaxed);
        Ok(Frame {
            name: name.to_owned(),
            rel: rel.to_path_buf(),
            st,
            dst_id,
            fds: Some((sfd, made.fd)),
            restore: made.restore,
            hint: DirHint {
                new: made.created,
                dev: made.dev,
            },
            anc: Arc::new(Ancestors {
                id,
                parent: Some(anc.clone()),
            }),
            todo: None,
            follow,
            other_fs,
        })
    }

    /// Closes the descriptors of the lowest open levels above the first
    /// (which the caller's directory reopens nothing for) until at most
    /// `keep` levels hold them. Returns whether any was closed.
    fn trim(&self, stack: &mut [Frame], keep: usize) -> bool {
        let mut open = stack.iter().filter(|f| f.fds.is_some()).count();
        let mut closed = false;
        // The top stays open; so does the first level.
        let top = stack.len().saturating_sub(1);
        for f in stack.iter_mut().take(top).skip(1) {
            if open <= keep {
                break;
            }
            if f.fds.take().is_some() {
                self.open_dirs.fetch_sub(2, Ordering::Relaxed);
                open -= 1;
                closed = true;
            }
        }
        closed
    }

    fn close(&self, f: Frame) {
        if f.fds.is_some() {
            self.open_dirs.fetch_sub(2, Ordering::Relaxed);
        }
    }

    /// Reopens the top of `stack` (closed) after its child `done` finished:
    /// through `done`'s `..`, else by name from the nearest open level.
    /// When that fails the level is given up: its remaining subdirectories
    /// are reported and its metadata is not applied.
    fn reopen(&self, stack: &mut [Frame], done: &Frame) {
        let Some(last) = stack.len().checked_sub(1) else {
            return;
        };
        if let Some((s, d)) = &done.fds {
            let up = |fd: BorrowedFd<'_>, want: Id| -> Option<OwnedFd> {
                let fd = rfs::openat(fd, c"..", dir_flags(false), Mode::empty()).ok()?;
                let st = rfs::fstat(&fd).ok()?;
                (id_of(&st) == want).then_some(fd)
            };
            let parent = &stack[last];
            if let (Some(s), Some(d)) = (
                up(s.as_fd(), id_of(&parent.st)),
                up(d.as_fd(), parent.dst_id),
            ) {
                stack[last].fds = Some((s, d));
                self.open_dirs.fetch_add(2, Ordering::Relaxed);
                return;
            }
        }
        // Down by name from the nearest open level (the first always is).
        let start = stack.iter().rposition(|f| f.fds.is_some()).unwrap_or(0);
        for i in start + 1..=last {
            let (below, here) = stack.split_at_mut(i);
            let here = &mut here[0];
            let Some((ps, pd)) = &below[i - 1].fds else {
                unreachable!("levels are reopened upwards from an open one");
            };
            let open = |fd: BorrowedFd<'_>, follow: bool, want: Id| -> Result<OwnedFd, Errno> {
                let fd = rfs::openat(fd, here.name.as_c_str(), dir_flags(follow), Mode::empty())?;
                let st = rfs::fstat(&fd)?;
                if id_of(&st) == want {
                    Ok(fd)
                } else {
                    Err(Errno::STALE)
                }
            };
            let s = open(ps.as_fd(), here.follow, id_of(&here.st));
            let d = open(pd.as_fd(), false, here.dst_id);
            match (s, d) {
                (Ok(s), Ok(d)) => {
                    here.fds = Some((s, d));
                    self.open_dirs.fetch_add(2, Ordering::Relaxed);
                }
                (Err(e), _) | (_, Err(e)) => {
                    // Neither it nor the levels above it can be reached.
                    for f in &mut stack[i..] {
                        self.give_up(f, e);
                    }
                    return;
                }
            }
        }
    }

    /// Reports that `f` could not be reopened: it and what is left of it
    /// are not copied further.
    fn give_up(&self, f: &mut Frame, e: Errno) {
        let why = if e == Errno::STALE {
            io::Error::other("the directory was moved or replaced during the copy")
        } else {
            errno(e)
        };
        self.shared
            .fail(&f.rel, EntryKind::Dir, "reopen directory", why);
        f.todo = Some(Vec::new());
    }
}

/// How many directory descriptors the parallel walk may hold: the open-file
/// limit minus what the process and each worker need besides (a listing
/// and the source, destination and temporary file of a copy), at least 4.
pub(super) fn dir_budget(workers: usize) -> usize {
    open_file_limit().saturating_sub(16 + 4 * workers).max(4)
}

/// How many levels of a stack keep their two descriptors: each worker's
/// share of the budget, between 2 and 64 (deeper levels are reopened when
/// the walk climbs back to them).
pub(super) fn keep_levels(workers: usize) -> usize {
    (dir_budget(workers) / (2 * workers.max(1))).clamp(2, 64)
}

pub(super) use crate::sys::open_file_limit;

/// The workers asked for, fewer when the open-file limit could not feed
/// them (each needs a few descriptors, and the walk needs some per level).
pub(super) fn workers_for(opts: &TreeOptions) -> usize {
    let fit = open_file_limit().saturating_sub(32) / 8;
    // APFS serializes clones volume-wide: more workers only queue.
    #[cfg(target_os = "macos")]
    let fit = fit.min(super::super::macos::MAX_WORKERS);
    opts.worker_count().min(fit).max(1)
}
