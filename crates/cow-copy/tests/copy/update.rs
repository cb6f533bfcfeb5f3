//! Updates that keep sharing (docs/architecture.md, "Why it exists", 2): an identical destination
//! is skipped or deduplicated, a different one is copied as usual. Every test
//! runs on real filesystems.

#![cfg(any(target_os = "linux", windows))]

use crate::common;

use std::fs::{self, File};
#[cfg(unix)]
use std::os::unix::fs::MetadataExt;
use std::path::Path;
#[cfg(unix)]
use std::process::Command;
use std::time::{Duration, SystemTime};

use common::inode;
use cow_copy::identical::{self, Decision, ProceedReason};
#[cfg(unix)]
use cow_copy::identical::{DedupeResult, Evidence};
use cow_copy::{CopyOptions, Overwrite, Strategy};
#[cfg(unix)]
use cow_test_support::Fs;
use cow_test_support::{fs_test, pattern, set_mtime, write_pattern, write_synced};

const MIB: u64 = 1 << 20;

/// Writes `data` to `path` and flushes it, so extents have addresses.
/// Moves the file's mtime one hour back.
fn age(path: &Path) -> SystemTime {
    set_mtime(path, SystemTime::now() - Duration::from_secs(3600));
    fs::metadata(path).unwrap().modified().unwrap()
}

fn update(policy: Overwrite, src: &Path, dst: &Path) -> cow_copy::CopyReport {
    CopyOptions::new().overwrite(policy).copy(src, dst).unwrap()
}

/// The bytes that only the files under `dir` use, as btrfs accounts them
/// (`btrfs filesystem du`: exclusive + shared among themselves only). Other
/// filesystems have no per-directory accounting, and their global counters
/// move with whatever else runs on them, so they are not measured.
#[cfg(unix)]
fn btrfs_usage(dir: &Path) -> u64 {
    rustix::fs::sync();
    let (_, exclusive, shared) = cow_test_support::btrfs_du(dir);
    exclusive + shared
}

fn decide(src: &Path, dst: &Path, dedupe: bool) -> Decision {
    let (s, d) = (File::open(src).unwrap(), File::open(dst).unwrap());
    identical::decide(
        &s,
        &s.metadata().unwrap(),
        &d,
        &d.metadata().unwrap(),
        dedupe,
    )
    .unwrap()
}

fs_test!(
    identical_with_other_mtime_is_skipped,
    [btrfs, xfs, ext4, tmpfs, native],
    |dir, fs| {
        let (src, dst) = (dir.join("new"), dir.join("installed"));
        let data = pattern((3 * MIB + 123) as usize, 1);
        write_synced(&dst, &data);
        write_synced(&src, &data);
        let mtime = age(&dst);
        let before = inode(&dst);
        let extents_before = fs.has_fiemap().then(|| cow_verify::extents(&dst).unwrap());

        let report = update(Overwrite::IfDifferent, &src, &dst);
        assert_eq!(report.strategy, Strategy::Skipped, "{report:?}");
        assert_eq!(report.bytes_copied, 0);
        assert_eq!(report.bytes_cloned, 0);
        assert_eq!(report.len, data.len() as u64);

        assert_eq!(inode(&dst), before, "same inode");
        assert_eq!(
            fs::metadata(&dst).unwrap().modified().unwrap(),
            mtime,
            "mtime untouched"
        );
        assert_eq!(fs::read(&dst).unwrap(), data);
        if let Some(e) = extents_before {
            let now = cow_verify::extents(&dst).unwrap();
            let loc = |v: &[cow_verify::Extent]| {
                v.iter()
                    .map(|e| (e.logical, e.length, e.location))
                    .collect::<Vec<_>>()
            };
            assert_eq!(loc(&now), loc(&e), "extents untouched");
        }
        // The source is untouched too.
        assert_eq!(fs::read(&src).unwrap(), data);
    }
);

