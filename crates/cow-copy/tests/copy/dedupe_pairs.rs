//! `cow_copy::dedupe` leaves pairs to the kernel: two files of one size
//! whose first blocks match are not hashed whole, `FIDEDUPERANGE` compares
//! them once, and a pair it finds different is neither a group nor a
//! skip. Also: a candidate replaced by a FIFO during the run is skipped,
//! not waited on.

#![cfg(target_os = "linux")]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use cow_copy::dedupe::{
    DedupeOptions, DedupeReport, DuplicateGroup, Event, Outcome, Phase, SkipReason,
};
use cow_test_support::{fs_test, pattern, write_synced};

use crate::common::quiet;

const KIB: usize = 1 << 10;

fn contents(paths: &[PathBuf]) -> Vec<Vec<u8>> {
    paths.iter().map(|p| fs::read(p).unwrap()).collect()
}

fn group_of<'a>(r: &'a DedupeReport, p: &Path) -> Option<&'a DuplicateGroup> {
    r.groups
        .iter()
        .find(|g| g.members.iter().any(|m| m.path == p))
}

fn shared_bytes(a: &Path, b: &Path) -> u64 {
    cow_verify::sharing(a, b).unwrap().shared_bytes
}

fs_test!(pairs_are_left_to_the_kernel, [btrfs, xfs], |dir| {
    // A pair that is equal; a pair of another size whose first blocks
    // match but whose last bytes differ; a group of three (hashed whole);
    // and a size group too large to hold open (66 files, one pair among
    // them).
    let same = pattern(256 * KIB, 1);
    let mut near = same[..200 * KIB].to_vec();
    *near.last_mut().unwrap() ^= 0xff;
    let p: Vec<PathBuf> = (0..2).map(|i| dir.join(format!("pair-{i}"))).collect();
    let q: Vec<PathBuf> = (0..2).map(|i| dir.join(format!("near-{i}"))).collect();
    let t: Vec<PathBuf> = (0..3).map(|i| dir.join(format!("three-{i}"))).collect();
    for f in &p {
        write_synced(f, &same);
    }
    write_synced(&q[0], &same[..200 * KIB]);
    write_synced(&q[1], &near);
    let three = pattern(64 * KIB, 2);
    for f in &t {
        write_synced(f, &three);
    }
    let big: Vec<PathBuf> = (0..66).map(|i| dir.join(format!("big-{i:02}"))).collect();
    for (i, f) in big.iter().enumerate() {
        // big-65 is a copy of big-00; the others differ in their first
        // block.
        write_synced(f, &pattern(20 * KIB, 100 + (i % 65) as u64));
    }
    let all: Vec<PathBuf> = [&p[..], &q[..], &t[..], &big[..]].concat();
    let before = contents(&all);

    // A dry run hashes the pairs whole: nothing is left to a kernel that
    // will not be asked.
    let dry = DedupeOptions::new()
        .dry_run(true)
        .run(&[dir], &quiet)
        .unwrap();
    assert_eq!(dry.stats.pairs_kernel_compared, 0, "{:?}", dry.stats);
    assert_eq!(dry.groups.len(), 3, "{dry:#?}");
    assert!(group_of(&dry, &q[0]).is_none(), "{dry:#?}");
    assert_eq!(dry.stats.files_read_whole, 2 + 2 + 3 + 2, "{:?}", dry.stats);

    let r = DedupeOptions::new().run(&[dir], &quiet).unwrap();
    assert_eq!(r.stats.candidates, 2 + 2 + 3 + 66, "{:?}", r.stats);
    // Every candidate's first block is read; only the three are read on.
    assert_eq!(r.stats.files_read, 2 + 2 + 3 + 66, "{:?}", r.stats);
    assert_eq!(r.stats.files_read_whole, 3, "{:?}", r.stats);
    assert_eq!(r.stats.pairs_kernel_compared, 3, "{:?}", r.stats);
    assert_eq!(r.stats.pairs_differing, 1, "{:?}", r.stats);
    // The near pair is no group and no skip; the others are groups.
    assert_eq!(r.groups.len(), 3, "{r:#?}");
    assert!(group_of(&r, &q[0]).is_none(), "{r:#?}");
    assert!(r.skipped.iter().all(|s| !q.contains(&s.path)), "{r:#?}");
    for g in [&p[..], &[big[0].clone(), big[65].clone()][..]] {
        let grp = group_of(&r, &g[0]).unwrap();
        assert_eq!(grp.members.len(), 2, "{grp:#?}");
        assert!(
            grp.members
                .iter()
                .any(|m| matches!(m.outcome, Outcome::Shared { .. })),
            "{grp:#?}"
        );
        assert_eq!(
            shared_bytes(&g[0], &g[1]),
            fs::metadata(&g[0]).unwrap().len()
        );
    }
    assert_eq!(
        r.bytes_newly_shared,
        (same.len() + 2 * three.len() + 20 * KIB) as u64,
        "{r:#?}"
    );
    assert_eq!(shared_bytes(&q[0], &q[1]), 0);
    assert_eq!(contents(&all), before);

    // A rerun: the shared pairs are equal by their maps; the near pair is
    // asked again, and again found different.
    let again = DedupeOptions::new().run(&[dir], &quiet).unwrap();
    assert_eq!(again.bytes_newly_shared, 0, "{again:#?}");
    assert_eq!(again.stats.pairs_kernel_compared, 1, "{:?}", again.stats);
    assert_eq!(again.stats.pairs_differing, 1, "{:?}", again.stats);
    // No group needed the files open for writing: the near pair was read
    // here (it differs in its last byte, within the first MiB).
    assert_eq!(again.stats.pairs_read_first, 1, "{:?}", again.stats);
    assert_eq!(again.groups.len(), 3, "{again:#?}");
    assert_eq!(contents(&all), before);
});

