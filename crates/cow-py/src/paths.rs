//! Path arguments: `str`, `bytes` and `os.PathLike`, as `open()` takes them.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyBytes;

/// The path named by `ob` (`str`, `bytes`, or an object with `__fspath__`).
pub(crate) fn path_of(ob: &Bound<'_, PyAny>) -> PyResult<PathBuf> {
    if let Ok(b) = ob.cast::<PyBytes>() {
        return from_bytes(ob.py(), b);
    }
    match ob.extract::<PathBuf>() {
        Ok(p) => Ok(p),
        // An os.PathLike whose __fspath__ returns bytes.
        Err(e) => match ob.call_method0("__fspath__") {
            Ok(v) if v.is_instance_of::<PyBytes>() => path_of(&v),
            _ => Err(e),
        },
    }
}

#[cfg(unix)]
fn from_bytes(_py: Python<'_>, b: &Bound<'_, PyBytes>) -> PyResult<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    Ok(std::ffi::OsStr::from_bytes(b.as_bytes()).into())
}

#[cfg(not(unix))]
fn from_bytes(py: Python<'_>, b: &Bound<'_, PyBytes>) -> PyResult<PathBuf> {
    static FSDECODE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    FSDECODE
        .import(py, "os", "fsdecode")?
        .call1((b,))?
        .extract::<PathBuf>()
}

static FSPATH: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// `os.fspath(ob)`: the `str` or `bytes` an error's `filename` carries.
pub(crate) fn fspath<'py>(ob: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    FSPATH.import(ob.py(), "os", "fspath")?.call1((ob,))
}
