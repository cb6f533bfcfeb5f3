//! The root of a tree copy: resolving the destination, refusing a
//! destination inside the source, and starting the walk.

use super::*;

/// Where the copy goes.
enum Dest {
    /// `name` inside the directory `parent` (the usual case).
    Named { parent: OwnedFd, name: CString },
    /// An existing directory, named with a trailing `/` or `.`.
    Dir(OwnedFd),
}

fn setup_err(op: &'static str, path: &Path, e: Errno) -> TreeError {
    TreeError::Io {
        op,
        path: path.to_path_buf(),
        source: errno(e),
    }
}

fn cstring(p: &Path) -> Result<CString, TreeError> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| TreeError::Io {
        op: "use path",
        path: p.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"),
    })
}

/// Whether the path ends in a way that names a directory itself: a trailing
/// slash, `.` or `..`.
fn names_dir_itself(p: &Path) -> bool {
    let b = p.as_os_str().as_bytes();
    b.ends_with(b"/") || b == b"." || b == b".." || b.ends_with(b"/.") || b.ends_with(b"/..")
}

fn resolve_dest(dst: &Path) -> Result<Dest, TreeError> {
    if names_dir_itself(dst) {
        match rfs::statat(CWD, dst, AtFlags::empty()) {
            Ok(st) if kind_of(&st) == FileType::Directory => {
                let fd = rfs::openat(CWD, dst, dir_flags(true), Mode::empty())
                    .map_err(|e| setup_err("open destination directory", dst, e))?;
                return Ok(Dest::Dir(fd));
            }
            Ok(_) => {
                return Err(setup_err("use destination", dst, Errno::NOTDIR));
            }
            Err(Errno::NOENT) if dst.file_name().is_some() => {}
            Err(e) => return Err(setup_err("stat destination", dst, e)),
        }
    }
    let name = dst
        .file_name()
        .ok_or_else(|| setup_err("use destination", dst, Errno::INVAL))?;
    let parent = match dst.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let parent_fd = rfs::openat(CWD, parent, dir_flags(true), Mode::empty())
        .map_err(|e| setup_err("open destination directory", parent, e))?;
    Ok(Dest::Named {
        parent: parent_fd,
        name: cstring(Path::new(name))?,
    })
}

/// Refuses a destination whose directory `start` is the source directory or
/// lies inside it: walks `..` from `start` up to the root comparing (device,
/// inode) with the source's.
fn check_not_inside(
    src_id: Id,
    start: BorrowedFd<'_>,
    src: &Path,
    dst: &Path,
) -> Result<(), TreeError> {
    let into_itself = || TreeError::IntoItself {
        src: src.to_path_buf(),
        dst: dst.to_path_buf(),
    };
    let mut cur = match rfs::openat(start, c".", dir_base_flags(), Mode::empty()) {
        Ok(fd) => fd,
        Err(e) => return Err(setup_err("open destination directory", dst, e)),
    };
    let mut st = rfs::fstat(&cur).map_err(|e| setup_err("stat destination directory", dst, e))?;
    // A path deeper than this is not a real filesystem; stop rather than loop.
    for _ in 0..4096 {
        if id_of(&st) == src_id {
            return Err(into_itself());
        }
        let up = match rfs::openat(&cur, c"..", dir_base_flags(), Mode::empty()) {
            Ok(fd) => fd,
            // An ancestor we may not search cannot be the source we could read.
            Err(Errno::ACCESS) => return Ok(()),
            Err(e) => return Err(setup_err("open parent of destination", dst, e)),
        };
        let ust = rfs::fstat(&up).map_err(|e| setup_err("stat parent of destination", dst, e))?;
        if id_of(&ust) == id_of(&st) {
            return Ok(());
        }
        cur = up;
        st = ust;
    }
    Ok(())
}

