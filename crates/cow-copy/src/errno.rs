//! The one table of "fall back" versus "fatal" errors (docs/architecture.md).
//!
//! A strategy that fails with a fallback error *before writing anything*
//! declines and the next one runs. A fatal error (or any error after data was
//! written) fails the copy: retrying after EIO or ENOSPC can corrupt data.

use std::io;

/// How the chain treats an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    /// The strategy does not apply here; try the next one (only while
    /// nothing was written).
    Fallback,
    /// Stop: the copy fails.
    Fatal,
}

#[cfg(unix)]
mod table {
    use rustix::io::Errno;

    /// EOPNOTSUPP/ENOTSUP, ENOTTY, EXDEV, EINVAL, ENOSYS, EPERM (seccomp),
    /// EBADF, ETXTBSY, EACCES.
    pub(super) const FALLBACK: &[Errno] = &[
        Errno::OPNOTSUPP,
        Errno::NOTSUP,
        Errno::NOTTY,
        Errno::XDEV,
        Errno::INVAL,
        Errno::NOSYS,
        Errno::PERM,
        Errno::BADF,
        Errno::TXTBSY,
        Errno::ACCESS,
    ];

    /// EIO, ENOSPC, EDQUOT, ENOMEM: never retried.
    pub(super) const FATAL: &[Errno] = &[Errno::IO, Errno::NOSPC, Errno::DQUOT, Errno::NOMEM];

    pub(super) fn raw(e: Errno) -> i32 {
        e.raw_os_error()
    }
}

#[cfg(windows)]
mod table {
    // Windows error codes: ERROR_INVALID_FUNCTION (1), ERROR_ACCESS_DENIED
    // (5), ERROR_NOT_SAME_DEVICE (17), ERROR_NOT_SUPPORTED (50),
    // ERROR_INVALID_PARAMETER (87), ERROR_BLOCK_TOO_MANY_REFERENCES (347).
    pub(super) const FALLBACK: &[i32] = &[1, 5, 17, 50, 87, 347];
    // ERROR_CRC (23), ERROR_DISK_FULL (112), ERROR_HANDLE_DISK_FULL (39),
    // ERROR_NOT_ENOUGH_MEMORY (8), ERROR_OUTOFMEMORY (14).
    pub(super) const FATAL: &[i32] = &[23, 112, 39, 8, 14];

    pub(super) fn raw(e: i32) -> i32 {
        e
    }
}

/// Classifies an error. Unknown errors are fatal: an error the table does not
/// know is not one we can safely retry after.
pub(crate) fn classify(e: &io::Error) -> Class {
    let Some(code) = e.raw_os_error() else {
        return match e.kind() {
            io::ErrorKind::Unsupported => Class::Fallback,
            _ => Class::Fatal,
        };
    };
    if table::FATAL.iter().any(|&f| table::raw(f) == code) {
        Class::Fatal
    } else if table::FALLBACK.iter().any(|&f| table::raw(f) == code) {
        Class::Fallback
    } else {
        Class::Fatal
    }
}

/// Whether `e` lets the chain fall through to the next strategy, given that
/// nothing has been written yet.
pub(crate) fn is_fallback(e: &io::Error) -> bool {
    classify(e) == Class::Fallback
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use rustix::io::Errno;

    #[test]
    fn table_sorts_the_design_errnos() {
        for e in [Errno::XDEV, Errno::OPNOTSUPP, Errno::NOSYS, Errno::ACCESS] {
            assert_eq!(classify(&io::Error::from(e)), Class::Fallback, "{e:?}");
        }
        for e in [
            Errno::IO,
            Errno::NOSPC,
            Errno::DQUOT,
            Errno::NOMEM,
            Errno::ROFS,
        ] {
            assert_eq!(classify(&io::Error::from(e)), Class::Fatal, "{e:?}");
        }
    }
}
