//! The error type: every variant names the path and, where there is one, the
//! failing operation.

use std::io;
use std::path::PathBuf;

use crate::tree::EntryKind;

/// Why a copy failed. Converts into `io::Error` with a matching
/// [`io::ErrorKind`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CopyError {
    /// Source and destination are the same file (same device and inode):
    /// nothing was changed.
    #[error("{} and {} are the same file", src.display(), dst.display())]
    SameFile {
        /// The source path.
        src: PathBuf,
        /// The destination path.
        dst: PathBuf,
    },
    /// `reflink = always` and the files cannot share blocks. Nothing was
    /// left behind.
    #[error("cannot clone {}: {source}", path.display())]
    ReflinkUnsupported {
        /// The destination path.
        path: PathBuf,
        /// What the clone call answered.
        source: io::Error,
    },
    /// The source is not a regular file.
    #[error("{} is not a regular file (it is {})", path.display(), kind.described())]
    NotARegularFile {
        /// The source path.
        path: PathBuf,
        /// What it is.
        kind: EntryKind,
    },
    /// The destination is a directory.
    #[error("destination {} is a directory", path.display())]
    DestinationIsDirectory {
        /// The destination path.
        path: PathBuf,
    },
    /// The destination exists and `overwrite = no-clobber`.
    #[error("destination {} already exists", path.display())]
    DestinationExists {
        /// The destination path.
        path: PathBuf,
    },
    /// The destination is a symlink to a file that does not exist, and
    /// [`CopyOptions::write_through_dangling`](crate::CopyOptions::write_through_dangling)
    /// is off: nothing was created (GNU `cp` refuses it too).
    #[error("not writing through dangling symlink {}", path.display())]
    DanglingDestination {
        /// The destination path.
        path: PathBuf,
    },
    /// The destination was seen missing and, when it was then created
    /// exclusively, something was there: it appeared meanwhile. Nothing was
    /// written (another process is racing this copy).
    #[error("destination {} appeared while it was being created; nothing was written", path.display())]
    DestinationChanged {
        /// The destination path.
        path: PathBuf,
    },
    /// The copy failed after the destination's old content was removed; the
    /// destination holds the first `written` bytes only (never with
    /// `atomic`, which leaves the old destination whole).
    #[error("copy to {} failed after {written} bytes ({op}): {source}; the destination is incomplete", path.display())]
    Incomplete {
        /// The operation that failed.
        op: &'static str,
        /// The destination path, left incomplete.
        path: PathBuf,
        /// Bytes of the destination that were written.
        written: u64,
        /// The OS error.
        source: io::Error,
    },
    /// An operation on a path failed.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        /// The operation ("open source", "create destination", ...).
        op: &'static str,
        /// The path it was applied to.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

impl CopyError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        CopyError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// The `io::ErrorKind` this error converts to.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            CopyError::SameFile { .. } => io::ErrorKind::InvalidInput,
            CopyError::ReflinkUnsupported { .. } => io::ErrorKind::Unsupported,
            CopyError::NotARegularFile { .. } => io::ErrorKind::InvalidInput,
            CopyError::DestinationIsDirectory { .. } => io::ErrorKind::IsADirectory,
            CopyError::DestinationExists { .. }
            | CopyError::DanglingDestination { .. }
            | CopyError::DestinationChanged { .. } => io::ErrorKind::AlreadyExists,
            CopyError::Incomplete { source, .. } | CopyError::Io { source, .. } => source.kind(),
        }
    }

    /// The OS error number behind this error, if there is one.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            CopyError::ReflinkUnsupported { source, .. }
            | CopyError::Incomplete { source, .. }
            | CopyError::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

impl From<CopyError> for io::Error {
    fn from(e: CopyError) -> io::Error {
        io::Error::new(e.kind(), e)
    }
}
