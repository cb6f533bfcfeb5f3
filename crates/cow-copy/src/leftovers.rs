//! Temporaries left behind by atomic copies that never finished: the process
//! was killed with SIGKILL, or the machine lost power, before it could
//! rename or remove its `.NAME.cow-tmp-XXXXXX` (a catchable signal leaves
//! none, see [`crate::remove_temporaries`]).
//!
//! [`find`] lists them with what is needed to decide safely whether one is
//! stale: its age and, on Linux, whether a running process still has it
//! open (an atomic copy keeps its temporary open from creation to rename).
//! `cow clean` is built on it.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! let found = cow_copy::leftovers::find("/opt/app".as_ref(), true)?;
//! for t in &found.temporaries {
//!     let stale = t.open_by.is_none() && t.age > Duration::from_secs(3600);
//!     println!("{} ({} bytes): {}", t.path.display(), t.len, if stale { "stale" } else { "keep" });
//! }
//! # Ok::<(), std::io::Error>(())
//! ```

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::TEMP_MARKER;

/// Whether `name` is the name of an atomic copy's temporary:
/// `.NAME.cow-tmp-XXXXXX`, six lower-case letters or digits at the end.
pub fn is_temporary_name(name: &OsStr) -> bool {
    let b = name.as_encoded_bytes();
    let marker = TEMP_MARKER.as_bytes();
    let Some(head_len) = b.len().checked_sub(marker.len() + 6) else {
        return false;
    };
    let (head, tail) = b.split_at(head_len);
    let (mark, suffix) = tail.split_at(marker.len());
    head.len() >= 2
        && head[0] == b'.'
        && mark == marker
        && suffix
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// One temporary found by [`find`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Temporary {
    /// Its path (under the directory given to [`find`]).
    pub path: PathBuf,
    /// Its size in bytes.
    pub len: u64,
    /// Time since it was last written (zero if its time is in the future).
    pub age: Duration,
    /// A process that has it open, if one was seen (Linux): then it is an
    /// atomic copy in progress, not a leftover.
    pub open_by: Option<u32>,
    /// The directory given to [`find`].
    root: Arc<Path>,
    /// Its path below `root`.
    rel: PathBuf,
    /// (device, inode) when it was listed.
    id: Option<(u64, u64)>,
}

impl Temporary {
    /// Removes the temporary, only if it is still the file [`find`] listed.
    ///
    /// Its directory is reached again from the directory given to [`find`]
    /// one component at a time without following symlinks (Unix), and the
    /// entry is removed with `unlinkat` only if its (device, inode) are the
    /// listed ones. So a directory renamed or swapped for a symlink since
    /// the listing (by whoever can write there) never leads the removal
    /// elsewhere. A temporary gone or replaced meanwhile is
    /// [`io::ErrorKind::NotFound`].
    pub fn remove(&self) -> io::Result<()> {
        walk::remove(&self.root, &self.rel, self.id)
    }
}

/// What [`find`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Found {
    /// The temporaries, in the order they were listed.
    pub temporaries: Vec<Temporary>,
    /// Whether every process's open files could be looked at, so that
    /// `open_by: None` means "no process has it open". `false` off Linux,
    /// without `/proc`, or when some processes' descriptors are not readable
    /// (another user's, without root): then only the age can tell.
    pub open_files_checked: bool,
    /// Directories that could not be read, with the error.
    pub unreadable: Vec<(PathBuf, String)>,
}

/// A temporary as the walk listed it.
struct Listed {
    rel: PathBuf,
    len: u64,
    modified: Option<SystemTime>,
    id: Option<(u64, u64)>,
}

/// Lists the temporaries in `dir` (and its subdirectories with
/// `recursive`). Below `dir` every directory is opened relative to its
/// parent's descriptor without following symlinks, and every entry is
/// stat'ed relative to its directory (Unix), so a directory swapped for a
/// symlink during the walk is not entered. Each temporary's status is read
/// when it is listed, before the open files are looked at, so a temporary
/// created meanwhile is either not listed or seen open.
pub fn find(dir: &Path, recursive: bool) -> io::Result<Found> {
    let mut found = Found::default();
    let listed = walk::list(dir, recursive, &mut found.unreadable)?;
    let open = open_files();
    found.open_files_checked = open.as_ref().is_some_and(|o| o.complete);
    let now = SystemTime::now();
    let root: Arc<Path> = Arc::from(dir);
    for t in listed {
        let age = t
            .modified
            .and_then(|m| now.duration_since(m).ok())
            .unwrap_or_default();
        let open_by = open.as_ref().and_then(|o| o.by_file.get(&t.id?).copied());
        found.temporaries.push(Temporary {
            path: dir.join(&t.rel),
            len: t.len,
            age,
            open_by,
            root: root.clone(),
            rel: t.rel,
            id: t.id,
        });
    }
    Ok(found)
}

