//! The Unix walker: every entry is reached through its parent's descriptor.
//!
//! Sources are opened with `O_NOFOLLOW` (unless the dereference policy says
//! otherwise) and destinations are created with `mkdirat`, `symlinkat`,
//! `mknodat` and `linkat` relative to a destination directory descriptor that
//! was itself opened with `O_NOFOLLOW`. Nothing below the root is resolved as
//! a path, so renaming or swapping directories during the copy cannot move
//! writes outside the destination.

use std::collections::HashMap;
use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};

use rayon::prelude::*;
use rustix::fs::{self as rfs, AtFlags, CWD, Dir, FileType, Mode, OFlags, Stat, Timestamps};
use rustix::io::Errno;

use super::{
    Count, Dereference, EntryAction, EntryKind, Shared, TreeError, TreeOptions, TreeReport,
};
use crate::{CopyOptions, Overwrite, Preserve};

/// (device, inode).
type Id = (u64, u64);

/// Mode bits that `chmod` sets (permissions, setuid, setgid, sticky).
const MODE_BITS: u32 = 0o7777;
/// Permission bits.
const PERM_BITS: u32 = 0o777;
/// setuid and setgid.
const SUID_SGID: u32 = 0o6000;
/// Owner read, write, search: what the walk needs on a directory it fills.
const OWNER_RWX: u32 = 0o700;

#[allow(clippy::unnecessary_cast)]
fn id_of(st: &Stat) -> Id {
    (st.st_dev as u64, st.st_ino as u64)
}

#[allow(clippy::unnecessary_cast)]
fn mode_of(st: &Stat) -> u32 {
    st.st_mode as u32
}

#[allow(clippy::unnecessary_cast)]
fn size_of(st: &Stat) -> u64 {
    st.st_size.max(0) as u64
}

#[allow(clippy::unnecessary_cast)]
fn nlink_of(st: &Stat) -> u64 {
    st.st_nlink as u64
}

#[allow(clippy::unnecessary_cast)]
fn times_of(st: &Stat) -> Timestamps {
    Timestamps {
        last_access: rustix::fs::Timespec {
            tv_sec: st.st_atime as i64,
            tv_nsec: st.st_atime_nsec as _,
        },
        last_modification: rustix::fs::Timespec {
            tv_sec: st.st_mtime as i64,
            tv_nsec: st.st_mtime_nsec as _,
        },
    }
}

fn owner_of(st: &Stat) -> (rustix::fs::Uid, rustix::fs::Gid) {
    (
        rustix::fs::Uid::from_raw(st.st_uid),
        rustix::fs::Gid::from_raw(st.st_gid),
    )
}

/// A `Mode` from permission bits (`mode_t` is 16 bits on some Unixes).
#[allow(clippy::unnecessary_cast)]
fn mk_mode(bits: u32) -> Mode {
    Mode::from_raw_mode((bits & MODE_BITS) as rustix::fs::RawMode)
}

fn kind_of(st: &Stat) -> FileType {
    FileType::from_raw_mode(st.st_mode)
}

fn errno(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e.raw_os_error())
}

fn os_name(c: &CStr) -> &Path {
    Path::new(OsStr::from_bytes(c.to_bytes()))
}

/// Flags to open a directory only to stat it or to use it as an `*at` base.
fn dir_base_flags() -> OFlags {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC
    }
}

/// Flags to open a directory to read or to change its metadata.
fn dir_flags(follow: bool) -> OFlags {
    let f = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    if follow { f } else { f | OFlags::NOFOLLOW }
}

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

pub(super) fn copy_tree(
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
            None,
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
    super::with_pool(workers, |parallel| {
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
        let node = Ancestors {
            id: src_id,
            parent: None,
        };
        walker.copy_contents(
            src_fd.as_fd(),
            root.fd.as_fd(),
            DirHint {
                new: root.created,
                dev: root.dev,
            },
            Path::new(""),
            &node,
        );
        walker.flush();
        walker.finish_dir(src_fd.as_fd(), &src_st, &root, Path::new(""));
        Ok(walker.finish())
    })
}

