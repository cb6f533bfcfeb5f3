//! `cow_copy::dedupe` on real filesystems: the groups found are exactly the
//! duplicates that exist, no byte changes, files rewritten during the run
//! are left alone, a rerun is a no-op, mtimes stay, and filesystems without
//! dedupe are reported once.

#![cfg(target_os = "linux")]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use cow_copy::dedupe::{DedupeOptions, DedupeReport, Event, Outcome, Phase, SkipReason};
use cow_test_support::{fs_test, pattern, set_mtime, write_sparse, write_synced};

use crate::common::quiet;

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;

fn run(roots: &[&Path]) -> DedupeReport {
    DedupeOptions::new().run(roots, &quiet).unwrap()
}

/// Every file under `dir` with its content and mtime, and every directory
/// with its mtime.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Option<Vec<u8>>, SystemTime)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        out.insert(
            d.clone(),
            (None, fs::metadata(&d).unwrap().modified().unwrap()),
        );
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p);
            } else if m.is_file() {
                out.insert(
                    p.clone(),
                    (Some(fs::read(&p).unwrap()), m.modified().unwrap()),
                );
            }
        }
    }
    out
}

/// The groups as sets of paths.
fn groups(r: &DedupeReport) -> BTreeSet<BTreeSet<PathBuf>> {
    r.groups
        .iter()
        .map(|g| g.members.iter().map(|m| m.path.clone()).collect())
        .collect()
}

fn set(paths: &[&PathBuf]) -> BTreeSet<PathBuf> {
    paths.iter().map(|p| (*p).clone()).collect()
}

fn outcome<'a>(r: &'a DedupeReport, p: &Path) -> &'a Outcome {
    r.groups
        .iter()
        .flat_map(|g| &g.members)
        .find(|m| m.path == p)
        .map(|m| &m.outcome)
        .unwrap_or_else(|| panic!("{} is in no group: {r:#?}", p.display()))
}

