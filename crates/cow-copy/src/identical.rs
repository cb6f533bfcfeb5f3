//! Identical content: find out cheaply whether two open files hold the same
//! bytes, and make identical files share their blocks.
//!
//! These are the primitives behind [`Overwrite`](crate::Overwrite) (step 2 of the
//! strategy chain) and `cow dedupe`:
//!
//! - [`same_extents`]: both files are mapped to the same physical blocks (no
//!   data read; Linux `FIEMAP`).
//! - [`compare_content`]: reads both files and stops at the first difference;
//!   the first read is one block, so an early difference costs one block per
//!   file.
//! - [`dedupe_into`]: reverse `FIDEDUPERANGE`: the kernel compares and, where
//!   equal, makes the second file share the first file's blocks. The first
//!   file is never changed, and nothing is shared unless the bytes are equal.
//! - [`decide`]: the update decision for an existing destination.
//!
//! ```no_run
//! # fn main() -> std::io::Result<()> {
//! use std::fs::File;
//! use cow_copy::identical::{compare_content, decide, Decision};
//!
//! let installed = File::open("/opt/app/lib/libfoo.so")?;
//! let staged = File::open("/tmp/stage/lib/libfoo.so")?;
//! let len = staged.metadata()?.len();
//! let cmp = compare_content(&staged, &installed, len)?;
//! println!("identical: {} ({} bytes read)", cmp.is_identical(), cmp.bytes_read);
//!
//! match decide(&staged, &staged.metadata()?, &installed, &installed.metadata()?, true)? {
//!     Decision::Skip { .. } => println!("same content, nothing to write"),
//!     Decision::Deduped { bytes_shared, .. } => println!("{bytes_shared} bytes now shared"),
//!     Decision::Proceed { reason, .. } => println!("copy needed: {reason}"),
//! }
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::fs::{File, Metadata};
use std::io;

use crate::Overwrite;

#[cfg(target_os = "linux")]
mod linux;
#[cfg(not(target_os = "linux"))]
mod other;

#[cfg(target_os = "linux")]
use linux as sys;
#[cfg(not(target_os = "linux"))]
use other as sys;

/// Size of the first read of each file in [`compare_content`]: one block, so
/// that a difference near the start costs little.
pub const FIRST_READ: u64 = 4096;

/// Size of the largest read in [`compare_content`]: each read after the
/// first is [`READ_GROWTH`] times the one before, up to this.
pub const BLOCK_READ: u64 = 1 << 20;

/// How much larger each read of [`compare_content`] is than the one before
/// it, up to [`BLOCK_READ`]: two files that differ a few blocks in are not
/// read to the end of their first MiB. Identical files cost three reads
/// more than with [`BLOCK_READ`] from the second read on.
pub const READ_GROWTH: u64 = 4;

/// The outcome of [`compare_content`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Comparison {
    /// Offset of the first byte that differs (or where one file ended early);
    /// `None` when all compared bytes are equal.
    pub first_difference: Option<u64>,
    /// Bytes read from both files together.
    pub bytes_read: u64,
}

impl Comparison {
    /// Whether every compared byte was equal.
    pub fn is_identical(&self) -> bool {
        self.first_difference.is_none()
    }
}

/// Why the kernel could not share blocks ([`dedupe_into`]); the files were
/// not changed by the failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NotPossible {
    /// The filesystem or platform has no dedupe (`EOPNOTSUPP`, `ENOTTY`,
    /// `ENOSYS`, or not Linux).
    Unsupported,
    /// The files are on different filesystems (`EXDEV`).
    DifferentFilesystem,
    /// Not allowed: the file to be changed is not writable by this user, or
    /// a descriptor lacks the needed access (`EPERM`, `EACCES`, `EBADF`).
    Permission,
    /// A file is being executed, is a swap file, or is being sent by btrfs
    /// (`ETXTBSY`, `EAGAIN`).
    Busy,
    /// The file to be changed is on a read-only mount or in a read-only
    /// btrfs snapshot (`EROFS`).
    ReadOnly,
    /// No room for the metadata that sharing needs (`ENOSPC`, `EDQUOT`).
    NoSpace,
    /// The kernel refused the range (`EINVAL`: e.g. alignment rules).
    Invalid,
    /// The kernel reported success but shared no bytes.
    NoProgress,
}

