//! Sharing the blocks of each duplicate group: choose the reference, check
//! every other member, and let `FIDEDUPERANGE` compare and share. Never a
//! clone: the kernel shares only bytes it found equal under its locks.

use std::collections::HashSet;
use std::fs::File;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use rustix::fs::IFlags;

use super::group::{Candidate, Ctx, open_checked};
use super::report::{CannotDedupe, DuplicateGroup, Member, Outcome, SkipReason};
use super::scan::{self, atime_ns, fstat, mtime_ns};
use super::{Event, Phase};
use crate::identical::{self, DedupeResult, NotPossible};

/// State shared by the groups being shared in parallel.
pub(super) struct Sharer<'a> {
    pub(super) ctx: &'a Ctx<'a>,
    pub(super) dry_run: bool,
    /// (`st_dev`, `st_ino`) of files open for writing elsewhere, listed
    /// the first time a group needs it (a group whose members all share
    /// their blocks already changes nothing, so a rerun never lists them).
    pub(super) writers: OnceLock<HashSet<(u64, u64)>>,
    /// Per device: the kernel said this filesystem cannot dedupe.
    pub(super) unsupported: Vec<AtomicBool>,
    /// Per device: what the kernel said, once.
    pub(super) cannot: Mutex<Vec<Option<CannotDedupe>>>,
    pub(super) newly: AtomicU64,
    pub(super) already: AtomicU64,
    /// Pairs only the kernel compared that turned out different.
    pub(super) pairs_differing: AtomicU64,
}

impl Sharer<'_> {
    /// Notes that device `dev` cannot dedupe: one entry per device, with
    /// the first path where it was found; `files` more files are counted.
    pub(super) fn cannot_dedupe(
        &self,
        dev: u16,
        path: impl FnOnce() -> std::path::PathBuf,
        reason: NotPossible,
        files: u64,
    ) {
        self.unsupported[dev as usize].store(true, Ordering::Relaxed);
        let mut list = self.cannot.lock().unwrap_or_else(|e| e.into_inner());
        let entry = list[dev as usize].get_or_insert_with(|| CannotDedupe {
            path: path(),
            reason,
            files: 0,
        });
        entry.files += files;
    }

    fn is_unsupported(&self, dev: u16) -> bool {
        self.unsupported[dev as usize].load(Ordering::Relaxed)
    }

    fn writer(&self, c: &Candidate) -> bool {
        let e = &self.ctx.tree.files[c.file as usize];
        self.writers
            .get_or_init(|| scan::open_for_writing(&self.ctx.dirs.held()))
            .contains(&(self.ctx.tree.devices[e.dev as usize].dev, e.ino))
    }
}

/// The preference order of references: members of the largest shared
/// cluster first (the blocks most already point to), then the lowest
/// inode number (usually the oldest file).
fn by_preference(s: &Sharer<'_>, live: &[Candidate]) -> Vec<usize> {
    // Cluster sizes counted in a sorted list (groups are small: cheaper
    // than a map, 6,000 of them on a rerun of the bench tree).
    let mut sigs: Vec<u64> = live.iter().map(|c| c.sig).filter(|&s| s != 0).collect();
    sigs.sort_unstable();
    let cluster = |c: &Candidate| match c.sig {
        0 => 1,
        sig => sigs.partition_point(|&s| s <= sig) - sigs.partition_point(|&s| s < sig),
    };
    let ino = |c: &Candidate| s.ctx.tree.files[c.file as usize].ino;
    let mut order: Vec<usize> = (0..live.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(cluster(&live[i])), ino(&live[i])));
    order
}

/// Why `c` may not be changed, before opening it.
fn refuse(s: &Sharer<'_>, c: &Candidate) -> Option<SkipReason> {
    if s.ctx.tree.files[c.file as usize].read_only {
        Some(SkipReason::ReadOnly)
    } else if s.writer(c) {
        Some(SkipReason::OpenForWriting)
    } else {
        None
    }
}

/// Why the open file may not be changed (inode flags).
fn refuse_open(f: &File) -> Option<SkipReason> {
    let flags = rustix::fs::ioctl_getflags(f).ok()?;
    if flags.contains(IFlags::IMMUTABLE) {
        Some(SkipReason::Immutable)
    } else if flags.contains(IFlags::APPEND) {
        Some(SkipReason::AppendOnly)
    } else {
        None
    }
}

