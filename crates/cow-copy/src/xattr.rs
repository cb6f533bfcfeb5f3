//! Extended attributes: the one copy loop (list the names, read each
//! value, set it), used by file copies (`copy_file`; on macOS `apply`),
//! directories ([`copy_fd`]) and symlinks ([`copy_link`]). The calls
//! themselves are the OS leaf's (`sys::xattr_*`).
//!
//! Linux, Android and macOS copy them; other Unixes copy none and say so
//! (in the file's report, or as a warning for each tree entry).

#[cfg(any(target_os = "linux", target_os = "android", target_os = "macos"))]
use std::ffi::{CStr, CString};
#[cfg(not(target_os = "macos"))]
use std::fs::File;
use std::os::fd::BorrowedFd;

use rustix::io::Errno;

#[cfg(any(target_os = "linux", target_os = "android", target_os = "macos"))]
use crate::fault::{Site, fault};
#[cfg(any(target_os = "linux", target_os = "android", target_os = "macos"))]
use crate::sys::{self, NO_XATTR, XattrAt};

/// An attribute that was not copied, and why.
pub(crate) struct NotCopied {
    /// The attribute's name (lossy), or what was being done: `(list)`.
    pub(crate) name: String,
    /// Why.
    pub(crate) errno: Errno,
}

/// The attributes refused one by one (the copy went on), or the error
/// that stopped the copy.
pub(crate) type Copied = Result<Vec<NotCopied>, NotCopied>;

/// Whether `e` says the attribute is not allowed or not supported there
/// (a warning, not a failure): Linux refuses `user.*` attributes on
/// symlinks with `EPERM`, and a destination filesystem may have no
/// xattrs or not this namespace.
pub(crate) fn refused(e: Errno) -> bool {
    e == Errno::PERM || e == Errno::OPNOTSUPP || e == Errno::NOTSUP || e == Errno::ACCESS
}

fn not_copied(name: &str, errno: Errno) -> NotCopied {
    NotCopied {
        name: name.to_owned(),
        errno,
    }
}

/// The file copy's report of an attribute copy: every failure is a
/// skipped item (`xattrs: …` when the names could not be listed, `xattr
/// NAME: …` for one attribute).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn report_file(r: Copied, skipped: &mut Vec<String>) {
    match r {
        Ok(refused) => skipped.extend(
            refused
                .into_iter()
                .map(|x| format!("xattr {}: {}", x.name, std::io::Error::from(x.errno))),
        ),
        Err(x) if x.errno == Errno::RANGE => {
            skipped.push("xattrs: the xattr list kept changing".into());
        }
        Err(x) => skipped.push(format!("xattrs: {}", std::io::Error::from(x.errno))),
    }
}

/// Copies every extended attribute of the file `src` (on Linux including
/// `system.posix_acl_access`, the POSIX ACL) to `dst`; what could not be
/// copied is listed in `skipped`, and the copy goes on.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn copy_file(src: &File, dst: &File, skipped: &mut Vec<String>) {
    use std::os::fd::AsFd;
    let r = copy(XattrAt::Fd(src.as_fd()), XattrAt::Fd(dst.as_fd()), |_| {
        false
    });
    report_file(r, skipped);
}

/// Other Unixes: no xattr calls.
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "macos")))]
pub(crate) fn copy_file(_src: &File, _dst: &File, skipped: &mut Vec<String>) {
    skipped.push("xattrs: not supported on this platform".into());
}

/// Copies every attribute of the entry `src` (a directory) to `dst`. An
/// attribute refused (see [`refused`]) is skipped and returned; any other
/// error stops the copy.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "macos"))]
pub(crate) fn copy_fd(src: BorrowedFd<'_>, dst: BorrowedFd<'_>) -> Copied {
    copy(XattrAt::Fd(src), XattrAt::Fd(dst), |e| !refused(e))
}

/// Other Unixes: no xattrs are copied.
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "macos")))]
pub(crate) fn copy_fd(_src: BorrowedFd<'_>, _dst: BorrowedFd<'_>) -> Copied {
    Err(not_copied("(all)", Errno::OPNOTSUPP))
}

