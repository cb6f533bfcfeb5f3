//! Invariant 1 and 4-6: bytes, sizes, holes, clones and the report's truth on
//! every real filesystem.

#![cfg(any(target_os = "linux", windows))]

use crate::common;

use common::*;
use cow_copy::{CopyOptions, Reflink, Strategy};
#[cfg(unix)]
use cow_test_support::write_sparse;
use cow_test_support::{fs_test, write_pattern};

const SIZES: [usize; 7] = [0, 1, 4095, 4096, 4097, (1 << 20) + 1, 64 << 20];

fs_test!(
    sizes_default,
    [btrfs, xfs, ext4, tmpfs, native],
    |dir, fs| {
        for (i, &n) in SIZES.iter().enumerate() {
            let src = dir.join(format!("src{n}"));
            let dst = dir.join(format!("dst{n}"));
            write_pattern(&src, n, i as u64);
            let r = CopyOptions::new().copy(&src, &dst).unwrap();
            assert_same_bytes(&src, &dst);
            assert_truthful(fs, &src, &dst, &r);
            // A clone of more than a block on a reflink filesystem is shared.
            if fs.reflinks() && n > 4096 {
                assert_eq!(r.strategy, Strategy::Cloned, "{n}: {r:?}");
                assert_eq!(r.bytes_cloned, n as u64);
            }
        }
    }
);

fs_test!(
    sizes_each_reflink_policy,
    [btrfs, xfs, ext4, tmpfs, native],
    |dir, fs| {
        for (k, policy) in [Reflink::Never, Reflink::Auto].into_iter().enumerate() {
            for (i, &n) in SIZES[..6].iter().enumerate() {
                let src = dir.join(format!("s{k}-{n}"));
                let dst = dir.join(format!("d{k}-{n}"));
                write_pattern(&src, n, 100 + i as u64);
                let r = CopyOptions::new().reflink(policy).copy(&src, &dst).unwrap();
                assert_same_bytes(&src, &dst);
                assert_truthful(fs, &src, &dst, &r);
                if policy == Reflink::Never {
                    assert_eq!(r.strategy, PLAIN_COPY, "{r:?}");
                    if fs.has_fiemap() && n > 0 {
                        assert_eq!(cow_verify::sharing(&src, &dst).unwrap().shared_bytes, 0);
                    }
                }
            }
        }
    }
);

fs_test!(
    existing_larger_destination,
    [btrfs, xfs, ext4, tmpfs, native],
    |dir, fs| {
        for policy in [Reflink::Auto, Reflink::Never] {
            for n in [0usize, 1, 4097, 300_000] {
                let src = dir.join("src");
                let dst = dir.join("dst");
                write_pattern(&src, n, 7);
                write_pattern(&dst, 2 << 20, 8);
                let r = CopyOptions::new().reflink(policy).copy(&src, &dst).unwrap();
                assert_same_bytes(&src, &dst);
                assert_truthful(fs, &src, &dst, &r);
                assert_eq!(r.destination, cow_copy::Destination::Replaced);
            }
        }
    }
);

