//! Temporaries on Unix: created and listed by directory descriptor and
//! name, renamed over the destination, removed on failure.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use super::temp_name;
use crate::fault::{Site, fault};

/// A temporary being written. While it lives, the file is listed for
/// [`crate::remove_temporaries`]; dropping it takes it off the list (the file
/// itself is renamed or removed by the copy).
pub(crate) struct Temp {
    /// The temporary's name in its directory.
    pub(crate) name: OsString,
    id: u64,
}

impl Drop for Temp {
    fn drop(&mut self) {
        live::forget(self.id);
    }
}

/// Creates a fresh temporary sibling of `name` in `dir`, read-write, mode
/// 0600, and lists it for [`crate::remove_temporaries`].
pub(crate) fn create_temp(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<(OwnedFd, Temp)> {
    create_temp_with(dir, name, |tmp| {
        fault!(
            Site::Open,
            rustix::fs::openat(
                dir,
                tmp,
                OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                Mode::from_raw_mode(0o600),
            )
        )
        .map_err(io::Error::from)
    })
}

/// Makes a temporary sibling of `name` in `dir` with `make` (which must
/// create the entry it is given exclusively, failing with `EEXIST` when it
/// exists: another name is then tried) and lists it for
/// [`crate::remove_temporaries`]. The macOS clone step makes its clone this
/// way.
pub(crate) fn create_temp_with<T>(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    mut make: impl FnMut(&OsStr) -> io::Result<T>,
) -> io::Result<(T, Temp)> {
    // The list keeps its own descriptor of the directory: the caller's may
    // be closed before the temporary is removed by an interrupt.
    let keep = dir.try_clone_to_owned()?;
    for _ in 0..64 {
        let tmp = temp_name(name);
        // Created and listed under the list's lock, so an interrupt removes
        // it or forbids it, never misses it.
        let mut live = live::lock();
        if live.closed {
            return Err(io::Error::other(
                "the process is being interrupted: no new temporary files",
            ));
        }
        match make(&tmp) {
            Ok(made) => {
                let id = live.add(keep, tmp.clone());
                return Ok((made, Temp { name: tmp, id }));
            }
            Err(e) if e.raw_os_error() == Some(Errno::EXIST.raw_os_error()) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "could not find a free temporary name",
    ))
}

/// Removes every listed temporary and refuses new ones (see
/// [`crate::remove_temporaries`]).
pub(crate) fn remove_all() -> usize {
    let mut live = live::lock();
    live.closed = true;
    let mut removed = 0;
    for (_, dir, name) in live.entries.drain(..) {
        if rustix::fs::unlinkat(&dir, &name, rustix::fs::AtFlags::empty()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// The temporaries this process is writing now.
mod live {
    use std::ffi::OsString;
    use std::os::fd::OwnedFd;
    use std::sync::{Mutex, MutexGuard};

    pub(super) struct Live {
        next: u64,
        /// Set by an interrupt: no new temporaries.
        pub(super) closed: bool,
        /// (id, a descriptor of its directory, its name).
        pub(super) entries: Vec<(u64, OwnedFd, OsString)>,
    }

    impl Live {
        pub(super) fn add(&mut self, dir: OwnedFd, name: OsString) -> u64 {
            let id = self.next;
            self.next += 1;
            self.entries.push((id, dir, name));
            id
        }
    }

    static LIVE: Mutex<Live> = Mutex::new(Live {
        next: 0,
        closed: false,
        entries: Vec::new(),
    });

    pub(super) fn lock() -> MutexGuard<'static, Live> {
        LIVE.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes `id` off the list (it was renamed or removed).
    pub(super) fn forget(id: u64) {
        let mut live = lock();
        if let Some(i) = live.entries.iter().position(|e| e.0 == id) {
            live.entries.swap_remove(i);
        }
    }
}

/// Renames `tmp` over `name` (or, with `no_replace`, only if `name` does not
/// exist).
pub(crate) fn rename_over(
    dir: BorrowedFd<'_>,
    tmp: &OsStr,
    name: &OsStr,
    no_replace: bool,
) -> io::Result<()> {
    fault!(Site::Rename, Ok::<(), io::Error>(()))?;
    if no_replace {
        crate::sys::rename_noreplace(dir, tmp, name)
    } else {
        Ok(rustix::fs::renameat(dir, tmp, dir, name)?)
    }
}

/// Removes a temporary (best effort: used on failure paths).
pub(crate) fn remove(dir: BorrowedFd<'_>, tmp: &OsStr) {
    let _ = fault!(
        Site::Unlink,
        rustix::fs::unlinkat(dir, tmp, rustix::fs::AtFlags::empty())
    );
}

/// Makes a rename durable: `fsync` on the directory.
pub(crate) fn sync_dir(dir: BorrowedFd<'_>) -> io::Result<()> {
    // An O_PATH descriptor cannot be fsynced: open the directory itself.
    let fd = fault!(
        Site::Open,
        rustix::fs::openat(
            dir,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
    )?;
    let dir = std::fs::File::from(fd);
    fault!(Site::Fsync, dir.sync_all())
}
