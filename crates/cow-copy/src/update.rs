//! Step 2 of the chain: the update policy ([`Update`]).
//!
//! "Updates that keep sharing" (DESIGN.md finding 2): when the destination
//! exists with the same length, an identical destination is left alone (or
//! deduplicated against the source) instead of rewritten. It runs before
//! anything is truncated: `job.dst` still holds the old content, opened
//! read-write when permissions allow. The decision itself is
//! [`identical::decide`]; this step only maps it onto the chain:
//!
//! - identical => [`Step::Done`] with [`Strategy::Skipped`] or
//!   [`Strategy::Deduped`] (the destination is never written; metadata is
//!   still applied by the options afterwards);
//! - different or not checkable => [`Step::Declined`] with a [`Fallback`]
//!   naming why (sizes differ, contents differ, destination not readable),
//!   and the clone / copy steps run on the untruncated destination.
//!
//! An atomic copy writes a temporary and renames it over the destination,
//! so there the check runs before the temporary is created
//! ([`before_atomic`]): an identical destination is left in place, with no
//! temporary and no rename.

use std::ffi::OsStr;
use std::fs::{File, Metadata};
use std::os::fd::BorrowedFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rustix::fs::{Mode, OFlags};

use crate::chain::{Job, Outcome, Step};
use crate::guard::Source;
use crate::identical::{self, Decision};
use crate::meta::{self, ModeRule};
use crate::report::{CopyReport, Destination, Fallback, Strategy};
use crate::{CopyError, CopyOptions, Update};

/// Decides whether the destination needs the copy at all. Declines (copy
/// proceeds) unless the policy finished the job.
pub(crate) fn step(job: &mut Job<'_>) -> Step {
    match job.opts.update {
        Update::All => return Step::Declined(None),
        Update::IfOlder => return older_step(job),
        Update::IfDifferent | Update::IfDifferentDedupe | Update::IfDifferentTrustMtime => {}
    }
    // Only an existing regular file still holding its old content can be
    // identical (an atomic copy writes a new temporary: nothing to compare).
    if !job.in_place || !job.dst_regular || job.truncated {
        return Step::Declined(None);
    }
    let (src_meta, dst_meta) = match both_meta(job) {
        Ok(m) => m,
        Err(e) => return Step::Failed(e),
    };
    let decision =
        match identical::decide_update(job.opts.update, job.src, &src_meta, &job.dst, &dst_meta) {
            Ok(d) => d,
            // Nothing was written: a failed check is a check not made.
            Err(e) if crate::errno::is_fallback(&e) => {
                return Step::Declined(Some(Fallback::not_compared(
                    "compare with the destination",
                    &e,
                )));
            }
            Err(e) => return Step::Failed(CopyError::io("compare with", job.dst_path, e)),
        };
    let len = src_meta.len();
    match decision {
        Decision::Skip {
            dedupe_not_possible,
            ..
        } => {
            if let Some(why) = dedupe_not_possible {
                job.update_fallback = Some(Fallback::not_deduplicated(why));
            }
            Step::Done(Outcome {
                strategy: Strategy::Skipped,
                bytes_cloned: 0,
                bytes_copied: 0,
                hole_bytes: 0,
                len,
                size_changed: false,
            })
        }
        Decision::Deduped { bytes_shared, .. } => Step::Done(Outcome {
            strategy: Strategy::Deduped,
            bytes_cloned: bytes_shared,
            bytes_copied: 0,
            hole_bytes: len.saturating_sub(bytes_shared),
            len,
            size_changed: false,
        }),
        Decision::Proceed { reason, .. } => Step::Declined(Some(Fallback::differs(reason))),
    }
}

