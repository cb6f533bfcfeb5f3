//! `cow_copy._native`: the Rust half of the `cow_copy` Python package.
//!
//! The package (`python/cow_copy`) offers shutil drop-ins (`copyfile`,
//! `copy`, `copy2`, `copytree`) whose data path is [`compat`], and the
//! native API ([`native`]: `copy_file`, `copy_tree`, `probe`, `verify`)
//! returning the report objects of [`report`]. Copies run with the GIL
//! released; long ones stop on Ctrl-C ([`run`]).
//!
//! No `unsafe` here: PyO3's macros hold the FFI glue.

#![deny(unsafe_code)]

mod batch;
mod compat;
mod errors;
mod native;
mod options;
mod paths;
mod report;
mod run;

use pyo3::prelude::*;

/// The native module `cow_copy._native`.
#[pymodule(name = "_native")]
fn native_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(compat::copy_compat, m)?)?;
    m.add_class::<batch::Batch>()?;
    m.add_function(wrap_pyfunction!(native::copy_file, m)?)?;
    m.add_function(wrap_pyfunction!(native::copy_tree, m)?)?;
    m.add_function(wrap_pyfunction!(native::probe, m)?)?;
    m.add_function(wrap_pyfunction!(native::verify, m)?)?;
    m.add_class::<report::PyCopyReport>()?;
    m.add_class::<report::PyTreeReport>()?;
    m.add_class::<report::PyTreeFailure>()?;
    m.add_class::<report::PyProgress>()?;
    m.add_class::<report::PyProbe>()?;
    m.add_class::<report::PySharing>()?;
    m.add("CopyTreeError", m.py().get_type::<native::CopyTreeError>())?;
    m.add("TEMP_MARKER", cow_copy::TEMP_MARKER)?;
    Ok(())
}
