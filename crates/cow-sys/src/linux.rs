//! Linux: `FICLONE`, `FICLONERANGE`, `FIDEDUPERANGE` and `FS_IOC_FIEMAP`;
//! btrfs's tree search in [`btrfs`]; XFS's geometry in [`xfs`].
//!
//! Struct layouts follow `<linux/fs.h>` and `<linux/fiemap.h>`; the tests
//! compile a C probe against the installed kernel headers and compare every
//! size and offset. Opcodes are built with rustix's `_IOW`/`_IOWR`
//! equivalents, so they are right on every Linux architecture.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use bitflags::bitflags;
use rustix::ioctl::{self, Ioctl, IoctlOutput, Opcode, opcode};

pub mod btrfs;
pub mod xfs;

/// `struct file_clone_range` from `<linux/fs.h>`: the argument of
/// `FICLONERANGE`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileCloneRange {
    /// The source file descriptor.
    pub src_fd: i64,
    /// Byte offset in the source.
    pub src_offset: u64,
    /// Bytes to clone; 0 means "to the end of the source".
    pub src_length: u64,
    /// Byte offset in the destination.
    pub dest_offset: u64,
}

/// `struct file_dedupe_range_info` from `<linux/fs.h>`: one destination of a
/// `FIDEDUPERANGE` call.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileDedupeRangeInfo {
    /// Destination file descriptor (in).
    pub dest_fd: i64,
    /// Byte offset in the destination (in).
    pub dest_offset: u64,
    /// Bytes that now share storage with the source (out).
    pub bytes_deduped: u64,
    /// [`FILE_DEDUPE_RANGE_SAME`], [`FILE_DEDUPE_RANGE_DIFFERS`] or a
    /// negative errno (out).
    pub status: i32,
    /// Must be zero.
    pub reserved: u32,
}

/// `struct file_dedupe_range` from `<linux/fs.h>` without its flexible
/// `info[]` array, which follows it in memory.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileDedupeRange {
    /// Byte offset in the source (the fd the ioctl is called on).
    pub src_offset: u64,
    /// Bytes to compare and share.
    pub src_length: u64,
    /// Number of [`FileDedupeRangeInfo`] entries that follow.
    pub dest_count: u16,
    /// Must be zero.
    pub reserved1: u16,
    /// Must be zero.
    pub reserved2: u32,
}

/// Status: the ranges were identical and now share storage.
pub const FILE_DEDUPE_RANGE_SAME: i32 = 0;
/// Status: the ranges differ; nothing was changed.
pub const FILE_DEDUPE_RANGE_DIFFERS: i32 = 1;

/// `struct fiemap_extent` from `<linux/fiemap.h>`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FiemapExtent {
    /// Byte offset of the extent in the file.
    pub fe_logical: u64,
    /// Byte offset of the extent on the device.
    pub fe_physical: u64,
    /// Length of the extent in bytes.
    pub fe_length: u64,
    /// Reserved.
    pub fe_reserved64: [u64; 2],
    /// [`FiemapExtentFlags`] bits.
    pub fe_flags: u32,
    /// Reserved.
    pub fe_reserved: [u32; 3],
}

impl FiemapExtent {
    /// The extent's flags, keeping unknown bits.
    pub fn flags(&self) -> FiemapExtentFlags {
        FiemapExtentFlags::from_bits_retain(self.fe_flags)
    }
}

/// `struct fiemap` from `<linux/fiemap.h>` without its flexible
/// `fm_extents[]` array, which follows it in memory.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fiemap {
    /// First logical byte to map (in).
    pub fm_start: u64,
    /// Bytes to map (in).
    pub fm_length: u64,
    /// [`FiemapFlags`] (in/out).
    pub fm_flags: u32,
    /// Extents written to the array (out).
    pub fm_mapped_extents: u32,
    /// Size of the array (in); 0 asks only for the count.
    pub fm_extent_count: u32,
    /// Reserved.
    pub fm_reserved: u32,
}

