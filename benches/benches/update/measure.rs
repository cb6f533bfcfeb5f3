//! Measurement, not a pass/fail test (run it by hand; see `main.rs`):
//!
//! ```text
//! sudo cargo xtask with-mounts -- cargo bench -p cow-benches --bench update
//! ```
//!
//! Updates an installed tree of 1,000 files / ~256 MiB in a btrfs subvolume
//! (with a snapshot of it) from a staging tree where 90 % of the files are
//! identical, with each policy, and prints wall time (including `syncfs`, so
//! written data reaches the disk), bytes the process dirtied
//! (`/proc/self/io` `write_bytes`), bytes it read (`rchar`) and the
//! bytes of the installed tree no longer shared with the snapshot
//! (`cow_verify::sharing` per file). Staging on
//! tmpfs (an unpacked archive) and staging on the same btrfs (where a plain
//! copy clones) are both measured. Every run starts from the same state: the
//! installed subvolume is re-made as a snapshot of the pristine one.

#![cfg(target_os = "linux")]

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::Instant;

use cow_copy::tree::TreeOptions;
use cow_copy::{CopyOptions, Overwrite};
use cow_test_support::{Fs, btrfs, dir_on, pattern};

const FILES: usize = 1000;
/// Runs per measurement; the median is printed.
const REPS: usize = 3;

/// Bytes of the installed tree no longer stored in the same blocks as the
/// snapshot it was made from.
fn unshared(installed: &Path, snapshot: &Path) -> u64 {
    (0..FILES)
        .map(|i| {
            let s = cow_verify::sharing(&installed.join(name(i)), &snapshot.join(name(i))).unwrap();
            s.a_len - s.shared_bytes.min(s.a_len)
        })
        .sum()
}

fn io_counter(key: &str) -> u64 {
    // The whole process: the tree copy works on several threads.
    let text = fs::read_to_string("/proc/self/io").unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn size(i: usize) -> usize {
    4096 * (1 + (i * 97) % 129) + (i * 13) % 4096
}

fn changed(i: usize) -> bool {
    i % 10 == 3
}

fn name(i: usize) -> PathBuf {
    PathBuf::from(format!("d{:02}/f{i:04}", i % 32))
}

fn write_tree(root: &Path, seed: impl Fn(usize) -> u64) {
    for i in 0..FILES {
        let p = root.join(name(i));
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, pattern(size(i), seed(i))).unwrap();
    }
}

#[derive(Clone, Copy, Debug)]
enum Tool {
    Cow(Overwrite),
    /// `TreeOptions::copy` (parallel workers) of the whole staging
    /// tree merged into the installed one.
    Tree(Overwrite),
    StdCopy,
    /// Only reads both trees to the end: the floor for any byte compare.
    ReadBoth,
}

fn run(tool: Tool, staging: &Path, installed: &Path) {
    if let Tool::Tree(u) = tool {
        let opts = TreeOptions::new().copy_options(CopyOptions::new().overwrite(u));
        opts.copy(staging, installed).unwrap();
        return;
    }
    for i in 0..FILES {
        let (s, d) = (staging.join(name(i)), installed.join(name(i)));
        match tool {
            Tool::Cow(u) => {
                CopyOptions::new().overwrite(u).copy(&s, &d).unwrap();
            }
            Tool::StdCopy => {
                fs::copy(&s, &d).unwrap();
            }
            Tool::Tree(_) => unreachable!(),
            Tool::ReadBoth => {
                std::hint::black_box(fs::read(&s).unwrap());
                std::hint::black_box(fs::read(&d).unwrap());
            }
        }
    }
}

fn drop_caches() {
    rustix::fs::sync();
    let _ = fs::write("/proc/sys/vm/drop_caches", "3");
}

