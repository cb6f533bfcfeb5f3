//! Finding the duplicates: by filesystem and size, then by the extent map
//! (files already sharing every block are equal without a read), then by a
//! hash of the first block, then by a hash of the whole file. Each file is
//! read at most once: the whole-file hash continues where the first-block
//! hash stopped, seeded with it.
//!
//! The hash is XXH3 (64 bits): it only proposes candidates. The kernel's
//! byte compare in `FIDEDUPERANGE` decides, so a collision (accidental or
//! crafted) costs one refused request and never shares different bytes.
//!
//! A pair (exactly two live files whose first blocks are equal) is not
//! hashed whole when blocks are to be shared: the kernel's compare reads
//! both anyway, so hashing them first would read every byte twice. Such a
//! pair is marked [`Candidate::unread`]; if the kernel finds it different,
//! it is no duplicate group at all (see `share`).

use std::cell::RefCell;
use std::fs::File;
use std::io;
use std::num::NonZeroU64;
use std::os::unix::fs::FileExt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rayon::prelude::*;
use xxhash_rust::xxh3::{Xxh3, xxh3_64};

use super::ag::AgLocks;
use super::dirs::DirFds;
use super::gate::Gate;
use super::report::{SkipReason, Skipped};
use super::scan::{FileEntry, Tree, fstat, is_file, mtime_ns};
use super::{Event, Observer, Phase};

/// The first read of each file: one block.
pub(super) const HEAD: u64 = 4096;

/// Later reads.
const CHUNK: usize = 1 << 20;

/// The candidate's content key is valid.
pub(super) const KEYED: u8 = 1;
/// Left out (skipped, changed, inline, or on a filesystem without dedupe).
pub(super) const OUT: u8 = 2;
/// Follows the first member of its shared cluster for the key being made.
pub(super) const FOLLOW: u8 = 4;
/// Its size group's first-block keys are done (phase 2 was done with the
/// files still open from the map).
pub(super) const HEADED: u8 = 8;
/// Its whole-file keys are done (phase 3 too was done with the files still
/// open).
pub(super) const WHOLE: u8 = 16;
/// One of a pair keyed by its first block only: the kernel's compare is
/// the only one.
const UNREAD: u8 = 32;
/// Its map came from the btrfs tree ([`super::btrfs`]): `sig` is set when
/// another member of its size group has the same one, and the file is not
/// mapped again.
pub(super) const MAPPED: u8 = 64;
/// The btrfs tree says it is stored inline.
pub(super) const TREE_INLINE: u8 = 128;

/// A file that shares its size with another file on its filesystem.
#[derive(Debug, Clone, Copy)]
pub(super) struct Candidate {
    pub(super) size: u64,
    /// Hash of its physical extent map when every extent is shared and
    /// exactly addressed; 0 otherwise. Equal non-zero values (same size,
    /// same filesystem) mean the same blocks, hence the same bytes.
    pub(super) sig: u64,
    /// Content key: hash of the first block, then of the whole file.
    pub(super) key: u64,
    /// Index into [`Tree::files`].
    pub(super) file: u32,
    pub(super) dev: u16,
    pub(super) flags: u8,
}

impl Candidate {
    pub(super) fn out(&self) -> bool {
        self.flags & OUT != 0
    }

    /// Keyed by its first block only: one of a pair that the kernel's
    /// compare alone decides.
    pub(super) fn unread(&self) -> bool {
        self.flags & UNREAD != 0
    }
}

