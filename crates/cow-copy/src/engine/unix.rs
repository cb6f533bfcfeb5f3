//! The Unix engine: resolves the destination, runs the guard, the chain,
//! the metadata and (when asked) the atomic rename.

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rustix::fs::CWD;

use crate::chain::{self, Job};
use crate::fault::{Site, fault};
use crate::guard::{self, Existing, Source};
use crate::meta::{self, ModeRule};
use crate::replace;
use crate::report::{CopyReport, Destination, Strategy};
use crate::{CopyError, CopyOptions, Overwrite, RemoveDestination};

/// `CopyOptions::copy`: paths relative to the working directory; a
/// destination symlink is followed.
pub(crate) fn copy_paths(
    opts: &CopyOptions,
    src: &Path,
    dst: &Path,
) -> Result<CopyReport, CopyError> {
    let source = guard::open_source(CWD, src, src, opts.follow_symlinks, false)?;
    reject_trailing_slash(dst)?;
    let (dir, name) = guard::open_parent(CWD, dst, dst)?;
    copy_into(
        opts,
        &source,
        src,
        dir.as_fd(),
        &name,
        dst,
        true,
        Hints::default(),
    )?
    .now(dst)
}

/// `dst/` names a directory: never create a file called `dst` for it.
fn reject_trailing_slash(dst: &Path) -> Result<(), CopyError> {
    use std::os::unix::ffi::OsStrExt;
    if dst.as_os_str().as_bytes().last() != Some(&b'/') {
        return Ok(());
    }
    if std::fs::metadata(dst).is_ok_and(|m| m.is_dir()) {
        return Err(CopyError::DestinationIsDirectory {
            path: dst.to_path_buf(),
        });
    }
    Err(CopyError::io(
        "open destination",
        dst,
        std::io::Error::from(rustix::io::Errno::NOTDIR),
    ))
}

/// `CopyOptions::copy_at`: names relative to directory descriptors; a
/// destination symlink is replaced, never written through.
pub(crate) fn copy_at(
    opts: &CopyOptions,
    src_dir: BorrowedFd<'_>,
    src_name: &Path,
    dst_dir: BorrowedFd<'_>,
    dst_name: &Path,
) -> Result<CopyReport, CopyError> {
    copy_at_hinted(opts, src_dir, src_name, dst_dir, dst_name, Hints::default())?.now(dst_name)
}

/// What [`copy_at_hinted`] did.
pub(crate) enum Copied {
    /// The copy is complete.
    Now(CopyReport),
    /// The copy is in its temporary, queued in the batch of
    /// [`Hints::defer`] for its sync and rename: the batch reports it.
    Deferred {
        /// The batch is full: the caller should flush it.
        full: bool,
    },
}

impl Copied {
    /// The report of a copy made without a batch.
    pub(crate) fn now(self, dst: &Path) -> Result<CopyReport, CopyError> {
        match self {
            Copied::Now(r) => Ok(r),
            Copied::Deferred { .. } => Err(CopyError::io(
                "copy",
                dst,
                std::io::Error::other("the rename was deferred without a batch"),
            )),
        }
    }
}

/// What a caller already knows about the two entries (saves system calls;
/// every fact is still checked on the open descriptors).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Hints<'a> {
    /// The source entry was just listed or stat'ed as a regular file.
    pub(crate) src_regular: bool,
    /// The destination most likely does not exist yet (its directory was
    /// just created): create it before looking for an existing file.
    pub(crate) dst_new: bool,
    /// The device of the destination's directory (so of a file created in
    /// it).
    pub(crate) dst_dir_dev: Option<u64>,
    /// An atomic copy whose temporary needs a data sync is queued here
    /// instead of synced and renamed at once (see [`crate::durable`]).
    pub(crate) defer: Option<crate::durable::Defer<'a>>,
}

/// [`copy_at`] with [`Hints`].
pub(crate) fn copy_at_hinted(
    opts: &CopyOptions,
    src_dir: BorrowedFd<'_>,
    src_name: &Path,
    dst_dir: BorrowedFd<'_>,
    dst_name: &Path,
    hints: Hints<'_>,
) -> Result<Copied, CopyError> {
    let source = guard::open_source(
        src_dir,
        src_name,
        src_name,
        opts.follow_symlinks,
        hints.src_regular,
    )?;
    match (dst_name.parent(), dst_name.file_name()) {
        (Some(p), Some(name)) if !p.as_os_str().is_empty() => {
            let (dir, name) =
                guard::open_parent(dst_dir, dst_name, dst_name).map(|(d, _)| (d, name))?;
            copy_into(
                opts,
                &source,
                src_name,
                dir.as_fd(),
                name,
                dst_name,
                false,
                hints,
            )
        }
        _ => copy_into(
            opts,
            &source,
            src_name,
            dst_dir,
            dst_name.as_os_str(),
            dst_name,
            false,
            hints,
        ),
    }
}

