//! Option values of the native API (`reflink="auto"`, `preserve="all"`, ...)
//! parsed into cow's option types.

use cow_copy::tree::Dereference;
use cow_copy::{CopyOptions, Overwrite, Preserve, Reflink, Sparse};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyString;

fn bad(what: &str, value: &str, known: &str) -> PyErr {
    PyValueError::new_err(format!("{what}={value:?}: expected one of {known}"))
}

/// Lower-case with `_` read as `-`.
fn norm(s: &str) -> String {
    s.trim().to_ascii_lowercase().replace('_', "-")
}

pub(crate) fn reflink(s: &str) -> PyResult<Reflink> {
    match norm(s).as_str() {
        "auto" => Ok(Reflink::Auto),
        "always" => Ok(Reflink::Always),
        "never" => Ok(Reflink::Never),
        _ => Err(bad("reflink", s, "'auto', 'always', 'never'")),
    }
}

pub(crate) fn sparse(s: &str) -> PyResult<Sparse> {
    match norm(s).as_str() {
        "auto" => Ok(Sparse::Auto),
        "always" => Ok(Sparse::Always),
        "never" => Ok(Sparse::Never),
        _ => Err(bad("sparse", s, "'auto', 'always', 'never'")),
    }
}

/// The policy for an existing destination from the `update=` keyword and
/// the `overwrite=` flag: `overwrite=False` refuses it whatever `update`
/// says (which is still checked), like `cp -n` winning over `--update`.
pub(crate) fn overwrite(update: &str, overwrite: bool) -> PyResult<Overwrite> {
    let policy = match norm(update).as_str() {
        "all" => Overwrite::Replace,
        "if-different" => Overwrite::IfDifferent,
        "if-different-dedupe" => Overwrite::IfDifferentDedupe,
        "if-different-trust-mtime" => Overwrite::IfDifferentTrustMtime,
        "if-older" => Overwrite::IfOlder,
        _ => {
            return Err(bad(
                "update",
                update,
                "'all', 'if-different', 'if-different-dedupe', 'if-different-trust-mtime', 'if-older'",
            ));
        }
    };
    Ok(if overwrite {
        policy
    } else {
        Overwrite::NoClobber
    })
}

pub(crate) fn dereference(s: &str) -> PyResult<Dereference> {
    match norm(s).as_str() {
        "never" => Ok(Dereference::Never),
        "command-line" => Ok(Dereference::CommandLine),
        "always" => Ok(Dereference::Always),
        _ => Err(bad("dereference", s, "'never', 'command-line', 'always'")),
    }
}

/// `preserve`: `None` (the default: permission bits), `"all"`, `"none"`, a
/// comma-separated string or an iterable of `"mode"`, `"timestamps"`,
/// `"ownership"`, `"xattrs"`.
pub(crate) fn preserve(ob: Option<&Bound<'_, PyAny>>) -> PyResult<Preserve> {
    let Some(ob) = ob.filter(|o| !o.is_none()) else {
        return Ok(Preserve::default());
    };
    let names: Vec<String> = if let Ok(s) = ob.cast::<PyString>() {
        s.extract::<String>()?.split(',').map(norm).collect()
    } else {
        ob.try_iter()?
            .map(|n| n.and_then(|n| n.extract::<String>()).map(|n| norm(&n)))
            .collect::<PyResult<_>>()?
    };
    let mut p = Preserve::none();
    for n in names.iter().filter(|n| !n.is_empty()) {
        match n.as_str() {
            "all" => p = Preserve::all(),
            "none" => {}
            "mode" => p.mode = true,
            "timestamps" | "times" => p.timestamps = true,
            "ownership" | "owner" => p.ownership = true,
            "xattrs" | "xattr" => p.xattrs = true,
            other => {
                return Err(bad(
                    "preserve",
                    other,
                    "'all', 'none', 'mode', 'timestamps', 'ownership', 'xattrs'",
                ));
            }
        }
    }
    Ok(p)
}

/// The per-file options shared by `copy_file` and `copy_tree`.
pub(crate) struct FileArgs<'a, 'py> {
    pub(crate) reflink: &'a str,
    pub(crate) sparse: &'a str,
    pub(crate) update: &'a str,
    pub(crate) atomic: bool,
    pub(crate) fsync: bool,
    pub(crate) preserve: Option<&'a Bound<'py, PyAny>>,
    pub(crate) overwrite: bool,
}

impl FileArgs<'_, '_> {
    pub(crate) fn options(&self) -> PyResult<CopyOptions> {
        Ok(CopyOptions::new()
            .reflink(reflink(self.reflink)?)
            .sparse(sparse(self.sparse)?)
            .overwrite(overwrite(self.update, self.overwrite)?)
            .atomic(self.atomic)
            .fsync(self.fsync)
            .preserve(preserve(self.preserve)?))
    }
}