/// Shared state of the compare phase.
pub(super) struct Ctx<'a> {
    pub(super) tree: &'a Tree,
    /// Where candidates are opened from.
    pub(super) dirs: DirFds,
    pub(super) observer: &'a dyn Observer,
    /// Where `FIEMAP` and `FIDEDUPERANGE` calls wait for a CPU.
    pub(super) kernel: Gate,
    /// One worker per CPU, where the map phase runs while the cache is
    /// warm (see `map::map_phase`); `None` when the run has no more
    /// workers than CPUs.
    pub(super) warm: Option<&'a rayon::ThreadPool>,
    /// Where `FIEMAP` calls on XFS wait for their allocation group.
    pub(super) ags: AgLocks,
    /// Blocks will be shared, so the kernel compares every group: a pair
    /// need not be hashed whole first.
    pub(super) kernel_decides: bool,
    /// Map btrfs candidates from the tree where the kernel allows it.
    pub(super) tree_search: bool,
    pub(super) skipped: Mutex<Vec<Skipped>>,
    pub(super) bytes_read: AtomicU64,
    pub(super) files_read: AtomicU64,
    pub(super) files_read_whole: AtomicU64,
    pub(super) files_inline: AtomicU64,
    pub(super) files_opened: AtomicU64,
    /// Candidates mapped from the btrfs tree.
    pub(super) files_tree_mapped: AtomicU64,
    /// Pairs left to the kernel's compare.
    pub(super) pairs_unread: AtomicU64,
    /// Of those, the pairs read here first (see `share::differs_early`).
    pub(super) pairs_read_first: AtomicU64,
    /// A first-block read found its data out of the page cache: later
    /// chunks of the map phase ask read-ahead first ([`super::map`]).
    pub(super) cold: AtomicBool,
    /// Reads are tried with `RWF_NOWAIT` (cleared where the kernel does
    /// not support it, so that each read is not tried twice).
    pub(super) nowait: AtomicBool,
}

impl Ctx<'_> {
    pub(super) fn skip(&self, file: u32, reason: SkipReason) {
        let s = Skipped {
            path: self.tree.path(file),
            reason,
        };
        self.observer.event(&Event::Skipped(&s));
        self.skipped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(s);
    }
}

thread_local! {
    static BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Opens file `i` of the tree read-only and checks it is still the file
/// scanned (same device, inode, size and mtime).
pub(super) fn open_checked(ctx: &Ctx<'_>, i: u32) -> Result<File, SkipReason> {
    let e: &FileEntry = &ctx.tree.files[i as usize];
    ctx.files_opened.fetch_add(1, Ordering::Relaxed);
    let f = ctx
        .dirs
        .open(ctx.tree, i)
        .map_err(|err| SkipReason::Error(format!("cannot open: {err}")))?;
    let m = fstat(&f).map_err(|err| SkipReason::Error(format!("cannot fstat: {err}")))?;
    let dev = ctx.tree.devices[e.dev as usize].dev;
    if !is_file(&m)
        || m.st_dev != dev
        || m.st_ino != e.ino
        || u64::try_from(m.st_size) != Ok(e.size)
        || mtime_ns(&m) != e.mtime
    {
        return Err(SkipReason::Changed);
    }
    Ok(f)
}

/// Sorts the files into candidates: per (filesystem, size), at least two
/// distinct inodes. Extra names of one inode are reported as hard links.
pub(super) fn candidates(tree: &Tree) -> (Vec<Candidate>, Vec<Skipped>) {
    // The keys themselves are sorted, not indexes into the files: the
    // sort and the pass after it then read memory in order.
    let mut order: Vec<(u16, u64, u64, u32)> = tree
        .files
        .iter()
        .enumerate()
        .map(|(i, e)| (e.dev, e.size, e.ino, i as u32))
        .collect();
    order.par_sort_unstable();
    let mut out = Vec::new();
    let mut links = Vec::new();
    let mut firsts = Vec::new();
    for run in order.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
        firsts.clear();
        for (k, &(_, _, ino, i)) in run.iter().enumerate() {
            if k > 0 && ino == run[k - 1].2 {
                links.push(Skipped {
                    path: tree.path(i),
                    reason: SkipReason::HardLink,
                });
            } else {
                firsts.push(i);
            }
        }
        if firsts.len() >= 2 {
            let (dev, size) = (run[0].0, run[0].1);
            out.extend(firsts.iter().map(|&file| Candidate {
                size,
                sig: 0,
                key: 0,
                file,
                dev,
                flags: 0,
            }));
        }
    }
    (out, links)
}

