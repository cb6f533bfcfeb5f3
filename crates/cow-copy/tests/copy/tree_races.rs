//! Tree copies racing other processes: a thread swaps directories for
//! symlinks while the tree is copied (split from `tree.rs`).

#![cfg(target_os = "linux")]

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cow_copy::tree::TreeOptions;
use cow_test_support::{fs_test, write_pattern};

fn file_list(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    fn rec(root: &Path, p: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        let Ok(rd) = fs::read_dir(p) else { return };
        for e in rd.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                rec(root, &e.path(), out);
            } else if ft.is_file() {
                let Ok(data) = fs::read(e.path()) else {
                    continue;
                };
                out.push((e.path().strip_prefix(root).unwrap().to_path_buf(), data));
            } else {
                out.push((
                    e.path().strip_prefix(root).unwrap().to_path_buf(),
                    b"<other>".to_vec(),
                ));
            }
        }
    }
    rec(root, root, &mut out);
    out.sort();
    out
}

/// A thread swaps directories for symlinks to an outside directory while a
/// large copy runs, on the source side and on the destination side. The
/// outside directory must never change, and the copy must never contain the
/// outside directory's files (that would mean a source symlink was followed).
fn swap_race(dir: &Path, swap_destination: bool) {
    let src = dir.join("src");
    let dst = dir.join("dst");
    let outside = dir.join("outside");
    fs::create_dir_all(&outside).unwrap();
    write_pattern(&outside.join("precious"), 1000, 99);
    fs::create_dir_all(outside.join("sub0")).unwrap();
    let outside_before = file_list(&outside);

    for s in 0..8 {
        let d = src.join(format!("sub{s}"));
        fs::create_dir_all(d.join("inner")).unwrap();
        for i in 0..150 {
            write_pattern(&d.join(format!("f{i}")), 2000, i);
            if i % 10 == 0 {
                write_pattern(&d.join(format!("inner/g{i}")), 500, i);
            }
        }
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swaps = Arc::new(AtomicU64::new(0));
    let side = if swap_destination {
        dst.clone()
    } else {
        src.clone()
    };
    let (stop2, swaps2, outside2) = (stop.clone(), swaps.clone(), outside.clone());
    let swapper = Swapper(
        stop.clone(),
        Some(std::thread::spawn(move || {
            let mut k = 0usize;
            while !stop2.load(Ordering::Relaxed) {
                let name = format!("sub{}", k % 8);
                k += 1;
                let real = side.join(&name);
                let moved = side.join(format!("{name}.moved"));
                for target in [real.clone(), real.join("inner")] {
                    let moved_t = target.with_extension("moved");
                    if fs::rename(&target, &moved_t).is_ok() {
                        let _ = symlink(&outside2, &target);
                        swaps2.fetch_add(1, Ordering::Relaxed);
                        std::thread::yield_now();
                        let _ = fs::remove_file(&target);
                        let _ = fs::rename(&moved_t, &target);
                    }
                }
                let _ = moved;
            }
        })),
    );
    let mut runs = 0;
    while swaps.load(Ordering::Relaxed) < 200 && runs < 20 {
        let _ = fs::remove_dir_all(&dst);
        if swap_destination {
            // Let the swapper find destination directories early.
            fs::create_dir_all(&dst).unwrap();
        }
        let _ = TreeOptions::new().jobs(4).copy(&src, &dst);
        runs += 1;
        assert_eq!(
            file_list(&outside),
            outside_before,
            "outside directory changed (run {runs})"
        );
        if dst.exists() && !swap_destination {
            for (p, _) in file_list(&dst) {
                assert!(
                    !p.ends_with("precious"),
                    "followed a symlink into the outside directory: {}",
                    p.display()
                );
            }
        }
    }
    drop(swapper);
    assert!(swaps.load(Ordering::Relaxed) > 0, "the swapper never ran");
    // The destination is stable now: it must not hold the outside files.
    for (p, _) in file_list(&dst) {
        assert!(
            !p.ends_with("precious"),
            "outside file copied: {}",
            p.display()
        );
    }
    assert_eq!(file_list(&outside), outside_before);
}

/// Stops and joins the swapper thread when dropped, also when the test
/// panics, so the test directory can be removed.
struct Swapper(
    Arc<std::sync::atomic::AtomicBool>,
    Option<std::thread::JoinHandle<()>>,
);

impl Drop for Swapper {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
        if let Some(h) = self.1.take() {
            let _ = h.join();
        }
    }
}

fs_test!(symlink_swap_race_source, [btrfs, xfs, ext4, tmpfs], |dir| {
    swap_race(dir, false);
});

fs_test!(
    symlink_swap_race_destination,
    [btrfs, xfs, ext4, tmpfs],
    |dir| {
        swap_race(dir, true);
    }
);
