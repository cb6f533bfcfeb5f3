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

use crate::chain::{Job, Outcome, Step};
use crate::identical::{self, Decision};
use crate::report::{Fallback, Strategy};
use crate::{CopyError, Update};

/// Decides whether the destination needs the copy at all. Declines (copy
/// proceeds) unless the policy finished the job.
pub(crate) fn step(job: &mut Job<'_>) -> Step {
    let dedupe = match job.opts.update {
        Update::All => return Step::Declined(None),
        Update::IfDifferent => false,
        Update::IfDifferentDedupe => true,
    };
    // Only an existing regular file still holding its old content can be
    // identical (an atomic copy writes a new temporary: nothing to compare).
    if !job.in_place || !job.dst_regular || job.truncated {
        return Step::Declined(None);
    }
    let src_meta = match job.src.metadata() {
        Ok(m) => m,
        Err(e) => return Step::Failed(CopyError::io("stat source", job.src_path, e)),
    };
    let dst_meta = match job.dst.metadata() {
        Ok(m) => m,
        Err(e) => return Step::Failed(CopyError::io("stat destination", job.dst_path, e)),
    };
    let decision = match identical::decide(job.src, &src_meta, &job.dst, &dst_meta, dedupe) {
        Ok(d) => d,
        // Nothing was written: a failed check is a check not made.
        Err(e) if crate::errno::is_fallback(&e) => {
            return Step::Declined(Some(Fallback {
                strategy: Strategy::Skipped,
                errno: e.raw_os_error(),
                reason: format!("could not compare with the destination: {e}"),
            }));
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
                job.update_fallback = Some(Fallback {
                    strategy: Strategy::Deduped,
                    errno: None,
                    reason: format!("identical, but not deduplicated: {why}"),
                });
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
        Decision::Proceed { reason, .. } => Step::Declined(Some(Fallback {
            strategy: Strategy::Skipped,
            errno: None,
            reason: reason.to_string(),
        })),
    }
}
