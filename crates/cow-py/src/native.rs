//! The native API: `copy_file`, `copy_tree`, `probe`, `verify`.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use cow_copy::tree::{Progress, TreeError, TreeOptions};
use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;

use crate::errors::{self, Names, Style};
use crate::options::{self, FileArgs};
use crate::paths::{fspath, path_of};
use crate::report::{PyCopyReport, PyProbe, PyProgress, PySharing, PyTreeReport};
use crate::run;

pyo3::create_exception!(
    cow_copy,
    CopyTreeError,
    PyOSError,
    "Some entries of a copy_tree failed; the rest were copied. `.report` is the TreeReport, whose `failures` lists them."
);

fn call_progress(py: Python<'_>, progress: &Py<PyAny>, p: &Progress) -> PyResult<()> {
    progress.call1(py, (PyProgress::from(p),)).map(drop)
}

/// Copies one file and says how.
///
/// `reflink`: "auto" (clone when possible), "always" (clone or fail, never
/// copy bytes), "never". `sparse`: "auto" (keep holes), "always" (also punch
/// zero blocks), "never". `update`: "all", "if-different" (leave an
/// identical destination alone), "if-different-dedupe",
/// "if-different-trust-mtime" (same size and mtime count as identical
/// unread), "if-older".
/// `atomic`: write a temporary sibling and rename it over `dst`. `preserve`:
/// None (permission bits), "all", or names from "mode", "timestamps",
/// "ownership", "xattrs". `overwrite=False` refuses an existing `dst`
/// (FileExistsError). `progress` is called once with the final Progress.
/// The GIL is released while the file is copied; Ctrl-C stops a large file
/// half-way (KeyboardInterrupt), leaving no temporary and no destination it
/// created.
#[pyfunction]
#[pyo3(signature = (src, dst, *, reflink="auto", sparse="auto", update="all", atomic=false, fsync=false, preserve=None, follow_symlinks=true, overwrite=true, progress=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn copy_file(
    py: Python<'_>,
    src: &Bound<'_, PyAny>,
    dst: &Bound<'_, PyAny>,
    reflink: &str,
    sparse: &str,
    update: &str,
    atomic: bool,
    fsync: bool,
    preserve: Option<&Bound<'_, PyAny>>,
    follow_symlinks: bool,
    overwrite: bool,
    progress: Option<Py<PyAny>>,
) -> PyResult<PyCopyReport> {
    let opts = FileArgs {
        reflink,
        sparse,
        update,
        atomic,
        fsync,
        preserve,
        overwrite,
    }
    .options()?
    .follow_symlinks(follow_symlinks);
    let (src, dst) = (fspath(src)?, fspath(dst)?);
    let (src_path, dst_path) = (path_of(&src)?, path_of(&dst)?);
    let result = run::copy_file(py, &src_path, opts, |o| o.copy(&src_path, &dst_path))?;
    let report = result.map_err(|e| {
        let names = Names {
            src: &src,
            dst: &dst,
            src_path: &src_path,
            dst_path: &dst_path,
        };
        errors::copy_error(py, &e, &names, Style::Native)
    })?;
    if let Some(p) = &progress {
        let done = Progress {
            files_done: 1,
            files_total: 1,
            bytes_done: report.len,
            bytes_total: report.len,
        };
        call_progress(py, p, &done)?;
    }
    Ok(PyCopyReport::from(&report))
}