fs_test!(finds_exactly_the_duplicates, [btrfs, xfs], |dir| {
    let (a, b) = (dir.join("a"), dir.join("b/deep"));
    fs::create_dir_all(&a).unwrap();
    fs::create_dir_all(&b).unwrap();
    let big = pattern(MIB + 5000, 1);
    let (a1, a2, a3) = (a.join("big"), b.join("big"), a.join("big.copy"));
    for p in [&a1, &a2, &a3] {
        write_synced(p, &big);
    }
    // Same size as the big ones, different last byte.
    let mut other = big.clone();
    *other.last_mut().unwrap() ^= 1;
    let d1 = b.join("almost");
    write_synced(&d1, &other);
    // Same first block, different later.
    let mut e = pattern(64 * KIB + 1, 2);
    let (e1, e2) = (a.join("e1"), b.join("e2"));
    write_synced(&e1, &e);
    e[40 * KIB] ^= 0xff;
    write_synced(&e2, &e);
    // Small duplicates (one block).
    let small = pattern(3000, 3);
    let (s1, s2) = (a.join("small"), b.join("small"));
    write_synced(&s1, &small);
    write_synced(&s2, &small);
    // A leading hole equals written zeros: holes do not hide a match.
    let hole = write_sparse(
        &a.join("hole"),
        MIB as u64,
        &[(960 * KIB as u64, 64 * KIB as u64)],
        4,
    );
    let dense = b.join("dense");
    write_synced(&dense, &hole);
    // A trailing hole does not fake one: same size, same start, data vs zeros.
    let tail = write_sparse(
        &a.join("tail"),
        512 * KIB as u64,
        &[(0, 64 * KIB as u64)],
        5,
    );
    let mut full = tail.clone();
    full[100 * KIB..].copy_from_slice(&pattern(412 * KIB, 6));
    write_synced(&b.join("tailfull"), &full);
    // A hard link and an empty pair.
    fs::hard_link(&a1, a.join("big.link")).unwrap();
    write_synced(&a.join("empty1"), b"");
    write_synced(&b.join("empty2"), b"");

    let before = snapshot(dir);
    let r = run(&[&a, &dir.join("b")]);
    // Whichever name of the hard-linked inode came first stays in.
    let link = r
        .skipped
        .iter()
        .find(|s| s.reason == SkipReason::HardLink)
        .map(|s| s.path.clone())
        .unwrap_or_else(|| panic!("no hard link reported: {r:#?}"));
    let kept = if link == a1 {
        a.join("big.link")
    } else {
        a1.clone()
    };
    assert!(link == a1 || link == a.join("big.link"), "{link:?}");
    let want: BTreeSet<BTreeSet<PathBuf>> = [
        set(&[&kept, &a2, &a3]),
        set(&[&s1, &s2]),
        set(&[&a.join("hole"), &dense]),
    ]
    .into_iter()
    .collect();
    assert_eq!(groups(&r), want, "{r:#?}");
    let expect = 2 * big.len() + small.len() + hole.len();
    assert_eq!(r.bytes_newly_shared, expect as u64, "{r:#?}");
    assert_eq!(r.bytes_already_shared, 0);
    for g in &r.groups {
        for m in &g.members[1..] {
            assert!(matches!(m.outcome, Outcome::Shared { .. }), "{m:?}");
            let s = cow_verify::sharing(g.reference(), &m.path).unwrap();
            assert_eq!(
                s.ratio,
                1.0,
                "{} vs {}: {s:?}",
                g.reference().display(),
                m.path.display()
            );
        }
    }
    assert!(r.space_freed.is_some());
    // No byte and no mtime (files or directories) changed.
    assert_eq!(snapshot(dir), before);

    // Again: nothing to share, nothing read but a first block per size
    // group that holds different content.
    let again = run(&[&a, &dir.join("b")]);
    assert_eq!(groups(&again), want);
    assert_eq!(again.bytes_newly_shared, 0, "{again:#?}");
    assert_eq!(again.bytes_already_shared, expect as u64);
    for g in &again.groups {
        for m in &g.members[1..] {
            assert_eq!(m.outcome, Outcome::AlreadyShared, "{m:?}");
        }
    }
    // Read again: only the files of size groups that hold different
    // content. The near-duplicate of the big ones is read whole with one
    // member of the shared cluster (four files, first blocks equal); the
    // two near pairs only to their first block, as the kernel's compare
    // decides a pair. No group needs the files open for writing, so the
    // two pairs are read here first (`identical::compare_content`: one
    // block, equal in both pairs, then reads four times larger each time:
    // the 64 KiB pair whole, the 512 KiB pair to 340 KiB, past its
    // difference at 100 KiB).
    assert_eq!(again.stats.files_read, 6, "{:?}", again.stats);
    assert_eq!(again.stats.pairs_read_first, 2, "{:?}", again.stats);
    assert_eq!(
        again.stats.bytes_read,
        (2 * big.len() + 4 * 4096 + 2 * (64 * KIB + 1) + 2 * 340 * KIB) as u64,
        "{:?}",
        again.stats
    );
    assert_eq!(again.stats.pairs_kernel_compared, 2, "{:?}", again.stats);
    assert_eq!(again.stats.pairs_differing, 2, "{:?}", again.stats);
    // Where every duplicate already shares its blocks, nothing is read.
    let only_a = run(&[&a]);
    assert_eq!(only_a.stats.bytes_read, 0, "{only_a:#?}");
    assert_eq!(only_a.bytes_newly_shared, 0);
    assert_eq!(only_a.bytes_already_shared, big.len() as u64);
    assert_eq!(snapshot(dir), before);
});

fs_test!(
    rewritten_during_the_run_is_not_deduped,
    [btrfs, xfs],
    |dir| {
        let data = pattern(256 * KIB, 7);
        let paths: Vec<PathBuf> = (0..4).map(|i| dir.join(format!("f{i}"))).collect();
        for p in &paths {
            write_synced(p, &data);
        }
        // The reference is the lowest inode; rewrite two of the others.
        let mut by_ino = paths.clone();
        by_ino.sort_by_key(|p| fs::metadata(p).unwrap().ino());
        let (reference, quiet_rewrite, rewrite, untouched) =
            (&by_ino[0], &by_ino[1], &by_ino[2], &by_ino[3]);
        let new = pattern(256 * KIB, 8);
        let done = Mutex::new(false);
        let observer = |e: &Event<'_>| {
            if let Event::Started {
                phase: Phase::Share,
                ..
            } = e
            {
                *done.lock().unwrap() = true;
                // Rewritten with the old mtime put back: only the kernel's
                // compare can tell.
                let t = fs::metadata(quiet_rewrite).unwrap().modified().unwrap();
                write_synced(quiet_rewrite, &new);
                set_mtime(quiet_rewrite, t);
                write_synced(rewrite, &new);
            }
        };
        let r = DedupeOptions::new().run(&[dir], &observer).unwrap();
        assert!(*done.lock().unwrap());
        assert_eq!(r.groups.len(), 1, "{r:#?}");
        assert_eq!(r.groups[0].reference(), reference.as_path());
        assert_eq!(
            outcome(&r, quiet_rewrite),
            &Outcome::Skipped {
                reason: SkipReason::Differs
            }
        );
        assert_eq!(
            outcome(&r, rewrite),
            &Outcome::Skipped {
                reason: SkipReason::Changed
            }
        );
        assert!(matches!(outcome(&r, untouched), Outcome::Shared { .. }));
        assert_eq!(r.bytes_newly_shared, data.len() as u64);
        for p in [quiet_rewrite, rewrite] {
            assert_eq!(fs::read(p).unwrap(), new);
            assert_eq!(cow_verify::sharing(reference, p).unwrap().shared_bytes, 0);
        }
        assert_eq!(fs::read(reference).unwrap(), data);
        assert_eq!(fs::read(untouched).unwrap(), data);
    }
);

