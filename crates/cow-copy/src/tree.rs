//! Copy a whole tree: directories, files, symlinks, FIFOs and hard links.
//!
//! ```no_run
//! use cow_copy::tree::{copy_tree, TreeOptions};
//! use cow_copy::{CopyOptions, Reflink};
//!
//! let opts = TreeOptions::new()
//!     .copy_options(CopyOptions::new().reflink(Reflink::Auto))
//!     .preserve_hard_links(true);
//! match copy_tree("src".as_ref(), "dst".as_ref(), &opts) {
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

use std::fmt;
use std::io;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::CopyOptions;
use crate::CopyReport;
use crate::Strategy;

#[cfg(target_os = "macos")]
mod macos;
#[cfg(not(any(unix, windows)))]
mod other;
#[cfg(unix)]
mod unix;
#[cfg(windows)]
mod windows;

#[cfg(not(any(unix, windows)))]
use other as imp;
#[cfg(unix)]
use unix as imp;
#[cfg(windows)]
use windows as imp;

/// Which source symlinks are followed (copied as what they point to).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dereference {
    /// Never: every symlink is recreated as a symlink (`cp -P`, the default
    /// of `cp -r`).
    #[default]
    Never,
    /// Only the source given to [`copy_tree`] (`cp -H`); symlinks inside
    /// the tree are recreated as symlinks.
    CommandLine,
    /// Every symlink (`cp -L`); a symlink to one of its own ancestors is
    /// reported as a failure instead of looping.
    Always,
}

/// A snapshot of the copy's progress, given to the observer.
///
/// Totals grow while the walk discovers the tree (a directory's entries are
/// counted when it is listed, before they are copied), so `files_total` is a
/// lower bound until the walk has listed every directory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Progress {
    /// Regular files finished (copied, linked, skipped or failed).
    pub files_done: u64,
    /// Regular files discovered so far.
    pub files_total: u64,
    /// Bytes of the finished files (their source length).
    pub bytes_done: u64,
    /// Bytes of the files discovered so far.
    pub bytes_total: u64,
}

/// The progress observer: called after each regular file and after each
/// directory listing, from the worker threads. It must be cheap.
pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// How to copy a tree. Build with the methods below.
#[derive(Clone)]
pub struct TreeOptions {
    pub(crate) copy: CopyOptions,
    pub(crate) jobs: Option<NonZeroUsize>,
    pub(crate) fail_fast: bool,
    pub(crate) preserve_hard_links: bool,
    pub(crate) copy_special: bool,
    pub(crate) dereference: Dereference,
    pub(crate) progress: Option<ProgressFn>,
    pub(crate) record_entries: bool,
    pub(crate) whole_tree_clone: bool,
    pub(crate) one_file_system: bool,
    pub(crate) cancel: Option<Arc<AtomicBool>>,
}

impl fmt::Debug for TreeOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TreeOptions")
            .field("copy", &self.copy)
            .field("jobs", &self.jobs)
            .field("fail_fast", &self.fail_fast)
            .field("preserve_hard_links", &self.preserve_hard_links)
            .field("copy_special", &self.copy_special)
            .field("dereference", &self.dereference)
            .field("progress", &self.progress.as_ref().map(|_| "observer"))
            .field("record_entries", &self.record_entries)
            .field("whole_tree_clone", &self.whole_tree_clone)
            .field("one_file_system", &self.one_file_system)
            .field("cancel", &self.cancel)
            .finish()
    }
}

impl Default for TreeOptions {
    fn default() -> Self {
        TreeOptions::new()
    }
}

impl TreeOptions {
    /// The defaults: [`CopyOptions::new`] for each file, one worker per
    /// available CPU, keep going after a failure, hard links copied as
    /// separate files, devices and sockets skipped with a warning, symlinks
    /// never followed, no per-entry records, macOS whole-tree clone allowed.
    pub fn new() -> Self {
        TreeOptions {
            copy: CopyOptions::new(),
            jobs: None,
            fail_fast: false,
            preserve_hard_links: false,
            copy_special: false,
            dereference: Dereference::Never,
            progress: None,
            record_entries: false,
            whole_tree_clone: true,
            one_file_system: false,
            cancel: None,
        }
    }