/// The loop: copies every attribute of `src` to `dst`. An attribute that
/// cannot be read or set is skipped and returned, unless `stops` says its
/// error ends the copy; one removed since it was listed is left out. A
/// source without xattr support has nothing to copy.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "macos"))]
fn copy(src: XattrAt<'_>, dst: XattrAt<'_>, stops: impl Fn(Errno) -> bool) -> Copied {
    let list = match names(src) {
        Ok(l) => l,
        Err(e) if e == Errno::OPNOTSUPP || e == Errno::NOTSUP => return Ok(Vec::new()),
        Err(e) => return Err(not_copied("(list)", e)),
    };
    let mut skipped = Vec::new();
    for name in list {
        let r = value(src, &name).and_then(|v| fault!(Site::Xattr, sys::xattr_set(dst, &name, &v)));
        match r {
            Ok(()) => {}
            Err(e) if e == NO_XATTR => {}
            Err(e) => {
                let x = not_copied(&name.to_string_lossy(), e);
                if stops(e) {
                    return Err(x);
                }
                skipped.push(x);
            }
        }
    }
    Ok(skipped)
}

/// The names of `at`'s attributes.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "macos"))]
fn names(at: XattrAt<'_>) -> Result<Vec<CString>, Errno> {
    let list = sized(
        || fault!(Site::Xattr, sys::xattr_list_len(at)),
        |b| sys::xattr_list(at, b),
    )?;
    Ok(list
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
        .filter_map(|n| CString::new(n).ok())
        .collect())
}

/// The value of `at`'s attribute `name`.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "macos"))]
fn value(at: XattrAt<'_>, name: &CStr) -> Result<Vec<u8>, Errno> {
    sized(
        || sys::xattr_value_len(at, name),
        |b| sys::xattr_value(at, name, b),
    )
}