/// Puts back the mtime the scan saw if sharing changed it (no kernel is
/// known to, for dedupe; this only makes sure).
fn keep_mtime(f: &File, mtime: i64) -> Result<(), SkipReason> {
    let m = fstat(f).map_err(|e| SkipReason::Error(format!("cannot fstat: {e}")))?;
    if mtime_ns(&m) == mtime {
        return Ok(());
    }
    let ts = |ns: i64| rustix::fs::Timespec {
        tv_sec: ns.div_euclid(1_000_000_000),
        tv_nsec: ns.rem_euclid(1_000_000_000) as _,
    };
    let times = rustix::fs::Timestamps {
        last_access: ts(atime_ns(&m)),
        last_modification: ts(mtime),
    };
    rustix::fs::futimens(f, &times)
        .map_err(|e| SkipReason::Error(format!("shared, but cannot restore its mtime: {e}")))
}

/// Shares one member into the reference's blocks.
fn share_one(s: &Sharer<'_>, keep: &File, c: &Candidate) -> Outcome {
    let skipped = |reason| Outcome::Skipped { reason };
    if let Some(r) = refuse(s, c) {
        return skipped(r);
    }
    let f = match open_checked(s.ctx, c.file) {
        Ok(f) => f,
        Err(r) => return skipped(r),
    };
    if let Some(r) = refuse_open(&f) {
        return skipped(r);
    }
    if s.dry_run {
        s.newly.fetch_add(c.size, Ordering::Relaxed);
        return Outcome::WouldShare { bytes: c.size };
    }
    let mtime = s.ctx.tree.files[c.file as usize].mtime;
    let result = s
        .ctx
        .kernel
        .pass(|| identical::dedupe_into(keep, &f, c.size));
    let shared = match result {
        Ok(DedupeResult::Shared { bytes }) => bytes,
        Ok(DedupeResult::Differs { shared, .. }) => shared,
        Ok(DedupeResult::NotPossible { shared, .. }) => shared,
        Err(_) => 0,
    };
    s.newly.fetch_add(shared, Ordering::Relaxed);
    let kept = keep_mtime(&f, mtime);
    match result {
        Ok(DedupeResult::Shared { bytes }) => match kept {
            Ok(()) => Outcome::Shared { bytes },
            Err(r) => skipped(r),
        },
        Ok(DedupeResult::Differs { .. }) => skipped(SkipReason::Differs),
        Ok(DedupeResult::NotPossible {
            reason: NotPossible::Unsupported,
            ..
        }) => {
            s.cannot_dedupe(
                c.dev,
                || s.ctx.tree.path(c.file),
                NotPossible::Unsupported,
                1,
            );
            skipped(SkipReason::NotPossible(NotPossible::Unsupported))
        }
        Ok(DedupeResult::NotPossible { reason, .. }) => skipped(SkipReason::NotPossible(reason)),
        Err(e) => skipped(SkipReason::Error(format!("FIDEDUPERANGE failed: {e}"))),
    }
}

/// How much of a pair left to the kernel is read here first (see
/// [`differs_early`]): no more than the kernel's first request compares,
/// so a difference within it means the kernel would share nothing.
const EARLY: u64 = 1 << 20;

/// Whether `live`, a pair left to the kernel (see
/// [`leave_to_kernel`](super::group::leave_to_kernel)), differs within its
/// first [`EARLY`] bytes, read here. Only asked while no group has needed
/// the files open for writing: listing them reads every process's
/// descriptors (3-8 ms on the bench tree), and a rerun's only work is
/// often such pairs, found different again. Once the list exists, the
/// kernel's compare alone decides, reading each byte once. `false` when
/// they match or cannot be read (the kernel then decides as usual).
fn differs_early(s: &Sharer<'_>, live: &[Candidate]) -> bool {
    if live.len() != 2 || !live.iter().all(Candidate::unread) || s.writers.get().is_some() {
        return false;
    }
    let (Ok(a), Ok(b)) = (
        open_checked(s.ctx, live[0].file),
        open_checked(s.ctx, live[1].file),
    ) else {
        return false;
    };
    s.ctx.pairs_read_first.fetch_add(1, Ordering::Relaxed);
    match identical::compare_content(&a, &b, live[0].size.min(EARLY)) {
        Ok(cmp) => {
            s.ctx
                .bytes_read
                .fetch_add(cmp.bytes_read, Ordering::Relaxed);
            !cmp.is_identical()
        }
        Err(_) => false,
    }
}

