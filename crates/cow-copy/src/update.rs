//! The checks of [`Overwrite`] (its `IfDifferent*` and `IfOlder`
//! variants): the one decision whether an existing
//! destination is kept or copied over, [`check`], made before anything is
//! written. Its callers only map the answer: the chain's step 2 and the
//! atomic pre-check on Unix (`update/unix.rs`), the Windows engine.
//!
//! "Updates that keep sharing" (docs/architecture.md): when the destination
//! exists with the same length, an identical destination is left alone (or
//! deduplicated against the source) instead of rewritten. The content
//! decision itself is [`identical::decide_update`]; [`Overwrite::IfOlder`]
//! only compares modification times.

use std::borrow::Borrow;
use std::fs::{File, Metadata};
use std::io;
use std::path::Path;

use crate::identical::{self, Decision};
use crate::report::{CopyReport, Destination, Fallback, Strategy};
use crate::{CopyError, CopyOptions, Overwrite, Reflink, errno};

#[cfg(unix)]
mod unix;

#[cfg(unix)]
pub(crate) use unix::{Atomic, before_atomic, step};

/// What [`check`] says about an existing destination.
pub(crate) enum Check {
    /// Keep the destination as it is.
    Keep(Kept),
    /// Copy over it; `Some` says why the policy did not keep it.
    Copy(Option<Fallback>),
}

/// A destination the update policy keeps.
pub(crate) struct Kept {
    /// [`Strategy::Skipped`], [`Strategy::Deduped`] or
    /// [`Strategy::KeptNewer`].
    pub(crate) strategy: Strategy,
    /// The bytes now shared with the source (dedupe only).
    pub(crate) bytes_shared: u64,
    /// Dedupe was asked for and was not possible.
    pub(crate) fallback: Option<Fallback>,
}

impl Kept {
    /// Bytes of a `len`-byte destination that are holes in the report.
    pub(crate) fn hole_bytes(&self, len: u64) -> u64 {
        if self.strategy == Strategy::Deduped {
            len.saturating_sub(self.bytes_shared)
        } else {
            0
        }
    }

    /// The report of a copy that kept its destination (the one place such
    /// a report is built, on every platform).
    pub(crate) fn report(self, len: u64, metadata_skipped: Vec<String>) -> CopyReport {
        CopyReport {
            strategy: self.strategy,
            bytes_cloned: self.bytes_shared,
            bytes_copied: 0,
            hole_bytes: self.hole_bytes(len),
            len,
            destination: Destination::Kept,
            size_changed: false,
            source_changed: false,
            retries: 0,
            fallbacks: self.fallback.into_iter().collect(),
            metadata_skipped,
        }
    }
}

/// The destination, as [`check`]'s opener found it (short-lived: the
/// size of a `Metadata` does not matter).
#[allow(clippy::large_enum_variant)]
pub(crate) enum Opened<F> {
    /// Open for reading, with its status.
    File(F, Metadata),
    /// It could not be opened: nothing is compared.
    Refused(io::Error),
    /// The entry is no longer the file that was looked at: copy (Unix:
    /// compared by (dev, ino)).
    #[cfg_attr(windows, allow(dead_code))]
    Replaced,
}

/// Whether `dst` (its status `dst_meta`, as the caller saw it) must be
/// copied over or kept, under `opts.overwrite`. The destination is opened
/// with `open` only when its content is compared; it is never written.
///
/// A destination that shares no block is cloned over instead of compared
/// when the copy would clone and keep the source's times
/// ([`identical::decide_update`]'s `reclone`): the original proposal's
/// "bail if the target is not shared" (docs/updates.md).
pub(crate) fn check<F: Borrow<File>>(
    opts: &CopyOptions,
    src: &File,
    src_meta: &Metadata,
    dst_meta: &Metadata,
    dst_path: &Path,
    open: impl FnOnce() -> Result<Opened<F>, CopyError>,
) -> Result<Check, CopyError> {
    let policy = opts.overwrite;
    if !policy.checks_destination() {
        return Ok(Check::Copy(None));
    }
    if policy == Overwrite::IfOlder {
        let (Ok(d), Ok(s)) = (dst_meta.modified(), src_meta.modified()) else {
            return Ok(Check::Copy(None));
        };
        // Not older than the source (to the nanosecond): left alone, like
        // GNU `cp -u`.
        return Ok(if d < s {
            Check::Copy(Some(Fallback::destination_older()))
        } else {
            Check::Keep(Kept {
                strategy: Strategy::KeptNewer,
                bytes_shared: 0,
                fallback: None,
            })
        });
    }
    // Only a regular file can be identical.
    if !dst_meta.is_file() {
        return Ok(Check::Copy(None));
    }
    let not_compared =
        |what: &str, e: &io::Error| Check::Copy(Some(Fallback::not_compared(what, e)));
    let (dst, dst_meta) = match open()? {
        Opened::File(f, m) => (f, m),
        Opened::Refused(e) => return Ok(not_compared("open the destination to compare", &e)),
        Opened::Replaced => return Ok(Check::Copy(None)),
    };
    let reclone = opts.preserve.timestamps && opts.reflink != Reflink::Never;
    let decided = identical::decide_update(policy, reclone, src, src_meta, dst.borrow(), &dst_meta);
    let decision = match decided {
        Ok(d) => d,
        // Nothing was written: a failed check is a check not made.
        Err(e) if errno::is_fallback(&e) => {
            return Ok(not_compared("compare with the destination", &e));
        }
        Err(e) => return Err(CopyError::io("compare with", dst_path, e)),
    };
    Ok(match decision {
        Decision::Skip {
            dedupe_not_possible,
            ..
        } => Check::Keep(Kept {
            strategy: Strategy::Skipped,
            bytes_shared: 0,
            fallback: dedupe_not_possible.map(Fallback::not_deduplicated),
        }),
        Decision::Deduped { bytes_shared, .. } => Check::Keep(Kept {
            strategy: Strategy::Deduped,
            bytes_shared,
            fallback: None,
        }),
        Decision::Proceed { reason, .. } => Check::Copy(Some(Fallback::differs(reason))),
    })
}
