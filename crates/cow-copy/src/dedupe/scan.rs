//! Walking the trees: the identity, size and mtime of every regular file,
//! kept compact (about 40 bytes plus the name per file), and the set of
//! files some process has open for writing.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, RawDir, statat};

use super::report::{DedupeError, SkipReason, Skipped};
use super::{Event, Observer, Phase};

/// The parent of a top-level directory entry.
const NO_PARENT: u32 = u32::MAX;

/// `BTRFS_SUPER_MAGIC`.
const BTRFS_MAGIC: u32 = 0x9123_683e;
/// `XFS_SUPER_MAGIC`.
const XFS_MAGIC: u32 = 0x5846_5342;

/// Directories listed in parallel at a time: bounds the memory that
/// listings not yet merged take (about 60 bytes per file).
const BATCH: usize = 64;

/// A name in [`Tree::names`].
#[derive(Debug, Clone, Copy)]
struct Span {
    off: u32,
    len: u32,
}

#[derive(Debug, Clone, Copy)]
struct Dir {
    /// Index of the parent, or [`NO_PARENT`]: then the name is a whole path.
    parent: u32,
    name: Span,
    /// Index into [`Tree::devices`].
    dev: u16,
}

/// One regular file.
#[derive(Debug, Clone, Copy)]
pub(super) struct FileEntry {
    pub(super) size: u64,
    pub(super) ino: u64,
    /// Modification time, nanoseconds since the epoch.
    pub(super) mtime: i64,
    dir: u32,
    name: Span,
    /// Index into [`Tree::devices`].
    pub(super) dev: u16,
    /// No write permission bit is set.
    pub(super) read_only: bool,
}

/// One filesystem (`st_dev`) met in the walk.
#[derive(Debug, Clone)]
pub(super) struct Device {
    /// `st_dev`.
    pub(super) dev: u64,
    /// The first root on it (statvfs is measured there).
    pub(super) root: PathBuf,
    /// It is btrfs, whose extent map shows dirty data as delayed
    /// allocation: a map without it is final without a flush.
    pub(super) btrfs: bool,
    /// Its free-space count (`statvfs`) is current without a flush: XFS
    /// keeps it in memory, updated as each transaction commits. btrfs
    /// frees a shared-away extent only when its transaction commits, and
    /// other filesystems are not known to, so they are flushed first.
    pub(super) counts_current: bool,
    /// It is XFS (see [`super::ag`]).
    pub(super) xfs: bool,
}

/// Every regular file of the trees, in a compact table.
#[derive(Debug, Default)]
pub(super) struct Tree {
    dirs: Vec<Dir>,
    names: Vec<u8>,
    pub(super) files: Vec<FileEntry>,
    pub(super) devices: Vec<Device>,
    pub(super) skipped: Vec<Skipped>,
    /// Each root directory's [`path_key`](super::report::path_key).
    root_keys: Vec<(u32, Vec<u8>)>,
    pub(super) bytes: u64,
    /// Regular files seen (kept or not).
    pub(super) scanned: u64,
}

/// What one directory holds.
#[derive(Default)]
struct Listing {
    files: Vec<(Box<OsStr>, Stat)>,
    dirs: Vec<Box<OsStr>>,
    skipped: Vec<Skipped>,
}

/// What the scan keeps of a file's metadata (a directory's listing holds
/// one per file until it is merged, so it is kept small).
#[derive(Debug, Clone, Copy)]
struct Stat {
    size: u64,
    ino: u64,
    mtime: i64,
    read_only: bool,
}

impl Stat {
    fn of(m: &rustix::fs::Stat) -> Stat {
        Stat {
            size: u64::try_from(m.st_size).unwrap_or(0),
            ino: m.st_ino,
            mtime: mtime_ns(m),
            read_only: m.st_mode & 0o222 == 0,
        }
    }
}

