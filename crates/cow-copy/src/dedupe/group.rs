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
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;
use xxhash_rust::xxh3::{Xxh3, xxh3_64};

use super::btrfs::{self, TreeMap, Want};
use super::dirs::DirFds;
use super::fiemap::{Map, map_of};
use super::gate::Gate;
use super::report::{SkipReason, Skipped};
use super::scan::{FileEntry, Tree, fstat, is_file, mtime_ns};
use super::{Event, Observer, Phase};

/// The first read of each file: one block.
pub(super) const HEAD: u64 = 4096;

/// Later reads.
const CHUNK: usize = 1 << 20;

/// The candidate's content key is valid.
const KEYED: u8 = 1;
/// Left out (skipped, changed, inline, or on a filesystem without dedupe).
const OUT: u8 = 2;
/// Follows the first member of its shared cluster for the key being made.
const FOLLOW: u8 = 4;
/// Its size group's first-block keys are done (phase 2 was done with the
/// files still open from the map).
const HEADED: u8 = 8;
/// Its whole-file keys are done (phase 3 too was done with the files still
/// open).
const WHOLE: u8 = 16;
/// One of a pair keyed by its first block only: the kernel's compare is
/// the only one.
const UNREAD: u8 = 32;
/// Its map came from the btrfs tree ([`super::btrfs`]): `sig` is set when
/// another member of its size group has the same one, and the file is not
/// mapped again.
const MAPPED: u8 = 64;
/// The btrfs tree says it is stored inline.
const TREE_INLINE: u8 = 128;