/// [`Update::IfOlder`] in place: an existing destination that is not older
/// than the source is kept, untouched.
fn older_step(job: &mut Job<'_>) -> Step {
    if !job.in_place || job.truncated {
        return Step::Declined(None);
    }
    let (src_meta, dst_meta) = match both_meta(job) {
        Ok(m) => m,
        Err(e) => return Step::Failed(e),
    };
    if is_older(&dst_meta, &src_meta) {
        return Step::Declined(Some(Fallback::destination_older()));
    }
    Step::Done(kept_newer(src_meta.len()))
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

/// Whether `dst` was modified before `src` (to the nanosecond).
fn is_older(dst: &Metadata, src: &Metadata) -> bool {
    (dst.mtime(), dst.mtime_nsec()) < (src.mtime(), src.mtime_nsec())
}

/// The outcome of a destination kept because it is not older.
fn kept_newer(len: u64) -> Outcome {
    Outcome {
        strategy: Strategy::KeptNewer,
        bytes_cloned: 0,
        bytes_copied: 0,
        hole_bytes: 0,
        len,
        size_changed: false,
    }
}

/// What [`before_atomic`] found.
pub(crate) enum Atomic {
    /// The destination is identical and was left in place: the copy is done.
    Done(CopyReport),
    /// Write the temporary as usual; `Some` says why the check declined.
    Proceed(Option<Fallback>),
}

/// Step 2 for an atomic copy, before the temporary exists: opens the
/// existing destination `name` in `dir` read-only (never following a
/// symlink, and only if it is still the inode `old` describes) and, when its
/// content is identical, applies the metadata the options ask for and
/// finishes without a temporary or a rename.
pub(crate) fn before_atomic(
    opts: &CopyOptions,
    source: &Source,
    dir: BorrowedFd<'_>,
    name: &OsStr,
    dst_path: &Path,
    old: &Metadata,
) -> Result<Atomic, CopyError> {
    match opts.update {
        Update::All => return Ok(Atomic::Proceed(None)),
        Update::IfDifferent | Update::IfDifferentDedupe | Update::IfDifferentTrustMtime => {}
        Update::IfOlder => {
            // `old` is the entry's status: a destination that is not older is
            // left as it is, so nothing needs to be opened.
            if is_older(old, &source.meta) {
                return Ok(Atomic::Proceed(Some(Fallback::destination_older())));
            }
            return Ok(Atomic::Done(CopyReport {
                strategy: Strategy::KeptNewer,
                bytes_cloned: 0,
                bytes_copied: 0,
                hole_bytes: 0,
                len: source.meta.len(),
                destination: Destination::Kept,
                size_changed: false,
                source_changed: false,
                retries: 0,
                fallbacks: Vec::new(),
                metadata_skipped: Vec::new(),
            }));
        }
    }
    if !old.is_file() {
        return Ok(Atomic::Proceed(None));
    }
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY;
    let dst = match rustix::fs::openat(dir, name, flags | OFlags::NONBLOCK, Mode::empty()) {
        Ok(fd) => File::from(fd),
        Err(e) => {
            return Ok(Atomic::Proceed(Some(Fallback::not_compared(
                "open the destination to compare",
                &e.into(),
            ))));
        }
    };
    let dst_meta = dst
        .metadata()
        .map_err(|e| CopyError::io("stat destination", dst_path, e))?;
    if dst_meta.dev() != old.dev() || dst_meta.ino() != old.ino() || !dst_meta.is_file() {
        // Replaced under us: the rename will replace whatever is there.
        return Ok(Atomic::Proceed(None));
    }
    let decision =
        match identical::decide_update(opts.update, &source.file, &source.meta, &dst, &dst_meta) {
            Ok(d) => d,
            Err(e) if crate::errno::is_fallback(&e) => {
                return Ok(Atomic::Proceed(Some(Fallback::not_compared(
                    "compare with the destination",
                    &e,
                ))));
            }
            Err(e) => return Err(CopyError::io("compare with", dst_path, e)),
        };
    let len = source.meta.len();
    let mut fallbacks = Vec::new();
    let (strategy, bytes_cloned) = match decision {
        Decision::Skip {
            dedupe_not_possible,
            ..
        } => {
            if let Some(why) = dedupe_not_possible {
                fallbacks.push(Fallback::not_deduplicated(why));
            }
            (Strategy::Skipped, 0)
        }
        Decision::Deduped { bytes_shared, .. } => (Strategy::Deduped, bytes_shared),
        Decision::Proceed { reason, .. } => {
            return Ok(Atomic::Proceed(Some(Fallback::differs(reason))));
        }
    };
    // The destination stays; it gets the metadata an atomic copy would have
    // given it (its own mode unless the mode is preserved).
    let mode = if opts.preserve.mode {
        ModeRule::Source
    } else {
        ModeRule::Keep
    };
    let mut skipped = Vec::new();
    meta::apply(
        &dst,
        dst_path,
        &source.file,
        &source.meta,
        opts.preserve,
        mode,
        &mut skipped,
    )?;
    Ok(Atomic::Done(CopyReport {
        strategy,
        bytes_cloned,
        bytes_copied: 0,
        hole_bytes: if strategy == Strategy::Deduped {
            len.saturating_sub(bytes_cloned)
        } else {
            0
        },
        len,
        destination: Destination::Kept,
        size_changed: false,
        source_changed: false,
        retries: 0,
        fallbacks,
        metadata_skipped: skipped,
    }))
}