/// A group whose members all share the same blocks: nothing to open,
/// check or change; the preferred member is named the reference.
fn already_shared(s: &Sharer<'_>, live: &[Candidate], order: &[usize]) -> DuplicateGroup {
    let tree = s.ctx.tree;
    let size = live[0].size;
    let members = order
        .iter()
        .enumerate()
        .map(|(k, &i)| Member {
            path: tree.path(live[i].file),
            outcome: if k == 0 {
                Outcome::Reference
            } else {
                s.already.fetch_add(size, Ordering::Relaxed);
                Outcome::AlreadyShared
            },
        })
        .collect();
    s.ctx.observer.event(&Event::Progress {
        phase: Phase::Share,
        files: live.len() as u64 - 1,
        bytes: 0,
    });
    DuplicateGroup { size, members }
}

/// Shares one content group (its live members are `live`). Returns the
/// group, and the tree's index of its reference.
pub(super) fn share_group(s: &Sharer<'_>, live: &[Candidate]) -> Option<(u32, DuplicateGroup)> {
    let tree = s.ctx.tree;
    let size = live.first()?.size;
    let order = by_preference(s, live);
    if live.iter().all(|c| c.sig != 0 && c.sig == live[0].sig) {
        return Some((live[order[0]].file, already_shared(s, live, &order)));
    }
    if differs_early(s, live) {
        s.pairs_differing.fetch_add(1, Ordering::Relaxed);
        return None;
    }
    // The first candidate that opens unchanged and is not being written.
    let mut reference = None;
    let mut members: Vec<Member> = Vec::with_capacity(live.len());
    for &i in &order {
        let c = &live[i];
        if s.writer(c) {
            continue;
        }
        match open_checked(s.ctx, c.file) {
            Ok(f) => {
                reference = Some((i, f));
                break;
            }
            Err(r) => {
                s.ctx.skip(c.file, r.clone());
                members.push(Member {
                    path: tree.path(c.file),
                    outcome: Outcome::Skipped { reason: r },
                });
            }
        }
    }
    let (ri, keep) = reference?;
    let rc = live[ri];
    members.insert(
        0,
        Member {
            path: tree.path(rc.file),
            outcome: Outcome::Reference,
        },
    );
    let tried: HashSet<usize> = order.iter().copied().take_while(|&i| i != ri).collect();
    for &i in &order {
        let c = &live[i];
        if i == ri || (tried.contains(&i) && !s.writer(c)) {
            continue;
        }
        let outcome = if rc.sig != 0 && c.sig == rc.sig {
            s.already.fetch_add(size, Ordering::Relaxed);
            Outcome::AlreadyShared
        } else if s.is_unsupported(c.dev) {
            s.cannot_dedupe(c.dev, || tree.path(c.file), NotPossible::Unsupported, 1);
            continue;
        } else {
            share_one(s, &keep, c)
        };
        // A pair only the kernel compared, and it found them different:
        // not duplicates (their first blocks were merely alike), so no
        // group and nothing skipped. Blocks before the first difference
        // are shared all the same (counted in `newly`).
        if c.unread()
            && matches!(
                outcome,
                Outcome::Skipped {
                    reason: SkipReason::Differs
                }
            )
        {
            s.pairs_differing.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        if let Outcome::Skipped { reason } = &outcome
            && !matches!(reason, SkipReason::NotPossible(NotPossible::Unsupported))
        {
            s.ctx.skip(c.file, reason.clone());
        }
        s.ctx.observer.event(&Event::Progress {
            phase: Phase::Share,
            files: 1,
            bytes: match outcome {
                Outcome::Shared { bytes } | Outcome::WouldShare { bytes } => bytes,
                _ => 0,
            },
        });
        members.push(Member {
            path: tree.path(c.file),
            outcome,
        });
    }
    Some((rc.file, DuplicateGroup { size, members }))
}
