//! The shortcuts of `cow_copy::dedupe` that read less, on real
//! filesystems: the extent map is first asked for a few extents only, size
//! groups are compared with their files held open, and a rerun over a
//! deduplicated tree opens each candidate once and reads nothing. A file
//! whose first extents are shared with its reference but not the rest is
//! still deduplicated. These are the `FIEMAP` shortcuts: the btrfs tree
//! search is turned off.

#![cfg(target_os = "linux")]

use std::fs::{self, File};
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use cow_copy::dedupe::{DedupeOptions, DedupeReport, Outcome};
use cow_sys::linux::{FiemapFlags, ficlone, ficlonerange, fiemap_all};
use cow_test_support::{fs_test, pattern, write_synced};

use crate::common::quiet;

const KIB: usize = 1 << 10;
/// Chunks of the many-extent file: more than the 8 extents the first
/// `FIEMAP` call asks for.
const CHUNKS: usize = 12;
const CHUNK: usize = 64 * KIB;

/// With `FIEMAP` on every filesystem: on btrfs, as root, the maps would
/// come from the tree search instead (`dedupe_btrfs_tree` tests that).
fn run(dir: &Path) -> DedupeReport {
    DedupeOptions::new()
        .btrfs_tree_search(false)
        .run(&[dir], &quiet)
        .unwrap()
}

fn extents(p: &Path) -> usize {
    let f = File::open(p).unwrap();
    fiemap_all(f.as_fd(), FiemapFlags::SYNC).unwrap().len()
}

/// Writes a file of [`CHUNKS`] chunks at `path` whose extents are
/// separate however the filesystem allocates: a scratch file is written
/// whole, its chunks are cloned into `path` in reverse order (logically
/// adjacent chunks are never physically adjacent), then it is removed.
/// Returns the content.
fn write_scattered(path: &Path, scratch: &Path) -> Vec<u8> {
    let src = pattern(CHUNKS * CHUNK, 40);
    write_synced(scratch, &src);
    let s = File::open(scratch).unwrap();
    let f = File::create(path).unwrap();
    let mut data = Vec::with_capacity(src.len());
    for i in 0..CHUNKS {
        let from = (CHUNKS - 1 - i) * CHUNK;
        ficlonerange(
            f.as_fd(),
            s.as_fd(),
            from as u64,
            CHUNK as u64,
            (i * CHUNK) as u64,
        )
        .unwrap();
        data.extend_from_slice(&src[from..from + CHUNK]);
    }
    f.sync_all().unwrap();
    fs::remove_file(scratch).unwrap();
    data
}

/// A clone of `src` at `dst` with the bytes at `at..at + len` written
/// again, unchanged: equal content, those blocks no longer shared.
fn clone_rewritten(src: &Path, dst: &Path, at: usize, len: usize) {
    let s = File::open(src).unwrap();
    let d = File::create(dst).unwrap();
    ficlone(d.as_fd(), s.as_fd()).unwrap();
    let mut buf = vec![0u8; len];
    s.read_exact_at(&mut buf, at as u64).unwrap();
    d.write_all_at(&buf, at as u64).unwrap();
    d.sync_all().unwrap();
}

