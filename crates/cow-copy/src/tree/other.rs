//! Platforms without a tree walker.

use std::io;
use std::path::Path;

use super::{TreeError, TreeOptions, TreeReport};

pub(super) fn copy_tree(
    _src: &Path,
    dst: &Path,
    _opts: &TreeOptions,
) -> Result<TreeReport, TreeError> {
    Err(TreeError::Io {
        op: "copy tree",
        path: dst.to_path_buf(),
        source: io::Error::new(
            io::ErrorKind::Unsupported,
            "tree copy is not supported on this platform",
        ),
    })
}
