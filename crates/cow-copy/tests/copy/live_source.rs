//! Live sources (docs/architecture.md, invariant 10): a source written while its bytes
//! are read is reported, `retry_changed` copies it again until it holds
//! still, and a clone (a point-in-time snapshot) is never flagged. The
//! change is made by a fault-injection hook right before the copy's first
//! data call, so it always lands inside the copy.
#![cfg(target_os = "linux")]

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Duration;

use cow_copy::fault::{self, Action, Fault, Site};
use cow_copy::{CopyOptions, Reflink, Strategy};
use cow_test_support::{fs_test, write_pattern};

const LEN: usize = 1 << 20;

/// Arms a hook that rewrites 4 KiB in the middle of `src` (same length)
/// before the first call of `site`. The sleep lets a coarse timestamp
/// clock tick, so the change shows in mtime/ctime on every kernel.
fn change_at(site: Site, src: &Path) {
    let src = src.to_path_buf();
    fault::arm(vec![Fault {
        site,
        nth: 1,
        action: Action::Hook(Box::new(move || {
            std::thread::sleep(Duration::from_millis(20));
            let f = fs::OpenOptions::new().write(true).open(&src).unwrap();
            f.write_all_at(&[0xA5; 4096], (LEN / 2) as u64).unwrap();
        })),
    }]);
}

fs_test!(
    changed_source_is_reported,
    [btrfs, xfs, ext4, tmpfs],
    |dir| {
        let src = dir.join("src");
        for (atomic, site) in [(false, Site::Read), (true, Site::Read)] {
            let dst = dir.join(format!("dst-{atomic}"));
            write_pattern(&src, LEN, 3);
            change_at(site, &src);
            let r = CopyOptions::new()
                .reflink(Reflink::Never)
                .atomic(atomic)
                .copy(&src, &dst);
            let fired = fault::fired();
            fault::disarm();
            let r = r.unwrap();
            assert_eq!(fired, vec![(site, 1)], "the hook did not run");
            assert_eq!(r.strategy, Strategy::UserCopy);
            assert!(r.source_changed, "atomic={atomic}: not reported: {r:?}");
            assert_eq!(r.retries, 0);
            assert!(!r.size_changed, "the length did not change");
        }
        // An unchanged source says nothing.
        let r = CopyOptions::new()
            .reflink(Reflink::Never)
            .copy(&src, dir.join("quiet"))
            .unwrap();
        assert!(!r.source_changed, "{r:?}");
        assert_eq!(
            fs::read(&src).unwrap(),
            fs::read(dir.join("quiet")).unwrap()
        );
    }
);

fs_test!(
    retry_copies_a_changed_source_again,
    [btrfs, xfs, ext4, tmpfs],
    |dir| {
        let src = dir.join("src");
        for atomic in [false, true] {
            let dst = dir.join(format!("dst-{atomic}"));
            write_pattern(&src, LEN, 4);
            // The hook runs once: the second attempt reads a still source.
            change_at(Site::Read, &src);
            let r = CopyOptions::new()
                .reflink(Reflink::Never)
                .atomic(atomic)
                .retry_changed(3)
                .copy(&src, &dst);
            fault::disarm();
            let r = r.unwrap();
            assert!(!r.source_changed, "atomic={atomic}: {r:?}");
            assert_eq!(r.retries, 1, "atomic={atomic}: {r:?}");
            assert_eq!(r.destination, cow_copy::Destination::Created);
            assert_eq!(fs::read(&src).unwrap(), fs::read(&dst).unwrap());
            let names = cow_test_support::names_in(dir);
            assert!(
                !names.iter().any(|n| n.contains(cow_copy::TEMP_MARKER)),
                "{names:?}"
            );
        }
    }
);

fs_test!(
    a_clone_is_a_snapshot_and_is_not_checked,
    [btrfs, xfs],
    |dir| {
        let src = dir.join("src");
        let dst = dir.join("dst");
        write_pattern(&src, LEN, 5);
        // Changed just before the clone: the clone shares the new bytes.
        change_at(Site::IoctlClone, &src);
        let r = CopyOptions::new().reflink(Reflink::Always).copy(&src, &dst);
        fault::disarm();
        let r = r.unwrap();
        assert_eq!(r.strategy, Strategy::Cloned);
        assert!(!r.source_changed, "{r:?}");
        assert_eq!(fs::read(&src).unwrap(), fs::read(&dst).unwrap());
    }
);
