//! Filesystem kinds and the static table of what each can usually do.

use serde::Serialize;

use crate::Support::{self, No, Unknown as U, Yes};

/// A filesystem kind, from `statfs` (Linux `f_type`; macOS and FreeBSD
/// `f_fstypename`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FsKind {
    /// btrfs.
    Btrfs,
    /// XFS (clones only when made with `-m reflink=1`).
    Xfs,
    /// ext2, ext3 or ext4 (they share one magic number).
    Ext4,
    /// tmpfs (also devtmpfs and shmem).
    Tmpfs,
    /// ramfs.
    Ramfs,
    /// overlayfs: capabilities are those of the upper layer.
    Overlayfs,
    /// NFS (v4.2 servers may clone).
    Nfs,
    /// OpenZFS (block cloning since 2.2 when enabled).
    Zfs,
    /// bcachefs.
    Bcachefs,
    /// F2FS.
    F2fs,
    /// OCFS2.
    Ocfs2,
    /// CIFS (SMB1 and the cifs client).
    Cifs,
    /// SMB2/3 (the cifs client's newer magic).
    Smb2,
    /// FUSE (any userspace filesystem).
    Fuse,
    /// Ceph.
    Ceph,
    /// GFS2.
    Gfs2,
    /// NILFS2.
    Nilfs2,
    /// SquashFS (read-only).
    Squashfs,
    /// EROFS (read-only).
    Erofs,
    /// ISO 9660 (read-only).
    Iso9660,
    /// UDF.
    Udf,
    /// FAT (vfat, msdos).
    Vfat,
    /// exFAT.
    Exfat,
    /// NTFS (ntfs, ntfs3, ntfs-3g through FUSE reports FUSE).
    Ntfs,
    /// ReiserFS.
    Reiserfs,
    /// JFS.
    Jfs,
    /// hugetlbfs.
    Hugetlbfs,
    /// eCryptfs.
    Ecryptfs,
    /// 9p (v9fs).
    V9fs,
    /// procfs.
    Procfs,
    /// sysfs.
    Sysfs,
    /// APFS (macOS): clones with `clonefile`.
    Apfs,
    /// HFS+ (macOS).
    Hfs,
    /// UFS (FreeBSD).
    Ufs,
    /// ReFS (Windows): clones with `FSCTL_DUPLICATE_EXTENTS_TO_FILE` when
    /// the volume supports block reference counting.
    Refs,
    /// A kind this crate does not know.
    Other,
}

/// The static table's answers for one kind. A hint, not the answer: the
/// live probe wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Hint {
    /// Clones (reflinks).
    pub reflink: Support,
    /// `FIDEDUPERANGE`.
    pub dedupe: Support,
    /// `SEEK_HOLE` reports holes.
    pub sparse: Support,
    /// Extents can be read.
    pub fiemap: Support,
    /// `copy_file_range` clones.
    pub copy_file_range: Support,
}

const fn hint(
    reflink: Support,
    dedupe: Support,
    sparse: Support,
    fiemap: Support,
    copy_file_range: Support,
) -> Hint {
    Hint {
        reflink,
        dedupe,
        sparse,
        fiemap,
        copy_file_range,
    }
}

