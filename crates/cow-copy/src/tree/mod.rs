//! Copy a whole tree: directories, files, symlinks, FIFOs and hard links.
//!
//! ```no_run
//! use cow_copy::tree::TreeOptions;
//! use cow_copy::{CopyOptions, Reflink};
//!
//! let opts = TreeOptions::new()
//!     .copy_options(CopyOptions::new().reflink(Reflink::Auto))
//!     .preserve_hard_links(true);
//! match opts.copy("src", "dst") {
//!     Ok(report) => println!(
//!         "{} files, {} bytes shared",
//!         report.totals.files, report.totals.bytes_cloned
//!     ),
//!     Err(e) => eprintln!("{e}"),
//! }
//! ```
//!
//! On Unix the walk holds directory descriptors: every entry is opened,
//! created or linked relative to its parent's descriptor (`openat`,
//! `mkdirat`, `symlinkat`, `linkat`) with `O_NOFOLLOW`, and no path is ever
//! resolved again from the top. A directory swapped for a symlink while the
//! copy runs is refused rather than followed, so writes cannot leave the
//! destination. Files are copied in parallel by the single-file engine
//! (`CopyOptions::copy_at` on Unix); a directory is created before its
//! children and gets its final mode and times after them.
//!
//! `dst` names the copy itself (not a directory to copy into): if it does not
//! exist it is created; if it is an existing directory and `src` is a
//! directory, the trees are merged (entries in `dst` that `src` does not have
//! are left alone). The parent of `dst` is resolved as a path; its last
//! component is never followed if it is a symlink.

use std::path::Path;

mod error;
#[cfg(target_os = "macos")]
mod macos;
mod options;
#[cfg(not(any(unix, windows)))]
mod other;
mod report;
mod shared;
#[cfg(unix)]
mod unix;
#[cfg(windows)]
mod windows;

pub use error::TreeError;
pub use options::{Dereference, Progress, ProgressFn, TreeOptions};
pub use report::{
    EntryAction, EntryKind, TreeEntry, TreeFailure, TreeMethod, TreeReport, TreeTotals, TreeWarning,
};
#[cfg(unix)]
pub(crate) use shared::lock;
pub(crate) use shared::{Count, Shared, with_pool};

#[cfg(not(any(unix, windows)))]
use other as imp;
#[cfg(unix)]
use unix as imp;
#[cfg(windows)]
use windows as imp;

impl TreeOptions {
    /// Copies the tree at `src` to `dst`.
    ///
    /// `src` may be a directory (copied recursively), a regular file, a symlink
    /// (recreated as a symlink unless [`Dereference`] says to follow it), a FIFO,
    /// or a device or socket (see [`TreeOptions::copy_special`]). `dst` is the
    /// path of the copy; an existing directory there is merged into.
    ///
    /// Returns the report when every entry was copied, and
    /// [`TreeError::Incomplete`] (which carries the report) when some failed.
    /// A destination inside the source is refused before anything is written,
    /// by comparing the (device, inode) of the destination's existing ancestors
    /// with the source's.
    pub fn copy(
        &self,
        src: impl AsRef<Path>,
        dst: impl AsRef<Path>,
    ) -> Result<TreeReport, TreeError> {
        let (src, dst, opts) = (src.as_ref(), dst.as_ref(), self);
        #[cfg(target_os = "macos")]
        if let Some(result) = macos::try_clone_tree(src, dst, opts) {
            return result;
        }
        let report = imp::copy_tree(src, dst, opts)?;
        if report.failures.is_empty() {
            Ok(report)
        } else {
            Err(TreeError::Incomplete {
                report: Box::new(report),
            })
        }
    }
}
