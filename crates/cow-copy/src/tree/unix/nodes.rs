//! Symlinks, FIFOs, devices and sockets: created with `*at` calls; their
//! metadata is applied through a descriptor of the entry that was created.

use super::*;
use crate::fault::{Site, fault};

/// What kind of node [`Walker::place`] makes.
pub(super) struct Node {
    kind: EntryKind,
    /// The operation, for errors.
    op: &'static str,
    count: Count,
}

impl Walker<'_> {
    /// Creates the node `dst_name` in `dst_dir` with `create` (given a
    /// directory and a name), replacing an existing non-directory unless
    /// no-clobber, applies its metadata (`link_src`: the source symlink, for
    /// its xattrs) and records it.
    ///
    /// Where someone else can change `dst_dir`'s entries, the node is made
    /// in a private directory inside it ([`Staging`]), given its metadata
    /// there and then renamed into place: nothing another user puts under
    /// its name, at any moment, receives that metadata.
    #[allow(clippy::too_many_arguments)]
    fn place(
        &self,
        st: &Stat,
        dst_dir: BorrowedFd<'_>,
        dst_name: &CStr,
        rel: &Path,
        node: Node,
        link_src: Option<(BorrowedFd<'_>, &CStr)>,
        create: impl Fn(BorrowedFd<'_>, &CStr) -> Result<(), Errno>,
    ) {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if crate::guard::others_can_change(dst_dir) {
            return self.place_staged(st, dst_dir, dst_name, rel, node, link_src, create);
        }
        let Node { kind, op, count } = node;
        let action = self.create_non_dir(dst_dir, dst_name, rel, kind, op, |n| create(dst_dir, n));
        if self.created(rel, kind, action, count) {
            self.node_meta(st, dst_dir, dst_name, rel, link_src);
        }
    }

    /// [`Walker::place`] through a private directory (Linux: other Unixes
    /// have no no-replace rename here, and set the metadata in place after
    /// checking the node; see [`Created`]).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[allow(clippy::too_many_arguments)]
    fn place_staged(
        &self,
        st: &Stat,
        dst_dir: BorrowedFd<'_>,
        dst_name: &CStr,
        rel: &Path,
        node: Node,
        link_src: Option<(BorrowedFd<'_>, &CStr)>,
        create: impl Fn(BorrowedFd<'_>, &CStr) -> Result<(), Errno>,
    ) {
        let Node { kind, op, count } = node;
        let stage = match Staging::new(dst_dir, dst_name) {
            Ok(s) => s,
            Err(e) => return self.fail(rel, kind, "create a private directory for", e),
        };
        if let Err(e) = create(stage.fd(), dst_name) {
            return self.fail(rel, kind, op, e);
        }
        self.node_meta(st, stage.fd(), dst_name, rel, link_src);
        let action = self.move_into_place(stage.fd(), dst_dir, dst_name, rel, kind);
        if action.is_none() || action == Some(EntryAction::Skipped) {
            let _ = rfs::unlinkat(stage.fd(), dst_name, AtFlags::empty());
        }
        self.created(rel, kind, action, count);
    }

    /// Renames `name` from the private directory `stage` to `dst_dir`:
    /// without replacing first, then (unless no-clobber) over an existing
    /// non-directory.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn move_into_place(
        &self,
        stage: BorrowedFd<'_>,
        dst_dir: BorrowedFd<'_>,
        name: &CStr,
        rel: &Path,
        kind: EntryKind,
    ) -> Option<EntryAction> {
        use rustix::fs::RenameFlags;
        match rfs::renameat_with(stage, name, dst_dir, name, RenameFlags::NOREPLACE) {
            Ok(()) => return Some(EntryAction::Created),
            Err(Errno::EXIST) => {}
            Err(e) => {
                self.fail(rel, kind, "move into place", e);
                return None;
            }
        }
        match rfs::statat(dst_dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(existing) if kind_of(&existing) == FileType::Directory => {
                self.shared
                    .fail(rel, kind, "move into place", over_directory());
                return None;
            }
            _ if self.no_clobber => return Some(EntryAction::Skipped),
            _ => {}
        }
        match rfs::renameat(stage, name, dst_dir, name) {
            Ok(()) => Some(EntryAction::Replaced),
            Err(e) => {
                self.fail(rel, kind, "move into place", e);
                None
            }
        }
    }

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
                    self.shared.fail(rel, kind, op, over_directory());
                    return None;
                }
                if self.no_clobber {
                    return Some(EntryAction::Skipped);
                }
                // Create the new entry under a temporary name (the one rule
                // of `replace::temp_name`, listed for `remove_temporaries`)
                // and rename it over the old one: the destination is never
                // missing.
                let made =
                    crate::replace::create_temp_with(dst_dir, os_name(dst_name).as_os_str(), |t| {
                        let t = CString::new(t.as_bytes())
                            .map_err(|_| io::Error::from(Errno::INVAL))?;
                        create(&t)?;
                        Ok(t)
                    });
                if let Ok((tmp, _listed)) = made {
                    match fault!(
                        Site::Rename,
                        rfs::renameat(dst_dir, &tmp, dst_dir, dst_name)
                    ) {
                        Ok(()) => return Some(EntryAction::Replaced),
                        Err(_) => {
                            let _ = fault!(
                                Site::Unlink,
                                rfs::unlinkat(dst_dir, &tmp, AtFlags::empty())
                            );
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
        let node = Node {
            kind: EntryKind::Symlink,
            op: "create symlink",
            count: Count::Symlinks,
        };
        self.place(
            st,
            dst_dir,
            dst_name,
            rel,
            node,
            Some((src_dir, src_name)),
            |dir, name| rfs::symlinkat(target.as_c_str(), dir, name),
        );
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
        let node = Node {
            kind: EntryKind::Fifo,
            op: "create FIFO",
            count: Count::Fifos,
        };
        self.place(st, dst_dir, dst_name, rel, node, None, |dir, name| {
            sys::mkfifoat(dir, name, mode)
        });
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
        let node = Node {
            kind,
            op: "create special file",
            count: Count::Specials,
        };
        self.place(st, dst_dir, dst_name, rel, node, None, |dir, name| {
            sys::mknodat(dir, name, st)
        });
    }

    /// Applies the source's owner, mode (not to a symlink) and times, and a
    /// symlink's xattrs (`link_src`: the source symlink), to the node just
    /// created as `dst_name`, through a handle checked to be that node (see
    /// [`Created`]): never to whatever was put under the name meanwhile.
    fn node_meta(
        &self,
        st: &Stat,
        dst_dir: BorrowedFd<'_>,
        dst_name: &CStr,
        rel: &Path,
        link_src: Option<(BorrowedFd<'_>, &CStr)>,
    ) {
        let p = self.preserve;
        let link_src = link_src.filter(|_| p.xattrs);
        if !(p.ownership || p.mode || p.timestamps || link_src.is_some()) {
            return;
        }
        let node = match Created::open(dst_dir, dst_name, st) {
            Ok(n) => n,
            Err(e) => return self.shared.fail_meta(rel, "set metadata", e.into_io()),
        };
        let is_link = kind_of(st) == FileType::Symlink;
        let mut mode = mode_of(st) & MODE_BITS;
        if p.ownership {
            let (uid, gid) = owner_of(st);
            if node.chown(Some(uid), Some(gid)).is_err() {
                // Like cp -p: keep the group if allowed; the owner is not
                // kept, so setuid/setgid go.
                let _ = node.chown(None, Some(gid));
                mode = keep_set_ids(mode, (uid.as_raw(), gid.as_raw()), None);
            }
        }
        if let Some((src_dir, src_name)) = link_src {
            self.symlink_xattrs(src_dir, src_name, dst_dir, dst_name, rel);
        }
        if p.mode && !is_link {
            if let Err(e) = node.chmod(mk_mode(mode)) {
                self.fail_meta(rel, "set mode", e);
            }
        }
        if p.timestamps {
            if let Err(e) = node.set_times(&times_of(st)) {
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
