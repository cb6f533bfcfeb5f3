//! Copy files with copy-on-write: clone when the filesystem can, keep holes
//! when it cannot, never lose data, and report what really happened.
//!
//! ```no_run
//! use cow_copy::{CopyOptions, Reflink, Strategy};
//!
//! // A drop-in for std::fs::copy: same signature, same permission rules.
//! let n = cow_copy::copy("vm.img", "vm-copy.img")?;
//! println!("vm-copy.img: {n} bytes");
//!
//! // Or with options and a report that says what happened.
//! let report = CopyOptions::new()
//!     .reflink(Reflink::Auto)
//!     .atomic(true)
//!     .copy("vm.img", "vm-backup.img")?;
//! if report.strategy == Strategy::Cloned {
//!     println!("vm-backup.img: {} bytes, all shared with the source", report.len);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The strategy chain
//!
//! Every copy walks one ordered chain (see `chain.rs`); each step finishes,
//! declines, or fails the copy:
//!
//! 1. **Guard**: the source is opened (regular files only), the destination
//!    is opened *without* truncation, and the (device, inode) pairs of the
//!    two open descriptors are compared: copying a file onto itself through
//!    the same path, a hard link, a symlink or a bind mount is
//!    [`CopyError::SameFile`] and nothing is touched.
//! 2. **Update check** (the checking variants of [`Overwrite`], off by
//!    default): a destination that is not older than the source is kept
//!    ([`Overwrite::IfOlder`], times only); or one of the
//!    same size whose content is identical (same physical extents, or equal
//!    bytes, compared before anything is truncated) is skipped
//!    ([`Strategy::Skipped`]) or deduplicated against ([`Strategy::Deduped`])
//!    instead of rewritten, so its sharing with snapshots survives. See
//!    [`identical`].
//! 3. **Clone**: Linux `FICLONE` (after truncating the destination), macOS
//!    `fclonefileat` into a temporary sibling renamed over the destination,
//!    Windows ReFS `FSCTL_DUPLICATE_EXTENTS_TO_FILE`.
//! 4. **Kernel copy**: `copy_file_range` for each data segment found with
//!    `SEEK_DATA`/`SEEK_HOLE`, so holes stay holes (not with
//!    [`Reflink::Never`]).
//! 5. **User copy**: `read`/`write` at the same offsets, holes kept.
//!
//! A step declines only on a "fallback" error (EOPNOTSUPP, EXDEV, EINVAL,
//! ENOSYS, EPERM, ...) and only while it has written nothing; EIO, ENOSPC,
//! EDQUOT and ENOMEM always fail the copy.
//!
//! # Destination symlinks
//!
//! [`copy`] and [`CopyOptions::copy`] follow a destination symlink, like
//! `std::fs::copy`. `CopyOptions::copy_at` (Unix; used for trees) never
//! writes through a symlink: it replaces the entry.
//!
//! # Truth
//!
//! The [`CopyReport`] says [`Strategy::Cloned`] only when the bytes are
//! shared: after a clone the destination's extents are read back.

#![forbid(unsafe_code)]

use std::io;
use std::path::Path;

mod cancel;
#[cfg(unix)]
mod chain;
mod changed;
#[cfg(target_os = "linux")]
pub mod dedupe;
#[cfg(unix)]
mod durable;
mod engine;
mod errno;
mod error;
#[doc(hidden)]
pub mod fault;
#[cfg(unix)]
mod guard;
pub mod identical;
pub mod leftovers;
#[cfg(unix)]
mod meta;
mod observe;
mod options;
mod replace;
mod report;
#[cfg(unix)]
mod strategy;
mod sys;
mod update;
#[cfg(unix)]
mod xattr;

pub mod tree;

pub use error::CopyError;
pub use observe::{Moved, MovedFn};
pub use options::{CopyOptions, Overwrite, Preserve, Reflink, RemoveDestination, Sparse};
pub use report::{CopyReport, Destination, Fallback, SOURCE_CHANGED, Strategy};

/// The marker inside the names of temporary files written by atomic copies
/// (`.NAME.cow-tmp-XXXXXX`): tools can recognise leftovers after a crash.
pub const TEMP_MARKER: &str = ".cow-tmp-";

/// Removes the temporary files that atomic copies of this process are
/// writing right now, and makes atomic copies started after this call fail
/// before they create one. Returns how many files were removed.
///
/// For a signal handler that is about to end the process (`cow cp` calls it
/// on SIGINT, SIGTERM and SIGHUP): without it, an interrupted atomic copy
/// leaves its `.NAME.cow-tmp-XXXXXX` behind. The destinations are not
/// touched: each is still the old file, or already the complete new one.
/// Temporaries are listed by directory descriptor and name, so a directory
/// renamed meanwhile does not redirect the removal (on Windows, which has
/// no such descriptors, by path).
///
/// ```no_run
/// // In a handler that runs on SIGINT, just before exiting:
/// let removed = cow_copy::remove_temporaries();
/// eprintln!("interrupted; removed {removed} temporary files");
/// std::process::exit(130);
/// ```
pub fn remove_temporaries() -> usize {
    #[cfg(unix)]
    {
        replace::remove_all()
    }
    #[cfg(windows)]
    {
        engine::remove_all()
    }
    #[cfg(not(any(unix, windows)))]
    {
        0
    }
}

/// Copies the contents of `from` to `to`, like [`std::fs::copy`]: the
/// destination is created or replaced, gets the source's permission bits,
/// a destination symlink is followed, and the number of bytes in the
/// destination is returned.
///
/// Unlike `std::fs::copy` it clones when the filesystem can, keeps holes,
/// and refuses to copy a file onto itself (error kind `InvalidInput`)
/// instead of truncating it.
pub fn copy<P: AsRef<Path>, Q: AsRef<Path>>(from: P, to: Q) -> io::Result<u64> {
    CopyOptions::new()
        .copy(from, to)
        .map(|r| r.len)
        .map_err(io::Error::from)
}
