//! Hard links inside the tree: which worker copies a multiply-linked file
//! (the claim), and the links later names make to that first copy.

use super::*;

/// The state of a multiply-linked source file (by (device, inode)).
pub(super) enum LinkState {
    /// A worker is copying it now; others wait.
    Copying,
    /// Copied to this path relative to the destination root.
    Done(PathBuf),
    /// The copy failed: others copy it themselves.
    Failed,
}

pub(super) enum Claim {
    /// This worker copies it.
    Mine,
    /// Link to the first copy at this relative path.
    Link(PathBuf),
    /// Copy it independently.
    Copy,
}

impl Walker<'_> {
    /// Decides who copies a multiply-linked file: the first worker to see
    /// it; later ones wait for that copy and link to it.
    pub(super) fn claim(&self, key: Id) -> Claim {
        let mut links = super::super::lock(&self.links);
        loop {
            match links.get(&key) {
                None => {
                    links.insert(key, LinkState::Copying);
                    return Claim::Mine;
                }
                // The copying worker runs the copy synchronously and never
                // waits on this lock's condition itself, so this wait ends.
                Some(LinkState::Copying) => {
                    links = self
                        .link_done
                        .wait(links)
                        .unwrap_or_else(|p| p.into_inner());
                }
                Some(LinkState::Done(p)) => return Claim::Link(p.clone()),
                Some(LinkState::Failed) => return Claim::Copy,
            }
        }
    }

    pub(super) fn settle(&self, key: Id, done: Option<PathBuf>) {
        let mut links = super::super::lock(&self.links);
        links.insert(
            key,
            match done {
                Some(p) => LinkState::Done(p),
                None => LinkState::Failed,
            },
        );
        drop(links);
        self.link_done.notify_all();
    }

    /// Opens the destination directory holding `rel` by walking down from the
    /// destination root with `O_NOFOLLOW` at every step. Returns the
    /// directory (`None`: the root) and the last component.
    pub(super) fn open_dst_parent<'r>(
        &self,
        rel: &'r Path,
    ) -> Result<(Option<OwnedFd>, &'r OsStr), Errno> {
        let root = self.dst_root.ok_or(Errno::INVAL)?;
        let comps: Vec<&OsStr> = rel
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n),
                _ => None,
            })
            .collect();
        let (last, dirs) = comps.split_last().ok_or(Errno::INVAL)?;
        let mut cur: Option<OwnedFd> = None;
        for d in dirs {
            let base = cur.as_ref().map_or(root, |f| f.as_fd());
            let next = rfs::openat(base, *d, dir_base_flags() | OFlags::NOFOLLOW, Mode::empty())?;
            cur = Some(next);
        }
        Ok((cur, last))
    }

    /// Makes `dst_name` a hard link to the earlier copy at `first`. Returns
    /// `false` when linking is impossible and the file should be copied.
    pub(super) fn link(
        &self,
        first: &Path,
        dst_dir: BorrowedFd<'_>,
        dst_name: &CStr,
        rel: &Path,
        len: u64,
    ) -> bool {
        let (dir, last) = match self.open_dst_parent(first) {
            Ok(x) => x,
            Err(_) => return false,
        };
        let Some(root) = self.dst_root else {
            return false;
        };
        let base = dir.as_ref().map_or(root, |f| f.as_fd());
        let mut replaced = false;
        let mut result = rfs::linkat(base, last, dst_dir, dst_name, AtFlags::empty());
        if result == Err(Errno::EXIST) {
            let existing = rfs::statat(dst_dir, dst_name, AtFlags::SYMLINK_NOFOLLOW);
            let target = rfs::statat(base, last, AtFlags::SYMLINK_NOFOLLOW);
            match (existing, target) {
                (Ok(e), Ok(t)) if id_of(&e) == id_of(&t) => result = Ok(()),
                (Ok(e), _) if kind_of(&e) == FileType::Directory => {
                    self.shared
                        .fail(rel, EntryKind::File, "link", over_directory());
                    self.shared.file_done(len);
                    return true;
                }
                (Ok(_), _) if self.no_clobber => {
                    self.shared.totals.bump(Count::Skipped);
                    self.shared.totals.add_skipped_bytes(len);
                    self.shared
                        .record(rel, EntryKind::File, EntryAction::Skipped, None);
                    self.shared.file_done(len);
                    return true;
                }
                _ => {
                    replaced = true;
                    result = rfs::unlinkat(dst_dir, dst_name, AtFlags::empty()).and_then(|()| {
                        rfs::linkat(base, last, dst_dir, dst_name, AtFlags::empty())
                    });
                }
            }
        }
        match result {
            Ok(()) => {
                self.shared.totals.bump(Count::HardLinks);
                self.shared.totals.add_skipped_bytes(len);
                self.shared
                    .record(rel, EntryKind::File, EntryAction::Linked, None);
                self.shared.file_done(len);
                true
            }
            Err(e) if replaced => {
                self.fail(rel, EntryKind::File, "replace with hard link", e);
                self.shared.file_done(len);
                true
            }
            Err(e) => {
                self.shared.warn(
                    rel,
                    format!(
                        "could not hard-link to {}: {}; copied instead",
                        first.display(),
                        errno(e)
                    ),
                );
                false
            }
        }
    }
}