fs_test!(
    a_lone_pair_is_read_first_then_left_to_the_kernel,
    [btrfs, xfs],
    |dir| {
        // Four trees of one pair each, so no group before the pair has
        // needed the list of files open for writing: equal; different past
        // the first MiB (read first, equal there, so the kernel decides);
        // different within it, late or near its start (never reaches the
        // kernel).
        let big = pattern(2 << 20, 7);
        let mut late = big.clone();
        *late.last_mut().unwrap() ^= 1;
        let mut early = big.clone();
        early[600 * KIB] ^= 1;
        let mut near = big.clone();
        near[10 * KIB] ^= 1;
        // Each: the other file, whether it is equal, and the bytes the first
        // read takes (both files, as `identical::compare_content` reads
        // them: one block, then reads four times larger each time, up to
        // 1 MiB: 4, 16, 64, 256, then 684 KiB to the end of the first MiB;
        // a difference at 10 KiB stops the second read, at 20 KiB).
        let cases: [(&str, &[u8], bool, usize); 4] = [
            ("equal", &big, true, 2 << 20),
            ("late", &late, false, 2 << 20),
            ("early", &early, false, 2 << 20),
            ("near", &near, false, 2 * 20 * KIB),
        ];
        for (name, other, equal, first) in cases {
            let sub = dir.join(name);
            fs::create_dir(&sub).unwrap();
            let (a, b) = (sub.join("a"), sub.join("b"));
            write_synced(&a, &big);
            write_synced(&b, other);
            let r = DedupeOptions::new().run(&[&sub], &quiet).unwrap();
            let s = &r.stats;
            assert_eq!(s.pairs_kernel_compared, 1, "{name}: {s:?}");
            assert_eq!(s.pairs_read_first, 1, "{name}: {s:?}");
            assert_eq!(s.pairs_differing, u64::from(!equal), "{name}: {s:?}");
            assert_eq!(r.groups.len(), usize::from(equal), "{name}: {r:#?}");
            assert!(r.skipped.is_empty(), "{name}: {r:#?}");
            // Their first blocks, then the read here (the kernel reads the
            // rest, when it is asked).
            assert_eq!(s.bytes_read, (2 * 4096 + first) as u64, "{name}: {s:?}");
            let expect = if equal { big.len() as u64 } else { 0 };
            assert_eq!(shared_bytes(&a, &b), expect, "{name}");
            assert_eq!(r.bytes_newly_shared, expect, "{name}: {r:#?}");
            assert_eq!(fs::read(&a).unwrap(), big, "{name}");
            assert_eq!(fs::read(&b).unwrap(), other, "{name}");
        }
    }
);

fs_test!(
    fifo_put_in_place_is_skipped_not_waited_on,
    [btrfs, xfs],
    |dir| {
        let data = pattern(64 * KIB, 3);
        let paths: Vec<PathBuf> = (0..3).map(|i| dir.join(format!("f{i}"))).collect();
        for p in &paths {
            write_synced(p, &data);
        }
        let fifo = paths[2].clone();
        let root = dir.to_path_buf();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let observer = |e: &Event<'_>| {
                if let Event::Started {
                    phase: Phase::Compare,
                    ..
                } = e
                {
                    fs::remove_file(&fifo).unwrap();
                    let ok = Command::new("mkfifo").arg(&fifo).status().unwrap();
                    assert!(ok.success());
                }
            };
            let _ = tx.send(DedupeOptions::new().run(&[&root], &observer));
        });
        // No writer ever opens the FIFO: an open that waited would never
        // return. (A panic in the observer drops the sender: reported
        // too.)
        let r = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the run did not return: it waited on the FIFO, or the observer failed")
            .unwrap();
        let s = r
            .skipped
            .iter()
            .find(|s| s.path == paths[2])
            .expect("FIFO not skipped");
        assert_eq!(s.reason, SkipReason::Changed, "{r:#?}");
        assert_eq!(r.groups.len(), 1, "{r:#?}");
        assert_eq!(shared_bytes(&paths[0], &paths[1]), data.len() as u64);
        assert_eq!(fs::read(&paths[0]).unwrap(), data);
        assert_eq!(fs::read(&paths[1]).unwrap(), data);
    }
);