fs_test!(
    last_byte_differs_is_copied,
    [btrfs, xfs, ext4, tmpfs, native],
    |dir| {
        let (src, dst) = (dir.join("new"), dir.join("installed"));
        let mut data = pattern((2 * MIB + 77) as usize, 2);
        write_synced(&dst, &data);
        *data.last_mut().unwrap() ^= 0x5a;
        write_synced(&src, &data);

        let d = decide(&src, &dst, false);
        let Decision::Proceed {
            reason: ProceedReason::Differs { from },
            bytes_read,
        } = d
        else {
            panic!("{d:?}");
        };
        assert_eq!(from, data.len() as u64 - 1);
        assert_eq!(bytes_read, 2 * data.len() as u64);

        let report = update(Overwrite::IfDifferent, &src, &dst);
        assert!(
            !matches!(report.strategy, Strategy::Skipped | Strategy::Deduped),
            "{report:?}"
        );
        assert_eq!(fs::read(&dst).unwrap(), data);
    }
);

fs_test!(
    first_byte_differs_costs_one_block,
    [btrfs, xfs, ext4, tmpfs, native],
    |dir| {
        let (src, dst) = (dir.join("new"), dir.join("installed"));
        let mut data = pattern((16 * MIB) as usize, 3);
        write_synced(&dst, &data);
        data[0] ^= 1;
        write_synced(&src, &data);

        for dedupe in [false, true] {
            let d = decide(&src, &dst, dedupe);
            assert_eq!(
                d,
                Decision::Proceed {
                    reason: ProceedReason::Differs { from: 0 },
                    bytes_read: 2 * identical::FIRST_READ,
                }
            );
        }
        let report = update(Overwrite::IfDifferentDedupe, &src, &dst);
        assert!(
            !matches!(report.strategy, Strategy::Skipped | Strategy::Deduped),
            "{report:?}"
        );
        assert_eq!(fs::read(&dst).unwrap(), data);
    }
);

fs_test!(sizes_differ_reads_nothing, [btrfs, ext4, native], |dir| {
    let (src, dst) = (dir.join("new"), dir.join("installed"));
    let data = write_pattern(&src, 10_000, 4);
    write_pattern(&dst, 10_001, 4);
    assert_eq!(
        decide(&src, &dst, true),
        Decision::Proceed {
            reason: ProceedReason::SizeDiffers {
                source: 10_000,
                destination: 10_001
            },
            bytes_read: 0,
        }
    );
    update(Overwrite::IfDifferent, &src, &dst);
    assert_eq!(fs::read(&dst).unwrap(), data);
});

fs_test!(empty_files_are_identical, [btrfs, tmpfs, native], |dir| {
    let (src, dst) = (dir.join("new"), dir.join("installed"));
    fs::write(&src, b"").unwrap();
    fs::write(&dst, b"").unwrap();
    let ino = inode(&dst);
    let report = update(Overwrite::IfDifferent, &src, &dst);
    assert_eq!(report.strategy, Strategy::Skipped);
    assert_eq!(inode(&dst), ino);
});

fs_test!(update_all_rewrites_identical_files, [btrfs, xfs], |dir| {
    // The default policy copies whatever is there (the contrast to the
    // skip): after it the destination shares the source's blocks.
    let (src, dst) = (dir.join("new"), dir.join("installed"));
    let data = pattern((MIB + 1) as usize, 5);
    write_synced(&dst, &data);
    write_synced(&src, &data);
    let report = CopyOptions::new().copy(&src, &dst).unwrap();
    assert_eq!(report.strategy, Strategy::Cloned, "{report:?}");
    assert!(cow_verify::is_clone(&src, &dst).unwrap());
});

fs_test!(
    missing_destination_is_copied,
    [btrfs, tmpfs, native],
    |dir| {
        let (src, dst) = (dir.join("new"), dir.join("installed"));
        let data = write_pattern(&src, 5000, 6);
        let report = update(Overwrite::IfDifferentDedupe, &src, &dst);
        assert!(!matches!(
            report.strategy,
            Strategy::Skipped | Strategy::Deduped
        ));
        assert_eq!(fs::read(&dst).unwrap(), data);
    }
);

