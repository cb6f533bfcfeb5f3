//! Tree dedupe (Linux): find files with identical content under some
//! directories and make them share their blocks with `FIDEDUPERANGE`.
//!
//! ```no_run
//! use cow_copy::dedupe::{DedupeOptions, Event};
//!
//! let report = DedupeOptions::new()
//!     .min_size(4096)
//!     .run(&["/srv/venvs", "/srv/cache"], &|e: &Event<'_>| {
//!         if let Event::Skipped(s) = e {
//!             eprintln!("skipped {}: {}", s.path.display(), s.reason);
//!         }
//!     })?;
//! println!(
//!     "{} groups, {} bytes newly shared, {} already shared, {:?} bytes freed",
//!     report.groups.len(),
//!     report.bytes_newly_shared,
//!     report.bytes_already_shared,
//!     report.space_freed
//! );
//! # Ok::<(), cow_copy::dedupe::DedupeError>(())
//! ```
//!
//! # How
//!
//! 1. **Scan** ([`scan`]): every regular file's device, inode, size and
//!    mtime, directories listed in parallel, never crossing into another
//!    filesystem. About 40 bytes plus the name per file.
//! 2. **Candidates**: files sharing (filesystem, size) with another inode.
//!    Other names of one inode are hard links: skipped, never read. Each
//!    filesystem is asked once, with a zero-length `FIDEDUPERANGE`, whether
//!    it can dedupe at all; one that cannot (ext4, tmpfs) is reported once.
//! 3. **Compare** ([`group`]): the extent map (FIEMAP, via `cow-verify`)
//!    of each candidate; files whose extents are all shared and equal are
//!    identical without a read (a rerun reads nothing it already shared).
//!    On btrfs, as root, the maps come from the filesystem's tree instead
//!    (`btrfs`: one search per range of inode numbers, no file opened).
//!    Then a hash of the first block, then of the whole file, each file
//!    read at most once, on every CPU (rayon). Holes read as zeros, so they
//!    neither hide nor fake a match. A pair whose first blocks match is
//!    not hashed whole (unless in a dry run): the kernel's compare in step
//!    4 reads it once and decides.
//! 4. **Share** ([`share`]): per group a deterministic reference (the
//!    member of the largest already-shared cluster, then the lowest inode),
//!    every other member checked (read-only, immutable, append-only, open
//!    for writing by a process, changed since the scan) and shared with
//!    [`identical::dedupe_into`](crate::identical::dedupe_into): the kernel
//!    compares the bytes under its locks, so a file rewritten during the run
//!    is refused, never clobbered. Its mtime is kept (and put back if a
//!    kernel changed it); directories are not touched.
//! 5. **Space**: `statvfs` after `syncfs`, before and after, on each
//!    filesystem where something was shared (after, without the flush on
//!    XFS, whose free-space count is current without it).

mod ag;
mod btrfs;
mod dirs;
mod fiemap;
mod gate;
mod group;
mod map;
mod report;
mod scan;
mod share;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use rayon::prelude::*;

pub use report::{
    CannotDedupe, DedupeError, DedupeReport, DuplicateGroup, Member, Outcome, SkipReason, Skipped,
    Stats,
};

use crate::identical;

/// The phases of a run, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Walking the trees.
    Scan,
    /// Reading extent maps and hashing candidates.
    Compare,
    /// Sharing blocks.
    Share,
}

