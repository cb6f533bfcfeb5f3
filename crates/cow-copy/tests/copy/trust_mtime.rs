//! `Overwrite::IfDifferentTrustMtime` (rsync's quick check) on real
//! filesystems: a destination with the source's size and modification time
//! is taken as identical without being read; every other destination goes
//! through the content comparison, so equal bytes under a new time keep
//! their blocks and different bytes are copied.

#![cfg(target_os = "linux")]

use crate::common;

use std::fs::{self, File};
use std::path::Path;
use std::time::{Duration, SystemTime};

use common::inode;
use cow_copy::identical::{self, Decision, Evidence, ProceedReason};
use cow_copy::{CopyOptions, Overwrite, Reflink, Strategy};
use cow_test_support::{fs_test, pattern, set_mtime, write_synced};

const MIB: usize = 1 << 20;

/// A time with a non-zero nanosecond part, an hour ago.
fn hour_ago() -> SystemTime {
    SystemTime::now() - Duration::from_secs(3600) + Duration::from_nanos(123_456_789)
}

fn trust(src: &Path, dst: &Path, atomic: bool) -> cow_copy::CopyReport {
    CopyOptions::new()
        .overwrite(Overwrite::IfDifferentTrustMtime)
        .atomic(atomic)
        .copy(src, dst)
        .unwrap()
}

fn decision(src: &Path, dst: &Path) -> Decision {
    let (s, d) = (File::open(src).unwrap(), File::open(dst).unwrap());
    identical::decide_update(
        Overwrite::IfDifferentTrustMtime,
        false,
        &s,
        &s.metadata().unwrap(),
        &d,
        &d.metadata().unwrap(),
    )
    .unwrap()
}

fs_test!(
    same_size_and_mtime_is_trusted_unread,
    [btrfs, xfs, ext4, tmpfs],
    |dir| {
        for atomic in [false, true] {
            let (src, dst) = (dir.join("new"), dir.join("installed"));
            let new = pattern(MIB + 5, 1);
            // Same size, other bytes: only a comparison could tell.
            let old = pattern(MIB + 5, 2);
            write_synced(&src, &new);
            write_synced(&dst, &old);
            let t = hour_ago();
            set_mtime(&src, t);
            set_mtime(&dst, t);
            assert!(identical::same_size_and_mtime(
                &fs::metadata(&src).unwrap(),
                &fs::metadata(&dst).unwrap()
            ));
            assert_eq!(
                decision(&src, &dst),
                Decision::Skip {
                    evidence: Evidence::SizeAndMtime,
                    bytes_read: 0,
                    dedupe_not_possible: None,
                }
            );
            let before = inode(&dst);
            let report = trust(&src, &dst, atomic);
            assert_eq!(
                report.strategy,
                Strategy::Skipped,
                "atomic {atomic}: {report:?}"
            );
            assert_eq!(report.bytes_copied + report.bytes_cloned, 0);
            // The trust semantics: the differing destination is kept as it is.
            assert_eq!(fs::read(&dst).unwrap(), old, "atomic {atomic}");
            assert_eq!(inode(&dst), before, "atomic {atomic}");
            assert_eq!(fs::metadata(&dst).unwrap().modified().unwrap(), t);
            // The content policy is not fooled by the times.
            let report = CopyOptions::new()
                .overwrite(Overwrite::IfDifferent)
                .atomic(atomic)
                .copy(&src, &dst)
                .unwrap();
            assert_ne!(report.strategy, Strategy::Skipped, "{report:?}");
            assert_eq!(fs::read(&dst).unwrap(), new, "atomic {atomic}");
            fs::remove_file(&src).unwrap();
            fs::remove_file(&dst).unwrap();
        }
    }
);

fs_test!(
    other_mtime_same_bytes_is_compared_and_kept,
    [btrfs, xfs, ext4, tmpfs],
    |dir, fs| {
        let (snap, src, dst) = (dir.join("snapshot"), dir.join("new"), dir.join("installed"));
        let data = pattern(3 * MIB + 17, 3);
        write_synced(&snap, &data);
        // The installed file shares its blocks with a "snapshot" where the
        // filesystem can clone; the staged source is a fresh copy.
        let reflink = if fs.reflinks() {
            Reflink::Always
        } else {
            Reflink::Auto
        };
        CopyOptions::new()
            .reflink(reflink)
            .copy(&snap, &dst)
            .unwrap();
        write_synced(&src, &data);
        set_mtime(&dst, hour_ago());
        let mtime = fs::metadata(&dst).unwrap().modified().unwrap();
        let Decision::Skip {
            evidence,
            bytes_read,
            ..
        } = decision(&src, &dst)
        else {
            panic!("identical bytes must be skipped");
        };
        assert_ne!(
            evidence,
            Evidence::SizeAndMtime,
            "times differ: not trusted"
        );
        if evidence == Evidence::ByteCompare {
            assert_eq!(bytes_read, 2 * data.len() as u64, "both files read whole");
        }
        let before = inode(&dst);
        let report = trust(&src, &dst, false);
        assert_eq!(report.strategy, Strategy::Skipped, "{report:?}");
        assert_eq!(report.bytes_copied + report.bytes_cloned, 0);
        assert_eq!(inode(&dst), before);
        assert_eq!(fs::metadata(&dst).unwrap().modified().unwrap(), mtime);
        assert_eq!(fs::read(&dst).unwrap(), data);
        if fs.reflinks() {
            rustix::fs::sync();
            let s = cow_verify::sharing(&dst, &snap).unwrap();
            assert!(s.is_clone(), "blocks stay shared with the snapshot: {s:?}");
        }
    }
);

fs_test!(
    different_content_is_copied,
    [btrfs, xfs, ext4, tmpfs],
    |dir| {
        for (len, seed) in [(MIB + 1, 4u64), (4096, 5), (1, 6)] {
            let (src, dst) = (dir.join("new"), dir.join("installed"));
            let mut new = pattern(len, seed);
            write_synced(&dst, &new);
            *new.last_mut().unwrap() ^= 0xff;
            write_synced(&src, &new);
            set_mtime(&dst, hour_ago());
            let d = decision(&src, &dst);
            assert_eq!(
                d,
                Decision::Proceed {
                    reason: ProceedReason::Differs {
                        from: len as u64 - 1
                    },
                    bytes_read: 2 * len as u64,
                },
                "len {len}"
            );
            let report = trust(&src, &dst, false);
            assert_ne!(report.strategy, Strategy::Skipped, "{report:?}");
            assert_eq!(fs::read(&dst).unwrap(), new, "len {len}");
            // Another size is never trusted, whatever the time says.
            fs::write(&dst, b"short").unwrap();
            let t = hour_ago();
            set_mtime(&src, t);
            set_mtime(&dst, t);
            let report = trust(&src, &dst, false);
            assert_ne!(report.strategy, Strategy::Skipped, "{report:?}");
            assert_eq!(fs::read(&dst).unwrap(), new, "len {len}");
        }
    }
);
