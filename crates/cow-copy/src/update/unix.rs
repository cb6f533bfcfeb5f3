//! The update policy on Unix: the chain's step 2 ([`step`]) on the open,
//! untruncated destination, and the same check for an atomic copy before
//! its temporary exists ([`before_atomic`]). Both only map [`check`]'s
//! answer.
//!
//! - keep => [`Step::Done`] with [`Strategy::Skipped`],
//!   [`Strategy::Deduped`] or [`Strategy::KeptNewer`] (the destination is
//!   never written; metadata is still applied by the options afterwards,
//!   except to a destination kept because it is newer);
//! - copy => [`Step::Declined`] with a [`Fallback`] naming why (sizes
//!   differ, contents differ, destination not readable, older), and the
//!   clone / copy steps run on the untruncated destination.
//!
//! An atomic copy writes a temporary and renames it over the destination,
//! so there the check runs before the temporary is created: a kept
//! destination is left in place, with no temporary and no rename.

use std::ffi::OsStr;
use std::fs::{File, Metadata};
use std::os::fd::BorrowedFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rustix::fs::{Mode, OFlags};

use super::{Check, Opened, check};
use crate::chain::{Job, Outcome, Step};
use crate::guard::Source;
use crate::meta::{self, ModeRule};
use crate::report::{CopyReport, Fallback, Strategy};
use crate::{CopyError, CopyOptions};

/// Decides whether the destination needs the copy at all. Declines (copy
/// proceeds) unless the policy finished the job.
pub(crate) fn step(job: &mut Job<'_>) -> Step {
    // Only an existing file still holding its old content can be kept (an
    // atomic copy writes a new temporary: nothing to compare).
    if !job.opts.overwrite.checks_destination() || !job.in_place || job.truncated {
        return Step::Declined(None);
    }
    // Both were stat'ed when they were opened, a moment ago.
    let (src_meta, dst_meta) = match (job.src_meta, job.dst_meta) {
        (s, Some(d)) => (s.clone(), d.clone()),
        (_, None) => match both_meta(job) {
            Ok(m) => m,
            Err(e) => return Step::Failed(e),
        },
    };
    let opened = || Ok(Opened::File(&job.dst, dst_meta.clone()));
    match check(
        job.opts,
        job.src,
        &src_meta,
        &dst_meta,
        job.dst_path,
        opened,
    ) {
        Ok(Check::Keep(kept)) => {
            let len = src_meta.len();
            let outcome = Outcome {
                strategy: kept.strategy,
                bytes_cloned: kept.bytes_shared,
                bytes_copied: 0,
                hole_bytes: kept.hole_bytes(len),
                len,
                size_changed: false,
            };
            job.update_fallback = kept.fallback;
            Step::Done(outcome)
        }
        Ok(Check::Copy(why)) => Step::Declined(why),
        Err(e) => Step::Failed(e),
    }
}

/// The status of the open source and destination.
fn both_meta(job: &Job<'_>) -> Result<(Metadata, Metadata), CopyError> {
    let src = job
        .src
        .metadata()
        .map_err(|e| CopyError::io("stat source", job.src_path, e))?;
    let dst = job
        .dst
        .metadata()
        .map_err(|e| CopyError::io("stat destination", job.dst_path, e))?;
    Ok((src, dst))
}

/// What [`before_atomic`] found.
pub(crate) enum Atomic {
    /// The destination was kept in place: the copy is done.
    Done(CopyReport),
    /// Write the temporary as usual; `Some` says why the check declined.
    Proceed(Option<Fallback>),
}

/// Step 2 for an atomic copy, before the temporary exists: `old` is the
/// status of the existing destination `name` in `dir`. Its content is read
/// through a read-only open that never follows a symlink, and only if it is
/// still the inode `old` describes. A destination kept for its content
/// gets the metadata the options ask for; one kept because it is newer is
/// not touched at all.
pub(crate) fn before_atomic(
    opts: &CopyOptions,
    source: &Source,
    dir: BorrowedFd<'_>,
    name: &OsStr,
    dst_path: &Path,
    old: &Metadata,
) -> Result<Atomic, CopyError> {
    let open = || {
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY;
        let dst = match rustix::fs::openat(dir, name, flags | OFlags::NONBLOCK, Mode::empty()) {
            Ok(fd) => File::from(fd),
            Err(e) => return Ok(Opened::Refused(e.into())),
        };
        let meta = dst
            .metadata()
            .map_err(|e| CopyError::io("stat destination", dst_path, e))?;
        if meta.dev() != old.dev() || meta.ino() != old.ino() || !meta.is_file() {
            // Replaced under us: the rename will replace whatever is there.
            return Ok(Opened::Replaced);
        }
        Ok(Opened::File(dst, meta))
    };
    let mut reader = None;
    let kept = match check(opts, &source.file, &source.meta, old, dst_path, || {
        open().map(|o| match o {
            Opened::File(f, m) => {
                let f: &File = reader.insert(f);
                Opened::File(f, m)
            }
            Opened::Refused(e) => Opened::Refused(e),
            Opened::Replaced => Opened::Replaced,
        })
    })? {
        Check::Keep(kept) => kept,
        Check::Copy(why) => return Ok(Atomic::Proceed(why)),
    };
    let mut skipped = Vec::new();
    if let Some(dst) = &reader {
        // The destination stays; it gets the metadata an atomic copy would
        // have given it (its own mode unless the mode is preserved).
        let mode = if opts.preserve.mode {
            ModeRule::Source
        } else {
            ModeRule::Keep
        };
        meta::apply(
            dst,
            dst_path,
            &source.file,
            &source.meta,
            opts.preserve,
            mode,
            &mut skipped,
        )?;
    }
    debug_assert!(reader.is_some() || kept.strategy == Strategy::KeptNewer);
    Ok(Atomic::Done(kept.report(source.meta.len(), skipped)))
}
