//! Phase 1 of the compare, and phases 2 and 3 for the size groups small
//! enough to hold open: the extent map of every candidate (from the btrfs
//! tree where the kernel allows the search, else `FIEMAP` of the open
//! file), then the first block of each file the map proves nothing about.
//!
//! Size groups are taken in block order, in chunks of at most
//! [`GROUP_OPEN`] files: a chunk is mapped whole, then read. On a cold
//! cache that lets a chunk's reads wait for the disk together rather than
//! one after the other: the first read that would have to wait (tried with
//! `RWF_NOWAIT`, see [`head_key`]) marks the run cold, and from then on
//! each chunk asks read-ahead for every file it is about to read before it
//! reads the first. On a warm cache nothing is added: the same calls, in
//! another order.

use std::fs::File;
use std::num::NonZeroU64;
use std::sync::atomic::Ordering;

use rayon::prelude::*;

use super::ag::Guess;
use super::btrfs::{self, TreeMap, Want};
use super::fiemap::{Map, Serial, map_of};
use super::group::{
    Candidate, Ctx, FOLLOW, HEAD, HEADED, KEYED, MAPPED, OUT, TREE_INLINE, WHOLE, head_key,
    leave_out, leave_to_kernel, mark, open_checked, progress, runs, settled, spread, whole_of,
};
use super::report::SkipReason;

/// Size groups up to this many members are compared with their files
/// held open from the extent map to the last read (no file opened twice);
/// larger ones are mapped file by file and opened again for each later
/// read. A worker compares one chunk of such groups, at most this many
/// files in all, at a time (no parallel loop inside it, so no other work
/// is stolen while it waits), so at most `threads * GROUP_OPEN` files are
/// open at once.
pub(super) const GROUP_OPEN: usize = 64;

/// What mapping one candidate left.
enum Mapped {
    /// Nothing open: left out, inline, or proven by the tree.
    Closed,
    /// Open, its map proving it equal to every file with its `sig`.
    Proven(File),
    /// Open, its map proving nothing: its first block is to be read.
    Unproven(File),
    /// Open, its first block read (keyed).
    Read(File),
}

/// The extent map of one candidate, without reading it. A file mapped
/// from the tree with a `sig` is not opened. `guess` is the XFS allocation
/// group its `FIEMAP` is expected to lock; it becomes the group of the
/// blocks the file turns out to share.
fn map_only(ctx: &Ctx<'_>, x: &mut Candidate, guess: &mut Guess) -> Mapped {
    if x.flags & TREE_INLINE != 0 {
        inline(ctx, x);
        return Mapped::Closed;
    }
    if x.flags & MAPPED != 0 && x.sig != 0 {
        progress(ctx, 0);
        return Mapped::Closed;
    }
    let f = match open_checked(ctx, x.file) {
        Ok(f) => f,
        Err(r) => {
            leave_out(ctx, x, r);
            return Mapped::Closed;
        }
    };
    if x.flags & MAPPED != 0 {
        // The tree showed no other member with its blocks.
        return Mapped::Unproven(f);
    }
    let serial = Serial {
        // The one-per-CPU workers never outnumber the gate's places: it
        // would only pass its lock's cache line between the CPUs twice a
        // call.
        gate: ctx
            .warm
            .is_none_or(|p| p.current_thread_index().is_none())
            .then_some(&ctx.kernel),
        // On a cold cache a call may wait for metadata from the disk while
        // it holds its AG: the workers then wait for the disk anyway, and
        // would only spin behind it.
        ags: (!ctx.cold.load(Ordering::Relaxed)).then_some(&ctx.ags),
        dev: x.dev,
        guess: *guess,
    };
    match map_of(&serial, &f, x.size, ctx.tree.devices[x.dev as usize].btrfs) {
        Map::Shared { sig, physical } => {
            x.sig = sig;
            *guess = ctx.ags.of_physical(x.dev, physical);
            progress(ctx, 0);
            Mapped::Proven(f)
        }
        Map::Inline => {
            inline(ctx, x);
            Mapped::Closed
        }
        Map::Other => Mapped::Unproven(f),
    }
}

