//! Why a tree copy failed: [`TreeError`].

use std::io;
use std::path::PathBuf;

use super::TreeReport;

/// Why [`TreeOptions::copy`](crate::tree::TreeOptions::copy) failed. Converts into `io::Error`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TreeError {
    /// The destination is inside the source directory (`cp -r a a/b`).
    #[error("cannot copy a directory, {}, into itself, {}", src.display(), dst.display())]
    IntoItself {
        /// The source directory.
        src: PathBuf,
        /// The destination inside it.
        dst: PathBuf,
    },
    /// Source and destination are the same directory.
    #[error("{} and {} are the same file", src.display(), dst.display())]
    SameFile {
        /// The source.
        src: PathBuf,
        /// The destination.
        dst: PathBuf,
    },
    /// The source is a directory and the destination exists and is not one
    /// (a destination symlink is not followed).
    #[error("cannot overwrite non-directory {} with directory {}", dst.display(), src.display())]
    NotADirectory {
        /// The source directory.
        src: PathBuf,
        /// The existing destination.
        dst: PathBuf,
    },
    /// Setting up the copy failed (the source or the destination's parent
    /// could not be opened); nothing was copied.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        /// The operation.
        op: &'static str,
        /// The path it was applied to.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Some entries failed; the rest were copied. The report lists them.
    #[error("{}", incomplete_message(report))]
    Incomplete {
        /// The full report, with [`TreeReport::failures`] non-empty.
        report: Box<TreeReport>,
    },
}

fn incomplete_message(report: &TreeReport) -> String {
    let n = report.failures.len();
    let first = report
        .failures
        .first()
        .map(|f| f.to_string())
        .unwrap_or_default();
    let stop = if report.stopped_early {
        " (stopped at the first failure)"
    } else {
        ""
    };
    if n == 1 {
        format!("1 entry failed to copy{stop}: {first}")
    } else {
        format!("{n} entries failed to copy{stop}; the first: {first}")
    }
}

impl TreeError {
    /// The `io::ErrorKind` this error converts to.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            TreeError::IntoItself { .. } | TreeError::SameFile { .. } => {
                io::ErrorKind::InvalidInput
            }
            TreeError::NotADirectory { .. } => io::ErrorKind::AlreadyExists,
            TreeError::Io { source, .. } => source.kind(),
            TreeError::Incomplete { report } => report
                .failures
                .first()
                .map_or(io::ErrorKind::Other, |f| f.kind),
        }
    }

    /// The report of a copy that ran but had failures.
    pub fn report(&self) -> Option<&TreeReport> {
        match self {
            TreeError::Incomplete { report } => Some(report),
            _ => None,
        }
    }

    /// Takes the report of a copy that ran but had failures.
    pub fn into_report(self) -> Option<TreeReport> {
        match self {
            TreeError::Incomplete { report } => Some(*report),
            _ => None,
        }
    }
}

impl From<TreeError> for io::Error {
    fn from(e: TreeError) -> io::Error {
        io::Error::new(e.kind(), e)
    }
}
