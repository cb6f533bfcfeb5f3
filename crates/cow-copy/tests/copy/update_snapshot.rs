//! The installer scenario on real btrfs: an installed tree in a subvolume, a
//! snapshot of it, and a staging tree where 90 % of the files are identical.
//! Updating with `Overwrite::IfDifferent` keeps the unchanged files shared with
//! the snapshot; a plain copy of the same staging tree breaks the sharing.

#![cfg(target_os = "linux")]

use std::fs;
use std::path::{Path, PathBuf};

use cow_copy::{CopyOptions, Overwrite, Strategy};
use cow_test_support::{Fs, btrfs, btrfs_du, dir_on, pattern};

const FILES: usize = 200;
const MIB: u64 = 1 << 20;

/// `btrfs filesystem du -s --raw DIR` after a sync: (total, exclusive, set
/// shared).
fn du(dir: &Path) -> (u64, u64, u64) {
    btrfs(&["filesystem", "sync"], &[dir]);
    btrfs_du(dir)
}

/// File `i`'s size: 4 KiB .. 640 KiB plus a ragged tail, about 64 MiB for
/// 200 files; never small enough for btrfs to store inline.
fn size(i: usize) -> usize {
    4096 * (1 + (i * 53) % 157) + (i * 7) % 4096 + 3000
}

/// Every tenth file changed.
fn changed(i: usize) -> bool {
    i % 10 == 3
}

fn name(i: usize) -> PathBuf {
    PathBuf::from(format!("d{}/f{i:03}", i % 8))
}

fn write_tree(root: &Path, variant: impl Fn(usize) -> u64) {
    for i in 0..FILES {
        let p = root.join(name(i));
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, pattern(size(i), variant(i))).unwrap();
    }
}

struct Outcome {
    /// Bytes only the installed tree uses after the update.
    exclusive: u64,
    /// Bytes of the changed files.
    changed_bytes: u64,
    /// Unchanged files sharing 100 % of their bytes with the snapshot.
    unchanged_shared: usize,
    skipped: usize,
}

/// Builds installed (a subvolume) + snapshot + staging under `root`, updates
/// installed from staging with `policy`, removes staging and measures.
fn scenario(root: &Path, policy: Overwrite) -> Outcome {
    let installed = root.join("installed");
    let snap = root.join("snap");
    let staging = root.join("staging");
    fs::create_dir_all(root).unwrap();
    btrfs(&["subvolume", "create"], &[&installed]);
    write_tree(&installed, |i| i as u64);
    btrfs(&["subvolume", "snapshot"], &[&installed, &snap]);
    // Staging: written separately (no shared blocks with anything), 10 %
    // of the files with new content of the same size.
    write_tree(&staging, |i| {
        if changed(i) {
            1000 + i as u64
        } else {
            i as u64
        }
    });
    btrfs(&["filesystem", "sync"], &[root]);

    let mut skipped = 0;
    for i in 0..FILES {
        let report = CopyOptions::new()
            .overwrite(policy)
            .copy(staging.join(name(i)), installed.join(name(i)))
            .unwrap();
        if report.strategy == Strategy::Skipped {
            skipped += 1;
            assert!(!changed(i), "changed file {i} was skipped");
        }
    }
    // Without the staging copies every block the installed tree uses
    // alone is exclusive to it.
    fs::remove_dir_all(&staging).unwrap();

    let mut unchanged_shared = 0;
    let mut changed_bytes = 0;
    for i in 0..FILES {
        let (a, b) = (installed.join(name(i)), snap.join(name(i)));
        assert_eq!(
            fs::read(&a).unwrap(),
            pattern(
                size(i),
                if changed(i) {
                    1000 + i as u64
                } else {
                    i as u64
                }
            )
        );
        if changed(i) {
            changed_bytes += size(i) as u64;
            continue;
        }
        let s = cow_verify::sharing(&a, &b).unwrap();
        if s.ratio == 1.0 && s.shared_bytes == size(i) as u64 {
            unchanged_shared += 1;
        }
    }
    let (_, exclusive, _) = du(&installed);
    btrfs(&["subvolume", "delete"], &[&snap]);
    btrfs(&["subvolume", "delete"], &[&installed]);
    Outcome {
        exclusive,
        changed_bytes,
        unchanged_shared,
        skipped,
    }
}

#[test]
fn update_keeps_snapshot_sharing_plain_copy_breaks_it() {
    let Some(dir) = dir_on(Fs::Btrfs, "update_snapshot::keeps_sharing") else {
        return;
    };
    let total: u64 = (0..FILES).map(|i| size(i) as u64).sum();
    let unchanged = (0..FILES).filter(|&i| !changed(i)).count();
    assert!((60 * MIB..68 * MIB).contains(&total), "{total}");

    let up = scenario(&dir.path().join("update"), Overwrite::IfDifferent);
    eprintln!(
        "IfDifferent: skipped {}/{FILES}, unchanged sharing 100% with the snapshot {}/{unchanged}, exclusive {} bytes, changed {} bytes",
        up.skipped, up.unchanged_shared, up.exclusive, up.changed_bytes
    );
    assert_eq!(up.skipped, unchanged);
    assert_eq!(up.unchanged_shared, unchanged);
    let diff = up.exclusive.abs_diff(up.changed_bytes);
    assert!(
        diff * 20 <= up.changed_bytes,
        "exclusive {} not within 5% of changed {}",
        up.exclusive,
        up.changed_bytes
    );

    let plain = scenario(&dir.path().join("plain"), Overwrite::Replace);
    eprintln!(
        "All: skipped {}, unchanged sharing 100% with the snapshot {}/{unchanged}, exclusive {} bytes of {total}",
        plain.skipped, plain.unchanged_shared, plain.exclusive
    );
    assert_eq!(plain.skipped, 0);
    assert_eq!(
        plain.unchanged_shared, 0,
        "a plain copy rewrites every file"
    );
    assert!(
        plain.exclusive * 10 >= total * 9,
        "plain copy: exclusive {} of {total}",
        plain.exclusive
    );
    assert!(plain.exclusive >= 5 * up.exclusive);
}