/// Copies, and copies again (up to `opts.retry_changed` times) while the
/// source changes as it is read.
#[allow(clippy::too_many_arguments)]
fn copy_into(
    opts: &CopyOptions,
    source: &Source,
    src_path: &Path,
    dir: BorrowedFd<'_>,
    name: &OsStr,
    dst_path: &Path,
    follow_dst: bool,
    hints: Hints<'_>,
) -> Result<Copied, CopyError> {
    let mut again: Option<Source> = None;
    let mut retries = 0;
    let mut created = false;
    loop {
        let src = again.as_ref().unwrap_or(source);
        let last = retries >= opts.retry_changed;
        let copied = copy_into_once(opts, src, src_path, dir, name, dst_path, follow_dst, hints)?;
        let mut report = match copied {
            Copied::Now(r) => r,
            d @ Copied::Deferred { .. } => return Ok(d),
        };
        created |= report.destination == Destination::Created;
        if !report.source_changed || last {
            if created {
                report.destination = Destination::Created;
            }
            report.retries = retries;
            return Ok(Copied::Now(report));
        }
        retries += 1;
        // The next attempt compares against the source as it is now.
        let stat = |e| CopyError::io("stat", src_path, e);
        let file = src.file.try_clone().map_err(stat)?;
        let meta = file.metadata().map_err(stat)?;
        again = Some(Source { file, meta });
    }
}

/// One attempt of [`copy_into`] (an atomic copy whose source changed is
/// never deferred to a batch, so the retry sees it).
#[allow(clippy::too_many_arguments)]
fn copy_into_once(
    opts: &CopyOptions,
    source: &Source,
    src_path: &Path,
    dir: BorrowedFd<'_>,
    name: &OsStr,
    dst_path: &Path,
    follow_dst: bool,
    hints: Hints<'_>,
) -> Result<Copied, CopyError> {
    let remove = opts.remove_destination;
    if opts.atomic {
        // Removing the destination first means replacing the entry itself.
        let follow = follow_dst && remove != RemoveDestination::Always;
        return copy_atomic(
            opts,
            source,
            src_path,
            dir,
            name,
            dst_path,
            follow,
            hints.defer,
        );
    }
    let rules = guard::OpenRules {
        follow: follow_dst,
        exclusive: opts.overwrite == Overwrite::NoClobber,
        refuse_dangling: !opts.write_through_dangling,
        create_mode: source.meta.mode() & 0o777,
        likely_new: hints.dst_new,
    };
    let opened = if remove == RemoveDestination::Always && !rules.exclusive {
        refuse_same(source, src_path, dir, name, follow_dst, dst_path)?;
        remove_existing(dir, name, dst_path)?;
        open_removed(dir, name, rules, dst_path)?
    } else {
        match guard::open_in_place(dir, name, rules, dst_path)? {
            // A regular file that may have other hard links: check it is
            // not the source, then remove this name and create a new file
            // (the other names keep their content, owner and mode).
            Some(d)
                if remove == RemoveDestination::IfLinked
                    && !rules.exclusive
                    && d.meta.as_ref().is_some_and(|m| may_be_linked(m, dir)) =>
            {
                if let Some(meta) = &d.meta {
                    guard::check_same(&source.meta, meta, src_path, dst_path)?;
                }
                drop(d);
                remove_existing(dir, name, dst_path)?;
                open_removed(dir, name, rules, dst_path)?
            }
            other => other,
        }
    };
    let Some(dst) = opened else {
        // A symlink entry that must not be followed: replace the entry.
        return copy_atomic(opts, source, src_path, dir, name, dst_path, false, None);
    };
    // We never create the source's inode, so nothing to clean up.
    // A file created just now is a new, empty regular file: never the source.
    if let Some(meta) = &dst.meta {
        guard::check_same(&source.meta, meta, src_path, dst_path)?;
    }
    let created = dst.created;
    let dst_dev = match &dst.meta {
        Some(m) => Some(m.dev()),
        None => hints.dst_dir_dev,
    };
    let regular = dst.meta.as_ref().is_none_or(|m| m.is_file());
    let has_content = regular && !created && dst.meta.as_ref().is_some_and(|m| m.len() > 0);
    let dst_meta = dst.meta;
    let mut job = Job {
        opts,
        src: &source.file,
        src_meta: &source.meta,
        src_path,
        src_dev: source.meta.dev(),
        dst_dev,
        len: source.meta.len(),
        dst: dst.file,
        dst_path,
        dst_dir: dir,
        dst_name: name,
        dst_regular: regular,
        dst_has_content: has_content,
        in_place: !created,
        truncated: false,
        update_fallback: None,
        dst_mode: None,
        // Writing data never changes a file's owner.
        dst_owner: dst_meta.as_ref().map(|m| (m.uid(), m.gid())),
        dst_meta: dst_meta.as_ref(),
    };
    let result = run_and_finish(
        &mut job,
        source,
        ModeRule::for_in_place(opts, created),
        created,
    );
    match result {
        Ok(report) => Ok(Copied::Now(report)),
        Err(e) => {
            if created {
                if guard::remove_if_same(dir, name, &job.dst) {
                    Err(e)
                } else {
                    // The partial new file stays: say so.
                    Err(incomplete(e, &job))
                }
            } else if job.truncated {
                Err(incomplete(e, &job))
            } else {
                Err(e)
            }
        }
    }
}

