//! Crash atomicity of atomic copies (docs/architecture.md, invariant 9): a temporary's
//! data is durable before the rename that publishes it, so after a power
//! cut the destination is wholly old or wholly new.
//!
//! Which temporaries need a sync (measured with `cargo xtask crash`, see
//! docs/reliability.md): a clone (`FICLONE`) is one metadata transaction
//! that the filesystem journals before the later rename, and it flushes the
//! source's dirty pages first, so it needs none. Bytes written by
//! `copy_file_range` or `write` sit in the page cache (ext4 and XFS
//! allocate them lazily), so the rename can reach the journal first: those
//! temporaries are `fdatasync`ed.
//!
//! A tree copy would pay one journal commit per file that way. Instead the
//! walker hands the finished temporaries to a [`Batch`]: when it is full
//! (or a directory's metadata is about to be finished, or the walk ends)
//! one `syncfs` per destination filesystem makes all their data durable,
//! then they are renamed one by one.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::fault::{Site, fault};
use crate::replace::{self, Temp};
use crate::report::{CopyReport, Strategy};
use crate::{CopyError, CopyOptions};

/// Whether a temporary written by `strategy` must be synced before its
/// rename (everything except a pure clone).
pub(crate) fn needs_data_sync(opts: &CopyOptions, strategy: Strategy) -> bool {
    // With `fsync` the data was already synced (with the inode).
    !opts.fsync && strategy != Strategy::Cloned
}

/// `fdatasync` of a temporary before its rename.
pub(crate) fn sync_data(file: &File, dst_path: &Path) -> Result<(), CopyError> {
    fault!(Site::Fsync, file.sync_data())
        .map_err(|e| CopyError::io("fdatasync the temporary of", dst_path, e))
}

/// Renames the temporary `tmp` over `name` in `dir`; the error names
/// `dst_path`.
pub(crate) fn publish(
    dir: BorrowedFd<'_>,
    tmp: &OsStr,
    name: &OsStr,
    dst_path: &Path,
    no_clobber: bool,
) -> Result<(), CopyError> {
    replace::rename_over(dir, tmp, name, no_clobber).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            CopyError::DestinationExists {
                path: dst_path.to_path_buf(),
            }
        } else {
            CopyError::io("rename a temporary over", dst_path, e)
        }
    })
}

/// A finished temporary waiting in a [`Batch`] for its rename.
pub(crate) struct Pending {
    dir: OwnedFd,
    tmp: Temp,
    name: OsString,
    dst_path: PathBuf,
    no_clobber: bool,
    report: CopyReport,
    /// The caller's name for the entry (the tree's relative path).
    tag: PathBuf,
    /// The caller's length for the entry.
    len: u64,
}

/// Where a deferred rename goes, and the caller's name for the entry.
#[derive(Clone, Copy)]
pub(crate) struct Defer<'a> {
    pub(crate) batch: &'a Batch,
    pub(crate) tag: &'a Path,
    pub(crate) len: u64,
}

impl std::fmt::Debug for Defer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Defer").field("tag", &self.tag).finish()
    }
}

/// Temporaries waiting for one `syncfs` and their renames.
pub(crate) struct Batch {
    pending: Mutex<Vec<Pending>>,
    /// Held while a batch is taken and committed: a [`Batch::flush`] that
    /// returns has seen every rename queued before it done (a directory's
    /// times are set after it).
    committing: Mutex<()>,
    limit: usize,
}

/// The most temporaries one batch holds (each keeps a descriptor of its
/// directory).
const MAX_BATCH: usize = 512;

impl Batch {
    /// A batch for an atomic tree copy with `opts`, or `None` when every file
    /// is synced on its own anyway (`fsync`), the copy is not atomic, or the
    /// platform has no `syncfs`. It holds at most `fds` descriptors.
    pub(crate) fn for_tree(opts: &CopyOptions, fds: usize) -> Option<Batch> {
        if !opts.atomic || opts.fsync || !cfg!(any(target_os = "linux", target_os = "android")) {
            return None;
        }
        Some(Batch {
            pending: Mutex::new(Vec::new()),
            committing: Mutex::new(()),
            limit: fds.clamp(1, MAX_BATCH),
        })
    }

