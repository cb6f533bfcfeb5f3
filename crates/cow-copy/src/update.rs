//! Step 2 of the chain: the update policy.
//!
//! This is the slot for "updates that keep sharing" (DESIGN.md finding 2):
//! when the destination exists, is on the same device and has the same
//! length, an identical destination can be left alone (or deduplicated
//! against the source) instead of rewritten. It runs before anything is
//! truncated: `job.dst` still holds the old content (`job.dst_has_content`),
//! opened read-write when permissions allow.
//!
//! Today the policy always says "proceed" (the next steps copy).

use crate::chain::{Job, Step};

/// Decides whether the destination needs the copy at all. Declines (copy
/// proceeds) unless the policy finished the job.
pub(crate) fn step(_job: &mut Job<'_>) -> Step {
    Step::Declined(None)
}
