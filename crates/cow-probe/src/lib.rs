//! What a path's filesystem can do: clone (reflink), dedupe, keep holes,
//! report extents, and whether `copy_file_range` clones there.
//!
//! ```no_run
//! # fn main() -> Result<(), cow_probe::ProbeError> {
//! use cow_probe::Support;
//!
//! let caps = cow_probe::probe(std::path::Path::new("/var/lib/images"))?;
//! println!("{} (block size {})", caps.fs_name, caps.block_size);
//! if caps.reflink.support == Support::Yes {
//!     println!("clones work here ({})", caps.reflink.evidence);
//! }
//! // A second probe of the same device is answered from the cache.
//! let again = cow_probe::probe(std::path::Path::new("/var/lib/images/sub"))?;
//! assert_eq!(again.dev, caps.dev);
//! # Ok(())
//! # }
//! ```
//!
//! The filesystem kind comes from `statfs` (Linux `f_type` magic, macOS and
//! FreeBSD `f_fstypename`) and gives a static hint ([`FsKind::table_hint`]).
//! The hint is not the answer: overlay, FUSE and network filesystems hide
//! what their backing store can do, and XFS clones only when made with
//! `reflink=1`. So [`probe`] tests live, with scratch files created in the
//! target directory (its parent when the path is a file), removed on every
//! path out, and caches the result per device for the life of the process.
//! A read-only mount or a directory that refuses new files gets the table
//! answers, each marked [`Evidence::NotWritable`].
//!
//! On Linux every answer can be live. On macOS clones, holes and extents
//! are tested live; on FreeBSD holes are, and the rest comes from the
//! table. On Windows the volume's own flags answer reflink (block reference
//! counting) and sparse files ([`Evidence::Reported`]); nothing is written
//! and nothing is cached, and [`Capabilities::dev`] is 0.

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex, MutexGuard};

use serde::Serialize;

mod kind;
pub use kind::{FsKind, Hint};

#[cfg(any(target_os = "linux", target_os = "android"))]
#[path = "linux.rs"]
mod sys;
#[cfg(target_os = "macos")]
#[path = "macos.rs"]
mod sys;
#[cfg(windows)]
#[path = "windows.rs"]
mod sys;
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    windows
)))]
#[path = "other.rs"]
mod sys;

#[cfg(unix)]
mod unix;

/// Whether a capability is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Support {
    /// It works here.
    Yes,
    /// It does not work here.
    No,
    /// Cannot tell (see the evidence).
    Unknown,
}

impl fmt::Display for Support {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Support::Yes => "yes",
            Support::No => "no",
            Support::Unknown => "unknown",
        })
    }
}

/// Why an answer is what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Evidence {
    /// A live test on scratch files in the directory gave the answer.
    Live,
    /// The static table for this filesystem kind: no live test exists for it
    /// on this platform.
    Known,
    /// The live test's call failed with this errno. `No` for errnos that mean
    /// "not supported here" (`EOPNOTSUPP`, `ENOTTY`, `EINVAL`, `ENOSYS`,
    /// `EXDEV`), `Unknown` for the others.
    Errno {
        /// The call, e.g. `FICLONE`.
        op: &'static str,
        /// The raw errno.
        errno: i32,
    },
    /// The static table, because the directory could not take scratch files
    /// (read-only mount, no permission, immutable directory).
    NotWritable,
    /// This platform has no such call at all.
    Platform,
    /// The filesystem itself reports it (Windows volume flags).
    Reported,
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Evidence::Live => f.write_str("live test"),
            Evidence::Known => f.write_str("table"),
            Evidence::Errno { op, errno } => write!(f, "{op}: {}", errno_name(*errno)),
            Evidence::NotWritable => f.write_str("table (directory not writable)"),
            Evidence::Platform => f.write_str("not on this platform"),
            Evidence::Reported => f.write_str("reported by the filesystem"),
        }
    }
}

/// An answer and its evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Answer {
    /// Yes, no, or unknown.
    pub support: Support,
    /// How that was found out.
    pub evidence: Evidence,
}