/// Linux `statfs.f_type` magic numbers (`<linux/magic.h>` and the
/// filesystems' own headers), in lookup order.
const MAGICS: &[(u32, FsKind)] = &[
    (0x9123_683e, FsKind::Btrfs),
    (0x5846_5342, FsKind::Xfs),
    (0x0000_ef53, FsKind::Ext4),
    (0x0102_1994, FsKind::Tmpfs),
    (0x8584_58f6, FsKind::Ramfs),
    (0x794c_7630, FsKind::Overlayfs),
    (0x0000_6969, FsKind::Nfs),
    (0x2fc1_2fc1, FsKind::Zfs),
    (0xca45_1a4e, FsKind::Bcachefs),
    (0xf2f5_2010, FsKind::F2fs),
    (0x7461_636f, FsKind::Ocfs2),
    (0xff53_4d42, FsKind::Cifs),
    (0x0000_517b, FsKind::Cifs),
    (0xfe53_4d42, FsKind::Smb2),
    (0x6573_5546, FsKind::Fuse),
    (0x00c3_6400, FsKind::Ceph),
    (0x0116_1970, FsKind::Gfs2),
    (0x0000_3434, FsKind::Nilfs2),
    (0x7371_7368, FsKind::Squashfs),
    (0xe0f5_e1e2, FsKind::Erofs),
    (0x0000_9660, FsKind::Iso9660),
    (0x1501_3346, FsKind::Udf),
    (0x0000_4d44, FsKind::Vfat),
    (0x2011_bab0, FsKind::Exfat),
    (0x5346_544e, FsKind::Ntfs),
    (0x7366_746e, FsKind::Ntfs),
    (0x5265_4973, FsKind::Reiserfs),
    (0x3153_464a, FsKind::Jfs),
    (0x9584_58f6, FsKind::Hugetlbfs),
    (0x0000_f15f, FsKind::Ecryptfs),
    (0x0102_1997, FsKind::V9fs),
    (0x0000_9fa0, FsKind::Procfs),
    (0x6265_6572, FsKind::Sysfs),
    (0x0000_4244, FsKind::Hfs),
    (0x0000_482b, FsKind::Hfs),
];

/// `f_fstypename` values of macOS and FreeBSD.
const TYPE_NAMES: &[(&str, FsKind)] = &[
    ("apfs", FsKind::Apfs),
    ("hfs", FsKind::Hfs),
    ("zfs", FsKind::Zfs),
    ("ufs", FsKind::Ufs),
    ("tmpfs", FsKind::Tmpfs),
    ("nfs", FsKind::Nfs),
    ("smbfs", FsKind::Smb2),
    ("msdos", FsKind::Vfat),
    ("msdosfs", FsKind::Vfat),
    ("exfat", FsKind::Exfat),
    ("ntfs", FsKind::Ntfs),
    ("cd9660", FsKind::Iso9660),
    ("udf", FsKind::Udf),
    ("ext2fs", FsKind::Ext4),
    ("fusefs", FsKind::Fuse),
    ("macfuse", FsKind::Fuse),
    ("osxfuse", FsKind::Fuse),
    ("procfs", FsKind::Procfs),
    // Windows file system names, lower-cased.
    ("refs", FsKind::Refs),
    ("fat", FsKind::Vfat),
    ("fat32", FsKind::Vfat),
    ("cdfs", FsKind::Iso9660),
];

impl FsKind {
    /// The kind for a Linux `statfs.f_type`.
    pub fn from_magic(magic: u64) -> FsKind {
        let Ok(m) = u32::try_from(magic) else {
            return FsKind::Other;
        };
        MAGICS
            .iter()
            .find(|(k, _)| *k == m)
            .map_or(FsKind::Other, |&(_, kind)| kind)
    }

    /// The kind for a macOS or FreeBSD `statfs.f_fstypename`, or a Windows
    /// file system name (`NTFS`, `ReFS`...; case is ignored).
    pub fn from_type_name(name: &str) -> FsKind {
        TYPE_NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map_or(FsKind::Other, |&(_, kind)| kind)
    }

