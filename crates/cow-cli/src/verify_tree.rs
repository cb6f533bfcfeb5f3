//! `cow verify -r DIR...`: how much the files of a tree share, from their
//! extent maps: data bytes, bytes in extents the filesystem marks shared,
//! and the device bytes the tree occupies with every shared block counted
//! once (what `btrfs filesystem du` calls exclusive plus set shared).

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use cow_verify::{Extent, Location};
use serde::Serialize;

use crate::exit;
use crate::quote::quote;

/// The sharing of one tree.
#[derive(Debug, Default, Serialize)]
struct TreeSharing {
    path: PathBuf,
    /// Regular files measured (each inode once).
    files: u64,
    /// Their data bytes (holes excluded).
    data_bytes: u64,
    /// Data bytes in extents marked shared (with anything: another file
    /// here or elsewhere, a snapshot).
    shared_bytes: u64,
    /// `shared_bytes / data_bytes` (1.0 for a tree without data).
    ratio: f64,
    /// Device bytes under the tree's data, every shared byte once.
    physical_bytes: u64,
    /// Data bytes without a comparable location (inline, delayed), each
    /// counted as its own.
    unknown_bytes: u64,
    /// Files that could not be measured.
    errors: u64,
}

/// Adds one file's extents (clipped to its length) to the totals.
fn add(t: &mut TreeSharing, extents: &[Extent], len: u64, physical: &mut Vec<(u64, u64)>) {
    t.files += 1;
    for e in extents {
        if e.logical >= len {
            continue;
        }
        let n = e.length.min(len - e.logical);
        t.data_bytes += n;
        if e.shared {
            t.shared_bytes += n;
        }
        match e.location {
            Location::Physical(p) => physical.push((p, n)),
            // Encoded extents: the device range is the extent's own.
            Location::Encoded(p) => physical.push((p, e.length)),
            Location::Unknown | Location::Inline => t.unknown_bytes += n,
        }
    }
}

/// Total length of the union of the ranges.
fn union_len(mut r: Vec<(u64, u64)>) -> u64 {
    r.sort_unstable();
    let mut total = 0;
    let mut end = 0u64;
    for (start, len) in r {
        let stop = start.saturating_add(len);
        if stop <= end {
            continue;
        }
        total += stop - start.max(end);
        end = stop;
    }
    total
}

fn measure(root: &Path) -> Result<TreeSharing, String> {
    let top = fs::metadata(root).map_err(|e| format!("cannot stat {}: {e}", quote(root)))?;
    let mut t = TreeSharing {
        path: root.to_path_buf(),
        ..TreeSharing::default()
    };
    let mut physical = Vec::new();
    let mut seen: HashSet<(u64, u64)> = HashSet::new();
    let mut stack = vec![root.to_path_buf()];
    if top.is_file() {
        stack.clear();
        match cow_verify::extents(root) {
            Ok(x) => add(&mut t, &x, top.len(), &mut physical),
            Err(e) => return Err(e.to_string()),
        }
    }
    while let Some(dir) = stack.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("cow verify: cannot read directory {}: {e}", quote(&dir));
                t.errors += 1;
                continue;
            }
        };
        for entry in entries.flatten() {
            let p = entry.path();
            let Ok(m) = entry.metadata() else {
                eprintln!("cow verify: cannot stat {}", quote(&p));
                t.errors += 1;
                continue;
            };
            if m.dev() != top.dev() {
                continue;
            }
            if m.is_dir() {
                stack.push(p);
            } else if m.is_file() && seen.insert((m.dev(), m.ino())) {
                match cow_verify::extents(&p) {
                    Ok(x) => add(&mut t, &x, m.len(), &mut physical),
                    Err(e) => {
                        eprintln!("cow verify: {e}");
                        t.errors += 1;
                    }
                }
            }
        }
    }
    t.physical_bytes = union_len(physical) + t.unknown_bytes;
    t.ratio = if t.data_bytes == 0 {
        1.0
    } else {
        t.shared_bytes as f64 / t.data_bytes as f64
    };
    Ok(t)
}

/// Runs `cow verify -r`.
pub(crate) fn run(dirs: &[PathBuf], json: bool) -> u8 {
    let mut code = exit::OK;
    let mut all = Vec::new();
    for d in dirs {
        match measure(d) {
            Ok(t) => {
                if t.errors > 0 {
                    code = exit::FAILED;
                }
                all.push(t);
            }
            Err(e) => {
                eprintln!("cow verify: {e}");
                code = exit::FAILED;
            }
        }
    }
    if json {
        if !crate::print_json("verify", &all) {
            return exit::FAILED;
        }
    } else {
        for t in &all {
            println!(
                "{}: {} files, {} data bytes, {} in shared extents ({:.3}), {} device bytes with shared blocks counted once",
                quote(&t.path),
                t.files,
                t.data_bytes,
                t.shared_bytes,
                t.ratio,
                t.physical_bytes
            );
        }
    }
    code
}

#[cfg(test)]
mod tests {
    use super::union_len;

    #[test]
    fn union_counts_overlaps_once() {
        assert_eq!(union_len(vec![]), 0);
        assert_eq!(union_len(vec![(0, 10), (5, 10), (100, 1)]), 16);
        assert_eq!(union_len(vec![(0, 10), (0, 10), (2, 3)]), 10);
    }
}
