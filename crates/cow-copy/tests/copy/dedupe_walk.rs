//! The walk of `cow_copy::dedupe` reads directories without updating their
//! access times (a first run over a fresh tree would otherwise write every
//! directory's inode back), and opens each below a root relative to its
//! parent without following a symlink put in its place.

#![cfg(target_os = "linux")]

use std::fs::{self, File, FileTimes};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use cow_copy::dedupe::{DedupeOptions, Event, Phase, SkipReason};
use cow_test_support::{fs_test, pattern, write_synced};

use crate::common::quiet;

/// A day-old access time: `relatime` updates it on the next read.
fn age_atime(dir: &Path) {
    let old = SystemTime::now() - Duration::from_secs(3 * 86_400);
    File::open(dir)
        .and_then(|f| f.set_times(FileTimes::new().set_accessed(old)))
        .unwrap_or_else(|e| panic!("cannot set the atime of {}: {e}", dir.display()));
}

fn atime(p: &Path) -> (i64, i64) {
    let m = fs::metadata(p).unwrap();
    (m.atime(), m.atime_nsec())
}

fn tree(root: &Path) -> Vec<std::path::PathBuf> {
    let sub = root.join("sub");
    fs::create_dir_all(&sub).unwrap();
    let data = pattern(20_000, 7);
    write_synced(&root.join("a"), &data);
    write_synced(&sub.join("b"), &data);
    let dirs = vec![root.to_path_buf(), sub];
    for d in &dirs {
        age_atime(d);
    }
    dirs
}

fs_test!(
    listing_leaves_directory_atimes_alone,
    [btrfs, xfs, ext4],
    |dir| {
        // The control: on this mount a plain listing does update an old
        // access time, so the check below can fail.
        let control = dir.join("control");
        fs::create_dir(&control).unwrap();
        age_atime(&control);
        let before = atime(&control);
        assert_eq!(fs::read_dir(&control).unwrap().count(), 0);
        assert_ne!(atime(&control), before, "this mount does not update atimes");

        for dry_run in [true, false] {
            let root = dir.join(format!("t-{dry_run}"));
            let dirs = tree(&root);
            let before: Vec<_> = dirs.iter().map(|d| atime(d)).collect();
            let r = DedupeOptions::new()
                .dry_run(dry_run)
                .run(&[&root], &quiet)
                .unwrap();
            assert_eq!(r.stats.files_scanned, 2, "dry run {dry_run}");
            let after: Vec<_> = dirs.iter().map(|d| atime(d)).collect();
            assert_eq!(
                after, before,
                "dry run {dry_run}: a directory's atime changed"
            );
        }
    }
);

fs_test!(
    a_symlink_put_in_a_directory_s_place_is_not_followed,
    [btrfs, xfs],
    |dir| {
        let data = pattern(64 * 1024, 9);
        let root = dir.join("tree");
        fs::create_dir_all(root.join("a")).unwrap();
        write_synced(&root.join("k"), &data);
        write_synced(&root.join("a/x"), &data);
        // Outside the tree: a file equal to the tree's.
        let outside = dir.join("outside");
        fs::create_dir(&outside).unwrap();
        write_synced(&outside.join("y"), &data);
        let swapped = std::sync::Mutex::new(false);
        let observer = |e: &Event<'_>| {
            // The root is listed (and "a" found as a directory): before "a"
            // is listed, it becomes a symlink to the outside.
            let mut swapped = swapped.lock().unwrap();
            if matches!(
                e,
                Event::Progress {
                    phase: Phase::Scan,
                    ..
                }
            ) && !*swapped
            {
                *swapped = true;
                fs::rename(root.join("a"), dir.join("a-moved")).unwrap();
                std::os::unix::fs::symlink(&outside, root.join("a")).unwrap();
            }
        };
        let r = DedupeOptions::new().run(&[&root], &observer).unwrap();
        assert!(*swapped.lock().unwrap());
        let s = r
            .skipped
            .iter()
            .find(|s| s.path == root.join("a"))
            .unwrap_or_else(|| panic!("the swapped directory is not reported: {r:#?}"));
        assert!(
            matches!(&s.reason, SkipReason::Error(m) if m.contains("cannot read directory")),
            "{s:?}"
        );
        // Nothing outside was found, or touched.
        assert!(r.groups.is_empty(), "{r:#?}");
        assert_eq!(r.stats.files_scanned, 1, "{r:#?}");
        let y = cow_verify::sharing(&root.join("k"), &outside.join("y")).unwrap();
        assert_eq!(y.shared_bytes, 0);
        assert_eq!(fs::read(outside.join("y")).unwrap(), data);
    }
);
