//! The state every worker of one tree copy shares: counters, failures,
//! warnings, records and the stop flag; the worker pool.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::{
    EntryAction, EntryKind, Progress, TreeEntry, TreeFailure, TreeMethod, TreeOptions, TreeReport,
    TreeTotals, TreeWarning,
};
use crate::{CopyReport, Strategy};

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
    Dirs,
    Symlinks,
    Fifos,
    Specials,
    HardLinks,
    Skipped,
    Failed,
}

impl AtomicTotals {
    pub(crate) fn bump(&self, which: Count) {
        let c = match which {
            Count::Dirs => &self.dirs,
            Count::Symlinks => &self.symlinks,
            Count::Fifos => &self.fifos,
            Count::Specials => &self.specials,
            Count::HardLinks => &self.hard_links,
            Count::Skipped => &self.skipped,
            Count::Failed => &self.failed,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds the counts of one entry (see [`TreeTotals::add`]).
    pub(crate) fn add(&self, t: &TreeTotals) {
        let add = |a: &AtomicU64, n: u64| {
            if n > 0 {
                a.fetch_add(n, Ordering::Relaxed);
            }
        };
        add(&self.files, t.files);
        add(&self.dirs, t.dirs);
        add(&self.symlinks, t.symlinks);
        add(&self.fifos, t.fifos);
        add(&self.specials, t.specials);
        add(&self.hard_links, t.hard_links);
        add(&self.skipped, t.skipped);
        add(&self.identical, t.identical);
        add(&self.failed, t.failed);
        add(&self.source_changed, t.source_changed);
        add(&self.bytes_cloned, t.bytes_cloned);
        add(&self.bytes_copied, t.bytes_copied);
        add(&self.hole_bytes, t.hole_bytes);
        add(&self.bytes_skipped, t.bytes_skipped);
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
            Ok(r) => {
                self.totals.add(&TreeTotals::from(&r));
                // Not written: `Overwrite::IfOlder` kept a destination that
                // is not older, or the destination already held this content.
                let copied = !matches!(
                    r.strategy,
                    Strategy::KeptNewer | Strategy::Skipped | Strategy::Deduped
                );
                let action = match r.destination {
                    _ if !copied => EntryAction::Skipped,
                    crate::Destination::Created => EntryAction::Created,
                    crate::Destination::Replaced => EntryAction::Replaced,
                    crate::Destination::Kept => EntryAction::Skipped,
                };
                if copied && r.source_changed {
                    self.warn(rel, crate::SOURCE_CHANGED.to_string());
                }
                if copied && !r.metadata_skipped.is_empty() {
                    self.warn(
                        rel,
                        format!("metadata not applied: {}", r.metadata_skipped.join("; ")),
                    );
                }
                let len = r.len;
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
