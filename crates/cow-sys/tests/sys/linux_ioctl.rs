//! The Linux wrappers on real filesystems: clones and dedupes on btrfs and
//! XFS, the errors of ext4 and tmpfs, and FIEMAP everywhere it exists.
#![cfg(any(target_os = "linux", target_os = "android"))]

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::path::Path;

use cow_sys::linux::*;
use cow_test_support::{fs_test, pattern, write_pattern, write_sparse};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
/// Offsets used for ranges: aligned to any block size up to 64 KiB.
const ALIGN: u64 = 64 * KIB;

fn open_rw(path: &Path) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

fn create(path: &Path) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)
        .unwrap_or_else(|e| panic!("create {}: {e}", path.display()))
}

fn extents(f: &File) -> Vec<FiemapExtent> {
    fiemap_all(f.as_fd(), FiemapFlags::SYNC).expect("FIEMAP")
}

/// The device offset that holds logical byte `logical`, if it is mapped.
fn physical_at(map: &[FiemapExtent], logical: u64) -> Option<u64> {
    map.iter()
        .find(|e| e.fe_logical <= logical && logical < e.fe_logical + e.fe_length)
        .map(|e| e.fe_physical + (logical - e.fe_logical))
}

fn errno(e: &io::Error) -> i32 {
    e.raw_os_error()
        .unwrap_or_else(|| panic!("not an OS error: {e}"))
}

/// The errnos a filesystem without reflinks answers to a clone request.
const NO_CLONE: [i32; 4] = [libc::EOPNOTSUPP, libc::EXDEV, libc::EINVAL, libc::ENOTTY];

fs_test!(ficlone_shares_every_extent, [btrfs, xfs], |dir| {
    let len = 3 * MIB + 123;
    let data = write_pattern(&dir.join("src"), len as usize, 1);
    let src = File::open(dir.join("src")).unwrap();
    let dst = create(&dir.join("dst"));
    ficlone(dst.as_fd(), src.as_fd()).expect("FICLONE");

    assert_eq!(std::fs::read(dir.join("dst")).unwrap(), data);
    assert_eq!(dst.metadata().unwrap().len(), len);

    let src_map = extents(&src);
    let dst_map = extents(&dst);
    assert!(!dst_map.is_empty(), "the clone has no extents");
    let mut covered = 0;
    for e in &dst_map {
        assert!(
            e.flags().contains(FiemapExtentFlags::SHARED),
            "extent not SHARED after FICLONE: {e:?}"
        );
        // Same bytes on disk: both ends of every extent of the clone map to
        // the same device offsets as in the source.
        let last = e.fe_logical + e.fe_length - 1;
        assert_eq!(physical_at(&src_map, e.fe_logical), Some(e.fe_physical));
        assert_eq!(
            physical_at(&src_map, last),
            Some(e.fe_physical + e.fe_length - 1)
        );
        covered += e.fe_length;
    }
    assert!(covered >= len, "extents cover {covered} of {len} bytes");
    assert!(
        src_map
            .iter()
            .all(|e| e.flags().contains(FiemapExtentFlags::SHARED))
    );
    assert!(
        dst_map
            .last()
            .unwrap()
            .flags()
            .contains(FiemapExtentFlags::LAST)
    );

    // Copy-on-write: writing the clone leaves the source alone.
    dst.write_all_at(b"changed", 0).unwrap();
    dst.sync_all().unwrap();
    assert_eq!(std::fs::read(dir.join("src")).unwrap(), data);
    assert_ne!(std::fs::read(dir.join("dst")).unwrap(), data);
});

fs_test!(
    ficlone_does_not_truncate_a_longer_destination,
    [btrfs, xfs],
    |dir| {
        // An aligned source over a longer destination: the head is replaced,
        // the tail and the length stay.
        let src_data = write_pattern(&dir.join("src"), (2 * ALIGN) as usize, 1);
        let dst_data = write_pattern(&dir.join("dst"), (4 * ALIGN) as usize, 2);
        let src = File::open(dir.join("src")).unwrap();
        let dst = open_rw(&dir.join("dst"));
        ficlone(dst.as_fd(), src.as_fd()).expect("FICLONE");
        let after = std::fs::read(dir.join("dst")).unwrap();
        assert_eq!(after.len() as u64, 4 * ALIGN, "FICLONE changed the length");
        assert_eq!(&after[..src_data.len()], &src_data[..]);
        assert_eq!(&after[src_data.len()..], &dst_data[src_data.len()..]);

        // A source ending in a partial block cannot land inside a longer file.
        write_pattern(&dir.join("odd"), (2 * ALIGN + 100) as usize, 3);
        let odd = File::open(dir.join("odd")).unwrap();
        let err = ficlone(dst.as_fd(), odd.as_fd()).expect_err("partial EOF block mid-file");
        assert_eq!(errno(&err), libc::EINVAL, "{err}");
        assert_eq!(std::fs::read(dir.join("dst")).unwrap(), after);
    }
);

