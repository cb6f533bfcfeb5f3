//! Python exceptions for cow's errors, raised the way Python's own file
//! functions raise them: `OSError(errno, strerror, filename)` (so Python
//! picks `FileNotFoundError`, `PermissionError`, `IsADirectoryError`, ...),
//! `shutil.SameFileError` and `shutil.SpecialFileError`.

use std::io;
use std::path::Path;

use cow_copy::CopyError;
use cow_copy::tree::EntryKind;
use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

/// Errno values that are the same on Linux, macOS, the BSDs and the Windows
/// C runtime (which Python's `errno` module follows on Windows).
pub(crate) const ENOENT: i32 = 2;
const EACCES: i32 = 13;
pub(crate) const EEXIST: i32 = 17;
const ENOTDIR: i32 = 20;
pub(crate) const EISDIR: i32 = 21;
pub(crate) const EINVAL: i32 = 22;

static SAME_FILE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static SPECIAL_FILE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static STRERROR: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// How messages are worded.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// Exactly as `shutil` would word them (the drop-ins).
    Shutil,
    /// Naming the failed operation too (the native API).
    Native,
}

/// The paths of one copy, as Python objects (what `os.fspath` gave) and as
/// paths: an error about one of them carries the caller's object as its
/// `filename`, like `open()` does.
pub(crate) struct Names<'a, 'py> {
    pub(crate) src: &'a Bound<'py, PyAny>,
    pub(crate) dst: &'a Bound<'py, PyAny>,
    pub(crate) src_path: &'a Path,
    pub(crate) dst_path: &'a Path,
}

impl<'py> Names<'_, 'py> {
    /// The `filename` for an error about `path`.
    pub(crate) fn filename(&self, path: &Path) -> PyResult<Bound<'py, PyAny>> {
        if path == self.src_path {
            Ok(self.src.clone())
        } else if path == self.dst_path {
            Ok(self.dst.clone())
        } else {
            path_object(self.src.py(), path)
        }
    }
}

/// A path as a Python `str` (surrogate-escaped like `os.fsdecode`).
pub(crate) fn path_object<'py>(py: Python<'py>, path: &Path) -> PyResult<Bound<'py, PyAny>> {
    Ok(path.as_os_str().into_pyobject(py)?.into_any())
}

/// `os.strerror(errno)`: the text Python itself puts in its OSErrors.
fn strerror(py: Python<'_>, errno: i32) -> String {
    STRERROR
        .import(py, "os", "strerror")
        .and_then(|f| f.call1((errno,)))
        .and_then(|s| s.extract::<String>())
        .unwrap_or_else(|_| format!("error {errno}"))
}

/// The errno of an I/O error: the OS's, or one that matches its kind.
fn errno_of(e: &io::Error) -> Option<i32> {
    #[cfg(unix)]
    if let Some(n) = e.raw_os_error() {
        return Some(n);
    }
    match e.kind() {
        io::ErrorKind::NotFound => Some(ENOENT),
        io::ErrorKind::PermissionDenied => Some(EACCES),
        io::ErrorKind::AlreadyExists => Some(EEXIST),
        io::ErrorKind::NotADirectory => Some(ENOTDIR),
        io::ErrorKind::IsADirectory => Some(EISDIR),
        io::ErrorKind::InvalidInput => Some(EINVAL),
        #[cfg(unix)]
        io::ErrorKind::Unsupported => Some(rustix::io::Errno::OPNOTSUPP.raw_os_error()),
        _ => None,
    }
}

/// `OSError(errno, strerror[, note], filename)`; the constructor picks the
/// subclass for the errno. Without an errno: `OSError(message)`.
pub(crate) fn os_error(
    py: Python<'_>,
    errno: Option<i32>,
    note: Option<String>,
    filename: Bound<'_, PyAny>,
) -> PyErr {
    let Some(errno) = errno else {
        let msg = note.unwrap_or_else(|| "unknown error".to_owned());
        return PyOSError::new_err(format!(
            "{msg}: {}",
            filename
                .str()
                .map_or_else(|_| String::new(), |s| s.to_string())
        ));
    };
    let text = match note {
        Some(n) => format!("{}: {n}", strerror(py, errno)),
        None => strerror(py, errno),
    };
    let args = (errno, text, filename.unbind());
    PyOSError::new_err(args)
}