/// Whether the existing destination file `m` in `dir` may have a name
/// outside `dir`: it has more than one link, or someone else can change
/// `dir`'s entries. Then its link count proves nothing: another user who
/// can rename in `dir` can put a hard link of any file there and take it
/// away again between the open and the `fstat`, so the count read after
/// the open is 1 while the file opened is theirs to choose.
fn may_be_linked(m: &std::fs::Metadata, dir: BorrowedFd<'_>) -> bool {
    if !m.is_file() {
        return false;
    }
    if m.nlink() > 1 {
        return true;
    }
    guard::others_can_change(dir)
}

/// Refuses a destination that is the source (before it is removed: the
/// copy would then read a file no longer there by that name).
fn refuse_same(
    source: &Source,
    src_path: &Path,
    dir: BorrowedFd<'_>,
    name: &OsStr,
    follow: bool,
    dst_path: &Path,
) -> Result<(), CopyError> {
    let at = if follow {
        rustix::fs::AtFlags::empty()
    } else {
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW
    };
    match rustix::fs::statat(dir, name, at) {
        #[allow(clippy::unnecessary_cast)]
        Ok(st)
            if st.st_dev as u64 == source.meta.dev() && st.st_ino as u64 == source.meta.ino() =>
        {
            Err(CopyError::SameFile {
                src: src_path.to_path_buf(),
                dst: dst_path.to_path_buf(),
            })
        }
        _ => Ok(()),
    }
}

/// Removes the destination entry (never following it); a missing one is
/// fine, a directory is [`CopyError::DestinationIsDirectory`].
fn remove_existing(dir: BorrowedFd<'_>, name: &OsStr, display: &Path) -> Result<(), CopyError> {
    use rustix::io::Errno;
    match fault!(
        Site::Unlink,
        rustix::fs::unlinkat(dir, name, rustix::fs::AtFlags::empty())
    ) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => {
            let st = rustix::fs::statat(dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW);
            if st.is_ok_and(|st| {
                rustix::fs::FileType::from_raw_mode(st.st_mode as _)
                    == rustix::fs::FileType::Directory
            }) {
                return Err(CopyError::DestinationIsDirectory {
                    path: display.to_path_buf(),
                });
            }
            Err(CopyError::io("remove destination", display, e.into()))
        }
    }
}

/// Creates the destination just removed, with `O_EXCL` only: an entry that
/// appeared meanwhile is [`CopyError::DestinationChanged`], never opened.
fn open_removed(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    rules: guard::OpenRules,
    display: &Path,
) -> Result<Option<guard::InPlace>, CopyError> {
    let rules = guard::OpenRules {
        exclusive: true,
        ..rules
    };
    guard::open_in_place(dir, name, rules, display).map_err(|e| match e {
        CopyError::DestinationExists { path } => CopyError::DestinationChanged { path },
        e => e,
    })
}