/// Unix: the walk and the removal through directory descriptors.
#[cfg(unix)]
mod walk {
    use std::ffi::OsStr;
    use std::io;
    use std::os::fd::OwnedFd;
    use std::os::unix::ffi::OsStrExt;
    use std::path::{Component, Path, PathBuf};
    use std::sync::Arc;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use rustix::fs::{self as rfs, AtFlags, CWD, Dir, FileType, Mode, OFlags};

    use super::{Listed, is_temporary_name};

    fn dir_flags() -> OFlags {
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC
    }

    /// Opens the subdirectory `name` of `dir`, refusing a symlink.
    fn open_sub(dir: &OwnedFd, name: &OsStr) -> rustix::io::Result<OwnedFd> {
        rfs::openat(dir, name, dir_flags() | OFlags::NOFOLLOW, Mode::empty())
    }

    #[allow(clippy::unnecessary_cast)]
    fn id_of(st: &rfs::Stat) -> (u64, u64) {
        (st.st_dev as u64, st.st_ino as u64)
    }

    #[allow(clippy::unnecessary_cast)]
    fn modified(st: &rfs::Stat) -> Option<SystemTime> {
        let (s, ns) = (st.st_mtime as i64, st.st_mtime_nsec as u32);
        if s >= 0 {
            UNIX_EPOCH.checked_add(Duration::new(s as u64, ns))
        } else {
            UNIX_EPOCH.checked_sub(Duration::from_secs(s.unsigned_abs()))
        }
    }

    pub(super) fn list(
        root: &Path,
        recursive: bool,
        unreadable: &mut Vec<(PathBuf, String)>,
    ) -> io::Result<Vec<Listed>> {
        let top = rfs::openat(CWD, root, dir_flags(), Mode::empty())?;
        let mut out = Vec::new();
        // Directories still to list, each with a descriptor of its parent
        // (shared by its siblings; at most one per level stays open).
        let mut pending: Vec<(Option<Arc<OwnedFd>>, PathBuf)> = vec![(None, PathBuf::new())];
        let top = Arc::new(top);
        while let Some((parent, rel)) = pending.pop() {
            let fd = match &parent {
                None => Ok(top.clone()),
                Some(p) => rel
                    .file_name()
                    .map_or(Err(rustix::io::Errno::INVAL), |n| open_sub(p, n))
                    .map(Arc::new),
            };
            drop(parent);
            let fd = match fd {
                Ok(fd) => fd,
                Err(e) => {
                    unreadable.push((root.join(&rel), io::Error::from(e).to_string()));
                    continue;
                }
            };
            let mut dir = match Dir::read_from(&*fd) {
                Ok(d) => d,
                Err(e) => {
                    unreadable.push((root.join(&rel), io::Error::from(e).to_string()));
                    continue;
                }
            };
            while let Some(ent) = dir.read() {
                let ent = match ent {
                    Ok(e) => e,
                    Err(e) => {
                        unreadable.push((root.join(&rel), io::Error::from(e).to_string()));
                        break;
                    }
                };
                let name = OsStr::from_bytes(ent.file_name().to_bytes());
                if name == "." || name == ".." {
                    continue;
                }
                let kind = ent.file_type();
                if kind == FileType::Directory && recursive {
                    pending.push((Some(fd.clone()), rel.join(name)));
                } else if kind != FileType::Directory && is_temporary_name(name) {
                    // Any non-directory: a file copy's temporary, or the
                    // symlink, FIFO or device a tree made to replace an entry.
                    let Ok(st) = rfs::statat(&*fd, name, AtFlags::SYMLINK_NOFOLLOW) else {
                        continue;
                    };
                    if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                        continue;
                    }
                    out.push(Listed {
                        rel: rel.join(name),
                        len: st.st_size.max(0) as u64,
                        modified: modified(&st),
                        id: Some(id_of(&st)),
                    });
                }
            }
        }
        Ok(out)
    }

    pub(super) fn remove(root: &Path, rel: &Path, id: Option<(u64, u64)>) -> io::Result<()> {
        let gone = || {
            io::Error::new(
                io::ErrorKind::NotFound,
                "gone or replaced since it was listed",
            )
        };
        let comps: Vec<&OsStr> = rel
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n),
                _ => None,
            })
            .collect();
        let Some((name, dirs)) = comps.split_last() else {
            return Err(gone());
        };
        let mut cur = rfs::openat(CWD, root, dir_flags(), Mode::empty())?;
        for d in dirs {
            cur = match open_sub(&cur, d) {
                Ok(fd) => fd,
                // Moved, removed or swapped for a symlink since the listing.
                Err(
                    rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR | rustix::io::Errno::LOOP,
                ) => {
                    return Err(gone());
                }
                Err(e) => return Err(e.into()),
            };
        }
        let st = match rfs::statat(&cur, *name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(rustix::io::Errno::NOENT) => return Err(gone()),
            Err(e) => return Err(e.into()),
        };
        if Some(id_of(&st)) != id {
            return Err(gone());
        }
        Ok(rfs::unlinkat(&cur, *name, AtFlags::empty())?)
    }
}

