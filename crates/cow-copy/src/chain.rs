//! The ordered strategy chain (docs/architecture.md, "The path of one copy").
//!
//! 1. guard (done by the caller: [`crate::guard`] opened both files and
//!    compared (dev, ino) before this runs),
//! 2. update policy ([`crate::update`]),
//! 3. clone, 4. kernel copy, 5. user-space copy ([`crate::strategy`]).
//!
//! Each step finishes the copy ([`Step::Done`]), declines
//! ([`Step::Declined`], the next step runs) or fails the copy
//! ([`Step::Failed`]). A step may only decline while it has written nothing.

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::BorrowedFd;
use std::path::Path;

use crate::fault::{Site, fault};
use crate::report::{Fallback, Strategy};
use crate::{CopyError, CopyOptions, Reflink, Sparse};

/// What one step of the chain did.
pub(crate) enum Step {
    /// The copy is complete.
    Done(Outcome),
    /// The step does not apply; `Some` records a strategy that was tried.
    Declined(Option<Fallback>),
    /// The copy failed.
    Failed(CopyError),
}

/// The data part of a report, as produced by the step that finished.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Outcome {
    pub(crate) strategy: Strategy,
    pub(crate) bytes_cloned: u64,
    pub(crate) bytes_copied: u64,
    pub(crate) hole_bytes: u64,
    pub(crate) len: u64,
    pub(crate) size_changed: bool,
}

/// Everything a step needs: both open files and where the destination lives.
pub(crate) struct Job<'a> {
    pub(crate) opts: &'a CopyOptions,
    pub(crate) src: &'a File,
    /// The source's status, taken when it was opened.
    pub(crate) src_meta: &'a std::fs::Metadata,
    pub(crate) src_path: &'a Path,
    /// The device the source lives on.
    #[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
    pub(crate) src_dev: u64,
    /// The device the destination lives on, when known without a call.
    #[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
    pub(crate) dst_dev: Option<u64>,
    /// The source's length when it was opened.
    pub(crate) len: u64,
    /// The file receiving the data (the real destination, or the atomic
    /// temporary). A strategy may replace it (macOS clone-to-temp).
    pub(crate) dst: File,
    /// The destination path as the caller named it (for messages).
    pub(crate) dst_path: &'a Path,
    /// The directory holding `dst_name` (the clone steps of Linux and
    /// macOS use it).
    #[cfg_attr(
        not(any(target_os = "linux", target_os = "android", target_os = "macos")),
        allow(dead_code)
    )]
    pub(crate) dst_dir: BorrowedFd<'a>,
    /// The entry currently holding `dst` (the temporary in atomic mode).
    #[cfg_attr(
        not(any(target_os = "linux", target_os = "android", target_os = "macos")),
        allow(dead_code)
    )]
    pub(crate) dst_name: &'a OsStr,
    /// The destination is a regular file (not a FIFO or device).
    pub(crate) dst_regular: bool,
    /// The destination holds old content that must go before data is
    /// written (it is truncated lazily, after the update policy had a look).
    pub(crate) dst_has_content: bool,
    /// The destination is an existing file written in place: a strategy that
    /// must not damage it on failure (`reflink = always`) checks first.
    pub(crate) in_place: bool,
    /// The old content was removed (truncated).
    pub(crate) truncated: bool,
    /// A refusal the update policy met on its way to finishing (dedupe not
    /// possible, so the identical destination was only skipped): reported
    /// with the fallbacks.
    pub(crate) update_fallback: Option<crate::report::Fallback>,
    /// The destination's permission bits as a step last saw them (the clone
    /// step stats the clone): lets the metadata step skip a `fchmod` that
    /// would change nothing.
    pub(crate) dst_mode: Option<u32>,
    /// The destination's (uid, gid) as last seen (an existing file when it
    /// was opened, a clone when the clone step stats it): lets the metadata
    /// step skip a `fchown` to the owner it already has.
    pub(crate) dst_owner: Option<(u32, u32)>,
    /// The existing destination's status, taken right after it was opened
    /// (`None` for a file created by this copy).
    pub(crate) dst_meta: Option<&'a std::fs::Metadata>,
}

impl Job<'_> {
    /// Truncates the destination's old content once, right before the first
    /// write.
    pub(crate) fn prepare_write(&mut self) -> Result<(), CopyError> {
        if self.dst_has_content && self.dst_regular {
            fault!(Site::Ftruncate, self.dst.set_len(0))
                .map_err(|e| CopyError::io("truncate destination", self.dst_path, e))?;
            self.dst_has_content = false;
            self.truncated = true;
        }
        Ok(())
    }

    /// Truncates the old content and sets the destination's length to the
    /// source's before data is written: writes then never extend the file,
    /// so filesystems do not preallocate past the end (XFS speculative
    /// preallocation would turn holes into allocated ranges).
    pub(crate) fn prepare_sized_write(&mut self) -> Result<(), CopyError> {
        self.prepare_write()?;
        if self.dst_regular && self.len > 0 {
            fault!(Site::Ftruncate, self.dst.set_len(self.len))
                .map_err(|e| CopyError::io("set the length of", self.dst_path, e))?;
            self.truncated = true;
        }
        Ok(())
    }
}

type StepFn = fn(&mut Job<'_>) -> Step;

/// The chain, in order. The update policy comes first so it can look at the
/// destination before anything is truncated.
const STEPS: [StepFn; 4] = [
    crate::update::step,
    crate::strategy::clone::step,
    crate::strategy::kernel::step,
    crate::strategy::user::step,
];

/// Runs the chain; returns the finishing outcome and the recorded fallbacks.
pub(crate) fn run(job: &mut Job<'_>) -> Result<(Outcome, Vec<Fallback>), CopyError> {
    let mut fallbacks = Vec::new();
    for step in STEPS {
        match step(job) {
            Step::Done(mut outcome) => {
                fallbacks.extend(job.update_fallback.take());
                // `reflink = always` never writes data, so it keeps the
                // source's holes even with `sparse = never`.
                if job.opts.sparse == Sparse::Never
                    && job.opts.reflink != Reflink::Always
                    && outcome.hole_bytes > 0
                    && job.dst_regular
                {
                    crate::strategy::user::fill_holes(job, &mut outcome)?;
                }
                return Ok((outcome, fallbacks));
            }
            Step::Declined(f) => fallbacks.extend(f),
            Step::Failed(e) => return Err(e),
        }
    }
    // The user-space copy never declines.
    Err(CopyError::io(
        "copy",
        job.dst_path,
        std::io::Error::other("no strategy could copy the file"),
    ))
}