fs_test!(identical_across_filesystems_is_skipped, [ext4], |dir| {
    // Equal bytes are equal on any device: a staging tree on one filesystem
    // updating an installed tree on another still skips identical files.
    let Some(other) = cow_test_support::dir_on(Fs::Tmpfs, "identical_across_filesystems") else {
        return;
    };
    let (src, dst) = (other.path().join("new"), dir.join("installed"));
    let data = pattern((MIB + 5) as usize, 7);
    write_synced(&dst, &data);
    write_synced(&src, &data);
    let mtime = age(&dst);
    let report = update(Overwrite::IfDifferentDedupe, &src, &dst);
    assert_eq!(report.strategy, Strategy::Skipped, "{report:?}");
    assert_eq!(fs::metadata(&dst).unwrap().modified().unwrap(), mtime);
    // Dedupe was asked for and is impossible across filesystems: skipped,
    // with the reason.
    assert!(matches!(
        decide(&src, &dst, true),
        Decision::Skip {
            evidence: Evidence::ByteCompare,
            dedupe_not_possible: Some(_),
            ..
        }
    ));
});

fs_test!(
    dedupe_identical_8mib_frees_a_copy,
    [btrfs, xfs],
    |dir, fs| {
        let (src, dst) = (dir.join("new"), dir.join("installed"));
        let data = pattern((8 * MIB) as usize, 8);
        write_synced(&dst, &data);
        write_synced(&src, &data);
        let mtime = age(&dst);
        let ino = fs::metadata(&dst).unwrap().ino();
        assert_eq!(cow_verify::sharing(&src, &dst).unwrap().shared_bytes, 0);
        let before = (fs == Fs::Btrfs).then(|| btrfs_usage(dir));

        let report = update(Overwrite::IfDifferentDedupe, &src, &dst);
        assert_eq!(report.strategy, Strategy::Deduped, "{report:?}");
        assert_eq!(report.bytes_cloned, 8 * MIB);
        assert_eq!(report.bytes_copied, 0);

        let sharing = cow_verify::sharing(&src, &dst).unwrap();
        assert_eq!(sharing.ratio, 1.0, "{sharing:?}");
        assert!(cow_verify::is_clone(&src, &dst).unwrap());
        if let Some(before) = before {
            let after = btrfs_usage(dir);
            let freed = before as i64 - after as i64;
            assert!(
                (freed - (8 * MIB) as i64).unsigned_abs() <= MIB / 2,
                "usage {before} -> {after}: freed {freed}, expected ~{}",
                8 * MIB
            );
        }
        assert_eq!(fs::metadata(&dst).unwrap().ino(), ino);
        assert_eq!(fs::metadata(&dst).unwrap().modified().unwrap(), mtime);
        assert_eq!(fs::read(&dst).unwrap(), data);
        assert_eq!(fs::read(&src).unwrap(), data);

        // A second update finds the shared extents: no data read at all.
        assert_eq!(
            decide(&src, &dst, true),
            Decision::Skip {
                evidence: Evidence::SameExtents,
                bytes_read: 0,
                dedupe_not_possible: None
            }
        );
        let report = update(Overwrite::IfDifferentDedupe, &src, &dst);
        assert_eq!(report.strategy, Strategy::Skipped);
    }
);

fs_test!(
    dedupe_mode_skips_where_dedupe_is_impossible,
    [ext4, tmpfs, native],
    |dir| {
        let (src, dst) = (dir.join("new"), dir.join("installed"));
        let data = pattern((2 * MIB) as usize, 9);
        write_synced(&dst, &data);
        write_synced(&src, &data);
        let ino = inode(&dst);
        let report = update(Overwrite::IfDifferentDedupe, &src, &dst);
        assert_eq!(report.strategy, Strategy::Skipped, "{report:?}");
        assert_eq!(inode(&dst), ino);
        assert!(matches!(
            decide(&src, &dst, true),
            Decision::Skip {
                dedupe_not_possible: Some(identical::NotPossible::Unsupported),
                ..
            }
        ));
    }
);