impl fmt::Display for NotPossible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NotPossible::Unsupported => "the filesystem cannot dedupe",
            NotPossible::DifferentFilesystem => "the files are on different filesystems",
            NotPossible::Permission => "no permission to dedupe",
            NotPossible::Busy => "a file is busy (being executed, a swap file, or being sent)",
            NotPossible::ReadOnly => "the file to share into is read-only (mount or snapshot)",
            NotPossible::NoSpace => "no space for the shared extents' metadata",
            NotPossible::Invalid => "the kernel refused the range",
            NotPossible::NoProgress => "the kernel shared no bytes",
        })
    }
}

/// The outcome of [`dedupe_into`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DedupeResult {
    /// All bytes were equal; `bytes` of the second file now share the first
    /// file's blocks.
    Shared {
        /// Bytes now shared.
        bytes: u64,
    },
    /// The kernel found a difference in the request starting at
    /// `range_start` (the first difference is at or after it). The bytes
    /// before it were equal and are shared now; nothing else changed.
    Differs {
        /// Start of the request that differed.
        range_start: u64,
        /// Bytes shared before the difference.
        shared: u64,
    },
    /// The kernel refused; `shared` bytes from the start were equal and
    /// shared before it did.
    NotPossible {
        /// Why.
        reason: NotPossible,
        /// Bytes shared (and so proven equal) before the refusal.
        shared: u64,
    },
}

/// How [`decide`] knew that the files are identical.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Evidence {
    /// Both files are empty.
    Empty,
    /// Both files are mapped to the same physical blocks (no data read).
    SameExtents,
    /// The bytes were read and compared in user space.
    ByteCompare,
    /// The kernel compared them (`FIDEDUPERANGE`).
    KernelCompare,
    /// Same size and modification time, taken on trust without reading
    /// ([`Overwrite::IfDifferentTrustMtime`](crate::Overwrite::IfDifferentTrustMtime)).
    SizeAndMtime,
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Evidence::Empty => "both files are empty",
            Evidence::SameExtents => "the files already share every block",
            Evidence::ByteCompare => "the contents compared equal",
            Evidence::KernelCompare => "the kernel compared the contents",
            Evidence::SizeAndMtime => "same size and modification time (trusted, not read)",
        })
    }
}

/// Why [`decide`] says the normal copy must run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProceedReason {
    /// The sizes differ; no data was read.
    SizeDiffers {
        /// Source length.
        source: u64,
        /// Destination length.
        destination: u64,
    },
    /// The contents differ, first at or after `from`.
    Differs {
        /// The first difference is at this offset or after it.
        from: u64,
    },
    /// The destination could not be read (opened write-only for lack of
    /// read permission), so equality could not be checked.
    NotReadable,
    /// Not compared: the destination shares no block with any other file
    /// and the source can be cloned over it, which loses nothing and costs
    /// less than reading both ([`decide_update`] with `reclone`).
    NothingShared,
}

impl fmt::Display for ProceedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProceedReason::SizeDiffers {
                source,
                destination,
            } => write!(
                f,
                "sizes differ (source {source} bytes, destination {destination} bytes)"
            ),
            ProceedReason::Differs { from } => write!(f, "contents differ (from byte {from})"),
            ProceedReason::NotReadable => {
                f.write_str("the destination is not readable, so it could not be compared")
            }
            ProceedReason::NothingShared => f.write_str(
                "not compared: the destination shares no block, so cloning over it loses nothing",
            ),
        }
    }
}

/// The update decision for an existing destination ([`decide`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The contents are identical: write nothing. The destination's inode,
    /// times and extents are untouched.
    Skip {
        /// How that was established.
        evidence: Evidence,
        /// Bytes read from both files to establish it.
        bytes_read: u64,
        /// Dedupe was asked for but the kernel refused (the skip stands).
        dedupe_not_possible: Option<NotPossible>,
    },
    /// The contents are identical and the source now shares the
    /// destination's blocks (the destination itself is untouched).
    Deduped {
        /// Bytes of the source now sharing the destination's blocks.
        bytes_shared: u64,
        /// Bytes read in user space before the kernel compared the rest.
        bytes_read: u64,
    },
    /// The copy must run (the destination is untouched so far).
    Proceed {
        /// Why.
        reason: ProceedReason,
        /// Bytes read from both files to find out.
        bytes_read: u64,
    },
}