/// `OSError` for an I/O error about `path` (native style names `op`).
pub(crate) fn io_error(
    py: Python<'_>,
    op: &str,
    e: &io::Error,
    filename: Bound<'_, PyAny>,
    style: Style,
) -> PyErr {
    let errno = errno_of(e);
    let note = match (style, errno) {
        (_, None) => Some(format!("cannot {op}: {e}")),
        (Style::Native, Some(_)) => Some(format!("cannot {op}")),
        (Style::Shutil, Some(_)) => None,
    };
    os_error(py, errno, note, filename)
}

/// `shutil.SameFileError` with shutil's message.
pub(crate) fn same_file(src: &Bound<'_, PyAny>, dst: &Bound<'_, PyAny>) -> PyErr {
    let py = src.py();
    let msg = format!("{} and {} are the same file", repr(src), repr(dst));
    shutil_error(py, &SAME_FILE, "SameFileError", msg)
}

/// `shutil.SpecialFileError(message)`.
pub(crate) fn special_file(py: Python<'_>, msg: String) -> PyErr {
    shutil_error(py, &SPECIAL_FILE, "SpecialFileError", msg)
}

/// shutil's message for a named pipe: `` `PATH` is a named pipe ``.
pub(crate) fn named_pipe(name: &Bound<'_, PyAny>) -> PyErr {
    special_file(name.py(), format!("`{}` is a named pipe", display(name)))
}

fn shutil_error(
    py: Python<'_>,
    cell: &'static PyOnceLock<Py<PyAny>>,
    name: &str,
    msg: String,
) -> PyErr {
    match cell
        .import(py, "shutil", name)
        .and_then(|t| t.call1((msg,)))
    {
        Ok(value) => PyErr::from_value(value),
        Err(e) => e,
    }
}

fn repr(ob: &Bound<'_, PyAny>) -> String {
    ob.repr().map_or_else(|_| "?".to_owned(), |s| s.to_string())
}

fn display(ob: &Bound<'_, PyAny>) -> String {
    ob.str().map_or_else(|_| "?".to_owned(), |s| s.to_string())
}

/// The Python exception for a failed single-file copy.
pub(crate) fn copy_error(py: Python<'_>, e: &CopyError, n: &Names<'_, '_>, style: Style) -> PyErr {
    let name = |p: &Path| n.filename(p);
    let result = (|| -> PyResult<PyErr> {
        Ok(match e {
            CopyError::SameFile { .. } => same_file(n.src, n.dst),
            CopyError::NotARegularFile { path, kind } => match *kind {
                EntryKind::Dir => os_error(py, Some(EISDIR), None, name(path)?),
                EntryKind::Fifo => named_pipe(&name(path)?),
                _ => special_file(
                    py,
                    format!("`{}` is {}", display(&name(path)?), kind.described()),
                ),
            },
            CopyError::DestinationIsDirectory { path } => {
                os_error(py, Some(EISDIR), None, name(path)?)
            }
            CopyError::DestinationExists { path } => os_error(py, Some(EEXIST), None, name(path)?),
            CopyError::ReflinkUnsupported { path, source } => {
                io_error(py, "clone", source, name(path)?, Style::Native)
            }
            CopyError::Incomplete {
                op,
                path,
                written,
                source,
            } => os_error(
                py,
                errno_of(source),
                Some(format!(
                    "{op} failed after {written} bytes; the destination is incomplete"
                )),
                name(path)?,
            ),
            CopyError::Io { op, path, source } => io_error(py, op, source, name(path)?, style),
            other => PyOSError::new_err(other.to_string()),
        })
    })();
    result.unwrap_or_else(|err| err)
}
