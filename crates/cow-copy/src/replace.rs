//! Atomic replacement: write a temporary sibling, rename it over the
//! destination. The old destination stays whole until the rename.
//!
//! The temporary is named `.NAME.cow-tmp-XXXXXX` (so a leftover after a
//! crash is obvious), created exclusively with mode 0600 and removed on any
//! failure.

use std::ffi::{OsStr, OsString};
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use crate::fault::{Site, fault};

/// The marker in temporary names.
pub(crate) use crate::TEMP_MARKER;

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn suffix() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut h = std::hash::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    let mut v = h.finish();
    (0..6)
        .map(|_| {
            let c = ALPHABET[(v % ALPHABET.len() as u64) as usize] as char;
            v /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

/// The temporary name for `name`: `.NAME.cow-tmp-XXXXXX`.
pub(crate) fn temp_name(name: &OsStr) -> OsString {
    let mut s = OsString::from(".");
    // Keep the whole name within NAME_MAX (255).
    let bytes = name.as_encoded_bytes();
    if bytes.len() > 200 {
        s.push(String::from_utf8_lossy(&bytes[..200]).as_ref());
    } else {
        s.push(name);
    }
    s.push(TEMP_MARKER);
    s.push(suffix());
    s
}

/// Creates a fresh temporary sibling of `name` in `dir`, read-write, mode
/// 0600.
pub(crate) fn create_temp(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<(OwnedFd, OsString)> {
    for _ in 0..64 {
        let tmp = temp_name(name);
        match fault!(
            Site::Open,
            rustix::fs::openat(
                dir,
                &tmp,
                OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                Mode::from_raw_mode(0o600),
            )
        ) {
            Ok(fd) => return Ok((fd, tmp)),
            Err(Errno::EXIST) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "could not find a free temporary name",
    ))
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
        crate::platform::rename_noreplace(dir, tmp, name)
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
