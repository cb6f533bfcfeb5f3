//! The btrfs tree search: layouts against `<linux/btrfs.h>` and
//! `<linux/btrfs_tree.h>` and the documented numbers, and the items it
//! returns for real files on btrfs (inline, regular, cloned, preallocated),
//! whatever the buffer size. Elsewhere the ioctl is unknown.
#![cfg(any(target_os = "linux", target_os = "android"))]

use std::fs::{self, File};
use std::ops::ControlFlow;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use cow_sys::linux::btrfs::*;
use cow_sys::linux::ficlone;
use cow_test_support::{fs_test, pattern, write_synced};

use crate::common;

/// After [`common::PRELUDE`].
const PROBE: &str = r#"
#include <linux/btrfs.h>
#include <linux/btrfs_tree.h>

int main(void) {
    SIZE(btrfs_ioctl_search_key);
    OFF(btrfs_ioctl_search_key, tree_id);
    OFF(btrfs_ioctl_search_key, min_objectid);
    OFF(btrfs_ioctl_search_key, max_objectid);
    OFF(btrfs_ioctl_search_key, min_offset);
    OFF(btrfs_ioctl_search_key, max_offset);
    OFF(btrfs_ioctl_search_key, min_transid);
    OFF(btrfs_ioctl_search_key, max_transid);
    OFF(btrfs_ioctl_search_key, min_type);
    OFF(btrfs_ioctl_search_key, max_type);
    OFF(btrfs_ioctl_search_key, nr_items);
    OFF(btrfs_ioctl_search_key, unused);
    OFF(btrfs_ioctl_search_key, unused4);
    SIZE(btrfs_ioctl_search_args_v2);
    OFF(btrfs_ioctl_search_args_v2, buf_size);
    OFF(btrfs_ioctl_search_args_v2, buf);
    SIZE(btrfs_ioctl_search_header);
    OFF(btrfs_ioctl_search_header, objectid);
    OFF(btrfs_ioctl_search_header, offset);
    OFF(btrfs_ioctl_search_header, type);
    OFF(btrfs_ioctl_search_header, len);
    SIZE(btrfs_file_extent_item);
    OFF(btrfs_file_extent_item, ram_bytes);
    OFF(btrfs_file_extent_item, compression);
    OFF(btrfs_file_extent_item, encryption);
    OFF(btrfs_file_extent_item, other_encoding);
    OFF(btrfs_file_extent_item, type);
    OFF(btrfs_file_extent_item, disk_bytenr);
    OFF(btrfs_file_extent_item, disk_num_bytes);
    OFF(btrfs_file_extent_item, offset);
    OFF(btrfs_file_extent_item, num_bytes);
    SIZE(btrfs_inode_item);
    OFF(btrfs_inode_item, transid);
    OFF(btrfs_inode_item, size);
    OFF(btrfs_inode_item, nbytes);
    OFF(btrfs_inode_item, nlink);
    OFF(btrfs_inode_item, mode);
    OFF(btrfs_inode_item, flags);
    OFF(btrfs_inode_item, mtime);
    SIZE(btrfs_timespec);
    OFF(btrfs_timespec, nsec);
    CONST(BTRFS_IOC_TREE_SEARCH_V2);
    CONST(BTRFS_INODE_ITEM_KEY);
    CONST(BTRFS_EXTENT_DATA_KEY);
    CONST(BTRFS_FILE_EXTENT_INLINE);
    CONST(BTRFS_FILE_EXTENT_REG);
    CONST(BTRFS_FILE_EXTENT_PREALLOC);
    return 0;
}
"#;