/// Reads a list or value whose length `len` tells, again when it grew in
/// between (a few times; then `ERANGE`).
#[cfg(any(target_os = "linux", target_os = "android", target_os = "macos"))]
fn sized(
    len: impl Fn() -> Result<usize, Errno>,
    read: impl Fn(&mut [u8]) -> Result<usize, Errno>,
) -> Result<Vec<u8>, Errno> {
    let mut tries = 0;
    loop {
        let n = len()?;
        let mut buf = vec![0u8; n];
        if n == 0 {
            return Ok(buf);
        }
        match read(&mut buf[..]) {
            Ok(got) => {
                buf.truncate(got);
                return Ok(buf);
            }
            Err(Errno::RANGE) if tries < 4 => tries += 1,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) use linux::{copy_link, links_supported};
#[cfg(target_os = "macos")]
pub(crate) use macos::{apply, carry, copy_link, links_supported, strip};

/// Linux has no descriptor that the `f*xattr` calls accept for a symlink
/// (an `O_PATH` descriptor is refused), so symlinks are named by path to
/// the `l*xattr` calls, which do not follow the last component. The path
/// is `/proc/self/fd/DIR/NAME`: the kernel resolves `/proc/self/fd/DIR` to
/// exactly the directory the walk holds open, so renaming or swapping
/// directories meanwhile cannot redirect it.
#[cfg(any(target_os = "linux", target_os = "android"))]
mod linux {
    use std::ffi::{CStr, CString};
    use std::io;
    use std::os::fd::{AsRawFd, BorrowedFd};

    use rustix::fs::{self as rfs, CWD};

    use super::{Copied, XattrAt, copy, refused};

    /// `/proc/self/fd/N` for the descriptor `dir`.
    fn proc_dir(dir: BorrowedFd<'_>) -> Vec<u8> {
        format!("/proc/self/fd/{}", dir.as_raw_fd()).into_bytes()
    }

    /// The path of `name` in `dir`; `name` itself when `dir` is the
    /// working directory (the root of the copy, given as a path).
    fn at(dir: BorrowedFd<'_>, name: &CStr) -> CString {
        if dir.as_raw_fd() == CWD.as_raw_fd() {
            return name.to_owned();
        }
        let mut p = proc_dir(dir);
        p.push(b'/');
        p.extend_from_slice(name.to_bytes());
        // Neither part contains a NUL byte.
        CString::new(p).unwrap_or_default()
    }

    /// Whether `/proc/self/fd/N` leads to the directory `dir` (the same
    /// device and inode): `/proc` is mounted and is procfs.
    pub(crate) fn links_supported(dir: BorrowedFd<'_>) -> Result<(), String> {
        let proc = proc_dir(dir);
        let want =
            rfs::fstat(dir).map_err(|e| format!("stat directory: {}", io::Error::from(e)))?;
        match rfs::stat(&proc[..]) {
            Ok(got) if (got.st_dev, got.st_ino) == (want.st_dev, want.st_ino) => Ok(()),
            Ok(_) => Err(format!(
                "{} is not the directory being copied into (is /proc procfs?), \
                 so symlink xattrs cannot be reached safely",
                String::from_utf8_lossy(&proc)
            )),
            Err(e) => Err(format!(
                "symlink xattrs are reached through /proc/self/fd, which failed \
                 (is /proc mounted?): {}",
                io::Error::from(e)
            )),
        }
    }

    /// Copies the xattrs of the symlink `src_name` in `src_dir` to the
    /// symlink `dst_name` in `dst_dir`, following neither (refusals as in
    /// [`super::copy_fd`]).
    pub(crate) fn copy_link(
        src_dir: BorrowedFd<'_>,
        src_name: &CStr,
        dst_dir: BorrowedFd<'_>,
        dst_name: &CStr,
    ) -> Copied {
        let (src, dst) = (at(src_dir, src_name), at(dst_dir, dst_name));
        copy(XattrAt::Path(&src), XattrAt::Path(&dst), |e| !refused(e))
    }
}

/// macOS opens a symlink itself (`O_SYMLINK`) and uses the descriptor
/// calls, as for directories. A clone carries every xattr, so a file copy
/// strips or keeps them after it ([`strip`], [`carry`], [`apply`]).
#[cfg(target_os = "macos")]
mod macos {
    use std::ffi::{CStr, CString};
    use std::fs::File;
    use std::io;
    use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

    use rustix::fs::{self as rfs, FileType, Mode, OFlags};
    use rustix::io::Errno;

    use super::{Copied, NotCopied, XattrAt, copy_fd, names, not_copied, value};
    use crate::sys;

    /// Gatekeeper's attribute: kept on every copy, like Finder and `cp`
    /// (whose `fcopyfile` applies it whatever the flags), even when xattrs
    /// are not preserved.
    const QUARANTINE: &CStr = c"com.apple.quarantine";

    /// A symlink is always reachable here (`O_SYMLINK`).
    pub(crate) fn links_supported(_dir: BorrowedFd<'_>) -> Result<(), String> {
        Ok(())
    }

    /// Opens the symlink `name` in `dir` itself; refuses anything else
    /// that may have taken its place (`O_NONBLOCK`: never waits on a
    /// FIFO).
    fn open_link(dir: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, NotCopied> {
        let flags = OFlags::RDONLY | OFlags::SYMLINK | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = rfs::openat(dir, name, flags, Mode::empty())
            .map_err(|e| not_copied("(open symlink)", e))?;
        match rfs::fstat(&fd) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => Ok(fd),
            Ok(_) => Err(not_copied("(open symlink)", Errno::INVAL)),
            Err(e) => Err(not_copied("(open symlink)", e)),
        }
    }

    /// Copies the xattrs of the symlink `src_name` in `src_dir` to the
    /// symlink `dst_name` in `dst_dir`, following neither.
    pub(crate) fn copy_link(
        src_dir: BorrowedFd<'_>,
        src_name: &CStr,
        dst_dir: BorrowedFd<'_>,
        dst_name: &CStr,
    ) -> Copied {
        let src = open_link(src_dir, src_name)?;
        let dst = open_link(dst_dir, dst_name)?;
        copy_fd(src.as_fd(), dst.as_fd())
    }

    fn fd(file: &File) -> XattrAt<'_> {
        XattrAt::Fd(file.as_fd())
    }

    /// Removes every extended attribute but Gatekeeper's. One the system
    /// protects (`EPERM`, such as `com.apple.provenance`) stays, as it
    /// would on any copy this process writes.
    pub(crate) fn strip(file: &File) -> io::Result<()> {
        for name in names(fd(file))? {
            if name.as_c_str() != QUARANTINE {
                match sys::xattr_remove(fd(file), &name) {
                    Ok(()) | Err(Errno::PERM) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }

    /// Sets every extended attribute of `from` on `to` that `to` does not
    /// already have with the same value.
    pub(crate) fn carry(from: &File, to: &File) -> io::Result<()> {
        for name in names(fd(from))? {
            let v = value(fd(from), &name)?;
            if value(fd(to), &name).ok().as_ref() != Some(&v) {
                sys::xattr_set(fd(to), &name, &v)?;
            }
        }
        Ok(())
    }

    /// The xattr part of a file's metadata: every extended attribute of
    /// `src` with `all` (ACLs are not xattrs on macOS and are not copied),
    /// else only Gatekeeper's `com.apple.quarantine`, which travels with
    /// every copy as with Finder and `fcopyfile`. Values `dst` already has
    /// are left alone (a clone brought them). Writing an xattr needs the
    /// owner's write bit, even on an open descriptor, so a read-only `dst`
    /// gets it while they are written. Refusals are listed in `skipped`.
    pub(crate) fn apply(src: &File, dst: &File, all: bool, skipped: &mut Vec<String>) {
        let names = if all {
            match names(fd(src)) {
                Ok(n) => n,
                Err(e) => {
                    skipped.push(format!("xattrs: {}", io::Error::from(e)));
                    return;
                }
            }
        } else {
            vec![CString::from(QUARANTINE)]
        };
        let mut wanted = Vec::new();
        for name in names {
            match value(fd(src), &name) {
                Ok(v) if value(fd(dst), &name).ok().as_ref() != Some(&v) => wanted.push((name, v)),
                Ok(_) => {}
                Err(e) if e == Errno::NOATTR => {}
                Err(e) => skipped.push(format!(
                    "xattr {}: {}",
                    name.to_string_lossy(),
                    io::Error::from(e)
                )),
            }
        }
        if wanted.is_empty() {
            return;
        }
        let mode = rfs::fstat(dst).map(|st| st.st_mode & 0o7777).ok();
        let lifted = mode.filter(|m| m & 0o200 == 0);
        if let Some(m) = lifted {
            let _ = rfs::fchmod(dst, Mode::from_raw_mode(m | 0o200));
        }
        for (name, v) in wanted {
            if let Err(e) = sys::xattr_set(fd(dst), &name, &v) {
                skipped.push(format!(
                    "xattr {}: {}",
                    name.to_string_lossy(),
                    io::Error::from(e)
                ));
            }
        }
        if let Some(m) = lifted {
            if let Err(e) = rfs::fchmod(dst, Mode::from_raw_mode(m)) {
                skipped.push(format!("mode after the xattrs: {e}"));
            }
        }
    }
}

/// Other Unixes: symlink xattrs are not copied (neither are those of
/// directories); each symlink gets a warning saying so.
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "macos")))]
pub(crate) fn links_supported(_dir: BorrowedFd<'_>) -> Result<(), String> {
    Err(String::from(
        "extended attributes are not copied on this platform",
    ))
}

/// Never called where [`links_supported`] refuses.
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "macos")))]
pub(crate) fn copy_link(
    _src_dir: BorrowedFd<'_>,
    _src_name: &std::ffi::CStr,
    _dst_dir: BorrowedFd<'_>,
    _dst_name: &std::ffi::CStr,
) -> Copied {
    Err(not_copied("(all)", Errno::OPNOTSUPP))
}