    /// The options for each regular file (reflink, sparse, overwrite,
    /// atomic, fsync, preserve). Their `follow_symlinks` is ignored: the
    /// [`dereference`](TreeOptions::dereference) policy decides. `preserve`
    /// and `overwrite` also apply to directories, symlinks and FIFOs.
    pub fn copy_options(mut self, copy: CopyOptions) -> Self {
        self.copy = copy;
        self
    }

    /// Worker threads (at least 1; default: the available parallelism).
    pub fn jobs(mut self, jobs: usize) -> Self {
        self.jobs = NonZeroUsize::new(jobs.max(1));
        self
    }

    /// Stop at the first failure (default `false`: copy everything that can
    /// be copied and list the failures).
    pub fn fail_fast(mut self, fail_fast: bool) -> Self {
        self.fail_fast = fail_fast;
        self
    }

    /// Recreate hard links between files inside the tree as hard links
    /// (`cp --preserve=links`; default `false`). Like GNU `cp`, a
    /// destination file with more than one link is then removed and
    /// created anew rather than written through
    /// ([`RemoveDestination::IfLinked`](crate::RemoveDestination::IfLinked)).
    pub fn preserve_hard_links(mut self, preserve: bool) -> Self {
        self.preserve_hard_links = preserve;
        self
    }

    /// Recreate character and block devices and sockets (default `false`:
    /// they are skipped and listed as warnings). Creating devices usually
    /// needs privilege.
    pub fn copy_special(mut self, copy: bool) -> Self {
        self.copy_special = copy;
        self
    }

    /// Which source symlinks are followed.
    pub fn dereference(mut self, dereference: Dereference) -> Self {
        self.dereference = dereference;
        self
    }

    /// Sets the progress observer.
    pub fn progress(mut self, observer: ProgressFn) -> Self {
        self.progress = Some(observer);
        self
    }

    /// Record every entry in [`TreeReport::entries`] (with each file's
    /// [`CopyReport`]); default `false`.
    pub fn record_entries(mut self, record: bool) -> Self {
        self.record_entries = record;
        self
    }

    /// On macOS, allow cloning the whole tree with one `clonefile` call when
    /// the destination does not exist and the options allow it (default
    /// `true`; the rules are in docs/macos.md: ACLs are not cloned, any
    /// refusal falls back to the walk). Ignored elsewhere.
    pub fn whole_tree_clone(mut self, allow: bool) -> Self {
        self.whole_tree_clone = allow;
        self
    }

    /// Stay on the source root's filesystem (`cp -x`): a directory on
    /// another filesystem (a mount point) is created, its contents are not
    /// copied. Default `false`. Unix only (the Windows walker ignores it).
    pub fn one_file_system(mut self, stay: bool) -> Self {
        self.one_file_system = stay;
        self
    }

    /// A flag that stops the copy when set (from another thread, say a
    /// Ctrl-C handler): no new entry is started, a file being copied stops
    /// at its next chunk as with [`CopyOptions::cancel`] (an atomic file
    /// removes its temporary, a new file is removed; it is listed as a
    /// failure of kind `Interrupted`), and the report says
    /// [`TreeReport::stopped_early`]. Default: none.
    pub fn cancel(mut self, flag: Arc<AtomicBool>) -> Self {
        self.cancel = Some(flag);
        self
    }

    /// The options for each file.
    pub fn file_options(&self) -> &CopyOptions {
        &self.copy
    }

