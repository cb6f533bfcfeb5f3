//! Directories: listing, creating, descending into and finishing them.

use super::*;

/// The chain of source directories from the root down to one directory,
/// to catch cycles (symlinks followed with `Dereference::Always`, or
/// bind-mount loops). Shared: each directory's node points at its parent's.
pub(super) struct Ancestors {
    pub(super) id: Id,
    pub(super) parent: Option<Arc<Ancestors>>,
}

impl Ancestors {
    pub(super) fn contains(&self, id: Id) -> bool {
        let mut cur = Some(self);
        while let Some(a) = cur {
            if a.id == id {
                return true;
            }
            cur = a.parent.as_deref();
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

    /// Copies every entry of `src` into `dst` (the directory `rel`, at
    /// `depth` below the root) and returns its subdirectories, which the
    /// caller walks ([`Walker::subtree`]). Near the root, when the walk is
    /// parallel and the descriptor budget allows, the subdirectories are
    /// walked here instead, one parallel job each (so the parallel nesting
    /// is at most [`PAR_DEPTH`] deep), and none are returned.
    pub(super) fn copy_contents(
        &self,
        src: BorrowedFd<'_>,
        dst: BorrowedFd<'_>,
        dst_new: DirHint,
        rel: &Path,
        anc: &Arc<Ancestors>,
        depth: usize,
    ) -> Vec<Child> {
        let Some(children) = self.list(src, rel) else {
            return Vec::new();
        };
        let each = |c: &Child| {
            if self.shared.stopped() {
                return;
            }
            let crel = rel.join(os_name(&c.name));
            if c.kind == FileType::Directory {
                return self.subtree(src, dst, c, crel, anc, depth + 1);
            }
            self.entry(
                src,
                &c.name,
                c.kind,
                c.st.as_ref(),
                dst,
                &c.name,
                &crel,
                self.follow_all,
                dst_new,
            );
        };
        let dirs_here = self.parallel
            && depth < PAR_DEPTH
            && self.open_dirs.load(Ordering::Relaxed) < self.dir_budget;
        if dirs_here {
            if children.len() <= 1 {
                children.iter().for_each(each);
            } else {
                children.par_iter().for_each(each);
            }
            return Vec::new();
        }
        // Each directory in flight holds descriptors, and rayon's work
        // stealing can nest many of them on one thread: files are copied in
        // parallel, subdirectories are left to the caller's stack.
        let (dirs, others): (Vec<Child>, Vec<Child>) = children
            .into_iter()
            .partition(|c| c.kind == FileType::Directory);
        if self.parallel && others.len() > 1 {
            others.par_iter().for_each(each);
        } else {
            others.iter().for_each(each);
        }
        dirs
    }

    /// Copies one entry (not a directory) whose status is `st`.
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
        dst_new: DirHint,
    ) {
        // Regular files may come without a status; every
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
        if kind == FileType::RegularFile {
            return self.file(
                src_dir, src_name, st, dst_dir, dst_name, rel, follow, dst_new,
            );
        }
        // A directory is walked by `copy_contents`, never as an entry.
        self.fail(
            rel,
            EntryKind::Dir,
            "copy (unexpected directory)",
            Errno::ISDIR,
        );
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

    /// Applies a directory's metadata once its children are written: xattrs,
    /// owner, mode, then times (last, since the others change ctime only).
    pub(super) fn finish_dir(
        &self,
        src: BorrowedFd<'_>,
        st: &Stat,
        fd: BorrowedFd<'_>,
        restore: Option<u32>,
        rel: &Path,
    ) {
        let p = self.preserve;
        // Queued renames into this directory must happen before its times
        // are set, or while it is still writable.
        if p.timestamps || restore.is_some() || (p.mode && mode_of(st) & 0o300 != 0o300) {
            self.flush();
        }
        let mut mode = mode_of(st) & MODE_BITS;
        if p.xattrs {
            let r = xattr::copy_fd(src, fd);
            self.xattrs_copied(rel, "copy directory xattrs", r);
        }
        if p.ownership {
            let (uid, gid) = owner_of(st);
            if rfs::fchown(fd, Some(uid), Some(gid)).is_err() {
                // Like cp -p: keep the group if allowed; the owner is not
                // kept, so setuid/setgid go.
                let _ = rfs::fchown(fd, None, Some(gid));
                mode = keep_set_ids(mode, (uid.as_raw(), gid.as_raw()), None);
            }
        }
        let set_mode = if p.mode { Some(mode) } else { restore };
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