fs_test!(dedupe_into_stops_at_a_difference, [btrfs, xfs], |dir| {
    // 40 MiB with the last byte different: more than btrfs shares per call,
    // so the loop and the per-request status both matter.
    let (a, b) = (dir.join("a"), dir.join("b"));
    let data = pattern((40 * MIB) as usize, 10);
    write_synced(&a, &data);
    let mut other = data.clone();
    *other.last_mut().unwrap() ^= 1;
    write_synced(&b, &other);
    let (fa, fb) = (File::open(&a).unwrap(), File::open(&b).unwrap());
    let r = identical::dedupe_into(&fa, &fb, 40 * MIB).unwrap();
    assert!(matches!(r, DedupeResult::Differs { .. }), "{r:?}");
    assert_eq!(fs::read(&a).unwrap(), data);
    assert_eq!(fs::read(&b).unwrap(), other);
    // The whole file when equal, unaligned length included.
    let c = dir.join("c");
    write_synced(&c, &data);
    let fc = File::open(&c).unwrap();
    let r = identical::dedupe_into(&fa, &fc, 40 * MIB).unwrap();
    assert_eq!(r, DedupeResult::Shared { bytes: 40 * MIB });
    assert!(cow_verify::is_clone(&a, &c).unwrap());
    assert!(identical::same_extents(&fa, &fc, 40 * MIB).unwrap());
    assert!(!identical::same_extents(&fa, &fb, 40 * MIB).unwrap());
});

fs_test!(
    compare_content_counts_and_finds,
    [xfs, tmpfs, native],
    |dir| {
        let (a, b) = (dir.join("a"), dir.join("b"));
        let len = 3 * MIB + 10;
        let data = pattern(len as usize, 11);
        write_synced(&a, &data);
        let mut other = data.clone();
        other[(2 * MIB + 3) as usize] ^= 0x80;
        write_synced(&b, &other);
        let (fa, fb) = (File::open(&a).unwrap(), File::open(&b).unwrap());
        let c = identical::compare_content(&fa, &fb, len).unwrap();
        assert_eq!(c.first_difference, Some(2 * MIB + 3));
        // 4, 16, 64 and 256 KiB reads (340 KiB), then 1 MiB reads: the
        // second of those (340 KiB + 1 MiB .. 340 KiB + 2 MiB) holds the
        // difference.
        let growing: u64 = (0..4).map(|k| identical::FIRST_READ << (2 * k)).sum();
        assert_eq!(growing, 340 * 1024);
        assert_eq!(c.bytes_read, 2 * (growing + 2 * MIB));
        let c = identical::compare_content(&fa, &fa, len).unwrap();
        assert!(c.is_identical());
        assert_eq!(c.bytes_read, 2 * len);
        // A file shorter than asked differs where it ends.
        let c = identical::compare_content(&fa, &fb, len + 1).unwrap();
        assert_eq!(c.first_difference, Some(2 * MIB + 3));
        let c = identical::compare_content(&fa, &fa, len + 1).unwrap();
        assert_eq!(c.first_difference, Some(len));
    }
);

fs_test!(
    atomic_copy_leaves_identical_destination_in_place,
    [btrfs, xfs, ext4, tmpfs, native],
    |dir, fs| {
        let (src, dst) = (dir.join("new"), dir.join("installed"));
        let data = pattern((MIB + 9) as usize, 12);
        write_synced(&dst, &data);
        write_synced(&src, &data);
        let mtime = age(&dst);
        let ino = inode(&dst);
        let policy = if fs.reflinks() {
            Overwrite::IfDifferentDedupe
        } else {
            Overwrite::IfDifferent
        };
        let report = CopyOptions::new()
            .atomic(true)
            .overwrite(policy)
            .copy(&src, &dst)
            .unwrap();
        let want = if fs.reflinks() {
            Strategy::Deduped
        } else {
            Strategy::Skipped
        };
        assert_eq!(report.strategy, want, "{report:?}");
        assert_eq!(inode(&dst), ino, "no rename");
        assert_eq!(fs::metadata(&dst).unwrap().modified().unwrap(), mtime);
        assert_eq!(fs::read(&dst).unwrap(), data);
        if fs.reflinks() {
            assert!(cow_verify::is_clone(&src, &dst).unwrap());
        }
        // No temporary left behind.
        let names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");

        // A different file goes through the temporary and the rename.
        let mut other = data.clone();
        other[500_000] ^= 1;
        write_synced(&src, &other);
        let report = CopyOptions::new()
            .atomic(true)
            .overwrite(policy)
            .copy(&src, &dst)
            .unwrap();
        assert!(!matches!(
            report.strategy,
            Strategy::Skipped | Strategy::Deduped
        ));
        assert!(
            report
                .fallbacks
                .iter()
                .any(|f| f.reason.contains("contents differ")),
            "{report:?}"
        );
        assert_ne!(inode(&dst), ino, "renamed over");
        assert_eq!(fs::read(&dst).unwrap(), other);
    }
);