/// The chain of source directories above the current one, to catch cycles
/// (symlinks followed with `Dereference::Always`, or bind-mount loops).
struct Ancestors<'p> {
    id: Id,
    parent: Option<&'p Ancestors<'p>>,
}

impl Ancestors<'_> {
    fn contains(&self, id: Id) -> bool {
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
struct DstDir {
    fd: OwnedFd,
    /// Whether the walk created it.
    created: bool,
    /// The mode to restore after the children were written, when the walk
    /// had to add owner `rwx` to fill it.
    restore: Option<u32>,
    /// The directory's device, when it was stat'ed anyway.
    dev: Option<u64>,
}

/// What the walk knows about a destination directory, for the files copied
/// into it.
#[derive(Clone, Copy, Debug, Default)]
struct DirHint {
    /// The walk created it (its entries most likely do not exist yet).
    new: bool,
    /// Its device.
    dev: Option<u64>,
}

enum MakeDirError {
    /// Something other than a directory is there.
    NotADirectory,
    Io(&'static str, Errno),
}

/// Creates the directory `name` in `parent` (or opens the existing one) with
/// the source's permission bits minus the umask, writable by the owner until
/// [`Walker::finish_dir`] runs.
fn make_dir(parent: BorrowedFd<'_>, name: &CStr, src_st: &Stat) -> Result<DstDir, MakeDirError> {
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

/// A temporary sibling name for `name` (`.NAME.cow-tmp-PID-N`), or `None`
/// when it would be too long for a directory entry.
fn temp_name(name: &CStr) -> Option<CString> {
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

/// One entry of a listing.
struct Child {
    name: CString,
    kind: FileType,
    /// The entry's status; `None` for regular files and directories whose
    /// type the directory listing gave, when nothing else needs it (the
    /// engine and the directory walk stat what they open anyway).
    st: Option<Stat>,
}

/// The state of a multiply-linked source file (by (device, inode)).
enum LinkState {
    /// A worker is copying it now; others wait.
    Copying,
    /// Copied to this path relative to the destination root.
    Done(PathBuf),
    /// The copy failed: others copy it themselves.
    Failed,
}

enum Claim {
    /// This worker copies it.
    Mine,
    /// Link to the first copy at this relative path.
    Link(PathBuf),
    /// Copy it independently.
    Copy,
}

struct Walker<'a> {
    shared: Shared<'a>,
    file_opts: CopyOptions,
    file_opts_follow: CopyOptions,
    preserve: Preserve,
    no_clobber: bool,
    follow_all: bool,
    parallel: bool,
    /// The destination root directory (for hard links); `None` when the
    /// root is not a directory.
    dst_root: Option<BorrowedFd<'a>>,
    links: Mutex<HashMap<Id, LinkState>>,
    link_done: Condvar,
    /// Worker threads.
    workers: usize,
    /// Directory descriptors held by the walk right now.
    open_dirs: AtomicUsize,
    /// Above this many, subdirectories are walked one at a time (see
    /// [`Walker::copy_contents`]).
    dir_budget: usize,
    /// Whether symlink xattrs can be reached here (checked at the first
    /// symlink that needs it; see [`xattr::links_supported`]).
    link_xattrs: OnceLock<Result<(), String>>,
    /// Atomic copies waiting for one `syncfs` and their renames.
    batch: Option<crate::durable::Batch>,
}

/// How many directory descriptors the parallel walk may hold: the open-file
/// limit minus what the process and each worker need besides (a listing
/// and the source, destination and temporary file of a copy), at least 4.
fn dir_budget(workers: usize) -> usize {
    open_file_limit().saturating_sub(16 + 4 * workers).max(4)
}

/// The soft limit on open files.
fn open_file_limit() -> usize {
    let lim = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    lim.current
        .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX))
}

/// The workers asked for, fewer when the open-file limit could not feed
/// them (each needs a few descriptors, and the walk needs some per level).
fn workers_for(opts: &TreeOptions) -> usize {
    let fit = open_file_limit().saturating_sub(32) / 8;
    opts.worker_count().min(fit).max(1)
}

/// Counts two directory descriptors (source and destination) while alive.
struct DirPair<'w>(&'w AtomicUsize);

