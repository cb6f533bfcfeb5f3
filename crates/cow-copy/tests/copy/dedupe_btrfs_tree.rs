//! `cow_copy::dedupe` on btrfs with the extent maps read from the tree
//! (`BTRFS_IOC_TREE_SEARCH_V2`, root only): it finds what `FIEMAP` finds,
//! a rerun opens only the files it has to read, inline files are never
//! opened, and a file rewritten since it was shared (its mtime put back)
//! is not taken for shared. Run as anyone else, the search is refused and
//! nothing is mapped from the tree.

#![cfg(target_os = "linux")]

use std::fs::{self, File};
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::path::Path;

use cow_copy::dedupe::{DedupeOptions, DedupeReport, Outcome};
use cow_sys::linux::{ficlone, ficlonerange};
use cow_test_support::{fs_test, pattern, set_mtime, write_sparse, write_synced};

use crate::common::quiet;

const KIB: usize = 1 << 10;

fn run(dir: &Path, tree: bool, dry_run: bool) -> DedupeReport {
    DedupeOptions::new()
        .btrfs_tree_search(tree)
        .dry_run(dry_run)
        .run(&[dir], &quiet)
        .unwrap()
}

/// Whether the kernel lets this process search the tree.
fn may_search() -> bool {
    rustix::process::geteuid().is_root()
}

/// Asserts how many candidates of `r` were mapped from the tree: `all` of
/// them as root, none otherwise.
fn assert_mapped(r: &DedupeReport, all: u64) {
    let want = if may_search() { all } else { 0 };
    assert_eq!(r.stats.files_tree_mapped, want, "{:?}", r.stats);
}

fn clone_file(src: &Path, dst: &Path) {
    let s = File::open(src).unwrap();
    let d = File::create(dst).unwrap();
    ficlone(d.as_fd(), s.as_fd()).unwrap();
    d.sync_all().unwrap();
}

/// A tree of every kind of candidate the maps tell apart.
fn mixed_tree(dir: &Path) {
    let big = pattern(300 * KIB, 1);
    for k in 0..3 {
        write_synced(&dir.join(format!("big{k}")), &big);
    }
    // One copy written, one cloned from it (already shared), one written.
    let mid = pattern(40 * KIB, 2);
    write_synced(&dir.join("mid0"), &mid);
    clone_file(&dir.join("mid0"), &dir.join("mid1"));
    write_synced(&dir.join("mid2"), &mid);
    // Holes at the same places, in files written apart.
    let ranges = [
        (64 * KIB as u64, 8 * KIB as u64),
        (512 * KIB as u64, 4 * KIB as u64),
    ];
    write_sparse(&dir.join("sparse0"), 1 << 20, &ranges, 3);
    write_sparse(&dir.join("sparse1"), 1 << 20, &ranges, 3);
    // Inline: three equal, one of their size that differs.
    for k in 0..3 {
        write_synced(&dir.join(format!("tiny{k}")), &pattern(100, 4));
    }
    write_synced(&dir.join("tiny-other"), &pattern(100, 5));
    // One size, two contents.
    write_synced(&dir.join("diff0"), &pattern(64 * KIB, 6));
    write_synced(&dir.join("diff1"), &pattern(64 * KIB, 7));
    // The first half shared, the second written apart.
    let half = pattern(256 * KIB, 8);
    write_synced(&dir.join("half0"), &half);
    write_synced(&dir.join("half1"), &half);
    let (a, b) = (
        File::open(dir.join("half0")).unwrap(),
        File::options().write(true).open(dir.join("half1")).unwrap(),
    );
    ficlonerange(b.as_fd(), a.as_fd(), 0, 128 * KIB as u64, 0).unwrap();
    b.sync_all().unwrap();
}

/// The parts of two reports that must agree whichever way maps are read.
fn assert_same(tree: &DedupeReport, fiemap: &DedupeReport) {
    assert_eq!(
        tree.groups, fiemap.groups,
        "tree {tree:#?}\nFIEMAP {fiemap:#?}"
    );
    assert_eq!(tree.skipped, fiemap.skipped);
    assert_eq!(tree.bytes_newly_shared, fiemap.bytes_newly_shared);
    assert_eq!(tree.bytes_already_shared, fiemap.bytes_already_shared);
    assert_eq!(tree.stats.files_inline, fiemap.stats.files_inline);
    assert_eq!(tree.stats.candidates, fiemap.stats.candidates);
    assert_eq!(fiemap.stats.files_tree_mapped, 0);
}