bitflags! {
    /// Request flags of `struct fiemap` (`FIEMAP_FLAG_*`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct FiemapFlags: u32 {
        /// Sync the file's dirty data before mapping it.
        const SYNC = 0x0000_0001;
        /// Map the extended attribute tree instead of the data.
        const XATTR = 0x0000_0002;
        /// Ask the filesystem to cache the extents.
        const CACHE = 0x0000_0004;
    }
}

bitflags! {
    /// Flags of one extent (`FIEMAP_EXTENT_*`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct FiemapExtentFlags: u32 {
        /// The last extent of the file.
        const LAST = 0x0000_0001;
        /// The data location is unknown.
        const UNKNOWN = 0x0000_0002;
        /// Delayed allocation: the location is still pending (sets UNKNOWN).
        const DELALLOC = 0x0000_0004;
        /// The data cannot be read while the filesystem is unmounted.
        const ENCODED = 0x0000_0008;
        /// The data is encrypted by the filesystem (sets ENCODED).
        const DATA_ENCRYPTED = 0x0000_0080;
        /// Extent offsets may not be block aligned.
        const NOT_ALIGNED = 0x0000_0100;
        /// Data is mixed with metadata (sets NOT_ALIGNED).
        const DATA_INLINE = 0x0000_0200;
        /// Several files share the block (sets NOT_ALIGNED).
        const DATA_TAIL = 0x0000_0400;
        /// Space is allocated but not written (reads as zeros).
        const UNWRITTEN = 0x0000_0800;
        /// The filesystem does not store extents; these are merged blocks.
        const MERGED = 0x0000_1000;
        /// The space is shared with other files (reflinks, snapshots).
        const SHARED = 0x0000_2000;
    }
}

/// `FIEMAP_MAX_OFFSET`: a length meaning "to the end of the file".
pub const FIEMAP_MAX_OFFSET: u64 = u64::MAX;

/// The largest `fm_extent_count` the kernel accepts
/// (`UINT_MAX / sizeof(struct fiemap_extent)`); [`fiemap`] answers `EINVAL`
/// above it.
pub const FIEMAP_MAX_EXTENTS: u32 = u32::MAX / std::mem::size_of::<FiemapExtent>() as u32;

/// The `FICLONE` opcode: `_IOW(0x94, 9, int)`.
pub const FICLONE: Opcode = opcode::write::<i32>(0x94, 9);
/// The `FICLONERANGE` opcode: `_IOW(0x94, 13, struct file_clone_range)`.
pub const FICLONERANGE: Opcode = opcode::write::<FileCloneRange>(0x94, 13);
/// The `FIDEDUPERANGE` opcode: `_IOWR(0x94, 54, struct file_dedupe_range)`.
pub const FIDEDUPERANGE: Opcode = opcode::read_write::<FileDedupeRange>(0x94, 54);
/// The `FS_IOC_FIEMAP` opcode: `_IOWR('f', 11, struct fiemap)`.
pub const FS_IOC_FIEMAP: Opcode = opcode::read_write::<Fiemap>(b'f', 11);

/// An ioctl whose argument is a caller-owned buffer the kernel may read and
/// write (needed for the structs with a trailing flexible array).
struct BufferIoctl {
    opcode: Opcode,
    ptr: *mut core::ffi::c_void,
}

// SAFETY: `IS_MUTATING` is true so the kernel may write through `ptr`; the
// output carries no data beyond what the kernel wrote into the buffer, which
// the callers below own and size for the opcode they pass.
unsafe impl Ioctl for BufferIoctl {
    type Output = ();
    const IS_MUTATING: bool = true;

    fn opcode(&self) -> Opcode {
        self.opcode
    }

    fn as_ptr(&mut self) -> *mut core::ffi::c_void {
        self.ptr
    }

