//! What a tree copy did: [`TreeReport`], its entries, failures, warnings and
//! [`TreeTotals`].

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::{CopyReport, Strategy};

/// How the tree was copied.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TreeMethod {
    /// Entry by entry.
    #[default]
    Walk,
    /// One macOS `clonefile` call cloned the whole tree at once.
    CloneTree,
}

/// What kind of entry a record is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A named pipe.
    Fifo,
    /// A character or block device.
    Device,
    /// A Unix socket.
    Socket,
}

impl EntryKind {
    /// The lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            EntryKind::File => "file",
            EntryKind::Dir => "directory",
            EntryKind::Symlink => "symlink",
            EntryKind::Fifo => "fifo",
            EntryKind::Device => "device",
            EntryKind::Socket => "socket",
        }
    }

    /// The name with its article, for messages: "a directory", "a FIFO".
    pub fn described(self) -> &'static str {
        match self {
            EntryKind::File => "a regular file",
            EntryKind::Dir => "a directory",
            EntryKind::Symlink => "a symbolic link",
            EntryKind::Fifo => "a FIFO",
            EntryKind::Device => "a device",
            EntryKind::Socket => "a socket",
        }
    }
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What happened to one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryAction {
    /// Created in the destination.
    Created,
    /// An existing destination entry was replaced.
    Replaced,
    /// An existing destination directory was merged into.
    Merged,
    /// Made a hard link to an earlier copy of the same source file.
    Linked,
    /// Left alone: the destination exists and the options say not to
    /// replace it, or already holds the same content (the engine's report
    /// then says `skipped` or `deduped`), or the entry is a device or socket
    /// that is not copied.
    Skipped,
    /// Failed; see [`TreeReport::failures`].
    Failed,
}

/// One entry of [`TreeReport::entries`].
#[derive(Clone, Debug, serde::Serialize)]
pub struct TreeEntry {
    /// The path relative to the source root (empty for the root itself).
    #[serde(serialize_with = "ser_path")]
    pub path: PathBuf,
    /// What the source entry is.
    pub kind: EntryKind,
    /// What was done.
    pub action: EntryAction,
    /// The engine's report, for regular files that were copied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<CopyReport>,
}

/// One entry that could not be copied.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TreeFailure {
    /// The source path (the root joined with the entry's relative path).
    #[serde(serialize_with = "ser_path")]
    pub path: PathBuf,
    /// Where it was being copied to.
    #[serde(serialize_with = "ser_path")]
    pub destination: PathBuf,
    /// The operation that failed ("copy", "create directory", ...).
    pub op: &'static str,
    /// The error message.
    pub error: String,
    /// The error's kind, as `io::ErrorKind`'s name.
    #[serde(serialize_with = "ser_kind")]
    pub kind: io::ErrorKind,
    /// The OS error number, if there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errno: Option<i32>,
}

impl fmt::Display for TreeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} -> {}: {}: {}",
            self.path.display(),
            self.destination.display(),
            self.op,
            self.error
        )
    }
}

/// Something the copy did not do on purpose, or metadata it could not apply.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TreeWarning {
    /// The source path.
    #[serde(serialize_with = "ser_path")]
    pub path: PathBuf,
    /// What happened.
    pub message: String,
}

impl fmt::Display for TreeWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

/// Counts over the whole tree.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TreeTotals {
    /// Regular files copied (created or replaced).
    pub files: u64,
    /// Directories created or merged into.
    pub dirs: u64,
    /// Symlinks created.
    pub symlinks: u64,
    /// FIFOs created.
    pub fifos: u64,
    /// Devices and sockets created (with `copy_special`).
    pub specials: u64,
    /// Hard links made to earlier copies.
    pub hard_links: u64,
    /// Entries left alone (existing destination with no-clobber or not
    /// older than the source with `Overwrite::IfOlder`, devices and sockets not
    /// copied).
    pub skipped: u64,
    /// Files left alone because the destination already had the same
    /// content (`Overwrite::IfDifferent*`); also counted in `skipped`.
    pub identical: u64,
    /// Entries that failed.
    pub failed: u64,
    /// Files copied whose source changed while it was read (also counted in
    /// `files`; see [`CopyReport::source_changed`]).
    pub source_changed: u64,
    /// Bytes shared with the source (sum of [`CopyReport::bytes_cloned`]).
    pub bytes_cloned: u64,
    /// Bytes written (sum of [`CopyReport::bytes_copied`]).
    pub bytes_copied: u64,
    /// Bytes left as holes.
    pub hole_bytes: u64,
    /// Bytes of files that were not written: skipped files and hard links.
    pub bytes_skipped: u64,
}

/// The counts of one regular file, by the engine's report: the one rule by
/// which a tree and `cow cp` count the files they copied. A file the
/// engine left alone (the destination was not older, or already held the
/// content) is skipped, with its bytes in `bytes_skipped`; one whose
/// content was already there also counts as `identical` (its
/// `bytes_cloned` are the blocks a dedupe shared).
impl From<&CopyReport> for TreeTotals {
    fn from(r: &CopyReport) -> TreeTotals {
        let mut t = TreeTotals {
            bytes_cloned: r.bytes_cloned,
            bytes_copied: r.bytes_copied,
            hole_bytes: r.hole_bytes,
            ..TreeTotals::default()
        };
        match r.strategy {
            Strategy::KeptNewer => {
                t.skipped = 1;
                t.bytes_skipped = r.len;
            }
            Strategy::Skipped | Strategy::Deduped => {
                t.skipped = 1;
                t.identical = 1;
                t.bytes_skipped = r.len;
            }
            _ => {
                t.files = 1;
                t.source_changed = u64::from(r.source_changed);
            }
        }
        t
    }
}

impl TreeTotals {
    /// Adds another total into this one (`TreeTotals::from(&report)` gives
    /// the counts of one file).
    pub fn add(&mut self, o: &TreeTotals) {
        self.files += o.files;
        self.dirs += o.dirs;
        self.symlinks += o.symlinks;
        self.fifos += o.fifos;
        self.specials += o.specials;
        self.hard_links += o.hard_links;
        self.skipped += o.skipped;
        self.identical += o.identical;
        self.failed += o.failed;
        self.source_changed += o.source_changed;
        self.bytes_cloned += o.bytes_cloned;
        self.bytes_copied += o.bytes_copied;
        self.hole_bytes += o.hole_bytes;
        self.bytes_skipped += o.bytes_skipped;
    }
}

/// What [`TreeOptions::copy`](crate::tree::TreeOptions::copy) did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct TreeReport {
    /// Entry by entry, or one whole-tree clone.
    pub method: TreeMethod,
    /// Counts and byte totals.
    pub totals: TreeTotals,
    /// Every entry that failed, with its path and cause (empty on success).
    pub failures: Vec<TreeFailure>,
    /// Entries skipped on purpose and metadata that could not be applied.
    pub warnings: Vec<TreeWarning>,
    /// Whether the copy stopped before the end: at the first failure
    /// (`fail_fast`) or because the cancel flag was set.
    pub stopped_early: bool,
    /// Every entry, when [`TreeOptions::record_entries`] was set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entries: Option<Vec<TreeEntry>>,
}

impl TreeReport {
    /// Whether every entry was copied (no failures).
    pub fn is_complete(&self) -> bool {
        self.failures.is_empty()
    }
}

fn ser_path<S: serde::Serializer>(p: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&p.to_string_lossy())
}

fn ser_kind<S: serde::Serializer>(k: &io::ErrorKind, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{k:?}"))
}
