//! macOS: `fclonefileat`, `fcopyfile`, BSD flags and ACL checks (from
//! cow-sys), `renamex_np(RENAME_EXCL)` and xattrs. Plain calls: the
//! clone-to-a-temporary-and-rename policy is the clone step's
//! (`strategy/clone/macos.rs`).

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::OsStrExt;

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

pub(crate) use cow_sys::macos::{
    CloneFlags, CopyFileFlags, FileFlags, chflagsat, fclonefileat, fcopyfile, has_chflagsat,
    has_extended_acl,
};

/// Flags to open a directory used as an `*at` anchor.
pub(crate) const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::CLOEXEC);

/// Flags to look at an existing entry without waiting on a FIFO.
pub(crate) const PROBE_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::NONBLOCK)
    .union(OFlags::NOCTTY)
    .union(OFlags::CLOEXEC);

/// The kernel-copy slot is `fcopyfile` (see `strategy/kernel/macos.rs`).
pub(crate) const HAS_COPY_RANGE: bool = true;

/// Gatekeeper's attribute: kept on every copy, like Finder and `cp` (whose
/// `fcopyfile` applies it whatever the flags), even when xattrs are not
/// preserved.
const QUARANTINE: &str = "com.apple.quarantine";

/// The names of `file`'s extended attributes.
pub(crate) fn xattr_names(file: &File) -> io::Result<Vec<OsString>> {
    let mut buf = vec![0u8; rustix::fs::flistxattr_query(file)?];
    let n = rustix::fs::flistxattr(file, &mut buf[..])?;
    Ok(buf[..n]
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty())
        .map(|n| OsStr::from_bytes(n).to_os_string())
        .collect())
}

/// The value of one extended attribute.
pub(crate) fn xattr_value(file: &File, name: &OsStr) -> io::Result<Vec<u8>> {
    let mut value = vec![0u8; rustix::fs::fgetxattr_query(file, name)?];
    let got = rustix::fs::fgetxattr(file, name, &mut value[..])?;
    value.truncate(got);
    Ok(value)
}

/// Removes every extended attribute but Gatekeeper's. One the system
/// protects (`EPERM`, such as `com.apple.provenance`) stays, as it would on
/// any copy this process writes.
pub(crate) fn strip_xattrs(file: &File) -> io::Result<()> {
    for name in xattr_names(file)? {
        if name != QUARANTINE {
            match rustix::fs::fremovexattr(file, &name) {
                Ok(()) | Err(Errno::PERM) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

/// Sets every extended attribute of `from` on `to` that `to` does not
/// already have with the same value.
pub(crate) fn carry_xattrs(from: &File, to: &File) -> io::Result<()> {
    for name in xattr_names(from)? {
        let value = xattr_value(from, &name)?;
        if xattr_value(to, &name).ok().as_ref() != Some(&value) {
            rustix::fs::fsetxattr(to, &name, &value, rustix::fs::XattrFlags::empty())?;
        }
    }
    Ok(())
}

/// `renamex_np(RENAME_EXCL)`.
pub(crate) fn rename_noreplace(dir: BorrowedFd<'_>, from: &OsStr, to: &OsStr) -> io::Result<()> {
    Ok(rustix::fs::renameat_with(
        dir,
        from,
        dir,
        to,
        rustix::fs::RenameFlags::NOREPLACE,
    )?)
}

/// The xattr part of the metadata: every extended attribute of `src` with
/// `all` (ACLs are not xattrs on macOS and are not copied), else only
/// Gatekeeper's `com.apple.quarantine`, which travels with every copy as
/// with Finder and `fcopyfile`. Values `dst` already has are left alone (a
/// clone brought them). Writing an xattr needs the owner's write bit, even
/// on an open descriptor, so a read-only `dst` gets it while they are
/// written. Refusals are listed in `skipped`.
pub(crate) fn apply_xattrs(src: &File, dst: &File, all: bool, skipped: &mut Vec<String>) {
    let names = if all {
        match xattr_names(src) {
            Ok(n) => n,
            Err(e) => {
                skipped.push(format!("xattrs: {e}"));
                return;
            }
        }
    } else {
        vec![OsString::from(QUARANTINE)]
    };
    let mut wanted = Vec::new();
    for name in names {
        match xattr_value(src, &name) {
            Ok(v) if xattr_value(dst, &name).ok().as_ref() != Some(&v) => wanted.push((name, v)),
            Ok(_) => {}
            Err(e) if Errno::from_io_error(&e) == Some(Errno::NOATTR) => {}
            Err(e) => skipped.push(format!("xattr {}: {e}", name.to_string_lossy())),
        }
    }
    if wanted.is_empty() {
        return;
    }
    let mode = rustix::fs::fstat(dst).map(|st| st.st_mode & 0o7777).ok();
    let lifted = mode.filter(|m| m & 0o200 == 0);
    if let Some(m) = lifted {
        let _ = rustix::fs::fchmod(dst, Mode::from_raw_mode(m | 0o200));
    }
    for (name, value) in wanted {
        if let Err(e) = rustix::fs::fsetxattr(dst, &name, &value, rustix::fs::XattrFlags::empty()) {
            skipped.push(format!("xattr {}: {e}", name.to_string_lossy()));
        }
    }
    if let Some(m) = lifted {
        if let Err(e) = rustix::fs::fchmod(dst, Mode::from_raw_mode(m)) {
            skipped.push(format!("mode after the xattrs: {e}"));
        }
    }
}
