//! The directory walk: listing, descending, creating and finishing directories.

use super::*;

/// The chain of source directories above the current one, to catch cycles
/// (symlinks followed with `Dereference::Always`, or bind-mount loops).
pub(super) struct Ancestors<'p> {
    pub(super) id: Id,
    pub(super) parent: Option<&'p Ancestors<'p>>,
}

impl Ancestors<'_> {
    pub(super) fn contains(&self, id: Id) -> bool {
        let mut cur = Some(self);
        while let Some(a) = cur {
            if a.id == id {
                return true;
            }
            cur = a.parent;
        }
        false
    }
}

/// A destination directory being filled.
pub(super) struct DstDir {
    pub(super) fd: OwnedFd,
    /// Whether the walk created it.
    pub(super) created: bool,
    /// The mode to restore after the children were written, when the walk
    /// had to add owner `rwx` to fill it.
    pub(super) restore: Option<u32>,
    /// The directory's device, when it was stat'ed anyway.
    pub(super) dev: Option<u64>,
}

/// What the walk knows about a destination directory, for the files copied
/// into it.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct DirHint {
    /// The walk created it (its entries most likely do not exist yet).
    pub(super) new: bool,
    /// Its device.
    pub(super) dev: Option<u64>,
}

pub(super) enum MakeDirError {
    /// Something other than a directory is there.
    NotADirectory,
    Io(&'static str, Errno),
}

/// Creates the directory `name` in `parent` (or opens the existing one) with
/// the source's permission bits minus the umask, writable by the owner until
/// [`Walker::finish_dir`] runs.
pub(super) fn make_dir(
    parent: BorrowedFd<'_>,
    name: &CStr,
    src_st: &Stat,
) -> Result<DstDir, MakeDirError> {
    let want = mk_mode(mode_of(src_st) & PERM_BITS);
    match rfs::mkdirat(parent, name, want) {
        Ok(()) => {
            let fd = rfs::openat(parent, name, dir_flags(false), Mode::empty())
                .map_err(|e| MakeDirError::Io("open new directory", e))?;
            let st = rfs::fstat(&fd).map_err(|e| MakeDirError::Io("stat new directory", e))?;
            let actual = mode_of(&st) & MODE_BITS;
            let mut restore = None;
            if actual & OWNER_RWX != OWNER_RWX {
                rfs::fchmod(&fd, mk_mode(actual | OWNER_RWX))
                    .map_err(|e| MakeDirError::Io("make new directory writable", e))?;
                restore = Some(actual);
            }
            Ok(DstDir {
                fd,
                created: true,
                restore,
                dev: Some(st.st_dev as u64),
            })
        }
        Err(Errno::EXIST) => {
            let st = rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| MakeDirError::Io("stat existing destination", e))?;
            if kind_of(&st) != FileType::Directory {
                return Err(MakeDirError::NotADirectory);
            }
            let fd = rfs::openat(parent, name, dir_flags(false), Mode::empty())
                .map_err(|e| MakeDirError::Io("open existing directory", e))?;
            Ok(DstDir {
                fd,
                created: false,
                restore: None,
                dev: Some(st.st_dev as u64),
            })
        }
        Err(e) => Err(MakeDirError::Io("create directory", e)),
    }
}

/// One entry of a listing.
pub(super) struct Child {
    pub(super) name: CString,
    pub(super) kind: FileType,
    /// The entry's status; `None` for regular files and directories whose
    /// type the directory listing gave, when nothing else needs it (the
    /// engine and the directory walk stat what they open anyway).
    pub(super) st: Option<Stat>,
}