/// (name, length, data ranges)
#[cfg(unix)]
type Layout = (&'static str, u64, Vec<(u64, u64)>);

#[cfg(unix)]
fn layouts() -> Vec<Layout> {
    let mut many = Vec::new();
    for i in 0..64u64 {
        many.push((i * 256 * 1024, 8192));
    }
    vec![
        ("leading-hole", 8 << 20, vec![(4 << 20, 4 << 20)]),
        ("trailing-hole", 8 << 20, vec![(0, 1 << 20)]),
        (
            "middle-data",
            8 << 20,
            vec![(1 << 20, 65536), (5 << 20, 4096 * 3)],
        ),
        ("many-small", 16 << 20, many),
        ("all-hole", 8 << 20, vec![]),
        ("unaligned-tail", (2 << 20) + 123, vec![(2 << 20, 123)]),
    ]
}

// Windows: `CopyFileExW` keeps no holes, and Wine has no sparse files.
#[cfg(unix)]
fs_test!(sparse_layouts, [btrfs, xfs, ext4, tmpfs], |dir, fs| {
    for policy in [Reflink::Auto, Reflink::Never] {
        for (name, len, data) in layouts() {
            let src = dir.join(format!("{name}-{policy:?}.src"));
            let dst = dir.join(format!("{name}-{policy:?}.dst"));
            write_sparse(&src, len, &data, 3);
            let r = CopyOptions::new().reflink(policy).copy(&src, &dst).unwrap();
            assert_same_bytes(&src, &dst);
            assert_holes_kept(&src, &dst);
            assert_truthful(fs, &src, &dst, &r);
            let data_bytes: u64 = data.iter().map(|d| d.1).sum();
            assert!(
                r.hole_bytes >= len - data_bytes - 4096 * data.len() as u64 - 4096,
                "{name}: {r:?}"
            );
        }
    }
});

fs_test!(
    clone_then_write_is_independent,
    [btrfs, xfs, ext4, tmpfs, native],
    |dir, fs| {
        let src = dir.join("src");
        let dst = dir.join("dst");
        let orig = write_pattern(&src, 3 << 20, 11);
        let r = CopyOptions::new().copy(&src, &dst).unwrap();
        assert_truthful(fs, &src, &dst, &r);
        // Write into the copy: the source stays as it was.
        write_at(&dst, b"changed", 4096 * 10);
        assert_eq!(std::fs::read(&src).unwrap(), orig);
        // Write into the source: the copy keeps its own content.
        let before = std::fs::read(&dst).unwrap();
        write_at(&src, b"also changed", 100);
        assert_eq!(std::fs::read(&dst).unwrap(), before);
        assert_ne!(std::fs::read(&src).unwrap(), before);
    }
);

#[cfg(unix)]
fn cross(from: cow_test_support::Fs, to: cow_test_support::Fs, test: &str) {
    let (Some(a), Some(b)) = (
        cow_test_support::dir_on(from, test),
        cow_test_support::dir_on(to, test),
    ) else {
        return;
    };
    for (name, len, data) in layouts() {
        let src = a.path().join(name);
        let dst = b.path().join(name);
        write_sparse(&src, len, &data, 5);
        let r = CopyOptions::new().copy(&src, &dst).unwrap();
        assert_same_bytes(&src, &dst);
        if from != cow_test_support::Fs::Tmpfs && to != cow_test_support::Fs::Tmpfs {
            assert_holes_kept(&src, &dst);
        } else {
            assert_eq!(data_segments(&src), data_segments(&dst));
        }
        assert_ne!(r.strategy, Strategy::Cloned, "cross-fs cannot clone: {r:?}");
        assert_eq!(r.bytes_cloned, 0);
    }
    let src = a.path().join("dense");
    let dst = b.path().join("dense");
    write_pattern(&src, (1 << 20) + 1, 9);
    let r = CopyOptions::new().copy(&src, &dst).unwrap();
    assert_same_bytes(&src, &dst);
    assert_eq!(r.bytes_copied, (1 << 20) + 1);
    // The report says why the clone declined: EXDEV, two filesystems.
    let clone = r
        .fallbacks
        .iter()
        .find(|f| f.strategy == Strategy::Cloned)
        .unwrap_or_else(|| panic!("no clone fallback recorded: {r:?}"));
    assert_eq!(
        clone.errno,
        Some(rustix::io::Errno::XDEV.raw_os_error()),
        "{r:?}"
    );
    // reflink=always across filesystems fails and creates nothing.
    let dst2 = b.path().join("always");
    let e = CopyOptions::new()
        .reflink(Reflink::Always)
        .copy(&src, &dst2)
        .unwrap_err();
    assert!(
        matches!(e, cow_copy::CopyError::ReflinkUnsupported { .. }),
        "{e}"
    );
    assert!(!dst2.exists());
}

#[cfg(unix)]
#[test]
fn cross_fs_btrfs_to_ext4() {
    use cow_test_support::Fs;
    cross(Fs::Btrfs, Fs::Ext4, "cross_fs_btrfs_to_ext4");
}

#[cfg(unix)]
#[test]
fn cross_fs_ext4_to_xfs() {
    use cow_test_support::Fs;
    cross(Fs::Ext4, Fs::Xfs, "cross_fs_ext4_to_xfs");
}

#[cfg(unix)]
#[test]
fn cross_fs_tmpfs_to_btrfs() {
    use cow_test_support::Fs;
    cross(Fs::Tmpfs, Fs::Btrfs, "cross_fs_tmpfs_to_btrfs");
}

#[cfg(unix)]
#[test]
fn cross_fs_xfs_to_btrfs() {
    use cow_test_support::Fs;
    cross(Fs::Xfs, Fs::Btrfs, "cross_fs_xfs_to_btrfs");
}