/// Copies a tree (directories, files, symlinks, FIFOs, hard links) and
/// says how.
///
/// `dst` is the copy itself; an existing directory there is merged into.
/// Files are copied in parallel (`jobs` threads, default one per CPU) with
/// the options of `copy_file`. `dereference`: "never" (symlinks copied as
/// symlinks), "command-line" (only `src`), "always". `hard_links=True`
/// recreates hard links inside the tree. `fail_fast=True` stops at the first
/// failure. `progress` is called with a Progress about every 50 ms and at
/// the end. Raises CopyTreeError (with `.report`) when some entries failed.
/// Ctrl-C stops the copy, inside the files being copied too, and raises
/// KeyboardInterrupt; atomic copies leave no temporary, and a file being
/// created is removed.
#[pyfunction]
#[pyo3(signature = (src, dst, *, reflink="auto", sparse="auto", update="all", atomic=false, fsync=false, preserve=None, overwrite=true, jobs=None, fail_fast=false, hard_links=false, dereference="never", progress=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn copy_tree(
    py: Python<'_>,
    src: &Bound<'_, PyAny>,
    dst: &Bound<'_, PyAny>,
    reflink: &str,
    sparse: &str,
    update: &str,
    atomic: bool,
    fsync: bool,
    preserve: Option<&Bound<'_, PyAny>>,
    overwrite: bool,
    jobs: Option<usize>,
    fail_fast: bool,
    hard_links: bool,
    dereference: &str,
    progress: Option<Py<PyAny>>,
) -> PyResult<PyTreeReport> {
    let file = FileArgs {
        reflink,
        sparse,
        update,
        atomic,
        fsync,
        preserve,
        overwrite,
    }
    .options()?;
    let (src, dst) = (fspath(src)?, fspath(dst)?);
    let (src_path, dst_path) = (path_of(&src)?, path_of(&dst)?);
    let cancel = Arc::new(AtomicBool::new(false));
    let latest: Arc<Mutex<Option<Progress>>> = Arc::default();
    let mut opts = TreeOptions::new()
        .copy_options(file)
        .fail_fast(fail_fast)
        .preserve_hard_links(hard_links)
        .dereference(options::dereference(dereference)?)
        .cancel(cancel.clone());
    if let Some(n) = jobs {
        opts = opts.jobs(n);
    }
    if progress.is_some() {
        let sink = latest.clone();
        opts = opts.progress(Arc::new(move |p: &Progress| {
            *sink.lock().unwrap_or_else(|e| e.into_inner()) = Some(*p);
        }));
    }
    let report_progress = |py: Python<'_>| -> PyResult<()> {
        let p = latest.lock().unwrap_or_else(|e| e.into_inner()).take();
        match (&progress, p) {
            (Some(f), Some(p)) => call_progress(py, f, &p),
            _ => Ok(()),
        }
    };
    let result = run::interruptible(
        py,
        &cancel,
        || opts.copy(&src_path, &dst_path),
        report_progress,
    )?;
    report_progress(py)?;
    match result {
        Ok(report) => PyTreeReport::new(py, &report),
        Err(e) => Err(tree_error(py, e, &src, &dst, &src_path, &dst_path)),
    }
}

fn tree_error(
    py: Python<'_>,
    e: TreeError,
    src: &Bound<'_, PyAny>,
    dst: &Bound<'_, PyAny>,
    src_path: &Path,
    dst_path: &Path,
) -> PyErr {
    let names = Names {
        src,
        dst,
        src_path,
        dst_path,
    };
    let name = |p: &Path| names.filename(p);
    let made = (|| -> PyResult<PyErr> {
        Ok(match &e {
            TreeError::SameFile { .. } => errors::same_file(src, dst),
            TreeError::IntoItself { .. } => {
                errors::os_error(py, Some(errors::EINVAL), Some(e.to_string()), dst.clone())
            }
            TreeError::NotADirectory { .. } => {
                errors::os_error(py, Some(errors::EEXIST), Some(e.to_string()), dst.clone())
            }
            TreeError::Io { op, path, source } => {
                errors::io_error(py, op, source, name(path)?, Style::Native)
            }
            TreeError::Incomplete { report } => {
                let err = CopyTreeError::new_err(e.to_string());
                err.value(py)
                    .setattr("report", Py::new(py, PyTreeReport::new(py, report)?)?)?;
                err
            }
            _ => PyOSError::new_err(e.to_string()),
        })
    })();
    made.unwrap_or_else(|err| err)
}

/// What the filesystem holding `path` can do: reflink, dedupe, holes,
/// extents, copy_file_range (live tests on scratch files, cached per
/// device).
#[pyfunction]
pub(crate) fn probe(py: Python<'_>, path: &Bound<'_, PyAny>) -> PyResult<PyProbe> {
    let name = fspath(path)?;
    let p = path_of(&name)?;
    match py.detach(|| cow_probe::probe(&p)) {
        Ok(c) => Ok(PyProbe::from(&c)),
        Err(cow_probe::ProbeError::Io { op, source, .. }) => {
            Err(errors::io_error(py, op, &source, name, Style::Native))
        }
        Err(e) => Err(PyOSError::new_err(e.to_string())),
    }
}

/// How much of file `a`'s data is physically shared with file `b`, from
/// their extent maps (FIEMAP on Linux): `ratio` 1.0 after a clone.
#[pyfunction]
pub(crate) fn verify(
    py: Python<'_>,
    a: &Bound<'_, PyAny>,
    b: &Bound<'_, PyAny>,
) -> PyResult<PySharing> {
    let (a, b) = (fspath(a)?, fspath(b)?);
    let (ap, bp) = (path_of(&a)?, path_of(&b)?);
    match py.detach(|| cow_verify::sharing(&ap, &bp)) {
        Ok(s) => Ok(PySharing::from(&s)),
        Err(cow_verify::VerifyError::Io { op, path, source }) => {
            let names = Names {
                src: &a,
                dst: &b,
                src_path: &ap,
                dst_path: &bp,
            };
            Err(errors::io_error(
                py,
                op,
                &source,
                names.filename(&path)?,
                Style::Native,
            ))
        }
        Err(e) => Err(PyOSError::new_err(e.to_string())),
    }
}