fs_test!(ficlonerange_shares_only_the_range, [btrfs, xfs], |dir| {
    let len = 2 * MIB;
    let src_data = write_pattern(&dir.join("src"), len as usize, 1);
    let dst_data = write_pattern(&dir.join("dst"), len as usize, 2);
    let src = File::open(dir.join("src")).unwrap();
    let dst = open_rw(&dir.join("dst"));

    let (src_off, dst_off, n) = (ALIGN, 8 * ALIGN, 4 * ALIGN);
    ficlonerange(dst.as_fd(), src.as_fd(), src_off, n, dst_off).expect("FICLONERANGE");

    let after = std::fs::read(dir.join("dst")).unwrap();
    assert_eq!(after.len() as u64, len);
    let (a, b) = (dst_off as usize, (dst_off + n) as usize);
    assert_eq!(
        &after[a..b],
        &src_data[src_off as usize..(src_off + n) as usize]
    );
    assert_eq!(
        &after[..a],
        &dst_data[..a],
        "bytes before the range changed"
    );
    assert_eq!(&after[b..], &dst_data[b..], "bytes after the range changed");

    let src_map = extents(&src);
    let dst_map = extents(&dst);
    let mut shared_bytes = 0;
    for e in &dst_map {
        let end = e.fe_logical + e.fe_length;
        let inside = e.fe_logical >= dst_off && end <= dst_off + n;
        let outside = end <= dst_off || e.fe_logical >= dst_off + n;
        let shared = e.flags().contains(FiemapExtentFlags::SHARED);
        assert!(
            inside || outside,
            "extent straddles the cloned range: {e:?}"
        );
        assert_eq!(
            shared, inside,
            "SHARED must mark exactly the cloned range: {e:?}"
        );
        if inside {
            shared_bytes += e.fe_length;
            let src_logical = e.fe_logical - dst_off + src_off;
            assert_eq!(physical_at(&src_map, src_logical), Some(e.fe_physical));
        }
    }
    assert_eq!(shared_bytes, n);
});

fs_test!(ficlonerange_unaligned_is_einval, [btrfs, xfs], |dir| {
    write_pattern(&dir.join("src"), MIB as usize, 1);
    let dst_data = write_pattern(&dir.join("dst"), MIB as usize, 2);
    let src = File::open(dir.join("src")).unwrap();
    let dst = open_rw(&dir.join("dst"));

    // Unaligned source offset, destination offset, and length (not at EOF).
    for (src_off, len, dst_off) in [(1000, ALIGN, 0), (0, ALIGN, 1000), (0, ALIGN + 1000, 0)] {
        let err = ficlonerange(dst.as_fd(), src.as_fd(), src_off, len, dst_off)
            .expect_err("an unaligned FICLONERANGE must fail");
        assert_eq!(
            errno(&err),
            libc::EINVAL,
            "({src_off}, {len}, {dst_off}): {err}"
        );
    }
    assert_eq!(std::fs::read(dir.join("dst")).unwrap(), dst_data);
});

fs_test!(dedupe_equal_files_is_same, [btrfs, xfs], |dir| {
    let len = 2 * MIB;
    let data = write_pattern(&dir.join("a"), len as usize, 7);
    write_pattern(&dir.join("b"), len as usize, 7);
    let a = File::open(dir.join("a")).unwrap();
    let b = open_rw(&dir.join("b"));
    assert!(
        extents(&b)
            .iter()
            .all(|e| !e.flags().contains(FiemapExtentFlags::SHARED))
    );

    let status = dedupe_one(a.as_fd(), 0, len, b.as_fd(), 0).expect("FIDEDUPERANGE");
    assert_eq!(status, DedupeStatus::Same { bytes_deduped: len });

    assert_eq!(std::fs::read(dir.join("b")).unwrap(), data);
    let a_map = extents(&a);
    let b_map = extents(&b);
    assert!(!b_map.is_empty());
    for e in &b_map {
        assert!(
            e.flags().contains(FiemapExtentFlags::SHARED),
            "not SHARED after dedupe: {e:?}"
        );
        assert_eq!(physical_at(&a_map, e.fe_logical), Some(e.fe_physical));
    }
});

