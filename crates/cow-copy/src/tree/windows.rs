//! The Windows walker: a plain `std::fs` walk (paths, not handles).
//!
//! Windows has no `openat`; entries are reached by path and symlinks
//! (reparse points) are recreated, never followed, unless the dereference
//! policy says so.

use std::fs;
use std::io;
use std::path::Path;

use rayon::prelude::*;

use super::{
    Count, Dereference, EntryAction, EntryKind, Shared, TreeError, TreeOptions, TreeReport,
};
use crate::{CopyOptions, Overwrite};

pub(super) fn copy_tree(
    src: &Path,
    dst: &Path,
    opts: &TreeOptions,
) -> Result<TreeReport, TreeError> {
    let follow_root = opts.dereference != Dereference::Never;
    let meta = if follow_root {
        fs::metadata(src)
    } else {
        fs::symlink_metadata(src)
    }
    .map_err(|e| TreeError::Io {
        op: "stat",
        path: src.to_path_buf(),
        source: e,
    })?;
    if meta.is_dir() {
        if let Ok(d) = fs::symlink_metadata(dst) {
            if !d.is_dir() {
                return Err(TreeError::NotADirectory {
                    src: src.to_path_buf(),
                    dst: dst.to_path_buf(),
                });
            }
        }
        if let (Ok(s), Ok(d)) = (fs::canonicalize(src), canonical_parent(dst)) {
            if d.starts_with(&s) {
                return Err(TreeError::IntoItself {
                    src: src.to_path_buf(),
                    dst: dst.to_path_buf(),
                });
            }
        }
    }
    let walker = Walker {
        shared: Shared::new(opts, src, dst),
        file_opts: crate::cancel::file_options(opts)
            .follow_symlinks(opts.dereference == Dereference::Always),
        follow_all: opts.dereference == Dereference::Always,
        no_clobber: opts.copy.overwrite_policy() == Overwrite::NoClobber,
        parallel: false,
    };
    super::with_pool(opts.worker_count(), |parallel| {
        let walker = Walker { parallel, ..walker };
        walker.entry(src, &meta, dst, Path::new(""));
        Ok(walker.shared.finish())
    })
}

fn canonical_parent(dst: &Path) -> io::Result<std::path::PathBuf> {
    match dst.parent() {
        Some(p) if !p.as_os_str().is_empty() => fs::canonicalize(p),
        _ => fs::canonicalize("."),
    }
}

struct Walker<'a> {
    shared: Shared<'a>,
    file_opts: CopyOptions,
    follow_all: bool,
    no_clobber: bool,
    parallel: bool,
}

impl Walker<'_> {
    fn entry(&self, src: &Path, meta: &fs::Metadata, dst: &Path, rel: &Path) {
        let ft = meta.file_type();
        if ft.is_dir() {
            self.dir(src, dst, rel);
        } else if ft.is_symlink() {
            self.symlink(src, dst, rel);
        } else if ft.is_file() {
            let len = meta.len();
            self.shared.counters.discovered(1, len);
            let r = self.file_opts.copy(src, dst);
            self.shared.file_result(rel, len, r);
        } else {
            self.shared.totals.bump(Count::Skipped);
            self.shared
                .record(rel, EntryKind::Device, EntryAction::Skipped, None);
            self.shared.warn(rel, "special file not copied".into());
        }
    }

    fn dir(&self, src: &Path, dst: &Path, rel: &Path) {
        let action = match fs::create_dir(dst) {
            Ok(()) => EntryAction::Created,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dst.is_dir() => {
                EntryAction::Merged
            }
            Err(e) => return self.shared.fail(rel, EntryKind::Dir, "create directory", e),
        };
        self.shared.totals.bump(Count::Dirs);
        self.shared.record(rel, EntryKind::Dir, action, None);
        let rd = match fs::read_dir(src) {
            Ok(rd) => rd,
            Err(e) => return self.shared.fail(rel, EntryKind::Dir, "read directory", e),
        };
        let mut children = Vec::new();
        for e in rd {
            match e {
                Ok(e) => children.push(e),
                Err(e) => self.shared.fail(rel, EntryKind::Dir, "read directory", e),
            }
        }
        let each = |e: &fs::DirEntry| {
            if self.shared.stopped() {
                return;
            }
            let name = e.file_name();
            let crel = rel.join(&name);
            let path = e.path();
            let meta = if self.follow_all {
                fs::metadata(&path)
            } else {
                fs::symlink_metadata(&path)
            };
            match meta {
                Ok(m) => self.entry(&path, &m, &dst.join(&name), &crel),
                Err(e) => self.shared.fail(&crel, EntryKind::File, "stat", e),
            }
        };
        if self.parallel {
            children.par_iter().for_each(each);
        } else {
            children.iter().for_each(each);
        }
        if let Ok(m) = fs::metadata(src) {
            if self.shared.opts.copy.preserve_policy().mode && m.permissions().readonly() {
                if let Err(e) = fs::set_permissions(dst, m.permissions()) {
                    self.shared.fail_meta(rel, "set directory attributes", e);
                }
            }
        }
    }

    fn symlink(&self, src: &Path, dst: &Path, rel: &Path) {
        let target = match fs::read_link(src) {
            Ok(t) => t,
            Err(e) => return self.shared.fail(rel, EntryKind::Symlink, "read symlink", e),
        };
        if fs::symlink_metadata(dst).is_ok() {
            if self.no_clobber {
                self.shared.totals.bump(Count::Skipped);
                self.shared
                    .record(rel, EntryKind::Symlink, EntryAction::Skipped, None);
                return;
            }
            if let Err(e) = fs::remove_file(dst) {
                return self
                    .shared
                    .fail(rel, EntryKind::Symlink, "remove existing destination", e);
            }
        }
        let to_dir = fs::metadata(src).map(|m| m.is_dir()).unwrap_or(false);
        let made = if to_dir {
            std::os::windows::fs::symlink_dir(&target, dst)
        } else {
            std::os::windows::fs::symlink_file(&target, dst)
        };
        match made {
            Ok(()) => {
                self.shared.totals.bump(Count::Symlinks);
                self.shared
                    .record(rel, EntryKind::Symlink, EntryAction::Created, None);
            }
            Err(e) => self
                .shared
                .fail(rel, EntryKind::Symlink, "create symlink", e),
        }
    }
}