fs_test!(
    report_says_why_the_copy_ran,
    [btrfs, tmpfs, native],
    |dir| {
        let (src, dst) = (dir.join("new"), dir.join("installed"));
        write_pattern(&src, 1000, 13);
        write_pattern(&dst, 999, 13);
        let report = update(Overwrite::IfDifferent, &src, &dst);
        let f = &report.fallbacks[0];
        assert_eq!(f.strategy, Strategy::Skipped);
        assert!(f.reason.contains("sizes differ"), "{f:?}");
        // The default policy checks nothing and says nothing about it.
        write_pattern(&dst, 999, 13);
        let report = CopyOptions::new().copy(&src, &dst).unwrap();
        assert!(
            report
                .fallbacks
                .iter()
                .all(|f| f.strategy != Strategy::Skipped)
        );
    }
);

/// A read-only bind mount of `dir` at `at`, unmounted on drop.
#[cfg(unix)]
struct RoBind(std::path::PathBuf);

#[cfg(unix)]
impl RoBind {
    fn new(dir: &Path, at: &Path) -> RoBind {
        fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .arg("--bind")
            .arg(dir)
            .arg(at)
            .status()
            .unwrap();
        assert!(ok.success(), "mount --bind");
        let guard = RoBind(at.to_path_buf());
        let ok = Command::new("mount")
            .args(["-o", "remount,bind,ro"])
            .arg(at)
            .status()
            .unwrap();
        assert!(ok.success(), "remount ro");
        guard
    }
}