/// [`map_only`], then the first block when the map proves nothing (it will
/// be needed: such a file has no equal in its size group without reading).
/// Returns the file if it is still open.
fn map_one(ctx: &Ctx<'_>, x: &mut Candidate, guess: &mut Guess) -> Option<File> {
    match map_only(ctx, x, guess) {
        Mapped::Closed => None,
        Mapped::Proven(f) | Mapped::Read(f) => Some(f),
        Mapped::Unproven(f) => first_block(ctx, x, f, true),
    }
}

/// Leaves out an inline file (nothing to gain), counted.
fn inline(ctx: &Ctx<'_>, x: &mut Candidate) {
    x.flags |= OUT;
    ctx.files_inline.fetch_add(1, Ordering::Relaxed);
    progress(ctx, 0);
}

/// Keys `x` by the first block of its open file `f` (asking read-ahead
/// first when `advise`, see [`head_key`]).
fn first_block(ctx: &Ctx<'_>, x: &mut Candidate, f: File, advise: bool) -> Option<File> {
    match head_key(ctx, &f, x.size, advise) {
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

/// Read-ahead of what [`head_key`] and the whole-file read after it may
/// want of `f`: its first 128 KiB. A file of one block is left to the read
/// itself unless the cache is `cold`.
pub(super) fn read_ahead(f: &File, size: u64, cold: bool) {
    if (size > HEAD || cold)
        && let Some(len) = NonZeroU64::new(size.min(128 << 10))
    {
        let _ = rustix::fs::fadvise(f, 0, Some(len), rustix::fs::Advice::WillNeed);
    }
}

/// Maps and keys a chunk of small size groups: every map first, then
/// read-ahead of the files to be read (see the module's documentation),
/// then each group's reads.
fn map_chunk(ctx: &Ctx<'_>, mut groups: Vec<&mut [Candidate]>) {
    let mut maps: Vec<Vec<Mapped>> = groups
        .iter_mut()
        .map(|g| {
            let mut guess = first_guess(ctx, g);
            g.iter_mut().map(|x| map_only(ctx, x, &mut guess)).collect()
        })
        .collect();
    if !ctx.cold.load(Ordering::Relaxed) {
        probe(ctx, &mut groups, &mut maps);
    }
    let cold = ctx.cold.load(Ordering::Relaxed);
    for (g, m) in groups.iter().zip(&maps) {
        for (x, m) in g.iter().zip(m) {
            if let Mapped::Unproven(f) = m {
                read_ahead(f, x.size, cold);
            }
        }
    }
    for (g, m) in groups.into_iter().zip(maps) {
        let fds = g
            .iter_mut()
            .zip(m)
            .map(|(x, m)| match m {
                Mapped::Closed => None,
                Mapped::Proven(f) | Mapped::Read(f) => Some(f),
                Mapped::Unproven(f) => first_block(ctx, x, f, false),
            })
            .collect();
        key_group(ctx, g, fds);
    }
}

/// Reads the first block of the chunk's first file to be read before any
/// read-ahead is asked for the chunk, while the run is not known to be
/// cold: its `RWF_NOWAIT` read then sees the cache as it is. Asked just
/// before, the read-ahead of a fast disk could already have brought the
/// data in, and a cold cache would go unseen (and unread ahead) chunk
/// after chunk.
fn probe(ctx: &Ctx<'_>, groups: &mut [&mut [Candidate]], maps: &mut [Vec<Mapped>]) {
    let first = groups
        .iter_mut()
        .flat_map(|g| g.iter_mut())
        .zip(maps.iter_mut().flatten())
        .find(|(_, m)| matches!(m, Mapped::Unproven(_)));
    if let Some((x, m)) = first
        && let Mapped::Unproven(f) = std::mem::replace(m, Mapped::Closed)
        && let Some(f) = first_block(ctx, x, f, false)
    {
        *m = Mapped::Read(f);
    }
}

/// The XFS allocation group the first `FIEMAP` of size group `g` (sorted
/// by inode) is expected to lock: that of its lowest inode, near which XFS
/// put that file's blocks, which the other members usually share.
fn first_guess(ctx: &Ctx<'_>, g: &[Candidate]) -> Guess {
    let x = &g[0];
    ctx.ags.of_inode(x.dev, ctx.tree.files[x.file as usize].ino)
}

/// A unit of the map phase.
enum Work<'a> {
    /// Consecutive size groups of at most [`GROUP_OPEN`] files in all.
    Chunk(Vec<&'a mut [Candidate]>),
    /// One larger size group, mapped file by file.
    Large(&'a mut [Candidate]),
}

/// Phase 1 (and 2 and 3, for groups small enough to hold open): the extent
/// map of every candidate.
pub(super) fn map_phase(ctx: &Ctx<'_>, c: &mut [Candidate]) {
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
    // In block order (see `group::in_block_order`): on XFS each `FIEMAP`
    // of a file sharing blocks looks them up in the reference-count tree of
    // their allocation group, under its header lock; on a cold cache the
    // reads come closer to the order of the disk.
    groups.sort_by_key(|g| (g[0].dev, ctx.tree.files[g[0].file as usize].ino));
    let mut work = Vec::new();
    let mut chunk: Vec<&mut [Candidate]> = Vec::new();
    let mut files = 0;
    for g in groups {
        if g.len() > GROUP_OPEN {
            work.push(Work::Large(g));
            continue;
        }
        if files + g.len() > GROUP_OPEN {
            work.push(Work::Chunk(std::mem::take(&mut chunk)));
            files = 0;
        }
        files += g.len();
        chunk.push(g);
    }
    if !chunk.is_empty() {
        work.push(Work::Chunk(chunk));
    }
    // While the cache is warm, one worker per CPU: every call is CPU work
    // then, and more workers only preempt each other (measured on the
    // bench tree's XFS rerun, the phase took 39-44 ms on two workers
    // against 42-46 ms on four). Once a read has had to wait (`cold`), the
    // one-per-CPU workers leave the units not begun to all the workers.
    let mut work: Vec<Option<Work<'_>>> = work.into_iter().map(Some).collect();
    let cold = || ctx.cold.load(Ordering::Relaxed);
    let unit = |w: &mut Option<Work<'_>>, warm_only: bool| {
        if warm_only && cold() {
            return;
        }
        match w.take() {
            Some(Work::Chunk(groups)) => map_chunk(ctx, groups),
            Some(Work::Large(g)) => {
                let guess = first_guess(ctx, g);
                g.par_iter_mut().filter(|x| !x.out()).for_each(|x| {
                    let mut guess = guess;
                    map_one(ctx, x, &mut guess);
                })
            }
            None => {}
        }
    };
    if let Some(pool) = ctx.warm.filter(|_| !cold()) {
        pool.install(|| work.par_iter_mut().for_each(|w| unit(w, true)));
    }
    work.par_iter_mut().for_each(|w| unit(w, false));
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

/// Phases 2 and 3 for one mapped size group of at most [`GROUP_OPEN`]
/// members (`fds`, one per member, holds those still open), each file
/// opened once: the first block of one member per shared cluster when the
/// group is not one cluster, then the rest of the files whose first blocks
/// matched. Marks the group [`HEADED`] and [`WHOLE`].
fn key_group(ctx: &Ctx<'_>, s: &mut [Candidate], mut fds: Vec<Option<File>>) {
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
    let head = |f: &File, x: &Candidate| head_key(ctx, f, x.size, true);
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