/// `(probe key, Rust value, documented value)`. The parsers read the
/// packed items at these offsets.
fn facts() -> Vec<(&'static str, u64, u64)> {
    use std::mem::{offset_of, size_of};
    let u = |n: usize| n as u64;
    vec![
        (
            "size btrfs_ioctl_search_key",
            u(size_of::<SearchKey>()),
            104,
        ),
        (
            "offset btrfs_ioctl_search_key.tree_id",
            u(offset_of!(SearchKey, tree_id)),
            0,
        ),
        (
            "offset btrfs_ioctl_search_key.min_objectid",
            u(offset_of!(SearchKey, min_objectid)),
            8,
        ),
        (
            "offset btrfs_ioctl_search_key.max_objectid",
            u(offset_of!(SearchKey, max_objectid)),
            16,
        ),
        (
            "offset btrfs_ioctl_search_key.min_offset",
            u(offset_of!(SearchKey, min_offset)),
            24,
        ),
        (
            "offset btrfs_ioctl_search_key.max_offset",
            u(offset_of!(SearchKey, max_offset)),
            32,
        ),
        (
            "offset btrfs_ioctl_search_key.min_transid",
            u(offset_of!(SearchKey, min_transid)),
            40,
        ),
        (
            "offset btrfs_ioctl_search_key.max_transid",
            u(offset_of!(SearchKey, max_transid)),
            48,
        ),
        (
            "offset btrfs_ioctl_search_key.min_type",
            u(offset_of!(SearchKey, min_type)),
            56,
        ),
        (
            "offset btrfs_ioctl_search_key.max_type",
            u(offset_of!(SearchKey, max_type)),
            60,
        ),
        (
            "offset btrfs_ioctl_search_key.nr_items",
            u(offset_of!(SearchKey, nr_items)),
            64,
        ),
        (
            "offset btrfs_ioctl_search_key.unused",
            u(offset_of!(SearchKey, unused)),
            68,
        ),
        (
            "offset btrfs_ioctl_search_key.unused4",
            u(offset_of!(SearchKey, unused4)),
            96,
        ),
        (
            "size btrfs_ioctl_search_args_v2",
            u(size_of::<SearchArgsV2>()),
            112,
        ),
        (
            "offset btrfs_ioctl_search_args_v2.buf_size",
            u(offset_of!(SearchArgsV2, buf_size)),
            104,
        ),
        // The flexible `buf[]` starts right after the head.
        (
            "offset btrfs_ioctl_search_args_v2.buf",
            u(size_of::<SearchArgsV2>()),
            112,
        ),
        (
            "size btrfs_ioctl_search_header",
            u(size_of::<SearchHeader>()),
            32,
        ),
        (
            "offset btrfs_ioctl_search_header.objectid",
            u(offset_of!(SearchHeader, objectid)),
            8,
        ),
        (
            "offset btrfs_ioctl_search_header.offset",
            u(offset_of!(SearchHeader, offset)),
            16,
        ),
        (
            "offset btrfs_ioctl_search_header.type",
            u(offset_of!(SearchHeader, item_type)),
            24,
        ),
        (
            "offset btrfs_ioctl_search_header.len",
            u(offset_of!(SearchHeader, len)),
            28,
        ),
        ("size btrfs_file_extent_item", u(FileExtentItem::SIZE), 53),
        ("offset btrfs_file_extent_item.ram_bytes", 8, 8),
        ("offset btrfs_file_extent_item.compression", 16, 16),
        ("offset btrfs_file_extent_item.encryption", 17, 17),
        ("offset btrfs_file_extent_item.other_encoding", 18, 18),
        ("offset btrfs_file_extent_item.type", 20, 20),
        (
            "offset btrfs_file_extent_item.disk_bytenr",
            u(FileExtentItem::INLINE_DATA),
            21,
        ),
        ("offset btrfs_file_extent_item.disk_num_bytes", 29, 29),
        ("offset btrfs_file_extent_item.offset", 37, 37),
        ("offset btrfs_file_extent_item.num_bytes", 45, 45),
        ("size btrfs_inode_item", u(InodeItem::SIZE), 160),
        ("offset btrfs_inode_item.transid", 8, 8),
        ("offset btrfs_inode_item.size", 16, 16),
        ("offset btrfs_inode_item.nbytes", 24, 24),
        ("offset btrfs_inode_item.nlink", 40, 40),
        ("offset btrfs_inode_item.mode", 52, 52),
        ("offset btrfs_inode_item.flags", 64, 64),
        ("offset btrfs_inode_item.mtime", u(InodeItem::MTIME), 136),
        ("size btrfs_timespec", 12, 12),
        ("offset btrfs_timespec.nsec", 8, 8),
        ("const BTRFS_INODE_ITEM_KEY", INODE_ITEM_KEY.into(), 1),
        ("const BTRFS_EXTENT_DATA_KEY", EXTENT_DATA_KEY.into(), 108),
        (
            "const BTRFS_FILE_EXTENT_INLINE",
            FILE_EXTENT_INLINE.into(),
            0,
        ),
        ("const BTRFS_FILE_EXTENT_REG", FILE_EXTENT_REG.into(), 1),
        (
            "const BTRFS_FILE_EXTENT_PREALLOC",
            FILE_EXTENT_PREALLOC.into(),
            2,
        ),
    ]
}

#[test]
fn btrfs_layouts_match_documented_numbers_and_headers() {
    let c = common::run_c_probe(
        &format!("{}{PROBE}", common::PRELUDE),
        &["linux/btrfs.h", "linux/btrfs_tree.h"],
    );
    common::check_facts(&facts(), c.as_ref());
    let opcode = BTRFS_IOC_TREE_SEARCH_V2 as u64;
    // _IOWR(0x94, 17, 112 bytes) in the asm-generic encoding.
    if cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
        assert_eq!(opcode, 0xc070_9411);
    }
    if let Some(c) = c {
        assert_eq!(opcode, c["const BTRFS_IOC_TREE_SEARCH_V2"]);
    }
}

/// What the tree holds for one inode: its inode item and extent items
/// (by file offset).
#[derive(Debug, PartialEq)]
struct Found {
    inode: Option<InodeItem>,
    extents: Vec<(u64, FileExtentItem)>,
}