    /// A short lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            FsKind::Btrfs => "btrfs",
            FsKind::Xfs => "xfs",
            FsKind::Ext4 => "ext2/3/4",
            FsKind::Tmpfs => "tmpfs",
            FsKind::Ramfs => "ramfs",
            FsKind::Overlayfs => "overlayfs",
            FsKind::Nfs => "nfs",
            FsKind::Zfs => "zfs",
            FsKind::Bcachefs => "bcachefs",
            FsKind::F2fs => "f2fs",
            FsKind::Ocfs2 => "ocfs2",
            FsKind::Cifs => "cifs",
            FsKind::Smb2 => "smb2",
            FsKind::Fuse => "fuse",
            FsKind::Ceph => "ceph",
            FsKind::Gfs2 => "gfs2",
            FsKind::Nilfs2 => "nilfs2",
            FsKind::Squashfs => "squashfs",
            FsKind::Erofs => "erofs",
            FsKind::Iso9660 => "iso9660",
            FsKind::Udf => "udf",
            FsKind::Vfat => "vfat",
            FsKind::Exfat => "exfat",
            FsKind::Ntfs => "ntfs",
            FsKind::Reiserfs => "reiserfs",
            FsKind::Jfs => "jfs",
            FsKind::Hugetlbfs => "hugetlbfs",
            FsKind::Ecryptfs => "ecryptfs",
            FsKind::V9fs => "9p",
            FsKind::Procfs => "proc",
            FsKind::Sysfs => "sysfs",
            FsKind::Apfs => "apfs",
            FsKind::Hfs => "hfs",
            FsKind::Ufs => "ufs",
            FsKind::Refs => "refs",
            FsKind::Other => "other",
        }
    }

    /// What this kind can usually do: the static table. `Unknown` where it
    /// depends on how the filesystem was made or what lies behind it.
    pub fn table_hint(self) -> Hint {
        match self {
            FsKind::Btrfs => hint(Yes, Yes, Yes, Yes, Yes),
            // reflink=1 is the mkfs default only since xfsprogs 5.1.
            FsKind::Xfs => hint(U, U, Yes, Yes, U),
            FsKind::Ext4 | FsKind::F2fs => hint(No, No, Yes, Yes, No),
            FsKind::Tmpfs => hint(No, No, Yes, No, No),
            FsKind::Ramfs | FsKind::Hugetlbfs | FsKind::Procfs | FsKind::Sysfs => {
                hint(No, No, No, No, No)
            }
            FsKind::Bcachefs => hint(Yes, U, Yes, Yes, Yes),
            FsKind::Ocfs2 => hint(U, U, Yes, Yes, U),
            FsKind::Zfs => hint(U, U, Yes, No, U),
            FsKind::Nfs => hint(U, No, U, No, U),
            FsKind::Cifs | FsKind::Smb2 => hint(U, No, U, U, U),
            FsKind::Vfat | FsKind::Exfat => hint(No, No, No, Yes, No),
            FsKind::Squashfs | FsKind::Erofs | FsKind::Iso9660 => hint(No, No, U, U, No),
            FsKind::Apfs => hint(Yes, No, Yes, Yes, No),
            FsKind::Hfs => hint(No, No, No, Yes, No),
            FsKind::Ufs => hint(No, No, Yes, No, No),
            FsKind::Refs => hint(U, No, Yes, No, No),
            FsKind::Ntfs => hint(No, No, Yes, U, No),
            _ => hint(U, U, U, U, U),
        }
    }
}

impl std::fmt::Display for FsKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magics_are_unique_and_round_trip() {
        for (i, (m, kind)) in MAGICS.iter().enumerate() {
            assert_eq!(FsKind::from_magic(u64::from(*m)), *kind);
            assert!(MAGICS[i + 1..].iter().all(|(n, _)| n != m), "{m:#x} twice");
        }
        assert_eq!(FsKind::from_magic(0x1234_5678), FsKind::Other);
        assert_eq!(FsKind::from_magic(u64::MAX), FsKind::Other);
        assert_eq!(FsKind::from_type_name("apfs"), FsKind::Apfs);
        assert_eq!(FsKind::from_type_name("nope"), FsKind::Other);
    }

    #[test]
    fn table_says_what_the_tests_expect() {
        assert_eq!(FsKind::Btrfs.table_hint().reflink, Yes);
        assert_eq!(FsKind::Ext4.table_hint().reflink, No);
        assert_eq!(FsKind::Tmpfs.table_hint().fiemap, No);
        assert_eq!(FsKind::Overlayfs.table_hint().reflink, U);
    }
}