impl<'w> DirPair<'w> {
    fn new(counter: &'w AtomicUsize) -> Self {
        counter.fetch_add(2, Ordering::Relaxed);
        DirPair(counter)
    }
}

impl Drop for DirPair<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(2, Ordering::Relaxed);
    }
}

impl<'a> Walker<'a> {
    fn new(
        shared: Shared<'a>,
        opts: &'a TreeOptions,
        dst_root: Option<BorrowedFd<'a>>,
        parallel: bool,
    ) -> Self {
        Walker {
            shared,
            file_opts: opts.copy.clone().follow_symlinks(false),
            file_opts_follow: opts.copy.clone().follow_symlinks(true),
            preserve: opts.copy.preserve_policy(),
            no_clobber: opts.copy.overwrite_policy() == Overwrite::NoClobber,
            follow_all: opts.dereference == Dereference::Always,
            parallel,
            dst_root,
            links: Mutex::new(HashMap::new()),
            link_done: Condvar::new(),
            workers: workers_for(opts),
            open_dirs: AtomicUsize::new(0),
            dir_budget: dir_budget(workers_for(opts)),
            link_xattrs: OnceLock::new(),
            batch: dst_root
                .and_then(|_| crate::durable::Batch::for_tree(&opts.copy, open_file_limit() / 4)),
        }
    }

    /// Syncs and renames the queued atomic copies (see [`crate::durable`]).
    fn flush(&self) {
        if let Some(b) = &self.batch {
            b.flush(|rel, len, r| self.shared.file_result(rel, len, r));
        }
    }

    fn finish(self) -> TreeReport {
        self.shared.finish()
    }

    fn fail(&self, rel: &Path, kind: EntryKind, op: &'static str, e: Errno) {
        self.shared.fail(rel, kind, op, errno(e));
    }

    /// A failure to apply metadata to an entry that was otherwise copied.
    fn fail_meta(&self, rel: &Path, op: &'static str, e: Errno) {
        self.shared.fail_meta(rel, op, errno(e));
    }