/// `sec` seconds and `nsec` nanoseconds since the epoch, in nanoseconds.
pub(super) fn nanos(sec: i64, nsec: i64) -> i64 {
    sec.saturating_mul(1_000_000_000).saturating_add(nsec)
}

/// Modification time of `m` in nanoseconds since the epoch.
pub(super) fn mtime_ns(m: &rustix::fs::Stat) -> i64 {
    nanos(m.st_mtime, m.st_mtime_nsec as i64)
}

/// Access time of `m` in nanoseconds since the epoch.
pub(super) fn atime_ns(m: &rustix::fs::Stat) -> i64 {
    nanos(m.st_atime, m.st_atime_nsec as i64)
}

/// `fstat` of an open file. Not std's `File::metadata`: that is `statx`
/// with an empty path (`AT_EMPTY_PATH`), which costs a path lookup's setup
/// on every call; plain `fstat` took 3 % of a rerun's samples less.
pub(super) fn fstat(f: &std::fs::File) -> io::Result<rustix::fs::Stat> {
    Ok(rustix::fs::fstat(f)?)
}

/// Whether `m` is a regular file.
pub(super) fn is_file(m: &rustix::fs::Stat) -> bool {
    FileType::from_raw_mode(m.st_mode) == FileType::RegularFile
}

impl Tree {
    fn push_name(&mut self, name: &[u8]) -> Result<Span, DedupeError> {
        let off = u32::try_from(self.names.len()).map_err(|_| DedupeError::TooMany("names"))?;
        let len = u32::try_from(name.len()).map_err(|_| DedupeError::TooMany("names"))?;
        self.names.extend_from_slice(name);
        Ok(Span { off, len })
    }

    fn name(&self, s: Span) -> &OsStr {
        OsStr::from_bytes(&self.names[s.off as usize..(s.off + s.len) as usize])
    }

    /// The path of directory `d`.
    pub(super) fn dir_path(&self, d: u32) -> PathBuf {
        self.path_of(d, None)
    }

    /// The path of directory `d`, joined with `file` if given, built in
    /// one allocation: what `PathBuf::push` of each name in turn gives
    /// (a separator before each name but the first, unless the path
    /// already ends with one; names below a root hold none), without its
    /// parsing and regrowing (about 12,000 paths per report on the bench
    /// tree).
    fn path_of(&self, d: u32, file: Option<Span>) -> PathBuf {
        // The names, leaf first: the nearest directories on the stack,
        // any deeper in `far`.
        let mut near = [Span { off: 0, len: 0 }; 32];
        let mut far = Vec::new();
        let (mut n, mut len, mut x) = (0, file.map_or(0, |s| s.len as usize + 1), d);
        loop {
            let dir = self.dirs[x as usize];
            if n < near.len() {
                near[n] = dir.name;
            } else {
                far.push(dir.name);
            }
            n += 1;
            len += dir.name.len as usize + 1;
            if dir.parent == NO_PARENT {
                break;
            }
            x = dir.parent;
        }
        let mut p: Vec<u8> = Vec::with_capacity(len);
        let parts = far
            .iter()
            .rev()
            .chain(near[..n.min(near.len())].iter().rev());
        for s in parts.chain(file.as_ref()) {
            if !p.is_empty() && p.last() != Some(&b'/') {
                p.push(b'/');
            }
            p.extend_from_slice(self.name(*s).as_bytes());
        }
        PathBuf::from(std::ffi::OsString::from_vec(p))
    }

    /// How many directories the walk met.
    pub(super) fn dir_count(&self) -> usize {
        self.dirs.len()
    }

    /// The directory (index) holding file `i`.
    pub(super) fn file_dir(&self, i: u32) -> u32 {
        self.files[i as usize].dir
    }

    /// The name of file `i` in its directory.
    pub(super) fn file_name(&self, i: u32) -> &OsStr {
        self.name(self.files[i as usize].name)
    }