    /// The number of worker threads this copy will use.
    pub fn worker_count(&self) -> usize {
        self.jobs
            .or_else(|| std::thread::available_parallelism().ok())
            .map_or(1, NonZeroUsize::get)
    }
}

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
    /// older than the source with `Update::IfOlder`, devices and sockets not
    /// copied).
    pub skipped: u64,
    /// Files left alone because the destination already had the same
    /// content (`Update::IfDifferent*`); also counted in `skipped`.
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

impl TreeTotals {
    /// Adds another total into this one.
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

/// What [`copy_tree`] did.
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

/// Why [`copy_tree`] failed. Converts into `io::Error`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TreeError {
    /// The destination is inside the source directory (`cp -r a a/b`).
    #[error("cannot copy a directory, {}, into itself, {}", src.display(), dst.display())]
    IntoItself {
        /// The source directory.
        src: PathBuf,
        /// The destination inside it.
        dst: PathBuf,
    },
    /// Source and destination are the same directory.
    #[error("{} and {} are the same file", src.display(), dst.display())]
    SameFile {
        /// The source.
        src: PathBuf,
        /// The destination.
        dst: PathBuf,
    },
    /// The source is a directory and the destination exists and is not one
    /// (a destination symlink is not followed).
    #[error("cannot overwrite non-directory {} with directory {}", dst.display(), src.display())]
    NotADirectory {
        /// The source directory.
        src: PathBuf,
        /// The existing destination.
        dst: PathBuf,
    },
    /// Setting up the copy failed (the source or the destination's parent
    /// could not be opened); nothing was copied.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        /// The operation.
        op: &'static str,
        /// The path it was applied to.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Some entries failed; the rest were copied. The report lists them.
    #[error("{}", incomplete_message(report))]
    Incomplete {
        /// The full report, with [`TreeReport::failures`] non-empty.
        report: Box<TreeReport>,
    },
}

fn incomplete_message(report: &TreeReport) -> String {
    let n = report.failures.len();
    let first = report
        .failures
        .first()
        .map(|f| f.to_string())
        .unwrap_or_default();
    let stop = if report.stopped_early {
        " (stopped at the first failure)"
    } else {
        ""
    };
    if n == 1 {
        format!("1 entry failed to copy{stop}: {first}")
    } else {
        format!("{n} entries failed to copy{stop}; the first: {first}")
    }
}

impl TreeError {
    /// The `io::ErrorKind` this error converts to.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            TreeError::IntoItself { .. } | TreeError::SameFile { .. } => {
                io::ErrorKind::InvalidInput
            }
            TreeError::NotADirectory { .. } => io::ErrorKind::AlreadyExists,
            TreeError::Io { source, .. } => source.kind(),
            TreeError::Incomplete { report } => report
                .failures
                .first()
                .map_or(io::ErrorKind::Other, |f| f.kind),
        }
    }

    /// The report of a copy that ran but had failures.
    pub fn report(&self) -> Option<&TreeReport> {
        match self {
            TreeError::Incomplete { report } => Some(report),
            _ => None,
        }
    }

    /// Takes the report of a copy that ran but had failures.
    pub fn into_report(self) -> Option<TreeReport> {
        match self {
            TreeError::Incomplete { report } => Some(*report),
            _ => None,
        }
    }
}

