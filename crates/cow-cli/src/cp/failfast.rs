//! `--reflink=always` on a tree: find out before the walk whether the tree
//! can clone at all. One trial clone of the tree's first non-empty file into
//! the destination directory answers it; when the answer is a
//! filesystem-wide "no" (`EOPNOTSUPP`, `EXDEV`) the copy stops with one
//! error naming both filesystems, before anything was created. Reasons
//! that belong to one file still come from the walk, file by file.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use cow_copy::{CopyError, CopyOptions, Reflink};

use crate::msg::{os, q};

/// Entries looked at while searching for a file to try (a tree of empty
/// directories has nothing to clone anyway).
const SEARCH_LIMIT: usize = 10_000;

/// The first non-empty regular file under `root` (not following symlinks).
fn first_file(root: &Path) -> Option<PathBuf> {
    let mut stack = vec![root.to_path_buf()];
    let mut seen = 0;
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).ok()?.flatten() {
            seen += 1;
            if seen > SEARCH_LIMIT {
                return None;
            }
            let Ok(ft) = entry.file_type() else { continue };
            if ft.is_dir() {
                stack.push(entry.path());
            } else if ft.is_file() && entry.metadata().is_ok_and(|m| m.len() > 0) {
                return Some(entry.path());
            }
        }
    }
    None
}

/// Where the tree's files will be created: `dst` when it is a directory
/// already, else its parent.
fn destination_dir(dst: &Path) -> PathBuf {
    if fs::metadata(dst).is_ok_and(|m| m.is_dir()) {
        return dst.to_path_buf();
    }
    match dst.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn fs_name(p: &Path) -> String {
    cow_probe::probe(p).map_or_else(|_| "an unknown filesystem".into(), |c| c.fs_name.clone())
}

/// Whether an answer of the clone call is about the whole filesystem pair.
fn filesystem_wide(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::Unsupported | io::ErrorKind::CrossesDevices
    )
}

/// Tries one clone from the tree `src` into the destination of `dst`;
/// `Err` is the one message to print when the tree cannot clone at all.
pub(crate) fn check_tree_clones(src: &Path, dst: &Path, copy: &CopyOptions) -> Result<(), String> {
    if copy.reflink_policy() != Reflink::Always {
        return Ok(());
    }
    let Some(file) = first_file(src) else {
        return Ok(());
    };
    let dir = destination_dir(dst);
    let trial = dir.join(format!(".cow-clone-check-{}", std::process::id()));
    let result = CopyOptions::new()
        .reflink(Reflink::Always)
        .overwrite(cow_copy::Overwrite::NoClobber)
        .copy(&file, &trial);
    match result {
        Ok(_) => {
            let _ = fs::remove_file(&trial);
            Ok(())
        }
        // The engine removed what it created.
        Err(CopyError::ReflinkUnsupported { source, .. }) if filesystem_wide(&source) => {
            Err(format!(
                "cannot clone {} to {}: {} (source on {}, destination on {}); nothing was copied",
                q(src),
                q(dst),
                os(&source),
                fs_name(src),
                fs_name(&dir)
            ))
        }
        // Anything else (permissions, a full disk...) is left to the walk,
        // which reports it per file.
        Err(_) => Ok(()),
    }
}
