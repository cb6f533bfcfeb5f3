//! Symlinks, FIFOs, devices and sockets: created with `*at` calls; their
//! metadata is applied through a descriptor of the entry that was created.

use super::*;

/// A temporary sibling name for `name` (`.NAME.cow-tmp-PID-N`), or `None`
/// when it would be too long for a directory entry.
pub(super) fn temp_name(name: &CStr) -> Option<CString> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut bytes = b".".to_vec();
    bytes.extend_from_slice(name.to_bytes());
    bytes.extend_from_slice(crate::TEMP_MARKER.as_bytes());
    bytes.extend_from_slice(format!("{}-{n}", std::process::id()).as_bytes());
    (bytes.len() <= 255)
        .then(|| CString::new(bytes).ok())
        .flatten()
}

impl Walker<'_> {
    /// Creates a non-directory entry with `create`, replacing an existing
    /// non-directory unless no-clobber. Returns what was done, or `None`
    /// after recording a failure.
    pub(super) fn create_non_dir(
        &self,
        dst_dir: BorrowedFd<'_>,
        dst_name: &CStr,
        rel: &Path,
        kind: EntryKind,
        op: &'static str,
        create: impl Fn(&CStr) -> Result<(), Errno>,
    ) -> Option<EntryAction> {
        match create(dst_name) {
            Ok(()) => Some(EntryAction::Created),
            Err(Errno::EXIST) => {
                let existing = match rfs::statat(dst_dir, dst_name, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) => st,
                    Err(e) => {
                        self.fail(rel, kind, "stat existing destination", e);
                        return None;
                    }
                };
                if kind_of(&existing) == FileType::Directory {
                    self.shared.fail(
                        rel,
                        kind,
                        op,
                        io::Error::new(
                            io::ErrorKind::IsADirectory,
                            "cannot overwrite directory with non-directory",
                        ),
                    );
                    return None;
                }
                if self.no_clobber {
                    return Some(EntryAction::Skipped);
                }
                // Create the new entry under a temporary name and rename it
                // over the old one: the destination is never missing.
                let tmp = temp_name(dst_name);
                if let Some(tmp) = tmp.filter(|t| create(t).is_ok()) {
                    match rfs::renameat(dst_dir, &tmp, dst_dir, dst_name) {
                        Ok(()) => return Some(EntryAction::Replaced),
                        Err(_) => {
                            let _ = rfs::unlinkat(dst_dir, &tmp, AtFlags::empty());
                        }
                    }
                }
                if let Err(e) = rfs::unlinkat(dst_dir, dst_name, AtFlags::empty()) {
                    self.fail(rel, kind, "remove existing destination", e);
                    return None;
                }
                match create(dst_name) {
                    Ok(()) => Some(EntryAction::Replaced),
                    Err(e) => {
                        self.fail(rel, kind, op, e);
                        None
                    }
                }
            }
            Err(e) => {
                self.fail(rel, kind, op, e);
                None
            }
        }
    }

    /// Counts and records a non-file entry's outcome; returns whether the
    /// entry was written (so its metadata should be applied).
    pub(super) fn created(
        &self,
        rel: &Path,
        kind: EntryKind,
        action: Option<EntryAction>,
        count: Count,
    ) -> bool {
        match action {
            Some(EntryAction::Skipped) => {
                self.shared.totals.bump(Count::Skipped);
                self.shared.record(rel, kind, EntryAction::Skipped, None);
                false
            }
            Some(a) => {
                self.shared.totals.bump(count);
                self.shared.record(rel, kind, a, None);
                true
            }
            None => false,
        }
    }

    pub(super) fn symlink(
        &self,
        src_dir: BorrowedFd<'_>,
        src_name: &CStr,
        st: &Stat,
        dst_dir: BorrowedFd<'_>,
        dst_name: &CStr,
        rel: &Path,
    ) {
        let target = match rfs::readlinkat(src_dir, src_name, Vec::new()) {
            Ok(t) => t,
            Err(e) => return self.fail(rel, EntryKind::Symlink, "read symlink", e),
        };
        let action = self.create_non_dir(
            dst_dir,
            dst_name,
            rel,
            EntryKind::Symlink,
            "create symlink",
            |name| rfs::symlinkat(target.as_c_str(), dst_dir, name),
        );
        if self.created(rel, EntryKind::Symlink, action, Count::Symlinks) {
            let p = self.preserve;
            if p.ownership {
                chown_entry(st, dst_dir, dst_name);
            }
            if p.xattrs {
                self.symlink_xattrs(src_dir, src_name, dst_dir, dst_name, rel);
            }
            if p.timestamps {
                if let Err(e) =
                    rfs::utimensat(dst_dir, dst_name, &times_of(st), AtFlags::SYMLINK_NOFOLLOW)
                {
                    self.fail_meta(rel, "set symlink times", e);
                }
            }
        }
    }

    /// Copies the xattrs of the source symlink to the new one, following
    /// neither (see [`xattr::copy_link`]).
    pub(super) fn symlink_xattrs(
        &self,
        src_dir: BorrowedFd<'_>,
        src_name: &CStr,
        dst_dir: BorrowedFd<'_>,
        dst_name: &CStr,
        rel: &Path,
    ) {
        let usable = self
            .link_xattrs
            .get_or_init(|| xattr::links_supported(dst_dir));
        if let Err(why) = usable {
            self.shared.warn(rel, format!("xattrs not copied: {why}"));
            return;
        }
        let r = xattr::copy_link(src_dir, src_name, dst_dir, dst_name);
        self.xattrs_copied(rel, "copy symlink xattrs", r);
    }

    /// Reports how an xattr copy went: each attribute the destination (or
    /// the platform) refused is a warning naming it; any other error is a
    /// metadata failure of the entry.
    pub(super) fn xattrs_copied(&self, rel: &Path, op: &'static str, r: xattr::Copied) {
        let (refused, failed) = match r {
            Ok(refused) => (refused, None),
            Err(stop) if xattr::refused(stop.errno) => (vec![stop], None),
            Err(stop) => (Vec::new(), Some(stop)),
        };
        for x in refused {
            self.shared.warn(
                rel,
                format!("xattr {} not copied: {}", x.name, errno(x.errno)),
            );
        }
        if let Some(x) = failed {
            self.fail_meta(rel, op, x.errno);
        }
    }

    pub(super) fn fifo(&self, st: &Stat, dst_dir: BorrowedFd<'_>, dst_name: &CStr, rel: &Path) {
        let mode = mk_mode(mode_of(st) & PERM_BITS);
        let action = self.create_non_dir(
            dst_dir,
            dst_name,
            rel,
            EntryKind::Fifo,
            "create FIFO",
            |name| sys::mkfifoat(dst_dir, name, mode),
        );
        if self.created(rel, EntryKind::Fifo, action, Count::Fifos) {
            // Opening a FIFO for reading with O_NONBLOCK does not wait for a
            // writer; the descriptor lets us set metadata without following
            // a symlink that might have replaced the new entry.
            match rfs::openat(
                dst_dir,
                dst_name,
                OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => self.meta_fd(fd.as_fd(), st, rel),
                Err(e) => self.fail_meta(rel, "open new FIFO", e),
            }
        }
    }

    pub(super) fn special(
        &self,
        st: &Stat,
        dst_dir: BorrowedFd<'_>,
        dst_name: &CStr,
        rel: &Path,
        kind: EntryKind,
    ) {
        if !self.shared.opts.copy_special {
            self.shared.totals.bump(Count::Skipped);
            self.shared.record(rel, kind, EntryAction::Skipped, None);
            self.shared.warn(
                rel,
                format!("{kind} not copied (copying devices and sockets was not asked for)"),
            );
            return;
        }
        let action = self.create_non_dir(
            dst_dir,
            dst_name,
            rel,
            kind,
            "create special file",
            |name| sys::mknodat(dst_dir, name, st),
        );
        if self.created(rel, kind, action, Count::Specials) {
            let p = self.preserve;
            let mut mode = mode_of(st) & MODE_BITS;
            // Without the owner, setuid/setgid are dropped.
            if p.ownership && !chown_entry(st, dst_dir, dst_name) {
                mode &= !SUID_SGID;
            }
            // The entry was just created by mknodat and is not a symlink;
            // chmodat has no working no-follow form on Linux.
            if p.mode {
                if let Err(e) = rfs::chmodat(dst_dir, dst_name, mk_mode(mode), AtFlags::empty()) {
                    self.fail_meta(rel, "set mode", e);
                }
            }
            if p.timestamps {
                if let Err(e) =
                    rfs::utimensat(dst_dir, dst_name, &times_of(st), AtFlags::SYMLINK_NOFOLLOW)
                {
                    self.fail_meta(rel, "set times", e);
                }
            }
        }
    }

    /// Applies owner, mode and times through a descriptor.
    pub(super) fn meta_fd(&self, fd: BorrowedFd<'_>, st: &Stat, rel: &Path) {
        let p = self.preserve;
        let mut mode = mode_of(st) & MODE_BITS;
        if p.ownership {
            let (uid, gid) = owner_of(st);
            if rfs::fchown(fd, Some(uid), Some(gid)).is_err() {
                let _ = rfs::fchown(fd, None, Some(gid));
                mode &= !SUID_SGID;
            }
        }
        if p.mode {
            if let Err(e) = rfs::fchmod(fd, mk_mode(mode)) {
                self.fail_meta(rel, "set mode", e);
            }
        }
        if p.timestamps {
            if let Err(e) = rfs::futimens(fd, &times_of(st)) {
                self.fail_meta(rel, "set times", e);
            }
        }
    }
}

