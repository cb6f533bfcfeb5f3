//! The floor of a `cow dedupe -r` rerun: only the system calls a rerun
//! cannot do without, and nothing else. The walk (`getdents64` and one
//! `fstatat` per entry, directories in parallel), then, for every file that
//! shares its size with another, `openat`, `fstat`, one `FS_IOC_FIEMAP` of
//! 8 extents (with `FIEMAP_FLAG_SYNC`) and `close`. No hashing, no report.
//!
//! It is a floor of the calls, not of their waits: its workers take no
//! lock per XFS allocation group (cow-copy's `dedupe::ag`), so on XFS they
//! sleep on the groups' header locks. Since cow took those locks (stop 28)
//! its rerun of the bench tree (87-96 ms) is faster than this program over
//! the same tree (170-180 ms on four threads, 230-280 ms on two).
//!
//! ```sh
//! cargo run --release -p cow-benches --example dedupe_floor -- DIR [THREADS]
//! ```

#[cfg(target_os = "linux")]
fn main() {
    floor::main();
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("dedupe_floor: Linux only (FIEMAP)");
}

#[cfg(target_os = "linux")]
mod floor {
    use std::collections::HashMap;
    use std::ffi::OsStr;
    use std::os::fd::{AsFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    use cow_sys::linux::{FiemapExtentFlags, FiemapFlags, fiemap};
    use rustix::fs::{AtFlags, FileType, Mode, OFlags, RawDir, statat};

    fn open_dir(p: &Path) -> OwnedFd {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOATIME;
        rustix::fs::open(p, flags, Mode::empty())
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", p.display()))
    }

    /// Subdirectories and (path, size) of the regular files of `dir`.
    fn list(dir: &Path) -> (Vec<PathBuf>, Vec<(PathBuf, u64)>) {
        let fd = open_dir(dir);
        let mut buf = Vec::with_capacity(32 << 10);
        let mut it = RawDir::new(&fd, buf.spare_capacity_mut());
        let (mut dirs, mut files) = (Vec::new(), Vec::new());
        while let Some(e) = it.next() {
            let e = e.unwrap();
            let name = OsStr::from_bytes(e.file_name().to_bytes());
            if name == "." || name == ".." {
                continue;
            }
            let st = statat(&fd, name, AtFlags::SYMLINK_NOFOLLOW).unwrap();
            match FileType::from_raw_mode(st.st_mode) {
                FileType::Directory => dirs.push(dir.join(name)),
                FileType::RegularFile => files.push((dir.join(name), st.st_size as u64)),
                _ => {}
            }
        }
        (dirs, files)
    }

    /// Runs `f` over `items` on `threads` scoped threads, taking items in
    /// turn from a shared counter.
    fn each<T: Sync, R: Send>(items: &[T], threads: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
        let next = AtomicUsize::new(0);
        let mut out: Vec<(usize, R)> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(|| {
                        let mut mine = Vec::new();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(x) = items.get(i) else { break };
                            mine.push((i, f(x)));
                        }
                        mine
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap())
                .collect()
        });
        out.sort_by_key(|(i, _)| *i);
        out.into_iter().map(|(_, r)| r).collect()
    }

    pub(crate) fn main() {
        let mut args = std::env::args().skip(1);
        let root = PathBuf::from(args.next().expect("usage: dedupe_floor DIR [THREADS]"));
        let threads: usize = args.next().map_or(2, |s| s.parse().expect("THREADS"));
        let t = Instant::now();
        let mut level = vec![root];
        let mut files = Vec::new();
        while !level.is_empty() {
            let listed = each(&level, threads, |d| list(d));
            level = Vec::new();
            for (d, f) in listed {
                level.extend(d);
                files.extend(f);
            }
        }
        let walk = t.elapsed();
        let mut sizes: HashMap<u64, u32> = HashMap::new();
        for (_, s) in &files {
            *sizes.entry(*s).or_default() += 1;
        }
        let cands: Vec<&(PathBuf, u64)> = files
            .iter()
            .filter(|(_, s)| *s > 0 && sizes[s] > 1)
            .collect();
        let t = Instant::now();
        let shared = each(&cands, threads, |(p, size)| {
            let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOATIME;
            let fd = rustix::fs::open(p, flags, Mode::empty()).unwrap();
            rustix::fs::fstat(&fd).unwrap();
            let (_, ext) = fiemap(fd.as_fd(), 0, *size, FiemapFlags::SYNC, 8).unwrap();
            ext.first()
                .is_some_and(|e| e.flags().contains(FiemapExtentFlags::SHARED))
        });
        let maps = t.elapsed();
        println!(
            "{} files, {} candidates ({} first extent shared), {threads} threads: \
             walk {:.3} s, open+fstat+fiemap+close {:.3} s, total {:.3} s",
            files.len(),
            cands.len(),
            shared.iter().filter(|s| **s).count(),
            walk.as_secs_f64(),
            maps.as_secs_f64(),
            (walk + maps).as_secs_f64()
        );
    }
}
