//! Measuring: syncing, dropping the page cache, allocated bytes, space used
//! by a filesystem, sharing, and the statistics of a cell.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Flushes every dirty page and the journal of the filesystem holding
/// `path` (`syncfs`).
pub(crate) fn syncfs(path: &Path) -> io::Result<()> {
    let f = File::open(path)?;
    rustix::fs::syncfs(&f)?;
    Ok(())
}

/// Drops the page cache, dentries and inodes (`echo 3 >
/// /proc/sys/vm/drop_caches`, root only). tmpfs pages are not dropped.
pub(crate) fn drop_caches() -> io::Result<()> {
    rustix::fs::sync();
    fs::write("/proc/sys/vm/drop_caches", b"3\n")
}

/// Syncs the filesystem holding `path` until its used space stops moving
/// (XFS and btrfs free a removed file's extents in the background; without
/// this the next run's "used" growth would include a late free). Gives up
/// after about half a second.
pub(crate) fn settle(path: &Path) -> io::Result<()> {
    syncfs(path)?;
    let mut last = used_bytes(path)?;
    for _ in 0..25 {
        std::thread::sleep(std::time::Duration::from_millis(20));
        syncfs(path)?;
        let now = used_bytes(path)?;
        if now == last {
            break;
        }
        last = now;
    }
    Ok(())
}

/// Bytes the filesystem holding `path` reports as used (blocks minus free
/// blocks).
pub(crate) fn used_bytes(path: &Path) -> io::Result<u64> {
    let s = rustix::fs::statvfs(path)?;
    Ok(s.f_blocks.saturating_sub(s.f_bfree) * s.f_frsize)
}

/// `st_blocks * 512` of `path`, summed over a whole tree (directories
/// included) if it is a directory. Shared (cloned) extents count in full:
/// this is what `du` shows, not the new space (see [`used_bytes`]).
pub(crate) fn allocated(path: &Path) -> io::Result<u64> {
    let m = fs::symlink_metadata(path)?;
    let mut total = m.blocks() * 512;
    if m.is_dir() {
        for e in fs::read_dir(path)? {
            total += allocated(&e?.path())?;
        }
    }
    Ok(total)
}

/// The fraction of the source's data bytes that the copy shares with it
/// (cow-verify, from FIEMAP); `None` where the filesystem cannot say (tmpfs
/// has no FIEMAP).
pub(crate) fn sharing(src: &Path, dst: &Path) -> Result<f64, String> {
    cow_verify::sharing(src, dst)
        .map(|s| s.ratio)
        .map_err(|e| e.to_string())
}

/// The block device under a filesystem, as its `/sys` stat file: the loop
/// device named in `detail` (`... on /dev/loopN`), else the device of
/// `path` if it is a real block device (not tmpfs, not a btrfs anonymous
/// device).
pub(crate) fn block_stat_file(path: &Path, detail: &str) -> Option<std::path::PathBuf> {
    if let Some(i) = detail.find("/dev/") {
        let name: String = detail[i + 5..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        let f = Path::new("/sys/block").join(name).join("stat");
        if f.is_file() {
            return Some(f);
        }
    }
    let dev = fs::metadata(path).ok()?.dev();
    let (major, minor) = (rustix::fs::major(dev), rustix::fs::minor(dev));
    let f = std::path::PathBuf::from(format!("/sys/dev/block/{major}:{minor}/stat"));
    f.is_file().then_some(f)
}

/// Bytes written to a block device so far (`/sys/block/X/stat`, field 7:
/// sectors written, 512 bytes each).
pub(crate) fn device_written(stat_file: &Path) -> io::Result<u64> {
    let text = fs::read_to_string(stat_file)?;
    text.split_whitespace()
        .nth(6)
        .and_then(|v| v.parse::<u64>().ok())
        .map(|sectors| sectors * 512)
        .ok_or_else(|| io::Error::other(format!("unexpected {}", stat_file.display())))
}

/// Removes a file or a directory tree; a missing one is fine.
pub(crate) fn remove(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Median, minimum and maximum of some samples.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub(crate) struct Stats {
    /// The median (mean of the middle two for an even count).
    pub(crate) median: f64,
    /// The smallest sample.
    pub(crate) min: f64,
    /// The largest sample.
    pub(crate) max: f64,
}

impl Stats {
    /// The statistics of `samples`; `None` if there are none.
    pub(crate) fn of(samples: &[f64]) -> Option<Stats> {
        if samples.is_empty() {
            return None;
        }
        let mut v = samples.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Stats {
            median,
            min: v[0],
            max: v[n - 1],
        })
    }
}

/// The median of integer samples (lower middle for an even count).
pub(crate) fn median_i64(samples: &[i64]) -> Option<i64> {
    let mut v = samples.to_vec();
    v.sort_unstable();
    v.get(v.len().saturating_sub(1) / 2).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats() {
        let s = Stats::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(Stats::of(&[1.0, 4.0]).unwrap().median, 2.5);
        assert!(Stats::of(&[]).is_none());
        assert_eq!(median_i64(&[5, -1, 3, 9]), Some(3));
        assert_eq!(median_i64(&[]), None);
    }
}