/// Node creation that rustix does not offer on every Unix.
mod sys {
    use super::*;

    #[cfg(not(target_vendor = "apple"))]
    pub(super) fn mkfifoat(dir: BorrowedFd<'_>, name: &CStr, mode: Mode) -> Result<(), Errno> {
        rfs::mkfifoat(dir, name, mode)
    }

    #[cfg(not(target_vendor = "apple"))]
    #[allow(clippy::unnecessary_cast)]
    pub(super) fn mknodat(dir: BorrowedFd<'_>, name: &CStr, st: &Stat) -> Result<(), Errno> {
        rfs::mknodat(
            dir,
            name,
            kind_of(st),
            mk_mode(mode_of(st) & PERM_BITS),
            st.st_rdev as rfs::Dev,
        )
    }

    // rustix has no mknodat/mkfifoat on Apple platforms; macOS 13+ has
    // them in libc, looked up at run time by cow-sys (`ENOSYS` before 13).
    #[cfg(target_os = "macos")]
    #[allow(clippy::unnecessary_cast)]
    pub(super) fn mkfifoat(dir: BorrowedFd<'_>, name: &CStr, mode: Mode) -> Result<(), Errno> {
        cow_sys::macos::mkfifoat(dir, name, mode.as_raw_mode() as u16).map_err(to_errno)
    }