    /// Lists `src` (a directory) with each entry's status.
    fn list(&self, src: BorrowedFd<'_>, rel: &Path) -> Option<Vec<Child>> {
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
    fn copy_contents(
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
    fn entry(
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
    fn entry_stat(
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
    fn dir(
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
        self.copy_contents(src.as_fd(), dst.fd.as_fd(), hint, rel, &node);
        self.finish_dir(src.as_fd(), &st, &dst, rel);
    }

    /// Applies a directory's metadata once its children are written: xattrs,
    /// owner, mode, then times (last, since the others change ctime only).
    fn finish_dir(&self, src: BorrowedFd<'_>, st: &Stat, dst: &DstDir, rel: &Path) {
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

    #[allow(clippy::too_many_arguments)]
    fn file(
        &self,
        src_dir: BorrowedFd<'_>,
        src_name: &CStr,
        st: Option<&Stat>,
        dst_dir: BorrowedFd<'_>,
        dst_name: &CStr,
        rel: &Path,
        follow: bool,
        dst_new: DirHint,
    ) {
        let len = st.map_or(0, size_of);
        // With hard-link preservation the listing always has the status.
        if let Some(st) = st.filter(|st| {
            self.shared.opts.preserve_hard_links && nlink_of(st) > 1 && self.dst_root.is_some()
        }) {
            let key = id_of(st);
            match self.claim(key) {
                Claim::Link(first) => {
                    if self.link(&first, dst_dir, dst_name, rel, len) {
                        return;
                    }
                }
                Claim::Mine => {
                    let r =
                        self.copy_file(src_dir, src_name, dst_dir, dst_name, follow, dst_new, None);
                    let r = r.and_then(|c| c.now(rel));
                    self.settle(key, r.is_ok().then(|| rel.to_path_buf()));
                    self.shared.file_result(rel, len, r);
                    return;
                }
                Claim::Copy => {}
            }
        }
        let defer = self.batch.as_ref().map(|batch| crate::durable::Defer {
            batch,
            tag: rel,
            len,
        });
        let r = match self.copy_file(src_dir, src_name, dst_dir, dst_name, follow, dst_new, defer) {
            Ok(crate::engine::Copied::Now(r)) => Ok(r),
            // Reported when the batch is committed.
            Ok(crate::engine::Copied::Deferred { full }) => {
                if let Some(b) = self.batch.as_ref().filter(|_| full) {
                    b.flush_full(|rel, len, r| self.shared.file_result(rel, len, r));
                }
                return;
            }
            Err(e) => Err(e),
        };
        // A skipped or failed file counts its length; learn it if unknown.
        let len = match (&r, st) {
            (Err(_), None) => {
                rfs::statat(src_dir, src_name, AtFlags::SYMLINK_NOFOLLOW).map_or(0, |s| size_of(&s))
            }
            _ => len,
        };
        self.shared.file_result(rel, len, r);
    }

    #[allow(clippy::too_many_arguments)]
    fn copy_file(
        &self,
        src_dir: BorrowedFd<'_>,
        src_name: &CStr,
        dst_dir: BorrowedFd<'_>,
        dst_name: &CStr,
        follow: bool,
        dst_new: DirHint,
        defer: Option<crate::durable::Defer<'_>>,
    ) -> Result<crate::engine::Copied, crate::CopyError> {
        let opts = if follow {
            &self.file_opts_follow
        } else {
            &self.file_opts
        };
        // The entry was listed (or stat'ed) as a regular file just now.
        let hints = crate::engine::Hints {
            src_regular: true,
            dst_new: dst_new.new,
            dst_dir_dev: dst_new.dev,
            defer,
        };
        crate::engine::copy_at_hinted(
            opts,
            src_dir,
            os_name(src_name),
            dst_dir,
            os_name(dst_name),
            hints,
        )
    }

    /// Decides who copies a multiply-linked file: the first worker to see
    /// it; later ones wait for that copy and link to it.
    fn claim(&self, key: Id) -> Claim {
        let mut links = super::lock(&self.links);
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

    fn settle(&self, key: Id, done: Option<PathBuf>) {
        let mut links = super::lock(&self.links);
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
    fn open_dst_parent<'r>(&self, rel: &'r Path) -> Result<(Option<OwnedFd>, &'r OsStr), Errno> {
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
    fn link(
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
                    self.shared.fail(
                        rel,
                        EntryKind::File,
                        "link",
                        io::Error::new(
                            io::ErrorKind::IsADirectory,
                            "cannot overwrite directory with non-directory",
                        ),
                    );
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

    /// Creates a non-directory entry with `create`, replacing an existing
    /// non-directory unless no-clobber. Returns what was done, or `None`
    /// after recording a failure.
    fn create_non_dir(
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
    fn created(
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

    fn symlink(
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
    fn symlink_xattrs(
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
    fn xattrs_copied(&self, rel: &Path, op: &'static str, r: xattr::Copied) {
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

    fn fifo(&self, st: &Stat, dst_dir: BorrowedFd<'_>, dst_name: &CStr, rel: &Path) {
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

    fn special(
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
    fn meta_fd(&self, fd: BorrowedFd<'_>, st: &Stat, rel: &Path) {
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
    fn to_errno(e: io::Error) -> Errno {
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

/// Copying extended attributes: from a directory to its copy (through their
/// descriptors), and from a symlink to its copy without following either.
///
/// Linux, Android and Apple platforms copy them; other Unixes copy none and
/// say so for each entry (as a warning, through [`Walker::xattrs_copied`]).
mod xattr {
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
}

/// Gives a just-created entry (never followed) the owner of `st`; when the
/// user cannot be kept, keeps at least the group. Returns whether the full
/// owner was kept.
fn chown_entry(st: &Stat, dst_dir: BorrowedFd<'_>, dst_name: &CStr) -> bool {
    let (uid, gid) = owner_of(st);
    let nofollow = AtFlags::SYMLINK_NOFOLLOW;
    if rfs::chownat(dst_dir, dst_name, Some(uid), Some(gid), nofollow).is_ok() {
        return true;
    }
    let _ = rfs::chownat(dst_dir, dst_name, None, Some(gid), nofollow);
    false
}