fs_test!(dedupe_different_files_is_differs, [btrfs, xfs], |dir| {
    let len = 2 * MIB;
    write_pattern(&dir.join("a"), len as usize, 7);
    let mut other = pattern(len as usize, 7);
    // One byte differs, far from the start.
    other[(len - 100) as usize] ^= 0xff;
    std::fs::write(dir.join("b"), &other).unwrap();
    let a = File::open(dir.join("a")).unwrap();
    let b = open_rw(&dir.join("b"));

    let status = dedupe_one(a.as_fd(), 0, len, b.as_fd(), 0).expect("FIDEDUPERANGE");
    assert_eq!(status, DedupeStatus::Differs);
    assert_eq!(
        std::fs::read(dir.join("b")).unwrap(),
        other,
        "a Differs dedupe changed the file"
    );
    for e in extents(&b) {
        assert!(
            !e.flags().contains(FiemapExtentFlags::SHARED),
            "shared after Differs: {e:?}"
        );
    }
});

fs_test!(dedupe_reports_each_destination, [btrfs, xfs], |dir| {
    let len = MIB;
    write_pattern(&dir.join("src"), len as usize, 3);
    write_pattern(&dir.join("same"), len as usize, 3);
    let different = write_pattern(&dir.join("different"), len as usize, 4);
    let src = File::open(dir.join("src")).unwrap();
    let same = open_rw(&dir.join("same"));
    let diff = open_rw(&dir.join("different"));

    let targets = [
        DedupeTarget {
            fd: same.as_fd(),
            offset: 0,
        },
        DedupeTarget {
            fd: diff.as_fd(),
            offset: 0,
        },
    ];
    let out = dedupe_range(src.as_fd(), 0, len, &targets).expect("FIDEDUPERANGE");
    assert_eq!(out.len(), 2);
    assert_eq!(
        *out[0].as_ref().unwrap(),
        DedupeStatus::Same { bytes_deduped: len }
    );
    assert_eq!(*out[1].as_ref().unwrap(), DedupeStatus::Differs);
    assert!(
        extents(&same)
            .iter()
            .all(|e| e.flags().contains(FiemapExtentFlags::SHARED))
    );
    assert!(
        extents(&diff)
            .iter()
            .all(|e| !e.flags().contains(FiemapExtentFlags::SHARED))
    );
    assert_eq!(std::fs::read(dir.join("different")).unwrap(), different);
});

fs_test!(
    dedupe_status_error_is_per_destination,
    [btrfs, xfs],
    |dir| {
        let len = MIB;
        write_pattern(&dir.join("src"), len as usize, 3);
        write_pattern(&dir.join("same"), len as usize, 3);
        let src = File::open(dir.join("src")).unwrap();
        let same = open_rw(&dir.join("same"));
        let short = create(&dir.join("short"));

        // The second destination is too short: its own status carries the
        // error, and the first one is still deduplicated.
        let targets = [
            DedupeTarget {
                fd: same.as_fd(),
                offset: 0,
            },
            DedupeTarget {
                fd: short.as_fd(),
                offset: 0,
            },
        ];
        let out = dedupe_range(src.as_fd(), 0, len, &targets).expect("FIDEDUPERANGE");
        assert_eq!(
            *out[0].as_ref().unwrap(),
            DedupeStatus::Same { bytes_deduped: len }
        );
        let err = out[1]
            .as_ref()
            .expect_err("an empty destination cannot be deduplicated");
        assert_eq!(errno(err), libc::EINVAL, "{err}");
    }
);

