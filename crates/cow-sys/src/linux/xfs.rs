//! XFS: the filesystem's geometry (`XFS_IOC_FSGEOMETRY_V1`), which says how
//! inode numbers and disk addresses map to allocation groups.
//!
//! Every reference-count lookup XFS makes (for the `SHARED` flag of a
//! `FIEMAP`, and for each remap) locks the header of the allocation group
//! (AG) holding the blocks. Callers that know which AG a call will lock
//! can keep concurrent calls in different AGs.
//!
//! The layout follows `<xfs/xfs_fs.h>`; the tests compare it with a C
//! probe. Any user may ask (no capability needed).

use std::io;
use std::os::fd::BorrowedFd;

use rustix::ioctl::{self, Opcode, opcode};

/// `struct xfs_fsop_geom_v1`: the output of `XFS_IOC_FSGEOMETRY_V1`, the
/// one geometry call every XFS kernel answers.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FsopGeomV1 {
    /// Filesystem (data) block size, bytes.
    pub blocksize: u32,
    /// Realtime extent size, bytes.
    pub rtextsize: u32,
    /// Blocks per allocation group.
    pub agblocks: u32,
    /// Number of allocation groups.
    pub agcount: u32,
    /// Blocks in the log.
    pub logblocks: u32,
    /// Data sector size, bytes.
    pub sectsize: u32,
    /// Inode size, bytes.
    pub inodesize: u32,
    /// Largest share of space inodes may take, percent.
    pub imaxpct: u32,
    /// Blocks in the data subvolume.
    pub datablocks: u64,
    /// Blocks in the realtime subvolume.
    pub rtblocks: u64,
    /// Realtime extents.
    pub rtextents: u64,
    /// First block of the log.
    pub logstart: u64,
    /// The filesystem's UUID.
    pub uuid: [u8; 16],
    /// Stripe unit, blocks.
    pub sunit: u32,
    /// Stripe width, blocks.
    pub swidth: u32,
    /// Structure version.
    pub version: i32,
    /// Superblock feature flags (`XFS_FSOP_GEOM_FLAGS_*`).
    pub flags: u32,
    /// Log sector size, bytes.
    pub logsectsize: u32,
    /// Realtime sector size, bytes.
    pub rtsectsize: u32,
    /// Directory block size, bytes.
    pub dirblocksize: u32,
}

/// The `XFS_IOC_FSGEOMETRY_V1` opcode: `_IOR('X', 100, struct
/// xfs_fsop_geom_v1)`.
pub const XFS_IOC_FSGEOMETRY_V1: Opcode = opcode::read::<FsopGeomV1>(b'X', 100);

/// The geometry of the XFS filesystem holding `fd` (any file or
/// directory on it). Other filesystems answer `ENOTTY` (or `EINVAL`).
pub fn fs_geometry(fd: BorrowedFd<'_>) -> io::Result<FsopGeomV1> {
    // SAFETY: the opcode's direction and size are those of `FsopGeomV1`,
    // a plain-integer struct the kernel fills whole.
    let g = unsafe {
        ioctl::ioctl(
            fd,
            ioctl::Getter::<{ XFS_IOC_FSGEOMETRY_V1 }, FsopGeomV1>::new(),
        )
    }?;
    Ok(g)
}

impl FsopGeomV1 {
    /// `sb_agblklog`: bits of an AG-relative block number,
    /// `ceil(log2(agblocks))`.
    pub fn agblklog(&self) -> u32 {
        match self.agblocks {
            0 | 1 => 0,
            n => u32::BITS - (n - 1).leading_zeros(),
        }
    }

    /// `sb_inopblog`: bits of an inode's place in its block,
    /// `log2(blocksize / inodesize)`.
    pub fn inopblog(&self) -> u32 {
        match (self.blocksize, self.inodesize) {
            (b, i) if i > 0 && b >= i => (b / i).ilog2(),
            _ => 0,
        }
    }

    /// The allocation group of inode number `ino`: its high bits, above
    /// the AG-relative block and the place in the block.
    pub fn ag_of_inode(&self, ino: u64) -> u64 {
        ino.checked_shr(self.agblklog() + self.inopblog())
            .unwrap_or(0)
    }

    /// The allocation group of the byte at `physical` on the data device,
    /// as `FIEMAP` reports it (`fe_physical`): AGs lie one after the other,
    /// `agblocks` blocks each.
    pub fn ag_of_physical(&self, physical: u64) -> u64 {
        let ag_bytes = u64::from(self.agblocks) * u64::from(self.blocksize);
        physical.checked_div(ag_bytes).unwrap_or(0)
    }
}