/// A file that shares its size with another file on its filesystem.
#[derive(Debug, Clone, Copy)]
pub(super) struct Candidate {
    pub(super) size: u64,
    /// Hash of its physical extent map when every extent is shared and
    /// exactly addressed; 0 otherwise. Equal non-zero values (same size,
    /// same filesystem) mean the same blocks, hence the same bytes.
    pub(super) sig: u64,
    /// Content key: hash of the first block, then of the whole file.
    key: u64,
    /// Index into [`Tree::files`].
    pub(super) file: u32,
    pub(super) dev: u16,
    flags: u8,
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
    let mut order: Vec<u32> = (0..tree.files.len() as u32).collect();
    let f = &tree.files;
    order.par_sort_unstable_by_key(|&i| {
        let e = &f[i as usize];
        (e.dev, e.size, e.ino)
    });
    let mut out = Vec::new();
    let mut links = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let e0 = &f[order[start] as usize];
        let mut end = start + 1;
        while end < order.len() && {
            let e = &f[order[end] as usize];
            (e.dev, e.size) == (e0.dev, e0.size)
        } {
            end += 1;
        }
        let run = &order[start..end];
        let mut firsts = Vec::with_capacity(run.len());
        for (k, &i) in run.iter().enumerate() {
            if k > 0 && f[i as usize].ino == f[run[k - 1] as usize].ino {
                links.push(Skipped {
                    path: tree.path(i),
                    reason: SkipReason::HardLink,
                });
            } else {
                firsts.push(i);
            }
        }
        if firsts.len() >= 2 {
            out.extend(firsts.into_iter().map(|i| Candidate {
                size: e0.size,
                sig: 0,
                key: 0,
                file: i,
                dev: e0.dev,
                flags: 0,
            }));
        }
        start = end;
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

/// The first-block key of an open file.
fn head_key(ctx: &Ctx<'_>, f: &File, size: u64) -> Result<u64, SkipReason> {
    let n = HEAD.min(size);
    // A small file is read whole: the kernel's read-ahead would fetch it
    // anyway.
    // A file of one block is read whole by the read itself.
    if size > HEAD
        && let Some(len) = NonZeroU64::new(size.min(128 << 10))
    {
        let _ = rustix::fs::fadvise(f, 0, Some(len), rustix::fs::Advice::WillNeed);
    }
    let key = BUF.with(|b| {
        let mut buf = b.borrow_mut();
        if buf.len() < HEAD as usize {
            buf.resize(HEAD as usize, 0);
        }
        let mut got = 0usize;
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
fn runs<K: PartialEq>(
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

fn leave_out(ctx: &Ctx<'_>, c: &mut Candidate, reason: SkipReason) {
    c.flags |= OUT;
    ctx.skip(c.file, reason);
}

fn progress(ctx: &Ctx<'_>, bytes: u64) {
    ctx.observer.event(&Event::Progress {
        phase: Phase::Compare,
        files: 1,
        bytes,
    });
}

/// Size groups up to this many members are compared with their files
/// held open from the extent map to the last read (no file opened twice);
/// larger ones are mapped file by file and opened again for each later
/// read. A worker compares one such group at a time (no parallel loop
/// inside it, so no other group is stolen while it waits), so at most
/// `threads * GROUP_OPEN` files are open at once.
pub(super) const GROUP_OPEN: usize = 64;

/// The extent map of one candidate; the first block too when the map
/// proves nothing (it will be needed: such a file has no equal in its size
/// group without reading). Returns the file if it was opened and not left
/// out (its blocks may be needed, once the group is known); a file mapped
/// from the tree with a `sig` is not opened.
fn map_one(ctx: &Ctx<'_>, x: &mut Candidate) -> Option<File> {
    if x.flags & TREE_INLINE != 0 {
        return inline(ctx, x);
    }
    if x.flags & MAPPED != 0 && x.sig != 0 {
        progress(ctx, 0);
        return None;
    }
    let f = match open_checked(ctx, x.file) {
        Ok(f) => f,
        Err(r) => {
            leave_out(ctx, x, r);
            return None;
        }
    };
    if x.flags & MAPPED != 0 {
        // The tree showed no other member with its blocks.
        return first_block(ctx, x, f);
    }
    match map_of(
        &ctx.kernel,
        &f,
        x.size,
        ctx.tree.devices[x.dev as usize].btrfs,
    ) {
        Map::Shared(s) => {
            x.sig = s;
            progress(ctx, 0);
            Some(f)
        }
        Map::Inline => inline(ctx, x),
        Map::Other => first_block(ctx, x, f),
    }
}

fn inline(ctx: &Ctx<'_>, x: &mut Candidate) -> Option<File> {
    x.flags |= OUT;
    ctx.files_inline.fetch_add(1, Ordering::Relaxed);
    progress(ctx, 0);
    None
}

/// Keys `x` by the first block of its open file `f`.
fn first_block(ctx: &Ctx<'_>, x: &mut Candidate, f: File) -> Option<File> {
    match head_key(ctx, &f, x.size) {
        Ok(k) => {
            x.key = k;
            x.flags |= KEYED;
            progress(ctx, HEAD.min(x.size));
            Some(f)
        }
        Err(r) => {
            leave_out(ctx, x, r);
            None
        }
    }
}

/// On btrfs, where the kernel allows the search: the maps of the
/// candidates (`c`, sorted by device, size and inode) from the tree, marked
/// [`MAPPED`]. A map no other member of its size group has proves nothing:
/// its `sig` is cleared, and the file is read without being mapped again.
fn premap(ctx: &Ctx<'_>, c: &mut [Candidate]) {
    if !ctx.tree_search {
        return;
    }
    let files = &ctx.tree.files;
    for (d, dev) in ctx.tree.devices.iter().enumerate() {
        if !dev.btrfs {
            continue;
        }
        // 8 bytes per candidate while searching: positions in `c` and
        // file indexes, in inode order.
        let mut idx: Vec<u32> = (0..c.len() as u32)
            .filter(|&k| c[k as usize].dev as usize == d)
            .collect();
        idx.sort_unstable_by_key(|&k| files[c[k as usize].file as usize].ino);
        let file: Vec<u32> = idx.iter().map(|&k| c[k as usize].file).collect();
        let want = |k: usize| {
            let e = &files[file[k] as usize];
            Want {
                ino: e.ino,
                size: e.size,
                mtime: e.mtime,
            }
        };
        btrfs::maps(&dev.root, dev.dev, idx.len(), want, |k, m| {
            let x = &mut c[idx[k] as usize];
            match m {
                TreeMap::Inline => x.flags |= MAPPED | TREE_INLINE,
                TreeMap::Extents(s) => {
                    x.flags |= MAPPED;
                    x.sig = s;
                }
            }
            ctx.files_tree_mapped.fetch_add(1, Ordering::Relaxed);
        });
    }
    let mapped = |x: &Candidate| x.flags & MAPPED != 0 && x.sig != 0;
    for r in runs(c, |x| (x.dev, x.size)) {
        let g = &mut c[r];
        let mut sigs: Vec<u64> = g.iter().filter(|x| mapped(x)).map(|x| x.sig).collect();
        sigs.sort_unstable();
        for x in g.iter_mut().filter(|x| mapped(x)) {
            let from = sigs.partition_point(|&s| s < x.sig);
            if sigs.get(from + 1) != Some(&x.sig) {
                x.sig = 0;
            }
        }
    }
}

/// Sorts `s` by `key`, and `fds` (one per member) with it.
fn sort_with<K: Ord>(
    s: &mut [Candidate],
    fds: &mut Vec<Option<File>>,
    key: impl Fn(&Candidate) -> K,
) {
    let mut idx: Vec<usize> = (0..s.len()).collect();
    idx.sort_by_key(|&i| key(&s[i]));
    let cs: Vec<Candidate> = idx.iter().map(|&i| s[i]).collect();
    let mut old = std::mem::take(fds);
    *fds = idx.iter().map(|&i| old[i].take()).collect();
    s.copy_from_slice(&cs);
}

/// Computes `key` from the open file of every live, unkeyed, non-following
/// member of `s` (`fds` is parallel to it; a member not open yet is opened
/// and kept open).
fn pass(
    ctx: &Ctx<'_>,
    s: &mut [Candidate],
    fds: &mut [Option<File>],
    key: impl Fn(&File, &Candidate) -> Result<u64, SkipReason>,
) {
    for (x, f) in s.iter_mut().zip(fds) {
        if x.out() || x.flags & (KEYED | FOLLOW) != 0 {
            continue;
        }
        if f.is_none() {
            match open_checked(ctx, x.file) {
                Ok(o) => *f = Some(o),
                Err(r) => {
                    leave_out(ctx, x, r);
                    continue;
                }
            }
        }
        let Some(f) = f.as_ref() else {
            continue;
        };
        match key(f, x) {
            Ok(k) => {
                x.key = k;
                x.flags |= KEYED;
            }
            Err(r) => leave_out(ctx, x, r),
        }
    }
}

/// Phases 1 to 3 for one size group of at most [`GROUP_OPEN`] members,
/// each file opened once: the maps, the first block of one member per
/// shared cluster when the group is not one cluster, then the rest of the
/// files whose first blocks matched. Marks the group [`HEADED`] and
/// [`WHOLE`].
fn map_group(ctx: &Ctx<'_>, s: &mut [Candidate]) {
    let mut fds: Vec<Option<File>> = s.iter_mut().map(|x| map_one(ctx, x)).collect();
    let done = |s: &mut [Candidate]| {
        for x in s.iter_mut() {
            x.flags |= KEYED | HEADED | WHOLE;
        }
    };
    sort_with(s, &mut fds, |x| x.sig);
    if settled(s) {
        return done(s);
    }
    mark(s, false);
    let head = |f: &File, x: &Candidate| head_key(ctx, f, x.size);
    pass(ctx, s, &mut fds, head);
    spread(s);
    pass(ctx, s, &mut fds, head);
    if s[0].size > HEAD {
        sort_with(s, &mut fds, |x| (x.key, x.sig));
        for r in runs(s, |x| x.key) {
            let (rs, rf) = (&mut s[r.clone()], &mut fds[r]);
            if settled(rs) || leave_to_kernel(ctx, rs) {
                continue;
            }
            mark(rs, true);
            let whole = |f: &File, x: &Candidate| whole_of(ctx, f, x);
            pass(ctx, rs, rf, whole);
            spread(rs);
            pass(ctx, rs, rf, whole);
        }
    }
    done(s);
}

/// Phase 1 (and 2, for groups small enough to hold open): the extent map
/// of every candidate.
fn map_phase(ctx: &Ctx<'_>, c: &mut [Candidate]) {
    c.par_sort_unstable_by_key(|x| (x.dev, x.size, ctx.tree.files[x.file as usize].ino));
    premap(ctx, c);
    let mut groups: Vec<&mut [Candidate]> = Vec::new();
    let mut rest = c;
    while !rest.is_empty() {
        let k = (rest[0].dev, rest[0].size);
        let n = rest.iter().take_while(|x| (x.dev, x.size) == k).count();
        let (g, tail) = rest.split_at_mut(n);
        groups.push(g);
        rest = tail;
    }
    // Mapped in block order too (see `in_block_order`): on XFS each
    // `FIEMAP` of a file sharing blocks looks them up in the reference-count
    // tree of their allocation group, under its header lock.
    groups.sort_by_key(|g| (g[0].dev, ctx.tree.files[g[0].file as usize].ino));
    groups.into_par_iter().for_each(|g| {
        if g.len() <= GROUP_OPEN {
            map_group(ctx, g);
        } else {
            g.par_iter_mut().filter(|x| !x.out()).for_each(|x| {
                map_one(ctx, x);
            });
        }
    });
}

/// Marks the live members of `s` (sorted so that equal `sig`s are
/// adjacent) that need a key for the next step: every file outside a shared
/// cluster when `unclustered`, and the first member of each cluster; the
/// other members of a cluster follow their first (they hold the same bytes).
fn mark(s: &mut [Candidate], unclustered: bool) {
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
fn spread(s: &mut [Candidate]) {
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
fn leave_to_kernel(ctx: &Ctx<'_>, s: &mut [Candidate]) -> bool {
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
fn settled(s: &[Candidate]) -> bool {
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
    map_phase(ctx, &mut c);
    // Phase 2: the first block of one member per shared cluster, where the
    // size group holds more than one cluster.
    c.par_sort_unstable_by_key(|x| (x.dev, x.size, x.sig));
    let sizes = runs(&c, |x| (x.dev, x.size));
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
    keys(ctx, &mut c, &sizes, |x| {
        open_checked(ctx, x.file).and_then(|f| head_key(ctx, &f, x.size))
    });
    // Phase 3: whole files where the first blocks matched, one per cluster.
    c.par_sort_unstable_by_key(|x| (x.dev, x.size, x.key, x.sig));
    let heads = runs(&c, |x| (x.dev, x.size, x.key));
    for g in &heads {
        let s = &mut c[g.clone()];
        if s[0].size > HEAD && s[0].flags & WHOLE == 0 && !settled(s) && !leave_to_kernel(ctx, s) {
            mark(s, true);
        }
    }
    keys(ctx, &mut c, &heads, |x| whole_key(ctx, x));
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
    groups.sort_by_cached_key(|r| {
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
fn whole_of(ctx: &Ctx<'_>, f: &File, x: &Candidate) -> Result<u64, SkipReason> {
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