fn search(dir: &Path, ino: u64, buf: &mut SearchBuf) -> Found {
    let d = File::open(dir).unwrap();
    let mut found = Found {
        inode: None,
        extents: Vec::new(),
    };
    let key = SearchKey::subvolume(ino, INODE_ITEM_KEY, ino, EXTENT_DATA_KEY);
    tree_search(d.as_fd(), key, buf, |h, data| {
        assert_eq!(h.objectid, ino, "{h:?}");
        match u8::try_from(h.item_type) {
            Ok(INODE_ITEM_KEY) => found.inode = InodeItem::parse(data),
            Ok(EXTENT_DATA_KEY) => found
                .extents
                .push((h.offset, FileExtentItem::parse(data).expect("extent item"))),
            _ => {}
        }
        ControlFlow::Continue(())
    })
    .expect("BTRFS_IOC_TREE_SEARCH_V2 (run as root)");
    found
}

fn ino(p: &Path) -> u64 {
    fs::metadata(p).unwrap().ino()
}

fs_test!(tree_search_reads_inode_and_extent_items, [btrfs], |dir| {
    write_synced(&dir.join("small"), &pattern(100, 1));
    write_synced(&dir.join("big"), &pattern(1 << 20, 2));
    {
        let s = File::open(dir.join("big")).unwrap();
        let d = File::create(dir.join("clone")).unwrap();
        ficlone(d.as_fd(), s.as_fd()).unwrap();
        d.sync_all().unwrap();
        let p = File::create(dir.join("prealloc")).unwrap();
        rustix::fs::fallocate(&p, rustix::fs::FallocateFlags::empty(), 0, 64 << 10).unwrap();
        p.sync_all().unwrap();
    }
    rustix::fs::syncfs(File::open(dir).unwrap()).unwrap();
    let mut buf = SearchBuf::new(64 << 10);

    let small = search(dir, ino(&dir.join("small")), &mut buf);
    let m = fs::metadata(dir.join("small")).unwrap();
    let i = small.inode.expect("inode item");
    assert_eq!((i.size, i.nlink), (100, 1));
    assert_eq!(i.mode, m.mode());
    assert_eq!(
        (i.mtime_sec as i64, i.mtime_nsec as i64),
        (m.mtime(), m.mtime_nsec())
    );
    assert_eq!(small.extents.len(), 1, "{small:?}");
    let (at, e) = small.extents[0];
    assert_eq!(
        (at, e.kind, e.num_bytes, e.ram_bytes),
        (0, FILE_EXTENT_INLINE, 100, 100)
    );

    let big = search(dir, ino(&dir.join("big")), &mut buf);
    assert_eq!(big.inode.unwrap().size, 1 << 20);
    assert!(!big.extents.is_empty());
    let mut end = 0;
    for &(at, e) in &big.extents {
        assert_eq!(e.kind, FILE_EXTENT_REG, "{big:?}");
        assert_ne!(e.disk_bytenr, 0, "{big:?}");
        assert_eq!(at, end, "{big:?}");
        end = at + e.num_bytes;
    }
    assert_eq!(end, 1 << 20);
    // The clone's items name the same bytes of the same extents.
    let clone = search(dir, ino(&dir.join("clone")), &mut buf);
    let refs = |f: &Found| -> Vec<(u64, u64, u64, u64)> {
        f.extents
            .iter()
            .map(|(at, e)| (*at, e.disk_bytenr, e.offset, e.num_bytes))
            .collect()
    };
    assert_eq!(refs(&clone), refs(&big));

    let pre = search(dir, ino(&dir.join("prealloc")), &mut buf);
    assert!(!pre.extents.is_empty(), "{pre:?}");
    assert!(
        pre.extents
            .iter()
            .all(|(_, e)| e.kind == FILE_EXTENT_PREALLOC),
        "{pre:?}"
    );
});

fs_test!(a_small_search_buffer_grows_and_goes_on, [btrfs], |dir| {
    // Many extents: every other 4 KiB block of a file written apart.
    let f = File::create(dir.join("f")).unwrap();
    let block = pattern(4096, 3);
    for k in 0..40u64 {
        std::os::unix::fs::FileExt::write_all_at(&f, &block, k * 8192).unwrap();
        f.sync_all().unwrap();
    }
    drop(f);
    let n = ino(&dir.join("f"));
    let whole = search(dir, n, &mut SearchBuf::new(1 << 20));
    assert!(whole.extents.len() >= 40, "{whole:?}");
    // Room for no item at all: the first call overflows and grows it, the
    // next ones go on after the last item returned.
    let mut tiny = SearchBuf::new(0);
    assert_eq!(search(dir, n, &mut tiny), whole);
});

fs_test!(
    tree_search_is_unknown_elsewhere,
    [xfs, ext4, tmpfs],
    |dir| {
        let d = File::open(dir).unwrap();
        let key = SearchKey::subvolume(ino(dir), INODE_ITEM_KEY, ino(dir), EXTENT_DATA_KEY);
        let err = tree_search_once(d.as_fd(), &key, &mut SearchBuf::new(4096)).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOTTY), "{err}");
    }
);
