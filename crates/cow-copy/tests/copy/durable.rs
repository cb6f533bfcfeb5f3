//! Atomic tree copies queue their temporaries and rename them after one
//! `syncfs` per batch (crash atomicity at a small cost; the proof against
//! power cuts is `cargo xtask crash`). These tests check what the batching
//! must not change: every file arrives, nothing is left behind, directory
//! times are still preserved (the renames happen before they are set), and
//! an existing tree is replaced file by file.
#![cfg(target_os = "linux")]

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use cow_copy::tree::TreeOptions;
use cow_copy::{CopyOptions, Preserve, Reflink};
use cow_test_support::{fs_test, write_pattern};

/// More files than one batch holds (512), in three directories.
const FILES: usize = 700;

fn make_tree(root: &Path, seed: u64) {
    for d in ["a", "b", "b/c"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    for i in 0..FILES {
        let d = ["a", "b", "b/c"][i % 3];
        write_pattern(
            &root.join(d).join(format!("f{i}")),
            100 + i * 7,
            seed + i as u64,
        );
    }
}

fn walk(root: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in fs::read_dir(root).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, out);
        }
        out.push(p);
    }
}

fs_test!(
    atomic_tree_batches_every_file_and_keeps_directory_times,
    [btrfs, xfs, ext4, tmpfs],
    |dir| {
        let src = dir.join("src");
        let dst = dir.join("dst");
        make_tree(&src, 1);
        // Over an older tree of the same names, then into a fresh one.
        make_tree(&dst, 99);
        for (target, preserve) in [
            (&dst, Preserve::all()),
            (&dir.join("fresh"), Preserve::default()),
        ] {
            let opts = TreeOptions::new().copy_options(
                CopyOptions::new()
                    .atomic(true)
                    .reflink(Reflink::Never)
                    .preserve(preserve),
            );
            let r = opts.copy(&src, target).unwrap();
            assert!(r.is_complete(), "{:?}", r.failures);
            assert_eq!(r.totals.files, FILES as u64);
            let mut entries = Vec::new();
            walk(target, &mut entries);
            for p in &entries {
                let name = p.file_name().unwrap().to_string_lossy();
                assert!(
                    !name.contains(cow_copy::TEMP_MARKER),
                    "left behind: {}",
                    p.display()
                );
                let rel = p.strip_prefix(target).unwrap();
                let s = src.join(rel);
                if p.is_file() {
                    assert_eq!(
                        fs::read(p).unwrap(),
                        fs::read(&s).unwrap(),
                        "{}",
                        rel.display()
                    );
                } else if preserve.timestamps {
                    let (a, b) = (fs::metadata(p).unwrap(), fs::metadata(&s).unwrap());
                    assert_eq!(
                        (a.mtime(), a.mtime_nsec()),
                        (b.mtime(), b.mtime_nsec()),
                        "directory time of {}",
                        rel.display()
                    );
                }
            }
            assert_eq!(entries.len(), FILES + 3);
        }
    }
);
