//! Copying extended attributes: from a directory to its copy (through their
//! descriptors), and from a symlink to its copy without following either.
//!
//! Linux, Android and Apple platforms copy them; other Unixes copy none and
//! say so for each entry (as a warning, through [`Walker::xattrs_copied`]).

use super::*;

/// An attribute that was not copied, and why.
pub(super) struct NotCopied {
    /// The attribute's name (lossy), or what was being done: `(list)`.
    pub(super) name: String,
    pub(super) errno: Errno,
}

/// The attributes refused one by one (the copy went on), or the error
/// that stopped the copy.
pub(super) type Copied = Result<Vec<NotCopied>, NotCopied>;

/// Whether `e` says the attribute is not allowed or not supported there
/// (a warning, not a failure): Linux refuses `user.*` attributes on
/// symlinks with `EPERM`, and a destination filesystem may have no
/// xattrs or not this namespace.
pub(super) fn refused(e: Errno) -> bool {
    e == Errno::PERM || e == Errno::OPNOTSUPP || e == Errno::NOTSUP || e == Errno::ACCESS
}

fn not_copied(name: &str, errno: Errno) -> NotCopied {
    NotCopied {
        name: name.to_owned(),
        errno,
    }
}

#[cfg(any(target_os = "linux", target_os = "android", target_vendor = "apple"))]
pub(super) use supported::copy;

#[cfg(any(target_os = "linux", target_os = "android", target_vendor = "apple"))]
mod supported {
    use super::*;

    /// Where attributes are listed, read and written: an open
    /// descriptor, or (Linux symlinks) a path whose last component is
    /// not followed.
    pub(in super::super) trait Node {
        /// The length of the name list.
        fn list_len(&self) -> Result<usize, Errno>;
        /// Reads the name list into `buf`; returns its length.
        fn list(&self, buf: &mut [u8]) -> Result<usize, Errno>;
        /// The length of `name`'s value.
        fn value_len(&self, name: &CStr) -> Result<usize, Errno>;
        /// Reads `name`'s value into `buf`; returns its length.
        fn value(&self, name: &CStr, buf: &mut [u8]) -> Result<usize, Errno>;
        /// Sets `name` to `value`.
        fn set(&self, name: &CStr, value: &[u8]) -> Result<(), Errno>;
    }

    impl Node for BorrowedFd<'_> {
        fn list_len(&self) -> Result<usize, Errno> {
            rfs::flistxattr_query(self)
        }
        fn list(&self, buf: &mut [u8]) -> Result<usize, Errno> {
            rfs::flistxattr(self, buf)
        }
        fn value_len(&self, name: &CStr) -> Result<usize, Errno> {
            rfs::fgetxattr_query(self, name)
        }
        fn value(&self, name: &CStr, buf: &mut [u8]) -> Result<usize, Errno> {
            rfs::fgetxattr(self, name, buf)
        }
        fn set(&self, name: &CStr, value: &[u8]) -> Result<(), Errno> {
            rfs::fsetxattr(self, name, value, rfs::XattrFlags::empty())
        }
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    const NO_ATTR: Errno = Errno::NODATA;
    #[cfg(target_vendor = "apple")]
    const NO_ATTR: Errno = Errno::NOATTR;

    /// Copies every attribute of `src` to `dst`. An attribute that
    /// cannot be read or set because it is refused (see [`refused`]) is
    /// skipped and returned; any other error stops the copy. A source
    /// without xattr support has nothing to copy.
    pub(in super::super) fn copy(src: &impl Node, dst: &impl Node) -> Copied {
        let list = match sized(|| src.list_len(), |b| src.list(b)) {
            Ok(l) => l,
            Err(e) if e == Errno::OPNOTSUPP || e == Errno::NOTSUP => return Ok(Vec::new()),
            Err(e) => return Err(not_copied("(list)", e)),
        };
        let mut skipped = Vec::new();
        for name in list.split(|b| *b == 0).filter(|n| !n.is_empty()) {
            let Ok(cname) = CString::new(name) else {
                continue;
            };
            let r = sized(|| src.value_len(&cname), |b| src.value(&cname, b))
                .and_then(|value| dst.set(&cname, &value));
            match r {
                Ok(()) => {}
                // Removed since it was listed.
                Err(e) if e == NO_ATTR => {}
                Err(e) => {
                    let x = not_copied(&String::from_utf8_lossy(name), e);
                    if !refused(e) {
                        return Err(x);
                    }
                    skipped.push(x);
                }
            }
        }
        Ok(skipped)
    }

    /// Reads a list or value whose length `len` tells, again when it
    /// grew in between (a few times).
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
}

/// Other Unixes: no xattrs are copied.
#[cfg(not(any(target_os = "linux", target_os = "android", target_vendor = "apple")))]
pub(super) fn copy(_src: &BorrowedFd<'_>, _dst: &BorrowedFd<'_>) -> Copied {
    Err(not_copied("(all)", Errno::OPNOTSUPP))
}

#[cfg(target_vendor = "apple")]
pub(super) use apple::{copy_link, links_supported};
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(super) use linux::{copy_link, links_supported};