impl Answer {
    /// A live answer.
    pub fn live(support: Support) -> Answer {
        Answer {
            support,
            evidence: Evidence::Live,
        }
    }

    /// Whether the answer is `Yes`.
    pub fn yes(&self) -> bool {
        self.support == Support::Yes
    }
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.support, self.evidence)
    }
}

/// What the filesystem holding a path can do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    /// The path asked about.
    pub path: PathBuf,
    /// The filesystem kind.
    pub fs: FsKind,
    /// Its name: the kind's name, the platform's type name, or the magic
    /// number in hex for a kind this crate does not know.
    pub fs_name: String,
    /// The filesystem's block size in bytes (`statfs` `f_bsize`).
    pub block_size: u64,
    /// The device id (`st_dev`) of the directory; the cache key.
    pub dev: u64,
    /// Mounted read-only.
    pub read_only: bool,
    /// Files can share blocks: `FICLONE` (Linux), `clonefile` (macOS).
    pub reflink: Answer,
    /// Equal ranges can be made to share blocks: `FIDEDUPERANGE`.
    pub dedupe: Answer,
    /// `SEEK_DATA`/`SEEK_HOLE` report holes (a file with a hole is seen to
    /// have one).
    pub sparse: Answer,
    /// A file's extents can be read: `FS_IOC_FIEMAP` (Linux),
    /// `F_LOG2PHYS_EXT` (macOS).
    pub fiemap: Answer,
    /// `copy_file_range` shares blocks here instead of copying them.
    pub copy_file_range: Answer,
}

impl Capabilities {
    /// Whether the answers came from a live test (none marked
    /// [`Evidence::NotWritable`]).
    pub fn is_live(&self) -> bool {
        [
            self.reflink,
            self.dedupe,
            self.sparse,
            self.fiemap,
            self.copy_file_range,
        ]
        .iter()
        .all(|a| a.evidence != Evidence::NotWritable)
    }

    /// The five answers with their names, in display order.
    pub fn answers(&self) -> [(&'static str, Answer); 5] {
        [
            ("reflink", self.reflink),
            ("dedupe", self.dedupe),
            ("sparse", self.sparse),
            ("fiemap", self.fiemap),
            ("copy_file_range", self.copy_file_range),
        ]
    }
}

/// An error of this crate, naming the path and the failing call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// A system call failed.
    #[error("{path}: {op} failed: {source}", path = .path.display())]
    Io {
        /// The call, e.g. `statfs`.
        op: &'static str,
        /// The path it was called on.
        path: PathBuf,
        /// The error the system returned.
        #[source]
        source: io::Error,
    },
    /// Probing is not available on this platform.
    #[error("{path}: {what} is not supported on this platform", path = .path.display())]
    Unsupported {
        /// The path asked about.
        path: PathBuf,
        /// What is missing.
        what: &'static str,
    },
}

impl ProbeError {
    /// The path the error is about.
    pub fn path(&self) -> &Path {
        match self {
            ProbeError::Io { path, .. } | ProbeError::Unsupported { path, .. } => path,
        }
    }
}

impl From<ProbeError> for io::Error {
    fn from(e: ProbeError) -> io::Error {
        let kind = match &e {
            ProbeError::Io { source, .. } => source.kind(),
            ProbeError::Unsupported { .. } => io::ErrorKind::Unsupported,
        };
        io::Error::new(kind, e)
    }
}

#[cfg_attr(not(unix), allow(dead_code))]
pub(crate) fn io_err(op: &'static str, path: &Path, source: impl Into<io::Error>) -> ProbeError {
    ProbeError::Io {
        op,
        path: path.to_path_buf(),
        source: source.into(),
    }
}

/// The directory a probe of `path` works in: `path` itself when it is a
/// directory, else its parent (`.` for a bare file name).
#[cfg_attr(not(any(unix, windows)), allow(dead_code))]
pub(crate) fn dir_of(path: &Path) -> Result<PathBuf, ProbeError> {
    let meta = std::fs::metadata(path).map_err(|e| io_err("stat", path, e))?;
    if meta.is_dir() {
        return Ok(path.to_path_buf());
    }
    Ok(match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    })
}