fs_test!(leaves_protected_files_alone, [btrfs, xfs], |dir| {
    let data = pattern(128 * KIB, 9);
    let mut paths: Vec<PathBuf> = (0..6).map(|i| dir.join(format!("f{i}"))).collect();
    for p in &paths {
        write_synced(p, &data);
    }
    // The reference is the lowest inode: give the roles in inode order.
    paths.sort_by_key(|p| fs::metadata(p).unwrap().ino());
    let [_, plain, readonly, immutable, appendonly, writing] = &paths[..] else {
        unreachable!()
    };
    fs::set_permissions(readonly, fs::Permissions::from_mode(0o444)).unwrap();
    let chattr = |flag: &str, p: &Path| {
        let st = std::process::Command::new("chattr")
            .arg(flag)
            .arg(p)
            .status()
            .unwrap();
        assert!(st.success(), "chattr {flag} {}", p.display());
    };
    chattr("+i", immutable);
    chattr("+a", appendonly);
    let writer = fs::OpenOptions::new().append(true).open(writing).unwrap();
    let r = run(&[dir]);
    drop(writer);
    chattr("-i", immutable);
    chattr("-a", appendonly);
    let expect = [
        (readonly, SkipReason::ReadOnly),
        (immutable, SkipReason::Immutable),
        (appendonly, SkipReason::AppendOnly),
        (writing, SkipReason::OpenForWriting),
    ];
    for (p, reason) in expect {
        assert_eq!(
            outcome(&r, p),
            &Outcome::Skipped {
                reason: reason.clone()
            },
            "{r:#?}"
        );
        assert!(r.skipped.iter().any(|s| &s.path == p && s.reason == reason));
        assert_eq!(fs::read(p).unwrap(), data);
    }
    assert!(
        matches!(outcome(&r, plain), Outcome::Shared { .. }),
        "{r:#?}"
    );
});

fs_test!(dry_run_and_min_size_change_nothing, [btrfs, xfs], |dir| {
    let big = pattern(200 * KIB, 10);
    let small = pattern(8 * KIB, 11);
    for i in 0..3 {
        write_synced(&dir.join(format!("big{i}")), &big);
        write_synced(&dir.join(format!("small{i}")), &small);
    }
    let r = DedupeOptions::new()
        .dry_run(true)
        .min_size(100 * KIB as u64)
        .run(&[dir], &quiet)
        .unwrap();
    assert!(r.dry_run);
    assert_eq!(r.groups.len(), 1, "{r:#?}");
    assert_eq!(r.groups[0].size, big.len() as u64);
    assert_eq!(r.bytes_newly_shared, 2 * big.len() as u64);
    assert_eq!(r.space_freed, None);
    for m in &r.groups[0].members[1..] {
        assert!(matches!(m.outcome, Outcome::WouldShare { .. }), "{m:?}");
        let s = cow_verify::sharing(r.groups[0].reference(), &m.path).unwrap();
        assert_eq!(s.shared_bytes, 0, "dry run shared blocks: {s:?}");
    }
});