#[cfg(unix)]
impl Drop for RoBind {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fs_test!(dedupe_from_a_read_only_mount_skips, [btrfs, xfs], |dir| {
    // Updating from a read-only mount: the source cannot be made to share
    // anything (EROFS), the identical destination is still skipped, and the
    // report says why it was not deduplicated. (A read-only btrfs *snapshot*
    // is different: btrfs lets dedupe change which blocks it references.)
    let (stage, ro) = (dir.join("stage"), dir.join("ro"));
    fs::create_dir(&stage).unwrap();
    let data = pattern((2 * MIB) as usize, 14);
    write_synced(&stage.join("f"), &data);
    let dst = dir.join("installed");
    write_synced(&dst, &data);
    let ino = fs::metadata(&dst).unwrap().ino();
    let mount = RoBind::new(&stage, &ro);
    let report = update(Overwrite::IfDifferentDedupe, &ro.join("f"), &dst);
    drop(mount);
    assert_eq!(report.strategy, Strategy::Skipped, "{report:?}");
    assert!(
        report
            .fallbacks
            .iter()
            .any(|f| f.strategy == Strategy::Deduped
                && f.reason.contains("not deduplicated")
                && f.reason.contains("read-only")),
        "{report:?}"
    );
    assert_eq!(fs::metadata(&dst).unwrap().ino(), ino);
    assert_eq!(fs::read(&dst).unwrap(), data);
});

/// A source and destination path for one `atomic` setting.
fn pair(dir: &Path, atomic: bool) -> (std::path::PathBuf, std::path::PathBuf) {
    (
        dir.join(format!("src{atomic}")),
        dir.join(format!("dst{atomic}")),
    )
}

fs_test!(
    if_older_keeps_a_newer_destination_untouched,
    [btrfs, xfs, ext4, tmpfs, native],
    |dir, _fs| {
        for atomic in [false, true] {
            let (src, dst) = pair(dir, atomic);
            write_pattern(&src, 100_000, 1);
            write_pattern(&dst, 5_000, 2);
            age(&src);
            #[cfg(unix)]
            fs::set_permissions(&dst, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
            let before = fs::metadata(&dst).unwrap();
            let before_id = inode(&dst);

            // -p semantics too: a kept destination gets no metadata either.
            let mut opts = CopyOptions::new()
                .overwrite(Overwrite::IfOlder)
                .atomic(atomic);
            opts = opts.preserve(cow_copy::Preserve::all());
            let report = opts.copy(&src, &dst).unwrap();
            assert_eq!(
                report.strategy,
                Strategy::KeptNewer,
                "atomic={atomic} {report:?}"
            );
            assert_eq!(report.destination, cow_copy::Destination::Kept);
            assert_eq!((report.bytes_cloned, report.bytes_copied), (0, 0));
            assert_eq!(report.len, 100_000);

            let after = fs::metadata(&dst).unwrap();
            assert_eq!(inode(&dst), before_id, "same inode");
            assert_eq!(after.permissions(), before.permissions(), "mode untouched");
            #[cfg(unix)]
            assert_eq!(after.mode(), before.mode(), "mode untouched");
            assert_eq!(after.modified().unwrap(), before.modified().unwrap());
            assert_eq!(
                fs::read(&dst).unwrap(),
                pattern(5_000, 2),
                "content untouched"
            );
        }
    }
);

fs_test!(
    if_older_replaces_an_older_destination_and_copies_a_missing_one,
    [btrfs, xfs, ext4, tmpfs],
    |dir, _fs| {
        for atomic in [false, true] {
            let (src, dst) = pair(dir, atomic);
            write_pattern(&src, 100_000, 1);
            let opts = CopyOptions::new()
                .overwrite(Overwrite::IfOlder)
                .atomic(atomic);

            // Missing: copied.
            let report = opts.copy(&src, &dst).unwrap();
            assert_eq!(report.destination, cow_copy::Destination::Created);
            assert_eq!(fs::read(&dst).unwrap(), pattern(100_000, 1));

            // One nanosecond older: replaced.
            write_pattern(&dst, 5_000, 2);
            let t = fs::metadata(&src).unwrap().modified().unwrap();
            set_mtime(&dst, t - Duration::from_nanos(1));
            let report = opts.copy(&src, &dst).unwrap();
            assert_eq!(
                report.destination,
                cow_copy::Destination::Replaced,
                "{report:?}"
            );
            assert_ne!(report.strategy, Strategy::KeptNewer);
            assert_eq!(fs::read(&dst).unwrap(), pattern(100_000, 1));

            // The same time to the nanosecond: not older, kept.
            write_pattern(&dst, 5_000, 3);
            set_mtime(&dst, t);
            let report = opts.copy(&src, &dst).unwrap();
            assert_eq!(report.strategy, Strategy::KeptNewer, "{report:?}");
            assert_eq!(fs::read(&dst).unwrap(), pattern(5_000, 3));
        }
    }
);

fs_test!(
    identical_skip_reports_the_destination_as_kept,
    [btrfs, xfs, ext4, tmpfs, native],
    |dir, _fs| {
        let (src, dst) = (dir.join("a"), dir.join("b"));
        write_pattern(&src, 70_000, 4);
        write_pattern(&dst, 70_000, 4);
        let report = update(Overwrite::IfDifferent, &src, &dst);
        assert_eq!(report.strategy, Strategy::Skipped);
        assert_eq!(report.destination, cow_copy::Destination::Kept);
        write_pattern(&dst, 70_000, 5);
        let report = update(Overwrite::IfDifferent, &src, &dst);
        assert_eq!(report.destination, cow_copy::Destination::Replaced);
    }
);