/// Reads from `offset` to `size` into the hasher; returns the bytes read,
/// or `Changed` when the file ended early or grew.
fn hash_from(f: &File, offset: u64, size: u64, h: &mut Xxh3) -> Result<u64, SkipReason> {
    BUF.with(|b| {
        let mut buf = b.borrow_mut();
        let want = ((size - offset) as usize).min(CHUNK) + 1;
        if buf.len() < want {
            buf.resize(want, 0);
        }
        let mut at = offset;
        loop {
            let n = match f.read_at(&mut buf[..want], at) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(SkipReason::Error(format!("cannot read: {e}"))),
            };
            if n == 0 {
                break;
            }
            let keep = n.min((size.saturating_sub(at)) as usize);
            h.update(&buf[..keep]);
            at += n as u64;
            if at > size {
                return Err(SkipReason::Changed);
            }
        }
        if at != size {
            return Err(SkipReason::Changed);
        }
        Ok(at - offset)
    })
}

/// The first-block key of an open file, with read-ahead of its first
/// 128 KiB first when `advise` ([`super::map::read_ahead`]).
///
/// The first read is tried with `RWF_NOWAIT`: when the data is not all in
/// the page cache it returns early, marks the run [`Ctx::cold`], and the
/// rest is read waiting for it.
pub(super) fn head_key(
    ctx: &Ctx<'_>,
    f: &File,
    size: u64,
    advise: bool,
) -> Result<u64, SkipReason> {
    let n = HEAD.min(size);
    if advise {
        super::map::read_ahead(f, size, ctx.cold.load(Ordering::Relaxed));
    }
    let key = BUF.with(|b| {
        let mut buf = b.borrow_mut();
        if buf.len() < HEAD as usize {
            buf.resize(HEAD as usize, 0);
        }
        let mut got = 0usize;
        if !ctx.cold.load(Ordering::Relaxed) && ctx.nowait.load(Ordering::Relaxed) {
            let mut bufs = [io::IoSliceMut::new(&mut buf[..n as usize])];
            match rustix::io::preadv2(f, &mut bufs, 0, rustix::io::ReadWriteFlags::NOWAIT) {
                Ok(k) if k as u64 == n => got = k,
                Ok(0) => {}
                Ok(k) => {
                    got = k;
                    ctx.cold.store(true, Ordering::Relaxed);
                }
                Err(rustix::io::Errno::AGAIN) => ctx.cold.store(true, Ordering::Relaxed),
                Err(rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::NOSYS) => {
                    ctx.nowait.store(false, Ordering::Relaxed)
                }
                // Failing: the plain read says why.
                Err(_) => {}
            }
        }
        while (got as u64) < n {
            match f.read_at(&mut buf[got..n as usize], got as u64) {
                Ok(0) => return Err(SkipReason::Changed),
                Ok(k) => got += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(SkipReason::Error(format!("cannot read: {e}"))),
            }
        }
        Ok(xxh3_64(&buf[..got]))
    })?;
    ctx.bytes_read.fetch_add(n, Ordering::Relaxed);
    ctx.files_read.fetch_add(1, Ordering::Relaxed);
    Ok(key)
}

/// Index ranges of `c` where `key` is equal (the slice is sorted by it).
pub(super) fn runs<K: PartialEq>(
    c: &[Candidate],
    key: impl Fn(&Candidate) -> K,
) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < c.len() {
        let k = key(&c[start]);
        let mut end = start + 1;
        while end < c.len() && key(&c[end]) == k {
            end += 1;
        }
        out.push(start..end);
        start = end;
    }
    out
}

pub(super) fn leave_out(ctx: &Ctx<'_>, c: &mut Candidate, reason: SkipReason) {
    c.flags |= OUT;
    ctx.skip(c.file, reason);
}

pub(super) fn progress(ctx: &Ctx<'_>, bytes: u64) {
    ctx.observer.event(&Event::Progress {
        phase: Phase::Compare,
        files: 1,
        bytes,
    });
}