    /// [`report::path_key`](super::report::path_key) of file `i`'s path,
    /// without parsing it: the root directory's key (computed by the
    /// scan), then each name below it as a normal component.
    pub(super) fn path_key(&self, i: u32) -> Vec<u8> {
        let f = &self.files[i as usize];
        let mut names = vec![f.name];
        let mut d = f.dir;
        while self.dirs[d as usize].parent != NO_PARENT {
            names.push(self.dirs[d as usize].name);
            d = self.dirs[d as usize].parent;
        }
        let root = self
            .root_keys
            .iter()
            .find(|(r, _)| *r == d)
            .map_or(&[][..], |(_, k)| k.as_slice());
        let len = root.len() + names.iter().map(|s| s.len as usize + 2).sum::<usize>();
        let mut key = Vec::with_capacity(len);
        key.extend_from_slice(root);
        for s in names.iter().rev() {
            super::report::push_normal(&mut key, self.name(*s).as_bytes());
        }
        key
    }

    /// The path of file `i`.
    pub(super) fn path(&self, i: u32) -> PathBuf {
        let f = &self.files[i as usize];
        self.path_of(f.dir, Some(f.name))
    }

    fn device(&mut self, dev: u64, root: &Path) -> Result<u16, DedupeError> {
        if let Some(i) = self.devices.iter().position(|d| d.dev == dev) {
            return Ok(i as u16);
        }
        let i =
            u16::try_from(self.devices.len()).map_err(|_| DedupeError::TooMany("filesystems"))?;
        let magic = rustix::fs::statfs(root).map_or(0, |s| s.f_type as u32);
        self.devices.push(Device {
            dev,
            root: root.to_path_buf(),
            btrfs: magic == BTRFS_MAGIC,
            counts_current: magic == XFS_MAGIC,
            xfs: magic == XFS_MAGIC,
        });
        Ok(i)
    }

    fn add_file(
        &mut self,
        dir: u32,
        name: &OsStr,
        m: Stat,
        min_size: u64,
    ) -> Result<(), DedupeError> {
        self.bytes += m.size;
        if m.size < min_size.max(1) {
            return Ok(());
        }
        if self.files.len() >= u32::MAX as usize {
            return Err(DedupeError::TooMany("files"));
        }
        let name = self.push_name(name.as_bytes())?;
        self.files.push(FileEntry {
            size: m.size,
            ino: m.ino,
            mtime: m.mtime,
            dir,
            name,
            dev: self.dirs[dir as usize].dev,
            read_only: m.read_only,
        });
        Ok(())
    }
}

/// Opens a directory for listing: `name` relative to its parent's
/// descriptor when the walk holds it (`O_NOFOLLOW`: a symlink put in a
/// directory's place since the parent was listed is not followed out of
/// the tree), else `path` (a root given by the user may be a symlink;
/// further down only the last component is not followed). Without
/// updating its access time when the kernel allows it (the owner and
/// root): a first listing of a freshly written tree would otherwise write
/// every directory's inode back, and on btrfs those updates take the tree
/// locks the listings of the other workers wait for.
fn open_dir(
    parent: Option<&OwnedFd>,
    path: &Path,
    name: &OsStr,
    root: bool,
) -> rustix::io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOCTTY;
    let open = |flags| match parent {
        Some(p) => rustix::fs::openat(p, name, flags | OFlags::NOFOLLOW, Mode::empty()),
        None if root => rustix::fs::open(path, flags, Mode::empty()),
        None => rustix::fs::open(path, flags | OFlags::NOFOLLOW, Mode::empty()),
    };
    match open(flags | OFlags::NOATIME) {
        Err(rustix::io::Errno::PERM) => open(flags),
        r => r,
    }
}

/// Room for the entries of one `getdents64` call: any one entry fits
/// (a name is at most 255 bytes).
const DIRENT_BUF: usize = 32 << 10;

