//! Platforms without an extent map this crate can read: FreeBSD (no FIEMAP)
//! and the rest.

use std::fs::File;
use std::path::Path;

use crate::{Extent, VerifyError};

#[cfg(unix)]
pub(crate) use crate::same_dev as same_filesystem;
#[cfg(unix)]
pub(crate) use crate::unix::data_map;

/// Never reached: [`extents`] fails first.
#[cfg(not(unix))]
pub(crate) fn same_filesystem(
    _fa: &File,
    _a: &Path,
    _fb: &File,
    _b: &Path,
) -> Result<bool, VerifyError> {
    Ok(false)
}

pub(crate) fn extents(_file: &File, path: &Path) -> Result<Vec<Extent>, VerifyError> {
    Err(VerifyError::Unsupported {
        path: path.to_path_buf(),
        what: "reading a file's extents on this platform",
    })
}

#[cfg(not(unix))]
pub(crate) fn data_map(_file: &File, path: &Path) -> Result<Vec<crate::Segment>, VerifyError> {
    Err(VerifyError::Unsupported {
        path: path.to_path_buf(),
        what: "reading a file's data/hole map on this platform",
    })
}