/// Marks the live members of `s` (sorted so that equal `sig`s are
/// adjacent) that need a key for the next step: every file outside a shared
/// cluster when `unclustered`, and the first member of each cluster; the
/// other members of a cluster follow their first (they hold the same bytes).
pub(super) fn mark(s: &mut [Candidate], unclustered: bool) {
    for r in runs(s, |x| x.sig) {
        let rs = &mut s[r];
        let clustered = rs[0].sig != 0;
        let mut first = true;
        for x in rs.iter_mut().filter(|x| !x.out()) {
            if !clustered {
                if unclustered {
                    x.flags &= !KEYED;
                }
                continue;
            }
            x.flags &= !KEYED;
            if !first {
                x.flags |= FOLLOW;
            }
            first = false;
        }
    }
}

/// Copies the key of each cluster's keyed first member to its followers;
/// followers whose first dropped out stay unkeyed (they are read
/// themselves next).
pub(super) fn spread(s: &mut [Candidate]) {
    for r in runs(s, |x| x.sig) {
        let rs = &mut s[r];
        let lead = rs
            .iter()
            .find(|x| !x.out() && x.flags & (KEYED | FOLLOW) == KEYED)
            .map(|x| x.key);
        for x in rs.iter_mut() {
            if x.flags & FOLLOW != 0 {
                x.flags &= !FOLLOW;
                if let (Some(k), false) = (lead, x.out()) {
                    x.key = k;
                    x.flags |= KEYED;
                }
            }
        }
    }
}

/// When `s` (first blocks equal, larger than one block, not one shared
/// cluster) is a pair and blocks are to be shared: marks both
/// [`UNREAD`], keyed by their first block, and says so. The kernel's
/// compare reads them once, instead of a hash and then the kernel.
pub(super) fn leave_to_kernel(ctx: &Ctx<'_>, s: &mut [Candidate]) -> bool {
    if !ctx.kernel_decides || s.iter().filter(|x| !x.out()).count() != 2 {
        return false;
    }
    for x in s.iter_mut().filter(|x| !x.out()) {
        x.flags |= UNREAD | KEYED;
    }
    ctx.pairs_unread.fetch_add(1, Ordering::Relaxed);
    true
}

/// Whether the live members of `s` are one shared cluster (or fewer than
/// two files): then they are equal, or alone, without reading.
pub(super) fn settled(s: &[Candidate]) -> bool {
    let mut live = s.iter().filter(|x| !x.out());
    match (live.next(), live.clone().next()) {
        (Some(first), Some(_)) => first.sig != 0 && live.all(|x| x.sig == first.sig),
        _ => true,
    }
}

/// Computes `key` for every live, unkeyed candidate: the followers first
/// wait for their cluster's first, then whoever is still unkeyed is read.
fn keys(
    ctx: &Ctx<'_>,
    c: &mut [Candidate],
    groups: &[std::ops::Range<usize>],
    f: impl Fn(&Candidate) -> Result<u64, SkipReason> + Sync,
) {
    let pass = |c: &mut [Candidate]| {
        c.par_iter_mut()
            .filter(|x| !x.out() && x.flags & (KEYED | FOLLOW) == 0)
            .for_each(|x| match f(x) {
                Ok(k) => {
                    x.key = k;
                    x.flags |= KEYED;
                }
                Err(r) => leave_out(ctx, x, r),
            });
    };
    pass(c);
    for g in groups {
        spread(&mut c[g.clone()]);
    }
    pass(c);
}

/// Groups the candidates by content. Returns the live members of content
/// groups (two or more each), sorted by (filesystem, size, key, sig), and
/// the range of each group, in block order ([`in_block_order`]).
pub(super) fn compare(
    ctx: &Ctx<'_>,
    mut c: Vec<Candidate>,
) -> (Vec<Candidate>, Vec<std::ops::Range<usize>>) {
    super::map::map_phase(ctx, &mut c);
    // The map phase compares the size groups small enough to hold open
    // (all of them, on most trees): then phases 2 and 3 have nothing to do.
    if c.iter()
        .any(|x| !x.out() && (x.flags & (HEADED | WHOLE)) != (HEADED | WHOLE))
    {
        read_phases(ctx, &mut c);
    }
    c.par_sort_unstable_by_key(|x| (x.dev, x.size, x.key, x.sig));
    // Only the live members of groups go on: the other candidates' memory
    // is given back before the share phase builds the report.
    let mut kept = Vec::new();
    let mut groups = Vec::new();
    for g in runs(&c, |x| (x.dev, x.size, x.key)) {
        let start = kept.len();
        kept.extend(c[g].iter().filter(|x| !x.out()).copied());
        if kept.len() - start >= 2 {
            groups.push(start..kept.len());
        } else {
            kept.truncate(start);
        }
    }
    drop(c);
    kept.shrink_to_fit();
    in_block_order(ctx.tree, &kept, &mut groups);
    (kept, groups)
}