/// Progress of a run, for an [`Observer`]. Events come from every worker
/// thread.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A phase starts; `total` is its unit count (candidate files for
    /// [`Phase::Compare`], group members other than the references for
    /// [`Phase::Share`], 0 when unknown).
    Started {
        /// The phase.
        phase: Phase,
        /// Units to do.
        total: u64,
    },
    /// Some work was done: `files` more files, `bytes` more bytes (read
    /// while comparing, shared while sharing).
    Progress {
        /// The phase.
        phase: Phase,
        /// Files done.
        files: u64,
        /// Bytes done.
        bytes: u64,
    },
    /// The walk is done.
    Scanned {
        /// Regular files seen.
        files: u64,
    },
    /// A file was left alone.
    Skipped(&'a Skipped),
    /// A group was shared (or, in a dry run, examined).
    Group(&'a DuplicateGroup),
}

/// Receives [`Event`]s; any `Fn(&Event) + Sync` is one.
pub trait Observer: Sync {
    /// Called for each event.
    fn event(&self, event: &Event<'_>);
}

impl<F: Fn(&Event<'_>) + Sync> Observer for F {
    fn event(&self, event: &Event<'_>) {
        self(event)
    }
}

/// Options of a tree dedupe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DedupeOptions {
    min_size: u64,
    dry_run: bool,
    threads: usize,
    cpus: usize,
    tree_search: bool,
}

impl Default for DedupeOptions {
    fn default() -> Self {
        DedupeOptions::new()
    }
}

/// `used` bytes of the filesystem holding `path`, as `df` computes them,
/// after flushing it when `flush`.
fn used_bytes(path: &Path, flush: bool) -> Option<u64> {
    let f = File::open(path).ok()?;
    if flush {
        rustix::fs::syncfs(&f).ok()?;
    }
    let v = rustix::fs::fstatvfs(&f).ok()?;
    Some(v.f_blocks.saturating_sub(v.f_bfree) * v.f_frsize)
}

impl DedupeOptions {
    /// Every non-empty file, changes made.
    pub fn new() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        DedupeOptions {
            min_size: 1,
            dry_run: false,
            // Reads wait on the disk when the cache is cold: more workers
            // than CPUs keep it busy. More than two per CPU cost more in
            // the kernel's lock waits than they gained (docs/dedupe.md,
            // Threads).
            threads: (cpus * 2).clamp(4, 32),
            cpus,
            tree_search: true,
        }
    }

    /// Worker threads (default: two per CPU, 4 to 32).
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = n.max(1);
        self
    }

    /// Leaves files smaller than `bytes` alone (they are not even read).
    pub fn min_size(mut self, bytes: u64) -> Self {
        self.min_size = bytes;
        self
    }

    /// On btrfs, reads the candidates' extent maps from the filesystem's
    /// tree where the kernel allows it (root: `BTRFS_IOC_TREE_SEARCH_V2`,
    /// after a `syncfs`) instead of opening each file for `FIEMAP`
    /// (default: yes). Either way only the kernel's compare shares blocks;
    /// the tree only spares the reads and opens of files already sharing
    /// theirs, and of files stored inline.
    pub fn btrfs_tree_search(mut self, yes: bool) -> Self {
        self.tree_search = yes;
        self
    }

    /// Finds and checks everything but shares nothing.
    pub fn dry_run(mut self, yes: bool) -> Self {
        self.dry_run = yes;
        self
    }

    /// Deduplicates the files under `roots` (directories or files).
    ///
    /// # Errors
    ///
    /// [`DedupeError`] when a root cannot be read; everything that goes
    /// wrong with a single file is a [`Skipped`] entry of the report.
    pub fn run<P: AsRef<Path>>(
        &self,
        roots: &[P],
        observer: &dyn Observer,
    ) -> Result<DedupeReport, DedupeError> {
        let roots: Vec<PathBuf> = roots.iter().map(|p| p.as_ref().to_path_buf()).collect();
        // Before the workers exist: in a process of one thread the kernel
        // grows the table without waiting for an RCU grace period.
        dirs::grow_ahead();
        // The map phase's workers while the cache is warm: one per CPU.
        let warm = (self.cpus < self.threads)
            .then(|| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(self.cpus)
                    .thread_name(|i| format!("cow-dedupe-w{i}"))
                    .build()
                    .ok()
            })
            .flatten();
        match rayon::ThreadPoolBuilder::new()
            .num_threads(self.threads)
            .thread_name(|i| format!("cow-dedupe-{i}"))
            .build()
        {
            Ok(pool) => pool.install(|| self.run_here(&roots, warm.as_ref(), observer)),
            // No threads to be had: the global pool does it.
            Err(_) => self.run_here(&roots, None, observer),
        }
    }

    fn run_here(
        &self,
        roots: &[PathBuf],
        warm: Option<&rayon::ThreadPool>,
        observer: &dyn Observer,
    ) -> Result<DedupeReport, DedupeError> {
        let mut stats = Stats::default();
        let t = Instant::now();
        observer.event(&Event::Started {
            phase: Phase::Scan,
            total: 0,
        });
        let held = self.threads * map::GROUP_OPEN;
        let (tree, walked) = scan::scan(roots, self.min_size, dirs::walk_budget(held), observer)?;
        let (mut cands, links) = group::candidates(&tree);
        stats.files_scanned = tree.scanned;
        stats.bytes_scanned = tree.bytes;
        let ndev = tree.devices.len();
        let cannot = Mutex::new(vec![None; ndev]);
        let unsupported: Vec<AtomicBool> = (0..ndev).map(|_| AtomicBool::new(false)).collect();
        let bad = probe(&tree, &cands);
        {
            let mut list = cannot.lock().unwrap_or_else(|e| e.into_inner());
            for (d, reason) in bad.iter().enumerate() {
                if let Some(reason) = reason {
                    unsupported[d].store(true, Ordering::Relaxed);
                    list[d] = Some(CannotDedupe {
                        path: tree.devices[d].root.clone(),
                        reason: *reason,
                        files: cands.iter().filter(|c| c.dev as usize == d).count() as u64,
                    });
                }
            }
        }
        cands.retain(|c| bad[c.dev as usize].is_none());
        stats.candidates = cands.len() as u64;
        let mut devs: Vec<bool> = vec![false; ndev];
        for c in &cands {
            devs[c.dev as usize] = true;
        }
        let before: Vec<Option<u64>> = (0..ndev)
            .map(|d| {
                (devs[d] && !self.dry_run)
                    .then(|| used_bytes(&tree.devices[d].root, true))
                    .flatten()
            })
            .collect();
        stats.seconds[0] = t.elapsed().as_secs_f64();

        let t = Instant::now();
        let ctx = group::Ctx {
            tree: &tree,
            dirs: dirs::DirFds::new(&tree, held, walked, cands.iter().map(|c| c.file)),
            observer,
            kernel: gate::Gate::new(self.cpus.min(self.threads)),
            warm,
            ags: ag::AgLocks::new(&tree),
            kernel_decides: !self.dry_run,
            tree_search: self.tree_search,
            skipped: Mutex::new(Vec::new()),
            bytes_read: AtomicU64::new(0),
            files_read: AtomicU64::new(0),
            files_read_whole: AtomicU64::new(0),
            files_inline: AtomicU64::new(0),
            files_opened: AtomicU64::new(0),
            files_tree_mapped: AtomicU64::new(0),
            pairs_unread: AtomicU64::new(0),
            pairs_read_first: AtomicU64::new(0),
            cold: AtomicBool::new(false),
            nowait: AtomicBool::new(true),
        };
        observer.event(&Event::Started {
            phase: Phase::Compare,
            total: cands.len() as u64,
        });
        let (cands, ranges) = group::compare(&ctx, cands);
        stats.seconds[1] = t.elapsed().as_secs_f64();

        let t = Instant::now();
        // Every member but each group's reference is counted once.
        observer.event(&Event::Started {
            phase: Phase::Share,
            total: ranges.iter().map(|r| r.len() as u64 - 1).sum(),
        });
        let sharer = share::Sharer {
            ctx: &ctx,
            dry_run: self.dry_run,
            writers: std::sync::OnceLock::new(),
            unsupported,
            cannot,
            newly: AtomicU64::new(0),
            already: AtomicU64::new(0),
            pairs_differing: AtomicU64::new(0),
        };
        // Each with its reference's sort key (see `Tree::path_key`).
        let mut groups: Vec<(Vec<u8>, DuplicateGroup)> = ranges
            .par_iter()
            .filter_map(|r| {
                let all = &cands[r.clone()];
                let live: std::borrow::Cow<'_, [group::Candidate]> =
                    if all.iter().any(group::Candidate::out) {
                        all.iter().filter(|c| !c.out()).copied().collect()
                    } else {
                        all.into()
                    };
                let (reference, g) = share::share_group(&sharer, &live)?;
                observer.event(&Event::Group(&g));
                Some((tree.path_key(reference), g))
            })
            .collect();
        let shared_on: Vec<bool> = (0..ndev)
            .map(|d| !sharer.unsupported[d].load(Ordering::Relaxed))
            .collect();
        let space_freed = (!self.dry_run).then(|| {
            (0..ndev)
                .filter_map(|d| {
                    let b = before[d]?;
                    // Where the count is current, the flush would only write
                    // the log (40 ms after the bench's XFS run) for the
                    // same number.
                    let dev = &tree.devices[d];
                    let a = used_bytes(&dev.root, !dev.counts_current)?;
                    shared_on[d].then_some(b as i64 - a as i64)
                })
                .sum()
        });
        stats.seconds[2] = t.elapsed().as_secs_f64();
        stats.bytes_read = ctx.bytes_read.load(Ordering::Relaxed);
        stats.files_read = ctx.files_read.load(Ordering::Relaxed);
        stats.files_read_whole = ctx.files_read_whole.load(Ordering::Relaxed);
        stats.files_inline = ctx.files_inline.load(Ordering::Relaxed);
        stats.files_opened = ctx.files_opened.load(Ordering::Relaxed);
        stats.files_tree_mapped = ctx.files_tree_mapped.load(Ordering::Relaxed);
        stats.pairs_kernel_compared = ctx.pairs_unread.load(Ordering::Relaxed);
        stats.pairs_read_first = ctx.pairs_read_first.load(Ordering::Relaxed);
        stats.pairs_differing = sharer.pairs_differing.load(Ordering::Relaxed);
        stats.cold_cache = ctx.cold.load(Ordering::Relaxed);

        groups.par_sort_by(|a, b| a.0.cmp(&b.0));
        let groups: Vec<DuplicateGroup> = groups.into_iter().map(|(_, g)| g).collect();
        let bytes_newly_shared = sharer.newly.load(Ordering::Relaxed);
        let bytes_already_shared = sharer.already.load(Ordering::Relaxed);
        let cannot_dedupe = sharer
            .cannot
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .into_iter()
            .flatten()
            .collect();
        let mut skipped = tree.skipped.clone();
        skipped.extend(links);
        skipped.extend(ctx.skipped.into_inner().unwrap_or_else(|e| e.into_inner()));
        skipped.par_sort_by_cached_key(|s| report::path_key(&s.path));
        Ok(DedupeReport {
            dry_run: self.dry_run,
            groups,
            bytes_newly_shared,
            bytes_already_shared,
            skipped,
            cannot_dedupe,
            space_freed,
            stats,
        })
    }
}

/// For each device: whether the kernel refuses to dedupe there at all,
/// asked once with a zero-length request between its first two candidates.
fn probe(tree: &scan::Tree, cands: &[group::Candidate]) -> Vec<Option<identical::NotPossible>> {
    let mut out = vec![None; tree.devices.len()];
    let mut seen = vec![false; tree.devices.len()];
    for (k, c) in cands.iter().enumerate() {
        let d = c.dev as usize;
        if seen[d] || cands.get(k + 1).is_none_or(|n| n.dev != c.dev) {
            continue;
        }
        seen[d] = true;
        let (Ok(a), Ok(b)) = (
            File::open(tree.path(c.file)),
            File::open(tree.path(cands[k + 1].file)),
        ) else {
            continue;
        };
        out[d] = identical::dedupe_refused(&a, &b);
    }
    out
}