    unsafe fn output_from_ptr(
        _out: IoctlOutput,
        _extract_output: *mut core::ffi::c_void,
    ) -> rustix::io::Result<()> {
        Ok(())
    }
}

/// Makes `dst` share all of `src`'s data (`ioctl(dst, FICLONE, src)`).
///
/// This is `FICLONERANGE` of the whole source to offset 0 of `dst`: it does
/// **not** truncate `dst`. When `dst` is longer than `src` its tail keeps the
/// old bytes, and when `src` ends in a partial block the kernel refuses
/// (`EINVAL`) to clone that block into the middle of a longer `dst`. Callers
/// that want an exact copy truncate `dst` to 0 first.
///
/// Both must be on the same filesystem (`EXDEV` otherwise, also across
/// mounts of one filesystem on older kernels); filesystems without reflinks
/// answer `EOPNOTSUPP` (or `EINVAL`/`ENOTTY`); `dst` must be open for
/// writing (`EBADF`) and `src` for reading.
pub fn ficlone(dst: BorrowedFd<'_>, src: BorrowedFd<'_>) -> io::Result<()> {
    Ok(rustix::fs::ioctl_ficlone(dst, src)?)
}

/// Shares `len` bytes of `src` at `src_offset` into `dst` at `dst_offset`
/// (`FICLONERANGE`). `len == 0` means "to the end of `src`".
///
/// Offsets and length must be aligned to the filesystem block size, except
/// that a range ending at the source's EOF may be unaligned; otherwise the
/// kernel answers `EINVAL`.
pub fn ficlonerange(
    dst: BorrowedFd<'_>,
    src: BorrowedFd<'_>,
    src_offset: u64,
    len: u64,
    dst_offset: u64,
) -> io::Result<()> {
    let mut arg = FileCloneRange {
        src_fd: i64::from(src.as_raw_fd()),
        src_offset,
        src_length: len,
        dest_offset: dst_offset,
    };
    let req = BufferIoctl {
        opcode: FICLONERANGE,
        ptr: (&mut arg as *mut FileCloneRange).cast(),
    };
    // SAFETY: FICLONERANGE reads one `struct file_clone_range`, which `arg`
    // is (layout checked by tests), and `arg` outlives the call.
    unsafe { ioctl::ioctl(dst, req) }?;
    Ok(())
}

/// What `FIDEDUPERANGE` did for one destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DedupeStatus {
    /// The contents were equal; `bytes_deduped` bytes now share storage.
    Same {
        /// Bytes the kernel shared (may be less than asked: call again for
        /// the rest).
        bytes_deduped: u64,
    },
    /// The contents differ; neither file was changed.
    Differs,
}

/// One destination of [`dedupe_range`]: a file and an offset in it.
#[derive(Debug, Clone, Copy)]
pub struct DedupeTarget<'a> {
    /// The destination file; must be open for writing unless the caller
    /// owns it or has `CAP_SYS_ADMIN`.
    pub fd: BorrowedFd<'a>,
    /// Byte offset in the destination.
    pub offset: u64,
}