/// Lists directory `fd` (at `path`, on `dev`): its regular files (with
/// their metadata) and subdirectories on the same filesystem.
fn list(fd: &OwnedFd, path: &Path, dev: u64) -> Listing {
    let mut out = Listing::default();
    match rustix::fs::fstat(fd) {
        Ok(m) if m.st_dev == dev => {}
        Ok(_) => {
            // Another filesystem mounted, or moved, there since its parent
            // was listed.
            out.skipped.push(Skipped {
                path: path.to_path_buf(),
                reason: SkipReason::OtherFilesystem,
            });
            return out;
        }
        Err(e) => {
            out.skipped.push(error(path, "cannot stat", &e.into()));
            return out;
        }
    }
    let mut buf = Vec::with_capacity(DIRENT_BUF);
    let mut dir = RawDir::new(fd, buf.spare_capacity_mut());
    while let Some(entry) = dir.next() {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                out.skipped
                    .push(error(path, "cannot read directory", &e.into()));
                break;
            }
        };
        let name = OsStr::from_bytes(entry.file_name().to_bytes());
        if name == "." || name == ".." {
            continue;
        }
        let kind = entry.file_type();
        if !matches!(
            kind,
            FileType::Directory | FileType::RegularFile | FileType::Unknown
        ) {
            continue;
        }
        // fstatat on the directory's descriptor, symlinks not followed.
        let meta = match statat(fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(m) => m,
            Err(e) => {
                out.skipped
                    .push(error(&path.join(name), "cannot stat", &e.into()));
                continue;
            }
        };
        let kind = FileType::from_raw_mode(meta.st_mode);
        if kind != FileType::Directory && kind != FileType::RegularFile {
            continue;
        }
        if meta.st_dev != dev {
            out.skipped.push(Skipped {
                path: path.join(name),
                reason: SkipReason::OtherFilesystem,
            });
        } else if kind == FileType::Directory {
            out.dirs.push(name.into());
        } else {
            out.files.push((name.into(), Stat::of(&meta)));
        }
    }
    out
}

/// Opens and lists directory `d` of `tree`; returns its descriptor too.
fn open_and_list(tree: &Tree, fds: &[Option<OwnedFd>], d: u32) -> (Listing, Option<OwnedFd>) {
    let dir = tree.dirs[d as usize];
    let dev = tree.devices[dir.dev as usize].dev;
    let path = tree.dir_path(d);
    let root = dir.parent == NO_PARENT;
    let parent = if root {
        None
    } else {
        fds.get(dir.parent as usize).and_then(Option::as_ref)
    };
    match open_dir(parent, &path, tree.name(dir.name), root) {
        Ok(fd) => (list(&fd, &path, dev), Some(fd)),
        Err(e) => {
            let mut out = Listing::default();
            out.skipped
                .push(error(&path, "cannot read directory", &e.into()));
            (out, None)
        }
    }
}

fn error(path: &Path, op: &str, e: &io::Error) -> Skipped {
    Skipped {
        path: path.to_path_buf(),
        reason: SkipReason::Error(format!("{op}: {e}")),
    }
}

