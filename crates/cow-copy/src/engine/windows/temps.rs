//! The temporaries of atomic copies on Windows: `.NAME.cow-tmp-XXXXXX`
//! beside the destination (named by [`temp_name`], as on Unix), created exclusively (so two copies never share
//! one) and listed while they are written, so that
//! [`crate::remove_temporaries`] (Ctrl-C in `cow cp`) can delete them.
//!
//! Windows has no directory handles to anchor names to (`*at` calls), so
//! entries are listed by full path.

use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use crate::replace::temp_name;

/// A temporary being written: listed until dropped (the copy renames or
/// removes the file itself).
pub(crate) struct Temp {
    /// Where it is.
    pub(crate) path: PathBuf,
    id: u64,
}

impl Temp {
    /// Renames the temporary over `dst`, unless an interrupt removed it
    /// meanwhile (then the destination is left as it was, and this fails).
    /// The rename runs under the list's lock, so it cannot race
    /// [`remove_all`].
    pub(crate) fn rename_over(&self, dst: &Path) -> io::Result<()> {
        let live = lock();
        if !live.entries.iter().any(|e| e.0 == self.id) {
            return Err(io::Error::new(
                io::ErrorKind::Interrupted,
                "the process is being interrupted: its temporary was removed",
            ));
        }
        std::fs::rename(&self.path, dst)
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let mut live = lock();
        if let Some(i) = live.entries.iter().position(|e| e.0 == self.id) {
            live.entries.swap_remove(i);
        }
    }
}

struct Live {
    next: u64,
    /// Set by [`remove_all`]: no new temporaries.
    closed: bool,
    entries: Vec<(u64, PathBuf)>,
}

static LIVE: Mutex<Live> = Mutex::new(Live {
    next: 0,
    closed: false,
    entries: Vec::new(),
});

fn lock() -> MutexGuard<'static, Live> {
    LIVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Creates (empty, exclusively) and lists a fresh temporary beside `dst`.
/// Fails once [`remove_all`] ran: the process is being interrupted.
pub(crate) fn create(dst: &Path) -> io::Result<Temp> {
    let name = dst.file_name().unwrap_or_default();
    for _ in 0..64 {
        let path = dst.with_file_name(temp_name(name));
        // Created and listed under the lock, so an interrupt either removes
        // it or forbids it, never misses it.
        let mut live = lock();
        if live.closed {
            return Err(io::Error::other(
                "the process is being interrupted: no new temporary files",
            ));
        }
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(_) => {
                let id = live.next;
                live.next += 1;
                live.entries.push((id, path.clone()));
                return Ok(Temp { path, id });
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "could not find a free temporary name",
    ))
}

/// Deletes every listed temporary and refuses new ones; returns how many
/// were deleted.
pub(crate) fn remove_all() -> usize {
    let mut live = lock();
    live.closed = true;
    live.entries
        .drain(..)
        .filter(|(_, path)| std::fs::remove_file(path).is_ok())
        .count()
}