/// Compares `len` bytes of `src` at `src_offset` with each target and, where
/// they are equal, makes the target share the source's storage
/// (`FIDEDUPERANGE`).
///
/// The ioctl's own return value only says whether the request was valid; the
/// answer for each destination is its `status`, which is read separately:
/// a negative status becomes that destination's `Err`. The kernel may share
/// fewer bytes than asked (btrfs caps one call at 16 MiB): callers loop.
pub fn dedupe_range(
    src: BorrowedFd<'_>,
    src_offset: u64,
    len: u64,
    targets: &[DedupeTarget<'_>],
) -> io::Result<Vec<io::Result<DedupeStatus>>> {
    let count = u16::try_from(targets.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "too many dedupe targets"))?;
    let header = std::mem::size_of::<FileDedupeRange>();
    let info = std::mem::size_of::<FileDedupeRangeInfo>();
    // u64 words keep the buffer 8-byte aligned, as both structs need.
    let words = (header + info * targets.len()).div_ceil(8);
    let mut buf = vec![0u64; words];
    let base = buf.as_mut_ptr().cast::<u8>();
    // SAFETY: `buf` holds `header + info * count` bytes, 8-byte aligned; the
    // header sits at offset 0 and the info array right after it, exactly
    // like the C struct with its flexible array member. Every write stays in
    // bounds and `buf` is not otherwise borrowed.
    unsafe {
        base.cast::<FileDedupeRange>().write(FileDedupeRange {
            src_offset,
            src_length: len,
            dest_count: count,
            reserved1: 0,
            reserved2: 0,
        });
        let infos = base.add(header).cast::<FileDedupeRangeInfo>();
        for (i, t) in targets.iter().enumerate() {
            infos.add(i).write(FileDedupeRangeInfo {
                dest_fd: i64::from(t.fd.as_raw_fd()),
                dest_offset: t.offset,
                ..Default::default()
            });
        }
    }
    let req = BufferIoctl {
        opcode: FIDEDUPERANGE,
        ptr: base.cast(),
    };
    // SAFETY: the buffer is a valid `struct file_dedupe_range` followed by
    // `dest_count` infos, and it outlives the call.
    unsafe { ioctl::ioctl(src, req) }?;
    let mut out = Vec::with_capacity(targets.len());
    for i in 0..targets.len() {
        // SAFETY: in bounds as above; the kernel wrote plain integers.
        let r = unsafe { base.add(header).cast::<FileDedupeRangeInfo>().add(i).read() };
        out.push(match r.status {
            FILE_DEDUPE_RANGE_SAME => Ok(DedupeStatus::Same {
                bytes_deduped: r.bytes_deduped,
            }),
            FILE_DEDUPE_RANGE_DIFFERS => Ok(DedupeStatus::Differs),
            s if s < 0 => Err(io::Error::from_raw_os_error(-s)),
            s => Err(io::Error::other(format!(
                "FIDEDUPERANGE returned unknown status {s}"
            ))),
        });
    }
    Ok(out)
}

/// [`dedupe_range`] for a single destination.
pub fn dedupe_one(
    src: BorrowedFd<'_>,
    src_offset: u64,
    len: u64,
    dst: BorrowedFd<'_>,
    dst_offset: u64,
) -> io::Result<DedupeStatus> {
    let target = DedupeTarget {
        fd: dst,
        offset: dst_offset,
    };
    dedupe_range(src, src_offset, len, &[target])?
        .pop()
        .unwrap_or_else(|| Err(io::Error::other("FIDEDUPERANGE returned no status")))
}

/// One `FS_IOC_FIEMAP` call: up to `max_extents` extents of the range
/// `start..start + len`. `max_extents == 0` asks only for the count, which is
/// returned in [`Fiemap::fm_mapped_extents`] with an empty extent list.
pub fn fiemap(
    fd: BorrowedFd<'_>,
    start: u64,
    len: u64,
    flags: FiemapFlags,
    max_extents: u32,
) -> io::Result<(Fiemap, Vec<FiemapExtent>)> {
    if max_extents > FIEMAP_MAX_EXTENTS {
        // The kernel refuses these too; refusing first avoids allocating a
        // buffer of up to 240 GB for nothing.
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let header = std::mem::size_of::<Fiemap>();
    let ext = std::mem::size_of::<FiemapExtent>();
    // Checked: on 32-bit targets the largest count overflows `usize`.
    let bytes = (max_extents as usize)
        .checked_mul(ext)
        .and_then(|n| n.checked_add(header))
        .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))?;
    let mut buf = vec![0u64; bytes.div_ceil(8)];
    let base = buf.as_mut_ptr().cast::<u8>();
    // SAFETY: `buf` is 8-byte aligned and large enough for the header.
    unsafe {
        base.cast::<Fiemap>().write(Fiemap {
            fm_start: start,
            fm_length: len,
            fm_flags: flags.bits(),
            fm_mapped_extents: 0,
            fm_extent_count: max_extents,
            fm_reserved: 0,
        });
    }
    let req = BufferIoctl {
        opcode: FS_IOC_FIEMAP,
        ptr: base.cast(),
    };
    // SAFETY: the buffer is a `struct fiemap` followed by room for
    // `fm_extent_count` extents, which is all the kernel writes; it outlives
    // the call.
    unsafe { ioctl::ioctl(fd, req) }?;
    // SAFETY: in bounds; the kernel filled plain integers.
    let head = unsafe { base.cast::<Fiemap>().read() };
    let n = (head.fm_mapped_extents.min(max_extents)) as usize;
    let mut extents = Vec::with_capacity(n);
    for i in 0..n {
        // SAFETY: i < max_extents, so the read stays inside `buf`.
        extents.push(unsafe { base.add(header).cast::<FiemapExtent>().add(i).read() });
    }
    Ok((head, extents))
}

