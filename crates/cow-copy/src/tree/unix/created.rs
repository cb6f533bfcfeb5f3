//! A handle on a node the walk has just created (a symlink, FIFO, device or
//! socket), through which its owner, mode and times are set.
//!
//! The destination directory may be writable by someone else (a shared or
//! `1777` directory, an attacker's tree that root copies into). Between the
//! `mknodat`/`symlinkat` and the metadata calls they can put a symlink, or a
//! hard link to any file they can reach, under the new name. A metadata call
//! by name would then change that file: `chmodat` follows symlinks, and a
//! no-follow `fchownat` still changes a hard-linked file. So the entry is
//! opened once, without following it, and checked to be the node that was
//! made (its type, device number, one link, owned by this process's user);
//! every later change goes through that descriptor.
//!
//! Linux opens it with `O_PATH` (no side effects, works for sockets and
//! devices): `fchownat(fd, "", AT_EMPTY_PATH)`, `utimensat(fd, "",
//! AT_EMPTY_PATH)` and `chmod("/proc/self/fd/N")` (which resolves to exactly
//! the open inode) act on the checked inode only. Other Unixes have no such
//! descriptor for sockets and devices: there the check is made and the
//! no-follow `*at` calls follow it, which leaves a short window (see
//! `docs/security.md`).

use super::*;

/// The node, checked to be the one the walk created.
pub(super) struct Created<'d> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fd: OwnedFd,
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    dir: BorrowedFd<'d>,
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    name: &'d CStr,
    #[cfg(any(target_os = "linux", target_os = "android"))]
    _dir: std::marker::PhantomData<&'d ()>,
}

/// Why a node's metadata was not applied.
pub(super) enum NotOurs {
    /// Opening or stat'ing it failed.
    Io(Errno),
    /// Something else is under its name now.
    Replaced,
}

impl NotOurs {
    /// The error to report.
    pub(super) fn into_io(self) -> io::Error {
        match self {
            NotOurs::Io(e) => errno(e),
            NotOurs::Replaced => io::Error::other(
                "the new entry was replaced by something else before its metadata was set; \
                 nothing was changed",
            ),
        }
    }
}

/// Whether `got` is the node the walk made from the source status `src`:
/// the same type (and device number), a single link, and owned by the user
/// this process creates files as.
#[allow(clippy::unnecessary_cast)]
fn is_ours(got: &Stat, src: &Stat) -> bool {
    let kind = kind_of(src);
    kind_of(got) == kind
        && nlink_of(got) == 1
        && got.st_uid == rustix::process::geteuid().as_raw()
        && (!matches!(kind, FileType::CharacterDevice | FileType::BlockDevice)
            || got.st_rdev == src.st_rdev)
}