/// Walks `roots` (directories, or regular files; command-line symlinks are
/// followed), listing directories in parallel, never crossing into another
/// filesystem. Files smaller than `min_size` (and empty files) are counted
/// but not kept.
pub(super) fn scan(
    roots: &[PathBuf],
    min_size: u64,
    keep_fds: usize,
    observer: &dyn Observer,
) -> Result<(Tree, Vec<Option<OwnedFd>>), DedupeError> {
    let mut tree = Tree::default();
    let mut level: Vec<u32> = Vec::new();
    let mut scanned = 0u64;
    // Descriptors of the directories listed, kept (at most `keep_fds`) so
    // that subdirectories are opened relative to them, and later the files.
    let mut fds: Vec<Option<OwnedFd>> = Vec::new();
    let mut kept = 0usize;
    for root in roots {
        let m = rustix::fs::stat(root).map_err(|e| DedupeError::Io {
            op: "cannot stat",
            path: root.clone(),
            source: e.into(),
        })?;
        if FileType::from_raw_mode(m.st_mode) == FileType::Directory {
            let dev = tree.device(m.st_dev, root)?;
            let name = tree.push_name(root.as_os_str().as_bytes())?;
            let key = super::report::path_key(root);
            tree.root_keys.push((tree.dirs.len() as u32, key));
            level.push(tree.dirs.len() as u32);
            tree.dirs.push(Dir {
                parent: NO_PARENT,
                name,
                dev,
            });
        } else if is_file(&m) {
            let parent = match root.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            let dev = tree.device(m.st_dev, parent)?;
            let name = tree.push_name(parent.as_os_str().as_bytes())?;
            let dir = tree.dirs.len() as u32;
            tree.root_keys.push((dir, super::report::path_key(parent)));
            tree.dirs.push(Dir {
                parent: NO_PARENT,
                name,
                dev,
            });
            let file = root.file_name().unwrap_or(root.as_os_str());
            tree.add_file(dir, file, Stat::of(&m), min_size)?;
            scanned += 1;
        }
    }
    while !level.is_empty() {
        let mut next = Vec::new();
        for batch in level.chunks(BATCH) {
            let listings: Vec<(u32, Listing, Option<OwnedFd>)> = batch
                .par_iter()
                .map(|&d| {
                    let (listing, fd) = open_and_list(&tree, &fds, d);
                    (d, listing, fd)
                })
                .collect();
            for (d, listing, fd) in listings {
                if fds.len() <= d as usize {
                    fds.resize_with(d as usize + 1, || None);
                }
                if kept < keep_fds && fd.is_some() {
                    fds[d as usize] = fd;
                    kept += 1;
                }
                let dev = tree.dirs[d as usize].dev;
                for name in listing.dirs {
                    let name = tree.push_name(name.as_bytes())?;
                    next.push(tree.dirs.len() as u32);
                    tree.dirs.push(Dir {
                        parent: d,
                        name,
                        dev,
                    });
                }
                let n = listing.files.len() as u64;
                for (name, meta) in listing.files {
                    tree.add_file(d, &name, meta, min_size)?;
                }
                scanned += n;
                tree.skipped.extend(listing.skipped);
                observer.event(&Event::Progress {
                    phase: Phase::Scan,
                    files: n,
                    bytes: 0,
                });
            }
        }
        level = next;
    }
    tree.files.shrink_to_fit();
    tree.names.shrink_to_fit();
    tree.dirs.shrink_to_fit();
    tree.scanned = scanned;
    observer.event(&Event::Scanned { files: scanned });
    fds.resize_with(tree.dirs.len(), || None);
    Ok((tree, fds))
}