/// Results of earlier probes, per device id.
static CACHE: LazyLock<Mutex<HashMap<u64, Capabilities>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Scratch files created so far, per device id.
static SCRATCH: LazyLock<Mutex<HashMap<u64, u64>>> = LazyLock::new(|| Mutex::new(HashMap::new()));

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg_attr(not(unix), allow(dead_code))]
pub(crate) fn count_scratch(dev: u64) {
    *lock(&SCRATCH).entry(dev).or_insert(0) += 1;
}

/// How many scratch files this process's live probes have created on the
/// device `dev` (for tests and diagnostics: a cached probe creates none).
pub fn scratch_files_created(dev: u64) -> u64 {
    lock(&SCRATCH).get(&dev).copied().unwrap_or(0)
}

/// The capabilities of the filesystem holding `path` (a directory, or a
/// file whose parent directory is tested).
///
/// The first probe of a device tests live and caches the answer for the
/// process; later probes of the same device only `stat` the path. A cached
/// answer from an unwritable directory is replaced by a live one as soon as
/// a writable directory of that device is probed.
///
/// # Errors
///
/// [`ProbeError::Io`] when the path cannot be opened or `statfs` fails;
/// [`ProbeError::Unsupported`] on Windows.
pub fn probe(path: &Path) -> Result<Capabilities, ProbeError> {
    probe_with(path, true)
}

/// [`probe`] without the cache: always tests live (when writable) and does
/// not store the result.
///
/// # Errors
///
/// As [`probe`].
pub fn probe_uncached(path: &Path) -> Result<Capabilities, ProbeError> {
    probe_with(path, false)
}

fn probe_with(path: &Path, cached: bool) -> Result<Capabilities, ProbeError> {
    let target = sys::Target::open(path)?;
    let dev = target.dev();
    if !cached || !target.cacheable() {
        return target.probe(path);
    }
    // Held while probing so two threads do not probe one device twice.
    let mut cache = lock(&CACHE);
    if let Some(hit) = cache.get(&dev) {
        if hit.is_live() || !target.may_be_writable() {
            let mut caps = hit.clone();
            caps.path = path.to_path_buf();
            return Ok(caps);
        }
    }
    let caps = target.probe(path)?;
    let keep = match cache.get(&dev) {
        Some(old) => caps.is_live() || !old.is_live(),
        None => true,
    };
    if keep {
        cache.insert(dev, caps.clone());
    }
    Ok(caps)
}

/// Answers for a directory that cannot take scratch files: the table, each
/// marked [`Evidence::NotWritable`].
#[cfg_attr(not(unix), allow(dead_code))]
pub(crate) fn not_writable(hint: Hint) -> [Answer; 5] {
    let mark = |support| Answer {
        support,
        evidence: Evidence::NotWritable,
    };
    [
        mark(hint.reflink),
        mark(hint.dedupe),
        mark(hint.sparse),
        mark(hint.fiemap),
        mark(hint.copy_file_range),
    ]
}

/// A table answer.
#[allow(dead_code)] // only the FreeBSD/other-Unix module answers from the table
pub(crate) fn known(support: Support) -> Answer {
    Answer {
        support,
        evidence: Evidence::Known,
    }
}

/// The answer for a live call that failed with `errno`.
#[cfg_attr(not(unix), allow(dead_code))]
pub(crate) fn from_errno(op: &'static str, errno: i32) -> Answer {
    let support = if unix::means_unsupported(errno) {
        Support::No
    } else {
        Support::Unknown
    };
    Answer {
        support,
        evidence: Evidence::Errno { op, errno },
    }
}

/// `EOPNOTSUPP` and friends by name, `errno N` otherwise.
pub fn errno_name(errno: i32) -> String {
    #[cfg(unix)]
    if let Some(name) = unix::errno_name(errno) {
        return name.to_owned();
    }
    format!("errno {errno}")
}

#[cfg(not(unix))]
mod unix {
    pub(crate) fn means_unsupported(_errno: i32) -> bool {
        false
    }
}