pub(in super::super) fn copy_tree(
    src: &Path,
    dst: &Path,
    opts: &TreeOptions,
) -> Result<TreeReport, TreeError> {
    let follow_root = opts.dereference != Dereference::Never;
    let st = rfs::statat(
        CWD,
        src,
        if follow_root {
            AtFlags::empty()
        } else {
            AtFlags::SYMLINK_NOFOLLOW
        },
    )
    .map_err(|e| setup_err("stat", src, e))?;
    let dest = resolve_dest(dst)?;
    let is_dir = kind_of(&st) == FileType::Directory;

    if !is_dir {
        let (parent, name) = match &dest {
            Dest::Named { parent, name } => (parent, name),
            Dest::Dir(_) => {
                return Err(setup_err("copy to", dst, Errno::ISDIR));
            }
        };
        let src_c = cstring(src)?;
        let shared = Shared::new(opts, src, dst);
        let walker = Walker::new(shared, opts, None, false);
        walker.shared.counters.discovered(
            u64::from(kind_of(&st) == FileType::RegularFile),
            size_of(&st),
        );
        walker.entry(
            CWD,
            &src_c,
            kind_of(&st),
            Some(&st),
            parent.as_fd(),
            name,
            Path::new(""),
            follow_root,
            DirHint::default(),
        );
        return Ok(walker.finish());
    }

    let src_fd = rfs::openat(CWD, src, dir_flags(follow_root), Mode::empty())
        .map_err(|e| setup_err("open directory", src, e))?;
    let src_st = rfs::fstat(&src_fd).map_err(|e| setup_err("stat", src, e))?;
    let src_id = id_of(&src_st);

    // Refuse a destination inside the source, and the source itself.
    let dst_dir = match &dest {
        Dest::Dir(fd) => {
            let st = rfs::fstat(fd).map_err(|e| setup_err("stat", dst, e))?;
            if id_of(&st) == src_id {
                return Err(TreeError::SameFile {
                    src: src.to_path_buf(),
                    dst: dst.to_path_buf(),
                });
            }
            check_not_inside(src_id, fd.as_fd(), src, dst)?;
            None
        }
        Dest::Named { parent, name } => {
            if let Ok(st) = rfs::statat(parent, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW) {
                if id_of(&st) == src_id {
                    return Err(TreeError::SameFile {
                        src: src.to_path_buf(),
                        dst: dst.to_path_buf(),
                    });
                }
            }
            check_not_inside(src_id, parent.as_fd(), src, dst)?;
            Some((parent, name))
        }
    };

    let shared = Shared::new(opts, src, dst);
    let root = match dst_dir {
        None => match &dest {
            Dest::Dir(fd) => DstDir {
                fd: rfs::openat(fd, c".", dir_flags(false), Mode::empty())
                    .map_err(|e| setup_err("open destination directory", dst, e))?,
                created: false,
                restore: None,
                dev: None,
            },
            Dest::Named { .. } => unreachable!("named destinations have a parent"),
        },
        Some((parent, name)) => match make_dir(parent.as_fd(), name, &src_st) {
            Ok(d) => d,
            Err(MakeDirError::NotADirectory) => {
                return Err(TreeError::NotADirectory {
                    src: src.to_path_buf(),
                    dst: dst.to_path_buf(),
                });
            }
            Err(MakeDirError::Io(op, e)) => return Err(setup_err(op, dst, e)),
        },
    };

    let walker = Walker::new(shared, opts, Some(root.fd.as_fd()), true);
    let workers = walker.workers;
    super::super::with_pool(workers, |parallel| {
        let walker = Walker { parallel, ..walker };
        walker.shared.totals.bump(Count::Dirs);
        walker.shared.record(
            Path::new(""),
            EntryKind::Dir,
            if root.created {
                EntryAction::Created
            } else {
                EntryAction::Merged
            },
            None,
        );
        let node = Arc::new(Ancestors {
            id: src_id,
            parent: None,
        });
        let hint = DirHint {
            new: root.created,
            dev: root.dev,
        };
        let (src, dst) = (src_fd.as_fd(), root.fd.as_fd());
        let dirs = walker.copy_contents(src, dst, hint, Path::new(""), &node, 0);
        for c in &dirs {
            if walker.shared.stopped() {
                break;
            }
            walker.subtree(src, dst, c, PathBuf::from(os_name(&c.name)), &node, 1);
        }
        walker.flush();
        walker.finish_dir(src, &src_st, dst, root.restore, Path::new(""));
        Ok(walker.finish())
    })
}
