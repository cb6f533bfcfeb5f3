//! Step 3: share the source's blocks. The per-OS policy is in
//! `clone/linux.rs` (FICLONE, the per-device "cannot clone" cache, the
//! FIEMAP read-back that decides "cloned"), `clone/macos.rs` (clone into a
//! temporary and rename it over) and `clone/other.rs` (no clone call).
//!
//! `reflink = never` skips it. With `reflink = always` a refusal is
//! [`CopyError::ReflinkUnsupported`]; before an existing destination is
//! truncated for the clone, the clone is tried on an anonymous temporary in
//! the same directory, so an unsupported filesystem leaves it untouched.

use crate::chain::{Job, Step};
use crate::report::{Fallback, Strategy};
use crate::{CopyError, Moved, Reflink, errno};

#[cfg(any(target_os = "linux", target_os = "android"))]
mod linux;
#[cfg(target_os = "macos")]
mod macos;
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "macos")))]
mod other;

#[cfg(any(target_os = "linux", target_os = "android"))]
use linux::{clone, clone_probe};
#[cfg(target_os = "macos")]
use macos::{clone, clone_probe};
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "macos")))]
use other::{clone, clone_probe};

/// Runs the platform clone.
pub(crate) fn step(job: &mut Job<'_>) -> Step {
    let always = job.opts.reflink == Reflink::Always;
    if always && !job.dst_regular {
        // A FIFO or device cannot share blocks; `always` never copies.
        return Step::Failed(CopyError::ReflinkUnsupported {
            path: job.dst_path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "the destination is not a regular file",
            ),
        });
    }
    if job.opts.reflink == Reflink::Never || !job.dst_regular {
        return Step::Declined(None);
    }
    if always && job.in_place && job.dst_has_content {
        if let Err(e) = clone_probe(job) {
            return Step::Failed(CopyError::ReflinkUnsupported {
                path: job.dst_path.to_path_buf(),
                source: e,
            });
        }
    }
    match clone(job) {
        Ok(outcome) => {
            let o = &job.opts.observer;
            o.moved(Moved::Cloned(outcome.bytes_cloned));
            if outcome.bytes_copied > 0 {
                o.moved(Moved::Copied(outcome.bytes_copied));
            }
            Step::Done(outcome)
        }
        Err(CloneError::Refused(e)) => {
            let why = format!("clone refused: {e}");
            refused(job, always, e, why)
        }
        Err(CloneError::Known(e)) => {
            let why = format!("clone declined: device known not to clone ({e})");
            refused(job, always, e, why)
        }
        Err(CloneError::Failed(e)) => Step::Failed(e),
    }
}

/// Why a platform clone did not finish.
pub(super) enum CloneError {
    /// Refused before anything was written (a fallback errno).
    Refused(std::io::Error),
    /// Not tried: an earlier call on the same device was refused with this
    /// filesystem-wide error.
    #[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
    Known(std::io::Error),
    /// Failed for good.
    #[cfg_attr(
        not(any(target_os = "linux", target_os = "android", target_os = "macos")),
        allow(dead_code)
    )]
    Failed(CopyError),
}

#[cfg_attr(
    not(any(target_os = "linux", target_os = "android", target_os = "macos")),
    allow(dead_code)
)]
impl CloneError {
    /// Sorts an error from the clone call by the errno table.
    pub(super) fn from_io(job: &Job<'_>, op: &'static str, e: std::io::Error) -> Self {
        if errno::is_fallback(&e) {
            CloneError::Refused(e)
        } else {
            CloneError::Failed(CopyError::io(op, job.dst_path, e))
        }
    }
}

/// A clone the filesystem will not do: a failure under `reflink = always`,
/// otherwise a recorded fallback to the next strategy.
fn refused(job: &Job<'_>, always: bool, e: std::io::Error, why: String) -> Step {
    if always {
        return Step::Failed(CopyError::ReflinkUnsupported {
            path: job.dst_path.to_path_buf(),
            source: e,
        });
    }
    Step::Declined(Some(Fallback {
        strategy: Strategy::Cloned,
        errno: e.raw_os_error(),
        reason: why,
    }))
}