impl From<TreeError> for io::Error {
    fn from(e: TreeError) -> io::Error {
        io::Error::new(e.kind(), e)
    }
}

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
pub fn copy_tree(src: &Path, dst: &Path, opts: &TreeOptions) -> Result<TreeReport, TreeError> {
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

/// Progress counters shared by the workers (atomics: cheap to leave on).
#[derive(Default)]
pub(crate) struct Counters {
    files_done: AtomicU64,
    files_total: AtomicU64,
    bytes_done: AtomicU64,
    bytes_total: AtomicU64,
}

impl Counters {
    pub(crate) fn discovered(&self, files: u64, bytes: u64) {
        if files > 0 {
            self.files_total.fetch_add(files, Ordering::Relaxed);
            self.bytes_total.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    pub(crate) fn done(&self, bytes: u64) {
        self.files_done.fetch_add(1, Ordering::Relaxed);
        self.bytes_done.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Progress {
        Progress {
            files_done: self.files_done.load(Ordering::Relaxed),
            files_total: self.files_total.load(Ordering::Relaxed),
            bytes_done: self.bytes_done.load(Ordering::Relaxed),
            bytes_total: self.bytes_total.load(Ordering::Relaxed),
        }
    }
}

/// Totals as atomics, so workers add without a lock.
#[derive(Default)]
pub(crate) struct AtomicTotals {
    files: AtomicU64,
    dirs: AtomicU64,
    symlinks: AtomicU64,
    fifos: AtomicU64,
    specials: AtomicU64,
    hard_links: AtomicU64,
    skipped: AtomicU64,
    identical: AtomicU64,
    failed: AtomicU64,
    source_changed: AtomicU64,
    bytes_cloned: AtomicU64,
    bytes_copied: AtomicU64,
    hole_bytes: AtomicU64,
    bytes_skipped: AtomicU64,
}

/// Which counter of [`AtomicTotals`] an entry adds to.
#[derive(Clone, Copy)]
#[cfg_attr(windows, allow(dead_code))]
pub(crate) enum Count {
    Files,
    Dirs,
    Symlinks,
    Fifos,
    Specials,
    HardLinks,
    Skipped,
    Identical,
    Failed,
    SourceChanged,
}

impl AtomicTotals {
    pub(crate) fn bump(&self, which: Count) {
        let c = match which {
            Count::Files => &self.files,
            Count::Dirs => &self.dirs,
            Count::Symlinks => &self.symlinks,
            Count::Fifos => &self.fifos,
            Count::Specials => &self.specials,
            Count::HardLinks => &self.hard_links,
            Count::Skipped => &self.skipped,
            Count::Identical => &self.identical,
            Count::Failed => &self.failed,
            Count::SourceChanged => &self.source_changed,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add_report(&self, r: &CopyReport) {
        self.bytes_cloned
            .fetch_add(r.bytes_cloned, Ordering::Relaxed);
        self.bytes_copied
            .fetch_add(r.bytes_copied, Ordering::Relaxed);
        self.hole_bytes.fetch_add(r.hole_bytes, Ordering::Relaxed);
    }

    pub(crate) fn add_skipped_bytes(&self, n: u64) {
        self.bytes_skipped.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> TreeTotals {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        TreeTotals {
            files: l(&self.files),
            dirs: l(&self.dirs),
            symlinks: l(&self.symlinks),
            fifos: l(&self.fifos),
            specials: l(&self.specials),
            hard_links: l(&self.hard_links),
            skipped: l(&self.skipped),
            identical: l(&self.identical),
            failed: l(&self.failed),
            source_changed: l(&self.source_changed),
            bytes_cloned: l(&self.bytes_cloned),
            bytes_copied: l(&self.bytes_copied),
            hole_bytes: l(&self.hole_bytes),
            bytes_skipped: l(&self.bytes_skipped),
        }
    }
}

/// State shared by every worker of one tree copy: counters, failures,
/// warnings, records, the stop flag. Platform walkers build on it.
pub(crate) struct Shared<'a> {
    pub(crate) opts: &'a TreeOptions,
    pub(crate) src_root: &'a Path,
    pub(crate) dst_root: &'a Path,
    pub(crate) totals: AtomicTotals,
    pub(crate) counters: Counters,
    failures: std::sync::Mutex<Vec<TreeFailure>>,
    warnings: std::sync::Mutex<Vec<TreeWarning>>,
    entries: Option<std::sync::Mutex<Vec<TreeEntry>>>,
    stop: AtomicBool,
}

impl<'a> Shared<'a> {
    pub(crate) fn new(opts: &'a TreeOptions, src_root: &'a Path, dst_root: &'a Path) -> Self {
        Shared {
            opts,
            src_root,
            dst_root,
            totals: AtomicTotals::default(),
            counters: Counters::default(),
            failures: Default::default(),
            warnings: Default::default(),
            entries: opts.record_entries.then(Default::default),
            stop: AtomicBool::new(false),
        }
    }

    /// Whether the walk should stop (fail-fast after a failure, or the
    /// caller's cancel flag).
    pub(crate) fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
            || self
                .opts
                .cancel
                .as_ref()
                .is_some_and(|c| c.load(Ordering::Relaxed))
    }

    /// The source path of an entry, for messages.
    pub(crate) fn src_path(&self, rel: &Path) -> PathBuf {
        if rel.as_os_str().is_empty() {
            self.src_root.to_path_buf()
        } else {
            self.src_root.join(rel)
        }
    }

    /// The destination path of an entry, for messages.
    pub(crate) fn dst_path(&self, rel: &Path) -> PathBuf {
        if rel.as_os_str().is_empty() {
            self.dst_root.to_path_buf()
        } else {
            self.dst_root.join(rel)
        }
    }

    /// Records a failure of `op` on the entry `rel`.
    pub(crate) fn fail(&self, rel: &Path, kind: EntryKind, op: &'static str, err: io::Error) {
        let failure = TreeFailure {
            path: self.src_path(rel),
            destination: self.dst_path(rel),
            op,
            error: err.to_string(),
            kind: err.kind(),
            errno: err.raw_os_error(),
        };
        self.fail_with(rel, kind, failure);
    }

    /// Records a failure of the engine on the regular file `rel`.
    pub(crate) fn fail_copy(&self, rel: &Path, err: crate::CopyError) {
        let failure = TreeFailure {
            path: self.src_path(rel),
            destination: self.dst_path(rel),
            op: "copy",
            error: err.to_string(),
            kind: err.kind(),
            errno: err.raw_os_error(),
        };
        self.fail_with(rel, EntryKind::File, failure);
    }

    /// Records that metadata could not be applied to `rel`, an entry that
    /// was otherwise written: a failure, but the entry's record stays.
    pub(crate) fn fail_meta(&self, rel: &Path, op: &'static str, err: io::Error) {
        self.totals.bump(Count::Failed);
        lock(&self.failures).push(TreeFailure {
            path: self.src_path(rel),
            destination: self.dst_path(rel),
            op,
            error: err.to_string(),
            kind: err.kind(),
            errno: err.raw_os_error(),
        });
        if self.opts.fail_fast {
            self.stop.store(true, Ordering::Relaxed);
        }
    }

    fn fail_with(&self, rel: &Path, kind: EntryKind, failure: TreeFailure) {
        self.totals.bump(Count::Failed);
        lock(&self.failures).push(failure);
        if self.opts.fail_fast {
            self.stop.store(true, Ordering::Relaxed);
        }
        self.record(rel, kind, EntryAction::Failed, None);
    }

    /// Records a warning about `rel`.
    pub(crate) fn warn(&self, rel: &Path, message: String) {
        lock(&self.warnings).push(TreeWarning {
            path: self.src_path(rel),
            message,
        });
    }

    /// Records what was done to an entry (when records are on).
    pub(crate) fn record(
        &self,
        rel: &Path,
        kind: EntryKind,
        action: EntryAction,
        report: Option<CopyReport>,
    ) {
        if let Some(entries) = &self.entries {
            lock(entries).push(TreeEntry {
                path: rel.to_path_buf(),
                kind,
                action,
                report,
            });
        }
    }

    /// Records that a regular file is finished and tells the observer.
    pub(crate) fn file_done(&self, len: u64) {
        self.counters.done(len);
        self.notify();
    }

    /// Tells the observer the current progress.
    pub(crate) fn notify(&self) {
        if let Some(observer) = &self.opts.progress {
            observer(&self.counters.snapshot());
        }
    }

    /// Records the outcome of the engine on a regular file.
    pub(crate) fn file_result(
        &self,
        rel: &Path,
        len_hint: u64,
        result: Result<CopyReport, crate::CopyError>,
    ) {
        match result {
            Ok(r) if r.strategy == Strategy::KeptNewer => {
                // `Update::IfOlder`: the destination is not older; untouched.
                self.totals.bump(Count::Skipped);
                self.totals.add_skipped_bytes(r.len);
                let len = r.len;
                self.record(rel, EntryKind::File, EntryAction::Skipped, Some(r));
                self.file_done(len);
            }
            Ok(r) if matches!(r.strategy, Strategy::Skipped | Strategy::Deduped) => {
                // The destination already held this content: nothing written.
                self.totals.bump(Count::Skipped);
                self.totals.bump(Count::Identical);
                self.totals.add_skipped_bytes(r.len);
                // Deduped: the source now shares the destination's blocks.
                self.totals.add_report(&r);
                let len = r.len;
                self.record(rel, EntryKind::File, EntryAction::Skipped, Some(r));
                self.file_done(len);
            }
            Ok(r) => {
                self.totals.bump(Count::Files);
                self.totals.add_report(&r);
                let action = match r.destination {
                    crate::Destination::Created => EntryAction::Created,
                    crate::Destination::Replaced => EntryAction::Replaced,
                    crate::Destination::Kept => EntryAction::Skipped,
                };
                let len = r.len;
                if r.source_changed {
                    self.totals.bump(Count::SourceChanged);
                    self.warn(rel, crate::SOURCE_CHANGED.to_string());
                }
                if !r.metadata_skipped.is_empty() {
                    self.warn(
                        rel,
                        format!("metadata not applied: {}", r.metadata_skipped.join("; ")),
                    );
                }
                self.record(rel, EntryKind::File, action, Some(r));
                self.file_done(len);
            }
            Err(crate::CopyError::DestinationExists { .. })
                if self.opts.copy.overwrite_policy() == crate::Overwrite::NoClobber =>
            {
                self.totals.bump(Count::Skipped);
                self.totals.add_skipped_bytes(len_hint);
                self.record(rel, EntryKind::File, EntryAction::Skipped, None);
                self.file_done(len_hint);
            }
            Err(e) => {
                self.fail_copy(rel, e);
                self.file_done(len_hint);
            }
        }
    }

    /// The final report.
    pub(crate) fn finish(self) -> TreeReport {
        let stopped_early = self.stopped();
        let mut failures = into_inner(self.failures);
        failures.sort_by(|a, b| a.path.cmp(&b.path));
        let mut warnings = into_inner(self.warnings);
        warnings.sort_by(|a, b| a.path.cmp(&b.path));
        let entries = self.entries.map(|e| {
            let mut v = into_inner(e);
            v.sort_by(|a, b| a.path.cmp(&b.path));
            v
        });
        TreeReport {
            method: TreeMethod::Walk,
            totals: self.totals.get(),
            failures,
            warnings,
            stopped_early,
            entries,
        }
    }
}

/// Locks a mutex, ignoring poisoning (the data are plain lists).
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn into_inner<T>(m: std::sync::Mutex<T>) -> T {
    m.into_inner().unwrap_or_else(|p| p.into_inner())
}

/// Runs `f` on a pool of `n` threads (or inline for one).
pub(crate) fn with_pool<R: Send>(n: usize, f: impl FnOnce(bool) -> R + Send) -> R {
    if n <= 1 {
        return f(false);
    }
    match rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("cow-tree-{i}"))
        .build()
    {
        Ok(pool) => pool.install(|| f(true)),
        Err(_) => f(false),
    }
}

fn ser_path<S: serde::Serializer>(p: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&p.to_string_lossy())
}

fn ser_kind<S: serde::Serializer>(k: &io::ErrorKind, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{k:?}"))
}