impl ModeRule {
    fn for_in_place(opts: &CopyOptions, created: bool) -> ModeRule {
        let _ = created;
        if opts.preserve.mode {
            ModeRule::Source
        } else {
            // A new file was created with source & !umask; an existing one
            // keeps its mode.
            ModeRule::Keep
        }
    }
}

/// Rewrites a failure after truncation so the error says the destination
/// is incomplete.
fn incomplete(e: CopyError, job: &Job<'_>) -> CopyError {
    match e {
        CopyError::Io { op, source, .. } => {
            let written = job.dst.metadata().map(|m| m.len()).unwrap_or(0);
            CopyError::Incomplete {
                op,
                path: job.dst_path.to_path_buf(),
                written,
                source,
            }
        }
        other => other,
    }
}

/// Runs the chain, metadata and fsync on `job.dst`; builds the report.
fn run_and_finish(
    job: &mut Job<'_>,
    source: &Source,
    mode: ModeRule,
    created: bool,
) -> Result<CopyReport, CopyError> {
    let (outcome, fallbacks) = chain::run(job)?;
    let source_changed = crate::changed::source_changed(job.src, &source.meta, outcome.strategy);
    let mut skipped = Vec::new();
    // An owner that is already the source's needs no `fchown` (a root copy
    // of root's files, a user's copy of their own). Only when the mode is
    // set as well: a `fchown` clears set-id bits, which a kept mode would
    // otherwise keep.
    let mut preserve = job.opts.preserve;
    if preserve.ownership
        && !matches!(mode, ModeRule::Keep)
        && job.dst_owner == Some((source.meta.uid(), source.meta.gid()))
    {
        preserve.ownership = false;
    }
    // Permission bits that are already right need no `fchmod` (when the
    // owner is also set, `fchown` clears set-id bits: then it is made).
    let wanted = match mode {
        ModeRule::Source => Some(source.meta.mode() & 0o7777),
        ModeRule::Set(m) => Some(m & 0o7777),
        ModeRule::Keep => None,
    };
    let mode = if wanted.is_some() && wanted == job.dst_mode && !preserve.ownership {
        ModeRule::Keep
    } else {
        mode
    };
    // A destination kept because it is not older is not touched at all.
    if job.dst_regular && outcome.strategy != Strategy::KeptNewer {
        meta::apply(
            &job.dst,
            job.dst_path,
            job.src,
            &source.meta,
            preserve,
            mode,
            &mut skipped,
        )?;
        if job.opts.fsync {
            fault!(Site::Fsync, job.dst.sync_all())
                .map_err(|e| CopyError::io("fsync", job.dst_path, e))?;
        }
    }
    Ok(CopyReport {
        strategy: outcome.strategy,
        bytes_cloned: outcome.bytes_cloned,
        bytes_copied: outcome.bytes_copied,
        hole_bytes: outcome.hole_bytes,
        len: outcome.len,
        destination: if created {
            Destination::Created
        } else if outcome.strategy.kept_destination() {
            Destination::Kept
        } else {
            Destination::Replaced
        },
        size_changed: outcome.size_changed,
        source_changed,
        retries: 0,
        fallbacks,
        metadata_skipped: skipped,
    })
}