fs_test!(clone_and_dedupe_are_refused, [ext4, tmpfs], |dir| {
    let data = write_pattern(&dir.join("src"), (3 * ALIGN) as usize, 1);
    write_pattern(&dir.join("twin"), (3 * ALIGN) as usize, 1);
    let src = File::open(dir.join("src")).unwrap();
    let dst = create(&dir.join("dst"));
    let twin = open_rw(&dir.join("twin"));

    let err = ficlone(dst.as_fd(), src.as_fd()).expect_err("FICLONE must fail here");
    assert!(NO_CLONE.contains(&errno(&err)), "FICLONE: unexpected {err}");
    let err = ficlonerange(dst.as_fd(), src.as_fd(), 0, ALIGN, 0)
        .expect_err("FICLONERANGE must fail here");
    assert!(
        NO_CLONE.contains(&errno(&err)),
        "FICLONERANGE: unexpected {err}"
    );
    assert_eq!(
        dst.metadata().unwrap().len(),
        0,
        "a refused clone wrote data"
    );

    match dedupe_one(src.as_fd(), 0, 3 * ALIGN, twin.as_fd(), 0) {
        Ok(s) => panic!("FIDEDUPERANGE succeeded without reflink support: {s:?}"),
        Err(e) => assert!(
            NO_CLONE.contains(&errno(&e)),
            "FIDEDUPERANGE: unexpected {e}"
        ),
    }
    assert_eq!(std::fs::read(dir.join("twin")).unwrap(), data);
});

fs_test!(fiemap_maps_data, [btrfs, xfs, ext4], |dir| {
    let len = 5 * ALIGN;
    // Data, hole, data: two extents at known logical offsets.
    write_sparse(
        &dir.join("f"),
        len,
        &[(0, ALIGN), (3 * ALIGN, 2 * ALIGN)],
        9,
    );
    let f = File::open(dir.join("f")).unwrap();
    let map = extents(&f);
    assert!(!map.is_empty());
    assert!(
        map.last()
            .unwrap()
            .flags()
            .contains(FiemapExtentFlags::LAST)
    );
    for e in &map {
        let end = e.fe_logical + e.fe_length;
        assert!(
            end <= ALIGN || e.fe_logical >= 3 * ALIGN,
            "an extent maps the hole: {e:?}"
        );
        assert!(!e.flags().contains(FiemapExtentFlags::SHARED), "{e:?}");
    }
    for logical in [0, ALIGN - 1, 3 * ALIGN, len - 1] {
        assert!(
            physical_at(&map, logical).is_some(),
            "byte {logical} is not mapped"
        );
    }
    assert_eq!(physical_at(&map, 2 * ALIGN), None, "the hole is mapped");

    // Asking for no extents returns only the count.
    let (head, none) = fiemap(f.as_fd(), 0, FIEMAP_MAX_OFFSET, FiemapFlags::SYNC, 0).unwrap();
    assert!(none.is_empty());
    assert_eq!(head.fm_mapped_extents as usize, map.len());

    // A count the kernel refuses is refused before allocating anything.
    let err = fiemap(
        f.as_fd(),
        0,
        FIEMAP_MAX_OFFSET,
        FiemapFlags::empty(),
        u32::MAX,
    )
    .unwrap_err();
    assert_eq!(errno(&err), libc::EINVAL);
});

fs_test!(
    fiemap_array_answers_as_fiemap_does,
    [btrfs, xfs, ext4],
    |dir| {
        // Three extents (data, hole, data, hole, data): the stack buffer
        // holds what the allocated one holds, for counts below and above the
        // extents, and none.
        let len = 5 * ALIGN;
        let p = dir.join("f");
        write_sparse(
            &p,
            len,
            &[(0, ALIGN), (2 * ALIGN, ALIGN), (4 * ALIGN, ALIGN)],
            9,
        );
        let f = File::open(&p).unwrap();
        let (head8, ext8) = fiemap_array::<8>(f.as_fd(), 0, len, FiemapFlags::SYNC).unwrap();
        let (head, ext) = fiemap(f.as_fd(), 0, len, FiemapFlags::SYNC, 8).unwrap();
        assert_eq!(head8, head);
        assert_eq!(head8.fm_mapped_extents as usize, ext.len());
        assert!(!ext.is_empty());
        assert_eq!(&ext8[..ext.len()], &ext[..]);
        assert!(
            ext8[ext.len()..]
                .iter()
                .all(|e| *e == FiemapExtent::default())
        );
        let (head1, ext1) = fiemap_array::<1>(f.as_fd(), 0, len, FiemapFlags::empty()).unwrap();
        let (_, ext_one) = fiemap(f.as_fd(), 0, len, FiemapFlags::empty(), 1).unwrap();
        assert_eq!(head1.fm_mapped_extents, 1);
        assert_eq!(&ext1[..], &ext_one[..]);
        // No extents asked: only the count, as with fiemap.
        let (head0, _) = fiemap_array::<0>(f.as_fd(), 0, len, FiemapFlags::empty()).unwrap();
        assert_eq!(head0.fm_mapped_extents as usize, ext.len());
    }
);