/// Linux has no descriptor that the `f*xattr` calls accept for a
/// symlink (an `O_PATH` descriptor is refused), so symlinks are named
/// by path to the `l*xattr` calls, which do not follow the last
/// component. The path is `/proc/self/fd/DIR/NAME`: the kernel resolves
/// `/proc/self/fd/DIR` to exactly the directory the walk holds open, so
/// renaming or swapping directories meanwhile cannot redirect it.
#[cfg(any(target_os = "linux", target_os = "android"))]
mod linux {
    use super::supported::Node;
    use super::*;

    /// A symlink (or any entry) named by a path: not followed.
    struct Link(CString);

    impl Node for Link {
        fn list_len(&self) -> Result<usize, Errno> {
            rfs::llistxattr_query(self.0.as_c_str())
        }
        fn list(&self, buf: &mut [u8]) -> Result<usize, Errno> {
            rfs::llistxattr(self.0.as_c_str(), buf)
        }
        fn value_len(&self, name: &CStr) -> Result<usize, Errno> {
            rfs::lgetxattr_query(self.0.as_c_str(), name)
        }
        fn value(&self, name: &CStr, buf: &mut [u8]) -> Result<usize, Errno> {
            rfs::lgetxattr(self.0.as_c_str(), name, buf)
        }
        fn set(&self, name: &CStr, value: &[u8]) -> Result<(), Errno> {
            rfs::lsetxattr(self.0.as_c_str(), name, value, rfs::XattrFlags::empty())
        }
    }

    /// `/proc/self/fd/N` for the descriptor `dir`.
    fn proc_dir(dir: BorrowedFd<'_>) -> Vec<u8> {
        use std::os::fd::AsRawFd;
        format!("/proc/self/fd/{}", dir.as_raw_fd()).into_bytes()
    }

    /// The path of `name` in `dir`; `name` itself when `dir` is the
    /// working directory (the root of the copy, given as a path).
    fn at(dir: BorrowedFd<'_>, name: &CStr) -> Link {
        use std::os::fd::AsRawFd;
        if dir.as_raw_fd() == CWD.as_raw_fd() {
            return Link(name.to_owned());
        }
        let mut p = proc_dir(dir);
        p.push(b'/');
        p.extend_from_slice(name.to_bytes());
        // Neither part contains a NUL byte.
        Link(CString::new(p).unwrap_or_default())
    }

    /// Whether `/proc/self/fd/N` leads to the directory `dir` (the
    /// same device and inode): `/proc` is mounted and is procfs.
    pub(in super::super) fn links_supported(dir: BorrowedFd<'_>) -> Result<(), String> {
        let proc = proc_dir(dir);
        let want = rfs::fstat(dir).map_err(|e| format!("stat directory: {}", errno(e)))?;
        match rfs::stat(&proc[..]) {
            Ok(got) if id_of(&got) == id_of(&want) => Ok(()),
            Ok(_) => Err(format!(
                "{} is not the directory being copied into (is /proc procfs?), \
                 so symlink xattrs cannot be reached safely",
                String::from_utf8_lossy(&proc)
            )),
            Err(e) => Err(format!(
                "symlink xattrs are reached through /proc/self/fd, which failed \
                 (is /proc mounted?): {}",
                errno(e)
            )),
        }
    }

    /// Copies the xattrs of the symlink `src_name` in `src_dir` to the
    /// symlink `dst_name` in `dst_dir`, following neither.
    pub(in super::super) fn copy_link(
        src_dir: BorrowedFd<'_>,
        src_name: &CStr,
        dst_dir: BorrowedFd<'_>,
        dst_name: &CStr,
    ) -> Copied {
        copy(&at(src_dir, src_name), &at(dst_dir, dst_name))
    }
}

/// Apple platforms open the symlink itself (`O_SYMLINK`) and use the
/// descriptor calls, as for directories.
#[cfg(target_vendor = "apple")]
mod apple {
    use super::*;

    pub(in super::super) fn links_supported(_dir: BorrowedFd<'_>) -> Result<(), String> {
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
            Ok(st) if kind_of(&st) == FileType::Symlink => Ok(fd),
            Ok(_) => Err(not_copied("(open symlink)", Errno::INVAL)),
            Err(e) => Err(not_copied("(open symlink)", e)),
        }
    }

    /// Copies the xattrs of the symlink `src_name` in `src_dir` to the
    /// symlink `dst_name` in `dst_dir`, following neither.
    pub(in super::super) fn copy_link(
        src_dir: BorrowedFd<'_>,
        src_name: &CStr,
        dst_dir: BorrowedFd<'_>,
        dst_name: &CStr,
    ) -> Copied {
        let src = open_link(src_dir, src_name)?;
        let dst = open_link(dst_dir, dst_name)?;
        copy(&src.as_fd(), &dst.as_fd())
    }
}

/// Other Unixes: symlink xattrs are not copied (neither are those of
/// directories); each symlink gets a warning saying so.
#[cfg(not(any(target_os = "linux", target_os = "android", target_vendor = "apple")))]
pub(super) fn links_supported(_dir: BorrowedFd<'_>) -> Result<(), String> {
    Err(String::from(
        "extended attributes are not copied on this platform",
    ))
}

/// Never called where [`links_supported`] refuses.
#[cfg(not(any(target_os = "linux", target_os = "android", target_vendor = "apple")))]
pub(super) fn copy_link(
    _src_dir: BorrowedFd<'_>,
    _src_name: &CStr,
    _dst_dir: BorrowedFd<'_>,
    _dst_name: &CStr,
) -> Copied {
    Err(not_copied("(all)", Errno::OPNOTSUPP))
}