/// The measurement (see the module docs).
pub(crate) fn update_1000_files_256mib_90_percent_unchanged() {
    let Some(root) = dir_on(Fs::Btrfs, "update_bench") else {
        return;
    };
    let root = root.path();
    let pristine = root.join("pristine");
    let installed = root.join("installed");
    btrfs(&["subvolume", "create"], &[&pristine]);
    write_tree(&pristine, |i| i as u64);
    let total: u64 = (0..FILES).map(|i| size(i) as u64).sum();
    let changed_bytes: u64 = (0..FILES)
        .filter(|&i| changed(i))
        .map(|i| size(i) as u64)
        .sum();
    let staged = |i: usize| {
        if changed(i) {
            7000 + i as u64
        } else {
            i as u64
        }
    };
    let tmp_stage = dir_on(Fs::Tmpfs, "update_bench_staging");
    if let Some(t) = &tmp_stage {
        write_tree(t.path(), staged);
    }
    // The btrfs staging tree is a subvolume; every run gets a fresh snapshot
    // of it, because a dedupe run changes where its files' blocks are.
    let stage_pristine = root.join("staging-pristine");
    btrfs(&["subvolume", "create"], &[&stage_pristine]);
    write_tree(&stage_pristine, staged);
    let btrfs_stage = root.join("staging");
    btrfs(&["filesystem", "sync"], &[root]);
    println!(
        "\n{FILES} files, {total} bytes, {} changed files with {changed_bytes} bytes\n",
        (0..FILES).filter(|&i| changed(i)).count()
    );
    println!(
        "| staging | tool | cache | time ms (median of {REPS}) | min ms | write_bytes | rchar | unshared with snapshot |"
    );
    println!("|---|---|---|---|---|---|---|---|");

    let mut stages = vec![("btrfs (same fs)", btrfs_stage.clone())];
    if let Some(t) = &tmp_stage {
        stages.insert(0, ("tmpfs", t.path().to_path_buf()));
    }
    for (stage_name, stage) in &stages {
        for cold in [false, true] {
            for tool in [
                Tool::Cow(Overwrite::Replace),
                Tool::StdCopy,
                Tool::Cow(Overwrite::IfDifferent),
                Tool::Cow(Overwrite::IfDifferentDedupe),
                Tool::Tree(Overwrite::Replace),
                Tool::Tree(Overwrite::IfDifferent),
                Tool::ReadBoth,
            ] {
                let mut times = Vec::new();
                let (mut written, mut read, mut ex) = (0, 0, 0);
                for _ in 0..REPS {
                    // Same start every time: installed is a fresh snapshot
                    // of pristine (which plays the role of the older
                    // snapshot); deleted subvolumes are cleaned up before the
                    // clock starts.
                    if installed.exists() {
                        btrfs(&["subvolume", "delete"], &[&installed]);
                    }
                    btrfs(&["subvolume", "snapshot"], &[&pristine, &installed]);
                    if *stage == btrfs_stage {
                        if stage.exists() {
                            btrfs(&["subvolume", "delete"], &[stage]);
                        }
                        btrfs(&["subvolume", "snapshot"], &[&stage_pristine, stage]);
                    }
                    btrfs(&["subvolume", "sync"], &[root]);
                    assert_eq!(unshared(&installed, &pristine), 0);
                    if cold {
                        drop_caches();
                    } else {
                        // Warm: both trees in the page cache.
                        for i in 0..FILES {
                            fs::read(installed.join(name(i))).unwrap();
                            fs::read(stage.join(name(i))).unwrap();
                        }
                    }
                    let (w0, r0) = (io_counter("write_bytes: "), io_counter("rchar: "));
                    let t0 = Instant::now();
                    run(tool, stage, &installed);
                    rustix::fs::syncfs(File::open(&installed).unwrap()).unwrap();
                    times.push(t0.elapsed().as_secs_f64() * 1000.0);
                    let (w1, r1) = (io_counter("write_bytes: "), io_counter("rchar: "));
                    (written, read) = (w1 - w0, r1 - r0);
                    ex = unshared(&installed, &pristine);
                }
                times.sort_by(f64::total_cmp);
                println!(
                    "| {stage_name} | {tool:?} | {} | {:.0} | {:.0} | {written} | {read} | {ex} |",
                    if cold { "cold" } else { "warm" },
                    times[times.len() / 2],
                    times[0],
                );
            }
        }
    }
    for p in [&installed, &pristine, &btrfs_stage, &stage_pristine] {
        btrfs(&["subvolume", "delete"], &[p]);
    }
}