impl Walker<'_> {
    /// Lists `src` (a directory) with each entry's status.
    pub(super) fn list(&self, src: BorrowedFd<'_>, rel: &Path) -> Option<Vec<Child>> {
        let mut dir = match Dir::read_from(src) {
            Ok(d) => d,
            Err(e) => {
                self.fail(rel, EntryKind::Dir, "read directory", e);
                return None;
            }
        };
        let stat_flags = if self.follow_all {
            AtFlags::empty()
        } else {
            AtFlags::SYMLINK_NOFOLLOW
        };
        // Regular files and directories skip the stat when the listing
        // says what they are and nothing needs their status up front.
        let stat_all = self.follow_all
            || self.shared.opts.preserve_hard_links
            || self.shared.opts.progress.is_some();
        let mut out = Vec::new();
        let (mut files, mut bytes) = (0u64, 0u64);
        while let Some(ent) = dir.read() {
            let ent = match ent {
                Ok(e) => e,
                Err(e) => {
                    self.fail(rel, EntryKind::Dir, "read directory", e);
                    break;
                }
            };
            let name = ent.file_name();
            if name == c"." || name == c".." {
                continue;
            }
            let listed = ent.file_type();
            if !stat_all && matches!(listed, FileType::RegularFile | FileType::Directory) {
                files += u64::from(listed == FileType::RegularFile);
                out.push(Child {
                    name: name.to_owned(),
                    kind: listed,
                    st: None,
                });
                continue;
            }
            match rfs::statat(src, name, stat_flags) {
                Ok(st) => {
                    if kind_of(&st) == FileType::RegularFile {
                        files += 1;
                        bytes += size_of(&st);
                    }
                    out.push(Child {
                        name: name.to_owned(),
                        kind: kind_of(&st),
                        st: Some(st),
                    });
                }
                Err(e) => {
                    let crel = rel.join(os_name(name));
                    self.fail(&crel, EntryKind::File, "stat", e);
                }
            }
        }
        drop(dir);
        self.shared.counters.discovered(files, bytes);
        self.shared.notify();
        Some(out)
    }

    /// Copies every entry of `src` into `dst`.
    pub(super) fn copy_contents(
        &self,
        src: BorrowedFd<'_>,
        dst: BorrowedFd<'_>,
        dst_new: DirHint,
        rel: &Path,
        anc: &Ancestors<'_>,
    ) {
        let Some(children) = self.list(src, rel) else {
            return;
        };
        let each = |c: &Child| {
            if self.shared.stopped() {
                return;
            }
            let crel = rel.join(os_name(&c.name));
            self.entry(
                src,
                &c.name,
                c.kind,
                c.st.as_ref(),
                dst,
                &c.name,
                &crel,
                self.follow_all,
                Some(anc),
                dst_new,
            );
        };
        if !self.parallel || children.len() <= 1 {
            children.iter().for_each(each);
        } else if self.open_dirs.load(Ordering::Relaxed) < self.dir_budget {
            children.par_iter().for_each(each);
        } else {
            // Each directory in flight holds two descriptors, and rayon's
            // work stealing can nest many of them on one thread: near the
            // budget, files are still copied in parallel but subdirectories
            // are walked one at a time (no new stealable directory jobs).
            let (dirs, others): (Vec<&Child>, Vec<&Child>) =
                children.iter().partition(|c| c.kind == FileType::Directory);
            others.par_iter().for_each(|c| each(c));
            dirs.into_iter().for_each(each);
        }
    }

    /// Copies one entry whose status is `st`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn entry(
        &self,
        src_dir: BorrowedFd<'_>,
        src_name: &CStr,
        kind: FileType,
        st: Option<&Stat>,
        dst_dir: BorrowedFd<'_>,
        dst_name: &CStr,
        rel: &Path,
        follow: bool,
        anc: Option<&Ancestors<'_>>,
        dst_new: DirHint,
    ) {
        // Regular files and directories may come without a status; every
        // other kind was stat'ed by the listing (or is the root).
        let need = |st: Option<&Stat>| -> Option<Stat> {
            match st {
                Some(s) => Some(*s),
                None => match rfs::statat(src_dir, src_name, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        self.fail(rel, EntryKind::File, "stat", e);
                        None
                    }
                },
            }
        };
        if !matches!(kind, FileType::Directory | FileType::RegularFile) {
            let Some(st) = need(st) else { return };
            return self.entry_stat(src_dir, src_name, &st, dst_dir, dst_name, rel);
        }
        match kind {
            FileType::Directory => self.dir(src_dir, src_name, dst_dir, dst_name, rel, follow, anc),
            FileType::RegularFile => self.file(
                src_dir, src_name, st, dst_dir, dst_name, rel, follow, dst_new,
            ),
            _ => unreachable!("only directories and regular files get here"),
        }
    }

    /// Copies an entry that is neither a directory nor a regular file.
    pub(super) fn entry_stat(
        &self,
        src_dir: BorrowedFd<'_>,
        src_name: &CStr,
        st: &Stat,
        dst_dir: BorrowedFd<'_>,
        dst_name: &CStr,
        rel: &Path,
    ) {
        match kind_of(st) {
            FileType::Symlink => self.symlink(src_dir, src_name, st, dst_dir, dst_name, rel),
            FileType::Fifo => self.fifo(st, dst_dir, dst_name, rel),
            FileType::CharacterDevice | FileType::BlockDevice => {
                self.special(st, dst_dir, dst_name, rel, EntryKind::Device)
            }
            FileType::Socket => self.special(st, dst_dir, dst_name, rel, EntryKind::Socket),
            FileType::Directory | FileType::RegularFile | FileType::Unknown => self.fail(
                rel,
                EntryKind::File,
                "copy (unknown file type)",
                Errno::INVAL,
            ),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn dir(
        &self,
        src_dir: BorrowedFd<'_>,
        src_name: &CStr,
        dst_dir: BorrowedFd<'_>,
        dst_name: &CStr,
        rel: &Path,
        follow: bool,
        anc: Option<&Ancestors<'_>>,
    ) {
        // O_NOFOLLOW: a directory swapped for a symlink since it was listed
        // fails here (ELOOP/ENOTDIR) instead of being followed.
        let _held = DirPair::new(&self.open_dirs);
        let src = match rfs::openat(src_dir, src_name, dir_flags(follow), Mode::empty()) {
            Ok(fd) => fd,
            Err(e) => return self.fail(rel, EntryKind::Dir, "open directory", e),
        };
        let st = match rfs::fstat(&src) {
            Ok(st) => st,
            Err(e) => return self.fail(rel, EntryKind::Dir, "stat directory", e),
        };
        let id = id_of(&st);
        if anc.is_some_and(|a| a.contains(id)) {
            return self.fail(
                rel,
                EntryKind::Dir,
                "copy directory (it contains itself through a symlink or mount)",
                Errno::LOOP,
            );
        }
        let dst = match make_dir(dst_dir, dst_name, &st) {
            Ok(d) => d,
            Err(MakeDirError::NotADirectory) => {
                return self.shared.fail(
                    rel,
                    EntryKind::Dir,
                    "create directory",
                    io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        "cannot overwrite non-directory with directory",
                    ),
                );
            }
            Err(MakeDirError::Io(op, e)) => return self.fail(rel, EntryKind::Dir, op, e),
        };
        self.shared.totals.bump(Count::Dirs);
        self.shared.record(
            rel,
            EntryKind::Dir,
            if dst.created {
                EntryAction::Created
            } else {
                EntryAction::Merged
            },
            None,
        );
        let node = Ancestors { id, parent: anc };
        let hint = DirHint {
            new: dst.created,
            dev: dst.dev,
        };
        // `cp -x`: a mount point is created but not entered.
        let other_fs = self.shared.opts.one_file_system
            && rfs::fstat(src_dir).is_ok_and(|parent| parent.st_dev != st.st_dev);
        if !other_fs {
            self.copy_contents(src.as_fd(), dst.fd.as_fd(), hint, rel, &node);
        }
        self.finish_dir(src.as_fd(), &st, &dst, rel);
    }

    /// Applies a directory's metadata once its children are written: xattrs,
    /// owner, mode, then times (last, since the others change ctime only).
    pub(super) fn finish_dir(&self, src: BorrowedFd<'_>, st: &Stat, dst: &DstDir, rel: &Path) {
        let p = self.preserve;
        // Queued renames into this directory must happen before its times
        // are set, or while it is still writable.
        if p.timestamps || dst.restore.is_some() || (p.mode && mode_of(st) & 0o300 != 0o300) {
            self.flush();
        }
        let fd = dst.fd.as_fd();
        let mut mode = mode_of(st) & MODE_BITS;
        if p.xattrs {
            let r = xattr::copy(&src, &fd);
            self.xattrs_copied(rel, "copy directory xattrs", r);
        }
        if p.ownership {
            let (uid, gid) = owner_of(st);
            if rfs::fchown(fd, Some(uid), Some(gid)).is_err() {
                // Like cp -p: keep the group if allowed, drop setuid/setgid.
                let _ = rfs::fchown(fd, None, Some(gid));
                mode &= !SUID_SGID;
            }
        }
        let set_mode = if p.mode { Some(mode) } else { dst.restore };
        if let Some(m) = set_mode {
            if let Err(e) = rfs::fchmod(fd, mk_mode(m)) {
                self.fail_meta(rel, "set directory mode", e);
            }
        }
        if p.timestamps {
            if let Err(e) = rfs::futimens(fd, &times_of(st)) {
                self.fail_meta(rel, "set directory times", e);
            }
        }
    }
}