/// A `FIEMAP` request with room for `N` extents, laid out as the kernel
/// reads it: the header, then the extents (both 8-byte aligned, the header
/// 32 bytes: no padding between them in a `repr(C)` struct).
#[repr(C)]
struct FiemapRequest<const N: usize> {
    head: Fiemap,
    extents: [FiemapExtent; N],
}

/// [`fiemap`] of at most `N` extents, with the request and its answer on
/// the stack: no allocation (a tree dedupe maps every candidate, and most
/// files have one extent). Returns the header and the extents, the first
/// `fm_mapped_extents` (at most `N`) of them filled.
pub fn fiemap_array<const N: usize>(
    fd: BorrowedFd<'_>,
    start: u64,
    len: u64,
    flags: FiemapFlags,
) -> io::Result<(Fiemap, [FiemapExtent; N])> {
    let count = u32::try_from(N)
        .ok()
        .filter(|&n| n <= FIEMAP_MAX_EXTENTS)
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    let mut req = FiemapRequest::<N> {
        head: Fiemap {
            fm_start: start,
            fm_length: len,
            fm_flags: flags.bits(),
            fm_mapped_extents: 0,
            fm_extent_count: count,
            fm_reserved: 0,
        },
        extents: [FiemapExtent::default(); N],
    };
    let ioctl = BufferIoctl {
        opcode: FS_IOC_FIEMAP,
        ptr: (&raw mut req).cast(),
    };
    // SAFETY: `req` is a `struct fiemap` followed by room for its
    // `fm_extent_count` (N) extents, which is all the kernel writes; it
    // outlives the call.
    unsafe { ioctl::ioctl(fd, ioctl) }?;
    Ok((req.head, req.extents))
}

/// Every extent of the file, however many: calls [`fiemap`] in a loop,
/// continuing after the last extent returned until one carries
/// [`FiemapExtentFlags::LAST`] or the kernel returns none.
pub fn fiemap_all(fd: BorrowedFd<'_>, flags: FiemapFlags) -> io::Result<Vec<FiemapExtent>> {
    const BATCH: u32 = 512;
    let mut all: Vec<FiemapExtent> = Vec::new();
    let mut start = 0u64;
    let mut flags = flags;
    loop {
        let (_, batch) = fiemap(fd, start, u64::MAX - start, flags, BATCH)?;
        // Syncing once is enough.
        flags.remove(FiemapFlags::SYNC);
        let Some(last) = batch.last().copied() else {
            break;
        };
        let done = last.flags().contains(FiemapExtentFlags::LAST);
        let next = last.fe_logical.saturating_add(last.fe_length);
        all.extend(batch);
        if done || next <= start || next == u64::MAX {
            break;
        }
        start = next;
    }
    Ok(all)
}