    #[cfg(target_os = "macos")]
    #[allow(clippy::unnecessary_cast)]
    pub(super) fn mknodat(dir: BorrowedFd<'_>, name: &CStr, st: &Stat) -> Result<(), Errno> {
        // The file type and the permission bits, as on the other Unixes.
        let mode = kind_of(st).as_raw_mode() as u32 | (mode_of(st) & PERM_BITS);
        cow_sys::macos::mknodat(dir, name, mode as u16, st.st_rdev as i32).map_err(to_errno)
    }

    #[cfg(target_os = "macos")]
    pub(super) fn to_errno(e: io::Error) -> Errno {
        e.raw_os_error().map_or(Errno::IO, Errno::from_raw_os_error)
    }

    // Other Apple platforms: not bound.
    #[cfg(all(target_vendor = "apple", not(target_os = "macos")))]
    pub(super) fn mkfifoat(_dir: BorrowedFd<'_>, _name: &CStr, _mode: Mode) -> Result<(), Errno> {
        Err(Errno::NOSYS)
    }

    #[cfg(all(target_vendor = "apple", not(target_os = "macos")))]
    pub(super) fn mknodat(_dir: BorrowedFd<'_>, _name: &CStr, _st: &Stat) -> Result<(), Errno> {
        Err(Errno::NOSYS)
    }
}

/// Gives a just-created entry (never followed) the owner of `st`; when the
/// user cannot be kept, keeps at least the group. Returns whether the full
/// owner was kept.
pub(super) fn chown_entry(st: &Stat, dst_dir: BorrowedFd<'_>, dst_name: &CStr) -> bool {
    let (uid, gid) = owner_of(st);
    let nofollow = AtFlags::SYMLINK_NOFOLLOW;
    if rfs::chownat(dst_dir, dst_name, Some(uid), Some(gid), nofollow).is_ok() {
        return true;
    }
    let _ = rfs::chownat(dst_dir, dst_name, None, Some(gid), nofollow);
    false
}