fs_test!(tree_maps_find_what_fiemap_finds, [btrfs], |dir| {
    mixed_tree(dir);
    let (tree, fiemap) = (run(dir, true, true), run(dir, false, true));
    assert_same(&tree, &fiemap);
    // big, mid, sparse, half; the tiny files are inline, diff0/1 differ.
    assert_eq!(tree.groups.len(), 4, "{tree:#?}");
    assert_eq!(tree.stats.files_inline, 4, "{tree:#?}");
    assert_eq!(tree.bytes_already_shared, 40 * KIB as u64, "{tree:#?}");
    assert_mapped(&tree, tree.stats.candidates);

    let first = run(dir, true, false);
    let paths = |r: &DedupeReport| -> Vec<Vec<std::path::PathBuf>> {
        r.groups
            .iter()
            .map(|g| g.members.iter().map(|m| m.path.clone()).collect())
            .collect()
    };
    assert_eq!(paths(&first), paths(&tree), "{first:#?}");
    assert_eq!(first.bytes_newly_shared, tree.bytes_newly_shared);
    assert_mapped(&first, first.stats.candidates);

    // Everything shared now: both ways see it, and the tree way opens and
    // reads only the two files of one size that differ.
    let (tree, fiemap) = (run(dir, true, true), run(dir, false, true));
    assert_same(&tree, &fiemap);
    assert_eq!(tree.bytes_newly_shared, 0, "{tree:#?}");
    assert_eq!(
        tree.bytes_already_shared,
        (2 * 300 + 2 * 40 + 1024 + 256) as u64 * KIB as u64,
        "{tree:#?}"
    );
    assert_mapped(&tree, tree.stats.candidates);
    if may_search() {
        assert_eq!(tree.stats.files_opened, 2, "{:?}", tree.stats);
        assert_eq!(tree.stats.files_read, 2, "{:?}", tree.stats);
    }
});

fs_test!(a_rerun_opens_only_the_files_it_reads, [btrfs], |dir| {
    // Three groups of one content each and one size group of two contents.
    for (i, len) in [8 * KIB, 20 * KIB, 100 * KIB].into_iter().enumerate() {
        let data = pattern(len, 50 + i as u64);
        for k in 0..3 {
            write_synced(&dir.join(format!("g{i}-{k}")), &data);
        }
    }
    let (x, y) = (pattern(40 * KIB, 60), pattern(40 * KIB, 61));
    for (k, d) in [&x, &x, &y, &y].into_iter().enumerate() {
        write_synced(&dir.join(format!("mixed-{k}")), d);
    }
    let first = run(dir, true, false);
    assert_eq!(first.groups.len(), 5, "{first:#?}");
    assert_mapped(&first, 13);
    let again = run(dir, true, false);
    assert_eq!(again.bytes_newly_shared, 0, "{again:#?}");
    assert_eq!(again.groups.len(), 5, "{again:#?}");
    assert_mapped(&again, 13);
    if may_search() {
        // Only the mixed group's two clusters need a first block each.
        assert_eq!(again.stats.files_opened, 2, "{:?}", again.stats);
        assert_eq!(again.stats.files_read, 2, "{:?}", again.stats);
        assert_eq!(again.stats.bytes_read, 8 * KIB as u64, "{:?}", again.stats);
    }
});

fs_test!(inline_files_are_not_opened, [btrfs], |dir| {
    for i in 0..3 {
        write_synced(&dir.join(format!("tiny{i}")), b"the same few bytes");
    }
    let r = run(dir, true, false);
    assert_eq!(r.stats.files_inline, 3, "{r:#?}");
    assert!(r.groups.is_empty() && r.skipped.is_empty(), "{r:#?}");
    assert_mapped(&r, 3);
    if may_search() {
        assert_eq!(r.stats.files_opened, 0, "{:?}", r.stats);
    }
});

fs_test!(rewritten_since_shared_is_not_shared, [btrfs], |dir| {
    let old = pattern(200 * KIB, 70);
    for k in ["a", "b", "c"] {
        write_synced(&dir.join(k), &old);
    }
    let first = run(dir, true, false);
    assert_eq!(first.groups.len(), 1, "{first:#?}");
    // b gets other bytes of the same size, not flushed, and its mtime put
    // back (as `rsync -t` or `tar` would): only the page cache has them,
    // and the tree still shows b sharing a's extents until a flush.
    let b = dir.join("b");
    let mtime = fs::metadata(&b).unwrap().modified().unwrap();
    let new = pattern(200 * KIB, 71);
    let f = File::options().write(true).open(&b).unwrap();
    f.write_all_at(&new, 0).unwrap();
    drop(f);
    set_mtime(&b, mtime);
    // A dry run first: a real one flushes the filesystem anyway, to
    // measure the space used before.
    for dry_run in [true, false] {
        let again = run(dir, true, dry_run);
        assert_mapped(&again, 3);
        assert_eq!(again.groups.len(), 1, "{again:#?}");
        let g = &again.groups[0];
        assert!(g.members.iter().all(|m| m.path != b), "{again:#?}");
        let already = |m: &cow_copy::dedupe::Member| m.outcome == Outcome::AlreadyShared;
        assert!(g.members.iter().any(already), "{again:#?}");
        assert_eq!(again.bytes_already_shared, old.len() as u64, "{again:#?}");
    }
    assert_eq!(fs::read(&b).unwrap(), new);
    for k in ["a", "c"] {
        assert_eq!(fs::read(dir.join(k)).unwrap(), old);
    }
});

fs_test!(files_dated_before_1970_are_mapped_too, [btrfs], |dir| {
    // btrfs stores the seconds as the kernel's signed value.
    let old = std::time::UNIX_EPOCH - std::time::Duration::from_secs(86_400 * 400);
    for i in 0..2 {
        let p = dir.join(format!("old{i}"));
        write_synced(&p, &pattern(20 * KIB, 80));
        set_mtime(&p, old);
    }
    let r = run(dir, true, true);
    assert_eq!(r.groups.len(), 1, "{r:#?}");
    assert_mapped(&r, 2);
});
