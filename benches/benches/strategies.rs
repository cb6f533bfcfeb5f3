//! Criterion benches of the single-file strategies: clone, kernel copy,
//! sparse segment walk, user copy, each beside `std::fs::copy` where that
//! compares.
//!
//! The files live in `COW_BENCH_DIR` (default: the temp dir): point it at a
//! btrfs/XFS mount for clones, at ext4/tmpfs for the kernel copy. Groups
//! that cannot run on that filesystem say so and are skipped.
//! `COW_BENCH_BIG=1` adds the large workloads (1 GiB clone, 1 GiB
//! sparse file with 1 % data, 256 MiB dense copy).

#![allow(missing_docs)]

use std::hint::black_box;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cow_copy::{CopyOptions, Reflink, Strategy};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const MIB: u64 = 1 << 20;

fn bench_dir() -> tempfile::TempDir {
    let root = std::env::var_os("COW_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    tempfile::Builder::new()
        .prefix("cow-bench-")
        .tempdir_in(&root)
        .unwrap_or_else(|e| panic!("cannot use {}: {e}", root.display()))
}

fn big() -> bool {
    std::env::var_os("COW_BENCH_BIG").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Writes `len` bytes of non-repeating data.
fn write_dense(path: &Path, len: u64) {
    let f = std::fs::File::create(path).unwrap();
    let mut buf = vec![0u8; MIB as usize];
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ len;
    let mut off = 0;
    while off < len {
        for chunk in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        let n = (len - off).min(MIB) as usize;
        f.write_all_at(&buf[..n], off).unwrap();
        off += n as u64;
    }
    f.sync_all().unwrap();
}

/// A `len`-byte file with 1 % data in 64 extents, holes elsewhere.
fn write_sparse(path: &Path, len: u64) {
    let f = std::fs::File::create(path).unwrap();
    f.set_len(len).unwrap();
    let extent = (len / 100 / 64).max(4096) / 4096 * 4096;
    let stride = len / 64;
    let data = vec![0xA5u8; extent as usize];
    for i in 0..64 {
        f.write_all_at(&data, i * stride).unwrap();
    }
    f.sync_all().unwrap();
}

fn strategy_here(dir: &Path, reflink: Reflink) -> Strategy {
    let src = dir.join("probe.src");
    let dst = dir.join("probe.dst");
    write_dense(&src, 64 * 1024);
    let r = CopyOptions::new()
        .reflink(reflink)
        .copy(&src, &dst)
        .unwrap();
    let _ = std::fs::remove_file(&src);
    let _ = std::fs::remove_file(&dst);
    r.strategy
}

/// Times clones into fresh names (removing a clone right before the next
/// would time the filesystem's deferred extent-reference work, not the
/// clone); every 100 clones they are removed and the filesystem synced,
/// outside the timing.
fn time_clone(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: BenchmarkId,
    src: &Path,
    dir: &Path,
) {
    let n = std::cell::Cell::new(0u64);
    group.bench_function(id, |b| {
        b.iter_batched(
            || {
                n.set(n.get() + 1);
                if n.get() % 100 == 0 {
                    // Untimed: drop the clones and commit, so thousands of
                    // references to the same extents do not pile up.
                    for e in std::fs::read_dir(dir).unwrap() {
                        let _ = std::fs::remove_file(e.unwrap().path());
                    }
                    let _ = std::process::Command::new("sync")
                        .arg("-f")
                        .arg(dir)
                        .status();
                }
                dir.join(format!("clone.{}", n.get()))
            },
            |dst| {
                black_box(
                    CopyOptions::new()
                        .reflink(Reflink::Always)
                        .copy(src, &dst)
                        .unwrap()
                        .len,
                )
            },
            BatchSize::PerIteration,
        )
    });
}

/// Times `copy(src, dst)` with the destination removed before each run.
fn time_copy(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: BenchmarkId,
    src: &Path,
    dst: &Path,
    copy: impl Fn(&Path, &Path) -> u64,
) {
    group.bench_function(id, |b| {
        b.iter_batched(
            || {
                let _ = std::fs::remove_file(dst);
            },
            |()| black_box(copy(src, dst)),
            BatchSize::PerIteration,
        )
    });
}

/// A named copy function to time.
type Copier<'a> = (&'a str, &'a dyn Fn(&Path, &Path) -> u64);

/// Sets the group's throughput to `len` and times each copier from `src`
/// to `dst`, named `(name, len)`.
fn time_copies(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    len: u64,
    src: &Path,
    dst: &Path,
    copiers: &[Copier<'_>],
) {
    group.throughput(Throughput::Bytes(len));
    for (name, copy) in copiers {
        time_copy(group, BenchmarkId::new(*name, len), src, dst, copy);
    }
}

/// Writes a dense `len`-byte source `{prefix}-{len}` in `dir`, times the
/// copiers into `{prefix}-{len}.dst`, then removes both.
fn time_dense_copies(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    dir: &Path,
    prefix: &str,
    len: u64,
    copiers: &[Copier<'_>],
) {
    let src = dir.join(format!("{prefix}-{len}"));
    let dst = dir.join(format!("{prefix}-{len}.dst"));
    write_dense(&src, len);
    time_copies(group, len, &src, &dst, copiers);
    let _ = std::fs::remove_file(&src);
    let _ = std::fs::remove_file(&dst);
}

fn cow(reflink: Reflink) -> impl Fn(&Path, &Path) -> u64 {
    move |s, d| CopyOptions::new().reflink(reflink).copy(s, d).unwrap().len
}

fn std_copy(s: &Path, d: &Path) -> u64 {
    std::fs::copy(s, d).unwrap()
}

fn clone(c: &mut Criterion) {
    let dir = bench_dir();
    if strategy_here(dir.path(), Reflink::Auto) != Strategy::Cloned {
        eprintln!("clone: {} cannot clone, skipped", dir.path().display());
        return;
    }
    let mut g = c.benchmark_group("clone");
    let mut sizes = vec![MIB, 64 * MIB];
    if big() {
        sizes.push(1024 * MIB);
    }
    for len in sizes {
        let src = dir.path().join(format!("clone-{len}"));
        let clones = dir.path().join(format!("clones-{len}"));
        std::fs::create_dir(&clones).unwrap();
        write_dense(&src, len);
        g.throughput(Throughput::Bytes(len));
        time_clone(&mut g, BenchmarkId::new("cow", len), &src, &clones);
        let _ = std::fs::remove_file(&src);
        let _ = std::fs::remove_dir_all(&clones);
    }
    g.finish();
}

fn kernel_copy(c: &mut Criterion) {
    let dir = bench_dir();
    let s = strategy_here(dir.path(), Reflink::Auto);
    if s != Strategy::KernelCopy {
        eprintln!(
            "kernel_copy: {} uses {s}, skipped (use ext4 or tmpfs)",
            dir.path().display()
        );
        return;
    }
    let mut g = c.benchmark_group("kernel_copy");
    let mut sizes = vec![MIB, 32 * MIB];
    if big() {
        sizes.push(256 * MIB);
    }
    let auto = cow(Reflink::Auto);
    for len in sizes {
        let copiers: [Copier<'_>; 2] = [("cow", &auto), ("std", &std_copy)];
        time_dense_copies(&mut g, dir.path(), "dense", len, &copiers);
    }
    g.finish();
}

fn sparse_walk(c: &mut Criterion) {
    let dir = bench_dir();
    let mut g = c.benchmark_group("sparse_walk");
    let len = if big() { 1024 * MIB } else { 64 * MIB };
    let src = dir.path().join("sparse");
    let dst = dir.path().join("sparse.dst");
    write_sparse(&src, len);
    let (auto, never) = (cow(Reflink::Auto), cow(Reflink::Never));
    let copiers: [Copier<'_>; 3] = [("cow", &auto), ("cow-user", &never), ("std", &std_copy)];
    time_copies(&mut g, len, &src, &dst, &copiers);
    g.finish();
}

fn user_copy(c: &mut Criterion) {
    let dir = bench_dir();
    let mut g = c.benchmark_group("user_copy");
    let never = cow(Reflink::Never);
    for len in [4096, MIB, 16 * MIB] {
        time_dense_copies(&mut g, dir.path(), "user", len, &[("cow-never", &never)]);
    }
    g.finish();
}

criterion_group! {
    name = strategies;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = clone, kernel_copy, sparse_walk, user_copy
}
criterion_main!(strategies);