impl<'d> Created<'d> {
    /// Opens `name` in `dir` (never following it) and checks that it is the
    /// node made from the source status `src`.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub(super) fn open(dir: BorrowedFd<'d>, name: &'d CStr, src: &Stat) -> Result<Self, NotOurs> {
        let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rfs::openat(dir, name, flags, Mode::empty()).map_err(NotOurs::Io)?;
        let got = rfs::fstat(&fd).map_err(NotOurs::Io)?;
        if !is_ours(&got, src) {
            return Err(NotOurs::Replaced);
        }
        Ok(Created {
            fd,
            _dir: std::marker::PhantomData,
        })
    }

    /// Opens `name` in `dir` (never following it) and checks that it is the
    /// node made from the source status `src`.
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    pub(super) fn open(dir: BorrowedFd<'d>, name: &'d CStr, src: &Stat) -> Result<Self, NotOurs> {
        let got = rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).map_err(NotOurs::Io)?;
        if !is_ours(&got, src) {
            return Err(NotOurs::Replaced);
        }
        Ok(Created { dir, name })
    }

    /// `/proc/self/fd/N`: a path the kernel resolves to the open inode.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn proc_path(&self) -> CString {
        use std::os::fd::AsRawFd;
        let p = format!("/proc/self/fd/{}", self.fd.as_raw_fd());
        // Digits and slashes only.
        CString::new(p).unwrap_or_default()
    }

    /// Sets the owner; `None` leaves that part alone.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub(super) fn chown(&self, uid: Option<rfs::Uid>, gid: Option<rfs::Gid>) -> Result<(), Errno> {
        rfs::chownat(&self.fd, c"", uid, gid, AtFlags::EMPTY_PATH)
    }

    /// Sets the mode (not for symlinks, whose mode means nothing).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub(super) fn chmod(&self, mode: Mode) -> Result<(), Errno> {
        rfs::chmodat(CWD, self.proc_path().as_c_str(), mode, AtFlags::empty())
    }

    /// Sets access and modification times.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub(super) fn set_times(&self, times: &Timestamps) -> Result<(), Errno> {
        match rfs::utimensat(&self.fd, c"", times, AtFlags::EMPTY_PATH) {
            // Kernels before 5.8 take no AT_EMPTY_PATH here; the magic link
            // leads to the open inode itself (a symlink is not followed
            // further).
            Err(Errno::INVAL) => {
                rfs::utimensat(CWD, self.proc_path().as_c_str(), times, AtFlags::empty())
            }
            r => r,
        }
    }

    /// Sets the owner; `None` leaves that part alone.
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    pub(super) fn chown(&self, uid: Option<rfs::Uid>, gid: Option<rfs::Gid>) -> Result<(), Errno> {
        rfs::chownat(self.dir, self.name, uid, gid, AtFlags::SYMLINK_NOFOLLOW)
    }

    /// Sets the mode (not for symlinks, whose mode means nothing).
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    pub(super) fn chmod(&self, mode: Mode) -> Result<(), Errno> {
        rfs::chmodat(self.dir, self.name, mode, AtFlags::SYMLINK_NOFOLLOW)
    }

    /// Sets access and modification times.
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    pub(super) fn set_times(&self, times: &Timestamps) -> Result<(), Errno> {
        rfs::utimensat(self.dir, self.name, times, AtFlags::SYMLINK_NOFOLLOW)
    }
}

/// A private directory (mode 0700, this process's user's) made inside a
/// destination directory that others can change: a node is created there
/// and given its metadata where nobody else can touch the entry, then
/// renamed into place. Removed (if empty) when dropped.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(super) struct Staging<'d> {
    parent: BorrowedFd<'d>,
    name: CString,
    fd: OwnedFd,
}

#[cfg(any(target_os = "linux", target_os = "android"))]
impl<'d> Staging<'d> {
    /// Makes one in `parent`, named like a temporary of `for_name`.
    pub(super) fn new(parent: BorrowedFd<'d>, for_name: &CStr) -> Result<Self, Errno> {
        use std::os::unix::ffi::OsStringExt;
        for _ in 0..16 {
            let tmp = crate::replace::temp_name(os_name(for_name).as_os_str());
            let name = CString::new(tmp.into_vec()).map_err(|_| Errno::INVAL)?;
            match rfs::mkdirat(parent, &name, Mode::from_raw_mode(0o700)) {
                Ok(()) => {}
                Err(Errno::EXIST) => continue,
                Err(e) => return Err(e),
            }
            let me = Staging {
                parent,
                fd: rfs::openat(parent, &name, dir_flags(false), Mode::empty())?,
                name,
            };
            // What was opened is the directory just made, not one put in
            // its place: ours, and nobody else's to enter or change.
            let st = rfs::fstat(&me.fd)?;
            let ours = st.st_uid == rustix::process::geteuid().as_raw();
            if !ours || mode_of(&st) & 0o077 != 0 {
                return Err(Errno::PERM);
            }
            return Ok(me);
        }
        Err(Errno::EXIST)
    }

    /// The directory.
    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
impl Drop for Staging<'_> {
    fn drop(&mut self) {
        // rmdir removes nothing but an empty directory, whatever is under
        // the name by now.
        let _ = rfs::unlinkat(self.parent, &self.name, AtFlags::REMOVEDIR);
    }
}