/// Reads into `buf` from `offset` until it is full or the file ends; returns
/// the bytes read.
fn read_full_at(f: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match sys::read_at(f, &mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// How far ahead of the comparison both files are asked to be read, once
/// the first block compared equal (so an early difference costs no
/// read-ahead).
const PREFETCH_WINDOW: u64 = 8 << 20;

/// How much of each file [`decide`] asks to be read before comparing the
/// first block: the kernel's usual read-ahead window, so a small file costs
/// one read from disk however early it differs.
const HEAD_READ_AHEAD: u64 = 128 << 10;

thread_local! {
    /// The two read buffers, reused across comparisons on this thread (a
    /// fresh 1 MiB allocation per file costs page faults on every use).
    static BUFFERS: std::cell::RefCell<(Vec<u8>, Vec<u8>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// Compares `start..end` of both files: the first read is `first` bytes,
/// each later one [`READ_GROWTH`] times larger, up to [`BLOCK_READ`];
/// during the [`BLOCK_READ`] reads both files are
/// read ahead of the comparison, from `fetched` on (read-ahead of both was
/// already asked for below it).
fn compare_range(
    a: &File,
    b: &File,
    start: u64,
    end: u64,
    first: u64,
    fetched: u64,
) -> io::Result<Comparison> {
    let cap = (end.saturating_sub(start)).min(BLOCK_READ.max(first)) as usize;
    BUFFERS.with(|cell| match cell.try_borrow_mut() {
        Ok(mut bufs) => {
            let (ba, bb) = &mut *bufs;
            if ba.len() < cap {
                ba.resize(cap, 0);
                bb.resize(cap, 0);
            }
            let bufs = (&mut ba[..cap], &mut bb[..cap]);
            compare_with(a, b, start..end, first, fetched, bufs)
        }
        // Not reentrant in practice; be correct anyway.
        Err(_) => compare_with(
            a,
            b,
            start..end,
            first,
            fetched,
            (&mut vec![0; cap], &mut vec![0; cap]),
        ),
    })
}

fn compare_with(
    a: &File,
    b: &File,
    range: std::ops::Range<u64>,
    first: u64,
    fetched: u64,
    (ba, bb): (&mut [u8], &mut [u8]),
) -> io::Result<Comparison> {
    let mut cmp = Comparison {
        first_difference: None,
        bytes_read: 0,
    };
    let (start, end) = (range.start, range.end);
    let mut offset = start;
    let mut chunk = first.max(1);
    // Read-ahead already requested up to here.
    let mut fetched = fetched.max(start);
    while offset < end {
        let n = (end - offset).min(chunk) as usize;
        if chunk >= BLOCK_READ && offset + n as u64 > fetched {
            let upto = (offset + PREFETCH_WINDOW).min(end);
            sys::prefetch(a, fetched.max(offset), upto - fetched.max(offset));
            sys::prefetch(b, fetched.max(offset), upto - fetched.max(offset));
            fetched = upto;
        }
        let ra = read_full_at(a, &mut ba[..n], offset)?;
        let rb = read_full_at(b, &mut bb[..n], offset)?;
        cmp.bytes_read += (ra + rb) as u64;
        if ra != n || rb != n || ba[..n] != bb[..n] {
            let same = ba[..ra.min(rb)]
                .iter()
                .zip(&bb[..ra.min(rb)])
                .take_while(|(x, y)| x == y)
                .count();
            cmp.first_difference = Some(offset + same as u64);
            return Ok(cmp);
        }
        offset += n as u64;
        chunk = chunk.saturating_mul(READ_GROWTH).min(BLOCK_READ);
    }
    Ok(cmp)
}

/// Whether two open files are the same file: same (device, inode) on Unix.
/// Always `false` on Windows, where nothing here needs it.
pub fn same_file(a: &File, b: &File) -> io::Result<bool> {
    sys::same_file(a, b)
}

/// Compares the first `len` bytes of `a` and `b` by reading both, stopping at
/// the first difference.
///
/// The first read of each file is [`FIRST_READ`] bytes (one block), each
/// later read [`READ_GROWTH`] times the one before, up to [`BLOCK_READ`]: a
/// difference in the first block costs one block read per file, one at
/// 20 KiB costs 20 KiB per file. A file shorter than `len` differs where it ends. Reads are
/// positional: the files' offsets are not moved.
pub fn compare_content(a: &File, b: &File, len: u64) -> io::Result<Comparison> {
    compare_range(a, b, 0, len, FIRST_READ, 0)
}

/// Whether both files are mapped, over their first `len` bytes, to the same
/// physical blocks: then they are identical without reading any data.
///
/// Only exact answers count: an extent without an exact physical address
/// (delayed allocation, inline, compressed or encoded, unknown) makes the
/// answer `false`, as does a file with no extents, a filesystem without
/// `FIEMAP`, and every platform but Linux. The caller must make sure the two
/// files are on the same filesystem (physical addresses of different
/// filesystems are not comparable) and are not the same file.
pub fn same_extents(a: &File, b: &File, len: u64) -> io::Result<bool> {
    sys::same_extents(a, b, len)
}

/// Makes the first `len` bytes of `other` share the blocks of `keep`, where
/// the kernel finds them equal (reverse `FIDEDUPERANGE`: `keep` is the dedupe
/// source, whose blocks stay; `other` is the target, whose own blocks are
/// released).
///
/// Requests are at most 64 MiB (well under the 1 GiB that is safe for every
/// kernel), each preceded by a read-ahead hint for both ranges: the kernel
/// compares page by page and would otherwise wait for each page in turn. A
/// short answer (btrfs shares at most 16 MiB per call on older kernels) is
/// continued from where it stopped. Each
/// request's per-file status is read: a difference stops the loop
/// ([`DedupeResult::Differs`]), a refusal for lack of support, permission,
/// alignment, a read-only or busy file or metadata space gives
/// [`DedupeResult::NotPossible`]; other errors (`EIO`, `ENOMEM`, ...) are
/// returned. No byte of either file changes in any case.
pub fn dedupe_into(keep: &File, other: &File, len: u64) -> io::Result<DedupeResult> {
    sys::dedupe_into(keep, other, len)
}

/// Whether the kernel refuses to dedupe between `a` and `b` at all (a
/// zero-length `FIDEDUPERANGE`, which changes nothing): `Some` only for
/// [`NotPossible::Unsupported`]; per-file refusals show up later.
#[cfg(target_os = "linux")]
pub(crate) fn dedupe_refused(a: &File, b: &File) -> Option<NotPossible> {
    sys::dedupe_refused(a, b)
}

/// Whether `a` and `b` have the same length and the same modification
/// time, to the nanosecond (rsync's quick check). `false` where the platform
/// reports no modification time.
pub fn same_size_and_mtime(a: &Metadata, b: &Metadata) -> bool {
    a.len() == b.len()
        && match (a.modified(), b.modified()) {
            (Ok(x), Ok(y)) => x == y,
            _ => false,
        }
}

/// [`decide`] for a content-checking update policy (the one place that maps
/// the policy onto the check): [`Overwrite::IfDifferentTrustMtime`] first takes
/// the same size and time on trust ([`same_size_and_mtime`]),
/// [`Overwrite::IfDifferentDedupe`] dedupes; the other policies compare.
///
/// `reclone`: the copy that follows would clone and gives the destination
/// the source's times, so an identical destination would end up the same
/// either way except for its blocks. Then a same-size destination that
/// shares no block with anything (its extent map has no `SHARED` extent)
/// and that the source can be cloned over (same filesystem, one that shares
/// blocks) is not compared: [`ProceedReason::NothingShared`]. Re-cloning
/// keeps no sharing because there is none to keep, and costs one clone
/// instead of reading both files. Linux only (elsewhere nothing tells
/// whether a file shares blocks); not with dedupe, which keeps the
/// destination's blocks by definition.
pub fn decide_update(
    policy: Overwrite,
    reclone: bool,
    src: &File,
    src_meta: &Metadata,
    dst: &File,
    dst_meta: &Metadata,
) -> io::Result<Decision> {
    if policy == Overwrite::IfDifferentTrustMtime && same_size_and_mtime(src_meta, dst_meta) {
        return Ok(Decision::Skip {
            evidence: Evidence::SizeAndMtime,
            bytes_read: 0,
            dedupe_not_possible: None,
        });
    }
    let dedupe = policy == Overwrite::IfDifferentDedupe;
    decide_with(src, src_meta, dst, dst_meta, dedupe, reclone && !dedupe)
}

/// Step 2 of the strategy chain: decides, before the destination is
/// truncated, whether copying `src` over the existing `dst` is needed.
///
/// - Sizes differ: [`Decision::Proceed`] without reading anything.
/// - Same device and the same physical blocks: [`Decision::Skip`] without
///   reading data.
/// - Otherwise the first block of each file is compared in user space (a
///   difference there costs one block read per file). Then
///   - without `dedupe`, the rest is compared in user space in 1 MiB reads;
///     equal => [`Decision::Skip`];
///   - with `dedupe`, the kernel compares the rest and shares the
///     destination's blocks with the source ([`dedupe_into`]); equal =>
///     [`Decision::Deduped`]. When the kernel refuses, the rest is compared
///     in user space and an equal file is skipped, naming the refusal.
///
/// The device is not required to match for the content checks: btrfs gives
/// every subvolume (and snapshot) its own device number, and equal bytes are
/// equal anywhere. Only the extent shortcut needs the same device.
///
/// `dst` must be a different file from `src` (the guard checked that); it is
/// never written.
pub fn decide(
    src: &File,
    src_meta: &Metadata,
    dst: &File,
    dst_meta: &Metadata,
    dedupe: bool,
) -> io::Result<Decision> {
    decide_with(src, src_meta, dst, dst_meta, dedupe, false)
}

/// [`decide`], and with `reclone` the step of [`decide_update`] that
/// declines to compare a destination sharing nothing.
fn decide_with(
    src: &File,
    src_meta: &Metadata,
    dst: &File,
    dst_meta: &Metadata,
    dedupe: bool,
    reclone: bool,
) -> io::Result<Decision> {
    let len = src_meta.len();
    if dst_meta.len() != len {
        return Ok(Decision::Proceed {
            reason: ProceedReason::SizeDiffers {
                source: len,
                destination: dst_meta.len(),
            },
            bytes_read: 0,
        });
    }
    if len == 0 {
        return Ok(Decision::Skip {
            evidence: Evidence::Empty,
            bytes_read: 0,
            dedupe_not_possible: None,
        });
    }
    if reclone && sys::reclone_loses_nothing(src, dst) {
        return Ok(Decision::Proceed {
            reason: ProceedReason::NothingShared,
            bytes_read: 0,
        });
    }
    // The shortcut is only a shortcut: an error mapping either file just
    // means "cannot tell". The source is mapped first: a freshly written
    // source shares nothing, which ends the check after one FIEMAP (the
    // installed copy often shares with a snapshot, and on btrfs mapping a
    // shared file walks its back-references).
    if sys::same_device(src_meta, dst_meta) && sys::same_extents(src, dst, len).unwrap_or(false) {
        return Ok(Decision::Skip {
            evidence: Evidence::SameExtents,
            bytes_read: 0,
            dedupe_not_possible: None,
        });
    }
    let first = FIRST_READ.min(len);
    // Both heads in flight together rather than one after the other, and
    // as one read each: a small file whole (asking for the first block
    // alone would read the rest of it in a second trip to the disk).
    let head_ahead = HEAD_READ_AHEAD.min(len);
    sys::prefetch(src, 0, head_ahead);
    sys::prefetch(dst, 0, head_ahead);
    let head = match compare_range(src, dst, 0, first, first, head_ahead) {
        Ok(c) => c,
        Err(e) if sys::is_unreadable(&e) => {
            return Ok(Decision::Proceed {
                reason: ProceedReason::NotReadable,
                bytes_read: 0,
            });
        }
        Err(e) => return Err(e),
    };
    if let Some(at) = head.first_difference {
        return Ok(Decision::Proceed {
            reason: ProceedReason::Differs { from: at },
            bytes_read: head.bytes_read,
        });
    }
    let mut user_from = first;
    let mut refused = None;
    if dedupe {
        match dedupe_into(dst, src, len)? {
            DedupeResult::Shared { bytes } => {
                return Ok(Decision::Deduped {
                    bytes_shared: bytes,
                    bytes_read: head.bytes_read,
                });
            }
            DedupeResult::Differs { range_start, .. } => {
                return Ok(Decision::Proceed {
                    reason: ProceedReason::Differs {
                        from: range_start.max(first),
                    },
                    bytes_read: head.bytes_read,
                });
            }
            DedupeResult::NotPossible { reason, shared } => {
                refused = Some(reason);
                user_from = user_from.max(shared);
            }
        }
    }
    let rest = compare_range(src, dst, user_from, len, BLOCK_READ, head_ahead)?;
    let bytes_read = head.bytes_read + rest.bytes_read;
    Ok(match rest.first_difference {
        Some(at) => Decision::Proceed {
            reason: ProceedReason::Differs { from: at },
            bytes_read,
        },
        None => Decision::Skip {
            evidence: Evidence::ByteCompare,
            bytes_read,
            dedupe_not_possible: refused,
        },
    })
}