/// Other platforms: the walk by paths.
#[cfg(not(unix))]
mod walk {
    use std::io;
    use std::path::{Path, PathBuf};

    use super::{Listed, file_id, is_temporary_name};

    pub(super) fn list(
        root: &Path,
        recursive: bool,
        unreadable: &mut Vec<(PathBuf, String)>,
    ) -> io::Result<Vec<Listed>> {
        let mut out = Vec::new();
        let mut pending = vec![PathBuf::new()];
        let mut first = true;
        while let Some(rel) = pending.pop() {
            let d = root.join(&rel);
            let entries = match std::fs::read_dir(&d) {
                Ok(e) => e,
                Err(e) if first => return Err(e),
                Err(e) => {
                    unreadable.push((d, e.to_string()));
                    continue;
                }
            };
            first = false;
            for entry in entries {
                let entry = match entry {
                    Ok(e) => e,
                    Err(e) => {
                        unreadable.push((d.clone(), e.to_string()));
                        break;
                    }
                };
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                let name = entry.file_name();
                if kind.is_dir() && recursive {
                    pending.push(rel.join(&name));
                } else if kind.is_file() && is_temporary_name(&name) {
                    let Ok(meta) = std::fs::symlink_metadata(entry.path()) else {
                        continue;
                    };
                    out.push(Listed {
                        rel: rel.join(&name),
                        len: meta.len(),
                        modified: meta.modified().ok(),
                        id: file_id(&meta),
                    });
                }
            }
        }
        Ok(out)
    }

    pub(super) fn remove(root: &Path, rel: &Path, _id: Option<(u64, u64)>) -> io::Result<()> {
        std::fs::remove_file(root.join(rel))
    }
}

/// The files open in any process: (device, inode) -> a process id.
struct OpenFiles {
    by_file: HashMap<(u64, u64), u32>,
    /// Every process's descriptors were read.
    complete: bool,
}

/// (device, inode) of a file, where the platform has them (for the open
/// files on Linux and the path walk elsewhere).
#[cfg(any(not(unix), target_os = "linux", target_os = "android"))]
fn file_id(meta: &std::fs::Metadata) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some((meta.dev(), meta.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        None
    }
}

/// Linux: every `/proc/PID/fd/N`, followed to its file.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn open_files() -> Option<OpenFiles> {
    let mut out = OpenFiles {
        by_file: HashMap::new(),
        complete: true,
    };
    for proc_entry in std::fs::read_dir("/proc").ok()? {
        let Ok(proc_entry) = proc_entry else {
            out.complete = false;
            continue;
        };
        let Some(pid) = proc_entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let fds = match std::fs::read_dir(proc_entry.path().join("fd")) {
            Ok(f) => f,
            // Exited meanwhile: it holds nothing open any more.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(_) => {
                out.complete = false;
                continue;
            }
        };
        for fd in fds.flatten() {
            // Following the link stats the open file itself.
            if let Some(id) = std::fs::metadata(fd.path()).ok().as_ref().and_then(file_id) {
                out.by_file.entry(id).or_insert(pid);
            }
        }
    }
    Some(out)
}

/// Other platforms: open files are not looked at.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn open_files() -> Option<OpenFiles> {
    None
}

#[cfg(test)]
mod tests {
    use super::is_temporary_name;
    use std::ffi::OsStr;

    #[test]
    fn temporary_names() {
        let yes = [".a.cow-tmp-abc123", ".long name.txt.cow-tmp-000000"];
        let no = [
            "a.cow-tmp-abc123",
            ".a.cow-tmp-ABC123",
            ".a.cow-tmp-abc12",
            ".a.cow-tmp-abc1234",
            "..cow-tmp-abc123x",
            ".cow-tmp-abc123",
            ".a.cow-tmp-abc-23",
            "",
        ];
        for n in yes {
            assert!(is_temporary_name(OsStr::new(n)), "{n}");
        }
        for n in no {
            assert!(!is_temporary_name(OsStr::new(n)), "{n}");
        }
        // What the engine creates is recognised.
        #[cfg(unix)]
        for name in ["f", "dir.tar.gz", &"x".repeat(250)] {
            let t = crate::replace::temp_name(OsStr::new(name));
            assert!(is_temporary_name(&t), "{t:?}");
        }
        // Any bytes, and never longer than NAME_MAX.
        #[cfg(unix)]
        for len in [1, 200, 230, 255] {
            use std::os::unix::ffi::OsStrExt;
            let name = vec![0xffu8; len];
            let t = crate::replace::temp_name(OsStr::from_bytes(&name));
            assert!(is_temporary_name(&t), "{t:?}");
            assert!(
                t.as_bytes().len() <= 255,
                "{len}: {} bytes",
                t.as_bytes().len()
            );
            let head = 1 + len.min(255 - 1 - crate::TEMP_MARKER.len() - 6);
            assert_eq!(
                &t.as_bytes()[1..head],
                &name[..head - 1],
                "the name's own bytes"
            );
        }
    }
}
