//! How a tree is copied: [`TreeOptions`], the [`Dereference`] policy and the
//! progress observer.

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::CopyOptions;

/// Which source symlinks are followed (copied as what they point to).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dereference {
    /// Never: every symlink is recreated as a symlink (`cp -P`, the default
    /// of `cp -r`).
    #[default]
    Never,
    /// Only the source given to [`TreeOptions::copy`](crate::tree::TreeOptions::copy) (`cp -H`); symlinks inside
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
    #[must_use]
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
    #[must_use]
    pub fn copy_options(mut self, copy: CopyOptions) -> Self {
        self.copy = copy;
        self
    }

    /// Worker threads (at least 1; default: the available parallelism).
    #[must_use]
    pub fn jobs(mut self, jobs: usize) -> Self {
        self.jobs = NonZeroUsize::new(jobs.max(1));
        self
    }

    /// Stop at the first failure (default `false`: copy everything that can
    /// be copied and list the failures).
    #[must_use]
    pub fn fail_fast(mut self, fail_fast: bool) -> Self {
        self.fail_fast = fail_fast;
        self
    }

    /// Recreate hard links between files inside the tree as hard links
    /// (`cp --preserve=links`; default `false`). Like GNU `cp`, a
    /// destination file with more than one link is then removed and
    /// created anew rather than written through
    /// ([`RemoveDestination::IfLinked`](crate::RemoveDestination::IfLinked)).
    #[must_use]
    pub fn preserve_hard_links(mut self, preserve: bool) -> Self {
        self.preserve_hard_links = preserve;
        self
    }

    /// Recreate character and block devices and sockets (default `false`:
    /// they are skipped and listed as warnings). Creating devices usually
    /// needs privilege.
    #[must_use]
    pub fn copy_special(mut self, copy: bool) -> Self {
        self.copy_special = copy;
        self
    }

    /// Which source symlinks are followed.
    #[must_use]
    pub fn dereference(mut self, dereference: Dereference) -> Self {
        self.dereference = dereference;
        self
    }

    /// Sets the progress observer.
    #[must_use]
    pub fn progress(mut self, observer: ProgressFn) -> Self {
        self.progress = Some(observer);
        self
    }

    /// Record every entry in [`TreeReport::entries`] (with each file's
    /// [`CopyReport`]); default `false`.
    #[must_use]
    pub fn record_entries(mut self, record: bool) -> Self {
        self.record_entries = record;
        self
    }

    /// On macOS, allow cloning the whole tree with one `clonefile` call when
    /// the destination does not exist and the options allow it (default
    /// `true`; the rules are in docs/macos.md: ACLs are not cloned, any
    /// refusal falls back to the walk). Ignored elsewhere.
    #[must_use]
    pub fn whole_tree_clone(mut self, allow: bool) -> Self {
        self.whole_tree_clone = allow;
        self
    }

    /// Stay on the source root's filesystem (`cp -x`): a directory on
    /// another filesystem (a mount point) is created, its contents are not
    /// copied. Default `false`. Unix only (the Windows walker ignores it).
    #[must_use]
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
    #[must_use]
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