/// (`st_dev`, `st_ino`) of every regular file some process has open for
/// writing (this one included: the dedupe itself only opens files to read),
/// from `/proc/*/fdinfo` (access mode in `flags:`) and a stat through
/// `/proc/*/fd`. Processes this user may not inspect are not seen (all of
/// them are, for root). `own` are descriptors of this process known not to
/// be open for writing (the dedupe's directory descriptors): not read.
pub(super) fn open_for_writing(own: &HashSet<std::os::fd::RawFd>) -> HashSet<(u64, u64)> {
    let mut out = HashSet::new();
    let Ok(procs) = fs::read_dir("/proc") else {
        return out;
    };
    let me = std::process::id().to_string();
    for p in procs.flatten() {
        let pid = p.file_name();
        if pid.as_bytes().iter().any(|b| !b.is_ascii_digit()) {
            continue;
        }
        let base = p.path();
        let Ok(fds) = fs::read_dir(base.join("fdinfo")) else {
            continue;
        };
        for fd in fds.flatten() {
            if pid.as_bytes() == me.as_bytes()
                && fd
                    .file_name()
                    .to_str()
                    .and_then(|n| n.parse().ok())
                    .is_some_and(|n| own.contains(&n))
            {
                continue;
            }
            let Ok(info) = fs::read_to_string(fd.path()) else {
                continue;
            };
            let flags = info
                .lines()
                .find_map(|l| l.strip_prefix("flags:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok());
            // O_ACCMODE: 1 is O_WRONLY, 2 is O_RDWR.
            if flags.is_none_or(|f| f & 3 == 0) {
                continue;
            }
            if let Ok(m) = fs::metadata(base.join("fd").join(fd.file_name()))
                && m.is_file()
            {
                out.insert((m.dev(), m.ino()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::report::path_key;
    use super::{Dir, NO_PARENT, Tree, open_for_writing};
    use std::collections::HashSet;
    use std::fs::{self, File, OpenOptions};
    use std::os::unix::fs::MetadataExt;
    use std::path::PathBuf;

    #[test]
    fn paths_and_their_keys_are_what_pushing_each_name_gives() {
        // Roots of every shape, and trees deeper than the names kept on
        // the stack while a path is built.
        for root in [
            "/r", "/r/", "rel", "rel/", ".", "/", "/r/./x", "a//b", "../up",
        ] {
            let mut t = Tree::default();
            let name = t.push_name(root.as_bytes()).unwrap();
            t.dirs.push(Dir {
                parent: NO_PARENT,
                name,
                dev: 0,
            });
            t.root_keys.push((0, path_key(std::path::Path::new(root))));
            let mut want = PathBuf::from(root);
            assert_eq!(t.dir_path(0), want);
            for depth in 1..70u32 {
                let n = format!("d{depth}");
                let name = t.push_name(n.as_bytes()).unwrap();
                t.dirs.push(Dir {
                    parent: depth - 1,
                    name,
                    dev: 0,
                });
                want.push(&n);
                assert_eq!(t.dir_path(depth), want, "{root:?} at {depth}");
                let f = t.push_name(b"f.txt").unwrap();
                assert_eq!(t.path_of(depth, Some(f)), want.join("f.txt"));
                // The sort key, built from the tree, is the path's.
                t.files.push(super::FileEntry {
                    size: 1,
                    ino: 1,
                    mtime: 0,
                    dir: depth,
                    name: f,
                    dev: 0,
                    read_only: false,
                });
                let i = t.files.len() as u32 - 1;
                assert_eq!(t.path_key(i), path_key(&t.path(i)), "{root:?} at {depth}");
            }
        }
    }

    #[test]
    fn writers_here_and_in_other_processes_are_found_readers_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let id = |p: &std::path::Path| {
            let m = fs::metadata(p).unwrap();
            (m.dev(), m.ino())
        };
        let names = ["ro", "wo", "rw", "child_ro", "child_rw", "ignored"];
        let p: Vec<_> = names.iter().map(|n| dir.path().join(n)).collect();
        for f in &p {
            fs::write(f, b"x").unwrap();
        }
        let _ro = File::open(&p[0]).unwrap();
        let _wo = OpenOptions::new().append(true).open(&p[1]).unwrap();
        let _rw = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&p[2])
            .unwrap();
        let ignored = OpenOptions::new().write(true).open(&p[5]).unwrap();
        let own: HashSet<_> = [std::os::fd::AsRawFd::as_raw_fd(&ignored)].into();
        // A child holding one file open to read and one to read and write,
        // until its stdin closes.
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg("exec 3<\"$1\" 4<>\"$2\"; echo ready; read _")
            .arg("sh")
            .args([&p[3], &p[4]])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line, "ready\n");
        let w = open_for_writing(&own);
        drop(child.stdin.take());
        child.wait().unwrap();
        for (k, want) in [
            (0, false),
            (1, true),
            (2, true),
            (3, false),
            (4, true),
            (5, false),
        ] {
            assert_eq!(w.contains(&id(&p[k])), want, "{}", names[k]);
        }
    }
}
