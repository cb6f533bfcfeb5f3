//! Live sources (docs/architecture.md, invariant 10): a copy that reads the source's
//! bytes compares its size, modification time and change time (to the
//! nanosecond) from when it was opened with after the bytes were read. A
//! clone shares the source's extents in one filesystem transaction: it is a
//! point-in-time snapshot and needs no check.

//!
//! Windows has no change time in std: there the size and the last write
//! time are compared.

use std::fs::{File, Metadata};
#[cfg(unix)]
use std::os::unix::fs::MetadataExt;
use std::time::SystemTime;

use crate::report::Strategy;

/// What is compared: length, mtime and (Unix) ctime with nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    len: u64,
    mtime: Option<SystemTime>,
    ctime: Option<(i64, i64)>,
}

impl Stamp {
    fn of(meta: &Metadata) -> Stamp {
        Stamp {
            len: meta.len(),
            mtime: meta.modified().ok(),
            ctime: ctime(meta),
        }
    }
}

/// The change time, to the nanosecond.
#[cfg(unix)]
fn ctime(meta: &Metadata) -> Option<(i64, i64)> {
    Some((meta.ctime(), meta.ctime_nsec()))
}

/// No change time in std on Windows.
#[cfg(not(unix))]
fn ctime(_meta: &Metadata) -> Option<(i64, i64)> {
    None
}

/// Whether `strategy` read the source's bytes (so a concurrent writer could
/// have mixed old and new content into the copy).
fn reads_data(strategy: Strategy) -> bool {
    matches!(
        strategy,
        Strategy::KernelCopy | Strategy::UserCopy | Strategy::Mixed | Strategy::SystemCopy
    )
}

/// Whether the source (`file`, whose status was `before` when it was
/// opened) changed while `strategy` read it. A source that cannot be
/// stat'ed again counts as changed: the copy cannot vouch for it.
pub(crate) fn source_changed(file: &File, before: &Metadata, strategy: Strategy) -> bool {
    if !reads_data(strategy) {
        return false;
    }
    // `File::metadata` is `statx` on Linux (nanosecond times).
    match file.metadata() {
        Ok(after) => Stamp::of(&after) != Stamp::of(before),
        Err(_) => true,
    }
}