/// Phases 2 and 3, for the size groups the map phase left (larger than
/// it holds open).
fn read_phases(ctx: &Ctx<'_>, c: &mut [Candidate]) {
    // Phase 2: the first block of one member per shared cluster, where the
    // size group holds more than one cluster.
    c.par_sort_unstable_by_key(|x| (x.dev, x.size, x.sig));
    let sizes = runs(c, |x| (x.dev, x.size));
    for g in &sizes {
        let s = &mut c[g.clone()];
        if s[0].flags & HEADED != 0 {
            continue;
        }
        if settled(s) {
            for x in s.iter_mut() {
                x.flags |= KEYED;
            }
        } else {
            mark(s, false);
        }
    }
    keys(ctx, c, &sizes, |x| {
        open_checked(ctx, x.file).and_then(|f| head_key(ctx, &f, x.size, true))
    });
    // Phase 3: whole files where the first blocks matched, one per cluster.
    c.par_sort_unstable_by_key(|x| (x.dev, x.size, x.key, x.sig));
    let heads = runs(c, |x| (x.dev, x.size, x.key));
    for g in &heads {
        let s = &mut c[g.clone()];
        if s[0].size > HEAD && s[0].flags & WHOLE == 0 && !settled(s) && !leave_to_kernel(ctx, s) {
            mark(s, true);
        }
    }
    keys(ctx, c, &heads, |x| whole_key(ctx, x));
}

/// Orders the groups `groups` of `c` by filesystem and lowest inode number,
/// roughly where their blocks lie. Each remap updates the free-space and
/// reference-count trees around the blocks it frees and shares: in block
/// order, consecutive calls find the same tree blocks in the CPU's caches,
/// and the workers, taking neighbouring groups in turn from a queue split
/// in halves, work on distant parts of the filesystem (on XFS, other
/// allocation groups, whose header locks they then do not share). Measured
/// on XFS with the bench's tree: the share phase took 20 % less time on one
/// worker, 30 % less with the default four.
fn in_block_order(tree: &Tree, c: &[Candidate], groups: &mut [std::ops::Range<usize>]) {
    groups.par_sort_by_cached_key(|r| {
        let lowest = c[r.clone()]
            .iter()
            .map(|x| tree.files[x.file as usize].ino)
            .min();
        (c[r.start].dev, lowest)
    });
}

/// The whole-file key: the first block's hash seeds the hash of the rest.
fn whole_key(ctx: &Ctx<'_>, x: &Candidate) -> Result<u64, SkipReason> {
    whole_of(ctx, &open_checked(ctx, x.file)?, x)
}

/// [`whole_key`] of the open file `f`.
pub(super) fn whole_of(ctx: &Ctx<'_>, f: &File, x: &Candidate) -> Result<u64, SkipReason> {
    if let Some(len) = NonZeroU64::new(x.size - HEAD) {
        let _ = rustix::fs::fadvise(f, HEAD, Some(len), rustix::fs::Advice::Sequential);
    }
    let mut h = Xxh3::with_seed(x.key);
    let n = hash_from(f, HEAD, x.size, &mut h)?;
    ctx.bytes_read.fetch_add(n, Ordering::Relaxed);
    ctx.files_read_whole.fetch_add(1, Ordering::Relaxed);
    ctx.observer.event(&Event::Progress {
        phase: Phase::Compare,
        files: 0,
        bytes: n,
    });
    Ok(h.digest())
}
