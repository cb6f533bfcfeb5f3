//! `cow_copy::dedupe` on a cold cache: the first first-block read that
//! finds its data out of the page cache (`RWF_NOWAIT`) turns on read-ahead
//! by chunks (`stats.cold_cache`), and the run finds and shares what a
//! run on a warm cache finds, the bytes unchanged. Files are put out of
//! the cache one by one (`POSIX_FADV_DONTNEED` after `fsync`), so the test
//! does not touch the rest of the machine's cache.

#![cfg(target_os = "linux")]

use std::fs::{self, File};
use std::path::Path;

use cow_copy::dedupe::{DedupeOptions, DedupeReport, Outcome};
use cow_test_support::{fs_test, pattern, write_synced};

use crate::common::quiet;

const KIB: usize = 1 << 10;
const GROUPS: usize = 40;

/// The size of group `g`: 8 KiB to 164 KiB, never inline, more than one
/// read-ahead window for the larger ones.
fn len(g: usize) -> usize {
    8 * KIB + g * 4 * KIB
}

/// `GROUPS` size groups of three files: two equal, one differing from the
/// first block on. Returns each file's path and content.
fn tree(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for g in 0..GROUPS {
        let same = pattern(len(g), 1000 + g as u64);
        let other = pattern(len(g), 2000 + g as u64);
        for (k, data) in [&same, &same, &other].into_iter().enumerate() {
            let p = dir.join(format!("d{}/g{g}-{k}", g % 4));
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            write_synced(&p, data);
            files.push((p, data.clone()));
        }
    }
    files
}

/// Puts every file's (clean) pages out of the page cache.
fn evict(files: &[(std::path::PathBuf, Vec<u8>)]) {
    for (p, _) in files {
        let f = File::open(p).unwrap();
        f.sync_all().unwrap();
        rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed).unwrap();
    }
}

fn run(dir: &Path, dry_run: bool) -> DedupeReport {
    DedupeOptions::new()
        .dry_run(dry_run)
        .run(&[dir], &quiet)
        .unwrap()
}

/// One group per size, of the two equal files, the second shared (or to
/// be) into the first.
fn assert_groups(r: &DedupeReport) {
    assert_eq!(r.groups.len(), GROUPS, "{r:#?}");
    for g in &r.groups {
        assert_eq!(g.members.len(), 2, "{g:#?}");
        assert!(
            matches!(
                g.members[1].outcome,
                Outcome::Shared { .. } | Outcome::WouldShare { .. }
            ),
            "{g:#?}"
        );
    }
    assert!(r.skipped.is_empty(), "{:#?}", r.skipped);
}

fs_test!(cold_reads_ahead, [btrfs, xfs], |dir| {
    let files = tree(dir);
    evict(&files);
    let cold = run(dir, false);
    assert!(cold.stats.cold_cache, "{:?}", cold.stats);
    assert_groups(&cold);
    let want: u64 = (0..GROUPS).map(|g| len(g) as u64).sum();
    assert_eq!(cold.bytes_newly_shared, want, "{cold:#?}");
    for (p, data) in &files {
        assert_eq!(&fs::read(p).unwrap(), data, "{} changed", p.display());
    }
});

fs_test!(warm_does_not, [btrfs, xfs], |dir| {
    let files = tree(dir);
    // Every byte read once, so that the run finds them all cached.
    for (p, data) in &files {
        assert_eq!(&fs::read(p).unwrap(), data);
    }
    let warm = run(dir, true);
    assert!(!warm.stats.cold_cache, "{:?}", warm.stats);
    assert_groups(&warm);
});