fs_test!(fiemap_is_refused_on_tmpfs, [tmpfs], |dir| {
    write_pattern(&dir.join("f"), (2 * ALIGN) as usize, 1);
    let f = File::open(dir.join("f")).unwrap();
    let err = fiemap_all(f.as_fd(), FiemapFlags::SYNC).expect_err("tmpfs has no FIEMAP");
    assert!(
        [libc::EOPNOTSUPP, libc::ENOTTY].contains(&errno(&err)),
        "unexpected {err}"
    );
});

/// One row of `filefrag -v`: logical offset, physical offset and length, in
/// bytes.
fn filefrag_rows(path: &Path) -> Option<Vec<(u64, u64, u64)>> {
    let out = match std::process::Command::new("filefrag")
        .arg("-v")
        .arg(path)
        .output()
    {
        Ok(out) if out.status.success() => out,
        Ok(out) => panic!("filefrag -v failed: {out:?}"),
        Err(e) => {
            eprintln!("SKIP filefrag comparison: filefrag is not installed ({e})");
            return None;
        }
    };
    let text = String::from_utf8(out.stdout).unwrap();
    // "File size of F is N (M blocks of B bytes)"
    let block: u64 = text
        .split("blocks of ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .expect("filefrag prints its block size");
    let mut rows = Vec::new();
    for line in text.lines() {
        // "   3:        6..       6:       3331..      3331:      1: ..."
        let fields: Vec<&str> = line.split(':').map(str::trim).collect();
        if fields.len() < 4 || fields[0].parse::<u64>().is_err() {
            continue;
        }
        let start =
            |range: &str| -> u64 { range.split("..").next().unwrap().trim().parse().unwrap() };
        let len: u64 = fields[3].parse().unwrap();
        rows.push((
            start(fields[1]) * block,
            start(fields[2]) * block,
            len * block,
        ));
    }
    Some(rows)
}

fs_test!(
    fiemap_all_returns_thousands_of_extents,
    [btrfs, xfs, ext4],
    |dir| {
        // 2,000 separate 4 KiB data blocks, each followed by a 4 KiB hole.
        const N: u64 = 2000;
        let blocks: Vec<(u64, u64)> = (0..N).map(|i| (i * 8 * KIB, 4 * KIB)).collect();
        let path = dir.join("holey");
        write_sparse(&path, N * 8 * KIB, &blocks, 5);
        let f = File::open(&path).unwrap();

        let map = extents(&f);
        assert_eq!(map.len() as u64, N, "fiemap_all must return every extent");
        for (e, &(off, len)) in map.iter().zip(&blocks) {
            assert_eq!((e.fe_logical, e.fe_length), (off, len), "{e:?}");
        }
        assert!(
            map.last()
                .unwrap()
                .flags()
                .contains(FiemapExtentFlags::LAST)
        );
        assert!(
            map[..map.len() - 1]
                .iter()
                .all(|e| !e.flags().contains(FiemapExtentFlags::LAST))
        );

        let (head, _) = fiemap(f.as_fd(), 0, FIEMAP_MAX_OFFSET, FiemapFlags::empty(), 0).unwrap();
        assert_eq!(u64::from(head.fm_mapped_extents), N);

        if let Some(rows) = filefrag_rows(&path) {
            let ours: Vec<(u64, u64, u64)> = map
                .iter()
                .map(|e| (e.fe_logical, e.fe_physical, e.fe_length))
                .collect();
            assert_eq!(
                rows.len(),
                ours.len(),
                "filefrag -v lists a different number of extents"
            );
            assert_eq!(rows, ours, "filefrag -v and fiemap_all disagree");
        }
    }
);
