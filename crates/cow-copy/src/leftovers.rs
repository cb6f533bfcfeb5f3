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

/// Lists the temporaries in `dir` (and its subdirectories with
/// `recursive`; symlinks are not followed). The directory is listed before
/// the open files are looked at, so a temporary created meanwhile is either
/// not listed or seen open.
pub fn find(dir: &Path, recursive: bool) -> io::Result<Found> {
    let mut found = Found::default();
    let mut listed = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    let mut first = true;
    while let Some(d) = pending.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            // The directory asked for must be readable; below it, say which
            // were not and go on.
            Err(e) if first => return Err(e),
            Err(e) => {
                found.unreadable.push((d, e.to_string()));
                continue;
            }
        };
        first = false;
        for entry in entries {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    found.unreadable.push((d.clone(), e.to_string()));
                    break;
                }
            };
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() && recursive {
                pending.push(entry.path());
            } else if kind.is_file() && is_temporary_name(&entry.file_name()) {
                listed.push(entry.path());
            }
        }
    }
    let open = open_files();
    found.open_files_checked = open.as_ref().is_some_and(|o| o.complete);
    let now = SystemTime::now();
    for path in listed {
        // Renamed or removed since it was listed: not a leftover.
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let age = meta
            .modified()
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .unwrap_or_default();
        let open_by = open
            .as_ref()
            .and_then(|o| o.by_file.get(&file_id(&meta)?).copied());
        found.temporaries.push(Temporary {
            path,
            len: meta.len(),
            age,
            open_by,
        });
    }
    Ok(found)
}

/// The files open in any process: (device, inode) -> a process id.
struct OpenFiles {
    by_file: HashMap<(u64, u64), u32>,
    /// Every process's descriptors were read.
    complete: bool,
}

/// (device, inode) of a file, where the platform has them.
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
    }
}
