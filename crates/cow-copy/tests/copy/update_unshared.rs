//! The original proposal's "bail if the target is not shared"
//! (docs/updates.md, "A destination that shares nothing"): with the
//! source's times kept and cloning allowed, a same-size destination that
//! shares no block is cloned over instead of compared; one that shares
//! blocks, or a copy that would not clone or keep times, is compared as
//! before. Real filesystems only.

#![cfg(target_os = "linux")]

use std::fs::{self, File};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use cow_copy::identical::{self, Decision, ProceedReason};
use cow_copy::{CopyOptions, Overwrite, Preserve, Reflink, Strategy};
use cow_test_support::{Fs, fs_test, pattern, set_mtime, write_synced};

const LEN: usize = 300_000;

/// The archive-mode update under test.
fn archive(policy: Overwrite) -> CopyOptions {
    CopyOptions::new()
        .overwrite(policy)
        .preserve(Preserve::all())
}

/// Source and an independently written (unshared) destination with the
/// same bytes; the destination an hour older.
fn same_bytes(dir: &Path, seed: u64) -> (std::path::PathBuf, std::path::PathBuf) {
    let (src, dst) = (dir.join("src"), dir.join("dst"));
    let data = pattern(LEN, seed);
    write_synced(&dst, &data);
    write_synced(&src, &data);
    set_mtime(&dst, SystemTime::now() - Duration::from_secs(3600));
    (src, dst)
}

/// Updates `dst` from `src` with `opts` and checks that it was compared and
/// kept.
fn kept(opts: CopyOptions, src: &Path, dst: &Path) -> cow_copy::CopyReport {
    let report = opts.copy(src, dst).unwrap();
    assert_eq!(report.strategy, Strategy::Skipped, "{report:?}");
    report
}

fn reclone_reason(report: &cow_copy::CopyReport) -> bool {
    let want = ProceedReason::NothingShared.to_string();
    report.fallbacks.iter().any(|f| f.reason == want)
}

fs_test!(
    unshared_destination_is_cloned_over_not_compared,
    [btrfs, xfs],
    |dir| {
        for (policy, atomic) in [
            (Overwrite::IfDifferent, false),
            (Overwrite::IfDifferent, true),
            (Overwrite::IfDifferentTrustMtime, false),
        ] {
            let (src, dst) = same_bytes(dir, 7);
            let ino = fs::metadata(&dst).unwrap().ino();
            let before = cow_verify::sharing(&src, &dst).unwrap();
            assert_eq!(before.shared_bytes, 0, "independent copies");

            let report = archive(policy).atomic(atomic).copy(&src, &dst).unwrap();
            assert!(
                report.strategy == Strategy::Cloned,
                "{policy:?} atomic={atomic}: {report:?}"
            );
            assert!(reclone_reason(&report), "the report says why: {report:?}");
            assert_eq!(report.bytes_copied, 0, "{report:?}");
            // Nothing read, nothing written: the destination now shares
            // every block with the source, holds its bytes and times.
            assert!(cow_verify::is_clone(&src, &dst).unwrap());
            assert_eq!(fs::read(&dst).unwrap(), pattern(LEN, 7));
            let (s, d) = (fs::metadata(&src).unwrap(), fs::metadata(&dst).unwrap());
            assert_eq!(d.modified().unwrap(), s.modified().unwrap());
            if !atomic {
                assert_eq!(d.ino(), ino, "cloned in place: same inode");
            }
            fs::remove_file(&src).unwrap();
            fs::remove_file(&dst).unwrap();
        }
    }
);

fs_test!(
    unshared_but_different_destination_is_cloned_over,
    [btrfs, xfs],
    |dir| {
        let (src, dst) = (dir.join("src"), dir.join("dst"));
        write_synced(&dst, &pattern(LEN, 1));
        write_synced(&src, &pattern(LEN, 2));
        let report = archive(Overwrite::IfDifferent).copy(&src, &dst).unwrap();
        assert!(reclone_reason(&report), "{report:?}");
        assert!(cow_verify::is_clone(&src, &dst).unwrap());
        assert_eq!(fs::read(&dst).unwrap(), pattern(LEN, 2));
    }
);

fs_test!(
    shared_destination_is_still_compared_and_kept,
    [btrfs, xfs],
    |dir| {
        let (src, dst) = same_bytes(dir, 3);
        // A twin (as a snapshot would be): now every block of dst is shared.
        let twin = dir.join("twin");
        CopyOptions::new()
            .reflink(Reflink::Always)
            .copy(&dst, &twin)
            .unwrap();
        let mtime = fs::metadata(&dst).unwrap().modified().unwrap();
        let plain = CopyOptions::new().overwrite(Overwrite::IfDifferent);
        kept(plain, &src, &dst);
        let report = kept(archive(Overwrite::IfDifferent), &src, &dst);
        assert!(!reclone_reason(&report));
        // Its sharing with the twin survives; archive mode set its times.
        assert!(cow_verify::is_clone(&dst, &twin).unwrap());
        assert_ne!(fs::metadata(&dst).unwrap().modified().unwrap(), mtime);
    }
);

fs_test!(
    without_kept_times_or_clones_the_destination_is_compared,
    [btrfs, xfs, ext4, tmpfs],
    |dir, fs| {
        // Without the source's times a re-clone would give an identical
        // file a new mtime: it is compared and left alone.
        let (src, dst) = same_bytes(dir, 5);
        let mtime = fs::metadata(&dst).unwrap().modified().unwrap();
        kept(
            CopyOptions::new().overwrite(Overwrite::IfDifferent),
            &src,
            &dst,
        );
        assert_eq!(fs::metadata(&dst).unwrap().modified().unwrap(), mtime);

        // Cloning not allowed: compared.
        let never = archive(Overwrite::IfDifferent).reflink(Reflink::Never);
        kept(never, &src, &dst);

        // Where nothing can clone (ext4, tmpfs), archive mode compares too.
        if !fs.reflinks() {
            kept(archive(Overwrite::IfDifferent), &src, &dst);
        }

        // Dedupe keeps the destination's blocks: never re-cloned.
        let report = archive(Overwrite::IfDifferentDedupe)
            .copy(&src, &dst)
            .unwrap();
        assert!(report.strategy.kept_destination(), "{report:?}");
    }
);

fs_test!(
    decide_update_names_the_reason,
    [btrfs, xfs, ext4],
    |dir, fs| {
        let (src, dst) = same_bytes(dir, 9);
        let (s, d) = (File::open(&src).unwrap(), File::open(&dst).unwrap());
        let (sm, dm) = (s.metadata().unwrap(), d.metadata().unwrap());
        let with =
            identical::decide_update(Overwrite::IfDifferent, true, &s, &sm, &d, &dm).unwrap();
        let without =
            identical::decide_update(Overwrite::IfDifferent, false, &s, &sm, &d, &dm).unwrap();
        assert!(
            matches!(without, Decision::Skip { .. }),
            "{fs:?}: {without:?}"
        );
        if fs == Fs::Btrfs || fs == Fs::Xfs {
            assert_eq!(
                with,
                Decision::Proceed {
                    reason: ProceedReason::NothingShared,
                    bytes_read: 0
                }
            );
        } else {
            assert!(matches!(with, Decision::Skip { .. }), "{fs:?}: {with:?}");
        }
    }
);