    /// Queues a temporary; says whether the batch is now full (the caller
    /// then calls [`Batch::flush_full`]). Returns the temporary instead
    /// when its directory cannot be kept (the caller then syncs and renames
    /// it now).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn push(
        &self,
        defer: Defer<'_>,
        dir: BorrowedFd<'_>,
        tmp: Temp,
        name: &OsStr,
        dst_path: &Path,
        no_clobber: bool,
        report: CopyReport,
    ) -> Result<bool, (Temp, CopyReport)> {
        let Ok(dir) = dir.try_clone_to_owned() else {
            return Err((tmp, report));
        };
        let mut pending = lock(&self.pending);
        pending.push(Pending {
            dir,
            tmp,
            name: name.to_os_string(),
            dst_path: dst_path.to_path_buf(),
            no_clobber,
            report,
            tag: defer.tag.to_path_buf(),
            len: defer.len,
        });
        Ok(pending.len() >= self.limit)
    }

    /// For a full batch: commits it unless a commit is running already (the
    /// copies go on meanwhile and the next full batch or the final flush
    /// takes them), or waits for that commit when the batch has grown to
    /// twice its size (each queued temporary holds a descriptor).
    pub(crate) fn flush_full(&self, done: impl FnMut(&Path, u64, Result<CopyReport, CopyError>)) {
        let guard = match self.committing.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => {
                if lock(&self.pending).len() < 2 * self.limit {
                    return;
                }
                lock(&self.committing)
            }
        };
        let batch = std::mem::take(&mut *lock(&self.pending));
        commit(batch, done);
        drop(guard);
    }

    /// Commits every queued temporary (see [`commit`]), after any commit
    /// already running.
    pub(crate) fn flush(&self, done: impl FnMut(&Path, u64, Result<CopyReport, CopyError>)) {
        let _one_at_a_time = lock(&self.committing);
        let batch = std::mem::take(&mut *lock(&self.pending));
        commit(batch, done);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Makes the data of every temporary in `batch` durable (one `syncfs` per
/// filesystem), then renames each over its destination. `done` gets each
/// entry's tag, length and result; a failed entry's temporary is removed
/// and its destination left as it was.
fn commit(batch: Vec<Pending>, mut done: impl FnMut(&Path, u64, Result<CopyReport, CopyError>)) {
    if batch.is_empty() {
        return;
    }
    let mut synced: Vec<(u64, std::io::Result<()>)> = Vec::new();
    for p in batch {
        // `st_dev` is not a u64 on every Unix.
        #[allow(clippy::unnecessary_cast)]
        let dev = rustix::fs::fstat(&p.dir).map(|st| st.st_dev as u64);
        let sync = match dev {
            Ok(dev) => match synced.iter().find(|(d, _)| *d == dev) {
                Some((_, r)) => clone_result(r),
                None => {
                    let r = sync_fs(p.dir.as_fd());
                    let copy = clone_result(&r);
                    synced.push((dev, r));
                    copy
                }
            },
            Err(e) => Err(e.into()),
        };
        let result = sync
            .map_err(|e| CopyError::io("syncfs before renaming the temporary of", &p.dst_path, e))
            .and_then(|()| {
                publish(
                    p.dir.as_fd(),
                    &p.tmp.name,
                    &p.name,
                    &p.dst_path,
                    p.no_clobber,
                )
            });
        if result.is_err() {
            replace::remove(p.dir.as_fd(), &p.tmp.name);
        }
        done(&p.tag, p.len, result.map(|()| p.report));
    }
}

fn clone_result(r: &std::io::Result<()>) -> std::io::Result<()> {
    match r {
        Ok(()) => Ok(()),
        Err(e) => Err(match e.raw_os_error() {
            Some(n) => std::io::Error::from_raw_os_error(n),
            None => std::io::Error::new(e.kind(), e.to_string()),
        }),
    }
}

/// `syncfs`: writes back every dirty page and commits the journal of the
/// filesystem holding `fd`.
fn sync_fs(fd: BorrowedFd<'_>) -> std::io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        fault!(
            Site::Fsync,
            rustix::fs::syncfs(fd).map_err(std::io::Error::from)
        )
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        // Not reached: `Batch::for_tree` makes no batch here.
        let _ = fd;
        Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
    }
}
