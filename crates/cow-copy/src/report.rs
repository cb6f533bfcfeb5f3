//! What a copy did, in numbers that tests check against the disk.

use std::fmt;

/// How the bytes reached the destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Strategy {
    /// Every data byte shares storage with the source (`FICLONE`,
    /// `clonefile`, `FSCTL_DUPLICATE_EXTENTS_TO_FILE`).
    Cloned,
    /// The kernel copied the bytes (`copy_file_range`, or a clone ioctl
    /// that had to copy data stored inline in metadata). On macOS this slot
    /// is one `fcopyfile(COPYFILE_DATA)` of a dense source (docs/macos.md).
    KernelCopy,
    /// The bytes went through this process (`read`/`write`).
    UserCopy,
    /// Part shared, part copied: see the byte counts.
    Mixed,
    /// macOS `copyfile(COPYFILE_CLONE)` reported a clone
    /// (`COPYFILE_STATE_WAS_CLONED`).
    Copyfile,
    /// An operating-system copy routine whose method is not observable
    /// (Windows `CopyFileExW`): counted as copied bytes.
    SystemCopy,
    /// The destination already held identical content and was left alone
    /// ([`Overwrite::IfDifferent`](crate::Overwrite::IfDifferent)): no byte
    /// written, so `bytes_cloned`, `bytes_copied` and `hole_bytes` are 0.
    Skipped,
    /// The destination already held identical content and the source now
    /// shares its blocks
    /// ([`Overwrite::IfDifferentDedupe`](crate::Overwrite::IfDifferentDedupe)); the
    /// destination was not written. `bytes_cloned` counts the shared bytes.
    Deduped,
    /// The destination was at least as new as the source and was left
    /// alone ([`Overwrite::IfOlder`](crate::Overwrite::IfOlder)): no byte and no
    /// metadata written; all byte counts are 0.
    KeptNewer,
}

impl Strategy {
    /// Whether the destination was left in place instead of written
    /// ([`Strategy::Skipped`], [`Strategy::Deduped`], [`Strategy::KeptNewer`]).
    pub fn kept_destination(self) -> bool {
        matches!(
            self,
            Strategy::Skipped | Strategy::Deduped | Strategy::KeptNewer
        )
    }
}

impl Strategy {
    /// The lower-case name used by `Display` and serde.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Cloned => "cloned",
            Strategy::KernelCopy => "kernel-copy",
            Strategy::UserCopy => "user-copy",
            Strategy::Mixed => "mixed",
            Strategy::Copyfile => "copyfile",
            Strategy::SystemCopy => "system-copy",
            Strategy::Skipped => "skipped",
            Strategy::Deduped => "deduped",
            Strategy::KeptNewer => "kept-newer",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether the destination existed before the copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Destination {
    /// The copy created it.
    Created,
    /// It existed and its content was replaced (in place, or by an atomic
    /// rename).
    Replaced,
    /// It existed and was left in place: its content was not written
    /// (identical, deduplicated, or not older than the source; see
    /// [`Strategy::kept_destination`]).
    Kept,
}

/// A strategy that was tried and declined, and why.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Fallback {
    /// The strategy that declined.
    pub strategy: Strategy,
    /// The OS error number that made it decline, if one did.
    pub errno: Option<i32>,
    /// A short human explanation ("copy_file_range returned 0", ...).
    pub reason: String,
}

/// The fallbacks of the update policy, worded once for every platform.
impl Fallback {
    /// The destination could not be compared (`what` failed): copied.
    pub(crate) fn not_compared(what: &str, e: &std::io::Error) -> Fallback {
        Fallback {
            strategy: Strategy::Skipped,
            errno: e.raw_os_error(),
            reason: format!("could not {what}: {e}"),
        }
    }

    /// The destination differs (`reason` says how): copied.
    pub(crate) fn differs(reason: impl fmt::Display) -> Fallback {
        Fallback {
            strategy: Strategy::Skipped,
            errno: None,
            reason: reason.to_string(),
        }
    }

    /// The destination is identical but could not share the source's blocks.
    pub(crate) fn not_deduplicated(why: impl fmt::Display) -> Fallback {
        Fallback {
            strategy: Strategy::Deduped,
            errno: None,
            reason: format!("identical, but not deduplicated: {why}"),
        }
    }

    /// [`Overwrite::IfOlder`](crate::Overwrite::IfOlder) copied: the destination
    /// is older.
    pub(crate) fn destination_older() -> Fallback {
        Fallback {
            strategy: Strategy::KeptNewer,
            errno: None,
            reason: "the destination is older than the source".to_string(),
        }
    }
}

impl fmt::Display for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} declined: {}", self.strategy, self.reason)?;
        if let Some(e) = self.errno {
            write!(f, " (os error {e})")?;
        }
        Ok(())
    }
}

/// The per-file result of a copy.
///
/// `bytes_cloned + bytes_copied + hole_bytes == len` always holds, except for
/// [`Strategy::Skipped`] (nothing transferred: all three are 0). The report
/// says [`Strategy::Cloned`] only when the data is really shared: after a
/// clone ioctl the destination's extents are read back (FIEMAP `SHARED`),
/// so btrfs inline extents, which a clone copies, count as copied.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CopyReport {
    /// How the data was transferred.
    pub strategy: Strategy,
    /// Bytes whose storage is shared with the source.
    pub bytes_cloned: u64,
    /// Bytes written (by the kernel or this process).
    pub bytes_copied: u64,
    /// Bytes left as holes.
    pub hole_bytes: u64,
    /// The destination's final length.
    pub len: u64,
    /// Whether the destination was created or replaced.
    pub destination: Destination,
    /// The source's length changed while it was copied; `len` is the length
    /// actually copied (its real end when read).
    pub size_changed: bool,
    /// The source's size, modification time or change time (compared to
    /// the nanosecond) differed after its bytes were read from what they
    /// were when it was opened: the copy may mix old and new content
    /// ([`SOURCE_CHANGED`]). Only copies that read data are checked (kernel
    /// and user copies): a clone is a point-in-time snapshot of the source.
    /// When [`CopyOptions::retry_changed`](crate::CopyOptions::retry_changed)
    /// allows retries, this is set only if the last attempt saw a change.
    pub source_changed: bool,
    /// How many times the file was copied again because its source changed
    /// while it was read (at most the `retry_changed` limit).
    pub retries: u32,
    /// Strategies that were tried first and declined.
    pub fallbacks: Vec<Fallback>,
    /// Metadata that was asked for but could not be applied (for example an
    /// xattr namespace the destination filesystem refuses, or ownership
    /// without the privilege), as `name: error` lines.
    pub metadata_skipped: Vec<String>,
}

/// The warning for a source that changed while it was read
/// ([`CopyReport::source_changed`]).
pub const SOURCE_CHANGED: &str = "source changed during the copy";

impl CopyReport {
    /// Fraction of the data bytes (not holes) that are shared with the
    /// source, 1.0 for a file without data.
    pub fn shared_ratio(&self) -> f64 {
        let data = self.bytes_cloned + self.bytes_copied;
        if data == 0 {
            1.0
        } else {
            self.bytes_cloned as f64 / data as f64
        }
    }
}