fs_test!(partly_shared_files_are_deduped, [btrfs, xfs], |dir| {
    let a = dir.join("a");
    let data = write_scattered(&a, &dir.join("scratch"));
    assert_eq!(fs::read(&a).unwrap(), data);
    let n = extents(&a);
    assert!(n > 8, "the reference must have more than 8 extents: {n}");
    // Its first extents shared, its last not (the map is asked for more).
    let tail = dir.join("tail");
    clone_rewritten(&a, &tail, (CHUNKS - 1) * CHUNK, CHUNK);
    // Its first extent not shared, the rest shared.
    let head = dir.join("head");
    clone_rewritten(&a, &head, 0, CHUNK);
    // Every extent shared but one in the middle.
    let mid = dir.join("mid");
    clone_rewritten(&a, &mid, 9 * CHUNK, CHUNK);
    let others: [&PathBuf; 3] = [&tail, &head, &mid];

    let r = run(dir);
    assert_eq!(r.groups.len(), 1, "{r:#?}");
    let g = &r.groups[0];
    assert_eq!(g.members.len(), 4, "{r:#?}");
    let shared = g
        .members
        .iter()
        .filter(|m| matches!(m.outcome, Outcome::Shared { .. }))
        .count();
    // The reference is one of the four; each of the others had a part of
    // its own and is shared now.
    assert_eq!(shared, 3, "{r:#?}");
    for p in others.iter().map(|p| p.as_path()).chain([a.as_path()]) {
        if p == g.reference() {
            continue;
        }
        let s = cow_verify::sharing(g.reference(), p).unwrap();
        assert_eq!(
            s.ratio,
            1.0,
            "{} vs {}: {s:?}",
            g.reference().display(),
            p.display()
        );
        assert_eq!(fs::read(p).unwrap(), data);
    }
    // Again: the four share one map, nothing is read, each is opened once.
    let again = run(dir);
    assert_eq!(again.bytes_newly_shared, 0, "{again:#?}");
    assert_eq!(again.bytes_already_shared, 3 * data.len() as u64);
    assert_eq!(again.stats.files_read, 0, "{:?}", again.stats);
    assert_eq!(again.stats.files_opened, 4, "{:?}", again.stats);
});

fs_test!(rerun_opens_each_candidate_once, [btrfs, xfs], |dir| {
    // Size groups of one content each, and one with two contents (its
    // first blocks are read again, from the files already open), and a
    // lone size.
    let mut files = Vec::new();
    for (i, len) in [8 * KIB, 20 * KIB, 100 * KIB].into_iter().enumerate() {
        let data = pattern(len, 50 + i as u64);
        for k in 0..3 {
            let p = dir.join(format!("g{i}-{k}"));
            write_synced(&p, &data);
            files.push(p);
        }
    }
    let (x, y) = (pattern(40 * KIB, 60), pattern(40 * KIB, 61));
    for (k, d) in [&x, &x, &y, &y].into_iter().enumerate() {
        write_synced(&dir.join(format!("mixed-{k}")), d);
    }
    write_synced(&dir.join("lone"), &pattern(33 * KIB, 62));
    let first = run(dir);
    assert_eq!(first.groups.len(), 5, "{first:#?}");
    assert_eq!(first.stats.candidates, 13);
    // Compared with one open each, then the members shared and the
    // references opened again: 13 + 8 + 5; and two more for each pair read
    // before the kernel was asked (those reached before any group listed
    // the files open for writing: it depends on the workers' order).
    let early = first.stats.pairs_read_first;
    assert!(early <= 2, "{:?}", first.stats);
    assert_eq!(
        first.stats.files_opened,
        13 + 8 + 5 + 2 * early,
        "{:?}",
        first.stats
    );
    // Each file read once, its first block; the groups of three whole, as
    // every first block has an equal. The mixed group's two pairs are left
    // to the kernel's compare.
    assert_eq!(first.stats.files_read, 13, "{:?}", first.stats);
    assert_eq!(first.stats.files_read_whole, 9, "{:?}", first.stats);
    assert_eq!(first.stats.pairs_kernel_compared, 2, "{:?}", first.stats);
    assert_eq!(first.stats.pairs_differing, 0, "{:?}", first.stats);

    let again = run(dir);
    assert_eq!(again.bytes_newly_shared, 0, "{again:#?}");
    assert_eq!(again.stats.files_opened, 13, "{:?}", again.stats);
    // Only the mixed group's two clusters need a first block each, read
    // from the files opened for their maps.
    assert_eq!(again.stats.files_read, 2, "{:?}", again.stats);
    assert_eq!(again.stats.files_read_whole, 0, "{:?}", again.stats);
    assert_eq!(again.stats.bytes_read, 8 * KIB as u64, "{:?}", again.stats);
});