fs_test!(cannot_dedupe_is_said_once, [ext4, tmpfs], |dir| {
    let mut want = BTreeMap::new();
    for i in 0..5 {
        let data = pattern(16 * KIB, 20 + i);
        for side in ["x", "y"] {
            let p = dir.join(format!("{side}{i}"));
            write_synced(&p, &data);
            want.insert(p, data.clone());
        }
    }
    let r = run(&[dir]);
    assert_eq!(r.cannot_dedupe.len(), 1, "{r:#?}");
    assert_eq!(r.cannot_dedupe[0].files, 10);
    assert!(r.groups.is_empty(), "{r:#?}");
    assert!(r.skipped.is_empty(), "{r:#?}");
    assert_eq!(r.bytes_newly_shared, 0);
    assert_eq!(
        r.stats.bytes_read, 0,
        "nothing is read where nothing can be shared"
    );
    for (p, data) in want {
        assert_eq!(fs::read(p).unwrap(), data);
    }
});

fs_test!(dirty_data_is_seen_without_a_flush, [btrfs, xfs], |dir| {
    // Written and not flushed: the extent maps show delayed allocations,
    // so they are asked again after a flush, and the files are shared.
    let data = pattern(192 * KIB, 9);
    let paths: Vec<PathBuf> = (0..3).map(|i| dir.join(format!("d{i}"))).collect();
    for p in &paths {
        fs::write(p, &data).unwrap();
    }
    let r = run(&[dir]);
    assert_eq!(r.bytes_newly_shared, 2 * data.len() as u64, "{r:#?}");
    // One member rewritten in place, not flushed, its mtime put back: its
    // blocks still look shared until written back, and only a map that
    // sees the pending write tells the bytes changed.
    let mut by_ino = paths.clone();
    by_ino.sort_by_key(|p| fs::metadata(p).unwrap().ino());
    let changed = &by_ino[2];
    let t = fs::metadata(changed).unwrap().modified().unwrap();
    {
        use std::os::unix::fs::FileExt;
        let f = fs::OpenOptions::new().write(true).open(changed).unwrap();
        f.write_all_at(&pattern(4 * KIB, 10), 64 * KIB as u64)
            .unwrap();
    }
    set_mtime(changed, t);
    let again = run(&[dir]);
    assert_eq!(again.bytes_already_shared, data.len() as u64, "{again:#?}");
    assert_eq!(again.bytes_newly_shared, 0, "{again:#?}");
    assert_eq!(
        groups(&again),
        [set(&[&by_ino[0], &by_ino[1]])].into_iter().collect(),
        "{again:#?}"
    );
    assert_eq!(fs::read(&by_ino[0]).unwrap(), data);
    assert_ne!(fs::read(changed).unwrap(), data);
});

fs_test!(inline_files_are_counted_not_listed, [btrfs], |dir| {
    // btrfs keeps files this small in its metadata: nothing to share.
    for i in 0..3 {
        write_synced(&dir.join(format!("tiny{i}")), b"the same few bytes");
    }
    let r = run(&[dir]);
    assert_eq!(r.stats.files_inline, 3, "{r:#?}");
    assert!(r.groups.is_empty(), "{r:#?}");
    assert!(r.skipped.is_empty(), "{r:#?}");
    assert_eq!(r.stats.bytes_read, 0);
});

fs_test!(progress_adds_up_to_each_phase_total, [btrfs, xfs], |dir| {
    // Three groups (of 3, 2 and 2 files) and two files alone; no errors.
    for (name, seed, n) in [
        ("a", 1, 3),
        ("b", 2, 2),
        ("c", 3, 2),
        ("d", 4, 1),
        ("e", 5, 1),
    ] {
        for i in 0..n {
            write_synced(&dir.join(format!("{name}{i}")), &pattern(40 * KIB, seed));
        }
    }
    let seen: Mutex<BTreeMap<String, (u64, u64)>> = Mutex::new(BTreeMap::new());
    let observer = |e: &Event<'_>| {
        let mut seen = seen.lock().unwrap();
        match e {
            Event::Started { phase, total } => {
                seen.entry(format!("{phase:?}")).or_default().0 = *total;
            }
            Event::Progress { phase, files, .. } => {
                seen.entry(format!("{phase:?}")).or_default().1 += files;
            }
            _ => {}
        }
    };
    let r = DedupeOptions::new().run(&[dir], &observer).unwrap();
    assert_eq!(r.groups.len(), 3, "{r:#?}");
    let seen = seen.into_inner().unwrap();
    // Candidates: all 9 files (they have one size).
    assert_eq!(seen["Compare"], (9, 9), "{seen:?}");
    // Members other than the references: 2 + 1 + 1.
    assert_eq!(seen["Share"], (4, 4), "{seen:?}");
});
