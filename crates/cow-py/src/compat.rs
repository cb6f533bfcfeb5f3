//! The data path of the shutil drop-ins (`copyfile`, `copy`, `copy2`, and
//! the files of `copytree`): shutil's checks and permission rules around
//! cow's engine ([`crate::batch`] runs it for many files). The Python layer (`cow_copy/_shutil.py`) does the rest of
//! shutil's semantics (directories, symlinks, `ignore`, error lists).

use std::path::Path;

use cow_copy::{CopyError, CopyOptions, Preserve};
use pyo3::prelude::*;
use pyo3::types::PyBool;

use crate::errors::{self, Names, Style};
use crate::paths::path_of;

/// What a drop-in copies besides the bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `shutil.copyfile`: data only; a new file gets 0o666 minus the umask,
    /// an existing one keeps its mode (it is rewritten in place).
    CopyFile,
    /// `shutil.copy`: data and permission bits.
    Copy,
    /// `shutil.copy2`: data, permission bits, times and extended attributes.
    Copy2,
}

impl Kind {
    pub(crate) fn parse(n: u8) -> PyResult<Kind> {
        match n {
            0 => Ok(Kind::CopyFile),
            1 => Ok(Kind::Copy),
            2 => Ok(Kind::Copy2),
            _ => Err(pyo3::exceptions::PyValueError::new_err(format!(
                "unknown copy kind {n}"
            ))),
        }
    }

    pub(crate) fn options(self) -> CopyOptions {
        let preserve = match self {
            Kind::CopyFile => Preserve::none(),
            Kind::Copy => Preserve {
                mode: true,
                ..Preserve::none()
            },
            Kind::Copy2 => Preserve {
                mode: true,
                timestamps: true,
                xattrs: true,
                ownership: false,
            },
        };
        CopyOptions::new().preserve(preserve)
    }
}

/// The outcome of one drop-in copy, decided without the GIL.
pub(crate) enum Outcome {
    Done,
    /// The destination is a named pipe (shutil refuses it before opening,
    /// which would block).
    DestinationPipe,
    /// The source is a device or socket: Python's shutil copies it instead
    /// (it reads a character device to its end; cow copies regular files).
    Special,
    Failed(CopyError),
    /// Not started: the batch was cancelled.
    NotRun,
}

fn is_fifo(m: &std::fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        m.file_type().is_fifo()
    }
    #[cfg(not(unix))]
    {
        let _ = m;
        false
    }
}

/// Copies one file. `fresh`: the caller knows `dst` does not exist (its
/// directory was just created by the tree walk), so the look for a named
/// pipe there is skipped.
pub(crate) fn copy_one(
    kind: Kind,
    opts: &CopyOptions,
    src: &Path,
    dst: &Path,
    fresh: bool,
) -> Outcome {
    if fresh {
        return engine_copy(opts, src, dst);
    }
    let mut made = false;
    match std::fs::metadata(dst) {
        Ok(m) if is_fifo(&m) => return Outcome::DestinationPipe,
        Ok(_) => {}
        Err(e) if kind == Kind::CopyFile && e.kind() == std::io::ErrorKind::NotFound => {
            // shutil opens the destination with mode 0o666 (minus the umask)
            // once the source opened; create it the same way so the engine
            // keeps that mode instead of deriving one from the source.
            if std::fs::metadata(src).is_ok_and(|m| m.is_file()) {
                if let Err(e) = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(dst)
                {
                    return Outcome::Failed(CopyError::Io {
                        op: "create destination",
                        path: dst.to_path_buf(),
                        source: e,
                    });
                }
                made = true;
            }
        }
        Err(_) => {}
    }
    let outcome = engine_copy(opts, src, dst);
    if made && matches!(&outcome, Outcome::Failed(e) if e.kind() == std::io::ErrorKind::Interrupted)
    {
        // Cancelled: the file created above never held anything the user
        // had (the engine removes the ones it creates itself).
        let _ = std::fs::remove_file(dst);
    }
    outcome
}

fn engine_copy(opts: &CopyOptions, src: &Path, dst: &Path) -> Outcome {
    engine_outcome(opts.copy(src, dst))
}

/// The outcome of an engine copy (devices and sockets go to shutil).
pub(crate) fn engine_outcome(result: Result<cow_copy::CopyReport, CopyError>) -> Outcome {
    match result {
        Ok(_) => Outcome::Done,
        Err(CopyError::NotARegularFile { kind, .. })
            if !matches!(
                kind,
                cow_copy::tree::EntryKind::Dir | cow_copy::tree::EntryKind::Fifo
            ) =>
        {
            Outcome::Special
        }
        Err(e) => Outcome::Failed(e),
    }
}

/// The Python value for an outcome: `None` (copied), `False` (let shutil
/// copy it), or the exception shutil would have raised.
pub(crate) fn outcome_value<'py>(
    py: Python<'py>,
    outcome: Outcome,
    n: &Names<'_, 'py>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let err = match outcome {
        Outcome::Done => return Ok(None),
        Outcome::Special | Outcome::NotRun => {
            return Ok(Some(PyBool::new(py, false).to_owned().into_any()));
        }
        Outcome::DestinationPipe => errors::named_pipe(n.dst),
        Outcome::Failed(e) => errors::copy_error(py, &e, n, Style::Shutil),
    };
    Ok(Some(err.into_value(py).into_bound(py).into_any()))
}

/// Copies one file for `copyfile` (kind 0), `copy` (1) or `copy2` (2).
/// `src` and `dst` are what `os.fspath` returned. Returns `True` when
/// copied, `False` when the source is a device or socket that the caller
/// should hand to shutil, and raises shutil's exception otherwise.
#[pyfunction]
pub(crate) fn copy_compat(
    py: Python<'_>,
    src: Bound<'_, PyAny>,
    dst: Bound<'_, PyAny>,
    kind: u8,
) -> PyResult<bool> {
    let kind = Kind::parse(kind)?;
    let (src_path, dst_path) = (path_of(&src)?, path_of(&dst)?);
    let outcome = crate::run::copy_file(py, &src_path, kind.options(), |opts| {
        copy_one(kind, opts, &src_path, &dst_path, false)
    })?;
    let names = Names {
        src: &src,
        dst: &dst,
        src_path: &src_path,
        dst_path: &dst_path,
    };
    match outcome_value(py, outcome, &names)? {
        None => Ok(true),
        Some(v) if v.is_instance_of::<PyBool>() => Ok(false),
        Some(v) => Err(PyErr::from_value(v)),
    }
}
