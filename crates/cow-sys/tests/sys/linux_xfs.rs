//! XFS's geometry: the layout against `<xfs/xfs_fs.h>` (included through
//! `<xfs/xfs.h>`, which defines its types) and the documented numbers, and
//! the answers of a real XFS; other filesystems refuse the call.
#![cfg(any(target_os = "linux", target_os = "android"))]

use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

use cow_sys::linux::xfs::*;
use cow_sys::linux::{FiemapFlags, fiemap};
use cow_test_support::{fs_test, pattern, write_synced};

use crate::common;

/// After [`common::PRELUDE`].
const PROBE: &str = r#"
#include <xfs/xfs.h>

int main(void) {
    SIZE(xfs_fsop_geom_v1);
    OFF(xfs_fsop_geom_v1, blocksize);
    OFF(xfs_fsop_geom_v1, agblocks);
    OFF(xfs_fsop_geom_v1, agcount);
    OFF(xfs_fsop_geom_v1, inodesize);
    OFF(xfs_fsop_geom_v1, datablocks);
    OFF(xfs_fsop_geom_v1, logstart);
    OFF(xfs_fsop_geom_v1, uuid);
    OFF(xfs_fsop_geom_v1, sunit);
    OFF(xfs_fsop_geom_v1, version);
    OFF(xfs_fsop_geom_v1, dirblocksize);
    CONST(XFS_IOC_FSGEOMETRY_V1);
    return 0;
}
"#;

/// `(probe key, Rust value, documented value)`.
fn facts() -> Vec<(&'static str, u64, u64)> {
    use std::mem::{offset_of, size_of};
    macro_rules! off {
        ($($field:ident at $doc:literal),+ $(,)?) => {
            vec![$((
                concat!("offset xfs_fsop_geom_v1.", stringify!($field)),
                offset_of!(FsopGeomV1, $field) as u64,
                $doc,
            )),+]
        };
    }
    let mut facts = vec![("size xfs_fsop_geom_v1", size_of::<FsopGeomV1>() as u64, 112)];
    facts.extend(off![
        blocksize at 0,
        agblocks at 8,
        agcount at 12,
        inodesize at 24,
        datablocks at 32,
        logstart at 56,
        uuid at 64,
        sunit at 80,
        version at 88,
        dirblocksize at 104,
    ]);
    facts
}

#[test]
fn xfs_geometry_layout_matches_documented_numbers_and_header() {
    let c = common::run_c_probe(&format!("{}{PROBE}", common::PRELUDE), &["xfs/xfs.h"]);
    common::check_facts(&facts(), c.as_ref());
    let opcode = XFS_IOC_FSGEOMETRY_V1 as u64;
    // _IOR('X', 100, 112 bytes) in the asm-generic encoding.
    if cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
        assert_eq!(opcode, 0x8070_5864);
    }
    if let Some(c) = c {
        assert_eq!(opcode, c["const XFS_IOC_FSGEOMETRY_V1"]);
    }
}

#[test]
fn ag_arithmetic_follows_the_superblock_fields() {
    // mkfs.xfs's defaults for a 3 GiB image: 4 AGs of 196,608 blocks of
    // 4 KiB, 512-byte inodes.
    let g = FsopGeomV1 {
        blocksize: 4096,
        agblocks: 196_608,
        agcount: 4,
        inodesize: 512,
        ..FsopGeomV1::default()
    };
    assert_eq!((g.agblklog(), g.inopblog()), (18, 3));
    assert_eq!(g.ag_of_inode(131), 0);
    assert_eq!(g.ag_of_inode((2 << 21) | 99), 2);
    assert_eq!(g.ag_of_physical(196_608 * 4096 - 1), 0);
    assert_eq!(g.ag_of_physical(3 * 196_608 * 4096 + 8192), 3);
    // A power of two needs no rounding up.
    let p = FsopGeomV1 {
        agblocks: 1 << 16,
        ..g
    };
    assert_eq!(p.agblklog(), 16);
    // Nonsense never divides by zero or shifts out of range.
    let z = FsopGeomV1::default();
    assert_eq!((z.agblklog(), z.inopblog()), (0, 0));
    assert_eq!(
        (z.ag_of_inode(u64::MAX), z.ag_of_physical(12345)),
        (u64::MAX, 0)
    );
}

fs_test!(geometry_places_files_in_their_groups, [xfs], |dir| {
    let g = fs_geometry(File::open(dir).unwrap().as_fd()).expect("XFS_IOC_FSGEOMETRY_V1");
    let v = rustix::fs::statvfs(dir).unwrap();
    assert_eq!(u64::from(g.blocksize), v.f_frsize, "{g:?}");
    assert!(g.agcount >= 1 && g.agblocks > 0, "{g:?}");
    assert!(
        u64::from(g.agcount) * u64::from(g.agblocks) >= g.datablocks,
        "{g:?}"
    );
    assert!(matches!(g.inodesize, 256..=2048), "{g:?}");
    // Every file's inode and first block lie in one of the AGs.
    for k in 0..8u64 {
        let sub = dir.join(format!("d{k}"));
        std::fs::create_dir(&sub).unwrap();
        let p = sub.join("f");
        write_synced(&p, &pattern(64 << 10, k));
        let ino = std::fs::metadata(&p).unwrap().ino();
        assert!(g.ag_of_inode(ino) < u64::from(g.agcount), "{ino} {g:?}");
        let f = File::open(&p).unwrap();
        let (_, ext) = fiemap(f.as_fd(), 0, 64 << 10, FiemapFlags::SYNC, 4).unwrap();
        assert!(!ext.is_empty());
        for e in ext {
            assert!(
                g.ag_of_physical(e.fe_physical) < u64::from(g.agcount),
                "{e:?} {g:?}"
            );
        }
    }
});

fs_test!(
    other_filesystems_refuse_the_geometry_call,
    [btrfs, ext4, tmpfs],
    |dir| {
        let e = fs_geometry(File::open(dir).unwrap().as_fd()).unwrap_err();
        assert!(
            matches!(
                e.raw_os_error(),
                Some(libc::ENOTTY | libc::EINVAL | libc::EOPNOTSUPP)
            ),
            "{e}"
        );
    }
);