#[allow(clippy::too_many_arguments)]
fn copy_atomic(
    opts: &CopyOptions,
    source: &Source,
    src_path: &Path,
    dir: BorrowedFd<'_>,
    name: &OsStr,
    dst_path: &Path,
    follow_dst: bool,
    defer: Option<crate::durable::Defer<'_>>,
) -> Result<Copied, CopyError> {
    // With a followed symlink, replace its target, not the link.
    let resolved = if follow_dst {
        guard::resolve_links(dir, name, dst_path)?
    } else {
        None
    };
    let (dir, name) = match &resolved {
        Some((d, n)) => (d.as_fd(), n.as_os_str()),
        None => (dir, name),
    };
    let existing = guard::probe(dir, name, false, dst_path)?;
    // A followed symlink whose target is missing: its target is created
    // only when that is allowed (the rename below would create it).
    if resolved.is_some() && !opts.write_through_dangling && matches!(existing, Existing::Missing) {
        return Err(CopyError::DanglingDestination {
            path: dst_path.to_path_buf(),
        });
    }
    let old = match &existing {
        Existing::File(meta) => {
            guard::check_same(&source.meta, meta, src_path, dst_path)?;
            Some((**meta).clone())
        }
        Existing::Symlink | Existing::Missing => None,
    };
    let existed = !matches!(existing, Existing::Missing);
    let no_clobber = opts.overwrite == Overwrite::NoClobber;
    if existed && no_clobber {
        return Err(CopyError::DestinationExists {
            path: dst_path.to_path_buf(),
        });
    }
    let mut update_fallback = None;
    if let Some(old) = &old {
        match crate::update::before_atomic(opts, source, dir, name, dst_path, old)? {
            crate::update::Atomic::Done(report) => return Ok(Copied::Now(report)),
            crate::update::Atomic::Proceed(f) => update_fallback = f,
        }
    }
    let (fd, tmp) = replace::create_temp(dir, name)
        .map_err(|e| CopyError::io("create a temporary beside", dst_path, e))?;
    let mode = if opts.preserve.mode {
        ModeRule::Source
    } else if let Some(old) = &old {
        // The replaced file's permission bits, never its setuid/setgid: the
        // new content is not what its owner made set-id.
        let src_owner = (source.meta.uid(), source.meta.gid());
        ModeRule::Set(meta::keep_set_ids(old.mode() & 0o7777, src_owner, None))
    } else {
        ModeRule::Set(source.meta.mode() & 0o777 & !meta::umask())
    };
    let mut job = Job {
        opts,
        src: &source.file,
        src_meta: &source.meta,
        src_path,
        src_dev: source.meta.dev(),
        dst_dev: None,
        len: source.meta.len(),
        dst: File::from(fd),
        dst_path,
        dst_dir: dir,
        dst_name: &tmp.name,
        dst_regular: true,
        dst_has_content: false,
        in_place: false,
        truncated: false,
        update_fallback,
        dst_mode: None,
        dst_owner: None,
        dst_meta: None,
    };
    let result = (|| {
        let mut report = run_and_finish(&mut job, source, mode, !existed)?;
        if !opts.preserve.ownership {
            if let Some(old) = &old {
                // Keep the replaced file's owner where we may.
                let me = job.dst.metadata().ok();
                if me.is_some_and(|m| m.uid() != old.uid() || m.gid() != old.gid()) {
                    if let Err(e) = fault!(
                        Site::Fchown,
                        std::os::unix::fs::fchown(&job.dst, Some(old.uid()), Some(old.gid()))
                    ) {
                        report
                            .metadata_skipped
                            .push(format!("owner of the replaced file: {e}"));
                    }
                }
            }
        }
        Ok(report)
    })();
    let report = match result {
        Ok(report) => report,
        Err(e) => {
            replace::remove(dir, &tmp.name);
            return Err(e);
        }
    };
    let file = job.dst;
    if crate::durable::needs_data_sync(opts, report.strategy) {
        // A changed source is copied again at once, not queued.
        if let Some(defer) = defer.filter(|_| !report.source_changed) {
            let pushed = defer
                .batch
                .push(defer, dir, tmp, name, dst_path, no_clobber, report);
            return match pushed {
                Ok(full) => Ok(Copied::Deferred { full }),
                Err((tmp, report)) => {
                    publish(opts, dir, &tmp, name, dst_path, no_clobber, report, &file)
                }
            };
        }
    }
    publish(opts, dir, &tmp, name, dst_path, no_clobber, report, &file)
}

/// The end of an atomic copy: sync the temporary's data when its strategy
/// needs it, rename it over the destination, and with `fsync` sync the
/// directory. On failure the temporary is removed.
#[allow(clippy::too_many_arguments)]
fn publish(
    opts: &CopyOptions,
    dir: BorrowedFd<'_>,
    tmp: &replace::Temp,
    name: &OsStr,
    dst_path: &Path,
    no_clobber: bool,
    report: CopyReport,
    file: &File,
) -> Result<Copied, CopyError> {
    let result = (|| {
        if crate::durable::needs_data_sync(opts, report.strategy) {
            crate::durable::sync_data(file, dst_path)?;
        }
        crate::durable::publish(dir, &tmp.name, name, dst_path, no_clobber)?;
        if opts.fsync {
            replace::sync_dir(dir)
                .map_err(|e| CopyError::io("fsync the directory of", dst_path, e))?;
        }
        Ok(Copied::Now(report))
    })();
    if result.is_err() {
        replace::remove(dir, &tmp.name);
    }
    result
}
